// Operations and results of the metadata state machine (toastyfs/metadata_state_machine.hpp).
//
// The proxy encodes operations and decodes results; the state machine decodes operations and
// encodes results. Both sides use this one header, so each format is defined exactly once.
//
// Conventions for every format below:
// - Integers are little-endian with the width shown (u8, u16, u32, u64).
// - `key`, `string` = u16 size | bytes.  `md5` = 16 bytes, `sha256` = 32 bytes.
// - Decoders take untrusted bytes: they reject trailing bytes, short input, out-of-range sizes,
//   unknown enum values, and unsorted or duplicate entries where order matters. They never
//   assert, and never allocate more than the input could describe.
// - The first byte of an operation is its opcode. The first byte of a result is its status; a
//   result whose status is not `ok` is exactly that one byte.
//
// Shared pieces
//
//   attributes (in put_object, get_object/head_object results):
//     u64 size              logical size of the object in bytes
//     md5 md5               the ETag
//     sha256 sha256         of the whole content
//     string content_type   0..256 bytes of HTTP field-value characters (HTAB, SP..~, 0x80..0xFF)
//     u16 metadata_count    then per pair: u8 name_size | name | u16 value_size | value
//                           names: the lower-case suffix after "x-amz-meta-" (1+ token chars,
//                           no upper case), strictly ascending; values: field-value characters;
//                           sum of all name and value bytes <= 2048
//   data (in put_object, get_object/head_object results):
//     u8 data_kind          0 inline | 1 chunks | 2 omitted (head_object results only)
//     inline:  u32 data_size | data                    data_size == size
//     chunks:  u32 count | count x (sha256 | u32 size | u16 holders)
//              count >= 1, every size > 0, holders != 0, sizes sum to `size`, and a sha256
//              that repeats in the list repeats its size
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "toastyfs/types.hpp"
#include "vsr/bytes.hpp"

