// Dates: IMF-fixdate (HTTP Date, Last-Modified; RFC 9110 §5.6.7) and ISO 8601 UTC (JSON
// listings), from and to Unix time in nanoseconds.
//
// Pure arithmetic on the proleptic Gregorian calendar (days_from_civil / civil_from_days, after
// Howard Hinnant's algorithms): no OS time function, no locale, no time zone. Times before 1970
// are handled (floor division). Every int64 nanosecond time (years 1677-2262) formats with a
// four-digit year. Leap seconds do not exist in Unix time; a parsed ":60" counts as the next
// second.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "toastyfs/http/detail/text.hpp"

namespace toastyfs::http {

struct civil_date {
    std::int64_t year = 1970;
    unsigned month = 1;  // 1-12
    unsigned day = 1;    // 1-31

    friend bool operator==(const civil_date&, const civil_date&) = default;
};

/// Days since 1970-01-01 of a proleptic Gregorian date.
constexpr std::int64_t days_from_civil(std::int64_t year, unsigned month, unsigned day) noexcept {
    year -= month <= 2 ? 1 : 0;
    const std::int64_t era = (year >= 0 ? year : year - 399) / 400;
    const auto year_of_era = static_cast<unsigned>(year - era * 400);
    const unsigned day_of_year = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1;
    const unsigned day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    return era * 146097 + static_cast<std::int64_t>(day_of_era) - 719468;
}

/// The date `days` days after 1970-01-01 (before it if negative).
constexpr civil_date civil_from_days(std::int64_t days) noexcept {
    days += 719468;
    const std::int64_t era = (days >= 0 ? days : days - 146096) / 146097;
    const auto day_of_era = static_cast<unsigned>(days - era * 146097);
    const unsigned year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;
    const unsigned day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    const unsigned shifted_month = (5 * day_of_year + 2) / 153;  // March = 0
    const unsigned day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    const unsigned month = shifted_month < 10 ? shifted_month + 3 : shifted_month - 9;
    return {static_cast<std::int64_t>(year_of_era) + era * 400 + (month <= 2 ? 1 : 0), month, day};
}

constexpr bool is_leap_year(std::int64_t year) noexcept {
    return year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
}

constexpr unsigned days_in_month(std::int64_t year, unsigned month) noexcept {
    constexpr unsigned days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return month == 2 && is_leap_year(year) ? 29 : days[month - 1];
}

/// A Unix time split into UTC calendar fields.
struct utc_time {
    civil_date date;
    unsigned hour = 0;
    unsigned minute = 0;
    unsigned second = 0;
    std::uint32_t nanosecond = 0;
    unsigned weekday = 4;  // 0 = Sunday; 1970-01-01 was a Thursday
};

constexpr utc_time to_utc(std::int64_t unix_ns) noexcept {
    constexpr std::int64_t ns_per_second = 1'000'000'000;
    std::int64_t seconds = unix_ns / ns_per_second;
    std::int64_t nanosecond = unix_ns % ns_per_second;
    if (nanosecond < 0) {
        nanosecond += ns_per_second;
        seconds -= 1;
    }
    std::int64_t days = seconds / 86400;
    std::int64_t second_of_day = seconds % 86400;
    if (second_of_day < 0) {
        second_of_day += 86400;
        days -= 1;
    }
    utc_time t;
    t.date = civil_from_days(days);
    t.hour = static_cast<unsigned>(second_of_day / 3600);
    t.minute = static_cast<unsigned>(second_of_day / 60 % 60);
    t.second = static_cast<unsigned>(second_of_day % 60);
    t.nanosecond = static_cast<std::uint32_t>(nanosecond);
    t.weekday = static_cast<unsigned>(((days % 7) + 7 + 4) % 7);
    return t;
}

namespace detail {

inline constexpr std::array<std::string_view, 7> day_names = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
inline constexpr std::array<std::string_view, 7> long_day_names = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                                                   "Thursday", "Friday", "Saturday"};
inline constexpr std::array<std::string_view, 12> month_names = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                                 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

// Appends `value` as exactly `width` decimal digits (value < 10^width).
inline void append_digits(std::string& out, std::uint64_t value, std::size_t width) {
    const std::size_t end = out.size() + width;
    out.resize(end);
    for (std::size_t i = 0; i < width; ++i) {
        out[end - 1 - i] = static_cast<char>('0' + value % 10);
        value /= 10;
    }
}

}  // namespace detail

/// "Sun, 06 Nov 1994 08:49:37 GMT" (sub-second part dropped, rounding down).
inline std::string format_imf_fixdate(std::int64_t unix_ns) {
    const utc_time t = to_utc(unix_ns);
    std::string out;
    out.reserve(29);
    out += detail::day_names[t.weekday];
    out += ", ";
    detail::append_digits(out, t.date.day, 2);
    out += ' ';
    out += detail::month_names[t.date.month - 1];
    out += ' ';
    detail::append_digits(out, static_cast<std::uint64_t>(t.date.year), 4);
    out += ' ';
    detail::append_digits(out, t.hour, 2);
    out += ':';
    detail::append_digits(out, t.minute, 2);
    out += ':';
    detail::append_digits(out, t.second, 2);
    out += " GMT";
    return out;
}

