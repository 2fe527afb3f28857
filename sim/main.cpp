// vsr-sim: runs the deterministic simulator for one seed or a range of seeds.
//
//   vsr-sim --seed N [--replicas 3|5] [--requests R] [--verbose] [--bug NAME]
//   vsr-sim --seeds A..B [--replicas 3|5] [--requests R] [--bug NAME]
//
// Each seed prints one line ending in trace-hash=<hex>. A failure prints the property, the
// trace tail and the command that replays it, and the exit status is 1.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "sim/simulator.hpp"

namespace {

bool parse_u64(const char* text, std::uint64_t& out) {
    if (text == nullptr || *text == '\0') return false;
    char* end = nullptr;
    errno = 0;
    out = std::strtoull(text, &end, 10);
    return errno == 0 && *end == '\0';
}

int usage() {
    std::fprintf(stderr,
                 "usage: vsr-sim --seed N | --seeds A..B  [--replicas 3|5] [--requests R] [--verbose]\n"
                 "               [--bug none|commit_without_quorum|skip_client_deduplication|\n"
                 "                      view_change_picks_wrong_log|accept_prepare_out_of_order|\n"
                 "                      recovering_replica_answers|query_without_round]\n"
                 "               [--check-determinism]\n");
    return 2;
}

struct command_line {
    sim::simulation_options options;
    std::uint64_t first = 0, last = 0;
    bool check_determinism = false;
    std::string bug_name = "none";
};

bool parse_command_line(int argc, char** argv, command_line& out) {
    bool have_seed = false;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        const char* value = i + 1 < argc ? argv[i + 1] : nullptr;
        std::uint64_t number = 0;
        if (arg == "--seed" && parse_u64(value, number)) {
            out.first = out.last = number;
            have_seed = true;
            ++i;
        } else if (arg == "--seeds" && value != nullptr) {
            const std::string range = value;
            const auto dots = range.find("..");
            if (dots == std::string::npos || !parse_u64(range.substr(0, dots).c_str(), out.first) ||
                !parse_u64(range.substr(dots + 2).c_str(), out.last) || out.last < out.first) {
                return false;
            }
            have_seed = true;
            ++i;
        } else if (arg == "--replicas" && parse_u64(value, number) && (number == 3 || number == 5)) {
            out.options.replicas = static_cast<std::uint8_t>(number);
            ++i;
        } else if (arg == "--requests" && parse_u64(value, number) && number >= 1 && number <= 10'000'000) {
            out.options.requests = static_cast<std::uint32_t>(number);
            ++i;
        } else if (arg == "--bug" && value != nullptr && sim::parse_planted_bug(value, out.options.bug)) {
            out.bug_name = value;
            ++i;
        } else if (arg == "--verbose") {
            out.options.verbose = true;
        } else if (arg == "--check-determinism") {
            out.check_determinism = true;
        } else {
            return false;
        }
    }
    return have_seed;
}

/// Runs one seed, prints its line (and on failure the report and replay command).
bool run_seed(const command_line& cl, std::uint64_t seed, std::uint64_t& requests_ok) {
    sim::simulation_options options = cl.options;
    options.seed = seed;
    const sim::simulation_result r = sim::run_kv_simulation(options);
    requests_ok += r.requests_ok;
    bool ok = r.ok;
    std::string property = r.property, detail = r.detail;
    if (ok && cl.check_determinism) {
        const sim::simulation_result again = sim::run_kv_simulation(options);
        if (again.trace_hash != r.trace_hash) {
            ok = false;
            property = "determinism";
            detail = "second run gave trace-hash " + std::to_string(again.trace_hash);
        }
    }
    std::printf("seed=%llu replicas=%u %s ops=%llu requests_ok=%llu queries=%llu sim_ms=%llu messages=%llu crashes=%llu views=%llu trace-hash=%016llx\n",
                static_cast<unsigned long long>(seed), static_cast<unsigned>(options.replicas), ok ? "ok" : "FAIL",
                static_cast<unsigned long long>(r.ops_committed), static_cast<unsigned long long>(r.requests_ok),
                static_cast<unsigned long long>(r.queries_answered),
                static_cast<unsigned long long>(r.simulated_ms), static_cast<unsigned long long>(r.messages_delivered),
                static_cast<unsigned long long>(r.crashes), static_cast<unsigned long long>(r.view_changes),
                static_cast<unsigned long long>(r.trace_hash));
    if (!ok) {
        const bool planted = cl.bug_name != "none";
        std::printf("FAILED seed=%llu property=%s\n  %s\n  profile: %s\ntrace tail:\n%sreplay: build/sim/vsr-sim --seed %llu --replicas %u --requests %u%s%s\n",
                    static_cast<unsigned long long>(seed), property.c_str(), detail.c_str(), r.profile.c_str(),
                    r.trace_tail.c_str(), static_cast<unsigned long long>(seed), static_cast<unsigned>(options.replicas),
                    options.requests, planted ? " --bug " : "", planted ? cl.bug_name.c_str() : "");
    }
    std::fflush(stdout);
    return ok;
}

}  // namespace

int main(int argc, char** argv) {
    command_line cl;
    if (!parse_command_line(argc, argv, cl)) return usage();
    std::uint64_t failures = 0, requests_ok = 0;
    const auto start = std::chrono::steady_clock::now();
    for (std::uint64_t seed = cl.first; seed <= cl.last; ++seed) {
        if (!run_seed(cl, seed, requests_ok)) ++failures;
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (cl.last > cl.first) {
        std::printf("seeds=%llu failures=%llu requests_ok=%llu wall=%.2fs (%.0f requests/s)\n",
                    static_cast<unsigned long long>(cl.last - cl.first + 1), static_cast<unsigned long long>(failures),
                    static_cast<unsigned long long>(requests_ok), seconds, static_cast<double>(requests_ok) / seconds);
    }
    return failures == 0 ? 0 : 1;
}
