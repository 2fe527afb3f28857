// object_service: the proxy's logic, without sockets. It turns object operations into metadata
// operations (through a VSR client) and chunk transfers (through a chunk transport), streams
// bodies in bounded buffers, and hands results back through callbacks. The HTTP proxy and the
// simulator drive the same class; neither the class nor its policies see a socket.
//
// PUT: the body is cut into chunks of options.chunk_size. Each chunk is hashed (SHA-256), then
// written to replication_factor nodes chosen by rendezvous hashing over the connected nodes; a
// failed or slow node is replaced by the next candidate, so a dead node never blocks a write.
// When every chunk has at least write_copies_min durable copies, one put_object commits the
// metadata through VSR, and only then is the PUT acknowledged. Objects no larger than
// inline_size_max skip the chunks and travel inside the metadata. Chunks are written only after
// a `clock` operation has given the upload its lease begin time (see metadata_codec.hpp): the
// garbage collector relies on it.
//
// GET: lookup() reads the metadata linearizably from the primary (get_object is a VSR query:
// answered by the primary after a quorum confirms its view, without a log entry). read() then streams a byte range,
// fetching up to read_ahead_chunks chunks ahead from a holder, verifying each chunk's SHA-256 and falling back to the
// next holder (then to any other node) on a miss, an error or a corrupt copy.
//
// Memory: every chunk buffer, for uploads and reads alike, is reserved from buffer_bytes_max
// first. A transfer that cannot reserve waits (put_body accepts fewer bytes; a read fetches
// later) and is woken when another transfer releases memory.
//
// Callbacks never run inside begin_put/put_body/end_put/abort_put/lookup/remove/list/read/
// cancel_read; they run from tick(), on_chunk_reply() and on_chunk_disconnect(), or from the
// metadata client's own callbacks. The exception is consumed(): it may deliver the next piece
// (on_data) before it returns.
#pragma once

#include <algorithm>
#include <cassert>
#include <concepts>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "toastyfs/chunk_protocol.hpp"
#include "toastyfs/concepts.hpp"
#include "toastyfs/metadata_codec.hpp"
#include "toastyfs/planted_bug.hpp"
#include "toastyfs/types.hpp"
#include "vsr/checksum.hpp"
#include "vsr/client.hpp"

namespace toastyfs {

struct service_options {
    std::uint32_t cluster = 0;
    std::uint8_t node_count = 3;
    /// Copies each chunk gets when enough nodes are up (f+1 .. node_count).
    std::uint8_t replication_factor = 2;
    /// Fewer durable copies than this fails the PUT with `unavailable` (f+1).
    std::uint8_t write_copies_min = 2;
    std::size_t chunk_size = 4u << 20;
    /// Objects up to this size are stored inside their metadata (no chunks).
    std::size_t inline_size_max = 4096;
    /// Larger objects are refused by begin_put (the HTTP layer answers 413 first).
    std::uint64_t object_size_max = std::uint64_t{5} << 30;
    /// Chunk buffers of all uploads and reads together. Transfers wait for memory beyond it.
    std::size_t buffer_bytes_max = 128u << 20;
    /// Sealed chunks of one upload being written (or waiting for the lease) at once. The next
    /// chunk's bytes are accepted meanwhile; beyond it put_body accepts nothing.
    std::uint32_t chunk_writes_per_upload_max = 2;
    /// Chunks one read fetches ahead of the one being delivered (at least 1).
    std::uint32_t read_ahead_chunks = 4;
    /// A chunk request unanswered after this is failed and retried on another node.
    std::uint64_t chunk_request_timeout_ns = 30'000'000'000;
    /// A chunk read that no untried node can take right now (not connected, or its send queue
    /// full: transient, e.g. right after the janitor queued a burst of removes) is retried every
    /// tick for this long before the read fails. Only nodes that were actually asked count as
    /// tried: a local refusal says nothing about whether the node has the chunk.
    std::uint64_t chunk_read_retry_ns = 5'000'000'000;
    /// Seed for request ids (several proxies must not share ids on one node; any value works).
    std::uint64_t request_id_seed = 1;
    /// Test-only (see planted_bug.hpp).
    planted_bug bug = planted_bug::none;
};

enum class service_status : std::uint8_t {
    ok,
    not_found,
    precondition_failed,
    unavailable,  // not enough nodes for the chunks, or the metadata queue is full: retry later
    timeout,      // the metadata operation's outcome is unknown (deadline passed)
    too_large,
    store_full,  // the metadata store is full (objects, chunks or inline bytes)
    invalid,     // the request was malformed (a bug in the caller, or a bad key)
    data_lost,   // no node returned a good copy of a chunk
};

inline const char* to_string(service_status s) noexcept {
    switch (s) {
        case service_status::ok: return "ok";
        case service_status::not_found: return "not_found";
        case service_status::precondition_failed: return "precondition_failed";
        case service_status::unavailable: return "unavailable";
        case service_status::timeout: return "timeout";
        case service_status::too_large: return "too_large";
        case service_status::store_full: return "store_full";
        case service_status::invalid: return "invalid";
        case service_status::data_lost: return "data_lost";
    }
    return "unknown";
}

struct put_request {
    std::string key;
    std::string content_type;
    std::vector<user_metadata_entry> user_metadata;  // sorted by name
    condition put_condition;
    std::optional<std::uint64_t> content_length;  // nullopt: chunked body of unknown length
};

struct put_outcome {
    service_status status = service_status::ok;
    md5_digest md5{};
    sha256_digest sha256{};
    std::uint64_t size = 0;
    std::uint64_t version = 0;
    std::uint64_t last_modified_ns = 0;
};

struct service_counters {
    std::uint64_t puts_ok = 0;
    std::uint64_t puts_failed = 0;
    std::uint64_t chunks_written = 0;  // chunks that reached their copies
    std::uint64_t chunk_writes_sent = 0;
    std::uint64_t chunk_write_failures = 0;
    std::uint64_t chunk_reads_sent = 0;
    std::uint64_t chunk_read_failures = 0;
    std::uint64_t corrupt_chunks_received = 0;  // a node sent bytes that did not verify
    std::uint64_t chunk_timeouts = 0;
    std::uint64_t chunk_reads_deferred = 0;  // no node could take a read at once: retried next tick
    std::uint64_t late_replies = 0;          // for a request no longer outstanding
    std::uint64_t buffer_waits = 0;          // a transfer had to wait for buffer memory
};

template <metadata_client MetadataClient, chunk_transport Transport, crypto Crypto>
class object_service {
public:
    using upload_id = std::uint64_t;
    using read_id = std::uint64_t;

