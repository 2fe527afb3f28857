// HTTP/1.1 response heads and chunked-encoding frames, appended to a std::string or a byte vector.
//
// The status line always says HTTP/1.1, also to HTTP/1.0 clients (RFC 9110 §6.2: a server sends
// the highest minor version it conforms to). Fields are refused, with an error value and nothing
// appended, if they could split the response: a name that is not a token, a value holding CR,
// LF, NUL or another control character. So no caller can inject a field or a second response.
#pragma once

#include <cassert>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "toastyfs/http/detail/text.hpp"
#include "toastyfs/http/error.hpp"
#include "toastyfs/http/fields.hpp"

namespace toastyfs::http {

/// The reason phrase of a status code, or "" for codes this table does not know (an empty
/// reason phrase is valid HTTP).
inline std::string_view reason_phrase(std::uint16_t status) noexcept {
    switch (status) {
        case 100: return "Continue";
        case 101: return "Switching Protocols";
        case 200: return "OK";
        case 201: return "Created";
        case 202: return "Accepted";
        case 204: return "No Content";
        case 206: return "Partial Content";
        case 301: return "Moved Permanently";
        case 302: return "Found";
        case 304: return "Not Modified";
        case 307: return "Temporary Redirect";
        case 308: return "Permanent Redirect";
        case 400: return "Bad Request";
        case 401: return "Unauthorized";
        case 403: return "Forbidden";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 408: return "Request Timeout";
        case 409: return "Conflict";
        case 410: return "Gone";
        case 411: return "Length Required";
        case 412: return "Precondition Failed";
        case 413: return "Content Too Large";
        case 414: return "URI Too Long";
        case 415: return "Unsupported Media Type";
        case 416: return "Range Not Satisfiable";
        case 417: return "Expectation Failed";
        case 429: return "Too Many Requests";
        case 431: return "Request Header Fields Too Large";
        case 500: return "Internal Server Error";
        case 501: return "Not Implemented";
        case 502: return "Bad Gateway";
        case 503: return "Service Unavailable";
        case 504: return "Gateway Timeout";
        case 505: return "HTTP Version Not Supported";
        case 507: return "Insufficient Storage";
        default: return "";
    }
}

/// The interim response to `Expect: 100-continue`, complete (no fields).
inline constexpr std::string_view continue_response = "HTTP/1.1 100 Continue\r\n\r\n";

/// Where serialized bytes go: std::string, std::vector<std::uint8_t> or std::vector<char>.
template <typename T>
concept byte_buffer =
    std::same_as<T, std::string> || std::same_as<T, std::vector<std::uint8_t>> || std::same_as<T, std::vector<char>>;

struct response_head {
    std::uint16_t status = 200;
    http::fields headers;

    /// Content-Length: size, replacing any Content-Length and removing Transfer-Encoding.
    void set_content_length(std::uint64_t size) {
        headers.erase("transfer-encoding");
        headers.set("Content-Length", std::to_string(size));
    }
    /// Transfer-Encoding: chunked, removing any Content-Length. Frame the body with
    /// append_chunk_header / append_chunk_end / append_last_chunk.
    void set_chunked() {
        headers.erase("content-length");
        headers.set("Transfer-Encoding", "chunked");
    }
    /// Connection: close (the caller closes after sending the response).
    void set_connection_close() { headers.set("Connection", "close"); }
};

namespace detail {

template <byte_buffer Buffer>
void append_bytes(Buffer& out, std::string_view bytes) {
    out.insert(out.end(), bytes.begin(), bytes.end());
}

inline std::optional<http::error> check_response_head(const response_head& head) {
    if (head.status < 100 || head.status > 599) return http::error{500, "status code outside 100-599"};
    for (const field& f : head.headers) {
        if (!is_token(f.name)) return http::error{500, "response field name is not a token"};
        if (!is_field_value(f.value)) return http::error{500, "control character in response field value"};
    }
    const bool has_length = head.headers.contains("content-length");
    const bool has_encoding = head.headers.contains("transfer-encoding");
    if (has_length && has_encoding) return http::error{500, "both Content-Length and Transfer-Encoding"};
    const bool bodiless = head.status < 200 || head.status == 204;
    if (bodiless && (has_length || has_encoding)) {
        return http::error{500, "framing field in a 1xx or 204 response"};  // RFC 9110 §8.6, RFC 9112 §6.1
    }
    if (head.status == 304 && has_encoding) return http::error{500, "Transfer-Encoding in a 304 response"};
    return std::nullopt;
}

inline std::string format_response_head(const response_head& head) {
    std::string text = "HTTP/1.1 ";
    text += std::to_string(head.status);
    text += ' ';
    text += reason_phrase(head.status);
    text += "\r\n";
    for (const field& f : head.headers) {
        text += f.name;
        text += ": ";
        text += f.value;
        text += "\r\n";
    }
    text += "\r\n";
    return text;
}

}  // namespace detail

/// Appends the status line, the fields and the blank line. On error (status 500: a bug in the
/// caller) nothing is appended. Checked: status 100-599, names are tokens, values hold no
/// control character but HTAB, not both Content-Length and Transfer-Encoding, no framing field
/// in 1xx/204 responses, no Transfer-Encoding in a 304.
template <byte_buffer Buffer>
result<void> append_response_head(const response_head& head, Buffer& out) {
    if (const auto failure = detail::check_response_head(head)) return *failure;
    detail::append_bytes(out, detail::format_response_head(head));
    return {};
}

/// Longest chunk header: 16 hex digits and CRLF.
inline constexpr std::size_t chunk_header_size_max = 18;

/// "<size in hex>\r\n" before `size` bytes of chunk data. size 0 would end the body: use
/// append_last_chunk for that (asserted).
template <byte_buffer Buffer>
void append_chunk_header(std::uint64_t size, Buffer& out) {
    assert(size > 0);
    static constexpr char digits[] = "0123456789abcdef";
    char text[chunk_header_size_max];
    std::size_t start = 16;
    do {
        text[--start] = digits[size & 15];
        size >>= 4;
    } while (size != 0);
    text[16] = '\r';
    text[17] = '\n';
    detail::append_bytes(out, std::string_view(text + start, chunk_header_size_max - start));
}

/// The CRLF that follows each chunk's data.
template <byte_buffer Buffer>
void append_chunk_end(Buffer& out) {
    detail::append_bytes(out, "\r\n");
}

/// The last chunk and an empty trailer section: ends a chunked body.
template <byte_buffer Buffer>
void append_last_chunk(Buffer& out) {
    detail::append_bytes(out, "0\r\n\r\n");
}

/// One whole chunk: header, data, CRLF. Empty data appends nothing (an empty chunk would end the
/// body).
template <byte_buffer Buffer>
void append_chunk(std::string_view data, Buffer& out) {
    if (data.empty()) return;
    append_chunk_header(data.size(), out);
    detail::append_bytes(out, data);
    append_chunk_end(out);
}

}  // namespace toastyfs::http
