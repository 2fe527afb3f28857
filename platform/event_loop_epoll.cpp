// The epoll backend of platform::event_loop.
//
// Why edge-triggered: every socket is registered once, at creation, with EPOLLET. Each operation
// first tries its system call right away; only when that call says "would block" does the
// operation wait for the next edge. The kernel reports an edge once per change of state, so a
// socket that is idle, half-closed, reset (EPOLLHUP/EPOLLERR) or has nothing pending cannot make
// epoll_wait return again and again: the loop cannot spin. It also needs no epoll_ctl per
// operation. Events for a socket with no pending operation are simply dropped; the next
// operation's immediate attempt picks up whatever state they announced.
#include "platform/event_loop.hpp"

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <climits>
#include <cstring>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

namespace platform {

namespace {

constexpr std::uint64_t ns_per_ms = 1'000'000;

io_error error_from_errno(int code) {
    switch (code) {
        case 0: return io_error::none;
        case ECANCELED: return io_error::cancelled;
        case EPIPE: return io_error::closed;  // the stream is shut for writing
        case ECONNREFUSED: return io_error::refused;
        case ECONNRESET:
        case ECONNABORTED: return io_error::reset;
        case ETIMEDOUT: return io_error::timed_out;
        case EADDRINUSE: return io_error::address_in_use;
        case EBADF:
        case EINVAL:
        case ENOTSOCK:
        case EAFNOSUPPORT:
        case EADDRNOTAVAIL:
        case EISCONN: return io_error::invalid;
        default: return io_error::other;
    }
}

sockaddr_in to_sockaddr(const socket_address& address) {
    sockaddr_in result{};
    result.sin_family = AF_INET;
    result.sin_port = htons(address.port);
    result.sin_addr.s_addr = htonl(address.ipv4_host_order);
    return result;
}

bool set_int_option(int fd, int level, int name, int value) {
    return ::setsockopt(fd, level, name, &value, sizeof(value)) == 0;
}

int to_fd(socket_handle socket) { return socket < 0 || socket > INT_MAX ? -1 : static_cast<int>(socket); }

bool would_block(int code) { return code == EAGAIN || code == EWOULDBLOCK; }

}  // namespace

event_loop::~event_loop() {
    for (std::size_t fd = 0; fd < sockets_.size(); fd++) {
        if (sockets_[fd].open) ::close(static_cast<int>(fd));
    }
    if (epoll_fd_ >= 0) ::close(epoll_fd_);
}

bool event_loop::open(std::string& error) {
    assert(epoll_fd_ < 0);
    epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd_ < 0) {
        error = "epoll_create1: " + std::string(std::strerror(errno));
        return false;
    }
    return true;
}

std::uint64_t event_loop::monotonic_ns() const {
    timespec now{};
    ::clock_gettime(CLOCK_MONOTONIC, &now);
    return static_cast<std::uint64_t>(now.tv_sec) * 1'000'000'000u + static_cast<std::uint64_t>(now.tv_nsec);
}

// ---- sockets ---------------------------------------------------------------------------------

event_loop::socket_state* event_loop::find_socket(socket_handle socket) {
    const int fd = to_fd(socket);
    if (fd < 0 || static_cast<std::size_t>(fd) >= sockets_.size()) return nullptr;
    socket_state& state = sockets_[static_cast<std::size_t>(fd)];
    return state.open ? &state : nullptr;
}

// Every socket is registered once, edge-triggered, for everything it can report (see the top).
bool event_loop::register_socket(int fd, bool listener, io_error& error) {
    assert(fd >= 0);
    const auto index = static_cast<std::size_t>(fd);
    if (index >= sockets_.size()) sockets_.resize(index + 1);
    assert(!sockets_[index].open);

    epoll_event event{};
    event.events = listener ? (EPOLLIN | EPOLLET) : (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET);
    event.data.fd = fd;
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &event) != 0) {
        error = error_from_errno(errno);
        return false;
    }
    sockets_[index] = socket_state{.open = true, .listener = listener};
    return true;
}

