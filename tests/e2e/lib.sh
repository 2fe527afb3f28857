# shellcheck shell=bash
# Shared by the e2e tests: a ToastyFS cluster (3 toastyfs-node + toastyfs-proxy) started through
# cluster.sh on its own TOASTYFS_HOME and a random free port range, driven with curl.
#
# Source it from a test script run as `test.sh path/to/cluster.sh` with TOASTYFS_BUILD set to the
# build directory (meson passes both; TOASTYFS_SKIP_BUILD=1 so nothing is rebuilt). On exit
# (success, failure or signal) the cluster is stopped and every temporary file removed.
# fail MESSAGE prints the tails of the cluster's logs and exits 1.
#
# A test that needs room for big files sets room_needed_kb before sourcing this file: the test's
# files then go under the first of $TMPDIR, /var/tmp and the build directory with that many KB
# free. With no room anywhere the test skips (77), except under CI=true: a test CI is meant to
# run must not pass by skipping.
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
if [ -n "${room_needed_kb:-}" ]; then
    room=""
    for room_dir in "${TMPDIR:-/tmp}" /var/tmp "$TOASTYFS_BUILD"; do
        if [ ! -d "$room_dir" ] || [ ! -w "$room_dir" ]; then continue; fi
        free_kb=$(df -Pk "$room_dir" | awk 'NR == 2 {print $4}')
        if [ "${free_kb:-0}" -ge "$room_needed_kb" ]; then room=$room_dir; break; fi
    done
    if [ -z "$room" ]; then
        echo "no room for the test's $((room_needed_kb / 1024)) MB in ${TMPDIR:-/tmp}, /var/tmp or $TOASTYFS_BUILD"
        [ "${CI:-}" = true ] && { echo "FAIL: CI=true, and this test must run in CI"; exit 1; }
        echo "SKIP"
        exit 77
    fi
    export TMPDIR=$room
fi
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

# revive_and_wait N [SECONDS]: cluster.sh revive N, then wait until the node itself logs that it
# is normal again (its log, from after the revival) and the proxy sees it normal. What cluster.sh
# said is left in revive_output (it says whether the node was started with --recovering).
revive_output=""
revive_and_wait() {
    local n=$1 log=$TOASTYFS_HOME/logs/node$1.log lines deadline
    lines=$(wc -l <"$log")
    revive_output=$(cluster revive "$n") || fail "cluster.sh revive $n failed: $revive_output"
    echo "$revive_output"
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

# wait_all_normal [SECONDS]: until the proxy sees every node normal and one of them primary.
wait_all_normal() {
    local deadline=$((SECONDS + ${1:-30})) json
    while :; do
        json=$(status_json)
        if [[ "$json" == *'"role":"primary"'* ]] && [ "$(grep -o '"status":"normal"' <<<"$json" | wc -l)" -eq 3 ]; then
            return 0
        fi
        [ $SECONDS -lt $deadline ] || fail "the nodes were not all normal within ${1:-30} s: $json"
        sleep 0.2
    done
}

# random_file FILE BYTES: BYTES pseudo-random bytes into FILE (AES-CTR of zeros, ~10x faster
# than /dev/urandom; random, so no two chunks deduplicate), hashed in the same pass; prints the
# SHA-256.
random_file() {
    if command -v openssl >/dev/null; then
        openssl enc -aes-128-ctr -nosalt -pass "pass:e2e$RANDOM$RANDOM" -pbkdf2 </dev/zero 2>/dev/null |
            head -c "$2" | tee "$1" | sha256sum | cut -d' ' -f1
    else
        head -c "$2" /dev/urandom | tee "$1" | sha256sum | cut -d' ' -f1
    fi
}

# get_sha256 KEY: GET KEY streamed into sha256sum, nothing stored; prints "STATUS SIZE SHA256".
get_sha256() {
    local got
    rm -f "$work/got.sha"
    got=$(curl -sS --max-time "${CURL_MAX_TIME:-30}" -o >(sha256sum | cut -d' ' -f1 >"$work/got.sha") \
        -w '%{http_code} %{size_download}' "$url/$1")
    for _ in $(seq 50); do [ -s "$work/got.sha" ] && break; sleep 0.1; done  # the process substitution
    echo "$got $(cat "$work/got.sha" 2>/dev/null)"
}

# ---- many objects over keep-alive connections ------------------------------------------------------
# Keys here use no character that needs percent-encoding. A key's files are named after it with
# every "/" made "+".
key_name() { echo "${1//\//+}"; }

# curl_config_run CONFIG...: runs each curl config file (-K) in parallel, each over its own
# keep-alive connection; its standard output goes to CONFIG.out, its standard error to CONFIG.err.
curl_config_run() {
    local config pids=()
    for config in "$@"; do
        c --max-time 600 -K "$config" >"$config.out" 2>"$config.err" &
        pids+=("$!")
    done
    wait "${pids[@]}"  # not a bare wait: the watchdog runs in the background too
}

# put_all LIST [PARALLEL]: a PUT for each line of LIST, "KEY<TAB>FILE[<TAB>HEADER...]" (the body
# from FILE, with those request headers; no quote or backslash in them), over PARALLEL (4)
# connections. LIST.codes gets "KEY<TAB>STATUS<TAB>ETAG" per key, sorted by key.
put_all() {
    local parallel=${2:-4} part
    rm -f "$1".part.*
    split -n "l/$parallel" "$1" "$1.part."
    for part in "$1".part.*; do
        awk -F '\t' -v u="$url" '{
            if (NR > 1) print "next"
            printf "url = \"%s/%s\"\nupload-file = \"%s\"\n", u, $1, $2
            for (i = 3; i <= NF; i++) printf "header = \"%s\"\n", $i
            printf "output = \"/dev/null\"\nwrite-out = \"%s\\t%%{http_code}\\t%%header{etag}\\n\"\n", $1
        }' "$part" >"$part.curl"
    done
    curl_config_run "$1".part.*.curl
    cat "$1".part.*.curl.out | LC_ALL=C sort >"$1.codes"
    rm -f "$1".part.*
}

