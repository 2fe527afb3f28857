// The HTTP server: per-connection state machine over the completion-style event loop. See
// http_server.hpp for the rules the handler sees.
//
// A connection is in one of three phases: waiting (reading a request head), exchange (a request
// is with the handler) and closing (the last response is flushed, then the socket closes).
// process() runs the parser and the exchange as far as the buffered bytes allow; it is only
// ever called from a loop callback of this connection (recv, send, or the `kick` timeout that
// handler calls schedule), so it never runs re-entrantly. Closed connections are released by
// sweep() once their last operation has called back, and only when no callback of the server
// is on the stack.
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

struct http_server::callback_scope {
    explicit callback_scope(http_server& s) : server(s) { ++server.callback_depth_; }
    ~callback_scope() {
        if (--server.callback_depth_ == 0) server.sweep();
    }
    callback_scope(const callback_scope&) = delete;
    callback_scope& operator=(const callback_scope&) = delete;
    http_server& server;
};

struct http_connection {
    enum class phase : std::uint8_t { waiting, exchange, closing };
    /// What happens to the request body of the current exchange.
    enum class body_mode : std::uint8_t {
        idle,      // the handler has not asked for it: the bytes wait in the socket
        reading,   // handed to the consumer
        draining,  // the response went out first: read and dropped
        dropped,   // never read: the connection closes after the response
        complete,  // the parser reported message_done
    };

    struct out_item {
        std::string owned;                       // bytes the connection owns, or
        std::span<const std::uint8_t> borrowed;  // bytes the handler keeps alive until `written`
        std::function<void()> written;
        bool completes_write = false;  // the last item of one http_exchange::write
        std::size_t offset = 0;        // bytes already sent

        std::span<const std::uint8_t> bytes() const noexcept {
            if (!borrowed.empty()) return borrowed;
            return {reinterpret_cast<const std::uint8_t*>(owned.data()), owned.size()};
        }
    };

    http_connection(http_server& s, socket_handle sock)
        : server(s), socket(sock), parser(s.options_.parser), exchange(*this) {}

    http_server& server;
    socket_handle socket;
    bool open = true;
    phase state = phase::waiting;

    completion recv_completion;
    completion send_completion;
    completion kick_completion;
    bool recv_pending = false;
    bool send_pending = false;
    bool kick_pending = false;

    // Receive side: unprocessed bytes are [begin, end) of buffer.
    std::vector<std::uint8_t> buffer;
    std::size_t begin = 0;
    std::size_t end = 0;
    http::request_parser parser;

    // Clocks (monotonic ns).
    std::uint64_t head_started_ns = 0;  // first byte of the current head (0: none yet)
    std::uint64_t idle_since_ns = 0;
    std::uint64_t recv_started_ns = 0;  // the pending recv was started (or bytes last arrived)
    std::uint64_t send_started_ns = 0;  // the pending send was started

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
    bool close_after = false;  // close once the queue is sent
    std::size_t writes_outstanding = 0;
    bool held_for_output = false;  // waiting, but no request is read until responses drain

    // Send side: the front item is in flight while send_pending.
    std::deque<out_item> out;

    bool releasable() const noexcept { return !open && !recv_pending && !send_pending && !kick_pending; }
    std::uint64_t now() const { return server.loop_.monotonic_ns(); }

    // ---- driving ---------------------------------------------------------------------------

    /// Runs process() (and the send queue) from the loop soon: handler calls use this instead of
    /// running callbacks inside themselves.
    void schedule() {
        if (!open || kick_pending) return;
        kick_pending = true;
        kick_completion.callback = [](completion& c) {
            auto* self = static_cast<http_connection*>(c.context);
            http_server::callback_scope scope(self->server);
            self->kick_pending = false;
            if (!self->open) return;
            self->start_send(true);
            if (self->open) self->process();
        };
        kick_completion.context = this;
        server.loop_.timeout(0, kick_completion);
    }

