// sim::sim_metadata_disk: the simulator's toastyfs::metadata_disk, under the SQLite metadata store
// of a persistent node (toastyfs/sqlite_vfs.hpp reaches it). Header-only.
//
// Like sim_storage (the journal) and sim_chunk_disk, it keeps what callers see ("visible") apart
// from what survives a crash ("durable"), file by file:
// - write() and truncate() change the visible bytes at once and wait, in order, as unsynced
//   changes; the file's sync() makes them durable, and the name of a file created by open()
//   durable with them; remove() and rename() are durable when they return (the interface says so).
// - crash(): the node dies. Each unsynced write survives whole, vanishes, or is torn at a 512-byte
//   sector boundary (as sim_storage does to the journal's unsynced writes); an unsynced truncate
//   survives or vanishes; a file created and never synced may vanish. From then on the disk fails
//   every call (io_error) until restart(), and files opened before the crash stay dead: the dying
//   process's SQLite, closing its connections, must not checkpoint or delete anything, since a
//   crash is not a clean shutdown.
// - wipe(): the disk is lost and replaced by an empty one (calls fail until restart() too).
// Faults, only on the simulator's faulty disks (at most f nodes, with the lost disks):
// - rot(): one bit of the durable bytes of a drawn file flips at rest (reads see it, unless an
//   unsynced change covers it). The VFS's page checksums and SQLite's WAL frame checksums must
//   find it: a read that fails its page checksum, or a WAL that ends early at reopen.
// - fill(slack): the disk is full from slack bytes on; a write that would grow the files past that
//   fails with no_space and writes nothing. end_full() frees the space.
// - read errors: a read fails with io_error (per mille).
// Full disks and read errors make the store fail and the replica halt, so the simulator allows
// them (allow_halting_faults) only while no other replica is impaired, and never after healing.
//
// Not injected: writes lost or misdirected silently while the node runs (sync() reporting success
// for bytes that never reached the disk, or that landed elsewhere). No checksum can vouch for a
// write that never happened: a page written back from the WAL into the database file, lost there,
// and the WAL then reset, reads back as the older version of that page, intact and with a valid
// checksum; a lost commit leaves a WAL that ends, validly, at the commit before. SQLite's WAL and
// our page checksums detect rot and torn writes, never absence. ARCHITECTURE.md ("A lost entry
// versus a damaged one") explains the same limit for the journal, whose simulated disk spares the
// redundant headers from these faults for that reason.
//
// faults_hit(name) records which faults hit each file, so checkers excuse only injected damage.
// Every random choice comes from the disk's own PRNG, drawn only when its fault is enabled.
#pragma once

#include <algorithm>
#include <cassert>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "toastyfs/metadata_disk.hpp"
#include "vsr/random.hpp"

namespace sim {

/// Per mille, per call or per change.
struct metadata_disk_faults {
    std::uint32_t torn_on_crash_per_mille = 0;    // each unsynced change at a crash: vanishes or tears
    std::uint32_t vanish_on_crash_per_mille = 0;  // each file created and never synced, at a crash
    std::uint32_t read_error_per_mille = 0;       // each read (while halting faults are allowed)
};

/// What the disk did, counted.
struct metadata_disk_counts {
    // what crashes did to unsynced changes (not damage: nothing unsynced was promised)
    std::uint64_t torn_at_crash = 0;
    std::uint64_t dropped_at_crash = 0;
    std::uint64_t vanished_files = 0;
    // faults
    std::uint64_t rot = 0;
    std::uint64_t full_disks = 0;  // fill() calls
    std::uint64_t no_space = 0;    // writes refused by a full disk
    std::uint64_t read_errors = 0;
    // events
    std::uint64_t syncs = 0;
    std::uint64_t crashes = 0;
    std::uint64_t wipes = 0;

    std::uint64_t faults() const noexcept { return rot + no_space + read_errors; }
    std::uint64_t crash_effects() const noexcept { return torn_at_crash + dropped_at_crash + vanished_files; }
};

/// The faults that hit one file name since it was created (or wiped).
struct metadata_file_faults {
    std::uint64_t rot = 0;            // bits flipped at rest in its durable bytes
    std::uint64_t torn_at_crash = 0;  // unsynced changes torn or dropped by a crash
    std::uint64_t read_errors = 0;
    std::uint64_t no_space = 0;
    bool vanished = false;  // created, never synced, gone at a crash
};

class sim_metadata_disk final : public toastyfs::metadata_disk {
public:
    static constexpr std::uint64_t sector_size = 512;

