#define BOOST_TEST_MODULE real_time
// The header under test comes first: proves it is self-contained.
#include "platform/real_time.hpp"

#ifndef BOOST_TEST_DYN_LINK  // meson's boost dependency may define it already
#define BOOST_TEST_DYN_LINK
#endif
#include <boost/test/unit_test.hpp>

#include <cstdint>

static_assert(vsr::time_source<platform::real_time>);

BOOST_AUTO_TEST_CASE(monotonic_never_decreases) {
    platform::real_time time;
    std::uint64_t previous = time.monotonic_ns();
    for (int i = 0; i < 100'000; i++) {
        const std::uint64_t now = time.monotonic_ns();
        BOOST_REQUIRE_GE(now, previous);
        previous = now;
    }
}

BOOST_AUTO_TEST_CASE(realtime_is_nanoseconds_since_the_epoch) {
    platform::real_time time;
    constexpr std::uint64_t year_2020_ns = 1'577'836'800ull * 1'000'000'000ull;
    constexpr std::uint64_t year_2200_ns = 7'258'118'400ull * 1'000'000'000ull;
    const std::uint64_t now = time.realtime_ns();
    BOOST_TEST(now > year_2020_ns);
    BOOST_TEST(now < year_2200_ns);
}
