// The storage node's side of the chunk protocol: one request frame in, one reply frame out,
// executed against the node's chunk_store. The node process (platform::chunk_server) and the
// simulator both call it, so they answer exactly alike.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "toastyfs/chunk_protocol.hpp"
#include "toastyfs/chunk_store.hpp"

namespace toastyfs {

/// Most inventory entries one reply carries (about 200 KiB).
inline constexpr std::uint64_t inventory_entries_max = 4096;

inline frame_status to_frame_status(chunk_status s) noexcept {
    switch (s) {
        case chunk_status::ok: return frame_status::ok;
        case chunk_status::not_found: return frame_status::not_found;
        case chunk_status::hash_mismatch: return frame_status::hash_mismatch;
        case chunk_status::too_large: return frame_status::too_large;
        case chunk_status::no_space: return frame_status::no_space;
        case chunk_status::io_error: return frame_status::io_error;
        case chunk_status::corrupt: return frame_status::corrupt;
        case chunk_status::token_mismatch: return frame_status::token_mismatch;
    }
    return frame_status::io_error;
}

/// Executes `request` (already checked by the transport: header, body checksum) and fills in
/// `reply` and `reply_body` (which arrives empty).
template <typename Store>
void handle_chunk_request(Store& store, std::uint64_t bytes_free, const frame_header& request,
                          std::span<const std::uint8_t> body, frame_header& reply,
                          std::vector<std::uint8_t>& reply_body) {
    reply = frame_header{};
    reply.kind = request.kind;
    reply.reply = true;
    reply.cluster = request.cluster;
    reply.request_id = request.request_id;
    reply.sha256 = request.sha256;
    switch (request.kind) {
        case frame_kind::write: {
            const chunk_write_result result = store.write(request.sha256, body);
            reply.status = to_frame_status(result.status);
            reply.token = result.token;
            break;
        }
        case frame_kind::read: {
            if (body.empty()) {
                reply.status = to_frame_status(store.read(request.sha256, reply_body));
                if (reply.status != frame_status::ok) reply_body.clear();
                if (const auto entry = store.find(request.sha256); entry && reply.status == frame_status::ok) {
                    reply.token = entry->token;
                }
            } else {
                reply.status = frame_status::too_large;  // a read carries no body
            }
            break;
        }
        case frame_kind::remove:
            reply.status = to_frame_status(store.remove_if_unchanged(request.sha256, request.token));
            break;
        case frame_kind::inventory: {
            const bool from_start =
                std::all_of(request.sha256.begin(), request.sha256.end(), [](std::uint8_t b) { return b == 0; });
            std::vector<chunk_entry> entries;
            const std::optional<sha256_digest> after =
                from_start ? std::nullopt : std::optional<sha256_digest>(request.sha256);
            store.inventory(
                after,
                static_cast<std::size_t>(std::min(std::max<std::uint64_t>(request.argument, 1), inventory_entries_max)),
                entries);
            for (const chunk_entry& e : entries)
                append_inventory_entry(inventory_entry{e.sha, e.size, e.token}, reply_body);
            reply.argument = entries.size();
            reply.status = frame_status::ok;
            break;
        }
        case frame_kind::stat: {
            const auto s = store.stats();
            node_stats out;
            out.chunks = s.chunks;
            out.bytes_stored = s.bytes_stored;
            out.bytes_free = s.bytes_max != 0
                                 ? std::min(bytes_free, s.bytes_max - std::min(s.bytes_max, s.bytes_stored))
                                 : bytes_free;
            out.quarantined = s.quarantined;
            out.corrupt_found = s.corrupt_found;
            out.reads = s.reads;
            out.writes = s.writes;
            out.io_errors = s.io_errors;
            encode_node_stats(out, reply_body);
            reply.status = frame_status::ok;
            break;
        }
    }
}

}  // namespace toastyfs
