#include "sim/simulator.hpp"

#include <algorithm>
#include <array>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <sstream>
#include <unordered_map>
#include <vector>

#include "kv_state_machine.hpp"
#include "sim/bug_names.hpp"
#include "sim/fault_profile.hpp"
#include "sim/linearizability.hpp"
#include "sim/network.hpp"
#include "sim/replica_cluster.hpp"
#include "sim/sim_storage.hpp"
#include "vsr/client.hpp"
#include "vsr/replica.hpp"

namespace sim {
namespace {

constexpr std::size_t trace_tail_size = 48;

class kv_simulation;
using sim_bus = sim::sim_bus<kv_simulation>;

using sim_replica = vsr::basic_replica<kv::state_machine, sim_bus, sim_clock, vsr::xoshiro256, sim_storage>;
using sim_client = vsr::basic_client<sim_bus, vsr::xoshiro256>;

enum class event_kind : std::uint8_t {
    deliver,
    replica_tick,
    client_tick,
    fault_step,
    restart,
    resume,
    heal_partition,
    heal_all,
    watchdog,
    flush,         // a replica's writes become durable and its held messages leave
    cluster_crash  // persistent mode: every replica loses power at once
};

using event = sim_event<event_kind>;  // a: the node; b: the message buffer of a delivery

struct trace_record {
    std::uint64_t time = 0;
    event_kind kind = event_kind::deliver;
    std::uint32_t from = 0, to = 0;
    vsr::header h{};
};

inline std::uint64_t mix_checksum(std::uint64_t hash, std::uint64_t value) {
    return vsr::checksum({reinterpret_cast<const std::uint8_t*>(&value), 8}, hash);
}

struct replica_node {
    sim_bus bus;
    sim_clock clock;
    std::unique_ptr<vsr::xoshiro256> random;
    std::unique_ptr<sim_replica> replica;  // null while crashed
    std::unique_ptr<vsr::xoshiro256> disk_random;
    sim_storage storage;  // survives crashes (persistent mode), unless the disk is lost
    bool flush_scheduled = false;
    bool down_in_cluster_crash = false;  // not counted against the crash budget: its disk is kept
    bool paused = false;
    std::uint64_t tick_interval_ns = 0;
    std::uint64_t checked_executed = 0;  // safety checker progress
    std::uint64_t last_view = 0;
    std::uint64_t checked_primary_view = 0;
    std::uint64_t checked_checkpoint_op = 0;
};

struct client_node {
    sim_bus bus;
    std::unique_ptr<vsr::xoshiro256> random;
    std::unique_ptr<sim_client> client;
    std::uint32_t sessions = 1;
    std::uint32_t outstanding = 0;
    std::uint64_t next_submit_ns = 0;
    std::uint64_t values_written = 0;
    bool reads_only = false;             // never blocks its own reads behind a write a deposed primary holds
    std::vector<std::string> last_seen;  // per key: a value this client saw, for cas
};

class kv_simulation {
public:
    explicit kv_simulation(const simulation_options& options)
        : options_(options), random_(options.seed), extra_random_(options.seed ^ 0xD1E5D1E5D1E5D1E5ULL) {}

    simulation_result run();

    void send(std::uint32_t from, std::uint32_t to, std::span<const std::uint8_t> message);
    std::uint32_t client_node_of(std::uint64_t client_id) const {
        const auto it = client_owner_.find(client_id);
        return it == client_owner_.end() ? UINT32_MAX : it->second;
    }
    std::uint32_t replica_count() const { return options_.replicas; }

    // replica_cluster hooks
    std::uint32_t impaired_replicas() const;
    bool replica_up(std::uint32_t index) const { return replicas_[index].replica != nullptr; }
    bool replica_paused(std::uint32_t index) const { return replicas_[index].paused; }
    void crash_replica(std::uint32_t index);
    void crash_replica(std::uint32_t index, bool may_lose_disk);
    bool disk_may_be_lost(std::uint32_t index) const;
    std::uint64_t partition_side(std::uint64_t side);
    void partitioned(std::uint64_t side);
    void clogged() { ++result_.clogs; }
    void healed() {}
    void resuming(std::uint32_t index) {
        record_trace(event_kind::resume, index, index, {});
        replicas_[index].paused = false;
    }
    void resumed(std::uint32_t index) { schedule_flush(index); }
    void partition_healed() { record_trace(event_kind::heal_partition, 0, 0, {}); }
    void delivering(std::uint32_t to, std::uint32_t from, std::span<const std::uint8_t> message);
    void replica_receive(std::uint32_t index, std::span<const std::uint8_t> message);
    void client_receive(std::uint32_t index, std::span<const std::uint8_t> message) {
        clients_[index].client->on_message(message);
    }
    void pause_replica(std::uint32_t index);

private:
    void setup();
    void setup_client_options();
    void schedule(std::uint64_t delay_ns, event_kind kind, std::uint32_t node, std::uint32_t payload = 0);
    void handle(const event& e);
    void start_replica(std::uint32_t index, bool recovering);
    void replica_tick(std::uint32_t index);
    void client_tick(std::uint32_t index);
    void submit_operation(std::uint32_t client_index);
    void fault_step();
    void heal_all();
    void setup_storage();
    void setup_checkpoint_steps();
    void schedule_flush(std::uint32_t index);
    bool restart_if_halted(std::uint32_t index);
    void flush_replica(std::uint32_t index);
    void crash_cluster();
    replica_cluster<event_kind> cluster() { return {random_, profile_, network_, events_, now_, options_.replicas}; }
    void check_replica(std::uint32_t index);
    bool check_checkpoint(std::uint32_t index);
    void watchdog();
    void check_convergence();
    void final_checks();
    void place_unknown_operations();
    void fail(const std::string& property, const std::string& detail);
    void record_trace(event_kind kind, std::uint32_t from, std::uint32_t to, std::span<const std::uint8_t> message);
    std::string format_trace() const;
    bool done() const;
    bool cluster_settled() const;
    std::uint32_t current_primary() const;
    void check_success(const kv_history_op& h, vsr::result_status status);
    void mix_trace(std::uint64_t value) { trace_.mix(value); }

