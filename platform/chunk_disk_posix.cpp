#include "platform/chunk_disk_posix.hpp"

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstring>
#include <limits>
#include <utility>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

namespace platform {

using toastyfs::disk_status;

namespace {

constexpr std::uint64_t nanoseconds_per_second = 1'000'000'000;

// Repeats a system call interrupted by a signal.
template <typename Call>
auto retry_interrupted(Call call) {
    for (;;) {
        const auto result = call();
        if (!(result < 0 && errno == EINTR)) return result;
    }
}

disk_status status_of(int code) noexcept {
    switch (code) {
        case ENOENT:
        case ENOTDIR: return disk_status::not_found;
        case ENOSPC:
        case EDQUOT:
        case EFBIG: return disk_status::no_space;  // the file system cannot hold the file
        default: return disk_status::io_error;
    }
}

// Relative, '/'-separated, no empty, "." or ".." components: cannot escape the root.
bool valid_name(std::string_view name) noexcept {
    if (name.empty() || name.front() == '/' || name.back() == '/') return false;
    std::size_t start = 0;
    for (;;) {
        const std::size_t slash = name.find('/', start);
        const std::string_view part = name.substr(start, slash - start);
        if (part.empty() || part == "." || part == "..") return false;
        if (part.find('\0') != std::string_view::npos) return false;
        if (slash == std::string_view::npos) return true;
        start = slash + 1;
    }
}

std::string parent_of(std::string_view name) {
    const std::size_t slash = name.rfind('/');
    return slash == std::string_view::npos ? std::string(".") : std::string(name.substr(0, slash));
}

std::uint64_t token_of(const struct timespec& time) noexcept {
    if (time.tv_sec < 0) return 0;
    const auto seconds = static_cast<std::uint64_t>(time.tv_sec);
    const auto nanoseconds = static_cast<std::uint64_t>(time.tv_nsec);
    if (seconds > (std::numeric_limits<std::uint64_t>::max() - nanoseconds) / nanoseconds_per_second) {
        return std::numeric_limits<std::uint64_t>::max();
    }
    return seconds * nanoseconds_per_second + nanoseconds;
}

struct timespec time_of(std::uint64_t token) noexcept {
    struct timespec time {};
    time.tv_sec = static_cast<time_t>(token / nanoseconds_per_second);
    time.tv_nsec = static_cast<long>(token % nanoseconds_per_second);
    return time;
}

bool write_all(int fd, std::span<const std::uint8_t> data) {
    std::size_t written = 0;
    while (written < data.size()) {
        const ssize_t count =
            retry_interrupted([&] { return ::write(fd, data.data() + written, data.size() - written); });
        if (count <= 0) {
            if (count == 0) errno = EIO;  // never loop on a write that makes no progress
            return false;
        }
        written += static_cast<std::size_t>(count);
    }
    return true;
}

std::string hex(std::uint64_t value) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    do {
        out.insert(out.begin(), digits[value & 15]);
        value >>= 4;
    } while (value != 0);
    return out;
}

}  // namespace

posix_chunk_disk::posix_chunk_disk(std::string root_directory) : root_(std::move(root_directory)) {
    if (::mkdir(root_.c_str(), 0700) != 0 && errno != EEXIST) {
        fail("create root directory", root_, errno);
        return;
    }
    root_fd_ = retry_interrupted([&] { return ::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); });
    if (root_fd_ < 0) fail("open root directory", root_, errno);
}

posix_chunk_disk::~posix_chunk_disk() {
    if (root_fd_ >= 0) ::close(root_fd_);
}

posix_chunk_disk::posix_chunk_disk(posix_chunk_disk&& other) noexcept
    : root_(std::move(other.root_)),
      root_fd_(std::exchange(other.root_fd_, -1)),
      temporary_sequence_(other.temporary_sequence_),
      last_error_(std::move(other.last_error_)) {}

posix_chunk_disk& posix_chunk_disk::operator=(posix_chunk_disk&& other) noexcept {
    if (this != &other) {
        if (root_fd_ >= 0) ::close(root_fd_);
        root_ = std::move(other.root_);
        root_fd_ = std::exchange(other.root_fd_, -1);
        temporary_sequence_ = other.temporary_sequence_;
        last_error_ = std::move(other.last_error_);
    }
    return *this;
}

