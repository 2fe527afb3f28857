// The object store simulator. See objectstore_simulator.hpp, and docs in the checkers below.
//
// What is simulated, per seed:
// - nodes: vsr::basic_replica<metadata state machine> + toastyfs::chunk_store on a
//   sim::sim_chunk_disk, answering chunk frames through toastyfs::handle_chunk_request;
// - proxies: vsr::basic_client + toastyfs::object_service + toastyfs::janitor; the chunk
//   transport is a set of ordered per-(proxy, node) connections with latency, blackholes
//   (partitions), breaks (on_chunk_disconnect with the outstanding ids) and reconnects;
// - users: sequential clients issuing PUT (streamed in random pieces, honouring backpressure,
//   sometimes aborted), GET (whole and ranges, consumed piece by piece), HEAD, DELETE, LIST and
//   conditional PUT/DELETE over a small key space;
// - faults, swarm-drawn per seed: the KV simulator's network faults, node crash + restart (disk
//   kept, or wiped), pauses, connection breaks, disk faults (bit flips, lost/torn writes, EIO,
//   full disk, rot at rest) and corrupted reply bodies (memory faults on a node), with at most
//   f nodes down or recovering at once.
#include "sim/objectstore_simulator.hpp"

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
#include "sim/sim_chunk_disk.hpp"
#include "toastyfs/chunk_server.hpp"
#include "toastyfs/chunk_store.hpp"
#include "toastyfs/janitor.hpp"
#include "toastyfs/metadata_state_machine.hpp"
#include "toastyfs/object_service.hpp"
#include "vsr/client.hpp"
#include "vsr/replica.hpp"

namespace sim {
namespace {

namespace tfs = toastyfs;
using crypto = platform::openssl_crypto;

constexpr std::size_t trace_tail_size = 64;
constexpr std::uint64_t no_abort = UINT64_MAX;

std::uint64_t mix64(std::uint64_t x) {
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30U)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27U)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31U);
}

/// The content of put `put_id` at byte offsets [offset, offset + out.size()): a pure function,
/// so content identifies the put and nothing is stored.
void fill_content(std::uint64_t put_id, std::uint64_t offset, std::span<std::uint8_t> out) {
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
/// copy, and used by the checkers).
struct observed_machine {
    tfs::metadata_state_machine machine;
    objectstore_simulation* observer = nullptr;
    observed_machine() = default;
    observed_machine(const tfs::metadata_options& options, objectstore_simulation* watcher) : machine(options), observer(watcher) {}
    void execute(const vsr::operation_context& context, std::span<const std::uint8_t> bytes, std::vector<std::uint8_t>& out);
    void snapshot(std::vector<std::uint8_t>& out) const { machine.snapshot(out); }
    bool restore(std::span<const std::uint8_t> bytes) { return machine.restore(bytes); }
    std::size_t result_size_max() const noexcept { return machine.result_size_max(); }
    // Queries (GET, HEAD, LIST, the janitor's reads) take the production read path: answered by
    // the primary without a log entry, so the observer never sees them.
    bool is_query(std::span<const std::uint8_t> bytes) const noexcept { return machine.is_query(bytes); }
    void query(std::span<const std::uint8_t> bytes, std::vector<std::uint8_t>& out) const { machine.query(bytes, out); }
};
static_assert(vsr::state_machine_with_queries<observed_machine>);

using sim_replica = vsr::basic_replica<observed_machine, sim_bus, sim_clock, vsr::xoshiro256>;
using sim_client = vsr::basic_client<sim_bus, vsr::xoshiro256>;

/// The proxy's metadata client: the VSR client, remembering where the result being delivered
/// executed (the linearizability oracle's order).
struct metadata_adapter {
    sim_client* client = nullptr;
    std::uint64_t position = 0;  // op << 20 | index of the result being delivered, else 0
    vsr::submit_error submit(std::span<const std::uint8_t> operation, std::function<void(const vsr::client_result&)> done,
                             vsr::request_kind kind) {
        return client->submit(operation, [this, done = std::move(done)](const vsr::client_result& r) {
            const std::uint64_t saved = position;
            // A query read the state after every request of entry op: it sorts after them all
            // (batch indices stay below 2^20), tied with the other queries of that state.
            const std::uint64_t index = r.index == vsr::reply_index_query ? 0xFFFFF : r.index;
            position = r.status == vsr::result_status::ok ? (r.op << 20 | index) : 0;
            done(r);
            position = saved;
        }, kind);
    }
};
static_assert(tfs::metadata_client<metadata_adapter>);

struct sim_transport {
    objectstore_simulation* simulation = nullptr;
    std::uint32_t proxy = 0;
    bool send(std::uint8_t node, const tfs::frame_header& header, std::shared_ptr<const std::vector<std::uint8_t>> body);
    bool connected(std::uint8_t node);
};
static_assert(tfs::chunk_transport<sim_transport>);

using store_type = tfs::chunk_store<sim_chunk_disk, crypto>;
using service_type = tfs::object_service<metadata_adapter, sim_transport, crypto>;
using janitor_type = tfs::janitor<service_type>;

enum class event_kind : std::uint8_t {
    deliver, replica_tick, proxy_tick, chunk_to_node, chunk_to_proxy, user_step, fault_step, restart, resume,
    heal_partition, heal_all, watchdog, reconnect, keepalive, final_step,
};
constexpr const char* event_names[] = {"deliver", "replica_tick", "proxy_tick", "chunk_to_node", "chunk_to_proxy",
                                       "user_step", "fault", "restart/crash", "resume", "heal_partition", "heal_all",
                                       "watchdog", "reconnect", "keepalive", "final_step"};

struct event {
    std::uint64_t time;
    std::uint64_t seq;
    event_kind kind;
    std::uint32_t a;
    std::uint64_t b;
    bool operator>(const event& other) const { return std::pair(time, seq) > std::pair(other.time, other.seq); }
};

struct trace_record {
    std::uint64_t time = 0;
    event_kind kind = event_kind::deliver;
    std::uint32_t a = 0;
    std::uint64_t b = 0, c = 0;
};

struct node_state {
    sim_bus bus;
    sim_clock clock;
    std::unique_ptr<vsr::xoshiro256> random;
    std::unique_ptr<sim_replica> replica;  // null while crashed
    std::unique_ptr<sim_chunk_disk> disk;
    std::unique_ptr<store_type> store;     // null while crashed
    chunk_disk_faults faults;              // drawn per seed; zeroed when healed
    std::uint32_t reply_corruption_per_mille = 0;
    bool paused = false;
    std::vector<std::uint32_t> held;       // VSR deliveries postponed while paused
    std::uint64_t tick_interval_ns = 0;
    std::uint64_t ticks = 0;
    std::uint64_t last_view = 0;
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

std::string hex_prefix(const tfs::sha256_digest& sha) { return tfs::to_hex(std::span<const std::uint8_t>(sha.data(), 6)); }

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
    void on_execute(const vsr::operation_context& context, std::span<const std::uint8_t> bytes, const std::vector<std::uint8_t>& out);

private:
    // setup
    void setup();
    void draw_disk_faults(node_state& node);
    void start_node(std::uint32_t index, bool recovering);
    void schedule(std::uint64_t delay_ns, event_kind kind, std::uint32_t a, std::uint64_t b = 0);
    void handle(const event& e);
    // VSR network
    void deliver(std::uint32_t to, std::uint32_t buffer);
    void replica_tick(std::uint32_t index);
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
    void on_lookup(std::uint32_t user, std::uint64_t generation, tfs::service_status s, const tfs::object_result& r, bool whole);
    void on_read_data(std::uint32_t user, std::uint64_t generation, std::span<const std::uint8_t> piece);
    void on_read_done(std::uint32_t user, std::uint64_t generation, tfs::service_status s);
    void start_delete(std::uint32_t user);
    void start_list(std::uint32_t user);
    void finish_operation(std::uint32_t user);
    kv_history_op& begin_history(std::uint32_t user, kv_kind kind, std::uint32_t key);
    std::string value_name(std::uint64_t put_id) const { return puts_[put_id].size == 0 ? "empty" : "p" + std::to_string(put_id); }
    std::optional<std::uint64_t> put_by_md5(const tfs::md5_digest& md5) const {
        const auto it = put_by_md5_.find(md5);
        if (it == put_by_md5_.end()) return std::nullopt;
        return it->second;
    }
    // faults
    std::uint32_t impaired_nodes() const;
    void fault_step();
    void crash_node(std::uint32_t index, bool wipe);
    void restart_node(std::uint32_t index);
    void heal_all();
    void destroy(std::uint32_t node, const tfs::sha256_digest& sha);
    void tamper_chunk_copies(bool garble);
    // checkers
    void check_replica(std::uint32_t index);
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
            text += "; janitor " + std::to_string(p) + ": passes=" + std::to_string(j.passes) + " aborted=" + std::to_string(j.passes_aborted) +
                    " repairs=" + std::to_string(j.repairs) + " repair_failures=" + std::to_string(j.repair_failures) +
                    " collected=" + std::to_string(j.chunks_collected) + " refused=" + std::to_string(j.collection_refused) +
                    " stale_removed=" + std::to_string(j.stale_holders_removed) + " candidates=" + std::to_string(proxies_[p].janitor->candidates());
        }
        for (std::uint32_t i = 0; i < connections_.size(); ++i) {
            const connection& c = connections_[i];
            text += " c" + std::to_string(i) + (c.up ? "+" : "-") + (c.blocked ? "b" : "") + std::to_string(c.outstanding.size());
        }
        text += " now=" + std::to_string(now_ / ns_per_ms) + "ms phase_start=" + std::to_string(phase_start_ns_ / ns_per_ms);
        return text;
    }
    void check_lists();
    void final_checks();
    bool workload_done() const { return issued_ == options_.requests && active_users_ == 0; }
    void fail(const std::string& property, const std::string& detail);
    void trace(event_kind kind, std::uint32_t a, std::uint64_t b, std::uint64_t c);
    std::string format_trace() const;
    void mix_trace(std::uint64_t value) { trace_hash_ = mix64(trace_hash_ ^ value); }
    std::uint64_t copies_on_nodes(const tfs::sha256_digest& sha, tfs::node_set among) const;

    objectstore_options options_;
    vsr::xoshiro256 random_;
    fault_profile profile_;
    vsr::config config_;
    tfs::metadata_options metadata_options_;
    tfs::service_options service_options_;
    tfs::janitor_options janitor_options_;
    objectstore_result result_;

    std::uint64_t now_ = 0;
    std::uint64_t seq_ = 0;
    std::priority_queue<event, std::vector<event>, std::greater<>> events_;
    vsr_network network_;

    std::vector<node_state> nodes_;
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
    std::vector<std::uint64_t> history_put_;  // per history op: the put id (puts), else UINT64_MAX
    std::vector<std::uint8_t> history_abandoned_;  // aborted by the user (definitely not executed)
    std::vector<put_record> puts_;
    std::map<tfs::md5_digest, std::uint64_t> put_by_md5_;  // non-empty puts
    std::vector<list_record> lists_;
    bool tampered_ = false;

    // canonical execution (shadow) and chunk bookkeeping
    tfs::metadata_state_machine shadow_;
    std::uint64_t shadow_position_ = 0;
    std::uint64_t metadata_now_ns_ = 0;  // the metadata clock: timestamp of the latest canonical op
    std::uint64_t phase_start_metadata_ns_ = 0;
    std::vector<std::uint8_t> shadow_out_;
    std::map<tfs::sha256_digest, chunk_fate> fates_;
    std::set<std::pair<std::uint32_t, tfs::sha256_digest>> written_;     // (node, sha) some write was acknowledged
    std::set<std::pair<std::uint32_t, tfs::sha256_digest>> gc_removed_;  // removed by a remove frame, not written since
    std::map<std::pair<std::uint32_t, tfs::sha256_digest>, std::uint64_t> bad_reads_;  // (connection, sha): last bad answer

    // final phase
    enum class final_phase : std::uint8_t { none, repair, read_back, collect, done };
    final_phase phase_ = final_phase::none;
    std::uint64_t phase_start_ns_ = 0;
    std::uint64_t phase_passes_ = 0;
    std::uint32_t final_key_ = 0;
    std::uint64_t done_since_ = 0;

    std::array<trace_record, trace_tail_size> trace_{};
    std::uint64_t trace_count_ = 0;
    std::uint64_t trace_hash_ = 0;
};

