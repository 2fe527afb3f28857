// Committed KV operations per second for a 3-replica cluster in one process.
//
// Three vsr::basic_replica and one or more vsr::basic_client exchange messages over an in-memory
// loopback bus. Sending appends a copy of the message to the destination's queue (buffers are
// reused, so the steady state does not allocate in the bus); the driver loop delivers queued
// messages round-robin over the destinations, never from inside send. Every client session keeps
// one KV put (16-byte key, 64-byte value) outstanding and submits the next one from the
// completion callback, so the primary always has a queue to batch from. Keys cycle through
// `keys` distinct values (default 65536); the untimed warm-up writes each once, so timed puts
// overwrite.
//
// Time: the replicas and clients read a manual clock that the driver advances by tick_ms and
// ticks everybody whenever tick_ms of wall time has passed (or immediately when the network goes
// quiet, so retries can fire). Nothing is lost in the loopback network, so ticks only send
// heartbeats.
//
// Checkpoints are on, with the default configuration: every checkpoint_interval ops the log may
// drop what the checkpoint covers, and it never holds more than log_entries_max entries, so one
// cluster runs for the whole benchmark in bounded memory. (Diskless replicas build no image
// unless a lagging replica asks for one, and none lags here.)
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "kv_state_machine.hpp"
#include "vsr/client.hpp"
#include "vsr/replica.hpp"

namespace {

constexpr std::uint8_t replica_count = 3;
constexpr std::size_t key_size = 16;
constexpr std::size_t value_size = 64;
/// Completed operations per benchmark iteration.
constexpr std::uint64_t ops_per_iteration = 4096;
/// Consecutive quiet rounds (each advancing the clock one tick) before giving up.
constexpr std::uint32_t quiet_rounds_max = 10'000;

/// Per-destination queue of message copies. Buffers are kept (and their capacity reused) after
/// clear().
class message_queue {
public:
    void push(std::span<const std::uint8_t> message) {
        if (count_ == buffers_.size()) buffers_.emplace_back();
        buffers_[count_++].assign(message.begin(), message.end());
    }
    bool empty() const noexcept { return count_ == 0; }
    std::size_t size() const noexcept { return count_; }
    std::span<const std::uint8_t> operator[](std::size_t i) const noexcept { return buffers_[i]; }
    void clear() noexcept { count_ = 0; }
    void swap(message_queue& other) noexcept {
        buffers_.swap(other.buffers_);
        std::swap(count_, other.count_);
    }

private:
    std::vector<std::vector<std::uint8_t>> buffers_;
    std::size_t count_ = 0;
};

/// Destinations [0, replica_count) are replicas, then one per client.
struct loopback_network {
    std::vector<message_queue> queues;
    std::uint32_t single_client_node = 0;  // when there is exactly one client, no lookup needed
    bool single_client = true;
    std::unordered_map<std::uint64_t, std::uint32_t> client_nodes;
    std::uint64_t messages_sent = 0;
};

class loopback_bus {
public:
    explicit loopback_bus(loopback_network& network) noexcept : network_(network) {}

    void send_to_replica(std::uint8_t replica, std::span<const std::uint8_t> message) {
        if (replica >= replica_count) return;
        ++network_.messages_sent;
        network_.queues[replica].push(message);
    }

