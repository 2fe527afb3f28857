// basic_replica: one Viewstamped Replication replica ("Viewstamped Replication Revisited",
// Liskov & Cowling 2012), diskless variant, generic over its policies.
//
// The replica is a pure state machine: the driver calls tick() every config::tick_ms and
// on_message() for each received message; the replica answers by sending through the bus. It
// has no threads, reads time only through the Time policy and randomness only through Random.
//
// Departures from the paper, each for a bound or a simplification that keeps it correct:
// - Log entries are tagged with the view that created them. Messages that carry log suffixes
//   (do_view_change, start_view, new_state, recovery_response) carry only the entries after a
//   prev_op plus the tag at prev_op; the receiver attaches them only where its log matches.
// - The uncommitted part of any log is at most pipeline_max entries, so do_view_change and
//   start_view carry exactly that part and always fit in one message.
// - State transfer (get_state/new_state) moves committed entries only, in bounded chunks, from
//   any replica. Uncommitted entries travel only in prepare, do_view_change and start_view.
// - Recovery asks the primary for its uncommitted suffix and then fetches the committed prefix
//   by state transfer, instead of receiving the whole log in one message.
// - A replica joins a view it missed only through start_view (request_start_view).
// - A new primary accepts client requests only after the entries it inherited are executed,
//   so the (replicated) client table is complete before it deduplicates anything.
// - Queries (request_kind::query, for state machines with is_query/query) are not logged. The
//   primary notes its op number when one arrives, confirms it still leads the view by a round
//   of commit messages answered by a quorum after the arrival, and answers once it has executed
//   up to that op ("read index"). Every write acknowledged before the query was sent is at or
//   below that op (writes of this view are executed before they are acknowledged, and a new
//   primary takes requests only once it has executed what it inherited), and no newer view can
//   have acknowledged a write while a quorum still answered in this one. The answer is then a
//   committed prefix that includes them. No clocks or leases are involved.
// - Checkpoints (vsr/checkpoint.hpp) every config::checkpoint_interval ops bound the log: it
//   keeps at most log_entries_max entries, dropping the oldest ones a checkpoint covers. A
//   replica that needs entries nobody holds any more gets the checkpoint instead, in chunks
//   (get_checkpoint/checkpoint_chunk), checks it against the offered checksum, restores it and
//   goes on with entries. The primary prepares at most checkpoint_interval + pipeline_max ops
//   past its checkpoint, so the entries a checkpoint does not cover always fit.
#pragma once

#include <algorithm>
#include <array>
#include <bitset>
#include <cassert>
#include <cstdint>
#include <deque>
#include <span>
#include <unordered_map>
#include <vector>

#include "vsr/checkpoint.hpp"
#include "vsr/client_table.hpp"
#include "vsr/config.hpp"
#include "vsr/journal.hpp"
#include "vsr/log.hpp"
#include "vsr/log_entry.hpp"
#include "vsr/message_bus.hpp"
#include "vsr/random.hpp"
#include "vsr/state_machine.hpp"
#include "vsr/storage.hpp"
#include "vsr/time.hpp"
#include "vsr/wire.hpp"

namespace vsr {

enum class replica_status : std::uint8_t { normal, view_change, recovering };

inline const char* to_string(replica_status s) noexcept {
    switch (s) {
        case replica_status::normal: return "normal";
        case replica_status::view_change: return "view_change";
        case replica_status::recovering: return "recovering";
    }
    return "unknown";
}

/// Counters for everything the replica drops or refuses. Nothing is dropped silently.
struct replica_counters {
    std::array<std::uint64_t, decode_error_count> decode_errors{};
    std::uint64_t dropped_misaddressed = 0;    // wrong target, bad sender, client command
    std::uint64_t dropped_malformed_body = 0;  // valid header, invalid body
    std::uint64_t dropped_stale_view = 0;
    std::uint64_t dropped_not_primary = 0;  // requests at a backup or a non-normal replica
    std::uint64_t dropped_primary_catching_up = 0;
    std::uint64_t dropped_request_queue_full = 0;
    std::uint64_t dropped_query_queue_full = 0;
    std::uint64_t queries_answered = 0;
    std::uint64_t query_rounds = 0;
    std::uint64_t dropped_duplicate_request = 0;
    std::uint64_t dropped_stale_suffix = 0;      // a log suffix that conflicts with executed entries
    std::uint64_t appends_refused_log_full = 0;  // a backup whose entries are all after its checkpoint
    std::uint64_t replies_resent = 0;
    std::uint64_t sessions_evicted = 0;
    std::uint64_t view_changes_started = 0;
    std::uint64_t views_started_as_primary = 0;
    std::uint64_t state_transfer_requests = 0;
    std::uint64_t entries_transferred = 0;
    std::uint64_t checkpoints = 0;                   // checkpoint ops executed (the log may drop what they cover)
    std::uint64_t checkpoint_images = 0;             // images serialised (persistent: each checkpoint; else on demand)
    std::uint64_t checkpoint_image_steps = 0;        // snapshot steps taken (one per tick while building)
    std::uint64_t checkpoint_images_in_steps = 0;    // images that took more than one step
    std::uint64_t checkpoint_images_hurried = 0;     // the next checkpoint came first: built at once
    std::uint64_t checkpoint_requests_deferred = 0;  // asked for an image while one was being built
    std::uint64_t checkpoint_chunks_sent = 0;
    std::uint64_t checkpoints_restored = 0;        // installed from state transfer
    std::uint64_t checkpoints_rejected = 0;        // transferred image failed its checksum or restore
    std::uint64_t entries_read_from_journal = 0;   // executed entries sent from disk (released from memory)
    std::uint64_t journal_entries_unreadable = 0;  // ... that did not read back (the suffix stopped there)
    // A machine with a store of its own, restarted with its store past the superblock's
    // checkpoint (a crash fell between the store's commit and the superblock naming it): the
    // journal's entries after the store's op attached, or the log restarted after it.
    std::uint64_t store_ahead_at_start = 0;
    std::uint64_t store_ahead_log_restarted = 0;
    std::uint64_t prepares_resent = 0;
    std::uint64_t recoveries_completed = 0;
    std::uint64_t ops_executed = 0;
    std::uint64_t results_too_large = 0;  // over result_size_limit(): dropped, the client told
    std::uint64_t status_requests_answered = 0;
};

/// A timeout counted in ticks.
struct tick_timeout {
    std::uint32_t after = 0;
    std::uint32_t remaining = 0;
    bool running = false;

    void start(std::uint32_t ticks) noexcept {
        after = ticks == 0 ? 1 : ticks;
        remaining = after;
        running = true;
    }
    void reset() noexcept { remaining = after; }
    void stop() noexcept { running = false; }
    /// Advances one tick; true when it fires (it then restarts).
    bool tick() noexcept {
        if (!running) return false;
        if (--remaining > 0) return false;
        remaining = after;
        return true;
    }
};

template <state_machine StateMachine, message_bus MessageBus, time_source Time, random_source Random,
          storage Storage = memory_storage>
class basic_replica {
    /// The machine keeps its state in a store of its own: no images, commits instead.
    static constexpr bool machine_stores_state = state_machine_with_stored_state<StateMachine>;

public:
    /// `storage`: where the replica keeps its durable state (vsr/journal.hpp); a diskless one
    /// (memory_storage) keeps nothing. A persistent replica first loads what its storage holds:
    /// intact, it rejoins with it; damaged or empty with `recovering`, it recovers from its peers.
    /// `recovering`: the replica restarts after a crash and may have lost what it acknowledged
    /// (a diskless replica always has): it runs the recovery protocol before it takes part in
    /// anything. A fresh cluster starts with false.
    /// `machine`: the initial (empty) state machine, for state machines with options; every
    /// replica of a cluster must be given an equally configured one.
    /// A persistent replica sends nothing until its writes are durable: the driver calls flush()
    /// after each batch of tick() and on_message() calls (one sync covers the batch).
    basic_replica(const config& cfg, std::uint8_t index, MessageBus& bus, Time& time, Random& random, Storage& storage,
                  bool recovering, StateMachine machine = StateMachine())
        : config_(cfg),
          index_(index),
          bus_(bus),
          time_(time),
          random_(random),
          journal_(storage, cfg, index),
          machine_(std::move(machine)),
          clients_(cfg.clients_max) {
        assert(cfg.valid());
        assert(index < cfg.replica_count);
        heartbeat_timeout_.start(config_.ticks(config_.heartbeat_ms));
        prepare_resend_timeout_.start(config_.ticks(config_.prepare_resend_ms));
        retry_timeout_.start(config_.ticks(config_.retry_ms));
        if (journal_.persistent()) {
            start_from_storage(recovering);
        } else if (recovering) {
            start_recovery();
        } else {
            start_normal_timeout();
        }
    }

    /// A diskless replica (memory_storage).
    basic_replica(const config& cfg, std::uint8_t index, MessageBus& bus, Time& time, Random& random, bool recovering,
                  StateMachine machine = StateMachine()) requires std::same_as<Storage, memory_storage>
        : basic_replica(cfg, index, bus, time, random, diskless_storage(), recovering, std::move(machine)) {}

    /// Makes what the last calls decided durable, then sends the messages that waited for it.
    /// A diskless replica has nothing to do. If the storage fails the replica halts.
    void flush() {
        // Requests that gathered during the turn go out as one prepare while the pipeline has
        // room: the next batch is on the wire while the backups still sync the previous one.
        // Nothing executes here: what the turn executed stays in memory until the next flush.
        if (!halted_ && status_ == replica_status::normal && is_primary()) prepare_queued();
        flush_journal();
        if (prepare_after_compaction()) flush_journal();  // the prepares it made
        if (commit_now_durable()) flush_journal();        // the prepares the commit made room for
        release_executed();
    }

    /// Stopped for good: its storage failed or belongs to someone else (halt_reason()). The
    /// driver should stop the process; a restart loads what is durable.
    bool halted() const noexcept { return halted_; }
    const char* halt_reason() const noexcept { return halt_reason_; }
    /// What a restart found on the storage (empty for a diskless replica).
    journal_state start_state() const noexcept { return start_state_; }
    const char* start_damage() const noexcept { return start_damage_; }
    std::uint64_t checkpoint_durable_op() const noexcept { return checkpoint_durable_op_; }
    /// Something waits for flush().
    bool flush_pending() const noexcept { return !halted_ && journal_.dirty(); }
    /// The disk says a recovery is under way: a restart now would recover again.
    bool recovering_on_disk() const noexcept { return journal_.persistent() && journal_.durable().recovering != 0; }
    std::uint64_t storage_syncs() const noexcept { return journal_.syncs(); }
    /// Ops whose prepares this primary sent before they were durable here (emit()) and that are
    /// still not durable: what a crash now would lose here while the backups may hold it.
    std::uint64_t prepared_not_durable() const noexcept {
        if (halted_ || status_ != replica_status::normal || !is_primary()) return 0;
        const std::uint64_t sent = std::min(prepared_early_op_, log_.op());
        const std::uint64_t durable = journal_.durable_op(log_.op());
        return sent > durable ? sent - durable : 0;
    }