// ---- policies ---------------------------------------------------------------------------------

void observed_machine::execute(const vsr::operation_context& context, std::span<const std::uint8_t> bytes, std::vector<std::uint8_t>& out) {
    machine.execute(context, bytes, out);
    if (observer != nullptr) observer->on_execute(context, bytes, out);
}

bool sim_transport::send(std::uint8_t node, const tfs::frame_header& header, std::shared_ptr<const std::vector<std::uint8_t>> body) {
    return simulation->chunk_send(proxy, node, header, std::move(body));
}

bool sim_transport::connected(std::uint8_t node) { return simulation->chunk_connected(proxy, node); }

// ---- setup ------------------------------------------------------------------------------------

void objectstore_simulation::schedule(std::uint64_t delay_ns, event_kind kind, std::uint32_t a, std::uint64_t b) {
    events_.push(event{now_ + delay_ns, seq_++, kind, a, b});
}

void objectstore_simulation::draw_disk_faults(node_state& node) {
    chunk_disk_faults& f = node.faults;
    f = {};
    auto maybe = [&](std::uint32_t per_mille_max) {
        return vsr::chance(random_, 1, 3) ? static_cast<std::uint32_t>(vsr::uniform_between(random_, 1, per_mille_max)) : 0u;
    };
    f.bit_flip_at_rest_per_mille = maybe(5);
    f.bit_flip_on_read_per_mille = maybe(30);
    f.lost_write_per_mille = maybe(30);
    f.torn_write_per_mille = maybe(30);
    f.leftover_temporary_per_mille = maybe(50);
    f.read_error_per_mille = maybe(30);
    f.write_error_per_mille = maybe(30);
    f.remove_error_per_mille = maybe(30);
    if (vsr::chance(random_, 1, 6)) f.capacity_bytes = std::uint64_t{service_options_.chunk_size} * vsr::uniform_between(random_, 4, 64);
    node.reply_corruption_per_mille = vsr::chance(random_, 1, 2) ? static_cast<std::uint32_t>(vsr::uniform_between(random_, 1, 40)) : 0;
}

