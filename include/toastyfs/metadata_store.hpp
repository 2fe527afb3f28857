// The metadata state machine's store: its rows in SQLite, on a metadata_disk.
//
// metadata_state_machine.hpp decides what the operations do; this file keeps the rows and
// everything about them that is not an operation: the schema, reading and writing a row, the
// totals derived from the rows, commits (checkpoints), and moving the whole state out and in a
// part at a time (snapshots, state transfer by export and import).
//
// Schema:
//   objects(id = version, key UNIQUE, meta, data)    meta = u64 last_modified_ns | attributes
//                                                    data = u8 kind | inline: u32 size | bytes
//                                                                   | chunks: u32 count | (sha256 | u32 size)*
//   chunks(sha256 PRIMARY KEY, size, refcount, holders)
//   totals(id = 0, next_version, objects, chunks, logical_bytes, inline_bytes, chunk_bytes,
//          object_entry_bytes, row_hash_sum)                    written with every commit
//   checkpoint(id = 0, op, record)                               the replica's, with every checkpoint
//
// Export format (= the machine's snapshot format; all integers little-endian):
//   u64 magic | u64 next_version | u64 object_count
//   object_count x (key | u64 version | meta | data), keys strictly ascending
//   u64 chunk_count | chunk_count x (sha256 | u32 size | u64 refcount | u16 holders), ascending
// Parts of an export hold whole records. A cursor says where a part ended: empty (the start),
// or u8 phase (1: objects, 2: chunks) | the last key or digest written (empty: none yet).
//
// Transactions: the writer connection executes inside one long transaction, committed at each
// checkpoint (with the totals and the checkpoint row), so what is on disk is always the state
// of a checkpoint. A second connection reads the state of a commit while the writer goes on:
// snapshots and exports come from it. An import goes to a file of its own, replaced into the
// store's name only once complete and checked.
#pragma once

#include <algorithm>
#include <array>
#include <cassert>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "toastyfs/metadata_codec.hpp"
#include "toastyfs/metadata_disk.hpp"
#include "toastyfs/planted_bug.hpp"
#include "toastyfs/sqlite.hpp"
#include "toastyfs/sqlite_vfs.hpp"
#include "toastyfs/types.hpp"
#include "vsr/bytes.hpp"
#include "vsr/checksum.hpp"
#include "vsr/state_machine.hpp"

namespace toastyfs {

/// Capacity limits. Every replica must use the same values (they decide results).
struct metadata_options {
    /// Objects stored. When reached, a put of a new key answers store_full; overwrites of
    /// existing keys still succeed. The rows live on disk, so this bounds disk, not memory.
    std::uint64_t objects_max = std::uint64_t{1} << 32;
    /// Distinct chunks in the index. When reached, a put that would add a chunk the index does
    /// not hold answers store_full.
    std::uint64_t chunks_max = std::uint64_t{1} << 32;
    /// Chunks in one object's list. A put with more answers too_large.
    std::uint32_t chunks_per_object_max = 2048;
    /// Largest object stored inline in the metadata. Larger inline data answers too_large (the
    /// proxy stores such objects as chunks).
    std::uint32_t inline_size_max = 4096;
    /// Sum of inline data over all objects: the metadata store's disk quota, since inline
    /// bytes are most of its rows. A put that would exceed it answers store_full (HTTP 507).
    /// toastyfs-node's --inline-bytes-max; every node must agree.
    std::uint64_t inline_bytes_max = std::uint64_t{64} << 30;
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
               upload_lease_ns >= 1 && chunks_max <= std::numeric_limits<std::uint64_t>::max() / 0xFFFF'FFFFu &&
               object_result_size_max(inline_size_max, chunks_per_object_max) <= result_size_max &&
               list_result_bytes_max >=
                   list_objects_result_header_size + list_objects_entry_encoded_size(key_size_max) &&
               list_result_bytes_max >= list_chunks_result_header_size + chunk_info_encoded_size &&
               list_result_bytes_max <= result_size_max && chunks_held_result_size_max <= result_size_max &&
               stats_result_size <= result_size_max;
    }
};

/// Where and how one replica keeps its store. Local: replicas may differ in all of it.
struct metadata_store_options {
    std::string file_name = "metadata.db";  // on the metadata_disk; its WAL is file_name + "-wal"
    std::int64_t cache_kib = 64 * 1024;     // SQLite's page cache of the executing connection
                                            // (the reader's is at most reader_cache_kib_max)
    bool durable = true;                    // sync at each commit (false: the disk need not survive)
    bool keep_existing = false;             // open what the disk holds (else start empty)
    std::uint64_t seed = 1;                 // SQLite's randomness (WAL salts): the process's, reseeded at open
    std::uint32_t wal_copy_pages = 16384;   // WAL pages gathered before they are copied into the database
};

inline constexpr std::uint64_t snapshot_magic = 0x01'41'54'45'4D'53'46'54;  // "TFSMETA\x01" (LE)

/// A chunk of an object's list.
struct stored_chunk_ref {
    sha256_digest sha256{};
    std::uint32_t size = 0;
};

/// An object row, decoded.
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
    std::vector<stored_chunk_ref> chunks;
};

/// A chunk row.
struct stored_chunk {
    std::uint32_t size = 0;
    std::uint64_t refcount = 0;  // references from object chunk lists, duplicates counted
    node_set holders = 0;        // never empty
};

inline constexpr std::size_t stored_chunk_encoded_size = 32 + 4 + 8 + 2;

/// Derived from the rows: kept in memory, written with each commit.
struct metadata_totals {
    std::uint64_t next_version = 1;
    std::uint64_t objects = 0;
    std::uint64_t chunks = 0;
    std::uint64_t logical_bytes = 0;
    std::uint64_t inline_bytes = 0;
    std::uint64_t chunk_bytes = 0;
    std::uint64_t object_entry_bytes = 0;  // the objects' records in an export
    std::uint64_t row_hash_sum = 0;        // wrapping sum of every row's hash

