#define BOOST_TEST_MODULE http_server
// The header under test comes first: proves it is self-contained.
#include "platform/http_server.hpp"

#ifndef BOOST_TEST_DYN_LINK  // meson's boost dependency may define it already
#define BOOST_TEST_DYN_LINK
#endif
#include <boost/test/unit_test.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

namespace http = toastyfs::http;
using platform::http_exchange;

constexpr std::uint64_t ms = 1'000'000;
constexpr std::uint32_t loopback = 0x7f000001;  // 127.0.0.1
constexpr std::size_t kib = 1024;
constexpr std::size_t mib = 1024 * 1024;
constexpr int wait_ms_default = 5'000;  // every wait is bounded by this

std::uint8_t pattern_byte(std::uint64_t i) { return static_cast<std::uint8_t>(i * 131 + (i >> 9) + 7); }

std::string pattern(std::size_t size, std::uint64_t first = 0) {
    std::string out(size, '\0');
    for (std::size_t i = 0; i < size; i++) out[i] = static_cast<char>(pattern_byte(first + i));
    return out;
}

std::uint64_t fnv1a(std::uint64_t hash, std::span<const std::uint8_t> bytes) {
    for (const std::uint8_t b : bytes) hash = (hash ^ b) * 0x100000001b3ULL;
    return hash;
}
constexpr std::uint64_t fnv_basis = 0xcbf29ce484222325ULL;

std::uint64_t query_number(std::string_view target, std::string_view name, std::uint64_t fallback) {
    const std::size_t question = target.find('?');
    if (question == std::string_view::npos) return fallback;
    std::string_view query = target.substr(question + 1);
    while (!query.empty()) {
        const std::size_t amp = query.find('&');
        const std::string_view pair = query.substr(0, amp);
        if (pair.size() > name.size() && pair.substr(0, name.size()) == name && pair[name.size()] == '=') {
            return std::stoull(std::string(pair.substr(name.size() + 1)));
        }
        if (amp == std::string_view::npos) break;
        query = query.substr(amp + 1);
    }
    return fallback;
}

// ---- the test handler ------------------------------------------------------------------------

// One request as the handler saw it. Every server callback after on_abort counts as late.
struct exchange_record {
    http_exchange* exchange = nullptr;
    std::string method, target;
    int abort_calls = 0;
    int late_callbacks = 0;
    int end_calls = 0;
    bool aborted = false;
    bool responded = false;
    int calls_after_respond = 0;
    std::string body;
    std::uint64_t body_bytes = 0;
    std::uint64_t body_hash = fnv_basis;
    // Pausing consumer (/pause): takes bytes up to the next `pause_every` boundary, then holds.
    bool hold = false;
    std::uint64_t pause_every = 0;
    int pauses = 0;
    int calls_while_held = 0;
    bool awaiting_resume = false;
    // Streaming responses.
    std::uint64_t pieces_left = 0;
    std::uint64_t piece_size = 0;
    std::uint64_t sent = 0;
    bool chunked = false;
    std::string piece;
    int written_calls = 0;

    void late_check() {
        if (aborted) ++late_callbacks;
    }
};

class test_handler : public platform::http_handler {
public:
    std::vector<std::shared_ptr<exchange_record>> records;
    platform::http_server* server = nullptr;

    void on_request(http_exchange& exchange) override {
        auto r = std::make_shared<exchange_record>();
        records.push_back(r);
        r->exchange = &exchange;
        r->method = exchange.request().method;
        r->target = exchange.request().target;
        exchange.on_abort([r] {
            ++r->abort_calls;
            r->late_check();
            r->aborted = true;
        });
        const std::string_view path = std::string_view(r->target).substr(0, r->target.find('?'));
        if (path == "/hello") {
            exchange.respond_with(200, "text/plain", "hello " + r->target);
        } else if (path == "/echo") {
            start_echo(r);
        } else if (path == "/echo-later" || path == "/slow") {
            // The test acts later (start_echo, respond from outside the loop) or never.
        } else if (path == "/pause") {
            start_pause(r, query_number(r->target, "every", 1 * mib));
        } else if (path == "/early") {
            exchange.respond_with(static_cast<std::uint16_t>(query_number(r->target, "status", 413)), "text/plain",
                                  "refused");
        } else if (path == "/stream" || path == "/chunked") {
            start_stream(r, path == "/chunked", query_number(r->target, "n", 10),
                         query_number(r->target, "size", 1000));
        } else if (path == "/burst") {
            start_burst(r, query_number(r->target, "n", 10), query_number(r->target, "size", 1000));
        } else if (path == "/infinite") {
            start_stream(r, true, UINT64_MAX, 64 * kib);
        } else if (path == "/respond-mid-body") {
            respond_mid_body(r, query_number(r->target, "at", 1));
        } else if (path == "/short") {
            http::response_head head;
            head.set_content_length(100);
            r->piece = "ten bytes.";
            exchange.respond(std::move(head));
            exchange.write({reinterpret_cast<const std::uint8_t*>(r->piece.data()), r->piece.size()},
                           [r] { r->late_check(); });
            exchange.finish();
        } else if (path == "/shutdown") {
            server->shutdown();  // aborts this very exchange: on_abort runs inside
        } else if (path == "/big") {
            exchange.respond_with(200, "application/octet-stream",
                                  pattern(static_cast<std::size_t>(query_number(r->target, "size", 1000))));
        } else if (path == "/nocontent") {
            exchange.respond_with(204, "", "");
        } else if (path == "/nolength") {
            http::response_head head;
            r->piece = "close-delimited body";
            exchange.respond(std::move(head));
            exchange.write({reinterpret_cast<const std::uint8_t*>(r->piece.data()), r->piece.size()},
                           [r] { r->late_check(); });
            exchange.finish();
        } else if (path == "/abandon") {
            http::response_head head;
            head.set_content_length(100);
            r->piece = "only ten..";
            exchange.respond(std::move(head));
            exchange.write({reinterpret_cast<const std::uint8_t*>(r->piece.data()), r->piece.size()}, [r] {
                r->late_check();
                r->exchange->abandon();
            });
        } else {
            exchange.respond_with(404, "text/plain", "no route");
        }
    }

    void start_echo(const std::shared_ptr<exchange_record>& r) {
        r->exchange->read_body(
            [r](std::span<const std::uint8_t> bytes) {
                r->late_check();
                r->body.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
                return bytes.size();
            },
            [r] {
                r->late_check();
                ++r->end_calls;
                r->exchange->respond_with(200, "application/octet-stream", r->body);
            });
    }

    // Responds from inside the consumer once `at` bytes arrived: delivery must stop there.
    void respond_mid_body(const std::shared_ptr<exchange_record>& r, std::uint64_t at) {
        r->exchange->read_body(
            [r, at](std::span<const std::uint8_t> bytes) {
                r->late_check();
                if (r->responded) ++r->calls_after_respond;
                r->body_bytes += bytes.size();
                if (!r->responded && r->body_bytes >= at) {
                    r->responded = true;
                    r->exchange->respond_with(507, "text/plain", "full after " + std::to_string(r->body_bytes));
                }
                return bytes.size();
            },
            [r] {
                r->late_check();
                ++r->calls_after_respond;
            });
    }

