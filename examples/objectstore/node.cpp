// toastyfs-node: one storage node of a ToastyFS cluster.
//
//   toastyfs-node --index N --replicas host:port,... --chunk-listen host:port --data DIR
//                 [--format | --recovering | --diskless] [--cluster ID] [--upload-lease-ms MS] [--inline-bytes-max N]
//                 [--disk-quota-bytes N] [--scrub-bytes-per-second N] [--log-level debug|info|warn]
//
// Two threads that share nothing:
// - the metadata thread runs a VSR replica of the metadata state machine over the TCP message
//   bus, listening on its own entry of --replicas. Persistent (the default): the replica's
//   journal and superblock go to DIR/vsr (platform::file_storage) and the machine's SQLite
//   store to DIR/metadata, so a restart, even after kill -9 or a power loss, reloads what the
//   node acknowledged. --diskless keeps the seed's mode: nothing of the metadata survives a
//   restart (the store in DIR/metadata is scratch, emptied at start), and a restarted node
//   recovers it from the others (--recovering).
// - the chunk thread serves the chunk protocol on --chunk-listen from a chunk store under
//   DIR/chunks, and scrubs it in the background (every stored chunk re-verified in turn).
// Chunk I/O (fsync included) therefore never delays heartbeats or prepares.
// --recovering says the node lost what it held (a diskless restart, or a persistent node whose
// data directory is gone): VSR recovery runs first. A persistent node that finds no journal
// starts only with --format (a new cluster's node, first start) or --recovering: with neither, a
// node whose data directory was lost would come back as a new, empty replica and vote, and its
// votes could drop what the cluster acknowledged. --format on a journal that exists is refused
// too, so a script that always passes it cannot defeat the check. The chunks on disk survive a restart either
// way. SIGTERM/SIGINT exit cleanly.
#include <atomic>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "platform/chunk_disk_posix.hpp"
#include "platform/chunk_transport.hpp"
#include "platform/cli.hpp"
#include "platform/crypto.hpp"
#include "platform/event_loop.hpp"
#include "platform/file.hpp"
#include "platform/file_storage.hpp"
#include "platform/log.hpp"
#include "platform/metadata_disk_posix.hpp"
#include "platform/process.hpp"
#include "platform/real_time.hpp"
#include "platform/replica_bus.hpp"
#include "platform/tcp_message_bus.hpp"
#include "process.hpp"
#include "toastyfs/chunk_server.hpp"
#include "toastyfs/chunk_store.hpp"
#include "toastyfs/metadata_state_machine.hpp"
#include "vsr/config.hpp"
#include "vsr/random.hpp"
#include "vsr/replica.hpp"