    struct read_callbacks {
        /// A piece of the range, in order. The span stays valid until consumed(id).
        std::function<void(std::span<const std::uint8_t>)> on_data;
        /// Once, at the end: ok after the last byte was consumed, or the error that stopped it.
        std::function<void(service_status)> on_done;
    };

    object_service(const service_options& options, MetadataClient& metadata, Transport& transport)
        : options_(options),
          metadata_(metadata),
          transport_(transport),
          next_request_id_(options.request_id_seed << 32 | 1) {
        assert(options.node_count >= 1 && options.node_count <= nodes_max);
        assert(options.write_copies_min >= 1 && options.write_copies_min <= options.replication_factor);
        assert(options.replication_factor <= options.node_count);
        assert(options.chunk_size >= 1 && options.read_ahead_chunks >= 1);
        assert(options.buffer_bytes_max >= options.chunk_size);
    }

    const service_options& options() const noexcept { return options_; }
    const service_counters& counters() const noexcept { return counters_; }
    std::size_t buffer_bytes_used() const noexcept { return buffer_bytes_used_; }
    std::size_t uploads_active() const noexcept { return uploads_.size(); }
    std::size_t reads_active() const noexcept { return readers_.size(); }

    // ---- PUT --------------------------------------------------------------------------------

    /// Starts an upload. `done` runs once. `writable` runs after put_body accepted fewer bytes
    /// than offered, once it can accept more.
    upload_id begin_put(put_request request, std::function<void(const put_outcome&)> done,
                        std::function<void()> writable) {
        const upload_id id = next_transfer_id_++;
        auto u = std::make_unique<upload>();
        u->id = id;
        u->request = std::move(request);
        u->done = std::move(done);
        u->writable = std::move(writable);
        upload& ref = *u;
        uploads_.emplace(id, std::move(u));
        if (ref.request.content_length && *ref.request.content_length > options_.object_size_max) {
            fail_upload(ref, service_status::too_large);
        } else if (ref.request.content_length && *ref.request.content_length > options_.inline_size_max) {
            request_lease(ref);  // known to need chunks: overlap the clock op with the body
        }
        return id;
    }

    /// Offers body bytes; returns how many were taken (the rest: offer again after writable).
    std::size_t put_body(upload_id id, std::span<const std::uint8_t> bytes) {
        upload* u = find_upload(id);
        if (u == nullptr || u->phase != upload_phase::receiving) return bytes.size();  // failed: swallow
        if (u->received + bytes.size() > options_.object_size_max) {
            fail_upload(*u, service_status::too_large);
            return bytes.size();
        }
        std::size_t taken = 0;
        while (taken < bytes.size() && u->phase == upload_phase::receiving) {
            if (!u->filling && !start_buffer(*u)) break;
            if (u->filling->size() == u->filling_capacity) {
                // Full: a whole chunk is sealed; an unknown-length body grows its reservation.
                if (u->filling_capacity == options_.chunk_size) {
                    if (!seal_chunk(*u)) break;
                    continue;
                }
                if (u->request.content_length) break;  // more than announced: the caller's bug
                if (!grow_buffer(*u)) break;
            }
            const std::size_t room = u->filling_capacity - u->filling->size();
            const std::size_t n = std::min(room, bytes.size() - taken);
            const auto piece = bytes.subspan(taken, n);
            u->filling->insert(u->filling->end(), piece.begin(), piece.end());
            u->md5.update(piece);
            u->sha256.update(piece);
            u->received += n;
            taken += n;
            if (u->filling->size() == options_.chunk_size) seal_chunk(*u);  // may fail: sealed later
        }
        if (u->phase != upload_phase::receiving) return bytes.size();
        if (taken < bytes.size()) u->wants_writable = true;
        return taken;
    }

    /// The body is complete. (The HTTP layer has checked its length against Content-Length.)
    void end_put(upload_id id) {
        upload* u = find_upload(id);
        if (u == nullptr || u->phase != upload_phase::receiving) return;
        u->body_complete = true;
        if (u->chunks.empty() && u->received <= options_.inline_size_max) {
            commit_inline(*u);
            return;
        }
        if (u->filling && !u->filling->empty()) {
            u->seal_pending = true;  // sealed when a write slot frees up
            pump_upload(*u);
        } else {
            maybe_commit(*u);
        }
    }

    /// The client went away: stop, release memory. `done` never runs afterwards.
    void abort_put(upload_id id) {
        upload* u = find_upload(id);
        if (u == nullptr) return;
        u->done = nullptr;
        finish_upload(*u);
    }

