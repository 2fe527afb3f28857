#define BOOST_TEST_MODULE file
// The header under test comes first: proves it is self-contained.
#include "platform/file.hpp"

#ifndef BOOST_TEST_DYN_LINK  // meson's boost dependency may define it already
#define BOOST_TEST_DYN_LINK
#endif
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "../temporary_directory.hpp"

namespace {

using test_support::temporary_directory;

namespace fs = std::filesystem;

std::vector<std::uint8_t> pattern(std::size_t size, std::uint8_t seed) {
    std::vector<std::uint8_t> bytes(size);
    for (std::size_t i = 0; i < size; i++) bytes[i] = static_cast<std::uint8_t>(i * 31 + seed);
    return bytes;
}

}  // namespace

BOOST_AUTO_TEST_CASE(round_trip) {
    temporary_directory directory{"toastyfs_file_test"};
    const std::string path = directory.file("data");
    const auto data = pattern(100'000, 7);
    std::string error;
    BOOST_REQUIRE_MESSAGE(platform::write_file_atomically(path, data, error), error);
    std::vector<std::uint8_t> read;
    BOOST_REQUIRE_MESSAGE(platform::read_file(path, data.size(), read, error), error);
    BOOST_TEST(read == data);
}

BOOST_AUTO_TEST_CASE(empty_file_round_trip) {
    temporary_directory directory{"toastyfs_file_test"};
    const std::string path = directory.file("empty");
    std::string error;
    BOOST_REQUIRE_MESSAGE(platform::write_file_atomically(path, {}, error), error);
    std::vector<std::uint8_t> read{1, 2, 3};
    BOOST_REQUIRE_MESSAGE(platform::read_file(path, 0, read, error), error);
    BOOST_TEST(read.empty());
}

BOOST_AUTO_TEST_CASE(replaces_existing_content_and_leaves_no_temporary_files) {
    temporary_directory directory{"toastyfs_file_test"};
    const std::string path = directory.file("data");
    std::string error;
    BOOST_REQUIRE(platform::write_file_atomically(path, pattern(5000, 1), error));
    const auto shorter = pattern(10, 2);
    BOOST_REQUIRE_MESSAGE(platform::write_file_atomically(path, shorter, error), error);
    std::vector<std::uint8_t> read;
    BOOST_REQUIRE(platform::read_file(path, 1 << 20, read, error));
    BOOST_TEST(read == shorter);
    BOOST_TEST(directory.entries() == std::vector<std::string>{"data"});
}

BOOST_AUTO_TEST_CASE(missing_directory_is_an_error) {
    temporary_directory directory{"toastyfs_file_test"};
    const std::string path = directory.file("missing/data");
    std::string error;
    BOOST_TEST(!platform::write_file_atomically(path, pattern(10, 3), error));
    BOOST_TEST(!error.empty());
    BOOST_TEST(directory.entries().empty());
}

BOOST_AUTO_TEST_CASE(path_naming_a_directory_is_an_error) {
    temporary_directory directory{"toastyfs_file_test"};
    std::string error;
    BOOST_TEST(!platform::write_file_atomically(directory.path.string() + "/", {}, error));
    BOOST_TEST(!error.empty());
    std::vector<std::uint8_t> read;
    BOOST_TEST(!platform::read_file(directory.path.string(), 1 << 20, read, error));
    BOOST_TEST(!error.empty());
}

BOOST_AUTO_TEST_CASE(read_refuses_oversize_files) {
    temporary_directory directory{"toastyfs_file_test"};
    const std::string path = directory.file("data");
    const auto data = pattern(100, 4);
    std::string error;
    BOOST_REQUIRE(platform::write_file_atomically(path, data, error));
    std::vector<std::uint8_t> read;
    BOOST_TEST(!platform::read_file(path, 99, read, error));
    BOOST_TEST(!error.empty());
    BOOST_TEST(read.empty());
    BOOST_TEST(platform::read_file(path, 100, read, error));
    BOOST_TEST(read == data);
}

BOOST_AUTO_TEST_CASE(read_of_a_missing_file_is_an_error) {
    temporary_directory directory{"toastyfs_file_test"};
    std::string error;
    std::vector<std::uint8_t> read;
    BOOST_TEST(!platform::read_file(directory.file("nothing"), 100, read, error));
    BOOST_TEST(!error.empty());
}
