// The object store simulator: the checkers, the liveness watchdog and the final phase.

#include "sim/objectstore_simulation.hpp"

namespace sim::objectstore_internal {

// ---- checkers ---------------------------------------------------------------------------------

/// After every step of a replica (per incarnation): its view never goes back, nor does what it
/// executed; its metadata state after each op it executed (or restored: from its own store at a
/// restart, or from a peer's by state transfer) is the canonical state at that op (equal digests);
/// a new primary holds every committed op; and its checkpoints agree with the other replicas'.
/// So durability holds across every restart: a node that reopened its store at the wrong state,
/// or a cluster that lost a committed op in a power loss, fails here, and an acknowledged PUT
/// lost after any number of them fails the read-back (linearizability, content) at the end.
void objectstore_simulation::check_replica(std::uint32_t index) {
    node_state& node = nodes_[index];
    const sim_replica& replica = *node.replica;
    if (replica.halted()) return;  // its store's state is undefined; it is restarted
    if (const auto failure = check_view(index, node.last_view, replica.view())) {
        fail("safety", *failure);
        return;
    }
    const std::uint64_t executed = replica.commit_executed();
    if (executed < node.checked_executed) {
        fail("safety", "node " + std::to_string(index) + " executed op went back from " +
                           std::to_string(node.checked_executed) + " to " + std::to_string(executed));
        return;
    }
    if (executed > node.checked_executed) {
        if (commit_view_bound_.size() < executed) commit_view_bound_.resize(executed, UINT64_MAX);
        for (std::uint64_t op = node.checked_executed + 1; op <= executed; ++op) {
            commit_view_bound_[op - 1] = std::min(commit_view_bound_[op - 1], replica.view());
        }
        node.checked_executed = executed;
        const std::uint64_t digest = replica.state_machine().digest();
        if (digest != canonical_digest(executed)) {
            fail("safety", "node " + std::to_string(index) + "'s metadata state after op " + std::to_string(executed) +
                               " (start " + vsr::to_string(replica.start_state()) + ", checkpoint op " +
                               std::to_string(replica.checkpoint().op) + ") differs from the canonical state");
            return;
        }
    }
    if (!impaired(node)) node.after_halt = node.damage_found = false;
    check_primary(index);
    check_checkpoint(index);
}

/// The shadow's digest after op `op`: after the last op at or before it that executed anything.
std::uint64_t objectstore_simulation::canonical_digest(std::uint64_t op) const {
    const auto after = canonical_digests_.upper_bound(op);
    return after == canonical_digests_.begin() ? tfs::metadata_totals{}.digest() : std::prev(after)->second;
}

/// VSR's view-change safety: a new primary's log holds every op committed in an earlier view.
/// An op a replica executed in view w was committed in a view <= w (commit_view_bound_).
void objectstore_simulation::check_primary(std::uint32_t index) {
    node_state& node = nodes_[index];
    const sim_replica& replica = *node.replica;
    if (replica.status() != vsr::replica_status::normal || !replica.is_primary() || replica.syncing() ||
        replica.view() <= node.checked_primary_view) {
        return;
    }
    node.checked_primary_view = replica.view();
    std::uint64_t committed = commit_view_bound_.size();
    while (committed > 0 && commit_view_bound_[committed - 1] >= replica.view()) --committed;
    if (replica.op() < committed) {
        fail("safety", "node " + std::to_string(index) + " became primary of view " + std::to_string(replica.view()) +
                           " with log op " + std::to_string(replica.op()) + ", without committed op " +
                           std::to_string(committed));
    }
}

/// Checkpoints: every replica's checkpoint at one op (taken, restored from its store at a
/// restart, or installed by state transfer) has the same checksum: the head (client table) and
/// the machine's digest agree.
void objectstore_simulation::check_checkpoint(std::uint32_t index) {
    node_state& node = nodes_[index];
    const vsr::checkpoint_image& image = node.replica->checkpoint();
    if (image.op == node.checked_checkpoint_op) return;
    node.checked_checkpoint_op = image.op;
    const auto [it, first] = checkpoint_checksums_.emplace(image.op, image.checksum);
    if (first) return;
    if (it->second == image.checksum) {
        ++result_.checkpoints_compared;
        return;
    }
    fail("safety", "node " + std::to_string(index) + "'s checkpoint at op " + std::to_string(image.op) +
                       " differs from one taken elsewhere at that op");
}

/// Every execution of a log position by any replica. The first one is canonical: it is
/// executed again on the shadow state machine and must give the same result (replicas agree),
/// and every later execution of that position (another replica, or a restarted one replaying
/// its journal) must see the same operation and give the same result. Committed puts and
/// add_holders feed the chunk checkers.
void objectstore_simulation::on_execute(std::uint32_t executor, const vsr::operation_context& context,
                                        std::span<const std::uint8_t> bytes, const std::vector<std::uint8_t>& out) {
    const std::uint64_t position = context.op << 20 | context.index;
    const std::uint64_t execution = vsr::checksum(out, vsr::checksum(bytes, context.timestamp_ns));
    if (position <= shadow_position_) {
        const auto canonical = canonical_results_.find(position);
        if (canonical == canonical_results_.end() || canonical->second != execution) {
            fail("safety", "node " + std::to_string(executor) + " executed op " + std::to_string(context.op) +
                               " index " + std::to_string(context.index) +
                               (canonical == canonical_results_.end() ? ", a position never executed before"
                                                                      : " unlike its first execution"));
        }
        return;
    }
    shadow_position_ = position;
    canonical_results_.emplace(position, execution);
    metadata_now_ns_ = context.timestamp_ns;
    shadow_out_.clear();
    shadow_.execute(context, bytes, shadow_out_);
    canonical_digests_[context.op] = shadow_.digest();
    if (shadow_out_ != out) {
        fail("safety", "node " + std::to_string(executor) + "'s result at op " + std::to_string(context.op) +
                           " differs from the canonical execution");
        return;
    }
    if (bytes.empty() || out.empty()) return;
    const auto code = static_cast<tfs::opcode>(bytes[0]);
    if (code != tfs::opcode::put_object && code != tfs::opcode::add_holder && code != tfs::opcode::remove_holder)
        return;
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
        fail("gc_safety", std::string(what) + " lists node " + std::to_string(node) + " as holder of chunk " +
                              hex_prefix(sha) + ".. which the garbage collector had deleted from it");
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
        fail("durability", "PUT p" + std::to_string(put_id) + " acknowledged (at position " +
                               std::to_string(history_[record.history].position) +
                               ") but the log never committed it (executed=" + std::to_string(record.executed) +
                               " at " + std::to_string(record.position) + ")");
        return;
    }
    for (const tfs::chunk_location& c : record.committed_chunks) {
        if (tfs::count(c.holders) < service_options_.write_copies_min) {
            fail("durability",
                 "PUT p" + std::to_string(put_id) + " acknowledged with chunk " + hex_prefix(c.sha256) + ".. on " +
                     std::to_string(tfs::count(c.holders)) +
                     " node(s), fewer than write_copies_min=" + std::to_string(service_options_.write_copies_min));
            return;
        }
        for (std::uint8_t node = 0; node < options_.replicas; ++node) {
            if (tfs::contains(c.holders, node) && !written_.contains({node, c.sha256})) {
                fail("durability", "PUT p" + std::to_string(put_id) + " lists node " + std::to_string(node) +
                                       " as holder of chunk " + hex_prefix(c.sha256) +
                                       ".. which never acknowledged writing it");
                return;
            }
        }
    }
}

