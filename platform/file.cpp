#include "platform/file.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

namespace platform {

namespace {

bool fail(std::string& error, const std::string& what, const std::string& path, int code) {
    error = what + " " + path + ": " + std::strerror(code);
    return false;
}

// The directory holding `path`, where the temporary file must live for rename to be atomic.
std::string directory_of(const std::string& path) {
    const std::size_t slash = path.rfind('/');
    if (slash == std::string::npos) return ".";
    if (slash == 0) return "/";
    return path.substr(0, slash);
}

bool write_all(int fd, std::span<const std::uint8_t> data) {
    std::size_t written = 0;
    while (written < data.size()) {
        const ssize_t count = ::write(fd, data.data() + written, data.size() - written);
        if (count < 0 && errno == EINTR) continue;
        if (count <= 0) {
            if (count == 0) errno = EIO;  // never loop on a write that makes no progress
            return false;
        }
        written += static_cast<std::size_t>(count);
    }
    return true;
}

bool fsync_directory(const std::string& directory, std::string& error) {
    const int fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return fail(error, "open directory", directory, errno);
    const bool ok = ::fsync(fd) == 0;
    const int code = errno;
    ::close(fd);
    return ok || fail(error, "fsync directory", directory, code);
}

}  // namespace

bool write_file_atomically(const std::string& path, std::span<const std::uint8_t> data, std::string& error) {
    if (path.empty() || path.back() == '/') return fail(error, "write", path, EINVAL);
    std::string temporary = path + ".tmp.XXXXXX";
    const int fd = ::mkostemp(temporary.data(), O_CLOEXEC);
    if (fd < 0) return fail(error, "create temporary for", path, errno);

    const char* step = nullptr;
    if (!write_all(fd, data)) {
        step = "write";
    } else if (::fsync(fd) != 0) {
        step = "fsync";
    }
    int code = errno;
    if (::close(fd) != 0 && step == nullptr) {  // close can report a deferred write error
        step = "close";
        code = errno;
    }
    if (step == nullptr && ::rename(temporary.c_str(), path.c_str()) != 0) {
        step = "rename over";
        code = errno;
    }
    if (step != nullptr) {
        ::unlink(temporary.c_str());
        return fail(error, step, step[0] == 'r' ? path : temporary, code);
    }
    return fsync_directory(directory_of(path), error);
}

bool read_file(const std::string& path, std::size_t size_max, std::vector<std::uint8_t>& out, std::string& error) {
    out.clear();
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fail(error, "open", path, errno);
    struct stat status {};
    if (::fstat(fd, &status) != 0) {
        const int code = errno;
        ::close(fd);
        return fail(error, "stat", path, code);
    }
    if (!S_ISREG(status.st_mode)) {
        ::close(fd);
        error = "read " + path + ": not a regular file";
        return false;
    }
    const auto size = static_cast<std::size_t>(status.st_size);
    if (size > size_max) {
        ::close(fd);
        error = "read " + path + ": " + std::to_string(size) + " bytes is more than the limit of " +
                std::to_string(size_max);
        return false;
    }
    // One byte of headroom detects a file that grew past the limit after fstat.
    const std::size_t read_max = size_max == std::numeric_limits<std::size_t>::max() ? size_max : size_max + 1;
    out.resize(std::min(size + 1, read_max));
    std::size_t total = 0;
    for (;;) {
        if (total == out.size()) {
            if (total > size_max) break;
            out.resize(std::min(read_max, std::max<std::size_t>(total * 2, 4096)));
        }
        const ssize_t count = ::read(fd, out.data() + total, out.size() - total);
        if (count < 0 && errno == EINTR) continue;
        if (count < 0) {
            const int code = errno;
            ::close(fd);
            out.clear();
            return fail(error, "read", path, code);
        }
        if (count == 0) break;
        total += static_cast<std::size_t>(count);
    }
    ::close(fd);
    if (total > size_max) {
        out.clear();
        error = "read " + path + ": grew past the limit of " + std::to_string(size_max) + " bytes";
        return false;
    }
    out.resize(total);
    return true;
}

bool make_directories(const std::string& path, std::string& error) {
    for (std::size_t at = 1; at <= path.size(); ++at) {
        if (at != path.size() && path[at] != '/') continue;
        const std::string prefix = path.substr(0, at);
        if (::mkdir(prefix.c_str(), 0700) != 0 && errno != EEXIST) return fail(error, "cannot create", prefix, errno);
    }
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return fail(error, "cannot find", path, errno);
    if (!S_ISDIR(st.st_mode)) return fail(error, "not a directory:", path, ENOTDIR);
    return true;
}

}  // namespace platform
