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

/// What a state machine with a store of its own found there at start (open_stored).
enum class stored_state : std::uint8_t {
    empty,    // nothing stored: the state is the empty one
    loaded,   // the state of the last stored checkpoint, with its op and record
    damaged,  // what is stored cannot be trusted; the machine is empty again
};

/// What export_part did.
enum class export_status : std::uint8_t {
    part,         // appended a part; more follow after next_cursor
    last,         // appended the last part
    unavailable,  // the store no longer holds the checkpoint asked for (a newer one replaced it)
};

/// Optional: a machine that keeps its state in a durable store of its own, which may be far
/// larger than memory (the object store's metadata in SQLite). basic_replica then takes no
/// images of it: a checkpoint is a commit of the store, a restart reopens the store, and state
/// transfer streams the store from one replica into another's, a part at a time.
/// - open_stored(op, record): what the store holds at start (stored_state), with the op and
///   record of its last stored checkpoint when loaded. Persistent replicas call it once, first.
/// - clear_stored(): the store becomes empty (a replica about to recover); false if it failed.
/// - store_checkpoint(op, record): makes the state now durable together with `op` and the
///   replica's `record` (client table and the like), atomically: after a crash, open_stored
///   gives this checkpoint or an earlier one, never a mix. Its cost follows what changed since
///   the last one, not the size of the state. False: the store failed.
/// - failed(): the store failed (I/O error, full disk, damage found); the replica halts.
/// - digest(): a digest of the state now, equal on replicas with equal states.
/// - export_size(): the bytes an export of the state now takes.
/// - export_part(op, cursor, size_max, out, next_cursor): appends the part of the export of
///   stored checkpoint `op` that follows `cursor` (empty: the start), at most size_max bytes
///   unless a single record is larger, and sets next_cursor (at most cursor_size_max bytes).
///   Exports of one op are byte-identical on every replica, as are their cursors, so a transfer
///   can continue from any replica holding the same checkpoint.
/// - export_end(): no export is in progress (the store may drop what it kept for one).
/// - import_begin(), import_part(bytes) (false: malformed; the import is abandoned),
///   import_digest() (the digest of what was imported), import_finish(op, record) (the import
///   replaces the state and is stored as checkpoint `op` with `record`, atomically; false:
///   incomplete or the store failed, state unchanged), import_abandon().
template <typename T>
concept state_machine_with_stored_state = state_machine<T> &&
    requires(T& machine, const T& const_machine, std::uint64_t op, std::span<const std::uint8_t> bytes,
             std::vector<std::uint8_t>& out, std::size_t size_max) {
    { machine.open_stored(op, out) } -> std::same_as<stored_state>;
    { machine.clear_stored() } -> std::same_as<bool>;
    { machine.store_checkpoint(op, bytes) } -> std::same_as<bool>;
    { const_machine.failed() } -> std::same_as<bool>;
    { const_machine.digest() } -> std::same_as<std::uint64_t>;
    { const_machine.export_size() } -> std::same_as<std::uint64_t>;
    { machine.export_part(op, bytes, size_max, out, out) } -> std::same_as<export_status>;
    machine.export_end();
    machine.import_begin();
    { machine.import_part(bytes) } -> std::same_as<bool>;
    { const_machine.import_digest() } -> std::same_as<std::uint64_t>;
    { machine.import_finish(op, bytes) } -> std::same_as<bool>;
    machine.import_abandon();
};

/// Cursors of export_part are at most this long.
inline constexpr std::size_t export_cursor_size_max = 2048;

}  // namespace vsr
