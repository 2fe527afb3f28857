#define BOOST_TEST_MODULE http_request_parser
// The header under test comes first: proves it is self-contained.
#include "toastyfs/http/request_parser.hpp"

#ifndef BOOST_TEST_DYN_LINK  // meson's boost dependency may define it already
#define BOOST_TEST_DYN_LINK
#endif
#include <boost/test/unit_test.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <ostream>
#include <random>
#include <string>
#include <string_view>
#include <vector>

// Lets BOOST_TEST print these types when an assertion fails (found by ADL).
namespace toastyfs::http {
inline std::ostream& boost_test_print_type(std::ostream& os, const error& e) {
    return os << e.status << " (" << e.reason << ")";
}
inline std::ostream& boost_test_print_type(std::ostream& os, parse_event e) { return os << to_string(e); }
inline std::ostream& boost_test_print_type(std::ostream& os, body_framing f) { return os << static_cast<int>(f); }
inline std::ostream& boost_test_print_type(std::ostream& os, http_version v) { return os << static_cast<int>(v); }
}  // namespace toastyfs::http

namespace {

namespace http = toastyfs::http;
using namespace std::string_literals;

std::string describe(const http::request_head& head) {
    std::string text =
        head.method + " " + head.target + (head.version == http::http_version::http_1_1 ? " 1.1" : " 1.0");
    for (const http::field& f : head.headers) text += " [" + f.name + "=" + f.value + "]";
    text += head.keep_alive ? " keep-alive" : " close";
    text += head.expect_continue ? " expect-continue" : "";
    text += " framing=" + std::to_string(static_cast<int>(head.framing)) + "/" + std::to_string(head.content_length);
    return text;
}

// Everything a parser reported over one input stream.
struct outcome {
    std::vector<http::request_head> heads;
    std::vector<std::string> bodies;  // one per completed or started message body
    std::size_t messages = 0;
    std::optional<http::error> failure;
    std::vector<std::string> trace;  // events in order; adjacent body_data merged
};

// Feeds `data` to a parser in pieces of next_piece() bytes, the way a connection would: keeps
// unconsumed bytes, appends the next piece, and calls feed() until need_more.
template <typename NextPiece>
outcome drive(std::string_view data, NextPiece next_piece, const http::request_parser_options& options = {}) {
    http::request_parser parser(options);
    outcome out;
    std::string pending;
    std::size_t offered = 0;
    while (true) {
        while (!out.failure) {
            const http::parse_result r = parser.feed(std::string_view(pending));
            BOOST_REQUIRE_LE(r.consumed, pending.size());
            if (r.event == http::parse_event::need_more) {
                BOOST_REQUIRE_EQUAL(r.consumed, pending.size());
            } else if (r.event == http::parse_event::head_done) {
                out.heads.push_back(parser.head());
                out.bodies.emplace_back();
                out.trace.push_back("head " + describe(parser.head()));
            } else if (r.event == http::parse_event::body_data) {
                BOOST_REQUIRE(!r.body.empty());
                BOOST_REQUIRE(r.body.data() >= reinterpret_cast<const std::uint8_t*>(pending.data()));
                out.bodies.back() += r.body_text();
                if (out.trace.back().rfind("body ", 0) != 0) out.trace.emplace_back("body ");
                out.trace.back() += r.body_text();
            } else if (r.event == http::parse_event::message_done) {
                ++out.messages;
                out.trace.emplace_back("done");
            } else {
                out.failure = r.error;
                out.trace.push_back("error " + std::to_string(r.error.status) + " " + std::string(r.error.reason));
            }
            pending.erase(0, r.consumed);
            if (r.event == http::parse_event::need_more) break;
        }
        if (out.failure || offered == data.size()) return out;
        const std::size_t size = std::min(next_piece(), data.size() - offered);
        pending.append(data.substr(offered, size));
        offered += size;
    }
}

outcome whole(std::string_view data, const http::request_parser_options& options = {}) {
    return drive(
        data, [&] { return data.size(); }, options);
}
outcome bytewise(std::string_view data, const http::request_parser_options& options = {}) {
    return drive(
        data, [] { return std::size_t{1}; }, options);
}

// The status of the error the input provokes, or 0 if none (fed whole and byte by byte, which
// must agree).
std::uint16_t status_of(std::string_view data, const http::request_parser_options& options = {}) {
    const outcome a = whole(data, options);
    const outcome b = bytewise(data, options);
    BOOST_TEST(a.trace == b.trace, boost::test_tools::per_element());
    return a.failure ? a.failure->status : 0;
}

std::string get(std::string_view target = "/key", std::string_view fields = "Host: h\r\n") {
    return "GET "s + std::string(target) + " HTTP/1.1\r\n" + std::string(fields) + "\r\n";
}

std::string with_fields(std::string_view fields) {
    return "PUT /k HTTP/1.1\r\nHost: h\r\n"s + std::string(fields) + "\r\n";
}

}  // namespace