    // ---- metadata operations ---------------------------------------------------------------

    /// Linearizable metadata read. with_data=false reads what HEAD needs (no chunk list).
    void lookup(const std::string& key, bool with_data,
                std::function<void(service_status, const object_result&)> done) {
        std::vector<std::uint8_t> op =
            with_data ? encode(get_object_operation{key}) : encode(head_object_operation{key});
        submit_metadata(op, vsr::request_kind::query,
                        [done = std::move(done)](service_status s, std::span<const std::uint8_t> body) {
                            object_result result;
                            if (s == service_status::ok) {
                                auto decoded = decode_object_result(body);
                                if (!decoded)
                                    s = service_status::invalid;
                                else if (decoded->result_status != status::ok)
                                    s = from_status(decoded->result_status);
                                else
                                    result = std::move(*decoded);
                            }
                            done(s, result);
                        });
    }

    void remove(const std::string& key, condition delete_condition, std::function<void(service_status)> done) {
        submit_metadata(encode(delete_object_operation{key, delete_condition}),
                        [done = std::move(done)](service_status s, std::span<const std::uint8_t> body) {
                            if (s == service_status::ok) {
                                auto decoded = decode_status_result(body);
                                s = decoded ? from_status(decoded->result_status) : service_status::invalid;
                            }
                            done(s);
                        });
    }

    void list(list_objects_operation request, std::function<void(service_status, const list_objects_result&)> done) {
        submit_metadata(encode(request), vsr::request_kind::query,
                        [done = std::move(done)](service_status s, std::span<const std::uint8_t> body) {
                            list_objects_result result;
                            if (s == service_status::ok) {
                                auto decoded = decode_list_objects_result(body);
                                if (!decoded)
                                    s = service_status::invalid;
                                else if (decoded->result_status != status::ok)
                                    s = from_status(decoded->result_status);
                                else
                                    result = std::move(*decoded);
                            }
                            done(s, result);
                        });
    }

    /// Any encoded metadata operation (the repairer's clock, add_holder, list_chunks...).
    /// `done` gets the raw result body when the status is ok.
    void submit_metadata(std::span<const std::uint8_t> encoded,
                         std::function<void(service_status, std::span<const std::uint8_t>)> done) {
        submit_metadata(encoded, vsr::request_kind::operation, std::move(done));
    }
    /// As above; kind query for read-only operations (vsr::request_kind).
    void submit_metadata(std::span<const std::uint8_t> encoded, vsr::request_kind kind,
                         std::function<void(service_status, std::span<const std::uint8_t>)> done) {
        auto shared_done =
            std::make_shared<std::function<void(service_status, std::span<const std::uint8_t>)>>(std::move(done));
        const vsr::submit_error error = metadata_.submit(
            encoded, [shared_done](const vsr::client_result& r) { (*shared_done)(from_client(r.status), r.body); },
            kind);
        if (error != vsr::submit_error::none) {
            const service_status s =
                error == vsr::submit_error::too_large ? service_status::too_large : service_status::unavailable;
            deferred_.push_back([shared_done, s] { (*shared_done)(s, {}); });
        }
    }

    // ---- GET body ---------------------------------------------------------------------------

    /// Streams bytes [first, first + length) of an object found by lookup(with_data = true).
    read_id read(const object_result& object, std::uint64_t first, std::uint64_t length, read_callbacks callbacks) {
        const read_id id = next_transfer_id_++;
        auto r = std::make_unique<reader>();
        r->id = id;
        r->callbacks = std::move(callbacks);
        r->next_offset = first;
        r->end_offset = first + length;
        reader& ref = *r;
        readers_.emplace(id, std::move(r));
        if (first > object.size || length > object.size - first ||
            (object.kind == data_kind::inline_data && object.inline_data.size() != object.size) ||
            object.kind == data_kind::omitted) {
            deferred_.push_back([this, id] {
                if (reader* x = find_reader(id)) finish_reader(*x, service_status::invalid);
            });
            return id;
        }
        if (object.kind == data_kind::inline_data) {
            ref.inline_data = std::make_shared<std::vector<std::uint8_t>>(object.inline_data);
        } else {
            std::uint64_t offset = 0;
            for (const chunk_location& c : object.chunks) {
                ref.chunks.push_back(reader_chunk{c, offset});
                offset += c.size;
            }
            if (offset != object.size) ref.chunks.clear();  // inconsistent metadata: fail below
            if (ref.chunks.empty() && object.size != 0) {
                deferred_.push_back([this, id] {
                    if (reader* x = find_reader(id)) finish_reader(*x, service_status::invalid);
                });
                return id;
            }
            ref.next_fetch = chunk_index_at(ref, first);
        }
        deferred_.push_back([this, id] {
            if (reader* x = find_reader(id)) pump_reader(*x);
        });
        return id;
    }

    /// The consumer is done with the last span from on_data. May deliver the next one now.
    void consumed(read_id id) {
        reader* r = find_reader(id);
        if (r == nullptr || !r->delivering) return;
        r->delivering = false;
        r->next_offset = r->delivered_end;
        if (!r->inline_data && !r->ready.empty()) {
            const reader_chunk& c = r->chunks[r->ready.front().index];
            if (r->next_offset >= c.offset + c.location.size) {
                release_buffer(r->ready.front().reserved);
                r->ready.pop_front();
            }
        }
        pump_reader(*r);
    }