namespace toastyfs {

// ---- format limits (fixed by the S3 interface, the same for every deployment) ----------------

/// Object keys are 1..key_size_max bytes (any bytes). Longer or empty → the decoder rejects it.
inline constexpr std::size_t key_size_max = 1024;
/// Content-Type values longer than this → the decoder rejects the put.
inline constexpr std::size_t content_type_size_max = 256;
/// Sum of the bytes of all user metadata names and values. More → the decoder rejects the put.
inline constexpr std::size_t user_metadata_size_max = 2048;
/// list_objects max_keys must be 1..list_keys_max (the S3 maximum); otherwise rejected.
inline constexpr std::uint16_t list_keys_max = 1000;
/// chunks_held asks about 1..chunks_held_max digests; more → rejected.
inline constexpr std::size_t chunks_held_max = 1024;

// ---- enums ----------------------------------------------------------------------------------

enum class opcode : std::uint8_t {
    put_object = 1,
    get_object = 2,
    delete_object = 3,
    list_objects = 4,
    clock = 5,
    add_holder = 6,
    remove_holder = 7,
    list_chunks = 8,
    chunks_held = 9,
    stats = 10,
    head_object = 11,
};
inline constexpr std::uint8_t opcode_max = 11;

enum class status : std::uint8_t {
    ok = 0,
    not_found = 1,            // no object under the key
    precondition_failed = 2,  // the put/delete condition does not hold (HTTP 412)
    lease_expired = 3,        // lease_begin_ns is in the future or older than upload_lease_ns
    invalid = 4,              // malformed operation, unknown opcode, or size conflict with the index
    store_full = 5,           // objects_max, chunks_max or inline_bytes_max reached
    not_referenced = 6,       // the chunk is not in the index
    last_holder = 7,          // remove_holder would leave the chunk with no holder
    too_large = 8,            // object_size_max, inline_size_max or chunks_per_object_max exceeded
};
inline constexpr std::uint8_t status_max = 8;

inline const char* to_string(status s) noexcept {
    constexpr const char* names[status_max + 1] = {"ok",       "not_found",  "precondition_failed", "lease_expired",
                                                   "invalid",  "store_full", "not_referenced",      "last_holder",
                                                   "too_large"};
    const auto i = static_cast<std::size_t>(s);
    return i <= status_max ? names[i] : "unknown";
}

enum class condition_kind : std::uint8_t {
    none = 0,
    if_match = 1,           // the object exists and its md5 equals etag
    if_none_match = 2,      // the object does not exist, or its md5 differs from etag
    if_none_match_any = 3,  // the object does not exist (create-only, If-None-Match: *)
};

enum class data_kind : std::uint8_t { inline_data = 0, chunks = 1, omitted = 2 };

// ---- plain value types ----------------------------------------------------------------------

struct condition {
    condition_kind kind = condition_kind::none;
    md5_digest etag{};  // used by if_match and if_none_match only
    friend bool operator==(const condition&, const condition&) = default;
};

/// One x-amz-meta-* header: `name` is the lower-case part after "x-amz-meta-".
struct user_metadata_entry {
    std::string name;
    std::string value;
    friend bool operator==(const user_metadata_entry&, const user_metadata_entry&) = default;
};

/// A chunk of an object: its digest, size, and the nodes holding it.
struct chunk_location {
    sha256_digest sha256{};
    std::uint32_t size = 0;
    node_set holders = 0;
    friend bool operator==(const chunk_location&, const chunk_location&) = default;
};

// ---- operations -----------------------------------------------------------------------------
//
// put_object     u8 opcode=1 | key | attributes | u8 condition (0..3) | md5 etag (conditions 1, 2
//                only) | u64 lease_begin_ns (ignored for inline data) | data (inline or chunks)
// get_object     u8 opcode=2 | key
// delete_object  u8 opcode=3 | key | u8 condition (0 none | 1 if_match) | md5 etag (if_match)
// list_objects   u8 opcode=4 | string prefix (0..1024) | string start_after (0..1024)
//                | u16 max_keys (1..1000)
// clock          u8 opcode=5
// add_holder     u8 opcode=6 | sha256 | u8 node (0..15) | u64 lease_begin_ns
// remove_holder  u8 opcode=7 | sha256 | u8 node (0..15)
// list_chunks    u8 opcode=8 | u8 has_after (0|1) | sha256 after (has_after only)
//                | u16 max_entries (1..65535)
// chunks_held    u8 opcode=9 | u8 node (0..15) | u16 count (1..1024) | count x sha256
// stats          u8 opcode=10
// head_object    u8 opcode=11 | key

struct put_object_operation {
    std::string key;
    std::uint64_t size = 0;
    md5_digest md5{};
    sha256_digest sha256{};
    std::string content_type;
    std::vector<user_metadata_entry> user_metadata;  // sorted by name
    condition put_condition;
    std::uint64_t lease_begin_ns = 0;         // from a clock operation before the chunks were written
    data_kind kind = data_kind::inline_data;  // inline_data or chunks
    std::vector<std::uint8_t> inline_data;    // kind == inline_data
    std::vector<chunk_location> chunks;       // kind == chunks, in content order
    friend bool operator==(const put_object_operation&, const put_object_operation&) = default;
};
struct get_object_operation {
    std::string key;
    friend bool operator==(const get_object_operation&, const get_object_operation&) = default;
};
/// Like get_object, but the result omits the data (inline bytes or chunk list).
struct head_object_operation {
    std::string key;
    friend bool operator==(const head_object_operation&, const head_object_operation&) = default;
};
struct delete_object_operation {
    std::string key;
    condition delete_condition;  // none or if_match
    friend bool operator==(const delete_object_operation&, const delete_object_operation&) = default;
};
struct list_objects_operation {
    std::string prefix;
    std::string start_after;
    std::uint16_t max_keys = list_keys_max;
    friend bool operator==(const list_objects_operation&, const list_objects_operation&) = default;
};
struct clock_operation {
    friend bool operator==(const clock_operation&, const clock_operation&) = default;
};
struct add_holder_operation {
    sha256_digest sha256{};
    std::uint8_t node = 0;
    std::uint64_t lease_begin_ns = 0;
    friend bool operator==(const add_holder_operation&, const add_holder_operation&) = default;
};
struct remove_holder_operation {
    sha256_digest sha256{};
    std::uint8_t node = 0;
    friend bool operator==(const remove_holder_operation&, const remove_holder_operation&) = default;
};
struct list_chunks_operation {
    std::optional<sha256_digest> after;  // start strictly after this digest; nullopt: from the first
    std::uint16_t max_entries = 0xFFFF;
    friend bool operator==(const list_chunks_operation&, const list_chunks_operation&) = default;
};
struct chunks_held_operation {
    std::uint8_t node = 0;
    std::vector<sha256_digest> chunks;
    friend bool operator==(const chunks_held_operation&, const chunks_held_operation&) = default;
};
struct stats_operation {
    friend bool operator==(const stats_operation&, const stats_operation&) = default;
};

using operation = std::variant<put_object_operation, get_object_operation, delete_object_operation,
                               list_objects_operation, clock_operation, add_holder_operation, remove_holder_operation,
                               list_chunks_operation, chunks_held_operation, stats_operation, head_object_operation>;

// ---- results --------------------------------------------------------------------------------
//
// Any op, error      u8 status (not ok)                                      exactly 1 byte
// put_object         u8 status=ok | u64 version (>= 1) | u64 last_modified_ns
// get/head_object    u8 status=ok | u64 version (>= 1) | u64 last_modified_ns | attributes | data
//                    (data_kind: get → inline or chunks with the CURRENT holders; head → omitted)
// delete_object, add_holder, remove_holder
//                    u8 status=ok
// list_objects       u8 status=ok | u8 truncated (0|1) | u16 count (0..1000)
//                    | count x (key | u64 size | md5 | u64 last_modified_ns)
//                    keys strictly ascending; truncated requires count >= 1 (the cursor: pass
//                    the last key as start_after to continue)
// clock              u8 status=ok | u64 timestamp_ns
// list_chunks        u8 status=ok | u8 truncated (0|1) | u32 count
//                    | count x (sha256 | u32 size | u64 refcount | u16 holders)
//                    digests strictly ascending; size, refcount and holders nonzero; truncated
//                    requires count >= 1 (continue with after = the last digest)
// chunks_held        u8 status=ok | u16 count | ceil(count/8) bytes: bit i (byte i/8, bit i%8,
//                    least significant first) = digest i is indexed and held by the node;
//                    padding bits 0
// stats              u8 status=ok | u64 objects | u64 chunks | u64 logical_bytes
//                    | u64 inline_bytes | u64 chunk_bytes (sum of sizes of indexed chunks)

/// delete_object, add_holder and remove_holder, and the status of any result.
struct status_result {
    status result_status = status::invalid;
    friend bool operator==(const status_result&, const status_result&) = default;
};
struct put_object_result {
    status result_status = status::invalid;
    std::uint64_t version = 0;
    std::uint64_t last_modified_ns = 0;
    friend bool operator==(const put_object_result&, const put_object_result&) = default;
};
/// get_object and head_object.
struct object_result {
    status result_status = status::invalid;
    std::uint64_t version = 0;
    std::uint64_t last_modified_ns = 0;
    std::uint64_t size = 0;
    md5_digest md5{};
    sha256_digest sha256{};
    std::string content_type;
    std::vector<user_metadata_entry> user_metadata;
    data_kind kind = data_kind::omitted;
    std::vector<std::uint8_t> inline_data;
    std::vector<chunk_location> chunks;
    friend bool operator==(const object_result&, const object_result&) = default;
};
struct list_objects_entry {
    std::string key;
    std::uint64_t size = 0;
    md5_digest md5{};
    std::uint64_t last_modified_ns = 0;
    friend bool operator==(const list_objects_entry&, const list_objects_entry&) = default;
};
struct list_objects_result {
    status result_status = status::invalid;
    bool truncated = false;
    std::vector<list_objects_entry> entries;
    /// The last key returned (not sent: the decoder fills it from the last entry); empty if none.
    std::string cursor;
    friend bool operator==(const list_objects_result&, const list_objects_result&) = default;
};
struct clock_result {
    status result_status = status::invalid;
    std::uint64_t timestamp_ns = 0;
    friend bool operator==(const clock_result&, const clock_result&) = default;
};
struct chunk_info {
    sha256_digest sha256{};
    std::uint32_t size = 0;
    std::uint64_t refcount = 0;
    node_set holders = 0;
    friend bool operator==(const chunk_info&, const chunk_info&) = default;
};
struct list_chunks_result {
    status result_status = status::invalid;
    bool truncated = false;
    std::vector<chunk_info> entries;
    friend bool operator==(const list_chunks_result&, const list_chunks_result&) = default;
};
struct chunks_held_result {
    status result_status = status::invalid;
    std::vector<bool> held;  // one per digest asked about, in order
    friend bool operator==(const chunks_held_result&, const chunks_held_result&) = default;
};
struct stats_result {
    status result_status = status::invalid;
    std::uint64_t objects = 0;
    std::uint64_t chunks = 0;
    std::uint64_t logical_bytes = 0;
    std::uint64_t inline_bytes = 0;
    std::uint64_t chunk_bytes = 0;
    friend bool operator==(const stats_result&, const stats_result&) = default;
};

// ---- encoded sizes (used by the state machine to bound results) -----------------------------

inline constexpr std::size_t chunk_location_encoded_size = 32 + 4 + 2;
inline constexpr std::size_t chunk_info_encoded_size = 32 + 4 + 8 + 2;
inline constexpr std::size_t list_objects_result_header_size = 1 + 1 + 2;
inline constexpr std::size_t list_chunks_result_header_size = 1 + 1 + 4;
/// Every name is at least one byte, so there are at most user_metadata_size_max pairs, each
/// with 3 bytes of framing.
inline constexpr std::size_t user_metadata_encoded_size_max = 2 + 4 * user_metadata_size_max;
inline constexpr std::size_t attributes_encoded_size_max =
    8 + 16 + 32 + 2 + content_type_size_max + user_metadata_encoded_size_max;

constexpr std::size_t list_objects_entry_encoded_size(std::size_t key_size) noexcept {
    return 2 + key_size + 8 + 16 + 8;
}
constexpr std::size_t data_encoded_size_max(std::size_t inline_size_max, std::size_t chunks_per_object_max) noexcept {
    return 1 + 4 + std::max(inline_size_max, chunks_per_object_max * chunk_location_encoded_size);
}
/// Largest get_object result an object within these limits can produce.
constexpr std::size_t object_result_size_max(std::size_t inline_size_max, std::size_t chunks_per_object_max) noexcept {
    return 1 + 8 + 8 + attributes_encoded_size_max + data_encoded_size_max(inline_size_max, chunks_per_object_max);
}
/// Largest put_object operation for an object within these limits: the proxy compares it with
/// vsr::config::operation_size_max().
constexpr std::size_t put_object_operation_size_max(std::size_t inline_size_max,
                                                    std::size_t chunks_per_object_max) noexcept {
    return 1 + 2 + key_size_max + attributes_encoded_size_max + 1 + 16 + 8 +
           data_encoded_size_max(inline_size_max, chunks_per_object_max);
}
inline constexpr std::size_t chunks_held_result_size_max = 1 + 2 + (chunks_held_max + 7) / 8;
inline constexpr std::size_t stats_result_size = 1 + 5 * 8;

// ---- validation of field contents -----------------------------------------------------------

/// HTTP field-value characters: HTAB, SP, visible ASCII, obs-text. No CR, LF, NUL or DEL.
constexpr bool is_field_value_byte(std::uint8_t c) noexcept { return c == '\t' || (c >= 0x20 && c != 0x7F); }
/// HTTP token characters without upper-case letters.
constexpr bool is_metadata_name_byte(std::uint8_t c) noexcept {
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) return true;
    constexpr std::string_view others = "!#$%&'*+-.^_`|~";
    return others.find(static_cast<char>(c)) != std::string_view::npos;
}
inline bool valid_field_value(std::string_view text) noexcept {
    return std::all_of(text.begin(), text.end(),
                       [](char c) { return is_field_value_byte(static_cast<std::uint8_t>(c)); });
}
inline bool valid_content_type(std::string_view text) noexcept {
    return text.size() <= content_type_size_max && valid_field_value(text);
}
inline bool valid_metadata_name(std::string_view name) noexcept {
    return !name.empty() && name.size() <= 0xFF && std::all_of(name.begin(), name.end(), [](char c) {
        return is_metadata_name_byte(static_cast<std::uint8_t>(c));
    });
}
/// Names valid and strictly ascending (so unique), values valid, total within the limit.
inline bool valid_user_metadata(std::span<const user_metadata_entry> entries) noexcept {
    std::size_t total = 0;
    for (std::size_t i = 0; i < entries.size(); ++i) {
        const auto& entry = entries[i];
        if (!valid_metadata_name(entry.name) || entry.value.size() > 0xFFFF || !valid_field_value(entry.value)) {
            return false;
        }
        if (i > 0 && !(entries[i - 1].name < entry.name)) return false;
        total += entry.name.size() + entry.value.size();
        if (total > user_metadata_size_max) return false;
    }
    return true;
}
constexpr bool valid_key(std::string_view key) noexcept { return !key.empty() && key.size() <= key_size_max; }

