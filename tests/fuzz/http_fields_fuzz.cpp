// Fuzz target: the HTTP value parsers the proxy applies to request data:
//   uri.hpp   split_target, decode_key (percent-decoding, UTF-8), parse_query
//   range.hpp resolve_range            etag.hpp parse_entity_tag_list, parse_entity_tag
//   date.hpp  parse_http_date
// Input: a selector byte, (for ranges) a resource size, then the text.
// Invariants: a decoded key survives percent_encode + decode_key unchanged; a target's parts
// view the target; a satisfiable range lies inside the resource; a parsed entity tag formats
// and parses back to itself, and a list never mixes "*" with tags or exceeds its limit; a
// parsed date formats as IMF-fixdate and parses back to the same time.
#include "toastyfs/http/date.hpp"
#include "toastyfs/http/etag.hpp"
#include "toastyfs/http/range.hpp"
#include "toastyfs/http/uri.hpp"

#include "fuzz_support.hpp"

namespace {

namespace http = toastyfs::http;

/// "/" + text (not operator+: GCC 12 warns -Wrestrict on it, a known false positive).
std::string slash_then(std::string_view text) {
    std::string out("/");
    out.append(text);
    return out;
}

bool inside(std::string_view part, std::string_view whole) {
    return part.empty() || (part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size());
}

void check_target(std::string_view text) {
    const auto parts = http::split_target(text);
    if (!parts) {
        FUZZ_CHECK(parts.error().status >= 400);
        return;
    }
    FUZZ_CHECK(inside(parts->authority, text) && inside(parts->query, text));
    if (parts->form != http::target_form::asterisk) FUZZ_CHECK(!parts->path.empty() && parts->path.front() == '/');
    const auto key = http::decode_key(parts->path);
    if (key) {
        FUZZ_CHECK(!key->empty() && key->size() <= http::key_size_max);
        const auto again = http::decode_key(slash_then(http::percent_encode(*key)));
        FUZZ_CHECK(again && *again == *key);
        const auto again_encoded_slash = http::decode_key(slash_then(http::percent_encode(*key, false)));
        FUZZ_CHECK(again_encoded_slash && *again_encoded_slash == *key);
    }
    const auto query = http::parse_query(parts->query);
    if (query) {
        FUZZ_CHECK(query->list.size() <= http::query_parameters_max);
        for (const auto& p : query->list) FUZZ_CHECK(!p.name.empty() && query->find(p.name).has_value());
    }
}

void check_range(std::string_view text, std::uint64_t size) {
    const http::range_resolution r = http::resolve_range(text, size);
    FUZZ_CHECK(http::to_string(r.outcome) != nullptr);
    if (r.outcome == http::range_outcome::satisfiable) {
        FUZZ_CHECK(r.range.first <= r.range.last && r.range.last < size);
        FUZZ_CHECK(!http::content_range(r.range, size).empty());
    }
}

void check_tag(const http::entity_tag& tag) {
    const std::string formatted = http::format_entity_tag(tag);
    const auto again = http::parse_entity_tag(formatted);
    FUZZ_CHECK(again && *again == tag);
}

void check_tags(std::string_view text, fuzz::input& in) {
    if (const auto single = http::parse_entity_tag(text)) check_tag(*single);
    const std::size_t tags_max = in.boolean() ? in.below(4) : http::entity_tags_max;
    const auto list = http::parse_entity_tag_list(text, tags_max);
    if (!list) return;
    FUZZ_CHECK(!(list->any && !list->tags.empty()) && list->tags.size() <= tags_max);
    for (const auto& tag : list->tags) {
        check_tag(tag);
        (void)http::if_match_passes(*list, tag);
        (void)http::if_none_match_passes(*list, tag);
    }
    // Several field lines of one precondition: the text split at its first comma.
    const std::size_t comma = text.find(',');
    const std::vector<std::string_view> lines = {
        text.substr(0, comma), comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1)};
    (void)http::parse_entity_tag_list(lines, tags_max);
}

void check_date(std::string_view text) {
    const auto parsed = http::parse_http_date(text);
    if (!parsed) return;
    const std::string formatted = http::format_imf_fixdate(*parsed);
    FUZZ_CHECK(formatted.size() == 29);
    const auto again = http::parse_http_date(formatted);
    FUZZ_CHECK(again && *again == *parsed);
    FUZZ_CHECK(http::format_iso8601(*parsed).size() == 24);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz::input in(data, size);
    const std::uint8_t selector = in.u8();
    switch (selector % 4) {
        case 0: check_target(fuzz::input::as_text(in.rest())); break;
        case 1: {
            const std::uint8_t kind = in.u8();
            const std::uint64_t resource = kind < 64 ? kind : kind < 128 ? in.u64() : in.u16();
            check_range(fuzz::input::as_text(in.rest()), resource);
            break;
        }
        case 2: {
            fuzz::input options = in;  // the limit is read from the text's own first byte
            check_tags(fuzz::input::as_text(in.rest()), options);
            break;
        }
        case 3: check_date(fuzz::input::as_text(in.rest())); break;
    }
    return 0;
}
