#define BOOST_TEST_MODULE event_loop
// The header under test comes first: proves it is self-contained.
#include "platform/event_loop.hpp"

#ifndef BOOST_TEST_DYN_LINK  // meson's boost dependency may define it already
#define BOOST_TEST_DYN_LINK
#endif
#include <boost/test/unit_test.hpp>

#include <array>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <iterator>
#include <ostream>
#include <string>
#include <vector>

namespace platform {
// Lets Boost.Test print io_error values in failure messages.
std::ostream& operator<<(std::ostream& out, io_error error) { return out << to_string(error); }
}  // namespace platform

namespace {

using platform::completion;
using platform::io_error;
using platform::socket_handle;

constexpr std::uint64_t ms = 1'000'000;
constexpr std::uint32_t loopback = 0x7f000001;  // 127.0.0.1
constexpr int iterations_max = 10'000;          // bounds every wait loop in these tests

// Counts its calls in an int that `context` points to.
void count_call(completion& c) { ++*static_cast<int*>(c.context); }

// Appends the completion to a std::vector<completion*> that `context` points to.
void log_call(completion& c) { static_cast<std::vector<completion*>*>(c.context)->push_back(&c); }

completion make(void (*callback)(completion&), void* context) {
    completion c;
    c.callback = callback;
    c.context = context;
    return c;
}

std::size_t open_fd_count() {
    const std::filesystem::directory_iterator entries("/proc/self/fd");
    return static_cast<std::size_t>(std::distance(begin(entries), end(entries)));
}

struct fixture {
    platform::event_loop loop;

    fixture() {
        std::string error;
        BOOST_REQUIRE_MESSAGE(loop.open(error), error);
    }

    void run_until(const std::function<bool()>& done) {
        for (int i = 0; i < iterations_max && !done(); i++) loop.run_once(10 * ms);
        BOOST_REQUIRE(done());
    }

    socket_handle listen_ephemeral(std::uint16_t& port) {
        io_error error = io_error::other;
        const socket_handle listener = loop.listen({loopback, 0}, 64, error);
        BOOST_REQUIRE(listener != platform::invalid_socket);
        BOOST_REQUIRE(error == io_error::none);
        port = loop.local_port(listener);
        BOOST_REQUIRE(port != 0);
        return listener;
    }

    // A listener with one accepted connection; close_all() releases the three sockets.
    struct connection {
        socket_handle listener, client, server;
    };
    connection open_connection() {
        std::uint16_t port = 0;
        const socket_handle listener = listen_ephemeral(port);
        const auto [client, server] = connect_pair(listener, port);
        return {listener, client, server};
    }
    void close_all(const connection& c) {
        loop.close(c.client);
        loop.close(c.server);
        loop.close(c.listener);
    }

    // Connects a new client to `listener`; returns {client, server}.
    std::array<socket_handle, 2> connect_pair(socket_handle listener, std::uint16_t port) {
        io_error error = io_error::other;
        const socket_handle client = loop.open_stream(error);
        BOOST_REQUIRE(client != platform::invalid_socket);
        int calls = 0;
        completion accepting = make(count_call, &calls);
        completion connecting = make(count_call, &calls);
        loop.accept(listener, accepting);
        loop.connect(client, {loopback, port}, connecting);
        run_until([&] { return calls == 2; });
        BOOST_REQUIRE(accepting.error == io_error::none);
        BOOST_REQUIRE(connecting.error == io_error::none);
        BOOST_REQUIRE(accepting.accepted != platform::invalid_socket);
        return {client, accepting.accepted};
    }
};

}  // namespace

BOOST_AUTO_TEST_CASE(io_error_names) {
    BOOST_TEST(platform::to_string(io_error::none) == "none");
    BOOST_TEST(platform::to_string(io_error::cancelled) == "cancelled");
    BOOST_TEST(platform::to_string(io_error::address_in_use) == "address_in_use");
    BOOST_TEST(platform::to_string(io_error::other) == "other");
}

