#define BOOST_TEST_MODULE metadata_state_machine
// The header under test comes first: proves it is self-contained.
#include "toastyfs/metadata_state_machine.hpp"

#ifndef BOOST_TEST_DYN_LINK  // meson's boost dependency may define it already
#define BOOST_TEST_DYN_LINK
#endif
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "vsr/config.hpp"
#include "vsr/random.hpp"

namespace toastyfs {
inline std::ostream& boost_test_print_type(std::ostream& os, status v) { return os << to_string(v); }
}  // namespace toastyfs

namespace {

using namespace toastyfs;
using bytes = std::vector<std::uint8_t>;

constexpr std::uint64_t second_ns = 1'000'000'000;
constexpr std::uint64_t hour_ns = 3600 * second_ns;

sha256_digest sha_of(std::uint8_t n) {
    sha256_digest sha{};
    sha.fill(n);
    return sha;
}
md5_digest md5_of(std::uint8_t n) {
    md5_digest md5{};
    md5.fill(n);
    return md5;
}

/// A machine with a clock: every operation gets the next op number and a later timestamp.
struct harness {
    explicit harness(metadata_options options = {}) : machine(options) {}

    bytes run_bytes(std::span<const std::uint8_t> operation) {
        bytes out;
        ++op_number;
        now_ns += second_ns;
        machine.execute(vsr::operation_context{op_number, 0, now_ns, 1}, operation, out);
        BOOST_TEST_REQUIRE(!out.empty());
        BOOST_TEST_REQUIRE(out.size() <= machine.result_size_max());
        return out;
    }
    template <typename Op>
    bytes run(const Op& op) {
        return run_bytes(encode(op));
    }
    put_object_result put(const put_object_operation& op) { return *decode_put_object_result(run(op)); }
    status status_of(const auto& op) { return decode_status_result(run(op))->result_status; }
    object_result get(std::string key) { return *decode_object_result(run(get_object_operation{std::move(key)})); }
    object_result head(std::string key) { return *decode_object_result(run(head_object_operation{std::move(key)})); }
    list_objects_result list(std::string prefix, std::string start_after, std::uint16_t max_keys) {
        return *decode_list_objects_result(
            run(list_objects_operation{std::move(prefix), std::move(start_after), max_keys}));
    }
    list_chunks_result list_chunks(std::optional<sha256_digest> after, std::uint16_t max) {
        return *decode_list_chunks_result(run(list_chunks_operation{after, max}));
    }
    stats_result stats() { return *decode_stats_result(run(stats_operation{})); }
    chunk_info chunk(std::uint8_t n) {
        const auto info = machine.find_chunk(sha_of(n));
        BOOST_TEST_REQUIRE(info.has_value());
        return *info;
    }
    bytes snapshot() const {
        bytes out;
        machine.snapshot(out);
        return out;
    }

    metadata_state_machine machine;
    std::uint64_t op_number = 0;
    std::uint64_t now_ns = 10 * hour_ns;
};

put_object_operation inline_put(std::string key, std::string data, std::uint8_t md5 = 1) {
    put_object_operation op;
    op.key = std::move(key);
    op.size = data.size();
    op.md5 = md5_of(md5);
    op.sha256 = sha_of(md5);
    op.content_type = "text/plain";
    op.user_metadata = {{"owner", "alice"}};
    op.inline_data.assign(data.begin(), data.end());
    return op;
}

/// chunks: (digest number, size, holders).
put_object_operation chunked_put(std::string key, std::vector<std::tuple<std::uint8_t, std::uint32_t, node_set>> chunks,
                                 std::uint64_t lease_begin_ns, std::uint8_t md5 = 2) {
    put_object_operation op;
    op.key = std::move(key);
    op.md5 = md5_of(md5);
    op.kind = data_kind::chunks;
    op.lease_begin_ns = lease_begin_ns;
    for (const auto& [n, size, holders] : chunks) {
        op.chunks.push_back({sha_of(n), size, holders});
        op.size += size;
    }
    return op;
}

/// "k" + n, built without operator+ (GCC 12 warns falsely on "literal" + std::string at -O3).
std::string numbered_key(std::uint64_t n) {
    std::string key = "k";
    key += std::to_string(n);
    return key;
}

std::uint64_t refcount(harness& h, std::uint8_t n) {
    const auto info = h.machine.find_chunk(sha_of(n));
    return info ? info->refcount : 0;
}

}  // namespace

