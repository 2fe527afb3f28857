// The metadata state machine: object metadata and the chunk index, replicated through VSR.
//
// It is the single authority on which chunks are referenced and by which nodes they are held.
// Object data lives in content-addressed chunks on storage nodes (or inline, for small objects);
// this machine stores, per key, the object's attributes and chunk list, and per chunk digest its
// size, reference count and holders. Operations and results are defined in metadata_codec.hpp.
//
// The state lives in SQLite (toastyfs/sqlite.hpp) over a metadata_disk (toastyfs/sqlite_vfs.hpp),
// so it may be far larger than memory: only SQLite's page cache is held. Two tables:
//   objects(id = version, key UNIQUE, meta, data)    meta = u64 last_modified_ns | attributes
//                                                    data = u8 kind | inline: u32 size | bytes
//                                                                   | chunks: u32 count | (sha256 | u32 size)*
//   chunks(sha256 PRIMARY KEY, size, refcount, holders)
// and a one-row table `totals` written at each commit (next version, counts, byte sums, digest).
// Operations run inside one long write transaction, committed when a snapshot begins (the
// reader connection then serves the snapshot from that commit while execution goes on).
//
// Determinism: results depend only on the rows (SQLite's order is the key's byte order, as
// std::string's), and the only time is operation_context::timestamp_ns.
// Totality: every byte string is an operation or `invalid`; state changes only on `ok`. A failed
// disk (I/O error, full disk, a page that fails its checksum) is not a result: failed() turns
// true, the state is undefined from then on, and the replica must stop using the machine.
//
// Snapshot format (all integers little-endian):
//   u64 magic            snapshot_magic ("TFSMETA" + format version byte)
//   u64 next_version     the version the next put gets (>= 1)
//   u64 object_count     then per object, keys strictly ascending:
//     key | u64 version (1..next_version-1, unique) | meta | data      (as in the table above)
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
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "toastyfs/metadata_codec.hpp"
#include "toastyfs/metadata_disk.hpp"
#include "toastyfs/planted_bug.hpp"
#include "toastyfs/sqlite.hpp"
#include "toastyfs/sqlite_vfs.hpp"
#include "toastyfs/types.hpp"
#include "vsr/checksum.hpp"
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

/// Where and how one replica keeps its store. Local: replicas may differ in all of it.
struct metadata_store_options {
    std::string file_name = "metadata.db";  // on the metadata_disk; its WAL is file_name + "-wal"
    std::int64_t cache_kib = 16 * 1024;     // SQLite's page cache, per connection (there are two)
    bool durable = true;                    // sync at each commit (false: the disk need not survive)
    std::uint64_t seed = 1;                 // SQLite's randomness (WAL salts), through the VFS
};

inline constexpr std::uint64_t snapshot_magic = 0x01'41'54'45'4D'53'46'54;  // "TFSMETA\x01" (LE)

class metadata_state_machine {
public:
    metadata_state_machine() : metadata_state_machine(metadata_options{}) {}
    /// A machine whose store is file `store.file_name` on `disk` (which must outlive it), or
    /// on a disk in memory of its own when `disk` is null. The store starts empty.
    explicit metadata_state_machine(const metadata_options& options, metadata_disk* disk = nullptr,
                                    metadata_store_options store = {})
        : s_(std::make_unique<store_state>(options, disk, std::move(store))) {
        assert(options.valid());
        s_->open_fresh();
    }