    // ---- introspection (tests, simulator, status reports) ----
    std::uint8_t index() const noexcept { return index_; }
    replica_status status() const noexcept { return status_; }
    std::uint64_t view() const noexcept { return view_; }
    std::uint64_t last_normal_view() const noexcept { return last_normal_view_; }
    std::uint64_t op() const noexcept { return log_.op(); }
    std::uint64_t commit() const noexcept { return commit_max_; }
    std::uint64_t commit_executed() const noexcept { return commit_executed_; }
    bool is_primary() const noexcept { return primary_index(view_) == index_; }
    bool syncing() const noexcept { return sync_.active; }
    const operation_log& log() const noexcept { return log_; }
    /// The latest checkpoint image (op 0 until one is taken or restored). A diskless replica
    /// takes one only to send it; checkpoint_durable_op() says how far the log was compacted.
    const checkpoint_image& checkpoint() const noexcept { return checkpoint_; }
    const client_table& clients() const noexcept { return clients_; }
    const StateMachine& state_machine() const noexcept { return machine_; }
    const replica_counters& counters() const noexcept { return counters_; }
    const config& configuration() const noexcept { return config_; }

    /// Largest result a reply carries: what the state machine promises (result_size_max()), and
    /// never more than a reply message holds. Over it, the result is dropped and the client gets
    /// reply_status::result_too_large; the operation did execute (the state changed everywhere).
    std::size_t result_size_limit() const {
        const std::size_t promised = machine_.result_size_max();
        return std::min(promised, config_.operation_size_max());
    }

    void tick() {
        if (halted_) return;
        advance_image();
        if constexpr (machine_stores_state) {
            if (exporting_ && ++export_idle_ticks_ > config_.ticks(export_idle_ms)) {
                machine_.export_end();
                exporting_ = false;
            }
        }
        prepare_after_compaction();
        switch (status_) {
            case replica_status::normal: tick_normal(); break;
            case replica_status::view_change: tick_view_change(); break;
            case replica_status::recovering: tick_recovering(); break;
        }
    }

    void on_message(std::span<const std::uint8_t> bytes) {
        if (halted_) return;
        header h;
        const decode_error error = decode_message(bytes, config_.cluster, config_.message_size_max, h);
        if (error != decode_error::none) {
            ++counters_.decode_errors[static_cast<std::size_t>(error)];
            return;
        }
        if (!addressed_correctly(h)) {
            ++counters_.dropped_misaddressed;
            return;
        }
        if (h.view >= sequence_max || h.op >= sequence_max || h.commit >= sequence_max) {
            ++counters_.dropped_malformed_body;
            return;
        }
        const auto body = message_body(bytes);
        switch (h.cmd) {
            case command::request: on_request(h, body); break;
            case command::prepare: on_prepare(h, body); break;
            case command::prepare_ok: on_prepare_ok(h); break;
            case command::commit: on_commit(h); break;
            case command::start_view_change: on_start_view_change(h); break;
            case command::do_view_change: on_do_view_change(h, body); break;
            case command::start_view: on_start_view(h, body); break;
            case command::request_start_view: on_request_start_view(h); break;
            case command::recovery: on_recovery(h); break;
            case command::recovery_response: on_recovery_response(h, body); break;
            case command::get_state: on_get_state(h); break;
            case command::new_state: on_new_state(h, body); break;
            case command::status_request: on_status_request(h); break;
            case command::get_checkpoint: on_get_checkpoint(h, body); break;
            case command::checkpoint_chunk: on_checkpoint_chunk(h, body); break;
            default: ++counters_.dropped_misaddressed; break;
        }
    }

private:
    enum class sync_purpose : std::uint8_t { start_view, view_change_primary, recovery };

    /// Fetching committed entries up to prev_op, after which `suffix_body` attaches.
    struct sync_target {
        bool active = false;
        sync_purpose purpose = sync_purpose::start_view;
        std::uint64_t prev_op = 0;
        std::uint64_t op = 0;
        std::uint64_t commit = 0;
        std::uint8_t source = 0;
        std::vector<std::uint8_t> suffix_body;
    };

    struct do_view_change_record {
        bool present = false;
        std::uint64_t last_normal_view = 0;
        std::uint64_t op = 0;
        std::uint64_t commit = 0;
        std::vector<std::uint8_t> suffix_body;  // empty for our own record
    };

    struct recovery_record {
        bool present = false;
        std::uint64_t view = 0;
        std::uint64_t op = 0;
        std::uint64_t commit = 0;
        std::vector<std::uint8_t> suffix_body;  // only the primary's response carries one
    };

    struct pending_query {
        std::uint64_t client_id;
        std::uint64_t session;
        std::uint64_t request_number;
        std::uint64_t op;     // answered once executed up to here (our op number at arrival)
        std::uint64_t round;  // ... and once this confirmation round has a quorum
        std::vector<std::uint8_t> operation;
    };

    /// A checkpoint being received, chunk by chunk, in offset order.
    struct checkpoint_transfer {
        std::uint64_t op = 0;  // 0: none
        std::uint64_t view = 0;
        std::uint64_t checksum = 0;
        std::uint64_t image_size = 0;
        std::uint64_t received = 0;        // the image's first bytes, in order
        std::vector<std::uint8_t> bytes;   // what was received; only the head when the machine imports the rest
        std::vector<std::uint8_t> cursor;  // where the last chunk ended in the sender's export
        bool importing = false;            // the machine is importing the state section
    };

    struct held_message {
        bool to_client;
        std::uint64_t target;  // replica index or client id
        std::vector<std::uint8_t> bytes;
        std::uint64_t flushes_before = 0;      // journal flushes begun when it was held
        std::uint64_t client_op = UINT64_MAX;  // a reply: the ops it reflects (emit())
    };

    struct queued_request {
        std::uint64_t client_id;
        std::uint64_t session;
        std::uint64_t request_number;
        request_kind kind;
        std::vector<std::uint8_t> operation;
    };

    // ---- starting ----

    /// memory_storage holds no state, so every diskless replica can share one.
    static memory_storage& diskless_storage() noexcept {
        static memory_storage storage;
        return storage;
    }

    void start_recovery() {
        if (config_.bug == planted_bug::recovering_replica_answers) {
            start_normal_timeout();
            return;
        }
        status_ = replica_status::recovering;
        recovery_nonce_ = random_.next_u64() | 1;
        send_recovery();
    }

    void halt(const char* reason) {
        halted_ = true;
        halt_reason_ = reason;
        held_.clear();
    }

    /// A machine with a store of its own whose store failed: the state is undefined, so the
    /// replica halts (a restart reopens the store, or recovers from the peers if it is damaged).
    bool machine_failed() {
        if constexpr (machine_stores_state) {
            if (machine_.failed()) {
                halt("the state machine's store failed");
                return true;
            }
        }
        return false;
    }

    /// What a machine with a store of its own found there (machine_stores_state only).
    struct stored_checkpoint {
        stored_state state = stored_state::empty;
        std::uint64_t op = 0;
        std::vector<std::uint8_t> record;  // the image's head: header and client table
    };

    /// A persistent replica: rejoin with what the disk holds, or recover from the peers when it
    /// holds nothing trustworthy (lost, damaged, or a recovery that never finished).
    void start_from_storage(bool recovering) {
        journal_contents contents;
        start_state_ = journal_.load(contents);
        start_damage_ = contents.damage;
        stored_checkpoint stored;
        if constexpr (machine_stores_state) stored.state = machine_.open_stored(stored.op, stored.record);
        switch (start_state_) {
            case journal_state::foreign: halt(contents.damage); return;
            case journal_state::empty:
                if (!recovering) {
                    // A new cluster's replica: the first flush formats the disk. A store left
                    // beside an empty journal belongs to nothing it promised.
                    if (!clear_machine_store(stored)) return;
                    journal_.format();
                    start_normal_timeout();
                    return;
                }
                break;
            case journal_state::damaged:
                if (config_.bug == planted_bug::damaged_replica_votes && restore_from_storage(contents, stored)) {
                    rejoin();
                    return;
                }
                break;
            case journal_state::loaded:
                if (contents.durable.recovering != 0) break;
                if (!restore_from_storage(contents, stored)) {
                    start_state_ = journal_state::damaged;
                    start_damage_ = "the checkpoint on disk does not restore";
                    break;
                }
                rejoin();
                execute_committed_entries();
                return;
        }
        stored.state = stored_state::damaged;  // whatever it holds: recovery replaces it
        if (!clear_machine_store(stored)) return;
        journal_.restart_empty();  // nothing was restored: the state is still the empty one
        start_recovery();
    }

    /// Empties the machine's store unless it is empty already; false (halted) if that failed.
    bool clear_machine_store(const stored_checkpoint& stored) {
        if constexpr (machine_stores_state) {
            if (stored.state != stored_state::empty && !machine_.clear_stored()) {
                halt("the state machine's store failed");
                return false;
            }
        }
        (void)stored;
        return true;
    }

    bool restore_from_storage(journal_contents& contents, stored_checkpoint& stored) {
        if constexpr (machine_stores_state) return restore_from_machine_store(contents, stored);
        (void)stored;
        const superblock& durable = contents.durable;
        if (durable.checkpoint_op != 0) {
            checkpoint_contents image;
            client_table clients(config_.clients_max);
            if (!decode_checkpoint(contents.checkpoint, image) || !clients.restore(image.clients) ||
                !machine_.restore(image.state)) {
                return false;
            }
            clients_ = std::move(clients);
            checkpoint_ =
                checkpoint_image{durable.checkpoint_op, durable.checkpoint_view, durable.checkpoint_timestamp_ns,
                                 durable.checkpoint_checksum, std::move(contents.checkpoint)};
            timestamp_last_ = durable.checkpoint_timestamp_ns;
        }
        log_.reset(durable.checkpoint_op, durable.checkpoint_view, durable.checkpoint_timestamp_ns);
        for (std::vector<std::uint8_t>& entry : contents.log) {
            timestamp_last_ = std::max(timestamp_last_, read_entry_header(entry).timestamp_ns);
            log_.append(std::move(entry));
        }
        commit_executed_ = checkpoint_durable_op_ = durable.checkpoint_op;
        commit_max_ = std::max(contents.commit, durable.checkpoint_op);
        view_ = durable.view;
        last_normal_view_ = durable.last_normal_view;
        return true;
    }

    /// The machine's store holds the state of its last checkpoint, which is the superblock's or
    /// a later one (the store commits before the superblock names it; a crash may fall between).
    /// The journal's entries after the store's op follow it only if the journal holds the entry
    /// at that op (same op and tag, so the same prefix); otherwise the log restarts after it,
    /// which loses nothing acknowledged: an entry is acknowledged only once durable, and entries
    /// after an op the journal does not hold were never durable. Execution only reaches
    /// committed ops, so the store's state is committed state.
    bool restore_from_machine_store(journal_contents& contents, stored_checkpoint& stored) {
        if constexpr (!machine_stores_state) {
            return false;
        } else {
            const superblock& durable = contents.durable;
            std::uint64_t skip = 0;  // journal entries the store covers already
            if (stored.state == stored_state::loaded) {
                checkpoint_contents head;
                std::uint64_t state_size = 0;
                client_table clients(config_.clients_max);
                if (stored.op < durable.checkpoint_op || !decode_checkpoint_head(stored.record, head, state_size) ||
                    head.op != stored.op || !clients.restore(head.clients)) {
                    return false;
                }
                const std::uint64_t image_checksum = vsr::checksum(stored.record, machine_.digest());
                if (stored.op == durable.checkpoint_op && image_checksum != durable.checkpoint_checksum &&
                    config_.bug != planted_bug::restore_unchecked_checkpoint) {
                    return false;
                }
                clients_ = std::move(clients);
                checkpoint_ = checkpoint_image{
                    stored.op, head.view, head.timestamp_ns, image_checksum, std::move(stored.record), state_size};
                skip = stored.op - durable.checkpoint_op;
            } else if (stored.state != stored_state::empty || durable.checkpoint_op != 0) {
                return false;  // damaged, or behind the checkpoint the superblock names
            }
            log_.reset(checkpoint_.op, checkpoint_.view, checkpoint_.timestamp_ns);
            timestamp_last_ = checkpoint_.timestamp_ns;
            const bool attach = skip == 0 || (skip <= contents.log.size() &&
                                              read_entry_header(contents.log[skip - 1]).view == checkpoint_.view);
            if (attach) {
                for (std::size_t i = skip; i < contents.log.size(); ++i) {
                    timestamp_last_ = std::max(timestamp_last_, read_entry_header(contents.log[i]).timestamp_ns);
                    log_.append(std::move(contents.log[i]));
                }
            }
            commit_executed_ = checkpoint_durable_op_ = checkpoint_.op;
            commit_max_ = std::max(contents.commit, checkpoint_.op);
            view_ = durable.view;
            last_normal_view_ = durable.last_normal_view;
            if (skip > 0) {
                // The superblock catches up with the store at the next flush.
                ++counters_.store_ahead_at_start;
                counters_.store_ahead_log_restarted += attach ? 0 : 1;
                if (attach) {
                    for (std::uint64_t i = 0; i < skip; ++i) journal_.drop_oldest();
                    journal_.checkpoint(checkpoint_, 0);
                } else {
                    journal_.install(checkpoint_);
                }
            }
            return true;
        }
    }