BOOST_AUTO_TEST_CASE(put_get_head_inline) {
    harness h;
    BOOST_TEST((h.get("k").result_status == status::not_found));
    BOOST_TEST((h.head("k").result_status == status::not_found));
    const auto put = h.put(inline_put("k", "hello"));
    BOOST_TEST((put.result_status == status::ok));
    BOOST_TEST(put.version == 1u);
    BOOST_TEST(put.last_modified_ns == h.now_ns);
    const auto got = h.get("k");
    BOOST_TEST((got.result_status == status::ok));
    BOOST_TEST(got.version == 1u);
    BOOST_TEST(got.size == 5u);
    BOOST_TEST((got.md5 == md5_of(1)));
    BOOST_TEST(got.content_type == "text/plain");
    BOOST_TEST((got.user_metadata == std::vector<user_metadata_entry>{{"owner", "alice"}}));
    BOOST_TEST((got.kind == data_kind::inline_data));
    BOOST_TEST(std::string(got.inline_data.begin(), got.inline_data.end()) == "hello");
    const auto head = h.head("k");
    BOOST_TEST((head.kind == data_kind::omitted));
    BOOST_TEST(head.inline_data.empty());
    BOOST_TEST(head.size == 5u);
    // Versions increase with every put, and last_modified follows the primary's clock.
    const auto again = h.put(inline_put("k", "bye"));
    BOOST_TEST(again.version == 2u);
    BOOST_TEST(h.get("k").last_modified_ns == again.last_modified_ns);
    BOOST_TEST(h.put(inline_put("other", "")).version == 3u);
    BOOST_TEST(h.get("other").size == 0u);
}

