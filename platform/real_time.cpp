#include "platform/real_time.hpp"

#include <time.h>

namespace platform {

namespace {

std::uint64_t read_clock_ns(clockid_t clock) {
    timespec now{};
    // clock_gettime cannot fail for these clocks with a valid pointer.
    ::clock_gettime(clock, &now);
    return static_cast<std::uint64_t>(now.tv_sec) * 1'000'000'000u + static_cast<std::uint64_t>(now.tv_nsec);
}

}  // namespace

std::uint64_t real_time::monotonic_ns() { return read_clock_ns(CLOCK_MONOTONIC); }
std::uint64_t real_time::realtime_ns() { return read_clock_ns(CLOCK_REALTIME); }

}  // namespace platform
