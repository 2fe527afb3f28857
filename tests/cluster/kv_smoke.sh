#!/usr/bin/env bash
# Smoke test of the KV example as real processes: three kv-server replicas on loopback, kv-client
# commands, `kv-client status` (who is primary), kill -9 of the primary (the cluster must keep
# serving within 10 s), a --recovering restart, then kill -9 of the primary that status reports,
# and a clean SIGTERM shutdown.
#
#   kv_smoke.sh path/to/kv-server path/to/kv-client
#
# Every child is killed on exit, success or not; every client call runs under `timeout`.
set -u

server=$1
client=$2
source "$(dirname "$0")/lib.sh"

# Strict flags: bad input gives exit code 2, not a crash.
"$server" --replica x --replicas 127.0.0.1:1 --cluster 1 >/dev/null 2>&1
[ $? -eq 2 ] || fail "kv-server with a bad --replica should exit 2"
"$server" --replica 3 --replicas 127.0.0.1:1,127.0.0.1:2 --cluster 1 >/dev/null 2>&1
[ $? -eq 2 ] || fail "kv-server with --replica out of range should exit 2"
"$server" --bogus >/dev/null 2>&1
[ $? -eq 2 ] || fail "kv-server with an unknown flag should exit 2"
"$client" --replicas 127.0.0.1:1 --cluster 1 frobnicate >/dev/null 2>&1
[ $? -eq 2 ] || fail "kv-client with an unknown command should exit 2"
"$client" --replicas 127.0.0.1:1 --cluster 1 put onlykey >/dev/null 2>&1
[ $? -eq 2 ] || fail "kv-client put without a value should exit 2"

start_cluster


out=$(kv put greeting hello) || fail "put failed: $out"
[ "$out" = "OK" ] || fail "put printed '$out'"
out=$(kv get greeting) || fail "get failed: $out"
[ "$out" = "hello" ] || fail "get printed '$out', expected 'hello'"
out=$(kv get missing)
[ $? -eq 1 ] && [ "$out" = "not found" ] || fail "get of a missing key: '$out'"
out=$(kv cas greeting hello hi) || fail "cas failed: $out"
out=$(kv cas greeting hello hi)
[ $? -eq 1 ] && [ "$out" = "mismatch" ] || fail "cas with a stale value: '$out'"
echo "put/get/cas ok"

out=$(kv --timeout-ms 2000 status) || fail "status failed: $out"
echo "$out"
[ "$(echo "$out" | grep -c '^replica=[0-2] status=normal role=[a-z]* view=0 op=[0-9]* commit=')" -eq 3 ] ||
    fail "status should show three normal replicas in view 0"
[ "$(primary_of "$out")" = "0" ] || fail "status should report replica 0 as the primary of view 0"

# Kill the primary of view 0 (replica 0) without warning.
kill -9 "${pid[0]}"
wait "${pid[0]}" 2>/dev/null
start=$(now_ms)
out=$(kv --timeout-ms 10000 put after-crash value1) || fail "put after killing the primary: $out"
out=$(kv --timeout-ms 10000 get after-crash) || fail "get after killing the primary: $out"
[ "$out" = "value1" ] || fail "get after the crash printed '$out'"
elapsed=$(($(now_ms) - start))
[ "$elapsed" -le 10000 ] || fail "failover took ${elapsed} ms (more than 10 s)"
out=$(kv get greeting) || fail "get of the old key after the crash: $out"
[ "$out" = "hi" ] || fail "old key after the crash: '$out'"
echo "failover ok: put+get in ${elapsed} ms"
out=$(kv --timeout-ms 1000 status) || fail "status after the crash failed: $out"
echo "$out"
echo "$out" | grep -q '^replica=0 unreachable$' || fail "status should report the killed replica 0 unreachable"
new_primary=$(primary_of "$out")
[ -n "$new_primary" ] && [ "$new_primary" != "0" ] || fail "status should report a new primary (not 0)"

# Restart replica 0 with wiped memory; it recovers from the others.
start_replica 0 --recovering
deadline=$(($(now_ms) + 10000))
until grep -q -- "-> normal" "$work/replica0.log"; do
    [ "$(now_ms)" -lt "$deadline" ] || fail "replica 0 did not recover within 10 s"
    kill -0 "${pid[0]}" 2>/dev/null || fail "recovering replica 0 exited"
    sleep 0.1
done
echo "replica 0 recovered"

# Now kill the primary that status reports (not replica 0: it was just recovered as a backup);
# two replicas remain, one of them the recovered replica 0.
out=$(kv --timeout-ms 2000 status) || fail "status after the recovery failed: $out"
echo "$out"
victim=$(primary_of "$out")
[ -n "$victim" ] && [ "$victim" != "0" ] || fail "status should report one primary other than replica 0"
echo "$out" | grep -q '^replica=0 status=normal role=backup ' || fail "recovered replica 0 should be a normal backup"
kill -9 "${pid[$victim]}"
wait "${pid[$victim]}" 2>/dev/null
start=$(now_ms)
out=$(kv --timeout-ms 10000 put after-second-crash value2) || fail "put after the second crash: $out"
out=$(kv --timeout-ms 10000 get after-crash) || fail "get after the second crash: $out"
[ "$out" = "value1" ] || fail "value written before the second crash: '$out'"
elapsed=$(($(now_ms) - start))
[ "$elapsed" -le 10000 ] || fail "second failover took ${elapsed} ms (more than 10 s)"
echo "second failover ok (with the recovered replica in the quorum): ${elapsed} ms"

# A short benchmark.
out=$(kv bench --concurrency 8 --requests 2000 --value-size 64) || fail "bench failed: $out"
echo "$out"

out=$(kv --timeout-ms 1000 status) || fail "status after the second crash failed: $out"
echo "$out"
echo "$out" | grep -q "^replica=$victim unreachable\$" || fail "status should report replica $victim unreachable"
p=$(primary_of "$out")
[ -n "$p" ] && [ "$p" != "$victim" ] || fail "status should report a primary other than $victim"
survivors=()
for i in 0 1 2; do [ "$i" != "$victim" ] && survivors+=("$i"); done

# Clean shutdown on SIGTERM.
for i in "${survivors[@]}"; do kill -TERM "${pid[$i]}"; done
for i in "${survivors[@]}"; do
    deadline=$(($(now_ms) + 5000))
    while kill -0 "${pid[$i]}" 2>/dev/null; do
        [ "$(now_ms)" -lt "$deadline" ] || fail "replica $i did not exit on SIGTERM"
        sleep 0.05
    done
    wait "${pid[$i]}"
    code=$?
    [ "$code" -eq 0 ] || fail "replica $i exited with $code on SIGTERM"
    grep -q "stopped" "$work/replica$i.log" || fail "replica $i did not log a clean stop"
done
echo "PASS"
