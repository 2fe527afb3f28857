// The metadata state machine: object metadata and the chunk index, replicated through VSR.
//
// It is the single authority on which chunks are referenced and by which nodes they are held.
// Object data lives in content-addressed chunks on storage nodes (or inline, for small objects);
// this machine stores, per key, the object's attributes and chunk list, and per chunk digest its
// size, reference count and holders. Operations and results are defined in metadata_codec.hpp.
//
// Determinism: ordered maps only, and the only time is operation_context::timestamp_ns.
// Totality: every byte string is an operation or `invalid`; state changes only on `ok`.
//
// Snapshot format (all integers little-endian):
//   u64 magic            snapshot_magic ("TFSMETA" + format version byte)
//   u64 next_version     the version the next put gets (>= 1)
//   u64 object_count     then per object, keys strictly ascending:
//     key | u64 version (1..next_version-1, unique) | u64 last_modified_ns | attributes
//     | u8 data_kind (0 inline | 1 chunks)
//     inline: u32 size | data          chunks: u32 count | count x (sha256 | u32 size)
//   u64 chunk_count      then per chunk, digests strictly ascending:
//     sha256 | u32 size | u64 refcount | u16 holders (nonzero)
// restore() recomputes every refcount and size from the object lists and requires the index to
// match exactly, and checks every limit of the options; any mismatch → false, state unchanged.
#pragma once

#include <algorithm>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "toastyfs/metadata_codec.hpp"
#include "toastyfs/planted_bug.hpp"
#include "toastyfs/types.hpp"
#include "vsr/state_machine.hpp"

namespace toastyfs {

/// Capacity limits. Every replica must use the same values (they decide results).
struct metadata_options {
    /// Objects stored. When reached, a put of a new key answers store_full; overwrites of
    /// existing keys still succeed.
    std::uint64_t objects_max = std::uint64_t{1} << 20;
    /// Distinct chunks in the index. When reached, a put that would add a chunk the index does
    /// not hold answers store_full.
    std::uint64_t chunks_max = std::uint64_t{1} << 22;
    /// Chunks in one object's list. A put with more answers too_large.
    std::uint32_t chunks_per_object_max = 2048;
    /// Largest object stored inline in the metadata. Larger inline data answers too_large (the
    /// proxy stores such objects as chunks).
    std::uint32_t inline_size_max = 4096;
    /// Sum of inline data over all objects. A put that would exceed it answers store_full.
    /// Until the log is compacted each inline byte is held twice per node (state and log).
    std::uint64_t inline_bytes_max = std::uint64_t{1} << 30;
    /// Largest logical object size (the S3 maximum, 5 TiB). Larger answers too_large.
    std::uint64_t object_size_max = std::uint64_t{5} << 40;
    /// How long after lease_begin_ns a put with chunks, or an add_holder, is still accepted.
    /// Later (or with a lease_begin_ns in the future) it answers lease_expired and changes
    /// nothing. The garbage collector relies on it: a chunk file unreferenced for longer than
    /// this can no longer become referenced by an upload in flight.
    std::uint64_t upload_lease_ns = std::uint64_t{3600} * 1'000'000'000;
    /// Bytes of a list_objects or list_chunks result. The listing stops before an entry that
    /// would exceed it and reports truncated = true.
    std::uint32_t list_result_bytes_max = 96 * 1024;
    /// Upper bound on every result. Must not exceed vsr::config::operation_size_max() (about
    /// 116 KiB with 1 MiB messages and a pipeline of 8). valid() proves the other limits keep
    /// every result within it.
    std::uint32_t result_size_max = 100 * 1024;
    /// Test-only (see planted_bug.hpp).
    planted_bug bug = planted_bug::none;

