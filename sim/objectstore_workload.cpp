// The object store simulator: the users (the workload) and the history they record.

#include "sim/objectstore_simulation.hpp"

namespace sim::objectstore_internal {

// ---- users (the workload) ---------------------------------------------------------------------

kv_history_op& objectstore_simulation::begin_history(std::uint32_t user, kv_kind kind, std::uint32_t key) {
    kv_history_op op;
    op.id = history_.size();
    op.client = user;
    op.key = key_names_[key];
    op.kind = kind;
    op.invoke_ns = now_;
    op.result_outcome = outcome::unknown;
    history_.push_back(std::move(op));
    history_put_.push_back(UINT64_MAX);
    history_abandoned_.push_back(0);
    users_[user].history = history_.size() - 1;
    return history_.back();
}

void objectstore_simulation::user_step(std::uint32_t user, std::uint64_t generation) {
    user_state& u = users_[user];
    if (generation != u.generation) return;
    if (u.op == user_op::none) {
        start_operation(user);
    } else if (u.op == user_op::put && !u.ended && !u.waiting_writable) {
        feed_put(user);
    } else if ((u.op == user_op::get) && u.consume_pending) {
        u.consume_pending = false;
        proxies_[u.proxy].service->consumed(u.read);
    }
}

void objectstore_simulation::start_operation(std::uint32_t user) {
    user_state& u = users_[user];
    if (u.final_reader) {
        if (final_key_ >= keys_) return;
        start_get(user, final_key_++, true, true);
        return;
    }
    if (issued_ >= options_.requests) return;
    ++issued_;
    ++active_users_;
    ++result_.requests_issued;
    ++u.generation;
    const auto roll = vsr::uniform_below(*u.random, 100);
    const auto key = static_cast<std::uint32_t>(vsr::uniform_below(*u.random, keys_));
    if (roll < 40)
        start_put(user);
    else if (roll < 65)
        start_get(user, key, true, vsr::chance(*u.random, 1, 2));
    else if (roll < 72)
        start_get(user, key, false, true);
    else if (roll < 88)
        start_delete(user);
    else
        start_list(user);
}

void objectstore_simulation::start_put(std::uint32_t user) {
    user_state& u = users_[user];
    vsr::xoshiro256& random = *u.random;
    const auto key = static_cast<std::uint32_t>(vsr::uniform_below(random, keys_));
    tfs::put_request request;
    request.key = key_names_[key];
    request.content_type = "application/octet-stream";
    const auto condition_roll = vsr::uniform_below(random, 100);
    kv_kind kind = kv_kind::put;
    std::optional<std::uint64_t> expected_put;
    if (condition_roll < 15) {
        request.put_condition.kind = tfs::condition_kind::if_none_match_any;
        kind = kv_kind::put_if_absent;
    } else if (condition_roll < 30 && u.last_md5[key] && put_by_md5(*u.last_md5[key])) {
        request.put_condition.kind = tfs::condition_kind::if_match;
        request.put_condition.etag = *u.last_md5[key];
        expected_put = put_by_md5(*u.last_md5[key]);
        kind = kv_kind::cas;
    }
    // Sizes: empty, inline, and up to several chunks.
    const auto size_roll = vsr::uniform_below(random, 100);
    std::uint64_t size = 0;
    if (size_roll < 5) size = 0;
    // At least 8 bytes: the first 8 bytes of a put's content are a bijection of its id, so the
    // content (and its MD5) identifies the put. (1..7-byte objects collided, seed 3724.)
    else if (size_roll < 25)
        size = vsr::uniform_between(random, 8, service_options_.inline_size_max);
    else
        size = vsr::uniform_between(random, 8, object_size_max_);
    if (vsr::chance(random, 3, 4)) request.content_length = size;

    const std::uint64_t put_id = puts_.size();
    put_record record;
    record.key = key;
    record.size = size;
    crypto::md5_context md5;
    std::vector<std::uint8_t> block;
    for (std::uint64_t at = 0; at < size; at += 64 * 1024) {
        block.resize(std::min<std::uint64_t>(64 * 1024, size - at));
        fill_content(put_id, at, block);
        md5.update(block);
    }
    record.md5 = md5.finish();
    kv_history_op& h = begin_history(user, kind, key);
    record.history = h.id;
    history_put_[h.id] = put_id;
    puts_.push_back(record);
    if (size != 0 && !put_by_md5_.emplace(record.md5, put_id).second)
        fail("simulator", "two puts with the same content");
    h.value = value_name(put_id);
    if (expected_put) h.expected = value_name(*expected_put);

    u.op = user_op::put;
    u.put_id = put_id;
    u.size = size;
    u.offered = 0;
    u.ended = false;
    u.waiting_writable = false;
    u.abort_at = abort_per_mille_ != 0 && size > 0 && vsr::chance(random, abort_per_mille_, 1000)
                     ? vsr::uniform_below(random, size)
                     : no_abort;
    const std::uint64_t generation = u.generation;
    u.upload = proxies_[u.proxy].service->begin_put(
        std::move(request), [this, user, generation](const tfs::put_outcome& o) { on_put_done(user, generation, o); },
        [this, user, generation] {
            user_state& x = users_[user];
            if (x.generation != generation || !x.waiting_writable) return;
            x.waiting_writable = false;
            schedule(vsr::uniform_below(random_, 2 * ns_per_ms), event_kind::user_step, user, generation);
        });
    schedule(vsr::uniform_below(random_, 2 * ns_per_ms), event_kind::user_step, user, generation);
}

void objectstore_simulation::feed_put(std::uint32_t user) {
    user_state& u = users_[user];
    service_type& service = *proxies_[u.proxy].service;
    if (u.abort_at != no_abort && u.offered >= u.abort_at) {
        service.abort_put(u.upload);
        history_[u.history].result_outcome = outcome::fail;  // never committed: definitely not executed
        history_abandoned_[u.history] = 1;
        ++result_.uploads_aborted;
        finish_operation(user);
        return;
    }
    if (u.offered == u.size) {
        u.ended = true;
        service.end_put(u.upload);
        return;
    }
    std::uint64_t piece = std::min<std::uint64_t>(u.size - u.offered,
                                                  vsr::uniform_between(*u.random, 1, 2 * service_options_.chunk_size));
    if (u.abort_at != no_abort) piece = std::min(piece, std::max<std::uint64_t>(1, u.abort_at - u.offered));
    std::vector<std::uint8_t> bytes(piece);
    fill_content(u.put_id, u.offered, bytes);
    const std::size_t taken = service.put_body(u.upload, bytes);
    u.offered += taken;
    result_.bytes_written += taken;
    if (taken < piece) {
        u.waiting_writable = true;  // backpressure: wait for the writable callback
        return;
    }
    schedule(vsr::uniform_below(random_, 3 * ns_per_ms), event_kind::user_step, user, u.generation);
}

void objectstore_simulation::on_put_done(std::uint32_t user, std::uint64_t generation, const tfs::put_outcome& o) {
    user_state& u = users_[user];
    if (u.generation != generation || u.op != user_op::put) return;
    kv_history_op& h = history_[u.history];
    h.complete_ns = now_;
    check_success(user, o.status);
    const std::uint64_t position = proxies_[u.proxy].adapter.position;
    switch (o.status) {
        case tfs::service_status::ok:
        case tfs::service_status::precondition_failed:
            h.result_outcome = outcome::ok;
            h.status = o.status == tfs::service_status::ok ? kv_status::ok : kv_status::mismatch;
            h.position = position;
            ++result_.requests_ok;
            if (o.status == tfs::service_status::ok) {
                ++result_.puts_ok;
                if (o.md5 != puts_[u.put_id].md5 || o.size != u.size) {
                    fail("content", "PUT #" + std::to_string(h.id) +
                                        " acknowledged with another etag or size than its content has");
                }
                const std::uint32_t key = puts_[u.put_id].key;
                u.last_md5[key] = o.md5;
                check_put_durability(u.put_id);
            } else {
                ++result_.conditional_failures;
            }
            if (position == 0) fail("simulator", "acknowledged PUT without a log position");
            break;
        case tfs::service_status::timeout: h.result_outcome = outcome::unknown; break;
        case tfs::service_status::invalid:
            fail("object_service", "PUT #" + std::to_string(h.id) + " of a valid object answered invalid");
            break;
        default: h.result_outcome = outcome::fail; break;  // refused before (or without) any effect
    }
    finish_operation(user);
}

void objectstore_simulation::start_get(std::uint32_t user, std::uint32_t key, bool with_data, bool whole) {
    user_state& u = users_[user];
    ++u.generation;
    begin_history(user, kv_kind::get, key);
    u.op = with_data ? user_op::get : user_op::head;
    u.reading = false;
    u.consume_pending = false;
    const std::uint64_t generation = u.generation;
    proxies_[u.proxy].service->lookup(
        key_names_[key], with_data,
        [this, user, generation, whole](tfs::service_status s, const tfs::object_result& r) {
            on_lookup(user, generation, s, r, whole);
        });
}

void objectstore_simulation::on_lookup(std::uint32_t user, std::uint64_t generation, tfs::service_status s,
                                       const tfs::object_result& r, bool whole) {
    user_state& u = users_[user];
    if (u.generation != generation) return;
    kv_history_op& h = history_[u.history];
    h.complete_ns = now_;
    check_success(user, s);
    if (s == tfs::service_status::timeout) {
        h.result_outcome = outcome::unknown;
        if (u.final_reader) fail("liveness", "final read of " + h.key + " timed out after healing");
        finish_operation(user);
        return;
    }
    if (s != tfs::service_status::ok && s != tfs::service_status::not_found) {
        h.result_outcome = outcome::fail;
        if (u.final_reader)
            fail("liveness", "final read of " + h.key + " failed with " + tfs::to_string(s) + " after healing");
        finish_operation(user);
        return;
    }
    h.result_outcome = outcome::ok;
    h.position = proxies_[u.proxy].adapter.position;
    ++result_.requests_ok;
    if (s == tfs::service_status::not_found) {
        h.status = kv_status::not_found;
        finish_operation(user);
        return;
    }
    h.status = kv_status::ok;
    const auto put = put_by_md5(r.md5);
    const bool empty = r.size == 0;
    if (!put && !empty) {
        fail("content",
             "GET/HEAD #" + std::to_string(h.id) + " of " + h.key + " returned an etag no PUT of this run has");
        finish_operation(user);
        return;
    }
    const std::uint64_t put_id = put.value_or(0);
    h.result_value = empty ? "empty" : value_name(put_id);
    if (!empty && (puts_[put_id].size != r.size || key_names_[puts_[put_id].key] != h.key)) {
        fail("content", "GET/HEAD #" + std::to_string(h.id) + " of " + h.key + " returned the etag of put p" +
                            std::to_string(put_id) + " (key " + key_names_[puts_[put_id].key] + ", size " +
                            std::to_string(puts_[put_id].size) + ") with size " + std::to_string(r.size));
    }
    const auto key_index =
        static_cast<std::size_t>(std::find(key_names_.begin(), key_names_.end(), h.key) - key_names_.begin());
    u.last_md5[key_index] = r.md5;
    if (u.op == user_op::head) {
        ++result_.heads_ok;
        finish_operation(user);
        return;
    }
    // Stream the body (or a range of it) and compare every byte with the put's content.
    u.object = r;
    u.read_put = put_id;
    u.range_first = 0;
    u.range_length = r.size;
    if (!whole && r.size > 0) {
        u.range_first = vsr::uniform_below(*u.random, r.size);
        u.range_length = vsr::uniform_between(*u.random, 0, r.size - u.range_first);
    }
    u.received = 0;
    u.reading = true;
    u.read_start_ns = now_;
    tfs::object_service<metadata_adapter, sim_transport, crypto>::read_callbacks callbacks;
    callbacks.on_data = [this, user, generation](std::span<const std::uint8_t> piece) {
        on_read_data(user, generation, piece);
    };
    callbacks.on_done = [this, user, generation](tfs::service_status status) {
        on_read_done(user, generation, status);
    };
    u.read = proxies_[u.proxy].service->read(u.object, u.range_first, u.range_length, std::move(callbacks));
}

void objectstore_simulation::on_read_data(std::uint32_t user, std::uint64_t generation,
                                          std::span<const std::uint8_t> piece) {
    user_state& u = users_[user];
    if (u.generation != generation || !u.reading) return;
    std::vector<std::uint8_t> expected(piece.size());
    const std::uint64_t offset = u.range_first + u.received;
    if (u.object.size != 0) fill_content(u.read_put, offset, expected);
    std::vector<std::uint8_t> got(piece.begin(), piece.end());
    if (options_.tamper == objectstore_tamper::get_flips_byte && !tampered_ && !got.empty()) {
        tampered_ = true;
        got[0] ^= 1;
    }
    if (u.received + piece.size() > u.range_length || got != expected) {
        std::size_t at = 0;
        while (at < got.size() && at < expected.size() && got[at] == expected[at]) ++at;
        fail("content", "GET #" + std::to_string(u.history) + " of " + history_[u.history].key + " (put p" +
                            std::to_string(u.read_put) + ", range " + std::to_string(u.range_first) + "+" +
                            std::to_string(u.range_length) + ") delivered " + std::to_string(piece.size()) +
                            " bytes at offset " + std::to_string(offset) +
                            " that differ from the put's content at byte " + std::to_string(offset + at));
        return;
    }
    u.received += piece.size();
    result_.bytes_read += piece.size();
    u.consume_pending = true;
    schedule(vsr::uniform_below(random_, 2 * ns_per_ms), event_kind::user_step, user, generation);
}

void objectstore_simulation::on_read_done(std::uint32_t user, std::uint64_t generation, tfs::service_status s) {
    user_state& u = users_[user];
    if (u.generation != generation || !u.reading) return;
    u.reading = false;
    check_success(user, s);
    if (s == tfs::service_status::ok) {
        if (u.received != u.range_length) {
            fail("content", "GET #" + std::to_string(u.history) + " ended ok after " + std::to_string(u.received) +
                                " of " + std::to_string(u.range_length) + " bytes");
        }
        ++result_.gets_ok;
    } else if (s == tfs::service_status::data_lost) {
        check_data_lost(user);
        if (!faults_active_) check_final_loss(user);
    } else if (u.final_reader) {
        fail("liveness",
             "final read of " + history_[u.history].key + " failed with " + tfs::to_string(s) + " after healing");
    }
    finish_operation(user);
}

void objectstore_simulation::start_delete(std::uint32_t user) {
    user_state& u = users_[user];
    const auto key = static_cast<std::uint32_t>(vsr::uniform_below(*u.random, keys_));
    tfs::condition condition;
    kv_kind kind = kv_kind::del;
    std::optional<std::uint64_t> expected;
    if (u.last_md5[key] && put_by_md5(*u.last_md5[key]) && vsr::chance(*u.random, 1, 3)) {
        condition.kind = tfs::condition_kind::if_match;
        condition.etag = *u.last_md5[key];
        expected = put_by_md5(*u.last_md5[key]);
        kind = kv_kind::del_if;
    }
    kv_history_op& h = begin_history(user, kind, key);
    if (expected) h.expected = value_name(*expected);
    u.op = user_op::del;
    const std::uint64_t generation = u.generation;
    proxies_[u.proxy].service->remove(key_names_[key], condition, [this, user, generation](tfs::service_status s) {
        user_state& x = users_[user];
        if (x.generation != generation) return;
        kv_history_op& op = history_[x.history];
        op.complete_ns = now_;
        check_success(user, s);
        if (s == tfs::service_status::ok || s == tfs::service_status::not_found ||
            s == tfs::service_status::precondition_failed) {
            op.result_outcome = outcome::ok;
            op.status = s == tfs::service_status::ok          ? kv_status::ok
                        : s == tfs::service_status::not_found ? kv_status::not_found
                                                              : kv_status::mismatch;
            op.position = proxies_[x.proxy].adapter.position;
            ++result_.requests_ok;
            if (s == tfs::service_status::ok) ++result_.deletes_ok;
            if (s == tfs::service_status::precondition_failed) ++result_.conditional_failures;
        } else {
            op.result_outcome = s == tfs::service_status::timeout ? outcome::unknown : outcome::fail;
        }
        finish_operation(user);
    });
}

void objectstore_simulation::start_list(std::uint32_t user) {
    user_state& u = users_[user];
    static const char* prefixes[] = {"", "a/", "b/", "a/0"};
    list_record record;
    record.prefix = prefixes[vsr::uniform_below(*u.random, 4)];
    record.invoke_ns = now_;
    lists_.push_back(record);
    u.history = lists_.size() - 1;
    u.op = user_op::list;
    tfs::list_objects_operation op;
    op.prefix = record.prefix;
    op.max_keys = static_cast<std::uint16_t>(vsr::uniform_between(*u.random, 1, 8));
    const std::uint64_t generation = u.generation;
    proxies_[u.proxy].service->list(
        op, [this, user, generation](tfs::service_status s, const tfs::list_objects_result& r) {
            user_state& x = users_[user];
            if (x.generation != generation) return;
            if (options_.tamper == objectstore_tamper::list_hangs && !tampered_) {
                tampered_ = true;
                return;
            }
            list_record& l = lists_[x.history];
            l.complete_ns = now_;
            check_success(user, s);
            if (s == tfs::service_status::ok) {
                l.ok = true;
                l.truncated = r.truncated;
                l.entries = r.entries;
                if (options_.tamper == objectstore_tamper::list_drops_entry && !tampered_ && !l.entries.empty()) {
                    tampered_ = true;
                    l.entries.erase(l.entries.begin());
                }
                ++result_.requests_ok;
                ++result_.lists_ok;
            }
            finish_operation(user);
        });
}

void objectstore_simulation::finish_operation(std::uint32_t user) {
    user_state& u = users_[user];
    u.op = user_op::none;
    u.reading = false;
    ++u.generation;
    if (u.final_reader) {
        ++result_.final_reads;
        schedule(0, event_kind::user_step, user, u.generation);
        return;
    }
    --active_users_;
    if (faults_active_ && issued_ >= heal_at_request_) schedule(0, event_kind::heal_all, 0);
    schedule(vsr::uniform_below(random_, think_ns_max_ + 1), event_kind::user_step, user, u.generation);
}

}  // namespace sim::objectstore_internal
