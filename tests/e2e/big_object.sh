#!/usr/bin/env bash
# A 1 GiB object round trip: streamed up with curl -T (curl reads the file as it sends; it does
# not buffer it like --data-binary), streamed down into sha256sum, compared with the source's
# SHA-256. Prints MB/s each way and the peak RSS (VmHWM) of the proxy and of each node, sampled
# during the transfers: informational, never asserted.
#
#   big_object.sh path/to/cluster.sh      (TOASTYFS_BUILD: the build directory)
# E2E_BIG_BYTES overrides the size (default 1 GiB).
bytes=${E2E_BIG_BYTES:-$((1 << 30))}
# The source and two replicas of it need 4x the object's size: put them under the first of
# $TMPDIR, /var/tmp and the build directory with that much room (lib.sh makes its work directory
# in $TMPDIR). With no room anywhere the test skips (77), except under CI=true: a test CI is
# meant to run must not pass by skipping.
need_kb=$((bytes / 1024 * 4))
room=""
for dir in "${TMPDIR:-/tmp}" /var/tmp "${TOASTYFS_BUILD:-}"; do
    [ -n "$dir" ] && [ -d "$dir" ] && [ -w "$dir" ] || continue
    free_kb=$(df -Pk "$dir" | awk 'NR == 2 {print $4}')
    if [ "${free_kb:-0}" -ge "$need_kb" ]; then room=$dir; break; fi
done
if [ -z "$room" ]; then
    echo "no room for the test's $((need_kb / 1024)) MB in ${TMPDIR:-/tmp}, /var/tmp or ${TOASTYFS_BUILD:-the build directory}"
    [ "${CI:-}" = true ] && { echo "FAIL: CI=true, and this test must run in CI"; exit 1; }
    echo "SKIP"
    exit 77
fi
export TMPDIR=$room
source "$(dirname "$0")/lib.sh"
watchdog 270

start_cluster

# The source: pseudo-random bytes (AES-CTR of zeros is ~10x faster than /dev/urandom), written to
# $TMPDIR and hashed in the same pass. Random, so no two chunks deduplicate.
src=$work/big.bin
started=$(now_ms)
if command -v openssl >/dev/null; then
    openssl enc -aes-128-ctr -nosalt -pass "pass:e2e$RANDOM" -pbkdf2 </dev/zero 2>/dev/null | head -c "$bytes" |
        tee "$src" | sha256sum | cut -d' ' -f1 >"$work/src.sha"
else
    head -c "$bytes" /dev/urandom | tee "$src" | sha256sum | cut -d' ' -f1 >"$work/src.sha"
fi
expect "source size" "$bytes" "$(stat -c %s "$src")"
src_sha=$(cat "$work/src.sha")
say "source: $bytes bytes in $(($(now_ms) - started)) ms, sha256 $src_sha"

# sample_rss: VmRSS of every process every 200 ms into $work/rss (max kept per name), until killed.
sample_rss() {
    declare -A peak=([proxy]=0 [node1]=0 [node2]=0 [node3]=0)
    local name p kb
    while :; do
        for name in proxy node1 node2 node3; do
            p=$(pid_of "$name")
            kb=$(sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$p/status" 2>/dev/null)
            [ "${kb:-0}" -gt "${peak[$name]}" ] && peak[$name]=$kb
        done
        echo "proxy=${peak[proxy]} node1=${peak[node1]} node2=${peak[node2]} node3=${peak[node3]}" >"$work/rss.tmp"
        mv "$work/rss.tmp" "$work/rss"
        sleep 0.2
    done
}
sample_rss &
sampler=$!
extra_pids+=("$sampler")

mbps() { echo "$(($1 * 1000 / ($2 > 0 ? $2 : 1) / 1000000))"; }

# ---- PUT ------------------------------------------------------------------------------------------
started=$(now_ms)
CURL_MAX_TIME=300  # for every curl of this test: 1 GiB at a few MB/s on a loaded machine
code=$(http_code -T "$src" "$url/big")
put_ms=$(($(now_ms) - started))
expect "PUT status" 200 "$code"
expect "PUT ETag" "\"$(md5sum <"$src" | cut -d' ' -f1)\"" "$(header ETag)"
say "PUT 1 object of $bytes bytes: $put_ms ms, $(mbps "$bytes" "$put_ms") MB/s"
rss_put=$(cat "$work/rss")
hwm_put="proxy=$(peak_rss_mb proxy) node1=$(peak_rss_mb node1) node2=$(peak_rss_mb node2) node3=$(peak_rss_mb node3)"

# ---- HEAD, GET ------------------------------------------------------------------------------------
expect "HEAD status" 200 "$(http_code -I "$url/big")"
expect "HEAD Content-Length" "$bytes" "$(header Content-Length)"
started=$(now_ms)
got=$(curl -sS --max-time "$CURL_MAX_TIME" -o >(sha256sum | cut -d' ' -f1 >"$work/got.sha") -w '%{http_code} %{size_download}' "$url/big")
get_ms=$(($(now_ms) - started))
expect "GET status and size" "200 $bytes" "$got"
for _ in $(seq 50); do [ -s "$work/got.sha" ] && break; sleep 0.1; done  # the process substitution
expect "GET sha256" "$src_sha" "$(cat "$work/got.sha")"
say "GET 1 object of $bytes bytes: $get_ms ms, $(mbps "$bytes" "$get_ms") MB/s"

# A range from the middle, byte-exact.
first=$((bytes / 2 - 12345))
expect "range status" 206 "$(http_code -H "Range: bytes=$first-$((first + 9999999))" "$url/big")"
slice "$src" "$first" 10000000 | cmp -s - "$work/body" || fail "range from the middle differs from the source"

kill "$sampler" 2>/dev/null
wait "$sampler" 2>/dev/null
to_mb() { sed 's/=\([0-9]*\)/=\1 /g' <<<"$1" | awk '{for (i = 1; i <= NF; i++) { split($i, a, "="); printf "%s=%d MB ", a[1], (a[2] + 512) / 1024 } }'; }
say "peak RSS sampled during PUT: $(to_mb "$rss_put")"
say "peak RSS sampled through GET: $(to_mb "$(cat "$work/rss")")"
say "VmHWM after PUT (MB): $hwm_put"
say "VmHWM after GET (MB): proxy=$(peak_rss_mb proxy) node1=$(peak_rss_mb node1) node2=$(peak_rss_mb node2) node3=$(peak_rss_mb node3)"
echo "E2E-FIGURES put_mb_s=$(mbps "$bytes" "$put_ms") get_mb_s=$(mbps "$bytes" "$get_ms") $(echo "hwm proxy=$(peak_rss_mb proxy) node1=$(peak_rss_mb node1) node2=$(peak_rss_mb node2) node3=$(peak_rss_mb node3)")"

expect "DELETE big" 204 "$(http_code -X DELETE "$url/big")"
rm -f "$src"
all_alive
say "ok"
