#define BOOST_TEST_MODULE kv_state_machine
// The header under test comes first: proves it is self-contained.
#include "kv_state_machine.hpp"

#ifndef BOOST_TEST_DYN_LINK  // meson's boost dependency may define it already
#define BOOST_TEST_DYN_LINK
#endif
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <iterator>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "../vsr/test_cluster.hpp"  // the KV operation helpers
#include "vsr/random.hpp"

// Lets BOOST_TEST print these enums when an assertion fails (found by ADL).
namespace kv {
inline std::ostream& boost_test_print_type(std::ostream& os, status v) { return os << static_cast<int>(v); }
inline std::ostream& boost_test_print_type(std::ostream& os, kind v) { return os << static_cast<int>(v); }
}  // namespace kv

namespace {

using test_support::bytes;
using test_support::kv_op;

struct outcome {
    kv::status status = kv::status::invalid;
    std::string value;
};

outcome run(kv::state_machine& machine, std::span<const std::uint8_t> operation) {
    bytes out;
    machine.execute(vsr::operation_context{}, operation, out);
    BOOST_TEST_REQUIRE(!out.empty());
    const kv::result r = kv::decode_result(out);
    return {r.result_status, std::string(r.value)};
}

kv::status put(kv::state_machine& m, std::string_view key, std::string_view value) {
    return run(m, kv_op(kv::kind::put, key, value)).status;
}

bytes snapshot_of(const kv::state_machine& m) {
    bytes out;
    m.snapshot(out);
    return out;
}

bool decodes(const bytes& operation) { return kv::decode_operation(operation).has_value(); }

}  // namespace

BOOST_AUTO_TEST_CASE(put_then_get) {
    kv::state_machine m;
    BOOST_TEST((put(m, "k", "v1") == kv::status::ok));
    const outcome got = run(m, kv_op(kv::kind::get, "k"));
    BOOST_TEST((got.status == kv::status::ok));
    BOOST_TEST(got.value == "v1");
    BOOST_TEST(m.size() == 1u);
    BOOST_TEST(m.find("k").value_or("<none>") == "v1");
}

BOOST_AUTO_TEST_CASE(put_overwrites) {
    kv::state_machine m;
    put(m, "k", "v1");
    BOOST_TEST((put(m, "k", "v2") == kv::status::ok));
    BOOST_TEST(run(m, kv_op(kv::kind::get, "k")).value == "v2");
    BOOST_TEST(m.size() == 1u);
}

BOOST_AUTO_TEST_CASE(empty_value_is_a_value) {
    kv::state_machine m;
    put(m, "k", "");
    const outcome got = run(m, kv_op(kv::kind::get, "k"));
    BOOST_TEST((got.status == kv::status::ok));
    BOOST_TEST(got.value.empty());
}

BOOST_AUTO_TEST_CASE(get_missing_is_not_found) {
    kv::state_machine m;
    const outcome got = run(m, kv_op(kv::kind::get, "nope"));
    BOOST_TEST((got.status == kv::status::not_found));
    BOOST_TEST(got.value.empty());
    BOOST_TEST(!m.find("nope").has_value());
}

BOOST_AUTO_TEST_CASE(del_semantics) {
    kv::state_machine m;
    BOOST_TEST((run(m, kv_op(kv::kind::del, "k")).status == kv::status::not_found));
    put(m, "k", "v");
    put(m, "other", "w");
    BOOST_TEST((run(m, kv_op(kv::kind::del, "k")).status == kv::status::ok));
    BOOST_TEST((run(m, kv_op(kv::kind::get, "k")).status == kv::status::not_found));
    BOOST_TEST((run(m, kv_op(kv::kind::del, "k")).status == kv::status::not_found));
    BOOST_TEST(m.find("other").value_or("") == "w");  // only the named key
    BOOST_TEST(m.size() == 1u);
}

