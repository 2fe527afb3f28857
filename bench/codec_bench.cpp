// Wire codec throughput: vsr::encode_message, vsr::decode_message, vsr::checksum, and the KV
// operation codec (kv::encode_operation / kv::decode_operation).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>
#include <vector>

#include "kv_state_machine.hpp"
#include "vsr/checksum.hpp"
#include "vsr/wire.hpp"

namespace {

constexpr std::uint32_t cluster_id = 0xB0B;

std::vector<std::uint8_t> pattern(std::size_t size) {
    std::vector<std::uint8_t> bytes(size);
    for (std::size_t i = 0; i < size; ++i) bytes[i] = static_cast<std::uint8_t>(i * 131 + 7);
    return bytes;
}

vsr::header prepare_header() {
    vsr::header h;
    h.cmd = vsr::command::prepare;
    h.sender = 0;
    h.target = 1;
    h.cluster = cluster_id;
    h.view = 3;
    h.op = 123456;
    h.commit = 123450;
    return h;
}

void BM_encode_message(benchmark::State& state) {
    const auto body = pattern(static_cast<std::size_t>(state.range(0)));
    const vsr::header h = prepare_header();
    std::vector<std::uint8_t> out;
    out.reserve(vsr::header_size + body.size());
    for (auto _ : state) {
        vsr::encode_message(h, body, out);
        benchmark::DoNotOptimize(out.data());
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(vsr::header_size + body.size()));
}
BENCHMARK(BM_encode_message)->ArgName("body")->Arg(0)->Arg(128)->Arg(4 << 10)->Arg(64 << 10);

void BM_decode_message(benchmark::State& state) {
    const auto body = pattern(static_cast<std::size_t>(state.range(0)));
    std::vector<std::uint8_t> message;
    vsr::encode_message(prepare_header(), body, message);
    for (auto _ : state) {
        vsr::header h;
        const auto error = vsr::decode_message(message, cluster_id, std::size_t{1} << 20, h);
        if (error != vsr::decode_error::none) {
            state.SkipWithError("decode failed");
            break;
        }
        benchmark::DoNotOptimize(h);
    }
    state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(message.size()));
}
BENCHMARK(BM_decode_message)->ArgName("body")->Arg(0)->Arg(128)->Arg(4 << 10)->Arg(64 << 10);

void BM_checksum(benchmark::State& state) {
    const auto bytes = pattern(static_cast<std::size_t>(state.range(0)));
    for (auto _ : state) {
        benchmark::DoNotOptimize(bytes.data());
        const std::uint64_t sum = vsr::checksum(bytes, cluster_id);
        benchmark::DoNotOptimize(sum);
    }
    state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(bytes.size()));
}
BENCHMARK(BM_checksum)->ArgName("bytes")->Arg(72)->Arg(208)->Arg(4 << 10)->Arg(64 << 10)->Arg(1 << 20);

/// A put with a 16-byte key and a 64-byte value, as in the loopback benchmark.
kv::operation put_operation(const std::string& key, const std::string& value) {
    kv::operation op;
    op.op_kind = kv::kind::put;
    op.key = key;
    op.value = value;
    return op;
}

void BM_kv_encode_operation(benchmark::State& state) {
    const std::string key(16, 'k'), value(64, 'v');
    const kv::operation op = put_operation(key, value);
    std::vector<std::uint8_t> out;
    for (auto _ : state) {
        kv::encode_operation(op, out);
        benchmark::DoNotOptimize(out.data());
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(out.size()));
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_kv_encode_operation);

void BM_kv_decode_operation(benchmark::State& state) {
    const std::string key(16, 'k'), value(64, 'v');
    std::vector<std::uint8_t> bytes;
    kv::encode_operation(put_operation(key, value), bytes);
    for (auto _ : state) {
        benchmark::DoNotOptimize(bytes.data());
        const auto op = kv::decode_operation(bytes);
        if (!op) {
            state.SkipWithError("decode failed");
            break;
        }
        benchmark::DoNotOptimize(op->value.data());
    }
    state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(bytes.size()));
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_kv_decode_operation);

}  // namespace

BENCHMARK_MAIN();
