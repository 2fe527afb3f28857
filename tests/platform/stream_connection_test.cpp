#define BOOST_TEST_MODULE stream_connection
// The header under test comes first: proves it is self-contained.
#include "platform/stream_connection.hpp"

#ifndef BOOST_TEST_DYN_LINK  // meson's boost dependency may define it already
#define BOOST_TEST_DYN_LINK
#endif
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace {

using platform::accept_outcome;
using platform::io_error;
using platform::socket_handle;

constexpr std::uint32_t loopback = 0x7f000001;
constexpr int turns_max = 4'000;  // bounds every wait (each turn waits <= 1 ms)

std::span<const std::uint8_t> as_bytes(const std::string& text) {
    return {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()};
}

// A protocol that records what the layer hands it: received bytes, marks done, the close reason.
struct recording_connection final : platform::stream_connection {
    // Close reasons also go to `closed_log`, which outlives the connection: the pool frees a
    // closed connection as soon as the loop has handed back its completions.
    recording_connection(platform::connection_pool& pool, socket_handle socket,
                         std::vector<std::uint8_t>* log = nullptr)
        : stream_connection(pool, socket), closed_log(log) {}

    std::vector<std::uint8_t>* closed_log;
    std::vector<std::uint8_t> window = std::vector<std::uint8_t>(4096);
    std::string received;
    io_error connect_result = io_error::other;
    bool connected = false;
    std::size_t frames_done = 0;
    std::size_t sends_done = 0;
    int closes = 0;
    int posts = 0;
    std::uint8_t reason = 0;

    void start_receiving() { receive(window); }
    void on_connected(io_error error) override {
        connected = true;
        connect_result = error;
    }
    void on_received(io_error error, std::size_t bytes) override {
        if (error != io_error::none) return close(9);
        received.append(reinterpret_cast<const char*>(window.data()), bytes);
        start_receiving();
    }
    void on_sent(io_error error, std::size_t, std::size_t frames) override {
        if (error != io_error::none) return close(8);
        sends_done++;
        frames_done += frames;
    }
    void on_posted() override { posts++; }
    void on_closed(std::uint8_t why) override {
        closes++;
        reason = why;
        if (closed_log != nullptr) closed_log->push_back(why);
    }
};

struct fixture {
    platform::event_loop loop;
    std::unique_ptr<platform::connection_pool> server;  // listens
    std::unique_ptr<platform::connection_pool> client;  // connects
    std::vector<recording_connection*> accepted;
    std::vector<accept_outcome> outcomes;
    std::vector<std::uint8_t> server_closes;  // reasons, in order
    std::vector<std::uint8_t> client_closes;

    explicit fixture(std::size_t connections_max = SIZE_MAX) {
        std::string error;
        BOOST_REQUIRE(loop.open(error));
        server = std::make_unique<platform::connection_pool>(
            loop, platform::connection_pool_options{.tick_ns = 5'000'000, .connections_max = connections_max});
        client = std::make_unique<platform::connection_pool>(loop, platform::connection_pool_options{});
        server->on_accept = [this](accept_outcome outcome, socket_handle socket) {
            outcomes.push_back(outcome);
            if (outcome != accept_outcome::accepted) return;
            auto& conn = server->add<recording_connection>(*server, socket, &server_closes);
            accepted.push_back(&conn);
            conn.start_receiving();
        };
        io_error io = io_error::none;
        BOOST_REQUIRE(server->listen({.ipv4_host_order = loopback, .port = 0}, io));
        server->start(0);
        client->start(0);
    }
    ~fixture() {
        client->shutdown(0);
        server->shutdown(0);
        client->drain();
        server->drain();
        BOOST_CHECK(client->drained() && server->drained());
    }

    bool run_until(const std::function<bool()>& done) {
        for (int i = 0; i < turns_max && !done(); i++) loop.run_once(1'000'000);
        return done();
    }
    recording_connection& connect() {
        io_error io = io_error::none;
        const socket_handle socket = client->open_stream(io);
        BOOST_REQUIRE(socket != platform::invalid_socket);
        auto& conn = client->add<recording_connection>(*client, socket, &client_closes);
        conn.connect({.ipv4_host_order = loopback, .port = server->port()});
        return conn;
    }
};

}  // namespace

