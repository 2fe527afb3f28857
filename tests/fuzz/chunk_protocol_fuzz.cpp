// Fuzz target: the chunk protocol codec (include/toastyfs/chunk_protocol.hpp): frame headers,
// body checksums, inventory and node_stats bodies.
//
// Input: one mode byte, then the bytes under test.
//   mode 0  a frame header (96 bytes) and body as received
//   mode 1  the same with the header checksum filled in (and the cluster set to ours if the
//           next byte is odd), so the checks after the checksum are reached
//   mode 2  an inventory reply body (the count is the first 8 bytes, often the right one)
//   mode 3  a stat reply body
// Invariants: a decoded header re-encodes to the same 96 bytes when its body matches (the
// format is canonical); a decoded inventory is strictly ascending and re-encodes to the body; a
// decoded node_stats re-encodes to the body.
#include "toastyfs/chunk_protocol.hpp"

#include "fuzz_support.hpp"

namespace {

constexpr std::uint32_t cluster = 77;
constexpr std::uint64_t body_size_max = 1 << 20;

void check_frame(std::span<const std::uint8_t> bytes) {
    if (bytes.size() < toastyfs::frame_header_size) return;
    const std::span<const std::uint8_t, toastyfs::frame_header_size> head(bytes.data(), toastyfs::frame_header_size);
    const auto body = bytes.subspan(toastyfs::frame_header_size);
    toastyfs::frame_header h;
    const toastyfs::frame_error error = toastyfs::decode_frame_header(head, cluster, body_size_max, h);
    FUZZ_CHECK(static_cast<std::size_t>(error) < toastyfs::frame_error_count);
    if (error != toastyfs::frame_error::none) return;
    FUZZ_CHECK(h.body_size <= body_size_max && h.cluster == cluster);
    FUZZ_CHECK(h.reply || h.status == toastyfs::frame_status::ok);
    FUZZ_CHECK(toastyfs::to_string(h.status) != nullptr);
    if (!toastyfs::body_matches(h, body)) return;
    std::array<std::uint8_t, toastyfs::frame_header_size> again{};
    toastyfs::encode_frame_header(h, body, again);
    FUZZ_CHECK(std::equal(again.begin(), again.end(), head.begin()));
}

void check_inventory(fuzz::input& in) {
    std::uint64_t count = in.u64();
    const auto body = in.rest();
    if ((count & 1) == 0) count = body.size() / toastyfs::inventory_entry_size;  // often consistent
    std::vector<toastyfs::inventory_entry> entries;
    if (!toastyfs::decode_inventory(body, count, entries)) return;
    FUZZ_CHECK(entries.size() == count);
    fuzz::bytes again;
    for (std::size_t i = 0; i < entries.size(); ++i) {
        if (i > 0) FUZZ_CHECK(entries[i - 1].sha256 < entries[i].sha256);
        toastyfs::append_inventory_entry(entries[i], again);
    }
    FUZZ_CHECK(again.size() == body.size() && std::equal(again.begin(), again.end(), body.begin()));
}

void check_stats(std::span<const std::uint8_t> body) {
    toastyfs::node_stats stats;
    if (!toastyfs::decode_node_stats(body, stats)) return;
    fuzz::bytes again;
    toastyfs::encode_node_stats(stats, again);
    FUZZ_CHECK(again.size() == body.size() && std::equal(again.begin(), again.end(), body.begin()));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz::input in(data, size);
    switch (in.u8() % 4) {
        case 0: check_frame(in.rest()); break;
        case 1: {
            const bool ours = in.boolean();
            const auto rest = in.rest();
            fuzz::bytes frame(rest.begin(), rest.end());
            if (frame.size() >= toastyfs::frame_header_size) {
                if (ours) vsr::store_le32(frame.data() + 8, cluster);
                const auto frame_cluster = vsr::load_le32(frame.data() + 8);
                vsr::store_le64(frame.data() + 88, vsr::checksum({frame.data(), 88}, frame_cluster));
            }
            check_frame(frame);
            break;
        }
        case 2: check_inventory(in); break;
        case 3: check_stats(in.rest()); break;
    }
    return 0;
}