    void start_pause(const std::shared_ptr<exchange_record>& r, std::uint64_t every) {
        r->pause_every = every;
        r->hold = true;  // the first piece finds the consumer full
        ++r->pauses;
        r->exchange->read_body(
            [r](std::span<const std::uint8_t> bytes) -> std::size_t {
                r->late_check();
                if (r->awaiting_resume) ++r->calls_while_held;  // offered again without resume_body
                if (r->hold) {
                    r->awaiting_resume = true;
                    return 0;
                }
                const std::uint64_t boundary = (r->body_bytes / r->pause_every + 1) * r->pause_every;
                const auto take =
                    static_cast<std::size_t>(std::min<std::uint64_t>(bytes.size(), boundary - r->body_bytes));
                r->body_hash = fnv1a(r->body_hash, bytes.first(take));
                r->body_bytes += take;
                if (take < bytes.size()) {  // a partial take: the rest is offered after resume
                    r->hold = true;
                    r->awaiting_resume = true;
                    ++r->pauses;
                }
                return take;
            },
            [r] {
                r->late_check();
                ++r->end_calls;
                r->exchange->respond_with(200, "text/plain",
                                          std::to_string(r->body_bytes) + " " + std::to_string(r->body_hash));
            });
    }

    static void resume(const std::shared_ptr<exchange_record>& r) {
        r->hold = false;
        r->awaiting_resume = false;
        r->exchange->resume_body();
    }

    void start_stream(const std::shared_ptr<exchange_record>& r, bool chunked, std::uint64_t n, std::uint64_t size) {
        r->pieces_left = n;
        r->piece_size = size;
        r->chunked = chunked;
        http::response_head head;
        head.headers.add("Content-Type", "application/octet-stream");
        if (chunked) {
            head.set_chunked();
        } else {
            head.set_content_length(n * size);
        }
        r->exchange->respond(std::move(head));
        if (r->exchange->is_head_request()) {
            r->exchange->finish();
            return;
        }
        write_next(r);
    }

    // One write at a time: the next starts from the previous one's `written`. A chunked stream
    // also makes one empty write after its third piece (nothing may go out for it).
    static void write_next(const std::shared_ptr<exchange_record>& r) {
        if (r->pieces_left == 0) {
            r->exchange->finish();
            return;
        }
        if (r->chunked && r->written_calls == 3 && r->piece.size() != 0) {
            r->piece.clear();
            r->exchange->write({}, [r] {
                r->late_check();
                write_next(r);
            });
            return;
        }
        --r->pieces_left;
        r->piece = pattern(static_cast<std::size_t>(r->piece_size), r->sent);
        r->sent += r->piece_size;
        r->exchange->write({reinterpret_cast<const std::uint8_t*>(r->piece.data()), r->piece.size()}, [r] {
            r->late_check();
            ++r->written_calls;
            write_next(r);
        });
    }

    // All writes queued at once, finish() before any of them is written.
    static void start_burst(const std::shared_ptr<exchange_record>& r, std::uint64_t n, std::uint64_t size) {
        r->piece = pattern(static_cast<std::size_t>(n * size));
        http::response_head head;
        head.set_content_length(n * size);
        r->exchange->respond(std::move(head));
        for (std::uint64_t i = 0; i < n; i++) {
            const auto* data = reinterpret_cast<const std::uint8_t*>(r->piece.data()) + i * size;
            r->exchange->write({data, static_cast<std::size_t>(size)}, [r] {
                r->late_check();
                ++r->written_calls;
            });
        }
        r->exchange->finish();
    }

    int total_aborts() const {
        int n = 0;
        for (const auto& r : records) n += r->abort_calls;
        return n;
    }
    int total_late() const {
        int n = 0;
        for (const auto& r : records) n += r->late_callbacks;
        return n;
    }
};

// ---- fixture -------------------------------------------------------------------------------------

struct fixture {
    platform::event_loop loop;
    test_handler handler;
    std::unique_ptr<platform::http_server> server;
    std::uint16_t port = 0;

    explicit fixture(const std::function<void(platform::http_server_options&)>& adjust = {}) {
        std::string error;
        BOOST_REQUIRE_MESSAGE(loop.open(error), error);
        platform::http_server_options options;
        options.tick_ns = 10 * ms;
        if (adjust) adjust(options);
        platform::io_error io = platform::io_error::none;
        options.listen_socket = loop.listen({.ipv4_host_order = loopback, .port = 0}, options.listen_backlog, io);
        BOOST_REQUIRE(options.listen_socket != platform::invalid_socket);
        server = std::make_unique<platform::http_server>(loop, options, handler);
        handler.server = server.get();
        BOOST_REQUIRE(server->start(io));
        port = server->port();
        BOOST_REQUIRE(port != 0);
    }
    ~fixture() {
        server.reset();  // the destructor drains; it must not assert
        BOOST_CHECK_EQUAL(handler.total_late(), 0);
    }

    void run() { loop.run_once(1 * ms); }

    bool wait_until(const std::function<bool()>& done, int timeout_ms = wait_ms_default) {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
        while (!done()) {
            if (std::chrono::steady_clock::now() > deadline) return false;
            run();
        }
        return true;
    }
    // For waits whose point is that time passes (a timeout must not fire): a loaded machine can
    // only make them longer, never make them fail.
    void run_for(int duration_ms) {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(duration_ms);
        while (std::chrono::steady_clock::now() < deadline) run();
    }
    // Runs the loop until the server has made no progress (no byte moved, no request, response,
    // abort or connection change) for `quiet_turns` turns in a row: whatever the bytes already
    // sent can cause has happened. Counted in loop turns, not milliseconds, so a slow machine
    // does not cut it short. False if the server is still busy at the deadline.
    bool settle(int quiet_turns = 20, int timeout_ms = wait_ms_default) {
        auto snapshot = [&] {
            const auto& c = server->counters();
            return std::array<std::uint64_t, 7>{c.bytes_sent,          c.bytes_received,    c.requests,
                                                c.responses,           c.aborted_exchanges, server->connections(),
                                                handler.records.size()};
        };
        auto last = snapshot();
        int quiet = 0;
        return wait_until(
            [&] {
                const auto now = snapshot();
                quiet = now == last ? quiet + 1 : 0;
                last = now;
                return quiet >= quiet_turns;
            },
            timeout_ms);
    }
};

// ---- a raw, non-blocking client pumped together with the loop ------------------------------------

struct response {
    int status = 0;
    std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
    std::string body;
    std::vector<std::size_t> chunk_sizes;
    bool chunked = false;

    std::optional<std::string> header(std::string_view name) const {
        for (const auto& [n, v] : headers) {
            if (n == name) return v;
        }
        return std::nullopt;
    }
    bool closes() const { return header("connection") == std::optional<std::string>("close"); }
};

enum class parse_state { incomplete, complete, malformed };