BOOST_AUTO_TEST_CASE(cas_semantics) {
    kv::state_machine m;
    // Missing key: mismatch, and nothing is created.
    BOOST_TEST((run(m, kv_op(kv::kind::cas, "k", "new", "")).status == kv::status::mismatch));
    BOOST_TEST(!m.find("k").has_value());

    put(m, "k", "old");
    BOOST_TEST((run(m, kv_op(kv::kind::cas, "k", "new", "wrong")).status == kv::status::mismatch));
    BOOST_TEST(m.find("k").value_or("") == "old");  // unchanged on mismatch

    BOOST_TEST((run(m, kv_op(kv::kind::cas, "k", "new", "old")).status == kv::status::ok));
    BOOST_TEST(m.find("k").value_or("") == "new");

    // The same cas again now fails: it is not idempotent (what deduplication relies on).
    BOOST_TEST((run(m, kv_op(kv::kind::cas, "k", "new", "old")).status == kv::status::mismatch));

    // Comparing against an empty value works.
    put(m, "e", "");
    BOOST_TEST((run(m, kv_op(kv::kind::cas, "e", "filled", "")).status == kv::status::ok));
    BOOST_TEST(m.find("e").value_or("") == "filled");
}

BOOST_AUTO_TEST_CASE(binary_keys_and_values) {
    kv::state_machine m;
    const std::string key("a\0b", 3);
    const std::string value("\0\xff\0", 3);
    put(m, key, value);
    BOOST_TEST(run(m, kv_op(kv::kind::get, key)).value == value);
    BOOST_TEST(!m.find("a").has_value());  // not truncated at the NUL
}

BOOST_AUTO_TEST_CASE(operation_layout) {
    // u8 kind | u16 key_size | u32 value_size | u32 expected_size | key | value | expected
    const bytes op = kv_op(kv::kind::cas, "ab", "xyz", "q");
    const bytes expected{4, 2, 0, 3, 0, 0, 0, 1, 0, 0, 0, 'a', 'b', 'x', 'y', 'z', 'q'};
    BOOST_TEST(op == expected, boost::test_tools::per_element());
    const auto decoded = kv::decode_operation(op);
    BOOST_TEST_REQUIRE(decoded.has_value());
    BOOST_TEST((decoded->op_kind == kv::kind::cas));
    BOOST_TEST(decoded->key == "ab");
    BOOST_TEST(decoded->value == "xyz");
    BOOST_TEST(decoded->expected == "q");
}

BOOST_AUTO_TEST_CASE(decode_accepts_limits) {
    BOOST_TEST(decodes(kv_op(kv::kind::put, std::string(kv::key_size_max, 'k'), std::string(kv::value_size_max, 'v'))));
    BOOST_TEST(decodes(kv_op(kv::kind::get, "k")));
    BOOST_TEST(decodes(kv_op(kv::kind::del, "k")));
    BOOST_TEST(decodes(kv_op(kv::kind::cas, "k", "", "")));
}

BOOST_AUTO_TEST_CASE(decode_rejects_empty_key) {
    BOOST_TEST(!decodes(kv_op(kv::kind::put, "", "v")));
    BOOST_TEST(!decodes(kv_op(kv::kind::get, "")));
}

BOOST_AUTO_TEST_CASE(decode_rejects_key_too_long) {
    BOOST_TEST(!decodes(kv_op(kv::kind::get, std::string(kv::key_size_max + 1, 'k'))));
}

BOOST_AUTO_TEST_CASE(decode_rejects_value_too_long) {
    BOOST_TEST(!decodes(kv_op(kv::kind::put, "k", std::string(kv::value_size_max + 1, 'v'))));
    BOOST_TEST(!decodes(kv_op(kv::kind::cas, "k", "v", std::string(kv::value_size_max + 1, 'e'))));
}

BOOST_AUTO_TEST_CASE(decode_rejects_size_mismatch) {
    const bytes good = kv_op(kv::kind::put, "key", "value");
    bytes longer = good;
    longer.push_back(0);
    BOOST_TEST(!decodes(longer));
    bytes shorter = good;
    shorter.pop_back();
    BOOST_TEST(!decodes(shorter));
    // Every strict prefix, including ones shorter than the fixed header.
    for (std::size_t size = 0; size < good.size(); ++size) {
        BOOST_TEST_CONTEXT("size " << size) {
            BOOST_TEST(!decodes(bytes(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(size))));
        }
    }
    // Sizes that overflow when added in 32 bits.
    bytes huge = good;
    vsr::store_le32(huge.data() + 3, 0xFFFFFFFFu);
    vsr::store_le32(huge.data() + 7, 0xFFFFFFFFu);
    BOOST_TEST(!decodes(huge));
}

