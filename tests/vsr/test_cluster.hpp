// Test support shared by the replica tests (replica_test.cpp, replica_review_test.cpp) and the
// KV state machine test: an in-memory cluster of KV replicas and clients, and helpers to build
// KV operations and VSR messages and to inspect replicas. Header-only; include it after the
// header under test. Everything is in namespace test_support (enum printers are in vsr, for ADL).
//
// Determinism: no threads and no real time, so every run is the same.
// - The bus only queues: one FIFO per replica and one for all clients. Nothing arrives until
//   cluster::deliver() (or a hand-driven cluster::deliver_to()).
// - deliver() works in rounds until the bus is quiet: everything queued at the start of a round
//   is delivered in it, to replicas 0, 1, 2... in FIFO order each, then to the clients in send
//   order; what that sends waits for the next round. Messages to replicas that are crashed or
//   isolated, to deafened clients and to unknown clients are dropped.
// - Time moves only in tick(): the manual clock advances by config.tick_ms, then the replicas
//   that are up tick (in index order), then the clients (in the order added), then deliver().
//   tick_clients() advances the clock and ticks only the clients, delivering nothing.
// - Random numbers: replica i is seeded 1000 + i (2000 + i after a restart); clients take the
//   seed given to add_client().
#pragma once

#ifndef BOOST_TEST_DYN_LINK  // meson's boost dependency may define it already
#define BOOST_TEST_DYN_LINK
#endif
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <ostream>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kv_state_machine.hpp"
#include "vsr/client.hpp"
#include "vsr/replica.hpp"

// Lets BOOST_TEST print these enums when an assertion fails (found by ADL).
namespace vsr {
inline std::ostream& boost_test_print_type(std::ostream& os, result_status v) { return os << to_string(v); }
inline std::ostream& boost_test_print_type(std::ostream& os, replica_status v) { return os << to_string(v); }
inline std::ostream& boost_test_print_type(std::ostream& os, command v) { return os << static_cast<int>(v); }
inline std::ostream& boost_test_print_type(std::ostream& os, submit_error v) { return os << static_cast<int>(v); }
}  // namespace vsr

namespace test_support {

using bytes = std::vector<std::uint8_t>;

// ---- KV operations ----------------------------------------------------------------------------

inline bytes kv_op(kv::kind kind, std::string_view key, std::string_view value = {}, std::string_view expected = {}) {
    kv::operation op;
    op.op_kind = kind;
    op.key = key;
    op.value = value;
    op.expected = expected;
    bytes out;
    kv::encode_operation(op, out);
    return out;
}
inline bytes kv_put(std::string_view key, std::string_view value) { return kv_op(kv::kind::put, key, value); }
inline bytes kv_get(std::string_view key) { return kv_op(kv::kind::get, key); }
inline bytes kv_cas(std::string_view key, std::string_view expected, std::string_view value) {
    return kv_op(kv::kind::cas, key, value, expected);
}

// ---- bus, clock and the types under test ------------------------------------------------------

struct manual_clock {
    std::uint64_t now_ns = 1'700'000'000'000'000'000ULL;
    std::uint64_t monotonic_ns() { return now_ns; }
    std::uint64_t realtime_ns() { return now_ns; }
};

struct queue_bus {
    std::array<std::deque<bytes>, vsr::replicas_max> to_replica;
    std::deque<std::pair<std::uint64_t, bytes>> to_client;
    std::vector<bytes> client_log;  // every message ever sent to a client, for inspection

