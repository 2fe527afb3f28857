// Writes the hand-made seed inputs of tests/fuzz/corpus/ (valid and edge inputs for every
// target), using the real encoders so checksums and layouts are right. Not run by any test:
//   build/tests/fuzz/fuzz_make_corpus tests/fuzz/corpus
// It overwrites the seeds it makes (named seed_*) and leaves other corpus files alone.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "kv_state_machine.hpp"
#include "platform/tcp_message_bus.hpp"
#include "toastyfs/chunk_protocol.hpp"
#include "toastyfs/metadata_codec.hpp"
#include "toastyfs/metadata_state_machine.hpp"
#include "vsr/log_entry.hpp"
#include "vsr/wire.hpp"

namespace {

using bytes = std::vector<std::uint8_t>;
namespace fs = std::filesystem;
fs::path root;
constexpr std::uint32_t cluster = 77;

void write(const std::string& target, const std::string& name, const bytes& data) {
    fs::create_directories(root / target);
    std::ofstream(root / target / ("seed_" + name), std::ios::binary)
        .write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
}
void write(const std::string& target, const std::string& name, std::string_view text, bytes prefix = {}) {
    prefix.insert(prefix.end(), text.begin(), text.end());
    write(target, name, prefix);
}
bytes cat(bytes a, const bytes& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}
bytes le64(std::uint64_t v) {
    bytes out(8);
    vsr::store_le64(out.data(), v);
    return out;
}

bytes kv_op(kv::kind kind, std::string_view key, std::string_view value = {}, std::string_view expected = {}) {
    kv::operation op{kind, key, value, expected};
    bytes out;
    kv::encode_operation(op, out);
    return out;
}

bytes entry(std::uint64_t op, std::uint64_t view) {
    vsr::entry_builder b;
    b.begin(op, view, 1000);
    const bytes put = kv_op(kv::kind::put, "a", "1");
    b.add({.client_id = 1, .session = 1, .request_number = 1, .kind = vsr::request_kind::operation, .operation = put});
    b.add({.client_id = 2,
           .session = 0,
           .request_number = 0,
           .kind = vsr::request_kind::register_session,
           .operation = {}});
    return b.finish();
}

bytes suffix(std::uint64_t prev_op, std::uint64_t prev_view, std::uint32_t count) {
    bytes out;
    vsr::byte_writer w(out);
    w.u64(prev_op);
    w.u64(prev_view);
    w.u32(count);
    w.u32(0);
    for (std::uint32_t i = 0; i < count; ++i) {
        const bytes e = entry(prev_op + 1 + i, prev_view);
        w.u32(static_cast<std::uint32_t>(e.size()));
        w.bytes(e);
    }
    return out;
}

bytes message(vsr::command cmd, std::uint8_t sender, std::uint8_t target, const bytes& body, std::uint64_t op = 0) {
    vsr::header h;
    h.cmd = cmd;
    h.sender = sender;
    h.target = target;
    h.cluster = cluster;
    h.view = 1;
    h.op = op;
    h.commit = op;
    bytes out;
    vsr::encode_message(h, body, out);
    return out;
}

void vsr_wire() {
    const std::string t = "vsr_wire";
    write(t, "request", cat({0}, message(vsr::command::request, vsr::address_client, 0, kv_op(kv::kind::get, "k"))));
    write(t, "prepare", cat({0}, message(vsr::command::prepare, 1, 0, entry(3, 1), 3)));
    write(t, "start_view", cat({0}, message(vsr::command::start_view, 1, 0, suffix(2, 1, 2), 4)));
    write(t, "commit", cat({0}, message(vsr::command::commit, 1, 2, {}, 9)));
    vsr::status_body s{.status = 1,
                       .replica = 2,
                       .is_primary = 1,
                       .view = 3,
                       .op = 4,
                       .commit = 4,
                       .commit_executed = 4,
                       .clients = 1};
    std::array<std::uint8_t, vsr::status_body_size> body{};
    vsr::encode_status_body(s, body);
    write(t, "status_reply",
          cat({0}, message(vsr::command::status_reply, 0, vsr::address_client, bytes(body.begin(), body.end()))));
    write(t, "sealed_status_reply",
          cat({1, 1}, message(vsr::command::status_reply, 0, vsr::address_client, bytes(body.begin(), body.end()))));
    write(t, "sealed_zero_header", cat({1, 1}, bytes(80, 0)));
    bytes huge = message(vsr::command::commit, 1, 2, {});
    vsr::store_le32(huge.data() + 20, 0xFFFFFFFF);
    write(t, "huge_body_size", cat({0}, huge));
    write(t, "garbage_64", bytes(65, 0x41));
    write(t, "entry", cat({2}, entry(7, 2)));
    write(t, "suffix", cat({3}, suffix(5, 1, 3)));
    write(t, "suffix_empty", cat({3}, suffix(0, 0, 0)));
}

void vsr_replica() {
    const std::string t = "vsr_replica";
    // replica_count - 1, index, recovering (0 = yes, one byte each), then steps (see the target).
    const bytes start = {2, 0, 1};
    write(t, "ticks_then_submit", cat(start, {0, 60, 5, 0, 0, 1, 'v', 0, 0, 30, 5, 1, 0, 0, 0, 40}));
    const bytes prepare = message(vsr::command::prepare, 1, 0, entry(1, 1), 1);
    write(t, "raw_prepare",
          cat(start, cat({0, 5, 1, 0xFF, static_cast<std::uint8_t>(prepare.size()),
                          static_cast<std::uint8_t>(prepare.size() >> 8)},
                         prepare)));
    // A chosen prepare (entry body) from replica 1 in view 1, then a chosen commit.
    write(t, "chosen_prepare_commit", cat(start, bytes{2, 2, 1, 1, 1, 1, 0, 0, 0, 0, 1, 0, 0, 1, 1, 1, 1, 1, 1, 0, 0,
                                                       0, 0, 0, 2, 4, 1, 1, 1, 1, 1, 0, 0, 0, 1, 0, 0, 1, 1, 0, 0}));
    write(t, "recovering_replica", bytes{2, 1, 0, 0, 10, 2, 10, 1, 1, 2, 3, 3, 0, 0, 0, 1, 0,
                                         0, 1, 1, 2, 0,  2, 0,  0, 0, 0, 0, 3, 0, 0, 3, 1, 0});
}

bytes frame(toastyfs::frame_kind kind, bool reply, const bytes& body, std::uint64_t argument = 0) {
    toastyfs::frame_header h;
    h.kind = kind;
    h.reply = reply;
    h.cluster = cluster;
    h.request_id = 42;
    h.argument = argument;
    h.sha256.fill(0xAB);
    bytes out(toastyfs::frame_header_size);
    toastyfs::encode_frame_header(h, body,
                                  std::span<std::uint8_t, toastyfs::frame_header_size>(out.data(), out.size()));
    return cat(out, body);
}

void chunk() {
    const std::string t = "chunk_protocol";
    write(t, "write_request", cat({0}, frame(toastyfs::frame_kind::write, false, bytes(100, 7))));
    write(t, "read_request", cat({0}, frame(toastyfs::frame_kind::read, false, {})));
    write(t, "read_reply", cat({0}, frame(toastyfs::frame_kind::read, true, bytes(33, 1))));
    bytes inventory;
    toastyfs::inventory_entry e;
    e.sha256.fill(1);
    e.size = 100;
    toastyfs::append_inventory_entry(e, inventory);
    e.sha256.fill(2);
    toastyfs::append_inventory_entry(e, inventory);
    write(t, "inventory_reply", cat({0}, frame(toastyfs::frame_kind::inventory, true, inventory, 2)));
    write(t, "inventory_body", cat(cat({2}, le64(2)), inventory));
    bytes stats;
    toastyfs::encode_node_stats({.chunks = 3, .bytes_stored = 300}, stats);
    write(t, "stat_reply", cat({0}, frame(toastyfs::frame_kind::stat, true, stats)));
    write(t, "stats_body", cat({3}, stats));
    write(t, "sealed_zero", cat({1, 1}, bytes(96, 0)));

    const std::string s = "chunk_server";
    // chunk_size_max flag, bytes_max flag, fault byte (0: healthy), then requests (see the target).
    const bytes write_hello = {1,   16,  'h', 'e', 'l', 'l', 'o', ' ', 'c', 'h', 'u', 'n', 'k',
                               ' ', 'd', 'a', 't', 'a', 0,   7,   0,   1,   0,   1,   0,   1};
    const bytes read_known = {1, 0, 1, 8, 1, 0, 1, 0, 1, 0, 1};
    const bytes inventory_all = {1, 0, 3, 9, 2, 1, 0, 1, 5, 1};
    const bytes stat = {1, 0, 4, 10, 2, 1, 0, 1, 0, 1};
    const bytes remove_known = {1, 0, 2, 11, 1, 0, 1, 1, 1, 0, 1};
    write(s, "healthy_write_read",
          cat(cat(cat(cat(cat({0, 0, 0}, write_hello), read_known), inventory_all), stat), remove_known));
    write(s, "faulty_disk", cat(cat(cat({0, 0, 9, 0, 200, 0, 0, 0, 0, 3, 100}, write_hello), read_known), read_known));
    write(s, "small_chunks_quota", cat(cat({1, 0, 10, 1, 0, 2, 0}, write_hello), stat));
}

void http() {
    const std::string t = "http_request_parser";
    const bytes plain = {0, 0};  // flags 0, no pieces
    write(t, "get",
          "GET /bucket/key?list-type=2&prefix=a HTTP/1.1\r\nHost: h\r\nRange: bytes=0-99\r\nIf-Match: \"abc\", "
          "W/\"d\"\r\nIf-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n",
          plain);
    write(t, "put_length",
          "PUT /k%20x HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello", plain);
    write(t, "put_chunked",
          "PUT /k HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: "
          "chunked\r\n\r\n5;ext=1\r\nhello\r\n0A\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n",
          plain);
    write(t, "pipelined",
          "GET /a HTTP/1.1\r\nHost: h\r\n\r\nHEAD /b HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\nDELETE /c "
          "HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
          plain);
    write(t, "expect_continue", "PUT /k HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
          bytes{0, 3, 1, 2, 5});
    write(t, "absolute_target",
          "GET http://example.com:80/x/y?z HTTP/1.1\r\nHost: example.com\r\n\r\nOPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
          plain);
    write(t, "small_limits",
          "\r\nGET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\nHost: h\r\nA: b\r\nC: d\r\n\r\n",
          bytes{7, 9, 9, 9, 9, 9, 1, 9, 0});
    write(t, "errors", "GET / HTTP/2.0\r\nHost: h\r\n\r\n", plain);
    write(t, "both_framings",
          "PUT /k HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
          plain);
    write(t, "bare_lf", "GET / HTTP/1.1\nHost: h\n\n", plain);

    const std::string f = "http_fields";
    write(f, "target_key", "/bucket/some%2Fkey%C3%A9?a=1&b=%20x+y&c", {0});
    write(f, "target_absolute", "https://host:8080/p?q=1", {0});
    write(f, "target_bad_utf8", "/%C3%28", {0});
    write(f, "range_first_last", "bytes=0-99", {1, 50});
    write(f, "range_suffix", "bytes=-500", {1, 200, 0, 0});
    write(f, "range_open", "bytes=10-", {1, 130, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF});
    write(f, "range_list", "bytes=0-1, 5-6", {1, 10});
    write(f, "etags", "\"a\", W/\"b\" ,\"\"", {2});
    write(f, "etag_star", "*", {2});
    write(f, "date_imf", "Sun, 06 Nov 1994 08:49:37 GMT", {3});
    write(f, "date_rfc850", "Sunday, 06-Nov-94 08:49:37 GMT", {3});
    write(f, "date_asctime", "Sun Nov  6 08:49:37 1994", {3});
    write(f, "date_leap", "Wed, 31 Dec 2008 23:59:60 GMT", {3});
    write(f, "date_far", "Fri, 31 Dec 9999 23:59:59 GMT", {3});
}

void kv_and_cli() {
    const std::string t = "kv_state_machine";
    bytes steps;
    for (const bytes& op :
         {kv_op(kv::kind::put, "a", "1"), kv_op(kv::kind::get, "a"), kv_op(kv::kind::cas, "a", "2", "1"),
          kv_op(kv::kind::del, "a"), kv_op(kv::kind::get, "zz")}) {
        steps.push_back(0);
        steps.push_back(static_cast<std::uint8_t>(op.size()));
        steps.insert(steps.end(), op.begin(), op.end());
    }
    steps.push_back(3);
    write(t, "operations", steps);
    kv::state_machine m;
    std::vector<std::uint8_t> result;
    const bytes put = kv_op(kv::kind::put, "key", "value");
    m.execute({}, put, result);
    bytes snapshot;
    m.snapshot(snapshot);
    write(t, "restore", cat({2, static_cast<std::uint8_t>(snapshot.size())}, snapshot));

    const std::string c = "cli";
    write(c, "u64", "18446744073709551615", cat(cat({0}, cat(le64(0), le64(~0ull))), {1}));
    write(c, "u64_range", "8080", cat(cat({0}, cat(le64(1), le64(65535))), {0}));
    write(c, "address", "127.0.0.1:4000", {1});
    write(c, "replicas", "127.0.0.1:4000,localhost:4001,10.0.0.1:65535", {2});
    write(c, "replicas_duplicate", "127.0.0.1:1,localhost:1", {2});
}

void tcp_bus() {
    const std::string t = "tcp_bus";
    auto hello = [](platform::hello h) {
        bytes out(platform::hello_size);
        platform::encode_hello(h, std::span<std::uint8_t, platform::hello_size>(out.data(), out.size()));
        return out;
    };
    auto raw = [](const bytes& b) {  // a raw segment: type 0, two-byte length, then 0 loop runs (u32)
        return cat(cat({0, 0xFF, static_cast<std::uint8_t>(b.size()), static_cast<std::uint8_t>(b.size() >> 8)}, b),
                   {0});
    };
    const bytes replica0 =
        hello({.role = platform::hello_role::replica, .replica = 0, .cluster = cluster, .client_id = 0});
    const bytes client = hello(
        {.role = platform::hello_role::client, .replica = vsr::address_client, .cluster = cluster, .client_id = 5});
    bytes keepalive(vsr::header_size);
    platform::encode_keepalive(cluster, 0,
                               std::span<std::uint8_t, vsr::header_size>(keepalive.data(), keepalive.size()));
    write(t, "replica_commit",
          cat(cat(raw(replica0), raw(message(vsr::command::commit, 0, 2, {}, 3))), raw(keepalive)));
    write(t, "client_request",
          cat(raw(client), raw(message(vsr::command::request, vsr::address_client, 2, kv_op(kv::kind::get, "k")))));
    write(t, "wrong_sender", cat(raw(replica0), raw(message(vsr::command::commit, 1, 2, {}, 3))));
    write(t, "hello_only", replica0);
    write(t, "garbage_64", cat({0, 64}, bytes(64, 0x41)));
    write(t, "chosen_segments", bytes{1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 2, 5, 0,   0,   0,  0,
                                      0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 'a', 'b', 'c'});
}

void metadata() {
    namespace tf = toastyfs;
    const std::string t = "metadata";
    tf::put_object_operation put;
    put.key = "a/b";
    put.size = 5;
    put.content_type = "text/plain";
    put.user_metadata = {{"color", "blue"}};
    put.inline_data = {'h', 'e', 'l', 'l', 'o'};
    tf::put_object_operation chunked = put;
    chunked.kind = tf::data_kind::chunks;
    chunked.inline_data.clear();
    chunked.size = 300;
    chunked.lease_begin_ns = 1'000'000'000'000;
    chunked.chunks = {{tf::sha256_digest{1}, 100, 1}, {tf::sha256_digest{2}, 200, 3}};
    tf::list_chunks_operation list_chunks;
    list_chunks.after = tf::sha256_digest{1};
    list_chunks.max_entries = 10;
    const std::vector<tf::operation> ops = {put,
                                            chunked,
                                            tf::get_object_operation{"a/b"},
                                            tf::head_object_operation{"a/b"},
                                            tf::list_objects_operation{"a", "", 10},
                                            tf::clock_operation{},
                                            tf::add_holder_operation{tf::sha256_digest{1}, 4, 1'000'000'000'000},
                                            tf::remove_holder_operation{tf::sha256_digest{1}, 0},
                                            list_chunks,
                                            tf::chunks_held_operation{1, {tf::sha256_digest{1}, tf::sha256_digest{2}}},
                                            tf::stats_operation{},
                                            tf::delete_object_operation{"a/b", {tf::condition_kind::if_match, {}}}};
    bytes steps = {0};  // default options
    for (const tf::operation& op : ops) {
        bytes encoded;
        tf::encode_to(op, encoded);
        steps.push_back(0);  // execute raw bytes
        steps.push_back(static_cast<std::uint8_t>(encoded.size()));
        steps.insert(steps.end(), encoded.begin(), encoded.end());
        steps.push_back(0);  // no time advance
    }
    steps.push_back(3);
    write(t, "every_operation", steps);
    tf::metadata_state_machine machine;
    std::vector<std::uint8_t> result;
    bytes encoded;
    tf::encode_to(tf::operation{chunked}, encoded);
    machine.execute({.op = 1, .index = 0, .timestamp_ns = 1'000'000'000'000, .client_id = 1}, encoded, result);
    bytes snapshot;
    machine.snapshot(snapshot);
    write(t, "restore",
          cat(cat({1, 2, 0xFF},
                  {static_cast<std::uint8_t>(snapshot.size()), static_cast<std::uint8_t>(snapshot.size() >> 8)}),
              snapshot));
    write(t, "result_decoders", cat({0, 4, static_cast<std::uint8_t>(result.size())}, result));
    write(t, "chosen_small_limits",
          bytes{1, 1, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 1, 6, 0, 0, 0, 1, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0});
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
        return 2;
    }
    root = argv[1];
    vsr_wire();
    vsr_replica();
    chunk();
    http();
    kv_and_cli();
    metadata();
    tcp_bus();
    return 0;
}
