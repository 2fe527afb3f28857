#define BOOST_TEST_MODULE replica_bus
// The header under test comes first: proves it is self-contained.
#include "platform/replica_bus.hpp"

#ifndef BOOST_TEST_DYN_LINK  // meson's boost dependency may define it already
#define BOOST_TEST_DYN_LINK
#endif
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace {

struct counting_replica {
    int messages = 0;
    void on_message(std::span<const std::uint8_t>) { messages++; }
};

BOOST_AUTO_TEST_CASE(options_come_from_the_config_and_the_index) {
    vsr::config config;
    config.cluster = 42;
    config.replica_count = 3;
    config.message_size_max = 2u << 20;
    const std::vector<platform::socket_address> addresses = {{.ipv4_host_order = 0x7f000001, .port = 1},
                                                             {.ipv4_host_order = 0x7f000001, .port = 2},
                                                             {.ipv4_host_order = 0x7f000001, .port = 3}};
    counting_replica* replica = nullptr;
    const platform::tcp_bus_options options =
        platform::replica_bus_options(config, addresses, 2, 9, platform::deliver_to(replica));
    BOOST_CHECK_EQUAL(options.cluster, 42u);
    BOOST_CHECK(options.role == platform::bus_role::replica);
    BOOST_CHECK_EQUAL(options.replica_index, 2);
    BOOST_CHECK_EQUAL(options.replica_addresses.size(), 3u);
    BOOST_CHECK_EQUAL(options.replica_addresses[2].port, 3);
    BOOST_CHECK_EQUAL(options.message_size_max, config.message_size_max);
    BOOST_CHECK(options.random_seed != 9);  // the bus's own stream, not the process seed
    const std::vector<std::uint8_t> message(8);
    options.on_message(message);  // no replica yet: dropped
    counting_replica made;
    replica = &made;
    options.on_message(message);
    BOOST_CHECK_EQUAL(made.messages, 1);
}

BOOST_AUTO_TEST_CASE(a_bus_that_cannot_listen_is_null) {
    platform::event_loop loop;
    std::string error;
    BOOST_REQUIRE(loop.open(error));
    vsr::config config;
    config.replica_count = 1;
    platform::io_error io = platform::io_error::none;
    const platform::socket_handle taken = loop.listen({.ipv4_host_order = 0x7f000001, .port = 0}, 1, io);
    BOOST_REQUIRE(taken != platform::invalid_socket);
    const platform::socket_address address{.ipv4_host_order = 0x7f000001, .port = loop.local_port(taken)};
    BOOST_CHECK(platform::start_replica_bus(loop, platform::replica_bus_options(config, {address}, 0, 1, {})) ==
                nullptr);
    auto bus = platform::start_replica_bus(loop, platform::replica_bus_options(config, {address}, 1, 1, {}));
    BOOST_CHECK(bus == nullptr);  // no such replica
    loop.close(taken);
}

}  // namespace