    void execute(const vsr::operation_context& context, std::span<const std::uint8_t> bytes,
                 std::vector<std::uint8_t>& out) {
        const std::size_t begin = out.size();
        auto op = decode_operation(bytes);
        if (!op || s_->failed) {
            out.push_back(static_cast<std::uint8_t>(status::invalid));
        } else {
            std::visit([&](auto& alternative) { apply(context, alternative, out); }, *op);
        }
        assert(out.size() > begin);
        assert(out.size() - begin <= s_->options.result_size_max);
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
        if (!op || s_->failed) {
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
        assert(out.size() > begin && out.size() - begin <= s_->options.result_size_max);
        (void)begin;
    }

    std::size_t result_size_max() const noexcept { return s_->options.result_size_max; }
    const metadata_options& options() const noexcept { return s_->options; }

    /// The store failed (I/O error, full disk, a page that failed its checksum): the state is
    /// undefined and every further operation answers `invalid`. The replica must stop.
    bool failed() const noexcept { return s_->failed; }
    /// Why, for the log (empty while not failed).
    const std::string& failure() const noexcept { return s_->failure; }
    const sqlite_vfs_counters& disk_counters() const noexcept { return s_->vfs.counters(); }

    /// A digest of the whole state, kept up to date with every change (the sum of a hash of each
    /// row, so its cost does not grow with the state): equal states have equal digests on every
    /// replica, whatever order the rows were written in.
    std::uint64_t digest() const noexcept { return s_->totals.digest(); }

    // Introspection for tests and tools (not replicated state beyond what snapshot() holds).
    std::size_t object_count() const noexcept { return static_cast<std::size_t>(s_->totals.objects); }
    std::size_t chunk_count() const noexcept { return static_cast<std::size_t>(s_->totals.chunks); }
    std::optional<chunk_info> find_chunk(const sha256_digest& sha) const {
        const auto entry = s_->load_chunk(sha);
        if (!entry) return std::nullopt;
        return chunk_info{sha, entry->size, entry->refcount, entry->holders};
    }

    void snapshot(std::vector<std::uint8_t>& out) const;
    bool restore(std::span<const std::uint8_t> bytes);

    // vsr::state_machine_with_incremental_snapshot: the write transaction is committed and a
    // second connection reads the snapshot from that commit, a step at a time, while operations
    // go on in the next transaction.
    void snapshot_begin();
    bool snapshot_step(std::vector<std::uint8_t>& out, std::size_t size_hint);
    void snapshot_abandon() { s_->end_snapshot(); }

private:
    struct chunk_ref {
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
        std::vector<chunk_ref> chunks;
    };
    struct chunk_entry {
        std::uint32_t size = 0;
        std::uint64_t refcount = 0;  // references from object chunk lists, duplicates counted
        node_set holders = 0;        // never empty
    };
    /// Derived from the rows, kept in memory and written with each commit.
    struct totals_type {
        std::uint64_t next_version = 1;
        std::uint64_t objects = 0;
        std::uint64_t chunks = 0;
        std::uint64_t logical_bytes = 0;
        std::uint64_t inline_bytes = 0;
        std::uint64_t chunk_bytes = 0;
        std::uint64_t row_hash_sum = 0;  // wrapping sum of every row's hash

        std::uint64_t digest() const noexcept {
            std::array<std::uint8_t, 24> bytes{};
            vsr::store_le64(bytes.data(), row_hash_sum);
            vsr::store_le64(bytes.data() + 8, next_version);
            vsr::store_le64(bytes.data() + 16, objects);
            return vsr::checksum(bytes);
        }
    };
    enum class snapshot_phase : std::uint8_t { none, objects, chunks };

    static std::uint64_t object_row_hash(std::string_view key, std::uint64_t version,
                                         std::span<const std::uint8_t> meta, std::span<const std::uint8_t> data) {
        const auto key_bytes =
            std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(key.data()), key.size());
        return vsr::checksum(data, vsr::checksum(meta, vsr::checksum(key_bytes, version)));
    }
    static std::uint64_t chunk_row_hash(const sha256_digest& sha, const chunk_entry& entry) {
        std::array<std::uint8_t, 32 + 4 + 8 + 2> bytes{};
        std::copy(sha.begin(), sha.end(), bytes.begin());
        vsr::store_le32(bytes.data() + 32, entry.size);
        vsr::store_le64(bytes.data() + 36, entry.refcount);
        vsr::store_le16(bytes.data() + 44, entry.holders);
        return vsr::checksum(bytes, 2);
    }

    /// Everything SQLite, behind one pointer: the machine stays movable, and const queries can
    /// step statements.
    struct store_state {
        store_state(const metadata_options& options_in, metadata_disk* disk_in, metadata_store_options store_in)
            : options(options_in),
              own_disk(disk_in == nullptr ? std::make_unique<memory_metadata_disk>() : nullptr),
              disk(disk_in == nullptr ? *own_disk : *disk_in),
              store(std::move(store_in)),
              vfs(disk, store.seed) {}
        ~store_state() {
            end_snapshot();
            statements.clear();
            snapshot_objects = {};
            snapshot_chunks = {};
            reader.close();
            writer.close();
        }

        metadata_options options;
        std::unique_ptr<memory_metadata_disk> own_disk;
        metadata_disk& disk;
        metadata_store_options store;
        sqlite_vfs vfs;
        sqlite::connection writer;  // executes, inside one long transaction
        sqlite::connection reader;  // reads the last commit, for snapshots
        totals_type totals;
        bool failed = false;
        std::string failure;

        // Statements on the writer, in the order of `statement_sql`.
        std::vector<sqlite::statement> statements;
        // The snapshot in progress (reader).
        snapshot_phase phase = snapshot_phase::none;
        bool snapshot_header_written = false;  // the first step writes it
        totals_type snapshot_totals;
        sqlite::statement snapshot_objects;
        sqlite::statement snapshot_chunks;

        enum statement_id : std::size_t {
            select_object,
            insert_object,
            delete_object,
            list_from,   // keys >= ?1
            list_after,  // keys > ?1
            select_chunk,
            insert_chunk,
            update_chunk,
            delete_chunk,
            list_chunks_after,
            all_objects,
            all_chunks,
            write_totals,
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
            "SELECT id, key, meta, data FROM objects ORDER BY key",
            "SELECT sha256, size, refcount, holders FROM chunks ORDER BY sha256",
            "INSERT OR REPLACE INTO totals (id, next_version, objects, chunks, logical_bytes, inline_bytes, "
            "chunk_bytes, row_hash_sum) VALUES (0, ?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            "DELETE FROM objects",
            "DELETE FROM chunks",
        };
        sqlite::statement& statement(statement_id id) { return statements[id]; }

