// Fuzz target: the TCP message bus's handshake and framing (platform/tcp_message_bus.hpp).
//
// Two layers, both on every input:
// - The pure helpers on the input's first bytes: decode_hello (32 bytes) and is_keepalive
//   (80 bytes). A hello that decodes re-encodes to the same bytes; a frame is_keepalive
//   accepts is exactly the one encode_keepalive makes (the format promises "everything else
//   zero").
// - A real tcp_message_bus (replica 2 of 3, so it only accepts, never connects) on a
//   platform::event_loop, listening on loopback. Each input opens one TCP connection to it and
//   sends a byte stream made of segments, running the loop between segments so the bus sees
//   the stream in fuzzer-chosen pieces: raw bytes, a valid hello (replica or client), sealed
//   messages with chosen header fields, keepalives. Then the fuzzer half-closes, waits for the
//   bus to close its side, and resets the connection (no TIME_WAIT, so ports never run out).
// Invariants: every message the bus delivers passes decode_message and carries the identity
// the hello claimed (one sender per connection); after each input the bus holds no connection (closed connections are
// released); nothing crashes. The bus and its loop live across inputs, as in a node.
//
// FUZZ_VERBOSE=1 prints the bus's counters after each input (to see what a corpus reaches).
//
// Deterministic enough for libFuzzer: one thread, loopback, the loop run until the bus has
// closed the connection; only the way the kernel batches bytes may vary between runs.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <memory>
#include <optional>

#include "platform/event_loop.hpp"
#include "platform/tcp_message_bus.hpp"

#include "fuzz_support.hpp"

namespace {

constexpr std::uint32_t cluster = 77;
constexpr std::uint32_t loopback = 0x7f000001;
constexpr std::size_t message_size_max = 64 * 1024;
constexpr std::uint8_t bus_index = 2;

struct delivered {
    std::uint64_t count = 0;
    bool bad = false;
};

struct fixture {
    platform::event_loop loop;
    std::unique_ptr<platform::tcp_message_bus> bus;
    platform::socket_address address;
    delivered seen;
    // The identity claimed by the hello that opened the current connection, if the fuzzer built
    // one (a bus reads one hello per connection; later hello bytes are message bytes to it).
    std::optional<std::uint8_t> claimed_sender;
    // The sender of the first message delivered from the current connection.
    std::optional<std::uint8_t> first_sender;

