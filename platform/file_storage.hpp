// vsr::storage over files in a replica's data directory, written with pwrite and made durable
// with fdatasync: `superblock`, `checkpoint_0`, `checkpoint_1`, and `journal`, which holds the
// redundant record headers from offset 0 and the record bodies from journal_bodies_offset. One
// file for both, because a flush under load syncs the bodies just appended together with the
// headers the flush before wrote (vsr/journal.hpp): one fdatasync, where two files cost two
// (each a device cache flush: 110 against 262 us per round measured here). The journal decides
// what goes where and in which order; this only moves bytes and reports errors.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>

#include "vsr/storage.hpp"

namespace platform {

class file_storage {
public:
    /// Diskless: persistent() is false and nothing is touched.
    file_storage() = default;
    file_storage(const file_storage&) = delete;
    file_storage& operator=(const file_storage&) = delete;
    ~file_storage();

    /// Opens (creating if needed) the zone files in `directory`, which must exist. Takes an
    /// exclusive lock on it, so two processes never share one journal. False with `error` set.
    bool open(const std::string& directory, std::string& error);

    bool persistent() const noexcept { return lock_fd_ >= 0; }
    bool read(vsr::zone z, std::uint64_t offset, std::span<std::uint8_t> out);
    bool write(vsr::zone z, std::uint64_t offset, std::span<const std::uint8_t> bytes);
    bool sync();
    std::uint64_t size(vsr::zone z) const noexcept;

    /// The last I/O error, for the log (empty if none).
    const std::string& error() const noexcept { return error_; }

    /// Where the bodies start in `journal`: after room for the headers of the most log slots
    /// a configuration may have (a sparse hole where there are fewer).
    static constexpr std::uint64_t journal_bodies_offset = std::uint64_t{128} << 20;

private:
    static constexpr std::size_t file_count = 4;  // superblock, journal, checkpoint_0, checkpoint_1
    bool fail(const char* what);

    std::array<int, file_count> fds_{-1, -1, -1, -1};
    std::array<bool, file_count> dirty_{};
    bool created_ = false;  // a new file: the directory entry must be synced too
    int lock_fd_ = -1;
    int directory_fd_ = -1;
    std::string error_;
};
static_assert(vsr::storage<file_storage>);

}  // namespace platform
