#define BOOST_TEST_MODULE checksum
// The header under test comes first: proves it is self-contained.
#include "vsr/checksum.hpp"

#ifndef BOOST_TEST_DYN_LINK  // meson's boost dependency may define it already
#define BOOST_TEST_DYN_LINK
#endif
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace {

// Test input: byte i is (i * 31 + 7) mod 256. Not constant and not periodic within a stripe,
// so each lane of XXH64 sees different data.
std::vector<std::uint8_t> pattern(std::size_t size) {
    std::vector<std::uint8_t> bytes(size);
    for (std::size_t i = 0; i < size; ++i) bytes[i] = static_cast<std::uint8_t>(i * 31 + 7);
    return bytes;
}

std::span<const std::uint8_t> as_bytes(std::string_view s) {
    return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

struct reference_vector {
    std::size_t size;
    std::uint64_t seed;
    std::uint64_t expected;
};

// Expected values come from the reference implementation (xxhsum -H64 0.8.1 for seed 0,
// libxxhash XXH64() for the nonzero seed), not from vsr::checksum itself. The sizes cover
// every code path: the 1-byte tail, the 4-byte step, the 8-byte step, and the 32-byte stripe
// loop (31/32/33 are its boundary).
constexpr reference_vector reference_vectors[] = {
    {0, 0, 0xEF46DB3751D8E999ULL},
    {1, 0, 0xA96C7F0CE858BBB7ULL},
    {3, 0, 0x56E6957632A487F9ULL},
    {4, 0, 0xC60D15B1E3FF8F04ULL},
    {7, 0, 0xAFBEFC3D6C6F9A8EULL},
    {8, 0, 0x3DA5C7AA269683E0ULL},
    {31, 0, 0x4A74F3A1A39AD4A1ULL},
    {32, 0, 0x8D57D6A4671CC43DULL},
    {33, 0, 0x62C9FD21ED857664ULL},
    {100, 0, 0xEFA0AD2D3E70C151ULL},
    {255, 0, 0x2C3DB4BB567F731EULL},
    {0, 0x9E3779B1, 0xAC75FDA2929B17EFULL},
    {5, 0x9E3779B1, 0x840B6A418001CBA3ULL},
    {33, 0x9E3779B1, 0x5A653650552F822CULL},
    {100, 0x9E3779B1, 0x4AC13414471C7284ULL},
};

}  // namespace

BOOST_AUTO_TEST_CASE(empty_input_seed_zero) {
    BOOST_TEST(vsr::checksum({}) == 0xEF46DB3751D8E999ULL);
    BOOST_TEST(vsr::checksum({}, 0) == 0xEF46DB3751D8E999ULL);
}

BOOST_AUTO_TEST_CASE(matches_reference_vectors) {
    for (const auto& v : reference_vectors) {
        const auto input = pattern(v.size);
        BOOST_TEST_CONTEXT("size " << v.size << " seed " << v.seed) {
            BOOST_TEST(vsr::checksum(input, v.seed) == v.expected);
        }
    }
}

BOOST_AUTO_TEST_CASE(matches_reference_for_text) {
    // printf abc | xxhsum -H64
    BOOST_TEST(vsr::checksum(as_bytes("abc")) == 0x44BC2CF5AD770999ULL);
}

BOOST_AUTO_TEST_CASE(seed_changes_result) {
    const auto input = pattern(40);
    BOOST_TEST(vsr::checksum(input, 0) != vsr::checksum(input, 1));
    BOOST_TEST(vsr::checksum(input, 1) != vsr::checksum(input, 2));
}

BOOST_AUTO_TEST_CASE(does_not_depend_on_alignment) {
    // The loads use memcpy; an input starting at an odd address must hash the same.
    const auto input = pattern(100);
    std::vector<std::uint8_t> shifted(input.size() + 1);
    std::copy(input.begin(), input.end(), shifted.begin() + 1);
    BOOST_TEST(vsr::checksum(std::span(shifted).subspan(1), 7) == vsr::checksum(input, 7));
}

BOOST_AUTO_TEST_CASE(every_single_bit_flip_changes_checksum) {
    // Corruption detection is the checksum's whole job: try every bit of inputs that end in
    // each code path (tail bytes, 4-byte step, 8-byte step, full stripes).
    for (const std::size_t size : {1u, 5u, 12u, 40u, 100u}) {
        const auto input = pattern(size);
        const std::uint64_t original = vsr::checksum(input, 3);
        for (std::size_t bit = 0; bit < size * 8; ++bit) {
            auto flipped = input;
            flipped[bit / 8] = static_cast<std::uint8_t>(flipped[bit / 8] ^ (1u << (bit % 8)));
            BOOST_TEST_CONTEXT("size " << size << " bit " << bit) { BOOST_TEST(vsr::checksum(flipped, 3) != original); }
        }
    }
}

BOOST_AUTO_TEST_CASE(length_is_part_of_the_hash) {
    // Appending a zero byte must change the result (truncation detection).
    const std::vector<std::uint8_t> three(3, 0);
    const std::vector<std::uint8_t> four(4, 0);
    BOOST_TEST(vsr::checksum(three) != vsr::checksum(four));
    BOOST_TEST(vsr::checksum(pattern(32)) != vsr::checksum(pattern(33)));
}
