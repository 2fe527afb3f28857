#!/usr/bin/env bash
# Range and conditional requests on objects of many chunks (--chunk-size 65536):
# - 206 + Content-Range for a-b, a- and -n, byte-exact against the source, across chunk
#   boundaries; 416 + "Content-Range: bytes */size" beyond the end; malformed ranges are ignored;
# - GET If-Match / If-None-Match (412, 304), PUT If-None-Match: * (create-only) and If-Match
#   (right / wrong ETag), DELETE If-Match;
# - HEAD: the headers of GET and no body; Content-Type and x-amz-meta-* kept.
#
#   range_conditional.sh path/to/cluster.sh      (TOASTYFS_BUILD: the build directory)
source "$(dirname "$0")/lib.sh"
watchdog 90

chunk=65536
export TOASTYFS_PROXY_ARGS="--chunk-size $chunk"
start_cluster

size=$((chunk * 7 + 12345))  # 8 chunks, the last one partial
src=$work/src.bin
head -c "$size" /dev/urandom >"$src"
etag="\"$(md5sum "$src" | cut -d' ' -f1)\""

code=$(http_code -T "$src" -H 'Content-Type: image/x-test; charset=binary' -H 'x-amz-meta-Color: blue' \
    -H 'X-Amz-Meta-Owner: e2e test' "$url/multi")
expect "PUT multi" 200 "$code"
expect "PUT ETag" "$etag" "$(header ETag)"

# ---- whole object, HEAD, metadata -------------------------------------------------------------
code=$(http_code "$url/multi")
expect "GET multi" 200 "$code"
cmp -s "$src" "$work/body" || fail "GET multi: body differs from the source"
expect "Content-Length" "$size" "$(header Content-Length)"
expect "Content-Type" "image/x-test; charset=binary" "$(header Content-Type)"
expect "x-amz-meta-color" "blue" "$(header x-amz-meta-color)"
expect "x-amz-meta-owner" "e2e test" "$(header x-amz-meta-owner)"
expect "Accept-Ranges" "bytes" "$(header Accept-Ranges)"
[ -n "$(header Last-Modified)" ] || fail "no Last-Modified"
get_headers=$(tr -d '\r' <"$work/headers" | grep -iv '^date:' | sort)

code=$(http_code -I "$url/multi")
expect "HEAD multi" 200 "$code"
head_headers=$(tr -d '\r' <"$work/headers" | grep -iv '^date:' | sort)
expect "HEAD headers = GET headers" "$get_headers" "$head_headers"
# HEAD on a raw connection: the head and nothing after it, although Content-Length is non-zero.
raw=$work/raw_head
exec 3<>"/dev/tcp/127.0.0.1/$proxy_port" || fail "cannot connect to the proxy"
printf 'HEAD /multi HTTP/1.1\r\nHost: e2e\r\nConnection: close\r\n\r\n' >&3
timeout 10 cat <&3 >"$raw"
exec 3>&-
grep -q "^HTTP/1.1 200 " "$raw" || fail "raw HEAD: $(head -n 1 "$raw")"
grep -qi "^Content-Length: $size"$'\r'"\$" "$raw" || fail "raw HEAD: no Content-Length: $size"
headlen=$(sed -n '1,/^\r$/p' "$raw" | wc -c)  # through the empty line that ends the head
expect "raw HEAD: bytes after the head" 0 "$(($(wc -c <"$raw") - headlen))"

code=$(http_code -T /dev/null "$url/plain")
expect "PUT without Content-Type" 200 "$code"
http_code -I "$url/plain" >/dev/null
expect "default Content-Type" "application/octet-stream" "$(header Content-Type)"
expect "empty Content-Length" 0 "$(header Content-Length)"

