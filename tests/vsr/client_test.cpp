#define BOOST_TEST_MODULE client
// The header under test comes first: proves it is self-contained.
#include "vsr/client.hpp"

#ifndef BOOST_TEST_DYN_LINK  // meson's boost dependency may define it already
#define BOOST_TEST_DYN_LINK
#endif
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <optional>
#include <ostream>
#include <set>
#include <span>
#include <string>
#include <vector>

// The client is tested alone: a recording bus stands in for the cluster and the tests play
// the replicas by hand, so every reply, loss and eviction is explicit.

// Lets BOOST_TEST print these enums when an assertion fails (found by ADL).
namespace vsr {
inline std::ostream& boost_test_print_type(std::ostream& os, result_status v) { return os << to_string(v); }
inline std::ostream& boost_test_print_type(std::ostream& os, submit_error v) { return os << static_cast<int>(v); }
inline std::ostream& boost_test_print_type(std::ostream& os, command v) { return os << static_cast<int>(v); }
}  // namespace vsr

namespace {

using bytes = std::vector<std::uint8_t>;

constexpr std::uint32_t cluster = 7;

struct recording_bus {
    struct sent_message {
        std::uint8_t replica;
        bytes message;
    };
    std::vector<sent_message> sent;
    std::size_t sent_to_clients = 0;

    void send_to_replica(std::uint8_t replica, std::span<const std::uint8_t> message) {
        sent.push_back({replica, bytes(message.begin(), message.end())});
    }
    void send_to_client(std::uint64_t, std::span<const std::uint8_t>) { ++sent_to_clients; }
};
static_assert(vsr::message_bus<recording_bus>);

using client_type = vsr::basic_client<recording_bus, vsr::xoshiro256>;

vsr::header decode(const bytes& message) {
    vsr::header h;
    BOOST_TEST_REQUIRE((vsr::decode_message(message, cluster, 1 << 20, h) == vsr::decode_error::none));
    return h;
}

// What the callbacks saw.
struct completion {
    int calls = 0;
    vsr::result_status status = vsr::result_status::ok;
    std::uint64_t op = 0;
    std::uint32_t index = 0;
    bytes body;
    std::uint64_t client_id = 0;
    std::uint64_t session = 0;
    std::uint64_t request_number = 0;
};

struct harness {
    explicit harness(vsr::client_options overrides = {}) : options(overrides) {
        options.cluster = cluster;
        client.emplace(options, bus, random);
    }

    vsr::submit_error submit(const bytes& operation, completion& done) {
        return client->submit(operation, [&done](const vsr::client_result& r) {
            ++done.calls;
            done.status = r.status;
            done.op = r.op;
            done.index = r.index;
            done.body.assign(r.body.begin(), r.body.end());
            done.client_id = r.client_id;
            done.session = r.session;
            done.request_number = r.request_number;
        });
    }

    const recording_bus::sent_message& last_sent() const {
        BOOST_TEST_REQUIRE(!bus.sent.empty());
        return bus.sent.back();
    }

    // A reply from the cluster; fields default to an ok reply from replica 0 in view 0.
    bytes reply(std::uint64_t client_id, std::uint64_t session, std::uint64_t request_number, const bytes& body = {},
                vsr::command cmd = vsr::command::reply) const {
        vsr::header h;
        h.cmd = cmd;
        h.sender = 0;
        h.target = vsr::address_client;
        h.cluster = cluster;
        h.client_id = client_id;
        h.session = session;
        h.request_number = request_number;
        bytes out;
        vsr::encode_message(h, body, out);
        return out;
    }

    void deliver(bytes message) { client->on_message(message); }

    // Answers the pending registration of the session with `client_id`.
    void register_session(std::uint64_t client_id, std::uint64_t session) { deliver(reply(client_id, session, 0)); }

    std::uint64_t id() const { return client->client_ids().at(0); }

    // Ticks until `done` or the bound; no timing is asserted, only that it happens eventually.
    template <typename Predicate>
    bool tick_until(Predicate done, int max_ticks = 1000) {
        for (int i = 0; i < max_ticks && !done(); ++i) client->tick();
        return done();
    }

