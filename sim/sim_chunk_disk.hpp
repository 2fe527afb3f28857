// sim::sim_chunk_disk: an in-memory Disk policy (toastyfs::chunk_disk) for the deterministic
// simulator, with injected faults. Header-only.
//
// The disk keeps two views of every file: what calls see now ("visible") and what would survive
// a crash ("durable"). A correct disk keeps them equal after every call; the faults make them
// differ, and crash() makes the durable view the visible one:
// - lost write: write_durably reports ok, but the durable view keeps the old file (or none).
// - torn write: the durable view gets a truncated or garbled copy under the final name.
// - leftover temporary: the crash leaves a partial temporary next to the file.
// - bit flip at rest: one bit of the stored copy (both views) flips as it is written.
// - bit flip on read: one bit of the returned copy flips; the stored copy is fine.
// - EIO on read, write (write_durably and rename) and remove: the call fails, nothing changes.
// - capacity: writes that would take used bytes past it fail with no_space.
// Every random choice comes from the disk's own PRNG, seeded by the caller, and is only drawn
// when its fault is enabled, so a run is a function of (seed, faults, calls).
#pragma once

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <limits>
#include <map>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "toastyfs/chunk_disk.hpp"
#include "vsr/random.hpp"

namespace sim {

/// Fault switches and probabilities, per call, in 1/1000 (0 = never, 1000 = always).
struct chunk_disk_faults {
    std::uint32_t bit_flip_at_rest_per_mille = 0;    // per write_durably
    std::uint32_t bit_flip_on_read_per_mille = 0;    // per read
    std::uint32_t lost_write_per_mille = 0;          // per write_durably
    std::uint32_t torn_write_per_mille = 0;          // per write_durably (if not lost)
    std::uint32_t leftover_temporary_per_mille = 0;  // per write_durably
    std::uint32_t read_error_per_mille = 0;          // read
    std::uint32_t write_error_per_mille = 0;         // write_durably, rename
    std::uint32_t remove_error_per_mille = 0;        // remove
    std::uint64_t capacity_bytes = std::numeric_limits<std::uint64_t>::max();
};

/// How many of each fault were injected (and how many crashes happened).
struct chunk_disk_counters {
    std::uint64_t bit_flips_at_rest = 0;
    std::uint64_t bit_flips_on_read = 0;
    std::uint64_t lost_writes = 0;
    std::uint64_t torn_writes = 0;
    std::uint64_t leftover_temporaries = 0;
    std::uint64_t read_errors = 0;
    std::uint64_t write_errors = 0;
    std::uint64_t remove_errors = 0;
    std::uint64_t no_space = 0;
    std::uint64_t crashes = 0;
    std::uint64_t wipes = 0;
};

enum class crash_kind : std::uint8_t {
    keep_disk,  // the process dies: non-durable state is lost as the faults decided
    wipe_disk,  // the disk is replaced: everything is gone, directories included
};

/// The faults that hit one file name, for checkers: is a copy the product reports as corrupt
/// really damaged by an injected fault?
struct file_faults {
    bool damaged_at_rest = false;  // the stored bytes differ from what was written (flip, rot, torn)
    std::uint64_t read_flips = 0;  // reads that returned a flipped copy (the stored copy is fine)
};

struct sim_file {
    std::vector<std::uint8_t> bytes;
    std::uint64_t token = 0;
    friend bool operator==(const sim_file&, const sim_file&) = default;
};

class sim_chunk_disk {
public:
    explicit sim_chunk_disk(std::uint64_t seed, chunk_disk_faults faults = {}) : random_(seed), faults_(faults) {}

    /// The switches; change them at any time.
    chunk_disk_faults& faults() noexcept { return faults_; }
    const chunk_disk_counters& counters() const noexcept { return counters_; }
    /// The faults that hit the last content written (or renamed) to `name`; kept after a remove
    /// or a rename away, until the next write.
    file_faults faults_hit(std::string_view name) const {
        const auto found = hits_.find(name);
        return found == hits_.end() ? file_faults{} : found->second;
    }