    simulation_options options_;
    vsr::xoshiro256 random_;
    vsr::xoshiro256 extra_random_;                   // draws added later, kept apart so the others stay as they were
    std::size_t snapshot_homes_per_interval_ = 256;  // kv::state_machine's snapshot interval
    fault_profile profile_;
    vsr::config config_;
    vsr::client_options client_options_;
    simulation_result result_;

    std::uint64_t now_ = 0;
    event_queue<event_kind> events_;
    vsr_network network_;

    std::vector<replica_node> replicas_;
    std::vector<client_node> clients_;
    std::unordered_map<std::uint64_t, std::uint32_t> client_owner_;
    std::uint32_t keys_ = 1;
    std::uint32_t value_padding_max_ = 0;

    // faults
    bool faults_active_ = true;
    std::uint64_t heal_time_ = 0;
    std::uint64_t settled_ns_ = UINT64_MAX;  // after healing: every replica normal in one view
    bool persistent_ = false;
    std::uint32_t rot_per_mille_ = 0;            // latent corruption per fault step, on the faulty disks
    std::uint64_t sync_latency_max_us_ = 1'000;  // a flush takes up to this long (fast to slow disks)
    std::vector<bool> faulty_disk_;              // at most f replicas whose durable data may be damaged
    std::uint32_t cluster_down_ = 0;             // replicas down in a cluster crash, awaiting their restart
    bool tampered_ = false;

