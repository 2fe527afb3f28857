// HTTP/1.1 request parsing throughput: toastyfs::http::request_parser on the requests the object
// store sees (curl and wrk GETs, Content-Length PUTs, chunked PUTs, bodies arriving in small
// reads), and the field helpers every object request goes through (split_target + decode_key,
// parse_query, resolve_range, entity tags).
//
// The parser is reused across iterations, as on a keep-alive connection: after message_done the
// next feed() starts the next request. Bytes/s counts the whole request (head and body on the
// wire, chunk framing included); items/s counts requests (or helper calls).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "toastyfs/http/etag.hpp"
#include "toastyfs/http/range.hpp"
#include "toastyfs/http/request_parser.hpp"
#include "toastyfs/http/uri.hpp"

namespace {

namespace http = toastyfs::http;

constexpr std::string_view host_line = "Host: 127.0.0.1:8080\r\n";

std::string body_bytes(std::size_t size) {
    std::string body(size, '\0');
    for (std::size_t i = 0; i < size; ++i) body[i] = static_cast<char>('a' + i % 26);
    return body;
}

/// What `curl http://127.0.0.1:8080/photos/2024/cat.jpg` sends.
std::string curl_get() {
    return "GET /photos/2024/cat.jpg HTTP/1.1\r\n" + std::string(host_line) +
           "User-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n";
}

/// What bench/objectstore.sh's get.lua sends: wrk.format("GET", path).
std::string wrk_get() { return "GET /get/417 HTTP/1.1\r\n" + std::string(host_line) + "\r\n"; }

/// What bench/objectstore.sh's put.lua sends: wrk.format("PUT", path, nil, body).
std::string content_length_put(std::size_t body_size) {
    return "PUT /bench/1/12345 HTTP/1.1\r\n" + std::string(host_line) + "Content-Length: " + std::to_string(body_size) +
           "\r\n\r\n" + body_bytes(body_size);
}

/// What `curl -T - http://...` sends for a body of unknown length: chunks of `chunk_size`.
std::string chunked_put(std::size_t body_size, std::size_t chunk_size) {
    std::string text = "PUT /uploads/stream.bin HTTP/1.1\r\n" + std::string(host_line) +
                       "User-Agent: curl/7.88.1\r\nAccept: */*\r\nTransfer-Encoding: chunked\r\n\r\n";
    const std::string body = body_bytes(body_size);
    for (std::size_t at = 0; at < body_size; at += chunk_size) {
        const std::size_t n = std::min(chunk_size, body_size - at);
        char size_line[32];
        std::snprintf(size_line, sizeof size_line, "%zx\r\n", n);
        text += size_line;
        text.append(body, at, n);
        text += "\r\n";
    }
    return text + "0\r\n\r\n";
}

/// Feeds one whole request the way a connection does: [begin, end) is the unconsumed input, and
/// `piece` more bytes arrive whenever the parser needs more. Returns the body size the parser
/// handed out, or nullopt on an error, a short message, or bytes left over.
std::optional<std::uint64_t> parse_one(http::request_parser& parser, std::span<const std::uint8_t> message,
                                       std::size_t piece) {
    std::size_t begin = 0;
    std::size_t end = std::min(piece, message.size());
    std::uint64_t body = 0;
    while (true) {
        const http::parse_result r = parser.feed(message.subspan(begin, end - begin));
        begin += r.consumed;
        switch (r.event) {
            case http::parse_event::need_more:
                if (end == message.size()) return std::nullopt;
                end = std::min(end + piece, message.size());
                break;
            case http::parse_event::head_done: benchmark::DoNotOptimize(parser.head().target.data()); break;
            case http::parse_event::body_data:
                benchmark::DoNotOptimize(r.body.data());
                body += r.body.size();
                break;
            case http::parse_event::message_done:
                if (begin != message.size()) return std::nullopt;
                return body;
            case http::parse_event::error: return std::nullopt;
        }
    }
}

void run_parser(benchmark::State& state, const std::string& text, std::size_t piece, std::uint64_t body_size) {
    const std::span<const std::uint8_t> message(reinterpret_cast<const std::uint8_t*>(text.data()), text.size());
    http::request_parser parser;
    for (auto _ : state) {
        const std::optional<std::uint64_t> body = parse_one(parser, message, piece);
        if (body != body_size) {
            state.SkipWithError("request not parsed as expected");
            break;
        }
    }
    state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(message.size()));
    state.SetItemsProcessed(state.iterations());
    state.counters["request_bytes"] = static_cast<double>(message.size());
}

void BM_parse_get_curl(benchmark::State& state) {
    const std::string text = curl_get();
    run_parser(state, text, text.size(), 0);
}
BENCHMARK(BM_parse_get_curl);

void BM_parse_get_wrk(benchmark::State& state) {
    const std::string text = wrk_get();
    run_parser(state, text, text.size(), 0);
}
BENCHMARK(BM_parse_get_wrk);

