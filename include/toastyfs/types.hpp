// Vocabulary shared by every ToastyFS component: digests, node sets, and the Crypto policy.
//
// Header-only and OS-free like include/vsr: hashing comes from a policy (platform::openssl_crypto
// in production and in the simulator), so this library never includes OpenSSL itself.
#pragma once

#include <array>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace toastyfs {

using sha256_digest = std::array<std::uint8_t, 32>;
using md5_digest = std::array<std::uint8_t, 16>;

/// A set of storage nodes (VSR replica indexes 0..15), one bit per node.
using node_set = std::uint16_t;
inline constexpr std::size_t nodes_max = 16;

constexpr bool contains(node_set set, std::uint8_t node) noexcept {
    return node < nodes_max && ((set >> node) & 1u) != 0;
}
constexpr node_set with(node_set set, std::uint8_t node) noexcept { return static_cast<node_set>(set | (1u << node)); }
constexpr node_set without(node_set set, std::uint8_t node) noexcept {
    return static_cast<node_set>(set & ~(1u << node));
}
constexpr int count(node_set set) noexcept { return __builtin_popcount(set); }

/// Lower-case hex of any byte string.
inline std::string to_hex(std::span<const std::uint8_t> bytes) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out(bytes.size() * 2, '0');
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 15];
    }
    return out;
}

/// Parses exactly 2*N hex digits (either case). nullopt on any other input.
template <std::size_t N>
std::optional<std::array<std::uint8_t, N>> from_hex(std::string_view text) noexcept {
    if (text.size() != 2 * N) return std::nullopt;
    auto nibble = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    };
    std::array<std::uint8_t, N> out{};
    for (std::size_t i = 0; i < N; ++i) {
        const int high = nibble(text[2 * i]);
        const int low = nibble(text[2 * i + 1]);
        if (high < 0 || low < 0) return std::nullopt;
        out[i] = static_cast<std::uint8_t>(high << 4 | low);
    }
    return out;
}

/// The Crypto policy: incremental SHA-256 and MD5.
/// Requirements:
/// - Crypto::sha256_context and Crypto::md5_context are default-constructible, movable, and
///   start fresh; update(bytes) may be called any number of times; finish() returns the digest
///   and leaves the context reset (ready for a new stream).
/// - Crypto::sha256(bytes) hashes one buffer.
/// Implementations must be real cryptographic hashes (content addressing relies on it).
template <typename T>
concept crypto = requires(typename T::sha256_context& sha, typename T::md5_context& md5,
                          std::span<const std::uint8_t> bytes) {
    sha.update(bytes);
    { sha.finish() } -> std::same_as<sha256_digest>;
    md5.update(bytes);
    { md5.finish() } -> std::same_as<md5_digest>;
    { T::sha256(bytes) } -> std::same_as<sha256_digest>;
}
&&std::default_initializable<typename T::sha256_context>&& std::default_initializable<typename T::md5_context>&&
    std::movable<typename T::sha256_context>&& std::movable<typename T::md5_context>;

}  // namespace toastyfs
