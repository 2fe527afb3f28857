#include "sim/fault_profile.hpp"

#include <sstream>

namespace sim {

fault_profile draw_fault_profile(vsr::xoshiro256& random) {
    using vsr::chance;
    using vsr::uniform_between;
    fault_profile p;
    p.latency_min_us = uniform_between(random, 50, 1'000);
    p.latency_max_us = p.latency_min_us + uniform_between(random, 0, 10'000);
    if (chance(random, 2, 3)) p.drop_per_mille = static_cast<std::uint32_t>(uniform_between(random, 1, 200));
    if (chance(random, 1, 2)) p.duplicate_per_mille = static_cast<std::uint32_t>(uniform_between(random, 1, 100));
    if (chance(random, 1, 2)) {
        p.delay_spike_per_mille = static_cast<std::uint32_t>(uniform_between(random, 1, 50));
        p.delay_spike_max_us = uniform_between(random, 10'000, 2'000'000);
    }
    if (chance(random, 1, 4)) p.message_pool_max = static_cast<std::uint32_t>(uniform_between(random, 8, 256));
    p.fault_step_ms = uniform_between(random, 50, 1'000);
    p.partitions = chance(random, 1, 2);
    p.asymmetric_partitions = p.partitions && chance(random, 1, 2);
    p.clogging = chance(random, 1, 3);
    p.crashes = chance(random, 1, 2);
    p.pauses = chance(random, 1, 3);
    p.fault_per_mille = static_cast<std::uint32_t>(uniform_between(random, 20, 500));
    if (chance(random, 1, 2)) p.clock_drift_per_mille = static_cast<std::uint32_t>(uniform_between(random, 1, 100));
    return p;
}

std::string fault_profile::describe() const {
    std::ostringstream out;
    out << "latency=" << latency_min_us << ".." << latency_max_us << "us drop=" << drop_per_mille
        << "/1000 dup=" << duplicate_per_mille << "/1000 spike=" << delay_spike_per_mille
        << "/1000<=" << delay_spike_max_us << "us pool=" << message_pool_max << " step=" << fault_step_ms
        << "ms faults=" << fault_per_mille << "/1000[" << (partitions ? "partition " : "")
        << (asymmetric_partitions ? "one-way " : "") << (clogging ? "clog " : "") << (crashes ? "crash " : "")
        << (pauses ? "pause " : "") << "] drift=" << clock_drift_per_mille << "/1000";
    return out.str();
}

}  // namespace sim