    // workload and checkers
    std::uint32_t issued_ = 0;
    std::uint32_t completed_ = 0;
    std::vector<kv_history_op> history_;
    struct request_identity {
        std::uint64_t client_id = 0, session = 0, request_number = 0;
        auto operator<=>(const request_identity&) const = default;
    };
    std::vector<request_identity> history_requests_;  // parallel to history_
    // The committed entry at each op, as first seen executed by a replica still holding it (a
    // replica may drop an entry before the checker sees it: compaction). Empty: not seen yet.
    std::vector<std::vector<std::uint8_t>> canonical_;
    std::vector<std::uint64_t> commit_view_bound_;                 // each op was committed in a view <= this
    std::map<std::uint64_t, std::uint64_t> checkpoint_checksums_;  // op -> checksum of the first image
    trace_ring<trace_record, trace_tail_size, mix_checksum> trace_;
    bool primary_alone_ = false;            // the partition being drawn cuts a primary off alone
    std::vector<std::size_t> outstanding_;  // history ids awaiting completion
    std::uint64_t done_since_ = 0;
    bool finished_ = false;
};

void kv_simulation::schedule(std::uint64_t delay_ns, event_kind kind, std::uint32_t node, std::uint32_t payload) {
    events_.push(now_ + delay_ns, kind, node, payload);
}

void kv_simulation::setup() {
    profile_ = draw_fault_profile(random_);
    result_.profile = profile_.describe();
    result_.profile_crashes = profile_.crashes;
    result_.profile_partitions = profile_.partitions;
    result_.profile_pauses = profile_.pauses;
    result_.profile_clogging = profile_.clogging;
    config_.cluster = static_cast<std::uint32_t>(random_.next_u64());
    config_.replica_count = options_.replicas;
    config_.pipeline_max = static_cast<std::uint32_t>(vsr::uniform_between(random_, 1, 8));
    config_.batch_requests_max = static_cast<std::uint32_t>(vsr::uniform_between(random_, 1, 64));
    config_.bug = options_.bug;
    // Small messages force chunked state transfer and size-limited batches.
    const std::size_t message_sizes[] = {64 * 1024, 256 * 1024, 1024 * 1024};
    config_.message_size_max = message_sizes[vsr::uniform_below(random_, 3)];
    const std::uint32_t padding_sizes[] = {0, 100, 2000};
    value_padding_max_ = padding_sizes[vsr::uniform_below(random_, 3)];
    const auto client_count = static_cast<std::uint32_t>(vsr::uniform_between(random_, 1, 8));
    std::vector<std::uint32_t> sessions(client_count);
    std::uint32_t sessions_total = 0;
    for (auto& s : sessions) sessions_total += s = static_cast<std::uint32_t>(vsr::uniform_between(random_, 1, 3));
    // Some seeds get fewer session slots than sessions, to exercise eviction.
    config_.clients_max = vsr::chance(random_, 1, 8) ? std::max<std::uint32_t>(1, sessions_total - 1) : 64;
    // Most seeds checkpoint every few ops and hold a short log, so compaction, checkpoint transfer
    // and back-pressure happen often; the rest keep the defaults (no checkpoint in a short run).
    if (!vsr::chance(random_, 1, 8)) {
        config_.checkpoint_interval = static_cast<std::uint32_t>(vsr::uniform_between(random_, 2, 64));
        config_.log_entries_max = 2 * config_.checkpoint_interval + config_.pipeline_max +
                                  vsr::uniform_below(random_, 2 * config_.checkpoint_interval + 1);
    }
    keys_ = static_cast<std::uint32_t>(vsr::uniform_between(random_, 1, 8));

    setup_client_options();
    setup_storage();
    setup_checkpoint_steps();

    replicas_.resize(options_.replicas);
    for (std::uint32_t i = 0; i < options_.replicas; ++i) {
        replica_node& node = replicas_[i];
        node.bus = sim_bus{this, i};
        node.clock = draw_clock(&now_, profile_.clock_drift_per_mille, random_);
        node.tick_interval_ns = tick_interval_ns(config_.tick_ms, node.clock);
        start_replica(i, false);
        schedule(vsr::uniform_below(random_, node.tick_interval_ns), event_kind::replica_tick, i);
    }
    clients_.resize(client_count);
    network_ = vsr_network(profile_, options_.replicas, client_count);
    for (std::uint32_t c = 0; c < client_count; ++c) {
        client_node& node = clients_[c];
        const std::uint32_t id = options_.replicas + c;
        node.bus = sim_bus{this, id};
        node.random = std::make_unique<vsr::xoshiro256>(random_.next_u64());
        node.sessions = sessions[c];
        // Some clients only read: left with a deposed primary, they keep asking it (query_without_round).
        node.reads_only = vsr::chance(extra_random_, 1, 4);
        node.last_seen.resize(keys_);
        auto options = client_options_;
        options.sessions = node.sessions;
        node.client = std::make_unique<sim_client>(options, node.bus, *node.random);
        for (const auto client_id : node.client->client_ids()) client_owner_.emplace(client_id, id);
        schedule(vsr::uniform_below(random_, config_.tick_ms * ns_per_ms), event_kind::client_tick, id);
    }
    const std::uint64_t fault_phase_ms = vsr::uniform_between(random_, 2'000, 20'000);
    schedule(fault_phase_ms * ns_per_ms, event_kind::heal_all, 0);
    schedule(profile_.fault_step_ms * ns_per_ms, event_kind::fault_step, 0);
    schedule(1000 * ns_per_ms, event_kind::watchdog, 0);
}

void kv_simulation::setup_client_options() {
    client_options_.cluster = config_.cluster;
    client_options_.replica_count = config_.replica_count;
    client_options_.tick_ms = config_.tick_ms;
    client_options_.message_size_max = config_.message_size_max;
    // A third of the seeds give requests a deadline: a request that times out after healing is a
    // liveness failure.
    if (vsr::chance(extra_random_, 1, 3)) {
        client_options_.deadline_ms = static_cast<std::uint32_t>(vsr::uniform_between(extra_random_, 3'000, 15'000));
    }
}

/// Persistent or diskless, and in persistent mode the disks' faults: power loss tears unsynced
/// writes on every disk; lost and misdirected writes, latent corruption and full disks only on
/// up to f "faulty" disks, so a majority always holds what it acknowledged.
void kv_simulation::setup_storage() {
    persistent_ = vsr::chance(extra_random_, 1, 2);
    if (options_.storage == "diskless") persistent_ = false;
    if (options_.storage == "persistent") persistent_ = true;
    result_.storage = persistent_ ? "persistent" : "diskless";
    const std::uint32_t torn_choices[] = {0, 300, 700, 1000};
    const std::uint32_t torn = torn_choices[vsr::uniform_below(extra_random_, 4)];
    const std::uint32_t f = (options_.replicas - 1) / 2;
    faulty_disk_.assign(options_.replicas, false);
    for (std::uint32_t i = 0, faulty = static_cast<std::uint32_t>(vsr::uniform_below(extra_random_, f + 1)); i < faulty;
         ++i) {
        faulty_disk_[vsr::uniform_below(extra_random_, options_.replicas)] = true;
    }
    if (options_.damage_every_disk) faulty_disk_.assign(options_.replicas, true);
    rot_per_mille_ = static_cast<std::uint32_t>(vsr::uniform_below(extra_random_, 100));
    const std::uint64_t sync_latencies_us[] = {1'000, 5'000, 20'000};
    sync_latency_max_us_ = sync_latencies_us[vsr::uniform_below(extra_random_, 3)];
    replicas_.resize(options_.replicas);
    for (std::uint32_t i = 0; i < options_.replicas; ++i) {
        replica_node& node = replicas_[i];
        node.disk_random = std::make_unique<vsr::xoshiro256>(extra_random_.next_u64());
        if (!persistent_) continue;
        storage_faults faults;
        faults.torn_on_crash_per_mille = torn;
        if (faulty_disk_[i]) {
            faults.lost_write_per_mille = static_cast<std::uint32_t>(vsr::uniform_below(extra_random_, 20));
            faults.misdirected_write_per_mille = static_cast<std::uint32_t>(vsr::uniform_below(extra_random_, 10));
            faults.full_disk_per_mille = static_cast<std::uint32_t>(vsr::uniform_below(extra_random_, 3));
        }
        node.storage = sim_storage(node.disk_random.get(), faults);
    }
}

/// How checkpoint images are serialised: most seeds take them in many small steps, one per
/// tick, with operations executing in between (copy-on-write in the KV machine, the log held
/// for the image, transfers asked for while it is built); the rest in one step, as a small
/// state is in production. Drawn from a stream of its own, so the other draws stay as they were.
void kv_simulation::setup_checkpoint_steps() {
    vsr::xoshiro256 random(options_.seed ^ 0x57E957E957E957E9ULL);
    if (vsr::chance(random, 1, 4)) return;  // the defaults: one step for these states
    config_.checkpoint_step_size = static_cast<std::size_t>(vsr::uniform_between(random, 1, 64));
    snapshot_homes_per_interval_ = static_cast<std::size_t>(vsr::uniform_between(random, 1, 4));
}

void kv_simulation::start_replica(std::uint32_t index, bool recovering) {
    replica_node& node = replicas_[index];
    node.random = std::make_unique<vsr::xoshiro256>(random_.next_u64());
    node.replica =
        std::make_unique<sim_replica>(config_, static_cast<std::uint8_t>(index), node.bus, node.clock, *node.random,
                                      node.storage, recovering, kv::state_machine(snapshot_homes_per_interval_));
    if (persistent_ && recovering) {
        result_.damaged_restarts += node.replica->start_state() == vsr::journal_state::damaged;
        result_.loaded_restarts += node.replica->start_state() == vsr::journal_state::loaded;
    }
    schedule_flush(index);
    node.checked_executed = 0;
    node.last_view = 0;
    node.checked_primary_view = 0;
    node.checked_checkpoint_op = 0;
    node.paused = false;
}

// ---- network ----

void kv_simulation::send(std::uint32_t from, std::uint32_t to, std::span<const std::uint8_t> message) {
    send_message(cluster(), faults_active_, from, to, message);
}

void kv_simulation::delivering(std::uint32_t to, std::uint32_t from, std::span<const std::uint8_t> message) {
    record_trace(event_kind::deliver, from, to, message);
    ++result_.messages_delivered;
}

void kv_simulation::replica_receive(std::uint32_t index, std::span<const std::uint8_t> message) {
    replicas_[index].replica->on_message(message);
    if (restart_if_halted(index)) return;
    check_replica(index);
    schedule_flush(index);
}

/// A replica whose disk failed (in a flush, or in a write on the way) stops, as production
/// does, and restarts later from what is durable.
bool kv_simulation::restart_if_halted(std::uint32_t index) {
    if (!replicas_[index].replica || !replicas_[index].replica->halted()) return false;
    crash_replica(index, false);
    ++result_.halts;
    schedule(vsr::uniform_between(random_, 50, 2'000) * ns_per_ms, event_kind::restart, index);
    return true;
}

/// A persistent replica's writes take a moment to become durable (one sync for everything
/// decided meanwhile: group commit); a crash before then tears them.
void kv_simulation::schedule_flush(std::uint32_t index) {
    replica_node& node = replicas_[index];
    if (node.flush_scheduled || !node.replica || !node.replica->flush_pending()) return;
    node.flush_scheduled = true;
    schedule(vsr::uniform_between(*node.disk_random, 20, sync_latency_max_us_) * ns_per_us, event_kind::flush, index);
}

void kv_simulation::flush_replica(std::uint32_t index) {
    replica_node& node = replicas_[index];
    node.flush_scheduled = false;
    if (!node.replica || node.paused) {
        schedule_flush(index);  // a paused replica flushes when it resumes
        return;
    }
    node.replica->flush();
    if (restart_if_halted(index)) return;
    check_replica(index);
    schedule_flush(index);  // the redundant headers it wrote wait for the next sync
}

/// Every replica loses power at once; the disks keep what was synced.
void kv_simulation::crash_cluster() {
    for (std::uint32_t i = 0; i < options_.replicas; ++i) {
        if (!replicas_[i].replica) continue;
        record_trace(event_kind::cluster_crash, i, i, {});
        if (replicas_[i].replica->prepared_not_durable() > 0) ++result_.primaries_crashed_before_sync;
        replicas_[i].replica.reset();
        replicas_[i].storage.crash();
        replicas_[i].flush_scheduled = false;
        replicas_[i].down_in_cluster_crash = true;
        ++cluster_down_;
        network_.drop_held(i);
        schedule(vsr::uniform_between(random_, 50, 3'000) * ns_per_ms, event_kind::restart, i);
    }
    ++result_.cluster_crashes;
    mix_trace(0xCC);
}

// ---- event loop ----

void kv_simulation::handle(const event& e) {
    switch (e.kind) {
        case event_kind::deliver: deliver_message(cluster(), e.a, static_cast<std::uint32_t>(e.b), *this); break;
        case event_kind::replica_tick: replica_tick(e.a); break;
        case event_kind::client_tick: client_tick(e.a - options_.replicas); break;
        case event_kind::fault_step: fault_step(); break;
        case event_kind::restart:
            if (!replicas_[e.a].replica) {
                record_trace(e.kind, e.a, e.a, {});
                start_replica(e.a, true);
            }
            if (replicas_[e.a].down_in_cluster_crash) {
                replicas_[e.a].down_in_cluster_crash = false;
                --cluster_down_;
            }
            break;
        case event_kind::resume: resume_replica(cluster(), e.a, *this); break;
        case event_kind::heal_partition: heal_partition(cluster(), *this); break;
        case event_kind::heal_all: heal_all(); break;
        case event_kind::watchdog: watchdog(); break;
        case event_kind::flush: flush_replica(e.a); break;
        case event_kind::cluster_crash: crash_cluster(); break;
    }
}

void kv_simulation::replica_tick(std::uint32_t index) {
    replica_node& node = replicas_[index];
    schedule(node.tick_interval_ns, event_kind::replica_tick, index);
    if (!node.replica || node.paused) return;
    node.replica->tick();
    if (restart_if_halted(index)) return;
    check_replica(index);
    schedule_flush(index);
}

void kv_simulation::client_tick(std::uint32_t index) {
    client_node& node = clients_[index];
    schedule(config_.tick_ms * ns_per_ms, event_kind::client_tick, options_.replicas + index);
    node.client->tick();
    while (node.outstanding < node.sessions && issued_ < options_.requests && now_ >= node.next_submit_ns) {
        submit_operation(index);
        node.next_submit_ns = now_ + vsr::uniform_below(*node.random, 20 * ns_per_ms);
    }
}

void kv_simulation::submit_operation(std::uint32_t client_index) {
    client_node& node = clients_[client_index];
    vsr::xoshiro256& random = *node.random;
    const auto key_index = static_cast<std::uint32_t>(vsr::uniform_below(random, keys_));
    kv_history_op op;
    op.id = history_.size();
    op.client = client_index;
    op.key = "k" + std::to_string(key_index);
    const auto roll = node.reads_only ? 50 : vsr::uniform_below(random, 100);
    op.kind = roll < 40 ? kv_kind::put : roll < 70 ? kv_kind::get : roll < 90 ? kv_kind::cas : kv_kind::del;
    if (op.kind == kv_kind::put || op.kind == kv_kind::cas) {
        op.value = "c" + std::to_string(client_index) + "." + std::to_string(++node.values_written);
        op.value.append(vsr::uniform_below(random, value_padding_max_ + 1), '.');
    }
    if (op.kind == kv_kind::cas) op.expected = node.last_seen[key_index];
    op.invoke_ns = now_;
    kv::operation encoded_op;
    encoded_op.op_kind = op.kind == kv_kind::put   ? kv::kind::put
                         : op.kind == kv_kind::get ? kv::kind::get
                         : op.kind == kv_kind::cas ? kv::kind::cas
                                                   : kv::kind::del;
    std::vector<std::uint8_t> bytes;
    history_.push_back(std::move(op));
    history_requests_.emplace_back();
    const kv_history_op& stored = history_.back();
    encoded_op.key = stored.key;
    encoded_op.value = stored.value;
    encoded_op.expected = stored.expected;
    kv::encode_operation(encoded_op, bytes);
    const std::size_t id = stored.id;
    const auto submitted = node.client->submit(
        bytes,
        [this, id, client_index, key_index](const vsr::client_result& r) {
            kv_history_op& h = history_[id];
            client_node& owner = clients_[client_index];
            history_requests_[id] = request_identity{r.client_id, r.session, r.request_number};
            --owner.outstanding;
            ++completed_;
            outstanding_.erase(std::find(outstanding_.begin(), outstanding_.end(), id));
            h.complete_ns = now_;
            check_success(h, r.status);
            if (r.status == vsr::result_status::too_large) {
                h.result_outcome = outcome::fail;  // the cluster promises it never executes
                return;
            }
            if (r.status != vsr::result_status::ok) {
                h.result_outcome = outcome::unknown;  // it may have executed before the failure
                return;
            }
            ++result_.requests_ok;
            const kv::result decoded = kv::decode_result(r.body);
            h.result_outcome = outcome::ok;
            // A query read the state after every request of entry op (batch indices stay below 2^20).
            h.position = (r.op << 20) | (r.index == vsr::reply_index_query ? 0xFFFFF : r.index);
            h.status = decoded.result_status == kv::status::ok          ? kv_status::ok
                       : decoded.result_status == kv::status::not_found ? kv_status::not_found
                                                                        : kv_status::mismatch;
            if (decoded.result_status == kv::status::invalid)
                fail("kv", "valid operation answered invalid: " + describe_op(h));
            h.result_value = std::string(decoded.value);
            if (h.kind == kv_kind::get && h.status == kv_status::ok) owner.last_seen[key_index] = h.result_value;
            if ((h.kind == kv_kind::put || h.kind == kv_kind::cas) && h.status == kv_status::ok)
                owner.last_seen[key_index] = h.value;
        },
        stored.kind == kv_kind::get ? vsr::request_kind::query : vsr::request_kind::operation);
    if (submitted != vsr::submit_error::none) {
        history_.back().result_outcome = outcome::fail;
        return;
    }
    ++issued_;
    ++node.outstanding;
    outstanding_.push_back(id);
}

// ---- faults ----

std::uint32_t kv_simulation::impaired_replicas() const {
    std::uint32_t count = 0;
    for (const auto& node : replicas_) {
        count += !node.replica || node.replica->status() == vsr::replica_status::recovering ||
                 node.replica->recovering_on_disk();
    }
    return count;
}

void kv_simulation::fault_step() {
    if (!faults_active_) return;
    schedule(profile_.fault_step_ms * ns_per_ms, event_kind::fault_step, 0);
    if (cluster_down_ == 0) result_.impaired_max = std::max(result_.impaired_max, impaired_replicas());
    roll_replica_faults(cluster(), *this);
    if (!persistent_) return;
    const bool all_well = impaired_replicas() == 0;
    for (auto& node : replicas_) node.storage.allow_full_disk(all_well);
    for (std::uint32_t i = 0; i < options_.replicas; ++i) {
        if (faulty_disk_[i] && vsr::chance(*replicas_[i].disk_random, rot_per_mille_, 1000)) replicas_[i].storage.rot();
    }
    // Now and then the whole cluster loses power, when all are up (the restarts are bounded).
    if (impaired_replicas() == 0 && vsr::chance(extra_random_, profile_.fault_per_mille, 2'000)) crash_cluster();
}

void kv_simulation::crash_replica(std::uint32_t index) { crash_replica(index, true); }

/// Lost disks and faulty ones share one budget of f replicas: a replica with a faulty disk can
/// restart damaged at any time (a halt is not a drawn crash), so a disk lost elsewhere beside it
/// would leave two replicas without their state and no quorum to recover from (seed 67884).
bool kv_simulation::disk_may_be_lost(std::uint32_t index) const {
    if (faulty_disk_[index]) return true;
    const auto faulty = static_cast<std::uint32_t>(std::count(faulty_disk_.begin(), faulty_disk_.end(), true));
    return faulty < (options_.replicas - 1u) / 2u;
}

void kv_simulation::crash_replica(std::uint32_t index, bool may_lose_disk) {
    record_trace(event_kind::restart, index, index, {});
    mix_trace(0xC0 + index);
    replica_node& node = replicas_[index];
    if (node.replica && node.replica->prepared_not_durable() > 0) ++result_.primaries_crashed_before_sync;
    node.replica.reset();
    node.flush_scheduled = false;
    for (auto& other : replicas_) other.storage.allow_full_disk(false);  // until all are well again
    if (persistent_) {
        // Usually the disk survives the crash; now and then it is lost with the machine, unless
        // that would make more than f replicas whose durable state can be lost or damaged.
        if (may_lose_disk && vsr::chance(*node.disk_random, 1, 4) && disk_may_be_lost(index)) {
            node.storage.wipe();
            ++result_.disks_lost;
        } else {
            node.storage.crash();
        }
    }
    network_.drop_held(index);
    if (may_lose_disk) ++result_.crashes;  // else a halt (its disk failed), counted apart
    if (cluster_down_ == 0) result_.impaired_max = std::max(result_.impaired_max, impaired_replicas());
}

/// Half the time a primary with nothing uncommitted alone, with the reading clients: the
/// others elect a new primary and write, the readers keep asking the deposed one.
std::uint64_t kv_simulation::partition_side(std::uint64_t side) {
    const std::uint32_t primary = current_primary();
    primary_alone_ = primary != UINT32_MAX && vsr::chance(random_, 1, 2);
    return primary_alone_ ? 1ULL << primary : side;
}

/// Clients may be cut off too, from the replicas on the other side (leader discovery).
void kv_simulation::partitioned(std::uint64_t side) {
    for (std::uint32_t c = 0; c < clients_.size(); ++c) {
        if (!primary_alone_ && !vsr::chance(random_, 1, 2)) continue;
        const bool client_in = primary_alone_ ? clients_[c].reads_only : vsr::chance(random_, 1, 2);
        network_.cut_client(c, side, client_in);
    }
    ++result_.partitions;
    mix_trace(side);
}

void kv_simulation::pause_replica(std::uint32_t index) {
    replicas_[index].paused = true;
    ++result_.pauses;
    mix_trace(0x50 + index);
}

void kv_simulation::heal_all() {
    record_trace(event_kind::heal_all, 0, 0, {});
    faults_active_ = false;
    heal_time_ = now_;
    // No disk fills up after healing either: the halt would be a fault after the heal (seed 82727).
    for (auto& node : replicas_) node.storage.allow_full_disk(false);
    heal_replicas(cluster(), *this);
}

// ---- checkers ----

/// Safety, incrementally: every newly executed op must equal the first execution of that op
/// anywhere, and view numbers never go backwards (within one incarnation).
void kv_simulation::check_replica(std::uint32_t index) {
    replica_node& node = replicas_[index];
    const sim_replica& replica = *node.replica;
    if (const auto failure = check_view(index, node.last_view, replica.view())) {
        fail("safety", *failure);
        return;
    }
    const std::uint64_t executed = replica.commit_executed();
    if (executed < node.checked_executed) {
        fail("safety", "replica " + std::to_string(index) + " commit went backwards");
        return;
    }
    if (canonical_.size() < executed) {
        canonical_.resize(executed);
        commit_view_bound_.resize(executed, UINT64_MAX);
    }
    for (std::uint64_t op = node.checked_executed + 1; op <= executed; ++op) {
        commit_view_bound_[op - 1] = std::min(commit_view_bound_[op - 1], replica.view());
        // Restored from a checkpoint, already compacted, or released to the journal (a persistent
        // replica frees executed entries at the flush after their execution; most are seen first).
        if (!replica.log().in_memory(op)) continue;
        const auto entry = replica.log().entry(op);
        std::vector<std::uint8_t>& canonical = canonical_[op - 1];
        if (canonical.empty()) {
            canonical.assign(entry.begin(), entry.end());
        } else if (!std::equal(canonical.begin(), canonical.end(), entry.begin(), entry.end())) {
            fail("safety",
                 "replica " + std::to_string(index) + " committed a different entry at op " + std::to_string(op));
            return;
        }
    }
    node.checked_executed = executed;
    if (!check_checkpoint(index)) return;
    if (replica.status() == vsr::replica_status::normal && replica.is_primary() && !replica.syncing() &&
        replica.view() > node.checked_primary_view) {
        // A new primary's log must hold every op committed in an earlier view (VSR's
        // view-change safety). An op executed by a replica in view w was committed in a view
        // <= w, so ops whose bound is below this view must be present.
        node.checked_primary_view = replica.view();
        std::uint64_t committed = canonical_.size();
        while (committed > 0 && commit_view_bound_[committed - 1] >= replica.view()) --committed;
        const bool comparable =
            committed > 0 && replica.log().in_memory(committed) && !canonical_[committed - 1].empty();
        if (replica.op() < committed ||
            (comparable && vsr::checksum(replica.log().entry(committed)) != vsr::checksum(canonical_[committed - 1]))) {
            fail("safety", "replica " + std::to_string(index) + " became primary of view " +
                               std::to_string(replica.view()) + " without committed op " + std::to_string(committed));
        }
    }
}

/// Checkpoints: every image taken (or restored) at one op is the same on every replica.
bool kv_simulation::check_checkpoint(std::uint32_t index) {
    replica_node& node = replicas_[index];
    const vsr::checkpoint_image& image = node.replica->checkpoint();
    if (image.op == node.checked_checkpoint_op) return true;
    node.checked_checkpoint_op = image.op;
    const auto [it, first] = checkpoint_checksums_.emplace(image.op, image.checksum);
    if (first || it->second == image.checksum) return true;
    fail("safety", "replica " + std::to_string(index) + " checkpoint at op " + std::to_string(image.op) +
                       " differs from one taken elsewhere at that op");
    return false;
}

/// Liveness means success: a request invoked once the healed cluster settled, or ending well
/// after that, must not time out.
void kv_simulation::check_success(const kv_history_op& h, vsr::result_status status) {
    if (faults_active_) return;
    if (options_.tamper_timeout_after_heal && !tampered_ && h.invoke_ns >= settled_ns_) {
        tampered_ = true;
        status = vsr::result_status::timeout;
    }
    if (status != vsr::result_status::timeout) return;
    // A request waiting from before gets its next retry within 1.5 retry_max_ms (backoff with jitter).
    const std::uint64_t settle_grace_ns = (client_options_.retry_max_ms * 3 / 2 + 500) * ns_per_ms;
    if (h.invoke_ns < settled_ns_ && (settled_ns_ == UINT64_MAX || now_ < settled_ns_ + settle_grace_ns)) return;
    fail("liveness", "request #" + std::to_string(h.id) + " (" + describe_op(h) + ") timed out at " +
                         std::to_string(now_ / ns_per_ms) + " ms, after healing at " +
                         std::to_string(heal_time_ / ns_per_ms) + " ms (settled at " +
                         std::to_string(settled_ns_ / ns_per_ms) + " ms)");
}

/// The normal primary of the highest view with nothing uncommitted, or UINT32_MAX.
std::uint32_t kv_simulation::current_primary() const {
    std::uint32_t found = UINT32_MAX;
    for (std::uint32_t i = 0; i < options_.replicas; ++i) {
        const auto& r = replicas_[i].replica;
        if (!r || r->status() != vsr::replica_status::normal || !r->is_primary()) continue;
        if (r->op() != r->commit_executed()) continue;
        if (found == UINT32_MAX || r->view() > replicas_[found].replica->view()) found = i;
    }
    return found;
}

bool kv_simulation::cluster_settled() const {
    std::uint64_t view = UINT64_MAX;
    for (const auto& node : replicas_) {
        if (!node.replica || node.paused || node.replica->syncing()) return false;
        if (node.replica->status() != vsr::replica_status::normal) return false;
        if (view != UINT64_MAX && node.replica->view() != view) return false;
        view = node.replica->view();
    }
    return true;
}

bool kv_simulation::done() const { return issued_ == options_.requests && completed_ == issued_; }

/// Liveness: once healed, every request completes and the replicas converge within the bound.
void kv_simulation::watchdog() {
    schedule(1000 * ns_per_ms, event_kind::watchdog, 0);
    if (faults_active_) return;
    const std::uint64_t bound_ns = options_.liveness_bound_ms * ns_per_ms;
    std::ostringstream detail;
    for (const std::size_t id : outstanding_) {
        const std::uint64_t waiting_since = std::max(history_[id].invoke_ns, heal_time_);
        if (now_ - waiting_since > bound_ns) {
            detail << "request #" << id << " (" << describe_op(history_[id]) << ") outstanding for "
                   << (now_ - waiting_since) / ns_per_ms << " ms since healing or its start;";
            break;
        }
    }
    if (done() && done_since_ == 0) done_since_ = now_;
    if (done() && now_ - done_since_ > bound_ns) {
        detail << "replicas did not converge within " << options_.liveness_bound_ms << " ms after the workload;";
    }
    if (!detail.str().empty()) {
        detail << " healed at " << heal_time_ / ns_per_ms << " ms; issued=" << issued_ << " completed=" << completed_
               << ";";
        for (std::uint32_t i = 0; i < options_.replicas; ++i) {
            const auto& r = *replicas_[i].replica;
            detail << " r" << i << "{" << vsr::to_string(r.status()) << " view=" << r.view() << " op=" << r.op()
                   << " commit=" << r.commit() << " executed=" << r.commit_executed() << (r.syncing() ? " syncing" : "")
                   << "}";
        }
        fail("liveness", detail.str());
    }
}

/// After the workload: all replicas normal in one view with the same executed op and state.
void kv_simulation::check_convergence() {
    std::uint64_t executed = 0, view = 0;
    for (const auto& node : replicas_) {
        if (!node.replica) return;
        executed = std::max(executed, node.replica->commit_executed());
        view = std::max(view, node.replica->view());
    }
    for (const auto& node : replicas_) {
        const auto& r = *node.replica;
        if (r.status() != vsr::replica_status::normal || r.syncing() || r.view() != view ||
            r.commit_executed() != executed)
            return;
    }
    finished_ = true;
}

/// Operations whose outcome the client never learned: if the converged log executed them, tell
/// the checker where (the op-number order is the fast oracle), otherwise they never happened.
/// Operations refused as final (too_large) must not be in the log at all.
void kv_simulation::place_unknown_operations() {
    std::map<request_identity, std::uint64_t> unknown;
    for (std::size_t id = 0; id < history_.size(); ++id) {
        const bool refused = history_[id].result_outcome == outcome::fail;
        if ((history_[id].result_outcome == outcome::unknown || refused) && history_requests_[id].client_id != 0) {
            unknown.emplace(history_requests_[id], id);
        }
    }
    if (unknown.empty()) return;
    // Replay the client table over the committed entries, as execution does, to see which
    // requests ran.
    const sim_replica& replica = *replicas_[0].replica;
    vsr::client_table table(config_.clients_max);
    for (std::uint64_t op = 1; op <= replica.commit_executed(); ++op) {
        if (op > canonical_.size() || canonical_[op - 1].empty()) {
            fail("checker", "committed entry at op " + std::to_string(op) +
                                " was compacted on every replica before the checker saw it");
            return;
        }
        vsr::request_iterator requests(canonical_[op - 1]);
        vsr::request_record r;
        for (std::uint32_t index = 0; requests.next(r); ++index) {
            if (r.kind == vsr::request_kind::register_session) {
                if (table.find(r.client_id) == nullptr) table.register_session(r.client_id, op, index);
                continue;
            }
            if (table.decide(r.client_id, r.session, r.request_number) != vsr::client_table::decision::execute)
                continue;
            table.record_reply(r.client_id, r.request_number, op, index, {});
            const auto it = unknown.find(request_identity{r.client_id, r.session, r.request_number});
            if (it == unknown.end()) continue;
            if (history_[it->second].result_outcome == outcome::fail) {
                fail("client contract", "operation refused as not executed ran at op " + std::to_string(op) + ": " +
                                            describe_op(history_[it->second]));
                return;
            }
            history_[it->second].position = (op << 20) | index;
        }
    }
}

void kv_simulation::final_checks() {
    std::vector<std::uint8_t> first, other;
    replicas_[0].replica->state_machine().snapshot(first);
    replicas_[0].replica->clients().snapshot(first);
    for (std::uint32_t i = 1; i < options_.replicas; ++i) {
        other.clear();
        replicas_[i].replica->state_machine().snapshot(other);
        replicas_[i].replica->clients().snapshot(other);
        if (other != first) {
            fail("safety", "replica " + std::to_string(i) + " state differs from replica 0 at the same commit");
            return;
        }
    }
    place_unknown_operations();
    if (!result_.ok) return;
    const linearizability_report report = check_linearizable(history_);
    if (!report.linearizable) fail("linearizability", report.explanation);
}

void kv_simulation::fail(const std::string& property, const std::string& detail) {
    if (!result_.ok) return;
    result_.ok = false;
    result_.property = property;
    result_.detail = detail;
    result_.trace_tail = format_trace();
}

void kv_simulation::record_trace(event_kind kind, std::uint32_t from, std::uint32_t to,
                                 std::span<const std::uint8_t> message) {
    trace_record& record = trace_.next();
    record.time = now_;
    record.kind = kind;
    record.from = from;
    record.to = to;
    record.h = message.size() >= vsr::header_size ? vsr::decode_header_fields(message.data()) : vsr::header{};
    mix_trace(now_ ^ (std::uint64_t{from} << 48) ^ (std::uint64_t{to} << 40) ^ record.h.checksum);
    if (options_.verbose) {
        std::printf("%10.3f ms  %u -> %u  cmd=%u view=%llu op=%llu commit=%llu\n", static_cast<double>(now_) / 1e6,
                    from, to, static_cast<unsigned>(record.h.cmd), static_cast<unsigned long long>(record.h.view),
                    static_cast<unsigned long long>(record.h.op), static_cast<unsigned long long>(record.h.commit));
    }
}

std::string kv_simulation::format_trace() const {
    static constexpr const char* kinds[] = {"deliver",       "tick",   "client_tick",    "fault",
                                            "restart/crash", "resume", "heal_partition", "heal_all",
                                            "watchdog",      "flush",  "cluster_crash"};
    std::ostringstream out;
    trace_.for_each_tail([&](const trace_record& r) {
        out << "  " << r.time / ns_per_us << "us " << kinds[static_cast<int>(r.kind)] << " " << r.from << "->" << r.to;
        if (r.kind == event_kind::deliver) {
            out << " cmd=" << static_cast<unsigned>(r.h.cmd) << " view=" << r.h.view << " op=" << r.h.op
                << " commit=" << r.h.commit;
        }
        out << "\n";
    });
    return out.str();
}

simulation_result kv_simulation::run() {
    setup();
    const std::uint64_t time_max = 600'000 * ns_per_ms;
    run_events(
        events_, now_, time_max, [&] { return result_.ok && !finished_; },
        [&](const event& e) {
            handle(e);
            if (!faults_active_ && settled_ns_ == UINT64_MAX && cluster_settled()) settled_ns_ = now_;
            if (!faults_active_ && done()) check_convergence();
        });
    if (result_.ok && !finished_) fail("liveness", "simulation ended before the workload completed");
    if (result_.ok) final_checks();
    for (const auto& node : replicas_) {
        if (!node.replica) continue;
        result_.ops_committed = std::max(result_.ops_committed, node.replica->commit_executed());
        const auto& counters = node.replica->counters();
        result_.view_changes += counters.views_started_as_primary;
        result_.entries_transferred += counters.entries_transferred;
        result_.checkpoints_taken += counters.checkpoints;
        result_.images_built_in_steps += counters.checkpoint_images_in_steps;
        result_.image_requests_deferred += counters.checkpoint_requests_deferred;
        result_.entries_from_journal += counters.entries_read_from_journal;
        result_.checkpoints_restored += counters.checkpoints_restored;
        result_.recoveries += counters.recoveries_completed;
        result_.sessions_evicted += counters.sessions_evicted;
        result_.queries_answered += counters.queries_answered;
    }
    for (const auto& node : replicas_) {
        if (persistent_) result_.storage_faults += node.storage.counts().total();
    }
    result_.messages_dropped = network_.dropped();
    result_.messages_duplicated = network_.duplicated();
    result_.simulated_ms = now_ / ns_per_ms;
    result_.trace_hash = trace_.hash();
    return result_;
}

}  // namespace

simulation_result run_kv_simulation(const simulation_options& options) {
    kv_simulation simulation(options);
    return simulation.run();
}

namespace {
constexpr std::pair<vsr::planted_bug, const char*> bug_names[] = {
    {vsr::planted_bug::none, "none"},
    {vsr::planted_bug::commit_without_quorum, "commit_without_quorum"},
    {vsr::planted_bug::skip_client_deduplication, "skip_client_deduplication"},
    {vsr::planted_bug::view_change_picks_wrong_log, "view_change_picks_wrong_log"},
    {vsr::planted_bug::accept_prepare_out_of_order, "accept_prepare_out_of_order"},
    {vsr::planted_bug::recovering_replica_answers, "recovering_replica_answers"},
    {vsr::planted_bug::query_without_round, "query_without_round"},
    {vsr::planted_bug::restore_unchecked_checkpoint, "restore_unchecked_checkpoint"},
    {vsr::planted_bug::ack_before_durable, "ack_before_durable"},
    {vsr::planted_bug::compact_past_commit, "compact_past_commit"},
    {vsr::planted_bug::damaged_replica_votes, "damaged_replica_votes"},
    {vsr::planted_bug::truncate_without_new_epoch, "truncate_without_new_epoch"},
    {vsr::planted_bug::checkpoint_without_client_table, "checkpoint_without_client_table"},
};
}  // namespace

bool parse_planted_bug(const std::string& name, vsr::planted_bug& out) { return parse_bug_name(bug_names, name, out); }

const char* to_string(vsr::planted_bug bug) { return bug_name(bug_names, bug); }

}  // namespace sim
