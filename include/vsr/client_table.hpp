// The client table: one session per client, updated only when entries are executed, so it is
// identical on every replica and survives view changes (it is part of the replicated state).
//
// A session remembers its client's latest executed request number and the reply, so a retried
// request is answered from the table instead of being executed twice (at-most-once semantics).
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

#include "vsr/bytes.hpp"
#include "vsr/wire.hpp"

namespace vsr {

struct client_session {
    std::uint64_t client_id = 0;
    std::uint64_t session = 0;         // op number of the entry that registered it
    std::uint64_t request_number = 0;  // latest executed; 0 = only the register so far
    std::uint64_t last_active_op = 0;  // for least-recently-active eviction
    std::uint64_t reply_op = 0;        // where the latest request executed
    std::uint32_t reply_index = 0;
    std::vector<std::uint8_t> reply;                // the latest reply body, for retries
    reply_status reply_outcome = reply_status::ok;  // result_too_large: `reply` is empty
};

class client_table {
public:
    explicit client_table(std::uint32_t clients_max) noexcept : clients_max_(clients_max) {}

    const client_session* find(std::uint64_t client_id) const noexcept {
        const auto it = sessions_.find(client_id);
        return it == sessions_.end() ? nullptr : &it->second;
    }

    std::size_t size() const noexcept { return sessions_.size(); }

    enum class decision : std::uint8_t { execute, duplicate, session_gone };

    /// Whether a committed operation request executes: only in its live session, and only if
    /// newer than the session's latest executed request (at-most-once).
    static decision decide(const client_session* s, std::uint64_t session, std::uint64_t request_number) noexcept {
        if (s == nullptr || s->session != session) return decision::session_gone;
        if (request_number <= s->request_number) return decision::duplicate;
        return decision::execute;
    }
    decision decide(std::uint64_t client_id, std::uint64_t session, std::uint64_t request_number) const noexcept {
        return decide(find(client_id), session, request_number);
    }

    client_session* find_mutable(std::uint64_t client_id) noexcept {
        const auto it = sessions_.find(client_id);
        return it == sessions_.end() ? nullptr : &it->second;
    }
    std::uint32_t capacity() const noexcept { return clients_max_; }

    /// Registers `client_id` with session number `op`. At the bound, first evicts the least
    /// recently active session (ties broken by client id, so every replica picks the same) and
    /// returns it so the primary can tell that client.
    std::optional<client_session> register_session(std::uint64_t client_id, std::uint64_t op, std::uint32_t index) {
        std::optional<client_session> evicted;
        if (!sessions_.contains(client_id) && sessions_.size() >= clients_max_) {
            auto oldest = sessions_.begin();
            for (auto it = sessions_.begin(); it != sessions_.end(); ++it) {
                if (std::pair(it->second.last_active_op, it->first) <
                    std::pair(oldest->second.last_active_op, oldest->first)) {
                    oldest = it;
                }
            }
            evicted = std::move(oldest->second);
            sessions_.erase(oldest);
        }
        client_session& s = sessions_[client_id];
        s = client_session{client_id, op, 0, op, op, index, {}, reply_status::ok};
        return evicted;
    }

    /// Records the reply of an executed request, and its status (retries get the same one).
    void record_reply(std::uint64_t client_id, std::uint64_t request_number, std::uint64_t op, std::uint32_t index,
                      std::span<const std::uint8_t> reply, reply_status outcome = reply_status::ok) {
        if (client_session* s = find_mutable(client_id)) record_reply(*s, request_number, op, index, reply, outcome);
    }

    /// Records the reply into a session found earlier (saves a lookup on the hot path).
    static void record_reply(client_session& s, std::uint64_t request_number, std::uint64_t op, std::uint32_t index,
                             std::span<const std::uint8_t> reply, reply_status outcome = reply_status::ok) {
        s.request_number = request_number;
        s.last_active_op = op;
        s.reply_op = op;
        s.reply_index = index;
        s.reply.assign(reply.begin(), reply.end());
        s.reply_outcome = outcome;
    }

    /// Deterministic serialisation (sorted by client id) for snapshots and state comparison.
    void snapshot(std::vector<std::uint8_t>& out) const {
        std::vector<const client_session*> sorted;
        sorted.reserve(sessions_.size());
        for (const auto& [id, s] : sessions_) sorted.push_back(&s);
        std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->client_id < b->client_id; });
        byte_writer w(out);
        w.u64(sorted.size());
        for (const auto* s : sorted) {
            w.u64(s->client_id);
            w.u64(s->session);
            w.u64(s->request_number);
            w.u64(s->last_active_op);
            w.u64(s->reply_op);
            w.u32(s->reply_index);
            w.u32(static_cast<std::uint32_t>(s->reply.size()));
            w.bytes(s->reply);
            w.u8(static_cast<std::uint8_t>(s->reply_outcome));
        }
    }

    /// Replaces the table with a snapshot() of one; false (table unchanged) unless `bytes` is
    /// exactly such a snapshot: sorted unique client ids, at most capacity() sessions, known
    /// statuses.
    bool restore(std::span<const std::uint8_t> bytes) {
        byte_reader r(bytes);
        std::uint64_t count = 0;
        if (!r.read_u64(count) || count > clients_max_) return false;
        std::unordered_map<std::uint64_t, client_session> restored;
        restored.reserve(count);
        std::uint64_t previous_id = 0;
        for (std::uint64_t i = 0; i < count; ++i) {
            client_session s;
            std::uint32_t reply_size = 0;
            std::uint8_t outcome = 0;
            std::span<const std::uint8_t> reply;
            if (!(r.read_u64(s.client_id) && r.read_u64(s.session) && r.read_u64(s.request_number) &&
                  r.read_u64(s.last_active_op) && r.read_u64(s.reply_op) && r.read_u32(s.reply_index) &&
                  r.read_u32(reply_size) && r.read_span(reply_size, reply) && r.read_u8(outcome))) {
                return false;
            }
            if ((i > 0 && s.client_id <= previous_id) ||
                outcome > static_cast<std::uint8_t>(reply_status::result_too_large)) {
                return false;
            }
            previous_id = s.client_id;
            s.reply.assign(reply.begin(), reply.end());
            s.reply_outcome = static_cast<reply_status>(outcome);
            restored.emplace(s.client_id, std::move(s));
        }
        if (r.remaining() != 0) return false;
        sessions_ = std::move(restored);
        return true;
    }

private:
    std::uint32_t clients_max_;
    std::unordered_map<std::uint64_t, client_session> sessions_;
};

}  // namespace vsr
