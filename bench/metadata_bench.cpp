// The metadata state machine on SQLite (toastyfs/metadata_state_machine.hpp), on each of its
// disks: memory_metadata_disk, and platform::posix_metadata_disk in a fresh directory under
// $TMPDIR (else /var/tmp), durable as in production (fsync at each commit). Each state holds N
// objects of 1 KiB inline data under keys "obj-" + 16 hex digits of a bijective mix of 0..N-1,
// put in that order, so key order and version (row id) order are unrelated, as in a store
// filled over time. A state is built once per disk and size (stderr says how long it took) and
// every benchmark of that pair runs on it before the next is built.
// - put_new: a put of a new key (between existing ones). overwrite: a put of an existing key.
//   delete: of an existing key. get, head: query() of an existing key. list: query() of
//   list_objects, 1000 keys from a random existing one. Keys are random.
//   The writes run as the replica runs them: every 1024 puts (one checkpoint_interval of
//   one-put ops) the store commits (store_checkpoint), out of the timing, so these rows are the
//   cost of executing; the commit is the checkpoint row. put_new and delete also undo their
//   writes there (out of the timing), so the state keeps its size.
// - checkpoint/.../P: store_checkpoint after P puts of new keys (1024: a checkpoint_interval of
//   one-put ops; 32768: of ops batching 32 puts, as under load): what the replica waits for at
//   each checkpoint. Per batch, from disk_counters(): pages_written (WAL frames and pages copied
//   back into the database; bytes_written = pages x 4096, bytes_per_put), of which
//   pages_spilled were written while the puts executed (the page cache overflowed), and syncs;
//   put_us, the mean time of each of those puts (not in the row's time).
// - export: the whole state as state transfer sends it, export_part in parts of what fits a
//   checkpoint_chunk message (1 MiB messages). import: those parts into another machine on the
//   same kind of disk (import_begin, import_part, import_finish), its digest checked; per import,
//   disk_bytes (the store's files after it), pages_written and syncs.
// Time: CPU time (user and system) for the per-operation rows, so their rates are per CPU second
// and hold on a shared machine; wall-clock time for checkpoint, export and import, which wait
// for the disk (fsync).
//
// Sizes: 10,000 and 1,000,000 objects (the 1M posix state takes a few GiB of disk, and
// the memory one as much RAM); with --benchmark_min_time under 0.1 s (the bench-smoke test),
// 10,000 only and one checkpoint size. --state_sizes=N,M,... chooses the sizes.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "platform/metadata_disk_posix.hpp"
#include "toastyfs/metadata_codec.hpp"
#include "toastyfs/metadata_disk.hpp"
#include "toastyfs/metadata_state_machine.hpp"
#include "vsr/checkpoint.hpp"
#include "vsr/config.hpp"
#include "vsr/random.hpp"
#include "vsr/state_machine.hpp"
#include "vsr/wire.hpp"

namespace {

using namespace toastyfs;
using bytes = std::vector<std::uint8_t>;

constexpr std::size_t object_size = 1024;
constexpr std::uint64_t puts_per_checkpoint = 1024;  // vsr::config::checkpoint_interval
constexpr std::uint16_t list_size = 1000;
constexpr std::size_t page_size = 4096;
/// What one checkpoint_chunk carries of an export, as basic_replica sizes it.
const std::size_t export_part_size =
    vsr::config{}.message_size_max - vsr::header_size - vsr::checkpoint_chunk_header_size - vsr::export_cursor_size_max;

enum class disk_kind { memory, posix };
const char* to_string(disk_kind kind) { return kind == disk_kind::memory ? "memory" : "posix"; }

/// A bijection of 64-bit numbers (splitmix64's finalizer): consecutive numbers, scattered keys.
std::uint64_t mix(std::uint64_t x) {
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9u;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBu;
    return x ^ (x >> 31);
}

constexpr std::size_t key_size = 4 + 16;
/// Writes the key of object number n ("obj-" + 16 hex digits) to `out` (key_size bytes).
void write_key(std::uint64_t n, std::uint8_t* out) {
    static constexpr char hex[] = "0123456789abcdef";
    std::memcpy(out, "obj-", 4);
    const std::uint64_t m = mix(n);
    for (int i = 0; i < 16; ++i) out[4 + i] = static_cast<std::uint8_t>(hex[(m >> (60 - 4 * i)) & 0xF]);
}
std::string key_of(std::uint64_t n) {
    std::string key(key_size, ' ');
    write_key(n, reinterpret_cast<std::uint8_t*>(key.data()));
    return key;
}

/// An encoded operation on one key, re-keyed in place (keys all have the same size).
struct keyed_operation {
    bytes encoded;
    std::size_t key_offset = 0;

