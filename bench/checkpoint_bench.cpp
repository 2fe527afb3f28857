// What a checkpoint costs the replica that takes it: the image of a KV state machine of N keys
// (client table, state, checksum, as basic_replica builds it), and restoring one (what a lagging
// or restarting replica does).
// - BM_take_checkpoint: the whole image in one call (snapshot()), as a state machine without
//   incremental snapshots is checkpointed: its time is how long the replica stalls.
// - BM_checkpoint_in_steps: the image as basic_replica builds it for the KV machine, one
//   config::checkpoint_step_size step per tick, with puts executing between steps (copy-on-write).
//   longest_step_ms is the longest the replica is held up; last_step_ms, that of the step that
//   seals the image (sizes and checksum). Both leave out the first image, whose buffer grows as
//   it goes; later ones reserve the last image's size, as the replica does.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "kv_state_machine.hpp"
#include "vsr/checkpoint.hpp"
#include "vsr/client_table.hpp"
#include "vsr/config.hpp"
#include "vsr/random.hpp"

namespace {

/// A KV store of `keys` keys with 100-byte values, and a client table of 64 sessions.
struct filled_state {
    kv::state_machine machine;
    vsr::client_table clients{1024};

    std::int64_t keys = 0;

    explicit filled_state(std::int64_t key_count) : keys(key_count) {
        std::vector<std::uint8_t> operation, result;
        const std::string value(100, 'v');
        for (std::int64_t i = 0; i < keys; ++i) {
            kv::encode_operation(kv::operation{kv::kind::put, "key-" + std::to_string(i), value, {}}, operation);
            result.clear();
            machine.execute({}, operation, result);
        }
        for (std::uint64_t c = 1; c <= 64; ++c) clients.register_session(c, c, 0);
    }

    void image(vsr::checkpoint_image& out) const {
        vsr::begin_checkpoint(4096, 1, 1, out.bytes);
        clients.snapshot(out.bytes);
        const std::size_t clients_end = out.bytes.size();
        machine.snapshot(out.bytes);
        vsr::finish_checkpoint(clients_end, out.bytes);
        out.checksum = vsr::checksum(out.bytes);
    }
};

void BM_take_checkpoint(benchmark::State& state) {
    const filled_state filled(state.range(0));
    vsr::checkpoint_image image;
    for (auto _ : state) {
        filled.image(image);
        benchmark::DoNotOptimize(image.checksum);
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * image.bytes.size()));
    state.counters["image_bytes"] = static_cast<double>(image.bytes.size());
}
BENCHMARK(BM_take_checkpoint)->Arg(10'000)->Arg(100'000)->Arg(1'000'000)->Unit(benchmark::kMillisecond);

void BM_checkpoint_in_steps(benchmark::State& state) {
    filled_state filled(state.range(0));
    const std::size_t step_size = vsr::config{}.checkpoint_step_size;
    vsr::xoshiro256 random(1);
    std::vector<std::uint8_t> operation, result;
    const std::string value(100, 'w');
    vsr::checkpoint_image image;
    double longest_ms = 0, last_step_ms = 0, steps = 0;
    bool first = true;
    for (auto _ : state) {
        image.bytes.reserve(image.bytes.size() + image.bytes.size() / 8);  // as the replica does
        vsr::begin_checkpoint(4096, 1, 1, image.bytes);
        filled.clients.snapshot(image.bytes);
        const std::size_t clients_end = image.bytes.size();
        filled.machine.snapshot_begin();
        for (bool done = false; !done;) {
            const auto start = std::chrono::steady_clock::now();
            done = filled.machine.snapshot_step(image.bytes, step_size);
            if (done) {
                vsr::finish_checkpoint(clients_end, image.bytes);
                image.checksum = vsr::checksum(image.bytes);
            }
            const std::chrono::duration<double, std::milli> took = std::chrono::steady_clock::now() - start;
            if (!first) {  // the first image has no earlier size to reserve from
                longest_ms = std::max(longest_ms, took.count());
                if (done) last_step_ms = std::max(last_step_ms, took.count());
            }
            ++steps;
            state.PauseTiming();  // a tick's worth of writes to existing keys before the next step
            for (int i = 0; i < 64; ++i) {
                const std::string key = "key-" + std::to_string(vsr::uniform_below(random, filled.keys));
                kv::encode_operation(kv::operation{kv::kind::put, key, value, {}}, operation);
                result.clear();
                filled.machine.execute({}, operation, result);
            }
            state.ResumeTiming();
        }
        benchmark::DoNotOptimize(image.checksum);
        first = false;
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * image.bytes.size()));
    state.counters["image_bytes"] = static_cast<double>(image.bytes.size());
    state.counters["steps"] = steps / static_cast<double>(state.iterations());
    state.counters["longest_step_ms"] = longest_ms;
    state.counters["last_step_ms"] = last_step_ms;  // the last step seals the image (checksum)
}
BENCHMARK(BM_checkpoint_in_steps)->Arg(10'000)->Arg(100'000)->Arg(1'000'000)->Unit(benchmark::kMillisecond);

void BM_restore_checkpoint(benchmark::State& state) {
    const filled_state filled(state.range(0));
    vsr::checkpoint_image image;
    filled.image(image);
    for (auto _ : state) {
        vsr::checkpoint_contents contents;
        vsr::client_table clients(1024);
        kv::state_machine machine;
        const bool ok = vsr::checksum(image.bytes) == image.checksum && vsr::decode_checkpoint(image.bytes, contents) &&
                        clients.restore(contents.clients) && machine.restore(contents.state);
        if (!ok) state.SkipWithError("restore failed");
        benchmark::DoNotOptimize(machine.size());
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * image.bytes.size()));
}
BENCHMARK(BM_restore_checkpoint)->Arg(10'000)->Arg(100'000)->Arg(1'000'000)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
