#!/usr/bin/env bash
# Runs a local ToastyFS cluster: 3 storage nodes and the HTTP proxy on 127.0.0.1:3000.
#
#   ./cluster.sh start        build if needed, start the nodes and the proxy, wait until ready
#   ./cluster.sh status       pid, role, view, commit and disk use of each node; proxy health
#   ./cluster.sh stop         stop everything (the metadata lives in memory: it goes too)
#   ./cluster.sh restart      stop, then start
#   ./cluster.sh clean        stop, then delete the data and logs
#   ./cluster.sh kill N       kill -9 node N (1, 2, 3): watch the cluster carry on
#   ./cluster.sh revive N     restart node N after a kill; it recovers its state from the others
#
# State lives in $TOASTYFS_HOME (default .cluster/ next to this script): data/nodeN/ (chunks),
# logs/nodeN.log and logs/proxy.log (written line by line: tail -f them), pids/.
# Settings (environment): TOASTYFS_NODES (3), TOASTYFS_PROXY (127.0.0.1:3000),
# TOASTYFS_PORT_BASE (7000: node N listens on BASE+N for metadata and BASE+100+N for chunks),
# TOASTYFS_CLUSTER (cluster id, 1), TOASTYFS_PROXY_ARGS and TOASTYFS_NODE_ARGS (extra flags),
# TOASTYFS_BUILD (build directory, default build), TOASTYFS_SKIP_BUILD=1 (use the binaries as they
# are when they exist: no build step).
set -euo pipefail
root=$(cd "$(dirname "$0")" && pwd)
home=${TOASTYFS_HOME:-$root/.cluster}
nodes=${TOASTYFS_NODES:-3}
proxy_address=${TOASTYFS_PROXY:-127.0.0.1:3000}
port_base=${TOASTYFS_PORT_BASE:-7000}
cluster_id=${TOASTYFS_CLUSTER:-1}
build=${TOASTYFS_BUILD:-$root/build}
node_bin=$build/examples/objectstore/toastyfs-node
proxy_bin=$build/examples/objectstore/toastyfs-proxy
read -r -a node_args <<<"${TOASTYFS_NODE_ARGS:-}"
read -r -a proxy_args <<<"${TOASTYFS_PROXY_ARGS:-}"

replicas=""
chunk_nodes=""
for ((i = 1; i <= nodes; i++)); do
    replicas+="${replicas:+,}127.0.0.1:$((port_base + i))"
    chunk_nodes+="${chunk_nodes:+,}127.0.0.1:$((port_base + 100 + i))"
done

say() { echo "cluster: $*"; }
die() { echo "cluster: $*" >&2; exit 1; }

pid_of() { cat "$home/pids/$1.pid" 2>/dev/null || true; }
# running PID: the process exists, is not a zombie waiting to be reaped (kill -0 succeeds on those,
# and some init processes reap late) and is one of ours (a stale pid file may name a reused pid).
running() {
    kill -0 "$1" 2>/dev/null || return 1
    [ -r "/proc/$1/stat" ] || return 0  # no /proc: kill -0 is all there is
    local state comm
    state=$(sed "s/.*) //" "/proc/$1/stat" 2>/dev/null | cut -c1)
    comm=$(cat "/proc/$1/comm" 2>/dev/null)
    [ -n "$state" ] && [ "$state" != Z ] && [[ "$comm" == toastyfs-* ]]
}
alive() { local p; p=$(pid_of "$1"); [ -n "$p" ] && running "$p"; }

check_node_number() {
    [[ "${1:-}" =~ ^[0-9]+$ ]] && [ "$1" -ge 1 ] && [ "$1" -le "$nodes" ] || die "node must be a number from 1 to $nodes"
}

# build.sh (dependencies, then build/) for the default build directory; another TOASTYFS_BUILD
# (build-asan, a test's) must already be configured and is compiled in place, never build/ instead.
build_if_needed() {
    if [ -x "$node_bin" ] && [ -x "$proxy_bin" ] && [ "${TOASTYFS_SKIP_BUILD:-0}" = 1 ]; then return 0; fi
    local command=("$root/build.sh")
    # realpath -m: build/ does not exist yet on a fresh clone, and it is still the default one.
    if [ "$(realpath -m "$build")" != "$(realpath -m "$root/build")" ]; then
        [ -f "$build/build.ninja" ] || die "TOASTYFS_BUILD=$build is not a configured build directory"
        command=(meson compile -C "$build")
    fi
    [ -x "$node_bin" ] || say "building (the first build takes a few minutes; output in $home/logs/build.log)"
    "${command[@]}" >"$home/logs/build.log" 2>&1 || { tail -n 40 "$home/logs/build.log" >&2; die "build failed (see $home/logs/build.log)"; }
}

# start_node N [--recovering]
start_node() {
    local n=$1
    shift
    mkdir -p "$home/data/node$n"
    "$node_bin" --index $((n - 1)) --replicas "$replicas" --chunk-listen "127.0.0.1:$((port_base + 100 + n))" \
        --data "$home/data/node$n" --cluster "$cluster_id" "${node_args[@]}" "$@" \
        >>"$home/logs/node$n.log" 2>&1 &
    echo $! >"$home/pids/node$n.pid"
}

start_proxy() {
    "$proxy_bin" --replicas "$replicas" --chunk-nodes "$chunk_nodes" --listen "$proxy_address" \
        --cluster "$cluster_id" "${proxy_args[@]}" >>"$home/logs/proxy.log" 2>&1 &
    echo $! >"$home/pids/proxy.pid"
}

status_json() { curl -s --max-time 2 "http://$proxy_address/?status" 2>/dev/null || true; }

