// A generic HTTP/1.1 server on the platform event loop: connections, parsing (toastyfs::http),
// keep-alive, pipelining, streaming bodies in both directions with backpressure, timeouts and
// limits. What a request means is the handler's business, so the object API and a later S3
// listener share this class.
//
// Per connection, one exchange (request + response) at a time: pipelined requests wait in the
// read buffer until the previous response is fully queued and its request body consumed.
//
// The handler sees an http_exchange:
// - request(): the parsed head.
// - read_body(consumer, on_end): the body is handed to `consumer` as it arrives; the consumer
//   returns how many bytes it took, and taking fewer pauses reading until resume_body() (the
//   untaken rest is offered again then). on_end runs once after the last byte. An
//   `Expect: 100-continue` request gets its 100 response when read_body is first called, and
//   only then. Until read_body, the body stays unread in the socket.
// - respond(head), then write(data, written) any number of times (`data` must stay valid until
//   `written` runs or is destroyed unrun), then finish(). A chunked head (set_chunked) frames
//   the writes; to an HTTP/1.0 client it is sent close-delimited instead. A head with neither
//   Content-Length nor chunked framing makes the body close-delimited. A HEAD request's
//   response carries no body (writes are completed without sending anything). A body shorter
//   than its Content-Length at finish() closes the connection after it; bytes beyond it are
//   dropped and close it too (the client sees the framing break, never a corrupt next response).
// - on_abort(f): the connection closed before the exchange finished; f runs once and the
//   exchange must not be touched afterwards (no other callback of the exchange runs after f).
//   After finish() the exchange must not be touched either, except that `written` callbacks
//   still run as the bytes go out; if the connection closes first they are destroyed unrun.
// - Callbacks never run inside the call that caused them (no re-entrancy): on_end, `written`
//   of an empty write and the like run from the event loop.
// Responding ends the request body for the handler: consumer and on_end never run after
// respond(). If the body was not completely read, the rest is read and dropped when at most
// drain_body_max bytes remain, otherwise (or when a 100-continue was never sent) the response
// carries Connection: close and the connection closes after it.
//
// Limits (options below) bound connections, buffers, the head size (parser options) and time.
// A malformed request gets its 4xx/5xx answer with Connection: close; nothing from the network
// can assert or crash.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "platform/event_loop.hpp"
#include "platform/stream_connection.hpp"
#include "toastyfs/http/request_parser.hpp"
#include "toastyfs/http/response.hpp"

namespace platform {

struct http_server_options {
    socket_address listen_address;
    /// An already-listening socket the server takes over (tests listen on port 0).
    socket_handle listen_socket = invalid_socket;
    int listen_backlog = 1024;
    /// Open connections. One more is accepted and closed at once (counted as refused).
    std::size_t connections_max = 10'000;
    /// Read buffer of an idle connection or one reading a head; grown to body_buffer_size while
    /// a body streams in, and shrunk back afterwards, so idle connections stay cheap.
    std::size_t head_buffer_size = 16 * 1024;
    std::size_t body_buffer_size = 256 * 1024;
    // A connection with more than body_buffer_size bytes of responses unsent reads no further
    // (pipelined) request until they drain: a client that never reads cannot grow the queue.
    /// A request head must arrive completely within this after its first byte (slowloris).
    std::uint64_t head_timeout_ns = 10'000'000'000;
    /// A keep-alive connection with no request in progress is closed after this.
    std::uint64_t idle_timeout_ns = 60'000'000'000;
    /// While a request body is read or a response is sent, a connection that moves no byte for
    /// this long is closed (the exchange is aborted).
    std::uint64_t progress_timeout_ns = 30'000'000'000;
    /// A response sent before the request body was read keeps the connection only if at most
    /// this much body remains (it is read and dropped); otherwise the connection closes.
    std::uint64_t drain_body_max = 64 * 1024;
    toastyfs::http::request_parser_options parser;
    std::uint64_t tick_ns = 250'000'000;  // timeout checks
};

struct http_server_counters {
    std::uint64_t accepted = 0;
    std::uint64_t refused = 0;  // over connections_max
    std::uint64_t accept_errors = 0;
    std::uint64_t requests = 0;      // request heads handed to the handler
    std::uint64_t responses = 0;     // exchanges completed (finished, body read or dropped)
    std::uint64_t parse_errors = 0;  // answered with the parser's status, then closed
    std::uint64_t head_timeouts = 0;
    std::uint64_t idle_timeouts = 0;
    std::uint64_t progress_timeouts = 0;
    std::uint64_t aborted_exchanges = 0;  // the connection closed mid-exchange
    std::uint64_t bytes_received = 0;
    std::uint64_t bytes_sent = 0;
};

class http_server;
struct http_connection;

class http_exchange {
public:
    const toastyfs::http::request_head& request() const noexcept;
    bool is_head_request() const noexcept;

    void read_body(std::function<std::size_t(std::span<const std::uint8_t>)> consumer, std::function<void()> on_end);
    void resume_body();

    void respond(toastyfs::http::response_head head);
    void write(std::span<const std::uint8_t> data, std::function<void()> written);
    void finish();
    /// respond + write + finish for a small, fully formed body.
    void respond_with(std::uint16_t status, std::string content_type, std::string body,
                      toastyfs::http::fields extra_headers = {});

    void on_abort(std::function<void()> aborted);
    /// Closes the connection now (a response that cannot be completed). on_abort does not run.
    void abandon();

private:
    friend class http_server;
    friend struct http_connection;
    explicit http_exchange(http_connection& connection) : connection_(connection) {}
    http_connection& connection_;
};

class http_handler {
public:
    virtual ~http_handler() = default;
    /// A request head arrived. The handler keeps `exchange` until it finishes or aborts.
    virtual void on_request(http_exchange& exchange) = 0;
};

class http_server {
public:
    http_server(event_loop& loop, http_server_options options, http_handler& handler);
    ~http_server();
    http_server(const http_server&) = delete;
    http_server& operator=(const http_server&) = delete;

    bool start(io_error& error);
    /// Closes the listener and every connection; on_abort of every exchange in flight runs
    /// before it returns. Idempotent. The destructor calls it, then runs the loop until every
    /// pending operation has called back (so it must not run inside a loop callback).
    void shutdown();
    bool drained() const noexcept;
    std::uint16_t port() const;

    const http_server_counters& counters() const noexcept { return counters_; }
    /// Open connections (closed ones still releasing their operations are not counted).
    std::size_t connections() const noexcept;
    /// Bytes of read buffers held by all connections (for tests and memory accounting): each
    /// connection holds head_buffer_size, or body_buffer_size while a body streams in.
    std::size_t read_buffer_bytes() const noexcept;

private:
    friend class http_exchange;
    friend struct http_connection;

    void handle_accept(accept_outcome outcome, socket_handle socket);
    void handle_tick(std::uint64_t now);

    event_loop& loop_;
    http_server_options options_;
    http_handler& handler_;
    http_server_counters counters_;
    /// Connections, the listener and the tick. Connections are freed only after the outermost
    /// loop callback returns, so a handler that closes or shuts down from inside a callback
    /// never frees a connection that is still executing.
    connection_pool pool_;
    bool started_ = false;
};

}  // namespace platform
