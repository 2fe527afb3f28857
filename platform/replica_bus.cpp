#include "platform/replica_bus.hpp"

#include <string>
#include <utility>

#include "platform/log.hpp"
#include "platform/process.hpp"

namespace platform {

tcp_bus_options replica_bus_options(const vsr::config& config, std::vector<socket_address> addresses,
                                    std::uint8_t index, std::uint64_t seed,
                                    std::function<void(std::span<const std::uint8_t>)> on_message) {
    tcp_bus_options options;
    options.cluster = config.cluster;
    options.replica_addresses = std::move(addresses);
    options.role = bus_role::replica;
    options.replica_index = index;
    options.message_size_max = config.message_size_max;
    options.random_seed = seed ^ 0x5bd1e995;  // not the replica's own stream
    options.on_message = std::move(on_message);
    return options;
}

std::unique_ptr<tcp_message_bus> start_replica_bus(event_loop& loop, tcp_bus_options options) {
    const std::string address = options.replica_index < options.replica_addresses.size()
                                    ? to_string(options.replica_addresses[options.replica_index])
                                    : std::string("(no address)");
    auto bus = std::make_unique<tcp_message_bus>(loop, std::move(options));
    io_error error = io_error::none;
    if (!bus->start(error)) {
        log(log_level::warn, "cannot listen on %s: %s", address.c_str(), std::string(to_string(error)).c_str());
        return nullptr;
    }
    return bus;
}

void run_until_shutdown(event_loop& loop, std::uint64_t turn_ns, const std::function<after_turn_result()>& after_turn) {
    std::uint64_t wait_ns = turn_ns;
    while (!shutdown_requested()) {
        loop.run_once(wait_ns);
        wait_ns = turn_ns;
        if (!after_turn) continue;
        const after_turn_result next = after_turn();
        if (next == after_turn_result::stop) return;
        if (next == after_turn_result::next_turn_at_once) wait_ns = 0;
    }
    log(log_level::info, "%s: shutting down", shutdown_reason());
}

}  // namespace platform