    /// More than body_buffer_size bytes of responses wait to be sent: a client that pipelines
    /// requests without reading the answers gets no further request read until they drain.
    bool output_backlogged() const noexcept {
        std::size_t queued = 0;
        for (const out_item& item : out) {
            queued += item.bytes().size() - item.offset;
            if (queued > server.options_.body_buffer_size) return true;
        }
        return false;
    }

    bool wants_bytes() const noexcept {
        if (state == phase::waiting) return !held_for_output;
        if (state != phase::exchange) return false;
        return (body == body_mode::reading && !body_paused) || body == body_mode::draining;
    }

    void start_recv() {
        if (!open || recv_pending || state == phase::closing || pending_size != 0) return;
        const std::size_t want = state == phase::exchange ? server.options_.body_buffer_size
                                                          : server.options_.head_buffer_size;
        if (begin == end) {
            begin = end = 0;
        } else if (begin > 0) {
            std::memmove(buffer.data(), buffer.data() + begin, end - begin);
            end -= begin;
            begin = 0;
        }
        if (buffer.size() < want) {
            buffer.reserve(want);  // exactly: the buffer bound is what read_buffer_bytes reports
            buffer.resize(want);
        }
        assert(end < buffer.size() && "the parser leaves bytes unconsumed only at an event");
        if (end == buffer.size()) return;
        recv_completion.callback = [](completion& c) {
            auto* self = static_cast<http_connection*>(c.context);
            http_server::callback_scope scope(self->server);
            self->handle_recv();
        };
        recv_completion.context = this;
        recv_pending = true;
        recv_started_ns = now();
        server.loop_.recv(socket, std::span<std::uint8_t>(buffer).subspan(end), recv_completion);
    }

    void handle_recv() {
        recv_pending = false;
        if (!open) return;
        const io_error error = recv_completion.error;
        if (state == phase::closing && (error == io_error::none || error == io_error::closed)) {
            return;  // flushing the last response (a 408, say): later bytes are dropped unread
        }
        if (error == io_error::closed && state == phase::waiting) {
            // The client is done sending: flush what is queued, then close.
            state = phase::closing;
            start_send(true);
            return;
        }
        if (error != io_error::none) {
            close();
            return;
        }
        const std::uint64_t t = now();
        recv_started_ns = t;
        if (state == phase::waiting && head_started_ns == 0) head_started_ns = t;
        end += recv_completion.bytes;
        server.counters_.bytes_received += recv_completion.bytes;
        process();
    }

    /// Runs the parser and the exchange as far as the buffered bytes allow, then reads more if
    /// that is what the connection waits for.
    void process() {
        while (open && state != phase::closing) {
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
        if (!open) return;
        maybe_shrink();
        if (wants_bytes()) start_recv();
    }

    /// False: need more bytes (or the connection is closing).
    bool parse_head() {
        if (begin == end) return false;
        const http::parse_result r = parser.feed(std::span<const std::uint8_t>(buffer).subspan(begin, end - begin));
        begin += r.consumed;
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
        writes_outstanding = 0;
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
            return open;
        }
        const bool body_done = body == body_mode::complete || body == body_mode::dropped;
        if (finished && writes_outstanding == 0 && body_done) {
            complete_exchange();
            return open;
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
        const http::parse_result r = parser.feed(std::span<const std::uint8_t>(buffer).subspan(begin, end - begin));
        begin += r.consumed;
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
        const std::size_t taken = std::min(offered, f(std::span<const std::uint8_t>(buffer).subspan(pending_offset, offered)));
        in_consumer = false;
        if (!open) return false;
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
            start_send(true);  // closes once the queue is empty
            return;
        }
        state = phase::waiting;
        idle_since_ns = now();
        head_started_ns = begin != end ? idle_since_ns : 0;  // a pipelined request is waiting
    }

