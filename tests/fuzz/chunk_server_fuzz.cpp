// Fuzz target: a storage node's request handling (include/toastyfs/chunk_server.hpp) over a
// chunk_store on the in-memory simulated disk (sim/sim_chunk_disk.hpp) with OpenSSL SHA-256,
// the way platform/chunk_transport.cpp drives it: decode the header, check the body, execute.
//
// Input: a fault byte (0: a healthy disk; otherwise the disk's faults are fuzzer-chosen), then
// a sequence of frames. Each frame is either raw bytes or a header built from fuzzer-chosen
// fields and sealed, with a body that is sometimes hashed correctly (so writes succeed).
// Invariants: every reply header encodes and decodes back; inventory replies decode, in
// ascending order, within the entries asked for; stat replies decode. On a healthy disk a chunk
// whose write was acknowledged reads back byte for byte until it is removed.
#include <map>

#include "platform/crypto.hpp"
#include "sim/sim_chunk_disk.hpp"
#include "toastyfs/chunk_server.hpp"
#include "toastyfs/chunk_store.hpp"

#include "fuzz_support.hpp"

namespace {

constexpr std::uint32_t cluster = 77;
constexpr std::uint64_t body_size_max = 64 * 1024;
using store_type = toastyfs::chunk_store<sim::sim_chunk_disk, platform::openssl_crypto>;

sim::chunk_disk_faults pick_faults(fuzz::input& in) {
    sim::chunk_disk_faults faults;
    if (in.u8() == 0) return faults;
    auto per_mille = [&in] { return static_cast<std::uint32_t>(in.below(4) == 0 ? in.below(1001) : 0); };
    faults.bit_flip_at_rest_per_mille = per_mille();
    faults.bit_flip_on_read_per_mille = per_mille();
    faults.read_error_per_mille = per_mille();
    faults.write_error_per_mille = per_mille();
    faults.remove_error_per_mille = per_mille();
    if (in.boolean()) faults.capacity_bytes = in.below(256 * 1024);
    return faults;
}

struct node {
    sim::sim_chunk_disk disk;
    store_type store;
    bool healthy;
    std::vector<toastyfs::sha256_digest> known;                   // shas written so far, for later requests
    std::map<toastyfs::sha256_digest, fuzz::bytes> acknowledged;  // healthy disk only

    node(fuzz::input& in, std::uint64_t chunk_size_max, std::uint64_t bytes_max)
        : disk(1, pick_faults(in)), store(disk, options(chunk_size_max, bytes_max)) {
        const auto& f = disk.faults();
        healthy = f.bit_flip_at_rest_per_mille == 0 && f.bit_flip_on_read_per_mille == 0 &&
                  f.read_error_per_mille == 0 && f.write_error_per_mille == 0 && f.remove_error_per_mille == 0;
        std::string error;
        FUZZ_CHECK(store.open(error));
    }
    static toastyfs::chunk_store_options options(std::uint64_t chunk_size_max, std::uint64_t bytes_max) {
        toastyfs::chunk_store_options o;
        o.chunk_size_max = chunk_size_max;
        o.bytes_max = bytes_max;
        return o;
    }

    toastyfs::sha256_digest pick_sha(fuzz::input& in, std::span<const std::uint8_t> body) {
        switch (in.below(4)) {
            case 0: return platform::openssl_crypto::sha256(body);
            case 1:
                if (!known.empty()) return known[in.below(known.size())];
                [[fallthrough]];
            case 2: return toastyfs::sha256_digest{};
            default: {
                toastyfs::sha256_digest sha{};
                const auto raw = in.take(32);
                std::copy(raw.begin(), raw.end(), sha.begin());
                return sha;
            }
        }
    }

    /// A sealed request from chosen fields; body_size sometimes lies.
    fuzz::bytes chosen_frame(fuzz::input& in) {
        const auto body = in.span(4096);
        toastyfs::frame_header h;
        h.kind = static_cast<toastyfs::frame_kind>(1 + in.below(toastyfs::frame_kind_max));
        h.cluster = cluster;
        h.request_id = in.u8();
        h.sha256 = pick_sha(in, body);
        h.token = in.below(4) == 0 ? in.u64() : in.below(4);
        h.argument = in.below(4) == 0 ? in.u64() : in.below(8);
        fuzz::bytes frame(toastyfs::frame_header_size);
        toastyfs::encode_frame_header(
            h, body, std::span<std::uint8_t, toastyfs::frame_header_size>(frame.data(), toastyfs::frame_header_size));
        frame.insert(frame.end(), body.begin(), body.end());
        if (in.below(8) == 0) frame[6] |= toastyfs::reply_bit;  // a reply sent as a request
        return frame;
    }

