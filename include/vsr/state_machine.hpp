// The StateMachine concept: the application replicated by VSR.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace vsr {

/// What the replica tells the state machine about the operation being executed. The values are
/// chosen by the primary and carried in the prepare, so every replica sees the same ones.
struct operation_context {
    std::uint64_t op = 0;            // log position of the batch
    std::uint32_t index = 0;         // position of the request inside the batch
    std::uint64_t timestamp_ns = 0;  // primary's clock, strictly increasing across ops
    std::uint64_t client_id = 0;
};

/// Requirements:
/// - execute(context, operation, result): applies one committed operation and appends its
///   result to `result` (which arrives empty). Must be deterministic (same state + same inputs
///   = same state and result on every replica), and total: `operation` comes from a client, so
///   malformed bytes must produce an error result, never a crash.
/// - snapshot(out): appends a deterministic serialisation of the whole state to `out`.
/// - restore(bytes): replaces the state with a snapshot; returns false (state unchanged) if the
///   bytes are not a valid snapshot. basic_replica puts them in checkpoint images
///   (vsr/checkpoint.hpp) and restores from them after a state transfer or a restart.
/// - result_size_max(): the largest result execute() or query() produces; constant. The replica
///   enforces it (capped at config::operation_size_max(), what a reply holds): a larger result is
///   dropped, the operation stays executed, and the client gets result_status::result_too_large.
/// - Default-initializable (the empty state) and move-constructible: the replica takes its
///   initial machine by value.
template <typename T>
concept state_machine = std::default_initializable<T> && std::move_constructible<T> &&
    requires(T& machine, const T& const_machine, const operation_context& context, std::span<const std::uint8_t> bytes,
             std::vector<std::uint8_t>& out) {
    machine.execute(context, bytes, out);
    const_machine.snapshot(out);
    { machine.restore(bytes) } -> std::same_as<bool>;
    { const_machine.result_size_max() } -> std::convertible_to<std::size_t>;
};

/// Optional: queries, read-only operations the primary answers without logging them.
/// - is_query(operation): whether `operation` only reads. It must be a pure function of the
///   bytes (every replica would answer the same).
/// - query(operation, result): appends exactly what execute() would for this operation in the
///   current state, without changing anything. Called only when is_query() said true.
template <typename T>
concept state_machine_with_queries = state_machine<T> &&
    requires(const T& const_machine, std::span<const std::uint8_t> bytes, std::vector<std::uint8_t>& out) {
    { const_machine.is_query(bytes) } -> std::same_as<bool>;
    const_machine.query(bytes, out);
};

/// Optional: snapshots taken in steps, so that checkpointing a large state never stalls the
/// replica. basic_replica uses it when offered (one step per tick, config::checkpoint_step_size
/// bytes); without it, a checkpoint image is one snapshot() call.
/// - snapshot_begin(): the snapshot is of the state now. execute() calls that follow must not
///   change what the steps append (copy-on-write, or any other way). Abandons one in progress.
/// - snapshot_step(out, size_hint): appends the next part, about `size_hint` bytes or more;
///   true once all of it is appended. The parts together are byte-identical to what snapshot()
///   would have appended at snapshot_begin(), so every replica's image has the same checksum.
/// - snapshot_abandon(): drops a snapshot in progress; so does restore().
template <typename T>
concept state_machine_with_incremental_snapshot = state_machine<T> &&
    requires(T& machine, std::vector<std::uint8_t>& out, std::size_t size_hint) {
    machine.snapshot_begin();
    { machine.snapshot_step(out, size_hint) } -> std::same_as<bool>;
    machine.snapshot_abandon();
};

}  // namespace vsr