    void maybe_shrink() {
        const std::size_t head_size = server.options_.head_buffer_size;
        if (state != phase::waiting || recv_pending || buffer.size() <= head_size || end - begin > head_size) return;
        std::vector<std::uint8_t> smaller;
        smaller.reserve(head_size);
        smaller.assign(buffer.begin() + static_cast<std::ptrdiff_t>(begin), buffer.begin() + static_cast<std::ptrdiff_t>(end));
        smaller.resize(head_size);
        end -= begin;
        begin = 0;
        buffer = std::move(smaller);
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
        start_send(true);
    }

    /// Appends connection-owned bytes, joining the last queued item when it is owned, not in
    /// flight and both are small (one send for a head and a small body, no big copies).
    void queue_owned(std::string bytes) {
        if (bytes.empty()) return;
        const bool back_in_flight = send_pending && out.size() == 1;
        if (!out.empty() && out.back().borrowed.empty() && !back_in_flight && out.back().offset == 0 &&
            out.back().owned.size() + bytes.size() <= coalesce_bytes_max) {
            out.back().owned += bytes;
            return;
        }
        out.push_back(out_item{std::move(bytes), {}, nullptr, false, 0});
    }

    /// Sends the queue front. Only a loop callback may pass may_call_back: an empty write then
    /// completes in place; from a handler call it completes from the kick instead.
    void start_send(bool may_call_back) {
        while (open && !send_pending && !out.empty()) {
            out_item& item = out.front();
            const std::span<const std::uint8_t> bytes = item.bytes();
            if (item.offset == bytes.size()) {  // an empty write: complete it in order
                if (!may_call_back) {
                    schedule();
                    return;
                }
                finish_item();
                continue;
            }
            const std::size_t size = std::min(send_piece_bytes_max, bytes.size() - item.offset);
            send_completion.callback = [](completion& c) {
                auto* self = static_cast<http_connection*>(c.context);
                http_server::callback_scope scope(self->server);
                self->handle_send();
            };
            send_completion.context = this;
            send_pending = true;
            send_started_ns = now();
            server.loop_.send(socket, bytes.subspan(item.offset, size), send_completion);
            return;
        }
        if (open && !send_pending && out.empty() && state == phase::closing) close();
    }

    void handle_send() {
        send_pending = false;
        if (!open) {
            out.clear();  // the loop is done with the borrowed bytes: drop the callbacks unrun
            return;
        }
        if (send_completion.error != io_error::none) {
            close();
            return;
        }
        server.counters_.bytes_sent += send_completion.bytes;
        out_item& item = out.front();
        item.offset += send_completion.bytes;
        if (item.offset < item.bytes().size()) {
            start_send(true);
            return;
        }
        finish_item();
        if (!open) return;
        start_send(true);
        if (!open) return;
        if (out.empty() && state == phase::waiting && head_started_ns == 0) idle_since_ns = now();
        process();
    }

    void finish_item() {
        std::function<void()> written = std::move(out.front().written);
        const bool completes_write = out.front().completes_write;
        out.pop_front();
        if (completes_write) {
            assert(writes_outstanding > 0);
            --writes_outstanding;
        }
        if (written) written();
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

    void close() {
        if (!open) return;
        open = false;
        state = phase::closing;
        server.loop_.close(socket);  // cancels recv and send; their callbacks come later
        if (kick_pending) server.loop_.cancel(kick_completion);
        --server.open_connections_;
        ++server.closed_unreleased_;
        abort_exchange();
        in_exchange = false;
        consumer = nullptr;
        on_end = nullptr;
        on_abort = nullptr;
        // Written callbacks of queued writes never run. A send in flight keeps its item until
        // the loop reports it cancelled: the loop may use the bytes until then.
        if (!send_pending) out.clear();
    }

    void check_timeouts(std::uint64_t t) {
        const http_server_options& o = server.options_;
        if (send_pending && t - send_started_ns > o.progress_timeout_ns) {
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
            } else if (out.empty() && !send_pending && t - idle_since_ns > o.idle_timeout_ns) {
                ++server.counters_.idle_timeouts;
                close();
            }
            return;
        }
        if (state == phase::exchange && recv_pending && wants_bytes() && t - recv_started_ns > o.progress_timeout_ns) {
            ++server.counters_.progress_timeouts;
            close();
        }
    }
};

