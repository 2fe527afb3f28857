// The HTTP server: per-connection state machine over the completion-style event loop. See
// http_server.hpp for the rules the handler sees.
//
// A connection is in one of three phases: waiting (reading a request head), exchange (a request
// is with the handler) and closing (the last response is flushed, then the socket closes).
// process() runs the parser and the exchange as far as the buffered bytes allow; it is only
// ever called from a loop callback of this connection (recv, send, or the post that handler
// calls schedule), so it never runs re-entrantly. Sockets, the send queue, accepting and the
// release of closed connections are the connection layer's (stream_connection.hpp).
#include "platform/http_server.hpp"

#include <algorithm>
#include <cassert>
#include <cstring>
#include <deque>
#include <utility>

namespace platform {

namespace http = toastyfs::http;

namespace {

/// Largest single send: progress is measured per send, so a slow but steady client receiving a
/// big owned body is not mistaken for a stalled one.
constexpr std::size_t send_piece_bytes_max = 256 * 1024;
/// Owned bytes joined into one send item (a head with a small body, chunk frames).
constexpr std::size_t coalesce_bytes_max = 64 * 1024;
/// Writes up to this size are copied into the send queue instead of borrowed (one send for a
/// head and a small body).
constexpr std::size_t small_write_bytes_max = 16 * 1024;
/// response_remaining when the response body has no Content-Length.
constexpr std::uint64_t length_unknown = UINT64_MAX;

}  // namespace

struct http_connection final : stream_connection {
    enum class phase : std::uint8_t { waiting, exchange, closing };
    /// What happens to the request body of the current exchange.
    enum class body_mode : std::uint8_t {
        idle,      // the handler has not asked for it: the bytes wait in the socket
        reading,   // handed to the consumer
        draining,  // the response went out first: read and dropped
        dropped,   // never read: the connection closes after the response
        complete,  // the parser reported message_done
    };

    http_connection(http_server& s, socket_handle socket)
        : stream_connection(s.pool_, socket,
                            send_queue_options{.coalesce_bytes_max = coalesce_bytes_max,
                                               .send_piece_bytes_max = send_piece_bytes_max}),
          server(s),
          parser(s.options_.parser),
          exchange(*this) {}

    http_server& server;
    phase state = phase::waiting;

    // Receive side: the unprocessed bytes are buffer.unread(). Its capacity is the bound
    // read_buffer_bytes reports: head_buffer_size, or body_buffer_size while a body streams in.
    receive_buffer buffer;
    http::request_parser parser;

    // Clocks (monotonic ns).
    std::uint64_t head_started_ns = 0;  // first byte of the current head (0: none yet)
    std::uint64_t idle_since_ns = 0;
    std::uint64_t recv_started_ns = 0;  // the pending recv was started (or bytes last arrived)

    // The current exchange.
    http_exchange exchange;
    bool in_exchange = false;  // started, and neither completed nor aborted
    body_mode body = body_mode::idle;
    bool body_requested = false;  // read_body was called
    bool body_paused = false;
    bool continue_sent = false;
    bool in_consumer = false;
    bool resumed_in_consumer = false;
    std::uint64_t drain_limit = 0;   // parser.body_bytes() beyond which draining gives up
    std::size_t pending_offset = 0;  // body bytes delivered by the parser, not yet taken
    std::size_t pending_size = 0;
    std::function<std::size_t(std::span<const std::uint8_t>)> consumer;
    std::function<void()> on_end;
    std::function<void()> on_abort;
    bool responded = false;
    bool finished = false;
    bool bodiless_response = false;  // HEAD, 1xx, 204, 304 or a replaced invalid head
    bool chunked_response = false;
    std::uint64_t response_remaining = 0;
    bool close_after = false;      // close once the queue is sent
    bool held_for_output = false;  // waiting, but no request is read until responses drain
    // `written` callbacks of the writes in the send queue, in order; each write ends with one
    // mark there, so a mark done is the front callback due.
    std::deque<std::function<void()>> writes;

    std::uint64_t now() const { return server.loop_.monotonic_ns(); }
    void close() { stream_connection::close(0); }

    // ---- events from the connection layer ----------------------------------------------------

