#define BOOST_TEST_MODULE journal
// The header under test comes first: proves it is self-contained.
#include "vsr/journal.hpp"

#ifndef BOOST_TEST_DYN_LINK  // meson's boost dependency may define it already
#define BOOST_TEST_DYN_LINK
#endif
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <vector>

#include "../../sim/sim_storage.hpp"  // the simulated disk: faults on demand

namespace {

using bytes = std::vector<std::uint8_t>;

vsr::config small_config() {
    vsr::config config;
    config.cluster = 5;
    config.replica_count = 3;
    config.message_size_max = 64 * 1024;
    config.pipeline_max = 2;
    config.checkpoint_interval = 4;
    config.log_entries_max = 16;
    return config;
}

bytes make_entry(std::uint64_t op, std::uint64_t view) {
    vsr::entry_builder builder;
    builder.begin(op, view, 1000 + op);
    const bytes operation(20, static_cast<std::uint8_t>(op));
    builder.add({7, 1, op, vsr::request_kind::operation, operation});
    return builder.finish();
}

vsr::checkpoint_image make_image(std::uint64_t op, std::uint64_t view) {
    vsr::checkpoint_image image{op, view, 1000 + op, 0, {}};
    vsr::begin_checkpoint(op, view, image.timestamp_ns, image.bytes);
    image.bytes.insert(image.bytes.end(), 8, 0);  // an empty client table
    const std::size_t clients_end = image.bytes.size();
    image.bytes.insert(image.bytes.end(), {1, 2, 3, static_cast<std::uint8_t>(op)});
    vsr::finish_checkpoint(clients_end, image.bytes);
    image.checksum = vsr::checksum(image.bytes);
    return image;
}

/// A fault-free simulated disk: writes are durable at sync, crashes drop nothing.
struct disk {
    vsr::xoshiro256 random{1};
    sim::sim_storage storage{&random, {}};
};

using journal = vsr::journal<sim::sim_storage>;

/// Appends ops first..last tagged `view` and flushes.
void append(journal& j, std::uint64_t first, std::uint64_t last, std::uint64_t view) {
    for (std::uint64_t op = first; op <= last; ++op) j.append(make_entry(op, view), op);
    BOOST_TEST_REQUIRE(j.flush());
}

vsr::journal_state reload(sim::sim_storage& storage, vsr::journal_contents& out,
                          vsr::planted_bug bug = vsr::planted_bug::none) {
    vsr::config config = small_config();
    config.bug = bug;
    journal j(storage, config, 1);
    return j.load(out);
}

}  // namespace

BOOST_AUTO_TEST_CASE(empty_disk_is_empty) {
    disk d;
    vsr::journal_contents contents;
    BOOST_TEST((reload(d.storage, contents) == vsr::journal_state::empty));
}

BOOST_AUTO_TEST_CASE(flushed_entries_view_and_checkpoint_come_back) {
    disk d;
    journal j(d.storage, small_config(), 1);
    j.set_view(3, 2);
    append(j, 1, 4, 2);
    {
        const auto image = make_image(4, 2);
        j.checkpoint(image, image.bytes.size());
    }
    append(j, 5, 6, 2);
    BOOST_TEST(j.checkpoint_durable_op() == 4u);

    vsr::journal_contents contents;
    BOOST_TEST_REQUIRE((reload(d.storage, contents) == vsr::journal_state::loaded));
    BOOST_TEST(contents.durable.view == 3u);
    BOOST_TEST(contents.durable.last_normal_view == 2u);
    BOOST_TEST(contents.durable.checkpoint_op == 4u);
    BOOST_TEST(contents.checkpoint == make_image(4, 2).bytes);
    BOOST_TEST_REQUIRE(contents.log.size() == 2u);
    BOOST_TEST(contents.log[0] == make_entry(5, 2));
    BOOST_TEST(contents.log[1] == make_entry(6, 2));
}

