#define BOOST_TEST_MODULE toastyfs_concepts
// The header under test comes first: proves it is self-contained.
#include "toastyfs/concepts.hpp"
#include "archetypes.hpp"  // and so are the archetypes

#ifndef BOOST_TEST_DYN_LINK  // meson's boost dependency may define it already
#define BOOST_TEST_DYN_LINK
#endif
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "toastyfs/chunk_server.hpp"
#include "toastyfs/chunk_store.hpp"
#include "toastyfs/janitor.hpp"
#include "toastyfs/object_service.hpp"

namespace archetypes = toastyfs::archetypes;

using service_type =
    toastyfs::object_service<archetypes::metadata_client, archetypes::chunk_transport, archetypes::crypto>;
using store_type = toastyfs::chunk_store<archetypes::chunk_disk, archetypes::crypto>;

// Every member of the templates that take the concepts, compiled against the archetypes: each
// body uses only what its concepts promise. The janitor and the chunk server take the service and
// the store, so they are compiled over the archetype-built ones.
template class toastyfs::object_service<archetypes::metadata_client, archetypes::chunk_transport, archetypes::crypto>;
template class toastyfs::janitor<service_type>;
template class toastyfs::chunk_store<archetypes::chunk_disk, archetypes::crypto>;
template void toastyfs::handle_chunk_request<store_type>(store_type&, std::uint64_t, const toastyfs::frame_header&,
                                                         std::span<const std::uint8_t>, toastyfs::frame_header&,
                                                         std::vector<std::uint8_t>&);

namespace {

// Missing one requirement each: the concept must say no.
struct transport_without_connected {
    bool send(std::uint8_t, const toastyfs::frame_header&, std::shared_ptr<const std::vector<std::uint8_t>>);
};
static_assert(!toastyfs::chunk_transport<transport_without_connected>);

struct transport_sending_copies {  // takes the body by unique_ptr: cannot share it between nodes
    bool send(std::uint8_t, const toastyfs::frame_header&, std::unique_ptr<std::vector<std::uint8_t>>);
    bool connected(std::uint8_t);
};
static_assert(!toastyfs::chunk_transport<transport_sending_copies>);

struct client_without_kind {  // cannot submit queries
    vsr::submit_error submit(std::span<const std::uint8_t>, std::function<void(const vsr::client_result&)>);
};
static_assert(!toastyfs::metadata_client<client_without_kind>);

struct client_with_bool_result {
    bool submit(std::span<const std::uint8_t>, std::function<void(const vsr::client_result&)>, vsr::request_kind);
};
static_assert(!toastyfs::metadata_client<client_with_bool_result>);

toastyfs::service_options options() {
    toastyfs::service_options o;
    o.node_count = 3;
    o.replication_factor = 2;
    o.write_copies_min = 2;
    o.chunk_size = 1024;
    o.buffer_bytes_max = 4096;
    return o;
}

}  // namespace

BOOST_AUTO_TEST_CASE(service_runs_on_the_archetypes) {
    archetypes::metadata_client metadata(0);
    archetypes::chunk_transport transport(0);
    service_type service(options(), metadata, transport);
    // The metadata queue is always full: every operation fails with unavailable, from tick().
    int lookups = 0;
    service.lookup("k", true, [&](toastyfs::service_status s, const toastyfs::object_result&) {
        lookups += s == toastyfs::service_status::unavailable ? 1 : 0;
    });
    int puts = 0;
    toastyfs::put_request request;
    request.key = "k";
    const auto id = service.begin_put(
        std::move(request),
        [&](const toastyfs::put_outcome& outcome) {
            puts += outcome.status == toastyfs::service_status::unavailable ? 1 : 0;
        },
        [] {});
    const std::vector<std::uint8_t> body(10, 7);
    BOOST_TEST(service.put_body(id, body) == body.size());
    service.end_put(id);       // inline: one put_object, refused
    BOOST_TEST(lookups == 0);  // callbacks never run inside the calls
    service.tick(1);
    BOOST_TEST(lookups == 1);
    BOOST_TEST(puts == 1);
    BOOST_TEST(!service.node_connected(0));
}

BOOST_AUTO_TEST_CASE(janitor_runs_on_the_archetypes) {
    archetypes::metadata_client metadata(0);
    archetypes::chunk_transport transport(0);
    service_type service(options(), metadata, transport);
    toastyfs::janitor<service_type> janitor(toastyfs::janitor_options{}, service, 3);
    janitor.run_now();  // no node is connected: the inventory finds nobody, the clock op is refused
    for (std::uint64_t t = 1; t < 10; ++t) {
        janitor.tick(t);
        service.tick(t);
    }
    BOOST_TEST(janitor.counters().passes == 1u);
    BOOST_TEST(!janitor.pass_running());
}

// The store over the archetype disk never opens (every call fails), and an unopened store takes no
// requests: the chunk server is only compiled here. chunk_disk_test runs the store on the archetypes.