    // The chunk_disk requirements (see include/toastyfs/chunk_disk.hpp).

    toastyfs::disk_status write_durably(std::string_view name, std::span<const std::uint8_t> bytes,
                                        std::uint64_t token) {
        if (!directory_exists(parent_of(name))) return toastyfs::disk_status::not_found;
        if (roll(faults_.write_error_per_mille)) return error(counters_.write_errors);
        const auto old = visible_.find(name);
        const std::uint64_t old_size = old == visible_.end() ? 0 : old->second.bytes.size();
        // Like a real file system: the temporary needs room while the old file still exists.
        if (used_bytes_ > faults_.capacity_bytes || bytes.size() > faults_.capacity_bytes - used_bytes_) {
            counters_.no_space++;
            return toastyfs::disk_status::no_space;
        }
        sim_file file{{bytes.begin(), bytes.end()}, token};
        hits_[std::string(name)] = file_faults{};
        if (!file.bytes.empty() && roll(faults_.bit_flip_at_rest_per_mille)) {
            flip_random_bit(file.bytes);
            counters_.bit_flips_at_rest++;
            hits_[std::string(name)].damaged_at_rest = true;
        }
        if (roll(faults_.leftover_temporary_per_mille)) {
            const std::string temporary =
                std::string(name) + std::string(temporary_marker) + std::to_string(temporary_sequence_++);
            durable_[temporary] = sim_file{torn_copy(file.bytes), token};
            counters_.leftover_temporaries++;
        }
        if (roll(faults_.lost_write_per_mille)) {
            counters_.lost_writes++;  // the durable view keeps whatever it had
        } else if (roll(faults_.torn_write_per_mille)) {
            durable_[std::string(name)] = sim_file{torn_copy(file.bytes), token};
            counters_.torn_writes++;
        } else {
            durable_[std::string(name)] = file;
        }
        used_bytes_ = used_bytes_ - old_size + file.bytes.size();
        visible_[std::string(name)] = std::move(file);
        return toastyfs::disk_status::ok;
    }

    toastyfs::disk_status read(std::string_view name, std::size_t size_max, std::vector<std::uint8_t>& out) {
        out.clear();
        const auto found = visible_.find(name);
        if (found == visible_.end()) return toastyfs::disk_status::not_found;
        if (roll(faults_.read_error_per_mille)) return error(counters_.read_errors);
        if (found->second.bytes.size() > size_max) return toastyfs::disk_status::too_large;
        out = found->second.bytes;
        if (!out.empty() && roll(faults_.bit_flip_on_read_per_mille)) {
            flip_random_bit(out);
            counters_.bit_flips_on_read++;
            hits_[std::string(name)].read_flips++;
        }
        return toastyfs::disk_status::ok;
    }

    toastyfs::disk_status remove(std::string_view name) {
        const auto found = visible_.find(name);
        if (found == visible_.end()) return toastyfs::disk_status::not_found;
        if (roll(faults_.remove_error_per_mille)) return error(counters_.remove_errors);
        used_bytes_ -= found->second.bytes.size();
        visible_.erase(found);
        durable_.erase(std::string(name));
        return toastyfs::disk_status::ok;
    }

    toastyfs::disk_status rename(std::string_view from, std::string_view to) {
        const auto found = visible_.find(from);
        if (found == visible_.end() || !directory_exists(parent_of(to))) {
            return toastyfs::disk_status::not_found;
        }
        if (roll(faults_.write_error_per_mille)) return error(counters_.write_errors);
        sim_file file = std::move(found->second);
        visible_.erase(found);
        if (const auto replaced = visible_.find(to); replaced != visible_.end()) {
            used_bytes_ -= replaced->second.bytes.size();
        }
        visible_[std::string(to)] = std::move(file);
        hits_[std::string(to)] = faults_hit(from);
        // Durable: `to` becomes whatever `from` durably was (nothing, after a lost write).
        const auto durable_from = durable_.find(from);
        if (durable_from == durable_.end()) {
            durable_.erase(std::string(to));
        } else {
            sim_file durable_file = std::move(durable_from->second);
            durable_.erase(durable_from);
            durable_[std::string(to)] = std::move(durable_file);
        }
        return toastyfs::disk_status::ok;
    }

