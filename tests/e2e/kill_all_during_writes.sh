#!/usr/bin/env bash
# kill -9 of every node at once (`cluster.sh kill all`, a power loss) during a stream of PUTs and
# DELETEs, then `cluster.sh revive all`: nothing acknowledged is lost. Four writers each work on
# keys of their own (w<I>/k<J>, 150 of them), one operation at a time: a PUT of a new value
# (small, or 100 KB in chunks, some sent at a limited rate so that they are in flight for a
# while) or a DELETE of a key the writer has PUT. A fifth PUT, sent slowly, is in flight when the
# nodes die. Each writer logs every operation with its answer; the writers go on through the
# kill and the revival and stop a few seconds after the cluster is ready again.
#
# An operation that was not acknowledged (anything but 200 for a PUT and 204 for a DELETE) may
# still take effect, even later than the acknowledged operations that follow it, so a writer
# leaves a key alone after a failure on it. Then, key by key:
# - every key whose last operation was an acknowledged PUT reads back as that value, byte for byte;
# - every key whose last operation was an acknowledged DELETE is absent (404);
# - a key whose last operation failed reads back as the state before it or the state it asked for;
# - a DELETE of a key its writer had PUT never answers 404 (that PUT would have been lost).
# Both kinds of acknowledged outcome are counted and must exist; at least one write must have been
# in flight at the kill (sent before it, answered after every node was gone), writes must have been
# sent while every node was down, and none of those acknowledged before the revival began.
#
#   kill_all_during_writes.sh path/to/cluster.sh      (TOASTYFS_BUILD: the build directory)
source "$(dirname "$0")/lib.sh"
watchdog 200

writers=4
keys_per_writer=150
before_s=5   # writing before the kill
down_s=3     # writing while every node is down
after_s=5    # writing once the cluster is ready again
start_cluster

mkdir -p "$work/values"
head -c 100000 /dev/urandom >"$work/chunked"

# writer I: until $work/stop exists, one operation at a time on its keys w<I>/k<1..>; one log line
# per operation: "SEQ OP KEY CODE START_MS END_MS VALUE_FILE" (VALUE_FILE "-" for a DELETE).
writer() {
    local i=$1 seq=0 j key f code t0 op
    local -A present=() tainted=()
    while [ ! -e "$work/stop" ]; do
        seq=$((seq + 1))
        j=$((RANDOM % keys_per_writer + 1))
        if [ -n "${tainted[$j]:-}" ]; then continue; fi
        key=w$i/k$j
        if [ -n "${present[$j]:-}" ] && ((RANDOM % 3 == 0)); then
            op=DELETE
            f=-
            t0=$(now_ms)
            code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 15 -X DELETE "$url/$key")
            [ "$code" = 204 ] && unset "present[$j]"
        else
            op=PUT
            f=$work/values/w$i.$seq
            if ((seq % 4 == 0)); then
                { printf 'writer %d op %d key %s\n' "$i" "$seq" "$key"; cat "$work/chunked"; } >"$f"
            else
                printf 'writer %d op %d key %s %s' "$i" "$seq" "$key" "$RANDOM$RANDOM" >"$f"
            fi
            local rate=()
            ((seq % 8 == 0)) && rate=(--limit-rate 400K)  # ~250 ms on the wire
            t0=$(now_ms)
            code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 15 "${rate[@]}" -T "$f" "$url/$key")
            [ "$code" = 200 ] && present[$j]=1
        fi
        echo "$seq $op $key $code $t0 $(now_ms) $f" >>"$work/log.$i"
        if { [ "$op" = PUT ] && [ "$code" != 200 ]; } || { [ "$op" = DELETE ] && [ "$code" != 204 ]; }; then
            tainted[$j]=1
            sleep 0.3
        fi
    done
}
writer_pids=()
for i in $(seq "$writers"); do
    writer "$i" &
    writer_pids+=("$!")
    extra_pids+=("$!")
done

