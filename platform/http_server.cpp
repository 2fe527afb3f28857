// The HTTP server: per-connection state machine over the completion-style event loop. See
// http_server.hpp for the rules the handler sees.
#include "platform/http_server.hpp"

#include <algorithm>
#include <cassert>
#include <deque>
#include <utility>

namespace platform {

namespace http = toastyfs::http;

struct http_connection {
    enum class phase : std::uint8_t { waiting, exchange, closing };

    struct out_item {
        std::string owned;                     // bytes the connection owns, or
        std::span<const std::uint8_t> borrowed; // bytes the handler keeps alive until `written`
        std::function<void()> written;
        bool completes_write = false;  // the last item of one http_exchange::write
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
    std::uint64_t head_started_ns = 0;  // first byte of the current head (0: none yet)
    std::uint64_t idle_since_ns = 0;
    std::uint64_t last_progress_ns = 0;

    // The current exchange.
    http_exchange exchange;
    bool body_complete = false;
    bool body_reading = false;
    bool body_paused = false;
    bool draining = false;  // the response went out first: read and drop the rest of the body
    std::size_t pending_offset = 0;  // body bytes delivered by the parser, not yet taken
    std::size_t pending_size = 0;
    std::function<std::size_t(std::span<const std::uint8_t>)> consumer;
    std::function<void()> on_end;
    std::function<void()> on_abort;
    bool responded = false;
    bool finished = false;
    bool chunked_response = false;
    bool close_after = false;  // close once the queue is sent
    std::size_t borrowed_outstanding = 0;

    // Send side: the front item is in flight while send_pending.
    std::deque<out_item> out;

    bool releasable() const noexcept { return !open && !recv_pending && !send_pending && !kick_pending; }

    // ---- driving ---------------------------------------------------------------------------

    void schedule() {
        if (!open || kick_pending) return;
        kick_pending = true;
        kick_completion.callback = [](completion& c) {
            auto* self = static_cast<http_connection*>(c.context);
            self->kick_pending = false;
            if (self->open) self->process();
        };
        kick_completion.context = this;
        server.loop_.timeout(0, kick_completion);
    }

    void start_recv() {
        if (!open || recv_pending || state == phase::closing) return;
        if (pending_size != 0) return;  // a paused body piece sits in the buffer
        const std::size_t want = (state == phase::exchange && !body_complete) ? server.options_.body_buffer_size
                                                                              : server.options_.head_buffer_size;
        if (begin == end) begin = end = 0;
        if (begin > 0 && end == buffer.size()) {
            std::copy(buffer.begin() + static_cast<std::ptrdiff_t>(begin), buffer.begin() + static_cast<std::ptrdiff_t>(end), buffer.begin());
            end -= begin;
            begin = 0;
        }
        if (buffer.size() < want) buffer.resize(want);
        if (end == buffer.size()) return;  // full of unprocessed bytes: wait for the exchange
        recv_completion.callback = [](completion& c) { static_cast<http_connection*>(c.context)->handle_recv(); };
        recv_completion.context = this;
        recv_pending = true;
        server.loop_.recv(socket, std::span<std::uint8_t>(buffer).subspan(end), recv_completion);
    }

    void handle_recv() {
        recv_pending = false;
        if (!open) {
            server.sweep();
            return;
        }
        if (recv_completion.error != io_error::none) {
            close();
            return;
        }
        const std::uint64_t now = server.loop_.monotonic_ns();
        last_progress_ns = now;
        if (state == phase::waiting && head_started_ns == 0) head_started_ns = now;
        end += recv_completion.bytes;
        server.counters_.bytes_received += recv_completion.bytes;
        process();
    }

    /// Runs the parser and the exchange as far as the buffered bytes allow, then reads more if
    /// that is what the connection waits for.
    void process() {
        while (open && state != phase::closing) {
            if (state == phase::waiting) {
                if (!parse_head()) break;
                continue;
            }
            if (!advance_exchange()) break;
        }
        if (!open) return;
        const bool wants_bytes = state == phase::waiting ||
                                 (state == phase::exchange && !body_complete && ((body_reading && !body_paused) || draining));
        if (wants_bytes) start_recv();
        maybe_shrink();
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
            case http::parse_event::message_done:
                assert(false && "the parser reports a body only after head_done");
                close();
                return false;
        }
        return false;
    }