        /// Records the first failure; false, so callers can `return fail(...)`.
        bool fail(const char* what) {
            if (!failed) {
                failed = true;
                failure = std::string(what) + ": " + writer.last_error();
            }
            return false;
        }
        bool check(int result, const char* what) { return result == SQLITE_OK || fail(what); }

        bool configure(sqlite::connection& c, bool reading) {
            const std::string cache = "PRAGMA cache_size = " + std::to_string(-store.cache_kib);
            if (!check(c.execute(cache.c_str()), "cache_size") ||
                !check(c.execute("PRAGMA temp_store = MEMORY"), "temp_store") ||
                !check(c.execute("PRAGMA secure_delete = OFF"), "secure_delete") ||
                !check(c.execute(store.durable ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = OFF"),
                       "synchronous")) {
                return false;
            }
            return !reading || check(c.execute("PRAGMA query_only = ON"), "query_only");
        }

        /// A new, empty store (whatever the disk held under the name is removed).
        void open_fresh() {
            if (!vfs.registered()) {
                fail("cannot register the SQLite VFS");
                return;
            }
            for (const char* suffix : {"", "-wal", "-journal"}) disk.remove(store.file_name + suffix);
            if (!check(writer.open(store.file_name, vfs.name()), "open")) return;
            int reserve = sqlite_page_checksum_size;  // before the first page is written
            if (!check(sqlite3_file_control(writer.handle(), "main", SQLITE_FCNTL_RESERVE_BYTES, &reserve),
                       "reserve bytes") ||
                !check(writer.execute("PRAGMA page_size = 4096"), "page_size") ||
                !check(writer.execute("PRAGMA journal_mode = WAL"), "journal_mode") || !configure(writer, false) ||
                !check(writer.execute("CREATE TABLE objects (id INTEGER PRIMARY KEY, key BLOB NOT NULL UNIQUE, "
                                      "meta BLOB NOT NULL, data BLOB NOT NULL);"
                                      "CREATE TABLE chunks (sha256 BLOB PRIMARY KEY, size INTEGER NOT NULL, "
                                      "refcount INTEGER NOT NULL, holders INTEGER NOT NULL) WITHOUT ROWID;"
                                      "CREATE TABLE totals (id INTEGER PRIMARY KEY, next_version INTEGER, "
                                      "objects INTEGER, chunks INTEGER, logical_bytes INTEGER, inline_bytes INTEGER, "
                                      "chunk_bytes INTEGER, row_hash_sum INTEGER);"),
                       "schema")) {
                return;
            }
            for (const char* sql : statement_sql) {
                statements.push_back(writer.prepare(sql));
                if (!statements.back().prepared()) {
                    fail("prepare");
                    return;
                }
            }
            if (!store_totals() || !check(writer.execute("BEGIN"), "begin")) return;
            if (!check(reader.open(store.file_name, vfs.name()), "open reader") || !configure(reader, true)) return;
        }

        bool store_totals() {
            return statement(write_totals)
                       .bind(1, totals.next_version)
                       .bind(2, totals.objects)
                       .bind(3, totals.chunks)
                       .bind(4, totals.logical_bytes)
                       .bind(5, totals.inline_bytes)
                       .bind(6, totals.chunk_bytes)
                       .bind(7, totals.row_hash_sum)
                       .run() ||
                   fail("write totals");
        }

        /// Ends the write transaction (with the totals) and starts the next one.
        bool commit() {
            if (failed) return false;
            return store_totals() && check(writer.execute("COMMIT"), "commit") &&
                   check(writer.execute("BEGIN"), "begin");
        }

        void end_snapshot() {
            if (phase == snapshot_phase::none) return;
            phase = snapshot_phase::none;
            snapshot_header_written = false;
            snapshot_objects.reset();
            snapshot_chunks.reset();
            if (reader.is_open()) reader.execute("COMMIT");
        }

        std::optional<chunk_entry> load_chunk(const sha256_digest& sha) {
            auto& s = statement(select_chunk);
            s.bind(1, std::span<const std::uint8_t>(sha));
            const int result = s.step();
            std::optional<chunk_entry> entry;
            if (result == SQLITE_ROW) {
                entry = chunk_entry{static_cast<std::uint32_t>(s.unsigned_integer(0)), s.unsigned_integer(1),
                                    static_cast<node_set>(s.unsigned_integer(2))};
            } else if (result != SQLITE_DONE) {
                fail("read chunk");
            }
            s.reset();
            return entry;
        }
    };

