#define BOOST_TEST_MODULE metadata_codec
// The header under test comes first: proves it is self-contained.
#include "toastyfs/metadata_codec.hpp"

#ifndef BOOST_TEST_DYN_LINK  // meson's boost dependency may define it already
#define BOOST_TEST_DYN_LINK
#endif
#include <boost/test/unit_test.hpp>

#include <array>
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "vsr/config.hpp"
#include "vsr/random.hpp"

namespace toastyfs {
inline std::ostream& boost_test_print_type(std::ostream& os, status v) { return os << to_string(v); }
}  // namespace toastyfs

namespace {

using namespace toastyfs;
using bytes = std::vector<std::uint8_t>;

sha256_digest sha_of(std::uint8_t n) {
    sha256_digest sha{};
    sha.fill(n);
    sha[31] = static_cast<std::uint8_t>(n ^ 0x5A);
    return sha;
}
md5_digest md5_of(std::uint8_t n) {
    md5_digest md5{};
    md5.fill(n);
    return md5;
}

put_object_operation inline_put(std::string key, std::string data) {
    put_object_operation op;
    op.key = std::move(key);
    op.size = data.size();
    op.md5 = md5_of(1);
    op.sha256 = sha_of(2);
    op.content_type = "text/plain";
    op.user_metadata = {{"author", "me"}, {"colour", "blue \xC3\xA9"}};
    op.kind = data_kind::inline_data;
    op.inline_data.assign(data.begin(), data.end());
    return op;
}

put_object_operation chunked_put(std::string key, std::vector<chunk_location> chunks) {
    put_object_operation op;
    op.key = std::move(key);
    for (const auto& c : chunks) op.size += c.size;
    op.md5 = md5_of(3);
    op.sha256 = sha_of(4);
    op.put_condition = {condition_kind::if_match, md5_of(9)};
    op.lease_begin_ns = 123456789;
    op.kind = data_kind::chunks;
    op.chunks = std::move(chunks);
    return op;
}

bool decodes(const bytes& b) { return decode_operation(b).has_value(); }

// An independent little-endian appender, so the layout tests do not check the codec against
// the byte writer it is built on.
struct layout {
    bytes out;
    layout& le(std::uint64_t v, int width) {
        for (int i = 0; i < width; ++i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
        return *this;
    }
    layout& u8(std::uint64_t v) { return le(v, 1); }
    layout& u16(std::uint64_t v) { return le(v, 2); }
    layout& u32(std::uint64_t v) { return le(v, 4); }
    layout& u64(std::uint64_t v) { return le(v, 8); }
    template <std::size_t N>
    layout& raw(const std::array<std::uint8_t, N>& v) {
        out.insert(out.end(), v.begin(), v.end());
        return *this;
    }
    layout& text(std::string_view v) {
        out.insert(out.end(), v.begin(), v.end());
        return *this;
    }
};

template <typename T>
void check_round_trip(const T& op) {
    const bytes encoded = encode(op);
    const auto decoded = decode_operation(encoded);
    BOOST_TEST_REQUIRE(decoded.has_value());
    BOOST_TEST_REQUIRE(std::holds_alternative<T>(*decoded));
    BOOST_TEST((std::get<T>(*decoded) == op));
    // Every strict prefix and one trailing byte are rejected.
    for (std::size_t size = 0; size < encoded.size(); ++size) {
        BOOST_TEST_CONTEXT("prefix " << size) {
            BOOST_TEST(!decodes(bytes(encoded.begin(), encoded.begin() + static_cast<std::ptrdiff_t>(size))));
        }
    }
    bytes longer = encoded;
    longer.push_back(0);
    BOOST_TEST(!decodes(longer));
}

}  // namespace

BOOST_AUTO_TEST_CASE(every_operation_round_trips) {
    check_round_trip(inline_put("photos/a.jpg", "hello"));
    check_round_trip(inline_put(std::string("\0\xff", 2), ""));
    check_round_trip(chunked_put("big", {{sha_of(1), 10, 0x0003}, {sha_of(2), 7, 0x8000}, {sha_of(1), 10, 1}}));
    auto create_only = inline_put("k", "v");
    create_only.put_condition.kind = condition_kind::if_none_match_any;
    check_round_trip(create_only);
    auto none_match = inline_put("k", "v");
    none_match.put_condition = {condition_kind::if_none_match, md5_of(7)};
    check_round_trip(none_match);
    check_round_trip(get_object_operation{"k"});
    check_round_trip(head_object_operation{std::string(key_size_max, 'x')});
    check_round_trip(delete_object_operation{"k", {}});
    check_round_trip(delete_object_operation{"k", {condition_kind::if_match, md5_of(5)}});
    check_round_trip(list_objects_operation{"", "", 1});
    check_round_trip(list_objects_operation{"a/", "a/b", list_keys_max});
    check_round_trip(clock_operation{});
    check_round_trip(add_holder_operation{sha_of(3), 15, ~std::uint64_t{0}});
    check_round_trip(remove_holder_operation{sha_of(3), 0});
    check_round_trip(list_chunks_operation{std::nullopt, 1});
    check_round_trip(list_chunks_operation{sha_of(8), 0xFFFF});
    check_round_trip(chunks_held_operation{4, {sha_of(1)}});
    check_round_trip(chunks_held_operation{4, std::vector<sha256_digest>(chunks_held_max, sha_of(2))});
    check_round_trip(stats_operation{});
}

BOOST_AUTO_TEST_CASE(operation_layouts) {
    // get_object: u8 opcode | u16 key_size | key
    BOOST_TEST(encode(get_object_operation{"ab"}) == (bytes{2, 2, 0, 'a', 'b'}), boost::test_tools::per_element());
    // remove_holder: u8 opcode | sha256 | u8 node
    bytes expected{7};
    const auto sha = sha_of(0xAB);
    expected.insert(expected.end(), sha.begin(), sha.end());
    expected.push_back(9);
    BOOST_TEST(encode(remove_holder_operation{sha, 9}) == expected, boost::test_tools::per_element());
    // list_objects: opcode | prefix | start_after | u16 max_keys
    BOOST_TEST(encode(list_objects_operation{"p", "", 1000}) == (bytes{4, 1, 0, 'p', 0, 0, 0xE8, 0x03}),
               boost::test_tools::per_element());
    // list_chunks without a start: opcode | has_after=0 | u16 max
    BOOST_TEST(encode(list_chunks_operation{std::nullopt, 2}) == (bytes{8, 0, 2, 0}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(put_object_layouts_are_exact) {
    auto put = inline_put("k1", "hey");
    put.put_condition = {condition_kind::if_none_match, md5_of(7)};
    put.lease_begin_ns = 0x0102030405060708ULL;
    layout expected;
    expected.u8(1).u16(2).text("k1");                                          // opcode, key
    expected.u64(3).raw(md5_of(1)).raw(sha_of(2)).u16(10).text("text/plain");  // attributes
    expected.u16(2).u8(6).text("author").u16(2).text("me");
    expected.u8(6).text("colour").u16(7).text("blue \xC3\xA9");
    expected.u8(2).raw(md5_of(7));        // condition, etag
    expected.u64(0x0102030405060708ULL);  // lease_begin_ns
    expected.u8(0).u32(3).text("hey");    // inline data
    BOOST_TEST(encode(put) == expected.out, boost::test_tools::per_element());

    const auto chunked = chunked_put("c", {{sha_of(1), 10, 0x0003}, {sha_of(2), 0x01020304, 0x8000}});
    layout chunks;
    chunks.u8(1).u16(1).text("c").u64(10 + 0x01020304).raw(md5_of(3)).raw(sha_of(4)).u16(0).u16(0);
    chunks.u8(1).raw(md5_of(9)).u64(123456789);
    chunks.u8(1).u32(2).raw(sha_of(1)).u32(10).u16(3).raw(sha_of(2)).u32(0x01020304).u16(0x8000);
    BOOST_TEST(encode(chunked) == chunks.out, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(result_layouts_are_exact) {
    layout listing;
    listing.u8(0).u8(1).u32(1).raw(sha_of(5)).u32(0x0A0B0C0D).u64(0x1112131415161718ULL).u16(0x8001);
    const list_chunks_result chunks{status::ok, true, {{sha_of(5), 0x0A0B0C0D, 0x1112131415161718ULL, 0x8001}}};
    BOOST_TEST(encode(chunks) == listing.out, boost::test_tools::per_element());

    layout keys;
    keys.u8(0).u8(0).u16(1).u16(2).text("ab").u64(0x0102).raw(md5_of(3)).u64(0x0304);
    const list_objects_result objects{status::ok, false, {{"ab", 0x0102, md5_of(3), 0x0304}}, "ab"};
    BOOST_TEST(encode(objects) == keys.out, boost::test_tools::per_element());

    layout stats;
    stats.u8(0).u64(1).u64(2).u64(3).u64(4).u64(0xF0E0D0C0B0A09080ULL);
    BOOST_TEST(encode(stats_result{status::ok, 1, 2, 3, 4, 0xF0E0D0C0B0A09080ULL}) == stats.out,
               boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(rejects_bad_opcodes) {
    for (const int code : {0, 12, 0x80, 0xFF}) {
        BOOST_TEST_CONTEXT("opcode " << code) { BOOST_TEST(!decodes(bytes{static_cast<std::uint8_t>(code)})); }
    }
    BOOST_TEST(!decodes(bytes{}));
    BOOST_TEST(decodes(bytes{5}));  // clock
}

BOOST_AUTO_TEST_CASE(rejects_bad_keys) {
    BOOST_TEST(!decodes(encode(get_object_operation{""})));
    BOOST_TEST(!decodes(encode(get_object_operation{std::string(key_size_max + 1, 'k')})));
    BOOST_TEST(!decodes(encode(inline_put("", "v"))));
    BOOST_TEST(!decodes(encode(delete_object_operation{"", {}})));
    BOOST_TEST(!decodes(encode(list_objects_operation{std::string(key_size_max + 1, 'p'), "", 1})));
    BOOST_TEST(!decodes(encode(list_objects_operation{"", std::string(key_size_max + 1, 's'), 1})));
}

BOOST_AUTO_TEST_CASE(rejects_bad_attributes) {
    auto check = [](auto mutate) {
        auto op = inline_put("k", "data");
        mutate(op);
        return decodes(encode(op));
    };
    BOOST_TEST(check([](put_object_operation&) {}));
    BOOST_TEST(check([](put_object_operation& op) { op.content_type = std::string(content_type_size_max, 'c'); }));
    BOOST_TEST(!check([](put_object_operation& op) { op.content_type = std::string(content_type_size_max + 1, 'c'); }));
    BOOST_TEST(!check([](put_object_operation& op) { op.content_type = "text/plain\r\nX: y"; }));
    BOOST_TEST(!check([](put_object_operation& op) { op.content_type = std::string("a\0b", 3); }));
    BOOST_TEST(check([](put_object_operation& op) { op.user_metadata.clear(); }));
    BOOST_TEST(!check([](put_object_operation& op) { std::swap(op.user_metadata[0], op.user_metadata[1]); }));
    BOOST_TEST(!check([](put_object_operation& op) { op.user_metadata[1].name = op.user_metadata[0].name; }));
    BOOST_TEST(!check([](put_object_operation& op) { op.user_metadata[0].name = "Author"; }));
    BOOST_TEST(!check([](put_object_operation& op) { op.user_metadata[0].name = ""; }));
    BOOST_TEST(!check([](put_object_operation& op) { op.user_metadata[0].name = "a b"; }));
    BOOST_TEST(!check([](put_object_operation& op) { op.user_metadata[0].value = "line\nbreak"; }));
    // The total of names and values: exactly the limit passes, one more byte fails.
    BOOST_TEST(check([](put_object_operation& op) {
        op.user_metadata = {{"a", std::string(user_metadata_size_max - 2, 'v')}, {"b", ""}};
    }));
    BOOST_TEST(!check([](put_object_operation& op) {
        op.user_metadata = {{"a", std::string(user_metadata_size_max - 1, 'v')}, {"b", ""}};
    }));
}

BOOST_AUTO_TEST_CASE(rejects_bad_data) {
    auto check = [](auto mutate) {
        auto op = chunked_put("k", {{sha_of(1), 10, 1}, {sha_of(2), 5, 2}});
        mutate(op);
        return decodes(encode(op));
    };
    BOOST_TEST(check([](put_object_operation&) {}));
    BOOST_TEST(!check([](put_object_operation& op) { op.size += 1; }));  // sizes do not sum
    BOOST_TEST(!check([](put_object_operation& op) {
        op.chunks[1].size = 0;
        op.size -= 5;
    }));
    BOOST_TEST(!check([](put_object_operation& op) { op.chunks[0].holders = 0; }));
    BOOST_TEST(!check([](put_object_operation& op) {
        op.chunks.clear();
        op.size = 0;
    }));
    BOOST_TEST(!check([](put_object_operation& op) { op.chunks[1].sha256 = op.chunks[0].sha256; }));  // 10 vs 5
    BOOST_TEST(check([](put_object_operation& op) {
        op.chunks.push_back(op.chunks[0]);
        op.size += 10;
    }));
    BOOST_TEST(!check([](put_object_operation& op) { op.kind = data_kind::omitted; }));
    BOOST_TEST(!check([](put_object_operation& op) {
        op.kind = data_kind::inline_data;
        op.chunks.clear();
        op.inline_data.assign(3, 'x');  // size says 15
    }));
    auto bad_enum = encode(inline_put("k", ""));
    BOOST_TEST(decodes(bad_enum));
    bad_enum[bad_enum.size() - 5] = 3;  // data_kind, before the u32 data size
    BOOST_TEST(!decodes(bad_enum));
}

BOOST_AUTO_TEST_CASE(rejects_bad_enums_and_ranges) {
    auto put = encode(inline_put("k", ""));
    // condition byte: right after the attributes, followed by the lease and data.
    const std::size_t condition_at = put.size() - 1 - 4 - 8 - 1;
    BOOST_TEST(put[condition_at] == 0);
    put[condition_at] = 4;
    BOOST_TEST(!decodes(put));
    // delete takes none or if_match only.
    auto del = encode(delete_object_operation{"k", {condition_kind::if_none_match, md5_of(1)}});
    BOOST_TEST(!decodes(del));
    BOOST_TEST(!decodes(encode(delete_object_operation{"k", {condition_kind::if_none_match_any, {}}})));
    BOOST_TEST(!decodes(encode(list_objects_operation{"", "", 0})));
    BOOST_TEST(!decodes(encode(list_objects_operation{"", "", list_keys_max + 1})));
    BOOST_TEST(!decodes(encode(add_holder_operation{sha_of(1), 16, 0})));
    BOOST_TEST(!decodes(encode(remove_holder_operation{sha_of(1), 0xFF})));
    BOOST_TEST(!decodes(encode(chunks_held_operation{16, {sha_of(1)}})));
    BOOST_TEST(!decodes(encode(chunks_held_operation{0, {}})));
    BOOST_TEST(!decodes(encode(chunks_held_operation{0, std::vector<sha256_digest>(chunks_held_max + 1)})));
    BOOST_TEST(!decodes(encode(list_chunks_operation{std::nullopt, 0})));
    BOOST_TEST(!decodes(bytes{8, 2, 1, 0}));  // has_after must be 0 or 1
}

BOOST_AUTO_TEST_CASE(huge_counts_do_not_allocate) {
    // A chunk count of 2^32-1 with no chunks behind it fails before allocating.
    auto put = encode(chunked_put("k", {{sha_of(1), 1, 1}}));
    const std::size_t count_at = put.size() - chunk_location_encoded_size - 4;
    vsr::store_le32(put.data() + count_at, 0xFFFFFFFFu);
    BOOST_TEST(!decodes(put));
    auto result = encode(list_chunks_result{status::ok, false, {}});
    vsr::store_le32(result.data() + 2, 0xFFFFFFFFu);
    BOOST_TEST(!decode_list_chunks_result(result).has_value());
}

BOOST_AUTO_TEST_CASE(size_bounds_fit_vsr_messages) {
    const vsr::config config;
    // With the state machine's default limits (inline 4096, 2048 chunks per object).
    BOOST_TEST(put_object_operation_size_max(4096, 2048) <= config.operation_size_max());
    BOOST_TEST(object_result_size_max(4096, 2048) <= 100u * 1024);
    // A put at the format limits encodes within the bound.
    auto op = chunked_put(std::string(key_size_max, 'k'), {});
    for (std::uint32_t i = 0; i < 2048; ++i) op.chunks.push_back({sha_of(static_cast<std::uint8_t>(i)), 1, 1});
    op.size = op.chunks.size();
    op.content_type = std::string(content_type_size_max, 't');
    for (char c = 'a'; c <= 'z'; ++c) op.user_metadata.push_back({std::string(1, c), std::string(60, 'v')});
    const bytes encoded = encode(op);
    BOOST_TEST(encoded.size() <= put_object_operation_size_max(4096, 2048));
    BOOST_TEST(decodes(encoded));
}

BOOST_AUTO_TEST_CASE(results_round_trip) {
    auto check = [](const auto& result, auto decoder) {
        const auto decoded = decoder(encode(result));
        BOOST_TEST_REQUIRE(decoded.has_value());
        BOOST_TEST((*decoded == result));
        bytes longer = encode(result);
        longer.push_back(0);
        BOOST_TEST(!decoder(longer).has_value());
        const bytes encoded = encode(result);
        for (std::size_t size = 0; size < encoded.size(); ++size) {
            BOOST_TEST(
                !decoder(bytes(encoded.begin(), encoded.begin() + static_cast<std::ptrdiff_t>(size))).has_value());
        }
    };
    check(status_result{status::ok}, decode_status_result);
    check(put_object_result{status::ok, 7, 99}, decode_put_object_result);
    object_result object{status::ok,
                         3,
                         44,
                         17,
                         md5_of(1),
                         sha_of(2),
                         "a/b",
                         {{"x", "y"}},
                         data_kind::chunks,
                         {},
                         {{sha_of(5), 10, 3}, {sha_of(6), 7, 1}}};
    check(object, decode_object_result);
    object.kind = data_kind::omitted;
    object.chunks.clear();
    check(object, decode_object_result);
    object.kind = data_kind::inline_data;
    object.inline_data.assign(17, 'z');
    check(object, decode_object_result);
    check(list_objects_result{status::ok, true, {{"a", 1, md5_of(1), 2}, {"b\xff", 3, md5_of(4), 5}}, "b\xff"},
          decode_list_objects_result);
    check(list_objects_result{status::ok, false, {}, ""}, decode_list_objects_result);
    check(clock_result{status::ok, 12345}, decode_clock_result);
    check(list_chunks_result{status::ok, true, {{sha_of(1), 5, 2, 3}, {sha_of(2), 1, 1, 0x8000}}},
          decode_list_chunks_result);
    check(chunks_held_result{status::ok, {true, false, false, true, false, false, false, false, true}},
          decode_chunks_held_result);
    check(stats_result{status::ok, 1, 2, 3, 4, 5}, decode_stats_result);
    // Errors: exactly the status byte, whatever the other fields held.
    for (std::uint8_t s = 1; s <= status_max; ++s) {
        const auto error = put_object_result{static_cast<status>(s), 5, 6};
        BOOST_TEST(encode(error) == bytes{s}, boost::test_tools::per_element());
        const auto decoded = decode_put_object_result(bytes{s});
        BOOST_TEST_REQUIRE(decoded.has_value());
        BOOST_TEST((decoded->result_status == static_cast<status>(s)));
        BOOST_TEST(!decode_put_object_result(bytes{s, 0}).has_value());
    }
    BOOST_TEST(!decode_status_result(bytes{status_max + 1}).has_value());
    BOOST_TEST(!decode_status_result(bytes{}).has_value());
}

BOOST_AUTO_TEST_CASE(result_decoders_reject_inconsistent_bodies) {
    // Unsorted or duplicate keys in a listing.
    BOOST_TEST(!decode_list_objects_result(
                    encode(list_objects_result{status::ok, false, {{"b", 1, {}, 2}, {"a", 1, {}, 2}}, ""}))
                    .has_value());
    BOOST_TEST(!decode_list_objects_result(
                    encode(list_objects_result{status::ok, false, {{"a", 1, {}, 2}, {"a", 1, {}, 2}}, ""}))
                    .has_value());
    // Truncated with nothing returned: no cursor to continue from.
    BOOST_TEST(!decode_list_objects_result(encode(list_objects_result{status::ok, true, {}, ""})).has_value());
    BOOST_TEST(!decode_list_chunks_result(encode(list_chunks_result{status::ok, true, {}})).has_value());
    // Unsorted digests, zero refcount, zero holders.
    BOOST_TEST(!decode_list_chunks_result(
                    encode(list_chunks_result{status::ok, false, {{sha_of(2), 1, 1, 1}, {sha_of(1), 1, 1, 1}}}))
                    .has_value());
    BOOST_TEST(
        !decode_list_chunks_result(encode(list_chunks_result{status::ok, false, {{sha_of(2), 1, 0, 1}}})).has_value());
    BOOST_TEST(
        !decode_list_chunks_result(encode(list_chunks_result{status::ok, false, {{sha_of(2), 1, 1, 0}}})).has_value());
    // A padding bit set in the chunks_held bitmap.
    BOOST_TEST(!decode_chunks_held_result(bytes{0, 3, 0, 0x08}).has_value());
    BOOST_TEST(decode_chunks_held_result(bytes{0, 3, 0, 0x05}).has_value());
    // Version 0 is never assigned.
    BOOST_TEST(!decode_put_object_result(encode(put_object_result{status::ok, 0, 1})).has_value());
    // The cursor is the last key.
    const auto listing = decode_list_objects_result(
        encode(list_objects_result{status::ok, true, {{"a", 1, {}, 2}, {"c", 1, {}, 2}}, ""}));
    BOOST_TEST_REQUIRE(listing.has_value());
    BOOST_TEST(listing->cursor == "c");
}

BOOST_AUTO_TEST_CASE(random_bytes_never_crash_decoders) {
    vsr::xoshiro256 random(42);
    const bytes seed_put = encode(chunked_put("key", {{sha_of(1), 10, 1}, {sha_of(2), 5, 2}}));
    std::size_t accepted = 0;
    for (int i = 0; i < 20000; ++i) {
        bytes b;
        if (i % 2 == 0) {
            b.resize(vsr::uniform_below(random, 48));
            for (auto& byte : b) byte = static_cast<std::uint8_t>(random.next_u64());
        } else {
            b = seed_put;
            b[vsr::uniform_below(random, b.size())] = static_cast<std::uint8_t>(random.next_u64());
        }
        if (const auto op = decode_operation(b)) {
            ++accepted;
            BOOST_TEST_REQUIRE((encode(*op) == b));  // decoding is canonical: re-encodes exactly
        }
        (void)decode_object_result(b);
        (void)decode_list_objects_result(b);
        (void)decode_list_chunks_result(b);
        (void)decode_chunks_held_result(b);
        (void)decode_stats_result(b);
    }
    BOOST_TEST(accepted > 0u);
}
