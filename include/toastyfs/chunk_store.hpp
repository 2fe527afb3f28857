// toastyfs::chunk_store: a node's content-addressed chunk files, generic over the Disk policy
// (toastyfs::chunk_disk) and the Crypto policy (toastyfs::crypto). Synchronous and
// single-threaded: the chunk server thread owns it (production), or the simulator does.
//
// Layout under the disk's root:
//   chunks/<first 2 hex digits>/<64 hex digits>   one file per chunk, named by its SHA-256
//   quarantine/<64 hex digits>.<n>                 copies that failed verification, kept for
//                                                  forensics (at most quarantine_copies_max each)
// plus whatever temporaries the Disk makes (deleted by open()).
//
// Each chunk file carries a token (Disk's per-file version stamp). Every write hands out a fresh
// one, larger than any token this store handed out or found, and not smaller than disk.token_now().
// remove_if_unchanged() deletes only if the token is still the one the caller saw, so a chunk
// written again after a garbage collector listed it is never deleted by that collector.
//
// Memory: the index (about 100 bytes per chunk, at most chunks_max entries) is the only
// structure proportional to the number of chunks; at most one chunk's data is held at a time.
// Disk contents and caller inputs are never asserted on; the asserts guard our own invariants.
#pragma once

#include <algorithm>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <limits>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "toastyfs/chunk_disk.hpp"
#include "toastyfs/types.hpp"

namespace toastyfs {

enum class chunk_status : std::uint8_t {
    ok,
    not_found,       // read, remove_if_unchanged: no such chunk (or its file vanished)
    hash_mismatch,   // write: the data does not hash to the given name; nothing written
    too_large,       // write: more than chunk_size_max bytes; nothing written
    no_space,        // write: quota (bytes_max, chunks_max, free_bytes_min) or disk full
    io_error,        // the disk failed; the index follows what the disk reports afterwards
    corrupt,         // read: the file failed verification and was moved to quarantine
    token_mismatch,  // remove_if_unchanged: written since the caller saw it; not removed
};

constexpr const char* to_string(chunk_status status) noexcept {
    switch (status) {
        case chunk_status::ok: return "ok";
        case chunk_status::not_found: return "not_found";
        case chunk_status::hash_mismatch: return "hash_mismatch";
        case chunk_status::too_large: return "too_large";
        case chunk_status::no_space: return "no_space";
        case chunk_status::io_error: return "io_error";
        case chunk_status::corrupt: return "corrupt";
        case chunk_status::token_mismatch: return "token_mismatch";
    }
    return "unknown";
}

struct chunk_store_options {
    std::uint64_t chunk_size_max = std::uint64_t{64} << 20;
    std::uint64_t bytes_max = 0;              // quota on the sum of chunk sizes; 0: only the disk's
    std::uint64_t chunks_max = 1u << 24;      // index entries; open() fails if the disk holds more
    std::uint64_t free_bytes_min = 0;         // refuse a write that would leave less free on the
                                              // disk (0: do not ask the disk)
    std::uint32_t quarantine_copies_max = 8;  // per chunk; beyond, a corrupt file is deleted
};

struct chunk_entry {
    sha256_digest sha{};
    std::uint64_t size = 0;
    std::uint64_t token = 0;
    friend bool operator==(const chunk_entry&, const chunk_entry&) = default;
};

struct chunk_write_result {
    chunk_status status = chunk_status::ok;
    std::uint64_t token = 0;  // the chunk's new token when status is ok
};

struct scrub_result {
    std::uint64_t checked = 0;  // chunks read and verified (or found missing)
    std::uint64_t corrupt = 0;  // of those: quarantined, or missing and dropped from the index
    std::uint64_t io_errors = 0;
    std::uint64_t bytes = 0;  // sizes of the chunks checked
};

struct chunk_store_stats {
    std::uint64_t chunks = 0;
    std::uint64_t bytes_stored = 0;
    std::uint64_t bytes_max = 0;
    std::uint64_t quarantined = 0;              // files in quarantine: found at open plus moved there since
    std::uint64_t writes = 0;                   // successful
    std::uint64_t reads = 0;                    // read() of an indexed chunk
    std::uint64_t removes = 0;                  // successful remove_if_unchanged
    std::uint64_t corrupt_found = 0;            // by read or scrub: failed verification twice
    std::uint64_t missing_found = 0;            // indexed, but the file was gone
    std::uint64_t corrupt_reads_recovered = 0;  // failed verification once, then passed
    std::uint64_t io_errors = 0;
    std::uint64_t no_space = 0;
    std::uint64_t temporaries_removed = 0;  // by open
    std::uint64_t ignored_names = 0;        // by open: files in chunks/ that are not chunk names
};

namespace detail {

inline constexpr std::string_view chunks_directory = "chunks";
inline constexpr std::string_view quarantine_directory = "quarantine";
inline constexpr std::size_t fan_out = 256;

/// "chunks/ab" for the fan-out directory number `index` (0..255).
inline std::string fan_out_directory(std::size_t index) {
    assert(index < fan_out);
    const std::uint8_t byte = static_cast<std::uint8_t>(index);
    return std::string(chunks_directory) + "/" + to_hex(std::span<const std::uint8_t>(&byte, 1));
}

inline std::string chunk_path(const sha256_digest& sha) { return fan_out_directory(sha[0]) + "/" + to_hex(sha); }

inline std::string quarantine_path(const sha256_digest& sha, std::uint32_t copy) {
    return std::string(quarantine_directory) + "/" + to_hex(sha) + "." + std::to_string(copy);
}

/// The digest a file named `file_name` in fan-out directory `index` holds, if the name is one
/// the store writes: exactly 64 lower-case hex digits, starting with the directory's two.
inline std::optional<sha256_digest> parse_chunk_name(std::string_view file_name, std::size_t index) {
    const std::optional<sha256_digest> sha = from_hex<32>(file_name);
    if (!sha || (*sha)[0] != index || to_hex(*sha) != file_name) return std::nullopt;
    return sha;
}

}  // namespace detail

template <chunk_disk Disk, crypto Crypto>
class chunk_store {
public:
    /// The store uses `disk` (which must outlive it) and nothing else. Call open() first.
    explicit chunk_store(Disk& disk, chunk_store_options options = {}) noexcept : disk_(disk), options_(options) {
        assert(options_.quarantine_copies_max > 0);
    }