/// The rules for a chunk list of an object of `size` bytes (see "data" above). `Chunk` has
/// sha256 and size members. Holders are checked by the caller where they are present.
template <typename Chunk>
bool valid_chunk_list(std::uint64_t size, std::span<const Chunk> chunks) {
    if (chunks.empty()) return false;
    std::uint64_t total = 0;  // count < 2^32 and sizes < 2^32: cannot overflow
    std::vector<std::pair<sha256_digest, std::uint32_t>> sorted;
    sorted.reserve(chunks.size());
    for (const auto& chunk : chunks) {
        if (chunk.size == 0) return false;
        total += chunk.size;
        sorted.emplace_back(chunk.sha256, chunk.size);
    }
    if (total != size) return false;
    std::sort(sorted.begin(), sorted.end());
    for (std::size_t i = 1; i < sorted.size(); ++i) {
        if (sorted[i].first == sorted[i - 1].first && sorted[i].second != sorted[i - 1].second) {
            return false;
        }
    }
    return true;
}

// ---- byte codec helpers ---------------------------------------------------------------------

namespace detail {

using vsr::byte_reader;
using vsr::byte_writer;

// Pieces of the formats above that vsr's byte codec does not know.

/// `key`/`string`: u16 size | bytes, with size in [size_min, size_max].
inline bool read_sized_string(byte_reader& r, std::string& v, std::size_t size_min, std::size_t size_max) {
    std::uint16_t size = 0;
    return r.read_u16(size) && size >= size_min && size <= size_max && r.read_string(size, v);
}
/// u16 size | bytes. The caller keeps v.size() within u16.
inline void write_sized_string(byte_writer& w, std::string_view v) {
    w.u16(static_cast<std::uint16_t>(v.size()));
    w.string(v);
}
/// A u8 that must be 0 or 1.
inline bool read_flag(byte_reader& r, bool& v) noexcept {
    std::uint8_t b = 0;
    if (!r.read_u8(b) || b > 1) return false;
    v = b == 1;
    return true;
}

// Attributes: shared by put_object and object_result (same member names).
template <typename T>
void write_attributes(byte_writer& w, const T& v) {
    w.u64(v.size);
    w.bytes(v.md5);
    w.bytes(v.sha256);
    write_sized_string(w, v.content_type);
    w.u16(static_cast<std::uint16_t>(v.user_metadata.size()));
    for (const auto& entry : v.user_metadata) {
        w.u8(static_cast<std::uint8_t>(entry.name.size()));
        w.string(entry.name);
        write_sized_string(w, entry.value);
    }
}

template <typename T>
bool read_attributes(byte_reader& r, T& v) {
    std::uint16_t count = 0;
    if (!(r.read_u64(v.size) && r.read_bytes(v.md5) && r.read_bytes(v.sha256) &&
          read_sized_string(r, v.content_type, 0, content_type_size_max) && valid_content_type(v.content_type) &&
          r.read_u16(count) && count <= user_metadata_size_max && count <= r.remaining() / 3)) {
        return false;
    }
    v.user_metadata.resize(count);
    for (auto& entry : v.user_metadata) {
        std::uint8_t name_size = 0;
        if (!(r.read_u8(name_size) && r.read_string(name_size, entry.name) &&
              read_sized_string(r, entry.value, 0, user_metadata_size_max))) {
            return false;
        }
    }
    return valid_user_metadata(v.user_metadata);
}

// Data: inline bytes or a chunk list (with holders); `omitted` is accepted only in head results.
template <typename T>
void write_data(byte_writer& w, const T& v) {
    w.u8(static_cast<std::uint8_t>(v.kind));
    if (v.kind == data_kind::inline_data) {
        w.u32(static_cast<std::uint32_t>(v.inline_data.size()));
        w.bytes(v.inline_data);
    } else if (v.kind == data_kind::chunks) {
        w.u32(static_cast<std::uint32_t>(v.chunks.size()));
        for (const auto& chunk : v.chunks) {
            w.bytes(chunk.sha256);
            w.u32(chunk.size);
            w.u16(chunk.holders);
        }
    }
}

template <typename T>
bool read_data(byte_reader& r, T& v, bool allow_omitted) {
    std::uint8_t kind = 0;
    std::uint32_t count = 0;
    if (!r.read_u8(kind)) return false;
    v.kind = static_cast<data_kind>(kind);
    if (v.kind == data_kind::omitted) return allow_omitted;
    if (v.kind == data_kind::inline_data) {
        return r.read_u32(count) && count == v.size && r.read_bytes(count, v.inline_data);
    }
    if (v.kind != data_kind::chunks) return false;
    if (!r.read_u32(count) || count > r.remaining() / chunk_location_encoded_size) return false;
    v.chunks.resize(count);
    for (auto& chunk : v.chunks) {
        if (!(r.read_bytes(chunk.sha256) && r.read_u32(chunk.size) && r.read_u16(chunk.holders))) return false;
        if (chunk.holders == 0) return false;
    }
    return valid_chunk_list(v.size, std::span<const chunk_location>(v.chunks));
}

inline void write_condition(byte_writer& w, const condition& c) {
    w.u8(static_cast<std::uint8_t>(c.kind));
    if (c.kind == condition_kind::if_match || c.kind == condition_kind::if_none_match) w.bytes(c.etag);
}

inline bool read_condition(byte_reader& r, condition& c, condition_kind kind_max) {
    std::uint8_t kind = 0;
    if (!r.read_u8(kind) || kind > static_cast<std::uint8_t>(kind_max)) return false;
    c.kind = static_cast<condition_kind>(kind);
    if (c.kind == condition_kind::if_match || c.kind == condition_kind::if_none_match) return r.read_bytes(c.etag);
    return true;
}

inline void write_opcode(byte_writer& w, opcode code) { w.u8(static_cast<std::uint8_t>(code)); }

}  // namespace detail

