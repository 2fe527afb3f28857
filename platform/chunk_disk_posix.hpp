// platform::posix_chunk_disk: the production Disk policy (toastyfs::chunk_disk) over one root
// directory, with POSIX calls relative to a descriptor of that root (openat, renameat, fstatat,
// utimensat, ...). Blocking: meant for the chunk server's own thread.
//
// Tokens are modification times in nanoseconds, stamped on the temporary before it is renamed
// into place, so content and token become durable together. Temporaries are named
// "<final name>.tmp-<pid>-<sequence>" next to their final name.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "toastyfs/chunk_disk.hpp"

namespace platform {

class posix_chunk_disk {
public:
    /// Creates `root_directory` (mode 0700; its parent must exist) if it is missing and opens it.
    /// If that fails, is_open() is false, last_error() says why, and every call is an io_error.
    explicit posix_chunk_disk(std::string root_directory);
    ~posix_chunk_disk();
    posix_chunk_disk(posix_chunk_disk&& other) noexcept;
    posix_chunk_disk& operator=(posix_chunk_disk&& other) noexcept;
    posix_chunk_disk(const posix_chunk_disk&) = delete;
    posix_chunk_disk& operator=(const posix_chunk_disk&) = delete;

    bool is_open() const noexcept { return root_fd_ >= 0; }
    const std::string& root_directory() const noexcept { return root_; }
    /// What the most recent failed call failed on, with the system's message (for logs).
    const std::string& last_error() const noexcept { return last_error_; }

    // The chunk_disk requirements (see include/toastyfs/chunk_disk.hpp).
    toastyfs::disk_status write_durably(std::string_view name, std::span<const std::uint8_t> bytes,
                                        std::uint64_t token);
    toastyfs::disk_status read(std::string_view name, std::size_t size_max, std::vector<std::uint8_t>& out);
    toastyfs::disk_status remove(std::string_view name);
    toastyfs::disk_status rename(std::string_view from, std::string_view to);
    toastyfs::disk_status list(std::string_view directory, std::vector<std::string>& out);
    toastyfs::disk_status stat(std::string_view name, toastyfs::disk_file_info& out);
    toastyfs::disk_status make_directory(std::string_view name);
    toastyfs::disk_status free_bytes(std::uint64_t& out);
    std::uint64_t token_now() const noexcept;
    static bool is_temporary(std::string_view file_name) noexcept;

    static constexpr std::string_view temporary_marker = ".tmp-";
    static constexpr int temporary_attempts_max = 16;  // name collisions before giving up

private:
    toastyfs::disk_status fail(std::string_view what, std::string_view name, int code);
    toastyfs::disk_status sync_directory_of(std::string_view name);

    std::string root_;
    int root_fd_ = -1;
    std::uint64_t temporary_sequence_ = 0;
    std::string last_error_;
};
static_assert(toastyfs::chunk_disk<posix_chunk_disk>);

}  // namespace platform
