// The chunk transport: framing, request/reply matching and timeouts for chunk_server and
// chunk_client, on the connection layer (stream_connection.hpp). See chunk_transport.hpp.
#include "platform/chunk_transport.hpp"

#include <algorithm>
#include <cassert>
#include <deque>
#include <utility>

namespace platform {

using toastyfs::frame_error;
using toastyfs::frame_header;
using toastyfs::frame_header_size;

const char* to_string(chunk_close_reason reason) noexcept {
    constexpr const char* names[chunk_close_reason_count] = {
        "peer_closed", "io_error", "connect_failed",  "idle_timeout",     "stalled",        "slow_frame", "slow_send",
        "bad_header",  "bad_body", "wrong_direction", "unexpected_reply", "handler_failed", "shutdown"};
    const auto i = static_cast<std::size_t>(reason);
    return i < chunk_close_reason_count ? names[i] : "unknown";
}

namespace {

// A body buffer first grows to this much, then doubles with what has arrived, up to body_size:
// a header announcing a large body costs nothing until its bytes actually arrive.
constexpr std::size_t body_growth_min = 64u << 10;

enum class frame_progress : std::uint8_t { incomplete, refused, complete };

// The receive side of one frame: exactly frame_header_size header bytes first (so a frame never
// spills into the next), then the body in windows that grow with the bytes that arrive.
struct frame_reader {
    std::array<std::uint8_t, frame_header_size> header_bytes{};
    frame_header header{};  // valid once the header passed decode_frame_header
    std::vector<std::uint8_t> body;
    std::size_t filled = 0;  // header bytes, or body bytes, received so far
    bool in_body = false;
    std::uint64_t started_ns = 0;  // first byte of this frame; 0: none yet

    std::span<std::uint8_t> window() {
        if (!in_body) return std::span(header_bytes).subspan(filled);
        const auto size = static_cast<std::size_t>(header.body_size);
        assert(filled < size);
        if (filled == body.size()) {
            const std::size_t grown =
                body.capacity() >= size ? size : std::min(size, filled + std::max(filled, body_growth_min));
            body.resize(grown);
        }
        return std::span(body).subspan(filled);
    }
    bool header_done() const noexcept { return !in_body && filled == header_bytes.size(); }
    bool body_done() const noexcept { return in_body && filled == header.body_size; }
    std::span<const std::uint8_t> body_bytes() const noexcept {
        if (!in_body) return {};
        return {body.data(), static_cast<std::size_t>(header.body_size)};
    }
    void begin_body() {
        in_body = true;
        filled = 0;
        body.clear();  // keeps a small capacity from earlier frames
    }
    void next_frame() noexcept {
        in_body = false;
        filled = 0;
        started_ns = 0;
    }
    void release_if_over(std::size_t keep_bytes) {
        if (body.capacity() > keep_bytes) std::vector<std::uint8_t>().swap(body);
    }
    // Counts a completed recv (the frame's deadline starts at its first byte) and says what is
    // next: more bytes (the caller receives again), nothing (check_header refused the header and
    // closed), or the whole frame. A header is checked before any body byte is read.
    template <typename header_check>
    frame_progress received(std::size_t bytes, std::uint64_t now, header_check&& check_header) {
        if (started_ns == 0) started_ns = now;
        filled += bytes;
        if (in_body) return body_done() ? frame_progress::complete : frame_progress::incomplete;
        if (!header_done()) return frame_progress::incomplete;
        if (!check_header()) return frame_progress::refused;
        if (header.body_size == 0) return frame_progress::complete;
        begin_body();
        return frame_progress::incomplete;
    }
};

chunk_close_reason reason_for(io_error error) noexcept {
    return error == io_error::closed ? chunk_close_reason::peer_closed : chunk_close_reason::io_error;
}

std::span<const std::uint8_t, frame_header_size> header_span(
    const std::array<std::uint8_t, frame_header_size>& bytes) noexcept {
    return std::span<const std::uint8_t, frame_header_size>(bytes);
}

}  // namespace

// ================================================================================================
// chunk_server
// ================================================================================================

struct chunk_server::connection final : stream_connection {
    connection(chunk_server& owner, socket_handle socket)
        : stream_connection(owner.pool_, socket), server(owner), last_activity_ns(opened_ns()) {}

