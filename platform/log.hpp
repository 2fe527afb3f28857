// Process logging: one line per event on stderr, UTC timestamp, level and component, flushed at
// every line so a log file is readable while the process runs (cluster.sh redirects stderr to
// it). Thread-safe: each line is written with one call.
#pragma once

#include <string>

namespace platform {

enum class log_level : int { debug = 0, info = 1, warn = 2 };

/// Sets the component name printed on every line (e.g. "node=1", "proxy") and the threshold.
void log_setup(std::string component, log_level threshold);
/// Parses "debug", "info" or "warn".
bool parse_log_level(const std::string& text, log_level& out);

__attribute__((format(printf, 2, 3))) void log(log_level level, const char* format, ...);

}  // namespace platform
