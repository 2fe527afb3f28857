# shellcheck shell=bash
# Shared by tests/cluster/lib.sh and tests/e2e/lib.sh. Source it after setting `work` (the test's
# temporary directory): every process started afterwards writes its ASan/UBSan/LSan reports to
# $work/sanitizer/report.<pid> (log_path), not to its log, so a report counts even from a process
# killed afterwards. Other builds never write there.
sanitizer_dir=$work/sanitizer
mkdir -p "$sanitizer_dir"
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$sanitizer_dir/report"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}log_path=$sanitizer_dir/report"

# sanitizer_reports: prints every sanitizer report written so far; false if there is none.
sanitizer_reports() {
    local f found=1
    for f in "$sanitizer_dir"/*; do
        [ -f "$f" ] || continue
        found=0
        echo "---- sanitizer report $f"
        head -n 80 "$f"
    done
    return $found
}