# get_all KEYS OUT [PARALLEL]: a GET for each key of KEYS (one a line) over PARALLEL (4)
# connections, with no file per key (file creation and deletion are slow on some disks): OUT.bodies
# gets every body (error bodies too), one after the other in the order of KEYS; OUT.codes a
# "KEY<TAB>STATUS<TAB>SIZE" line per key in that order; OUT.headers a "KEY|name: value" line (name
# in lower case) per ETag, Content-Type, Content-Length, Last-Modified and x-amz-meta-* header of
# the responses, sorted.
get_all() {
    local parallel=${3:-4} part
    rm -f "$2".part.*
    split -n "l/$parallel" "$1" "$2.part."
    for part in "$2".part.*; do
        awk -v u="$url" '{
            if (NR > 1) print "next"
            printf "url = \"%s/%s\"\n", u, $1
            printf "write-out = \"%%{stderr}%s\\t%%{http_code}\\t%%{size_download}\\t%%{header_json}\\n\"\n", $1
        }' "$part" >"$part.curl"
    done
    curl_config_run "$2".part.*.curl
    cat "$2".part.*.curl.out >"$2.bodies"
    : >"$2.codes"
    # Each answer: KEY<TAB>STATUS<TAB>SIZE<TAB>{"etag":["\"...\""], then one header a line,
    # "name":["value"], up to the closing }. Other lines (curl's errors) are left out.
    # shellcheck disable=SC2016  # an awk program
    cat "$2".part.*.curl.err | awk -F '\t' -v codes="$2.codes" '
        /^[^\t"{}]+\t[0-9][0-9][0-9]\t[0-9]+\t\{/ {
            key = $1
            print key "\t" $2 "\t" $3 >codes
            $0 = substr($0, length($1 $2 $3) + 5)
        }
        match($0, /^"[^"]+":\["/) {
            name = substr($0, 2, RLENGTH - 5)
            value = substr($0, RLENGTH + 1)
            sub(/"\],?}?$/, "", value)
            gsub(/\\"/, "\"", value)
            gsub(/\\\\/, "\\", value)
            if (name ~ /^(etag|content-type|content-length|last-modified|x-amz-meta-.*)$/) print key "|" name ": " value
        }' | LC_ALL=C sort >"$2.headers"
    rm -f "$2".part.*
}

# same_bodies KEYS DIR OUT: true if the bodies get_all KEYS OUT received are, key by key, the
# files DIR/NAME (NAME: key_name), byte for byte: the same sizes, and the same bytes in all.
# Prints the first key that differs otherwise.
same_bodies() {
    local names sizes offset=0 key size got
    names=$(sed 's|/|+|g' "$1")
    sizes=$(cd "$2" && xargs -d '\n' stat -c '%s' <<<"$names" 2>/dev/null)
    if [ "$sizes" = "$(cut -f3 "$3.codes")" ] &&
        cmp -s <(cd "$2" && xargs -d '\n' cat <<<"$names") "$3.bodies"; then
        return 0
    fi
    while read -r key && IFS=$'\t' read -r _ _ got <&3; do
        size=$(stat -c %s "$2/$(key_name "$key")" 2>/dev/null || echo missing)
        if [ "$size" != "$got" ] || ! slice "$3.bodies" "$offset" "$got" | cmp -s - "$2/$(key_name "$key")"; then
            echo "$key"
            return 1
        fi
        offset=$((offset + got))
    done <"$1" 3<"$3.codes"
    echo "(no single key: $(wc -l <"$1") keys, $(wc -l <"$3.codes") answers)"
    return 1
}

# list_all FILE: every entry of the listing (GET /?max-keys=1000, page after page) into FILE, one
# {"key","size","etag","last_modified"} object a line, in key order.
list_all() {
    local query="max-keys=1000" after pages=0
    : >"$1"
    while :; do
        expect "list ?$query" 200 "$(http_code "$url/?$query")"
        grep -o '{"key":[^}]*}' "$work/body" >>"$1"
        grep -q '"is_truncated":true' "$work/body" || return 0
        after=$(sed -n 's/.*"next_start_after":"\([^"]*\)".*/\1/p' "$work/body")
        [ -n "$after" ] || fail "a truncated listing without next_start_after"
        query="max-keys=1000&start-after=$after"
        pages=$((pages + 1))
        [ "$pages" -le 1000 ] || fail "more than 1000 pages of listing"
    done
}

# chunk_copies N...: "COUNT NAME" per chunk file on the disks of those nodes (names are 64 hex
# digits): how many of them hold each chunk.
chunk_copies() {
    local n
    for n in "$@"; do
        find "$TOASTYFS_HOME/data/node$n/chunks" -type f 2>/dev/null | sed -n 's|.*/\([0-9a-f]\{64\}\)$|\1|p' | sort -u
    done | sort | uniq -c
}