    chunk_server& server;
    frame_reader reader;
    std::uint64_t last_activity_ns = 0;  // last byte received, or last reply finished

    // The reply in flight: header, then body. The next frame is read only after both are sent.
    std::array<std::uint8_t, frame_header_size> reply_header{};
    std::vector<std::uint8_t> reply_body;
    bool replying = false;
    std::uint64_t reply_started_ns = 0;

    void on_received(io_error error, std::size_t bytes) override { server.handle_recv(*this, error, bytes); }
    void on_sent(io_error error, std::size_t bytes, std::size_t frames) override {
        server.handle_sent(*this, error, bytes, frames);
    }
    void on_closed(std::uint8_t reason) override { server.counters_.closed[reason]++; }
};

chunk_server::chunk_server(event_loop& loop, chunk_server_options options)
    : loop_(loop),
      options_(std::move(options)),
      pool_(loop, connection_pool_options{.tick_ns = options_.tick_ns,
                                          .connections_max = options_.connections_max,
                                          .listen_backlog = options_.listen_backlog,
                                          .listen_socket = options_.listen_socket}) {
    pool_.on_tick = [this](std::uint64_t now) { handle_tick(now); };
    pool_.on_accept = [this](accept_outcome outcome, socket_handle socket) { handle_accept(outcome, socket); };
}

chunk_server::~chunk_server() { pool_.shutdown_and_drain(static_cast<std::uint8_t>(chunk_close_reason::shutdown)); }

bool chunk_server::drained() const noexcept { return pool_.drained(); }

std::uint16_t chunk_server::port() const { return pool_.port(); }

bool chunk_server::start(io_error& error) {
    assert(!started_);
    assert(options_.handler && "chunk_server needs a handler");
    started_ = true;
    if (!pool_.listen(options_.listen_address, error)) return false;
    pool_.start(options_.tick_ns);
    return true;
}

void chunk_server::shutdown() {
    // Connections closed inside a handler are freed only after its callback returns.
    pool_.shutdown(static_cast<std::uint8_t>(chunk_close_reason::shutdown));
}

chunk_server_status chunk_server::status() const {
    chunk_server_status result;
    result.connections = pool_.open_connections();
    result.connection_objects = pool_.connection_objects();
    for (std::size_t i = 0; i < pool_.connection_objects(); i++) {
        const auto& conn = static_cast<const connection&>(pool_.at(i));
        result.buffer_bytes += conn.reader.body.capacity() + conn.reply_body.capacity();
    }
    return result;
}

// ---- accepting and housekeeping -----------------------------------------------------------------

void chunk_server::handle_accept(accept_outcome outcome, socket_handle socket) {
    if (count_accept(outcome, counters_)) start_recv(pool_.add<connection>(*this, socket));
}

void chunk_server::handle_tick(std::uint64_t now) {
    for (std::size_t i = 0; i < pool_.connection_objects(); i++) {
        check_timeouts(static_cast<connection&>(pool_.at(i)), now);
    }
}

// Replying: the peer must take the reply within frame_timeout_ns. Receiving: a started frame
// must complete within frame_timeout_ns however steadily its bytes trickle in. Between frames:
// something must arrive within idle_timeout_ns.
void chunk_server::check_timeouts(connection& conn, std::uint64_t now) {
    if (!conn.open()) return;
    if (conn.replying) {
        if (now - conn.reply_started_ns > options_.frame_timeout_ns) {
            close_connection(conn, chunk_close_reason::slow_send);
        }
    } else if (conn.reader.started_ns != 0) {
        if (now - conn.reader.started_ns > options_.frame_timeout_ns) {
            close_connection(conn, chunk_close_reason::slow_frame);
        }
    } else if (now - conn.last_activity_ns > options_.idle_timeout_ns) {
        close_connection(conn, chunk_close_reason::idle_timeout);
    }
}

// ---- receiving ----------------------------------------------------------------------------------

void chunk_server::start_recv(connection& conn) {
    if (!conn.open() || conn.receiving() || conn.replying) return;
    conn.receive(conn.reader.window());
}

void chunk_server::handle_recv(connection& conn, io_error error, std::size_t bytes) {
    if (error != io_error::none) {
        close_connection(conn, reason_for(error));
        return;
    }
    const std::uint64_t now = conn.last_receive_ns();
    counters_.bytes_received += bytes;
    conn.last_activity_ns = now;
    switch (conn.reader.received(bytes, now, [&] { return handle_header(conn); })) {
        case frame_progress::incomplete: return start_recv(conn);
        case frame_progress::refused: return;
        case frame_progress::complete: return handle_request(conn);
    }
}

// Checked before any body byte is read: a wrong cluster or a huge length never makes the server
// wait for, or allocate, a body.
bool chunk_server::handle_header(connection& conn) {
    const frame_error error = toastyfs::decode_frame_header(header_span(conn.reader.header_bytes), options_.cluster,
                                                            options_.body_size_max, conn.reader.header);
    if (error != frame_error::none) {
        counters_.frame_errors[static_cast<std::size_t>(error)]++;
        close_connection(conn, chunk_close_reason::bad_header);
        return false;
    }
    if (conn.reader.header.reply) {
        close_connection(conn, chunk_close_reason::wrong_direction);
        return false;
    }
    return true;
}

void chunk_server::handle_request(connection& conn) {
    const frame_header& request = conn.reader.header;
    const std::span<const std::uint8_t> body = conn.reader.body_bytes();
    if (!toastyfs::body_matches(request, body)) {
        close_connection(conn, chunk_close_reason::bad_body);
        return;
    }
    counters_.requests++;
    frame_header reply{.kind = request.kind,
                       .reply = true,
                       .status = toastyfs::frame_status::ok,
                       .cluster = options_.cluster,
                       .request_id = request.request_id,
                       .sha256 = request.sha256};
    conn.reply_body.clear();
    try {
        options_.handler(request, body, reply, conn.reply_body);
    } catch (...) {
        close_connection(conn, chunk_close_reason::handler_failed);
        return;
    }
    if (!conn.open()) return;  // the handler called shutdown()
    assert(!conn.receiving() && !conn.sending());
    reply.kind = request.kind;
    reply.reply = true;
    reply.request_id = request.request_id;
    reply.cluster = options_.cluster;
    if (conn.reply_body.size() > options_.reply_body_size_max) {
        counters_.replies_too_large++;
        conn.reply_body.clear();
        reply.status = toastyfs::frame_status::too_large;
    }
    conn.reader.release_if_over(options_.buffer_keep_bytes_max);  // the request body is done
    toastyfs::encode_frame_header(reply, conn.reply_body, conn.reply_header);
    conn.replying = true;
    conn.reply_started_ns = loop_.monotonic_ns();
    // Both live in the connection, which outlives its sends: borrowed, never copied.
    conn.queue_borrowed(conn.reply_header, nullptr, conn.reply_body.empty() ? 1 : 0);
    conn.queue_borrowed(conn.reply_body, nullptr, conn.reply_body.empty() ? 0 : 1);
    conn.flush();
}

// ---- sending ------------------------------------------------------------------------------------

void chunk_server::handle_sent(connection& conn, io_error error, std::size_t bytes, std::size_t frames) {
    if (error != io_error::none) {
        close_connection(conn, reason_for(error));
        return;
    }
    counters_.bytes_sent += bytes;
    if (frames != 0) finish_reply(conn);
}

void chunk_server::finish_reply(connection& conn) {
    assert(conn.replying && !conn.sending() && !conn.receiving());
    counters_.replies++;
    conn.replying = false;
    if (conn.reply_body.capacity() > options_.buffer_keep_bytes_max) {
        std::vector<std::uint8_t>().swap(conn.reply_body);
    }
    conn.reader.next_frame();
    conn.last_activity_ns = loop_.monotonic_ns();
    start_recv(conn);  // only now: one request at a time per connection
}

// ---- closing ------------------------------------------------------------------------------------

// Closes the socket (the loop cancels its pending operations; their callbacks arrive later). The
// pool frees the object and its buffers once the loop has handed back its completions.
void chunk_server::close_connection(connection& conn, chunk_close_reason reason) {
    conn.close(static_cast<std::uint8_t>(reason));  // counted in on_closed
}

// ================================================================================================
// chunk_client
// ================================================================================================

namespace {

struct outstanding_request {
    std::uint64_t request_id = 0;
    toastyfs::frame_kind kind = toastyfs::frame_kind::write;
};

}  // namespace

struct chunk_client::connection final : stream_connection {
    connection(chunk_client& owner, socket_handle socket, std::uint8_t node_index)
        : stream_connection(owner.pool_, socket), client(owner), node(node_index) {}