    void on_received(io_error error, std::size_t bytes) override { handle_recv(error, bytes); }
    void on_sent(io_error error, std::size_t bytes, std::size_t frames) override { handle_send(error, bytes, frames); }
    /// The kick: handler calls schedule this instead of running callbacks inside themselves.
    void on_posted() override {
        pump();
        if (open()) process();
    }
    void on_closed(std::uint8_t) override { handle_closed(); }

    // ---- driving ---------------------------------------------------------------------------

    /// Runs process() (and the send queue) from the loop soon.
    void schedule() { post(); }

    /// More than body_buffer_size bytes of responses wait to be sent: a client that pipelines
    /// requests without reading the answers gets no further request read until they drain.
    bool output_backlogged() const noexcept { return queued_bytes() > server.options_.body_buffer_size; }

    bool wants_bytes() const noexcept {
        if (state == phase::waiting) return !held_for_output;
        if (state != phase::exchange) return false;
        return (body == body_mode::reading && !body_paused) || body == body_mode::draining;
    }

    void start_recv() {
        if (!open() || receiving() || state == phase::closing || pending_size != 0) return;
        const std::size_t want =
            state == phase::exchange ? server.options_.body_buffer_size : server.options_.head_buffer_size;
        const std::span<std::uint8_t> window = buffer.window(want);
        assert(!window.empty() && "the parser leaves bytes unconsumed only at an event");
        if (window.empty()) return;
        recv_started_ns = now();
        receive(window);
    }

    void handle_recv(io_error error, std::size_t bytes) {
        if (state == phase::closing && (error == io_error::none || error == io_error::closed)) {
            return;  // flushing the last response (a 408, say): later bytes are dropped unread
        }
        if (error == io_error::closed && state == phase::waiting) {
            // The client is done sending: flush what is queued, then close.
            state = phase::closing;
            pump();
            return;
        }
        if (error != io_error::none) {
            close();
            return;
        }
        const std::uint64_t t = last_receive_ns();
        recv_started_ns = t;
        if (state == phase::waiting && head_started_ns == 0) head_started_ns = t;
        buffer.commit(bytes);
        server.counters_.bytes_received += bytes;
        process();
    }

    /// Runs the parser and the exchange as far as the buffered bytes allow, then reads more if
    /// that is what the connection waits for.
    void process() {
        while (open() && state != phase::closing) {
            if (state == phase::waiting) {
                if (output_backlogged()) {
                    held_for_output = true;
                    break;
                }
                if (held_for_output) {
                    held_for_output = false;
                    if (head_started_ns != 0) head_started_ns = now();  // the wait was ours
                }
                if (!parse_head()) break;
                continue;
            }
            if (!advance_exchange()) break;
        }
        if (!open()) return;
        maybe_shrink();
        if (wants_bytes()) start_recv();
    }

    /// False: need more bytes (or the connection is closing).
    bool parse_head() {
        if (buffer.unread_size() == 0) return false;
        const http::parse_result r = parser.feed(buffer.unread());
        buffer.consume(r.consumed);
        switch (r.event) {
            case http::parse_event::need_more: return false;
            case http::parse_event::head_done: start_exchange(); return true;
            case http::parse_event::error:
                ++server.counters_.parse_errors;
                send_error(r.error.status, r.error.reason);
                return false;
            case http::parse_event::body_data:
            case http::parse_event::message_done: break;
        }
        assert(false && "the parser reports a body only after head_done");
        close();
        return false;
    }

    void start_exchange() {
        state = phase::exchange;
        ++server.counters_.requests;
        head_started_ns = 0;
        in_exchange = true;
        body = body_mode::idle;
        body_requested = body_paused = continue_sent = false;
        pending_size = 0;
        consumer = nullptr;
        on_end = nullptr;
        on_abort = nullptr;
        responded = finished = bodiless_response = chunked_response = false;
        response_remaining = 0;
        writes.clear();  // empty already: the last exchange completed after its writes
        if (parser.head().framing == http::body_framing::none) {
            // The parser still owes the message_done event; take it now.
            const http::parse_result r = parser.feed(std::span<const std::uint8_t>());
            assert(r.event == http::parse_event::message_done);
            (void)r;
            body = body_mode::complete;
        }
        server.handler_.on_request(exchange);
    }

    /// False when nothing more can happen until an event (bytes, handler call, send).
    bool advance_exchange() {
        if (body == body_mode::reading || body == body_mode::draining) return advance_body();
        if (body == body_mode::complete && on_end) {
            auto end_callback = std::move(on_end);
            on_end = nullptr;
            end_callback();
            return open();
        }
        const bool body_done = body == body_mode::complete || body == body_mode::dropped;
        if (finished && writes.empty() && body_done) {
            complete_exchange();
            return open();
        }
        return false;
    }

