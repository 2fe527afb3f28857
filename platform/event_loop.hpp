// A completion-style event loop: the caller starts an operation with a caller-owned `completion`,
// and the loop later runs the completion's callback from run_once(). The interface is shaped for
// both readiness backends (epoll, this file's only implementation today) and completion backends
// (Windows IOCP, planned): the caller never sees readiness, only finished operations.
//
// This header includes only the standard library; OS headers stay in the backend's .cpp.
//
// CONTRACT (mirrored in ARCHITECTURE.md, "The platform event loop"):
// - Ownership. The caller owns every completion and every buffer it passes. From the call that
//   starts an operation until that operation's callback has begun, both must stay alive and
//   unmoved, and the caller must not touch the completion's loop-owned fields.
// - Exactly one callback per started operation, always from run_once(), never inside the call
//   that started it (not even for an immediate result or an argument error). Callbacks never run
//   re-entrantly: run_once() is not to be called from a callback.
// - Cancellation. cancel(c) on a pending operation delivers c's callback later with
//   io_error::cancelled; on a completion whose result is already queued (or that is idle) it has
//   no effect. close(socket) first cancels every pending operation on that socket the same way.
//   After a cancelled recv or send the position in the byte stream is unspecified (a completion
//   backend may already have moved bytes); the only sensible next step is close(). A cancelled
//   send reports in `bytes` how many bytes the loop knows were sent.
// - One reader and one writer per socket. At most one pending recv or accept and at most one
//   pending send or connect per socket. A second one completes (via its callback) with
//   io_error::invalid and does not disturb the first. Starting an operation on a completion that
//   is still pending or queued is a caller bug and asserts.
// - Reuse. A completion may be reused (a new operation started with it) from inside its own
//   callback; the loop is done with it before the callback runs.
// - Order. Callbacks run in FIFO order of readiness. Each run_once() runs only the callbacks that
//   were ready when its callback phase began; results produced by those callbacks (for example an
//   immediate recv) run on the next run_once(), which then does not block.
// - Results. recv completes with bytes >= 1, or io_error::closed on end of stream, or another
//   error (recv into an empty buffer is invalid). send completes when every byte is sent (partial
//   writes are retried inside the loop) or on error; an empty send completes with bytes == 0. accept delivers a
//   non-blocking, close-on-exec socket with TCP_NODELAY in `accepted`. A timeout completes with io_error::none once its
//   delay has passed.
// - Bounds. No heap allocation per operation: the completion carries the loop's links. Timers sit
//   in an intrusive list threaded through the caller's completions, so its size is the number of
//   pending timeouts. One epoll_wait returns at most `events_batch_max` events. The loop's only
//   allocations are one socket-table slot per socket (amortised vector growth).
// - Destroying the loop closes the sockets it still owns; pending callbacks then never run.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace platform {

enum class io_error : std::uint8_t {
    none,
    cancelled,
    closed,  // the peer closed the stream (end of file), or the stream is shut for writing
    refused,
    reset,
    timed_out,
    address_in_use,
    invalid,  // bad arguments or a misuse the loop detected (unknown socket, second reader...)
    other,
};

std::string_view to_string(io_error error) noexcept;

/// An IPv4 endpoint. Port 0 asks listen() for an ephemeral port (read it back with local_port).
struct socket_address {
    std::uint32_t ipv4_host_order = 0;
    std::uint16_t port = 0;

    friend bool operator==(const socket_address&, const socket_address&) = default;
};

/// Parses "a.b.c.d:port" strictly: four decimal octets 0..255 and a port 0..65535, digits only,
/// no leading zeros (so "010" cannot mean octal 8), no spaces, nothing after the port.
/// Returns false (leaving `out` untouched) on anything else; never throws.
bool parse_socket_address(std::string_view text, socket_address& out) noexcept;
std::string to_string(const socket_address& address);

/// A socket as the loop sees it: a file descriptor on POSIX, a SOCKET on Windows.
using socket_handle = std::intptr_t;
inline constexpr socket_handle invalid_socket = -1;

class event_loop;

/// One asynchronous operation. Caller-owned; see the contract at the top of this file.
struct completion {
    // Public: set by the caller before starting an operation.
    void (*callback)(completion&) = nullptr;
    void* context = nullptr;

    // Public: results, valid inside the callback.
    io_error error = io_error::none;
    std::size_t bytes = 0;                    // recv: received; send: sent
    socket_handle accepted = invalid_socket;  // accept: the new socket

