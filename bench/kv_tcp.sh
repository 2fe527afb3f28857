#!/usr/bin/env bash
# KV over TCP on loopback: three kv-server processes and `kv-client bench` at several
# concurrencies. Prints one row per concurrency: ops/s and p50/p99 latency (microseconds).
# Then stops the servers with SIGTERM (each logs its final counters) and prints, per replica,
# the storage syncs (fdatasync calls) and ops executed from its last "counters" log line, and
# the primary's fsyncs per committed op (an op is a batch of client requests) and per
# acknowledged put (successful requests of every row plus the warm-up put).
#
#   bench/kv_tcp.sh [BUILD_DIR]        (default: build)
#
# Environment: CONCURRENCIES (default "1 16 256"), REQUESTS (default 20000),
# REQUESTS_C1 (requests at concurrency 1, default 5000), VALUE_SIZE (default 100),
# PERSISTENT (1: the servers run with --data, journal and checkpoints fsynced; default 0,
# diskless). Not a meson test. Every server is killed on exit.
set -u

build=${1:-build}
server=$build/examples/kv/kv-server
client=$build/examples/kv/kv-client
[ -x "$server" ] && [ -x "$client" ] || { echo "kv-server/kv-client not found under $build" >&2; exit 2; }
concurrencies=${CONCURRENCIES:-"1 16 256"}
requests=${REQUESTS:-20000}
requests_c1=${REQUESTS_C1:-5000}
value_size=${VALUE_SIZE:-100}
LOG_LEVEL=info  # the "counters" lines are info; the servers log nothing per request
source "$(dirname "$0")/../tests/cluster/lib.sh"
source "$(dirname "$0")/kv_counters.sh"
[ "${PERSISTENT:-0}" = 1 ] && persistent=1
start_cluster >/dev/null

bench_kv() { timeout 300 "$client" --replicas "$replicas" --cluster "$cluster" "$@"; }
bench_kv put warmup 1 >/dev/null || { echo "cluster not answering" >&2; exit 1; }

echo "replicas $replicas, value size $value_size, $([ "$persistent" = 1 ] && echo "persistent (--data, fsync on)" || echo diskless)"
printf '%12s %10s %10s %12s %10s %10s %8s\n' concurrency requests failed ops/s p50_us p99_us max_us
status=0
acked=1  # the warm-up put
for c in $concurrencies; do
    n=$requests
    [ "$c" -eq 1 ] && n=$requests_c1
    out=$(bench_kv bench --concurrency "$c" --requests "$n" --value-size "$value_size") || status=1
    failed=$(echo "$out" | sed -n 's/.* failed \([0-9]*\) .*/\1/p')
    ops=$(echo "$out" | sed -n 's/.*, \([0-9]*\) ops\/s/\1/p')
    p50=$(echo "$out" | sed -n 's/.*p50 \([0-9]*\).*/\1/p')
    p99=$(echo "$out" | sed -n 's/.*p99 \([0-9]*\).*/\1/p')
    max=$(echo "$out" | sed -n 's/.*max \([0-9]*\).*/\1/p')
    ok=$(echo "$out" | sed -n 's/.* ok \([0-9]*\) .*/\1/p')
    acked=$((acked + ${ok:-0}))
    printf '%12s %10s %10s %12s %10s %10s %8s\n' "$c" "$n" "${failed:-?}" "${ops:-?}" "${p50:-?}" "${p99:-?}" "${max:-?}"
done

# The servers' own counters (bench/kv_counters.sh): SIGTERM, then their last "counters" lines.
echo
kv_stop_and_count "$acked" || status=1
exit $status