    /// Back in the view the disk names: a backup carries on in it (its log holds everything it
    /// acknowledged); a primary, whose clients and pipeline are gone, starts the next view; a
    /// replica that was changing views goes on changing.
    void rejoin() {
        if (view_ != last_normal_view_) {
            status_ = replica_status::view_change;
            view_change_timeout_.start(view_change_ticks());
            return;
        }
        if (is_primary()) {
            start_view_change(view_ + 1);
            return;
        }
        start_normal_timeout();
    }

    // ---- helpers ----

    std::uint8_t primary_index(std::uint64_t view) const noexcept {
        return static_cast<std::uint8_t>(view % config_.replica_count);
    }
    std::uint8_t faults_tolerated() const noexcept {
        return static_cast<std::uint8_t>(config_.replica_count - config_.quorum());
    }
    /// Entries up to here are committed and, by log matching, identical on every replica.
    std::uint64_t committed_in_log() const noexcept { return std::min(commit_max_, log_.op()); }

    bool addressed_correctly(const header& h) const noexcept {
        if (h.target != index_) return false;
        if (h.cmd == command::request || h.cmd == command::status_request) return h.sender == address_client;
        if (h.cmd == command::reply || h.cmd == command::eviction || h.cmd == command::status_reply) return false;
        return h.sender < config_.replica_count && h.sender != index_;
    }

    header make_header(command cmd, std::uint8_t target) const noexcept {
        header h;
        h.cmd = cmd;
        h.sender = index_;
        h.target = target;
        h.cluster = config_.cluster;
        h.view = view_;
        h.op = log_.op();
        h.commit = commit_max_;
        return h;
    }

    void send_to_replica(header h, std::span<const std::uint8_t> body) {
        encode_message(h, body, send_buffer_);
        emit(false, h.target, send_buffer_);
    }

    /// A prepare of the primary's own log, in its view: see emit().
    void send_prepare(header h, std::span<const std::uint8_t> entry) {
        assert(h.cmd == command::prepare && is_primary());
        encode_message(h, entry, send_buffer_);
        if (emit(false, h.target, send_buffer_, UINT64_MAX, true) && journal_.durable_op(h.op) < h.op) {
            prepared_early_op_ = std::max(prepared_early_op_, h.op);
        }
    }

    /// Every message leaves through here: at once if nothing is waiting to be durable, else
    /// after flush(). The view is staged first, so no message ever reflects a view (or a log)
    /// the disk does not hold yet. A message to a client that reflects only ops up to
    /// `client_op` (a reply) need not wait for later entries: it leaves at once when those ops
    /// and the view are durable here, a sync earlier on the way back to the client.
    /// A primary's prepare (`prepare`) waits only for the view: the backups sync the entry while
    /// the primary does, so a commit costs one sync on the way, not two. That is safe because
    /// the primary counts itself in a quorum only for ops durable here (update_commit), and a
    /// primary that restarts never leads its old view again (rejoin): an entry it loses in a
    /// crash before its sync is never replaced by another one with the same view and op.
    /// True if the message left now, false if it waits for flush().
    bool emit(bool to_client, std::uint64_t target, std::span<const std::uint8_t> message,
              std::uint64_t client_op = UINT64_MAX, bool prepare = false) {
        journal_.set_view(view_, last_normal_view_);
        const bool durable = to_client ? journal_.durable_through(client_op)
                             : prepare ? !journal_.dirty() || journal_.view_durable(view_, last_normal_view_)
                                       : !journal_.dirty();
        if (durable || config_.bug == planted_bug::ack_before_durable) {
            if (to_client) {
                bus_.send_to_client(target, message);
            } else {
                bus_.send_to_replica(static_cast<std::uint8_t>(target), message);
            }
            return true;
        }
        held_.push_back(held_message{to_client, target, std::vector<std::uint8_t>(message.begin(), message.end()),
                                     journal_flushes_, client_op});
        return false;
    }

    void send_to_other_replicas(header h, std::span<const std::uint8_t> body) {
        for (std::uint8_t r = 0; r < config_.replica_count; ++r) {
            if (r == index_) continue;
            h.target = r;
            if (h.cmd == command::prepare) {
                send_prepare(h, body);
            } else {
                send_to_replica(h, body);
            }
        }
    }

    std::size_t suffix_body_max() const noexcept { return config_.message_size_max - header_size; }

    std::uint32_t view_change_ticks() {
        const std::uint32_t base = config_.ticks(config_.view_change_timeout_ms);
        const std::uint32_t jitter = config_.ticks(config_.view_change_jitter_ms);
        return base + static_cast<std::uint32_t>(uniform_below(random_, jitter + 1));
    }

    void start_normal_timeout() { normal_timeout_.start(view_change_ticks()); }

    // ---- ticks ----

    void tick_normal() {
        if (is_primary()) {
            if (heartbeat_timeout_.tick()) send_commit_heartbeat();
            if (prepare_resend_timeout_.tick()) {
                resend_prepares();
                if (query_round_confirmed_ < query_round_sent_) send_query_round(0xFF);
            }
            return;
        }
        if (normal_timeout_.tick()) {
            start_view_change(view_ + 1);
            return;
        }
        if (retry_timeout_.tick() && (sync_.active || commit_max_ > log_.op())) {
            rotate_state_source();
            state_request_inflight_ = false;
            state_request_retried_ = true;  // ask the others too: the primary may be unable to answer
            request_state();
        }
    }

    void tick_view_change() {
        if (view_change_timeout_.tick()) {
            start_view_change(view_ + 1);
            return;
        }
        if (!retry_timeout_.tick()) return;
        if (awaiting_start_view_) {
            send_to_replica(make_header(command::request_start_view, primary_index(view_)), {});
        } else if (sync_.active) {
            rotate_state_source();
            state_request_inflight_ = false;
            request_state();
        } else {
            send_to_other_replicas(make_header(command::start_view_change, 0), {});
            if (do_view_change_sent_ && !is_primary()) send_do_view_change();
        }
    }

    void tick_recovering() {
        if (!retry_timeout_.tick()) return;
        if (sync_.active) {
            rotate_state_source();
            state_request_inflight_ = false;
            request_state();
        } else {
            send_recovery();
        }
    }

    // ---- normal operation: requests, prepares, commits ----

    void on_request(const header& h, std::span<const std::uint8_t> body) {
        if (status_ != replica_status::normal || !is_primary()) {
            ++counters_.dropped_not_primary;
            return;
        }
        if (h.extra > request_kind_max) {
            ++counters_.dropped_malformed_body;
            return;
        }
        if (body.size() > config_.operation_size_max()) {
            // Every primary refuses it the same way, so the answer is final.
            ++counters_.dropped_malformed_body;
            send_reply_status(h.client_id, h.session, h.request_number, reply_status::too_large);
            return;
        }
        if (commit_executed_ < view_start_op_) {
            ++counters_.dropped_primary_catching_up;
            return;
        }
        auto kind = static_cast<request_kind>(h.extra);
        if (kind == request_kind::query) {
            if (is_query(body)) {
                on_query(h, body);
                return;
            }
            kind = request_kind::operation;  // not read-only after all: order it like any other
        }
        if (!admit_request(h, kind)) return;
        if (request_queue_.size() >= config_.request_queue_max) {
            ++counters_.dropped_request_queue_full;
            return;
        }
        inflight_requests_.insert_or_assign(h.client_id, h.request_number);
        request_queue_.push_back(queued_request{h.client_id, h.session, h.request_number, kind,
                                                std::vector<std::uint8_t>(body.begin(), body.end())});
        // Prepare at once when nothing is in flight (latency). Otherwise let requests gather
        // until the next commit frees the pipeline (throughput: one prepare, many requests).
        if (log_.op() == commit_max_ || request_queue_.size() >= config_.batch_requests_max) flush_requests();
    }

    // ---- queries: answered by the primary without a log entry ----

    bool is_query(std::span<const std::uint8_t> operation) const {
        if constexpr (state_machine_with_queries<StateMachine>) return machine_.is_query(operation);
        return false;
    }

    /// A query waits for two things: a confirmation round started after it arrived (so the
    /// primary still led the view after the query was sent), and execution up to the op number
    /// it arrived at (so it sees every write acknowledged before it). Both only grow in arrival
    /// order, so the queue is served from the front.
    void on_query(const header& h, std::span<const std::uint8_t> body) {
        if (queries_.size() >= config_.request_queue_max) {
            ++counters_.dropped_query_queue_full;  // the client retries
            return;
        }
        queries_.push_back(pending_query{h.client_id, h.session, h.request_number, log_.op(), query_round_sent_ + 1,
                                         std::vector<std::uint8_t>(body.begin(), body.end())});
        if (query_round_confirmed_ == query_round_sent_) start_query_round();
        if (config_.bug == planted_bug::query_without_round) answer_queries();
    }

    void start_query_round() {
        ++query_round_sent_;
        ++counters_.query_rounds;
        if (config_.replica_count == 1) {
            query_round_confirmed_ = query_round_sent_;
            answer_queries();
            return;
        }
        send_query_round(0xFF);
    }

    /// The round's commit message to every backup that has not answered it (target 0xFF), or to one.
    void send_query_round(std::uint8_t only) {
        for (std::uint8_t r = 0; r < config_.replica_count; ++r) {
            if (r == index_ || (only != 0xFF && r != only) || query_round_ack_[r] >= query_round_sent_) continue;
            header h = make_header(command::commit, r);
            h.extra = query_round_sent_;
            send_to_replica(h, {});
        }
    }

    void on_query_round_ack(const header& h) {
        if (h.extra > query_round_sent_) {
            ++counters_.dropped_malformed_body;  // a round we never started
            return;
        }
        query_round_ack_[h.sender] = std::max(query_round_ack_[h.sender], h.extra);
        // The highest round answered by a quorum, counting ourselves.
        std::array<std::uint64_t, replicas_max> acked{};
        for (std::uint8_t r = 0; r < config_.replica_count; ++r)
            acked[r] = r == index_ ? query_round_sent_ : query_round_ack_[r];
        std::sort(acked.begin(), acked.begin() + config_.replica_count, std::greater<>());
        const std::uint64_t confirmed = acked[config_.quorum() - 1];
        if (confirmed <= query_round_confirmed_) return;
        query_round_confirmed_ = confirmed;
        answer_queries();
    }

