#define BOOST_TEST_MODULE bytes
// The header under test comes first: proves it is self-contained.
#include "vsr/bytes.hpp"

#ifndef BOOST_TEST_DYN_LINK  // meson's boost dependency may define it already
#define BOOST_TEST_DYN_LINK
#endif
#include <boost/test/unit_test.hpp>

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

using bytes = std::vector<std::uint8_t>;

BOOST_AUTO_TEST_CASE(little_endian_primitives) {
    std::uint8_t buffer[8] = {};
    vsr::store_le16(buffer, 0x0102);
    BOOST_TEST(buffer[0] == 0x02);
    BOOST_TEST(buffer[1] == 0x01);
    BOOST_TEST(vsr::load_le16(buffer) == 0x0102);
    vsr::store_le32(buffer, 0x01020304);
    BOOST_TEST(buffer[0] == 0x04);
    BOOST_TEST(buffer[3] == 0x01);
    BOOST_TEST(vsr::load_le32(buffer) == 0x01020304u);
    vsr::store_le64(buffer, 0x0102030405060708ULL);
    BOOST_TEST(buffer[0] == 0x08);
    BOOST_TEST(buffer[7] == 0x01);
    BOOST_TEST(vsr::load_le64(buffer) == 0x0102030405060708ULL);
}

BOOST_AUTO_TEST_CASE(byte_writer_layout) {
    bytes out{0x99};  // appends after existing contents
    vsr::byte_writer w(out);
    w.u8(0xAB);
    w.u32(0x04030201);
    w.u64(0x0807060504030201ULL);
    const bytes tail{0xEE, 0xFF};
    w.bytes(tail);
    w.bytes({});
    w.u16(0x0201);
    w.string("hi");
    w.string("");
    const bytes expected{0x99, 0xAB, 0x01, 0x02, 0x03, 0x04, 0x01, 0x02, 0x03, 0x04,
                         0x05, 0x06, 0x07, 0x08, 0xEE, 0xFF, 0x01, 0x02, 'h',  'i'};
    BOOST_TEST(out == expected, boost::test_tools::per_element());
    BOOST_TEST(w.size() == expected.size());
}

BOOST_AUTO_TEST_CASE(byte_reader_reads_in_order) {
    const bytes input{0xAB, 0x01, 0x02, 0x03, 0x04, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0xEE, 0xFF};
    vsr::byte_reader r(input);
    std::uint8_t a = 0;
    std::uint32_t b = 0;
    std::uint64_t c = 0;
    std::span<const std::uint8_t> d;
    BOOST_TEST(r.read_u8(a));
    BOOST_TEST(r.read_u32(b));
    BOOST_TEST(r.read_u64(c));
    BOOST_TEST(r.read_span(2, d));
    BOOST_TEST(a == 0xAB);
    BOOST_TEST(b == 0x04030201u);
    BOOST_TEST(c == 0x0807060504030201ULL);
    BOOST_TEST(d.size() == 2u);
    BOOST_TEST(d.data() == input.data() + 13);  // a view, not a copy
    BOOST_TEST(r.remaining() == 0u);
    BOOST_TEST(r.offset() == input.size());
    BOOST_TEST(r.ok());
}

BOOST_AUTO_TEST_CASE(byte_reader_past_end_fails_without_reading) {
    const bytes input{1, 2, 3};
    vsr::byte_reader r(input);
    std::uint32_t v32 = 0xDEADBEEF;
    BOOST_TEST(!r.read_u32(v32));
    BOOST_TEST(v32 == 0xDEADBEEFu);  // untouched
    BOOST_TEST(r.offset() == 0u);    // nothing consumed
    BOOST_TEST(!r.ok());

    std::uint64_t v64 = 7;
    BOOST_TEST(!r.read_u64(v64));
    BOOST_TEST(v64 == 7u);

    std::span<const std::uint8_t> span;
    BOOST_TEST(!r.read_span(4, span));
    BOOST_TEST(span.empty());
    BOOST_TEST(r.read_span(3, span));  // the exact remainder still works
    BOOST_TEST(span.size() == 3u);

    std::uint8_t v8 = 9;
    BOOST_TEST(!r.read_u8(v8));
    BOOST_TEST(v8 == 9);
    BOOST_TEST(r.offset() == 3u);
    BOOST_TEST(!r.ok());  // sticky
}

