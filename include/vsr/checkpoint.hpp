// Checkpoints: the replicated state after op `op`, as one checksummed image (VSR Revisited §5).
//
// Every replica takes one after executing each op that is a multiple of
// config::checkpoint_interval. Execution is deterministic, so the images taken at one op are
// byte-identical on every replica: any replica can serve it, and a receiver checks it against the
// checksum it was offered before it restores anything.
//
//   image:  u64 magic | u64 op | u64 view | u64 timestamp_ns | u64 clients_size | u64 state_size
//           | client table (client_table::snapshot) | state machine (StateMachine::snapshot)
//
// `view` is the tag of the entry at op, so the log can keep it as its base tag; `timestamp_ns`
// is that entry's timestamp, so a restored primary keeps timestamps increasing.
//
// A state machine with a store of its own (vsr::state_machine_with_stored_state) keeps the state
// section itself: the replica holds only the head (header and client table, `bytes`) and the
// state section's size, the machine exports the section from its store a part at a time, and
// the checksum is XXH64 of the head seeded with the machine's digest of the state.
//
// State transfer moves an image in offset-addressed chunks (command::checkpoint_chunk):
//
//   chunk:  u64 op | u64 view | u64 checksum | u64 image_size | u64 offset | u16 cursor_size
//           | cursor | bytes
//
// `cursor` says where the bytes end in the machine's export (empty inside the head and for
// images held whole): the receiver asks for the next chunk with it (command::get_checkpoint:
// u64 checksum | cursor), so any replica holding the same checkpoint can go on from there.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "vsr/bytes.hpp"
#include "vsr/checksum.hpp"
#include "vsr/state_machine.hpp"

namespace vsr {

inline constexpr std::uint64_t checkpoint_magic = 0x31'54'50'4B'43'52'53'56;  // "VSRCKPT1" (LE)
inline constexpr std::size_t checkpoint_header_size = 48;
inline constexpr std::size_t checkpoint_chunk_header_size = 42;  // without the cursor

/// A checkpoint image and what identifies it.
struct checkpoint_image {
    std::uint64_t op = 0;  // 0: none taken yet
    std::uint64_t view = 0;
    std::uint64_t timestamp_ns = 0;
    std::uint64_t checksum = 0;
    std::vector<std::uint8_t> bytes;       // the image; only its head when the machine keeps the state
    std::uint64_t machine_state_size = 0;  // > 0: the state section, kept by the machine's store