// ---- encoding operations --------------------------------------------------------------------
//
// encode_to(x, out) appends; encode(x) returns a fresh buffer. Encoding does not validate: an
// operation that breaks the rules encodes, and the state machine answers `invalid`.

inline void encode_to(const put_object_operation& op, std::vector<std::uint8_t>& out) {
    detail::byte_writer w(out);
    detail::write_opcode(w, opcode::put_object);
    detail::write_sized_string(w, op.key);
    detail::write_attributes(w, op);
    detail::write_condition(w, op.put_condition);
    w.u64(op.lease_begin_ns);
    detail::write_data(w, op);
}
inline void encode_to(const get_object_operation& op, std::vector<std::uint8_t>& out) {
    detail::byte_writer w(out);
    detail::write_opcode(w, opcode::get_object);
    detail::write_sized_string(w, op.key);
}
inline void encode_to(const head_object_operation& op, std::vector<std::uint8_t>& out) {
    detail::byte_writer w(out);
    detail::write_opcode(w, opcode::head_object);
    detail::write_sized_string(w, op.key);
}
inline void encode_to(const delete_object_operation& op, std::vector<std::uint8_t>& out) {
    detail::byte_writer w(out);
    detail::write_opcode(w, opcode::delete_object);
    detail::write_sized_string(w, op.key);
    detail::write_condition(w, op.delete_condition);
}
inline void encode_to(const list_objects_operation& op, std::vector<std::uint8_t>& out) {
    detail::byte_writer w(out);
    detail::write_opcode(w, opcode::list_objects);
    detail::write_sized_string(w, op.prefix);
    detail::write_sized_string(w, op.start_after);
    w.u16(op.max_keys);
}
inline void encode_to(const clock_operation&, std::vector<std::uint8_t>& out) {
    detail::byte_writer w(out);
    detail::write_opcode(w, opcode::clock);
}
inline void encode_to(const add_holder_operation& op, std::vector<std::uint8_t>& out) {
    detail::byte_writer w(out);
    detail::write_opcode(w, opcode::add_holder);
    w.bytes(op.sha256);
    w.u8(op.node);
    w.u64(op.lease_begin_ns);
}
inline void encode_to(const remove_holder_operation& op, std::vector<std::uint8_t>& out) {
    detail::byte_writer w(out);
    detail::write_opcode(w, opcode::remove_holder);
    w.bytes(op.sha256);
    w.u8(op.node);
}
inline void encode_to(const list_chunks_operation& op, std::vector<std::uint8_t>& out) {
    detail::byte_writer w(out);
    detail::write_opcode(w, opcode::list_chunks);
    w.u8(op.after ? 1 : 0);
    if (op.after) w.bytes(*op.after);
    w.u16(op.max_entries);
}
inline void encode_to(const chunks_held_operation& op, std::vector<std::uint8_t>& out) {
    detail::byte_writer w(out);
    detail::write_opcode(w, opcode::chunks_held);
    w.u8(op.node);
    w.u16(static_cast<std::uint16_t>(op.chunks.size()));
    for (const auto& sha : op.chunks) w.bytes(sha);
}
inline void encode_to(const stats_operation&, std::vector<std::uint8_t>& out) {
    detail::byte_writer w(out);
    detail::write_opcode(w, opcode::stats);
}
inline void encode_to(const operation& op, std::vector<std::uint8_t>& out) {
    std::visit([&](const auto& alternative) { encode_to(alternative, out); }, op);
}

