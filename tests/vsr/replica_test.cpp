#define BOOST_TEST_MODULE replica
// The header under test comes first: proves it is self-contained.
#include "vsr/replica.hpp"

#ifndef BOOST_TEST_DYN_LINK  // meson's boost dependency may define it already
#define BOOST_TEST_DYN_LINK
#endif
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <memory>
#include <numeric>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "test_cluster.hpp"

// The cluster harness (bus, manual clock, three KV replicas, clients) is in test_cluster.hpp.

using namespace test_support;

namespace {

std::string numbered(std::string_view prefix, std::uint64_t i) {
    std::string s(prefix);
    s += std::to_string(i);
    return s;
}

std::uint64_t total_decode_errors(const replica_type& replica) {
    const auto& errors = replica.counters().decode_errors;
    return std::accumulate(errors.begin(), errors.end(), std::uint64_t{0});
}

std::uint64_t decode_errors(const replica_type& replica, vsr::decode_error e) {
    return replica.counters().decode_errors[static_cast<std::size_t>(e)];
}

// A one-request log entry holding a KV put.
bytes make_entry(std::uint64_t op, std::uint64_t view, std::uint64_t client_id = 1) {
    vsr::entry_builder builder;
    builder.begin(op, view, 1'000 + op);
    const bytes operation = kv_put("forged", "value");
    builder.add({client_id, 1, 1, vsr::request_kind::operation, operation});
    builder.add({client_id + 1, 0, 0, vsr::request_kind::register_session, {}});
    return builder.finish();
}

// ---- scenario steps ----

/// A put executes, then the replicas that are up converge.
void put_and_settle(cluster& c, client_type& client, std::string_view key, std::string_view value) {
    require_ok(*c.execute(client, kv_put(key, value)));
    c.settle();
}

/// Lets the replicas converge, then checks that each of them holds key = value.
void settle_and_expect_everywhere(cluster& c, std::string_view key, std::string_view value) {
    c.settle();
    for (std::uint8_t r = 0; r < 3; ++r) BOOST_TEST(value_at(c.replica(r), key) == value);
}

/// Replica 0's log entry `op`, sent again as a view-0 prepare from replica 0 to `target`.
bytes prepare_from_0(cluster& c, std::uint8_t target, std::uint64_t op, std::uint64_t commit = 0) {
    vsr::header h = header_of(vsr::command::prepare, 0, target, 0);
    h.op = op;
    h.commit = commit;
    return encode(h, c.replica(0).log().entry(op));
}

bool all_done(const std::vector<std::shared_ptr<outcome>>& results) {
    return std::all_of(results.begin(), results.end(), [](const auto& r) { return r->done; });
}

/// Two clients (seeds 11 and 22) and a client table with room for one session.
struct one_session_table {
    static vsr::config table_config() {
        vsr::config config = test_config();
        config.clients_max = 1;
        return config;
    }
    cluster c{table_config()};
    client_type& first = c.add_client(1, 11);
    client_type& second = c.add_client(1, 22);
    const std::uint64_t first_id = first.client_ids().at(0);
};

}  // namespace

// ---- (1) the happy path -----------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(put_then_get_commits_on_all_replicas) {
    cluster c(test_config());
    auto& client = c.add_client();

    const auto put = c.execute(client, kv_put("k", "v"));
    require_ok(*put);
    BOOST_TEST(put->op == 2u);  // op 1 registered the session
    const auto get = c.execute(client, kv_get("k"));
    require_ok(*get);
    BOOST_TEST(get->value == "v");
    BOOST_TEST(get->op == 3u);
    BOOST_TEST(put->calls == 1);
    BOOST_TEST(get->calls == 1);

    c.settle();
    for (std::uint8_t r = 0; r < 3; ++r) {
        BOOST_TEST_CONTEXT("replica " << int{r}) {
            const replica_type& replica = c.replica(r);
            BOOST_TEST((replica.status() == vsr::replica_status::normal));
            BOOST_TEST(replica.view() == 0u);
            BOOST_TEST(replica.is_primary() == (r == 0));
            BOOST_TEST(replica.op() == 3u);
            BOOST_TEST(replica.commit_executed() == 3u);
            BOOST_TEST(value_at(replica, "k") == "v");
            BOOST_TEST(replica.clients().size() == 1u);
            BOOST_TEST(state_of(replica) == state_of(c.replica(0)));
        }
    }
}

BOOST_AUTO_TEST_CASE(get_of_missing_key_and_cas) {
    cluster c(test_config());
    auto& client = c.add_client();
    const auto missing = c.execute(client, kv_get("nope"));
    BOOST_TEST((missing->status == vsr::result_status::ok));
    BOOST_TEST((missing->kv_status == kv::status::not_found));
    require_ok(*c.execute(client, kv_put("k", "1")));
    const auto mismatch = c.execute(client, kv_cas("k", "0", "2"));
    BOOST_TEST((mismatch->kv_status == kv::status::mismatch));
    require_ok(*c.execute(client, kv_cas("k", "1", "2")));
    settle_and_expect_everywhere(c, "k", "2");
}

