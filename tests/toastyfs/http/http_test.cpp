#define BOOST_TEST_MODULE http_umbrella
// The umbrella header comes first: proves it is self-contained. This executable links two
// translation units that both include it (http_odr_other.cpp): header-only ODR safety.
#include "toastyfs/http/http.hpp"

#ifndef BOOST_TEST_DYN_LINK  // meson's boost dependency may define it already
#define BOOST_TEST_DYN_LINK
#endif
#include <boost/test/unit_test.hpp>

#include <string>
#include <string_view>

namespace http_odr {
std::string respond_other(std::string_view request);
}

namespace {

namespace http = toastyfs::http;

// A miniature server: parse one request, decode its key, answer with a JSON body.
std::string respond(std::string_view request) {
    http::request_parser parser;
    const http::parse_result r = parser.feed(request);
    http::response_head head;
    std::string body;
    if (r.event == http::parse_event::error) {
        head.status = r.error.status;
    } else if (r.event != http::parse_event::head_done) {
        head.status = 400;
    } else {
        const auto parts = http::split_target(parser.head().target);
        const auto key = parts ? http::decode_key(parts->path) : http::result<std::string>(parts.error());
        head.status = key ? 200 : key.error().status;
        if (key) {
            body = "{\"key\":";
            http::append_json_string(body, *key);
            body += ",\"date\":\"" + http::format_iso8601(0) + "\"}";
        }
    }
    head.set_content_length(body.size());
    std::string out;
    BOOST_REQUIRE(http::append_response_head(head, out).has_value());
    return out + body;
}

}  // namespace

BOOST_AUTO_TEST_CASE(both_translation_units_agree) {
    const std::string request = "GET /caf%C3%A9%22 HTTP/1.1\r\nHost: h\r\n\r\n";
    const std::string expected =
        "HTTP/1.1 200 OK\r\nContent-Length: "
        "51\r\n\r\n{\"key\":\"caf\xC3\xA9\\\"\",\"date\":\"1970-01-01T00:00:00.000Z\"}";
    BOOST_TEST(respond(request) == expected);
    BOOST_TEST(http_odr::respond_other(request) == expected);
    BOOST_TEST(respond("GET /%zz HTTP/1.1\r\nHost: h\r\n\r\n") ==
               "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
    BOOST_TEST(http_odr::respond_other("GET / HTTP/2.0\r\n\r\n") ==
               "HTTP/1.1 505 HTTP Version Not Supported\r\nContent-Length: 0\r\n\r\n");
}
