#!/usr/bin/env bash
# Disk loss on a backup, repaired by the janitor. The proxy runs short janitor settings
# (--janitor-interval-ms 500 --node-down-grace-ms 1000) and 64 KiB chunks. Objects are written,
# every chunk has two copies; a backup is killed, its data directory deleted, and it is revived
# with an empty disk (cluster.sh passes --recovering: its superblock is gone). The janitor must
# restore two copies of every chunk (the repairs counter of /?status grows; the per-node chunk
# counts and the chunk files on disk show it). Then a DIFFERENT node is killed, and every object
# still reads back byte-exact: the repaired copies exist and are served.
#
#   disk_loss.sh path/to/cluster.sh      (TOASTYFS_BUILD: the build directory)
source "$(dirname "$0")/lib.sh"
watchdog 150

export TOASTYFS_PROXY_ARGS="--janitor-interval-ms 500 --node-down-grace-ms 1000 --chunk-size 65536"
start_cluster
data=$TOASTYFS_HOME/data

# ---- objects: 24 of 2 to 7 chunks, and 4 small inline ones -----------------------------------------
mkdir -p "$work/values"
for i in $(seq 24); do
    head -c $((100000 + (RANDOM % 30) * 10000)) /dev/urandom >"$work/values/o$i"
done
for i in $(seq 4); do printf 'inline object %d %s' "$i" "$RANDOM" >"$work/values/s$i"; done
for f in "$work"/values/*; do
    expect "PUT $(basename "$f")" 200 "$(http_code -T "$f" "$url/obj/$(basename "$f")")"
done

distinct=$(chunk_copies 1 2 3 | wc -l)
[ "$distinct" -ge 24 ] || fail "only $distinct chunks on disk"
under=$(chunk_copies 1 2 3 | awk '$1 < 2' | wc -l)
expect "chunks with fewer than 2 copies after the PUTs" 0 "$under"
say "$distinct chunks, each with 2 or more copies"

# node_chunks N: the chunks node N reports in /?status; repairs: the janitor's repairs.
node_chunks() { json_field "$(json_node "$(status_json)" "$1")" chunks; }
# wait_status_current: until every node's chunk count in /?status equals the chunk files on its
# disk. The proxy polls the nodes' status periodically: wait for that poll, don't sleep through it.
wait_status_current() {
    local deadline=$((SECONDS + 30)) n stale
    while :; do
        stale=""
        for n in 1 2 3; do
            [ "$(node_chunks "$n")" = "$(chunk_copies "$n" | wc -l)" ] || stale+=" node$n"
        done
        [ -z "$stale" ] && return 0
        [ $SECONDS -lt $deadline ] || fail "/?status chunk counts differ from the disks after 30 s:$stale ($(chunk_counts))"
        sleep 0.2
    done
}
repairs() { json_field "$(status_json)" repairs; }
chunk_counts() { echo "node1=$(node_chunks 1) node2=$(node_chunks 2) node3=$(node_chunks 3)"; }

p=$(primary)
[ -n "$p" ] || fail "no primary"
victim=$((p % 3 + 1))      # a backup
other=$((victim % 3 + 1))  # the node killed later
[ "$other" != "$victim" ] || fail "bad node choice"
held=$(chunk_copies "$victim" | wc -l)
[ "$held" -gt 0 ] || fail "node $victim holds no chunk"
wait_status_current  # so the counts below are current
repairs_before=$(repairs)
say "before: primary node $p; node $victim holds $held chunks; counts $(chunk_counts); repairs $repairs_before"

# ---- disk loss: kill the backup, delete its data, revive it -----------------------------------------
cluster kill "$victim" || fail "cluster.sh kill $victim failed"
rm -rf "${data:?}/node$victim"
lost_ms=$(now_ms)
revive_and_wait "$victim"
grep -q -- "--recovering" <<<"$revive_output" || fail "cluster.sh revive $victim, whose data directory is gone, did not pass --recovering"
say "node $victim killed, its data directory deleted, revived; it is normal again"

deadline=$((SECONDS + 40))
while :; do
    under=$(chunk_copies 1 2 3 | awk '$1 < 2' | wc -l)
    r=$(repairs)
    [ "$under" -eq 0 ] && [ "${r:-0}" -gt "$repairs_before" ] && break
    [ $SECONDS -lt $deadline ] ||
        fail "replication not restored within 40 s: $under chunks under 2 copies, repairs ${r:-?} (before $repairs_before)"
    sleep 0.5
done
repair_ms=$(($(now_ms) - lost_ms))
wait_status_current
repairs_after=$(repairs)
[ "$(node_chunks "$victim")" -gt 0 ] || say "note: node $victim received no copy yet (the repairs went to the other nodes)"
total=0
for n in 1 2 3; do total=$((total + $(node_chunks "$n"))); done
[ "$total" -ge $((2 * distinct)) ] || fail "status shows $total chunk copies in all, fewer than 2 x $distinct"
say "replication restored in $repair_ms ms: $((repairs_after - repairs_before)) repairs; counts $(chunk_counts); node $victim holds $(chunk_copies "$victim" | wc -l) chunks"
echo "E2E-FIGURES disk_loss_repair_ms=$repair_ms repairs=$((repairs_after - repairs_before))"

# read_all_back WHAT: every object reads back byte-exact. Right after a kill a GET may meet a view
# change (503) or a chunk request to the dead node: each object is retried, within 30 s in all.
read_all_back() {
    local f name got deadline=$((SECONDS + 30))
    for f in "$work"/values/*; do
        name=$(basename "$f")
        until got=$(CURL_MAX_TIME=5 http_code "$url/obj/$name") && [ "$got" = 200 ] && cmp -s "$f" "$work/body"; do
            [ $SECONDS -lt $deadline ] || fail "GET obj/$name ($1): status $got$([ "$got" = 200 ] && echo ", content differs")"
            sleep 0.3
        done
    done
}

# ---- kill a different node: every object must come from the surviving copies ----------------------
cluster kill "$other" || fail "cluster.sh kill $other failed"
survivors=("$p" "$victim")  # the two nodes left (other != p, other != victim)
say "node $other killed; reading everything back from nodes ${survivors[*]}"
expect "distinct chunks on the surviving disks" "$distinct" "$(chunk_copies "${survivors[@]}" | wc -l)"
read_all_back "node $other down"
say "all $(ls "$work/values" | wc -l) objects read back byte-exact with node $other down"
printf 'written with node %s down' "$other" >"$work/v"
expect "PUT with node $other down" 200 "$(http_code -T "$work/v" "$url/obj/late")"
cp "$work/v" "$work/values/late"

# ---- the node that lost its disk must now hold everything: after the grace period the janitor
# copies every chunk that only one live node holds onto it. Then revive node $other, kill the
# third node, and read everything from the disk-loss node and node $other.
third=$((6 - victim - other))
distinct=$(chunk_copies 1 2 3 | wc -l)
deadline=$((SECONDS + 40))
until [ "$(chunk_copies "$victim" | wc -l)" -eq "$distinct" ]; do
    [ $SECONDS -lt $deadline ] || fail "node $victim holds $(chunk_copies "$victim" | wc -l) of $distinct chunks after 40 s"
    sleep 0.5
done
say "node $victim (disk lost) now holds all $distinct chunks; repairs $(repairs)"
revive_and_wait "$other"
grep -q -- "--recovering" <<<"$revive_output" && fail "cluster.sh revive $other passed --recovering, yet its disk is intact"
[ "$(node_status "$victim")" = normal ] || fail "node $victim is $(node_status "$victim")"
cluster kill "$third" || fail "cluster.sh kill $third failed"
say "node $other revived, node $third killed"
read_all_back "node $third down"
say "all $(ls "$work/values" | wc -l) objects read back byte-exact from nodes $victim and $other"
all_alive_but() {
    local name
    for name in proxy node1 node2 node3; do
        [ "$name" = "node$1" ] && continue
        alive "$name" || fail "$name is not running"
    done
}
all_alive_but "$third"
say "ok"
