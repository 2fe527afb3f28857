// Fuzz target: the VSR wire codec (include/vsr/wire.hpp) and the log entry/suffix decoders
// (include/vsr/log_entry.hpp) that read message bodies.
//
// Input: one mode byte, then the bytes under test.
//   mode 0  the bytes as they came off the wire (almost always rejected by the checksum)
//   mode 1  the same, sealed first (checksum filled in; cluster set to ours if the next byte is
//           odd), so the decoder's later checks and the body decoders are reached
//   mode 2  a log entry (validate_entry, request_iterator)
//   mode 3  a log suffix (decode_suffix)
// Invariants: a decoded message re-encodes to the same bytes (the format is canonical); a
// message decode_message accepts also passes check_header_prefix; a decoded status body
// re-encodes to the same bytes; an entry that validates is rebuilt byte for byte by
// entry_builder from its requests; a suffix that decodes re-encodes to the same body.
#include "vsr/log_entry.hpp"
#include "vsr/wire.hpp"

#include "fuzz_support.hpp"

namespace {

constexpr std::uint32_t cluster = 77;
constexpr std::size_t message_size_max = 1 << 20;
constexpr std::size_t entry_size_max = 64 * 1024;

void check_message(std::span<const std::uint8_t> bytes) {
    const vsr::decode_error prefix = vsr::check_header_prefix(bytes, cluster, message_size_max);
    vsr::header h;
    const vsr::decode_error error = vsr::decode_message(bytes, cluster, message_size_max, h);
    FUZZ_CHECK(static_cast<std::size_t>(error) < vsr::decode_error_count);
    FUZZ_CHECK(vsr::to_string(error) != nullptr);
    if (error != vsr::decode_error::none) return;
    FUZZ_CHECK(prefix == vsr::decode_error::none);
    FUZZ_CHECK(h.cluster == cluster && h.body_size == bytes.size() - vsr::header_size);
    const auto body = vsr::message_body(bytes);
    fuzz::bytes again;
    vsr::encode_message(h, body, again);
    FUZZ_CHECK(again.size() == bytes.size() && std::equal(again.begin(), again.end(), bytes.begin()));

    vsr::status_body status;
    if (vsr::decode_status_body(body, status)) {
        std::array<std::uint8_t, vsr::status_body_size> encoded{};
        vsr::encode_status_body(status, encoded);
        FUZZ_CHECK(std::equal(encoded.begin(), encoded.end(), body.begin()));
    }
}

void check_entry(std::span<const std::uint8_t> entry) {
    if (!vsr::validate_entry(entry, entry_size_max)) return;
    const vsr::entry_header h = vsr::read_entry_header(entry);
    vsr::entry_builder builder;
    builder.begin(h.op, h.view, h.timestamp_ns, entry.size());
    vsr::request_iterator requests(entry);
    vsr::request_record r;
    std::uint32_t count = 0;
    while (requests.next(r)) {
        builder.add(r);
        ++count;
    }
    FUZZ_CHECK(count == h.request_count);
    const fuzz::bytes rebuilt = builder.finish();
    FUZZ_CHECK(rebuilt.size() == entry.size() && std::equal(rebuilt.begin(), rebuilt.end(), entry.begin()));
}

void check_suffix(std::span<const std::uint8_t> body) {
    vsr::log_suffix suffix;
    if (!vsr::decode_suffix(body, entry_size_max, suffix)) return;
    fuzz::bytes again;
    vsr::byte_writer w(again);
    w.u64(suffix.prev_op);
    w.u64(suffix.prev_view);
    w.u32(static_cast<std::uint32_t>(suffix.entries.size()));
    w.u32(0);
    for (const auto entry : suffix.entries) {
        FUZZ_CHECK(vsr::validate_entry(entry, entry_size_max));
        w.u32(static_cast<std::uint32_t>(entry.size()));
        w.bytes(entry);
        check_entry(entry);
    }
    FUZZ_CHECK(again.size() == body.size() && std::equal(again.begin(), again.end(), body.begin()));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz::input in(data, size);
    const std::uint8_t mode = in.u8();
    switch (mode % 4) {
        case 0: check_message(in.rest()); break;
        case 1: {
            const bool ours = in.boolean();
            const auto rest = in.rest();
            fuzz::bytes message(rest.begin(), rest.end());
            if (message.size() >= vsr::header_size) {
                if (ours) vsr::store_le32(message.data() + 16, cluster);
                vsr::seal(message, vsr::load_le32(message.data() + 16));
            }
            check_message(message);
            break;
        }
        case 2: check_entry(in.rest()); break;
        case 3: check_suffix(in.rest()); break;
    }
    return 0;
}
