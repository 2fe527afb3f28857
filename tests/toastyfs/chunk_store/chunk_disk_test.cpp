#define BOOST_TEST_MODULE chunk_disk
// The header under test comes first: proves it is self-contained.
#include "toastyfs/chunk_disk.hpp"

#ifndef BOOST_TEST_DYN_LINK  // meson's boost dependency may define it already
#define BOOST_TEST_DYN_LINK
#endif
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "../archetypes.hpp"
#include "toastyfs/chunk_store.hpp"
#include "toastyfs/types.hpp"

namespace {

using toastyfs::disk_status;

// The archetypes (tests/toastyfs/archetypes.hpp): a template that needs more fails to compile here.
using archetype_disk = toastyfs::archetypes::chunk_disk;
using archetype_crypto = toastyfs::archetypes::crypto;

// Missing one requirement each: the concept must say no.
struct disk_without_token_now {
    disk_status write_durably(std::string_view, std::span<const std::uint8_t>, std::uint64_t);
    disk_status read(std::string_view, std::size_t, std::vector<std::uint8_t>&);
    disk_status remove(std::string_view);
    disk_status rename(std::string_view, std::string_view);
    disk_status list(std::string_view, std::vector<std::string>&);
    disk_status stat(std::string_view, toastyfs::disk_file_info&);
    disk_status make_directory(std::string_view);
    disk_status free_bytes(std::uint64_t&);
    static bool is_temporary(std::string_view);
};
static_assert(!toastyfs::chunk_disk<disk_without_token_now>);

struct disk_with_bool_results {
    bool write_durably(std::string_view, std::span<const std::uint8_t>, std::uint64_t);
    bool read(std::string_view, std::size_t, std::vector<std::uint8_t>&);
    bool remove(std::string_view);
    bool rename(std::string_view, std::string_view);
    bool list(std::string_view, std::vector<std::string>&);
    bool stat(std::string_view, toastyfs::disk_file_info&);
    bool make_directory(std::string_view);
    bool free_bytes(std::uint64_t&);
    std::uint64_t token_now();
    static bool is_temporary(std::string_view);
};
static_assert(!toastyfs::chunk_disk<disk_with_bool_results>);
static_assert(!toastyfs::chunk_disk<int>);

}  // namespace

// Every member of the store, compiled against the archetypes.
template class toastyfs::chunk_store<archetype_disk, archetype_crypto>;

BOOST_AUTO_TEST_CASE(store_over_a_failing_disk_reports_errors_instead_of_crashing) {
    archetype_disk disk(0);
    toastyfs::chunk_store<archetype_disk, archetype_crypto> store(disk);
    std::string error;
    BOOST_TEST(!store.open(error));
    BOOST_TEST(error == "make directory chunks: io_error");
}

BOOST_AUTO_TEST_CASE(statuses_have_names) {
    BOOST_TEST(std::string(toastyfs::to_string(disk_status::ok)) == "ok");
    BOOST_TEST(std::string(toastyfs::to_string(disk_status::not_found)) == "not_found");
    BOOST_TEST(std::string(toastyfs::to_string(disk_status::no_space)) == "no_space");
    BOOST_TEST(std::string(toastyfs::to_string(disk_status::io_error)) == "io_error");
    BOOST_TEST(std::string(toastyfs::to_string(disk_status::too_large)) == "too_large");
}
