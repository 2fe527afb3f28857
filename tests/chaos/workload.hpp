#pragma once

// The nemesis workload: client threads issuing PUT (some create-only), GET, DELETE and LIST over
// a small key space through the proxy, each with its own keep-alive connection. Every PUT writes
// a unique value whose first line names its writer (client, sequence) and whose remaining bytes
// follow from that name, so any GET can be verified byte for byte and mapped back to its write.
// Every operation is recorded with its invoke/complete times and outcome for the checkers.
//
// Keys come in generations (Jepsen's independent keys): every generation_ms the clients move to
// a fresh set of `keys` keys. Faults leave writes with unknown outcomes, and the linearizability
// search grows exponentially with the unknown writes on one key; rotating keys bounds them.
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "sim/linearizability.hpp"

namespace chaos {

class http_client;

struct workload_options {
    std::string host;
    std::uint16_t port = 0;
    std::uint32_t clients = 6;
    std::uint32_t keys = 64;  // per generation
    std::uint64_t generation_ms = 15'000;
    std::uint64_t seed = 1;
    std::uint64_t timeout_ms = 15'000;
    std::uint64_t think_ms_max = 5;    // random pause between a client's operations
    std::uint64_t chunk_size = 16384;  // the proxy's --chunk-size, to name a value's chunks
};

struct list_entry {
    std::string key;
    std::uint64_t size = 0;
    std::string etag;  // hex MD5, quotes removed
};

struct list_record {
    std::uint64_t invoke_ns = 0;
    std::uint64_t complete_ns = 0;
    std::string prefix;
    bool ok = false;
    bool truncated = false;
    std::vector<list_entry> entries;
};

/// What a PUT wrote, by its value name ("client.sequence").
struct written_value {
    std::string key;
    std::uint64_t size = 0;
    std::string md5;
};

/// A GET whose 200 head arrived but whose body was cut short: the proxy lost the chunks while
/// streaming. Allowed only if the version was overwritten or deleted meanwhile (an upload lease
/// after which its chunks may be collected); checks.hpp decides.
struct truncated_get {
    std::string key;
    std::string etag;  // hex MD5 of the version being read
    std::uint64_t invoke_ns = 0;
    std::uint64_t complete_ns = 0;
};

struct workload_counters {
    std::uint64_t ops = 0;
    std::uint64_t ok = 0;
    std::uint64_t unknown = 0;
    std::uint64_t failed = 0;         // definite failures (4xx other than expected ones)
    std::uint64_t by_status[6] = {};  // 1xx..5xx buckets, [0] = no answer
};

/// Value bytes: "tfc <client> <sequence> <size>\n" then bytes derived from (client, sequence).
std::string make_value(std::uint32_t client, std::uint64_t sequence, std::size_t size);
/// The value name of a GET body if it is exactly a value make_value could have produced.
std::optional<std::string> verify_value(std::string_view body);
std::string key_name(std::uint32_t generation, std::uint32_t index);

class workload {
public:
    explicit workload(workload_options options) : options_(std::move(options)) {}
    ~workload() { stop(); }

    void start();
    void stop();  // signals and joins

    /// After stop(): one GET of every key used, sequentially, each retried until it is answered
    /// (200 with exactly a written value, or 404), for 60 s at most and not past `deadline_ns`.
    /// Returns key -> value name ("" for 404); what failed goes to `problems`. With `record`, the
    /// GETs join the history (the final reads the linearizability checker sees).
    std::map<std::string, std::string> read_all(bool record, std::uint64_t deadline_ns,
                                                std::vector<std::string>& problems);
    static constexpr std::uint32_t final_reader = 1000;  // client id of read_all's GETs
    /// One LIST of `prefix` (up to 1000 keys), not recorded in lists().
    list_record list(const std::string& prefix);
    std::uint32_t generations() const { return generations_.load(); }

    // Results, valid after stop().
    std::vector<sim::kv_history_op> history() const;
    const std::vector<list_record>& lists() const { return lists_; }
    const std::map<std::string, written_value>& written() const { return written_; }
    workload_counters counters() const;
    /// Operations completed so far (any outcome), readable while the clients run.
    std::uint64_t completed() const { return completed_.load(std::memory_order_relaxed); }
    std::uint64_t writes_ok() const { return writes_ok_.load(std::memory_order_relaxed); }
    /// When the latest-issued write that took effect (PUT 200, DELETE 204) was issued; 0: none yet.
    std::uint64_t last_effective_write_issued_ns() const { return last_effective_write_issued_ns_.load(); }
    std::vector<std::string> corrupt_reads() const;
    std::vector<truncated_get> truncated_gets() const;
    /// Every key used so far, in order.
    std::vector<std::string> keys_used() const;
    /// SHA-256 names (hex) of the chunks of one recently acknowledged multi-chunk PUT, picked at
    /// random: the nemesis corrupts live data rather than garbage awaiting collection.
    std::vector<std::string> recent_chunk_names(std::uint64_t pick);

private:
    struct client_result {
        std::vector<sim::kv_history_op> history;
        std::vector<list_record> lists;
        std::map<std::string, written_value> written;
        std::vector<std::string> corrupt;
        std::vector<truncated_get> truncated;
        workload_counters counters;
    };
    void merge(client_result& result);
    struct recent_put {
        std::uint32_t client;
        std::uint64_t sequence;
        std::size_t size;
    };

    void run_client(std::uint32_t client);
    /// The generation of keys now in use (generations() follows it).
    std::uint32_t current_generation();
    // One operation each: op has its id, client and key; they fill in the rest.
    void put(http_client& http, std::mt19937_64& random, std::uint64_t sequence, sim::kv_history_op& op,
             client_result& r);
    void get(http_client& http, sim::kv_history_op& op, client_result& r);
    void remove(http_client& http, sim::kv_history_op& op, client_result& r);
    /// A LIST of the generation of `key` or of ten keys around it, recorded in lists().
    void list_near(http_client& http, std::mt19937_64& random, const std::string& key, client_result& r);
    /// Counts a completed PUT, GET or DELETE and adds it to the history.
    void record(sim::kv_history_op&& op, client_result& r);
    void remember_chunked(const recent_put& put);

    workload_options options_;
    std::atomic<bool> stop_{false};
    std::vector<std::thread> threads_;
    mutable std::mutex mutex_;
    std::vector<sim::kv_history_op> history_;
    std::vector<list_record> lists_;
    std::map<std::string, written_value> written_;
    std::vector<std::string> corrupt_;
    std::vector<truncated_get> truncated_;
    workload_counters counters_;
    std::atomic<std::uint64_t> next_id_{1};
    std::uint64_t start_ns_ = 0;
    std::atomic<std::uint32_t> generations_{1};
    std::atomic<std::uint64_t> completed_{0};
    std::atomic<std::uint64_t> writes_ok_{0};
    std::atomic<std::uint64_t> last_effective_write_issued_ns_{0};
    std::mutex recent_mutex_;
    std::vector<recent_put> recent_chunked_;  // ring of the last recent_max
    std::size_t recent_next_ = 0;
    static constexpr std::size_t recent_max = 64;
};

}  // namespace chaos
