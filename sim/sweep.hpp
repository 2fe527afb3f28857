// The command line of both simulators: one seed or a range of seeds, the shared options, each
// seed's line (and on failure the property, profile, trace tail and replay command) and the
// summary of a range. Each simulator supplies its name, its planted bugs and how to run a seed.
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <string>
#include <utility>

namespace sim {

/// What the command line asked for.
struct sweep {
    std::uint64_t first = 0, last = 0;
    std::uint8_t replicas = 3;
    std::uint32_t requests = 0;
    bool verbose = false;
    bool check_determinism = false;  // run each seed twice, the trace hashes must match
    bool quiet = false;              // only failures and the summary
    std::string bug_name = "none";
    std::string storage;  // --storage diskless|persistent; empty: each seed draws its own
};

/// One seed's run, as the simulator reports it.
struct seed_report {
    bool ok = true;
    std::uint64_t requests_ok = 0, trace_hash = 0;
    std::string property, detail, profile, trace_tail;
    std::string counters;  // "name=value ..." for the seed's line
    std::string storage;   // the storage mode the seed ran with, if the simulator has modes
};

struct sweep_program {
    const char* name = "";       // as in the replay command: build/sim/<name>
    const char* bug_usage = "";  // the names --bug takes, for the usage text
    std::uint32_t requests_default = 0, requests_max = 0;
    std::function<bool(const std::string&)> bug_known;
    bool storage_modes = false;  // takes --storage
    std::function<seed_report(const sweep&, std::uint64_t seed)> run;
};

/// "a=1 b=2": a seed line's counters.
std::string counters(std::initializer_list<std::pair<const char*, std::uint64_t>> values);

/// Parses the command line, runs every seed, prints the report; the exit status of main.
int run_sweep(const sweep_program& program, int argc, char** argv);

/// run_sweep for a simulator whose Options hold seed, replicas, requests, verbose and bug.
template <typename Options, typename Bug>
int run_sweep(const char* name, const char* bug_usage, std::uint32_t requests_max,
              bool (*parse_bug)(const std::string&, Bug&), seed_report (*run)(const Options&), int argc, char** argv) {
    sweep_program program;
    program.name = name;
    program.bug_usage = bug_usage;
    program.requests_default = Options{}.requests;
    program.requests_max = requests_max;
    program.bug_known = [parse_bug](const std::string& bug_name) {
        Bug bug{};
        return parse_bug(bug_name, bug);
    };
    program.run = [parse_bug, run](const sweep& s, std::uint64_t seed) {
        Options options;
        options.seed = seed;
        options.replicas = s.replicas;
        options.requests = s.requests;
        options.verbose = s.verbose;
        parse_bug(s.bug_name, options.bug);
        if constexpr (requires { options.storage; }) options.storage = s.storage;
        return run(options);
    };
    program.storage_modes = requires(Options o) { o.storage; };
    return run_sweep(program, argc, argv);
}

}  // namespace sim
