#define BOOST_TEST_MODULE replica
// The header under test comes first: proves it is self-contained.
#include "vsr/replica.hpp"

#ifndef BOOST_TEST_DYN_LINK  // meson's boost dependency may define it already
#define BOOST_TEST_DYN_LINK
#endif
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <ostream>
#include <deque>
#include <memory>
#include <numeric>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kv_state_machine.hpp"
#include "vsr/client.hpp"

// A tiny deterministic harness: one bus that queues every message per destination, a manual
// clock, three replicas of the KV store and any number of clients. Messages are delivered in
// rounds (everything sent in one round arrives in the next) until the bus is quiet; time only
// moves in tick(). No threads, no real time: every run is the same.

// Lets BOOST_TEST print these enums when an assertion fails (found by ADL).
namespace vsr {
inline std::ostream& boost_test_print_type(std::ostream& os, result_status v) { return os << to_string(v); }
inline std::ostream& boost_test_print_type(std::ostream& os, replica_status v) { return os << to_string(v); }
inline std::ostream& boost_test_print_type(std::ostream& os, command v) { return os << static_cast<int>(v); }
inline std::ostream& boost_test_print_type(std::ostream& os, submit_error v) { return os << static_cast<int>(v); }
}  // namespace vsr

namespace {

using bytes = std::vector<std::uint8_t>;

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

constexpr std::uint32_t cluster_id = 77;

vsr::config test_config() {
    vsr::config config;
    config.cluster = cluster_id;
    config.replica_count = 3;
    return config;
}

// ---- KV operations and their outcomes ----

bytes kv_op(kv::kind kind, std::string_view key, std::string_view value = {}, std::string_view expected = {}) {
    kv::operation op;
    op.op_kind = kind;
    op.key = key;
    op.value = value;
    op.expected = expected;
    bytes out;
    kv::encode_operation(op, out);
    return out;
}
bytes kv_put(std::string_view key, std::string_view value) { return kv_op(kv::kind::put, key, value); }
bytes kv_get(std::string_view key) { return kv_op(kv::kind::get, key); }
bytes kv_cas(std::string_view key, std::string_view expected, std::string_view value) {
    return kv_op(kv::kind::cas, key, value, expected);
}

struct outcome {
    bool done = false;
    int calls = 0;
    vsr::result_status status = vsr::result_status::ok;
    kv::status kv_status = kv::status::invalid;
    std::string value;
    std::uint64_t op = 0;
};

// Shared ownership: a callback that never runs must not dangle.
std::shared_ptr<outcome> submit(client_type& client, const bytes& operation) {
    auto result = std::make_shared<outcome>();
    const auto error = client.submit(operation, [result](const vsr::client_result& r) {
        result->done = true;
        ++result->calls;
        result->status = r.status;
        result->op = r.op;
        if (r.status == vsr::result_status::ok) {
            const kv::result decoded = kv::decode_result(r.body);
            result->kv_status = decoded.result_status;
            result->value = std::string(decoded.value);
        }
    });
    BOOST_TEST_REQUIRE((error == vsr::submit_error::none));
    return result;
}

std::string numbered(std::string_view prefix, std::uint64_t i) {
    std::string s(prefix);
    s += std::to_string(i);
    return s;
}

std::string value_at(const replica_type& replica, std::string_view key) {
    return std::string(replica.state_machine().find(key).value_or("<missing>"));
}

// The replicated state: KV contents plus client table.
bytes state_of(const replica_type& replica) {
    bytes out;
    replica.state_machine().snapshot(out);
    replica.clients().snapshot(out);
    return out;
}

std::uint64_t total_decode_errors(const replica_type& replica) {
    const auto& errors = replica.counters().decode_errors;
    return std::accumulate(errors.begin(), errors.end(), std::uint64_t{0});
}

std::uint64_t decode_errors(const replica_type& replica, vsr::decode_error e) {
    return replica.counters().decode_errors[static_cast<std::size_t>(e)];
}

bytes encode(const vsr::header& h, std::span<const std::uint8_t> body = {}) {
    bytes out;
    vsr::encode_message(h, body, out);
    return out;
}

vsr::header decode(std::span<const std::uint8_t> message) {
    vsr::header h;
    BOOST_TEST_REQUIRE((vsr::decode_message(message, cluster_id, 1 << 20, h) == vsr::decode_error::none));
    return h;
}

// A one-request log entry holding a KV put.
bytes make_entry(std::uint64_t op, std::uint64_t view, std::uint64_t client_id = 1) {
    vsr::entry_builder builder;
    builder.begin(op, view, 1'000 + op);
    const bytes operation = kv_put("forged", "value");
    builder.add({client_id, 1, 1, vsr::request_kind::operation, operation});
    builder.add({client_id + 1, 0, 0, vsr::request_kind::register_session, {}});
    return builder.finish();
}

class cluster {
public:
    explicit cluster(const vsr::config& config) : config_(config) {
        for (std::uint8_t i = 0; i < config_.replica_count; ++i) {
            randoms_.emplace_back(1000 + i);
            replicas_.push_back(std::make_unique<replica_type>(config_, i, bus_, clock_, randoms_.back(), false));
            isolated_.push_back(false);
        }
    }

    replica_type& replica(std::uint8_t index) {
        BOOST_TEST_REQUIRE(replicas_.at(index) != nullptr);
        return *replicas_[index];
    }
    queue_bus& bus() { return bus_; }
    std::uint8_t size() const { return config_.replica_count; }

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
        if (deaf) deaf_clients_.insert(client_id);
        else deaf_clients_.erase(client_id);
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

    void tick() {
        clock_.now_ns += std::uint64_t{config_.tick_ms} * 1'000'000;
        for (std::uint8_t r = 0; r < size(); ++r) {
            if (up(r)) replicas_[r]->tick();
        }
        for (auto& node : clients_) node->client->tick();
        deliver();
    }

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

    void settle() { BOOST_REQUIRE_MESSAGE(run_until([this] { return converged(); }), "replicas never converged"); }

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

void require_ok(const outcome& o) {
    BOOST_TEST_REQUIRE(o.done);
    BOOST_REQUIRE_MESSAGE(o.status == vsr::result_status::ok, "status " << vsr::to_string(o.status));
    BOOST_TEST_REQUIRE((o.kv_status == kv::status::ok));
}

}  // namespace

// ---- (1) the happy path -----------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(put_then_get_commits_on_all_replicas) {
    cluster c(test_config());
    auto& client = c.add_client();

    const auto put = c.execute(client, kv_put("k", "v"));
    require_ok(*put);
    BOOST_TEST(put->op == 2u);  // op 1 registered the session
    const auto get = c.execute(client, kv_get("k"));
    require_ok(*get);
    BOOST_TEST(get->value == "v");
    BOOST_TEST(get->op == 3u);
    BOOST_TEST(put->calls == 1);
    BOOST_TEST(get->calls == 1);

    c.settle();
    for (std::uint8_t r = 0; r < 3; ++r) {
        BOOST_TEST_CONTEXT("replica " << int{r}) {
            const replica_type& replica = c.replica(r);
            BOOST_TEST((replica.status() == vsr::replica_status::normal));
            BOOST_TEST(replica.view() == 0u);
            BOOST_TEST(replica.is_primary() == (r == 0));
            BOOST_TEST(replica.op() == 3u);
            BOOST_TEST(replica.commit_executed() == 3u);
            BOOST_TEST(value_at(replica, "k") == "v");
            BOOST_TEST(replica.clients().size() == 1u);
            BOOST_TEST(state_of(replica) == state_of(c.replica(0)));
        }
    }
}

BOOST_AUTO_TEST_CASE(get_of_missing_key_and_cas) {
    cluster c(test_config());
    auto& client = c.add_client();
    const auto missing = c.execute(client, kv_get("nope"));
    BOOST_TEST((missing->status == vsr::result_status::ok));
    BOOST_TEST((missing->kv_status == kv::status::not_found));
    require_ok(*c.execute(client, kv_put("k", "1")));
    const auto mismatch = c.execute(client, kv_cas("k", "0", "2"));
    BOOST_TEST((mismatch->kv_status == kv::status::mismatch));
    require_ok(*c.execute(client, kv_cas("k", "1", "2")));
    c.settle();
    for (std::uint8_t r = 0; r < 3; ++r) BOOST_TEST(value_at(c.replica(r), "k") == "2");
}

// ---- (2) malformed input --------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(malformed_input_is_counted_and_harmless) {
    cluster c(test_config());
    auto& client = c.add_client();
    require_ok(*c.execute(client, kv_put("a", "1")));
    c.settle();