    sim_metadata_disk(std::uint64_t seed, metadata_disk_faults faults) : random_(seed), faults_(faults) {}

    // ---- toastyfs::metadata_disk ----

    std::unique_ptr<toastyfs::metadata_file> open(std::string_view name, bool create,
                                                  toastyfs::metadata_io& status) override {
        status = toastyfs::metadata_io::io_error;
        if (down_) return nullptr;
        auto it = files_.find(name);
        if (it == files_.end()) {
            if (!create) {
                status = toastyfs::metadata_io::not_found;
                return nullptr;
            }
            auto created = std::make_shared<file_state>();
            created->name = std::string(name);
            it = files_.emplace(std::string(name), std::move(created)).first;
            hits_[std::string(name)] = metadata_file_faults{};
        }
        status = toastyfs::metadata_io::ok;
        return std::make_unique<file>(*this, it->second, generation_);
    }

    toastyfs::metadata_io remove(std::string_view name) override {
        if (down_) return toastyfs::metadata_io::io_error;
        const auto it = files_.find(name);
        if (it == files_.end()) return toastyfs::metadata_io::not_found;
        it->second->name.clear();  // an orphan: open files keep it, as POSIX does
        files_.erase(it);
        durable_names_.erase(std::string(name));
        return toastyfs::metadata_io::ok;
    }

    toastyfs::metadata_io rename(std::string_view from, std::string_view to) override {
        if (down_) return toastyfs::metadata_io::io_error;
        const auto it = files_.find(from);
        if (it == files_.end()) return toastyfs::metadata_io::not_found;
        std::shared_ptr<file_state> moved = it->second;
        files_.erase(it);
        if (const auto replaced = files_.find(to); replaced != files_.end()) replaced->second->name.clear();
        moved->name = std::string(to);
        files_[std::string(to)] = moved;
        // Durable at return: `to` names the moved file, whatever of it is durable.
        durable_names_.erase(std::string(from));
        durable_names_[std::string(to)] = moved;
        hits_[std::string(to)] = faults_hit(from);
        return toastyfs::metadata_io::ok;
    }

    bool exists(std::string_view name) override { return !down_ && files_.find(name) != files_.end(); }

    // ---- the simulator's controls ----

    /// The node dies: unsynced changes survive, vanish or tear; files never synced may vanish.
    /// Every call fails until restart().
    void crash() {
        ++counts_.crashes;
        down_ = true;
        ++generation_;
        std::map<std::string, std::shared_ptr<file_state>, std::less<>> after;
        for (const auto& [name, state] : files_) {
            if (durable_names_.contains(name)) continue;
            // Created, never synced: its name may not have reached the disk.
            if (roll(faults_.vanish_on_crash_per_mille)) {
                ++counts_.vanished_files;
                hits_[name].vanished = true;
                continue;
            }
            durable_names_[name] = state;
        }
        for (const auto& [name, state] : durable_names_) {
            settle_at_crash(name, *state);
            after[name] = state;
        }
        files_ = after;
    }

    /// The disk is replaced by an empty one. Every call fails until restart().
    void wipe() {
        ++counts_.wipes;
        down_ = true;
        ++generation_;
        files_.clear();
        durable_names_.clear();
        hits_.clear();
        end_full();
    }

    /// The node starts again on this disk (after crash() or wipe()).
    void restart() noexcept { down_ = false; }

    /// Flips one bit of the durable bytes of a drawn file (reads see it, unless an unsynced change
    /// covers it). Returns the file's name, or "" if no file has a durable byte.
    std::string rot() {
        std::vector<std::pair<const std::string*, file_state*>> candidates;
        for (const auto& [name, state] : durable_names_) {
            if (!state->durable.empty()) candidates.emplace_back(&name, state.get());
        }
        if (candidates.empty()) return {};
        const auto [name, state] = candidates[vsr::uniform_below(random_, candidates.size())];
        const std::uint64_t offset = vsr::uniform_below(random_, state->durable.size());
        const auto bit = static_cast<std::uint8_t>(1u << vsr::uniform_below(random_, 8));
        state->durable[offset] ^= bit;
        state->visible = state->durable;  // what reads see: the durable bytes and the unsynced changes
        for (const change& c : state->pending) apply(state->visible, c);
        ++counts_.rot;
        ++hits_[*name].rot;
        return *name;
    }

