#define BOOST_TEST_MODULE replica_review
// Reproducers from a correctness review of vsr::basic_replica and vsr::basic_client.
//
// Each test drives a small deterministic scenario that broke a promised property before the fix
// that came with it; they are regression tests now. The cluster harness (test_cluster.hpp) is
// shared with replica_test.cpp.
#include "vsr/replica.hpp"

#ifndef BOOST_TEST_DYN_LINK  // meson's boost dependency may define it already
#define BOOST_TEST_DYN_LINK
#endif
#include <boost/test/unit_test.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdint>
#include <functional>
#include <limits>

#include "test_cluster.hpp"

using namespace test_support;

namespace {

/// Runs `body` in a child process; returns the signal that killed it (0 if it exited normally).
int signal_of_child(const std::function<void()>& body) {
    const pid_t pid = fork();
    BOOST_TEST_REQUIRE(pid >= 0);
    if (pid == 0) {
        std::signal(SIGABRT, SIG_DFL);  // Boost.Test's handler would turn the abort into a failure
        body();
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFSIGNALED(status) ? WTERMSIG(status) : 0;
}

}  // namespace

// ---- (1) client contract: session_evicted means "outcome unknown" ---------------------------
//
// A session can be evicted AFTER its in-flight request executed (only the reply was lost). The
// eviction notice cannot say whether it ran, so the client documents session_evicted as
// "may or may not have executed" (it once claimed "not executed", which this scenario refuted).
BOOST_AUTO_TEST_CASE(session_evicted_is_reported_for_an_executed_operation) {
    vsr::config config = test_config();
    config.clients_max = 1;
    cluster c(config);
    auto& first = c.add_client();
    auto& second = c.add_client(1, 2);

    BOOST_TEST_REQUIRE((c.execute(first, kv_put("a", "1"))->status == vsr::result_status::ok));

    // The first client's next write executes everywhere, but its reply is lost.
    const std::uint64_t first_id = first.client_ids().front();
    c.deafen(first_id);
    const auto write = submit(first, kv_put("a", "2"));
    BOOST_TEST_REQUIRE(c.run_until([&] { return value_at(c.replica(0), "a") == "2"; }));
    BOOST_TEST_REQUIRE(!write->done);
    c.deafen(first_id, false);

    // Another client registers and evicts the first (clients_max = 1).
    const auto other = submit(second, kv_put("b", "1"));
    BOOST_TEST_REQUIRE(c.run_until([&] { return write->done && other->done; }));

    const bool executed = value_at(c.replica(0), "a") == "2";
    BOOST_TEST(executed);
    BOOST_TEST_MESSAGE("first client's result: " << vsr::to_string(write->status));
    // The documented contract: session_evicted leaves the outcome open, and here it did run.
    BOOST_TEST((write->status == vsr::result_status::session_evicted));
}

// ---- (3) liveness: operations the client accepts but every replica silently drops ------------
//
// basic_client::submit accepts any operation with header_size + size <= message_size_max, but
// on_request drops (dropped_malformed_body, no reply) any body > config::operation_size_max(),
// which is about message_size_max / (pipeline_max + 1). The client retries forever (deadline
// 0 is the default) and its session is blocked for every later submission.
BOOST_AUTO_TEST_CASE(oversized_operation_is_refused_as_too_large) {
    const vsr::config config = test_config();
    cluster c(config);
    auto& client = c.add_client();
    BOOST_TEST_REQUIRE((c.execute(client, kv_put("k", "v"))->status == vsr::result_status::ok));

    const bytes big(config.operation_size_max() + 1, 0x42);
    BOOST_TEST_REQUIRE(vsr::header_size + big.size() <= config.message_size_max);
    const auto oversized = submit(client, big);
    const auto after = submit(client, kv_put("k", "w"));
    c.run_until([&] { return oversized->done; }, 6000);  // 60 s
    BOOST_TEST(c.replica(0).counters().dropped_malformed_body > 0u);
    BOOST_TEST(oversized->done, "an operation the client accepted never completes");
    BOOST_TEST((oversized->status == vsr::result_status::too_large));
    BOOST_TEST(after->done, "and the session is blocked for the next operation");
}

// ---- (4) robustness: a view number near 2^64 trips assert(new_view > view_) -----------------
//
// start_view_change (and await_start_view, on_do_view_change, on_start_view) adopt any higher
// view from a message that passes the checksum. With view = UINT64_MAX the next timeout calls
// start_view_change(view_ + 1) == start_view_change(0) and the assert at replica.hpp:635 fires.
BOOST_AUTO_TEST_CASE(forged_maximal_view_is_dropped) {
    const int sig = signal_of_child([] {
        cluster c(test_config());
        vsr::header svc = header_of(vsr::command::start_view_change, 2, 1, std::numeric_limits<std::uint64_t>::max());
        c.replica(1).on_message(encode(svc));
        for (int i = 0; i < 10'000; ++i) c.replica(1).tick();
    });
    BOOST_TEST(sig == 0, "replica aborted (signal " << sig << ") after one forged start_view_change");
}

// ---- (5) config::valid() accepts configurations that abort on the first request ------------
//
// entry_size_max() = (message_size_max - header_size - 32) / (pipeline_max + 1). With 64 KiB
// messages and pipeline_max = 1000 it is 65 bytes, operation_size_max() = 65 - 128 wraps to
// ~2^64, so on_request admits any body, and flush_requests asserts (replica.hpp:399) when the
// first request does not fit in an entry.
BOOST_AUTO_TEST_CASE(valid_rejects_entries_too_small_for_operations) {
    vsr::config config = test_config();
    config.message_size_max = 64 * 1024;
    config.pipeline_max = 1000;
    // valid() now rejects it: entries too small for config::operation_size_min.
    BOOST_TEST(!config.valid());
    config.pipeline_max = 8;  // the largest pipeline 64 KiB messages allow is 14
    BOOST_TEST_REQUIRE(config.valid());
    BOOST_TEST(config.operation_size_max() >= vsr::config::operation_size_min);
    const int sig = signal_of_child([config] {
        cluster c(config);
        auto& client = c.add_client();
        const auto result = submit(client, bytes(16, 1));
        c.run_until([&] { return result->done; }, 500);
    });
    BOOST_TEST(sig == 0, "replica aborted (signal " << sig << ") on a 16-byte operation under a valid() config");
}

// Replica 1 misses a committed write, then learns the commit number from primary 0, so it
// wants state (commit > op). Returns with the bus queues towards replicas cleared.
void make_replica_1_lag(cluster& c) {
    auto& client = c.add_client();
    c.isolate(1);
    BOOST_TEST_REQUIRE((c.execute(client, kv_put("k", "v"))->status == vsr::result_status::ok));
    c.deliver();
    c.isolate(1, false);
    replica_type& r0 = c.replica(0);
    replica_type& r1 = c.replica(1);
    BOOST_TEST_REQUIRE(r1.op() == 0u);
    vsr::header commit = header_of(vsr::command::commit, 0, 1, 0);
    commit.op = r0.op();
    commit.commit = r0.commit();
    r1.on_message(encode(commit));
    BOOST_TEST_REQUIRE(r1.commit() > r1.op());
    for (auto& queue : c.bus().to_replica) queue.clear();
}

/// A new_state from `sender` claiming `view`, carrying replica 0's committed entries.
bytes new_state_from(cluster& c, std::uint8_t sender, std::uint64_t view) {
    replica_type& r0 = c.replica(0);
    bytes body;
    vsr::header state = header_of(vsr::command::new_state, sender, 1, view);
    state.op = r0.log().encode_suffix(0, r0.commit(), 1 << 19, body);
    state.commit = r0.commit();
    return encode(state, body);
}

// ---- (6) liveness hiccup: new_state from a view this replica leads --------------------------
//
// on_new_state (replica.hpp:955) calls await_start_view(h.view) for any newer view, including
// one whose primary is this replica: it then sends request_start_view to itself (dropped as
// misaddressed), ignores start_view_change (awaiting_start_view_), and never records its own
// do_view_change, so maybe_complete_view_change cannot complete even with a quorum of
// do_view_change messages. The view is lost until the view-change timeout moves everyone on.
BOOST_AUTO_TEST_CASE(new_state_from_a_view_we_lead_joins_its_view_change) {
    cluster c(test_config());
    make_replica_1_lag(c);
    replica_type& r1 = c.replica(1);
    replica_type& r2 = c.replica(2);
    bytes body;

    // Replica 0, meanwhile in view 1 (led by replica 1), answers the state request.
    r1.on_message(new_state_from(c, 0, 1));
    BOOST_TEST(r1.view() == 1u);
    BOOST_TEST((r1.status() == vsr::replica_status::view_change));
    const bool asked_itself = std::any_of(
        c.bus().to_replica[1].begin(), c.bus().to_replica[1].end(),
        [](const bytes& m) { return vsr::decode_header_fields(m.data()).cmd == vsr::command::request_start_view; });
    BOOST_TEST(!asked_itself, "replica 1 sent request_start_view to itself");
    c.bus().to_replica[1].clear();

    // Replicas 0 and 2 run the view change to view 1 and send replica 1 their do_view_change.
    for (std::uint8_t sender : {std::uint8_t{0}, std::uint8_t{2}}) {
        const replica_type& r = c.replica(sender);
        r1.on_message(encode(header_of(vsr::command::start_view_change, sender, 1, 1)));
        vsr::header dvc = header_of(vsr::command::do_view_change, sender, 1, 1);
        dvc.extra = r.last_normal_view();
        dvc.op = r.op();
        dvc.commit = r.commit();
        r.log().encode_suffix(std::min(r.commit(), r.op()), r.op(), 1 << 19, body);
        r1.on_message(encode(dvc, body));
    }
    (void)r2;
    c.run_until([&] { return r1.status() == vsr::replica_status::normal; });
    BOOST_TEST((r1.status() == vsr::replica_status::normal),
               "replica 1 holds a quorum of do_view_change for view 1 but never starts it");
}

// ---- (7) a normal backup never takes committed entries from a later view --------------------
//
// Fixed in 85f4e79. A backup in view v that lags (commit > op) asks for state. If the answer
// comes from a later view, its committed entries may replace entries that are uncommitted in
// view v but that this backup holds and acknowledges: a stale primary of view v could then count
// the backup's acknowledgement for a different entry. So the backup must not append them; it
// joins the later view through start_view instead.
BOOST_AUTO_TEST_CASE(new_state_from_a_later_view_makes_a_backup_rejoin) {
    cluster c(test_config());
    make_replica_1_lag(c);
    replica_type& r1 = c.replica(1);

    // The state request is answered by replica 2 claiming view 2 (whose primary it is).
    r1.on_message(new_state_from(c, 2, 2));

    BOOST_TEST(r1.op() == 0u);  // nothing appended
    BOOST_TEST(r1.view() == 2u);
    BOOST_TEST((r1.status() == vsr::replica_status::view_change));
    const auto& to_primary = c.bus().to_replica[2];
    const bool asked = std::any_of(to_primary.begin(), to_primary.end(), [](const bytes& m) {
        return decode(m).cmd == vsr::command::request_start_view && decode(m).view == 2u;
    });
    BOOST_TEST(asked, "replica 1 asks the primary of view 2 for start_view");
}
