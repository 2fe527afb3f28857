#!/usr/bin/env bash
# Durable puts side by side, in one run, at the same concurrency:
#   kv    three kv-server replicas with --data (journal and checkpoints, fdatasync before any
#         message leaves), driven by `kv-client bench --concurrency C --requests N`
#   etcd  etcd 3.4 (Debian etcd-server) as three members on loopback, default settings (fsync
#         on), each with its own data directory, driven by wrk at C connections through the
#         HTTP JSON gateway (POST /v3/kv/put), load sent to the leader, as bench/compare.sh does
# Prints both put rates and the ratio kv/etcd, the kv primary's fsyncs per committed op and per
# put (its "counters" line after SIGTERM, bench/kv_counters.sh) and the etcd leader's WAL fsyncs
# per put (etcd_disk_wal_fsync_duration_seconds_count from /metrics, before and after; its bbolt
# backend commits, each with its own fdatasync, are printed too but not counted in that ratio).
#
#   bench/kv_vs_etcd.sh [BUILD_DIR]        (default: build)
#
# Environment: CONCURRENCY (64), REQUESTS (kv puts, 200000), DURATION (etcd wrk seconds, 20),
# VALUE_SIZE (100 bytes), KEYS (distinct keys each side cycles over, 100000).
# Both sides put the same value size over the same number of keys. All processes (servers,
# client, wrk) share the machine: compare the ratio from one run, not absolute numbers.
# Not a meson test. Every server is stopped on exit.
set -u

build=${1:-build}
server=$build/examples/kv/kv-server
client=$build/examples/kv/kv-client
[ -x "$server" ] && [ -x "$client" ] || { echo "kv-server/kv-client not found under $build" >&2; exit 2; }
for tool in etcd wrk curl ss; do
    command -v "$tool" >/dev/null || { echo "kv_vs_etcd: $tool not found (etcd: apt-get install etcd-server)" >&2; exit 2; }
done
concurrency=${CONCURRENCY:-64}
requests=${REQUESTS:-200000}
duration=${DURATION:-20}
value_size=${VALUE_SIZE:-100}
keys=${KEYS:-100000}

# The Debian packages start their own services (etcd on :2379, nginx on :80); stop them so they
# take no CPU from the run (as bench/compare.sh does).
if [ "$(id -u)" -eq 0 ]; then
    for service in nginx etcd; do service "$service" stop >/dev/null 2>&1 || true; done
fi

LOG_LEVEL=info  # the servers' "counters" lines are info; nothing is logged per request
source "$(dirname "$0")/../tests/cluster/lib.sh"
source "$(dirname "$0")/kv_counters.sh"
persistent=1

etcd_pids=()
stop_etcd() {
    local p
    for p in "${etcd_pids[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${etcd_pids[@]}"; do
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$p" 2>/dev/null
    done
    etcd_pids=()
}
trap 'stop_etcd; cleanup' EXIT  # cleanup (lib.sh): the kv servers, then rm -rf $work

echo "concurrency $concurrency, value size $value_size, $keys keys; kv: $requests puts; etcd: ${duration} s of wrk"
echo "work directory $work ($(df -T "$work" | awk 'NR == 2 {print $2 " on " $1}'))"

# --- kv -------------------------------------------------------------------------------------------
sync
start_cluster >/dev/null
kv put warmup 1 >/dev/null || fail "kv cluster not answering"
out=$(timeout 900 "$client" --replicas "$replicas" --cluster "$cluster" bench --concurrency "$concurrency" \
    --requests "$requests" --value-size "$value_size" --keys "$keys") || echo "kv-client bench failed: $out"