    vsr::client_options options;
    recording_bus bus;
    vsr::xoshiro256 random{1};
    std::optional<client_type> client;
};

const bytes operation{'o', 'p'};

}  // namespace

BOOST_AUTO_TEST_CASE(first_submit_registers_then_sends_operation) {
    harness t;
    completion done;
    BOOST_TEST((t.submit(operation, done) == vsr::submit_error::none));
    BOOST_TEST(t.client->outstanding() == 1u);

    BOOST_TEST_REQUIRE(t.bus.sent.size() == 1u);
    const vsr::header reg = decode(t.last_sent().message);
    BOOST_TEST(t.last_sent().replica == 0);  // primary of view 0
    BOOST_TEST((reg.cmd == vsr::command::request));
    BOOST_TEST(reg.sender == vsr::address_client);
    BOOST_TEST(reg.target == 0);
    BOOST_TEST(reg.extra == static_cast<std::uint64_t>(vsr::request_kind::register_session));
    BOOST_TEST(reg.client_id == t.id());
    BOOST_TEST(reg.session == 0u);
    BOOST_TEST(reg.request_number == 0u);
    BOOST_TEST(reg.body_size == 0u);

    t.register_session(t.id(), 5);
    BOOST_TEST(t.client->counters().registrations == 1u);
    BOOST_TEST_REQUIRE(t.bus.sent.size() == 2u);
    const vsr::header req = decode(t.last_sent().message);
    BOOST_TEST(req.extra == static_cast<std::uint64_t>(vsr::request_kind::operation));
    BOOST_TEST(req.session == 5u);
    BOOST_TEST(req.request_number == 1u);
    const auto body = vsr::message_body(t.last_sent().message);
    BOOST_TEST(bytes(body.begin(), body.end()) == operation, boost::test_tools::per_element());
    BOOST_TEST(done.calls == 0);

    bytes result_message = t.reply(t.id(), 5, 1, bytes{0, 'r'});
    vsr::store_le64(result_message.data() + 32, 9);  // op
    vsr::store_le64(result_message.data() + 72, 2);  // extra: index in the batch
    vsr::seal(result_message, cluster);
    t.deliver(result_message);
    BOOST_TEST(done.calls == 1);
    BOOST_TEST((done.status == vsr::result_status::ok));
    BOOST_TEST(done.op == 9u);
    BOOST_TEST(done.index == 2u);
    BOOST_TEST(done.body == (bytes{0, 'r'}), boost::test_tools::per_element());
    // The result names the request that carried it.
    BOOST_TEST(done.client_id == t.id());
    BOOST_TEST(done.session == 5u);
    BOOST_TEST(done.request_number == 1u);
    BOOST_TEST(t.client->outstanding() == 0u);

    // The next operation reuses the session with the next request number.
    completion second;
    t.submit(operation, second);
    BOOST_TEST(decode(t.last_sent().message).request_number == 2u);
    BOOST_TEST(decode(t.last_sent().message).session == 5u);
}

BOOST_AUTO_TEST_CASE(callbacks_never_run_inside_submit) {
    harness t;
    bool inside_submit = false;
    int calls = 0;
    client_type::callback done = [&](const vsr::client_result&) {
        BOOST_TEST(!inside_submit);
        ++calls;
        if (calls == 1) {
            // Submitting from a callback is allowed; it is sent once the callback returns.
            inside_submit = true;
            BOOST_TEST((t.client->submit(operation, [&](const vsr::client_result&) {
                BOOST_TEST(!inside_submit);
                ++calls;
            }) == vsr::submit_error::none));
            inside_submit = false;
        }
    };
    inside_submit = true;
    BOOST_TEST((t.client->submit(operation, done) == vsr::submit_error::none));
    inside_submit = false;
    t.register_session(t.id(), 1);
    // Even with a free session, a submit returns before anything completes.
    BOOST_TEST(calls == 0);
    t.deliver(t.reply(t.id(), 1, 1));
    BOOST_TEST(calls == 1);
    BOOST_TEST(decode(t.last_sent().message).request_number == 2u);
    t.deliver(t.reply(t.id(), 1, 2));
    BOOST_TEST(calls == 2);
}