sleep "$before_s"
# The slow PUT: 2 MB at 200 KB/s, started 0.5 s before the kill, so in flight when it comes.
head -c 2000000 /dev/urandom >"$work/values/slow"
(
    t0=$(now_ms)
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 30 --limit-rate 200K -T "$work/values/slow" "$url/slow/k1")
    echo "1 PUT slow/k1 $code $t0 $(now_ms) $work/values/slow" >"$work/log.slow"
) &
slow_pid=$!
extra_pids+=("$slow_pid")
sleep 0.5
kill_ms=$(now_ms)  # before the first signal
out=$(cluster kill all) || fail "cluster.sh kill all failed: $out"
killed_ms=$(now_ms)  # every node gone
echo "$out"
expect "nodes killed" 3 "$(grep -c 'killed node' <<<"$out")"
for n in 1 2 3; do alive "node$n" && fail "node $n still runs after cluster.sh kill all"; done
say "killed every node at once ($((killed_ms - kill_ms)) ms from the call to every node gone)"
sleep "$down_s"
reviving_ms=$(now_ms)  # before the first node starts again
out=$(cluster revive all) || fail "cluster.sh revive all failed: $out"
echo "$out"
grep -q -- --recovering <<<"$out" && fail "cluster.sh revive all passed --recovering to a node that kept its disk"
revived_ms=$(now_ms)
wait_all_normal 60
ready_ms=$(now_ms)
say "revived every node; all normal after $((ready_ms - revived_ms)) ms"
sleep "$after_s"
touch "$work/stop"
wait "${writer_pids[@]}" "$slow_pid" 2>/dev/null
cat "$work"/log.* >"$work/log"

# ---- what the writers saw ---------------------------------------------------------------------------
total=$(wc -l <"$work/log")
codes=$(awk '{print $2 ":" $4}' "$work/log" | sort | uniq -c | awk '{printf "%s=%s ", $2, $1}')
say "operations: $total ($codes)"
puts_acked=$(awk '$2 == "PUT" && $4 == 200' "$work/log" | wc -l)
deletes_acked=$(awk '$2 == "DELETE" && $4 == 204' "$work/log" | wc -l)
# shellcheck disable=SC2016  # an awk condition
failed='($2 == "PUT" && $4 != 200) || ($2 == "DELETE" && $4 != 204)'
failed_before=$(awk -v k="$kill_ms" "\$6 < k && ($failed)" "$work/log" | wc -l)
failed_after=$(awk -v k="$killed_ms" "\$6 > k && ($failed)" "$work/log" | wc -l)
# Sent while every node was gone: none may be acknowledged before the revival began (nothing can
# commit then). The proxy may hold one until the nodes are back and then succeed, so failures
# after the kill are reported but not required: some writes must have been sent in the outage.
sent_down=$(awk -v k="$killed_ms" -v r="$reviving_ms" '$5 > k && $5 < r' "$work/log" | wc -l)
acked_down=$(awk -v k="$killed_ms" -v r="$reviving_ms" '$5 > k && $6 < r && ($4 == 200 || $4 == 204)' "$work/log")
acked_after=$(awk -v r="$ready_ms" '$5 > r && ($4 == 200 || $4 == 204)' "$work/log" | wc -l)
# In flight at the kill: sent before cluster.sh kill all was called, answered after every node
# was gone (the slow PUT, and any other that spans those few hundred ms).
awk -v k="$kill_ms" -v d="$killed_ms" '$5 < k && $6 > d' "$work/log" >"$work/in_flight"
sed 's/^/  in flight at the kill: /' "$work/in_flight"
in_flight=$(wc -l <"$work/in_flight")
say "acknowledged: $puts_acked PUTs, $deletes_acked DELETEs ($acked_after sent after the revival); in flight at the kill: $in_flight ($(awk "$failed" "$work/in_flight" | wc -l) failed); sent while every node was down: $sent_down; failed after the kill: $failed_after"
[ "$failed_before" -eq 0 ] || fail "$failed_before operations failed before the kill: $(awk -v k="$kill_ms" "\$6 < k && ($failed)" "$work/log" | head -n 3)"
[ "$puts_acked" -gt 0 ] || fail "no PUT acknowledged"
[ "$deletes_acked" -gt 0 ] || fail "no DELETE acknowledged"
[ "$in_flight" -gt 0 ] || fail "no write was in flight when the nodes were killed"
[ "$sent_down" -gt 0 ] || fail "no operation was sent while every node was down"
[ -z "$acked_down" ] || fail "acknowledged while every node was down (were they?): $(head -n 3 <<<"$acked_down")"
[ "$acked_after" -gt 0 ] || fail "no operation acknowledged after the revival"
bad=$(awk '$2 == "DELETE" && $4 == 404' "$work/log" | head -n 3)
[ -z "$bad" ] || fail "a DELETE of a key its writer had PUT (acknowledged) answered 404: $bad"
# A failure is a status the proxy gives for an unknown outcome or no quorum (503, 504), or none
# (000: curl's timeout or a cut connection).
bad=$(awk '$4 != 200 && $4 != 204 && $4 != 503 && $4 != 504 && $4 != "000"' "$work/log" | head -n 3)
[ -z "$bad" ] || fail "operations answered unexpected codes: $bad"

