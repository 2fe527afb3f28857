// platform::posix_metadata_disk: the production metadata_disk (include/toastyfs/metadata_disk.hpp),
// a flat directory of files reached through a descriptor of that directory (openat, unlinkat,
// renameat, fstatat). Files are read and written with pread/pwrite and synced with fdatasync;
// every change to the directory (a file created, removed or renamed) is made durable by an
// fsync of the directory before the call returns ok. Blocking: meant for the replica's thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "toastyfs/metadata_disk.hpp"

namespace platform {

class posix_metadata_disk final : public toastyfs::metadata_disk {
public:
    /// Creates `directory` and any missing parents (mode 0700) and opens it. New directories are
    /// made durable (their parents are fsynced), and so is the directory itself, once: whatever a
    /// previous process created in it is durable from here on. If any of that fails, is_open() is
    /// false, last_error() says why, every call is an io_error and exists() is false.
    explicit posix_metadata_disk(std::string directory);
    /// Every file opened from this disk must be destroyed first.
    ~posix_metadata_disk() override;
    // Files point back to their disk (for last_error), so the disk stays where it was built.
    posix_metadata_disk(const posix_metadata_disk&) = delete;
    posix_metadata_disk& operator=(const posix_metadata_disk&) = delete;
    posix_metadata_disk(posix_metadata_disk&&) = delete;
    posix_metadata_disk& operator=(posix_metadata_disk&&) = delete;

    bool is_open() const noexcept { return directory_fd_ >= 0; }
    const std::string& directory() const noexcept { return directory_; }
    /// What the most recent failed call (on the disk or one of its files) failed on, with the
    /// system's message (for logs).
    const std::string& last_error() const noexcept { return last_error_; }

    // toastyfs::metadata_disk. Names are plain: empty, ".", "..", or containing '/' or '\0' is
    // an io_error (and does not exist).
    std::unique_ptr<toastyfs::metadata_file> open(std::string_view name, bool create,
                                                  toastyfs::metadata_io& status) override;
    toastyfs::metadata_io remove(std::string_view name) override;
    toastyfs::metadata_io rename(std::string_view from, std::string_view to) override;
    bool exists(std::string_view name) override;

    /// Attempts of open(create = true) racing with another process creating or removing the file.
    static constexpr int open_attempts_max = 4;

private:
    class file;

    toastyfs::metadata_io fail(std::string_view what, std::string_view name, int code);
    toastyfs::metadata_io sync_directory();
    int open_descriptor(const std::string& name, bool create, bool& created);

    std::string directory_;
    int directory_fd_ = -1;
    std::size_t files_open_ = 0;
    std::string last_error_;
};

}  // namespace platform