    replica_type& primary = c.replica(0);
    replica_type& backup = c.replica(1);

    // A valid commit heartbeat from the primary to the backup: the template for the rest.
    vsr::header heartbeat;
    heartbeat.cmd = vsr::command::commit;
    heartbeat.sender = 0;
    heartbeat.target = 1;
    heartbeat.cluster = cluster_id;
    heartbeat.view = 0;
    heartbeat.op = primary.op();
    heartbeat.commit = primary.commit();

    // Random garbage.
    {
        vsr::xoshiro256 random(9);
        bytes garbage(200);
        for (auto& b : garbage) b = static_cast<std::uint8_t>(random.next_u64());
        const auto before = total_decode_errors(backup);
        backup.on_message(garbage);
        BOOST_TEST(total_decode_errors(backup) == before + 1);
    }
    {
        const auto before = decode_errors(backup, vsr::decode_error::too_short);
        backup.on_message(bytes(10, 0xAB));
        backup.on_message({});
        BOOST_TEST(decode_errors(backup, vsr::decode_error::too_short) == before + 2);
    }
    {
        const auto before = decode_errors(backup, vsr::decode_error::too_long);
        backup.on_message(bytes(backup.configuration().message_size_max + 1, 0));
        BOOST_TEST(decode_errors(backup, vsr::decode_error::too_long) == before + 1);
    }
    // A valid message of another cluster.
    {
        vsr::header h = heartbeat;
        h.cluster = cluster_id + 1;
        const auto before = decode_errors(backup, vsr::decode_error::wrong_cluster);
        backup.on_message(encode(h));
        BOOST_TEST(decode_errors(backup, vsr::decode_error::wrong_cluster) == before + 1);
    }
    // Addressing: wrong target, itself as sender, a sender out of range, a client command.
    {
        const auto before = backup.counters().dropped_misaddressed;
        vsr::header wrong_target = heartbeat;
        wrong_target.target = 2;
        backup.on_message(encode(wrong_target));
        vsr::header from_itself = heartbeat;
        from_itself.sender = 1;
        backup.on_message(encode(from_itself));
        vsr::header from_nowhere = heartbeat;
        from_nowhere.sender = 7;
        backup.on_message(encode(from_nowhere));
        vsr::header from_client = heartbeat;
        from_client.sender = vsr::address_client;
        backup.on_message(encode(from_client));
        vsr::header reply = heartbeat;
        reply.cmd = vsr::command::reply;
        backup.on_message(encode(reply));
        BOOST_TEST(backup.counters().dropped_misaddressed == before + 5);
    }
    // A prepare cut short.
    {
        vsr::header h = heartbeat;
        h.cmd = vsr::command::prepare;
        h.op = backup.op() + 1;
        bytes truncated = encode(h, make_entry(backup.op() + 1, 0));
        truncated.resize(truncated.size() - 5);
        const auto before = decode_errors(backup, vsr::decode_error::size_mismatch);
        backup.on_message(truncated);
        BOOST_TEST(decode_errors(backup, vsr::decode_error::size_mismatch) == before + 1);
    }
    // A prepare whose body is corrupt but re-sealed, so only body validation can catch it.
    {
        const std::uint64_t op_before = backup.op();
        const auto before = backup.counters().dropped_malformed_body;
        vsr::header h = heartbeat;
        h.cmd = vsr::command::prepare;
        h.op = op_before + 1;
        bytes entry = make_entry(op_before + 1, 0);
        entry[vsr::entry_header_size + 28] = 9;  // request kind
        backup.on_message(encode(h, entry));
        // A well-formed entry for a different op than the header says.
        backup.on_message(encode(h, make_entry(op_before + 2, 0)));
        // An entry tagged with a view newer than the prepare's.
        backup.on_message(encode(h, make_entry(op_before + 1, 5)));
        // Not an entry at all.
        backup.on_message(encode(h, bytes(40, 0xFF)));
        BOOST_TEST(backup.counters().dropped_malformed_body == before + 4);
        BOOST_TEST(backup.op() == op_before);
    }
    // Requests: a bad request kind at the primary, and any request at a backup.
    {
        vsr::header h;
        h.cmd = vsr::command::request;
        h.sender = vsr::address_client;
        h.target = 0;
        h.cluster = cluster_id;
        h.client_id = 12345;
        h.extra = 9;
        const auto malformed = primary.counters().dropped_malformed_body;
        primary.on_message(encode(h));
        BOOST_TEST(primary.counters().dropped_malformed_body == malformed + 1);
        h.target = 1;
        h.extra = 0;
        const auto not_primary = backup.counters().dropped_not_primary;
        backup.on_message(encode(h));
        BOOST_TEST(backup.counters().dropped_not_primary == not_primary + 1);
    }
    // Every single-bit flip of a valid message is a decode error, counted exactly once.
    {
        const bytes valid = encode(heartbeat);
        vsr::xoshiro256 random(10);
        for (int i = 0; i < 500; ++i) {
            bytes m = valid;
            const auto bit = vsr::uniform_below(random, m.size() * 8);
            m[bit / 8] = static_cast<std::uint8_t>(m[bit / 8] ^ (1u << (bit % 8)));
            const auto before = total_decode_errors(backup);
            backup.on_message(m);
            BOOST_TEST_REQUIRE(total_decode_errors(backup) == before + 1);
        }
    }
    c.deliver();  // whatever the replicas answered to the valid messages

