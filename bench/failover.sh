#!/usr/bin/env bash
# Failover time of the KV cluster on loopback, N runs (default 20). Each run: start three
# kv-server processes on free ports, write a few keys, find the primary with `kv-client status`,
# start a probe client (`kv-client bench --concurrency 1 --slow-ms 50`, one put always in
# flight), kill -9 the primary, and measure from the kill (date +%s%N) to the wall-clock end of
# the first put that completes ok after it (the probe prints slow requests at once with their
# wall-clock end). Then the cluster is stopped. Prints each run, the median and the maximum.
#
#   bench/failover.sh [RUNS] [BUILD_DIR]        (defaults: 20, build)
#
# The time includes everything a real client sees: the backups' view-change timeout (500 ms +
# up to 250 ms jitter), the view change, and the client's retry backoff to the new primary.
# Not a meson test. Every child is killed on exit.
set -u

runs=${1:-20}
build=${2:-build}
server=$build/examples/kv/kv-server
client=$build/examples/kv/kv-client
[ -x "$server" ] && [ -x "$client" ] || { echo "kv-server/kv-client not found under $build" >&2; exit 2; }
LOG_LEVEL=warn
source "$(dirname "$0")/../tests/cluster/lib.sh"
probe=""

stop_all() {
    [ -n "$probe" ] && kill -9 "$probe" 2>/dev/null && wait "$probe" 2>/dev/null
    probe=""
    stop_cluster
}
trap 'stop_all; cleanup' EXIT

results=()
for run in $(seq 1 "$runs"); do
    start_cluster >/dev/null
    for k in 1 2 3; do kv put "key$k" "value$k" >/dev/null || { echo "run $run: put failed" >&2; exit 1; }; done
    status=$(kv --timeout-ms 2000 status)
    primary=$(primary_of "$status")
    [ -n "$primary" ] || { echo "run $run: no primary in status:"; echo "$status"; exit 1; } >&2
    timeout 60 "$client" --replicas "$replicas" --cluster "$cluster" --timeout-ms 10000 \
        bench --concurrency 1 --requests 100000000 --value-size 16 --slow-ms 50 >"$work/probe.out" 2>&1 &
    probe=$!
    sleep 0.5  # the probe is connected and putting
    kill_ns=$(date +%s%N)
    kill -9 "${pid[$primary]}"
    wait "${pid[$primary]}" 2>/dev/null
    ms=""
    deadline=$((kill_ns + 30000000000))
    while [ "$(date +%s%N)" -lt "$deadline" ]; do
        end=$(awk -v k="$kill_ns" '$1 == "slow" && $6 > k && $10 == "ok" { print $6; exit }' "$work/probe.out")
        if [ -n "$end" ]; then
            ms=$(((end - kill_ns) / 1000000))
            break
        fi
        sleep 0.05
    done
    after=$(kv --timeout-ms 2000 status | sed -n 's/^replica=\([0-9]*\) status=normal role=primary view=\([0-9]*\).*/replica \1 view \2/p')
    stop_all
    if [ -z "$ms" ]; then
        echo "run $run: killed replica $primary, no successful put within 30 s"
        exit 1
    fi
    echo "run $run: killed primary replica $primary; next put ok after $ms ms; new primary: ${after:-?}"
    results+=("$ms")
done

sorted=($(printf '%s\n' "${results[@]}" | sort -n))
n=${#sorted[@]}
if [ $((n % 2)) -eq 1 ]; then
    median=${sorted[$((n / 2))]}
else
    median=$(((sorted[n / 2 - 1] + sorted[n / 2]) / 2))
fi
echo "runs $n: median $median ms, min ${sorted[0]} ms, max ${sorted[$((n - 1))]} ms"
