#define BOOST_TEST_MODULE chunk_transport
// The header under test comes first: proves it is self-contained.
#include "platform/chunk_transport.hpp"

#ifndef BOOST_TEST_DYN_LINK  // meson's boost dependency may define it already
#define BOOST_TEST_DYN_LINK
#endif
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "vsr/checksum.hpp"

#include "loop_fixture.hpp"

namespace {

using platform::chunk_close_reason;
using platform::completion;
using platform::io_error;
using platform::socket_address;
using platform::socket_handle;
using toastyfs::frame_error;
using toastyfs::frame_header;
using toastyfs::frame_kind;

using platform_test::loopback;
using platform_test::ms;
using platform_test::raw_connection;
constexpr std::uint32_t cluster_id = 11;
constexpr int iterations_max = 1'000;  // bounds every wait loop (each run_once waits <= 5 ms)
constexpr std::size_t mib = 1u << 20;

using bytes = std::vector<std::uint8_t>;
using shared_bytes = std::shared_ptr<const bytes>;

shared_bytes pattern(std::size_t size, std::uint8_t seed) {
    auto out = std::make_shared<bytes>(size);
    for (std::size_t i = 0; i < size; i++) (*out)[i] = static_cast<std::uint8_t>(i * 31 + seed + (i >> 12));
    return out;
}

frame_header request_header(frame_kind kind, std::uint64_t request_id) {
    frame_header h;
    h.kind = kind;
    h.request_id = request_id;
    h.cluster = cluster_id;
    h.sha256[0] = static_cast<std::uint8_t>(request_id);
    h.argument = request_id + 7;
    return h;
}

// A whole frame (header and body) as a hostile or fake peer would send it.
bytes make_frame(const frame_header& h, std::span<const std::uint8_t> body = {}) {
    std::array<std::uint8_t, toastyfs::frame_header_size> header{};
    toastyfs::encode_frame_header(h, body, header);
    bytes out(header.begin(), header.end());
    out.resize(header.size() + body.size());
    std::copy(body.begin(), body.end(), out.begin() + static_cast<std::ptrdiff_t>(header.size()));
    return out;
}

// Recomputes the header checksum after a test patched a field (with the frame's own cluster).
void reseal(bytes& frame) {
    const auto cluster = vsr::load_le32(frame.data() + 8);
    vsr::store_le64(frame.data() + 88, vsr::checksum({frame.data(), 88}, cluster));
}

bytes oversized_header(std::uint64_t body_size, bool reply) {
    frame_header h = request_header(frame_kind::write, 1);
    h.reply = reply;
    bytes frame = make_frame(h);
    vsr::store_le64(frame.data() + 24, body_size);
    reseal(frame);
    return frame;
}

// A fake storage node: accepts the client's connection and sends whatever the test scripts.
// It never reads, so requests pile up in its socket buffer.
struct fake_node {
    platform::event_loop& loop;
    socket_handle listener = platform::invalid_socket;
    socket_address address{};
    socket_handle peer = platform::invalid_socket;
    completion accept_c, send_c;
    bool accept_pending = false, send_pending = false;

    explicit fake_node(platform::event_loop& l) : loop(l) {
        io_error error = io_error::none;
        listener = loop.listen({.ipv4_host_order = loopback, .port = 0}, 16, error);
        BOOST_REQUIRE(listener != platform::invalid_socket);
        address = {.ipv4_host_order = loopback, .port = loop.local_port(listener)};
        for (completion* c : {&accept_c, &send_c}) c->context = this;
        accept_c.callback = [](completion& c) {
            auto* self = static_cast<fake_node*>(c.context);
            self->accept_pending = false;
            if (c.error == io_error::none) self->peer = c.accepted;
        };
        send_c.callback = [](completion& c) { static_cast<fake_node*>(c.context)->send_pending = false; };
    }
    ~fake_node() {
        loop.close(peer);
        loop.close(listener);
        for (int i = 0; i < 10 && (accept_pending || send_pending); i++) loop.run_once(0);
    }
    bool accept() {
        drop();
        accept_pending = true;
        loop.accept(listener, accept_c);
        for (int i = 0; i < iterations_max && accept_pending; i++) loop.run_once(5 * ms);
        return peer != platform::invalid_socket;
    }
    void send(const bytes& data) {
        send_pending = true;
        loop.send(peer, data, send_c);
        for (int i = 0; i < iterations_max && send_pending; i++) loop.run_once(5 * ms);
    }
    void drop() {
        loop.close(peer);
        peer = platform::invalid_socket;
    }
};

struct reply_record {
    std::uint8_t node;
    frame_header header;
    bytes body;
};

struct disconnect_record {
    std::uint8_t node;
    std::vector<std::uint64_t> ids;
};

struct fixture {
    platform::event_loop loop;
    std::vector<std::unique_ptr<platform::chunk_server>> servers;
    std::vector<socket_address> addresses;
    std::unique_ptr<platform::chunk_client> client;
    std::vector<reply_record> replies;
    std::vector<disconnect_record> disconnects;
    std::vector<std::uint8_t> connects;
    std::size_t handled = 0;
    bool check_one_at_a_time = false;
    bool one_at_a_time_violated = false;