// ---- heads ----------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(simple_get) {
    const outcome o = whole("GET /a/b?x=1 HTTP/1.1\r\nHost: example\r\nAccept: */*\r\n\r\n");
    BOOST_REQUIRE(!o.failure);
    BOOST_REQUIRE_EQUAL(o.heads.size(), 1u);
    const http::request_head& head = o.heads[0];
    BOOST_TEST(head.method == "GET");
    BOOST_TEST(head.target == "/a/b?x=1");
    BOOST_TEST(head.version == http::http_version::http_1_1);
    BOOST_TEST(head.headers.size() == 2u);
    BOOST_TEST(head.keep_alive);
    BOOST_TEST(!head.expect_continue);
    BOOST_TEST(head.framing == http::body_framing::none);
    BOOST_TEST(o.messages == 1u);
    BOOST_TEST(o.bodies[0].empty());
}

BOOST_AUTO_TEST_CASE(fields_are_found_case_insensitively_in_order_with_values_trimmed) {
    const outcome o = whole(get("/", "Host: h\r\nX-Tag:  one \t\r\nx-tag:two\r\nX-TAG:\r\nOther: a  b\r\n"));
    BOOST_REQUIRE_EQUAL(o.heads.size(), 1u);
    const http::request_head& head = o.heads[0];
    BOOST_TEST(head.find("x-TAG").value() == "one");
    const std::vector<std::string_view> all = head.find_all("X-Tag");
    BOOST_TEST(all == (std::vector<std::string_view>{"one", "two", ""}), boost::test_tools::per_element());
    BOOST_TEST(head.find("other").value() == "a  b");  // inner whitespace kept
    BOOST_TEST(!head.find("missing").has_value());
    BOOST_TEST(head.headers[1].name == "X-Tag");  // names keep their case
}

BOOST_AUTO_TEST_CASE(value_may_hold_obs_text_and_tabs) {
    const outcome o = whole(get("/", "Host: h\r\nX: caf\xC3\xA9\tbar\r\n"));
    BOOST_REQUIRE(!o.failure);
    BOOST_TEST(o.heads[0].find("x").value() == "caf\xC3\xA9\tbar");
}

BOOST_AUTO_TEST_CASE(empty_input_needs_more) {
    http::request_parser parser;
    const http::parse_result r = parser.feed(std::string_view());
    BOOST_TEST(r.event == http::parse_event::need_more);
    BOOST_TEST(r.consumed == 0u);
}

BOOST_AUTO_TEST_CASE(leading_empty_lines_are_skipped_up_to_the_limit) {
    BOOST_TEST(status_of("\r\n\r\n" + get()) == 0);
    BOOST_TEST(status_of("\r\n\r\n\r\n\r\n" + get()) == 0);        // 4: the default limit
    BOOST_TEST(status_of("\r\n\r\n\r\n\r\n\r\n" + get()) == 400);  // 5
    BOOST_TEST(status_of("\n" + get()) == 400);                    // bare LF even there
}

// ---- request line ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(malformed_request_lines_are_400) {
    const std::vector<std::string> lines = {
        "GET  /a HTTP/1.1",
        "GET /a  HTTP/1.1",
        "GET /a HTTP/1.1 ",
        " GET /a HTTP/1.1",
        "GET /a",
        "GET",
        "G(T /a HTTP/1.1",
        "GET /a\x01z HTTP/1.1",
        "GET /a\x80z HTTP/1.1",
        "GET /a\x7Fz HTTP/1.1",
        "GET /a http/1.1",
        "GET /a HTTP/1.1x",
        "GET /a HTTP/1",
        "GET /a HTTP/10.0",
        "GET /a HTTPS/1.1",
        "GET\t/a HTTP/1.1",
        "GET /a HTTP/1.1\x00"s,
        "\x00GET /a HTTP/1.1"s,
        "GET /a HTTP/a.b",
    };
    for (const std::string& line : lines) {
        BOOST_TEST_CONTEXT("line: " << line) { BOOST_TEST(status_of(line + "\r\nHost: h\r\n\r\n") == 400); }
    }
}

BOOST_AUTO_TEST_CASE(unsupported_versions_are_505) {
    BOOST_TEST(status_of("GET / HTTP/2.0\r\nHost: h\r\n\r\n") == 505);
    BOOST_TEST(status_of("GET / HTTP/1.2\r\nHost: h\r\n\r\n") == 505);
    BOOST_TEST(status_of("GET / HTTP/0.9\r\nHost: h\r\n\r\n") == 505);
    BOOST_TEST(status_of("GET / HTTP/3.0\r\n\r\n") == 505);
    // The HTTP/2 connection preface.
    BOOST_TEST(status_of("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") == 505);
}

