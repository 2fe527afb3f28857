#define BOOST_TEST_MODULE tcp_message_bus
// The header under test comes first: proves it is self-contained.
#include "platform/tcp_message_bus.hpp"

#ifndef BOOST_TEST_DYN_LINK  // meson's boost dependency may define it already
#define BOOST_TEST_DYN_LINK
#endif
#include <boost/test/unit_test.hpp>

#include <array>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <iterator>
#include <memory>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "loop_fixture.hpp"
namespace platform {
// Lets Boost.Test print hello_error values in failure messages.
std::ostream& operator<<(std::ostream& out, hello_error e) { return out << static_cast<int>(e); }
}  // namespace platform

namespace {

using platform::close_reason;
using platform::completion;
using platform::io_error;
using platform::socket_handle;

using platform_test::loopback;
using platform_test::ms;
using platform_test::raw_connection;
constexpr std::uint32_t cluster_id = 7;
constexpr int iterations_max = 4'000;  // bounds every wait loop (each run_once waits <= 5 ms)
constexpr std::size_t replica_count = 3;

std::size_t open_fd_count() {
    const std::filesystem::directory_iterator entries("/proc/self/fd");
    return static_cast<std::size_t>(std::distance(begin(entries), end(entries)));
}

std::vector<std::uint8_t> make_message(vsr::command cmd, std::uint8_t sender, std::uint8_t target,
                                       std::uint64_t client_id, std::size_t body_size = 16,
                                       std::uint32_t cluster = cluster_id) {
    vsr::header h;
    h.cmd = cmd;
    h.sender = sender;
    h.target = target;
    h.cluster = cluster;
    h.client_id = client_id;
    std::vector<std::uint8_t> body(body_size);
    for (std::size_t i = 0; i < body.size(); i++) body[i] = static_cast<std::uint8_t>(i * 7 + sender);
    std::vector<std::uint8_t> out;
    vsr::encode_message(h, body, out);
    return out;
}

std::vector<std::uint8_t> make_hello(platform::hello h) {
    std::vector<std::uint8_t> out(platform::hello_size);
    platform::encode_hello(h, std::span<std::uint8_t, platform::hello_size>(out.data(), out.size()));
    return out;
}

const platform::hello client_hello{
    .role = platform::hello_role::client, .replica = vsr::address_client, .cluster = cluster_id, .client_id = 99};

struct received_log {
    std::vector<std::vector<std::uint8_t>> messages;
};

struct cluster_fixture {
    platform::event_loop loop;
    std::vector<platform::socket_address> addresses;
    std::array<std::unique_ptr<platform::tcp_message_bus>, replica_count> replicas;
    std::array<received_log, replica_count> received;
    std::unique_ptr<platform::tcp_message_bus> client;
    received_log client_received;
    std::uint64_t idle_timeout_ns = 2'000 * ms;

    cluster_fixture() {
        std::string error;
        BOOST_REQUIRE_MESSAGE(loop.open(error), error);
        std::vector<socket_handle> listeners;
        for (std::size_t i = 0; i < replica_count; i++) {
            io_error io = io_error::none;
            listeners.push_back(loop.listen({.ipv4_host_order = loopback, .port = 0}, 128, io));
            BOOST_REQUIRE(listeners.back() != platform::invalid_socket);
            addresses.push_back({.ipv4_host_order = loopback, .port = loop.local_port(listeners.back())});
        }
        for (std::size_t i = 0; i < replica_count; i++) start_replica(i, listeners[i]);
    }

    platform::tcp_bus_options base_options() const {
        platform::tcp_bus_options options;
        options.cluster = cluster_id;
        options.replica_addresses = addresses;
        options.message_size_max = 64 * 1024;
        options.idle_timeout_ns = idle_timeout_ns;
        options.reconnect_backoff_min_ns = 10 * ms;
        options.reconnect_backoff_max_ns = 100 * ms;
        options.tick_ns = 5 * ms;
        return options;
    }