    /// Creates the directories, deletes leftover temporaries, and indexes every chunk file (by
    /// name, size and token: nothing is verified here; scrub() does that). Files whose names are
    /// not chunk names are counted and left alone. False (with `error`) if a directory cannot be
    /// made or listed, or the disk holds more than chunks_max chunks. May be called again to
    /// re-read the disk.
    bool open(std::string& error) {
        index_.clear();
        bytes_stored_ = 0;
        token_last_ = 0;
        scrub_cursor_.reset();
        stats_ = {};
        opened_ = false;
        for (const std::string_view directory : {detail::chunks_directory, detail::quarantine_directory}) {
            if (const disk_status status = disk_.make_directory(directory); status != disk_status::ok) {
                return failed(error, "make directory", directory, status);
            }
        }
        std::vector<std::string> names;
        for (std::size_t index = 0; index < detail::fan_out; index++) {
            if (!open_fan_out_directory(index, names, error)) return false;
        }
        const disk_status status = disk_.list(detail::quarantine_directory, names);
        if (status != disk_status::ok) {
            return failed(error, "list", detail::quarantine_directory, status);
        }
        stats_.quarantined = names.size();
        opened_ = true;
        return true;
    }

    /// Stores `data` as chunk `sha`, durably, with a fresh token. Writes even if the chunk is
    /// already there (that repairs a rotten copy). Statuses: ok, hash_mismatch, too_large,
    /// no_space, io_error.
    chunk_write_result write(const sha256_digest& sha, std::span<const std::uint8_t> data) {
        assert(opened_);
        if (data.size() > options_.chunk_size_max) return {chunk_status::too_large, 0};
        if (Crypto::sha256(data) != sha) return {chunk_status::hash_mismatch, 0};
        const auto found = index_.find(sha);
        const std::uint64_t size_old = found == index_.end() ? 0 : found->second.size;
        if (!has_room(found == index_.end(), size_old, data.size())) {
            stats_.no_space++;
            return {chunk_status::no_space, 0};
        }
        if (token_last_ == std::numeric_limits<std::uint64_t>::max()) return io_failure(sha);
        const std::uint64_t token = std::max(token_last_ + 1, disk_.token_now());
        token_last_ = token;  // even if the write fails: it may have reached the disk
        const std::string path = detail::chunk_path(sha);
        disk_status status = disk_.write_durably(path, data, token);
        if (status == disk_status::not_found &&
            disk_.make_directory(detail::fan_out_directory(sha[0])) == disk_status::ok) {
            status = disk_.write_durably(path, data, token);
        }
        if (status == disk_status::no_space) {
            stats_.no_space++;
            return {chunk_status::no_space, 0};
        }
        if (status != disk_status::ok) return io_failure(sha);
        set_entry(sha, data.size(), token);
        stats_.writes++;
        return {chunk_status::ok, token};
    }