BOOST_AUTO_TEST_CASE(decode_rejects_bad_kind) {
    for (const std::uint8_t kind : {std::uint8_t{0}, std::uint8_t{5}, std::uint8_t{0xFF}}) {
        bytes op = kv_op(kv::kind::get, "k");
        op[0] = kind;
        BOOST_TEST_CONTEXT("kind " << int{kind}) { BOOST_TEST(!decodes(op)); }
    }
}

BOOST_AUTO_TEST_CASE(decode_rejects_fields_the_kind_does_not_take) {
    BOOST_TEST(!decodes(kv_op(kv::kind::get, "k", "value")));
    BOOST_TEST(!decodes(kv_op(kv::kind::del, "k", "value")));
    BOOST_TEST(!decodes(kv_op(kv::kind::get, "k", "", "expected")));
    BOOST_TEST(!decodes(kv_op(kv::kind::del, "k", "", "expected")));
    BOOST_TEST(!decodes(kv_op(kv::kind::put, "k", "v", "expected")));
}

BOOST_AUTO_TEST_CASE(decode_result_rejects_garbage) {
    BOOST_TEST((kv::decode_result({}).result_status == kv::status::invalid));
    const bytes bad{9, 'x'};
    BOOST_TEST((kv::decode_result(bad).result_status == kv::status::invalid));
    const bytes ok{0, 'x'};
    BOOST_TEST(kv::decode_result(ok).value == "x");
}

BOOST_AUTO_TEST_CASE(execute_garbage_is_invalid_and_harmless) {
    kv::state_machine m;
    put(m, "k", "v");
    const bytes before = snapshot_of(m);
    vsr::xoshiro256 random(77);
    for (int i = 0; i < 2000; ++i) {
        bytes garbage(vsr::uniform_below(random, 64));
        for (auto& b : garbage) b = static_cast<std::uint8_t>(random.next_u64());
        if (decodes(garbage)) continue;  // astronomically unlikely; skip rather than guess
        bytes out;
        m.execute(vsr::operation_context{}, garbage, out);
        BOOST_TEST_REQUIRE(out == bytes{static_cast<std::uint8_t>(kv::status::invalid)});
    }
    bytes out;
    m.execute(vsr::operation_context{}, {}, out);
    BOOST_TEST(out == bytes{static_cast<std::uint8_t>(kv::status::invalid)});
    BOOST_TEST(snapshot_of(m) == before);  // state untouched
}

BOOST_AUTO_TEST_CASE(snapshot_restore_round_trip) {
    kv::state_machine a;
    put(a, "alpha", "1");
    put(a, "beta", "");
    put(a, std::string(kv::key_size_max, 'z'), std::string(1000, 'q'));
    const bytes snap = snapshot_of(a);

    kv::state_machine b;
    put(b, "stale", "x");  // replaced, not merged
    BOOST_TEST_REQUIRE(b.restore(snap));
    BOOST_TEST(b.size() == 3u);
    BOOST_TEST(!b.find("stale").has_value());
    BOOST_TEST(b.find("alpha").value_or("") == "1");
    BOOST_TEST(b.find("beta").has_value());
    BOOST_TEST(snapshot_of(b) == snap);
}

BOOST_AUTO_TEST_CASE(restore_empty_snapshot_clears) {
    kv::state_machine empty;
    kv::state_machine m;
    put(m, "k", "v");
    BOOST_TEST(m.restore(snapshot_of(empty)));
    BOOST_TEST(m.size() == 0u);
}