/// The whole request in one read.
void BM_parse_put(benchmark::State& state) {
    const auto body_size = static_cast<std::size_t>(state.range(0));
    const std::string text = content_length_put(body_size);
    run_parser(state, text, text.size(), body_size);
}
BENCHMARK(BM_parse_put)->ArgName("body")->Arg(1 << 10)->Arg(64 << 10);

/// A 1 KiB PUT arriving in reads of `piece` bytes.
void BM_parse_put_pieces(benchmark::State& state) {
    const std::string text = content_length_put(1 << 10);
    run_parser(state, text, static_cast<std::size_t>(state.range(0)), 1 << 10);
}
BENCHMARK(BM_parse_put_pieces)->ArgName("piece")->Arg(1)->Arg(64)->Arg(512);

/// A chunked body of `body` bytes in chunks of `chunk` bytes, the whole request in one read.
void BM_parse_chunked(benchmark::State& state) {
    const auto body_size = static_cast<std::size_t>(state.range(0));
    const std::string text = chunked_put(body_size, static_cast<std::size_t>(state.range(1)));
    run_parser(state, text, text.size(), body_size);
}
BENCHMARK(BM_parse_chunked)
    ->ArgNames({"body", "chunk"})
    ->Args({1 << 10, 1 << 10})
    ->Args({64 << 10, 1 << 10})
    ->Args({64 << 10, 16 << 10});

// ---- field helpers ------------------------------------------------------------------------------

/// split_target + decode_key, as the object API does for every request naming an object.
void BM_decode_key(benchmark::State& state, std::string_view target) {
    for (auto _ : state) {
        benchmark::DoNotOptimize(target.data());
        const auto parts = http::split_target(target);
        if (!parts) {
            state.SkipWithError("split_target failed");
            break;
        }
        const auto key = http::decode_key(parts->path);
        if (!key) {
            state.SkipWithError("decode_key failed");
            break;
        }
        benchmark::DoNotOptimize(key->data());
    }
    state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(target.size()));
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK_CAPTURE(BM_decode_key, plain, std::string_view("/photos/2024/holiday/cat.jpg"));
BENCHMARK_CAPTURE(BM_decode_key, escaped,
                  std::string_view("/photos/2024/caf%C3%A9%20%26%20bar/r%C3%A9sum%C3%A9%20final.pdf"));

/// A listing request's query string.
void BM_parse_query(benchmark::State& state) {
    const std::string_view query = "list-type=2&prefix=photos%2F2024%2F&max-keys=1000";
    for (auto _ : state) {
        benchmark::DoNotOptimize(query.data());
        const auto parameters = http::parse_query(query);
        if (!parameters) {
            state.SkipWithError("parse_query failed");
            break;
        }
        benchmark::DoNotOptimize(parameters->list.data());
    }
    state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(query.size()));
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_parse_query);

/// resolve_range on a 1 GiB object, then the Content-Range value of the 206.
void BM_resolve_range(benchmark::State& state, std::string_view value) {
    constexpr std::uint64_t object_size = std::uint64_t{1} << 30;
    for (auto _ : state) {
        benchmark::DoNotOptimize(value.data());
        const http::range_resolution r = http::resolve_range(value, object_size);
        if (r.outcome != http::range_outcome::satisfiable) {
            state.SkipWithError("range not satisfiable");
            break;
        }
        const std::string content_range = http::content_range(r.range, object_size);
        benchmark::DoNotOptimize(content_range.data());
    }
    state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(value.size()));
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK_CAPTURE(BM_resolve_range, first_kib, std::string_view("bytes=0-1023"));
BENCHMARK_CAPTURE(BM_resolve_range, suffix, std::string_view("bytes=-500"));
BENCHMARK_CAPTURE(BM_resolve_range, open_end, std::string_view("bytes=536870912-"));

constexpr std::string_view md5_hex = "9e107d9d372bb6826bd81d3542a419d6";

/// An If-None-Match with one strong tag (a conditional GET), checked against the current ETag.
void BM_if_none_match(benchmark::State& state) {
    const std::string value = "\"" + std::string(md5_hex) + "\"";
    const std::optional<http::entity_tag> current = http::entity_tag{false, md5_hex};
    for (auto _ : state) {
        benchmark::DoNotOptimize(value.data());
        const auto list = http::parse_entity_tag_list(std::string_view(value));
        if (!list || http::if_none_match_passes(*list, current)) {
            state.SkipWithError("If-None-Match not parsed as a match");
            break;
        }
    }
    state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(value.size()));
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_if_none_match);

/// The ETag value of a response: an MD5 in hex, quoted.
void BM_format_entity_tag(benchmark::State& state) {
    const http::entity_tag tag{false, md5_hex};
    std::size_t size = 0;
    for (auto _ : state) {
        benchmark::DoNotOptimize(tag.opaque.data());
        const std::string etag = http::format_entity_tag(tag);
        benchmark::DoNotOptimize(etag.data());
        size = etag.size();
    }
    state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(size));
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_format_entity_tag);

}  // namespace

BENCHMARK_MAIN();