void objectstore_simulation::setup() {
    const std::uint32_t n = options_.replicas;
    const std::uint32_t f = (n - 1) / 2;
    profile_ = draw_fault_profile(random_);
    profile_.clogging = false;  // not modelled here
    // Clocks drift apart by up to 2%: the metadata clock (the primary's) may stall for a while
    // after a view change, which delays leases and collection but must never break safety.
    profile_.clock_drift_per_mille = std::min<std::uint32_t>(profile_.clock_drift_per_mille, 20);
    profile_.message_pool_max = std::max<std::uint32_t>(profile_.message_pool_max, 64);
    wipes_ = profile_.crashes && vsr::chance(random_, 1, 2);
    disk_rot_ = vsr::chance(random_, 1, 3);
    connection_breaks_ = vsr::chance(random_, 1, 2);
    keepalive_ns_ = vsr::uniform_between(random_, 500, 5'000) * ns_per_ms;
    chunk_frame_latency_min_us_ = vsr::uniform_between(random_, 20, 500);
    chunk_frame_latency_max_us_ = chunk_frame_latency_min_us_ + vsr::uniform_between(random_, 0, 5'000);

    config_.cluster = static_cast<std::uint32_t>(random_.next_u64());
    config_.replica_count = static_cast<std::uint8_t>(n);
    config_.pipeline_max = static_cast<std::uint32_t>(vsr::uniform_between(random_, 1, 8));
    config_.batch_requests_max = static_cast<std::uint32_t>(vsr::uniform_between(random_, 1, 64));
    config_.message_size_max = 1 << 20;  // results carry chunk lists up to result_size_max

    const std::uint64_t lease_ms = vsr::uniform_between(random_, 2'000, 10'000);
    metadata_options_.upload_lease_ns = lease_ms * ns_per_ms;
    metadata_options_.bug = options_.bug;
    const std::uint32_t inline_sizes[] = {64, 1024, 4096};
    metadata_options_.inline_size_max = inline_sizes[vsr::uniform_below(random_, 3)];
    shadow_ = tfs::metadata_state_machine(metadata_options_);

    const std::size_t chunk_sizes[] = {1024, 4096, 16 * 1024, 64 * 1024};
    service_options_.cluster = config_.cluster;
    service_options_.node_count = static_cast<std::uint8_t>(n);
    service_options_.replication_factor = static_cast<std::uint8_t>(vsr::uniform_between(random_, f + 1, n));
    service_options_.write_copies_min = static_cast<std::uint8_t>(f + 1);
    service_options_.chunk_size = chunk_sizes[vsr::uniform_below(random_, 4)];
    service_options_.inline_size_max = metadata_options_.inline_size_max;
    service_options_.buffer_bytes_max = vsr::chance(random_, 1, 3)
        ? service_options_.chunk_size * vsr::uniform_between(random_, 1, 3) : std::size_t{64} << 20;
    service_options_.chunk_writes_per_upload_max = static_cast<std::uint32_t>(vsr::uniform_between(random_, 1, 4));
    service_options_.read_ahead_chunks = static_cast<std::uint32_t>(vsr::uniform_between(random_, 1, 3));
    service_options_.chunk_request_timeout_ns = vsr::uniform_between(random_, 500, 5'000) * ns_per_ms;
    service_options_.bug = options_.bug;
    object_size_max_ = service_options_.chunk_size * vsr::uniform_between(random_, 1, 5) + vsr::uniform_below(random_, service_options_.chunk_size);

    janitor_options_.interval_ns = vsr::uniform_between(random_, 100, 2'000) * ns_per_ms;
    janitor_options_.upload_lease_ns = metadata_options_.upload_lease_ns;
    janitor_options_.node_down_grace_ns = vsr::uniform_between(random_, 0, 5'000) * ns_per_ms;
    janitor_options_.replication_factor = service_options_.replication_factor;
    janitor_options_.bug = options_.bug;
    scrub_pass_slices_ = vsr::uniform_between(random_, 20, 100);
    abort_per_mille_ = vsr::chance(random_, 1, 2) ? static_cast<std::uint32_t>(vsr::uniform_between(random_, 10, 150)) : 0;

    keys_ = static_cast<std::uint32_t>(vsr::uniform_between(random_, 1, 6));
    for (std::uint32_t k = 0; k < keys_; ++k) key_names_.push_back((k % 2 == 0 ? "a/" : "b/") + std::to_string(k));

    nodes_.resize(n);
    for (std::uint32_t i = 0; i < n; ++i) {
        node_state& node = nodes_[i];
        node.bus = sim_bus{this, i};
        const auto drift = profile_.clock_drift_per_mille;
        node.clock = sim_clock{&now_, drift == 0 ? 0 : static_cast<std::int64_t>(vsr::uniform_between(random_, 0, 2 * drift)) - drift,
                               vsr::uniform_below(random_, 1'000'000'000)};
        node.tick_interval_ns = static_cast<std::uint64_t>(static_cast<std::int64_t>(config_.tick_ms * ns_per_ms) -
                                                           static_cast<std::int64_t>(config_.tick_ms * ns_per_ms / 1000) * node.clock.drift_per_mille);
        draw_disk_faults(node);
        node.disk = std::make_unique<sim_chunk_disk>(random_.next_u64(), node.faults);
        start_node(i, false);
        schedule(vsr::uniform_below(random_, node.tick_interval_ns), event_kind::replica_tick, i);
    }

    const auto proxy_count = static_cast<std::uint32_t>(vsr::uniform_between(random_, 1, 2));
    proxies_.resize(proxy_count);
    connections_.resize(std::size_t{proxy_count} * n);
    network_ = vsr_network(profile_, n, proxy_count);
    vsr::client_options client_options;
    client_options.cluster = config_.cluster;
    client_options.replica_count = config_.replica_count;
    client_options.tick_ms = config_.tick_ms;
    client_options.message_size_max = config_.message_size_max;
    client_options.sessions = static_cast<std::uint32_t>(vsr::uniform_between(random_, 2, 8));
    client_options.deadline_ms = vsr::chance(random_, 1, 3) ? 0 : static_cast<std::uint32_t>(vsr::uniform_between(random_, 3'000, 15'000));
    for (std::uint32_t p = 0; p < proxy_count; ++p) {
        proxy_state& proxy = proxies_[p];
        const std::uint32_t id = n + p;
        proxy.bus = sim_bus{this, id};
        proxy.random = std::make_unique<vsr::xoshiro256>(random_.next_u64());
        proxy.client = std::make_unique<sim_client>(client_options, proxy.bus, *proxy.random);
        for (const auto client_id : proxy.client->client_ids()) client_owner_.emplace(client_id, id);
        proxy.adapter.client = proxy.client.get();
        proxy.transport = sim_transport{this, p};
        auto options = service_options_;
        options.request_id_seed = p + 1;
        proxy.service = std::make_unique<service_type>(options, proxy.adapter, proxy.transport);
        proxy.janitor = std::make_unique<janitor_type>(janitor_options_, *proxy.service, static_cast<std::uint8_t>(n));
        schedule(vsr::uniform_below(random_, config_.tick_ms * ns_per_ms), event_kind::proxy_tick, p);
    }

    const auto user_count = static_cast<std::uint32_t>(vsr::uniform_between(random_, 1, 6));
    users_.resize(user_count);
    for (std::uint32_t u = 0; u < user_count; ++u) {
        users_[u].proxy = u % proxy_count;
        users_[u].random = std::make_unique<vsr::xoshiro256>(random_.next_u64());
        users_[u].last_md5.resize(keys_);
        schedule(vsr::uniform_below(random_, 50 * ns_per_ms), event_kind::user_step, u, 0);
    }
    // Faults last until a drawn share of the workload has been issued (so they overlap it),
    // or 60 s at most.
    think_ns_max_ = std::array<std::uint64_t, 3>{5, 50, 200}[vsr::uniform_below(random_, 3)] * ns_per_ms;
    heal_at_request_ = static_cast<std::uint32_t>(options_.requests * vsr::uniform_between(random_, 50, 100) / 100);
    schedule(60'000 * ns_per_ms, event_kind::heal_all, 0);
    schedule(profile_.fault_step_ms * ns_per_ms, event_kind::fault_step, 0);
    schedule(1000 * ns_per_ms, event_kind::watchdog, 0);

    std::ostringstream profile;
    profile << profile_.describe() << " | wipes=" << wipes_ << " rot=" << disk_rot_ << " breaks=" << connection_breaks_
            << " keepalive=" << keepalive_ns_ / ns_per_ms << "ms chunk=" << service_options_.chunk_size
            << " rf=" << int{service_options_.replication_factor} << " copies_min=" << int{service_options_.write_copies_min}
            << " inline<=" << service_options_.inline_size_max << " buffer=" << service_options_.buffer_bytes_max
            << " writes/upload=" << service_options_.chunk_writes_per_upload_max << " object<=" << object_size_max_
            << " lease=" << lease_ms << "ms janitor=" << janitor_options_.interval_ns / ns_per_ms << "ms proxies=" << proxy_count
            << " users=" << user_count << " keys=" << keys_ << " abort=" << abort_per_mille_ << "/1000 deadline="
            << client_options.deadline_ms << "ms";
    for (std::uint32_t i = 0; i < n; ++i) {
        const auto& fl = nodes_[i].faults;
        profile << " | n" << i << " disk{flip_rest=" << fl.bit_flip_at_rest_per_mille << " flip_read=" << fl.bit_flip_on_read_per_mille
                << " lost=" << fl.lost_write_per_mille << " torn=" << fl.torn_write_per_mille << " eio_r/w/rm="
                << fl.read_error_per_mille << "/" << fl.write_error_per_mille << "/" << fl.remove_error_per_mille
                << " cap=" << (fl.capacity_bytes == UINT64_MAX ? 0 : fl.capacity_bytes) << " reply_corrupt="
                << nodes_[i].reply_corruption_per_mille << "}";
    }
    result_.profile = profile.str();
    result_.chunk_size = static_cast<std::uint32_t>(service_options_.chunk_size);
    result_.replication_factor = service_options_.replication_factor;
    result_.proxies = proxy_count;
    result_.users = user_count;
}

void objectstore_simulation::start_node(std::uint32_t index, bool recovering) {
    node_state& node = nodes_[index];
    node.random = std::make_unique<vsr::xoshiro256>(random_.next_u64());
    node.replica = std::make_unique<sim_replica>(config_, static_cast<std::uint8_t>(index), node.bus, node.clock, *node.random,
                                                 recovering, observed_machine(metadata_options_, this));
    tfs::chunk_store_options store_options;
    store_options.chunk_size_max = service_options_.chunk_size;
    node.store = std::make_unique<store_type>(*node.disk, store_options);
    node.disk->set_token_now(now_ + 1);
    std::string error;
    if (!node.store->open(error)) fail("chunk_store", "node " + std::to_string(index) + " failed to open its store: " + error);
    node.last_view = 0;
    node.paused = false;
}

// ---- VSR network (as in the KV simulator) -----------------------------------------------------

void objectstore_simulation::send(std::uint32_t from, std::uint32_t to, std::span<const std::uint8_t> message) {
    network_.send(from, to, message, now_, faults_active_, random_,
                  [&](std::uint64_t delay_ns, std::uint32_t buffer) { schedule(delay_ns, event_kind::deliver, to, buffer); });
}

void objectstore_simulation::deliver(std::uint32_t to, std::uint32_t buffer) {
    const auto message = network_.message(buffer);
    const vsr::header h = message.size() >= vsr::header_size ? vsr::decode_header_fields(message.data()) : vsr::header{};
    trace(event_kind::deliver, to, network_.sender(buffer), h.checksum);
    if (to < options_.replicas) {
        node_state& node = nodes_[to];
        if (!node.replica) {
            network_.release(buffer);
            return;
        }
        if (node.paused) {
            node.held.push_back(buffer);
            return;
        }
        node.replica->on_message(message);
        network_.release(buffer);
        check_replica(to);
    } else {
        proxies_[to - options_.replicas].client->on_message(message);
        network_.release(buffer);
    }
}

void objectstore_simulation::replica_tick(std::uint32_t index) {
    node_state& node = nodes_[index];
    schedule(node.tick_interval_ns, event_kind::replica_tick, index);
    if (!node.replica || node.paused) return;
    node.replica->tick();
    check_replica(index);
    // The node's background scrub (as toastyfs-node runs it): every 100 ms a slice of the
    // stored chunks is re-verified, a whole pass every scrub_pass_slices_ slices; rotten copies
    // go to quarantine and leave the inventory.
    if (++node.ticks % 10 == 0) {
        node.store->inventory(std::nullopt, SIZE_MAX, scrub_before_);
        scrub_faults_before_.clear();
        for (const tfs::chunk_entry& e : scrub_before_) scrub_faults_before_.push_back(node.disk->faults_hit(tfs::detail::chunk_path(e.sha)));
        const tfs::scrub_result scrubbed = node.store->scrub(node.store->stats().bytes_stored / scrub_pass_slices_ + 1);
        for (std::size_t i = 0; scrubbed.corrupt != 0 && i < scrub_before_.size(); ++i) {
            if (!node.store->has(scrub_before_[i].sha)) destroy_if_faulted(index, scrub_before_[i].sha, scrub_faults_before_[i]);
        }
    }
}

void objectstore_simulation::proxy_tick(std::uint32_t index) {
    proxy_state& proxy = proxies_[index];
    schedule(config_.tick_ms * ns_per_ms, event_kind::proxy_tick, index);
    proxy.client->tick();
    proxy.service->tick(now_);
    if (!janitors_stopped_) proxy.janitor->tick(now_);
    proxy.service->tick(now_);  // runs what the janitor deferred
}

// ---- chunk connections ------------------------------------------------------------------------

bool objectstore_simulation::chunk_send(std::uint32_t proxy, std::uint8_t node, const tfs::frame_header& header,
                                        std::shared_ptr<const std::vector<std::uint8_t>> body) {
    if (node >= options_.replicas) return false;
    const std::uint32_t index = proxy * options_.replicas + node;
    connection& c = connections_[index];
    if (!c.up) return false;
    chunk_frame frame;
    frame.header.resize(tfs::frame_header_size);
    static const std::vector<std::uint8_t> empty;
    tfs::encode_frame_header(header, body ? std::span<const std::uint8_t>(*body) : std::span<const std::uint8_t>(empty),
                             std::span<std::uint8_t, tfs::frame_header_size>(frame.header.data(), tfs::frame_header_size));
    frame.body = std::move(body);
    c.outstanding.insert(header.request_id);
    const std::uint64_t arrive = std::max(c.last_to_node_ns, now_ + vsr::uniform_between(random_, chunk_frame_latency_min_us_, chunk_frame_latency_max_us_) * ns_per_us);
    c.last_to_node_ns = arrive;
    c.to_node.push_back(std::move(frame));
    events_.push(event{arrive, seq_++, event_kind::chunk_to_node, index, c.generation});
    return true;
}

void objectstore_simulation::chunk_arrive_at_node(std::uint32_t index, std::uint64_t generation) {
    connection& c = connections_[index];
    if (c.generation != generation || c.to_node.empty()) return;
    chunk_frame frame = std::move(c.to_node.front());
    c.to_node.pop_front();
    const std::uint32_t node = index % options_.replicas;
    if (c.blocked || !node_accepts(node) || !c.held_to_node.empty()) {
        c.held_to_node.push_back(std::move(frame));
        return;
    }
    process_at_node(index, std::move(frame));
}

void objectstore_simulation::chunk_arrive_at_proxy(std::uint32_t index, std::uint64_t generation) {
    connection& c = connections_[index];
    if (c.generation != generation || c.to_proxy.empty()) return;
    chunk_frame frame = std::move(c.to_proxy.front());
    c.to_proxy.pop_front();
    if (c.blocked || !c.held_to_proxy.empty()) {
        c.held_to_proxy.push_back(std::move(frame));
        return;
    }
    process_at_proxy(index, std::move(frame));
}

void objectstore_simulation::flush_held(std::uint32_t index) {
    connection& c = connections_[index];
    const std::uint32_t node = index % options_.replicas;
    const std::uint64_t generation = c.generation;
    while (c.up && c.generation == generation && !c.blocked && node_accepts(node) && !c.held_to_node.empty()) {
        chunk_frame frame = std::move(c.held_to_node.front());
        c.held_to_node.pop_front();
        process_at_node(index, std::move(frame));
    }
    while (c.up && c.generation == generation && !c.blocked && !c.held_to_proxy.empty()) {
        chunk_frame frame = std::move(c.held_to_proxy.front());
        c.held_to_proxy.pop_front();
        process_at_proxy(index, std::move(frame));
    }
}

void objectstore_simulation::process_at_node(std::uint32_t index, chunk_frame frame) {
    connection& c = connections_[index];
    const std::uint32_t node_index = index % options_.replicas;
    node_state& node = nodes_[node_index];
    tfs::frame_header request;
    const std::span<const std::uint8_t> body = frame.body ? std::span<const std::uint8_t>(*frame.body) : std::span<const std::uint8_t>();
    const auto error = tfs::decode_frame_header(std::span<const std::uint8_t, tfs::frame_header_size>(frame.header.data(), tfs::frame_header_size),
                                                config_.cluster, service_options_.chunk_size + 1024, request);
    if (error != tfs::frame_error::none || request.reply || !tfs::body_matches(request, body)) {
        fail("transport", "node " + std::to_string(node_index) + " received a malformed frame from a proxy");
        return;
    }
    trace(event_kind::chunk_to_node, index, static_cast<std::uint64_t>(request.kind), request.request_id);
    const chunk_disk_counters before = node.disk->counters();
    const file_faults faults_before = node.disk->faults_hit(tfs::detail::chunk_path(request.sha256));
    std::uint64_t free = 0;
    node.disk->free_bytes(free);
    tfs::frame_header reply;
    auto reply_body = std::make_shared<std::vector<std::uint8_t>>();
    tfs::handle_chunk_request(*node.store, free, request, body, reply, *reply_body);
    // A read that failed verification twice quarantines the copy: destroyed, if a fault hit it.
    if (request.kind == tfs::frame_kind::read && reply.status == tfs::frame_status::corrupt) {
        destroy_if_faulted(node_index, request.sha256, faults_before);
    }
    const bool bad_read = request.kind == tfs::frame_kind::read && reply.status != tfs::frame_status::ok;
    const chunk_disk_counters& after = node.disk->counters();
    result_.disk_no_space += after.no_space - before.no_space;
    if (request.kind == tfs::frame_kind::write && reply.status == tfs::frame_status::ok) {
        written_.emplace(node_index, request.sha256);
        gc_removed_.erase({node_index, request.sha256});
        // The disk said ok, but the stored copy is rotten: a fault destroyed this copy.
        if (after.bit_flips_at_rest != before.bit_flips_at_rest) destroy(node_index, request.sha256);
    }
    if (request.kind == tfs::frame_kind::remove && reply.status == tfs::frame_status::ok) {
        check_gc_remove(node_index, request.sha256);
        gc_removed_.emplace(node_index, request.sha256);
    }
    if (request.kind == tfs::frame_kind::read && reply.status == tfs::frame_status::ok && !reply_body->empty() && faults_active_ &&
        node.reply_corruption_per_mille != 0 && vsr::chance(random_, node.reply_corruption_per_mille, 1000)) {
        // A memory fault on the node after the store verified the copy: the frame checksum
        // covers the corrupted bytes, so only the proxy's SHA-256 check can notice.
        (*reply_body)[vsr::uniform_below(random_, reply_body->size())] ^= static_cast<std::uint8_t>(1u << vsr::uniform_below(random_, 8));
        ++result_.reply_corruptions;
        bad_reads_[{index, request.sha256}] = now_;
    }
    if (bad_read) bad_reads_[{index, request.sha256}] = now_;
    chunk_frame out;
    out.header.resize(tfs::frame_header_size);
    tfs::encode_frame_header(reply, *reply_body, std::span<std::uint8_t, tfs::frame_header_size>(out.header.data(), tfs::frame_header_size));
    out.body = std::move(reply_body);
    if (!c.up) return;
    const std::uint64_t arrive = std::max(c.last_to_proxy_ns, now_ + vsr::uniform_between(random_, chunk_frame_latency_min_us_, chunk_frame_latency_max_us_) * ns_per_us);
    c.last_to_proxy_ns = arrive;
    c.to_proxy.push_back(std::move(out));
    events_.push(event{arrive, seq_++, event_kind::chunk_to_proxy, index, c.generation});
}

void objectstore_simulation::process_at_proxy(std::uint32_t index, chunk_frame frame) {
    connection& c = connections_[index];
    const std::uint32_t proxy = index / options_.replicas;
    const auto node = static_cast<std::uint8_t>(index % options_.replicas);
    tfs::frame_header reply;
    const auto error = tfs::decode_frame_header(std::span<const std::uint8_t, tfs::frame_header_size>(frame.header.data(), tfs::frame_header_size),
                                                config_.cluster, UINT64_MAX, reply);
    const std::span<const std::uint8_t> body = frame.body ? std::span<const std::uint8_t>(*frame.body) : std::span<const std::uint8_t>();
    if (error != tfs::frame_error::none || !reply.reply || !tfs::body_matches(reply, body)) {
        fail("transport", "proxy " + std::to_string(proxy) + " received a malformed frame from node " + std::to_string(node));
        return;
    }
    trace(event_kind::chunk_to_proxy, index, static_cast<std::uint64_t>(reply.status), reply.request_id);
    c.outstanding.erase(reply.request_id);
    std::vector<std::uint8_t> owned(body.begin(), body.end());
    proxies_[proxy].service->on_chunk_reply(node, reply, std::move(owned));
}

void objectstore_simulation::break_connection(std::uint32_t index) {
    connection& c = connections_[index];
    if (!c.up) return;
    trace(event_kind::reconnect, index, 0, c.generation);
    mix_trace(0xB0 + index);
    ++result_.connection_breaks;
    c.up = false;
    update_link_health(index);
    ++c.generation;
    c.to_node.clear();
    c.to_proxy.clear();
    c.held_to_node.clear();
    c.held_to_proxy.clear();
    const std::vector<std::uint64_t> ids(c.outstanding.begin(), c.outstanding.end());
    c.outstanding.clear();
    c.last_to_node_ns = c.last_to_proxy_ns = 0;
    if (!c.reconnect_pending) {
        c.reconnect_pending = true;
        schedule(vsr::uniform_between(random_, 10, 1'000) * ns_per_ms, event_kind::reconnect, index);
    }
    proxies_[index / options_.replicas].service->on_chunk_disconnect(static_cast<std::uint8_t>(index % options_.replicas), ids);
}

void objectstore_simulation::try_reconnect(std::uint32_t index) {
    connection& c = connections_[index];
    c.reconnect_pending = false;
    if (c.up) return;
    const std::uint32_t node = index % options_.replicas;
    if (!nodes_[node].store || c.blocked) {
        c.reconnect_pending = true;
        schedule(vsr::uniform_between(random_, 50, 500) * ns_per_ms, event_kind::reconnect, index);
        return;
    }
    trace(event_kind::reconnect, index, 1, c.generation);
    c.up = true;
    update_link_health(index);
}

void objectstore_simulation::set_link_blocked(std::uint32_t index, bool blocked) {
    connection& c = connections_[index];
    if (c.blocked == blocked) return;
    c.blocked = blocked;
    update_link_health(index);
    if (blocked) {
        schedule(keepalive_ns_, event_kind::keepalive, index, c.generation);
    } else {
        flush_held(index);
    }
}

/// A link is healthy while it is up and unblocked and its node serves; check_data_lost asks
/// since when.
void objectstore_simulation::update_link_health(std::uint32_t index) {
    connection& c = connections_[index];
    const bool healthy = c.up && !c.blocked && node_accepts(index % options_.replicas);
    if (!healthy) c.healthy_since_ns = UINT64_MAX;
    else if (c.healthy_since_ns == UINT64_MAX) c.healthy_since_ns = now_;
}

void objectstore_simulation::update_node_links(std::uint32_t node) {
    for (std::uint32_t p = 0; p < proxies_.size(); ++p) update_link_health(p * options_.replicas + node);
}

// ---- users (the workload) ---------------------------------------------------------------------

kv_history_op& objectstore_simulation::begin_history(std::uint32_t user, kv_kind kind, std::uint32_t key) {
    kv_history_op op;
    op.id = history_.size();
    op.client = user;
    op.key = key_names_[key];
    op.kind = kind;
    op.invoke_ns = now_;
    op.result_outcome = outcome::unknown;
    history_.push_back(std::move(op));
    history_put_.push_back(UINT64_MAX);
    history_abandoned_.push_back(0);
    users_[user].history = history_.size() - 1;
    return history_.back();
}

void objectstore_simulation::user_step(std::uint32_t user, std::uint64_t generation) {
    user_state& u = users_[user];
    if (generation != u.generation) return;
    if (u.op == user_op::none) {
        start_operation(user);
    } else if (u.op == user_op::put && !u.ended && !u.waiting_writable) {
        feed_put(user);
    } else if ((u.op == user_op::get) && u.consume_pending) {
        u.consume_pending = false;
        proxies_[u.proxy].service->consumed(u.read);
    }
}

void objectstore_simulation::start_operation(std::uint32_t user) {
    user_state& u = users_[user];
    if (u.final_reader) {
        if (final_key_ >= keys_) return;
        start_get(user, final_key_++, true, true);
        return;
    }
    if (issued_ >= options_.requests) return;
    ++issued_;
    ++active_users_;
    ++result_.requests_issued;
    ++u.generation;
    const auto roll = vsr::uniform_below(*u.random, 100);
    const auto key = static_cast<std::uint32_t>(vsr::uniform_below(*u.random, keys_));
    if (roll < 40) start_put(user);
    else if (roll < 65) start_get(user, key, true, vsr::chance(*u.random, 1, 2));
    else if (roll < 72) start_get(user, key, false, true);
    else if (roll < 88) start_delete(user);
    else start_list(user);
}

void objectstore_simulation::start_put(std::uint32_t user) {
    user_state& u = users_[user];
    vsr::xoshiro256& random = *u.random;
    const auto key = static_cast<std::uint32_t>(vsr::uniform_below(random, keys_));
    tfs::put_request request;
    request.key = key_names_[key];
    request.content_type = "application/octet-stream";
    const auto condition_roll = vsr::uniform_below(random, 100);
    kv_kind kind = kv_kind::put;
    std::optional<std::uint64_t> expected_put;
    if (condition_roll < 15) {
        request.put_condition.kind = tfs::condition_kind::if_none_match_any;
        kind = kv_kind::put_if_absent;
    } else if (condition_roll < 30 && u.last_md5[key] && put_by_md5(*u.last_md5[key])) {
        request.put_condition.kind = tfs::condition_kind::if_match;
        request.put_condition.etag = *u.last_md5[key];
        expected_put = put_by_md5(*u.last_md5[key]);
        kind = kv_kind::cas;
    }
    // Sizes: empty, inline, and up to several chunks.
    const auto size_roll = vsr::uniform_below(random, 100);
    std::uint64_t size = 0;
    if (size_roll < 5) size = 0;
    // At least 8 bytes: the first 8 bytes of a put's content are a bijection of its id, so the
    // content (and its MD5) identifies the put. (1..7-byte objects collided, seed 3724.)
    else if (size_roll < 25) size = vsr::uniform_between(random, 8, service_options_.inline_size_max);
    else size = vsr::uniform_between(random, 8, object_size_max_);
    if (vsr::chance(random, 3, 4)) request.content_length = size;

    const std::uint64_t put_id = puts_.size();
    put_record record;
    record.key = key;
    record.size = size;
    crypto::md5_context md5;
    std::vector<std::uint8_t> block;
    for (std::uint64_t at = 0; at < size; at += 64 * 1024) {
        block.resize(std::min<std::uint64_t>(64 * 1024, size - at));
        fill_content(put_id, at, block);
        md5.update(block);
    }
    record.md5 = md5.finish();
    kv_history_op& h = begin_history(user, kind, key);
    record.history = h.id;
    history_put_[h.id] = put_id;
    puts_.push_back(record);
    if (size != 0 && !put_by_md5_.emplace(record.md5, put_id).second) fail("simulator", "two puts with the same content");
    h.value = value_name(put_id);
    if (expected_put) h.expected = value_name(*expected_put);

    u.op = user_op::put;
    u.put_id = put_id;
    u.size = size;
    u.offered = 0;
    u.ended = false;
    u.waiting_writable = false;
    u.abort_at = abort_per_mille_ != 0 && size > 0 && vsr::chance(random, abort_per_mille_, 1000) ? vsr::uniform_below(random, size) : no_abort;
    const std::uint64_t generation = u.generation;
    u.upload = proxies_[u.proxy].service->begin_put(
        std::move(request), [this, user, generation](const tfs::put_outcome& o) { on_put_done(user, generation, o); },
        [this, user, generation] {
            user_state& x = users_[user];
            if (x.generation != generation || !x.waiting_writable) return;
            x.waiting_writable = false;
            schedule(vsr::uniform_below(random_, 2 * ns_per_ms), event_kind::user_step, user, generation);
        });
    schedule(vsr::uniform_below(random_, 2 * ns_per_ms), event_kind::user_step, user, generation);
}

void objectstore_simulation::feed_put(std::uint32_t user) {
    user_state& u = users_[user];
    service_type& service = *proxies_[u.proxy].service;
    if (u.abort_at != no_abort && u.offered >= u.abort_at) {
        service.abort_put(u.upload);
        history_[u.history].result_outcome = outcome::fail;  // never committed: definitely not executed
        history_abandoned_[u.history] = 1;
        ++result_.uploads_aborted;
        finish_operation(user);
        return;
    }
    if (u.offered == u.size) {
        u.ended = true;
        service.end_put(u.upload);
        return;
    }
    std::uint64_t piece = std::min<std::uint64_t>(u.size - u.offered, vsr::uniform_between(*u.random, 1, 2 * service_options_.chunk_size));
    if (u.abort_at != no_abort) piece = std::min(piece, std::max<std::uint64_t>(1, u.abort_at - u.offered));
    std::vector<std::uint8_t> bytes(piece);
    fill_content(u.put_id, u.offered, bytes);
    const std::size_t taken = service.put_body(u.upload, bytes);
    u.offered += taken;
    result_.bytes_written += taken;
    if (taken < piece) {
        u.waiting_writable = true;  // backpressure: wait for the writable callback
        return;
    }
    schedule(vsr::uniform_below(random_, 3 * ns_per_ms), event_kind::user_step, user, u.generation);
}

void objectstore_simulation::on_put_done(std::uint32_t user, std::uint64_t generation, const tfs::put_outcome& o) {
    user_state& u = users_[user];
    if (u.generation != generation || u.op != user_op::put) return;
    kv_history_op& h = history_[u.history];
    h.complete_ns = now_;
    check_success(user, o.status);
    const std::uint64_t position = proxies_[u.proxy].adapter.position;
    switch (o.status) {
        case tfs::service_status::ok:
        case tfs::service_status::precondition_failed:
            h.result_outcome = outcome::ok;
            h.status = o.status == tfs::service_status::ok ? kv_status::ok : kv_status::mismatch;
            h.position = position;
            ++result_.requests_ok;
            if (o.status == tfs::service_status::ok) {
                ++result_.puts_ok;
                if (o.md5 != puts_[u.put_id].md5 || o.size != u.size) {
                    fail("content", "PUT #" + std::to_string(h.id) + " acknowledged with another etag or size than its content has");
                }
                const std::uint32_t key = puts_[u.put_id].key;
                u.last_md5[key] = o.md5;
                check_put_durability(u.put_id);
            } else {
                ++result_.conditional_failures;
            }
            if (position == 0) fail("simulator", "acknowledged PUT without a log position");
            break;
        case tfs::service_status::timeout: h.result_outcome = outcome::unknown; break;
        case tfs::service_status::invalid:
            fail("object_service", "PUT #" + std::to_string(h.id) + " of a valid object answered invalid");
            break;
        default: h.result_outcome = outcome::fail; break;  // refused before (or without) any effect
    }
    finish_operation(user);
}

void objectstore_simulation::start_get(std::uint32_t user, std::uint32_t key, bool with_data, bool whole) {
    user_state& u = users_[user];
    ++u.generation;
    begin_history(user, kv_kind::get, key);
    u.op = with_data ? user_op::get : user_op::head;
    u.reading = false;
    u.consume_pending = false;
    const std::uint64_t generation = u.generation;
    proxies_[u.proxy].service->lookup(key_names_[key], with_data, [this, user, generation, whole](tfs::service_status s, const tfs::object_result& r) {
        on_lookup(user, generation, s, r, whole);
    });
}

void objectstore_simulation::on_lookup(std::uint32_t user, std::uint64_t generation, tfs::service_status s, const tfs::object_result& r, bool whole) {
    user_state& u = users_[user];
    if (u.generation != generation) return;
    kv_history_op& h = history_[u.history];
    h.complete_ns = now_;
    check_success(user, s);
    if (s == tfs::service_status::timeout) {
        h.result_outcome = outcome::unknown;
        if (u.final_reader) fail("liveness", "final read of " + h.key + " timed out after healing");
        finish_operation(user);
        return;
    }
    if (s != tfs::service_status::ok && s != tfs::service_status::not_found) {
        h.result_outcome = outcome::fail;
        if (u.final_reader) fail("liveness", "final read of " + h.key + " failed with " + tfs::to_string(s) + " after healing");
        finish_operation(user);
        return;
    }
    h.result_outcome = outcome::ok;
    h.position = proxies_[u.proxy].adapter.position;
    ++result_.requests_ok;
    if (s == tfs::service_status::not_found) {
        h.status = kv_status::not_found;
        finish_operation(user);
        return;
    }
    h.status = kv_status::ok;
    const auto put = put_by_md5(r.md5);
    const bool empty = r.size == 0;
    if (!put && !empty) {
        fail("content", "GET/HEAD #" + std::to_string(h.id) + " of " + h.key + " returned an etag no PUT of this run has");
        finish_operation(user);
        return;
    }
    const std::uint64_t put_id = put.value_or(0);
    h.result_value = empty ? "empty" : value_name(put_id);
    if (!empty && (puts_[put_id].size != r.size || key_names_[puts_[put_id].key] != h.key)) {
        fail("content", "GET/HEAD #" + std::to_string(h.id) + " of " + h.key + " returned the etag of put p" + std::to_string(put_id) +
                            " (key " + key_names_[puts_[put_id].key] + ", size " + std::to_string(puts_[put_id].size) +
                            ") with size " + std::to_string(r.size));
    }
    const auto key_index = static_cast<std::size_t>(std::find(key_names_.begin(), key_names_.end(), h.key) - key_names_.begin());
    u.last_md5[key_index] = r.md5;
    if (u.op == user_op::head) {
        ++result_.heads_ok;
        finish_operation(user);
        return;
    }
    // Stream the body (or a range of it) and compare every byte with the put's content.
    u.object = r;
    u.read_put = put_id;
    u.range_first = 0;
    u.range_length = r.size;
    if (!whole && r.size > 0) {
        u.range_first = vsr::uniform_below(*u.random, r.size);
        u.range_length = vsr::uniform_between(*u.random, 0, r.size - u.range_first);
    }
    u.received = 0;
    u.reading = true;
    u.read_start_ns = now_;
    tfs::object_service<metadata_adapter, sim_transport, crypto>::read_callbacks callbacks;
    callbacks.on_data = [this, user, generation](std::span<const std::uint8_t> piece) { on_read_data(user, generation, piece); };
    callbacks.on_done = [this, user, generation](tfs::service_status status) { on_read_done(user, generation, status); };
    u.read = proxies_[u.proxy].service->read(u.object, u.range_first, u.range_length, std::move(callbacks));
}

void objectstore_simulation::on_read_data(std::uint32_t user, std::uint64_t generation, std::span<const std::uint8_t> piece) {
    user_state& u = users_[user];
    if (u.generation != generation || !u.reading) return;
    std::vector<std::uint8_t> expected(piece.size());
    const std::uint64_t offset = u.range_first + u.received;
    if (u.object.size != 0) fill_content(u.read_put, offset, expected);
    std::vector<std::uint8_t> got(piece.begin(), piece.end());
    if (options_.tamper == objectstore_tamper::get_flips_byte && !tampered_ && !got.empty()) {
        tampered_ = true;
        got[0] ^= 1;
    }
    if (u.received + piece.size() > u.range_length || got != expected) {
        std::size_t at = 0;
        while (at < got.size() && at < expected.size() && got[at] == expected[at]) ++at;
        fail("content", "GET #" + std::to_string(u.history) + " of " + history_[u.history].key + " (put p" + std::to_string(u.read_put) +
                            ", range " + std::to_string(u.range_first) + "+" + std::to_string(u.range_length) + ") delivered " +
                            std::to_string(piece.size()) + " bytes at offset " + std::to_string(offset) +
                            " that differ from the put's content at byte " + std::to_string(offset + at));
        return;
    }
    u.received += piece.size();
    result_.bytes_read += piece.size();
    u.consume_pending = true;
    schedule(vsr::uniform_below(random_, 2 * ns_per_ms), event_kind::user_step, user, generation);
}

void objectstore_simulation::on_read_done(std::uint32_t user, std::uint64_t generation, tfs::service_status s) {
    user_state& u = users_[user];
    if (u.generation != generation || !u.reading) return;
    u.reading = false;
    check_success(user, s);
    if (s == tfs::service_status::ok) {
        if (u.received != u.range_length) {
            fail("content", "GET #" + std::to_string(u.history) + " ended ok after " + std::to_string(u.received) + " of " +
                                std::to_string(u.range_length) + " bytes");
        }
        ++result_.gets_ok;
    } else if (s == tfs::service_status::data_lost) {
        check_data_lost(user);
        if (!faults_active_) check_final_loss(user);
    } else if (u.final_reader) {
        fail("liveness", "final read of " + history_[u.history].key + " failed with " + tfs::to_string(s) + " after healing");
    }
    finish_operation(user);
}

void objectstore_simulation::start_delete(std::uint32_t user) {
    user_state& u = users_[user];
    const auto key = static_cast<std::uint32_t>(vsr::uniform_below(*u.random, keys_));
    tfs::condition condition;
    kv_kind kind = kv_kind::del;
    std::optional<std::uint64_t> expected;
    if (u.last_md5[key] && put_by_md5(*u.last_md5[key]) && vsr::chance(*u.random, 1, 3)) {
        condition.kind = tfs::condition_kind::if_match;
        condition.etag = *u.last_md5[key];
        expected = put_by_md5(*u.last_md5[key]);
        kind = kv_kind::del_if;
    }
    kv_history_op& h = begin_history(user, kind, key);
    if (expected) h.expected = value_name(*expected);
    u.op = user_op::del;
    const std::uint64_t generation = u.generation;
    proxies_[u.proxy].service->remove(key_names_[key], condition, [this, user, generation](tfs::service_status s) {
        user_state& x = users_[user];
        if (x.generation != generation) return;
        kv_history_op& op = history_[x.history];
        op.complete_ns = now_;
        check_success(user, s);
        if (s == tfs::service_status::ok || s == tfs::service_status::not_found || s == tfs::service_status::precondition_failed) {
            op.result_outcome = outcome::ok;
            op.status = s == tfs::service_status::ok ? kv_status::ok : s == tfs::service_status::not_found ? kv_status::not_found : kv_status::mismatch;
            op.position = proxies_[x.proxy].adapter.position;
            ++result_.requests_ok;
            if (s == tfs::service_status::ok) ++result_.deletes_ok;
            if (s == tfs::service_status::precondition_failed) ++result_.conditional_failures;
        } else {
            op.result_outcome = s == tfs::service_status::timeout ? outcome::unknown : outcome::fail;
        }
        finish_operation(user);
    });
}

void objectstore_simulation::start_list(std::uint32_t user) {
    user_state& u = users_[user];
    static const char* prefixes[] = {"", "a/", "b/", "a/0"};
    list_record record;
    record.prefix = prefixes[vsr::uniform_below(*u.random, 4)];
    record.invoke_ns = now_;
    lists_.push_back(record);
    u.history = lists_.size() - 1;
    u.op = user_op::list;
    tfs::list_objects_operation op;
    op.prefix = record.prefix;
    op.max_keys = static_cast<std::uint16_t>(vsr::uniform_between(*u.random, 1, 8));
    const std::uint64_t generation = u.generation;
    proxies_[u.proxy].service->list(op, [this, user, generation](tfs::service_status s, const tfs::list_objects_result& r) {
        user_state& x = users_[user];
        if (x.generation != generation) return;
        if (options_.tamper == objectstore_tamper::list_hangs && !tampered_) {
            tampered_ = true;
            return;
        }
        list_record& l = lists_[x.history];
        l.complete_ns = now_;
        check_success(user, s);
        if (s == tfs::service_status::ok) {
            l.ok = true;
            l.truncated = r.truncated;
            l.entries = r.entries;
            if (options_.tamper == objectstore_tamper::list_drops_entry && !tampered_ && !l.entries.empty()) {
                tampered_ = true;
                l.entries.erase(l.entries.begin());
            }
            ++result_.requests_ok;
            ++result_.lists_ok;
        }
        finish_operation(user);
    });
}

void objectstore_simulation::finish_operation(std::uint32_t user) {
    user_state& u = users_[user];
    u.op = user_op::none;
    u.reading = false;
    ++u.generation;
    if (u.final_reader) {
        ++result_.final_reads;
        schedule(0, event_kind::user_step, user, u.generation);
        return;
    }
    --active_users_;
    if (faults_active_ && issued_ >= heal_at_request_) schedule(0, event_kind::heal_all, 0);
    schedule(vsr::uniform_below(random_, think_ns_max_ + 1), event_kind::user_step, user, u.generation);
}

// ---- faults -----------------------------------------------------------------------------------

std::uint32_t objectstore_simulation::impaired_nodes() const {
    std::uint32_t count = 0;
    for (const auto& node : nodes_) count += !node.replica || node.replica->status() == vsr::replica_status::recovering;
    return count;
}

void objectstore_simulation::destroy(std::uint32_t node, const tfs::sha256_digest& sha) {
    chunk_fate& fate = fates_[sha];
    if (!tfs::contains(fate.destroyed, static_cast<std::uint8_t>(node))) ++result_.chunks_destroyed;
    fate.destroyed = tfs::with(fate.destroyed, static_cast<std::uint8_t>(node));
}

/// The product reported a copy corrupt (and quarantined it): destroyed by a fault only if the
/// disk says a fault hit it (damage at rest, or flipped reads during this call).
void objectstore_simulation::destroy_if_faulted(std::uint32_t node, const tfs::sha256_digest& sha, const file_faults& before) {
    const file_faults after = nodes_[node].disk->faults_hit(tfs::detail::chunk_path(sha));
    if (after.damaged_at_rest || after.read_flips > before.read_flips) destroy(node, sha);
}

void objectstore_simulation::crash_node(std::uint32_t index, bool wipe) {
    node_state& node = nodes_[index];
    trace(event_kind::restart, index, wipe ? 2 : 0, 0);
    mix_trace(0xC0 + index + (wipe ? 0x100 : 0));
    // Which copies does the crash destroy? All (wipe), or those whose durable bytes differ.
    const auto& visible = node.disk->files();
    const auto& durable = node.disk->durable_files();
    for (const auto& [name, file] : visible) {
        if (name.rfind("chunks/", 0) != 0) continue;
        const auto file_name = std::string_view(name).substr(name.rfind('/') + 1);
        const auto sha = tfs::from_hex<32>(file_name);
        if (!sha) continue;
        const auto kept = durable.find(name);
        if (wipe || kept == durable.end() || kept->second.bytes != file.bytes) destroy(index, *sha);
    }
    node.replica.reset();
    node.store.reset();
    node.disk->crash(wipe ? crash_kind::wipe_disk : crash_kind::keep_disk);
    for (const auto buffer : node.held) network_.release(buffer);
    node.held.clear();
    node.paused = false;
    ++result_.node_crashes;
    if (wipe) ++result_.disk_wipes;
    for (std::uint32_t p = 0; p < proxies_.size(); ++p) break_connection(p * options_.replicas + index);
    result_.impaired_max = std::max(result_.impaired_max, impaired_nodes());
}

void objectstore_simulation::restart_node(std::uint32_t index) {
    if (nodes_[index].replica) return;
    trace(event_kind::restart, index, 1, 0);
    start_node(index, true);
}

void objectstore_simulation::fault_step() {
    if (!faults_active_) return;
    schedule(profile_.fault_step_ms * ns_per_ms, event_kind::fault_step, 0);
    result_.impaired_max = std::max(result_.impaired_max, impaired_nodes());
    const std::uint32_t n = options_.replicas;
    const std::uint32_t f = (n - 1) / 2;
    auto roll = [&] { return vsr::chance(random_, profile_.fault_per_mille, 1000); };
    if (profile_.crashes && roll() && impaired_nodes() + 1 <= f) {
        const auto index = static_cast<std::uint32_t>(vsr::uniform_below(random_, n));
        if (nodes_[index].replica) {
            crash_node(index, wipes_ && vsr::chance(random_, 1, 3));
            schedule(vsr::uniform_between(random_, 50, 5'000) * ns_per_ms, event_kind::restart, index);
        }
    }
    if (profile_.partitions && !network_.partition_active() && roll()) {
        std::uint64_t side = 0;
        while (side == 0 || side == (1ULL << n) - 1) side = vsr::uniform_below(random_, 1ULL << n);
        network_.partition(side, profile_.asymmetric_partitions && vsr::chance(random_, 1, 2));
        // Proxies may be cut off too, from the nodes on the other side: VSR and chunk links alike.
        for (std::uint32_t p = 0; p < proxies_.size(); ++p) {
            if (!vsr::chance(random_, 1, 2)) continue;
            network_.cut_client(p, side, vsr::chance(random_, 1, 2));
            for (std::uint32_t r = 0; r < n; ++r) set_link_blocked(p * n + r, network_.client_cut(p, r));
        }
        ++result_.partitions;
        mix_trace(side);
        schedule(vsr::uniform_between(random_, 100, 5'000) * ns_per_ms, event_kind::heal_partition, 0);
    }
    if (profile_.pauses && roll()) {
        const auto index = static_cast<std::uint32_t>(vsr::uniform_below(random_, n));
        if (nodes_[index].replica && !nodes_[index].paused) {
            nodes_[index].paused = true;
            update_node_links(index);
            ++result_.pauses;
            mix_trace(0x50 + index);
            schedule(vsr::uniform_between(random_, 20, 3'000) * ns_per_ms, event_kind::resume, index);
        }
    }
    if (connection_breaks_ && roll()) {
        break_connection(static_cast<std::uint32_t>(vsr::uniform_below(random_, connections_.size())));
    }
    if (disk_rot_ && roll()) {
        const auto index = static_cast<std::uint32_t>(vsr::uniform_below(random_, n));
        const std::string name = nodes_[index].disk->rot();
        if (name.rfind("chunks/", 0) == 0) {
            if (const auto sha = tfs::from_hex<32>(std::string_view(name).substr(name.rfind('/') + 1))) destroy(index, *sha);
        }
    }
}

void objectstore_simulation::heal_all() {
    trace(event_kind::heal_all, 0, 0, 0);
    faults_active_ = false;
    heal_time_ = now_;
    network_.heal_all();
    for (std::uint32_t i = 0; i < connections_.size(); ++i) set_link_blocked(i, false);
    for (std::uint32_t i = 0; i < options_.replicas; ++i) {
        nodes_[i].disk->faults() = chunk_disk_faults{};
        if (!nodes_[i].replica) schedule(0, event_kind::restart, i);
        if (nodes_[i].paused) schedule(0, event_kind::resume, i);
    }
}

/// Tampering (tests): the first chunk of the first key that has one vanishes from (or is garbled
/// on) every disk, as no fault would do it; the final read-back must report the loss.
void objectstore_simulation::tamper_chunk_copies(bool garble) {
    for (std::uint32_t k = 0; k < keys_; ++k) {
        std::vector<std::uint8_t> out;
        shadow_.execute(vsr::operation_context{}, tfs::encode(tfs::get_object_operation{key_names_[k]}), out);
        const auto object = tfs::decode_object_result(out);
        if (!object || object->result_status != tfs::status::ok || object->chunks.empty()) continue;
        const std::string path = tfs::detail::chunk_path(object->chunks[0].sha256);
        for (auto& node : nodes_) {
            const auto file = node.disk->files().find(path);
            if (file == node.disk->files().end()) continue;
            if (!garble) {
                node.disk->remove(path);
                continue;
            }
            std::vector<std::uint8_t> bytes = file->second.bytes;
            if (!bytes.empty()) bytes[0] ^= 1;
            node.disk->plant(path, std::move(bytes), file->second.token);
        }
        return;
    }
}

// ---- event loop -------------------------------------------------------------------------------

void objectstore_simulation::handle(const event& e) {
    switch (e.kind) {
        case event_kind::deliver: deliver(e.a, static_cast<std::uint32_t>(e.b)); break;
        case event_kind::replica_tick: replica_tick(e.a); break;
        case event_kind::proxy_tick: proxy_tick(e.a); break;
        case event_kind::chunk_to_node: chunk_arrive_at_node(e.a, e.b); break;
        case event_kind::chunk_to_proxy: chunk_arrive_at_proxy(e.a, e.b); break;
        case event_kind::user_step: user_step(e.a, e.b); break;
        case event_kind::fault_step: fault_step(); break;
        case event_kind::restart: restart_node(e.a); break;
        case event_kind::resume: {
            node_state& node = nodes_[e.a];
            if (!node.paused) break;
            trace(e.kind, e.a, 0, 0);
            node.paused = false;
            update_node_links(e.a);
            for (const auto buffer : node.held) events_.push(event{now_, seq_++, event_kind::deliver, e.a, buffer});
            node.held.clear();
            for (std::uint32_t p = 0; p < proxies_.size(); ++p) flush_held(p * options_.replicas + e.a);
            break;
        }
        case event_kind::heal_partition:
            trace(e.kind, 0, 0, 0);
            network_.heal_partition();
            for (std::uint32_t i = 0; i < connections_.size(); ++i) set_link_blocked(i, false);
            break;
        case event_kind::heal_all:
            if (faults_active_) heal_all();
            break;
        case event_kind::watchdog: watchdog(); break;
        case event_kind::reconnect: try_reconnect(e.a); break;
        case event_kind::keepalive:
            if (connections_[e.a].blocked && connections_[e.a].generation == e.b) break_connection(e.a);
            break;
        case event_kind::final_step: final_step(); break;
    }
}

// ---- checkers ---------------------------------------------------------------------------------

/// VSR's own invariant, cheaply: a replica's view never goes back (per incarnation). The
/// replicas' agreement is checked by on_execute against the canonical execution.
void objectstore_simulation::check_replica(std::uint32_t index) {
    node_state& node = nodes_[index];
    if (node.replica->view() < node.last_view) fail("safety", "replica " + std::to_string(index) + " view went backwards");
    node.last_view = node.replica->view();
}

/// Every execution of a log position by any replica. The first one is canonical: it is
/// executed again on the shadow state machine and must give the same result (replicas agree).
/// Committed puts and add_holders feed the chunk checkers.
void objectstore_simulation::on_execute(const vsr::operation_context& context, std::span<const std::uint8_t> bytes,
                                        const std::vector<std::uint8_t>& out) {
    const std::uint64_t position = context.op << 20 | context.index;
    if (position <= shadow_position_) return;
    shadow_position_ = position;
    metadata_now_ns_ = context.timestamp_ns;
    shadow_out_.clear();
    shadow_.execute(context, bytes, shadow_out_);
    if (shadow_out_ != out) {
        fail("safety", "a replica's result at op " + std::to_string(context.op) + " differs from the canonical execution");
        return;
    }
    if (bytes.empty() || out.empty()) return;
    const auto code = static_cast<tfs::opcode>(bytes[0]);
    if (code != tfs::opcode::put_object && code != tfs::opcode::add_holder && code != tfs::opcode::remove_holder) return;
    const auto op = tfs::decode_operation(bytes);
    if (!op) return;
    const bool ok = out[0] == static_cast<std::uint8_t>(tfs::status::ok);
    if (const auto* put = std::get_if<tfs::put_object_operation>(&*op)) {
        if (put->size == 0) return;
        const auto found = put_by_md5_.find(put->md5);
        if (found == put_by_md5_.end()) return;
        put_record& record = puts_[found->second];
        record.executed = true;
        record.executed_ok = ok;
        record.position = position;
        if (!ok) return;
        record.committed_chunks = put->chunks;
        for (const tfs::chunk_location& c : put->chunks) {
            fates_[c.sha256].ever_holders |= c.holders;
            for (std::uint8_t node = 0; node < options_.replicas; ++node) {
                if (tfs::contains(c.holders, node)) check_reference(node, c.sha256, "a committed put_object");
            }
        }
    } else if (const auto* gone = std::get_if<tfs::remove_holder_operation>(&*op); gone != nullptr && ok) {
        // The janitor saw the node's inventory without the chunk; count it if the node has it.
        const node_state& node = nodes_[gone->node];
        if (node.store && node.store->has(gone->sha256)) ++result_.holders_removed_while_held;
    } else if (const auto* add = std::get_if<tfs::add_holder_operation>(&*op); add != nullptr && ok) {
        fates_[add->sha256].ever_holders = tfs::with(fates_[add->sha256].ever_holders, add->node);
        check_reference(add->node, add->sha256, "a committed add_holder");
    }
}

/// GC safety, second half: a chunk the collector deleted from a node must never afterwards
/// be committed as held by that node (unless written there again since).
void objectstore_simulation::check_reference(std::uint32_t node, const tfs::sha256_digest& sha, const char* what) {
    if (gc_removed_.contains({node, sha})) {
        fail("gc_safety", std::string(what) + " lists node " + std::to_string(node) + " as holder of chunk " + hex_prefix(sha) +
                              ".. which the garbage collector had deleted from it");
    }
}

/// GC safety, first half: a remove frame must never delete a chunk the committed index lists
/// as held by that node.
void objectstore_simulation::check_gc_remove(std::uint32_t node, const tfs::sha256_digest& sha) {
    const auto chunk = shadow_.find_chunk(sha);
    if (chunk && tfs::contains(chunk->holders, static_cast<std::uint8_t>(node))) {
        fail("gc_safety", "node " + std::to_string(node) + " deleted chunk " + hex_prefix(sha) + ".. (refcount " +
                              std::to_string(chunk->refcount) + ") which the committed index lists it as holding");
    }
}

/// Durability at acknowledgement: an acknowledged PUT's committed chunk list gives every chunk
/// at least write_copies_min holders, each of which acknowledged a write of that chunk.
void objectstore_simulation::check_put_durability(std::uint64_t put_id) {
    const put_record& record = puts_[put_id];
    if (record.size == 0) return;
    if (!record.executed || !record.executed_ok) {
        fail("durability", "PUT p" + std::to_string(put_id) + " acknowledged (at position " + std::to_string(history_[record.history].position) +
                               ") but the log never committed it (executed=" + std::to_string(record.executed) + " at " +
                               std::to_string(record.position) + ")");
        return;
    }
    for (const tfs::chunk_location& c : record.committed_chunks) {
        if (tfs::count(c.holders) < service_options_.write_copies_min) {
            fail("durability", "PUT p" + std::to_string(put_id) + " acknowledged with chunk " + hex_prefix(c.sha256) + ".. on " +
                                   std::to_string(tfs::count(c.holders)) + " node(s), fewer than write_copies_min=" +
                                   std::to_string(service_options_.write_copies_min));
            return;
        }
        for (std::uint8_t node = 0; node < options_.replicas; ++node) {
            if (tfs::contains(c.holders, node) && !written_.contains({node, c.sha256})) {
                fail("durability", "PUT p" + std::to_string(put_id) + " lists node " + std::to_string(node) + " as holder of chunk " +
                                       hex_prefix(c.sha256) + ".. which never acknowledged writing it");
                return;
            }
        }
    }
}

std::uint64_t objectstore_simulation::copies_on_nodes(const tfs::sha256_digest& sha, tfs::node_set among) const {
    std::uint64_t copies = 0;
    for (std::uint8_t node = 0; node < options_.replicas; ++node) {
        if (!tfs::contains(among, node) || !nodes_[node].store) continue;
        const auto& files = nodes_[node].disk->files();
        const auto it = files.find(tfs::detail::chunk_path(sha));
        if (it != files.end() && crypto::sha256(it->second.bytes) == sha) ++copies;
    }
    return copies;
}

/// No acknowledged object is lost unless faults destroyed every copy: a read that found no good
/// copy of a chunk is excused only if every node ever listed as the chunk's holder lost its copy
/// to an injected fault (wipe, crash after a lost or torn write, rot), or to the collector after
/// the version being read was overwritten or deleted during the read (a GET slower than the
/// upload lease may lose the old version's chunks; check_gc_remove proved each such removal
/// safe when it happened, and the final reader, which runs after the last write, never hits it).
void objectstore_simulation::check_final_loss(std::uint32_t user) {
    const user_state& u = users_[user];
    for (const tfs::chunk_location& c : u.object.chunks) {
        if (copies_on_nodes(c.sha256, static_cast<tfs::node_set>((1u << options_.replicas) - 1)) != 0) continue;
        const chunk_fate fate = fates_.contains(c.sha256) ? fates_.at(c.sha256) : chunk_fate{};
        tfs::node_set collected = 0;
        for (std::uint8_t node = 0; node < options_.replicas; ++node) {
            if (!u.final_reader && gc_removed_.contains({node, c.sha256})) collected = tfs::with(collected, node);
        }
        if ((fate.ever_holders & ~fate.destroyed & ~collected) != 0) {
            std::string how;
            for (std::uint8_t node = 0; node < options_.replicas; ++node) {
                if (!tfs::contains(fate.ever_holders & ~fate.destroyed, node)) continue;
                const auto stats = nodes_[node].store->stats();
                how += "; node " + std::to_string(node) + (gc_removed_.contains({node, c.sha256}) ? " removed by a remove frame" : "") +
                       (written_.contains({node, c.sha256}) ? " (wrote it)" : " (never wrote it)") + " quarantined=" +
                       std::to_string(stats.quarantined) + " missing_found=" + std::to_string(stats.missing_found) +
                       " in_quarantine=" + std::to_string(nodes_[node].disk->files().contains(tfs::detail::quarantine_path(c.sha256, 0)));
            }
            fail("durability", "object " + history_[u.history].key + " (put p" + std::to_string(u.read_put) + ") lost chunk " +
                                   hex_prefix(c.sha256) + ".. although holders " + std::to_string(fate.ever_holders & ~fate.destroyed) +
                                   " (bitmask) never lost it to a fault (ever holders " + std::to_string(fate.ever_holders) +
                                   ", destroyed " + std::to_string(fate.destroyed) + ")" + how);
            return;
        }
    }
}

/// A read that answers data_lost must have had some chunk of its range out of reach: no listed
/// holder with a good copy whose link stayed healthy through the read and that never answered
/// that chunk badly (not ok, or a reply the simulator corrupted). A proxy that gives up while a
/// good copy sat on a reachable holder fails here, during faults as well as after them.
void objectstore_simulation::check_data_lost(std::uint32_t user) {
    const user_state& u = users_[user];
    const std::uint64_t range_end = u.range_first + u.range_length;
    std::uint64_t offset = 0;
    for (const tfs::chunk_location& c : u.object.chunks) {
        const std::uint64_t begin = offset;
        offset += c.size;
        if (begin >= range_end || offset <= u.range_first) continue;  // not read
        if (!good_copy_in_reach(u.proxy, c, u.read_start_ns)) return;
    }
    fail("durability", "GET #" + std::to_string(u.history) + " of " + history_[u.history].key + " (put p" +
                           std::to_string(u.read_put) + ") answered data_lost, but every chunk it read had a good copy on a " +
                           "listed holder the proxy could reach throughout the read");
}

bool objectstore_simulation::good_copy_in_reach(std::uint32_t proxy, const tfs::chunk_location& chunk, std::uint64_t since_ns) const {
    for (std::uint8_t node = 0; node < options_.replicas; ++node) {
        if (!tfs::contains(chunk.holders, node) || copies_on_nodes(chunk.sha256, tfs::with(0, node)) == 0) continue;
        const std::uint32_t index = proxy * options_.replicas + node;
        if (connections_[index].healthy_since_ns > since_ns) continue;
        const auto bad = bad_reads_.find({index, chunk.sha256});
        if (bad == bad_reads_.end() || bad->second < since_ns) return true;
    }
    return false;
}

/// Liveness means success: after healing, no operation may end in timeout or unavailable.
void objectstore_simulation::check_success(std::uint32_t user, tfs::service_status s) {
    if (faults_active_) return;
    if (options_.tamper == objectstore_tamper::unavailable_after_heal && !tampered_) {
        tampered_ = true;
        s = tfs::service_status::unavailable;
    }
    if (s != tfs::service_status::timeout && s != tfs::service_status::unavailable) return;
    const user_state& u = users_[user];
    // Excused: invoked before the healed cluster settled, and ended soon after it settled.
    // A metadata request waiting from before gets its next retry within 1.5 retry_max_ms.
    const std::uint64_t settle_grace_ns = (vsr::client_options{}.retry_max_ms * 3 / 2 + 500) * ns_per_ms;
    if (invoked_ns(u) < settled_ns_ && (settled_ns_ == UINT64_MAX || now_ < settled_ns_ + settle_grace_ns)) return;
    const std::string what = u.op == user_op::list ? "LIST #" + std::to_string(u.history) : describe_op(history_[u.history]);
    fail("liveness", "user " + std::to_string(user) + "'s " + what + " (invoked at " + std::to_string(invoked_ns(u) / ns_per_ms) +
                         " ms) ended " + tfs::to_string(s) + " at " + std::to_string(now_ / ns_per_ms) + " ms, after healing at " +
                         std::to_string(heal_time_ / ns_per_ms) + " ms (settled at " + std::to_string(settled_ns_ / ns_per_ms) + " ms)");
}

/// After healing: every node normal in one view (not syncing), every chunk link up and unblocked.
bool objectstore_simulation::cluster_settled() const {
    std::uint64_t view = UINT64_MAX;
    for (const auto& node : nodes_) {
        if (!node.replica || node.paused || node.replica->status() != vsr::replica_status::normal || node.replica->syncing()) return false;
        if (view != UINT64_MAX && node.replica->view() != view) return false;
        view = node.replica->view();
    }
    return std::all_of(connections_.begin(), connections_.end(), [](const connection& c) { return c.up && !c.blocked; });
}

bool objectstore_simulation::replicas_converged() const {
    std::uint64_t executed = 0, view = 0;
    for (const auto& node : nodes_) {
        if (!node.replica) return false;
        executed = std::max(executed, node.replica->commit_executed());
        view = std::max(view, node.replica->view());
    }
    for (const auto& node : nodes_) {
        const auto& r = *node.replica;
        if (r.status() != vsr::replica_status::normal || r.syncing() || r.view() != view || r.commit_executed() != executed) return false;
    }
    return true;
}

/// Liveness: once healed, every operation completes within the bound, and the final phase ends
/// within the bound after the workload.
void objectstore_simulation::watchdog() {
    schedule(1000 * ns_per_ms, event_kind::watchdog, 0);
    if (faults_active_) return;
    const std::uint64_t bound_ns = options_.liveness_bound_ms * ns_per_ms;
    for (std::uint32_t i = 0; i < users_.size(); ++i) {
        const user_state& u = users_[i];
        if (u.op == user_op::none) continue;
        const std::uint64_t since = std::max(invoked_ns(u), heal_time_);
        if (now_ - since > bound_ns) {
            const std::string what = u.op == user_op::list ? "LIST #" + std::to_string(u.history) : describe_op(history_[u.history]);
            fail("liveness", "user " + std::to_string(i) + "'s " + what + " outstanding for " +
                                 std::to_string((now_ - since) / ns_per_ms) + " ms since healing or its start");
            return;
        }
    }
    if (workload_done() && done_since_ == 0) done_since_ = now_;
    if (done_since_ != 0 && now_ - done_since_ > bound_ns + 3 * metadata_options_.upload_lease_ns) {
        std::ostringstream detail;
        detail << "final phase " << static_cast<int>(phase_) << " did not finish within the bound; converged=" << replicas_converged()
               << " janitor passes=" << proxies_[0].janitor->counters().passes << " metadata clock " << metadata_now_ns_ / ns_per_ms
               << " ms (phase started at " << phase_start_metadata_ns_ / ns_per_ms << " ms); replicas:";
        for (std::uint32_t i = 0; i < nodes_.size(); ++i) {
            const auto& r = nodes_[i].replica;
            if (!r) {
                detail << " n" << i << "=down";
                continue;
            }
            detail << " n" << i << "=" << vsr::to_string(r->status()) << "/v" << r->view() << "/op" << r->op() << "/commit" << r->commit()
                   << "/executed" << r->commit_executed() << (r->syncing() ? "/syncing" : "");
        }
        fail("liveness", detail.str());
    }
}

/// After healing and the workload: repair (two full janitor passes), read back every key,
/// then wait two leases and two more passes and check placement and garbage collection.
void objectstore_simulation::final_step() {
    schedule(50 * ns_per_ms, event_kind::final_step, 0);
    const janitor_type& janitor = *proxies_[0].janitor;
    const auto passes_done = [&](std::uint64_t needed) {
        return janitor.counters().passes >= phase_passes_ + needed && !janitor.pass_running();
    };
    switch (phase_) {
        case final_phase::none:
            if (faults_active_ || !workload_done() || !replicas_converged()) return;
            phase_ = final_phase::repair;
            phase_passes_ = janitor.counters().passes + (janitor.pass_running() ? 1 : 0);
            phase_start_ns_ = now_;
            return;
        case final_phase::repair:
            if (!passes_done(2)) return;
            phase_ = final_phase::read_back;
            if (options_.tamper == objectstore_tamper::drop_chunk_copies) tamper_chunk_copies(false);
            if (options_.tamper == objectstore_tamper::garble_chunk_copies) tamper_chunk_copies(true);
            users_.emplace_back();
            users_.back().proxy = 0;
            users_.back().final_reader = true;
            users_.back().random = std::make_unique<vsr::xoshiro256>(random_.next_u64());
            users_.back().last_md5.resize(keys_);
            schedule(0, event_kind::user_step, static_cast<std::uint32_t>(users_.size() - 1), users_.back().generation);
            return;
        case final_phase::read_back:
            if (final_key_ < keys_ || users_.back().op != user_op::none) return;
            phase_ = final_phase::collect;
            phase_start_ns_ = now_;
            phase_start_metadata_ns_ = metadata_now_ns_;
            phase_passes_ = janitor.counters().passes + (janitor.pass_running() ? 1 : 0);
            return;
        case final_phase::collect:
            // Two leases of the metadata clock (it may stall behind a primary whose clock is
            // behind the previous one's), then three more passes.
            if (metadata_now_ns_ < phase_start_metadata_ns_ + 2 * metadata_options_.upload_lease_ns) {
                phase_passes_ = janitor.counters().passes + (janitor.pass_running() ? 1 : 0);
                return;
            }
            if (!passes_done(3)) return;
            // A janitor with a short interval keeps an operation in flight, and the replicas
            // converge (every one has executed the same ops) only when the cluster is idle: stop
            // starting passes, let running ones end, then check.
            janitors_stopped_ = true;
            for (const auto& p : proxies_) {
                if (p.janitor->pass_running()) return;
            }
            if (!replicas_converged()) return;
            check_chunk_placement();
            phase_ = final_phase::done;
            return;
        case final_phase::done: return;
    }
}

/// Convergence of the chunk layer, after repair and collection had every chance: every
/// chunk in the committed index has min(replication_factor, n) good copies on listed holders
/// (unless it is lost, which check_final_loss judged), and every chunk file on a node is
/// referenced with that node as a holder (garbage is collected).
void objectstore_simulation::check_chunk_placement() {
    for (std::uint32_t node = 0; node < options_.replicas; ++node) {
        for (const auto& [name, file] : nodes_[node].disk->files()) {
            if (name.rfind("chunks/", 0) != 0) continue;
            const auto sha = tfs::from_hex<32>(std::string_view(name).substr(name.rfind('/') + 1));
            if (!sha) continue;
            const auto chunk = shadow_.find_chunk(*sha);
            if (!chunk || !tfs::contains(chunk->holders, static_cast<std::uint8_t>(node))) {
                const auto entry = nodes_[node].store->find(*sha);
                fail("convergence", "node " + std::to_string(node) + " still stores unreferenced chunk " + hex_prefix(*sha) +
                                        ".. after two leases of garbage collection (" +
                                        (chunk ? "indexed with holders " + std::to_string(chunk->holders) : std::string("not indexed")) +
                                        (entry ? ", in the store with token " + std::to_string(entry->token) : std::string(", not in the store index")) +
                                        ", file token " + std::to_string(file.token) + ", size " + std::to_string(file.bytes.size()) + ")" +
                                        janitor_summary());
                return;
            }
        }
    }
    const std::uint64_t wanted = std::min<std::uint64_t>(service_options_.replication_factor, options_.replicas);
    for (const put_record& record : puts_) {
        for (const tfs::chunk_location& c : record.committed_chunks) {
            const auto chunk = shadow_.find_chunk(c.sha256);
            if (!chunk) continue;  // no longer referenced
            const std::uint64_t copies = copies_on_nodes(c.sha256, chunk->holders);
            if (copies == 0) continue;  // lost: judged by the final read
            if (copies < wanted) {
                fail("convergence", "chunk " + hex_prefix(c.sha256) + ".. has " + std::to_string(copies) + " good copies on holders " +
                                        std::to_string(chunk->holders) + " after repair, want " + std::to_string(wanted));
                return;
            }
        }
    }
}

/// LIST, checked soundly against the history (linearizability of a multi-key read is not
/// decided; these are necessary conditions). For a LIST L over [invoke, complete]:
/// - every listed (key, etag, size) is a PUT P of that key and size, invoked before L
///   completed, and not certainly overwritten before L began: no effective write W on the key
///   (a PUT that answered ok, a DELETE that answered ok) with P.complete < W.invoke and
///   W.complete < L.invoke;
/// - every key certainly present throughout L appears (below the cursor if truncated): some
///   effective PUT P completed before L began, and every DELETE D that might have removed it
///   (answered ok, or outcome unknown) and began before L completed finished before P began.
void objectstore_simulation::check_lists() {
    std::map<std::string, std::vector<const kv_history_op*>> by_key;
    for (const kv_history_op& h : history_) by_key[h.key].push_back(&h);
    const auto effective_write = [](const kv_history_op& h) {
        return h.result_outcome == outcome::ok && h.status == kv_status::ok && h.kind != kv_kind::get;
    };
    for (std::size_t i = 0; i < lists_.size(); ++i) {
        const list_record& l = lists_[i];
        if (!l.ok) continue;
        std::set<std::string> listed;
        for (const tfs::list_objects_entry& e : l.entries) {
            listed.insert(e.key);
            const std::string where = "LIST #" + std::to_string(i) + " (prefix \"" + l.prefix + "\") listed " + e.key;
            if (e.size == 0) continue;  // empty objects share one etag
            const auto put = put_by_md5(e.md5);
            if (!put || key_names_[puts_[*put].key] != e.key || puts_[*put].size != e.size) {
                fail("list", where + " with an etag/size no PUT of that key wrote");
                return;
            }
            const kv_history_op& p = history_[puts_[*put].history];
            if (p.invoke_ns > l.complete_ns) {
                fail("list", where + " = p" + std::to_string(*put) + " before that PUT began");
                return;
            }
            if (p.result_outcome != outcome::ok) continue;
            for (const kv_history_op* w : by_key[e.key]) {
                if (effective_write(*w) && p.complete_ns < w->invoke_ns && w->complete_ns < l.invoke_ns) {
                    fail("list", where + " = p" + std::to_string(*put) + ", overwritten by " + describe_op(*w) + " before the LIST began");
                    return;
                }
            }
        }
        const std::string cursor = l.entries.empty() ? std::string() : l.entries.back().key;
        for (const auto& [key, ops] : by_key) {
            if (!key.starts_with(l.prefix) || listed.contains(key) || (l.truncated && key > cursor)) continue;
            for (const kv_history_op* p : ops) {
                if (!(effective_write(*p) && p->kind != kv_kind::del && p->kind != kv_kind::del_if && p->complete_ns < l.invoke_ns)) continue;
                bool removable = false;
                for (const kv_history_op* d : ops) {
                    if (d->kind != kv_kind::del && d->kind != kv_kind::del_if) continue;
                    const bool may_remove = d->result_outcome == outcome::unknown || (d->result_outcome == outcome::ok && d->status == kv_status::ok);
                    const bool before_put = d->result_outcome == outcome::ok && d->complete_ns < p->invoke_ns;
                    if (may_remove && d->invoke_ns < l.complete_ns && !before_put) removable = true;
                }
                if (!removable) {
                    fail("list", "LIST #" + std::to_string(i) + " (prefix \"" + l.prefix + "\") omitted " + key +
                                     ", present throughout since " + describe_op(*p));
                    return;
                }
            }
        }
    }
}

void objectstore_simulation::final_checks() {
    // Replicas agree on the final state.
    std::vector<std::uint8_t> first, other;
    nodes_[0].replica->state_machine().snapshot(first);
    for (std::uint32_t i = 1; i < options_.replicas; ++i) {
        other.clear();
        nodes_[i].replica->state_machine().snapshot(other);
        if (other != first) {
            fail("safety", "replica " + std::to_string(i) + " state differs from replica 0 at the same commit");
            return;
        }
    }
    // PUTs whose outcome the client never learned: the canonical log says whether they ran.
    for (kv_history_op& h : history_) {
        const std::uint64_t put_id = history_put_[h.id];
        if (put_id == UINT64_MAX || puts_[put_id].size == 0) continue;
        const put_record& record = puts_[put_id];
        if (h.result_outcome == outcome::unknown) {
            if (record.executed && record.executed_ok) h.position = record.position;
            else h.result_outcome = outcome::fail;  // never ran, or ran without effect
        } else if (h.result_outcome == outcome::fail && record.executed && record.executed_ok) {
            fail("client contract", "PUT reported as failed (or aborted) but committed: " + describe_op(h));
            return;
        }
    }
    check_lists();
    if (!result_.ok) return;
    const linearizability_report report = check_linearizable(history_);
    if (!report.linearizable) fail("linearizability", report.explanation);
}

void objectstore_simulation::fail(const std::string& property, const std::string& detail) {
    if (!result_.ok) return;
    result_.ok = false;
    result_.property = property;
    result_.detail = detail;
    result_.trace_tail = format_trace();
}

void objectstore_simulation::trace(event_kind kind, std::uint32_t a, std::uint64_t b, std::uint64_t c) {
    trace_record& record = trace_[trace_count_++ % trace_tail_size];
    record = trace_record{now_, kind, a, b, c};
    mix_trace(now_ ^ (std::uint64_t{static_cast<std::uint8_t>(kind)} << 56) ^ (std::uint64_t{a} << 40) ^ mix64(b) ^ c);
    if (options_.verbose) {
        std::printf("%10.3f ms  %-14s a=%u b=%llu c=%llx\n", static_cast<double>(now_) / 1e6, event_names[static_cast<int>(kind)], a,
                    static_cast<unsigned long long>(b), static_cast<unsigned long long>(c));
    }
}

std::string objectstore_simulation::format_trace() const {
    std::ostringstream out;
    const std::uint64_t first = trace_count_ > trace_tail_size ? trace_count_ - trace_tail_size : 0;
    for (std::uint64_t i = first; i < trace_count_; ++i) {
        const trace_record& r = trace_[i % trace_tail_size];
        out << "  " << r.time / ns_per_us << "us " << event_names[static_cast<int>(r.kind)] << " a=" << r.a << " b=" << r.b << " c=" << std::hex
            << r.c << std::dec << "\n";
    }
    return out.str();
}

objectstore_result objectstore_simulation::run() {
    setup();
    schedule(100 * ns_per_ms, event_kind::final_step, 0);
    const std::uint64_t time_max = 900'000 * ns_per_ms;
    while (!events_.empty() && result_.ok && phase_ != final_phase::done && now_ < time_max) {
        const event e = events_.top();
        events_.pop();
        now_ = e.time;
        if (e.kind != event_kind::deliver && e.kind != event_kind::chunk_to_node && e.kind != event_kind::chunk_to_proxy &&
            e.kind != event_kind::replica_tick && e.kind != event_kind::proxy_tick) {
            trace(e.kind, e.a, e.b, 0);
        }
        handle(e);
        if (!faults_active_ && settled_ns_ == UINT64_MAX && cluster_settled()) settled_ns_ = now_;
        // As the proxy's event loop does after every batch: deferred work waits for no tick.
        for (auto& proxy : proxies_) proxy.service->poll();
    }
    if (result_.ok && phase_ != final_phase::done) fail("liveness", "simulation ended before the final phase completed");
    if (result_.ok) final_checks();
    for (const auto& node : nodes_) {
        if (node.replica) result_.view_changes += node.replica->counters().views_started_as_primary;
        const auto& d = node.disk->counters();
        result_.disk_faults += d.bit_flips_at_rest + d.bit_flips_on_read + d.lost_writes + d.torn_writes + d.leftover_temporaries +
                               d.read_errors + d.write_errors + d.remove_errors;
    }
    for (const auto& proxy : proxies_) {
        const auto& j = proxy.janitor->counters();
        result_.janitor_passes += j.passes;
        result_.repairs += j.repairs;
        result_.chunks_collected += j.chunks_collected;
        result_.stale_holders_removed += j.stale_holders_removed;
        const auto& s = proxy.service->counters();
        result_.buffer_waits += s.buffer_waits;
        result_.corrupt_chunks_received += s.corrupt_chunks_received;
        result_.chunk_timeouts += s.chunk_timeouts;
    }
    result_.messages_dropped = network_.dropped();
    result_.simulated_ms = now_ / ns_per_ms;
    result_.trace_hash = trace_hash_;
    return result_;
}

}  // namespace

objectstore_result run_objectstore_simulation(const objectstore_options& options) {
    objectstore_simulation simulation(options);
    return simulation.run();
}

namespace {
constexpr std::pair<toastyfs::planted_bug, const char*> bug_names[] = {
    {toastyfs::planted_bug::none, "none"},
    {toastyfs::planted_bug::gc_ignores_lease, "gc_ignores_lease"},
    {toastyfs::planted_bug::put_acks_one_copy, "put_acks_one_copy"},
    {toastyfs::planted_bug::get_skips_verification, "get_skips_verification"},
    {toastyfs::planted_bug::put_ignores_condition, "put_ignores_condition"},
    {toastyfs::planted_bug::read_tries_one_node, "read_tries_one_node"},
};
}  // namespace

bool parse_objectstore_bug(const std::string& name, toastyfs::planted_bug& out) {
    for (const auto& [bug, bug_name] : bug_names) {
        if (name == bug_name) {
            out = bug;
            return true;
        }
    }
    return false;
}

const char* to_string(toastyfs::planted_bug bug) {
    for (const auto& [b, name] : bug_names) {
        if (b == bug) return name;
    }
    return "unknown";
}

}  // namespace sim

