// The chunk transport: framing, connection lifetime and timeouts for chunk_server and
// chunk_client on the completion-style event loop. See chunk_transport.hpp for the rules.
#include "platform/chunk_transport.hpp"

#include <algorithm>
#include <cassert>
#include <deque>
#include <utility>

#include "platform/tcp_message_bus.hpp"  // backoff_delay_ns

namespace platform {

using toastyfs::frame_error;
using toastyfs::frame_header;
using toastyfs::frame_header_size;

const char* to_string(chunk_close_reason reason) noexcept {
    constexpr const char* names[chunk_close_reason_count] = {
        "peer_closed", "io_error",   "connect_failed", "idle_timeout",    "stalled",
        "slow_frame",  "slow_send",  "bad_header",     "bad_body",        "wrong_direction",
        "unexpected_reply", "handler_failed", "shutdown"};
    const auto i = static_cast<std::size_t>(reason);
    return i < chunk_close_reason_count ? names[i] : "unknown";
}

namespace {

// A body buffer first grows to this much, then doubles with what has arrived, up to body_size:
// a header announcing a large body costs nothing until its bytes actually arrive.
constexpr std::size_t body_growth_min = 64u << 10;

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
            const std::size_t grown = body.capacity() >= size
                                          ? size
                                          : std::min(size, filled + std::max(filled, body_growth_min));
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
    // Counts a completed recv; the frame's deadline starts at its first byte.
    void received(std::size_t bytes, std::uint64_t now) noexcept {
        if (started_ns == 0) started_ns = now;
        filled += bytes;
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

struct chunk_server::connection {
    chunk_server* server = nullptr;
    socket_handle socket = invalid_socket;
    bool open = true;

    completion recv_completion;
    completion send_completion;
    bool recv_pending = false;
    bool send_pending = false;

    frame_reader reader;
    std::uint64_t last_activity_ns = 0;  // last byte received, or last reply finished

    // The reply in flight: header, then body. The next frame is read only after both are sent.
    std::array<std::uint8_t, frame_header_size> reply_header{};
    std::vector<std::uint8_t> reply_body;
    bool replying = false;
    bool sending_reply_body = false;
    std::uint64_t reply_started_ns = 0;

    bool releasable() const noexcept { return !open && !recv_pending && !send_pending; }
};

chunk_server::chunk_server(event_loop& loop, chunk_server_options options)
    : loop_(loop),
      options_(std::move(options)),
      listener_(options_.listen_socket),
      accept_completion_(std::make_unique<completion>()),
      tick_completion_(std::make_unique<completion>()) {
    accept_completion_->callback = &on_accept;
    accept_completion_->context = this;
    tick_completion_->callback = &on_tick;
    tick_completion_->context = this;
    options_.tick_ns = std::max<std::uint64_t>(options_.tick_ns, 1'000'000);
}

chunk_server::~chunk_server() {
    shutdown();
    // Every pending operation was cancelled by shutdown(): a few iterations hand them back.
    for (int i = 0; i < 1000 && !drained(); i++) {
        sweep();
        if (drained()) break;
        loop_.run_once(0);
    }
    assert(drained() && "chunk_server destroyed with operations still pending");
}

bool chunk_server::drained() const noexcept {
    return !accept_pending_ && !tick_pending_ && connections_.empty();
}

std::uint16_t chunk_server::port() const {
    return listener_ == invalid_socket ? 0 : loop_.local_port(listener_);
}

bool chunk_server::start(io_error& error) {
    assert(!started_);
    assert(options_.handler && "chunk_server needs a handler");
    started_ = true;
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

void chunk_server::shutdown() {
    if (stopping_) return;
    stopping_ = true;
    if (listener_ != invalid_socket) {
        loop_.close(listener_);  // cancels the pending accept
        listener_ = invalid_socket;
    }
    if (tick_pending_) loop_.cancel(*tick_completion_);
    for (auto& conn : connections_) close_connection(*conn, chunk_close_reason::shutdown);
    // Not swept here: shutdown() may run inside a handler whose connection is still in use.
}

chunk_server_status chunk_server::status() const {
    chunk_server_status result;
    result.connections = open_connections_;
    result.connection_objects = connections_.size();
    for (const auto& conn : connections_) {
        result.buffer_bytes += conn->reader.body.capacity() + conn->reply_body.capacity();
    }
    return result;
}

// ---- callbacks: each ends with sweep(), the only place connections are freed --------------------

void chunk_server::on_accept(completion& c) {
    auto* server = static_cast<chunk_server*>(c.context);
    server->accept_pending_ = false;
    server->handle_accept(c);
    server->sweep();
}

void chunk_server::on_tick(completion& c) {
    auto* server = static_cast<chunk_server*>(c.context);
    server->tick_pending_ = false;
    if (server->stopping_) return;
    server->handle_tick();
    server->sweep();
}

void chunk_server::on_recv(completion& c) {
    auto* conn = static_cast<connection*>(c.context);
    chunk_server* server = conn->server;
    conn->recv_pending = false;
    server->handle_recv(*conn);
    server->sweep();
}

void chunk_server::on_send(completion& c) {
    auto* conn = static_cast<connection*>(c.context);
    chunk_server* server = conn->server;
    conn->send_pending = false;
    server->handle_send(*conn);
    server->sweep();
}

// ---- accepting and housekeeping -----------------------------------------------------------------

void chunk_server::accept_next() {
    if (stopping_ || listener_ == invalid_socket || accept_pending_) return;
    accept_pending_ = true;
    loop_.accept(listener_, *accept_completion_);
}

void chunk_server::handle_accept(completion& c) {
    if (stopping_ || c.error == io_error::cancelled) {
        if (c.error == io_error::none) loop_.close(c.accepted);  // raced with shutdown
        return;
    }
    if (c.error != io_error::none) {
        // Out of descriptors or similar: retrying at once would spin, so the tick retries.
        counters_.accept_errors++;
        accept_paused_ = true;
        return;
    }
    if (open_connections_ >= options_.connections_max) {
        counters_.refused++;
        loop_.close(c.accepted);
        accept_next();
        return;
    }
    counters_.accepted++;
    auto owned = std::make_unique<connection>();
    connection& conn = *owned;
    conn.server = this;
    conn.socket = c.accepted;
    conn.last_activity_ns = loop_.monotonic_ns();
    conn.recv_completion.context = &conn;
    conn.recv_completion.callback = &on_recv;
    conn.send_completion.context = &conn;
    conn.send_completion.callback = &on_send;
    connections_.push_back(std::move(owned));
    open_connections_++;
    start_recv(conn);
    accept_next();
}

void chunk_server::handle_tick() {
    const std::uint64_t now = loop_.monotonic_ns();
    for (auto& conn : connections_) check_timeouts(*conn, now);
    if (accept_paused_) {
        accept_paused_ = false;
        accept_next();
    }
    tick_pending_ = true;
    loop_.timeout(options_.tick_ns, *tick_completion_);
}

// Replying: the peer must take the reply within frame_timeout_ns. Receiving: a started frame
// must complete within frame_timeout_ns however steadily its bytes trickle in. Between frames:
// something must arrive within idle_timeout_ns.
void chunk_server::check_timeouts(connection& conn, std::uint64_t now) {
    if (!conn.open) return;
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
    if (!conn.open || conn.recv_pending || conn.replying) return;
    conn.recv_pending = true;
    loop_.recv(conn.socket, conn.reader.window(), conn.recv_completion);
}

void chunk_server::handle_recv(connection& conn) {
    if (!conn.open) return;
    const completion& c = conn.recv_completion;
    if (c.error != io_error::none) {
        close_connection(conn, reason_for(c.error));
        return;
    }
    const std::uint64_t now = loop_.monotonic_ns();
    counters_.bytes_received += c.bytes;
    conn.last_activity_ns = now;
    conn.reader.received(c.bytes, now);
    if (!conn.reader.in_body) {
        if (!conn.reader.header_done()) return start_recv(conn);
        if (!handle_header(conn)) return;
        if (conn.reader.header.body_size != 0) {
            conn.reader.begin_body();
            return start_recv(conn);
        }
    } else if (!conn.reader.body_done()) {
        return start_recv(conn);
    }
    handle_request(conn);
}

// The header is checked before any body byte is read: a wrong cluster or a huge length never
// makes the server wait for, or allocate, a body.
bool chunk_server::handle_header(connection& conn) {
    const frame_error error = toastyfs::decode_frame_header(
        header_span(conn.reader.header_bytes), options_.cluster, options_.body_size_max,
        conn.reader.header);
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
    frame_header reply{.kind = request.kind, .reply = true, .status = toastyfs::frame_status::ok,
                       .cluster = options_.cluster, .request_id = request.request_id,
                       .sha256 = request.sha256};
    conn.reply_body.clear();
    try {
        options_.handler(request, body, reply, conn.reply_body);
    } catch (...) {
        close_connection(conn, chunk_close_reason::handler_failed);
        return;
    }
    if (!conn.open) return;  // the handler called shutdown()
    assert(!conn.recv_pending && !conn.send_pending);
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
    conn.sending_reply_body = false;
    conn.reply_started_ns = loop_.monotonic_ns();
    conn.send_pending = true;
    loop_.send(conn.socket, conn.reply_header, conn.send_completion);
}

// ---- sending ------------------------------------------------------------------------------------

void chunk_server::handle_send(connection& conn) {
    if (!conn.open) return;
    const completion& c = conn.send_completion;
    if (c.error != io_error::none) {
        close_connection(conn, reason_for(c.error));
        return;
    }
    counters_.bytes_sent += c.bytes;
    if (!conn.sending_reply_body && !conn.reply_body.empty()) {
        conn.sending_reply_body = true;
        conn.send_pending = true;
        loop_.send(conn.socket, conn.reply_body, conn.send_completion);
        return;
    }
    finish_reply(conn);
}

void chunk_server::finish_reply(connection& conn) {
    assert(conn.replying && !conn.send_pending && !conn.recv_pending);
    counters_.replies++;
    conn.replying = false;
    conn.sending_reply_body = false;
    if (conn.reply_body.capacity() > options_.buffer_keep_bytes_max) {
        std::vector<std::uint8_t>().swap(conn.reply_body);
    }
    conn.reader.next_frame();
    conn.last_activity_ns = loop_.monotonic_ns();
    start_recv(conn);  // only now: one request at a time per connection
}

// ---- closing ------------------------------------------------------------------------------------

// Closes the socket (the loop cancels its pending operations; their callbacks arrive later). The
// object and its buffers are freed by sweep() once the loop has handed back its completions.
void chunk_server::close_connection(connection& conn, chunk_close_reason reason) {
    if (!conn.open) return;
    conn.open = false;
    counters_.closed[static_cast<std::size_t>(reason)]++;
    loop_.close(conn.socket);
    conn.socket = invalid_socket;
    open_connections_--;
    closed_unreleased_++;
}

void chunk_server::sweep() {
    if (closed_unreleased_ == 0) return;
    const std::size_t before = connections_.size();
    std::erase_if(connections_, [](const auto& conn) { return conn->releasable(); });
    closed_unreleased_ -= before - connections_.size();
}

// ================================================================================================
// chunk_client
// ================================================================================================

namespace {

struct queued_frame {
    std::array<std::uint8_t, frame_header_size> header{};
    std::shared_ptr<const std::vector<std::uint8_t>> body;  // null or non-empty

    std::size_t body_size() const noexcept { return body ? body->size() : 0; }
};

struct outstanding_request {
    std::uint64_t request_id = 0;
    toastyfs::frame_kind kind = toastyfs::frame_kind::write;
};

}  // namespace

struct chunk_client::connection {
    chunk_client* client = nullptr;
    socket_handle socket = invalid_socket;
    std::uint8_t node = 0;
    bool open = true;
    bool established = false;

    completion connect_completion;
    completion recv_completion;
    completion send_completion;
    bool connect_pending = false;
    bool recv_pending = false;
    bool send_pending = false;

    std::uint64_t opened_ns = 0;
    // The stall clock: the last byte received, or the moment requests became outstanding.
    std::uint64_t progress_ns = 0;
    frame_reader reader;

    // Send side: the front is in flight while send_pending (its header, then its body).
    std::deque<queued_frame> queue;
    std::size_t queued_body_bytes = 0;
    bool sending_body = false;
    std::uint64_t send_started_ns = 0;

    // Accepted by send() and not yet answered, in send order (the node answers in order, so a
    // reply usually matches the front).
    std::deque<outstanding_request> outstanding;

    bool releasable() const noexcept {
        return !open && !connect_pending && !recv_pending && !send_pending;
    }
    std::deque<outstanding_request>::iterator find_outstanding(std::uint64_t request_id) {
        return std::find_if(outstanding.begin(), outstanding.end(),
                            [&](const outstanding_request& r) { return r.request_id == request_id; });
    }
};

chunk_client::chunk_client(event_loop& loop, chunk_client_options options)
    : loop_(loop),
      options_(std::move(options)),
      random_(options_.random_seed),
      tick_completion_(std::make_unique<completion>()),
      nodes_(options_.node_addresses.size()) {
    assert(options_.node_addresses.size() <= toastyfs::nodes_max);
    tick_completion_->callback = &on_tick;
    tick_completion_->context = this;
    options_.tick_ns = std::max<std::uint64_t>(options_.tick_ns, 1'000'000);
}

chunk_client::~chunk_client() {
    shutdown();
    for (int i = 0; i < 1000 && !drained(); i++) {
        sweep();
        if (drained()) break;
        loop_.run_once(0);
    }
    assert(drained() && "chunk_client destroyed with operations still pending");
}

bool chunk_client::drained() const noexcept { return !tick_pending_ && connections_.empty(); }

void chunk_client::start() {
    assert(!started_);
    started_ = true;
    if (stopping_) return;
    tick_pending_ = true;
    loop_.timeout(0, *tick_completion_);  // the first tick starts the connects
}

void chunk_client::shutdown() {
    if (stopping_) return;
    stopping_ = true;  // first: closes below call no on_disconnect
    if (tick_pending_) loop_.cancel(*tick_completion_);
    for (auto& conn : connections_) close_connection(*conn, chunk_close_reason::shutdown);
    // Not swept here: shutdown() may run inside a callback whose connection is still in use.
}

bool chunk_client::connected(std::uint8_t node) const noexcept {
    if (stopping_ || node >= nodes_.size()) return false;
    const connection* conn = nodes_[node].conn;
    return conn != nullptr && conn->open && conn->established;
}

std::vector<chunk_client_node_status> chunk_client::status() const {
    std::vector<chunk_client_node_status> result(nodes_.size());
    for (std::size_t i = 0; i < nodes_.size(); i++) {
        const connection* conn = nodes_[i].conn;
        if (conn == nullptr) continue;
        result[i] = {.connected = connected(static_cast<std::uint8_t>(i)),
                     .queued_bytes = conn->queued_body_bytes,
                     .queued_frames = conn->queue.size(),
                     .outstanding = conn->outstanding.size()};
    }
    return result;
}

// ---- callbacks: each ends with sweep(), the only place connections are freed --------------------

void chunk_client::on_tick(completion& c) {
    auto* client = static_cast<chunk_client*>(c.context);
    client->tick_pending_ = false;
    if (client->stopping_) return;
    client->handle_tick();
    client->sweep();
}

void chunk_client::on_connect_done(completion& c) {
    auto* conn = static_cast<connection*>(c.context);
    chunk_client* client = conn->client;
    conn->connect_pending = false;
    client->handle_connect(*conn);
    client->sweep();
}

void chunk_client::on_recv(completion& c) {
    auto* conn = static_cast<connection*>(c.context);
    chunk_client* client = conn->client;
    conn->recv_pending = false;
    client->handle_recv(*conn);
    client->sweep();
}

void chunk_client::on_send(completion& c) {
    auto* conn = static_cast<connection*>(c.context);
    chunk_client* client = conn->client;
    conn->send_pending = false;
    client->handle_send(*conn);
    client->sweep();
}

// ---- connecting and housekeeping ----------------------------------------------------------------

void chunk_client::handle_tick() {
    const std::uint64_t now = loop_.monotonic_ns();
    // By index: a callback run from a close may queue sends, never add or free connections.
    for (std::size_t i = 0; i < connections_.size(); i++) check_timeouts(*connections_[i], now);
    if (stopping_) return;  // a callback called shutdown()
    for (std::size_t node = 0; node < nodes_.size(); node++) {
        if (nodes_[node].conn == nullptr && now >= nodes_[node].next_connect_ns) {
            start_connect(static_cast<std::uint8_t>(node), now);
        }
    }
    tick_pending_ = true;
    loop_.timeout(options_.tick_ns, *tick_completion_);
}

void chunk_client::check_timeouts(connection& conn, std::uint64_t now) {
    if (!conn.open) return;
    if (conn.connect_pending) {
        if (now - conn.opened_ns > options_.connect_timeout_ns) {
            close_connection(conn, chunk_close_reason::connect_failed);
        }
        return;
    }
    if (conn.send_pending && now - conn.send_started_ns > options_.frame_timeout_ns) {
        close_connection(conn, chunk_close_reason::slow_send);
    } else if (conn.reader.started_ns != 0 && now - conn.reader.started_ns > options_.frame_timeout_ns) {
        close_connection(conn, chunk_close_reason::slow_frame);
    } else if (!conn.outstanding.empty() && now - conn.progress_ns > options_.stall_timeout_ns) {
        close_connection(conn, chunk_close_reason::stalled);
    }
}

void chunk_client::start_connect(std::uint8_t node, std::uint64_t now) {
    node_slot& slot = nodes_[node];
    io_error error = io_error::none;
    const socket_handle socket = loop_.open_stream(error);
    if (socket == invalid_socket) {
        slot.attempts++;
        slot.next_connect_ns = now + backoff_delay_ns(slot.attempts, options_.reconnect_backoff_min_ns,
                                                      options_.reconnect_backoff_max_ns, random_);
        counters_.connect_failures++;
        counters_.closed[static_cast<std::size_t>(chunk_close_reason::connect_failed)]++;
        return;
    }
    counters_.connects_started++;
    auto owned = std::make_unique<connection>();
    connection& conn = *owned;
    conn.client = this;
    conn.socket = socket;
    conn.node = node;
    conn.opened_ns = now;
    for (completion* c : {&conn.connect_completion, &conn.recv_completion, &conn.send_completion}) {
        c->context = &conn;
    }
    conn.connect_completion.callback = &on_connect_done;
    conn.recv_completion.callback = &on_recv;
    conn.send_completion.callback = &on_send;
    connections_.push_back(std::move(owned));
    slot.conn = &conn;
    conn.connect_pending = true;
    loop_.connect(socket, options_.node_addresses[node], conn.connect_completion);
}

void chunk_client::handle_connect(connection& conn) {
    if (!conn.open) return;
    if (conn.connect_completion.error != io_error::none) {
        close_connection(conn, chunk_close_reason::connect_failed);
        return;
    }
    counters_.connects++;
    nodes_[conn.node].attempts = 0;
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
    connection& conn = *nodes_[node].conn;
    if (body != nullptr && body->empty()) body.reset();
    const std::size_t body_size = body ? body->size() : 0;
    if (conn.queue.size() >= options_.queue_frames_max ||
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
    queued_frame frame;
    const std::span<const std::uint8_t> bytes =
        body ? std::span<const std::uint8_t>(*body) : std::span<const std::uint8_t>();
    toastyfs::encode_frame_header(request, bytes, frame.header);
    frame.body = std::move(body);
    if (conn.outstanding.empty()) conn.progress_ns = loop_.monotonic_ns();
    conn.outstanding.push_back({.request_id = request.request_id, .kind = request.kind});
    conn.queue.push_back(std::move(frame));
    conn.queued_body_bytes += body_size;
    start_send(conn);  // never calls back from here: the loop completes sends from run_once
    return true;
}

void chunk_client::start_send(connection& conn) {
    if (!conn.open || conn.send_pending || conn.queue.empty()) return;
    const queued_frame& front = conn.queue.front();
    conn.send_pending = true;
    if (!conn.sending_body) {
        conn.send_started_ns = loop_.monotonic_ns();
        loop_.send(conn.socket, front.header, conn.send_completion);
    } else {
        loop_.send(conn.socket, *front.body, conn.send_completion);
    }
}

void chunk_client::handle_send(connection& conn) {
    if (!conn.open) return;
    const completion& c = conn.send_completion;
    if (c.error != io_error::none) {
        close_connection(conn, reason_for(c.error));
        return;
    }
    counters_.bytes_sent += c.bytes;
    assert(!conn.queue.empty());
    queued_frame& front = conn.queue.front();
    if (!conn.sending_body && front.body != nullptr) {
        conn.sending_body = true;
        start_send(conn);
        return;
    }
    // The whole frame is on the socket: the shared body is released here.
    conn.sending_body = false;
    conn.queued_body_bytes -= front.body_size();
    conn.queue.pop_front();
    counters_.requests_sent++;
    start_send(conn);
}

// ---- receiving ----------------------------------------------------------------------------------

void chunk_client::start_recv(connection& conn) {
    if (!conn.open || conn.recv_pending) return;
    conn.recv_pending = true;
    loop_.recv(conn.socket, conn.reader.window(), conn.recv_completion);
}

void chunk_client::handle_recv(connection& conn) {
    if (!conn.open) return;
    const completion& c = conn.recv_completion;
    if (c.error != io_error::none) {
        close_connection(conn, reason_for(c.error));
        return;
    }
    const std::uint64_t now = loop_.monotonic_ns();
    counters_.bytes_received += c.bytes;
    conn.progress_ns = now;
    conn.reader.received(c.bytes, now);
    if (!conn.reader.in_body) {
        if (!conn.reader.header_done()) return start_recv(conn);
        if (!handle_header(conn)) return;
        if (conn.reader.header.body_size != 0) {
            conn.reader.begin_body();
            return start_recv(conn);
        }
    } else if (!conn.reader.body_done()) {
        return start_recv(conn);
    }
    handle_reply(conn);
}

// Checked before any body byte is read: shape, direction, and that we asked for it.
bool chunk_client::handle_header(connection& conn) {
    frame_header& header = conn.reader.header;
    const frame_error error = toastyfs::decode_frame_header(
        header_span(conn.reader.header_bytes), options_.cluster, options_.body_size_max, header);
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

// Closes the socket, schedules a reconnect, and hands the unanswered request ids to the caller.
// The object, its queue and the shared bodies in it are freed by sweep() once the loop has
// handed back every completion.
void chunk_client::close_connection(connection& conn, chunk_close_reason reason) {
    if (!conn.open) return;
    const bool was_established = conn.established;
    conn.open = false;
    conn.established = false;
    counters_.closed[static_cast<std::size_t>(reason)]++;
    if (reason == chunk_close_reason::connect_failed) counters_.connect_failures++;
    loop_.close(conn.socket);
    conn.socket = invalid_socket;
    closed_unreleased_++;
    node_slot& slot = nodes_[conn.node];
    if (slot.conn == &conn) {
        slot.conn = nullptr;
        slot.attempts++;
        slot.next_connect_ns = loop_.monotonic_ns() +
                               backoff_delay_ns(slot.attempts, options_.reconnect_backoff_min_ns,
                                                options_.reconnect_backoff_max_ns, random_);
    }
    std::vector<std::uint64_t> ids;
    ids.reserve(conn.outstanding.size());
    for (const outstanding_request& r : conn.outstanding) ids.push_back(r.request_id);
    conn.outstanding.clear();
    if (was_established && !stopping_ && options_.on_disconnect) {
        options_.on_disconnect(conn.node, std::move(ids));
    }
}

void chunk_client::sweep() {
    if (closed_unreleased_ == 0) return;
    const std::size_t before = connections_.size();
    std::erase_if(connections_, [](const auto& conn) { return conn->releasable(); });
    closed_unreleased_ -= before - connections_.size();
}

}  // namespace platform