    void start_exchange() {
        state = phase::exchange;
        ++server.counters_.requests;
        head_started_ns = 0;
        body_complete = false;
        body_reading = body_paused = draining = false;
        pending_size = 0;
        consumer = nullptr;
        on_end = nullptr;
        on_abort = nullptr;
        responded = finished = chunked_response = false;
        borrowed_outstanding = 0;
        last_progress_ns = server.loop_.monotonic_ns();
        if (parser.head().framing == http::body_framing::none) {
            // The parser still owes the message_done event; take it now.
            const http::parse_result r = parser.feed(std::span<const std::uint8_t>());
            assert(r.event == http::parse_event::message_done);
            (void)r;
            body_complete = true;
        }
        server.handler_.on_request(exchange);
    }

    /// False when nothing more can happen until an event (bytes, handler call, send).
    bool advance_exchange() {
        if (!body_complete) {
            if (pending_size != 0) {
                if (!body_reading || body_paused) return false;
                deliver_pending();
                return pending_size == 0;
            }
            if (!((body_reading && !body_paused) || draining)) return false;
            if (begin == end) return false;
            const http::parse_result r = parser.feed(std::span<const std::uint8_t>(buffer).subspan(begin, end - begin));
            begin += r.consumed;
            switch (r.event) {
                case http::parse_event::need_more: return false;
                case http::parse_event::body_data:
                    if (draining) return true;
                    pending_offset = static_cast<std::size_t>(r.body.data() - buffer.data());
                    pending_size = r.body.size();
                    return true;
                case http::parse_event::message_done:
                    body_complete = true;
                    return true;
                case http::parse_event::error:
                    ++server.counters_.parse_errors;
                    if (!responded) {
                        abort_exchange();
                        send_error(r.error.status, r.error.reason);
                    } else {
                        close();
                    }
                    return false;
                case http::parse_event::head_done:
                    assert(false);
                    close();
                    return false;
            }
            return false;
        }
        if (body_reading && on_end) {
            auto end_callback = std::move(on_end);
            on_end = nullptr;
            end_callback();
            return open;
        }
        if (finished && borrowed_outstanding == 0) {
            complete_exchange();
            return true;
        }
        return false;
    }

    void deliver_pending() {
        const std::size_t taken = std::min(pending_size, consumer(std::span<const std::uint8_t>(buffer).subspan(pending_offset, pending_size)));
        if (!open) return;
        pending_offset += taken;
        pending_size -= taken;
        if (pending_size != 0) body_paused = true;
    }

    void complete_exchange() {
        ++server.counters_.responses;
        consumer = nullptr;
        on_end = nullptr;
        on_abort = nullptr;
        if (close_after || !parser.head().keep_alive) {
            close_after = true;
            state = phase::closing;
            if (out.empty() && !send_pending) close();
            return;
        }
        state = phase::waiting;
        idle_since_ns = server.loop_.monotonic_ns();
        if (begin != end) head_started_ns = idle_since_ns;  // a pipelined request is waiting
    }

    void maybe_shrink() {
        if (state != phase::waiting || recv_pending || buffer.size() <= server.options_.head_buffer_size) return;
        if (end - begin > server.options_.head_buffer_size) return;
        std::vector<std::uint8_t> smaller(buffer.begin() + static_cast<std::ptrdiff_t>(begin), buffer.begin() + static_cast<std::ptrdiff_t>(end));
        smaller.resize(server.options_.head_buffer_size);
        end -= begin;
        begin = 0;
        buffer = std::move(smaller);
    }

    // ---- responses ---------------------------------------------------------------------------

    void send_error(std::uint16_t status, std::string_view reason) {
        http::response_head head;
        head.status = status;
        std::string body = "error: ";
        body += reason;
        body += '\n';
        head.headers.add("Content-Type", "text/plain; charset=utf-8");
        head.set_content_length(body.size());
        head.set_connection_close();
        out_item item;
        if (!http::append_response_head(head, item.owned)) item.owned = "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        else item.owned += body;
        out.push_back(std::move(item));
        close_after = true;
        state = phase::closing;
        start_send();
    }

    void queue_owned(std::string bytes) {
        if (bytes.empty()) return;
        out.push_back(out_item{std::move(bytes), {}, nullptr, false});
    }

