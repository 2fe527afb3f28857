#define BOOST_TEST_MODULE client_table
// The header under test comes first: proves it is self-contained.
#include "vsr/client_table.hpp"

#ifndef BOOST_TEST_DYN_LINK  // meson's boost dependency may define it already
#define BOOST_TEST_DYN_LINK
#endif
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <iterator>
#include <vector>

namespace {

using bytes = std::vector<std::uint8_t>;

bytes snapshot_of(const vsr::client_table& table) {
    bytes out;
    table.snapshot(out);
    return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(empty_table) {
    const vsr::client_table table(4);
    BOOST_TEST(table.size() == 0u);
    BOOST_TEST(table.capacity() == 4u);
    BOOST_TEST(table.find(1) == nullptr);
}

BOOST_AUTO_TEST_CASE(register_creates_session) {
    vsr::client_table table(4);
    const auto evicted = table.register_session(42, 7, 3);
    BOOST_TEST(!evicted.has_value());
    BOOST_TEST(table.size() == 1u);
    const vsr::client_session* s = table.find(42);
    BOOST_TEST_REQUIRE(s != nullptr);
    BOOST_TEST(s->client_id == 42u);
    BOOST_TEST(s->session == 7u);  // the op that registered it
    BOOST_TEST(s->request_number == 0u);
    BOOST_TEST(s->last_active_op == 7u);
    BOOST_TEST(s->reply_op == 7u);
    BOOST_TEST(s->reply_index == 3u);
    BOOST_TEST(s->reply.empty());
    BOOST_TEST(table.find(43) == nullptr);
}

BOOST_AUTO_TEST_CASE(record_reply_updates_session) {
    vsr::client_table table(4);
    table.register_session(42, 7, 0);
    const bytes reply{0, 'v'};
    table.record_reply(42, 1, 9, 2, reply);
    const vsr::client_session* s = table.find(42);
    BOOST_TEST_REQUIRE(s != nullptr);
    BOOST_TEST(s->session == 7u);  // unchanged
    BOOST_TEST(s->request_number == 1u);
    BOOST_TEST(s->last_active_op == 9u);
    BOOST_TEST(s->reply_op == 9u);
    BOOST_TEST(s->reply_index == 2u);
    BOOST_TEST(s->reply == reply, boost::test_tools::per_element());

    // A later reply replaces the stored one (only the latest is kept for retries).
    table.record_reply(42, 2, 12, 0, bytes{1});
    BOOST_TEST(s->request_number == 2u);
    BOOST_TEST(s->reply == bytes{1}, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(record_reply_for_unknown_client_is_ignored) {
    vsr::client_table table(4);
    table.register_session(1, 1, 0);
    const bytes before = snapshot_of(table);
    table.record_reply(2, 1, 5, 0, bytes{0});
    BOOST_TEST(table.size() == 1u);
    BOOST_TEST(table.find(2) == nullptr);
    BOOST_TEST(snapshot_of(table) == before);
}

BOOST_AUTO_TEST_CASE(evicts_least_recently_active_at_bound) {
    vsr::client_table table(2);
    table.register_session(10, 1, 0);
    table.register_session(20, 2, 0);
    table.record_reply(10, 1, 5, 0, bytes{0});  // 10 active at op 5, 20 last at op 2
    const auto evicted = table.register_session(30, 6, 0);
    BOOST_TEST_REQUIRE(evicted.has_value());
    BOOST_TEST(evicted->client_id == 20u);
    BOOST_TEST(evicted->session == 2u);  // so the primary can address the eviction
    BOOST_TEST(table.size() == 2u);
    BOOST_TEST(table.find(20) == nullptr);
    BOOST_TEST(table.find(10) != nullptr);
    BOOST_TEST(table.find(30) != nullptr);
}

BOOST_AUTO_TEST_CASE(eviction_tie_broken_by_smaller_client_id) {
    // Both sessions registered in the same entry (same op): the smaller id goes, whatever the
    // insertion order, so every replica evicts the same one.
    for (const bool reversed : {false, true}) {
        vsr::client_table table(2);
        if (reversed) {
            table.register_session(9, 1, 1);
            table.register_session(4, 1, 0);
        } else {
            table.register_session(4, 1, 0);
            table.register_session(9, 1, 1);
        }
        const auto evicted = table.register_session(6, 2, 0);
        BOOST_TEST_CONTEXT("reversed " << reversed) {
            BOOST_TEST_REQUIRE(evicted.has_value());
            BOOST_TEST(evicted->client_id == 4u);
            BOOST_TEST(table.find(9) != nullptr);
        }
    }
}

BOOST_AUTO_TEST_CASE(eviction_order_is_by_activity_not_id) {
    vsr::client_table table(3);
    table.register_session(1, 1, 0);
    table.register_session(2, 2, 0);
    table.register_session(3, 3, 0);
    table.record_reply(1, 1, 10, 0, {});
    table.record_reply(3, 1, 11, 0, {});
    // Now 2 is least active, then 1, then 3.
    BOOST_TEST(table.register_session(4, 12, 0).value().client_id == 2u);
    BOOST_TEST(table.register_session(5, 13, 0).value().client_id == 1u);
    BOOST_TEST(table.register_session(6, 14, 0).value().client_id == 3u);
    BOOST_TEST(table.register_session(7, 15, 0).value().client_id == 4u);
}

BOOST_AUTO_TEST_CASE(no_eviction_below_bound) {
    vsr::client_table table(3);
    BOOST_TEST(!table.register_session(1, 1, 0).has_value());
    BOOST_TEST(!table.register_session(2, 2, 0).has_value());
    BOOST_TEST(!table.register_session(3, 3, 0).has_value());
    BOOST_TEST(table.size() == 3u);
}

BOOST_AUTO_TEST_CASE(reregistering_a_present_client_evicts_nobody) {
    // The table does not refuse it (the replica checks find() first); it restarts the session.
    vsr::client_table table(2);
    table.register_session(1, 1, 0);
    table.register_session(2, 2, 0);
    table.record_reply(1, 4, 3, 0, bytes{7});
    const auto evicted = table.register_session(1, 5, 0);
    BOOST_TEST(!evicted.has_value());
    BOOST_TEST(table.size() == 2u);
    BOOST_TEST(table.find(2) != nullptr);
    BOOST_TEST(table.find(1)->session == 5u);
    BOOST_TEST(table.find(1)->request_number == 0u);
    BOOST_TEST(table.find(1)->reply.empty());
}

BOOST_AUTO_TEST_CASE(capacity_one) {
    vsr::client_table table(1);
    table.register_session(1, 1, 0);
    const auto evicted = table.register_session(2, 2, 0);
    BOOST_TEST_REQUIRE(evicted.has_value());
    BOOST_TEST(evicted->client_id == 1u);
    BOOST_TEST(table.size() == 1u);
}

BOOST_AUTO_TEST_CASE(snapshot_is_independent_of_insertion_order) {
    vsr::client_table a(16);
    vsr::client_table b(16);
    const std::uint64_t ids[] = {900, 3, 77, 12, 5000, 1};
    for (std::size_t i = 0; i < std::size(ids); ++i) a.register_session(ids[i], i + 1, 0);
    // Same sessions (same op per id) inserted in reverse order.
    for (std::size_t i = std::size(ids); i-- > 0;) b.register_session(ids[i], i + 1, 0);
    a.record_reply(77, 1, 10, 1, bytes{0, 'x'});
    b.record_reply(77, 1, 10, 1, bytes{0, 'x'});
    BOOST_TEST(snapshot_of(a) == snapshot_of(b), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(snapshot_layout_and_sensitivity) {
    vsr::client_table table(4);
    BOOST_TEST(snapshot_of(table) == bytes(8, 0), boost::test_tools::per_element());  // count 0
    table.register_session(5, 2, 1);
    table.record_reply(5, 3, 4, 1, bytes{0xAA, 0xBB});
    const bytes snap = snapshot_of(table);
    // u64 count | u64 id | u64 session | u64 request | u64 active | u64 reply_op | u32 index
    // | u32 reply size | reply | u8 reply status
    BOOST_TEST(snap.size() == 8u + 5 * 8 + 4 + 4 + 2 + 1);
    BOOST_TEST(vsr::load_le64(snap.data()) == 1u);
    BOOST_TEST(vsr::load_le64(snap.data() + 8) == 5u);
    BOOST_TEST(vsr::load_le64(snap.data() + 16) == 2u);
    BOOST_TEST(vsr::load_le64(snap.data() + 24) == 3u);
    BOOST_TEST(snap[snap.size() - 2] == 0xBB);
    BOOST_TEST(snap.back() == static_cast<std::uint8_t>(vsr::reply_status::ok));

    // Snapshot appends rather than replaces.
    bytes out{1, 2};
    table.snapshot(out);
    BOOST_TEST(out.size() == snap.size() + 2);

    // Any difference in a session changes the snapshot.
    vsr::client_table other(4);
    other.register_session(5, 2, 1);
    other.record_reply(5, 3, 4, 1, bytes{0xAA, 0xBC});
    BOOST_TEST(snapshot_of(other) != snap);
    other.record_reply(5, 3, 4, 1, bytes{0xAA, 0xBB}, vsr::reply_status::result_too_large);
    BOOST_TEST(snapshot_of(other) != snap);  // the status too
    other.record_reply(5, 3, 4, 1, bytes{0xAA, 0xBB});
    BOOST_TEST(snapshot_of(other) == snap);
}

BOOST_AUTO_TEST_CASE(decide_execute_duplicate_or_session_gone) {
    using decision = vsr::client_table::decision;
    vsr::client_table table(2);
    BOOST_TEST((table.decide(1, 1, 1) == decision::session_gone));  // never registered
    table.register_session(1, 4, 0);
    BOOST_TEST((table.decide(1, 4, 1) == decision::execute));
    BOOST_TEST((table.decide(1, 3, 1) == decision::session_gone));  // an older session
    BOOST_TEST((table.decide(1, 4, 0) == decision::duplicate));     // the registration itself
    table.record_reply(1, 1, 5, 0, bytes{0});
    BOOST_TEST((table.decide(1, 4, 1) == decision::duplicate));  // at-most-once
    BOOST_TEST((table.decide(1, 4, 2) == decision::execute));
    BOOST_TEST((table.decide(1, 4, 9) == decision::execute));  // gaps are the client's business
    // After eviction the session is gone for good.
    table.register_session(2, 6, 0);
    table.register_session(3, 7, 0);  // evicts 1 (last active at op 5)
    BOOST_TEST((table.decide(1, 4, 2) == decision::session_gone));
}

BOOST_AUTO_TEST_CASE(restore_round_trips_and_rejects_what_is_not_a_snapshot) {
    vsr::client_table table(4);
    table.register_session(9, 2, 0);
    table.register_session(3, 4, 1);
    table.record_reply(3, 1, 5, 0, bytes{1, 2, 3});
    table.record_reply(9, 7, 6, 2, bytes{}, vsr::reply_status::result_too_large);
    const bytes snap = snapshot_of(table);

    vsr::client_table restored(4);
    BOOST_TEST_REQUIRE(restored.restore(snap));
    BOOST_TEST(snapshot_of(restored) == snap);
    BOOST_TEST(restored.size() == 2u);
    BOOST_TEST(restored.find(3)->reply == (bytes{1, 2, 3}));
    BOOST_TEST((restored.find(9)->reply_outcome == vsr::reply_status::result_too_large));

    // Anything else leaves the table as it was.
    vsr::client_table small(1);
    BOOST_TEST(!small.restore(snap));  // more sessions than it holds
    BOOST_TEST(small.size() == 0u);
    for (std::size_t cut = 0; cut < snap.size(); ++cut) {
        BOOST_TEST(!restored.restore(std::span(snap).first(cut)));
    }
    bytes longer = snap;
    longer.push_back(0);
    BOOST_TEST(!restored.restore(longer));
    bytes bad_status = snap;
    bad_status.back() = 9;
    BOOST_TEST(!restored.restore(bad_status));
    // Client ids must be sorted and unique: swap the two ids.
    bytes unsorted = snap;
    std::swap_ranges(unsorted.begin() + 8, unsorted.begin() + 16,
                     unsorted.begin() + 8 + 52);  // records: 49 bytes + reply
    BOOST_TEST(!restored.restore(unsorted));
    BOOST_TEST(snapshot_of(restored) == snap);
}
