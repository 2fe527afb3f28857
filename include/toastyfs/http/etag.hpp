// Entity tags and the If-Match / If-None-Match preconditions (RFC 9110 §8.8.3, §13.1.1-2).
//
//   entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE     etagc = %x21 / %x23-7E / obs-text
//   If-Match = If-None-Match = "*" / #entity-tag
//
// Parsed tags view the field value they came from: keep it alive while using them.
// Syntax errors, "*" mixed with tags, and more than entity_tags_max tags are errors 400; the
// caller answers 400 rather than guessing what a broken precondition meant. An empty list is
// valid syntax and matches nothing.
#pragma once

#include <cassert>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "toastyfs/http/detail/text.hpp"
#include "toastyfs/http/error.hpp"

namespace toastyfs::http {

/// Most entity tags in one precondition (all its field lines together). More: 400.
inline constexpr std::size_t entity_tags_max = 64;

struct entity_tag {
    bool weak = false;
    std::string_view opaque;  // between the quotes

    friend bool operator==(const entity_tag&, const entity_tag&) = default;
};

/// Strong comparison: neither is weak and the opaque tags are equal (used by If-Match).
inline bool strong_match(const entity_tag& a, const entity_tag& b) noexcept {
    return !a.weak && !b.weak && a.opaque == b.opaque;
}
/// Weak comparison: the opaque tags are equal, weakness ignored (used by If-None-Match).
inline bool weak_match(const entity_tag& a, const entity_tag& b) noexcept { return a.opaque == b.opaque; }

struct entity_tag_list {
    bool any = false;  // "*"
    std::vector<entity_tag> tags;
};

namespace detail {

inline bool is_etag_char(char c) noexcept {
    const auto byte = static_cast<unsigned char>(c);
    return byte == 0x21 || (byte >= 0x23 && byte != 0x7F);
}

// Parses one entity-tag at text[at]; advances `at` past it.
inline std::optional<entity_tag> take_entity_tag(std::string_view text, std::size_t& at) {
    entity_tag tag;
    if (text.substr(at, 2) == "W/") {
        tag.weak = true;
        at += 2;
    }
    if (at >= text.size() || text[at] != '"') return std::nullopt;
    const std::size_t start = ++at;
    while (at < text.size() && is_etag_char(text[at])) ++at;
    if (at >= text.size() || text[at] != '"') return std::nullopt;
    tag.opaque = text.substr(start, at - start);
    ++at;
    return tag;
}

inline std::optional<http::error> append_entity_tags(std::string_view value, std::size_t tags_max,
                                                     entity_tag_list& out) {
    std::size_t at = 0;
    while (true) {
        while (at < value.size() && (is_ows(value[at]) || value[at] == ',')) ++at;  // empty elements
        if (at == value.size()) return std::nullopt;
        if (value[at] == '*') {
            if (out.any) return http::error{400, "\"*\" given twice"};
            out.any = true;
            ++at;
        } else {
            const std::optional<entity_tag> tag = take_entity_tag(value, at);
            if (!tag) return http::error{400, "malformed entity tag"};
            if (out.tags.size() >= tags_max) return http::error{400, "too many entity tags"};
            out.tags.push_back(*tag);
        }
        if (out.any && !out.tags.empty()) return http::error{400, "\"*\" mixed with entity tags"};
        while (at < value.size() && is_ows(value[at])) ++at;
        if (at < value.size() && value[at] != ',') return http::error{400, "malformed entity tag list"};
    }
}

}  // namespace detail

/// One entity tag filling the whole value (OWS around it allowed), e.g. an ETag field.
inline std::optional<entity_tag> parse_entity_tag(std::string_view value) {
    value = detail::trim_ows(value);
    std::size_t at = 0;
    std::optional<entity_tag> tag = detail::take_entity_tag(value, at);
    if (!tag || at != value.size()) return std::nullopt;
    return tag;
}

/// An If-Match or If-None-Match value.
inline result<entity_tag_list> parse_entity_tag_list(std::string_view value, std::size_t tags_max = entity_tags_max) {
    entity_tag_list out;
    if (const auto failure = detail::append_entity_tags(value, tags_max, out)) return *failure;
    return out;
}

/// Every field line of one precondition taken as one list (request_head::find_all).
inline result<entity_tag_list> parse_entity_tag_list(const std::vector<std::string_view>& values,
                                                     std::size_t tags_max = entity_tags_max) {
    entity_tag_list out;
    for (const std::string_view value : values) {
        if (const auto failure = detail::append_entity_tags(value, tags_max, out)) return *failure;
    }
    return out;
}

/// If-Match: true (go on) if "*" and the resource exists, or a listed tag strongly matches the
/// current one. False: answer 412. `current` is nullopt when the resource does not exist.
inline bool if_match_passes(const entity_tag_list& condition, const std::optional<entity_tag>& current) noexcept {
    if (!current) return false;
    if (condition.any) return true;
    for (const entity_tag& tag : condition.tags) {
        if (strong_match(tag, *current)) return true;
    }
    return false;
}

/// If-None-Match: false if "*" and the resource exists, or a listed tag weakly matches the
/// current one. False: answer 304 to GET/HEAD, 412 to other methods.
inline bool if_none_match_passes(const entity_tag_list& condition, const std::optional<entity_tag>& current) noexcept {
    if (!current) return true;
    if (condition.any) return false;
    for (const entity_tag& tag : condition.tags) {
        if (weak_match(tag, *current)) return false;
    }
    return true;
}

/// `"opaque"` or `W/"opaque"`. The opaque part must hold only etagc bytes (asserted: tags are
/// made by the server, e.g. from a digest in hex).
inline std::string format_entity_tag(const entity_tag& tag) {
    for ([[maybe_unused]] const char c : tag.opaque) assert(detail::is_etag_char(c));
    std::string out = tag.weak ? "W/\"" : "\"";
    out += tag.opaque;
    out += '"';
    return out;
}

}  // namespace toastyfs::http
