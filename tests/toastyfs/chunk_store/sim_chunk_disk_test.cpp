#define BOOST_TEST_MODULE sim_chunk_disk
// The header under test comes first: proves it is self-contained.
#include "sim/sim_chunk_disk.hpp"

#ifndef BOOST_TEST_DYN_LINK  // meson's boost dependency may define it already
#define BOOST_TEST_DYN_LINK
#endif
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

namespace toastyfs {
// Lets Boost.Test print statuses in failure messages.
std::ostream& operator<<(std::ostream& out, disk_status status) { return out << to_string(status); }
}  // namespace toastyfs
namespace sim {
std::ostream& operator<<(std::ostream& out, const sim_file& file) {
    return out << "{" << file.bytes.size() << " bytes, token " << file.token << "}";
}
}  // namespace sim

namespace {

using sim::chunk_disk_faults;
using sim::crash_kind;
using sim::sim_chunk_disk;
using toastyfs::disk_status;

std::vector<std::uint8_t> pattern(std::size_t size, std::uint8_t seed) {
    std::vector<std::uint8_t> bytes(size);
    for (std::size_t i = 0; i < size; i++) bytes[i] = static_cast<std::uint8_t>(i * 31 + seed);
    return bytes;
}

int differing_bits(const std::vector<std::uint8_t>& a, const std::vector<std::uint8_t>& b) {
    BOOST_REQUIRE(a.size() == b.size());
    int bits = 0;
    for (std::size_t i = 0; i < a.size(); i++) bits += __builtin_popcount(a[i] ^ b[i]);
    return bits;
}

// A disk with directory "d" and file "d/f" (pattern(1000, 1), token 5), written without faults.
sim_chunk_disk disk_with_file(std::uint64_t seed = 1) {
    sim_chunk_disk disk(seed);
    BOOST_REQUIRE(disk.make_directory("d") == disk_status::ok);
    BOOST_REQUIRE(disk.write_durably("d/f", pattern(1000, 1), 5) == disk_status::ok);
    return disk;
}

}  // namespace

BOOST_AUTO_TEST_CASE(behaves_like_a_file_system_without_faults) {
    sim_chunk_disk disk(1);
    std::vector<std::uint8_t> read;
    std::vector<std::string> names;
    toastyfs::disk_file_info info;
    BOOST_TEST(disk.write_durably("d/f", pattern(10, 1), 1) == disk_status::not_found);  // no dir
    BOOST_TEST(disk.make_directory("d/e") == disk_status::not_found);                    // no parent
    BOOST_TEST(disk.make_directory("d") == disk_status::ok);
    BOOST_TEST(disk.make_directory("d") == disk_status::ok);
    BOOST_TEST(disk.make_directory("d/e") == disk_status::ok);
    BOOST_TEST(disk.write_durably("d/f", pattern(10, 1), 7) == disk_status::ok);
    BOOST_TEST(disk.write_durably("d/e/g", pattern(3, 1), 8) == disk_status::ok);
    BOOST_TEST(disk.read("d/f", 10, read) == disk_status::ok);
    BOOST_TEST(read == pattern(10, 1));
    BOOST_TEST(disk.read("d/f", 9, read) == disk_status::too_large);
    BOOST_TEST(disk.stat("d/f", info) == disk_status::ok);
    BOOST_TEST((info.exists && info.size == 10u && info.token == 7u));
    BOOST_TEST(disk.list("d", names) == disk_status::ok);
    BOOST_TEST(names == std::vector<std::string>{"f"});  // files only, not d/e or d/e/g
    BOOST_TEST(disk.rename("d/f", "d/e/h") == disk_status::ok);
    BOOST_TEST(disk.stat("d/e/h", info) == disk_status::ok);
    BOOST_TEST(info.token == 7u);
    BOOST_TEST(disk.stat("d/f", info) == disk_status::not_found);
    BOOST_TEST(disk.remove("d/e/h") == disk_status::ok);
    BOOST_TEST(disk.remove("d/e/h") == disk_status::not_found);
    BOOST_TEST(disk.used_bytes() == 3u);
    disk.crash(crash_kind::keep_disk);  // everything was durable
    BOOST_TEST(disk.files().size() == 1u);
    BOOST_TEST(disk.files().at("d/e/g").bytes == pattern(3, 1));
    BOOST_TEST(disk.counters().crashes == 1u);
}

