// The object store simulator: the fault schedule and what each fault destroys.

#include "sim/objectstore_simulation.hpp"

namespace sim::objectstore_internal {

// ---- faults -----------------------------------------------------------------------------------

std::uint32_t objectstore_simulation::impaired_replicas() const {
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
void objectstore_simulation::destroy_if_faulted(std::uint32_t node, const tfs::sha256_digest& sha,
                                                const file_faults& before) {
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
    network_.drop_held(index);
    node.paused = false;
    ++result_.node_crashes;
    if (wipe) ++result_.disk_wipes;
    for (std::uint32_t p = 0; p < proxies_.size(); ++p) break_connection(p * options_.replicas + index);
    result_.impaired_max = std::max(result_.impaired_max, impaired_replicas());
}

void objectstore_simulation::restart_node(std::uint32_t index) {
    if (nodes_[index].replica) return;
    trace(event_kind::restart, index, 1, 0);
    start_node(index, true);
}

void objectstore_simulation::fault_step() {
    if (!faults_active_) return;
    schedule(profile_.fault_step_ms * ns_per_ms, event_kind::fault_step, 0);
    result_.impaired_max = std::max(result_.impaired_max, impaired_replicas());
    roll_replica_faults(cluster(), *this);
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
