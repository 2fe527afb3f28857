#include "file_storage.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace platform {
namespace {

constexpr const char* zone_file_names[vsr::zone_count] = {"superblock", "journal_headers", "journal_bodies",
                                                          "checkpoint_0", "checkpoint_1"};

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
    for (std::size_t z = 0; z < vsr::zone_count; ++z) {
        const std::string path = directory + "/" + zone_file_names[z];
        struct stat st {};
        created_ = created_ || ::stat(path.c_str(), &st) != 0;
        fds_[z] = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fds_[z] < 0) {
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

bool file_storage::read(vsr::zone z, std::uint64_t offset, std::span<std::uint8_t> out) {
    const int fd = fds_[static_cast<std::size_t>(z)];
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

bool file_storage::write(vsr::zone z, std::uint64_t offset, std::span<const std::uint8_t> bytes) {
    const auto index = static_cast<std::size_t>(z);
    std::size_t done = 0;
    while (done < bytes.size()) {
        const ssize_t n =
            ::pwrite(fds_[index], bytes.data() + done, bytes.size() - done, static_cast<off_t>(offset + done));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return fail("write");
        done += static_cast<std::size_t>(n);
    }
    dirty_[index] = true;
    return true;
}

bool file_storage::sync() {
    for (std::size_t z = 0; z < vsr::zone_count; ++z) {
        if (!dirty_[z]) continue;
        if (::fdatasync(fds_[z]) != 0) return fail("fdatasync");
        dirty_[z] = false;
    }
    if (created_) {  // the files' directory entries, once
        if (::fsync(directory_fd_) != 0) return fail("fsync of the data directory");
        created_ = false;
    }
    return true;
}

std::uint64_t file_storage::size(vsr::zone z) const noexcept {
    struct stat st {};
    if (::fstat(fds_[static_cast<std::size_t>(z)], &st) != 0) return 0;
    return static_cast<std::uint64_t>(st.st_size);
}

}  // namespace platform