BOOST_AUTO_TEST_CASE(bit_flip_at_rest_changes_one_stored_bit) {
    sim_chunk_disk disk = disk_with_file();
    disk.faults().bit_flip_at_rest_per_mille = 1000;
    BOOST_TEST(disk.write_durably("d/g", pattern(500, 2), 1) == disk_status::ok);
    BOOST_TEST(differing_bits(disk.files().at("d/g").bytes, pattern(500, 2)) == 1);
    BOOST_TEST(disk.durable_files().at("d/g") == disk.files().at("d/g"));  // on the medium
    BOOST_TEST(disk.counters().bit_flips_at_rest == 1u);

    BOOST_TEST(disk.flip_bit("d/f", 12));
    BOOST_TEST(differing_bits(disk.files().at("d/f").bytes, pattern(1000, 1)) == 1);
    BOOST_TEST(!disk.flip_bit("d/f", 8000));
    BOOST_TEST(!disk.flip_bit("d/none", 0));
    BOOST_TEST(!disk.rot().empty());
    BOOST_TEST(disk.counters().bit_flips_at_rest == 3u);
}

BOOST_AUTO_TEST_CASE(bit_flip_on_read_spares_the_stored_copy) {
    sim_chunk_disk disk = disk_with_file();
    disk.faults().bit_flip_on_read_per_mille = 1000;
    std::vector<std::uint8_t> read;
    BOOST_TEST(disk.read("d/f", 1000, read) == disk_status::ok);
    BOOST_TEST(differing_bits(read, pattern(1000, 1)) == 1);
    BOOST_TEST(disk.files().at("d/f").bytes == pattern(1000, 1));
    BOOST_TEST(disk.counters().bit_flips_on_read == 1u);
}

BOOST_AUTO_TEST_CASE(lost_write_is_visible_until_the_crash_then_gone) {
    sim_chunk_disk disk = disk_with_file();
    disk.faults().lost_write_per_mille = 1000;
    BOOST_TEST(disk.write_durably("d/f", pattern(20, 9), 6) == disk_status::ok);    // replaces
    BOOST_TEST(disk.write_durably("d/new", pattern(20, 9), 6) == disk_status::ok);  // creates
    BOOST_TEST(disk.files().at("d/f").bytes == pattern(20, 9));
    BOOST_TEST(disk.counters().lost_writes == 2u);
    disk.crash(crash_kind::keep_disk);
    BOOST_TEST(disk.files().at("d/f") == (sim::sim_file{pattern(1000, 1), 5}));  // old content
    BOOST_TEST(!disk.files().contains("d/new"));
    BOOST_TEST(disk.used_bytes() == 1000u);
}

BOOST_AUTO_TEST_CASE(torn_write_leaves_a_broken_file_under_the_final_name_after_a_crash) {
    sim_chunk_disk disk = disk_with_file(3);
    disk.faults().torn_write_per_mille = 1000;
    for (int i = 0; i < 20; i++) {
        const std::string name = "d/t" + std::to_string(i);
        BOOST_TEST(disk.write_durably(name, pattern(300, static_cast<std::uint8_t>(i)), 6) == disk_status::ok);
        BOOST_TEST(disk.files().at(name).bytes == pattern(300, static_cast<std::uint8_t>(i)));
    }
    BOOST_TEST(disk.counters().torn_writes == 20u);
    disk.crash(crash_kind::keep_disk);
    int truncated = 0;
    for (int i = 0; i < 20; i++) {
        const auto& bytes = disk.files().at("d/t" + std::to_string(i)).bytes;
        BOOST_TEST(bytes != pattern(300, static_cast<std::uint8_t>(i)));
        BOOST_TEST(bytes.size() <= 300u);
        truncated += bytes.size() < 300 ? 1 : 0;
    }
    BOOST_TEST(truncated > 0);                                     // some cut short,
    BOOST_TEST(truncated < 20);                                    // some garbled at full length
    BOOST_TEST(disk.files().at("d/f").bytes == pattern(1000, 1));  // earlier writes intact
}