socket_handle event_loop::listen(const socket_address& address, int backlog, io_error& error) {
    assert(epoll_fd_ >= 0);
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        error = error_from_errno(errno);
        return invalid_socket;
    }
    const sockaddr_in bound = to_sockaddr(address);
    // SO_REUSEADDR: a restarted node can listen again while old connections sit in TIME_WAIT.
    const bool ok = set_int_option(fd, SOL_SOCKET, SO_REUSEADDR, 1) &&
                    ::bind(fd, reinterpret_cast<const sockaddr*>(&bound), sizeof(bound)) == 0 &&
                    ::listen(fd, backlog) == 0;
    if (!ok) {
        error = error_from_errno(errno);
        ::close(fd);
        return invalid_socket;
    }
    if (!register_socket(fd, true, error)) {
        ::close(fd);
        return invalid_socket;
    }
    error = io_error::none;
    return fd;
}

socket_handle event_loop::open_stream(io_error& error) {
    assert(epoll_fd_ >= 0);
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        error = error_from_errno(errno);
        return invalid_socket;
    }
    if (!set_int_option(fd, IPPROTO_TCP, TCP_NODELAY, 1)) {
        error = error_from_errno(errno);
        ::close(fd);
        return invalid_socket;
    }
    if (!register_socket(fd, false, error)) {
        ::close(fd);
        return invalid_socket;
    }
    error = io_error::none;
    return fd;
}

void event_loop::close(socket_handle socket) {
    socket_state* state = find_socket(socket);
    if (state == nullptr) return;
    // Cancel first: the callbacks must see `cancelled`, not whatever the closed fd would report.
    for (completion* pending : {state->reader, state->writer}) {
        if (pending != nullptr) complete(*pending, io_error::cancelled);
    }
    const int fd = to_fd(socket);
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
    ::close(fd);  // on Linux the fd is released even if close reports an error
    *state = socket_state{};
}

std::uint16_t event_loop::local_port(socket_handle socket) const {
    sockaddr_in bound{};
    socklen_t length = sizeof(bound);
    const int fd = to_fd(socket);
    if (fd < 0 || ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &length) != 0) return 0;
    if (bound.sin_family != AF_INET) return 0;
    return ntohs(bound.sin_port);
}

// ---- operations ------------------------------------------------------------------------------

void event_loop::accept(socket_handle listener, completion& c) {
    start(c, completion::operation::accept, listener);
    start_reader(c);
}

void event_loop::recv(socket_handle socket, std::span<std::uint8_t> buffer, completion& c) {
    start(c, completion::operation::recv, socket);
    c.loop_buffer = buffer.data();
    c.loop_buffer_size = buffer.size();
    if (buffer.empty()) {
        complete(c, io_error::invalid);  // an empty read could never report bytes >= 1
        return;
    }
    start_reader(c);
}

void event_loop::send(socket_handle socket, std::span<const std::uint8_t> buffer, completion& c) {
    start(c, completion::operation::send, socket);
    // The loop only reads through this pointer; the cast lets one field serve recv and send.
    c.loop_buffer = const_cast<std::uint8_t*>(buffer.data());
    c.loop_buffer_size = buffer.size();
    start_writer(c);
}

void event_loop::connect(socket_handle socket, const socket_address& address, completion& c) {
    start(c, completion::operation::connect, socket);
    socket_state* state = find_socket(socket);
    if (state == nullptr || state->listener || state->writer != nullptr) {
        complete(c, io_error::invalid);
        return;
    }
    const sockaddr_in peer = to_sockaddr(address);
    const int result = ::connect(to_fd(socket), reinterpret_cast<const sockaddr*>(&peer), sizeof(peer));
    if (result == 0) {
        complete(c, io_error::none);  // loopback may connect at once
    } else if (errno == EINPROGRESS || errno == EINTR) {
        c.loop_state = completion::state::pending;  // wait for the writable edge
        state->writer = &c;
    } else {
        complete(c, error_from_errno(errno));
    }
}

