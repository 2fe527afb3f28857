#define BOOST_TEST_MODULE metadata_disk_posix
// The header under test comes first: proves it is self-contained.
#include "platform/metadata_disk_posix.hpp"

#ifndef BOOST_TEST_DYN_LINK  // meson's boost dependency may define it already
#define BOOST_TEST_DYN_LINK
#endif
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "toastyfs/metadata_codec.hpp"
#include "toastyfs/metadata_state_machine.hpp"

#include "../temporary_directory.hpp"

namespace toastyfs {
inline std::ostream& boost_test_print_type(std::ostream& os, metadata_io v) {
    switch (v) {
        case metadata_io::ok: return os << "ok";
        case metadata_io::not_found: return os << "not_found";
        case metadata_io::no_space: return os << "no_space";
        case metadata_io::io_error: return os << "io_error";
    }
    return os << "metadata_io(" << static_cast<int>(v) << ")";
}
inline std::ostream& boost_test_print_type(std::ostream& os, status v) { return os << to_string(v); }
}  // namespace toastyfs

namespace {

using test_support::temporary_directory;

namespace fs = std::filesystem;
using toastyfs::metadata_io;
using bytes = std::vector<std::uint8_t>;

bytes pattern(std::size_t size, std::uint8_t seed) {
    bytes out(size);
    for (std::size_t i = 0; i < size; i++) out[i] = static_cast<std::uint8_t>(i * 31 + seed);
    return out;
}

bytes text(std::string_view s) { return bytes(s.begin(), s.end()); }

std::unique_ptr<toastyfs::metadata_file> open_file(platform::posix_metadata_disk& disk, std::string_view name,
                                                   bool create) {
    metadata_io status = metadata_io::io_error;
    auto file = disk.open(name, create, status);
    BOOST_TEST_REQUIRE(status == metadata_io::ok, disk.last_error());
    BOOST_TEST_REQUIRE(file != nullptr);
    return file;
}

/// The whole file, through the interface.
bytes contents(toastyfs::metadata_file& file) {
    std::uint64_t size = 0;
    BOOST_TEST_REQUIRE(file.size(size) == metadata_io::ok);
    bytes out(static_cast<std::size_t>(size));
    std::size_t read = 0;
    BOOST_TEST_REQUIRE(file.read(0, out, read) == metadata_io::ok);
    BOOST_TEST_REQUIRE(read == out.size());
    return out;
}

std::uintmax_t size_on_disk(const fs::path& path) {
    std::error_code error;
    const auto size = fs::file_size(path, error);
    return error ? 0 : size;
}

}  // namespace