    /// The disk is full from `slack` more bytes on (while halting faults are allowed).
    void fill(std::uint64_t slack) noexcept {
        capacity_bytes_ = used_bytes() + slack;
        ++counts_.full_disks;
    }
    void end_full() noexcept { capacity_bytes_ = std::numeric_limits<std::uint64_t>::max(); }
    bool full() const noexcept { return capacity_bytes_ != std::numeric_limits<std::uint64_t>::max(); }

    /// Full disks and read errors halt the replica: the simulator allows them only while every
    /// other replica is well.
    void allow_halting_faults(bool allowed) noexcept { halting_faults_allowed_ = allowed; }
    metadata_disk_faults& faults() noexcept { return faults_; }
    /// Tests only: every sync from now on reports success and makes nothing durable, and no
    /// fault is recorded: the lost writes this disk never injects, to show the checkers catch them.
    void lose_syncs() noexcept { syncs_lost_ = true; }

    const metadata_disk_counts& counts() const noexcept { return counts_; }
    metadata_file_faults faults_hit(std::string_view name) const {
        const auto found = hits_.find(name);
        return found == hits_.end() ? metadata_file_faults{} : found->second;
    }
    /// Bytes the visible files take.
    std::uint64_t used_bytes() const noexcept {
        std::uint64_t total = 0;
        for (const auto& [name, state] : files_) total += state->visible.size();
        return total;
    }
    /// The files, visible names, for checkers and tests.
    std::vector<std::string> names() const {
        std::vector<std::string> out;
        for (const auto& [name, state] : files_) out.push_back(name);
        return out;
    }

private:
    /// An unsynced write, or an unsynced truncate to `offset`.
    struct change {
        std::uint64_t offset = 0;
        std::vector<std::uint8_t> bytes;
        bool truncate = false;
    };

    struct file_state {
        std::string name;  // empty once removed or replaced (open files keep it)
        std::vector<std::uint8_t> visible, durable;
        std::vector<change> pending;  // since the last sync, in order
    };

    class file final : public toastyfs::metadata_file {
    public:
        file(sim_metadata_disk& disk, std::shared_ptr<file_state> state, std::uint64_t generation)
            : disk_(disk), state_(std::move(state)), generation_(generation) {}

        toastyfs::metadata_io read(std::uint64_t offset, std::span<std::uint8_t> out, std::size_t& read) override {
            read = 0;
            if (!alive()) return toastyfs::metadata_io::io_error;
            if (disk_.halting_fault(disk_.faults_.read_error_per_mille)) {
                ++disk_.counts_.read_errors;
                ++disk_.hits_[state_->name].read_errors;
                return toastyfs::metadata_io::io_error;
            }
            const std::vector<std::uint8_t>& bytes = state_->visible;
            read = offset >= bytes.size() ? 0 : std::min<std::uint64_t>(out.size(), bytes.size() - offset);
            if (read > 0) std::memcpy(out.data(), bytes.data() + offset, read);
            std::fill(out.begin() + static_cast<std::ptrdiff_t>(read), out.end(), std::uint8_t{0});
            return toastyfs::metadata_io::ok;
        }

        toastyfs::metadata_io write(std::uint64_t offset, std::span<const std::uint8_t> bytes) override {
            if (!alive()) return toastyfs::metadata_io::io_error;
            std::vector<std::uint8_t>& visible = state_->visible;
            const std::uint64_t growth =
                offset + bytes.size() > visible.size() ? offset + bytes.size() - visible.size() : 0;
            if (growth > 0 && disk_.halting_faults_allowed_ && disk_.used_bytes() + growth > disk_.capacity_bytes_) {
                ++disk_.counts_.no_space;
                ++disk_.hits_[state_->name].no_space;
                return toastyfs::metadata_io::no_space;
            }
            place(visible, offset, bytes);
            state_->pending.push_back(change{offset, {bytes.begin(), bytes.end()}, false});
            return toastyfs::metadata_io::ok;
        }