// A strict, independent HTTP/1.1 response parser: what a client would accept.
parse_state parse_response(std::string& buffer, bool head_request, bool eof, response& out) {
    const std::size_t head_end = buffer.find("\r\n\r\n");
    if (head_end == std::string::npos) return parse_state::incomplete;
    out = response{};
    const std::string head = buffer.substr(0, head_end + 2);
    if (head.rfind("HTTP/1.1 ", 0) != 0 || head.size() < 12) return parse_state::malformed;
    out.status = std::stoi(head.substr(9, 3));
    std::size_t at = head.find("\r\n") + 2;
    while (at < head.size()) {
        const std::size_t line_end = head.find("\r\n", at);
        const std::string line = head.substr(at, line_end - at);
        const std::size_t colon = line.find(':');
        if (colon == std::string::npos) return parse_state::malformed;
        std::string name = line.substr(0, colon);
        for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        std::string value = line.substr(colon + 1);
        while (!value.empty() && value.front() == ' ') value.erase(0, 1);
        out.headers.emplace_back(std::move(name), std::move(value));
        at = line_end + 2;
    }
    std::size_t body_at = head_end + 4;
    const bool bodiless = head_request || out.status < 200 || out.status == 204 || out.status == 304;
    if (bodiless) {
        buffer.erase(0, body_at);
        return parse_state::complete;
    }
    if (out.header("transfer-encoding")) {
        if (out.header("transfer-encoding") != std::optional<std::string>("chunked") || out.header("content-length")) {
            return parse_state::malformed;
        }
        out.chunked = true;
        while (true) {
            const std::size_t line_end = buffer.find("\r\n", body_at);
            if (line_end == std::string::npos) return parse_state::incomplete;
            const std::string size_text = buffer.substr(body_at, line_end - body_at);
            if (size_text.empty() || size_text.find_first_not_of("0123456789abcdef") != std::string::npos) {
                return parse_state::malformed;
            }
            const std::size_t size = std::stoull(size_text, nullptr, 16);
            if (size == 0) {
                if (buffer.size() < line_end + 4) return parse_state::incomplete;
                if (buffer.compare(line_end + 2, 2, "\r\n") != 0) return parse_state::malformed;
                buffer.erase(0, line_end + 4);
                return parse_state::complete;
            }
            if (buffer.size() < line_end + 2 + size + 2) return parse_state::incomplete;
            if (buffer.compare(line_end + 2 + size, 2, "\r\n") != 0) return parse_state::malformed;
            out.body.append(buffer, line_end + 2, size);
            out.chunk_sizes.push_back(size);
            body_at = line_end + 2 + size + 2;
        }
    }
    if (const auto length_text = out.header("content-length")) {
        const std::size_t length = std::stoull(*length_text);
        if (buffer.size() < body_at + length) return parse_state::incomplete;
        out.body = buffer.substr(body_at, length);
        buffer.erase(0, body_at + length);
        return parse_state::complete;
    }
    if (!eof) return parse_state::incomplete;  // close-delimited
    out.body = buffer.substr(body_at);
    buffer.clear();
    return parse_state::complete;
}

struct client {
    fixture& f;
    int fd = -1;
    std::string received;
    bool eof = false;
    int error = 0;

    explicit client(fixture& fx, int receive_buffer = 0, int send_buffer = 0) : f(fx) {
        fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        BOOST_REQUIRE(fd >= 0);
        if (receive_buffer != 0) ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof(receive_buffer));
        if (send_buffer != 0) ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &send_buffer, sizeof(send_buffer));
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_port = htons(f.port);
        address.sin_addr.s_addr = htonl(loopback);
        const int result = ::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address));
        BOOST_REQUIRE(result == 0 || errno == EINPROGRESS);
        BOOST_REQUIRE(f.wait_until([&] {
            pollfd p{fd, POLLOUT, 0};
            return ::poll(&p, 1, 0) == 1;
        }));
    }
    ~client() { close(); }
    client(const client&) = delete;
    client& operator=(const client&) = delete;

    void close() {
        if (fd >= 0) ::close(fd);
        fd = -1;
    }

    // Reads what is available, at most `limit` bytes in total buffered.
    void pull(std::size_t limit = 64 * mib) {
        char chunk[64 * 1024];
        while (fd >= 0 && !eof && error == 0 && received.size() < limit) {
            const ssize_t n = ::recv(fd, chunk, std::min(sizeof(chunk), limit - received.size()), MSG_DONTWAIT);
            if (n > 0) {
                received.append(chunk, static_cast<std::size_t>(n));
            } else if (n == 0) {
                eof = true;
            } else if (errno != EINTR) {
                if (errno != EAGAIN && errno != EWOULDBLOCK) error = errno;
                break;
            }
        }
    }

    // Sends everything (reading meanwhile, so a pipelined answer cannot deadlock us).
    bool send_all(std::string_view data, int timeout_ms = wait_ms_default) {
        std::size_t sent = 0;
        const bool done = f.wait_until(
            [&] {
                while (sent < data.size()) {
                    const ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
                    if (n > 0) {
                        sent += static_cast<std::size_t>(n);
                        continue;
                    }
                    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) break;
                    error = errno;
                    return true;
                }
                pull();
                return sent == data.size();
            },
            timeout_ms);
        return done && sent == data.size() && error == 0;
    }

    std::optional<response> read_response(bool head_request = false, int timeout_ms = wait_ms_default) {
        response out;
        parse_state state = parse_state::incomplete;
        f.wait_until(
            [&] {
                pull();
                state = parse_response(received, head_request, eof || error != 0, out);
                return state != parse_state::incomplete || eof || error != 0;
            },
            timeout_ms);
        if (state == parse_state::incomplete) state = parse_response(received, head_request, true, out);
        BOOST_CHECK(state != parse_state::malformed);
        if (state != parse_state::complete) return std::nullopt;
        return out;
    }

    bool wait_closed(int timeout_ms = wait_ms_default) {
        return f.wait_until(
            [&] {
                pull();
                if (received.size() > 16 * mib) received.clear();
                return eof || error != 0;
            },
            timeout_ms);
    }

    // The connection is still open once the server has done what it was going to do.
    bool still_open() {
        const bool settled = f.settle();
        pull();
        return settled && !eof && error == 0;
    }
    // Still open after at least `duration_ms` (longer than a timeout that must not fire).
    bool still_open_after(int duration_ms) {
        f.run_for(duration_ms);
        return still_open();
    }

    std::optional<response> request(std::string_view bytes, bool head_request = false) {
        if (!send_all(bytes)) return std::nullopt;
        return read_response(head_request);
    }
};

std::string get(std::string_view target, std::string_view extra = "") {
    std::string out = "GET ";
    out += target;
    out += " HTTP/1.1\r\nHost: test\r\n";
    out += extra;
    out += "\r\n";
    return out;
}

std::string put(std::string_view target, std::string_view body, std::string_view extra = "") {
    std::string out = "PUT ";
    out += target;
    out += " HTTP/1.1\r\nHost: test\r\nContent-Length: ";
    out += std::to_string(body.size());
    out += "\r\n";
    out += extra;
    out += "\r\n";
    out += body;
    return out;
}

// A chunked body in chunks of varying sizes (1, 2, ..., up to 9000, cycling), with an
// extension on some of them.
std::string put_chunked(std::string_view target, std::string_view body) {
    std::string out = "PUT ";
    out += target;
    out += " HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n";
    std::size_t at = 0;
    std::size_t step = 1;
    char size_text[32];
    while (at < body.size()) {
        const std::size_t size = std::min(step, body.size() - at);
        std::snprintf(size_text, sizeof(size_text), "%zx%s\r\n", size, step % 3 == 0 ? ";ext=1" : "");
        out += size_text;
        out.append(body.substr(at, size));
        out += "\r\n";
        at += size;
        step = step * 3 % 9001 + 1;
    }
    out += "0\r\n\r\n";
    return out;
}

