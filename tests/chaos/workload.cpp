#include "workload.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <random>

#include "http_client.hpp"
#include "platform/crypto.hpp"
#include "process.hpp"
#include "toastyfs/types.hpp"

namespace chaos {

using sim::kv_history_op;
using sim::kv_kind;
using sim::kv_status;
using sim::outcome;

namespace {

std::uint64_t splitmix(std::uint64_t& state) {
    std::uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

std::string value_header(std::uint32_t client, std::uint64_t sequence, std::size_t size) {
    char line[80];
    const int n =
        std::snprintf(line, sizeof line, "tfc %u %llu %zu\n", client, static_cast<unsigned long long>(sequence), size);
    return std::string(line, static_cast<std::size_t>(n));
}

std::string md5_hex(std::string_view bytes) {
    platform::openssl_crypto::md5_context context;
    context.update({reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()});
    const toastyfs::md5_digest digest = context.finish();
    return toastyfs::to_hex(digest);
}

std::string value_name(std::uint32_t client, std::uint64_t sequence) {
    return std::to_string(client) + "." + std::to_string(sequence);
}

/// Object sizes: mostly small (kept inline in the metadata), a quarter a few chunks of 16 KiB,
/// some up to 200 KiB.
std::size_t pick_size(std::mt19937_64& random) {
    const std::uint64_t r = random() % 100;
    if (r < 65) return 40 + random() % 1000;
    if (r < 90) return 4097 + random() % 36000;
    return 40'000 + random() % 160'000;
}

void count_status(workload_counters& c, const std::optional<http_response>& response) {
    ++c.ops;
    const int bucket = response ? response->status / 100 : 0;
    if (bucket >= 0 && bucket <= 5) ++c.by_status[bucket];
}

std::vector<list_entry> parse_listing(const std::string& body, bool& truncated) {
    std::vector<list_entry> out;
    truncated = body.find("\"is_truncated\":true") != std::string::npos;
    std::size_t at = 0;
    while ((at = body.find("{\"key\":\"", at)) != std::string::npos) {
        at += 8;
        const std::size_t key_end = body.find('"', at);
        if (key_end == std::string::npos) break;
        list_entry e;
        e.key = body.substr(at, key_end - at);
        const std::size_t size_at = body.find("\"size\":", key_end);
        if (size_at != std::string::npos) std::from_chars(body.data() + size_at + 7, body.data() + body.size(), e.size);
        const std::size_t etag_at = body.find("\"etag\":", key_end);
        if (etag_at != std::string::npos) {
            std::size_t p = etag_at + 7;
            while (p < body.size() && (body[p] == '"' || body[p] == '\\')) ++p;
            e.etag = body.substr(p, 32);
        }
        out.push_back(std::move(e));
        at = key_end;
    }
    return out;
}

/// The proxy keeps objects up to this size in the metadata (its --inline-max default).
constexpr std::size_t inline_size_max = 4096;

/// Answers to a PUT or DELETE that mean it was not applied. 4xx: refused before anything was
/// written (412 and 404 are handled before this). 503: the proxy reached no majority, could not
/// place the chunks, or could not queue the metadata operation; the metadata path itself never
/// answers 503 (object_service.hpp from_client/from_status). 507: the log is full (not executed).
/// 500 and 504 stay unknown.
bool refused_unapplied(int status) { return (status >= 400 && status < 500) || status == 503 || status == 507; }

std::string unquote(std::string_view etag) {
    std::string out;
    for (char c : etag)
        if (c != '"') out += c;
    return out;
}

}  // namespace

std::string key_name(std::uint32_t generation, std::uint32_t index) {
    char name[32];
    std::snprintf(name, sizeof name, "g%04u-k%03u", generation, index);
    return name;
}

std::vector<std::string> workload::keys_used() const {
    std::vector<std::string> keys;
    for (std::uint32_t g = 0; g < generations_.load(); ++g)
        for (std::uint32_t k = 0; k < options_.keys; ++k) keys.push_back(key_name(g, k));
    return keys;
}

std::string make_value(std::uint32_t client, std::uint64_t sequence, std::size_t size) {
    std::string value = value_header(client, sequence, size);
    if (value.size() > size) size = value.size();
    value.resize(size);
    std::uint64_t state = (static_cast<std::uint64_t>(client) << 40) ^ sequence ^ 0x746663ull;
    for (std::size_t i = value_header(client, sequence, size).size(); i < size; i += 8) {
        const std::uint64_t word = splitmix(state);
        for (std::size_t b = 0; b < 8 && i + b < size; ++b) value[i + b] = static_cast<char>(word >> (8 * b));
    }
    return value;
}

std::optional<std::string> verify_value(std::string_view body) {
    unsigned client = 0;
    unsigned long long sequence = 0;
    std::size_t size = 0;
    const std::size_t line_end = body.find('\n');
    if (line_end == std::string_view::npos || line_end > 64) return std::nullopt;
    const std::string line(body.substr(0, line_end));
    if (std::sscanf(line.c_str(), "tfc %u %llu %zu", &client, &sequence, &size) != 3 || size != body.size())
        return std::nullopt;
    if (make_value(client, sequence, size) != body) return std::nullopt;
    return value_name(client, sequence);
}

void workload::start() {
    start_ns_ = now_ns();
    for (std::uint32_t c = 0; c < options_.clients; ++c) threads_.emplace_back([this, c] { run_client(c); });
}

void workload::stop() {
    stop_ = true;
    for (std::thread& t : threads_) t.join();
    threads_.clear();
}

void workload::merge(client_result& r) {
    std::lock_guard lock(mutex_);
    for (auto& op : r.history) history_.push_back(std::move(op));
    for (auto& l : r.lists) lists_.push_back(std::move(l));
    written_.merge(r.written);
    for (auto& c : r.corrupt) corrupt_.push_back(std::move(c));
    for (auto& t : r.truncated) truncated_.push_back(std::move(t));
    counters_.ops += r.counters.ops;
    counters_.ok += r.counters.ok;
    counters_.unknown += r.counters.unknown;
    counters_.failed += r.counters.failed;
    for (int i = 0; i < 6; ++i) counters_.by_status[i] += r.counters.by_status[i];
}

std::uint32_t workload::current_generation() {
    const std::uint64_t generation_ns = options_.generation_ms * 1'000'000ull;
    const std::uint32_t generation = static_cast<std::uint32_t>((now_ns() - start_ns_) / generation_ns);
    for (std::uint32_t seen = generations_.load();
         seen < generation + 1 && !generations_.compare_exchange_weak(seen, generation + 1);) {}
    return generation;
}

void workload::remember_chunked(const recent_put& put) {
    std::lock_guard lock(recent_mutex_);
    if (recent_chunked_.size() < recent_max)
        recent_chunked_.push_back(put);
    else
        recent_chunked_[recent_next_++ % recent_max] = put;
}

void workload::put(http_client& http, std::mt19937_64& random, std::uint64_t sequence, kv_history_op& op,
                   client_result& r) {
    const bool create_only = random() % 10 == 0;
    op.kind = create_only ? kv_kind::put_if_absent : kv_kind::put;
    const std::string value = make_value(op.client, sequence, pick_size(random));
    op.value = value_name(op.client, sequence);
    r.written[op.value] = written_value{op.key, value.size(), md5_hex(value)};
    std::vector<std::pair<std::string, std::string>> headers;
    if (create_only) headers.emplace_back("If-None-Match", "*");
    op.invoke_ns = now_ns();
    const auto response = http.request("PUT", "/" + op.key, value, headers);
    op.complete_ns = now_ns();
    count_status(r.counters, response);
    if (response && response->status == 200) {
        op.result_outcome = outcome::ok;
        if (value.size() > inline_size_max) remember_chunked(recent_put{op.client, sequence, value.size()});
    } else if (response && create_only && response->status == 412) {
        op.result_outcome = outcome::ok;
        op.status = kv_status::mismatch;
    } else if (response && refused_unapplied(response->status)) {
        op.result_outcome = outcome::fail;
        ++r.counters.failed;
    } else {
        op.result_outcome = outcome::unknown;
    }
}

void workload::get(http_client& http, kv_history_op& op, client_result& r) {
    op.kind = kv_kind::get;
    op.invoke_ns = now_ns();
    const auto response = http.request("GET", "/" + op.key);
    op.complete_ns = now_ns();
    count_status(r.counters, response);
    op.result_outcome = outcome::unknown;
    if (response && response->status == 200 && !response->complete) {
        const std::string* etag = response->header("etag");
        r.truncated.push_back(
            truncated_get{op.key, etag ? unquote(*etag) : std::string(), op.invoke_ns, op.complete_ns});
    } else if (response && response->status == 200) {
        if (auto name = verify_value(response->body)) {
            op.result_outcome = outcome::ok;
            op.result_value = *name;
        } else {
            r.corrupt.push_back("GET " + op.key + " by client " + std::to_string(op.client) + " returned " +
                                std::to_string(response->body.size()) + " bytes that no PUT wrote (first line: " +
                                response->body.substr(0, std::min<std::size_t>(40, response->body.find('\n'))) + ")");
        }
    } else if (response && response->status == 404) {
        op.result_outcome = outcome::ok;
        op.status = kv_status::not_found;
    }
}

void workload::remove(http_client& http, kv_history_op& op, client_result& r) {
    op.kind = kv_kind::del;
    op.invoke_ns = now_ns();
    const auto response = http.request("DELETE", "/" + op.key);
    op.complete_ns = now_ns();
    count_status(r.counters, response);
    op.result_outcome = outcome::unknown;
    if (response && response->status == 204) {
        op.result_outcome = outcome::ok;
    } else if (response && response->status == 404) {
        op.result_outcome = outcome::ok;
        op.status = kv_status::not_found;
    } else if (response && refused_unapplied(response->status)) {
        op.result_outcome = outcome::fail;
        ++r.counters.failed;
    }
}

void workload::list_near(http_client& http, std::mt19937_64& random, const std::string& key, client_result& r) {
    list_record l;
    // A whole generation ("g0003-") or ten keys of it ("g0003-k01").
    l.prefix = random() % 4 == 0 ? key.substr(0, 6) : key.substr(0, 9);
    l.invoke_ns = now_ns();
    const auto response = http.request("GET", "/?prefix=" + l.prefix + "&max-keys=1000");
    l.complete_ns = now_ns();
    count_status(r.counters, response);
    if (response && response->status == 200 && response->complete) {
        l.ok = true;
        l.entries = parse_listing(response->body, l.truncated);
        ++r.counters.ok;
    } else {
        ++r.counters.unknown;
    }
    r.lists.push_back(std::move(l));
    completed_.fetch_add(1, std::memory_order_relaxed);
}

void workload::record(kv_history_op&& op, client_result& r) {
    if (op.result_outcome == outcome::ok) ++r.counters.ok;
    if (op.result_outcome == outcome::unknown) ++r.counters.unknown;
    completed_.fetch_add(1, std::memory_order_relaxed);
    const bool took_effect = op.kind != kv_kind::get && op.result_outcome == outcome::ok;
    if (took_effect) writes_ok_.fetch_add(1, std::memory_order_relaxed);
    if (took_effect && op.status == kv_status::ok)
        for (std::uint64_t seen = last_effective_write_issued_ns_.load();
             seen < op.invoke_ns && !last_effective_write_issued_ns_.compare_exchange_weak(seen, op.invoke_ns);) {}
    r.history.push_back(std::move(op));
}

void workload::run_client(std::uint32_t client) {
    std::mt19937_64 random(options_.seed * 1000 + client);
    http_client http(options_.host, options_.port, options_.timeout_ms);
    client_result r;
    std::uint64_t sequence = 0;
    while (!stop_) {
        const std::uint32_t generation = current_generation();
        const std::string key = key_name(generation, static_cast<std::uint32_t>(random() % options_.keys));
        const std::uint64_t pick = random() % 100;
        kv_history_op op;
        op.id = next_id_++;
        op.client = client;
        op.key = key;
        if (pick >= 88) {  // LISTs are recorded apart from the history, and no think time follows them
            list_near(http, random, key, r);
            continue;
        }
        if (pick < 40)
            put(http, random, ++sequence, op, r);
        else if (pick < 75)
            get(http, op, r);
        else
            remove(http, op, r);
        record(std::move(op), r);
        if (options_.think_ms_max) sleep_ms(random() % (options_.think_ms_max + 1));
    }
    merge(r);
}

std::map<std::string, std::string> workload::read_all(bool record, std::uint64_t deadline_ns,
                                                      std::vector<std::string>& problems) {
    constexpr std::uint32_t failed_in_a_row_max = 20;
    // After convergence a key reads at once; one whose chunks are gone (a GET cut short every
    // time) must not hold the rest of the final checks until the run's deadline.
    constexpr std::uint64_t key_retry_ms_max = 60'000;
    http_client http(options_.host, options_.port, options_.timeout_ms);
    std::map<std::string, std::string> out;
    client_result r;
    std::uint32_t failed_in_a_row = 0;
    const std::vector<std::string> keys = keys_used();
    for (std::size_t i = 0; i < keys.size(); ++i) {
        const std::string& key = keys[i];
        if (failed_in_a_row == failed_in_a_row_max || now_ns() >= deadline_ns) {
            problems.push_back("gave up reading: " + std::to_string(keys.size() - i) + " keys left unread (" +
                               (now_ns() >= deadline_ns ? "deadline passed" : "20 keys in a row failed") + ")");
            break;
        }
        std::string last;
        bool done = false;
        const std::uint64_t key_deadline_ns =
            std::min<std::uint64_t>(deadline_ns, now_ns() + key_retry_ms_max * 1'000'000ull);
        while (!done && now_ns() < key_deadline_ns) {
            kv_history_op op;
            op.id = next_id_++;
            op.client = final_reader;
            op.key = key;
            op.kind = kv_kind::get;
            op.invoke_ns = now_ns();
            const auto response = http.request("GET", "/" + key);
            op.complete_ns = now_ns();
            op.result_outcome = outcome::unknown;
            if (response && response->status == 200 && response->complete) {
                if (auto name = verify_value(response->body)) {
                    op.result_outcome = outcome::ok;
                    op.result_value = *name;
                    out[key] = *name;
                } else {
                    problems.push_back("GET " + key + " returned bytes no PUT wrote");
                    out[key] = "?";
                }
                done = true;
            } else if (response && response->status == 404) {
                op.result_outcome = outcome::ok;
                op.status = kv_status::not_found;
                out[key] = "";
                done = true;
            } else {
                last = response ? "HTTP " + std::to_string(response->status) +
                                      (response->complete ? " " + response->body : " cut short")
                                : http.last_error();
                sleep_ms(250);
            }
            if (record) r.history.push_back(std::move(op));
        }
        if (done) {
            failed_in_a_row = 0;
        } else {
            ++failed_in_a_row;
            problems.push_back("GET " + key + " failed for " + std::to_string(key_retry_ms_max / 1000) +
                               " s or until the deadline, last: " + last);
        }
    }
    if (record) merge(r);
    return out;
}

list_record workload::list(const std::string& prefix) {
    http_client http(options_.host, options_.port, options_.timeout_ms);
    list_record l;
    l.prefix = prefix;
    l.invoke_ns = now_ns();
    const auto response = http.request("GET", "/?prefix=" + prefix + "&max-keys=1000");
    l.complete_ns = now_ns();
    if (response && response->status == 200 && response->complete) {
        l.ok = true;
        l.entries = parse_listing(response->body, l.truncated);
    }
    return l;
}

std::vector<std::string> workload::recent_chunk_names(std::uint64_t pick) {
    recent_put p{};
    {
        std::lock_guard lock(recent_mutex_);
        if (recent_chunked_.empty()) return {};
        p = recent_chunked_[pick % recent_chunked_.size()];
    }
    const std::string value = make_value(p.client, p.sequence, p.size);
    std::vector<std::string> names;
    for (std::size_t at = 0; at < value.size(); at += options_.chunk_size) {
        const std::size_t length = std::min<std::size_t>(options_.chunk_size, value.size() - at);
        names.push_back(toastyfs::to_hex(
            platform::openssl_crypto::sha256({reinterpret_cast<const std::uint8_t*>(value.data()) + at, length})));
    }
    return names;
}

std::vector<kv_history_op> workload::history() const {
    std::lock_guard lock(mutex_);
    return history_;
}

workload_counters workload::counters() const {
    std::lock_guard lock(mutex_);
    return counters_;
}

std::vector<truncated_get> workload::truncated_gets() const {
    std::lock_guard lock(mutex_);
    return truncated_;
}

std::vector<std::string> workload::corrupt_reads() const {
    std::lock_guard lock(mutex_);
    return corrupt_;
}

}  // namespace chaos
