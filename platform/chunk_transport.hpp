// The chunk transport: toastyfs chunk frames (include/toastyfs/chunk_protocol.hpp, a 96-byte
// header and body_size body bytes) over TCP, on a platform::event_loop.
//
// - chunk_server runs on a storage node (its own thread, its own loop). It answers one request
//   at a time per connection: the next frame is read only after the previous reply is fully on
//   the socket, so a connection holds at most one request body and one reply body.
// - chunk_client runs in the proxy: one connection per node, reconnected with jittered backoff.
//   Requests are queued per node (bounded), bodies are shared and never copied, replies are
//   matched to outstanding request ids, and a closed connection hands its outstanding ids back
//   at once (on_disconnect) so the caller fails those requests without waiting for a deadline.
//
// Never trusting input: every frame is checked with decode_frame_header before a body byte is
// read, then with body_matches before it is acted on. A bad header (any frame_error, including a
// body over the limit), a bad body checksum, a frame travelling the wrong way (a request at the
// client, a reply at the server) or a reply that matches no outstanding request closes that
// connection and bumps a counter. Nothing asserts on network input. Receive buffers grow with
// the bytes that actually arrive, not with what a header announces.
//
// Lifetime (as tcp_message_bus): the loop holds completions that live inside these objects while
// operations are pending. Destroy them outside loop callbacks: the destructor shuts down and runs
// the loop until it has handed back every completion. No callback runs after shutdown().
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "platform/event_loop.hpp"
#include "platform/stream_connection.hpp"
#include "toastyfs/chunk_protocol.hpp"
#include "toastyfs/concepts.hpp"
#include "vsr/random.hpp"

namespace platform {

enum class chunk_close_reason : std::uint8_t {
    peer_closed,       // end of stream (also a truncated frame followed by close)
    io_error,          // reset and other socket errors
    connect_failed,    // client: refused, unreachable, or connect_timeout_ns passed
    idle_timeout,      // server: nothing received for idle_timeout_ns between requests
    stalled,           // client: requests outstanding, nothing received for stall_timeout_ns
    slow_frame,        // a started incoming frame did not complete within frame_timeout_ns
    slow_send,         // an outgoing frame was not fully sent within frame_timeout_ns
    bad_header,        // decode_frame_header failed (see the frame_errors counters)
    bad_body,          // body checksum mismatch
    wrong_direction,   // a reply at the server, or a request at the client
    unexpected_reply,  // client: reply id not outstanding here, or its kind differs from the request's
    handler_failed,    // server: the handler threw
    shutdown,
};
inline constexpr std::size_t chunk_close_reason_count = 13;
const char* to_string(chunk_close_reason reason) noexcept;

using chunk_close_counts = std::array<std::uint64_t, chunk_close_reason_count>;
using frame_error_counts = std::array<std::uint64_t, toastyfs::frame_error_count>;

// ---- server ------------------------------------------------------------------------------------

/// Called once per well-formed request. `reply` arrives pre-filled (kind, reply, status ok,
/// cluster, request_id and sha256 of the request) and `reply_body` empty; the server overwrites
/// kind, reply, request_id and cluster afterwards, and computes body_size and body_checksum. The
/// body span is valid only during the call. Must not destroy the server.
using chunk_handler = std::function<void(const toastyfs::frame_header& request, std::span<const std::uint8_t> body,
                                         toastyfs::frame_header& reply, std::vector<std::uint8_t>& reply_body)>;

struct chunk_server_options {
    std::uint32_t cluster = 0;
    /// Used when listen_socket is invalid_socket.
    socket_address listen_address{};
    /// An already-listening socket (from event_loop::listen) the server takes over, so tests can
    /// listen on port 0. The server closes it on shutdown.
    socket_handle listen_socket = invalid_socket;
    int listen_backlog = 128;
    /// Largest request body (the largest chunk). A header announcing more closes the connection
    /// (bad_header, frame_errors[too_large]) before any body byte is read.
    std::uint64_t body_size_max = 64u << 20;
    /// Largest reply body the handler may produce; a larger one is replaced by an empty reply
    /// with status too_large (counted in replies_too_large).
    std::uint64_t reply_body_size_max = 64u << 20;
    /// Open connections. Beyond it a new connection is accepted and closed at once (refused).
    std::size_t connections_max = 64;
    /// Between requests, a connection that receives nothing for this long is closed.
    std::uint64_t idle_timeout_ns = 300'000'000'000;
    /// A frame whose first byte arrived must complete within this (slowloris), and a reply must
    /// be fully sent within this (a peer that stops reading); otherwise the connection closes.
    std::uint64_t frame_timeout_ns = 60'000'000'000;
    /// After a frame, a receive or reply buffer with more capacity than this is freed, so idle
    /// connections hold little memory.
    std::size_t buffer_keep_bytes_max = 1u << 20;
    std::uint64_t tick_ns = 100'000'000;  // housekeeping period (timeouts, paused accepts)
    chunk_handler handler;
};

struct chunk_server_counters {
    std::uint64_t accepted = 0;  // connections taken into service
    std::uint64_t refused = 0;   // accepted and closed at once: connections_max reached
    std::uint64_t accept_errors = 0;
    std::uint64_t requests = 0;  // well-formed requests handed to the handler
    std::uint64_t replies = 0;   // replies fully sent
    std::uint64_t replies_too_large = 0;
    std::uint64_t bytes_received = 0;
    std::uint64_t bytes_sent = 0;
    frame_error_counts frame_errors{};  // indexed by toastyfs::frame_error
    chunk_close_counts closed{};        // indexed by chunk_close_reason

