#!/usr/bin/env bash
# Runs a local ToastyFS cluster: 3 storage nodes and the HTTP proxy on 127.0.0.1:3000.
#
#   ./cluster.sh start        build if needed, start the nodes and the proxy, wait until ready
#   ./cluster.sh status       pid, role, view, commit, checkpoint, journal use and disk use of each
#                             node; proxy health
#   ./cluster.sh stop         stop everything; the metadata stays on disk: start reloads it
#   ./cluster.sh restart      stop, then start
#   ./cluster.sh clean        stop, then delete the data and logs
#   ./cluster.sh kill N       kill -9 node N (1, 2, 3): watch the cluster carry on
#   ./cluster.sh kill all     kill -9 every node at once (a power loss); the proxy keeps running
#   ./cluster.sh revive N     restart node N after a kill: it reloads its disk and catches up from
#                             the others (or recovers from them if its metadata is gone)
#   ./cluster.sh revive all   restart every node that is not running
#
# The nodes are persistent: node N keeps its metadata journal in data/nodeN/vsr and its metadata
# store in data/nodeN/metadata, and reloads them on start or revive, even after a kill -9. Once
# the cluster has started, data/initialized marks it: a node of that cluster whose
# data/nodeN/vsr/superblock is missing or empty lost its metadata and is started with
# --recovering (VSR recovery from the other nodes: a majority must run with theirs), never
# formatted as a new replica (before that, a node without a superblock starts with --format; the
# node refuses to start without one of the two). With --diskless in TOASTYFS_NODE_ARGS the metadata lives in memory:
# stop loses it, and revive always passes --recovering.
#
# State lives in $TOASTYFS_HOME (default .cluster/ next to this script): data/nodeN/ (metadata
# and chunks), logs/nodeN.log and logs/proxy.log (written line by line: tail -f them), pids/.
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
initialized_marker=$home/data/initialized
diskless=0
for arg in "${node_args[@]}"; do
    if [ "$arg" = --diskless ]; then diskless=1; fi
done

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
    if [[ "${1:-}" =~ ^[0-9]+$ ]] && [ "$1" -ge 1 ] && [ "$1" -le "$nodes" ]; then return 0; fi
    die "node must be a number from 1 to $nodes, or all"
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

# must_recover start|revive N: node N is to be started with --recovering, having lost its metadata.
# A diskless node has lost it whenever it is revived (on start, the whole cluster starts empty). A
# persistent node has lost it when the cluster was initialised and its superblock is missing or
# empty; otherwise it reloads its disk, or (a new cluster) formats it.
must_recover() {
    if [ "$diskless" = 1 ]; then
        [ "$1" = revive ]
        return
    fi
    [ -e "$initialized_marker" ] && [ ! -s "$home/data/node$2/vsr/superblock" ]
}

