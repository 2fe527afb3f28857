// basic_client: submits operations to a VSR cluster.
//
// A client owns a fixed number of sessions. Each session has its own random client id, registers
// once (the cluster assigns it a session number), and has at most one request outstanding, so
// the replicated client table can deduplicate by request number. Several sessions give several
// outstanding requests; further submissions wait in a bounded queue.
//
// Leader discovery: the first send goes to the primary of the latest view seen in a reply; a
// retry (after a timeout with exponential backoff and jitter) goes to every replica, and only the
// primary answers. Retries reuse the request number, so a retried request executes at most once.
#pragma once

#include <algorithm>
#include <cassert>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

#include "vsr/message_bus.hpp"
#include "vsr/random.hpp"
#include "vsr/wire.hpp"

namespace vsr {

struct client_options {
    std::uint32_t cluster = 0;
    std::uint8_t replica_count = 3;
    std::size_t message_size_max = 1 << 20;
    /// Concurrent outstanding requests (one session each).
    std::uint32_t sessions = 1;
    /// Submissions waiting for a free session. submit() refuses beyond this.
    std::uint32_t queue_max = 4096;
    std::uint32_t tick_ms = 10;
    std::uint32_t retry_initial_ms = 200;
    std::uint32_t retry_max_ms = 1600;
    /// Give up on a request after this long and report result_status::timeout (its outcome is
    /// then unknown). 0 = never give up.
    std::uint32_t deadline_ms = 0;
};

enum class result_status : std::uint8_t {
    ok,
    timeout,           // deadline passed: the operation may or may not have executed
    session_evicted,   // the session was evicted: the operation may or may not have executed
                       // (it may have run before the eviction with its reply lost)
    too_large,         // larger than the cluster's operation limit; not executed
    result_too_large,  // executed, but its result was over the state machine's result_size_max()
                       // (or the reply limit) and was dropped: body empty; final (a resubmit runs it again)
};

inline const char* to_string(result_status s) noexcept {
    switch (s) {
        case result_status::ok: return "ok";
        case result_status::timeout: return "timeout";
        case result_status::session_evicted: return "session_evicted";
        case result_status::too_large: return "too_large";
        case result_status::result_too_large: return "result_too_large";
    }
    return "unknown";
}

/// Completion of one submitted operation. `body` is valid only during the callback.
struct client_result {
    result_status status = result_status::ok;
    std::uint64_t op = 0;     // log position where it executed (ok only)
    std::uint32_t index = 0;  // index inside that entry's batch (ok only); reply_index_query
                              // for a query answered without a log entry (it read the state
                              // after every request of entry `op`)
    std::span<const std::uint8_t> body;
    // Which session carried it, as (client id, session, request number): with these, a log
    // can tell whether an operation with an unknown outcome executed.
    std::uint64_t client_id = 0;
    std::uint64_t session = 0;
    std::uint64_t request_number = 0;
};

enum class submit_error : std::uint8_t { none, queue_full, too_large };

template <message_bus MessageBus, random_source Random>
class basic_client {
public:
    using callback = std::function<void(const client_result&)>;

    struct counters_type {
        std::uint64_t retries = 0;
        std::uint64_t dropped_messages = 0;  // undecodable or not matching an outstanding request
        std::uint64_t registrations = 0;
        std::uint64_t evictions = 0;
        std::uint64_t timeouts = 0;
    };

    basic_client(const client_options& options, MessageBus& bus, Random& random)
        : options_(options), bus_(bus), random_(random), sessions_(options.sessions) {
        assert(options.sessions >= 1 && options.replica_count >= 1 && options.tick_ms > 0);
        for (std::size_t i = 0; i < sessions_.size(); ++i) {
            std::uint64_t id = 0;
            while (id == 0 || by_client_id_.contains(id)) id = random_.next_u64();
            sessions_[i].client_id = id;
            by_client_id_.emplace(id, i);
            set_state(i, slot_state::unregistered);
        }
    }

    /// The client ids this client receives replies for (one per session).
    std::vector<std::uint64_t> client_ids() const {
        std::vector<std::uint64_t> ids;
        for (const auto& s : sessions_) ids.push_back(s.client_id);
        return ids;
    }
    bool owns(std::uint64_t client_id) const noexcept { return by_client_id_.contains(client_id); }
    std::uint64_t view() const noexcept { return view_; }
    std::size_t outstanding() const noexcept { return queue_.size() + busy_sessions(); }
    const counters_type& counters() const noexcept { return counters_; }

    /// Queues `operation`; `done` runs later, from tick() or on_message(), never from here.
    /// `kind` query: a read-only operation the primary may answer without logging it (if its
    /// state machine agrees it is one; otherwise it runs as an ordinary operation).
    submit_error submit(std::span<const std::uint8_t> operation, callback done,
                        request_kind kind = request_kind::operation) {
        assert(kind != request_kind::register_session);
        if (header_size + operation.size() > options_.message_size_max) return submit_error::too_large;
        if (queue_.size() >= options_.queue_max) return submit_error::queue_full;
        queue_.push_back(
            pending{std::vector<std::uint8_t>(operation.begin(), operation.end()), std::move(done), now_ticks_, kind});
        dispatch();
        return submit_error::none;
    }

