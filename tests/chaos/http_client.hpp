#pragma once

// A blocking HTTP/1.1 client for the nemesis workload: one keep-alive connection, every call
// bounded by a deadline. Any transport problem (refused, reset, timeout, malformed answer) closes
// the connection and returns no response, which the caller records as an unknown outcome.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace chaos {

struct http_response {
    int status = 0;
    /// False when the head arrived but the body was cut short (the server closed, or the
    /// deadline passed): status and headers are real, the body is partial.
    bool complete = true;
    std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
    std::string body;

    const std::string* header(std::string_view name) const;
};

class http_client {
public:
    static constexpr std::size_t response_size_max = 16u << 20;

    http_client(std::string host, std::uint16_t port, std::uint64_t timeout_ms)
        : host_(std::move(host)), port_(port), timeout_ms_(timeout_ms) {}
    http_client(const http_client&) = delete;
    http_client& operator=(const http_client&) = delete;
    ~http_client();

    /// No response when nothing usable arrived; a response with complete == false when only the
    /// head did (the connection is closed then either way).
    std::optional<http_response> request(std::string_view method, std::string_view target, std::string_view body = {},
                                         const std::vector<std::pair<std::string, std::string>>& headers = {});
    /// Why the last request returned nothing.
    const std::string& last_error() const { return error_; }
    void close();

private:
    bool connect_to(std::uint64_t deadline_ns);
    bool send_all(std::string_view bytes, std::uint64_t deadline_ns);
    bool fill(std::uint64_t deadline_ns);  // reads more into buffer_
    /// False when no complete head arrived; out.complete says whether the body did.
    bool read_response(std::string_view method, std::uint64_t deadline_ns, http_response& out, bool& keep_alive);
    bool read_body(std::uint64_t deadline_ns, http_response& out, bool& keep_alive);
    std::optional<http_response> fail(std::string why);

    std::string host_;
    std::uint16_t port_;
    std::uint64_t timeout_ms_;
    int fd_ = -1;
    std::string buffer_;  // received, not yet consumed
    std::string error_;
};

}  // namespace chaos
