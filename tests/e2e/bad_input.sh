#!/usr/bin/env bash
# Malformed and hostile input, over bash /dev/tcp (no netcat, no python):
# - to the proxy: bad request line -> 400, HTTP/2 preface -> 505 (or 400) and close, PUT without
#   a length -> 411, Content-Length with Transfer-Encoding -> 400, 64 KiB of headers -> 431, a URI
#   over 8 KiB -> 414, an object over the maximum -> 413, unsupported methods -> 405, rounds of
#   64 random bytes; 300 requests on one keep-alive connection and 300 connections in a row;
# - 1000 idle connections held open while a normal PUT and GET still work;
# - garbage, zero-filled and oversized frames to every node's metadata and chunk ports;
# and afterwards the proxy and all three nodes still run and serve.
#
#   bad_input.sh path/to/cluster.sh      (TOASTYFS_BUILD: the build directory)
source "$(dirname "$0")/lib.sh"
watchdog 150

start_cluster

# raw PORT FILE [SECONDS]: sends FILE's bytes on a new connection, then reads the answer until the
# server closes or SECONDS (default 5) pass. Sets raw_status (the status code, or "none"),
# raw_closed (1 if the server closed the connection) and $work/raw (the answer).
raw() {
    local rc
    : >"$work/raw"
    rc=$( (
        trap '' PIPE  # the server may answer and close before all of FILE is written
        exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 99
        cat "$2" >&3 2>/dev/null
        timeout "${3:-5}" cat <&3 >"$work/raw"
        echo $?
    ) 2>/dev/null)
    [ "$rc" != 99 ] && [ -n "$rc" ] || fail "cannot connect to port $1"
    # Closed: end of stream, or a reset (closing with unread request bytes sends RST); 124: timeout.
    raw_closed=$([ "$rc" != 124 ] && echo 1 || echo 0)
    raw_status=$(head -n 1 "$work/raw" | sed -n 's|^HTTP/1\.[01] \([0-9][0-9][0-9]\) .*|\1|p')
    raw_status=${raw_status:-none}
}
# send FORMAT: printf FORMAT into $work/req (escapes such as \r\n interpreted).
send() { printf "$1" >"$work/req"; }
# expect_close WHAT STATUS...: raw_status is one of STATUS, and the server closed the connection.
expect_close() {
    local what=$1 s
    shift
    for s in "$@"; do
        if [ "$raw_status" = "$s" ]; then
            [ "$raw_closed" = 1 ] || fail "$what: answered $raw_status but kept the connection open"
            return 0
        fi
    done
    fail "$what: expected $*, got $raw_status ($(head -c 200 "$work/raw" | tr -d '\r' | head -n 3 | tr '\n' '|'))"
}

p=$proxy_port
send 'GARBAGE\r\n\r\n';                                      raw $p "$work/req"; expect_close "bad request line" 400
send 'GET / HTTP/1.1 extra\r\nHost: a\r\n\r\n';              raw $p "$work/req"; expect_close "request line with 4 parts" 400
send 'GET /a b HTTP/1.1\r\nHost: a\r\n\r\n';                 raw $p "$work/req"; expect_close "space in the target" 400
send 'GET /x HTTP/1.1\nHost: a\n\n';                         raw $p "$work/req"; expect_close "bare LF" 400
send 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n';                     raw $p "$work/req"; expect_close "HTTP/2 preface" 505 400
send 'GET /x HTTP/3.7\r\nHost: a\r\n\r\n';                   raw $p "$work/req"; expect_close "HTTP/3.7" 505 400
# No length means no body (RFC 9112 6.3), so the connection may stay: ask for the close.
send 'PUT /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n'; raw $p "$work/req"; expect_close "PUT without a length" 411
send 'PUT /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n'
raw $p "$work/req"; expect_close "Content-Length and Transfer-Encoding" 400
send 'PUT /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd'
raw $p "$work/req"; expect_close "two different Content-Lengths" 400
send 'PUT /x HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n'; raw $p "$work/req"; expect_close "negative Content-Length" 400
send 'PUT /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n'
raw $p "$work/req"; expect_close "bad chunk size" 400
send 'PUT /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n'; raw $p "$work/req"
expect_close "Transfer-Encoding gzip" 400 501
send 'GET /x HTTP/1.1\r\nHost: a\r\n: empty name\r\n\r\n';    raw $p "$work/req"; expect_close "empty header name" 400
send 'GET /x HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\n';     raw $p "$work/req"; expect_close "space in a header name" 400
send 'GET /x HTTP/1.1\r\n\r\n';                              raw $p "$work/req"; expect_close "HTTP/1.1 without Host" 400
# 64 KiB of headers: one huge field, then many small ones.
{ printf 'GET /x HTTP/1.1\r\nHost: a\r\nX-Big: '; head -c 65536 /dev/zero | tr '\0' 'a'; printf '\r\n\r\n'; } >"$work/req"
raw $p "$work/req"; expect_close "one 64 KiB header" 431
{ printf 'GET /x HTTP/1.1\r\nHost: a\r\n'; for i in $(seq 2048); do printf 'X-Header-%d: 0123456789abcdef\r\n' "$i"; done; printf '\r\n'; } >"$work/req"
raw $p "$work/req"; expect_close "2048 headers (64 KiB)" 431
{ printf 'GET /'; head -c 9000 /dev/zero | tr '\0' 'u'; printf ' HTTP/1.1\r\nHost: a\r\n\r\n'; } >"$work/req"
raw $p "$work/req"; expect_close "URI of 9000 bytes" 414
{ printf 'GET /?prefix='; head -c 9000 /dev/zero | tr '\0' 'q'; printf ' HTTP/1.1\r\nHost: a\r\n\r\n'; } >"$work/req"
raw $p "$work/req"; expect_close "query of 9000 bytes" 414
# An object over the maximum size: refused before any body byte is read (or drained).
send 'PUT /huge HTTP/1.1\r\nHost: a\r\nContent-Length: 6442450944\r\nExpect: 100-continue\r\n\r\n'
raw $p "$work/req"; [ "$raw_status" = 413 ] || fail "PUT of 6 GiB: expected 413, got $raw_status"
grep -q '^HTTP/1.1 100' "$work/raw" && fail "PUT of 6 GiB: 100 Continue was sent before the 413"
# Unsupported methods: 405 with Allow, and the connection stays usable.
for m in PATCH POST OPTIONS BREW; do
    send "$m /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    raw $p "$work/req"
    [ "$raw_status" = 405 ] || [ "$raw_status" = 501 ] || fail "$m: expected 405 (or 501), got $raw_status"
    [ "$raw_status" = 501 ] || grep -qi '^Allow: ' "$work/raw" || fail "$m: 405 without Allow"