        toastyfs::metadata_io truncate(std::uint64_t size) override {
            if (!alive()) return toastyfs::metadata_io::io_error;
            state_->visible.resize(size);
            state_->pending.push_back(change{size, {}, true});
            return toastyfs::metadata_io::ok;
        }

        toastyfs::metadata_io size(std::uint64_t& out) override {
            out = 0;
            if (!alive()) return toastyfs::metadata_io::io_error;
            out = state_->visible.size();
            return toastyfs::metadata_io::ok;
        }

        toastyfs::metadata_io sync() override {
            if (!alive()) return toastyfs::metadata_io::io_error;
            ++disk_.counts_.syncs;
            if (disk_.syncs_lost_) {  // tests: a fault the simulator never injects (see the top)
                state_->pending.clear();
                return toastyfs::metadata_io::ok;
            }
            for (const change& c : state_->pending) apply(state_->durable, c);
            state_->pending.clear();
            assert(state_->durable.size() == state_->visible.size());
            // A file created by open() is durable by name once synced.
            if (!state_->name.empty()) disk_.durable_names_[state_->name] = state_;
            return toastyfs::metadata_io::ok;
        }

    private:
        bool alive() const noexcept { return !disk_.down_ && generation_ == disk_.generation_; }

        sim_metadata_disk& disk_;
        std::shared_ptr<file_state> state_;
        std::uint64_t generation_;
    };

    static void place(std::vector<std::uint8_t>& bytes, std::uint64_t offset, std::span<const std::uint8_t> in) {
        if (offset + in.size() > bytes.size()) bytes.resize(offset + in.size());
        if (!in.empty()) std::memcpy(bytes.data() + offset, in.data(), in.size());
    }
    static void apply(std::vector<std::uint8_t>& bytes, const change& c) {
        if (c.truncate) {
            bytes.resize(c.offset);
        } else {
            place(bytes, c.offset, c.bytes);
        }
    }

    /// A crash settles a file's unsynced changes, each on its own: whole, gone, or (a write) cut
    /// at a sector boundary inside it. The visible bytes become the durable ones.
    void settle_at_crash(const std::string& name, file_state& state) {
        for (const change& c : state.pending) {
            if (!roll(faults_.torn_on_crash_per_mille)) {
                apply(state.durable, c);
                continue;
            }
            ++hits_[name].torn_at_crash;
            const std::uint64_t end = c.offset + c.bytes.size();
            const std::uint64_t first_boundary = (c.offset / sector_size + 1) * sector_size;
            const std::uint64_t boundaries =
                c.truncate || first_boundary >= end ? 0 : (end - 1 - first_boundary) / sector_size + 1;
            const std::uint64_t kept = boundaries == 0 ? 0 : vsr::uniform_below(random_, boundaries + 1);
            if (kept == 0) {
                ++counts_.dropped_at_crash;
                continue;
            }
            ++counts_.torn_at_crash;
            const std::uint64_t cut = first_boundary + (kept - 1) * sector_size;
            assert(cut > c.offset && cut < end);
            place(state.durable, c.offset, std::span(c.bytes).first(static_cast<std::size_t>(cut - c.offset)));
        }
        state.pending.clear();
        state.visible = state.durable;
    }

    bool roll(std::uint32_t per_mille) { return per_mille != 0 && vsr::chance(random_, per_mille, 1000); }
    bool halting_fault(std::uint32_t per_mille) { return halting_faults_allowed_ && roll(per_mille); }

    vsr::xoshiro256 random_;
    metadata_disk_faults faults_;
    metadata_disk_counts counts_;
    std::map<std::string, std::shared_ptr<file_state>, std::less<>> files_;          // visible names
    std::map<std::string, std::shared_ptr<file_state>, std::less<>> durable_names_;  // names a crash keeps
    std::map<std::string, metadata_file_faults, std::less<>> hits_;
    std::uint64_t capacity_bytes_ = std::numeric_limits<std::uint64_t>::max();
    bool halting_faults_allowed_ = false;
    bool syncs_lost_ = false;
    bool down_ = false;
    std::uint64_t generation_ = 0;
};

}  // namespace sim