BOOST_AUTO_TEST_CASE(receive_buffer_compacts_grows_and_shrinks) {
    platform::receive_buffer buffer;
    auto window = buffer.window(8);
    BOOST_REQUIRE_EQUAL(window.size(), 8u);
    for (std::size_t i = 0; i < 6; i++) window[i] = static_cast<std::uint8_t>(i);
    buffer.commit(6);
    buffer.consume(4);
    BOOST_CHECK_EQUAL(buffer.unread_size(), 2u);
    window = buffer.window(8);  // the two unread bytes move to the front
    BOOST_CHECK_EQUAL(window.size(), 6u);
    BOOST_CHECK_EQUAL(buffer.unread()[0], 4);
    BOOST_CHECK_EQUAL(buffer.unread()[1], 5);
    buffer.commit(100);  // more than the window: clamped, never past the storage
    BOOST_CHECK_EQUAL(buffer.unread_size(), 8u);
    BOOST_CHECK(buffer.window(8).empty());  // full: the caller must consume first
    buffer.window(64);
    BOOST_CHECK_EQUAL(buffer.capacity(), 64u);
    buffer.shrink_to(4);  // 8 unread bytes do not fit: kept
    BOOST_CHECK_EQUAL(buffer.capacity(), 64u);
    buffer.consume(6);
    buffer.shrink_to(4);
    BOOST_CHECK_EQUAL(buffer.capacity(), 4u);
    BOOST_CHECK_EQUAL(buffer.unread_size(), 2u);
}

