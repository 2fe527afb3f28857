// Archetypes of the toastyfs concepts: for each, a type with exactly what the concept promises and
// nothing more (no copies, no default construction unless asked for, no extra members). A template
// that compiles against them (tests/toastyfs/concepts_test.cpp) uses only what its concepts promise.
// Every call fails or does nothing, which each concept allows.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "toastyfs/chunk_disk.hpp"
#include "toastyfs/concepts.hpp"
#include "toastyfs/types.hpp"

namespace toastyfs::archetypes {

/// toastyfs::chunk_disk. Every call fails with io_error.
class chunk_disk {
public:
    explicit chunk_disk(int) {}
    chunk_disk(const chunk_disk&) = delete;
    chunk_disk& operator=(const chunk_disk&) = delete;

    disk_status write_durably(std::string_view, std::span<const std::uint8_t>, std::uint64_t) {
        return disk_status::io_error;
    }
    disk_status read(std::string_view, std::size_t, std::vector<std::uint8_t>&) { return disk_status::io_error; }
    disk_status remove(std::string_view) { return disk_status::io_error; }
    disk_status rename(std::string_view, std::string_view) { return disk_status::io_error; }
    disk_status list(std::string_view, std::vector<std::string>&) { return disk_status::io_error; }
    disk_status stat(std::string_view, disk_file_info&) { return disk_status::io_error; }
    disk_status make_directory(std::string_view) { return disk_status::io_error; }
    disk_status free_bytes(std::uint64_t&) { return disk_status::io_error; }
    std::uint64_t token_now() { return 0; }
    static bool is_temporary(std::string_view) { return false; }
};
static_assert(toastyfs::chunk_disk<chunk_disk>);

/// toastyfs::crypto. Every digest is zero (fine for compiling; content addressing needs real ones).
struct crypto {
    struct sha256_context {
        void update(std::span<const std::uint8_t>) {}
        sha256_digest finish() { return {}; }
    };
    struct md5_context {
        void update(std::span<const std::uint8_t>) {}
        md5_digest finish() { return {}; }
    };
    static sha256_digest sha256(std::span<const std::uint8_t>) { return {}; }
};
static_assert(toastyfs::crypto<crypto>);

/// toastyfs::chunk_transport. No node is ever connected; every send is refused.
class chunk_transport {
public:
    explicit chunk_transport(int) {}
    chunk_transport(const chunk_transport&) = delete;
    chunk_transport& operator=(const chunk_transport&) = delete;

    bool send(std::uint8_t, const frame_header&, std::shared_ptr<const std::vector<std::uint8_t>>) { return false; }
    bool connected(std::uint8_t) { return false; }
};
static_assert(toastyfs::chunk_transport<chunk_transport>);

/// toastyfs::metadata_client. Its queue is always full: nothing is submitted, no callback runs.
class metadata_client {
public:
    explicit metadata_client(int) {}
    metadata_client(const metadata_client&) = delete;
    metadata_client& operator=(const metadata_client&) = delete;

    vsr::submit_error submit(std::span<const std::uint8_t>, std::function<void(const vsr::client_result&)>,
                             vsr::request_kind) {
        return vsr::submit_error::queue_full;
    }
};
static_assert(toastyfs::metadata_client<metadata_client>);

}  // namespace toastyfs::archetypes