BOOST_AUTO_TEST_CASE(write_then_read_back_with_zeros_past_the_end) {
    temporary_directory directory{"toastyfs_metadata_disk_test"};
    platform::posix_metadata_disk disk(directory.path.string());
    BOOST_TEST_REQUIRE(disk.is_open(), disk.last_error());
    auto file = open_file(disk, "data", true);
    const bytes data = pattern(100'000, 3);  // more than one pwrite page, fewer than a short write
    BOOST_TEST_REQUIRE(file->write(0, data) == metadata_io::ok);

    bytes out(data.size());
    std::size_t read = 0;
    BOOST_TEST(file->read(0, out, read) == metadata_io::ok);
    BOOST_TEST(read == data.size());
    BOOST_TEST(out == data);

    // Straddling the end: 10 bytes are there, the other 10 read as zero.
    out.assign(20, 0xAA);
    BOOST_TEST(file->read(data.size() - 10, out, read) == metadata_io::ok);
    BOOST_TEST(read == 10u);
    BOOST_TEST((bytes(out.begin(), out.begin() + 10) == bytes(data.end() - 10, data.end())));
    BOOST_TEST((bytes(out.begin() + 10, out.end()) == bytes(10, 0)));

    // Wholly past the end.
    out.assign(16, 0xAA);
    read = 99;
    BOOST_TEST(file->read(data.size() + 1000, out, read) == metadata_io::ok);
    BOOST_TEST(read == 0u);
    BOOST_TEST((out == bytes(16, 0)));

    // Writing past the end leaves a gap that reads as zero, and counts as read.
    BOOST_TEST_REQUIRE(file->write(data.size() + 100, text("tail")) == metadata_io::ok);
    std::uint64_t size = 0;
    BOOST_TEST(file->size(size) == metadata_io::ok);
    BOOST_TEST(size == data.size() + 104);
    out.assign(104, 0xAA);
    BOOST_TEST(file->read(data.size(), out, read) == metadata_io::ok);
    BOOST_TEST(read == 104u);
    BOOST_TEST((bytes(out.begin(), out.begin() + 100) == bytes(100, 0)));
    BOOST_TEST((bytes(out.begin() + 100, out.end()) == text("tail")));

    // Overwriting in the middle changes only those bytes.
    BOOST_TEST_REQUIRE(file->write(5, text("XYZ")) == metadata_io::ok);
    out.assign(10, 0);
    BOOST_TEST(file->read(0, out, read) == metadata_io::ok);
    bytes expected(data.begin(), data.begin() + 10);
    std::copy_n("XYZ", 3, expected.begin() + 5);
    BOOST_TEST(out == expected);
}

BOOST_AUTO_TEST_CASE(truncate_size_and_sync) {
    temporary_directory directory{"toastyfs_metadata_disk_test"};
    platform::posix_metadata_disk disk(directory.path.string());
    BOOST_TEST_REQUIRE(disk.is_open(), disk.last_error());
    auto file = open_file(disk, "data", true);
    std::uint64_t size = 99;
    BOOST_TEST(file->size(size) == metadata_io::ok);
    BOOST_TEST(size == 0u);
    BOOST_TEST_REQUIRE(file->write(0, pattern(5000, 1)) == metadata_io::ok);
    BOOST_TEST(file->sync() == metadata_io::ok);
    BOOST_TEST(file->size(size) == metadata_io::ok);
    BOOST_TEST(size == 5000u);
    BOOST_TEST(size_on_disk(directory.path / "data") == 5000u);

    BOOST_TEST(file->truncate(1000) == metadata_io::ok);
    BOOST_TEST(file->size(size) == metadata_io::ok);
    BOOST_TEST(size == 1000u);
    BOOST_TEST(size_on_disk(directory.path / "data") == 1000u);
    BOOST_TEST(contents(*file) == pattern(1000, 1));

    // Growing by truncate: the new bytes read as zero.
    BOOST_TEST(file->truncate(1200) == metadata_io::ok);
    bytes expected = pattern(1000, 1);
    expected.resize(1200, 0);
    BOOST_TEST(contents(*file) == expected);
    BOOST_TEST(file->truncate(0) == metadata_io::ok);
    BOOST_TEST(file->size(size) == metadata_io::ok);
    BOOST_TEST(size == 0u);
    BOOST_TEST(file->sync() == metadata_io::ok);
}

BOOST_AUTO_TEST_CASE(reopening_sees_the_data) {
    temporary_directory directory{"toastyfs_metadata_disk_test"};
    const bytes data = pattern(3000, 9);
    {
        platform::posix_metadata_disk disk(directory.path.string());
        BOOST_TEST_REQUIRE(disk.is_open(), disk.last_error());
        auto file = open_file(disk, "data", true);
        BOOST_TEST_REQUIRE(file->write(0, data) == metadata_io::ok);
        BOOST_TEST_REQUIRE(file->sync() == metadata_io::ok);
        // Open again through the same disk, without create: the same bytes.
        auto again = open_file(disk, "data", false);
        BOOST_TEST(contents(*again) == data);
    }
    // A new disk on the same directory; open with create keeps what is there (no truncation).
    platform::posix_metadata_disk disk(directory.path.string());
    BOOST_TEST_REQUIRE(disk.is_open(), disk.last_error());
    BOOST_TEST(disk.exists("data"));
    BOOST_TEST(contents(*open_file(disk, "data", false)) == data);
    BOOST_TEST(contents(*open_file(disk, "data", true)) == data);
}

BOOST_AUTO_TEST_CASE(open_without_create_of_a_missing_file_is_not_found) {
    temporary_directory directory{"toastyfs_metadata_disk_test"};
    platform::posix_metadata_disk disk(directory.path.string());
    BOOST_TEST_REQUIRE(disk.is_open(), disk.last_error());
    metadata_io status = metadata_io::ok;
    BOOST_TEST(disk.open("missing", false, status) == nullptr);
    BOOST_TEST(status == metadata_io::not_found);
    BOOST_TEST(!disk.last_error().empty());
    BOOST_TEST(!disk.exists("missing"));
    BOOST_TEST(!fs::exists(directory.path / "missing"));  // and it was not created on the way

    BOOST_TEST(disk.open("missing", true, status) != nullptr);
    BOOST_TEST(status == metadata_io::ok);
    BOOST_TEST(disk.exists("missing"));
    BOOST_TEST(fs::is_regular_file(directory.path / "missing"));
}

BOOST_AUTO_TEST_CASE(remove_is_not_found_the_second_time) {
    temporary_directory directory{"toastyfs_metadata_disk_test"};
    platform::posix_metadata_disk disk(directory.path.string());
    BOOST_TEST_REQUIRE(disk.is_open(), disk.last_error());
    auto file = open_file(disk, "data", true);
    BOOST_TEST_REQUIRE(file->write(0, text("still here")) == metadata_io::ok);
    BOOST_TEST(disk.remove("data") == metadata_io::ok);
    BOOST_TEST(!disk.exists("data"));
    BOOST_TEST(!fs::exists(directory.path / "data"));
    BOOST_TEST(disk.remove("data") == metadata_io::not_found);
    BOOST_TEST(disk.remove("never") == metadata_io::not_found);
    // A file removed while open stays readable through its handle, as on memory_metadata_disk.
    BOOST_TEST(contents(*file) == text("still here"));
    metadata_io status = metadata_io::ok;
    BOOST_TEST(disk.open("data", false, status) == nullptr);
    BOOST_TEST(status == metadata_io::not_found);
}

BOOST_AUTO_TEST_CASE(rename_replaces_the_target) {
    temporary_directory directory{"toastyfs_metadata_disk_test"};
    platform::posix_metadata_disk disk(directory.path.string());
    BOOST_TEST_REQUIRE(disk.is_open(), disk.last_error());
    BOOST_TEST_REQUIRE(open_file(disk, "old", true)->write(0, text("old content")) == metadata_io::ok);
    BOOST_TEST_REQUIRE(open_file(disk, "new", true)->write(0, text("new")) == metadata_io::ok);

    BOOST_TEST(disk.rename("new", "old") == metadata_io::ok);
    BOOST_TEST(!disk.exists("new"));
    BOOST_TEST(disk.exists("old"));
    BOOST_TEST(contents(*open_file(disk, "old", false)) == text("new"));  // replaced, not merged
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(directory.path)) names.push_back(entry.path().filename().string());
    BOOST_TEST(names == std::vector<std::string>{"old"});

    // To a name that is free.
    BOOST_TEST(disk.rename("old", "fresh") == metadata_io::ok);
    BOOST_TEST(!disk.exists("old"));
    BOOST_TEST(contents(*open_file(disk, "fresh", false)) == text("new"));

    BOOST_TEST(disk.rename("missing", "fresh") == metadata_io::not_found);
    BOOST_TEST(contents(*open_file(disk, "fresh", false)) == text("new"));  // untouched
}

