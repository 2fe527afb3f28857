# Shared by the cluster tests: start kv-server replicas on free loopback ports, run kv-client,
# report failures with the replicas' logs, and kill every child on exit.
#
# Source it after setting `server` and `client` (paths to kv-server and kv-client). Tests use it,
# and so do the scripts in bench/. LOG_LEVEL (default debug) sets the servers' log level.
#
# Sanitizer builds (build-asan): every process started after sourcing writes its ASan/UBSan/LSan
# reports to $work/sanitizer/report.<pid> (log_path), and the script fails on exit if any
# exists, printing them: a report counts even from a replica killed afterwards. On exit the
# servers still running get SIGTERM first (so they check for leaks), SIGKILL after 5 s.

cluster=$((RANDOM + 1))
work=$(mktemp -d "${TMPDIR:-/tmp}/kv_cluster.XXXXXX")
pids=()
# shellcheck source=../sanitizer_reports.sh
source "$(dirname "${BASH_SOURCE[0]}")/../sanitizer_reports.sh"

# process_running PID: the process exists and is not a zombie.
process_running() {
    local state
    state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)
    [ -n "$state" ] && [ "$state" != Z ]
}

cleanup() {
    local pid left reports=0
    for pid in "${pids[@]}"; do process_running "$pid" && kill -TERM "$pid" 2>/dev/null; done
    for _ in $(seq 50); do
        left=0
        for pid in "${pids[@]}"; do process_running "$pid" && left=1; done
        [ "$left" = 0 ] && break
        sleep 0.1
    done
    for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null; done
    wait 2>/dev/null
    sanitizer_reports && reports=1
    rm -rf "$work"
    if [ "$reports" = 1 ]; then
        echo "FAIL: a sanitizer reported an error (above)"
        exit 1
    fi
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*"
    for log in "$work"/*.log; do
        [ -f "$log" ] || continue
        echo "---- $log"
        tail -n 30 "$log"
    done
    exit 1
}

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# start_replica INDEX [--recovering]: starts one server; its pid goes to pid[INDEX]. With
# persistent=1 each replica keeps its data in $work/data<INDEX> (kv-server --data, and --format
# the first time).
declare -a pid
persistent=0
start_replica() {
    local index=$1
    shift
    local data=()
    if [ "$persistent" = 1 ]; then
        data=(--data "$work/data$index")
        # A new replica (no journal yet, and not told it lost one) formats; kv-server refuses
        # to guess (vsr::start_refusal).
        [ -s "$work/data$index/superblock" ] || [[ " $* " == *" --recovering "* ]] || data+=(--format)
    fi
    "$server" --replica "$index" --replicas "$replicas" --cluster "$cluster" --log-level "${LOG_LEVEL:-debug}" \
        "${data[@]}" "$@" >>"$work/replica$index.log" 2>&1 &
    pid[$index]=$!
    pids+=("$!")
}

kv() { timeout 30 "$client" --replicas "$replicas" --cluster "$cluster" "$@"; }

# primary_of STATUS_OUTPUT: the index of the one normal primary, or nothing.
primary_of() { echo "$1" | sed -n 's/^replica=\([0-9]*\) status=normal role=primary .*/\1/p'; }

# start_cluster: three replicas on a random port range, retried if a port is busy.
# Sets `replicas` (the --replicas list) and `port[0..2]`.
declare -a port
start_cluster() {
    # Pick three free ports: a random base, retried if any replica cannot listen. Below Linux's
    # ephemeral range (32768-60999), so no outgoing connection takes a killed replica's port
    # before it restarts (kv_smoke once failed so: "cannot listen ...: address_in_use").
    started=0
    for attempt in 1 2 3 4 5 6 7 8; do
        base=$((20000 + (RANDOM % 6000) * 2))
        replicas="127.0.0.1:$base,127.0.0.1:$((base + 1)),127.0.0.1:$((base + 2))"
        rm -f "$work"/*.log
        for i in 0 1 2; do start_replica "$i"; done
        sleep 0.3
        alive=0
        for i in 0 1 2; do kill -0 "${pid[$i]}" 2>/dev/null && alive=$((alive + 1)); done
        if [ "$alive" -eq 3 ]; then
            started=1
            break
        fi
        echo "attempt $attempt: ports from $base busy, retrying"
        for i in 0 1 2; do kill -9 "${pid[$i]}" 2>/dev/null; done
        wait 2>/dev/null
    done
    [ "$started" -eq 1 ] || fail "could not start three replicas"
    for i in 0 1 2; do port[$i]=$((base + i)); done
    echo "replicas: $replicas cluster $cluster"
}

# stop_cluster: kill -9 every server started so far and wait for them.
stop_cluster() {
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
    wait "${pids[@]}" 2>/dev/null
    pids=()
}