    void send_to_client(std::uint64_t client_id, std::span<const std::uint8_t> message) {
        std::uint32_t node = network_.single_client_node;
        if (!network_.single_client) {
            const auto it = network_.client_nodes.find(client_id);
            if (it == network_.client_nodes.end()) return;
            node = it->second;
        }
        ++network_.messages_sent;
        network_.queues[node].push(message);
    }

private:
    loopback_network& network_;
};
static_assert(vsr::message_bus<loopback_bus>);

/// Time source advanced explicitly by the driver.
struct manual_clock {
    std::uint64_t now_ns = 1'700'000'000ULL * 1'000'000'000ULL;
    std::uint64_t monotonic_ns() const noexcept { return now_ns; }
    std::uint64_t realtime_ns() const noexcept { return now_ns; }
};
static_assert(vsr::time_source<manual_clock>);

using replica_type = vsr::basic_replica<kv::state_machine, loopback_bus, manual_clock, vsr::xoshiro256>;
using client_type = vsr::basic_client<loopback_bus, vsr::xoshiro256>;

struct cluster_shape {
    std::uint32_t batch_requests_max = 4096;
    std::uint32_t pipeline_max = 8;
    std::uint32_t sessions = 1024;  // per client
    std::uint32_t clients = 1;
    std::uint64_t keys = 1 << 16;  // distinct keys, written round-robin
};

/// Sizes of the prepares (batches) created during a measurement.
struct batch_stats {
    std::uint64_t prepares = 0;
    std::uint64_t requests = 0;
    std::uint64_t single = 0;  // prepares holding one request
    std::uint32_t max = 0;
};

class loopback_cluster {
public:
    explicit loopback_cluster(const cluster_shape& shape) : keys_(shape.keys), bus_(network_) {
        const std::uint32_t sessions_total = shape.sessions * shape.clients;
        config_.cluster = 0xB0B;
        config_.replica_count = replica_count;
        config_.pipeline_max = shape.pipeline_max;
        config_.batch_requests_max = shape.batch_requests_max;
        config_.clients_max = std::max<std::uint32_t>(1024, sessions_total);
        config_.request_queue_max = std::max<std::uint32_t>(8192, sessions_total);

        network_.queues.resize(replica_count + shape.clients);
        network_.single_client = shape.clients == 1;
        network_.single_client_node = replica_count;

        for (std::uint8_t r = 0; r < replica_count; ++r) {
            randoms_.push_back(std::make_unique<vsr::xoshiro256>(1000 + r));
            replicas_.push_back(std::make_unique<replica_type>(config_, r, bus_, clock_, *randoms_.back(), false));
        }
        vsr::client_options options;
        options.cluster = config_.cluster;
        options.replica_count = config_.replica_count;
        options.message_size_max = config_.message_size_max;
        options.sessions = shape.sessions;
        options.queue_max = shape.sessions;
        options.tick_ms = config_.tick_ms;
        for (std::uint32_t c = 0; c < shape.clients; ++c) {
            randoms_.push_back(std::make_unique<vsr::xoshiro256>(2000 + c));
            clients_.push_back(std::make_unique<client_type>(options, bus_, *randoms_.back()));
            for (const auto id : clients_.back()->client_ids()) network_.client_nodes.emplace(id, replica_count + c);
        }
        value_.assign(value_size, 'v');
        for (std::uint32_t c = 0; c < shape.clients; ++c) {
            for (std::uint32_t s = 0; s < shape.sessions; ++s) submit_next(c);
        }
        last_tick_ = std::chrono::steady_clock::now();
    }

    /// Delivers messages until `completed() >= target`. False if the cluster stopped making
    /// progress.
    bool run_until(std::uint64_t target) {
        std::uint32_t quiet_rounds = 0;
        while (completed_ < target) {
            bool delivered = false;
            for (std::uint32_t node = 0; node < network_.queues.size(); ++node) {
                message_queue& queue = network_.queues[node];
                if (queue.empty()) continue;
                delivered = true;
                draining_.swap(queue);  // sends during delivery go to the (now empty) queue
                for (std::size_t i = 0; i < draining_.size(); ++i) deliver(node, draining_[i]);
                draining_.clear();
            }
            if (delivered) {
                quiet_rounds = 0;
                const auto now = std::chrono::steady_clock::now();
                if (now - last_tick_ >= std::chrono::milliseconds(config_.tick_ms)) {
                    last_tick_ = now;
                    tick_all();
                }
            } else {
                if (++quiet_rounds > quiet_rounds_max) return false;
                tick_all();
            }
        }
        return true;
    }

