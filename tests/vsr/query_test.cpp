#define BOOST_TEST_MODULE query
// Queries (request_kind::query): read-only operations a primary answers without a log entry,
// once a quorum has confirmed its view after the query arrived.
#include "vsr/replica.hpp"

#ifndef BOOST_TEST_DYN_LINK  // meson's boost dependency may define it already
#define BOOST_TEST_DYN_LINK
#endif
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "test_cluster.hpp"

using namespace test_support;

namespace {

std::shared_ptr<outcome> run_query(cluster& c, client_type& client, std::string_view key) {
    auto result = submit(client, kv_get(key), vsr::request_kind::query);
    BOOST_REQUIRE_MESSAGE(c.run_until([&] { return result->done; }), "query never answered");
    return result;
}

/// Replica 0, primary of view 0, is cut off from the other two, which elect a new primary; a
/// second client then overwrites `k` through it. Returns the new primary's index.
std::uint8_t depose_primary_0(cluster& c, client_type& writer) {
    c.isolate(0);
    BOOST_TEST_REQUIRE(c.run_until([&] { return c.elected_without_0(); }));
    require_ok(*c.execute(writer, kv_put("k", "new")));
    return c.replica(1).is_primary() ? 1 : 2;
}

/// Hands replica 0 only what clients sent it (it stays cut off from the other replicas), and
/// counts the replies it sends to `client_id`.
int deliver_client_messages_to_0(cluster& c, std::uint64_t client_id) {
    auto& queue = c.bus().to_replica.at(0);
    for (auto it = queue.begin(); it != queue.end();) {
        if (decode(*it).sender == vsr::address_client) {
            c.replica(0).on_message(*it);
            it = queue.erase(it);
        } else {
            ++it;
        }
    }
    int replies = 0;
    for (const auto& [id, message] : c.bus().to_client)
        replies += id == client_id && decode(message).cmd == vsr::command::reply;
    return replies;
}

}  // namespace

BOOST_AUTO_TEST_CASE(query_is_answered_without_a_log_entry) {
    cluster c(test_config());
    auto& client = c.add_client();
    require_ok(*c.execute(client, kv_put("k", "v")));
    c.settle();
    const std::uint64_t op = c.replica(0).op();

    const auto read = run_query(c, client, "k");
    BOOST_TEST((read->status == vsr::result_status::ok));
    BOOST_TEST((read->kv_status == kv::status::ok));
    BOOST_TEST(read->value == "v");
    BOOST_TEST(read->index == vsr::reply_index_query);
    BOOST_TEST(read->op == op);  // the state it read: after entry op
    c.settle();
    for (std::uint8_t r = 0; r < 3; ++r) BOOST_TEST(c.replica(r).op() == op);
    BOOST_TEST(c.replica(0).counters().queries_answered == 1u);
    BOOST_TEST(c.replica(0).counters().query_rounds == 1u);

    // The session goes on: the next write executes once, as usual.
    require_ok(*c.execute(client, kv_put("k", "w")));
    BOOST_TEST(run_query(c, client, "k")->value == "w");
}

BOOST_AUTO_TEST_CASE(operation_sent_as_query_is_ordered_like_any_other) {
    cluster c(test_config());
    auto& client = c.add_client();
    auto put = submit(client, kv_put("k", "v"), vsr::request_kind::query);
    BOOST_TEST_REQUIRE(c.run_until([&] { return put->done; }));
    BOOST_TEST((put->kv_status == kv::status::ok));
    BOOST_TEST(put->index != vsr::reply_index_query);
    c.settle();
    for (std::uint8_t r = 0; r < 3; ++r) BOOST_TEST(value_at(c.replica(r), "k") == "v");
    BOOST_TEST(c.replica(0).counters().queries_answered == 0u);
}

BOOST_AUTO_TEST_CASE(single_replica_answers_queries_at_once) {
    vsr::config config = test_config();
    config.replica_count = 1;
    cluster c(config);
    auto& client = c.add_client();
    require_ok(*c.execute(client, kv_put("k", "v")));
    BOOST_TEST(run_query(c, client, "k")->value == "v");
}

// The property queries rest on: a primary that has been replaced never answers one, even to a
// client that can still reach it, because the backups no longer confirm its view.
BOOST_AUTO_TEST_CASE(deposed_primary_never_answers_a_query) {
    cluster c(test_config());
    auto& reader = c.add_client(1, 11);
    auto& writer = c.add_client(1, 22);
    require_ok(*c.execute(reader, kv_put("k", "old")));
    require_ok(*c.execute(writer, kv_put("other", "x")));  // the writer's session, registered in view 0
    c.settle();
    const std::uint8_t new_primary = depose_primary_0(c, writer);

    // The reader still thinks replica 0 leads, and replica 0 still thinks so too.
    auto read = submit(reader, kv_get("k"), vsr::request_kind::query);
    BOOST_TEST_REQUIRE(c.replica(0).is_primary());
    BOOST_TEST(deliver_client_messages_to_0(c, reader.client_ids().at(0)) == 0);
    // Its confirmation round reaches the others, who are in a newer view and do not answer.
    c.deliver();
    BOOST_TEST(deliver_client_messages_to_0(c, reader.client_ids().at(0)) == 0);
    BOOST_TEST(!read->done);

    // Healed, the query is answered by the new primary, with the new value.
    c.isolate(0, false);
    BOOST_TEST_REQUIRE(c.run_until([&] { return read->done; }));
    BOOST_TEST((read->status == vsr::result_status::ok));
    BOOST_TEST(read->value == "new");
    BOOST_TEST(c.replica(0).counters().queries_answered == 0u);
    BOOST_TEST(c.replica(new_primary).counters().queries_answered >= 1u);
}

// The same scenario with the confirmation round planted away: the deposed primary answers the
// stale value. Shows the test above fails when the protection is missing.
BOOST_AUTO_TEST_CASE(without_the_round_a_deposed_primary_answers_stale_data) {
    vsr::config config = test_config();
    config.bug = vsr::planted_bug::query_without_round;
    cluster c(config);
    auto& reader = c.add_client(1, 11);
    auto& writer = c.add_client(1, 22);
    require_ok(*c.execute(reader, kv_put("k", "old")));
    require_ok(*c.execute(writer, kv_put("other", "x")));
    c.settle();
    depose_primary_0(c, writer);

    auto read = submit(reader, kv_get("k"), vsr::request_kind::query);
    BOOST_TEST(deliver_client_messages_to_0(c, reader.client_ids().at(0)) == 1);
    c.deliver();
    BOOST_TEST(read->done);
    BOOST_TEST(read->value == "old");  // stale: "new" was acknowledged before this query was sent
}

BOOST_AUTO_TEST_CASE(queries_wait_for_a_quorum) {
    cluster c(test_config());
    auto& client = c.add_client();
    require_ok(*c.execute(client, kv_put("k", "v")));
    c.settle();
    c.isolate(1);
    c.isolate(2);
    auto read = submit(client, kv_get("k"), vsr::request_kind::query);
    c.run(20);  // the round is resent, nobody answers
    BOOST_TEST(!read->done);
    BOOST_TEST(c.replica(0).counters().queries_answered == 0u);
    c.isolate(1, false);
    BOOST_TEST_REQUIRE(c.run_until([&] { return read->done; }));
    BOOST_TEST(read->value == "v");
    // The client's retries arrived too; each is answered (the client keeps the first).
    BOOST_TEST(c.replica(0).counters().queries_answered >= 1u);
}