namespace {

using platform::log;
using platform::log_level;
using replica_type = vsr::basic_replica<toastyfs::metadata_state_machine, platform::tcp_message_bus,
                                        platform::real_time, vsr::xoshiro256, platform::file_storage>;
using store_type = toastyfs::chunk_store<platform::posix_chunk_disk, platform::openssl_crypto>;

struct arguments {
    std::uint64_t index = 0;
    std::vector<platform::socket_address> replicas;
    platform::socket_address chunk_listen;
    std::string data_directory;
    std::uint64_t cluster = 0;
    bool recovering = false;
    bool format = false;  // a new cluster's persistent node: may create its journal
    bool diskless = false;
    std::uint64_t upload_lease_ms = 3'600'000;
    std::uint64_t inline_bytes_max = toastyfs::metadata_options{}.inline_bytes_max;
    std::uint64_t disk_quota_bytes = 0;
    std::uint64_t scrub_bytes_per_second = 8ull << 20;
    log_level level = log_level::info;
    toastyfs::planted_bug bug = toastyfs::planted_bug::none;  // set only by a test build (planted_bug_flag)
};

void usage(std::FILE* out) {
    std::fprintf(out,
                 "usage: toastyfs-node --index N --replicas LIST --chunk-listen ADDRESS --data DIR [options]\n"
                 "  --index N                  this node's index into --replicas\n"
                 "  --replicas LIST            every node's metadata (VSR) address, host:port,... in index order\n"
                 "  --chunk-listen ADDRESS     where this node serves chunks (host:port)\n"
                 "  --data DIR                 this node's data directory (created if missing): chunks,\n"
                 "                             and unless --diskless the metadata journal and store\n"
                 "  --diskless                 keep no metadata across restarts (the seed's mode): a\n"
                 "                             restarted node recovers it from the others (--recovering)\n"
                 "  --cluster ID               cluster id, 0..4294967295 (default 0); all processes must agree\n"
                 "  --format                   a new cluster's node, first start: create the metadata journal\n"
                 "                             (refused if DIR holds one; ignored with --diskless). A\n"
                 "                             persistent node that finds no journal needs --format or\n"
                 "                             --recovering\n"
                 "  --recovering               this node lost its metadata (a diskless restart, or its data\n"
                 "                             directory is gone): run VSR recovery first\n"
                 "  --inline-bytes-max N       the metadata store's quota: bytes of small objects kept inline\n"
                 "                             (default 68719476736); beyond it a PUT answers 507. Every\n"
                 "                             node must agree\n"
                 "  --upload-lease-ms MS       how long an upload may take to commit (default 3600000);\n"
                 "                             every node and proxy must agree\n"
                 "  --disk-quota-bytes N       refuse chunk writes beyond N bytes stored (default 0: disk size)\n"
                 "  --scrub-bytes-per-second N background re-verification rate (default 8388608; 0: off)\n"
                 "  --log-level L              debug, info (default) or warn\n");
    if constexpr (toastyfs::process::planted_bug_flag) {
        std::fprintf(out, "  --planted-bug NAME         test build only: put_ignores_condition (for a checker)\n");
    }
}

int parse_arguments(int argc, char** argv, arguments& out) {
    namespace cli = platform::cli;
    bool have_index = false, have_replicas = false, have_chunk = false, have_data = false;
    for (int i = 1; i < argc; i++) {
        const std::string_view flag = argv[i];
        if (flag == "--help" || flag == "-h") {
            usage(stdout);
            return 0;
        }
        if (flag == "--recovering") {
            out.recovering = true;
            continue;
        }
        if (flag == "--diskless") {
            out.diskless = true;
            continue;
        }
        if (flag == "--format") {
            out.format = true;
            continue;
        }
        if (i + 1 >= argc) {
            std::fprintf(stderr, "toastyfs-node: unknown argument or missing value: '%s'\n", argv[i]);
            usage(stderr);
            return cli::exit_usage;
        }
        const std::string value = argv[++i];
        std::string error;
        bool ok = true;
        if (flag == "--index")
            ok = have_index = cli::parse_u64(value, 0, vsr::replicas_max - 1, out.index);
        else if (flag == "--replicas")
            ok = have_replicas = cli::parse_replicas(value, out.replicas, error);
        else if (flag == "--chunk-listen") {
            std::vector<platform::socket_address> one;
            ok = have_chunk = cli::parse_replicas(value, one, error) && one.size() == 1;
            if (ok) out.chunk_listen = one[0];
        } else if (flag == "--data")
            ok = have_data = !value.empty();
        else if (flag == "--cluster")
            ok = cli::parse_u64(value, 0, UINT32_MAX, out.cluster);
        else if (flag == "--inline-bytes-max")
            ok = cli::parse_u64(value, 0, UINT64_MAX, out.inline_bytes_max);
        else if (flag == "--upload-lease-ms")
            ok = cli::parse_u64(value, 1000, 7ull * 24 * 3600 * 1000, out.upload_lease_ms);
        else if (flag == "--disk-quota-bytes")
            ok = cli::parse_u64(value, 0, UINT64_MAX, out.disk_quota_bytes);
        else if (flag == "--scrub-bytes-per-second")
            ok = cli::parse_u64(value, 0, UINT64_MAX, out.scrub_bytes_per_second);
        else if (flag == "--log-level")
            ok = platform::parse_log_level(value, out.level);
        else if (toastyfs::process::planted_bug_flag && flag == "--planted-bug")
            ok = toastyfs::parse_planted_bug(value, out.bug) && out.bug == toastyfs::planted_bug::put_ignores_condition;
        else {
            std::fprintf(stderr, "toastyfs-node: unknown argument '%s'\n", argv[i - 1]);
            usage(stderr);
            return cli::exit_usage;
        }
        if (flag == "--data") out.data_directory = value;
        if (!ok) {
            std::fprintf(stderr, "toastyfs-node: bad value for %s: '%s' %s\n", argv[i - 1], value.c_str(),
                         error.c_str());
            return cli::exit_usage;
        }
    }
    if (!have_index || !have_replicas || !have_chunk || !have_data) {
        std::fprintf(stderr, "toastyfs-node: --index, --replicas, --chunk-listen and --data are required\n");
        usage(stderr);
        return cli::exit_usage;
    }
    if (out.format && out.recovering) {  // (--diskless ignores it: there is no journal to create)
        std::fprintf(stderr, "toastyfs-node: --format is for a new node: not with --recovering\n");
        return cli::exit_usage;
    }
    if (out.index >= out.replicas.size()) {
        std::fprintf(stderr, "toastyfs-node: --index %llu is not an index into the %zu --replicas\n",
                     static_cast<unsigned long long>(out.index), out.replicas.size());
        return cli::exit_usage;
    }
    return -1;
}

// ---- the chunk thread ----------------------------------------------------------------------------

void log_store_opened(const arguments& args, const toastyfs::chunk_store_stats& opened) {
    log(log_level::info, "chunk store %s: %llu chunks, %llu bytes, %llu in quarantine, %llu temporaries removed",
        args.data_directory.c_str(), static_cast<unsigned long long>(opened.chunks),
        static_cast<unsigned long long>(opened.bytes_stored), static_cast<unsigned long long>(opened.quarantined),
        static_cast<unsigned long long>(opened.temporaries_removed));
}

/// Serves the chunk protocol from `store`; failures other than the expected ones are logged.
platform::chunk_server_options chunk_server_options(const arguments& args, platform::posix_chunk_disk& disk,
                                                    store_type& store) {
    platform::chunk_server_options options;
    options.cluster = static_cast<std::uint32_t>(args.cluster);
    options.listen_address = args.chunk_listen;
    options.handler = [&disk, &store](const toastyfs::frame_header& request, std::span<const std::uint8_t> body,
                                      toastyfs::frame_header& reply, std::vector<std::uint8_t>& reply_body) {
        std::uint64_t free = 0;
        if (request.kind == toastyfs::frame_kind::stat && disk.free_bytes(free) != toastyfs::disk_status::ok) free = 0;
        toastyfs::handle_chunk_request(store, free, request, body, reply, reply_body);
        if (reply.status != toastyfs::frame_status::ok && reply.status != toastyfs::frame_status::not_found &&
            reply.status != toastyfs::frame_status::token_mismatch) {
            log(log_level::warn, "chunk %s %s: %s", request.kind == toastyfs::frame_kind::write ? "write" : "request",
                toastyfs::to_hex(request.sha256).c_str(), toastyfs::to_string(reply.status));
        }
    };
    return options;
}

int run_chunk_thread(const arguments& args, std::atomic<bool>& ready, std::atomic<bool>& failed) {
    platform::event_loop loop;
    std::string error;
    if (!loop.open(error)) {
        log(log_level::warn, "chunk thread: event loop: %s", error.c_str());
        failed = true;
        return 1;
    }
    platform::posix_chunk_disk disk(args.data_directory);
    if (!disk.is_open()) {
        log(log_level::warn, "data directory %s: %s", args.data_directory.c_str(), disk.last_error().c_str());
        failed = true;
        return 1;
    }
    toastyfs::chunk_store_options store_options;
    store_options.bytes_max = args.disk_quota_bytes;
    store_options.free_bytes_min = 64ull << 20;  // leave room for the logs and the OS
    store_type store(disk, store_options);
    if (!store.open(error)) {
        log(log_level::warn, "chunk store: %s", error.c_str());
        failed = true;
        return 1;
    }
    log_store_opened(args, store.stats());
    platform::chunk_server server(loop, chunk_server_options(args, disk, store));
    platform::io_error io = platform::io_error::none;
    if (!server.start(io)) {
        log(log_level::warn, "cannot listen for chunks on %s: %s", platform::to_string(args.chunk_listen).c_str(),
            std::string(platform::to_string(io)).c_str());
        failed = true;
        return 1;
    }
    ready = true;

    // Scrub a slice every second: a full pass over the store takes bytes_stored / rate seconds.
    std::uint64_t corrupt_reported = 0;
    toastyfs::process::ticker scrub{
        loop, 1'000'000'000, [&] {
            if (args.scrub_bytes_per_second == 0) return;
            const auto result = store.scrub(args.scrub_bytes_per_second);
            if (result.corrupt > 0) {
                corrupt_reported += result.corrupt;
                log(log_level::warn, "scrub: %llu corrupt or missing chunks quarantined (%llu in all)",
                    static_cast<unsigned long long>(result.corrupt), static_cast<unsigned long long>(corrupt_reported));
            }
        }};
    scrub.start();
    while (!platform::shutdown_requested()) loop.run_once(100'000'000);
    scrub.stop();
    server.shutdown();
    for (int i = 0; i < 1000 && !server.drained(); i++) loop.run_once(0);
    return 0;
}

