// Request targets: splitting into path and query, object keys from paths, query parameters, and
// percent-encoding for keys written back into URLs.
//
// Choices:
// - Origin-form ("/a/b?x=1") is the normal case. Absolute-form ("http://host/a/b?x=1", scheme
//   http or https, any case) is accepted as RFC 9112 §3.2.2 requires of servers: its path and
//   query are used, the authority is returned for the caller to compare with Host. Userinfo
//   ("user@host") is refused (400). Asterisk-form ("*") is reported as such, for OPTIONS.
//   Authority-form (CONNECT) and anything else: 400.
// - A fragment ("#") never belongs in a request target: 400.
// - Object keys are the percent-decoded path without its leading "/": exactly those bytes. No
//   dot-segment removal, no slash merging, "+" is a literal plus, "%2F" is "/".
// - Query strings follow application/x-www-form-urlencoded: "&" separates parameters, the first
//   "=" separates name and value, "+" is a space. Empty parameters ("a=1&&b=2") are skipped. A
//   name given twice is an error 400: neither first nor last silently wins.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "toastyfs/http/detail/text.hpp"
#include "toastyfs/http/detail/utf8.hpp"
#include "toastyfs/http/error.hpp"

namespace toastyfs::http {

/// Longest object key, in bytes after percent-decoding. Longer keys are refused (414), never
/// truncated, so two keys can never alias.
inline constexpr std::size_t key_size_max = 1024;
/// Most parameters in one query string. More: 400.
inline constexpr std::size_t query_parameters_max = 64;

enum class target_form : std::uint8_t { origin, absolute, asterisk };

/// The parts of a request target, viewing the target string (or a static "/").
struct target_parts {
    target_form form = target_form::origin;
    std::string_view authority;  // absolute-form only: "host[:port]"
    std::string_view path;       // still percent-encoded; starts with "/" (empty for asterisk-form)
    std::string_view query;      // still encoded, without the "?"
    bool has_query = false;      // a "?" was present (the query may still be empty)
};

namespace detail {

inline bool is_uri_char(char c) noexcept {
    const auto byte = static_cast<unsigned char>(c);
    return byte > 0x20 && byte < 0x7F;
}

// scheme "://" authority [ path-abempty ], scheme http or https.
inline result<target_parts> split_absolute_form(std::string_view target) {
    const std::size_t separator = target.find("://");
    if (separator == std::string_view::npos) return http::error{400, "malformed request target"};
    const std::string_view scheme = target.substr(0, separator);
    if (!iequals(scheme, "http") && !iequals(scheme, "https")) {
        return http::error{400, "unsupported scheme in request target"};
    }
    std::string_view rest = target.substr(separator + 3);
    const std::size_t authority_end = rest.find_first_of("/?");
    target_parts parts;
    parts.form = target_form::absolute;
    parts.authority = rest.substr(0, authority_end);
    if (parts.authority.empty()) return http::error{400, "empty authority in request target"};
    if (parts.authority.find('@') != std::string_view::npos) return http::error{400, "userinfo in request target"};
    rest = authority_end == std::string_view::npos ? std::string_view() : rest.substr(authority_end);
    const std::size_t question = rest.find('?');
    parts.path = rest.substr(0, question);
    if (parts.path.empty()) parts.path = "/";
    if (question != std::string_view::npos) {
        parts.has_query = true;
        parts.query = rest.substr(question + 1);
    }
    return parts;
}

// Appends the decoded `text` to `out`. Fails on "%" without two hex digits, on a decoded NUL,
// and as soon as `out` would exceed `size_max` bytes.
inline std::optional<http::error> percent_decode(std::string_view text, bool plus_is_space, std::size_t size_max,
                                                 std::uint16_t too_long_status, std::string& out) {
    for (std::size_t i = 0; i < text.size(); ++i) {
        char c = text[i];
        if (c == '%') {
            if (i + 2 >= text.size()) {
                return http::error{400, "truncated percent-encoding"};
            }
            const int high = hex_value(text[i + 1]);
            const int low = hex_value(text[i + 2]);
            if (high < 0 || low < 0) return http::error{400, "invalid percent-encoding"};
            c = static_cast<char>(high << 4 | low);
            i += 2;
            if (c == '\0') return http::error{400, "NUL byte in decoded text"};
        } else if (c == '+' && plus_is_space) {
            c = ' ';
        }
        if (out.size() >= size_max) return http::error{too_long_status, "decoded text too long"};
        out.push_back(c);
    }
    return std::nullopt;
}

}  // namespace detail

/// Splits a request target (as request_head::target holds it). Every byte must be visible ASCII.
inline result<target_parts> split_target(std::string_view target) {
    if (target.empty()) return http::error{400, "empty request target"};
    for (const char c : target) {
        if (!detail::is_uri_char(c)) return http::error{400, "invalid character in request target"};
    }
    if (target.find('#') != std::string_view::npos) return http::error{400, "fragment in request target"};
    if (target == "*") {
        target_parts parts;
        parts.form = target_form::asterisk;
        return parts;
    }
    if (target.front() != '/') return detail::split_absolute_form(target);
    target_parts parts;
    const std::size_t question = target.find('?');
    parts.path = target.substr(0, question);
    if (question != std::string_view::npos) {
        parts.has_query = true;
        parts.query = target.substr(question + 1);
    }
    return parts;
}

/// The service root: the path "/" names no object.
inline bool is_service_root(std::string_view path) noexcept { return path == "/"; }

/// The object key named by a path (target_parts::path): percent-decoded, leading "/" removed.
/// Errors: path not starting with "/" (400); path "/" (400, no key: test is_service_root
/// first); "%" not followed by two hex digits (400); a decoded NUL (400); decoded key longer
/// than `size_max` bytes (414); invalid UTF-8 after decoding: overlong forms, surrogates, code
/// points above U+10FFFF, truncated sequences (400).
inline result<std::string> decode_key(std::string_view path, std::size_t size_max = key_size_max) {
    if (path.empty() || path.front() != '/') return http::error{400, "path does not start with /"};
    path.remove_prefix(1);
    if (path.empty()) return http::error{400, "empty object key"};
    for (const char c : path) {
        if (!detail::is_uri_char(c)) return http::error{400, "invalid character in path"};
    }
    std::string key;
    key.reserve(path.size() < size_max ? path.size() : size_max);
    if (const auto failure = detail::percent_decode(path, false, size_max, 414, key)) {
        if (failure->status == 414) return http::error{414, "object key too long"};
        return *failure;
    }
    if (!detail::is_valid_utf8(key)) return http::error{400, "object key is not valid UTF-8"};
    return key;
}

struct query_parameter {
    std::string name;
    std::string value;  // "" for a parameter without "="