    std::uint64_t size() const noexcept { return bytes.size() + machine_state_size; }
    bool state_in_machine() const noexcept { return machine_state_size != 0; }
};

/// The fixed part of an image, and where its two sections lie.
struct checkpoint_contents {
    std::uint64_t op = 0;
    std::uint64_t view = 0;
    std::uint64_t timestamp_ns = 0;
    std::span<const std::uint8_t> clients;
    std::span<const std::uint8_t> state;
};

/// Starts an image in `out`: the header, with the section sizes patched by finish_checkpoint.
inline void begin_checkpoint(std::uint64_t op, std::uint64_t view, std::uint64_t timestamp_ns,
                             std::vector<std::uint8_t>& out) {
    out.clear();
    byte_writer w(out);
    w.u64(checkpoint_magic);
    w.u64(op);
    w.u64(view);
    w.u64(timestamp_ns);
    w.u64(0);
    w.u64(0);
}

/// `clients_end`: the image size once the client table was appended; the state follows it.
inline void finish_checkpoint(std::size_t clients_end, std::vector<std::uint8_t>& out) noexcept {
    store_le64(out.data() + 32, clients_end - checkpoint_header_size);
    store_le64(out.data() + 40, out.size() - clients_end);
}

/// Seals the head of an image whose state section (`state_size` bytes) the machine keeps.
inline void finish_checkpoint_head(std::size_t clients_end, std::uint64_t state_size,
                                   std::vector<std::uint8_t>& out) noexcept {
    store_le64(out.data() + 32, clients_end - checkpoint_header_size);
    store_le64(out.data() + 40, state_size);
}

/// The size of the head (header and client table) from the header alone; 0 if `first` (at
/// least checkpoint_header_size bytes of an image) is no header.
inline std::uint64_t checkpoint_head_size(std::span<const std::uint8_t> first) noexcept {
    if (first.size() < checkpoint_header_size || load_le64(first.data()) != checkpoint_magic) return 0;
    const std::uint64_t clients_size = load_le64(first.data() + 32);
    return clients_size > (std::uint64_t{1} << 40) ? 0 : checkpoint_header_size + clients_size;
}

/// Splits a head (header and client table, nothing after) whose state section is elsewhere;
/// out.state stays empty. `state_size` gets the section's size.
inline bool decode_checkpoint_head(std::span<const std::uint8_t> head, checkpoint_contents& out,
                                   std::uint64_t& state_size) noexcept {
    byte_reader r(head);
    std::uint64_t magic = 0, clients_size = 0;
    if (!(r.read_u64(magic) && r.read_u64(out.op) && r.read_u64(out.view) && r.read_u64(out.timestamp_ns) &&
          r.read_u64(clients_size) && r.read_u64(state_size))) {
        return false;
    }
    out.state = {};
    return magic == checkpoint_magic && clients_size == r.remaining() && r.read_span(clients_size, out.clients);
}

/// Splits an image into its parts; false if it is not one (sizes, magic).
inline bool decode_checkpoint(std::span<const std::uint8_t> image, checkpoint_contents& out) noexcept {
    byte_reader r(image);
    std::uint64_t magic = 0, clients_size = 0, state_size = 0;
    if (!(r.read_u64(magic) && r.read_u64(out.op) && r.read_u64(out.view) && r.read_u64(out.timestamp_ns) &&
          r.read_u64(clients_size) && r.read_u64(state_size))) {
        return false;
    }
    if (magic != checkpoint_magic || clients_size > r.remaining() || state_size != r.remaining() - clients_size) {
        return false;
    }
    return r.read_span(clients_size, out.clients) && r.read_span(state_size, out.state);
}

/// One chunk of an image on the wire.
struct checkpoint_chunk {
    std::uint64_t op = 0;
    std::uint64_t view = 0;
    std::uint64_t checksum = 0;
    std::uint64_t image_size = 0;
    std::uint64_t offset = 0;
    std::span<const std::uint8_t> cursor;  // where `bytes` end in the machine's export
    std::span<const std::uint8_t> bytes;
};

/// Starts a chunk of `image` at `offset` whose bytes end at `cursor`; the caller appends them.
inline void begin_checkpoint_chunk(const checkpoint_image& image, std::uint64_t offset,
                                   std::span<const std::uint8_t> cursor, std::vector<std::uint8_t>& body) {
    body.clear();
    byte_writer w(body);
    w.u64(image.op);
    w.u64(image.view);
    w.u64(image.checksum);
    w.u64(image.size());
    w.u64(offset);
    w.u16(static_cast<std::uint16_t>(cursor.size()));
    w.bytes(cursor);
}

/// Encodes the chunk of `image.bytes` at `offset`, as much as fits in `body_size_max`.
inline void encode_checkpoint_chunk(const checkpoint_image& image, std::uint64_t offset, std::size_t body_size_max,
                                    std::vector<std::uint8_t>& body) {
    begin_checkpoint_chunk(image, offset, {}, body);
    const std::size_t room =
        body_size_max > checkpoint_chunk_header_size ? body_size_max - checkpoint_chunk_header_size : 0;
    const std::size_t available = offset < image.bytes.size() ? image.bytes.size() - offset : 0;
    const std::size_t take = available < room ? available : room;
    byte_writer(body).bytes(
        std::span<const std::uint8_t>(image.bytes).subspan(offset < image.bytes.size() ? offset : 0, take));
}

/// Parses a chunk; false unless it lies inside an image of at most `image_size_max` bytes,
/// its cursor is at most export_cursor_size_max bytes and, short of the last, it is not empty.
inline bool decode_checkpoint_chunk(std::span<const std::uint8_t> body, std::uint64_t image_size_max,
                                    checkpoint_chunk& out) noexcept {
    byte_reader r(body);
    std::uint16_t cursor_size = 0;
    if (!(r.read_u64(out.op) && r.read_u64(out.view) && r.read_u64(out.checksum) && r.read_u64(out.image_size) &&
          r.read_u64(out.offset) && r.read_u16(cursor_size) && cursor_size <= export_cursor_size_max &&
          r.read_span(cursor_size, out.cursor))) {
        return false;
    }
    out.bytes = body.subspan(r.offset());
    if (out.op == 0 || out.image_size < checkpoint_header_size || out.image_size > image_size_max) return false;
    if (out.offset > out.image_size || out.bytes.size() > out.image_size - out.offset) return false;
    return !out.bytes.empty() || out.offset == out.image_size;
}

}  // namespace vsr