// ---- (2) malformed input --------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(malformed_input_is_counted_and_harmless) {
    cluster c(test_config());
    auto& client = c.add_client();
    put_and_settle(c, client, "a", "1");

    replica_type& primary = c.replica(0);
    replica_type& backup = c.replica(1);

    // A valid commit heartbeat from the primary to the backup: the template for the rest.
    vsr::header heartbeat = header_of(vsr::command::commit, 0, 1, 0);
    heartbeat.op = primary.op();
    heartbeat.commit = primary.commit();

    // Random garbage.
    {
        vsr::xoshiro256 random(9);
        bytes garbage(200);
        for (auto& b : garbage) b = static_cast<std::uint8_t>(random.next_u64());
        const auto before = total_decode_errors(backup);
        backup.on_message(garbage);
        BOOST_TEST(total_decode_errors(backup) == before + 1);
    }
    {
        const auto before = decode_errors(backup, vsr::decode_error::too_short);
        backup.on_message(bytes(10, 0xAB));
        backup.on_message({});
        BOOST_TEST(decode_errors(backup, vsr::decode_error::too_short) == before + 2);
    }
    {
        const auto before = decode_errors(backup, vsr::decode_error::too_long);
        backup.on_message(bytes(backup.configuration().message_size_max + 1, 0));
        BOOST_TEST(decode_errors(backup, vsr::decode_error::too_long) == before + 1);
    }
    // A valid message of another cluster.
    {
        vsr::header h = heartbeat;
        h.cluster = cluster_id + 1;
        const auto before = decode_errors(backup, vsr::decode_error::wrong_cluster);
        backup.on_message(encode(h));
        BOOST_TEST(decode_errors(backup, vsr::decode_error::wrong_cluster) == before + 1);
    }
    // Addressing: wrong target, itself as sender, a sender out of range, a client command.
    {
        const auto before = backup.counters().dropped_misaddressed;
        vsr::header wrong_target = heartbeat;
        wrong_target.target = 2;
        backup.on_message(encode(wrong_target));
        vsr::header from_itself = heartbeat;
        from_itself.sender = 1;
        backup.on_message(encode(from_itself));
        vsr::header from_nowhere = heartbeat;
        from_nowhere.sender = 7;
        backup.on_message(encode(from_nowhere));
        vsr::header from_client = heartbeat;
        from_client.sender = vsr::address_client;
        backup.on_message(encode(from_client));
        vsr::header reply = heartbeat;
        reply.cmd = vsr::command::reply;
        backup.on_message(encode(reply));
        BOOST_TEST(backup.counters().dropped_misaddressed == before + 5);
    }
    // A prepare cut short.
    {
        vsr::header h = heartbeat;
        h.cmd = vsr::command::prepare;
        h.op = backup.op() + 1;
        bytes truncated = encode(h, make_entry(backup.op() + 1, 0));
        truncated.resize(truncated.size() - 5);
        const auto before = decode_errors(backup, vsr::decode_error::size_mismatch);
        backup.on_message(truncated);
        BOOST_TEST(decode_errors(backup, vsr::decode_error::size_mismatch) == before + 1);
    }
    // A prepare whose body is corrupt but re-sealed, so only body validation can catch it.
    {
        const std::uint64_t op_before = backup.op();
        const auto before = backup.counters().dropped_malformed_body;
        vsr::header h = heartbeat;
        h.cmd = vsr::command::prepare;
        h.op = op_before + 1;
        bytes entry = make_entry(op_before + 1, 0);
        entry[vsr::entry_header_size + 28] = 9;  // request kind
        backup.on_message(encode(h, entry));
        // A well-formed entry for a different op than the header says.
        backup.on_message(encode(h, make_entry(op_before + 2, 0)));
        // An entry tagged with a view newer than the prepare's.
        backup.on_message(encode(h, make_entry(op_before + 1, 5)));
        // Not an entry at all.
        backup.on_message(encode(h, bytes(40, 0xFF)));
        BOOST_TEST(backup.counters().dropped_malformed_body == before + 4);
        BOOST_TEST(backup.op() == op_before);
    }
    // Requests: a bad request kind at the primary, and any request at a backup.
    {
        vsr::header h = header_of(vsr::command::request, vsr::address_client, 0, 0);
        h.client_id = 12345;
        h.extra = 9;
        const auto malformed = primary.counters().dropped_malformed_body;
        primary.on_message(encode(h));
        BOOST_TEST(primary.counters().dropped_malformed_body == malformed + 1);
        h.target = 1;
        h.extra = 0;
        const auto not_primary = backup.counters().dropped_not_primary;
        backup.on_message(encode(h));
        BOOST_TEST(backup.counters().dropped_not_primary == not_primary + 1);
    }
    // Every single-bit flip of a valid message is a decode error, counted exactly once.
    {
        const bytes valid = encode(heartbeat);
        vsr::xoshiro256 random(10);
        for (int i = 0; i < 500; ++i) {
            bytes m = valid;
            const auto bit = vsr::uniform_below(random, m.size() * 8);
            m[bit / 8] = static_cast<std::uint8_t>(m[bit / 8] ^ (1u << (bit % 8)));
            const auto before = total_decode_errors(backup);
            backup.on_message(m);
            BOOST_TEST_REQUIRE(total_decode_errors(backup) == before + 1);
        }
    }
    c.deliver();  // whatever the replicas answered to the valid messages

    // The cluster still works, and nothing above changed the replicated state.
    BOOST_TEST(value_at(backup, "a") == "1");
    require_ok(*c.execute(client, kv_put("b", "2")));
    const auto get = c.execute(client, kv_get("a"));
    require_ok(*get);
    BOOST_TEST(get->value == "1");
    c.settle();
    for (std::uint8_t r = 0; r < 3; ++r) {
        BOOST_TEST(value_at(c.replica(r), "b") == "2");
        BOOST_TEST(!c.replica(r).state_machine().find("forged").has_value());
        BOOST_TEST(state_of(c.replica(r)) == state_of(primary));
    }
}

