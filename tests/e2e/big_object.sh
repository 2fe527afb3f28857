#!/usr/bin/env bash
# A 1 GiB object round trip: streamed up with curl -T (curl reads the file as it sends; it does
# not buffer it like --data-binary), streamed down into sha256sum, compared with the source's
# SHA-256. Prints MB/s each way and the peak RSS (VmHWM) of the proxy and of each node, sampled
# during the transfers: informational, never asserted.
#
#   big_object.sh path/to/cluster.sh      (TOASTYFS_BUILD: the build directory)
# E2E_BIG_BYTES overrides the size (default 1 GiB).
bytes=${E2E_BIG_BYTES:-$((1 << 30))}
# The source and two replicas of it need 4x the object's size: lib.sh finds the room (or skips,
# or fails under CI=true).
room_needed_kb=$((bytes * 4 / 1024))
source "$(dirname "$0")/lib.sh"
watchdog 270

start_cluster

# The source: pseudo-random bytes in $TMPDIR, hashed in the same pass.
src=$work/big.bin
started=$(now_ms)
src_sha=$(random_file "$src" "$bytes")
expect "source size" "$bytes" "$(stat -c %s "$src")"
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
got=$(get_sha256 big)
get_ms=$(($(now_ms) - started))
expect "GET status, size and sha256" "200 $bytes $src_sha" "$got"
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