// A reader (accept, recv) tries its call at once and waits for an edge only if it would block.
void event_loop::start_reader(completion& c) {
    socket_state* state = find_socket(c.loop_socket);
    const bool wants_listener = c.loop_operation == completion::operation::accept;
    if (state == nullptr || state->listener != wants_listener || state->reader != nullptr) {
        complete(c, io_error::invalid);
        return;
    }
    c.loop_state = completion::state::pending;
    state->reader = &c;
    if (wants_listener || state->maybe_readable) progress(to_fd(c.loop_socket), true);
}

void event_loop::start_writer(completion& c) {
    socket_state* state = find_socket(c.loop_socket);
    if (state == nullptr || state->listener || state->writer != nullptr) {
        complete(c, io_error::invalid);
        return;
    }
    c.loop_state = completion::state::pending;
    state->writer = &c;
    progress(to_fd(c.loop_socket), false);
}

// Moves the socket's pending reader or writer forward; queues its callback once it is finished.
// Looks the slot up again after the attempt: accept may grow the socket table.
void event_loop::progress(int fd, bool reader) {
    const auto index = static_cast<std::size_t>(fd);
    completion* c = reader ? sockets_[index].reader : sockets_[index].writer;
    assert(c != nullptr && c->loop_state == completion::state::pending);
    bool finished = false;
    switch (c->loop_operation) {
        case completion::operation::accept: finished = try_accept(*c); break;
        case completion::operation::recv: finished = try_recv(*c); break;
        case completion::operation::connect: finished = try_connect(*c); break;
        case completion::operation::send: finished = try_send(*c); break;
        default: assert(false && "not a socket operation");
    }
    if (!finished) return;
    (reader ? sockets_[index].reader : sockets_[index].writer) = nullptr;
    push_ready(*c);
}

void event_loop::dispatch(int fd, std::uint32_t events) {
    const socket_state* state = find_socket(fd);
    if (state == nullptr) return;  // closed sockets are removed from epoll; be defensive anyway
    const bool has_writer = state->writer != nullptr;
    // Errors and hang-ups wake both sides: their system calls then report what happened.
    if ((events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0) {
        socket_state& readable = sockets_[static_cast<std::size_t>(fd)];
        readable.maybe_readable = true;  // even with no reader yet
        if ((events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0) readable.hung_up = true;
        if (state->reader != nullptr) progress(fd, true);
    }
    if (has_writer && (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) != 0) progress(fd, false);
}

// ---- system calls: each returns true when the operation finished (result set) ---------------

bool event_loop::try_accept(completion& c) {
    for (;;) {
        const int fd = ::accept4(to_fd(c.loop_socket), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            const int code = errno;
            if (would_block(code)) return false;
            // A connection that died in the queue, or a signal: take the next one.
            if (code == EINTR || code == ECONNABORTED || code == EPROTO) continue;
            c.error = error_from_errno(code);  // EMFILE and friends: the caller must back off
            return true;
        }
        io_error error = io_error::none;
        if (!set_int_option(fd, IPPROTO_TCP, TCP_NODELAY, 1) || !register_socket(fd, false, error)) {
            ::close(fd);
            c.error = error == io_error::none ? io_error::other : error;
            return true;
        }
        c.accepted = fd;
        c.error = io_error::none;
        return true;
    }
}

// Called on a writable or error edge after connect() said EINPROGRESS.
bool event_loop::try_connect(completion& c) {
    const int fd = to_fd(c.loop_socket);
    int code = 0;
    socklen_t length = sizeof(code);
    if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &code, &length) != 0) code = errno;
    if (code != 0) {
        c.error = error_from_errno(code);
        return true;
    }
    sockaddr_in peer{};
    length = sizeof(peer);
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &length) != 0) {
        if (errno == ENOTCONN) return false;  // a stale edge: the handshake is still running
        c.error = error_from_errno(errno);
        return true;
    }
    c.error = io_error::none;
    return true;
}