    fixture() {
        std::string error;
        BOOST_REQUIRE_MESSAGE(loop.open(error), error);
    }
    // Destroy the client first: its destructor may still see server completions.
    ~fixture() {
        client.reset();
        servers.clear();
    }

    // The echo handler: reply body = request body; token names the node and the request.
    void echo(std::size_t index, const frame_header& request, std::span<const std::uint8_t> body, frame_header& reply,
              bytes& reply_body) {
        handled++;
        const auto& c = servers[index]->counters();
        // The previous reply is fully sent before the next request is read.
        if (check_one_at_a_time && c.replies + 1 != c.requests) one_at_a_time_violated = true;
        reply_body.assign(body.begin(), body.end());
        reply.token = request.request_id * 100 + index;
        reply.argument = request.argument;
    }

    std::size_t add_server(const std::function<void(platform::chunk_server_options&)>& configure = {},
                           socket_address at = {.ipv4_host_order = loopback, .port = 0}) {
        io_error io = io_error::none;
        const socket_handle listener = loop.listen(at, 128, io);
        BOOST_REQUIRE(listener != platform::invalid_socket);
        const std::size_t index = servers.size();
        platform::chunk_server_options options;
        options.cluster = cluster_id;
        options.listen_socket = listener;
        options.tick_ns = 5 * ms;
        options.handler = [this, index](const frame_header& request, std::span<const std::uint8_t> body,
                                        frame_header& reply,
                                        bytes& reply_body) { echo(index, request, body, reply, reply_body); };
        if (configure) configure(options);
        servers.push_back(std::make_unique<platform::chunk_server>(loop, std::move(options)));
        BOOST_REQUIRE(servers.back()->start(io));
        addresses.push_back({.ipv4_host_order = loopback, .port = servers.back()->port()});
        return index;
    }

    void restart_server(std::size_t index) {
        io_error io = io_error::none;
        const socket_handle listener = loop.listen(addresses[index], 128, io);
        BOOST_REQUIRE(listener != platform::invalid_socket);
        platform::chunk_server_options options;
        options.cluster = cluster_id;
        options.listen_socket = listener;
        options.tick_ns = 5 * ms;
        options.handler = [this, index](const frame_header& request, std::span<const std::uint8_t> body,
                                        frame_header& reply,
                                        bytes& reply_body) { echo(index, request, body, reply, reply_body); };
        servers[index] = std::make_unique<platform::chunk_server>(loop, std::move(options));
        BOOST_REQUIRE(servers[index]->start(io));
    }

    void make_client(std::vector<socket_address> nodes,
                     const std::function<void(platform::chunk_client_options&)>& configure = {}, bool start = true) {
        platform::chunk_client_options options;
        options.cluster = cluster_id;
        options.node_addresses = std::move(nodes);
        options.reconnect_backoff_min_ns = 10 * ms;
        options.reconnect_backoff_max_ns = 40 * ms;
        options.tick_ns = 5 * ms;
        options.random_seed = 42;
        options.on_reply = [this](std::uint8_t node, const frame_header& h, bytes&& body) {
            replies.push_back({node, h, std::move(body)});
        };
        options.on_disconnect = [this](std::uint8_t node, std::vector<std::uint64_t> ids) {
            disconnects.push_back({node, std::move(ids)});
        };
        options.on_connect = [this](std::uint8_t node) { connects.push_back(node); };
        if (configure) configure(options);
        client = std::make_unique<platform::chunk_client>(loop, std::move(options));
        if (start) client->start();
    }