    // The cluster still works, and nothing above changed the replicated state.
    BOOST_TEST(value_at(backup, "a") == "1");
    require_ok(*c.execute(client, kv_put("b", "2")));
    const auto get = c.execute(client, kv_get("a"));
    require_ok(*get);
    BOOST_TEST(get->value == "1");
    c.settle();
    for (std::uint8_t r = 0; r < 3; ++r) {
        BOOST_TEST(value_at(c.replica(r), "b") == "2");
        BOOST_TEST(!c.replica(r).state_machine().find("forged").has_value());
        BOOST_TEST(state_of(c.replica(r)) == state_of(primary));
    }
}

BOOST_AUTO_TEST_CASE(resealed_prepare_mutations_never_crash_a_backup) {
    // Each mutation either still parses as an entry (and is appended) or is counted as a
    // malformed body: never a crash, never silently dropped.
    const vsr::config config = test_config();
    vsr::header h;
    h.cmd = vsr::command::prepare;
    h.sender = 0;
    h.target = 1;
    h.cluster = cluster_id;
    h.op = 1;
    const bytes valid = encode(h, make_entry(1, 0));
    vsr::xoshiro256 mutations(11);
    for (int i = 0; i < 400; ++i) {
        queue_bus bus;
        manual_clock clock;
        vsr::xoshiro256 random(static_cast<std::uint64_t>(i));
        replica_type backup(config, 1, bus, clock, random, false);
        bytes m = valid;
        const auto bit = vsr::header_size * 8 + vsr::uniform_below(mutations, (m.size() - vsr::header_size) * 8);
        m[bit / 8] = static_cast<std::uint8_t>(m[bit / 8] ^ (1u << (bit % 8)));
        vsr::seal(m, cluster_id);
        backup.on_message(m);
        BOOST_TEST_CONTEXT("bit " << bit) {
            BOOST_TEST_REQUIRE((backup.op() == 1u) != (backup.counters().dropped_malformed_body == 1u));
        }
    }
}