    chunk_client& client;
    std::uint8_t node = 0;
    bool established = false;

    // The stall clock: the last byte received, or the moment requests became outstanding.
    std::uint64_t progress_ns = 0;
    frame_reader reader;

    // Send side: body sizes of the frames queued and not yet fully on the socket, in order.
    std::deque<std::size_t> queued_body_sizes;
    std::size_t queued_body_bytes = 0;

    // Accepted by send() and not yet answered, in send order (the node answers in order, so a
    // reply usually matches the front).
    std::deque<outstanding_request> outstanding;

    std::deque<outstanding_request>::iterator find_outstanding(std::uint64_t request_id) {
        return std::find_if(outstanding.begin(), outstanding.end(),
                            [&](const outstanding_request& r) { return r.request_id == request_id; });
    }

    void on_connected(io_error error) override { client.handle_connect(*this, error); }
    void on_received(io_error error, std::size_t bytes) override { client.handle_recv(*this, error, bytes); }
    void on_sent(io_error error, std::size_t bytes, std::size_t frames) override {
        client.handle_sent(*this, error, bytes, frames);
    }
    void on_closed(std::uint8_t reason) override {
        client.handle_closed(*this, static_cast<chunk_close_reason>(reason));
    }
};

chunk_client::chunk_client(event_loop& loop, chunk_client_options options)
    : loop_(loop),
      options_(std::move(options)),
      random_(options_.random_seed),
      pool_(loop, connection_pool_options{.tick_ns = options_.tick_ns,
                                          .connect_timeout_ns = options_.connect_timeout_ns,
                                          .connect_timeout_reason =
                                              static_cast<std::uint8_t>(chunk_close_reason::connect_failed)}),
      nodes_(options_.node_addresses.size()) {
    assert(options_.node_addresses.size() <= toastyfs::nodes_max);
    pool_.on_tick = [this](std::uint64_t now) { handle_tick(now); };
}

chunk_client::~chunk_client() { pool_.shutdown_and_drain(static_cast<std::uint8_t>(chunk_close_reason::shutdown)); }

bool chunk_client::drained() const noexcept { return pool_.drained(); }

void chunk_client::start() {
    assert(!started_);
    started_ = true;
    pool_.start(0);  // the first tick starts the connects
}

void chunk_client::shutdown() { pool_.shutdown(static_cast<std::uint8_t>(chunk_close_reason::shutdown)); }

chunk_client::connection* chunk_client::node_connection(std::uint8_t node) const noexcept {
    return static_cast<connection*>(nodes_[node].conn);
}

bool chunk_client::connected(std::uint8_t node) const noexcept {
    if (pool_.stopping() || node >= nodes_.size()) return false;
    const connection* conn = node_connection(node);
    return conn != nullptr && conn->open() && conn->established;
}

std::vector<chunk_client_node_status> chunk_client::status() const {
    std::vector<chunk_client_node_status> result(nodes_.size());
    for (std::size_t i = 0; i < nodes_.size(); i++) {
        const connection* conn = node_connection(static_cast<std::uint8_t>(i));
        if (conn == nullptr) continue;
        result[i] = {.connected = connected(static_cast<std::uint8_t>(i)),
                     .queued_bytes = conn->queued_body_bytes,
                     .queued_frames = conn->queued_body_sizes.size(),
                     .outstanding = conn->outstanding.size()};
    }
    return result;
}

// ---- connecting and housekeeping ----------------------------------------------------------------

void chunk_client::handle_tick(std::uint64_t now) {
    // By index: a callback run from a close may queue sends, never add or free connections.
    for (std::size_t i = 0; i < pool_.connection_objects(); i++) {
        check_timeouts(static_cast<connection&>(pool_.at(i)), now);
    }
    if (pool_.stopping()) return;  // a callback called shutdown()
    for (std::size_t node = 0; node < nodes_.size(); node++) {
        if (nodes_[node].due(now)) start_connect(static_cast<std::uint8_t>(node), now);
    }
}

void chunk_client::check_timeouts(connection& conn, std::uint64_t now) {
    if (!conn.open() || conn.connecting()) return;  // the pool times connects out
    if (conn.sending() && now - conn.send_started_ns() > options_.frame_timeout_ns) {
        close_connection(conn, chunk_close_reason::slow_send);
    } else if (conn.reader.started_ns != 0 && now - conn.reader.started_ns > options_.frame_timeout_ns) {
        close_connection(conn, chunk_close_reason::slow_frame);
    } else if (!conn.outstanding.empty() && now - conn.progress_ns > options_.stall_timeout_ns) {
        close_connection(conn, chunk_close_reason::stalled);
    }
}

void chunk_client::start_connect(std::uint8_t node, std::uint64_t now) {
    connect_slot& slot = nodes_[node];
    io_error error = io_error::none;
    const socket_handle socket = pool_.open_stream(error);
    if (socket == invalid_socket) {
        slot.lost(now, options_.reconnect_backoff_min_ns, options_.reconnect_backoff_max_ns, random_);
        counters_.connect_failures++;
        counters_.closed[static_cast<std::size_t>(chunk_close_reason::connect_failed)]++;
        return;
    }
    counters_.connects_started++;
    connection& conn = pool_.add<connection>(*this, socket, node);
    slot.conn = &conn;
    conn.connect(options_.node_addresses[node]);
}

void chunk_client::handle_connect(connection& conn, io_error error) {
    if (error != io_error::none) {
        close_connection(conn, chunk_close_reason::connect_failed);
        return;
    }
    counters_.connects++;
    nodes_[conn.node].succeeded();
    conn.established = true;
    conn.progress_ns = loop_.monotonic_ns();
    start_recv(conn);
    if (options_.on_connect) options_.on_connect(conn.node);
}

// ---- sending ------------------------------------------------------------------------------------

bool chunk_client::send(std::uint8_t node, const frame_header& header,
                        std::shared_ptr<const std::vector<std::uint8_t>> body) {
    const auto kind = static_cast<std::uint8_t>(header.kind);
    if (node >= nodes_.size() || kind == 0 || kind > toastyfs::frame_kind_max) {
        counters_.refused_invalid++;
        return false;
    }
    if (!connected(node)) {
        counters_.refused_not_connected++;
        return false;
    }
    connection& conn = *node_connection(node);
    if (body != nullptr && body->empty()) body.reset();
    const std::size_t body_size = body ? body->size() : 0;
    if (conn.queued_body_sizes.size() >= options_.queue_frames_max ||
        conn.outstanding.size() >= options_.outstanding_max ||
        body_size > options_.queue_bytes_max - std::min(options_.queue_bytes_max, conn.queued_body_bytes)) {
        counters_.refused_queue_full++;
        return false;
    }
    if (conn.find_outstanding(header.request_id) != conn.outstanding.end()) {
        counters_.refused_invalid++;  // its reply could not be told apart
        return false;
    }
    frame_header request = header;
    request.reply = false;
    request.status = toastyfs::frame_status::ok;
    request.cluster = options_.cluster;
    request.body_size = body_size;
    std::array<std::uint8_t, frame_header_size> header_bytes{};
    const std::span<const std::uint8_t> bytes =
        body ? std::span<const std::uint8_t>(*body) : std::span<const std::uint8_t>();
    toastyfs::encode_frame_header(request, bytes, header_bytes);
    if (conn.outstanding.empty()) conn.progress_ns = loop_.monotonic_ns();
    conn.outstanding.push_back({.request_id = request.request_id, .kind = request.kind});
    // The header is copied (headers of bodiless frames share one send); the body is shared.
    conn.queue_copy(header_bytes, body ? 0 : 1);
    if (body) conn.queue_borrowed(bytes, std::move(body), 1);
    conn.queued_body_sizes.push_back(body_size);
    conn.queued_body_bytes += body_size;
    conn.flush();  // never calls back from here: the loop completes sends from run_once
    return true;
}

void chunk_client::handle_sent(connection& conn, io_error error, std::size_t bytes, std::size_t frames) {
    if (error != io_error::none) {
        close_connection(conn, reason_for(error));
        return;
    }
    counters_.bytes_sent += bytes;
    // Whole frames are on the socket: their shared bodies were released by the queue.
    for (std::size_t i = 0; i < frames; i++) {
        assert(!conn.queued_body_sizes.empty());
        conn.queued_body_bytes -= conn.queued_body_sizes.front();
        conn.queued_body_sizes.pop_front();
        counters_.requests_sent++;
    }
}

// ---- receiving ----------------------------------------------------------------------------------

void chunk_client::start_recv(connection& conn) {
    if (!conn.open() || conn.receiving()) return;
    conn.receive(conn.reader.window());
}

void chunk_client::handle_recv(connection& conn, io_error error, std::size_t bytes) {
    if (error != io_error::none) {
        close_connection(conn, reason_for(error));
        return;
    }
    const std::uint64_t now = conn.last_receive_ns();
    counters_.bytes_received += bytes;
    conn.progress_ns = now;
    switch (conn.reader.received(bytes, now, [&] { return handle_header(conn); })) {
        case frame_progress::incomplete: return start_recv(conn);
        case frame_progress::refused: return;
        case frame_progress::complete: return handle_reply(conn);
    }
}

// Checked before any body byte is read: shape, direction, and that we asked for it.
bool chunk_client::handle_header(connection& conn) {
    frame_header& header = conn.reader.header;
    const frame_error error = toastyfs::decode_frame_header(header_span(conn.reader.header_bytes), options_.cluster,
                                                            options_.body_size_max, header);
    if (error != frame_error::none) {
        counters_.frame_errors[static_cast<std::size_t>(error)]++;
        close_connection(conn, chunk_close_reason::bad_header);
        return false;
    }
    if (!header.reply) {
        close_connection(conn, chunk_close_reason::wrong_direction);
        return false;
    }
    const auto found = conn.find_outstanding(header.request_id);
    if (found == conn.outstanding.end() || found->kind != header.kind) {
        close_connection(conn, chunk_close_reason::unexpected_reply);
        return false;
    }
    return true;
}

void chunk_client::handle_reply(connection& conn) {
    const frame_header reply = conn.reader.header;
    if (!toastyfs::body_matches(reply, conn.reader.body_bytes())) {
        close_connection(conn, chunk_close_reason::bad_body);
        return;
    }
    std::vector<std::uint8_t> body;
    if (reply.body_size != 0) {
        body = std::move(conn.reader.body);  // exactly body_size bytes: growth stops there
        conn.reader.body = {};
    }
    conn.reader.next_frame();
    conn.outstanding.erase(conn.find_outstanding(reply.request_id));  // present: checked in the header
    counters_.replies++;
    if (options_.on_reply) options_.on_reply(conn.node, reply, std::move(body));
    start_recv(conn);  // checks open: the callback may have called shutdown()
}

// ---- closing ------------------------------------------------------------------------------------

void chunk_client::close_connection(connection& conn, chunk_close_reason reason) {
    conn.close(static_cast<std::uint8_t>(reason));  // handle_closed runs once, from close()
}

// Schedules a reconnect and hands the unanswered request ids to the caller. The pool frees the
// object, its queue and the shared bodies in it once the loop has handed back every completion.
void chunk_client::handle_closed(connection& conn, chunk_close_reason reason) {
    const bool was_established = conn.established;
    conn.established = false;
    counters_.closed[static_cast<std::size_t>(reason)]++;
    if (reason == chunk_close_reason::connect_failed) counters_.connect_failures++;
    connect_slot& slot = nodes_[conn.node];
    if (slot.conn == &conn) {
        slot.lost(loop_.monotonic_ns(), options_.reconnect_backoff_min_ns, options_.reconnect_backoff_max_ns, random_);
    }
    std::vector<std::uint64_t> ids;
    ids.reserve(conn.outstanding.size());
    for (const outstanding_request& r : conn.outstanding) ids.push_back(r.request_id);
    conn.outstanding.clear();
    // The pool is stopping before it closes anything: shutdown() reports no disconnects.
    if (was_established && !pool_.stopping() && options_.on_disconnect) {
        options_.on_disconnect(conn.node, std::move(ids));
    }
}

}  // namespace platform