BOOST_AUTO_TEST_CASE(resealed_prepare_mutations_never_crash_a_backup) {
    // Each mutation either still parses as an entry (and is appended) or is counted as a
    // malformed body: never a crash, never silently dropped.
    const vsr::config config = test_config();
    vsr::header h = header_of(vsr::command::prepare, 0, 1, 0);
    h.op = 1;
    const bytes valid = encode(h, make_entry(1, 0));
    vsr::xoshiro256 mutations(11);
    for (int i = 0; i < 400; ++i) {
        queue_bus bus;
        manual_clock clock;
        vsr::xoshiro256 random(static_cast<std::uint64_t>(i));
        replica_type backup(config, 1, bus, clock, random, false);
        bytes m = valid;
        const auto bit = vsr::header_size * 8 + vsr::uniform_below(mutations, (m.size() - vsr::header_size) * 8);
        m[bit / 8] = static_cast<std::uint8_t>(m[bit / 8] ^ (1u << (bit % 8)));
        vsr::seal(m, cluster_id);
        backup.on_message(m);
        BOOST_TEST_CONTEXT("bit " << bit) {
            BOOST_TEST_REQUIRE((backup.op() == 1u) != (backup.counters().dropped_malformed_body == 1u));
        }
    }
}

BOOST_AUTO_TEST_CASE(forged_headers_never_crash) {
    // Well-sealed messages with arbitrary (small) header values and bodies that are empty,
    // garbage, one entry, or a suffix. A crash-fault protocol need not make sense of them,
    // but it must not crash on them.
    const vsr::config config = test_config();
    vsr::xoshiro256 random(12);
    for (int i = 0; i < 2000; ++i) {
        cluster c(config);
        auto& client = c.add_client();
        if (i % 4 == 0) require_ok(*c.execute(client, kv_put("k", "v")));  // a nonempty log
        for (int j = 0; j < 5; ++j) {
            vsr::header h;
            h.cmd = static_cast<vsr::command>(1 + vsr::uniform_below(random, vsr::command_max));
            h.sender = static_cast<std::uint8_t>(vsr::uniform_below(random, 3));
            h.target = static_cast<std::uint8_t>(vsr::uniform_below(random, 3));
            h.cluster = cluster_id;
            h.view = vsr::uniform_below(random, 3);
            h.op = vsr::uniform_below(random, 4);
            h.commit = vsr::uniform_below(random, 4);
            h.extra = vsr::uniform_below(random, 3);
            h.client_id = vsr::uniform_below(random, 3);
            h.session = vsr::uniform_below(random, 3);
            h.request_number = vsr::uniform_below(random, 3);
            bytes body;
            switch (vsr::uniform_below(random, 4)) {
                case 0: break;
                case 1:
                    body.resize(vsr::uniform_below(random, 64));
                    for (auto& b : body) b = static_cast<std::uint8_t>(random.next_u64());
                    break;
                case 2: body = make_entry(std::max<std::uint64_t>(h.op, 1), h.view); break;
                case 3: {
                    const std::uint64_t prev = vsr::uniform_below(random, 3);
                    vsr::byte_writer w(body);
                    w.u64(prev);
                    w.u64(0);
                    const auto count = static_cast<std::uint32_t>(vsr::uniform_below(random, 3));
                    w.u32(count);
                    w.u32(0);
                    for (std::uint32_t e = 0; e < count; ++e) {
                        const bytes entry = make_entry(prev + 1 + e, vsr::uniform_below(random, 2));
                        w.u32(static_cast<std::uint32_t>(entry.size()));
                        w.bytes(entry);
                    }
                    break;
                }
            }
            const bytes m = encode(h, body);
            BOOST_TEST_CHECKPOINT("iteration " << i << " message " << j << " command " << int(h.cmd));
            c.replica(h.target).on_message(m);
        }
        c.run(5);
    }
}