    fixture() {
        std::string error;
        FUZZ_CHECK(loop.open(error));
        platform::io_error io = platform::io_error::none;
        const platform::socket_handle listener = loop.listen({.ipv4_host_order = loopback, .port = 0}, 128, io);
        FUZZ_CHECK(listener != platform::invalid_socket);
        address = {.ipv4_host_order = loopback, .port = loop.local_port(listener)};
        platform::tcp_bus_options options;
        options.cluster = cluster;
        options.replica_addresses = {{loopback, 1}, {loopback, 2}, address};
        options.replica_index = bus_index;
        options.listen_socket = listener;
        options.message_size_max = message_size_max;
        options.client_connections_max = 4;
        options.tick_ns = 1'000'000;  // closed connections are released on the tick: keep inputs short
        options.on_message = [this](std::span<const std::uint8_t> m) {
            vsr::header h;
            ++seen.count;
            if (vsr::decode_message(m, cluster, message_size_max, h) != vsr::decode_error::none) seen.bad = true;
            if (claimed_sender && h.sender != *claimed_sender) seen.bad = true;
            if (first_sender && h.sender != *first_sender) seen.bad = true;
            first_sender = h.sender;
        };
        bus = std::make_unique<platform::tcp_message_bus>(loop, std::move(options));
        FUZZ_CHECK(bus->start(io));
    }
};

fixture& the_fixture() {
    static fixture* f = new fixture();  // lives for the whole process, like a node's bus
    return *f;
}

void check_helpers(std::span<const std::uint8_t> bytes) {
    if (bytes.size() >= platform::hello_size) {
        const std::span<const std::uint8_t, platform::hello_size> frame(bytes.data(), platform::hello_size);
        platform::hello h;
        if (platform::decode_hello(frame, cluster, h) == platform::hello_error::none) {
            std::array<std::uint8_t, platform::hello_size> again{};
            platform::encode_hello(h, again);
            FUZZ_CHECK(std::equal(again.begin(), again.end(), frame.begin()));
        }
    }
    if (bytes.size() >= vsr::header_size) {
        // As received, and sealed (a checksum only a peer of the cluster computes) with the
        // command byte zeroed: is_keepalive must accept exactly the canonical frame.
        std::array<std::uint8_t, vsr::header_size> sealed{};
        std::copy_n(bytes.begin(), vsr::header_size, sealed.begin());
        sealed[10] = platform::keepalive_command;
        vsr::seal(sealed, cluster);
        for (const std::uint8_t* frame : {bytes.data(), static_cast<const std::uint8_t*>(sealed.data())}) {
            const std::span<const std::uint8_t, vsr::header_size> candidate(frame, vsr::header_size);
            if (!platform::is_keepalive(candidate, cluster)) continue;
            std::array<std::uint8_t, vsr::header_size> canonical{};
            platform::encode_keepalive(cluster, candidate[11], canonical);
            FUZZ_CHECK(std::equal(canonical.begin(), canonical.end(), candidate.begin()));
        }
    }
}

fuzz::bytes make_hello(fuzz::input& in, std::optional<std::uint8_t>& claimed, bool first) {
    platform::hello h;
    h.cluster = in.below(8) == 0 ? cluster + 1 : cluster;
    if (in.boolean()) {
        h.role = platform::hello_role::client;
        h.replica = vsr::address_client;
        h.client_id = in.below(4);
    } else {
        h.role = platform::hello_role::replica;
        h.replica = static_cast<std::uint8_t>(in.below(4));  // 0, 1 are plausible; 2 is us; 3 is out of range
    }
    if (first) claimed = h.role == platform::hello_role::client ? vsr::address_client : h.replica;
    fuzz::bytes out(platform::hello_size);
    platform::encode_hello(h, std::span<std::uint8_t, platform::hello_size>(out.data(), out.size()));
    return out;
}

fuzz::bytes make_message(fuzz::input& in, std::uint8_t claimed) {  // claimed: the usual sender
    vsr::header h;
    h.cmd = static_cast<vsr::command>(in.below(vsr::command_max + 2));
    h.sender = in.below(4) == 0 ? static_cast<std::uint8_t>(in.below(4)) : claimed;
    h.target = in.boolean() ? bus_index : vsr::address_client;
    h.cluster = cluster;
    h.client_id = in.below(4);
    h.view = in.u8();
    const auto body = in.span(1024);
    fuzz::bytes out;
    vsr::encode_message(h, body, out);
    if (in.below(8) == 0) {  // a lie about the body size after sealing
        vsr::store_le32(out.data() + 20, static_cast<std::uint32_t>(in.below(2 * message_size_max)));
    }
    return out;
}

void send_all(int fd, std::span<const std::uint8_t> bytes) {
    while (!bytes.empty()) {
        const ssize_t sent = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (sent <= 0) return;  // the bus closed the connection, or its buffers are full: stop
        bytes = bytes.subspan(static_cast<std::size_t>(sent));
    }
}

/// True once the bus has closed its side (EOF or reset), draining what it sent meanwhile.
bool peer_closed(int fd) {
    std::uint8_t sink[4096];
    for (;;) {
        const ssize_t got = ::recv(fd, sink, sizeof sink, MSG_DONTWAIT);
        if (got == 0) return true;
        if (got < 0) return errno != EAGAIN && errno != EWOULDBLOCK;
    }
}

/// A connection to the bus from the next of 2^16 loopback source addresses (127.1.0.0/16). We
/// close first, so each connection leaves a TIME_WAIT entry on our side for a minute; from one
/// source address the ephemeral ports would run out within seconds at fuzzing speed.
int connect_to(const platform::socket_address& address) {
    static std::uint32_t next_source = 0;
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(address.port);
    to.sin_addr.s_addr = htonl(address.ipv4_host_order);
    for (int attempt = 0; attempt < 16; ++attempt) {
        const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        FUZZ_CHECK(fd >= 0);
        sockaddr_in from{};
        from.sin_family = AF_INET;
        from.sin_addr.s_addr = htonl(0x7f010000u | (next_source++ & 0xFFFFu));
        if (::bind(fd, reinterpret_cast<const sockaddr*>(&from), sizeof from) == 0 &&
            ::connect(fd, reinterpret_cast<const sockaddr*>(&to), sizeof to) == 0) {
            return fd;
        }
        ::close(fd);
    }
    FUZZ_CHECK(!"cannot connect to the bus");
    return -1;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    check_helpers({data, size});
    fixture& f = the_fixture();
    fuzz::input in(data, size);

    const int fd = connect_to(f.address);

    f.claimed_sender.reset();
    f.first_sender.reset();
    for (int segment = 0; segment < 32 && !in.empty(); ++segment) {
        fuzz::bytes bytes;
        switch (in.u8() % 4) {
            case 0: {
                const auto raw = in.span(1024);
                bytes.assign(raw.begin(), raw.end());
                break;
            }
            case 1: bytes = make_hello(in, f.claimed_sender, segment == 0); break;
            case 2: bytes = make_message(in, f.claimed_sender.value_or(vsr::address_client)); break;
            case 3: {
                bytes.resize(vsr::header_size);
                platform::encode_keepalive(cluster, f.claimed_sender.value_or(vsr::address_client),
                                           std::span<std::uint8_t, vsr::header_size>(bytes.data(), bytes.size()));
                break;
            }
        }
        send_all(fd, bytes);
        for (std::size_t i = in.below(4); i > 0; --i) f.loop.run_once(0);
    }
    ::shutdown(fd, SHUT_WR);
    bool closed = false;
    for (int i = 0; i < 2000 && !(closed = peer_closed(fd)); ++i) f.loop.run_once(1'000'000);
    FUZZ_CHECK(closed);
    const linger reset{.l_onoff = 1, .l_linger = 0};
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
    ::close(fd);
    for (int i = 0; i < 2000 && f.bus->status().connections != 0; ++i) f.loop.run_once(1'000'000);
    FUZZ_CHECK(f.bus->status().connections == 0);  // closed connections are released
    FUZZ_CHECK(!f.seen.bad);
    static const bool verbose = std::getenv("FUZZ_VERBOSE") != nullptr;
    if (verbose) {
        const auto& c = f.bus->counters();
        for (std::size_t e = 0; e < vsr::decode_error_count; ++e)
            if (c.decode_errors[e])
                std::fprintf(stderr, "decode_error %s %llu; ", vsr::to_string(static_cast<vsr::decode_error>(e)),
                             static_cast<unsigned long long>(c.decode_errors[e]));
        std::fprintf(stderr, "received %llu, ", static_cast<unsigned long long>(c.messages_received));
        std::fprintf(
            stderr, "delivered %llu, handshakes accepted %llu rejected %llu, keepalives %llu, closed %llu\n",
            static_cast<unsigned long long>(f.seen.count), static_cast<unsigned long long>(c.handshakes_accepted),
            static_cast<unsigned long long>(c.handshakes_rejected),
            static_cast<unsigned long long>(c.keepalives_received), static_cast<unsigned long long>(c.closed_total()));
    }
    return 0;
}
