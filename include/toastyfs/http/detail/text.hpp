// Character classes and small parsers from RFC 9110 §5.6 shared by the HTTP headers. Internal.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace toastyfs::http::detail {

constexpr bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }
constexpr bool is_alpha(char c) noexcept { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

/// tchar: "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~"
/// / DIGIT / ALPHA.
constexpr bool is_tchar(char c) noexcept {
    if (is_digit(c) || is_alpha(c)) return true;
    for (const char allowed : std::string_view("!#$%&'*+-.^_`|~")) {
        if (c == allowed) return true;
    }
    return false;
}

/// token = 1*tchar
constexpr bool is_token(std::string_view text) noexcept {
    if (text.empty()) return false;
    for (const char c : text) {
        if (!is_tchar(c)) return false;
    }
    return true;
}

/// OWS characters: SP and HTAB.
constexpr bool is_ows(char c) noexcept { return c == ' ' || c == '\t'; }

/// field-vchar / SP / HTAB: every byte except the controls 0x00-0x1F (HTAB aside) and DEL.
constexpr bool is_field_value_char(char c) noexcept {
    const auto byte = static_cast<unsigned char>(c);
    return byte == '\t' || (byte >= 0x20 && byte != 0x7F);
}

constexpr bool is_field_value(std::string_view text) noexcept {
    for (const char c : text) {
        if (!is_field_value_char(c)) return false;
    }
    return true;
}

/// 0-15 for a hex digit of either case, -1 otherwise.
constexpr int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

constexpr char to_lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

/// ASCII case-insensitive equality (field names, tokens, range units).
constexpr bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (to_lower(a[i]) != to_lower(b[i])) return false;
    }
    return true;
}

constexpr std::string_view trim_ows(std::string_view text) noexcept {
    while (!text.empty() && is_ows(text.front())) text.remove_prefix(1);
    while (!text.empty() && is_ows(text.back())) text.remove_suffix(1);
    return text;
}

/// Calls `visit(element)` for each element of a comma-separated list (RFC 9110 §5.6.1), trimmed
/// of OWS; empty elements are skipped as the RFC requires. Stops early, returning false, when
/// `visit` returns false. Only for lists whose elements cannot contain commas (tokens, numbers).
template <typename Visit>
constexpr bool for_each_list_element(std::string_view list, Visit&& visit) {
    while (true) {
        const std::size_t comma = list.find(',');
        const std::string_view element = trim_ows(list.substr(0, comma));
        if (!element.empty() && !visit(element)) return false;
        if (comma == std::string_view::npos) return true;
        list.remove_prefix(comma + 1);
    }
}

/// 1*DIGIT into a u64. False on an empty string, a non-digit, or overflow.
constexpr bool parse_decimal(std::string_view text, std::uint64_t& out) noexcept {
    if (text.empty()) return false;
    std::uint64_t value = 0;
    for (const char c : text) {
        if (!is_digit(c)) return false;
        const auto digit = static_cast<std::uint64_t>(c - '0');
        if (value > (UINT64_MAX - digit) / 10) return false;
        value = value * 10 + digit;
    }
    out = value;
    return true;
}

}  // namespace toastyfs::http::detail
