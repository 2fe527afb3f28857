// Hashing throughput, side by side at the same sizes:
// - SHA-256 as the object store computes it for content addressing: the one-shot
//   platform::openssl_crypto::sha256 over a whole chunk (object_service seals every chunk with
//   it; a node verifies every chunk it writes or reads with it). 4 MiB is the default chunk size.
// - vsr::checksum (XXH64), the wire checksum of every VSR message.
// - The streaming contexts the proxy feeds each PUT body piece to (sha256_context and
//   md5_context, for the object's SHA-256 and its ETag), in 16 KiB pieces.
// - All three together: the hashing the proxy does per byte of a PUT.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "platform/crypto.hpp"
#include "vsr/checksum.hpp"

namespace {

using crypto = platform::openssl_crypto;

constexpr std::size_t piece_size = 16 << 10;

std::vector<std::uint8_t> pattern(std::size_t size) {
    std::vector<std::uint8_t> bytes(size);
    for (std::size_t i = 0; i < size; ++i) bytes[i] = static_cast<std::uint8_t>(i * 131 + 7);
    return bytes;
}

/// Calls f(piece) for consecutive pieces of `bytes`, each at most piece_size long.
template <typename F>
void for_each_piece(std::span<const std::uint8_t> bytes, F&& f) {
    for (std::size_t at = 0; at < bytes.size(); at += piece_size) {
        f(bytes.subspan(at, std::min(piece_size, bytes.size() - at)));
    }
}

void set_throughput(benchmark::State& state, std::size_t size) {
    state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(size));
    state.SetItemsProcessed(state.iterations());
}

void sizes(benchmark::internal::Benchmark* b) {
    b->ArgName("bytes")->Arg(1 << 10)->Arg(64 << 10)->Arg(1 << 20)->Arg(4 << 20);
}

void BM_sha256(benchmark::State& state) {
    const auto bytes = pattern(static_cast<std::size_t>(state.range(0)));
    for (auto _ : state) {
        benchmark::DoNotOptimize(bytes.data());
        const toastyfs::sha256_digest digest = crypto::sha256(bytes);
        benchmark::DoNotOptimize(digest);
    }
    set_throughput(state, bytes.size());
}
BENCHMARK(BM_sha256)->Apply(sizes);

void BM_checksum(benchmark::State& state) {
    const auto bytes = pattern(static_cast<std::size_t>(state.range(0)));
    for (auto _ : state) {
        benchmark::DoNotOptimize(bytes.data());
        const std::uint64_t sum = vsr::checksum(bytes);
        benchmark::DoNotOptimize(sum);
    }
    set_throughput(state, bytes.size());
}
BENCHMARK(BM_checksum)->Apply(sizes);

/// One context reused across iterations, as an upload's context is across its pieces;
/// finish() resets it for the next message.
void BM_sha256_streaming(benchmark::State& state) {
    const auto bytes = pattern(static_cast<std::size_t>(state.range(0)));
    crypto::sha256_context context;
    for (auto _ : state) {
        for_each_piece(bytes, [&](std::span<const std::uint8_t> piece) { context.update(piece); });
        const toastyfs::sha256_digest digest = context.finish();
        benchmark::DoNotOptimize(digest);
    }
    set_throughput(state, bytes.size());
}
BENCHMARK(BM_sha256_streaming)->Apply(sizes);

void BM_md5_streaming(benchmark::State& state) {
    const auto bytes = pattern(static_cast<std::size_t>(state.range(0)));
    crypto::md5_context context;
    for (auto _ : state) {
        for_each_piece(bytes, [&](std::span<const std::uint8_t> piece) { context.update(piece); });
        const toastyfs::md5_digest digest = context.finish();
        benchmark::DoNotOptimize(digest);
    }
    set_throughput(state, bytes.size());
}
BENCHMARK(BM_md5_streaming)->Apply(sizes);

/// The proxy's hashing for one chunk of a PUT body: every 16 KiB piece goes to the object's MD5
/// and SHA-256 contexts, and the sealed chunk gets its own one-shot SHA-256 (object_service.hpp,
/// receive and seal_chunk). Each body byte is hashed three times.
void BM_put_chunk_hashing(benchmark::State& state) {
    const auto bytes = pattern(static_cast<std::size_t>(state.range(0)));
    crypto::md5_context md5;
    crypto::sha256_context sha256;
    for (auto _ : state) {
        for_each_piece(bytes, [&](std::span<const std::uint8_t> piece) {
            md5.update(piece);
            sha256.update(piece);
        });
        const toastyfs::sha256_digest chunk = crypto::sha256(bytes);
        benchmark::DoNotOptimize(chunk);
        benchmark::DoNotOptimize(md5.finish());
        benchmark::DoNotOptimize(sha256.finish());
    }
    set_throughput(state, bytes.size());
}
BENCHMARK(BM_put_chunk_hashing)->ArgName("bytes")->Arg(1 << 20)->Arg(4 << 20);

}  // namespace

BENCHMARK_MAIN();