std::string expected_stream(std::uint64_t n, std::uint64_t size) { return pattern(static_cast<std::size_t>(n * size)); }

}  // namespace

// ---- round trips -------------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(get_and_put_round_trip) {
    fixture f;
    client c(f);
    auto r = c.request(get("/hello"));
    BOOST_REQUIRE(r);
    BOOST_CHECK_EQUAL(r->status, 200);
    BOOST_CHECK_EQUAL(r->body, "hello /hello");
    BOOST_CHECK(r->header("content-type") == std::optional<std::string>("text/plain"));
    BOOST_CHECK(!r->closes());
    r = c.request(put("/echo", "some body"));
    BOOST_REQUIRE(r);
    BOOST_CHECK_EQUAL(r->status, 200);
    BOOST_CHECK_EQUAL(r->body, "some body");
    r = c.request(get("/unknown"));
    BOOST_REQUIRE(r);
    BOOST_CHECK_EQUAL(r->status, 404);
    BOOST_CHECK(c.still_open());
    BOOST_CHECK_EQUAL(f.server->counters().requests, 3u);
    BOOST_CHECK_EQUAL(f.server->counters().responses, 3u);
    BOOST_CHECK_EQUAL(f.handler.records[1]->end_calls, 1);
}

BOOST_AUTO_TEST_CASE(content_length_bodies_arrive_intact) {
    fixture f;
    client c(f);
    for (const std::size_t size : {std::size_t{0}, std::size_t{1}, 100 * kib, 5 * mib}) {
        const std::string body = pattern(size, size);
        const auto r = c.request(put("/echo", body));
        BOOST_REQUIRE_MESSAGE(r, "size " << size);
        BOOST_CHECK_EQUAL(r->status, 200);
        BOOST_CHECK_EQUAL(r->body.size(), size);
        BOOST_CHECK(r->body == body);
        BOOST_CHECK_EQUAL(f.handler.records.back()->end_calls, 1);
    }
    BOOST_CHECK_EQUAL(f.server->connections(), 1u);
    // The body buffer is given back once the connection waits for a head again.
    BOOST_CHECK(f.wait_until(
        [&] { return f.server->read_buffer_bytes() <= platform::http_server_options{}.head_buffer_size; }));
}

BOOST_AUTO_TEST_CASE(chunked_bodies_arrive_intact) {
    fixture f;
    client c(f);
    for (const std::size_t size : {std::size_t{0}, std::size_t{1}, 100 * kib, 5 * mib}) {
        const std::string body = pattern(size, size + 3);
        const auto r = c.request(put_chunked("/echo", body));
        BOOST_REQUIRE_MESSAGE(r, "size " << size);
        BOOST_CHECK_EQUAL(r->status, 200);
        BOOST_CHECK_EQUAL(r->body.size(), size);
        BOOST_CHECK(r->body == body);
    }
    BOOST_CHECK(c.still_open());
}

BOOST_AUTO_TEST_CASE(streamed_responses_are_framed) {
    fixture f;
    client c(f);
    // Content-Length, one write at a time.
    auto r = c.request(get("/stream?n=100&size=1000"));
    BOOST_REQUIRE(r);
    BOOST_CHECK(!r->chunked);
    BOOST_CHECK(r->body == expected_stream(100, 1000));
    // Chunked: every write is one chunk (the empty write sends nothing), then the last chunk.
    r = c.request(get("/chunked?n=50&size=3000"));
    BOOST_REQUIRE(r);
    BOOST_CHECK(r->chunked);
    BOOST_CHECK(r->body == expected_stream(50, 3000));
    BOOST_CHECK_EQUAL(r->chunk_sizes.size(), 50u);
    for (const std::size_t s : r->chunk_sizes) BOOST_CHECK_EQUAL(s, 3000u);
    // Writes queued all at once, finish before the first is written.
    r = c.request(get("/burst?n=64&size=65536"));
    BOOST_REQUIRE(r);
    BOOST_CHECK(r->body == expected_stream(64, 65536));
    BOOST_CHECK(f.wait_until([&] { return f.handler.records.back()->written_calls == 64; }));
    // A big owned body (respond_with) after them, and the connection still serves.
    r = c.request(put("/echo", pattern(3 * mib, 1)));
    BOOST_REQUIRE(r);
    BOOST_CHECK(r->body == pattern(3 * mib, 1));
    r = c.request(get("/hello"));
    BOOST_REQUIRE(r);
    BOOST_CHECK_EQUAL(r->status, 200);
    BOOST_CHECK(c.received.empty());  // nothing beyond the framed responses
}

BOOST_AUTO_TEST_CASE(head_and_bodiless_responses) {
    fixture f;
    client c(f);
    auto r = c.request("HEAD /hello HTTP/1.1\r\nHost: test\r\n\r\n", true);
    BOOST_REQUIRE(r);
    BOOST_CHECK_EQUAL(r->status, 200);
    BOOST_CHECK(r->header("content-length") == std::optional<std::string>("12"));  // what GET would send
    r = c.request("HEAD /chunked?n=5&size=10 HTTP/1.1\r\nHost: test\r\n\r\n", true);
    BOOST_REQUIRE(r);
    BOOST_CHECK(r->header("transfer-encoding") == std::optional<std::string>("chunked"));
    r = c.request(get("/nocontent"));
    BOOST_REQUIRE(r);
    BOOST_CHECK_EQUAL(r->status, 204);
    BOOST_CHECK(!r->header("content-length"));
    // The next response starts right where the bodiless ones ended.
    r = c.request(get("/hello"));
    BOOST_REQUIRE(r);
    BOOST_CHECK_EQUAL(r->body, "hello /hello");
    BOOST_CHECK(c.received.empty());
    BOOST_CHECK(c.still_open());
}

BOOST_AUTO_TEST_CASE(close_delimited_response) {
    fixture f;
    client c(f);
    auto r = c.request(get("/nolength"));
    BOOST_REQUIRE(r);
    BOOST_CHECK(r->closes());
    BOOST_CHECK_EQUAL(r->body, "close-delimited body");
    BOOST_CHECK(c.eof);
}

BOOST_AUTO_TEST_CASE(response_from_outside_a_loop_callback) {
    fixture f;
    client c(f);
    BOOST_REQUIRE(c.send_all(get("/slow")));
    BOOST_REQUIRE(f.wait_until([&] { return f.handler.records.size() == 1; }));
    BOOST_REQUIRE(f.settle());  // the loop is idle, no callback of the server on the stack
    f.handler.records[0]->exchange->respond_with(201, "text/plain", "later");
    const auto r = c.read_response();
    BOOST_REQUIRE(r);
    BOOST_CHECK_EQUAL(r->status, 201);
    BOOST_CHECK_EQUAL(r->body, "later");
}

// ---- keep-alive and pipelining ---------------------------------------------------------------

BOOST_AUTO_TEST_CASE(one_thousand_requests_on_one_connection) {
    fixture f;
    client c(f);
    for (int i = 0; i < 1000; i++) {
        const std::string target = "/hello?i=" + std::to_string(i);
        const auto r = c.request(get(target));
        BOOST_REQUIRE_MESSAGE(r, "request " << i);
        BOOST_REQUIRE_EQUAL(r->body, "hello " + target);
        BOOST_REQUIRE(!r->closes());
    }
    BOOST_CHECK_EQUAL(f.server->counters().requests, 1000u);
    BOOST_CHECK_EQUAL(f.server->counters().accepted, 1u);
    BOOST_CHECK(c.still_open());
}

