#define BOOST_TEST_MODULE metadata_store
// The store under the metadata state machine (SQLite over a metadata_disk, through the VFS of
// sqlite_vfs.hpp): incremental snapshots, the running digest, page checksums, disk failures and
// the bytes of the files. The operations themselves are covered by metadata_state_machine_test.
// The header under test comes first: proves it is self-contained.
#include "toastyfs/metadata_state_machine.hpp"

#ifndef BOOST_TEST_DYN_LINK  // meson's boost dependency may define it already
#define BOOST_TEST_DYN_LINK
#endif
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <ostream>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "vsr/bytes.hpp"
#include "vsr/random.hpp"

namespace toastyfs {
inline std::ostream& boost_test_print_type(std::ostream& os, status v) { return os << to_string(v); }
inline std::ostream& boost_test_print_type(std::ostream& os, metadata_io v) { return os << static_cast<int>(v); }
}  // namespace toastyfs

namespace {

using namespace toastyfs;
using bytes = std::vector<std::uint8_t>;

constexpr std::uint64_t second_ns = 1'000'000'000;
constexpr std::uint64_t hour_ns = 3600 * second_ns;
constexpr std::uint64_t page_size = 4096;  // the store's (open_fresh sets it)
constexpr const char* database_name = "metadata.db";
constexpr const char* wal_name = "metadata.db-wal";

// ---- a disk with raw access and fault switches ----------------------------------------------

/// memory_metadata_disk behind switches that make its files fail, with access to the raw bytes
/// of every file (through the disk's own interface: its files share their bytes).
class test_disk final : public metadata_disk {
public:
    metadata_io write_fault = metadata_io::ok;  // write() and truncate() answer this when not ok
    metadata_io read_fault = metadata_io::ok;
    metadata_io sync_fault = metadata_io::ok;
    std::uint64_t faults_injected = 0;

    std::unique_ptr<metadata_file> open(std::string_view name, bool create, metadata_io& status) override {
        auto inner = memory_.open(name, create, status);
        if (inner == nullptr) return nullptr;
        return std::make_unique<file>(*this, std::move(inner));
    }
    metadata_io remove(std::string_view name) override { return memory_.remove(name); }
    metadata_io rename(std::string_view from, std::string_view to) override { return memory_.rename(from, to); }
    bool exists(std::string_view name) override { return memory_.exists(name); }

    /// Every byte of a file; empty when it does not exist.
    bytes contents(std::string_view name) {
        metadata_io status = metadata_io::ok;
        const auto f = memory_.open(name, false, status);
        if (f == nullptr) return {};
        std::uint64_t size = 0;
        BOOST_TEST_REQUIRE((f->size(size) == metadata_io::ok));
        bytes out(size);
        std::size_t read = 0;
        BOOST_TEST_REQUIRE((f->read(0, out, read) == metadata_io::ok));
        BOOST_TEST_REQUIRE(read == size);
        return out;
    }
    /// XORs one byte of a file in place, behind SQLite's back.
    void flip(std::string_view name, std::uint64_t offset, std::uint8_t mask) {
        metadata_io status = metadata_io::ok;
        const auto f = memory_.open(name, false, status);
        BOOST_TEST_REQUIRE((f != nullptr));
        std::uint8_t byte = 0;
        std::size_t read = 0;
        BOOST_TEST_REQUIRE((f->read(offset, std::span(&byte, 1), read) == metadata_io::ok));
        BOOST_TEST_REQUIRE(read == 1u);
        byte ^= mask;
        BOOST_TEST_REQUIRE((f->write(offset, std::span<const std::uint8_t>(&byte, 1)) == metadata_io::ok));
    }

private:
    class file final : public metadata_file {
    public:
        file(test_disk& disk, std::unique_ptr<metadata_file> inner) : disk_(disk), inner_(std::move(inner)) {}
        metadata_io read(std::uint64_t offset, std::span<std::uint8_t> out, std::size_t& read) override {
            if (disk_.read_fault != metadata_io::ok) return disk_.inject(disk_.read_fault);
            return inner_->read(offset, out, read);
        }
        metadata_io write(std::uint64_t offset, std::span<const std::uint8_t> data) override {
            if (disk_.write_fault != metadata_io::ok) return disk_.inject(disk_.write_fault);
            return inner_->write(offset, data);
        }
        metadata_io truncate(std::uint64_t size) override {
            if (disk_.write_fault != metadata_io::ok) return disk_.inject(disk_.write_fault);
            return inner_->truncate(size);
        }
        metadata_io size(std::uint64_t& out) override { return inner_->size(out); }
        metadata_io sync() override {
            if (disk_.sync_fault != metadata_io::ok) return disk_.inject(disk_.sync_fault);
            return inner_->sync();
        }

    private:
        test_disk& disk_;
        std::unique_ptr<metadata_file> inner_;
    };

    metadata_io inject(metadata_io fault) {
        ++faults_injected;
        return fault;
    }

