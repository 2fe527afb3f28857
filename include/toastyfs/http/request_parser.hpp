// Incremental HTTP/1.1 request parser (RFC 9112): request line, header section, and body
// (Content-Length or chunked), fed arbitrary byte slices.
//
// Usage: call feed(input) with the bytes you have. It consumes a prefix of `input` and stops at
// the first event:
//   need_more     all of `input` was consumed; call again with more bytes.
//   head_done     the header section is complete and valid: head() is ready. Consumed bytes end
//                 at the blank line, so any body bytes are still unconsumed.
//   body_data     `body` views body bytes inside `input` (already de-chunked). They are the
//                 caller's to copy or forward before the input buffer changes.
//   message_done  the request is complete. Bytes after `consumed` belong to the next
//                 (pipelined) request.
//   error         the input is not acceptable HTTP: answer `error.status`, then close the
//                 connection (the framing of whatever follows is unknown). The error is sticky:
//                 every later feed() returns it again, consuming nothing, until reset().
// Drop the consumed bytes and call feed() again. A call that returns an event other than
// need_more may leave input unconsumed; keep calling (an empty input is fine) until need_more.
// In particular, after head_done and after the last body_data, call again to get
// message_done, even with no new bytes.
//
// Splitting: every decision depends only on the byte sequence, never on how it was split, so
// feeding one byte at a time yields the same events (body_data may come in smaller pieces).
//
// Backpressure: the parser never holds body bytes. To stop reading the body, stop calling feed()
// (or pass a shorter input); resume later with the unconsumed bytes.
//
// Next request: after message_done, the next feed() starts a new request by itself (head() stays
// valid until then). reset() abandons the current request and clears a sticky error.
//
// Line endings: CRLF is required everywhere (request line, field lines, chunk lines, trailers).
// A bare LF, or a CR not followed by LF, is an error 400. RFC 9112 §2.2 allows either choice;
// strictness rules out request smuggling through a peer that splits lines differently.
//
// Memory is bounded by the options: the parser stores one line at a time (at most
// request_line_max, header_bytes_max or trailer_bytes_max bytes) plus the head.
#pragma once

#include <algorithm>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "toastyfs/http/detail/text.hpp"
#include "toastyfs/http/error.hpp"
#include "toastyfs/http/fields.hpp"

namespace toastyfs::http {

enum class http_version : std::uint8_t { http_1_0, http_1_1 };

/// How the request body is delimited.
enum class body_framing : std::uint8_t {
    none,            // no Content-Length, no Transfer-Encoding: the body is empty
    content_length,  // exactly request_head::content_length bytes
    chunked,         // Transfer-Encoding: chunked
};

/// A parsed, validated request head.
struct request_head {
    std::string method;  // a token, case-sensitive: "GET", "PUT", ...
    std::string target;  // the raw request-target, still percent-encoded (see uri.hpp)
    http_version version = http_version::http_1_1;
    http::fields headers;  // as received, in order, duplicates kept; values trimmed of OWS

    /// The connection stays open after the response. HTTP/1.1: unless a Connection field lists
    /// "close". HTTP/1.0: only if a Connection field lists "keep-alive" and none lists "close".
    bool keep_alive = false;
    /// `Expect: 100-continue` in an HTTP/1.1 request: send `100 Continue` before reading the
    /// body (or answer a final status without reading it). Ignored in HTTP/1.0, as RFC 9110
    /// §10.1.1 requires; any other expectation is an error 417.
    bool expect_continue = false;
    body_framing framing = body_framing::none;
    /// The declared body size when framing == content_length, 0 otherwise: a bound the caller
    /// can check before reading anything (for chunked bodies, see request_parser::body_bytes).
    std::uint64_t content_length = 0;

