// The Range request field (RFC 9110 §14.2), bytes unit only, one range at most.
//
// resolve_range turns a Range value and the object's size into one of:
// - satisfiable:   serve 206 with `range` (inclusive bounds, clamped to the object) and
//                  Content-Range: content_range(range, size).
// - unsatisfiable: serve 416 with Content-Range: content_range_unsatisfiable(size). The range
//                  starts at or past the end ("bytes=10-" on 10 bytes), is a zero suffix
//                  ("bytes=-0"), or the object is empty (every range is unsatisfiable on 0 bytes).
// - ignore:        serve the whole object with 200, as if there were no Range field. This covers
//                  every syntactically invalid value, units other than "bytes", last < first,
//                  and several ranges ("bytes=0-1,5-6"): RFC 9110 §14.2 lets a server ignore
//                  Range, and one range per request keeps responses single-part.
// Positions too large for a u64 saturate (they only ever mean "past the end" or "everything").
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "toastyfs/http/detail/text.hpp"

namespace toastyfs::http {

struct byte_range {
    std::uint64_t first = 0;
    std::uint64_t last = 0;  // inclusive

    std::uint64_t size() const noexcept { return last - first + 1; }
    friend bool operator==(const byte_range&, const byte_range&) = default;
};

enum class range_outcome : std::uint8_t { ignore, satisfiable, unsatisfiable };

inline const char* to_string(range_outcome o) noexcept {
    switch (o) {
        case range_outcome::ignore: return "ignore";
        case range_outcome::satisfiable: return "satisfiable";
        case range_outcome::unsatisfiable: return "unsatisfiable";
    }
    return "unknown";
}

struct range_resolution {
    range_outcome outcome = range_outcome::ignore;
    byte_range range;  // satisfiable only
};

namespace detail {

// 1*DIGIT, saturating at UINT64_MAX. False if empty or not all digits.
inline bool parse_saturating_decimal(std::string_view text, std::uint64_t& out) noexcept {
    if (text.empty()) return false;
    std::uint64_t value = 0;
    for (const char c : text) {
        if (!is_digit(c)) return false;
        const auto digit = static_cast<std::uint64_t>(c - '0');
        value = value > (UINT64_MAX - digit) / 10 ? UINT64_MAX : value * 10 + digit;
    }
    out = value;
    return true;
}

inline range_resolution resolve_suffix_range(std::string_view digits, std::uint64_t size) noexcept {
    std::uint64_t suffix = 0;
    if (!parse_saturating_decimal(digits, suffix)) return {};
    if (suffix == 0 || size == 0) return {range_outcome::unsatisfiable, {}};
    const std::uint64_t length = suffix < size ? suffix : size;
    return {range_outcome::satisfiable, {size - length, size - 1}};
}

}  // namespace detail

inline range_resolution resolve_range(std::string_view value, std::uint64_t size) noexcept {
    value = detail::trim_ows(value);
    const std::size_t equals = value.find('=');
    if (equals == std::string_view::npos || !detail::iequals(value.substr(0, equals), "bytes")) return {};
    std::string_view spec;
    std::size_t specs = 0;
    detail::for_each_list_element(value.substr(equals + 1), [&](std::string_view element) {
        spec = element;
        return ++specs < 2;
    });
    if (specs != 1) return {};
    if (spec.front() == '-') return detail::resolve_suffix_range(spec.substr(1), size);
    const std::size_t dash = spec.find('-');
    if (dash == std::string_view::npos) return {};
    std::uint64_t first = 0;
    std::uint64_t last = UINT64_MAX;
    if (!detail::parse_saturating_decimal(spec.substr(0, dash), first)) return {};
    const std::string_view last_text = spec.substr(dash + 1);
    if (!last_text.empty() && !detail::parse_saturating_decimal(last_text, last)) return {};
    if (last < first) return {};
    if (first >= size) return {range_outcome::unsatisfiable, {}};
    return {range_outcome::satisfiable, {first, last < size - 1 ? last : size - 1}};
}

/// Content-Range value of a 206: "bytes first-last/size".
inline std::string content_range(const byte_range& range, std::uint64_t size) {
    return "bytes " + std::to_string(range.first) + "-" + std::to_string(range.last) + "/" + std::to_string(size);
}

/// Content-Range value of a 416: "bytes */size".
inline std::string content_range_unsatisfiable(std::uint64_t size) { return "bytes */" + std::to_string(size); }

}  // namespace toastyfs::http