# check_recoverable COUNT: die unless COUNT nodes started with --recovering can recover: VSR
# recovery needs answers from f + 1 other nodes that kept their metadata.
check_recoverable() {
    local f=$(((nodes - 1) / 2))
    [ "$1" -le $((nodes - f - 1)) ] && return 0
    local fresh="./cluster.sh clean starts a new, empty cluster"
    [ "$diskless" = 1 ] && fresh="./cluster.sh restart starts a new, empty cluster"
    die "$1 of $nodes nodes have lost their metadata; recovery needs $((f + 1)) others that kept it, so the cluster's metadata is lost. $fresh"
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

# start_nodes start|revive N...: starts those nodes, each with --recovering if must_recover says
# so (and says which; they are left in recovering_nodes), after checking that they can recover.
recovering_nodes=()
start_nodes() {
    local why=$1 n
    shift
    recovering_nodes=()
    for n in "$@"; do
        if must_recover "$why" "$n"; then recovering_nodes+=("$n"); fi
    done
    check_recoverable "${#recovering_nodes[@]}"
    for n in "$@"; do
        if [[ " ${recovering_nodes[*]} " == *" $n "* ]]; then
            if [ "$diskless" = 1 ]; then
                say "node $n is diskless: starting it with --recovering (it recovers its metadata from the other nodes)"
            else
                say "node $n lost its metadata ($home/data/node$n/vsr/superblock is missing or empty): starting it with --recovering (it recovers from the other nodes)"
            fi
            start_node "$n" --recovering
        elif [ "$diskless" = 0 ] && [ ! -s "$home/data/node$n/vsr/superblock" ]; then
            start_node "$n" --format  # a new cluster's node (must_recover said so): it creates its journal
        else
            start_node "$n"
        fi
    done
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
    start_nodes start $(seq 1 "$nodes")
    start_proxy
    # A recovering node may need a checkpoint sent over from the others first.
    local ready=0 limit=20
    [ "${#recovering_nodes[@]}" -eq 0 ] || limit=60
    wait_ready "$limit" || ready=$?
    if [ "$ready" -eq 0 ]; then
        # From now on a node without its superblock lost the metadata of a running cluster: it
        # must recover it from the others, never format itself as a new replica. (A diskless
        # cluster starts empty every time: nothing to mark.)
        if [ "$diskless" = 0 ] && [ ! -e "$initialized_marker" ]; then
            echo "cluster $cluster_id of $nodes nodes, first started $(date -u +%FT%TZ)" >"$initialized_marker"
        fi
        say "started $nodes nodes and the proxy on http://$proxy_address (logs in $home/logs)"
        return 0
    fi
    # Leave nothing half-started behind: a second start would refuse ("already running").
    cmd_stop >/dev/null
    [ "$ready" -eq 1 ] && die "the cluster did not become ready within $limit s; stopped it again; see $home/logs"
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
    local format='%-6s %-8s %-12s %-8s %-6s %-10s %-10s %-12s %-8s %s\n'
    # shellcheck disable=SC2059  # the format is the one above
    printf "$format" NODE PID STATUS ROLE VIEW COMMIT CHECKPOINT JOURNAL CHUNKS DISK
    for ((i = 1; i <= nodes; i++)); do
        local p line state role view commit checkpoint entries entries_max journal chunks disk
        p=$(pid_of "node$i")
        alive "node$i" || p="-"
        line=$(grep -o "{\"node\":$i,[^}]*}" <<<"$json" || true)
        state=$(field "$line" status); role=$(field "$line" role)
        view=$(field "$line" view); commit=$(field "$line" commit); chunks=$(field "$line" chunks)
        checkpoint=$(field "$line" checkpoint)
        entries=$(field "$line" log_entries); entries_max=$(field "$line" log_entries_max)
        journal=-
        [ -n "$entries" ] && journal=$entries/${entries_max:-?}
        [ "$p" = "-" ] && state=down
        disk=$(du -sh "$home/data/node$i" 2>/dev/null | cut -f1)
        # shellcheck disable=SC2059
        printf "$format" "$i" "$p" "${state:-unknown}" "${role:--}" "${view:--}" "${commit:--}" "${checkpoint:--}" \
            "$journal" "${chunks:--}" "${disk:-0}"
    done
    local reached quorum
    reached=$(field "$json" replicas_connected); quorum=$(field "$json" quorum)
    if alive proxy && [ -n "$json" ] && [ "${reached:-0}" -ge "${quorum:-1}" ]; then
        say "proxy pid $(pid_of proxy) on http://$proxy_address: reaches $reached of $nodes nodes, healthy"
    elif alive proxy && [ -n "$json" ]; then
        say "proxy pid $(pid_of proxy) on http://$proxy_address: reaches $reached of $nodes nodes, fewer than a majority ($quorum): requests fail"
    elif alive proxy; then
        say "proxy pid $(pid_of proxy) is running but not answering on http://$proxy_address"
    else
        say "proxy is down"
    fi
}

# cmd_kill N|all: kill -9 of node N, or of every running node at once (every signal is sent before
# waiting for any process to go), then up to 5 s until they are gone and their ports released.
cmd_kill() {
    local n p killed=() pids=()
    if [ "${1:-}" = all ]; then
        for ((n = 1; n <= nodes; n++)); do
            if alive "node$n"; then killed+=("$n"); fi
        done
        [ "${#killed[@]}" -gt 0 ] || die "no node is running"
    else
        check_node_number "${1:-}"
        alive "node$1" || die "node $1 is not running"
        killed=("$1")
    fi
    for n in "${killed[@]}"; do pids+=("$(pid_of "node$n")"); done
    kill -9 "${pids[@]}" 2>/dev/null || true  # one signal each, in one call; one may have just exited
    for n in "${killed[@]}"; do rm -f "$home/pids/node$n.pid"; done
    for _ in $(seq 50); do
        local left=0
        for p in "${pids[@]}"; do if running "$p"; then left=1; fi; done
        [ "$left" -eq 0 ] && break
        sleep 0.1
    done
    for ((n = 0; n < ${#killed[@]}; n++)); do say "killed node ${killed[n]} (pid ${pids[n]}) with SIGKILL"; done
}

# cmd_revive N|all: starts node N, or every node that is not running. A persistent node reloads its
# metadata from its disk and catches up from the others; one that lost it (see must_recover)
# recovers it from them.
cmd_revive() {
    local n revived=()
    if [ "${1:-}" = all ]; then
        for ((n = 1; n <= nodes; n++)); do
            if ! alive "node$n"; then revived+=("$n"); fi
        done
        [ "${#revived[@]}" -gt 0 ] || die "every node is running"
    else
        check_node_number "${1:-}"
        alive "node$1" && die "node $1 is running"
        revived=("$1")
    fi
    [ -x "$node_bin" ] || die "not built"
    start_nodes revive "${revived[@]}"
    sleep 0.2
    for n in "${revived[@]}"; do
        alive "node$n" || { tail -n 5 "$home/logs/node$n.log" >&2; die "node $n exited at once; see $home/logs/node$n.log"; }
    done
    for n in "${revived[@]}"; do
        if [[ " ${recovering_nodes[*]} " == *" $n "* ]]; then
            say "revived node $n (pid $(pid_of "node$n")); it recovers its metadata from the other nodes"
        else
            say "revived node $n (pid $(pid_of "node$n")); it reloads its metadata from its disk and catches up"
        fi
    done
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
