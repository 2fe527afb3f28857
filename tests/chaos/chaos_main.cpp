// toastyfs-chaos: a nemesis against a real ToastyFS cluster (Jepsen-style).
//
//   toastyfs-chaos --node PATH --proxy PATH [--duration SECONDS] [--seed N] [--clients N]
//                  [--keys N] [--work DIR] [--keep] [--no-namespaces] [--port-base N]
//                  [--proxy-arg ARG]... [--node-arg ARG]... [--faults KIND,...] [--expect-anomaly TEXT]
//
// Starts 3 toastyfs-node processes and a toastyfs-proxy (see cluster.hpp for the network
// layout), runs a concurrent PUT/GET/DELETE/LIST workload with unique values while the nemesis
// (nemesis.hpp) applies faults for --duration seconds, then heals everything, waits for the
// cluster to converge and checks:
//   - the history is linearizable (per key, the simulator's checker, final reads included);
//   - every LIST is sound; every GET returned exactly the bytes some PUT wrote;
//   - no acknowledged write was lost, and every key reads back the same with each node down in
//     turn (so every chunk has a good copy on more than one node);
//   - no process died unasked;
//   - availability: some write was acknowledged; after each kill -9 of one node, and after the
//     last fault healed, a write issued afterwards succeeded within a bound from the product's
//     timers (write_resume_after_kill_ms, write_resume_after_heal_ms);
//   - every fault kind asked for (--faults, default all) was injected at least once. Network
//     kinds need namespaces; without them (--no-namespaces, not root, no nftables) asking for
//     one fails the run before it starts.
// It reports operations, faults injected per kind, anomalies and availability, and exits 1 on
// any anomaly (2 when it could not run). --expect-anomaly TEXT inverts the verdict (0
// only if an anomaly containing TEXT was found); with --node-arg --planted-bug --node-arg NAME (or --proxy-arg) it
// shows that the checks catch a known bug. The fault schedule and the workload follow from --seed; the timing of
// real processes does not, so a seed does not replay exactly.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "checks.hpp"
#include "cluster.hpp"
#include "nemesis.hpp"
#include "process.hpp"
#include "sim/linearizability.hpp"
#include "vsr/client.hpp"
#include "vsr/config.hpp"
#include "workload.hpp"

