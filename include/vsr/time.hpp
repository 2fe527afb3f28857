// The Time policy. The replica counts timeouts in ticks (the driver calls tick() every
// config::tick_ms); the time source only supplies clock readings, e.g. the timestamp the primary
// stamps on each prepare.
#pragma once

#include <concepts>
#include <cstdint>

namespace vsr {

/// monotonic_ns(): never decreases within one process lifetime.
/// realtime_ns(): wall-clock nanoseconds since the Unix epoch; may jump. The primary uses it only
/// as a hint and keeps prepare timestamps strictly increasing itself.
template <typename T>
concept time_source = requires(T& time) {
    { time.monotonic_ns() } -> std::same_as<std::uint64_t>;
    { time.realtime_ns() } -> std::same_as<std::uint64_t>;
};

}  // namespace vsr
