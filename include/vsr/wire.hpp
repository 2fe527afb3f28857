// Wire format: every message is one contiguous buffer, an 80-byte header followed by a body.
// All fields are little-endian with explicit widths.
//
//   offset size field
//        0    8 checksum        XXH64 over bytes [8, 80 + body_size), seeded with the cluster id
//        8    2 version         wire_version
//       10    1 command         enum command
//       11    1 sender          replica index, or address_client
//       12    1 target          replica index, or address_client
//       13    1 status          reply_status for replies, otherwise 0
//       14    2 reserved        must be 0
//       16    4 cluster         cluster id
//       20    4 body_size
//       24    8 view
//       32    8 op
//       40    8 commit
//       48    8 client_id
//       56    8 session
//       64    8 request_number
//       72    8 extra           command-specific (see struct header)
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "vsr/bytes.hpp"
#include "vsr/checksum.hpp"

namespace vsr {

inline constexpr std::uint16_t wire_version = 1;
inline constexpr std::size_t header_size = 80;
inline constexpr std::uint8_t address_client = 0xFF;
/// Replica indices are u8 on the wire; 0xFF is reserved for clients.
inline constexpr std::size_t replicas_max = 16;

enum class command : std::uint8_t {
    none = 0,
    request = 1,             // client -> primary. extra: request_kind
    reply = 2,               // primary -> client. op: entry op, extra: index in the entry's batch
                             // (reply_index_query for a query: the state after entry op)
    prepare = 3,             // primary -> backup. body: one log entry
    prepare_ok = 4,          // backup -> primary. op: highest op held (cumulative); extra: the
                             // query round of the commit it answers, else 0
    commit = 5,              // primary -> backup. heartbeat; commit: commit number; extra: a query
                             // round the backup must answer with prepare_ok, else 0
    start_view_change = 6,   // all -> all
    do_view_change = 7,      // all -> new primary. extra: last normal view; body: log suffix
    start_view = 8,          // new primary -> all. body: log suffix
    request_start_view = 9,  // replica -> primary of a view it missed the start of
    recovery = 10,           // recovering replica -> all. extra: nonce
    recovery_response = 11,  // -> recovering replica. extra: nonce; body (primary only): log suffix
    get_state = 12,          // lagging replica -> any. op: the op it holds up to
    new_state = 13,          // -> lagging replica. body: committed log suffix
    eviction = 14,           // primary -> client whose session was evicted
    status_request = 15,     // client -> any replica (target). client_id: where to answer
    status_reply = 16,       // replica -> client. body: status_body (see below)
    get_checkpoint = 17,     // lagging replica -> any. op: checkpoint op; extra: offset; body: u64
                             // checkpoint checksum
    checkpoint_chunk = 18,   // -> lagging replica. body: vsr/checkpoint.hpp's chunk
};
inline constexpr std::uint8_t command_max = 18;

/// `query`: a read-only operation the primary may answer without appending it to the log (see
/// basic_replica::on_query). The primary checks that the state machine agrees it is read-only;
/// otherwise it is ordered and executed like any operation.
enum class request_kind : std::uint8_t { operation = 0, register_session = 1, query = 2 };
inline constexpr std::uint8_t request_kind_max = 2;

/// The `extra` (batch index) of a reply to a query: it read the state after every request of
/// entry `op`, so it orders after all of them and before entry op + 1.
inline constexpr std::uint32_t reply_index_query = 0xFFFFFFFF;

enum class reply_status : std::uint8_t {
    ok = 0,
    session_evicted = 1,  // the session is gone: register again
    // 2 is retired: it was log_full, before checkpoints bounded the log; a reply with it is dropped
    too_large = 3,         // the operation exceeds config::operation_size_max(); not executed
    result_too_large = 4,  // executed, but its result exceeded the reply limit (see
                           // basic_replica::result_size_limit): the body is empty, the result lost
};

/// Views and op numbers at or above this are rejected as malformed: no honest cluster gets
/// near it (2^62 view changes), and arithmetic on them can then never overflow.
inline constexpr std::uint64_t sequence_max = std::uint64_t{1} << 62;

struct header {
    std::uint64_t checksum = 0;
    command cmd = command::none;
    std::uint8_t sender = 0;
    std::uint8_t target = 0;
    std::uint8_t status = 0;
    std::uint32_t cluster = 0;
    std::uint32_t body_size = 0;
    std::uint64_t view = 0;
    std::uint64_t op = 0;
    std::uint64_t commit = 0;
    std::uint64_t client_id = 0;
    std::uint64_t session = 0;
    std::uint64_t request_number = 0;
    std::uint64_t extra = 0;
};

// ---- status_request / status_reply ----------------------------------------------------------
//
// Any replica answers a status_request (sender address_client, target its index, client_id
// chosen by the asker) with one status_reply to that client_id, whatever its own status. It is
// read-only introspection: it changes no protocol state. The reply header carries the replica's
// view, op and commit like every replica message; the body is this fixed 80-byte struct:
//
//   offset size field
//        0    1 status            replica_status: 0 normal, 1 view_change, 2 recovering
//        1    1 replica           the answering replica's index
//        2    1 is_primary        1 if it is the primary of its view (even if not normal)
//        3    1 syncing           1 while it fetches committed entries (state transfer)
//        4    4 reserved          0
//        8    8 view
//       16    8 last_normal_view
//       24    8 op                highest op in its log
//       32    8 commit            highest op it knows to be committed
//       40    8 commit_executed   highest op applied to its state machine
//       48    8 clients           sessions in its client table
//       56    8 checkpoint_op     its durable checkpoint: the log may drop what it covers
//       64    8 log_entries       entries in its log window (a persistent replica's journal holds them)
//       72    8 log_entries_max   the window's bound (config::log_entries_max)
inline constexpr std::size_t status_body_size = 80;

struct status_body {
    std::uint8_t status = 0;
    std::uint8_t replica = 0;
    std::uint8_t is_primary = 0;
    std::uint8_t syncing = 0;
    std::uint64_t view = 0;
    std::uint64_t last_normal_view = 0;
    std::uint64_t op = 0;
    std::uint64_t commit = 0;
    std::uint64_t commit_executed = 0;
    std::uint64_t clients = 0;
    std::uint64_t checkpoint_op = 0;
    std::uint64_t log_entries = 0;
    std::uint64_t log_entries_max = 0;
};

// ---- encoding -------------------------------------------------------------------------------

/// Writes `h` (except the checksum) into the first header_size bytes of `out`.
inline void encode_header_fields(const header& h, std::uint8_t* out) noexcept {
    store_le16(out + 8, wire_version);
    out[10] = static_cast<std::uint8_t>(h.cmd);
    out[11] = h.sender;
    out[12] = h.target;
    out[13] = h.status;
    store_le16(out + 14, 0);
    store_le32(out + 16, h.cluster);
    store_le32(out + 20, h.body_size);
    store_le64(out + 24, h.view);
    store_le64(out + 32, h.op);
    store_le64(out + 40, h.commit);
    store_le64(out + 48, h.client_id);
    store_le64(out + 56, h.session);
    store_le64(out + 64, h.request_number);
    store_le64(out + 72, h.extra);
}

/// Computes and stores the checksum of a complete message buffer (header + body).
inline void seal(std::span<std::uint8_t> message, std::uint32_t cluster) noexcept {
    store_le64(message.data(), checksum(message.subspan(8), cluster));
}

/// Encodes header + body into `out` (replacing its contents) and seals it.
inline void encode_message(header h, std::span<const std::uint8_t> body, std::vector<std::uint8_t>& out) {
    h.body_size = static_cast<std::uint32_t>(body.size());
    out.resize(header_size + body.size());
    encode_header_fields(h, out.data());
    if (!body.empty()) std::memcpy(out.data() + header_size, body.data(), body.size());
    seal(out, h.cluster);
}

// ---- decoding -------------------------------------------------------------------------------

/// Why a message was rejected. Every rejection is counted by the receiver, never asserted.
enum class decode_error : std::uint8_t {
    none = 0,
    too_short,
    too_long,
    bad_version,
    bad_reserved,
    bad_command,
    wrong_cluster,
    size_mismatch,
    bad_checksum,
    bad_sender,
    wrong_target,
};
inline constexpr std::size_t decode_error_count = 11;

inline const char* to_string(decode_error e) noexcept {
    constexpr const char* names[decode_error_count] = {"none",         "too_short",   "too_long",      "bad_version",
                                                       "bad_reserved", "bad_command", "wrong_cluster", "size_mismatch",
                                                       "bad_checksum", "bad_sender",  "wrong_target"};
    const auto i = static_cast<std::size_t>(e);
    return i < decode_error_count ? names[i] : "unknown";
}

inline header decode_header_fields(const std::uint8_t* p) noexcept {
    header h;
    h.checksum = load_le64(p);
    h.cmd = static_cast<command>(p[10]);
    h.sender = p[11];
    h.target = p[12];
    h.status = p[13];
    h.cluster = load_le32(p + 16);
    h.body_size = load_le32(p + 20);
    h.view = load_le64(p + 24);
    h.op = load_le64(p + 32);
    h.commit = load_le64(p + 40);
    h.client_id = load_le64(p + 48);
    h.session = load_le64(p + 56);
    h.request_number = load_le64(p + 64);
    h.extra = load_le64(p + 72);
    return h;
}

/// Checks framing only (version, sizes, command, cluster); cheap, used by stream framers
/// before the whole body has arrived.
inline decode_error check_header_prefix(std::span<const std::uint8_t> bytes, std::uint32_t cluster,
                                        std::size_t message_size_max) noexcept {
    if (bytes.size() < header_size) return decode_error::too_short;
    const std::uint8_t* p = bytes.data();
    if (load_le16(p + 8) != wire_version) return decode_error::bad_version;
    if (load_le16(p + 14) != 0) return decode_error::bad_reserved;
    if (p[10] == 0 || p[10] > command_max) return decode_error::bad_command;
    if (load_le32(p + 16) != cluster) return decode_error::wrong_cluster;
    if (header_size + std::uint64_t{load_le32(p + 20)} > message_size_max) return decode_error::too_long;
    return decode_error::none;
}

/// Validates a complete message: framing, exact size and checksum. Addressing is checked by the
/// receiver (it knows who it is). On success `out` holds the header.
inline decode_error decode_message(std::span<const std::uint8_t> bytes, std::uint32_t cluster,
                                   std::size_t message_size_max, header& out) noexcept {
    if (bytes.size() > message_size_max) return decode_error::too_long;
    if (const auto e = check_header_prefix(bytes, cluster, message_size_max); e != decode_error::none) {
        return e;
    }
    if (header_size + std::uint64_t{load_le32(bytes.data() + 20)} != bytes.size()) {
        return decode_error::size_mismatch;
    }
    if (load_le64(bytes.data()) != checksum(bytes.subspan(8), cluster)) return decode_error::bad_checksum;
    out = decode_header_fields(bytes.data());
    return decode_error::none;
}

inline std::span<const std::uint8_t> message_body(std::span<const std::uint8_t> message) noexcept {
    return message.subspan(header_size);
}

// ---- status body codec -----------------------------------------------------------------------

inline void encode_status_body(const status_body& s, std::array<std::uint8_t, status_body_size>& out) noexcept {
    out.fill(0);
    out[0] = s.status;
    out[1] = s.replica;
    out[2] = s.is_primary;
    out[3] = s.syncing;
    store_le64(out.data() + 8, s.view);
    store_le64(out.data() + 16, s.last_normal_view);
    store_le64(out.data() + 24, s.op);
    store_le64(out.data() + 32, s.commit);
    store_le64(out.data() + 40, s.commit_executed);
    store_le64(out.data() + 48, s.clients);
    store_le64(out.data() + 56, s.checkpoint_op);
    store_le64(out.data() + 64, s.log_entries);
    store_le64(out.data() + 72, s.log_entries_max);
}

/// False unless the body has exactly status_body_size bytes and reserved bytes are 0.
inline bool decode_status_body(std::span<const std::uint8_t> body, status_body& out) noexcept {
    if (body.size() != status_body_size) return false;
    const std::uint8_t* p = body.data();
    if (load_le32(p + 4) != 0) return false;
    out.status = p[0];
    out.replica = p[1];
    out.is_primary = p[2];
    out.syncing = p[3];
    out.view = load_le64(p + 8);
    out.last_normal_view = load_le64(p + 16);
    out.op = load_le64(p + 24);
    out.commit = load_le64(p + 32);
    out.commit_executed = load_le64(p + 40);
    out.clients = load_le64(p + 48);
    out.checkpoint_op = load_le64(p + 56);
    out.log_entries = load_le64(p + 64);
    out.log_entries_max = load_le64(p + 72);
    return true;
}

}  // namespace vsr
