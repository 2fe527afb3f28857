// The deterministic simulator for the KV example: 3 or 5 replicas and several clients over a
// simulated network, clock and fault schedule, all derived from one seed. The replicas and
// clients are the production templates (vsr::basic_replica, vsr::basic_client) instantiated
// with simulated policies.
#pragma once

#include <cstdint>
#include <string>

#include "vsr/config.hpp"

namespace sim {

struct simulation_options {
    std::uint64_t seed = 0;
    std::uint8_t replicas = 3;
    std::uint32_t requests = 300;
    bool verbose = false;
    vsr::planted_bug bug = vsr::planted_bug::none;
    /// "diskless" or "persistent" forces the replicas' storage; empty: the seed draws it.
    std::string storage;
    /// Tests: every disk may be damaged (lost and misdirected writes, rot), not just f of them.
    /// The cluster may then stop (liveness), but must never answer wrongly.
    bool damage_every_disk = false;
    /// After the fault phase everything heals; every outstanding request must then complete
    /// and the replicas converge within this much simulated time.
    std::uint64_t liveness_bound_ms = 30'000;
    /// Tests: the first request invoked after the healed cluster settled is seen as timed out
    /// (the liveness check must fire).
    bool tamper_timeout_after_heal = false;
};

struct simulation_result {
    bool ok = true;
    std::string property;  // which property failed: safety, linearizability, liveness, ...
    std::string detail;
    std::string trace_tail;  // the last events before the failure
    std::string profile;     // the fault profile this seed drew
    std::uint64_t trace_hash = 0;
    std::uint64_t requests_ok = 0;
    std::uint64_t ops_committed = 0;  // highest op executed by any replica
    std::uint64_t simulated_ms = 0;
    std::uint64_t messages_delivered = 0;
    std::uint64_t crashes = 0;
    std::uint64_t view_changes = 0;
    // what the fault schedule actually did, so tests can prove the controls work
    std::uint64_t partitions = 0;
    std::uint64_t pauses = 0;
    std::uint64_t clogs = 0;
    std::uint64_t messages_dropped = 0;
    std::uint64_t messages_duplicated = 0;
    std::uint32_t impaired_max = 0;  // most replicas crashed or recovering at once
    // protocol paths exercised (summed over the final incarnations of the replicas)
    std::uint64_t entries_transferred = 0;
    std::uint64_t checkpoints_taken = 0;
    std::uint64_t images_built_in_steps = 0;    // checkpoint images that took more than one step (tick)
    std::uint64_t image_requests_deferred = 0;  // image asked for while one was being built
    std::uint64_t entries_from_journal = 0;     // executed entries served from a journal, not memory
    std::uint64_t checkpoints_restored = 0;     // installed by state transfer
    std::uint64_t recoveries = 0;
    std::uint64_t sessions_evicted = 0;
    std::uint64_t queries_answered = 0;  // reads answered by a primary without a log entry
    std::string storage;                 // the mode the seed ran with
    // persistent mode: what the simulated disks did
    std::uint64_t cluster_crashes = 0;                // every replica at once, disks kept
    std::uint64_t disks_lost = 0;                     // crashes that took the disk
    std::uint64_t primaries_crashed_before_sync = 0;  // crashed while their prepares were out, unsynced
    std::uint64_t storage_faults = 0;                 // torn, lost, misdirected, rotten, full (sim_storage counts)
    std::uint64_t damaged_restarts = 0;               // restarts that found damage and recovered from peers
    std::uint64_t halts = 0;                          // replicas stopped by a failing disk (then restarted)
    std::uint64_t loaded_restarts = 0;                // restarts that rejoined with their disk
    bool profile_crashes = false;
    bool profile_partitions = false;
    bool profile_pauses = false;
    bool profile_clogging = false;
};

simulation_result run_kv_simulation(const simulation_options& options);

/// "none", "commit_without_quorum", ...; false if the name is unknown.
bool parse_planted_bug(const std::string& name, vsr::planted_bug& out);
const char* to_string(vsr::planted_bug bug);

}  // namespace sim
