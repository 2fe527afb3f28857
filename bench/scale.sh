#!/usr/bin/env bash
# The object store at scale: OBJECTS 1 KiB objects loaded into a 3-node cluster (persistent, the
# default settings) through the proxy, in SEGMENTS equal steps. After each step it records every
# node's memory (RssAnon: the anonymous memory the node holds, and the total RSS beside it, which
# adds SQLite's file pages in the page cache) and the bytes on disk; at the first and last steps
# it also measures GET rates over the objects loaded so far. Then a full-cluster restart: the time
# from `cluster.sh start` until a GET of a loaded object answers.
#
#   bench/scale.sh                        10,000,000 objects in about 10 steps
#   OBJECTS=200000 SEGMENTS=4 bench/scale.sh
# A step is a wrk run of fixed length (the first 20 s, the others sized from its rate, or
# SEGMENT_SECONDS each).
# Environment: OBJECTS, SEGMENTS, CONNECTIONS (64), GET_SECONDS (10), RESULTS (bench/results),
# TOASTYFS_BUILD (build; TOASTYFS_SKIP_BUILD=1 uses it as it is), WORK (a directory with room:
# about 1.3 KiB per object per node; default under $TMPDIR or /var/tmp).
# Writes a markdown table to RESULTS/scale-latest.md. The load generator shares the cores with
# the cluster: compare the end of the load with its start, not with other machines.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
objects=${OBJECTS:-10000000}
segments=${SEGMENTS:-10}
connections=${CONNECTIONS:-64}
get_seconds=${GET_SECONDS:-10}
results=${RESULTS:-$root/bench/results}
build=${TOASTYFS_BUILD:-$root/build}

die() { echo "scale: $*" >&2; exit 1; }
say() { echo "scale: $*" >&2; }

command -v wrk >/dev/null 2>&1 || {
    [ "$(id -u)" -eq 0 ] || die "missing: apt-get install -y wrk"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk >/dev/null
}
if [ "${TOASTYFS_SKIP_BUILD:-0}" != 1 ] || [ ! -x "$build/examples/objectstore/toastyfs-node" ]; then
    if [ "$build" = "$root/build" ]; then "$root/build.sh" >&2; else ninja -C "$build" >&2; fi
fi

work=${WORK:-$(mktemp -d "${TMPDIR:-/var/tmp}/toastyfs_scale.XXXXXX")}
mkdir -p "$work"
export TOASTYFS_HOME=$work/cluster TOASTYFS_BUILD=$build TOASTYFS_SKIP_BUILD=1
export TOASTYFS_PROXY=127.0.0.1:3600 TOASTYFS_PORT_BASE=7600
url=http://$TOASTYFS_PROXY
cleanup() { "$root/cluster.sh" stop >/dev/null 2>&1 || true; }
trap cleanup EXIT
trap "exit 1" INT TERM  # the EXIT trap stops the cluster
free_kib=$(df -Pk "$work" | awk 'NR == 2 {print $4}')
[ "$free_kib" -gt $((objects * 4 + 4 * 1024 * 1024)) ] || die "$work has ${free_kib} KiB free; about $((objects * 4 / 1024)) MiB needed"

# One wrk script. PUT: thread T writes keys tTnC for C from its SCALE_FIRST_T on, for the step's
# duration; done() prints each thread's last C. GET: random keys tTnC with C <= SCALE_LOADED_T.
# Every PUT body starts with 16 unique digits.
cat >"$work/scale.lua" <<'EOF'
local op = os.getenv("SCALE_OP")
local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end
counter = 0  -- global: done() reads it with thread:get
local loaded = {}
local filler = string.rep("x", 1024 - 16)
function init(args)
  counter = tonumber(os.getenv("SCALE_FIRST_" .. tid)) - 1
  for t = 1, 2 do loaded[t] = tonumber(os.getenv("SCALE_LOADED_" .. t)) end
  math.randomseed(tid * 7919 + counter)
end
request = function()
  if op == "put" then
    counter = counter + 1
    return wrk.format("PUT", "/t" .. tid .. "n" .. counter, nil, string.format("%04d%012d", tid, counter) .. filler)
  end
  local t = math.random(2)
  return wrk.format("GET", "/t" .. t .. "n" .. math.random(loaded[t]))
end
statuses = {}
response = function(status, headers, body)
  if status >= 300 then statuses[status] = (statuses[status] or 0) + 1 end
end
function done(summary, latency, requests)
  for _, thread in ipairs(threads) do
    io.write("last ", thread:get("tid"), " ", thread:get("counter"), "\n")
    for status, n in pairs(thread:get("statuses")) do io.write("status ", status, " ", n, "\n") end
  end
end
EOF

threads=2  # scale.lua knows two threads
segment_seconds=${SEGMENT_SECONDS:-}

# wrk_run OP DURATION: "rps errors not_found requests"; the PUT threads' last counters go to
# $work/last. A GET may name a key whose PUT was still in flight when its wrk run ended (never
# acknowledged, so possibly never stored): 404s are counted apart from errors.
wrk_run() {
    local out
    out=$(SCALE_OP=$1 wrk -t"$threads" -c"$connections" -d"$2" --timeout 10s -s "$work/scale.lua" "$url" 2>"$work/wrk.err")
    [ ! -s "$work/wrk.err" ] || die "wrk: $(cat "$work/wrk.err")"
    grep '^last ' <<<"$out" >"$work/last" || true
    grep '^status ' <<<"$out" >"$work/statuses" || true
    local not_found
    not_found=$(awk '$2 == 404 {n += $3} END {print n + 0}' "$work/statuses")
    awk -v not_found="$not_found" '/Requests\/sec/ {rps = $2} /Non-2xx/ {errors += $NF}
         /Socket errors/ {gsub(/,/, ""); errors += $4 + $6 + $8 + $10}
         / requests in / {count = $1}
         END {printf "%.0f %d %d %d\n", rps, errors - not_found, not_found, count + 0}' <<<"$out"
}