    void start_replica(std::size_t i, socket_handle listener) {
        platform::tcp_bus_options options = base_options();
        options.replica_index = static_cast<std::uint8_t>(i);
        options.listen_socket = listener;
        options.random_seed = 100 + i;
        options.on_message = [this, i](std::span<const std::uint8_t> m) {
            received[i].messages.emplace_back(m.begin(), m.end());
        };
        replicas[i] = std::make_unique<platform::tcp_message_bus>(loop, std::move(options));
        io_error error = io_error::none;
        BOOST_REQUIRE(replicas[i]->start(error));
    }

    std::unique_ptr<platform::tcp_message_bus> make_client(std::uint64_t process_id, received_log* log) {
        platform::tcp_bus_options options = base_options();
        options.role = platform::bus_role::client;
        options.client_process_id = process_id;
        options.random_seed = process_id;
        options.on_message = [log](std::span<const std::uint8_t> m) {
            if (log != nullptr) log->messages.emplace_back(m.begin(), m.end());
        };
        auto bus = std::make_unique<platform::tcp_message_bus>(loop, std::move(options));
        io_error error = io_error::none;
        BOOST_REQUIRE(bus->start(error));
        return bus;
    }

    bool run_until(const std::function<bool()>& done, int limit = iterations_max) {
        return platform_test::run_until(loop, done, limit);
    }

    bool fully_connected() const {
        for (std::size_t i = 0; i < replica_count; i++) {
            if (replicas[i] == nullptr || replicas[i]->status().connected_replicas.size() != replica_count - 1) {
                return false;
            }
        }
        return true;
    }

    // Sends one message from replica `from` to `to` and waits for it to arrive intact.
    bool replica_round(std::size_t from, std::size_t to) {
        const auto message =
            make_message(vsr::command::commit, static_cast<std::uint8_t>(from), static_cast<std::uint8_t>(to), 0);
        const std::size_t before = received[to].messages.size();
        // Retry: a connection that is being replaced may drop a send (VSR retries the same way).
        for (int attempt = 0; attempt < 50; attempt++) {
            replicas[from]->send_to_replica(static_cast<std::uint8_t>(to), message);
            if (run_until([&] { return received[to].messages.size() > before; }, 40)) {
                return received[to].messages.back() == message;
            }
        }
        return false;
    }

