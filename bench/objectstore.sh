#!/usr/bin/env bash
# The object store end to end, measured from outside the way a user sees it: a fresh cluster
# from cluster.sh (own home directory, free ports), then
#   - 1 KiB PUT to unique keys and 1 KiB GET of existing keys with wrk, at 1 and 64 connections;
#   - one 1 GiB PUT and GET with curl (MB/s), and the peak RSS (VmHWM) of the proxy and each
#     node over that transfer;
#   - kill -9 of the primary, then the time until the first PUT succeeds.
# Prints one table. Not a meson test; needs wrk and curl (installed with apt-get as root).
#
#   bench/objectstore.sh [BUILD_DIR]       (default: build)
#
# Environment: DURATION (wrk seconds per row, default 10), BIG_MB (default 1024), PROXY_ARGS.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
duration=${DURATION:-10}
big_mb=${BIG_MB:-1024}

for tool in wrk curl; do
    if ! command -v "$tool" >/dev/null; then
        [ "$(id -u)" -eq 0 ] || { echo "$tool missing: apt-get install -y $tool" >&2; exit 2; }
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$tool" >/dev/null
    fi
done

work=$(mktemp -d "${TMPDIR:-/tmp}/toastyfs_bench.XXXXXX")
export TOASTYFS_HOME=$work/cluster TOASTYFS_BUILD=$build TOASTYFS_SKIP_BUILD=1
export TOASTYFS_PROXY_ARGS=${PROXY_ARGS:-}
cleanup() { "$root/cluster.sh" stop >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT

started=0
for attempt in 1 2 3 4 5; do
    base=$((20000 + (RANDOM % 15000) * 2))
    export TOASTYFS_PORT_BASE=$base TOASTYFS_PROXY=127.0.0.1:$((base + 300))
    if "$root/cluster.sh" start >/dev/null 2>&1; then started=1; break; fi
    "$root/cluster.sh" stop >/dev/null 2>&1 || true
done
[ "$started" -eq 1 ] || { echo "could not start a cluster" >&2; exit 1; }
url=http://$TOASTYFS_PROXY
pid_of() { cat "$TOASTYFS_HOME/pids/$1.pid"; }

cat >"$work/put.lua" <<'EOF'
local counter = 0
local body = string.rep("x", 1024)
function setup(thread) thread:set("id", tostring(math.random(1, 1e9))) end
request = function()
  counter = counter + 1
  return wrk.format("PUT", "/bench/" .. id .. "/" .. counter, nil, body)
end
EOF
cat >"$work/get.lua" <<'EOF'
local counter = 0
request = function()
  counter = counter + 1
  return wrk.format("GET", "/get/" .. (counter % 1000))
end
EOF
head -c 1024 /dev/urandom >"$work/1k"
for i in $(seq 0 999); do printf 'url = "%s/get/%d"\nupload-file = "%s/1k"\n' "$url" "$i" "$work"; done >"$work/preload"
curl -sf -K "$work/preload" -o /dev/null

# wrk_row NAME SCRIPT CONNECTIONS: ops/s, p50, p99, non-2xx.
wrk_row() {
    local out rps p50 p99 bad
    out=$(wrk -t1 -c"$3" -d"${duration}s" -s "$work/$2" --latency "$url")
    rps=$(awk '/Requests\/sec/{print int($2)}' <<<"$out")
    p50=$(awk '$1=="50%"{print $2}' <<<"$out")
    p99=$(awk '$1=="99%"{print $2}' <<<"$out")
    bad=$(awk '/Non-2xx/{print $NF}' <<<"$out")
    printf '%-28s %12s %10s %10s %8s\n' "$1" "$rps" "$p50" "$p99" "${bad:-0}"
}

echo "ToastyFS bench: $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(date -u +%F)"
printf '%-28s %12s %10s %10s %8s\n' workload ops/s p50 p99 non-2xx
wrk_row "1 KiB PUT, 1 connection" put.lua 1
wrk_row "1 KiB PUT, 64 connections" put.lua 64
wrk_row "1 KiB GET, 1 connection" get.lua 1
wrk_row "1 KiB GET, 64 connections" get.lua 64

# A fresh pair of processes would have a lower high-water mark; VmHWM here covers the whole run,
# so read it before and after the big transfer and report both.
hwm() { awk '/VmHWM/{print int($2/1024)}' "/proc/$1/status"; }
names="proxy node1 node2 node3"
before=""
for n in $names; do before+="$n=$(hwm "$(pid_of "$n")")MiB "; done
head -c $((big_mb << 20)) /dev/urandom >"$work/big"
put=$(curl -sf -T "$work/big" "$url/big" -o /dev/null -w '%{speed_upload}')
get=$(curl -sf "$url/big" -o "$work/big.out" -w '%{speed_download}')
cmp -s "$work/big" "$work/big.out" || { echo "the ${big_mb} MiB object came back different" >&2; exit 1; }
rm -f "$work/big" "$work/big.out"
after=""
for n in $names; do after+="$n=$(hwm "$(pid_of "$n")")MiB "; done
printf '%-28s %12s MB/s\n' "${big_mb} MiB PUT (curl -T)" "$(awk -v b="$put" 'BEGIN{printf "%.0f", b/1e6}')"
printf '%-28s %12s MB/s\n' "${big_mb} MiB GET" "$(awk -v b="$get" 'BEGIN{printf "%.0f", b/1e6}')"
echo "peak RSS before the big transfer: $before"
echo "peak RSS after the big transfer:  $after"

primary=$(curl -s "$url/?status" | grep -o '{"node":[0-9]*,[^}]*"role":"primary"' | sed 's/{"node":\([0-9]*\).*/\1/')
[ -n "$primary" ] || { echo "no primary in /?status" >&2; exit 1; }
"$root/cluster.sh" kill "$primary" >/dev/null
start=$(date +%s%N)
for attempt in $(seq 1 200); do
    code=$(curl -s -m 5 -o /dev/null -w '%{http_code}' -X PUT "$url/after-kill" -d "x") || true
    [ "$code" = 200 ] && break
    sleep 0.02
done
[ "$code" = 200 ] || { echo "no successful PUT after killing node $primary" >&2; exit 1; }
echo "kill -9 of the primary (node $primary) to the first successful PUT: $((($(date +%s%N) - start) / 1000000)) ms"