    toastyfs::disk_status list(std::string_view directory, std::vector<std::string>& out) {
        out.clear();
        if (!directory_exists(directory)) return toastyfs::disk_status::not_found;
        const std::string prefix = directory.empty() ? std::string() : std::string(directory) + "/";
        for (auto it = visible_.lower_bound(prefix); it != visible_.end(); ++it) {
            const std::string_view name = it->first;
            if (name.substr(0, prefix.size()) != prefix) break;
            const std::string_view file_name = name.substr(prefix.size());
            if (file_name.find('/') == std::string_view::npos) out.emplace_back(file_name);
        }
        return toastyfs::disk_status::ok;  // sorted: the map is
    }

    toastyfs::disk_status stat(std::string_view name, toastyfs::disk_file_info& out) {
        out = {};
        const auto found = visible_.find(name);
        if (found == visible_.end()) return toastyfs::disk_status::not_found;
        out = {true, found->second.bytes.size(), found->second.token};
        return toastyfs::disk_status::ok;
    }

    toastyfs::disk_status make_directory(std::string_view name) {
        if (name.empty() || !directory_exists(parent_of(name))) {
            return toastyfs::disk_status::not_found;
        }
        directories_.emplace(name);
        return toastyfs::disk_status::ok;
    }

    toastyfs::disk_status free_bytes(std::uint64_t& out) {
        out = faults_.capacity_bytes > used_bytes_ ? faults_.capacity_bytes - used_bytes_ : 0;
        return toastyfs::disk_status::ok;
    }

    /// Simulated time in token units: the value set by set_token_now(), advancing by one per call.
    std::uint64_t token_now() noexcept { return token_now_++; }

    static bool is_temporary(std::string_view file_name) noexcept {
        return file_name.find(temporary_marker) != std::string_view::npos;
    }

    static constexpr std::string_view temporary_marker = ".tmp-sim-";

    // Simulator controls.

    /// A crash of the process using the disk: the visible view becomes the durable one.
    void crash(crash_kind kind) {
        if (kind == crash_kind::wipe_disk) {
            durable_.clear();
            directories_.clear();
            hits_.clear();
            counters_.wipes++;
        }
        counters_.crashes++;
        // A copy whose durable bytes differ (torn write) comes back damaged.
        for (const auto& [name, file] : durable_) {
            const auto seen = visible_.find(name);
            if (seen == visible_.end() || seen->second.bytes != file.bytes) hits_[name].damaged_at_rest = true;
        }
        visible_ = durable_;
        used_bytes_ = 0;
        for (const auto& [name, file] : visible_) used_bytes_ += file.bytes.size();
    }

    void set_token_now(std::uint64_t token) noexcept { token_now_ = token; }

