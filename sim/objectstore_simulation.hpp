// The object store simulation's parts, shared by the files that implement it (internal to
// sim/; the interface is objectstore_simulator.hpp). One file per concern:
// - objectstore_simulator.cpp: the policies, setup, the event handlers, the replica cluster hooks;
// - objectstore_chunk_network.cpp: the chunk connections between proxies and nodes;
// - objectstore_workload.cpp: the users (PUT, GET, HEAD, DELETE, LIST) and their history;
// - objectstore_faults.cpp: the fault step (sim/replica_cluster.hpp rolls the replica faults), breaks, rot;
// - objectstore_checks.cpp: the checkers and the final phase.
#pragma once

#include <algorithm>
#include <array>
#include <cstdio>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <set>
#include <sstream>
#include <unordered_map>
#include <vector>

#include "platform/crypto.hpp"
#include "sim/fault_profile.hpp"
#include "sim/linearizability.hpp"
#include "sim/network.hpp"
#include "sim/objectstore_simulator.hpp"
#include "sim/replica_cluster.hpp"
#include "sim/sim_chunk_disk.hpp"
#include "sim/sim_metadata_disk.hpp"
#include "sim/sim_storage.hpp"
#include "toastyfs/chunk_server.hpp"
#include "toastyfs/chunk_store.hpp"
#include "toastyfs/janitor.hpp"
#include "toastyfs/metadata_state_machine.hpp"
#include "toastyfs/object_service.hpp"
#include "vsr/client.hpp"
#include "vsr/replica.hpp"

namespace sim::objectstore_internal {

namespace tfs = toastyfs;
using crypto = platform::openssl_crypto;

inline constexpr std::size_t trace_tail_size = 64;
inline constexpr std::uint64_t no_abort = UINT64_MAX;

inline std::uint64_t mix64(std::uint64_t x) {
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30U)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27U)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31U);
}

inline std::uint64_t mix_trace_hash(std::uint64_t hash, std::uint64_t value) { return mix64(hash ^ value); }

/// The content of put `put_id` at byte offsets [offset, offset + out.size()): a pure function,
/// so content identifies the put and nothing is stored.
inline void fill_content(std::uint64_t put_id, std::uint64_t offset, std::span<std::uint8_t> out) {
    std::uint64_t word_index = UINT64_MAX, word = 0;
    for (std::size_t i = 0; i < out.size(); ++i) {
        const std::uint64_t at = offset + i;
        if (at / 8 != word_index) {
            word_index = at / 8;
            word = mix64(put_id * 0x100000001B3ULL ^ mix64(word_index));
        }
        out[i] = static_cast<std::uint8_t>(word >> (8 * (at % 8)));
    }
}

class objectstore_simulation;

using sim_bus = sim::sim_bus<objectstore_simulation>;

