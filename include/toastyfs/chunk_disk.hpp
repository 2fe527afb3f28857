// The Disk concept: the file operations a chunk store needs, on names relative to the store's
// root. platform::posix_chunk_disk implements it with POSIX calls; sim::sim_chunk_disk in memory,
// deterministically, with injected faults.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace toastyfs {

enum class disk_status : std::uint8_t {
    ok,
    not_found,  // the file (or the directory it should be in) does not exist
    no_space,   // the disk or a quota is full; nothing was changed
    io_error,   // the device failed or the name is unusable; see the call for what is left behind
    too_large,  // read: the file is larger than the caller's size_max
};

constexpr const char* to_string(disk_status status) noexcept {
    switch (status) {
        case disk_status::ok: return "ok";
        case disk_status::not_found: return "not_found";
        case disk_status::no_space: return "no_space";
        case disk_status::io_error: return "io_error";
        case disk_status::too_large: return "too_large";
    }
    return "unknown";
}

/// What stat() reports about one file.
struct disk_file_info {
    bool exists = false;
    std::uint64_t size = 0;
    std::uint64_t token = 0;
};

/// Requirements (every call returns a disk_status and never throws for an I/O failure):
/// - Names are relative to the store root, '/'-separated, without "." or ".." components, e.g.
///   "chunks/ab/ab12..". Directories are made explicitly with make_directory(); a file whose
///   directory is missing gives not_found.
/// - Each file carries a token: a u64 version stamp stored with the file, which survives restarts
///   and rename() (on a real disk: the modification time in nanoseconds).
/// - write_durably(name, bytes, token) replaces `name` with `bytes` and `token` so that after a
///   crash the file holds either the old content and token or the new, never a mix: write a
///   temporary file in the same directory, stamp the token, fsync, rename over, fsync the
///   directory. The token is stored exactly or the call fails. On failure `name` is untouched and
///   no temporary is left behind (a crash may still leave one: see is_temporary).
/// - read(name, size_max, out) replaces `out` with the content; too_large if it has more than
///   size_max bytes.
/// - remove(name) and rename(from, to) are durable when they return ok; rename replaces `to`.
/// - list(directory, out) replaces `out` with the names (not paths) of the regular files directly
///   in `directory`, sorted; other kinds of entries are skipped.
/// - stat(name, out): ok with exists = true, or not_found with exists = false.
/// - make_directory(name) is durable and ok if the directory already exists.
/// - free_bytes(out): bytes still available to this process.
/// - token_now(): the disk's notion of "now" in token units (realtime ns on a real disk,
///   simulated time in the simulator). It may jump backwards; the store copes.
/// - T::is_temporary(file_name) recognises the temporaries write_durably creates, so that a
///   store can delete the ones a crash left behind. Never true for a 64-hex-digit name.
template <typename T>
concept chunk_disk = requires(T& disk, std::string_view name, std::span<const std::uint8_t> bytes, std::uint64_t token,
                              std::size_t size_max, std::vector<std::uint8_t>& content, std::vector<std::string>& names,
                              disk_file_info& info, std::uint64_t& count) {
    { disk.write_durably(name, bytes, token) } -> std::same_as<disk_status>;
    { disk.read(name, size_max, content) } -> std::same_as<disk_status>;
    { disk.remove(name) } -> std::same_as<disk_status>;
    { disk.rename(name, name) } -> std::same_as<disk_status>;
    { disk.list(name, names) } -> std::same_as<disk_status>;
    { disk.stat(name, info) } -> std::same_as<disk_status>;
    { disk.make_directory(name) } -> std::same_as<disk_status>;
    { disk.free_bytes(count) } -> std::same_as<disk_status>;
    { disk.token_now() } -> std::same_as<std::uint64_t>;
    { T::is_temporary(name) } -> std::same_as<bool>;
};

}  // namespace toastyfs