// ---- the metadata thread -------------------------------------------------------------------------

void report(const replica_type& replica, const platform::tcp_message_bus& bus) {
    const vsr::replica_counters& r = replica.counters();
    const platform::tcp_bus_counters& b = bus.counters();
    log(log_level::info,
        "counters status=%s view=%llu op=%llu commit=%llu checkpoint=%llu log_entries=%zu ops_executed=%llu "
        "view_changes_started=%llu recoveries=%llu peers=%zu clients=%zu bus_closed=%llu "
        "bus_dropped_not_connected=%llu",
        vsr::to_string(replica.status()), static_cast<unsigned long long>(replica.view()),
        static_cast<unsigned long long>(replica.op()), static_cast<unsigned long long>(replica.commit()),
        static_cast<unsigned long long>(replica.checkpoint_durable_op()), replica.log().size(),
        static_cast<unsigned long long>(r.ops_executed), static_cast<unsigned long long>(r.view_changes_started),
        static_cast<unsigned long long>(r.recoveries_completed), bus.status().connected_replicas.size(),
        bus.status().client_connections, static_cast<unsigned long long>(b.closed_total()),
        static_cast<unsigned long long>(b.dropped_not_connected));
}

/// Logs the replica's status, view and role when they change, and its counters every 10 s.
struct status_watch {
    platform::event_loop& loop;
    replica_type& replica;
    const platform::tcp_message_bus& bus;
    vsr::replica_status last_status = replica.status();
    std::uint64_t last_view = replica.view();
    bool last_primary = replica.is_primary();
    bool status_logged = false;  // the first tick logs the status the node starts in
    std::uint64_t next_report_ns = loop.monotonic_ns() + report_interval_ns;
    static constexpr std::uint64_t report_interval_ns = 10'000'000'000ull;