BOOST_AUTO_TEST_CASE(put_chunked_reports_current_holders) {
    harness h;
    BOOST_TEST((h.put(chunked_put("a", {{1, 10, 0b001}, {2, 20, 0b010}}, h.now_ns)).result_status == status::ok));
    BOOST_TEST((h.put(chunked_put("b", {{2, 20, 0b100}}, h.now_ns)).result_status == status::ok));  // ORed in
    BOOST_TEST((h.status_of(add_holder_operation{sha_of(1), 7, h.now_ns}) == status::ok));
    const auto got = h.get("a");
    BOOST_TEST_REQUIRE(got.chunks.size() == 2u);
    BOOST_TEST((got.kind == data_kind::chunks));
    BOOST_TEST(got.size == 30u);
    BOOST_TEST((got.chunks[0] == chunk_location{sha_of(1), 10, 0b1000'0001}));
    BOOST_TEST((got.chunks[1] == chunk_location{sha_of(2), 20, 0b110}));
    BOOST_TEST(h.head("a").chunks.empty());
}

BOOST_AUTO_TEST_CASE(overwrite_and_delete_refcount_shared_chunks) {
    harness h;
    h.put(chunked_put("a", {{1, 10, 1}, {2, 20, 1}, {1, 10, 1}}, h.now_ns));  // 1 twice
    h.put(chunked_put("b", {{2, 20, 2}, {3, 30, 2}}, h.now_ns));
    BOOST_TEST(refcount(h, 1) == 2u);
    BOOST_TEST(refcount(h, 2) == 2u);
    BOOST_TEST(refcount(h, 3) == 1u);
    auto stats = h.stats();
    BOOST_TEST(stats.objects == 2u);
    BOOST_TEST(stats.chunks == 3u);
    BOOST_TEST(stats.logical_bytes == 40u + 50u);
    BOOST_TEST(stats.chunk_bytes == 60u);

    // Overwrite a with [3]: 1 leaves the index, 2 drops to 1, 3 rises to 2.
    h.put(chunked_put("a", {{3, 30, 4}}, h.now_ns));
    BOOST_TEST(!h.machine.find_chunk(sha_of(1)).has_value());
    BOOST_TEST(refcount(h, 2) == 1u);
    BOOST_TEST(refcount(h, 3) == 2u);
    BOOST_TEST(h.chunk(3).holders == 0b110);
    BOOST_TEST((h.status_of(delete_object_operation{"b", {}}) == status::ok));
    BOOST_TEST(!h.machine.find_chunk(sha_of(2)).has_value());
    BOOST_TEST(refcount(h, 3) == 1u);
    // Overwriting with an inline object releases the last chunk.
    h.put(inline_put("a", "tiny"));
    stats = h.stats();
    BOOST_TEST(stats.objects == 1u);
    BOOST_TEST(stats.chunks == 0u);
    BOOST_TEST(stats.logical_bytes == 4u);
    BOOST_TEST(stats.inline_bytes == 4u);
    BOOST_TEST(stats.chunk_bytes == 0u);
    BOOST_TEST((h.status_of(delete_object_operation{"a", {}}) == status::ok));
    BOOST_TEST((h.status_of(delete_object_operation{"a", {}}) == status::not_found));
    BOOST_TEST((h.stats() == stats_result{status::ok, 0, 0, 0, 0, 0}));
}

BOOST_AUTO_TEST_CASE(overwrite_with_the_same_chunk_keeps_its_holders) {
    harness h;
    h.put(chunked_put("a", {{1, 10, 0b01}}, h.now_ns));
    BOOST_TEST((h.status_of(add_holder_operation{sha_of(1), 5, h.now_ns}) == status::ok));
    h.put(chunked_put("a", {{1, 10, 0b10}}, h.now_ns));
    BOOST_TEST(h.chunk(1).refcount == 1u);
    BOOST_TEST(h.chunk(1).holders == 0b10'0011);
}

BOOST_AUTO_TEST_CASE(conditional_put) {
    harness h;
    auto op = inline_put("k", "v1", 1);
    op.put_condition = {condition_kind::if_match, md5_of(1)};
    BOOST_TEST((h.put(op).result_status == status::precondition_failed));  // missing
    op.put_condition = {condition_kind::if_none_match_any, {}};
    BOOST_TEST((h.put(op).result_status == status::ok));                   // create-only, absent
    BOOST_TEST((h.put(op).result_status == status::precondition_failed));  // now present
    auto second = inline_put("k", "v2", 2);
    second.put_condition = {condition_kind::if_match, md5_of(9)};
    BOOST_TEST((h.put(second).result_status == status::precondition_failed));
    second.put_condition = {condition_kind::if_none_match, md5_of(1)};
    BOOST_TEST((h.put(second).result_status == status::precondition_failed));  // md5 equals
    second.put_condition = {condition_kind::if_match, md5_of(1)};
    BOOST_TEST((h.put(second).result_status == status::ok));
    BOOST_TEST((h.get("k").md5 == md5_of(2)));
    second.put_condition = {condition_kind::if_none_match, md5_of(1)};
    BOOST_TEST((h.put(second).result_status == status::ok));  // differs
    auto absent = inline_put("new", "x");
    absent.put_condition = {condition_kind::if_none_match, md5_of(1)};
    BOOST_TEST((h.put(absent).result_status == status::ok));  // absent
}

BOOST_AUTO_TEST_CASE(conditional_delete) {
    harness h;
    h.put(chunked_put("k", {{1, 5, 1}}, h.now_ns, 3));
    BOOST_TEST((h.status_of(delete_object_operation{"k", {condition_kind::if_match, md5_of(4)}}) ==
                status::precondition_failed));
    BOOST_TEST(h.machine.object_count() == 1u);
    BOOST_TEST(refcount(h, 1) == 1u);
    BOOST_TEST((h.status_of(delete_object_operation{"k", {condition_kind::if_match, md5_of(3)}}) == status::ok));
    BOOST_TEST(h.machine.chunk_count() == 0u);
    BOOST_TEST((h.status_of(delete_object_operation{"k", {condition_kind::if_match, md5_of(3)}}) == status::not_found));
}

BOOST_AUTO_TEST_CASE(lease_boundaries) {
    harness h;  // default lease: one hour
    // run() advances the clock by one second before executing.
    auto at = [&](std::int64_t offset_from_next_ns) {
        return static_cast<std::uint64_t>(static_cast<std::int64_t>(h.now_ns + second_ns) + offset_from_next_ns);
    };
    const bytes before = h.snapshot();
    BOOST_TEST((h.put(chunked_put("k", {{1, 5, 1}}, at(-static_cast<std::int64_t>(hour_ns) - 1))).result_status ==
                status::lease_expired));
    BOOST_TEST((h.put(chunked_put("k", {{1, 5, 1}}, at(1))).result_status == status::lease_expired));  // future
    BOOST_TEST((h.snapshot() == before));  // nothing changed, not even the version counter
    BOOST_TEST(
        (h.put(chunked_put("k", {{1, 5, 1}}, at(-static_cast<std::int64_t>(hour_ns)))).result_status == status::ok));
    BOOST_TEST((h.put(chunked_put("k", {{1, 5, 1}}, at(0))).result_status == status::ok));
    // Inline puts do not use the lease.
    auto small = inline_put("s", "x");
    small.lease_begin_ns = 0;
    BOOST_TEST((h.put(small).result_status == status::ok));
    // add_holder uses it too, before looking at the index.
    BOOST_TEST((h.status_of(add_holder_operation{sha_of(1), 3, at(-static_cast<std::int64_t>(hour_ns) - 1)}) ==
                status::lease_expired));
    BOOST_TEST((h.status_of(add_holder_operation{sha_of(9), 3, at(1)}) == status::lease_expired));
    BOOST_TEST((h.status_of(add_holder_operation{sha_of(9), 3, at(0)}) == status::not_referenced));
    BOOST_TEST(
        (h.status_of(add_holder_operation{sha_of(1), 3, at(-static_cast<std::int64_t>(hour_ns))}) == status::ok));
    BOOST_TEST(h.chunk(1).holders == 0b1001);
}

BOOST_AUTO_TEST_CASE(clock_returns_the_context_timestamp) {
    harness h;
    const auto first = decode_clock_result(h.run(clock_operation{}));
    BOOST_TEST_REQUIRE(first.has_value());
    BOOST_TEST(first->timestamp_ns == h.now_ns);
    const auto second = decode_clock_result(h.run(clock_operation{}));
    BOOST_TEST(second->timestamp_ns > first->timestamp_ns);
}

BOOST_AUTO_TEST_CASE(holders_add_remove_last_holder) {
    harness h;
    BOOST_TEST((h.status_of(remove_holder_operation{sha_of(1), 0}) == status::not_referenced));
    h.put(chunked_put("k", {{1, 5, 0b011}}, h.now_ns));
    BOOST_TEST((h.status_of(add_holder_operation{sha_of(1), 15, h.now_ns}) == status::ok));
    BOOST_TEST((h.status_of(add_holder_operation{sha_of(1), 15, h.now_ns}) == status::ok));  // idempotent
    BOOST_TEST(h.chunk(1).holders == 0x8003);
    BOOST_TEST((h.status_of(remove_holder_operation{sha_of(1), 0}) == status::ok));
    BOOST_TEST((h.status_of(remove_holder_operation{sha_of(1), 4}) == status::ok));  // not a holder
    BOOST_TEST((h.status_of(remove_holder_operation{sha_of(1), 15}) == status::ok));
    BOOST_TEST(h.chunk(1).holders == 0b010);
    BOOST_TEST((h.status_of(remove_holder_operation{sha_of(1), 1}) == status::last_holder));
    BOOST_TEST(h.chunk(1).holders == 0b010);
}

BOOST_AUTO_TEST_CASE(chunks_held_answers_per_digest) {
    harness h;
    h.put(chunked_put("k", {{1, 5, 0b01}, {2, 5, 0b10}}, h.now_ns));
    const auto held =
        decode_chunks_held_result(h.run(chunks_held_operation{1, {sha_of(1), sha_of(2), sha_of(3), sha_of(2)}}));
    BOOST_TEST_REQUIRE(held.has_value());
    BOOST_TEST((held->held == std::vector<bool>{false, true, false, true}));
    const auto node0 = decode_chunks_held_result(h.run(chunks_held_operation{0, {sha_of(1)}}));
    BOOST_TEST((node0->held == std::vector<bool>{true}));
    // After deletion nothing is held by anyone: the garbage collector may delete.
    h.status_of(delete_object_operation{"k", {}});
    const auto after = decode_chunks_held_result(h.run(chunks_held_operation{1, {sha_of(2)}}));
    BOOST_TEST((after->held == std::vector<bool>{false}));
}

BOOST_AUTO_TEST_CASE(list_chunks_pages_in_digest_order) {
    metadata_options options;
    options.list_result_bytes_max = list_objects_result_header_size + list_objects_entry_encoded_size(key_size_max);
    harness h(options);  // budget: 22 chunk entries per page
    const std::size_t per_page =
        (options.list_result_bytes_max - list_chunks_result_header_size) / chunk_info_encoded_size;
    for (std::uint8_t n = 1; n <= 50; ++n) h.put(chunked_put(numbered_key(n), {{n, n, 1}}, h.now_ns));
    auto page = h.list_chunks(std::nullopt, 10);
    BOOST_TEST(page.entries.size() == 10u);
    BOOST_TEST(page.truncated);
    BOOST_TEST((page.entries[0] == chunk_info{sha_of(1), 1, 1, 1}));
    page = h.list_chunks(std::nullopt, 0xFFFF);
    BOOST_TEST(page.entries.size() == per_page);
    BOOST_TEST(page.truncated);
    std::vector<chunk_info> all;
    std::optional<sha256_digest> after;
    for (int pages = 0;; ++pages) {
        BOOST_TEST_REQUIRE(pages < 10);
        page = h.list_chunks(after, 0xFFFF);
        all.insert(all.end(), page.entries.begin(), page.entries.end());
        if (!page.truncated) break;
        after = page.entries.back().sha256;
    }
    BOOST_TEST_REQUIRE(all.size() == 50u);
    for (std::size_t i = 0; i < all.size(); ++i)
        BOOST_TEST((all[i].sha256 == sha_of(static_cast<std::uint8_t>(i + 1))));
    BOOST_TEST(h.list_chunks(sha_of(50), 5).entries.empty());
    BOOST_TEST(!h.list_chunks(sha_of(50), 5).truncated);
    BOOST_TEST(h.list_chunks(sha_of(49), 1).entries.size() == 1u);
    BOOST_TEST(!h.list_chunks(sha_of(49), 1).truncated);  // exactly the last one: nothing more
}

BOOST_AUTO_TEST_CASE(list_objects_prefix_start_after_and_0xff) {
    harness h;
    for (const std::string& key :
         std::vector<std::string>{"a", "ab", "abc", "a\xff", "b", "\xff", "\xff\xff", std::string("a\0", 2)}) {
        h.put(inline_put(key, "data"));
    }
    auto keys = [](const list_objects_result& r) {
        std::vector<std::string> out;
        for (const auto& e : r.entries) out.push_back(e.key);
        return out;
    };
    using strings = std::vector<std::string>;
    BOOST_TEST((keys(h.list("a", "", 1000)) == strings{"a", std::string("a\0", 2), "ab", "abc", "a\xff"}));
    BOOST_TEST((keys(h.list("a", "ab", 1000)) == strings{"abc", "a\xff"}));
    BOOST_TEST((keys(h.list("a", "", 1000)).size() == 5u));
    BOOST_TEST((keys(h.list("\xff", "", 1000)) == strings{"\xff", "\xff\xff"}));
    BOOST_TEST((keys(h.list("\xff", "\xff", 1000)) == strings{"\xff\xff"}));
    BOOST_TEST((keys(h.list("", "b", 1000)) == strings{"\xff", "\xff\xff"}));
    BOOST_TEST((keys(h.list("a", "b", 1000)).empty()));          // start_after beyond the prefix range
    BOOST_TEST((keys(h.list("b", "a", 1000)) == strings{"b"}));  // start_after before it
    BOOST_TEST((keys(h.list("zz", "", 1000)).empty()));
    const auto entry = h.list("b", "", 1).entries.at(0);
    BOOST_TEST(entry.size == 4u);
    BOOST_TEST((entry.md5 == md5_of(1)));
    BOOST_TEST(entry.last_modified_ns == h.get("b").last_modified_ns);
    // truncated only when another matching key exists.
    BOOST_TEST(!h.list("b", "", 1).truncated);
    BOOST_TEST(h.list("\xff", "", 1).truncated);
    BOOST_TEST(!h.list("\xff", "", 2).truncated);
}

BOOST_AUTO_TEST_CASE(list_objects_paginates_with_max_keys) {
    harness h;
    for (int i = 0; i < 2500; ++i) {
        char key[16];
        std::snprintf(key, sizeof key, "dir/%05d", i);
        h.put(inline_put(key, ""));
    }
    h.put(inline_put("dir0", ""));  // outside the prefix "dir/"
    std::vector<std::string> seen;
    std::string cursor;
    for (int pages = 0;; ++pages) {
        BOOST_TEST_REQUIRE(pages < 10);
        const auto page = h.list("dir/", cursor, 1000);
        BOOST_TEST(page.entries.size() <= 1000u);
        for (const auto& e : page.entries) seen.push_back(e.key);
        if (!page.truncated) break;
        cursor = page.cursor;
    }
    BOOST_TEST_REQUIRE(seen.size() == 2500u);
    BOOST_TEST(seen.front() == "dir/00000");
    BOOST_TEST(seen.back() == "dir/02499");
    BOOST_TEST(std::is_sorted(seen.begin(), seen.end()));
}

BOOST_AUTO_TEST_CASE(list_objects_stops_at_the_byte_budget) {
    metadata_options options;
    options.list_result_bytes_max = list_objects_result_header_size + 2 * list_objects_entry_encoded_size(key_size_max);
    harness h(options);
    for (char c = 'a'; c <= 'e'; ++c) h.put(inline_put(std::string(key_size_max, c), ""));
    std::vector<std::string> seen;
    std::string cursor;
    for (int pages = 0;; ++pages) {
        BOOST_TEST_REQUIRE(pages < 10);
        const bytes raw = h.run(list_objects_operation{"", cursor, 1000});
        BOOST_TEST(raw.size() <= options.list_result_bytes_max);
        const auto page = *decode_list_objects_result(raw);
        BOOST_TEST(page.entries.size() == (seen.size() < 4 ? 2u : 1u));
        for (const auto& e : page.entries) seen.push_back(e.key);
        if (!page.truncated) break;
        cursor = page.cursor;
    }
    BOOST_TEST(seen.size() == 5u);
    // Short keys: max_keys binds first.
    BOOST_TEST(h.list("", "", 1).entries.size() == 1u);
}

BOOST_AUTO_TEST_CASE(limits_answer_too_large_and_store_full) {
    metadata_options options;
    options.objects_max = 2;
    options.chunks_max = 3;
    options.chunks_per_object_max = 2;
    options.inline_size_max = 8;
    options.inline_bytes_max = 12;
    options.object_size_max = 100;
    BOOST_TEST_REQUIRE(options.valid());
    harness h(options);
    BOOST_TEST((h.put(inline_put("a", std::string(9, 'x'))).result_status == status::too_large));
    BOOST_TEST(
        (h.put(chunked_put("a", {{1, 1, 1}, {2, 1, 1}, {3, 1, 1}}, h.now_ns)).result_status == status::too_large));
    BOOST_TEST((h.put(chunked_put("a", {{1, 101, 1}}, h.now_ns)).result_status == status::too_large));
    BOOST_TEST((h.put(inline_put("a", std::string(8, 'x'))).result_status == status::ok));
    BOOST_TEST((h.put(inline_put("b", std::string(5, 'x'))).result_status == status::store_full));  // 13 inline
    BOOST_TEST((h.put(inline_put("a", std::string(2, 'x'))).result_status == status::ok));          // overwrite
    BOOST_TEST((h.put(chunked_put("b", {{1, 50, 1}, {2, 50, 1}}, h.now_ns)).result_status == status::ok));
    BOOST_TEST((h.put(inline_put("c", "")).result_status == status::store_full));  // objects_max
    BOOST_TEST((h.put(inline_put("a", "yy")).result_status == status::ok));        // overwrite still ok
    // chunks_max = 3: a fourth and fifth distinct digest do not fit, a third does.
    BOOST_TEST((h.put(chunked_put("a", {{3, 1, 1}, {4, 1, 1}}, h.now_ns)).result_status == status::store_full));
    BOOST_TEST((h.put(chunked_put("a", {{3, 1, 1}, {3, 1, 1}}, h.now_ns)).result_status == status::ok));
    BOOST_TEST(h.machine.chunk_count() == 3u);
    BOOST_TEST((h.put(chunked_put("a", {{1, 50, 1}}, h.now_ns)).result_status == status::ok));  // reuses 1
    BOOST_TEST(h.machine.chunk_count() == 2u);
}

BOOST_AUTO_TEST_CASE(size_conflict_with_the_index_is_invalid) {
    harness h;
    h.put(chunked_put("a", {{1, 10, 1}}, h.now_ns));
    const bytes before = h.snapshot();
    BOOST_TEST((h.put(chunked_put("b", {{1, 11, 1}}, h.now_ns)).result_status == status::invalid));
    BOOST_TEST((h.snapshot() == before));
}

BOOST_AUTO_TEST_CASE(malformed_operations_answer_invalid) {
    harness h;
    h.put(inline_put("k", "v"));
    const bytes before = h.snapshot();
    for (const bytes& op : {bytes{}, bytes{0}, bytes{12}, bytes{0xFF, 1, 2}, bytes{5, 0}, bytes{2, 0, 0}}) {
        BOOST_TEST(h.run_bytes(op) == bytes{static_cast<std::uint8_t>(status::invalid)},
                   boost::test_tools::per_element());
    }
    BOOST_TEST((h.snapshot() == before));
}

BOOST_AUTO_TEST_CASE(largest_object_result_fits) {
    harness h;
    auto op = chunked_put(std::string(key_size_max, 'k'), {}, h.now_ns);
    for (std::uint32_t i = 0; i < h.machine.options().chunks_per_object_max; ++i) {
        op.chunks.push_back({sha_of(static_cast<std::uint8_t>(i)), 1, 0xFFFF});
        op.size += 1;
    }
    op.content_type = std::string(content_type_size_max, 't');
    for (char c = 'a'; c <= 'z'; ++c) op.user_metadata.push_back({std::string(1, c), std::string(70, 'v')});
    BOOST_TEST(encode(op).size() <= vsr::config{}.operation_size_max());
    BOOST_TEST((h.put(op).result_status == status::ok));
    const bytes raw = h.run(get_object_operation{op.key});  // run() checks result_size_max
    BOOST_TEST(decode_object_result(raw)->chunks.size() == op.chunks.size());
    op.chunks.push_back({sha_of(1), 1, 1});
    op.size += 1;
    BOOST_TEST((h.put(op).result_status == status::too_large));
    BOOST_TEST(h.machine.result_size_max() <= vsr::config{}.operation_size_max());
}

// ---- snapshot and restore -------------------------------------------------------------------

namespace {

void populate(harness& h) {
    h.put(inline_put("inline", "abc"));
    h.put(chunked_put("big", {{1, 10, 0b01}, {2, 20, 0b10}, {1, 10, 0b01}}, h.now_ns));
    h.put(chunked_put("shared", {{2, 20, 0b100}}, h.now_ns));
}

}  // namespace

BOOST_AUTO_TEST_CASE(snapshot_round_trip) {
    harness h;
    populate(h);
    const bytes snapshot = h.snapshot();
    harness copy;
    copy.put(inline_put("replaced", "zzz"));
    BOOST_TEST_REQUIRE(copy.machine.restore(snapshot));
    BOOST_TEST((copy.snapshot() == snapshot));
    BOOST_TEST((copy.get("big") == h.get("big")));
    BOOST_TEST((copy.get("replaced").result_status == status::not_found));
    BOOST_TEST((copy.stats() == h.stats()));
    // The version counter is restored: the next put gets the same version on both.
    BOOST_TEST(copy.put(inline_put("n", "")).version == h.put(inline_put("n", "")).version);
    // An empty machine round-trips too.
    harness empty;
    BOOST_TEST(copy.machine.restore(empty.snapshot()));
    BOOST_TEST(copy.machine.object_count() == 0u);
}

BOOST_AUTO_TEST_CASE(restore_rejects_inconsistent_snapshots) {
    harness h;
    populate(h);
    const bytes good = h.snapshot();
    harness target;
    target.put(inline_put("mine", "x"));
    const bytes before = target.snapshot();
    auto rejected = [&](bytes b) {
        const bool ok = target.machine.restore(b);
        return !ok && target.snapshot() == before;
    };
    // The chunk index is last: per chunk sha256 | u32 size | u64 refcount | u16 holders.
    const std::size_t last = good.size() - chunk_info_encoded_size;
    bytes b = good;
    b[last + 32 + 4] += 1;  // refcount off by one
    BOOST_TEST(rejected(b));
    b = good;
    b[good.size() - 2] = 0;  // holders empty
    b[good.size() - 1] = 0;
    BOOST_TEST(rejected(b));
    b = good;
    b[last + 32] += 1;  // size differs from the objects' lists
    BOOST_TEST(rejected(b));
    b = good;
    b[0] ^= 1;  // magic
    BOOST_TEST(rejected(b));
    b = good;
    b.push_back(0);  // trailing
    BOOST_TEST(rejected(b));
    // Limits: a machine with smaller options refuses a snapshot that exceeds them.
    metadata_options small;
    small.objects_max = 2;
    metadata_state_machine strict(small);
    BOOST_TEST(!strict.restore(good));
    small.objects_max = 3;
    small.chunks_max = 1;
    metadata_state_machine strict_chunks(small);
    BOOST_TEST(!strict_chunks.restore(good));
}

BOOST_AUTO_TEST_CASE(restore_survives_every_corruption) {
    harness h;
    h.put(inline_put("i", "ab"));
    h.put(chunked_put("c", {{1, 3, 1}, {1, 3, 1}}, h.now_ns));
    const bytes good = h.snapshot();
    BOOST_TEST_MESSAGE("snapshot bytes: " << good.size());
    harness target;
    target.put(inline_put("mine", "x"));
    const bytes before = target.snapshot();
    std::size_t accepted = 0;
    for (std::size_t i = 0; i < good.size(); ++i) {
        for (const std::uint8_t mask : {std::uint8_t{0x01}, std::uint8_t{0x80}, std::uint8_t{0xFF}}) {
            bytes b = good;
            b[i] ^= mask;
            if (target.machine.restore(b)) {
                ++accepted;  // a valid state: canonical, so it re-snapshots to the same bytes
                BOOST_TEST_REQUIRE((target.snapshot() == b));
                BOOST_TEST_REQUIRE(target.machine.restore(before));
            } else {
                BOOST_TEST_REQUIRE((target.snapshot() == before));
            }
        }
    }
    BOOST_TEST(accepted > 0u);  // e.g. timestamps and digests may take any value
    for (std::size_t size = 0; size < good.size(); ++size) {
        BOOST_TEST_REQUIRE(!target.machine.restore(std::span(good.data(), size)));
    }
    BOOST_TEST((target.snapshot() == before));
}

// ---- fuzz and determinism -------------------------------------------------------------------

namespace {

/// A random well-formed operation over a small key and digest space, so they collide often.
operation random_operation(vsr::xoshiro256& random, std::uint64_t now_ns) {
    auto pick = [&](std::uint64_t n) { return vsr::uniform_below(random, n); };
    const std::string key = numbered_key(pick(6));
    switch (pick(10)) {
        case 0:
        case 1: {
            if (pick(3) == 0) return inline_put(key, std::string(pick(6), 'x'), static_cast<std::uint8_t>(pick(3)));
            std::vector<std::tuple<std::uint8_t, std::uint32_t, node_set>> chunks;
            for (std::uint64_t i = 0, n = 1 + pick(4); i < n; ++i) {
                const auto digest = static_cast<std::uint8_t>(pick(8));
                chunks.emplace_back(digest, digest + 1u, static_cast<node_set>(1u << pick(4)));
            }
            auto op = chunked_put(key, chunks, now_ns - pick(2) * 2 * hour_ns, static_cast<std::uint8_t>(pick(3)));
            op.put_condition = {static_cast<condition_kind>(pick(4)), md5_of(static_cast<std::uint8_t>(pick(3)))};
            return op;
        }
        case 2: return get_object_operation{key};
        case 3:
            return delete_object_operation{
                key, {static_cast<condition_kind>(pick(2)), md5_of(static_cast<std::uint8_t>(pick(3)))}};
        case 4:
            return list_objects_operation{pick(2) ? "k" : "", pick(2) ? "k2" : "",
                                          static_cast<std::uint16_t>(1 + pick(4))};
        case 5:
            return add_holder_operation{sha_of(static_cast<std::uint8_t>(pick(8))), static_cast<std::uint8_t>(pick(16)),
                                        now_ns};
        case 6:
            return remove_holder_operation{sha_of(static_cast<std::uint8_t>(pick(8))),
                                           static_cast<std::uint8_t>(pick(4))};
        case 7:
            return list_chunks_operation{
                pick(2) ? std::optional(sha_of(static_cast<std::uint8_t>(pick(8)))) : std::nullopt,
                static_cast<std::uint16_t>(1 + pick(5))};
        case 8:
            return chunks_held_operation{static_cast<std::uint8_t>(pick(4)),
                                         {sha_of(static_cast<std::uint8_t>(pick(8)))}};
        default: return pick(2) ? operation(stats_operation{}) : operation(head_object_operation{key});
    }
}

/// The result decoder matching an operation must accept what the machine answered.
bool result_decodes(const operation& op, const bytes& result) {
    return std::visit(
        [&](const auto& o) -> bool {
            using T = std::decay_t<decltype(o)>;
            if constexpr (std::is_same_v<T, put_object_operation>)
                return decode_put_object_result(result).has_value();
            else if constexpr (std::is_same_v<T, get_object_operation> || std::is_same_v<T, head_object_operation>)
                return decode_object_result(result).has_value();
            else if constexpr (std::is_same_v<T, list_objects_operation>)
                return decode_list_objects_result(result).has_value();
            else if constexpr (std::is_same_v<T, clock_operation>)
                return decode_clock_result(result).has_value();
            else if constexpr (std::is_same_v<T, list_chunks_operation>)
                return decode_list_chunks_result(result).has_value();
            else if constexpr (std::is_same_v<T, chunks_held_operation>)
                return decode_chunks_held_result(result).has_value();
            else if constexpr (std::is_same_v<T, stats_operation>)
                return decode_stats_result(result).has_value();
            else
                return decode_status_result(result).has_value();
        },
        op);
}

}  // namespace

BOOST_AUTO_TEST_CASE(random_bytes_never_crash_and_never_change_state_on_error) {
    harness h;
    vsr::xoshiro256 random(20240611);
    bytes state = h.snapshot();
    std::size_t oks = 0;
    for (int i = 0; i < 100'000; ++i) {
        bytes op;
        if (i % 2 == 0) {  // random bytes, first byte biased towards real opcodes
            op.resize(vsr::uniform_below(random, 80));
            for (auto& b : op) b = static_cast<std::uint8_t>(random.next_u64());
            if (!op.empty() && vsr::chance(random, 3, 4))
                op[0] = static_cast<std::uint8_t>(vsr::uniform_below(random, 13));
        } else {  // a valid operation with a byte or two changed (or not)
            op = encode(random_operation(random, h.now_ns + second_ns));
            for (std::uint64_t n = vsr::uniform_below(random, 3); n > 0; --n) {
                op[vsr::uniform_below(random, op.size())] = static_cast<std::uint8_t>(random.next_u64());
            }
        }
        const bytes result = h.run_bytes(op);
        if (const auto decoded = decode_operation(op)) {
            BOOST_TEST_REQUIRE(result_decodes(*decoded, result));
        } else {
            BOOST_TEST_REQUIRE((result == bytes{static_cast<std::uint8_t>(status::invalid)}));
        }
        if (result[0] != static_cast<std::uint8_t>(status::ok)) {
            BOOST_TEST_REQUIRE((h.snapshot() == state));
        } else {
            ++oks;
            state = h.snapshot();
        }
    }
    BOOST_TEST(oks > 10'000u);
    metadata_state_machine check;
    BOOST_TEST(check.restore(h.snapshot()));  // the state reached is self-consistent
}

BOOST_AUTO_TEST_CASE(same_operations_same_state) {
    harness a, b;
    vsr::xoshiro256 random(7);
    for (int i = 0; i < 5000; ++i) {
        const bytes op = encode(random_operation(random, a.now_ns + second_ns));
        BOOST_TEST_REQUIRE((a.run_bytes(op) == b.run_bytes(op)));
    }
    BOOST_TEST((a.snapshot() == b.snapshot()));
    BOOST_TEST(a.machine.object_count() > 0u);
    BOOST_TEST(a.machine.chunk_count() > 0u);
    // A third machine restored from a's snapshot continues identically.
    harness c;
    BOOST_TEST_REQUIRE(c.machine.restore(a.snapshot()));
    c.now_ns = a.now_ns;
    c.op_number = a.op_number;
    for (int i = 0; i < 1000; ++i) {
        const bytes op = encode(random_operation(random, a.now_ns + second_ns));
        BOOST_TEST_REQUIRE((a.run_bytes(op) == c.run_bytes(op)));
    }
    BOOST_TEST((a.snapshot() == c.snapshot()));
}
