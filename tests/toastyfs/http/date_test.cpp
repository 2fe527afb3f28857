#define BOOST_TEST_MODULE http_date
// The header under test comes first: proves it is self-contained.
#include "toastyfs/http/date.hpp"

#ifndef BOOST_TEST_DYN_LINK  // meson's boost dependency may define it already
#define BOOST_TEST_DYN_LINK
#endif
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace {
namespace http = toastyfs::http;
constexpr std::int64_t ns = 1'000'000'000;

struct known_time {
    std::int64_t unix_ns;
    std::string_view imf;
    std::string_view iso;
};

// Cross-checked with Python's datetime.
const std::vector<known_time> known = {
    {0, "Thu, 01 Jan 1970 00:00:00 GMT", "1970-01-01T00:00:00.000Z"},
    {784111777 * ns, "Sun, 06 Nov 1994 08:49:37 GMT", "1994-11-06T08:49:37.000Z"},
    {951782400 * ns, "Tue, 29 Feb 2000 00:00:00 GMT", "2000-02-29T00:00:00.000Z"},
    {951868799 * ns + 999'999'999, "Tue, 29 Feb 2000 23:59:59 GMT", "2000-02-29T23:59:59.999Z"},
    {2147483647 * ns, "Tue, 19 Jan 2038 03:14:07 GMT", "2038-01-19T03:14:07.000Z"},
    {2147483648 * ns, "Tue, 19 Jan 2038 03:14:08 GMT", "2038-01-19T03:14:08.000Z"},
    {1795701600 * ns, "Thu, 26 Nov 2026 14:00:00 GMT", "2026-11-26T14:00:00.000Z"},
    {1795701600 * ns + 123'456'789, "Thu, 26 Nov 2026 14:00:00 GMT", "2026-11-26T14:00:00.123Z"},
    {4107542400 * ns, "Mon, 01 Mar 2100 00:00:00 GMT", "2100-03-01T00:00:00.000Z"},  // 2100: not leap
    {-1, "Wed, 31 Dec 1969 23:59:59 GMT", "1969-12-31T23:59:59.999Z"},
    {-2208988800 * ns, "Mon, 01 Jan 1900 00:00:00 GMT", "1900-01-01T00:00:00.000Z"},
    {INT64_MAX, "Fri, 11 Apr 2262 23:47:16 GMT", "2262-04-11T23:47:16.854Z"},
    {INT64_MIN, "Tue, 21 Sep 1677 00:12:43 GMT", "1677-09-21T00:12:43.145Z"},
};

}  // namespace

BOOST_AUTO_TEST_CASE(formats_known_times) {
    for (const known_time& k : known) {
        BOOST_TEST_CONTEXT("unix ns " << k.unix_ns) {
            BOOST_TEST(http::format_imf_fixdate(k.unix_ns) == k.imf);
            BOOST_TEST(http::format_iso8601(k.unix_ns) == k.iso);
        }
    }
}

BOOST_AUTO_TEST_CASE(parses_what_it_formats) {
    for (const known_time& k : known) {
        BOOST_TEST_CONTEXT(k.imf) {
            const std::optional<std::int64_t> parsed = http::parse_http_date(k.imf);
            // Formatting drops sub-second digits; INT64_MIN's second lies below the range.
            if (k.unix_ns == INT64_MIN) {
                BOOST_TEST(!parsed.has_value());
            } else {
                BOOST_REQUIRE(parsed.has_value());
                BOOST_TEST(*parsed / ns == (k.unix_ns - (k.unix_ns % ns + ns) % ns) / ns);
            }
        }
    }
}

BOOST_AUTO_TEST_CASE(civil_day_round_trip_over_centuries) {
    for (std::int64_t days = -200'000; days <= 200'000; days += 13) {
        const http::civil_date date = http::civil_from_days(days);
        BOOST_REQUIRE(date.month >= 1 && date.month <= 12);
        BOOST_REQUIRE(date.day >= 1 && date.day <= http::days_in_month(date.year, date.month));
        BOOST_REQUIRE_EQUAL(http::days_from_civil(date.year, date.month, date.day), days);
    }
    static_assert(http::days_from_civil(1970, 1, 1) == 0);
    static_assert(http::days_from_civil(2000, 3, 1) - http::days_from_civil(2000, 2, 28) == 2);
    static_assert(http::days_from_civil(1900, 3, 1) - http::days_from_civil(1900, 2, 28) == 1);
    BOOST_TEST(http::is_leap_year(2000));
    BOOST_TEST(!http::is_leap_year(1900));
    BOOST_TEST(http::is_leap_year(2024));
}

BOOST_AUTO_TEST_CASE(parses_the_obsolete_forms) {
    const std::int64_t expected = 784111777 * ns;
    BOOST_TEST(http::parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT").value() == expected);
    BOOST_TEST(http::parse_http_date("Sun Nov  6 08:49:37 1994").value() == expected);
    BOOST_TEST(http::parse_http_date("Sun Nov 06 08:49:37 1994").value() == expected);
    BOOST_TEST(http::parse_http_date("Thursday, 01-Jan-70 00:00:00 GMT").value() == 0);
    BOOST_TEST(http::parse_http_date("Tuesday, 29-Feb-00 00:00:00 GMT").value() == 951782400 * ns);  // 00 → 2000
    BOOST_TEST(http::parse_http_date("Tue Jan 19 03:14:08 2038").value() == 2147483648 * ns);
}

BOOST_AUTO_TEST_CASE(rejects_invalid_dates) {
    const std::vector<std::string> bad = {
        "",
        "Sun, 06 Nov 1994 08:49:37 UTC",
        "Sun, 06 Nov 1994 08:49:37 GMT ",
        " Sun, 06 Nov 1994 08:49:37 GMT",
        "sun, 06 Nov 1994 08:49:37 GMT",
        "Sun, 6 Nov 1994 08:49:37 GMT",
        "Sun, 06 nov 1994 08:49:37 GMT",
        "Sun,  06 Nov 1994 08:49:37 GMT",
        "Mon, 06 Nov 1994 08:49:37 GMT",  // wrong day name
        "Sun, 31 Nov 1994 08:49:37 GMT",  // no 31 November
        "Thu, 29 Feb 2001 00:00:00 GMT",  // not a leap year
        "Sun, 00 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 24:00:00 GMT",
        "Sun, 06 Nov 1994 08:60:00 GMT",
        "Sun, 06 Nov 1994 08:49:61 GMT",
        "Sun, 06 Nov 94 08:49:37 GMT",
        "Sun, 06 Nov 1994 8:49:37 GMT",
        "Sun, 06 Nov +994 08:49:37 GMT",
        "Sun, 06 Nov 1994 08:49:37",
        "Sunday, 06-Nov-1994 08:49:37 GMT",
        "Sun Nov 6 08:49:37 1994",
        "Sun Nov  6 08:49:37 1994 ",
        "Fri, 01 Jan 9999 00:00:00 GMT",  // beyond int64 nanoseconds
        "1994-11-06T08:49:37Z",
    };
    for (const std::string& text : bad) {
        BOOST_TEST_CONTEXT("date: " << text) { BOOST_TEST(!http::parse_http_date(text).has_value()); }
    }
    BOOST_TEST(http::parse_http_date("Sun, 06 Nov 1994 08:49:60 GMT").value() == 784111800 * ns);
}
