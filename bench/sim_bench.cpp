// Simulator speed: simulated committed requests per wall-clock second.
//
// One iteration runs sim::run_kv_simulation for seeds 1..20 (3 replicas, 2000 requests each,
// faults included). "sim_ops/s" is the sum of requests_ok over wall time. Seeds whose checks
// fail are counted in "failed_seeds" (the simulator is the place to debug them, not here).
#include <benchmark/benchmark.h>

#include <cstdint>

#include "sim/simulator.hpp"

namespace {

constexpr std::uint64_t seed_first = 1;
constexpr std::uint64_t seed_last = 20;

void BM_simulation(benchmark::State& state) {
    const auto replicas = static_cast<std::uint8_t>(state.range(0));
    const auto requests = static_cast<std::uint32_t>(state.range(1));
    std::uint64_t requests_ok = 0, messages = 0, simulated_ms = 0, failed_seeds = 0, runs = 0;
    for (auto _ : state) {
        for (std::uint64_t seed = seed_first; seed <= seed_last; ++seed) {
            sim::simulation_options options;
            options.seed = seed;
            options.replicas = replicas;
            options.requests = requests;
            const sim::simulation_result result = sim::run_kv_simulation(options);
            requests_ok += result.requests_ok;
            messages += result.messages_delivered;
            simulated_ms += result.simulated_ms;
            failed_seeds += result.ok ? 0 : 1;
            ++runs;
        }
    }
    state.counters["sim_ops/s"] = benchmark::Counter(static_cast<double>(requests_ok), benchmark::Counter::kIsRate);
    state.counters["msgs/s"] = benchmark::Counter(static_cast<double>(messages), benchmark::Counter::kIsRate);
    state.counters["sim_s/s"] =
        benchmark::Counter(static_cast<double>(simulated_ms) / 1000.0, benchmark::Counter::kIsRate);
    state.counters["failed_seeds"] = runs == 0 ? 0.0
                                               : static_cast<double>(failed_seeds) *
                                                     static_cast<double>(seed_last - seed_first + 1) /
                                                     static_cast<double>(runs);
}
BENCHMARK(BM_simulation)
    ->ArgNames({"replicas", "requests"})
    ->Args({3, 2000})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
