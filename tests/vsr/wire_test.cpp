#define BOOST_TEST_MODULE wire
// The header under test comes first: proves it is self-contained.
#include "vsr/wire.hpp"

#ifndef BOOST_TEST_DYN_LINK  // meson's boost dependency may define it already
#define BOOST_TEST_DYN_LINK
#endif
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <ostream>
#include <span>
#include <string_view>
#include <vector>

// Lets BOOST_TEST print these enums when an assertion fails (found by ADL).
namespace vsr {
inline std::ostream& boost_test_print_type(std::ostream& os, decode_error v) { return os << to_string(v); }
inline std::ostream& boost_test_print_type(std::ostream& os, command v) { return os << static_cast<int>(v); }
}  // namespace vsr

namespace {

using bytes = std::vector<std::uint8_t>;

constexpr std::uint32_t cluster = 0xC0FFEE;
constexpr std::size_t size_max = 1 << 16;

// Every field distinct and wider than a byte where the field allows, so a swapped or
// truncated field shows up.
vsr::header sample_header() {
    vsr::header h;
    h.cmd = vsr::command::prepare;
    h.sender = 2;
    h.target = 1;
    h.status = 3;
    h.cluster = cluster;
    h.view = 0x0102030405060708ULL;
    h.op = 0x1112131415161718ULL;
    h.commit = 0x2122232425262728ULL;
    h.client_id = 0x3132333435363738ULL;
    h.session = 0x4142434445464748ULL;
    h.request_number = 0x5152535455565758ULL;
    h.extra = 0x6162636465666768ULL;
    return h;
}

bytes sample_body() { return {0xDE, 0xAD, 0xBE, 0xEF, 0x00, 0x01, 0x02}; }

bytes sample_message() {
    bytes out;
    vsr::encode_message(sample_header(), sample_body(), out);
    return out;
}

vsr::decode_error decode(const bytes& message, std::uint32_t expected_cluster = cluster) {
    vsr::header h;
    return vsr::decode_message(message, expected_cluster, size_max, h);
}

void reseal(bytes& message) { vsr::seal(message, cluster); }

}  // namespace