    void start_send() {
        if (!open || send_pending) return;
        while (!out.empty()) {
            out_item& item = out.front();
            const std::span<const std::uint8_t> bytes = item.borrowed.empty()
                ? std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(item.owned.data()), item.owned.size())
                : item.borrowed;
            if (bytes.empty()) {  // an empty write: complete it in order
                finish_item();
                if (!open) return;
                continue;
            }
            send_completion.callback = [](completion& c) { static_cast<http_connection*>(c.context)->handle_send(); };
            send_completion.context = this;
            send_pending = true;
            server.loop_.send(socket, bytes, send_completion);
            return;
        }
        if (close_after && state == phase::closing) close();
    }

    void handle_send() {
        send_pending = false;
        if (!open) {
            server.sweep();
            return;
        }
        if (send_completion.error != io_error::none) {
            close();
            return;
        }
        server.counters_.bytes_sent += send_completion.bytes;
        last_progress_ns = server.loop_.monotonic_ns();
        finish_item();
        if (!open) return;
        start_send();
        process();
    }

    void finish_item() {
        std::function<void()> written = std::move(out.front().written);
        const bool completes_write = out.front().completes_write;
        out.pop_front();
        if (completes_write) {
            assert(borrowed_outstanding > 0);
            --borrowed_outstanding;
        }
        if (written) written();
    }

    // ---- closing -----------------------------------------------------------------------------

    void abort_exchange() {
        if (state != phase::exchange || finished) return;
        ++server.counters_.aborted_exchanges;
        auto aborted = std::move(on_abort);
        on_abort = nullptr;
        consumer = nullptr;
        on_end = nullptr;
        finished = true;
        if (aborted) aborted();
    }

    void close() {
        if (!open) return;
        abort_exchange();
        open = false;
        state = phase::closing;
        out.clear();  // written callbacks of an aborted exchange never run
        server.loop_.close(socket);  // cancels recv and send; their callbacks sweep
        if (kick_pending) server.loop_.cancel(kick_completion);
        --server.open_connections_;
        ++server.closed_unreleased_;
    }