    void send_to_replica(std::uint8_t replica, std::span<const std::uint8_t> message) {
        BOOST_TEST_REQUIRE(replica < vsr::replicas_max);
        to_replica[replica].emplace_back(message.begin(), message.end());
    }
    void send_to_client(std::uint64_t client_id, std::span<const std::uint8_t> message) {
        to_client.emplace_back(client_id, bytes(message.begin(), message.end()));
        client_log.emplace_back(message.begin(), message.end());
    }
    bool quiet() const {
        return to_client.empty() &&
               std::all_of(to_replica.begin(), to_replica.end(), [](const auto& q) { return q.empty(); });
    }
};

using replica_type = vsr::basic_replica<kv::state_machine, queue_bus, manual_clock, vsr::xoshiro256>;
using client_type = vsr::basic_client<queue_bus, vsr::xoshiro256>;
static_assert(vsr::message_bus<queue_bus>);
static_assert(vsr::time_source<manual_clock>);

inline constexpr std::uint32_t cluster_id = 77;

/// Three replicas of cluster_id; everything else as vsr::config defaults it.
inline vsr::config test_config() {
    vsr::config config;
    config.cluster = cluster_id;
    config.replica_count = 3;
    return config;
}

// ---- client operations and their outcomes -----------------------------------------------------

struct outcome {
    bool done = false;
    int calls = 0;
    vsr::result_status status = vsr::result_status::ok;
    kv::status kv_status = kv::status::invalid;  // and value: the KV result, when status is ok
    std::string value;
    std::uint64_t op = 0;
    std::uint32_t index = 0;  // vsr::reply_index_query for a query answered without a log entry
};

/// Submits and records the result when it comes. Shared ownership: a callback that never runs
/// must not dangle.
inline std::shared_ptr<outcome> submit(client_type& client, const bytes& operation,
                                       vsr::request_kind kind = vsr::request_kind::operation) {
    auto result = std::make_shared<outcome>();
    const auto error = client.submit(
        operation,
        [result](const vsr::client_result& r) {
            result->done = true;
            ++result->calls;
            result->status = r.status;
            result->op = r.op;
            result->index = r.index;
            if (r.status == vsr::result_status::ok) {
                const kv::result decoded = kv::decode_result(r.body);
                result->kv_status = decoded.result_status;
                result->value = std::string(decoded.value);
            }
        },
        kind);
    BOOST_TEST_REQUIRE((error == vsr::submit_error::none));
    return result;
}

/// Done, and ok both for the cluster and for the KV store.
inline void require_ok(const outcome& o) {
    BOOST_TEST_REQUIRE(o.done);
    BOOST_REQUIRE_MESSAGE(o.status == vsr::result_status::ok, "status " << vsr::to_string(o.status));
    BOOST_TEST_REQUIRE((o.kv_status == kv::status::ok));
}

// ---- replica state ----------------------------------------------------------------------------

inline std::string value_at(const replica_type& replica, std::string_view key) {
    return std::string(replica.state_machine().find(key).value_or("<missing>"));
}

/// The replicated state: KV contents plus client table.
inline bytes state_of(const replica_type& replica) {
    bytes out;
    replica.state_machine().snapshot(out);
    replica.clients().snapshot(out);
    return out;
}

// ---- messages ---------------------------------------------------------------------------------

/// A header of this cluster; the other fields are zero.
inline vsr::header header_of(vsr::command cmd, std::uint8_t sender, std::uint8_t target, std::uint64_t view) {
    vsr::header h;
    h.cmd = cmd;
    h.sender = sender;
    h.target = target;
    h.cluster = cluster_id;
    h.view = view;
    return h;
}

inline bytes encode(const vsr::header& h, std::span<const std::uint8_t> body = {}) {
    bytes out;
    vsr::encode_message(h, body, out);
    return out;
}

inline vsr::header decode(std::span<const std::uint8_t> message) {
    vsr::header h;
    BOOST_TEST_REQUIRE((vsr::decode_message(message, cluster_id, 1 << 20, h) == vsr::decode_error::none));
    return h;
}

// ---- the cluster ------------------------------------------------------------------------------

class cluster {
public:
    explicit cluster(const vsr::config& config) : config_(config) {
        for (std::uint8_t i = 0; i < config_.replica_count; ++i) {
            randoms_.emplace_back(1000 + i);
            replicas_.push_back(std::make_unique<replica_type>(config_, i, bus_, clock_, randoms_.back(), false));
            isolated_.push_back(false);
        }
    }
    // Replicas and clients hold references to the bus, the clock and the random generators.
    cluster(const cluster&) = delete;
    cluster& operator=(const cluster&) = delete;

    /// The replica, which must not be crashed.
    replica_type& replica(std::uint8_t index) {
        BOOST_TEST_REQUIRE(replicas_.at(index) != nullptr);
        return *replicas_[index];
    }
    queue_bus& bus() { return bus_; }
    std::uint8_t size() const { return config_.replica_count; }

    /// A client with `sessions` sessions whose random generator is seeded with `seed`.
    client_type& add_client(std::uint32_t sessions = 1, std::uint64_t seed = 1) {
        vsr::client_options options;
        options.cluster = config_.cluster;
        options.replica_count = config_.replica_count;
        options.message_size_max = config_.message_size_max;
        options.tick_ms = config_.tick_ms;
        options.sessions = sessions;
        auto& node = clients_.emplace_back(std::make_unique<client_node>(seed));
        node->client.emplace(options, bus_, node->random);
        return *node->client;
    }

    /// The replica loses its memory: the object is destroyed and its messages are lost.
    void crash(std::uint8_t index) {
        replicas_.at(index).reset();
        bus_.to_replica[index].clear();
    }
    /// Builds the replica again from nothing, running the recovery protocol.
    void restart(std::uint8_t index) {
        BOOST_TEST_REQUIRE(replicas_.at(index) == nullptr);
        randoms_[index] = vsr::xoshiro256(2000 + index);
        replicas_[index] = std::make_unique<replica_type>(config_, index, bus_, clock_, randoms_[index], true);
    }
    /// An isolated replica keeps its memory but gets no messages and no ticks.
    void isolate(std::uint8_t index, bool isolated = true) { isolated_.at(index) = isolated; }