BOOST_AUTO_TEST_CASE(forged_headers_never_crash) {
    // Well-sealed messages with arbitrary (small) header values and bodies that are empty,
    // garbage, one entry, or a suffix. A crash-fault protocol need not make sense of them,
    // but it must not crash on them.
    const vsr::config config = test_config();
    vsr::xoshiro256 random(12);
    for (int i = 0; i < 2000; ++i) {
        cluster c(config);
        auto& client = c.add_client();
        if (i % 4 == 0) require_ok(*c.execute(client, kv_put("k", "v")));  // a nonempty log
        for (int j = 0; j < 5; ++j) {
            vsr::header h;
            h.cmd = static_cast<vsr::command>(1 + vsr::uniform_below(random, vsr::command_max));
            h.sender = static_cast<std::uint8_t>(vsr::uniform_below(random, 3));
            h.target = static_cast<std::uint8_t>(vsr::uniform_below(random, 3));
            h.cluster = cluster_id;
            h.view = vsr::uniform_below(random, 3);
            h.op = vsr::uniform_below(random, 4);
            h.commit = vsr::uniform_below(random, 4);
            h.extra = vsr::uniform_below(random, 3);
            h.client_id = vsr::uniform_below(random, 3);
            h.session = vsr::uniform_below(random, 3);
            h.request_number = vsr::uniform_below(random, 3);
            bytes body;
            switch (vsr::uniform_below(random, 4)) {
                case 0: break;
                case 1:
                    body.resize(vsr::uniform_below(random, 64));
                    for (auto& b : body) b = static_cast<std::uint8_t>(random.next_u64());
                    break;
                case 2: body = make_entry(std::max<std::uint64_t>(h.op, 1), h.view); break;
                case 3: {
                    const std::uint64_t prev = vsr::uniform_below(random, 3);
                    vsr::byte_writer w(body);
                    w.u64(prev);
                    w.u64(0);
                    const auto count = static_cast<std::uint32_t>(vsr::uniform_below(random, 3));
                    w.u32(count);
                    w.u32(0);
                    for (std::uint32_t e = 0; e < count; ++e) {
                        const bytes entry = make_entry(prev + 1 + e, vsr::uniform_below(random, 2));
                        w.u32(static_cast<std::uint32_t>(entry.size()));
                        w.bytes(entry);
                    }
                    break;
                }
            }
            const bytes m = encode(h, body);
            BOOST_TEST_CHECKPOINT("iteration " << i << " message " << j << " command " << int(h.cmd));
            c.replica(h.target).on_message(m);
        }
        c.run(5);
    }
}

// ---- (3) view change ------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(view_change_elects_new_primary_and_keeps_committed_data) {
    cluster c(test_config());
    auto& client = c.add_client();
    require_ok(*c.execute(client, kv_put("old", "1")));
    c.settle();
    const std::uint64_t committed = c.replica(0).commit_executed();

    c.isolate(0);  // the primary of view 0 goes silent
    const bool elected = c.run_until([&] {
        const replica_type& r1 = c.replica(1);
        const replica_type& r2 = c.replica(2);
        return r1.status() == vsr::replica_status::normal && r2.status() == vsr::replica_status::normal &&
               r1.view() == r2.view() && r1.view() >= 1 && (r1.is_primary() || r2.is_primary());
    });
    BOOST_TEST_REQUIRE(elected);
    const std::uint64_t view = c.replica(1).view();
    const std::uint8_t new_primary = c.replica(1).is_primary() ? 1 : 2;
    BOOST_TEST(c.replica(new_primary).counters().views_started_as_primary >= 1u);
    BOOST_TEST(c.replica(new_primary).commit_executed() >= committed);

    // New operations commit under the new primary (the client finds it by retrying).
    require_ok(*c.execute(client, kv_put("new", "2")));
    const auto old = c.execute(client, kv_get("old"));
    require_ok(*old);
    BOOST_TEST(old->value == "1");
    BOOST_TEST(client.view() >= view);
    c.settle();
    for (const std::uint8_t r : {std::uint8_t{1}, std::uint8_t{2}}) {
        BOOST_TEST(value_at(c.replica(r), "new") == "2");
        BOOST_TEST(value_at(c.replica(r), "old") == "1");
    }

    // The old primary comes back, learns the new view and catches up.
    c.isolate(0, false);
    c.settle();
    BOOST_TEST(c.replica(0).view() == c.replica(1).view());
    BOOST_TEST(!c.replica(0).is_primary());
    BOOST_TEST(value_at(c.replica(0), "new") == "2");
    BOOST_TEST(state_of(c.replica(0)) == state_of(c.replica(new_primary)));
}

BOOST_AUTO_TEST_CASE(view_change_keeps_uncommitted_but_prepared_operation) {
    // The primary prepares an operation, a backup acknowledges it, and the primary dies before
    // anyone else learns the commit. The operation was acknowledged to nobody yet, but it is in a
    // quorum of logs, so the new view must keep it.
    cluster c(test_config());
    auto& client = c.add_client();
    require_ok(*c.execute(client, kv_put("k", "1")));
    c.settle();

    auto pending = submit(client, kv_put("k", "2"));
    // Round 1: the request reaches the primary, which sends prepares.
    auto requests = std::exchange(c.bus().to_replica[0], {});
    for (const auto& m : requests) c.replica(0).on_message(m);
    // Round 2: backups append and acknowledge; the acknowledgements are lost with the primary.
    for (std::uint8_t r : {std::uint8_t{1}, std::uint8_t{2}}) {
        auto prepares = std::exchange(c.bus().to_replica[r], {});
        for (const auto& m : prepares) c.replica(r).on_message(m);
    }
    BOOST_TEST(c.replica(1).op() == c.replica(0).op());
    c.isolate(0);
    c.bus().to_replica[0].clear();

    BOOST_TEST_REQUIRE(c.run_until([&] { return pending->done; }));
    // The client's retry reaches the new primary, which answers from its client table once the
    // inherited entry executed: the operation ran exactly once.
    require_ok(*pending);
    c.settle();
    BOOST_TEST(value_at(c.replica(1), "k") == "2");
    BOOST_TEST(value_at(c.replica(2), "k") == "2");
}

