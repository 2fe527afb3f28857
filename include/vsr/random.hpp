// The Random policy: a seeded PRNG. The protocol core takes every random choice from it, so a run
// is a pure function of its seed.
#pragma once

#include <concepts>
#include <cstdint>

namespace vsr {

/// A source of uniformly distributed 64-bit values. Must be deterministic for a given seed.
template <typename T>
concept random_source = requires(T& random) {
    { random.next_u64() } -> std::same_as<std::uint64_t>;
};

/// Uniform value in [0, bound). Lemire's multiply-shift with rejection, so results are identical
/// on every standard library (std::uniform_int_distribution is not).
template <random_source Random>
std::uint64_t uniform_below(Random& random, std::uint64_t bound) noexcept {
    if (bound <= 1) return 0;
    for (;;) {
        const unsigned __int128 product = static_cast<unsigned __int128>(random.next_u64()) * bound;
        const auto low = static_cast<std::uint64_t>(product);
        if (low >= bound || low >= (-bound) % bound) {
            return static_cast<std::uint64_t>(product >> 64);
        }
    }
}

/// Uniform value in [low, high] (inclusive).
template <random_source Random>
std::uint64_t uniform_between(Random& random, std::uint64_t low, std::uint64_t high) noexcept {
    if (high - low == UINT64_MAX) return random.next_u64();  // the full range: high - low + 1 wraps
    return low + uniform_below(random, high - low + 1);
}

/// True with probability numerator / denominator.
template <random_source Random>
bool chance(Random& random, std::uint64_t numerator, std::uint64_t denominator) noexcept {
    return uniform_below(random, denominator) < numerator;
}

/// xoshiro256** seeded through splitmix64: small, fast, and good enough for simulation.
class xoshiro256 {
public:
    explicit xoshiro256(std::uint64_t seed) noexcept {
        for (auto& word : state_) word = splitmix64(seed);
    }

    std::uint64_t next_u64() noexcept {
        const std::uint64_t result = rotl(state_[1] * 5, 7) * 9;
        const std::uint64_t t = state_[1] << 17;
        state_[2] ^= state_[0];
        state_[3] ^= state_[1];
        state_[1] ^= state_[2];
        state_[0] ^= state_[3];
        state_[2] ^= t;
        state_[3] = rotl(state_[3], 45);
        return result;
    }

private:
    static std::uint64_t rotl(std::uint64_t x, int k) noexcept { return (x << k) | (x >> (64 - k)); }

    static std::uint64_t splitmix64(std::uint64_t& x) noexcept {
        std::uint64_t z = (x += 0x9E3779B97F4A7C15ULL);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        return z ^ (z >> 31);
    }

    std::uint64_t state_[4]{};
};
static_assert(random_source<xoshiro256>);

}  // namespace vsr
