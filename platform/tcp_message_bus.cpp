// The TCP message bus: hello handshake, header framing, routing and the timeout rules, on the
// connection layer (stream_connection.hpp). See tcp_message_bus.hpp for the rules.
#include "platform/tcp_message_bus.hpp"

#include <algorithm>
#include <array>
#include <cassert>
#include <cstring>
#include <utility>

#include "vsr/checksum.hpp"

namespace platform {

namespace {
// Bytes each connection's receive buffer reads ahead: many small messages per recv, while a
// thousand client connections still cost only 16 MiB. A larger message grows its buffer.
constexpr std::size_t receive_ahead_bytes = 16 * 1024;
// A send buffer larger than this is released once its burst has been sent.
constexpr std::size_t send_buffer_keep_bytes = 1 << 20;
}  // namespace

// ---- hello frame -------------------------------------------------------------------------------

void encode_hello(const hello& h, std::span<std::uint8_t, hello_size> out) noexcept {
    std::uint8_t* p = out.data();
    vsr::store_le32(p, hello_magic);
    vsr::store_le16(p + 4, hello_version);
    p[6] = static_cast<std::uint8_t>(h.role);
    p[7] = h.replica;
    vsr::store_le32(p + 8, h.cluster);
    vsr::store_le32(p + 12, 0);
    vsr::store_le64(p + 16, h.client_id);
    vsr::store_le64(p + 24, vsr::checksum(std::span<const std::uint8_t>(p, 24), hello_checksum_seed));
}

hello_error decode_hello(std::span<const std::uint8_t, hello_size> bytes, std::uint32_t cluster, hello& out) noexcept {
    const std::uint8_t* p = bytes.data();
    if (vsr::load_le32(p) != hello_magic) return hello_error::bad_magic;
    if (vsr::load_le16(p + 4) != hello_version) return hello_error::bad_version;
    if (vsr::load_le64(p + 24) != vsr::checksum(bytes.first(24), hello_checksum_seed)) {
        return hello_error::bad_checksum;
    }
    if (vsr::load_le32(p + 8) != cluster) return hello_error::wrong_cluster;
    if (vsr::load_le32(p + 12) != 0) return hello_error::bad_reserved;
    const std::uint8_t role = p[6];
    const std::uint8_t replica = p[7];
    const bool replica_ok = role == static_cast<std::uint8_t>(hello_role::replica) && replica < vsr::replicas_max;
    const bool client_ok = role == static_cast<std::uint8_t>(hello_role::client) && replica == vsr::address_client;
    if (!replica_ok && !client_ok) return hello_error::bad_role;
    out = hello{.role = static_cast<hello_role>(role),
                .replica = replica,
                .cluster = cluster,
                .client_id = vsr::load_le64(p + 16)};
    return hello_error::none;
}

void encode_keepalive(std::uint32_t cluster, std::uint8_t sender,
                      std::span<std::uint8_t, vsr::header_size> out) noexcept {
    std::fill(out.begin(), out.end(), std::uint8_t{0});
    std::uint8_t* p = out.data();
    vsr::store_le16(p + 8, vsr::wire_version);
    p[10] = keepalive_command;
    p[11] = sender;
    vsr::store_le32(p + 16, cluster);
    vsr::seal(out, cluster);
}

bool is_keepalive(std::span<const std::uint8_t, vsr::header_size> bytes, std::uint32_t cluster) noexcept {
    // Exactly the frame encode_keepalive makes for the claimed sender: a sealed command-0 header
    // with any other field set (view, op, target, reserved...) is not a keepalive but a bad
    // header, as the format promises (found by tests/fuzz/tcp_bus_fuzz).
    if (bytes[10] != keepalive_command) return false;
    std::array<std::uint8_t, vsr::header_size> canonical{};
    encode_keepalive(cluster, bytes[11], canonical);
    return std::equal(canonical.begin(), canonical.end(), bytes.begin());
}

const char* to_string(close_reason reason) noexcept {
    constexpr const char* names[close_reason_count] = {
        "peer_closed", "io_error",    "connect_failed", "idle_timeout",     "slow_message", "bad_hello",
        "bad_header",  "bad_message", "wrong_sender",   "too_many_clients", "replaced",     "shutdown"};
    const auto i = static_cast<std::size_t>(reason);
    return i < close_reason_count ? names[i] : "unknown";
}

std::uint64_t tcp_bus_counters::closed_total() const noexcept {
    std::uint64_t total = 0;
    for (const std::uint64_t count : closed) total += count;
    return total;
}

// ---- connection --------------------------------------------------------------------------------

struct tcp_message_bus::connection final : stream_connection {
    enum class kind : std::uint8_t { unknown, replica, client };
    enum class phase : std::uint8_t { hello, header, body };