BOOST_AUTO_TEST_CASE(view_change_keeps_operation_committed_without_new_primary) {
    // The old primary commits an operation with the help of replica 2 only, answers the
    // client, and dies. Replica 1, the primary of view 1, never saw it: it must take the log
    // from replica 2's do_view_change (same last normal view, higher op), not its own.
    cluster c(test_config());
    auto& client = c.add_client();
    require_ok(*c.execute(client, kv_put("k", "1")));
    c.settle();

    auto pending = submit(client, kv_put("k", "2"));
    auto& bus = c.bus();
    for (const auto& m : std::exchange(bus.to_replica[0], {})) c.replica(0).on_message(m);  // request
    bus.to_replica[1].clear();  // replica 1 loses its prepare
    for (const auto& m : std::exchange(bus.to_replica[2], {})) c.replica(2).on_message(m);  // prepare
    for (const auto& m : std::exchange(bus.to_replica[0], {})) c.replica(0).on_message(m);  // prepare_ok
    BOOST_TEST_REQUIRE(c.replica(0).commit() == c.replica(0).op());  // committed by 0 and 2
    BOOST_TEST_REQUIRE(c.replica(1).op() < c.replica(0).op());
    c.isolate(0);
    c.deliver();  // the reply reaches the client
    require_ok(*pending);

    const auto read = c.execute(client, kv_get("k"));
    require_ok(*read);
    BOOST_TEST(read->value == "2");  // an acknowledged write survives the view change
    BOOST_TEST(c.replica(1).view() >= 1u);
    c.settle();
    BOOST_TEST(value_at(c.replica(1), "k") == "2");
}

BOOST_AUTO_TEST_CASE(primary_does_not_commit_without_quorum) {
    cluster c(test_config());
    auto& client = c.add_client();
    require_ok(*c.execute(client, kv_put("k", "1")));
    c.settle();
    const std::uint64_t commit = c.replica(0).commit();

    c.isolate(1);
    c.isolate(2);
    auto pending = submit(client, kv_put("k", "2"));
    c.run(20);  // the primary prepares and resends, but nobody acknowledges
    BOOST_TEST(c.replica(0).op() == commit + 1);
    BOOST_TEST(c.replica(0).commit() == commit);
    BOOST_TEST(c.replica(0).commit_executed() == commit);
    BOOST_TEST(value_at(c.replica(0), "k") == "1");
    BOOST_TEST(!pending->done);

    c.isolate(1, false);  // one backup back: a quorum again
    BOOST_TEST_REQUIRE(c.run_until([&] { return pending->done; }));
    require_ok(*pending);
    BOOST_TEST(value_at(c.replica(0), "k") == "2");
}

BOOST_AUTO_TEST_CASE(prepare_after_a_gap_is_not_acknowledged) {
    vsr::config config = test_config();
    config.batch_requests_max = 1;  // one prepare per request, so there are two to lose one of
    cluster c(config);
    auto& client = c.add_client(2);
    require_ok(*c.execute(client, kv_put("warm", "up")));  // registers both sessions
    c.settle();
    replica_type& backup = c.replica(1);
    const std::uint64_t held = backup.op();

    auto first = submit(client, kv_put("x", "1"));
    auto second = submit(client, kv_put("y", "2"));
    for (const auto& m : std::exchange(c.bus().to_replica[0], {})) c.replica(0).on_message(m);
    BOOST_TEST_REQUIRE(c.replica(0).op() == held + 2);
    auto prepares = std::exchange(c.bus().to_replica[1], {});
    BOOST_TEST_REQUIRE(prepares.size() == 2u);
    BOOST_TEST_REQUIRE(decode(prepares[1]).op == held + 2);

    const std::size_t acks = c.bus().to_replica[0].size();
    backup.on_message(prepares[1]);  // op held + 1 was lost
    BOOST_TEST(backup.op() == held);
    BOOST_TEST_REQUIRE(c.bus().to_replica[0].size() == acks + 1);
    const vsr::header ack = decode(c.bus().to_replica[0].back());
    BOOST_TEST((ack.cmd == vsr::command::prepare_ok));
    BOOST_TEST(ack.op == held);  // claims only what it holds, so the primary resends the gap

    BOOST_TEST_REQUIRE(c.run_until([&] { return first->done && second->done; }));
    c.settle();
    BOOST_TEST(value_at(backup, "x") == "1");
    BOOST_TEST(value_at(backup, "y") == "2");
    BOOST_TEST(state_of(backup) == state_of(c.replica(0)));
}