# ---- the state every key must be in ------------------------------------------------------------------
# "KEY STATE [OTHER]": STATE is the value file of the last acknowledged PUT, or "absent"; OTHER,
# for a key whose last operation failed, is the state that operation asked for.
sort -k3,3 -k1,1n -s "$work/log" | awk '
    {
        key = $3
        if (!(key in state)) state[key] = "absent"
        if ($2 == "PUT" && $4 == 200) state[key] = $7
        else if ($2 == "DELETE" && $4 == 204) state[key] = "absent"
        else if ($2 == "PUT") other[key] = $7
        else other[key] = "absent"
    }
    END { for (key in state) print key, state[key], (key in other ? other[key] : "") }' | LC_ALL=C sort >"$work/expected"
cut -d' ' -f1 "$work/expected" >"$work/keys"
get_all "$work/keys" "$work/got"
expect "GETs answered" "$(wc -l <"$work/keys")" "$(wc -l <"$work/got.codes")"

# matches STATE CODE SIZE: the GET of a key (status CODE, SIZE bytes of $work/got.bodies from
# $offset) shows STATE.
matches() {
    if [ "$1" = absent ]; then
        [ "$2" = 404 ]
    else
        [ "$2" = 200 ] && [ "$3" = "$(stat -c %s "$1")" ] && slice "$work/got.bodies" "$offset" "$3" | cmp -s - "$1"
    fi
}
held=0 absent=0 ambiguous=0 wrong=0 offset=0
while read -r key state other <&3 && IFS=$'\t' read -r got_key code size <&4; do
    [ "$key" = "$got_key" ] || fail "key order: $key against $got_key"
    if matches "$state" "$code" "$size"; then
        if [ -n "$other" ]; then
            ambiguous=$((ambiguous + 1))
        elif [ "$state" = absent ]; then
            absent=$((absent + 1))
        else
            held=$((held + 1))
        fi
    elif [ -n "$other" ] && matches "$other" "$code" "$size"; then
        ambiguous=$((ambiguous + 1))
    else
        wrong=$((wrong + 1))
        echo "$key: expected $(basename "$state")${other:+ or $(basename "$other")}, GET answered $code$([ "$code" = 200 ] && echo " with other content")"
    fi
    offset=$((offset + size))
done 3<"$work/expected" 4<"$work/got.codes"
say "keys: $held hold their last acknowledged PUT, $absent are absent after an acknowledged DELETE, $ambiguous ended on a failed operation and show its state or the one before"
[ "$wrong" -eq 0 ] || fail "$wrong keys are not in their acknowledged state"
[ "$held" -gt 0 ] || fail "no key checked whose last acknowledged operation was a PUT"
[ "$absent" -gt 0 ] || fail "no key checked whose last acknowledged operation was a DELETE"
expect "keys checked" "$(wc -l <"$work/keys")" "$((held + absent + ambiguous))"
echo "E2E-FIGURES kill_all_ready_ms=$((ready_ms - revived_ms)) puts_acked=$puts_acked deletes_acked=$deletes_acked"
all_alive
say "ok"
