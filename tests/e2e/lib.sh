# shellcheck shell=bash
# Shared by the e2e tests: a ToastyFS cluster (3 toastyfs-node + toastyfs-proxy) started through
# cluster.sh on its own TOASTYFS_HOME and a random free port range, driven with curl.
#
# Source it from a test script run as `test.sh path/to/cluster.sh` with TOASTYFS_BUILD set to the
# build directory (meson passes both; TOASTYFS_SKIP_BUILD=1 so nothing is rebuilt). On exit
# (success, failure or signal) the cluster is stopped and every temporary file removed.
# fail MESSAGE prints the tails of the cluster's logs and exits 1.
#
# Sanitizer builds (build-asan): every process the test starts writes its ASan/UBSan/LSan reports
# to $work/sanitizer/report.<pid> (log_path, appended to ASAN_OPTIONS and UBSAN_OPTIONS),
# not to its log, and the test fails when it ends if any report exists, printing them. So a
# report counts even from a node that was killed afterwards, exited through a signal, or reported
# a leak while cluster.sh stopped it. Other builds never write there.
set -u
set -o pipefail

cluster_sh=${1:?usage: $0 path/to/cluster.sh}
export TOASTYFS_SKIP_BUILD=1
export TOASTYFS_BUILD=${TOASTYFS_BUILD:?TOASTYFS_BUILD must name the build directory}
work=$(mktemp -d "${TMPDIR:-/tmp}/toastyfs_e2e.XXXXXX")
export TOASTYFS_HOME=$work/cluster
# shellcheck source=../sanitizer_reports.sh
source "$(dirname "${BASH_SOURCE[0]}")/../sanitizer_reports.sh"
test_started=$SECONDS
extra_pids=()

cluster() { timeout 60 "$cluster_sh" "$@"; }

kill_leftovers() {
    local f p
    for f in "$TOASTYFS_HOME"/pids/*.pid; do
        [ -f "$f" ] || continue
        p=$(cat "$f")
        [ -n "$p" ] && kill -9 "$p" 2>/dev/null
    done
}

cleanup() {
    local p reports=0
    for p in "${extra_pids[@]}"; do kill -9 "$p" 2>/dev/null; done
    if [ -d "$TOASTYFS_HOME/pids" ]; then
        cluster stop >/dev/null 2>&1  # SIGTERM: the processes exit and check for leaks
        kill_leftovers
    fi
    wait 2>/dev/null
    if sanitizer_reports; then
        echo "FAIL: a sanitizer reported an error (above)"
        reports=1
    fi
    rm -rf "$work"
    [ "$reports" = 0 ] || exit 1
}
trap cleanup EXIT
trap 'echo "interrupted"; exit 1' INT TERM

show_logs() {
    local log
    for log in "$TOASTYFS_HOME"/logs/*.log; do
        [ -f "$log" ] || continue
        echo "---- tail of $log"
        tail -n "${1:-40}" "$log"
    done
}

fail() {
    echo "FAIL: $*"
    echo "---- cluster status"
    cluster status 2>&1 | sed 's/^/  /'
    show_logs 40
    exit 1
}

# kill_tree PID: SIGKILL to PID and its descendants (Linux /proc; by process id only).
kill_tree() {
    local child
    for child in $(cat /proc/"$1"/task/*/children 2>/dev/null); do kill_tree "$child"; done
    kill -9 "$1" 2>/dev/null
}