    template <typename Operation>
    static keyed_operation of(const Operation& op) {
        keyed_operation k;
        encode_to(op, k.encoded);
        const std::string key = key_of(0);
        const auto found = std::search(k.encoded.begin(), k.encoded.end(), key.begin(), key.end());
        k.key_offset = static_cast<std::size_t>(found - k.encoded.begin());
        if (found == k.encoded.end()) std::abort();
        return k;
    }
    std::span<const std::uint8_t> with_key(std::uint64_t n) {
        write_key(n, encoded.data() + key_offset);
        return encoded;
    }
};

put_object_operation object_put(std::uint64_t n) {
    put_object_operation op;
    op.key = key_of(n);
    op.size = object_size;
    op.md5.fill(0x5A);
    op.sha256.fill(0xA5);
    op.content_type = "application/octet-stream";
    vsr::xoshiro256 random(n + 1);
    op.inline_data.resize(object_size);
    for (auto& byte : op.inline_data) byte = static_cast<std::uint8_t>(random.next_u64());
    return op;
}

/// A fresh directory under $TMPDIR (else /var/tmp), removed with its files when destroyed.
struct temporary_directory {
    std::filesystem::path path;

    temporary_directory() {
        const char* base = std::getenv("TMPDIR");
        const std::filesystem::path root = base != nullptr && *base != '\0' ? base : "/var/tmp";
        const auto stamp = std::chrono::steady_clock::now().time_since_epoch().count();
        for (std::uint64_t attempt = 0;; ++attempt) {
            path = root / ("metadata_bench-" + std::to_string(mix(static_cast<std::uint64_t>(stamp) + attempt)));
            if (std::filesystem::create_directory(path)) return;
        }
    }
    ~temporary_directory() {
        std::error_code ignored;
        std::filesystem::remove_all(path, ignored);
    }
    temporary_directory(const temporary_directory&) = delete;
    temporary_directory& operator=(const temporary_directory&) = delete;

    std::uint64_t bytes_used() const {
        std::uint64_t total = 0;
        for (const auto& entry : std::filesystem::directory_iterator(path)) total += entry.file_size();
        return total;
    }
};

/// A machine on one disk, durable as in production.
struct disk_machine {
    disk_kind kind;
    std::unique_ptr<temporary_directory> directory;  // posix only
    std::unique_ptr<metadata_disk> disk;
    std::unique_ptr<metadata_state_machine> machine;

    explicit disk_machine(disk_kind k) : kind(k) {
        if (kind == disk_kind::posix) {
            directory = std::make_unique<temporary_directory>();
            auto posix = std::make_unique<platform::posix_metadata_disk>(directory->path.string());
            if (!posix->is_open()) {
                std::fprintf(stderr, "metadata_bench: %s\n", posix->last_error().c_str());
                std::abort();
            }
            disk = std::move(posix);
        } else {
            disk = std::make_unique<memory_metadata_disk>();
        }
        metadata_store_options store;
        store.durable = true;
        machine = std::make_unique<metadata_state_machine>(metadata_options{}, disk.get(), store);
    }
    std::uint64_t bytes_used() const {
        return kind == disk_kind::posix ? directory->bytes_used()
                                        : static_cast<const memory_metadata_disk&>(*disk).bytes_stored();
    }
    /// The size of one of the store's files (0 if absent).
    std::uint64_t file_size(const std::string& name) const {
        metadata_io status = metadata_io::ok;
        const auto file = disk->open(name, false, status);
        std::uint64_t size = 0;
        if (file == nullptr || file->size(size) != metadata_io::ok) return 0;
        return size;
    }
};

/// A state of `objects` objects, and the operations the benchmarks run on it.
struct fixture {
    disk_kind kind;
    std::uint64_t objects;
    disk_machine store;
    keyed_operation put = keyed_operation::of(object_put(0));
    keyed_operation get = keyed_operation::of(get_object_operation{key_of(0)});
    keyed_operation head = keyed_operation::of(head_object_operation{key_of(0)});
    keyed_operation remove = keyed_operation::of(delete_object_operation{key_of(0), {}});
    keyed_operation list = keyed_operation::of(list_objects_operation{"obj-", key_of(0), list_size});
    std::uint64_t op = 0;
    std::uint64_t now_ns = 1'000'000'000;
    std::uint64_t checkpoint_op = 0;
    bytes result;
    vsr::xoshiro256 random{7};
    std::uint64_t new_keys = 0;
    bool failed = false;