BOOST_AUTO_TEST_CASE(queue_full) {
    vsr::client_options options;
    options.queue_max = 2;
    harness t(options);
    completion a, b, c;
    BOOST_TEST((t.submit(operation, a) == vsr::submit_error::none));
    BOOST_TEST((t.submit(operation, b) == vsr::submit_error::none));
    BOOST_TEST((t.submit(operation, c) == vsr::submit_error::queue_full));
    BOOST_TEST(t.client->outstanding() == 2u);

    // Registration moves the first operation out of the queue: room for one more.
    t.register_session(t.id(), 1);
    BOOST_TEST((t.submit(operation, c) == vsr::submit_error::none));
    BOOST_TEST((t.submit(operation, c) == vsr::submit_error::queue_full));
    BOOST_TEST(c.calls == 0);  // a refused submit never calls back
}

BOOST_AUTO_TEST_CASE(too_large) {
    vsr::client_options options;
    options.message_size_max = 64 * 1024;
    harness t(options);
    completion done;
    const bytes huge(options.message_size_max - vsr::header_size + 1, 'x');
    BOOST_TEST((t.submit(huge, done) == vsr::submit_error::too_large));
    BOOST_TEST(t.client->outstanding() == 0u);
    BOOST_TEST(t.bus.sent.empty());
    const bytes largest(options.message_size_max - vsr::header_size, 'x');
    BOOST_TEST((t.submit(largest, done) == vsr::submit_error::none));
    BOOST_TEST(done.calls == 0);
}

BOOST_AUTO_TEST_CASE(retries_reuse_the_request_number) {
    harness t;
    completion done;
    t.submit(operation, done);
    t.register_session(t.id(), 3);
    const bytes original = t.last_sent().message;
    const vsr::header first = decode(original);
    const std::size_t sent_before = t.bus.sent.size();

    BOOST_TEST_REQUIRE(t.tick_until([&] { return t.client->counters().retries >= 1; }));
    // A retry goes to every replica, since the primary may have changed.
    BOOST_TEST_REQUIRE(t.bus.sent.size() == sent_before + 3);
    std::set<std::uint8_t> targets;
    for (std::size_t i = sent_before; i < t.bus.sent.size(); ++i) {
        const auto& retry = t.bus.sent[i];
        const vsr::header h = decode(retry.message);  // re-sealed after patching the target
        BOOST_TEST(h.target == retry.replica);
        targets.insert(retry.replica);
        BOOST_TEST(h.request_number == first.request_number);
        BOOST_TEST(h.session == first.session);
        BOOST_TEST(h.client_id == first.client_id);
        BOOST_TEST(h.extra == first.extra);
        const auto body = vsr::message_body(retry.message);
        BOOST_TEST(bytes(body.begin(), body.end()) == operation, boost::test_tools::per_element());
    }
    BOOST_TEST(targets == (std::set<std::uint8_t>{0, 1, 2}));

    // And again after backoff.
    BOOST_TEST_REQUIRE(t.tick_until([&] { return t.client->counters().retries >= 2; }));
    BOOST_TEST(decode(t.last_sent().message).request_number == first.request_number);
    BOOST_TEST(done.calls == 0);

    t.deliver(t.reply(t.id(), 3, first.request_number));
    BOOST_TEST(done.calls == 1);
    BOOST_TEST((done.status == vsr::result_status::ok));
    // Completed: no further retries.
    const std::size_t after = t.bus.sent.size();
    for (int i = 0; i < 500; ++i) t.client->tick();
    BOOST_TEST(t.bus.sent.size() == after);
}

BOOST_AUTO_TEST_CASE(registration_is_retried) {
    harness t;
    completion done;
    t.submit(operation, done);
    BOOST_TEST_REQUIRE(t.tick_until([&] { return t.client->counters().retries >= 1; }));
    for (const auto& sent : t.bus.sent) {
        const vsr::header h = decode(sent.message);
        BOOST_TEST(h.request_number == 0u);
        BOOST_TEST(h.extra == static_cast<std::uint64_t>(vsr::request_kind::register_session));
    }
    BOOST_TEST(t.bus.sent.size() == 4u);  // the first send plus one broadcast
}