BOOST_AUTO_TEST_CASE(parse_socket_address_table) {
    struct row {
        const char* text;
        bool ok;
        std::uint32_t ipv4;
        std::uint16_t port;
    };
    const row rows[] = {
        {"127.0.0.1:3000", true, 0x7f000001, 3000},
        {"0.0.0.0:0", true, 0, 0},
        {"255.255.255.255:65535", true, 0xffffffff, 65535},
        {"10.1.2.3:80", true, 0x0a010203, 80},
        {"", false, 0, 0},
        {"127.0.0.1", false, 0, 0},
        {"127.0.0.1:", false, 0, 0},
        {":3000", false, 0, 0},
        {"127.0.0.1:65536", false, 0, 0},
        {"127.0.0.1:99999999999", false, 0, 0},
        {"127.0.0.1:-1", false, 0, 0},
        {"127.0.0.1:+80", false, 0, 0},
        {"127.0.0.1:080", false, 0, 0},
        {"127.0.0.1:80 ", false, 0, 0},
        {" 127.0.0.1:80", false, 0, 0},
        {"127.0.0.1:80:81", false, 0, 0},
        {"256.0.0.1:80", false, 0, 0},
        {"1.2.3.1000:80", false, 0, 0},
        {"1.2.3:80", false, 0, 0},
        {"1.2.3.4.5:80", false, 0, 0},
        {"1..3.4:80", false, 0, 0},
        {"1.2.3.:80", false, 0, 0},
        {".1.2.3:80", false, 0, 0},
        {"01.2.3.4:80", false, 0, 0},
        {"a.b.c.d:80", false, 0, 0},
        {"localhost:80", false, 0, 0},
        {"1.2.3.4:8a", false, 0, 0},
        {"[::1]:80", false, 0, 0},
    };
    for (const row& r : rows) {
        platform::socket_address address{.ipv4_host_order = 42, .port = 42};
        const bool ok = platform::parse_socket_address(r.text, address);
        BOOST_TEST(ok == r.ok, "input \"" << r.text << "\"");
        if (r.ok) {
            BOOST_TEST(address.ipv4_host_order == r.ipv4);
            BOOST_TEST(address.port == r.port);
            BOOST_TEST(platform::to_string(address) == r.text);
        } else {
            BOOST_TEST((address == platform::socket_address{42, 42}), "untouched: " << r.text);
        }
    }
}

BOOST_FIXTURE_TEST_CASE(echo_one_mebibyte_both_ways_with_small_buffers, fixture) {
    std::uint16_t port = 0;
    const socket_handle listener = listen_ephemeral(port);
    const auto [client, server] = connect_pair(listener, port);

    // The server echoes every chunk it receives: recv, send it back, recv again.
    struct echo {
        platform::event_loop* loop;
        socket_handle socket;
        std::array<std::uint8_t, 1000> buffer{};
        completion receiving;
        completion sending;
        io_error failure = io_error::none;
    } server_side{&loop, server, {}, {}, {}, io_error::none};
    server_side.receiving = make(
        [](completion& c) {
            auto& self = *static_cast<echo*>(c.context);
            if (c.error != io_error::none) {
                self.failure = c.error;
                return;
            }
            self.loop->send(self.socket, std::span(self.buffer.data(), c.bytes), self.sending);
        },
        &server_side);
    server_side.sending = make(
        [](completion& c) {
            auto& self = *static_cast<echo*>(c.context);
            if (c.error != io_error::none) {
                self.failure = c.error;
                return;
            }
            self.loop->recv(self.socket, self.buffer, self.receiving);
        },
        &server_side);
    loop.recv(server, server_side.buffer, server_side.receiving);

    // The client sends 1 MiB in one operation (partial writes retried by the loop) while it
    // receives the echo through a 777-byte buffer.
    constexpr std::size_t total = 1 << 20;
    std::vector<std::uint8_t> sent(total);
    for (std::size_t i = 0; i < total; i++) sent[i] = static_cast<std::uint8_t>(i * 7 + i / 251);
    struct sink {
        platform::event_loop* loop;
        socket_handle socket;
        std::array<std::uint8_t, 777> buffer{};
        std::vector<std::uint8_t> received;
        io_error failure = io_error::none;
    } client_side{&loop, client, {}, {}, io_error::none};
    completion receiving = make(
        [](completion& c) {
            auto& self = *static_cast<sink*>(c.context);
            if (c.error != io_error::none) {
                self.failure = c.error;
                return;
            }
            self.received.insert(self.received.end(), self.buffer.begin(),
                                 self.buffer.begin() + static_cast<std::ptrdiff_t>(c.bytes));
            self.loop->recv(self.socket, self.buffer, c);  // reused from its own callback
        },
        &client_side);
    int send_calls = 0;
    completion sending = make(count_call, &send_calls);
    loop.send(client, sent, sending);
    loop.recv(client, client_side.buffer, receiving);

    run_until([&] {
        return client_side.received.size() >= total || client_side.failure != io_error::none ||
               server_side.failure != io_error::none;
    });
    BOOST_TEST(send_calls == 1);
    BOOST_TEST(sending.error == io_error::none);
    BOOST_TEST(sending.bytes == total);
    BOOST_TEST((client_side.failure == io_error::none && server_side.failure == io_error::none));
    BOOST_TEST(client_side.received == sent);

    loop.close(client);
    loop.close(server);
    loop.close(listener);
    loop.run_once(0);  // delivers the cancelled recvs; their handlers stop on the error
}

