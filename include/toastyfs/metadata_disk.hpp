// The files under the metadata store: a flat directory of byte arrays addressed by offset.
//
// The metadata state machine keeps its state in SQLite (toastyfs/metadata_store.hpp), and SQLite
// reaches its files only through toastyfs/sqlite_vfs.hpp, which calls this interface. So one
// SQLite, one schema and one set of statements run everywhere; what differs is the disk:
// platform::posix_metadata_disk (pread/pwrite/fdatasync), memory_metadata_disk (below: tests,
// tools, a default-constructed machine) and sim::sim_metadata_disk (crashes and faults).
//
// It is an interface with virtual calls, not a concept, because SQLite's VFS is a table of C
// function pointers: the bridge must reach the disk through a pointer it does not know the type of.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace toastyfs {

enum class metadata_io : std::uint8_t {
    ok,
    not_found,  // open without create, remove or rename of a file that is not there
    no_space,   // the disk is full; nothing was written
    io_error,   // the device failed
};

/// One open file. Calls never throw for an I/O failure.
/// - read(offset, out): fills `out`; bytes past the end read as zero and `read` says how many
///   were really there.
/// - write(offset, bytes): visible to read() at once, durable only after sync(). Writing past the
///   end extends the file (a gap reads as zero).
/// - truncate(size), size(out), sync(): as their names say; sync() makes every write and
///   truncate before it durable.
class metadata_file {
public:
    virtual ~metadata_file() = default;
    virtual metadata_io read(std::uint64_t offset, std::span<std::uint8_t> out, std::size_t& read) = 0;
    virtual metadata_io write(std::uint64_t offset, std::span<const std::uint8_t> bytes) = 0;
    virtual metadata_io truncate(std::uint64_t size) = 0;
    virtual metadata_io size(std::uint64_t& out) = 0;
    virtual metadata_io sync() = 0;
};

/// A directory of files named by plain names (no '/'). remove() and rename() are durable when
/// they return ok (the directory is synced); a file created by open() is durable once it has
/// been synced. rename() replaces `to` atomically: after a crash `to` is either the old file or
/// the new one.
class metadata_disk {
public:
    virtual ~metadata_disk() = default;
    virtual std::unique_ptr<metadata_file> open(std::string_view name, bool create, metadata_io& status) = 0;
    virtual metadata_io remove(std::string_view name) = 0;
    virtual metadata_io rename(std::string_view from, std::string_view to) = 0;
    virtual bool exists(std::string_view name) = 0;
};

/// Files in memory, durable by definition (there is no crash to survive). Each open file shares
/// its bytes with the directory, so a file reopened sees what was written.
class memory_metadata_disk final : public metadata_disk {
public:
    std::unique_ptr<metadata_file> open(std::string_view name, bool create, metadata_io& status) override {
        auto it = files_.find(name);
        if (it == files_.end()) {
            if (!create) {
                status = metadata_io::not_found;
                return nullptr;
            }
            it = files_.emplace(std::string(name), std::make_shared<std::vector<std::uint8_t>>()).first;
        }
        status = metadata_io::ok;
        return std::make_unique<file>(it->second);
    }
    metadata_io remove(std::string_view name) override {
        const auto it = files_.find(name);
        if (it == files_.end()) return metadata_io::not_found;
        files_.erase(it);
        return metadata_io::ok;
    }
    metadata_io rename(std::string_view from, std::string_view to) override {
        const auto it = files_.find(from);
        if (it == files_.end()) return metadata_io::not_found;
        auto bytes = it->second;
        files_.erase(it);
        files_.insert_or_assign(std::string(to), std::move(bytes));
        return metadata_io::ok;
    }
    bool exists(std::string_view name) override { return files_.find(name) != files_.end(); }

    /// Bytes held in all files (tests and tools).
    std::uint64_t bytes_stored() const noexcept {
        std::uint64_t total = 0;
        for (const auto& [name, bytes] : files_) total += bytes->size();
        return total;
    }

private:
    using bytes_pointer = std::shared_ptr<std::vector<std::uint8_t>>;

    class file final : public metadata_file {
    public:
        explicit file(bytes_pointer bytes) : bytes_(std::move(bytes)) {}
        metadata_io read(std::uint64_t offset, std::span<std::uint8_t> out, std::size_t& read) override {
            read = offset >= bytes_->size() ? 0 : std::min<std::uint64_t>(out.size(), bytes_->size() - offset);
            if (read > 0) std::memcpy(out.data(), bytes_->data() + offset, read);
            std::fill(out.begin() + static_cast<std::ptrdiff_t>(read), out.end(), std::uint8_t{0});
            return metadata_io::ok;
        }
        metadata_io write(std::uint64_t offset, std::span<const std::uint8_t> bytes) override {
            if (offset + bytes.size() > bytes_->size()) bytes_->resize(offset + bytes.size());
            if (!bytes.empty()) std::memcpy(bytes_->data() + offset, bytes.data(), bytes.size());
            return metadata_io::ok;
        }
        metadata_io truncate(std::uint64_t size) override {
            bytes_->resize(size);
            return metadata_io::ok;
        }
        metadata_io size(std::uint64_t& out) override {
            out = bytes_->size();
            return metadata_io::ok;
        }
        metadata_io sync() override { return metadata_io::ok; }

    private:
        bytes_pointer bytes_;  // shared with the directory: the file may be removed while open
    };

    std::map<std::string, bytes_pointer, std::less<>> files_;
};

}  // namespace toastyfs