BOOST_AUTO_TEST_CASE(deadline_reports_timeout) {
    vsr::client_options options;
    options.deadline_ms = 100;
    harness t(options);
    completion done;
    t.submit(operation, done);
    t.register_session(t.id(), 4);
    BOOST_TEST_REQUIRE(t.tick_until([&] { return done.calls > 0; }));
    BOOST_TEST(done.calls == 1);
    BOOST_TEST((done.status == vsr::result_status::timeout));
    BOOST_TEST(done.session == 4u);  // identifies the request whose outcome is unknown
    BOOST_TEST(done.request_number == 1u);
    BOOST_TEST(t.client->counters().timeouts == 1u);
    BOOST_TEST(t.client->outstanding() == 0u);

    // The outcome of request 1 is unknown, so the next one must not reuse its number.
    completion next;
    t.submit(operation, next);
    BOOST_TEST(decode(t.last_sent().message).request_number == 2u);

    // A late reply to the timed-out request is dropped, not delivered to anyone.
    const auto dropped = t.client->counters().dropped_messages;
    t.deliver(t.reply(t.id(), 4, 1));
    BOOST_TEST(t.client->counters().dropped_messages == dropped + 1);
    BOOST_TEST(done.calls == 1);
    BOOST_TEST(next.calls == 0);
}

// A submitted operation whose session never manages to register (no replica answers) never
// completes: the deadline is only
// checked for busy sessions, not registering ones, and operations still in the queue have no
// deadline at all.

BOOST_AUTO_TEST_CASE(deadline_covers_registration) {
    vsr::client_options options;
    options.deadline_ms = 100;
    harness t(options);
    completion done;
    t.submit(operation, done);
    BOOST_TEST(t.tick_until([&] { return done.calls > 0; }, 1000));
    BOOST_TEST((done.status == vsr::result_status::timeout));
}

BOOST_AUTO_TEST_CASE(eviction_while_busy) {
    harness t;
    completion done;
    t.submit(operation, done);
    t.register_session(t.id(), 6);
    t.deliver(t.reply(t.id(), 6, 0, {}, vsr::command::eviction));
    BOOST_TEST(done.calls == 1);
    BOOST_TEST((done.status == vsr::result_status::session_evicted));
    BOOST_TEST(done.client_id == t.id());
    BOOST_TEST(done.session == 6u);  // the session that was lost, not the reset one
    BOOST_TEST(done.request_number == 1u);
    BOOST_TEST(t.client->counters().evictions == 1u);

    // The next submission registers a new session first.
    completion next;
    t.submit(operation, next);
    const vsr::header h = decode(t.last_sent().message);
    BOOST_TEST(h.extra == static_cast<std::uint64_t>(vsr::request_kind::register_session));
    BOOST_TEST(h.session == 0u);
}

// Seed 6545 of vsr-sim: a duplicate of the first registration reply arrived after the eviction.
// Taking it revived session 6 with request numbers from 1 again, and a delayed reply to the old
// request 1 then answered the new one.
BOOST_AUTO_TEST_CASE(late_registration_reply_does_not_revive_an_evicted_session) {
    harness t;
    completion done;
    t.submit(operation, done);
    t.register_session(t.id(), 6);
    t.deliver(t.reply(t.id(), 6, 0, {}, vsr::command::eviction));
    BOOST_TEST_REQUIRE(done.calls == 1);

    completion next;
    t.submit(operation, next);
    const auto dropped = t.client->counters().dropped_messages;
    t.deliver(t.reply(t.id(), 6, 0));  // the late duplicate: session 6 again
    BOOST_TEST(t.client->counters().dropped_messages == dropped + 1);
    t.deliver(t.reply(t.id(), 6, 1));  // the old request 1's reply: not for `next`
    BOOST_TEST(next.calls == 0);
    t.register_session(t.id(), 9);  // the real new session
    t.deliver(t.reply(t.id(), 9, 1));
    BOOST_TEST(next.calls == 1);
    BOOST_TEST((next.status == vsr::result_status::ok));
    BOOST_TEST(next.session == 9u);
}

