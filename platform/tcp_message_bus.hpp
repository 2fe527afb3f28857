// A vsr::message_bus over TCP, running on a platform::event_loop.
//
// Connection rule: one TCP connection per replica pair; replica i connects to replica j iff
// i < j (j accepts). Clients connect to every replica. The connecting side first sends a
// fixed-size hello frame (below) naming itself; the acceptor checks it before reading anything
// else. After the hello, the stream is a sequence of vsr messages framed by their header:
// exactly header_size bytes, vsr::check_header_prefix (before any body byte is read), then
// body_size bytes, then vsr::decode_message (checksum) and a check that the header's sender is
// the identity the hello claimed. Only then is the message delivered through on_message.
//
// Every failure on network input (garbage, wrong cluster, bad length or checksum, a lying
// sender, idle or slow peers) closes that connection and bumps a counter; nothing asserts on
// what arrives from the network. See ARCHITECTURE.md, "TCP message bus".
//
// Lifetime: the bus owns completions that the loop holds while operations are pending. Destroy
// the bus outside loop callbacks: the destructor closes everything and runs the loop until the
// loop has handed back every completion of this bus.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <span>
#include <unordered_map>
#include <vector>

#include "platform/event_loop.hpp"
#include "platform/stream_connection.hpp"  // also backoff_delay_ns
#include "vsr/message_bus.hpp"
#include "vsr/random.hpp"
#include "vsr/wire.hpp"

namespace platform {

// ---- hello frame -------------------------------------------------------------------------------
//
//   offset size field
//        0    4 magic        hello_magic ("TFSH" little-endian)
//        4    2 version      hello_version
//        6    1 role         hello_role
//        7    1 replica      replica index, or vsr::address_client for a client
//        8    4 cluster      cluster id
//       12    4 reserved     must be 0
//       16    8 client_id    the client process id (0 for a replica)
//       24    8 checksum     vsr::checksum over bytes [0, 24), seed hello_checksum_seed

inline constexpr std::size_t hello_size = 32;
inline constexpr std::uint32_t hello_magic = 0x48534654;  // "TFSH"
inline constexpr std::uint16_t hello_version = 1;
inline constexpr std::uint64_t hello_checksum_seed = 0x68656c6c6f;  // "hello"

enum class hello_role : std::uint8_t { replica = 1, client = 2 };

struct hello {
    hello_role role = hello_role::replica;
    std::uint8_t replica = vsr::address_client;
    std::uint32_t cluster = 0;
    std::uint64_t client_id = 0;
};

enum class hello_error : std::uint8_t {
    none,
    bad_magic,
    bad_version,
    bad_checksum,
    wrong_cluster,
    bad_reserved,
    bad_role,  // unknown role, or a replica index that does not fit the role
};
inline constexpr std::size_t hello_error_count = 7;

void encode_hello(const hello& h, std::span<std::uint8_t, hello_size> out) noexcept;
/// Checks the frame on its own (magic, version, checksum, cluster, role/index shape). Whether the
/// identity is plausible for this acceptor is the bus's decision.
hello_error decode_hello(std::span<const std::uint8_t, hello_size> bytes, std::uint32_t cluster, hello& out) noexcept;

// ---- keepalive frame -----------------------------------------------------------------------------
//
// A connection that has sent nothing for idle_timeout_ns / 3 sends a keepalive, so an idle but
// healthy peer (a backup on an idle cluster, a backup-backup link) is never closed by the other
// side's idle timeout. The frame is a vsr header of header_size bytes with command 0
// (vsr::command::none, never a valid message), body size 0, the sender's identity, the cluster,
// everything else zero, sealed with the usual checksum. The receiver counts and drops it; a frame
// with command 0 that is not exactly this closes the connection as a bad header.

inline constexpr std::uint8_t keepalive_command = 0;

void encode_keepalive(std::uint32_t cluster, std::uint8_t sender,
                      std::span<std::uint8_t, vsr::header_size> out) noexcept;
/// True if the header-sized bytes are a well-formed keepalive for this cluster.
bool is_keepalive(std::span<const std::uint8_t, vsr::header_size> bytes, std::uint32_t cluster) noexcept;

// ---- the bus -----------------------------------------------------------------------------------

enum class bus_role : std::uint8_t { replica, client };

struct tcp_bus_options {
    std::uint32_t cluster = 0;
    std::vector<socket_address> replica_addresses;  // index = replica index
    bus_role role = bus_role::replica;
    std::uint8_t replica_index = 0;       // role replica only
    std::uint64_t client_process_id = 0;  // role client only: sent in the hello
    /// Role replica: an already-listening socket (from event_loop::listen) the bus takes over,
    /// so tests can listen on port 0 and tell peers the real port. invalid_socket: the bus
    /// listens on replica_addresses[replica_index] itself.
    socket_handle listen_socket = invalid_socket;
    std::size_t message_size_max = 1 << 20;
    std::size_t send_queue_messages_max = 256;
    std::size_t send_queue_bytes_max = 8 << 20;
    std::size_t client_connections_max = 1024;
    std::size_t client_routes_max = 4096;  // client_id -> connection entries
    /// A connection with nothing received for this long is closed (replica role). Every
    /// established connection sends a keepalive after idle_timeout_ns / 3 without sending.
    std::uint64_t idle_timeout_ns = 5'000'000'000;
    std::uint64_t reconnect_backoff_min_ns = 50'000'000;
    std::uint64_t reconnect_backoff_max_ns = 2'000'000'000;
    std::uint64_t tick_ns = 10'000'000;  // housekeeping period (timeouts, reconnects)
    std::uint64_t random_seed = 0;       // backoff jitter
    /// Called from loop callbacks only, never from inside send_*. The span (a whole, checked
    /// message) is valid only during the call. It may call send_*; it must not destroy the bus.
    std::function<void(std::span<const std::uint8_t>)> on_message;
};

enum class close_reason : std::uint8_t {
    peer_closed,  // end of stream
    io_error,     // reset, refused, other socket errors
    connect_failed,
    idle_timeout,  // no bytes received for idle_timeout_ns
    slow_message,  // a started hello or message took longer than idle_timeout_ns
    bad_hello,
    bad_header,    // check_header_prefix failed: garbage, zero/huge length, wrong cluster
    bad_message,   // decode_message failed: checksum or size
    wrong_sender,  // header sender differs from the hello identity
    too_many_clients,
    replaced,  // a newer connection from the same replica took over
    shutdown,
};
inline constexpr std::size_t close_reason_count = 12;
const char* to_string(close_reason reason) noexcept;

struct tcp_bus_counters {
    std::uint64_t accepted = 0;
    std::uint64_t accept_errors = 0;
    std::uint64_t connects_started = 0;
    std::uint64_t connected = 0;  // outgoing connections established
    std::uint64_t handshakes_accepted = 0;
    std::uint64_t handshakes_rejected = 0;
    std::array<std::uint64_t, close_reason_count> closed{};  // indexed by close_reason
    std::array<std::uint64_t, vsr::decode_error_count> decode_errors{};
    std::array<std::uint64_t, hello_error_count> hello_errors{};
    std::uint64_t hello_implausible = 0;  // well-formed hello with an identity we cannot accept
    std::uint64_t messages_received = 0;
    std::uint64_t messages_sent = 0;
    std::uint64_t dropped_not_connected = 0;
    std::uint64_t dropped_queue_full = 0;
    std::uint64_t dropped_unknown_client = 0;
    std::uint64_t dropped_invalid = 0;  // bad index, to self, bad size, sender not us
    std::uint64_t keepalives_sent = 0;
    std::uint64_t keepalives_received = 0;