/// The metadata state machine, with the simulator watching every execution: the first
/// execution of each log position anywhere is the canonical history (checked against a shadow
/// copy, and used by the checkers), and every later one must give the same result. It keeps its
/// state in its store as in production (a stored-state machine: checkpoints commit the store,
/// restarts reopen it, state transfer exports and imports it), and tells the simulator what a
/// restart found there.
struct observed_machine {
    tfs::metadata_state_machine machine;
    objectstore_simulation* observer = nullptr;
    std::uint32_t node = 0;
    observed_machine() = default;
    observed_machine(const tfs::metadata_options& options, tfs::metadata_disk* disk,
                     const tfs::metadata_store_options& store, objectstore_simulation* watcher, std::uint32_t index)
        : machine(options, disk, store), observer(watcher), node(index) {}
    void execute(const vsr::operation_context& context, std::span<const std::uint8_t> bytes,
                 std::vector<std::uint8_t>& out);
    void snapshot(std::vector<std::uint8_t>& out) const { machine.snapshot(out); }
    bool restore(std::span<const std::uint8_t> bytes) { return machine.restore(bytes); }
    std::size_t result_size_max() const noexcept { return machine.result_size_max(); }
    // Queries (GET, HEAD, LIST, the janitor's reads) take the production read path: answered by
    // the primary without a log entry, so the observer never sees them.
    bool is_query(std::span<const std::uint8_t> bytes) const noexcept { return machine.is_query(bytes); }
    void query(std::span<const std::uint8_t> bytes, std::vector<std::uint8_t>& out) const { machine.query(bytes, out); }
    // vsr::state_machine_with_stored_state, forwarded.
    vsr::stored_state open_stored(std::uint64_t& op, std::vector<std::uint8_t>& record);
    bool clear_stored() { return machine.clear_stored(); }
    bool store_checkpoint(std::uint64_t op, std::span<const std::uint8_t> record) {
        return machine.store_checkpoint(op, record);
    }
    bool failed() const noexcept { return machine.failed(); }
    std::uint64_t digest() const noexcept { return machine.digest(); }
    std::uint64_t export_size() const noexcept { return machine.export_size(); }
    vsr::export_status export_part(std::uint64_t op, std::span<const std::uint8_t> cursor, std::size_t size_max,
                                   std::vector<std::uint8_t>& out, std::vector<std::uint8_t>& next_cursor) {
        return machine.export_part(op, cursor, size_max, out, next_cursor);
    }
    void export_end() { machine.export_end(); }
    void import_begin() { machine.import_begin(); }
    bool import_part(std::span<const std::uint8_t> bytes) { return machine.import_part(bytes); }
    std::uint64_t import_digest() const noexcept { return machine.import_digest(); }
    bool import_finish(std::uint64_t op, std::span<const std::uint8_t> record) {
        return machine.import_finish(op, record);
    }
    void import_abandon() { machine.import_abandon(); }
};
static_assert(vsr::state_machine_with_queries<observed_machine>);
static_assert(vsr::state_machine_with_stored_state<observed_machine>);

/// Diskless nodes run it over a default sim_storage (persistent() false), persistent ones over
/// their own, which outlives the replica.
using sim_replica = vsr::basic_replica<observed_machine, sim_bus, sim_clock, vsr::xoshiro256, sim_storage>;
using sim_client = vsr::basic_client<sim_bus, vsr::xoshiro256>;

/// The proxy's metadata client: the VSR client, remembering where the result being delivered
/// executed (the linearizability oracle's order), and when its requests were submitted (the
/// liveness check's excuse for an operation queued behind requests from before the cluster
/// settled, still waiting for their next retry).
struct metadata_adapter {
    sim_client* client = nullptr;
    const std::uint64_t* now_ns = nullptr;
    const std::uint64_t* settled_ns = nullptr;
    std::uint64_t position = 0;                 // op << 20 | index of the result being delivered, else 0
    std::multiset<std::uint64_t> submitted_ns;  // of the requests outstanding
    std::uint64_t before_settled_done_ns = 0;   // when the last request submitted before settling ended
    vsr::submit_error submit(std::span<const std::uint8_t> operation,
                             std::function<void(const vsr::client_result&)> done, vsr::request_kind kind) {
        const std::uint64_t at = *now_ns;
        const vsr::submit_error error = client->submit(
            operation,
            [this, at, done = std::move(done)](const vsr::client_result& r) {
                submitted_ns.erase(submitted_ns.find(at));
                if (at < *settled_ns) before_settled_done_ns = *now_ns;
                const std::uint64_t saved = position;
                // A query read the state after every request of entry op: it sorts after them all
                // (batch indices stay below 2^20), tied with the other queries of that state.
                const std::uint64_t index = r.index == vsr::reply_index_query ? 0xFFFFF : r.index;
                position = r.status == vsr::result_status::ok ? (r.op << 20 | index) : 0;
                done(r);
                position = saved;
            },
            kind);
        if (error == vsr::submit_error::none) submitted_ns.insert(at);
        return error;
    }
    /// Some request submitted before the cluster settled was still outstanding at `when`.
    bool waited_behind_unsettled(std::uint64_t when) const {
        return before_settled_done_ns > when || (!submitted_ns.empty() && *submitted_ns.begin() < *settled_ns);
    }
};
static_assert(tfs::metadata_client<metadata_adapter>);

struct sim_transport {
    objectstore_simulation* simulation = nullptr;
    std::uint32_t proxy = 0;
    bool send(std::uint8_t node, const tfs::frame_header& header,
              std::shared_ptr<const std::vector<std::uint8_t>> body);
    bool connected(std::uint8_t node);
};
static_assert(tfs::chunk_transport<sim_transport>);

