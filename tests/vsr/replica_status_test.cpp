#define BOOST_TEST_MODULE replica_status
// status_request / status_reply: read-only introspection answered by every replica.
#include "vsr/replica.hpp"

#ifndef BOOST_TEST_DYN_LINK  // meson's boost dependency may define it already
#define BOOST_TEST_DYN_LINK
#endif
#include <boost/test/unit_test.hpp>

#include <array>
#include <cstdint>

#include "test_cluster.hpp"

using namespace test_support;

namespace {

constexpr std::uint64_t asker = 0x57A7;

bytes status_request(std::uint8_t target, std::uint64_t client_id = asker) {
    vsr::header h = header_of(vsr::command::status_request, vsr::address_client, target, 0);
    h.client_id = client_id;
    return encode(h);
}

/// Hands a status_request to the replica and returns the decoded reply (exactly one is sent).
struct answered {
    vsr::header h;
    vsr::status_body body;
};

answered ask(cluster& c, std::uint8_t index) {
    auto& to_client = c.bus().to_client;
    to_client.clear();
    const auto replica_queue = c.bus().to_replica;
    c.replica(index).on_message(status_request(index));
    BOOST_TEST_REQUIRE(to_client.size() == 1u);
    BOOST_TEST(to_client.front().first == asker);
    // Nothing was sent to any replica.
    for (std::size_t r = 0; r < replica_queue.size(); ++r) {
        BOOST_TEST(c.bus().to_replica[r].size() == replica_queue[r].size());
    }
    answered a;
    a.h = decode(to_client.front().second);
    BOOST_TEST((a.h.cmd == vsr::command::status_reply));
    BOOST_TEST(a.h.sender == index);
    BOOST_TEST(a.h.target == vsr::address_client);
    BOOST_TEST(a.h.client_id == asker);
    BOOST_TEST_REQUIRE(vsr::decode_status_body(vsr::message_body(to_client.front().second), a.body));
    to_client.clear();
    return a;
}

void expect_matches(const replica_type& r, const answered& a) {
    BOOST_TEST(a.body.status == static_cast<std::uint8_t>(r.status()));
    BOOST_TEST(a.body.replica == r.index());
    BOOST_TEST(a.body.is_primary == (r.is_primary() ? 1u : 0u));
    BOOST_TEST(a.body.syncing == (r.syncing() ? 1u : 0u));
    BOOST_TEST(a.body.view == r.view());
    BOOST_TEST(a.body.last_normal_view == r.last_normal_view());
    BOOST_TEST(a.body.op == r.op());
    BOOST_TEST(a.body.commit == r.commit());
    BOOST_TEST(a.body.commit_executed == r.commit_executed());
    BOOST_TEST(a.body.clients == r.clients().size());
    BOOST_TEST(a.body.checkpoint_op == r.checkpoint_durable_op());
    BOOST_TEST(a.body.log_entries == r.log().size());
    BOOST_TEST(a.body.log_entries_max == r.configuration().log_entries_max);
    BOOST_TEST(a.h.view == r.view());
    BOOST_TEST(a.h.op == r.op());
    BOOST_TEST(a.h.commit == r.commit());
}

}  // namespace

BOOST_AUTO_TEST_CASE(status_body_round_trips) {
    vsr::status_body s;
    s.status = 1;
    s.replica = 2;
    s.is_primary = 1;
    s.syncing = 0;
    s.view = 7;
    s.last_normal_view = 6;
    s.op = 1234;
    s.commit = 1200;
    s.commit_executed = 1199;
    s.clients = 42;
    s.checkpoint_op = 43;
    s.log_entries = 44;
    s.log_entries_max = 45;
    std::array<std::uint8_t, vsr::status_body_size> buffer{};
    vsr::encode_status_body(s, buffer);
    BOOST_TEST(buffer[8] == 7u);  // view, little-endian at offset 8
    vsr::status_body out;
    BOOST_TEST_REQUIRE(vsr::decode_status_body(buffer, out));
    BOOST_TEST(out.view == 7u);
    BOOST_TEST(out.op == 1234u);
    BOOST_TEST(out.clients == 42u);
    BOOST_TEST(out.checkpoint_op == 43u);
    BOOST_TEST(out.log_entries == 44u);
    BOOST_TEST(out.log_entries_max == 45u);
    BOOST_TEST(out.replica == 2u);
    buffer[4] = 1;  // reserved
    BOOST_TEST(!vsr::decode_status_body(buffer, out));
    BOOST_TEST(!vsr::decode_status_body(std::span(buffer).first(vsr::status_body_size - 1), out));
}