    friend bool operator==(const query_parameter&, const query_parameter&) = default;
};

struct query_parameters {
    std::vector<query_parameter> list;  // in the order given

    std::optional<std::string_view> find(std::string_view name) const noexcept {
        for (const query_parameter& p : list) {
            if (p.name == name) return std::string_view(p.value);
        }
        return std::nullopt;
    }
    bool contains(std::string_view name) const noexcept { return find(name).has_value(); }
};

/// Parses a query string (target_parts::query). Names and values are decoded ("+" is a space),
/// must be valid UTF-8 without NUL; names are case-sensitive and non-empty. Errors, all 400:
/// bad percent-encoding, NUL, invalid UTF-8, empty name ("=x"), a name given twice, more than
/// `parameters_max` parameters.
inline result<query_parameters> parse_query(std::string_view query, std::size_t parameters_max = query_parameters_max) {
    query_parameters out;
    while (!query.empty()) {
        const std::size_t amp = query.find('&');
        const std::string_view piece = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
        if (piece.empty()) continue;
        if (out.list.size() >= parameters_max) return http::error{400, "too many query parameters"};
        const std::size_t equals = piece.find('=');
        query_parameter parameter;
        const std::size_t unbounded = piece.size();
        if (auto failure = detail::percent_decode(piece.substr(0, equals), true, unbounded, 400, parameter.name)) {
            return *failure;
        }
        if (equals != std::string_view::npos) {
            if (auto failure =
                    detail::percent_decode(piece.substr(equals + 1), true, unbounded, 400, parameter.value)) {
                return *failure;
            }
        }
        if (parameter.name.empty()) return http::error{400, "empty query parameter name"};
        if (!detail::is_valid_utf8(parameter.name) || !detail::is_valid_utf8(parameter.value)) {
            return http::error{400, "query parameter is not valid UTF-8"};
        }
        if (out.contains(parameter.name)) return http::error{400, "duplicate query parameter"};
        out.list.push_back(std::move(parameter));
    }
    return out;
}

/// Percent-encodes every byte except the RFC 3986 unreserved characters (ALPHA DIGIT - . _ ~)
/// and, when `keep_slash`, "/". Upper-case hex. decode_key("/" + percent_encode(key)) == key
/// for every valid key.
inline std::string percent_encode(std::string_view bytes, bool keep_slash = true) {
    static constexpr char digits[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(bytes.size());
    for (const char c : bytes) {
        const bool unreserved = detail::is_alpha(c) || detail::is_digit(c) || c == '-' || c == '.' || c == '_' ||
                                c == '~' || (keep_slash && c == '/');
        if (unreserved) {
            out.push_back(c);
            continue;
        }
        const auto byte = static_cast<unsigned char>(c);
        out.push_back('%');
        out.push_back(digits[byte >> 4]);
        out.push_back(digits[byte & 15]);
    }
    return out;
}

}  // namespace toastyfs::http
