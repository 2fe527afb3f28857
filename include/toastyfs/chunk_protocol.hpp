// The chunk protocol: how a proxy (or the repairer) stores, reads and deletes content-addressed
// chunks on a storage node. Request/reply frames over one stream per proxy-node pair; the node
// answers requests in the order they arrive.
//
// Every frame is a 96-byte little-endian header followed by body_size bytes:
//
//   offset size field
//        0    4 magic          frame_magic ("TFSC")
//        4    2 version        frame_version
//        6    1 kind           frame_kind (replies have reply_bit set)
//        7    1 status         frame_status in replies, 0 in requests
//        8    4 cluster        cluster id: a frame for another cluster is refused
//       12    4 reserved       must be 0
//       16    8 request_id     chosen by the requester, echoed in the reply
//       24    8 body_size      <= the receiver's frame body limit
//       32   32 sha256         the chunk (write, read, remove) or the inventory cursor
//       64    8 token          remove: the token seen in the inventory; replies: the chunk's token
//       72    8 argument       inventory: entries wanted (request), entries present (reply)
//       80    8 body_checksum  vsr::checksum over the body
//       88    8 checksum       vsr::checksum over bytes [0, 88), seeded with the cluster id
//
// Bodies: write request = the chunk's bytes; read reply = the chunk's bytes; inventory reply =
// `argument` entries of (sha256 32, size 8, token 8); stat reply = node_stats (below). Every
// other body is empty. A receiver checks the header before reading any body byte, and the body
// checksum before acting; a frame that fails any check closes the stream (it is never answered).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "toastyfs/types.hpp"
#include "vsr/bytes.hpp"
#include "vsr/checksum.hpp"

