#include "file_storage.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "vsr/journal.hpp"

namespace platform {
namespace {

constexpr const char* file_names[] = {"superblock", "journal", "checkpoint_0", "checkpoint_1"};

/// A zone's file (an index into file_names) and where in it the zone starts.
struct zone_place {
    std::size_t file;
    std::uint64_t base;
};

zone_place place_of(vsr::zone z) noexcept {
    switch (z) {
        case vsr::zone::superblock: return {0, 0};
        case vsr::zone::journal_headers: return {1, 0};
        case vsr::zone::journal_bodies: return {1, file_storage::journal_bodies_offset};
        case vsr::zone::checkpoint_0: return {2, 0};
        case vsr::zone::checkpoint_1: return {3, 0};
    }
    return {0, 0};
}

static_assert(vsr::config::log_entries_limit * vsr::record_header_size <= file_storage::journal_bodies_offset);

/// The journal files of versions before the headers and bodies shared one file.
constexpr const char* older_layout_files[] = {"journal_headers", "journal_bodies"};

}  // namespace

file_storage::~file_storage() {
    for (const int fd : fds_) {
        if (fd >= 0) ::close(fd);
    }
    if (directory_fd_ >= 0) ::close(directory_fd_);
    if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the lock
}

bool file_storage::open(const std::string& directory, std::string& error) {
    const std::string lock_path = directory + "/lock";
    lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock_fd_ < 0 || ::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
        error = "cannot lock " + lock_path + ": " + std::strerror(errno) + " (is another process using it?)";
        if (lock_fd_ >= 0) ::close(lock_fd_);
        lock_fd_ = -1;
        return false;
    }
    directory_fd_ = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (directory_fd_ < 0) {
        error = "cannot open " + directory + ": " + std::strerror(errno);
        return false;
    }
    for (const char* name : older_layout_files) {
        struct stat st {};
        if (::stat((directory + "/" + name).c_str(), &st) == 0) {
            error = directory + " holds a journal in an older layout (" + name +
                    "), which this version does not read: move the directory away and start the replica "
                    "with --recovering, so it fetches its state from the others";
            return false;
        }
    }
    for (std::size_t f = 0; f < file_count; ++f) {
        const std::string path = directory + "/" + file_names[f];
        struct stat st {};
        created_ = created_ || ::stat(path.c_str(), &st) != 0;
        fds_[f] = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fds_[f] < 0) {
            error = "cannot open " + path + ": " + std::strerror(errno);
            return false;
        }
    }
    return true;
}

bool file_storage::fail(const char* what) {
    error_ = std::string(what) + ": " + std::strerror(errno);
    return false;
}

bool file_storage::read(vsr::zone z, std::uint64_t zone_offset, std::span<std::uint8_t> out) {
    const zone_place place = place_of(z);
    const int fd = fds_[place.file];
    const std::uint64_t offset = place.base + zone_offset;
    std::size_t done = 0;
    while (done < out.size()) {
        const ssize_t n = ::pread(fd, out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return fail("read");
        if (n == 0) break;  // past the end: zeros, like a sparse hole
        done += static_cast<std::size_t>(n);
    }
    std::memset(out.data() + done, 0, out.size() - done);
    return true;
}

bool file_storage::write(vsr::zone z, std::uint64_t zone_offset, std::span<const std::uint8_t> bytes) {
    const zone_place place = place_of(z);
    const std::uint64_t offset = place.base + zone_offset;
    std::size_t done = 0;
    while (done < bytes.size()) {
        const ssize_t n =
            ::pwrite(fds_[place.file], bytes.data() + done, bytes.size() - done, static_cast<off_t>(offset + done));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return fail("write");
        done += static_cast<std::size_t>(n);
    }
    dirty_[place.file] = true;
    return true;
}

bool file_storage::sync() {
    for (std::size_t f = 0; f < file_count; ++f) {
        if (!dirty_[f]) continue;
        if (::fdatasync(fds_[f]) != 0) return fail("fdatasync");
        dirty_[f] = false;
    }
    if (created_) {  // the files' directory entries, once
        if (::fsync(directory_fd_) != 0) return fail("fsync of the data directory");
        created_ = false;
    }
    return true;
}

std::uint64_t file_storage::size(vsr::zone z) const noexcept {
    const zone_place place = place_of(z);
    struct stat st {};
    if (::fstat(fds_[place.file], &st) != 0) return 0;
    const auto size = static_cast<std::uint64_t>(st.st_size);
    if (z == vsr::zone::journal_headers) return std::min(size, journal_bodies_offset);
    return size > place.base ? size - place.base : 0;
}

}  // namespace platform
