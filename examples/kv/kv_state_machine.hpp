// The smallest useful VSR state machine: a key-value store with put, get, del and
// compare-and-set. It is the teaching example for instantiating vsr::basic_replica.
//
// Operation (little-endian):  u8 kind | u16 key_size | u32 value_size | u32 expected_size
//                             | key | value | expected
// Result:                     u8 status | value (get only)
#pragma once

#include <algorithm>
#include <cstdint>
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
        std::vector<std::pair<std::string_view, std::string_view>> sorted;
        sorted.reserve(map_.size());
        map_.for_each([&](std::string_view key, std::string_view value) { sorted.emplace_back(key, value); });
        std::sort(sorted.begin(), sorted.end());
        vsr::byte_writer w(out);
        w.u64(sorted.size());
        for (const auto& [key, value] : sorted) {
            w.u32(static_cast<std::uint32_t>(key.size()));
            w.u32(static_cast<std::uint32_t>(value.size()));
            w.bytes(as_bytes(key));
            w.bytes(as_bytes(value));
        }
    }

    bool restore(std::span<const std::uint8_t> bytes) {
        vsr::byte_reader r(bytes);
        std::uint64_t count = 0;
        if (!r.read_u64(count) || count > bytes.size() / 8) return false;
        flat_map restored;
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
        return true;
    }

    std::size_t result_size_max() const noexcept { return 1 + value_size_max; }
    std::size_t size() const noexcept { return map_.size(); }

    std::optional<std::string_view> find(std::string_view key) const { return map_.find(key); }

private:
    static std::span<const std::uint8_t> as_bytes(std::string_view s) {
        return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
    }
    static std::string_view as_view(std::span<const std::uint8_t> s) {
        return {reinterpret_cast<const char*>(s.data()), s.size()};
    }

    void put(std::string_view key, std::string_view value, std::vector<std::uint8_t>& out) {
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
        const bool found = map_.erase(key);
        out.push_back(static_cast<std::uint8_t>(found ? status::ok : status::not_found));
    }

    void cas(std::string_view key, std::string_view expected, std::string_view value, std::vector<std::uint8_t>& out) {
        const bool replaced = map_.replace_if_equal(key, expected, value);
        out.push_back(static_cast<std::uint8_t>(replaced ? status::ok : status::mismatch));
    }

    flat_map map_;
};
static_assert(vsr::state_machine_with_queries<state_machine>);  // get is answered as a query

}  // namespace kv
