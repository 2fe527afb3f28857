// toastyfs-sim: runs the object store simulator for one seed or a range of seeds.
//
//   toastyfs-sim --seed N [--replicas 3|5] [--requests R] [--verbose] [--bug NAME]
//   toastyfs-sim --seeds A..B [--replicas 3|5] [--requests R] [--bug NAME] [--check-determinism]
//
// Each seed prints one line ending in trace-hash=<hex>. A failure prints the property, the
// profile, the trace tail and the command that replays it, and the exit status is 1. A range
// ends with a summary line: seeds, failures, wall time and simulated requests per wall second.
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "sim/objectstore_simulator.hpp"

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
                 "usage: toastyfs-sim --seed N | --seeds A..B  [--replicas 3|5] [--requests R] [--verbose]\n"
                 "                    [--bug none|gc_ignores_lease|put_acks_one_copy|get_skips_verification|\n"
                 "                           put_ignores_condition|read_tries_one_node] [--check-determinism] [--quiet]\n");
    return 2;
}

struct command_line {
    sim::objectstore_options options;
    std::uint64_t first = 0, last = 0;
    bool check_determinism = false;
    bool quiet = false;  // only failures and the summary
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
        } else if (arg == "--requests" && parse_u64(value, number) && number >= 1 && number <= 1'000'000) {
            out.options.requests = static_cast<std::uint32_t>(number);
            ++i;
        } else if (arg == "--bug" && value != nullptr && sim::parse_objectstore_bug(value, out.options.bug)) {
            out.bug_name = value;
            ++i;
        } else if (arg == "--verbose") {
            out.options.verbose = true;
        } else if (arg == "--quiet") {
            out.quiet = true;
        } else if (arg == "--check-determinism") {
            out.check_determinism = true;
        } else {
            return false;
        }
    }
    return have_seed;
}

bool run_seed(const command_line& cl, std::uint64_t seed, std::uint64_t& requests_ok) {
    sim::objectstore_options options = cl.options;
    options.seed = seed;
    const sim::objectstore_result r = sim::run_objectstore_simulation(options);
    requests_ok += r.requests_ok;
    bool ok = r.ok;
    std::string property = r.property, detail = r.detail;
    if (ok && cl.check_determinism) {
        const sim::objectstore_result again = sim::run_objectstore_simulation(options);
        if (again.trace_hash != r.trace_hash) {
            ok = false;
            property = "determinism";
            detail = "second run gave trace-hash " + std::to_string(again.trace_hash);
        }
    }
    if (!cl.quiet || !ok) {
        std::printf("seed=%llu replicas=%u %s requests_ok=%llu puts=%llu gets=%llu sim_ms=%llu crashes=%llu wipes=%llu "
                    "breaks=%llu disk_faults=%llu repairs=%llu collected=%llu wrong_stale=%llu trace-hash=%016llx\n",
                    static_cast<unsigned long long>(seed), static_cast<unsigned>(options.replicas), ok ? "ok" : "FAIL",
                    static_cast<unsigned long long>(r.requests_ok), static_cast<unsigned long long>(r.puts_ok),
                    static_cast<unsigned long long>(r.gets_ok), static_cast<unsigned long long>(r.simulated_ms),
                    static_cast<unsigned long long>(r.node_crashes), static_cast<unsigned long long>(r.disk_wipes),
                    static_cast<unsigned long long>(r.connection_breaks), static_cast<unsigned long long>(r.disk_faults),
                    static_cast<unsigned long long>(r.repairs), static_cast<unsigned long long>(r.chunks_collected),
                    static_cast<unsigned long long>(r.holders_removed_while_held),
                    static_cast<unsigned long long>(r.trace_hash));
    }
    if (!ok) {
        const bool planted = cl.bug_name != "none";
        std::printf("FAILED seed=%llu property=%s\n  %s\n  profile: %s\ntrace tail:\n%sreplay: build/sim/toastyfs-sim --seed %llu --replicas %u --requests %u%s%s\n",
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
