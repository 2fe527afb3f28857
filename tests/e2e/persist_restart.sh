#!/usr/bin/env bash
# Everything acknowledged survives `cluster.sh stop` and `cluster.sh start` (the nodes are
# persistent): the seed's transcript object, a 1 GiB object (as in big_object.sh: a pseudo-random
# source in $TMPDIR streamed up with curl -T, checked by SHA-256), and 10,000 small objects of
# distinct content (every 50th over --inline-max, so in chunks; a third with a Content-Type, a fifth
# with x-amz-meta-* headers), PUT over 4 keep-alive connections. Before the stop every object is
# read back and its ETag, Content-Type, Content-Length, Last-Modified and x-amz-meta-* recorded,
# as is the whole listing. After the start, with every node reporting its journal loaded (none
# recovering, none formatted anew): every object reads back byte for byte with the same headers,
# the listing is the same, and the counts match (checked == written > 0).
#
#   persist_restart.sh path/to/cluster.sh      (TOASTYFS_BUILD: the build directory)
# E2E_BIG_BYTES overrides the big object's size (default 1 GiB); E2E_SMALL_OBJECTS the number of
# small ones (default 10,000).
bytes=${E2E_BIG_BYTES:-$((1 << 30))}
small=${E2E_SMALL_OBJECTS:-10000}
# The big source and two replicas of it need ~3x its size; the small ones are ~12 MB, in three
# copies (sources, two read-backs) on top of their replicas.
room_needed_kb=$((bytes * 4 / 1024 + 200 * 1024))
source "$(dirname "$0")/lib.sh"
watchdog 540

start_cluster
CURL_MAX_TIME=300  # for every curl of this test: 1 GiB at a few MB/s on a loaded machine

# ---- the seed's transcript ------------------------------------------------------------------------
out=$(curl -sS --max-time 10 -X PUT "$url/first_object" -d "I'm the first object") || fail "PUT first_object failed"
expect "PUT first_object body" "" "$out"
expect "GET first_object" "I'm the first object" "$(curl -sS --max-time 10 -X GET "$url/first_object")"

# ---- 1 GiB ------------------------------------------------------------------------------------------
src=$work/big.bin
started=$(now_ms)
src_sha=$(random_file "$src" "$bytes")
expect "source size" "$bytes" "$(stat -c %s "$src")"
big_etag="\"$(md5sum <"$src" | cut -d' ' -f1)\""
say "source: $bytes bytes in $(($(now_ms) - started)) ms, sha256 $src_sha"
started=$(now_ms)
expect "PUT big" 200 "$(http_code -T "$src" "$url/big")"
expect "PUT big ETag" "$big_etag" "$(header ETag)"
rm -f "$src"  # from here on its SHA-256 and MD5 stand for it
say "PUT big: $(($(now_ms) - started)) ms"

# ---- 10,000 small objects ---------------------------------------------------------------------------
# Distinct content: the key, then a slice of a random pool (20 to 2,000 bytes; every 50th object
# 6,000 to 20,000, over the 4,096 bytes stored inline).
mkdir -p "$work/values"
head -c 600000 /dev/urandom | base64 -w 0 >"$work/pool"
started=$(now_ms)
awk -v n="$small" -v d="$work/values" -v seed="$RANDOM" '
    BEGIN {
        getline pool <ARGV[1]
        srand(seed)
        for (i = 0; i < n; i++) {
            key = sprintf("small/k%05d", i)
            size = i % 50 == 0 ? 6000 + int(rand() * 14000) : 20 + int(rand() * 1980)
            body = key " " substr(pool, 1 + int(rand() * (length(pool) - size)), size)
            name = key
            gsub("/", "+", name)
            file = d "/" name
            printf "%s", body >file
            close(file)
            line = key "\t" file
            if (i % 3 == 0) line = line "\tContent-Type: text/x-e2e-" i "; charset=utf-8"
            if (i % 5 == 0) line = line "\tx-amz-meta-index: " i "\tX-Amz-Meta-Owner: writer " i % 7
            print line
        }
    }' "$work/pool" >"$work/small.list"
cut -f1 "$work/small.list" >"$work/small.keys"
expect "small objects generated" "$small" "$(find "$work/values" -type f | wc -l)"
expect "distinct contents" "$small" "$(find "$work/values" -type f -exec md5sum {} + | cut -d' ' -f1 | sort -u | wc -l)"
# The headers every object must carry: its ETag (the MD5 of its content), its Content-Type (the
# default when none was sent) and its metadata (names in lower case).
(cd "$work/values" && xargs -d '\n' md5sum <<<"$(sed 's|/|+|g' "$work/small.keys")") |
    awk '{ key = $2; gsub(/\+/, "/", key); print key "|etag: \"" $1 "\"" }' >"$work/expected.headers"
awk -F '\t' '{
    type = "application/octet-stream"
    for (i = 3; i <= NF; i++) {
        c = index($i, ":")
        name = tolower(substr($i, 1, c - 1))
        if (name == "content-type") type = substr($i, c + 2)
        else print $1 "|" name ": " substr($i, c + 2)
    }
    print $1 "|content-type: " type
}' "$work/small.list" >>"$work/expected.headers"
LC_ALL=C sort -o "$work/expected.headers" "$work/expected.headers"
say "generated $small small objects in $(($(now_ms) - started)) ms"

