// The smallest useful VSR state machine: a key-value store with put, get, del and
// compare-and-set. It is the teaching example for instantiating vsr::basic_replica.
//
// Operation (little-endian):  u8 kind | u16 key_size | u32 value_size | u32 expected_size
//                             | key | value | expected
// Result:                     u8 status | value (get only)
//
// Snapshot:                   u64 count | count x (u32 key_size | u32 value_size | key | value),
//                             in (hash, key) order, hash = flat_map::hash_of(key)
//
// The snapshot is also taken incrementally (vsr::state_machine_with_incremental_snapshot):
// snapshot_begin() fixes the state to serialise, and each snapshot_step() appends the entries of
// the next hash interval. Puts and deletes in between first save the version the snapshot needs
// of a key it has not reached yet (copy-on-write, per key), so the steps append exactly what
// snapshot() would have at snapshot_begin().
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "flat_map.hpp"
#include "vsr/state_machine.hpp"
#include "vsr/wire.hpp"

namespace kv {

enum class kind : std::uint8_t { put = 1, get = 2, del = 3, cas = 4 };
enum class status : std::uint8_t { ok = 0, not_found = 1, mismatch = 2, invalid = 3 };

inline constexpr std::size_t key_size_max = 1024;
inline constexpr std::size_t value_size_max = 64 * 1024;
inline constexpr std::size_t operation_header_size = 11;

/// A decoded operation; views point into the encoded bytes.
struct operation {
    kind op_kind = kind::get;
    std::string_view key;
    std::string_view value;
    std::string_view expected;
};

inline void encode_operation(const operation& op, std::vector<std::uint8_t>& out) {
    out.clear();
    vsr::byte_writer w(out);
    w.u8(static_cast<std::uint8_t>(op.op_kind));
    w.u16(static_cast<std::uint16_t>(op.key.size()));
    w.u32(static_cast<std::uint32_t>(op.value.size()));
    w.u32(static_cast<std::uint32_t>(op.expected.size()));
    w.string(op.key);
    w.string(op.value);
    w.string(op.expected);
}

/// Decodes and validates an operation from untrusted bytes.
inline std::optional<operation> decode_operation(std::span<const std::uint8_t> bytes) {
    if (bytes.size() < operation_header_size) return std::nullopt;
    const auto op_kind = bytes[0];
    const std::size_t key_size = vsr::load_le16(bytes.data() + 1);
    const std::size_t value_size = vsr::load_le32(bytes.data() + 3);
    const std::size_t expected_size = vsr::load_le32(bytes.data() + 7);
    if (op_kind < 1 || op_kind > 4 || key_size == 0 || key_size > key_size_max || value_size > value_size_max ||
        expected_size > value_size_max ||
        operation_header_size + key_size + value_size + expected_size != bytes.size()) {
        return std::nullopt;
    }
    const auto* p = reinterpret_cast<const char*>(bytes.data()) + operation_header_size;
    operation op;
    op.op_kind = static_cast<kind>(op_kind);
    op.key = std::string_view(p, key_size);
    op.value = std::string_view(p + key_size, value_size);
    op.expected = std::string_view(p + key_size + value_size, expected_size);
    const bool needs_value = op.op_kind == kind::put || op.op_kind == kind::cas;
    if (!needs_value && !op.value.empty()) return std::nullopt;
    if (op.op_kind != kind::cas && !op.expected.empty()) return std::nullopt;
    return op;
}

/// A decoded result.
struct result {
    status result_status = status::invalid;
    std::string_view value;
};

inline result decode_result(std::span<const std::uint8_t> bytes) {
    if (bytes.empty() || bytes[0] > static_cast<std::uint8_t>(status::invalid)) return {};
    return result{static_cast<status>(bytes[0]),
                  std::string_view(reinterpret_cast<const char*>(bytes.data()) + 1, bytes.size() - 1)};
}

class state_machine {
public:
    state_machine() = default;
    /// `snapshot_homes_per_interval`: the table slots one snapshot interval covers (at least 1;
    /// the simulator makes it small, so that even its tiny states are serialised in many steps).
    explicit state_machine(std::size_t snapshot_homes_per_interval)
        : snapshot_homes_per_interval_(std::max<std::size_t>(1, snapshot_homes_per_interval)) {}

