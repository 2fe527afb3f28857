// kv-client: commands and a benchmark against a KV example cluster.
//
//   kv-client --replicas host:port,... --cluster ID [--timeout-ms MS] COMMAND
//     put KEY VALUE | get KEY | del KEY | cas KEY EXPECTED NEW
//     bench [--concurrency N] [--requests R] [--value-size B] [--keys K] [--slow-ms MS]
//           [--progress-ms MS]
//     status
//
// Exit codes: 0 success; 1 the operation ran but did not succeed (get/del: not found, cas:
// mismatch); 2 bad arguments; 3 the operation failed (timeout: outcome unknown; too large; log
// full; session evicted; invalid). status: 0 if at least one replica answered, else 3.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <iterator>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cli.hpp"
#include "kv_state_machine.hpp"
#include "platform/event_loop.hpp"
#include "platform/process.hpp"
#include "platform/tcp_message_bus.hpp"
#include "vsr/client.hpp"
#include "vsr/random.hpp"

namespace {

using client_type = vsr::basic_client<platform::tcp_message_bus, vsr::xoshiro256>;

constexpr int exit_failed = 3;
constexpr std::uint32_t tick_ms = 10;
constexpr std::uint64_t ms = 1'000'000;

void usage(std::FILE* out) {
    std::fprintf(out,
                 "usage: kv-client --replicas host:port,... --cluster ID [--timeout-ms MS] COMMAND\n"
                 "commands:\n"
                 "  put KEY VALUE\n"
                 "  get KEY                 prints the value; 'not found' and exit 1 if absent\n"
                 "  del KEY                 'not found' and exit 1 if absent\n"
                 "  cas KEY EXPECTED NEW    'mismatch' and exit 1 if the value is not EXPECTED\n"
                 "  bench [--concurrency N] [--requests R] [--value-size B] [--keys K] [--slow-ms MS]\n"
                 "        [--progress-ms MS]\n"
                 "                          puts of B-byte values; request i writes key bench-(i mod K)\n"
                 "                          (--keys default 100000, so at most K distinct keys)\n"
                 "                          --slow-ms: print each request slower than MS at once\n"
                 "                          (wall-clock start/end, ns since the epoch)\n"
                 "                          --progress-ms: every MS print 'progress elapsed_ms E\n"
                 "                          completed C ok O failed F'\n"
                 "  status                  one line per replica: status, role, view, op, commit\n"
                 "options:\n"
                 "  --timeout-ms MS         deadline per operation, or for all status answers (default 5000)\n"
                 "exit codes: 0 ok, 1 not found / mismatch, 2 usage, 3 failed (timeout, too large...)\n");
}

struct arguments {
    std::vector<platform::socket_address> replicas;
    std::uint64_t cluster = 0;
    std::uint64_t timeout_ms = 5000;
    std::vector<std::string> command;  // name and operands
    std::uint64_t concurrency = 16;
    std::uint64_t requests = 10000;
    std::uint64_t value_size = 100;
    std::uint64_t slow_ms = 0;      // 0: off
    std::uint64_t keys = 100000;    // bench keys are bench-0 .. bench-(keys-1)
    std::uint64_t progress_ms = 0;  // 0: off
};

std::uint64_t random_seed() {
    std::random_device device;
    return (std::uint64_t{device()} << 32) ^ device();
}

int parse_arguments(int argc, char** argv, arguments& out) {
    bool have_replicas = false, have_cluster = false;
    int i = 1;
    for (; i < argc; i++) {
        const std::string_view flag = argv[i];
        if (flag == "--help" || flag == "-h") {
            usage(stdout);
            return 0;
        }
        if (!flag.starts_with("--")) break;  // the command
        if (flag != "--replicas" && flag != "--cluster" && flag != "--timeout-ms") {
            std::fprintf(stderr, "kv-client: unknown option '%s'\n", argv[i]);
            usage(stderr);
            return kv::cli::exit_usage;
        }
        if (i + 1 >= argc) {
            std::fprintf(stderr, "kv-client: %s needs a value\n", argv[i]);
            return kv::cli::exit_usage;
        }
        const std::string_view value = argv[++i];
        if (flag == "--replicas") {
            std::string error;
            if (!kv::cli::parse_replicas(value, out.replicas, error)) {
                std::fprintf(stderr, "kv-client: --replicas: %s\n", error.c_str());
                return kv::cli::exit_usage;
            }
            have_replicas = true;
        } else if (flag == "--cluster") {
            if (!kv::cli::parse_u64(value, 0, UINT32_MAX, out.cluster)) {
                std::fprintf(stderr, "kv-client: --cluster must be a number 0..4294967295, got '%s'\n", argv[i]);
                return kv::cli::exit_usage;
            }
            have_cluster = true;
        } else {
            if (!kv::cli::parse_u64(value, 1, 3'600'000, out.timeout_ms)) {
                std::fprintf(stderr, "kv-client: --timeout-ms must be a number 1..3600000, got '%s'\n", argv[i]);
                return kv::cli::exit_usage;
            }
        }
    }
    if (!have_replicas || !have_cluster) {
        std::fprintf(stderr, "kv-client: --replicas and --cluster are required\n");
        usage(stderr);
        return kv::cli::exit_usage;
    }
    if (i >= argc) {
        std::fprintf(stderr, "kv-client: missing command\n");
        usage(stderr);
        return kv::cli::exit_usage;
    }
    const std::string_view name = argv[i];
    out.command.assign(argv + i, argv + argc);
    const std::size_t operands = out.command.size() - 1;
    const auto expect = [&](std::size_t count, const char* shape) {
        if (operands == count) return true;
        std::fprintf(stderr, "kv-client: usage: %s\n", shape);
        return false;
    };
    if (name == "put") return expect(2, "put KEY VALUE") ? -1 : kv::cli::exit_usage;
    if (name == "get") return expect(1, "get KEY") ? -1 : kv::cli::exit_usage;
    if (name == "del") return expect(1, "del KEY") ? -1 : kv::cli::exit_usage;
    if (name == "cas") return expect(3, "cas KEY EXPECTED NEW") ? -1 : kv::cli::exit_usage;
    if (name == "status") return expect(0, "status") ? -1 : kv::cli::exit_usage;
    if (name == "bench") {
        for (std::size_t j = 1; j < out.command.size(); j++) {
            const std::string& flag = out.command[j];
            std::uint64_t* target = flag == "--concurrency"   ? &out.concurrency
                                    : flag == "--requests"    ? &out.requests
                                    : flag == "--value-size"  ? &out.value_size
                                    : flag == "--slow-ms"     ? &out.slow_ms
                                    : flag == "--keys"        ? &out.keys
                                    : flag == "--progress-ms" ? &out.progress_ms
                                                              : nullptr;
            if (target == nullptr) {
                std::fprintf(stderr, "kv-client: bench: unknown option '%s'\n", flag.c_str());
                return kv::cli::exit_usage;
            }
            if (j + 1 >= out.command.size()) {
                std::fprintf(stderr, "kv-client: bench: %s needs a value\n", flag.c_str());
                return kv::cli::exit_usage;
            }
            const std::uint64_t min = flag == "--value-size" ? 0 : 1;
            const std::uint64_t max = flag == "--concurrency"                          ? 1024
                                      : flag == "--requests"                           ? 100'000'000
                                      : flag == "--keys"                               ? 100'000'000
                                      : flag == "--slow-ms" || flag == "--progress-ms" ? 3'600'000
                                                                                       : kv::value_size_max;
            if (!kv::cli::parse_u64(out.command[++j], min, max, *target)) {
                std::fprintf(stderr, "kv-client: bench: %s must be a number %llu..%llu, got '%s'\n", flag.c_str(),
                             static_cast<unsigned long long>(min), static_cast<unsigned long long>(max),
                             out.command[j].c_str());
                return kv::cli::exit_usage;
            }
        }
        return -1;
    }
    std::fprintf(stderr, "kv-client: unknown command '%s'\n", argv[i]);
    usage(stderr);
    return kv::cli::exit_usage;
}

/// The loop, the bus and the client, ticked every tick_ms.
struct session {
    platform::event_loop loop;
    std::unique_ptr<platform::tcp_message_bus> bus;
    std::unique_ptr<vsr::xoshiro256> random;
    std::unique_ptr<client_type> client;
    platform::completion tick_completion;
    bool tick_pending = false;
    std::size_t replica_count = 0;
    std::uint64_t process_id = 0;
    /// Receives status_reply messages (which the VSR client does not take).
    std::function<void(const vsr::header&, std::span<const std::uint8_t>)> on_status_reply;