    std::optional<std::string_view> find(std::string_view name) const noexcept { return headers.find(name); }
    std::vector<std::string_view> find_all(std::string_view name) const { return headers.find_all(name); }
};

struct request_parser_options {
    /// Longest request line, CRLF excluded. Exceeded: error 414 while the target is being read
    /// (exactly one SP seen so far), error 400 otherwise (an overlong method or version).
    std::size_t request_line_max = 8 * 1024;
    /// Empty lines (CRLF) skipped before a request line (RFC 9112 §2.2 robustness). One more:
    /// error 400.
    std::size_t leading_empty_lines_max = 4;
    /// Bytes of the header section: every field line with its CRLF, plus the CRLF that ends the
    /// section. Exceeded: error 431 as soon as the byte past the limit arrives.
    std::size_t header_bytes_max = 16 * 1024;
    /// Field lines in the header section. One more: error 431.
    std::size_t header_count_max = 100;
    /// Bytes after the size on one chunk-size line (BWS, ";" and the extensions, which are
    /// ignored). Exceeded: error 400.
    std::size_t chunk_extension_max = 1024;
    /// Bytes of the trailer section of a chunked body: field lines with their CRLFs plus the
    /// final CRLF. Trailer fields are validated and then dropped. Exceeded: error 400.
    std::size_t trailer_bytes_max = 8 * 1024;
    /// Largest body accepted. A Content-Length above it: error 413 instead of head_done (head()
    /// is complete). A chunk that would take a chunked body above it: error 413 before any of
    /// that chunk's bytes are handed out. The default accepts any size.
    std::uint64_t body_size_max = UINT64_MAX;
    /// RFC 9112 §3.2: an HTTP/1.1 request without Host is an error 400. Several Host fields are
    /// an error 400 whatever this says.
    bool host_required = true;
};

/// Hex digits of a chunk size, leading zeros included. More: error 400. Sixteen digits hold any
/// u64, so the size can never overflow.
inline constexpr std::size_t chunk_size_digits_max = 16;

enum class parse_event : std::uint8_t { need_more, head_done, body_data, message_done, error };

inline const char* to_string(parse_event e) noexcept {
    switch (e) {
        case parse_event::need_more: return "need_more";
        case parse_event::head_done: return "head_done";
        case parse_event::body_data: return "body_data";
        case parse_event::message_done: return "message_done";
        case parse_event::error: return "error";
    }
    return "unknown";
}

struct parse_result {
    std::size_t consumed = 0;  // bytes of the input now processed; drop them
    parse_event event = parse_event::need_more;
    std::span<const std::uint8_t> body;  // body_data only: non-empty, inside the input
    http::error error;                   // error only

    std::string_view body_text() const noexcept { return {reinterpret_cast<const char*>(body.data()), body.size()}; }
};

class request_parser {
public:
    explicit request_parser(const request_parser_options& options = {}) : options_(options) {}

    parse_result feed(std::span<const std::uint8_t> input) {
        if (state_ == state::failed) return {0, parse_event::error, {}, failure_};
        if (state_ == state::done) start_message();
        std::size_t at = 0;
        while (true) {
            std::optional<parse_result> out;
            switch (state_) {
                case state::request_line:
                case state::field_lines: out = on_head_byte(input, at); break;
                case state::body_none:
                    state_ = state::done;
                    out = event(at, parse_event::message_done);
                    break;
                case state::fixed_body: out = on_fixed_body(input, at); break;
                case state::chunk_size:
                case state::chunk_extension:
                case state::chunk_size_lf: out = on_chunk_size_byte(input, at); break;
                case state::chunk_data: out = on_chunk_data(input, at); break;
                case state::chunk_data_cr:
                case state::chunk_data_lf: out = on_chunk_data_end(input, at); break;
                case state::trailer: out = on_trailer_byte(input, at); break;
                case state::done:
                case state::failed:
                    assert(false);  // handled before the loop
                    return fail(at, 500, "request parser in an impossible state");
            }
            if (out) return *out;
        }
    }

    parse_result feed(std::string_view input) {
        return feed(std::span(reinterpret_cast<const std::uint8_t*>(input.data()), input.size()));
    }

    /// Forgets the current request (and a sticky error): the next byte starts a request line.
    void reset() { start_message(); }

