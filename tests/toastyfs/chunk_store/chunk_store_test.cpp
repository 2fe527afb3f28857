#define BOOST_TEST_MODULE chunk_store
// The header under test comes first: proves it is self-contained.
#include "toastyfs/chunk_store.hpp"

#ifndef BOOST_TEST_DYN_LINK  // meson's boost dependency may define it already
#define BOOST_TEST_DYN_LINK
#endif
#include <boost/mpl/list.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "platform/chunk_disk_posix.hpp"
#include "platform/crypto.hpp"
#include "sim/sim_chunk_disk.hpp"
#include "vsr/random.hpp"

namespace toastyfs {
// Lets Boost.Test print statuses and entries in failure messages.
std::ostream& operator<<(std::ostream& out, chunk_status status) { return out << to_string(status); }
std::ostream& operator<<(std::ostream& out, const chunk_entry& entry) {
    return out << to_hex(entry.sha).substr(0, 8) << "/" << entry.size << "/" << entry.token;
}
}  // namespace toastyfs

namespace {

namespace fs = std::filesystem;
using platform::openssl_crypto;
using toastyfs::chunk_entry;
using toastyfs::chunk_status;
using toastyfs::sha256_digest;

std::vector<std::uint8_t> pattern(std::size_t size, std::uint32_t seed) {
    std::vector<std::uint8_t> bytes(size);
    for (std::size_t i = 0; i < size; i++) {
        bytes[i] = static_cast<std::uint8_t>(i * 31 + seed * 7 + (i >> 8));
    }
    return bytes;
}

sha256_digest sha_of(const std::vector<std::uint8_t>& data) { return openssl_crypto::sha256(data); }

std::string path_of(const sha256_digest& sha) {
    const std::string hex = toastyfs::to_hex(sha);
    return "chunks/" + hex.substr(0, 2) + "/" + hex;
}

// The same tests run over both disks. A fixture owns a disk and can restart the process using it
// (for the POSIX disk every successful call is durable already) and tamper with files behind the
// store's back.
struct posix_fixture {
    fs::path root;
    platform::posix_chunk_disk disk;

    posix_fixture() : root(fresh_root()), disk(root.string()) { BOOST_REQUIRE(disk.is_open()); }
    ~posix_fixture() {
        std::error_code ignored;
        fs::remove_all(root, ignored);
    }
    static fs::path fresh_root() {
        const auto stamp = std::chrono::steady_clock::now().time_since_epoch().count();
        for (int attempt = 0;; attempt++) {
            auto path = fs::temp_directory_path() /
                        ("toastyfs_chunk_store_test_" + std::to_string(stamp) + "_" + std::to_string(attempt));
            if (fs::create_directory(path)) return path;
        }
    }
    void restart() { disk = platform::posix_chunk_disk(root.string()); }
    void plant(const std::string& name, const std::vector<std::uint8_t>& bytes) {
        fs::create_directories((root / name).parent_path());
        std::ofstream(root / name, std::ios::binary)
            .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    }
    bool exists(const std::string& name) const { return fs::exists(root / name); }
    void flip_bit(const std::string& name, std::uint64_t bit) {
        std::fstream file(root / name, std::ios::binary | std::ios::in | std::ios::out);
        file.seekg(static_cast<std::streamoff>(bit / 8));
        const char byte = static_cast<char>(file.get() ^ (1 << (bit % 8)));
        file.seekp(static_cast<std::streamoff>(bit / 8));
        file.put(byte);
    }
    std::string temporary_name(const std::string& name) const { return name + ".tmp-1234-0"; }
};

struct sim_fixture {
    sim::sim_chunk_disk disk{42};

