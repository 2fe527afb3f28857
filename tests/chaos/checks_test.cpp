// Included first: proves the header is self-contained.
#include "checks.hpp"

#define BOOST_TEST_MODULE chaos_checks
#ifndef BOOST_TEST_DYN_LINK  // meson's boost dependency may define it already
#define BOOST_TEST_DYN_LINK
#endif
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <string>
#include <vector>

// The nemesis' checks on hand-made histories: each case is one the old checks let through.
namespace {

using sim::kv_history_op;
using sim::kv_kind;
using sim::kv_status;
using sim::outcome;

constexpr std::uint64_t second = 1'000'000'000;
constexpr std::uint64_t millisecond = 1'000'000;

kv_history_op write(std::uint64_t invoke_ns, std::uint64_t complete_ns, outcome result,
                    kv_status status = kv_status::ok) {
    static std::uint64_t id = 0;
    kv_history_op op;
    op.id = ++id;
    op.key = "g0000-k000";
    op.kind = kv_kind::put;
    op.value = "0." + std::to_string(id);
    op.invoke_ns = invoke_ns;
    op.complete_ns = complete_ns;
    op.result_outcome = result;
    op.status = status;
    return op;
}

chaos::fault_record fault(const std::string& kind, std::uint64_t start_ns, std::uint64_t end_ns, bool injected = true) {
    return chaos::fault_record{kind, "node 1", start_ns, end_ns, injected};
}

bool mentions(const std::vector<std::string>& lines, const std::string& text) {
    for (const std::string& line : lines)
        if (line.find(text) != std::string::npos) return true;
    return false;
}

const chaos::availability_bounds bounds{8 * second, 15 * second, 10 * second};

chaos::fault_record cluster_kill(std::uint64_t start_ns, std::uint64_t revived_ns, std::uint64_t end_ns) {
    chaos::fault_record f = fault("kill_all", start_ns, end_ns);
    f.detail = "3 nodes killed";
    f.revived_ns = revived_ns;
    return f;
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_requested_kind_never_injected_fails) {
    const std::vector<chaos::fault_record> faults = {fault("kill", 1 * second, 2 * second),
                                                     fault("loss", 3 * second, 4 * second, false)};
    const chaos::fault_counts counts = chaos::count_faults(faults);
    BOOST_TEST(counts.injected.at("kill") == 1u);
    BOOST_TEST(!counts.injected.contains("loss"));
    BOOST_TEST(counts.not_injected.at("loss") == 1u);
    const auto problems = chaos::check_faults_injected({"kill", "loss", "partition"}, counts);
    BOOST_TEST(problems.size() == 2u);
    BOOST_TEST(mentions(problems, "loss was requested but never injected (1 attempts failed)"));
    BOOST_TEST(mentions(problems, "partition was requested but never injected (never tried"));
    BOOST_TEST(chaos::check_faults_injected({"kill"}, counts).empty());
}

BOOST_AUTO_TEST_CASE(no_acknowledged_write_fails) {
    // A proxy that refuses every PUT (503): every write failed, nothing else is wrong.
    std::vector<kv_history_op> history;
    for (std::uint64_t i = 0; i < 100; ++i)
        history.push_back(write(i * second / 10, i * second / 10 + 1000, outcome::fail));
    const auto report = chaos::check_availability(history, {}, 5 * second, bounds);
    BOOST_TEST(report.acknowledged_writes == 0u);
    BOOST_TEST(mentions(report.problems, "no write was acknowledged"));
    BOOST_TEST(mentions(report.problems, "no write issued after healing succeeded"));
}

BOOST_AUTO_TEST_CASE(writes_must_resume_after_a_kill_within_the_bound) {
    // A write issued before the kill and answered after it does not count: it may have
    // committed before the kill took effect.
    const std::vector<chaos::fault_record> faults = {fault("kill_primary", 10 * second, 14 * second)};
    std::vector<kv_history_op> history = {write(1 * second, 2 * second, outcome::ok),
                                          write(9 * second, 11 * second, outcome::ok),
                                          write(19 * second, 19 * second + 1000, outcome::ok)};
    auto report = chaos::check_availability(history, faults, 20 * second, bounds);
    BOOST_TEST(report.kills_checked == 1u);
    BOOST_TEST(mentions(report.problems, "writes did not resume within 8.0 s of the kill -9 of node 1"));
    BOOST_TEST(mentions(report.problems, "(first after 9.0 s)"));
    // Within the bound; writes after the heal too.
    history.push_back(write(12 * second, 13 * second, outcome::ok));
    history.push_back(write(21 * second, 22 * second, outcome::ok));
    report = chaos::check_availability(history, faults, 20 * second, bounds);
    BOOST_TEST(report.problems.empty());
    BOOST_TEST(report.slowest_after_kill_ns == 3 * second);
    BOOST_TEST(report.after_heal_ns == 2 * second);
    // A kill that was never injected, or a partition, is not bounded.
    const std::vector<chaos::fault_record> others = {fault("kill", 10 * second, 14 * second, false),
                                                     fault("partition", 10 * second, 14 * second)};
    BOOST_TEST(chaos::check_availability(history, others, 20 * second, bounds).kills_checked == 0u);
}

BOOST_AUTO_TEST_CASE(writes_must_succeed_after_healing) {
    // Answered but refused (412) or failed writes after the heal are not availability.
    std::vector<kv_history_op> history = {write(1 * second, 2 * second, outcome::ok),
                                          write(21 * second, 22 * second, outcome::ok, kv_status::mismatch),
                                          write(23 * second, 24 * second, outcome::fail)};
    auto report = chaos::check_availability(history, {}, 20 * second, bounds);
    BOOST_TEST(!report.resumed_after_heal);
    BOOST_TEST(mentions(report.problems, "no write issued after healing succeeded within 15.0 s"));
    history.push_back(write(30 * second, 36 * second, outcome::ok));
    report = chaos::check_availability(history, {}, 20 * second, bounds);
    BOOST_TEST(mentions(report.problems, "(first after 16.0 s)"));
}

BOOST_AUTO_TEST_CASE(a_cut_get_between_faults_is_not_excused) {
    // Faults at 10-12 s and 19-21 s with a quiet period between; a GET cut short at 16.5 s (no
    // newer write of the key) is a bug. The excuse toastyfs-chaos uses (each fault plus 4.2 s)
    // leaves it checked; the old one (each fault plus 5 s) covered it.
    const std::vector<chaos::fault_record> faults = {fault("pause", 10 * second, 12 * second),
                                                     fault("kill", 19 * second, 21 * second)};
    const kv_history_op put = write(1 * second, 2 * second, outcome::ok);
    const std::string md5 = "0123456789abcdef0123456789abcdef";
    const std::map<std::string, chaos::written_value> written = {
        {put.value, chaos::written_value{put.key, 20000, md5}}};
    const std::vector<chaos::truncated_get> cut = {
        chaos::truncated_get{put.key, md5, 16500 * millisecond, 16500 * millisecond + 1000}};
    const std::vector<kv_history_op> history = {put};
    std::uint64_t excused = 0;
    const auto narrow = chaos::fault_excuse_windows(faults, 4200 * millisecond);
    const auto problems = chaos::check_truncated_gets(history, cut, written, narrow, excused);
    BOOST_TEST(excused == 0u);
    BOOST_TEST(mentions(problems, "was cut short with no fault active and no newer write"));
    const auto old_windows = chaos::fault_excuse_windows(faults, 5 * second);
    BOOST_TEST(chaos::check_truncated_gets(history, cut, written, old_windows, excused).empty());
    BOOST_TEST(excused == 1u);
    // While a fault is active, or just after it healed, it is excused.
    const std::vector<chaos::truncated_get> during = {
        chaos::truncated_get{put.key, md5, 11 * second, 11 * second + 1000},
        chaos::truncated_get{put.key, md5, 13 * second, 13 * second + 1000}};
    BOOST_TEST(chaos::check_truncated_gets(history, during, written, narrow, excused).empty());
    BOOST_TEST(excused == 2u);
}

BOOST_AUTO_TEST_CASE(unexcused_fraction_measures_where_the_cut_get_check_is_on) {
    const std::vector<chaos::fault_record> faults = {fault("pause", 10 * second, 12 * second),
                                                     fault("kill", 13 * second, 16 * second)};
    // [10, 18) covered (the windows overlap) out of [0, 40).
    BOOST_TEST(chaos::unexcused_fraction(chaos::fault_excuse_windows(faults, 2 * second), 0, 40 * second) == 0.8,
               boost::test_tools::tolerance(1e-9));
    // Old schedule: rests of at most 2 s and a 5 s excuse: nothing is left.
    std::vector<chaos::fault_record> dense;
    for (std::uint64_t t = 0; t < 40; t += 4) dense.push_back(fault("pause", t * second, (t + 2) * second));
    BOOST_TEST(chaos::unexcused_fraction(chaos::fault_excuse_windows(dense, 5 * second), 0, 40 * second) == 0.0,
               boost::test_tools::tolerance(1e-9));
}

BOOST_AUTO_TEST_CASE(writes_must_resume_after_a_whole_cluster_restart_within_the_bound) {
    // Every node killed at 10 s and restarted at 16 s: nothing can be written in between, so the
    // bound (10 s) counts from the restart. A write issued during the outage does not count.
    const std::vector<chaos::fault_record> faults = {cluster_kill(10 * second, 16 * second, 18 * second)};
    std::vector<kv_history_op> history = {write(1 * second, 2 * second, outcome::ok),
                                          write(12 * second, 17 * second, outcome::ok),
                                          write(27 * second, 27 * second + 1000, outcome::ok)};
    auto report = chaos::check_availability(history, faults, 30 * second, bounds);
    BOOST_TEST(report.revivals_checked == 1u);
    BOOST_TEST(report.kills_checked == 0u);
    BOOST_TEST(mentions(report.problems, "writes did not resume within 10.0 s of the restart of every node"));
    BOOST_TEST(mentions(report.problems, "(first after 11.0 s)"));
    // 12 s after the kill but 6 s after the restart: within the bound.
    history.push_back(write(20 * second, 22 * second, outcome::ok));
    history.push_back(write(31 * second, 32 * second, outcome::ok));
    report = chaos::check_availability(history, faults, 30 * second, bounds);
    BOOST_TEST(report.problems.empty());
    BOOST_TEST(report.slowest_after_revival_ns == 6 * second);
    // Nothing at all after the restart fails; a whole-cluster kill never injected is not checked.
    report = chaos::check_availability({history.data(), 2}, faults, 30 * second, bounds);
    BOOST_TEST(mentions(report.problems, "of the restart of every node after their kill -9 (3 nodes killed) (none"));
    chaos::fault_record missed = faults[0];
    missed.injected = false;
    BOOST_TEST(chaos::check_availability(history, std::vector{missed}, 30 * second, bounds).revivals_checked == 0u);
}

BOOST_AUTO_TEST_CASE(a_kill_is_bounded_until_the_whole_cluster_goes_down) {
    // A wiped node is a node killed: bounded like a kill. Every node killed 3 s later: the wait
    // after the first kill counts only up to then (the restart's own bound covers the rest).
    std::vector<chaos::fault_record> faults = {fault("wipe_disk", 10 * second, 12 * second),
                                               cluster_kill(13 * second, 20 * second, 22 * second)};
    const std::vector<kv_history_op> history = {write(1 * second, 2 * second, outcome::ok),
                                                write(21 * second, 23 * second, outcome::ok)};
    auto report = chaos::check_availability(history, faults, 30 * second, bounds);
    BOOST_TEST(report.kills_checked == 1u);
    BOOST_TEST(report.revivals_checked == 1u);
    BOOST_TEST(mentions(report.problems, "no write issued after healing"));
    BOOST_TEST(report.problems.size() == 1u);
    // No write for 9 s before the whole cluster went down: the kill's bound (8 s) was broken.
    faults[1] = cluster_kill(19 * second, 20 * second, 22 * second);
    report = chaos::check_availability(history, faults, 30 * second, bounds);
    BOOST_TEST(mentions(report.problems,
                        "within 8.0 s of the kill -9 of node 1 (none before every node was killed "
                        "9.0 s later)"));
}