BOOST_AUTO_TEST_CASE(pipelined_requests_answered_in_order) {
    fixture f;
    client c(f);
    std::string all;
    for (int i = 0; i < 60; i++) {
        if (i % 3 == 0) all += get("/hello?i=" + std::to_string(i));
        if (i % 3 == 1) all += put("/echo", "body " + std::to_string(i));
        if (i % 3 == 2) all += put_chunked("/echo", pattern(static_cast<std::size_t>(i) * 100, i));
    }
    BOOST_REQUIRE(c.send_all(all));
    for (int i = 0; i < 60; i++) {
        const auto r = c.read_response();
        BOOST_REQUIRE_MESSAGE(r, "response " << i);
        if (i % 3 == 0) BOOST_CHECK_EQUAL(r->body, "hello /hello?i=" + std::to_string(i));
        if (i % 3 == 1) BOOST_CHECK_EQUAL(r->body, "body " + std::to_string(i));
        if (i % 3 == 2) BOOST_CHECK(r->body == pattern(static_cast<std::size_t>(i) * 100, i));
    }
    BOOST_CHECK(c.still_open());
}

// ---- Expect: 100-continue and early responses -----------------------------------------------------

BOOST_AUTO_TEST_CASE(continue_only_once_the_body_is_asked_for) {
    fixture f;
    client c(f);
    BOOST_REQUIRE(
        c.send_all("PUT /echo-later HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"));
    BOOST_REQUIRE(f.wait_until([&] { return f.handler.records.size() == 1; }));
    BOOST_REQUIRE(f.settle());
    c.pull();
    BOOST_CHECK(c.received.empty());  // no 100 before read_body
    f.handler.start_echo(f.handler.records[0]);
    auto r = c.read_response();
    BOOST_REQUIRE(r);
    BOOST_CHECK_EQUAL(r->status, 100);
    BOOST_CHECK(c.received.empty());
    BOOST_REQUIRE(c.send_all("hello"));
    r = c.read_response();
    BOOST_REQUIRE(r);
    BOOST_CHECK_EQUAL(r->status, 200);
    BOOST_CHECK_EQUAL(r->body, "hello");
    // A handler that reads at once: 100 at once. A request without Expect: never a 100.
    r = c.request("PUT /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n");
    BOOST_REQUIRE(r);
    BOOST_CHECK_EQUAL(r->status, 100);
    r = c.request("hi");
    BOOST_REQUIRE(r);
    BOOST_CHECK_EQUAL(r->body, "hi");
    r = c.request(put("/echo", "xy"));
    BOOST_REQUIRE(r);
    BOOST_CHECK_EQUAL(r->status, 200);
}

BOOST_AUTO_TEST_CASE(early_response_with_continue_pending_closes) {
    fixture f;
    client c(f);
    const auto r =
        c.request("PUT /early?status=412 HTTP/1.1\r\nHost: test\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n");
    BOOST_REQUIRE(r);
    BOOST_CHECK_EQUAL(r->status, 412);  // and no 100 before it
    BOOST_CHECK(r->closes());
    BOOST_CHECK(c.wait_closed());
}

BOOST_AUTO_TEST_CASE(early_response_to_a_large_body_closes) {
    fixture f;
    client c(f);
    const std::string request = put("/early", pattern(5 * mib));
    // The client may not get the whole body in before the server closes: that is the point.
    (void)c.send_all(request);
    const auto r = c.read_response();
    BOOST_REQUIRE(r);
    BOOST_CHECK_EQUAL(r->status, 413);
    BOOST_CHECK(r->closes());
    BOOST_CHECK(c.wait_closed());
    BOOST_CHECK_EQUAL(f.handler.total_aborts(), 0);
}

BOOST_AUTO_TEST_CASE(early_response_to_a_small_body_drains_it) {
    fixture f;
    client c(f);
    // Content-Length and chunked, each followed at once by a pipelined request.
    std::string all = put("/early", pattern(10 * kib)) + get("/hello?after=1") +
                      put_chunked("/early", pattern(20 * kib)) + get("/hello?after=2");
    BOOST_REQUIRE(c.send_all(all));
    for (int i = 1; i <= 2; i++) {
        auto r = c.read_response();
        BOOST_REQUIRE(r);
        BOOST_CHECK_EQUAL(r->status, 413);
        BOOST_CHECK(!r->closes());
        r = c.read_response();
        BOOST_REQUIRE(r);
        BOOST_CHECK_EQUAL(r->body, "hello /hello?after=" + std::to_string(i));
    }
    BOOST_CHECK(c.still_open());
    // A chunked body beyond the drain budget: dropped, and the connection closes.
    (void)c.send_all(put_chunked("/early", pattern(2 * mib)));
    const auto r = c.read_response();
    BOOST_REQUIRE(r);
    BOOST_CHECK_EQUAL(r->status, 413);
    BOOST_CHECK(c.wait_closed());
}

