#define BOOST_TEST_MODULE concepts
// The archetypes come first: proves they (and the concept headers they use) are self-contained.
#include "archetypes.hpp"

#ifndef BOOST_TEST_DYN_LINK  // meson's boost dependency may define it already
#define BOOST_TEST_DYN_LINK
#endif
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <span>
#include <vector>

#include "toastyfs/concepts.hpp"
#include "vsr/client.hpp"
#include "vsr/replica.hpp"
#include "vsr/wire.hpp"

namespace archetypes = vsr::archetypes;

// Every member of the replica and the client, compiled against the archetypes: each template body
// uses only what its concepts promise. Both replica flavours, since queries are an `if constexpr`.
template class vsr::basic_replica<archetypes::state_machine, archetypes::message_bus, archetypes::time_source,
                                  archetypes::random_source>;
template class vsr::basic_replica<archetypes::state_machine_with_queries, archetypes::message_bus,
                                  archetypes::time_source, archetypes::random_source>;
template class vsr::basic_replica<archetypes::state_machine, archetypes::message_bus, archetypes::time_source,
                                  archetypes::random_source, archetypes::storage>;
template class vsr::basic_replica<archetypes::state_machine_with_incremental_snapshot, archetypes::message_bus,
                                  archetypes::time_source, archetypes::random_source, archetypes::storage>;
template class vsr::basic_replica<archetypes::state_machine_with_stored_state, archetypes::message_bus,
                                  archetypes::time_source, archetypes::random_source, archetypes::storage>;
template class vsr::basic_replica<archetypes::state_machine_with_stored_state, archetypes::message_bus,
                                  archetypes::time_source, archetypes::random_source>;
template class vsr::basic_client<archetypes::message_bus, archetypes::random_source>;

using replica_type = vsr::basic_replica<archetypes::state_machine, archetypes::message_bus, archetypes::time_source,
                                        archetypes::random_source>;
using query_replica_type = vsr::basic_replica<archetypes::state_machine_with_queries, archetypes::message_bus,
                                              archetypes::time_source, archetypes::random_source>;
using persistent_replica_type =
    vsr::basic_replica<archetypes::state_machine, archetypes::message_bus, archetypes::time_source,
                       archetypes::random_source, archetypes::storage>;
using client_type = vsr::basic_client<archetypes::message_bus, archetypes::random_source>;

// The object store submits its metadata operations through a VSR client, whatever its policies.
static_assert(toastyfs::metadata_client<client_type>);

namespace {

// Missing one requirement each: the concept must say no.
struct machine_without_restore {
    void execute(const vsr::operation_context&, std::span<const std::uint8_t>, std::vector<std::uint8_t>&);
    void snapshot(std::vector<std::uint8_t>&) const;
    std::size_t result_size_max() const;
};
static_assert(!vsr::state_machine<machine_without_restore>);

struct machine_with_mutable_snapshot {
    void execute(const vsr::operation_context&, std::span<const std::uint8_t>, std::vector<std::uint8_t>&);
    void snapshot(std::vector<std::uint8_t>&);
    bool restore(std::span<const std::uint8_t>);
    std::size_t result_size_max() const;
};
static_assert(!vsr::state_machine<machine_with_mutable_snapshot>);

struct immovable_machine : archetypes::state_machine {
    immovable_machine() = default;
    immovable_machine(immovable_machine&&) = delete;
};
static_assert(!vsr::state_machine<immovable_machine>);  // the replica takes its machine by value

struct machine_with_mutating_query : archetypes::state_machine {
    bool is_query(std::span<const std::uint8_t>) const;
    void query(std::span<const std::uint8_t>, std::vector<std::uint8_t>&);  // not const
};
static_assert(vsr::state_machine<machine_with_mutating_query>);
static_assert(!vsr::state_machine_with_queries<machine_with_mutating_query>);

struct machine_with_step_without_result : archetypes::state_machine {
    void snapshot_begin();
    void snapshot_step(std::vector<std::uint8_t>&, std::size_t);  // must say whether it is done
    void snapshot_abandon();
};
static_assert(!vsr::state_machine_with_incremental_snapshot<machine_with_step_without_result>);

struct machine_whose_store_cannot_fail : archetypes::state_machine_with_stored_state {
    bool failed() = delete;  // the replica must learn that its store failed
};
static_assert(!vsr::state_machine_with_stored_state<machine_whose_store_cannot_fail>);

struct bus_without_client_path {
    void send_to_replica(std::uint8_t, std::span<const std::uint8_t>);
};
static_assert(!vsr::message_bus<bus_without_client_path>);

struct clock_with_signed_time {
    std::int64_t monotonic_ns();
    std::int64_t realtime_ns();
};
static_assert(!vsr::time_source<clock_with_signed_time>);

struct random_with_narrow_result {
    std::uint32_t next_u64();
};
static_assert(!vsr::random_source<random_with_narrow_result>);

struct storage_without_sync {
    bool persistent() const;
    bool read(vsr::zone, std::uint64_t, std::span<std::uint8_t>);
    bool write(vsr::zone, std::uint64_t, std::span<const std::uint8_t>);
    std::uint64_t size(vsr::zone) const;
};
static_assert(!vsr::storage<storage_without_sync>);

constexpr std::uint32_t cluster = 9;

vsr::config single_replica() {
    vsr::config cfg;
    cfg.cluster = cluster;
    cfg.replica_count = 1;
    return cfg;
}

std::vector<std::uint8_t> request(std::uint64_t session, std::uint64_t request_number, vsr::request_kind kind) {
    vsr::header h;
    h.cmd = vsr::command::request;
    h.sender = vsr::address_client;
    h.target = 0;
    h.cluster = cluster;
    h.client_id = 42;
    h.session = session;
    h.request_number = request_number;
    h.extra = static_cast<std::uint64_t>(kind);
    const std::vector<std::uint8_t> operation{1, 2, 3};
    std::vector<std::uint8_t> out;
    vsr::encode_message(h, operation, out);
    return out;
}

template <typename Replica>
void tick(Replica& replica, int ticks) {
    for (int i = 0; i < ticks; ++i) {
        replica.tick();
        replica.flush();
    }
}

// Drives a one-replica cluster: register a session, then one operation and one query.
template <typename Replica>
void drive(Replica& replica) {
    replica.on_message(request(0, 0, vsr::request_kind::register_session));
    tick(replica, 10);
    const vsr::client_session* session = replica.clients().find(42);
    BOOST_TEST_REQUIRE(session != nullptr);
    replica.on_message(request(session->session, 1, vsr::request_kind::operation));
    tick(replica, 10);
    replica.on_message(request(session->session, 2, vsr::request_kind::query));
    tick(replica, 10);
}

}  // namespace