// ---- (4) batching ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(requests_are_batched_under_load) {
    cluster c(test_config());
    constexpr std::uint32_t sessions = 32;
    auto& client = c.add_client(sessions);
    std::vector<std::shared_ptr<outcome>> results;
    for (std::uint32_t i = 0; i < sessions; ++i) {
        results.push_back(submit(client, kv_put(numbered("key", i), std::to_string(i))));
    }
    BOOST_TEST_REQUIRE(c.run_until([&] {
        return std::all_of(results.begin(), results.end(), [](const auto& r) { return r->done; });
    }));
    for (const auto& r : results) require_ok(*r);

    c.settle();
    const replica_type& primary = c.replica(0);
    const std::uint64_t requests = 2 * sessions;  // one registration and one put per session
    BOOST_TEST(primary.op() < requests);          // fewer prepares than requests
    std::uint64_t in_log = 0;
    std::uint32_t largest_batch = 0;
    for (std::uint64_t op = 1; op <= primary.op(); ++op) {
        const auto h = vsr::read_entry_header(primary.log().entry(op));
        in_log += h.request_count;
        largest_batch = std::max(largest_batch, h.request_count);
    }
    BOOST_TEST(in_log == requests);  // each request exactly once
    BOOST_TEST(largest_batch > 1u);
    for (std::uint8_t r = 0; r < 3; ++r) {
        BOOST_TEST(c.replica(r).state_machine().size() == sessions);
        BOOST_TEST(value_at(c.replica(r), "key31") == "31");
        BOOST_TEST(state_of(c.replica(r)) == state_of(primary));
    }
}

BOOST_AUTO_TEST_CASE(batch_requests_max_bounds_each_entry) {
    vsr::config config = test_config();
    config.batch_requests_max = 3;
    config.pipeline_max = 1;  // queue up everything behind one prepare
    cluster c(config);
    auto& client = c.add_client(10);
    std::vector<std::shared_ptr<outcome>> results;
    for (int i = 0; i < 10; ++i) results.push_back(submit(client, kv_put(numbered("k", i), "v")));
    BOOST_TEST_REQUIRE(c.run_until([&] {
        return std::all_of(results.begin(), results.end(), [](const auto& r) { return r->done; });
    }));
    for (const auto& r : results) require_ok(*r);
    const replica_type& primary = c.replica(0);
    for (std::uint64_t op = 1; op <= primary.op(); ++op) {
        BOOST_TEST(vsr::read_entry_header(primary.log().entry(op)).request_count <= 3u);
    }
}

// ---- (5) deduplication ----------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(duplicate_request_executes_once) {
    cluster c(test_config());
    auto& client = c.add_client();
    require_ok(*c.execute(client, kv_put("k", "v0")));
    c.settle();
    replica_type& primary = c.replica(0);
    const std::uint64_t client_id = client.client_ids().at(0);

    // A cas: executing it a second time would fail with mismatch and record that reply.
    auto cas = submit(client, kv_cas("k", "v0", "v1"));
    auto& queue = c.bus().to_replica[0];
    BOOST_TEST_REQUIRE(queue.size() == 1u);
    const bytes request = queue.back();
    const vsr::header request_header = decode(request);
    queue.push_back(request);  // duplicated in flight

    const std::uint64_t op_before = primary.op();
    const auto duplicates_before = primary.counters().dropped_duplicate_request;
    BOOST_TEST_REQUIRE(c.run_until([&] { return cas->done; }));
    require_ok(*cas);
    BOOST_TEST(cas->calls == 1);
    BOOST_TEST(primary.op() == op_before + 1);
    BOOST_TEST(primary.counters().dropped_duplicate_request == duplicates_before + 1);

    // The same request again, after it executed: answered from the client table.
    const auto executed = primary.counters().ops_executed;
    const auto resent = primary.counters().replies_resent;
    const auto client_dropped = client.counters().dropped_messages;
    c.bus().to_replica[0].push_back(request);
    c.deliver();
    BOOST_TEST(primary.op() == op_before + 1);
    BOOST_TEST(primary.counters().ops_executed == executed);
    BOOST_TEST(primary.counters().replies_resent == resent + 1);
    const bytes& reply = c.bus().client_log.back();
    const vsr::header reply_header = decode(reply);
    BOOST_TEST(reply_header.request_number == request_header.request_number);
    BOOST_TEST(reply_header.op == op_before + 1);
    const auto reply_body = vsr::message_body(reply);
    BOOST_TEST(bytes(reply_body.begin(), reply_body.end()) == bytes{static_cast<std::uint8_t>(kv::status::ok)});
    BOOST_TEST(client.counters().dropped_messages == client_dropped + 1);  // already completed
    BOOST_TEST(cas->calls == 1);

    c.settle();
    for (std::uint8_t r = 0; r < 3; ++r) {
        BOOST_TEST_CONTEXT("replica " << int{r}) {
            const vsr::client_session* session = c.replica(r).clients().find(client_id);
            BOOST_TEST_REQUIRE(session != nullptr);
            BOOST_TEST(session->request_number == request_header.request_number);
            BOOST_TEST(session->reply == bytes{static_cast<std::uint8_t>(kv::status::ok)});
            BOOST_TEST(value_at(c.replica(r), "k") == "v1");
        }
    }
}

