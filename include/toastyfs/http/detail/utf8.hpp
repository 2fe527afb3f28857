// Strict UTF-8 validation (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF,
// no truncated sequences, no stray continuation bytes. Internal.
#pragma once

#include <cstddef>
#include <string_view>

namespace toastyfs::http::detail {

/// Size of the well-formed UTF-8 sequence starting at text[at], or 0 if it is malformed.
/// Requires at < text.size().
constexpr std::size_t utf8_sequence_size(std::string_view text, std::size_t at) noexcept {
    const auto byte = [&](std::size_t i) -> unsigned {
        return at + i < text.size() ? static_cast<unsigned char>(text[at + i]) : 0x100u;
    };
    const auto continuation = [&](std::size_t i, unsigned low, unsigned high) {
        return byte(i) >= low && byte(i) <= high;
    };
    const unsigned lead = byte(0);
    if (lead <= 0x7F) return 1;
    if (lead >= 0xC2 && lead <= 0xDF) return continuation(1, 0x80, 0xBF) ? 2 : 0;
    if (lead >= 0xE0 && lead <= 0xEF) {
        // E0 needs A0..BF (else overlong); ED needs 80..9F (else a UTF-16 surrogate).
        const unsigned low = lead == 0xE0 ? 0xA0 : 0x80;
        const unsigned high = lead == 0xED ? 0x9F : 0xBF;
        return continuation(1, low, high) && continuation(2, 0x80, 0xBF) ? 3 : 0;
    }
    if (lead >= 0xF0 && lead <= 0xF4) {
        // F0 needs 90..BF (else overlong); F4 needs 80..8F (else above U+10FFFF).
        const unsigned low = lead == 0xF0 ? 0x90 : 0x80;
        const unsigned high = lead == 0xF4 ? 0x8F : 0xBF;
        return continuation(1, low, high) && continuation(2, 0x80, 0xBF) && continuation(3, 0x80, 0xBF) ? 4 : 0;
    }
    return 0;  // 80..C1 (continuation or overlong lead) and F5..FF
}

constexpr bool is_valid_utf8(std::string_view text) noexcept {
    std::size_t at = 0;
    while (at < text.size()) {
        const std::size_t size = utf8_sequence_size(text, at);
        if (size == 0) return false;
        at += size;
    }
    return true;
}

}  // namespace toastyfs::http::detail
