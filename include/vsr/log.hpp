// The in-memory operation log (diskless VSR keeps it in memory only).
#pragma once

#include <cassert>
#include <cstdint>
#include <span>
#include <vector>

#include "vsr/bytes.hpp"
#include "vsr/log_entry.hpp"

namespace vsr {

class operation_log {
public:
    /// Highest op held (0 when empty).
    std::uint64_t op() const noexcept { return entries_.size(); }

    /// Tag (creating view) of the entry at `op`; op 0 is the empty prefix with tag 0.
    std::uint64_t view_at(std::uint64_t op) const noexcept {
        assert(op <= entries_.size());
        return op == 0 ? 0 : entries_[op - 1].view;
    }

    std::span<const std::uint8_t> entry(std::uint64_t op) const noexcept {
        assert(op >= 1 && op <= entries_.size());
        return entries_[op - 1].bytes;
    }

    /// Appends the entry for op() + 1.
    void append(std::vector<std::uint8_t> bytes) {
        const entry_header h = read_entry_header(bytes);
        assert(h.op == op() + 1);
        entries_.push_back(stored_entry{h.view, std::move(bytes)});
    }

    /// Drops every entry after `op`.
    void truncate(std::uint64_t op) {
        assert(op <= entries_.size());
        entries_.resize(op);
    }

    /// True if our entry at `op` is the one tagged `view` (so, by log matching, our whole prefix
    /// up to op agrees with the sender's).
    bool matches(std::uint64_t op, std::uint64_t view) const noexcept {
        return op <= entries_.size() && view_at(op) == view;
    }

    /// Encodes entries (prev_op, last] as a suffix, stopping early if the body would exceed
    /// `body_size_max`. Returns the last op included.
    std::uint64_t encode_suffix(std::uint64_t prev_op, std::uint64_t last, std::size_t body_size_max,
                                std::vector<std::uint8_t>& body) const {
        assert(prev_op <= last && last <= op());
        body.clear();
        byte_writer w(body);
        w.u64(prev_op);
        w.u64(view_at(prev_op));
        w.u32(0);  // count, patched below
        w.u32(0);
        std::uint32_t count = 0;
        std::uint64_t at = prev_op;
        while (at < last) {
            const auto bytes = entry(at + 1);
            if (body.size() + 4 + bytes.size() > body_size_max) break;
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
        std::vector<std::uint8_t> bytes;
    };
    std::vector<stored_entry> entries_;
};

}  // namespace vsr