    void tick() {
        replica.tick();
        if (!status_logged || replica.status() != last_status || replica.view() != last_view ||
            replica.is_primary() != last_primary) {
            status_logged = true;
            log(log_level::info, "status %s view %llu role %s op=%llu commit=%llu", vsr::to_string(replica.status()),
                static_cast<unsigned long long>(replica.view()), replica.is_primary() ? "primary" : "backup",
                static_cast<unsigned long long>(replica.op()), static_cast<unsigned long long>(replica.commit()));
            last_status = replica.status();
            last_view = replica.view();
            last_primary = replica.is_primary();
        }
        if (loop.monotonic_ns() >= next_report_ns) {
            next_report_ns = loop.monotonic_ns() + report_interval_ns;
            report(replica, bus);
        }
    }
};

toastyfs::metadata_options metadata_options(const arguments& args, const vsr::config& cfg) {
    toastyfs::metadata_options options;
    options.upload_lease_ns = args.upload_lease_ms * 1'000'000;
    options.inline_bytes_max = args.inline_bytes_max;
    options.bug = args.bug;
    if (args.bug != toastyfs::planted_bug::none) log(log_level::warn, "a planted bug is active: for tests only");
    options.result_size_max = static_cast<std::uint32_t>(cfg.operation_size_max());
    return options;
}

/// Where the metadata lives: DIR/vsr (journal) and DIR/metadata (SQLite), both persistent unless
/// --diskless (then the store is scratch, emptied at start, and the journal is not kept).
struct metadata_disks {
    platform::file_storage journal;  // default-constructed: diskless
    std::unique_ptr<platform::posix_metadata_disk> store;
};

bool open_metadata_disks(const arguments& args, metadata_disks& out) {
    std::string error;
    if (!args.diskless) {
        const std::string journal = args.data_directory + "/vsr";
        if (!platform::make_directories(journal, error) || !out.journal.open(journal, error)) {
            log(log_level::warn, "journal in %s: %s", journal.c_str(), error.c_str());
            return false;
        }
    }
    out.store = std::make_unique<platform::posix_metadata_disk>(args.data_directory + "/metadata");
    if (!out.store->is_open()) {
        log(log_level::warn, "metadata store: %s", out.store->last_error().c_str());
        return false;
    }
    return true;
}

void log_start(const arguments& args, const replica_type& replica) {
    if (args.diskless) {
        log(log_level::info, "metadata: diskless, %s", args.recovering ? "recovering from the other nodes" : "fresh");
        return;
    }
    const vsr::journal_state found = replica.start_state();
    log(found == vsr::journal_state::damaged ? log_level::warn : log_level::info,
        "metadata: journal %s%s%s; view %llu, checkpoint op %llu, log op %llu, commit %llu, %llu objects, %s",
        vsr::to_string(found), *replica.start_damage() != 0 ? ": " : "", replica.start_damage(),
        static_cast<unsigned long long>(replica.view()),
        static_cast<unsigned long long>(replica.checkpoint_durable_op()), static_cast<unsigned long long>(replica.op()),
        static_cast<unsigned long long>(replica.commit()),
        static_cast<unsigned long long>(replica.state_machine().object_count()), vsr::to_string(replica.status()));
}