    platform::tcp_bus_counters counters(std::size_t i) const { return replicas[i]->counters(); }
};

// ---- hello frame and backoff ---------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(hello_frame)

BOOST_AUTO_TEST_CASE(round_trips_replica_and_client) {
    for (const platform::hello h :
         {platform::hello{.role = platform::hello_role::replica, .replica = 3, .cluster = 9, .client_id = 0},
          platform::hello{.role = platform::hello_role::client,
          .replica = vsr::address_client,
          .cluster = 9,
          .client_id = 0xDEADBEEF12345678}}) {
        const auto bytes = make_hello(h);
        platform::hello out;
        BOOST_TEST(static_cast<int>(platform::decode_hello(
                       std::span<const std::uint8_t, platform::hello_size>(bytes.data(), bytes.size()), 9, out)) ==
                   static_cast<int>(platform::hello_error::none));
        BOOST_TEST(static_cast<int>(out.role) == static_cast<int>(h.role));
        BOOST_TEST(out.replica == h.replica);
        BOOST_TEST(out.client_id == h.client_id);
    }
}

platform::hello_error decode(const std::vector<std::uint8_t>& bytes, std::uint32_t cluster) {
    platform::hello out;
    return platform::decode_hello(std::span<const std::uint8_t, platform::hello_size>(bytes.data(), bytes.size()),
                                  cluster, out);
}

BOOST_AUTO_TEST_CASE(rejects_every_corruption) {
    using platform::hello_error;
    const auto good = make_hello(client_hello);
    BOOST_TEST(decode(good, cluster_id) == hello_error::none);
    BOOST_TEST(decode(good, cluster_id + 1) == hello_error::wrong_cluster);
    // Every single-byte flip is caught (magic, version, or the checksum over everything).
    for (std::size_t i = 0; i < good.size(); i++) {
        auto bad = good;
        bad[i] ^= 0x01;
        BOOST_TEST(decode(bad, cluster_id) != hello_error::none, "byte " << i);
    }
    BOOST_TEST(decode(std::vector<std::uint8_t>(platform::hello_size, 0), cluster_id) == hello_error::bad_magic);
    // A client claiming a replica index, a replica claiming the client address: bad role.
    BOOST_TEST(
        decode(make_hello({.role = platform::hello_role::client, .replica = 1, .cluster = cluster_id, .client_id = 1}),
               cluster_id) == hello_error::bad_role);
    BOOST_TEST(decode(make_hello({.role = platform::hello_role::replica,
                                  .replica = vsr::address_client,
                                  .cluster = cluster_id,
                                  .client_id = 0}),
                      cluster_id) == hello_error::bad_role);
}

BOOST_AUTO_TEST_CASE(backoff_is_bounded_jittered_and_seeded) {
    constexpr std::uint64_t min = 10 * ms, max = 1'000 * ms;
    vsr::xoshiro256 random(42);
    BOOST_TEST(platform::backoff_delay_ns(0, min, max, random) == min);
    for (std::uint32_t attempt = 0; attempt < 100; attempt++) {
        const std::uint64_t delay = platform::backoff_delay_ns(attempt, min, max, random);
        BOOST_TEST(delay >= min);
        BOOST_TEST(delay <= max);
        if (attempt < 6) BOOST_TEST(delay <= (min << attempt));
        if (attempt < 6) BOOST_TEST(delay >= (min << attempt) / 2);
    }
    std::set<std::uint64_t> distinct;
    vsr::xoshiro256 a(7), b(7);
    for (int i = 0; i < 50; i++) {
        const std::uint64_t delay = platform::backoff_delay_ns(20, min, max, a);
        BOOST_TEST(delay >= max / 2);
        BOOST_TEST(delay == platform::backoff_delay_ns(20, min, max, b));  // same seed, same run
        distinct.insert(delay);
    }
    BOOST_TEST(distinct.size() > 10u);  // jittered, not a constant
}

BOOST_AUTO_TEST_SUITE_END()

// ---- the bus over real sockets -------------------------------------------------------------------

BOOST_FIXTURE_TEST_SUITE(bus, cluster_fixture)

BOOST_AUTO_TEST_CASE(replicas_connect_by_index_rule_and_exchange_both_ways) {
    BOOST_REQUIRE(run_until([&] { return fully_connected(); }));
    // i connects to j iff i < j: replica 0 accepts nothing, replica 2 connects to nobody.
    BOOST_TEST(counters(0).accepted == 0u);
    BOOST_TEST(counters(0).connected == 2u);
    BOOST_TEST(counters(2).connects_started == 0u);
    BOOST_TEST(counters(2).handshakes_accepted == 2u);
    for (std::size_t from = 0; from < replica_count; from++) {
        for (std::size_t to = 0; to < replica_count; to++) {
            if (from != to) BOOST_TEST(replica_round(from, to), from << " -> " << to);
        }
    }
    // A body of many KiB arrives intact too.
    const auto big = make_message(vsr::command::prepare, 2, 0, 0, 60 * 1024);
    replicas[2]->send_to_replica(0, big);
    BOOST_REQUIRE(run_until([&] { return !received[0].messages.empty() && received[0].messages.back() == big; }));
    for (std::size_t i = 0; i < replica_count; i++) BOOST_TEST(counters(i).closed_total() == 0u);
}

BOOST_AUTO_TEST_CASE(client_request_and_reply_are_routed_by_client_id) {
    constexpr std::uint64_t client_id = 0xC0FFEE;
    client = make_client(5, &client_received);
    // Replica 1 answers every request from inside its delivery callback.
    auto replica_options_reply = [&](std::span<const std::uint8_t> m) {
        received[1].messages.emplace_back(m.begin(), m.end());
        vsr::header h;
        BOOST_REQUIRE(vsr::decode_message(m, cluster_id, 64 * 1024, h) == vsr::decode_error::none);
        replicas[1]->send_to_client(h.client_id,
                                    make_message(vsr::command::reply, 1, vsr::address_client, h.client_id));
    };
    replicas[1].reset();
    {
        io_error io = io_error::none;
        const socket_handle listener = loop.listen(addresses[1], 128, io);
        BOOST_REQUIRE(listener != platform::invalid_socket);
        platform::tcp_bus_options options = base_options();
        options.replica_index = 1;
        options.listen_socket = listener;
        options.on_message = replica_options_reply;
        replicas[1] = std::make_unique<platform::tcp_message_bus>(loop, std::move(options));
        BOOST_REQUIRE(replicas[1]->start(io));
    }
    BOOST_REQUIRE(run_until([&] { return client->status().connected_replicas.size() == replica_count; }));
    const auto request = make_message(vsr::command::request, vsr::address_client, 1, client_id);
    BOOST_REQUIRE(run_until(
        [&] {
            client->send_to_replica(1, request);
            return !client_received.messages.empty();
        },
        400));
    vsr::header h;
    BOOST_REQUIRE(vsr::decode_message(client_received.messages.back(), cluster_id, 64 * 1024, h) ==
                  vsr::decode_error::none);
    BOOST_TEST(h.sender == 1);
    BOOST_TEST(h.client_id == client_id);
    BOOST_TEST(static_cast<int>(h.cmd) == static_cast<int>(vsr::command::reply));
    // Unknown clients and unconnected peers are dropped and counted, never queued.
    replicas[1]->send_to_client(12345, request);
    BOOST_TEST(counters(1).dropped_unknown_client == 1u);
    BOOST_TEST(replicas[1]->status().client_connections == 1u);
    // The route dies with its connection.
    client.reset();
    BOOST_REQUIRE(run_until([&] { return replicas[1]->status().client_connections == 0; }));
    replicas[1]->send_to_client(client_id, request);
    BOOST_TEST(counters(1).dropped_unknown_client == 2u);
}

BOOST_AUTO_TEST_CASE(full_send_queue_drops_newest_and_counts) {
    BOOST_REQUIRE(run_until([&] { return fully_connected(); }));
    replicas[0]->send_to_replica(0, make_message(vsr::command::commit, 0, 0, 0));
    BOOST_TEST(counters(0).dropped_invalid == 1u);  // to itself
    replicas[0]->send_to_replica(9, make_message(vsr::command::commit, 0, 9, 0));
    BOOST_TEST(counters(0).dropped_invalid == 2u);  // no such replica
    replicas[0]->send_to_replica(1, make_message(vsr::command::commit, 2, 1, 0));
    BOOST_TEST(counters(0).dropped_invalid == 3u);  // sender field is not us
    replicas[0]->send_to_replica(1, std::vector<std::uint8_t>(10, 0));
    BOOST_TEST(counters(0).dropped_invalid == 4u);  // shorter than a header
    const auto message = make_message(vsr::command::commit, 0, 1, 0);
    std::size_t sent = 0;
    for (; sent < 1000; sent++) replicas[0]->send_to_replica(1, message);
    BOOST_TEST(counters(0).dropped_queue_full > 0u);  // default limit is 256 messages
    BOOST_REQUIRE(run_until([&] { return received[1].messages.size() + counters(0).dropped_queue_full == sent; }));
}

// Each bad input closes just that connection, is counted, and the bus keeps serving.
BOOST_AUTO_TEST_CASE(bad_input_closes_connection_and_bus_keeps_serving) {
    BOOST_REQUIRE(run_until([&] { return fully_connected(); }));
    std::vector<std::uint8_t> huge = make_message(vsr::command::commit, vsr::address_client, 2, 1, 0);
    vsr::store_le32(huge.data() + 20, 0xFFFFFFF0u);  // body_size far beyond message_size_max
    std::vector<std::uint8_t> bad_checksum = make_message(vsr::command::request, vsr::address_client, 2, 1);
    bad_checksum.back() ^= 0xFF;
    struct bad_case {
        const char* name;
        std::vector<std::uint8_t> hello;  // empty: garbage replaces the hello
        std::vector<std::uint8_t> payload;
        close_reason reason;
    };
    const std::vector<std::uint8_t> garbage(64, 0xAB);
    const std::vector<bad_case> cases = {
        {"garbage", {}, garbage, close_reason::bad_hello},
        {"zero header", make_hello(client_hello), std::vector<std::uint8_t>(80, 0), close_reason::bad_header},
        {"huge body_size", make_hello(client_hello), huge, close_reason::bad_header},
        {"wrong cluster", make_hello(client_hello),
         make_message(vsr::command::request, vsr::address_client, 2, 1, 16, cluster_id + 1), close_reason::bad_header},
        {"bad checksum", make_hello(client_hello), bad_checksum, close_reason::bad_message},
        {"lying sender", make_hello(client_hello), make_message(vsr::command::commit, 0, 2, 1),
         close_reason::wrong_sender},
        {"hello of other cluster",
         make_hello({.role = platform::hello_role::client,
                     .replica = vsr::address_client,
                     .cluster = cluster_id + 1,
                     .client_id = 1}),
         {},
         close_reason::bad_hello},
        {"replica 2 posing as replica 0's peer above it",
         make_hello({.role = platform::hello_role::replica, .replica = 2, .cluster = cluster_id, .client_id = 0}),
         {},
         close_reason::bad_hello},
    };
    for (const bad_case& c : cases) {
        BOOST_TEST_CONTEXT(c.name) {
            const std::uint64_t before = counters(2).closed_by(c.reason);
            raw_connection raw(loop);
            raw.start_connect(addresses[2]);
            if (!c.hello.empty()) raw.send(c.hello);
            if (!c.payload.empty()) raw.send(c.payload);
            BOOST_TEST(raw.wait_closed());
            BOOST_TEST(run_until([&] { return counters(2).closed_by(c.reason) == before + 1; }));
            BOOST_TEST(replica_round(0, 2));
            BOOST_TEST(replica_round(2, 1));
        }
    }
    BOOST_TEST(counters(2).handshakes_rejected == 3u);
    BOOST_TEST(counters(2).hello_implausible == 1u);
    BOOST_TEST(replicas[2]->status().connected_replicas.size() == 2u);
    BOOST_TEST(replicas[2]->status().connections == 2u);  // every bad connection was released
}

BOOST_AUTO_TEST_CASE(killed_peer_is_reconnected_when_it_comes_back) {
    BOOST_REQUIRE(run_until([&] { return fully_connected(); }));
    replicas[2].reset();
    BOOST_REQUIRE(run_until([&] { return replicas[0]->status().connected_replicas.size() == 1; }));
    BOOST_REQUIRE(run_until([&] { return replicas[1]->status().connected_replicas.size() == 1; }));
    replicas[0]->send_to_replica(2, make_message(vsr::command::commit, 0, 2, 0));
    BOOST_TEST(counters(0).dropped_not_connected >= 1u);
    // Let a few reconnect attempts fail (refused) before the peer returns.
    BOOST_REQUIRE(run_until([&] { return counters(0).closed_by(close_reason::connect_failed) >= 3; }));
    io_error io = io_error::none;
    const socket_handle listener = loop.listen(addresses[2], 128, io);
    BOOST_REQUIRE(listener != platform::invalid_socket);
    received[2].messages.clear();
    start_replica(2, listener);
    BOOST_REQUIRE(run_until([&] { return fully_connected(); }));
    BOOST_TEST(replica_round(0, 2));
    BOOST_TEST(replica_round(2, 1));
}

BOOST_AUTO_TEST_CASE(client_connect_close_cycles_do_not_leak) {
    BOOST_REQUIRE(run_until([&] { return fully_connected(); }));
    const std::size_t fds_before = open_fd_count();
    for (std::uint64_t cycle = 0; cycle < 500; cycle++) {
        auto cycle_client = make_client(1000 + cycle, nullptr);
        // Connected on both ends: every replica has read this client's hello.
        BOOST_REQUIRE(run_until([&] {
            if (cycle_client->status().connected_replicas.size() != replica_count) return false;
            for (const auto& replica : replicas) {
                if (replica->status().client_connections != 1) return false;
            }
            return true;
        }));
        cycle_client.reset();
        BOOST_REQUIRE(run_until([&] {
            for (const auto& replica : replicas) {
                if (replica->status().client_connections != 0) return false;
            }
            return true;
        }));
    }
    for (std::size_t i = 0; i < replica_count; i++) {
        BOOST_TEST(counters(i).handshakes_accepted == 500u + i);  // plus replica peers below i
        BOOST_TEST(counters(i).closed_by(close_reason::peer_closed) == 500u);
    }
    BOOST_REQUIRE(run_until([&] {
        for (const auto& replica : replicas) {
            if (replica->status().client_connections != 0) return false;
        }
        return true;
    }));
    BOOST_TEST(open_fd_count() == fds_before);
    for (std::size_t i = 0; i < replica_count; i++) {
        BOOST_TEST(replicas[i]->status().connections == replica_count - 1);
    }
    BOOST_TEST(replica_round(1, 2));
}

BOOST_AUTO_TEST_CASE(too_many_clients_are_closed_at_once) {
    BOOST_REQUIRE(run_until([&] { return fully_connected(); }));
    replicas[0].reset();
    io_error io = io_error::none;
    const socket_handle listener = loop.listen(addresses[0], 128, io);
    BOOST_REQUIRE(listener != platform::invalid_socket);
    platform::tcp_bus_options options = base_options();
    options.replica_index = 0;
    options.listen_socket = listener;
    options.client_connections_max = 2;
    replicas[0] = std::make_unique<platform::tcp_message_bus>(loop, std::move(options));
    BOOST_REQUIRE(replicas[0]->start(io));
    std::vector<std::unique_ptr<raw_connection>> raws;
    for (int i = 0; i < 4; i++) {
        raws.push_back(std::make_unique<raw_connection>(loop));
        raws.back()->start_connect(addresses[0]);
        raws.back()->send(make_hello(client_hello));
    }
    BOOST_REQUIRE(run_until([&] { return counters(0).closed_by(close_reason::too_many_clients) == 2; }));
    BOOST_TEST(replicas[0]->status().client_connections == 2u);
    BOOST_TEST(raws[3]->wait_closed());
}

BOOST_AUTO_TEST_SUITE_END()

// Timeouts: replica 2 alone, with a short idle timeout.
BOOST_AUTO_TEST_CASE(slowloris_and_silent_connections_are_closed) {
    cluster_fixture f;
    for (auto& replica : f.replicas) replica.reset();
    f.idle_timeout_ns = 400 * ms;
    // Restart only replica 2 with the short timeout; it listens alone.
    io_error io = io_error::none;
    const socket_handle listener = f.loop.listen(f.addresses[2], 128, io);
    BOOST_REQUIRE(listener != platform::invalid_socket);
    f.start_replica(2, listener);

    // Slowloris: a valid hello, then a header one byte per tick. Bytes keep coming, so only the
    // started-message deadline can catch it.
    raw_connection slow(f.loop);
    slow.start_connect(f.addresses[2]);
    slow.send(make_hello(client_hello));
    const auto message = make_message(vsr::command::request, vsr::address_client, 2, 1);
    for (std::size_t i = 0; i < message.size() && f.counters(2).closed_total() == 0; i++) {
        slow.send(std::vector<std::uint8_t>{message[i]});
        for (int tick = 0; tick < 5; tick++) f.loop.run_once(5 * ms);
    }
    BOOST_TEST(f.counters(2).closed_by(close_reason::slow_message) == 1u);
    BOOST_TEST(slow.wait_closed());

    // Half-open or silent: connected (even after a good hello) and then nothing at all.
    raw_connection silent(f.loop);
    silent.start_connect(f.addresses[2]);
    silent.send(make_hello(client_hello));
    BOOST_TEST(silent.wait_closed());
    BOOST_TEST(f.counters(2).closed_by(close_reason::idle_timeout) == 1u);
    BOOST_TEST(f.replicas[2]->status().connections == 0u);
}

}  // namespace

