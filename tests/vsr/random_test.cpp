#define BOOST_TEST_MODULE random
// The header under test comes first: proves it is self-contained.
#include "vsr/random.hpp"

#ifndef BOOST_TEST_DYN_LINK  // meson's boost dependency may define it already
#define BOOST_TEST_DYN_LINK
#endif
#include <boost/test/unit_test.hpp>

#include <array>
#include <cstdint>
#include <limits>
#include <set>
#include <vector>

namespace {

constexpr std::uint64_t u64_max = std::numeric_limits<std::uint64_t>::max();

std::vector<std::uint64_t> draw(vsr::xoshiro256& random, std::size_t count) {
    std::vector<std::uint64_t> values(count);
    for (auto& v : values) v = random.next_u64();
    return values;
}

// Replays a fixed list of values, to drive uniform_below through known inputs.
struct scripted_source {
    std::vector<std::uint64_t> values;
    std::size_t next = 0;
    std::uint64_t next_u64() { return values.at(next++); }
};
static_assert(vsr::random_source<scripted_source>);

}  // namespace

BOOST_AUTO_TEST_CASE(equal_seeds_give_equal_streams) {
    vsr::xoshiro256 a(12345);
    vsr::xoshiro256 b(12345);
    BOOST_TEST(draw(a, 1000) == draw(b, 1000));
}

BOOST_AUTO_TEST_CASE(different_seeds_give_different_streams) {
    vsr::xoshiro256 a(1);
    vsr::xoshiro256 b(2);
    const auto x = draw(a, 100);
    const auto y = draw(b, 100);
    std::size_t equal = 0;
    for (std::size_t i = 0; i < x.size(); ++i) equal += x[i] == y[i];
    BOOST_TEST(equal == 0u);
}

BOOST_AUTO_TEST_CASE(stream_is_pinned) {
    // Simulator runs are replayed from seeds, so the stream must never change silently.
    // Expected values come from the reference splitmix64.c / xoshiro256starstar.c of
    // prng.di.unimi.it, seeding the four state words with consecutive splitmix64 outputs.
    vsr::xoshiro256 zero(0);
    BOOST_TEST(zero.next_u64() == 0x99EC5F36CB75F2B4ULL);
    BOOST_TEST(zero.next_u64() == 0xBF6E1F784956452AULL);
    BOOST_TEST(zero.next_u64() == 0x1A5F849D4933E6E0ULL);
    vsr::xoshiro256 forty_two(42);
    BOOST_TEST(forty_two.next_u64() == 0x15780B2E0C2EC716ULL);
    BOOST_TEST(forty_two.next_u64() == 0x6104D9866D113A7EULL);
    BOOST_TEST(forty_two.next_u64() == 0xAE17533239E499A1ULL);
}

BOOST_AUTO_TEST_CASE(copies_continue_identically) {
    vsr::xoshiro256 a(7);
    draw(a, 10);
    vsr::xoshiro256 b = a;
    BOOST_TEST(draw(a, 50) == draw(b, 50));
}

BOOST_AUTO_TEST_CASE(uniform_below_trivial_bounds_give_zero) {
    vsr::xoshiro256 random(3);
    for (int i = 0; i < 100; ++i) {
        BOOST_TEST(vsr::uniform_below(random, 0) == 0u);
        BOOST_TEST(vsr::uniform_below(random, 1) == 0u);
    }
}

BOOST_AUTO_TEST_CASE(uniform_below_stays_below_bound) {
    vsr::xoshiro256 random(99);
    const std::uint64_t bounds[] = {2, 3, 7, 10, 1000, (1ULL << 32) + 1, (1ULL << 63) + 1, u64_max};
    for (const std::uint64_t bound : bounds) {
        for (int i = 0; i < 10000; ++i) {
            const std::uint64_t v = vsr::uniform_below(random, bound);
            BOOST_TEST_CONTEXT("bound " << bound) { BOOST_TEST(v < bound); }
        }
    }
}

BOOST_AUTO_TEST_CASE(uniform_below_rejects_biased_values) {
    // bound 3: the rejection threshold is 2^64 mod 3 = 1, so a raw value whose low product
    // word is 0 must be redrawn. Raw 0 gives product 0 (low 0 < 1): rejected. The next raw
    // value u64_max gives high word 2.
    scripted_source source{{0, u64_max}};
    BOOST_TEST(vsr::uniform_below(source, 3) == 2u);
    BOOST_TEST(source.next == 2u);  // both values consumed
}

BOOST_AUTO_TEST_CASE(uniform_below_is_roughly_uniform) {
    // Not a statistical test: just catches gross bias (e.g. a modulo of the wrong word).
    constexpr std::size_t buckets = 10;
    constexpr int draws = 100000;
    std::array<int, buckets> counts{};
    vsr::xoshiro256 random(2024);
    for (int i = 0; i < draws; ++i) ++counts[vsr::uniform_below(random, buckets)];
    for (std::size_t b = 0; b < buckets; ++b) {
        BOOST_TEST_CONTEXT("bucket " << b) {
            BOOST_TEST(counts[b] > draws / 10 * 9 / 10);
            BOOST_TEST(counts[b] < draws / 10 * 11 / 10);
        }
    }
}

BOOST_AUTO_TEST_CASE(uniform_between_reaches_both_ends) {
    vsr::xoshiro256 random(5);
    std::set<std::uint64_t> seen;
    for (int i = 0; i < 1000; ++i) {
        const std::uint64_t v = vsr::uniform_between(random, 5, 7);
        BOOST_TEST(v >= 5u);
        BOOST_TEST(v <= 7u);
        seen.insert(v);
    }
    BOOST_TEST(seen == (std::set<std::uint64_t>{5, 6, 7}));
}

BOOST_AUTO_TEST_CASE(uniform_between_single_value) {
    vsr::xoshiro256 random(5);
    for (int i = 0; i < 100; ++i) BOOST_TEST(vsr::uniform_between(random, 42, 42) == 42u);
}

BOOST_AUTO_TEST_CASE(uniform_between_top_of_range) {
    vsr::xoshiro256 random(6);
    std::set<std::uint64_t> seen;
    for (int i = 0; i < 200; ++i) seen.insert(vsr::uniform_between(random, u64_max - 1, u64_max));
    BOOST_TEST(seen == (std::set<std::uint64_t>{u64_max - 1, u64_max}));
}

// [low, high] = [0, 2^64 - 1]: high - low + 1 wraps to 0, and uniform_below(0) returns 0,
// so every draw is 0 instead of a uniform 64-bit value.

BOOST_AUTO_TEST_CASE(uniform_between_full_range) {
    vsr::xoshiro256 random(8);
    std::set<std::uint64_t> seen;
    for (int i = 0; i < 100; ++i) seen.insert(vsr::uniform_between(random, 0, u64_max));
    BOOST_TEST(seen.size() > 90u);
}

BOOST_AUTO_TEST_CASE(chance_extremes_and_rate) {
    vsr::xoshiro256 random(11);
    int hits = 0;
    for (int i = 0; i < 1000; ++i) {
        BOOST_TEST(!vsr::chance(random, 0, 10));
        BOOST_TEST(vsr::chance(random, 10, 10));
        hits += vsr::chance(random, 1, 4);
    }
    BOOST_TEST(hits > 150);  // expected 250
    BOOST_TEST(hits < 350);
}
