#include "platform/metadata_disk_posix.hpp"

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstring>
#include <limits>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "platform/file.hpp"

namespace platform {

using toastyfs::metadata_io;

namespace {

constexpr std::uint64_t offset_max = static_cast<std::uint64_t>(std::numeric_limits<off_t>::max());

// Repeats a system call interrupted by a signal.
template <typename Call>
auto retry_interrupted(Call call) {
    for (;;) {
        const auto result = call();
        if (!(result < 0 && errno == EINTR)) return result;
    }
}

metadata_io status_of(int code) noexcept {
    switch (code) {
        case ENOENT: return metadata_io::not_found;
        case ENOSPC:
        case EDQUOT: return metadata_io::no_space;
        default: return metadata_io::io_error;
    }
}

// A plain name inside the directory: no '/', not "." or "..", no '\0' (the system would cut it).
bool valid_name(std::string_view name) noexcept {
    return !name.empty() && name != "." && name != ".." && name.find('/') == std::string_view::npos &&
           name.find('\0') == std::string_view::npos;
}

// `size` bytes at `offset` stay within what off_t can address.
bool fits(std::uint64_t offset, std::size_t size) noexcept {
    return offset <= offset_max && size <= offset_max - offset;
}

std::string without_trailing_slashes(std::string path) {
    while (path.size() > 1 && path.back() == '/') path.pop_back();
    return path;
}

std::string parent_of(const std::string& path) {
    const std::size_t slash = path.rfind('/');
    if (slash == std::string::npos) return ".";
    if (slash == 0) return "/";
    return without_trailing_slashes(path.substr(0, slash));
}

// The directories in `path` that do not exist yet, the outermost first (bounded by its length).
std::vector<std::string> missing_directories(const std::string& path) {
    std::vector<std::string> missing;
    std::string at = path;
    struct stat status {};
    while (at != "." && at != "/" && ::stat(at.c_str(), &status) != 0 && errno == ENOENT) {
        missing.push_back(at);
        at = parent_of(at);
    }
    std::reverse(missing.begin(), missing.end());
    return missing;
}

// 0 when `path` (a directory) was opened and fsynced, else the errno.
int sync_directory_at(const std::string& path) {
    const int fd = retry_interrupted([&] { return ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); });
    if (fd < 0) return errno;
    const int result = retry_interrupted([&] { return ::fsync(fd); });
    const int code = result == 0 ? 0 : errno;
    ::close(fd);
    return code;
}

}  // namespace

class posix_metadata_disk::file final : public toastyfs::metadata_file {
public:
    file(posix_metadata_disk& disk, int fd, std::string name) : disk_(disk), fd_(fd), name_(std::move(name)) {
        assert(fd_ >= 0);
        ++disk_.files_open_;
    }
    ~file() override {
        ::close(fd_);  // sync() reports what durability needs; a close error adds nothing
        assert(disk_.files_open_ > 0);
        --disk_.files_open_;
    }
    file(const file&) = delete;
    file& operator=(const file&) = delete;

    metadata_io read(std::uint64_t offset, std::span<std::uint8_t> out, std::size_t& read) override {
        read = 0;
        metadata_io result = metadata_io::ok;
        if (!fits(offset, out.size())) result = disk_.fail("read", name_, EINVAL);
        while (result == metadata_io::ok && read < out.size()) {
            const ssize_t count = retry_interrupted(
                [&] { return ::pread(fd_, out.data() + read, out.size() - read, static_cast<off_t>(offset + read)); });
            if (count < 0) {
                result = disk_.fail("read", name_, errno);
            } else if (count == 0) {
                break;  // the end of the file: the rest reads as zero
            } else {
                read += static_cast<std::size_t>(count);
            }
        }
        if (result != metadata_io::ok) read = 0;
        std::fill(out.begin() + static_cast<std::ptrdiff_t>(read), out.end(), std::uint8_t{0});
        assert(read <= out.size());
        return result;
    }

    metadata_io write(std::uint64_t offset, std::span<const std::uint8_t> bytes) override {
        if (!fits(offset, bytes.size())) return disk_.fail("write", name_, EFBIG);
        std::size_t written = 0;
        while (written < bytes.size()) {
            const ssize_t count = retry_interrupted([&] {
                return ::pwrite(fd_, bytes.data() + written, bytes.size() - written,
                                static_cast<off_t>(offset + written));
            });
            if (count <= 0) {
                if (count == 0) errno = EIO;  // never loop on a write that makes no progress
                return disk_.fail("write", name_, errno);
            }
            written += static_cast<std::size_t>(count);
        }
        assert(written == bytes.size());
        return metadata_io::ok;
    }

    metadata_io truncate(std::uint64_t size) override {
        if (size > offset_max) return disk_.fail("truncate", name_, EFBIG);
        if (retry_interrupted([&] { return ::ftruncate(fd_, static_cast<off_t>(size)); }) != 0) {
            return disk_.fail("truncate", name_, errno);
        }
        return metadata_io::ok;
    }

    metadata_io size(std::uint64_t& out) override {
        out = 0;
        struct stat status {};
        if (::fstat(fd_, &status) != 0) return disk_.fail("stat", name_, errno);
        assert(status.st_size >= 0);
        out = static_cast<std::uint64_t>(status.st_size);
        return metadata_io::ok;
    }

