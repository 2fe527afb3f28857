#!/usr/bin/env bash
# A node loses its whole data directory (metadata journal, SQLite store and chunks) while the
# cluster runs, and gets everything back from the others. Objects are written until every node
# has taken a metadata checkpoint (so the lost node must be sent one, not just a log), small ones
# stored inline and some of several 64 KiB chunks (the proxy runs short janitor settings:
# --janitor-interval-ms 500 --node-down-grace-ms 1000). A backup is killed (kill -9), its data
# directory deleted, more objects are written without it, and `cluster.sh revive` must pass it
# --recovering (its superblock is gone; formatting itself as a new replica would be unsafe). It
# must log that it starts recovering, return to normal, catch up (its commit reaches the
# others'), and count the recovery completed (recoveries=1 in its counters); every object reads
# back byte for byte. Once the janitor has restored two copies of every chunk, the primary (a
# DIFFERENT node) is killed: the recovered node is now needed for the quorum, and every object
# must still read back.
#
#   data_dir_lost.sh path/to/cluster.sh      (TOASTYFS_BUILD: the build directory)
source "$(dirname "$0")/lib.sh"
watchdog 240

export TOASTYFS_PROXY_ARGS="--janitor-interval-ms 500 --node-down-grace-ms 1000 --chunk-size 65536"
start_cluster
data=$TOASTYFS_HOME/data
mkdir -p "$work/values"
: >"$work/keys"

# write_objects PREFIX SMALL CHUNKED: SMALL objects of 20 to 2,000 bytes (inline) and CHUNKED ones
# of 100 to 300 KB (several chunks) under PREFIX, each PUT checked; their keys added to
# $work/keys.
write_objects() {
    local list=$work/list.$1
    awk -v p="$1" -v n="$2" -v d="$work/values" -v seed="$RANDOM" 'BEGIN {
        srand(seed)
        for (i = 0; i < n; i++) {
            key = sprintf("%s/s%05d", p, i)
            name = key
            gsub("/", "+", name)
            size = 20 + int(rand() * 1980)
            body = key
            while (length(body) < size) body = body " " int(rand() * 1000000000)
            printf "%s", body >(d "/" name)
            close(d "/" name)
            print key "\t" d "/" name
        }
    }' >"$list"
    for ((i = 0; i < $3; i++)); do
        local key name
        key=$(printf '%s/c%02d' "$1" "$i")
        name=$(key_name "$key")
        head -c $((100000 + RANDOM * 6)) /dev/urandom >"$work/values/$name"
        printf '%s\t%s\n' "$key" "$work/values/$name" >>"$list"
    done
    put_all "$list"
    expect "PUTs of $1 answered" "$(($2 + $3))" "$(wc -l <"$list.codes")"
    local bad
    bad=$(awk -F '\t' '$2 != 200' "$list.codes" | head -n 3)
    [ -z "$bad" ] || fail "PUTs of $1 failed: $bad"
    cut -f1 "$list" >>"$work/keys"
    LC_ALL=C sort -o "$work/keys" "$work/keys"
}

# node_field N NAME: a field of node N in /?status.
node_field() { json_field "$(json_node "$(status_json)" "$1")" "$2"; }
checkpoints() { echo "node1=$(node_field 1 checkpoint) node2=$(node_field 2 checkpoint) node3=$(node_field 3 checkpoint)"; }

# read_all WHAT SECONDS: every object reads back (200) byte for byte; all of them are read again
# until that holds, within SECONDS (right after a kill a GET may meet a view change).
read_all() {
    local deadline=$((SECONDS + $2)) differs bad
    while :; do
        get_all "$work/keys" "$work/got"
        bad=$(awk -F '\t' '$2 != 200' "$work/got.codes" | head -n 3 | tr '\t\n' ' ;')
        if [ -z "$bad" ] && [ "$(wc -l <"$work/got.codes")" -eq "$(wc -l <"$work/keys")" ]; then
            differs=$(same_bodies "$work/keys" "$work/values" "$work/got") && break
            bad="$differs reads back different content"
        fi
        [ $SECONDS -lt $deadline ] || fail "$1: not every object reads back after $2 s: $bad"
        sleep 0.5
    done
    say "$1: all $(wc -l <"$work/keys") objects read back byte for byte"
}

# ---- objects, until every node has a checkpoint ------------------------------------------------------
round=0
while :; do
    round=$((round + 1))
    write_objects "r$round" 1000 4
    ok=1
    for n in 1 2 3; do [ "$(node_field "$n" checkpoint)" -gt 0 ] 2>/dev/null || ok=0; done
    [ "$ok" = 1 ] && break
    [ "$round" -lt 8 ] || fail "no checkpoint on every node after $round rounds of writes: $(checkpoints)"