    /// The head of the current request: complete once head_done was returned, and until the
    /// next request starts. After an error it holds what was parsed, for diagnostics only.
    const request_head& head() const noexcept { return head_; }
    /// The whole header section was read (head_done, or an error found after the blank line).
    bool head_complete() const noexcept { return head_complete_; }
    /// Body bytes handed out so far for the current request (after de-chunking).
    std::uint64_t body_bytes() const noexcept { return body_bytes_; }
    /// Sum of the chunk sizes declared so far: the body's size is known to reach it.
    std::uint64_t body_bytes_declared() const noexcept { return body_declared_; }
    const request_parser_options& options() const noexcept { return options_; }

private:
    enum class state : std::uint8_t {
        request_line,
        field_lines,
        body_none,
        fixed_body,
        chunk_size,
        chunk_extension,
        chunk_size_lf,
        chunk_data,
        chunk_data_cr,
        chunk_data_lf,
        trailer,
        done,
        failed,
    };
    enum class line_step : std::uint8_t { partial, complete, malformed };

    static parse_result event(std::size_t at, parse_event e) { return {at, e, {}, {}}; }

    parse_result fail(std::size_t at, http::error failure) {
        state_ = state::failed;
        failure_ = failure;
        return {at, parse_event::error, {}, failure};
    }
    parse_result fail(std::size_t at, std::uint16_t status, std::string_view reason) {
        return fail(at, http::error{status, reason});
    }

    void start_message() {
        state_ = state::request_line;
        head_ = request_head{};
        head_complete_ = false;
        line_.clear();
        cr_pending_ = false;
        empty_lines_ = 0;
        header_bytes_ = 0;
        trailer_bytes_ = 0;
        remaining_ = 0;
        body_bytes_ = 0;
        body_declared_ = 0;
        failure_ = {};
        start_chunk();
    }

    void start_chunk() {
        chunk_size_ = 0;
        chunk_digits_ = 0;
        extension_bytes_ = 0;
        extension_started_ = false;
    }

    // Collects one CRLF-terminated line into line_ (CRLF excluded).
    line_step take_line_byte(char c) {
        if (cr_pending_) {
            if (c != '\n') return line_step::malformed;
            cr_pending_ = false;
            return line_step::complete;
        }
        if (c == '\r') {
            cr_pending_ = true;
            return line_step::partial;
        }
        if (c == '\n') return line_step::malformed;
        line_.push_back(c);
        return line_step::partial;
    }

    // ---- head ---------------------------------------------------------------------------------

    std::optional<parse_result> on_head_byte(std::span<const std::uint8_t> input, std::size_t& at) {
        if (at == input.size()) return event(at, parse_event::need_more);
        const auto c = static_cast<char>(input[at++]);
        if (state_ == state::field_lines && ++header_bytes_ > options_.header_bytes_max) {
            return fail(at, 431, "header section too large");
        }
        const line_step step = take_line_byte(c);
        if (step == line_step::malformed) return fail(at, 400, "line not terminated by CRLF");
        if (step == line_step::partial) {
            if (state_ == state::request_line && line_.size() > options_.request_line_max) {
                return request_line_too_long(at);
            }
            return std::nullopt;
        }
        return state_ == state::request_line ? on_request_line(at) : on_field_line(at);
    }

    parse_result request_line_too_long(std::size_t at) {
        const auto spaces = std::count(line_.begin(), line_.end(), ' ');
        if (spaces == 1) return fail(at, 414, "request target too long");
        return fail(at, 400, "request line too long");
    }

    std::optional<parse_result> on_request_line(std::size_t at) {
        if (line_.empty()) {
            if (++empty_lines_ > options_.leading_empty_lines_max) {
                return fail(at, 400, "too many empty lines before the request line");
            }
            return std::nullopt;
        }
        if (const auto failure = parse_request_line(line_, head_)) return fail(at, *failure);
        line_.clear();
        state_ = state::field_lines;
        return std::nullopt;
    }

    std::optional<parse_result> on_field_line(std::size_t at) {
        if (line_.empty()) return finish_head(at);
        if (head_.headers.size() >= options_.header_count_max) return fail(at, 431, "too many header fields");
        field parsed;
        if (const auto failure = parse_field_line(line_, parsed)) return fail(at, *failure);
        head_.headers.add(std::move(parsed.name), std::move(parsed.value));
        line_.clear();
        return std::nullopt;
    }

    parse_result finish_head(std::size_t at) {
        head_complete_ = true;
        line_.clear();
        if (const auto failure = derive_head_fields(head_, options_)) return fail(at, *failure);
        switch (head_.framing) {
            case body_framing::none: state_ = state::body_none; break;
            case body_framing::content_length:
                state_ = state::fixed_body;
                remaining_ = head_.content_length;
                body_declared_ = head_.content_length;
                break;
            case body_framing::chunked:
                state_ = state::chunk_size;
                start_chunk();
                break;
        }
        return event(at, parse_event::head_done);
    }