    std::uint64_t closed_by(close_reason reason) const noexcept { return closed[static_cast<std::size_t>(reason)]; }
    std::uint64_t closed_total() const noexcept;
};

struct tcp_bus_status {
    std::vector<std::uint8_t> connected_replicas;  // established, ascending
    std::size_t client_connections = 0;
    std::size_t connections = 0;  // every connection object, including ones being released
};

class tcp_message_bus {
public:
    tcp_message_bus(event_loop& loop, tcp_bus_options options);
    ~tcp_message_bus();
    tcp_message_bus(const tcp_message_bus&) = delete;
    tcp_message_bus& operator=(const tcp_message_bus&) = delete;

    /// Starts listening (role replica), the housekeeping timer and the first connects.
    /// Returns false with `error` set if the listener cannot be opened.
    bool start(io_error& error);
    /// Closes every connection and the listener and stops reconnecting. Idempotent.
    void shutdown();
    /// True once the loop has handed back every completion of this bus (after shutdown).
    bool drained() const noexcept;

    void send_to_replica(std::uint8_t replica, std::span<const std::uint8_t> message);
    void send_to_client(std::uint64_t client_id, std::span<const std::uint8_t> message);

    const tcp_bus_counters& counters() const noexcept { return counters_; }
    tcp_bus_status status() const;

private:
    struct connection;
    struct route {
        connection* conn = nullptr;
        std::uint64_t updated = 0;  // route_clock_ when last set: evict the oldest when full
    };

    void handle_accept(accept_outcome outcome, socket_handle socket);
    void handle_tick(std::uint64_t now);
    void handle_connect(connection& conn, io_error error);
    void handle_recv(connection& conn, io_error error, std::size_t bytes);
    bool handle_hello(connection& conn);
    bool handle_header(connection& conn);
    bool handle_message(connection& conn);
    void handle_closed(connection& conn, close_reason reason);

    void start_connect(std::uint8_t replica, std::uint64_t now);
    void start_recv(connection& conn);
    void enqueue(connection& conn, std::span<const std::uint8_t> message);
    void check_timeouts(connection& conn, std::uint64_t now);
    void send_keepalive_if_quiet(connection& conn, std::uint64_t now);
    bool should_connect_to(std::uint8_t replica) const noexcept;
    void remember_route(std::uint64_t client_id, connection& conn);
    void close_connection(connection& conn, close_reason reason);
    connection& make_connection(socket_handle socket);
    connection* peer(std::uint8_t replica) const noexcept;

    event_loop& loop_;
    tcp_bus_options options_;
    vsr::xoshiro256 random_;
    tcp_bus_counters counters_;
    connection_pool pool_;
    bool started_ = false;
    std::vector<connect_slot> peers_;                  // index = replica index
    std::unordered_map<std::uint64_t, route> routes_;  // client_id -> connection
    std::uint64_t route_clock_ = 0;
    std::size_t client_connections_ = 0;
    std::size_t unidentified_connections_ = 0;  // accepted, hello not yet checked
};

static_assert(vsr::message_bus<tcp_message_bus>);

}  // namespace platform