    bool open(const arguments& args, std::uint32_t sessions) {
        std::string error;
        if (!loop.open(error)) {
            std::fprintf(stderr, "kv-client: event loop: %s\n", error.c_str());
            return false;
        }
        const std::uint64_t seed = random_seed();
        replica_count = args.replicas.size();
        platform::tcp_bus_options options;
        options.cluster = static_cast<std::uint32_t>(args.cluster);
        options.replica_addresses = args.replicas;
        options.role = platform::bus_role::client;
        process_id = seed | 1;
        options.client_process_id = process_id;
        options.random_seed = seed ^ 0x9e3779b97f4a7c15ULL;
        options.send_queue_messages_max = std::max<std::size_t>(256, 2 * std::size_t{sessions});
        options.on_message = [this](std::span<const std::uint8_t> message) {
            // The bus delivers whole, checked messages only.
            if (message.size() >= vsr::header_size &&
                message[10] == static_cast<std::uint8_t>(vsr::command::status_reply)) {
                if (on_status_reply)
                    on_status_reply(vsr::decode_header_fields(message.data()), vsr::message_body(message));
                return;
            }
            if (client) client->on_message(message);
        };
        bus = std::make_unique<platform::tcp_message_bus>(loop, std::move(options));
        platform::io_error io = platform::io_error::none;
        if (!bus->start(io)) {
            std::fprintf(stderr, "kv-client: bus: %s\n", std::string(platform::to_string(io)).c_str());
            return false;
        }
        random = std::make_unique<vsr::xoshiro256>(seed);
        vsr::client_options client_options;
        client_options.cluster = static_cast<std::uint32_t>(args.cluster);
        client_options.replica_count = static_cast<std::uint8_t>(args.replicas.size());
        client_options.sessions = sessions;
        client_options.tick_ms = tick_ms;
        client_options.deadline_ms = static_cast<std::uint32_t>(args.timeout_ms);
        client = std::make_unique<client_type>(client_options, *bus, *random);
        tick_completion.callback = &on_tick;
        tick_completion.context = this;
        tick_pending = true;
        loop.timeout(tick_ms * ms, tick_completion);
        return true;
    }