    static void write_status(std::vector<std::uint8_t>& out, status s) { out.push_back(static_cast<std::uint8_t>(s)); }
    bool lease_expired(std::uint64_t now_ns, std::uint64_t lease_begin_ns) const noexcept {
        return lease_begin_ns > now_ns || now_ns - lease_begin_ns > s_->options.upload_lease_ns;
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

    // Rows: encoding, decoding, reading and writing.
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
    bool read_meta_and_data(vsr::byte_reader& r, stored_object& object) const;

    std::optional<stored_object> load_object(std::string_view key, bool with_data) const;
    bool insert_object(std::string_view key, const stored_object& object);
    bool remove_object(std::string_view key, const stored_object& object);
    bool put_chunk(const sha256_digest& sha, const std::optional<chunk_entry>& before, const chunk_entry& after);
    bool remove_chunk(const sha256_digest& sha, const chunk_entry& before);

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
        const totals_type& t = s_->totals;
        encode_to(stats_result{status::ok, t.objects, t.chunks, t.logical_bytes, t.inline_bytes, t.chunk_bytes}, out);
    }

    void get(std::string_view key, bool with_data, std::vector<std::uint8_t>& out) const;
    bool reference(std::span<const chunk_location> chunks);
    bool unreference(std::span<const chunk_ref> chunks);

    /// Appends a failure answer (the replica stops on failed(); the answer only keeps execute total).
    void write_failure(std::vector<std::uint8_t>& out) const { write_status(out, status::invalid); }

    bool restore_rows(vsr::byte_reader& r, totals_type& totals);
    bool restore_chunks(vsr::byte_reader& r, const std::map<sha256_digest, chunk_entry>& expected, totals_type& totals);