    /// Replaces `out` with chunk `sha`, verified: its SHA-256 is checked on every read. A file
    /// that fails verification twice (a second read rules out a fault on the way) is moved to
    /// quarantine and dropped from the index. Statuses: ok, not_found, corrupt, io_error.
    chunk_status read(const sha256_digest& sha, std::vector<std::uint8_t>& out) {
        assert(opened_);
        out.clear();
        const auto found = index_.find(sha);
        if (found == index_.end()) return chunk_status::not_found;
        stats_.reads++;
        const chunk_status status = verify(found, out);
        if (status != chunk_status::ok) out.clear();
        return status;
    }

    /// Deletes chunk `sha` if its token is still `token`. Statuses: ok, not_found,
    /// token_mismatch, io_error.
    chunk_status remove_if_unchanged(const sha256_digest& sha, std::uint64_t token) {
        assert(opened_);
        const auto found = index_.find(sha);
        if (found == index_.end()) return chunk_status::not_found;
        if (found->second.token != token) return chunk_status::token_mismatch;
        const disk_status status = disk_.remove(detail::chunk_path(sha));
        if (status == disk_status::ok || status == disk_status::not_found) {
            erase_entry(found);
            if (status == disk_status::ok) stats_.removes++;
            return status == disk_status::ok ? chunk_status::ok : chunk_status::not_found;
        }
        return io_failure(sha).status;
    }

    /// Replaces `out` with up to `count_max` entries in ascending SHA order, starting after
    /// `after` (from the first chunk if nullopt). Fewer than count_max: the listing is complete.
    void inventory(const std::optional<sha256_digest>& after, std::size_t count_max,
                   std::vector<chunk_entry>& out) const {
        assert(opened_);
        out.clear();
        auto it = after ? index_.upper_bound(*after) : index_.begin();
        for (; it != index_.end() && out.size() < count_max; ++it) {
            out.push_back(chunk_entry{it->first, it->second.size, it->second.token});
        }
        assert(out.size() <= count_max);
    }

    /// Verifies chunks in SHA order, resuming after the last one the previous call checked and
    /// wrapping around, until their sizes add up to `bytes_budget` (at least one chunk, at most
    /// every chunk once). Corrupt files go to quarantine; missing ones leave the index.
    scrub_result scrub(std::uint64_t bytes_budget) {
        assert(opened_);
        scrub_result result;
        const std::size_t chunks = index_.size();
        auto it = scrub_cursor_ ? index_.upper_bound(*scrub_cursor_) : index_.begin();
        std::vector<std::uint8_t> buffer;
        while (result.checked < chunks && (result.checked == 0 || result.bytes < bytes_budget)) {
            if (it == index_.end()) it = index_.begin();
            if (it == index_.end()) break;  // everything checked so far was dropped
            const auto next = std::next(it);
            scrub_cursor_ = it->first;
            result.checked++;
            result.bytes += it->second.size;
            const chunk_status status = verify(it, buffer);  // may erase `it`, never `next`
            if (status == chunk_status::corrupt || status == chunk_status::not_found) {
                result.corrupt++;
            }
            if (status == chunk_status::io_error) result.io_errors++;
            it = next;
        }
        assert(result.checked <= chunks);
        return result;
    }

    bool has(const sha256_digest& sha) const { return index_.contains(sha); }

    std::optional<chunk_entry> find(const sha256_digest& sha) const {
        const auto found = index_.find(sha);
        if (found == index_.end()) return std::nullopt;
        return chunk_entry{sha, found->second.size, found->second.token};
    }

    chunk_store_stats stats() const noexcept {
        chunk_store_stats stats = stats_;
        stats.chunks = index_.size();
        stats.bytes_stored = bytes_stored_;
        stats.bytes_max = options_.bytes_max;
        return stats;
    }

    const chunk_store_options& options() const noexcept { return options_; }

private:
    struct index_entry {
        std::uint64_t size = 0;
        std::uint64_t token = 0;
    };
    using index_map = std::map<sha256_digest, index_entry>;

    static bool failed(std::string& error, std::string_view what, std::string_view name, disk_status status) {
        error = std::string(what) + " " + std::string(name) + ": " + to_string(status);
        return false;
    }

    bool open_fan_out_directory(std::size_t index, std::vector<std::string>& names, std::string& error) {
        const std::string directory = detail::fan_out_directory(index);
        const disk_status listed = disk_.list(directory, names);
        if (listed == disk_status::not_found) return true;  // made on the first write into it
        if (listed != disk_status::ok) return failed(error, "list", directory, listed);
        for (const std::string& name : names) {
            const std::string path = directory + "/" + name;
            if (Disk::is_temporary(name)) {
                const disk_status removed = disk_.remove(path);
                if (removed == disk_status::ok) stats_.temporaries_removed++;
                if (removed != disk_status::ok && removed != disk_status::not_found) {
                    stats_.io_errors++;
                }
                continue;
            }
            const std::optional<sha256_digest> sha = detail::parse_chunk_name(name, index);
            if (!sha) {
                stats_.ignored_names++;
                continue;
            }
            disk_file_info info;
            const disk_status status = disk_.stat(path, info);
            if (status == disk_status::not_found) continue;  // vanished since the listing
            if (status != disk_status::ok) {
                stats_.io_errors++;  // left out of the index; a later write or open brings it back
                continue;
            }
            if (index_.size() >= options_.chunks_max) {
                error = "more than chunks_max (" + std::to_string(options_.chunks_max) + ") chunks on disk";
                return false;
            }
            set_entry(*sha, info.size, info.token);
            token_last_ = std::max(token_last_, info.token);
        }
        return true;
    }

