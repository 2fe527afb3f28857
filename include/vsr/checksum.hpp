// Message checksum: XXH64 (Yann Collet's xxHash, 64-bit variant).
//
// Why not SHA-256: include/vsr must not depend on OpenSSL, and the checksum only has to catch
// corruption and truncation on the wire, not resist an adversary. Content addressing in the
// object store uses real SHA-256 from platform/.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <span>

#include "vsr/bytes.hpp"

namespace vsr {

namespace detail {

inline constexpr std::uint64_t xxh_prime1 = 0x9E3779B185EBCA87ULL;
inline constexpr std::uint64_t xxh_prime2 = 0xC2B2AE3D27D4EB4FULL;
inline constexpr std::uint64_t xxh_prime3 = 0x165667B19E3779F9ULL;
inline constexpr std::uint64_t xxh_prime4 = 0x85EBCA77C2B2AE63ULL;
inline constexpr std::uint64_t xxh_prime5 = 0x27D4EB2F165667C5ULL;

inline std::uint64_t xxh_round(std::uint64_t acc, std::uint64_t input) noexcept {
    acc += input * xxh_prime2;
    acc = std::rotl(acc, 31);
    return acc * xxh_prime1;
}

inline std::uint64_t xxh_merge(std::uint64_t acc, std::uint64_t value) noexcept {
    acc ^= xxh_round(0, value);
    return acc * xxh_prime1 + xxh_prime4;
}

}  // namespace detail

/// XXH64 of `bytes` with `seed`. Matches the reference implementation (see tests/vsr/checksum_test).
inline std::uint64_t checksum(std::span<const std::uint8_t> bytes, std::uint64_t seed = 0) noexcept {
    using namespace detail;
    const std::uint8_t* p = bytes.data();
    const std::uint8_t* const end = p + bytes.size();
    std::uint64_t h;
    if (bytes.size() >= 32) {
        std::uint64_t v1 = seed + xxh_prime1 + xxh_prime2;
        std::uint64_t v2 = seed + xxh_prime2;
        std::uint64_t v3 = seed;
        std::uint64_t v4 = seed - xxh_prime1;
        const std::uint8_t* const limit = end - 32;
        do {
            v1 = xxh_round(v1, load_le64(p));
            v2 = xxh_round(v2, load_le64(p + 8));
            v3 = xxh_round(v3, load_le64(p + 16));
            v4 = xxh_round(v4, load_le64(p + 24));
            p += 32;
        } while (p <= limit);
        h = std::rotl(v1, 1) + std::rotl(v2, 7) + std::rotl(v3, 12) + std::rotl(v4, 18);
        h = xxh_merge(h, v1);
        h = xxh_merge(h, v2);
        h = xxh_merge(h, v3);
        h = xxh_merge(h, v4);
    } else {
        h = seed + xxh_prime5;
    }
    h += static_cast<std::uint64_t>(bytes.size());
    // Compare what is left, never p + n with end: p + n may point past the end (or be null + n
    // for an empty span), which is undefined behaviour even if never dereferenced.
    for (; end - p >= 8; p += 8) {
        h ^= xxh_round(0, load_le64(p));
        h = std::rotl(h, 27) * xxh_prime1 + xxh_prime4;
    }
    if (end - p >= 4) {
        h ^= static_cast<std::uint64_t>(load_le32(p)) * xxh_prime1;
        h = std::rotl(h, 23) * xxh_prime2 + xxh_prime3;
        p += 4;
    }
    for (; p < end; ++p) {
        h ^= static_cast<std::uint64_t>(*p) * xxh_prime5;
        h = std::rotl(h, 11) * xxh_prime1;
    }
    h ^= h >> 33;
    h *= xxh_prime2;
    h ^= h >> 29;
    h *= xxh_prime3;
    h ^= h >> 32;
    return h;
}

}  // namespace vsr
