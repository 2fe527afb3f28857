#define BOOST_TEST_MODULE http_response
// The header under test comes first: proves it is self-contained.
#include "toastyfs/http/response.hpp"

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

std::string serialize(const http::response_head& head) {
    std::string out = "prefix|";
    const http::result<void> r = http::append_response_head(head, out);
    BOOST_REQUIRE(r.has_value());
    BOOST_REQUIRE(out.rfind("prefix|", 0) == 0);  // appends, never overwrites
    return out.substr(7);
}

std::uint16_t refusal(const http::response_head& head) {
    std::string out = "untouched";
    const http::result<void> r = http::append_response_head(head, out);
    if (r.has_value()) return 0;
    BOOST_TEST(out == "untouched");  // a refused head appends nothing
    return r.error().status;
}

}  // namespace

BOOST_AUTO_TEST_CASE(reason_phrases_of_common_codes) {
    const std::vector<std::pair<std::uint16_t, std::string_view>> expected = {
        {100, "Continue"},
        {200, "OK"},
        {201, "Created"},
        {204, "No Content"},
        {206, "Partial Content"},
        {304, "Not Modified"},
        {400, "Bad Request"},
        {404, "Not Found"},
        {405, "Method Not Allowed"},
        {408, "Request Timeout"},
        {411, "Length Required"},
        {412, "Precondition Failed"},
        {413, "Content Too Large"},
        {414, "URI Too Long"},
        {416, "Range Not Satisfiable"},
        {417, "Expectation Failed"},
        {431, "Request Header Fields Too Large"},
        {500, "Internal Server Error"},
        {501, "Not Implemented"},
        {503, "Service Unavailable"},
        {504, "Gateway Timeout"},
        {505, "HTTP Version Not Supported"},
    };
    for (const auto& [status, phrase] : expected) BOOST_TEST(http::reason_phrase(status) == phrase);
    BOOST_TEST(http::reason_phrase(299).empty());
}

BOOST_AUTO_TEST_CASE(head_with_content_length) {
    http::response_head head;
    head.status = 200;
    head.headers.add("Content-Type", "application/octet-stream");
    head.set_content_length(1234);
    BOOST_TEST(serialize(head) ==
               "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 1234\r\n\r\n");
}

BOOST_AUTO_TEST_CASE(framing_helpers_replace_each_other) {
    http::response_head head;
    head.set_content_length(5);
    head.set_content_length(6);
    BOOST_TEST(head.headers.count("content-length") == 1u);
    head.set_chunked();
    BOOST_TEST(!head.headers.contains("content-length"));
    BOOST_TEST(head.headers.find("transfer-encoding").value() == "chunked");
    head.set_connection_close();
    BOOST_TEST(serialize(head) == "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
    head.set_content_length(0);
    BOOST_TEST(!head.headers.contains("transfer-encoding"));
}

BOOST_AUTO_TEST_CASE(unknown_status_gets_an_empty_reason) {
    http::response_head head;
    head.status = 599;
    BOOST_TEST(serialize(head) == "HTTP/1.1 599 \r\n\r\n");
}

BOOST_AUTO_TEST_CASE(appends_to_byte_vectors) {
    http::response_head head;
    head.status = 404;
    head.set_content_length(0);
    std::vector<std::uint8_t> out{'x'};
    BOOST_REQUIRE(http::append_response_head(head, out).has_value());
    const std::string text(out.begin(), out.end());
    BOOST_TEST(text == "xHTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
}

BOOST_AUTO_TEST_CASE(injection_is_refused) {
    const std::vector<std::string> bad_values = {"a\r\nSet-Cookie: x",
                                                 "a\rb",
                                                 "a\nb",
                                                 "a\x00"
                                                 "b"s,
                                                 "a\x7F",
                                                 "\x01"};
    for (const std::string& value : bad_values) {
        http::response_head head;
        head.headers.add("X", value);
        BOOST_TEST(refusal(head) == 500);
    }
    const std::vector<std::string> bad_names = {"", "X Y", "X:", "X\r\nY", "X\x00"s, "\xC3\xA9"};
    for (const std::string& name : bad_names) {
        http::response_head head;
        head.headers.add(name, "v");
        BOOST_TEST(refusal(head) == 500);
    }
    http::response_head fine;
    fine.headers.add("X", "tab\tand obs-text \xC3\xA9");
    BOOST_TEST(refusal(fine) == 0);
}

BOOST_AUTO_TEST_CASE(inconsistent_framing_is_refused) {
    http::response_head both;
    both.headers.add("Content-Length", "1");
    both.headers.add("Transfer-Encoding", "chunked");
    BOOST_TEST(refusal(both) == 500);
    http::response_head no_content;
    no_content.status = 204;
    no_content.set_content_length(0);
    BOOST_TEST(refusal(no_content) == 500);
    http::response_head interim;
    interim.status = 100;
    interim.set_chunked();
    BOOST_TEST(refusal(interim) == 500);
    http::response_head not_modified;
    not_modified.status = 304;
    not_modified.set_chunked();
    BOOST_TEST(refusal(not_modified) == 500);
    not_modified.set_content_length(10);  // allowed: the size of the selected representation
    BOOST_TEST(refusal(not_modified) == 0);
    http::response_head out_of_range;
    out_of_range.status = 99;
    BOOST_TEST(refusal(out_of_range) == 500);
    out_of_range.status = 600;
    BOOST_TEST(refusal(out_of_range) == 500);
}

BOOST_AUTO_TEST_CASE(continue_response_is_complete) {
    BOOST_TEST(http::continue_response == "HTTP/1.1 100 Continue\r\n\r\n");
}

BOOST_AUTO_TEST_CASE(chunk_frames) {
    std::string out;
    http::append_chunk_header(1, out);
    http::append_chunk_header(0xABC, out);
    http::append_chunk_header(UINT64_MAX, out);
    BOOST_TEST(out == "1\r\nabc\r\nffffffffffffffff\r\n");
    out.clear();
    http::append_chunk("hello", out);
    http::append_chunk("", out);  // nothing: an empty chunk would end the body
    http::append_chunk(std::string(16, 'x'), out);
    http::append_last_chunk(out);
    BOOST_TEST(out == "5\r\nhello\r\n10\r\nxxxxxxxxxxxxxxxx\r\n0\r\n\r\n");
    std::vector<std::uint8_t> bytes;
    http::append_chunk_header(255, bytes);
    http::append_chunk_end(bytes);
    BOOST_TEST(std::string(bytes.begin(), bytes.end()) == "ff\r\n\r\n");
}