    bool run_until(const std::function<bool()>& done, int limit = iterations_max) {
        return platform_test::run_until(loop, done, limit);
    }

    bool all_connected() const {
        for (std::size_t node = 0; node < addresses.size(); node++) {
            if (!client->connected(static_cast<std::uint8_t>(node))) return false;
        }
        return true;
    }

    // Sends one request and waits for its reply; checks the reply echoes it.
    bool round_trip(std::uint8_t node, frame_kind kind, std::uint64_t id, const shared_bytes& body) {
        const std::size_t before = replies.size();
        if (!client->send(node, request_header(kind, id), body)) return false;
        if (!run_until([&] { return replies.size() > before; })) return false;
        const reply_record& r = replies.back();
        const std::size_t size = body ? body->size() : 0;
        return r.node == node && r.header.reply && r.header.kind == kind && r.header.request_id == id &&
               r.header.status == toastyfs::frame_status::ok && r.header.token == id * 100 + node &&
               r.header.argument == id + 7 && r.header.body_size == size && r.body == (body ? *body : bytes{});
    }
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(chunk_transport, fixture)

BOOST_AUTO_TEST_CASE(round_trip_every_kind_and_body_size) {
    add_server();
    make_client(addresses);
    BOOST_REQUIRE(run_until([&] { return all_connected(); }));
    BOOST_TEST(connects == std::vector<std::uint8_t>{0});
    const std::vector<shared_bytes> bodies = {nullptr, pattern(1, 1), pattern(mib, 2), pattern(16 * mib, 3)};
    std::uint64_t id = 1;
    for (std::uint8_t kind = 1; kind <= toastyfs::frame_kind_max; kind++) {
        for (const shared_bytes& body : bodies) {
            BOOST_TEST(round_trip(0, static_cast<frame_kind>(kind), id++, body),
                       "kind " << int{kind} << " size " << (body ? body->size() : 0));
        }
    }
    // An empty (not null) body is an empty frame too.
    BOOST_TEST(round_trip(0, frame_kind::stat, id++, std::make_shared<bytes>()));
    const auto& s = servers[0]->counters();
    BOOST_TEST(s.requests == id - 1);
    BOOST_TEST(s.replies == id - 1);
    BOOST_TEST(s.accepted == 1u);
    BOOST_TEST(s.bytes_received == client->counters().bytes_sent);
    BOOST_TEST(client->counters().replies == id - 1);
    BOOST_TEST(client->counters().requests_sent == id - 1);
    // Large buffers were released after their frames: an idle connection holds little.
    BOOST_TEST(servers[0]->status().buffer_bytes <= 2 * mib);
    BOOST_TEST(client->status()[0].outstanding == 0u);
    BOOST_TEST(client->status()[0].queued_bytes == 0u);
}

BOOST_AUTO_TEST_CASE(pipelined_requests_are_answered_in_order_one_at_a_time) {
    add_server();
    make_client(addresses);
    BOOST_REQUIRE(run_until([&] { return all_connected(); }));
    check_one_at_a_time = true;
    std::vector<std::uint64_t> sent;
    for (std::uint64_t i = 0; i < 100; i++) {
        const std::uint64_t id = 1000 + i * 3;
        const std::size_t before = replies.size();
        // Replies of up to 256 KiB take several loop rounds to send: the server must not read on.
        const shared_bytes body = i % 10 == 0 ? pattern(256 * 1024, 9) : pattern(i * 37, 5);
        BOOST_REQUIRE(client->send(0, request_header(frame_kind::write, id), body));
        BOOST_TEST(replies.size() == before);  // never a callback from inside send()
        sent.push_back(id);
    }
    BOOST_TEST(client->status()[0].outstanding == 100u);
    BOOST_REQUIRE(run_until([&] { return replies.size() == sent.size(); }));
    for (std::size_t i = 0; i < sent.size(); i++) BOOST_TEST(replies[i].header.request_id == sent[i]);
    BOOST_TEST(!one_at_a_time_violated);
    BOOST_TEST(handled == sent.size());
    BOOST_TEST(client->status()[0].outstanding == 0u);
}

BOOST_AUTO_TEST_CASE(replies_are_routed_by_node_and_request_id) {
    add_server();
    add_server();
    make_client(addresses);
    BOOST_REQUIRE(run_until([&] { return all_connected(); }));
    // The same chunk to both nodes, shared; the same id may be outstanding on different nodes.
    const shared_bytes chunk = pattern(100'000, 4);
    for (std::uint64_t id = 1; id <= 20; id++) {
        BOOST_REQUIRE(client->send(static_cast<std::uint8_t>(id % 2), request_header(frame_kind::write, id), chunk));
        BOOST_REQUIRE(
            client->send(static_cast<std::uint8_t>(1 - id % 2), request_header(frame_kind::read, id), nullptr));
    }
    BOOST_TEST(chunk.use_count() > 1);  // held, not copied, until on the socket
    BOOST_REQUIRE(run_until([&] { return replies.size() == 40; }));
    BOOST_TEST(chunk.use_count() == 1);  // released once sent
    for (const reply_record& r : replies) {
        BOOST_TEST(r.header.token == r.header.request_id * 100 + r.node);
        const bool write_node = r.node == r.header.request_id % 2;
        BOOST_TEST((r.header.kind == (write_node ? frame_kind::write : frame_kind::read)));
        BOOST_TEST(r.body.size() == (write_node ? chunk->size() : 0u));
    }
    // Invalid requests are refused at once and counted.
    BOOST_TEST(client->send(0, request_header(frame_kind::read, 5), nullptr));
    BOOST_TEST(!client->send(0, request_header(frame_kind::read, 5), nullptr));  // id outstanding
    BOOST_TEST(!client->send(7, request_header(frame_kind::read, 6), nullptr));  // no such node
    BOOST_TEST(!client->send(0, request_header(static_cast<frame_kind>(9), 6), nullptr));
    BOOST_TEST(client->counters().refused_invalid == 3u);
    BOOST_REQUIRE(run_until([&] { return replies.size() == 41; }));
}

BOOST_AUTO_TEST_CASE(send_is_refused_when_not_connected_or_queue_full) {
    add_server();
    make_client(
        addresses,
        [](platform::chunk_client_options& o) {
            o.queue_frames_max = 4;
            o.queue_bytes_max = mib;
        },
        false);
    BOOST_TEST(!client->connected(0));
    BOOST_TEST(!client->send(0, request_header(frame_kind::read, 1), nullptr));
    BOOST_TEST(client->counters().refused_not_connected == 1u);
    client->start();
    BOOST_REQUIRE(run_until([&] { return all_connected(); }));
    // Nothing runs the loop between these sends, so nothing leaves the queue.
    const shared_bytes big = pattern(600 * 1024, 1);
    BOOST_TEST(client->send(0, request_header(frame_kind::write, 1), big));
    BOOST_TEST(!client->send(0, request_header(frame_kind::write, 2), big));  // bytes
    BOOST_TEST(client->send(0, request_header(frame_kind::read, 3), nullptr));
    BOOST_TEST(client->send(0, request_header(frame_kind::read, 4), nullptr));
    BOOST_TEST(client->send(0, request_header(frame_kind::read, 5), nullptr));
    BOOST_TEST(!client->send(0, request_header(frame_kind::read, 6), nullptr));  // frames
    BOOST_TEST(client->counters().refused_queue_full == 2u);
    BOOST_TEST(client->status()[0].queued_frames == 4u);
    BOOST_TEST(client->status()[0].queued_bytes == big->size());
    BOOST_REQUIRE(run_until([&] { return replies.size() == 4; }));
    BOOST_TEST(round_trip(0, frame_kind::write, 2, big));  // room again
}

BOOST_AUTO_TEST_CASE(server_loss_reports_outstanding_and_reconnects_on_the_same_port) {
    add_server();
    make_client(addresses);
    BOOST_REQUIRE(run_until([&] { return all_connected(); }));
    BOOST_REQUIRE(round_trip(0, frame_kind::stat, 1, nullptr));
    for (std::uint64_t id : {10, 11, 12}) {
        BOOST_REQUIRE(client->send(0, request_header(frame_kind::read, id), nullptr));
    }
    servers[0].reset();  // its destructor closes everything before reading the requests
    BOOST_REQUIRE(run_until([&] { return !disconnects.empty(); }));
    BOOST_TEST(disconnects.size() == 1u);
    BOOST_TEST(disconnects[0].node == 0);
    BOOST_TEST(disconnects[0].ids == (std::vector<std::uint64_t>{10, 11, 12}));
    BOOST_TEST(!client->connected(0));
    BOOST_TEST(!client->send(0, request_header(frame_kind::read, 13), nullptr));
    // A few reconnects fail (refused) before the node comes back on the same port.
    BOOST_REQUIRE(run_until([&] { return client->counters().connect_failures >= 2; }));
    BOOST_TEST(disconnects.size() == 1u);  // failed connects were never connections
    restart_server(0);
    BOOST_REQUIRE(run_until([&] { return all_connected(); }));
    BOOST_TEST(connects.size() == 2u);
    BOOST_TEST(round_trip(0, frame_kind::read, 14, pattern(10, 1)));
    BOOST_TEST(client->counters().connects == 2u);
}

// Each hostile input closes only its own connection, is counted, and the server keeps serving.
BOOST_AUTO_TEST_CASE(hostile_bytes_close_only_their_connection) {
    add_server();
    make_client(addresses);
    BOOST_REQUIRE(run_until([&] { return all_connected(); }));
    const shared_bytes body = pattern(100, 6);
    bytes wrong_cluster_frame;
    {
        frame_header h = request_header(frame_kind::read, 1);
        h.cluster = cluster_id + 1;
        wrong_cluster_frame = make_frame(h);
    }
    bytes bad_checksum = make_frame(request_header(frame_kind::read, 1));
    bad_checksum[64] ^= 0x01;
    bytes bad_body = make_frame(request_header(frame_kind::write, 1), *body);
    bad_body.back() ^= 0x01;
    frame_header reply_h = request_header(frame_kind::read, 1);
    reply_h.reply = true;
    bytes truncated = make_frame(request_header(frame_kind::write, 1), *body);
    truncated.resize(toastyfs::frame_header_size + 50);
    struct hostile_case {
        const char* name;
        bytes payload;
        chunk_close_reason reason;
        frame_error error;  // none: no frame error expected
        bool close_after_send;
    };
    const std::vector<hostile_case> cases = {
        {"garbage", bytes(96, 0xAB), chunk_close_reason::bad_header, frame_error::bad_magic, false},
        {"wrong cluster", wrong_cluster_frame, chunk_close_reason::bad_header, frame_error::wrong_cluster, false},
        {"bad checksum", bad_checksum, chunk_close_reason::bad_header, frame_error::bad_checksum, false},
        {"body over limit", oversized_header((64u << 20) + 1, false), chunk_close_reason::bad_header,
         frame_error::too_large, false},
        {"body checksum mismatch", bad_body, chunk_close_reason::bad_body, frame_error::none, false},
        {"a reply sent to the server", make_frame(reply_h), chunk_close_reason::wrong_direction, frame_error::none,
         false},
        {"truncated frame then close", truncated, chunk_close_reason::peer_closed, frame_error::none, true},
    };
    std::uint64_t id = 100;
    for (const hostile_case& c : cases) {
        BOOST_TEST_CONTEXT(c.name) {
            const auto before = servers[0]->counters();
            {
                raw_connection raw(loop);
                raw.start_connect(addresses[0]);
                raw.send(c.payload);
                if (c.close_after_send) {
                    raw.close();
                } else {
                    BOOST_TEST(raw.wait_closed());
                }
                BOOST_TEST(run_until(
                    [&] { return servers[0]->counters().closed_by(c.reason) == before.closed_by(c.reason) + 1; }));
            }
            if (c.error != frame_error::none) {
                BOOST_TEST(servers[0]->counters().frame_errors_of(c.error) == before.frame_errors_of(c.error) + 1);
            }
            BOOST_TEST(servers[0]->counters().requests == before.requests);  // never handled
            BOOST_TEST(client->connected(0));
            BOOST_TEST(round_trip(0, frame_kind::write, id++, body));
        }
    }
    BOOST_TEST(disconnects.empty());
    BOOST_REQUIRE(run_until([&] { return servers[0]->status().connection_objects == 1; }));
    BOOST_TEST(servers[0]->status().connections == 1u);
    BOOST_TEST(servers[0]->counters().accepted == cases.size() + 1);
}

BOOST_AUTO_TEST_CASE(connections_beyond_the_limit_are_refused) {
    add_server([](platform::chunk_server_options& o) { o.connections_max = 2; });
    raw_connection first(loop), second(loop), third(loop);
    first.start_connect(addresses[0]);
    second.start_connect(addresses[0]);
    BOOST_REQUIRE(run_until([&] { return servers[0]->status().connections == 2; }));
    third.start_connect(addresses[0]);
    BOOST_TEST(third.wait_closed());
    BOOST_TEST(servers[0]->counters().refused == 1u);
    BOOST_TEST(servers[0]->counters().accepted == 2u);
    first.close();
    BOOST_REQUIRE(run_until([&] { return servers[0]->status().connections == 1; }));
    make_client(addresses);
    BOOST_REQUIRE(run_until([&] { return all_connected(); }));
    BOOST_TEST(round_trip(0, frame_kind::read, 1, pattern(5, 5)));
    BOOST_TEST(servers[0]->counters().refused == 1u);
}

BOOST_AUTO_TEST_CASE(slowloris_and_silent_connections_are_closed) {
    add_server([](platform::chunk_server_options& o) {
        o.frame_timeout_ns = 150 * ms;
        o.idle_timeout_ns = 300 * ms;
    });
    // Slowloris: a valid header one byte every ~20 ms. Bytes keep coming, so only the
    // started-frame deadline catches it.
    raw_connection slow(loop);
    slow.start_connect(addresses[0]);
    const bytes frame = make_frame(request_header(frame_kind::read, 1));
    for (std::size_t i = 0; i < frame.size() && servers[0]->counters().closed_by(chunk_close_reason::slow_frame) == 0;
         i++) {
        slow.send(bytes{frame[i]});
        for (int tick = 0; tick < 4; tick++) loop.run_once(5 * ms);
    }
    BOOST_TEST(servers[0]->counters().closed_by(chunk_close_reason::slow_frame) == 1u);
    BOOST_TEST(slow.wait_closed());
    BOOST_TEST(servers[0]->counters().requests == 0u);

    // Silent: connected and then nothing at all.
    raw_connection silent(loop);
    silent.start_connect(addresses[0]);
    const std::uint64_t started = loop.monotonic_ns();
    BOOST_TEST(silent.wait_closed());
    BOOST_TEST(loop.monotonic_ns() - started >= 300 * ms);
    BOOST_TEST(servers[0]->counters().closed_by(chunk_close_reason::idle_timeout) == 1u);
    BOOST_REQUIRE(run_until([&] { return servers[0]->status().connection_objects == 0; }));
}

// The client never trusts a node either: each bad frame closes the connection, counts, reports
// the outstanding ids, and the client reconnects.
BOOST_AUTO_TEST_CASE(client_closes_on_bad_replies_stalls_and_slow_sends) {
    fake_node fake(loop);
    make_client({fake.address}, [](platform::chunk_client_options& o) {
        o.body_size_max = mib;
        o.stall_timeout_ns = 300 * ms;
        o.frame_timeout_ns = 200 * ms;
        o.outstanding_max = 3;
    });
    const bytes reply_body{1, 2, 3, 4, 5};
    auto reply_to = [&](frame_kind kind, std::uint64_t id, std::span<const std::uint8_t> b = {}) {
        frame_header h = request_header(kind, id);
        h.reply = true;
        return make_frame(h, b);
    };
    bytes corrupt_body = reply_to(frame_kind::read, 4, reply_body);
    corrupt_body.back() ^= 0x01;
    struct bad_case {
        const char* name;
        std::uint64_t outstanding_id;
        bytes frame;
        chunk_close_reason reason;
        frame_error error;
    };
    const std::vector<bad_case> cases = {
        {"a request sent to the client", 1, make_frame(request_header(frame_kind::read, 1)),
         chunk_close_reason::wrong_direction, frame_error::none},
        {"reply to an id never sent", 2, reply_to(frame_kind::read, 99), chunk_close_reason::unexpected_reply,
         frame_error::none},
        {"reply of another kind", 3, reply_to(frame_kind::write, 3), chunk_close_reason::unexpected_reply,
         frame_error::none},
        {"garbage", 5, bytes(96, 0x5A), chunk_close_reason::bad_header, frame_error::bad_magic},
        {"reply body over limit", 6, oversized_header(mib + 1, true), chunk_close_reason::bad_header,
         frame_error::too_large},
        {"reply body checksum mismatch", 4, corrupt_body, chunk_close_reason::bad_body, frame_error::none},
    };
    for (const bad_case& c : cases) {
        BOOST_TEST_CONTEXT(c.name) {
            BOOST_REQUIRE(fake.accept());
            BOOST_REQUIRE(run_until([&] { return client->connected(0); }));
            const std::size_t disconnects_before = disconnects.size();
            const auto before = client->counters();
            BOOST_REQUIRE(client->send(0, request_header(frame_kind::read, c.outstanding_id), nullptr));
            fake.send(c.frame);
            BOOST_REQUIRE(run_until([&] { return disconnects.size() > disconnects_before; }));
            BOOST_TEST(disconnects.back().ids == std::vector<std::uint64_t>{c.outstanding_id});
            BOOST_TEST(client->counters().closed_by(c.reason) == before.closed_by(c.reason) + 1);
            if (c.error != frame_error::none) {
                BOOST_TEST(client->counters().frame_errors_of(c.error) == before.frame_errors_of(c.error) + 1);
            }
        }
    }
    BOOST_TEST(replies.empty());

    // A good reply is delivered; then outstanding_max; then silence: stalled.
    BOOST_REQUIRE(fake.accept());
    BOOST_REQUIRE(run_until([&] { return client->connected(0); }));
    BOOST_REQUIRE(client->send(0, request_header(frame_kind::read, 7), nullptr));
    fake.send(reply_to(frame_kind::read, 7, reply_body));
    BOOST_REQUIRE(run_until([&] { return replies.size() == 1; }));
    BOOST_TEST(replies[0].body == reply_body);
    for (std::uint64_t id : {8, 9, 10}) BOOST_REQUIRE(client->send(0, request_header(frame_kind::read, id), nullptr));
    BOOST_TEST(!client->send(0, request_header(frame_kind::read, 11), nullptr));
    BOOST_TEST(client->counters().refused_queue_full == 1u);
    const std::size_t disconnects_before = disconnects.size();
    BOOST_REQUIRE(run_until([&] { return disconnects.size() > disconnects_before; }));
    BOOST_TEST(client->counters().closed_by(chunk_close_reason::stalled) == 1u);
    BOOST_TEST(disconnects.back().ids == (std::vector<std::uint64_t>{8, 9, 10}));

    // A node that stops reading: the send of a large body cannot finish in time.
    BOOST_REQUIRE(fake.accept());
    BOOST_REQUIRE(run_until([&] { return client->connected(0); }));
    const shared_bytes huge = pattern(48 * mib, 8);
    BOOST_REQUIRE(client->send(0, request_header(frame_kind::write, 12), huge));
    BOOST_REQUIRE(run_until([&] { return client->counters().closed_by(chunk_close_reason::slow_send) == 1; }));
    BOOST_TEST(disconnects.back().ids == std::vector<std::uint64_t>{12});
    BOOST_REQUIRE(run_until([&] { return huge.use_count() == 1; }));  // the queue let go of it
    BOOST_TEST(client->counters().connects >= cases.size() + 2);
}

BOOST_AUTO_TEST_CASE(no_callbacks_after_shutdown_and_destruction_drains) {
    add_server();
    make_client(addresses);
    BOOST_REQUIRE(run_until([&] { return all_connected(); }));
    BOOST_REQUIRE(client->send(0, request_header(frame_kind::write, 1), pattern(mib, 1)));
    client->shutdown();
    BOOST_TEST(!client->connected(0));
    BOOST_TEST(!client->send(0, request_header(frame_kind::read, 2), nullptr));
    BOOST_TEST(client->counters().closed_by(chunk_close_reason::shutdown) == 1u);
    BOOST_REQUIRE(run_until([&] { return client->drained(); }));
    for (int i = 0; i < 20; i++) loop.run_once(5 * ms);
    BOOST_TEST(replies.empty());
    BOOST_TEST(disconnects.empty());
    client.reset();
    servers[0]->shutdown();
    BOOST_REQUIRE(run_until([&] { return servers[0]->drained(); }));
    servers[0].reset();
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_CASE(close_reasons_have_names) {
    for (std::size_t i = 0; i < platform::chunk_close_reason_count; i++) {
        BOOST_TEST(std::string(platform::to_string(static_cast<chunk_close_reason>(i))) != "unknown");
    }
    BOOST_TEST(std::string(platform::to_string(chunk_close_reason::unexpected_reply)) == "unexpected_reply");
}
