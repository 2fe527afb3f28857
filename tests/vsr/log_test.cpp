#define BOOST_TEST_MODULE log
// The header under test comes first: proves it is self-contained.
#include "vsr/log.hpp"

#ifndef BOOST_TEST_DYN_LINK  // meson's boost dependency may define it already
#define BOOST_TEST_DYN_LINK
#endif
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <span>
#include <vector>

namespace {

using bytes = std::vector<std::uint8_t>;

constexpr std::size_t entry_size_max = 4096;

// An entry for `op` created in `view`, with `payload` bytes of operation so sizes differ.
bytes make_entry(std::uint64_t op, std::uint64_t view, std::size_t payload = 10) {
    vsr::entry_builder builder;
    builder.begin(op, view, op * 1000);
    const bytes operation(payload, static_cast<std::uint8_t>(op));
    builder.add({op, 1, op, vsr::request_kind::operation, operation});
    return builder.finish();
}

// A log holding ops 1..views.size(), op i tagged views[i-1].
vsr::operation_log make_log(const std::vector<std::uint64_t>& views) {
    vsr::operation_log log;
    for (std::size_t i = 0; i < views.size(); ++i) log.append(make_entry(i + 1, views[i]));
    return log;
}

bytes as_vector(std::span<const std::uint8_t> s) { return {s.begin(), s.end()}; }

}  // namespace

BOOST_AUTO_TEST_CASE(empty_log) {
    const vsr::operation_log log;
    BOOST_TEST(log.op() == 0u);
    BOOST_TEST(log.view_at(0) == 0u);
    BOOST_TEST(log.matches(0, 0));
    BOOST_TEST(!log.matches(0, 1));
    BOOST_TEST(!log.matches(1, 0));
}

