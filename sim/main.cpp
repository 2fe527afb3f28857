// vsr-sim: runs the deterministic simulator for one seed or a range of seeds.
//
//   vsr-sim --seed N [--replicas 3|5] [--requests R] [--verbose] [--bug NAME]
//   vsr-sim --seeds A..B [--replicas 3|5] [--requests R] [--bug NAME] [--check-determinism] [--quiet]
//
// Each seed prints one line ending in trace-hash=<hex>. A failure prints the property, the
// trace tail and the command that replays it, and the exit status is 1 (sim/sweep.hpp).
#include "sim/simulator.hpp"
#include "sim/sweep.hpp"

namespace {

sim::seed_report run(const sim::sweep& s, std::uint64_t seed) {
    sim::simulation_options options;
    options.seed = seed;
    options.replicas = s.replicas;
    options.requests = s.requests;
    options.verbose = s.verbose;
    sim::parse_planted_bug(s.bug_name, options.bug);
    const sim::simulation_result r = sim::run_kv_simulation(options);
    return {r.ok, r.requests_ok, r.trace_hash, r.property, r.detail, r.profile, r.trace_tail,
            sim::counters({{"ops", r.ops_committed}, {"requests_ok", r.requests_ok}, {"queries", r.queries_answered},
                           {"sim_ms", r.simulated_ms}, {"messages", r.messages_delivered}, {"crashes", r.crashes},
                           {"views", r.view_changes}})};
}

}  // namespace

int main(int argc, char** argv) {
    sim::sweep_program program;
    program.name = "vsr-sim";
    program.bug_usage = "none|commit_without_quorum|skip_client_deduplication|view_change_picks_wrong_log|\n"
                        "             accept_prepare_out_of_order|recovering_replica_answers|query_without_round";
    program.requests_default = sim::simulation_options{}.requests;
    program.requests_max = 10'000'000;
    program.bug_known = [](const std::string& name) {
        vsr::planted_bug bug{};
        return sim::parse_planted_bug(name, bug);
    };
    program.run = run;
    return sim::run_sweep(program, argc, argv);
}