    bool has_room(bool is_new, std::uint64_t size_old, std::uint64_t size_new) {
        if (is_new && index_.size() >= options_.chunks_max) return false;
        assert(bytes_stored_ >= size_old);
        if (options_.bytes_max != 0 && bytes_stored_ - size_old + size_new > options_.bytes_max) {
            return false;
        }
        if (options_.free_bytes_min == 0) return true;
        std::uint64_t free = 0;
        if (disk_.free_bytes(free) != disk_status::ok) return false;  // cannot tell: refuse
        return free >= options_.free_bytes_min && free - options_.free_bytes_min >= size_new;
    }

    // Reads and checks one indexed chunk into `buffer`; drops it from the index if it is bad.
    chunk_status verify(typename index_map::iterator entry, std::vector<std::uint8_t>& buffer) {
        const std::string path = detail::chunk_path(entry->first);
        for (int attempt = 0; attempt < 2; attempt++) {
            const disk_status status = disk_.read(path, options_.chunk_size_max, buffer);
            if (status == disk_status::not_found) {
                stats_.missing_found++;
                erase_entry(entry);
                return chunk_status::not_found;
            }
            if (status == disk_status::io_error || status == disk_status::no_space) {
                stats_.io_errors++;
                return chunk_status::io_error;
            }
            if (status == disk_status::ok && buffer.size() == entry->second.size &&
                Crypto::sha256(buffer) == entry->first) {
                if (attempt > 0) stats_.corrupt_reads_recovered++;
                return chunk_status::ok;
            }
        }
        buffer.clear();
        quarantine(entry);
        return chunk_status::corrupt;
    }

    // Moves a file that failed verification out of chunks/ (deletes it if this chunk already has
    // quarantine_copies_max copies there, or the move fails) and drops it from the index.
    void quarantine(typename index_map::iterator entry) {
        const sha256_digest sha = entry->first;
        const std::string path = detail::chunk_path(sha);
        stats_.corrupt_found++;
        erase_entry(entry);
        for (std::uint32_t copy = 0; copy < options_.quarantine_copies_max; copy++) {
            const std::string target = detail::quarantine_path(sha, copy);
            disk_file_info info;
            const disk_status exists = disk_.stat(target, info);
            if (exists == disk_status::ok) continue;
            if (exists == disk_status::not_found && disk_.rename(path, target) == disk_status::ok) {
                stats_.quarantined++;
                return;
            }
            break;
        }
        const disk_status removed = disk_.remove(path);
        if (removed != disk_status::ok && removed != disk_status::not_found) stats_.io_errors++;
    }

    // After a failed write or remove: the index follows whatever the disk now holds.
    chunk_write_result io_failure(const sha256_digest& sha) {
        stats_.io_errors++;
        disk_file_info info;
        const disk_status status = disk_.stat(detail::chunk_path(sha), info);
        const auto found = index_.find(sha);
        if (status == disk_status::ok) {
            set_entry(sha, info.size, info.token);
            token_last_ = std::max(token_last_, info.token);
        } else if (status == disk_status::not_found && found != index_.end()) {
            erase_entry(found);
        }
        return {chunk_status::io_error, 0};
    }

    void set_entry(const sha256_digest& sha, std::uint64_t size, std::uint64_t token) {
        auto [it, inserted] = index_.try_emplace(sha);
        if (!inserted) {
            assert(bytes_stored_ >= it->second.size);
            bytes_stored_ -= it->second.size;
        }
        it->second = index_entry{size, token};
        bytes_stored_ += size;
        assert(index_.size() <= options_.chunks_max || !inserted);
    }

    void erase_entry(typename index_map::iterator entry) {
        assert(bytes_stored_ >= entry->second.size);
        bytes_stored_ -= entry->second.size;
        index_.erase(entry);
    }

    Disk& disk_;
    chunk_store_options options_;
    index_map index_;
    std::uint64_t bytes_stored_ = 0;  // sum of the index's sizes
    std::uint64_t token_last_ = 0;    // largest token handed out or found
    std::optional<sha256_digest> scrub_cursor_;
    chunk_store_stats stats_;
    bool opened_ = false;
};

}  // namespace toastyfs