# ---- ranges ---------------------------------------------------------------------------------------
# check_range RANGE FIRST LAST: 206, Content-Range bytes FIRST-LAST/size, the bytes of the source.
check_range() {
    local code
    code=$(http_code -H "Range: $1" "$url/multi")
    expect "Range $1: status" 206 "$code"
    expect "Range $1: Content-Range" "bytes $2-$3/$size" "$(header Content-Range)"
    expect "Range $1: Content-Length" "$(($3 - $2 + 1))" "$(header Content-Length)"
    slice "$src" "$2" "$(($3 - $2 + 1))" | cmp -s - "$work/body" ||
        fail "Range $1: the body differs from bytes $2-$3 of the source"
}
check_range "bytes=0-0" 0 0
check_range "bytes=0-99" 0 99
check_range "bytes=$((chunk - 1))-$chunk" $((chunk - 1)) $chunk                 # one byte each side
check_range "bytes=$((chunk - 10))-$((3 * chunk + 9))" $((chunk - 10)) $((3 * chunk + 9))  # 4 chunks
check_range "bytes=$chunk-$((2 * chunk - 1))" $chunk $((2 * chunk - 1))          # exactly chunk 1
check_range "bytes=$((2 * chunk + 5))-" $((2 * chunk + 5)) $((size - 1))          # a-
check_range "bytes=-$((chunk + 100))" $((size - chunk - 100)) $((size - 1))      # -n, 2 chunks
check_range "bytes=-1" $((size - 1)) $((size - 1))
check_range "bytes=$((size - 10))-$((size + 5000))" $((size - 10)) $((size - 1)) # clamped
check_range "bytes=-$((size * 2))" 0 $((size - 1))                               # the whole

for r in "bytes=$size-" "bytes=$((size + 1))-$((size + 10))" "bytes=-0"; do
    code=$(http_code -H "Range: $r" "$url/multi")
    expect "Range $r: status" 416 "$code"
    expect "Range $r: Content-Range" "bytes */$size" "$(header Content-Range)"
done
# Malformed or multiple ranges are ignored: the whole object, 200.
for r in "bytes=abc" "bytes=5-3" "items=0-1"; do
    code=$(http_code -H "Range: $r" "$url/multi")
    expect "Range $r: status" 200 "$code"
    cmp -s "$src" "$work/body" || fail "Range $r: the body is not the whole object"
done
# A range on a small (inline) object.
printf 'hello, ranges' >"$work/small"
expect "PUT small" 200 "$(http_code -T "$work/small" "$url/small")"
expect "small range" 206 "$(http_code -H 'Range: bytes=7-12' "$url/small")"
expect "small range body" "ranges" "$(cat "$work/body")"
expect "small range Content-Range" "bytes 7-12/13" "$(header Content-Range)"
expect "empty object range" 416 "$(http_code -H 'Range: bytes=0-' "$url/plain")"
expect "empty object Content-Range" "bytes */0" "$(header Content-Range)"

# ---- conditional GET ------------------------------------------------------------------------------
code=$(http_code -H "If-None-Match: $etag" "$url/multi")
expect "GET If-None-Match current" 304 "$code"
expect "304 body" 0 "$(wc -c <"$work/body")"
expect "304 ETag" "$etag" "$(header ETag)"
expect "GET If-None-Match *" 304 "$(http_code -H 'If-None-Match: *' "$url/multi")"
expect "GET If-None-Match other" 200 "$(http_code -H 'If-None-Match: "0123456789abcdef0123456789abcdef"' "$url/multi")"
cmp -s "$src" "$work/body" || fail "GET If-None-Match other: body differs"
expect "GET If-Match current" 200 "$(http_code -H "If-Match: $etag" "$url/multi")"
cmp -s "$src" "$work/body" || fail "GET If-Match current: body differs"
expect "GET If-Match list" 200 "$(http_code -H "If-Match: \"ffff\", $etag" "$url/multi")"
expect "GET If-Match *" 200 "$(http_code -H 'If-Match: *' "$url/multi")"
expect "GET If-Match other" 412 "$(http_code -H 'If-Match: "0123456789abcdef0123456789abcdef"' "$url/multi")"
expect "GET If-Match weak" 412 "$(http_code -H "If-Match: W/$etag" "$url/multi")"
expect "GET If-Match absent" 412 "$(http_code -H "If-Match: $etag" "$url/absent")"
expect "GET absent" 404 "$(http_code "$url/absent")"
expect "GET If-Match + Range" 206 "$(http_code -H "If-Match: $etag" -H 'Range: bytes=10-19' "$url/multi")"