# Ready when the proxy answers and has heard every node report status normal, one of them primary
# (so a `status` right after `start` shows every node, not the ones the proxy has not polled yet).
# Every process is checked alive first: a process that could not listen exits, and the address
# may then be answered by someone else's proxy. Returns 1 on timeout, 2 if a process exited.
wait_ready() {
    local deadline=$((SECONDS + ${1:-20})) json name
    while [ $SECONDS -lt $deadline ]; do
        for name in proxy $(seq -f "node%g" 1 "$nodes"); do
            if ! alive "$name"; then
                echo "cluster: $name exited during start; see $home/logs/$name.log:" >&2
                tail -n 5 "$home/logs/$name.log" >&2
                return 2
            fi
        done
        json=$(status_json)
        if [[ "$json" == *'"role":"primary"'* ]] && [ "$(grep -o '"status":"normal"' <<<"$json" | wc -l)" -eq "$nodes" ]; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}

cmd_start() {
    mkdir -p "$home/logs" "$home/pids" "$home/data"
    for name in proxy $(seq -f "node%g" 1 "$nodes"); do
        alive "$name" && die "already running ($name, pid $(pid_of "$name")); use ./cluster.sh status or stop"
    done
    build_if_needed
    for ((i = 1; i <= nodes; i++)); do start_node "$i"; done
    start_proxy
    local ready=0
    wait_ready 20 || ready=$?
    if [ "$ready" -eq 0 ]; then
        say "started $nodes nodes and the proxy on http://$proxy_address (logs in $home/logs)"
        return 0
    fi
    # Leave nothing half-started behind: a second start would refuse ("already running").
    cmd_stop >/dev/null
    [ "$ready" -eq 1 ] && die "the cluster did not become ready within 20 s; stopped it again; see $home/logs"
    die "start failed; stopped the processes that were started"
}

# stop_processes NAME...: SIGTERM to each, up to 5 s for all of them to exit, then SIGKILL.
stop_processes() {
    local name p pids=()
    for name in "$@"; do
        p=$(pid_of "$name")
        if [ -n "$p" ] && running "$p"; then
            kill "$p" 2>/dev/null || true
            pids+=("$p")
        fi
        rm -f "$home/pids/$name.pid"
    done
    for _ in $(seq 50); do
        local left=0
        for p in "${pids[@]}"; do running "$p" && left=1; done
        [ "$left" -eq 0 ] && return 0
        sleep 0.1
    done
    for p in "${pids[@]}"; do running "$p" && kill -9 "$p" 2>/dev/null; done
    return 0
}

cmd_stop() {
    # The proxy first (it stops taking requests), then the nodes together, so that no node sees
    # its peers go one by one and starts view changes on the way down.
    stop_processes proxy
    stop_processes $(seq -f "node%g" 1 "$nodes")
    say "stopped"
}

# field JSON NAME: the value of "NAME": in a one-line JSON object (strings unquoted).
field() { sed -n "s/.*\"$2\":\"\{0,1\}\([^\",}]*\).*/\1/p" <<<"$1"; }

cmd_status() {
    local json
    json=$(status_json)
    printf '%-6s %-8s %-12s %-8s %-6s %-10s %-8s %s\n' NODE PID STATUS ROLE VIEW COMMIT CHUNKS DISK
    for ((i = 1; i <= nodes; i++)); do
        local p line state role view commit chunks disk
        p=$(pid_of "node$i")
        alive "node$i" || p="-"
        line=$(grep -o "{\"node\":$i,[^}]*}" <<<"$json" || true)
        state=$(field "$line" status); role=$(field "$line" role)
        view=$(field "$line" view); commit=$(field "$line" commit); chunks=$(field "$line" chunks)
        [ "$p" = "-" ] && state=down
        disk=$(du -sh "$home/data/node$i" 2>/dev/null | cut -f1)
        printf '%-6s %-8s %-12s %-8s %-6s %-10s %-8s %s\n' "$i" "$p" "${state:-unknown}" "${role:--}" "${view:--}" \
            "${commit:--}" "${chunks:--}" "${disk:-0}"
    done
    if alive proxy && [ -n "$json" ]; then
        say "proxy pid $(pid_of proxy) on http://$proxy_address: reaches $(field "$json" replicas_connected) of $nodes nodes, healthy"
    elif alive proxy; then
        say "proxy pid $(pid_of proxy) is running but not answering on http://$proxy_address"
    else
        say "proxy is down"
    fi
}

cmd_kill() {
    check_node_number "${1:-}"
    local p
    p=$(pid_of "node$1")
    alive "node$1" || die "node $1 is not running"
    kill -9 "$p"
    rm -f "$home/pids/node$1.pid"
    for _ in $(seq 50); do running "$p" || break; sleep 0.1; done  # gone, its ports released
    say "killed node $1 (pid $p) with SIGKILL"
}

cmd_revive() {
    check_node_number "${1:-}"
    alive "node$1" && die "node $1 is running"
    [ -x "$node_bin" ] || die "not built"
    start_node "$1" --recovering
    sleep 0.2
    alive "node$1" || { tail -n 5 "$home/logs/node$1.log" >&2; die "node $1 exited at once; see $home/logs/node$1.log"; }
    say "revived node $1 (pid $(pid_of "node$1")); it recovers its metadata from the other nodes"
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    restart) cmd_stop; cmd_start ;;
    status) cmd_status ;;
    clean) cmd_stop; rm -rf "$home"; say "removed $home" ;;
    kill) cmd_kill "${2:-}" ;;
    revive) cmd_revive "${2:-}" ;;
    *) sed -n '2,/^set /{/^#/p}' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
