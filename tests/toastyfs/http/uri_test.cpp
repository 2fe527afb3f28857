#define BOOST_TEST_MODULE http_uri
// The header under test comes first: proves it is self-contained.
#include "toastyfs/http/uri.hpp"

#ifndef BOOST_TEST_DYN_LINK  // meson's boost dependency may define it already
#define BOOST_TEST_DYN_LINK
#endif
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace {
namespace http = toastyfs::http;
using namespace std::string_literals;

std::uint16_t key_error(std::string_view path) {
    const http::result<std::string> key = http::decode_key(path);
    return key.has_value() ? 0 : key.error().status;
}

std::string key_of(std::string_view path) {
    http::result<std::string> key = http::decode_key(path);
    BOOST_REQUIRE_MESSAGE(key.has_value(), "path " << path << ": " << (key ? "" : key.error().reason));
    return std::move(key).value();
}

std::uint16_t split_error(std::string_view target) {
    const auto parts = http::split_target(target);
    return parts.has_value() ? 0 : parts.error().status;
}

std::uint16_t query_error(std::string_view query) {
    const auto parsed = http::parse_query(query);
    return parsed.has_value() ? 0 : parsed.error().status;
}

}  // namespace

BOOST_AUTO_TEST_CASE(origin_form_splits_path_and_query) {
    auto parts = http::split_target("/a/b?x=1&y");
    BOOST_REQUIRE(parts.has_value());
    BOOST_TEST((parts->form == http::target_form::origin));
    BOOST_TEST(parts->path == "/a/b");
    BOOST_TEST(parts->has_query);
    BOOST_TEST(parts->query == "x=1&y");
    parts = http::split_target("/a?");
    BOOST_TEST(parts->has_query);
    BOOST_TEST(parts->query.empty());
    parts = http::split_target("/a");
    BOOST_TEST(!parts->has_query);
    parts = http::split_target("/a?b?c");  // only the first "?" splits
    BOOST_TEST(parts->path == "/a");
    BOOST_TEST(parts->query == "b?c");
}

BOOST_AUTO_TEST_CASE(absolute_form_uses_its_path) {
    auto parts = http::split_target("http://example.com:8080/a/b?q=1");
    BOOST_REQUIRE(parts.has_value());
    BOOST_TEST((parts->form == http::target_form::absolute));
    BOOST_TEST(parts->authority == "example.com:8080");
    BOOST_TEST(parts->path == "/a/b");
    BOOST_TEST(parts->query == "q=1");
    parts = http::split_target("HTTPS://h");
    BOOST_REQUIRE(parts.has_value());
    BOOST_TEST(parts->path == "/");
    parts = http::split_target("http://h?x");
    BOOST_TEST(parts->path == "/");
    BOOST_TEST(parts->query == "x");
    BOOST_TEST(split_error("ftp://h/a") == 400);
    BOOST_TEST(split_error("http:///a") == 400);
    BOOST_TEST(split_error("http://user@h/a") == 400);
    BOOST_TEST(split_error("example.com:443") == 400);  // authority-form
    BOOST_TEST(split_error("a/b") == 400);
}

BOOST_AUTO_TEST_CASE(asterisk_form_and_invalid_targets) {
    const auto parts = http::split_target("*");
    BOOST_REQUIRE(parts.has_value());
    BOOST_TEST((parts->form == http::target_form::asterisk));
    BOOST_TEST(split_error("") == 400);
    BOOST_TEST(split_error("/a#frag") == 400);
    BOOST_TEST(split_error("/a b") == 400);
    BOOST_TEST(split_error("/a\x01") == 400);
    BOOST_TEST(split_error("/caf\xC3\xA9") == 400);  // raw non-ASCII must be percent-encoded
}

BOOST_AUTO_TEST_CASE(keys_are_decoded_paths_without_the_leading_slash) {
    BOOST_TEST(key_of("/a/b") == "a/b");
    BOOST_TEST(key_of("/a%2Fb") == "a/b");
    BOOST_TEST(key_of("/a%2fb") == "a/b");
    BOOST_TEST(key_of("/a+b") == "a+b");  // "+" is literal in paths
    BOOST_TEST(key_of("/%20x%20") == " x ");
    BOOST_TEST(key_of("/a//b/../c/.") == "a//b/../c/.");  // no normalization
    BOOST_TEST(key_of("/caf%C3%A9") == "caf\xC3\xA9");
    BOOST_TEST(key_of("/%F0%9F%8D%9E") == "\xF0\x9F\x8D\x9E");  // U+1F35E, 4 bytes
    BOOST_TEST(key_of("/%EF%BF%BF") == "\xEF\xBF\xBF");         // U+FFFF
    BOOST_TEST(key_of("/%F4%8F%BF%BF") == "\xF4\x8F\xBF\xBF");  // U+10FFFF
    BOOST_TEST(key_of("//") == "/");
    BOOST_TEST(http::is_service_root("/"));
    BOOST_TEST(!http::is_service_root("/a"));
    BOOST_TEST(key_error("/") == 400);  // the service root names no object
    BOOST_TEST(key_error("") == 400);
    BOOST_TEST(key_error("a") == 400);
}