    bool valid() const noexcept {
        return objects_max >= 1 && chunks_max >= 1 && chunks_per_object_max >= 1 && object_size_max >= 1 &&
               upload_lease_ns >= 1 && objects_max <= std::numeric_limits<std::uint64_t>::max() / object_size_max &&
               chunks_max <= std::numeric_limits<std::uint64_t>::max() / 0xFFFF'FFFFu &&
               object_result_size_max(inline_size_max, chunks_per_object_max) <= result_size_max &&
               list_result_bytes_max >=
                   list_objects_result_header_size + list_objects_entry_encoded_size(key_size_max) &&
               list_result_bytes_max >= list_chunks_result_header_size + chunk_info_encoded_size &&
               list_result_bytes_max <= result_size_max && chunks_held_result_size_max <= result_size_max &&
               stats_result_size <= result_size_max;
    }
};

inline constexpr std::uint64_t snapshot_magic = 0x01'41'54'45'4D'53'46'54;  // "TFSMETA\x01" (LE)

class metadata_state_machine {
public:
    metadata_state_machine() : metadata_state_machine(metadata_options{}) {}
    explicit metadata_state_machine(const metadata_options& options) : options_(options) { assert(options_.valid()); }

    void execute(const vsr::operation_context& context, std::span<const std::uint8_t> bytes,
                 std::vector<std::uint8_t>& out) {
        const std::size_t begin = out.size();
        auto op = decode_operation(bytes);
        if (!op) {
            out.push_back(static_cast<std::uint8_t>(status::invalid));
        } else {
            std::visit([&](auto& alternative) { apply(context, alternative, out); }, *op);
        }
        assert(out.size() > begin);
        assert(out.size() - begin <= options_.result_size_max);
    }

    /// Reads the primary may answer without logging them (vsr::state_machine_with_queries).
    /// clock is not one: its result is the timestamp the log gives it.
    bool is_query(std::span<const std::uint8_t> bytes) const noexcept {
        if (bytes.empty()) return false;
        switch (static_cast<opcode>(bytes[0])) {
            case opcode::get_object:
            case opcode::head_object:
            case opcode::list_objects:
            case opcode::list_chunks:
            case opcode::chunks_held:
            case opcode::stats: return true;
            default: return false;
        }
    }

    /// What execute() would append for a query, without changing the state.
    void query(std::span<const std::uint8_t> bytes, std::vector<std::uint8_t>& out) const {
        const std::size_t begin = out.size();
        const auto op = decode_operation(bytes);
        if (!op) {
            out.push_back(static_cast<std::uint8_t>(status::invalid));
            return;
        }
        std::visit(
            [&](const auto& alternative) {
                using operation_type = std::decay_t<decltype(alternative)>;
                if constexpr (std::is_same_v<operation_type, get_object_operation> ||
                              std::is_same_v<operation_type, head_object_operation> ||
                              std::is_same_v<operation_type, list_objects_operation> ||
                              std::is_same_v<operation_type, list_chunks_operation> ||
                              std::is_same_v<operation_type, chunks_held_operation> ||
                              std::is_same_v<operation_type, stats_operation>) {
                    apply(vsr::operation_context{}, alternative, out);
                } else {
                    out.push_back(static_cast<std::uint8_t>(status::invalid));  // not a query
                }
            },
            *op);
        assert(out.size() > begin && out.size() - begin <= options_.result_size_max);
        (void)begin;
    }

    std::size_t result_size_max() const noexcept { return options_.result_size_max; }
    const metadata_options& options() const noexcept { return options_; }

    // Introspection for tests and tools (not replicated state beyond what snapshot() holds).
    std::size_t object_count() const noexcept { return objects_.size(); }
    std::size_t chunk_count() const noexcept { return chunks_.size(); }
    std::optional<chunk_info> find_chunk(const sha256_digest& sha) const {
        const auto it = chunks_.find(sha);
        if (it == chunks_.end()) return std::nullopt;
        return chunk_info{it->first, it->second.size, it->second.refcount, it->second.holders};
    }

