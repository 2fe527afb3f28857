// Fuzz target: the metadata codec and state machine (include/toastyfs/metadata_codec.hpp,
// metadata_state_machine.hpp). Operations arrive from proxies through VSR, results are decoded
// by proxies, snapshots arrive in state transfer.
//
// Input: a flags byte (bit 0: small capacity limits), then steps:
//   0  execute raw operation bytes           1  execute an operation built from chosen fields
//   2  restore raw snapshot bytes             3  snapshot -> restore round trip
//   4  raw bytes through every result decoder
// Invariants: an operation that decodes re-encodes to the same bytes (the codec is canonical);
// every result the state machine produces decodes with the decoder of its operation and
// re-encodes to the same bytes, within result_size_max; a result decoder's output re-encodes
// to its input; a failed restore leaves the state unchanged; snapshot -> restore -> snapshot is
// the identity. The state machine's own assertions stay on.
#include "toastyfs/metadata_codec.hpp"
#include "toastyfs/metadata_state_machine.hpp"

#include "fuzz_support.hpp"

namespace {

namespace tf = toastyfs;

template <typename T>
bool same_bytes(const T& value, std::span<const std::uint8_t> bytes) {
    fuzz::bytes again;
    tf::encode_to(value, again);
    return again.size() == bytes.size() && std::equal(again.begin(), again.end(), bytes.begin());
}

template <typename Decode>
void check_result_decoder(Decode decode, std::span<const std::uint8_t> bytes) {
    if (const auto result = decode(bytes)) FUZZ_CHECK(same_bytes(*result, bytes));
}

void decode_with_every_decoder(std::span<const std::uint8_t> bytes) {
    check_result_decoder(tf::decode_status_result, bytes);
    check_result_decoder(tf::decode_put_object_result, bytes);
    check_result_decoder(tf::decode_object_result, bytes);
    check_result_decoder(tf::decode_list_objects_result, bytes);
    check_result_decoder(tf::decode_clock_result, bytes);
    check_result_decoder(tf::decode_list_chunks_result, bytes);
    check_result_decoder(tf::decode_chunks_held_result, bytes);
    check_result_decoder(tf::decode_stats_result, bytes);
}

/// The result of `op` must decode with the decoder that belongs to it.
void check_result(const std::optional<tf::operation>& op, std::span<const std::uint8_t> result) {
    if (!op) {
        FUZZ_CHECK(result.size() == 1 && result[0] == static_cast<std::uint8_t>(tf::status::invalid));
        return;
    }
    auto require = [&](auto decode) {
        const auto decoded = decode(result);
        FUZZ_CHECK(decoded.has_value());
        FUZZ_CHECK(same_bytes(*decoded, result));
    };
    switch (static_cast<tf::opcode>(op->index() + 1)) {  // the variant follows the opcodes
        case tf::opcode::put_object: require(tf::decode_put_object_result); break;
        case tf::opcode::get_object:
        case tf::opcode::head_object: require(tf::decode_object_result); break;
        case tf::opcode::list_objects: require(tf::decode_list_objects_result); break;
        case tf::opcode::clock: require(tf::decode_clock_result); break;
        case tf::opcode::list_chunks: require(tf::decode_list_chunks_result); break;
        case tf::opcode::chunks_held: require(tf::decode_chunks_held_result); break;
        case tf::opcode::stats: require(tf::decode_stats_result); break;
        case tf::opcode::delete_object:
        case tf::opcode::add_holder:
        case tf::opcode::remove_holder: require(tf::decode_status_result); break;
    }
}

struct harness {
    tf::metadata_state_machine machine;
    std::uint64_t now_ns = 1'000'000'000'000;
    std::uint64_t op = 0;

    explicit harness(const tf::metadata_options& options) : machine(options) {}

    fuzz::bytes snapshot() const {
        fuzz::bytes out;
        machine.snapshot(out);
        return out;
    }

    void execute(std::span<const std::uint8_t> bytes, std::uint64_t advance_ns) {
        now_ns += advance_ns;
        const auto decoded = tf::decode_operation(bytes);
        if (decoded) FUZZ_CHECK(same_bytes(*decoded, bytes));
        fuzz::bytes result;
        machine.execute(vsr::operation_context{.op = ++op, .index = 0, .timestamp_ns = now_ns, .client_id = 1}, bytes,
                        result);
        FUZZ_CHECK(!result.empty() && result.size() <= machine.result_size_max());
        check_result(decoded, result);
    }

    void restore(std::span<const std::uint8_t> bytes) {
        const fuzz::bytes before = snapshot();
        if (!machine.restore(bytes)) {
            FUZZ_CHECK(snapshot() == before);
            return;
        }
        round_trip();
    }