    std::unique_ptr<store_state> s_;
};
static_assert(vsr::state_machine_with_queries<metadata_state_machine>);
static_assert(vsr::state_machine_with_incremental_snapshot<metadata_state_machine>);

// ---- rows -----------------------------------------------------------------------------------

inline bool metadata_state_machine::read_meta_and_data(vsr::byte_reader& r, stored_object& object) const {
    std::uint8_t kind = 0;
    std::uint32_t count = 0;
    if (!(r.read_u64(object.last_modified_ns) && detail::read_attributes(r, object) && r.read_u8(kind) &&
          r.read_u32(count))) {
        return false;
    }
    if (object.size > s_->options.object_size_max) return false;
    object.kind = static_cast<data_kind>(kind);
    if (object.kind == data_kind::inline_data) {
        return count == object.size && count <= s_->options.inline_size_max && r.read_bytes(count, object.inline_data);
    }
    if (object.kind != data_kind::chunks || count > s_->options.chunks_per_object_max ||
        count > r.remaining() / (32 + 4)) {
        return false;
    }
    object.chunks.resize(count);
    for (auto& chunk : object.chunks) {
        if (!(r.read_bytes(chunk.sha256) && r.read_u32(chunk.size))) return false;
    }
    return valid_chunk_list(object.size, std::span<const chunk_ref>(object.chunks));
}

/// The object under `key`, or nullopt (absent, or the store failed: see failed()).
inline std::optional<metadata_state_machine::stored_object> metadata_state_machine::load_object(std::string_view key,
                                                                                                bool with_data) const {
    auto& s = s_->statement(store_state::select_object);
    s.bind(1, key);
    const int result = s.step();
    std::optional<stored_object> object;
    if (result == SQLITE_ROW) {
        stored_object found;
        found.version = s.unsigned_integer(0);
        const auto meta = s.blob(1);
        const auto data = s.blob(2);
        std::vector<std::uint8_t> row(meta.begin(), meta.end());
        if (with_data) {
            row.insert(row.end(), data.begin(), data.end());
        } else {
            // Only the kind and count are needed to parse: the inline bytes and chunk list stay.
            row.insert(row.end(), data.begin(), data.begin() + std::min<std::size_t>(data.size(), 5));
        }
        vsr::byte_reader r(row);
        if (with_data ? (read_meta_and_data(r, found) && r.done())
                      : (r.read_u64(found.last_modified_ns) && detail::read_attributes(r, found))) {
            if (!with_data && data.size() >= 1) found.kind = static_cast<data_kind>(data[0]);
            object = std::move(found);
        } else {
            s_->fail("an object row does not decode");
        }
    } else if (result != SQLITE_DONE) {
        s_->fail("read object");
    }
    s.reset();
    return object;
}

inline bool metadata_state_machine::insert_object(std::string_view key, const stored_object& object) {
    std::vector<std::uint8_t> meta, data;
    encode_meta(object, meta);
    encode_data(object, data);
    if (!s_->statement(store_state::insert_object)
             .bind(1, object.version)
             .bind(2, key)
             .bind(3, std::span<const std::uint8_t>(meta))
             .bind(4, std::span<const std::uint8_t>(data))
             .run()) {
        return s_->fail("insert object");
    }
    totals_type& t = s_->totals;
    t.objects += 1;
    t.logical_bytes += object.size;
    t.inline_bytes += object.inline_data.size();
    t.row_hash_sum += object_row_hash(key, object.version, meta, data);
    return true;
}

inline bool metadata_state_machine::remove_object(std::string_view key, const stored_object& object) {
    if (!s_->statement(store_state::delete_object).bind(1, object.version).run()) return s_->fail("delete object");
    std::vector<std::uint8_t> meta, data;
    encode_meta(object, meta);
    encode_data(object, data);
    totals_type& t = s_->totals;
    t.objects -= 1;
    t.logical_bytes -= object.size;
    t.inline_bytes -= object.inline_data.size();
    t.row_hash_sum -= object_row_hash(key, object.version, meta, data);
    return true;
}

/// Writes a chunk row (inserting it when `before` is empty) and keeps the totals.
inline bool metadata_state_machine::put_chunk(const sha256_digest& sha, const std::optional<chunk_entry>& before,
                                              const chunk_entry& after) {
    const auto digest = std::span<const std::uint8_t>(sha);
    totals_type& t = s_->totals;
    if (before) {
        if (!s_->statement(store_state::update_chunk)
                 .bind(1, digest)
                 .bind(2, after.refcount)
                 .bind(3, std::uint64_t{after.holders})
                 .run()) {
            return s_->fail("update chunk");
        }
        t.row_hash_sum -= chunk_row_hash(sha, *before);
    } else {
        if (!s_->statement(store_state::insert_chunk)
                 .bind(1, digest)
                 .bind(2, std::uint64_t{after.size})
                 .bind(3, after.refcount)
                 .bind(4, std::uint64_t{after.holders})
                 .run()) {
            return s_->fail("insert chunk");
        }
        t.chunks += 1;
        t.chunk_bytes += after.size;
    }
    t.row_hash_sum += chunk_row_hash(sha, after);
    return true;
}

inline bool metadata_state_machine::remove_chunk(const sha256_digest& sha, const chunk_entry& before) {
    if (!s_->statement(store_state::delete_chunk).bind(1, std::span<const std::uint8_t>(sha)).run()) {
        return s_->fail("delete chunk");
    }
    totals_type& t = s_->totals;
    t.chunks -= 1;
    t.chunk_bytes -= before.size;
    t.row_hash_sum -= chunk_row_hash(sha, before);
    return true;
}

// ---- put ------------------------------------------------------------------------------------

/// Checks in this order, so the answer does not depend on how the state got here:
/// too_large (limits of the object itself) → invalid (a digest the index holds with another
/// size) → lease_expired (chunked objects only) → precondition_failed → store_full.
inline status metadata_state_machine::check_put(const vsr::operation_context& context, const put_object_operation& op,
                                                const stored_object* existing) const {
    const metadata_options& options = s_->options;
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

    const totals_type& t = s_->totals;
    if (existing == nullptr && t.objects >= options.objects_max) return status::store_full;
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
    const auto existing = load_object(op.key, true);
    const status s = s_->failed ? status::invalid : check_put(context, op, existing ? &*existing : nullptr);
    if (s_->failed) return write_failure(out);
    if (s != status::ok) return write_status(out, s);
    stored_object object;
    object.version = s_->totals.next_version++;
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
    // Reference the new chunks before releasing the old ones, so a chunk both lists share never
    // leaves the index (and keeps its holders).
    const bool stored = reference(op.chunks) &&
                        (!existing || (unreference(existing->chunks) && remove_object(op.key, *existing))) &&
                        insert_object(op.key, object);
    if (!stored) return write_failure(out);
    assert(s_->totals.objects <= s_->options.objects_max && s_->totals.chunks <= s_->options.chunks_max);
    encode_to(put_object_result{status::ok, object.version, object.last_modified_ns}, out);
}

inline bool metadata_state_machine::reference(std::span<const chunk_location> chunks) {
    for (const auto& chunk : chunks) {
        const auto before = s_->load_chunk(chunk.sha256);
        if (s_->failed) return false;
        chunk_entry after = before.value_or(chunk_entry{chunk.size, 0, 0});
        assert(after.size == chunk.size && chunk.holders != 0);
        after.refcount += 1;
        after.holders = static_cast<node_set>(after.holders | chunk.holders);
        if (!put_chunk(chunk.sha256, before, after)) return false;
    }
    return true;
}

inline bool metadata_state_machine::unreference(std::span<const chunk_ref> chunks) {
    for (const auto& chunk : chunks) {
        const auto before = s_->load_chunk(chunk.sha256);
        if (!before || before->refcount == 0) return s_->fail("a referenced chunk is missing from the index");
        chunk_entry after = *before;
        if (--after.refcount == 0) {
            if (!remove_chunk(chunk.sha256, *before)) return false;
        } else if (!put_chunk(chunk.sha256, before, after)) {
            return false;
        }
    }
    return true;
}

// ---- get, delete, list ----------------------------------------------------------------------

inline void metadata_state_machine::get(std::string_view key, bool with_data, std::vector<std::uint8_t>& out) const {
    const auto found = load_object(key, with_data);
    if (s_->failed) return write_failure(out);
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
    const auto existing = load_object(op.key, true);
    if (s_->failed) return write_failure(out);
    if (!existing) return write_status(out, status::not_found);
    if (!condition_holds(op.delete_condition, &*existing)) return write_status(out, status::precondition_failed);
    if (!unreference(existing->chunks) || !remove_object(op.key, *existing)) return write_failure(out);
    write_status(out, status::ok);
}

/// Keys with the prefix, strictly after start_after, in key order. Starts at a lower bound and
/// stops at the first key without the prefix, so the cost is O(log n + entries returned).
inline void metadata_state_machine::apply(const vsr::operation_context&, const list_objects_operation& op,
                                          std::vector<std::uint8_t>& out) const {
    const std::string_view prefix = op.prefix;
    const bool after = op.start_after >= op.prefix;
    auto& s = s_->statement(after ? store_state::list_after : store_state::list_from);
    s.bind(1, after ? std::string_view(op.start_after) : prefix);
    list_objects_result result{status::ok, false, {}, {}};
    std::size_t size = list_objects_result_header_size;
    int step = SQLITE_DONE;
    while ((step = s.step()) == SQLITE_ROW) {
        const std::string_view key = s.text(0);
        if (!key.starts_with(prefix)) {
            step = SQLITE_DONE;
            break;
        }
        const std::size_t entry_size = list_objects_entry_encoded_size(key.size());
        if (result.entries.size() == op.max_keys || size + entry_size > s_->options.list_result_bytes_max) {
            result.truncated = true;  // another matching key exists and was not returned
            step = SQLITE_DONE;
            break;
        }
        size += entry_size;
        stored_object object;
        vsr::byte_reader r(s.blob(1));
        if (!(r.read_u64(object.last_modified_ns) && detail::read_attributes(r, object))) {
            step = SQLITE_CORRUPT;
            break;
        }
        result.entries.push_back(
            list_objects_entry{std::string(key), object.size, object.md5, object.last_modified_ns});
    }
    s.reset();
    if (step != SQLITE_DONE) {
        s_->fail("list objects");
        return write_failure(out);
    }
    assert(!result.truncated || !result.entries.empty());
    encode_to(result, out);
}

// ---- chunk index ----------------------------------------------------------------------------

/// Order: lease_expired → not_referenced → ok.
inline void metadata_state_machine::apply(const vsr::operation_context& context, const add_holder_operation& op,
                                          std::vector<std::uint8_t>& out) {
    if (lease_expired(context.timestamp_ns, op.lease_begin_ns)) return write_status(out, status::lease_expired);
    const auto before = s_->load_chunk(op.sha256);
    if (s_->failed) return write_failure(out);
    if (!before) return write_status(out, status::not_referenced);
    chunk_entry after = *before;
    after.holders = with(after.holders, op.node);
    if (after.holders != before->holders && !put_chunk(op.sha256, before, after)) return write_failure(out);
    write_status(out, status::ok);
}

/// Removing a node that does not hold the chunk is ok (nothing changes).
inline void metadata_state_machine::apply(const vsr::operation_context&, const remove_holder_operation& op,
                                          std::vector<std::uint8_t>& out) {
    const auto before = s_->load_chunk(op.sha256);
    if (s_->failed) return write_failure(out);
    if (!before) return write_status(out, status::not_referenced);
    const node_set remaining = without(before->holders, op.node);
    if (remaining == 0) return write_status(out, status::last_holder);
    chunk_entry after = *before;
    after.holders = remaining;
    if (after.holders != before->holders && !put_chunk(op.sha256, before, after)) return write_failure(out);
    write_status(out, status::ok);
}

inline void metadata_state_machine::apply(const vsr::operation_context&, const list_chunks_operation& op,
                                          std::vector<std::uint8_t>& out) const {
    auto& s = s_->statement(store_state::list_chunks_after);
    s.bind(1, op.after ? std::span<const std::uint8_t>(*op.after) : std::span<const std::uint8_t>());
    list_chunks_result result{status::ok, false, {}};
    std::size_t size = list_chunks_result_header_size;
    int step = SQLITE_DONE;
    while ((step = s.step()) == SQLITE_ROW) {
        if (result.entries.size() == op.max_entries ||
            size + chunk_info_encoded_size > s_->options.list_result_bytes_max) {
            result.truncated = true;
            step = SQLITE_DONE;
            break;
        }
        size += chunk_info_encoded_size;
        chunk_info info{{},
                        static_cast<std::uint32_t>(s.unsigned_integer(1)),
                        s.unsigned_integer(2),
                        static_cast<node_set>(s.unsigned_integer(3))};
        const auto sha = s.blob(0);
        if (sha.size() != info.sha256.size()) {
            step = SQLITE_CORRUPT;
            break;
        }
        std::copy(sha.begin(), sha.end(), info.sha256.begin());
        result.entries.push_back(info);
    }
    s.reset();
    if (step != SQLITE_DONE) {
        s_->fail("list chunks");
        return write_failure(out);
    }
    encode_to(result, out);
}

inline void metadata_state_machine::apply(const vsr::operation_context&, const chunks_held_operation& op,
                                          std::vector<std::uint8_t>& out) const {
    chunks_held_result result{status::ok, std::vector<bool>(op.chunks.size(), false)};
    for (std::size_t i = 0; i < op.chunks.size(); ++i) {
        const auto entry = s_->load_chunk(op.chunks[i]);
        if (s_->failed) return write_failure(out);
        result.held[i] = entry && contains(entry->holders, op.node);
    }
    encode_to(result, out);
}

// ---- snapshot and restore -------------------------------------------------------------------

inline void metadata_state_machine::snapshot(std::vector<std::uint8_t>& out) const {
    vsr::byte_writer w(out);
    w.u64(snapshot_magic);
    w.u64(s_->totals.next_version);
    w.u64(s_->totals.objects);
    auto& objects = s_->statement(store_state::all_objects);
    int step = SQLITE_DONE;
    while ((step = objects.step()) == SQLITE_ROW) {
        detail::write_sized_string(w, objects.text(1));
        w.u64(objects.unsigned_integer(0));
        w.bytes(objects.blob(2));
        w.bytes(objects.blob(3));
    }
    objects.reset();
    if (step != SQLITE_DONE) s_->fail("snapshot objects");
    w.u64(s_->totals.chunks);
    auto& chunks = s_->statement(store_state::all_chunks);
    while ((step = chunks.step()) == SQLITE_ROW) {
        w.bytes(chunks.blob(0));
        w.u32(static_cast<std::uint32_t>(chunks.unsigned_integer(1)));
        w.u64(chunks.unsigned_integer(2));
        w.u16(static_cast<std::uint16_t>(chunks.unsigned_integer(3)));
    }
    chunks.reset();
    if (step != SQLITE_DONE) s_->fail("snapshot chunks");
}

inline void metadata_state_machine::snapshot_begin() {
    s_->end_snapshot();
    if (!s_->commit()) return;
    s_->snapshot_totals = s_->totals;
    if (!s_->check(s_->reader.execute("BEGIN"), "begin reader")) return;
    s_->snapshot_objects = s_->reader.prepare("SELECT id, key, meta, data FROM objects ORDER BY key");
    s_->snapshot_chunks = s_->reader.prepare("SELECT sha256, size, refcount, holders FROM chunks ORDER BY sha256");
    if (!s_->snapshot_objects.prepared() || !s_->snapshot_chunks.prepared()) {
        s_->fail("prepare snapshot");
        return;
    }
    s_->phase = snapshot_phase::objects;
}

inline bool metadata_state_machine::snapshot_step(std::vector<std::uint8_t>& out, std::size_t size_hint) {
    if (s_->failed) return true;  // the replica stops on failed()
    vsr::byte_writer w(out);
    const std::size_t begin = out.size();
    if (s_->phase == snapshot_phase::none) return true;
    if (s_->phase == snapshot_phase::objects && !s_->snapshot_objects.prepared()) return true;
    auto& objects = s_->snapshot_objects;
    auto& chunks = s_->snapshot_chunks;
    if (s_->phase == snapshot_phase::objects && !s_->snapshot_header_written) {
        w.u64(snapshot_magic);
        w.u64(s_->snapshot_totals.next_version);
        w.u64(s_->snapshot_totals.objects);
        s_->snapshot_header_written = true;
    }
    int step = SQLITE_ROW;
    while (s_->phase == snapshot_phase::objects && out.size() - begin < size_hint) {
        step = objects.step();
        if (step != SQLITE_ROW) break;
        detail::write_sized_string(w, objects.text(1));
        w.u64(objects.unsigned_integer(0));
        w.bytes(objects.blob(2));
        w.bytes(objects.blob(3));
    }
    if (s_->phase == snapshot_phase::objects && step != SQLITE_ROW) {
        if (step != SQLITE_DONE) return s_->fail("snapshot objects"), true;
        w.u64(s_->snapshot_totals.chunks);
        s_->phase = snapshot_phase::chunks;
    }
    while (s_->phase == snapshot_phase::chunks && out.size() - begin < size_hint) {
        step = chunks.step();
        if (step != SQLITE_ROW) break;
        w.bytes(chunks.blob(0));
        w.u32(static_cast<std::uint32_t>(chunks.unsigned_integer(1)));
        w.u64(chunks.unsigned_integer(2));
        w.u16(static_cast<std::uint16_t>(chunks.unsigned_integer(3)));
    }
    if (s_->phase == snapshot_phase::chunks && step != SQLITE_ROW) {
        if (step != SQLITE_DONE) s_->fail("snapshot chunks");
        s_->end_snapshot();
        return true;
    }
    return false;
}

/// Objects of a snapshot into the (emptied) table, in key order, with every rule a put enforces.
inline bool metadata_state_machine::restore_rows(vsr::byte_reader& r, totals_type& totals) {
    std::string previous_key;
    std::vector<std::uint8_t> meta, data;
    for (std::uint64_t i = 0; i < totals.objects; ++i) {
        std::string key;
        stored_object object;
        if (!(detail::read_sized_string(r, key, 1, key_size_max) && r.read_u64(object.version))) return false;
        if (!read_meta_and_data(r, object)) return false;
        if (object.version == 0 || object.version >= totals.next_version) return false;
        if (i > 0 && !(previous_key < key)) return false;  // sorted, unique
        previous_key = key;
        meta.clear();
        data.clear();
        encode_meta(object, meta);
        encode_data(object, data);
        const int result = s_->statement(store_state::insert_object)
                               .bind(1, object.version)
                               .bind(2, std::string_view(key))
                               .bind(3, std::span<const std::uint8_t>(meta))
                               .bind(4, std::span<const std::uint8_t>(data))
                               .step();
        s_->statement(store_state::insert_object).reset();
        if (result == SQLITE_CONSTRAINT) return false;  // a version twice
        if (result != SQLITE_DONE) return s_->fail("restore object");
        totals.logical_bytes += object.size;  // objects_max * object_size_max fits (options valid)
        totals.inline_bytes += object.inline_data.size();
        totals.row_hash_sum += object_row_hash(key, object.version, meta, data);
    }
    return true;
}

/// The chunk index of a snapshot must equal the one the objects imply, holders aside.
inline bool metadata_state_machine::restore_chunks(vsr::byte_reader& r,
                                                   const std::map<sha256_digest, chunk_entry>& expected,
                                                   totals_type& totals) {
    std::uint64_t count = 0;
    if (!r.read_u64(count) || count != expected.size() || count > s_->options.chunks_max) return false;
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
        if (!s_->statement(store_state::insert_chunk)
                 .bind(1, std::span<const std::uint8_t>(sha))
                 .bind(2, std::uint64_t{entry.size})
                 .bind(3, entry.refcount)
                 .bind(4, std::uint64_t{entry.holders})
                 .run()) {
            return s_->fail("restore chunk");
        }
        totals.chunks += 1;
        totals.chunk_bytes += entry.size;
        totals.row_hash_sum += chunk_row_hash(sha, entry);
    }
    return true;
}

