#define BOOST_TEST_MODULE checkpoint
// The header under test comes first: proves it is self-contained.
#include "vsr/checkpoint.hpp"

#ifndef BOOST_TEST_DYN_LINK  // meson's boost dependency may define it already
#define BOOST_TEST_DYN_LINK
#endif
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <vector>

#include "test_cluster.hpp"

using namespace test_support;

namespace {

using bytes = std::vector<std::uint8_t>;

vsr::checkpoint_image make_image(std::size_t state_size) {
    vsr::checkpoint_image image{12, 3, 4567, 0, {}};
    vsr::begin_checkpoint(image.op, image.view, image.timestamp_ns, image.bytes);
    image.bytes.insert(image.bytes.end(), {1, 2, 3});  // "client table"
    const std::size_t clients_end = image.bytes.size();
    for (std::size_t i = 0; i < state_size; ++i) image.bytes.push_back(static_cast<std::uint8_t>(i));
    vsr::finish_checkpoint(clients_end, image.bytes);
    image.checksum = vsr::checksum(image.bytes);
    return image;
}

/// Checkpoints every 4 ops, a log of at most 2 * 4 + 2 entries.
vsr::config small_log_config() {
    vsr::config config = test_config();
    config.checkpoint_interval = 4;
    config.pipeline_max = 2;
    config.log_entries_max = 2 * 4 + 2;
    return config;
}

void put_many(cluster& c, client_type& client, int count, const std::string& prefix) {
    for (int i = 0; i < count; ++i) require_ok(*c.execute(client, kv_put(prefix + std::to_string(i), "v")));
}

}  // namespace

// ---- the image and chunk codecs -----------------------------------------------------------

BOOST_AUTO_TEST_CASE(image_splits_into_its_sections) {
    const vsr::checkpoint_image image = make_image(100);
    vsr::checkpoint_contents contents;
    BOOST_TEST_REQUIRE(vsr::decode_checkpoint(image.bytes, contents));
    BOOST_TEST(contents.op == 12u);
    BOOST_TEST(contents.view == 3u);
    BOOST_TEST(contents.timestamp_ns == 4567u);
    BOOST_TEST(contents.clients.size() == 3u);
    BOOST_TEST(contents.state.size() == 100u);
    for (std::size_t cut = 0; cut < image.bytes.size(); ++cut) {
        BOOST_TEST(!vsr::decode_checkpoint(std::span(image.bytes).first(cut), contents));
    }
    bytes wrong_magic = image.bytes;
    wrong_magic[0] ^= 1;
    BOOST_TEST(!vsr::decode_checkpoint(wrong_magic, contents));
}

BOOST_AUTO_TEST_CASE(chunks_cover_the_image_in_order) {
    const vsr::checkpoint_image image = make_image(1000);
    bytes reassembled, body;
    while (reassembled.size() < image.bytes.size()) {
        vsr::encode_checkpoint_chunk(image, reassembled.size(), 300, body);
        BOOST_TEST_REQUIRE(body.size() <= 300u);
        vsr::checkpoint_chunk chunk;
        BOOST_TEST_REQUIRE(vsr::decode_checkpoint_chunk(body, 1 << 20, chunk));
        BOOST_TEST(chunk.op == image.op);
        BOOST_TEST(chunk.checksum == image.checksum);
        BOOST_TEST(chunk.offset == reassembled.size());
        reassembled.insert(reassembled.end(), chunk.bytes.begin(), chunk.bytes.end());
    }
    BOOST_TEST(reassembled == image.bytes);
}