// ---- (3) view change ------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(view_change_elects_new_primary_and_keeps_committed_data) {
    cluster c(test_config());
    auto& client = c.add_client();
    put_and_settle(c, client, "old", "1");
    const std::uint64_t committed = c.replica(0).commit_executed();

    c.isolate(0);  // the primary of view 0 goes silent
    BOOST_TEST_REQUIRE(c.run_until([&] { return c.elected_without_0(); }));
    const std::uint64_t view = c.replica(1).view();
    const std::uint8_t new_primary = c.replica(1).is_primary() ? 1 : 2;
    BOOST_TEST(c.replica(new_primary).counters().views_started_as_primary >= 1u);
    BOOST_TEST(c.replica(new_primary).commit_executed() >= committed);

    // New operations commit under the new primary (the client finds it by retrying).
    require_ok(*c.execute(client, kv_put("new", "2")));
    const auto old = c.execute(client, kv_get("old"));
    require_ok(*old);
    BOOST_TEST(old->value == "1");
    BOOST_TEST(client.view() >= view);
    c.settle();
    for (const std::uint8_t r : {std::uint8_t{1}, std::uint8_t{2}}) {
        BOOST_TEST(value_at(c.replica(r), "new") == "2");
        BOOST_TEST(value_at(c.replica(r), "old") == "1");
    }

    // The old primary comes back, learns the new view and catches up.
    c.isolate(0, false);
    c.settle();
    BOOST_TEST(c.replica(0).view() == c.replica(1).view());
    BOOST_TEST(!c.replica(0).is_primary());
    BOOST_TEST(value_at(c.replica(0), "new") == "2");
    BOOST_TEST(state_of(c.replica(0)) == state_of(c.replica(new_primary)));
}

BOOST_AUTO_TEST_CASE(view_change_keeps_uncommitted_but_prepared_operation) {
    // The primary prepares an operation, a backup acknowledges it, and the primary dies before
    // anyone else learns the commit. The operation was acknowledged to nobody yet, but it is in a
    // quorum of logs, so the new view must keep it.
    cluster c(test_config());
    auto& client = c.add_client();
    put_and_settle(c, client, "k", "1");

    auto pending = submit(client, kv_put("k", "2"));
    // Round 1: the request reaches the primary, which sends prepares.
    c.deliver_to(0);
    // Round 2: backups append and acknowledge; the acknowledgements are lost with the primary.
    c.deliver_to(1);
    c.deliver_to(2);
    BOOST_TEST(c.replica(1).op() == c.replica(0).op());
    c.isolate(0);
    c.bus().to_replica[0].clear();

    BOOST_TEST_REQUIRE(c.run_until([&] { return pending->done; }));
    // The client's retry reaches the new primary, which answers from its client table once the
    // inherited entry executed: the operation ran exactly once.
    require_ok(*pending);
    c.settle();
    BOOST_TEST(value_at(c.replica(1), "k") == "2");
    BOOST_TEST(value_at(c.replica(2), "k") == "2");
}

BOOST_AUTO_TEST_CASE(view_change_keeps_operation_committed_without_new_primary) {
    // The old primary commits an operation with the help of replica 2 only, answers the
    // client, and dies. Replica 1, the primary of view 1, never saw it: it must take the log
    // from replica 2's do_view_change (same last normal view, higher op), not its own.
    cluster c(test_config());
    auto& client = c.add_client();
    put_and_settle(c, client, "k", "1");

    auto pending = submit(client, kv_put("k", "2"));
    c.deliver_to(0);                                                 // request
    c.bus().to_replica[1].clear();                                   // replica 1 loses its prepare
    c.deliver_to(2);                                                 // prepare
    c.deliver_to(0);                                                 // prepare_ok
    BOOST_TEST_REQUIRE(c.replica(0).commit() == c.replica(0).op());  // committed by 0 and 2
    BOOST_TEST_REQUIRE(c.replica(1).op() < c.replica(0).op());
    c.isolate(0);
    c.deliver();  // the reply reaches the client
    require_ok(*pending);

    const auto read = c.execute(client, kv_get("k"));
    require_ok(*read);
    BOOST_TEST(read->value == "2");  // an acknowledged write survives the view change
    BOOST_TEST(c.replica(1).view() >= 1u);
    c.settle();
    BOOST_TEST(value_at(c.replica(1), "k") == "2");
}

BOOST_AUTO_TEST_CASE(primary_does_not_commit_without_quorum) {
    cluster c(test_config());
    auto& client = c.add_client();
    put_and_settle(c, client, "k", "1");
    const std::uint64_t commit = c.replica(0).commit();

    c.isolate(1);
    c.isolate(2);
    auto pending = submit(client, kv_put("k", "2"));
    c.run(20);  // the primary prepares and resends, but nobody acknowledges
    BOOST_TEST(c.replica(0).op() == commit + 1);
    BOOST_TEST(c.replica(0).commit() == commit);
    BOOST_TEST(c.replica(0).commit_executed() == commit);
    BOOST_TEST(value_at(c.replica(0), "k") == "1");
    BOOST_TEST(!pending->done);

    c.isolate(1, false);  // one backup back: a quorum again
    BOOST_TEST_REQUIRE(c.run_until([&] { return pending->done; }));
    require_ok(*pending);
    BOOST_TEST(value_at(c.replica(0), "k") == "2");
}