    /// Flips bit `bit` of the stored copy of `name` (both views): silent corruption at rest.
    /// False if there is no such file or bit.
    bool flip_bit(std::string_view name, std::uint64_t bit) {
        const auto found = visible_.find(name);
        if (found == visible_.end() || bit >= found->second.bytes.size() * 8) return false;
        const auto flip = [bit](sim_file& file) {
            if (bit < file.bytes.size() * 8) {
                file.bytes[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
            }
        };
        const bool same = durable_.contains(std::string(name)) && durable_.find(name)->second == found->second;
        flip(found->second);
        if (same) flip(durable_.find(name)->second);
        counters_.bit_flips_at_rest++;
        hits_[std::string(name)].damaged_at_rest = true;
        return true;
    }

    /// Flips one random bit of one random non-empty file (both views when they agree): rot at
    /// rest over time. Returns the file's name, or "" if no file has a byte to flip.
    std::string rot() {
        std::vector<const std::string*> candidates;
        for (const auto& [name, file] : visible_) {
            if (!file.bytes.empty()) candidates.push_back(&name);
        }
        if (candidates.empty()) return {};
        const std::string name = *candidates[vsr::uniform_below(random_, candidates.size())];
        const std::uint64_t bits = visible_.find(name)->second.bytes.size() * 8;
        const bool flipped = flip_bit(name, vsr::uniform_below(random_, bits));
        assert(flipped);
        (void)flipped;
        return name;
    }

    /// Puts a file in place durably, bypassing faults and capacity, making its directories (tests:
    /// garbage names, leftover temporaries, copies from elsewhere).
    void plant(std::string_view name, std::vector<std::uint8_t> bytes, std::uint64_t token) {
        for (std::string_view parent = parent_of(name); !parent.empty(); parent = parent_of(parent)) {
            directories_.emplace(parent);
        }
        const auto old = visible_.find(name);
        if (old != visible_.end()) used_bytes_ -= old->second.bytes.size();
        used_bytes_ += bytes.size();
        sim_file file{std::move(bytes), token};
        durable_[std::string(name)] = file;
        visible_[std::string(name)] = std::move(file);
        hits_[std::string(name)] = file_faults{};  // not a fault
    }

    /// For checkers: every file as calls see it now, and as a crash would leave it. No faults.
    const std::map<std::string, sim_file, std::less<>>& files() const noexcept { return visible_; }
    const std::map<std::string, sim_file, std::less<>>& durable_files() const noexcept { return durable_; }
    bool directory_exists(std::string_view name) const { return name.empty() || directories_.contains(name); }
    std::uint64_t used_bytes() const noexcept { return used_bytes_; }

private:
    static std::string_view parent_of(std::string_view name) noexcept {
        const std::size_t slash = name.rfind('/');
        return slash == std::string_view::npos ? std::string_view{} : name.substr(0, slash);
    }

    // Draws from the PRNG only when the fault is enabled.
    bool roll(std::uint32_t per_mille) {
        if (per_mille == 0) return false;
        if (per_mille >= 1000) return true;
        return vsr::chance(random_, per_mille, 1000);
    }

    toastyfs::disk_status error(std::uint64_t& counter) noexcept {
        counter++;
        return toastyfs::disk_status::io_error;
    }

    void flip_random_bit(std::vector<std::uint8_t>& bytes) {
        assert(!bytes.empty());
        const std::uint64_t bit = vsr::uniform_below(random_, bytes.size() * 8);
        bytes[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
    }

    // A prefix of `bytes`, and half the time garbage after it up to the original length (never
    // equal to the original: an empty original becomes one garbage byte).
    std::vector<std::uint8_t> torn_copy(const std::vector<std::uint8_t>& bytes) {
        if (bytes.empty()) return {static_cast<std::uint8_t>(random_.next_u64())};
        std::vector<std::uint8_t> torn(
            bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(vsr::uniform_below(random_, bytes.size())));
        if (vsr::chance(random_, 1, 2)) {
            while (torn.size() < bytes.size()) {
                torn.push_back(static_cast<std::uint8_t>(random_.next_u64()));
            }
            if (torn == bytes) torn.back() ^= 1;
        }
        return torn;
    }

    vsr::xoshiro256 random_;
    chunk_disk_faults faults_;
    chunk_disk_counters counters_;
    std::map<std::string, sim_file, std::less<>> visible_;
    std::map<std::string, sim_file, std::less<>> durable_;
    std::set<std::string, std::less<>> directories_;
    std::map<std::string, file_faults, std::less<>> hits_;
    std::uint64_t used_bytes_ = 0;  // of the visible view
    std::uint64_t token_now_ = 1;
    std::uint64_t temporary_sequence_ = 0;
};
static_assert(toastyfs::chunk_disk<sim_chunk_disk>);

}  // namespace sim
