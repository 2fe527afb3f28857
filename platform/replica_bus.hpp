// The TCP message bus as a replica process uses it: its options from the cluster's vsr::config,
// starting it (or logging why not), and the process's loop until a shutdown is requested. One small
// home for what examples/kv and examples/objectstore both need; a fuller replica runtime (owning
// the replica, its clock and its ticker) is a later design.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "platform/event_loop.hpp"
#include "platform/tcp_message_bus.hpp"
#include "vsr/config.hpp"

namespace platform {

/// Options for replica `index` of the cluster `config` describes: listens on addresses[index],
/// connects to the others (addresses: every replica's, by index), hands messages to on_message.
/// `seed` is the process's; the bus derives its own jitter from it.
tcp_bus_options replica_bus_options(const vsr::config& config, std::vector<socket_address> addresses,
                                    std::uint8_t index, std::uint64_t seed,
                                    std::function<void(std::span<const std::uint8_t>)> on_message);

/// An on_message for replica_bus_options that hands each message to `replica` once it is set (the
/// replica is made after its bus, which it sends through); `replica` must outlive the bus.
template <typename replica_type>
std::function<void(std::span<const std::uint8_t>)> deliver_to(replica_type* const& replica) {
    return [&replica](std::span<const std::uint8_t> message) {
        if (replica != nullptr) replica->on_message(message);
    };
}

/// Makes and starts the bus; when it cannot listen, logs why (warn) and returns null.
std::unique_ptr<tcp_message_bus> start_replica_bus(event_loop& loop, tcp_bus_options options);

/// What run_until_shutdown does after a turn.
enum class after_turn_result {
    next_turn,          // the next turn may wait up to turn_ns for something to happen
    next_turn_at_once,  // work is pending (a replica's flush_pending()): the next turn does not wait
    stop,
};

/// Runs `loop` in turns of at most turn_ns until a shutdown is requested (platform/process.hpp),
/// then logs what requested it. After each turn `after_turn` runs, if given: a persistent replica
/// flushes there, one sync for everything the turn decided (group commit), and asks for the next
/// turn at once while its flush has more to sync.
void run_until_shutdown(event_loop& loop, std::uint64_t turn_ns,
                        const std::function<after_turn_result()>& after_turn = {});

}  // namespace platform
