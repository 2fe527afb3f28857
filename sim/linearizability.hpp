#pragma once

// Linearizability checker for histories of a key-value store.
//
// Linearizability is local (P-compositional), so the history is split by key
// and each key is checked on its own against a sequential register model:
// first by a fast oracle that trusts the order the system claims it executed
// acknowledged ops in (`position`), and, when that order does not explain the
// history, by a Wing-Gong/Lowe (WGL) search with memoization.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace sim {

// put_if_absent: create only (absent -> value, ok; present -> mismatch, unchanged).
// del_if: conditional delete (absent -> not_found; == expected -> absent, ok; else mismatch).
enum class kv_kind : std::uint8_t { put, get, del, cas, put_if_absent, del_if };
enum class kv_status : std::uint8_t { ok, not_found, mismatch };

// ok: the client got a reply (the result fields are valid).
// fail: definitely NOT executed (e.g. rejected before being sent) -> never
//   linearized.
// unknown: may or may not have taken effect, at any point after invoke
//   (complete_ns is ignored and treated as +infinity).
enum class outcome : std::uint8_t { ok, fail, unknown };

struct kv_history_op {
    std::uint64_t id = 0;      // unique per history, for messages
    std::uint32_t client = 0;  // for messages only
    std::string key;
    kv_kind kind = kv_kind::get;
    std::string value;     // put/cas/put_if_absent: the new value
    std::string expected;  // cas/del_if: the expected current value
    std::uint64_t invoke_ns = 0;
    std::uint64_t complete_ns = 0;  // valid when result_outcome == ok
    outcome result_outcome = outcome::unknown;
    kv_status status = kv_status::ok;  // when ok
    std::string result_value;          // get with status ok: the value read
    // The order the system claims it executed in (strictly increasing in
    // execution order, unique); 0 = none. Required when ok. For an unknown op it
    // is optional: set it when the system knows the op executed (the simulator
    // reads it from the committed log), and the oracle then places it there.
    std::uint64_t position = 0;
};

struct linearizability_options {
    std::uint64_t search_steps_max = 2'000'000;  // per key
};

struct linearizability_report {
    bool linearizable = true;
    bool undecided = false;  // a key's search hit search_steps_max
    // For failures: which key, which ops (ids, kinds, times, results), why.
    std::string explanation;
    std::uint64_t keys_checked = 0;
    std::uint64_t keys_by_oracle = 0;
    std::uint64_t keys_by_search = 0;
    std::uint64_t search_steps = 0;
};

// Checks every key (in sorted key order). `linearizable` is false when any
// key is violated or undecided; the explanation describes the first violated
// key, or, if no key is definitely violated, the first undecided key.
linearizability_report check_linearizable(std::span<const kv_history_op> history,
                                          const linearizability_options& options = {});

std::string_view to_string(kv_kind kind);
std::string_view to_string(kv_status status);
std::string_view to_string(outcome result_outcome);

// One-line human-readable form of an op, as used in explanations.
std::string describe_op(const kv_history_op& op);

}  // namespace sim