BOOST_AUTO_TEST_CASE(restore_rejects_truncated_and_keeps_state) {
    kv::state_machine source;
    put(source, "alpha", "1");
    put(source, "beta", "22");
    const bytes snap = snapshot_of(source);

    kv::state_machine target;
    put(target, "mine", "keep");
    const bytes before = snapshot_of(target);
    for (std::size_t size = 0; size < snap.size(); ++size) {
        BOOST_TEST_CONTEXT("size " << size) { BOOST_TEST(!target.restore(std::span(snap).first(size))); }
    }
    BOOST_TEST(snapshot_of(target) == before);
}

BOOST_AUTO_TEST_CASE(restore_rejects_malformed) {
    kv::state_machine source;
    put(source, "alpha", "1");
    const bytes snap = snapshot_of(source);  // u64 count | u32 key size | u32 value size | key | value

    kv::state_machine target;
    put(target, "mine", "keep");
    const bytes before = snapshot_of(target);

    bytes trailing = snap;
    trailing.push_back(0);
    BOOST_TEST(!target.restore(trailing));

    bytes huge_count = snap;
    vsr::store_le64(huge_count.data(), 0xFFFFFFFFFFFFFFFFULL);
    BOOST_TEST(!target.restore(huge_count));

    bytes empty_key(8 + 8, 0);
    vsr::store_le64(empty_key.data(), 1);
    BOOST_TEST(!target.restore(empty_key));

    bytes long_key;
    vsr::byte_writer w(long_key);
    w.u64(1);
    w.u32(static_cast<std::uint32_t>(kv::key_size_max + 1));
    w.u32(0);
    w.bytes(bytes(kv::key_size_max + 1, 'k'));
    BOOST_TEST(!target.restore(long_key));

    // The same key twice: the count would not match the map.
    bytes duplicate;
    vsr::byte_writer d(duplicate);
    d.u64(2);
    for (int i = 0; i < 2; ++i) {
        d.u32(1);
        d.u32(0);
        d.u8('k');
    }
    BOOST_TEST(!target.restore(duplicate));

    // Random bytes: a random u64 count is essentially never plausible, so all are refused.
    vsr::xoshiro256 random(5);
    for (int i = 0; i < 500; ++i) {
        bytes garbage(8 + vsr::uniform_below(random, 40));
        for (auto& b : garbage) b = static_cast<std::uint8_t>(random.next_u64());
        BOOST_TEST_REQUIRE(!target.restore(garbage));
    }
    BOOST_TEST(snapshot_of(target) == before);
}

BOOST_AUTO_TEST_CASE(snapshot_is_independent_of_insertion_order) {
    kv::state_machine a;
    kv::state_machine b;
    const char* keys[] = {"m", "a", "zz", "b", "aa", "q"};
    for (const char* k : keys) put(a, k, k);
    for (auto it = std::rbegin(keys); it != std::rend(keys); ++it) put(b, *it, *it);
    // Extra churn in b that cancels out.
    put(b, "tmp", "x");
    run(b, kv_op(kv::kind::del, "tmp"));
    BOOST_TEST(snapshot_of(a) == snapshot_of(b), boost::test_tools::per_element());

    put(b, "m", "different");
    BOOST_TEST(snapshot_of(a) != snapshot_of(b));
}

BOOST_AUTO_TEST_CASE(result_size_bound) {
    const kv::state_machine m;
    BOOST_TEST(m.result_size_max() == 1 + kv::value_size_max);
}

// ---- incremental snapshots (copy-on-write) ----

namespace {

/// "k" followed by the number (built in two steps: GCC 12 warns falsely on "k" + to_string).
std::string key_of(std::uint64_t i) {
    std::string key = "k";
    key += std::to_string(i);
    return key;
}

/// Runs one random put, delete or compare-and-set on keys drawn from `keys` of them.
void random_change(kv::state_machine& m, vsr::xoshiro256& random, std::uint64_t keys) {
    const std::string key = key_of(vsr::uniform_below(random, keys));
    const std::string value(vsr::uniform_below(random, 40), static_cast<char>('a' + vsr::uniform_below(random, 26)));
    switch (vsr::uniform_below(random, 4)) {
        case 0: run(m, kv_op(kv::kind::del, key)); break;
        case 1: {
            const auto current = m.find(key);
            run(m, kv_op(kv::kind::cas, key, value, current ? std::string(*current) : std::string("x")));
            break;
        }
        default: put(m, key, value); break;
    }
}

}  // namespace