    /// Answers every query whose round is confirmed and whose op is executed; starts the round
    /// the next waiting query needs.
    void answer_queries() {
        if constexpr (state_machine_with_queries<StateMachine>) {
            const bool skip_round = config_.bug == planted_bug::query_without_round;
            while (!queries_.empty() && (skip_round || queries_.front().round <= query_round_confirmed_) &&
                   queries_.front().op <= commit_executed_) {
                const pending_query& q = queries_.front();
                result_buffer_.clear();
                machine_.query(q.operation, result_buffer_);
                if (machine_failed()) return;
                header reply = make_header(command::reply, address_client);
                reply.status = static_cast<std::uint8_t>(limit_result());
                reply.op = commit_executed_;
                reply.client_id = q.client_id;
                reply.session = q.session;
                reply.request_number = q.request_number;
                reply.extra = reply_index_query;
                encode_message(reply, result_buffer_, send_buffer_);
                emit(true, q.client_id, send_buffer_, commit_executed_);
                ++counters_.queries_answered;
                queries_.pop_front();
            }
        }
        if (!queries_.empty() && queries_.back().round > query_round_sent_ &&
            query_round_confirmed_ == query_round_sent_) {
            start_query_round();
        }
    }

    /// Queries die with the view they arrived in; their clients retry with the next primary.
    void drop_queries() {
        queries_.clear();
        query_round_confirmed_ = query_round_sent_;
    }

    /// Deduplication against the client table and the requests already queued or in flight.
    bool admit_request(const header& h, request_kind kind) {
        const client_session* session = clients_.find(h.client_id);
        const bool deduplicate = config_.bug != planted_bug::skip_client_deduplication;
        if (kind == request_kind::register_session) {
            if (session != nullptr) {
                if (session->request_number == 0)
                    resend_reply(*session);
                else
                    ++counters_.dropped_duplicate_request;
                return false;
            }
        } else {
            if (session == nullptr || session->session != h.session) {
                // Every entry up to commit_executed_ is applied, so a session we do not know
                // that is older than that is gone. A newer one means we are behind: drop.
                if (h.session <= commit_executed_)
                    send_eviction(h.client_id, h.session);
                else
                    ++counters_.dropped_duplicate_request;
                return false;
            }
            if (deduplicate && h.request_number <= session->request_number) {
                if (h.request_number == session->request_number)
                    resend_reply(*session);
                else
                    ++counters_.dropped_duplicate_request;
                return false;
            }
        }
        const auto inflight = inflight_requests_.find(h.client_id);
        if (deduplicate && inflight != inflight_requests_.end() && inflight->second >= h.request_number) {
            ++counters_.dropped_duplicate_request;
            return false;
        }
        return true;
    }

    std::uint64_t next_timestamp() {
        timestamp_last_ = std::max(timestamp_last_ + 1, time_.realtime_ns());
        return timestamp_last_;
    }

    /// The highest op the primary may prepare: one interval and a pipeline past its checkpoint,
    /// so that everything the checkpoint does not cover fits in the log (config::valid).
    std::uint64_t op_prepare_max() const noexcept {
        return compaction_op() + config_.checkpoint_interval + config_.pipeline_max;
    }

    /// How far the log may be compacted: the durable checkpoint, held back while a diskless
    /// replica builds an image at an earlier op for a lagging replica (which follows the image
    /// with the entries after it, so they must stay).
    std::uint64_t compaction_op() const noexcept {
        return image_building_ ? std::min(checkpoint_durable_op_, building_.op) : checkpoint_durable_op_;
    }

    /// Turns queued requests into prepares while the pipeline has room, then commits what a
    /// quorum holds (a lone replica commits at once).
    void flush_requests() {
        prepare_queued();
        update_commit();
    }

    /// Turns queued requests into prepares while the pipeline has room. Under load the queue
    /// grows while the pipeline is full, so batches grow with load.
    void prepare_queued() {
        while (!request_queue_.empty() && log_.op() - commit_max_ < config_.pipeline_max &&
               log_.op() < op_prepare_max()) {
            const std::size_t size_max = config_.entry_size_max();
            entry_builder_.begin(log_.op() + 1, view_, next_timestamp(), batch_size_estimate(size_max));
            while (!request_queue_.empty() && entry_builder_.count() < config_.batch_requests_max &&
                   entry_builder_.size() + request_header_size + request_queue_.front().operation.size() <= size_max) {
                const queued_request& q = request_queue_.front();
                entry_builder_.add(request_record{q.client_id, q.session, q.request_number, q.kind, q.operation});
                request_queue_.pop_front();
            }
            assert(entry_builder_.count() > 0);
            const bool appended = append_entry(entry_builder_.finish());
            assert(appended);  // op_prepare_max() leaves room
            (void)appended;
            send_to_other_replicas(make_header(command::prepare, 0), log_.entry(log_.op()));
        }
    }

    /// Bytes the next entry will take (at most size_max), so it is allocated once.
    std::size_t batch_size_estimate(std::size_t size_max) const noexcept {
        std::size_t size = entry_header_size;
        std::uint32_t count = 0;
        for (const queued_request& q : request_queue_) {
            const std::size_t next = size + request_header_size + q.operation.size();
            if (next > size_max || count == config_.batch_requests_max) break;
            size = next;
            ++count;
        }
        return size;
    }

    void on_prepare(const header& h, std::span<const std::uint8_t> body) {
        if (!accept_from_primary(h)) return;
        if (is_primary()) {
            ++counters_.dropped_misaddressed;
            return;
        }
        normal_timeout_.reset();
        if (sync_.active) return;  // cannot acknowledge until the start_view log is complete
        if (!validate_entry(body, config_.entry_size_max()) || read_entry_header(body).op != h.op ||
            read_entry_header(body).view > h.view) {
            ++counters_.dropped_malformed_body;
            return;
        }
        commit_max_ = std::max(commit_max_, h.commit);
        if (h.op == log_.op() + 1) {
            execute_committed_entries();  // a checkpoint it reaches frees room in the log
            // Not acknowledged if it does not fit: the primary resends it.
            if (!append_entry(std::vector<std::uint8_t>(body.begin(), body.end()))) return;
            send_prepare_ok(log_.op());
        } else if (h.op > log_.op() + 1) {
            if (config_.bug == planted_bug::accept_prepare_out_of_order) {
                send_prepare_ok(h.op);  // claims ops it does not hold
            } else if (commit_max_ > log_.op()) {
                request_state();
            } else {
                send_prepare_ok(log_.op());  // tells the primary where to resend from
            }
        } else {
            send_prepare_ok(log_.op());  // duplicate: re-acknowledge
        }
        execute_committed();
    }

    /// Common checks for prepare and commit: right view, from its primary, and we are in it.
    bool accept_from_primary(const header& h) {
        if (status_ == replica_status::recovering || h.view < view_) {
            ++counters_.dropped_stale_view;
            return false;
        }
        if (h.sender != primary_index(h.view)) {
            ++counters_.dropped_misaddressed;
            return false;
        }
        if (h.view > view_ || status_ == replica_status::view_change) {
            await_start_view(h.view);
            return false;
        }
        return true;
    }

    void send_prepare_ok(std::uint64_t op) {
        header h = make_header(command::prepare_ok, primary_index(view_));
        h.op = op;
        send_to_replica(h, {});
    }

    void on_prepare_ok(const header& h) {
        if (status_ != replica_status::normal || !is_primary() || h.view != view_) {
            ++counters_.dropped_stale_view;
            return;
        }
        ack_op_[h.sender] = std::max(ack_op_[h.sender], std::min(h.op, log_.op()));
        if (h.extra != 0) on_query_round_ack(h);
        update_commit();
    }

    /// The primary's commit number: the highest op held by a quorum, counting itself for what
    /// is durable here (its prepares may leave before its own sync: emit()).
    void update_commit() {
        if (status_ != replica_status::normal || !is_primary()) return;
        std::array<std::uint64_t, replicas_max> held{};
        for (std::uint8_t r = 0; r < config_.replica_count; ++r) {
            held[r] = r == index_ ? journal_.durable_op(log_.op()) : ack_op_[r];
        }
        std::sort(held.begin(), held.begin() + config_.replica_count, std::greater<>());
        std::uint64_t quorum_op = held[config_.quorum() - 1];
        if (config_.bug == planted_bug::commit_without_quorum) quorum_op = log_.op();
        if (quorum_op <= commit_max_) return;
        commit_max_ = quorum_op;
        execute_committed();
        flush_requests();
    }

    void on_commit(const header& h) {
        if (!accept_from_primary(h)) return;
        if (is_primary()) {
            ++counters_.dropped_misaddressed;
            return;
        }
        normal_timeout_.reset();
        commit_max_ = std::max(commit_max_, h.commit);
        execute_committed();
        if (h.extra != 0) {
            // A query round: answering says "still in this view, normal". While syncing our log
            // is incomplete, so we claim no ops (0) but still answer.
            header ack = make_header(command::prepare_ok, primary_index(view_));
            ack.op = sync_.active ? 0 : log_.op();
            ack.extra = h.extra;
            send_to_replica(ack, {});
        }
    }

    void send_commit_heartbeat() { send_to_other_replicas(make_header(command::commit, 0), {}); }

    void resend_prepares() {
        for (std::uint8_t r = 0; r < config_.replica_count; ++r) {
            if (r == index_ || ack_op_[r] >= log_.op()) continue;
            const std::uint64_t first = std::max(ack_op_[r], commit_max_) + 1;
            const std::uint64_t last = std::min(log_.op(), first + config_.pipeline_max - 1);
            for (std::uint64_t op = first; op <= last; ++op) {
                header h = make_header(command::prepare, r);
                h.op = op;
                send_prepare(h, log_.entry(op));
                ++counters_.prepares_resent;
            }
            if (first > last) send_to_replica(make_header(command::commit, r), {});
        }
    }

    // ---- execution and replies ----

    /// Appends an entry, first dropping the oldest entries a checkpoint covers if the log is at
    /// its bound. False (nothing appended, counted) if every entry held is after the checkpoint.
    bool append_entry(std::vector<std::uint8_t> entry) {
        const std::uint64_t droppable = std::min(compaction_op(), commit_executed_);
        while (log_.size() >= config_.log_entries_max && log_.base() < droppable) {
            log_.drop_oldest();
            journal_.drop_oldest();
        }
        if (log_.size() >= config_.log_entries_max) {
            ++counters_.appends_refused_log_full;
            return false;
        }
        timestamp_last_ = std::max(timestamp_last_, read_entry_header(entry).timestamp_ns);
        journal_.append(entry, commit_max_);
        log_.append(std::move(entry));
        return true;
    }

    /// Drops the entries after `op`, on disk too.
    void truncate_log(std::uint64_t op) {
        log_.truncate(op);
        journal_.truncate(op);
    }

    /// Executes every committed entry held, nothing else.
    void execute_committed_entries() {
        if (status_ == replica_status::recovering && !sync_.active) return;
        while (!halted_ && commit_executed_ < committed_in_log()) execute_entry(commit_executed_ + 1);
        if (config_.bug == planted_bug::compact_past_commit) {
            // Reaches the next checkpoint with whatever is prepared, committed or not.
            const std::uint64_t next =
                (commit_executed_ / config_.checkpoint_interval + 1) * config_.checkpoint_interval;
            while (next <= log_.op() && commit_executed_ < next) execute_entry(commit_executed_ + 1);
        }
    }