    // METHOD SP request-target SP HTTP-version, with exactly one SP between the parts.
    static std::optional<http::error> parse_request_line(std::string_view line, request_head& head) {
        const std::size_t first_space = line.find(' ');
        if (first_space == std::string_view::npos) return http::error{400, "malformed request line"};
        const std::string_view method = line.substr(0, first_space);
        if (!detail::is_token(method)) return http::error{400, "method is not a token"};
        const std::string_view rest = line.substr(first_space + 1);
        const std::size_t second_space = rest.find(' ');
        if (second_space == std::string_view::npos) return http::error{400, "malformed request line"};
        const std::string_view target = rest.substr(0, second_space);
        if (target.empty()) return http::error{400, "empty request target"};
        for (const char c : target) {
            const auto byte = static_cast<unsigned char>(c);
            if (byte <= 0x20 || byte >= 0x7F) return http::error{400, "invalid character in request target"};
        }
        const result<http_version> version = parse_version(rest.substr(second_space + 1));
        if (!version) return version.error();
        head.method = method;
        head.target = target;
        head.version = *version;
        return std::nullopt;
    }

    // HTTP-version = "HTTP/" DIGIT "." DIGIT; only 1.0 and 1.1 are served.
    static result<http_version> parse_version(std::string_view text) {
        const bool well_formed = text.size() == 8 && text.substr(0, 5) == "HTTP/" && detail::is_digit(text[5]) &&
                                 text[6] == '.' && detail::is_digit(text[7]);
        if (!well_formed) return http::error{400, "malformed HTTP version"};
        if (text == "HTTP/1.1") return http_version::http_1_1;
        if (text == "HTTP/1.0") return http_version::http_1_0;
        return http::error{505, "HTTP version not supported"};
    }

    // field-name ":" OWS field-value OWS
    static std::optional<http::error> parse_field_line(std::string_view line, field& out) {
        assert(!line.empty());
        if (detail::is_ows(line.front())) return http::error{400, "obsolete line folding"};
        const std::size_t colon = line.find(':');
        if (colon == std::string_view::npos) return http::error{400, "field line without colon"};
        const std::string_view name = line.substr(0, colon);
        if (!name.empty() && detail::is_ows(name.back())) return http::error{400, "whitespace before colon"};
        if (!detail::is_token(name)) return http::error{400, "invalid field name"};
        const std::string_view value = detail::trim_ows(line.substr(colon + 1));
        if (!detail::is_field_value(value)) return http::error{400, "invalid character in field value"};
        out.name = name;
        out.value = value;
        return std::nullopt;
    }

    // ---- derived head fields ------------------------------------------------------------------

    static std::optional<http::error> derive_head_fields(request_head& head, const request_parser_options& options) {
        head.keep_alive = decide_keep_alive(head);
        const std::size_t hosts = head.headers.count("host");
        if (hosts > 1) return http::error{400, "several Host fields"};
        if (hosts == 0 && options.host_required && head.version == http_version::http_1_1) {
            return http::error{400, "missing Host field"};
        }
        const bool has_transfer_encoding = head.headers.contains("transfer-encoding");
        const bool has_content_length = head.headers.contains("content-length");
        if (has_transfer_encoding && has_content_length) {
            return http::error{400, "both Content-Length and Transfer-Encoding"};
        }
        if (has_transfer_encoding) {
            if (const auto failure = decide_transfer_encoding(head)) return failure;
        } else if (has_content_length) {
            if (const auto failure = decide_content_length(head)) return failure;
        }
        if (const auto failure = decide_expect(head)) return failure;
        if (head.framing == body_framing::content_length && head.content_length > options.body_size_max) {
            return http::error{413, "Content-Length above the body size limit"};
        }
        return std::nullopt;
    }