// ---- http_exchange -------------------------------------------------------------------------------

const http::request_head& http_exchange::request() const noexcept { return connection_.parser.head(); }

bool http_exchange::is_head_request() const noexcept { return connection_.parser.head().method == "HEAD"; }

void http_exchange::read_body(std::function<std::size_t(std::span<const std::uint8_t>)> consumer, std::function<void()> on_end) {
    http_connection& c = connection_;
    if (!c.open || !c.in_exchange) return;  // aborted: the handler is being told
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
    c.start_send(false);
    c.schedule();
}

void http_exchange::resume_body() {
    http_connection& c = connection_;
    if (!c.open || !c.in_exchange || c.body != http_connection::body_mode::reading) return;
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
    if (!c.open || !c.in_exchange) return;
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
    if (!c.open || !c.in_exchange) return;  // aborted: `written` is dropped unrun
    assert(c.responded && !c.finished && "write between respond and finish");
    if (!c.responded || c.finished) return;
    if (c.bodiless_response) data = {};
    if (c.response_remaining != length_unknown && data.size() > c.response_remaining) {
        data = data.first(static_cast<std::size_t>(c.response_remaining));  // the handler's bug:
        c.close_after = true;                                              // cut it, then close
    }
    if (c.response_remaining != length_unknown) c.response_remaining -= data.size();
    ++c.writes_outstanding;
    if (data.empty()) {  // nothing to send (an empty chunk would even end the body)
        c.out.push_back(http_connection::out_item{{}, {}, std::move(written), true, 0});
    } else if (c.chunked_response) {
        std::string header;
        http::append_chunk_header(data.size(), header);
        c.queue_owned(std::move(header));
        c.out.push_back(http_connection::out_item{{}, data, nullptr, false, 0});
        std::string trailer;
        http::append_chunk_end(trailer);
        c.out.push_back(http_connection::out_item{std::move(trailer), {}, std::move(written), true, 0});
    } else if (data.size() <= small_write_bytes_max) {
        // Copied, so it joins the head (or the write before it) in one send; the empty item
        // behind it completes the write once those bytes are out.
        c.queue_owned(std::string(reinterpret_cast<const char*>(data.data()), data.size()));
        c.out.push_back(http_connection::out_item{{}, {}, std::move(written), true, 0});
    } else {
        c.out.push_back(http_connection::out_item{{}, data, std::move(written), true, 0});
    }
    c.start_send(false);
}

void http_exchange::finish() {
    http_connection& c = connection_;
    if (!c.open || !c.in_exchange) return;
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
    c.start_send(false);
    c.schedule();
}

void http_exchange::respond_with(std::uint16_t status, std::string content_type, std::string body,
                                 http::fields extra_headers) {
    http_connection& c = connection_;
    if (!c.open || !c.in_exchange) return;
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
    if (!c.open || !c.in_exchange) return;
    if (!c.bodiless_response && !body.empty()) {
        c.response_remaining -= std::min<std::uint64_t>(c.response_remaining, body.size());
        c.queue_owned(std::move(body));
    }
    finish();
}

void http_exchange::on_abort(std::function<void()> aborted) {
    if (!connection_.open || !connection_.in_exchange) return;
    connection_.on_abort = std::move(aborted);
}

void http_exchange::abandon() {
    connection_.on_abort = nullptr;
    connection_.close();
}

// ---- http_server -----------------------------------------------------------------------------------

http_server::http_server(event_loop& loop, http_server_options options, http_handler& handler)
    : loop_(loop), options_(std::move(options)), handler_(handler), listener_(options_.listen_socket),
      accept_completion_(std::make_unique<completion>()), tick_completion_(std::make_unique<completion>()) {
    assert(options_.head_buffer_size > 0 && options_.body_buffer_size >= options_.head_buffer_size);
    accept_completion_->callback = &on_accept;
    accept_completion_->context = this;
    tick_completion_->callback = &on_tick;
    tick_completion_->context = this;
}