    void restart() { disk.crash(sim::crash_kind::keep_disk); }
    void plant(const std::string& name, const std::vector<std::uint8_t>& bytes) { disk.plant(name, bytes, 1); }
    bool exists(const std::string& name) const { return disk.files().contains(name) || disk.directory_exists(name); }
    void flip_bit(const std::string& name, std::uint64_t bit) { BOOST_REQUIRE(disk.flip_bit(name, bit)); }
    std::string temporary_name(const std::string& name) const {
        return name + std::string(sim::sim_chunk_disk::temporary_marker) + "7";
    }
};

using fixtures = boost::mpl::list<posix_fixture, sim_fixture>;

template <typename Fixture>
using store_for = toastyfs::chunk_store<decltype(Fixture::disk), openssl_crypto>;

template <typename Store>
void open_or_fail(Store& store) {
    std::string error;
    BOOST_REQUIRE_MESSAGE(store.open(error), error);
}

template <typename Store>
std::vector<chunk_entry> everything(const Store& store) {
    std::vector<chunk_entry> entries;
    store.inventory(std::nullopt, 1'000'000, entries);
    return entries;
}

}  // namespace

BOOST_AUTO_TEST_CASE_TEMPLATE(write_then_read_verifies, Fixture, fixtures) {
    Fixture f;
    store_for<Fixture> store(f.disk);
    open_or_fail(store);
    const auto data = pattern(100'000, 1);
    const auto sha = sha_of(data);
    const auto written = store.write(sha, data);
    BOOST_TEST(written.status == chunk_status::ok);
    BOOST_TEST(f.exists(path_of(sha)));
    BOOST_TEST(store.has(sha));
    BOOST_TEST((store.find(sha) == chunk_entry{sha, data.size(), written.token}));
    std::vector<std::uint8_t> read;
    BOOST_TEST(store.read(sha, read) == chunk_status::ok);
    BOOST_TEST(read == data);
    const auto empty_sha = sha_of({});  // the empty chunk is a chunk too
    BOOST_TEST(store.write(empty_sha, {}).status == chunk_status::ok);
    BOOST_TEST(store.read(empty_sha, read) == chunk_status::ok);
    BOOST_TEST(read.empty());
    const auto stats = store.stats();
    BOOST_TEST(stats.chunks == 2u);
    BOOST_TEST(stats.bytes_stored == data.size());
    BOOST_TEST(stats.writes == 2u);
    BOOST_TEST(stats.reads == 2u);
    BOOST_TEST(store.read(sha_of(pattern(5, 5)), read) == chunk_status::not_found);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(wrong_hash_and_oversize_data_are_refused, Fixture, fixtures) {
    Fixture f;
    store_for<Fixture> store(f.disk, {.chunk_size_max = 1000});
    open_or_fail(store);
    const auto data = pattern(1000, 1);
    const auto other = sha_of(pattern(1000, 2));
    BOOST_TEST(store.write(other, data).status == chunk_status::hash_mismatch);
    BOOST_TEST(!store.has(other));
    BOOST_TEST(!f.exists(path_of(other)));
    const auto large = pattern(1001, 3);
    BOOST_TEST(store.write(sha_of(large), large).status == chunk_status::too_large);
    BOOST_TEST(!f.exists(path_of(sha_of(large))));
    BOOST_TEST(store.write(sha_of(data), data).status == chunk_status::ok);  // at the limit
    BOOST_TEST(store.stats().chunks == 1u);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(corrupt_chunks_go_to_quarantine_and_a_write_repairs, Fixture, fixtures) {
    Fixture f;
    store_for<Fixture> store(f.disk);
    open_or_fail(store);
    const auto data = pattern(4096, 1);
    const auto sha = sha_of(data);
    const std::string hex = toastyfs::to_hex(sha);
    BOOST_REQUIRE(store.write(sha, data).status == chunk_status::ok);
    f.flip_bit(path_of(sha), 1234);
    std::vector<std::uint8_t> read;
    BOOST_TEST(store.read(sha, read) == chunk_status::corrupt);
    BOOST_TEST(read.empty());  // never hands out bad bytes
    BOOST_TEST(!store.has(sha));
    BOOST_TEST(!f.exists(path_of(sha)));
    BOOST_TEST(f.exists("quarantine/" + hex + ".0"));
    BOOST_TEST(store.read(sha, read) == chunk_status::not_found);

    BOOST_REQUIRE(store.write(sha, data).status == chunk_status::ok);  // a good copy from elsewhere
    BOOST_TEST(store.read(sha, read) == chunk_status::ok);
    BOOST_TEST(read == data);
    f.flip_bit(path_of(sha), 7);
    BOOST_TEST(store.read(sha, read) == chunk_status::corrupt);
    BOOST_TEST(f.exists("quarantine/" + hex + ".1"));  // earlier copy kept
    const auto stats = store.stats();
    BOOST_TEST(stats.corrupt_found == 2u);
    BOOST_TEST(stats.quarantined == 2u);
    BOOST_TEST(stats.chunks == 0u);
    BOOST_TEST(stats.bytes_stored == 0u);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(a_chunk_written_after_the_inventory_is_not_removed, Fixture, fixtures) {
    Fixture f;
    store_for<Fixture> store(f.disk);
    open_or_fail(store);
    const auto data = pattern(1000, 1);
    const auto sha = sha_of(data);
    BOOST_REQUIRE(store.write(sha, data).status == chunk_status::ok);
    const auto seen = everything(store);  // the collector looks
    BOOST_REQUIRE(seen.size() == 1u);
    const auto rewritten = store.write(sha, data);  // a writer references the chunk again
    BOOST_REQUIRE(rewritten.status == chunk_status::ok);
    BOOST_TEST(rewritten.token > seen[0].token);
    BOOST_TEST(store.remove_if_unchanged(sha, seen[0].token) == chunk_status::token_mismatch);
    BOOST_TEST(store.has(sha));
    BOOST_TEST(f.exists(path_of(sha)));
    BOOST_TEST(store.remove_if_unchanged(sha, rewritten.token) == chunk_status::ok);
    BOOST_TEST(!f.exists(path_of(sha)));
    BOOST_TEST(store.remove_if_unchanged(sha, rewritten.token) == chunk_status::not_found);
    std::vector<std::uint8_t> read;
    BOOST_TEST(store.read(sha, read) == chunk_status::not_found);
    // Written again after removal: a token never handed out before.
    const auto again = store.write(sha, data);
    BOOST_TEST(again.token > rewritten.token);
    BOOST_TEST(store.stats().removes == 1u);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(restart_keeps_the_index_and_tokens, Fixture, fixtures) {
    Fixture f;
    std::vector<chunk_entry> before;
    std::uint64_t token_max = 0;
    {
        store_for<Fixture> store(f.disk);
        open_or_fail(store);
        for (std::uint32_t i = 0; i < 20; i++) {
            const auto data = pattern(100 + i * 37, i);
            const auto written = store.write(sha_of(data), data);
            BOOST_REQUIRE(written.status == chunk_status::ok);
            token_max = std::max(token_max, written.token);
        }
        before = everything(store);
    }
    f.restart();
    store_for<Fixture> store(f.disk);
    open_or_fail(store);
    BOOST_TEST(everything(store) == before, boost::test_tools::per_element());
    std::uint64_t bytes = 0;
    for (const auto& entry : before) bytes += entry.size;
    BOOST_TEST(store.stats().bytes_stored == bytes);
    const auto data = pattern(100, 0);
    const auto written = store.write(sha_of(data), data);
    BOOST_TEST(written.token > token_max);  // never reused, whatever the clock says
    std::vector<std::uint8_t> read;
    BOOST_TEST(store.read(before[3].sha, read) == chunk_status::ok);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(open_removes_leftover_temporaries_and_ignores_garbage, Fixture, fixtures) {
    Fixture f;
    const auto data = pattern(300, 1);
    const auto sha = sha_of(data);
    const std::string hex = toastyfs::to_hex(sha);
    const std::string directory = "chunks/" + hex.substr(0, 2) + "/";
    {
        store_for<Fixture> store(f.disk);
        open_or_fail(store);
        BOOST_REQUIRE(store.write(sha, data).status == chunk_status::ok);
    }
    std::string upper = hex;
    std::transform(upper.begin(), upper.end(), upper.begin(),
                   [](char c) { return static_cast<char>(std::toupper(c)); });
    const std::string wrong_directory = (hex[0] == '0' ? "chunks/11/" : "chunks/00/") + hex;
    const std::string temporary = f.temporary_name(directory + hex);
    f.plant(temporary, pattern(100, 2));
    f.plant(directory + "hello", pattern(10, 3));
    f.plant(directory + upper, data);
    f.plant(directory + hex.substr(0, 63), data);
    f.plant(directory + hex + ".bak", data);
    f.plant(wrong_directory, data);
    f.plant("chunks/zz/" + hex, data);  // not a fan-out directory: never looked at
    f.plant("chunks/README", pattern(5, 4));
    f.restart();
    store_for<Fixture> store(f.disk);
    open_or_fail(store);
    const auto stats = store.stats();
    BOOST_TEST(stats.temporaries_removed == 1u);
    BOOST_TEST(!f.exists(temporary));
    BOOST_TEST(stats.ignored_names == 5u);
    BOOST_TEST(stats.chunks == 1u);
    BOOST_TEST(f.exists(directory + "hello"));  // left alone
    std::vector<std::uint8_t> read;
    BOOST_TEST(store.read(sha, read) == chunk_status::ok);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(inventory_pages_through_every_chunk_in_order, Fixture, fixtures) {
    Fixture f;
    store_for<Fixture> store(f.disk);
    open_or_fail(store);
    std::set<sha256_digest> written;
    for (std::uint32_t i = 0; i < 40; i++) {
        const auto data = pattern(10 + i, i);
        BOOST_REQUIRE(store.write(sha_of(data), data).status == chunk_status::ok);
        written.insert(sha_of(data));
    }
    std::vector<chunk_entry> all;
    std::vector<chunk_entry> page;
    std::optional<sha256_digest> cursor;
    int pages = 0;
    do {
        store.inventory(cursor, 7, page);
        BOOST_TEST(page.size() <= 7u);
        all.insert(all.end(), page.begin(), page.end());
        if (!page.empty()) cursor = page.back().sha;
        pages++;
    } while (page.size() == 7);
    BOOST_TEST(pages == 6);
    BOOST_REQUIRE(all.size() == written.size());
    auto expected = written.begin();
    for (const auto& entry : all) BOOST_TEST((entry.sha == *expected++));
    store.inventory(all.back().sha, 7, page);
    BOOST_TEST(page.empty());
    store.inventory(std::nullopt, 0, page);
    BOOST_TEST(page.empty());
}

BOOST_AUTO_TEST_CASE_TEMPLATE(scrub_finds_a_flipped_bit_round_robin, Fixture, fixtures) {
    Fixture f;
    store_for<Fixture> store(f.disk);
    open_or_fail(store);
    std::vector<sha256_digest> shas;
    for (std::uint32_t i = 0; i < 10; i++) {
        const auto data = pattern(500, i);
        BOOST_REQUIRE(store.write(sha_of(data), data).status == chunk_status::ok);
        shas.push_back(sha_of(data));
    }
    std::sort(shas.begin(), shas.end());
    f.flip_bit(path_of(shas[6]), 100);
    // One chunk per call (budget smaller than a chunk): the seventh call finds it.
    std::uint64_t corrupt_at = 0;
    for (std::uint64_t call = 1; call <= 7; call++) {
        const auto result = store.scrub(1);
        BOOST_TEST(result.checked == 1u);
        if (result.corrupt != 0) corrupt_at = call;
    }
    BOOST_TEST(corrupt_at == 7u);
    BOOST_TEST(!store.has(shas[6]));
    BOOST_TEST(f.exists("quarantine/" + toastyfs::to_hex(shas[6]) + ".0"));
    // A large budget checks each remaining chunk once, wrapping around.
    const auto rest = store.scrub(1'000'000);
    BOOST_TEST(rest.checked == 9u);
    BOOST_TEST(rest.corrupt == 0u);
    BOOST_TEST(store.scrub(1'000).checked == 2u);  // 500 + 500 bytes reach the budget
    BOOST_TEST(store.stats().corrupt_found == 1u);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(scrub_drops_missing_files, Fixture, fixtures) {
    Fixture f;
    store_for<Fixture> store(f.disk);
    open_or_fail(store);
    const auto data = pattern(500, 1);
    BOOST_REQUIRE(store.write(sha_of(data), data).status == chunk_status::ok);
    BOOST_REQUIRE(f.disk.remove(path_of(sha_of(data))) == toastyfs::disk_status::ok);  // behind its back
    const auto result = store.scrub(1'000'000);
    BOOST_TEST(result.checked == 1u);
    BOOST_TEST(result.corrupt == 1u);
    BOOST_TEST(store.stats().missing_found == 1u);
    BOOST_TEST(store.stats().chunks == 0u);
    BOOST_TEST(store.scrub(1'000'000).checked == 0u);  // nothing left
}

BOOST_AUTO_TEST_CASE_TEMPLATE(quota_and_chunk_limit_give_no_space, Fixture, fixtures) {
    Fixture f;
    store_for<Fixture> store(f.disk, {.bytes_max = 1000, .chunks_max = 2});
    open_or_fail(store);
    const auto a = pattern(600, 1);
    const auto b = pattern(600, 2);
    const auto c = pattern(100, 3);
    const auto d = pattern(100, 4);
    BOOST_TEST(store.write(sha_of(a), a).status == chunk_status::ok);
    BOOST_TEST(store.write(sha_of(b), b).status == chunk_status::no_space);
    BOOST_TEST(!f.exists(path_of(sha_of(b))));
    BOOST_TEST(store.write(sha_of(a), a).status == chunk_status::ok);  // replaces itself: fits
    BOOST_TEST(store.write(sha_of(c), c).status == chunk_status::ok);
    BOOST_TEST(store.write(sha_of(d), d).status == chunk_status::no_space);  // third chunk
    const auto stats = store.stats();
    BOOST_TEST(stats.bytes_stored == 700u);
    BOOST_TEST(stats.bytes_max == 1000u);
    BOOST_TEST(stats.no_space == 2u);
    // More chunks on disk than chunks_max: open says so instead of dropping some.
    store_for<Fixture> smaller(f.disk, {.chunks_max = 1});
    std::string error;
    BOOST_TEST(!smaller.open(error));
    BOOST_TEST(error.find("chunks_max") != std::string::npos);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(the_first_write_into_a_fan_out_directory_makes_it, Fixture, fixtures) {
    Fixture f;
    store_for<Fixture> store(f.disk);
    open_or_fail(store);
    const auto data = pattern(10, 1);
    BOOST_TEST(!f.exists(path_of(sha_of(data)).substr(0, 9)));  // "chunks/xx": open makes none
    BOOST_TEST(store.write(sha_of(data), data).status == chunk_status::ok);
    BOOST_TEST(f.exists(path_of(sha_of(data))));
}

// Faults only the simulated disk can inject.

BOOST_AUTO_TEST_CASE(disk_full_and_free_bytes_min_give_no_space) {
    sim::sim_chunk_disk disk(1);
    disk.faults().capacity_bytes = 1000;
    toastyfs::chunk_store<sim::sim_chunk_disk, openssl_crypto> store(disk);
    open_or_fail(store);
    const auto large = pattern(1001, 1);
    BOOST_TEST(store.write(sha_of(large), large).status == chunk_status::no_space);  // the disk's
    toastyfs::chunk_store<sim::sim_chunk_disk, openssl_crypto> careful(disk, {.free_bytes_min = 100});
    open_or_fail(careful);
    const auto data = pattern(950, 2);
    BOOST_TEST(careful.write(sha_of(data), data).status == chunk_status::no_space);  // the reserve
    const auto small = pattern(900, 3);
    BOOST_TEST(careful.write(sha_of(small), small).status == chunk_status::ok);
    BOOST_TEST(careful.stats().no_space == 1u);
}

BOOST_AUTO_TEST_CASE(io_errors_are_reported_and_the_index_follows_the_disk) {
    sim::sim_chunk_disk disk(1);
    toastyfs::chunk_store<sim::sim_chunk_disk, openssl_crypto> store(disk);
    open_or_fail(store);
    const auto data = pattern(100, 1);
    const auto sha = sha_of(data);
    const auto written = store.write(sha, data);
    BOOST_REQUIRE(written.status == chunk_status::ok);
    std::vector<std::uint8_t> read;

    disk.faults().read_error_per_mille = 1000;
    BOOST_TEST(store.read(sha, read) == chunk_status::io_error);
    BOOST_TEST(store.has(sha));  // an unreadable disk is not a corrupt chunk
    BOOST_TEST(store.scrub(1000).io_errors == 1u);
    disk.faults().read_error_per_mille = 0;

    disk.faults().remove_error_per_mille = 1000;
    BOOST_TEST(store.remove_if_unchanged(sha, written.token) == chunk_status::io_error);
    BOOST_TEST(store.has(sha));
    disk.faults().remove_error_per_mille = 0;

    disk.faults().write_error_per_mille = 1000;
    const auto other = pattern(100, 2);
    BOOST_TEST(store.write(sha_of(other), other).status == chunk_status::io_error);
    BOOST_TEST(!store.has(sha_of(other)));
    BOOST_TEST(store.write(sha, data).status == chunk_status::io_error);
    BOOST_TEST((store.find(sha)->token == written.token));  // the old file is still there
    disk.faults().write_error_per_mille = 0;

    BOOST_TEST(store.read(sha, read) == chunk_status::ok);
    BOOST_TEST(store.stats().io_errors == 5u);
}

BOOST_AUTO_TEST_CASE(a_flip_on_the_way_is_retried_a_flip_every_time_is_quarantined) {
    sim::sim_chunk_disk disk(5);
    toastyfs::chunk_store<sim::sim_chunk_disk, openssl_crypto> store(disk);
    open_or_fail(store);
    const auto data = pattern(1000, 1);
    const auto sha = sha_of(data);
    BOOST_REQUIRE(store.write(sha, data).status == chunk_status::ok);
    disk.faults().bit_flip_on_read_per_mille = 300;
    std::vector<std::uint8_t> read;
    for (int i = 0; i < 50 && store.stats().corrupt_reads_recovered == 0; i++) {
        const auto status = store.read(sha, read);
        if (status == chunk_status::corrupt) break;
        BOOST_TEST(status == chunk_status::ok);
        BOOST_TEST(read == data);
    }
    BOOST_TEST(store.stats().corrupt_reads_recovered >= 1u);
    disk.faults().bit_flip_on_read_per_mille = 1000;
    if (store.has(sha)) {
        BOOST_TEST(store.read(sha, read) == chunk_status::corrupt);
    }
    BOOST_TEST(!store.has(sha));
}

BOOST_AUTO_TEST_CASE(tokens_come_from_the_disk_clock_but_never_repeat) {
    sim::sim_chunk_disk disk(1);
    toastyfs::chunk_store<sim::sim_chunk_disk, openssl_crypto> store(disk);
    open_or_fail(store);
    const auto data = pattern(10, 1);
    disk.set_token_now(1'000'000);
    const auto first = store.write(sha_of(data), data);
    BOOST_TEST(first.token == 1'000'000u);
    disk.set_token_now(5);  // the clock jumps back
    const auto second = store.write(sha_of(data), data);
    BOOST_TEST(second.token == 1'000'001u);
    const auto other = pattern(10, 2);
    BOOST_TEST(store.write(sha_of(other), other).token == 1'000'002u);  // unique store-wide
}

BOOST_AUTO_TEST_CASE(a_stopped_clock_cannot_make_a_collector_delete_a_rewritten_chunk) {
    sim::sim_chunk_disk disk(1);
    toastyfs::chunk_store<sim::sim_chunk_disk, openssl_crypto> store(disk);
    open_or_fail(store);
    const auto data = pattern(10, 1);
    disk.set_token_now(500);
    const auto seen = store.write(sha_of(data), data);
    disk.set_token_now(500);  // the same clock reading again
    BOOST_REQUIRE(store.write(sha_of(data), data).status == chunk_status::ok);
    BOOST_TEST(store.remove_if_unchanged(sha_of(data), seen.token) == chunk_status::token_mismatch);
    BOOST_TEST(store.has(sha_of(data)));
}

BOOST_AUTO_TEST_CASE(lost_and_torn_writes_never_surface_as_wrong_data) {
    sim::sim_chunk_disk disk(9);
    toastyfs::chunk_store<sim::sim_chunk_disk, openssl_crypto> store(disk);
    open_or_fail(store);
    const auto lost = pattern(700, 1);
    const auto torn = pattern(700, 2);
    disk.faults().lost_write_per_mille = 1000;
    BOOST_REQUIRE(store.write(sha_of(lost), lost).status == chunk_status::ok);
    disk.faults() = {.torn_write_per_mille = 1000};
    BOOST_REQUIRE(store.write(sha_of(torn), torn).status == chunk_status::ok);
    disk.faults() = {};
    disk.crash(sim::crash_kind::keep_disk);
    toastyfs::chunk_store<sim::sim_chunk_disk, openssl_crypto> reopened(disk);
    open_or_fail(reopened);
    BOOST_TEST(!reopened.has(sha_of(lost)));
    BOOST_TEST(reopened.has(sha_of(torn)));  // present by name...
    std::vector<std::uint8_t> read;
    BOOST_TEST(reopened.read(sha_of(torn), read) == chunk_status::corrupt);  // ...but caught
    BOOST_TEST(read.empty());
}

// A seeded run with every fault and crashes: the store must never return bytes other than what
// was written under that name, and must stay within its quota. The totals prove the faults and
// the store's defences were exercised, not just survived.
BOOST_AUTO_TEST_CASE(random_faults_never_return_wrong_data) {
    using store_type = toastyfs::chunk_store<sim::sim_chunk_disk, openssl_crypto>;
    const toastyfs::chunk_store_options options{.chunk_size_max = 4096, .bytes_max = 15'000};
    std::uint64_t reads_ok = 0;
    toastyfs::chunk_store_stats totals;
    const auto retire = [&totals](const store_type& store) {
        const auto stats = store.stats();
        totals.corrupt_found += stats.corrupt_found;
        totals.corrupt_reads_recovered += stats.corrupt_reads_recovered;
        totals.temporaries_removed += stats.temporaries_removed;
        totals.io_errors += stats.io_errors;
        totals.no_space += stats.no_space;
    };
    for (std::uint64_t seed = 1; seed <= 4; seed++) {
        sim::sim_chunk_disk disk(seed, {.bit_flip_at_rest_per_mille = 20,
                                        .bit_flip_on_read_per_mille = 20,
                                        .lost_write_per_mille = 20,
                                        .torn_write_per_mille = 20,
                                        .leftover_temporary_per_mille = 20,
                                        .read_error_per_mille = 20,
                                        .write_error_per_mille = 20,
                                        .remove_error_per_mille = 20});
        vsr::xoshiro256 random(seed);
        std::map<sha256_digest, std::vector<std::uint8_t>> contents;
        std::vector<sha256_digest> names;
        for (std::uint32_t i = 0; i < 30; i++) {
            auto data = pattern(vsr::uniform_below(random, 2000), i);
            names.push_back(sha_of(data));
            contents[names.back()] = std::move(data);
        }
        auto store = std::make_unique<store_type>(disk, options);
        open_or_fail(*store);
        std::vector<std::uint8_t> read;
        std::vector<chunk_entry> page;
        for (int step = 0; step < 1000; step++) {
            const auto& sha = names[vsr::uniform_below(random, names.size())];
            switch (vsr::uniform_below(random, 6)) {
                case 0:
                case 1: (void)store->write(sha, contents[sha]); break;
                case 2:
                    if (store->read(sha, read) == chunk_status::ok) {
                        BOOST_REQUIRE(read == contents[sha]);
                        reads_ok++;
                    }
                    break;
                case 3:
                    store->inventory(std::nullopt, 3, page);
                    if (!page.empty()) (void)store->remove_if_unchanged(page[0].sha, page[0].token);
                    break;
                case 4: (void)store->scrub(2000); break;
                case 5:
                    if (vsr::uniform_below(random, 10) == 0) {
                        retire(*store);
                        disk.crash(sim::crash_kind::keep_disk);
                        store = std::make_unique<store_type>(disk, options);
                        open_or_fail(*store);
                    }
                    break;
            }
            BOOST_REQUIRE(store->stats().bytes_stored <= options.bytes_max);
        }
        retire(*store);
        BOOST_TEST(disk.counters().crashes > 0u, "seed " << seed);
    }
    BOOST_TEST(reads_ok > 100u);
    BOOST_TEST(totals.corrupt_found > 0u);
    BOOST_TEST(totals.corrupt_reads_recovered > 0u);
    BOOST_TEST(totals.temporaries_removed > 0u);
    BOOST_TEST(totals.io_errors > 0u);
    BOOST_TEST(totals.no_space > 0u);
}