kv_ok=$(sed -n 's/.* ok \([0-9]*\) .*/\1/p' <<<"$out")
kv_failed=$(sed -n 's/.* failed \([0-9]*\) .*/\1/p' <<<"$out")
kv_rate=$(sed -n 's/.*, \([0-9]*\) ops\/s/\1/p' <<<"$out")
kv_p50=$(sed -n 's/.*p50 \([0-9]*\).*/\1/p' <<<"$out")
kv_p99=$(sed -n 's/.*p99 \([0-9]*\).*/\1/p' <<<"$out")
kv_du=$(du -sh "$work"/data0 | cut -f1)
echo
echo "kv: $out" | head -n1
kv_stop_and_count $((${kv_ok:-0} + 1)) || true  # + the warm-up put
echo "kv data directory of replica 0 after the run: $kv_du"

# --- etcd -----------------------------------------------------------------------------------------
# A base port with BASE..BASE+20 free on loopback (ss lists the listeners).
free_port_base() {
    local b used
    used=$(ss -Htan 2>/dev/null | awk '{n = split($4, a, ":"); print a[n]}' | sort -u)
    for _ in $(seq 50); do
        b=$((20000 + (RANDOM % 400) * 100))
        awk -v b="$b" '$1 >= b && $1 < b + 20 {found = 1} END {exit found}' <<<"$used" && { echo "$b"; return; }
    done
    return 1
}
sync
ebase=$(free_port_base) || fail "no free port range for etcd"
etcd_cluster=""
for i in 1 2 3; do etcd_cluster+="${etcd_cluster:+,}m$i=http://127.0.0.1:$((ebase + 10 + i))"; done
mkdir -p "$work/etcd"
for i in 1 2 3; do
    etcd --name "m$i" --data-dir "$work/etcd/m$i" \
        --listen-client-urls "http://127.0.0.1:$((ebase + i))" \
        --advertise-client-urls "http://127.0.0.1:$((ebase + i))" \
        --listen-peer-urls "http://127.0.0.1:$((ebase + 10 + i))" \
        --initial-advertise-peer-urls "http://127.0.0.1:$((ebase + 10 + i))" \
        --initial-cluster "$etcd_cluster" --initial-cluster-state new \
        --initial-cluster-token "kv_vs_etcd$ebase" --log-level error >"$work/etcd/m$i.log" 2>&1 &
    etcd_pids+=("$!")
    disown "$!"  # stopped by stop_etcd; no job notices
done
leader=""
for _ in $(seq 100); do
    for i in 1 2 3; do
        st=$(curl -s -m 1 -X POST "http://127.0.0.1:$((ebase + i))/v3/maintenance/status" -d '{}' || true)
        member=$(grep -o '"member_id":"[0-9]*"' <<<"$st" | grep -o '[0-9]*' || true)
        [ -n "$member" ] && grep -q "\"leader\":\"$member\"" <<<"$st" && leader=$i
    done
    [ -n "$leader" ] && break
    sleep 0.2
done
[ -n "$leader" ] || fail "etcd: no leader (logs: $work/etcd)"
url=http://127.0.0.1:$((ebase + leader))
# Keys are 12 alphanumeric characters, a valid base64 text (etcd's JSON takes base64 bytes);
# the value is the base64 of VALUE_SIZE bytes 'v', the bytes kv-client puts.
value_b64=$(head -c "$value_size" /dev/zero | tr '\0' v | base64 -w0)
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$url/v3/kv/put" \
    -d "{\"key\":\"d2FybXVw\",\"value\":\"$value_b64\"}")
[ "$code" = 200 ] || fail "etcd: warm-up put answered $code"
threads=2
[ "$concurrency" -lt 2 ] && threads=1
cat >"$work/put.lua" <<'LUA'
local keys = math.max(1, math.floor(tonumber(os.getenv("BENCH_KEYS")) / tonumber(os.getenv("BENCH_THREADS"))))
local value = os.getenv("BENCH_VALUE")
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
local counter = 0
local json = { ["Content-Type"] = "application/json" }
request = function()
  counter = counter + 1
  local key = string.format("b%03d%08d", tid, counter % keys)
  return wrk.format("POST", "/v3/kv/put", json, '{"key":"' .. key .. '","value":"' .. value .. '"}')