using store_type = tfs::chunk_store<sim_chunk_disk, crypto>;
using service_type = tfs::object_service<metadata_adapter, sim_transport, crypto>;
using janitor_type = tfs::janitor<service_type>;

enum class event_kind : std::uint8_t {
    deliver,
    replica_tick,
    proxy_tick,
    chunk_to_node,
    chunk_to_proxy,
    user_step,
    fault_step,
    restart,
    resume,
    heal_partition,
    heal_all,
    watchdog,
    reconnect,
    keepalive,
    final_step,
    flush,       // a persistent replica's writes become durable and its held messages leave
    power_loss,  // every node crashes at once and restarts from its disks (traced; drawn by the fault step)
};
inline constexpr const char* event_names[] = {
    "deliver",   "replica_tick",  "proxy_tick", "chunk_to_node",  "chunk_to_proxy", "user_step",
    "fault",     "restart/crash", "resume",     "heal_partition", "heal_all",       "watchdog",
    "reconnect", "keepalive",     "final_step", "flush",          "power_loss"};

using event = sim_event<event_kind>;

struct trace_record {
    std::uint64_t time = 0;
    event_kind kind = event_kind::deliver;
    std::uint32_t a = 0;
    std::uint64_t b = 0, c = 0;
};

/// Why a node goes down.
enum class crash_cause : std::uint8_t {
    crash,       // a drawn crash (the fault schedule)
    halt,        // its replica halted: a disk or the store failed
    power_loss,  // the whole cluster at once
};

/// Faults the simulator injected into a node's metadata disks, counted: what excuses a restart
/// that finds them damaged (damage at rest, or a read error while it starts).
struct injected_damage {
    std::uint64_t journal = 0;       // sim_storage: lost, misdirected and rotten writes
    std::uint64_t metadata_rot = 0;  // sim_metadata_disk: bits flipped at rest in the store's files
    std::uint64_t read_errors = 0;   // sim_metadata_disk: failed reads
};

struct node_state {
    sim_bus bus;
    sim_clock clock;
    std::unique_ptr<vsr::xoshiro256> random;
    // the metadata replica's disks (persistent mode): the journal and the SQLite store, which
    // survive the node's crashes unless lost; declared before the replica, which dies first
    std::unique_ptr<vsr::xoshiro256> disk_random;
    sim_storage storage;  // default (diskless) unless persistent
    std::unique_ptr<sim_metadata_disk> metadata_disk;
    std::unique_ptr<sim_replica> replica;  // null while crashed
    std::unique_ptr<sim_chunk_disk> disk;
    std::unique_ptr<store_type> store;  // null while crashed
    chunk_disk_faults faults;           // drawn per seed; zeroed when healed
    std::uint32_t reply_corruption_per_mille = 0;
    bool paused = false;
    std::uint64_t tick_interval_ns = 0;
    std::uint64_t ticks = 0;
    std::uint64_t last_view = 0;
    bool faulty_disk = false;  // rot, full disks (and lost or misdirected journal writes): at most f nodes
    bool flush_scheduled = false;
    bool down_in_power_loss = false;  // not counted against the crash budget: its disks are kept
    bool after_halt = false;          // down, or not yet normal again, after its replica halted
    bool damage_found = false;        // a restart found (excused) damage; the node has not recovered since
    injected_damage damage_at_loss;   // the counts when its disks were last lost (or at setup)
    vsr::stored_state opened = vsr::stored_state::empty;  // what the store held at the last start
    // checker progress, per incarnation
    std::uint64_t checked_executed = 0;
    std::uint64_t checked_primary_view = 0;
    std::uint64_t checked_checkpoint_op = 0;
};

struct chunk_frame {
    std::vector<std::uint8_t> header;  // frame_header_size bytes
    std::shared_ptr<const std::vector<std::uint8_t>> body;
};