/// The metadata thread: a VSR replica over the TCP bus until a shutdown is requested. Returns the
/// exit code (1 when it cannot start or its storage fails).
int run_metadata_thread(const arguments& args, const vsr::config& cfg) {
    platform::event_loop loop;
    std::string error;
    if (!loop.open(error)) {
        log(log_level::warn, "event loop: %s", error.c_str());
        return 1;
    }
    metadata_disks disks;
    if (!open_metadata_disks(args, disks)) return 1;
    const std::uint64_t seed = toastyfs::process::random_seed();
    replica_type* replica_pointer = nullptr;
    auto bus = platform::start_replica_bus(
        loop, platform::replica_bus_options(cfg, args.replicas, static_cast<std::uint8_t>(args.index), seed,
                                            platform::deliver_to(replica_pointer)));
    if (bus == nullptr) return 1;
    platform::real_time time;
    vsr::xoshiro256 random(seed);
    toastyfs::metadata_store_options store;
    store.durable = !args.diskless;
    store.keep_existing = !args.diskless;
    store.seed = seed;
    auto replica = std::make_unique<replica_type>(
        cfg, static_cast<std::uint8_t>(args.index), *bus, time, random, disks.journal, args.recovering,
        toastyfs::metadata_state_machine(metadata_options(args, cfg), disks.store.get(), store));
    if (replica->halted()) {
        log(log_level::warn, "cannot start from %s: %s (%s)", args.data_directory.c_str(), replica->halt_reason(),
            replica->state_machine().failure().c_str());
        return 1;
    }
    const char* refusal =
        args.diskless ? nullptr : vsr::start_refusal(replica->start_state(), args.format, args.recovering);
    if (refusal != nullptr) {  // nothing is written before the first flush: the disk is as it was
        log(log_level::warn, "refusing to start from %s: %s", args.data_directory.c_str(), refusal);
        return 1;
    }
    replica_pointer = replica.get();
    log(log_level::info, "started: metadata on %s, chunks on %s, data in %s, %u nodes, cluster %u, %s",
        platform::to_string(args.replicas[args.index]).c_str(), platform::to_string(args.chunk_listen).c_str(),
        args.data_directory.c_str(), unsigned{cfg.replica_count}, cfg.cluster,
        args.diskless ? "diskless" : "persistent");
    log_start(args, *replica);

    status_watch watch{loop, *replica, *bus};
    toastyfs::process::ticker tick{loop, std::uint64_t{cfg.tick_ms} * 1'000'000, [&watch] { watch.tick(); }};
    tick.start();
    bool failed = false;
    platform::run_until_shutdown(loop, tick.period_ns, [&] {
        replica->flush();  // one sync covers what the turn decided; then its messages go out
        if (!replica->halted()) {
            return replica->flush_pending() ? platform::after_turn_result::next_turn_at_once
                                            : platform::after_turn_result::next_turn;
        }
        log(log_level::warn, "%s (journal: %s; store: %s): stopping; a restart loads what is durable",
            replica->halt_reason(), disks.journal.error().c_str(), replica->state_machine().failure().c_str());
        failed = true;
        return platform::after_turn_result::stop;
    });
    report(*replica, *bus);
    tick.stop();
    replica_pointer = nullptr;
    bus->shutdown();
    bus.reset();
    replica.reset();
    return failed ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
    arguments args;
    if (const int code = parse_arguments(argc, argv, args); code >= 0) return code;
    platform::log_setup("node=" + std::to_string(args.index + 1), args.level);
    platform::install_shutdown_handlers();
    platform::ignore_broken_pipes();
    platform::keep_large_buffers_mapped();

    vsr::config cfg;
    cfg.cluster = static_cast<std::uint32_t>(args.cluster);
    cfg.replica_count = static_cast<std::uint8_t>(args.replicas.size());
    if (!cfg.valid()) {
        log(log_level::warn, "invalid configuration");
        return platform::cli::exit_usage;
    }

    std::atomic<bool> chunk_ready{false}, chunk_failed{false};
    std::thread chunk_thread([&] { run_chunk_thread(args, chunk_ready, chunk_failed); });
    while (!chunk_ready && !chunk_failed) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    if (chunk_failed) {
        chunk_thread.join();
        return 1;
    }
    const int code = run_metadata_thread(args, cfg);
    if (code != 0) platform::request_shutdown();  // stops the chunk thread
    chunk_thread.join();
    if (code == 0) log(log_level::info, "stopped");
    return code;
}
