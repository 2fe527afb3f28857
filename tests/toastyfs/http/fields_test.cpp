#define BOOST_TEST_MODULE http_fields
// The header under test comes first: proves it is self-contained.
#include "toastyfs/http/fields.hpp"

#ifndef BOOST_TEST_DYN_LINK  // meson's boost dependency may define it already
#define BOOST_TEST_DYN_LINK
#endif
#include <boost/test/unit_test.hpp>

#include <string_view>
#include <vector>

namespace {
namespace http = toastyfs::http;
using views = std::vector<std::string_view>;
}  // namespace

BOOST_AUTO_TEST_CASE(find_is_case_insensitive_and_returns_the_first) {
    http::fields f;
    f.add("Content-Type", "text/plain");
    f.add("X-A", "1");
    f.add("x-a", "2");
    BOOST_TEST(f.find("content-type").value() == "text/plain");
    BOOST_TEST(f.find("CONTENT-TYPE").value() == "text/plain");
    BOOST_TEST(f.find("X-a").value() == "1");
    BOOST_TEST(!f.find("Content-Typ").has_value());
    BOOST_TEST(!f.find("").has_value());
    BOOST_TEST(f.count("x-A") == 2u);
    BOOST_TEST(f.find_all("X-A") == (views{"1", "2"}), boost::test_tools::per_element());
    BOOST_TEST(f.find_all("none").empty());
}

BOOST_AUTO_TEST_CASE(set_keeps_one_field_in_the_first_position) {
    http::fields f;
    f.add("A", "1");
    f.add("B", "2");
    f.add("a", "3");
    f.set("A", "new");
    BOOST_REQUIRE_EQUAL(f.size(), 2u);
    BOOST_TEST(f[0].name == "A");
    BOOST_TEST(f[0].value == "new");
    BOOST_TEST(f[1].name == "B");
    f.set("C", "appended");
    BOOST_TEST(f[2].name == "C");
}

BOOST_AUTO_TEST_CASE(erase_removes_every_match) {
    http::fields f;
    f.add("A", "1");
    f.add("B", "2");
    f.add("a", "3");
    BOOST_TEST(f.erase("A") == 2u);
    BOOST_TEST(f.size() == 1u);
    BOOST_TEST(!f.contains("a"));
    BOOST_TEST(f.contains("b"));
    f.clear();
    BOOST_TEST(f.empty());
}

BOOST_AUTO_TEST_CASE(names_differing_only_in_non_letters_are_distinct) {
    http::fields f;
    f.add("X_A", "1");
    BOOST_TEST(!f.find("X-A").has_value());
    f.add("[", "2");
    BOOST_TEST(!f.find("{").has_value());  // '[' + 32 == '{': only A-Z fold
}