BOOST_AUTO_TEST_CASE(bytes_arrive_in_order_and_marks_follow_their_bytes) {
    fixture f;
    recording_connection& conn = f.connect();
    BOOST_REQUIRE(f.run_until([&] { return conn.connected && f.accepted.size() == 1; }));
    BOOST_REQUIRE(conn.connect_result == io_error::none);
    const std::string small = "head";
    auto big = std::make_shared<const std::string>(100'000, 'x');
    conn.queue_copy(as_bytes(small));
    conn.queue_copy(as_bytes(small), 1);  // joins the first: one owned item
    conn.queue_borrowed(as_bytes(*big), big);
    conn.queue_mark(2);  // done with the borrowed bytes
    BOOST_CHECK_EQUAL(conn.queued_items(), 2u);
    BOOST_CHECK_EQUAL(conn.queued_bytes(), 2 * small.size() + big->size());
    conn.flush();
    BOOST_CHECK_EQUAL(conn.frames_done, 0u);  // never inside the call
    const std::string expected = small + small + *big;
    BOOST_REQUIRE(f.run_until([&] { return f.accepted[0]->received.size() == expected.size(); }));
    BOOST_CHECK(f.accepted[0]->received == expected);
    BOOST_REQUIRE(f.run_until([&] { return conn.frames_done == 3; }));
    BOOST_CHECK(conn.send_idle());
    BOOST_CHECK_EQUAL(conn.queued_bytes(), 0u);
}

BOOST_AUTO_TEST_CASE(a_mark_with_nothing_queued_is_reported_from_the_loop) {
    fixture f;
    recording_connection& conn = f.connect();
    BOOST_REQUIRE(f.run_until([&] { return conn.connected; }));
    conn.queue_mark(1);
    BOOST_CHECK_EQUAL(conn.frames_done, 0u);
    BOOST_REQUIRE(f.run_until([&] { return conn.frames_done == 1; }));
    BOOST_CHECK_EQUAL(conn.posts, 1);  // the post that reported it also ran on_posted
}

BOOST_AUTO_TEST_CASE(close_reports_once_and_release_waits_for_the_loop) {
    fixture f;
    recording_connection& conn = f.connect();
    BOOST_REQUIRE(f.run_until([&] { return conn.connected && f.accepted.size() == 1; }));
    BOOST_CHECK_EQUAL(f.client->open_connections(), 1u);
    conn.queue_copy(as_bytes(std::string(1000, 'y')));
    conn.flush();
    conn.start_receiving();
    conn.close(5);
    conn.close(6);  // ignored
    BOOST_CHECK_EQUAL(conn.closes, 1);
    BOOST_CHECK_EQUAL(conn.reason, 5);
    BOOST_CHECK(!conn.open());
    BOOST_CHECK(!conn.released());  // the cancelled recv and send are not back yet
    BOOST_CHECK_EQUAL(f.client->open_connections(), 0u);
    BOOST_CHECK_EQUAL(f.client->connection_objects(), 1u);
    BOOST_REQUIRE(f.run_until([&] { return f.client->connection_objects() == 0; }));  // freed
    // The peer sees the end of stream and its protocol closes (reason 9 above).
    BOOST_REQUIRE(f.run_until([&] { return f.server_closes.size() == 1; }));
    BOOST_CHECK_EQUAL(f.server_closes[0], 9);
}

BOOST_AUTO_TEST_CASE(connections_beyond_the_limit_are_refused) {
    fixture f(1);
    recording_connection& first = f.connect();
    recording_connection& second = f.connect();
    BOOST_REQUIRE(f.run_until([&] { return f.outcomes.size() == 2 && first.connected && second.connected; }));
    BOOST_CHECK(f.outcomes[0] == accept_outcome::accepted);
    BOOST_CHECK(f.outcomes[1] == accept_outcome::refused);
    BOOST_CHECK_EQUAL(f.server->open_connections(), 1u);
    // The refused one sees its stream end; the first still works.
    second.start_receiving();
    BOOST_REQUIRE(f.run_until([&] { return f.client_closes.size() == 1; }));  // `second` is gone now
    BOOST_CHECK_EQUAL(f.client_closes[0], 9);
    first.queue_copy(as_bytes(std::string("ok")));
    first.flush();
    BOOST_REQUIRE(f.run_until([&] { return f.accepted[0]->received == "ok"; }));
}

BOOST_AUTO_TEST_CASE(a_failed_connect_is_reported_not_asserted) {
    fixture f;
    io_error io = io_error::none;
    // A port nobody listens on: listen, read the port, close.
    const socket_handle probe = f.loop.listen({.ipv4_host_order = loopback, .port = 0}, 1, io);
    const std::uint16_t port = f.loop.local_port(probe);
    f.loop.close(probe);
    const socket_handle socket = f.client->open_stream(io);
    auto& conn = f.client->add<recording_connection>(*f.client, socket);
    conn.connect({.ipv4_host_order = loopback, .port = port});
    BOOST_REQUIRE(f.run_until([&] { return conn.connected; }));
    BOOST_CHECK(conn.connect_result != io_error::none);
}

BOOST_AUTO_TEST_CASE(connect_slot_backs_off_and_resets) {
    vsr::xoshiro256 random(1);
    platform::connect_slot slot;
    BOOST_CHECK(slot.due(0));
    slot.lost(1'000, 10, 1'000, random);
    BOOST_CHECK_EQUAL(slot.attempts, 1u);
    BOOST_CHECK(!slot.due(1'000));
    BOOST_CHECK(slot.next_connect_ns >= 1'000 + 10 && slot.next_connect_ns <= 1'000 + 20);
    for (int i = 0; i < 20; i++) slot.lost(0, 10, 1'000, random);
    BOOST_CHECK(slot.next_connect_ns >= 500 && slot.next_connect_ns <= 1'000);  // capped at max
    slot.succeeded();
    BOOST_CHECK_EQUAL(slot.attempts, 0u);
}

BOOST_AUTO_TEST_CASE(count_accept_fills_a_protocols_counters) {
    struct with_refused {
        std::uint64_t accepted = 0, refused = 0, accept_errors = 0;
    } a;
    struct without_refused {
        std::uint64_t accepted = 0, accept_errors = 0;
    } b;
    BOOST_CHECK(platform::count_accept(accept_outcome::accepted, a));
    BOOST_CHECK(!platform::count_accept(accept_outcome::refused, a));
    BOOST_CHECK(!platform::count_accept(accept_outcome::failed, a));
    BOOST_CHECK(a.accepted == 1 && a.refused == 1 && a.accept_errors == 1);
    BOOST_CHECK(!platform::count_accept(accept_outcome::refused, b));  // no such field: an error
    BOOST_CHECK(!platform::count_accept(accept_outcome::failed, b));
    BOOST_CHECK(b.accepted == 0 && b.accept_errors == 2);
}

BOOST_AUTO_TEST_CASE(an_adopted_listen_socket_is_the_pools) {
    platform::event_loop loop;
    std::string error;
    BOOST_REQUIRE(loop.open(error));
    io_error io = io_error::none;
    const socket_handle listening = loop.listen({.ipv4_host_order = loopback, .port = 0}, 4, io);
    BOOST_REQUIRE(listening != platform::invalid_socket);
    {
        platform::connection_pool pool(loop, platform::connection_pool_options{.listen_socket = listening});
        BOOST_REQUIRE(pool.listen({}, io));
        BOOST_CHECK_EQUAL(pool.port(), loop.local_port(listening));
        pool.shutdown_and_drain(0);
        BOOST_CHECK(pool.drained());
    }
    // Never started, destroyed at once: the pool still closes it (no descriptor leaks).
    const socket_handle unused = loop.listen({.ipv4_host_order = loopback, .port = 0}, 4, io);
    BOOST_REQUIRE(unused != platform::invalid_socket);
    { platform::connection_pool pool(loop, platform::connection_pool_options{.listen_socket = unused}); }
}