BOOST_AUTO_TEST_CASE(duplicate_prepare_is_not_appended_twice) {
    cluster c(test_config());
    auto& client = c.add_client();
    require_ok(*c.execute(client, kv_put("k", "v")));
    c.settle();
    auto pending = submit(client, kv_put("k", "w"));
    c.deliver();
    BOOST_TEST_REQUIRE(pending->done);
    // Replay every prepare the backup ever got for ops it already has.
    replica_type& backup = c.replica(1);
    const std::uint64_t op = backup.op();
    for (std::uint64_t at = 1; at <= op; ++at) {
        vsr::header h;
        h.cmd = vsr::command::prepare;
        h.sender = 0;
        h.target = 1;
        h.cluster = cluster_id;
        h.op = at;
        h.commit = c.replica(0).commit();
        backup.on_message(encode(h, c.replica(0).log().entry(at)));
    }
    BOOST_TEST(backup.op() == op);
    c.settle();
    BOOST_TEST(state_of(backup) == state_of(c.replica(0)));
}

// ---- (6) log length limit ---------------------------------------------------------------

BOOST_AUTO_TEST_CASE(full_log_refuses_requests) {
    vsr::config config = test_config();
    config.log_entries_max = 3;
    cluster c(config);
    auto& client = c.add_client();
    require_ok(*c.execute(client, kv_put("a", "1")));  // op 1 registered, this is op 2
    require_ok(*c.execute(client, kv_put("b", "2")));  // op 3: the log is now full

    const auto refused_before = c.replica(0).counters().requests_refused_log_full;
    const auto refused = c.execute(client, kv_put("c", "3"));
    BOOST_TEST((refused->status == vsr::result_status::log_full));
    BOOST_TEST(c.replica(0).counters().requests_refused_log_full > refused_before);

    // Reads go through the log too, so they are refused as well; nothing crashes.
    const auto read = c.execute(client, kv_get("a"));
    BOOST_TEST((read->status == vsr::result_status::log_full));

    c.settle();
    for (std::uint8_t r = 0; r < 3; ++r) {
        BOOST_TEST(c.replica(r).op() == 3u);
        BOOST_TEST(value_at(c.replica(r), "a") == "1");
        BOOST_TEST(value_at(c.replica(r), "b") == "2");
        BOOST_TEST(!c.replica(r).state_machine().find("c").has_value());
    }
}

BOOST_AUTO_TEST_CASE(full_log_refuses_queued_requests) {
    // With a one-entry pipeline the requests queue at the primary; the entry that fills the
    // log leaves the rest in the queue, and they are refused rather than forgotten.
    vsr::config config = test_config();
    config.log_entries_max = 3;
    config.pipeline_max = 1;
    cluster c(config);
    constexpr std::uint32_t sessions = 8;
    auto& client = c.add_client(sessions);
    std::vector<std::shared_ptr<outcome>> results;
    for (std::uint32_t i = 0; i < sessions; ++i) results.push_back(submit(client, kv_put(numbered("k", i), "v")));
    BOOST_TEST_REQUIRE(c.run_until([&] {
        return std::all_of(results.begin(), results.end(), [](const auto& r) { return r->done; });
    }));
    std::size_t ok = 0, full = 0;
    for (std::uint32_t i = 0; i < sessions; ++i) {
        const auto& r = *results[i];
        BOOST_TEST(r.calls == 1);
        if (r.status == vsr::result_status::ok) {
            ++ok;
            BOOST_TEST(value_at(c.replica(0), numbered("k", i)) == "v");
        } else {
            BOOST_TEST((r.status == vsr::result_status::log_full));
            ++full;
            BOOST_TEST(!c.replica(0).state_machine().find(numbered("k", i)).has_value());
        }
    }
    BOOST_TEST(ok >= 1u);
    BOOST_TEST(full >= 1u);
    BOOST_TEST(c.replica(0).counters().requests_refused_log_full >= full);
    BOOST_TEST(c.replica(0).op() == 3u);
}

// The primary refuses a registration with log_full like any request, but the client only
// accepts an ok reply to a registration: it drops the log_full reply and keeps retrying, so
// the submitted operation never completes (no result, not even with deadline_ms set, since
// the deadline is only checked for sessions that are already registered).

BOOST_AUTO_TEST_CASE(full_log_refuses_new_client) {
    vsr::config config = test_config();
    config.log_entries_max = 2;
    cluster c(config);
    auto& first = c.add_client(1, 1);
    require_ok(*c.execute(first, kv_put("a", "1")));  // ops 1 and 2: the log is full
    auto& second = c.add_client(1, 2);
    auto refused = submit(second, kv_put("b", "2"));
    BOOST_TEST(c.run_until([&] { return refused->done; }, 1000));
    BOOST_TEST((refused->status == vsr::result_status::log_full));
}

