// The simulated replica cluster, one for both simulators: the trace ring and its hash, sending
// and delivering VSR messages, the replica fault rolls (crash, partition, clog, pause), heal,
// the run loop and the view check. Each simulator supplies what differs through hooks.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "sim/fault_profile.hpp"
#include "sim/network.hpp"
#include "vsr/random.hpp"

namespace sim {

/// The last Size trace records, and a hash of everything traced (Mix folds a value in).
template <typename Record, std::size_t Size, std::uint64_t (*Mix)(std::uint64_t hash, std::uint64_t value)>
class trace_ring {
public:
    Record& next() { return records_[count_++ % Size]; }
    void mix(std::uint64_t value) { hash_ = Mix(hash_, value); }
    std::uint64_t hash() const { return hash_; }
    template <typename Visit>
    void for_each_tail(Visit visit) const {
        for (std::uint64_t i = count_ > Size ? count_ - Size : 0; i < count_; ++i) visit(records_[i % Size]);
    }

private:
    std::array<Record, Size> records_{};
    std::uint64_t count_ = 0;
    std::uint64_t hash_ = 0;
};

/// The simulator's parts the cluster acts on: its random stream, profile, network and events.
template <typename Kind>
struct replica_cluster {
    vsr::xoshiro256& random;
    const fault_profile& profile;
    vsr_network& network;
    event_queue<Kind>& events;
    std::uint64_t now = 0;
    std::uint32_t replicas = 0;
};

/// A message onto the network: each copy it makes is a deliver event.
template <typename Kind>
void send_message(const replica_cluster<Kind>& c, bool faults_active, std::uint32_t from, std::uint32_t to,
                  std::span<const std::uint8_t> message) {
    auto copy = [&](std::uint64_t delay_ns, std::uint32_t buffer) {
        c.events.push(c.now + delay_ns, Kind::deliver, to, buffer);
    };
    c.network.send(from, to, message, c.now, faults_active, c.random, copy);
}

/// A message arrives: hooks.delivering(to, from, message) traces it; a crashed replica loses it,
/// a paused one holds it, else replica_receive(i, message) or client_receive(c, message).
template <typename Kind, typename Hooks>
void deliver_message(const replica_cluster<Kind>& c, std::uint32_t to, std::uint32_t buffer, Hooks& hooks) {
    const auto message = c.network.message(buffer);
    hooks.delivering(to, c.network.sender(buffer), message);
    if (to >= c.replicas) {
        hooks.client_receive(to - c.replicas, message);
    } else if (hooks.replica_up(to) && hooks.replica_paused(to)) {
        c.network.hold(to, buffer);
        return;
    } else if (hooks.replica_up(to)) {
        hooks.replica_receive(to, message);
    }
    c.network.release(buffer);
}

/// The replica faults of one fault step, drawn in one order: crash, partition, clog, pause.
/// Hooks: impaired_replicas(), replica_up(i), replica_paused(i), crash_replica(i),
/// partition_side(side) (may replace the drawn side), partitioned(side), clogged(),
/// pause_replica(i). A crash ends in a restart, a partition in heal_partition, a pause in resume.
template <typename Kind, typename Hooks>
void roll_replica_faults(const replica_cluster<Kind>& c, Hooks& hooks) {
    const std::uint32_t n = c.replicas;
    const std::uint32_t f = (n - 1) / 2;
    auto roll = [&] { return vsr::chance(c.random, c.profile.fault_per_mille, 1000); };
    auto later = [&](std::uint64_t min_ms, std::uint64_t max_ms) {
        return c.now + vsr::uniform_between(c.random, min_ms, max_ms) * ns_per_ms;
    };
    if (c.profile.crashes && roll() && hooks.impaired_replicas() + 1 <= f) {
        const auto index = static_cast<std::uint32_t>(vsr::uniform_below(c.random, n));
        if (hooks.replica_up(index)) {
            hooks.crash_replica(index);
            c.events.push(later(50, 5'000), Kind::restart, index);
        }
    }
    if (c.profile.partitions && !c.network.partition_active() && roll()) {
        const std::uint64_t side = hooks.partition_side(draw_partition_side(c.random, n));
        c.network.partition(side, c.profile.asymmetric_partitions && vsr::chance(c.random, 1, 2));
        hooks.partitioned(side);
        c.events.push(later(100, 5'000), Kind::heal_partition, 0);
    }
    if (c.profile.clogging && roll()) {
        const auto a = static_cast<std::uint32_t>(vsr::uniform_below(c.random, n));
        const auto b = static_cast<std::uint32_t>(vsr::uniform_below(c.random, n));
        const std::uint64_t delay_ns = vsr::uniform_between(c.random, 10, 800) * ns_per_ms;
        c.network.clog(a, b, later(100, 3'000), delay_ns);
        hooks.clogged();
    }
    if (c.profile.pauses && roll()) {
        const auto index = static_cast<std::uint32_t>(vsr::uniform_below(c.random, n));
        if (hooks.replica_up(index) && !hooks.replica_paused(index)) {
            hooks.pause_replica(index);
            c.events.push(later(20, 3'000), Kind::resume, index);
        }
    }
}

/// A pause ends: hooks.resuming(i) (trace, unpause), the held messages arrive now, then
/// hooks.resumed(i).
template <typename Kind, typename Hooks>
void resume_replica(const replica_cluster<Kind>& c, std::uint32_t index, Hooks& hooks) {
    if (!hooks.replica_paused(index)) return;
    hooks.resuming(index);
    c.network.resume(index, [&](std::uint32_t buffer) { c.events.push(c.now, Kind::deliver, index, buffer); });
    hooks.resumed(index);
}

/// A partition ends: the network whole, then hooks.partition_healed() (trace, other links).
template <typename Kind, typename Hooks>
void heal_partition(const replica_cluster<Kind>& c, Hooks& hooks) {
    c.network.heal_partition();
    hooks.partition_healed();
}

/// Healing: the network whole again, then hooks.healed() (the simulator's own faults end), then
/// every crashed replica restarted and every paused one resumed.
template <typename Kind, typename Hooks>
void heal_replicas(const replica_cluster<Kind>& c, Hooks& hooks) {
    c.network.heal_all();
    hooks.healed();
    for (std::uint32_t i = 0; i < c.replicas; ++i) {
        if (!hooks.replica_up(i)) c.events.push(c.now, Kind::restart, i);
        if (hooks.replica_paused(i)) c.events.push(c.now, Kind::resume, i);
    }
}

/// The run loop: pops events in order, advancing now, while running() and before time_max.
template <typename Kind, typename Running, typename Step>
void run_events(event_queue<Kind>& events, std::uint64_t& now, std::uint64_t time_max, Running running, Step step) {
    while (!events.empty() && running() && now < time_max) {
        const sim_event<Kind> e = events.pop();
        now = e.time;
        step(e);
    }
}

/// Safety: a replica's view never goes back within one incarnation. Returns the failure, if any.
inline std::optional<std::string> check_view(std::uint32_t index, std::uint64_t& last_view, std::uint64_t view) {
    if (view < last_view) {
        return "replica " + std::to_string(index) + " view went back from " + std::to_string(last_view) + " to " +
               std::to_string(view);
    }
    last_view = view;
    return std::nullopt;
}

}  // namespace sim