    memory_metadata_disk memory_;
};

// ---- operations -----------------------------------------------------------------------------

/// A digest per number, in the numbers' order (big-endian first bytes).
sha256_digest chunk_digest(std::uint32_t n) {
    sha256_digest sha{};
    for (std::size_t i = 0; i < sha.size(); ++i) sha[i] = static_cast<std::uint8_t>(0x5A ^ (i * 29));
    sha[0] = static_cast<std::uint8_t>(n >> 24);
    sha[1] = static_cast<std::uint8_t>(n >> 16);
    sha[2] = static_cast<std::uint8_t>(n >> 8);
    sha[3] = static_cast<std::uint8_t>(n);
    return sha;
}
std::uint32_t chunk_size(std::uint32_t n) { return 1000 + n; }

/// Keys in the order of their numbers; every tenth one long, so rows vary in size.
std::string key_of(std::uint64_t n) {
    std::string digits = std::to_string(n);
    std::string key = "obj-";
    key.append(6 - std::min<std::size_t>(6, digits.size()), '0');
    key += digits;
    if (n % 10 == 3) key.append(150 + n % 50, 'x');
    return key;
}

put_object_operation inline_put(std::string key, std::size_t size, std::uint8_t fill) {
    put_object_operation op;
    op.key = std::move(key);
    op.size = size;
    op.md5.fill(fill);
    op.sha256.fill(static_cast<std::uint8_t>(fill + 1));
    op.content_type = "application/octet-stream";
    op.user_metadata = {{"owner", "alice"}};
    op.inline_data.resize(size);
    for (std::size_t i = 0; i < size; ++i) op.inline_data[i] = static_cast<std::uint8_t>(fill + i * 7);
    return op;
}

/// chunks: (digest number, holders); each chunk is chunk_size(number) bytes.
put_object_operation chunked_put(std::string key, const std::vector<std::pair<std::uint32_t, node_set>>& chunks,
                                 std::uint64_t lease_begin_ns, std::uint8_t md5 = 2) {
    put_object_operation op;
    op.key = std::move(key);
    op.md5.fill(md5);
    op.kind = data_kind::chunks;
    op.lease_begin_ns = lease_begin_ns;
    for (const auto& [n, holders] : chunks) {
        op.chunks.push_back({chunk_digest(n), chunk_size(n), holders});
        op.size += chunk_size(n);
    }
    return op;
}

/// A machine over `disk` (its own in memory when null) and a clock that only the test moves.
struct harness {
    explicit harness(metadata_disk* disk = nullptr, metadata_store_options store = {})
        : machine(metadata_options{}, disk, std::move(store)) {}

    bytes run(const operation& op) {
        bytes out;
        ++op_number;
        machine.execute(vsr::operation_context{op_number, 0, now_ns, 1}, encode(op), out);
        BOOST_TEST_REQUIRE(!out.empty());
        return out;
    }
    status status_of(const operation& op) { return static_cast<status>(run(op).at(0)); }
    bytes query(const operation& op) const {
        bytes out;
        machine.query(encode(op), out);
        BOOST_TEST_REQUIRE(!out.empty());
        return out;
    }
    bytes snapshot() const {
        bytes out;
        machine.snapshot(out);
        return out;
    }
    /// Steps the snapshot begun last to its end, calling between(step) after every step that
    /// is not the last. Checks that every step but the last makes progress.
    bytes steps(std::size_t size_hint, const std::function<void(std::size_t)>& between = {},
                std::size_t* step_count = nullptr) {
        bytes all;
        for (std::size_t step = 0;; ++step) {
            BOOST_TEST_REQUIRE(step < 1'000'000u);  // it ends
            const std::size_t before = all.size();
            const bool done = machine.snapshot_step(all, size_hint);
            // "About size_hint bytes or more": a step stops soon after the hint (rows here are
            // well under 1 KiB).
            BOOST_TEST_REQUIRE(all.size() - before < size_hint + 1024);
            if (done) {
                if (step_count != nullptr) *step_count = step + 1;
                return all;
            }
            BOOST_TEST_REQUIRE(all.size() > before);
            if (between) between(step);
        }
    }