# watchdog SECONDS: if the test still runs after SECONDS, print the logs, stop the cluster, and end
# the test (SIGTERM to it, SIGKILL to whatever it waits on: bash runs the trap only once its
# foreground command returns), so that it cleans up before meson's own timeout SIGKILLs it and
# leaves the cluster's files behind. Call it once, early; meson's timeout should be ~30 s larger.
watchdog() {
    (
        sleep "$1" >/dev/null 2>&1  # not holding the test's output open if it outlives us
        echo "TIMEOUT: the test ran over $1 s"
        show_logs 60
        cluster stop >/dev/null 2>&1
        kill_leftovers
        kill -TERM $$
        local child
        for child in $(cat /proc/$$/task/*/children 2>/dev/null); do
            [ "$child" = "$BASHPID" ] || kill_tree "$child"
        done
    ) &
    extra_pids+=("$!")
}

say() { echo "[$((SECONDS - test_started))s] $*"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# A port is free if nothing accepts a connection on it.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# start_cluster: cluster.sh start on a random port range below the ephemeral ports, retried on a
# new range if a port is taken. TOASTYFS_PROXY_ARGS / TOASTYFS_NODE_ARGS pass through. Sets
# port_base, proxy_port and url (http://127.0.0.1:PORT).
start_cluster() {
    local attempt p ok
    for attempt in 1 2 3 4 5 6 7 8; do
        port_base=$((10000 + (RANDOM % 200) * 100))
        proxy_port=$((port_base + 50))
        ok=1
        for p in $((port_base + 1)) $((port_base + 2)) $((port_base + 3)) $((port_base + 101)) \
            $((port_base + 102)) $((port_base + 103)) "$proxy_port"; do
            port_free "$p" || { ok=0; break; }
        done
        [ "$ok" = 1 ] || continue
        export TOASTYFS_PORT_BASE=$port_base TOASTYFS_PROXY=127.0.0.1:$proxy_port
        url=http://127.0.0.1:$proxy_port
        if cluster start; then
            say "cluster up: proxy $url, node ports $((port_base + 1))-$((port_base + 3)), chunks $((port_base + 101))-$((port_base + 103))"
            return 0
        fi
        if grep -qi "cannot listen\|address in use\|address_in_use" "$TOASTYFS_HOME"/logs/*.log 2>/dev/null; then
            echo "attempt $attempt: a port from $port_base is busy, retrying"
            cluster stop >/dev/null 2>&1
            kill_leftovers
            rm -rf "$TOASTYFS_HOME"
            continue
        fi
        fail "cluster.sh start failed"
    done
    fail "could not find a free port range"
}

# Curl with a deadline. http_code ARGS...: prints the status code only (body to $work/body,
# headers to $work/headers).
c() { curl -sS --max-time "${CURL_MAX_TIME:-30}" "$@"; }
# curl creates no output file for an empty body: both files are reset first.
http_code() {
    : >"$work/body"
    : >"$work/headers"
    c -o "$work/body" -D "$work/headers" -w '%{http_code}' "$@"
}

# header NAME: a response header's value from $work/headers (CR stripped, case-insensitive).
header() { tr -d '\r' <"$work/headers" | sed -n "s/^$1: //Ip" | tail -n 1; }

# slice FILE FIRST LENGTH: those bytes of FILE on stdout.
slice() { dd if="$1" iflag=skip_bytes,count_bytes skip="$2" count="$3" bs=64K status=none; }

# expect WHAT EXPECTED ACTUAL
expect() { [ "$2" = "$3" ] || fail "$1: expected '$2', got '$3'"; }

status_json() { c --max-time 5 "$url/?status" 2>/dev/null; }

# json_node JSON N: node N's object from /?status.
json_node() { grep -o "{\"node\":$2,[^}]*}" <<<"$1"; }
# json_field JSON NAME: a scalar field (strings unquoted), the first occurrence.
json_field() { sed -n "s/.*\"$2\":\"\{0,1\}\([^\",}]*\).*/\1/p" <<<"$1" | head -n 1; }

# primary: the index (1-based) of the node the proxy sees as normal primary, or nothing.
primary() {
    local json n line
    json=$(status_json)
    for n in 1 2 3; do
        line=$(json_node "$json" "$n")
        if [ "$(json_field "$line" role)" = primary ] && [ "$(json_field "$line" status)" = normal ]; then
            echo "$n"
            return
        fi
    done
}

# node_status N: node N's status as the proxy last heard it (normal, view_change, recovering,
# unreachable).
node_status() { json_field "$(json_node "$(status_json)" "$1")" status; }

# revive_and_wait N [SECONDS]: cluster.sh revive N (--recovering), then wait until the node itself
# logs that it is normal again (its log, from after the revival) and the proxy sees it normal.
revive_and_wait() {
    local n=$1 log=$TOASTYFS_HOME/logs/node$1.log lines deadline
    lines=$(wc -l <"$log")
    cluster revive "$n" || fail "cluster.sh revive $n failed"
    deadline=$((SECONDS + ${2:-20}))
    until tail -n +"$((lines + 1))" "$log" | grep -q "node=$n status normal " && [ "$(node_status "$n")" = normal ]; do
        [ $SECONDS -lt $deadline ] || fail "node $n did not return to normal within ${2:-20} s of its revival"
        sleep 0.2
    done
}

pid_of() { cat "$TOASTYFS_HOME/pids/$1.pid" 2>/dev/null; }
# alive NAME: running and not a zombie (this container's init reaps exited processes late).
alive() {
    local p state
    p=$(pid_of "$1")
    [ -n "$p" ] && kill -0 "$p" 2>/dev/null || return 1
    state=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | cut -c1)
    [ -n "$state" ] && [ "$state" != Z ]
}

# all_alive: the proxy and every node still run.
all_alive() {
    local name
    for name in proxy node1 node2 node3; do alive "$name" || fail "$name is not running"; done
}

# peak_rss_mb NAME: VmHWM of a process in MB (the kernel's high-water mark of its RSS).
peak_rss_mb() {
    local p kb
    p=$(pid_of "$1")
    kb=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$p/status" 2>/dev/null)
    echo $(((${kb:-0} + 512) / 1024))
}