BOOST_AUTO_TEST_CASE(bad_percent_encoding_is_400) {
    BOOST_TEST(key_error("/%00") == 400);
    BOOST_TEST(key_error("/a%00b") == 400);
    BOOST_TEST(key_error("/%zz") == 400);
    BOOST_TEST(key_error("/%g0") == 400);
    BOOST_TEST(key_error("/%0g") == 400);
    BOOST_TEST(key_error("/%") == 400);
    BOOST_TEST(key_error("/a%") == 400);
    BOOST_TEST(key_error("/a%4") == 400);
    BOOST_TEST(key_error("/%%41") == 400);
    BOOST_TEST(key_error("/a b") == 400);
    BOOST_TEST(key_error("/a\x7F") == 400);
}

BOOST_AUTO_TEST_CASE(invalid_utf8_is_400) {
    BOOST_TEST(key_error("/%C0%AF") == 400);        // overlong "/"
    BOOST_TEST(key_error("/%C1%BF") == 400);        // overlong
    BOOST_TEST(key_error("/%E0%80%AF") == 400);     // overlong, 3 bytes
    BOOST_TEST(key_error("/%F0%80%80%AF") == 400);  // overlong, 4 bytes
    BOOST_TEST(key_error("/%ED%A0%80") == 400);     // U+D800 surrogate
    BOOST_TEST(key_error("/%ED%BF%BF") == 400);     // U+DFFF surrogate
    BOOST_TEST(key_error("/%F4%90%80%80") == 400);  // U+110000
    BOOST_TEST(key_error("/%F5%80%80%80") == 400);
    BOOST_TEST(key_error("/%FF") == 400);
    BOOST_TEST(key_error("/%80") == 400);      // stray continuation
    BOOST_TEST(key_error("/%C3") == 400);      // truncated
    BOOST_TEST(key_error("/%E2%82") == 400);   // truncated
    BOOST_TEST(key_error("/%C3x") == 400);     // lead without continuation
    BOOST_TEST(key_error("/%ED%9F%BF") == 0);  // U+D7FF, just below the surrogates
}

BOOST_AUTO_TEST_CASE(key_size_limit_is_exact_and_never_truncates) {
    BOOST_TEST(key_of("/" + std::string(1024, 'k')).size() == 1024u);
    BOOST_TEST(key_error("/" + std::string(1025, 'k')) == 414);
    // Counted after decoding: 1024 encoded bytes are 3072 characters in the path.
    std::string encoded = "/";
    for (int i = 0; i < 1024; ++i) encoded += "%41";
    BOOST_TEST(key_of(encoded).size() == 1024u);
    BOOST_TEST(key_error(encoded + "%41") == 414);
    BOOST_TEST(key_error(encoded + "a") == 414);
    // A multi-byte character straddling the limit is refused, not cut.
    BOOST_TEST(key_error("/" + std::string(1023, 'k') + "%C3%A9") == 414);
    BOOST_TEST(http::decode_key("/abcd", 3).error().status == 414);
    BOOST_TEST(http::decode_key("/abc", 3).value() == "abc");
}

BOOST_AUTO_TEST_CASE(query_parameters) {
    const auto query = http::parse_query("prefix=a%2Fb+c&max-keys=10&&flag&empty=&x=a=b");
    BOOST_REQUIRE(query.has_value());
    BOOST_TEST(query->list.size() == 5u);
    BOOST_TEST(query->find("prefix").value() == "a/b c");
    BOOST_TEST(query->find("max-keys").value() == "10");
    BOOST_TEST(query->find("flag").value() == "");
    BOOST_TEST(query->find("empty").value() == "");
    BOOST_TEST(query->find("x").value() == "a=b");
    BOOST_TEST(!query->find("PREFIX").has_value());  // names are case-sensitive
    BOOST_TEST(http::parse_query("").value().list.empty());
    BOOST_TEST(http::parse_query("&&").value().list.empty());
    BOOST_TEST(http::parse_query("a+b=%2B").value().find("a b").value() == "+");
}

BOOST_AUTO_TEST_CASE(query_errors) {
    BOOST_TEST(query_error("a=1&a=2") == 400);    // duplicates: error, neither wins
    BOOST_TEST(query_error("a=1&%61=2") == 400);  // duplicate after decoding
    BOOST_TEST(query_error("=x") == 400);
    BOOST_TEST(query_error("a=%") == 400);
    BOOST_TEST(query_error("a=%zz") == 400);
    BOOST_TEST(query_error("a=%00") == 400);
    BOOST_TEST(query_error("a=%C0%AF") == 400);
    BOOST_TEST(query_error("%FF=1") == 400);
    std::string many;
    for (int i = 0; i < 64; ++i) many.append("p").append(std::to_string(i)).append("=v&");
    BOOST_TEST(query_error(many) == 0);
    BOOST_TEST(query_error(many + "last=v") == 400);
    BOOST_TEST(http::parse_query("a=1&b=2", 1).error().status == 400);
}

BOOST_AUTO_TEST_CASE(percent_encode_round_trips) {
    BOOST_TEST(http::percent_encode("a/b c+d") == "a/b%20c%2Bd");
    BOOST_TEST(http::percent_encode("a/b", false) == "a%2Fb");
    BOOST_TEST(http::percent_encode("AZaz09-._~") == "AZaz09-._~");
    BOOST_TEST(http::percent_encode("caf\xC3\xA9%") == "caf%C3%A9%25");
    const std::vector<std::string> keys = {"k", "a/b/c", "sp ace", "100%", "q?x#y&z=1", "\xF0\x9F\x8D\x9E", "+"};
    for (const std::string& key : keys) BOOST_TEST(key_of(std::string("/").append(http::percent_encode(key))) == key);
}
