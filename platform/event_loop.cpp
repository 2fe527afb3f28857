// The backend-independent half of platform::event_loop: names, address parsing, the ready queue
// and the timer list. The epoll backend (event_loop_epoll.cpp) and a future IOCP backend share it.
#include "platform/event_loop.hpp"

#include <cassert>
#include <limits>

namespace platform {

std::string_view to_string(io_error error) noexcept {
    switch (error) {
        case io_error::none: return "none";
        case io_error::cancelled: return "cancelled";
        case io_error::closed: return "closed";
        case io_error::refused: return "refused";
        case io_error::reset: return "reset";
        case io_error::timed_out: return "timed_out";
        case io_error::address_in_use: return "address_in_use";
        case io_error::invalid: return "invalid";
        case io_error::other: return "other";
    }
    return "unknown";
}

namespace {

// Digits only, no sign, no leading zero (except "0" itself), value <= value_max.
bool parse_decimal(std::string_view text, std::uint32_t value_max, std::uint32_t& out) noexcept {
    constexpr std::size_t digits_max = 5;  // enough for 65535; also keeps the sum from overflowing
    if (text.empty() || text.size() > digits_max) return false;
    if (text.size() > 1 && text.front() == '0') return false;
    std::uint32_t value = 0;
    for (const char digit : text) {
        if (digit < '0' || digit > '9') return false;
        value = value * 10 + static_cast<std::uint32_t>(digit - '0');
    }
    if (value > value_max) return false;
    out = value;
    return true;
}

}  // namespace

bool parse_socket_address(std::string_view text, socket_address& out) noexcept {
    const std::size_t colon = text.find(':');
    if (colon == std::string_view::npos) return false;
    std::uint32_t port = 0;
    if (!parse_decimal(text.substr(colon + 1), std::numeric_limits<std::uint16_t>::max(), port)) {
        return false;  // also rejects a second colon: it is not a digit
    }
    std::string_view host = text.substr(0, colon);
    std::uint32_t ipv4 = 0;
    for (int octet_index = 0; octet_index < 4; octet_index++) {
        const std::size_t dot = host.find('.');
        const bool last = octet_index == 3;
        if (last != (dot == std::string_view::npos)) return false;  // exactly three dots
        std::uint32_t octet = 0;
        if (!parse_decimal(host.substr(0, dot), 255, octet)) return false;
        ipv4 = (ipv4 << 8) | octet;
        if (!last) host.remove_prefix(dot + 1);
    }
    out = socket_address{.ipv4_host_order = ipv4, .port = static_cast<std::uint16_t>(port)};
    return true;
}

std::string to_string(const socket_address& address) {
    std::string text;
    for (int shift = 24; shift >= 0; shift -= 8) {
        text += std::to_string((address.ipv4_host_order >> shift) & 0xffu);
        text += shift == 0 ? ':' : '.';
    }
    text += std::to_string(address.port);
    return text;
}

// ---- operation bookkeeping -------------------------------------------------------------------

void event_loop::start(completion& c, completion::operation operation, socket_handle socket) {
    assert(epoll_fd_ >= 0 && "open() first");
    assert(c.callback != nullptr);
    assert(c.loop_state == completion::state::idle && "completion still in use by the loop");
    c.loop_operation = operation;
    c.loop_socket = socket;
    c.loop_buffer = nullptr;
    c.loop_buffer_size = 0;
    c.loop_next = nullptr;
    c.loop_previous = nullptr;
    c.error = io_error::none;
    c.bytes = 0;
    c.accepted = invalid_socket;
}

void event_loop::complete(completion& c, io_error error) {
    c.error = error;
    push_ready(c);
}

void event_loop::push_ready(completion& c) {
    assert(c.loop_state != completion::state::ready);
    c.loop_state = completion::state::ready;
    c.loop_next = nullptr;
    c.loop_previous = nullptr;
    if (ready_tail_ == nullptr) {
        ready_head_ = &c;
    } else {
        ready_tail_->loop_next = &c;
    }
    ready_tail_ = &c;
}

// Runs the callbacks queued so far. Results queued by these callbacks wait for the next
// run_once, so a callback that re-arms an operation which completes at once cannot starve I/O.
void event_loop::run_ready() {
    completion* c = ready_head_;
    ready_head_ = nullptr;
    ready_tail_ = nullptr;
    running_ = true;
    while (c != nullptr) {
        completion* const next = c->loop_next;  // read first: the callback may reuse c
        assert(c->loop_state == completion::state::ready);
        c->loop_next = nullptr;
        c->loop_state = completion::state::idle;
        c->callback(*c);
        c = next;
    }
    running_ = false;
}

// ---- timers ----------------------------------------------------------------------------------

void event_loop::timeout(std::uint64_t delay_ns, completion& c) {
    start(c, completion::operation::timeout, invalid_socket);
    const std::uint64_t now = monotonic_ns();
    const std::uint64_t max = std::numeric_limits<std::uint64_t>::max();
    c.loop_deadline_ns = delay_ns > max - now ? max : now + delay_ns;
    c.loop_state = completion::state::pending;
    timer_insert(c);
}

// Sorted by deadline, FIFO among equals. Searching from the tail makes the common case (equal
// delays, so non-decreasing deadlines) O(1); the worst case is O(pending timers).
void event_loop::timer_insert(completion& c) {
    completion* after = timers_tail_;
    while (after != nullptr && after->loop_deadline_ns > c.loop_deadline_ns) {
        after = after->loop_previous;
    }
    c.loop_previous = after;
    c.loop_next = after == nullptr ? timers_head_ : after->loop_next;
    if (c.loop_next == nullptr) {
        timers_tail_ = &c;
    } else {
        c.loop_next->loop_previous = &c;
    }
    if (after == nullptr) {
        timers_head_ = &c;
    } else {
        after->loop_next = &c;
    }
}

void event_loop::timer_remove(completion& c) {
    assert(c.loop_operation == completion::operation::timeout);
    (c.loop_previous == nullptr ? timers_head_ : c.loop_previous->loop_next) = c.loop_next;
    (c.loop_next == nullptr ? timers_tail_ : c.loop_next->loop_previous) = c.loop_previous;
    c.loop_next = nullptr;
    c.loop_previous = nullptr;
}

void event_loop::expire_timers() {
    if (timers_head_ == nullptr) return;
    const std::uint64_t now = monotonic_ns();
    while (timers_head_ != nullptr && timers_head_->loop_deadline_ns <= now) {
        completion& c = *timers_head_;
        timer_remove(c);
        complete(c, io_error::none);
    }
}

}  // namespace platform