// ---- encoding results -----------------------------------------------------------------------
//
// A result whose status is not ok encodes as that status byte alone, whatever the other fields.

namespace detail {
inline bool write_status(byte_writer& w, status s) {
    w.u8(static_cast<std::uint8_t>(s));
    return s == status::ok;
}
}  // namespace detail

inline void encode_to(const status_result& result, std::vector<std::uint8_t>& out) {
    detail::byte_writer w(out);
    detail::write_status(w, result.result_status);
}
inline void encode_to(const put_object_result& result, std::vector<std::uint8_t>& out) {
    detail::byte_writer w(out);
    if (!detail::write_status(w, result.result_status)) return;
    w.u64(result.version);
    w.u64(result.last_modified_ns);
}
inline void encode_to(const object_result& result, std::vector<std::uint8_t>& out) {
    detail::byte_writer w(out);
    if (!detail::write_status(w, result.result_status)) return;
    w.u64(result.version);
    w.u64(result.last_modified_ns);
    detail::write_attributes(w, result);
    detail::write_data(w, result);
}
inline void encode_to(const list_objects_result& result, std::vector<std::uint8_t>& out) {
    detail::byte_writer w(out);
    if (!detail::write_status(w, result.result_status)) return;
    w.u8(result.truncated ? 1 : 0);
    w.u16(static_cast<std::uint16_t>(result.entries.size()));
    for (const auto& entry : result.entries) {
        detail::write_sized_string(w, entry.key);
        w.u64(entry.size);
        w.bytes(entry.md5);
        w.u64(entry.last_modified_ns);
    }
}
inline void encode_to(const clock_result& result, std::vector<std::uint8_t>& out) {
    detail::byte_writer w(out);
    if (!detail::write_status(w, result.result_status)) return;
    w.u64(result.timestamp_ns);
}
inline void encode_to(const list_chunks_result& result, std::vector<std::uint8_t>& out) {
    detail::byte_writer w(out);
    if (!detail::write_status(w, result.result_status)) return;
    w.u8(result.truncated ? 1 : 0);
    w.u32(static_cast<std::uint32_t>(result.entries.size()));
    for (const auto& entry : result.entries) {
        w.bytes(entry.sha256);
        w.u32(entry.size);
        w.u64(entry.refcount);
        w.u16(entry.holders);
    }
}
inline void encode_to(const chunks_held_result& result, std::vector<std::uint8_t>& out) {
    detail::byte_writer w(out);
    if (!detail::write_status(w, result.result_status)) return;
    w.u16(static_cast<std::uint16_t>(result.held.size()));
    std::vector<std::uint8_t> bitmap((result.held.size() + 7) / 8, 0);
    for (std::size_t i = 0; i < result.held.size(); ++i) {
        if (result.held[i]) bitmap[i / 8] = static_cast<std::uint8_t>(bitmap[i / 8] | (1u << (i % 8)));
    }
    w.bytes(bitmap);
}
inline void encode_to(const stats_result& result, std::vector<std::uint8_t>& out) {
    detail::byte_writer w(out);
    if (!detail::write_status(w, result.result_status)) return;
    w.u64(result.objects);
    w.u64(result.chunks);
    w.u64(result.logical_bytes);
    w.u64(result.inline_bytes);
    w.u64(result.chunk_bytes);
}