done
expect "PATCH via curl" 405 "$(http_code -X PATCH --data-binary x "$url/x")"
expect "POST to the root" 405 "$(http_code -X POST --data-binary x "$url/")"
expect "DELETE the root" 405 "$(http_code -X DELETE "$url/")"
# Random garbage: 64 bytes, alone (a head that never completes: answered or timed out, never a
# crash) and followed by an empty line (a complete, malformed head: 4xx or 5xx).
for round in $(seq 20); do
    head -c 64 /dev/urandom >"$work/req"
    raw $p "$work/req" 0.3
    case "$raw_status" in none | [45][0-9][0-9]) ;; *) fail "64 random bytes (round $round): answered $raw_status" ;; esac
    printf '\r\n\r\n' >>"$work/req"
    raw $p "$work/req" 3
    case "$raw_status" in [45][0-9][0-9]) ;; *) fail "64 random bytes + CRLFCRLF (round $round): answered $raw_status" ;; esac
done
all_alive
say "malformed requests answered"

# ---- many requests and connections ----------------------------------------------------------------
expect "PUT ka" 200 "$(http_code -X PUT --data-binary keepalive "$url/ka")"
out=$(for i in $(seq 300); do printf 'url = "%s"\noutput = "/dev/null"\n' "$url/ka"; done |
    c -w '%{http_code} %{num_connects}\n' -K - | sort | uniq -c | awk '{print $1 "x" $2 "/" $3}' | tr '\n' ' ')
expect "300 GETs on one keep-alive connection" "299x200/0 1x200/1 " "$out"
ok=0
for i in $(seq 300); do
    [ "$(c -o /dev/null -w '%{http_code}' "$url/ka")" = 200 ] && ok=$((ok + 1))
done
expect "300 GETs on 300 connections" 300 "$ok"

# Two pipelined requests in one write: both answered, in order.
send 'GET /ka HTTP/1.1\r\nHost: a\r\n\r\nHEAD /ka HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n'
raw $p "$work/req"
expect "pipelined requests" "HTTP/1.1 200|HTTP/1.1 200|" "$(grep -ao 'HTTP/1\.1 [0-9]*' "$work/raw" | tr '\n' '|')"
grep -q $'^keepaliveHTTP/1.1 200 OK\r$' "$work/raw" || fail "pipelined requests: the first body is not followed by the second response"

