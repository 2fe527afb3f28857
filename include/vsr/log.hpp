// The in-memory operation log: a window of entries (base, op] over the history of ops.
//
// Entries at or below the base were dropped after a checkpoint covered them (log compaction).
// The base keeps its tag (the view of the entry at base), the equivalent of Raft's
// lastIncludedIndex and lastIncludedTerm, so log matching still works at the base itself.
//
// A persistent replica also releases the bytes of entries it has executed once its journal
// holds them (release_through): their tag and timestamp stay, and a lagging replica's request
// reads them back from the journal. So memory holds only what is not executed or not durable.
#pragma once

#include <algorithm>
#include <cassert>
#include <cstdint>
#include <deque>
#include <span>
#include <vector>

#include "vsr/bytes.hpp"
#include "vsr/log_entry.hpp"

namespace vsr {

class operation_log {
public:
    /// Highest op held (the base when no entry is held).
    std::uint64_t op() const noexcept { return base_ + entries_.size(); }
    /// Entries at or below this op are gone; the first entry held is base() + 1.
    std::uint64_t base() const noexcept { return base_; }
    /// Entries held.
    std::size_t size() const noexcept { return entries_.size(); }
    /// Bytes of entries held in memory (released ones excluded).
    std::size_t bytes() const noexcept { return bytes_; }

    /// Tag (creating view) of the entry at `op`, for base() <= op <= op(); op 0 has tag 0.
    std::uint64_t view_at(std::uint64_t op) const noexcept {
        assert(op >= base_ && op <= this->op());
        return op == base_ ? base_view_ : entries_[op - base_ - 1].view;
    }

    /// The primary's timestamp of the entry at `op`, for base() <= op <= op(); op 0 has 0.
    std::uint64_t timestamp_at(std::uint64_t op) const noexcept {
        assert(op >= base_ && op <= this->op());
        return op == base_ ? base_timestamp_ : entries_[op - base_ - 1].timestamp_ns;
    }

    /// True if the entry at `op` is held (base() < op <= op()).
    bool holds(std::uint64_t op) const noexcept { return op > base_ && op <= this->op(); }

    /// Whether the entry's bytes are in memory (not released).
    bool in_memory(std::uint64_t op) const noexcept { return holds(op) && op > released_through_; }

    std::span<const std::uint8_t> entry(std::uint64_t op) const noexcept {
        assert(in_memory(op));
        return entries_[op - base_ - 1].bytes;
    }

    /// Frees the bytes of every entry up to `op` (their journal holds them).
    void release_through(std::uint64_t op) {
        op = std::min(op, this->op());
        for (std::uint64_t at = std::max(released_through_, base_) + 1; at <= op; ++at) {
            std::vector<std::uint8_t>& bytes = entries_[at - base_ - 1].bytes;
            bytes_ -= bytes.size();
            std::vector<std::uint8_t>().swap(bytes);
        }
        released_through_ = std::max(released_through_, op);
    }

    /// Appends the entry for op() + 1.
    void append(std::vector<std::uint8_t> bytes) {
        const entry_header h = read_entry_header(bytes);
        assert(h.op == op() + 1);
        bytes_ += bytes.size();
        entries_.push_back(stored_entry{h.view, h.timestamp_ns, std::move(bytes)});
    }

    /// Drops every entry after `op` (op >= base()).
    void truncate(std::uint64_t op) {
        assert(op >= base_ && op <= this->op());
        released_through_ = std::min(released_through_, op);
        while (this->op() > op) {
            bytes_ -= entries_.back().bytes.size();
            entries_.pop_back();
        }
    }

    /// Drops the oldest entry: the base moves up by one and keeps that entry's tag.
    void drop_oldest() {
        assert(!entries_.empty());
        base_view_ = entries_.front().view;
        base_timestamp_ = entries_.front().timestamp_ns;
        bytes_ -= entries_.front().bytes.size();
        entries_.pop_front();
        ++base_;
    }

    /// Drops everything and starts over after `base`, tagged `base_view` and stamped
    /// `base_timestamp_ns` (a restored checkpoint).
    void reset(std::uint64_t base, std::uint64_t base_view, std::uint64_t base_timestamp_ns) {
        entries_.clear();
        bytes_ = 0;
        released_through_ = 0;
        base_ = base;
        base_view_ = base_view;
        base_timestamp_ = base_timestamp_ns;
    }

    /// True if our entry at `op` is the one tagged `view` (so, by log matching, our whole prefix
    /// up to op agrees with the sender's).
    bool matches(std::uint64_t op, std::uint64_t view) const noexcept {
        return op >= base_ && op <= this->op() && view_at(op) == view;
    }

    /// Encodes entries (prev_op, last] as a suffix, stopping early if the body would exceed
    /// `body_size_max`. Returns the last op included. Requires base() <= prev_op, and every
    /// entry in memory.
    std::uint64_t encode_suffix(std::uint64_t prev_op, std::uint64_t last, std::size_t body_size_max,
                                std::vector<std::uint8_t>& body) const {
        return encode_suffix(prev_op, last, body_size_max, body,
                             [this](std::uint64_t op, std::vector<std::uint8_t>&) { return entry(op); });
    }

    /// The same, with released entries read by `load(op, scratch)` (an empty span: unreadable,
    /// and the suffix stops before it).
    template <typename Load>
    std::uint64_t encode_suffix(std::uint64_t prev_op, std::uint64_t last, std::size_t body_size_max,
                                std::vector<std::uint8_t>& body, Load&& load) const {
        assert(base_ <= prev_op && prev_op <= last && last <= op());
        body.clear();
        byte_writer w(body);
        w.u64(prev_op);
        w.u64(view_at(prev_op));
        w.u32(0);  // count, patched below
        w.u32(0);
        std::uint32_t count = 0;
        std::uint64_t at = prev_op;
        std::vector<std::uint8_t> scratch;
        while (at < last) {
            const std::span<const std::uint8_t> bytes = in_memory(at + 1) ? entry(at + 1) : load(at + 1, scratch);
            if (bytes.empty() || body.size() + 4 + bytes.size() > body_size_max) break;
            w.u32(static_cast<std::uint32_t>(bytes.size()));
            w.bytes(bytes);
            ++count;
            ++at;
        }
        store_le32(body.data() + 16, count);
        return at;
    }

private:
    struct stored_entry {
        std::uint64_t view;
        std::uint64_t timestamp_ns;
        std::vector<std::uint8_t> bytes;  // empty once released
    };
    std::deque<stored_entry> entries_;
    std::uint64_t base_ = 0;
    std::uint64_t base_view_ = 0;
    std::uint64_t base_timestamp_ = 0;
    std::size_t bytes_ = 0;
    std::uint64_t released_through_ = 0;  // entries up to here have no bytes in memory
};

}  // namespace vsr