template <typename T>
requires requires(const T& value, std::vector<std::uint8_t>& out) { encode_to(value, out); }
std::vector<std::uint8_t> encode(const T& value) {
    std::vector<std::uint8_t> out;
    encode_to(value, out);
    return out;
}

// ---- decoding operations --------------------------------------------------------------------

namespace detail {

inline bool read_node(byte_reader& r, std::uint8_t& node) noexcept { return r.read_u8(node) && node < nodes_max; }

inline bool read_operation(byte_reader& r, put_object_operation& op) {
    return read_sized_string(r, op.key, 1, key_size_max) && read_attributes(r, op) &&
           read_condition(r, op.put_condition, condition_kind::if_none_match_any) && r.read_u64(op.lease_begin_ns) &&
           read_data(r, op, false);
}
inline bool read_operation(byte_reader& r, get_object_operation& op) {
    return read_sized_string(r, op.key, 1, key_size_max);
}
inline bool read_operation(byte_reader& r, head_object_operation& op) {
    return read_sized_string(r, op.key, 1, key_size_max);
}
inline bool read_operation(byte_reader& r, delete_object_operation& op) {
    return read_sized_string(r, op.key, 1, key_size_max) &&
           read_condition(r, op.delete_condition, condition_kind::if_match);
}
inline bool read_operation(byte_reader& r, list_objects_operation& op) {
    return read_sized_string(r, op.prefix, 0, key_size_max) && read_sized_string(r, op.start_after, 0, key_size_max) &&
           r.read_u16(op.max_keys) && op.max_keys >= 1 && op.max_keys <= list_keys_max;
}
inline bool read_operation(byte_reader&, clock_operation&) { return true; }
inline bool read_operation(byte_reader&, stats_operation&) { return true; }
inline bool read_operation(byte_reader& r, add_holder_operation& op) {
    return r.read_bytes(op.sha256) && read_node(r, op.node) && r.read_u64(op.lease_begin_ns);
}
inline bool read_operation(byte_reader& r, remove_holder_operation& op) {
    return r.read_bytes(op.sha256) && read_node(r, op.node);
}
inline bool read_operation(byte_reader& r, list_chunks_operation& op) {
    bool has_after = false;
    if (!read_flag(r, has_after)) return false;
    if (has_after && !r.read_bytes(op.after.emplace())) return false;
    return r.read_u16(op.max_entries) && op.max_entries >= 1;
}
inline bool read_operation(byte_reader& r, chunks_held_operation& op) {
    std::uint16_t count = 0;
    if (!(read_node(r, op.node) && r.read_u16(count) && count >= 1 && count <= chunks_held_max)) return false;
    op.chunks.resize(count);
    for (auto& sha : op.chunks) {
        if (!r.read_bytes(sha)) return false;
    }
    return true;
}

template <std::size_t I>
std::optional<operation> decode_alternative(byte_reader& r) {
    std::variant_alternative_t<I, operation> op;
    if (!read_operation(r, op) || !r.done()) return std::nullopt;
    return operation(std::in_place_index<I>, std::move(op));
}

}  // namespace detail

