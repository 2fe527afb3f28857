// kv-server: one replica of the KV example cluster as a real process.
//
//   kv-server --replica N --replicas host:port,host:port,host:port --cluster ID
//             [--data DIR [--format]] [--recovering] [--log-level debug|info|warn]
//
// The replica listens on its own entry of --replicas. It runs a platform::event_loop, a
// platform::tcp_message_bus (role replica) and a vsr::basic_replica over kv::state_machine, ticked
// every config.tick_ms by a loop timeout. With --data it is persistent (platform::file_storage):
// it writes its journal, checkpoints and superblock to DIR and syncs once per loop turn before
// it sends anything; restarted, it loads them and rejoins. Without --data it is diskless.
// --recovering restarts a replica that lost what it held (diskless, or its data directory gone):
// it runs the VSR recovery protocol before taking part. A persistent replica whose DIR holds no
// journal starts only with --format (a new cluster's replica) or --recovering (vsr::start_refusal).
// SIGTERM/SIGINT exit cleanly
// (platform/process.hpp).
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "cli.hpp"
#include "kv_state_machine.hpp"
#include "platform/event_loop.hpp"
#include "platform/file.hpp"
#include "platform/file_storage.hpp"
#include "platform/log.hpp"
#include "platform/process.hpp"
#include "platform/real_time.hpp"
#include "platform/replica_bus.hpp"
#include "platform/tcp_message_bus.hpp"
#include "vsr/config.hpp"
#include "vsr/random.hpp"
#include "vsr/replica.hpp"

