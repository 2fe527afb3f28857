#!/usr/bin/env bash
# The seed's transcript, verbatim: cluster.sh start, cluster.sh status, PUT first_object with
# curl -d, GET returns exactly "I'm the first object", cluster.sh stop.
#
#   seed_transcript.sh path/to/cluster.sh      (TOASTYFS_BUILD: the build directory)
source "$(dirname "$0")/lib.sh"
watchdog 40

start_cluster

out=$(cluster status) || fail "cluster.sh status failed: $out"
echo "$out"
[ "$(grep -c '^[123] .* normal ' <<<"$out")" -eq 3 ] || fail "status does not show three normal nodes"
[ "$(grep -c ' primary ' <<<"$out")" -eq 1 ] || fail "status does not show exactly one primary"
grep -q "reaches 3 of 3 nodes, healthy" <<<"$out" || fail "status does not show a healthy proxy"

# The transcript's two commands, with the proxy address of this test.
out=$(curl -sS --max-time 10 -X PUT "$url/first_object" -d "I'm the first object") || fail "PUT failed"
expect "PUT body" "" "$out"
out=$(curl -sS --max-time 10 -X GET "$url/first_object") || fail "GET failed"
expect "GET body" "I'm the first object" "$out"

# The same with the status and ETag checked.
code=$(http_code "$url/first_object")
expect "GET status" 200 "$code"
expect "ETag" "\"$(printf "%s" "I'm the first object" | md5sum | cut -d' ' -f1)\"" "$(header ETag)"

out=$(cluster stop) || fail "cluster.sh stop failed: $out"
echo "$out"
for name in proxy node1 node2 node3; do
    alive "$name" && fail "$name still runs after cluster.sh stop"
done
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url/first_object")
expect "GET after stop" 000 "$code"
say "ok"