/// Decodes and validates an operation from untrusted bytes; nullopt if malformed.
inline std::optional<operation> decode_operation(std::span<const std::uint8_t> bytes) {
    detail::byte_reader r(bytes);
    std::uint8_t code = 0;
    if (!r.read_u8(code)) return std::nullopt;
    switch (static_cast<opcode>(code)) {
        case opcode::put_object: return detail::decode_alternative<0>(r);
        case opcode::get_object: return detail::decode_alternative<1>(r);
        case opcode::delete_object: return detail::decode_alternative<2>(r);
        case opcode::list_objects: return detail::decode_alternative<3>(r);
        case opcode::clock: return detail::decode_alternative<4>(r);
        case opcode::add_holder: return detail::decode_alternative<5>(r);
        case opcode::remove_holder: return detail::decode_alternative<6>(r);
        case opcode::list_chunks: return detail::decode_alternative<7>(r);
        case opcode::chunks_held: return detail::decode_alternative<8>(r);
        case opcode::stats: return detail::decode_alternative<9>(r);
        case opcode::head_object: return detail::decode_alternative<10>(r);
    }
    return std::nullopt;
}

// ---- decoding results -----------------------------------------------------------------------

namespace detail {

/// Reads the status byte. Returns true if the body follows (status ok). On an error status,
/// `well_formed` says whether the result is well-formed (exactly one byte).
inline bool read_status(byte_reader& r, status& s, bool& well_formed) {
    std::uint8_t byte = 0;
    well_formed = false;
    if (!r.read_u8(byte) || byte > status_max) return false;
    s = static_cast<status>(byte);
    if (s == status::ok) return true;
    well_formed = r.done();
    return false;
}

template <typename Result, typename ReadBody>
std::optional<Result> decode_result(std::span<const std::uint8_t> bytes, ReadBody read_body) {
    byte_reader r(bytes);
    Result result;
    bool well_formed = false;
    if (!read_status(r, result.result_status, well_formed)) {
        if (well_formed) return result;
        return std::nullopt;
    }
    if (!read_body(r, result) || !r.done()) return std::nullopt;
    return result;
}

}  // namespace detail