end
LUA
metric() { curl -s "$url/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
wal_fsyncs() { metric etcd_disk_wal_fsync_duration_seconds_count; }
backend_commits() { metric etcd_disk_backend_commit_duration_seconds_count; }
wal_before=$(wal_fsyncs)
backend_before=$(backend_commits)
out=$(BENCH_KEYS=$keys BENCH_THREADS=$threads BENCH_VALUE=$value_b64 \
    wrk -t"$threads" -c"$concurrency" -d"${duration}s" --timeout 10s --latency -s "$work/put.lua" "$url" 2>"$work/wrk.err")
[ ! -s "$work/wrk.err" ] || fail "wrk: $(cat "$work/wrk.err")"
wal_after=$(wal_fsyncs)
backend_after=$(backend_commits)
read -r etcd_total etcd_errors etcd_rate etcd_p50 etcd_p99 < <(awk '
    function ms(v) {  # wrk prints 812.00us, 2.31ms, 1.02s
        if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0;
        if (v ~ /m$/) return v * 60000; if (v ~ /s$/) return v * 1000; return v }
    / requests in / { total = $1 }
    /Requests\/sec/ { rps = $2 }
    $1 == "50%" { p50 = ms($2) }
    $1 == "99%" { p99 = ms($2) }
    /Non-2xx/ { errors += $NF }
    /Socket errors/ { gsub(/,/, ""); errors += $4 + $6 + $8 + $10 }
    END { printf "%d %d %.0f %.2f %.2f\n", total, errors, rps, p50, p99 }' <<<"$out")
etcd_ok=$((etcd_total - etcd_errors))
# Requests/sec counts every response; the put rate counts the 2xx ones.
etcd_put_rate=$(awk -v r="$etcd_rate" -v t="$etcd_total" -v ok="$etcd_ok" 'BEGIN { printf "%.0f", (t > 0 ? r * ok / t : 0) }')
etcd_wal=$(awk -v a="${wal_after:-0}" -v b="${wal_before:-0}" 'BEGIN { printf "%d", a - b }')
etcd_backend=$(awk -v a="${backend_after:-0}" -v b="${backend_before:-0}" 'BEGIN { printf "%d", a - b }')
etcd_du=$(du -sh "$work/etcd/m$leader" | cut -f1)
stop_etcd
echo
echo "etcd $(etcd --version | awk '/etcd Version/ {print $3}'): leader m$leader, $etcd_total responses, $etcd_errors errors; leader WAL fsyncs $etcd_wal, backend commits $etcd_backend; leader data directory $etcd_du"

# --- summary --------------------------------------------------------------------------------------
echo
printf '%-6s %12s %10s %8s %10s %8s %8s %14s %14s\n' system concurrency puts failed puts/s p50_ms p99_ms fsyncs/put fsyncs/op
printf '%-6s %12s %10s %8s %10s %8s %8s %14s %14s\n' kv "$concurrency" "${kv_ok:-?}" "${kv_failed:-?}" "${kv_rate:-?}" \
    "$(awk -v v="${kv_p50:-0}" 'BEGIN { printf "%.2f", v / 1000 }')" \
    "$(awk -v v="${kv_p99:-0}" 'BEGIN { printf "%.2f", v / 1000 }')" "${kv_syncs_per_put:-?}" "${kv_syncs_per_op:-?}"
printf '%-6s %12s %10s %8s %10s %8s %8s %14s %14s\n' etcd "$concurrency" "$etcd_ok" "$etcd_errors" "$etcd_put_rate" \
    "$etcd_p50" "$etcd_p99" "$(awk -v w="$etcd_wal" -v ok="$etcd_ok" 'BEGIN { printf "%.4f", (ok > 0 ? w / ok : 0) }')" "n/a"
awk -v k="${kv_rate:-0}" -v e="$etcd_put_rate" 'BEGIN {
    if (e > 0) printf "put rate kv/etcd at the same concurrency: %.2f\n", k / e; else print "put rate kv/etcd: n/a" }'
status=0
[ "${kv_failed:-1}" = 0 ] && [ "$etcd_errors" = 0 ] || status=1
exit $status
