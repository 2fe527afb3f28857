// The proxy's policy concepts: what object_service needs from its chunk transport and its
// metadata client. They sit here, apart from object_service.hpp, so that an implementation
// (platform/chunk_transport.hpp) can assert it models one without pulling in the whole service.
// The chunk store's concepts live in their own small headers: chunk_disk in chunk_disk.hpp,
// crypto in types.hpp. Archetypes of all four: tests/toastyfs/archetypes.hpp.
#pragma once

#include <concepts>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "toastyfs/chunk_protocol.hpp"
#include "vsr/client.hpp"
#include "vsr/wire.hpp"

namespace toastyfs {

/// The ChunkTransport policy. Requirements:
/// - send(node, header, body) queues one request frame (the transport encodes the header with
///   the body's checksum) and returns true, or returns false at once if the node cannot take it
///   (not connected, queue full). The body is shared, never copied, and may be null (empty).
/// - connected(node): whether a send would currently be attempted.
/// The driver hands replies to object_service::on_chunk_reply and lost connections to
/// on_chunk_disconnect; a sent request may also never be answered (the service times it out).
template <typename T>
concept chunk_transport = requires(T& t, std::uint8_t node, const frame_header& header,
                                   std::shared_ptr<const std::vector<std::uint8_t>> body) {
    { t.send(node, header, body) } -> std::same_as<bool>;
    { t.connected(node) } -> std::same_as<bool>;
};

/// The metadata client: anything that submits VSR operations like vsr::basic_client, reads
/// as queries (vsr::request_kind::query).
template <typename T>
concept metadata_client = requires(T& c, std::span<const std::uint8_t> operation,
                                   std::function<void(const vsr::client_result&)> done, vsr::request_kind kind) {
    { c.submit(operation, done, kind) } -> std::same_as<vsr::submit_error>;
};

}  // namespace toastyfs