    static bool decide_keep_alive(const request_head& head) {
        bool close = false;
        bool keep_alive = false;
        for (const std::string_view value : head.find_all("connection")) {
            detail::for_each_list_element(value, [&](std::string_view option) {
                close = close || detail::iequals(option, "close");
                keep_alive = keep_alive || detail::iequals(option, "keep-alive");
                return true;
            });
        }
        if (close) return false;
        return head.version == http_version::http_1_1 || keep_alive;
    }

    // Only "chunked", alone, is supported (RFC 9112 §6.1, §6.3, §7).
    static std::optional<http::error> decide_transfer_encoding(request_head& head) {
        if (head.version == http_version::http_1_0) return http::error{400, "Transfer-Encoding in HTTP/1.0"};
        std::size_t codings = 0;
        std::size_t chunked = 0;
        bool chunked_last = false;
        for (const std::string_view value : head.find_all("transfer-encoding")) {
            detail::for_each_list_element(value, [&](std::string_view coding) {
                chunked_last = detail::iequals(coding, "chunked");
                chunked += chunked_last ? 1 : 0;
                ++codings;
                return true;
            });
        }
        if (codings == 0) return http::error{400, "empty Transfer-Encoding"};
        if (chunked > 0 && !chunked_last) return http::error{400, "chunked is not the final transfer coding"};
        if (chunked > 1) return http::error{400, "chunked applied more than once"};
        if (codings > 1 || chunked == 0) return http::error{501, "unsupported transfer coding"};
        head.framing = body_framing::chunked;
        return std::nullopt;
    }

    // Several fields, or a comma list, are accepted only if every value is the same number.
    static std::optional<http::error> decide_content_length(request_head& head) {
        std::optional<std::uint64_t> length;
        std::optional<http::error> failure;
        for (const std::string_view value : head.find_all("content-length")) {
            detail::for_each_list_element(value, [&](std::string_view element) {
                std::uint64_t n = 0;
                if (!detail::parse_decimal(element, n)) {
                    failure = http::error{400, "invalid Content-Length"};
                } else if (length && *length != n) {
                    failure = http::error{400, "conflicting Content-Length values"};
                }
                length = n;
                return !failure;
            });
            if (failure) return failure;
        }
        if (!length) return http::error{400, "empty Content-Length"};
        head.framing = body_framing::content_length;
        head.content_length = *length;
        return std::nullopt;
    }

    static std::optional<http::error> decide_expect(request_head& head) {
        bool continue_expected = false;
        bool unknown = false;
        for (const std::string_view value : head.find_all("expect")) {
            detail::for_each_list_element(value, [&](std::string_view expectation) {
                if (detail::iequals(expectation, "100-continue")) {
                    continue_expected = true;
                } else {
                    unknown = true;
                }
                return !unknown;
            });
        }
        if (unknown) return http::error{417, "unsupported expectation"};
        head.expect_continue = continue_expected && head.version == http_version::http_1_1;
        return std::nullopt;
    }

    // ---- body ---------------------------------------------------------------------------------