    connection(tcp_message_bus& owner, socket_handle socket)
        : stream_connection(owner.pool_, socket,
                            // Everything queued behind the send in flight goes in the next one.
                            send_queue_options{.coalesce_bytes_max = owner.options_.send_queue_bytes_max,
                                               .keep_bytes_max = send_buffer_keep_bytes}),
          bus(owner) {}

    tcp_message_bus& bus;
    kind peer_kind = kind::unknown;
    std::uint8_t replica = vsr::address_client;  // kind replica: the peer's index
    std::uint64_t client_process_id = 0;
    bool outgoing = false;
    bool established = false;   // sends may be queued
    bool unidentified = false;  // accepted, hello not yet checked (counted in the bus)

    // Receive side: the current hello or message starts the unread bytes and is complete once
    // there are target of them. recv reads ahead (receive_ahead_bytes), so one system call can
    // bring many small messages.
    phase receive_phase = phase::header;
    receive_buffer buffer;
    std::size_t target = vsr::header_size;
    std::uint64_t message_started_ns = 0;  // 0: no hello or message in progress
    std::uint64_t last_send_ns = 0;        // last enqueue (or establishment): keepalive pacing
    std::size_t queued_messages = 0;       // queued, not yet fully sent

    const std::uint8_t* current() const noexcept { return buffer.unread().data(); }
    void append(std::span<const std::uint8_t> frame) {
        queue_copy(frame, 1);
        queued_messages++;
    }