BOOST_AUTO_TEST_CASE(chunk_decoder_refuses_what_lies_outside_the_image) {
    const vsr::checkpoint_image image = make_image(100);
    bytes body;
    vsr::encode_checkpoint_chunk(image, 0, 1 << 16, body);
    vsr::checkpoint_chunk chunk;
    BOOST_TEST(vsr::decode_checkpoint_chunk(body, 1 << 20, chunk));
    BOOST_TEST(!vsr::decode_checkpoint_chunk(body, image.bytes.size() - 1, chunk));  // over the size limit
    bytes past_end = body;
    vsr::store_le64(past_end.data() + 32, 1);  // offset 1 with every byte: one byte too many
    BOOST_TEST(!vsr::decode_checkpoint_chunk(past_end, 1 << 20, chunk));
    bytes no_op = body;
    vsr::store_le64(no_op.data(), 0);
    BOOST_TEST(!vsr::decode_checkpoint_chunk(no_op, 1 << 20, chunk));
    for (std::size_t cut = 0; cut < vsr::checkpoint_chunk_header_size; ++cut) {
        BOOST_TEST(!vsr::decode_checkpoint_chunk(std::span(body).first(cut), 1 << 20, chunk));
    }
}

// ---- the replica ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(log_stays_bounded_and_checkpoints_agree) {
    const vsr::config config = small_log_config();
    cluster c(config);
    auto& client = c.add_client();
    put_many(c, client, 60, "k");
    c.settle();
    const std::uint64_t compacted = c.replica(0).checkpoint_durable_op();
    BOOST_TEST(compacted >= 56u);
    for (std::uint8_t r = 0; r < 3; ++r) {
        const auto& replica = c.replica(r);
        BOOST_TEST(replica.log().size() <= config.log_entries_max);
        BOOST_TEST(replica.log().base() > 0u);
        BOOST_TEST(replica.counters().checkpoints >= 14u);
        BOOST_TEST(replica.checkpoint_durable_op() == compacted);
        BOOST_TEST(replica.counters().checkpoint_images == 0u);  // diskless: only taken to be sent
        BOOST_TEST(value_at(replica, "k0") == "v");
    }
}

BOOST_AUTO_TEST_CASE(backup_behind_the_log_gets_the_checkpoint) {
    cluster c(small_log_config());
    auto& client = c.add_client();
    put_many(c, client, 2, "a");
    c.isolate(2);
    put_many(c, client, 40, "b");  // far past what any log still holds
    BOOST_TEST_REQUIRE(c.replica(0).log().base() > c.replica(2).op());
    c.isolate(2, false);
    c.settle();
    BOOST_TEST(c.replica(2).counters().checkpoints_restored >= 1u);
    BOOST_TEST(c.replica(0).counters().checkpoint_chunks_sent + c.replica(1).counters().checkpoint_chunks_sent >= 1u);
    BOOST_TEST(state_of(c.replica(2)) == state_of(c.replica(0)));
    // The image it restored is the one its source took, byte for byte.
    const std::uint8_t source = c.replica(0).checkpoint().op == c.replica(2).checkpoint().op ? 0 : 1;
    BOOST_TEST(c.replica(source).checkpoint().checksum == c.replica(2).checkpoint().checksum);
    // It serves on as a backup: the next writes reach it.
    put_many(c, client, 3, "c");
    c.settle();
    BOOST_TEST(value_at(c.replica(2), "c2") == "v");
}

BOOST_AUTO_TEST_CASE(recovering_replica_restores_the_checkpoint) {
    cluster c(small_log_config());
    auto& client = c.add_client();
    put_many(c, client, 30, "k");
    c.crash(1);
    c.restart(1);  // empty memory: recovery, then the checkpoint, then entries
    c.settle();
    BOOST_TEST(c.replica(1).counters().recoveries_completed == 1u);
    BOOST_TEST(c.replica(1).counters().checkpoints_restored >= 1u);
    BOOST_TEST(state_of(c.replica(1)) == state_of(c.replica(0)));
    // The cluster keeps its promises without replica 2, so replica 1 really holds the state.
    c.isolate(2);
    put_many(c, client, 3, "after");
    c.settle();
    BOOST_TEST(value_at(c.replica(1), "after2") == "v");
}