namespace {

using replica_type = vsr::basic_replica<kv::state_machine, platform::tcp_message_bus, platform::real_time,
                                        vsr::xoshiro256, platform::file_storage>;

using platform::log;
using platform::log_level;

void usage(std::FILE* out) {
    std::fprintf(out,
                 "usage: kv-server --replica N --replicas host:port,host:port,... --cluster ID\n"
                 "                 [--data DIR [--format]] [--recovering] [--log-level debug|info|warn]\n"
                 "  --replica N       this replica's index into --replicas (its listen address)\n"
                 "  --replicas LIST   every replica's address, in index order (a.b.c.d:port or localhost:port)\n"
                 "  --cluster ID      cluster id (0..4294967295); all replicas and clients must agree\n"
                 "  --data DIR        persistent: keep the journal and checkpoints in DIR (created if\n"
                 "                    missing); a restart loads them. Without it the replica is diskless\n"
                 "  --format          with --data, a new cluster's replica: create the journal in DIR\n"
                 "                    (refused if DIR holds one). A DIR without a journal needs --format\n"
                 "                    or --recovering\n"
                 "  --recovering      this replica lost what it held (diskless restart, or DIR lost):\n"
                 "                    it recovers from the others first\n"
                 "  --log-level L     debug, info (default) or warn\n");
}

struct arguments {
    std::uint64_t replica = 0;
    std::vector<platform::socket_address> replicas;
    std::uint64_t cluster = 0;
    bool recovering = false;
    bool format = false;  // with --data: a new cluster's replica may create its journal
    std::string data;     // empty: diskless
    log_level level = log_level::info;
};

/// Returns -1 on success, or the exit code.
int parse_arguments(int argc, char** argv, arguments& out) {
    bool have_replica = false, have_replicas = false, have_cluster = false;
    for (int i = 1; i < argc; i++) {
        const std::string_view flag = argv[i];
        if (flag == "--help" || flag == "-h") {
            usage(stdout);
            return 0;
        }
        if (flag == "--recovering" || flag == "--format") {
            (flag == "--format" ? out.format : out.recovering) = true;
            continue;
        }
        if (flag != "--replica" && flag != "--replicas" && flag != "--cluster" && flag != "--log-level" &&
            flag != "--data") {
            std::fprintf(stderr, "kv-server: unknown argument '%s'\n", argv[i]);
            usage(stderr);
            return kv::cli::exit_usage;
        }
        if (i + 1 >= argc) {
            std::fprintf(stderr, "kv-server: %s needs a value\n", argv[i]);
            return kv::cli::exit_usage;
        }
        const std::string_view value = argv[++i];
        if (flag == "--replica") {
            if (!kv::cli::parse_u64(value, 0, vsr::replicas_max - 1, out.replica)) {
                std::fprintf(stderr, "kv-server: --replica must be a number 0..%zu, got '%s'\n", vsr::replicas_max - 1,
                             argv[i]);
                return kv::cli::exit_usage;
            }
            have_replica = true;
        } else if (flag == "--replicas") {
            std::string error;
            if (!kv::cli::parse_replicas(value, out.replicas, error)) {
                std::fprintf(stderr, "kv-server: --replicas: %s\n", error.c_str());
                return kv::cli::exit_usage;
            }
            have_replicas = true;
        } else if (flag == "--cluster") {
            if (!kv::cli::parse_u64(value, 0, UINT32_MAX, out.cluster)) {
                std::fprintf(stderr, "kv-server: --cluster must be a number 0..4294967295, got '%s'\n", argv[i]);
                return kv::cli::exit_usage;
            }
            have_cluster = true;
        } else if (flag == "--data") {
            if (value.empty()) {
                std::fprintf(stderr, "kv-server: --data needs a directory\n");
                return kv::cli::exit_usage;
            }
            out.data = std::string(value);
        } else if (!platform::parse_log_level(std::string(value), out.level)) {
            std::fprintf(stderr, "kv-server: --log-level must be debug, info or warn, got '%s'\n", argv[i]);
            return kv::cli::exit_usage;
        }
    }
    if (!have_replica || !have_replicas || !have_cluster) {
        std::fprintf(stderr, "kv-server: --replica, --replicas and --cluster are required\n");
        usage(stderr);
        return kv::cli::exit_usage;
    }
    if (out.format && (out.recovering || out.data.empty())) {
        std::fprintf(stderr, "kv-server: --format is for a new persistent replica: needs --data, not --recovering\n");
        return kv::cli::exit_usage;
    }
    if (out.replica >= out.replicas.size()) {
        std::fprintf(stderr, "kv-server: --replica %llu is not an index into the %zu --replicas\n",
                     static_cast<unsigned long long>(out.replica), out.replicas.size());
        return kv::cli::exit_usage;
    }
    return -1;
}

std::uint64_t random_seed() {
    std::random_device device;  // /dev/urandom (or getrandom) on Linux
    return (std::uint64_t{device()} << 32) ^ device();
}

struct server {
    platform::event_loop& loop;
    replica_type* replica = nullptr;
    platform::tcp_message_bus* bus = nullptr;
    platform::completion tick_completion;
    bool tick_pending = false;
    std::uint64_t tick_ns = 0;
    std::uint64_t next_report_ns = 0;
    vsr::replica_status last_status = vsr::replica_status::normal;
    std::uint64_t last_view = 0;
    bool last_primary = false;
    std::vector<std::uint8_t> last_peers;  // connected replica peers, as last logged

    explicit server(platform::event_loop& l) : loop(l) {}

    static std::string join(const std::vector<std::uint8_t>& indices) {
        std::string text;
        for (const std::uint8_t index : indices) {
            if (!text.empty()) text += ',';
            text += std::to_string(index);
        }
        return text;
    }

    void start_tick() {
        tick_completion.callback = &on_tick;
        tick_completion.context = this;
        tick_pending = true;
        loop.timeout(tick_ns, tick_completion);
    }

    static void on_tick(platform::completion& c) {
        auto* self = static_cast<server*>(c.context);
        self->tick_pending = false;
        if (c.error == platform::io_error::cancelled || platform::shutdown_requested()) return;
        self->replica->tick();
        self->observe();
        self->start_tick();
    }

