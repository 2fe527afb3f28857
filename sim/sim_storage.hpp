// The simulated disk of a persistent replica: vsr::storage over byte arrays, with a visible view
// (every write so far) and a durable one (what survives a crash), and the faults real disks
// have. The replica's journal code (vsr/journal.hpp) runs on it unchanged.
//
// Faults, each drawn per seed and counted:
// - crash: writes not yet synced are kept, dropped, or torn at a sector boundary (power loss);
// - lost write: sync() reports success but a write never reached the platter;
// - misdirected write: a write lands at another offset of its zone (the intended bytes stay old);
// - latent corruption: a durable byte flips while at rest;
// - full disk: a write fails (the replica halts, as production does, and is restarted later).
// Lost, misdirected and latent faults damage what was durable; the simulator allows them on at
// most f replicas per run, so the cluster can always recover (more may stop it, never corrupt it).
// Lost and misdirected writes spare the journal's redundant headers: they are the witness that
// tells a lost entry body from one never written, and an entry that vanished with its witness is
// indistinguishable from one never written by any log (seed 76905).
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <iterator>
#include <map>
#include <span>
#include <vector>

#include "vsr/random.hpp"
#include "vsr/storage.hpp"

namespace sim {

struct storage_faults {
    std::uint32_t torn_on_crash_per_mille = 0;  // each unsynced write, at a crash
    std::uint32_t lost_write_per_mille = 0;
    std::uint32_t misdirected_write_per_mille = 0;
    std::uint32_t full_disk_per_mille = 0;  // each write
};

struct storage_fault_counts {
    std::uint64_t torn = 0;
    std::uint64_t dropped_at_crash = 0;
    std::uint64_t lost = 0;
    std::uint64_t misdirected = 0;
    std::uint64_t latent = 0;
    std::uint64_t full = 0;
    std::uint64_t syncs = 0;
    std::uint64_t total() const noexcept { return torn + dropped_at_crash + lost + misdirected + latent + full; }
};

class sim_storage {
public:
    static constexpr std::uint64_t sector_size = 512;
    static constexpr std::uint64_t page_size = 4096;  // sparse: only pages written exist

    /// Diskless (persistent false): the replica never calls it.
    sim_storage() = default;
    sim_storage(vsr::xoshiro256* random, storage_faults faults) : persistent_(true), random_(random), faults_(faults) {}

    bool persistent() const noexcept { return persistent_; }

    /// The durable bytes with every unsynced write laid over them, in order.
    bool read(vsr::zone z, std::uint64_t offset, std::span<std::uint8_t> out) {
        const pages& durable = durable_[index(z)];
        for (std::uint64_t done = 0; done < out.size();) {
            const std::uint64_t at = offset + done;
            const std::uint64_t in_page = at % page_size;
            const std::uint64_t take = std::min<std::uint64_t>(out.size() - done, page_size - in_page);
            const auto page = durable.find(at / page_size);
            for (std::uint64_t i = 0; i < take; ++i)
                out[done + i] = page == durable.end() ? 0 : page->second[in_page + i];
            done += take;
        }
        for (const pending_write& w : pending_) {
            if (w.zone != z) continue;
            const std::uint64_t begin = std::max(offset, w.offset);
            const std::uint64_t end = std::min(offset + out.size(), w.offset + w.bytes.size());
            for (std::uint64_t at = begin; at < end; ++at) out[at - offset] = w.bytes[at - w.offset];
        }
        return true;
    }

    bool write(vsr::zone z, std::uint64_t offset, std::span<const std::uint8_t> bytes) {
        if (full_disk_allowed_ && roll(faults_.full_disk_per_mille)) {
            ++counts_.full;
            return false;
        }
        pending_.push_back(pending_write{z, offset, std::vector<std::uint8_t>(bytes.begin(), bytes.end())});
        sizes_[index(z)] = std::max(sizes_[index(z)], offset + bytes.size());
        return true;
    }