bool event_loop::try_recv(completion& c) {
    for (;;) {
        const ssize_t count = ::recv(to_fd(c.loop_socket), c.loop_buffer, c.loop_buffer_size, 0);
        if (count > 0) {
            c.bytes = static_cast<std::size_t>(count);
            c.error = io_error::none;
            // Short: the kernel had no more. Full: more may wait, so the next recv tries at once.
            if (c.bytes < c.loop_buffer_size) mark_drained(c.loop_socket);
            return true;
        }
        if (count == 0) {
            c.error = io_error::closed;
            return true;
        }
        if (errno == EINTR) continue;
        if (would_block(errno)) {
            mark_drained(c.loop_socket);
            return false;
        }
        c.error = error_from_errno(errno);
        return true;
    }
}

void event_loop::mark_drained(socket_handle socket) {
    socket_state* state = find_socket(socket);
    if (state != nullptr && !state->hung_up) state->maybe_readable = false;
}

// Writes until everything is sent or the socket would block; `bytes` keeps the progress.
bool event_loop::try_send(completion& c) {
    while (c.bytes < c.loop_buffer_size) {
        const ssize_t count =
            ::send(to_fd(c.loop_socket), c.loop_buffer + c.bytes, c.loop_buffer_size - c.bytes, MSG_NOSIGNAL);
        if (count > 0) {
            c.bytes += static_cast<std::size_t>(count);
            continue;
        }
        if (count < 0 && errno == EINTR) continue;
        if (count < 0 && would_block(errno)) return false;
        c.error = count == 0 ? io_error::other : error_from_errno(errno);  // 0: never loop on it
        return true;
    }
    c.error = io_error::none;
    return true;
}

void event_loop::cancel(completion& c) {
    if (c.loop_state != completion::state::pending) return;  // queued or idle: nothing to undo
    if (c.loop_operation == completion::operation::timeout) {
        timer_remove(c);
    } else {
        socket_state* state = find_socket(c.loop_socket);
        assert(state != nullptr);  // close() empties the slots of a socket before closing it
        const bool reader =
            c.loop_operation == completion::operation::accept || c.loop_operation == completion::operation::recv;
        completion*& slot = reader ? state->reader : state->writer;
        assert(slot == &c);
        slot = nullptr;
    }
    complete(c, io_error::cancelled);
}

// ---- driving ---------------------------------------------------------------------------------

void event_loop::run_once(std::uint64_t wait_ns_max) {
    assert(epoll_fd_ >= 0);
    assert(!running_ && "run_once must not be called from a callback");
    const int timeout_ms = ready_head_ != nullptr ? 0 : wait_timeout_ms(wait_ns_max);

    epoll_event events[events_batch_max];
    wakeups_++;
    int count = ::epoll_wait(epoll_fd_, events, events_batch_max, timeout_ms);
    if (count < 0) {
        assert(errno == EINTR);  // anything else means our epoll fd is broken
        count = 0;
    }
    // Every event is turned into results before any callback runs, so a callback that closes
    // a socket and reuses its fd number can never receive a stale event from this batch.
    for (int i = 0; i < count; i++) {
        dispatch(events[i].data.fd, events[i].events);
    }
    expire_timers();
    run_ready();
}

// Rounds up to whole milliseconds: rounding down would wake before a timer is due and spin
// with zero timeouts until it is.
int event_loop::wait_timeout_ms(std::uint64_t wait_ns_max) const {
    std::uint64_t wait_ns = wait_ns_max;
    if (timers_head_ != nullptr) {
        const std::uint64_t now = monotonic_ns();
        const std::uint64_t deadline = timers_head_->loop_deadline_ns;
        wait_ns = std::min(wait_ns, deadline > now ? deadline - now : 0);
    }
    const std::uint64_t wait_ms = wait_ns / ns_per_ms + (wait_ns % ns_per_ms != 0 ? 1 : 0);
    return static_cast<int>(std::min<std::uint64_t>(wait_ms, INT_MAX));
}

}  // namespace platform