disk_status posix_chunk_disk::fail(std::string_view what, std::string_view name, int code) {
    last_error_.assign(what);
    last_error_ += ' ';
    last_error_ += name;
    last_error_ += ": ";
    last_error_ += std::strerror(code);
    return status_of(code);
}

disk_status posix_chunk_disk::sync_directory_of(std::string_view name) {
    const std::string parent = parent_of(name);
    const int fd =
        retry_interrupted([&] { return ::openat(root_fd_, parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); });
    if (fd < 0) return fail("open directory", parent, errno);
    const int result = retry_interrupted([&] { return ::fsync(fd); });
    const int code = errno;
    ::close(fd);
    if (result != 0) return fail("fsync directory", parent, code);
    return disk_status::ok;
}

disk_status posix_chunk_disk::write_durably(std::string_view name, std::span<const std::uint8_t> bytes,
                                            std::uint64_t token) {
    if (!is_open() || !valid_name(name)) return fail("write", name, is_open() ? EINVAL : EBADF);
    const std::string final_name(name);
    std::string temporary;
    int fd = -1;
    for (int attempt = 0; attempt < temporary_attempts_max && fd < 0; attempt++) {
        temporary = final_name + std::string(temporary_marker) + hex(static_cast<std::uint64_t>(::getpid())) + "-" +
                    hex(temporary_sequence_++);
        fd = retry_interrupted(
            [&] { return ::openat(root_fd_, temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600); });
        if (fd < 0 && errno != EEXIST) break;
    }
    if (fd < 0) return fail("create temporary for", name, errno);

    const char* step = nullptr;
    const struct timespec times[2] = {{0, UTIME_OMIT}, time_of(token)};
    struct stat status {};
    if (!write_all(fd, bytes)) {
        step = "write";
    } else if (::futimens(fd, times) != 0) {
        step = "set token on";
    } else if (::fstat(fd, &status) != 0) {
        step = "stat";
    } else if (token_of(status.st_mtim) != token) {
        step = "store token exactly on";  // the file system rounds timestamps
        errno = EINVAL;
    } else if (retry_interrupted([&] { return ::fsync(fd); }) != 0) {
        step = "fsync";
    }
    int code = errno;
    if (::close(fd) != 0 && step == nullptr) {  // close can report a deferred write error
        step = "close";
        code = errno;
    }
    if (step == nullptr && ::renameat(root_fd_, temporary.c_str(), root_fd_, final_name.c_str()) != 0) {
        step = "rename over";
        code = errno;
    }
    if (step != nullptr) {
        ::unlinkat(root_fd_, temporary.c_str(), 0);
        return fail(step, step[0] == 'r' ? final_name : temporary, code);
    }
    return sync_directory_of(name);
}

disk_status posix_chunk_disk::read(std::string_view name, std::size_t size_max, std::vector<std::uint8_t>& out) {
    out.clear();
    if (!is_open() || !valid_name(name)) return fail("read", name, is_open() ? EINVAL : EBADF);
    const std::string path(name);
    const int fd =
        retry_interrupted([&] { return ::openat(root_fd_, path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW); });
    if (fd < 0) return fail("open", name, errno);
    struct stat status {};
    disk_status result = disk_status::ok;
    if (::fstat(fd, &status) != 0) {
        result = fail("stat", name, errno);
    } else if (!S_ISREG(status.st_mode)) {
        result = fail("read", name, EISDIR);
    } else if (static_cast<std::uint64_t>(status.st_size) > size_max) {
        last_error_ = "read " + path + ": larger than " + std::to_string(size_max) + " bytes";
        result = disk_status::too_large;
    } else {
        out.resize(static_cast<std::size_t>(status.st_size));
        std::size_t total = 0;
        while (total < out.size()) {
            const ssize_t count = retry_interrupted([&] { return ::read(fd, out.data() + total, out.size() - total); });
            if (count < 0) {
                result = fail("read", name, errno);
                break;
            }
            if (count == 0) break;  // shrank since fstat: return what is there
            total += static_cast<std::size_t>(count);
        }
        out.resize(total);
        std::uint8_t probe = 0;
        if (result == disk_status::ok && retry_interrupted([&] { return ::read(fd, &probe, 1); }) != 0) {
            result = fail("read", name, EIO);  // grew (or failed) past the size fstat reported
        }
    }
    ::close(fd);
    if (result != disk_status::ok) out.clear();
    return result;
}

