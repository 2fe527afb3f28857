#!/usr/bin/env bash
# Listing and keys:
# - GET /? lists JSON objects with key, size, etag and last_modified; prefix, start-after and
#   max-keys paginate 2,500 keys exactly (each once, in order, no other prefix mixed in);
# - keys that need percent-encoding (spaces, %, ?, #, quotes, unicode, slashes) round-trip
#   through PUT, GET, listing and DELETE;
# - a 1,024-byte key is accepted, a 1,025-byte key is refused (414 or 400), never truncated
#   onto the 1,024-byte one; the limit counts bytes, not characters.
#
#   listing.sh path/to/cluster.sh      (TOASTYFS_BUILD: the build directory)
source "$(dirname "$0")/lib.sh"
watchdog 90

start_cluster

# ---- 2,500 keys, PUT over keep-alive connections (one curl per 1,250 URLs, two in parallel) ------
keys=2500
value="listing value"
value_etag="\"$(printf '%s' "$value" | md5sum | cut -d' ' -f1)\""
seq -f "list/k%05g" 0 $((keys - 1)) >"$work/expected"
started=$(now_ms)
split -n l/2 "$work/expected" "$work/part."
putters=()
for part in "$work"/part.*; do
    sed "s|.*|url = \"$url/&\"|" "$part" |
        c -X PUT --data-binary "$value" -o /dev/null -w '%{http_code}\n' -K - >"$part.codes" &
    putters+=("$!")
done
wait "${putters[@]}"  # not a bare wait: the watchdog runs in the background too
ok=$(cat "$work"/part.*.codes | grep -c '^200$')
expect "PUTs answered 200" "$keys" "$ok"
say "$keys PUTs in $(($(now_ms) - started)) ms"
# Keys under other prefixes that a prefix listing must leave out.
for k in lisu list0 lis/x other/k1; do
    expect "PUT $k" 200 "$(http_code -X PUT --data-binary other "$url/$k")"
done

# list QUERY: GET /?QUERY into $work/list (JSON), status checked.
list() {
    expect "list ?$1" 200 "$(http_code "$url/?$1")"
    expect "list Content-Type" application/json "$(header Content-Type)"
    cp "$work/body" "$work/list"
}
list_keys() { grep -o '"key":"[^"]*"' "$work/list" | sed 's/^"key":"//; s/"$//'; }
truncated() { grep -o '"is_truncated":[a-z]*' "$work/list" | cut -d: -f2; }
next_after() { sed -n 's/.*"next_start_after":"\([^"]*\)".*/\1/p' "$work/list"; }

# Page through with max-keys 1000 (the maximum) and then 700 (pages not aligned to the total).
for page_size in 1000 700; do
    : >"$work/listed"
    query="prefix=list/&max-keys=$page_size"
    pages=0
    while :; do
        list "$query"
        pages=$((pages + 1))
        n=$(list_keys | wc -l)
        list_keys >>"$work/listed"
        if [ "$(truncated)" = true ]; then
            expect "page $pages size" "$page_size" "$n"
            after=$(next_after)
            expect "next_start_after = last key" "$(list_keys | tail -n 1)" "$after"
            query="prefix=list/&max-keys=$page_size&start-after=$after"
        else
            expect "is_truncated" false "$(truncated)"
            grep -q next_start_after "$work/list" && fail "next_start_after on the last page"
            break
        fi
        [ "$pages" -le 10 ] || fail "more than 10 pages"
    done
    expect "pages of $page_size" "$(((keys + page_size - 1) / page_size))" "$pages"
    cmp -s "$work/expected" "$work/listed" || fail "listing with max-keys $page_size: $(diff "$work/expected" "$work/listed" | head -n 5)"
done

# Every entry has its fields, with the right size and ETag.
list "prefix=list/k0000&max-keys=20"
entries=$(grep -o '{"key":[^}]*}' "$work/list")
expect "entries under list/k0000" 10 "$(wc -l <<<"$entries")"
pattern='^{"key":"list/k0000[0-9]","size":13,"etag":"\\"[0-9a-f]\{32\}\\"","last_modified":"20[0-9][0-9]-[01][0-9]-[0-3][0-9]T[0-9:.]*Z"}$'
bad=$(grep -v "$pattern" <<<"$entries" | head -n 1)
[ -z "$bad" ] || fail "listing entry with missing or wrong fields: $bad"
etag_json=$(sed 's/"/\\"/g' <<<"$value_etag")
expect "etag in the listing" 10 "$(grep -cF "\"etag\":\"$etag_json\"" <<<"$entries")"

# start-after in the middle, without a prefix; max-keys default; a prefix that matches nothing.
list "start-after=list/k01233&max-keys=3"
expect "start-after" "list/k01234 list/k01235 list/k01236" "$(list_keys | tr '\n' ' ' | sed 's/ $//')"
list "start-after=list/k02499"
expect "after the last list/ key" "list0 lisu other/k1" "$(list_keys | tr '\n' ' ' | sed 's/ $//')"
list ""
expect "default max-keys" 1000 "$(list_keys | wc -l)"
expect "default listing truncated" true "$(truncated)"
list "prefix=nothing/"
expect "empty listing" '{"objects":[],"is_truncated":false}' "$(cat "$work/list")"
for q in "max-keys=0" "max-keys=1001" "max-keys=abc" "prefix=a&prefix=b"; do
    expect "list ?$q" 400 "$(http_code "$url/?$q")"