// ---- backpressure -------------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(a_full_consumer_pauses_reading) {
    constexpr std::size_t body_buffer = 64 * kib;
    fixture f([](platform::http_server_options& o) {
        o.head_buffer_size = 4 * kib;
        o.body_buffer_size = body_buffer;
    });
    client c(f, 0, 64 * 1024);
    const std::size_t total = 16 * mib;
    const std::string body = pattern(total, 5);
    std::string request =
        "PUT /pause?every=4194304 HTTP/1.1\r\nHost: test\r\nContent-Length: " + std::to_string(total) + "\r\n\r\n";
    const std::size_t head_size = request.size();
    request += body;

    std::size_t sent = 0;
    std::optional<response> answer;
    int resumes = 0;
    std::size_t sent_at_first_pause = 0;
    bool blocked_checked = false;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(8);
    while (!answer && std::chrono::steady_clock::now() < deadline) {
        while (sent < request.size()) {
            const ssize_t n = ::send(c.fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n <= 0) break;
            sent += static_cast<std::size_t>(n);
        }
        f.run();
        BOOST_REQUIRE(f.server->read_buffer_bytes() <= body_buffer);
        if (!f.handler.records.empty() && f.handler.records[0]->hold) {
            if (!blocked_checked) {
                // Paused: the server reads nothing more, so the client soon cannot send either:
                // wait until 20 turns in a row take no byte.
                int blocked_turns = 0;
                BOOST_REQUIRE(f.wait_until([&] {
                    const ssize_t n =
                        ::send(c.fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
                    if (n > 0) sent += static_cast<std::size_t>(n);
                    blocked_turns = n > 0 ? 0 : blocked_turns + 1;
                    return blocked_turns >= 20;
                }));
                sent_at_first_pause = sent;
                for (int i = 0; i < 50; i++) {
                    const ssize_t n =
                        ::send(c.fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
                    if (n > 0) sent += static_cast<std::size_t>(n);
                    f.run();
                }
                BOOST_CHECK_EQUAL(sent, sent_at_first_pause);
                BOOST_CHECK(sent < request.size());
                BOOST_CHECK_LE(f.server->read_buffer_bytes(), body_buffer);
                blocked_checked = true;
            }
            ++resumes;
            test_handler::resume(f.handler.records[0]);
        }
        c.pull();
        response r;
        if (parse_response(c.received, false, c.eof, r) == parse_state::complete) answer = r;
    }
    BOOST_REQUIRE(answer);
    BOOST_CHECK_EQUAL(answer->status, 200);
    BOOST_CHECK_EQUAL(
        answer->body,
        std::to_string(total) + " " +
            std::to_string(fnv1a(fnv_basis, {reinterpret_cast<const std::uint8_t*>(body.data()), body.size()})));
    const auto& record = *f.handler.records[0];
    BOOST_CHECK(blocked_checked);
    BOOST_CHECK_EQUAL(record.calls_while_held, 0);  // never offered again while paused
    BOOST_CHECK_EQUAL(resumes, record.pauses);      // the first hold plus one per 4 MiB boundary
    BOOST_CHECK_EQUAL(record.pauses, 1 + 3);
    BOOST_CHECK(head_size > 0);
    BOOST_CHECK(c.still_open());
    BOOST_CHECK(f.wait_until([&] { return f.server->read_buffer_bytes() == 4 * kib; }));
}

// ---- malformed input ---------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(malformed_requests_are_answered_and_closed) {
    fixture f([](platform::http_server_options& o) {
        o.parser.header_bytes_max = 1024;
        o.parser.request_line_max = 512;
        o.parser.body_size_max = 1 * mib;
    });
    std::string garbage;
    for (int i = 0; i < 64; i++) garbage += static_cast<char>(pattern_byte(static_cast<std::uint64_t>(i) * 977));
    garbage += "\r\n\r\n";
    const std::vector<std::pair<std::string, int>> cases = {
        {"NOT A REQUEST LINE\r\n\r\n", 400},
        {"GET /\r\n\r\n", 400},
        {"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505},
        {"PUT /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: "
         "chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
         400},
        {"GET /hello HTTP/1.1\r\nHost: t\r\nX-Big: " + std::string(2000, 'a') + "\r\n\r\n", 431},
        {"GET /" + std::string(1000, 'u') + " HTTP/1.1\r\nHost: t\r\n\r\n", 414},
        {"GET /hello HTTP/1.1\r\n\r\n", 400},  // no Host
        {"PUT /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 2000000\r\n\r\n", 413},
        {"GET /hello HTTP/1.1\nHost: t\n\n", 400},  // bare LF
        {garbage, 400},
    };
    for (const auto& [bytes, status] : cases) {
        client c(f);
        const auto r = c.request(bytes);
        BOOST_REQUIRE_MESSAGE(r, "case " << status);
        BOOST_CHECK_EQUAL(r->status, status);
        BOOST_CHECK(r->closes());
        BOOST_CHECK(c.wait_closed());
    }
    BOOST_CHECK_EQUAL(f.server->counters().parse_errors, cases.size());
    // A broken chunked body while the handler reads it: the exchange aborts, 400, closed.
    {
        client c(f);
        const auto r =
            c.request("PUT /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\nzz\r\n");
        BOOST_REQUIRE(r);
        BOOST_CHECK_EQUAL(r->status, 400);
        BOOST_CHECK(c.wait_closed());
        BOOST_CHECK_EQUAL(f.handler.records.back()->abort_calls, 1);
    }
    // The server still serves.
    client c(f);
    const auto r = c.request(get("/hello"));
    BOOST_REQUIRE(r);
    BOOST_CHECK_EQUAL(r->status, 200);
    BOOST_CHECK(f.wait_until([&] { return f.server->connections() == 1; }));
}

BOOST_AUTO_TEST_CASE(http_1_0) {
    fixture f;
    {
        client c(f);  // no keep-alive: closed after the response
        const auto r = c.request("GET /hello HTTP/1.0\r\n\r\n");
        BOOST_REQUIRE(r);
        BOOST_CHECK_EQUAL(r->body, "hello /hello");
        BOOST_CHECK(r->closes());
        BOOST_CHECK(c.wait_closed());
    }
    {
        client c(f);  // keep-alive asked for: kept, and said so
        auto r = c.request("GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        BOOST_REQUIRE(r);
        BOOST_CHECK(r->header("connection") == std::optional<std::string>("keep-alive"));
        r = c.request("PUT /echo HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 3\r\n\r\nabc");
        BOOST_REQUIRE(r);
        BOOST_CHECK_EQUAL(r->body, "abc");
        BOOST_CHECK(c.still_open());
        // A chunked response goes to an HTTP/1.0 client close-delimited.
        r = c.request("GET /chunked?n=20&size=100 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        BOOST_REQUIRE(r);
        BOOST_CHECK(!r->chunked);
        BOOST_CHECK(r->closes());
        BOOST_CHECK(r->body == expected_stream(20, 100));
        BOOST_CHECK(c.eof);
    }
}

// ---- limits and timeouts ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(connections_max_refuses_one_more) {
    fixture f([](platform::http_server_options& o) { o.connections_max = 2; });
    client a(f);
    client b(f);
    BOOST_REQUIRE(f.wait_until([&] { return f.server->connections() == 2; }));
    client extra(f);
    BOOST_CHECK(extra.wait_closed());
    BOOST_CHECK_EQUAL(f.server->counters().refused, 1u);
    auto r = a.request(get("/hello"));
    BOOST_REQUIRE(r);
    BOOST_CHECK_EQUAL(r->status, 200);
    // Closing one frees its slot.
    b.close();
    BOOST_REQUIRE(f.wait_until([&] { return f.server->connections() == 1; }));
    client later(f);
    r = later.request(get("/hello"));
    BOOST_REQUIRE(r);
    BOOST_CHECK_EQUAL(r->status, 200);
    BOOST_CHECK_EQUAL(f.server->counters().accepted, 3u);
}

BOOST_AUTO_TEST_CASE(slow_head_gets_408) {
    fixture f([](platform::http_server_options& o) { o.head_timeout_ns = 150 * ms; });
    client c(f);
    BOOST_REQUIRE(c.send_all("GET /hello HTTP/1.1\r\nHo"));
    const auto start = std::chrono::steady_clock::now();
    const auto r = c.read_response();
    BOOST_REQUIRE(r);
    BOOST_CHECK_EQUAL(r->status, 408);
    BOOST_CHECK(r->closes());
    BOOST_CHECK(c.wait_closed());
    BOOST_CHECK(std::chrono::steady_clock::now() - start >= std::chrono::milliseconds(100));
    BOOST_CHECK_EQUAL(f.server->counters().head_timeouts, 1u);
    BOOST_CHECK_EQUAL(f.handler.records.size(), 0u);
}

BOOST_AUTO_TEST_CASE(idle_connection_closed) {
    // Long enough that the still_open check right after the response cannot race it.
    fixture f([](platform::http_server_options& o) { o.idle_timeout_ns = 500 * ms; });
    client c(f);
    const auto r = c.request(get("/hello"));
    BOOST_REQUIRE(r);
    BOOST_CHECK(c.still_open());
    BOOST_CHECK(c.wait_closed());
    BOOST_CHECK(c.received.empty());  // closed without a word
    BOOST_CHECK_EQUAL(f.server->counters().idle_timeouts, 1u);
    BOOST_CHECK(f.wait_until([&] { return f.server->connections() == 0 && f.server->read_buffer_bytes() == 0; }));
}

BOOST_AUTO_TEST_CASE(stalled_body_times_out) {
    fixture f([](platform::http_server_options& o) { o.progress_timeout_ns = 150 * ms; });
    client c(f);
    BOOST_REQUIRE(c.send_all("PUT /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n0123456789"));
    BOOST_CHECK(c.wait_closed(2'000));
    BOOST_CHECK_EQUAL(f.server->counters().progress_timeouts, 1u);
    BOOST_REQUIRE_EQUAL(f.handler.records.size(), 1u);
    BOOST_CHECK_EQUAL(f.handler.records[0]->abort_calls, 1);
    BOOST_CHECK_EQUAL(f.handler.records[0]->end_calls, 0);
    BOOST_CHECK(f.wait_until([&] { return f.server->read_buffer_bytes() == 0; }));
}

BOOST_AUTO_TEST_CASE(paused_body_does_not_time_out) {
    fixture f([](platform::http_server_options& o) { o.progress_timeout_ns = 100 * ms; });
    client c(f);
    BOOST_REQUIRE(c.send_all(put("/pause", "abcdef")));
    BOOST_REQUIRE(f.wait_until([&] { return f.handler.records.size() == 1; }));
    BOOST_CHECK(c.still_open_after(300));  // the handler holds the body: its business, not a stall
    test_handler::resume(f.handler.records[0]);
    const auto r = c.read_response();
    BOOST_REQUIRE(r);
    BOOST_CHECK_EQUAL(r->status, 200);
    BOOST_CHECK_EQUAL(f.server->counters().progress_timeouts, 0u);
}

BOOST_AUTO_TEST_CASE(client_that_stops_reading_times_out) {
    fixture f([](platform::http_server_options& o) { o.progress_timeout_ns = 150 * ms; });
    client c(f, 4096);
    BOOST_REQUIRE(c.send_all(get("/infinite")));
    BOOST_REQUIRE(f.wait_until([&] { return f.server->counters().progress_timeouts == 1; }));
    BOOST_REQUIRE_EQUAL(f.handler.records.size(), 1u);
    BOOST_CHECK(f.handler.records[0]->written_calls > 0);
    BOOST_CHECK_EQUAL(f.handler.records[0]->abort_calls, 1);
    BOOST_REQUIRE(f.settle());
    BOOST_CHECK_EQUAL(f.handler.records[0]->abort_calls, 1);
    BOOST_CHECK(f.wait_until([&] { return f.server->connections() == 0 && f.server->read_buffer_bytes() == 0; }));
}

BOOST_AUTO_TEST_CASE(one_thousand_idle_connections) {
    rlimit limit{};
    BOOST_REQUIRE(::getrlimit(RLIMIT_NOFILE, &limit) == 0);
    if (limit.rlim_cur < 2'200) {
        limit.rlim_cur = std::min<rlim_t>(limit.rlim_max, 4'096);
        ::setrlimit(RLIMIT_NOFILE, &limit);
    }
    BOOST_REQUIRE(::getrlimit(RLIMIT_NOFILE, &limit) == 0);
    BOOST_REQUIRE_MESSAGE(limit.rlim_cur >= 2'100, "RLIMIT_NOFILE too low: " << limit.rlim_cur);
    fixture f;
    std::vector<std::unique_ptr<client>> idle;
    for (int i = 0; i < 1000; i++) idle.push_back(std::make_unique<client>(f));
    BOOST_REQUIRE(f.wait_until([&] { return f.server->connections() == 1000; }));
    client c(f);
    const auto r = c.request(get("/hello"));
    BOOST_REQUIRE(r);
    BOOST_CHECK_EQUAL(r->status, 200);
    BOOST_CHECK_EQUAL(f.server->counters().accepted, 1001u);
    BOOST_CHECK_EQUAL(f.server->counters().refused, 0u);
    BOOST_CHECK(idle.front()->still_open() && idle.back()->still_open());
    idle.clear();
    BOOST_CHECK(f.wait_until([&] { return f.server->connections() == 1; }));
}

// ---- aborts and shutdown -------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(client_gone_mid_body) {
    fixture f;
    client c(f);
    BOOST_REQUIRE(c.send_all("PUT /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000\r\n\r\n" + pattern(100 * kib)));
    BOOST_REQUIRE(
        f.wait_until([&] { return !f.handler.records.empty() && f.handler.records[0]->body.size() == 100 * kib; }));
    c.close();
    BOOST_REQUIRE(f.wait_until([&] { return f.handler.records[0]->abort_calls == 1; }));
    BOOST_REQUIRE(f.settle());
    BOOST_CHECK_EQUAL(f.handler.records[0]->abort_calls, 1);
    BOOST_CHECK_EQUAL(f.handler.records[0]->end_calls, 0);
    BOOST_CHECK_EQUAL(f.server->counters().aborted_exchanges, 1u);
    BOOST_CHECK(f.wait_until([&] { return f.server->connections() == 0 && f.server->read_buffer_bytes() == 0; }));
    f.server->shutdown();
    BOOST_CHECK(f.wait_until([&] { return f.server->drained(); }));
}

BOOST_AUTO_TEST_CASE(client_gone_mid_response) {
    fixture f;
    client c(f);
    BOOST_REQUIRE(c.send_all(get("/infinite")));
    BOOST_REQUIRE(f.wait_until([&] {
        c.pull(256 * kib);
        return c.received.size() >= 256 * kib;
    }));
    c.close();  // unread bytes: the kernel resets the connection
    BOOST_REQUIRE(f.wait_until([&] { return f.handler.records[0]->abort_calls == 1; }));
    BOOST_REQUIRE(f.settle());
    BOOST_CHECK_EQUAL(f.handler.records[0]->abort_calls, 1);
    BOOST_CHECK(f.wait_until([&] { return f.server->connections() == 0 && f.server->read_buffer_bytes() == 0; }));
    f.server->shutdown();
    BOOST_CHECK(f.wait_until([&] { return f.server->drained(); }));
}

BOOST_AUTO_TEST_CASE(handler_abandons_a_response) {
    fixture f;
    client c(f);
    BOOST_REQUIRE(c.send_all(get("/abandon")));
    BOOST_CHECK(c.wait_closed());
    BOOST_CHECK(c.received.find("only ten..") != std::string::npos);
    BOOST_CHECK_EQUAL(f.handler.total_aborts(), 0);  // abandon does not call on_abort
    BOOST_CHECK(f.wait_until([&] { return f.server->connections() == 0; }));
}

BOOST_AUTO_TEST_CASE(shutdown_with_exchanges_in_flight) {
    fixture f;
    client idle(f);
    client mid_body(f);
    client slow(f);
    client streaming(f);
    BOOST_REQUIRE(
        mid_body.send_all("PUT /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000\r\n\r\n" + pattern(10 * kib)));
    BOOST_REQUIRE(slow.send_all(get("/slow")));
    BOOST_REQUIRE(streaming.send_all(get("/infinite")));
    BOOST_REQUIRE(f.wait_until([&] {
        streaming.pull(64 * kib);
        return f.handler.records.size() == 3 && f.server->connections() == 4 && streaming.received.size() >= 64 * kib;
    }));
    f.server->shutdown();
    for (const auto& r : f.handler.records) BOOST_CHECK_EQUAL(r->abort_calls, 1);  // before shutdown returns
    BOOST_CHECK_EQUAL(f.server->connections(), 0u);
    BOOST_CHECK(f.wait_until([&] { return f.server->drained(); }));
    for (client* c : {&idle, &mid_body, &slow, &streaming}) BOOST_CHECK(c->wait_closed());
    f.server->shutdown();  // idempotent
    for (const auto& r : f.handler.records) BOOST_CHECK_EQUAL(r->abort_calls, 1);
}

BOOST_AUTO_TEST_CASE(destructor_drains_exchanges_in_flight) {
    fixture f;
    client slow(f);
    client streaming(f);
    client pipelined(f);
    BOOST_REQUIRE(slow.send_all(get("/slow")));
    BOOST_REQUIRE(streaming.send_all(get("/infinite")));
    BOOST_REQUIRE(pipelined.send_all(get("/slow") + get("/hello")));
    BOOST_REQUIRE(f.wait_until([&] { return f.handler.records.size() == 3; }));
    f.server.reset();  // asserts if anything is left pending
    BOOST_CHECK_EQUAL(f.handler.total_aborts(), 3);
    for (client* c : {&slow, &streaming, &pipelined}) BOOST_CHECK(c->wait_closed());
}

BOOST_AUTO_TEST_CASE(shutdown_from_inside_a_handler) {
    fixture f;
    client other(f);
    client c(f);
    BOOST_REQUIRE(c.send_all(get("/shutdown")));
    BOOST_REQUIRE(f.wait_until([&] { return f.server->drained(); }));
    BOOST_CHECK_EQUAL(f.handler.records.at(0)->abort_calls, 1);
    BOOST_CHECK(c.wait_closed());
    BOOST_CHECK(other.wait_closed());
}

BOOST_AUTO_TEST_CASE(respond_in_the_middle_of_the_body) {
    fixture f([](platform::http_server_options& o) {
        o.head_buffer_size = 4 * kib;
        o.body_buffer_size = 16 * kib;  // pieces of at most 16 KiB: the answer comes mid-body
    });
    client c(f);
    // 40 KiB left to read when the handler answers: drained, the connection kept.
    const std::size_t body_size = 100 * kib;
    BOOST_REQUIRE(c.send_all(put("/respond-mid-body?at=61440", pattern(body_size)) + get("/hello")));
    auto r = c.read_response();
    BOOST_REQUIRE(r);
    BOOST_CHECK_EQUAL(r->status, 507);
    BOOST_CHECK(!r->closes());
    r = c.read_response();
    BOOST_REQUIRE(r);
    BOOST_CHECK_EQUAL(r->body, "hello /hello");
    BOOST_CHECK_EQUAL(f.handler.records.at(0)->calls_after_respond, 0);
    BOOST_CHECK_LT(f.handler.records.at(0)->body_bytes, body_size);  // really answered mid-body
    // 4 MiB left: Connection: close, closed after the response, no body delivered after it.
    (void)c.send_all(put("/respond-mid-body?at=1", pattern(5 * mib)));
    r = c.read_response();
    BOOST_REQUIRE(r);
    BOOST_CHECK_EQUAL(r->status, 507);
    BOOST_CHECK(r->closes());
    BOOST_CHECK(c.wait_closed());
    BOOST_CHECK_EQUAL(f.handler.records.at(2)->calls_after_respond, 0);
    BOOST_CHECK_EQUAL(f.handler.total_aborts(), 0);
}

BOOST_AUTO_TEST_CASE(body_shorter_than_its_content_length_closes) {
    fixture f;
    client c(f);
    BOOST_REQUIRE(c.send_all(get("/short")));
    BOOST_CHECK(c.wait_closed());
    BOOST_CHECK(c.received.find("ten bytes.") != std::string::npos);
    response r;
    BOOST_CHECK(parse_response(c.received, false, false, r) == parse_state::incomplete);  // the client sees the cut
}

BOOST_AUTO_TEST_CASE(half_closed_client_gets_its_whole_response) {
    fixture f;
    {
        client c(f);  // a big owned body: the exchange is over before the bytes are
        BOOST_REQUIRE(c.send_all(put("/echo", pattern(3 * mib, 9))));
        BOOST_REQUIRE(::shutdown(c.fd, SHUT_WR) == 0);
        const auto r = c.read_response();
        BOOST_REQUIRE(r);
        BOOST_CHECK(r->body == pattern(3 * mib, 9));
        BOOST_CHECK(c.wait_closed());
    }
    {
        client c(f);  // a stream written piece by piece
        BOOST_REQUIRE(c.send_all(get("/stream?n=100&size=10000")));
        BOOST_REQUIRE(::shutdown(c.fd, SHUT_WR) == 0);
        const auto r = c.read_response();
        BOOST_REQUIRE(r);
        BOOST_CHECK(r->body == expected_stream(100, 10000));
        BOOST_CHECK(c.wait_closed());
    }
    BOOST_CHECK_EQUAL(f.handler.total_aborts(), 0);
}

BOOST_AUTO_TEST_CASE(pipelining_client_that_does_not_read_is_held_back) {
    fixture f;
    client c(f, 8192);
    std::string all;
    for (int i = 0; i < 200; i++) all += get("/big?size=262144");  // 50 MiB of answers in all
    BOOST_REQUIRE(c.send_all(all));
    BOOST_REQUIRE(f.settle());  // held back: nothing moves while the client does not read
    const std::size_t handled = f.handler.records.size();
    BOOST_REQUIRE(f.settle(100));
    // Not 200: once the kernel's socket buffers are full, no further request is taken, so the
    // unsent responses do not pile up in memory.
    BOOST_CHECK_EQUAL(f.handler.records.size(), handled);
    BOOST_CHECK_LT(handled, 50u);
    BOOST_TEST_MESSAGE("requests taken while the client did not read: " << handled);
    for (int i = 0; i < 200; i++) {
        const auto r = c.read_response();
        BOOST_REQUIRE_MESSAGE(r, "response " << i);
        BOOST_REQUIRE_EQUAL(r->body.size(), 262144u);
    }
    BOOST_CHECK_EQUAL(f.handler.records.size(), 200u);
    BOOST_CHECK(c.still_open());
}

BOOST_AUTO_TEST_CASE(accept_backs_off_when_out_of_descriptors) {
    fixture f;
    rlimit saved{};
    BOOST_REQUIRE(::getrlimit(RLIMIT_NOFILE, &saved) == 0);
    const int lowest_free = ::dup(0);
    BOOST_REQUIRE(lowest_free >= 0);
    ::close(lowest_free);
    rlimit tight = saved;
    tight.rlim_cur = static_cast<rlim_t>(lowest_free) + 1;  // room for the client socket only
    BOOST_REQUIRE(::setrlimit(RLIMIT_NOFILE, &tight) == 0);
    auto c = std::make_unique<client>(f);
    const bool failed = f.wait_until([&] { return f.server->counters().accept_errors > 0; }, 2'000);
    BOOST_REQUIRE(::setrlimit(RLIMIT_NOFILE, &saved) == 0);
    BOOST_REQUIRE(failed);
    BOOST_CHECK_EQUAL(f.server->connections(), 0u);
    // Descriptors are back: the tick retries and the waiting connection is served.
    const auto r = c->request(get("/hello"));
    BOOST_REQUIRE(r);
    BOOST_CHECK_EQUAL(r->status, 200);
    BOOST_CHECK_EQUAL(f.server->counters().accepted, 1u);
}