    void execute_committed() {
        execute_committed_entries();
        if (status_ == replica_status::recovering && !sync_.active) return;
        if (!queries_.empty()) answer_queries();
        if (status_ == replica_status::normal && !is_primary() && !sync_.active && commit_max_ > log_.op()) {
            request_state();
        }
    }

    void execute_entry(std::uint64_t op) {
        const auto entry = log_.entry(op);
        const entry_header eh = read_entry_header(entry);
        request_iterator requests(entry);
        request_record r;
        const bool reply = status_ == replica_status::normal && is_primary();
        for (std::uint32_t index = 0; !halted_ && requests.next(r); ++index) {
            if (!inflight_requests_.empty()) {  // only a primary has any
                const auto inflight = inflight_requests_.find(r.client_id);
                if (inflight != inflight_requests_.end() && inflight->second <= r.request_number) {
                    inflight_requests_.erase(inflight);
                }
            }
            if (r.kind == request_kind::register_session) {
                execute_register(r, op, index, reply);
            } else {
                execute_operation(r, eh, op, index, reply);
            }
        }
        if (halted_) return;
        commit_executed_ = op;
        ++counters_.ops_executed;
        if (op % config_.checkpoint_interval == 0) reached_checkpoint(eh);
    }

    void execute_register(const request_record& r, std::uint64_t op, std::uint32_t index, bool reply) {
        if (clients_.find(r.client_id) != nullptr) return;  // duplicate register: keep the session
        auto evicted = clients_.register_session(r.client_id, op, index);
        if (evicted) {
            ++counters_.sessions_evicted;
            if (reply) send_eviction(evicted->client_id, evicted->session);
        }
        if (reply) resend_reply(*clients_.find(r.client_id));
    }

    void execute_operation(const request_record& r, const entry_header& eh, std::uint64_t op, std::uint32_t index,
                           bool reply) {
        client_session* session = clients_.find_mutable(r.client_id);
        switch (client_table::decide(session, r.session, r.request_number)) {
            case client_table::decision::session_gone:
                if (reply) send_eviction(r.client_id, r.session);  // evicted while in flight
                return;
            case client_table::decision::duplicate:
                // Already executed (defence in depth; admission should prevent this).
                if (config_.bug != planted_bug::skip_client_deduplication) return;
                break;
            case client_table::decision::execute: break;
        }
        result_buffer_.clear();
        const operation_context context{op, index, eh.timestamp_ns, r.client_id};
        machine_.execute(context, r.operation, result_buffer_);
        if (machine_failed()) return;  // no answer: the result says nothing
        const reply_status outcome = limit_result();
        client_table::record_reply(*session, r.request_number, op, index, result_buffer_, outcome);
        if (reply) resend_reply(*session);
    }

    /// Enforces result_size_limit() on result_buffer_. Every replica executes alike, so all drop
    /// the same results and record the same status; retries resend it.
    reply_status limit_result() {
        if (result_buffer_.size() <= result_size_limit()) return reply_status::ok;
        ++counters_.results_too_large;
        result_buffer_.clear();
        return reply_status::result_too_large;
    }

    /// Sends the session's latest reply (the first send and every retry are identical).
    void resend_reply(const client_session& s) {
        header h = make_header(command::reply, address_client);
        h.op = s.reply_op;
        h.client_id = s.client_id;
        h.session = s.session;
        h.request_number = s.request_number;
        h.extra = s.reply_index;
        h.status = static_cast<std::uint8_t>(s.reply_outcome);
        encode_message(h, s.reply, send_buffer_);
        emit(true, s.client_id, send_buffer_, s.reply_op);
        ++counters_.replies_resent;
    }

    void send_reply_status(std::uint64_t client_id, std::uint64_t session, std::uint64_t request_number,
                           reply_status status) {
        header h = make_header(command::reply, address_client);
        h.client_id = client_id;
        h.session = session;
        h.request_number = request_number;
        h.status = static_cast<std::uint8_t>(status);
        encode_message(h, {}, send_buffer_);
        emit(true, client_id, send_buffer_);
    }

    void send_eviction(std::uint64_t client_id, std::uint64_t session) {
        header h = make_header(command::eviction, address_client);
        h.client_id = client_id;
        h.session = session;
        h.status = static_cast<std::uint8_t>(reply_status::session_evicted);
        encode_message(h, {}, send_buffer_);
        emit(true, client_id, send_buffer_);
    }

    // ---- status (read-only introspection, answered in every status) ----

    void on_status_request(const header& h) {
        status_body s;
        s.status = static_cast<std::uint8_t>(status_);
        s.replica = index_;
        s.is_primary = is_primary() ? 1 : 0;
        s.syncing = sync_.active ? 1 : 0;
        s.view = view_;
        s.last_normal_view = last_normal_view_;
        s.op = log_.op();
        s.commit = commit_max_;
        s.commit_executed = commit_executed_;
        s.clients = clients_.size();
        s.checkpoint_op = checkpoint_durable_op_;
        s.log_entries = log_.size();
        s.log_entries_max = config_.log_entries_max;
        std::array<std::uint8_t, status_body_size> body{};
        encode_status_body(s, body);
        header reply = make_header(command::status_reply, address_client);
        reply.client_id = h.client_id;
        encode_message(reply, body, send_buffer_);
        emit(true, h.client_id, send_buffer_);
        ++counters_.status_requests_answered;
    }

    // ---- view change ----

    void reset_view_change_state() {
        started_view_change_from_.reset();
        do_view_change_sent_ = false;
        awaiting_start_view_ = false;
        view_change_decided_ = false;
        for (auto& record : do_view_changes_) record = do_view_change_record{};
        request_queue_.clear();
        inflight_requests_.clear();
        drop_queries();
        if (sync_.purpose != sync_purpose::recovery) sync_.active = false;
    }

    void start_view_change(std::uint64_t new_view) {
        assert(new_view > view_);
        view_ = new_view;
        status_ = replica_status::view_change;
        reset_view_change_state();
        ++counters_.view_changes_started;
        view_change_timeout_.start(view_change_ticks());
        send_to_other_replicas(make_header(command::start_view_change, 0), {});
        if (is_primary()) record_own_do_view_change();
        if (started_view_change_from_.count() >= faults_tolerated()) send_do_view_change();
    }

    /// We saw traffic of a view we are not normal in: ask its primary for start_view.
    void await_start_view(std::uint64_t view) {
        if (primary_index(view) == index_) {
            // Nobody else can start a view we lead: take part in its view change instead.
            if (view > view_) start_view_change(view);
            return;
        }
        if (view > view_) {
            view_ = view;
            status_ = replica_status::view_change;
            reset_view_change_state();
            view_change_timeout_.start(view_change_ticks());
        }
        if (!awaiting_start_view_) {
            awaiting_start_view_ = true;
            send_to_replica(make_header(command::request_start_view, primary_index(view_)), {});
        }
    }

    void on_start_view_change(const header& h) {
        if (status_ == replica_status::recovering || h.view < view_) {
            ++counters_.dropped_stale_view;
            return;
        }
        if (h.view > view_) start_view_change(h.view);
        if (status_ != replica_status::view_change || awaiting_start_view_) return;
        started_view_change_from_.set(h.sender);
        if (!do_view_change_sent_ && started_view_change_from_.count() >= faults_tolerated()) {
            send_do_view_change();
        }
    }

    void send_do_view_change() {
        do_view_change_sent_ = true;
        if (is_primary()) {
            maybe_complete_view_change();
            return;
        }
        header h = make_header(command::do_view_change, primary_index(view_));
        h.extra = last_normal_view_;
        const std::uint64_t prev_op = committed_in_log();
        const std::uint64_t last = log_.encode_suffix(prev_op, log_.op(), suffix_body_max(), suffix_buffer_);
        assert(last == log_.op());  // the uncommitted suffix is at most pipeline_max entries
        (void)last;
        send_to_replica(h, suffix_buffer_);
    }

    void record_own_do_view_change() {
        do_view_change_record& own = do_view_changes_[index_];
        own.present = true;
        own.last_normal_view = last_normal_view_;
        own.op = log_.op();
        own.commit = commit_max_;
        own.suffix_body.clear();
    }

    void on_do_view_change(const header& h, std::span<const std::uint8_t> body) {
        if (status_ == replica_status::recovering || h.view < view_) {
            ++counters_.dropped_stale_view;
            return;
        }
        if (primary_index(h.view) != index_) {
            ++counters_.dropped_misaddressed;
            return;
        }
        if (h.view > view_) start_view_change(h.view);
        if (status_ != replica_status::view_change || view_change_decided_) return;
        log_suffix suffix;
        if (!decode_suffix(body, config_.entry_size_max(), suffix) || h.extra >= h.view ||
            suffix.prev_op != std::min(h.commit, h.op) || suffix.prev_op + suffix.entries.size() != h.op) {
            ++counters_.dropped_malformed_body;
            return;
        }
        do_view_change_record& record = do_view_changes_[h.sender];
        record.present = true;
        record.last_normal_view = h.extra;
        record.op = h.op;
        record.commit = h.commit;
        record.suffix_body.assign(body.begin(), body.end());
        maybe_complete_view_change();
    }

    /// With a quorum of do_view_change records, adopt the best log: highest last normal view,
    /// then highest op (VSR Revisited §4.2).
    void maybe_complete_view_change() {
        std::uint8_t count = 0;
        for (const auto& record : do_view_changes_) count += record.present;
        if (count < config_.quorum() || view_change_decided_ || !do_view_changes_[index_].present) return;
        view_change_decided_ = true;
        std::uint8_t best = index_;
        std::uint64_t commit = 0;
        for (std::uint8_t r = 0; r < config_.replica_count; ++r) {
            const auto& record = do_view_changes_[r];
            if (!record.present) continue;
            commit = std::max(commit, record.commit);
            const auto& current = do_view_changes_[best];
            const bool better =
                config_.bug == planted_bug::view_change_picks_wrong_log
                    ? record.op < current.op
                    : std::pair(record.last_normal_view, record.op) > std::pair(current.last_normal_view, current.op);
            if (better) best = r;
        }
        if (best == index_) {
            finish_view_change(commit);
            return;
        }
        const auto& chosen = do_view_changes_[best];
        adopt_suffix(chosen.suffix_body, sync_purpose::view_change_primary, chosen.op, commit, best);
    }

    void finish_view_change(std::uint64_t commit) {
        status_ = replica_status::normal;
        last_normal_view_ = view_;
        commit_max_ = std::max(commit_max_, commit);
        view_start_op_ = log_.op();
        ack_op_.fill(0);  // timestamp_last_ already covers every entry held (append_entry, install)
        ++counters_.views_started_as_primary;
        for (std::uint8_t r = 0; r < config_.replica_count; ++r) {
            if (r != index_) send_start_view(r);
        }
        execute_committed();
        update_commit();
    }

    void send_start_view(std::uint8_t target) {
        const std::uint64_t prev_op = committed_in_log();
        const std::uint64_t last = log_.encode_suffix(prev_op, log_.op(), suffix_body_max(), suffix_buffer_);
        assert(last == log_.op());
        (void)last;
        send_to_replica(make_header(command::start_view, target), suffix_buffer_);
    }

    void on_request_start_view(const header& h) {
        if (status_ == replica_status::normal && is_primary() && h.view == view_) send_start_view(h.sender);
    }