    std::uint64_t closed_by(chunk_close_reason reason) const noexcept {
        return closed[static_cast<std::size_t>(reason)];
    }
    std::uint64_t frame_errors_of(toastyfs::frame_error error) const noexcept {
        return frame_errors[static_cast<std::size_t>(error)];
    }
};

struct chunk_server_status {
    std::size_t connections = 0;         // open
    std::size_t connection_objects = 0;  // including closed ones the loop has not handed back yet
    std::size_t buffer_bytes = 0;        // capacity of every receive and reply buffer
};

class chunk_server {
public:
    chunk_server(event_loop& loop, chunk_server_options options);
    ~chunk_server();
    chunk_server(const chunk_server&) = delete;
    chunk_server& operator=(const chunk_server&) = delete;

    /// Listens (unless given a socket) and starts accepting. False with `error` set on failure.
    bool start(io_error& error);
    /// Closes the listener and every connection. Idempotent.
    void shutdown();
    /// True once the loop has handed back every completion of this server.
    bool drained() const noexcept;
    /// The listening port (useful after listening on port 0), or 0.
    std::uint16_t port() const;

    const chunk_server_counters& counters() const noexcept { return counters_; }
    chunk_server_status status() const;

private:
    struct connection;

    void handle_accept(accept_outcome outcome, socket_handle socket);
    void handle_tick(std::uint64_t now);
    void handle_recv(connection& conn, io_error error, std::size_t bytes);
    void handle_sent(connection& conn, io_error error, std::size_t bytes, std::size_t frames);
    bool handle_header(connection& conn);
    void handle_request(connection& conn);
    void finish_reply(connection& conn);
    void start_recv(connection& conn);
    void check_timeouts(connection& conn, std::uint64_t now);
    void close_connection(connection& conn, chunk_close_reason reason);

    event_loop& loop_;
    chunk_server_options options_;
    chunk_server_counters counters_;
    connection_pool pool_;
    bool started_ = false;
};

// ---- client ------------------------------------------------------------------------------------

struct chunk_client_options {
    std::uint32_t cluster = 0;
    /// Index = node. At most toastyfs::nodes_max entries.
    std::vector<socket_address> node_addresses;
    /// Largest reply body. A header announcing more closes the connection (bad_header,
    /// frame_errors[too_large]) before any body byte is read.
    std::uint64_t body_size_max = 64u << 20;
    /// Per node: body bytes accepted by send() and not yet fully on the socket. A send that
    /// would exceed it returns false (refused_queue_full). Headers are bounded by
    /// queue_frames_max.
    std::size_t queue_bytes_max = 64u << 20;
    /// Per node: frames accepted by send() and not yet fully on the socket. Beyond it send()
    /// returns false (refused_queue_full).
    std::size_t queue_frames_max = 256;
    /// Per node: requests accepted by send() and not yet answered (queued or sent). Beyond it
    /// send() returns false (refused_queue_full).
    std::size_t outstanding_max = 1024;
    std::uint64_t connect_timeout_ns = 5'000'000'000;
    /// A reply whose first byte arrived must complete within this, and a request must be fully
    /// sent within this (a node that stopped reading); otherwise the connection closes.
    std::uint64_t frame_timeout_ns = 60'000'000'000;
    /// With requests outstanding, a connection that receives nothing for this long is closed (a
    /// hung node or a half-open path). Per-request deadlines are the caller's job.
    std::uint64_t stall_timeout_ns = 60'000'000'000;
    std::uint64_t reconnect_backoff_min_ns = 50'000'000;
    std::uint64_t reconnect_backoff_max_ns = 2'000'000'000;
    std::uint64_t tick_ns = 10'000'000;  // housekeeping period (timeouts, reconnects)
    std::uint64_t random_seed = 0;       // backoff jitter

