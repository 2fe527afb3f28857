// toastyfs-proxy: the HTTP front of a ToastyFS cluster (127.0.0.1:3000 by default).
//
//   toastyfs-proxy --replicas host:port,... --chunk-nodes host:port,... [options]
//
// One thread, one event loop: the HTTP server (platform::http_server + object_api), a VSR client
// for metadata (its sessions carry concurrent operations), a chunk client with one connection
// per node, the object service and the janitor (repair and garbage collection). Every second it
// asks each node for its VSR status and chunk statistics, for GET /?status.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "object_api.hpp"
#include "platform/cli.hpp"
#include "platform/log.hpp"
#include "platform/process.hpp"
#include "process.hpp"
#include "vsr/config.hpp"

namespace {

using platform::log;
using platform::log_level;
using namespace toastyfs::proxy;

struct arguments {
    std::vector<platform::socket_address> replicas;
    std::vector<platform::socket_address> chunk_nodes;
    platform::socket_address listen{0x7F000001, 3000};
    std::uint64_t cluster = 0;
    std::uint64_t chunk_size = 4ull << 20;
    std::uint64_t replication_factor = 0;  // 0: f + 1
    std::uint64_t object_size_max = 5ull << 30;
    std::uint64_t inline_size_max = 4096;
    std::uint64_t memory_max = 128ull << 20;
    std::uint64_t upload_lease_ms = 3'600'000;
    std::uint64_t janitor_interval_ms = 30'000;
    std::uint64_t node_down_grace_ms = 60'000;
    std::uint64_t connections_max = 10'000;
    std::uint64_t metadata_sessions = 256;
    std::uint64_t metadata_timeout_ms = 10'000;
    log_level level = log_level::info;
    toastyfs::planted_bug bug = toastyfs::planted_bug::none;
};

void usage(std::FILE* out) {
    std::fprintf(out,
                 "usage: toastyfs-proxy --replicas LIST --chunk-nodes LIST [options]\n"
                 "  --replicas LIST             every node's metadata (VSR) address, in index order\n"
                 "  --chunk-nodes LIST          every node's chunk address, in the same order\n"
                 "  --listen ADDRESS            HTTP address (default 127.0.0.1:3000)\n"
                 "  --cluster ID                cluster id (default 0)\n"
                 "  --chunk-size BYTES          chunk size (default 4194304)\n"
                 "  --replication-factor N      copies per chunk, f+1..n (default f+1)\n"
                 "  --max-object-size BYTES     larger PUTs get 413 (default 5368709120)\n"
                 "  --inline-max BYTES          objects up to this live in the metadata (default 4096)\n"
                 "  --memory-max BYTES          chunk buffers of all transfers together (default 134217728)\n"
                 "  --upload-lease-ms MS        must match the nodes' (default 3600000)\n"
                 "  --janitor-interval-ms MS    pause between repair/collection passes (default 30000)\n"
                 "  --node-down-grace-ms MS     a down holder counts as a copy this long (default 60000)\n"
                 "  --connections-max N         open HTTP connections (default 10000)\n"
                 "  --metadata-timeout-ms MS    a metadata operation's deadline; then 504 (default 10000)\n"
                 "  --log-level L               debug, info (default) or warn\n");
    if constexpr (toastyfs::process::planted_bug_flag) {
        std::fprintf(out,
                     "  --planted-bug NAME          test build only: plant a known bug for a checker to catch\n"
                     "                              (gc_ignores_lease, put_acks_one_copy, get_skips_verification,\n"
                     "                              janitor_skips_repair)\n");
    }
}

int parse_arguments(int argc, char** argv, arguments& out) {
    namespace cli = platform::cli;
    bool have_replicas = false, have_chunks = false;
    for (int i = 1; i < argc; i++) {
        const std::string_view flag = argv[i];
        if (flag == "--help" || flag == "-h") {
            usage(stdout);
            return 0;
        }
        if (i + 1 >= argc) {
            std::fprintf(stderr, "toastyfs-proxy: unknown argument or missing value: '%s'\n", argv[i]);
            usage(stderr);
            return cli::exit_usage;
        }
        const std::string value = argv[++i];
        std::string error;
        bool ok = true;
        if (flag == "--replicas")
            ok = have_replicas = cli::parse_replicas(value, out.replicas, error);
        else if (flag == "--chunk-nodes")
            ok = have_chunks = cli::parse_replicas(value, out.chunk_nodes, error);
        else if (flag == "--listen") {
            std::vector<platform::socket_address> one;
            ok = cli::parse_replicas(value, one, error) && one.size() == 1;
            if (ok) out.listen = one[0];
        } else if (flag == "--cluster")
            ok = cli::parse_u64(value, 0, UINT32_MAX, out.cluster);
        else if (flag == "--chunk-size")
            ok = cli::parse_u64(value, 4096, 64ull << 20, out.chunk_size);
        else if (flag == "--replication-factor")
            ok = cli::parse_u64(value, 1, toastyfs::nodes_max, out.replication_factor);
        else if (flag == "--max-object-size")
            ok = cli::parse_u64(value, 0, 5ull << 40, out.object_size_max);
        else if (flag == "--inline-max")
            ok = cli::parse_u64(value, 0, 4096, out.inline_size_max);
        else if (flag == "--memory-max")
            ok = cli::parse_u64(value, 1ull << 20, 64ull << 30, out.memory_max);
        else if (flag == "--upload-lease-ms")
            ok = cli::parse_u64(value, 1000, 7ull * 24 * 3600 * 1000, out.upload_lease_ms);
        else if (flag == "--janitor-interval-ms")
            ok = cli::parse_u64(value, 100, 24ull * 3600 * 1000, out.janitor_interval_ms);
        else if (flag == "--node-down-grace-ms")
            ok = cli::parse_u64(value, 0, 24ull * 3600 * 1000, out.node_down_grace_ms);
        else if (flag == "--connections-max")
            ok = cli::parse_u64(value, 1, 1'000'000, out.connections_max);
        else if (flag == "--metadata-timeout-ms")
            ok = cli::parse_u64(value, 100, 3'600'000, out.metadata_timeout_ms);
        else if (flag == "--log-level")
            ok = platform::parse_log_level(value, out.level);
        else if (toastyfs::process::planted_bug_flag && flag == "--planted-bug")
            ok = toastyfs::parse_planted_bug(value, out.bug) && out.bug != toastyfs::planted_bug::put_ignores_condition;
        else {
            std::fprintf(stderr, "toastyfs-proxy: unknown argument '%s'\n", argv[i - 1]);
            usage(stderr);
            return cli::exit_usage;
        }
        if (!ok) {
            std::fprintf(stderr, "toastyfs-proxy: bad value for %s: '%s' %s\n", argv[i - 1], value.c_str(),
                         error.c_str());
            return cli::exit_usage;
        }
    }
    if (!have_replicas || !have_chunks || out.replicas.size() != out.chunk_nodes.size()) {
        std::fprintf(stderr,
                     "toastyfs-proxy: --replicas and --chunk-nodes are required, with one entry per node each\n");
        usage(stderr);
        return cli::exit_usage;
    }
    const std::size_t n = out.replicas.size();
    if (out.replication_factor == 0) out.replication_factor = n / 2 + 1;
    if (out.replication_factor < n / 2 + 1 || out.replication_factor > n) {
        std::fprintf(stderr, "toastyfs-proxy: --replication-factor must be from %zu (f+1) to %zu (n)\n", n / 2 + 1, n);
        return cli::exit_usage;
    }
    if (out.memory_max < 2 * out.chunk_size) {
        std::fprintf(stderr, "toastyfs-proxy: --memory-max must hold at least two chunks\n");
        return cli::exit_usage;
    }
    return -1;
}

/// Logging, shutdown on SIGTERM/SIGINT, and the OS limits thousands of connections need.
void set_up_process(const arguments& args) {
    platform::log_setup("proxy", args.level);
    platform::install_shutdown_handlers();
    platform::ignore_broken_pipes();
    platform::keep_large_buffers_mapped();
    platform::raise_open_file_limit();
}

/// A status reply to the proxy's own status session goes to the cluster view (true); any other
/// message is for the VSR client (false).
bool record_status_reply(std::span<const std::uint8_t> message, const vsr::config& cfg, std::uint64_t status_client_id,
                         const platform::event_loop& loop, cluster_view& cluster) {
    vsr::header h;
    if (vsr::decode_message(message, cfg.cluster, cfg.message_size_max, h) != vsr::decode_error::none ||
        h.cmd != vsr::command::status_reply) {
        return false;
    }
    vsr::status_body body;
    if (h.client_id == status_client_id && h.sender < cluster.nodes.size() &&
        vsr::decode_status_body(vsr::message_body(message), body)) {
        cluster.nodes[h.sender].metadata = body;
        cluster.nodes[h.sender].metadata_answered = true;
        cluster.nodes[h.sender].metadata_answered_ns = loop.monotonic_ns();
    }
    return true;
}

/// Metadata: a VSR client over the TCP bus. `client` is set once the client exists.
platform::tcp_bus_options metadata_bus_options(const arguments& args, const vsr::config& cfg, std::uint64_t seed,
                                               std::uint64_t status_client_id, vsr::xoshiro256& random,
                                               platform::event_loop& loop, cluster_view& cluster,
                                               metadata_client_type*& client) {
    platform::tcp_bus_options options;
    options.cluster = cfg.cluster;
    options.replica_addresses = args.replicas;
    options.role = platform::bus_role::client;
    options.client_process_id = random.next_u64();
    options.message_size_max = cfg.message_size_max;
    options.random_seed = seed ^ 0x9e3779b97f4a7c15ull;
    options.on_message = [&cfg, status_client_id, &loop, &cluster, &client](std::span<const std::uint8_t> message) {
        if (record_status_reply(message, cfg, status_client_id, loop, cluster)) return;
        if (client != nullptr) client->on_message(message);
    };
    return options;
}

vsr::client_options metadata_client_options(const arguments& args, const vsr::config& cfg) {
    vsr::client_options options;
    options.cluster = cfg.cluster;
    options.replica_count = cfg.replica_count;
    options.message_size_max = cfg.message_size_max;
    options.sessions = static_cast<std::uint32_t>(args.metadata_sessions);
    options.deadline_ms = static_cast<std::uint32_t>(args.metadata_timeout_ms);
    options.tick_ms = cfg.tick_ms;
    return options;
}

/// Chunks: one connection per node. Replies and disconnects go to `service` once it exists.
platform::chunk_client_options chunk_client_options(const arguments& args, const vsr::config& cfg, std::uint64_t seed,
                                                    service_type*& service) {
    platform::chunk_client_options options;
    options.cluster = cfg.cluster;
    options.node_addresses = args.chunk_nodes;
    options.body_size_max = std::max<std::uint64_t>(args.chunk_size, 1u << 20) + 4096;
    options.queue_bytes_max = std::max<std::uint64_t>(args.memory_max, 2 * args.chunk_size);
    options.random_seed = seed ^ 0x2545f4914f6cdd1dull;
    options.on_reply = [&service](std::uint8_t node, const toastyfs::frame_header& reply,
                                  std::vector<std::uint8_t>&& body) {
        if (service != nullptr) service->on_chunk_reply(node, reply, std::move(body));
    };
    options.on_disconnect = [&service](std::uint8_t node, std::vector<std::uint64_t> outstanding) {
        log(log_level::info, "chunk connection to node %u closed (%zu requests outstanding)", unsigned{node} + 1,
            outstanding.size());
        if (service != nullptr) service->on_chunk_disconnect(node, outstanding);
    };
    options.on_connect = [](std::uint8_t node) {
        log(log_level::info, "chunk connection to node %u up", unsigned{node} + 1);
    };
    return options;
}

toastyfs::service_options object_service_options(const arguments& args, const vsr::config& cfg,
                                                 vsr::xoshiro256& random) {
    toastyfs::service_options options;
    options.cluster = cfg.cluster;
    options.node_count = cfg.replica_count;
    options.replication_factor = static_cast<std::uint8_t>(args.replication_factor);
    options.write_copies_min = static_cast<std::uint8_t>(cfg.replica_count / 2 + 1);
    options.chunk_size = args.chunk_size;
    options.inline_size_max = args.inline_size_max;
    options.object_size_max = args.object_size_max;
    options.buffer_bytes_max = args.memory_max;
    options.request_id_seed = random.next_u64() >> 33;
    options.bug = args.bug;
    return options;
}

toastyfs::janitor_options janitor_options(const arguments& args) {
    toastyfs::janitor_options options;
    options.interval_ns = args.janitor_interval_ms * 1'000'000;
    options.upload_lease_ns = args.upload_lease_ms * 1'000'000;
    options.node_down_grace_ns = args.node_down_grace_ms * 1'000'000;
    options.replication_factor = static_cast<std::uint8_t>(args.replication_factor);
    options.bug = args.bug;
    return options;
}

platform::http_server_options http_options(const arguments& args) {
    platform::http_server_options options;
    options.listen_address = args.listen;
    options.connections_max = args.connections_max;
    options.parser.body_size_max = args.object_size_max;
    return options;
}

/// The proxy's periodic work, every tick: drive the client, the service and the janitor; every
/// second ask each node for its VSR status and chunk statistics (for GET /?status).
struct periodic_work {
    platform::event_loop& loop;
    const vsr::config& cfg;
    cluster_view& cluster;
    platform::tcp_message_bus& bus;
    metadata_client_type& client;
    service_type& service;
    janitor_type& janitor;
    std::uint64_t status_client_id;
    std::uint64_t next_poll_ns = 0;
    std::uint64_t janitor_repairs_logged = 0;
    std::uint64_t janitor_collected_logged = 0;
    std::vector<std::uint8_t> message = {};  // reused for every status request

