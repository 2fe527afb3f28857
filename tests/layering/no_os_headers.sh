#!/usr/bin/env bash
# include/ and examples/ must compile unchanged on any OS, so they include no OS header: OS code
# lives in platform/ (CONVENTIONS.md, "Layering"). Allowed in angle brackets: C++ standard library
# headers (no ".h", no "/"), except <csignal> (signal handling is the OS's: platform/process.hpp).
# So <unistd.h>, <signal.h>, <sys/...>, <malloc.h>, <windows.h>, <openssl/...> all fail.
# One exception: <sqlite3.h>, the metadata engine. SQLite is portable C that reaches the OS only
# through a VFS, and ours (include/toastyfs/sqlite_vfs.hpp) calls a metadata_disk, not the OS.
#   no_os_headers.sh SOURCE_ROOT
set -euo pipefail
root=${1:?usage: no_os_headers.sh SOURCE_ROOT}
[ -d "$root/include" ] && [ -d "$root/examples" ] || { echo "no include/ and examples/ under $root" >&2; exit 2; }

files=$(find "$root/include" "$root/examples" -type f \
    \( -name '*.hpp' -o -name '*.cpp' -o -name '*.h' -o -name '*.cc' \))
[ -n "$files" ] || { echo "no sources found under $root" >&2; exit 2; }
# Every angle-bracket include, as file:line:text.
includes=$(grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*<' $files || true)
[ -n "$includes" ] || { echo "no #include <...> found: the pattern is broken" >&2; exit 2; }
bad=$(printf '%s\n' "$includes" | grep -E '<[^>]*[./][^>]*>|<csignal>' | grep -vE '#[[:space:]]*include[[:space:]]*<sqlite3\.h>' || true)
if [ -n "$bad" ]; then
    echo "OS or non-standard headers in include/ or examples/ (move the code behind platform/):"
    printf '%s\n' "$bad" | sed "s|^$root/||"
    exit 1
fi
echo "ok: $(printf '%s\n' "$includes" | wc -l) angle-bracket includes in include/ and examples/, all standard C++"