BOOST_AUTO_TEST_CASE(leftover_temporaries_appear_after_a_crash) {
    sim_chunk_disk disk = disk_with_file();
    disk.faults().leftover_temporary_per_mille = 1000;
    BOOST_TEST(disk.write_durably("d/g", pattern(100, 2), 6) == disk_status::ok);
    std::vector<std::string> names;
    BOOST_TEST(disk.list("d", names) == disk_status::ok);
    BOOST_TEST(names == (std::vector<std::string>{"f", "g"}));
    disk.crash(crash_kind::keep_disk);
    BOOST_TEST(disk.list("d", names) == disk_status::ok);
    BOOST_REQUIRE(names.size() == 3u);
    BOOST_TEST(names[1] == "g");
    BOOST_TEST(names[2].starts_with("g"));
    BOOST_TEST(sim_chunk_disk::is_temporary(names[2]));
    BOOST_TEST(!sim_chunk_disk::is_temporary(names[1]));
    BOOST_TEST(disk.counters().leftover_temporaries == 1u);
}

BOOST_AUTO_TEST_CASE(io_errors_change_nothing) {
    sim_chunk_disk disk = disk_with_file();
    const auto before = disk.files();
    disk.faults().read_error_per_mille = 1000;
    disk.faults().write_error_per_mille = 1000;
    disk.faults().remove_error_per_mille = 1000;
    std::vector<std::uint8_t> read;
    BOOST_TEST(disk.read("d/f", 1000, read) == disk_status::io_error);
    BOOST_TEST(disk.write_durably("d/f", pattern(1, 1), 9) == disk_status::io_error);
    BOOST_TEST(disk.write_durably("d/g", pattern(1, 1), 9) == disk_status::io_error);
    BOOST_TEST(disk.rename("d/f", "d/g") == disk_status::io_error);
    BOOST_TEST(disk.remove("d/f") == disk_status::io_error);
    BOOST_TEST((disk.files() == before));
    BOOST_TEST(disk.counters().read_errors == 1u);
    BOOST_TEST(disk.counters().write_errors == 3u);
    BOOST_TEST(disk.counters().remove_errors == 1u);
    disk.faults() = {};
    BOOST_TEST(disk.read("d/f", 1000, read) == disk_status::ok);
}

BOOST_AUTO_TEST_CASE(full_disk_is_no_space) {
    sim_chunk_disk disk = disk_with_file();
    disk.faults().capacity_bytes = 1500;
    std::uint64_t free = 0;
    BOOST_TEST(disk.free_bytes(free) == disk_status::ok);
    BOOST_TEST(free == 500u);
    BOOST_TEST(disk.write_durably("d/g", pattern(501, 2), 6) == disk_status::no_space);
    BOOST_TEST(disk.write_durably("d/f", pattern(600, 2), 6) == disk_status::no_space);  // old + new
    BOOST_TEST(disk.write_durably("d/g", pattern(500, 2), 6) == disk_status::ok);
    BOOST_TEST(disk.free_bytes(free) == disk_status::ok);
    BOOST_TEST(free == 0u);
    BOOST_TEST(disk.counters().no_space == 2u);
    BOOST_TEST(!disk.files().contains("d/h"));
}

BOOST_AUTO_TEST_CASE(wipe_empties_everything) {
    sim_chunk_disk disk = disk_with_file();
    disk.crash(crash_kind::wipe_disk);
    BOOST_TEST(disk.files().empty());
    BOOST_TEST(disk.durable_files().empty());
    BOOST_TEST(!disk.directory_exists("d"));
    BOOST_TEST(disk.used_bytes() == 0u);
    BOOST_TEST(disk.counters().wipes == 1u);
    BOOST_TEST(disk.write_durably("d/f", pattern(1, 1), 1) == disk_status::not_found);
}

