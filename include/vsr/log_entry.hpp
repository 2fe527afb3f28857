// Log entries and log suffixes: their encoding and validation.
//
// A log entry is one prepare: a batch of client requests, plus the op number, the view in
// which the primary created it (its "tag"), and the primary's timestamp.
//
//   entry:   u64 op | u64 view | u64 timestamp_ns | u32 request_count | u32 entry_size
//            then request_count requests
//   request: u64 client_id | u64 session | u64 request_number | u32 operation_size
//            | u8 kind | 3 zero bytes | operation bytes
//
// (op, view) identifies an entry: only the primary of `view` creates entries tagged `view`, one
// per op, and logs are only ever extended or truncated, so two logs holding the same (op, view)
// agree on every entry up to op (log matching).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "vsr/bytes.hpp"
#include "vsr/wire.hpp"

namespace vsr {

inline constexpr std::size_t entry_header_size = 32;
inline constexpr std::size_t request_header_size = 32;
inline constexpr std::size_t suffix_header_size = 24;

struct entry_header {
    std::uint64_t op = 0;
    std::uint64_t view = 0;
    std::uint64_t timestamp_ns = 0;
    std::uint32_t request_count = 0;
    std::uint32_t entry_size = 0;
};

struct request_record {
    std::uint64_t client_id = 0;
    std::uint64_t session = 0;
    std::uint64_t request_number = 0;
    request_kind kind = request_kind::operation;
    std::span<const std::uint8_t> operation;
};

inline entry_header read_entry_header(std::span<const std::uint8_t> entry) noexcept {
    entry_header h;
    h.op = load_le64(entry.data());
    h.view = load_le64(entry.data() + 8);
    h.timestamp_ns = load_le64(entry.data() + 16);
    h.request_count = load_le32(entry.data() + 24);
    h.entry_size = load_le32(entry.data() + 28);
    return h;
}

/// Builds an entry incrementally: begin(), add() each request, finish().
class entry_builder {
public:
    /// `size_hint`: the expected final size, to allocate once.
    void begin(std::uint64_t op, std::uint64_t view, std::uint64_t timestamp_ns, std::size_t size_hint = 0) {
        bytes_.clear();
        bytes_.reserve(std::max(size_hint, entry_header_size));
        bytes_.resize(entry_header_size);
        store_le64(bytes_.data(), op);
        store_le64(bytes_.data() + 8, view);
        store_le64(bytes_.data() + 16, timestamp_ns);
        count_ = 0;
    }
    void add(const request_record& r) {
        const std::size_t at = bytes_.size();
        bytes_.resize(at + request_header_size + r.operation.size());
        std::uint8_t* p = bytes_.data() + at;
        store_le64(p, r.client_id);
        store_le64(p + 8, r.session);
        store_le64(p + 16, r.request_number);
        store_le32(p + 24, static_cast<std::uint32_t>(r.operation.size()));
        p[28] = static_cast<std::uint8_t>(r.kind);
        p[29] = p[30] = p[31] = 0;
        if (!r.operation.empty()) std::memcpy(p + request_header_size, r.operation.data(), r.operation.size());
        ++count_;
    }
    std::size_t size() const noexcept { return bytes_.size(); }
    std::uint32_t count() const noexcept { return count_; }
    std::vector<std::uint8_t> finish() {
        store_le32(bytes_.data() + 24, count_);
        store_le32(bytes_.data() + 28, static_cast<std::uint32_t>(bytes_.size()));
        return std::move(bytes_);
    }

private:
    std::vector<std::uint8_t> bytes_;
    std::uint32_t count_ = 0;
};

/// Iterates the requests of an entry that has passed validate_entry().
class request_iterator {
public:
    explicit request_iterator(std::span<const std::uint8_t> entry) noexcept
        : reader_(entry.subspan(entry_header_size)) {}

    bool next(request_record& r) noexcept {
        if (reader_.remaining() == 0) return false;
        std::uint32_t size = 0;
        std::uint8_t kind = 0, pad = 0;
        const bool ok = reader_.read_u64(r.client_id) && reader_.read_u64(r.session) &&
                        reader_.read_u64(r.request_number) && reader_.read_u32(size) && reader_.read_u8(kind) &&
                        reader_.read_u8(pad) && reader_.read_u8(pad) && reader_.read_u8(pad) &&
                        reader_.read_span(size, r.operation);
        r.kind = static_cast<request_kind>(kind);
        return ok;
    }

private:
    byte_reader reader_;
};

/// Full structural validation of an entry received from the network.
inline bool validate_entry(std::span<const std::uint8_t> entry, std::size_t entry_size_max) noexcept {
    if (entry.size() < entry_header_size || entry.size() > entry_size_max) return false;
    const entry_header h = read_entry_header(entry);
    if (h.entry_size != entry.size() || h.op == 0) return false;
    byte_reader reader(entry.subspan(entry_header_size));
    for (std::uint32_t i = 0; i < h.request_count; ++i) {
        std::uint64_t ignored = 0;
        std::uint32_t size = 0;
        std::uint8_t kind = 0, pad[3] = {};
        std::span<const std::uint8_t> operation;
        if (!(reader.read_u64(ignored) && reader.read_u64(ignored) && reader.read_u64(ignored) &&
              reader.read_u32(size) && reader.read_u8(kind) && reader.read_u8(pad[0]) && reader.read_u8(pad[1]) &&
              reader.read_u8(pad[2]) && reader.read_span(size, operation))) {
            return false;
        }
        if (kind > static_cast<std::uint8_t>(request_kind::register_session)) return false;
        if (pad[0] != 0 || pad[1] != 0 || pad[2] != 0) return false;
    }
    return reader.remaining() == 0;
}

/// A log suffix: the entries after prev_op, and the tag of the entry at prev_op, so the
/// receiver can check that the suffix attaches to its own log (log matching).
///
///   u64 prev_op | u64 prev_view | u32 entry_count | u32 zero | (u32 size | entry)*
struct log_suffix {
    std::uint64_t prev_op = 0;
    std::uint64_t prev_view = 0;
    std::vector<std::span<const std::uint8_t>> entries;  // views into the message body
};

/// Parses and validates a suffix: entries must be valid and consecutive from prev_op + 1.
inline bool decode_suffix(std::span<const std::uint8_t> body, std::size_t entry_size_max, log_suffix& out) {
    byte_reader reader(body);
    std::uint32_t count = 0, zero = 0;
    if (!(reader.read_u64(out.prev_op) && reader.read_u64(out.prev_view) && reader.read_u32(count) &&
          reader.read_u32(zero)) ||
        zero != 0) {
        return false;
    }
    if (count > body.size() / entry_header_size) return false;
    out.entries.clear();
    out.entries.reserve(count);
    for (std::uint32_t i = 0; i < count; ++i) {
        std::uint32_t size = 0;
        std::span<const std::uint8_t> entry;
        if (!(reader.read_u32(size) && reader.read_span(size, entry))) return false;
        if (!validate_entry(entry, entry_size_max)) return false;
        if (read_entry_header(entry).op != out.prev_op + 1 + i) return false;
        out.entries.push_back(entry);
    }
    return reader.remaining() == 0;
}

}  // namespace vsr