BOOST_AUTO_TEST_CASE(append_and_read_back) {
    vsr::operation_log log;
    const bytes e1 = make_entry(1, 0);
    const bytes e2 = make_entry(2, 3);
    log.append(e1);
    log.append(e2);
    BOOST_TEST(log.op() == 2u);
    BOOST_TEST(log.view_at(1) == 0u);
    BOOST_TEST(log.view_at(2) == 3u);
    BOOST_TEST(as_vector(log.entry(1)) == e1, boost::test_tools::per_element());
    BOOST_TEST(as_vector(log.entry(2)) == e2, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(matches_checks_op_and_tag) {
    const auto log = make_log({0, 0, 1, 2});
    BOOST_TEST(log.matches(0, 0));
    BOOST_TEST(log.matches(2, 0));
    BOOST_TEST(log.matches(3, 1));
    BOOST_TEST(log.matches(4, 2));
    BOOST_TEST(!log.matches(3, 0));
    BOOST_TEST(!log.matches(4, 1));
    BOOST_TEST(!log.matches(5, 2));  // beyond the log
}

BOOST_AUTO_TEST_CASE(truncate_drops_the_tail) {
    auto log = make_log({0, 1, 1, 1});
    log.truncate(2);
    BOOST_TEST(log.op() == 2u);
    BOOST_TEST(!log.matches(3, 1));
    // The next append goes at op 3 again, with a different tag.
    log.append(make_entry(3, 5));
    BOOST_TEST(log.op() == 3u);
    BOOST_TEST(log.view_at(3) == 5u);
    log.truncate(3);  // no-op
    BOOST_TEST(log.op() == 3u);
    log.truncate(0);
    BOOST_TEST(log.op() == 0u);
}

BOOST_AUTO_TEST_CASE(encode_suffix_round_trips) {
    const auto log = make_log({0, 0, 1, 1, 2});
    bytes body;
    const std::uint64_t last = log.encode_suffix(2, 5, 1 << 20, body);
    BOOST_TEST(last == 5u);
    vsr::log_suffix suffix;
    BOOST_TEST_REQUIRE(vsr::decode_suffix(body, entry_size_max, suffix));
    BOOST_TEST(suffix.prev_op == 2u);
    BOOST_TEST(suffix.prev_view == 0u);  // the tag at prev_op
    BOOST_TEST_REQUIRE(suffix.entries.size() == 3u);
    for (std::uint64_t op = 3; op <= 5; ++op) {
        BOOST_TEST(as_vector(suffix.entries[op - 3]) == as_vector(log.entry(op)), boost::test_tools::per_element());
    }
}

BOOST_AUTO_TEST_CASE(encode_suffix_carries_tag_of_prev_op) {
    const auto log = make_log({0, 4, 7});
    bytes body;
    log.encode_suffix(2, 3, 1 << 20, body);
    vsr::log_suffix suffix;
    BOOST_TEST_REQUIRE(vsr::decode_suffix(body, entry_size_max, suffix));
    BOOST_TEST(suffix.prev_view == 4u);
}

BOOST_AUTO_TEST_CASE(encode_suffix_partial_range) {
    const auto log = make_log({0, 0, 0, 0, 0});
    bytes body;
    BOOST_TEST(log.encode_suffix(1, 3, 1 << 20, body) == 3u);
    vsr::log_suffix suffix;
    BOOST_TEST_REQUIRE(vsr::decode_suffix(body, entry_size_max, suffix));
    BOOST_TEST(suffix.entries.size() == 2u);
}

BOOST_AUTO_TEST_CASE(encode_suffix_empty_range) {
    const auto log = make_log({0, 0});
    bytes body{1, 2, 3};  // replaced, not appended to
    BOOST_TEST(log.encode_suffix(2, 2, 1 << 20, body) == 2u);
    BOOST_TEST(body.size() == vsr::suffix_header_size);
    vsr::log_suffix suffix;
    BOOST_TEST_REQUIRE(vsr::decode_suffix(body, entry_size_max, suffix));
    BOOST_TEST(suffix.prev_op == 2u);
    BOOST_TEST(suffix.entries.empty());
}

BOOST_AUTO_TEST_CASE(encode_suffix_stops_at_body_size_max) {
    const auto log = make_log({0, 0, 0, 0, 0, 0});
    const std::size_t entry_size = log.entry(1).size();  // all the same size
    const std::size_t per_entry = 4 + entry_size;
    // Room for exactly two entries, one byte short of three.
    const std::size_t body_size_max = vsr::suffix_header_size + 3 * per_entry - 1;
    bytes body;
    const std::uint64_t last = log.encode_suffix(0, 6, body_size_max, body);
    BOOST_TEST(last == 2u);
    BOOST_TEST(body.size() <= body_size_max);
    BOOST_TEST(body.size() == vsr::suffix_header_size + 2 * per_entry);
    vsr::log_suffix suffix;
    BOOST_TEST_REQUIRE(vsr::decode_suffix(body, entry_size_max, suffix));
    BOOST_TEST(suffix.entries.size() == last - 0);

    // The very limit for three entries.
    BOOST_TEST(log.encode_suffix(0, 6, body_size_max + 1, body) == 3u);
    BOOST_TEST(body.size() == body_size_max + 1);
}

BOOST_AUTO_TEST_CASE(encode_suffix_with_no_room_encodes_nothing) {
    const auto log = make_log({0, 0});
    bytes body;
    BOOST_TEST(log.encode_suffix(0, 2, vsr::suffix_header_size, body) == 0u);
    vsr::log_suffix suffix;
    BOOST_TEST_REQUIRE(vsr::decode_suffix(body, entry_size_max, suffix));
    BOOST_TEST(suffix.entries.empty());
}

BOOST_AUTO_TEST_CASE(encode_suffix_chunks_reassemble) {
    // State transfer sends a long range in bounded chunks: each chunk starts where the
    // previous one stopped, and together they reproduce the log.
    std::vector<std::uint64_t> views(20);
    for (std::size_t i = 0; i < views.size(); ++i) views[i] = i / 5;
    vsr::operation_log source;
    for (std::size_t i = 0; i < views.size(); ++i) source.append(make_entry(i + 1, views[i], 10 + i * 7));

    vsr::operation_log copy;
    const std::size_t body_size_max = 300;
    bytes body;
    while (copy.op() < source.op()) {
        const std::uint64_t prev = copy.op();
        const std::uint64_t last = source.encode_suffix(prev, source.op(), body_size_max, body);
        BOOST_TEST_REQUIRE(last > prev);  // every chunk makes progress
        BOOST_TEST(body.size() <= body_size_max);
        vsr::log_suffix suffix;
        BOOST_TEST_REQUIRE(vsr::decode_suffix(body, entry_size_max, suffix));
        BOOST_TEST_REQUIRE(copy.matches(suffix.prev_op, suffix.prev_view));
        for (const auto entry : suffix.entries) copy.append(as_vector(entry));
    }
    for (std::uint64_t op = 1; op <= source.op(); ++op) {
        BOOST_TEST(as_vector(copy.entry(op)) == as_vector(source.entry(op)));
        BOOST_TEST(copy.view_at(op) == source.view_at(op));
    }
}

BOOST_AUTO_TEST_CASE(dropping_the_oldest_keeps_the_base_tag) {
    vsr::operation_log log = make_log({1, 1, 2, 3});
    const std::size_t bytes_before = log.bytes();
    log.drop_oldest();
    log.drop_oldest();
    BOOST_TEST(log.base() == 2u);
    BOOST_TEST(log.op() == 4u);
    BOOST_TEST(log.size() == 2u);
    BOOST_TEST(log.bytes() < bytes_before);
    BOOST_TEST(!log.holds(2));
    BOOST_TEST(log.holds(3));
    BOOST_TEST(log.view_at(2) == 1u);          // the base keeps the tag of the entry it replaced
    BOOST_TEST(log.timestamp_at(2) == 2000u);  // and its timestamp
    BOOST_TEST(log.timestamp_at(3) == 3000u);
    BOOST_TEST(log.matches(2, 1));
    BOOST_TEST(!log.matches(1, 1));  // below the base nothing can be matched
    BOOST_TEST(vsr::read_entry_header(log.entry(3)).op == 3u);

    // A suffix can still start at the base, and its tag is the base's.
    bytes body;
    BOOST_TEST(log.encode_suffix(2, 4, 1 << 16, body) == 4u);
    vsr::log_suffix suffix;
    BOOST_TEST_REQUIRE(vsr::decode_suffix(body, entry_size_max, suffix));
    BOOST_TEST(suffix.prev_op == 2u);
    BOOST_TEST(suffix.prev_view == 1u);
    BOOST_TEST(suffix.entries.size() == 2u);

    // Truncating down to the base empties it; appending goes on from there.
    log.truncate(2);
    BOOST_TEST(log.op() == 2u);
    BOOST_TEST(log.bytes() == 0u);
    log.append(make_entry(3, 5));
    BOOST_TEST(log.view_at(3) == 5u);
}

BOOST_AUTO_TEST_CASE(reset_starts_after_a_restored_checkpoint) {
    vsr::operation_log log = make_log({1, 1, 1});
    log.reset(100, 7, 5000);
    BOOST_TEST(log.op() == 100u);
    BOOST_TEST(log.base() == 100u);
    BOOST_TEST(log.size() == 0u);
    BOOST_TEST(log.matches(100, 7));
    BOOST_TEST(!log.matches(100, 6));
    BOOST_TEST(log.timestamp_at(100) == 5000u);
    log.append(make_entry(101, 8));
    BOOST_TEST(log.op() == 101u);
    BOOST_TEST(log.view_at(101) == 8u);
}

// A persistent replica releases executed entries to its journal: their bytes leave memory, their
// tag and timestamp stay, and a suffix reads them back through the loader it is given.
BOOST_AUTO_TEST_CASE(released_entries_are_read_through_the_loader) {
    vsr::operation_log log = make_log({0, 0, 1, 1, 2});
    const std::size_t before = log.bytes();
    log.release_through(3);
    BOOST_TEST(log.bytes() == before - make_entry(1, 0).size() - make_entry(2, 0).size() - make_entry(3, 1).size());
    BOOST_TEST(!log.in_memory(1));
    BOOST_TEST(!log.in_memory(3));
    BOOST_TEST(log.in_memory(4));
    BOOST_TEST(log.view_at(3) == 1u);          // the tag stays
    BOOST_TEST(log.timestamp_at(2) == 2000u);  // and the timestamp
    log.release_through(2);                    // releasing less again changes nothing
    BOOST_TEST(!log.in_memory(3));

    std::vector<std::uint64_t> loaded;
    auto loader = [&](std::uint64_t op, bytes& scratch) {
        loaded.push_back(op);
        scratch = make_entry(op, log.view_at(op));
        return std::span<const std::uint8_t>(scratch);
    };
    bytes body;
    BOOST_TEST(log.encode_suffix(1, 5, 1 << 20, body, loader) == 5u);
    BOOST_TEST((loaded == std::vector<std::uint64_t>{2, 3}));
    vsr::log_suffix suffix;
    BOOST_TEST_REQUIRE(vsr::decode_suffix(body, entry_size_max, suffix));
    BOOST_TEST_REQUIRE(suffix.entries.size() == 4u);
    BOOST_TEST(as_vector(suffix.entries[1]) == make_entry(3, 1), boost::test_tools::per_element());

    // An entry that does not read back ends the suffix before it.
    auto unreadable = [](std::uint64_t, bytes&) { return std::span<const std::uint8_t>(); };
    BOOST_TEST(log.encode_suffix(0, 5, 1 << 20, body, unreadable) == 0u);

    // Dropping released entries and truncating work as for the others.
    log.drop_oldest();
    BOOST_TEST(log.base() == 1u);
    BOOST_TEST(log.bytes() == before - make_entry(1, 0).size() - make_entry(2, 0).size() - make_entry(3, 1).size());
    log.truncate(2);
    BOOST_TEST(log.op() == 2u);
    BOOST_TEST(log.bytes() == 0u);
    log.append(make_entry(3, 4));
    BOOST_TEST(log.in_memory(3));  // a new entry at a released op is held again
}