    void execute(const vsr::operation_context&, std::span<const std::uint8_t> bytes, std::vector<std::uint8_t>& out) {
        const auto op = decode_operation(bytes);
        if (!op) {
            out.push_back(static_cast<std::uint8_t>(status::invalid));
            return;
        }
        switch (op->op_kind) {
            case kind::put: put(op->key, op->value, out); break;
            case kind::get: get(op->key, out); break;
            case kind::del: del(op->key, out); break;
            case kind::cas: cas(op->key, op->expected, op->value, out); break;
        }
    }

    /// get is a query: the primary answers it without a log entry (vsr::state_machine_with_queries).
    bool is_query(std::span<const std::uint8_t> bytes) const noexcept {
        return !bytes.empty() && bytes[0] == static_cast<std::uint8_t>(kind::get);
    }
    void query(std::span<const std::uint8_t> bytes, std::vector<std::uint8_t>& out) const {
        const auto op = decode_operation(bytes);
        if (!op || op->op_kind != kind::get) {
            out.push_back(static_cast<std::uint8_t>(status::invalid));
            return;
        }
        get(op->key, out);
    }

    void snapshot(std::vector<std::uint8_t>& out) const {
        std::vector<hashed_entry> sorted;
        sorted.reserve(map_.size());
        map_.for_each_in_hash_range(0, ~std::uint64_t{0},
                                    [&](std::uint64_t hash, std::string_view key, std::string_view value) {
                                        sorted.push_back({hash, key, value});
                                    });
        vsr::byte_writer w(out);
        w.u64(sorted.size());
        write_sorted(sorted, out);
    }

    /// Starts an incremental snapshot of the state now (abandoning one in progress).
    void snapshot_begin() {
        snapshot_ = snapshot_progress{};
        snapshot_.active = true;
        snapshot_.count = map_.size();
    }

    /// Appends the next entries, about `size_hint` bytes or more (one hash interval at least);
    /// true once the whole snapshot has been appended.
    bool snapshot_step(std::vector<std::uint8_t>& out, std::size_t size_hint) {
        if (!snapshot_.active) return true;
        const std::size_t start = out.size();
        if (!snapshot_.count_written) {
            vsr::byte_writer(out).u64(snapshot_.count);
            snapshot_.count_written = true;
        }
        std::vector<hashed_entry> entries;
        for (bool first = true; first || out.size() - start < size_hint; first = false) {
            const std::uint64_t low = snapshot_.next_hash;
            const std::uint64_t high = map_.hash_span_end(low, snapshot_homes_per_interval_);
            entries.clear();
            // The saved versions in this interval replace whatever the live map holds for them.
            const auto saved_begin = snapshot_.saved.lower_bound({low, {}});
            auto saved_end = saved_begin;
            saved_in_interval_.clear();
            for (; saved_end != snapshot_.saved.end() && saved_end->first.first <= high; ++saved_end) {
                saved_in_interval_.emplace_back(saved_end->first.first, saved_end->first.second);
                if (saved_end->second) {
                    entries.push_back({saved_end->first.first, saved_end->first.second, *saved_end->second});
                }
            }
            map_.for_each_in_hash_range(
                low, high, [&](std::uint64_t hash, std::string_view key, std::string_view value) {
                    if (saved_in_interval_.empty() ||
                        !std::binary_search(saved_in_interval_.begin(), saved_in_interval_.end(),
                                            std::pair<std::uint64_t, std::string_view>{hash, key})) {
                        entries.push_back({hash, key, value});
                    }
                });
            write_sorted(entries, out);
            snapshot_.saved.erase(saved_begin, saved_end);
            if (high == ~std::uint64_t{0}) {
                snapshot_ = snapshot_progress{};
                return true;
            }
            snapshot_.next_hash = high + 1;
        }
        return false;
    }

    void snapshot_abandon() { snapshot_ = snapshot_progress{}; }

    /// Keys saved for the snapshot in progress (their pre-snapshot versions), for tests and benches.
    std::size_t snapshot_saved_keys() const noexcept { return snapshot_.saved.size(); }

    bool restore(std::span<const std::uint8_t> bytes) {
        vsr::byte_reader r(bytes);
        std::uint64_t count = 0;
        if (!r.read_u64(count) || count > bytes.size() / 9) return false;  // an entry is 9 bytes or more
        flat_map restored;
        restored.reserve(static_cast<std::size_t>(count));
        for (std::uint64_t i = 0; i < count; ++i) {
            std::uint32_t key_size = 0, value_size = 0;
            std::span<const std::uint8_t> key, value;
            if (!(r.read_u32(key_size) && r.read_u32(value_size) && key_size > 0 && key_size <= key_size_max &&
                  value_size <= value_size_max && r.read_span(key_size, key) && r.read_span(value_size, value))) {
                return false;
            }
            restored.insert_or_assign(as_view(key), as_view(value));
        }
        if (r.remaining() != 0 || restored.size() != count) return false;  // also rejects duplicate keys
        map_ = std::move(restored);
        snapshot_abandon();
        return true;
    }