    void on_connected(io_error error) override { bus.handle_connect(*this, error); }
    void on_received(io_error error, std::size_t bytes) override { bus.handle_recv(*this, error, bytes); }
    void on_sent(io_error error, std::size_t, std::size_t frames) override {
        if (error != io_error::none) {
            bus.close_connection(*this, error == io_error::closed ? close_reason::peer_closed : close_reason::io_error);
            return;
        }
        queued_messages -= frames;
        bus.counters_.messages_sent += frames;
    }
    void on_closed(std::uint8_t reason) override { bus.handle_closed(*this, static_cast<close_reason>(reason)); }
};

tcp_message_bus::tcp_message_bus(event_loop& loop, tcp_bus_options options)
    : loop_(loop),
      options_(std::move(options)),
      random_(options_.random_seed),
      pool_(loop,
            connection_pool_options{.tick_ns = options_.tick_ns,
                                    .listen_socket = options_.listen_socket,
                                    .connect_timeout_ns = options_.idle_timeout_ns,
                                    .connect_timeout_reason = static_cast<std::uint8_t>(close_reason::connect_failed)}),
      peers_(options_.replica_addresses.size()) {
    // Header plus at least something: a smaller cap could never frame a message.
    options_.message_size_max = std::max(options_.message_size_max, vsr::header_size);
    pool_.on_tick = [this](std::uint64_t now) { handle_tick(now); };
    pool_.on_accept = [this](accept_outcome outcome, socket_handle socket) { handle_accept(outcome, socket); };
}

tcp_message_bus::~tcp_message_bus() {
    // The loop still holds completions that live in this object: let it hand them back.
    pool_.shutdown_and_drain(static_cast<std::uint8_t>(close_reason::shutdown));
}

bool tcp_message_bus::drained() const noexcept { return pool_.drained(); }

bool tcp_message_bus::start(io_error& error) {
    assert(!started_);
    started_ = true;
    error = io_error::none;
    if (options_.role == bus_role::replica) {
        if (options_.replica_index >= peers_.size()) {
            error = io_error::invalid;
            return false;
        }
        if (!pool_.listen(options_.replica_addresses[options_.replica_index], error)) {
            return false;
        }
    }
    pool_.start(0);  // the first tick starts the connects
    return true;
}

void tcp_message_bus::shutdown() { pool_.shutdown(static_cast<std::uint8_t>(close_reason::shutdown)); }

tcp_message_bus::connection* tcp_message_bus::peer(std::uint8_t replica) const noexcept {
    return static_cast<connection*>(peers_[replica].conn);
}

// ---- accepting -----------------------------------------------------------------------------------

void tcp_message_bus::handle_accept(accept_outcome outcome, socket_handle socket) {
    if (!count_accept(outcome, counters_)) return;  // the pool sets no limit: a failed accept
    connection& conn = make_connection(socket);
    conn.receive_phase = connection::phase::hello;
    conn.target = hello_size;
    conn.message_started_ns = conn.opened_ns();  // the hello must arrive within the idle timeout
    conn.unidentified = true;
    unidentified_connections_++;
    // Clients plus replicas that may connect to us, plus the ones not yet identified.
    const std::size_t limit = options_.client_connections_max + options_.replica_index;
    if (unidentified_connections_ + client_connections_ > limit) {
        close_connection(conn, close_reason::too_many_clients);
    } else {
        start_recv(conn);
    }
}

tcp_message_bus::connection& tcp_message_bus::make_connection(socket_handle socket) {
    return pool_.add<connection>(*this, socket);
}

// ---- connecting and housekeeping ---------------------------------------------------------------

bool tcp_message_bus::should_connect_to(std::uint8_t replica) const noexcept {
    if (options_.role == bus_role::client) return true;
    return options_.replica_index < replica;  // i connects to j iff i < j
}

void tcp_message_bus::handle_tick(std::uint64_t now) {
    // By index: closes never free connections inside a callback.
    for (std::size_t i = 0; i < pool_.connection_objects(); i++) {
        auto& conn = static_cast<connection&>(pool_.at(i));
        check_timeouts(conn, now);
        send_keepalive_if_quiet(conn, now);
    }
    for (std::size_t i = 0; i < peers_.size(); i++) {
        const auto replica = static_cast<std::uint8_t>(i);
        if (should_connect_to(replica) && peers_[i].due(now)) start_connect(replica, now);
    }
}

// Idle: nothing received for the timeout (replicas heartbeat far more often). Slow: a started
// hello or message not finished within the timeout, however steadily its bytes trickle in.
void tcp_message_bus::check_timeouts(connection& conn, std::uint64_t now) {
    if (!conn.open()) return;
    if (conn.connecting()) return;  // the pool times connects out (after idle_timeout_ns)
    const std::uint64_t timeout = options_.idle_timeout_ns;
    // A client bus hears only replies, so silence there is normal; the replica side enforces it.
    const bool idle_applies = options_.role == bus_role::replica;
    if (idle_applies && now - conn.last_receive_ns() > timeout) {
        close_connection(conn, close_reason::idle_timeout);
    } else if (conn.message_started_ns != 0 && now - conn.message_started_ns > timeout) {
        close_connection(conn, close_reason::slow_message);
    }
}

// Our side of the idle rule: the peer closes a connection it heard nothing on, so a healthy
// connection we have nothing to say on gets a keepalive every idle_timeout_ns / 3. Exempt from
// the queue limits; sent only when the queue is empty (a non-empty queue is already traffic).
void tcp_message_bus::send_keepalive_if_quiet(connection& conn, std::uint64_t now) {
    if (!conn.open() || !conn.established || !conn.send_idle()) return;
    if (now - conn.last_send_ns < options_.idle_timeout_ns / 3) return;
    std::array<std::uint8_t, vsr::header_size> frame{};
    const std::uint8_t self = options_.role == bus_role::client ? vsr::address_client : options_.replica_index;
    encode_keepalive(options_.cluster, self, frame);
    conn.append(frame);
    conn.last_send_ns = now;
    counters_.keepalives_sent++;
    conn.flush();
}

void tcp_message_bus::start_connect(std::uint8_t replica, std::uint64_t now) {
    connect_slot& slot = peers_[replica];
    io_error error = io_error::none;
    const socket_handle socket = pool_.open_stream(error);
    if (socket == invalid_socket) {
        slot.lost(now, options_.reconnect_backoff_min_ns, options_.reconnect_backoff_max_ns, random_);
        counters_.closed[static_cast<std::size_t>(close_reason::connect_failed)]++;
        return;
    }
    counters_.connects_started++;
    connection& conn = make_connection(socket);
    conn.outgoing = true;
    conn.peer_kind = connection::kind::replica;
    conn.replica = replica;
    slot.conn = &conn;
    conn.connect(options_.replica_addresses[replica]);
}

void tcp_message_bus::handle_connect(connection& conn, io_error error) {
    if (error != io_error::none) {
        close_connection(conn, close_reason::connect_failed);
        return;
    }
    counters_.connected++;
    peers_[conn.replica].succeeded();
    conn.established = true;
    conn.last_send_ns = conn.last_receive_ns();
    // The hello goes first and is exempt from the queue limits.
    std::array<std::uint8_t, hello_size> frame{};
    const hello h{.role = options_.role == bus_role::client ? hello_role::client : hello_role::replica,
                  .replica = options_.role == bus_role::client ? vsr::address_client : options_.replica_index,
                  .cluster = options_.cluster,
                  .client_id = options_.client_process_id};
    encode_hello(h, frame);
    conn.append(frame);
    conn.flush();
    start_recv(conn);
}

// ---- receiving -----------------------------------------------------------------------------------

void tcp_message_bus::start_recv(connection& conn) {
    if (!conn.open() || conn.receiving()) return;
    // Room for all of the unfinished message (target is at most message_size_max, checked with
    // its header) plus read-ahead.
    assert(conn.target > conn.buffer.unread_size());
    conn.receive(conn.buffer.window(std::max(conn.target, receive_ahead_bytes)));
}

void tcp_message_bus::handle_recv(connection& conn, io_error error, std::size_t bytes) {
    if (error != io_error::none) {
        close_connection(conn, error == io_error::closed ? close_reason::peer_closed : close_reason::io_error);
        return;
    }
    if (conn.message_started_ns == 0) conn.message_started_ns = conn.last_receive_ns();
    conn.buffer.commit(bytes);
    // Every complete hello, header and message received so far, in order.
    while (conn.buffer.unread_size() >= conn.target) {
        bool keep = false;
        switch (conn.receive_phase) {
            case connection::phase::hello: keep = handle_hello(conn); break;
            case connection::phase::header: keep = handle_header(conn); break;
            case connection::phase::body: keep = handle_message(conn); break;
        }
        if (!keep || !conn.open()) return;  // on_message may have closed it
    }
    // Bytes of the next message already here: its clock started with this read.
    if (conn.buffer.unread_size() > 0 && conn.message_started_ns == 0) conn.message_started_ns = conn.last_receive_ns();
    start_recv(conn);
}

bool tcp_message_bus::handle_hello(connection& conn) {
    hello h;
    const hello_error error =
        decode_hello(std::span<const std::uint8_t, hello_size>(conn.current(), hello_size), options_.cluster, h);
    conn.unidentified = false;
    unidentified_connections_--;
    if (error != hello_error::none) {
        counters_.hello_errors[static_cast<std::size_t>(error)]++;
        counters_.handshakes_rejected++;
        close_connection(conn, close_reason::bad_hello);
        return false;
    }
    if (h.role == hello_role::client) {
        if (client_connections_ >= options_.client_connections_max) {
            close_connection(conn, close_reason::too_many_clients);
            return false;
        }
        conn.peer_kind = connection::kind::client;
        conn.client_process_id = h.client_id;
        client_connections_++;
    } else {
        // Only a lower-indexed replica connects to us (see the connection rule).
        if (h.replica >= peers_.size() || h.replica >= options_.replica_index) {
            counters_.hello_implausible++;
            counters_.handshakes_rejected++;
            close_connection(conn, close_reason::bad_hello);
            return false;
        }
        // The peer restarted or its old connection is half-open: the newer one wins.
        if (peer(h.replica) != nullptr) close_connection(*peer(h.replica), close_reason::replaced);
        conn.peer_kind = connection::kind::replica;
        conn.replica = h.replica;
        peers_[h.replica].conn = &conn;
    }
    counters_.handshakes_accepted++;
    conn.established = true;
    conn.last_send_ns = loop_.monotonic_ns();
    conn.receive_phase = connection::phase::header;
    conn.buffer.consume(hello_size);
    conn.target = vsr::header_size;
    conn.message_started_ns = 0;
    return true;
}

// Framing is checked before any body byte is read: a zero or huge length or a wrong cluster
// never makes us wait for (or allocate) a body.
bool tcp_message_bus::handle_header(connection& conn) {
    if (conn.current()[10] == keepalive_command &&
        is_keepalive(std::span<const std::uint8_t, vsr::header_size>(conn.current(), vsr::header_size),
                     options_.cluster)) {
        counters_.keepalives_received++;
        conn.buffer.consume(vsr::header_size);
        conn.target = vsr::header_size;
        conn.message_started_ns = 0;
        return true;
    }
    const vsr::decode_error error = vsr::check_header_prefix(
        std::span<const std::uint8_t>(conn.current(), vsr::header_size), options_.cluster, options_.message_size_max);
    if (error != vsr::decode_error::none) {
        counters_.decode_errors[static_cast<std::size_t>(error)]++;
        close_connection(conn, close_reason::bad_header);
        return false;
    }
    const std::size_t body_size = vsr::load_le32(conn.current() + 20);
    if (body_size == 0) return handle_message(conn);
    conn.receive_phase = connection::phase::body;
    conn.target = vsr::header_size + body_size;  // <= message_size_max, checked above
    return true;
}

bool tcp_message_bus::handle_message(connection& conn) {
    const std::span<const std::uint8_t> message(conn.current(), conn.target);
    vsr::header h;
    const vsr::decode_error error = vsr::decode_message(message, options_.cluster, options_.message_size_max, h);
    if (error != vsr::decode_error::none) {
        counters_.decode_errors[static_cast<std::size_t>(error)]++;
        close_connection(conn, close_reason::bad_message);
        return false;
    }
    const std::uint8_t expected = conn.peer_kind == connection::kind::client ? vsr::address_client : conn.replica;
    if (h.sender != expected) {
        counters_.decode_errors[static_cast<std::size_t>(vsr::decode_error::bad_sender)]++;
        close_connection(conn, close_reason::wrong_sender);
        return false;
    }
    if (conn.peer_kind == connection::kind::client) remember_route(h.client_id, conn);
    conn.receive_phase = connection::phase::header;
    conn.buffer.consume(conn.target);
    conn.target = vsr::header_size;
    conn.message_started_ns = 0;
    counters_.messages_received++;
    // Delivered from the buffer in place; the buffer moves only in start_recv, after this returns.
    if (options_.on_message) options_.on_message(message);
    return true;
}

void tcp_message_bus::remember_route(std::uint64_t client_id, connection& conn) {
    route_clock_++;
    auto found = routes_.find(client_id);
    if (found != routes_.end()) {
        found->second = route{.conn = &conn, .updated = route_clock_};
        return;
    }
    if (routes_.size() >= options_.client_routes_max && !routes_.empty()) {
        // Bounded: forget the least recently heard-from client (its retry re-learns the route).
        auto oldest = routes_.begin();
        for (auto it = routes_.begin(); it != routes_.end(); ++it) {
            if (it->second.updated < oldest->second.updated) oldest = it;
        }
        routes_.erase(oldest);
    }
    routes_.emplace(client_id, route{.conn = &conn, .updated = route_clock_});
}

// ---- sending -------------------------------------------------------------------------------------

void tcp_message_bus::send_to_replica(std::uint8_t replica, std::span<const std::uint8_t> message) {
    const bool self = options_.role == bus_role::replica && replica == options_.replica_index;
    if (replica >= peers_.size() || self) {
        counters_.dropped_invalid++;
        return;
    }
    connection* conn = peer(replica);
    if (conn == nullptr || !conn->open() || !conn->established) {
        counters_.dropped_not_connected++;
        return;
    }
    enqueue(*conn, message);
}

void tcp_message_bus::send_to_client(std::uint64_t client_id, std::span<const std::uint8_t> message) {
    const auto found = routes_.find(client_id);
    if (found == routes_.end() || !found->second.conn->open()) {
        counters_.dropped_unknown_client++;
        return;
    }
    enqueue(*found->second.conn, message);
}

// Policy when full: drop the newest message (this one). VSR retries, and dropping the oldest
// would tear a message the socket may already be sending.
void tcp_message_bus::enqueue(connection& conn, std::span<const std::uint8_t> message) {
    // Our own sender field is checked too: an unset one would otherwise close the connection
    // at the receiver over and over (see LESSONS.md, "Unset sender field").
    const std::uint8_t self = options_.role == bus_role::client ? vsr::address_client : options_.replica_index;
    if (message.size() < vsr::header_size || message.size() > options_.message_size_max || message[11] != self) {
        counters_.dropped_invalid++;
        return;
    }
    if (pool_.stopping()) {
        counters_.dropped_not_connected++;
        return;
    }
    if (conn.queued_messages >= options_.send_queue_messages_max ||
        conn.queued_bytes() + message.size() > options_.send_queue_bytes_max) {
        counters_.dropped_queue_full++;
        return;
    }
    conn.append(message);
    conn.last_send_ns = loop_.monotonic_ns();
    conn.flush();  // one send carries everything queued before it; the rest waits for the next
}

// ---- closing -------------------------------------------------------------------------------------

void tcp_message_bus::close_connection(connection& conn, close_reason reason) {
    conn.close(static_cast<std::uint8_t>(reason));  // calls handle_closed once
}

// Drops every reference to the connection; the pool frees it once the loop has handed back all
// of its completions.
void tcp_message_bus::handle_closed(connection& conn, close_reason reason) {
    conn.established = false;
    counters_.closed[static_cast<std::size_t>(reason)]++;
    if (conn.unidentified) {
        conn.unidentified = false;
        unidentified_connections_--;
    }
    if (conn.peer_kind == connection::kind::client) {
        client_connections_--;
        std::erase_if(routes_, [&](const auto& entry) { return entry.second.conn == &conn; });
    }
    if (conn.peer_kind == connection::kind::replica && peer(conn.replica) == &conn) {
        connect_slot& slot = peers_[conn.replica];
        slot.conn = nullptr;
        if (conn.outgoing) {
            slot.lost(loop_.monotonic_ns(), options_.reconnect_backoff_min_ns, options_.reconnect_backoff_max_ns,
                      random_);
        }
    }
}

tcp_bus_status tcp_message_bus::status() const {
    tcp_bus_status result;
    for (std::size_t i = 0; i < peers_.size(); i++) {
        const connection* conn = peer(static_cast<std::uint8_t>(i));
        if (conn != nullptr && conn->open() && conn->established) {
            result.connected_replicas.push_back(static_cast<std::uint8_t>(i));
        }
    }
    result.client_connections = client_connections_;
    result.connections = pool_.connection_objects();
    return result;
}

}  // namespace platform