    static void on_tick(platform::completion& c) {
        auto* self = static_cast<session*>(c.context);
        self->tick_pending = false;
        if (c.error == platform::io_error::cancelled) return;
        self->client->tick();
        self->tick_pending = true;
        self->loop.timeout(tick_ms * ms, self->tick_completion);
    }

    /// Gives the connections a moment, so the first send reaches the primary instead of waiting
    /// for the retry. Returns early once every replica is connected.
    void wait_connected(std::uint64_t limit_ns) {
        const std::uint64_t until = loop.monotonic_ns() + limit_ns;
        while (loop.monotonic_ns() < until && bus->status().connected_replicas.size() < replica_count) {
            loop.run_once(5 * ms);
        }
    }

    void close() {
        if (tick_pending) loop.cancel(tick_completion);
        for (int i = 0; i < 1000 && tick_pending; i++) loop.run_once(0);
        client.reset();
        if (bus) {
            bus->shutdown();
            bus.reset();
        }
    }
};

std::vector<std::uint8_t> encode(const std::vector<std::string>& command) {
    kv::operation op;
    const std::string& name = command[0];
    op.key = command[1];
    if (name == "put") {
        op.op_kind = kv::kind::put;
        op.value = command[2];
    } else if (name == "get") {
        op.op_kind = kv::kind::get;
    } else if (name == "del") {
        op.op_kind = kv::kind::del;
    } else {
        op.op_kind = kv::kind::cas;
        op.expected = command[2];
        op.value = command[3];
    }
    std::vector<std::uint8_t> bytes;
    kv::encode_operation(op, bytes);
    return bytes;
}

int run_command(const arguments& args) {
    const auto& command = args.command;
    if (command[1].empty() || command[1].size() > kv::key_size_max) {
        std::fprintf(stderr, "kv-client: the key must be 1..%zu bytes\n", kv::key_size_max);
        return kv::cli::exit_usage;
    }
    for (std::size_t i = 2; i < command.size(); i++) {
        if (command[i].size() > kv::value_size_max) {
            std::fprintf(stderr, "kv-client: values are at most %zu bytes (too large)\n", kv::value_size_max);
            return kv::cli::exit_usage;
        }
    }
    session s;
    if (!s.open(args, 1)) return exit_failed;
    s.wait_connected(300 * ms);
    const std::vector<std::uint8_t> operation = encode(command);
    bool done = false;
    int code = exit_failed;
    const auto submitted = s.client->submit(operation, [&](const vsr::client_result& result) {
        done = true;
        if (result.status != vsr::result_status::ok) {
            std::fprintf(
                stderr, "kv-client: %s failed: %s%s\n", command[0].c_str(), vsr::to_string(result.status),
                result.status == vsr::result_status::timeout || result.status == vsr::result_status::session_evicted
                    ? " (the operation may or may not have executed)"
                    : "");
            code = exit_failed;
            return;
        }
        const kv::result r = kv::decode_result(result.body);
        switch (r.result_status) {
            case kv::status::ok:
                if (command[0] == "get")
                    std::printf("%.*s\n", static_cast<int>(r.value.size()), r.value.data());
                else
                    std::printf("OK\n");
                code = 0;
                break;
            case kv::status::not_found:
                std::printf("not found\n");
                code = 1;
                break;
            case kv::status::mismatch:
                std::printf("mismatch\n");
                code = 1;
                break;
            case kv::status::invalid:
                std::fprintf(stderr, "kv-client: the cluster rejected the operation as invalid\n");
                code = exit_failed;
                break;
        }
    });
    if (submitted != vsr::submit_error::none) {
        std::fprintf(stderr, "kv-client: cannot submit: %s\n",
                     submitted == vsr::submit_error::too_large ? "too large" : "queue full");
        s.close();
        return exit_failed;
    }
    // The client's deadline reports a timeout; this guard only protects against a stuck loop.
    const std::uint64_t guard = s.loop.monotonic_ns() + (args.timeout_ms + 2000) * ms;
    while (!done && s.loop.monotonic_ns() < guard) s.loop.run_once(tick_ms * ms);
    if (!done) std::fprintf(stderr, "kv-client: %s failed: timeout\n", command[0].c_str());
    s.close();
    return code;
}

/// Asks every replica for its status (resending every 200 ms until it answers or the timeout)
/// and prints one line per replica.
int run_status(const arguments& args) {
    session s;
    if (!s.open(args, 1)) return exit_failed;
    const std::size_t count = args.replicas.size();
    std::vector<bool> answered(count, false);
    std::vector<vsr::status_body> bodies(count);
    std::size_t answers = 0;
    const std::uint64_t asker = s.process_id;
    s.on_status_reply = [&](const vsr::header& h, std::span<const std::uint8_t> body) {
        vsr::status_body b;
        if (h.client_id != asker || h.sender >= count || answered[h.sender]) return;
        if (!vsr::decode_status_body(body, b) || b.replica != h.sender) return;
        answered[h.sender] = true;
        bodies[h.sender] = b;
        answers++;
    };
    std::vector<std::uint8_t> message;
    const auto ask_missing = [&] {
        for (std::size_t r = 0; r < count; r++) {
            if (answered[r]) continue;
            vsr::header h;
            h.cmd = vsr::command::status_request;
            h.sender = vsr::address_client;
            h.target = static_cast<std::uint8_t>(r);
            h.cluster = static_cast<std::uint32_t>(args.cluster);
            h.client_id = asker;
            vsr::encode_message(h, {}, message);
            s.bus->send_to_replica(static_cast<std::uint8_t>(r), message);
        }
    };
    const std::uint64_t deadline = s.loop.monotonic_ns() + args.timeout_ms * ms;
    s.wait_connected(std::min<std::uint64_t>(300, args.timeout_ms) * ms);
    std::uint64_t next_ask = 0;
    while (answers < count && s.loop.monotonic_ns() < deadline) {
        if (s.loop.monotonic_ns() >= next_ask) {
            ask_missing();
            next_ask = s.loop.monotonic_ns() + 200 * ms;
        }
        s.loop.run_once(5 * ms);
    }
    s.close();
    for (std::size_t r = 0; r < count; r++) {
        if (!answered[r]) {
            std::printf("replica=%zu unreachable\n", r);
            continue;
        }
        const vsr::status_body& b = bodies[r];
        // Values of vsr::replica_status (wire.hpp, status_body).
        constexpr const char* names[] = {"normal", "view_change", "recovering"};
        const char* status = b.status < std::size(names) ? names[b.status] : "unknown";
        std::printf("replica=%zu status=%s role=%s view=%llu op=%llu commit=%llu executed=%llu%s\n", r, status,
                    b.is_primary != 0 ? "primary" : "backup", static_cast<unsigned long long>(b.view),
                    static_cast<unsigned long long>(b.op), static_cast<unsigned long long>(b.commit),
                    static_cast<unsigned long long>(b.commit_executed), b.syncing != 0 ? " syncing" : "");
    }
    return answers > 0 ? 0 : exit_failed;
}

struct bench_state {
    session* s = nullptr;
    std::uint64_t requests = 0;
    std::uint64_t submitted = 0;
    std::uint64_t completed = 0;
    std::uint64_t failed = 0;
    std::string value;
    std::vector<std::uint64_t> latencies_ns;
    std::vector<std::uint8_t> operation;
    std::uint64_t slow_ns = 0;  // 0: off
    std::uint64_t keys = 100000;

