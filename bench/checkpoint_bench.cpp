// What a checkpoint costs the replica that takes it: the image of a KV state machine of N keys
// (client table, state, checksum, as basic_replica::take_checkpoint builds it), and restoring
// one (what a lagging or restarting replica does). Taking an image is synchronous, so its time
// is how long a checkpoint holds up the replica's event loop.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>
#include <vector>

#include "kv_state_machine.hpp"
#include "vsr/checkpoint.hpp"
#include "vsr/client_table.hpp"

namespace {

/// A KV store of `keys` keys with 100-byte values, and a client table of 64 sessions.
struct filled_state {
    kv::state_machine machine;
    vsr::client_table clients{1024};

    explicit filled_state(std::int64_t keys) {
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
