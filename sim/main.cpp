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

sim::seed_report run(const sim::simulation_options& options) {
    const sim::simulation_result r = sim::run_kv_simulation(options);
    sim::seed_report report{r.ok,
                            r.requests_ok,
                            r.trace_hash,
                            r.property,
                            r.detail,
                            r.profile,
                            r.trace_tail,
                            sim::counters({{"ops", r.ops_committed},
                                           {"requests_ok", r.requests_ok},
                                           {"queries", r.queries_answered},
                                           {"sim_ms", r.simulated_ms},
                                           {"messages", r.messages_delivered},
                                           {"crashes", r.crashes},
                                           {"views", r.view_changes},
                                           {"checkpoints", r.checkpoints_taken},
                                           {"restored", r.checkpoints_restored},
                                           {"stepped_images", r.images_built_in_steps},
                                           {"from_journal", r.entries_from_journal},
                                           {"cluster_crashes", r.cluster_crashes},
                                           {"disks_lost", r.disks_lost},
                                           {"unsynced_primary_crashes", r.primaries_crashed_before_sync},
                                           {"disk_faults", r.storage_faults},
                                           {"loaded", r.loaded_restarts},
                                           {"damaged", r.damaged_restarts}}),
                            r.storage};
    return report;
}

}  // namespace

int main(int argc, char** argv) {
    const char* bugs =
        "none|commit_without_quorum|skip_client_deduplication|view_change_picks_wrong_log|\n"
        "             accept_prepare_out_of_order|recovering_replica_answers|query_without_round|\n"
        "             restore_unchecked_checkpoint|ack_before_durable|compact_past_commit|\n"
        "             damaged_replica_votes|truncate_without_new_epoch|checkpoint_without_client_table";
    return sim::run_sweep("vsr-sim", bugs, 10'000'000, sim::parse_planted_bug, run, argc, argv);
}