BOOST_AUTO_TEST_CASE(names_that_are_not_plain_are_rejected) {
    temporary_directory directory{"toastyfs_metadata_disk_test"};
    const fs::path inside = directory.path / "store";
    platform::posix_metadata_disk disk(inside.string());
    BOOST_TEST_REQUIRE(disk.is_open(), disk.last_error());
    BOOST_TEST_REQUIRE(open_file(disk, "good", true) != nullptr);
    fs::create_directory(inside / "sub");
    std::ofstream(directory.path / "outside") << "x";
    std::ofstream(inside / "sub" / "nested") << "x";

    using namespace std::string_view_literals;
    for (const std::string_view name :
         {""sv, "."sv, ".."sv, "../outside"sv, "sub/nested"sv, "/etc/passwd"sv, "good/"sv, "go\0od"sv}) {
        BOOST_TEST_CONTEXT("name " << std::string(name)) {
            for (const bool create : {false, true}) {
                metadata_io status = metadata_io::ok;
                BOOST_TEST(disk.open(name, create, status) == nullptr);
                BOOST_TEST(status == metadata_io::io_error);
            }
            BOOST_TEST(disk.remove(name) == metadata_io::io_error);
            BOOST_TEST(disk.rename(name, "other") == metadata_io::io_error);
            BOOST_TEST(disk.rename("good", name) == metadata_io::io_error);
            BOOST_TEST(!disk.exists(name));
        }
    }
    BOOST_TEST(!disk.last_error().empty());
    // Nothing escaped or moved: the files are where they were, and "other" was never made.
    BOOST_TEST(fs::exists(directory.path / "outside"));
    BOOST_TEST(fs::exists(inside / "sub" / "nested"));
    BOOST_TEST(disk.exists("good"));
    BOOST_TEST(!disk.exists("other"));
    BOOST_TEST(!fs::exists(inside / "go"));
}

