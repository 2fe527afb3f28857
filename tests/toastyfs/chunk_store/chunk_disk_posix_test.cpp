#define BOOST_TEST_MODULE chunk_disk_posix
// The header under test comes first: proves it is self-contained.
#include "platform/chunk_disk_posix.hpp"

#ifndef BOOST_TEST_DYN_LINK  // meson's boost dependency may define it already
#define BOOST_TEST_DYN_LINK
#endif
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <ostream>
#include <string>
#include <vector>

#include <sys/resource.h>

#include "../../temporary_directory.hpp"

namespace toastyfs {
// Lets Boost.Test print statuses in failure messages.
std::ostream& operator<<(std::ostream& out, disk_status status) { return out << to_string(status); }
}  // namespace toastyfs

namespace {

using test_support::temporary_directory;

namespace fs = std::filesystem;
using platform::posix_chunk_disk;
using toastyfs::disk_status;

std::vector<std::uint8_t> pattern(std::size_t size, std::uint8_t seed) {
    std::vector<std::uint8_t> bytes(size);
    for (std::size_t i = 0; i < size; i++) bytes[i] = static_cast<std::uint8_t>(i * 31 + seed);
    return bytes;
}

constexpr std::uint64_t token_a = 1'700'000'000'123'456'789;  // nanoseconds, late 2023

}  // namespace