/// "2026-11-26T14:00:00.000Z" (milliseconds, rounding down).
inline std::string format_iso8601(std::int64_t unix_ns) {
    const utc_time t = to_utc(unix_ns);
    std::string out;
    out.reserve(24);
    detail::append_digits(out, static_cast<std::uint64_t>(t.date.year), 4);
    out += '-';
    detail::append_digits(out, t.date.month, 2);
    out += '-';
    detail::append_digits(out, t.date.day, 2);
    out += 'T';
    detail::append_digits(out, t.hour, 2);
    out += ':';
    detail::append_digits(out, t.minute, 2);
    out += ':';
    detail::append_digits(out, t.second, 2);
    out += '.';
    detail::append_digits(out, t.nanosecond / 1'000'000, 3);
    out += 'Z';
    return out;
}

namespace detail {

// A cursor over a date string; every take_* fails (returns false) on a mismatch.
struct date_reader {
    std::string_view text;
    std::size_t at = 0;

    bool literal(std::string_view expected) {
        if (text.substr(at, expected.size()) != expected) return false;
        at += expected.size();
        return true;
    }
    bool digits(std::size_t count, unsigned& out) {
        if (text.size() - at < count) return false;
        unsigned value = 0;
        for (std::size_t i = 0; i < count; ++i) {
            if (!is_digit(text[at + i])) return false;
            value = value * 10 + static_cast<unsigned>(text[at + i] - '0');
        }
        at += count;
        out = value;
        return true;
    }
    template <std::size_t N>
    bool name(const std::array<std::string_view, N>& names, unsigned& index) {
        for (std::size_t i = 0; i < N; ++i) {
            if (literal(names[i])) {
                index = static_cast<unsigned>(i);
                return true;
            }
        }
        return false;
    }
    bool time_of_day(unsigned& hour, unsigned& minute, unsigned& second) {
        return digits(2, hour) && literal(":") && digits(2, minute) && literal(":") && digits(2, second);
    }
    bool done() const { return at == text.size(); }
};

struct date_fields {
    unsigned weekday = 0, day = 0, month = 0, hour = 0, minute = 0, second = 0;
    std::int64_t year = 0;
};

// Checks ranges and the day name, then converts to nanoseconds if int64 can hold it.
inline std::optional<std::int64_t> to_unix_ns(const date_fields& f) {
    if (f.month >= 12 || f.day < 1 || f.day > days_in_month(f.year, f.month + 1)) return std::nullopt;
    if (f.hour > 23 || f.minute > 59 || f.second > 60) return std::nullopt;
    const std::int64_t days = days_from_civil(f.year, f.month + 1, f.day);
    if (static_cast<unsigned>(((days % 7) + 7 + 4) % 7) != f.weekday) return std::nullopt;
    const std::int64_t seconds = days * 86400 + f.hour * 3600 + f.minute * 60 + f.second;
    constexpr std::int64_t ns_per_second = 1'000'000'000;
    if (seconds > INT64_MAX / ns_per_second || seconds < INT64_MIN / ns_per_second) return std::nullopt;
    return seconds * ns_per_second;
}

}  // namespace detail

/// Parses an HTTP-date in any of the three forms RFC 9110 §5.6.7 obliges recipients to accept:
///   IMF-fixdate  "Sun, 06 Nov 1994 08:49:37 GMT"
///   rfc850-date  "Sunday, 06-Nov-94 08:49:37 GMT"  (two-digit year: 70-99 → 19xx, 00-69 → 20xx)
///   asctime-date "Sun Nov  6 08:49:37 1994"
/// Exact syntax (case-sensitive names, no extra spaces); the day name must match the date.
/// nullopt for anything else, including times int64 nanoseconds cannot hold: a caller ignores
/// an invalid If-Modified-Since, as RFC 9110 §13.1.3 says.
inline std::optional<std::int64_t> parse_http_date(std::string_view text) {
    detail::date_reader r{text};
    detail::date_fields f;
    unsigned year = 0;
    if (r.name(detail::long_day_names, f.weekday)) {
        const bool ok = r.literal(", ") && r.digits(2, f.day) && r.literal("-") &&
                        r.name(detail::month_names, f.month) && r.literal("-") && r.digits(2, year) && r.literal(" ") &&
                        r.time_of_day(f.hour, f.minute, f.second) && r.literal(" GMT") && r.done();
        if (!ok) return std::nullopt;
        f.year = year >= 70 ? 1900 + year : 2000 + year;
        return detail::to_unix_ns(f);
    }
    if (!r.name(detail::day_names, f.weekday)) return std::nullopt;
    if (r.literal(", ")) {
        const bool ok = r.digits(2, f.day) && r.literal(" ") && r.name(detail::month_names, f.month) &&
                        r.literal(" ") && r.digits(4, year) && r.literal(" ") &&
                        r.time_of_day(f.hour, f.minute, f.second) && r.literal(" GMT") && r.done();
        if (!ok) return std::nullopt;
    } else {
        const bool ok = r.literal(" ") && r.name(detail::month_names, f.month) && r.literal(" ") &&
                        (r.literal(" ") ? r.digits(1, f.day) : r.digits(2, f.day)) && r.literal(" ") &&
                        r.time_of_day(f.hour, f.minute, f.second) && r.literal(" ") && r.digits(4, year) && r.done();
        if (!ok) return std::nullopt;
    }
    f.year = year;
    return detail::to_unix_ns(f);
}

}  // namespace toastyfs::http