    void tick() {
        ++now_ticks_;
        if (options_.deadline_ms != 0) {
            // Operations still queued (waiting for a session, or for it to register) expire too.
            fail_queued(result_status::timeout, [&](const pending& p) { return expired(p.submitted_tick); });
        }
        for (std::size_t i = 0; i < sessions_.size(); ++i) {
            session_slot& s = sessions_[i];
            if (s.state != slot_state::registering && s.state != slot_state::busy) continue;
            if (s.state == slot_state::busy && options_.deadline_ms != 0 && expired(s.submitted_tick)) {
                ++counters_.timeouts;
                complete(i, client_result{result_status::timeout, 0, 0, {}});
                continue;
            }
            if (now_ticks_ >= s.retry_at_tick) {
                ++counters_.retries;
                broadcast(s);
                s.retry_ticks = std::min(s.retry_ticks * 2, ticks(options_.retry_max_ms));
                s.retry_at_tick = now_ticks_ + s.retry_ticks + uniform_below(random_, s.retry_ticks / 2 + 1);
            }
        }
        dispatch();
    }

    void on_message(std::span<const std::uint8_t> bytes) {
        header h;
        if (decode_message(bytes, options_.cluster, options_.message_size_max, h) != decode_error::none ||
            h.target != address_client || h.sender >= options_.replica_count ||
            (h.cmd != command::reply && h.cmd != command::eviction)) {
            ++counters_.dropped_messages;
            return;
        }
        const auto it = by_client_id_.find(h.client_id);
        if (it == by_client_id_.end()) {
            ++counters_.dropped_messages;
            return;
        }
        view_ = std::max(view_, h.view);
        const std::size_t index = it->second;
        session_slot& s = sessions_[index];
        const auto status = static_cast<reply_status>(h.status);
        if (h.cmd == command::eviction || status == reply_status::session_evicted) {
            on_evicted(index, h.session);
        } else if (s.state == slot_state::registering && h.request_number == 0 && status == reply_status::ok &&
                   h.session > s.session_lost) {
            // Only a session newer than the one evicted: a late reply to an earlier registration
            // names a dead session, and reusing it would start its request numbers over, so a
            // stale reply to an old request could be taken for the answer to a new one.
            s.session = h.session;
            set_state(index, slot_state::idle);
            ++counters_.registrations;
        } else if (s.state == slot_state::busy && h.session == s.session && h.request_number == s.request_number &&
                   (status == reply_status::ok || status == reply_status::too_large ||
                    status == reply_status::result_too_large)) {
            const result_status result = status == reply_status::ok          ? result_status::ok
                                         : status == reply_status::too_large ? result_status::too_large
                                                                             : result_status::result_too_large;
            complete(index, client_result{result, h.op, static_cast<std::uint32_t>(h.extra), message_body(bytes)});
        } else {
            ++counters_.dropped_messages;
        }
        dispatch();
    }

private:
    enum class slot_state : std::uint8_t { unregistered, registering, idle, busy };

    struct pending {
        std::vector<std::uint8_t> operation;
        callback done;
        std::uint64_t submitted_tick = 0;
        request_kind kind = request_kind::operation;
    };

    struct session_slot {
        std::uint64_t client_id = 0;
        std::uint64_t session = 0;
        std::uint64_t session_lost = 0;  // the latest session evicted; a new one must be newer
        std::uint64_t request_number = 0;
        slot_state state = slot_state::unregistered;
        std::vector<std::uint8_t> message;  // the encoded request, target patched per send
        callback done;
        std::uint64_t submitted_tick = 0;  // of the operation in flight, for the deadline
        std::uint64_t retry_at_tick = 0;
        std::uint64_t retry_ticks = 0;
        bool listed_idle = false;
        bool listed_unregistered = false;
    };

    std::uint64_t ticks(std::uint32_t ms) const noexcept { return ms / options_.tick_ms + 1; }

    bool expired(std::uint64_t submitted_tick) const noexcept {
        return now_ticks_ - submitted_tick >= ticks(options_.deadline_ms);
    }

    /// Completes every queued operation matching `selected` with `status`. The callbacks run
    /// after the queue is updated, since they may submit again.
    template <typename Predicate>
    void fail_queued(result_status status, Predicate selected) {
        std::vector<callback> failed;
        for (auto it = queue_.begin(); it != queue_.end();) {
            if (!selected(*it)) {
                ++it;
                continue;
            }
            failed.push_back(std::move(it->done));
            it = queue_.erase(it);
        }
        if (status == result_status::timeout) counters_.timeouts += failed.size();
        for (auto& done : failed) {
            if (done) done(client_result{status, 0, 0, {}, 0, 0, 0});
        }
    }

    std::size_t busy_sessions() const noexcept {
        return static_cast<std::size_t>(std::count_if(sessions_.begin(), sessions_.end(),
                                                      [](const auto& s) { return s.state == slot_state::busy; }));
    }

