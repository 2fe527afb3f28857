#!/usr/bin/env bash
# A persistent toastyfs-node that finds no metadata journal starts only with --format (a new
# cluster's node) or --recovering; --format on a journal that exists is refused too. Otherwise a
# node whose data directory was lost would come back as a new, empty replica and vote (node.cpp).
# One node of a three-node list, no peers running: it formats and serves alone, which is enough.
#   node_format_guard.sh NODE
set -uo pipefail
node=${1:?}
work=$(mktemp -d)
trap 'kill -9 $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
port=$((21000 + $$ % 4000))  # below the ephemeral range (tests/cluster/lib.sh)
args=(--index 0 --replicas "127.0.0.1:$port,127.0.0.1:$((port + 1)),127.0.0.1:$((port + 2))"
      --chunk-listen "127.0.0.1:$((port + 3))" --data "$work/data")
superblock=$work/data/vsr/superblock

# refused ARGS... PATTERN: the node exits 1 at once, logging PATTERN.
refused() {
    local pattern=${*: -1} output rc
    output=$(timeout 20 "$node" "${args[@]}" "${@:1:$#-1}" 2>&1); rc=$?
    if [ "$rc" -ne 1 ] || ! grep -q -- "$pattern" <<<"$output"; then
        fail "toastyfs-node ${*:1:$#-1}: exit $rc (want 1), output does not say '$pattern':"
        sed 's/^/    /' <<<"$output" | tail -5
    fi
}

# runs ARGS...: the node starts and writes its superblock (the first flush), then stops on SIGTERM.
runs() {
    "$node" "${args[@]}" "$@" >"$work/run.log" 2>&1 &
    local pid=$! i
    for i in $(seq 100); do
        [ -s "$superblock" ] && grep -q "started:" "$work/run.log" && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if ! kill -0 "$pid" 2>/dev/null; then
        fail "toastyfs-node $* exited instead of starting:"; sed 's/^/    /' "$work/run.log" | tail -5
        return
    fi
    [ -s "$superblock" ] || fail "toastyfs-node $* started but wrote no superblock within 10 s"
    kill -TERM "$pid"; wait "$pid" || fail "toastyfs-node $* did not exit cleanly on SIGTERM"
}

refused "holds no journal"                       # a new node without --format
[ -s "$superblock" ] && fail "the refused start wrote a superblock"
out=$(timeout 10 "$node" "${args[@]}" --format --recovering 2>&1); rc=$?
[ "$rc" -eq 2 ] || fail "--format --recovering: exit $rc (want 2, a usage error): $out"
runs --format                                              # a new cluster's node
refused --format "holds a journal already"        # formatting twice
runs                                                       # a restart reloads its journal
grep -q "journal loaded" "$work/run.log" || fail "the restart did not log 'journal loaded':$(tail -3 "$work/run.log")"
rm -rf "$work/data/vsr"                                    # the journal lost: the guard again
refused "holds no journal"

[ "$failures" -eq 0 ] && echo "node_format_guard: all checks passed"
exit $((failures > 0))
