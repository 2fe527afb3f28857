#define BOOST_TEST_MODULE log_entry
// The header under test comes first: proves it is self-contained.
#include "vsr/log_entry.hpp"

#ifndef BOOST_TEST_DYN_LINK  // meson's boost dependency may define it already
#define BOOST_TEST_DYN_LINK
#endif
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <ostream>
#include <span>
#include <vector>

// Lets BOOST_TEST print these enums when an assertion fails (found by ADL).
namespace vsr {
inline std::ostream& boost_test_print_type(std::ostream& os, request_kind v) { return os << static_cast<int>(v); }
}  // namespace vsr

namespace {

using bytes = std::vector<std::uint8_t>;

constexpr std::size_t entry_size_max = 4096;

const bytes operation_a{1, 2, 3};
const bytes operation_b{};
const bytes operation_c(17, 0x5A);

// Three requests: a plain operation, a registration with an empty body, and a longer one.
bytes sample_entry(std::uint64_t op = 5, std::uint64_t view = 2) {
    vsr::entry_builder builder;
    builder.begin(op, view, 1'000'000 + op);
    builder.add({11, 100, 1, vsr::request_kind::operation, operation_a});
    builder.add({12, 0, 0, vsr::request_kind::register_session, operation_b});
    builder.add({13, 101, 7, vsr::request_kind::operation, operation_c});
    return builder.finish();
}

// Offset of request i's fields, knowing the sample's operation sizes.
constexpr std::size_t first_request = vsr::entry_header_size;
constexpr std::size_t kind_offset = 28;  // within a request header
constexpr std::size_t padding_offset = 29;

void set_entry_size(bytes& entry, std::size_t size) {
    vsr::store_le32(entry.data() + 28, static_cast<std::uint32_t>(size));
}

bytes sample_suffix(std::uint64_t prev_op, std::uint64_t prev_view, const std::vector<bytes>& entries) {
    bytes body;
    vsr::byte_writer w(body);
    w.u64(prev_op);
    w.u64(prev_view);
    w.u32(static_cast<std::uint32_t>(entries.size()));
    w.u32(0);
    for (const auto& e : entries) {
        w.u32(static_cast<std::uint32_t>(e.size()));
        w.bytes(e);
    }
    return body;
}

bytes as_vector(std::span<const std::uint8_t> s) { return {s.begin(), s.end()}; }

}  // namespace

BOOST_AUTO_TEST_CASE(builder_writes_header) {
    const bytes entry = sample_entry(5, 2);
    const vsr::entry_header h = vsr::read_entry_header(entry);
    BOOST_TEST(h.op == 5u);
    BOOST_TEST(h.view == 2u);
    BOOST_TEST(h.timestamp_ns == 1'000'005u);
    BOOST_TEST(h.request_count == 3u);
    BOOST_TEST(h.entry_size == entry.size());
    BOOST_TEST(entry.size() == vsr::entry_header_size + 3 * vsr::request_header_size + 3 + 0 + 17);
}

BOOST_AUTO_TEST_CASE(builder_size_and_count_track_adds) {
    vsr::entry_builder builder;
    builder.begin(1, 0, 0);
    BOOST_TEST(builder.size() == vsr::entry_header_size);
    BOOST_TEST(builder.count() == 0u);
    builder.add({1, 1, 1, vsr::request_kind::operation, operation_a});
    BOOST_TEST(builder.size() == vsr::entry_header_size + vsr::request_header_size + operation_a.size());
    BOOST_TEST(builder.count() == 1u);
    // begin() starts over.
    builder.begin(2, 0, 0);
    BOOST_TEST(builder.size() == vsr::entry_header_size);
    BOOST_TEST(builder.count() == 0u);
}

BOOST_AUTO_TEST_CASE(round_trip_through_validate_and_iterate) {
    const bytes entry = sample_entry();
    BOOST_TEST_REQUIRE(vsr::validate_entry(entry, entry_size_max));
    vsr::request_iterator it(entry);
    vsr::request_record r;

    BOOST_TEST_REQUIRE(it.next(r));
    BOOST_TEST(r.client_id == 11u);
    BOOST_TEST(r.session == 100u);
    BOOST_TEST(r.request_number == 1u);
    BOOST_TEST((r.kind == vsr::request_kind::operation));
    BOOST_TEST(as_vector(r.operation) == operation_a, boost::test_tools::per_element());

    BOOST_TEST_REQUIRE(it.next(r));
    BOOST_TEST(r.client_id == 12u);
    BOOST_TEST((r.kind == vsr::request_kind::register_session));
    BOOST_TEST(r.operation.empty());

    BOOST_TEST_REQUIRE(it.next(r));
    BOOST_TEST(r.client_id == 13u);
    BOOST_TEST(r.session == 101u);
    BOOST_TEST(r.request_number == 7u);
    BOOST_TEST(as_vector(r.operation) == operation_c, boost::test_tools::per_element());

    BOOST_TEST(!it.next(r));
}

