#!/usr/bin/env bash
# Persistent kv-server replicas (--data) on loopback:
# - power off: kill -9 of all three servers during a stream of puts, then a restart from their
#   data directories: every put that was acknowledged reads back with its value;
# - a lost disk: one replica's data directory is deleted; restarted with --recovering it recovers
#   from the others, and then holds the data (the cluster serves with it and one other).
#
#   kv_persistence.sh path/to/kv-server path/to/kv-client
set -u

server=$1
client=$2
source "$(dirname "$0")/lib.sh"
persistent=1

all_normal() {
    local out
    out=$(kv --timeout-ms 2000 status) || return 1
    [ "$(echo "$out" | grep -c '^replica=[0-2] status=normal ')" -eq 3 ]
}

wait_all_normal() {
    local deadline=$(($(now_ms) + $1))
    until all_normal; do
        [ "$(now_ms)" -lt "$deadline" ] || fail "replicas not all normal within $1 ms: $(kv --timeout-ms 2000 status)"
        sleep 0.2
    done
}

start_cluster
wait_all_normal 10000

# ---- power off during a write stream --------------------------------------------------------
# Two writers, each its own key sequence; a put is acknowledged when kv-client printed OK.
acked="$work/acknowledged"
: >"$acked"
writer() {
    local n=0
    while :; do
        n=$((n + 1))
        if kv --timeout-ms 3000 put "w$1-$n" "v$1-$n" >/dev/null 2>&1; then echo "w$1-$n v$1-$n" >>"$acked"; fi
    done
}
writer a &
writer_a=$!
writer b &
writer_b=$!
deadline=$(($(now_ms) + 20000))
until [ "$(wc -l <"$acked")" -ge 120 ]; do
    [ "$(now_ms)" -lt "$deadline" ] || fail "only $(wc -l <"$acked") puts acknowledged in 20 s"
    sleep 0.05
done
for i in 0 1 2; do kill -9 "${pid[$i]}"; done  # all at once, mid-stream
for i in 0 1 2; do wait "${pid[$i]}" 2>/dev/null; done
kill "$writer_a" "$writer_b" 2>/dev/null
wait "$writer_a" "$writer_b" 2>/dev/null
count=$(wc -l <"$acked")
echo "killed all three replicas after $count acknowledged puts"
for i in 0 1 2; do
    [ -s "$work/data$i/journal" ] || fail "replica $i wrote no journal in $work/data$i"
done
for i in 0 1 2; do start_replica "$i"; done  # from their disks: no --recovering
wait_all_normal 15000
for i in 0 1 2; do
    grep -q "disk: loaded" "$work/replica$i.log" || fail "replica $i did not load its disk"
done
missing=0
while read -r key value; do
    out=$(kv --timeout-ms 10000 get "$key") || fail "acknowledged $key unreadable after the power-off: $out"
    [ "$out" = "$value" ] || { echo "acknowledged $key reads '$out', wrote '$value'"; missing=$((missing + 1)); }
done <"$acked"
[ "$missing" -eq 0 ] || fail "$missing of $count acknowledged puts lost"
echo "all $count acknowledged puts read back after restarting all three from disk"

# ---- one replica's disk lost -----------------------------------------------------------------
out=$(kv --timeout-ms 2000 status) || fail "status failed: $out"
lost=$(echo "$out" | sed -n 's/^replica=\([0-9]*\) status=normal role=backup .*/\1/p' | head -n 1)
[ -n "$lost" ] || fail "no backup in: $out"
kill -9 "${pid[$lost]}"
wait "${pid[$lost]}" 2>/dev/null
rm -rf "$work/data$lost"
for n in 1 2 3 4; do kv --timeout-ms 10000 put "while-lost-$n" "l$n" >/dev/null || fail "put with $lost down"; done
# Without --recovering it must not come back as a new, empty replica that votes: it refuses.
out=$(timeout 10 "$server" --replica "$lost" --replicas "$replicas" --cluster "$cluster" --data "$work/data$lost" 2>&1)
rc=$?
[ "$rc" -eq 1 ] && grep -q "holds no journal" <<<"$out" ||
    fail "replica $lost started without its journal and without --recovering (exit $rc): $out"
start_replica "$lost" --recovering
wait_all_normal 15000
grep -q "disk: empty" "$work/replica$lost.log" || fail "replica $lost did not start from an empty disk"
# It holds the data now: stop another replica, and the cluster serves with the recovered one.
other=$(((lost + 1) % 3))
kill -9 "${pid[$other]}"
wait "${pid[$other]}" 2>/dev/null
for n in 1 2 3 4; do
    out=$(kv --timeout-ms 15000 get "while-lost-$n") || fail "get with $other down and $lost recovered: $out"
    [ "$out" = "l$n" ] || fail "while-lost-$n reads '$out'"
done
key=$(head -n 1 "$acked" | cut -d' ' -f1)
value=$(head -n 1 "$acked" | cut -d' ' -f2)
out=$(kv --timeout-ms 15000 get "$key") || fail "get $key: $out"
[ "$out" = "$value" ] || fail "$key reads '$out', wrote '$value'"
kv --timeout-ms 15000 put after-recovery yes >/dev/null || fail "put with $other down and $lost recovered"
echo "replica $lost recovered a deleted data directory from the others and serves with them"
echo "PASS"