http_server::~http_server() {
    assert(callback_depth_ == 0 && "http_server destroyed from inside one of its callbacks");
    shutdown();
    for (int i = 0; i < 1000 && !drained(); i++) loop_.run_once(0);
    assert(drained() && "http_server destroyed with operations still pending");
}

bool http_server::drained() const noexcept { return !accept_pending_ && !tick_pending_ && connections_.empty(); }

std::uint16_t http_server::port() const { return listener_ == invalid_socket ? 0 : loop_.local_port(listener_); }

std::size_t http_server::read_buffer_bytes() const noexcept {
    std::size_t total = 0;
    for (const auto& c : connections_) total += c->buffer.capacity();
    return total;
}

bool http_server::start(io_error& error) {
    error = io_error::none;
    assert(!stopping_ && !tick_pending_);
    if (listener_ == invalid_socket) {
        listener_ = loop_.listen(options_.listen_address, options_.listen_backlog, error);
        if (listener_ == invalid_socket) return false;
    }
    accept_next();
    tick_pending_ = true;
    loop_.timeout(options_.tick_ns, *tick_completion_);
    return true;
}

void http_server::shutdown() {
    if (stopping_) return;
    stopping_ = true;
    if (listener_ != invalid_socket) {
        loop_.close(listener_);
        listener_ = invalid_socket;
    }
    if (tick_pending_) loop_.cancel(*tick_completion_);
    // By index: an on_abort may call into the server, but nothing adds connections now.
    for (std::size_t i = 0; i < connections_.size(); i++) connections_[i]->close();
    if (callback_depth_ == 0) sweep();
}

void http_server::accept_next() {
    if (stopping_ || accept_pending_ || listener_ == invalid_socket) return;
    accept_pending_ = true;
    loop_.accept(listener_, *accept_completion_);
}

void http_server::on_accept(completion& c) {
    auto* self = static_cast<http_server*>(c.context);
    callback_scope scope(*self);
    self->handle_accept(c);
}

void http_server::handle_accept(completion& c) {
    accept_pending_ = false;
    if (c.error != io_error::none) {
        if (stopping_) return;
        ++counters_.accept_errors;
        accept_paused_ = true;  // e.g. out of file descriptors: retry from the tick
        return;
    }
    if (stopping_) {  // accepted just before the listener closed
        loop_.close(c.accepted);
        return;
    }
    if (open_connections_ >= options_.connections_max) {
        ++counters_.refused;
        loop_.close(c.accepted);
        accept_next();
        return;
    }
    ++counters_.accepted;
    ++open_connections_;
    auto conn = std::make_unique<http_connection>(*this, c.accepted);
    conn->idle_since_ns = loop_.monotonic_ns();
    http_connection& ref = *conn;
    connections_.push_back(std::move(conn));
    ref.start_recv();
    accept_next();
}

void http_server::on_tick(completion& c) {
    auto* self = static_cast<http_server*>(c.context);
    callback_scope scope(*self);
    self->handle_tick();
}

void http_server::handle_tick() {
    tick_pending_ = false;
    if (stopping_) return;
    const std::uint64_t now = loop_.monotonic_ns();
    // By index: a timeout may run on_abort, which may call into the server; nothing is added
    // or removed here (accepts run from their own callback, releases at depth 0).
    for (std::size_t i = 0; i < connections_.size(); i++) {
        if (connections_[i]->open) connections_[i]->check_timeouts(now);
    }
    if (stopping_) return;  // an on_abort shut the server down
    if (accept_paused_) {
        accept_paused_ = false;
        accept_next();
    }
    tick_pending_ = true;
    loop_.timeout(options_.tick_ns, *tick_completion_);
}

void http_server::sweep() {
    if (closed_unreleased_ == 0) return;
    const auto before = connections_.size();
    std::erase_if(connections_, [](const std::unique_ptr<http_connection>& c) { return c->releasable(); });
    closed_unreleased_ -= before - connections_.size();
}

}  // namespace platform