BOOST_AUTO_TEST_CASE(prepare_after_a_gap_is_not_acknowledged) {
    vsr::config config = test_config();
    config.batch_requests_max = 1;  // one prepare per request, so there are two to lose one of
    cluster c(config);
    auto& client = c.add_client(2);
    put_and_settle(c, client, "warm", "up");  // registers both sessions
    replica_type& backup = c.replica(1);
    const std::uint64_t held = backup.op();

    auto first = submit(client, kv_put("x", "1"));
    auto second = submit(client, kv_put("y", "2"));
    c.deliver_to(0);
    BOOST_TEST_REQUIRE(c.replica(0).op() == held + 2);
    auto prepares = std::exchange(c.bus().to_replica[1], {});
    BOOST_TEST_REQUIRE(prepares.size() == 2u);
    BOOST_TEST_REQUIRE(decode(prepares[1]).op == held + 2);

    const std::size_t acks = c.bus().to_replica[0].size();
    backup.on_message(prepares[1]);  // op held + 1 was lost
    BOOST_TEST(backup.op() == held);
    BOOST_TEST_REQUIRE(c.bus().to_replica[0].size() == acks + 1);
    const vsr::header ack = decode(c.bus().to_replica[0].back());
    BOOST_TEST((ack.cmd == vsr::command::prepare_ok));
    BOOST_TEST(ack.op == held);  // claims only what it holds, so the primary resends the gap

    BOOST_TEST_REQUIRE(c.run_until([&] { return first->done && second->done; }));
    c.settle();
    BOOST_TEST(value_at(backup, "x") == "1");
    BOOST_TEST(value_at(backup, "y") == "2");
    BOOST_TEST(state_of(backup) == state_of(c.replica(0)));
}

// ---- (4) batching ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(requests_are_batched_under_load) {
    cluster c(test_config());
    constexpr std::uint32_t sessions = 32;
    auto& client = c.add_client(sessions);
    std::vector<std::shared_ptr<outcome>> results;
    for (std::uint32_t i = 0; i < sessions; ++i) {
        results.push_back(submit(client, kv_put(numbered("key", i), std::to_string(i))));
    }
    BOOST_TEST_REQUIRE(c.run_until([&] { return all_done(results); }));
    for (const auto& r : results) require_ok(*r);

    c.settle();
    const replica_type& primary = c.replica(0);
    const std::uint64_t requests = 2 * sessions;  // one registration and one put per session
    BOOST_TEST(primary.op() < requests);          // fewer prepares than requests
    std::uint64_t in_log = 0;
    std::uint32_t largest_batch = 0;
    for (std::uint64_t op = 1; op <= primary.op(); ++op) {
        const auto h = vsr::read_entry_header(primary.log().entry(op));
        in_log += h.request_count;
        largest_batch = std::max(largest_batch, h.request_count);
    }
    BOOST_TEST(in_log == requests);  // each request exactly once
    BOOST_TEST(largest_batch > 1u);
    for (std::uint8_t r = 0; r < 3; ++r) {
        BOOST_TEST(c.replica(r).state_machine().size() == sessions);
        BOOST_TEST(value_at(c.replica(r), "key31") == "31");
        BOOST_TEST(state_of(c.replica(r)) == state_of(primary));
    }
}

BOOST_AUTO_TEST_CASE(batch_requests_max_bounds_each_entry) {
    vsr::config config = test_config();
    config.batch_requests_max = 3;
    config.pipeline_max = 1;  // queue up everything behind one prepare
    cluster c(config);
    auto& client = c.add_client(10);
    std::vector<std::shared_ptr<outcome>> results;
    for (int i = 0; i < 10; ++i) results.push_back(submit(client, kv_put(numbered("k", i), "v")));
    BOOST_TEST_REQUIRE(c.run_until([&] { return all_done(results); }));
    for (const auto& r : results) require_ok(*r);
    const replica_type& primary = c.replica(0);
    for (std::uint64_t op = 1; op <= primary.op(); ++op) {
        BOOST_TEST(vsr::read_entry_header(primary.log().entry(op)).request_count <= 3u);
    }
}