std::uint64_t objectstore_simulation::copies_on_nodes(const tfs::sha256_digest& sha, tfs::node_set among,
                                                      bool down_too) const {
    std::uint64_t copies = 0;
    for (std::uint8_t node = 0; node < options_.replicas; ++node) {
        if (!tfs::contains(among, node) || (!nodes_[node].store && !down_too)) continue;
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
        // A copy on the disk of a node that is down (after healing: restarting, or halted again
        // by its store) is out of reach, not lost.
        if (copies_on_nodes(c.sha256, static_cast<tfs::node_set>((1u << options_.replicas) - 1), true) != 0) continue;
        const chunk_fate fate = fates_.contains(c.sha256) ? fates_.at(c.sha256) : chunk_fate{};
        tfs::node_set collected = 0;
        for (std::uint8_t node = 0; node < options_.replicas; ++node) {
            if (!u.final_reader && gc_removed_.contains({node, c.sha256})) collected = tfs::with(collected, node);
        }
        if ((fate.ever_holders & ~fate.destroyed & ~collected) != 0) {
            std::string how;
            for (std::uint8_t node = 0; node < options_.replicas; ++node) {
                if (!tfs::contains(fate.ever_holders & ~fate.destroyed, node) || !nodes_[node].store) continue;
                const auto stats = nodes_[node].store->stats();
                how += "; node " + std::to_string(node) +
                       (gc_removed_.contains({node, c.sha256}) ? " removed by a remove frame" : "") +
                       (written_.contains({node, c.sha256}) ? " (wrote it)" : " (never wrote it)") +
                       " quarantined=" + std::to_string(stats.quarantined) +
                       " missing_found=" + std::to_string(stats.missing_found) + " in_quarantine=" +
                       std::to_string(nodes_[node].disk->files().contains(tfs::detail::quarantine_path(c.sha256, 0)));
            }
            fail("durability", "object " + history_[u.history].key + " (put p" + std::to_string(u.read_put) +
                                   ") lost chunk " + hex_prefix(c.sha256) + ".. although holders " +
                                   std::to_string(fate.ever_holders & ~fate.destroyed) +
                                   " (bitmask) never lost it to a fault (ever holders " +
                                   std::to_string(fate.ever_holders) + ", destroyed " + std::to_string(fate.destroyed) +
                                   ")" + how);
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
                           std::to_string(u.read_put) + ") answered data_lost, but every chunk it read had a good " +
                           "copy on a listed holder the proxy could reach throughout the read");
}

bool objectstore_simulation::good_copy_in_reach(std::uint32_t proxy, const tfs::chunk_location& chunk,
                                                std::uint64_t since_ns) const {
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
    // Excused too within that grace: invoked after, while its proxy's metadata client still had a
    // request from before waiting for that retry, which the operation's requests may have queued
    // behind (every session busy): after a power loss every session backs off at once, and a
    // short upload lease may expire in the queue.
    if (now_ < settled_ns_ + settle_grace_ns && proxies_[u.proxy].adapter.waited_behind_unsettled(invoked_ns(u))) {
        return;
    }
    const std::string what =
        u.op == user_op::list ? "LIST #" + std::to_string(u.history) : describe_op(history_[u.history]);
    fail("liveness", "user " + std::to_string(user) + "'s " + what + " (invoked at " +
                         std::to_string(invoked_ns(u) / ns_per_ms) + " ms) ended " + tfs::to_string(s) + " at " +
                         std::to_string(now_ / ns_per_ms) + " ms, after healing at " +
                         std::to_string(heal_time_ / ns_per_ms) + " ms (settled at " +
                         std::to_string(settled_ns_ / ns_per_ms) + " ms)");
}

/// After healing: every node normal in one view (not syncing), every chunk link up and unblocked.
bool objectstore_simulation::cluster_settled() const {
    std::uint64_t view = UINT64_MAX;
    for (const auto& node : nodes_) {
        if (!node.replica || node.paused || node.replica->syncing()) return false;
        if (node.replica->status() != vsr::replica_status::normal) return false;
        if (view != UINT64_MAX && node.replica->view() != view) return false;
        view = node.replica->view();
    }
    return std::all_of(connections_.begin(), connections_.end(),
                       [](const connection& c) { return c.up && !c.blocked; });
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
        if (r.status() != vsr::replica_status::normal || r.syncing() || r.view() != view ||
            r.commit_executed() != executed)
            return false;
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
            const std::string what =
                u.op == user_op::list ? "LIST #" + std::to_string(u.history) : describe_op(history_[u.history]);
            fail("liveness", "user " + std::to_string(i) + "'s " + what + " outstanding for " +
                                 std::to_string((now_ - since) / ns_per_ms) + " ms since healing or its start");
            return;
        }
    }
    if (workload_done() && done_since_ == 0) done_since_ = now_;
    if (done_since_ != 0 && now_ - done_since_ > bound_ns + 3 * metadata_options_.upload_lease_ns) {
        std::ostringstream detail;
        detail << "final phase " << static_cast<int>(phase_)
               << " did not finish within the bound; converged=" << replicas_converged()
               << " janitor passes=" << proxies_[0].janitor->counters().passes << " metadata clock "
               << metadata_now_ns_ / ns_per_ms << " ms (phase started at " << phase_start_metadata_ns_ / ns_per_ms
               << " ms); replicas:";
        for (std::uint32_t i = 0; i < nodes_.size(); ++i) {
            const auto& r = nodes_[i].replica;
            if (!r) {
                detail << " n" << i << "=down";
                continue;
            }
            detail << " n" << i << "=" << vsr::to_string(r->status()) << "/v" << r->view() << "/op" << r->op()
                   << "/commit" << r->commit() << "/executed" << r->commit_executed()
                   << (r->syncing() ? "/syncing" : "");
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
                fail("convergence", "node " + std::to_string(node) + " still stores unreferenced chunk " +
                                        hex_prefix(*sha) + ".. after two leases of garbage collection (" +
                                        (chunk ? "indexed with holders " + std::to_string(chunk->holders)
                                               : std::string("not indexed")) +
                                        (entry ? ", in the store with token " + std::to_string(entry->token)
                                               : std::string(", not in the store index")) +
                                        ", file token " + std::to_string(file.token) + ", size " +
                                        std::to_string(file.bytes.size()) + ")" + janitor_summary());
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
                fail("convergence", "chunk " + hex_prefix(c.sha256) + ".. has " + std::to_string(copies) +
                                        " good copies on holders " + std::to_string(chunk->holders) +
                                        " after repair, want " + std::to_string(wanted));
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
                    fail("list", where + " = p" + std::to_string(*put) + ", overwritten by " + describe_op(*w) +
                                     " before the LIST began");
                    return;
                }
            }
        }
        const std::string cursor = l.entries.empty() ? std::string() : l.entries.back().key;
        for (const auto& [key, ops] : by_key) {
            if (!key.starts_with(l.prefix) || listed.contains(key) || (l.truncated && key > cursor)) continue;
            for (const kv_history_op* p : ops) {
                if (!(effective_write(*p) && p->kind != kv_kind::del && p->kind != kv_kind::del_if &&
                      p->complete_ns < l.invoke_ns))
                    continue;
                bool removable = false;
                for (const kv_history_op* d : ops) {
                    if (d->kind != kv_kind::del && d->kind != kv_kind::del_if) continue;
                    const bool may_remove = d->result_outcome == outcome::unknown ||
                                            (d->result_outcome == outcome::ok && d->status == kv_status::ok);
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
            if (record.executed && record.executed_ok)
                h.position = record.position;
            else
                h.result_outcome = outcome::fail;  // never ran, or ran without effect
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

}  // namespace sim::objectstore_internal