// A flag set around every starting call; a callback that sees it set ran inside that call.
namespace {
bool inside_start = false;
int callbacks_inside_start = 0;
int callbacks_total = 0;
void check_not_inside(completion&) {
    callbacks_total++;
    if (inside_start) callbacks_inside_start++;
}
}  // namespace

BOOST_FIXTURE_TEST_CASE(callbacks_never_run_inside_the_starting_call, fixture) {
    std::uint16_t port = 0;
    const socket_handle listener = listen_ephemeral(port);
    io_error error = io_error::other;
    const socket_handle client = loop.open_stream(error);
    std::array<completion, 10> c;
    for (auto& each : c) each = make(check_not_inside, nullptr);
    std::array<std::uint8_t, 4> bytes{1, 2, 3, 4};
    std::array<std::uint8_t, 4> buffer{};
    const auto started = [&](auto&& start) {
        inside_start = true;
        start();
        inside_start = false;
    };
    // Immediate results: a due timer, a loopback connect, argument errors.
    started([&] { loop.timeout(0, c[0]); });
    started([&] { loop.connect(client, {loopback, port}, c[1]); });
    started([&] { loop.recv(platform::invalid_socket, buffer, c[2]); });
    started([&] { loop.recv(client, std::span<std::uint8_t>(), c[3]); });
    started([&] { loop.recv(listener, buffer, c[4]); });
    loop.run_once(10 * ms);
    run_until([&] { return callbacks_total == 5; });
    // An accept with a connection already queued, a send that fits at once, a recv with data.
    started([&] { loop.accept(listener, c[5]); });
    run_until([&] { return callbacks_total == 6; });
    const socket_handle server = c[5].accepted;
    started([&] { loop.send(client, bytes, c[6]); });
    run_until([&] { return callbacks_total == 7; });
    started([&] { loop.recv(server, buffer, c[7]); });
    run_until([&] { return callbacks_total == 8; });
    BOOST_TEST(callbacks_inside_start == 0);
    BOOST_TEST(c[2].error == io_error::invalid);
    BOOST_TEST(c[3].error == io_error::invalid);
    BOOST_TEST(c[4].error == io_error::invalid);
    BOOST_TEST(c[7].bytes == 4u);
    loop.close(client);
    loop.close(server);
    loop.close(listener);
}

BOOST_FIXTURE_TEST_CASE(misuse_is_reported_through_the_callback, fixture) {
    const connection c = open_connection();
    const auto [listener, client, server] = c;
    int calls = 0;
    std::array<std::uint8_t, 16> buffer{};
    completion first = make(count_call, &calls);
    completion second = make(count_call, &calls);
    completion accept_on_stream = make(count_call, &calls);
    loop.recv(server, buffer, first);
    loop.recv(server, buffer, second);  // a second pending reader on one socket
    loop.accept(server, accept_on_stream);
    run_until([&] { return calls == 2; });
    BOOST_TEST(second.error == io_error::invalid);
    BOOST_TEST(accept_on_stream.error == io_error::invalid);
    // The first recv is undisturbed and still works.
    const std::array<std::uint8_t, 3> data{9, 8, 7};
    completion sending = make(count_call, &calls);
    loop.send(client, data, sending);
    run_until([&] { return calls == 4; });
    BOOST_TEST(first.error == io_error::none);
    BOOST_TEST(first.bytes == 3u);
    close_all(c);
}

BOOST_FIXTURE_TEST_CASE(cancel_of_a_pending_recv_delivers_cancelled, fixture) {
    const connection c = open_connection();
    const auto [listener, client, server] = c;
    int calls = 0;
    std::array<std::uint8_t, 16> buffer{};
    completion receiving = make(count_call, &calls);
    loop.recv(server, buffer, receiving);
    loop.run_once(0);
    BOOST_TEST(calls == 0);
    loop.cancel(receiving);
    BOOST_TEST(calls == 0);  // later, from run_once
    loop.run_once(0);
    BOOST_TEST(calls == 1);
    BOOST_TEST(receiving.error == io_error::cancelled);
    BOOST_TEST(receiving.bytes == 0u);
    loop.cancel(receiving);  // idle now: no effect
    loop.run_once(0);
    BOOST_TEST(calls == 1);

    // Cancel of a result that is already queued has no effect either.
    const std::array<std::uint8_t, 5> data{1, 2, 3, 4, 5};
    completion sending = make(count_call, &calls);
    loop.send(client, data, sending);
    run_until([&] { return calls == 2; });
    loop.recv(server, buffer, receiving);  // data is there: completes at once, queued
    loop.cancel(receiving);
    run_until([&] { return calls == 3; });
    BOOST_TEST(receiving.error == io_error::none);
    BOOST_TEST(receiving.bytes == 5u);
    close_all(c);
}

