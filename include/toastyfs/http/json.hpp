// JSON string literals (RFC 8259 §7) for listings and error bodies.
//
// Escaped: '"' and '\' (backslash-escaped) and every control character U+0000-U+001F (as
// \u00XX, also \n and \t: one rule, no special cases). Everything else passes through, so UTF-8
// keys stay readable. Input is meant to be valid UTF-8 (object keys are, see uri.hpp); any byte
// that is not part of a valid sequence is replaced by U+FFFD, so the output is always valid
// JSON whatever the input.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "toastyfs/http/detail/utf8.hpp"

namespace toastyfs::http {

/// Appends `text` as a quoted JSON string.
inline void append_json_string(std::string& out, std::string_view text) {
    static constexpr char digits[] = "0123456789abcdef";
    out.reserve(out.size() + text.size() + 2);
    out += '"';
    std::size_t at = 0;
    while (at < text.size()) {
        const auto byte = static_cast<unsigned char>(text[at]);
        if (byte == '"' || byte == '\\') {
            out += '\\';
            out += static_cast<char>(byte);
            ++at;
        } else if (byte < 0x20) {
            out += "\\u00";
            out += digits[byte >> 4];
            out += digits[byte & 15];
            ++at;
        } else {
            const std::size_t size = detail::utf8_sequence_size(text, at);
            if (size == 0) {
                out += "\xEF\xBF\xBD";  // U+FFFD REPLACEMENT CHARACTER
                ++at;
            } else {
                out.append(text.substr(at, size));
                at += size;
            }
        }
    }
    out += '"';
}

/// `text` as a quoted JSON string.
inline std::string json_string(std::string_view text) {
    std::string out;
    append_json_string(out, text);
    return out;
}

}  // namespace toastyfs::http