BOOST_AUTO_TEST_CASE(line_endings_must_be_crlf) {
    BOOST_TEST(status_of("GET / HTTP/1.1\nHost: h\r\n\r\n") == 400);
    BOOST_TEST(status_of("GET / HTTP/1.1\r\nHost: h\n\r\n") == 400);
    BOOST_TEST(status_of("GET / HTTP/1.1\r\nHost: h\r\n\n") == 400);
    BOOST_TEST(status_of("GET / HTTP/1.1\rHost: h\r\n\r\n") == 400);
    BOOST_TEST(status_of("GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n") == 400);
    BOOST_TEST(status_of("GET / HTTP/1.1\r\r\n") == 400);
}

BOOST_AUTO_TEST_CASE(request_line_limit_gives_414_inside_the_target_and_400_elsewhere) {
    http::request_parser_options options;
    options.request_line_max = 64;
    const auto line_of = [](std::size_t method, std::size_t target, std::string_view version) {
        return std::string(method, 'M') + " /" + std::string(target - 1, 't') + " " + std::string(version) +
               "\r\nHost: h\r\n\r\n";
    };
    // "M /t HTTP/1.1" = method + 1 + target + 1 + 8 bytes.
    BOOST_TEST(status_of(line_of(3, 64 - 13, "HTTP/1.1"), options) == 0);    // exactly 64
    BOOST_TEST(status_of(line_of(3, 64 - 12, "HTTP/1.1"), options) == 400);  // 65: the limit falls in the version
    BOOST_TEST(status_of(line_of(3, 64 - 3, "HTTP/1.1"), options) == 414);   // byte 65 is in the target
    BOOST_TEST(status_of(line_of(3, 200, "HTTP/1.1"), options) == 414);
    BOOST_TEST(status_of(std::string(100, 'M') + " / HTTP/1.1\r\n\r\n", options) == 400);          // method
    BOOST_TEST(status_of("GET / HTTP/1.1" + std::string(100, 'x') + "\r\n\r\n", options) == 400);  // version
    // The default: 8 KiB.
    BOOST_TEST(status_of(get("/" + std::string(8 * 1024, 'k'))) == 414);
    BOOST_TEST(status_of(get("/" + std::string(8 * 1024 - 20, 'k'))) == 0);
}

BOOST_AUTO_TEST_CASE(line_limit_error_comes_before_the_line_ends) {
    http::request_parser_options options;
    options.request_line_max = 16;
    http::request_parser parser(options);
    const http::parse_result r = parser.feed(std::string_view("GET /" + std::string(1000, 'a')));
    BOOST_TEST(r.event == http::parse_event::error);
    BOOST_TEST(r.error.status == 414);
}

// ---- header section -------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(malformed_field_lines_are_400) {
    const std::vector<std::string> lines = {
        "X : y",
        "X\t: y",
        "X y: z",
        ": y",
        "X",
        " X: y",
        "\tX: y",
        "X: a\x00"
        "b"s,
        "X: a\x01",
        "X: a\x7F",
        "X\x80: y",
        "X(y): z",
        "X: y\r\n continued",
    };
    for (const std::string& line : lines) {
        BOOST_TEST_CONTEXT("field: " << line) { BOOST_TEST(status_of(get("/", "Host: h\r\n" + line + "\r\n")) == 400); }
    }
    BOOST_TEST(whole(get("/", "Host: h\r\n X: y\r\n")).failure->reason == "obsolete line folding");
    BOOST_TEST(whole(get("/", "Host: h\r\nX : y\r\n")).failure->reason == "whitespace before colon");
}

BOOST_AUTO_TEST_CASE(header_section_size_limit_is_431) {
    http::request_parser_options options;
    options.header_bytes_max = 100;
    const std::string start = "GET / HTTP/1.1\r\n";
    // One field line "Host: <n>\r\n" plus the final CRLF.
    const auto request = [&](std::size_t total) {
        return start + "Host: " + std::string(total - 2 - 8, 'h') + "\r\n\r\n";
    };
    BOOST_TEST(status_of(request(100), options) == 0);
    BOOST_TEST(status_of(request(101), options) == 431);
    BOOST_TEST(status_of(get("/", "Host: h\r\nBig: " + std::string(16 * 1024, 'v') + "\r\n")) == 431);
}

BOOST_AUTO_TEST_CASE(header_count_limit_is_431) {
    std::string fields = "Host: h\r\n";
    for (int i = 1; i < 100; ++i) fields.append("F").append(std::to_string(i)).append(": v\r\n");
    BOOST_TEST(status_of(get("/", fields)) == 0);  // 100 fields
    BOOST_TEST(status_of(get("/", fields + "Last: v\r\n")) == 431);
}

