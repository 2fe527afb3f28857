#pragma once

// Child processes for the nemesis: spawning daemons with their output in a log file, running a
// command to completion, and the monotonic clock every record is stamped with.
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace chaos {

/// CLOCK_MONOTONIC in nanoseconds: invoke/complete times and fault times share this clock.
std::uint64_t now_ns();
void sleep_ms(std::uint64_t ms);

/// Starts argv[0] (a path) with stdin from /dev/null and stdout+stderr appended to log_path.
/// Returns the pid, or -1 (and a message in `error`).
pid_t spawn(const std::vector<std::string>& argv, const std::string& log_path, std::string& error);

/// Runs argv to completion with `input` on its stdin; stdout+stderr land in `output`.
/// Returns the exit status (128+signal when killed, -1 when it could not start).
int run(const std::vector<std::string>& argv, std::string_view input = {}, std::string* output = nullptr);

/// The first line of a failed command, for messages.
std::string describe_failure(const std::vector<std::string>& argv, int status, const std::string& output);

}  // namespace chaos