BOOST_AUTO_TEST_CASE(write_read_stat_round_trip_with_exact_token) {
    temporary_directory directory{"toastyfs_chunk_disk_posix_test"};
    posix_chunk_disk disk((directory.path / "root").string());  // created when missing
    BOOST_REQUIRE_MESSAGE(disk.is_open(), disk.last_error());
    BOOST_TEST(disk.make_directory("d") == disk_status::ok);
    const auto data = pattern(100'000, 1);
    BOOST_REQUIRE(disk.write_durably("d/file", data, token_a) == disk_status::ok);
    std::vector<std::uint8_t> read{9};
    BOOST_TEST(disk.read("d/file", data.size(), read) == disk_status::ok);
    BOOST_TEST(read == data);
    toastyfs::disk_file_info info;
    BOOST_TEST(disk.stat("d/file", info) == disk_status::ok);
    BOOST_TEST(info.exists);
    BOOST_TEST(info.size == data.size());
    BOOST_TEST(info.token == token_a);
}

BOOST_AUTO_TEST_CASE(replace_leaves_no_temporaries_and_tokens_survive_reopen) {
    temporary_directory directory{"toastyfs_chunk_disk_posix_test"};
    {
        posix_chunk_disk disk(directory.path.string());
        BOOST_TEST(disk.make_directory("d") == disk_status::ok);
        BOOST_TEST(disk.write_durably("d/file", pattern(5000, 1), token_a) == disk_status::ok);
        BOOST_TEST(disk.write_durably("d/file", pattern(10, 2), token_a + 1) == disk_status::ok);
        BOOST_TEST(directory.entries("d") == std::vector<std::string>{"file"});
    }
    posix_chunk_disk reopened(directory.path.string());
    toastyfs::disk_file_info info;
    BOOST_TEST(reopened.stat("d/file", info) == disk_status::ok);
    BOOST_TEST(info.size == 10u);
    BOOST_TEST(info.token == token_a + 1);
    std::vector<std::uint8_t> read;
    BOOST_TEST(reopened.read("d/file", 10, read) == disk_status::ok);
    BOOST_TEST(read == pattern(10, 2));
}

BOOST_AUTO_TEST_CASE(missing_things_are_not_found) {
    temporary_directory directory{"toastyfs_chunk_disk_posix_test"};
    posix_chunk_disk disk(directory.path.string());
    std::vector<std::uint8_t> read;
    std::vector<std::string> names;
    toastyfs::disk_file_info info{true, 1, 1};
    BOOST_TEST(disk.write_durably("missing/file", pattern(10, 1), token_a) == disk_status::not_found);
    BOOST_TEST(disk.read("file", 100, read) == disk_status::not_found);
    BOOST_TEST(disk.stat("file", info) == disk_status::not_found);
    BOOST_TEST(!info.exists);
    BOOST_TEST(disk.remove("file") == disk_status::not_found);
    BOOST_TEST(disk.rename("file", "other") == disk_status::not_found);
    BOOST_TEST(disk.list("missing", names) == disk_status::not_found);
    BOOST_TEST(directory.entries().empty());
}

BOOST_AUTO_TEST_CASE(read_refuses_oversize_files_and_directories) {
    temporary_directory directory{"toastyfs_chunk_disk_posix_test"};
    posix_chunk_disk disk(directory.path.string());
    BOOST_TEST(disk.make_directory("d") == disk_status::ok);
    BOOST_TEST(disk.write_durably("file", pattern(100, 1), token_a) == disk_status::ok);
    std::vector<std::uint8_t> read;
    BOOST_TEST(disk.read("file", 99, read) == disk_status::too_large);
    BOOST_TEST(read.empty());
    BOOST_TEST(disk.read("file", 100, read) == disk_status::ok);
    BOOST_TEST(disk.read("d", 100, read) == disk_status::io_error);
    toastyfs::disk_file_info info;
    BOOST_TEST(disk.stat("d", info) == disk_status::io_error);
    BOOST_TEST(!disk.last_error().empty());
}

BOOST_AUTO_TEST_CASE(remove_rename_and_list) {
    temporary_directory directory{"toastyfs_chunk_disk_posix_test"};
    posix_chunk_disk disk(directory.path.string());
    BOOST_TEST(disk.make_directory("a") == disk_status::ok);
    BOOST_TEST(disk.make_directory("a") == disk_status::ok);  // idempotent
    BOOST_TEST(disk.make_directory("b") == disk_status::ok);
    BOOST_TEST(disk.make_directory("a/sub") == disk_status::ok);
    BOOST_TEST(disk.write_durably("a/z", pattern(3, 1), token_a) == disk_status::ok);
    BOOST_TEST(disk.write_durably("a/y", pattern(4, 2), token_a + 5) == disk_status::ok);
    std::vector<std::string> names;
    BOOST_TEST(disk.list("a", names) == disk_status::ok);
    BOOST_TEST(names == (std::vector<std::string>{"y", "z"}));  // sorted, files only

    BOOST_TEST(disk.rename("a/y", "b/moved") == disk_status::ok);  // across directories
    toastyfs::disk_file_info info;
    BOOST_TEST(disk.stat("b/moved", info) == disk_status::ok);
    BOOST_TEST(info.token == token_a + 5);                         // the token moves with the file
    BOOST_TEST(disk.rename("a/z", "b/moved") == disk_status::ok);  // replaces
    BOOST_TEST(disk.stat("b/moved", info) == disk_status::ok);
    BOOST_TEST(info.size == 3u);
    BOOST_TEST(disk.remove("b/moved") == disk_status::ok);
    BOOST_TEST(disk.remove("b/moved") == disk_status::not_found);
    BOOST_TEST(disk.list("a", names) == disk_status::ok);
    BOOST_TEST(names.empty());
}

BOOST_AUTO_TEST_CASE(names_that_could_escape_the_root_are_refused) {
    temporary_directory directory{"toastyfs_chunk_disk_posix_test"};
    posix_chunk_disk disk((directory.path / "root").string());
    for (const char* name : {"", "/etc/passwd", "../outside", "a/../../outside", "a//b", "./x", "x/"}) {
        BOOST_TEST(disk.write_durably(name, pattern(1, 1), token_a) == disk_status::io_error, name);
        BOOST_TEST(disk.make_directory(name) == disk_status::io_error, name);
    }
    BOOST_TEST(directory.entries() == std::vector<std::string>{"root"});
    BOOST_TEST(directory.entries("root").empty());
}

BOOST_AUTO_TEST_CASE(make_directory_over_a_file_is_an_error) {
    temporary_directory directory{"toastyfs_chunk_disk_posix_test"};
    posix_chunk_disk disk(directory.path.string());
    BOOST_TEST(disk.write_durably("file", pattern(1, 1), token_a) == disk_status::ok);
    BOOST_TEST(disk.make_directory("file") == disk_status::io_error);
}

BOOST_AUTO_TEST_CASE(unusable_root_makes_every_call_an_io_error) {
    temporary_directory directory{"toastyfs_chunk_disk_posix_test"};
    std::ofstream(directory.path / "plain") << "not a directory";
    posix_chunk_disk disk((directory.path / "plain").string());
    BOOST_TEST(!disk.is_open());
    BOOST_TEST(!disk.last_error().empty());
    std::vector<std::uint8_t> read;
    std::vector<std::string> names;
    toastyfs::disk_file_info info;
    std::uint64_t free = 0;
    BOOST_TEST(disk.write_durably("f", pattern(1, 1), token_a) == disk_status::io_error);
    BOOST_TEST(disk.read("f", 10, read) == disk_status::io_error);
    BOOST_TEST(disk.remove("f") == disk_status::io_error);
    BOOST_TEST(disk.rename("f", "g") == disk_status::io_error);
    BOOST_TEST(disk.list("d", names) == disk_status::io_error);
    BOOST_TEST(disk.stat("f", info) == disk_status::io_error);
    BOOST_TEST(disk.make_directory("d") == disk_status::io_error);
    BOOST_TEST(disk.free_bytes(free) == disk_status::io_error);
}

BOOST_AUTO_TEST_CASE(file_size_limit_is_no_space_and_leaves_nothing_behind) {
    temporary_directory directory{"toastyfs_chunk_disk_posix_test"};
    posix_chunk_disk disk(directory.path.string());
    BOOST_TEST(disk.write_durably("old", pattern(10, 1), token_a) == disk_status::ok);
    // RLIMIT_FSIZE makes write() fail with EFBIG, like a file system that cannot hold the file.
    const auto previous_handler = std::signal(SIGXFSZ, SIG_IGN);
    struct rlimit previous {};
    ::getrlimit(RLIMIT_FSIZE, &previous);
    struct rlimit limit = previous;
    limit.rlim_cur = 4096;
    BOOST_REQUIRE(::setrlimit(RLIMIT_FSIZE, &limit) == 0);
    const disk_status status = disk.write_durably("old", pattern(10'000, 2), token_a + 1);
    ::setrlimit(RLIMIT_FSIZE, &previous);
    std::signal(SIGXFSZ, previous_handler);
    BOOST_TEST(status == disk_status::no_space);
    BOOST_TEST(directory.entries() == std::vector<std::string>{"old"});  // temporary removed
    std::vector<std::uint8_t> read;
    BOOST_TEST(disk.read("old", 100, read) == disk_status::ok);
    BOOST_TEST(read == pattern(10, 1));  // old content untouched
}

BOOST_AUTO_TEST_CASE(tokens_the_file_system_cannot_store_fail_cleanly) {
    temporary_directory directory{"toastyfs_chunk_disk_posix_test"};
    posix_chunk_disk disk(directory.path.string());
    const std::uint64_t token = std::numeric_limits<std::uint64_t>::max();  // year 2554
    const disk_status status = disk.write_durably("f", pattern(1, 1), token);
    toastyfs::disk_file_info info;
    if (status == disk_status::ok) {
        BOOST_TEST(disk.stat("f", info) == disk_status::ok);
        BOOST_TEST(info.token == token);
    } else {
        BOOST_TEST(status == disk_status::io_error);
        BOOST_TEST(directory.entries().empty());
    }
}

BOOST_AUTO_TEST_CASE(free_bytes_token_now_and_temporary_names) {
    temporary_directory directory{"toastyfs_chunk_disk_posix_test"};
    posix_chunk_disk disk(directory.path.string());
    std::uint64_t free = 0;
    BOOST_TEST(disk.free_bytes(free) == disk_status::ok);
    BOOST_TEST(free > 0u);
    const auto now = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count());
    const std::uint64_t token = disk.token_now();
    BOOST_TEST(token + 10'000'000'000u > now);  // within ten seconds
    BOOST_TEST(token < now + 10'000'000'000u);

    const std::string chunk(64, 'a');
    BOOST_TEST(!posix_chunk_disk::is_temporary(chunk));
    BOOST_TEST(posix_chunk_disk::is_temporary(chunk + ".tmp-1f-0"));
}

BOOST_AUTO_TEST_CASE(failed_rename_removes_its_temporary) {
    temporary_directory directory{"toastyfs_chunk_disk_posix_test"};
    posix_chunk_disk disk(directory.path.string());
    BOOST_TEST(disk.make_directory("target") == disk_status::ok);
    BOOST_TEST(disk.write_durably("target/inner", pattern(1, 1), token_a) == disk_status::ok);
    // Renaming a file over a non-empty directory fails after the temporary is complete.
    BOOST_TEST(disk.write_durably("target", pattern(1, 1), token_a) == disk_status::io_error);
    BOOST_TEST(directory.entries() == std::vector<std::string>{"target"});
}