    // Callbacks run from loop callbacks only: never inside send(), shutdown() or the destructor.
    // They may call send() and shutdown(); they must not destroy the client.

    /// A well-formed reply to an outstanding request on that node's current connection.
    std::function<void(std::uint8_t node, const toastyfs::frame_header& reply, std::vector<std::uint8_t>&& body)>
        on_reply;
    /// An established connection closed for any reason other than shutdown(). Lists, in send
    /// order, every request accepted by send() on it and not answered: none will be.
    std::function<void(std::uint8_t node, std::vector<std::uint64_t> outstanding_request_ids)> on_disconnect;
    /// A connection to the node is established; send() to it may now succeed.
    std::function<void(std::uint8_t node)> on_connect;
};

struct chunk_client_counters {
    std::uint64_t connects_started = 0;
    std::uint64_t connects = 0;          // established
    std::uint64_t connect_failures = 0;  // equals closed_by(connect_failed)
    std::uint64_t refused_not_connected = 0;
    std::uint64_t refused_queue_full = 0;  // queue_bytes_max, queue_frames_max or outstanding_max
    std::uint64_t refused_invalid = 0;     // unknown node, bad kind, request id already outstanding
    std::uint64_t requests_sent = 0;       // fully on the socket
    std::uint64_t replies = 0;             // delivered through on_reply
    std::uint64_t bytes_received = 0;
    std::uint64_t bytes_sent = 0;
    frame_error_counts frame_errors{};
    chunk_close_counts closed{};

    std::uint64_t closed_by(chunk_close_reason reason) const noexcept {
        return closed[static_cast<std::size_t>(reason)];
    }
    std::uint64_t frame_errors_of(toastyfs::frame_error error) const noexcept {
        return frame_errors[static_cast<std::size_t>(error)];
    }
};

struct chunk_client_node_status {
    bool connected = false;
    std::size_t queued_bytes = 0;  // body bytes not yet on the socket
    std::size_t queued_frames = 0;
    std::size_t outstanding = 0;  // accepted by send(), not answered
};

class chunk_client {
public:
    chunk_client(event_loop& loop, chunk_client_options options);
    ~chunk_client();
    chunk_client(const chunk_client&) = delete;
    chunk_client& operator=(const chunk_client&) = delete;

    /// Starts the housekeeping timer; the first tick connects to every node.
    void start();
    /// Closes every connection and stops reconnecting. No callback runs afterwards. Idempotent.
    void shutdown();
    /// True once the loop has handed back every completion of this client.
    bool drained() const noexcept;

    /// Queues a request to `node`. The client sets reply = false, status = ok, the cluster and
    /// the body size/checksum; the caller sets kind, request_id (unique among the node's
    /// outstanding requests), sha256, token and argument. `body` may be null (empty); it is
    /// shared, never copied, and kept until its bytes are on the socket. Returns false at once,
    /// and never calls back for it, if the node is not connected, its queue is full or the
    /// request is invalid.
    bool send(std::uint8_t node, const toastyfs::frame_header& header,
              std::shared_ptr<const std::vector<std::uint8_t>> body);
    bool connected(std::uint8_t node) const noexcept;

    const chunk_client_counters& counters() const noexcept { return counters_; }
    /// Index = node.
    std::vector<chunk_client_node_status> status() const;

private:
    struct connection;

    void handle_tick(std::uint64_t now);
    void handle_connect(connection& conn, io_error error);
    void handle_recv(connection& conn, io_error error, std::size_t bytes);
    void handle_sent(connection& conn, io_error error, std::size_t bytes, std::size_t frames);
    void handle_closed(connection& conn, chunk_close_reason reason);
    bool handle_header(connection& conn);
    void handle_reply(connection& conn);
    void start_connect(std::uint8_t node, std::uint64_t now);
    void start_recv(connection& conn);
    void check_timeouts(connection& conn, std::uint64_t now);
    void close_connection(connection& conn, chunk_close_reason reason);
    connection* node_connection(std::uint8_t node) const noexcept;

    event_loop& loop_;
    chunk_client_options options_;
    vsr::xoshiro256 random_;
    chunk_client_counters counters_;
    connection_pool pool_;
    bool started_ = false;
    std::vector<connect_slot> nodes_;
};

}  // namespace platform

static_assert(toastyfs::chunk_transport<platform::chunk_client>);
