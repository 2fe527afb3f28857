// toastyfs-sim: runs the object store simulator for one seed or a range of seeds.
//
//   toastyfs-sim --seed N [--replicas 3|5] [--requests R] [--verbose] [--bug NAME]
//                [--storage diskless|persistent]
//   toastyfs-sim --seeds A..B [--replicas 3|5] [--requests R] [--bug NAME] [--check-determinism] [--quiet]
//                [--storage diskless|persistent]
//
// Each seed draws diskless or persistent metadata replicas unless --storage forces one.
//
// Each seed prints one line ending in trace-hash=<hex> (--quiet: failures only). A failure
// prints the property, the profile, the trace tail and the command that replays it, and the
// exit status is 1. A range ends with a summary line (sim/sweep.hpp).
#include "sim/objectstore_simulator.hpp"
#include "sim/sweep.hpp"

namespace {

sim::seed_report run(const sim::objectstore_options& options) {
    const sim::objectstore_result r = sim::run_objectstore_simulation(options);
    return {r.ok,
            r.requests_ok,
            r.trace_hash,
            r.property,
            r.detail,
            r.profile,
            r.trace_tail,
            sim::counters({{"requests_ok", r.requests_ok},
                           {"puts", r.puts_ok},
                           {"gets", r.gets_ok},
                           {"sim_ms", r.simulated_ms},
                           {"crashes", r.node_crashes},
                           {"wipes", r.disk_wipes},
                           {"breaks", r.connection_breaks},
                           {"disk_faults", r.disk_faults},
                           {"repairs", r.repairs},
                           {"collected", r.chunks_collected},
                           {"wrong_stale", r.holders_removed_while_held},
                           {"restored", r.checkpoints_restored},
                           {"power_losses", r.power_losses},
                           {"disks_lost", r.disks_lost},
                           {"halts", r.halts},
                           {"md_faults", r.metadata_disk_faults},
                           {"md_rot", r.metadata_rot},
                           {"journal_faults", r.journal_faults},
                           {"loaded", r.loaded_restarts},
                           {"reopened", r.stores_reopened},
                           {"damaged", r.damaged_restarts},
                           {"checkpoints_compared", r.checkpoints_compared}}),
            r.storage};
}

}  // namespace

int main(int argc, char** argv) {
    const char* bugs =
        "none|gc_ignores_lease|put_acks_one_copy|get_skips_verification|\n"
        "             put_ignores_condition|read_tries_one_node";
    return sim::run_sweep("toastyfs-sim", bugs, 1'000'000, sim::parse_objectstore_bug, run, argc, argv);
}