/// One TCP-like stream between a proxy and a node: in order, both ways. A break loses
/// everything in flight; the proxy learns the outstanding request ids.
struct connection {
    bool up = true;
    bool blocked = false;  // partitioned: frames wait (TCP retransmits) until healed or the keepalive breaks it
    bool reconnect_pending = false;
    std::uint64_t generation = 0;
    std::deque<chunk_frame> to_node, to_proxy;            // in transit (arrival events pending)
    std::deque<chunk_frame> held_to_node, held_to_proxy;  // arrived while blocked or the node paused
    std::set<std::uint64_t> outstanding;                  // request ids sent, not answered
    std::uint64_t last_to_node_ns = 0, last_to_proxy_ns = 0;
    std::uint64_t healthy_since_ns = 0;  // up, unblocked, node serving; UINT64_MAX while not
};

struct proxy_state {
    sim_bus bus;
    std::unique_ptr<vsr::xoshiro256> random;
    std::unique_ptr<sim_client> client;
    metadata_adapter adapter;
    sim_transport transport;
    std::unique_ptr<service_type> service;
    std::unique_ptr<janitor_type> janitor;
};

enum class user_op : std::uint8_t { none, put, get, head, del, list };

struct user_state {
    std::uint32_t proxy = 0;
    std::unique_ptr<vsr::xoshiro256> random;
    user_op op = user_op::none;
    std::uint64_t generation = 0;  // bumps per operation; stale events are ignored
    std::size_t history = 0;       // index in history_ (or lists_ for list)
    bool final_reader = false;
    // put
    std::uint64_t upload = 0;
    std::uint64_t put_id = 0;
    std::uint64_t size = 0, offered = 0, abort_at = no_abort;
    bool waiting_writable = false, ended = false;
    // get
    tfs::object_result object;
    std::uint64_t read = 0;
    bool reading = false, consume_pending = false;
    std::uint64_t read_start_ns = 0;
    std::uint64_t read_put = 0, range_first = 0, range_length = 0, received = 0;
    std::vector<std::optional<tfs::md5_digest>> last_md5;  // per key: an etag this user saw
};

/// One PUT the workload started: its content is fill_content(id, ...).
struct put_record {
    std::uint32_t key = 0;
    std::uint64_t size = 0;
    tfs::md5_digest md5{};
    std::size_t history = 0;
    bool executed = false;  // the canonical log executed its put_object
    bool executed_ok = false;
    std::uint64_t position = 0;
    std::vector<tfs::chunk_location> committed_chunks;  // as the committed put_object listed them
};

struct list_record {
    std::string prefix;
    std::uint64_t invoke_ns = 0, complete_ns = 0;
    bool ok = false, truncated = false;
    std::vector<tfs::list_objects_entry> entries;
};

/// Per chunk digest: nodes that were ever listed holders, and nodes whose copy a fault destroyed.
struct chunk_fate {
    tfs::node_set ever_holders = 0;
    tfs::node_set destroyed = 0;
};

inline std::string hex_prefix(const tfs::sha256_digest& sha) {
    return tfs::to_hex(std::span<const std::uint8_t>(sha.data(), 6));
}

class objectstore_simulation {
public:
    explicit objectstore_simulation(const objectstore_options& options) : options_(options), random_(options.seed) {}
    objectstore_result run();

    // policies' entry points
    void send(std::uint32_t from, std::uint32_t to, std::span<const std::uint8_t> message);
    std::uint32_t client_node_of(std::uint64_t client_id) const {
        const auto it = client_owner_.find(client_id);
        return it == client_owner_.end() ? UINT32_MAX : it->second;
    }
    std::uint32_t replica_count() const { return options_.replicas; }
    bool chunk_send(std::uint32_t proxy, std::uint8_t node, const tfs::frame_header& header,
                    std::shared_ptr<const std::vector<std::uint8_t>> body);
    bool chunk_connected(std::uint32_t proxy, std::uint8_t node) const {
        return node < options_.replicas && connections_[proxy * options_.replicas + node].up;
    }
    void on_execute(std::uint32_t node, const vsr::operation_context& context, std::span<const std::uint8_t> bytes,
                    const std::vector<std::uint8_t>& out);
    void on_open_stored(std::uint32_t node, vsr::stored_state state) { nodes_[node].opened = state; }

