#!/usr/bin/env bash
# kill -9 of the primary during a stream of PUTs: four concurrent writers PUT unique values (small
# inline ones and 20 KB chunked ones) and record which got 200. After the kill and a while of
# writing under the new primary, every acknowledged object reads back identically; an object
# whose PUT failed either reads back as exactly its value or is absent. Reports the time from the
# kill to the first successful PUT sent after it. Then the killed node is revived: it reloads its
# journal from its disk (no --recovering), catches up, returns to normal, and everything reads
# back again.
#
#   kill_primary.sh path/to/cluster.sh      (TOASTYFS_BUILD: the build directory)
source "$(dirname "$0")/lib.sh"
watchdog 150

writers=4
before_s=3        # writing before the kill
after_s=6         # writing after the kill
start_cluster

mkdir -p "$work/values"
# writer I: PUTs w<I>/k<N> until $work/stop exists; one line per PUT: key code start_ms end_ms.
writer() {
    local i=$1 n=0 key f t0 code
    while [ ! -e "$work/stop" ]; do
        n=$((n + 1))
        key=w$i/k$n
        f=$work/values/w$i.k$n
        if ((n % 4 == 0)); then
            { printf 'writer %d put %d\n' "$i" "$n"; head -c 20000 /dev/urandom; } >"$f"
        else
            printf 'writer %d put %d %s' "$i" "$n" "$RANDOM$RANDOM" >"$f"
        fi
        t0=$(now_ms)
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 15 -T "$f" "$url/$key")
        echo "$key $code $t0 $(now_ms)" >>"$work/log.$i"
    done
}
writer_pids=()
for i in $(seq "$writers"); do
    writer "$i" &
    writer_pids+=("$!")
    extra_pids+=("$!")
done

sleep "$before_s"
victim=$(primary)
[ -n "$victim" ] || fail "no primary before the kill"
cluster kill "$victim" || fail "cluster.sh kill $victim failed"
kill_ms=$(now_ms)  # cluster.sh kill returns once the process is gone
say "killed the primary, node $victim"
sleep "$after_s"
touch "$work/stop"
wait "${writer_pids[@]}" 2>/dev/null
cat "$work"/log.* >"$work/log"

total=$(wc -l <"$work/log")
acked=$(awk '$2 == 200' "$work/log" | wc -l)
acked_before=$(awk -v k="$kill_ms" '$2 == 200 && $4 < k' "$work/log" | wc -l)
acked_after=$(awk -v k="$kill_ms" '$2 == 200 && $3 > k' "$work/log" | wc -l)
failed=$(awk '$2 != 200' "$work/log" | wc -l)
codes=$(awk '{print $2}' "$work/log" | sort | uniq -c | awk '{printf "%s:%s ", $2, $1}')
say "PUTs: $total sent, $acked acknowledged ($acked_before before the kill, $acked_after sent after it), $failed not (codes $codes)"
[ "$acked_before" -ge 10 ] || fail "only $acked_before PUTs acknowledged before the kill"
[ "$acked_after" -ge 10 ] || fail "only $acked_after PUTs sent after the kill were acknowledged: the cluster did not recover"
first_ms=$(awk -v k="$kill_ms" '$2 == 200 && $3 > k {print $4}' "$work/log" | sort -n | head -n 1)
recovery_ms=$((first_ms - kill_ms))
say "kill -9 -> first successful PUT sent after it: $recovery_ms ms"
echo "E2E-FIGURES kill_to_first_put_ms=$recovery_ms"
# Unexpected failure codes: 503/504 and curl's 000 (timeout) are the honest answers of a failover.
bad=$(awk '$2 != 200 && $2 != 503 && $2 != 504 && $2 != 000' "$work/log" | head -n 3)
[ -z "$bad" ] || fail "PUTs failed with unexpected codes: $bad"

new_primary=$(primary)
[ -n "$new_primary" ] && [ "$new_primary" != "$victim" ] || fail "no new primary (proxy sees '$new_primary'): $(status_json)"
say "new primary: node $new_primary"

# verify: every acknowledged PUT reads back byte-exact; every other one is exact or absent. The
# GETs go over one keep-alive connection (one curl, one output file per key).
verify() {
    local key code got lost=0 absent=0
    rm -rf "$work/got"
    mkdir -p "$work/got"
    awk -v u="$url" -v d="$work/got" '{ f = $1; sub("/", ".", f); printf "url = \"%s/%s\"\noutput = \"%s/%s\"\n", u, $1, d, f }' \
        "$work/log" | c -w '%{http_code}\n' -K - >"$work/got.codes"
    expect "GETs answered" "$(wc -l <"$work/log")" "$(wc -l <"$work/got.codes")"
    while read -r key code _ <&3 && read -r got <&4; do
        f=${key/\//.}
        if [ "$code" = 200 ]; then
            [ "$got" = 200 ] || { echo "acknowledged $key: GET answered $got"; lost=$((lost + 1)); continue; }
            cmp -s "$work/values/$f" "$work/got/$f" || { echo "acknowledged $key: wrong content"; lost=$((lost + 1)); }
        elif [ "$got" = 200 ]; then
            cmp -s "$work/values/$f" "$work/got/$f" || { echo "unacknowledged $key: content never written"; lost=$((lost + 1)); }
        elif [ "$got" = 404 ]; then
            absent=$((absent + 1))
        else
            echo "unacknowledged $key: GET answered $got"
            lost=$((lost + 1))
        fi
    done 3<"$work/log" 4<"$work/got.codes"
    [ "$lost" -eq 0 ] || fail "$lost objects lost or wrong ($1)"
    say "$1: all $acked acknowledged objects read back; $absent unacknowledged ones absent, the rest exact"
}
verify "after the kill"

revive_and_wait "$victim"
grep -q -- "--recovering" <<<"$revive_output" && fail "cluster.sh revive $victim passed --recovering, yet its disk is intact"
grep "node=$victim metadata: journal " "$TOASTYFS_HOME/logs/node$victim.log" | tail -n 1 | grep -q "journal loaded;" ||
    fail "node $victim did not load its journal at its revival: $(grep "metadata: journal " "$TOASTYFS_HOME/logs/node$victim.log" | tail -n 1)"
say "node $victim is back"
printf 'after revival' >"$work/v"
expect "PUT after revival" 200 "$(http_code -T "$work/v" "$url/after-revival")"
verify "after the revival"
all_alive
say "ok"