# ---- conditional PUT ------------------------------------------------------------------------------
printf 'first' >"$work/v1"
printf 'second' >"$work/v2"
printf 'third' >"$work/v3"
e1="\"$(md5sum <"$work/v1" | cut -d' ' -f1)\""
e2="\"$(md5sum <"$work/v2" | cut -d' ' -f1)\""
expect "PUT If-None-Match * (new)" 200 "$(http_code -T "$work/v1" -H 'If-None-Match: *' "$url/cond")"
expect "PUT If-None-Match * (exists)" 412 "$(http_code -T "$work/v2" -H 'If-None-Match: *' "$url/cond")"
expect "GET after refused create" 200 "$(http_code "$url/cond")"
expect "value after refused create" first "$(cat "$work/body")"
expect "PUT If-Match wrong" 412 "$(http_code -T "$work/v2" -H "If-Match: $e2" "$url/cond")"
expect "value after wrong If-Match" first "$(c "$url/cond")"
expect "PUT If-Match right" 200 "$(http_code -T "$work/v2" -H "If-Match: $e1" "$url/cond")"
expect "PUT If-Match right: ETag" "$e2" "$(header ETag)"
expect "value after right If-Match" second "$(c "$url/cond")"
expect "PUT If-Match stale" 412 "$(http_code -T "$work/v3" -H "If-Match: $e1" "$url/cond")"
expect "PUT If-Match absent" 412 "$(http_code -T "$work/v3" -H "If-Match: $e1" "$url/cond-absent")"
expect "GET cond-absent" 404 "$(http_code "$url/cond-absent")"
expect "PUT If-None-Match old tag" 200 "$(http_code -T "$work/v3" -H "If-None-Match: $e1" "$url/cond")"
expect "value after If-None-Match old" third "$(c "$url/cond")"

# Conditions the proxy evaluates after a lookup (not one strong tag of ours): If-Match: *, lists,
# weak tags, tags that are not ours, both headers at once.
expect "PUT If-Match * (exists)" 200 "$(http_code -T "$work/v1" -H 'If-Match: *' "$url/cond")"
expect "value after If-Match *" first "$(c "$url/cond")"
expect "PUT If-Match * (absent)" 412 "$(http_code -T "$work/v1" -H 'If-Match: *' "$url/cond-absent")"
expect "PUT If-Match list" 200 "$(http_code -T "$work/v2" -H "If-Match: \"nope\", $e1" "$url/cond")"
expect "value after If-Match list" second "$(c "$url/cond")"
expect "PUT If-Match weak" 412 "$(http_code -T "$work/v1" -H "If-Match: W/$e2" "$url/cond")"
expect "PUT If-None-Match foreign tag" 200 "$(http_code -T "$work/v3" -H 'If-None-Match: "not-ours"' "$url/cond")"
expect "value after If-None-Match foreign" third "$(c "$url/cond")"
expect "PUT If-Match + If-None-Match *" 412 "$(http_code -T "$work/v1" -H "If-Match: $e1" -H 'If-None-Match: *' "$url/cond")"
expect "PUT malformed If-Match" 400 "$(http_code -T "$work/v1" -H 'If-Match: no-quotes' "$url/cond")"
expect "value after refused PUTs" third "$(c "$url/cond")"

# ---- conditional DELETE ---------------------------------------------------------------------------
e3="\"$(md5sum <"$work/v3" | cut -d' ' -f1)\""
expect "DELETE If-Match wrong" 412 "$(http_code -X DELETE -H "If-Match: $e1" "$url/cond")"
expect "value after refused DELETE" third "$(c "$url/cond")"
expect "DELETE If-Match right" 204 "$(http_code -X DELETE -H "If-Match: $e3" "$url/cond")"
expect "GET deleted" 404 "$(http_code "$url/cond")"
expect "DELETE deleted" 404 "$(http_code -X DELETE "$url/cond")"
expect "DELETE If-Match * absent" 412 "$(http_code -X DELETE -H 'If-Match: *' "$url/cond")"
expect "DELETE If-Match absent" 412 "$(http_code -X DELETE -H "If-Match: $e3" "$url/cond")"
expect "DELETE multi" 204 "$(http_code -X DELETE "$url/multi")"
expect "GET multi deleted" 404 "$(http_code "$url/multi")"
expect "HEAD deleted" 404 "$(http_code -I "$url/multi")"

all_alive
say "ok"