    void observe() {
        if (replica->status() != last_status || replica->view() != last_view || replica->is_primary() != last_primary) {
            log(log_level::info, "status %s -> %s view %llu -> %llu role %s op=%llu commit=%llu",
                vsr::to_string(last_status), vsr::to_string(replica->status()),
                static_cast<unsigned long long>(last_view), static_cast<unsigned long long>(replica->view()),
                replica->is_primary() ? "primary" : "backup", static_cast<unsigned long long>(replica->op()),
                static_cast<unsigned long long>(replica->commit()));
            last_status = replica->status();
            last_view = replica->view();
            last_primary = replica->is_primary();
        }
        std::vector<std::uint8_t> peers = bus->status().connected_replicas;
        if (peers != last_peers) {
            log(log_level::info, "connected replica peers: [%s] (was [%s])", join(peers).c_str(),
                join(last_peers).c_str());
            last_peers = std::move(peers);
        }
        const std::uint64_t now = loop.monotonic_ns();
        if (now >= next_report_ns) {
            next_report_ns = now + 10'000'000'000ULL;
            report();
        }
    }

    void report() {
        const vsr::replica_counters& r = replica->counters();
        const platform::tcp_bus_counters& b = bus->counters();
        const platform::tcp_bus_status s = bus->status();
        log(log_level::info,
            "counters status=%s view=%llu op=%llu commit=%llu executed=%llu ops_executed=%llu "
            "view_changes_started=%llu recoveries=%llu dropped_not_primary=%llu dropped_queue_full=%llu "
            "peers=%zu clients=%zu bus_sent=%llu bus_received=%llu keepalives_sent=%llu keepalives_received=%llu "
            "bus_closed=%llu bus_dropped_not_connected=%llu bus_dropped_queue_full=%llu "
            "syncs=%llu checkpoints=%llu checkpoint_op=%llu",
            vsr::to_string(replica->status()), static_cast<unsigned long long>(replica->view()),
            static_cast<unsigned long long>(replica->op()), static_cast<unsigned long long>(replica->commit()),
            static_cast<unsigned long long>(replica->commit_executed()),
            static_cast<unsigned long long>(r.ops_executed), static_cast<unsigned long long>(r.view_changes_started),
            static_cast<unsigned long long>(r.recoveries_completed),
            static_cast<unsigned long long>(r.dropped_not_primary),
            static_cast<unsigned long long>(r.dropped_request_queue_full), s.connected_replicas.size(),
            s.client_connections, static_cast<unsigned long long>(b.messages_sent),
            static_cast<unsigned long long>(b.messages_received), static_cast<unsigned long long>(b.keepalives_sent),
            static_cast<unsigned long long>(b.keepalives_received), static_cast<unsigned long long>(b.closed_total()),
            static_cast<unsigned long long>(b.dropped_not_connected),
            static_cast<unsigned long long>(b.dropped_queue_full),
            static_cast<unsigned long long>(replica->storage_syncs()), static_cast<unsigned long long>(r.checkpoints),
            static_cast<unsigned long long>(replica->checkpoint_durable_op()));
    }
};

/// The replica over the TCP bus on `loop` until a shutdown is requested. Returns the exit code.
int run_replica(const arguments& args, const vsr::config& cfg, platform::event_loop& loop) {
    const std::uint64_t seed = random_seed();
    server srv(loop);
    replica_type* replica_pointer = nullptr;
    auto bus = platform::start_replica_bus(
        loop, platform::replica_bus_options(cfg, args.replicas, static_cast<std::uint8_t>(args.replica), seed,
                                            platform::deliver_to(replica_pointer)));
    if (bus == nullptr) return 1;

    platform::real_time time;
    vsr::xoshiro256 random(seed);
    platform::file_storage storage;
    if (!args.data.empty()) {
        std::string error;
        if (!platform::make_directories(args.data, error) || !storage.open(args.data, error)) {
            log(log_level::warn, "data directory: %s", error.c_str());
            return 1;
        }
    }
    auto replica = std::make_unique<replica_type>(cfg, static_cast<std::uint8_t>(args.replica), *bus, time, random,
                                                  storage, args.recovering);
    if (replica->halted()) {
        log(log_level::warn, "cannot start from %s: %s", args.data.c_str(), replica->halt_reason());
        return 1;
    }
    const char* refusal =
        args.data.empty() ? nullptr : vsr::start_refusal(replica->start_state(), args.format, args.recovering);
    if (refusal != nullptr) {  // nothing is written before the first flush: DIR is as it was
        log(log_level::warn, "refusing to start from %s: %s", args.data.c_str(), refusal);
        return 1;
    }
    replica_pointer = replica.get();
    log(log_level::info, "started: listening on %s, %u replicas, cluster %u, %s, tick %u ms",
        platform::to_string(args.replicas[args.replica]).c_str(), unsigned{cfg.replica_count}, cfg.cluster,
        args.data.empty() ? "diskless" : ("data " + args.data).c_str(), cfg.tick_ms);
    if (!args.data.empty()) {
        const vsr::journal_state found = replica->start_state();
        log(found == vsr::journal_state::damaged ? log_level::warn : log_level::info,
            "disk: %s%s%s; view %llu, checkpoint op %llu, log op %llu, commit %llu, %s", vsr::to_string(found),
            *replica->start_damage() != 0 ? ": " : "", replica->start_damage(),
            static_cast<unsigned long long>(replica->view()),
            static_cast<unsigned long long>(replica->checkpoint_durable_op()),
            static_cast<unsigned long long>(replica->op()), static_cast<unsigned long long>(replica->commit()),
            vsr::to_string(replica->status()));
    } else {
        log(log_level::info, "%s", args.recovering ? "recovering from the other replicas" : "fresh");
    }

    srv.replica = replica.get();
    srv.bus = bus.get();
    srv.tick_ns = std::uint64_t{cfg.tick_ms} * 1'000'000;
    srv.last_status = replica->status();
    srv.last_view = replica->view();
    srv.last_primary = replica->is_primary();
    srv.next_report_ns = loop.monotonic_ns() + 10'000'000'000ULL;
    srv.start_tick();

    bool storage_failed = false;
    platform::run_until_shutdown(loop, srv.tick_ns, [&] {
        replica->flush();
        if (!replica->halted()) {
            return replica->flush_pending() ? platform::after_turn_result::next_turn_at_once
                                            : platform::after_turn_result::next_turn;
        }
        log(log_level::warn, "%s (%s): stopping; a restart loads what is durable", replica->halt_reason(),
            storage.error().c_str());
        storage_failed = true;
        return platform::after_turn_result::stop;
    });
    srv.report();
    if (srv.tick_pending) loop.cancel(srv.tick_completion);
    for (int i = 0; i < 1000 && srv.tick_pending; i++) loop.run_once(0);
    replica_pointer = nullptr;
    bus->shutdown();
    bus.reset();  // runs the loop until the bus's completions are back
    replica.reset();
    log(log_level::info, "stopped");
    return storage_failed ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
    std::setvbuf(stderr, nullptr, _IOLBF, 0);
    arguments args;
    if (const int code = parse_arguments(argc, argv, args); code >= 0) return code;
    platform::log_setup("replica=" + std::to_string(args.replica), args.level);
    platform::install_shutdown_handlers();
    platform::ignore_broken_pipes();

    vsr::config cfg;
    cfg.cluster = static_cast<std::uint32_t>(args.cluster);
    cfg.replica_count = static_cast<std::uint8_t>(args.replicas.size());
    if (!cfg.valid()) {
        log(log_level::warn, "invalid configuration");
        return kv::cli::exit_usage;
    }
    platform::event_loop loop;
    std::string error;
    if (!loop.open(error)) {
        log(log_level::warn, "event loop: %s", error.c_str());
        return 1;
    }
    return run_replica(args, cfg, loop);
}
