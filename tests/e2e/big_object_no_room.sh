#!/usr/bin/env bash
# big_object.sh with no room for its files must skip (77) on a developer's machine and fail under
# CI=true: in CI, a skip of a test CI is meant to run is a failure. E2E_BIG_BYTES asks for more
# room than any disk here has, so both runs stop before starting a cluster.
#
#   big_object_no_room.sh path/to/big_object.sh path/to/cluster.sh
set -u
big_object=$1
cluster_sh=$2
huge=$((1 << 50))  # 1 PiB: 4 PiB of room needed
fail() { echo "FAIL: $*"; exit 1; }

out=$(CI=false E2E_BIG_BYTES=$huge "$big_object" "$cluster_sh" 2>&1)
status=$?
echo "$out"
[ "$status" -eq 77 ] || fail "outside CI, no room: exit $status, expected 77 (skip)"

out=$(CI=true E2E_BIG_BYTES=$huge "$big_object" "$cluster_sh" 2>&1)
status=$?
echo "$out"
[ "$status" -eq 1 ] || fail "CI=true, no room: exit $status, expected 1 (a skip here would pass CI unseen)"
grep -q 'must run in CI' <<<"$out" || fail "CI=true, no room: the failure does not say why"
echo "PASS: skips outside CI, fails under CI=true"