BOOST_AUTO_TEST_CASE(round_trip_preserves_every_field) {
    const bytes message = sample_message();
    BOOST_TEST(message.size() == vsr::header_size + sample_body().size());
    vsr::header h;
    BOOST_TEST_REQUIRE(vsr::decode_message(message, cluster, size_max, h) == vsr::decode_error::none);
    const vsr::header expected = sample_header();
    BOOST_TEST((h.cmd == expected.cmd));
    BOOST_TEST(h.sender == expected.sender);
    BOOST_TEST(h.target == expected.target);
    BOOST_TEST(h.status == expected.status);
    BOOST_TEST(h.cluster == expected.cluster);
    BOOST_TEST(h.body_size == sample_body().size());
    BOOST_TEST(h.view == expected.view);
    BOOST_TEST(h.op == expected.op);
    BOOST_TEST(h.commit == expected.commit);
    BOOST_TEST(h.client_id == expected.client_id);
    BOOST_TEST(h.session == expected.session);
    BOOST_TEST(h.request_number == expected.request_number);
    BOOST_TEST(h.extra == expected.extra);
    BOOST_TEST(h.checksum == vsr::load_le64(message.data()));
    const auto body = vsr::message_body(message);
    BOOST_TEST(bytes(body.begin(), body.end()) == sample_body(), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(round_trip_empty_body) {
    bytes message;
    vsr::encode_message(sample_header(), {}, message);
    BOOST_TEST(message.size() == vsr::header_size);
    vsr::header h;
    BOOST_TEST((vsr::decode_message(message, cluster, size_max, h) == vsr::decode_error::none));
    BOOST_TEST(h.body_size == 0u);
    BOOST_TEST(vsr::message_body(message).empty());
}

BOOST_AUTO_TEST_CASE(encode_takes_body_size_from_body) {
    vsr::header h = sample_header();
    h.body_size = 999;  // ignored: the body decides
    bytes message;
    vsr::encode_message(h, sample_body(), message);
    BOOST_TEST(vsr::load_le32(message.data() + 20) == sample_body().size());
}

BOOST_AUTO_TEST_CASE(encode_replaces_previous_contents) {
    bytes message(500, 0xAA);
    vsr::encode_message(sample_header(), sample_body(), message);
    BOOST_TEST(message.size() == vsr::header_size + sample_body().size());
    BOOST_TEST((decode(message) == vsr::decode_error::none));
}

BOOST_AUTO_TEST_CASE(header_layout_is_exact) {
    // Offsets from the table at the top of wire.hpp; little-endian everywhere.
    const bytes m = sample_message();
    BOOST_TEST(vsr::load_le16(m.data() + 8) == vsr::wire_version);
    BOOST_TEST(m[8] == 1);
    BOOST_TEST(m[9] == 0);
    BOOST_TEST(m[10] == static_cast<std::uint8_t>(vsr::command::prepare));
    BOOST_TEST(m[11] == 2);
    BOOST_TEST(m[12] == 1);
    BOOST_TEST(m[13] == 3);
    BOOST_TEST(m[14] == 0);
    BOOST_TEST(m[15] == 0);
    BOOST_TEST(m[16] == 0xEE);  // cluster 0x00C0FFEE, low byte first
    BOOST_TEST(m[17] == 0xFF);
    BOOST_TEST(m[18] == 0xC0);
    BOOST_TEST(m[19] == 0x00);
    BOOST_TEST(m[20] == 7);     // body_size
    BOOST_TEST(m[24] == 0x08);  // view, low byte first
    BOOST_TEST(m[31] == 0x01);
    BOOST_TEST(vsr::load_le64(m.data() + 32) == 0x1112131415161718ULL);
    BOOST_TEST(vsr::load_le64(m.data() + 40) == 0x2122232425262728ULL);
    BOOST_TEST(vsr::load_le64(m.data() + 48) == 0x3132333435363738ULL);
    BOOST_TEST(vsr::load_le64(m.data() + 56) == 0x4142434445464748ULL);
    BOOST_TEST(vsr::load_le64(m.data() + 64) == 0x5152535455565758ULL);
    BOOST_TEST(vsr::load_le64(m.data() + 72) == 0x6162636465666768ULL);
    BOOST_TEST(m[80] == 0xDE);
}

BOOST_AUTO_TEST_CASE(checksum_covers_bytes_after_itself_seeded_by_cluster) {
    const bytes m = sample_message();
    BOOST_TEST(vsr::load_le64(m.data()) == vsr::checksum(std::span(m).subspan(8), cluster));
    BOOST_TEST(vsr::load_le64(m.data()) != vsr::checksum(std::span(m).subspan(8), cluster + 1));
}

BOOST_AUTO_TEST_CASE(error_too_short) {
    bytes m = sample_message();
    m.resize(vsr::header_size - 1);
    BOOST_TEST((decode(m) == vsr::decode_error::too_short));
    BOOST_TEST((decode({}) == vsr::decode_error::too_short));
}

BOOST_AUTO_TEST_CASE(error_too_long) {
    // Longer than message_size_max, even though it is otherwise well-formed.
    vsr::header h = sample_header();
    bytes m;
    vsr::encode_message(h, bytes(size_max - vsr::header_size + 1, 0), m);
    BOOST_TEST((decode(m) == vsr::decode_error::too_long));
    // Exactly at the limit is fine.
    vsr::encode_message(h, bytes(size_max - vsr::header_size, 0), m);
    BOOST_TEST((decode(m) == vsr::decode_error::none));
}

BOOST_AUTO_TEST_CASE(error_bad_version) {
    bytes m = sample_message();
    vsr::store_le16(m.data() + 8, vsr::wire_version + 1);
    reseal(m);
    BOOST_TEST((decode(m) == vsr::decode_error::bad_version));
}

BOOST_AUTO_TEST_CASE(error_bad_reserved) {
    bytes m = sample_message();
    m[15] = 1;
    reseal(m);
    BOOST_TEST((decode(m) == vsr::decode_error::bad_reserved));
}

BOOST_AUTO_TEST_CASE(error_bad_command) {
    for (const std::uint8_t cmd : {std::uint8_t{0}, std::uint8_t(vsr::command_max + 1), std::uint8_t{0xFF}}) {
        bytes m = sample_message();
        m[10] = cmd;
        reseal(m);
        BOOST_TEST_CONTEXT("command " << int{cmd}) { BOOST_TEST((decode(m) == vsr::decode_error::bad_command)); }
    }
    // The highest command is valid.
    bytes m = sample_message();
    m[10] = vsr::command_max;
    reseal(m);
    BOOST_TEST((decode(m) == vsr::decode_error::none));
}

BOOST_AUTO_TEST_CASE(error_wrong_cluster) {
    BOOST_TEST((decode(sample_message(), cluster + 1) == vsr::decode_error::wrong_cluster));
}

BOOST_AUTO_TEST_CASE(error_size_mismatch) {
    bytes longer = sample_message();
    longer.push_back(0);
    BOOST_TEST((decode(longer) == vsr::decode_error::size_mismatch));

    bytes shorter = sample_message();
    shorter.pop_back();
    BOOST_TEST((decode(shorter) == vsr::decode_error::size_mismatch));

    bytes lying = sample_message();
    vsr::store_le32(lying.data() + 20, 3);  // body_size says 3, 7 are present
    reseal(lying);
    BOOST_TEST((decode(lying) == vsr::decode_error::size_mismatch));
}

BOOST_AUTO_TEST_CASE(error_bad_checksum) {
    bytes m = sample_message();
    m[0] ^= 1;  // the checksum itself
    BOOST_TEST((decode(m) == vsr::decode_error::bad_checksum));
}

BOOST_AUTO_TEST_CASE(flipped_body_bit_is_bad_checksum) {
    const bytes original = sample_message();
    for (std::size_t bit = vsr::header_size * 8; bit < original.size() * 8; ++bit) {
        bytes m = original;
        m[bit / 8] = static_cast<std::uint8_t>(m[bit / 8] ^ (1u << (bit % 8)));
        BOOST_TEST_CONTEXT("bit " << bit) { BOOST_TEST((decode(m) == vsr::decode_error::bad_checksum)); }
    }
}

BOOST_AUTO_TEST_CASE(every_header_bit_flip_is_rejected) {
    // Whatever field a flip lands in, some check must catch it.
    const bytes original = sample_message();
    for (std::size_t bit = 0; bit < vsr::header_size * 8; ++bit) {
        bytes m = original;
        m[bit / 8] = static_cast<std::uint8_t>(m[bit / 8] ^ (1u << (bit % 8)));
        BOOST_TEST_CONTEXT("bit " << bit) { BOOST_TEST((decode(m) != vsr::decode_error::none)); }
    }
}

BOOST_AUTO_TEST_CASE(check_header_prefix_needs_only_the_header) {
    // A stream framer has only the header when it decides how much more to read.
    const bytes m = sample_message();
    const auto prefix = std::span(m).first(vsr::header_size);
    BOOST_TEST((vsr::check_header_prefix(prefix, cluster, size_max) == vsr::decode_error::none));
    BOOST_TEST((vsr::check_header_prefix(std::span(m).first(vsr::header_size - 1), cluster, size_max) ==
                vsr::decode_error::too_short));
    BOOST_TEST((vsr::check_header_prefix(prefix, cluster + 1, size_max) == vsr::decode_error::wrong_cluster));
}

BOOST_AUTO_TEST_CASE(check_header_prefix_rejects_announced_oversize) {
    bytes m = sample_message();
    vsr::store_le32(m.data() + 20, static_cast<std::uint32_t>(size_max - vsr::header_size + 1));
    BOOST_TEST((vsr::check_header_prefix(m, cluster, size_max) == vsr::decode_error::too_long));
    vsr::store_le32(m.data() + 20, 0xFFFFFFFFu);  // no 32-bit overflow in the size check
    BOOST_TEST((vsr::check_header_prefix(m, cluster, size_max) == vsr::decode_error::too_long));
    vsr::store_le32(m.data() + 20, static_cast<std::uint32_t>(size_max - vsr::header_size));
    BOOST_TEST((vsr::check_header_prefix(m, cluster, size_max) == vsr::decode_error::none));
}

BOOST_AUTO_TEST_CASE(check_header_prefix_ignores_checksum) {
    bytes m = sample_message();
    m[0] ^= 0xFF;
    BOOST_TEST((vsr::check_header_prefix(m, cluster, size_max) == vsr::decode_error::none));
}

BOOST_AUTO_TEST_CASE(decode_error_names) {
    BOOST_TEST(std::string_view(vsr::to_string(vsr::decode_error::none)) == "none");
    BOOST_TEST(std::string_view(vsr::to_string(vsr::decode_error::bad_checksum)) == "bad_checksum");
    BOOST_TEST(std::string_view(vsr::to_string(vsr::decode_error::wrong_target)) == "wrong_target");
    BOOST_TEST(std::string_view(vsr::to_string(static_cast<vsr::decode_error>(vsr::decode_error_count))) == "unknown");
}
