#pragma once

// Checks of a recorded nemesis history that the linearizability checker (sim/linearizability)
// does not make: LIST results, the explicit "no acknowledged write lost" count, and availability.
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "nemesis.hpp"
#include "sim/linearizability.hpp"
#include "workload.hpp"

namespace chaos {

/// A LIST is sound when every entry is a value some PUT of that key wrote, not invoked after the
/// LIST completed and not overwritten before it began, and when no key that was certainly present
/// throughout the LIST (acknowledged before it began, no delete that may have run) is missing.
/// The same rules as the simulator's LIST check. Returns one line per problem.
std::vector<std::string> check_lists(std::span<const sim::kv_history_op> history, std::span<const list_record> lists,
                                     const std::map<std::string, written_value>& written);

struct lost_write_report {
    std::uint64_t keys_checked = 0;  // keys whose last acknowledged write raced with no other write
    std::vector<std::string> lost;   // of those, keys whose final read differs
};
/// For each key whose last acknowledged write had no concurrent or unknown-outcome write, the final
/// state (key -> value name, "" when absent) must be exactly that write.
lost_write_report check_final_writes(std::span<const sim::kv_history_op> history,
                                     const std::map<std::string, std::string>& final_state);

struct unavailability {
    std::uint64_t longest_ns = 0;
    std::uint64_t starts_ns = 0;  // when the longest gap began
    std::uint64_t writes = 0;     // successful writes in the window
};
/// Longest stretch of [from_ns, to_ns) without a completed write (PUT or DELETE answered).
unavailability longest_write_gap(std::span<const sim::kv_history_op> history, std::uint64_t from_ns,
                                 std::uint64_t to_ns);
/// Every such stretch of at least min_ns, as (start, length).
std::vector<std::pair<std::uint64_t, std::uint64_t>> write_gaps(std::span<const sim::kv_history_op> history,
                                                                std::uint64_t from_ns, std::uint64_t to_ns,
                                                                std::uint64_t min_ns);

/// When a GET may be cut short with a fault as its excuse: while the fault is active, and for
/// `margin_ns` after it healed (the proxy reconnecting to a restarted or reachable-again node).
std::vector<std::pair<std::uint64_t, std::uint64_t>> fault_excuse_windows(std::span<const fault_record> faults,
                                                                          std::uint64_t margin_ns);
/// The part of [from_ns, to_ns) that no window covers, as a fraction: where a cut GET is a bug.
double unexcused_fraction(std::span<const std::pair<std::uint64_t, std::uint64_t>> windows, std::uint64_t from_ns,
                          std::uint64_t to_ns);

/// A GET cut short after its 200 head is allowed only while faults may have made every holder
/// unreachable, or when the version being read was overwritten or deleted meanwhile (its chunks
/// may then be collected once the upload lease passes). `noisy` holds the intervals faults may
/// affect. Returns one line per cut GET that had neither excuse; `excused` counts the others.
std::vector<std::string> check_truncated_gets(std::span<const sim::kv_history_op> history,
                                              std::span<const truncated_get> cut,
                                              const std::map<std::string, written_value>& written,
                                              std::span<const std::pair<std::uint64_t, std::uint64_t>> noisy,
                                              std::uint64_t& excused);

/// Faults per kind: applied, and attempts that could not be applied.
struct fault_counts {
    std::map<std::string, std::uint64_t> injected;
    std::map<std::string, std::uint64_t> not_injected;
};
fault_counts count_faults(std::span<const fault_record> faults);
/// One line per requested kind that was never injected: a fault asked for must happen.
std::vector<std::string> check_faults_injected(const std::set<std::string>& requested, const fault_counts& counts);

struct availability_bounds {
    std::uint64_t after_kill_ns = 0;     // a write issued after a kill -9 of one node succeeds within this
    std::uint64_t after_heal_ns = 0;     // a write issued after the last fault healed succeeds within this
    std::uint64_t after_revival_ns = 0;  // a write issued after a killed cluster restarted succeeds within this
};
struct availability_report {
    std::uint64_t acknowledged_writes = 0;  // PUT 200 and DELETE 204 in the whole history
    std::uint64_t kills_checked = 0;
    std::uint64_t slowest_after_kill_ns = 0;  // kill -9 to the first write issued after it succeeding
    std::uint64_t revivals_checked = 0;
    std::uint64_t slowest_after_revival_ns = 0;  // restart of a killed cluster to the first write after it
    std::uint64_t after_heal_ns = 0;             // healed to the first write issued after it succeeding
    bool resumed_after_heal = false;
    std::vector<std::string> problems;
};
/// Availability as properties: some write was acknowledged; after every injected kill -9 of one
/// node (kill, kill_primary, wipe_disk), a write issued after the SIGKILL succeeded within
/// bounds.after_kill_ns; after every injected kill_all, a write issued after every node was
/// restarted (revived_ns) succeeded within bounds.after_revival_ns; after `healed_ns`, a write
/// issued after it succeeded within bounds.after_heal_ns. A wait cut off by a later kill_all
/// (writes impossible from its SIGKILL to its revival) counts only up to that SIGKILL.
availability_report check_availability(std::span<const sim::kv_history_op> history,
                                       std::span<const fault_record> faults, std::uint64_t healed_ns,
                                       const availability_bounds& bounds);

/// A LIST of each whole generation after the faults, with nothing running, must show exactly the
/// keys `final_state` has, each with its value's ETag and size.
std::vector<std::string> check_final_listing(std::span<const list_record> lists,
                                             const std::map<std::string, std::string>& final_state,
                                             const std::map<std::string, written_value>& written);

struct copies_report {
    std::uint64_t chunks = 0;  // chunks of the objects in final_state
    std::uint64_t good_copies = 0;
    std::uint64_t corrupt_unscrubbed = 0;  // copies the nemesis corrupted that are still bad
    std::vector<std::string> problems;
};
/// On disk, after convergence: every chunk of every object in `final_state` has at least one good
/// copy, and at least `replication_factor` copies counting those the nemesis corrupted that the
/// scrubber has not reached yet. chunk_directory(node) is that node's chunks/ directory.
copies_report check_chunk_copies(const std::map<std::string, std::string>& final_state,
                                 const std::map<std::string, written_value>& written, std::uint32_t nodes,
                                 const std::function<std::string(std::uint32_t)>& chunk_directory,
                                 const std::set<std::pair<std::uint32_t, std::string>>& corrupted,
                                 std::size_t chunk_size, std::size_t inline_size_max, std::uint32_t replication_factor);

}  // namespace chaos