BOOST_AUTO_TEST_CASE(large_checkpoint_streams_in_chunks) {
    vsr::config config = small_log_config();
    config.message_size_max = 64 * 1024;
    cluster c(config);
    auto& client = c.add_client();
    const std::string value(4000, 'x');
    for (int i = 0; i < 80; ++i) require_ok(*c.execute(client, kv_put("big" + std::to_string(i), value)));
    BOOST_TEST_REQUIRE(state_of(c.replica(0)).size() > 3 * config.message_size_max);
    c.crash(2);
    c.restart(2);
    c.settle();
    BOOST_TEST(c.replica(2).counters().checkpoints_restored >= 1u);
    const auto sent = c.replica(0).counters().checkpoint_chunks_sent + c.replica(1).counters().checkpoint_chunks_sent;
    BOOST_TEST(sent >= 4u);
    BOOST_TEST(state_of(c.replica(2)) == state_of(c.replica(0)));
}

namespace {

/// The image of `source`'s state now, with one more key if `forge`.
vsr::checkpoint_image image_of(const replica_type& source, bool forge) {
    const std::uint64_t op = source.commit_executed();
    vsr::checkpoint_image image{op, source.log().view_at(op), source.log().timestamp_at(op), 0, {}};
    kv::state_machine machine;
    bytes state;
    source.state_machine().snapshot(state);
    BOOST_TEST_REQUIRE(machine.restore(state));
    bytes result;
    if (forge) machine.execute({op, 0, 1, 1}, kv_put("forged", "yes"), result);
    vsr::begin_checkpoint(image.op, image.view, image.timestamp_ns, image.bytes);
    source.clients().snapshot(image.bytes);
    const std::size_t clients_end = image.bytes.size();
    machine.snapshot(image.bytes);
    vsr::finish_checkpoint(clients_end, image.bytes);
    image.checksum = vsr::checksum(image.bytes);
    return image;
}

/// A chunk offering a whole image whose bytes do not match the checksum it claims.
bytes forged_chunk(cluster& c, std::uint8_t sender, std::uint8_t target) {
    const auto& source = c.replica(sender);
    vsr::checkpoint_image image = image_of(source, true);
    image.checksum = image_of(source, false).checksum;  // the honest image's checksum
    bytes body;
    vsr::encode_checkpoint_chunk(image, 0, 1 << 19, body);
    vsr::header h = header_of(vsr::command::checkpoint_chunk, sender, target, source.view());
    h.op = source.op();
    h.commit = source.commit();
    return encode(h, body);
}

/// Runs a forged checkpoint into a replica that lags behind the log; returns whether it
/// restored the forged state.
bool forged_checkpoint_restored(vsr::planted_bug bug) {
    vsr::config config = small_log_config();
    config.bug = bug;
    cluster c(config);
    auto& client = c.add_client();
    put_many(c, client, 2, "a");
    c.isolate(2);
    put_many(c, client, 30, "b");
    c.replica(2).on_message(forged_chunk(c, 0, 2));  // ignored: it does not know it is behind
    c.isolate(2, false);
    // Make it want state: a commit from the primary tells it how far behind it is.
    vsr::header commit = header_of(vsr::command::commit, 0, 2, 0);
    commit.op = c.replica(0).op();
    commit.commit = c.replica(0).commit();
    c.replica(2).on_message(encode(commit));
    c.bus().to_replica[0].clear();
    c.bus().to_replica[1].clear();
    c.replica(2).on_message(forged_chunk(c, 0, 2));
    const bool restored = c.replica(2).state_machine().find("forged").has_value();
    if (bug == vsr::planted_bug::none) BOOST_TEST(c.replica(2).counters().checkpoints_rejected == 1u);
    return restored;
}

}  // namespace

BOOST_AUTO_TEST_CASE(forged_checkpoint_is_rejected) {
    BOOST_TEST(!forged_checkpoint_restored(vsr::planted_bug::none));
    // The check is what stops it.
    BOOST_TEST(forged_checkpoint_restored(vsr::planted_bug::restore_unchecked_checkpoint));
}