BOOST_FIXTURE_TEST_CASE(close_cancels_pending_recv_and_send, fixture) {
    std::uint16_t port = 0;
    const socket_handle listener = listen_ephemeral(port);
    const auto [client, server] = connect_pair(listener, port);
    int calls = 0;
    std::array<std::uint8_t, 16> buffer{};
    // Far more than loopback socket buffers hold while the client reads nothing.
    const std::vector<std::uint8_t> large(32u << 20, 0x5a);
    completion receiving = make(count_call, &calls);
    completion sending = make(count_call, &calls);
    loop.recv(server, buffer, receiving);
    loop.send(server, large, sending);
    for (int i = 0; i < 3; i++) loop.run_once(0);
    BOOST_REQUIRE(calls == 0);
    loop.close(server);
    BOOST_TEST(calls == 0);
    loop.run_once(0);
    BOOST_TEST(calls == 2);
    BOOST_TEST(receiving.error == io_error::cancelled);
    BOOST_TEST(sending.error == io_error::cancelled);
    BOOST_TEST(sending.bytes > 0u);
    BOOST_TEST(sending.bytes < large.size());
    // The handle is gone: a new operation on it is invalid.
    loop.recv(server, buffer, receiving);
    loop.run_once(0);
    BOOST_TEST(receiving.error == io_error::invalid);
    loop.close(client);
    loop.close(listener);
}

BOOST_FIXTURE_TEST_CASE(timers_fire_in_deadline_order, fixture) {
    std::vector<completion*> fired;
    std::array<completion, 5> t;
    for (auto& each : t) each = make(log_call, &fired);
    loop.timeout(3 * ms, t[0]);
    loop.timeout(1 * ms, t[1]);
    loop.timeout(2 * ms, t[2]);
    loop.timeout(0, t[3]);
    loop.timeout(0, t[4]);  // equal delays fire in start order
    run_until([&] { return fired.size() == 5; });
    const std::vector<completion*> expected{&t[3], &t[4], &t[1], &t[2], &t[0]};
    BOOST_TEST(fired == expected);
    for (const auto& each : t) BOOST_TEST(each.error == io_error::none);
}

BOOST_FIXTURE_TEST_CASE(cancelled_timer_delivers_cancelled_first, fixture) {
    std::vector<completion*> fired;
    std::array<completion, 3> t;
    for (auto& each : t) each = make(log_call, &fired);
    loop.timeout(1 * ms, t[0]);
    loop.timeout(2 * ms, t[1]);
    loop.timeout(3 * ms, t[2]);
    loop.cancel(t[1]);  // unlink from the middle of the list
    loop.run_once(0);
    BOOST_REQUIRE(!fired.empty());
    BOOST_TEST(fired.front() == &t[1]);
    BOOST_TEST(t[1].error == io_error::cancelled);
    run_until([&] { return fired.size() == 3; });
    const std::vector<completion*> expected{&t[1], &t[0], &t[2]};
    BOOST_TEST(fired == expected);
    BOOST_TEST(t[0].error == io_error::none);
    BOOST_TEST(t[2].error == io_error::none);
    loop.cancel(t[0]);  // already fired: no effect
    loop.run_once(0);
    BOOST_TEST(fired.size() == 3u);
}

BOOST_FIXTURE_TEST_CASE(completion_reused_from_its_own_callback, fixture) {
    struct repeat {
        platform::event_loop* loop;
        int count = 0;
    } state{&loop, 0};
    completion timer = make(
        [](completion& c) {
            auto& self = *static_cast<repeat*>(c.context);
            if (++self.count < 5) self.loop->timeout(0, c);
        },
        &state);
    loop.timeout(0, timer);
    run_until([&] { return state.count == 5; });
    for (int i = 0; i < 3; i++) loop.run_once(0);
    BOOST_TEST(state.count == 5);
}

