#pragma once

// The nemesis: a thread that applies one fault at a time to the real cluster, holds it, heals it,
// and rests, until its deadline. Faults: kill -9 and restart (the primary half the time), SIGSTOP
// and SIGCONT, bursts of short pauses (the delay fault: this kernel has no netem), partitions
// (one node isolated from the others, from the proxy, or one way), packet loss, packet
// duplication, a network fault together with a crash, a chunk file corrupted on disk, kill -9 of
// every node at once (a whole-cluster power loss: they restart from their disks after a drawn
// pause), and a node's disk wiped (kill -9, its whole data directory deleted, a restart with
// --recovering: VSR recovery and state transfer, then the janitor restores its chunks).
// Every requested kind comes once before any repeats; every third rest is a quiet period.
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cluster.hpp"

namespace chaos {

struct fault_record {
    std::string kind;              // one of fault_kinds()
    std::string detail;            // which node, which shape of partition, how much loss
    std::uint64_t start_ns = 0;    // when it took effect (for a kill: the SIGKILL)
    std::uint64_t end_ns = 0;      // healed (for a kill: restarted and recovered)
    bool injected = true;          // false when applying it failed (see errors()) or found no target
    std::uint64_t revived_ns = 0;  // kill_all: every node restarted (writes were impossible before)
};

struct nemesis_options {
    std::uint64_t seed = 1;
    std::uint64_t end_ns = 0;          // no fault starts after this; the running one is healed
    std::uint64_t hold_ms_max = 6000;  // how long a fault lasts, at most
    std::uint64_t rest_ms_max = 2000;  // quiet time between faults, at most
    /// Every quiet_one_in-th rest is a quiet period instead, long enough that checks with an
    /// excuse for "shortly after a fault" (the GET cut short) still see fault-free traffic.
    std::uint64_t quiet_one_in = 3;
    std::uint64_t quiet_ms_min = 6000;
    std::uint64_t quiet_ms_max = 10000;
    /// Fault kinds to use (fault_kinds() names); empty: all. None is filtered out silently: a
    /// network kind without namespaces fails to apply and lands in errors(). Each kind is
    /// applied once before any is repeated, so a short run still injects every kind it can.
    std::set<std::string> only;
    /// Chunk names (hex SHA-256) of some live object, given a random number; may be empty.
    std::function<std::vector<std::string>(std::uint64_t)> live_chunks;
};

/// Every fault kind's name, for --faults.
std::vector<std::string> fault_kinds();
/// Kinds that need network namespaces (nftables rules inside a node's namespace).
bool is_network_kind(const std::string& kind);
/// Kinds that need nodes that keep their metadata on disk (not --diskless): a whole-cluster kill
/// of diskless nodes loses every acknowledged write by design.
bool needs_persistent_nodes(const std::string& kind);

class nemesis {
public:
    nemesis(cluster& target, nemesis_options options) : cluster_(target), options_(options), random_(options.seed) {}
    ~nemesis() { join(); }

    void start() {
        thread_ = std::thread([this] { run(); });
    }
    void join() {
        if (thread_.joinable()) thread_.join();
    }
    void cancel() { cancelled_ = true; }

    /// Heals everything: resumes paused nodes, restarts killed ones, removes network rules.
    bool heal_all(std::string& error);

    // After join().
    const std::vector<fault_record>& faults() const { return faults_; }
    const std::vector<std::string>& errors() const { return errors_; }    // the nemesis itself failed
    const std::vector<std::string>& crashes() const { return crashes_; }  // processes that died unasked
    const std::vector<std::string>& stuck() const { return stuck_; }      // restarted nodes that never recovered
    /// Whole-cluster kills after which the cluster came back knowing fewer operations than it had
    /// committed before (persistent nodes that forgot).
    const std::vector<std::string>& forgotten() const { return forgotten_; }
    /// (node, chunk name) pairs the nemesis corrupted.
    const std::set<std::pair<std::uint32_t, std::string>>& corrupted_copies() const { return corrupted_copies_; }

private:
    void run();
    std::string pick_kind(std::set<std::string>& owed);
    void apply(fault_record& f);
    void hold(std::uint64_t ms);  // sleeps, but wakes early on cancel; checks for crashes
    std::uint32_t pick_node(bool prefer_primary);
    std::uint64_t between(std::uint64_t low, std::uint64_t high) { return low + random_() % (high - low + 1); }
    void note_error(const std::string& what) { errors_.push_back(what); }

    void kill_and_restart(fault_record& f, bool prefer_primary);
    /// After a restart: waits until the node is normal again, so that no two nodes are ever
    /// without their memory at once (recovery needs both others; f = 1). False if it was not
    /// (noted in stuck()) or the nemesis was cancelled.
    bool wait_recovered(std::uint32_t node);
    /// After a wipe: waits until every node is normal with its chunk server up and, with that
    /// holding throughout, a janitor pass that could repair the wiped node's chunks repaired
    /// nothing: no chunk is left short of copies, so the next fault is again a single one. False
    /// (noted in stuck()) on timeout.
    bool wait_repaired(std::uint64_t& took_ms);
    /// Nodes whose wipe destroys no chunk's last good copy: not the only good holder of a chunk
    /// the nemesis corrupted elsewhere (a second fault R = 2 is not meant to survive).
    std::vector<std::uint32_t> wipe_candidates();
    void pause(fault_record& f);
    void delay_by_pauses(fault_record& f);
    void partition(fault_record& f);
    void packet_loss(fault_record& f);
    void duplication(fault_record& f);
    void loss_and_crash(fault_record& f);
    void corrupt_chunk(fault_record& f);
    void kill_everything(fault_record& f);
    void wipe_disk(fault_record& f);

    cluster& cluster_;
    nemesis_options options_;
    std::mt19937_64 random_;
    std::thread thread_;
    std::atomic<bool> cancelled_{false};
    std::vector<fault_record> faults_;
    std::vector<std::string> errors_;
    std::vector<std::string> crashes_;
    std::vector<std::string> stuck_;
    std::vector<std::string> forgotten_;
    std::set<std::pair<std::uint32_t, std::string>> corrupted_copies_;
    std::set<std::string> corrupted_;  // chunk digests: each is corrupted on at most one node, once
};

}  // namespace chaos
