#!/usr/bin/env bash
# ToastyFS side by side with real peers, on this machine, in one run:
#   toastyfs      3 nodes + the proxy from cluster.sh, default settings (persistent: every write
#                 synced to the nodes' journals before it is acknowledged)
#   toastyfs-diskless  the same with --diskless (the seed's mode: metadata in memory only)
#   nginx         one worker: static GET, WebDAV PUT (the unreplicated upper bound for an HTTP front)
#   etcd          3 members on loopback through the HTTP JSON gateway, default settings (fsync on)
#   etcd-nofsync  the same with --unsafe-no-fsync (ToastyFS's VSR log is in memory, not on disk)
# Workloads (wrk, DURATION seconds each): 1 KiB PUT to unique keys and 1 KiB GET of existing keys
# at 1 and 64 connections; 1 MiB PUT and GET at 8 connections; then one BIG_MB object PUT and GET
# with curl (MB/s) and the peak RSS of every server process over that transfer (etcd: n/a, its
# requests are limited to 1.5 MiB). Prints a markdown table with the ratio ToastyFS/peer per row
# and the targets of issue 6, and writes it with a gnuplot PNG to bench/results/.
#
#   bench/compare.sh                 install what is missing (as root), build, run everything
# Environment: DURATION (10), BIG_MB (1024), SYSTEMS ("toastyfs toastyfs-diskless nginx etcd etcd-nofsync"),
# RESULTS (bench/results), TOASTYFS_BUILD (build; set TOASTYFS_SKIP_BUILD=1 to use it as it is).
# The clients share the cores with the servers: compare ratios from one run, not absolute numbers.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
duration=${DURATION:-10}
big_mb=${BIG_MB:-1024}
systems=${SYSTEMS:-toastyfs toastyfs-diskless nginx etcd etcd-nofsync}
# The diskless figures landed in 2685bcd (issue 6): each persistent row must be at least as good.
baseline=${BASELINE:-$root/bench/results/compare-2026-11-26T2149Z.tsv}
results=${RESULTS:-$root/bench/results}
build=${TOASTYFS_BUILD:-$root/build}
keys_1k=1000  # preloaded 1 KiB objects the GET rows read
keys_1m=16    # preloaded 1 MiB objects

die() { echo "compare: $*" >&2; exit 1; }
say() { echo "compare: $*" >&2; }

