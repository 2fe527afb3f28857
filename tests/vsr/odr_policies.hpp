// Policies shared by odr_a.cpp and odr_b.cpp, so both translation units instantiate exactly
// the same basic_replica / basic_client specialisations. If any function in include/vsr or the
// KV header were defined in a header without being inline (or a template), linking the two
// objects into one executable would fail with a duplicate symbol.
#pragma once

#include <cstdint>
#include <deque>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kv_state_machine.hpp"
#include "vsr/vsr.hpp"

namespace odr_test {

struct loopback_bus {
    std::deque<std::vector<std::uint8_t>> to_replica;
    std::deque<std::vector<std::uint8_t>> to_client;
    void send_to_replica(std::uint8_t, std::span<const std::uint8_t> message) {
        to_replica.emplace_back(message.begin(), message.end());
    }
    void send_to_client(std::uint64_t, std::span<const std::uint8_t> message) {
        to_client.emplace_back(message.begin(), message.end());
    }
};
static_assert(vsr::message_bus<loopback_bus>);

struct fixed_clock {
    std::uint64_t monotonic_ns() { return 1; }
    std::uint64_t realtime_ns() { return 1; }
};
static_assert(vsr::time_source<fixed_clock>);

using replica = vsr::basic_replica<kv::state_machine, loopback_bus, fixed_clock, vsr::xoshiro256>;
using client = vsr::basic_client<loopback_bus, vsr::xoshiro256>;

/// Puts `value` under `key` through a one-replica cluster and reads it back.
std::string round_trip_a(std::string_view key, std::string_view value);
std::string round_trip_b(std::string_view key, std::string_view value);

}  // namespace odr_test
