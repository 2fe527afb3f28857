// The object API: HTTP requests on 127.0.0.1:3000 mapped onto the object service.
//
//   PUT    /<key>   store (Content-Length or chunked body; If-Match / If-None-Match; Content-Type
//                   and x-amz-meta-* kept)                       -> 200, ETag
//   GET    /<key>   read (Range -> 206/416; If-Match -> 412; If-None-Match -> 304)
//   HEAD   /<key>   as GET, without the body
//   DELETE /<key>   remove (If-Match)                             -> 204, or 404 if absent
//   GET    /?prefix=&start-after=&max-keys=   list, JSON, paginated
//   GET    /?status                           the proxy's view of the cluster, JSON
//
// Errors are answered with a status from the table in the README and a JSON body
// {"error": "...", "message": "..."}; 503 carries Retry-After.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "platform/chunk_transport.hpp"
#include "platform/crypto.hpp"
#include "platform/http_server.hpp"
#include "platform/tcp_message_bus.hpp"
#include "toastyfs/janitor.hpp"
#include "toastyfs/object_service.hpp"
#include "vsr/client.hpp"
#include "vsr/random.hpp"
#include "vsr/wire.hpp"

namespace toastyfs::proxy {

using metadata_client_type = vsr::basic_client<platform::tcp_message_bus, vsr::xoshiro256>;
using service_type = object_service<metadata_client_type, platform::chunk_client, platform::openssl_crypto>;
using janitor_type = janitor<service_type>;

/// What the proxy last heard from each node, for /?status and for fast 503s.
struct node_view {
    bool metadata_answered = false;
    std::uint64_t metadata_answered_ns = 0;
    vsr::status_body metadata;
    bool chunks_answered = false;
    node_stats chunks;
};

struct cluster_view {
    std::vector<node_view> nodes;
    std::uint8_t quorum = 2;
    std::uint64_t now_ns = 0;
    /// Metadata replicas the proxy's bus is connected to. Below quorum, requests get 503 at once.
    std::size_t replicas_connected = 0;
    /// Whether `node` answered a status request within `within_ns` of now_ns. now_ns is set on
    /// each tick while answers are stamped when they arrive, so an answer may be newer than now_ns
    /// (fresh, not 2^64 ns old).
    bool answered_within(const node_view& node, std::uint64_t within_ns) const {
        return node.metadata_answered &&
               (node.metadata_answered_ns >= now_ns || now_ns - node.metadata_answered_ns <= within_ns);
    }
    /// Nodes whose metadata replica answered a status request in the last few seconds.
    std::size_t metadata_reachable(std::uint64_t within_ns) const {
        std::size_t n = 0;
        for (const auto& node : nodes) n += answered_within(node, within_ns);
        return n;
    }
};

struct object_api_options {
    std::uint64_t object_size_max = std::uint64_t{5} << 30;
};

class object_api final : public platform::http_handler {
public:
    object_api(const object_api_options& options, service_type& service, janitor_type& janitor,
               const cluster_view& cluster, platform::chunk_client& chunks)
        : options_(options), service_(service), janitor_(janitor), cluster_(cluster), chunks_(chunks) {}

    void on_request(platform::http_exchange& exchange) override;

private:
    struct request_state;

    void handle_put(std::shared_ptr<request_state> state, std::string key);
    void handle_get(std::shared_ptr<request_state> state, std::string key, bool head);
    void handle_delete(std::shared_ptr<request_state> state, std::string key);
    void handle_list(std::shared_ptr<request_state> state);
    void handle_status(std::shared_ptr<request_state> state);
    void stream_object(std::shared_ptr<request_state> state, const object_result& object, std::uint64_t first,
                       std::uint64_t length);

    object_api_options options_;
    service_type& service_;
    janitor_type& janitor_;
    const cluster_view& cluster_;
    platform::chunk_client& chunks_;
};

}  // namespace toastyfs::proxy