// The steps append exactly what snapshot() would have at snapshot_begin(), whatever changes the
// state meanwhile: overwrites, deletes, new keys, and enough inserts to grow the table.
BOOST_AUTO_TEST_CASE(incremental_snapshot_equals_snapshot_at_begin) {
    std::size_t total_steps = 0;
    for (std::uint64_t seed = 1; seed <= 40; ++seed) {
        vsr::xoshiro256 random(seed);
        kv::state_machine m;
        const std::uint64_t keys = 1 + vsr::uniform_below(random, 3000);
        for (std::uint64_t i = vsr::uniform_below(random, 4000); i > 0; --i) random_change(m, random, keys);
        const bytes expected = snapshot_of(m);
        m.snapshot_begin();
        bytes built;
        const std::size_t step = 1 + vsr::uniform_below(random, 4096);
        std::size_t steps = 0;
        while (!m.snapshot_step(built, step)) {
            ++steps;
            for (std::uint64_t i = vsr::uniform_below(random, 200); i > 0; --i) random_change(m, random, keys * 2);
        }
        BOOST_TEST_REQUIRE(built == expected, "seed " << seed);
        BOOST_TEST(m.snapshot_saved_keys() == 0u);  // released once the snapshot is complete
        kv::state_machine restored;
        BOOST_TEST(restored.restore(built));
        BOOST_TEST(snapshot_of(restored) == expected);
        // It really was taken in parts, with changes in between: a table of more than 256 slots
        // (over 224 entries) spans several intervals.
        if (m.size() > 300 && expected.size() > 3 * step) BOOST_TEST(steps >= 1u, "seed " << seed);
        total_steps += steps;
    }
    BOOST_TEST(total_steps > 50u);
}

// Copy-on-write keeps only what the snapshot still needs: a key it already appended is not saved.
BOOST_AUTO_TEST_CASE(incremental_snapshot_saves_only_keys_not_yet_appended) {
    kv::state_machine m;
    for (int i = 0; i < 20000; ++i) put(m, key_of(static_cast<std::uint64_t>(i)), "v");
    m.snapshot_begin();
    bytes built;
    BOOST_TEST(!m.snapshot_step(built, 1));  // one interval of the hash space
    std::size_t appended = 0, saved_expected = 0;
    for (int i = 0; i < 20000; ++i) {
        const std::string key = key_of(static_cast<std::uint64_t>(i));
        const bool in_image =
            std::string_view(reinterpret_cast<const char*>(built.data()), built.size()).find(key + std::string("v")) !=
            std::string_view::npos;
        appended += in_image;
        saved_expected += !in_image;
        put(m, key, "changed");
    }
    BOOST_TEST(appended > 0u);
    BOOST_TEST(m.snapshot_saved_keys() == saved_expected);
    while (!m.snapshot_step(built, 1 << 20)) {}
    kv::state_machine restored;
    BOOST_TEST_REQUIRE(restored.restore(built));
    BOOST_TEST(restored.size() == 20000u);
    BOOST_TEST(*restored.find("k7") == "v");  // the version at snapshot_begin()
}

// restore() abandons a snapshot in progress; a new snapshot_begin() starts over.
BOOST_AUTO_TEST_CASE(restore_abandons_incremental_snapshot) {
    kv::state_machine m;
    for (int i = 0; i < 5000; ++i) put(m, key_of(static_cast<std::uint64_t>(i)), "v");
    m.snapshot_begin();
    bytes built;
    BOOST_TEST(!m.snapshot_step(built, 1));
    put(m, "k1", "w");
    kv::state_machine small;
    put(small, "only", "one");
    BOOST_TEST(m.restore(snapshot_of(small)));
    BOOST_TEST(m.snapshot_saved_keys() == 0u);
    m.snapshot_begin();
    bytes again;
    while (!m.snapshot_step(again, 1)) {}
    BOOST_TEST(again == snapshot_of(small));
}