started=$(now_ms)
put_all "$work/small.list"
put_ms=$(($(now_ms) - started))
expect "PUTs answered" "$small" "$(wc -l <"$work/small.list.codes")"
acked=$(awk -F '\t' '$2 == 200' "$work/small.list.codes" | wc -l)
expect "PUTs answered 200 (codes: $(cut -f2 "$work/small.list.codes" | sort | uniq -c | tr -s ' \n' ' '))" "$small" "$acked"
# The ETags the PUTs answered are the MD5s of the contents.
cmp -s <(awk -F '\t' '{print $1 "|etag: " $3}' "$work/small.list.codes") <(grep '|etag: ' "$work/expected.headers") ||
    fail "PUT ETags differ from the contents' MD5s"
say "PUT $small small objects: $put_ms ms ($((small * 1000 / (put_ms > 0 ? put_ms : 1))) per second)"

# ---- before the stop: read everything back, record headers and the listing --------------------------
# check_all WHAT OUT: every small object reads back (200) byte for byte (get_all into OUT), with
# the expected headers; the seed object and the big one too. Leaves the headers in OUT.headers
# and the big one's in OUT.big.headers.
check_all() {
    local started got
    started=$(now_ms)
    get_all "$work/small.keys" "$2"
    expect "GETs answered ($1)" "$small" "$(wc -l <"$2.codes")"
    expect "GETs answered 200 ($1)" "$small" "$(awk -F '\t' '$2 == 200' "$2.codes" | wc -l)"
    got=$(same_bodies "$work/small.keys" "$work/values" "$2") || fail "$1: $got reads back different content"
    rm -f "$2.bodies"
    cmp -s "$work/expected.headers" <(grep -v '|content-length: \||last-modified: ' "$2.headers") ||
        fail "$1: headers differ from those sent: $(diff "$work/expected.headers" <(grep -v '|content-length: \||last-modified: ' "$2.headers") | head -n 6)"
    expect "Content-Length headers ($1)" "$small" "$(grep -c '|content-length: ' "$2.headers")"
    expect "Last-Modified headers ($1)" "$small" "$(grep -c '|last-modified: ' "$2.headers")"
    checked=$(awk -F '\t' '$2 == 200' "$2.codes" | wc -l)
    say "$1: $checked small objects read back byte for byte with their headers in $(($(now_ms) - started)) ms"

    expect "GET first_object ($1)" "I'm the first object" "$(curl -sS --max-time 10 "$url/first_object")"
    expect "HEAD big ($1)" 200 "$(http_code -I "$url/big")"
    expect "big Content-Length ($1)" "$bytes" "$(header Content-Length)"
    expect "big ETag ($1)" "$big_etag" "$(header ETag)"
    tr -d '\r' <"$work/headers" | grep -i '^\(etag\|content-type\|content-length\|last-modified\):' >"$2.big.headers"
    started=$(now_ms)
    expect "GET big: status, size, sha256 ($1)" "200 $bytes $src_sha" "$(get_sha256 big)"
    say "$1: GET big in $(($(now_ms) - started)) ms, sha256 as sent"
}
check_all "before the stop" "$work/before"
list_all "$work/before.list"
expect "listed keys before the stop" $((small + 2)) "$(wc -l <"$work/before.list")"
cmp -s <(sed 's/^{"key":"\([^"]*\)".*/\1/' "$work/before.list") <(LC_ALL=C sort "$work/small.keys" - <<<$'big\nfirst_object') ||
    fail "the listing does not hold exactly the keys written"
say "listing: $(wc -l <"$work/before.list") keys; status: $(status_json | grep -o '"nodes":.*')"

# ---- stop, start ------------------------------------------------------------------------------------
out=$(cluster stop) || fail "cluster.sh stop failed: $out"
for name in proxy node1 node2 node3; do
    alive "$name" && fail "$name still runs after cluster.sh stop"
done
for n in 1 2 3; do
    [ -s "$TOASTYFS_HOME/data/node$n/vsr/superblock" ] || fail "node $n has no superblock after the stop"
done
declare -A log_lines
for n in 1 2 3; do log_lines[$n]=$(wc -l <"$TOASTYFS_HOME/logs/node$n.log"); done
started=$(now_ms)
out=$(cluster start) || fail "cluster.sh start after the stop failed: $out"
echo "$out"
say "restarted in $(($(now_ms) - started)) ms"
grep -q -- --recovering <<<"$out" && fail "cluster.sh start passed --recovering to a node that kept its disk"
for n in 1 2 3; do
    line=$(tail -n +"$((log_lines[$n] + 1))" "$TOASTYFS_HOME/logs/node$n.log" | grep 'metadata: journal ' | head -n 1)
    echo "  node $n: ${line#*INFO  }"
    [[ "$line" == *"metadata: journal loaded;"* ]] || fail "node $n did not load its journal at the start: '$line'"
done

# ---- after the start: the same objects, headers and listing --------------------------------------
check_all "after the restart" "$work/after"
cmp -s "$work/before.headers" "$work/after.headers" ||
    fail "headers changed across the restart: $(diff "$work/before.headers" "$work/after.headers" | head -n 6)"
cmp -s "$work/before.big.headers" "$work/after.big.headers" ||
    fail "the big object's headers changed across the restart: $(diff "$work/before.big.headers" "$work/after.big.headers")"
list_all "$work/after.list"
cmp -s "$work/before.list" "$work/after.list" ||
    fail "the listing changed across the restart: $(diff "$work/before.list" "$work/after.list" | head -n 6)"
expect "small objects checked after the restart" "$acked" "$checked"
[ "$checked" -gt 0 ] || fail "no object checked"

printf 'written after the restart' >"$work/v"
expect "PUT after the restart" 200 "$(http_code -T "$work/v" "$url/after-restart")"
expect "DELETE big" 204 "$(http_code -X DELETE "$url/big")"
all_alive
say "all $((checked + 2)) objects written ($checked small, the seed's, 1 of $bytes bytes) survived stop and start with their ETags, headers and listing"
say "ok"