    void check_timeouts(std::uint64_t now) {
        const auto& o = server.options_;
        if (state == phase::waiting) {
            if (head_started_ns != 0 && now - head_started_ns > o.head_timeout_ns) {
                ++server.counters_.head_timeouts;
                send_error(408, "the request head did not arrive in time");
            } else if (head_started_ns == 0 && begin == end && now - idle_since_ns > o.idle_timeout_ns) {
                ++server.counters_.idle_timeouts;
                close();
            }
            return;
        }
        const bool moving_bytes = send_pending || (state == phase::exchange && !body_complete && body_reading && !body_paused) ||
                                  (state == phase::exchange && draining && !body_complete);
        if (moving_bytes && now - last_progress_ns > o.progress_timeout_ns) {
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
    assert(!c.body_reading && !c.finished);
    c.body_reading = true;
    c.consumer = std::move(consumer);
    c.on_end = std::move(on_end);
    if (c.parser.head().expect_continue && !c.body_complete && !c.responded) c.queue_owned(std::string(http::continue_response));
    // With no body (or a body already complete) on_end runs from the next process(), never
    // from inside this call.
    c.start_send();
    c.schedule();
}

void http_exchange::resume_body() {
    http_connection& c = connection_;
    if (!c.body_paused) return;
    c.body_paused = false;
    c.schedule();
}

void http_exchange::respond(http::response_head head) {
    http_connection& c = connection_;
    assert(!c.responded && !c.finished);
    c.responded = true;
    if (!c.body_complete) {
        const auto& request = c.parser.head();
        const std::uint64_t remaining = request.framing == http::body_framing::content_length
                                            ? request.content_length - std::min(request.content_length, c.parser.body_bytes())
                                            : ~std::uint64_t{0};
        if (!c.body_reading && request.expect_continue) {
            c.close_after = true;  // the client waits for 100 before sending: no body will come
        } else if (remaining <= c.server.options_.drain_body_max) {
            c.draining = true;
            c.body_reading = false;
            c.consumer = nullptr;
            c.pending_size = 0;
        } else {
            c.close_after = true;
        }
    }
    if (!c.parser.head().keep_alive) c.close_after = true;
    if (c.close_after) head.set_connection_close();
    const auto encoding = head.headers.find("transfer-encoding");
    c.chunked_response = encoding.has_value() && !is_head_request() && head.status != 204 && head.status != 304;
    std::string bytes;
    if (!http::append_response_head(head, bytes)) {
        head = http::response_head{};
        head.status = 500;
        head.set_content_length(0);
        head.set_connection_close();
        c.close_after = true;
        c.chunked_response = false;
        bytes.clear();
        (void)http::append_response_head(head, bytes);
    }
    c.queue_owned(std::move(bytes));
    c.start_send();
    c.schedule();
}

void http_exchange::write(std::span<const std::uint8_t> data, std::function<void()> written) {
    http_connection& c = connection_;
    assert(c.responded && !c.finished && !is_head_request());
    if (c.chunked_response) {
        if (data.empty()) {  // an empty chunk would end the body: send nothing
            c.out.push_back(http_connection::out_item{{}, {}, std::move(written), true});
            ++c.borrowed_outstanding;
            c.start_send();
            return;
        }
        std::string header;
        http::append_chunk_header(data.size(), header);
        c.queue_owned(std::move(header));
        c.out.push_back(http_connection::out_item{{}, data, nullptr, false});
        std::string trailer;
        http::append_chunk_end(trailer);
        c.out.push_back(http_connection::out_item{std::move(trailer), {}, std::move(written), true});
    } else {
        c.out.push_back(http_connection::out_item{{}, data, std::move(written), true});
    }
    ++c.borrowed_outstanding;
    c.start_send();
}

void http_exchange::finish() {
    http_connection& c = connection_;
    assert(c.responded && !c.finished);
    if (c.chunked_response) {
        std::string last;
        http::append_last_chunk(last);
        c.queue_owned(std::move(last));
    }
    c.finished = true;
    c.start_send();
    c.schedule();
}

void http_exchange::respond_with(std::uint16_t status, std::string content_type, std::string body,
                                 http::fields extra_headers) {
    http::response_head head;
    head.status = status;
    head.headers = std::move(extra_headers);
    if (!content_type.empty()) head.headers.set("Content-Type", std::move(content_type));
    head.set_content_length(body.size());
    respond(std::move(head));
    if (!is_head_request() && !body.empty() && status != 204 && status != 304) connection_.queue_owned(std::move(body));
    finish();
}

void http_exchange::on_abort(std::function<void()> aborted) { connection_.on_abort = std::move(aborted); }

void http_exchange::abandon() {
    connection_.on_abort = nullptr;
    connection_.close();
}

// ---- http_server -----------------------------------------------------------------------------------

http_server::http_server(event_loop& loop, http_server_options options, http_handler& handler)
    : loop_(loop), options_(std::move(options)), handler_(handler), listener_(options_.listen_socket),
      accept_completion_(std::make_unique<completion>()), tick_completion_(std::make_unique<completion>()) {
    accept_completion_->callback = &on_accept;
    accept_completion_->context = this;
    tick_completion_->callback = &on_tick;
    tick_completion_->context = this;
}

http_server::~http_server() {
    shutdown();
    for (int i = 0; i < 1000 && !drained(); i++) loop_.run_once(0);
    assert(drained() && "http_server destroyed with operations still pending");
}

bool http_server::drained() const noexcept { return !accept_pending_ && !tick_pending_ && connections_.empty(); }

std::uint16_t http_server::port() const { return listener_ == invalid_socket ? 0 : loop_.local_port(listener_); }

bool http_server::start(io_error& error) {
    error = io_error::none;
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
    for (auto& c : connections_) c->close();
    sweep();
}

void http_server::accept_next() {
    if (stopping_ || accept_pending_ || listener_ == invalid_socket) return;
    accept_pending_ = true;
    loop_.accept(listener_, *accept_completion_);
}

void http_server::on_accept(completion& c) { static_cast<http_server*>(c.context)->handle_accept(c); }

void http_server::handle_accept(completion& c) {
    accept_pending_ = false;
    if (stopping_) return;
    if (c.error != io_error::none) {
        ++counters_.accept_errors;
        accept_paused_ = true;  // e.g. out of file descriptors: retry from the tick
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

void http_server::on_tick(completion& c) { static_cast<http_server*>(c.context)->handle_tick(); }

void http_server::handle_tick() {
    tick_pending_ = false;
    if (stopping_) {
        sweep();
        return;
    }
    const std::uint64_t now = loop_.monotonic_ns();
    for (auto& c : connections_) {
        if (c->open) c->check_timeouts(now);
    }
    if (accept_paused_) {
        accept_paused_ = false;
        accept_next();
    }
    sweep();
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