BOOST_AUTO_TEST_CASE(replica_runs_on_the_archetypes) {
    archetypes::message_bus bus(0);
    archetypes::time_source time(0);
    archetypes::random_source random(0);
    replica_type replica(single_replica(), 0, bus, time, random, false);
    drive(replica);
    // Without queries, the query is ordered like an operation: three entries executed.
    BOOST_TEST(replica.counters().ops_executed == 3u);
    BOOST_TEST(replica.counters().queries_answered == 0u);
    BOOST_TEST(replica.commit_executed() == 3u);
    BOOST_TEST(replica.is_primary());
}

BOOST_AUTO_TEST_CASE(replica_with_queries_runs_on_the_archetypes) {
    archetypes::message_bus bus(0);
    archetypes::time_source time(0);
    archetypes::random_source random(0);
    query_replica_type replica(single_replica(), 0, bus, time, random, false);
    drive(replica);
    BOOST_TEST(replica.counters().ops_executed == 2u);
    BOOST_TEST(replica.counters().queries_answered == 1u);
}

BOOST_AUTO_TEST_CASE(recovering_replica_runs_on_the_archetypes) {
    archetypes::message_bus bus(0);
    archetypes::time_source time(0);
    archetypes::random_source random(0);
    vsr::config cfg = single_replica();
    cfg.replica_count = 3;
    replica_type replica(cfg, 1, bus, time, random, true);
    tick(replica, 1000);  // nobody answers: it keeps asking
    BOOST_TEST((replica.status() == vsr::replica_status::recovering));
    replica.on_message(std::vector<std::uint8_t>(3, 0));
    BOOST_TEST(replica.counters().decode_errors[static_cast<std::size_t>(vsr::decode_error::too_short)] == 1u);
}

BOOST_AUTO_TEST_CASE(persistent_replica_runs_on_the_archetypes) {
    archetypes::message_bus bus(0);
    archetypes::time_source time(0);
    archetypes::random_source random(0);
    archetypes::storage storage(0);
    vsr::config cfg = single_replica();
    cfg.message_size_max = 64 * 1024;  // small journal slots: the archetype's zones are plain vectors
    cfg.checkpoint_interval = 2;
    cfg.log_entries_max = 2 * 2 + cfg.pipeline_max;
    {
        persistent_replica_type replica(cfg, 0, bus, time, random, storage, false);
        BOOST_TEST((replica.start_state() == vsr::journal_state::empty));
        drive(replica);
        BOOST_TEST(replica.commit_executed() == 3u);
        BOOST_TEST(replica.checkpoint_durable_op() == 2u);
        BOOST_TEST(replica.storage_syncs() > 0u);
    }
    // Restarted on the same storage: it loads what it wrote and goes on.
    persistent_replica_type replica(cfg, 0, bus, time, random, storage, true);
    BOOST_TEST((replica.start_state() == vsr::journal_state::loaded), vsr::to_string(replica.start_state())
                                                                          << ": " << replica.start_damage());
    tick(replica, 100);
    BOOST_TEST(replica.commit_executed() == 3u);
    BOOST_TEST(replica.clients().find(42) != nullptr);
    BOOST_TEST(replica.is_primary());
    BOOST_TEST((replica.status() == vsr::replica_status::normal));
}

BOOST_AUTO_TEST_CASE(client_runs_on_the_archetypes) {
    archetypes::message_bus bus(0);
    archetypes::random_source random(0);
    vsr::client_options options;
    options.cluster = cluster;
    options.sessions = 2;
    options.deadline_ms = 100;
    client_type client(options, bus, random);
    BOOST_TEST(client.client_ids().size() == 2u);
    BOOST_TEST(client.owns(client.client_ids().front()));
    int failed = 0;
    const std::vector<std::uint8_t> operation{1};
    const auto error = client.submit(
        operation, [&](const vsr::client_result& r) { failed += r.status == vsr::result_status::timeout ? 1 : 0; });
    BOOST_TEST((error == vsr::submit_error::none));
    BOOST_TEST(client.outstanding() == 1u);
    client.on_message(std::vector<std::uint8_t>(3, 0));
    BOOST_TEST(client.counters().dropped_messages == 1u);
    for (int i = 0; i < 100; ++i) client.tick();  // the bus drops everything: the deadline passes
    BOOST_TEST(failed == 1);
    BOOST_TEST(client.outstanding() == 0u);
    BOOST_TEST(client.counters().timeouts == 1u);
    BOOST_TEST(client.view() == 0u);
}
