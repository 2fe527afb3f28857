#pragma once

// Checks of a recorded nemesis history that the linearizability checker (sim/linearizability)
// does not make: LIST results, the explicit "no acknowledged write lost" count, and availability.
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

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
unavailability longest_write_gap(std::span<const sim::kv_history_op> history, std::uint64_t from_ns, std::uint64_t to_ns);

}  // namespace chaos
