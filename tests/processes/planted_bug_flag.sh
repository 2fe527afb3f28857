#!/usr/bin/env bash
# Release binaries cannot switch on a planted bug: toastyfs-node and toastyfs-proxy reject
# --planted-bug as an unknown flag (exit 2), do not mention it in --help and do not contain the
# flag's name at all (the parsing code is compiled out); the test variants
# (toastyfs-node-test, toastyfs-proxy-test) accept it, so tests/chaos can still plant bugs.
# No cluster: the flags are parsed before anything starts (--help after the flag exits 0).
#   planted_bug_flag.sh NODE PROXY NODE_TEST PROXY_TEST
set -uo pipefail
node=${1:?} proxy=${2:?} node_test=${3:?} proxy_test=${4:?}
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# expect BINARY CODE PATTERN ARGS...: BINARY ARGS exits CODE and its output matches PATTERN.
expect() {
    local binary=$1 code=$2 pattern=$3; shift 3
    local output rc
    output=$(timeout 10 "$binary" "$@" 2>&1); rc=$?
    if [ "$rc" -ne "$code" ] || ! grep -qE -- "$pattern" <<<"$output"; then
        fail "$(basename "$binary") $*: exit $rc (want $code), output does not match '$pattern':"
        sed 's/^/    /' <<<"$output" | head -5
    fi
}

# Release: unknown flag, whatever the bug's name, and never advertised.
expect "$node" 2 "unknown argument '--planted-bug'" --planted-bug put_ignores_condition --help
expect "$proxy" 2 "unknown argument '--planted-bug'" --planted-bug get_skips_verification --help
expect "$proxy" 2 "unknown argument '--planted-bug'" --planted-bug gc_ignores_lease --help
for binary in "$node" "$proxy"; do
    if timeout 10 "$binary" --help 2>&1 | grep -q planted; then
        fail "$(basename "$binary") --help mentions planted bugs"
    fi
done
# Nor is there code left that could parse it: the flag's name is not even in the release binaries.
for binary in "$node" "$proxy"; do
    if grep -qa -- '--planted-bug' "$binary"; then fail "$(basename "$binary") contains the string --planted-bug"; fi
done
# The same flags in the test variants: accepted (then --help exits 0), and a wrong name is refused.
expect "$node_test" 0 "--planted-bug" --planted-bug put_ignores_condition --help
expect "$proxy_test" 0 "--planted-bug" --planted-bug get_skips_verification --help
expect "$node_test" 2 "bad value for --planted-bug" --planted-bug get_skips_verification --help
expect "$proxy_test" 2 "bad value for --planted-bug" --planted-bug no_such_bug --help

if [ "$failures" -ne 0 ]; then echo "$failures failures"; exit 1; fi
echo "ok: release binaries refuse --planted-bug, test variants take it"