BOOST_AUTO_TEST_CASE(only_regular_files_open) {
    temporary_directory directory{"toastyfs_metadata_disk_test"};
    platform::posix_metadata_disk disk(directory.path.string());
    BOOST_TEST_REQUIRE(disk.is_open(), disk.last_error());
    fs::create_directory(directory.path / "sub");
    fs::create_symlink("/dev/null", directory.path / "device");  // links are followed, as by SQLite's own VFS
    for (const char* name : {"sub", "device"}) {
        BOOST_TEST_CONTEXT("name " << name) {
            for (const bool create : {false, true}) {
                metadata_io status = metadata_io::ok;
                BOOST_TEST(disk.open(name, create, status) == nullptr);
                BOOST_TEST(status == metadata_io::io_error);
            }
        }
    }
    BOOST_TEST(fs::is_directory(directory.path / "sub"));
    BOOST_TEST(fs::is_symlink(directory.path / "device"));  // a failed open(create) removes only what it made
}

BOOST_AUTO_TEST_CASE(missing_directories_are_created) {
    temporary_directory directory{"toastyfs_metadata_disk_test"};
    const fs::path nested = directory.path / "a" / "b" / "c";
    {
        platform::posix_metadata_disk disk(nested.string() + "/");
        BOOST_TEST_REQUIRE(disk.is_open(), disk.last_error());
        BOOST_TEST(disk.last_error().empty());
        BOOST_TEST(fs::is_directory(nested));
        BOOST_TEST_REQUIRE(open_file(disk, "data", true)->write(0, text("x")) == metadata_io::ok);
    }
    platform::posix_metadata_disk again(nested.string());  // exists already: opened as it is
    BOOST_TEST_REQUIRE(again.is_open(), again.last_error());
    BOOST_TEST(again.directory() == nested.string());
    BOOST_TEST(again.exists("data"));
}

BOOST_AUTO_TEST_CASE(a_directory_that_cannot_be_created_is_reported) {
    temporary_directory directory{"toastyfs_metadata_disk_test"};
    std::ofstream(directory.path / "plain") << "a file, not a directory";
    for (const fs::path& path : {directory.path / "plain" / "store", directory.path / "plain"}) {
        BOOST_TEST_CONTEXT("path " << path) {
            platform::posix_metadata_disk disk(path.string());
            BOOST_TEST(!disk.is_open());
            BOOST_TEST(!disk.last_error().empty());
            metadata_io status = metadata_io::ok;
            BOOST_TEST(disk.open("data", true, status) == nullptr);
            BOOST_TEST(status == metadata_io::io_error);
            BOOST_TEST(disk.remove("data") == metadata_io::io_error);
            BOOST_TEST(disk.rename("data", "other") == metadata_io::io_error);
            BOOST_TEST(!disk.exists("data"));
        }
    }
    platform::posix_metadata_disk empty("");
    BOOST_TEST(!empty.is_open());
    BOOST_TEST(!empty.last_error().empty());
}