    void snapshot(std::vector<std::uint8_t>& out) const;
    bool restore(std::span<const std::uint8_t> bytes);

private:
    struct chunk_ref {
        sha256_digest sha256{};
        std::uint32_t size = 0;
    };
    struct stored_object {
        std::uint64_t version = 0;
        std::uint64_t last_modified_ns = 0;
        std::uint64_t size = 0;
        md5_digest md5{};
        sha256_digest sha256{};
        std::string content_type;
        std::vector<user_metadata_entry> user_metadata;
        data_kind kind = data_kind::inline_data;
        std::vector<std::uint8_t> inline_data;
        std::vector<chunk_ref> chunks;
    };
    struct chunk_entry {
        std::uint32_t size = 0;
        std::uint64_t refcount = 0;  // references from object chunk lists, duplicates counted
        node_set holders = 0;        // never empty
    };
    using object_map = std::map<std::string, stored_object, std::less<>>;
    using chunk_map = std::map<sha256_digest, chunk_entry>;

    static void write_status(std::vector<std::uint8_t>& out, status s) { out.push_back(static_cast<std::uint8_t>(s)); }
    bool lease_expired(std::uint64_t now_ns, std::uint64_t lease_begin_ns) const noexcept {
        return lease_begin_ns > now_ns || now_ns - lease_begin_ns > options_.upload_lease_ns;
    }
    static bool condition_holds(const condition& c, const stored_object* existing) noexcept {
        switch (c.kind) {
            case condition_kind::none: return true;
            case condition_kind::if_match: return existing != nullptr && existing->md5 == c.etag;
            case condition_kind::if_none_match: return existing == nullptr || existing->md5 != c.etag;
            case condition_kind::if_none_match_any: return existing == nullptr;
        }
        return false;
    }

    status check_put(const vsr::operation_context& context, const put_object_operation& op,
                     const stored_object* existing) const;
    void apply(const vsr::operation_context& context, put_object_operation& op, std::vector<std::uint8_t>& out);
    void apply(const vsr::operation_context&, const get_object_operation& op, std::vector<std::uint8_t>& out) const {
        get(op.key, true, out);
    }
    void apply(const vsr::operation_context&, const head_object_operation& op, std::vector<std::uint8_t>& out) const {
        get(op.key, false, out);
    }
    void apply(const vsr::operation_context&, const delete_object_operation& op, std::vector<std::uint8_t>& out);
    void apply(const vsr::operation_context&, const list_objects_operation& op, std::vector<std::uint8_t>& out) const;
    void apply(const vsr::operation_context& context, const clock_operation&, std::vector<std::uint8_t>& out) const {
        encode_to(clock_result{status::ok, context.timestamp_ns}, out);
    }
    void apply(const vsr::operation_context& context, const add_holder_operation& op, std::vector<std::uint8_t>& out);
    void apply(const vsr::operation_context&, const remove_holder_operation& op, std::vector<std::uint8_t>& out);
    void apply(const vsr::operation_context&, const list_chunks_operation& op, std::vector<std::uint8_t>& out) const;
    void apply(const vsr::operation_context&, const chunks_held_operation& op, std::vector<std::uint8_t>& out) const;
    void apply(const vsr::operation_context&, const stats_operation&, std::vector<std::uint8_t>& out) const {
        encode_to(
            stats_result{status::ok, objects_.size(), chunks_.size(), logical_bytes_, inline_bytes_, chunk_bytes_},
            out);
    }

    void get(std::string_view key, bool with_data, std::vector<std::uint8_t>& out) const;
    void reference(std::span<const chunk_location> chunks);
    void unreference(std::span<const chunk_ref> chunks);
    void forget(const stored_object& object) noexcept {
        logical_bytes_ -= object.size;
        inline_bytes_ -= object.inline_data.size();
    }

    bool read_object(vsr::byte_reader& r, std::string& key, stored_object& object) const;
    bool restore_chunks(vsr::byte_reader& r, const object_map& objects, chunk_map& chunks) const;

