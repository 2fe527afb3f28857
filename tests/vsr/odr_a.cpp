// Translation unit a of the header-only ODR check (see odr_policies.hpp).
#include "kv_state_machine.hpp"
#include "vsr/vsr.hpp"

#include "odr_policies.hpp"

namespace odr_test {

std::string round_trip_a(std::string_view key, std::string_view value) {
    vsr::config config;
    config.replica_count = 1;
    loopback_bus bus;
    fixed_clock clock;
    vsr::xoshiro256 replica_random(1);
    vsr::xoshiro256 client_random(2);
    replica node(config, 0, bus, clock, replica_random, false);
    vsr::client_options options;
    options.replica_count = 1;
    client user(options, bus, client_random);

    std::string result = "<no reply>";
    const auto collect = [&result](const vsr::client_result& r) {
        result = std::string(kv::decode_result(r.body).value);
    };
    std::vector<std::uint8_t> operation;
    kv::encode_operation(kv::operation{kv::kind::put, key, value, {}}, operation);
    user.submit(operation, [](const vsr::client_result&) {});
    kv::encode_operation(kv::operation{kv::kind::get, key, {}, {}}, operation);
    user.submit(operation, collect);
    // Single replica: every request commits at once, so a few passes drain everything.
    for (int pass = 0; pass < 100 && (!bus.to_replica.empty() || !bus.to_client.empty()); ++pass) {
        auto to_replica = std::exchange(bus.to_replica, {});
        for (const auto& m : to_replica) node.on_message(m);
        auto to_client = std::exchange(bus.to_client, {});
        for (const auto& m : to_client) user.on_message(m);
    }
    return result;
}

}  // namespace odr_test