BOOST_AUTO_TEST_CASE(headers_are_synced_by_the_next_flush) {
    // Appends alone: a flush syncs the bodies and writes their redundant headers, and the next
    // flush's one sync makes those durable along with the bodies appended since. Until then the
    // entries do not count as durable, and a crash leaves a log that loads whole.
    disk d;
    journal j(d.storage, small_config(), 1);
    append(j, 1, 1, 1);  // the first flush writes the superblock: everything synced
    BOOST_TEST(!j.dirty());
    const std::uint64_t syncs = j.syncs();
    j.append(make_entry(2, 1), 2);
    BOOST_TEST_REQUIRE(j.flush());
    BOOST_TEST(j.dirty());  // op 2's header waits for a sync
    BOOST_TEST(j.durable_through(1));
    BOOST_TEST(!j.durable_through(2));
    BOOST_TEST(j.durable_op(2) == 1u);
    j.append(make_entry(3, 1), 3);
    BOOST_TEST_REQUIRE(j.flush());  // one sync: body 3 and header 2
    BOOST_TEST(j.durable_op(3) == 2u);
    BOOST_TEST_REQUIRE(j.flush());  // header 3
    BOOST_TEST(!j.dirty());
    BOOST_TEST(j.durable_op(3) == 3u);
    BOOST_TEST(j.syncs() - syncs == 3u);  // one per flush (two each when headers were synced at once)

    // A crash while a header waits: the body is durable, so the entry is there and nothing is damaged.
    j.append(make_entry(4, 1), 4);
    BOOST_TEST_REQUIRE(j.flush());
    BOOST_TEST(j.dirty());
    d.storage.crash();
    vsr::journal_contents contents;
    BOOST_TEST_REQUIRE((reload(d.storage, contents) == vsr::journal_state::loaded));
    BOOST_TEST_REQUIRE(contents.log.size() == 4u);
    BOOST_TEST(contents.log[3] == make_entry(4, 1));
}

BOOST_AUTO_TEST_CASE(unsynced_tail_is_not_damage) {
    // Power loss during a flush: the bodies of the last entries never reached the disk.
    vsr::xoshiro256 random{3};
    sim::sim_storage storage{&random, {.torn_on_crash_per_mille = 1000}};
    journal j(storage, small_config(), 1);
    append(j, 1, 3, 1);
    j.append(make_entry(4, 1), 4);
    j.append(make_entry(5, 1), 5);  // written, not synced
    storage.crash();
    vsr::journal_contents contents;
    BOOST_TEST_REQUIRE((reload(storage, contents) == vsr::journal_state::loaded));
    BOOST_TEST(contents.log.size() >= 3u);  // 4 and 5 may or may not have made it whole
    BOOST_TEST(contents.log.size() <= 5u);
}

BOOST_AUTO_TEST_CASE(a_durable_entry_that_rots_is_damage) {
    disk d;
    journal j(d.storage, small_config(), 1);
    append(j, 1, 5, 1);
    // Corrupt the body of op 5, the last one: its redundant header says it was durable.
    const std::uint64_t offset = 5 * journal::body_slot_size(small_config()) + vsr::record_header_size + 3;
    std::uint8_t byte = 0;
    BOOST_TEST_REQUIRE(d.storage.read(vsr::zone::journal_bodies, offset, std::span(&byte, 1)));
    byte ^= 0x40;
    BOOST_TEST_REQUIRE(d.storage.write(vsr::zone::journal_bodies, offset, std::span(&byte, 1)));
    BOOST_TEST_REQUIRE(d.storage.sync());
    vsr::journal_contents contents;
    BOOST_TEST((reload(d.storage, contents) == vsr::journal_state::damaged));
}

BOOST_AUTO_TEST_CASE(a_lost_redundant_header_is_repaired_by_the_body) {
    disk d;
    journal j(d.storage, small_config(), 1);
    append(j, 1, 5, 1);
    const bytes zeros(vsr::record_header_size, 0);
    BOOST_TEST_REQUIRE(d.storage.write(vsr::zone::journal_headers, 3 * vsr::record_header_size, zeros));
    BOOST_TEST_REQUIRE(d.storage.sync());
    vsr::journal_contents contents;
    BOOST_TEST_REQUIRE((reload(d.storage, contents) == vsr::journal_state::loaded));
    BOOST_TEST(contents.log.size() == 5u);
}