namespace toastyfs {

inline constexpr std::size_t frame_header_size = 96;
inline constexpr std::uint32_t frame_magic = 0x43534654;  // "TFSC"
inline constexpr std::uint16_t frame_version = 1;
inline constexpr std::uint8_t reply_bit = 0x80;
inline constexpr std::size_t inventory_entry_size = 48;

enum class frame_kind : std::uint8_t {
    write = 1,      // store the body as chunk sha256 (the node verifies the hash)
    read = 2,       // return chunk sha256, verified by the node
    remove = 3,     // delete chunk sha256 only if its token still equals `token`
    inventory = 4,  // list up to `argument` chunks after the cursor sha256 (all-zero = start)
    stat = 5,       // node_stats
};
inline constexpr std::uint8_t frame_kind_max = 5;

enum class frame_status : std::uint8_t {
    ok = 0,
    not_found = 1,
    corrupt = 2,        // the stored copy failed verification; the node quarantined it
    hash_mismatch = 3,  // write: the body does not hash to sha256; nothing stored
    too_large = 4,
    no_space = 5,
    io_error = 6,
    token_mismatch = 7,  // remove: the chunk was written again since the token was read
    busy = 8,            // the node refused for load; retry elsewhere or later
};
inline constexpr std::uint8_t frame_status_max = 8;

inline const char* to_string(frame_status s) noexcept {
    switch (s) {
        case frame_status::ok: return "ok";
        case frame_status::not_found: return "not_found";
        case frame_status::corrupt: return "corrupt";
        case frame_status::hash_mismatch: return "hash_mismatch";
        case frame_status::too_large: return "too_large";
        case frame_status::no_space: return "no_space";
        case frame_status::io_error: return "io_error";
        case frame_status::token_mismatch: return "token_mismatch";
        case frame_status::busy: return "busy";
    }
    return "unknown";
}

struct frame_header {
    frame_kind kind = frame_kind::write;
    bool reply = false;
    frame_status status = frame_status::ok;
    std::uint32_t cluster = 0;
    std::uint64_t request_id = 0;
    std::uint64_t body_size = 0;
    sha256_digest sha256{};
    std::uint64_t token = 0;
    std::uint64_t argument = 0;
    std::uint64_t body_checksum = 0;
};

enum class frame_error : std::uint8_t {
    none,
    bad_magic,
    bad_version,
    bad_checksum,
    wrong_cluster,
    bad_kind,
    bad_status,
    bad_reserved,
    too_large,  // body_size above the receiver's limit
};
inline constexpr std::size_t frame_error_count = 9;

/// Encodes `h` with the checksum of `body` (which the caller sends right after the header).
inline void encode_frame_header(const frame_header& h, std::span<const std::uint8_t> body,
                                std::span<std::uint8_t, frame_header_size> out) noexcept {
    std::uint8_t* p = out.data();
    std::memset(p, 0, frame_header_size);
    vsr::store_le32(p + 0, frame_magic);
    vsr::store_le16(p + 4, frame_version);
    p[6] = static_cast<std::uint8_t>(static_cast<std::uint8_t>(h.kind) | (h.reply ? reply_bit : 0));
    p[7] = static_cast<std::uint8_t>(h.status);
    vsr::store_le32(p + 8, h.cluster);
    vsr::store_le64(p + 16, h.request_id);
    vsr::store_le64(p + 24, body.size());
    std::memcpy(p + 32, h.sha256.data(), 32);
    vsr::store_le64(p + 64, h.token);
    vsr::store_le64(p + 72, h.argument);
    vsr::store_le64(p + 80, vsr::checksum(body, h.cluster));
    vsr::store_le64(p + 88, vsr::checksum({p, 88}, h.cluster));
}

/// Checks a received header on its own. The body is checked later with body_matches().
inline frame_error decode_frame_header(std::span<const std::uint8_t, frame_header_size> bytes, std::uint32_t cluster,
                                       std::uint64_t body_size_max, frame_header& out) noexcept {
    const std::uint8_t* p = bytes.data();
    if (vsr::load_le32(p) != frame_magic) return frame_error::bad_magic;
    if (vsr::load_le16(p + 4) != frame_version) return frame_error::bad_version;
    if (vsr::load_le64(p + 88) != vsr::checksum({p, 88}, vsr::load_le32(p + 8))) return frame_error::bad_checksum;
    if (vsr::load_le32(p + 8) != cluster) return frame_error::wrong_cluster;
    if (vsr::load_le32(p + 12) != 0) return frame_error::bad_reserved;
    const std::uint8_t kind = p[6] & static_cast<std::uint8_t>(~reply_bit);
    if (kind == 0 || kind > frame_kind_max) return frame_error::bad_kind;
    if (p[7] > frame_status_max) return frame_error::bad_status;
    const bool reply = (p[6] & reply_bit) != 0;
    if (!reply && p[7] != 0) return frame_error::bad_status;
    const std::uint64_t body_size = vsr::load_le64(p + 24);
    if (body_size > body_size_max) return frame_error::too_large;
    out.kind = static_cast<frame_kind>(kind);
    out.reply = reply;
    out.status = static_cast<frame_status>(p[7]);
    out.cluster = cluster;
    out.request_id = vsr::load_le64(p + 16);
    out.body_size = body_size;
    std::memcpy(out.sha256.data(), p + 32, 32);
    out.token = vsr::load_le64(p + 64);
    out.argument = vsr::load_le64(p + 72);
    out.body_checksum = vsr::load_le64(p + 80);
    return frame_error::none;
}

inline bool body_matches(const frame_header& h, std::span<const std::uint8_t> body) noexcept {
    return body.size() == h.body_size && vsr::checksum(body, h.cluster) == h.body_checksum;
}

// ---- inventory entries ------------------------------------------------------------------------

struct inventory_entry {
    sha256_digest sha256{};
    std::uint64_t size = 0;
    std::uint64_t token = 0;
    friend bool operator==(const inventory_entry&, const inventory_entry&) = default;
};

inline void append_inventory_entry(const inventory_entry& e, std::vector<std::uint8_t>& out) {
    vsr::byte_writer w(out);
    w.bytes(e.sha256);
    w.u64(e.size);
    w.u64(e.token);
}

/// Decodes an inventory reply body. False if the body is not `count` well-formed entries in
/// strictly ascending sha256 order.
inline bool decode_inventory(std::span<const std::uint8_t> body, std::uint64_t count,
                             std::vector<inventory_entry>& out) {
    if (count > body.size() / inventory_entry_size || body.size() != count * inventory_entry_size) return false;
    out.clear();
    out.reserve(count);
    vsr::byte_reader r(body);
    for (std::uint64_t i = 0; i < count; ++i) {
        inventory_entry e;
        if (!(r.read_bytes(e.sha256) && r.read_u64(e.size) && r.read_u64(e.token))) return false;
        if (!out.empty() && !(out.back().sha256 < e.sha256)) return false;
        out.push_back(e);
    }
    return true;
}

// ---- node stats (stat reply body) --------------------------------------------------------------

inline constexpr std::size_t node_stats_size = 64;

struct node_stats {
    std::uint64_t chunks = 0;
    std::uint64_t bytes_stored = 0;
    std::uint64_t bytes_free = 0;  // what the disk reports (or the quota leaves), whichever is less
    std::uint64_t quarantined = 0;
    std::uint64_t corrupt_found = 0;
    std::uint64_t reads = 0;
    std::uint64_t writes = 0;
    std::uint64_t io_errors = 0;
};

inline void encode_node_stats(const node_stats& s, std::vector<std::uint8_t>& out) {
    const std::uint64_t fields[] = {s.chunks,        s.bytes_stored, s.bytes_free, s.quarantined,
                                    s.corrupt_found, s.reads,        s.writes,     s.io_errors};
    vsr::byte_writer w(out);
    for (std::uint64_t f : fields) w.u64(f);
}

inline bool decode_node_stats(std::span<const std::uint8_t> body, node_stats& out) noexcept {
    if (body.size() != node_stats_size) return false;
    std::uint64_t* fields[] = {&out.chunks,        &out.bytes_stored, &out.bytes_free, &out.quarantined,
                               &out.corrupt_found, &out.reads,        &out.writes,     &out.io_errors};
    vsr::byte_reader r(body);
    for (std::uint64_t* f : fields) r.read_u64(*f);
    return r.done();
}

}  // namespace toastyfs
