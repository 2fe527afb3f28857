#define BOOST_TEST_MODULE http_range
// The header under test comes first: proves it is self-contained.
#include "toastyfs/http/range.hpp"

#ifndef BOOST_TEST_DYN_LINK  // meson's boost dependency may define it already
#define BOOST_TEST_DYN_LINK
#endif
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace toastyfs::http {
inline std::ostream& boost_test_print_type(std::ostream& os, range_outcome o) { return os << to_string(o); }
}  // namespace toastyfs::http

namespace {
namespace http = toastyfs::http;
using http::range_outcome;

void check_satisfiable(std::string_view value, std::uint64_t size, std::uint64_t first, std::uint64_t last) {
    BOOST_TEST_CONTEXT(value << " on " << size << " bytes") {
        const http::range_resolution r = http::resolve_range(value, size);
        BOOST_TEST(r.outcome == range_outcome::satisfiable);
        BOOST_TEST(r.range.first == first);
        BOOST_TEST(r.range.last == last);
    }
}

range_outcome outcome_of(std::string_view value, std::uint64_t size) {
    return http::resolve_range(value, size).outcome;
}

}  // namespace

BOOST_AUTO_TEST_CASE(single_ranges) {
    check_satisfiable("bytes=0-0", 10, 0, 0);
    check_satisfiable("bytes=0-9", 10, 0, 9);
    check_satisfiable("bytes=2-5", 10, 2, 5);
    check_satisfiable("bytes=9-9", 10, 9, 9);
    check_satisfiable("bytes=5-", 10, 5, 9);
    check_satisfiable("bytes=0-", 1, 0, 0);
    check_satisfiable("bytes=-3", 10, 7, 9);
    check_satisfiable("bytes=-10", 10, 0, 9);
    check_satisfiable("Bytes=1-2", 10, 1, 2);    // the unit is case-insensitive
    check_satisfiable("bytes=0-0, ", 10, 0, 0);  // empty list elements are ignored
    check_satisfiable("bytes= 3-4", 10, 3, 4);
    BOOST_TEST(http::resolve_range("bytes=2-5", 10).range.size() == 4u);
}

BOOST_AUTO_TEST_CASE(ranges_are_clamped_to_the_object) {
    check_satisfiable("bytes=5-100", 10, 5, 9);
    check_satisfiable("bytes=-100", 10, 0, 9);
    check_satisfiable("bytes=0-99999999999999999999999", 10, 0, 9);  // saturates
    check_satisfiable("bytes=-99999999999999999999999", 10, 0, 9);
    check_satisfiable("bytes=0-18446744073709551615", UINT64_MAX, 0, UINT64_MAX - 1);
}

BOOST_AUTO_TEST_CASE(unsatisfiable_ranges_are_416) {
    BOOST_TEST(outcome_of("bytes=10-", 10) == range_outcome::unsatisfiable);
    BOOST_TEST(outcome_of("bytes=10-20", 10) == range_outcome::unsatisfiable);
    BOOST_TEST(outcome_of("bytes=99999999999999999999999-", 10) == range_outcome::unsatisfiable);
    BOOST_TEST(outcome_of("bytes=-0", 10) == range_outcome::unsatisfiable);
    // An empty object satisfies no range.
    BOOST_TEST(outcome_of("bytes=0-0", 0) == range_outcome::unsatisfiable);
    BOOST_TEST(outcome_of("bytes=0-", 0) == range_outcome::unsatisfiable);
    BOOST_TEST(outcome_of("bytes=-5", 0) == range_outcome::unsatisfiable);
    BOOST_TEST(outcome_of("bytes=-0", 0) == range_outcome::unsatisfiable);
}

BOOST_AUTO_TEST_CASE(invalid_or_multiple_ranges_are_ignored) {
    const std::vector<std::string> ignored = {
        "",
        "bytes",
        "bytes=",
        "bytes=-",
        "bytes=5",
        "bytes=a-b",
        "bytes=1-a",
        "bytes=5-2",
        "bytes=1 -2",
        "bytes=1- 2",
        "bytes=--1",
        "bytes=+1-2",
        "items=0-1",
        "bytes =0-1",
        "bytes=0-1,3-4",
        "bytes=0-1, 0-1",
        "bytes=-1,-2",
        "bytes=,",
        "bytes=0x1-2",
        "bytes=1-2-3",
    };
    for (const std::string& value : ignored) {
        BOOST_TEST_CONTEXT("value: " << value) { BOOST_TEST(outcome_of(value, 10) == range_outcome::ignore); }
    }
    BOOST_TEST(outcome_of("bytes=5-2", 0) == range_outcome::ignore);  // syntax first, then size
}

BOOST_AUTO_TEST_CASE(content_range_values) {
    BOOST_TEST(http::content_range({0, 0}, 10) == "bytes 0-0/10");
    BOOST_TEST(http::content_range({5, 9}, 10) == "bytes 5-9/10");
    BOOST_TEST(http::content_range_unsatisfiable(10) == "bytes */10");
    BOOST_TEST(http::content_range_unsatisfiable(0) == "bytes */0");
}