    bool advance_body() {
        if (pending_size != 0) {
            if (body_paused) return false;
            return deliver_pending();
        }
        if (body_paused) return false;
        // Fed even when empty: after the last body bytes the parser still owes message_done.
        const http::parse_result r = parser.feed(buffer.unread());
        buffer.consume(r.consumed);
        switch (r.event) {
            case http::parse_event::need_more: return false;
            case http::parse_event::body_data:
                if (body == body_mode::draining) {
                    if (parser.body_bytes() > drain_limit) stop_body();
                    return true;
                }
                pending_offset = static_cast<std::size_t>(r.body.data() - buffer.data());
                pending_size = r.body.size();
                return true;
            case http::parse_event::message_done: body = body_mode::complete; return true;
            case http::parse_event::error: return on_body_error(r.error);
            case http::parse_event::head_done: break;
        }
        assert(false && "head_done in the middle of a body");
        close();
        return false;
    }

    /// Hands the pending piece to the consumer. False when delivery has to wait.
    bool deliver_pending() {
        // Moved out for the call: the consumer may respond or abandon, which clears `consumer`.
        auto f = std::move(consumer);
        consumer = nullptr;
        const std::size_t offered = pending_size;
        in_consumer = true;
        resumed_in_consumer = false;
        const std::span<const std::uint8_t> piece(buffer.data() + pending_offset, offered);
        const std::size_t taken = std::min(offered, f(piece));
        in_consumer = false;
        if (!open()) return false;
        if (body != body_mode::reading) return true;  // the consumer responded: delivery is over
        consumer = std::move(f);
        pending_offset += taken;
        pending_size -= taken;
        if (pending_size == 0) return true;
        if (resumed_in_consumer) {
            schedule();  // offered again from the loop, never in a tight loop here
            return false;
        }
        body_paused = true;
        return false;
    }

    bool on_body_error(const http::error& failure) {
        ++server.counters_.parse_errors;
        if (!responded) {
            abort_exchange();
            send_error(failure.status, failure.reason);
            return false;
        }
        stop_body();  // the response is (being) sent: end the connection after it
        return true;
    }

    /// The rest of the body will not be read: the connection closes after the response.
    void stop_body() {
        body = body_mode::dropped;
        pending_size = 0;
        close_after = true;
    }

    /// respond() before the body was completely read: drain a small rest, else drop it.
    void end_body_early() {
        consumer = nullptr;
        on_end = nullptr;
        pending_size = 0;
        body_paused = false;
        const http::request_head& request = parser.head();
        if (request.expect_continue && !continue_sent) {
            stop_body();  // the client waits for 100 before sending: no body will come
            return;
        }
        const std::uint64_t read = parser.body_bytes();
        if (request.framing == http::body_framing::content_length &&
            request.content_length - std::min(request.content_length, read) > server.options_.drain_body_max) {
            stop_body();
            return;
        }
        body = body_mode::draining;  // chunked: drained up to the same budget, then dropped
        drain_limit = read + server.options_.drain_body_max;
        recv_started_ns = now();
    }

    void complete_exchange() {
        ++server.counters_.responses;
        in_exchange = false;
        consumer = nullptr;
        on_end = nullptr;
        on_abort = nullptr;
        if (close_after || !parser.head().keep_alive) {
            close_after = true;
            state = phase::closing;
            pump();  // closes once the queue is empty
            return;
        }
        state = phase::waiting;
        idle_since_ns = now();
        head_started_ns = buffer.unread_size() != 0 ? idle_since_ns : 0;  // a pipelined request is waiting
    }

    void maybe_shrink() {
        const std::size_t head_size = server.options_.head_buffer_size;
        if (state != phase::waiting || receiving()) return;
        buffer.shrink_to(head_size);
    }

    // ---- responses ---------------------------------------------------------------------------