    fixture(disk_kind k, std::uint64_t n) : kind(k), objects(n), store(k) {
        const auto start = std::chrono::steady_clock::now();
        for (std::uint64_t i = 0; i < objects; ++i) {
            execute_put(i);
            if ((i + 1) % (16 * puts_per_checkpoint) == 0) checkpoint();
        }
        checkpoint();
        const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
        const metadata_store_options defaults;
        const double database = static_cast<double>(store.file_size(defaults.file_name));
        std::fprintf(stderr,
                     "metadata_bench: %llu objects on %s built in %.1f s (%.0f puts/s, a commit every %llu); "
                     "database %.0f bytes/object (%.1f MiB), WAL %.1f MiB\n",
                     static_cast<unsigned long long>(objects), to_string(kind), took.count(),
                     static_cast<double>(objects) / took.count(),
                     static_cast<unsigned long long>(16 * puts_per_checkpoint), database / static_cast<double>(objects),
                     database / 1048576.0,
                     static_cast<double>(store.file_size(defaults.file_name + "-wal")) / 1048576.0);
    }

    metadata_state_machine& machine() { return *store.machine; }

    void execute(std::span<const std::uint8_t> operation) {
        result.clear();
        now_ns += 1000;
        machine().execute(vsr::operation_context{++op, 0, now_ns, 1}, operation, result);
        failed = failed || result.empty() || result[0] != static_cast<std::uint8_t>(status::ok);
    }
    void query(std::span<const std::uint8_t> operation) {
        result.clear();
        machine().query(operation, result);
        failed = failed || result.empty() || result[0] != static_cast<std::uint8_t>(status::ok);
    }
    void execute_put(std::uint64_t n) { execute(put.with_key(n)); }
    void execute_delete(std::uint64_t n) { execute(remove.with_key(n)); }
    std::uint64_t random_existing() { return vsr::uniform_below(random, objects); }
    /// A key never used before (objects, objects + 1, ...), scattered among the others.
    std::uint64_t new_key() { return objects + new_keys++; }
    void checkpoint() {
        const bytes record(16, 0xC0);
        failed = failed || !machine().store_checkpoint(++checkpoint_op, record);
    }
};

std::unique_ptr<fixture> current;  // one state at a time: the 1M one may take GiBs

fixture& state_of(disk_kind kind, std::uint64_t objects) {
    if (!current || current->kind != kind || current->objects != objects) {
        current.reset();
        current = std::make_unique<fixture>(kind, objects);
    }
    return *current;
}

bool check(benchmark::State& state, const fixture& f) {
    if (f.failed || f.store.machine->failed()) {
        state.SkipWithError(("the store failed: " + f.store.machine->failure()).c_str());
        return false;
    }
    return true;
}

/// Every puts_per_checkpoint iterations: undo (out of the timing) and commit.
template <typename Undo>
void every_checkpoint(benchmark::State& state, fixture& f, std::uint64_t done, Undo&& undo) {
    if (done % puts_per_checkpoint != 0) return;
    state.PauseTiming();
    undo();
    f.checkpoint();
    state.ResumeTiming();
}

void BM_put_new(benchmark::State& state, disk_kind kind, std::uint64_t objects) {
    fixture& f = state_of(kind, objects);
    std::vector<std::uint64_t> added;
    added.reserve(puts_per_checkpoint);
    auto undo = [&] {
        for (const std::uint64_t n : added) f.execute_delete(n);
        added.clear();
    };
    std::uint64_t done = 0;
    for (auto _ : state) {
        const std::uint64_t n = f.new_key();
        f.execute_put(n);
        added.push_back(n);
        every_checkpoint(state, f, ++done, undo);
    }
    undo();
    f.checkpoint();
    if (!check(state, f)) return;
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * object_size));
}

void BM_overwrite(benchmark::State& state, disk_kind kind, std::uint64_t objects) {
    fixture& f = state_of(kind, objects);
    std::uint64_t done = 0;
    for (auto _ : state) {
        f.execute_put(f.random_existing());
        every_checkpoint(state, f, ++done, [] {});
    }
    f.checkpoint();
    if (!check(state, f)) return;
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * object_size));
}

