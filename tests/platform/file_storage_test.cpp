#define BOOST_TEST_MODULE file_storage
// The header under test comes first: proves it is self-contained.
#include "platform/file_storage.hpp"

#ifndef BOOST_TEST_DYN_LINK  // meson's boost dependency may define it already
#define BOOST_TEST_DYN_LINK
#endif
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "../temporary_directory.hpp"

namespace {

using test_support::temporary_directory;

namespace fs = std::filesystem;
using bytes = std::vector<std::uint8_t>;

bytes pattern(std::size_t size, std::uint8_t seed) {
    bytes out(size);
    for (std::size_t i = 0; i < size; ++i) out[i] = static_cast<std::uint8_t>(seed + i * 7);
    return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(zones_come_back_after_reopen) {
    temporary_directory dir{"toastyfs_file_storage_test"};
    const vsr::zone zones[] = {vsr::zone::superblock, vsr::zone::journal_headers, vsr::zone::journal_bodies,
                               vsr::zone::checkpoint_0, vsr::zone::checkpoint_1};
    {
        platform::file_storage storage;
        std::string error;
        BOOST_TEST_REQUIRE(storage.open(dir.path.string(), error), error);
        BOOST_TEST(storage.persistent());
        for (std::size_t i = 0; i < std::size(zones); ++i) {
            BOOST_TEST_REQUIRE(storage.write(zones[i], 100 * i, pattern(300, static_cast<std::uint8_t>(i))));
        }
        BOOST_TEST_REQUIRE(storage.sync());
    }
    // Headers and bodies share one file, so one fdatasync covers both (file_storage.hpp).
    BOOST_TEST(
        (dir.entries() == std::vector<std::string>{"checkpoint_0", "checkpoint_1", "journal", "lock", "superblock"}));
    BOOST_TEST(fs::file_size(dir.path / "journal") == platform::file_storage::journal_bodies_offset + 200 + 300);

    platform::file_storage storage;
    std::string error;
    BOOST_TEST_REQUIRE(storage.open(dir.path.string(), error), error);
    for (std::size_t i = 0; i < std::size(zones); ++i) {
        bytes back(300);
        BOOST_TEST_REQUIRE(storage.read(zones[i], 100 * i, back));
        BOOST_TEST(back == pattern(300, static_cast<std::uint8_t>(i)), "zone " << i);
        bytes past(10);  // past the end of what was written: zeros
        BOOST_TEST_REQUIRE(storage.read(zones[i], 100 * i + 300, past));
        BOOST_TEST(past == bytes(10, 0));
    }
    BOOST_TEST(storage.size(vsr::zone::journal_bodies) == 500u);
    BOOST_TEST(storage.size(vsr::zone::journal_headers) == platform::file_storage::journal_bodies_offset);
    BOOST_TEST(storage.size(vsr::zone::checkpoint_1) == 700u);
}

BOOST_AUTO_TEST_CASE(a_second_process_is_locked_out) {
    temporary_directory dir{"toastyfs_file_storage_test"};
    platform::file_storage first;
    std::string error;
    BOOST_TEST_REQUIRE(first.open(dir.path.string(), error), error);
    platform::file_storage second;
    BOOST_TEST(!second.open(dir.path.string(), error));  // flock is per open file description
    BOOST_TEST(error.find("cannot lock") != std::string::npos, error);
}

BOOST_AUTO_TEST_CASE(an_older_layout_is_refused_not_misread) {
    // Before headers and bodies shared `journal`, each had its own file. Reading such a
    // directory as the new layout would find no records and call the disk damaged.
    for (const char* old_file : {"journal_bodies", "journal_headers"}) {
        temporary_directory dir{"toastyfs_file_storage_test"};
        std::ofstream(dir.path / old_file) << "old";
        platform::file_storage storage;
        std::string error;
        BOOST_TEST(!storage.open(dir.path.string(), error));
        BOOST_TEST(error.find("older layout") != std::string::npos, error);
        BOOST_TEST(error.find("--recovering") != std::string::npos, error);
        BOOST_TEST(!fs::exists(dir.path / "journal"));  // nothing created beside it
    }
}