done
say "$(wc -l <"$work/keys") objects written; checkpoints $(checkpoints)"
read_all "before the loss" 10

p=$(primary)
[ -n "$p" ] || fail "no primary"
victim=$((p % 3 + 1))  # a backup
third=$((6 - p - victim))

# ---- the loss: kill -9, delete the data directory, write on without it --------------------------------
cluster kill "$victim" || fail "cluster.sh kill $victim failed"
rm -rf "${data:?}/node$victim"
[ -e "$data/node$victim" ] && fail "node $victim's data directory is still there"
say "node $victim (a backup; primary node $p) killed and its data directory deleted"
write_objects "without$victim" 300 2
say "wrote 302 more objects without node $victim"

log=$TOASTYFS_HOME/logs/node$victim.log
lines=$(wc -l <"$log")
started=$(now_ms)
revive_and_wait "$victim" 60
grep -q -- "--recovering" <<<"$revive_output" ||
    fail "cluster.sh revive $victim did not pass --recovering, yet its data directory is gone"
since=$(tail -n +"$((lines + 1))" "$log")
line=$(grep -m 1 "metadata: journal " <<<"$since")
echo "  node $victim: ${line#*INFO  }"
[[ "$line" == *"metadata: journal empty;"*", recovering" ]] || fail "node $victim did not start recovering: '$line'"
normal_ms=$(($(now_ms) - started))

# ---- it catches up: its commit reaches the others' (nothing is written meanwhile) --------------------
deadline=$((SECONDS + 30))
while :; do
    json=$(status_json)
    commits=""
    for n in 1 2 3; do commits+=" $(json_field "$(json_node "$json" "$n")" commit)"; done
    read -r c1 c2 c3 <<<"$commits"
    if [ -n "$c1" ] && [ "$c1" = "$c2" ] && [ "$c2" = "$c3" ]; then break; fi
    [ $SECONDS -lt $deadline ] || fail "node $victim did not catch up within 30 s: commits$commits"
    sleep 0.2
done
caught_ms=$(($(now_ms) - started))
say "node $victim: normal $normal_ms ms after its revival, caught up after $caught_ms ms (commit $c1 on every node; checkpoints $(checkpoints))"
echo "E2E-FIGURES data_dir_lost_normal_ms=$normal_ms caught_up_ms=$caught_ms"
read_all "after the recovery" 10

# ---- the janitor restores two copies of every chunk (node $victim lost its copies) -------------------
deadline=$((SECONDS + 60))
until [ "$(chunk_copies 1 2 3 | awk '$1 < 2' | wc -l)" -eq 0 ]; do
    [ $SECONDS -lt $deadline ] ||
        fail "$(chunk_copies 1 2 3 | awk '$1 < 2' | wc -l) chunks still have fewer than 2 copies after 60 s"
    sleep 0.5
done
say "every one of $(chunk_copies 1 2 3 | wc -l) chunks has 2 copies again; node $victim holds $(chunk_copies "$victim" | wc -l)"

# ---- its log says it recovered: the counters (every 10 s) count the recovery ----------------------------
deadline=$((SECONDS + 15))
until tail -n +"$((lines + 1))" "$log" | grep -q "node=$victim counters .* recoveries=1 "; do
    [ $SECONDS -lt $deadline ] || fail "node $victim's counters do not show recoveries=1: $(tail -n +"$((lines + 1))" "$log" | grep counters | tail -n 1)"
    sleep 0.5
done
say "node $victim logs: $(tail -n +"$((lines + 1))" "$log" | grep -o 'counters .* recoveries=1' | tail -n 1)"

# ---- kill the primary: the recovered node is needed for the quorum ------------------------------------
cluster kill "$p" || fail "cluster.sh kill $p failed"
say "node $p (the primary) killed; nodes $victim (recovered) and $third remain"
read_all "node $p down" 60
new_primary=$(primary)
if [ -z "$new_primary" ] || [ "$new_primary" = "$p" ]; then fail "no new primary (proxy sees '$new_primary')"; fi
printf 'written with node %s down' "$p" >"$work/values/late"
expect "PUT with node $p down" 200 "$(http_code -T "$work/values/late" "$url/late")"
expect "GET late" 200 "$(http_code "$url/late")"
cmp -s "$work/values/late" "$work/body" || fail "GET late: different content"
for name in proxy "node$victim" "node$third"; do alive "$name" || fail "$name is not running"; done
say "ok"