    /// Answers a request the server refuses itself, then closes.
    void send_error(std::uint16_t status, std::string_view reason) {
        http::response_head head;
        head.status = status;
        std::string body_text = "error: ";
        body_text += reason;
        body_text += '\n';
        head.headers.add("Content-Type", "text/plain; charset=utf-8");
        head.set_content_length(body_text.size());
        head.set_connection_close();
        std::string bytes;
        if (http::append_response_head(head, bytes)) {
            bytes += body_text;
        } else {
            bytes = "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        }
        queue_owned(std::move(bytes));
        close_after = true;
        state = phase::closing;
        pump();
    }

    /// Appends connection-owned bytes; the layer joins them with the owned bytes before them
    /// when both are small (one send for a head and a small body, no big copies).
    void queue_owned(std::string_view bytes) {
        queue_copy(std::span(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
    }

    /// Ends one http_exchange::write: `written` runs once every byte queued before is sent.
    void queue_write_done(std::function<void()> written) {
        writes.push_back(std::move(written));
        queue_mark(1);
    }

    /// Sends what is queued; in the closing phase, closes once all of it is sent.
    void pump() {
        flush();
        if (open() && send_idle() && state == phase::closing) close();
    }

    void handle_send(io_error error, std::size_t bytes, std::size_t writes_done) {
        if (error != io_error::none) {
            close();
            return;
        }
        server.counters_.bytes_sent += bytes;
        for (std::size_t i = 0; i < writes_done && open(); i++) {
            assert(!writes.empty());
            std::function<void()> written = std::move(writes.front());
            writes.pop_front();
            if (written) written();
        }
        if (!open()) return;
        pump();
        if (!open()) return;
        if (send_idle() && state == phase::waiting && head_started_ns == 0) idle_since_ns = now();
        process();
    }

    // ---- closing -----------------------------------------------------------------------------

    void abort_exchange() {
        if (!in_exchange || finished) return;
        in_exchange = false;
        ++server.counters_.aborted_exchanges;
        auto aborted = std::move(on_abort);
        on_abort = nullptr;
        consumer = nullptr;
        on_end = nullptr;
        pending_size = 0;
        finished = true;
        if (aborted) aborted();
    }

    /// From the layer's close(): the exchange is told, queued writes never call back. The layer
    /// keeps the queue (and the bytes it borrows) until the loop is done with them.
    void handle_closed() {
        state = phase::closing;
        abort_exchange();
        in_exchange = false;
        consumer = nullptr;
        on_end = nullptr;
        on_abort = nullptr;
        // A send in flight may still use borrowed bytes: their callbacks die with the connection.
        if (!sending()) writes.clear();
    }

    void check_timeouts(std::uint64_t t) {
        const http_server_options& o = server.options_;
        if (sending() && t - send_started_ns() > o.progress_timeout_ns) {
            ++server.counters_.progress_timeouts;
            close();
            return;
        }
        if (state == phase::waiting) {
            if (held_for_output) return;  // the send progress check above covers it
            if (head_started_ns != 0) {
                if (t - head_started_ns > o.head_timeout_ns) {
                    ++server.counters_.head_timeouts;
                    send_error(408, "the request head did not arrive in time");
                }
            } else if (send_idle() && t - idle_since_ns > o.idle_timeout_ns) {
                ++server.counters_.idle_timeouts;
                close();
            }
            return;
        }
        if (state == phase::exchange && receiving() && wants_bytes() && t - recv_started_ns > o.progress_timeout_ns) {
            ++server.counters_.progress_timeouts;
            close();
        }
    }
};

// ---- http_exchange -------------------------------------------------------------------------------

const http::request_head& http_exchange::request() const noexcept { return connection_.parser.head(); }

bool http_exchange::is_head_request() const noexcept { return connection_.parser.head().method == "HEAD"; }

void http_exchange::read_body(std::function<std::size_t(std::span<const std::uint8_t>)> consumer,
                              std::function<void()> on_end) {
    http_connection& c = connection_;
    if (!c.open() || !c.in_exchange) return;  // aborted: the handler is being told
    assert(!c.body_requested && !c.responded && !c.finished && "read_body once, before respond");
    if (c.body_requested || c.responded) return;
    c.body_requested = true;
    c.consumer = std::move(consumer);
    c.on_end = std::move(on_end);
    if (c.body == http_connection::body_mode::idle) {
        c.body = http_connection::body_mode::reading;
        c.recv_started_ns = c.now();
        if (c.parser.head().expect_continue) {
            c.queue_owned(std::string(http::continue_response));
            c.continue_sent = true;
        }
    }
    // on_end of an empty body runs from the next process(), never from inside this call.
    c.flush();
    c.schedule();
}

void http_exchange::resume_body() {
    http_connection& c = connection_;
    if (!c.open() || !c.in_exchange || c.body != http_connection::body_mode::reading) return;
    if (c.in_consumer) {
        c.resumed_in_consumer = true;
        return;
    }
    if (!c.body_paused) return;
    c.body_paused = false;
    c.recv_started_ns = c.now();
    c.schedule();
}

namespace {

/// The response's Content-Length, length_unknown without one (or with an unreadable one).
std::uint64_t declared_length(const http::response_head& head) {
    const auto value = head.headers.find("content-length");
    std::uint64_t length = 0;
    if (!value || !toastyfs::http::detail::parse_decimal(*value, length)) return length_unknown;
    return length;
}

}  // namespace

void http_exchange::respond(http::response_head head) {
    http_connection& c = connection_;
    if (!c.open() || !c.in_exchange) return;
    assert(!c.responded && !c.finished && head.status >= 200 && "one final response per exchange");
    if (c.responded || c.finished) return;
    c.responded = true;
    const http::request_head& request = c.parser.head();
    if (c.body == http_connection::body_mode::idle || c.body == http_connection::body_mode::reading) c.end_body_early();
    c.consumer = nullptr;  // also a complete body's on_end that has not run yet
    c.on_end = nullptr;
    if (!request.keep_alive) c.close_after = true;
    c.bodiless_response = is_head_request() || head.status < 200 || head.status == 204 || head.status == 304;
    const bool has_encoding = head.headers.contains("transfer-encoding");
    c.chunked_response = has_encoding && !c.bodiless_response;
    if (c.chunked_response && request.version == http::http_version::http_1_0) {
        head.headers.erase("transfer-encoding");  // HTTP/1.0 knows no chunks: close-delimited
        c.chunked_response = false;
    }
    c.response_remaining = c.bodiless_response ? 0 : declared_length(head);
    if (!c.bodiless_response && !c.chunked_response && c.response_remaining == length_unknown) c.close_after = true;
    if (c.close_after) {
        head.set_connection_close();
    } else if (request.version == http::http_version::http_1_0) {
        head.headers.set("Connection", "keep-alive");
    }
    std::string bytes;
    if (!http::append_response_head(head, bytes)) {
        http::response_head fallback;
        fallback.status = 500;
        fallback.set_content_length(0);
        fallback.set_connection_close();
        c.close_after = true;
        c.chunked_response = false;
        c.bodiless_response = true;  // later writes complete without sending
        c.response_remaining = 0;
        bytes.clear();
        (void)http::append_response_head(fallback, bytes);
    }
    c.queue_owned(std::move(bytes));
    // Sent from the kick, not now: a small body written next joins the head in one send.
    c.schedule();
}

void http_exchange::write(std::span<const std::uint8_t> data, std::function<void()> written) {
    http_connection& c = connection_;
    if (!c.open() || !c.in_exchange) return;  // aborted: `written` is dropped unrun
    assert(c.responded && !c.finished && "write between respond and finish");
    if (!c.responded || c.finished) return;
    if (c.bodiless_response) data = {};
    if (c.response_remaining != length_unknown && data.size() > c.response_remaining) {
        data = data.first(static_cast<std::size_t>(c.response_remaining));  // the handler's bug:
        c.close_after = true;                                               // cut it, then close
    }
    if (c.response_remaining != length_unknown) c.response_remaining -= data.size();
    if (data.empty()) {  // nothing to send (an empty chunk would even end the body)
        c.queue_write_done(std::move(written));
    } else if (c.chunked_response) {
        std::string frame;
        http::append_chunk_header(data.size(), frame);
        c.queue_owned(frame);
        c.queue_borrowed(data, nullptr);
        frame.clear();
        http::append_chunk_end(frame);
        c.queue_owned(frame);
        c.queue_write_done(std::move(written));
    } else if (data.size() <= small_write_bytes_max) {
        // Copied, so it joins the head (or the write before it) in one send.
        c.queue_copy(data);
        c.queue_write_done(std::move(written));
    } else {
        c.queue_borrowed(data, nullptr);
        c.queue_write_done(std::move(written));
    }
    c.flush();
}

void http_exchange::finish() {
    http_connection& c = connection_;
    if (!c.open() || !c.in_exchange) return;
    assert(c.responded && !c.finished && "finish once, after respond");
    if (!c.responded || c.finished) return;
    if (c.chunked_response) {
        std::string last;
        http::append_last_chunk(last);
        c.queue_owned(std::move(last));
    }
    // A body shorter than its Content-Length: only closing tells the client.
    if (c.response_remaining != length_unknown && c.response_remaining != 0) c.close_after = true;
    c.finished = true;
    c.flush();
    c.schedule();
}

void http_exchange::respond_with(std::uint16_t status, std::string content_type, std::string body,
                                 http::fields extra_headers) {
    http_connection& c = connection_;
    if (!c.open() || !c.in_exchange) return;
    http::response_head head;
    head.status = status;
    head.headers = std::move(extra_headers);
    if (!content_type.empty()) head.headers.set("Content-Type", std::move(content_type));
    const bool has_body = status >= 200 && status != 204 && status != 304;  // RFC 9110 §6.4.1
    if (has_body) {
        head.set_content_length(body.size());
    } else {
        head.headers.erase("content-length");
        head.headers.erase("transfer-encoding");
    }
    respond(std::move(head));
    if (!c.open() || !c.in_exchange) return;
    if (!c.bodiless_response && !body.empty()) {
        c.response_remaining -= std::min<std::uint64_t>(c.response_remaining, body.size());
        if (body.size() <= small_write_bytes_max) {
            c.queue_owned(body);
        } else {  // moved, not copied: the queue holds it until sent
            auto held = std::make_shared<const std::string>(std::move(body));
            c.queue_borrowed(std::span(reinterpret_cast<const std::uint8_t*>(held->data()), held->size()), held);
        }
    }
    finish();
}

void http_exchange::on_abort(std::function<void()> aborted) {
    if (!connection_.open() || !connection_.in_exchange) return;
    connection_.on_abort = std::move(aborted);
}

void http_exchange::abandon() {
    connection_.on_abort = nullptr;
    connection_.close();
}

// ---- http_server -----------------------------------------------------------------------------------

http_server::http_server(event_loop& loop, http_server_options options, http_handler& handler)
    : loop_(loop),
      options_(std::move(options)),
      handler_(handler),
      pool_(loop, connection_pool_options{.tick_ns = options_.tick_ns,
                                          .connections_max = options_.connections_max,
                                          .listen_backlog = options_.listen_backlog,
                                          .listen_socket = options_.listen_socket}) {
    assert(options_.head_buffer_size > 0 && options_.body_buffer_size >= options_.head_buffer_size);
    pool_.on_tick = [this](std::uint64_t now) { handle_tick(now); };
    pool_.on_accept = [this](accept_outcome outcome, socket_handle socket) { handle_accept(outcome, socket); };
}

http_server::~http_server() { pool_.shutdown_and_drain(0); }

bool http_server::drained() const noexcept { return pool_.drained(); }

std::uint16_t http_server::port() const { return pool_.port(); }

std::size_t http_server::connections() const noexcept { return pool_.open_connections(); }

std::size_t http_server::read_buffer_bytes() const noexcept {
    std::size_t total = 0;
    for (std::size_t i = 0; i < pool_.connection_objects(); i++) {
        total += static_cast<const http_connection&>(pool_.at(i)).buffer.capacity();
    }
    return total;
}

bool http_server::start(io_error& error) {
    assert(!pool_.stopping() && !started_);
    started_ = true;
    if (!pool_.listen(options_.listen_address, error)) return false;
    pool_.start(options_.tick_ns);
    return true;
}

// on_abort of every exchange in flight runs from here (through each connection's close).
void http_server::shutdown() { pool_.shutdown(0); }

void http_server::handle_accept(accept_outcome outcome, socket_handle socket) {
    // A failed accept (e.g. out of file descriptors) is retried by the pool from the tick.
    if (!count_accept(outcome, counters_)) return;
    http_connection& conn = pool_.add<http_connection>(*this, socket);
    conn.idle_since_ns = conn.opened_ns();
    conn.start_recv();
}

void http_server::handle_tick(std::uint64_t now) {
    // By index: a timeout may run on_abort, which may call into the server; nothing is added
    // or freed here (accepts run from their own callback, releases after the outermost one).
    for (std::size_t i = 0; i < pool_.connection_objects(); i++) {
        auto& conn = static_cast<http_connection&>(pool_.at(i));
        if (conn.open()) conn.check_timeouts(now);
    }
}

}  // namespace platform