    std::size_t result_size_max() const noexcept { return 1 + value_size_max; }
    std::size_t size() const noexcept { return map_.size(); }

    std::optional<std::string_view> find(std::string_view key) const { return map_.find(key); }

private:
    struct hashed_entry {
        std::uint64_t hash;
        std::string_view key;
        std::string_view value;
    };

    struct snapshot_progress {
        bool active = false;
        bool count_written = false;
        std::uint64_t count = 0;
        std::uint64_t next_hash = 0;  // every hash below it has been appended
        /// Keys changed since snapshot_begin() whose hash the snapshot has not reached: the version
        /// it must append (nullopt: the key did not exist). Bounded by the keys changed meanwhile.
        std::map<std::pair<std::uint64_t, std::string>, std::optional<std::string>> saved;
    };

    static void write_sorted(std::vector<hashed_entry>& entries, std::vector<std::uint8_t>& out) {
        std::sort(entries.begin(), entries.end(), [](const hashed_entry& a, const hashed_entry& b) {
            return a.hash != b.hash ? a.hash < b.hash : a.key < b.key;
        });
        vsr::byte_writer w(out);
        for (const hashed_entry& e : entries) {
            w.u32(static_cast<std::uint32_t>(e.key.size()));
            w.u32(static_cast<std::uint32_t>(e.value.size()));
            w.bytes(as_bytes(e.key));
            w.bytes(as_bytes(e.value));
        }
    }

    /// Copy-on-write: before `key` changes, keep the version a snapshot in progress still needs.
    void preserve_for_snapshot(std::string_view key) {
        if (!snapshot_.active) return;
        const std::uint64_t hash = flat_map::hash_of(key);
        if (hash < snapshot_.next_hash) return;  // already appended
        std::pair<std::uint64_t, std::string> id{hash, std::string(key)};
        if (snapshot_.saved.contains(id)) return;  // the pre-snapshot version is saved already
        const auto value = map_.find(key);
        snapshot_.saved.emplace(std::move(id), value ? std::optional<std::string>(*value) : std::nullopt);
    }

    static std::span<const std::uint8_t> as_bytes(std::string_view s) {
        return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
    }
    static std::string_view as_view(std::span<const std::uint8_t> s) {
        return {reinterpret_cast<const char*>(s.data()), s.size()};
    }

    void put(std::string_view key, std::string_view value, std::vector<std::uint8_t>& out) {
        preserve_for_snapshot(key);
        map_.insert_or_assign(key, value);
        out.push_back(static_cast<std::uint8_t>(status::ok));
    }

    void get(std::string_view key, std::vector<std::uint8_t>& out) const {
        const auto value = map_.find(key);
        if (!value) {
            out.push_back(static_cast<std::uint8_t>(status::not_found));
            return;
        }
        out.push_back(static_cast<std::uint8_t>(status::ok));
        out.insert(out.end(), value->begin(), value->end());
    }

    void del(std::string_view key, std::vector<std::uint8_t>& out) {
        preserve_for_snapshot(key);
        const bool found = map_.erase(key);
        out.push_back(static_cast<std::uint8_t>(found ? status::ok : status::not_found));
    }

    void cas(std::string_view key, std::string_view expected, std::string_view value, std::vector<std::uint8_t>& out) {
        preserve_for_snapshot(key);
        const bool replaced = map_.replace_if_equal(key, expected, value);
        out.push_back(static_cast<std::uint8_t>(replaced ? status::ok : status::mismatch));
    }

    flat_map map_;
    std::size_t snapshot_homes_per_interval_ = 256;  // one snapshot interval: this many table slots
    snapshot_progress snapshot_;
    std::vector<std::pair<std::uint64_t, std::string_view>> saved_in_interval_;  // snapshot_step's scratch
};
static_assert(vsr::state_machine_with_queries<state_machine>);  // get is answered as a query
static_assert(vsr::state_machine_with_incremental_snapshot<state_machine>);

}  // namespace kv