namespace {

BOOST_AUTO_TEST_CASE(keepalive_frame_round_trips_and_rejects_corruption) {
    std::array<std::uint8_t, vsr::header_size> frame{};
    platform::encode_keepalive(cluster_id, 1, frame);
    BOOST_TEST(platform::is_keepalive(frame, cluster_id));
    BOOST_TEST(!platform::is_keepalive(frame, cluster_id + 1));
    for (std::size_t i = 0; i < frame.size(); i++) {
        auto corrupt = frame;
        corrupt[i] ^= 0x01;
        BOOST_TEST(!platform::is_keepalive(corrupt, cluster_id), "byte " << i);
    }
    // A real message is never a keepalive (its command is never 0).
    const auto message = make_message(vsr::command::commit, 0, 1, 0);
    BOOST_TEST(!platform::is_keepalive(
        std::span<const std::uint8_t, vsr::header_size>(message.data(), vsr::header_size), cluster_id));
}

// Only the exact frame is a keepalive: a command-0 header resealed with any other field set (a
// view, a target, the reserved bytes) is a bad header, as the format promises. Found by
// tests/fuzz/tcp_bus_fuzz (regression input keepalive_with_nonzero_view_accepted).
BOOST_AUTO_TEST_CASE(keepalive_with_any_other_field_set_is_not_a_keepalive) {
    std::array<std::uint8_t, vsr::header_size> frame{};
    platform::encode_keepalive(cluster_id, 1, frame);
    for (std::size_t i = 8; i < frame.size(); i++) {
        if (i == 11) continue;  // the sender: any identity may send one
        auto changed = frame;
        changed[i] ^= 0x01;
        vsr::seal(changed, cluster_id);
        BOOST_TEST(!platform::is_keepalive(changed, cluster_id), "byte " << i);
    }
}

// Idle but healthy connections (nothing to say for many idle timeouts) stay open: each side
// sends keepalives, the other counts and drops them, and nothing is delivered to on_message.
BOOST_AUTO_TEST_CASE(idle_connections_are_kept_alive) {
    cluster_fixture f;
    for (auto& replica : f.replicas) replica.reset();
    f.idle_timeout_ns = 300 * ms;
    for (std::size_t i = 0; i < replica_count; i++) {
        io_error io = io_error::none;
        const socket_handle listener = f.loop.listen(f.addresses[i], 128, io);
        BOOST_REQUIRE(listener != platform::invalid_socket);
        f.start_replica(i, listener);
    }
    received_log client_log;
    auto client = f.make_client(77, &client_log);
    BOOST_REQUIRE(f.run_until(
        [&] { return f.fully_connected() && client->status().connected_replicas.size() == replica_count; }));
    std::array<std::uint64_t, replica_count> closed_before{};
    for (std::size_t i = 0; i < replica_count; i++) closed_before[i] = f.counters(i).closed_total();
    // Ten idle timeouts of silence.
    const std::uint64_t until = f.loop.monotonic_ns() + 3000 * ms;
    while (f.loop.monotonic_ns() < until) f.loop.run_once(5 * ms);
    for (std::size_t i = 0; i < replica_count; i++) {
        BOOST_TEST(f.counters(i).closed_total() == closed_before[i], "replica " << i);
        BOOST_TEST(f.counters(i).keepalives_sent > 0u);
        BOOST_TEST(f.counters(i).keepalives_received > 0u);
        BOOST_TEST(f.received[i].messages.empty());
        BOOST_TEST(f.replicas[i]->status().client_connections == 1u);
    }
    BOOST_TEST(client->counters().keepalives_sent > 0u);
    BOOST_TEST(client->counters().closed_total() == 0u);
    BOOST_TEST(client_log.messages.empty());
    BOOST_TEST(f.fully_connected());
    // Traffic still flows after the quiet period.
    BOOST_TEST(f.replica_round(2, 0));
}

}  // namespace