void BM_delete(benchmark::State& state, disk_kind kind, std::uint64_t objects) {
    fixture& f = state_of(kind, objects);
    std::vector<std::uint64_t> deleted;
    deleted.reserve(puts_per_checkpoint);
    auto undo = [&] {
        for (const std::uint64_t n : deleted) f.execute_put(n);
        deleted.clear();
    };
    std::uint64_t done = 0;
    for (auto _ : state) {
        // Distinct keys within a batch: consecutive numbers from a random one (scattered keys).
        const std::uint64_t n = deleted.empty() ? f.random_existing() : (deleted.back() + 1) % objects;
        f.execute_delete(n);
        deleted.push_back(n);
        every_checkpoint(state, f, ++done, undo);
    }
    undo();
    f.checkpoint();
    if (!check(state, f)) return;
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

void BM_get(benchmark::State& state, disk_kind kind, std::uint64_t objects) {
    fixture& f = state_of(kind, objects);
    for (auto _ : state) f.query(f.get.with_key(f.random_existing()));
    if (!check(state, f)) return;
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * object_size));
}

void BM_head(benchmark::State& state, disk_kind kind, std::uint64_t objects) {
    fixture& f = state_of(kind, objects);
    for (auto _ : state) f.query(f.head.with_key(f.random_existing()));
    if (!check(state, f)) return;
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

void BM_list(benchmark::State& state, disk_kind kind, std::uint64_t objects) {
    fixture& f = state_of(kind, objects);
    std::uint64_t listed = 0;
    for (auto _ : state) {
        f.query(f.list.with_key(f.random_existing()));
        const auto decoded = decode_list_objects_result(f.result);
        listed += decoded ? decoded->entries.size() : 0;
    }
    if (!check(state, f)) return;
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));  // lists
    state.counters["keys_per_list"] = static_cast<double>(listed) / static_cast<double>(state.iterations());
    state.counters["keys/s"] = benchmark::Counter(static_cast<double>(listed), benchmark::Counter::kIsRate);
}

void BM_checkpoint(benchmark::State& state, disk_kind kind, std::uint64_t objects) {
    fixture& f = state_of(kind, objects);
    const auto puts = static_cast<std::uint64_t>(state.range(0));
    double put_seconds = 0, pages = 0, spilled_pages = 0, syncs = 0;
    for (auto _ : state) {
        state.PauseTiming();
        const std::uint64_t first = f.new_key();
        f.new_keys += puts - 1;
        // Pages from the first put on: a batch larger than the page cache spills some to the WAL
        // while it executes.
        const sqlite_vfs_counters before = f.machine().disk_counters();
        const auto start = std::chrono::steady_clock::now();
        for (std::uint64_t i = 0; i < puts; ++i) f.execute_put(first + i);
        put_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        const std::uint64_t spilled = f.machine().disk_counters().pages_written - before.pages_written;
        state.ResumeTiming();
        f.checkpoint();
        state.PauseTiming();
        const sqlite_vfs_counters& after = f.machine().disk_counters();
        pages += static_cast<double>(after.pages_written - before.pages_written);
        spilled_pages += static_cast<double>(spilled);
        syncs += static_cast<double>(after.syncs - before.syncs);
        for (std::uint64_t i = 0; i < puts; ++i) f.execute_delete(first + i);
        f.checkpoint();
        state.ResumeTiming();
    }
    if (!check(state, f)) return;
    const double commits = static_cast<double>(state.iterations());
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));  // commits
    state.counters["pages_written"] = pages / commits;
    state.counters["pages_spilled"] = spilled_pages / commits;
    state.counters["bytes_written"] = pages * page_size / commits;
    state.counters["bytes_per_put"] = pages * page_size / (commits * static_cast<double>(puts));
    state.counters["syncs"] = syncs / commits;
    state.counters["put_us"] = put_seconds * 1e6 / (commits * static_cast<double>(puts));
}

/// The whole state, as export parts of checkpoint `op` (the last store_checkpoint).
std::vector<bytes> export_all(fixture& f) {
    std::vector<bytes> parts;
    bytes cursor, next;
    for (;;) {
        bytes& part = parts.emplace_back();
        const vsr::export_status status =
            f.machine().export_part(f.checkpoint_op, cursor, export_part_size, part, next);
        if (status == vsr::export_status::unavailable) {
            f.failed = true;
            break;
        }
        if (status == vsr::export_status::last) break;
        cursor.swap(next);
    }
    f.machine().export_end();
    return parts;
}

std::uint64_t size_of(const std::vector<bytes>& parts) {
    std::uint64_t total = 0;
    for (const auto& part : parts) total += part.size();
    return total;
}