    // Hands out up to remaining_ bytes of the input as one body_data event.
    parse_result take_body(std::span<const std::uint8_t> input, std::size_t& at) {
        assert(remaining_ > 0 && at < input.size());
        const auto size = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, input.size() - at));
        const auto body = input.subspan(at, size);
        at += size;
        remaining_ -= size;
        body_bytes_ += size;
        return {at, parse_event::body_data, body, {}};
    }

    std::optional<parse_result> on_fixed_body(std::span<const std::uint8_t> input, std::size_t& at) {
        if (remaining_ == 0) {
            state_ = state::done;
            return event(at, parse_event::message_done);
        }
        if (at == input.size()) return event(at, parse_event::need_more);
        return take_body(input, at);
    }

    // chunk-size [ chunk-ext ] CRLF, chunk-size = 1*HEXDIG
    std::optional<parse_result> on_chunk_size_byte(std::span<const std::uint8_t> input, std::size_t& at) {
        if (at == input.size()) return event(at, parse_event::need_more);
        const auto c = static_cast<char>(input[at++]);
        if (state_ == state::chunk_size_lf) {
            if (c != '\n') return fail(at, 400, "chunk size line not terminated by CRLF");
            return on_chunk_size_line(at);
        }
        if (state_ == state::chunk_size) {
            const int digit = detail::hex_value(c);
            if (digit >= 0) {
                if (++chunk_digits_ > chunk_size_digits_max) return fail(at, 400, "chunk size too long");
                assert(chunk_size_ <= (UINT64_MAX >> 4));
                chunk_size_ = chunk_size_ << 4 | static_cast<std::uint64_t>(digit);
                return std::nullopt;
            }
            if (chunk_digits_ == 0) return fail(at, 400, "chunk size is not hexadecimal");
            state_ = state::chunk_extension;
        }
        return on_chunk_extension_char(c, at);
    }

    // BWS [ ";" extensions ] up to CR; extensions are ignored.
    std::optional<parse_result> on_chunk_extension_char(char c, std::size_t at) {
        if (c == '\r') {
            state_ = state::chunk_size_lf;
            return std::nullopt;
        }
        if (++extension_bytes_ > options_.chunk_extension_max) return fail(at, 400, "chunk extension too long");
        if (!extension_started_) {
            if (c == ';') {
                extension_started_ = true;
            } else if (!detail::is_ows(c)) {
                return fail(at, 400, "malformed chunk size line");
            }
            return std::nullopt;
        }
        if (!detail::is_field_value_char(c)) return fail(at, 400, "invalid character in chunk extension");
        return std::nullopt;
    }

    std::optional<parse_result> on_chunk_size_line(std::size_t at) {
        if (chunk_size_ == 0) {
            state_ = state::trailer;
            line_.clear();
            return std::nullopt;
        }
        if (chunk_size_ > options_.body_size_max - body_declared_) {
            return fail(at, 413, "chunked body above the body size limit");
        }
        body_declared_ += chunk_size_;
        remaining_ = chunk_size_;
        state_ = state::chunk_data;
        return std::nullopt;
    }

    std::optional<parse_result> on_chunk_data(std::span<const std::uint8_t> input, std::size_t& at) {
        if (at == input.size()) return event(at, parse_event::need_more);
        parse_result out = take_body(input, at);
        if (remaining_ == 0) state_ = state::chunk_data_cr;
        return out;
    }

    std::optional<parse_result> on_chunk_data_end(std::span<const std::uint8_t> input, std::size_t& at) {
        if (at == input.size()) return event(at, parse_event::need_more);
        const auto c = static_cast<char>(input[at++]);
        if (state_ == state::chunk_data_cr) {
            if (c != '\r') return fail(at, 400, "chunk data not followed by CRLF");
            state_ = state::chunk_data_lf;
            return std::nullopt;
        }
        if (c != '\n') return fail(at, 400, "chunk data not followed by CRLF");
        state_ = state::chunk_size;
        start_chunk();
        return std::nullopt;
    }

    // trailer-section = *( field-line CRLF ) CRLF; fields are validated and dropped.
    std::optional<parse_result> on_trailer_byte(std::span<const std::uint8_t> input, std::size_t& at) {
        if (at == input.size()) return event(at, parse_event::need_more);
        const auto c = static_cast<char>(input[at++]);
        if (++trailer_bytes_ > options_.trailer_bytes_max) return fail(at, 400, "trailer section too large");
        const line_step step = take_line_byte(c);
        if (step == line_step::malformed) return fail(at, 400, "line not terminated by CRLF");
        if (step == line_step::partial) return std::nullopt;
        if (line_.empty()) {
            state_ = state::done;
            return event(at, parse_event::message_done);
        }
        field ignored;
        if (const auto failure = parse_field_line(line_, ignored)) return fail(at, *failure);
        line_.clear();
        return std::nullopt;
    }

    request_parser_options options_;
    state state_ = state::request_line;
    request_head head_;
    bool head_complete_ = false;
    std::string line_;  // the line being collected, CRLF excluded
    bool cr_pending_ = false;
    std::size_t empty_lines_ = 0;
    std::size_t header_bytes_ = 0;
    std::size_t trailer_bytes_ = 0;
    std::uint64_t remaining_ = 0;  // body bytes left in the Content-Length body or current chunk
    std::uint64_t body_bytes_ = 0;
    std::uint64_t body_declared_ = 0;
    std::uint64_t chunk_size_ = 0;
    std::size_t chunk_digits_ = 0;
    std::size_t extension_bytes_ = 0;
    bool extension_started_ = false;
    http::error failure_{};
};

}  // namespace toastyfs::http
