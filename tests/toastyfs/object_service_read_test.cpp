#define BOOST_TEST_MODULE object_service_read
// object_service's GET reader when a node cannot take a request for a moment (its send queue is
// full, e.g. just after the janitor queued a burst of removes, or it is reconnecting). A CI chaos
// run saw a GET cut short with no fault active, both copies intact: the reader counted such a
// local refusal as "node tried" and declared the chunk lost within microseconds.
#include "toastyfs/object_service.hpp"

#ifndef BOOST_TEST_DYN_LINK
#define BOOST_TEST_DYN_LINK
#endif
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <vector>

namespace {

using toastyfs::frame_header;
using toastyfs::sha256_digest;

/// Not SHA-256, but content-addressed enough for the reader's verification.
struct toy_crypto {
    static sha256_digest sha256(std::span<const std::uint8_t> bytes) {
        sha256_digest d{};
        std::uint64_t h = 1469598103934665603ull;
        for (std::size_t i = 0; i < d.size(); ++i) {
            for (const std::uint8_t b : bytes) h = (h ^ b) * 1099511628211ull;
            h ^= i;
            d[i] = static_cast<std::uint8_t>(h >> 24);
        }
        return d;
    }
    struct sha256_context {
        std::vector<std::uint8_t> all;
        void update(std::span<const std::uint8_t> b) { all.insert(all.end(), b.begin(), b.end()); }
        sha256_digest finish() { return sha256(all); }
    };
    struct md5_context {
        void update(std::span<const std::uint8_t>) {}
        toastyfs::md5_digest finish() { return {}; }
    };
};

struct no_metadata {
    vsr::submit_error submit(std::span<const std::uint8_t>, std::function<void(const vsr::client_result&)>,
                             vsr::request_kind) {
        return vsr::submit_error::queue_full;
    }
};

/// Every node connected; a node in `full` refuses sends (queue full) until cleared.
struct fake_transport {
    std::vector<bool> full = std::vector<bool>(3, false);
    std::vector<std::pair<std::uint8_t, frame_header>> sent;
    bool send(std::uint8_t node, const frame_header& h, std::shared_ptr<const std::vector<std::uint8_t>>) {
        if (full[node]) return false;
        sent.emplace_back(node, h);
        return true;
    }
    bool connected(std::uint8_t) { return true; }
};

using service_type = toastyfs::object_service<no_metadata, fake_transport, toy_crypto>;

struct fixture {
    no_metadata metadata;
    fake_transport transport;
    std::vector<std::uint8_t> data = std::vector<std::uint8_t>(1000, 7);
    toastyfs::object_result object;
    std::unique_ptr<service_type> service;
    std::vector<std::uint8_t> received;
    std::optional<toastyfs::service_status> done;
    service_type::read_id id = 0;

    fixture() {
        toastyfs::service_options o;
        o.node_count = 3;
        o.replication_factor = 2;
        o.chunk_size = 1000;
        o.buffer_bytes_max = 1 << 20;
        service = std::make_unique<service_type>(o, metadata, transport);
        object.result_status = toastyfs::status::ok;
        object.kind = toastyfs::data_kind::chunks;
        object.size = data.size();
        const auto order = service->placement(toy_crypto::sha256(data));
        // Holders: the first two nodes in placement order (as a PUT writes them).
        const toastyfs::node_set holders = static_cast<toastyfs::node_set>((1u << order[0]) | (1u << order[1]));
        object.chunks.push_back(toastyfs::chunk_location{toy_crypto::sha256(data), 1000, holders});
    }
    std::vector<std::uint8_t> placement() { return service->placement(object.chunks[0].sha256); }
    void start() {
        service_type::read_callbacks callbacks;
        callbacks.on_data = [this](std::span<const std::uint8_t> piece) {
            received.insert(received.end(), piece.begin(), piece.end());
            service->consumed(id);
        };
        callbacks.on_done = [this](toastyfs::service_status s) { done = s; };
        id = service->read(object, 0, object.size, std::move(callbacks));
        service->poll();
    }
    void reply(const std::pair<std::uint8_t, frame_header>& request, toastyfs::frame_status status) {
        frame_header r = request.second;
        r.reply = true;
        r.status = status;
        std::vector<std::uint8_t> body;
        if (status == toastyfs::frame_status::ok) body = data;
        service->on_chunk_reply(request.first, r, std::move(body));
    }
};

}  // namespace

// Both holders' queues are full at the instant the GET starts; the third node (no copy) answers
// not_found. Before the fix: data_lost at once, the head already sent, the body cut.
BOOST_AUTO_TEST_CASE(read_waits_out_full_queues_instead_of_declaring_the_chunk_lost) {
    fixture f;
    const auto order = f.placement();
    f.service->tick(1'000'000'000);
    f.transport.full[order[0]] = true;
    f.transport.full[order[1]] = true;
    f.start();
    BOOST_REQUIRE_EQUAL(f.transport.sent.size(), 1u);
    BOOST_TEST(f.transport.sent[0].first == order[2]);  // the non-holder, the only one that took it
    f.reply(f.transport.sent[0], toastyfs::frame_status::not_found);
    f.service->poll();
    BOOST_TEST(!f.done.has_value());  // waits for a holder to take the request
    // The janitor's burst drained: the holders take requests again.
    f.transport.full[order[0]] = false;
    f.transport.full[order[1]] = false;
    f.service->tick(1'010'000'000);
    BOOST_REQUIRE_EQUAL(f.transport.sent.size(), 2u);
    BOOST_TEST(f.transport.sent[1].first == order[0]);
    f.reply(f.transport.sent[1], toastyfs::frame_status::ok);
    f.service->poll();
    BOOST_REQUIRE(f.done.has_value());
    BOOST_TEST(static_cast<int>(*f.done) == static_cast<int>(toastyfs::service_status::ok));
    BOOST_TEST(f.received == f.data);
    BOOST_TEST(f.service->counters().chunk_reads_deferred >= 1u);
}

// A node that keeps refusing is given up on after chunk_read_retry_ns: the read still ends.
BOOST_AUTO_TEST_CASE(read_gives_up_after_the_retry_window) {
    fixture f;
    f.service->tick(1'000'000'000);
    f.transport.full = {true, true, true};
    f.start();
    BOOST_TEST(!f.done.has_value());
    f.service->tick(3'000'000'000);
    BOOST_TEST(!f.done.has_value());
    f.service->tick(6'100'000'000);
    f.service->poll();
    BOOST_REQUIRE(f.done.has_value());
    BOOST_TEST(static_cast<int>(*f.done) == static_cast<int>(toastyfs::service_status::data_lost));
    BOOST_TEST(f.transport.sent.empty());
}

// A holder that answers not_found is not asked again; the other holder serves the chunk.
BOOST_AUTO_TEST_CASE(read_falls_back_to_the_other_holder) {
    fixture f;
    const auto order = f.placement();
    f.service->tick(1'000'000'000);
    f.start();
    BOOST_REQUIRE_EQUAL(f.transport.sent.size(), 1u);
    BOOST_TEST(f.transport.sent[0].first == order[0]);
    f.reply(f.transport.sent[0], toastyfs::frame_status::not_found);
    BOOST_REQUIRE_EQUAL(f.transport.sent.size(), 2u);
    BOOST_TEST(f.transport.sent[1].first == order[1]);
    f.reply(f.transport.sent[1], toastyfs::frame_status::ok);
    f.service->poll();
    BOOST_REQUIRE(f.done.has_value());
    BOOST_TEST(static_cast<int>(*f.done) == static_cast<int>(toastyfs::service_status::ok));
}