    void on_start_view(const header& h, std::span<const std::uint8_t> body) {
        if (status_ == replica_status::recovering || h.view < view_) {
            ++counters_.dropped_stale_view;
            return;
        }
        if (h.sender != primary_index(h.view)) {
            ++counters_.dropped_misaddressed;
            return;
        }
        if (h.view == view_ && status_ == replica_status::normal) return;  // already in it
        log_suffix suffix;
        if (!decode_suffix(body, config_.entry_size_max(), suffix) || suffix.prev_op + suffix.entries.size() != h.op ||
            suffix.prev_op > h.commit) {
            ++counters_.dropped_malformed_body;
            return;
        }
        view_ = h.view;
        reset_view_change_state();
        status_ = replica_status::normal;
        start_normal_timeout();
        adopt_suffix(body, sync_purpose::start_view, h.op, h.commit, h.sender);
    }

    // ---- attaching log suffixes, and syncing the committed prefix they need ----

    /// True if a suffix starting after prev_op attaches to our log: we hold prev_op and it is
    /// either committed (so identical everywhere) or carries the same tag (log matching).
    bool suffix_attaches(const log_suffix& s) const noexcept {
        return log_.op() >= s.prev_op && (s.prev_op <= committed_in_log() || log_.matches(s.prev_op, s.prev_view));
    }

    /// Makes our log the sender's up to `op`: attach now if possible, otherwise keep only the
    /// committed prefix and fetch committed entries up to prev_op first.
    void adopt_suffix(std::span<const std::uint8_t> body, sync_purpose purpose, std::uint64_t op, std::uint64_t commit,
                      std::uint8_t source) {
        log_suffix suffix;
        const bool decoded = decode_suffix(body, config_.entry_size_max(), suffix);
        assert(decoded);  // validated by the caller
        (void)decoded;
        sync_.active = true;
        sync_.purpose = purpose;
        sync_.prev_op = suffix.prev_op;
        sync_.op = op;
        sync_.commit = commit;
        sync_.source = source;
        sync_.suffix_body.assign(body.begin(), body.end());
        if (suffix_attaches(suffix)) {
            finish_sync();
            return;
        }
        truncate_log(std::max(committed_in_log(), commit_executed_));
        state_request_inflight_ = false;
        request_state();
    }

    /// Attaches the stored suffix (our log now reaches its prev_op) and completes the purpose.
    void finish_sync() {
        log_suffix suffix;
        const bool decoded = decode_suffix(sync_.suffix_body, config_.entry_size_max(), suffix);
        assert(decoded);
        (void)decoded;
        if (!attach_suffix(suffix, sync_.op)) {
            abandon_sync();
            return;
        }
        sync_.active = false;
        switch (sync_.purpose) {
            case sync_purpose::view_change_primary: finish_view_change(sync_.commit); return;
            case sync_purpose::recovery:
                status_ = replica_status::normal;
                ++counters_.recoveries_completed;
                journal_.set_recovering(false);
                start_normal_timeout();
                [[fallthrough]];
            case sync_purpose::start_view:
                last_normal_view_ = view_;
                commit_max_ = std::max(commit_max_, sync_.commit);
                if (!is_primary()) send_prepare_ok(log_.op());
                execute_committed();
                return;
        }
    }

    /// The suffix we were syncing towards is stale (entries committed since replaced it).
    /// Keep the committed prefix and ask again.
    void abandon_sync() {
        sync_.active = false;
        switch (sync_.purpose) {
            case sync_purpose::start_view:
                // Ask again on the retry timeout, not now: an immediate request could bounce
                // back and forth with a primary that keeps answering the same stale suffix.
                status_ = replica_status::view_change;
                awaiting_start_view_ = true;
                view_change_timeout_.start(view_change_ticks());
                return;
            case sync_purpose::view_change_primary:
                return;  // stay in view_change; the timeout moves on to the next view
            case sync_purpose::recovery:
                for (auto& record : recoveries_) record = recovery_record{};
                recovery_nonce_ = random_.next_u64() | 1;
                send_recovery();
                return;
        }
    }

    /// Appends the suffix's entries after prev_op, keeping ours where the tags agree and
    /// truncating where they differ, then cuts the log at `op`.
    bool attach_suffix(const log_suffix& s, std::uint64_t op) {
        for (std::size_t i = 0; i < s.entries.size(); ++i) {
            const std::uint64_t at = s.prev_op + 1 + i;
            const entry_header eh = read_entry_header(s.entries[i]);
            if (at <= log_.op()) {
                // Below the base a checkpoint covers them: committed, and the tag at the base
                // (compared when reached) vouches for the prefix by log matching.
                if (at < log_.base()) continue;
                if (log_.view_at(at) == eh.view) continue;
                if (at <= committed_in_log()) {
                    ++counters_.dropped_stale_suffix;  // superseded by entries committed since
                    return false;
                }
                truncate_log(at - 1);
            }
            if (!append_entry(std::vector<std::uint8_t>(s.entries[i].begin(), s.entries[i].end()))) return false;
        }
        if (log_.op() > op) {
            if (op < committed_in_log()) {
                ++counters_.dropped_stale_suffix;
                return false;
            }
            truncate_log(op);
        }
        return true;
    }

    // ---- state transfer: committed entries only ----

    void rotate_state_source() {
        sync_.source = static_cast<std::uint8_t>((sync_.source + 1) % config_.replica_count);
        if (sync_.source == index_)
            sync_.source = static_cast<std::uint8_t>((sync_.source + 1) % config_.replica_count);
    }

    /// At most one get_state (or get_checkpoint) in flight; the retry timeout clears the flag
    /// and rotates source.
    void request_state() {
        if (config_.replica_count == 1 || state_request_inflight_) return;
        state_request_inflight_ = true;
        std::uint8_t target = sync_.active || state_request_retried_ ? sync_.source : primary_index(view_);
        if (target == index_) {
            rotate_state_source();
            target = sync_.source;
        }
        if (transfer_.op != 0) {
            request_checkpoint_chunk(target);  // resume where the transfer stands
            return;
        }
        header h = make_header(command::get_state, target);
        h.op = log_.op();
        h.extra = sync_.active ? sync_.prev_op : 0;  // fetch no further than this (0: no limit)
        ++counters_.state_transfer_requests;
        send_to_replica(h, {});
    }

    void on_get_state(const header& h) {
        if (status_ == replica_status::recovering) return;
        if (h.op < log_.base()) {
            // The entries it needs are gone: a checkpoint covers them. Offer an image.
            offer_image(h.sender);
            return;
        }
        const std::uint64_t limit = h.extra == 0 ? committed_in_log() : std::min(h.extra, committed_in_log());
        if (h.op >= limit) return;  // nothing committed to give
        header reply = make_header(command::new_state, h.sender);
        reply.op = log_.encode_suffix(h.op, limit, suffix_body_max(), suffix_buffer_,
                                      [this](std::uint64_t op, std::vector<std::uint8_t>& scratch) {
                                          ++counters_.entries_read_from_journal;
                                          if (journal_.read_entry(op, scratch))
                                              return std::span<const std::uint8_t>(scratch);
                                          ++counters_.journal_entries_unreadable;
                                          return std::span<const std::uint8_t>();
                                      });
        if (reply.op == h.op) return;  // the first entry could not be read: let another replica answer
        reply.commit = committed_in_log();
        send_to_replica(reply, suffix_buffer_);
    }

    /// Syncing, or a backup that knows of commits past its log.
    bool state_wanted() const noexcept {
        return sync_.active || (status_ == replica_status::normal && !is_primary() && commit_max_ > log_.op());
    }

    void on_new_state(const header& h, std::span<const std::uint8_t> body) {
        if (!state_wanted()) return;
        state_request_inflight_ = false;
        log_suffix suffix;
        if (!decode_suffix(body, config_.entry_size_max(), suffix) || suffix.prev_op + suffix.entries.size() != h.op ||
            h.op > h.commit) {
            ++counters_.dropped_malformed_body;
            return;
        }
        if (!sync_.active && h.view > view_) {
            // Entries committed in a later view may replace uncommitted ones of ours that the
            // primary of our view still counts on: join the later view instead.
            await_start_view(h.view);
            return;
        }
        if (suffix.prev_op != log_.op() || suffix.entries.empty()) return;  // stale answer
        if (!suffix_attaches(suffix)) {
            // Our last entries were never committed and differ from the committed ones.
            truncate_log(std::max(committed_in_log(), commit_executed_));
            request_state();
            return;
        }
        // While syncing, take nothing past prev_op: beyond it the stored suffix decides.
        const std::size_t take = sync_.active
                                     ? std::min<std::uint64_t>(suffix.entries.size(), sync_.prev_op - suffix.prev_op)
                                     : suffix.entries.size();
        std::size_t taken = 0;
        for (; taken < take; ++taken) {
            const auto entry = suffix.entries[taken];
            if (!append_entry(std::vector<std::uint8_t>(entry.begin(), entry.end()))) break;
            commit_max_ = std::max(commit_max_, log_.op());  // everything we now hold is committed
            execute_committed_entries();                     // checkpoints on the way make room
        }
        counters_.entries_transferred += taken;
        if (taken > 0) state_request_retried_ = false;
        if (commit_executed_ >= transfer_.op) drop_transfer();  // entries got us past it
        execute_committed();
        if (sync_.active && log_.op() >= sync_.prev_op) {
            finish_sync();
        } else if (sync_.active || commit_max_ > log_.op()) {
            request_state();
        }
    }

    // ---- checkpoints ----

    /// Executed a multiple of checkpoint_interval: the log may drop what this op covers. A
    /// persistent replica builds the image now, and the log behind it goes once the image is
    /// durable (the journal reuses slots only behind a durable one); a diskless one only needs an
    /// image when a lagging replica asks for one (image_for_transfer), so it builds none here.
    void reached_checkpoint(const entry_header& eh) {
        ++counters_.checkpoints;
        if constexpr (machine_stores_state) {
            store_checkpoint(eh);
            return;
        }
        if (!journal_.persistent()) {
            checkpoint_durable_op_ = eh.op;
            return;
        }
        start_image(eh.op, eh.view, eh.timestamp_ns);
    }

    /// A machine with a store of its own commits the store, with the image's head (header and
    /// client table) as its record: its cost follows what changed since the last checkpoint,
    /// whatever the size of the state. The commit is durable when store_checkpoint returns, so
    /// a persistent replica's superblock names it at the next flush (and the log behind it may
    /// go then); a diskless replica's log may drop what it covers at once. The image's state
    /// section stays in the store, from which transfers export it.
    void store_checkpoint(const entry_header& eh) {
        checkpoint_image image;
        image.op = eh.op;
        image.view = eh.view;
        image.timestamp_ns = eh.timestamp_ns;
        begin_checkpoint(eh.op, eh.view, eh.timestamp_ns, image.bytes);
        append_client_table(image.bytes);
        const std::size_t clients_end = image.bytes.size();
        if constexpr (machine_stores_state) {
            image.machine_state_size = machine_.export_size();
            finish_checkpoint_head(clients_end, image.machine_state_size, image.bytes);
            image.checksum = vsr::checksum(image.bytes, machine_.digest());
            if (!machine_.store_checkpoint(image.op, image.bytes)) {
                halt("the state machine's store failed");
                return;
            }
        }
        ++counters_.checkpoint_images;
        checkpoint_previous_ = std::move(checkpoint_);
        checkpoint_ = std::move(image);
        if (journal_.persistent()) {
            journal_.checkpoint(checkpoint_, 0);
        } else {
            checkpoint_durable_op_ = checkpoint_.op;
        }
    }