BOOST_AUTO_TEST_CASE(every_replica_answers_with_its_state) {
    cluster c(test_config());
    auto& client = c.add_client();
    require_ok(*c.execute(client, kv_put("a", "1")));
    require_ok(*c.execute(client, kv_put("b", "2")));
    c.settle();

    for (std::uint8_t r = 0; r < c.size(); ++r) {
        BOOST_TEST_CONTEXT("replica " << int{r}) {
            const std::uint64_t op_before = c.replica(r).op();
            const answered a = ask(c, r);
            expect_matches(c.replica(r), a);
            BOOST_TEST(a.body.status == static_cast<std::uint8_t>(vsr::replica_status::normal));
            BOOST_TEST(a.body.is_primary == (r == 0 ? 1u : 0u));
            BOOST_TEST(a.body.view == 0u);
            BOOST_TEST(a.body.op >= 3u);  // register + two puts
            BOOST_TEST(a.body.commit_executed == a.body.op);
            BOOST_TEST(a.body.clients == 1u);
            BOOST_TEST(c.replica(r).op() == op_before);
            BOOST_TEST(c.replica(r).counters().status_requests_answered == 1u);
        }
    }
    // Nothing changed: the cluster is still converged and keeps working.
    BOOST_TEST(c.converged());
    require_ok(*c.execute(client, kv_put("c", "3")));
}

BOOST_AUTO_TEST_CASE(answers_in_view_change_and_recovering) {
    cluster c(test_config());
    auto& client = c.add_client();
    require_ok(*c.execute(client, kv_put("a", "1")));
    c.settle();

    // Primary and replica 2 gone: replica 1 times out into a view change it cannot complete.
    c.isolate(0);
    c.isolate(2);
    BOOST_TEST_REQUIRE(c.run_until([&] { return c.replica(1).status() == vsr::replica_status::view_change; }));
    {
        const answered a = ask(c, 1);
        expect_matches(c.replica(1), a);
        BOOST_TEST(a.body.status == static_cast<std::uint8_t>(vsr::replica_status::view_change));
        BOOST_TEST(a.body.view >= 1u);
        BOOST_TEST(a.body.last_normal_view == 0u);
    }
    c.isolate(2, false);
    BOOST_TEST_REQUIRE(c.run_until([&] {
        return c.replica(1).status() == vsr::replica_status::normal &&
               c.replica(2).status() == vsr::replica_status::normal;
    }));
    {
        const answered a = ask(c, 1);
        expect_matches(c.replica(1), a);
        BOOST_TEST(a.body.is_primary == (c.replica(1).is_primary() ? 1u : 0u));
    }

    // A restarted replica answers while it recovers.
    c.isolate(0, false);
    c.settle();
    c.crash(2);
    c.restart(2);
    {
        const answered a = ask(c, 2);
        expect_matches(c.replica(2), a);
        BOOST_TEST(a.body.status == static_cast<std::uint8_t>(vsr::replica_status::recovering));
        BOOST_TEST(a.body.op == 0u);
    }
    c.settle();
    BOOST_TEST(value_at(c.replica(2), "a") == "1");
}

BOOST_AUTO_TEST_CASE(misaddressed_status_messages_are_dropped_and_counted) {
    cluster c(test_config());
    c.settle();
    replica_type& backup = c.replica(1);
    const auto before = backup.counters().dropped_misaddressed;

    // A status_reply sent to a replica.
    vsr::header reply = header_of(vsr::command::status_reply, 0, 1, 0);
    std::array<std::uint8_t, vsr::status_body_size> body{};
    vsr::encode_status_body(vsr::status_body{}, body);
    backup.on_message(encode(reply, body));
    // The same from a client address.
    reply.sender = vsr::address_client;
    backup.on_message(encode(reply, body));
    // A status_request that claims to come from a replica.
    vsr::header from_replica = header_of(vsr::command::status_request, 0, 1, 0);
    from_replica.client_id = asker;
    backup.on_message(encode(from_replica));
    // A status_request for another replica.
    backup.on_message(status_request(2));

    BOOST_TEST(backup.counters().dropped_misaddressed == before + 4);
    BOOST_TEST(backup.counters().status_requests_answered == 0u);
    BOOST_TEST(c.bus().quiet());
}
