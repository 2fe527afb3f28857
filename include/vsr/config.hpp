// Configuration: cluster shape, limits and timeouts. Every limit is named here, next to a note
// on what happens when it is reached; the replica and client enforce them.
#pragma once

#include <cstddef>
#include <cstdint>

#include "vsr/checkpoint.hpp"
#include "vsr/wire.hpp"

namespace vsr {

/// Test-only switches that plant real protocol bugs, so tests can prove the simulator's
/// checkers catch them. Always `none` outside tests.
enum class planted_bug : std::uint8_t {
    none = 0,
    commit_without_quorum,            // the primary commits as soon as it has prepared
    skip_client_deduplication,        // the primary re-executes retried and duplicated requests
    view_change_picks_wrong_log,      // the new primary takes the DoViewChange with the lowest op
    accept_prepare_out_of_order,      // a backup appends a prepare even with a gap before it
    recovering_replica_answers,       // a restarted replica skips recovery and votes with an empty log
    query_without_round,              // the primary answers queries without confirming its view
    restore_unchecked_checkpoint,     // a checkpoint (transferred or on disk) is restored without its checksum
    ack_before_durable,               // a persistent replica sends (acknowledges) before its writes are durable
    compact_past_commit,              // a checkpoint (and the log compacted behind it) runs past the commit
    damaged_replica_votes,            // a replica whose journal is damaged rejoins with what it could read
    truncate_without_new_epoch,       // a truncated journal keeps its epoch: records past the cut can return
    checkpoint_without_client_table,  // checkpoints hold the state machine but not the client table
};

struct config {
    std::uint32_t cluster = 0;
    std::uint8_t replica_count = 3;

    // ---- limits ----
    /// Largest message on the wire. Larger messages are dropped and counted as too_long.
    std::size_t message_size_max = 1 << 20;
    /// Prepares in flight beyond the commit number. When full, requests wait in the queue and
    /// are batched into the next prepare.
    std::uint32_t pipeline_max = 8;
    /// Client requests waiting at the primary. When full, new requests are dropped (counted);
    /// clients retry.
    std::uint32_t request_queue_max = 8192;
    /// Requests in one prepare (batch).
    std::uint32_t batch_requests_max = 4096;
    /// Client sessions in the replicated client table. Registering one more evicts the session
    /// that was least recently active, and that client gets an eviction reply.
    std::uint32_t clients_max = 1024;
    /// Every replica takes a checkpoint after executing each op that is a multiple of this
    /// (vsr/checkpoint.hpp). Larger: fewer snapshots of the state; smaller: a shorter log.
    std::uint32_t checkpoint_interval = 1024;
    /// Entries held in memory, the bound on the log's size. The log holds the entries after the
    /// last checkpoint, and as many before it as fit, for replicas that are a little behind;
    /// the oldest checkpointed entry goes first. A replica behind the oldest entry held gets the
    /// checkpoint instead. The primary prepares no further than checkpoint_interval +
    /// pipeline_max past its last checkpoint: requests wait in the queue until the next one.
    /// At least 2 * checkpoint_interval + pipeline_max (see valid()). Memory: this many entries
    /// of at most entry_size_max() bytes each.
    std::uint64_t log_entries_max = 4096;
    /// Largest checkpoint image accepted by state transfer. A bigger one is refused (counted),
    /// so a lagging replica cannot be made to buffer more than this.
    std::uint64_t checkpoint_size_max = std::uint64_t{1} << 32;
    /// Bytes of a checkpoint image serialised per tick, for state machines with incremental
    /// snapshots (vsr/state_machine.hpp): the longest the replica spends on one step. Meanwhile
    /// the log keeps what the image does not cover, and a primary that reaches op_prepare_max
    /// queues requests until the image is durable.
    std::size_t checkpoint_step_size = std::size_t{4} << 20;

    // ---- timeouts (milliseconds; converted to ticks) ----
    std::uint32_t tick_ms = 10;
    std::uint32_t heartbeat_ms = 100;            // primary sends commit when otherwise idle
    std::uint32_t prepare_resend_ms = 50;        // primary resends unacknowledged prepares
    std::uint32_t view_change_timeout_ms = 500;  // backup starts a view change after this silence
    std::uint32_t view_change_jitter_ms = 250;   // plus uniform [0, jitter) from the PRNG
    std::uint32_t retry_ms = 100;                // resend SVC/DVC/recovery/get_state/request_start_view

    planted_bug bug = planted_bug::none;

    /// Largest encoded log entry. Chosen so that pipeline_max entries always fit in one
    /// do_view_change or start_view (their suffix never exceeds pipeline_max entries).
    std::size_t entry_size_max() const noexcept {
        const std::size_t suffix_overhead = header_size + 32;
        return (message_size_max - suffix_overhead) / (pipeline_max + 1);
    }
    /// Largest client operation (and reply) body.
    std::size_t operation_size_max() const noexcept { return entry_size_max() - 128; }

    std::uint8_t quorum() const noexcept { return static_cast<std::uint8_t>(replica_count / 2 + 1); }
    std::uint32_t ticks(std::uint32_t ms) const noexcept { return ms / tick_ms + (ms % tick_ms != 0); }

    /// Smallest operation every valid configuration must accept.
    static constexpr std::size_t operation_size_min = 4096;
    /// Most log slots: a storage may lay the journal's zones out with room for this many
    /// (platform::file_storage puts the redundant headers and the bodies in one file).
    static constexpr std::uint64_t log_entries_limit = std::uint64_t{1} << 20;

    /// Rejects configurations the protocol cannot run with.
    bool valid() const noexcept {
        return replica_count >= 1 && replica_count <= replicas_max && tick_ms > 0 && pipeline_max >= 1 &&
               message_size_max >= 64 * 1024 && message_size_max <= (1u << 30) &&
               entry_size_max() >= 128 + operation_size_min && batch_requests_max >= 1 && clients_max >= 1 &&
               request_queue_max >= 1 && checkpoint_interval >= 1 &&
               log_entries_max >= std::uint64_t{2} * checkpoint_interval + pipeline_max &&
               log_entries_max <= log_entries_limit && checkpoint_size_max >= checkpoint_header_size &&
               checkpoint_step_size >= 1 && heartbeat_ms < view_change_timeout_ms;
    }
};

}  // namespace vsr