    std::uint64_t digest() const noexcept {
        std::array<std::uint8_t, 24> bytes{};
        vsr::store_le64(bytes.data(), row_hash_sum);
        vsr::store_le64(bytes.data() + 8, next_version);
        vsr::store_le64(bytes.data() + 16, objects);
        return vsr::checksum(bytes);
    }
    std::uint64_t export_size() const noexcept {
        return 3 * 8 + object_entry_bytes + 8 + chunks * stored_chunk_encoded_size;
    }
};

/// The rows, encoded as the store keeps them and as exports carry them.
struct metadata_rows {
    static void encode_meta(const stored_object& object, std::vector<std::uint8_t>& out) {
        vsr::byte_writer w(out);
        w.u64(object.last_modified_ns);
        detail::write_attributes(w, object);
    }
    static void encode_data(const stored_object& object, std::vector<std::uint8_t>& out) {
        vsr::byte_writer w(out);
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
    /// meta | data, with every rule a put enforces (except the lease and condition).
    static bool read_meta_and_data(const metadata_options& options, vsr::byte_reader& r, stored_object& object) {
        std::uint8_t kind = 0;
        std::uint32_t count = 0;
        if (!(r.read_u64(object.last_modified_ns) && detail::read_attributes(r, object) && r.read_u8(kind) &&
              r.read_u32(count))) {
            return false;
        }
        if (object.size > options.object_size_max) return false;
        object.kind = static_cast<data_kind>(kind);
        if (object.kind == data_kind::inline_data) {
            return count == object.size && count <= options.inline_size_max && r.read_bytes(count, object.inline_data);
        }
        if (object.kind != data_kind::chunks || count > options.chunks_per_object_max ||
            count > r.remaining() / (32 + 4)) {
            return false;
        }
        object.chunks.resize(count);
        for (auto& chunk : object.chunks) {
            if (!(r.read_bytes(chunk.sha256) && r.read_u32(chunk.size))) return false;
        }
        return valid_chunk_list(object.size, std::span<const stored_chunk_ref>(object.chunks));
    }
    static std::size_t object_entry_size(std::size_t key_size, std::size_t meta_size, std::size_t data_size) {
        return 2 + key_size + 8 + meta_size + data_size;
    }
    static std::uint64_t object_hash(std::string_view key, std::uint64_t version, std::span<const std::uint8_t> meta,
                                     std::span<const std::uint8_t> data) {
        const auto key_bytes =
            std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(key.data()), key.size());
        return vsr::checksum(data, vsr::checksum(meta, vsr::checksum(key_bytes, version)));
    }
    static void encode_chunk(const sha256_digest& sha, const stored_chunk& chunk, std::vector<std::uint8_t>& out) {
        vsr::byte_writer w(out);
        w.bytes(sha);
        w.u32(chunk.size);
        w.u64(chunk.refcount);
        w.u16(chunk.holders);
    }
    static std::uint64_t chunk_hash(const sha256_digest& sha, const stored_chunk& chunk) {
        std::vector<std::uint8_t> bytes;
        bytes.reserve(stored_chunk_encoded_size);
        encode_chunk(sha, chunk, bytes);
        return vsr::checksum(bytes, 2);
    }
};

class metadata_store {
public:
    metadata_store(const metadata_options& options, metadata_disk* disk, metadata_store_options store)
        : options_(options),
          own_disk_(disk == nullptr ? std::make_unique<memory_metadata_disk>() : nullptr),
          disk_(disk == nullptr ? *own_disk_ : *disk),
          store_(std::move(store)),
          vfs_(disk_, store_.seed) {
        if (!vfs_.registered()) {
            fail("cannot register the SQLite VFS");
            return;
        }
        sqlite_vfs::seed_process_randomness(static_cast<std::uint32_t>(store_.seed));
        remove_import_files();
        if (store_.keep_existing && disk_.exists(store_.file_name)) {
            open_existing();
        } else {
            open_fresh();
        }
    }
    ~metadata_store() { close_all(); }
    metadata_store(const metadata_store&) = delete;
    metadata_store& operator=(const metadata_store&) = delete;

    const metadata_options& options() const noexcept { return options_; }
    const metadata_totals& totals() const noexcept { return totals_; }
    metadata_totals& totals() noexcept { return totals_; }
    bool failed() const noexcept { return failed_; }
    const std::string& failure() const noexcept { return failure_; }
    const sqlite_vfs_counters& disk_counters() const noexcept { return vfs_.counters(); }

    // ---- what the store held when opened (keep_existing) ----

    vsr::stored_state opened() const noexcept { return opened_; }
    std::uint64_t opened_op() const noexcept { return opened_op_; }
    const std::vector<std::uint8_t>& opened_record() const noexcept { return opened_record_; }

    /// The store becomes a new, empty one.
    bool clear() {
        close_all();
        failed_ = false;
        failure_.clear();
        open_fresh();
        return !failed_;
    }

    // ---- rows ----

    std::optional<stored_object> load_object(std::string_view key, bool with_data) {
        auto& s = statement(select_object);
        s.bind(1, key);
        const int result = s.step();
        std::optional<stored_object> object;
        if (result == SQLITE_ROW) {
            stored_object found;
            found.version = s.unsigned_integer(0);
            const auto meta = s.blob(1);
            const auto data = s.blob(2);
            std::vector<std::uint8_t> row(meta.begin(), meta.end());
            // Without the data, only its kind and count are needed to parse.
            const std::size_t data_taken = with_data ? data.size() : std::min<std::size_t>(data.size(), 5);
            row.insert(row.end(), data.begin(), data.begin() + static_cast<std::ptrdiff_t>(data_taken));
            vsr::byte_reader r(row);
            const bool decoded = with_data ? metadata_rows::read_meta_and_data(options_, r, found) && r.done()
                                           : r.read_u64(found.last_modified_ns) && detail::read_attributes(r, found);
            if (decoded) {
                if (!with_data && !data.empty()) found.kind = static_cast<data_kind>(data[0]);
                object = std::move(found);
            } else {
                fail("an object row does not decode");
            }
        } else if (result != SQLITE_DONE) {
            fail("read object");
        }
        s.reset();
        return object;
    }