# --- tools: command -> Debian package ---------------------------------------------------------
declare -A tool_pkg=([nginx]=nginx-light [etcd]=etcd-server [wrk]=wrk [curl]=curl [gnuplot]=gnuplot-nox)
missing=()
for tool in nginx etcd wrk curl gnuplot; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("${tool_pkg[$tool]}")
done
if [ ${#missing[@]} -gt 0 ]; then
    [ "$(id -u)" -eq 0 ] || die "missing: apt-get install -y ${missing[*]}"
    say "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The Debian packages start their own services (nginx on :80, etcd on :2379); they would take CPU
# from the run, so stop them. Ours run on other ports from the work directory.
if [ "$(id -u)" -eq 0 ]; then
    for service in nginx etcd; do service "$service" stop >/dev/null 2>&1 || true; done
fi

if [ "${TOASTYFS_SKIP_BUILD:-0}" != 1 ] || [ ! -x "$build/examples/objectstore/toastyfs-proxy" ]; then
    if [ "$build" = "$root/build" ]; then "$root/build.sh" >&2; else ninja -C "$build" >&2; fi
fi

work=$(mktemp -d "${TMPDIR:-/var/tmp}/toastyfs_compare.XXXXXX")
server_pids=()   # every server process we started, stopped by stop_servers
stop_servers() {
    if [ -n "${TOASTYFS_HOME:-}" ]; then "$root/cluster.sh" stop >/dev/null 2>&1 || true; fi
    local pid
    for pid in "${server_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${server_pids[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    done
    server_pids=()
    unset TOASTYFS_HOME
}
trap 'stop_servers; rm -rf "$work"' EXIT

# A base port with BASE..BASE+399 free on loopback (ss lists the listeners).
free_port_base() {
    local base used
    used=$(ss -Htan 2>/dev/null | awk '{n=split($4,a,":"); print a[n]}' | sort -u)
    for _ in $(seq 50); do
        base=$((20000 + (RANDOM % 300) * 100))
        awk -v b="$base" '$1 >= b && $1 < b + 400 {found=1} END {exit found}' <<<"$used" && { echo "$base"; return; }
    done
    die "no free port range"
}

wait_http() {  # URL [METHOD]: until it answers anything (up to 20 s)
    for _ in $(seq 200); do
        curl -s -o /dev/null -m 1 -X "${2:-GET}" "$1" && return 0
        sleep 0.1
    done
    return 1
}

# --- the load: one wrk script, parametrised by the environment --------------------------------
# BENCH_API (http | etcd), BENCH_OP (put | get), BENCH_SIZE (bytes), BENCH_KEYS (GET: keys
# BENCH_PREFIX0 .. BENCH_KEYS-1), BENCH_PREFIX (PUT: unique per row). Keys are alphanumeric and
# their length a multiple of 4, so the same text is a valid base64 key for etcd. Every PUT body
# starts with 16 unique digits (thread and counter): no store can deduplicate them.
cat >"$work/load.lua" <<'EOF'
local api = os.getenv("BENCH_API")
local op = os.getenv("BENCH_OP")
local size = tonumber(os.getenv("BENCH_SIZE"))
local keys = tonumber(os.getenv("BENCH_KEYS") or "0")
local prefix = os.getenv("BENCH_PREFIX")
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

local function pad4(s) return s .. string.rep("A", (4 - #s % 4) % 4) end
local counter = 0
local filler, tail = "", ""
if op == "put" and api == "http" then
  filler = string.rep("x", size - 16)
elseif op == "put" then
  -- base64 of size - 12 bytes "x": "eHh4" per 3 bytes, then the padded remainder
  local n = size - 12
  filler = string.rep("eHh4", math.floor(n / 3))
  tail = ({ [0] = "", [1] = "eA==", [2] = "eHg=" })[n % 3]
end
local json = { ["Content-Type"] = "application/json" }

request = function()
  counter = counter + 1
  if op == "put" then
    local key = pad4(prefix .. "t" .. tid .. "n" .. counter)
    local unique = string.format("%04d%012d", tid, counter)
    if api == "http" then
      return wrk.format("PUT", "/" .. key, nil, unique .. filler)
    end
    return wrk.format("POST", "/v3/kv/put", json,
      '{"key":"' .. key .. '","value":"' .. unique .. filler .. tail .. '"}')
  end
  local key = pad4(prefix .. (counter % keys))
  if api == "http" then return wrk.format("GET", "/" .. key) end
  return wrk.format("POST", "/v3/kv/range", json, '{"key":"' .. key .. '"}')
end
EOF

# preload API URL PREFIX COUNT SIZE: COUNT objects PREFIX0.. of SIZE bytes, each checked 2xx.
preload() {
    local api=$1 url=$2 prefix=$3 count=$4 size=$5 i key body
    mkdir -p "$work/preload"
    : >"$work/preload.cfg"
    for ((i = 0; i < count; i++)); do
        key=$prefix$i
        while [ $((${#key} % 4)) -ne 0 ]; do key+=A; done
        body=$work/preload/$i
        [ "$i" -eq 0 ] || echo next >>"$work/preload.cfg"
        if [ "$api" = http ]; then
            head -c "$size" /dev/urandom >"$body"
            printf 'url = "%s/%s"\nupload-file = "%s"\noutput = "/dev/null"\nwrite-out = "%%{http_code}\\n"\n' "$url" "$key" "$body" >>"$work/preload.cfg"
        else
            printf '{"key":"%s","value":"%s"}' "$key" "$(head -c "$size" /dev/urandom | base64 -w0)" >"$body"
            printf 'url = "%s/v3/kv/put"\ndata-binary = "@%s"\noutput = "/dev/null"\nwrite-out = "%%{http_code}\\n"\n' "$url" "$body" >>"$work/preload.cfg"
        fi
    done
    local codes
    codes=$(curl -s -K "$work/preload.cfg" | sort | uniq -c)
    rm -rf "$work/preload"
    [ "$(awk '$2 ~ /^20[0-9]$/ {n += $1} END {print n + 0}' <<<"$codes")" -eq "$count" ] ||
        die "preload of $prefix failed: $codes"
    return 0
}

# wrk_row SYSTEM WORKLOAD CONNECTIONS URL: one row of the results (ops/s, p50 ms, p99 ms, errors).
rows=$work/rows.tsv
: >"$rows"
row_number=0
wrk_row() {
    local system=$1 workload=$2 connections=$3 url=$4 threads=1 out
    [ "$connections" -gt 1 ] && threads=2
    row_number=$((row_number + 1))
    # PUT keys are unique per row; GET rows name their preloaded prefix.
    [ "$BENCH_OP" = get ] || export BENCH_PREFIX=${BENCH_PREFIX_BASE:-r}$row_number
    # wrk runs plain GETs of / when the script fails to load; its errors go to stderr, so any stderr
    # output ends the run.
    out=$(wrk -t"$threads" -c"$connections" -d"${duration}s" --timeout 10s --latency -s "$work/load.lua" "$url" 2>"$work/wrk.err")
    [ ! -s "$work/wrk.err" ] || die "wrk: $(cat "$work/wrk.err")"
    awk -v s="$system" -v w="$workload" '
        function ms(v) {  # wrk prints 812.00us, 2.31ms, 1.02s
            if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0;
            if (v ~ /m$/) return v * 60000; if (v ~ /s$/) return v * 1000; return v }
        /Requests\/sec/ { rps = $2 }
        $1 == "50%" { p50 = ms($2) }
        $1 == "99%" { p99 = ms($2) }
        /Non-2xx/ { errors += $NF }
        /Socket errors/ { gsub(/,/, ""); errors += $4 + $6 + $8 + $10 }
        END { printf "%s\t%s\t%.0f\t%.3f\t%.3f\t%d\n", s, w, rps, p50, p99, errors }' <<<"$out" >>"$rows"
    tail -n1 "$rows" | awk -F'\t' '{printf "compare: %-13s %-26s %9s ops/s  p50 %8s ms  p99 %8s ms  errors %s\n", $1, $2, $3, $4, $5, $6}' >&2
}

# The workload rows every system runs; API is http or etcd.
run_rows() {
    local system=$1 api=$2 url=$3
    export BENCH_API=$api
    BENCH_OP=put BENCH_SIZE=1024 wrk_row "$system" "1 KiB PUT, 1 conn" 1 "$url"
    BENCH_OP=put BENCH_SIZE=1024 wrk_row "$system" "1 KiB PUT, 64 conns" 64 "$url"
    preload "$api" "$url" k1k "$keys_1k" 1024
    BENCH_OP=get BENCH_SIZE=1024 BENCH_KEYS=$keys_1k BENCH_PREFIX=k1k wrk_row "$system" "1 KiB GET, 1 conn" 1 "$url"
    BENCH_OP=get BENCH_SIZE=1024 BENCH_KEYS=$keys_1k BENCH_PREFIX=k1k wrk_row "$system" "1 KiB GET, 64 conns" 64 "$url"
    BENCH_OP=put BENCH_SIZE=1048576 wrk_row "$system" "1 MiB PUT, 8 conns" 8 "$url"
    preload "$api" "$url" k1m "$keys_1m" 1048576
    BENCH_OP=get BENCH_SIZE=1048576 BENCH_KEYS=$keys_1m BENCH_PREFIX=k1m wrk_row "$system" "1 MiB GET, 8 conns" 8 "$url"
}

# big_transfer SYSTEM URL PID...: one BIG_MB PUT and GET with curl, the object read back and
# compared, and the peak RSS of each PID over the transfer (VmHWM, reset just before it).
big_file=$work/big
big_transfer() {
    local system=$1 url=$2 put get pid name rss="" got
    shift 2
    [ -f "$big_file" ] || head -c $((big_mb << 20)) /dev/urandom >"$big_file"
    # Earlier rows leave dirty pages (nginx's 1 MiB PUTs are never synced); flush them so this
    # transfer is not throttled by another row's writeback.
    sync
    for pid in "$@"; do echo 5 >"/proc/$pid/clear_refs" 2>/dev/null || true; done
    put=$(curl -sf -T "$big_file" "$url/bigobject" -o /dev/null -w '%{speed_upload}') || die "$system: $big_mb MiB PUT failed"
    get=$(curl -sf "$url/bigobject" -o /dev/null -w '%{speed_download}') || die "$system: $big_mb MiB GET failed"
    for pid in "$@"; do
        name=$(tr -d '\n' <"/proc/$pid/comm")
        rss+="${rss:+, }$name $(awk '/VmHWM/{printf "%.0f", $2/1024}' "/proc/$pid/status") MiB"
    done
    got=$(curl -sf "$url/bigobject" | cmp - "$big_file" 2>&1) || die "$system: the $big_mb MiB object came back different: $got"
    printf '%s\t%s MiB PUT (curl)\t%.0f\t\t\t0\n' "$system" "$big_mb" "$(awk -v b="$put" 'BEGIN{print b/1e6}')" >>"$rows"
    printf '%s\t%s MiB GET (curl)\t%.0f\t\t\t0\n' "$system" "$big_mb" "$(awk -v b="$get" 'BEGIN{print b/1e6}')" >>"$rows"
    printf '%s\tpeak RSS over %s MiB\t%s\n' "$system" "$big_mb" "$rss" >>"$work/rss.tsv"
    say "$system: $big_mb MiB PUT $(tail -n2 "$rows" | head -n1 | cut -f3) MB/s, GET $(tail -n1 "$rows" | cut -f3) MB/s; peak RSS $rss"
}

# --- the systems --------------------------------------------------------------------------------
# run_toastyfs SYSTEM [NODE FLAGS]
run_toastyfs() {
    local system=$1 base url pid pids=()
    shift
    export TOASTYFS_HOME=$work/$system TOASTYFS_BUILD=$build TOASTYFS_SKIP_BUILD=1 TOASTYFS_NODE_ARGS="$*"
    for attempt in 1 2 3; do
        base=$(free_port_base)
        export TOASTYFS_PORT_BASE=$base TOASTYFS_PROXY=127.0.0.1:$((base + 300))
        "$root/cluster.sh" start >/dev/null 2>&1 && break
        "$root/cluster.sh" stop >/dev/null 2>&1 || true
        [ "$attempt" -lt 3 ] || die "could not start a ToastyFS cluster (logs: $TOASTYFS_HOME/logs)"
    done
    url=http://$TOASTYFS_PROXY
    for name in proxy node1 node2 node3; do pids+=("$(cat "$TOASTYFS_HOME/pids/$name.pid")"); done
    run_rows "$system" http "$url"
    big_transfer "$system" "$url" "${pids[@]}"
    stop_servers
    rm -rf "${work:?}/$system"
}

run_nginx() {
    local base dir=$work/nginx master worker
    base=$(free_port_base)
    mkdir -p "$dir/data" "$dir/tmp" "$dir/logs"
    local user_line=""
    [ "$(id -u)" -eq 0 ] && user_line="user root;"
    cat >"$dir/nginx.conf" <<EOF
$user_line
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    client_body_temp_path $dir/tmp;
    proxy_temp_path $dir/tmp;
    fastcgi_temp_path $dir/tmp;
    uwsgi_temp_path $dir/tmp;
    scgi_temp_path $dir/tmp;
    server {
        listen 127.0.0.1:$base;
        root $dir/data;
        client_max_body_size 0;
        dav_methods PUT DELETE;
        dav_access user:rw group:r all:r;
    }
}
EOF
    nginx -p "$dir" -c "$dir/nginx.conf" -g 'daemon off;' 2>>"$dir/logs/error.log" &
    master=$!
    server_pids+=("$master")
    disown "$master"
    wait_http "http://127.0.0.1:$base/" || die "nginx did not start: $(tail -n5 "$dir/logs/error.log")"
    worker=$(pgrep -P "$master" | head -n1)
    run_rows nginx http "http://127.0.0.1:$base"
    big_transfer nginx "http://127.0.0.1:$base" "$master" "$worker"
    stop_servers
    rm -rf "$dir"
}

# run_etcd SYSTEM [ETCD FLAGS...]: a 3-member cluster; the load goes to the leader's gateway.
run_etcd() {
    local system=$1 base dir=$work/$1 cluster="" i leader="" url status member
    shift
    base=$(free_port_base)
    for i in 1 2 3; do cluster+="${cluster:+,}m$i=http://127.0.0.1:$((base + 10 + i))"; done
    mkdir -p "$dir"
    for i in 1 2 3; do
        # A 8 GiB backend quota so the 1 MiB rows never raise the space alarm (default 2 GiB).
        etcd --name "m$i" --data-dir "$dir/m$i" \
            --listen-client-urls "http://127.0.0.1:$((base + i))" \
            --advertise-client-urls "http://127.0.0.1:$((base + i))" \
            --listen-peer-urls "http://127.0.0.1:$((base + 10 + i))" \
            --initial-advertise-peer-urls "http://127.0.0.1:$((base + 10 + i))" \
            --initial-cluster "$cluster" --initial-cluster-state new \
            --initial-cluster-token "compare$base" --quota-backend-bytes $((8 << 30)) \
            --log-level error "$@" >"$dir/m$i.log" 2>&1 &
        server_pids+=("$!")
        disown "$!"
    done
    for _ in $(seq 100); do
        for i in 1 2 3; do
            status=$(curl -s -m 1 -X POST "http://127.0.0.1:$((base + i))/v3/maintenance/status" -d '{}' || true)
            member=$(grep -o '"member_id":"[0-9]*"' <<<"$status" | grep -o '[0-9]*' || true)
            [ -n "$member" ] && grep -q "\"leader\":\"$member\"" <<<"$status" && leader=$i
        done
        [ -n "$leader" ] && break
        sleep 0.2
    done
    [ -n "$leader" ] || die "$system: no leader (logs: $dir)"
    url=http://127.0.0.1:$((base + leader))
    run_rows "$system" etcd "$url"
    local pids=("${server_pids[@]}")
    printf '%s\tpeak RSS over %s MiB\tn/a (request limit 1.5 MiB); after the rows: %s\n' "$system" "$big_mb" \
        "$(for p in "${pids[@]}"; do awk '/VmHWM/{printf "etcd %.0f MiB ", $2/1024}' "/proc/$p/status"; done)" >>"$work/rss.tsv"
    stop_servers
    rm -rf "$dir"
}

say "work directory $work; systems: $systems; ${duration} s per row"
for system in $systems; do
    sync  # the previous system's dirty pages are not this one's cost
    case $system in
        toastyfs) BENCH_PREFIX_BASE=t run_toastyfs toastyfs ;;
        toastyfs-diskless) BENCH_PREFIX_BASE=d run_toastyfs toastyfs-diskless --diskless ;;
        nginx) BENCH_PREFIX_BASE=n run_nginx ;;
        etcd) BENCH_PREFIX_BASE=e run_etcd etcd ;;
        etcd-nofsync) BENCH_PREFIX_BASE=f run_etcd etcd-nofsync --unsafe-no-fsync ;;
        *) die "unknown system $system" ;;
    esac
done

# --- the report -----------------------------------------------------------------------------------
stamp=$(date -u +%Y-%m-%dT%H%MZ)
mkdir -p "$results"
report=$results/compare-$stamp.md
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
{
    echo "# bench/compare.sh, $(date -u '+%Y-%m-%d %H:%M UTC'), commit $commit"
    echo
    echo "Machine: $(nproc) cores ($(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)), $(awk '/MemTotal/{printf "%.1f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)."
    echo "Command: \`DURATION=$duration BIG_MB=$big_mb SYSTEMS=\"$systems\" bench/compare.sh\`."
    echo "Peers: $(nginx -v 2>&1 | sed 's/.*: //'), etcd $(etcd --version | awk '/etcd Version/{print $3}'), $(wrk -v 2>&1 | head -n1 | awk '{print $1, $2}')."
    echo "toastyfs = defaults (persistent); toastyfs-diskless = --diskless; etcd = defaults (fsync on); etcd-nofsync = --unsafe-no-fsync."
    echo "Cells: ops/s (MB/s for curl rows), p50 / p99 ms."
    echo
    awk -F'\t' -v systems="$systems" '
        BEGIN { n = split(systems, sys, " ") }
        !($2 in seen) { seen[$2] = 1; order[++rows] = $2 }
        { v[$1, $2] = $3; p50[$1, $2] = $4; p99[$1, $2] = $5; err[$1, $2] = $6 }
        function cell(s, w) {
            if (!((s, w) in v)) return "n/a"
            c = v[s, w]; if (p50[s, w] != "") c = c " (" p50[s, w] " / " p99[s, w] ")"
            if (err[s, w] > 0) c = c " **" err[s, w] " errors**"
            return c }
        END {
            printf "| workload |"; for (i = 1; i <= n; i++) printf " %s |", sys[i]
            for (i = 1; i <= n; i++) if (sys[i] != "toastyfs") printf " toastyfs/%s |", sys[i]
            printf "\n|---|"; for (i = 1; i <= n; i++) printf "---:|"
            for (i = 1; i <= n; i++) if (sys[i] != "toastyfs") printf "---:|"
            printf "\n"
            for (r = 1; r <= rows; r++) {
                w = order[r]; printf "| %s |", w
                for (i = 1; i <= n; i++) printf " %s |", cell(sys[i], w)
                for (i = 1; i <= n; i++) if (sys[i] != "toastyfs") {
                    if (("toastyfs", w) in v && (sys[i], w) in v && v[sys[i], w] > 0)
                        printf " %.2f |", v["toastyfs", w] / v[sys[i], w]
                    else printf " n/a |" }
                printf "\n" } }' "$rows"
    echo
    [ -f "$work/rss.tsv" ] && awk -F'\t' '{printf "- %s, %s: %s\n", $1, $2, $3}' "$work/rss.tsv"
    echo
    echo "Targets (issues 6 and 14; toastyfs is the persistent default):"
    awk -F'\t' -v big="$big_mb" '
        { v[$1, $2] = $3 }
        function check(what, w, peer, want) {
            if (!(("toastyfs", w) in v) || !((peer, w) in v) || v[peer, w] == 0) { printf "- %s: not measured\n", what; return }
            r = v["toastyfs", w] / v[peer, w]
            printf "- %s: %.2f (target >= %.2f) %s\n", what, r, want, (r >= want ? "met" : "MISSED") }
        END {
            check("1 KiB PUT at 64 conns vs nginx", "1 KiB PUT, 64 conns", "nginx", 1)
            check("1 KiB PUT at 64 conns vs etcd (fsync)", "1 KiB PUT, 64 conns", "etcd", 5)
            check("1 KiB GET at 64 conns vs nginx", "1 KiB GET, 64 conns", "nginx", 0.5)
            check("1 KiB GET at 64 conns vs etcd (fsync)", "1 KiB GET, 64 conns", "etcd", 4)
            check(big " MiB PUT vs nginx", big " MiB PUT (curl)", "nginx", 0.4)
            check(big " MiB GET vs nginx", big " MiB GET (curl)", "nginx", 0.5) }' "$rows"
    if [ -f "$baseline" ]; then
        # Every other row against the diskless figures of the baseline run (same workloads).
        awk -F'\t' -v name="$(basename "$baseline")" '
            FNR == NR { if ($1 == "toastyfs") base[$2] = $3; next }
            $1 == "toastyfs" && $2 != "1 KiB PUT, 64 conns" && ($2 in base) && base[$2] > 0 {
                r = $3 / base[$2]
                printf "- %s vs the diskless baseline (%s): %s / %s = %.2f (target >= 1.00) %s\n", $2, name, $3, base[$2], r,
                    (r >= 1 ? "met" : "MISSED") }' "$baseline" "$rows"
    fi
    awk -F'\t' '$1 == "toastyfs" { n = split($3, parts, ", "); for (i = 1; i <= n; i++) if (parts[i] ~ /^toastyfs-proxy /) {
        split(parts[i], f, " "); printf "- proxy peak RSS: %s MiB (target <= 256) %s\n", f[2], (f[2] <= 256 ? "met" : "MISSED") } }' \
        "$work/rss.tsv" 2>/dev/null || true
} >"$report"
cp "$rows" "$results/compare-$stamp.tsv"