BOOST_FIXTURE_TEST_CASE(connect_to_a_closed_port_is_refused, fixture) {
    std::uint16_t port = 0;
    const socket_handle listener = listen_ephemeral(port);
    loop.close(listener);  // the port is now closed
    io_error error = io_error::other;
    const socket_handle client = loop.open_stream(error);
    BOOST_REQUIRE(client != platform::invalid_socket);
    int calls = 0;
    completion connecting = make(count_call, &calls);
    loop.connect(client, {loopback, port}, connecting);
    run_until([&] { return calls == 1; });
    BOOST_TEST(connecting.error == io_error::refused);
    loop.close(client);
}

BOOST_FIXTURE_TEST_CASE(listen_on_a_port_in_use_fails, fixture) {
    std::uint16_t port = 0;
    const socket_handle listener = listen_ephemeral(port);
    io_error error = io_error::none;
    BOOST_TEST(loop.listen({loopback, port}, 8, error) == platform::invalid_socket);
    BOOST_TEST(error == io_error::address_in_use);
    loop.close(listener);
}

BOOST_FIXTURE_TEST_CASE(peer_close_gives_closed, fixture) {
    std::uint16_t port = 0;
    const socket_handle listener = listen_ephemeral(port);
    const auto [client, server] = connect_pair(listener, port);
    int calls = 0;
    std::array<std::uint8_t, 16> buffer{};
    completion receiving = make(count_call, &calls);
    loop.recv(server, buffer, receiving);
    loop.run_once(0);
    loop.close(client);
    run_until([&] { return calls == 1; });
    BOOST_TEST(receiving.error == io_error::closed);
    // End of stream stays end of stream.
    loop.recv(server, buffer, receiving);
    run_until([&] { return calls == 2; });
    BOOST_TEST(receiving.error == io_error::closed);
    loop.close(server);
    loop.close(listener);
}

BOOST_FIXTURE_TEST_CASE(thousand_connections_leak_no_descriptors, fixture) {
    const std::size_t before = open_fd_count();
    std::uint16_t port = 0;
    const socket_handle listener = listen_ephemeral(port);
    std::array<std::uint8_t, 16> buffer{};
    for (int i = 0; i < 1000; i++) {
        const auto [client, server] = connect_pair(listener, port);
        int calls = 0;
        completion receiving = make(count_call, &calls);
        loop.recv(server, buffer, receiving);
        loop.close(client);
        run_until([&] { return calls == 1; });
        BOOST_REQUIRE(receiving.error == io_error::closed);
        loop.close(server);
    }
    loop.close(listener);
    BOOST_TEST(open_fd_count() == before);
}

namespace {
// Calls run_once(50 ms) until 50 ms have passed; returns how many epoll_waits that took.
std::uint64_t wakeups_over_50_ms(platform::event_loop& loop) {
    const std::uint64_t wakeups_before = loop.wakeups();
    const std::uint64_t start = loop.monotonic_ns();
    for (int i = 0; i < iterations_max && loop.monotonic_ns() - start < 50 * ms; i++) {
        loop.run_once(50 * ms);
    }
    return loop.wakeups() - wakeups_before;
}
}  // namespace

BOOST_FIXTURE_TEST_CASE(idle_connection_does_not_spin, fixture) {
    const connection c = open_connection();
    const auto [listener, client, server] = c;
    int calls = 0;
    std::array<std::uint8_t, 16> buffer{};
    completion receiving = make(count_call, &calls);
    loop.recv(server, buffer, receiving);
    // A spinning loop would wake thousands of times; a correct one sleeps through (the bound
    // leaves room for the edges left over from connection setup).
    BOOST_TEST(wakeups_over_50_ms(loop) <= 3u);
    BOOST_TEST(calls == 0);
    close_all(c);
}

BOOST_FIXTURE_TEST_CASE(hung_up_socket_with_nothing_pending_does_not_spin, fixture) {
    std::uint16_t port = 0;
    const socket_handle listener = listen_ephemeral(port);
    const auto [client, server] = connect_pair(listener, port);
    // The peer is gone and nobody reads `server`: level-triggered HUP/RDHUP would spin here.
    loop.close(client);
    BOOST_TEST(wakeups_over_50_ms(loop) <= 3u);
    // A connect that failed leaves an errored socket behind; it must not spin either.
    io_error error = io_error::other;
    const socket_handle refused = loop.open_stream(error);
    loop.close(listener);
    int calls = 0;
    completion connecting = make(count_call, &calls);
    loop.connect(refused, {loopback, port}, connecting);
    run_until([&] { return calls == 1; });
    BOOST_TEST(connecting.error == io_error::refused);
    BOOST_TEST(wakeups_over_50_ms(loop) <= 3u);
    loop.close(refused);
    loop.close(server);
}