    void append_client_table(std::vector<std::uint8_t>& out) const {
        if (config_.bug == planted_bug::checkpoint_without_client_table) {
            client_table(config_.clients_max).snapshot(out);
        } else {
            clients_.snapshot(out);
        }
    }

    /// An image to send a replica behind our log: the latest, if the log still reaches back to
    /// it; else one of the state now (every entry up to it executed, so it is committed) is
    /// started, and nullptr returned until it is built (the lagging replica asks again). A
    /// machine with a store of its own always has the latest checkpoint's in its store.
    const checkpoint_image* image_for_transfer() {
        if constexpr (machine_stores_state) return checkpoint_.op != 0 ? &checkpoint_ : nullptr;
        if (checkpoint_.op != 0 && checkpoint_.op >= log_.base()) return &checkpoint_;
        if (image_building_) return nullptr;
        assert(!journal_.persistent());  // its log never reaches behind its durable checkpoint
        start_image(commit_executed_, log_.view_at(commit_executed_), log_.timestamp_at(commit_executed_));
        return image_building_ ? nullptr : &checkpoint_;
    }

    /// Starts the image of the state after op `op` (executed: commit_executed_ == op). A state
    /// machine with incremental snapshots is serialised config::checkpoint_step_size bytes per
    /// tick, so a large state never stalls the replica for long; the log holds what the image
    /// does not cover until it is durable. Other machines are serialised here at once.
    void start_image(std::uint64_t op, std::uint64_t view, std::uint64_t timestamp_ns) {
        assert(op == commit_executed_);
        if (image_building_) {
            // Reached the next checkpoint before the last image was built (this replica executes
            // faster than it serialises): finish that one first, at once.
            ++counters_.checkpoint_images_hurried;
            while (image_building_ && !halted_) advance_image();
            if (halted_) return;
        }
        if (journal_.persistent() && journal_.checkpoint_pending()) {
            flush_journal();  // the image about to be written goes to the zone a staged one still needs
            if (halted_) return;
        }
        building_.op = op;
        building_.view = view;
        building_.timestamp_ns = timestamp_ns;
        building_.checksum = 0;
        building_written_ = 0;
        building_steps_ = 0;
        // Room for an image the size of the last one, so no step copies the image to grow it.
        building_.bytes.clear();
        building_.bytes.reserve(checkpoint_.bytes.size() + checkpoint_.bytes.size() / 8);
        begin_checkpoint(op, view, timestamp_ns, building_.bytes);
        append_client_table(building_.bytes);
        building_clients_end_ = building_.bytes.size();
        image_building_ = true;
        if constexpr (state_machine_with_incremental_snapshot<StateMachine>) {
            machine_.snapshot_begin();
        }
        advance_image();
    }

    /// One step of the image being built; the last one seals it (sizes, checksum) and makes it
    /// the latest, and a persistent replica stages it for the next flush.
    void advance_image() {
        if (!image_building_) return;
        bool done = true;
        if constexpr (state_machine_with_incremental_snapshot<StateMachine>) {
            done = machine_.snapshot_step(building_.bytes, config_.checkpoint_step_size);
        } else {
            machine_.snapshot(building_.bytes);
        }
        if (journal_.persistent()) {  // written as it grows, synced by each flush on the way
            journal_.write_checkpoint_part(building_written_,
                                           std::span<const std::uint8_t>(building_.bytes).subspan(building_written_));
            building_written_ = building_.bytes.size();
        }
        ++counters_.checkpoint_image_steps;
        ++building_steps_;
        if (!done) return;
        counters_.checkpoint_images_in_steps += building_steps_ > 1;
        image_building_ = false;
        finish_checkpoint(building_clients_end_, building_.bytes);
        building_.checksum = vsr::checksum(building_.bytes);
        ++counters_.checkpoint_images;
        // The previous image stays, so a transfer in progress can finish across one new image;
        // the one before it lends its buffer to the next build.
        std::swap(checkpoint_previous_, checkpoint_);
        std::swap(checkpoint_, building_);
        // Persistent: the log behind it may go once it is durable (flush). Diskless: at once, if
        // the log was held for it (tick calls prepare_after_compaction).
        if (journal_.persistent()) journal_.checkpoint(checkpoint_, checkpoint_header_size);
    }

    /// Makes the journal durable, then sends what waited for it. Safe inside a handler: it
    /// prepares nothing (prepare_after_compaction does, from the top level).
    void flush_journal() {
        if (halted_ || !journal_.dirty()) return;
        ++journal_flushes_;
        if (!journal_.flush()) {
            halt("storage failed");
            return;
        }
        checkpoint_durable_op_ = std::min(checkpoint_.op, journal_.checkpoint_durable_op());
        assert(checkpoint_durable_op_ >= log_.base());
        send_durable_held();
    }

    /// Sends the held messages whose state is durable now: all of them if nothing waits; else
    /// those held before the previous flush began (what they reflect was staged then, and that
    /// flush wrote the last of it, the redundant headers, which this one synced), and replies
    /// whose ops are durable. The rest keep their order.
    void send_durable_held() {
        const bool all = !journal_.dirty();
        std::size_t kept = 0;
        for (held_message& m : held_) {
            const bool durable = all || m.flushes_before + 2 <= journal_flushes_ ||
                                 (m.to_client && journal_.durable_through(m.client_op));
            if (!durable) {
                if (&held_[kept] != &m) held_[kept] = std::move(m);
                ++kept;
            } else if (m.to_client) {
                bus_.send_to_client(m.target, m.bytes);
            } else {
                bus_.send_to_replica(static_cast<std::uint8_t>(m.target), m.bytes);
            }
        }
        held_.resize(kept);
    }

    /// After a flush: acknowledgements that came before our own copies were durable count now.
    /// True if the commit prepared more (they wait for the next flush_journal).
    bool commit_now_durable() {
        if (halted_ || status_ != replica_status::normal || !is_primary()) return false;
        const std::uint64_t op_before = log_.op();
        update_commit();
        return log_.op() != op_before;
    }

    /// Executed entries are durable once flush() synced: the journal serves them, memory need not
    /// hold them. Those executed since the previous flush() stay one flush longer, so whoever
    /// watches the replica (the simulator's checkers) sees every executed entry in memory once.
    void release_executed() {
        if (halted_ || !journal_.persistent()) return;
        log_.release_through(std::min({executed_at_last_flush_, committed_in_log(), journal_.durable_op(log_.op())}));
        executed_at_last_flush_ = commit_executed_;
    }

    /// The log may drop more than when last looked: a primary that stopped at op_prepare_max
    /// prepares what waited. Called at the top level (tick, flush), never inside a handler.
    /// True if it prepared anything.
    bool prepare_after_compaction() {
        if (halted_ || compaction_op() == compaction_seen_) return false;
        compaction_seen_ = compaction_op();
        if (status_ != replica_status::normal || !is_primary()) return false;
        const std::uint64_t op_before = log_.op();
        flush_requests();
        return log_.op() != op_before;
    }

    /// Drops an image being built: the state it was taken of is being replaced.
    void abandon_image() {
        if (!image_building_) return;
        image_building_ = false;
        if constexpr (state_machine_with_incremental_snapshot<StateMachine>) {
            machine_.snapshot_abandon();
        }
    }

    /// Sends the chunk of `image` at `offset`. Past the head of an image whose state the machine
    /// keeps, the bytes come from the machine's export, from `cursor` on. False if the machine no
    /// longer holds that checkpoint (a newer one replaced it): nothing was sent.
    bool send_checkpoint_chunk(std::uint8_t target, const checkpoint_image& image, std::uint64_t offset,
                               std::span<const std::uint8_t> cursor) {
        assert(image.op != 0 && offset <= image.size());
        if (offset < image.bytes.size() || !image.state_in_machine()) {
            encode_checkpoint_chunk(image, offset, suffix_body_max(), suffix_buffer_);
        } else if constexpr (machine_stores_state) {
            export_part_.clear();
            export_cursor_.clear();
            const std::size_t room = suffix_body_max() - checkpoint_chunk_header_size - export_cursor_size_max;
            const export_status status = machine_.export_part(image.op, cursor, room, export_part_, export_cursor_);
            if (machine_failed()) return true;
            if (status == export_status::unavailable) return false;
            exporting_ = true;
            export_idle_ticks_ = 0;
            const bool last = status == export_status::last;
            if (offset + export_part_.size() > image.size() || last != (offset + export_part_.size() == image.size()) ||
                export_cursor_.size() > export_cursor_size_max) {
                halt("the state machine's export does not match its size");
                return true;
            }
            begin_checkpoint_chunk(image, offset, export_cursor_, suffix_buffer_);
            byte_writer(suffix_buffer_).bytes(export_part_);
        }
        send_to_replica(make_header(command::checkpoint_chunk, target), suffix_buffer_);
        ++counters_.checkpoint_chunks_sent;
        return true;
    }

    /// The chunk asked for, if we hold that image (op and checksum); else the start of another.
    void on_get_checkpoint(const header& h, std::span<const std::uint8_t> body) {
        if (status_ == replica_status::recovering || (checkpoint_.op == 0 && commit_executed_ == 0)) return;
        if (body.size() < 8 || body.size() > 8 + export_cursor_size_max) {
            ++counters_.dropped_malformed_body;
            return;
        }
        const std::uint64_t wanted_checksum = load_le64(body.data());
        const auto cursor = body.subspan(8);
        for (const checkpoint_image* image : {&checkpoint_, &checkpoint_previous_}) {
            if (image->op == h.op && image->op != 0 && image->checksum == wanted_checksum) {
                if (h.extra > image->size() || (h.extra > image->bytes.size() && cursor.empty())) {
                    ++counters_.dropped_malformed_body;
                    return;
                }
                if (send_checkpoint_chunk(h.sender, *image, h.extra, cursor)) return;
                break;  // the machine dropped it: offer the latest
            }
        }
        offer_image(h.sender);
    }

    /// Sends the start of an image, or, while one is being built, nothing (the replica asks again).
    void offer_image(std::uint8_t target) {
        if (const checkpoint_image* image = image_for_transfer()) {
            send_checkpoint_chunk(target, *image, 0, {});
        } else {
            ++counters_.checkpoint_requests_deferred;
        }
    }

    void request_checkpoint_chunk(std::uint8_t target) {
        header h = make_header(command::get_checkpoint, target);
        h.op = transfer_.op;
        h.extra = transfer_.received;
        std::vector<std::uint8_t> body(8);
        store_le64(body.data(), transfer_.checksum);
        body.insert(body.end(), transfer_.cursor.begin(), transfer_.cursor.end());
        state_request_inflight_ = true;
        ++counters_.state_transfer_requests;
        send_to_replica(h, body);
    }

