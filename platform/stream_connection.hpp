// The connection layer: the socket plumbing shared by every stream protocol in platform/ (the
// TCP message bus, the chunk transport, the HTTP server). A protocol keeps only its framing and
// its rules; everything below is written once here:
//
// - stream_connection: one TCP stream. Owns the socket, its completions (connect, recv, send and
//   a deferred "post"), a send queue of owned and borrowed byte ranges, and the clocks the idle
//   and slow-peer rules read. A protocol derives from it and handles the events (on_received,
//   on_sent...), which always run from loop callbacks, never inside the call that caused them.
// - connection_pool: owns the connections, the housekeeping tick and the listener (accept loop,
//   connection limit, pause and retry when accept fails, e.g. EMFILE), times out connects, and
//   shuts down and drains for the protocols' destructors. A closed connection is
//   freed only once the loop has handed back all of its completions ("released"), and only when
//   no callback of the pool is on the stack, so nothing the loop or a caller holds dangles.
// - connect_slot: one outgoing target with jittered exponential backoff (backoff_delay_ns).
// - receive_buffer: a read-ahead buffer (compacts, grows to a bound, shrinks back) for protocols
//   that parse many frames per recv.
//
// Later layers fit under the protocols without touching them: TLS belongs between the socket
// bytes and the bytes receive()/queue_*() see (inside stream_connection), an IOCP backend is a
// different event_loop behind the same completions.
//
// Bounds: the pool holds at most connections_max open connections (a further accepted socket
// is closed at once and reported as refused). The send queue does not refuse: each protocol
// checks its own limit before queueing (and says what happens at it); queued_bytes() and
// queued_items() are there for that. A receive window is the protocol's buffer; the layer reads
// into exactly the span it is given.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "platform/event_loop.hpp"
#include "vsr/random.hpp"

namespace platform {

class connection_pool;

/// Jittered exponential backoff: the ceiling is min(max, min * 2^attempt) and the delay is
/// uniform in [max(min, ceiling / 2), ceiling]. attempt 0 gives exactly `min`.
std::uint64_t backoff_delay_ns(std::uint32_t attempt, std::uint64_t min_ns, std::uint64_t max_ns,
                               vsr::xoshiro256& random) noexcept;

struct send_queue_options {
    /// Owned bytes queued behind the send in flight join one buffer up to this size, so one send
    /// carries many small frames (the bus sets it to its whole queue bound).
    std::size_t coalesce_bytes_max = 64 * 1024;
    /// Largest single send; the slow-peer clock (send_started_ns) restarts with each piece.
    std::size_t send_piece_bytes_max = SIZE_MAX;
    /// A finished owned buffer is kept for reuse unless its capacity exceeds this.
    std::size_t keep_bytes_max = 1 << 20;
};

/// A receive buffer that reads ahead: bytes [begin, end) are received and not yet consumed.
/// Protocols that parse many small frames per recv (the bus, HTTP) read into window() and parse
/// unread(); the chunk transport reads exact frames into its own buffers instead, so a chunk body
/// lands in the vector handed to the handler or to on_reply, never copied (ARCHITECTURE.md).
class receive_buffer {
public:
    std::span<const std::uint8_t> unread() const noexcept { return {bytes_.data() + begin_, end_ - begin_}; }
    std::size_t unread_size() const noexcept { return end_ - begin_; }
    /// Start of the storage: offsets into unread() stay valid until the next window().
    const std::uint8_t* data() const noexcept { return bytes_.data(); }
    std::size_t capacity() const noexcept { return bytes_.capacity(); }
    void consume(std::size_t bytes) noexcept { begin_ += std::min(bytes, end_ - begin_); }
    /// `bytes` arrived in the last window().
    void commit(std::size_t bytes) noexcept { end_ += std::min(bytes, bytes_.size() - end_); }
    /// Moves the unread bytes to the front and grows the storage to at least size_bytes (exactly,
    /// so capacity() is the bound a caller set); returns the free space behind the unread bytes,
    /// empty when they fill the storage.
    std::span<std::uint8_t> window(std::size_t size_bytes);
    /// Frees storage beyond size_bytes when the unread bytes fit in it.
    void shrink_to(std::size_t size_bytes);

private:
    std::vector<std::uint8_t> bytes_;
    std::size_t begin_ = 0;
    std::size_t end_ = 0;
};

class stream_connection {
public:
    stream_connection(connection_pool& pool, socket_handle socket, send_queue_options send_options = {});
    virtual ~stream_connection() = default;
    stream_connection(const stream_connection&) = delete;
    stream_connection& operator=(const stream_connection&) = delete;

