// The object store simulator: chunk connections, one ordered TCP-like stream per proxy-node pair.

#include "sim/objectstore_simulation.hpp"

namespace sim::objectstore_internal {

// ---- chunk connections ------------------------------------------------------------------------

bool objectstore_simulation::chunk_send(std::uint32_t proxy, std::uint8_t node, const tfs::frame_header& header,
                                        std::shared_ptr<const std::vector<std::uint8_t>> body) {
    if (node >= options_.replicas) return false;
    const std::uint32_t index = proxy * options_.replicas + node;
    connection& c = connections_[index];
    if (!c.up) return false;
    chunk_frame frame;
    frame.header.resize(tfs::frame_header_size);
    static const std::vector<std::uint8_t> empty;
    tfs::encode_frame_header(
        header, body ? std::span<const std::uint8_t>(*body) : std::span<const std::uint8_t>(empty),
        std::span<std::uint8_t, tfs::frame_header_size>(frame.header.data(), tfs::frame_header_size));
    frame.body = std::move(body);
    c.outstanding.insert(header.request_id);
    const std::uint64_t arrive = std::max(
        c.last_to_node_ns,
        now_ + vsr::uniform_between(random_, chunk_frame_latency_min_us_, chunk_frame_latency_max_us_) * ns_per_us);
    c.last_to_node_ns = arrive;
    c.to_node.push_back(std::move(frame));
    events_.push(arrive, event_kind::chunk_to_node, index, c.generation);
    return true;
}

void objectstore_simulation::chunk_arrive_at_node(std::uint32_t index, std::uint64_t generation) {
    connection& c = connections_[index];
    if (c.generation != generation || c.to_node.empty()) return;
    chunk_frame frame = std::move(c.to_node.front());
    c.to_node.pop_front();
    const std::uint32_t node = index % options_.replicas;
    if (c.blocked || !node_accepts(node) || !c.held_to_node.empty()) {
        c.held_to_node.push_back(std::move(frame));
        return;
    }
    process_at_node(index, std::move(frame));
}

void objectstore_simulation::chunk_arrive_at_proxy(std::uint32_t index, std::uint64_t generation) {
    connection& c = connections_[index];
    if (c.generation != generation || c.to_proxy.empty()) return;
    chunk_frame frame = std::move(c.to_proxy.front());
    c.to_proxy.pop_front();
    if (c.blocked || !c.held_to_proxy.empty()) {
        c.held_to_proxy.push_back(std::move(frame));
        return;
    }
    process_at_proxy(index, std::move(frame));
}

void objectstore_simulation::flush_held(std::uint32_t index) {
    connection& c = connections_[index];
    const std::uint32_t node = index % options_.replicas;
    const std::uint64_t generation = c.generation;
    while (c.up && c.generation == generation && !c.blocked && node_accepts(node) && !c.held_to_node.empty()) {
        chunk_frame frame = std::move(c.held_to_node.front());
        c.held_to_node.pop_front();
        process_at_node(index, std::move(frame));
    }
    while (c.up && c.generation == generation && !c.blocked && !c.held_to_proxy.empty()) {
        chunk_frame frame = std::move(c.held_to_proxy.front());
        c.held_to_proxy.pop_front();
        process_at_proxy(index, std::move(frame));
    }
}

void objectstore_simulation::process_at_node(std::uint32_t index, chunk_frame frame) {
    connection& c = connections_[index];
    const std::uint32_t node_index = index % options_.replicas;
    node_state& node = nodes_[node_index];
    tfs::frame_header request;
    const std::span<const std::uint8_t> body =
        frame.body ? std::span<const std::uint8_t>(*frame.body) : std::span<const std::uint8_t>();
    const auto error = tfs::decode_frame_header(
        std::span<const std::uint8_t, tfs::frame_header_size>(frame.header.data(), tfs::frame_header_size),
        config_.cluster, service_options_.chunk_size + 1024, request);
    if (error != tfs::frame_error::none || request.reply || !tfs::body_matches(request, body)) {
        fail("transport", "node " + std::to_string(node_index) + " received a malformed frame from a proxy");
        return;
    }
    trace(event_kind::chunk_to_node, index, static_cast<std::uint64_t>(request.kind), request.request_id);
    const chunk_disk_counters before = node.disk->counters();
    const file_faults faults_before = node.disk->faults_hit(tfs::detail::chunk_path(request.sha256));
    std::uint64_t free = 0;
    node.disk->free_bytes(free);
    tfs::frame_header reply;
    auto reply_body = std::make_shared<std::vector<std::uint8_t>>();
    tfs::handle_chunk_request(*node.store, free, request, body, reply, *reply_body);
    // A read that failed verification twice quarantines the copy: destroyed, if a fault hit it.
    if (request.kind == tfs::frame_kind::read && reply.status == tfs::frame_status::corrupt) {
        destroy_if_faulted(node_index, request.sha256, faults_before);
    }
    const bool bad_read = request.kind == tfs::frame_kind::read && reply.status != tfs::frame_status::ok;
    const chunk_disk_counters& after = node.disk->counters();
    result_.disk_no_space += after.no_space - before.no_space;
    if (request.kind == tfs::frame_kind::write && reply.status == tfs::frame_status::ok) {
        written_.emplace(node_index, request.sha256);
        gc_removed_.erase({node_index, request.sha256});
        // The disk said ok, but the stored copy is rotten: a fault destroyed this copy.
        if (after.bit_flips_at_rest != before.bit_flips_at_rest) destroy(node_index, request.sha256);
    }
    if (request.kind == tfs::frame_kind::remove && reply.status == tfs::frame_status::ok) {
        check_gc_remove(node_index, request.sha256);
        gc_removed_.emplace(node_index, request.sha256);
    }
    if (request.kind == tfs::frame_kind::read && reply.status == tfs::frame_status::ok && !reply_body->empty() &&
        faults_active_ && node.reply_corruption_per_mille != 0 &&
        vsr::chance(random_, node.reply_corruption_per_mille, 1000)) {
        // A memory fault on the node after the store verified the copy: the frame checksum
        // covers the corrupted bytes, so only the proxy's SHA-256 check can notice.
        (*reply_body)[vsr::uniform_below(random_, reply_body->size())] ^=
            static_cast<std::uint8_t>(1u << vsr::uniform_below(random_, 8));
        ++result_.reply_corruptions;
        bad_reads_[{index, request.sha256}] = now_;
    }
    if (bad_read) bad_reads_[{index, request.sha256}] = now_;
    chunk_frame out;
    out.header.resize(tfs::frame_header_size);
    tfs::encode_frame_header(
        reply, *reply_body, std::span<std::uint8_t, tfs::frame_header_size>(out.header.data(), tfs::frame_header_size));
    out.body = std::move(reply_body);
    if (!c.up) return;
    const std::uint64_t arrive = std::max(
        c.last_to_proxy_ns,
        now_ + vsr::uniform_between(random_, chunk_frame_latency_min_us_, chunk_frame_latency_max_us_) * ns_per_us);
    c.last_to_proxy_ns = arrive;
    c.to_proxy.push_back(std::move(out));
    events_.push(arrive, event_kind::chunk_to_proxy, index, c.generation);
}

void objectstore_simulation::process_at_proxy(std::uint32_t index, chunk_frame frame) {
    connection& c = connections_[index];
    const std::uint32_t proxy = index / options_.replicas;
    const auto node = static_cast<std::uint8_t>(index % options_.replicas);
    tfs::frame_header reply;
    const auto error = tfs::decode_frame_header(
        std::span<const std::uint8_t, tfs::frame_header_size>(frame.header.data(), tfs::frame_header_size),
        config_.cluster, UINT64_MAX, reply);
    const std::span<const std::uint8_t> body =
        frame.body ? std::span<const std::uint8_t>(*frame.body) : std::span<const std::uint8_t>();
    if (error != tfs::frame_error::none || !reply.reply || !tfs::body_matches(reply, body)) {
        fail("transport",
             "proxy " + std::to_string(proxy) + " received a malformed frame from node " + std::to_string(node));
        return;
    }
    trace(event_kind::chunk_to_proxy, index, static_cast<std::uint64_t>(reply.status), reply.request_id);
    c.outstanding.erase(reply.request_id);
    std::vector<std::uint8_t> owned(body.begin(), body.end());
    proxies_[proxy].service->on_chunk_reply(node, reply, std::move(owned));
}

void objectstore_simulation::break_connection(std::uint32_t index) {
    connection& c = connections_[index];
    if (!c.up) return;
    trace(event_kind::reconnect, index, 0, c.generation);
    mix_trace(0xB0 + index);
    ++result_.connection_breaks;
    c.up = false;
    update_link_health(index);
    ++c.generation;
    c.to_node.clear();
    c.to_proxy.clear();
    c.held_to_node.clear();
    c.held_to_proxy.clear();
    const std::vector<std::uint64_t> ids(c.outstanding.begin(), c.outstanding.end());
    c.outstanding.clear();
    c.last_to_node_ns = c.last_to_proxy_ns = 0;
    if (!c.reconnect_pending) {
        c.reconnect_pending = true;
        schedule(vsr::uniform_between(random_, 10, 1'000) * ns_per_ms, event_kind::reconnect, index);
    }
    proxies_[index / options_.replicas].service->on_chunk_disconnect(
        static_cast<std::uint8_t>(index % options_.replicas), ids);
}

void objectstore_simulation::try_reconnect(std::uint32_t index) {
    connection& c = connections_[index];
    c.reconnect_pending = false;
    if (c.up) return;
    const std::uint32_t node = index % options_.replicas;
    if (!nodes_[node].store || c.blocked) {
        c.reconnect_pending = true;
        schedule(vsr::uniform_between(random_, 50, 500) * ns_per_ms, event_kind::reconnect, index);
        return;
    }
    trace(event_kind::reconnect, index, 1, c.generation);
    c.up = true;
    update_link_health(index);
}

void objectstore_simulation::set_link_blocked(std::uint32_t index, bool blocked) {
    connection& c = connections_[index];
    if (c.blocked == blocked) return;
    c.blocked = blocked;
    update_link_health(index);
    if (blocked) {
        schedule(keepalive_ns_, event_kind::keepalive, index, c.generation);
    } else {
        flush_held(index);
    }
}

/// A link is healthy while it is up and unblocked and its node serves; check_data_lost asks
/// since when.
void objectstore_simulation::update_link_health(std::uint32_t index) {
    connection& c = connections_[index];
    const bool healthy = c.up && !c.blocked && node_accepts(index % options_.replicas);
    if (!healthy)
        c.healthy_since_ns = UINT64_MAX;
    else if (c.healthy_since_ns == UINT64_MAX)
        c.healthy_since_ns = now_;
}

void objectstore_simulation::update_node_links(std::uint32_t node) {
    for (std::uint32_t p = 0; p < proxies_.size(); ++p) update_link_health(p * options_.replicas + node);
}

}  // namespace sim::objectstore_internal