// ---- (7) session eviction -------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(evicted_session_gets_session_evicted) {
    vsr::config config = test_config();
    config.clients_max = 1;
    cluster c(config);
    auto& first = c.add_client(1, 11);
    auto& second = c.add_client(1, 22);
    const std::uint64_t first_id = first.client_ids().at(0);
    const std::uint64_t second_id = second.client_ids().at(0);
    BOOST_TEST_REQUIRE(first_id != second_id);
    require_ok(*c.execute(first, kv_put("a", "1")));

    // The second client's registration reaches the primary just before the first client's
    // next request, so that request is admitted but its session is gone when it executes.
    auto from_second = submit(second, kv_put("b", "2"));
    auto from_first = submit(first, kv_put("a", "changed"));
    BOOST_TEST_REQUIRE(c.run_until([&] { return from_first->done && from_second->done; }));

    BOOST_TEST((from_first->status == vsr::result_status::session_evicted));
    BOOST_TEST(from_first->calls == 1);
    require_ok(*from_second);
    BOOST_TEST(first.counters().evictions == 1u);
    c.settle();
    for (std::uint8_t r = 0; r < 3; ++r) {
        BOOST_TEST_CONTEXT("replica " << int{r}) {
            const replica_type& replica = c.replica(r);
            BOOST_TEST(value_at(replica, "a") == "1");  // the evicted request did not execute
            BOOST_TEST(value_at(replica, "b") == "2");
            BOOST_TEST(replica.clients().size() == 1u);
            BOOST_TEST(replica.clients().find(first_id) == nullptr);
            BOOST_TEST(replica.clients().find(second_id) != nullptr);
            BOOST_TEST(replica.counters().sessions_evicted == 1u);
        }
    }

    // The evicted client registers again (evicting the other) and carries on.
    require_ok(*c.execute(first, kv_put("a", "again")));
    c.settle();
    BOOST_TEST(value_at(c.replica(2), "a") == "again");
    BOOST_TEST(c.replica(0).clients().find(second_id) == nullptr);
}

BOOST_AUTO_TEST_CASE(request_with_forgotten_session_is_told_evicted) {
    // The eviction notice to an idle client is lost, so it still believes in its session; its
    // next request gets session_evicted from the primary instead of executing.
    vsr::config config = test_config();
    config.clients_max = 1;
    cluster c(config);
    auto& first = c.add_client(1, 11);
    auto& second = c.add_client(1, 22);
    const std::uint64_t first_id = first.client_ids().at(0);
    require_ok(*c.execute(first, kv_put("a", "1")));

    c.deafen(first_id);
    require_ok(*c.execute(second, kv_put("b", "2")));  // evicts the first client's session
    c.deafen(first_id, false);
    BOOST_TEST(first.counters().evictions == 0u);  // it never heard
    BOOST_TEST(c.replica(0).clients().find(first_id) == nullptr);

    const std::uint64_t op = c.replica(0).op();
    const auto stale = c.execute(first, kv_put("a", "stale"));
    BOOST_TEST((stale->status == vsr::result_status::session_evicted));
    BOOST_TEST(first.counters().evictions == 1u);
    BOOST_TEST(c.replica(0).op() == op);  // nothing was prepared for it
    c.settle();
    for (std::uint8_t r = 0; r < 3; ++r) BOOST_TEST(value_at(c.replica(r), "a") == "1");
}

// ---- (8) recovery ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(restarted_replica_recovers_committed_state) {
    cluster c(test_config());
    auto& client = c.add_client();
    require_ok(*c.execute(client, kv_put("k1", "1")));
    c.settle();

    c.crash(2);
    // The remaining quorum keeps committing while replica 2 is gone.
    require_ok(*c.execute(client, kv_put("k2", "2")));
    require_ok(*c.execute(client, kv_put("k3", "3")));
    c.settle();

    c.restart(2);
    BOOST_TEST((c.replica(2).status() == vsr::replica_status::recovering));
    BOOST_TEST(c.replica(2).op() == 0u);
    BOOST_TEST_REQUIRE(c.run_until([&] {
        return c.replica(2).status() == vsr::replica_status::normal &&
               c.replica(2).commit_executed() == c.replica(0).commit_executed();
    }));
    BOOST_TEST(c.replica(2).counters().recoveries_completed == 1u);
    BOOST_TEST(c.replica(2).view() == c.replica(0).view());
    BOOST_TEST(value_at(c.replica(2), "k1") == "1");
    BOOST_TEST(value_at(c.replica(2), "k2") == "2");
    BOOST_TEST(value_at(c.replica(2), "k3") == "3");
    BOOST_TEST(state_of(c.replica(2)) == state_of(c.replica(0)));

    // It takes part again: with replica 1 gone, replicas 0 and 2 form the quorum.
    c.isolate(1);
    require_ok(*c.execute(client, kv_put("k4", "4")));
    c.settle();
    BOOST_TEST(value_at(c.replica(2), "k4") == "4");
}

BOOST_AUTO_TEST_CASE(recovering_replica_does_not_vote) {
    // While recovering, a replica holds no log it could vouch for, so it must not acknowledge
    // prepares (that would count towards a quorum).
    cluster c(test_config());
    auto& client = c.add_client();
    require_ok(*c.execute(client, kv_put("k", "1")));
    c.settle();
    c.crash(2);
    c.restart(2);
    // Deliver nothing to the recovering replica; meanwhile a prepare to it must be dropped.
    vsr::header h;
    h.cmd = vsr::command::prepare;
    h.sender = 0;
    h.target = 2;
    h.cluster = cluster_id;
    h.op = 1;
    const auto stale_before = c.replica(2).counters().dropped_stale_view;
    const std::size_t queued = c.bus().to_replica[0].size();
    c.replica(2).on_message(encode(h, c.replica(0).log().entry(1)));
    BOOST_TEST(c.replica(2).counters().dropped_stale_view == stale_before + 1);
    BOOST_TEST(c.replica(2).op() == 0u);
    BOOST_TEST(c.bus().to_replica[0].size() == queued);  // no prepare_ok sent
    c.settle();
    BOOST_TEST(value_at(c.replica(2), "k") == "1");
}