BOOST_AUTO_TEST_CASE(evicted_status_in_a_reply_counts_as_eviction) {
    harness t;
    completion done;
    t.submit(operation, done);
    t.register_session(t.id(), 6);
    bytes m = t.reply(t.id(), 6, 1);
    m[13] = static_cast<std::uint8_t>(vsr::reply_status::session_evicted);
    vsr::seal(m, cluster);
    t.deliver(m);
    BOOST_TEST((done.status == vsr::result_status::session_evicted));
}

BOOST_AUTO_TEST_CASE(eviction_of_another_session_is_ignored) {
    harness t;
    completion done;
    t.submit(operation, done);
    t.register_session(t.id(), 6);
    const auto dropped = t.client->counters().dropped_messages;
    t.deliver(t.reply(t.id(), 5, 0, {}, vsr::command::eviction));  // an older session
    BOOST_TEST(done.calls == 0);
    BOOST_TEST(t.client->counters().evictions == 0u);
    BOOST_TEST(t.client->counters().dropped_messages == dropped + 1);
    t.deliver(t.reply(t.id(), 6, 1));
    BOOST_TEST((done.status == vsr::result_status::ok));
}

BOOST_AUTO_TEST_CASE(eviction_while_idle_reregisters_on_next_submit) {
    harness t;
    completion done;
    t.submit(operation, done);
    t.register_session(t.id(), 6);
    t.deliver(t.reply(t.id(), 6, 1));
    BOOST_TEST(done.calls == 1);
    t.deliver(t.reply(t.id(), 6, 0, {}, vsr::command::eviction));
    BOOST_TEST(done.calls == 1);  // nothing was outstanding: no callback
    BOOST_TEST(t.client->counters().evictions == 1u);
    completion next;
    t.submit(operation, next);
    BOOST_TEST(decode(t.last_sent().message).extra == static_cast<std::uint64_t>(vsr::request_kind::register_session));
}

BOOST_AUTO_TEST_CASE(reply_with_an_unknown_status_is_dropped) {
    harness t;
    completion done;
    t.submit(operation, done);
    t.register_session(t.id(), 2);
    for (const std::uint8_t status : {std::uint8_t{2}, std::uint8_t{200}}) {  // 2: the retired log_full
        bytes m = t.reply(t.id(), 2, 1);
        m[13] = status;
        vsr::seal(m, cluster);
        const auto dropped = t.client->counters().dropped_messages;
        t.deliver(m);
        BOOST_TEST(t.client->counters().dropped_messages == dropped + 1);
    }
    BOOST_TEST(done.calls == 0);
    t.deliver(t.reply(t.id(), 2, 1));
    BOOST_TEST((done.status == vsr::result_status::ok));
}

BOOST_AUTO_TEST_CASE(result_too_large_reply) {
    harness t;
    completion done;
    t.submit(operation, done);
    t.register_session(t.id(), 2);
    bytes m = t.reply(t.id(), 2, 1);
    m[13] = static_cast<std::uint8_t>(vsr::reply_status::result_too_large);
    vsr::seal(m, cluster);
    t.deliver(m);
    BOOST_TEST(done.calls == 1);
    BOOST_TEST((done.status == vsr::result_status::result_too_large));  // executed, the result lost
    BOOST_TEST(done.body.empty());
    BOOST_TEST(std::string(vsr::to_string(done.status)) == "result_too_large");
}

BOOST_AUTO_TEST_CASE(follows_the_view_seen_in_replies) {
    harness t;
    completion done;
    t.submit(operation, done);
    bytes m = t.reply(t.id(), 2, 0);
    vsr::store_le64(m.data() + 24, 4);  // view 4
    m[11] = 1;                          // from its primary
    vsr::seal(m, cluster);
    t.deliver(m);
    BOOST_TEST(t.client->view() == 4u);
    // The operation is now sent to the primary of view 4 only.
    BOOST_TEST(t.last_sent().replica == 1);
    BOOST_TEST(decode(t.last_sent().message).view == 4u);
    BOOST_TEST(decode(t.last_sent().message).target == 1);
}

