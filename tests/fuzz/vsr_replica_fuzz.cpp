// Fuzz target: a VSR replica and a client (include/vsr/replica.hpp, client.hpp) of the KV state
// machine, fed messages a peer could send. The checksum would stop almost every random message
// at the door, so most messages are built from fuzzer-chosen header fields and bodies and then
// sealed: what is under test is everything after decoding (addressing, views, suffixes, log
// matching, state transfer, the client table, the state machine).
//
// Input: a sequence of steps; each starts with a step byte:
//   0  n ticks (the replica and the client)                1  raw bytes to the replica
//   2  a sealed message to the replica: chosen header, body raw / one log entry / a log suffix
//   3  something the replica or client sent: a request or reply delivered as is, or re-addressed
//      as if another replica had sent it (resealed)
//   4  a sealed reply/eviction/status_reply to the client   5  the client submits a KV operation
// Invariants: no crash, no sanitizer report, the replica's own assertions hold (they are on in
// every build), and everything the replica and client send is a sealed message of the cluster
// with its sender set and addressed where it is sent. Small numbers for views and ops keep the protocol paths
// reachable.
#include <deque>
#include <optional>

#include "kv_state_machine.hpp"
#include "vsr/client.hpp"
#include "vsr/log_entry.hpp"
#include "vsr/replica.hpp"

#include "fuzz_support.hpp"