// ---- (5) deduplication ----------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(duplicate_request_executes_once) {
    cluster c(test_config());
    auto& client = c.add_client();
    put_and_settle(c, client, "k", "v0");
    replica_type& primary = c.replica(0);
    const std::uint64_t client_id = client.client_ids().at(0);

    // A cas: executing it a second time would fail with mismatch and record that reply.
    auto cas = submit(client, kv_cas("k", "v0", "v1"));
    auto& queue = c.bus().to_replica[0];
    BOOST_TEST_REQUIRE(queue.size() == 1u);
    const bytes request = queue.back();
    const vsr::header request_header = decode(request);
    queue.push_back(request);  // duplicated in flight

    const std::uint64_t op_before = primary.op();
    const auto duplicates_before = primary.counters().dropped_duplicate_request;
    BOOST_TEST_REQUIRE(c.run_until([&] { return cas->done; }));
    require_ok(*cas);
    BOOST_TEST(cas->calls == 1);
    BOOST_TEST(primary.op() == op_before + 1);
    BOOST_TEST(primary.counters().dropped_duplicate_request == duplicates_before + 1);

    // The same request again, after it executed: answered from the client table.
    const auto executed = primary.counters().ops_executed;
    const auto resent = primary.counters().replies_resent;
    const auto client_dropped = client.counters().dropped_messages;
    c.bus().to_replica[0].push_back(request);
    c.deliver();
    BOOST_TEST(primary.op() == op_before + 1);
    BOOST_TEST(primary.counters().ops_executed == executed);
    BOOST_TEST(primary.counters().replies_resent == resent + 1);
    const bytes& reply = c.bus().client_log.back();
    const vsr::header reply_header = decode(reply);
    BOOST_TEST(reply_header.request_number == request_header.request_number);
    BOOST_TEST(reply_header.op == op_before + 1);
    const auto reply_body = vsr::message_body(reply);
    BOOST_TEST(bytes(reply_body.begin(), reply_body.end()) == bytes{static_cast<std::uint8_t>(kv::status::ok)});
    BOOST_TEST(client.counters().dropped_messages == client_dropped + 1);  // already completed
    BOOST_TEST(cas->calls == 1);

    c.settle();
    for (std::uint8_t r = 0; r < 3; ++r) {
        BOOST_TEST_CONTEXT("replica " << int{r}) {
            const vsr::client_session* session = c.replica(r).clients().find(client_id);
            BOOST_TEST_REQUIRE(session != nullptr);
            BOOST_TEST(session->request_number == request_header.request_number);
            BOOST_TEST(session->reply == bytes{static_cast<std::uint8_t>(kv::status::ok)});
            BOOST_TEST(value_at(c.replica(r), "k") == "v1");
        }
    }
}

BOOST_AUTO_TEST_CASE(duplicate_prepare_is_not_appended_twice) {
    cluster c(test_config());
    auto& client = c.add_client();
    put_and_settle(c, client, "k", "v");
    auto pending = submit(client, kv_put("k", "w"));
    c.deliver();
    BOOST_TEST_REQUIRE(pending->done);
    // Replay every prepare the backup ever got for ops it already has.
    replica_type& backup = c.replica(1);
    const std::uint64_t op = backup.op();
    for (std::uint64_t at = 1; at <= op; ++at) backup.on_message(prepare_from_0(c, 1, at, c.replica(0).commit()));
    BOOST_TEST(backup.op() == op);
    c.settle();
    BOOST_TEST(state_of(backup) == state_of(c.replica(0)));
}

// ---- (6) log length: see checkpoint_test.cpp -------------------------------------------

// ---- (7) session eviction -------------------------------------------------------------------

BOOST_FIXTURE_TEST_CASE(evicted_session_gets_session_evicted, one_session_table) {
    const std::uint64_t second_id = second.client_ids().at(0);
    BOOST_TEST_REQUIRE(first_id != second_id);
    require_ok(*c.execute(first, kv_put("a", "1")));

    // The second client's registration reaches the primary just before the first client's
    // next request, so that request is admitted but its session is gone when it executes.
    auto from_second = submit(second, kv_put("b", "2"));
    auto from_first = submit(first, kv_put("a", "changed"));
    BOOST_TEST_REQUIRE(c.run_until([&] { return from_first->done && from_second->done; }));

    BOOST_TEST((from_first->status == vsr::result_status::session_evicted));
    BOOST_TEST(from_first->calls == 1);
    require_ok(*from_second);
    BOOST_TEST(first.counters().evictions == 1u);
    c.settle();
    for (std::uint8_t r = 0; r < 3; ++r) {
        BOOST_TEST_CONTEXT("replica " << int{r}) {
            const replica_type& replica = c.replica(r);
            BOOST_TEST(value_at(replica, "a") == "1");  // the evicted request did not execute
            BOOST_TEST(value_at(replica, "b") == "2");
            BOOST_TEST(replica.clients().size() == 1u);
            BOOST_TEST(replica.clients().find(first_id) == nullptr);
            BOOST_TEST(replica.clients().find(second_id) != nullptr);
            BOOST_TEST(replica.counters().sessions_evicted == 1u);
        }
    }

    // The evicted client registers again (evicting the other) and carries on.
    put_and_settle(c, first, "a", "again");
    BOOST_TEST(value_at(c.replica(2), "a") == "again");
    BOOST_TEST(c.replica(0).clients().find(second_id) == nullptr);
}