    // replica_cluster hooks
    std::uint32_t impaired_replicas() const;
    static bool impaired(const node_state& node);
    void note_impaired();
    bool replica_up(std::uint32_t index) const { return nodes_[index].replica != nullptr; }
    bool replica_paused(std::uint32_t index) const { return nodes_[index].paused; }
    void crash_replica(std::uint32_t index);
    std::uint64_t partition_side(std::uint64_t side) const { return side; }
    void partitioned(std::uint64_t side);
    void clogged() {}
    void healed();
    void resuming(std::uint32_t index) {
        trace(event_kind::resume, index, 0, 0);
        nodes_[index].paused = false;
        update_node_links(index);
    }
    void resumed(std::uint32_t index) {
        for (std::uint32_t p = 0; p < proxies_.size(); ++p) flush_held(p * options_.replicas + index);
        schedule_flush(index);
    }
    void partition_healed() {
        trace(event_kind::heal_partition, 0, 0, 0);
        for (std::uint32_t i = 0; i < connections_.size(); ++i) set_link_blocked(i, false);
    }
    void delivering(std::uint32_t to, std::uint32_t from, std::span<const std::uint8_t> message);
    void replica_receive(std::uint32_t index, std::span<const std::uint8_t> message);
    void client_receive(std::uint32_t index, std::span<const std::uint8_t> message) {
        proxies_[index].client->on_message(message);
    }
    void pause_replica(std::uint32_t index);

private:
    // setup
    void setup();
    void setup_nodes();
    void setup_proxies();
    void setup_users();
    void describe_setup();
    void draw_disk_faults(node_state& node);
    void setup_storage();
    void start_node(std::uint32_t index, bool recovering);
    void count_restart(std::uint32_t index, const injected_damage& before_start);
    injected_damage damage_injected(std::uint32_t index) const;
    void schedule(std::uint64_t delay_ns, event_kind kind, std::uint32_t a, std::uint64_t b = 0);
    void handle(const event& e);
    // VSR network
    void replica_tick(std::uint32_t index);
    void schedule_flush(std::uint32_t index);
    void flush_replica(std::uint32_t index);
    bool restart_if_halted(std::uint32_t index);
    void proxy_tick(std::uint32_t index);
    // chunk connections
    connection& conn(std::uint32_t proxy, std::uint32_t node) { return connections_[proxy * options_.replicas + node]; }
    void chunk_arrive_at_node(std::uint32_t index, std::uint64_t generation);
    void chunk_arrive_at_proxy(std::uint32_t index, std::uint64_t generation);
    bool node_accepts(std::uint32_t node) const { return nodes_[node].store && !nodes_[node].paused; }
    void process_at_node(std::uint32_t index, chunk_frame frame);
    void process_at_proxy(std::uint32_t index, chunk_frame frame);
    void flush_held(std::uint32_t index);
    void break_connection(std::uint32_t index);
    void try_reconnect(std::uint32_t index);
    void set_link_blocked(std::uint32_t index, bool blocked);
    void update_link_health(std::uint32_t index);
    void update_node_links(std::uint32_t node);
    // users
    void user_step(std::uint32_t user, std::uint64_t generation);
    void start_operation(std::uint32_t user);
    void start_put(std::uint32_t user);
    void feed_put(std::uint32_t user);
    void on_put_done(std::uint32_t user, std::uint64_t generation, const tfs::put_outcome& outcome);
    void start_get(std::uint32_t user, std::uint32_t key, bool with_data, bool whole);
    void on_lookup(std::uint32_t user, std::uint64_t generation, tfs::service_status s, const tfs::object_result& r,
                   bool whole);
    void on_read_data(std::uint32_t user, std::uint64_t generation, std::span<const std::uint8_t> piece);
    void on_read_done(std::uint32_t user, std::uint64_t generation, tfs::service_status s);
    void start_delete(std::uint32_t user);
    void start_list(std::uint32_t user);
    void finish_operation(std::uint32_t user);
    kv_history_op& begin_history(std::uint32_t user, kv_kind kind, std::uint32_t key);
    std::string value_name(std::uint64_t put_id) const {
        return puts_[put_id].size == 0 ? "empty" : "p" + std::to_string(put_id);
    }
    std::optional<std::uint64_t> put_by_md5(const tfs::md5_digest& md5) const {
        const auto it = put_by_md5_.find(md5);
        if (it == put_by_md5_.end()) return std::nullopt;
        return it->second;
    }
    // faults
    void fault_step();
    void disk_fault_step();
    bool disk_may_be_lost(std::uint32_t index) const;
    void crash_node(std::uint32_t index, bool wipe, bool lose_disks, crash_cause cause);
    void power_loss();
    void allow_halting_faults(bool allowed);
    void restart_node(std::uint32_t index);
    void heal_all();
    void destroy(std::uint32_t node, const tfs::sha256_digest& sha);
    void tamper_chunk_copies(bool garble);
    // checkers
    void check_replica(std::uint32_t index);
    void check_primary(std::uint32_t index);
    void check_checkpoint(std::uint32_t index);
    std::uint64_t canonical_digest(std::uint64_t op) const;
    void check_put_durability(std::uint64_t put_id);
    void check_gc_remove(std::uint32_t node, const tfs::sha256_digest& sha);
    void check_reference(std::uint32_t node, const tfs::sha256_digest& sha, const char* what);
    void check_final_loss(std::uint32_t user);
    void check_success(std::uint32_t user, tfs::service_status s);
    bool cluster_settled() const;
    std::uint64_t invoked_ns(const user_state& u) const {
        return u.op == user_op::list ? lists_[u.history].invoke_ns : history_[u.history].invoke_ns;
    }
    void check_data_lost(std::uint32_t user);
    bool good_copy_in_reach(std::uint32_t proxy, const tfs::chunk_location& chunk, std::uint64_t since_ns) const;
    void destroy_if_faulted(std::uint32_t node, const tfs::sha256_digest& sha, const file_faults& before);
    void watchdog();
    void final_step();
    bool replicas_converged() const;
    bool janitors_stopped_ = false;  // final phase: no new janitor passes, so the cluster goes idle
    void check_chunk_placement();
    std::string janitor_summary() const {
        std::string text;
        for (std::uint32_t p = 0; p < proxies_.size(); ++p) {
            const auto& j = proxies_[p].janitor->counters();
            text += "; janitor " + std::to_string(p) + ": passes=" + std::to_string(j.passes) +
                    " aborted=" + std::to_string(j.passes_aborted) + " repairs=" + std::to_string(j.repairs) +
                    " repair_failures=" + std::to_string(j.repair_failures) +
                    " collected=" + std::to_string(j.chunks_collected) +
                    " refused=" + std::to_string(j.collection_refused) +
                    " stale_removed=" + std::to_string(j.stale_holders_removed) +
                    " candidates=" + std::to_string(proxies_[p].janitor->candidates());
        }
        for (std::uint32_t i = 0; i < connections_.size(); ++i) {
            const connection& c = connections_[i];
            text += " c" + std::to_string(i) + (c.up ? "+" : "-") + (c.blocked ? "b" : "") +
                    std::to_string(c.outstanding.size());
        }
        text += " now=" + std::to_string(now_ / ns_per_ms) +
                "ms phase_start=" + std::to_string(phase_start_ns_ / ns_per_ms);
        return text;
    }
    void check_lists();
    void final_checks();
    bool workload_done() const { return issued_ == options_.requests && active_users_ == 0; }
    void fail(const std::string& property, const std::string& detail);
    void trace(event_kind kind, std::uint32_t a, std::uint64_t b, std::uint64_t c);
    std::string format_trace() const;
    void mix_trace(std::uint64_t value) { trace_.mix(value); }
    replica_cluster<event_kind> cluster() { return {random_, profile_, network_, events_, now_, options_.replicas}; }
    /// Good copies of the chunk on the disks of nodes in `among` that are up (or down too).
    std::uint64_t copies_on_nodes(const tfs::sha256_digest& sha, tfs::node_set among, bool down_too = false) const;