BOOST_AUTO_TEST_CASE(host_is_required_once_in_http_1_1) {
    BOOST_TEST(status_of("GET / HTTP/1.1\r\n\r\n") == 400);
    BOOST_TEST(status_of("GET / HTTP/1.0\r\n\r\n") == 0);
    BOOST_TEST(status_of(get("/", "Host: a\r\nHost: a\r\n")) == 400);
    BOOST_TEST(status_of("GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n") == 400);
    http::request_parser_options options;
    options.host_required = false;
    BOOST_TEST(status_of("GET / HTTP/1.1\r\n\r\n", options) == 0);
    BOOST_TEST(status_of(get("/", "Host: a\r\nHost: a\r\n"), options) == 400);
}

BOOST_AUTO_TEST_CASE(keep_alive_rules) {
    const auto keep_alive = [](std::string_view request) {
        const outcome o = whole(request);
        BOOST_REQUIRE(!o.failure);
        return o.heads.at(0).keep_alive;
    };
    BOOST_TEST(keep_alive("GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
    BOOST_TEST(!keep_alive("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"));
    BOOST_TEST(!keep_alive("GET / HTTP/1.1\r\nHost: h\r\nConnection: CLOSE\r\n\r\n"));
    BOOST_TEST(!keep_alive("GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, close\r\n\r\n"));
    BOOST_TEST(!keep_alive("GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n"));
    BOOST_TEST(keep_alive("GET / HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\n\r\n"));
    BOOST_TEST(keep_alive("GET / HTTP/1.1\r\nHost: h\r\nConnection: closed\r\n\r\n"));  // not "close"
    BOOST_TEST(!keep_alive("GET / HTTP/1.0\r\n\r\n"));
    BOOST_TEST(keep_alive("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
    BOOST_TEST(keep_alive("GET / HTTP/1.0\r\nConnection: foo , keep-alive\r\n\r\n"));
    BOOST_TEST(!keep_alive("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n"));
}

BOOST_AUTO_TEST_CASE(expect_100_continue) {
    const auto head_of = [](std::string_view request) {
        const outcome o = whole(request);
        BOOST_REQUIRE(!o.failure);
        return o.heads.at(0);
    };
    BOOST_TEST(head_of(with_fields("Expect: 100-continue\r\nContent-Length: 3\r\n")).expect_continue);
    BOOST_TEST(head_of(with_fields("Expect: 100-Continue\r\nContent-Length: 3\r\n")).expect_continue);
    BOOST_TEST(!head_of(with_fields("Content-Length: 3\r\n")).expect_continue);
    // RFC 9110 §10.1.1: ignored in HTTP/1.0.
    BOOST_TEST(!head_of("PUT / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n").expect_continue);
    BOOST_TEST(status_of(with_fields("Expect: something-else\r\n")) == 417);
    BOOST_TEST(status_of(with_fields("Expect: 100-continue, x\r\n")) == 417);
    BOOST_TEST(status_of(with_fields("Expect: 100-continue\r\nExpect: 200-ok\r\n")) == 417);
    BOOST_TEST(status_of(with_fields("Expect: 100-continue; a=b\r\n")) == 417);
}

BOOST_AUTO_TEST_CASE(expect_continue_body_arrives_after_head_done) {
    // The proxy sends 100 Continue between head_done and reading the body.
    http::request_parser parser;
    const std::string head = with_fields("Expect: 100-continue\r\nContent-Length: 5\r\n");
    http::parse_result r = parser.feed(std::string_view(head));
    BOOST_TEST(r.event == http::parse_event::head_done);
    BOOST_TEST(r.consumed == head.size());
    BOOST_TEST(parser.head().expect_continue);
    r = parser.feed(std::string_view());
    BOOST_TEST(r.event == http::parse_event::need_more);
    r = parser.feed(std::string_view("hello"));
    BOOST_TEST(r.event == http::parse_event::body_data);
    BOOST_TEST(r.body_text() == "hello");
    r = parser.feed(std::string_view());
    BOOST_TEST(r.event == http::parse_event::message_done);
}

// ---- framing --------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(content_length_rules) {
    BOOST_TEST(status_of(with_fields("Content-Length: 0\r\n")) == 0);
    BOOST_TEST(status_of(with_fields("Content-Length: 00\r\n")) == 0);
    BOOST_TEST(status_of(with_fields("Content-Length: 3, 3\r\n") + "abc") == 0);
    BOOST_TEST(status_of(with_fields("Content-Length: 3\r\nContent-Length: 3\r\n") + "abc") == 0);
    BOOST_TEST(status_of(with_fields("Content-Length: 3, 4\r\n")) == 400);
    BOOST_TEST(status_of(with_fields("Content-Length: 3\r\nContent-Length: 4\r\n")) == 400);
    BOOST_TEST(status_of(with_fields("Content-Length: abc\r\n")) == 400);
    BOOST_TEST(status_of(with_fields("Content-Length: -1\r\n")) == 400);
    BOOST_TEST(status_of(with_fields("Content-Length: +1\r\n")) == 400);
    BOOST_TEST(status_of(with_fields("Content-Length: 1 2\r\n")) == 400);
    BOOST_TEST(status_of(with_fields("Content-Length: 0x10\r\n")) == 400);
    BOOST_TEST(status_of(with_fields("Content-Length:\r\n")) == 400);
    BOOST_TEST(status_of(with_fields("Content-Length: ,\r\n")) == 400);
    BOOST_TEST(status_of(with_fields("Content-Length: 18446744073709551616\r\n")) == 400);  // 2^64
    BOOST_TEST(status_of(with_fields("Content-Length: 99999999999999999999999\r\n")) == 400);
    const outcome biggest = whole(with_fields("Content-Length: 18446744073709551615\r\n"));
    BOOST_REQUIRE(!biggest.failure);
    BOOST_TEST(biggest.heads.at(0).content_length == UINT64_MAX);
    BOOST_TEST(biggest.heads.at(0).framing == http::body_framing::content_length);
}

BOOST_AUTO_TEST_CASE(transfer_encoding_rules) {
    BOOST_TEST(status_of(with_fields("Transfer-Encoding: chunked\r\n") + "0\r\n\r\n") == 0);
    BOOST_TEST(status_of(with_fields("Transfer-Encoding: CHUNKED\r\n") + "0\r\n\r\n") == 0);
    BOOST_TEST(status_of(with_fields("Transfer-Encoding: ,chunked ,\r\n") + "0\r\n\r\n") == 0);
    BOOST_TEST(status_of(with_fields("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n")) == 400);
    BOOST_TEST(status_of(with_fields("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n")) == 400);
    BOOST_TEST(status_of(with_fields("Transfer-Encoding: gzip\r\n")) == 501);
    BOOST_TEST(status_of(with_fields("Transfer-Encoding: gzip, chunked\r\n")) == 501);
    BOOST_TEST(status_of(with_fields("Transfer-Encoding: identity\r\n")) == 501);
    BOOST_TEST(status_of(with_fields("Transfer-Encoding: chunked;x=1\r\n")) == 501);
    BOOST_TEST(status_of(with_fields("Transfer-Encoding: chunked, gzip\r\n")) == 400);
    BOOST_TEST(status_of(with_fields("Transfer-Encoding: chunked, chunked\r\n")) == 400);
    BOOST_TEST(status_of(with_fields("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n")) == 400);
    BOOST_TEST(status_of(with_fields("Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n")) == 400);
    BOOST_TEST(status_of(with_fields("Transfer-Encoding:\r\n")) == 400);
    BOOST_TEST(status_of("PUT / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n") == 400);
}

BOOST_AUTO_TEST_CASE(content_length_body_is_handed_out_in_place) {
    const std::string request = with_fields("Content-Length: 11\r\n") + "hello world";
    http::request_parser parser;
    http::parse_result r = parser.feed(std::string_view(request));
    BOOST_TEST(r.event == http::parse_event::head_done);
    BOOST_TEST(parser.head().framing == http::body_framing::content_length);
    BOOST_TEST(parser.head().content_length == 11u);
    const std::string_view rest = std::string_view(request).substr(r.consumed);
    r = parser.feed(rest);
    BOOST_TEST(r.event == http::parse_event::body_data);
    BOOST_TEST(r.body_text() == "hello world");
    BOOST_TEST(reinterpret_cast<const char*>(r.body.data()) == rest.data());  // no copy
    BOOST_TEST(parser.body_bytes() == 11u);
    r = parser.feed(rest.substr(r.consumed));
    BOOST_TEST(r.event == http::parse_event::message_done);
    BOOST_TEST(r.consumed == 0u);
}

BOOST_AUTO_TEST_CASE(body_can_be_read_with_backpressure) {
    const std::string body(1000, 'b');
    const std::string request = with_fields("Content-Length: 1000\r\n") + body;
    http::request_parser parser;
    std::string_view input = request;
    http::parse_result r = parser.feed(input);
    BOOST_REQUIRE(r.event == http::parse_event::head_done);
    input.remove_prefix(r.consumed);
    // The consumer takes at most 7 bytes per call, and sometimes pauses (feeds nothing).
    std::string received;
    for (int call = 0; r.event != http::parse_event::message_done; ++call) {
        BOOST_REQUIRE_LT(call, 10'000);
        const std::string_view offered = call % 3 == 0 ? std::string_view() : input.substr(0, 7);
        r = parser.feed(offered);
        if (r.event == http::parse_event::body_data) {
            BOOST_TEST(r.body.size() <= 7u);
            received += r.body_text();
        }
        input.remove_prefix(r.consumed);
    }
    BOOST_TEST(received == body);
    BOOST_TEST(input.empty());
}

BOOST_AUTO_TEST_CASE(body_size_limit_is_413) {
    http::request_parser_options options;
    options.body_size_max = 10;
    BOOST_TEST(status_of(with_fields("Content-Length: 10\r\n") + std::string(10, 'x'), options) == 0);
    http::request_parser parser(options);
    const http::parse_result r = parser.feed(std::string_view(with_fields("Content-Length: 11\r\n")));
    BOOST_TEST(r.event == http::parse_event::error);
    BOOST_TEST(r.error.status == 413);
    BOOST_TEST(parser.head_complete());
    BOOST_TEST(parser.head().method == "PUT");
    // Chunked: refused at the chunk that crosses the limit, before its data.
    const std::string chunked = with_fields("Transfer-Encoding: chunked\r\n");
    BOOST_TEST(status_of(chunked + "5\r\n12345\r\n5\r\n12345\r\n0\r\n\r\n", options) == 0);
    const outcome over = whole(chunked + "5\r\n12345\r\n6\r\n123456\r\n0\r\n\r\n", options);
    BOOST_TEST(over.failure->status == 413);
    BOOST_TEST(over.bodies.at(0) == "12345");
    BOOST_TEST(status_of(chunked + "ffffffffffffffff\r\n", options) == 413);
}

// ---- chunked bodies -------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(chunked_body_with_extensions_and_trailers) {
    const std::string request = with_fields("Transfer-Encoding: chunked\r\n") +
                                "5;name=value;flag\r\nhello\r\n"
                                "1 ; spaced = \"quoted\"\r\n \r\n"
                                "00A\r\n0123456789\r\n"
                                "a\r\nabcdefghij\r\n"
                                "0;last\r\n"
                                "Checksum: abc\r\nX-Other: 1\r\n"
                                "\r\n";
    for (const outcome& o : {whole(request), bytewise(request)}) {
        BOOST_REQUIRE(!o.failure);
        BOOST_TEST(o.heads.at(0).framing == http::body_framing::chunked);
        BOOST_TEST(o.bodies.at(0) == "hello 0123456789abcdefghij");
        BOOST_TEST(o.messages == 1u);
    }
}

BOOST_AUTO_TEST_CASE(empty_chunked_body) {
    const outcome o = whole(with_fields("Transfer-Encoding: chunked\r\n") + "0\r\n\r\n");
    BOOST_REQUIRE(!o.failure);
    BOOST_TEST(o.messages == 1u);
    BOOST_TEST(o.bodies.at(0).empty());
}

BOOST_AUTO_TEST_CASE(malformed_chunked_bodies_are_400) {
    const std::string head = with_fields("Transfer-Encoding: chunked\r\n");
    const std::vector<std::string> bodies = {
        "\r\n",                                              // no size
        "zz\r\n",                                            // not hex
        "-5\r\n",                                            // sign
        "5\n",                                               // bare LF
        "5\rx",                                              // CR without LF
        "5 x\r\n",                                           // junk after the size
        "5\r\nhelloX\r\n",                                   // data not followed by CRLF
        "5\r\nhello\n0\r\n\r\n",                             // bare LF after data
        "5\r\nhelloX\n0\r\n\r\n",                            // something else than CR before the LF
        "5\r\nhello\n\n0\r\n\r\n",                           // LF LF
        "5;\x01\r\n",                                        // control character in an extension
        "5;" + std::string(2000, 'e') + "\r\n",              // extension too long
        "0\r\nbad trailer\r\n\r\n",                          // trailer without colon
        "0\r\n bad: fold\r\n\r\n",                           // trailer starting with whitespace
        "0\r\nX: y\n\r\n",                                   // bare LF in trailers
        "0\r\nBig: " + std::string(9000, 't') + "\r\n\r\n",  // trailer section too large
        "10000000000000000\r\n",                             // 17 hex digits: 2^64
        "ffffffffffffffffff\r\n",                            // overflows u64
        "00000000000000001\r\n",                             // 17 digits even with leading zeros
    };
    for (const std::string& body : bodies) {
        BOOST_TEST_CONTEXT("body: " << body.substr(0, 40)) { BOOST_TEST(status_of(head + body) == 400); }
    }
}

BOOST_AUTO_TEST_CASE(largest_chunk_size_is_accepted_without_overflow) {
    const outcome o = whole(with_fields("Transfer-Encoding: chunked\r\n") + "ffffffffffffffff\r\nabc");
    BOOST_TEST(!o.failure);
    BOOST_TEST(o.bodies.at(0) == "abc");
    BOOST_TEST(o.messages == 0u);
}

BOOST_AUTO_TEST_CASE(chunk_limits_are_options) {
    http::request_parser_options options;
    options.chunk_extension_max = 8;
    options.trailer_bytes_max = 16;
    const std::string head = with_fields("Transfer-Encoding: chunked\r\n");
    BOOST_TEST(status_of(head + "1;1234567\r\nx\r\n0\r\n\r\n", options) == 0);  // ";1234567" = 8
    BOOST_TEST(status_of(head + "1;12345678\r\nx\r\n0\r\n\r\n", options) == 400);
    BOOST_TEST(status_of(head + "0\r\nA: 123456789\r\n\r\n", options) == 0);  // 14 + 2 = 16
    BOOST_TEST(status_of(head + "0\r\nA: 1234567890\r\n\r\n", options) == 400);
}

// ---- streams --------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(pipelined_requests_in_one_buffer) {
    const std::string stream = get("/one") + with_fields("Content-Length: 3\r\n") + "abc" +
                               with_fields("Transfer-Encoding: chunked\r\n") + "2\r\nde\r\n0\r\n\r\n" +
                               "\r\n" +  // a stray CRLF after a body is tolerated
                               "DELETE /four HTTP/1.0\r\n\r\n" + "GET /five HTTP/1.1\r\nHost: h\r\n";
    const outcome o = whole(stream);
    BOOST_REQUIRE(!o.failure);
    BOOST_REQUIRE_EQUAL(o.heads.size(), 4u);  // the fifth head is incomplete
    BOOST_TEST(o.messages == 4u);
    BOOST_TEST(o.heads[0].target == "/one");
    BOOST_TEST(o.bodies[1] == "abc");
    BOOST_TEST(o.bodies[2] == "de");
    BOOST_TEST(o.heads[3].method == "DELETE");
    BOOST_TEST(!o.heads[3].keep_alive);
}

BOOST_AUTO_TEST_CASE(next_request_starts_by_itself_after_message_done) {
    const std::string stream = get("/a") + get("/b");
    http::request_parser parser;
    std::string_view input = stream;
    http::parse_result r = parser.feed(input);
    BOOST_TEST(r.event == http::parse_event::head_done);
    input.remove_prefix(r.consumed);
    r = parser.feed(input);
    BOOST_TEST(r.event == http::parse_event::message_done);
    BOOST_TEST(parser.head().target == "/a");  // still valid until the next feed
    r = parser.feed(input);
    BOOST_TEST(r.event == http::parse_event::head_done);
    BOOST_TEST(parser.head().target == "/b");
    BOOST_TEST(r.consumed == input.size());
}

BOOST_AUTO_TEST_CASE(errors_are_sticky_until_reset) {
    http::request_parser parser;
    http::parse_result r = parser.feed(std::string_view("BAD\r\n"));
    BOOST_TEST(r.event == http::parse_event::error);
    const http::error first = r.error;
    r = parser.feed(std::string_view(get()));
    BOOST_TEST(r.event == http::parse_event::error);
    BOOST_TEST(r.error == first);
    BOOST_TEST(r.consumed == 0u);
    parser.reset();
    r = parser.feed(std::string_view(get()));
    BOOST_TEST(r.event == http::parse_event::head_done);
}

BOOST_AUTO_TEST_CASE(byte_at_a_time_equals_whole) {
    const std::string stream = get("/x", "Host: h\r\nConnection: close\r\n") +
                               with_fields("Content-Length: 5\r\nExpect: 100-continue\r\n") + "12345" +
                               with_fields("Transfer-Encoding: chunked\r\n") + "3;e=1\r\nabc\r\n0\r\nT: v\r\n\r\n";
    const outcome a = whole(stream);
    const outcome b = bytewise(stream);
    BOOST_TEST(!a.failure);
    BOOST_TEST(a.messages == 3u);
    BOOST_TEST(a.trace == b.trace, boost::test_tools::per_element());
}

namespace {

// A stream of 1 to 4 requests drawn from varied templates, sometimes damaged.
std::string random_stream(std::mt19937_64& random) {
    const auto pick = [&](std::size_t n) { return static_cast<std::size_t>(random() % n); };
    std::string stream;
    const std::size_t requests = 1 + pick(4);
    for (std::size_t i = 0; i < requests; ++i) {
        const std::string body(pick(40), static_cast<char>('a' + pick(26)));
        switch (pick(6)) {
            case 0: stream += get("/k" + std::to_string(pick(1000)), "Host: h\r\nAccept: */*\r\n"); break;
            case 1: stream += with_fields("Content-Length: " + std::to_string(body.size()) + "\r\n") + body; break;
            case 2: {
                stream += with_fields("Transfer-Encoding: chunked\r\n");
                for (std::size_t at = 0; at < body.size();) {
                    const std::size_t size = std::min(body.size() - at, 1 + pick(9));
                    static constexpr char hex[] = "0123456789abcdef";
                    stream +=
                        std::string(1, hex[size]) + (pick(2) ? ";ext=v" : "") + "\r\n" + body.substr(at, size) + "\r\n";
                    at += size;
                }
                stream += pick(2) ? "0\r\n\r\n" : "0\r\nTrailer: t\r\n\r\n";
                break;
            }
            case 3: stream += "HEAD /h HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"; break;
            case 4:
                stream += with_fields("Expect: 100-continue\r\nContent-Length: 2\r\nX-Long: " + body + "\r\n") + "ok";
                break;
            default: stream += "\r\n" + get("/" + body); break;
        }
    }
    switch (pick(4)) {
        case 0: stream[pick(stream.size())] = static_cast<char>(random()); break;  // damage one byte
        case 1: stream.resize(pick(stream.size() + 1)); break;                     // truncate
        default: break;
    }
    return stream;
}

}  // namespace

BOOST_AUTO_TEST_CASE(random_splits_equal_whole_feeding) {
    std::mt19937_64 random(20261126);
    http::request_parser_options tight;  // small limits, so that limit errors are split too
    tight.request_line_max = 24;
    tight.header_bytes_max = 90;
    tight.header_count_max = 3;
    tight.chunk_extension_max = 4;
    tight.trailer_bytes_max = 10;
    tight.body_size_max = 30;
    std::size_t errors = 0;
    std::size_t messages = 0;
    for (int iteration = 0; iteration < 3000; ++iteration) {
        const std::string stream = random_stream(random);
        const http::request_parser_options options = iteration % 4 == 3 ? tight : http::request_parser_options{};
        const outcome expected = whole(stream, options);
        const outcome single = bytewise(stream, options);
        const std::size_t piece_max = 1 + random() % 64;
        const outcome pieces = drive(
            stream, [&] { return static_cast<std::size_t>(1 + random() % piece_max); }, options);
        BOOST_TEST_CONTEXT("iteration " << iteration) {
            BOOST_TEST(single.trace == expected.trace, boost::test_tools::per_element());
            BOOST_TEST(pieces.trace == expected.trace, boost::test_tools::per_element());
        }
        errors += expected.failure ? 1 : 0;
        messages += expected.messages;
    }
    // The corpus exercises both sides.
    BOOST_TEST(errors > 300u);
    BOOST_TEST(messages > 3000u);
}

BOOST_AUTO_TEST_CASE(random_bytes_end_in_need_more_or_an_error) {
    std::mt19937_64 random(7);
    const std::string alphabet =
        "GET /HTP1.0\r\n :;-chunkedContent-LengthTransfer-Encoding0123456789abcdef\t\x00\x7F\xFF"s;
    for (int iteration = 0; iteration < 2000; ++iteration) {
        std::string bytes(random() % 300, ' ');
        for (char& c : bytes) c = iteration % 2 ? static_cast<char>(random()) : alphabet[random() % alphabet.size()];
        if (iteration % 3 == 0) bytes = with_fields("Transfer-Encoding: chunked\r\n") + bytes;
        const outcome a = whole(bytes);
        const outcome b = bytewise(bytes);
        BOOST_TEST_CONTEXT("iteration " << iteration) {
            BOOST_TEST(a.trace == b.trace, boost::test_tools::per_element());
        }
    }
}

BOOST_AUTO_TEST_CASE(limits_stop_reading_early) {
    // Nothing is buffered past a limit: the error comes at the first byte beyond it.
    const std::string endless_target = "GET /" + std::string(1 << 20, 'a');
    http::request_parser parser;
    http::parse_result r = parser.feed(std::string_view(endless_target));
    BOOST_TEST(r.error.status == 414);
    BOOST_TEST(r.consumed == 8 * 1024 + 1);
    std::string endless_fields = "GET / HTTP/1.1\r\n";
    while (endless_fields.size() < (1 << 20)) endless_fields += "X: y\r\n";
    parser.reset();
    r = parser.feed(std::string_view(endless_fields));
    BOOST_TEST(r.error.status == 431);
    BOOST_TEST(r.consumed <= 16u + 100 * 6 + 6);  // the 101st field line
    std::string endless_trailer = with_fields("Transfer-Encoding: chunked\r\n") + "0\r\n";
    while (endless_trailer.size() < (1 << 20)) endless_trailer += "T: v\r\n";
    parser.reset();
    std::string_view input = endless_trailer;
    do {
        r = parser.feed(input);
        input.remove_prefix(r.consumed);
    } while (r.event != http::parse_event::error);
    BOOST_TEST(r.error.status == 400);
    BOOST_TEST(endless_trailer.size() - input.size() <=
               with_fields("Transfer-Encoding: chunked\r\n").size() + 3 + 8 * 1024 + 1);
}
