// Fuzz target: the incremental HTTP/1.1 request parser (include/toastyfs/http/request_parser.hpp),
// request lines, fields, Content-Length and chunked bodies, pipelined requests.
//
// Input: a flags byte (small limits, Host optional, a body size limit), a count k and k piece
// sizes, then the byte stream. The stream is fed whole, one byte at a time, and in the
// fuzzer-chosen pieces (cycling through the sizes), the way a connection would: unconsumed
// bytes kept, the next piece appended, feed() called until need_more.
// Invariants: the three feedings give the same events (adjacent body_data merged); consumed
// never exceeds the input and need_more consumes it all; body_data is non-empty and lies
// inside the input; bodies never exceed body_size_max or the declared Content-Length; an error
// is sticky. Every head is also run through the URI, Range, ETag and date parsers, as the proxy
// would. FUZZ_VERBOSE=1 prints the events of each input.
#include <cstdlib>

#include "toastyfs/http/date.hpp"
#include "toastyfs/http/etag.hpp"
#include "toastyfs/http/range.hpp"
#include "toastyfs/http/request_parser.hpp"
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

struct outcome {
    std::vector<std::string> trace;  // events in order; adjacent body_data merged
    bool failed = false;
};

std::string describe(const http::request_head& head) {
    std::string text =
        head.method + " " + head.target + (head.version == http::http_version::http_1_1 ? " 1.1" : " 1.0");
    for (const http::field& f : head.headers) text += " [" + f.name + "=" + f.value + "]";
    text += head.keep_alive ? " keep-alive" : " close";
    text += head.expect_continue ? " continue" : "";
    text += " framing=" + std::to_string(static_cast<int>(head.framing)) + "/" + std::to_string(head.content_length);
    return text;
}

/// What the proxy does with a head: split the target, decode the key and query, read the
/// preconditions and the range. Only "no crash" is checked here; the values feed the trace.
std::string interpret(const http::request_head& head) {
    std::string text;
    const auto parts = http::split_target(head.target);
    if (!parts) return "target-error";
    if (parts->form == http::target_form::origin || parts->form == http::target_form::absolute) {
        const auto key = http::decode_key(parts->path);
        text += key ? " key=" + *key : " key-error";
        if (key) FUZZ_CHECK(*http::decode_key(slash_then(http::percent_encode(*key))) == *key);
        const auto query = http::parse_query(parts->query);
        text += query ? " query=" + std::to_string(query->list.size()) : " query-error";
    }
    if (const auto range = head.find("range")) {
        text += std::string(" range=") + http::to_string(http::resolve_range(*range, 1000).outcome);
    }
    const auto tags = http::parse_entity_tag_list(head.find_all("if-match"));
    text += tags ? " tags=" + std::to_string(tags->tags.size()) : " tags-error";
    if (const auto since = head.find("if-modified-since")) {
        text += http::parse_http_date(*since) ? " date" : " no-date";
    }
    return text;
}

template <typename NextPiece>
outcome drive(std::string_view data, const http::request_parser_options& options, NextPiece next_piece) {
    http::request_parser parser(options);
    outcome out;
    std::string pending;
    std::size_t offered = 0;
    std::uint64_t body_bytes = 0;
    for (int rounds = 0;; ++rounds) {
        FUZZ_CHECK(rounds < 1'000'000);
        while (!out.failed) {
            const http::parse_result r = parser.feed(std::string_view(pending));
            FUZZ_CHECK(r.consumed <= pending.size());
            switch (r.event) {
                case http::parse_event::need_more: FUZZ_CHECK(r.consumed == pending.size()); break;
                case http::parse_event::head_done:
                    FUZZ_CHECK(parser.head_complete());
                    body_bytes = 0;
                    out.trace.push_back("head " + describe(parser.head()) + interpret(parser.head()));
                    break;
                case http::parse_event::body_data: {
                    FUZZ_CHECK(!r.body.empty());
                    const auto* begin = reinterpret_cast<const std::uint8_t*>(pending.data());
                    FUZZ_CHECK(r.body.data() >= begin && r.body.data() + r.body.size() <= begin + r.consumed);
                    body_bytes += r.body.size();
                    FUZZ_CHECK(body_bytes == parser.body_bytes() && body_bytes <= options.body_size_max);
                    if (parser.head().framing == http::body_framing::content_length) {
                        FUZZ_CHECK(body_bytes <= parser.head().content_length);
                    }
                    if (out.trace.empty() || out.trace.back().rfind("body ", 0) != 0) out.trace.emplace_back("body ");
                    out.trace.back() += r.body_text();
                    break;
                }
                case http::parse_event::message_done: out.trace.emplace_back("done"); break;
                case http::parse_event::error: {
                    FUZZ_CHECK(r.error.status >= 400 && r.error.status <= 599);
                    out.failed = true;
                    out.trace.push_back("error " + std::to_string(r.error.status) + " " + std::string(r.error.reason));
                    const http::parse_result again = parser.feed(std::string_view("GET / HTTP/1.1\r\n"));
                    FUZZ_CHECK(again.event == http::parse_event::error && again.consumed == 0);
                    break;
                }
            }
            pending.erase(0, r.consumed);
            if (r.event == http::parse_event::need_more) break;
        }
        if (out.failed || offered == data.size()) return out;
        const std::size_t size = std::min(next_piece(), data.size() - offered);
        pending.append(data.substr(offered, size));
        offered += size;
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz::input in(data, size);
    const std::uint8_t flags = in.u8();
    http::request_parser_options options;
    if (flags & 1) {  // small limits, so every limit is reachable
        options.request_line_max = 16 + in.below(64);
        options.header_bytes_max = 16 + in.below(256);
        options.header_count_max = 1 + in.below(8);
        options.chunk_extension_max = in.below(32);
        options.trailer_bytes_max = in.below(64);
        options.leading_empty_lines_max = in.below(3);
    }
    if (flags & 2) options.host_required = false;
    if (flags & 4) options.body_size_max = in.below(128);
    std::vector<std::size_t> pieces;
    const std::size_t piece_count = in.u8() % 8;
    for (std::size_t i = 0; i < piece_count; ++i) pieces.push_back(1 + in.u8() % 32);
    if (pieces.empty()) pieces.push_back(7);
    const std::string_view stream = fuzz::input::as_text(in.rest());

    const outcome whole = drive(stream, options, [&] { return stream.size(); });
    const outcome bytewise = drive(stream, options, [] { return std::size_t{1}; });
    std::size_t next = 0;
    const outcome split = drive(stream, options, [&] { return pieces[next++ % pieces.size()]; });
    static const bool verbose = std::getenv("FUZZ_VERBOSE") != nullptr;
    if (verbose) {
        for (const std::string& event : whole.trace) std::fprintf(stderr, "  %s\n", event.c_str());
    }
    FUZZ_CHECK(whole.trace == bytewise.trace);
    FUZZ_CHECK(whole.trace == split.trace);
    return 0;
}