    bool open() const noexcept { return open_; }
    bool connecting() const noexcept { return connect_pending_; }
    bool receiving() const noexcept { return recv_pending_; }
    bool sending() const noexcept { return send_pending_; }
    /// Open is false and the loop has handed back every completion: the pool may free it.
    bool released() const noexcept {
        return !open_ && !connect_pending_ && !recv_pending_ && !send_pending_ && !post_pending_;
    }
    std::uint64_t opened_ns() const noexcept { return opened_ns_; }
    std::uint64_t last_receive_ns() const noexcept { return last_receive_ns_; }
    /// When the send in flight (one piece) was started.
    std::uint64_t send_started_ns() const noexcept { return send_started_ns_; }
    std::uint8_t close_reason_code() const noexcept { return close_reason_; }
    connection_pool& pool() const noexcept { return pool_; }
    std::uint64_t now_ns() const;

    // ---- operations; each reports back through the events below, from the loop ----
    void connect(const socket_address& address);
    /// One recv into `window` (caller-owned, alive and unmoved until on_received). Ignored when
    /// closed or a recv is pending.
    void receive(std::span<std::uint8_t> window);
    /// Queues a copy of `bytes` (joined with the owned bytes before it when it fits).
    void queue_copy(std::span<const std::uint8_t> bytes, std::size_t frames = 0);
    /// Queues bytes the caller keeps alive (with `hold`, or by owning them for the connection's
    /// lifetime) until they are sent or the connection is released. Never copied.
    void queue_borrowed(std::span<const std::uint8_t> bytes, std::shared_ptr<const void> hold, std::size_t frames = 0);
    /// Counts `frames` as done once every byte queued before them is sent (on_sent reports them).
    void queue_mark(std::size_t frames);
    /// Starts sending the queue if no send is in flight.
    void flush();
    std::size_t queued_bytes() const noexcept { return queued_bytes_; }  // not yet sent
    std::size_t queued_items() const noexcept { return queue_.size(); }
    bool send_idle() const noexcept { return queue_.empty() && !send_pending_; }
    /// on_posted runs from the loop soon (at most one pending): defers work out of a caller's call.
    void post();
    /// Closes the socket (the loop cancels its operations, whose callbacks still arrive) and
    /// calls on_closed. Idempotent: later closes are ignored. Queued bytes are never sent.
    void close(std::uint8_t reason);

protected:
    virtual void on_connected(io_error error) { (void)error; }
    /// bytes >= 1 with io_error::none, or the error (closed: end of stream). Not called once closed.
    virtual void on_received(io_error error, std::size_t bytes) = 0;
    /// `frames` marks became done with these `bytes` (error: the send failed, nothing more goes).
    /// Not called once closed.
    virtual void on_sent(io_error error, std::size_t bytes, std::size_t frames) {
        (void)error, (void)bytes, (void)frames;
    }
    virtual void on_posted() {}
    /// Once, from close(): drop references to this connection. Its memory lives until released.
    virtual void on_closed(std::uint8_t reason) { (void)reason; }

private:
    struct send_item {
        std::vector<std::uint8_t> owned;
        std::span<const std::uint8_t> borrowed;
        std::shared_ptr<const void> hold;
        std::size_t offset = 0;  // bytes already sent
        std::size_t frames = 0;  // marks done once this item is sent

        std::span<const std::uint8_t> bytes() const noexcept { return borrowed.empty() ? owned : borrowed; }
    };

    static void on_connect_completion(completion& c);
    static void on_recv_completion(completion& c);
    static void on_send_completion(completion& c);
    static void on_post_completion(completion& c);
    void handle_send();
    void finish_front();

    connection_pool& pool_;
    socket_handle socket_;
    send_queue_options send_options_;
    bool open_ = true;
    bool connect_pending_ = false;
    bool recv_pending_ = false;
    bool send_pending_ = false;
    bool post_pending_ = false;
    std::uint8_t close_reason_ = 0;
    std::uint64_t opened_ns_ = 0;
    std::uint64_t last_receive_ns_ = 0;
    std::uint64_t send_started_ns_ = 0;
    completion connect_completion_;
    completion recv_completion_;
    completion send_completion_;
    completion post_completion_;
    std::deque<send_item> queue_;  // front is in flight while send_pending_
    std::size_t queued_bytes_ = 0;
    std::size_t frames_done_unreported_ = 0;  // marks done with nothing to send, reported by post
    std::vector<std::uint8_t> spare_;         // a finished owned buffer, reused for the next one
};

/// What happened to one accepted socket.
enum class accept_outcome : std::uint8_t {
    accepted,  // handed to on_accepted
    refused,   // connections_max reached: closed at once
    failed,    // accept failed (EMFILE...): accepting pauses until the next tick
};

struct connection_pool_options {
    std::uint64_t tick_ns = 10'000'000;      // housekeeping period
    std::size_t connections_max = SIZE_MAX;  // open connections; more accepted ones are refused
    int listen_backlog = 128;
    /// Already listening (the pool owns it from construction and closes it even if never started),
    /// or invalid_socket: listen() opens one.
    socket_handle listen_socket = invalid_socket;
    /// A connect() still pending this long after the connection opened is closed, from the tick
    /// (before on_tick), with connect_timeout_reason.
    std::uint64_t connect_timeout_ns = UINT64_MAX;
    std::uint8_t connect_timeout_reason = 0;
};

/// Counts one accept outcome into a protocol's counters (accepted, refused when it has that
/// field, else accept_errors, which always takes failures); true when the socket was accepted.
template <typename counters_type>
bool count_accept(accept_outcome outcome, counters_type& counters) noexcept {
    if (outcome == accept_outcome::accepted) {
        counters.accepted++;
        return true;
    }
    if constexpr (requires { counters.refused; }) {
        if (outcome == accept_outcome::refused) {
            counters.refused++;
            return false;
        }
    }
    counters.accept_errors++;
    return false;
}

class connection_pool {
public:
    /// on_tick(now_ns): housekeeping (timeouts, reconnects). on_accept: an accepted socket
    /// (outcome accepted: the callee makes a connection with add(), or closes the socket) or a
    /// refusal or failure (socket already closed, for counting).
    connection_pool(event_loop& loop, connection_pool_options options);
    ~connection_pool();
    connection_pool(const connection_pool&) = delete;
    connection_pool& operator=(const connection_pool&) = delete;