    metadata_io sync() override {
        // Only EINTR is retried: after a failed fdatasync the kernel may have dropped the dirty
        // pages, so a second call could succeed with the data lost. The store fails instead.
        if (retry_interrupted([&] { return ::fdatasync(fd_); }) != 0) return disk_.fail("fdatasync", name_, errno);
        return metadata_io::ok;
    }

private:
    posix_metadata_disk& disk_;
    int fd_;
    std::string name_;  // for messages
};

posix_metadata_disk::posix_metadata_disk(std::string directory) : directory_(std::move(directory)) {
    const std::string path = without_trailing_slashes(directory_);
    if (path.empty()) {
        fail("open directory", {}, ENOENT);
        return;
    }
    const std::vector<std::string> missing = missing_directories(path);
    if (!make_directories(path, last_error_)) return;
    for (const std::string& created : missing) {  // each new entry is durable in its parent
        const std::string parent = parent_of(created);
        const int code = sync_directory_at(parent);
        if (code != 0) {
            last_error_ = "fsync directory " + parent + ": " + std::strerror(code);
            return;
        }
    }
    const int fd = retry_interrupted([&] { return ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); });
    if (fd < 0) {
        fail("open directory", {}, errno);
        return;
    }
    directory_fd_ = fd;
    if (sync_directory() != metadata_io::ok) {  // entries a previous process left: durable from now
        ::close(directory_fd_);
        directory_fd_ = -1;
    }
}

posix_metadata_disk::~posix_metadata_disk() {
    assert(files_open_ == 0);  // a file still open would point at a destroyed disk
    if (directory_fd_ >= 0) ::close(directory_fd_);
}

metadata_io posix_metadata_disk::fail(std::string_view what, std::string_view name, int code) {
    last_error_.assign(what);
    last_error_ += ' ';
    last_error_ += directory_;
    if (!name.empty()) {
        last_error_ += '/';
        last_error_ += name;
    }
    last_error_ += ": ";
    last_error_ += std::strerror(code);
    return status_of(code);
}

metadata_io posix_metadata_disk::sync_directory() {
    assert(is_open());
    if (retry_interrupted([&] { return ::fsync(directory_fd_); }) != 0) return fail("fsync directory", {}, errno);
    return metadata_io::ok;
}

// A descriptor of `name`, or -1 with errno set. `created`: this call made the file.
int posix_metadata_disk::open_descriptor(const std::string& name, bool create, bool& created) {
    created = false;
    for (int attempt = 0; attempt < open_attempts_max; attempt++) {
        int fd = retry_interrupted([&] { return ::openat(directory_fd_, name.c_str(), O_RDWR | O_CLOEXEC); });
        if (fd >= 0 || errno != ENOENT || !create) return fd;
        // O_EXCL tells a file made here from one made meanwhile by someone else.
        fd = retry_interrupted(
            [&] { return ::openat(directory_fd_, name.c_str(), O_RDWR | O_CLOEXEC | O_CREAT | O_EXCL, 0644); });
        if (fd >= 0) {
            created = true;
            return fd;
        }
        if (errno != EEXIST) return -1;
    }
    return -1;  // errno: EEXIST, from a file that keeps appearing and vanishing (or a dangling link)
}

std::unique_ptr<toastyfs::metadata_file> posix_metadata_disk::open(std::string_view name, bool create,
                                                                   metadata_io& status) {
    if (!is_open() || !valid_name(name)) {
        status = fail("open", name, is_open() ? EINVAL : EBADF);
        return nullptr;
    }
    const std::string path(name);
    bool created = false;
    const int fd = open_descriptor(path, create, created);
    if (fd < 0) {
        status = fail(create ? "create" : "open", name, errno);
        return nullptr;
    }
    struct stat info {};
    status = metadata_io::ok;
    if (::fstat(fd, &info) != 0) {
        status = fail("stat", name, errno);
    } else if (!S_ISREG(info.st_mode)) {
        status = fail("open", name, EINVAL);  // a device or a pipe: not a file SQLite can own
    } else if (created) {
        status = sync_directory();  // the new entry is durable before anyone writes to it
    }
    if (status != metadata_io::ok) {
        ::close(fd);
        // Not left behind half made: a later open(create) would find it and skip the fsync.
        if (created) ::unlinkat(directory_fd_, path.c_str(), 0);
        return nullptr;
    }
    return std::make_unique<file>(*this, fd, path);
}

metadata_io posix_metadata_disk::remove(std::string_view name) {
    if (!is_open() || !valid_name(name)) return fail("remove", name, is_open() ? EINVAL : EBADF);
    const std::string path(name);
    if (::unlinkat(directory_fd_, path.c_str(), 0) != 0) return fail("remove", name, errno);
    return sync_directory();
}

metadata_io posix_metadata_disk::rename(std::string_view from, std::string_view to) {
    if (!is_open() || !valid_name(from) || !valid_name(to)) {
        return fail("rename", valid_name(from) ? to : from, is_open() ? EINVAL : EBADF);
    }
    const std::string source(from);
    const std::string target(to);
    if (::renameat(directory_fd_, source.c_str(), directory_fd_, target.c_str()) != 0) {
        return fail("rename", from, errno);
    }
    return sync_directory();
}

bool posix_metadata_disk::exists(std::string_view name) {
    if (!is_open() || !valid_name(name)) return false;
    const std::string path(name);
    struct stat status {};
    if (::fstatat(directory_fd_, path.c_str(), &status, 0) == 0) return true;
    if (errno != ENOENT) fail("stat", name, errno);  // noted for the log; the answer stays "no"
    return false;
}

}  // namespace platform