    bool insert_object(std::string_view key, const stored_object& object) {
        std::vector<std::uint8_t> meta, data;
        metadata_rows::encode_meta(object, meta);
        metadata_rows::encode_data(object, data);
        if (!statement(insert_object_row)
                 .bind(1, object.version)
                 .bind(2, key)
                 .bind(3, std::span<const std::uint8_t>(meta))
                 .bind(4, std::span<const std::uint8_t>(data))
                 .run()) {
            return fail("insert object");
        }
        totals_.objects += 1;
        totals_.logical_bytes += object.size;
        totals_.inline_bytes += object.inline_data.size();
        totals_.object_entry_bytes += metadata_rows::object_entry_size(key.size(), meta.size(), data.size());
        totals_.row_hash_sum += metadata_rows::object_hash(key, object.version, meta, data);
        return true;
    }

    bool remove_object(std::string_view key, const stored_object& object) {
        if (!statement(delete_object_row).bind(1, object.version).run()) return fail("delete object");
        std::vector<std::uint8_t> meta, data;
        metadata_rows::encode_meta(object, meta);
        metadata_rows::encode_data(object, data);
        totals_.objects -= 1;
        totals_.logical_bytes -= object.size;
        totals_.inline_bytes -= object.inline_data.size();
        totals_.object_entry_bytes -= metadata_rows::object_entry_size(key.size(), meta.size(), data.size());
        totals_.row_hash_sum -= metadata_rows::object_hash(key, object.version, meta, data);
        return true;
    }

    std::optional<stored_chunk> load_chunk(const sha256_digest& sha) {
        auto& s = statement(select_chunk);
        s.bind(1, std::span<const std::uint8_t>(sha));
        const int result = s.step();
        std::optional<stored_chunk> chunk;
        if (result == SQLITE_ROW) {
            chunk = stored_chunk{static_cast<std::uint32_t>(s.unsigned_integer(0)), s.unsigned_integer(1),
                                 static_cast<node_set>(s.unsigned_integer(2))};
        } else if (result != SQLITE_DONE) {
            fail("read chunk");
        }
        s.reset();
        return chunk;
    }

    /// Writes a chunk row (inserting it when `before` is empty).
    bool put_chunk(const sha256_digest& sha, const std::optional<stored_chunk>& before, const stored_chunk& after) {
        const auto digest = std::span<const std::uint8_t>(sha);
        if (before) {
            if (!statement(update_chunk)
                     .bind(1, digest)
                     .bind(2, after.refcount)
                     .bind(3, std::uint64_t{after.holders})
                     .run()) {
                return fail("update chunk");
            }
            totals_.row_hash_sum -= metadata_rows::chunk_hash(sha, *before);
        } else {
            if (!statement(insert_chunk)
                     .bind(1, digest)
                     .bind(2, std::uint64_t{after.size})
                     .bind(3, after.refcount)
                     .bind(4, std::uint64_t{after.holders})
                     .run()) {
                return fail("insert chunk");
            }
            totals_.chunks += 1;
            totals_.chunk_bytes += after.size;
        }
        totals_.row_hash_sum += metadata_rows::chunk_hash(sha, after);
        return true;
    }

    bool remove_chunk(const sha256_digest& sha, const stored_chunk& before) {
        if (!statement(delete_chunk).bind(1, std::span<const std::uint8_t>(sha)).run()) return fail("delete chunk");
        totals_.chunks -= 1;
        totals_.chunk_bytes -= before.size;
        totals_.row_hash_sum -= metadata_rows::chunk_hash(sha, before);
        return true;
    }

    /// Calls visit(key, meta) for keys from `from` (inclusive, or exclusive when `after`), in
    /// order, until it returns false. False if the store failed.
    template <typename Visit>
    bool scan_objects(std::string_view from, bool after, Visit&& visit) {
        auto& s = statement(after ? list_after : list_from);
        s.bind(1, from);
        int step = SQLITE_DONE;
        while ((step = s.step()) == SQLITE_ROW) {
            if (!visit(s.text(0), s.blob(1))) {
                step = SQLITE_DONE;
                break;
            }
        }
        s.reset();
        return step == SQLITE_DONE || fail("scan objects");
    }

    /// Calls visit(sha, chunk) for chunks after `after` (from the first when empty), in order.
    template <typename Visit>
    bool scan_chunks(std::span<const std::uint8_t> after, Visit&& visit) {
        auto& s = statement(list_chunks_after);
        s.bind(1, after);
        int step = SQLITE_DONE;
        while ((step = s.step()) == SQLITE_ROW) {
            sha256_digest sha{};
            const auto bytes = s.blob(0);
            if (bytes.size() != sha.size()) {
                step = SQLITE_CORRUPT;
                break;
            }
            std::copy(bytes.begin(), bytes.end(), sha.begin());
            const stored_chunk chunk{static_cast<std::uint32_t>(s.unsigned_integer(1)), s.unsigned_integer(2),
                                     static_cast<node_set>(s.unsigned_integer(3))};
            if (!visit(sha, chunk)) {
                step = SQLITE_DONE;
                break;
            }
        }
        s.reset();
        return step == SQLITE_DONE || fail("scan chunks");
    }