inline std::optional<status_result> decode_status_result(std::span<const std::uint8_t> bytes) {
    return detail::decode_result<status_result>(bytes, [](detail::byte_reader&, status_result&) { return true; });
}

inline std::optional<put_object_result> decode_put_object_result(std::span<const std::uint8_t> bytes) {
    return detail::decode_result<put_object_result>(bytes, [](detail::byte_reader& r, put_object_result& v) {
        return r.read_u64(v.version) && v.version >= 1 && r.read_u64(v.last_modified_ns);
    });
}

/// get_object and head_object results.
inline std::optional<object_result> decode_object_result(std::span<const std::uint8_t> bytes) {
    return detail::decode_result<object_result>(bytes, [](detail::byte_reader& r, object_result& v) {
        return r.read_u64(v.version) && v.version >= 1 && r.read_u64(v.last_modified_ns) &&
               detail::read_attributes(r, v) && detail::read_data(r, v, true);
    });
}

inline std::optional<list_objects_result> decode_list_objects_result(std::span<const std::uint8_t> bytes) {
    return detail::decode_result<list_objects_result>(bytes, [](detail::byte_reader& r, list_objects_result& v) {
        std::uint16_t count = 0;
        if (!(detail::read_flag(r, v.truncated) && r.read_u16(count) && count <= list_keys_max)) return false;
        if (v.truncated && count == 0) return false;
        v.entries.resize(count);
        for (std::size_t i = 0; i < v.entries.size(); ++i) {
            auto& entry = v.entries[i];
            if (!(detail::read_sized_string(r, entry.key, 1, key_size_max) && r.read_u64(entry.size) &&
                  r.read_bytes(entry.md5) && r.read_u64(entry.last_modified_ns))) {
                return false;
            }
            if (i > 0 && !(v.entries[i - 1].key < entry.key)) return false;
        }
        if (!v.entries.empty()) v.cursor = v.entries.back().key;
        return true;
    });
}

inline std::optional<clock_result> decode_clock_result(std::span<const std::uint8_t> bytes) {
    return detail::decode_result<clock_result>(
        bytes, [](detail::byte_reader& r, clock_result& v) { return r.read_u64(v.timestamp_ns); });
}

inline std::optional<list_chunks_result> decode_list_chunks_result(std::span<const std::uint8_t> bytes) {
    return detail::decode_result<list_chunks_result>(bytes, [](detail::byte_reader& r, list_chunks_result& v) {
        std::uint32_t count = 0;
        if (!(detail::read_flag(r, v.truncated) && r.read_u32(count) &&
              count <= r.remaining() / chunk_info_encoded_size)) {
            return false;
        }
        if (v.truncated && count == 0) return false;
        v.entries.resize(count);
        for (std::size_t i = 0; i < v.entries.size(); ++i) {
            auto& entry = v.entries[i];
            if (!(r.read_bytes(entry.sha256) && r.read_u32(entry.size) && r.read_u64(entry.refcount) &&
                  r.read_u16(entry.holders))) {
                return false;
            }
            if (entry.size == 0 || entry.refcount == 0 || entry.holders == 0) return false;
            if (i > 0 && !(v.entries[i - 1].sha256 < entry.sha256)) return false;
        }
        return true;
    });
}

inline std::optional<chunks_held_result> decode_chunks_held_result(std::span<const std::uint8_t> bytes) {
    return detail::decode_result<chunks_held_result>(bytes, [](detail::byte_reader& r, chunks_held_result& v) {
        std::uint16_t count = 0;
        std::vector<std::uint8_t> bitmap;
        if (!(r.read_u16(count) && count <= chunks_held_max && r.read_bytes((count + 7u) / 8u, bitmap))) {
            return false;
        }
        v.held.resize(count);
        for (std::size_t i = 0; i < count; ++i) v.held[i] = ((bitmap[i / 8] >> (i % 8)) & 1u) != 0;
        if (count % 8 != 0 && (bitmap.back() >> (count % 8)) != 0) return false;  // padding bits
        return true;
    });
}

inline std::optional<stats_result> decode_stats_result(std::span<const std::uint8_t> bytes) {
    return detail::decode_result<stats_result>(bytes, [](detail::byte_reader& r, stats_result& v) {
        return r.read_u64(v.objects) && r.read_u64(v.chunks) && r.read_u64(v.logical_bytes) &&
               r.read_u64(v.inline_bytes) && r.read_u64(v.chunk_bytes);
    });
}

}  // namespace toastyfs
