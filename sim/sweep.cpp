#include "sim/sweep.hpp"

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>

namespace sim {
namespace {

bool parse_u64(const char* text, std::uint64_t& out) {
    if (text == nullptr || *text == '\0') return false;
    char* end = nullptr;
    errno = 0;
    out = std::strtoull(text, &end, 10);
    return errno == 0 && *end == '\0';
}

bool parse_range(const std::string& range, sweep& out) {
    const auto dots = range.find("..");
    return dots != std::string::npos && parse_u64(range.substr(0, dots).c_str(), out.first) &&
           parse_u64(range.substr(dots + 2).c_str(), out.last) && out.last >= out.first;
}

/// The option at argv[i] (and its value, stepping i past it); false if it is not one.
bool parse_option(const sweep_program& program, int argc, char** argv, int& i, sweep& out, bool& have_seed) {
    const std::string arg = argv[i];
    const char* value = i + 1 < argc ? argv[i + 1] : nullptr;
    std::uint64_t number = 0;
    if (arg == "--verbose") return out.verbose = true;
    if (arg == "--check-determinism") return out.check_determinism = true;
    if (arg == "--quiet") return out.quiet = true;
    if (arg == "--seed" && parse_u64(value, number)) {
        out.first = out.last = number;
        have_seed = true;
    } else if (arg == "--seeds" && value != nullptr && parse_range(value, out)) {
        have_seed = true;
    } else if (arg == "--replicas" && parse_u64(value, number) && (number == 3 || number == 5)) {
        out.replicas = static_cast<std::uint8_t>(number);
    } else if (arg == "--requests" && parse_u64(value, number) && number >= 1 && number <= program.requests_max) {
        out.requests = static_cast<std::uint32_t>(number);
    } else if (arg == "--bug" && value != nullptr && program.bug_known(value)) {
        out.bug_name = value;
    } else if (arg == "--storage" && program.storage_modes && value != nullptr &&
               (std::string(value) == "diskless" || std::string(value) == "persistent")) {
        out.storage = value;
    } else {
        return false;
    }
    ++i;
    return true;
}

bool parse_command_line(const sweep_program& program, int argc, char** argv, sweep& out) {
    bool have_seed = false;
    out.requests = program.requests_default;
    for (int i = 1; i < argc; ++i) {
        if (!parse_option(program, argc, argv, i, out, have_seed)) return false;
    }
    return have_seed;
}

int usage(const sweep_program& program) {
    std::fprintf(stderr,
                 "usage: %s --seed N | --seeds A..B  [--replicas 3|5] [--requests R] [--verbose]\n"
                 "       [--bug %s]\n"
                 "       [--check-determinism] [--quiet]%s\n",
                 program.name, program.bug_usage, program.storage_modes ? " [--storage diskless|persistent]" : "");
    return 2;
}

/// Runs one seed, prints its line (and on failure the report and replay command).
bool run_seed(const sweep_program& program, const sweep& s, std::uint64_t seed, std::uint64_t& requests_ok) {
    seed_report r = program.run(s, seed);
    requests_ok += r.requests_ok;
    if (r.ok && s.check_determinism) {
        const seed_report again = program.run(s, seed);
        if (again.trace_hash != r.trace_hash) {
            r.ok = false;
            r.property = "determinism";
            r.detail = "second run gave trace-hash " + std::to_string(again.trace_hash);
        }
    }
    if (!s.quiet || !r.ok) {
        std::printf("seed=%llu replicas=%u%s%s %s %s trace-hash=%016llx\n", static_cast<unsigned long long>(seed),
                    static_cast<unsigned>(s.replicas), r.storage.empty() ? "" : " storage=", r.storage.c_str(),
                    r.ok ? "ok" : "FAIL", r.counters.c_str(), static_cast<unsigned long long>(r.trace_hash));
    }
    if (!r.ok) {
        const bool planted = s.bug_name != "none";
        std::printf(
            "FAILED seed=%llu property=%s\n  %s\n  profile: %s\ntrace tail:\n%s"
            "replay: build/sim/%s --seed %llu --replicas %u --requests %u%s%s%s%s\n",
            static_cast<unsigned long long>(seed), r.property.c_str(), r.detail.c_str(), r.profile.c_str(),
            r.trace_tail.c_str(), program.name, static_cast<unsigned long long>(seed),
            static_cast<unsigned>(s.replicas), s.requests, planted ? " --bug " : "", planted ? s.bug_name.c_str() : "",
            r.storage.empty() ? "" : " --storage ", r.storage.c_str());
    }
    std::fflush(stdout);
    return r.ok;
}

}  // namespace

std::string counters(std::initializer_list<std::pair<const char*, std::uint64_t>> values) {
    std::string out;
    for (const auto& [name, value] : values) {
        if (!out.empty()) out += ' ';
        out += std::string(name) + "=" + std::to_string(value);
    }
    return out;
}

int run_sweep(const sweep_program& program, int argc, char** argv) {
    sweep s;
    if (!parse_command_line(program, argc, argv, s)) return usage(program);
    std::uint64_t failures = 0, requests_ok = 0;
    const auto start = std::chrono::steady_clock::now();
    for (std::uint64_t seed = s.first; seed <= s.last; ++seed) {
        if (!run_seed(program, s, seed, requests_ok)) ++failures;
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (s.last > s.first) {
        std::printf("seeds=%llu failures=%llu requests_ok=%llu wall=%.2fs (%.0f requests/s)\n",
                    static_cast<unsigned long long>(s.last - s.first + 1), static_cast<unsigned long long>(failures),
                    static_cast<unsigned long long>(requests_ok), seconds, static_cast<double>(requests_ok) / seconds);
    }
    return failures == 0 ? 0 : 1;
}

}  // namespace sim
