#define BOOST_TEST_MODULE http_json
// The header under test comes first: proves it is self-contained.
#include "toastyfs/http/json.hpp"

#ifndef BOOST_TEST_DYN_LINK  // meson's boost dependency may define it already
#define BOOST_TEST_DYN_LINK
#endif
#include <boost/test/unit_test.hpp>

#include <string>

namespace {
namespace http = toastyfs::http;
using namespace std::string_literals;
}  // namespace

BOOST_AUTO_TEST_CASE(plain_text_is_quoted) {
    BOOST_TEST(http::json_string("") == "\"\"");
    BOOST_TEST(http::json_string("a/b c") == "\"a/b c\"");
}

BOOST_AUTO_TEST_CASE(quotes_backslashes_and_controls_are_escaped) {
    BOOST_TEST(http::json_string("a\"b") == R"("a\"b")");
    BOOST_TEST(http::json_string("a\\b") == R"("a\\b")");
    BOOST_TEST(http::json_string("\n\t\r") == R"("\u000a\u0009\u000d")");
    BOOST_TEST(http::json_string("\x00\x1f"s) == R"("\u0000\u001f")");
    BOOST_TEST(http::json_string("\x7F") == "\"\x7F\"");  // DEL is legal in JSON
}

BOOST_AUTO_TEST_CASE(utf8_passes_through) {
    BOOST_TEST(http::json_string("caf\xC3\xA9 \xF0\x9F\x8D\x9E") == "\"caf\xC3\xA9 \xF0\x9F\x8D\x9E\"");
}

BOOST_AUTO_TEST_CASE(invalid_utf8_becomes_replacement_characters) {
    BOOST_TEST(http::json_string("a\xFF"
                                 "b") ==
               "\"a\xEF\xBF\xBD"
               "b\"");
    BOOST_TEST(http::json_string("\xC0\xAF") == "\"\xEF\xBF\xBD\xEF\xBF\xBD\"");
    BOOST_TEST(http::json_string("\xED\xA0\x80") == "\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\"");
    BOOST_TEST(http::json_string("\xE2\x82") == "\"\xEF\xBF\xBD\xEF\xBF\xBD\"");
}

BOOST_AUTO_TEST_CASE(appends) {
    std::string out = "{\"key\":";
    http::append_json_string(out, "k");
    out += "}";
    BOOST_TEST(out == R"({"key":"k"})");
}