namespace {

std::atomic<bool> interrupted{false};

// The proxy's settings that the checks depend on (passed to it below).
constexpr std::size_t chunk_size = 16384;
constexpr std::size_t inline_size_max = 4096;     // its default
constexpr std::uint32_t replication_factor = 2;   // its default for 3 nodes: f + 1
constexpr std::uint64_t upload_lease_ms = 10'000;  // short, so garbage collection runs under faults
constexpr std::uint64_t final_phase_ms = 600'000;
constexpr std::uint64_t fault_hold_ms_max = 6000;  // nemesis_options::hold_ms_max
/// Writes resume after a kill -9 of one node within this, from the product's timers: the backups
/// notice the silent primary (view-change timeout plus jitter), finish the view change (a few
/// retry rounds), the proxy's backed-off retry (at most retry_max plus half of it as jitter)
/// reaches the new primary, and a new PUT's two metadata operations (clock, put_object) may each
/// go first to the old primary and be retried once (retry_initial plus jitter). Doubled: on a
/// loaded 2-core machine 10 ms ticks, fsyncs and the workload's threads slip.
constexpr std::uint64_t write_resume_after_kill_ms() {
    constexpr vsr::config replica;
    constexpr vsr::client_options client;
    constexpr std::uint64_t view_change_ms =
        replica.view_change_timeout_ms + replica.view_change_jitter_ms + 3 * replica.retry_ms;
    constexpr std::uint64_t retries_ms = client.retry_max_ms * 3 / 2 + 2 * (client.retry_initial_ms * 3 / 2);
    constexpr std::uint64_t timers_ms = view_change_ms + retries_ms;
    return 2 * timers_ms;
}
/// After the last fault heals: as after a kill, plus TCP's recovery from the longest fault. A
/// partition drops packets for up to fault_hold_ms_max; TCP's retransmission timeout doubles
/// from 200 ms, so the next retransmission comes at most about half the hold after the heal (or
/// the idle bus connection was closed and reconnects within its 2 s backoff).
constexpr std::uint64_t write_resume_after_heal_ms() {
    return write_resume_after_kill_ms() + 2 * (fault_hold_ms_max / 2 + 200);
}
/// A GET cut short is excused for this long after a fault healed: the proxy's chunk connection to
/// a restarted or reachable-again node comes back within its reconnect backoff (at most 2 s,
/// platform/chunk_transport.hpp). Longer would cover the quiet periods between faults too.
constexpr std::uint64_t cut_get_excuse_after_fault_ms = 2000;
/// The cut-GET check must be on for at least this fraction of the workload's time in runs of 60 s
/// or more. Every third rest is a quiet period of at least 4 s (2 s of it checked), which gives
/// about a fifth; without quiet periods only the end after healing is checked (under 3%), and the
/// old excuse (each fault plus 5 s) left none.
constexpr double cut_get_check_fraction_min = 0.05;
void on_signal(int) { interrupted = true; }

struct arguments {
    std::string node_binary;
    std::string proxy_binary;
    std::uint64_t duration_s = 120;
    std::uint64_t seed = 1;
    std::uint32_t clients = 6;
    std::uint32_t keys = 64;
    std::string work_directory;
    bool keep = false;
    bool namespaces = true;
    std::uint16_t port_base = 0;
    std::vector<std::string> proxy_arguments;
    std::vector<std::string> node_arguments;
    std::string expect_anomaly;  // non-empty: succeed only if an anomaly contains this text
    std::set<std::string> faults;
};

void usage() {
    std::fprintf(stderr,
                 "usage: toastyfs-chaos --node PATH --proxy PATH [--duration SECONDS (120)] [--seed N (1)]\n"
                 "                      [--clients N (6)] [--keys N per generation (64)] [--work DIR] [--keep] [--no-namespaces]\n"
                 "                      [--port-base N (loopback mode; default from the pid)]\n"
                 "                      [--proxy-arg ARG]... [--node-arg ARG]... [--faults KIND,... (all)] [--expect-anomaly TEXT]\n"
                 "fault kinds: kill, kill_primary, pause, delay, partition, loss, duplicate, loss_and_crash, corrupt\n"
                 "(partition, loss, duplicate and loss_and_crash need network namespaces: root, iproute2, nftables)\n");
}

bool parse_number(std::string_view text, std::uint64_t low, std::uint64_t high, std::uint64_t& out) {
    const auto r = std::from_chars(text.data(), text.data() + text.size(), out);
    return r.ec == std::errc() && r.ptr == text.data() + text.size() && out >= low && out <= high;
}

bool parse(int argc, char** argv, arguments& a) {
    for (int i = 1; i < argc; ++i) {
        const std::string_view flag = argv[i];
        if (flag == "--keep") {
            a.keep = true;
            continue;
        }
        if (flag == "--no-namespaces") {
            a.namespaces = false;
            continue;
        }
        if (i + 1 >= argc) return false;
        const std::string_view value = argv[++i];
        std::uint64_t n = 0;
        if (flag == "--node") a.node_binary = value;
        else if (flag == "--proxy") a.proxy_binary = value;
        else if (flag == "--work") a.work_directory = value;
        else if (flag == "--proxy-arg") a.proxy_arguments.emplace_back(value);
        else if (flag == "--node-arg") a.node_arguments.emplace_back(value);
        else if (flag == "--expect-anomaly" && !value.empty()) a.expect_anomaly = value;
        else if (flag == "--faults") {
            const std::vector<std::string> known = chaos::fault_kinds();
            for (std::string_view rest = value; !rest.empty();) {
                const std::size_t comma = rest.find(',');
                const std::string name(rest.substr(0, comma));
                if (std::find(known.begin(), known.end(), name) == known.end()) return false;
                a.faults.insert(name);
                rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
            }
        }
        else if (flag == "--duration" && parse_number(value, 1, 7 * 24 * 3600, n)) a.duration_s = n;
        else if (flag == "--seed" && parse_number(value, 0, UINT64_MAX, n)) a.seed = n;
        else if (flag == "--clients" && parse_number(value, 1, 64, n)) a.clients = static_cast<std::uint32_t>(n);
        else if (flag == "--keys" && parse_number(value, 1, 1000, n)) a.keys = static_cast<std::uint32_t>(n);
        else if (flag == "--port-base" && parse_number(value, 1024, 65000, n)) a.port_base = static_cast<std::uint16_t>(n);
        else return false;
    }
    return !a.node_binary.empty() && !a.proxy_binary.empty();
}

/// Namespaces need root, iproute2 and nftables; probes them without touching anything else.
bool namespaces_work(std::string& why) {
    if (::geteuid() != 0) {
        why = "not root";
        return false;
    }
    const std::string probe = "tfc" + std::to_string(::getpid()) + "-probe";
    std::string output;
    int status = chaos::run({"ip", "netns", "add", probe}, {}, &output);
    if (status != 0) {
        why = chaos::describe_failure({"ip", "netns", "add", probe}, status, output);
        return false;
    }
    status = chaos::run({"ip", "netns", "exec", probe, "nft", "-f", "-"},
                        "table ip chaos { chain out { type filter hook output priority 0; numgen random mod 100 < 5 drop; }; }\n",
                        &output);
    chaos::run({"ip", "netns", "del", probe});
    if (status != 0) {
        why = chaos::describe_failure({"nft"}, status, output);
        return false;
    }
    return true;
}

double seconds(std::uint64_t ns) { return static_cast<double>(ns) / 1e9; }

struct report {
    std::vector<std::string> anomalies;
    void anomaly(const std::string& what) {
        std::printf("ANOMALY: %s\n", what.c_str());
        std::fflush(stdout);
        anomalies.push_back(what);
    }
};

/// Waits until the proxy sees every node normal in one view with equal commit numbers and its
/// chunk server up, and then, with that holding throughout, `passes` more janitor passes complete
/// (aborted passes do not count). False on timeout; `last` describes the last state seen.
bool wait_converged(const chaos::cluster& c, std::uint64_t passes, std::uint64_t timeout_ms, std::string& last) {
    const std::uint64_t deadline = chaos::now_ns() + timeout_ms * 1'000'000ull;
    bool was_healthy = false;
    std::uint64_t healthy_since = 0;  // completed passes when health last began
    while (chaos::now_ns() < deadline && !interrupted) {
        const auto s = c.status();
        bool healthy = s && s->nodes.size() == c.nodes();
        if (healthy) {
            for (const auto& n : s->nodes)
                healthy = healthy && n.normal && n.chunk_server_up && n.view == s->nodes[0].view && n.commit == s->nodes[0].commit &&
                          n.op == n.commit;
            last = "view " + std::to_string(s->nodes[0].view) + ", janitor passes completed " + std::to_string(s->janitor_passes_completed);
            for (std::size_t i = 0; i < s->nodes.size(); ++i)
                last += "; node " + std::to_string(i + 1) + (s->nodes[i].normal ? " normal" : " not normal") + " commit " +
                        std::to_string(s->nodes[i].commit) + (s->nodes[i].chunk_server_up ? "" : " chunks down");
        } else {
            last = "no status from the proxy";
        }
        if (healthy && !was_healthy) healthy_since = s->janitor_passes_completed;
        was_healthy = healthy;
        if (healthy && s->janitor_passes_completed >= healthy_since + passes) return true;
        chaos::sleep_ms(200);
    }
    return false;
}

bool wait_for_primary(const chaos::cluster& c, std::uint64_t timeout_ms) {
    const std::uint64_t deadline = chaos::now_ns() + timeout_ms * 1'000'000ull;
    while (chaos::now_ns() < deadline && !interrupted) {
        if (c.primary()) return true;
        chaos::sleep_ms(100);
    }
    return false;
}

void print_tail(const std::string& path, std::size_t lines) {
    std::string output;
    chaos::run({"tail", "-n", std::to_string(lines), path}, {}, &output);
    std::printf("--- %s (last %zu lines)\n%s", path.c_str(), lines, output.c_str());
}

std::set<std::string> requested_kinds(const arguments& args) {
    if (!args.faults.empty()) return args.faults;
    const std::vector<std::string> all = chaos::fault_kinds();
    return {all.begin(), all.end()};
}

/// Requested network fault kinds that cannot be injected without namespaces: each an anomaly.
void check_injectable(const std::set<std::string>& requested, bool namespaces, const std::string& why, report& result) {
    if (namespaces) return;
    for (const std::string& kind : requested)
        if (chaos::is_network_kind(kind))
            result.anomaly("fault kind " + kind + " was requested but cannot be injected: network namespaces " +
                           "unavailable (" + why + "); ask only for kill, kill_primary, pause, delay, corrupt to run " +
                           "without them");
}

/// Exit status: 1 on any anomaly; with --expect-anomaly, 0 only if one contains its text.
int verdict(const report& result, const arguments& args) {
    if (args.expect_anomaly.empty()) return result.anomalies.empty() ? 0 : 1;
    bool found = false;
    for (const std::string& a : result.anomalies) found = found || a.find(args.expect_anomaly) != std::string::npos;
    std::printf("%s \"%s\"\n", found ? "found the expected anomaly" : "expected but did not find an anomaly containing",
                args.expect_anomaly.c_str());
    return found ? 0 : 1;
}

/// The workload goes on after healing (recovery is part of availability) until a write issued
/// after `healed_ns` took effect and at least `minimum_ms` passed, or until `maximum_ms`.
void run_after_heal(const chaos::workload& load, std::uint64_t healed_ns, std::uint64_t minimum_ms,
                    std::uint64_t maximum_ms) {
    const std::uint64_t minimum_end = healed_ns + minimum_ms * 1'000'000ull;
    const std::uint64_t maximum_end = healed_ns + maximum_ms * 1'000'000ull;
    while (!interrupted && chaos::now_ns() < maximum_end) {
        if (chaos::now_ns() >= minimum_end && load.last_effective_write_issued_ns() >= healed_ns) return;
        chaos::sleep_ms(100);
    }
}

void print_fault_counts(const std::set<std::string>& requested, const chaos::fault_counts& counts) {
    std::printf("faults injected, by kind:");
    for (const std::string& kind : requested) {
        const auto injected = counts.injected.find(kind);
        const auto failed = counts.not_injected.find(kind);
        const std::uint64_t count = injected == counts.injected.end() ? 0 : injected->second;
        std::printf(" %s %llu", kind.c_str(), static_cast<unsigned long long>(count));
        if (failed != counts.not_injected.end())
            std::printf(" (+%llu not injected)", static_cast<unsigned long long>(failed->second));
    }
    std::printf("\n");
}

void print_availability(const chaos::availability_report& available, double cut_check_on) {
    std::printf("availability: %llu writes acknowledged; after each of %llu kill -9s a new write succeeded "
                "within %.2f s (bound %.1f s); after healing ",
                static_cast<unsigned long long>(available.acknowledged_writes),
                static_cast<unsigned long long>(available.kills_checked), seconds(available.slowest_after_kill_ns),
                static_cast<double>(write_resume_after_kill_ms()) / 1000);
    if (available.resumed_after_heal) std::printf("within %.2f s", seconds(available.after_heal_ns));
    else std::printf("not within");
    std::printf(" (bound %.1f s); the cut-GET check was on for %.0f%% of the workload's time\n",
                static_cast<double>(write_resume_after_heal_ms()) / 1000, cut_check_on * 100);
}

}  // namespace

