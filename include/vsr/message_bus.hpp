// The MessageBus concept: how a replica or client sends encoded messages.
#pragma once

#include <cstdint>
#include <span>

namespace vsr {

/// Requirements:
/// - send_to_replica(index, message) and send_to_client(client_id, message) take a complete,
///   sealed message. The bus copies what it needs before returning; it may drop the message
///   (full queue, no connection), because the protocol retries.
/// - Sending never calls back into the sender (no re-entrant delivery): delivery happens later,
///   from the driver's loop.
template <typename T>
concept message_bus = requires(T& bus, std::uint8_t replica, std::uint64_t client_id,
                               std::span<const std::uint8_t> message) {
    bus.send_to_replica(replica, message);
    bus.send_to_client(client_id, message);
};

}  // namespace vsr
