// What the socket tests under tests/platform share: the loopback address, and a hand-driven TCP
// connection for feeding a server bytes no honest peer would send.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <span>

#include <boost/test/unit_test.hpp>

#include "platform/event_loop.hpp"

namespace platform_test {

constexpr std::uint64_t ms = 1'000'000;
constexpr std::uint32_t loopback = 0x7f000001;  // 127.0.0.1

/// Runs the loop (waiting at most 5 ms a turn) until done() holds or `turns` turns have passed.
inline bool run_until(platform::event_loop& loop, const std::function<bool()>& done, int turns) {
    for (int i = 0; i < turns; i++) {
        if (done()) return true;
        loop.run_once(5 * ms);
    }
    return done();
}

struct raw_connection {
    static constexpr int iterations_max = 4'000;  // bounds every wait loop (each run waits <= 5 ms)

    platform::event_loop& loop;
    platform::socket_handle socket = platform::invalid_socket;
    platform::completion connect_c, send_c, recv_c;
    bool connected = false, send_done = true, closed = false, recv_pending = false;
    std::array<std::uint8_t, 4096> sink{};

    explicit raw_connection(platform::event_loop& l) : loop(l) {
        using platform::completion;
        for (completion* c : {&connect_c, &send_c, &recv_c}) c->context = this;
        connect_c.callback = [](completion& c) {
            static_cast<raw_connection*>(c.context)->connected = c.error == platform::io_error::none;
        };
        send_c.callback = [](completion& c) { static_cast<raw_connection*>(c.context)->send_done = true; };
        recv_c.callback = [](completion& c) {
            auto* self = static_cast<raw_connection*>(c.context);
            self->recv_pending = false;
            if (c.error != platform::io_error::none) self->closed = true;
        };
    }
    ~raw_connection() { close(); }
    raw_connection(const raw_connection&) = delete;
    raw_connection& operator=(const raw_connection&) = delete;

    /// Closes the socket and lets the loop hand back the completions that live in this object.
    void close() {
        if (socket != platform::invalid_socket) loop.close(socket);
        socket = platform::invalid_socket;
        for (int i = 0; i < 10 && (recv_pending || !send_done); i++) loop.run_once(0);
    }
    void run() { loop.run_once(5 * ms); }
    void start_connect(platform::socket_address address) {
        platform::io_error error = platform::io_error::none;
        socket = loop.open_stream(error);
        BOOST_REQUIRE(socket != platform::invalid_socket);
        loop.connect(socket, address, connect_c);
        for (int i = 0; i < iterations_max && !connected; i++) run();
        BOOST_REQUIRE(connected);
    }
    void send(std::span<const std::uint8_t> bytes) {
        send_done = false;
        loop.send(socket, bytes, send_c);
        for (int i = 0; i < iterations_max && !send_done; i++) run();
    }
    /// Waits until the peer closes the connection (reads and discards anything it sends).
    bool wait_closed() {
        for (int i = 0; i < iterations_max && !closed; i++) {
            if (!recv_pending) {
                recv_pending = true;
                loop.recv(socket, sink, recv_c);
            }
            run();
        }
        return closed;
    }
};

}  // namespace platform_test