    static std::uint64_t wall_ns() {
        return static_cast<std::uint64_t>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
                .count());
    }

    void submit_next() {
        if (submitted >= requests) return;
        const std::uint64_t number = submitted++;
        const std::string key = "bench-" + std::to_string(number % keys);
        kv::operation op{.op_kind = kv::kind::put, .key = key, .value = value, .expected = {}};
        kv::encode_operation(op, operation);
        const std::uint64_t start = s->loop.monotonic_ns();
        const std::uint64_t start_wall = slow_ns != 0 ? wall_ns() : 0;
        const auto error = s->client->submit(operation, [this, start, start_wall](const vsr::client_result& result) {
            completed++;
            const std::uint64_t latency = s->loop.monotonic_ns() - start;
            if (result.status == vsr::result_status::ok) {
                latencies_ns.push_back(latency);
            } else {
                failed++;
            }
            if (slow_ns != 0 && latency >= slow_ns) {
                std::printf("slow request: start_ns %llu end_ns %llu latency_us %llu status %s\n",
                            static_cast<unsigned long long>(start_wall), static_cast<unsigned long long>(wall_ns()),
                            static_cast<unsigned long long>(latency / 1000), vsr::to_string(result.status));
                std::fflush(stdout);
            }
            submit_next();
        });
        if (error != vsr::submit_error::none) {
            completed++;
            failed++;
        }
    }
};