BOOST_AUTO_TEST_CASE(empty_entry_is_valid) {
    vsr::entry_builder builder;
    builder.begin(1, 0, 0);
    const bytes entry = builder.finish();
    BOOST_TEST(entry.size() == vsr::entry_header_size);
    BOOST_TEST(vsr::validate_entry(entry, entry_size_max));
    vsr::request_iterator it(entry);
    vsr::request_record r;
    BOOST_TEST(!it.next(r));
}

BOOST_AUTO_TEST_CASE(rejects_shorter_than_header) {
    const bytes entry = sample_entry();
    BOOST_TEST(!vsr::validate_entry(std::span(entry).first(vsr::entry_header_size - 1), entry_size_max));
    BOOST_TEST(!vsr::validate_entry({}, entry_size_max));
}

BOOST_AUTO_TEST_CASE(rejects_truncation) {
    const bytes entry = sample_entry();
    // Every truncation, whether or not entry_size is patched to match, must be caught.
    for (std::size_t size = vsr::entry_header_size; size < entry.size(); ++size) {
        bytes cut(entry.begin(), entry.begin() + static_cast<std::ptrdiff_t>(size));
        BOOST_TEST_CONTEXT("size " << size) {
            BOOST_TEST(!vsr::validate_entry(cut, entry_size_max));
            set_entry_size(cut, size);
            BOOST_TEST(!vsr::validate_entry(cut, entry_size_max));
        }
    }
}

BOOST_AUTO_TEST_CASE(rejects_wrong_entry_size) {
    bytes entry = sample_entry();
    set_entry_size(entry, entry.size() + 1);
    BOOST_TEST(!vsr::validate_entry(entry, entry_size_max));
    set_entry_size(entry, entry.size() - 1);
    BOOST_TEST(!vsr::validate_entry(entry, entry_size_max));
    set_entry_size(entry, 0);
    BOOST_TEST(!vsr::validate_entry(entry, entry_size_max));
}

BOOST_AUTO_TEST_CASE(rejects_wrong_request_count) {
    bytes entry = sample_entry();
    vsr::store_le32(entry.data() + 24, 4);  // one more than present
    BOOST_TEST(!vsr::validate_entry(entry, entry_size_max));
    vsr::store_le32(entry.data() + 24, 2);  // one fewer: the last request becomes trailing bytes
    BOOST_TEST(!vsr::validate_entry(entry, entry_size_max));
    vsr::store_le32(entry.data() + 24, 0xFFFFFFFFu);
    BOOST_TEST(!vsr::validate_entry(entry, entry_size_max));
}

BOOST_AUTO_TEST_CASE(rejects_bad_kind) {
    bytes entry = sample_entry();
    entry[first_request + kind_offset] = 2;  // one past register_session
    BOOST_TEST(!vsr::validate_entry(entry, entry_size_max));
    entry[first_request + kind_offset] = 0xFF;
    BOOST_TEST(!vsr::validate_entry(entry, entry_size_max));
}

BOOST_AUTO_TEST_CASE(rejects_nonzero_padding) {
    for (std::size_t i = 0; i < 3; ++i) {
        bytes entry = sample_entry();
        entry[first_request + padding_offset + i] = 1;
        BOOST_TEST_CONTEXT("padding byte " << i) { BOOST_TEST(!vsr::validate_entry(entry, entry_size_max)); }
    }
}

BOOST_AUTO_TEST_CASE(rejects_trailing_garbage) {
    bytes entry = sample_entry();
    entry.push_back(0);
    set_entry_size(entry, entry.size());  // consistent size: only the parse can catch it
    BOOST_TEST(!vsr::validate_entry(entry, entry_size_max));
}

BOOST_AUTO_TEST_CASE(rejects_operation_size_past_end) {
    bytes entry = sample_entry();
    vsr::store_le32(entry.data() + first_request + 24, 0xFFFFFFFFu);  // first request's operation_size
    BOOST_TEST(!vsr::validate_entry(entry, entry_size_max));
}

BOOST_AUTO_TEST_CASE(rejects_op_zero) { BOOST_TEST(!vsr::validate_entry(sample_entry(0, 1), entry_size_max)); }

BOOST_AUTO_TEST_CASE(rejects_oversize) {
    const bytes entry = sample_entry();
    BOOST_TEST(vsr::validate_entry(entry, entry.size()));  // exactly at the limit
    BOOST_TEST(!vsr::validate_entry(entry, entry.size() - 1));
}