    /// Stops a read; on_done never runs afterwards.
    void cancel_read(read_id id) {
        reader* r = find_reader(id);
        if (r == nullptr) return;
        r->callbacks = {};
        finish_reader(*r, service_status::ok);
    }

    // ---- raw chunk requests (the repairer and garbage collector) ------------------------------

    using raw_callback = std::function<void(bool answered, const frame_header& reply, std::vector<std::uint8_t>& body)>;

    /// Sends one request frame to `node`; `done` runs once: with the reply, or with answered =
    /// false on timeout, lost connection or a refused send.
    void send_raw(std::uint8_t node, frame_header header, std::shared_ptr<const std::vector<std::uint8_t>> body,
                  raw_callback done) {
        header.cluster = options_.cluster;
        header.reply = false;
        header.status = frame_status::ok;
        header.request_id = next_request_id_++;
        const std::uint64_t id = header.request_id;
        if (node >= options_.node_count || !transport_.connected(node) ||
            !transport_.send(node, header, std::move(body))) {
            deferred_.push_back([done = std::move(done)] {
                std::vector<std::uint8_t> none;
                done(false, frame_header{}, none);
            });
            return;
        }
        raw_.emplace(id, std::move(done));
        requests_.emplace(
            id, pending_request{header.kind, node, 0, 0, id, now_ns_ + options_.chunk_request_timeout_ns, true});
    }

    static sha256_digest sha256(std::span<const std::uint8_t> bytes) { return Crypto::sha256(bytes); }

    bool node_connected(std::uint8_t node) { return node < options_.node_count && transport_.connected(node); }

    // ---- driver inputs ----------------------------------------------------------------------

    /// Runs work that API calls deferred (callbacks never run inside those calls). The driver
    /// calls it after every batch of events, so deferred work waits for no tick.
    void poll() { run_deferred(); }

    void tick(std::uint64_t now_ns) {
        now_ns_ = now_ns;
        run_deferred();
        for (auto it = requests_.begin(); it != requests_.end();) {
            if (it->second.deadline_ns > now_ns) {
                ++it;
                continue;
            }
            const pending_request p = it->second;
            it = requests_.erase(it);
            ++counters_.chunk_timeouts;
            request_failed(p);
        }
        retry_parked_reads();
        run_deferred();
    }

    void on_chunk_reply(std::uint8_t node, const frame_header& reply, std::vector<std::uint8_t>&& body) {
        const auto it = requests_.find(reply.request_id);
        if (it == requests_.end() || it->second.node != node) {
            ++counters_.late_replies;
            return;
        }
        const pending_request p = it->second;
        requests_.erase(it);
        if (p.raw) {
            complete_raw(p.id, true, reply, body);
        } else if (p.kind == frame_kind::write) {
            on_write_reply(p, reply);
        } else {
            on_read_reply(p, reply, std::move(body));
        }
        run_deferred();
    }

    void on_chunk_disconnect(std::uint8_t node, const std::vector<std::uint64_t>& request_ids) {
        for (const std::uint64_t id : request_ids) {
            const auto it = requests_.find(id);
            if (it == requests_.end() || it->second.node != node) continue;
            const pending_request p = it->second;
            requests_.erase(it);
            request_failed(p);
        }
        run_deferred();
    }

