#!/usr/bin/env bash
# Build ToastyFS. Installs missing build dependencies (as root) and compiles.
#   ./build.sh             release build in build/
#   ./build.sh --sanitize  ASan+UBSan build in build-asan/
set -euo pipefail
cd "$(dirname "$0")"

builddir=build
setup_opts=(--buildtype=release)
case "${1:-}" in
  "") ;;
  --sanitize)
    builddir=build-asan
    # -O1 with line tables only (-g1): reports still name file and line, and the build takes
    # less than half the time of -O2 -g (templates under ASan are the slow part of CI). No
    # benchmarks: CI runs them in the release build only.
    setup_opts=(--buildtype=plain -Doptimization=1 -Ddebug=false -Dcpp_args=-g1
                -Db_sanitize=address,undefined -Db_lundef=false -Dbenches=false) ;;
  *) echo "usage: $0 [--sanitize]" >&2; exit 2 ;;
esac

# --- dependencies: commands (command -> Debian package) and -dev packages ---
missing=()
# curl: cluster.sh and the e2e tests talk to the proxy with it.
declare -A cmd_pkg=([meson]=meson [ninja]=ninja-build [g++]=g++ [pkg-config]=pkg-config [curl]=curl)
for cmd in meson ninja g++ pkg-config curl; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${cmd_pkg[$cmd]}")
done
for pkg in libssl-dev libsqlite3-dev libboost-test-dev libbenchmark-dev; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
# iproute2 and nftables: the nemesis (tests/chaos) builds network namespaces and injects network
# faults with them. It needs root for that and runs without network faults otherwise, so they are
# installed only when we are root.
if [ "$(id -u)" -eq 0 ]; then
  for pkg in iproute2 nftables; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
fi

if ((${#missing[@]})); then
  if [ "$(id -u)" -eq 0 ]; then
    echo "installing: ${missing[*]}"
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
  else
    echo "missing dependencies; install them with:" >&2
    echo "  sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi

# --- configure (first time only) and build ---
[ -f "$builddir/build.ninja" ] || meson setup "$builddir" "${setup_opts[@]}"
meson compile -C "$builddir"
echo "built in $builddir/"