    std::uint64_t completed() const noexcept { return completed_; }
    std::uint64_t failed() const noexcept { return failed_ + submit_errors_; }
    std::uint64_t messages_sent() const noexcept { return network_.messages_sent; }
    /// Prepares created so far: the longest log (nothing is ever truncated here).
    std::uint64_t prepares() const noexcept {
        std::uint64_t op = 0;
        for (const auto& r : replicas_) op = std::max(op, r->op());
        return op;
    }
    /// Adds the sizes of the primary's prepares in (from, to] to `stats`.
    void scan_batches(std::uint64_t from, std::uint64_t to, batch_stats& stats) const {
        for (const auto& r : replicas_) {
            if (!r->is_primary() || r->op() < to) continue;
            for (std::uint64_t op = from + 1; op <= to; ++op) {
                const std::uint32_t count = vsr::read_entry_header(r->log().entry(op)).request_count;
                ++stats.prepares;
                stats.requests += count;
                stats.single += count == 1;
                stats.max = std::max(stats.max, count);
            }
            return;
        }
    }
    std::uint64_t client_retries() const noexcept {
        std::uint64_t retries = 0;
        for (const auto& c : clients_) retries += c->counters().retries;
        return retries;
    }
    /// The most entries a replica holds now, and the base of its log (what the checkpoints let
    /// it drop): bounded by the configuration whatever the number of ops run.
    std::uint64_t log_entries() const noexcept {
        std::uint64_t most = 0;
        for (const auto& r : replicas_) most = std::max<std::uint64_t>(most, r->log().size());
        return most;
    }
    std::uint64_t log_base() const noexcept {
        std::uint64_t lowest = ~std::uint64_t{0};
        for (const auto& r : replicas_) lowest = std::min(lowest, r->log().base());
        return lowest;
    }
    std::uint64_t view_changes() const noexcept {
        std::uint64_t count = 0;
        for (const auto& r : replicas_) count += r->counters().view_changes_started;
        return count;
    }

private:
    void deliver(std::uint32_t node, std::span<const std::uint8_t> message) {
        if (node < replica_count) {
            replicas_[node]->on_message(message);
        } else {
            clients_[node - replica_count]->on_message(message);
        }
    }

    void tick_all() {
        clock_.now_ns += std::uint64_t{config_.tick_ms} * 1'000'000;
        for (auto& r : replicas_) r->tick();
        for (auto& c : clients_) c->tick();
    }

    /// Submits the next put for client `c`: key "k" + 15 decimal digits, 64-byte value.
    void submit_next(std::uint32_t c) {
        const std::uint64_t sequence = next_key_++;
        std::uint64_t index = sequence % keys_;
        char key[key_size];
        key[0] = 'k';
        for (std::size_t i = key_size - 1; i >= 1; --i) {
            key[i] = static_cast<char>('0' + index % 10);
            index /= 10;
        }
        for (std::size_t i = 0; i < 8; ++i) value_[i] = static_cast<char>('a' + ((sequence >> (4 * i)) & 0xF));
        kv::operation op;
        op.op_kind = kv::kind::put;
        op.key = std::string_view(key, key_size);
        op.value = value_;
        kv::encode_operation(op, operation_);
        const auto error =
            clients_[c]->submit(operation_, [this, c](const vsr::client_result& result) { on_complete(c, result); });
        if (error != vsr::submit_error::none) ++submit_errors_;
    }

    void on_complete(std::uint32_t c, const vsr::client_result& result) {
        ++completed_;
        if (result.status != vsr::result_status::ok) ++failed_;
        submit_next(c);
    }

    std::uint64_t keys_;
    vsr::config config_;
    loopback_network network_;
    loopback_bus bus_;
    manual_clock clock_;
    std::vector<std::unique_ptr<vsr::xoshiro256>> randoms_;
    std::vector<std::unique_ptr<replica_type>> replicas_;
    std::vector<std::unique_ptr<client_type>> clients_;
    message_queue draining_;
    std::chrono::steady_clock::time_point last_tick_;