    metadata_state_machine machine;
    std::uint64_t op_number = 0;
    std::uint64_t now_ns = 10 * hour_ns;
};

/// `count` objects: two in three inline (0..299 bytes), one in three chunked, drawing 1..4
/// chunks from a pool of 60 so that many objects share chunks.
void fill(harness& h, std::size_t count) {
    for (std::size_t i = 0; i < count; ++i) {
        operation op;
        if (i % 3 == 0) {
            std::vector<std::pair<std::uint32_t, node_set>> chunks;
            for (std::size_t c = 0; c <= i % 4; ++c) {
                chunks.emplace_back(static_cast<std::uint32_t>((i * 7 + c * 13) % 60),
                                    static_cast<node_set>(1u << (i % 5)));
            }
            op = chunked_put(key_of(i), chunks, h.now_ns);
        } else {
            op = inline_put(key_of(i), (i * 37) % 300, static_cast<std::uint8_t>(i));
        }
        BOOST_TEST_REQUIRE((h.status_of(op) == status::ok));
    }
}

/// Overwrites, deletes, new keys and holder changes over the state fill() made, cycling with i.
/// Every one changes the state (answers ok).
void mutate(harness& h, std::size_t i, std::size_t filled) {
    const std::size_t victim = (i * 11) % filled;
    operation op;
    switch (i % 5) {
        case 0: op = inline_put(key_of(100'000 + i), i % 200, static_cast<std::uint8_t>(i + 3)); break;
        case 1: op = chunked_put(key_of(victim), {{static_cast<std::uint32_t>(200 + i), 0b1}}, h.now_ns); break;
        case 2: op = inline_put(key_of(victim), 10 + i % 50, static_cast<std::uint8_t>(i + 9)); break;
        case 3: op = delete_object_operation{key_of(100'000 + i - 3), {}}; break;  // made by case 0
        default: op = add_holder_operation{chunk_digest(static_cast<std::uint32_t>(200 + i - 3)), 15, h.now_ns};
    }
    BOOST_TEST_REQUIRE((h.status_of(op) == status::ok));
}

}  // namespace

// ---- 1. incremental snapshots ---------------------------------------------------------------

BOOST_AUTO_TEST_CASE(incremental_snapshot_equals_snapshot) {
    harness h;
    fill(h, 300);
    BOOST_TEST_REQUIRE(h.machine.chunk_count() > 30u);
    BOOST_TEST_REQUIRE(h.machine.object_count() == 300u);
    for (const std::size_t hint : {std::size_t{1}, std::size_t{7}, std::size_t{100}, std::size_t{1} << 30}) {
        BOOST_TEST_CONTEXT("size hint " << hint) {
            h.machine.snapshot_begin();
            const bytes expected = h.snapshot();
            std::size_t count = 0;
            BOOST_TEST((h.steps(hint, {}, &count) == expected));
            // Taken a row at a time with tiny hints: incremental, not one piece.
            if (hint <= 7) BOOST_TEST(count >= h.machine.object_count() + h.machine.chunk_count());
            // Done stays done: a further step appends nothing.
            bytes more;
            BOOST_TEST(h.machine.snapshot_step(more, hint));
            BOOST_TEST(more.empty());
        }
    }
    BOOST_TEST(!h.machine.failed());
}

BOOST_AUTO_TEST_CASE(incremental_snapshot_of_an_empty_machine) {
    harness h;
    for (const std::size_t hint : {std::size_t{1}, std::size_t{7}, std::size_t{100}}) {
        h.machine.snapshot_begin();
        BOOST_TEST((h.steps(hint) == h.snapshot()), "size hint " << hint);
    }
}

// Whatever the hint, the steps are snapshot(): every hint from 1 to past the whole image, over
// a small state with objects and chunks.
BOOST_AUTO_TEST_CASE(incremental_snapshot_at_every_size_hint) {
    harness h;
    fill(h, 12);
    h.machine.snapshot_begin();
    const bytes expected = h.snapshot();
    BOOST_TEST_REQUIRE(h.machine.chunk_count() > 3u);
    std::vector<std::size_t> wrong;
    for (std::size_t hint = 1; hint <= expected.size() + 1; ++hint) {
        h.machine.snapshot_begin();
        if (h.steps(hint) != expected) wrong.push_back(hint);
    }
    BOOST_TEST(wrong.empty(), wrong.size() << " of " << expected.size() + 1 << " hints give other bytes, the first "
                                           << (wrong.empty() ? 0 : wrong.front()));
}

BOOST_AUTO_TEST_CASE(incremental_snapshot_ignores_operations_after_begin) {
    for (const std::size_t hint : {std::size_t{1}, std::size_t{7}, std::size_t{100}}) {
        BOOST_TEST_CONTEXT("size hint " << hint) {
            harness h;
            fill(h, 300);
            h.machine.snapshot_begin();
            const bytes expected = h.snapshot();
            const std::uint64_t digest_at_begin = h.machine.digest();
            std::size_t mutations = 0;
            const bytes steps = h.steps(hint, [&](std::size_t step) {
                if (step % 2 == 0) mutate(h, mutations++, 300);
            });
            BOOST_TEST(mutations > 50u);
            BOOST_TEST((steps == expected));
            BOOST_TEST((h.snapshot() != expected));  // the later state is another one
            // The steps are a snapshot of the state at begin: it restores, with that digest.
            harness copy;
            BOOST_TEST_REQUIRE(copy.machine.restore(steps));
            BOOST_TEST(copy.machine.digest() == digest_at_begin);
            BOOST_TEST(h.machine.digest() != digest_at_begin);
            BOOST_TEST(!h.machine.failed());
        }
    }
}

// The same with a page cache far smaller than the state: the writer spills its uncommitted pages
// into the WAL while the reader still reads the commit the snapshot began at.
BOOST_AUTO_TEST_CASE(incremental_snapshot_with_a_small_cache) {
    harness h(nullptr, metadata_store_options{.cache_kib = 64});
    for (std::size_t i = 0; i < 3000; ++i) {
        BOOST_TEST_REQUIRE((h.status_of(inline_put(key_of(i), 1000, static_cast<std::uint8_t>(i))) == status::ok));
    }
    h.machine.snapshot_begin();
    const bytes expected = h.snapshot();
    std::size_t overwritten = 0;
    const bytes steps = h.steps(4096, [&](std::size_t step) {
        // Overwrite the keys ahead of the reader and behind it, and add new ones.
        const std::size_t victim = (step * 37) % 3000;
        BOOST_TEST_REQUIRE(
            (h.status_of(inline_put(key_of(victim), 900, static_cast<std::uint8_t>(step + 77))) == status::ok));
        BOOST_TEST_REQUIRE((h.status_of(inline_put(key_of(10'000 + step), 1000, 1)) == status::ok));
        ++overwritten;
    });
    BOOST_TEST(overwritten > 500u);
    BOOST_TEST(h.machine.disk_counters().pages_written > 1000u);  // the cache spilled
    BOOST_TEST((steps == expected));
    BOOST_TEST(!h.machine.failed());
}

BOOST_AUTO_TEST_CASE(abandoned_snapshot_then_a_new_one) {
    harness h;
    fill(h, 300);
    h.machine.snapshot_begin();
    const bytes first = h.snapshot();
    bytes partial;
    for (int i = 0; i < 5; ++i) BOOST_TEST_REQUIRE(!h.machine.snapshot_step(partial, 100));
    h.machine.snapshot_abandon();
    for (std::size_t i = 0; i < 20; ++i) mutate(h, i, 300);
    h.machine.snapshot_begin();
    const bytes second = h.snapshot();
    BOOST_TEST((second != first));
    BOOST_TEST((h.steps(7) == second));

    // Begun again while one is in progress (without abandoning): the new one wins.
    h.machine.snapshot_begin();
    for (int i = 0; i < 3; ++i) BOOST_TEST_REQUIRE(!h.machine.snapshot_step(partial, 100));
    for (std::size_t i = 20; i < 40; ++i) mutate(h, i, 300);
    h.machine.snapshot_begin();
    const bytes third = h.snapshot();
    BOOST_TEST((third != second));
    BOOST_TEST((h.steps(1) == third));

    // A restore abandons one in progress too; the next begins at the restored state.
    h.machine.snapshot_begin();
    BOOST_TEST_REQUIRE(!h.machine.snapshot_step(partial, 100));
    BOOST_TEST_REQUIRE(h.machine.restore(first));
    h.machine.snapshot_begin();
    BOOST_TEST((h.steps(100) == first));
    BOOST_TEST(!h.machine.failed());
}

// ---- 2. the digest --------------------------------------------------------------------------

namespace {

// Two histories that end in the same rows: different holders along the way, an inline and a
// chunked object that come and go, an overwrite, holders added in another order.
void history_a(harness& h) {
    const std::uint64_t t = h.now_ns;
    BOOST_TEST_REQUIRE((h.status_of(inline_put("k1", 5, 1)) == status::ok));                          // v1
    BOOST_TEST_REQUIRE((h.status_of(chunked_put("k2", {{1, 0b001}}, t)) == status::ok));              // v2
    BOOST_TEST_REQUIRE((h.status_of(chunked_put("k3", {{1, 0b010}, {2, 0b001}}, t)) == status::ok));  // v3
    BOOST_TEST_REQUIRE((h.status_of(inline_put("k4", 3, 4)) == status::ok));                          // v4
    BOOST_TEST_REQUIRE((h.status_of(inline_put("k5", 3, 5)) == status::ok));                          // v5
    BOOST_TEST_REQUIRE((h.status_of(add_holder_operation{chunk_digest(1), 3, t}) == status::ok));
    BOOST_TEST_REQUIRE((h.status_of(add_holder_operation{chunk_digest(2), 4, t}) == status::ok));
    BOOST_TEST_REQUIRE((h.status_of(delete_object_operation{"k1", {}}) == status::ok));
    BOOST_TEST_REQUIRE((h.status_of(delete_object_operation{"k4", {}}) == status::ok));
    BOOST_TEST_REQUIRE((h.status_of(delete_object_operation{"k5", {}}) == status::ok));
}
void history_b(harness& h) {
    const std::uint64_t t = h.now_ns;
    BOOST_TEST_REQUIRE((h.status_of(inline_put("k1", 9, 7)) == status::ok));                             // v1
    BOOST_TEST_REQUIRE((h.status_of(chunked_put("k2", {{1, 0b010}}, t)) == status::ok));                 // v2
    BOOST_TEST_REQUIRE((h.status_of(chunked_put("k3", {{1, 0b1000}, {2, 0b10000}}, t)) == status::ok));  // v3
    BOOST_TEST_REQUIRE((h.status_of(chunked_put("k4", {{5, 0b1}}, t)) == status::ok));                   // v4
    BOOST_TEST_REQUIRE((h.status_of(inline_put("k4", 1, 1)) == status::ok));  // v5, overwrite: chunk 5 leaves
    BOOST_TEST_REQUIRE((h.status_of(delete_object_operation{"k4", {}}) == status::ok));
    BOOST_TEST_REQUIRE((h.status_of(delete_object_operation{"k1", {}}) == status::ok));
    BOOST_TEST_REQUIRE((h.status_of(add_holder_operation{chunk_digest(2), 0, t}) == status::ok));
    BOOST_TEST_REQUIRE((h.status_of(add_holder_operation{chunk_digest(1), 0, t}) == status::ok));
}

/// The digest of the state `h` is in, computed from scratch (restore() recomputes every total).
std::uint64_t recomputed_digest(const harness& h) {
    metadata_state_machine fresh;
    BOOST_TEST_REQUIRE(fresh.restore(h.snapshot()));
    return fresh.digest();
}

}  // namespace

BOOST_AUTO_TEST_CASE(digest_is_equal_for_equal_states_reached_differently) {
    harness a, b;
    history_a(a);
    history_b(b);
    BOOST_TEST_REQUIRE((a.snapshot() == b.snapshot()));    // the same rows...
    BOOST_TEST(a.machine.digest() == b.machine.digest());  // ...the same digest
    BOOST_TEST(a.machine.digest() == recomputed_digest(a));
    // One more change on either side parts them, and the same change on the other joins them.
    BOOST_TEST_REQUIRE((a.status_of(add_holder_operation{chunk_digest(2), 9, a.now_ns}) == status::ok));
    BOOST_TEST(a.machine.digest() != b.machine.digest());
    BOOST_TEST_REQUIRE((b.status_of(add_holder_operation{chunk_digest(2), 9, b.now_ns}) == status::ok));
    BOOST_TEST(a.machine.digest() == b.machine.digest());
    // Committing changes nothing (the digest is of the rows, not of the files).
    const std::uint64_t before = a.machine.digest();
    a.machine.snapshot_begin();
    a.machine.snapshot_abandon();
    BOOST_TEST(a.machine.digest() == before);
}

BOOST_AUTO_TEST_CASE(digest_differs_when_one_row_differs) {
    // Each variant differs from the base state in one thing.
    const auto base = [](harness& h, const std::function<void(put_object_operation&)>& change_a,
                         const std::function<void(harness&)>& after) {
        auto a = inline_put("a", 5, 1);
        if (change_a) change_a(a);
        BOOST_TEST_REQUIRE((h.status_of(a) == status::ok));
        BOOST_TEST_REQUIRE((h.status_of(chunked_put("b", {{1, 0b1}, {2, 0b10}}, h.now_ns)) == status::ok));
        if (after) after(h);
    };
    std::vector<std::pair<std::string, std::function<void(harness&)>>> variants = {
        {"base", [&](harness& h) { base(h, {}, {}); }},
        {"holder",
         [&](harness& h) {
             base(h, {}, [](harness& x) {
                 BOOST_TEST_REQUIRE((x.status_of(add_holder_operation{chunk_digest(1), 9, x.now_ns}) == status::ok));
             });
         }},
        {"data", [&](harness& h) { base(h, [](put_object_operation& op) { op.inline_data[2] ^= 1; }, {}); }},
        {"md5", [&](harness& h) { base(h, [](put_object_operation& op) { op.md5[0] ^= 1; }, {}); }},
        {"content type",
         [&](harness& h) { base(h, [](put_object_operation& op) { op.content_type = "text/x"; }, {}); }},
        {"key", [&](harness& h) { base(h, [](put_object_operation& op) { op.key = "A"; }, {}); }},
        {"timestamp",
         [&](harness& h) {
             h.now_ns += 1;
             base(h, {}, {});
         }},
        {"versions",
         [&](harness& h) {  // b then a: the same objects with each other's version
             BOOST_TEST_REQUIRE((h.status_of(chunked_put("b", {{1, 0b1}, {2, 0b10}}, h.now_ns)) == status::ok));
             BOOST_TEST_REQUIRE((h.status_of(inline_put("a", 5, 1)) == status::ok));
         }},
        {"next version",
         [&](harness& h) {
             base(h, {}, [](harness& x) {
                 BOOST_TEST_REQUIRE((x.status_of(inline_put("z", 1, 1)) == status::ok));
                 BOOST_TEST_REQUIRE((x.status_of(delete_object_operation{"z", {}}) == status::ok));
             });
         }},
    };
    std::vector<std::uint64_t> digests;
    std::vector<bytes> snapshots;
    for (const auto& [name, build] : variants) {
        BOOST_TEST_CONTEXT(name) {
            harness h;
            build(h);
            harness twin;  // built again: the same digest (the control)
            build(twin);
            BOOST_TEST(h.machine.digest() == twin.machine.digest());
            BOOST_TEST(h.machine.digest() == recomputed_digest(h));
            digests.push_back(h.machine.digest());
            snapshots.push_back(h.snapshot());
        }
    }
    for (std::size_t i = 0; i < variants.size(); ++i) {
        for (std::size_t j = i + 1; j < variants.size(); ++j) {
            BOOST_TEST_CONTEXT(variants[i].first << " vs " << variants[j].first) {
                BOOST_TEST_REQUIRE((snapshots[i] != snapshots[j]));  // the states do differ...
                BOOST_TEST(digests[i] != digests[j]);                // ...and so do the digests
            }
        }
    }
}

// Over a random history, the running digest changes exactly when the state does, and always
// equals the digest recomputed from the rows.
BOOST_AUTO_TEST_CASE(digest_follows_the_state) {
    harness h;
    vsr::xoshiro256 random(99);
    const auto pick = [&](std::uint64_t n) { return vsr::uniform_below(random, n); };
    bytes previous = h.snapshot();
    std::uint64_t previous_digest = h.machine.digest();
    std::size_t changes = 0, unchanged = 0;
    for (int i = 0; i < 3000; ++i) {
        h.now_ns += second_ns;
        const std::string key = key_of(pick(40));
        const auto digest = static_cast<std::uint32_t>(pick(30));
        operation op;
        switch (pick(6)) {
            case 0: op = inline_put(key, pick(40), static_cast<std::uint8_t>(pick(4))); break;
            case 1:
                op = chunked_put(key, {{digest, static_cast<node_set>(1u << pick(4))}, {digest / 2, 1}}, h.now_ns);
                break;
            case 2: op = delete_object_operation{key, {}}; break;
            case 3:
                op = add_holder_operation{chunk_digest(digest), static_cast<std::uint8_t>(pick(6)), h.now_ns};
                break;
            case 4: op = remove_holder_operation{chunk_digest(digest), static_cast<std::uint8_t>(pick(6))}; break;
            default: op = get_object_operation{key};
        }
        h.run(op);
        const bytes now = h.snapshot();
        if (now == previous) {
            ++unchanged;
            BOOST_TEST_REQUIRE(h.machine.digest() == previous_digest);
        } else {
            ++changes;
            BOOST_TEST_REQUIRE(h.machine.digest() != previous_digest);
        }
        if (i % 250 == 0) BOOST_TEST_REQUIRE(h.machine.digest() == recomputed_digest(h));
        previous = now;
        previous_digest = h.machine.digest();
    }
    BOOST_TEST(changes > 1000u);
    BOOST_TEST(unchanged > 300u);
    BOOST_TEST(h.machine.digest() == recomputed_digest(h));
}

BOOST_AUTO_TEST_CASE(restore_keeps_the_digest) {
    harness source;
    fill(source, 300);
    for (std::size_t i = 0; i < 40; ++i) mutate(source, i, 300);
    const bytes image = source.snapshot();
    harness target;
    fill(target, 20);
    BOOST_TEST_REQUIRE(target.machine.digest() != source.machine.digest());
    BOOST_TEST_REQUIRE(target.machine.restore(image));
    BOOST_TEST(target.machine.digest() == source.machine.digest());
    BOOST_TEST((target.snapshot() == image));
    // The restored machine goes on like the source: same results, same digest.
    for (std::size_t i = 40; i < 60; ++i) {
        mutate(source, i, 300);
        mutate(target, i, 300);
    }
    BOOST_TEST(target.machine.digest() == source.machine.digest());
    // An empty snapshot gives the empty digest.
    harness empty;
    BOOST_TEST_REQUIRE(target.machine.restore(empty.snapshot()));
    BOOST_TEST(target.machine.digest() == empty.machine.digest());
}

BOOST_AUTO_TEST_CASE(failed_restore_changes_nothing) {
    harness source;
    fill(source, 40);
    const bytes image = source.snapshot();
    harness target;
    fill(target, 7);
    BOOST_TEST_REQUIRE((target.status_of(delete_object_operation{key_of(3), {}}) == status::ok));
    const bytes before = target.snapshot();
    const std::uint64_t digest = target.machine.digest();
    const bytes get_before = target.query(get_object_operation{key_of(1)});
    const bytes stats_before = target.query(stats_operation{});
    const auto unchanged = [&] {
        return target.snapshot() == before && target.machine.digest() == digest &&
               target.query(get_object_operation{key_of(1)}) == get_before &&
               target.query(stats_operation{}) == stats_before && !target.machine.failed();
    };
    // Every truncation is refused, whether it ends in the objects or in the chunk index (after
    // rows were already inserted).
    for (std::size_t size = 0; size < image.size(); ++size) {
        BOOST_TEST_REQUIRE(!target.machine.restore(std::span(image.data(), size)));
        BOOST_TEST_REQUIRE(unchanged(), "truncated to " << size);
    }
    // Altered bytes: refused and nothing changes, or a valid other state (timestamps, digests
    // may take any value), which restores exactly.
    std::size_t refused = 0, accepted = 0;
    for (std::size_t i = 0; i < image.size(); i += 3) {
        bytes altered = image;
        altered[i] ^= 0xFF;
        if (target.machine.restore(altered)) {
            ++accepted;
            BOOST_TEST_REQUIRE((target.snapshot() == altered));
            BOOST_TEST_REQUIRE(target.machine.restore(before));
            BOOST_TEST_REQUIRE(target.machine.digest() == digest);
        } else {
            ++refused;
            BOOST_TEST_REQUIRE(unchanged(), "byte " << i << " altered");
        }
    }
    BOOST_TEST(refused > (image.size() / 3) / 4);  // a quarter of the bytes tried, at least
    BOOST_TEST(accepted > 0u);
    // Named alterations: the refcount of the last chunk, a trailing byte.
    bytes altered = image;
    altered[image.size() - 2 - 8] ^= 1;
    BOOST_TEST(!target.machine.restore(altered));
    altered = image;
    altered.push_back(0);
    BOOST_TEST(!target.machine.restore(altered));
    BOOST_TEST(unchanged());
    // And the original is accepted (the control), with the source's digest.
    BOOST_TEST_REQUIRE(target.machine.restore(image));
    BOOST_TEST(target.machine.digest() == source.machine.digest());
}

// ---- 3. page checksums ----------------------------------------------------------------------

namespace {

constexpr std::size_t big_objects = 4000;
constexpr std::size_t big_object_size = 1000;

/// A machine over a test_disk with a 64 KiB page cache and about 5 MiB of rows, committed.
struct big_store {
    big_store() {
        for (std::size_t i = 0; i < big_objects; ++i) {
            BOOST_TEST_REQUIRE(
                (h.status_of(inline_put(key_of(i), big_object_size, static_cast<std::uint8_t>(i))) == status::ok));
        }
        commit();
    }
    void commit() {
        h.machine.snapshot_begin();  // commits
        h.machine.snapshot_abandon();
        BOOST_TEST_REQUIRE(!h.machine.failed());
    }
    /// get_object of every key in order, until one does not answer ok. How many answered ok.
    std::size_t query_all() {
        for (std::size_t i = 0; i < big_objects; ++i) {
            const bytes answer = h.query(get_object_operation{key_of(i)});
            if (static_cast<status>(answer[0]) != status::ok) return i;
            const auto object = decode_object_result(answer);
            BOOST_TEST_REQUIRE(object.has_value());
            BOOST_TEST_REQUIRE(object->inline_data.size() == big_object_size);
        }
        return big_objects;
    }

    test_disk disk;
    // SQLite copies WAL pages into the database every 1000 pages here, so the flips hit both files.
    harness h{&disk, metadata_store_options{.cache_kib = 64, .wal_copy_pages = 1000}};
};

/// The page number (1-based) of a table b-tree leaf in the middle of the database file.
std::uint64_t middle_leaf_page(const bytes& database) {
    std::vector<std::uint64_t> leaves;
    for (std::uint64_t page = 2; page * page_size <= database.size(); ++page) {
        if (database[(page - 1) * page_size] == 0x0D) leaves.push_back(page);
    }
    BOOST_TEST_REQUIRE(leaves.size() > 100u);
    return leaves[leaves.size() / 2];
}

/// The offset in the WAL of the page image (after the 24-byte frame header) of a table b-tree
/// leaf in the middle of the valid frames, taking each page's last frame (the one reads use).
std::uint64_t middle_leaf_frame(const bytes& wal) {
    constexpr std::uint64_t header = 32, frame_header = 24, frame = frame_header + page_size;
    BOOST_TEST_REQUIRE(wal.size() >= header + frame);
    std::map<std::uint32_t, std::uint64_t> last_frame;  // page number → offset of its page image
    std::uint64_t committed = 0;                        // frames up to the last commit frame
    std::vector<std::pair<std::uint32_t, std::uint64_t>> frames;
    for (std::uint64_t offset = header; offset + frame <= wal.size(); offset += frame) {
        // A frame belongs to this WAL when it carries the header's salts.
        if (!std::equal(wal.begin() + 16, wal.begin() + 24, wal.begin() + static_cast<std::ptrdiff_t>(offset + 8))) {
            break;
        }
        const std::uint32_t page = (std::uint32_t{wal[offset]} << 24) | (std::uint32_t{wal[offset + 1]} << 16) |
                                   (std::uint32_t{wal[offset + 2]} << 8) | wal[offset + 3];
        frames.emplace_back(page, offset + frame_header);
        const bool commit =
            wal[offset + 4] != 0 || wal[offset + 5] != 0 || wal[offset + 6] != 0 || wal[offset + 7] != 0;
        if (commit) committed = frames.size();
    }
    for (std::size_t i = 0; i < committed; ++i) last_frame[frames[i].first] = frames[i].second;
    std::vector<std::uint64_t> leaves;
    for (const auto& [page, offset] : last_frame) {
        if (page != 1 && wal[offset] == 0x0D) leaves.push_back(offset);
    }
    BOOST_TEST_MESSAGE("WAL: " << committed << " committed frames, " << leaves.size() << " table leaves");
    BOOST_TEST_REQUIRE(leaves.size() > 10u);
    return leaves[leaves.size() / 2];
}

/// What SQLite says (sqlite3_errmsg) when the disk answers `fault` to a write.
std::string_view sqlite_error_of(metadata_io fault) {
    return fault == metadata_io::no_space ? "database or disk is full" : "disk I/O error";
}

/// The machine noticed: failed, says why, counted it, and answers invalid from then on.
void expect_failed_for_good(harness& h) {
    BOOST_TEST(h.machine.failed());
    BOOST_TEST(!h.machine.failure().empty());
    BOOST_TEST_MESSAGE("failure: " << h.machine.failure());
    BOOST_TEST((static_cast<status>(h.query(get_object_operation{key_of(0)}).at(0)) == status::invalid));
    BOOST_TEST((static_cast<status>(h.run(get_object_operation{key_of(0)}).at(0)) == status::invalid));
    BOOST_TEST((static_cast<status>(h.query(stats_operation{}).at(0)) == status::invalid));
    BOOST_TEST((h.status_of(inline_put("after the failure", 3, 1)) == status::invalid));
    BOOST_TEST((h.status_of(delete_object_operation{key_of(1), {}}) == status::invalid));
    BOOST_TEST((h.run(clock_operation{}) == bytes{static_cast<std::uint8_t>(status::invalid)}));
    BOOST_TEST(h.machine.failed());
}

}  // namespace

// The control of the next two cases: untouched, every query answers, and most pages come from
// the disk (the cache is small), so a page flipped there is read.
BOOST_AUTO_TEST_CASE(untouched_pages_read_back) {
    big_store s;
    const std::uint64_t database_pages = s.disk.contents(database_name).size() / page_size;
    BOOST_TEST_MESSAGE("database pages: " << database_pages << ", WAL bytes: " << s.disk.contents(wal_name).size());
    const std::uint64_t read_before = s.h.machine.disk_counters().pages_read;
    BOOST_TEST(s.query_all() == big_objects);
    BOOST_TEST(s.h.machine.disk_counters().pages_read - read_before > database_pages / 2);
    BOOST_TEST(s.h.machine.disk_counters().page_checksum_failures == 0u);
    BOOST_TEST(!s.h.machine.failed());
    BOOST_TEST(s.h.machine.failure().empty());
    BOOST_TEST((s.h.status_of(inline_put("after", 3, 1)) == status::ok));
}

BOOST_AUTO_TEST_CASE(flipped_database_page_fails_the_store) {
    big_store s;
    const std::uint64_t page = middle_leaf_page(s.disk.contents(database_name));
    s.disk.flip(database_name, (page - 1) * page_size + page_size / 2, 0x10);
    const std::size_t answered = s.query_all();
    BOOST_TEST_MESSAGE("page " << page << " flipped; " << answered << " queries answered before");
    BOOST_TEST(answered < big_objects);
    BOOST_TEST(answered > 0u);  // the pages before it were fine
    BOOST_TEST(s.h.machine.disk_counters().page_checksum_failures > 0u);
    expect_failed_for_good(s.h);
}

BOOST_AUTO_TEST_CASE(flipped_wal_page_fails_the_store) {
    big_store s;
    // Overwrite one key in 40: the new pages stay in the WAL (too few for a checkpoint).
    for (std::size_t i = 0; i < big_objects; i += 40) {
        BOOST_TEST_REQUIRE(
            (s.h.status_of(inline_put(key_of(i), big_object_size, static_cast<std::uint8_t>(i + 1))) == status::ok));
    }
    s.commit();
    const std::uint64_t offset = middle_leaf_frame(s.disk.contents(wal_name));
    s.disk.flip(wal_name, offset + page_size / 2, 0x10);
    const std::size_t answered = s.query_all();
    BOOST_TEST_MESSAGE(answered << " queries answered before");
    BOOST_TEST(answered < big_objects);
    BOOST_TEST(s.h.machine.disk_counters().page_checksum_failures > 0u);
    expect_failed_for_good(s.h);
}

// ---- 4. disk failures -----------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(failed_writes_fail_the_commit) {
    for (const metadata_io fault : {metadata_io::ok, metadata_io::no_space, metadata_io::io_error}) {
        BOOST_TEST_CONTEXT("write fault " << static_cast<int>(fault)) {
            test_disk disk;
            harness h(&disk);
            fill(h, 50);
            disk.write_fault = fault;
            // The default cache holds all of it: the put itself touches no disk.
            BOOST_TEST_REQUIRE((h.status_of(inline_put("late", 10, 1)) == status::ok));
            BOOST_TEST_REQUIRE(!h.machine.failed());
            h.machine.snapshot_begin();      // the commit writes the WAL
            if (fault == metadata_io::ok) {  // the control
                BOOST_TEST(!h.machine.failed());
                BOOST_TEST(h.machine.failure().empty());
                BOOST_TEST(disk.faults_injected == 0u);
                BOOST_TEST((h.steps(1 << 20) == h.snapshot()));
                BOOST_TEST((h.status_of(inline_put("later", 10, 1)) == status::ok));
            } else {
                BOOST_TEST(disk.faults_injected > 0u);
                BOOST_TEST(h.machine.disk_counters().io_errors > 0u);
                // The commit itself failed, with the disk's error (not something later that
                // tripped over what was not written).
                BOOST_TEST(h.machine.failure().starts_with("commit: "), h.machine.failure());
                BOOST_TEST(h.machine.failure().ends_with(sqlite_error_of(fault)), h.machine.failure());
                expect_failed_for_good(h);
                bytes out;
                BOOST_TEST(h.machine.snapshot_step(out, 100));  // no snapshot from a failed store
                disk.write_fault = metadata_io::ok;             // the disk coming back does not revive it
                BOOST_TEST((h.status_of(inline_put("later", 10, 1)) == status::invalid));
            }
        }
    }
}

BOOST_AUTO_TEST_CASE(failed_sync_fails_the_commit) {
    test_disk disk;
    harness h(&disk);
    fill(h, 50);
    disk.sync_fault = metadata_io::io_error;
    h.machine.snapshot_begin();
    BOOST_TEST(disk.faults_injected > 0u);
    BOOST_TEST(h.machine.failure().starts_with("commit: "), h.machine.failure());
    expect_failed_for_good(h);
}

// With a small cache a put spills pages to the disk itself, so the put is what fails.
BOOST_AUTO_TEST_CASE(failed_writes_fail_a_put) {
    for (const metadata_io fault : {metadata_io::no_space, metadata_io::io_error}) {
        BOOST_TEST_CONTEXT("write fault " << static_cast<int>(fault)) {
            test_disk disk;
            harness h(&disk, metadata_store_options{.cache_kib = 64});
            for (std::size_t i = 0; i < 500; ++i) {
                BOOST_TEST_REQUIRE((h.status_of(inline_put(key_of(i), 1000, 1)) == status::ok));
            }
            disk.write_fault = fault;
            std::size_t puts = 0;
            status answer = status::ok;
            while (answer == status::ok && puts < 200) {
                BOOST_TEST_REQUIRE(!h.machine.failed());  // failed only with a non-ok answer
                answer = h.status_of(inline_put(key_of(1000 + puts), 1000, 2));
                ++puts;
            }
            BOOST_TEST_MESSAGE("failed at put " << puts);
            BOOST_TEST((answer == status::invalid));
            BOOST_TEST(disk.faults_injected > 0u);
            BOOST_TEST(h.machine.failure().ends_with(sqlite_error_of(fault)), h.machine.failure());
            expect_failed_for_good(h);
        }
    }
}

BOOST_AUTO_TEST_CASE(failed_reads_fail_the_store) {
    big_store s;
    s.disk.read_fault = metadata_io::io_error;
    const std::size_t answered = s.query_all();
    BOOST_TEST_MESSAGE(answered << " queries answered from the cache");
    BOOST_TEST(answered < big_objects);
    BOOST_TEST(s.disk.faults_injected > 0u);
    BOOST_TEST(s.h.machine.disk_counters().io_errors > 0u);
    BOOST_TEST(s.h.machine.disk_counters().page_checksum_failures == 0u);  // an error, not rot
    expect_failed_for_good(s.h);
}

// ---- 5. the bytes of the files --------------------------------------------------------------

namespace {

/// Where two files first differ, and in which kinds of WAL bytes (for the message).
std::string describe_difference(const bytes& a, const bytes& b, bool wal) {
    std::ostringstream out;
    if (a.size() != b.size()) out << "sizes " << a.size() << " and " << b.size() << "; ";
    std::map<std::string, std::size_t> kinds;
    std::size_t first = a.size(), count = 0;
    for (std::size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
        if (a[i] == b[i]) continue;
        ++count;
        first = std::min(first, i);
        std::string kind = "page";
        if (wal && i < 32) {
            kind = i < 16 ? "WAL header fields" : (i < 24 ? "WAL header salts" : "WAL header checksum");
        } else if (wal) {
            const std::size_t in_frame = (i - 32) % (24 + page_size);
            if (in_frame < 8)
                kind = "frame page number / commit size";
            else if (in_frame < 16)
                kind = "frame salts";
            else if (in_frame < 24)
                kind = "frame checksums";
            else if (in_frame >= 24 + page_size - sqlite_page_checksum_size)
                kind = "page checksum (reserved bytes)";
            else
                kind = "page contents";
        } else if (i % page_size >= page_size - sqlite_page_checksum_size) {
            kind = "page checksum (reserved bytes)";
        } else if (i < 100) {
            kind = "database header";
        }
        ++kinds[kind];
    }
    out << count << " bytes differ";
    if (count > 0) out << ", the first at " << first;
    for (const auto& [kind, n] : kinds) out << "; " << kind << ": " << n;
    return out.str();
}

/// The same history on a machine over `disk`: fills far past the cache and past a checkpoint
/// of the WAL (1000 pages) in one commit, snapshots while changing, deletes, commits again.
void deterministic_history(harness& h) {
    for (std::size_t i = 0; i < big_objects; ++i) {
        BOOST_TEST_REQUIRE(
            (h.status_of(inline_put(key_of(i), big_object_size, static_cast<std::uint8_t>(i))) == status::ok));
    }
    fill(h, 200);  // overwrites the first 200 keys, with chunks
    h.machine.snapshot_begin();
    h.steps(4096, [&](std::size_t step) {
        if (step % 3 == 0) mutate(h, step, 200);
    });
    for (std::size_t i = 0; i < 300; i += 2) {
        BOOST_TEST_REQUIRE((h.status_of(delete_object_operation{key_of(1000 + i), {}}) == status::ok));
    }
    h.machine.snapshot_begin();
    h.machine.snapshot_abandon();
    BOOST_TEST_REQUIRE(!h.machine.failed());
}

}  // namespace

// SQLite draws WAL salts from one generator per process; a store reseeds it with its seed when
// it opens. So a run repeated from the same seed writes the same bytes (what a simulation needs);
// two stores open at once share the generator and differ only in salts and checksums.
BOOST_AUTO_TEST_CASE(same_seed_same_operations_same_files) {
    test_disk disk_a, disk_b;
    auto run = [](test_disk& disk) {
        // Pages reach the database file too (copied from the WAL every 1000 pages).
        harness h(&disk, metadata_store_options{.cache_kib = 64, .seed = 42, .wal_copy_pages = 1000});
        deterministic_history(h);
        return std::tuple{h.snapshot(), h.machine.digest(), disk.contents(database_name), disk.contents(wal_name)};
    };
    const auto [snapshot_a, digest_a, database_a, wal_a] = run(disk_a);
    const auto [snapshot_b, digest_b, database_b, wal_b] = run(disk_b);
    BOOST_TEST_REQUIRE((snapshot_a == snapshot_b));
    BOOST_TEST(digest_a == digest_b);
    BOOST_TEST_REQUIRE(database_a.size() > 100 * page_size);
    BOOST_TEST((database_a == database_b), describe_difference(database_a, database_b, false));
    BOOST_TEST_REQUIRE(wal_a.size() > 32 + 100 * (24 + page_size));
    BOOST_TEST((wal_a == wal_b), "metadata.db-wal: " << describe_difference(wal_a, wal_b, true));
    BOOST_TEST(!disk_a.exists("metadata.db-journal"));
}
