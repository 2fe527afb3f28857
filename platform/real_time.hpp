// The production Time policy: the operating system's clocks.
#pragma once

#include <cstdint>

#include "vsr/time.hpp"

namespace platform {

/// monotonic_ns(): CLOCK_MONOTONIC, never decreases. realtime_ns(): CLOCK_REALTIME, nanoseconds
/// since the Unix epoch; may jump (the replica uses it only as a hint).
struct real_time {
    std::uint64_t monotonic_ns();
    std::uint64_t realtime_ns();
};
static_assert(vsr::time_source<real_time>);

}  // namespace platform