    metadata_options options_;
    object_map objects_;
    chunk_map chunks_;
    std::uint64_t next_version_ = 1;
    // Derived from objects_ and chunks_ (recomputed on restore, not in the snapshot).
    std::uint64_t logical_bytes_ = 0;
    std::uint64_t inline_bytes_ = 0;
    std::uint64_t chunk_bytes_ = 0;
};
static_assert(vsr::state_machine_with_queries<metadata_state_machine>);

// ---- put ------------------------------------------------------------------------------------

/// Checks in this order, so the answer does not depend on how the state got here:
/// too_large (limits of the object itself) → invalid (a digest the index holds with another
/// size) → lease_expired (chunked objects only) → precondition_failed → store_full.
inline status metadata_state_machine::check_put(const vsr::operation_context& context, const put_object_operation& op,
                                                const stored_object* existing) const {
    const bool chunked = op.kind == data_kind::chunks;
    if (op.size > options_.object_size_max) return status::too_large;
    if (!chunked && op.inline_data.size() > options_.inline_size_max) return status::too_large;
    if (chunked && op.chunks.size() > options_.chunks_per_object_max) return status::too_large;

    std::vector<sha256_digest> added;  // digests the index does not hold yet
    for (const auto& chunk : op.chunks) {
        const auto it = chunks_.find(chunk.sha256);
        if (it == chunks_.end()) {
            added.push_back(chunk.sha256);
        } else if (it->second.size != chunk.size) {
            return status::invalid;
        }
    }
    if (chunked && lease_expired(context.timestamp_ns, op.lease_begin_ns)) return status::lease_expired;
    if (!condition_holds(op.put_condition, existing) && options_.bug != planted_bug::put_ignores_condition) {
        return status::precondition_failed;
    }

    if (existing == nullptr && objects_.size() >= options_.objects_max) return status::store_full;
    const std::uint64_t inline_after =
        inline_bytes_ - (existing ? existing->inline_data.size() : 0) + op.inline_data.size();
    if (inline_after > options_.inline_bytes_max) return status::store_full;
    std::sort(added.begin(), added.end());
    added.erase(std::unique(added.begin(), added.end()), added.end());
    if (added.size() > options_.chunks_max - chunks_.size()) return status::store_full;
    return status::ok;
}

inline void metadata_state_machine::apply(const vsr::operation_context& context, put_object_operation& op,
                                          std::vector<std::uint8_t>& out) {
    const auto existing = objects_.find(op.key);
    const stored_object* previous = existing == objects_.end() ? nullptr : &existing->second;
    if (const status s = check_put(context, op, previous); s != status::ok) {
        write_status(out, s);
        return;
    }
    // Reference the new chunks before releasing the old ones, so a chunk both lists share never
    // leaves the index (and keeps its holders).
    reference(op.chunks);
    stored_object object;
    object.version = next_version_++;
    object.last_modified_ns = context.timestamp_ns;
    object.size = op.size;
    object.md5 = op.md5;
    object.sha256 = op.sha256;
    object.content_type = std::move(op.content_type);
    object.user_metadata = std::move(op.user_metadata);
    object.kind = op.kind;
    object.inline_data = std::move(op.inline_data);
    object.chunks.reserve(op.chunks.size());
    for (const auto& chunk : op.chunks) object.chunks.push_back(chunk_ref{chunk.sha256, chunk.size});
    logical_bytes_ += object.size;
    inline_bytes_ += object.inline_data.size();

    auto stored = existing;
    if (previous != nullptr) {
        unreference(existing->second.chunks);
        forget(existing->second);
        existing->second = std::move(object);
    } else {
        stored = objects_.emplace_hint(existing, std::move(op.key), std::move(object));
    }
    assert(objects_.size() <= options_.objects_max && chunks_.size() <= options_.chunks_max);
    encode_to(put_object_result{status::ok, stored->second.version, stored->second.last_modified_ns}, out);
}

inline void metadata_state_machine::reference(std::span<const chunk_location> chunks) {
    for (const auto& chunk : chunks) {
        auto [it, inserted] = chunks_.try_emplace(chunk.sha256, chunk_entry{chunk.size, 0, 0});
        if (inserted) chunk_bytes_ += chunk.size;
        assert(it->second.size == chunk.size && chunk.holders != 0);
        it->second.refcount += 1;
        it->second.holders = static_cast<node_set>(it->second.holders | chunk.holders);
    }
}

inline void metadata_state_machine::unreference(std::span<const chunk_ref> chunks) {
    for (const auto& chunk : chunks) {
        const auto it = chunks_.find(chunk.sha256);
        assert(it != chunks_.end() && it->second.refcount > 0);
        if (--it->second.refcount == 0) {
            chunk_bytes_ -= it->second.size;
            chunks_.erase(it);
        }
    }
}

// ---- get, delete, list ----------------------------------------------------------------------

inline void metadata_state_machine::get(std::string_view key, bool with_data, std::vector<std::uint8_t>& out) const {
    const auto it = objects_.find(key);
    if (it == objects_.end()) {
        write_status(out, status::not_found);
        return;
    }
    const stored_object& object = it->second;
    object_result result{
        status::ok,          object.version,       object.last_modified_ns, object.size, object.md5, object.sha256,
        object.content_type, object.user_metadata, data_kind::omitted,      {},          {}};
    if (with_data) {
        result.kind = object.kind;
        result.inline_data = object.inline_data;
        result.chunks.reserve(object.chunks.size());
        for (const auto& chunk : object.chunks) {
            const auto entry = chunks_.find(chunk.sha256);
            assert(entry != chunks_.end());
            result.chunks.push_back(chunk_location{chunk.sha256, chunk.size, entry->second.holders});
        }
    }
    encode_to(result, out);
}

/// not_found whenever the key is absent (whatever the condition); then the condition.
inline void metadata_state_machine::apply(const vsr::operation_context&, const delete_object_operation& op,
                                          std::vector<std::uint8_t>& out) {
    const auto it = objects_.find(op.key);
    if (it == objects_.end()) {
        write_status(out, status::not_found);
        return;
    }
    if (!condition_holds(op.delete_condition, &it->second)) {
        write_status(out, status::precondition_failed);
        return;
    }
    unreference(it->second.chunks);
    forget(it->second);
    objects_.erase(it);
    write_status(out, status::ok);
}

/// Keys with the prefix, strictly after start_after, in key order. Starts at a lower bound and
/// stops at the first key without the prefix, so the cost is O(log n + entries returned).
inline void metadata_state_machine::apply(const vsr::operation_context&, const list_objects_operation& op,
                                          std::vector<std::uint8_t>& out) const {
    const std::string_view prefix = op.prefix;
    auto it = op.start_after >= op.prefix ? objects_.upper_bound(std::string_view(op.start_after))
                                          : objects_.lower_bound(prefix);
    list_objects_result result{status::ok, false, {}, {}};
    std::size_t size = list_objects_result_header_size;
    for (; it != objects_.end() && std::string_view(it->first).starts_with(prefix); ++it) {
        const std::size_t entry_size = list_objects_entry_encoded_size(it->first.size());
        if (result.entries.size() == op.max_keys || size + entry_size > options_.list_result_bytes_max) {
            result.truncated = true;  // another matching key exists and was not returned
            break;
        }
        size += entry_size;
        result.entries.push_back(
            list_objects_entry{it->first, it->second.size, it->second.md5, it->second.last_modified_ns});
    }
    assert(!result.truncated || !result.entries.empty());
    encode_to(result, out);
}

// ---- chunk index ----------------------------------------------------------------------------

/// Order: lease_expired → not_referenced → ok.
inline void metadata_state_machine::apply(const vsr::operation_context& context, const add_holder_operation& op,
                                          std::vector<std::uint8_t>& out) {
    if (lease_expired(context.timestamp_ns, op.lease_begin_ns)) {
        write_status(out, status::lease_expired);
        return;
    }
    const auto it = chunks_.find(op.sha256);
    if (it == chunks_.end()) {
        write_status(out, status::not_referenced);
        return;
    }
    it->second.holders = with(it->second.holders, op.node);
    write_status(out, status::ok);
}

/// Removing a node that does not hold the chunk is ok (nothing changes).
inline void metadata_state_machine::apply(const vsr::operation_context&, const remove_holder_operation& op,
                                          std::vector<std::uint8_t>& out) {
    const auto it = chunks_.find(op.sha256);
    if (it == chunks_.end()) {
        write_status(out, status::not_referenced);
        return;
    }
    const node_set remaining = without(it->second.holders, op.node);
    if (remaining == 0) {
        write_status(out, status::last_holder);
        return;
    }
    it->second.holders = remaining;
    write_status(out, status::ok);
}

inline void metadata_state_machine::apply(const vsr::operation_context&, const list_chunks_operation& op,
                                          std::vector<std::uint8_t>& out) const {
    auto it = op.after ? chunks_.upper_bound(*op.after) : chunks_.begin();
    list_chunks_result result{status::ok, false, {}};
    std::size_t size = list_chunks_result_header_size;
    for (; it != chunks_.end(); ++it) {
        if (result.entries.size() == op.max_entries ||
            size + chunk_info_encoded_size > options_.list_result_bytes_max) {
            result.truncated = true;
            break;
        }
        size += chunk_info_encoded_size;
        result.entries.push_back(chunk_info{it->first, it->second.size, it->second.refcount, it->second.holders});
    }
    encode_to(result, out);
}

inline void metadata_state_machine::apply(const vsr::operation_context&, const chunks_held_operation& op,
                                          std::vector<std::uint8_t>& out) const {
    chunks_held_result result{status::ok, std::vector<bool>(op.chunks.size(), false)};
    for (std::size_t i = 0; i < op.chunks.size(); ++i) {
        const auto it = chunks_.find(op.chunks[i]);
        result.held[i] = it != chunks_.end() && contains(it->second.holders, op.node);
    }
    encode_to(result, out);
}

// ---- snapshot and restore -------------------------------------------------------------------

inline void metadata_state_machine::snapshot(std::vector<std::uint8_t>& out) const {
    vsr::byte_writer w(out);
    w.u64(snapshot_magic);
    w.u64(next_version_);
    w.u64(objects_.size());
    for (const auto& [key, object] : objects_) {
        detail::write_sized_string(w, key);
        w.u64(object.version);
        w.u64(object.last_modified_ns);
        detail::write_attributes(w, object);
        w.u8(static_cast<std::uint8_t>(object.kind));
        if (object.kind == data_kind::inline_data) {
            w.u32(static_cast<std::uint32_t>(object.inline_data.size()));
            w.bytes(object.inline_data);
        } else {
            w.u32(static_cast<std::uint32_t>(object.chunks.size()));
            for (const auto& chunk : object.chunks) {
                w.bytes(chunk.sha256);
                w.u32(chunk.size);
            }
        }
    }
    w.u64(chunks_.size());
    for (const auto& [sha, entry] : chunks_) {
        w.bytes(sha);
        w.u32(entry.size);
        w.u64(entry.refcount);
        w.u16(entry.holders);
    }
}

/// One object of a snapshot, with every rule a put enforces (except the lease and condition).
inline bool metadata_state_machine::read_object(vsr::byte_reader& r, std::string& key, stored_object& object) const {
    std::uint8_t kind = 0;
    std::uint32_t count = 0;
    if (!(detail::read_sized_string(r, key, 1, key_size_max) && r.read_u64(object.version) &&
          r.read_u64(object.last_modified_ns) && detail::read_attributes(r, object) && r.read_u8(kind) &&
          r.read_u32(count))) {
        return false;
    }
    if (object.size > options_.object_size_max) return false;
    object.kind = static_cast<data_kind>(kind);
    if (object.kind == data_kind::inline_data) {
        return count == object.size && count <= options_.inline_size_max && r.read_bytes(count, object.inline_data);
    }
    if (object.kind != data_kind::chunks || count > options_.chunks_per_object_max ||
        count > r.remaining() / (32 + 4)) {
        return false;
    }
    object.chunks.resize(count);
    for (auto& chunk : object.chunks) {
        if (!(r.read_bytes(chunk.sha256) && r.read_u32(chunk.size))) return false;
    }
    return valid_chunk_list(object.size, std::span<const chunk_ref>(object.chunks));
}

/// The chunk index of a snapshot must equal the one the objects imply, holders aside.
inline bool metadata_state_machine::restore_chunks(vsr::byte_reader& r, const object_map& objects,
                                                   chunk_map& chunks) const {
    chunk_map expected;
    for (const auto& [key, object] : objects) {
        for (const auto& chunk : object.chunks) {
            auto [it, inserted] = expected.try_emplace(chunk.sha256, chunk_entry{chunk.size, 0, 0});
            if (it->second.size != chunk.size) return false;  // one digest, two sizes
            it->second.refcount += 1;
        }
    }
    std::uint64_t count = 0;
    if (!r.read_u64(count) || count != expected.size() || count > options_.chunks_max) return false;
    auto want = expected.begin();
    for (std::uint64_t i = 0; i < count; ++i, ++want) {
        sha256_digest sha{};
        chunk_entry entry;
        if (!(r.read_bytes(sha) && r.read_u32(entry.size) && r.read_u64(entry.refcount) && r.read_u16(entry.holders))) {
            return false;
        }
        if (sha != want->first || entry.size != want->second.size || entry.refcount != want->second.refcount ||
            entry.holders == 0) {
            return false;
        }
        chunks.emplace_hint(chunks.end(), sha, entry);
    }
    return true;
}

inline bool metadata_state_machine::restore(std::span<const std::uint8_t> bytes) {
    vsr::byte_reader r(bytes);
    std::uint64_t magic = 0, next_version = 0, object_count = 0;
    if (!(r.read_u64(magic) && magic == snapshot_magic && r.read_u64(next_version) && next_version >= 1 &&
          r.read_u64(object_count) && object_count <= options_.objects_max)) {
        return false;
    }
    object_map objects;
    std::vector<std::uint64_t> versions;
    std::uint64_t logical_bytes = 0, inline_bytes = 0;
    for (std::uint64_t i = 0; i < object_count; ++i) {
        std::string key;
        stored_object object;
        if (!read_object(r, key, object)) return false;
        if (object.version == 0 || object.version >= next_version) return false;
        if (!objects.empty() && !(objects.rbegin()->first < key)) return false;  // sorted, unique
        versions.push_back(object.version);
        logical_bytes += object.size;  // objects_max * object_size_max fits (options valid)
        inline_bytes += object.inline_data.size();
        objects.emplace_hint(objects.end(), std::move(key), std::move(object));
    }
    if (inline_bytes > options_.inline_bytes_max) return false;
    std::sort(versions.begin(), versions.end());
    if (std::adjacent_find(versions.begin(), versions.end()) != versions.end()) return false;

    chunk_map chunks;
    if (!restore_chunks(r, objects, chunks) || !r.done()) return false;
    std::uint64_t chunk_bytes = 0;
    for (const auto& [sha, entry] : chunks) chunk_bytes += entry.size;

    objects_ = std::move(objects);
    chunks_ = std::move(chunks);
    next_version_ = next_version;
    logical_bytes_ = logical_bytes;
    inline_bytes_ = inline_bytes;
    chunk_bytes_ = chunk_bytes;
    return true;
}

}  // namespace toastyfs