    objectstore_options options_;
    vsr::xoshiro256 random_;
    fault_profile profile_;
    vsr::config config_;
    tfs::metadata_options metadata_options_;
    tfs::service_options service_options_;
    tfs::janitor_options janitor_options_;
    objectstore_result result_;

    std::uint64_t now_ = 0;
    event_queue<event_kind> events_;
    vsr_network network_;

    std::vector<node_state> nodes_;
    // the metadata replicas' storage, drawn from a stream of its own (the other draws stay as
    // they were, whichever mode a seed runs)
    vsr::xoshiro256 storage_random_{0};
    bool persistent_ = false;
    std::uint32_t rot_per_mille_ = 0;        // per fault step, on each faulty disk
    std::uint32_t full_disk_per_mille_ = 0;  // per fault step, on each faulty metadata disk
    std::uint64_t sync_latency_max_us_ = 1'000;
    std::uint32_t power_down_ = 0;  // nodes down in a power loss, awaiting their restart
    std::vector<proxy_state> proxies_;
    std::vector<connection> connections_;  // [proxy * n + node]
    std::vector<user_state> users_;
    std::unordered_map<std::uint64_t, std::uint32_t> client_owner_;
    std::uint32_t keys_ = 1;
    std::vector<std::string> key_names_;
    std::uint64_t chunk_frame_latency_min_us_ = 50, chunk_frame_latency_max_us_ = 500;
    std::uint32_t abort_per_mille_ = 0;
    std::uint64_t scrub_pass_slices_ = 1;
    std::uint64_t think_ns_max_ = 0;
    std::uint32_t heal_at_request_ = 0;
    std::uint32_t client_deadline_ms_ = 0;
    std::vector<tfs::chunk_entry> scrub_before_;
    std::vector<file_faults> scrub_faults_before_;
    std::uint64_t object_size_max_ = 0;