    // Loop-owned from the start of an operation until its callback begins. Do not touch.
    enum class operation : std::uint8_t { none, accept, connect, recv, send, timeout };
    enum class state : std::uint8_t { idle, pending, ready };
    operation loop_operation = operation::none;
    state loop_state = state::idle;
    socket_handle loop_socket = invalid_socket;
    std::uint8_t* loop_buffer = nullptr;  // recv target, or send source (never written through)
    std::size_t loop_buffer_size = 0;
    std::uint64_t loop_deadline_ns = 0;   // timeout only
    completion* loop_next = nullptr;      // ready queue or timer list
    completion* loop_previous = nullptr;  // timer list
};

class event_loop {
public:
    /// Most events one epoll_wait returns; further ready sockets wait for the next run_once.
    static constexpr int events_batch_max = 64;

    event_loop() = default;
    ~event_loop();
    event_loop(const event_loop&) = delete;
    event_loop& operator=(const event_loop&) = delete;

    /// Creates the kernel object (epoll instance). Must succeed before anything else is called.
    bool open(std::string& error);

    // Sockets. All are non-blocking and close-on-exec; each returns invalid_socket on failure
    // and sets `error`.
    socket_handle listen(const socket_address& address, int backlog, io_error& error);
    socket_handle open_stream(io_error& error);  // a TCP socket with TCP_NODELAY, for connect()
    /// Cancels every pending operation on the socket (their callbacks run later with
    /// io_error::cancelled), then closes it. Unknown handles are ignored.
    void close(socket_handle socket);
    /// The bound port of a socket (after listen on port 0), or 0 if it cannot be read.
    std::uint16_t local_port(socket_handle socket) const;

    // Operations. Each completes exactly once through completion.callback (see the contract).
    void accept(socket_handle listener, completion& c);
    void connect(socket_handle socket, const socket_address& address, completion& c);
    void recv(socket_handle socket, std::span<std::uint8_t> buffer, completion& c);
    void send(socket_handle socket, std::span<const std::uint8_t> buffer, completion& c);
    void timeout(std::uint64_t delay_ns, completion& c);
    void cancel(completion& c);

    /// Waits for I/O at most wait_ns_max (less if a timeout is due, not at all if callbacks are
    /// already queued), then runs the callbacks that are ready, in FIFO order of readiness.
    void run_once(std::uint64_t wait_ns_max);
    std::uint64_t monotonic_ns() const;

    /// How many times the loop has waited in the kernel (epoll_wait calls). For tests: an idle
    /// loop must not spin.
    std::uint64_t wakeups() const noexcept { return wakeups_; }

private:
    struct socket_state {
        bool open = false;
        bool listener = false;
        // False after a recv came back short or would block: the socket was drained, and the
        // edge that new bytes raise sets it again. A recv started meanwhile waits for that edge
        // instead of trying a system call that can only say EAGAIN.
        bool maybe_readable = true;
        bool hung_up = false;          // RDHUP, HUP or ERR seen: a short read may hide the end of stream
        completion* reader = nullptr;  // pending accept or recv
        completion* writer = nullptr;  // pending connect or send
    };

    socket_state* find_socket(socket_handle socket);
    bool register_socket(int fd, bool listener, io_error& error);
    void start(completion& c, completion::operation operation, socket_handle socket);
    void start_reader(completion& c);
    void start_writer(completion& c);
    void progress(int fd, bool reader);
    void mark_drained(socket_handle socket);
    void complete(completion& c, io_error error);
    void push_ready(completion& c);
    void timer_insert(completion& c);
    void timer_remove(completion& c);
    void expire_timers();
    int wait_timeout_ms(std::uint64_t wait_ns_max) const;
    void dispatch(int fd, std::uint32_t events);
    void run_ready();
    bool try_accept(completion& c);
    bool try_connect(completion& c);
    bool try_recv(completion& c);
    bool try_send(completion& c);

    int epoll_fd_ = -1;
    std::vector<socket_state> sockets_;  // indexed by file descriptor
    completion* ready_head_ = nullptr;
    completion* ready_tail_ = nullptr;
    completion* timers_head_ = nullptr;  // sorted by deadline, FIFO among equal deadlines
    completion* timers_tail_ = nullptr;
    std::uint64_t wakeups_ = 0;
    bool running_ = false;  // inside run_ready: guards against re-entrant run_once
};

}  // namespace platform
