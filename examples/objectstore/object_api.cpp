#include "object_api.hpp"

#include <algorithm>
#include <utility>

#include "platform/cli.hpp"
#include "toastyfs/http/date.hpp"
#include "toastyfs/http/etag.hpp"
#include "toastyfs/http/json.hpp"
#include "toastyfs/http/range.hpp"
#include "toastyfs/http/uri.hpp"

namespace toastyfs::proxy {

namespace http = toastyfs::http;

/// One request in flight. Callbacks from the service hold it by shared_ptr and check `alive`:
/// once the connection aborts the exchange, nothing touches the exchange again.
struct object_api::request_state {
    platform::http_exchange* exchange = nullptr;
    bool alive = true;
    std::optional<std::uint64_t> upload;
    std::optional<std::uint64_t> read;
};

namespace {

std::string etag_of(const md5_digest& md5) { return "\"" + to_hex(md5) + "\""; }

struct error_reply {
    std::uint16_t status;
    const char* code;
};

error_reply error_for(service_status s) {
    switch (s) {
        case service_status::ok: return {200, "OK"};
        case service_status::not_found: return {404, "NoSuchKey"};
        case service_status::precondition_failed: return {412, "PreconditionFailed"};
        case service_status::unavailable: return {503, "ServiceUnavailable"};
        case service_status::timeout: return {504, "Timeout"};
        case service_status::too_large: return {413, "EntityTooLarge"};
        case service_status::store_full: return {507, "InsufficientStorage"};
        case service_status::invalid: return {400, "InvalidRequest"};
        case service_status::data_lost: return {500, "DataUnavailable"};
    }
    return {500, "InternalError"};
}

void send_error(platform::http_exchange& exchange, std::uint16_t status, std::string_view code,
                std::string_view message, http::fields extra = {}) {
    std::string body = "{\"error\":";
    http::append_json_string(body, code);
    body += ",\"message\":";
    http::append_json_string(body, message);
    body += "}\n";
    if (status == 503) extra.add("Retry-After", "1");
    if (status == 405) extra.add("Allow", "GET, HEAD, PUT, DELETE");
    exchange.respond_with(status, "application/json", std::move(body), std::move(extra));
}

void send_service_error(platform::http_exchange& exchange, service_status s, std::string_view message) {
    const error_reply e = error_for(s);
    send_error(exchange, e.status, e.code, message);
}

/// x-amz-meta-* request headers as sorted, unique (name, value) pairs; duplicates are joined
/// with "," as HTTP combines repeated fields.
std::vector<user_metadata_entry> user_metadata_of(const http::request_head& head) {
    std::vector<user_metadata_entry> out;
    constexpr std::string_view prefix = "x-amz-meta-";
    for (const http::field& f : head.headers) {
        if (f.name.size() <= prefix.size()) continue;
        std::string name = f.name;
        std::transform(name.begin(), name.end(), name.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        if (!name.starts_with(prefix)) continue;
        name.erase(0, prefix.size());
        auto it = std::find_if(out.begin(), out.end(), [&](const user_metadata_entry& e) { return e.name == name; });
        if (it != out.end())
            it->value += "," + f.value;
        else
            out.push_back({std::move(name), f.value});
    }
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
    return out;
}

std::size_t user_metadata_size(const std::vector<user_metadata_entry>& entries) {
    std::size_t n = 0;
    for (const auto& e : entries) n += e.name.size() + e.value.size();
    return n;
}

/// The precondition headers of a request, parsed.
struct preconditions {
    std::optional<http::entity_tag_list> if_match;
    std::optional<http::entity_tag_list> if_none_match;
    bool any() const noexcept { return if_match || if_none_match; }
};

std::optional<http::error> parse_preconditions(const http::request_head& head, preconditions& out) {
    if (auto values = head.find_all("if-match"); !values.empty()) {
        auto list = http::parse_entity_tag_list(values);
        if (!list) return list.error();
        out.if_match = std::move(list.value());
    }
    if (auto values = head.find_all("if-none-match"); !values.empty()) {
        auto list = http::parse_entity_tag_list(values);
        if (!list) return list.error();
        out.if_none_match = std::move(list.value());
    }
    return std::nullopt;
}

/// The simple cases map straight onto one state-machine condition: If-None-Match: *, or one
/// strong tag in If-Match / If-None-Match. Anything else needs a lookup first.
std::optional<condition> direct_condition(const preconditions& p) {
    if (!p.any()) return condition{};
    if (p.if_match && p.if_none_match) return std::nullopt;
    if (p.if_none_match && p.if_none_match->any && p.if_none_match->tags.empty()) {
        return condition{condition_kind::if_none_match_any, {}};
    }
    const http::entity_tag_list& list = p.if_match ? *p.if_match : *p.if_none_match;
    if (list.any || list.tags.size() != 1 || list.tags[0].weak) return std::nullopt;
    const auto md5 = from_hex<16>(list.tags[0].opaque);
    if (!md5) return std::nullopt;  // never one of our tags: decided after a lookup
    return condition{p.if_match ? condition_kind::if_match : condition_kind::if_none_match, *md5};
}

/// Evaluates the preconditions against the current object (nullopt: absent). True: go on.
bool preconditions_pass(const preconditions& p, const std::optional<std::string>& current_opaque) {
    std::optional<http::entity_tag> current;
    if (current_opaque) current = http::entity_tag{false, *current_opaque};
    if (p.if_match && !http::if_match_passes(*p.if_match, current)) return false;
    if (p.if_none_match && !http::if_none_match_passes(*p.if_none_match, current)) return false;
    return true;
}

}  // namespace

// ---- dispatch --------------------------------------------------------------------------------------

void object_api::on_request(platform::http_exchange& exchange) {
    auto state = std::make_shared<request_state>();
    state->exchange = &exchange;
    exchange.on_abort([this, state] {
        state->alive = false;
        if (state->upload) service_.abort_put(*state->upload);
        if (state->read) service_.cancel_read(*state->read);
    });
    const http::request_head& head = exchange.request();
    auto target = http::split_target(head.target);
    if (!target) {
        send_error(exchange, target.error().status, "InvalidURI", target.error().reason);
        return;
    }
    const http::target_parts& parts = target.value();
    const bool is_get = head.method == "GET";
    const bool is_head = head.method == "HEAD";
    if (parts.form == http::target_form::asterisk) {
        send_error(exchange, 400, "InvalidURI", "asterisk-form is only for OPTIONS");
        return;
    }
    if (http::is_service_root(parts.path)) {
        if (!is_get && !is_head) {
            send_error(exchange, 405, "MethodNotAllowed", "the root accepts GET and HEAD only");
            return;
        }
        auto query = http::parse_query(parts.query);
        if (!query) {
            send_error(exchange, query.error().status, "InvalidArgument", query.error().reason);
            return;
        }
        if (query.value().contains("status")) {
            handle_status(state);
            return;
        }
        handle_list(state);
        return;
    }
    auto key = http::decode_key(parts.path, key_size_max);
    if (!key) {
        send_error(exchange, key.error().status, key.error().status == 414 ? "KeyTooLong" : "InvalidKey",
                   key.error().reason);
        return;
    }
    if (!is_get && !is_head && head.method != "PUT" && head.method != "DELETE") {
        send_error(exchange, 405, "MethodNotAllowed", "use GET, HEAD, PUT or DELETE");
        return;
    }
    if (cluster_.replicas_connected < cluster_.quorum) {
        send_error(exchange, 503, "ServiceUnavailable", "the proxy reaches fewer than a majority of the nodes");
        return;
    }
    if (head.method == "PUT")
        handle_put(state, std::move(key.value()));
    else if (head.method == "DELETE")
        handle_delete(state, std::move(key.value()));
    else
        handle_get(state, std::move(key.value()), is_head);
}

// ---- PUT -------------------------------------------------------------------------------------------

void object_api::handle_put(std::shared_ptr<request_state> state, std::string key) {
    platform::http_exchange& exchange = *state->exchange;
    const http::request_head& head = exchange.request();
    if (head.framing == http::body_framing::none) {
        send_error(exchange, 411, "MissingContentLength", "PUT needs Content-Length or Transfer-Encoding: chunked");
        return;
    }
    if (head.framing == http::body_framing::content_length && head.content_length > options_.object_size_max) {
        send_error(exchange, 413, "EntityTooLarge", "the object is larger than the proxy's maximum object size");
        return;
    }
    put_request request;
    request.key = std::move(key);
    if (auto type = head.find("content-type")) {
        if (type->size() > content_type_size_max) {
            send_error(exchange, 400, "InvalidArgument", "Content-Type is longer than 256 bytes");
            return;
        }
        request.content_type = std::string(*type);
    }
    request.user_metadata = user_metadata_of(head);
    if (user_metadata_size(request.user_metadata) > user_metadata_size_max) {
        send_error(exchange, 400, "MetadataTooLarge", "x-amz-meta-* headers exceed 2048 bytes");
        return;
    }
    if (head.framing == http::body_framing::content_length) request.content_length = head.content_length;
    preconditions p;
    if (auto failure = parse_preconditions(head, p)) {
        send_error(exchange, failure->status, "InvalidArgument", failure->reason);
        return;
    }
    auto start_upload = [this, state](put_request upload) {
        if (!state->alive) return;
        const std::uint64_t id = service_.begin_put(
            std::move(upload),
            [this, state](const put_outcome& outcome) {
                state->upload.reset();
                if (!state->alive) return;
                if (outcome.status != service_status::ok) {
                    send_service_error(*state->exchange, outcome.status, "the object was not stored");
                    return;
                }
                http::fields extra;
                extra.add("ETag", etag_of(outcome.md5));
                state->exchange->respond_with(200, "", "", std::move(extra));
            },
            [state] {
                if (state->alive) state->exchange->resume_body();
            });
        state->upload = id;
        state->exchange->read_body(
            [this, id](std::span<const std::uint8_t> bytes) { return service_.put_body(id, bytes); },
            [this, id] { service_.end_put(id); });
    };
    if (auto direct = direct_condition(p)) {
        request.put_condition = *direct;
        start_upload(std::move(request));
        return;
    }
    // A condition the state machine cannot check alone: read the current ETag, evaluate the
    // headers, then put on the condition that the object is still exactly what was evaluated.
    // The key is copied first: the lambda below moves `request`, and the order in which function
    // arguments are evaluated is unspecified (GCC built the lambda first: the lookup saw "").
    const std::string key_to_check = request.key;
    service_.lookup(
        key_to_check, false,
        [state, p, request = std::move(request), start_upload](service_status s, const object_result& current) mutable {
            if (!state->alive) return;
            if (s != service_status::ok && s != service_status::not_found) {
                send_service_error(*state->exchange, s, "cannot evaluate the precondition");
                return;
            }
            const bool exists = s == service_status::ok;
            const std::optional<std::string> opaque =
                exists ? std::optional<std::string>(to_hex(current.md5)) : std::nullopt;
            if (!preconditions_pass(p, opaque)) {
                send_error(*state->exchange, 412, "PreconditionFailed", "a precondition header does not hold");
                return;
            }
            request.put_condition = exists ? condition{condition_kind::if_match, current.md5}
                                           : condition{condition_kind::if_none_match_any, {}};
            start_upload(std::move(request));
        });
}

// ---- GET / HEAD ------------------------------------------------------------------------------------

void object_api::handle_get(std::shared_ptr<request_state> state, std::string key, bool head_only) {
    preconditions p;
    if (auto failure = parse_preconditions(state->exchange->request(), p)) {
        send_error(*state->exchange, failure->status, "InvalidArgument", failure->reason);
        return;
    }
    service_.lookup(key, !head_only, [this, state, p, head_only](service_status s, const object_result& object) {
        if (!state->alive) return;
        platform::http_exchange& exchange = *state->exchange;
        if (s == service_status::not_found) {
            if (p.if_match) {
                send_error(exchange, 412, "PreconditionFailed", "If-Match: the object does not exist");
            } else {
                send_error(exchange, 404, "NoSuchKey", "no object under this key");
            }
            return;
        }
        if (s != service_status::ok) {
            send_service_error(exchange, s, "cannot read the object's metadata");
            return;
        }
        const std::string opaque = to_hex(object.md5);
        const std::optional<http::entity_tag> current = http::entity_tag{false, opaque};
        http::fields headers;
        headers.add("ETag", etag_of(object.md5));
        headers.add("Last-Modified", http::format_imf_fixdate(static_cast<std::int64_t>(object.last_modified_ns)));
        headers.add("Accept-Ranges", "bytes");
        for (const auto& m : object.user_metadata) headers.add("x-amz-meta-" + m.name, m.value);
        if (p.if_match && !http::if_match_passes(*p.if_match, current)) {
            send_error(exchange, 412, "PreconditionFailed", "If-Match does not match the object's ETag");
            return;
        }
        if (p.if_none_match && !http::if_none_match_passes(*p.if_none_match, current)) {
            http::response_head not_modified;
            not_modified.status = 304;
            not_modified.headers = std::move(headers);
            exchange.respond(std::move(not_modified));
            exchange.finish();
            return;
        }
        std::uint64_t first = 0;
        std::uint64_t length = object.size;
        http::response_head response;
        response.status = 200;
        if (auto range = exchange.request().find("range")) {
            const http::range_resolution r = http::resolve_range(*range, object.size);
            if (r.outcome == http::range_outcome::unsatisfiable) {
                http::fields extra;
                extra.add("Content-Range", http::content_range_unsatisfiable(object.size));
                send_error(exchange, 416, "InvalidRange", "the range is outside the object", std::move(extra));
                return;
            }
            if (r.outcome == http::range_outcome::satisfiable) {
                response.status = 206;
                first = r.range.first;
                length = r.range.size();
                headers.add("Content-Range", http::content_range(r.range, object.size));
            }
        }
        response.headers = std::move(headers);
        response.headers.add("Content-Type",
                             object.content_type.empty() ? "application/octet-stream" : object.content_type);
        response.set_content_length(length);
        exchange.respond(std::move(response));
        if (head_only || length == 0) {
            exchange.finish();
            return;
        }
        stream_object(state, object, first, length);
    });
}

void object_api::stream_object(std::shared_ptr<request_state> state, const object_result& object, std::uint64_t first,
                               std::uint64_t length) {
    service_type::read_callbacks callbacks;
    callbacks.on_data = [this, state](std::span<const std::uint8_t> piece) {
        if (!state->alive) return;
        state->exchange->write(piece, [this, state] {
            if (state->read) service_.consumed(*state->read);
        });
    };
    callbacks.on_done = [state](service_status s) {
        state->read.reset();
        if (!state->alive) return;
        if (s == service_status::ok) {
            state->exchange->finish();
        } else {
            // The head is out: the only honest signal left is to cut the connection short.
            state->exchange->abandon();
        }
    };
    state->read = service_.read(object, first, length, std::move(callbacks));
}

// ---- DELETE ----------------------------------------------------------------------------------------

void object_api::handle_delete(std::shared_ptr<request_state> state, std::string key) {
    preconditions p;
    if (auto failure = parse_preconditions(state->exchange->request(), p)) {
        send_error(*state->exchange, failure->status, "InvalidArgument", failure->reason);
        return;
    }
    auto remove = [this, state](const std::string& target, condition c) {
        const bool if_match = c.kind == condition_kind::if_match;
        service_.remove(target, c, [state, if_match](service_status s) {
            if (!state->alive) return;
            if (s == service_status::ok) state->exchange->respond_with(204, "", "");
            // If-Match on an absent object fails (RFC 9110 13.1.1), as on the lookup path below.
            else if (s == service_status::not_found && if_match)
                send_error(*state->exchange, 412, "PreconditionFailed", "If-Match: the object does not exist");
            else
                send_service_error(
                    *state->exchange, s,
                    s == service_status::not_found ? "no object under this key" : "the object was not deleted");
        });
    };
    const std::optional<condition> direct = direct_condition(p);
    if (direct && (direct->kind == condition_kind::none || direct->kind == condition_kind::if_match)) {
        remove(std::move(key), *direct);
        return;
    }
    service_.lookup(key, false, [state, p, key, remove](service_status s, const object_result& current) {
        if (!state->alive) return;
        if (s == service_status::not_found) {
            send_error(*state->exchange, p.if_match ? 412 : 404, p.if_match ? "PreconditionFailed" : "NoSuchKey",
                       "no object under this key");
            return;
        }
        if (s != service_status::ok) {
            send_service_error(*state->exchange, s, "cannot evaluate the precondition");
            return;
        }
        if (!preconditions_pass(p, to_hex(current.md5))) {
            send_error(*state->exchange, 412, "PreconditionFailed", "a precondition header does not hold");
            return;
        }
        remove(key, condition{condition_kind::if_match, current.md5});
    });
}

// ---- listing and status ----------------------------------------------------------------------------

void object_api::handle_list(std::shared_ptr<request_state> state) {
    platform::http_exchange& exchange = *state->exchange;
    const auto parts = http::split_target(exchange.request().target);
    const auto query = http::parse_query(parts.value().query);
    list_objects_operation op;
    if (auto prefix = query.value().find("prefix")) op.prefix = std::string(*prefix);
    if (auto after = query.value().find("start-after")) op.start_after = std::string(*after);
    if (op.prefix.size() > key_size_max || op.start_after.size() > key_size_max) {
        send_error(exchange, 400, "InvalidArgument", "prefix and start-after are at most 1024 bytes");
        return;
    }
    if (auto max = query.value().find("max-keys")) {
        std::uint64_t value = 0;
        if (!platform::cli::parse_u64(*max, 1, list_keys_max, value)) {
            send_error(exchange, 400, "InvalidArgument", "max-keys must be a number from 1 to 1000");
            return;
        }
        op.max_keys = static_cast<std::uint16_t>(value);
    }
    if (cluster_.replicas_connected < cluster_.quorum) {
        send_error(exchange, 503, "ServiceUnavailable", "the proxy reaches fewer than a majority of the nodes");
        return;
    }
    service_.list(std::move(op), [state](service_status s, const list_objects_result& result) {
        if (!state->alive) return;
        if (s != service_status::ok) {
            send_service_error(*state->exchange, s, "cannot list objects");
            return;
        }
        std::string body = "{\"objects\":[";
        for (std::size_t i = 0; i < result.entries.size(); ++i) {
            const list_objects_entry& e = result.entries[i];
            if (i != 0) body += ',';
            body += "{\"key\":";
            http::append_json_string(body, e.key);
            body += ",\"size\":" + std::to_string(e.size) + ",\"etag\":";
            http::append_json_string(body, etag_of(e.md5));
            body +=
                ",\"last_modified\":\"" + http::format_iso8601(static_cast<std::int64_t>(e.last_modified_ns)) + "\"}";
        }
        body += "],\"is_truncated\":";
        body += result.truncated ? "true" : "false";
        if (result.truncated) {
            body += ",\"next_start_after\":";
            http::append_json_string(body, result.cursor);
        }
        body += "}\n";
        state->exchange->respond_with(200, "application/json", std::move(body));
    });
}

void object_api::handle_status(std::shared_ptr<request_state> state) {
    const char* status_names[] = {"normal", "view_change", "recovering"};
    std::string body =
        "{\"proxy\":{\"replicas_connected\":" + std::to_string(cluster_.replicas_connected) +
        ",\"quorum\":" + std::to_string(cluster_.quorum) + ",\"uploads\":" + std::to_string(service_.uploads_active()) +
        ",\"reads\":" + std::to_string(service_.reads_active()) +
        ",\"buffer_bytes\":" + std::to_string(service_.buffer_bytes_used()) +
        ",\"puts_ok\":" + std::to_string(service_.counters().puts_ok) +
        ",\"puts_failed\":" + std::to_string(service_.counters().puts_failed) +
        ",\"repairs\":" + std::to_string(janitor_.counters().repairs) +
        ",\"chunks_collected\":" + std::to_string(janitor_.counters().chunks_collected) +
        ",\"janitor_passes\":" + std::to_string(janitor_.counters().passes) +
        ",\"janitor_passes_completed\":" + std::to_string(janitor_.counters().passes_completed) + "},\"nodes\":[";
    for (std::size_t i = 0; i < cluster_.nodes.size(); ++i) {
        const node_view& n = cluster_.nodes[i];
        if (i != 0) body += ',';
        body += "{\"node\":" + std::to_string(i + 1);
        const bool fresh = cluster_.answered_within(n, 3'000'000'000ull);
        if (fresh) {
            body += ",\"status\":\"";
            body += n.metadata.status < 3 ? status_names[n.metadata.status] : "unknown";
            body += "\",\"role\":\"";
            body += n.metadata.is_primary ? "primary" : "backup";
            body += "\",\"view\":" + std::to_string(n.metadata.view) + ",\"op\":" + std::to_string(n.metadata.op) +
                    ",\"commit\":" + std::to_string(n.metadata.commit) +
                    ",\"checkpoint\":" + std::to_string(n.metadata.checkpoint_op) +
                    ",\"log_entries\":" + std::to_string(n.metadata.log_entries) +
                    ",\"log_entries_max\":" + std::to_string(n.metadata.log_entries_max);
        } else {
            body += ",\"status\":\"unreachable\"";
        }
        body += ",\"chunk_server\":";
        body += chunks_.connected(static_cast<std::uint8_t>(i)) ? "\"up\"" : "\"down\"";
        if (n.chunks_answered) {
            body += ",\"chunks\":" + std::to_string(n.chunks.chunks) +
                    ",\"chunk_bytes\":" + std::to_string(n.chunks.bytes_stored) +
                    ",\"quarantined\":" + std::to_string(n.chunks.quarantined);
        }
        body += "}";
    }
    body += "]}\n";
    state->exchange->respond_with(200, "application/json", std::move(body));
}

}  // namespace toastyfs::proxy