int main(int argc, char** argv) {
    arguments args;
    if (!parse(argc, argv, args)) {
        usage();
        return 2;
    }
    ::signal(SIGPIPE, SIG_IGN);
    ::signal(SIGINT, on_signal);
    ::signal(SIGTERM, on_signal);
    const bool own_work_directory = args.work_directory.empty();
    if (own_work_directory) {
        char pattern[] = "/tmp/toastyfs-chaos-XXXXXX";
        if (!::mkdtemp(pattern)) {
            std::perror("mkdtemp");
            return 2;
        }
        args.work_directory = pattern;
    }
    std::string why = "--no-namespaces";
    if (args.namespaces && !namespaces_work(why)) {
        std::printf("network namespaces unavailable (%s)\n", why.c_str());
        args.namespaces = false;
    }
    // Faults asked for that cannot be injected fail the run before it starts.
    const std::set<std::string> requested = requested_kinds(args);
    report result;
    check_injectable(requested, args.namespaces, why, result);
    if (!result.anomalies.empty()) {
        std::printf("anomalies: %zu\n", result.anomalies.size());
        if (own_work_directory) std::filesystem::remove_all(args.work_directory);
        return verdict(result, args);
    }
    if (args.namespaces)
        if (const std::uint32_t stale = chaos::cluster::remove_stale_namespaces())
            std::printf("removed %u network namespaces left by an earlier run that was killed\n", stale);
    if (args.port_base == 0) args.port_base = static_cast<std::uint16_t>(20000 + (::getpid() % 400) * 100);

    chaos::cluster_options options;
    options.node_binary = std::filesystem::absolute(args.node_binary).string();
    options.proxy_binary = std::filesystem::absolute(args.proxy_binary).string();
    options.work_directory = args.work_directory;
    options.use_namespaces = args.namespaces;
    options.port_base = args.port_base;
    // Small chunks so that objects span several; a fast janitor so repairs happen within the run.
    options.proxy_extra_arguments = {"--chunk-size", std::to_string(chunk_size), "--janitor-interval-ms", "1000",
                                     "--node-down-grace-ms", "3000", "--metadata-timeout-ms", "5000",
                                     "--upload-lease-ms", std::to_string(upload_lease_ms)};
    options.node_extra_arguments = {"--upload-lease-ms", std::to_string(upload_lease_ms)};
    options.node_extra_arguments.insert(options.node_extra_arguments.end(), args.node_arguments.begin(), args.node_arguments.end());
    options.proxy_extra_arguments.insert(options.proxy_extra_arguments.end(), args.proxy_arguments.begin(), args.proxy_arguments.end());
    chaos::cluster cluster(options);
    std::printf("toastyfs-chaos: seed %llu, %llu s of faults, %u clients, %u keys per 15 s, work directory %s, %s\n",
                static_cast<unsigned long long>(args.seed), static_cast<unsigned long long>(args.duration_s), args.clients,
                args.keys, args.work_directory.c_str(),
                args.namespaces ? "nodes in network namespaces (nftables faults)" : "loopback");
    std::fflush(stdout);
    std::string error;
    if (!cluster.start(error)) {
        std::printf("cannot start the cluster: %s\n", error.c_str());
        return 2;
    }
    std::string last;
    if (!wait_converged(cluster, 0, 30'000, last)) {
        std::printf("the cluster did not become ready in 30 s: %s\n", last.c_str());
        for (std::uint32_t i = 0; i < cluster.nodes(); ++i) print_tail(cluster.log_directory() + "/node" + std::to_string(i + 1) + ".log", 20);
        print_tail(cluster.log_directory() + "/proxy.log", 20);
        return 2;
    }

    chaos::workload_options load;
    load.host = cluster.proxy_host();
    load.port = cluster.proxy_port();
    load.clients = args.clients;
    load.keys = args.keys;
    load.seed = args.seed;
    chaos::workload workload(load);
    const std::uint64_t run_start = chaos::now_ns();
    workload.start();
    chaos::sleep_ms(2000);

    chaos::nemesis_options nemesis_options;
    nemesis_options.seed = args.seed;
    nemesis_options.only = requested;
    nemesis_options.hold_ms_max = fault_hold_ms_max;
    nemesis_options.live_chunks = [&workload](std::uint64_t pick) { return workload.recent_chunk_names(pick); };
    const std::uint64_t faults_start = chaos::now_ns();
    nemesis_options.end_ns = faults_start + args.duration_s * 1'000'000'000ull;
    chaos::nemesis nemesis(cluster, nemesis_options);
    nemesis.start();
    std::uint64_t next_progress = faults_start + 30'000'000'000ull;
    while (chaos::now_ns() < nemesis_options.end_ns && !interrupted) {
        chaos::sleep_ms(100);
        if (chaos::now_ns() >= next_progress) {
            std::printf("[%5.0f s] %llu operations, %llu writes acknowledged\n", seconds(chaos::now_ns() - faults_start),
                        static_cast<unsigned long long>(workload.completed()), static_cast<unsigned long long>(workload.writes_ok()));
            std::fflush(stdout);
            next_progress += 30'000'000'000ull;
        }
    }
    if (interrupted) nemesis.cancel();
    nemesis.join();
    if (interrupted) {  // stopped from outside: no verdict, just leave nothing behind
        workload.stop();
        cluster.teardown();
        std::printf("interrupted\n");
        return 2;
    }
    const std::uint64_t faults_end = chaos::now_ns();
    run_after_heal(workload, faults_end, 5000, write_resume_after_heal_ms() + 1000);
    workload.stop();
    const std::uint64_t workload_end = chaos::now_ns();

    for (const std::string& e : nemesis.errors()) result.anomaly("nemesis could not apply a fault: " + e);
    for (const std::string& c : nemesis.crashes()) result.anomaly(c);
    for (const std::string& c : nemesis.stuck()) result.anomaly(c);
    for (const std::string& c : cluster.unexpected_exits()) result.anomaly(c);

    // Everything after the faults shares one deadline, so a wedged cluster ends the run with a
    // verdict instead of a test timeout.
    const std::uint64_t final_deadline = chaos::now_ns() + final_phase_ms * 1'000'000ull;
    const auto time_left_ms = [&] { return chaos::now_ns() >= final_deadline ? 0 : (final_deadline - chaos::now_ns()) / 1'000'000; };

    // Converge: every node normal and caught up, then the janitor's passes.
    const std::uint64_t heal_start = chaos::now_ns();
    bool converged = wait_converged(cluster, 3, std::min<std::uint64_t>(120'000, time_left_ms()), last);
    if (!converged) result.anomaly("no convergence within 120 s of healing: " + last);
    const std::uint64_t converged_ns = chaos::now_ns() - heal_start;

    // Final reads, recorded: the checker sees them, so a lost write is a linearizability violation.
    std::vector<std::string> problems;
    const std::map<std::string, std::string> final_state = workload.read_all(true, final_deadline, problems);
    for (const std::string& p : problems) result.anomaly("after healing: " + p);

    // A LIST of each generation must show exactly what the reads found.
    std::vector<chaos::list_record> final_lists;
    for (std::uint32_t g = 0; g < workload.generations() && !interrupted && time_left_ms() > 0; ++g)
        final_lists.push_back(workload.list(chaos::key_name(g, 0).substr(0, 6)));
    for (const std::string& p : chaos::check_final_listing(final_lists, final_state, workload.written())) result.anomaly(p);

    // On disk: every chunk of every object has its copies (repair and scrub converged).
    const chaos::copies_report copies = chaos::check_chunk_copies(
        final_state, workload.written(), cluster.nodes(), [&](std::uint32_t n) { return cluster.node_data(n) + "/chunks"; },
        nemesis.corrupted_copies(), chunk_size, inline_size_max, replication_factor);
    for (const std::string& p : copies.problems) result.anomaly(p);

    // Every replica's metadata: kill the primary three times (each kill moves the view on by one,
    // so every node serves as primary once) and read everything again each time.
    std::uint32_t primaries_checked = 0;
    // With a chunk already short of copies, a round with its holder down would only wait for
    // the deadline on a read the copy check has already failed.
    const bool copies_complete = copies.problems.empty();
    for (std::uint32_t round = 0;
         round < cluster.nodes() && converged && copies_complete && !interrupted && time_left_ms() > 0; ++round) {
        const auto primary = cluster.primary();
        if (!primary) {
            result.anomaly("no primary after convergence");
            break;
        }
        cluster.kill_node(*primary);
        if (!wait_for_primary(cluster, std::min<std::uint64_t>(20'000, time_left_ms()))) {
            result.anomaly("no new primary within 20 s after killing node " + std::to_string(*primary + 1));
        } else {
            problems.clear();
            const auto state = workload.read_all(false, final_deadline, problems);
            for (const std::string& p : problems) result.anomaly("with node " + std::to_string(*primary + 1) + " down: " + p);
            for (const auto& [key, value] : final_state) {
                const auto it = state.find(key);
                if (it != state.end() && it->second != value)
                    result.anomaly("with node " + std::to_string(*primary + 1) + " down, " + key + " reads " +
                                   (it->second.empty() ? "404" : it->second) + " instead of " + (value.empty() ? "404" : value));
            }
            ++primaries_checked;
        }
        if (!cluster.restart_node(*primary, error)) result.anomaly("cannot restart node " + std::to_string(*primary + 1) + ": " + error);
        converged = wait_converged(cluster, 1, std::min<std::uint64_t>(60'000, time_left_ms()), last);
        if (!converged) result.anomaly("no convergence after restarting node " + std::to_string(*primary + 1) + ": " + last);
    }
    for (const std::string& c : cluster.unexpected_exits()) result.anomaly(c);

    // The history.
    const std::vector<sim::kv_history_op> history = workload.history();
    for (const std::string& c : workload.corrupt_reads()) result.anomaly(c);
    const std::uint64_t check_start = chaos::now_ns();
    sim::linearizability_options search;
    search.search_steps_max = 20'000'000;
    const sim::linearizability_report linear = sim::check_linearizable(history, search);
    const double check_s = seconds(chaos::now_ns() - check_start);
    if (!linear.linearizable)
        result.anomaly(std::string(linear.undecided ? "linearizability undecided: " : "not linearizable: ") + linear.explanation);
    for (const std::string& p : chaos::check_lists(history, workload.lists(), workload.written())) result.anomaly(p);
    const chaos::lost_write_report lost = chaos::check_final_writes(history, final_state);
    for (const std::string& l : lost.lost) result.anomaly("acknowledged write lost: " + l);
    const auto noisy = chaos::fault_excuse_windows(nemesis.faults(), cut_get_excuse_after_fault_ms * 1'000'000ull);
    const double cut_check_on = chaos::unexcused_fraction(noisy, run_start, workload_end);
    if (args.duration_s >= 60 && cut_check_on < cut_get_check_fraction_min)
        result.anomaly("the cut-GET check was on for only " + std::to_string(static_cast<int>(cut_check_on * 100)) +
                       "% of the workload's time: the faults' excuse windows cover the rest");
    std::uint64_t cut_excused = 0;
    for (const std::string& p : chaos::check_truncated_gets(history, workload.truncated_gets(), workload.written(), noisy, cut_excused))
        result.anomaly(p);
    const chaos::unavailability gap = chaos::longest_write_gap(history, faults_start, workload_end);
    const chaos::availability_report available = chaos::check_availability(
        history, nemesis.faults(), faults_end,
        {write_resume_after_kill_ms() * 1'000'000ull, write_resume_after_heal_ms() * 1'000'000ull});
    for (const std::string& p : available.problems) result.anomaly(p);
    const chaos::fault_counts fault_counts = chaos::count_faults(nemesis.faults());
    for (const std::string& p : chaos::check_faults_injected(requested, fault_counts)) result.anomaly(p);

    // Report.
    const chaos::workload_counters c = workload.counters();
    std::map<std::string, std::uint64_t> faults_by_kind;
    for (const chaos::fault_record& f : nemesis.faults()) ++faults_by_kind[f.kind];
    std::printf("\n== toastyfs-chaos seed %llu: %.0f s of faults, %.0f s of workload\n", static_cast<unsigned long long>(args.seed),
                seconds(faults_end - faults_start), seconds(workload_end - run_start));
    std::printf("operations: %llu (%llu ok, %llu unknown outcome, %llu refused); answers 2xx %llu, 3xx %llu, 4xx %llu, 5xx %llu, none %llu; %zu LISTs\n",
                static_cast<unsigned long long>(c.ops), static_cast<unsigned long long>(c.ok), static_cast<unsigned long long>(c.unknown),
                static_cast<unsigned long long>(c.failed), static_cast<unsigned long long>(c.by_status[2]),
                static_cast<unsigned long long>(c.by_status[3]), static_cast<unsigned long long>(c.by_status[4]),
                static_cast<unsigned long long>(c.by_status[5]), static_cast<unsigned long long>(c.by_status[0]), workload.lists().size());
    print_fault_counts(requested, fault_counts);
    print_availability(available, cut_check_on);
    std::printf("longest time without a successful write: %.2f s (from %.1f s into the faults); %llu writes succeeded during and after the faults\n",
                seconds(gap.longest_ns), seconds(gap.starts_ns - faults_start), static_cast<unsigned long long>(gap.writes));
    for (const chaos::fault_record& f : nemesis.faults())
        if (f.start_ns <= gap.starts_ns + gap.longest_ns && f.end_ns + 1'000'000'000ull >= gap.starts_ns)
            std::printf("  during: %s %s (%.1f-%.1f s)\n", f.kind.c_str(), f.detail.c_str(), seconds(f.start_ns - faults_start),
                        seconds(f.end_ns - faults_start));
    // Which faults cost availability: every gap of 1 s or more without a successful write,
    // charged to each kind of fault active during it.
    std::map<std::string, std::pair<std::uint64_t, std::uint64_t>> gaps_by_kind;  // kind -> (gaps, longest)
    for (const auto& [start, length] : chaos::write_gaps(history, faults_start, workload_end, 1'000'000'000ull)) {
        std::set<std::string> kinds;
        for (const chaos::fault_record& f : nemesis.faults())
            if (f.start_ns <= start + length && f.end_ns + 1'000'000'000ull >= start) kinds.insert(f.kind);
        if (kinds.empty()) kinds.insert("(no fault)");
        for (const std::string& k : kinds) {
            auto& [count, longest] = gaps_by_kind[k];
            ++count;
            longest = std::max(longest, length);
        }
    }
    std::printf("gaps of 1 s or more without a successful write, by the faults active then:\n");
    for (const auto& [kind, stats] : faults_by_kind) {
        const auto it = gaps_by_kind.find(kind);
        std::printf("  %-18s %4llu faults, %4llu gaps, longest %.2f s\n", kind.c_str(), static_cast<unsigned long long>(stats),
                    static_cast<unsigned long long>(it == gaps_by_kind.end() ? 0 : it->second.first),
                    seconds(it == gaps_by_kind.end() ? 0 : it->second.second));
    }
    if (const auto it = gaps_by_kind.find("(no fault)"); it != gaps_by_kind.end())
        std::printf("  %-18s %4llu gaps, longest %.2f s\n", "(no fault)", static_cast<unsigned long long>(it->second.first),
                    seconds(it->second.second));
    std::printf("converged %.1f s after healing; linearizability: %llu keys (%llu by search, %llu steps) in %.1f s; "
                "%llu keys' last acknowledged write checked directly\n",
                seconds(converged_ns), static_cast<unsigned long long>(linear.keys_checked),
                static_cast<unsigned long long>(linear.keys_by_search), static_cast<unsigned long long>(linear.search_steps), check_s,
                static_cast<unsigned long long>(lost.keys_checked));
    std::printf("after healing: %zu keys read back, %zu generations listed, %llu chunks with %llu good copies on disk "
                "(%llu corrupted copies not yet scrubbed), every key read again with %u different primaries%s; "
                "%llu GETs cut short by faults or overwrites\n",
                final_state.size(), final_lists.size(), static_cast<unsigned long long>(copies.chunks),
                static_cast<unsigned long long>(copies.good_copies), static_cast<unsigned long long>(copies.corrupt_unscrubbed),
                primaries_checked, copies_complete ? "" : " (skipped: chunks short of copies)",
                static_cast<unsigned long long>(cut_excused));
    std::printf("anomalies: %zu\n", result.anomalies.size());
    if (!result.anomalies.empty() || args.keep) {
        std::printf("fault log:\n");
        for (const chaos::fault_record& f : nemesis.faults())
            std::printf("  %7.2f-%7.2f s %s %s%s\n", seconds(f.start_ns - faults_start),
                        seconds(f.end_ns - faults_start), f.kind.c_str(), f.detail.c_str(),
                        f.injected ? "" : " (not injected)");
    }
    std::fflush(stdout);
    cluster.teardown();
    const int code = interrupted ? 2 : verdict(result, args);
    // A pass (an expected anomaly found included) leaves nothing behind unless asked to.
    if (own_work_directory && code == 0 && !args.keep) std::filesystem::remove_all(args.work_directory);
    else std::printf("logs kept in %s/logs\n", args.work_directory.c_str());
    return code;
}