    std::function<void(std::uint64_t now_ns)> on_tick;
    std::function<void(accept_outcome outcome, socket_handle socket)> on_accept;

    event_loop& loop() const noexcept { return loop_; }
    /// Listens on the options' listen_socket, or on `address` when that is invalid_socket.
    bool listen(const socket_address& address, io_error& error);
    std::uint16_t port() const;
    /// Starts the tick (first after first_delay_ns) and accepting (if listening).
    void start(std::uint64_t first_delay_ns);
    /// Stops accepting and ticking and closes every connection with `reason`. Idempotent.
    void shutdown(std::uint8_t reason);
    bool stopping() const noexcept { return stopping_; }
    /// Every completion of the pool and of its connections is back, and every connection freed.
    bool drained() const noexcept;
    /// Runs the loop until drained (bounded); for destructors, outside loop callbacks.
    void drain();
    /// shutdown(reason), then drain(): what a protocol's destructor does first, while the
    /// connections' on_closed can still reach the protocol's members.
    void shutdown_and_drain(std::uint8_t reason);

    template <typename connection_type, typename... arguments>
    connection_type& add(arguments&&... args) {
        auto owned = std::make_unique<connection_type>(std::forward<arguments>(args)...);
        connection_type& conn = *owned;
        connections_.push_back(std::move(owned));
        open_connections_++;
        return conn;
    }
    /// Opens a socket for connect(); invalid_socket (with `error`) when none can be had.
    socket_handle open_stream(io_error& error) { return loop_.open_stream(error); }

    std::size_t open_connections() const noexcept { return open_connections_; }
    std::size_t connection_objects() const noexcept { return connections_.size(); }
    /// By index (stable during a callback: nothing is freed while one is on the stack).
    stream_connection& at(std::size_t i) const noexcept { return *connections_[i]; }

    /// Held by every loop callback of the pool and its connections: connections are freed only
    /// when the outermost one ends.
    struct callback_scope {
        explicit callback_scope(connection_pool& p) : pool(p) { ++pool.callback_depth_; }
        ~callback_scope() {
            if (--pool.callback_depth_ == 0) pool.sweep();
        }
        callback_scope(const callback_scope&) = delete;
        callback_scope& operator=(const callback_scope&) = delete;
        connection_pool& pool;
    };

private:
    friend class stream_connection;
    static void on_accept_completion(completion& c);
    static void on_tick_completion(completion& c);
    void accept_next();
    void close_overdue_connects(std::uint64_t now);
    void sweep();

    event_loop& loop_;
    connection_pool_options options_;
    socket_handle listener_ = invalid_socket;
    std::unique_ptr<completion> accept_completion_;
    std::unique_ptr<completion> tick_completion_;
    bool accept_pending_ = false;
    bool accept_paused_ = false;
    bool tick_pending_ = false;
    bool stopping_ = false;
    int callback_depth_ = 0;
    std::vector<std::unique_ptr<stream_connection>> connections_;
    std::size_t open_connections_ = 0;
    std::size_t closed_unreleased_ = 0;
};

/// One outgoing target: at most one connection at a time, retried with jittered backoff after a
/// failure or close. The protocol calls due() from its tick, opened() when it made a connection,
/// succeeded() when it is established and lost() when it closes.
struct connect_slot {
    stream_connection* conn = nullptr;
    std::uint32_t attempts = 0;
    std::uint64_t next_connect_ns = 0;

    bool due(std::uint64_t now_ns) const noexcept { return conn == nullptr && now_ns >= next_connect_ns; }
    void succeeded() noexcept { attempts = 0; }
    void lost(std::uint64_t now_ns, std::uint64_t min_ns, std::uint64_t max_ns, vsr::xoshiro256& random) noexcept {
        conn = nullptr;
        attempts++;
        next_connect_ns = now_ns + backoff_delay_ns(attempts, min_ns, max_ns, random);
    }
};

}  // namespace platform
