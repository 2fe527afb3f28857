#!/usr/bin/env bash
# A test that needs room for big files (big_object.sh, persist_restart.sh: lib.sh's
# room_needed_kb) must skip (77) on a developer's machine with no room and fail under CI=true:
# in CI, a skip of a test CI is meant to run is a failure. E2E_BIG_BYTES asks for more room than
# any disk here has, so every run stops before starting a cluster.
#
#   big_object_no_room.sh path/to/cluster.sh path/to/test.sh...
set -u
cluster_sh=$1
shift
huge=$((1 << 50))  # 1 PiB: 4 PiB of room needed
fail() { echo "FAIL: $*"; exit 1; }

[ "$#" -gt 0 ] || fail "no test script given"
for script in "$@"; do
    name=$(basename "$script")
    out=$(CI=false E2E_BIG_BYTES=$huge "$script" "$cluster_sh" 2>&1)
    status=$?
    echo "$out"
    [ "$status" -eq 77 ] || fail "$name outside CI, no room: exit $status, expected 77 (skip)"

    out=$(CI=true E2E_BIG_BYTES=$huge "$script" "$cluster_sh" 2>&1)
    status=$?
    echo "$out"
    [ "$status" -eq 1 ] || fail "$name, CI=true, no room: exit $status, expected 1 (a skip here would pass CI unseen)"
    grep -q 'must run in CI' <<<"$out" || fail "$name, CI=true, no room: the failure does not say why"
    echo "PASS: $name skips outside CI, fails under CI=true"
done