BOOST_AUTO_TEST_CASE(byte_reader_huge_span_request_fails) {
    // A size taken from the wire must not overflow the bounds check.
    const bytes input{1, 2, 3, 4};
    vsr::byte_reader r(input);
    std::uint8_t first = 0;
    BOOST_TEST(r.read_u8(first));
    std::span<const std::uint8_t> span;
    BOOST_TEST(!r.read_span(static_cast<std::size_t>(-1), span));
    BOOST_TEST(r.offset() == 1u);
}

BOOST_AUTO_TEST_CASE(byte_reader_copies_into_arrays_vectors_and_strings) {
    const bytes input{0x02, 0x01, 'a', 'b', 'c', 7, 8, 9, 10, 11};
    vsr::byte_reader r(input);
    std::uint16_t size = 0;
    std::string text;
    std::array<std::uint8_t, 2> fixed{};
    bytes copy{0xFF};  // replaced, not appended to
    BOOST_TEST(r.read_u16(size));
    BOOST_TEST(size == 0x0102);
    BOOST_TEST(r.read_string(3, text));
    BOOST_TEST(text == "abc");
    BOOST_TEST(r.read_bytes(fixed));
    BOOST_TEST((fixed == std::array<std::uint8_t, 2>{7, 8}));
    BOOST_TEST(!r.done());
    BOOST_TEST(r.read_bytes(3, copy));
    BOOST_TEST(copy == (bytes{9, 10, 11}), boost::test_tools::per_element());
    BOOST_TEST(copy.data() != input.data() + 7);  // a copy, not a view
    BOOST_TEST(r.done());
    BOOST_TEST(r.ok());
}

BOOST_AUTO_TEST_CASE(byte_reader_copies_fail_without_reading) {
    const bytes input{1, 2, 3};
    vsr::byte_reader r(input);
    std::uint8_t skipped = 0;
    BOOST_TEST(r.read_u8(skipped));

    std::uint16_t v16 = 0xBEEF;
    std::string text = "kept";
    std::array<std::uint8_t, 3> fixed{4, 5, 6};
    bytes copy{7};
    BOOST_TEST(r.read_u16(v16));  // the last two bytes
    BOOST_TEST(!r.read_u16(v16));
    BOOST_TEST(v16 == 0x0302);
    BOOST_TEST(!r.read_string(1, text));
    BOOST_TEST(text == "kept");
    BOOST_TEST(!r.read_bytes(fixed));
    BOOST_TEST((fixed == std::array<std::uint8_t, 3>{4, 5, 6}));
    BOOST_TEST(!r.read_bytes(1, copy));
    BOOST_TEST(copy == bytes{7}, boost::test_tools::per_element());
    BOOST_TEST(!r.read_bytes(static_cast<std::size_t>(-1), copy));  // no overflow, no allocation
    BOOST_TEST(r.done());
    BOOST_TEST(!r.ok());
}

BOOST_AUTO_TEST_CASE(empty_reads_succeed_at_the_end) {
    vsr::byte_reader r({});
    std::span<const std::uint8_t> span;
    std::string text = "x";
    std::array<std::uint8_t, 0> nothing{};
    BOOST_TEST(r.done());
    BOOST_TEST(r.read_span(0, span));
    BOOST_TEST(r.read_string(0, text));
    BOOST_TEST(text.empty());
    BOOST_TEST(r.read_bytes(nothing));
    BOOST_TEST(r.ok());
    std::uint8_t v = 0;
    BOOST_TEST(!r.read_u8(v));
    BOOST_TEST(!r.ok());
}

BOOST_AUTO_TEST_CASE(writer_and_reader_round_trip) {
    bytes out;
    vsr::byte_writer w(out);
    w.u8(0xFE);
    w.u16(0xFDFC);
    w.u32(0xFBFAF9F8u);
    w.u64(0xF7F6F5F4F3F2F1F0ULL);
    w.string("name");
    vsr::byte_reader r(out);
    std::uint8_t a = 0;
    std::uint16_t b = 0;
    std::uint32_t c = 0;
    std::uint64_t d = 0;
    std::string e;
    BOOST_TEST((r.read_u8(a) && r.read_u16(b) && r.read_u32(c) && r.read_u64(d) && r.read_string(4, e)));
    BOOST_TEST(a == 0xFE);
    BOOST_TEST(b == 0xFDFC);
    BOOST_TEST(c == 0xFBFAF9F8u);
    BOOST_TEST(d == 0xF7F6F5F4F3F2F1F0ULL);
    BOOST_TEST(e == "name");
    BOOST_TEST(r.done());
}