# The plot: ops/s of the wrk rows (log scale) and MB/s of the curl rows, one bar per system.
if command -v gnuplot >/dev/null; then
    # One data file per panel: a column per system that has a value in it (gnuplot rejects a
    # histogram column without valid points).
    panel_data() {  # PANEL (ops | mbs)
        awk -F'\t' -v systems="$systems" -v panel="$1" '
            BEGIN { n = split(systems, sys, " ") }
            (panel == "ops") == ($4 != "") { if (!($2 in seen)) { seen[$2] = 1; order[++rows] = $2 }; v[$1, $2] = $3; has[$1] = 1 }
            END { printf "workload"; for (i = 1; i <= n; i++) if (sys[i] in has) printf "\t%s", sys[i]; printf "\n"
                  for (r = 1; r <= rows; r++) { printf "\"%s\"", order[r]
                      for (i = 1; i <= n; i++) if (sys[i] in has) printf "\t%s", ((sys[i], order[r]) in v ? v[sys[i], order[r]] : "NaN")
                      printf "\n" } }' "$rows"
    }
    panel_data ops >"$work/ops.dat"
    panel_data mbs >"$work/mbs.dat"
    ops_columns=$(head -n1 "$work/ops.dat" | wc -w)
    mbs_columns=$(head -n1 "$work/mbs.dat" | wc -w)
    gnuplot <<EOF
set terminal pngcairo size 1400,600 font "sans,10"
set output "$results/compare-$stamp.png"
set multiplot layout 1,2 title "ToastyFS vs peers, $(date -u +%F), $(nproc) cores, commit $commit"
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set key top right
set grid ytics
set xtics rotate by -30
set logscale y
set ylabel "ops/s (log)"
set title "wrk, ${duration} s per row"
plot for [c=2:$ops_columns] "$work/ops.dat" using c:xtic(1) title columnheader(c)
unset logscale y
set ylabel "MB/s"
set title "one ${big_mb} MiB object with curl"
plot for [c=2:$mbs_columns] "$work/mbs.dat" using c:xtic(1) title columnheader(c)
unset multiplot
EOF
    cp "$results/compare-$stamp.png" "$results/compare-latest.png"
fi
cp "$report" "$results/compare-latest.md"
cat "$report"
say "written: $report, $results/compare-$stamp.png"
