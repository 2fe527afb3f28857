// The metadata state machine: object metadata and the chunk index, replicated through VSR.
//
// It is the single authority on which chunks are referenced and by which nodes they are held.
// Object data lives in content-addressed chunks on storage nodes (or inline, for small objects);
// this machine stores, per key, the object's attributes and chunk list, and per chunk digest its
// size, reference count and holders. Operations and results are defined in metadata_codec.hpp.
//
// The rows live in SQLite on a metadata_disk (toastyfs/metadata_store.hpp), so the state may be
// far larger than memory. The machine is a vsr::state_machine_with_stored_state: a checkpoint
// commits the store, a restart reopens it, and state transfer exports and imports it a part at
// a time. It also serves incremental snapshots and snapshot()/restore() in the export format.
//
// Determinism: results depend only on the rows (SQLite orders keys by their bytes, as
// std::string does), and the only time is operation_context::timestamp_ns.
// Totality: every byte string is an operation or `invalid`; state changes only on `ok`. A failed
// disk (I/O error, full disk, a page that fails its checksum) is not a result: failed() turns
// true, the state is undefined from then on, and the replica stops (vsr::basic_replica halts).
//
// restore() recomputes every refcount and size from the object lists and requires the index to
// match exactly, and checks every limit of the options; any mismatch → false, state unchanged.
#pragma once

#include <algorithm>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <variant>
#include <vector>

#include "toastyfs/metadata_codec.hpp"
#include "toastyfs/metadata_disk.hpp"
#include "toastyfs/metadata_store.hpp"
#include "toastyfs/types.hpp"
#include "vsr/state_machine.hpp"

namespace toastyfs {

class metadata_state_machine {
public:
    metadata_state_machine() : metadata_state_machine(metadata_options{}) {}
    /// A machine whose store is file `store.file_name` on `disk` (which must outlive it), or on
    /// a disk in memory of its own when `disk` is null. With store.keep_existing it opens what
    /// the disk holds (open_stored() says what that was); otherwise it starts empty.
    explicit metadata_state_machine(const metadata_options& options, metadata_disk* disk = nullptr,
                                    metadata_store_options store = {})
        : s_(std::make_unique<metadata_store>(options, disk, std::move(store))) {
        assert(options.valid());
    }