# ---- transfers cut off by the client: nothing stored, nothing left behind ---------------------------
proxy_field() { json_field "$(status_json)" "$1"; }
head -c 30000000 /dev/urandom >"$work/cut"
# wait_proxy_field NAME VALUE WHAT: until /?status shows NAME = VALUE (the transfers below are
# rate-limited to last far longer than this can take, so a loaded machine only makes it wait).
wait_proxy_field() {
    local deadline=$((SECONDS + 20))
    until [ "$(proxy_field "$1")" = "$2" ]; do
        [ $SECONDS -lt $deadline ] || fail "$3: $1 is '$(proxy_field "$1")' after 20 s, expected $2"
        sleep 0.1
    done
}
curl -s -o /dev/null --limit-rate 1M -T "$work/cut" "$url/cut" &
cut_pid=$!
wait_proxy_field uploads 1 "uploads while a PUT streams"
kill "$cut_pid"
wait "$cut_pid" 2>/dev/null
expect "PUT 30 MB" 200 "$(http_code -T "$work/cut" "$url/whole")"
curl -s -o /dev/null --limit-rate 1M "$url/whole" &
cut_pid=$!
wait_proxy_field reads 1 "reads while a GET streams"
kill "$cut_pid"
wait "$cut_pid" 2>/dev/null
deadline=$((SECONDS + 10))
until [ "$(proxy_field uploads)/$(proxy_field reads)/$(proxy_field buffer_bytes)" = 0/0/0 ]; do
    [ $SECONDS -lt $deadline ] || fail "after cut-off transfers: uploads/reads/buffer_bytes $(proxy_field uploads)/$(proxy_field reads)/$(proxy_field buffer_bytes)"
    sleep 0.2
done
expect "GET of the cut-off PUT" 404 "$(http_code "$url/cut")"
expect "GET whole" 200 "$(http_code "$url/whole")"
cmp -s "$work/cut" "$work/body" || fail "GET whole after a cut-off GET: wrong body"
rm -f "$work/cut"
say "cut-off transfers left nothing behind"

# ---- 1000 idle connections ------------------------------------------------------------------------
ulimit -n 4096 2>/dev/null || ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -ge 1100 ] || fail "cannot raise the descriptor limit to hold 1000 connections (ulimit -n $(ulimit -n))"
idle=()
for i in $(seq 1000); do
    exec {fd}<>"/dev/tcp/127.0.0.1/$p" || fail "idle connection $i refused"
    idle+=("$fd")
done
say "1000 idle connections open"
printf 'idle test %s' "$RANDOM" >"$work/v"
expect "PUT with 1000 idle connections" 200 "$(http_code -T "$work/v" "$url/idle")"
expect "GET with 1000 idle connections" 200 "$(http_code "$url/idle")"
cmp -s "$work/v" "$work/body" || fail "GET with 1000 idle connections: wrong body"
expect "status with 1000 idle connections" 200 "$(http_code "$url/?status")"
# The idle connections are still open and usable: a request on the first and the last.
for fd in "${idle[0]}" "${idle[999]}"; do
    printf 'GET /idle HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n' >&"$fd" || fail "idle connection $fd was closed"
    answer=$(timeout 5 cat <&"$fd" | tr -d '\r' | head -n 1)
    expect "request on an idle connection" "HTTP/1.1 200 OK" "$answer"
done
for fd in "${idle[@]}"; do exec {fd}>&-; done
all_alive
say "1000 idle connections closed"

# ---- garbage to the nodes' metadata and chunk ports -----------------------------------------------
{ head -c 64 /dev/urandom; } >"$work/g.random"
head -c 80 /dev/zero >"$work/g.zero80"                       # a zero header: length 0, checksum 0
head -c 96 /dev/zero >"$work/g.zero96"
head -c 4096 /dev/zero | tr '\0' '\377' >"$work/g.ff"         # every length field at its maximum
{ printf 'TFSC\001\000\001\000'; head -c 88 /dev/zero | tr '\0' '\377'; } >"$work/g.magic"  # chunk magic, huge body
printf 'GET / HTTP/1.1\r\nHost: a\r\n\r\n' >"$work/g.http"
for n in 1 2 3; do
    for port in $((port_base + n)) $((port_base + 100 + n)); do
        for g in random zero80 zero96 ff magic http; do
            raw "$port" "$work/g.$g" 0.3
            [ "$raw_status" = none ] || fail "port $port answered garbage ($g) with HTTP $raw_status"
        done
        # A connection that sends half a header and stays silent.
        exec {fd}<>"/dev/tcp/127.0.0.1/$port" || fail "cannot connect to node port $port"
        head -c 40 /dev/urandom >&"$fd"
        idle+=("$fd")
    done
done
sleep 1
all_alive
for fd in "${idle[@]:1000}"; do exec {fd}>&-; done

# ---- everything still serves ----------------------------------------------------------------------
head -c 300000 /dev/urandom >"$work/after"  # over the inline size: chunks go to the nodes
expect "PUT after the garbage" 200 "$(http_code -T "$work/after" "$url/after")"
expect "GET after the garbage" 200 "$(http_code "$url/after")"
cmp -s "$work/after" "$work/body" || fail "GET after the garbage: wrong body"
expect "GET ka" 200 "$(http_code "$url/ka")"
expect "ka body" keepalive "$(cat "$work/body")"
json=$(status_json)
for n in 1 2 3; do
    expect "node $n status" normal "$(json_field "$(json_node "$json" "$n")" status)"
done
expect "metadata replicas connected" 3 "$(json_field "$json" replicas_connected)"
all_alive
say "ok"