BOOST_FIXTURE_TEST_CASE(request_with_forgotten_session_is_told_evicted, one_session_table) {
    // The eviction notice to an idle client is lost, so it still believes in its session; its
    // next request gets session_evicted from the primary instead of executing.
    require_ok(*c.execute(first, kv_put("a", "1")));

    c.deafen(first_id);
    require_ok(*c.execute(second, kv_put("b", "2")));  // evicts the first client's session
    c.deafen(first_id, false);
    BOOST_TEST(first.counters().evictions == 0u);  // it never heard
    BOOST_TEST(c.replica(0).clients().find(first_id) == nullptr);

    const std::uint64_t op = c.replica(0).op();
    const auto stale = c.execute(first, kv_put("a", "stale"));
    BOOST_TEST((stale->status == vsr::result_status::session_evicted));
    BOOST_TEST(first.counters().evictions == 1u);
    BOOST_TEST(c.replica(0).op() == op);  // nothing was prepared for it
    settle_and_expect_everywhere(c, "a", "1");
}

// ---- (8) recovery ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(restarted_replica_recovers_committed_state) {
    cluster c(test_config());
    auto& client = c.add_client();
    put_and_settle(c, client, "k1", "1");

    c.crash(2);
    // The remaining quorum keeps committing while replica 2 is gone.
    require_ok(*c.execute(client, kv_put("k2", "2")));
    require_ok(*c.execute(client, kv_put("k3", "3")));
    c.settle();

    c.restart(2);
    BOOST_TEST((c.replica(2).status() == vsr::replica_status::recovering));
    BOOST_TEST(c.replica(2).op() == 0u);
    BOOST_TEST_REQUIRE(c.run_until([&] {
        return c.replica(2).status() == vsr::replica_status::normal &&
               c.replica(2).commit_executed() == c.replica(0).commit_executed();
    }));
    BOOST_TEST(c.replica(2).counters().recoveries_completed == 1u);
    BOOST_TEST(c.replica(2).view() == c.replica(0).view());
    BOOST_TEST(value_at(c.replica(2), "k1") == "1");
    BOOST_TEST(value_at(c.replica(2), "k2") == "2");
    BOOST_TEST(value_at(c.replica(2), "k3") == "3");
    BOOST_TEST(state_of(c.replica(2)) == state_of(c.replica(0)));

    // It takes part again: with replica 1 gone, replicas 0 and 2 form the quorum.
    c.isolate(1);
    put_and_settle(c, client, "k4", "4");
    BOOST_TEST(value_at(c.replica(2), "k4") == "4");
}

BOOST_AUTO_TEST_CASE(recovering_replica_does_not_vote) {
    // While recovering, a replica holds no log it could vouch for, so it must not acknowledge
    // prepares (that would count towards a quorum).
    cluster c(test_config());
    auto& client = c.add_client();
    put_and_settle(c, client, "k", "1");
    c.crash(2);
    c.restart(2);
    // Deliver nothing to the recovering replica; meanwhile a prepare to it must be dropped.
    const auto stale_before = c.replica(2).counters().dropped_stale_view;
    const std::size_t queued = c.bus().to_replica[0].size();
    c.replica(2).on_message(prepare_from_0(c, 2, 1));
    BOOST_TEST(c.replica(2).counters().dropped_stale_view == stale_before + 1);
    BOOST_TEST(c.replica(2).op() == 0u);
    BOOST_TEST(c.bus().to_replica[0].size() == queued);  // no prepare_ok sent
    c.settle();
    BOOST_TEST(value_at(c.replica(2), "k") == "1");
}

// ---- (9) result size limit ------------------------------------------------------------------

namespace {

/// Answers each operation with `copies` copies of itself and promises results of at most
/// `promised` bytes, so a test can make it break its promise. Operations starting with 'q' are
/// queries.
struct echo_machine {
    std::size_t promised = 8;
    std::size_t copies = 1;
    std::uint64_t executed = 0;

    void execute(const vsr::operation_context&, std::span<const std::uint8_t> operation, bytes& result) {
        ++executed;
        query(operation, result);
    }
    bool is_query(std::span<const std::uint8_t> operation) const { return !operation.empty() && operation[0] == 'q'; }
    void query(std::span<const std::uint8_t> operation, bytes& result) const {
        for (std::size_t i = 0; i < copies; ++i) result.insert(result.end(), operation.begin(), operation.end());
    }
    void snapshot(bytes& out) const { vsr::byte_writer(out).u64(executed); }
    bool restore(std::span<const std::uint8_t>) { return false; }
    std::size_t result_size_max() const { return promised; }
};
static_assert(vsr::state_machine_with_queries<echo_machine>);

/// One echo replica and one client on a queue bus, delivered by hand.
struct echo_cluster {
    using replica = vsr::basic_replica<echo_machine, queue_bus, manual_clock, vsr::xoshiro256>;
    using client = vsr::basic_client<queue_bus, vsr::xoshiro256>;