    void run() {
        const std::uint64_t now = loop.monotonic_ns();
        cluster.now_ns = now;
        const bool unheard = forget_disconnected_nodes();
        client.tick();
        service.tick(now);
        janitor.tick(now);
        if (now < next_poll_ns) return;
        // Every second; every 200 ms while a node that just (re)connected is unheard from, so
        // /?status (and cluster.sh start) see it without waiting a second.
        next_poll_ns = now + (unheard ? 200'000'000 : 1'000'000'000);
        for (std::uint8_t n = 0; n < cfg.replica_count; ++n) ask_for_status(n);
        log_janitor_progress();
    }

    /// A node whose connection dropped (killed, restarting) is unreachable now, not "normal" for the
    /// seconds its last answer stays fresh: a restarted node must be seen recovering, then normal,
    /// before anyone relies on it. Returns whether a connected node has not answered yet.
    bool forget_disconnected_nodes() {
        const auto connected = bus.status().connected_replicas;
        cluster.replicas_connected = connected.size();
        bool unheard = false;
        for (std::uint8_t n = 0; n < cfg.replica_count; ++n) {
            if (std::find(connected.begin(), connected.end(), n) == connected.end()) {
                cluster.nodes[n].metadata_answered = false;
            } else {
                unheard = unheard || !cluster.nodes[n].metadata_answered;
            }
        }
        return unheard;
    }

    void ask_for_status(std::uint8_t n) {
        vsr::header h;
        h.cmd = vsr::command::status_request;
        h.sender = vsr::address_client;
        h.target = n;
        h.cluster = cfg.cluster;
        h.client_id = status_client_id;
        vsr::encode_message(h, {}, message);
        bus.send_to_replica(n, message);
        toastyfs::frame_header stat;
        stat.kind = toastyfs::frame_kind::stat;
        auto on_stats = [&view = cluster, n](bool answered, const toastyfs::frame_header& reply,
                                             std::vector<std::uint8_t>& body) {
            if (answered && reply.status == toastyfs::frame_status::ok &&
                toastyfs::decode_node_stats(body, view.nodes[n].chunks)) {
                view.nodes[n].chunks_answered = true;
            }
        };
        service.send_raw(n, stat, nullptr, std::move(on_stats));
    }

    void log_janitor_progress() {
        const auto& j = janitor.counters();
        if (j.repairs == janitor_repairs_logged && j.chunks_collected == janitor_collected_logged) return;
        log(log_level::info, "janitor: %llu chunk copies repaired, %llu unreferenced chunks collected (passes %llu)",
            static_cast<unsigned long long>(j.repairs), static_cast<unsigned long long>(j.chunks_collected),
            static_cast<unsigned long long>(j.passes));
        janitor_repairs_logged = j.repairs;
        janitor_collected_logged = j.chunks_collected;
    }
};

void log_listening(const arguments& args, const vsr::config& cfg) {
    log(log_level::info,
        "listening on http://%s, %u nodes, chunk size %llu, replication factor %llu, max object %llu bytes",
        platform::to_string(args.listen).c_str(), unsigned{cfg.replica_count},
        static_cast<unsigned long long>(args.chunk_size), static_cast<unsigned long long>(args.replication_factor),
        static_cast<unsigned long long>(args.object_size_max));
    if (args.bug != toastyfs::planted_bug::none) log(log_level::warn, "a planted bug is active: for tests only");
}

/// Closes every connection and lets the loop hand their completions back.
void close_connections(platform::event_loop& loop, platform::http_server& http, platform::chunk_client& chunks,
                       platform::tcp_message_bus& bus) {
    http.shutdown();
    chunks.shutdown();
    bus.shutdown();
    for (int i = 0; i < 1000 && !(http.drained() && chunks.drained() && bus.drained()); i++) loop.run_once(0);
}

}  // namespace

int main(int argc, char** argv) {
    arguments args;
    if (const int code = parse_arguments(argc, argv, args); code >= 0) return code;
    set_up_process(args);
    vsr::config cfg;
    cfg.cluster = static_cast<std::uint32_t>(args.cluster);
    cfg.replica_count = static_cast<std::uint8_t>(args.replicas.size());

    platform::event_loop loop;
    std::string error;
    if (!loop.open(error)) {
        log(log_level::warn, "event loop: %s", error.c_str());
        return 1;
    }
    const std::uint64_t seed = toastyfs::process::random_seed();
    vsr::xoshiro256 random(seed);
    cluster_view cluster;
    cluster.nodes.resize(cfg.replica_count);
    cluster.quorum = cfg.quorum();
    const std::uint64_t status_client_id = random.next_u64() | 1;

    metadata_client_type* client_pointer = nullptr;
    auto bus = std::make_unique<platform::tcp_message_bus>(
        loop, metadata_bus_options(args, cfg, seed, status_client_id, random, loop, cluster, client_pointer));
    platform::io_error io = platform::io_error::none;
    if (!bus->start(io)) {
        log(log_level::warn, "metadata bus: %s", std::string(platform::to_string(io)).c_str());
        return 1;
    }
    auto client = std::make_unique<metadata_client_type>(metadata_client_options(args, cfg), *bus, random);
    client_pointer = client.get();
    service_type* service_pointer = nullptr;
    platform::chunk_client chunks(loop, chunk_client_options(args, cfg, seed, service_pointer));
    chunks.start();
    service_type service(object_service_options(args, cfg, random), *client, chunks);
    service_pointer = &service;
    janitor_type janitor(janitor_options(args), service, cfg.replica_count);

    object_api_options api_options;
    api_options.object_size_max = args.object_size_max;
    object_api api(api_options, service, janitor, cluster, chunks);
    platform::http_server http(loop, http_options(args), api);
    if (!http.start(io)) {
        log(log_level::warn, "cannot listen on %s: %s", platform::to_string(args.listen).c_str(),
            std::string(platform::to_string(io)).c_str());
        return 1;
    }
    log_listening(args, cfg);

    periodic_work work{loop, cfg, cluster, *bus, *client, service, janitor, status_client_id};
    toastyfs::process::ticker tick{loop, std::uint64_t{cfg.tick_ms} * 1'000'000, [&work] { work.run(); }};
    tick.start();
    while (!platform::shutdown_requested()) {
        loop.run_once(tick.period_ns);
        service.poll();
    }

    log(log_level::info, "%s: shutting down", platform::shutdown_reason());
    tick.stop();
    close_connections(loop, http, chunks, *bus);
    service_pointer = nullptr;
    client_pointer = nullptr;
    log(log_level::info, "stopped");
    return 0;
}