inline bool metadata_state_machine::restore(std::span<const std::uint8_t> bytes) {
    s_->end_snapshot();
    if (s_->failed) return false;
    vsr::byte_reader r(bytes);
    std::uint64_t magic = 0;
    totals_type totals;
    if (!(r.read_u64(magic) && magic == snapshot_magic && r.read_u64(totals.next_version) && totals.next_version >= 1 &&
          r.read_u64(totals.objects) && totals.objects <= s_->options.objects_max)) {
        return false;
    }
    // The chunk index the objects imply, from a first pass over them.
    std::map<sha256_digest, chunk_entry> expected;
    {
        vsr::byte_reader scan = r;
        for (std::uint64_t i = 0; i < totals.objects; ++i) {
            std::string key;
            std::uint64_t version = 0;
            stored_object object;
            if (!(detail::read_sized_string(scan, key, 1, key_size_max) && scan.read_u64(version) &&
                  read_meta_and_data(scan, object))) {
                return false;
            }
            for (const auto& chunk : object.chunks) {
                auto [it, inserted] = expected.try_emplace(chunk.sha256, chunk_entry{chunk.size, 0, 0});
                if (it->second.size != chunk.size) return false;  // one digest, two sizes
                it->second.refcount += 1;
            }
        }
    }
    if (!s_->check(s_->writer.execute("SAVEPOINT restore"), "savepoint")) return false;
    const bool emptied =
        s_->statement(store_state::delete_all_objects).run() && s_->statement(store_state::delete_all_chunks).run();
    if (!emptied) s_->fail("empty the tables");
    const bool valid = emptied && restore_rows(r, totals) && totals.inline_bytes <= s_->options.inline_bytes_max &&
                       restore_chunks(r, expected, totals) && r.done();
    if (s_->failed) return false;
    if (!valid) {
        s_->check(s_->writer.execute("ROLLBACK TO restore"), "rollback");
        s_->check(s_->writer.execute("RELEASE restore"), "release");
        return false;
    }
    if (!s_->check(s_->writer.execute("RELEASE restore"), "release")) return false;
    s_->totals = totals;
    return true;
}

}  // namespace toastyfs