    /// Calls visit(key, version, meta, data) for every object, in key order.
    template <typename Visit>
    bool scan_object_rows(Visit&& visit) {
        auto& s = statement(all_objects);
        int step = SQLITE_DONE;
        while ((step = s.step()) == SQLITE_ROW) visit(s.text(0), s.unsigned_integer(1), s.blob(2), s.blob(3));
        s.reset();
        return step == SQLITE_DONE || fail("scan objects");
    }

    /// Records the first failure (the store is unusable from then on); false, for `return fail(..)`.
    /// A page that failed its checksum is damage, not a passing error: the store says so on
    /// disk, so that the next open reports it damaged (and the replica recovers from its peers)
    /// instead of reading the same page again at every restart.
    bool fail(const std::string& what) {
        if (!failed_) {
            failed_ = true;
            failure_ = what + ": " + (writer_.is_open() ? writer_.last_error() : std::string("not open"));
            if (vfs_.counters().page_checksum_failures > 0) mark_damaged();
        }
        return false;
    }

    /// Empties both tables (inside the open transaction; see savepoint()).
    bool clear_rows() {
        if (!statement(delete_all_objects).run() || !statement(delete_all_chunks).run()) {
            return fail("empty the tables");
        }
        totals_ = metadata_totals{};
        return true;
    }
    /// A savepoint inside the open transaction, released or rolled back by end_savepoint().
    bool savepoint() { return check(writer_.execute("SAVEPOINT restore"), "savepoint"); }
    bool end_savepoint(bool keep) {
        if (!keep && !check(writer_.execute("ROLLBACK TO restore"), "rollback")) return false;
        return check(writer_.execute("RELEASE restore"), "release");
    }
    /// Inserts an object row as a snapshot carries it: SQLITE_DONE, SQLITE_CONSTRAINT (its
    /// version is taken), or an error (the store failed).
    int insert_object_entry(std::string_view key, std::uint64_t version, std::span<const std::uint8_t> meta,
                            std::span<const std::uint8_t> data) {
        auto& s = statement(insert_object_row);
        const int result = s.bind(1, version).bind(2, key).bind(3, meta).bind(4, data).step();
        s.reset();
        if (result != SQLITE_DONE && result != SQLITE_CONSTRAINT) fail("insert object");
        return result;
    }
    bool insert_chunk_row(const sha256_digest& sha, const stored_chunk& chunk) {
        return statement(insert_chunk)
                   .bind(1, std::span<const std::uint8_t>(sha))
                   .bind(2, std::uint64_t{chunk.size})
                   .bind(3, chunk.refcount)
                   .bind(4, std::uint64_t{chunk.holders})
                   .run() ||
               fail("insert chunk");
    }

    // ---- commits ----

    /// Ends the write transaction (with the totals) and starts the next one.
    bool commit() {
        if (failed_) return false;
        return store_totals(writer_, totals_) && check(writer_.execute("COMMIT"), "commit") &&
               check(writer_.execute("BEGIN"), "begin");
    }

    /// The state now, with the replica's checkpoint `op` and `record`, durable at return.
    bool store_checkpoint(std::uint64_t op, std::span<const std::uint8_t> record) {
        if (failed_) return false;
        return store_checkpoint_row(writer_, op, record) && commit();
    }

    // ---- reading a commit (snapshots and exports) ----

    /// The reader sees the last commit from now on, until release_reader().
    bool pin_reader() {
        release_reader();
        if (!check(reader_.execute("BEGIN"), "begin reader")) return false;
        auto totals = reader_.prepare(
            "SELECT next_version, objects, chunks, logical_bytes, inline_bytes, chunk_bytes, object_entry_bytes, "
            "row_hash_sum FROM totals WHERE id = 0");
        if (!totals.prepared() || totals.step() != SQLITE_ROW) return fail("read totals");
        pinned_totals_ = read_totals(totals);
        totals.reset();
        auto checkpoint = reader_.prepare("SELECT op FROM checkpoint WHERE id = 0");
        if (!checkpoint.prepared()) return fail("read checkpoint");
        const int step = checkpoint.step();
        if (step != SQLITE_ROW && step != SQLITE_DONE) return fail("read checkpoint");
        pinned_op_ = step == SQLITE_ROW ? checkpoint.unsigned_integer(0) : 0;
        checkpoint.reset();
        reader_objects_ = reader_.prepare("SELECT key, id, meta, data FROM objects WHERE key > ?1 ORDER BY key");
        reader_chunks_ =
            reader_.prepare("SELECT sha256, size, refcount, holders FROM chunks WHERE sha256 > ?1 ORDER BY sha256");
        if (!reader_objects_.prepared() || !reader_chunks_.prepared()) return fail("prepare reader");
        pinned_ = true;
        return true;
    }
    void release_reader() {
        if (!pinned_) return;
        pinned_ = false;
        reader_objects_ = {};
        reader_chunks_ = {};
        reader_.execute("COMMIT");
    }
    bool pinned() const noexcept { return pinned_; }
    std::uint64_t pinned_op() const noexcept { return pinned_op_; }
    const metadata_totals& pinned_totals() const noexcept { return pinned_totals_; }