int run_bench(const arguments& args) {
    session s;
    if (!s.open(args, static_cast<std::uint32_t>(args.concurrency))) return exit_failed;
    s.wait_connected(1000 * ms);
    bench_state b;
    b.s = &s;
    b.requests = args.requests;
    b.value.assign(args.value_size, 'v');
    b.slow_ns = args.slow_ms * ms;
    b.keys = args.keys;
    b.latencies_ns.reserve(args.requests);
    const std::uint64_t start = s.loop.monotonic_ns();
    const std::uint64_t progress_ns = args.progress_ms * ms;
    std::uint64_t next_progress = start + progress_ns;
    for (std::uint64_t i = 0; i < args.concurrency; i++) b.submit_next();
    while (b.completed < b.requests) {
        s.loop.run_once(tick_ms * ms);
        if (progress_ns != 0 && s.loop.monotonic_ns() >= next_progress) {
            next_progress += progress_ns;
            std::printf("progress elapsed_ms %llu completed %llu ok %zu failed %llu\n",
                        static_cast<unsigned long long>((s.loop.monotonic_ns() - start) / ms),
                        static_cast<unsigned long long>(b.completed), b.latencies_ns.size(),
                        static_cast<unsigned long long>(b.failed));
            std::fflush(stdout);
        }
    }
    const std::uint64_t elapsed = std::max<std::uint64_t>(1, s.loop.monotonic_ns() - start);
    s.close();
    auto& l = b.latencies_ns;
    std::sort(l.begin(), l.end());
    const auto percentile = [&](double p) -> std::uint64_t {
        if (l.empty()) return 0;
        const auto index = static_cast<std::size_t>(p * static_cast<double>(l.size() - 1));
        return l[index] / 1000;
    };
    const double seconds = static_cast<double>(elapsed) / 1e9;
    std::printf("requests %llu ok %zu failed %llu concurrency %llu value-size %llu\n",
                static_cast<unsigned long long>(b.requests), l.size(), static_cast<unsigned long long>(b.failed),
                static_cast<unsigned long long>(args.concurrency), static_cast<unsigned long long>(args.value_size));
    std::printf("elapsed %.3f s, %.0f ops/s\n", seconds, static_cast<double>(l.size()) / seconds);
    std::printf("latency us: p50 %llu p99 %llu max %llu\n", static_cast<unsigned long long>(percentile(0.50)),
                static_cast<unsigned long long>(percentile(0.99)),
                static_cast<unsigned long long>(l.empty() ? 0 : l.back() / 1000));
    return b.failed == 0 ? 0 : exit_failed;
}

}  // namespace

int main(int argc, char** argv) {
    platform::ignore_broken_pipes();
    arguments args;
    if (const int code = parse_arguments(argc, argv, args); code >= 0) return code;
    if (args.command[0] == "status") return run_status(args);
    return args.command[0] == "bench" ? run_bench(args) : run_command(args);
}