/// Entries 1..6 of view 1; a view change keeps 1..4 and the disk holds view 2 before the new
/// view's entry 5 reaches it. How many entries does a restart find?
std::size_t entries_after_truncation(vsr::planted_bug bug) {
    disk d;
    vsr::config config = small_config();
    config.bug = bug;
    journal j(d.storage, config, 1);
    append(j, 1, 6, 1);
    j.truncate(4);
    j.set_view(2, 2);
    BOOST_TEST_REQUIRE(j.flush());
    vsr::journal_contents contents;
    BOOST_TEST_REQUIRE((reload(d.storage, contents, bug) == vsr::journal_state::loaded));
    BOOST_TEST(contents.durable.last_normal_view == 2u);
    return contents.log.size();
}

BOOST_AUTO_TEST_CASE(truncated_entries_never_come_back) {
    BOOST_TEST(entries_after_truncation(vsr::planted_bug::none) == 4u);  // the old 5 and 6 are gone
    // Without the new epoch they come back, tagged view 1 in a log that claims view 2.
    BOOST_TEST(entries_after_truncation(vsr::planted_bug::truncate_without_new_epoch) == 6u);
}

BOOST_AUTO_TEST_CASE(superblock_survives_a_torn_copy) {
    disk d;
    journal j(d.storage, small_config(), 1);
    j.set_view(4, 4);
    append(j, 1, 2, 4);
    const bytes garbage(vsr::superblock_copy_size, 0xAB);
    BOOST_TEST_REQUIRE(d.storage.write(vsr::zone::superblock, 0, garbage));
    BOOST_TEST_REQUIRE(d.storage.sync());
    vsr::journal_contents contents;
    BOOST_TEST_REQUIRE((reload(d.storage, contents) == vsr::journal_state::loaded));
    BOOST_TEST(contents.durable.view == 4u);
}

BOOST_AUTO_TEST_CASE(another_replicas_disk_is_foreign) {
    disk d;
    journal j(d.storage, small_config(), 1);
    append(j, 1, 1, 0);
    journal other(d.storage, small_config(), 2);
    vsr::journal_contents contents;
    BOOST_TEST((other.load(contents) == vsr::journal_state::foreign));
}

BOOST_AUTO_TEST_CASE(installed_checkpoint_restarts_the_log) {
    disk d;
    journal j(d.storage, small_config(), 1);
    append(j, 1, 3, 1);
    j.install(make_image(12, 3));
    append(j, 13, 14, 3);
    vsr::journal_contents contents;
    BOOST_TEST_REQUIRE((reload(d.storage, contents) == vsr::journal_state::loaded));
    BOOST_TEST(contents.durable.checkpoint_op == 12u);
    BOOST_TEST(contents.log.size() == 2u);
    BOOST_TEST(contents.log[0] == make_entry(13, 3));
}

// The journal reads back the entries of its window (what a persistent replica sends a lagging
// one after releasing them from memory), and refuses what does not check out.
BOOST_AUTO_TEST_CASE(read_entry_returns_the_appended_entry_or_nothing) {
    disk d;
    journal j(d.storage, small_config(), 1);
    j.format();
    append(j, 1, 5, 0);
    bytes out;
    for (std::uint64_t op = 1; op <= 5; ++op) {
        BOOST_TEST_REQUIRE(j.read_entry(op, out));
        BOOST_TEST(out == make_entry(op, 0), boost::test_tools::per_element());
    }
    BOOST_TEST(!j.read_entry(6, out));  // not appended
    BOOST_TEST(!j.read_entry(0, out));
    // A body that changed on disk is refused (its checksum), as is a slot reused by another op.
    const std::uint64_t slot_size = journal::body_slot_size(small_config());
    std::array<std::uint8_t, 1> byte{};
    BOOST_TEST_REQUIRE(d.storage.read(vsr::zone::journal_bodies, 3 * slot_size + vsr::record_header_size + 5, byte));
    byte[0] ^= 0x40;
    BOOST_TEST_REQUIRE(d.storage.write(vsr::zone::journal_bodies, 3 * slot_size + vsr::record_header_size + 5, byte));
    BOOST_TEST(!j.read_entry(3, out));
    BOOST_TEST(j.read_entry(4, out));
    j.truncate(3);
    append(j, 4, 4, 2);  // op 4 again, from another view: the window now names that record
    BOOST_TEST_REQUIRE(j.read_entry(4, out));
    BOOST_TEST(out == make_entry(4, 2), boost::test_tools::per_element());
}