void BM_export(benchmark::State& state, disk_kind kind, std::uint64_t objects) {
    fixture& f = state_of(kind, objects);
    f.checkpoint();
    std::uint64_t total = 0, parts = 0;
    for (auto _ : state) {
        const auto exported = export_all(f);
        total += size_of(exported);
        parts += exported.size();
    }
    if (!check(state, f)) return;
    state.SetBytesProcessed(static_cast<std::int64_t>(total));
    state.counters["export_bytes"] = static_cast<double>(total) / static_cast<double>(state.iterations());
    state.counters["parts"] = static_cast<double>(parts) / static_cast<double>(state.iterations());
    state.counters["objects/s"] = benchmark::Counter(
        static_cast<double>(objects) * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

void BM_import(benchmark::State& state, disk_kind kind, std::uint64_t objects) {
    fixture& f = state_of(kind, objects);
    f.checkpoint();
    const auto parts = export_all(f);
    disk_machine target(kind);
    const bytes record(16, 0xC0);
    bool imported = true;
    const sqlite_vfs_counters before = target.machine->disk_counters();
    for (auto _ : state) {
        target.machine->import_begin();
        for (const auto& part : parts) imported = imported && target.machine->import_part(part);
        imported = imported && target.machine->import_finish(f.checkpoint_op, record);
    }
    const sqlite_vfs_counters& after = target.machine->disk_counters();
    const double imports = static_cast<double>(state.iterations());
    if (!check(state, f)) return;
    if (!imported || target.machine->digest() != f.machine().digest() ||
        target.machine->object_count() != f.machine().object_count()) {
        state.SkipWithError(("import failed: " + target.machine->failure()).c_str());
        return;
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(size_of(parts) * state.iterations()));
    state.counters["objects/s"] = benchmark::Counter(
        static_cast<double>(objects) * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
    state.counters["disk_bytes"] = static_cast<double>(target.bytes_used());
    state.counters["pages_written"] = static_cast<double>(after.pages_written - before.pages_written) / imports;
    state.counters["syncs"] = static_cast<double>(after.syncs - before.syncs) / imports;
}

/// --benchmark_min_time's seconds (0.5, the default, if absent or given as iterations).
double min_time_seconds(int argc, char** argv) {
    constexpr std::string_view flag = "--benchmark_min_time=";
    double seconds = 0.5;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg.starts_with(flag) && !arg.ends_with("x")) seconds = std::atof(argv[i] + flag.size());
    }
    return seconds;
}

/// --state_sizes=N,M,... (removed from argv), else 10k and 1M (10k only for a smoke run).
std::vector<std::uint64_t> state_sizes(int& argc, char** argv) {
    constexpr std::string_view flag = "--state_sizes=";
    std::vector<std::uint64_t> sizes;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (!arg.starts_with(flag)) continue;
        for (const char* p = argv[i] + flag.size(); *p != '\0';) {
            char* end = nullptr;
            sizes.push_back(std::strtoull(p, &end, 10));
            p = *end == ',' ? end + 1 : end;
            if (end == p && *end != '\0') break;
        }
        for (int j = i; j + 1 < argc; ++j) argv[j] = argv[j + 1];
        --argc;
        --i;
    }
    if (!sizes.empty()) return sizes;
    if (min_time_seconds(argc, argv) < 0.1) return {10'000};
    return {10'000, 1'000'000};
}

using bench_function = void (*)(benchmark::State&, disk_kind, std::uint64_t);

void register_all(const std::vector<std::uint64_t>& sizes, bool smoke) {
    const std::pair<const char*, bench_function> functions[] = {
        {"put_new", BM_put_new},
        {"overwrite", BM_overwrite},
        {"get", BM_get},
        {"head", BM_head},
        {"list", BM_list},
        {"delete", BM_delete},
        {"checkpoint", BM_checkpoint},
        {"export", BM_export},
        {"import", BM_import},
    };
    for (const disk_kind kind : {disk_kind::memory, disk_kind::posix}) {
        for (const std::uint64_t objects : sizes) {
            for (const auto& [name, function] : functions) {
                const std::string full = std::string(name) + "/" + to_string(kind) + "/" + std::to_string(objects);
                auto* b = benchmark::RegisterBenchmark(full.c_str(), function, kind, objects);
                const std::string_view n = name;
                // Puts per commit: a checkpoint_interval of one-put ops, and of ops batching 32 puts.
                if (n == "checkpoint") b->Arg(puts_per_checkpoint);
                if (n == "checkpoint" && !smoke) b->Arg(32 * puts_per_checkpoint);
                if (n == "checkpoint" || n == "export" || n == "import") {
                    b->UseRealTime()->Unit(benchmark::kMillisecond);  // they wait for the disk
                } else {
                    b->Unit(benchmark::kMicrosecond);  // in-process work: rates per CPU second
                }
            }
        }
    }
}

}  // namespace

int main(int argc, char** argv) {
    register_all(state_sizes(argc, argv), min_time_seconds(argc, argv) < 0.1);
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    current.reset();
    return 0;
}