BOOST_AUTO_TEST_CASE(drops_messages_it_cannot_use) {
    harness t;
    completion done;
    t.submit(operation, done);
    t.register_session(t.id(), 2);
    const auto dropped = [&] { return t.client->counters().dropped_messages; };
    std::uint64_t expected = dropped();

    auto deliver_and_expect_drop = [&](bytes m, const char* what) {
        const int calls = done.calls;
        t.deliver(std::move(m));
        ++expected;
        BOOST_TEST_CONTEXT(what) {
            BOOST_TEST(dropped() == expected);
            BOOST_TEST(done.calls == calls);  // no callback
        }
    };

    deliver_and_expect_drop(t.reply(t.id() + 1, 2, 1), "unknown client id");
    deliver_and_expect_drop(t.reply(t.id(), 2, 7), "wrong request number");
    deliver_and_expect_drop(t.reply(t.id(), 3, 1), "wrong session");
    bytes corrupt = t.reply(t.id(), 2, 1, bytes{0});
    corrupt.back() ^= 1;
    deliver_and_expect_drop(corrupt, "bad checksum");
    bytes foreign = t.reply(t.id(), 2, 1);
    vsr::store_le32(foreign.data() + 16, cluster + 1);
    vsr::seal(foreign, cluster + 1);
    deliver_and_expect_drop(foreign, "wrong cluster");
    bytes bad_sender = t.reply(t.id(), 2, 1);
    bad_sender[11] = 3;  // replica_count is 3
    vsr::seal(bad_sender, cluster);
    deliver_and_expect_drop(bad_sender, "sender out of range");
    bytes not_for_clients = t.reply(t.id(), 2, 1);
    not_for_clients[12] = 0;
    vsr::seal(not_for_clients, cluster);
    deliver_and_expect_drop(not_for_clients, "target not a client");
    deliver_and_expect_drop(t.reply(t.id(), 2, 1, {}, vsr::command::prepare), "not a reply");
    deliver_and_expect_drop(bytes(10, 0), "too short");
    BOOST_TEST(done.calls == 0);

    // The genuine reply still completes it.
    t.deliver(t.reply(t.id(), 2, 1));
    BOOST_TEST(done.calls == 1);
    // And its duplicate is dropped.
    deliver_and_expect_drop(t.reply(t.id(), 2, 1), "duplicate reply");
    BOOST_TEST(done.calls == 1);
}

BOOST_AUTO_TEST_CASE(sessions_run_in_parallel) {
    vsr::client_options options;
    options.sessions = 3;
    harness t(options);
    const auto ids = t.client->client_ids();
    BOOST_TEST_REQUIRE(ids.size() == 3u);
    BOOST_TEST((std::set<std::uint64_t>(ids.begin(), ids.end()).size() == 3u));
    for (const auto id : ids) {
        BOOST_TEST(id != 0u);
        BOOST_TEST(t.client->owns(id));
    }
    BOOST_TEST(!t.client->owns(0));

    completion done[4];
    for (auto& d : done) t.submit(operation, d);
    // One registration per session; the fourth operation waits.
    BOOST_TEST(t.bus.sent.size() == 3u);
    std::set<std::uint64_t> registering;
    for (const auto& sent : t.bus.sent) registering.insert(decode(sent.message).client_id);
    BOOST_TEST(registering == (std::set<std::uint64_t>(ids.begin(), ids.end())));

    for (std::size_t i = 0; i < ids.size(); ++i) t.register_session(ids[i], 10 + i);
    BOOST_TEST(t.bus.sent.size() == 6u);  // three operations in flight at once
    BOOST_TEST(t.client->outstanding() == 4u);
    // Completing one frees its session for the fourth.
    t.deliver(t.reply(ids[1], 11, 1));
    BOOST_TEST(t.bus.sent.size() == 7u);
    BOOST_TEST(decode(t.last_sent().message).client_id == ids[1]);
    BOOST_TEST(decode(t.last_sent().message).request_number == 2u);
}
