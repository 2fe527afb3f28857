#define BOOST_TEST_MODULE http_etag
// The header under test comes first: proves it is self-contained.
#include "toastyfs/http/etag.hpp"

#ifndef BOOST_TEST_DYN_LINK  // meson's boost dependency may define it already
#define BOOST_TEST_DYN_LINK
#endif
#include <boost/test/unit_test.hpp>

#include <optional>
#include <string>
#include <vector>

namespace {
namespace http = toastyfs::http;
using http::entity_tag;

http::entity_tag_list list_of(std::string_view value) {
    auto parsed = http::parse_entity_tag_list(value);
    BOOST_REQUIRE_MESSAGE(parsed.has_value(), value << ": " << (parsed ? "" : parsed.error().reason));
    return std::move(parsed).value();
}

const std::optional<entity_tag> strong_abc = entity_tag{false, "abc"};
const std::optional<entity_tag> weak_abc = entity_tag{true, "abc"};
const std::optional<entity_tag> missing;

}  // namespace

BOOST_AUTO_TEST_CASE(parses_lists) {
    const auto l = list_of(R"("abc", W/"def" ,"",, "a,b" )");
    BOOST_TEST(!l.any);
    BOOST_REQUIRE_EQUAL(l.tags.size(), 4u);
    BOOST_TEST((l.tags[0] == entity_tag{false, "abc"}));
    BOOST_TEST((l.tags[1] == entity_tag{true, "def"}));
    BOOST_TEST((l.tags[2] == entity_tag{false, ""}));
    BOOST_TEST((l.tags[3] == entity_tag{false, "a,b"}));  // commas are etagc
    BOOST_TEST(list_of("*").any);
    BOOST_TEST(list_of(" * ").any);
    BOOST_TEST(list_of("").tags.empty());
    BOOST_TEST(list_of("\"\xC3\xA9\"").tags.size() == 1u);  // obs-text
}

BOOST_AUTO_TEST_CASE(malformed_lists_are_400) {
    const std::vector<std::string> bad = {
        "abc",      "\"abc",    "abc\"", "w/\"abc\"", "W/abc",   "W/ \"abc\"", "\"a\"\"b\"", "\"a\" \"b\"",
        "*, \"a\"", "\"a\", *", "*, *",  "**",        "\"a b\"", "\"a\x01\"",  "\"a\"x",
    };
    for (const std::string& value : bad) {
        BOOST_TEST_CONTEXT("value: " << value) {
            const auto parsed = http::parse_entity_tag_list(value);
            BOOST_TEST(!parsed.has_value());
            if (!parsed.has_value()) BOOST_TEST(parsed.error().status == 400);
        }
    }
}

BOOST_AUTO_TEST_CASE(tag_count_is_bounded) {
    std::string value;
    for (int i = 0; i < 64; ++i) value.append("\"t").append(std::to_string(i)).append("\",");
    BOOST_TEST(http::parse_entity_tag_list(value).has_value());
    BOOST_TEST(!http::parse_entity_tag_list(value + "\"one-more\"").has_value());
    // The bound spans every field line of the precondition.
    const std::vector<std::string_view> lines = {value, "\"one-more\""};
    BOOST_TEST(!http::parse_entity_tag_list(lines).has_value());
    const std::vector<std::string_view> two = {"\"a\"", "W/\"b\""};
    BOOST_TEST(http::parse_entity_tag_list(two).value().tags.size() == 2u);
    const std::vector<std::string_view> mixed = {"*", "\"a\""};
    BOOST_TEST(!http::parse_entity_tag_list(mixed).has_value());
}

BOOST_AUTO_TEST_CASE(comparison_functions) {
    // RFC 9110 §8.8.3.2, the example table.
    const entity_tag w1{true, "1"}, w2{true, "2"}, s1{false, "1"};
    BOOST_TEST(!http::strong_match(w1, w1));
    BOOST_TEST(http::weak_match(w1, w1));
    BOOST_TEST(!http::strong_match(w1, w2));
    BOOST_TEST(!http::weak_match(w1, w2));
    BOOST_TEST(!http::strong_match(w1, s1));
    BOOST_TEST(http::weak_match(w1, s1));
    BOOST_TEST(http::strong_match(s1, s1));
    BOOST_TEST(http::weak_match(s1, s1));
}

BOOST_AUTO_TEST_CASE(if_match_uses_strong_comparison) {
    BOOST_TEST(http::if_match_passes(list_of("\"abc\""), strong_abc));
    BOOST_TEST(http::if_match_passes(list_of("\"x\", \"abc\""), strong_abc));
    BOOST_TEST(!http::if_match_passes(list_of("W/\"abc\""), strong_abc));
    BOOST_TEST(!http::if_match_passes(list_of("\"abc\""), weak_abc));
    BOOST_TEST(!http::if_match_passes(list_of("\"abd\""), strong_abc));
    BOOST_TEST(http::if_match_passes(list_of("*"), strong_abc));
    BOOST_TEST(!http::if_match_passes(list_of("*"), missing));
    BOOST_TEST(!http::if_match_passes(list_of("\"abc\""), missing));
    BOOST_TEST(!http::if_match_passes(list_of(""), strong_abc));
}

BOOST_AUTO_TEST_CASE(if_none_match_uses_weak_comparison) {
    BOOST_TEST(!http::if_none_match_passes(list_of("\"abc\""), strong_abc));
    BOOST_TEST(!http::if_none_match_passes(list_of("W/\"abc\""), strong_abc));
    BOOST_TEST(!http::if_none_match_passes(list_of("\"abc\""), weak_abc));
    BOOST_TEST(http::if_none_match_passes(list_of("\"x\", W/\"y\""), strong_abc));
    BOOST_TEST(!http::if_none_match_passes(list_of("*"), strong_abc));
    BOOST_TEST(http::if_none_match_passes(list_of("*"), missing));  // create-only PUT
    BOOST_TEST(http::if_none_match_passes(list_of("\"abc\""), missing));
    BOOST_TEST(http::if_none_match_passes(list_of(""), strong_abc));
}

BOOST_AUTO_TEST_CASE(single_tags_and_formatting) {
    BOOST_TEST((http::parse_entity_tag(" \"abc\" ") == std::optional<entity_tag>(entity_tag{false, "abc"})));
    BOOST_TEST((http::parse_entity_tag("W/\"abc\"") == std::optional<entity_tag>(entity_tag{true, "abc"})));
    BOOST_TEST(!http::parse_entity_tag("\"a\", \"b\"").has_value());
    BOOST_TEST(!http::parse_entity_tag("*").has_value());
    BOOST_TEST(!http::parse_entity_tag("").has_value());
    BOOST_TEST(http::format_entity_tag({false, "0123abcd"}) == "\"0123abcd\"");
    BOOST_TEST(http::format_entity_tag({true, "x"}) == "W/\"x\"");
    const std::string formatted = http::format_entity_tag({true, "round"});
    BOOST_TEST((http::parse_entity_tag(formatted) == std::optional<entity_tag>(entity_tag{true, "round"})));
}
