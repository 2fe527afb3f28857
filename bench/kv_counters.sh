# Sourced by bench/kv_*.sh after tests/cluster/lib.sh (needs its `pid`, `work`, `kv` and
# `primary_of`); the servers must log at info level (LOG_LEVEL=info) for their "counters" lines.
#
# kv_stop_and_count ACKED: finds the primary (kv-client status), stops the three servers with
# SIGTERM (each logs a last "counters" line on the way out), waits for them, and prints per
# replica the fields of that line: syncs (fdatasync calls), ops_executed, checkpoints taken, the
# durable checkpoint op and view changes started (a replica stalled past the view-change timeout
# starts one). Then the primary's fsyncs per committed op (an op is one batch of
# client requests) and per acknowledged put (ACKED: successful puts the caller counted). Sets
# kv_primary, kv_primary_syncs, kv_primary_ops, kv_syncs_per_op, kv_syncs_per_put.
kv_counter_field() {  # LINE NAME
    sed -n "s/.* $2=\([0-9]*\).*/\1/p" <<<"$1"
}

kv_stop_and_count() {
    local acked=$1 i line role syncs ops checkpoints checkpoint_op views
    kv_primary=$(primary_of "$(kv status)")
    kv_primary_syncs="" kv_primary_ops="" kv_syncs_per_op="" kv_syncs_per_put=""
    for i in 0 1 2; do kill -TERM "${pid[$i]}" 2>/dev/null; done
    for i in 0 1 2; do wait "${pid[$i]}" 2>/dev/null; done
    printf '%8s %8s %12s %12s %12s %14s %13s\n' replica role syncs ops_executed checkpoints checkpoint_op \
        view_changes
    for i in 0 1 2; do
        line=$(grep ' counters ' "$work/replica$i.log" | tail -n1)
        syncs=$(kv_counter_field "$line" syncs)
        ops=$(kv_counter_field "$line" ops_executed)
        checkpoints=$(kv_counter_field "$line" checkpoints)
        checkpoint_op=$(kv_counter_field "$line" checkpoint_op)
        views=$(kv_counter_field "$line" view_changes_started)
        role=backup
        if [ "$i" = "$kv_primary" ]; then role=primary kv_primary_syncs=$syncs kv_primary_ops=$ops; fi
        printf '%8s %8s %12s %12s %12s %14s %13s\n' "$i" "$role" "${syncs:-?}" "${ops:-?}" "${checkpoints:-?}" \
            "${checkpoint_op:-?}" "${views:-?}"
    done
    if [ -z "$kv_primary_syncs" ] || [ -z "$kv_primary_ops" ] || [ "$kv_primary_ops" -eq 0 ] || [ "$acked" -eq 0 ]; then
        echo "the primary's counters were not found (primary '$kv_primary')"
        return 1
    fi
    kv_syncs_per_op=$(awk -v s="$kv_primary_syncs" -v o="$kv_primary_ops" 'BEGIN { printf "%.3f", s / o }')
    kv_syncs_per_put=$(awk -v s="$kv_primary_syncs" -v a="$acked" 'BEGIN { printf "%.4f", s / a }')
    awk -v s="$kv_primary_syncs" -v o="$kv_primary_ops" -v a="$acked" 'BEGIN {
        printf "primary: %d fsyncs, %d committed ops, %d acknowledged puts (%.1f puts per op)\n", s, o, a, a / o }'
    echo "fsyncs per committed op $kv_syncs_per_op, fsyncs per acknowledged put $kv_syncs_per_put"
}
