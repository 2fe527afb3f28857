#include "platform/log.hpp"

#include <time.h>

#include <cstdarg>
#include <cstdio>
#include <ctime>

namespace platform {
namespace {
std::string component_name = "process";
log_level log_threshold = log_level::info;
}  // namespace

void log_setup(std::string component, log_level threshold) {
    component_name = std::move(component);
    log_threshold = threshold;
}

bool parse_log_level(const std::string& text, log_level& out) {
    if (text == "debug")
        out = log_level::debug;
    else if (text == "info")
        out = log_level::info;
    else if (text == "warn")
        out = log_level::warn;
    else
        return false;
    return true;
}

void log(log_level level, const char* format, ...) {
    if (level < log_threshold) return;
    timespec now{};
    clock_gettime(CLOCK_REALTIME, &now);
    tm utc{};
    gmtime_r(&now.tv_sec, &utc);
    char line[4096];
    std::size_t at = std::strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &utc);
    const char* name = level == log_level::debug ? "DEBUG" : level == log_level::info ? "INFO" : "WARN";
    at += static_cast<std::size_t>(std::snprintf(line + at, sizeof line - at, ".%03ldZ %-5s %s ",
                                                 now.tv_nsec / 1'000'000, name, component_name.c_str()));
    if (at < sizeof line) {
        va_list args;
        va_start(args, format);
        const int n = std::vsnprintf(line + at, sizeof line - at, format, args);
        va_end(args);
        if (n > 0) at += static_cast<std::size_t>(n);
    }
    if (at > sizeof line - 2) at = sizeof line - 2;  // truncated: keep the newline
    line[at++] = '\n';
    std::fwrite(line, 1, at, stderr);
    std::fflush(stderr);
}

}  // namespace platform