disk_status posix_chunk_disk::remove(std::string_view name) {
    if (!is_open() || !valid_name(name)) return fail("remove", name, is_open() ? EINVAL : EBADF);
    const std::string path(name);
    if (::unlinkat(root_fd_, path.c_str(), 0) != 0) return fail("remove", name, errno);
    return sync_directory_of(name);
}

disk_status posix_chunk_disk::rename(std::string_view from, std::string_view to) {
    if (!is_open() || !valid_name(from) || !valid_name(to)) {
        return fail("rename", from, is_open() ? EINVAL : EBADF);
    }
    const std::string source(from);
    const std::string target(to);
    if (::renameat(root_fd_, source.c_str(), root_fd_, target.c_str()) != 0) {
        return fail("rename", from, errno);
    }
    const disk_status synced = sync_directory_of(to);
    if (synced != disk_status::ok || parent_of(from) == parent_of(to)) return synced;
    return sync_directory_of(from);
}

disk_status posix_chunk_disk::list(std::string_view directory, std::vector<std::string>& out) {
    out.clear();
    if (!is_open() || !valid_name(directory)) {
        return fail("list", directory, is_open() ? EINVAL : EBADF);
    }
    const std::string path(directory);
    const int fd =
        retry_interrupted([&] { return ::openat(root_fd_, path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); });
    if (fd < 0) return fail("open directory", directory, errno);
    DIR* stream = ::fdopendir(fd);
    if (stream == nullptr) {
        const int code = errno;
        ::close(fd);
        return fail("open directory", directory, code);
    }
    disk_status result = disk_status::ok;
    for (;;) {
        errno = 0;
        const struct dirent* entry = ::readdir(stream);
        if (entry == nullptr) {
            if (errno != 0) result = fail("list", directory, errno);
            break;
        }
        bool regular = entry->d_type == DT_REG;
        if (entry->d_type == DT_UNKNOWN) {  // some file systems do not fill d_type
            struct stat status {};
            regular = ::fstatat(fd, entry->d_name, &status, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(status.st_mode);
        }
        if (regular) out.emplace_back(entry->d_name);
    }
    ::closedir(stream);  // closes fd too
    if (result != disk_status::ok) {
        out.clear();
        return result;
    }
    std::sort(out.begin(), out.end());
    return disk_status::ok;
}

disk_status posix_chunk_disk::stat(std::string_view name, toastyfs::disk_file_info& out) {
    out = {};
    if (!is_open() || !valid_name(name)) return fail("stat", name, is_open() ? EINVAL : EBADF);
    const std::string path(name);
    struct stat status {};
    if (::fstatat(root_fd_, path.c_str(), &status, AT_SYMLINK_NOFOLLOW) != 0) {
        return fail("stat", name, errno);
    }
    if (!S_ISREG(status.st_mode)) return fail("stat", name, EISDIR);
    out.exists = true;
    out.size = static_cast<std::uint64_t>(status.st_size);
    out.token = token_of(status.st_mtim);
    return disk_status::ok;
}

disk_status posix_chunk_disk::make_directory(std::string_view name) {
    if (!is_open() || !valid_name(name)) {
        return fail("make directory", name, is_open() ? EINVAL : EBADF);
    }
    const std::string path(name);
    if (::mkdirat(root_fd_, path.c_str(), 0700) != 0) {
        const int code = errno;
        struct stat status {};
        if (code != EEXIST) return fail("make directory", name, code);
        if (::fstatat(root_fd_, path.c_str(), &status, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(status.st_mode)) {
            return fail("make directory", name, EEXIST);
        }
    }
    // Also when it existed: a crash may have kept the directory but not yet its parent entry.
    return sync_directory_of(name);
}

disk_status posix_chunk_disk::free_bytes(std::uint64_t& out) {
    out = 0;
    if (!is_open()) return fail("statvfs", root_, EBADF);
    struct statvfs status {};
    if (retry_interrupted([&] { return ::fstatvfs(root_fd_, &status); }) != 0) {
        return fail("statvfs", root_, errno);
    }
    out = static_cast<std::uint64_t>(status.f_bavail) * status.f_frsize;
    return disk_status::ok;
}

std::uint64_t posix_chunk_disk::token_now() const noexcept {
    struct timespec now {};
    ::clock_gettime(CLOCK_REALTIME, &now);
    return token_of(now);
}

bool posix_chunk_disk::is_temporary(std::string_view file_name) noexcept {
    return file_name.find(temporary_marker) != std::string_view::npos;
}

}  // namespace platform
