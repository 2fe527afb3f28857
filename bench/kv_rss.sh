#!/usr/bin/env bash
# Memory of persistent kv-servers under a long run of puts over a bounded key space: three
# replicas with --data, `kv-client bench --concurrency C --requests PUTS --keys KEYS`, and every
# INTERVAL seconds one sample: seconds since the start, puts acknowledged so far (the client's
# --progress-ms line), the primary's commit op (kv-client status) and each server's RSS (VmRSS
# from /proc/PID/status, MiB). With checkpoints every 1024 ops and a log of at most 4096 entries
# the RSS should be flat once the log window has filled (commit op > 4096); the summary prints,
# per replica, the RSS then, its min and max after it, and the last sample. Then the servers get
# SIGTERM and their last "counters" lines give syncs, ops, checkpoints (bench/kv_counters.sh).
#
#   bench/kv_rss.sh [BUILD_DIR]        (default: build)
#
# Environment: PUTS (10000000), CONCURRENCY (64), KEYS (10000), VALUE_SIZE (100), INTERVAL (5 s),
# MAX_SECONDS (480: the client is stopped then, and the summary says how many puts it made).
# Not a meson test. Every server is stopped on exit.
set -u

build=${1:-build}
server=$build/examples/kv/kv-server
client=$build/examples/kv/kv-client
[ -x "$server" ] && [ -x "$client" ] || { echo "kv-server/kv-client not found under $build" >&2; exit 2; }
puts=${PUTS:-10000000}
concurrency=${CONCURRENCY:-64}
keys=${KEYS:-10000}
value_size=${VALUE_SIZE:-100}
interval=${INTERVAL:-5}
max_seconds=${MAX_SECONDS:-480}

LOG_LEVEL=info  # the servers' "counters" lines are info; nothing is logged per request
source "$(dirname "$0")/../tests/cluster/lib.sh"
source "$(dirname "$0")/kv_counters.sh"
persistent=1
client_pid=""
trap '[ -n "$client_pid" ] && kill "$client_pid" 2>/dev/null; cleanup' EXIT

sync
start_cluster >/dev/null
kv put warmup 1 >/dev/null || fail "kv cluster not answering"
echo "$puts puts, concurrency $concurrency, $keys keys, value size $value_size; persistent; sample every ${interval} s"
rss_mib() { awk '/^VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$1/status" 2>/dev/null || echo "?"; }
sample() {  # prints one row and appends it to $work/samples
    local elapsed=$1 acked commit row
    acked=$(grep '^progress ' "$work/client.out" 2>/dev/null | tail -n1 | sed -n 's/.* ok \([0-9]*\) .*/\1/p')
    commit=$(kv status 2>/dev/null | sed -n 's/.* role=primary .* commit=\([0-9]*\).*/\1/p' | head -n1)
    row=$(printf '%8s %12s %12s %10s %10s %10s %10s' "$elapsed" "${acked:-0}" "${commit:-?}" "$(rss_mib "${pid[0]}")" \
        "$(rss_mib "${pid[1]}")" "$(rss_mib "${pid[2]}")" "$(rss_mib "$client_pid")")
    echo "$row" >>"$work/samples"
    echo "$row"
}
printf '%8s %12s %12s %10s %10s %10s %10s\n' seconds puts_acked commit_op rss0_MiB rss1_MiB rss2_MiB client_MiB
"$client" --replicas "$replicas" --cluster "$cluster" bench --concurrency "$concurrency" --requests "$puts" \
    --value-size "$value_size" --keys "$keys" --progress-ms $((interval * 1000)) >"$work/client.out" 2>&1 &
client_pid=$!
start=$(now_ms)
next=$interval
stopped_early=0
: >"$work/samples"
sample 0
while process_running "$client_pid"; do
    sleep 0.2
    elapsed_ms=$(($(now_ms) - start))
    if [ "$elapsed_ms" -ge $((next * 1000)) ]; then
        sample "$next"
        next=$((next + interval))
    fi
    if [ "$elapsed_ms" -ge $((max_seconds * 1000)) ]; then
        stopped_early=1
        kill "$client_pid" 2>/dev/null
        break
    fi
done
wait "$client_pid" 2>/dev/null
client_status=$?
elapsed_ms=$(($(now_ms) - start))
sample "$((elapsed_ms / 1000))"
echo
if [ "$stopped_early" = 1 ]; then
    acked=$(tail -n1 "$work/samples" | awk '{print $2}')
    echo "stopped after $max_seconds s (MAX_SECONDS): $acked of $puts puts acknowledged"
else
    grep -v '^progress ' "$work/client.out"
    acked=$(sed -n 's/.* ok \([0-9]*\) .*/\1/p' "$work/client.out" | grep -v '^$' | tail -n1)
fi
echo
# RSS per replica: when the log window had filled (first sample with commit op > 4096), then its
# min and max after that, and the last sample.
awk '
    $3 ~ /^[0-9]+$/ && $3 > 4096 && !filled { filled = 1; t = $1; for (r = 0; r < 3; r++) { at[r] = $(4 + r); lo[r] = hi[r] = at[r] } }
    filled { for (r = 0; r < 3; r++) { v = $(4 + r); if (v < lo[r]) lo[r] = v; if (v > hi[r]) hi[r] = v; last[r] = v } }
    END {
        if (!filled) { print "the log window never filled (commit op <= 4096)"; exit }
        printf "RSS MiB from %s s on (commit op > 4096): ", t
        for (r = 0; r < 3; r++) printf "replica %d %s then, min %s, max %s, last %s%s", r, at[r], lo[r], hi[r], last[r], (r < 2 ? "; " : "\n") }' \
    "$work/samples"
echo
kv_stop_and_count $((${acked:-0} + 1)) || true  # + the warm-up put
echo "data directory per replica: $(du -sh "$work"/data0 "$work"/data1 "$work"/data2 | cut -f1 | tr '\n' ' ')"
[ "$stopped_early" = 0 ] && [ "$client_status" = 0 ]