    void receive(std::span<const std::uint8_t> frame) {
        if (frame.size() < toastyfs::frame_header_size) return;
        toastyfs::frame_header request;
        const std::span<const std::uint8_t, toastyfs::frame_header_size> head(frame.data(),
                                                                              toastyfs::frame_header_size);
        if (toastyfs::decode_frame_header(head, cluster, body_size_max, request) != toastyfs::frame_error::none) return;
        const auto body = frame.subspan(toastyfs::frame_header_size);
        if (!toastyfs::body_matches(request, body)) return;
        if (request.reply) return;  // the transport drops replies sent to a node
        toastyfs::frame_header reply;
        fuzz::bytes reply_body;
        toastyfs::handle_chunk_request(store, 1 << 30, request, body, reply, reply_body);
        check_reply(request, body, reply, reply_body);
    }

    void check_reply(const toastyfs::frame_header& request, std::span<const std::uint8_t> body,
                     const toastyfs::frame_header& reply, const fuzz::bytes& reply_body) {
        std::array<std::uint8_t, toastyfs::frame_header_size> encoded{};
        toastyfs::encode_frame_header(reply, reply_body, encoded);
        toastyfs::frame_header decoded;
        FUZZ_CHECK(toastyfs::decode_frame_header(encoded, cluster, UINT64_MAX, decoded) == toastyfs::frame_error::none);
        FUZZ_CHECK(decoded.reply && decoded.kind == request.kind && decoded.request_id == request.request_id);
        FUZZ_CHECK(toastyfs::body_matches(decoded, reply_body));
        const bool ok = reply.status == toastyfs::frame_status::ok;
        switch (request.kind) {
            case toastyfs::frame_kind::write:
                FUZZ_CHECK(reply_body.empty());
                if (ok) {
                    FUZZ_CHECK(platform::openssl_crypto::sha256(body) == request.sha256);
                    known.push_back(request.sha256);
                    if (healthy) acknowledged[request.sha256] = fuzz::bytes(body.begin(), body.end());
                }
                break;
            case toastyfs::frame_kind::read: {
                const auto it = acknowledged.find(request.sha256);
                if (healthy && body.empty() && it != acknowledged.end()) {
                    FUZZ_CHECK(ok && reply_body == it->second);
                }
                if (ok) FUZZ_CHECK(platform::openssl_crypto::sha256(reply_body) == request.sha256);
                if (!ok) FUZZ_CHECK(reply_body.empty());
                break;
            }
            case toastyfs::frame_kind::remove:
                FUZZ_CHECK(reply_body.empty());
                if (ok) acknowledged.erase(request.sha256);
                break;
            case toastyfs::frame_kind::inventory: {
                std::vector<toastyfs::inventory_entry> entries;
                FUZZ_CHECK(ok && toastyfs::decode_inventory(reply_body, reply.argument, entries));
                FUZZ_CHECK(entries.size() <= std::max<std::uint64_t>(request.argument, 1));
                break;
            }
            case toastyfs::frame_kind::stat: {
                toastyfs::node_stats stats;
                FUZZ_CHECK(ok && toastyfs::decode_node_stats(reply_body, stats));
                break;
            }
        }
    }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz::input in(data, size);
    const std::uint64_t chunk_size_max = in.boolean() ? 1 + in.below(8192) : 64 * 1024;
    const std::uint64_t bytes_max = in.boolean() ? in.below(64 * 1024) : 0;
    node n(in, chunk_size_max, bytes_max);
    for (int step = 0; step < 64 && !in.empty(); ++step) {
        if (in.below(8) == 0) {
            n.receive(in.span(4096));
        } else {
            const fuzz::bytes frame = n.chosen_frame(in);
            n.receive(frame);
        }
    }
    return 0;
}
