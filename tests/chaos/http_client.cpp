#include "http_client.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

#include "process.hpp"

namespace chaos {

const std::string* http_response::header(std::string_view name) const {
    for (const auto& [n, v] : headers)
        if (n == name) return &v;
    return nullptr;
}

http_client::~http_client() { close(); }

void http_client::close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    buffer_.clear();
}

std::optional<http_response> http_client::fail(std::string why) {
    error_ = std::move(why);
    close();
    return std::nullopt;
}

namespace {

int remaining_ms(std::uint64_t deadline_ns) {
    const std::uint64_t now = now_ns();
    if (now >= deadline_ns) return 0;
    return static_cast<int>((deadline_ns - now) / 1'000'000 + 1);
}

std::string lower(std::string_view text) {
    std::string out(text);
    for (char& c : out)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return out;
}

std::string_view trim(std::string_view text) {
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r')) text.remove_suffix(1);
    return text;
}

}  // namespace

bool http_client::connect_to(std::uint64_t deadline_ns) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return false;
    const int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port_);
    if (::inet_pton(AF_INET, host_.c_str(), &address.sin_addr) != 1) return false;
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0) return true;
    if (errno != EINPROGRESS) return false;
    pollfd p{fd_, POLLOUT, 0};
    if (::poll(&p, 1, remaining_ms(deadline_ns)) != 1) return false;
    int error = 0;
    socklen_t length = sizeof error;
    ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &error, &length);
    return error == 0;
}

bool http_client::send_all(std::string_view bytes, std::uint64_t deadline_ns) {
    while (!bytes.empty()) {
        const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (n > 0) {
            bytes.remove_prefix(static_cast<std::size_t>(n));
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno != EAGAIN) return false;
        pollfd p{fd_, POLLOUT, 0};
        const int ms = remaining_ms(deadline_ns);
        if (ms == 0 || ::poll(&p, 1, ms) != 1) return false;
    }
    return true;
}

bool http_client::fill(std::uint64_t deadline_ns) {
    char chunk[65536];
    for (;;) {
        const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
        if (n > 0) {
            buffer_.append(chunk, static_cast<std::size_t>(n));
            return buffer_.size() <= response_size_max;
        }
        if (n == 0) return false;
        if (errno == EINTR) continue;
        if (errno != EAGAIN) return false;
        pollfd p{fd_, POLLIN, 0};
        const int ms = remaining_ms(deadline_ns);
        if (ms == 0 || ::poll(&p, 1, ms) != 1) return false;
    }
}

bool http_client::read_response(std::string_view method, std::uint64_t deadline_ns, http_response& out,
                                bool& keep_alive) {
    std::size_t header_end;
    while ((header_end = buffer_.find("\r\n\r\n")) == std::string::npos) {
        if (buffer_.size() > 65536 || !fill(deadline_ns)) return false;
    }
    std::string_view head(buffer_.data(), header_end);
    const std::size_t line_end = head.find("\r\n");
    const std::string_view status_line = head.substr(0, line_end);
    if (!status_line.starts_with("HTTP/1.1 ") || status_line.size() < 12) return false;
    const auto parsed = std::from_chars(status_line.data() + 9, status_line.data() + 12, out.status);
    if (parsed.ec != std::errc() || out.status < 100 || out.status > 599) return false;
    std::size_t position = line_end == std::string_view::npos ? head.size() : line_end + 2;
    while (position < head.size()) {
        std::size_t next = head.find("\r\n", position);
        if (next == std::string_view::npos) next = head.size();
        const std::string_view line = head.substr(position, next - position);
        const std::size_t colon = line.find(':');
        if (colon == std::string_view::npos) return false;
        out.headers.emplace_back(lower(line.substr(0, colon)), std::string(trim(line.substr(colon + 1))));
        position = next + 2;
    }
    buffer_.erase(0, header_end + 4);
    keep_alive = true;
    if (const std::string* c = out.header("connection"); c && lower(*c) == "close") keep_alive = false;
    if (out.status == 100) {  // interim: the real answer follows
        out = {};
        return read_response(method, deadline_ns, out, keep_alive);
    }
    if (method == "HEAD" || out.status == 204 || out.status == 304) return true;
    out.complete = read_body(deadline_ns, out, keep_alive);
    if (!out.complete) keep_alive = false;
    return true;
}

bool http_client::read_body(std::uint64_t deadline_ns, http_response& out, bool& keep_alive) {
    const std::string* encoding = out.header("transfer-encoding");
    if (encoding && lower(*encoding) == "chunked") {
        for (;;) {
            std::size_t size_end;
            while ((size_end = buffer_.find("\r\n")) == std::string::npos)
                if (!fill(deadline_ns)) return false;
            std::size_t size = 0;
            const auto r = std::from_chars(buffer_.data(), buffer_.data() + size_end, size, 16);
            if (r.ec != std::errc() || size > response_size_max) return false;
            while (buffer_.size() < size_end + 2 + size + 2)
                if (!fill(deadline_ns)) return false;
            out.body.append(buffer_, size_end + 2, size);
            if (out.body.size() > response_size_max) return false;
            if (size == 0) {
                // No trailers are sent by the proxy: the last chunk is "0\r\n\r\n".
                buffer_.erase(0, size_end + 4);
                return true;
            }
            buffer_.erase(0, size_end + 2 + size + 2);
        }
    }
    const std::string* length_text = out.header("content-length");
    if (!length_text) {  // delimited by close
        while (fill(deadline_ns)) {}
        out.body = std::move(buffer_);
        buffer_.clear();
        keep_alive = false;
        return true;
    }
    std::size_t length = 0;
    const auto r = std::from_chars(length_text->data(), length_text->data() + length_text->size(), length);
    if (r.ec != std::errc() || length > response_size_max) return false;
    while (buffer_.size() < length)
        if (!fill(deadline_ns)) {
            out.body = buffer_;
            return false;
        }
    out.body = buffer_.substr(0, length);
    buffer_.erase(0, length);
    return true;
}

std::optional<http_response> http_client::request(std::string_view method, std::string_view target,
                                                  std::string_view body,
                                                  const std::vector<std::pair<std::string, std::string>>& headers) {
    const std::uint64_t deadline = now_ns() + timeout_ms_ * 1'000'000ull;
    if (fd_ < 0 && !connect_to(deadline)) return fail("connect: " + std::string(std::strerror(errno)));
    std::string request;
    request.reserve(256 + body.size());
    request.append(method).append(" ").append(target).append(" HTTP/1.1\r\nHost: chaos\r\n");
    for (const auto& [name, value] : headers) request.append(name).append(": ").append(value).append("\r\n");
    if (method == "PUT" || !body.empty())
        request.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n");
    request.append("\r\n").append(body);
    if (!send_all(request, deadline)) return fail("send failed or timed out");
    http_response response;
    bool keep_alive = true;
    if (!read_response(method, deadline, response, keep_alive)) return fail("no answer before the deadline");
    if (!response.complete) error_ = "the body was cut short";
    if (!keep_alive) close();
    return response;
}

}  // namespace chaos
