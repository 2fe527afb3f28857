// The second translation unit of the umbrella test (see http_test.cpp): same headers, same
// inline functions, one program.
#include "toastyfs/http/http.hpp"

#include <string>
#include <string_view>

namespace http_odr {

std::string respond_other(std::string_view request) {
    namespace http = toastyfs::http;
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
    if (!http::append_response_head(head, out)) return "serializer refused";
    return out + body;
}

}  // namespace http_odr