    /// Nodes in rendezvous order for a chunk: the same for every proxy, spread across chunks.
    std::vector<std::uint8_t> placement(const sha256_digest& sha) const {
        std::vector<std::pair<std::uint64_t, std::uint8_t>> scored;
        for (std::uint8_t n = 0; n < options_.node_count; ++n) scored.emplace_back(vsr::checksum(sha, n), n);
        std::sort(scored.begin(), scored.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
        std::vector<std::uint8_t> order;
        for (const auto& s : scored) order.push_back(s.second);
        return order;
    }

private:
    enum class upload_phase : std::uint8_t { receiving, committing, finished };
    enum class lease_state : std::uint8_t { none, requested, granted };

    struct chunk_slot {
        sha256_digest sha256{};
        std::uint32_t size = 0;
        std::shared_ptr<const std::vector<std::uint8_t>> data;  // until written
        std::size_t reserved = 0;
        node_set acked = 0;
        node_set tried = 0;
        std::uint32_t outstanding = 0;
        bool sent = false;  // writes started (after the lease)
        bool done = false;
    };

    struct upload {
        upload_id id = 0;
        put_request request;
        std::function<void(const put_outcome&)> done;
        std::function<void()> writable;
        typename Crypto::md5_context md5;
        typename Crypto::sha256_context sha256;
        std::uint64_t received = 0;
        std::shared_ptr<std::vector<std::uint8_t>> filling;
        std::size_t filling_capacity = 0;  // == bytes reserved for `filling`
        std::vector<chunk_slot> chunks;
        std::uint32_t chunks_unfinished = 0;
        upload_phase phase = upload_phase::receiving;
        lease_state lease = lease_state::none;
        std::uint64_t lease_begin_ns = 0;
        bool body_complete = false;
        bool seal_pending = false;  // the body ended with a partial chunk not yet sealed
        bool wants_writable = false;
        bool waiting_for_memory = false;
    };

    struct reader_chunk {
        chunk_location location;
        std::uint64_t offset = 0;
    };
    struct fetched {
        std::size_t index = 0;
        std::vector<std::uint8_t> data;  // empty while the fetch is in flight
        bool ready = false;
        std::size_t reserved = 0;
        node_set tried = 0;
        std::uint64_t request_id = 0;
        bool parked = false;                // waiting for a node to take the read (retried on tick)
        std::uint64_t parked_since_ns = 0;  // 0: not waiting
    };
    struct reader {
        read_id id = 0;
        read_callbacks callbacks;
        std::uint64_t next_offset = 0;
        std::uint64_t end_offset = 0;
        std::uint64_t delivered_end = 0;
        std::shared_ptr<std::vector<std::uint8_t>> inline_data;
        std::vector<reader_chunk> chunks;
        std::size_t next_fetch = 0;
        std::deque<fetched> ready;  // fetches in chunk order: in flight or ready
        bool delivering = false;
        bool waiting_for_memory = false;
        bool finished = false;
    };

    struct pending_request {
        frame_kind kind = frame_kind::write;
        std::uint8_t node = 0;
        std::uint64_t owner = 0;  // upload or reader id
        std::size_t chunk = 0;    // chunk index (upload) or chunk index (reader)
        std::uint64_t id = 0;
        std::uint64_t deadline_ns = 0;
        bool raw = false;  // send_raw: completes through raw_
    };

    static service_status from_client(vsr::result_status s) noexcept {
        switch (s) {
            case vsr::result_status::ok: return service_status::ok;
            case vsr::result_status::timeout: return service_status::timeout;
            case vsr::result_status::session_evicted: return service_status::timeout;  // outcome unknown
            case vsr::result_status::too_large: return service_status::too_large;
            case vsr::result_status::result_too_large: return service_status::timeout;  // executed, result lost
        }
        return service_status::invalid;
    }

    static service_status from_status(status s) noexcept {
        switch (s) {
            case status::ok: return service_status::ok;
            case status::not_found: return service_status::not_found;
            case status::precondition_failed: return service_status::precondition_failed;
            case status::lease_expired: return service_status::timeout;
            case status::store_full: return service_status::store_full;
            case status::too_large: return service_status::too_large;
            case status::invalid:
            case status::not_referenced:
            case status::last_holder: return service_status::invalid;
        }
        return service_status::invalid;
    }

    upload* find_upload(upload_id id) {
        const auto it = uploads_.find(id);
        return it == uploads_.end() ? nullptr : it->second.get();
    }
    reader* find_reader(read_id id) {
        const auto it = readers_.find(id);
        return it == readers_.end() ? nullptr : it->second.get();
    }

    void run_deferred() {
        while (!deferred_.empty()) {
            auto batch = std::move(deferred_);
            deferred_.clear();
            for (auto& f : batch) f();
        }
    }

    // ---- memory ------------------------------------------------------------------------------

    bool reserve_buffer(std::size_t bytes) {
        if (buffer_bytes_used_ + bytes > options_.buffer_bytes_max) return false;
        buffer_bytes_used_ += bytes;
        return true;
    }

    void release_buffer(std::size_t bytes) {
        assert(bytes <= buffer_bytes_used_);
        buffer_bytes_used_ -= bytes;
        if (bytes != 0) wake_memory_waiters();
    }

    void wait_for_memory(std::uint64_t transfer_id, bool& flag) {
        if (flag) return;
        flag = true;
        ++counters_.buffer_waits;
        memory_waiters_.push_back(transfer_id);
    }

    void wake_memory_waiters() {
        if (memory_waiters_.empty()) return;
        // Defer: the release may come from inside a transfer's own bookkeeping.
        if (wake_scheduled_) return;
        wake_scheduled_ = true;
        deferred_.push_back([this] {
            wake_scheduled_ = false;
            std::deque<std::uint64_t> waiters = std::move(memory_waiters_);
            memory_waiters_.clear();
            for (const std::uint64_t id : waiters) {
                if (upload* u = find_upload(id)) {
                    u->waiting_for_memory = false;
                    pump_upload(*u);
                    notify_writable(*u);
                } else if (reader* r = find_reader(id)) {
                    r->waiting_for_memory = false;
                    pump_reader(*r);
                }
            }
        });
    }

    // ---- upload internals --------------------------------------------------------------------

    /// Reserves and allocates the buffer for the next chunk. False: wait for memory.
    bool start_buffer(upload& u) {
        if (u.chunks_unfinished >= options_.chunk_writes_per_upload_max) return false;
        std::size_t want = options_.chunk_size;
        if (u.request.content_length) {
            const std::uint64_t left = *u.request.content_length - std::min(*u.request.content_length, u.received);
            want = static_cast<std::size_t>(std::min<std::uint64_t>(want, std::max<std::uint64_t>(left, 1)));
        } else {
            want = std::min(want, std::max<std::size_t>(options_.inline_size_max + 1, 64 * 1024));
        }
        if (!reserve_buffer(want)) {
            wait_for_memory(u.id, u.waiting_for_memory);
            return false;
        }
        u.filling = std::make_shared<std::vector<std::uint8_t>>();
        u.filling->reserve(want);
        u.filling_capacity = want;
        return true;
    }

    /// Unknown length: the small first reservation is full; grow towards a whole chunk.
    bool grow_buffer(upload& u) {
        const std::size_t target = std::min(options_.chunk_size, u.filling_capacity * 4);
        if (!reserve_buffer(target - u.filling_capacity)) {
            wait_for_memory(u.id, u.waiting_for_memory);
            return false;
        }
        u.filling->reserve(target);
        u.filling_capacity = target;
        return true;
    }

    /// Turns the filled buffer into a chunk being written. False if the upload has too many.
    bool seal_chunk(upload& u) {
        if (u.chunks_unfinished >= options_.chunk_writes_per_upload_max) return false;
        chunk_slot slot;
        slot.size = static_cast<std::uint32_t>(u.filling->size());
        slot.sha256 = Crypto::sha256(*u.filling);
        slot.reserved = u.filling_capacity;
        slot.data = std::move(u.filling);
        u.filling.reset();
        u.filling_capacity = 0;
        u.chunks.push_back(std::move(slot));
        ++u.chunks_unfinished;
        if (u.lease == lease_state::none) request_lease(u);
        if (u.lease == lease_state::granted) start_chunk_writes(u, u.chunks.size() - 1);
        return true;
    }

    void request_lease(upload& u) {
        u.lease = lease_state::requested;
        const upload_id id = u.id;
        submit_metadata(encode(clock_operation{}), [this, id](service_status s, std::span<const std::uint8_t> body) {
            upload* x = find_upload(id);
            if (x == nullptr || x->phase == upload_phase::finished) return;
            std::optional<clock_result> clock;
            if (s == service_status::ok) clock = decode_clock_result(body);
            if (!clock || clock->result_status != status::ok) {
                fail_upload(*x, s == service_status::ok ? service_status::invalid : s);
                return;
            }
            x->lease = lease_state::granted;
            x->lease_begin_ns = clock->timestamp_ns;
            for (std::size_t i = 0; i < x->chunks.size(); ++i) {
                if (!x->chunks[i].sent) start_chunk_writes(*x, i);
            }
            maybe_commit(*x);
        });
    }

    void start_chunk_writes(upload& u, std::size_t index) {
        chunk_slot& c = u.chunks[index];
        c.sent = true;
        send_more_writes(u, index);
    }

    /// Keeps replication_factor - acked writes outstanding while candidates remain.
    void send_more_writes(upload& u, std::size_t index) {
        chunk_slot& c = u.chunks[index];
        for (const std::uint8_t node : placement(c.sha256)) {
            if (count(c.acked) + static_cast<int>(c.outstanding) >= options_.replication_factor) break;
            if (contains(c.tried, node)) continue;
            if (!transport_.connected(node)) continue;
            c.tried = with(c.tried, node);
            frame_header h;
            h.kind = frame_kind::write;
            h.cluster = options_.cluster;
            h.request_id = next_request_id_++;
            h.sha256 = c.sha256;
            if (!transport_.send(node, h, c.data)) {
                ++counters_.chunk_write_failures;
                continue;
            }
            ++counters_.chunk_writes_sent;
            ++c.outstanding;
            requests_.emplace(h.request_id, pending_request{frame_kind::write, node, u.id, index, h.request_id,
                                                            now_ns_ + options_.chunk_request_timeout_ns});
        }
        settle_chunk(u, index);
    }

    void settle_chunk(upload& u, std::size_t index) {
        chunk_slot& c = u.chunks[index];
        if (c.done) return;
        const int copies = count(c.acked);
        const bool exhausted = c.outstanding == 0;
        const bool planted = options_.bug == planted_bug::put_acks_one_copy && copies >= 1;
        if (planted || copies >= options_.replication_factor || (exhausted && copies >= options_.write_copies_min)) {
            c.done = true;
            c.data.reset();
            release_buffer(c.reserved);
            c.reserved = 0;
            --u.chunks_unfinished;
            ++counters_.chunks_written;
            pump_upload(u);
            notify_writable(u);
            maybe_commit(u);
        } else if (exhausted) {
            fail_upload(u, service_status::unavailable);
        }
    }

    void on_write_reply(const pending_request& p, const frame_header& reply) {
        upload* u = find_upload(p.owner);
        if (u == nullptr || u->phase != upload_phase::receiving || p.chunk >= u->chunks.size()) return;
        chunk_slot& c = u->chunks[p.chunk];
        --c.outstanding;
        if (reply.kind == frame_kind::write && reply.status == frame_status::ok && reply.sha256 == c.sha256) {
            c.acked = with(c.acked, p.node);
            settle_chunk(*u, p.chunk);
        } else {
            ++counters_.chunk_write_failures;
            send_more_writes(*u, p.chunk);
        }
    }

    void complete_raw(std::uint64_t id, bool answered, const frame_header& reply, std::vector<std::uint8_t>& body) {
        const auto it = raw_.find(id);
        if (it == raw_.end()) return;
        raw_callback done = std::move(it->second);
        raw_.erase(it);
        done(answered, reply, body);
    }

    void request_failed(const pending_request& p) {
        if (p.raw) {
            std::vector<std::uint8_t> none;
            complete_raw(p.id, false, frame_header{}, none);
        } else if (p.kind == frame_kind::write) {
            upload* u = find_upload(p.owner);
            if (u == nullptr || u->phase != upload_phase::receiving || p.chunk >= u->chunks.size()) return;
            --u->chunks[p.chunk].outstanding;
            ++counters_.chunk_write_failures;
            send_more_writes(*u, p.chunk);
        } else {
            reader* r = find_reader(p.owner);
            if (r == nullptr) return;
            ++counters_.chunk_read_failures;
            for (fetched& f : r->ready) {
                if (f.request_id == p.id) {
                    f.request_id = 0;
                    send_read(*r, f);
                    break;
                }
            }
        }
    }

    /// Seals a full buffer, or the final partial one, once a write slot is free.
    void pump_upload(upload& u) {
        if (u.phase != upload_phase::receiving || !u.filling || u.filling->empty()) return;
        const bool full = u.filling->size() == options_.chunk_size;
        if ((full || u.seal_pending) && seal_chunk(u)) u.seal_pending = false;
    }

    void notify_writable(upload& u) {
        if (!u.wants_writable || u.phase != upload_phase::receiving || u.body_complete) return;
        u.wants_writable = false;
        const upload_id id = u.id;
        deferred_.push_back([this, id] {
            upload* x = find_upload(id);
            if (x != nullptr && x->phase == upload_phase::receiving && x->writable) x->writable();
        });
    }

    void maybe_commit(upload& u) {
        if (u.phase != upload_phase::receiving || !u.body_complete || u.seal_pending) return;
        if (u.chunks_unfinished != 0 || u.lease != lease_state::granted) return;
        put_object_operation op = base_put(u);
        op.kind = data_kind::chunks;
        op.lease_begin_ns = u.lease_begin_ns;
        for (const chunk_slot& c : u.chunks) op.chunks.push_back(chunk_location{c.sha256, c.size, c.acked});
        commit(u, std::move(op));
    }

    void commit_inline(upload& u) {
        put_object_operation op = base_put(u);
        op.kind = data_kind::inline_data;
        if (u.filling) op.inline_data.assign(u.filling->begin(), u.filling->end());
        release_buffer(u.filling_capacity);
        u.filling.reset();
        u.filling_capacity = 0;
        commit(u, std::move(op));
    }

    put_object_operation base_put(upload& u) {
        put_object_operation op;
        op.key = u.request.key;
        op.size = u.received;
        op.md5 = u.md5.finish();
        op.sha256 = u.sha256.finish();
        op.content_type = u.request.content_type;
        op.user_metadata = u.request.user_metadata;
        op.put_condition = u.request.put_condition;
        return op;
    }

    void commit(upload& u, put_object_operation op) {
        u.phase = upload_phase::committing;
        put_outcome outcome;
        outcome.md5 = op.md5;
        outcome.sha256 = op.sha256;
        outcome.size = op.size;
        const upload_id id = u.id;
        submit_metadata(encode(op), [this, id, outcome](service_status s, std::span<const std::uint8_t> body) mutable {
            upload* x = find_upload(id);
            if (x == nullptr) return;
            if (s == service_status::ok) {
                auto decoded = decode_put_object_result(body);
                if (!decoded)
                    s = service_status::invalid;
                else if (decoded->result_status != status::ok)
                    s = from_status(decoded->result_status);
                else {
                    outcome.version = decoded->version;
                    outcome.last_modified_ns = decoded->last_modified_ns;
                }
            }
            outcome.status = s;
            if (s == service_status::ok)
                ++counters_.puts_ok;
            else
                ++counters_.puts_failed;
            auto done = std::move(x->done);
            finish_upload(*x);
            if (done) done(outcome);
        });
    }

    void fail_upload(upload& u, service_status s) {
        if (u.phase == upload_phase::finished) return;
        ++counters_.puts_failed;
        auto done = std::move(u.done);
        const upload_id id = u.id;
        finish_upload(u);
        if (done)
            deferred_.push_back([done = std::move(done), s, id] {
                (void)id;
                put_outcome outcome;
                outcome.status = s;
                done(outcome);
            });
    }

    /// Releases everything the upload holds; the entry itself goes at the next deferred run, so
    /// a caller up the stack may still look at it (and sees phase finished). Outstanding chunk
    /// requests stay in the table and are ignored when answered.
    void finish_upload(upload& u) {
        if (u.phase == upload_phase::finished) return;
        u.phase = upload_phase::finished;
        release_buffer(u.filling_capacity);
        u.filling_capacity = 0;
        u.filling.reset();
        for (chunk_slot& c : u.chunks) {
            release_buffer(c.reserved);
            c.reserved = 0;
            c.data.reset();
        }
        const upload_id id = u.id;
        deferred_.push_back([this, id] { uploads_.erase(id); });
    }

    // ---- read internals ---------------------------------------------------------------------

    static std::size_t chunk_index_at(const reader& r, std::uint64_t offset) {
        const auto it = std::upper_bound(r.chunks.begin(), r.chunks.end(), offset,
                                         [](std::uint64_t o, const reader_chunk& c) { return o < c.offset; });
        return it == r.chunks.begin() ? 0 : static_cast<std::size_t>(it - r.chunks.begin() - 1);
    }

    void pump_reader(reader& r) {
        if (r.finished) return;
        if (r.next_offset >= r.end_offset && !r.delivering) {
            finish_reader(r, service_status::ok);
            return;
        }
        if (r.inline_data) {
            if (!r.delivering)
                deliver(
                    r,
                    std::span<const std::uint8_t>(*r.inline_data).subspan(r.next_offset, r.end_offset - r.next_offset),
                    r.end_offset);
            return;
        }
        // Fetch ahead.
        while (r.ready.size() < options_.read_ahead_chunks && r.next_fetch < r.chunks.size() &&
               r.chunks[r.next_fetch].offset < r.end_offset) {
            const std::size_t reserve = r.chunks[r.next_fetch].location.size;
            if (!reserve_buffer(reserve)) {
                wait_for_memory(r.id, r.waiting_for_memory);
                break;
            }
            fetched f;
            f.index = r.next_fetch++;
            f.reserved = reserve;
            r.ready.push_back(std::move(f));
            send_read(r, r.ready.back());
            if (r.finished) return;
        }
        if (!r.delivering && !r.ready.empty() && r.ready.front().ready) {
            fetched& f = r.ready.front();
            const reader_chunk& c = r.chunks[f.index];
            const std::uint64_t from = std::max(c.offset, r.next_offset) - c.offset;
            const std::uint64_t to = std::min<std::uint64_t>(c.offset + c.location.size, r.end_offset) - c.offset;
            deliver(r, std::span<const std::uint8_t>(f.data).subspan(from, to - from), c.offset + to);
        }
    }

    void deliver(reader& r, std::span<const std::uint8_t> piece, std::uint64_t end) {
        r.delivering = true;
        r.delivered_end = end;
        if (r.callbacks.on_data) r.callbacks.on_data(piece);
    }

    /// Reads chunk f from the next node not yet tried: holders first, then every other node.
    /// A node counts as tried once a request was sent to it (it answered, failed or timed out);
    /// one that cannot take a request right now (not connected, queue full) is skipped this
    /// time and asked again later.
    void send_read(reader& r, fetched& f) {
        const chunk_location& loc = r.chunks[f.index].location;
        const std::vector<std::uint8_t> order = placement(loc.sha256);
        const int passes = options_.bug == planted_bug::read_tries_one_node && f.tried != 0 ? 0 : 2;
        bool skipped = false;  // an untried node could not take the request now
        for (int pass = 0; pass < passes; ++pass) {
            for (const std::uint8_t node : order) {
                if (contains(f.tried, node) || contains(loc.holders, node) != (pass == 0)) continue;
                if (!transport_.connected(node)) {
                    skipped = true;
                    continue;
                }
                frame_header h;
                h.kind = frame_kind::read;
                h.cluster = options_.cluster;
                h.request_id = next_request_id_++;
                h.sha256 = loc.sha256;
                if (!transport_.send(node, h, nullptr)) {
                    skipped = true;
                    continue;
                }
                f.tried = with(f.tried, node);
                f.parked = false;
                f.parked_since_ns = 0;
                ++counters_.chunk_reads_sent;
                f.request_id = h.request_id;
                requests_.emplace(h.request_id, pending_request{frame_kind::read, node, r.id, f.index, h.request_id,
                                                                now_ns_ + options_.chunk_request_timeout_ns});
                return;
            }
        }
        if (skipped && passes != 0) {
            if (f.parked_since_ns == 0) f.parked_since_ns = now_ns_ == 0 ? 1 : now_ns_;
            if (now_ns_ - std::min(now_ns_, f.parked_since_ns) < options_.chunk_read_retry_ns) {
                f.parked = true;  // retry_parked_reads sends it on a later tick
                ++counters_.chunk_reads_deferred;
                parked_readers_.insert(r.id);
                return;
            }
        }
        // Every node tried: nobody has a good copy (or nobody is reachable).
        const bool reachable =
            std::any_of(order.begin(), order.end(), [&](std::uint8_t n) { return transport_.connected(n); });
        const read_id id = r.id;
        const service_status s = reachable ? service_status::data_lost : service_status::unavailable;
        deferred_.push_back([this, id, s] {
            if (reader* x = find_reader(id)) finish_reader(*x, s);
        });
        r.finished = true;  // stop pumping; finish_reader runs from the deferred queue
    }

    void on_read_reply(const pending_request& p, const frame_header& reply, std::vector<std::uint8_t>&& body) {
        reader* r = find_reader(p.owner);
        if (r == nullptr) return;
        auto it =
            std::find_if(r->ready.begin(), r->ready.end(), [&](const fetched& f) { return f.request_id == p.id; });
        if (it == r->ready.end()) return;
        fetched& f = *it;
        f.request_id = 0;
        const chunk_location& loc = r->chunks[f.index].location;
        const bool ok = reply.kind == frame_kind::read && reply.status == frame_status::ok && body.size() == loc.size &&
                        (options_.bug == planted_bug::get_skips_verification || Crypto::sha256(body) == loc.sha256);
        if (!ok) {
            if (reply.status == frame_status::ok) ++counters_.corrupt_chunks_received;
            ++counters_.chunk_read_failures;
            send_read(*r, f);
            return;
        }
        f.data = std::move(body);
        f.ready = true;
        pump_reader(*r);
    }

    /// Sends again the reads no node could take (send_read parked them).
    void retry_parked_reads() {
        const std::set<read_id> parked = std::move(parked_readers_);
        parked_readers_.clear();
        for (const read_id id : parked) {
            reader* r = find_reader(id);
            if (r == nullptr || r->finished) continue;
            for (fetched& f : r->ready) {
                if (!f.parked) continue;
                f.parked = false;
                send_read(*r, f);
                if (r->finished) break;
            }
        }
    }

    void finish_reader(reader& r, service_status s) {
        for (fetched& f : r.ready) release_buffer(f.reserved);
        r.ready.clear();
        auto on_done = std::move(r.callbacks.on_done);
        readers_.erase(r.id);  // destroys r
        if (on_done) on_done(s);
    }

    service_options options_;
    MetadataClient& metadata_;
    Transport& transport_;
    service_counters counters_;
    std::uint64_t now_ns_ = 0;
    std::uint64_t next_transfer_id_ = 1;
    std::uint64_t next_request_id_ = 1;
    std::size_t buffer_bytes_used_ = 0;
    bool wake_scheduled_ = false;
    std::map<upload_id, std::unique_ptr<upload>> uploads_;
    std::map<read_id, std::unique_ptr<reader>> readers_;
    std::set<read_id> parked_readers_;  // readers with a fetch waiting for a node to take it
    std::map<std::uint64_t, pending_request> requests_;
    std::map<std::uint64_t, raw_callback> raw_;
    std::deque<std::uint64_t> memory_waiters_;
    std::vector<std::function<void()>> deferred_;
};

}  // namespace toastyfs