    void execute(const vsr::operation_context& context, std::span<const std::uint8_t> bytes,
                 std::vector<std::uint8_t>& out) {
        const std::size_t begin = out.size();
        auto op = decode_operation(bytes);
        if (!op || s_->failed()) {
            out.push_back(static_cast<std::uint8_t>(status::invalid));
        } else {
            std::visit([&](auto& alternative) { apply(context, alternative, out); }, *op);
        }
        assert(out.size() > begin);
        assert(out.size() - begin <= s_->options().result_size_max);
        (void)begin;
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
        if (!op || s_->failed()) {
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
        assert(out.size() > begin && out.size() - begin <= s_->options().result_size_max);
        (void)begin;
    }

    std::size_t result_size_max() const noexcept { return s_->options().result_size_max; }
    const metadata_options& options() const noexcept { return s_->options(); }

    /// The store failed (I/O error, full disk, a page that failed its checksum): the state is
    /// undefined and every further operation answers `invalid`. The replica must stop.
    bool failed() const noexcept { return s_->failed(); }
    /// Why, for the log (empty while not failed).
    const std::string& failure() const noexcept { return s_->failure(); }
    const sqlite_vfs_counters& disk_counters() const noexcept { return s_->disk_counters(); }

    /// A digest of the whole state, kept up to date with every change (the sum of a hash of each
    /// row, so its cost does not grow with the state): equal states have equal digests on every
    /// replica, whatever order the rows were written in.
    std::uint64_t digest() const noexcept { return s_->totals().digest(); }

    // Introspection for tests and tools (not replicated state beyond what snapshot() holds).
    std::size_t object_count() const noexcept { return static_cast<std::size_t>(s_->totals().objects); }
    std::size_t chunk_count() const noexcept { return static_cast<std::size_t>(s_->totals().chunks); }
    std::optional<chunk_info> find_chunk(const sha256_digest& sha) const {
        const auto chunk = s_->load_chunk(sha);
        if (!chunk) return std::nullopt;
        return chunk_info{sha, chunk->size, chunk->refcount, chunk->holders};
    }

    /// The whole state in the export format (metadata_store.hpp), as of now.
    void snapshot(std::vector<std::uint8_t>& out) const;
    bool restore(std::span<const std::uint8_t> bytes);

    // vsr::state_machine_with_incremental_snapshot: commits, then exports that commit from the
    // store's reader a step at a time while operations go on in the next transaction.
    void snapshot_begin() {
        end_reading();
        if (!s_->commit() || !s_->pin_reader()) return;
        reading_ = reading::snapshot;
        cursor_.clear();
    }
    bool snapshot_step(std::vector<std::uint8_t>& out, std::size_t size_hint) {
        if (reading_ != reading::snapshot) return true;
        std::vector<std::uint8_t> next;
        const bool done = s_->export_part(cursor_, std::max<std::size_t>(size_hint, 1), out, next);
        cursor_ = std::move(next);
        if (done || s_->failed()) end_reading();
        return done || s_->failed();
    }
    void snapshot_abandon() {
        if (reading_ == reading::snapshot) end_reading();
    }

    // vsr::state_machine_with_stored_state.
    vsr::stored_state open_stored(std::uint64_t& op, std::vector<std::uint8_t>& record) const {
        op = s_->opened_op();
        record = s_->opened_record();
        return s_->opened();
    }
    bool clear_stored() {
        reading_ = reading::none;
        return s_->clear();
    }
    bool store_checkpoint(std::uint64_t op, std::span<const std::uint8_t> record) {
        return s_->store_checkpoint(op, record);
    }
    std::uint64_t export_size() const noexcept { return s_->totals().export_size(); }
    /// Exports stored checkpoint `op` from the reader, pinned at the last commit when the export
    /// starts (and kept there while it goes on, whatever commits follow).
    vsr::export_status export_part(std::uint64_t op, std::span<const std::uint8_t> cursor, std::size_t size_max,
                                   std::vector<std::uint8_t>& out, std::vector<std::uint8_t>& next_cursor) {
        if (reading_ != reading::exporting || s_->pinned_op() != op) {
            end_reading();
            if (!s_->pin_reader()) return vsr::export_status::last;  // failed(): the replica halts
            reading_ = reading::exporting;
            if (s_->pinned_op() != op) {
                end_reading();
                return vsr::export_status::unavailable;
            }
        }
        return s_->export_part(cursor, size_max, out, next_cursor) ? vsr::export_status::last
                                                                   : vsr::export_status::part;
    }
    void export_end() {
        if (reading_ == reading::exporting) end_reading();
    }
    void import_begin() { s_->import_begin(); }
    bool import_part(std::span<const std::uint8_t> bytes) { return s_->import_part(bytes); }
    std::uint64_t import_digest() const noexcept { return s_->import_digest(); }
    bool import_finish(std::uint64_t op, std::span<const std::uint8_t> record) {
        end_reading();
        return s_->import_finish(op, record);
    }
    void import_abandon() { s_->import_abandon(); }

private:
    /// What the store's reader is doing for the machine: at most one thing at a time.
    enum class reading : std::uint8_t { none, snapshot, exporting };

    void end_reading() {
        reading_ = reading::none;
        s_->release_reader();
    }

    static void write_status(std::vector<std::uint8_t>& out, status s) { out.push_back(static_cast<std::uint8_t>(s)); }
    /// Appends an answer for a failed store (the replica stops on failed(); it only keeps
    /// execute() total).
    static void write_failure(std::vector<std::uint8_t>& out) { write_status(out, status::invalid); }
    bool lease_expired(std::uint64_t now_ns, std::uint64_t lease_begin_ns) const noexcept {
        return lease_begin_ns > now_ns || now_ns - lease_begin_ns > s_->options().upload_lease_ns;
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
        const metadata_totals& t = s_->totals();
        encode_to(stats_result{status::ok, t.objects, t.chunks, t.logical_bytes, t.inline_bytes, t.chunk_bytes}, out);
    }

    void get(std::string_view key, bool with_data, std::vector<std::uint8_t>& out) const;
    bool reference(std::span<const chunk_location> chunks);
    bool unreference(std::span<const stored_chunk_ref> chunks);

    std::unique_ptr<metadata_store> s_;  // a pointer: the machine stays movable, and const reads can step statements
    reading reading_ = reading::none;
    std::vector<std::uint8_t> cursor_;  // where the snapshot in progress stands
};
static_assert(vsr::state_machine_with_queries<metadata_state_machine>);
static_assert(vsr::state_machine_with_incremental_snapshot<metadata_state_machine>);
static_assert(vsr::state_machine_with_stored_state<metadata_state_machine>);

// ---- put ------------------------------------------------------------------------------------

/// Checks in this order, so the answer does not depend on how the state got here:
/// too_large (limits of the object itself) → invalid (a digest the index holds with another
/// size) → lease_expired (chunked objects only) → precondition_failed → store_full.
inline status metadata_state_machine::check_put(const vsr::operation_context& context, const put_object_operation& op,
                                                const stored_object* existing) const {
    const metadata_options& options = s_->options();
    const bool chunked = op.kind == data_kind::chunks;
    if (op.size > options.object_size_max) return status::too_large;
    if (!chunked && op.inline_data.size() > options.inline_size_max) return status::too_large;
    if (chunked && op.chunks.size() > options.chunks_per_object_max) return status::too_large;

    std::vector<sha256_digest> added;  // digests the index does not hold yet
    for (const auto& chunk : op.chunks) {
        const auto entry = s_->load_chunk(chunk.sha256);
        if (!entry) {
            added.push_back(chunk.sha256);
        } else if (entry->size != chunk.size) {
            return status::invalid;
        }
    }
    if (chunked && lease_expired(context.timestamp_ns, op.lease_begin_ns)) return status::lease_expired;
    if (!condition_holds(op.put_condition, existing) && options.bug != planted_bug::put_ignores_condition) {
        return status::precondition_failed;
    }

    const metadata_totals& t = s_->totals();
    if (existing == nullptr && t.objects >= options.objects_max) return status::store_full;
    // The logical bytes stay countable (a store of many 5 TiB objects would overflow them).
    const std::uint64_t logical_rest = t.logical_bytes - (existing ? existing->size : 0);
    if (op.size > std::numeric_limits<std::uint64_t>::max() - logical_rest) return status::store_full;
    const std::uint64_t inline_after =
        t.inline_bytes - (existing ? existing->inline_data.size() : 0) + op.inline_data.size();
    if (inline_after > options.inline_bytes_max) return status::store_full;
    std::sort(added.begin(), added.end());
    added.erase(std::unique(added.begin(), added.end()), added.end());
    if (added.size() > options.chunks_max - t.chunks) return status::store_full;
    return status::ok;
}

inline void metadata_state_machine::apply(const vsr::operation_context& context, put_object_operation& op,
                                          std::vector<std::uint8_t>& out) {
    const auto existing = s_->load_object(op.key, true);
    const status s = s_->failed() ? status::invalid : check_put(context, op, existing ? &*existing : nullptr);
    if (s_->failed()) return write_failure(out);
    if (s != status::ok) return write_status(out, s);
    stored_object object;
    object.version = s_->totals().next_version++;
    object.last_modified_ns = context.timestamp_ns;
    object.size = op.size;
    object.md5 = op.md5;
    object.sha256 = op.sha256;
    object.content_type = std::move(op.content_type);
    object.user_metadata = std::move(op.user_metadata);
    object.kind = op.kind;
    object.inline_data = std::move(op.inline_data);
    object.chunks.reserve(op.chunks.size());
    for (const auto& chunk : op.chunks) object.chunks.push_back(stored_chunk_ref{chunk.sha256, chunk.size});
    // Reference the new chunks before releasing the old ones, so a chunk both lists share never
    // leaves the index (and keeps its holders).
    const bool stored = reference(op.chunks) &&
                        (!existing || (unreference(existing->chunks) && s_->remove_object(op.key, *existing))) &&
                        s_->insert_object(op.key, object);
    if (!stored) return write_failure(out);
    assert(s_->totals().objects <= s_->options().objects_max && s_->totals().chunks <= s_->options().chunks_max);
    encode_to(put_object_result{status::ok, object.version, object.last_modified_ns}, out);
}

inline bool metadata_state_machine::reference(std::span<const chunk_location> chunks) {
    for (const auto& chunk : chunks) {
        const auto before = s_->load_chunk(chunk.sha256);
        if (s_->failed()) return false;
        stored_chunk after = before.value_or(stored_chunk{chunk.size, 0, 0});
        assert(after.size == chunk.size && chunk.holders != 0);
        after.refcount += 1;
        after.holders = static_cast<node_set>(after.holders | chunk.holders);
        if (!s_->put_chunk(chunk.sha256, before, after)) return false;
    }
    return true;
}

inline bool metadata_state_machine::unreference(std::span<const stored_chunk_ref> chunks) {
    for (const auto& chunk : chunks) {
        const auto before = s_->load_chunk(chunk.sha256);
        if (!before || before->refcount == 0) return s_->fail("a referenced chunk is missing from the index");
        stored_chunk after = *before;
        if (--after.refcount == 0) {
            if (!s_->remove_chunk(chunk.sha256, *before)) return false;
        } else if (!s_->put_chunk(chunk.sha256, before, after)) {
            return false;
        }
    }
    return true;
}

// ---- get, delete, list ----------------------------------------------------------------------

inline void metadata_state_machine::get(std::string_view key, bool with_data, std::vector<std::uint8_t>& out) const {
    const auto found = s_->load_object(key, with_data);
    if (s_->failed()) return write_failure(out);
    if (!found) return write_status(out, status::not_found);
    const stored_object& object = *found;
    object_result result{
        status::ok,          object.version,       object.last_modified_ns, object.size, object.md5, object.sha256,
        object.content_type, object.user_metadata, data_kind::omitted,      {},          {}};
    if (with_data) {
        result.kind = object.kind;
        result.inline_data = object.inline_data;
        result.chunks.reserve(object.chunks.size());
        for (const auto& chunk : object.chunks) {
            const auto entry = s_->load_chunk(chunk.sha256);
            if (!entry) {
                s_->fail("a referenced chunk is missing from the index");
                return write_failure(out);
            }
            result.chunks.push_back(chunk_location{chunk.sha256, chunk.size, entry->holders});
        }
    }
    encode_to(result, out);
}

/// not_found whenever the key is absent (whatever the condition); then the condition.
inline void metadata_state_machine::apply(const vsr::operation_context&, const delete_object_operation& op,
                                          std::vector<std::uint8_t>& out) {
    const auto existing = s_->load_object(op.key, true);
    if (s_->failed()) return write_failure(out);
    if (!existing) return write_status(out, status::not_found);
    if (!condition_holds(op.delete_condition, &*existing)) return write_status(out, status::precondition_failed);
    if (!unreference(existing->chunks) || !s_->remove_object(op.key, *existing)) return write_failure(out);
    write_status(out, status::ok);
}

/// Keys with the prefix, strictly after start_after, in key order. Starts at a lower bound and
/// stops at the first key without the prefix, so the cost is O(log n + entries returned).
inline void metadata_state_machine::apply(const vsr::operation_context&, const list_objects_operation& op,
                                          std::vector<std::uint8_t>& out) const {
    const std::string_view prefix = op.prefix;
    const bool after = op.start_after >= op.prefix;
    list_objects_result result{status::ok, false, {}, {}};
    std::size_t size = list_objects_result_header_size;
    bool decoded = true;
    const bool scanned = s_->scan_objects(
        after ? std::string_view(op.start_after) : prefix, after,
        [&](std::string_view key, std::span<const std::uint8_t> meta) {
            if (!key.starts_with(prefix)) return false;
            const std::size_t entry_size = list_objects_entry_encoded_size(key.size());
            if (result.entries.size() == op.max_keys || size + entry_size > s_->options().list_result_bytes_max) {
                result.truncated = true;  // another matching key exists and was not returned
                return false;
            }
            size += entry_size;
            stored_object object;
            vsr::byte_reader r(meta);
            decoded = r.read_u64(object.last_modified_ns) && detail::read_attributes(r, object);
            if (!decoded) return false;
            result.entries.push_back(
                list_objects_entry{std::string(key), object.size, object.md5, object.last_modified_ns});
            return true;
        });
    if (!decoded) s_->fail("an object row does not decode");
    if (!scanned || s_->failed()) return write_failure(out);
    assert(!result.truncated || !result.entries.empty());
    encode_to(result, out);
}

// ---- chunk index ----------------------------------------------------------------------------

/// Order: lease_expired → not_referenced → ok.
inline void metadata_state_machine::apply(const vsr::operation_context& context, const add_holder_operation& op,
                                          std::vector<std::uint8_t>& out) {
    if (lease_expired(context.timestamp_ns, op.lease_begin_ns)) return write_status(out, status::lease_expired);
    const auto before = s_->load_chunk(op.sha256);
    if (s_->failed()) return write_failure(out);
    if (!before) return write_status(out, status::not_referenced);
    stored_chunk after = *before;
    after.holders = with(after.holders, op.node);
    if (after.holders != before->holders && !s_->put_chunk(op.sha256, before, after)) return write_failure(out);
    write_status(out, status::ok);
}

/// Removing a node that does not hold the chunk is ok (nothing changes).
inline void metadata_state_machine::apply(const vsr::operation_context&, const remove_holder_operation& op,
                                          std::vector<std::uint8_t>& out) {
    const auto before = s_->load_chunk(op.sha256);
    if (s_->failed()) return write_failure(out);
    if (!before) return write_status(out, status::not_referenced);
    const node_set remaining = without(before->holders, op.node);
    if (remaining == 0) return write_status(out, status::last_holder);
    stored_chunk after = *before;
    after.holders = remaining;
    if (after.holders != before->holders && !s_->put_chunk(op.sha256, before, after)) return write_failure(out);
    write_status(out, status::ok);
}

inline void metadata_state_machine::apply(const vsr::operation_context&, const list_chunks_operation& op,
                                          std::vector<std::uint8_t>& out) const {
    list_chunks_result result{status::ok, false, {}};
    std::size_t size = list_chunks_result_header_size;
    const bool scanned =
        s_->scan_chunks(op.after ? std::span<const std::uint8_t>(*op.after) : std::span<const std::uint8_t>(),
                        [&](const sha256_digest& sha, const stored_chunk& chunk) {
                            if (result.entries.size() == op.max_entries ||
                                size + chunk_info_encoded_size > s_->options().list_result_bytes_max) {
                                result.truncated = true;
                                return false;
                            }
                            size += chunk_info_encoded_size;
                            result.entries.push_back(chunk_info{sha, chunk.size, chunk.refcount, chunk.holders});
                            return true;
                        });
    if (!scanned) return write_failure(out);
    encode_to(result, out);
}

inline void metadata_state_machine::apply(const vsr::operation_context&, const chunks_held_operation& op,
                                          std::vector<std::uint8_t>& out) const {
    chunks_held_result result{status::ok, std::vector<bool>(op.chunks.size(), false)};
    for (std::size_t i = 0; i < op.chunks.size(); ++i) {
        const auto entry = s_->load_chunk(op.chunks[i]);
        if (s_->failed()) return write_failure(out);
        result.held[i] = entry && contains(entry->holders, op.node);
    }
    encode_to(result, out);
}

// ---- snapshot and restore -------------------------------------------------------------------

inline void metadata_state_machine::snapshot(std::vector<std::uint8_t>& out) const {
    vsr::byte_writer w(out);
    const metadata_totals& t = s_->totals();
    w.u64(snapshot_magic);
    w.u64(t.next_version);
    w.u64(t.objects);
    s_->scan_object_rows([&](std::string_view key, std::uint64_t version, std::span<const std::uint8_t> meta,
                             std::span<const std::uint8_t> data) {
        detail::write_sized_string(w, key);
        w.u64(version);
        w.bytes(meta);
        w.bytes(data);
    });
    w.u64(t.chunks);
    s_->scan_chunks({}, [&](const sha256_digest& sha, const stored_chunk& chunk) {
        metadata_rows::encode_chunk(sha, chunk, out);
        return true;
    });
}

/// Replaces the state with a snapshot's, inside a savepoint of the open transaction: any rule
/// broken rolls it back and changes nothing.
inline bool metadata_state_machine::restore(std::span<const std::uint8_t> bytes) {
    end_reading();
    if (s_->failed()) return false;
    const metadata_options& options = s_->options();
    vsr::byte_reader r(bytes);
    std::uint64_t magic = 0;
    metadata_totals totals;
    std::uint64_t object_count = 0;
    if (!(r.read_u64(magic) && magic == snapshot_magic && r.read_u64(totals.next_version) && totals.next_version >= 1 &&
          r.read_u64(object_count) && object_count <= options.objects_max)) {
        return false;
    }
    const metadata_totals before = s_->totals();
    if (!s_->savepoint()) return false;
    bool valid = s_->clear_rows();
    s_->totals().next_version = totals.next_version;
    // Objects, in key order; the chunk index they imply is built on the way.
    std::map<sha256_digest, stored_chunk> implied;
    std::unordered_set<std::uint64_t> versions;
    std::string previous_key;
    for (std::uint64_t i = 0; valid && i < object_count; ++i) {
        std::string key;
        std::uint64_t version = 0;
        stored_object object;
        valid = detail::read_sized_string(r, key, 1, key_size_max) && r.read_u64(version) &&
                metadata_rows::read_meta_and_data(options, r, object) && version >= 1 &&
                version < totals.next_version && (i == 0 || previous_key < key) && versions.insert(version).second &&
                object.size <= std::numeric_limits<std::uint64_t>::max() - s_->totals().logical_bytes;
        if (!valid) break;
        for (const auto& chunk : object.chunks) {
            auto [it, inserted] = implied.try_emplace(chunk.sha256, stored_chunk{chunk.size, 0, 0});
            valid = valid && it->second.size == chunk.size;  // one digest, two sizes
            it->second.refcount += 1;
        }
        object.version = version;
        valid = valid && s_->insert_object(key, object);
        previous_key = std::move(key);
    }
    std::uint64_t chunk_count = 0;
    valid = valid && s_->totals().inline_bytes <= options.inline_bytes_max && r.read_u64(chunk_count) &&
            chunk_count == implied.size() && chunk_count <= options.chunks_max;
    auto want = implied.begin();
    for (std::uint64_t i = 0; valid && i < chunk_count; ++i, ++want) {
        sha256_digest sha{};
        stored_chunk chunk;
        valid = r.read_bytes(sha) && r.read_u32(chunk.size) && r.read_u64(chunk.refcount) &&
                r.read_u16(chunk.holders) && sha == want->first && chunk.size == want->second.size &&
                chunk.refcount == want->second.refcount && chunk.holders != 0 &&
                s_->put_chunk(sha, std::nullopt, chunk);
    }
    valid = valid && r.done();
    if (s_->failed()) return false;
    if (!s_->end_savepoint(valid)) return false;
    if (!valid) s_->totals() = before;
    return valid;
}

}  // namespace toastyfs