    // faults
    bool faults_active_ = true;
    std::uint64_t heal_time_ = 0;
    std::uint64_t settled_ns_ = UINT64_MAX;  // after healing: every node normal in one view, every link up
    bool wipes_ = false, disk_rot_ = false, connection_breaks_ = false;
    std::uint64_t keepalive_ns_ = 0;

    // workload and history
    std::uint32_t issued_ = 0;
    std::uint32_t active_users_ = 0;
    std::vector<kv_history_op> history_;
    std::vector<std::uint64_t> history_put_;       // per history op: the put id (puts), else UINT64_MAX
    std::vector<std::uint8_t> history_abandoned_;  // aborted by the user (definitely not executed)
    std::vector<put_record> puts_;
    std::map<tfs::md5_digest, std::uint64_t> put_by_md5_;  // non-empty puts
    std::vector<list_record> lists_;
    bool tampered_ = false;

    // canonical execution (shadow) and chunk bookkeeping
    tfs::metadata_state_machine shadow_;
    std::uint64_t shadow_position_ = 0;
    std::map<std::uint64_t, std::uint64_t> canonical_results_;     // position -> hash of operation and result
    std::map<std::uint64_t, std::uint64_t> canonical_digests_;     // op -> the shadow's digest after it
    std::vector<std::uint64_t> commit_view_bound_;                 // op - 1 -> it was committed in a view <= this
    std::map<std::uint64_t, std::uint64_t> checkpoint_checksums_;  // op -> the first checkpoint's checksum
    std::uint64_t metadata_now_ns_ = 0;  // the metadata clock: timestamp of the latest canonical op
    std::uint64_t phase_start_metadata_ns_ = 0;
    std::vector<std::uint8_t> shadow_out_;
    std::map<tfs::sha256_digest, chunk_fate> fates_;
    std::set<std::pair<std::uint32_t, tfs::sha256_digest>> written_;     // (node, sha) some write was acknowledged
    std::set<std::pair<std::uint32_t, tfs::sha256_digest>> gc_removed_;  // removed by a remove frame, not written since
    // (connection, sha): when the node last answered a read of it badly
    std::map<std::pair<std::uint32_t, tfs::sha256_digest>, std::uint64_t> bad_reads_;

    // final phase
    enum class final_phase : std::uint8_t { none, repair, read_back, collect, done };
    final_phase phase_ = final_phase::none;
    std::uint64_t phase_start_ns_ = 0;
    std::uint64_t phase_passes_ = 0;
    std::uint32_t final_key_ = 0;
    std::uint64_t done_since_ = 0;

    trace_ring<trace_record, trace_tail_size, mix_trace_hash> trace_;
};

}  // namespace sim::objectstore_internal
