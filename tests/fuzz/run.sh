#!/usr/bin/env bash
# Runs the libFuzzer targets in tests/fuzz for a while each, one at a time.
#
#   tests/fuzz/run.sh [-j JOBS] [SECONDS] [TARGET...]      default: 30 seconds, every target
#
# - Builds build-fuzz/ (clang, -Dfuzz=true, ASan+UBSan), only the fuzz targets. As root it
#   installs clang and libclang-rt-14-dev (the libFuzzer runtime) if they are missing.
# - -j JOBS runs up to JOBS targets at a time (.ci/run: -j 2 on its quiet 2-core machine); the
#   default, one at a time, leaves a core free for whoever else uses the machine.
# - Each target runs under `nice -n 10` on a scratch copy of its committed corpus
#   (build-fuzz/fuzz-work/<target>/corpus): new inputs never land in tests/fuzz/corpus. Copy the
#   interesting ones by hand (small files; keep the whole corpus directory under ~2 MB).
# - Prints executions, exec/s, cov and ft (libFuzzer's final stats) and the corpus size per
#   target, and a summary table at the end.
# - A crash, leak, timeout or sanitizer report is saved as
#   build-fuzz/fuzz-work/<target>/<run time>/crash-* (kept across runs); the run goes on with the next target and the script
#   exits 1. Minimise it (<target>_fuzz -minimize_crash=1 -runs=10000 FILE), fix the code, and
#   commit the reproducer as tests/fuzz/regressions/<target>/<what_it_broke> so the `fuzz`
#   suite replays it.
# Exits 0 if every target ran its time without a finding, 1 otherwise, 2 on bad arguments.
# Environment: FUZZ_ARGS  extra libFuzzer flags, e.g. FUZZ_ARGS="-max_len=8192"
set -uo pipefail
cd "$(dirname "$0")/../.."

jobs=1
if [ "${1:-}" = -j ]; then
  jobs="${2:-}"
  shift 2 || true
  [[ "$jobs" =~ ^[1-9][0-9]*$ ]] || { echo "-j needs a number of jobs" >&2; exit 2; }
fi
seconds="${1:-30}"
[[ "$seconds" =~ ^[1-9][0-9]*$ ]] || { echo "SECONDS must be a positive number, got '$seconds'" >&2; exit 2; }
shift || true
all_targets=$(sed -n "s/^  '\([a-z_0-9]*\)' : \[files(.*_fuzz.cpp.*/\1/p" tests/fuzz/meson.build)
targets=("$@")
[ ${#targets[@]} -eq 0 ] && read -r -a targets <<< "$(echo $all_targets)"
for t in "${targets[@]}"; do
  grep -qx "$t" <<< "$all_targets" || { echo "unknown target '$t' (known: $(echo $all_targets))" >&2; exit 2; }
done

# --- toolchain: clang and the libFuzzer runtime ---
missing=()
command -v clang++ >/dev/null 2>&1 || missing+=(clang)
ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1 || missing+=(libclang-rt-14-dev)
if ((${#missing[@]})); then
  if [ "$(id -u)" -eq 0 ]; then
    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" || exit 1
  else
    echo "missing: ${missing[*]}; install them with: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi

# --- build (only the fuzz targets) ---
if [ ! -f build-fuzz/build.ninja ]; then
  CXX=clang++ meson setup build-fuzz -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false \
    --buildtype=debugoptimized -Dwerror=false >/dev/null || exit 1
fi
ninja_targets=()
for t in "${targets[@]}"; do ninja_targets+=("tests/fuzz/${t}_fuzz"); done
nice -n 10 ninja -C build-fuzz "${ninja_targets[@]}" >/dev/null || { ninja -C build-fuzz "${ninja_targets[@]}"; exit 1; }

# --- run ---
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"
run_id=$(date +%Y%m%d-%H%M%S)

# run_target TARGET: fuzzes it for $seconds, prints its stats (and findings) in one piece, leaves
# its summary line in build-fuzz/fuzz-work/TARGET/summary; false on a finding.
run_target() {
  local t=$1 work artifacts rc final runs rate cov ft corpus crashes line report
  work="build-fuzz/fuzz-work/$t"
  artifacts="$work/$run_id"
  rm -rf "$work/corpus" "$work/summary" && mkdir -p "$work/corpus" "$artifacts"
  cp -r tests/fuzz/corpus/"$t"/. "$work/corpus/" 2>/dev/null || true
  [ -d tests/fuzz/regressions/"$t" ] && cp -r tests/fuzz/regressions/"$t"/. "$work/corpus/"
  echo "=== $t: ${seconds}s"
  # -timeout: one input running longer than 10 s is a hang, reported like a crash.
  nice -n 10 "build-fuzz/tests/fuzz/${t}_fuzz" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$artifacts/" ${FUZZ_ARGS:-} "$work/corpus" >"$work/log" 2>&1
  rc=$?
  final=$(grep -E '^#[0-9]+' "$work/log" | tail -1)
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log")
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/log")
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<< "$final")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<< "$final")
  corpus=$(sed -n 's/.* corp: \([0-9]*\/[0-9]*[a-zA-Z]*\).*/\1/p' <<< "$final")
  crashes=$(find "$artifacts" -maxdepth 1 \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l)
  line=$(printf '%-22s runs %-11s exec/s %-8s cov %-6s ft %-7s corpus %-12s crashes %s' \
    "$t" "${runs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "${corpus:-?}" "$crashes")
  if [ "$rc" -ne 0 ] || [ "$crashes" -ne 0 ]; then
    line+="   FAILED (exit $rc, log $work/log)"
    report=$(grep -E 'ERROR:|FUZZ_CHECK|runtime error|SUMMARY' "$work/log" | head -5)
    printf '%s\n%s\n    reproducers: %s\n' "$line" "$report" "$(find "$artifacts" -type f | tr '\n' ' ')"
    echo "$line" >"$work/summary"
    return 1
  fi
  rmdir "$artifacts" 2>/dev/null
  echo "$line"
  echo "$line" >"$work/summary"
}

status=0
running=0
for t in "${targets[@]}"; do
  if [ "$running" -ge "$jobs" ]; then
    wait -n || status=1
    running=$((running - 1))
  fi
  run_target "$t" &
  running=$((running + 1))
done
while [ "$running" -gt 0 ]; do
  wait -n || status=1
  running=$((running - 1))
done
echo "=== summary (${seconds}s each, $jobs at a time)"
for t in "${targets[@]}"; do
  cat "build-fuzz/fuzz-work/$t/summary" 2>/dev/null || { echo "$t: no summary"; status=1; }
done
exit $status