    std::uint8_t primary() const noexcept { return static_cast<std::uint8_t>(view_ % options_.replica_count); }

    /// Moves a session to `state`, keeping the idle and unregistered lists (each slot at most
    /// once per list) so dispatch() never scans every session.
    void set_state(std::size_t index, slot_state state) {
        session_slot& s = sessions_[index];
        if (s.state == slot_state::registering) --registering_;
        s.state = state;
        if (state == slot_state::registering) ++registering_;
        if (state == slot_state::idle && !s.listed_idle) {
            s.listed_idle = true;
            idle_.push_back(index);
        }
        if (state == slot_state::unregistered && !s.listed_unregistered) {
            s.listed_unregistered = true;
            unregistered_.push_back(index);
        }
    }

    /// Pops a session that is still in `state` from `list` (entries may be stale).
    std::optional<std::size_t> pop_listed(std::vector<std::size_t>& list, slot_state state,
                                          bool session_slot::*listed) {
        while (!list.empty()) {
            const std::size_t index = list.back();
            list.pop_back();
            sessions_[index].*listed = false;
            if (sessions_[index].state == state) return index;
        }
        return std::nullopt;
    }

    /// Hands queued operations to idle sessions, and registers sessions for the rest.
    void dispatch() {
        while (!queue_.empty()) {
            const auto index = pop_listed(idle_, slot_state::idle, &session_slot::listed_idle);
            if (!index) break;
            session_slot& s = sessions_[*index];
            pending next = std::move(queue_.front());
            queue_.pop_front();
            s.done = std::move(next.done);
            s.submitted_tick = next.submitted_tick;
            send_new(*index, next.kind, next.operation, s.request_number + 1);
        }
        while (queue_.size() > registering_) {
            const auto index = pop_listed(unregistered_, slot_state::unregistered, &session_slot::listed_unregistered);
            if (!index) break;
            sessions_[*index].session = 0;
            send_new(*index, request_kind::register_session, {}, 0);
        }
    }

    void send_new(std::size_t index, request_kind kind, std::span<const std::uint8_t> operation,
                  std::uint64_t request_number) {
        session_slot& s = sessions_[index];
        header h;
        h.cmd = command::request;
        h.sender = address_client;
        h.cluster = options_.cluster;
        h.view = view_;
        h.client_id = s.client_id;
        h.session = s.session;
        h.request_number = request_number;
        h.extra = static_cast<std::uint64_t>(kind);
        h.target = primary();
        s.request_number = request_number;
        set_state(index, kind == request_kind::register_session ? slot_state::registering : slot_state::busy);
        s.retry_ticks = ticks(options_.retry_initial_ms);
        s.retry_at_tick = now_ticks_ + s.retry_ticks + uniform_below(random_, s.retry_ticks / 2 + 1);
        encode_message(h, operation, s.message);
        bus_.send_to_replica(h.target, s.message);
    }

    /// Retries go to every replica: whoever is primary now answers.
    void broadcast(session_slot& s) {
        for (std::uint8_t r = 0; r < options_.replica_count; ++r) {
            s.message[12] = r;
            seal(s.message, options_.cluster);
            bus_.send_to_replica(r, s.message);
        }
    }

    void on_evicted(std::size_t index, std::uint64_t session) {
        session_slot& s = sessions_[index];
        if (session != s.session || s.state == slot_state::unregistered || s.state == slot_state::registering) {
            ++counters_.dropped_messages;
            return;
        }
        ++counters_.evictions;
        const bool was_busy = s.state == slot_state::busy;
        const client_result result{result_status::session_evicted, 0, 0, {}, s.client_id, s.session, s.request_number};
        callback done = std::move(s.done);
        s.done = nullptr;
        set_state(index, slot_state::unregistered);  // before the callback, which may submit again
        s.session_lost = s.session;
        s.session = 0;
        s.request_number = 0;
        if (was_busy && done) done(result);
    }

    /// Frees the session, then runs the callback (which may submit again).
    void complete(std::size_t index, client_result result) {
        session_slot& s = sessions_[index];
        result.client_id = s.client_id;
        result.session = s.session;
        result.request_number = s.request_number;
        callback done = std::move(s.done);
        s.done = nullptr;
        set_state(index, slot_state::idle);
        if (done) done(result);
    }

    client_options options_;
    MessageBus& bus_;
    Random& random_;
    std::vector<session_slot> sessions_;
    std::unordered_map<std::uint64_t, std::size_t> by_client_id_;
    std::deque<pending> queue_;
    std::vector<std::size_t> idle_;          // sessions ready for an operation (may hold stale entries)
    std::vector<std::size_t> unregistered_;  // sessions to register when work waits
    std::size_t registering_ = 0;
    std::uint64_t view_ = 0;
    std::uint64_t now_ticks_ = 0;
    counters_type counters_;
};

/// The usual instantiation: the library's PRNG as the Random policy.
template <message_bus MessageBus>
using client = basic_client<MessageBus, xoshiro256>;

}  // namespace vsr