    /// Messages to this client are lost until it is heard again.
    void deafen(std::uint64_t client_id, bool deaf = true) {
        if (deaf)
            deaf_clients_.insert(client_id);
        else
            deaf_clients_.erase(client_id);
    }

    bool up(std::uint8_t index) const { return replicas_[index] != nullptr && !isolated_[index]; }

    /// Delivers round by round until nothing is in flight. Messages to replicas that are down
    /// are dropped; messages to unknown clients too.
    void deliver() {
        for (int round = 0; !bus_.quiet(); ++round) {
            BOOST_REQUIRE_MESSAGE(round < 10000, "messages never stop");
            auto to_replica = std::exchange(bus_.to_replica, {});
            auto to_client = std::exchange(bus_.to_client, {});
            for (std::uint8_t r = 0; r < size(); ++r) {
                for (const auto& message : to_replica[r]) {
                    if (up(r)) replicas_[r]->on_message(message);
                }
            }
            for (const auto& [client_id, message] : to_client) {
                if (deaf_clients_.contains(client_id)) continue;
                if (client_type* client = owner(client_id)) client->on_message(message);
            }
        }
    }

    /// Hand-driven delivery: the replica gets what is queued for it now (even if isolated), and
    /// nothing else moves; what it sends stays queued.
    void deliver_to(std::uint8_t index) {
        for (const auto& message : std::exchange(bus_.to_replica.at(index), {})) replica(index).on_message(message);
    }

    void tick() {
        clock_.now_ns += std::uint64_t{config_.tick_ms} * 1'000'000;
        for (std::uint8_t r = 0; r < size(); ++r) {
            if (up(r)) replicas_[r]->tick();
        }
        for (auto& node : clients_) node->client->tick();
        deliver();
    }

    /// Time passes for the clients only (the replicas neither tick nor receive anything until
    /// deliver()).
    void tick_clients() {
        clock_.now_ns += std::uint64_t{config_.tick_ms} * 1'000'000;
        for (auto& node : clients_) node->client->tick();
    }

    /// Delivers, then ticks until done() holds or max_ticks have passed; returns done().
    template <typename Predicate>
    bool run_until(Predicate done, int max_ticks = 3000) {
        deliver();
        for (int i = 0; i < max_ticks && !done(); ++i) tick();
        return done();
    }

    void run(int ticks) {
        for (int i = 0; i < ticks; ++i) tick();
    }

    /// All replicas that are up are normal in the same view and have executed the same log.
    bool converged() const {
        std::uint64_t op = 0;
        std::optional<std::uint64_t> view;
        for (std::uint8_t r = 0; r < size(); ++r) {
            if (!up(r)) continue;
            const replica_type& replica = *replicas_[r];
            op = std::max(op, replica.op());
            if (view && *view != replica.view()) return false;
            view = replica.view();
        }
        for (std::uint8_t r = 0; r < size(); ++r) {
            if (!up(r)) continue;
            const replica_type& replica = *replicas_[r];
            if (replica.status() != vsr::replica_status::normal || replica.op() != op ||
                replica.commit_executed() != op) {
                return false;
            }
        }
        return true;
    }

    /// Replicas 1 and 2 are normal in one view >= 1 and one of them leads it (after replica 0,
    /// the primary of view 0, was cut off).
    bool elected_without_0() {
        const replica_type& r1 = replica(1);
        const replica_type& r2 = replica(2);
        return r1.status() == vsr::replica_status::normal && r2.status() == vsr::replica_status::normal &&
               r1.view() == r2.view() && r1.view() >= 1 && (r1.is_primary() || r2.is_primary());
    }

    void settle() {
        BOOST_REQUIRE_MESSAGE(run_until([this] { return converged(); }), "replicas never converged");
    }

    /// Submits and runs until the callback has run.
    std::shared_ptr<outcome> execute(client_type& client, const bytes& operation) {
        auto result = submit(client, operation);
        BOOST_REQUIRE_MESSAGE(run_until([&] { return result->done; }), "operation never completed");
        return result;
    }

private:
    struct client_node {
        explicit client_node(std::uint64_t seed) : random(seed) {}
        vsr::xoshiro256 random;
        std::optional<client_type> client;
    };

    client_type* owner(std::uint64_t client_id) {
        for (auto& node : clients_) {
            if (node->client->owns(client_id)) return &*node->client;
        }
        return nullptr;
    }

    vsr::config config_;
    queue_bus bus_;
    manual_clock clock_;
    std::deque<vsr::xoshiro256> randoms_;  // deque: replicas keep references into it
    std::vector<std::unique_ptr<replica_type>> replicas_;
    std::vector<bool> isolated_;
    std::deque<std::unique_ptr<client_node>> clients_;
    std::set<std::uint64_t> deaf_clients_;
};

}  // namespace test_support
