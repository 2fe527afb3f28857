// The object store simulator: the fault schedule and what each fault destroys.

#include "sim/objectstore_simulation.hpp"

namespace sim::objectstore_internal {

// ---- faults -----------------------------------------------------------------------------------

/// Down, recovering, or (persistent) with a disk that says a recovery is under way: a restart
/// would recover again.
std::uint32_t objectstore_simulation::impaired_replicas() const {
    std::uint32_t count = 0;
    for (const auto& node : nodes_) count += impaired(node);
    return count;
}

bool objectstore_simulation::impaired(const node_state& node) {
    return !node.replica || node.replica->status() == vsr::replica_status::recovering ||
           node.replica->recovering_on_disk();
}

/// The crash budget at work: the most nodes impaired at once by the fault schedule (crashes, lost
/// disks). A node down or recovering after a halt is left out: a rotten page of a store halts its
/// replica whenever it is read, whatever else is down (full disks and read errors wait until all
/// are well), so such halts are not the schedule's to bound; the schedule still counts them
/// before it crashes another node (impaired_replicas).
void objectstore_simulation::note_impaired() {
    if (power_down_ != 0) return;
    std::uint32_t count = 0;
    for (const auto& node : nodes_) count += impaired(node) && !node.after_halt;
    result_.impaired_max = std::max(result_.impaired_max, count);
}

void objectstore_simulation::destroy(std::uint32_t node, const tfs::sha256_digest& sha) {
    chunk_fate& fate = fates_[sha];
    if (!tfs::contains(fate.destroyed, static_cast<std::uint8_t>(node))) ++result_.chunks_destroyed;
    fate.destroyed = tfs::with(fate.destroyed, static_cast<std::uint8_t>(node));
}

/// The product reported a copy corrupt (and quarantined it): destroyed by a fault only if the
/// disk says a fault hit it (damage at rest, or flipped reads during this call).
void objectstore_simulation::destroy_if_faulted(std::uint32_t node, const tfs::sha256_digest& sha,
                                                const file_faults& before) {
    const file_faults after = nodes_[node].disk->faults_hit(tfs::detail::chunk_path(sha));
    if (after.damaged_at_rest || after.read_flips > before.read_flips) destroy(node, sha);
}

/// A drawn crash: the chunk disk is kept or (wipes) replaced; a persistent node's metadata disks
/// are kept or, one crash in four, lost with it, within the budget disk_may_be_lost keeps.
void objectstore_simulation::crash_replica(std::uint32_t index) {
    const bool wipe = wipes_ && vsr::chance(random_, 1, 3);
    const bool lose = persistent_ && vsr::chance(storage_random_, 1, 4) && disk_may_be_lost(index);
    crash_node(index, wipe, lose, crash_cause::crash);
}

/// Lost disks and faulty ones share one budget of f nodes, as in vsr-sim: a node with a faulty
/// disk can restart damaged at any time (a halt is not a drawn crash), so a disk lost elsewhere
/// beside it would leave two replicas without their state and no quorum to recover from.
bool objectstore_simulation::disk_may_be_lost(std::uint32_t index) const {
    if (nodes_[index].faulty_disk) return true;
    const auto faulty = static_cast<std::uint32_t>(
        std::count_if(nodes_.begin(), nodes_.end(), [](const node_state& node) { return node.faulty_disk; }));
    return faulty < (options_.replicas - 1u) / 2u;
}

/// The node goes down: its replica and chunk store die with their memory. The chunk disk keeps
/// what is durable (or is replaced: wipe); in persistent mode the journal and the metadata disk
/// keep what was synced, unsynced writes surviving, vanishing or torn (or both are lost:
/// lose_disks). The metadata disk crashes before the replica is destroyed, so the dying SQLite
/// connections cannot write on their way out.
void objectstore_simulation::crash_node(std::uint32_t index, bool wipe, bool lose_disks, crash_cause cause) {
    node_state& node = nodes_[index];
    const std::uint64_t how =
        (wipe ? 2 : 0) | (lose_disks ? 8 : 0) | (std::uint64_t{static_cast<std::uint8_t>(cause)} << 4);
    trace(event_kind::restart, index, how, 0);
    mix_trace(0xC0 + index + (how << 8));
    if (persistent_) {
        if (lose_disks) {
            node.metadata_disk->wipe();
            node.storage.wipe();
            node.damage_at_loss = damage_injected(index);
            node.damage_found = false;
            ++result_.disks_lost;
        } else {
            node.metadata_disk->crash();
            node.storage.crash();
        }
        node.flush_scheduled = false;
        if (cause != crash_cause::power_loss) allow_halting_faults(false);  // until all are well again
    }
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
    network_.drop_held(index);
    node.paused = false;
    if (cause == crash_cause::crash) ++result_.node_crashes;
    if (cause == crash_cause::halt) ++result_.halts;
    if (wipe) ++result_.disk_wipes;
    for (std::uint32_t p = 0; p < proxies_.size(); ++p) break_connection(p * options_.replicas + index);
    node.after_halt = cause == crash_cause::halt;
    if (cause == crash_cause::crash) note_impaired();
}

/// Every node loses power at once; the disks keep what was synced, and every node restarts
/// from them.
void objectstore_simulation::power_loss() {
    trace(event_kind::power_loss, 0, 0, 0);
    for (std::uint32_t i = 0; i < options_.replicas; ++i) {
        if (!nodes_[i].replica) continue;
        crash_node(i, false, false, crash_cause::power_loss);
        nodes_[i].down_in_power_loss = true;
        ++power_down_;
        schedule(vsr::uniform_between(random_, 50, 3'000) * ns_per_ms, event_kind::restart, i);
    }
    ++result_.power_losses;
    mix_trace(0xCC);
}

void objectstore_simulation::restart_node(std::uint32_t index) {
    node_state& node = nodes_[index];
    if (!node.replica) {
        trace(event_kind::restart, index, 1, 0);
        start_node(index, true);
    }
    if (node.down_in_power_loss) {
        node.down_in_power_loss = false;
        --power_down_;
    }
}

/// Full disks and read errors halt a replica: allowed only while no replica is impaired (a second
/// one down would take the cluster past what it tolerates), and only on the faulty disks.
void objectstore_simulation::allow_halting_faults(bool allowed) {
    for (node_state& node : nodes_) {
        node.storage.allow_full_disk(allowed);
        node.metadata_disk->allow_halting_faults(allowed && node.faulty_disk);
    }
}

/// The persistent disks' faults of one fault step: rot on the faulty disks (journal and metadata),
/// a faulty metadata disk filling up, and now and then a power loss.
void objectstore_simulation::disk_fault_step() {
    if (options_.tamper == objectstore_tamper::metadata_syncs_lost) nodes_[0].metadata_disk->lose_syncs();
    const bool all_well = impaired_replicas() == 0;
    allow_halting_faults(all_well);
    for (node_state& node : nodes_) {
        if (!node.faulty_disk) continue;
        if (vsr::chance(*node.disk_random, rot_per_mille_, 1000)) node.storage.rot();
        if (vsr::chance(*node.disk_random, rot_per_mille_, 1000)) node.metadata_disk->rot();
        if (all_well && !node.metadata_disk->full() && vsr::chance(*node.disk_random, full_disk_per_mille_, 1000)) {
            node.metadata_disk->fill(vsr::uniform_below(*node.disk_random, 64 * 1024));
        }
    }
    // Now and then every node loses power at once, when all are up (the restarts are bounded).
    if (all_well && vsr::chance(storage_random_, profile_.fault_per_mille, 2'000)) power_loss();
}

void objectstore_simulation::fault_step() {
    if (!faults_active_) return;
    schedule(profile_.fault_step_ms * ns_per_ms, event_kind::fault_step, 0);
    note_impaired();
    roll_replica_faults(cluster(), *this);
    if (persistent_) disk_fault_step();
    const std::uint32_t n = options_.replicas;
    auto roll = [&] { return vsr::chance(random_, profile_.fault_per_mille, 1000); };
    if (connection_breaks_ && roll()) {
        break_connection(static_cast<std::uint32_t>(vsr::uniform_below(random_, connections_.size())));
    }
    if (disk_rot_ && roll()) {
        const auto index = static_cast<std::uint32_t>(vsr::uniform_below(random_, n));
        const std::string name = nodes_[index].disk->rot();
        if (name.rfind("chunks/", 0) == 0) {
            if (const auto sha = tfs::from_hex<32>(std::string_view(name).substr(name.rfind('/') + 1)))
                destroy(index, *sha);
        }
    }
}

/// Proxies may be cut off too, from the nodes on the other side: VSR and chunk links alike.
void objectstore_simulation::partitioned(std::uint64_t side) {
    const std::uint32_t n = options_.replicas;
    for (std::uint32_t p = 0; p < proxies_.size(); ++p) {
        if (!vsr::chance(random_, 1, 2)) continue;
        network_.cut_client(p, side, vsr::chance(random_, 1, 2));
        for (std::uint32_t r = 0; r < n; ++r) set_link_blocked(p * n + r, network_.client_cut(p, r));
    }
    ++result_.partitions;
    mix_trace(side);
}

void objectstore_simulation::pause_replica(std::uint32_t index) {
    nodes_[index].paused = true;
    update_node_links(index);
    ++result_.pauses;
    mix_trace(0x50 + index);
}

void objectstore_simulation::heal_all() {
    trace(event_kind::heal_all, 0, 0, 0);
    faults_active_ = false;
    heal_time_ = now_;
    heal_replicas(cluster(), *this);
}

void objectstore_simulation::healed() {
    for (std::uint32_t i = 0; i < connections_.size(); ++i) set_link_blocked(i, false);
    for (auto& node : nodes_) node.disk->faults() = chunk_disk_faults{};
    if (!persistent_) return;
    // No disk fills up (or fails a read) after healing either: the halt would be a fault after
    // the heal (vsr-sim seed 82727).
    allow_halting_faults(false);
    for (auto& node : nodes_) node.metadata_disk->end_full();
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

}  // namespace sim::objectstore_internal
