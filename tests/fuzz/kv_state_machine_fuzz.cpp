// Fuzz target: the KV example state machine (examples/kv/kv_state_machine.hpp): operations as
// they arrive from clients through VSR, and snapshots as they arrive in state transfer.
// Input: a sequence of steps: 0 execute raw operation bytes, 1 execute a well-formed operation
// built from fuzzer-chosen fields, 2 restore raw snapshot bytes, 3 snapshot/restore round trip.
// Invariants: results agree with a std::map model (status and value); a malformed operation
// gives `invalid` and changes nothing; a failed restore changes nothing; a successful restore
// snapshots back to bytes that restore to the same state; snapshot -> restore is the identity.
#include <map>

#include "kv_state_machine.hpp"

#include "fuzz_support.hpp"

namespace {

using model = std::map<std::string, std::string, std::less<>>;

fuzz::bytes snapshot_of(const kv::state_machine& machine) {
    fuzz::bytes out;
    machine.snapshot(out);
    return out;
}

model model_of(const kv::state_machine& machine) {
    model m;
    kv::state_machine copy;
    const fuzz::bytes snapshot = snapshot_of(machine);
    vsr::byte_reader r(snapshot);
    std::uint64_t count = 0;
    FUZZ_CHECK(r.read_u64(count));
    for (std::uint64_t i = 0; i < count; ++i) {
        std::uint32_t key_size = 0, value_size = 0;
        std::span<const std::uint8_t> key, value;
        FUZZ_CHECK(r.read_u32(key_size) && r.read_u32(value_size) && r.read_span(key_size, key) &&
                   r.read_span(value_size, value));
        m.emplace(std::string(fuzz::input::as_text(key)), std::string(fuzz::input::as_text(value)));
    }
    return m;
}

void execute(kv::state_machine& machine, model& m, std::span<const std::uint8_t> bytes) {
    fuzz::bytes result;
    machine.execute(vsr::operation_context{}, bytes, result);
    FUZZ_CHECK(!result.empty() && result.size() <= machine.result_size_max());
    const kv::result decoded = kv::decode_result(result);
    const auto op = kv::decode_operation(bytes);
    if (!op) {
        FUZZ_CHECK(decoded.result_status == kv::status::invalid && result.size() == 1);
        return;
    }
    const std::string key(op->key);
    const auto found = m.find(key);
    switch (op->op_kind) {
        case kv::kind::put:
            FUZZ_CHECK(decoded.result_status == kv::status::ok);
            m[key] = std::string(op->value);
            break;
        case kv::kind::get:
            if (found == m.end())
                FUZZ_CHECK(decoded.result_status == kv::status::not_found);
            else
                FUZZ_CHECK(decoded.result_status == kv::status::ok && decoded.value == found->second);
            break;
        case kv::kind::del:
            FUZZ_CHECK(decoded.result_status == (found == m.end() ? kv::status::not_found : kv::status::ok));
            if (found != m.end()) m.erase(found);
            break;
        case kv::kind::cas: {
            const bool match = found != m.end() && found->second == op->expected;
            FUZZ_CHECK(decoded.result_status == (match ? kv::status::ok : kv::status::mismatch));
            if (match) found->second = std::string(op->value);
            break;
        }
    }
    FUZZ_CHECK(machine.size() == m.size());
}

fuzz::bytes chosen_operation(fuzz::input& in) {
    kv::operation op;
    op.op_kind = static_cast<kv::kind>(1 + in.below(4));
    op.key = in.text(16);
    if (op.key.empty()) op.key = "k";
    if (op.op_kind == kv::kind::put || op.op_kind == kv::kind::cas) op.value = in.text(64);
    if (op.op_kind == kv::kind::cas) op.expected = in.text(64);
    fuzz::bytes out;
    kv::encode_operation(op, out);
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz::input in(data, size);
    kv::state_machine machine;
    model m;
    for (int step = 0; step < 128 && !in.empty(); ++step) {
        switch (in.u8() % 4) {
            case 0: execute(machine, m, in.span(1024)); break;
            case 1: execute(machine, m, chosen_operation(in)); break;
            case 2: {
                const fuzz::bytes before = snapshot_of(machine);
                const auto bytes = in.span(4096);
                if (machine.restore(bytes)) {
                    const fuzz::bytes after = snapshot_of(machine);
                    kv::state_machine other;
                    FUZZ_CHECK(other.restore(after) && snapshot_of(other) == after);
                    m = model_of(machine);
                } else {
                    FUZZ_CHECK(snapshot_of(machine) == before);
                }
                break;
            }
            case 3: {
                const fuzz::bytes snapshot = snapshot_of(machine);
                kv::state_machine other;
                FUZZ_CHECK(other.restore(snapshot) && snapshot_of(other) == snapshot);
                break;
            }
        }
    }
    return 0;
}
