// A fault profile: which faults a simulated run injects and how hard. Each seed draws its own
// profile ("swarm testing"), so seeds differ in kind as well as in detail: some runs have no
// partitions at all, some lose a fifth of their messages, some crash replicas constantly.
#pragma once

#include <cstdint>
#include <string>

#include "vsr/random.hpp"

namespace sim {

struct fault_profile {
    // network, per message
    std::uint64_t latency_min_us = 100;
    std::uint64_t latency_max_us = 2'000;
    std::uint32_t drop_per_mille = 0;
    std::uint32_t duplicate_per_mille = 0;
    std::uint32_t delay_spike_per_mille = 0;  // occasional long delay: reorders heavily
    std::uint64_t delay_spike_max_us = 0;
    std::uint32_t message_pool_max = 1'000'000;  // in-flight messages; beyond: dropped

    // scheduled faults, each rolled every fault_step
    std::uint64_t fault_step_ms = 200;
    bool partitions = false;
    bool asymmetric_partitions = false;
    bool clogging = false;
    bool crashes = false;
    bool pauses = false;
    std::uint32_t fault_per_mille = 0;  // chance per step that a fault of an enabled kind starts

    // clocks
    std::uint32_t clock_drift_per_mille = 0;  // each replica's clock runs up to this much fast/slow

    std::string describe() const;
};

/// Draws a profile from the seed's PRNG.
fault_profile draw_fault_profile(vsr::xoshiro256& random);

}  // namespace sim
