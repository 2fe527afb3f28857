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
//   f nodes down or recovering at once;
// - the metadata replicas' storage, drawn per seed (as vsr-sim does): diskless, or persistent,
//   with the journal on sim::sim_storage and the SQLite store on sim::sim_metadata_disk, both
//   kept across crashes (unsynced writes torn) or, one crash in four, lost; whole-cluster power
//   loss; rot and full disks on up to f faulty disks, which share that budget with lost disks.
#include "sim/bug_names.hpp"
#include "sim/objectstore_simulation.hpp"

namespace sim {
namespace objectstore_internal {

// ---- policies ---------------------------------------------------------------------------------

void observed_machine::execute(const vsr::operation_context& context, std::span<const std::uint8_t> bytes,
                               std::vector<std::uint8_t>& out) {
    machine.execute(context, bytes, out);
    // A failed store answers `invalid` and its replica halts without answering: no result.
    if (observer != nullptr && !machine.failed()) observer->on_execute(node, context, bytes, out);
}

vsr::stored_state observed_machine::open_stored(std::uint64_t& op, std::vector<std::uint8_t>& record) {
    const vsr::stored_state state = machine.open_stored(op, record);
    if (observer != nullptr) observer->on_open_stored(node, state);
    return state;
}

bool sim_transport::send(std::uint8_t node, const tfs::frame_header& header,
                         std::shared_ptr<const std::vector<std::uint8_t>> body) {
    return simulation->chunk_send(proxy, node, header, std::move(body));
}

bool sim_transport::connected(std::uint8_t node) { return simulation->chunk_connected(proxy, node); }

// ---- setup ------------------------------------------------------------------------------------

void objectstore_simulation::schedule(std::uint64_t delay_ns, event_kind kind, std::uint32_t a, std::uint64_t b) {
    events_.push(now_ + delay_ns, kind, a, b);
}

void objectstore_simulation::draw_disk_faults(node_state& node) {
    chunk_disk_faults& f = node.faults;
    f = {};
    auto maybe = [&](std::uint32_t per_mille_max) {
        return vsr::chance(random_, 1, 3) ? static_cast<std::uint32_t>(vsr::uniform_between(random_, 1, per_mille_max))
                                          : 0u;
    };
    f.bit_flip_at_rest_per_mille = maybe(5);
    f.bit_flip_on_read_per_mille = maybe(30);
    f.lost_write_per_mille = maybe(30);
    f.torn_write_per_mille = maybe(30);
    f.leftover_temporary_per_mille = maybe(50);
    f.read_error_per_mille = maybe(30);
    f.write_error_per_mille = maybe(30);
    f.remove_error_per_mille = maybe(30);
    if (vsr::chance(random_, 1, 6))
        f.capacity_bytes = std::uint64_t{service_options_.chunk_size} * vsr::uniform_between(random_, 4, 64);
    node.reply_corruption_per_mille =
        vsr::chance(random_, 1, 2) ? static_cast<std::uint32_t>(vsr::uniform_between(random_, 1, 40)) : 0;
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
    config_.bug = options_.vsr_bug;
    // Most seeds checkpoint every few ops, so metadata snapshots are restored by state transfer.
    if (!vsr::chance(random_, 1, 4)) {
        config_.checkpoint_interval = static_cast<std::uint32_t>(vsr::uniform_between(random_, 2, 32));
        config_.log_entries_max = 2 * config_.checkpoint_interval + config_.pipeline_max +
                                  vsr::uniform_below(random_, config_.checkpoint_interval + 1);
    }

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
                                            ? service_options_.chunk_size * vsr::uniform_between(random_, 1, 3)
                                            : std::size_t{64} << 20;
    service_options_.chunk_writes_per_upload_max = static_cast<std::uint32_t>(vsr::uniform_between(random_, 1, 4));
    service_options_.read_ahead_chunks = static_cast<std::uint32_t>(vsr::uniform_between(random_, 1, 3));
    service_options_.chunk_request_timeout_ns = vsr::uniform_between(random_, 500, 5'000) * ns_per_ms;
    service_options_.bug = options_.bug;
    object_size_max_ = service_options_.chunk_size * vsr::uniform_between(random_, 1, 5) +
                       vsr::uniform_below(random_, service_options_.chunk_size);

    janitor_options_.interval_ns = vsr::uniform_between(random_, 100, 2'000) * ns_per_ms;
    janitor_options_.upload_lease_ns = metadata_options_.upload_lease_ns;
    janitor_options_.node_down_grace_ns = vsr::uniform_between(random_, 0, 5'000) * ns_per_ms;
    janitor_options_.replication_factor = service_options_.replication_factor;
    janitor_options_.bug = options_.bug;
    scrub_pass_slices_ = vsr::uniform_between(random_, 20, 100);
    abort_per_mille_ =
        vsr::chance(random_, 1, 2) ? static_cast<std::uint32_t>(vsr::uniform_between(random_, 10, 150)) : 0;

    keys_ = static_cast<std::uint32_t>(vsr::uniform_between(random_, 1, 6));
    for (std::uint32_t k = 0; k < keys_; ++k) key_names_.push_back((k % 2 == 0 ? "a/" : "b/") + std::to_string(k));
    setup_storage();
    setup_nodes();
    setup_proxies();
    setup_users();
    describe_setup();
}

/// Diskless or persistent metadata replicas, and in persistent mode their disks' faults: a crash
/// tears unsynced writes on every disk; rot, full disks, read errors (and lost and misdirected
/// journal writes) only on up to f faulty disks, so a majority always holds what it acknowledged.
/// All from a stream of its own.
void objectstore_simulation::setup_storage() {
    storage_random_ = vsr::xoshiro256(options_.seed ^ 0x5702A6E5702A6E57ULL);
    vsr::xoshiro256& random = storage_random_;
    const std::uint32_t n = options_.replicas;
    persistent_ = vsr::chance(random, 1, 2);
    if (options_.storage == "diskless") persistent_ = false;
    if (options_.storage == "persistent") persistent_ = true;
    result_.storage = persistent_ ? "persistent" : "diskless";
    if (!persistent_) return;
    const std::uint32_t torn_choices[] = {0, 300, 700, 1000};
    const std::uint32_t torn = torn_choices[vsr::uniform_below(random, 4)];
    const std::uint32_t vanish = static_cast<std::uint32_t>(vsr::uniform_below(random, 1001));
    const std::uint32_t f = (n - 1) / 2;
    nodes_.resize(n);
    for (std::uint32_t i = 0, faulty = static_cast<std::uint32_t>(vsr::uniform_below(random, f + 1)); i < faulty; ++i) {
        nodes_[vsr::uniform_below(random, n)].faulty_disk = true;
    }
    rot_per_mille_ = static_cast<std::uint32_t>(vsr::uniform_below(random, 100));
    full_disk_per_mille_ = static_cast<std::uint32_t>(vsr::uniform_below(random, 30));
    const std::uint64_t sync_latencies_us[] = {1'000, 5'000, 20'000};
    sync_latency_max_us_ = sync_latencies_us[vsr::uniform_below(random, 3)];
    for (node_state& node : nodes_) {
        node.disk_random = std::make_unique<vsr::xoshiro256>(random.next_u64());
        storage_faults journal;
        journal.torn_on_crash_per_mille = torn;
        metadata_disk_faults metadata;
        metadata.torn_on_crash_per_mille = torn;
        metadata.vanish_on_crash_per_mille = vanish;
        if (node.faulty_disk) {
            journal.lost_write_per_mille = static_cast<std::uint32_t>(vsr::uniform_below(random, 20));
            journal.misdirected_write_per_mille = static_cast<std::uint32_t>(vsr::uniform_below(random, 10));
            journal.full_disk_per_mille = static_cast<std::uint32_t>(vsr::uniform_below(random, 3));
            metadata.read_error_per_mille =
                vsr::chance(random, 1, 2) ? static_cast<std::uint32_t>(vsr::uniform_between(random, 1, 20)) : 0;
        }
        node.storage = sim_storage(node.disk_random.get(), journal);
        node.metadata_disk = std::make_unique<sim_metadata_disk>(random.next_u64(), metadata);
    }
}

void objectstore_simulation::setup_nodes() {
    const std::uint32_t n = options_.replicas;
    nodes_.resize(n);
    for (std::uint32_t i = 0; i < n; ++i) {
        node_state& node = nodes_[i];
        node.bus = sim_bus{this, i};
        node.clock = draw_clock(&now_, profile_.clock_drift_per_mille, random_);
        node.tick_interval_ns = tick_interval_ns(config_.tick_ms, node.clock);
        draw_disk_faults(node);
        node.disk = std::make_unique<sim_chunk_disk>(random_.next_u64(), node.faults);
        start_node(i, false);
        schedule(vsr::uniform_below(random_, node.tick_interval_ns), event_kind::replica_tick, i);
    }
}

void objectstore_simulation::setup_proxies() {
    const std::uint32_t n = options_.replicas;
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
    client_options.deadline_ms =
        vsr::chance(random_, 1, 3) ? 0 : static_cast<std::uint32_t>(vsr::uniform_between(random_, 3'000, 15'000));
    client_deadline_ms_ = client_options.deadline_ms;
    for (std::uint32_t p = 0; p < proxy_count; ++p) {
        proxy_state& proxy = proxies_[p];
        const std::uint32_t id = n + p;
        proxy.bus = sim_bus{this, id};
        proxy.random = std::make_unique<vsr::xoshiro256>(random_.next_u64());
        proxy.client = std::make_unique<sim_client>(client_options, proxy.bus, *proxy.random);
        for (const auto client_id : proxy.client->client_ids()) client_owner_.emplace(client_id, id);
        proxy.adapter.client = proxy.client.get();
        proxy.adapter.now_ns = &now_;
        proxy.adapter.settled_ns = &settled_ns_;
        proxy.transport = sim_transport{this, p};
        auto options = service_options_;
        options.request_id_seed = p + 1;
        proxy.service = std::make_unique<service_type>(options, proxy.adapter, proxy.transport);
        proxy.janitor = std::make_unique<janitor_type>(janitor_options_, *proxy.service, static_cast<std::uint8_t>(n));
        schedule(vsr::uniform_below(random_, config_.tick_ms * ns_per_ms), event_kind::proxy_tick, p);
    }
}

void objectstore_simulation::setup_users() {
    const auto proxy_count = static_cast<std::uint32_t>(proxies_.size());
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
}

/// What this seed drew, for the report and the replay.
void objectstore_simulation::describe_setup() {
    const std::uint32_t n = options_.replicas;
    const auto proxy_count = static_cast<std::uint32_t>(proxies_.size());
    const auto user_count = static_cast<std::uint32_t>(users_.size());
    std::ostringstream profile;
    profile << profile_.describe() << " | storage=" << result_.storage;
    if (persistent_) {
        profile << " faulty=";
        for (std::uint32_t i = 0; i < n; ++i) profile << (nodes_[i].faulty_disk ? "1" : "0");
        const metadata_disk_faults& m = nodes_[0].metadata_disk->faults();
        profile << " torn=" << m.torn_on_crash_per_mille << " vanish=" << m.vanish_on_crash_per_mille
                << " rot=" << rot_per_mille_ << " full=" << full_disk_per_mille_ << " sync<=" << sync_latency_max_us_
                << "us";
    }
    profile << " | wipes=" << wipes_ << " rot=" << disk_rot_ << " breaks=" << connection_breaks_
            << " keepalive=" << keepalive_ns_ / ns_per_ms << "ms chunk=" << service_options_.chunk_size
            << " rf=" << int{service_options_.replication_factor}
            << " copies_min=" << int{service_options_.write_copies_min}
            << " inline<=" << service_options_.inline_size_max << " buffer=" << service_options_.buffer_bytes_max
            << " writes/upload=" << service_options_.chunk_writes_per_upload_max << " object<=" << object_size_max_
            << " lease=" << metadata_options_.upload_lease_ns / ns_per_ms
            << "ms janitor=" << janitor_options_.interval_ns / ns_per_ms << "ms proxies=" << proxy_count
            << " users=" << user_count << " keys=" << keys_ << " abort=" << abort_per_mille_
            << "/1000 deadline=" << client_deadline_ms_ << "ms";
    for (std::uint32_t i = 0; i < n; ++i) {
        const auto& fl = nodes_[i].faults;
        profile << " | n" << i << " disk{flip_rest=" << fl.bit_flip_at_rest_per_mille
                << " flip_read=" << fl.bit_flip_on_read_per_mille << " lost=" << fl.lost_write_per_mille
                << " torn=" << fl.torn_write_per_mille << " eio_r/w/rm=" << fl.read_error_per_mille << "/"
                << fl.write_error_per_mille << "/" << fl.remove_error_per_mille
                << " cap=" << (fl.capacity_bytes == UINT64_MAX ? 0 : fl.capacity_bytes)
                << " reply_corrupt=" << nodes_[i].reply_corruption_per_mille << "}";
    }
    result_.profile = profile.str();
    result_.chunk_size = static_cast<std::uint32_t>(service_options_.chunk_size);
    result_.replication_factor = service_options_.replication_factor;
    result_.proxies = proxy_count;
    result_.users = user_count;
}

/// Starts (or restarts) a node: the metadata replica, on its disks when persistent (it reopens
/// what they hold), else on a fresh memory disk; and the chunk store.
void objectstore_simulation::start_node(std::uint32_t index, bool recovering) {
    node_state& node = nodes_[index];
    node.random = std::make_unique<vsr::xoshiro256>(random_.next_u64());
    tfs::metadata_store_options store;
    store.seed = node.random->next_u64();
    store.keep_existing = persistent_;
    store.durable = persistent_;
    tfs::metadata_disk* disk = nullptr;
    const injected_damage before = persistent_ ? damage_injected(index) : injected_damage{};
    if (persistent_) {
        node.metadata_disk->restart();
        node.metadata_disk->end_full();  // the space was freed before the restart
        disk = node.metadata_disk.get();
    }
    node.opened = vsr::stored_state::empty;
    node.replica = std::make_unique<sim_replica>(config_, static_cast<std::uint8_t>(index), node.bus, node.clock,
                                                 *node.random, node.storage, recovering,
                                                 observed_machine(metadata_options_, disk, store, this, index));
    node.checked_executed = 0;
    node.checked_primary_view = 0;
    node.checked_checkpoint_op = 0;
    if (persistent_ && recovering) count_restart(index, before);
    tfs::chunk_store_options store_options;
    store_options.chunk_size_max = service_options_.chunk_size;
    node.store = std::make_unique<store_type>(*node.disk, store_options);
    node.disk->set_token_now(now_ + 1);
    std::string error;
    if (!node.store->open(error))
        fail("chunk_store", "node " + std::to_string(index) + " failed to open its store: " + error);
    node.last_view = 0;
    node.paused = false;
    if (!node.replica->halted()) check_replica(index);  // what it restored is the canonical state
    schedule_flush(index);
}

/// A persistent node's restart: what it found on its disks. Damage (a journal or a store that
/// cannot be trusted) is excused only by damage the simulator injected: lost, misdirected or
/// rotten journal writes since the disks were last lost, rot in the store's files (the database
/// and its WAL, as faults_hit records it), or a read error while starting (the store then opens
/// damaged and is emptied). Torn and dropped unsynced writes, and files that vanished unsynced,
/// are no excuse: nothing unsynced was promised, and the journal and SQLite must both end
/// cleanly at the last durable write.
void objectstore_simulation::count_restart(std::uint32_t index, const injected_damage& before_start) {
    node_state& node = nodes_[index];
    const sim_replica& replica = *node.replica;
    result_.loaded_restarts += replica.start_state() == vsr::journal_state::loaded;
    result_.stores_reopened += node.opened == vsr::stored_state::loaded;
    const bool damaged =
        replica.start_state() == vsr::journal_state::damaged || node.opened == vsr::stored_state::damaged;
    if (!damaged) return;
    ++result_.damaged_restarts;
    // The store's files as they were before the start: a damaged store is emptied while starting.
    // Damage found and excused at an earlier start still excuses until the node has recovered:
    // what it destroyed (an emptied store beside a journal that still names its checkpoint)
    // stays behind if the replica halted before its recovery began.
    if (node.damage_found || before_start.journal != node.damage_at_loss.journal || before_start.metadata_rot != 0 ||
        damage_injected(index).read_errors != before_start.read_errors) {
        node.damage_found = true;
        return;
    }
    fail("durability", "node " + std::to_string(index) + " restarted damaged (journal " +
                           vsr::to_string(replica.start_state()) + (*replica.start_damage() != 0 ? ": " : "") +
                           replica.start_damage() + "; store " +
                           (node.opened == vsr::stored_state::damaged ? "damaged" : "not damaged") +
                           ") but no fault was injected into its disks since they were last lost");
}

injected_damage objectstore_simulation::damage_injected(std::uint32_t index) const {
    const node_state& node = nodes_[index];
    const storage_fault_counts& journal = node.storage.counts();
    const std::string store = tfs::metadata_store_options{}.file_name;
    const std::uint64_t store_rot =
        node.metadata_disk->faults_hit(store).rot + node.metadata_disk->faults_hit(store + "-wal").rot;
    return {journal.lost + journal.misdirected + journal.latent, store_rot, node.metadata_disk->counts().read_errors};
}

// ---- VSR messages (sim/replica_cluster.hpp delivers them, over sim/network.hpp) --------------

void objectstore_simulation::send(std::uint32_t from, std::uint32_t to, std::span<const std::uint8_t> message) {
    send_message(cluster(), faults_active_, from, to, message);
}

void objectstore_simulation::delivering(std::uint32_t to, std::uint32_t from, std::span<const std::uint8_t> message) {
    const vsr::header h =
        message.size() >= vsr::header_size ? vsr::decode_header_fields(message.data()) : vsr::header{};
    trace(event_kind::deliver, to, from, h.checksum);
}

void objectstore_simulation::replica_receive(std::uint32_t index, std::span<const std::uint8_t> message) {
    nodes_[index].replica->on_message(message);
    if (restart_if_halted(index)) return;
    check_replica(index);
    schedule_flush(index);
}

/// A replica whose disk or store failed stops, as production does (the node process exits), and
/// restarts later from what is durable.
bool objectstore_simulation::restart_if_halted(std::uint32_t index) {
    node_state& node = nodes_[index];
    if (!node.replica || !node.replica->halted()) return false;
    crash_node(index, false, false, crash_cause::halt);
    schedule(vsr::uniform_between(random_, 50, 2'000) * ns_per_ms, event_kind::restart, index);
    return true;
}

/// A persistent replica's writes take a moment to become durable (one sync for everything
/// decided meanwhile: group commit), as in vsr-sim; a crash before then tears them.
void objectstore_simulation::schedule_flush(std::uint32_t index) {
    node_state& node = nodes_[index];
    if (node.flush_scheduled || !node.replica || !node.replica->flush_pending()) return;
    node.flush_scheduled = true;
    schedule(vsr::uniform_between(*node.disk_random, 20, sync_latency_max_us_) * ns_per_us, event_kind::flush, index);
}

void objectstore_simulation::flush_replica(std::uint32_t index) {
    node_state& node = nodes_[index];
    node.flush_scheduled = false;
    if (!node.replica || node.paused) return;  // a paused replica flushes when it resumes
    node.replica->flush();
    if (restart_if_halted(index)) return;
    check_replica(index);
    schedule_flush(index);  // the redundant headers it wrote wait for the next sync
}

void objectstore_simulation::replica_tick(std::uint32_t index) {
    node_state& node = nodes_[index];
    schedule(node.tick_interval_ns, event_kind::replica_tick, index);
    if (!node.replica || node.paused) return;
    node.replica->tick();
    if (restart_if_halted(index)) return;
    check_replica(index);
    schedule_flush(index);
    // The node's background scrub (as toastyfs-node runs it): every 100 ms a slice of the
    // stored chunks is re-verified, a whole pass every scrub_pass_slices_ slices; rotten copies
    // go to quarantine and leave the inventory.
    if (++node.ticks % 10 == 0) {
        node.store->inventory(std::nullopt, SIZE_MAX, scrub_before_);
        scrub_faults_before_.clear();
        for (const tfs::chunk_entry& e : scrub_before_) {
            scrub_faults_before_.push_back(node.disk->faults_hit(tfs::detail::chunk_path(e.sha)));
        }
        const tfs::scrub_result scrubbed = node.store->scrub(node.store->stats().bytes_stored / scrub_pass_slices_ + 1);
        for (std::size_t i = 0; scrubbed.corrupt != 0 && i < scrub_before_.size(); ++i) {
            const tfs::sha256_digest& sha = scrub_before_[i].sha;
            if (!node.store->has(sha)) destroy_if_faulted(index, sha, scrub_faults_before_[i]);
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

// ---- event loop -------------------------------------------------------------------------------

void objectstore_simulation::handle(const event& e) {
    switch (e.kind) {
        case event_kind::deliver: deliver_message(cluster(), e.a, static_cast<std::uint32_t>(e.b), *this); break;
        case event_kind::replica_tick: replica_tick(e.a); break;
        case event_kind::proxy_tick: proxy_tick(e.a); break;
        case event_kind::chunk_to_node: chunk_arrive_at_node(e.a, e.b); break;
        case event_kind::chunk_to_proxy: chunk_arrive_at_proxy(e.a, e.b); break;
        case event_kind::user_step: user_step(e.a, e.b); break;
        case event_kind::fault_step: fault_step(); break;
        case event_kind::restart: restart_node(e.a); break;
        case event_kind::flush: flush_replica(e.a); break;
        case event_kind::power_loss: power_loss(); break;
        case event_kind::resume: resume_replica(cluster(), e.a, *this); break;
        case event_kind::heal_partition: heal_partition(cluster(), *this); break;
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

void objectstore_simulation::fail(const std::string& property, const std::string& detail) {
    if (!result_.ok) return;
    result_.ok = false;
    result_.property = property;
    result_.detail = detail;
    result_.trace_tail = format_trace();
}

void objectstore_simulation::trace(event_kind kind, std::uint32_t a, std::uint64_t b, std::uint64_t c) {
    trace_record& record = trace_.next();
    record = trace_record{now_, kind, a, b, c};
    mix_trace(now_ ^ (std::uint64_t{static_cast<std::uint8_t>(kind)} << 56) ^ (std::uint64_t{a} << 40) ^ mix64(b) ^ c);
    if (options_.verbose) {
        std::printf("%10.3f ms  %-14s a=%u b=%llu c=%llx\n", static_cast<double>(now_) / 1e6,
                    event_names[static_cast<int>(kind)], a, static_cast<unsigned long long>(b),
                    static_cast<unsigned long long>(c));
    }
}

std::string objectstore_simulation::format_trace() const {
    std::ostringstream out;
    trace_.for_each_tail([&](const trace_record& r) {
        out << "  " << r.time / ns_per_us << "us " << event_names[static_cast<int>(r.kind)] << " a=" << r.a
            << " b=" << r.b << " c=" << std::hex << r.c << std::dec << "\n";
    });
    return out.str();
}

objectstore_result objectstore_simulation::run() {
    // SQLite's process-wide generator (WAL salts) starts where this seed says, so a run is the
    // same bytes whatever ran before it in the process.
    tfs::sqlite_vfs::seed_process_randomness(static_cast<std::uint32_t>(mix64(options_.seed)));
    setup();
    schedule(100 * ns_per_ms, event_kind::final_step, 0);
    const std::uint64_t time_max = 900'000 * ns_per_ms;
    run_events(
        events_, now_, time_max, [&] { return result_.ok && phase_ != final_phase::done; },
        [&](const event& e) {
            if (e.kind != event_kind::deliver && e.kind != event_kind::chunk_to_node &&
                e.kind != event_kind::chunk_to_proxy && e.kind != event_kind::replica_tick &&
                e.kind != event_kind::proxy_tick) {
                trace(e.kind, e.a, e.b, 0);
            }
            handle(e);
            if (!faults_active_ && settled_ns_ == UINT64_MAX && cluster_settled()) settled_ns_ = now_;
            // As the proxy's event loop does after every batch: deferred work waits for no tick.
            for (auto& proxy : proxies_) proxy.service->poll();
        });
    if (result_.ok && phase_ != final_phase::done)
        fail("liveness", "simulation ended before the final phase completed");
    if (result_.ok) final_checks();
    for (const auto& node : nodes_) {
        if (node.replica) result_.view_changes += node.replica->counters().views_started_as_primary;
        if (node.replica) result_.queries_answered += node.replica->counters().queries_answered;
        if (node.replica) result_.checkpoints_restored += node.replica->counters().checkpoints_restored;
        const auto& d = node.disk->counters();
        result_.disk_faults += d.bit_flips_at_rest + d.bit_flips_on_read + d.lost_writes + d.torn_writes +
                               d.leftover_temporaries + d.read_errors + d.write_errors + d.remove_errors;
        if (!persistent_) continue;
        const metadata_disk_counts& m = node.metadata_disk->counts();
        result_.metadata_disk_faults += m.faults();
        result_.metadata_rot += m.rot;
        result_.metadata_full_disks += m.full_disks;
        result_.metadata_crash_effects += m.crash_effects();
        result_.journal_faults += node.storage.counts().total();
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
    result_.trace_hash = trace_.hash();
    return result_;
}

}  // namespace objectstore_internal

objectstore_result run_objectstore_simulation(const objectstore_options& options) {
    objectstore_internal::objectstore_simulation simulation(options);
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
    {toastyfs::planted_bug::janitor_skips_repair, "janitor_skips_repair"},
};
}  // namespace

bool parse_objectstore_bug(const std::string& name, toastyfs::planted_bug& out) {
    return parse_bug_name(bug_names, name, out);
}

const char* to_string(toastyfs::planted_bug bug) { return bug_name(bug_names, bug); }

}  // namespace sim