    /// Appends the part of the pinned commit's export after `cursor`: whole records, at least
    /// one, up to `size_max` bytes. next_cursor says where it ended; true once the export is
    /// complete. The store fails (failed()) if the reader does.
    bool export_part(std::span<const std::uint8_t> cursor, std::size_t size_max, std::vector<std::uint8_t>& out,
                     std::vector<std::uint8_t>& next_cursor) {
        vsr::byte_writer w(out);
        const std::size_t begin = out.size();
        std::uint8_t phase = cursor.empty() ? 0 : cursor[0];
        std::vector<std::uint8_t> last(cursor.empty() ? cursor.begin() : cursor.begin() + 1, cursor.end());
        if (phase == 0) {
            w.u64(snapshot_magic);
            w.u64(pinned_totals_.next_version);
            w.u64(pinned_totals_.objects);
            phase = 1;
            last.clear();
        }
        bool complete = false;
        if (phase == 1) {
            auto& s = reader_objects_;
            const std::vector<std::uint8_t> from = last;  // bound: must not change while stepping
            s.bind(1, std::span<const std::uint8_t>(from));
            int step = SQLITE_ROW;
            while ((step = s.step()) == SQLITE_ROW) {
                const auto key = s.text(0);
                const auto meta = s.blob(2);
                const auto data = s.blob(3);
                const std::size_t size = metadata_rows::object_entry_size(key.size(), meta.size(), data.size());
                if (out.size() - begin > 0 && out.size() - begin + size > size_max) break;
                detail::write_sized_string(w, key);
                w.u64(s.unsigned_integer(1));
                w.bytes(meta);
                w.bytes(data);
                last.assign(key.begin(), key.end());
            }
            s.reset();
            if (step != SQLITE_ROW && step != SQLITE_DONE) return fail("export objects"), true;
            if (step == SQLITE_DONE && out.size() - begin + 8 <= std::max<std::size_t>(size_max, 8)) {
                w.u64(pinned_totals_.chunks);
                phase = 2;
                last.clear();
            }
        }
        if (phase == 2) {
            auto& s = reader_chunks_;
            const std::vector<std::uint8_t> from = last;
            s.bind(1, std::span<const std::uint8_t>(from));
            int step = SQLITE_ROW;
            while ((step = s.step()) == SQLITE_ROW) {
                if (out.size() - begin > 0 && out.size() - begin + stored_chunk_encoded_size > size_max) break;
                const auto sha = s.blob(0);
                w.bytes(sha);
                w.u32(static_cast<std::uint32_t>(s.unsigned_integer(1)));
                w.u64(s.unsigned_integer(2));
                w.u16(static_cast<std::uint16_t>(s.unsigned_integer(3)));
                last.assign(sha.begin(), sha.end());
            }
            s.reset();
            if (step != SQLITE_ROW && step != SQLITE_DONE) return fail("export chunks"), true;
            complete = step == SQLITE_DONE;
        }
        next_cursor.clear();
        next_cursor.push_back(phase);
        next_cursor.insert(next_cursor.end(), last.begin(), last.end());
        return complete;
    }

    // ---- importing a whole state (state transfer), into a file of its own ----

    bool import_begin();
    /// Whole records of an export, in order; false if they are not (the import is then over).
    bool import_part(std::span<const std::uint8_t> bytes);
    std::uint64_t import_digest() const noexcept { return import_ ? import_->totals.digest() : 0; }
    /// Checks the import is complete and consistent, stores it with the checkpoint, and makes
    /// it the store. False: nothing changed (failed() says whether the store failed meanwhile).
    bool import_finish(std::uint64_t op, std::span<const std::uint8_t> record);
    void import_abandon() {
        import_.reset();
        remove_import_files();
    }

private:
    enum statement_id : std::size_t {
        select_object,
        insert_object_row,
        delete_object_row,
        list_from,   // keys >= ?1
        list_after,  // keys > ?1
        select_chunk,
        insert_chunk,
        update_chunk,
        delete_chunk,
        list_chunks_after,
        all_objects,
        delete_all_objects,
        delete_all_chunks,
        statement_count,
    };
    static constexpr const char* statement_sql[statement_count] = {
        "SELECT id, meta, data FROM objects WHERE key = ?1",
        "INSERT INTO objects (id, key, meta, data) VALUES (?1, ?2, ?3, ?4)",
        "DELETE FROM objects WHERE id = ?1",
        "SELECT key, meta FROM objects WHERE key >= ?1 ORDER BY key",
        "SELECT key, meta FROM objects WHERE key > ?1 ORDER BY key",
        "SELECT size, refcount, holders FROM chunks WHERE sha256 = ?1",
        "INSERT INTO chunks (sha256, size, refcount, holders) VALUES (?1, ?2, ?3, ?4)",
        "UPDATE chunks SET refcount = ?2, holders = ?3 WHERE sha256 = ?1",
        "DELETE FROM chunks WHERE sha256 = ?1",
        "SELECT sha256, size, refcount, holders FROM chunks WHERE sha256 > ?1 ORDER BY sha256",
        "SELECT key, id, meta, data FROM objects ORDER BY key",
        "DELETE FROM objects",
        "DELETE FROM chunks",
    };
    static constexpr const char* schema =
        "CREATE TABLE objects (id INTEGER PRIMARY KEY, key BLOB NOT NULL UNIQUE, meta BLOB NOT NULL, "
        "data BLOB NOT NULL);"
        "CREATE TABLE chunks (sha256 BLOB PRIMARY KEY, size INTEGER NOT NULL, refcount INTEGER NOT NULL, "
        "holders INTEGER NOT NULL) WITHOUT ROWID;"
        "CREATE TABLE totals (id INTEGER PRIMARY KEY, next_version INTEGER, objects INTEGER, chunks INTEGER, "
        "logical_bytes INTEGER, inline_bytes INTEGER, chunk_bytes INTEGER, object_entry_bytes INTEGER, "
        "row_hash_sum INTEGER);"
        "CREATE TABLE checkpoint (id INTEGER PRIMARY KEY, op INTEGER NOT NULL, record BLOB NOT NULL);";

    /// An import in progress: its own connection and file, and what it has seen so far.
    struct import_state {
        sqlite::connection db;
        sqlite::statement insert_object;
        sqlite::statement insert_chunk;
        sqlite::statement insert_ref;
        std::uint8_t phase = 0;  // 0: header next, 1: objects, 2: chunk count next, 3: chunks, 4: done
        std::uint64_t objects_expected = 0;
        std::uint64_t chunks_expected = 0;
        std::uint64_t objects_seen = 0;
        std::uint64_t chunks_seen = 0;
        std::vector<std::uint8_t> last;  // the last key or digest, for the order
        metadata_totals totals;
    };