    static vsr::config single() {
        vsr::config config = test_config();
        config.replica_count = 1;
        return config;
    }
    static vsr::client_options client_options() {
        vsr::client_options options;
        options.cluster = cluster_id;
        options.replica_count = 1;
        return options;
    }

    queue_bus bus;
    manual_clock clock;
    vsr::xoshiro256 replica_random{1};
    vsr::xoshiro256 client_random{2};
    replica node;
    client user{client_options(), bus, client_random};

    explicit echo_cluster(echo_machine machine)
        : node(single(), 0, bus, clock, replica_random, false, std::move(machine)) {}

    void run() {
        for (int round = 0; round < 100 && !bus.quiet(); ++round) {
            while (!bus.to_replica[0].empty()) {
                const bytes m = std::move(bus.to_replica[0].front());
                bus.to_replica[0].pop_front();
                node.on_message(m);
            }
            while (!bus.to_client.empty()) {
                const bytes m = std::move(bus.to_client.front().second);
                bus.to_client.pop_front();
                user.on_message(m);
            }
            node.tick();
        }
    }

    /// Submits and runs to completion: the status and the body the client saw.
    std::pair<vsr::result_status, bytes> execute(std::string_view text, vsr::request_kind kind) {
        std::optional<std::pair<vsr::result_status, bytes>> seen;
        const bytes operation(text.begin(), text.end());
        BOOST_TEST_REQUIRE(
            (user.submit(
                 operation,
                 [&](const vsr::client_result& r) { seen.emplace(r.status, bytes(r.body.begin(), r.body.end())); },
                 kind) == vsr::submit_error::none));
        run();
        BOOST_TEST_REQUIRE(seen.has_value());
        return *seen;
    }
};

bytes text_bytes(std::string_view text) { return bytes(text.begin(), text.end()); }

}  // namespace

BOOST_AUTO_TEST_CASE(result_over_result_size_max_is_dropped_and_reported) {
    echo_cluster c(echo_machine{});
    BOOST_TEST(c.node.result_size_limit() == 8u);
    const auto ok = c.execute("12345678", vsr::request_kind::operation);
    BOOST_TEST(ok.first == vsr::result_status::ok);
    BOOST_TEST(ok.second == text_bytes("12345678"));

    // One byte over the machine's promise: executed, but the client learns its result is lost.
    const auto over = c.execute("123456789", vsr::request_kind::operation);
    BOOST_TEST(over.first == vsr::result_status::result_too_large);
    BOOST_TEST(over.second.empty());
    BOOST_TEST(c.node.state_machine().executed == 2u);
    BOOST_TEST(c.node.counters().results_too_large == 1u);

    // The client table remembers the status: a retry gets the same answer, without executing.
    const std::uint64_t id = c.user.client_ids().at(0);
    const vsr::client_session* session = c.node.clients().find(id);
    BOOST_TEST_REQUIRE(session != nullptr);
    BOOST_TEST((session->reply_outcome == vsr::reply_status::result_too_large));
    vsr::header retry = header_of(vsr::command::request, vsr::address_client, 0, 0);
    retry.client_id = id;
    retry.session = session->session;
    retry.request_number = session->request_number;
    c.node.on_message(encode(retry, text_bytes("123456789")));
    BOOST_TEST_REQUIRE(!c.bus.to_client.empty());
    BOOST_TEST(decode(c.bus.to_client.back().second).status ==
               static_cast<std::uint8_t>(vsr::reply_status::result_too_large));
    BOOST_TEST(c.node.state_machine().executed == 2u);
    c.bus.to_client.clear();

    // A query over the limit likewise; it changes nothing.
    const auto query = c.execute("q23456789", vsr::request_kind::query);
    BOOST_TEST(query.first == vsr::result_status::result_too_large);
    BOOST_TEST(query.second.empty());
    BOOST_TEST(c.node.counters().queries_answered == 1u);
    BOOST_TEST(c.node.counters().results_too_large == 2u);
    BOOST_TEST(c.node.state_machine().executed == 2u);
}

BOOST_AUTO_TEST_CASE(result_over_the_reply_limit_is_reported_not_emptied) {
    // A machine that promises more than a reply holds is held to the reply limit.
    echo_cluster c(echo_machine{std::numeric_limits<std::size_t>::max(), 2, 0});
    const std::size_t limit = echo_cluster::single().operation_size_max();
    BOOST_TEST(c.node.result_size_limit() == limit);
    const auto fits = c.execute(std::string(limit / 2, 'x'), vsr::request_kind::operation);
    BOOST_TEST(fits.first == vsr::result_status::ok);
    BOOST_TEST(fits.second.size() == limit / 2 * 2);
    const auto over = c.execute(std::string(limit / 2 + 1, 'x'), vsr::request_kind::operation);
    BOOST_TEST(over.first == vsr::result_status::result_too_large);  // was: ok with an empty body
    BOOST_TEST(over.second.empty());
    BOOST_TEST(c.node.counters().results_too_large == 1u);
}