    bool sync() {
        ++counts_.syncs;
        for (const pending_write& w : pending_) {
            // The redundant record headers are what tells a lost entry body from one never
            // written: a disk that silently drops both copies of an entry leaves nothing any log
            // could detect, so on the header zone these faults are drawn but not applied (torn
            // writes at a crash and rot still hit it, and are detected).
            const bool silent_faults = w.zone != vsr::zone::journal_headers;
            if (roll(faults_.lost_write_per_mille) && silent_faults) {
                ++counts_.lost;
                continue;
            }
            std::uint64_t offset = w.offset;
            if (roll(faults_.misdirected_write_per_mille) && silent_faults) {
                ++counts_.misdirected;
                offset = sector_size * vsr::uniform_below(*random_, sizes_[index(w.zone)] / sector_size + 1);
            }
            place(w.zone, offset, w.bytes);
        }
        pending_.clear();
        return true;
    }

    std::uint64_t size(vsr::zone z) const noexcept { return sizes_[index(z)]; }

    /// Power loss: unsynced writes survive whole, not at all, or torn at a sector boundary.
    void crash() {
        for (const pending_write& w : pending_) {
            if (!roll(faults_.torn_on_crash_per_mille)) {
                place(w.zone, w.offset, w.bytes);  // it made it
                continue;
            }
            const std::uint64_t sectors = (w.bytes.size() + sector_size - 1) / sector_size;
            const std::uint64_t kept = vsr::uniform_below(*random_, sectors + 1);
            if (kept == 0) {
                ++counts_.dropped_at_crash;
                continue;
            }
            ++counts_.torn;
            const std::size_t size = std::min<std::size_t>(w.bytes.size(), kept * sector_size);
            place(w.zone, w.offset, std::span(w.bytes).first(size));
        }
        pending_.clear();
    }

    /// The disk is replaced by an empty one.
    void wipe() {
        for (auto& zone : durable_) zone.clear();
        sizes_.fill(0);
        pending_.clear();
    }

    /// A bit of durable data flips at rest: in a zone drawn first (so small zones, the
    /// superblock and checkpoints, rot as often as the journal), then a page of it.
    void rot() {
        pages& zone = durable_[vsr::uniform_below(*random_, vsr::zone_count)];
        if (zone.empty()) return;
        auto page = zone.begin();
        std::advance(page, static_cast<std::ptrdiff_t>(vsr::uniform_below(*random_, zone.size())));
        page->second[vsr::uniform_below(*random_, page_size)] ^=
            static_cast<std::uint8_t>(1u << vsr::uniform_below(*random_, 8));
        ++counts_.latent;
    }

    const storage_fault_counts& counts() const noexcept { return counts_; }
    /// The simulator turns full disks off while a replica is impaired: the halt it causes would
    /// take a second replica out, past what the cluster tolerates.
    void allow_full_disk(bool allowed) noexcept { full_disk_allowed_ = allowed; }

private:
    using pages = std::map<std::uint64_t, std::array<std::uint8_t, page_size>>;

    struct pending_write {
        vsr::zone zone;
        std::uint64_t offset;
        std::vector<std::uint8_t> bytes;
    };

    static std::size_t index(vsr::zone z) noexcept { return static_cast<std::size_t>(z); }

    void place(vsr::zone z, std::uint64_t offset, std::span<const std::uint8_t> bytes) {
        pages& zone = durable_[index(z)];
        for (std::uint64_t done = 0; done < bytes.size();) {
            const std::uint64_t at = offset + done;
            const std::uint64_t in_page = at % page_size;
            const std::uint64_t take = std::min<std::uint64_t>(bytes.size() - done, page_size - in_page);
            auto [page, created] = zone.try_emplace(at / page_size);
            if (created) page->second.fill(0);
            std::copy_n(bytes.begin() + static_cast<std::ptrdiff_t>(done), take, page->second.begin() + in_page);
            done += take;
        }
    }

    bool roll(std::uint32_t per_mille) {
        return per_mille != 0 && random_ != nullptr && vsr::chance(*random_, per_mille, 1000);
    }

    bool persistent_ = false;
    bool full_disk_allowed_ = true;
    vsr::xoshiro256* random_ = nullptr;
    storage_faults faults_;
    storage_fault_counts counts_;
    std::array<pages, vsr::zone_count> durable_;
    std::array<std::uint64_t, vsr::zone_count> sizes_{};
    std::vector<pending_write> pending_;
};
static_assert(vsr::storage<sim_storage>);

}  // namespace sim