BOOST_AUTO_TEST_CASE(metadata_state_machine_runs_on_the_disk) {
    using namespace toastyfs;
    temporary_directory directory{"toastyfs_metadata_disk_test"};
    platform::posix_metadata_disk disk(directory.path.string());
    BOOST_TEST_REQUIRE(disk.is_open(), disk.last_error());
    metadata_state_machine machine(metadata_options{}, &disk);
    BOOST_TEST_REQUIRE(!machine.failed(), machine.failure());

    std::uint64_t op = 0;
    const auto run = [&](const auto& operation) {
        bytes out;
        ++op;
        machine.execute(vsr::operation_context{op, 0, 1'000'000'000 * op, 1}, encode(operation), out);
        return out;
    };
    const auto put = [&](std::string key, std::string_view data) {
        put_object_operation operation;
        operation.key = std::move(key);
        operation.size = data.size();
        operation.md5.fill(static_cast<std::uint8_t>(data.size()));
        operation.content_type = "text/plain";
        operation.inline_data = text(data);
        const auto result = decode_put_object_result(run(operation));
        BOOST_TEST_REQUIRE(result.has_value());
        return *result;
    };
    BOOST_TEST((put("a", "first") == put_object_result{status::ok, 1, 1'000'000'000}));
    BOOST_TEST((put("b", "second") == put_object_result{status::ok, 2, 2'000'000'000}));
    BOOST_TEST((put("a", "third!") == put_object_result{status::ok, 3, 3'000'000'000}));

    const auto got = decode_object_result(run(get_object_operation{"a"}));
    BOOST_TEST_REQUIRE(got.has_value());
    BOOST_TEST(got->result_status == status::ok);
    BOOST_TEST(got->version == 3u);
    BOOST_TEST(got->size == 6u);
    BOOST_TEST(got->content_type == "text/plain");
    BOOST_TEST(got->inline_data == text("third!"));
    const auto missing = decode_object_result(run(get_object_operation{"nothing"}));
    BOOST_TEST_REQUIRE(missing.has_value());
    BOOST_TEST(missing->result_status == status::not_found);
    BOOST_TEST(machine.object_count() == 2u);

    // The puts sit in the open transaction; snapshot_begin() commits them to the WAL, synced.
    const std::uintmax_t wal_before = size_on_disk(directory.path / "metadata.db-wal");
    const std::uint64_t syncs_before = machine.disk_counters().syncs;
    machine.snapshot_begin();
    BOOST_TEST_REQUIRE(!machine.failed(), machine.failure());
    BOOST_TEST(fs::is_regular_file(directory.path / "metadata.db"));
    BOOST_TEST(fs::is_regular_file(directory.path / "metadata.db-wal"));
    BOOST_TEST(size_on_disk(directory.path / "metadata.db") > 0u);
    BOOST_TEST(size_on_disk(directory.path / "metadata.db-wal") > wal_before);
    BOOST_TEST(machine.disk_counters().syncs > syncs_before);
    BOOST_TEST(machine.disk_counters().io_errors == 0u);
    BOOST_TEST(disk.exists("metadata.db-wal"));

    // The snapshot read back from the files has the objects.
    bytes snapshot;
    bool done = false;
    for (int step = 0; step < 100 && !done; step++) done = machine.snapshot_step(snapshot, 4096);
    BOOST_TEST_REQUIRE(done);
    BOOST_TEST_REQUIRE(!machine.failed(), machine.failure());
    metadata_state_machine copy;
    BOOST_TEST_REQUIRE(copy.restore(snapshot));
    BOOST_TEST(copy.object_count() == 2u);
    BOOST_TEST(copy.digest() == machine.digest());
}