node_pids() { for n in 1 2 3; do cat "$TOASTYFS_HOME/pids/node$n.pid"; done; }
# memory: the largest RssAnon and VmRSS over the nodes, in MiB.
memory() {
    local anon=0 rss=0 pid a r
    for pid in $(node_pids); do
        a=$(awk '/^RssAnon:/ {print int($2 / 1024)}' "/proc/$pid/status")
        r=$(awk '/^VmRSS:/ {print int($2 / 1024)}' "/proc/$pid/status")
        [ "$a" -gt "$anon" ] && anon=$a
        [ "$r" -gt "$rss" ] && rss=$r
    done
    echo "$anon $rss"
}
# Bytes node 1 has allocated on disk (its journal file is sparse: what was never written is free).
disk_bytes() { du -s --block-size=1 "$TOASTYFS_HOME/data/node1" | cut -f1; }

say "starting a 3-node cluster in $TOASTYFS_HOME"
"$root/cluster.sh" start >&2
table=$work/table.md
{
    echo "| objects | PUT/s (this step) | errors | GET/s | node RssAnon max (MiB) | node RSS max (MiB) | node 1 on disk (MiB) | bytes per object |"
    echo "|---:|---:|---:|---:|---:|---:|---:|---:|"
} >"$table"
first_put=0 last_put=0 first_get=0 last_get=0
export SCALE_FIRST_1=1 SCALE_FIRST_2=1 SCALE_LOADED_1=0 SCALE_LOADED_2=0
loaded=0 segment=0
while [ "$loaded" -lt "$objects" ]; do
    segment=$((segment + 1))
    # The first step runs 20 s; later ones are sized from its rate to make SEGMENTS steps.
    seconds=${segment_seconds:-20}
    read -r put_rate put_errors _ _ < <(wrk_run put "${seconds}s")
    [ "$put_errors" -eq 0 ] || die "PUTs failed: $put_errors errors"
    while read -r _ t last; do
        # Requests still in flight when wrk stopped may not have landed: GETs stay below them.
        export "SCALE_FIRST_$t=$((last + 1))" "SCALE_LOADED_$t=$((last > connections ? last - connections : 0))"
    done <"$work/last"
    loaded=$((SCALE_FIRST_1 + SCALE_FIRST_2 - 2))
    if [ -z "$segment_seconds" ]; then
        segment_seconds=$(((objects - loaded) / (segments - 1 > 0 ? segments - 1 : 1) / (put_rate > 0 ? put_rate : 1) + 1))
    fi
    get_rate="-"
    if [ "$segment" -eq 1 ] || [ "$loaded" -ge "$objects" ]; then
        read -r get_rate get_errors get_missing get_count < <(wrk_run get "${get_seconds}s")
        [ "$get_errors" -eq 0 ] || die "GETs failed: $get_errors errors"
        # At most `connections` PUTs per step were in flight when it ended.
        [ "$get_missing" -le $((get_count * connections * segment / loaded + 10)) ] ||
            die "$get_missing of $get_count GETs found no object: more than the PUTs left in flight explain"
        [ "$segment" -eq 1 ] && first_get=$get_rate
        last_get=$get_rate
    fi
    [ "$segment" -eq 1 ] && first_put=$put_rate
    last_put=$put_rate
    read -r anon rss < <(memory)
    bytes=$(disk_bytes)
    printf '| %d | %s | %d | %s | %d | %d | %d | %d |\n' "$loaded" "$put_rate" "$put_errors" "$get_rate" "$anon" "$rss" \
        $((bytes / 1048576)) $((bytes / loaded)) >>"$table"
    tail -n1 "$table" >&2
done

# A key known to be stored (wrk's first request() call of a thread is never sent, and the PUTs in
# flight at the end of a step may not have landed): read after the restart.
probe=""
for ((c = SCALE_LOADED_2 / 2; c < SCALE_LOADED_2 / 2 + 50; c++)); do
    if [ "$(curl -s "$url/t2n$c" | head -c 16)" = "$(printf '%04d%012d' 2 "$c")" ]; then probe=t2n$c; break; fi
done
[ -n "$probe" ] || die "no stored object found to probe the restart with"
say "full-cluster restart"
"$root/cluster.sh" stop >&2
start=$(date +%s.%N)
"$root/cluster.sh" start >&2
until [ "$(curl -s "$url/$probe" | head -c 16)" = "$(printf '%04d%012d' 2 "${probe#t2n}")" ]; do sleep 0.05; done
restart_s=$(echo "$(date +%s.%N) - $start" | bc)

mkdir -p "$results"
{
    echo "# bench/scale.sh, $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git -C "$root" rev-parse --short HEAD)"
    echo
    echo "Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)."
    echo "Command: \`OBJECTS=$objects SEGMENTS=$segments CONNECTIONS=$connections bench/scale.sh\`; 1 KiB objects (inline), 3 persistent nodes, default settings."
    echo
    cat "$table"
    echo
    echo "- PUT rate at the end against the start: $(echo "scale=2; $last_put / $first_put" | bc) (target >= 0.8)"
    echo "- GET rate at the end against the start: $(echo "scale=2; $last_get / $first_get" | bc) (target >= 0.8)"
    echo "- full-cluster restart until the first GET answers: ${restart_s} s"
} | tee "$results/scale-latest.md"
