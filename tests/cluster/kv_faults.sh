#!/usr/bin/env bash
# Faults against real kv-server processes on loopback:
# - acknowledged writes survive kill -9 of the primary: every put that returned OK before or
#   after the kill reads back with its value;
# - kill -9 of a backup and a --recovering restart: it returns to normal and catches up to the
#   primary's commit;
# - garbage, a zero-length header, a huge length and a slowloris trickle sent to replica ports:
#   every replica stays up and the cluster keeps serving.
#
#   kv_faults.sh path/to/kv-server path/to/kv-client
set -u

server=$1
client=$2
source "$(dirname "$0")/lib.sh"

# status_field STATUS_OUTPUT INDEX FIELD: e.g. the executed op of replica 1.
status_field() { echo "$1" | sed -n "s/^replica=$2 .* $3=\([0-9]*\).*/\1/p"; }

# all_normal: status shows three normal replicas.
all_normal() {
    local out
    out=$(kv --timeout-ms 2000 status) || return 1
    [ "$(echo "$out" | grep -c '^replica=[0-2] status=normal ')" -eq 3 ]
}

start_cluster

# ---- acknowledged writes survive kill -9 of the primary -------------------------------------
declare -A acknowledged
for n in 1 2 3 4 5 6 7 8; do
    out=$(kv --timeout-ms 10000 put "key$n" "value$n") && acknowledged["key$n"]="value$n"
done
out=$(kv --timeout-ms 2000 status) || fail "status failed: $out"
primary=$(primary_of "$out")
[ -n "$primary" ] || fail "no primary in: $out"
kill -9 "${pid[$primary]}"
wait "${pid[$primary]}" 2>/dev/null
for n in 9 10 11 12 13 14 15 16; do
    out=$(kv --timeout-ms 10000 put "key$n" "value$n") && acknowledged["key$n"]="value$n"
done
[ "${#acknowledged[@]}" -ge 8 ] || fail "only ${#acknowledged[@]} of 16 puts were acknowledged"
for key in "${!acknowledged[@]}"; do
    out=$(kv --timeout-ms 10000 get "$key") || fail "acknowledged $key unreadable after the crash: $out"
    [ "$out" = "${acknowledged[$key]}" ] || fail "acknowledged $key reads '$out', wrote '${acknowledged[$key]}'"
done
echo "all ${#acknowledged[@]} acknowledged writes read back after killing primary $primary"
start_replica "$primary" --recovering
deadline=$(($(now_ms) + 15000))
until all_normal; do
    [ "$(now_ms)" -lt "$deadline" ] || fail "replica $primary did not recover within 15 s"
    sleep 0.2
done

# ---- kill -9 of a backup, restart, catch up -------------------------------------------------
out=$(kv --timeout-ms 2000 status) || fail "status failed: $out"
primary=$(primary_of "$out")
backup=$(echo "$out" | sed -n 's/^replica=\([0-9]*\) status=normal role=backup .*/\1/p' | head -n 1)
[ -n "$primary" ] && [ -n "$backup" ] || fail "no primary or backup in: $out"
kill -9 "${pid[$backup]}"
wait "${pid[$backup]}" 2>/dev/null
for n in 1 2 3 4; do
    kv --timeout-ms 10000 put "while-down-$n" "v$n" >/dev/null || fail "put with backup $backup down"
done
start_replica "$backup" --recovering
deadline=$(($(now_ms) + 15000))
while :; do
    out=$(kv --timeout-ms 2000 status)
    commit=$(status_field "$out" "$primary" commit)
    executed=$(status_field "$out" "$backup" executed)
    if echo "$out" | grep -q "^replica=$backup status=normal " && [ -n "$commit" ] &&
        [ -n "$executed" ] && [ "$executed" -ge "$commit" ]; then
        break
    fi
    [ "$(now_ms)" -lt "$deadline" ] || fail "backup $backup did not catch up within 15 s: $out"
    sleep 0.2
done
echo "backup $backup restarted and caught up (executed $executed >= primary commit $commit)"

# ---- hostile bytes on replica ports ---------------------------------------------------------
# send_bytes PORT: writes stdin to a fresh TCP connection (bash /dev/tcp), bounded in time.
send_bytes() { timeout 5 bash -c "cat > /dev/tcp/127.0.0.1/$1" 2>/dev/null; }

# A slowloris trickle on every port, in the background while the rest runs.
for i in 0 1 2; do
    timeout 8 bash -c "exec 3<>/dev/tcp/127.0.0.1/${port[$i]}; for n in \$(seq 1 30); do printf 'x' >&3; sleep 0.25; done" \
        2>/dev/null &
done
for i in 0 1 2; do
    head -c 4096 /dev/urandom | send_bytes "${port[$i]}"             # garbage
    head -c 80 /dev/zero | send_bytes "${port[$i]}"                   # a zero-length header
    printf '\xff%.0s' $(seq 1 120) | send_bytes "${port[$i]}"         # a huge length
    : | send_bytes "${port[$i]}"                                      # connect, then close
done
for n in 1 2 3; do
    kv --timeout-ms 10000 put "after-garbage-$n" "g$n" >/dev/null || fail "put after hostile bytes"
    out=$(kv --timeout-ms 10000 get "after-garbage-$n") || fail "get after hostile bytes: $out"
    [ "$out" = "g$n" ] || fail "after hostile bytes read '$out'"
done
wait_all_background() { for job in $(jobs -p); do case " ${pid[*]} " in *" $job "*) ;; *) wait "$job" 2>/dev/null;; esac; done; }
wait_all_background
for i in 0 1 2; do kill -0 "${pid[$i]}" 2>/dev/null || fail "replica $i died from hostile bytes"; done
all_normal || fail "replicas not all normal after hostile bytes"
echo "replicas survived garbage, zero-length, huge-length and slowloris input and kept serving"
echo "PASS"