BOOST_AUTO_TEST_CASE(token_clock_is_settable_and_advances) {
    sim_chunk_disk disk(1);
    const std::uint64_t first = disk.token_now();
    BOOST_TEST(disk.token_now() == first + 1);
    disk.set_token_now(1'000);
    BOOST_TEST(disk.token_now() == 1'000u);
    disk.set_token_now(3);  // clocks may go backwards
    BOOST_TEST(disk.token_now() == 3u);
}

BOOST_AUTO_TEST_CASE(plant_bypasses_faults_for_test_setup) {
    sim_chunk_disk disk(1, chunk_disk_faults{.lost_write_per_mille = 1000, .capacity_bytes = 1});
    disk.plant("anywhere/x", pattern(10, 1), 4);
    disk.crash(crash_kind::keep_disk);
    BOOST_TEST(disk.files().at("anywhere/x") == (sim::sim_file{pattern(10, 1), 4}));
}

// The same seed, faults and calls give the same disk: runs replay.
BOOST_AUTO_TEST_CASE(same_seed_same_faults) {
    const auto run = [](std::uint64_t seed) {
        sim_chunk_disk disk(seed, chunk_disk_faults{.bit_flip_at_rest_per_mille = 100,
                                                    .bit_flip_on_read_per_mille = 100,
                                                    .lost_write_per_mille = 100,
                                                    .torn_write_per_mille = 100,
                                                    .leftover_temporary_per_mille = 100,
                                                    .read_error_per_mille = 100,
                                                    .write_error_per_mille = 100,
                                                    .remove_error_per_mille = 100});
        BOOST_REQUIRE(disk.make_directory("d") == disk_status::ok);
        std::vector<std::uint8_t> read;
        std::uint64_t checksum = 0;
        for (int i = 0; i < 300; i++) {
            const std::string name = "d/" + std::to_string(i % 17);
            (void)disk.write_durably(name, pattern(50 + i, static_cast<std::uint8_t>(i)), i);
            if (disk.read(name, 1000, read) == disk_status::ok) {
                for (const auto byte : read) checksum = checksum * 31 + byte;
            }
            if (i % 7 == 0) (void)disk.remove("d/" + std::to_string(i % 5));
            if (i % 50 == 0) disk.crash(crash_kind::keep_disk);
        }
        return std::make_pair(disk.files(), checksum);
    };
    BOOST_TEST((run(11) == run(11)));
    BOOST_TEST((run(11) != run(12)));
}

// faults_hit: what the checkers ask before excusing a copy the product reports corrupt.
BOOST_AUTO_TEST_CASE(faults_hit_names_the_copies_a_fault_damaged) {
    sim_chunk_disk disk = disk_with_file();
    BOOST_TEST(!disk.faults_hit("d/f").damaged_at_rest);  // a clean write
    BOOST_TEST(disk.faults_hit("d/f").read_flips == 0u);
    disk.faults().bit_flip_on_read_per_mille = 1000;
    std::vector<std::uint8_t> read;
    BOOST_TEST(disk.read("d/f", 1000, read) == disk_status::ok);
    BOOST_TEST(disk.faults_hit("d/f").read_flips == 1u);
    BOOST_TEST(!disk.faults_hit("d/f").damaged_at_rest);  // the stored copy is fine
    disk.faults() = {};
    BOOST_TEST(disk.flip_bit("d/f", 3));
    BOOST_TEST(disk.faults_hit("d/f").damaged_at_rest);
    BOOST_TEST(disk.rename("d/f", "d/q") == disk_status::ok);  // follows the copy (quarantine)
    BOOST_TEST(disk.faults_hit("d/q").damaged_at_rest);
    BOOST_TEST(disk.write_durably("d/f", pattern(10, 4), 7) == disk_status::ok);  // new content
    BOOST_TEST(!disk.faults_hit("d/f").damaged_at_rest);
    disk.plant("d/p", pattern(10, 5), 8);  // not a fault
    BOOST_TEST(!disk.faults_hit("d/p").damaged_at_rest);
    disk.faults().torn_write_per_mille = 1000;
    BOOST_TEST(disk.write_durably("d/t", pattern(300, 6), 9) == disk_status::ok);
    BOOST_TEST(!disk.faults_hit("d/t").damaged_at_rest);  // visible copy intact until the crash
    disk.crash(crash_kind::keep_disk);
    BOOST_TEST(disk.faults_hit("d/t").damaged_at_rest);
    BOOST_TEST(!disk.faults_hit("d/f").damaged_at_rest);
}