done

# ---- keys that need percent-encoding --------------------------------------------------------------
# encode KEY: percent-encodes everything but unreserved characters and '/'.
encode() {
    local LC_ALL=C s=$1 out="" ch i
    for ((i = 0; i < ${#s}; i++)); do
        ch=${s:i:1}
        case "$ch" in
            [A-Za-z0-9._~/-]) out+=$ch ;;
            *) out+=$(printf '%%%02X' "'$ch") ;;
        esac
    done
    printf '%s' "$out"
}
special=("dir/sub dir/file name.txt" "percent%25 and ?query #hash" "quote\"back\\slash" "ünïcødé/日本語/ключ"
    "a//double/slash/" "emoji 😀 plus+sign" "tab	and,comma;semi:colon=eq&amp")
i=0
for key in "${special[@]}"; do
    i=$((i + 1))
    printf 'value %d of %s' "$i" "$key" >"$work/v"
    path=$(encode "$key")
    # --data-binary, not -T: curl -T appends the file name to a URL that ends in a slash.
    expect "PUT '$key'" 200 "$(http_code -X PUT --data-binary @"$work/v" "$url/$path")"
    expect "GET '$key'" 200 "$(http_code "$url/$path")"
    cmp -s "$work/v" "$work/body" || fail "GET '$key' returned '$(cat "$work/body")'"
    # The listing names the decoded key (JSON-escaped: quote and backslash, a tab as \u0009).
    json_key=$(printf '%s' "$key" | sed 's/\\/\\\\/g; s/"/\\"/g; s/\t/\\u0009/g')
    list "prefix=$(encode "$key" | sed 's|/|%2F|g')"
    grep -qF "{\"key\":\"$json_key\",\"size\":$(wc -c <"$work/v")," "$work/list" ||
        fail "listing by prefix '$key' does not show it: $(cat "$work/list")"
done
# Lower-case and upper-case percent-encodings name the same key; invalid encodings are refused.
expect "GET %c3%bc lower case" 200 "$(http_code "$url/%c3%bcn%c3%afc%c3%b8d%c3%a9/%e6%97%a5%e6%9c%ac%e8%aa%9e/%d0%ba%d0%bb%d1%8e%d1%87")"
expect "same value" "value 4 of ünïcødé/日本語/ключ" "$(cat "$work/body")"
expect "invalid UTF-8 key" 400 "$(http_code -X PUT --data-binary x "$url/bad%FFkey")"
expect "bad percent-encoding" 400 "$(http_code -X PUT --data-binary x "$url/bad%zzkey")"
for key in "${special[@]}"; do
    expect "DELETE '$key'" 204 "$(http_code -X DELETE "$url/$(encode "$key")")"
    expect "GET deleted '$key'" 404 "$(http_code "$url/$(encode "$key")")"
done

# ---- key length limit -----------------------------------------------------------------------------
k1024=$(head -c 1024 /dev/zero | tr '\0' 'k')
k1025=${k1024}k
expect "PUT 1024-byte key" 200 "$(http_code -X PUT --data-binary 1024 "$url/$k1024")"
code=$(http_code -X PUT --data-binary 1025 "$url/$k1025")
[ "$code" = 414 ] || [ "$code" = 400 ] || fail "PUT 1025-byte key: expected 414 or 400, got $code"
code=$(http_code "$url/$k1025")
[ "$code" = 414 ] || [ "$code" = 400 ] || fail "GET 1025-byte key: expected 414 or 400, got $code"
expect "GET 1024-byte key" 200 "$(http_code "$url/$k1024")"
expect "1024-byte key not overwritten by the 1025-byte PUT" 1024 "$(cat "$work/body")"
list "prefix=kkkkk"
expect "one long key listed" 1 "$(list_keys | wc -l)"
expect "listed key length" 1024 "$(list_keys | tr -d '\n' | wc -c)"
# 512 two-byte characters are 1,024 bytes: accepted; 513 are not.
e512=$(for _ in $(seq 512); do printf '%%C3%%A9'; done)
expect "PUT 512 x é (1024 bytes)" 200 "$(http_code -X PUT --data-binary e "$url/$e512")"
code=$(http_code -X PUT --data-binary e "$url/$e512%C3%A9")
[ "$code" = 414 ] || [ "$code" = 400 ] || fail "PUT 513 x é (1026 bytes): expected 414 or 400, got $code"
long_prefix=$(head -c 1025 /dev/zero | tr '\0' 'p')
expect "list with a 1025-byte prefix" 400 "$(http_code "$url/?prefix=$long_prefix")"

all_alive
say "ok"