    std::string import_name() const { return store_.file_name + ".import"; }
    void remove_import_files() {
        for (const char* suffix : {"", "-wal", "-journal"}) disk_.remove(import_name() + suffix);
    }

    /// A statement of the writer; an unprepared one (every step fails) if the store never opened.
    sqlite::statement& statement(statement_id id) {
        if (statements_.size() != statement_count) {
            fail("the store is not open");
            unprepared_ = {};
            return unprepared_;
        }
        return statements_[id];
    }
    bool check(int result, const char* what) { return result == SQLITE_OK || fail(what); }

    /// The reader serves exports and snapshots, which read each page once: a small cache does.
    static constexpr std::int64_t reader_cache_kib_max = 16 * 1024;

    bool configure(sqlite::connection& c, bool reading, bool durable) {
        const std::int64_t cache_kib = reading ? std::min(store_.cache_kib, reader_cache_kib_max) : store_.cache_kib;
        const std::string cache = "PRAGMA cache_size = " + std::to_string(-cache_kib);
        // WAL pages are copied into the database (a checkpoint of SQLite's own) once
        // wal_copy_pages of them (64 MiB by default) gathered, not every 1000 as SQLite does: most
        // commits then pay one sync and no copy (bench/metadata_bench: a 1024-put commit 39 ->
        // 19 ms). The WAL file is cut back to 64 MiB after a reset, so one large transaction does
        // not keep it large.
        const std::string copy = "PRAGMA wal_autocheckpoint = " + std::to_string(store_.wal_copy_pages);
        if (!check(c.execute(cache.c_str()), "cache_size") || !check(c.execute(copy.c_str()), "wal_autocheckpoint") ||
            !check(c.execute("PRAGMA journal_size_limit = 67108864"), "journal_size_limit") ||
            !check(c.execute("PRAGMA temp_store = MEMORY"), "temp_store") ||
            !check(c.execute("PRAGMA secure_delete = OFF"), "secure_delete") ||
            !check(c.execute(durable ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = OFF"), "synchronous")) {
            return false;
        }
        return !reading || check(c.execute("PRAGMA query_only = ON"), "query_only");
    }

    /// Opens `c` on a new database file `name` (removed first) with page checksums and the schema.
    bool create_database(sqlite::connection& c, const std::string& name, bool durable) {
        for (const char* suffix : {"", "-wal", "-journal"}) disk_.remove(name + suffix);
        if (!check(c.open(name, vfs_.name()), "open")) return false;
        int reserve = sqlite_page_checksum_size;  // before the first page is written
        return check(sqlite3_file_control(c.handle(), "main", SQLITE_FCNTL_RESERVE_BYTES, &reserve), "reserve bytes") &&
               check(c.execute("PRAGMA page_size = 4096"), "page_size") &&
               check(c.execute("PRAGMA journal_mode = WAL"), "journal_mode") && configure(c, false, durable) &&
               check(c.execute(schema), "schema");
    }

    bool prepare_statements() {
        statements_.clear();
        for (const char* sql : statement_sql) {
            statements_.push_back(writer_.prepare(sql));
            if (!statements_.back().prepared()) return fail("prepare");
        }
        return true;
    }

    bool open_reader() {
        return check(reader_.open(store_.file_name, vfs_.name()), "open reader") && configure(reader_, true, false);
    }

    std::string damage_marker_name() const { return store_.file_name + ".damaged"; }

    /// A durable note that the store's pages failed their checksums.
    void mark_damaged() {
        metadata_io status = metadata_io::ok;
        if (auto marker = disk_.open(damage_marker_name(), true, status)) marker->sync();
    }

    /// A new, empty store under the file name (whatever was there is removed).
    void open_fresh() {
        disk_.remove(damage_marker_name());
        opened_ = vsr::stored_state::empty;
        opened_op_ = 0;
        opened_record_.clear();
        totals_ = metadata_totals{};
        if (!create_database(writer_, store_.file_name, store_.durable) || !prepare_statements() ||
            !store_totals(writer_, totals_) || !check(writer_.execute("BEGIN"), "begin")) {
            return;
        }
        open_reader();
    }

    /// What the disk holds: the rows, the totals and the last checkpoint. Damaged (then empty)
    /// if a page failed its checksum before, it does not open, is not ours (no page checksums),
    /// or does not read back.
    void open_existing() {
        if (disk_.exists(damage_marker_name()) || !check(writer_.open(store_.file_name, vfs_.name()), "open") ||
            !configure(writer_, false, store_.durable) || !has_page_checksums() || !prepare_statements()) {
            return damaged();
        }
        auto totals = writer_.prepare(
            "SELECT next_version, objects, chunks, logical_bytes, inline_bytes, chunk_bytes, object_entry_bytes, "
            "row_hash_sum FROM totals WHERE id = 0");
        auto checkpoint = writer_.prepare("SELECT op, record FROM checkpoint WHERE id = 0");
        if (!totals.prepared() || !checkpoint.prepared() || totals.step() != SQLITE_ROW) return damaged();
        totals_ = read_totals(totals);
        totals.reset();
        const int step = checkpoint.step();
        if (step == SQLITE_ROW) {
            opened_ = vsr::stored_state::loaded;
            opened_op_ = checkpoint.unsigned_integer(0);
            const auto record = checkpoint.blob(1);
            opened_record_.assign(record.begin(), record.end());
        } else if (step == SQLITE_DONE && totals_.objects == 0 && totals_.chunks == 0) {
            opened_ = vsr::stored_state::empty;
        } else {
            return damaged();
        }
        checkpoint.reset();
        if (!check(writer_.execute("BEGIN"), "begin") || !open_reader()) return damaged();
    }

    void damaged() {
        close_all();
        failed_ = false;
        failure_.clear();
        open_fresh();
        opened_ = vsr::stored_state::damaged;
    }

    /// Every page of a store carries a checksum: a database without the reserved bytes for it
    /// is not one of ours (and our checksums would overwrite its data).
    bool has_page_checksums() {
        metadata_io status = metadata_io::ok;
        auto file = disk_.open(store_.file_name, false, status);
        std::array<std::uint8_t, 100> header{};
        std::size_t read = 0;
        return file != nullptr && file->read(0, header, read) == metadata_io::ok && read == header.size() &&
               header[20] == sqlite_page_checksum_size;
    }

    static metadata_totals read_totals(const sqlite::statement& s) {
        metadata_totals t;
        t.next_version = s.unsigned_integer(0);
        t.objects = s.unsigned_integer(1);
        t.chunks = s.unsigned_integer(2);
        t.logical_bytes = s.unsigned_integer(3);
        t.inline_bytes = s.unsigned_integer(4);
        t.chunk_bytes = s.unsigned_integer(5);
        t.object_entry_bytes = s.unsigned_integer(6);
        t.row_hash_sum = s.unsigned_integer(7);
        return t;
    }

    bool store_totals(sqlite::connection& c, const metadata_totals& t) {
        auto s = c.prepare(
            "INSERT OR REPLACE INTO totals (id, next_version, objects, chunks, logical_bytes, inline_bytes, "
            "chunk_bytes, object_entry_bytes, row_hash_sum) VALUES (0, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
        return (s.prepared() && s.bind(1, t.next_version)
                                    .bind(2, t.objects)
                                    .bind(3, t.chunks)
                                    .bind(4, t.logical_bytes)
                                    .bind(5, t.inline_bytes)
                                    .bind(6, t.chunk_bytes)
                                    .bind(7, t.object_entry_bytes)
                                    .bind(8, t.row_hash_sum)
                                    .run()) ||
               fail("write totals");
    }

    bool store_checkpoint_row(sqlite::connection& c, std::uint64_t op, std::span<const std::uint8_t> record) {
        auto s = c.prepare("INSERT OR REPLACE INTO checkpoint (id, op, record) VALUES (0, ?1, ?2)");
        return (s.prepared() && s.bind(1, op).bind(2, record).run()) || fail("write checkpoint");
    }

    void close_all() {
        release_reader();
        import_.reset();
        statements_.clear();
        reader_.close();
        writer_.close();
    }

    metadata_options options_;
    std::unique_ptr<memory_metadata_disk> own_disk_;
    metadata_disk& disk_;
    metadata_store_options store_;
    sqlite_vfs vfs_;
    sqlite::connection writer_;                  // executes, inside one long transaction
    sqlite::connection reader_;                  // reads a commit, for snapshots and exports
    std::vector<sqlite::statement> statements_;  // on the writer, in the order of statement_sql
    sqlite::statement unprepared_;
    metadata_totals totals_;
    bool failed_ = false;
    std::string failure_;

    vsr::stored_state opened_ = vsr::stored_state::empty;
    std::uint64_t opened_op_ = 0;
    std::vector<std::uint8_t> opened_record_;

    bool pinned_ = false;
    std::uint64_t pinned_op_ = 0;
    metadata_totals pinned_totals_;
    sqlite::statement reader_objects_;
    sqlite::statement reader_chunks_;

    std::unique_ptr<import_state> import_;
};

// ---- import ---------------------------------------------------------------------------------

inline bool metadata_store::import_begin() {
    import_abandon();
    import_ = std::make_unique<import_state>();
    sqlite::connection& db = import_->db;
    if (!create_database(db, import_name(), false) ||
        !check(db.execute("CREATE TABLE refs (sha256 BLOB NOT NULL, size INTEGER NOT NULL)"), "import schema")) {
        import_abandon();
        return false;
    }
    import_->insert_object = db.prepare("INSERT INTO objects (id, key, meta, data) VALUES (?1, ?2, ?3, ?4)");
    import_->insert_chunk = db.prepare("INSERT INTO chunks (sha256, size, refcount, holders) VALUES (?1, ?2, ?3, ?4)");
    import_->insert_ref = db.prepare("INSERT INTO refs (sha256, size) VALUES (?1, ?2)");
    if (!import_->insert_object.prepared() || !import_->insert_chunk.prepared() || !import_->insert_ref.prepared()) {
        import_abandon();
        return fail("prepare import");
    }
    return true;
}

inline bool metadata_store::import_part(std::span<const std::uint8_t> bytes) {
    if (!import_) return false;
    import_state& in = *import_;
    metadata_totals& t = in.totals;
    vsr::byte_reader r(bytes);
    if (!check(in.db.execute("BEGIN"), "import begin")) return false;
    bool valid = true;
    while (valid && r.remaining() > 0) {
        if (in.phase == 0) {
            std::uint64_t magic = 0;
            valid = r.read_u64(magic) && magic == snapshot_magic && r.read_u64(t.next_version) && t.next_version >= 1 &&
                    r.read_u64(in.objects_expected) && in.objects_expected <= options_.objects_max;
            in.phase = 1;
        } else if (in.phase == 1 && in.objects_seen == in.objects_expected) {
            in.phase = 2;
        } else if (in.phase == 1) {
            std::string key;
            stored_object object;
            valid = detail::read_sized_string(r, key, 1, key_size_max) && r.read_u64(object.version) &&
                    metadata_rows::read_meta_and_data(options_, r, object) && object.version >= 1 &&
                    object.version < t.next_version &&
                    object.size <= std::numeric_limits<std::uint64_t>::max() - t.logical_bytes &&
                    (in.objects_seen == 0 || std::string_view(reinterpret_cast<const char*>(in.last.data()),
                                                              in.last.size()) < std::string_view(key));
            if (!valid) break;
            std::vector<std::uint8_t> meta, data;
            metadata_rows::encode_meta(object, meta);
            metadata_rows::encode_data(object, data);
            const int result = in.insert_object.bind(1, object.version)
                                   .bind(2, std::string_view(key))
                                   .bind(3, std::span<const std::uint8_t>(meta))
                                   .bind(4, std::span<const std::uint8_t>(data))
                                   .step();
            in.insert_object.reset();
            if (result != SQLITE_DONE) {
                valid = false;  // a version twice, or the import's disk failed: either way, no image
                break;
            }
            for (const auto& chunk : object.chunks) {
                if (!in.insert_ref.bind(1, std::span<const std::uint8_t>(chunk.sha256))
                         .bind(2, std::uint64_t{chunk.size})
                         .run()) {
                    valid = false;
                    break;
                }
            }
            in.last.assign(key.begin(), key.end());
            ++in.objects_seen;
            t.objects += 1;
            t.logical_bytes += object.size;
            t.inline_bytes += object.inline_data.size();
            t.object_entry_bytes += metadata_rows::object_entry_size(key.size(), meta.size(), data.size());
            t.row_hash_sum += metadata_rows::object_hash(key, object.version, meta, data);
        } else if (in.phase == 2) {
            valid = r.read_u64(in.chunks_expected) && in.chunks_expected <= options_.chunks_max;
            in.last.clear();
            in.phase = 3;
        } else if (in.phase == 3 && in.chunks_seen < in.chunks_expected) {
            sha256_digest sha{};
            stored_chunk chunk;
            valid = r.read_bytes(sha) && r.read_u32(chunk.size) && r.read_u64(chunk.refcount) &&
                    r.read_u16(chunk.holders) && chunk.holders != 0 && chunk.size != 0 && chunk.refcount != 0 &&
                    (in.chunks_seen == 0 ||
                     std::lexicographical_compare(in.last.begin(), in.last.end(), sha.begin(), sha.end())) &&
                    in.insert_chunk.bind(1, std::span<const std::uint8_t>(sha))
                        .bind(2, std::uint64_t{chunk.size})
                        .bind(3, chunk.refcount)
                        .bind(4, std::uint64_t{chunk.holders})
                        .run();
            if (!valid) break;
            in.last.assign(sha.begin(), sha.end());
            ++in.chunks_seen;
            t.chunks += 1;
            t.chunk_bytes += chunk.size;
            t.row_hash_sum += metadata_rows::chunk_hash(sha, chunk);
        } else {
            valid = false;  // bytes past the end of the export
        }
        if (in.phase == 3 && in.chunks_seen == in.chunks_expected) in.phase = 4;
    }
    if (!valid || !check(in.db.execute("COMMIT"), "import commit")) {
        import_abandon();
        return false;
    }
    return true;
}

inline bool metadata_store::import_finish(std::uint64_t op, std::span<const std::uint8_t> record) {
    if (!import_) return false;
    import_state& in = *import_;
    sqlite::connection& db = in.db;
    bool complete = in.phase == 4 || (in.phase == 3 && in.chunks_expected == 0);
    complete = complete && in.objects_seen == in.objects_expected && in.chunks_seen == in.chunks_expected &&
               in.totals.inline_bytes <= options_.inline_bytes_max;
    // The chunk index must be the one the object lists imply: same digests, sizes and counts.
    if (complete) {
        auto implied = db.prepare(
            "SELECT sha256, size, COUNT(*), MIN(size) = MAX(size) FROM refs GROUP BY sha256 "
            "ORDER BY sha256");
        auto index = db.prepare("SELECT sha256, size, refcount FROM chunks ORDER BY sha256");
        if (!implied.prepared() || !index.prepared()) {
            import_abandon();
            return fail("prepare import check");
        }
        for (;;) {
            const int a = implied.step();
            const int b = index.step();
            if (a == SQLITE_DONE && b == SQLITE_DONE) break;
            if (a != SQLITE_ROW || b != SQLITE_ROW) {
                complete = false;
                break;
            }
            const auto sha_a = implied.blob(0);
            const auto sha_b = index.blob(0);
            if (!std::equal(sha_a.begin(), sha_a.end(), sha_b.begin(), sha_b.end()) || implied.integer(3) != 1 ||
                implied.integer(1) != index.integer(1) || implied.integer(2) != index.integer(2)) {
                complete = false;
                break;
            }
        }
    }
    if (!complete) {
        import_abandon();
        return false;
    }
    // Durable and whole in its own file, then it replaces the store's.
    const bool stored = check(db.execute("DROP TABLE refs"), "import drop") && store_totals(db, in.totals) &&
                        store_checkpoint_row(db, op, record) &&
                        check(db.execute("PRAGMA synchronous = FULL"), "import synchronous") &&
                        check(db.execute("PRAGMA wal_checkpoint(TRUNCATE)"), "import checkpoint");
    const metadata_totals totals = in.totals;
    import_.reset();  // closes the import's connection
    if (!stored) {
        remove_import_files();
        return false;
    }
    // The store's own WAL folds into its file first, so no WAL of the old store outlives it.
    release_reader();
    writer_.execute("ROLLBACK");
    writer_.execute("PRAGMA wal_checkpoint(TRUNCATE)");
    statements_.clear();
    reader_.close();
    writer_.close();
    const std::string live = store_.file_name;
    for (const char* suffix : {"-wal", "-journal"}) disk_.remove(live + suffix);
    disk_.remove(import_name() + "-wal");
    if (disk_.rename(import_name(), live) != metadata_io::ok) return fail("replace the store with the import");
    if (!check(writer_.open(live, vfs_.name()), "open") || !configure(writer_, false, store_.durable) ||
        !prepare_statements() || !check(writer_.execute("BEGIN"), "begin") || !open_reader()) {
        return false;
    }
    totals_ = totals;
    return true;
}

}  // namespace toastyfs