    std::string value_;
    std::vector<std::uint8_t> operation_;
    std::uint64_t next_key_ = 0;
    std::uint64_t completed_ = 0;
    std::uint64_t failed_ = 0;
    std::uint64_t submit_errors_ = 0;
};

/// Builds a cluster and runs it until every session has registered and completed a few
/// operations and every key has been written once, so the pipeline is in its steady state and
/// the timed puts overwrite existing keys.
std::unique_ptr<loopback_cluster> warm_cluster(const cluster_shape& shape) {
    auto cluster = std::make_unique<loopback_cluster>(shape);
    const std::uint64_t warmup =
        std::max({std::uint64_t{4} * shape.sessions * shape.clients, std::uint64_t{4096}, shape.keys});
    if (!cluster->run_until(warmup)) return nullptr;
    return cluster;
}

void run_loopback(benchmark::State& state, const cluster_shape& shape) {
    auto cluster = warm_cluster(shape);
    if (!cluster) {
        state.SkipWithError("cluster made no progress during warm-up");
        return;
    }
    std::uint64_t ops = 0, messages = 0, retries = 0, view_changes = 0, failed = 0;
    batch_stats batches;
    for (auto _ : state) {
        const std::uint64_t ops_before = cluster->completed();
        const std::uint64_t prepares_before = cluster->prepares();
        const std::uint64_t messages_before = cluster->messages_sent();
        if (!cluster->run_until(ops_before + ops_per_iteration)) {
            state.SkipWithError("cluster stopped making progress");
            return;
        }
        const std::uint64_t done = cluster->completed() - ops_before;
        ops += done;
        cluster->scan_batches(prepares_before, cluster->prepares(), batches);
        messages += cluster->messages_sent() - messages_before;
    }
    retries += cluster->client_retries();
    view_changes += cluster->view_changes();
    failed += cluster->failed();
    if (failed != 0) {
        state.SkipWithError("operations failed (eviction or submit error)");
        return;
    }
    state.counters["ops/s"] = benchmark::Counter(static_cast<double>(ops), benchmark::Counter::kIsRate);
    const auto ratio = [](std::uint64_t a, std::uint64_t b) {
        return b == 0 ? 0.0 : static_cast<double>(a) / static_cast<double>(b);
    };
    state.counters["ops/prepare"] = ratio(batches.requests, batches.prepares);
    state.counters["max_batch"] = static_cast<double>(batches.max);
    state.counters["single%"] = 100.0 * ratio(batches.single, batches.prepares);
    state.counters["msgs/op"] = ratio(messages, ops);
    state.counters["retries"] = static_cast<double>(retries);
    state.counters["view_changes"] = static_cast<double>(view_changes);
    state.counters["log_entries"] = static_cast<double>(cluster->log_entries());
    state.counters["log_base"] = static_cast<double>(cluster->log_base());
    state.SetItemsProcessed(static_cast<std::int64_t>(ops));
}

cluster_shape shape_from(const benchmark::State& state) {
    cluster_shape shape;
    shape.batch_requests_max = static_cast<std::uint32_t>(state.range(0));
    shape.pipeline_max = static_cast<std::uint32_t>(state.range(1));
    shape.sessions = static_cast<std::uint32_t>(state.range(2));
    shape.keys = static_cast<std::uint64_t>(state.range(3));
    return shape;
}

/// (a) Batch size, pipeline 8.
void BM_loopback_batch(benchmark::State& state) { run_loopback(state, shape_from(state)); }
BENCHMARK(BM_loopback_batch)
    ->ArgNames({"batch", "pipeline", "sessions", "keys"})
    ->ArgsProduct({{1, 8, 64, 512, 4096}, {8}, {1024}, {1 << 16}})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

/// (b) Pipeline depth, batch up to 4096.
void BM_loopback_pipeline(benchmark::State& state) { run_loopback(state, shape_from(state)); }
BENCHMARK(BM_loopback_pipeline)
    ->ArgNames({"batch", "pipeline", "sessions", "keys"})
    ->ArgsProduct({{4096}, {1, 2, 4, 8}, {1024}, {1 << 16}})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

/// (c) Outstanding requests (one client, one request per session).
void BM_loopback_sessions(benchmark::State& state) { run_loopback(state, shape_from(state)); }
BENCHMARK(BM_loopback_sessions)
    ->ArgNames({"batch", "pipeline", "sessions", "keys"})
    ->ArgsProduct({{4096}, {8}, {1, 16, 128, 1024, 4096}, {1 << 16}})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

/// (d) Key space: the KV map's size (and cache footprint) on each replica.
void BM_loopback_keys(benchmark::State& state) { run_loopback(state, shape_from(state)); }
BENCHMARK(BM_loopback_keys)
    ->ArgNames({"batch", "pipeline", "sessions", "keys"})
    ->ArgsProduct({{4096}, {8}, {1024}, {1 << 10, 1 << 16, 1 << 18}})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
