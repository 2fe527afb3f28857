// Fuzz target: a persistent VSR replica (include/vsr/journal.hpp, replica.hpp) restarting from a
// disk the fuzzer damaged. A disk is input too: whatever its bytes, the replica must load it,
// refuse it, or recover from its peers, and never crash or trip an assertion.
//
// Input: parameters for a journal written by the real code (entries, views, a checkpoint, a
// truncation), then a sequence of damage steps (each: zone, offset, and either a byte flip, a
// run of zeros, a run of fuzzer bytes, or a sector copied elsewhere), then whether the restart
// says `recovering`. The restarted replica is then ticked and flushed a few times.
#include <array>

#include "../../sim/sim_storage.hpp"  // the simulated disk, without its random faults
#include "fuzz_support.hpp"
#include "kv_state_machine.hpp"
#include "vsr/journal.hpp"
#include "vsr/replica.hpp"

namespace {

constexpr std::uint32_t cluster = 91;

struct null_clock {
    std::uint64_t monotonic_ns() { return 1; }
    std::uint64_t realtime_ns() { return 1'700'000'000'000'000'000ULL; }
};

struct checking_bus {
    void send_to_replica(std::uint8_t replica, std::span<const std::uint8_t> message) {
        vsr::header h;
        FUZZ_CHECK(replica < 3);
        FUZZ_CHECK(vsr::decode_message(message, cluster, 1 << 20, h) == vsr::decode_error::none);
    }
    void send_to_client(std::uint64_t, std::span<const std::uint8_t> message) {
        vsr::header h;
        FUZZ_CHECK(vsr::decode_message(message, cluster, 1 << 20, h) == vsr::decode_error::none);
    }
};

using replica_type = vsr::basic_replica<kv::state_machine, checking_bus, null_clock, vsr::xoshiro256, sim::sim_storage>;

vsr::config make_config() {
    vsr::config config;
    config.cluster = cluster;
    config.replica_count = 3;
    config.message_size_max = 64 * 1024;
    config.pipeline_max = 2;
    config.checkpoint_interval = 4;
    config.log_entries_max = 2 * 4 + 2 + 6;
    FUZZ_CHECK(config.valid());
    return config;
}

fuzz::bytes make_entry(fuzz::input& in, std::uint64_t op, std::uint64_t view) {
    vsr::entry_builder builder;
    builder.begin(op, view, 1'000 + op);
    kv::operation operation;
    operation.op_kind = kv::kind::put;
    operation.key = "k";
    const std::string value(in.below(64), 'v');
    operation.value = value;
    fuzz::bytes encoded;
    kv::encode_operation(operation, encoded);
    builder.add({1, 1, op, vsr::request_kind::operation, encoded});
    return builder.finish();
}

vsr::checkpoint_image make_image(std::uint64_t op, std::uint64_t view) {
    vsr::checkpoint_image image{op, view, 1'000 + op, 0, {}};
    vsr::begin_checkpoint(op, view, image.timestamp_ns, image.bytes);
    vsr::client_table(8).snapshot(image.bytes);
    const std::size_t clients_end = image.bytes.size();
    kv::state_machine().snapshot(image.bytes);
    vsr::finish_checkpoint(clients_end, image.bytes);
    image.checksum = vsr::checksum(image.bytes);
    return image;
}

/// A journal as the replica writes one: entries, perhaps a checkpoint, perhaps a truncation.
void write_journal(fuzz::input& in, const vsr::config& config, sim::sim_storage& storage) {
    vsr::journal<sim::sim_storage> journal(storage, config, 1);
    journal.format();
    const std::uint64_t view = in.below(4);
    journal.set_view(view + in.below(2), view);
    const std::uint64_t count = in.below(12);
    for (std::uint64_t op = 1; op <= count; ++op) {
        journal.append(make_entry(in, op, view), op - in.below(3));
        if (op % config.checkpoint_interval == 0 && in.boolean()) {
            const auto image = make_image(op, view);
            journal.checkpoint(image, image.bytes.size());
        }
        if (in.below(4) == 0) FUZZ_CHECK(journal.flush());
    }
    if (count > 0 && in.below(4) == 0) journal.truncate(count - 1 - in.below(static_cast<std::size_t>(count)) / 2);
    FUZZ_CHECK(journal.flush());
}

void damage(fuzz::input& in, sim::sim_storage& storage) {
    for (std::size_t step = 0, steps = in.below(8); step < steps; ++step) {
        const auto z = static_cast<vsr::zone>(in.below(vsr::zone_count));
        const std::uint64_t size = storage.size(z);
        const std::uint64_t offset = in.below(static_cast<std::size_t>(size + 1));
        fuzz::bytes bytes;
        switch (in.below(4)) {
            case 0:  // one bit
                bytes.resize(1);
                storage.read(z, offset, bytes);
                bytes[0] ^= static_cast<std::uint8_t>(1u << in.below(8));
                break;
            case 1: bytes.assign(1 + in.below(600), 0); break;  // a torn or lost write
            case 2: {
                const auto raw = in.span(256);
                bytes.assign(raw.begin(), raw.end());
                break;
            }
            case 3: {  // a misdirected sector: the bytes of another place
                bytes.resize(512);
                storage.read(z, in.below(static_cast<std::size_t>(size + 1)), bytes);
                break;
            }
        }
        storage.write(z, offset, bytes);
    }
    storage.sync();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz::input in(data, size);
    const vsr::config config = make_config();
    vsr::xoshiro256 disk_random(1);
    sim::sim_storage storage(&disk_random, {});
    write_journal(in, config, storage);
    damage(in, storage);

    checking_bus bus;
    null_clock clock;
    vsr::xoshiro256 random(2);
    replica_type replica(config, 1, bus, clock, random, storage, in.boolean());
    for (int i = 0; i < 20 && !replica.halted(); ++i) {
        replica.tick();
        replica.flush();
    }
    FUZZ_CHECK(replica.op() >= replica.commit_executed());
    return 0;
}
