// The simulated VSR network, one for every simulator: the clock and bus policies the replicas
// and clients are instantiated with, and the network between them (latency, drops, duplicates,
// delay spikes, partitions, clogged links, a bounded pool of messages in flight). The
// simulator owns the event queue: send() hands it each copy to deliver, with its delay.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <queue>
#include <span>
#include <utility>
#include <vector>

#include "sim/fault_profile.hpp"
#include "vsr/message_bus.hpp"
#include "vsr/random.hpp"
#include "vsr/time.hpp"
#include "vsr/wire.hpp"

namespace sim {

inline constexpr std::uint64_t ns_per_ms = 1'000'000;
inline constexpr std::uint64_t ns_per_us = 1'000;

/// A node's clock: the simulated time with a per-node drift and offset.
struct sim_clock {
    const std::uint64_t* now_ns = nullptr;
    std::int64_t drift_per_mille = 0;
    std::uint64_t offset_ns = 0;
    std::uint64_t monotonic_ns() { return offset_ns + skewed(*now_ns); }
    std::uint64_t realtime_ns() { return 1'700'000'000ULL * 1'000'000'000ULL + offset_ns + skewed(*now_ns); }
    std::uint64_t skewed(std::uint64_t t) const {
        const auto drift = static_cast<std::int64_t>(t / 1000) * drift_per_mille;
        return static_cast<std::uint64_t>(static_cast<std::int64_t>(t) + drift);
    }
};
static_assert(vsr::time_source<sim_clock>);

/// A replica's clock: drifting by up to drift_max_per_mille either way, from a random offset.
inline sim_clock draw_clock(const std::uint64_t* now_ns, std::uint32_t drift_max_per_mille, vsr::xoshiro256& random) {
    const auto drift = static_cast<std::int64_t>(drift_max_per_mille);
    sim_clock clock{now_ns, 0, 0};
    if (drift != 0)
        clock.drift_per_mille = static_cast<std::int64_t>(vsr::uniform_between(random, 0, 2 * drift)) - drift;
    clock.offset_ns = vsr::uniform_below(random, 1'000'000'000);
    return clock;
}

/// Simulated time between ticks of a replica whose clock runs fast or slow: tick_ms of its time.
inline std::uint64_t tick_interval_ns(std::uint32_t tick_ms, const sim_clock& clock) {
    const auto nominal_ns = static_cast<std::int64_t>(tick_ms * ns_per_ms);
    return static_cast<std::uint64_t>(nominal_ns - nominal_ns / 1000 * clock.drift_per_mille);
}

/// A partition's side: a non-empty proper subset of the n replicas, a bit per replica.
inline std::uint64_t draw_partition_side(vsr::xoshiro256& random, std::uint32_t n) {
    std::uint64_t side = 0;
    while (side == 0 || side == (1ULL << n) - 1) side = vsr::uniform_below(random, 1ULL << n);
    return side;
}

/// One event of a simulator, ordered by time, then by when it was scheduled.
template <typename Kind>
struct sim_event {
    std::uint64_t time = 0;
    std::uint64_t seq = 0;
    Kind kind{};
    std::uint32_t a = 0;
    std::uint64_t b = 0;
    bool operator>(const sim_event& other) const { return std::pair(time, seq) > std::pair(other.time, other.seq); }
};

template <typename Kind>
class event_queue {
public:
    void push(std::uint64_t time, Kind kind, std::uint32_t a, std::uint64_t b = 0) {
        events_.push(sim_event<Kind>{time, seq_++, kind, a, b});
    }
    bool empty() const { return events_.empty(); }
    sim_event<Kind> pop() {
        const sim_event<Kind> e = events_.top();
        events_.pop();
        return e;
    }

private:
    std::uint64_t seq_ = 0;
    std::priority_queue<sim_event<Kind>, std::vector<sim_event<Kind>>, std::greater<>> events_;
};

/// A node's message bus: hands messages to the simulation (nodes 0..n-1 are replicas, then
/// clients). Simulation has send(from, to, message), client_node_of(id) and replica_count().
template <typename Simulation>
struct sim_bus {
    Simulation* simulation = nullptr;
    std::uint32_t node = 0;
    void send_to_replica(std::uint8_t replica, std::span<const std::uint8_t> message) {
        if (replica < simulation->replica_count()) simulation->send(node, replica, message);
    }
    void send_to_client(std::uint64_t client_id, std::span<const std::uint8_t> message) {
        const std::uint32_t to = simulation->client_node_of(client_id);
        if (to != UINT32_MAX) simulation->send(node, to, message);
    }
};

class vsr_network {
public:
    vsr_network() = default;
    vsr_network(const fault_profile& profile, std::uint32_t replicas, std::uint32_t clients)
        : profile_(profile), replicas_(replicas), client_cut_(clients) {}

    /// Queues `message` from node `from` to node `to`: dropped, or once or twice (duplicated)
    /// handed to schedule(delay_ns, buffer). Faults apply only while faults_active.
    template <typename Schedule>
    void send(std::uint32_t from, std::uint32_t to, std::span<const std::uint8_t> message, std::uint64_t now_ns,
              bool faults_active, vsr::xoshiro256& random, Schedule&& schedule) {
        const bool between_replicas = from < replicas_ && to < replicas_;
        if (faults_active && (in_flight_ >= profile_.message_pool_max || (between_replicas && blocked_[from][to]) ||
                              client_link_cut(from, to) || vsr::chance(random, profile_.drop_per_mille, 1000))) {
            ++dropped_;
            return;
        }
        const std::uint32_t copies = faults_active && vsr::chance(random, profile_.duplicate_per_mille, 1000) ? 2 : 1;
        duplicated_ += copies - 1;
        for (std::uint32_t copy = 0; copy < copies; ++copy) {
            std::uint64_t delay_ns =
                vsr::uniform_between(random, profile_.latency_min_us, profile_.latency_max_us) * ns_per_us;
            if (faults_active && vsr::chance(random, profile_.delay_spike_per_mille, 1000)) {
                delay_ns += vsr::uniform_below(random, profile_.delay_spike_max_us) * ns_per_us;
            }
            if (between_replicas && clogged_until_[from][to] > now_ns) delay_ns += clog_delay_ns_;
            schedule(delay_ns, store(from, message));
        }
    }

    std::span<const std::uint8_t> message(std::uint32_t buffer) const { return buffers_[buffer]; }
    std::uint32_t sender(std::uint32_t buffer) const { return buffer_from_[buffer]; }
    /// The message was delivered or discarded.
    void release(std::uint32_t buffer) {
        free_buffers_.push_back(buffer);
        --in_flight_;
    }

    /// A paused replica's deliveries wait (still in flight) until it resumes or crashes.
    void hold(std::uint32_t replica, std::uint32_t buffer) { held_[replica].push_back(buffer); }
    /// On resume: hands each held message to deliver(buffer), in arrival order.
    template <typename Deliver>
    void resume(std::uint32_t replica, Deliver&& deliver) {
        for (const std::uint32_t buffer : held_[replica]) deliver(buffer);
        held_[replica].clear();
    }
    /// On a crash: the held messages are lost.
    void drop_held(std::uint32_t replica) {
        for (const std::uint32_t buffer : held_[replica]) release(buffer);
        held_[replica].clear();
    }

    /// Replicas in `side` (a bit per replica) and the rest stop hearing each other (only the
    /// rest stops hearing `side` if one_way).
    void partition(std::uint64_t side, bool one_way) {
        for (std::uint32_t a = 0; a < replicas_; ++a) {
            for (std::uint32_t b = 0; b < replicas_; ++b) {
                const bool a_in = (side >> a) & 1, b_in = (side >> b) & 1;
                if (a_in && !b_in) blocked_[a][b] = true;
                if (!a_in && b_in && !one_way) blocked_[a][b] = true;
            }
        }
        partition_active_ = true;
    }
    /// Client `client` (0-based) is cut off, both ways, from the replicas on the other side.
    void cut_client(std::uint32_t client, std::uint64_t side, bool client_in) {
        for (std::uint32_t r = 0; r < replicas_; ++r) client_cut_[client][r] = (((side >> r) & 1) != 0) != client_in;
    }
    bool client_cut(std::uint32_t client, std::uint32_t replica) const { return client_cut_[client][replica]; }
    /// Messages from a to b are delayed by delay_ns until until_ns.
    void clog(std::uint32_t a, std::uint32_t b, std::uint64_t until_ns, std::uint64_t delay_ns) {
        clogged_until_[a][b] = until_ns;
        clog_delay_ns_ = delay_ns;
    }
    void heal_partition() {
        blocked_ = {};
        for (auto& links : client_cut_) links = {};
        partition_active_ = false;
    }
    void heal_all() {
        heal_partition();
        clogged_until_ = {};
    }
    bool partition_active() const { return partition_active_; }
    std::uint64_t dropped() const { return dropped_; }
    std::uint64_t duplicated() const { return duplicated_; }

private:
    bool client_link_cut(std::uint32_t from, std::uint32_t to) const {
        if (from >= replicas_ && to < replicas_) return client_cut_[from - replicas_][to];
        if (from < replicas_ && to >= replicas_) return client_cut_[to - replicas_][from];
        return false;
    }

    std::uint32_t store(std::uint32_t from, std::span<const std::uint8_t> message) {
        std::uint32_t buffer;
        if (free_buffers_.empty()) {
            buffer = static_cast<std::uint32_t>(buffers_.size());
            buffers_.emplace_back();
            buffer_from_.push_back(0);
        } else {
            buffer = free_buffers_.back();
            free_buffers_.pop_back();
        }
        buffers_[buffer].assign(message.begin(), message.end());
        buffer_from_[buffer] = from;
        ++in_flight_;
        return buffer;
    }

    fault_profile profile_;
    std::uint32_t replicas_ = 0;
    std::vector<std::vector<std::uint8_t>> buffers_;
    std::vector<std::uint32_t> buffer_from_;
    std::vector<std::uint32_t> free_buffers_;
    std::uint32_t in_flight_ = 0;
    std::array<std::vector<std::uint32_t>, vsr::replicas_max> held_;  // per paused replica
    std::array<std::array<bool, vsr::replicas_max>, vsr::replicas_max> blocked_{};
    std::vector<std::array<bool, vsr::replicas_max>> client_cut_;  // [client][replica], both ways
    bool partition_active_ = false;
    std::array<std::array<std::uint64_t, vsr::replicas_max>, vsr::replicas_max> clogged_until_{};
    std::uint64_t clog_delay_ns_ = 0;
    std::uint64_t dropped_ = 0, duplicated_ = 0;
};

}  // namespace sim