    void on_checkpoint_chunk(const header& h, std::span<const std::uint8_t> body) {
        if (!state_wanted()) return;
        checkpoint_chunk chunk;
        if (!decode_checkpoint_chunk(body, config_.checkpoint_size_max, chunk) || chunk.op > h.commit ||
            chunk.view > h.view) {
            ++counters_.dropped_malformed_body;
            return;
        }
        state_request_inflight_ = false;
        if (!sync_.active && h.view > view_) {
            await_start_view(h.view);  // as on_new_state: join the later view first
            return;
        }
        // Useless unless it takes us past what we hold: a checkpoint we are beyond, or whose op we
        // hold with the same tag (then our own entries up to it are the committed ones).
        if (chunk.op <= commit_executed_ || log_.matches(chunk.op, chunk.view)) return;
        const bool same = chunk.op == transfer_.op && chunk.checksum == transfer_.checksum &&
                          chunk.view == transfer_.view && chunk.image_size == transfer_.image_size;
        if (!same) {
            if (chunk.offset != 0 || chunk.op < transfer_.op) return;  // only start a newer one
            drop_transfer();
            transfer_.op = chunk.op;
            transfer_.view = chunk.view;
            transfer_.checksum = chunk.checksum;
            transfer_.image_size = chunk.image_size;
        }
        if (chunk.offset == transfer_.received && !accept_checkpoint_chunk(chunk)) {
            if (machine_failed()) return;
            drop_transfer();
            ++counters_.checkpoints_rejected;
            rotate_state_source();
            return;  // the retry timeout asks again, elsewhere
        }
        if (transfer_.received < transfer_.image_size) {
            request_checkpoint_chunk(h.sender);
            return;
        }
        install_checkpoint();
    }

    /// Takes the chunk at the end of what was received. An image held whole grows in memory; of
    /// an image whose state the machine keeps, only the head does, and the state section goes
    /// to the machine's import. False if the bytes are no image.
    bool accept_checkpoint_chunk(const checkpoint_chunk& chunk) {
        if constexpr (!machine_stores_state) {
            transfer_.bytes.insert(transfer_.bytes.end(), chunk.bytes.begin(), chunk.bytes.end());
            transfer_.received += chunk.bytes.size();
            return true;
        }
        std::span<const std::uint8_t> rest = chunk.bytes;
        while (!rest.empty()) {
            const bool header_known = transfer_.bytes.size() >= checkpoint_header_size;
            const std::uint64_t head_size = header_known ? checkpoint_head_size(transfer_.bytes) : 0;
            if (header_known && (head_size == 0 || head_size > transfer_.image_size)) return false;
            if (!header_known || transfer_.received < head_size) {
                const std::uint64_t want =
                    header_known ? head_size - transfer_.received : checkpoint_header_size - transfer_.bytes.size();
                const std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(want, rest.size()));
                transfer_.bytes.insert(transfer_.bytes.end(), rest.begin(),
                                       rest.begin() + static_cast<std::ptrdiff_t>(take));
                transfer_.received += take;
                rest = rest.subspan(take);
                continue;
            }
            if constexpr (machine_stores_state) {
                if (!transfer_.importing) {
                    machine_.import_begin();
                    transfer_.importing = true;
                }
                if (!machine_.import_part(rest)) return false;
            }
            transfer_.received += rest.size();
            rest = {};
        }
        transfer_.cursor.assign(chunk.cursor.begin(), chunk.cursor.end());
        return true;
    }

    /// Forgets the transfer in progress (and what the machine imported of it).
    void drop_transfer() {
        if constexpr (machine_stores_state) {
            if (transfer_.importing) machine_.import_abandon();
        }
        transfer_ = checkpoint_transfer{};
    }

    /// The transfer is complete: check it, restore it, and carry on from its op.
    void install_checkpoint() {
        checkpoint_transfer received = std::move(transfer_);
        transfer_ = checkpoint_transfer{};
        checkpoint_contents contents;
        client_table clients(config_.clients_max);
        std::uint64_t machine_state_size = 0;
        bool installed = false;
        if constexpr (machine_stores_state) {
            const bool checked = config_.bug == planted_bug::restore_unchecked_checkpoint ||
                                 vsr::checksum(received.bytes, machine_.import_digest()) == received.checksum;
            const bool valid =
                received.importing && checked && decode_checkpoint_head(received.bytes, contents, machine_state_size) &&
                contents.op == received.op && contents.view == received.view &&
                received.bytes.size() + machine_state_size == received.image_size && clients.restore(contents.clients);
            installed = valid && machine_.import_finish(received.op, received.bytes);
            if (!valid && received.importing) machine_.import_abandon();
            if (machine_failed()) return;
        } else {
            const bool checked = config_.bug == planted_bug::restore_unchecked_checkpoint ||
                                 vsr::checksum(received.bytes) == received.checksum;
            const bool valid = checked && decode_checkpoint(received.bytes, contents) && contents.op == received.op &&
                               contents.view == received.view && clients.restore(contents.clients);
            if (valid) abandon_image();  // of the state about to be replaced
            installed = valid && machine_.restore(contents.state);
        }
        if (!installed) {
            ++counters_.checkpoints_rejected;
            rotate_state_source();
            return;  // the retry timeout asks again, elsewhere
        }
        clients_ = std::move(clients);
        log_.reset(contents.op, contents.view, contents.timestamp_ns);
        commit_executed_ = contents.op;
        commit_max_ = std::max(commit_max_, contents.op);
        timestamp_last_ = std::max(timestamp_last_, contents.timestamp_ns);
        checkpoint_previous_ = checkpoint_image{};
        checkpoint_ = checkpoint_image{
            contents.op,       contents.view, contents.timestamp_ns, received.checksum, std::move(received.bytes),
            machine_state_size};
        if (journal_.persistent()) {
            journal_.install(checkpoint_);
        } else {
            checkpoint_durable_op_ = checkpoint_.op;
        }
        ++counters_.checkpoints_restored;
        if (sync_.active && log_.op() >= sync_.prev_op) {
            finish_sync();
        } else if (state_wanted()) {
            request_state();
        }
    }

    // ---- recovery (a restarted replica with empty memory) ----

    void send_recovery() {
        header h = make_header(command::recovery, 0);
        h.extra = recovery_nonce_;
        send_to_other_replicas(h, {});
    }

    void on_recovery(const header& h) {
        if (status_ != replica_status::normal) return;
        header reply = make_header(command::recovery_response, h.sender);
        reply.extra = h.extra;
        if (is_primary()) {
            const std::uint64_t prev_op = committed_in_log();
            log_.encode_suffix(prev_op, log_.op(), suffix_body_max(), suffix_buffer_);
            reply.commit = prev_op;
            send_to_replica(reply, suffix_buffer_);
        } else {
            send_to_replica(reply, {});
        }
    }

    void on_recovery_response(const header& h, std::span<const std::uint8_t> body) {
        if (status_ != replica_status::recovering || sync_.active || h.extra != recovery_nonce_) return;
        const bool from_primary = h.sender == primary_index(h.view);
        log_suffix suffix;
        if (from_primary && (!decode_suffix(body, config_.entry_size_max(), suffix) || suffix.prev_op != h.commit ||
                             suffix.prev_op + suffix.entries.size() != h.op)) {
            ++counters_.dropped_malformed_body;
            return;
        }
        recovery_record& record = recoveries_[h.sender];
        record = recovery_record{true, h.view, h.op, h.commit, {}};
        if (from_primary) record.suffix_body.assign(body.begin(), body.end());
        maybe_finish_recovery();
    }

    /// Needs f + 1 responses, one of them from the primary of the highest view among them.
    void maybe_finish_recovery() {
        std::uint8_t count = 0;
        std::uint64_t view = 0;
        for (const auto& record : recoveries_) {
            if (!record.present) continue;
            ++count;
            view = std::max(view, record.view);
        }
        const recovery_record& primary = recoveries_[primary_index(view)];
        if (count < faults_tolerated() + 1 || !primary.present || primary.view != view) return;
        if (primary.suffix_body.empty()) return;
        view_ = view;
        adopt_suffix(primary.suffix_body, sync_purpose::recovery, primary.op, primary.commit, primary_index(view));
    }

    // ---- state ----

    config config_;
    std::uint8_t index_;
    MessageBus& bus_;
    Time& time_;
    Random& random_;
    journal<Storage> journal_;
    bool halted_ = false;
    const char* halt_reason_ = "";
    journal_state start_state_ = journal_state::empty;
    const char* start_damage_ = "";
    std::vector<held_message> held_;           // sent at flush(), once what they reflect is durable
    std::uint64_t checkpoint_durable_op_ = 0;  // the log may drop entries up to here

    StateMachine machine_;
    client_table clients_;
    operation_log log_;
    replica_status status_ = replica_status::normal;
    std::uint64_t view_ = 0;
    std::uint64_t last_normal_view_ = 0;
    std::uint64_t commit_max_ = 0;       // highest op known to be committed
    std::uint64_t commit_executed_ = 0;  // highest op applied to the state machine
    std::uint64_t timestamp_last_ = 0;

    // primary
    std::uint64_t view_start_op_ = 0;
    std::array<std::uint64_t, replicas_max> ack_op_{};
    std::deque<queued_request> request_queue_;
    std::unordered_map<std::uint64_t, std::uint64_t> inflight_requests_;  // client -> request number
    std::deque<pending_query> queries_;                                   // at most request_queue_max, in arrival order
    std::uint64_t query_round_sent_ = 0;                                  // rounds only grow, across views
    std::uint64_t query_round_confirmed_ = 0;  // highest round a quorum answered (or abandoned)
    std::array<std::uint64_t, replicas_max> query_round_ack_{};
    entry_builder entry_builder_;

    // view change
    std::bitset<replicas_max> started_view_change_from_;
    bool do_view_change_sent_ = false;
    bool awaiting_start_view_ = false;
    bool view_change_decided_ = false;
    std::array<do_view_change_record, replicas_max> do_view_changes_{};

    // recovery and state transfer
    std::uint64_t recovery_nonce_ = 0;
    std::array<recovery_record, replicas_max> recoveries_{};
    sync_target sync_;
    bool state_request_inflight_ = false;
    bool state_request_retried_ = false;        // a request went unanswered: ask others than the primary
    std::uint64_t executed_at_last_flush_ = 0;  // entries up to here may leave memory at the next flush
    std::uint64_t prepared_early_op_ = 0;       // the highest op whose prepare left before its sync here
    std::uint64_t journal_flushes_ = 0;         // begun: held messages wait for the one after theirs
    checkpoint_image checkpoint_;               // the latest: served to lagging replicas
    checkpoint_image checkpoint_previous_;      // the one before, for transfers that started on it
    checkpoint_image building_;                 // being built (image_building_), step by step
    bool image_building_ = false;
    std::uint64_t compaction_seen_ = 0;     // compaction_op() when prepare_after_compaction last looked
    std::size_t building_clients_end_ = 0;  // where the client table ends in building_.bytes
    std::size_t building_written_ = 0;      // bytes of building_ handed to the journal
    std::uint64_t building_steps_ = 0;
    checkpoint_transfer transfer_;  // one being received
    // exporting the state section of a machine with a store of its own
    bool exporting_ = false;
    std::uint64_t export_idle_ticks_ = 0;
    std::vector<std::uint8_t> export_part_;
    std::vector<std::uint8_t> export_cursor_;
    static constexpr std::uint64_t export_idle_ms = 10'000;  // then the store may drop what it kept

    tick_timeout heartbeat_timeout_;
    tick_timeout prepare_resend_timeout_;
    tick_timeout normal_timeout_;
    tick_timeout view_change_timeout_;
    tick_timeout retry_timeout_;

    std::vector<std::uint8_t> send_buffer_;
    std::vector<std::uint8_t> suffix_buffer_;
    std::vector<std::uint8_t> result_buffer_;
    replica_counters counters_;
};

/// The usual instantiation: the library's PRNG as the Random policy.
template <state_machine StateMachine, message_bus MessageBus, time_source Time>
using replica = basic_replica<StateMachine, MessageBus, Time, xoshiro256>;

}  // namespace vsr