BOOST_AUTO_TEST_CASE(suffix_round_trip) {
    const bytes e1 = sample_entry(8, 3);
    const bytes e2 = sample_entry(9, 4);
    const bytes body = sample_suffix(7, 3, {e1, e2});
    vsr::log_suffix suffix;
    BOOST_TEST_REQUIRE(vsr::decode_suffix(body, entry_size_max, suffix));
    BOOST_TEST(suffix.prev_op == 7u);
    BOOST_TEST(suffix.prev_view == 3u);
    BOOST_TEST_REQUIRE(suffix.entries.size() == 2u);
    BOOST_TEST(as_vector(suffix.entries[0]) == e1, boost::test_tools::per_element());
    BOOST_TEST(as_vector(suffix.entries[1]) == e2, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(empty_suffix_is_valid) {
    vsr::log_suffix suffix;
    suffix.entries.push_back({});  // stale contents must be replaced
    BOOST_TEST(vsr::decode_suffix(sample_suffix(4, 1, {}), entry_size_max, suffix));
    BOOST_TEST(suffix.prev_op == 4u);
    BOOST_TEST(suffix.entries.empty());
}

BOOST_AUTO_TEST_CASE(suffix_rejects_non_consecutive_ops) {
    vsr::log_suffix suffix;
    // Gap between entries.
    BOOST_TEST(!vsr::decode_suffix(sample_suffix(4, 1, {sample_entry(5), sample_entry(7)}), entry_size_max, suffix));
    // Repeated op.
    BOOST_TEST(!vsr::decode_suffix(sample_suffix(4, 1, {sample_entry(5), sample_entry(5)}), entry_size_max, suffix));
    // First entry not at prev_op + 1.
    BOOST_TEST(!vsr::decode_suffix(sample_suffix(4, 1, {sample_entry(6)}), entry_size_max, suffix));
    BOOST_TEST(!vsr::decode_suffix(sample_suffix(4, 1, {sample_entry(4)}), entry_size_max, suffix));
}

BOOST_AUTO_TEST_CASE(suffix_rejects_wrong_count) {
    vsr::log_suffix suffix;
    bytes more = sample_suffix(4, 1, {sample_entry(5), sample_entry(6)});
    vsr::store_le32(more.data() + 16, 3);
    BOOST_TEST(!vsr::decode_suffix(more, entry_size_max, suffix));

    bytes fewer = sample_suffix(4, 1, {sample_entry(5), sample_entry(6)});
    vsr::store_le32(fewer.data() + 16, 1);  // the second entry becomes trailing bytes
    BOOST_TEST(!vsr::decode_suffix(fewer, entry_size_max, suffix));

    bytes absurd = sample_suffix(4, 1, {sample_entry(5)});
    vsr::store_le32(absurd.data() + 16, 0xFFFFFFFFu);  // rejected before reserving memory for it
    BOOST_TEST(!vsr::decode_suffix(absurd, entry_size_max, suffix));
}

BOOST_AUTO_TEST_CASE(suffix_rejects_trailing_bytes) {
    bytes body = sample_suffix(4, 1, {sample_entry(5)});
    body.push_back(0);
    vsr::log_suffix suffix;
    BOOST_TEST(!vsr::decode_suffix(body, entry_size_max, suffix));
}

BOOST_AUTO_TEST_CASE(suffix_rejects_nonzero_reserved) {
    bytes body = sample_suffix(4, 1, {sample_entry(5)});
    body[23] = 1;
    vsr::log_suffix suffix;
    BOOST_TEST(!vsr::decode_suffix(body, entry_size_max, suffix));
}

BOOST_AUTO_TEST_CASE(suffix_rejects_invalid_entry) {
    bytes bad = sample_entry(5);
    bad[first_request + padding_offset] = 1;
    vsr::log_suffix suffix;
    BOOST_TEST(!vsr::decode_suffix(sample_suffix(4, 1, {bad}), entry_size_max, suffix));
    // An entry over the size limit.
    BOOST_TEST(!vsr::decode_suffix(sample_suffix(4, 1, {sample_entry(5)}), sample_entry(5).size() - 1, suffix));
}

BOOST_AUTO_TEST_CASE(suffix_rejects_truncation) {
    const bytes body = sample_suffix(4, 1, {sample_entry(5), sample_entry(6)});
    vsr::log_suffix suffix;
    for (std::size_t size = 0; size < body.size(); ++size) {
        BOOST_TEST_CONTEXT("size " << size) {
            BOOST_TEST(!vsr::decode_suffix(std::span(body).first(size), entry_size_max, suffix));
        }
    }
}