    void round_trip() {
        const fuzz::bytes saved = snapshot();
        tf::metadata_state_machine other(machine.options());
        FUZZ_CHECK(other.restore(saved));
        fuzz::bytes again;
        other.snapshot(again);
        FUZZ_CHECK(again == saved);
    }
};

tf::sha256_digest pick_sha(fuzz::input& in) {
    tf::sha256_digest sha{};
    sha[0] = static_cast<std::uint8_t>(in.below(6));  // a small pool, so chunks are shared
    if (in.below(8) == 0) sha[31] = in.u8();
    return sha;
}

std::string pick_key(fuzz::input& in) {
    const std::string_view keys[] = {"a", "a/b", "b", "c", "\xff"};
    return in.below(8) == 0 ? std::string(in.text(32)) : std::string(keys[in.below(5)]);
}

tf::put_object_operation chosen_put(fuzz::input& in, std::uint64_t now_ns) {
    tf::put_object_operation put;
    put.key = pick_key(in);
    put.md5[0] = in.u8();
    put.content_type = in.boolean() ? "text/plain" : "";
    if (in.boolean()) put.user_metadata.push_back({"color", "blue"});
    put.put_condition.kind = static_cast<tf::condition_kind>(in.below(4));
    put.put_condition.etag[0] = in.u8();
    put.lease_begin_ns = now_ns - in.below(4) * std::uint64_t{1'000'000'000'000};
    if (in.boolean()) {
        put.kind = tf::data_kind::inline_data;
        const auto data = in.span(200);
        put.inline_data.assign(data.begin(), data.end());
        put.size = put.inline_data.size();
    } else {
        put.kind = tf::data_kind::chunks;
        const std::size_t count = 1 + in.below(5);
        for (std::size_t i = 0; i < count; ++i) {
            const auto sha = pick_sha(in);
            put.chunks.push_back(
                {sha, static_cast<std::uint32_t>(1 + sha[0] * 100), static_cast<tf::node_set>(1 + in.below(7))});
            put.size += put.chunks.back().size;
        }
    }
    return put;
}

fuzz::bytes chosen_operation(fuzz::input& in, std::uint64_t now_ns) {
    tf::operation op;
    switch (in.below(11)) {
        case 0: op = chosen_put(in, now_ns); break;
        case 1: op = tf::get_object_operation{pick_key(in)}; break;
        case 2: op = tf::head_object_operation{pick_key(in)}; break;
        case 3: {
            tf::delete_object_operation d{pick_key(in), {}};
            if (in.boolean()) d.delete_condition = {tf::condition_kind::if_match, {in.u8()}};
            op = d;
            break;
        }
        case 4:
            op = tf::list_objects_operation{in.boolean() ? "a" : "", in.boolean() ? "a" : "",
                                            static_cast<std::uint16_t>(1 + in.below(3))};
            break;
        case 5: op = tf::clock_operation{}; break;
        case 6:
            op = tf::add_holder_operation{pick_sha(in), static_cast<std::uint8_t>(in.below(16)), now_ns - in.below(3)};
            break;
        case 7: op = tf::remove_holder_operation{pick_sha(in), static_cast<std::uint8_t>(in.below(16))}; break;
        case 8: {
            tf::list_chunks_operation l;
            if (in.boolean()) l.after = pick_sha(in);
            l.max_entries = static_cast<std::uint16_t>(1 + in.below(3));
            op = l;
            break;
        }
        case 9: {
            tf::chunks_held_operation h;
            h.node = static_cast<std::uint8_t>(in.below(16));
            const std::size_t count = 1 + in.below(4);
            for (std::size_t i = 0; i < count; ++i) h.chunks.push_back(pick_sha(in));
            op = h;
            break;
        }
        default: op = tf::stats_operation{}; break;
    }
    fuzz::bytes out;
    tf::encode_to(op, out);
    return out;
}

tf::metadata_options small_options() {
    tf::metadata_options o;
    o.objects_max = 3;
    o.chunks_max = 5;
    o.chunks_per_object_max = 4;
    o.inline_size_max = 64;
    o.inline_bytes_max = 100;
    o.upload_lease_ns = 2'000'000'000'000;
    FUZZ_CHECK(o.valid());
    return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz::input in(data, size);
    const std::uint8_t flags = in.u8();
    harness h((flags & 1) != 0 ? small_options() : tf::metadata_options{});
    for (int step = 0; step < 64 && !in.empty(); ++step) {
        switch (in.u8() % 5) {
            case 0: h.execute(in.span(4096), in.u8() * std::uint64_t{10'000'000'000}); break;
            case 1: {
                const std::uint64_t advance_ns = in.u8() * std::uint64_t{10'000'000'000};
                h.execute(chosen_operation(in, h.now_ns + advance_ns), advance_ns);
                break;
            }
            case 2: h.restore(in.span(8192)); break;
            case 3: h.round_trip(); break;
            case 4: decode_with_every_decoder(in.span(4096)); break;
        }
    }
    return 0;
}