namespace {

constexpr std::uint32_t cluster = 77;
constexpr std::size_t captured_max = 64;

struct manual_clock {
    std::uint64_t now_ns = 1'700'000'000'000'000'000ULL;
    std::uint64_t monotonic_ns() { return now_ns; }
    std::uint64_t realtime_ns() { return now_ns; }
};
static_assert(vsr::time_source<manual_clock>);

/// Drops every message, keeping the last few so steps can re-address them. Checks what is
/// sent: a sealed message of our cluster, with the sender set (the replica's index, or
/// address_client from the client) and addressed to where it goes.
struct capture_bus {
    std::uint8_t replica_index = 0;
    std::uint8_t replica_count = 0;
    std::deque<fuzz::bytes> captured;
    void keep(std::span<const std::uint8_t> message) {
        if (captured.size() == captured_max) captured.pop_front();
        captured.emplace_back(message.begin(), message.end());
    }
    static vsr::header decoded(std::span<const std::uint8_t> message) {
        vsr::header h;
        FUZZ_CHECK(vsr::decode_message(message, cluster, 1 << 20, h) == vsr::decode_error::none);
        return h;
    }
    void send_to_replica(std::uint8_t replica, std::span<const std::uint8_t> message) {
        FUZZ_CHECK(replica < replica_count);
        const vsr::header h = decoded(message);
        FUZZ_CHECK(h.target == replica);
        FUZZ_CHECK(h.sender == vsr::address_client || (h.sender == replica_index && replica != replica_index));
        keep(message);
    }
    void send_to_client(std::uint64_t client_id, std::span<const std::uint8_t> message) {
        const vsr::header h = decoded(message);
        FUZZ_CHECK(h.sender == replica_index && h.target == vsr::address_client && h.client_id == client_id);
        keep(message);
    }
};
static_assert(vsr::message_bus<capture_bus>);

using replica_type = vsr::basic_replica<kv::state_machine, capture_bus, manual_clock, vsr::xoshiro256>;
using client_type = vsr::basic_client<capture_bus, vsr::xoshiro256>;

vsr::config make_config(std::uint8_t replica_count) {
    vsr::config config;
    config.cluster = cluster;
    config.replica_count = replica_count;
    config.message_size_max = 64 * 1024;
    config.pipeline_max = 4;
    config.clients_max = 4;
    config.checkpoint_interval = 8;
    config.log_entries_max = 64;
    config.request_queue_max = 16;
    config.batch_requests_max = 4;
    FUZZ_CHECK(config.valid());
    return config;
}

fuzz::bytes kv_operation(fuzz::input& in) {
    kv::operation op;
    op.op_kind = static_cast<kv::kind>(1 + in.below(4));
    const std::string_view keys[] = {"a", "b", "key"};
    op.key = keys[in.below(3)];
    if (op.op_kind == kv::kind::put || op.op_kind == kv::kind::cas) op.value = in.text(32);
    if (op.op_kind == kv::kind::cas) op.expected = in.text(32);
    fuzz::bytes out;
    kv::encode_operation(op, out);
    if (in.u8() == 0xFF && !out.empty()) out.pop_back();  // now and then a malformed one
    return out;
}

/// One log entry with op `op`: 0-3 requests with small ids and KV operations.
fuzz::bytes make_entry(fuzz::input& in, std::uint64_t op, std::uint64_t view) {
    vsr::entry_builder builder;
    builder.begin(op, view, 1'000 + op);
    const std::size_t count = in.below(4);
    std::vector<fuzz::bytes> operations;
    for (std::size_t i = 0; i < count; ++i) {
        vsr::request_record r;
        r.client_id = 1 + in.below(4);
        r.session = in.below(8);
        r.request_number = in.below(8);
        r.kind = in.boolean() ? vsr::request_kind::register_session : vsr::request_kind::operation;
        operations.push_back(r.kind == vsr::request_kind::operation ? kv_operation(in) : fuzz::bytes{});
        r.operation = operations.back();
        builder.add(r);
    }
    return builder.finish();
}

/// A log suffix after (prev_op, prev_view) with 0-4 consecutive entries.
fuzz::bytes make_suffix(fuzz::input& in, std::uint64_t prev_op, std::uint64_t view) {
    const std::uint64_t prev_view = in.below(static_cast<std::size_t>(view) + 1);
    const std::size_t count = in.below(5);
    fuzz::bytes body;
    vsr::byte_writer w(body);
    w.u64(prev_op);
    w.u64(prev_view);
    w.u32(static_cast<std::uint32_t>(count));
    w.u32(0);
    for (std::size_t i = 0; i < count; ++i) {
        const fuzz::bytes entry = make_entry(in, prev_op + 1 + i, prev_view + in.below(2));
        w.u32(static_cast<std::uint32_t>(entry.size()));
        w.bytes(entry);
    }
    return body;
}

/// A checkpoint chunk (or a get_checkpoint body): a real image of a small KV state at a multiple
/// of the interval, sometimes cut or bit-flipped, at some offset.
fuzz::bytes make_checkpoint_body(fuzz::input& in, vsr::command cmd, std::uint64_t view) {
    vsr::checkpoint_image image;
    image.op = 8 * (1 + in.below(4));
    image.view = in.below(static_cast<std::size_t>(view) + 1);
    vsr::begin_checkpoint(image.op, image.view, 1'000 + image.op, image.bytes);
    vsr::client_table clients(4);
    if (in.boolean()) clients.register_session(1 + in.below(4), in.below(image.op) + 1, 0);
    clients.snapshot(image.bytes);
    const std::size_t clients_end = image.bytes.size();
    kv::state_machine machine;
    fuzz::bytes result;
    for (std::size_t i = in.below(4); i > 0; --i) machine.execute({}, kv_operation(in), result);
    machine.snapshot(image.bytes);
    vsr::finish_checkpoint(clients_end, image.bytes);
    image.checksum = vsr::checksum(image.bytes);
    if (in.below(4) == 0 && !image.bytes.empty()) image.bytes[in.below(image.bytes.size())] ^= 1;
    fuzz::bytes body;
    if (cmd == vsr::command::get_checkpoint) {
        body.resize(8);
        vsr::store_le64(body.data(), in.boolean() ? image.checksum : in.u64());
        return body;
    }
    const std::uint64_t offset = in.below(3) == 0 ? in.below(image.bytes.size() + 1) : 0;
    vsr::encode_checkpoint_chunk(image, offset, 16 + in.below(4096), body);
    return body;
}

struct harness {
    vsr::config config;
    std::uint8_t index;
    capture_bus bus;
    manual_clock clock;
    vsr::xoshiro256 replica_random{1};
    vsr::xoshiro256 client_random{2};
    std::optional<replica_type> replica;
    std::optional<client_type> client;

    harness(std::uint8_t replica_count, std::uint8_t replica_index, bool recovering)
        : config(make_config(replica_count)), index(replica_index) {
        bus.replica_index = replica_index;
        bus.replica_count = replica_count;
        replica.emplace(config, index, bus, clock, replica_random, recovering);
        vsr::client_options options;
        options.cluster = cluster;
        options.replica_count = replica_count;
        options.message_size_max = config.message_size_max;
        options.sessions = 2;
        options.queue_max = 8;
        options.deadline_ms = 2000;
        client.emplace(options, bus, client_random);
    }

    vsr::header pick_header(fuzz::input& in) {
        vsr::header h;
        h.cmd = static_cast<vsr::command>(1 + in.below(vsr::command_max));
        h.sender = static_cast<std::uint8_t>(in.below(config.replica_count + 1));
        if (h.sender == config.replica_count) h.sender = vsr::address_client;
        h.target = in.below(8) == 0 ? static_cast<std::uint8_t>(in.u8()) : index;
        h.cluster = cluster;
        h.view = in.below(6);
        h.op = in.below(10);
        h.commit = in.below(10);
        h.client_id = in.below(8);
        h.session = in.below(8);
        h.request_number = in.below(8);
        h.extra = in.below(4) == 0 ? in.u64() : in.below(6);
        h.status = static_cast<std::uint8_t>(in.below(5));
        if (in.below(16) == 0) h.view = in.u64();  // far views and ops, sequence_max included
        if (in.below(16) == 0) h.op = in.u64();
        return h;
    }

    void send_chosen(fuzz::input& in) {
        const vsr::header h = pick_header(in);
        fuzz::bytes body;
        switch (in.below(4)) {
            case 0: {
                const auto raw = in.span(512);
                body.assign(raw.begin(), raw.end());
                break;
            }
            case 3: body = make_checkpoint_body(in, h.cmd, std::min<std::uint64_t>(h.view, 8)); break;
            case 1:
                body = make_entry(in, h.op, in.below(static_cast<std::size_t>(std::min<std::uint64_t>(h.view, 8)) + 1));
                break;
            case 2: body = make_suffix(in, in.below(10), std::min<std::uint64_t>(h.view, 8)); break;
        }
        if (h.cmd == vsr::command::request && in.boolean()) body = kv_operation(in);
        fuzz::bytes message;
        vsr::encode_message(h, body, message);
        replica->on_message(message);
    }

    void resend_captured(fuzz::input& in) {
        if (bus.captured.empty()) return;
        fuzz::bytes message = bus.captured[in.below(bus.captured.size())];
        vsr::header h;
        if (vsr::decode_message(message, cluster, config.message_size_max, h) != vsr::decode_error::none) return;
        const std::uint8_t sender = static_cast<std::uint8_t>(in.below(config.replica_count));
        if (h.sender == vsr::address_client) {  // the client's request: to the replica as is
            replica->on_message(message);
            return;
        }
        if (h.target == vsr::address_client && in.boolean()) {  // the replica's reply: to the client as is
            client->on_message(message);
            return;
        }
        message[11] = sender;  // as if another replica sent the same
        message[12] = index;
        if (in.boolean()) vsr::store_le64(message.data() + 24, h.view + in.below(3));
        if (in.boolean()) message[10] = static_cast<std::uint8_t>(1 + in.below(vsr::command_max));
        vsr::seal(message, cluster);
        replica->on_message(message);
    }

    void reply_to_client(fuzz::input& in) {
        const std::vector<std::uint64_t> ids = client->client_ids();
        vsr::header h = pick_header(in);
        const vsr::command kinds[] = {vsr::command::reply, vsr::command::eviction, vsr::command::status_reply};
        h.cmd = kinds[in.below(3)];
        h.sender = static_cast<std::uint8_t>(in.below(config.replica_count));
        h.target = vsr::address_client;
        if (!ids.empty() && in.below(4) != 0) h.client_id = ids[in.below(ids.size())];
        if (in.boolean()) {  // echo the session and request number of a captured request
            for (auto it = bus.captured.rbegin(); it != bus.captured.rend(); ++it) {
                vsr::header request;
                if (vsr::decode_message(*it, cluster, config.message_size_max, request) == vsr::decode_error::none &&
                    request.cmd == vsr::command::request && request.client_id == h.client_id) {
                    h.session = request.session != 0 ? request.session : in.below(8) + 1;
                    h.request_number = request.request_number;
                    break;
                }
            }
        }
        const auto body = in.span(64);
        fuzz::bytes message;
        vsr::encode_message(h, body, message);
        client->on_message(message);
    }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz::input in(data, size);
    const std::uint8_t replica_count = static_cast<std::uint8_t>(1 + in.below(5));
    const std::uint8_t index = static_cast<std::uint8_t>(in.below(replica_count));
    harness h(replica_count, index, in.below(4) == 0);
    for (int step = 0; step < 256 && !in.empty(); ++step) {
        switch (in.u8() % 6) {
            case 0: {
                const std::size_t ticks = 1 + in.below(64);
                for (std::size_t i = 0; i < ticks; ++i) {
                    h.clock.now_ns += 10'000'000;
                    h.replica->tick();
                    h.client->tick();
                }
                break;
            }
            case 1: h.replica->on_message(in.span(4096)); break;
            case 2: h.send_chosen(in); break;
            case 3: h.resend_captured(in); break;
            case 4: h.reply_to_client(in); break;
            case 5: {
                const fuzz::bytes op = kv_operation(in);
                (void)h.client->submit(op, [](const vsr::client_result&) {});
                break;
            }
        }
    }
    FUZZ_CHECK(h.replica->commit_executed() <= h.replica->commit());
    return 0;
}
