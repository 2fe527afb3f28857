// The deterministic simulator for the object store: 3 or 5 storage nodes, each a VSR replica of
// the metadata state machine plus a chunk store on a simulated disk, and one or two proxies,
// each a VSR client with the proxy logic (object_service + janitor), over a simulated network,
// clock and fault schedule, all derived from one seed. Every component is the production
// template; only the policies (bus, clock, disk, chunk transport) are simulated.
#pragma once

#include <cstdint>
#include <string>

#include "toastyfs/planted_bug.hpp"
#include "vsr/config.hpp"

namespace sim {

/// Simulator-side tampering, to prove a checker fires on a history the system never produces
/// (tests only; the system under test is unchanged).
enum class objectstore_tamper : std::uint8_t {
    none,
    list_drops_entry,        // the first LIST result with an entry loses its first entry
    get_flips_byte,          // the first GET piece delivered gets one byte flipped
    drop_chunk_copies,       // before the read-back, every copy of one committed chunk vanishes (no fault)
    garble_chunk_copies,     // before the read-back, every copy of one committed chunk gets a flipped bit (no fault)
    unavailable_after_heal,  // the first operation to end after healing is seen as ending unavailable
    list_hangs,              // the first LIST never reports back to its user
    metadata_syncs_lost,     // persistent: node 0's metadata disk silently loses every sync from the first fault step
};

struct objectstore_options {
    std::uint64_t seed = 0;
    std::uint8_t replicas = 3;
    std::uint32_t requests = 150;
    bool verbose = false;
    toastyfs::planted_bug bug = toastyfs::planted_bug::none;
    vsr::planted_bug vsr_bug = vsr::planted_bug::none;  // tests: a planted bug in the metadata replicas
    objectstore_tamper tamper = objectstore_tamper::none;
    /// "diskless" or "persistent" forces the metadata replicas' storage; empty: the seed draws it.
    std::string storage;
    /// After healing, every outstanding operation completes, and the final phase (repair,
    /// read-back, garbage collection) ends, within this much simulated time.
    std::uint64_t liveness_bound_ms = 60'000;
};

struct objectstore_result {
    bool ok = true;
    std::string property;  // durability, linearizability, content, gc_safety, liveness, ...
    std::string detail;
    std::string trace_tail;
    std::string profile;
    std::uint64_t trace_hash = 0;
    std::uint64_t simulated_ms = 0;
    // workload
    std::uint64_t requests_issued = 0;
    std::uint64_t requests_ok = 0;
    std::uint64_t puts_ok = 0, gets_ok = 0, heads_ok = 0, deletes_ok = 0, lists_ok = 0;
    std::uint64_t uploads_aborted = 0;
    std::uint64_t conditional_failures = 0;  // precondition_failed answers
    std::uint64_t bytes_written = 0, bytes_read = 0;
    std::uint64_t final_reads = 0;
    // faults that actually happened
    std::uint64_t node_crashes = 0, disk_wipes = 0, partitions = 0, pauses = 0;
    std::uint64_t connection_breaks = 0, messages_dropped = 0, reply_corruptions = 0;
    std::uint64_t disk_faults = 0;  // every fault the simulated disks injected
    std::uint64_t disk_no_space = 0;
    std::uint64_t chunks_destroyed = 0;  // copies lost to wipes, crashes after lost/torn writes, rot
    std::uint32_t impaired_max = 0;      // most nodes down or recovering at once
    // the system's own counters (summed over proxies)
    std::uint64_t janitor_passes = 0, repairs = 0, chunks_collected = 0, stale_holders_removed = 0;
    std::uint64_t holders_removed_while_held = 0;  // remove_holder committed while the node had the chunk
    std::uint64_t buffer_waits = 0, corrupt_chunks_received = 0, chunk_timeouts = 0;
    std::uint64_t view_changes = 0;
    std::uint64_t queries_answered = 0;      // reads answered by a primary without a log entry
    std::uint64_t checkpoints_restored = 0;  // metadata checkpoints installed by state transfer
    // the metadata replicas' storage: "persistent" (journal on sim_storage, SQLite store on a
    // sim_metadata_disk, both kept across crashes) or "diskless"
    std::string storage;
    std::uint64_t power_losses = 0;            // every node crashed at once, disks kept
    std::uint64_t disks_lost = 0;              // crashes that took the journal and the metadata disk
    std::uint64_t halts = 0;                   // replicas stopped by a failing disk or store (then restarted)
    std::uint64_t loaded_restarts = 0;         // restarts from disk: the journal loaded (start_state loaded)
    std::uint64_t stores_reopened = 0;         // restarts whose metadata store reopened loaded
    std::uint64_t damaged_restarts = 0;        // restarts that found damage and recovered from the peers
    std::uint64_t metadata_disk_faults = 0;    // rot, no_space and read errors on the metadata disks
    std::uint64_t metadata_rot = 0;            // bits flipped at rest in metadata files
    std::uint64_t metadata_full_disks = 0;     // metadata disks that filled up
    std::uint64_t metadata_crash_effects = 0;  // unsynced metadata writes torn or dropped, files vanished
    std::uint64_t journal_faults = 0;          // sim_storage: torn, lost, misdirected, rotten, full
    std::uint64_t checkpoints_compared = 0;    // checkpoints whose digest matched one taken elsewhere
    // what this seed drew
    std::uint32_t chunk_size = 0;
    std::uint32_t replication_factor = 0;
    std::uint32_t proxies = 0;
    std::uint32_t users = 0;
};

objectstore_result run_objectstore_simulation(const objectstore_options& options);

/// "none", "gc_ignores_lease", ...; false if the name is unknown.
bool parse_objectstore_bug(const std::string& name, toastyfs::planted_bug& out);
const char* to_string(toastyfs::planted_bug bug);

}  // namespace sim
