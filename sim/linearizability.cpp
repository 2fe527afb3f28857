#include "sim/linearizability.hpp"

#include <algorithm>
#include <cstddef>
#include <limits>
#include <map>
#include <optional>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace sim {
namespace {

constexpr std::size_t quoted_chars_max = 64;
constexpr std::size_t explained_ops_max = 12;
constexpr std::size_t prefix_tail_max = 6;
constexpr std::size_t npos = std::numeric_limits<std::size_t>::max();
constexpr std::int32_t absent = -1;  // model state / value id for "no value"

using op_list = std::vector<const kv_history_op*>;

std::string quoted(std::string_view text) {
    // Values can be large; explanations only need enough to tell them apart.
    if (text.size() <= quoted_chars_max) return "\"" + std::string(text) + "\"";
    return "\"" + std::string(text.substr(0, quoted_chars_max)) + "\"...";
}

std::uint64_t mix64(std::uint64_t x) {
    // splitmix64 finalizer: cheap, deterministic, well distributed.
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30U)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27U)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31U);
}

// Interns one key's strings so model states are small integers and a model
// step compares integers, not strings.
class value_table {
public:
    std::int32_t intern(std::string_view text) {
        auto [it, inserted] = ids_.try_emplace(text, static_cast<std::int32_t>(names_.size()));
        if (inserted) names_.push_back(text);
        return it->second;
    }
    std::string name(std::int32_t id) const {
        return id == absent ? std::string("<absent>") : quoted(names_[static_cast<std::size_t>(id)]);
    }

private:
    std::unordered_map<std::string_view, std::int32_t> ids_;  // lookups only
    std::vector<std::string_view> names_;
};

struct model_op {
    const kv_history_op* src = nullptr;
    bool acknowledged = false;       // outcome ok: must be linearized, result checked
    std::int32_t value = absent;     // put/cas: new value
    std::int32_t expected = absent;  // cas
    std::int32_t read = absent;      // get with status ok: value read
};

struct step_result {
    std::int32_t next = absent;
    kv_status status = kv_status::ok;
    std::int32_t read = absent;
};

step_result apply(std::int32_t state, const model_op& op) {
    switch (op.src->kind) {
        case kv_kind::put: return {op.value, kv_status::ok, absent};
        case kv_kind::get: return {state, state == absent ? kv_status::not_found : kv_status::ok, state};
        case kv_kind::del: return {absent, state == absent ? kv_status::not_found : kv_status::ok, absent};
        case kv_kind::cas:
            if (state != absent && state == op.expected) {
                return {op.value, kv_status::ok, absent};
            }
            return {state, kv_status::mismatch, absent};
        case kv_kind::put_if_absent:
            if (state == absent) return {op.value, kv_status::ok, absent};
            return {state, kv_status::mismatch, absent};
        case kv_kind::del_if:
            if (state == absent) return {absent, kv_status::not_found, absent};
            if (state == op.expected) return {absent, kv_status::ok, absent};
            return {state, kv_status::mismatch, absent};
    }
    return {state, kv_status::ok, absent};
}

bool matches(const model_op& op, const step_result& result) {
    if (!op.acknowledged) return true;  // an unknown op's result is not known
    if (result.status != op.src->status) return false;
    return op.src->kind != kv_kind::get || result.status != kv_status::ok || result.read == op.read;
}

std::string describe_result(kv_kind kind, kv_status status, std::int32_t read, const value_table& values) {
    std::string text = "status=" + std::string(to_string(status));
    if (kind == kv_kind::get && status == kv_status::ok) {
        text += " read=" + values.name(read);
    }
    return text;
}

struct key_model {
    std::vector<model_op> ops;
    value_table values;
    std::size_t acknowledged = 0;
};

key_model build_model(const op_list& key_ops) {
    key_model model;
    for (const kv_history_op* op : key_ops) {
        // fail ops never happen; an unknown get neither constrains nor changes
        // the state, so both are irrelevant to the search.
        if (op->result_outcome == outcome::fail) continue;
        if (op->result_outcome == outcome::unknown && op->kind == kv_kind::get) {
            continue;
        }
        model_op m;
        m.src = op;
        m.acknowledged = op->result_outcome == outcome::ok;
        if (op->kind == kv_kind::put || op->kind == kv_kind::cas || op->kind == kv_kind::put_if_absent) {
            m.value = model.values.intern(op->value);
        }
        if (op->kind == kv_kind::cas || op->kind == kv_kind::del_if) {
            m.expected = model.values.intern(op->expected);
        }
        if (m.acknowledged && op->kind == kv_kind::get && op->status == kv_status::ok) {
            m.read = model.values.intern(op->result_value);
        }
        if (m.acknowledged) ++model.acknowledged;
        model.ops.push_back(m);
    }
    return model;
}

// ---------------------------------------------------------------------------
// Fast oracle: trust the claimed execution order and verify it.

std::string op_ref(const kv_history_op& op) {
    return "#" + std::to_string(op.id) + " (" + std::string(to_string(op.kind)) + ", client " +
           std::to_string(op.client) + ")";
}

// Among acknowledged ops sorted by position, a real-time violation exists iff
// some op completed before an op with a smaller position was invoked; the
// strongest witness for each op is the largest invoke seen so far.
std::optional<std::string> check_position_order(const std::vector<const model_op*>& by_position) {
    const kv_history_op* latest_invoked = nullptr;
    const kv_history_op* previous = nullptr;
    for (const model_op* m : by_position) {
        const kv_history_op& op = *m->src;
        // Queries answered from one state share its position; reads commute, so only a tie
        // involving a write is an error.
        if (previous != nullptr && previous->position == op.position &&
            !(previous->kind == kv_kind::get && op.kind == kv_kind::get)) {
            return "ops " + op_ref(*previous) + " and " + op_ref(op) + " share position " + std::to_string(op.position);
        }
        // An unknown op never completed, so nothing is required to follow it.
        const std::uint64_t complete_ns = m->acknowledged ? op.complete_ns : UINT64_MAX;
        if (latest_invoked != nullptr && complete_ns < latest_invoked->invoke_ns) {
            return "op " + op_ref(op) + " at position " + std::to_string(op.position) + " completed at " +
                   std::to_string(op.complete_ns) + " ns, before op " + op_ref(*latest_invoked) +
                   " at earlier position " + std::to_string(latest_invoked->position) + " was invoked at " +
                   std::to_string(latest_invoked->invoke_ns) + " ns";
        }
        if (latest_invoked == nullptr || op.invoke_ns > latest_invoked->invoke_ns) {
            latest_invoked = &op;
        }
        previous = &op;
    }
    return std::nullopt;
}

std::optional<std::string> replay_in_position_order(const std::vector<const model_op*>& by_position,
                                                    const value_table& values) {
    std::int32_t state = absent;
    for (const model_op* m : by_position) {
        const step_result result = apply(state, *m);
        if (!matches(*m, result)) {
            const kv_history_op& op = *m->src;
            return "replaying acknowledged ops in position order, op " + op_ref(op) + " at position " +
                   std::to_string(op.position) + " returned " + describe_result(op.kind, op.status, m->read, values) +
                   " but the model gives " + describe_result(op.kind, result.status, result.read, values) + " (state " +
                   values.name(state) + ")";
        }
        state = result.next;
    }
    return std::nullopt;
}

// Returns why the claimed order does not explain the key, or nullopt when it
// does: then the acknowledged ops, and the unknown ops the system says it
// executed, in position order are a linearization (other unknown ops left out,
// which they may be).
std::optional<std::string> oracle_check(const key_model& model) {
    std::vector<const model_op*> by_position;
    for (const model_op& m : model.ops) {
        if (!m.acknowledged && m.src->position == 0) continue;
        if (m.src->position == 0) {
            return "op " + op_ref(*m.src) + " has no position";
        }
        by_position.push_back(&m);
    }
    std::sort(by_position.begin(), by_position.end(), [](const model_op* a, const model_op* b) {
        return std::tie(a->src->position, a->src->id) < std::tie(b->src->position, b->src->id);
    });
    if (auto reason = check_position_order(by_position)) return reason;
    return replay_in_position_order(by_position, model.values);
}

// ---------------------------------------------------------------------------
// WGL search.

// Visited configurations (set of linearized ops, model state). Sets live back
// to back in one arena, so a configuration costs a few words, not a vector.
class memo_table {
public:
    explicit memo_table(std::size_t words) : words_(words), index_(0, hasher{this}, equal{this}) {}
    memo_table(const memo_table&) = delete;
    memo_table& operator=(const memo_table&) = delete;

    // Records the configuration; false when it had been seen already.
    bool insert(const std::vector<std::uint64_t>& set, std::uint64_t hash, std::int32_t state) {
        arena_.insert(arena_.end(), set.begin(), set.end());
        states_.push_back(state);
        hashes_.push_back(hash);
        if (index_.insert(states_.size() - 1).second) return true;
        arena_.resize(arena_.size() - words_);
        states_.pop_back();
        hashes_.pop_back();
        return false;
    }

private:
    struct hasher {
        const memo_table* table;
        std::size_t operator()(std::size_t i) const noexcept { return static_cast<std::size_t>(table->hashes_[i]); }
    };
    struct equal {
        const memo_table* table;
        bool operator()(std::size_t a, std::size_t b) const noexcept {
            const memo_table& t = *table;
            if (t.hashes_[a] != t.hashes_[b] || t.states_[a] != t.states_[b]) {
                return false;
            }
            const auto first_a = t.arena_.begin() + static_cast<std::ptrdiff_t>(a * t.words_);
            const auto first_b = t.arena_.begin() + static_cast<std::ptrdiff_t>(b * t.words_);
            return std::equal(first_a, first_a + static_cast<std::ptrdiff_t>(t.words_), first_b);
        }
    };

    std::size_t words_;
    std::vector<std::uint64_t> arena_;
    std::vector<std::int32_t> states_;
    std::vector<std::uint64_t> hashes_;
    std::unordered_set<std::size_t, hasher, equal> index_;  // lookups only
};

enum class verdict : std::uint8_t { linearizable, violation, undecided };

struct search_result {
    verdict result = verdict::linearizable;
    std::uint64_t steps = 0;
    // The deepest dead end: the acknowledged op whose completion was reached
    // without it being linearized, with the state and prefix at that point.
    std::size_t blocked_op = npos;
    std::int32_t blocked_state = absent;
    std::size_t prefix_acknowledged = 0;
    std::vector<std::size_t> prefix_tail;  // last linearized ops, in order
};

// Lowe's formulation of Wing & Gong: a doubly linked list of call and return
// events in time order; linearizing an op lifts both its events out, and
// reaching the return of an op not yet linearized forces a backtrack.
class wgl_search {
public:
    wgl_search(const std::vector<model_op>& ops, std::uint64_t steps_max)
        : ops_(ops),
          steps_max_(steps_max),
          set_(std::max<std::size_t>(1, (ops.size() + 63) / 64), 0),
          memo_(set_.size()) {
        for (const model_op& m : ops_) acknowledged_total_ += m.acknowledged ? 1 : 0;
        build_list();
    }
    wgl_search(const wgl_search&) = delete;
    wgl_search& operator=(const wgl_search&) = delete;

    search_result run();

private:
    static constexpr std::size_t head = 0;
    static constexpr std::size_t tail = 1;
    struct node {
        std::size_t op = npos;
        bool is_call = false;
        std::size_t prev = head;
        std::size_t next = tail;
    };
    struct frame {
        std::size_t op;
        std::int32_t state_before;
    };

    void build_list();
    void lift(std::size_t op);
    void unlift(std::size_t op);
    void flip(std::size_t op);
    bool try_linearize(std::size_t op);
    std::size_t backtrack();
    void note_dead_end(std::size_t op);

    const std::vector<model_op>& ops_;
    std::uint64_t steps_max_;
    std::vector<node> nodes_;
    std::vector<std::size_t> call_node_;
    std::vector<std::size_t> return_node_;
    std::vector<std::uint64_t> set_;  // bit per op: linearized
    std::uint64_t set_hash_ = 0;      // xor of mix64(op) over the set
    memo_table memo_;
    std::vector<frame> stack_;
    std::int32_t state_ = absent;
    std::size_t acknowledged_total_ = 0;
    std::size_t acknowledged_done_ = 0;
    search_result result_;
};

void wgl_search::build_list() {
    struct event {
        std::uint64_t time;
        std::uint8_t order;  // calls before returns at equal times: they overlap
        std::size_t op;
    };
    std::vector<event> events;
    for (std::size_t i = 0; i < ops_.size(); ++i) {
        events.push_back({ops_[i].src->invoke_ns, 0, i});
        // Unknown ops never return: they stay candidates to the end, and being
        // optional they need no return event to force them in.
        if (ops_[i].acknowledged) events.push_back({ops_[i].src->complete_ns, 1, i});
    }
    std::sort(events.begin(), events.end(), [](const event& a, const event& b) {
        return std::tie(a.time, a.order, a.op) < std::tie(b.time, b.order, b.op);
    });
    nodes_.assign(events.size() + 2, node{});
    call_node_.assign(ops_.size(), npos);
    return_node_.assign(ops_.size(), npos);
    std::size_t prev = head;
    for (std::size_t k = 0; k < events.size(); ++k) {
        const std::size_t index = k + 2;
        nodes_[index] = node{events[k].op, events[k].order == 0, prev, tail};
        nodes_[prev].next = index;
        (events[k].order == 0 ? call_node_ : return_node_)[events[k].op] = index;
        prev = index;
    }
    nodes_[prev].next = tail;
    nodes_[tail].prev = prev;
}

void wgl_search::lift(std::size_t op) {
    for (const std::size_t n : {call_node_[op], return_node_[op]}) {
        if (n == npos) continue;
        nodes_[nodes_[n].prev].next = nodes_[n].next;
        nodes_[nodes_[n].next].prev = nodes_[n].prev;
    }
}

void wgl_search::unlift(std::size_t op) {
    // Exact reverse of lift (dancing links): return first, then call.
    for (const std::size_t n : {return_node_[op], call_node_[op]}) {
        if (n == npos) continue;
        nodes_[nodes_[n].prev].next = n;
        nodes_[nodes_[n].next].prev = n;
    }
}

void wgl_search::flip(std::size_t op) {
    set_[op / 64] ^= std::uint64_t{1} << (op % 64);
    set_hash_ ^= mix64(op);
}

bool wgl_search::try_linearize(std::size_t op) {
    const model_op& m = ops_[op];
    const step_result result = apply(state_, m);
    if (!matches(m, result)) return false;
    // An unknown op that changes nothing is no better than leaving it out, and
    // leaving it out keeps it available for later: prune.
    if (!m.acknowledged && result.next == state_) return false;
    flip(op);
    const std::uint64_t hash = mix64(set_hash_ ^ mix64(static_cast<std::uint64_t>(result.next) + 7));
    if (!memo_.insert(set_, hash, result.next)) {
        flip(op);  // this configuration was already explored and failed
        return false;
    }
    stack_.push_back({op, state_});
    state_ = result.next;
    lift(op);
    acknowledged_done_ += m.acknowledged ? 1 : 0;
    return true;
}

std::size_t wgl_search::backtrack() {
    const frame top = stack_.back();
    stack_.pop_back();
    state_ = top.state_before;
    flip(top.op);
    unlift(top.op);
    acknowledged_done_ -= ops_[top.op].acknowledged ? 1 : 0;
    return nodes_[call_node_[top.op]].next;  // try the next candidate instead
}

void wgl_search::note_dead_end(std::size_t op) {
    if (result_.blocked_op != npos && acknowledged_done_ <= result_.prefix_acknowledged) {
        return;  // keep the first of the deepest dead ends: deterministic
    }
    result_.blocked_op = op;
    result_.blocked_state = state_;
    result_.prefix_acknowledged = acknowledged_done_;
    result_.prefix_tail.clear();
    const std::size_t first = stack_.size() > prefix_tail_max ? stack_.size() - prefix_tail_max : 0;
    for (std::size_t i = first; i < stack_.size(); ++i) {
        result_.prefix_tail.push_back(stack_[i].op);
    }
}

search_result wgl_search::run() {
    std::size_t cur = nodes_[head].next;
    while (acknowledged_done_ < acknowledged_total_) {
        // Every event before `cur` is a call, so a return here belongs to an op
        // that is not linearized yet; reaching tail is impossible but safe.
        if (cur == tail || !nodes_[cur].is_call) {
            if (cur != tail) note_dead_end(nodes_[cur].op);
            if (stack_.empty()) {
                result_.result = verdict::violation;
                return result_;
            }
            cur = backtrack();
            continue;
        }
        if (result_.steps >= steps_max_) {
            result_.result = verdict::undecided;
            return result_;
        }
        ++result_.steps;
        cur = try_linearize(nodes_[cur].op) ? nodes_[head].next : nodes_[cur].next;
    }
    result_.result = verdict::linearizable;
    return result_;
}

// ---------------------------------------------------------------------------
// Per-key verdicts and explanations.

enum class decided_by : std::uint8_t { input, oracle, search };

struct key_verdict {
    verdict result = verdict::linearizable;
    decided_by by = decided_by::oracle;
    std::uint64_t steps = 0;
    std::string explanation;
};

std::string describe_ops_around(const op_list& key_ops, const kv_history_op* center) {
    op_list sorted = key_ops;
    std::sort(sorted.begin(), sorted.end(), [](const kv_history_op* a, const kv_history_op* b) {
        return std::tie(a->invoke_ns, a->id) < std::tie(b->invoke_ns, b->id);
    });
    const auto found = std::find(sorted.begin(), sorted.end(), center);
    const std::size_t at = static_cast<std::size_t>(found - sorted.begin());
    std::size_t first = at > explained_ops_max / 2 ? at - explained_ops_max / 2 : 0;
    const std::size_t last = std::min(sorted.size(), first + explained_ops_max);
    first = last > explained_ops_max ? last - explained_ops_max : 0;
    std::string text = "\n  ops around the conflict (" + std::to_string(last - first) + " of " +
                       std::to_string(sorted.size()) + " on this key, by invoke time):";
    for (std::size_t i = first; i < last; ++i) {
        text += "\n    " + describe_op(*sorted[i]);
    }
    return text;
}

std::string describe_prefix(const key_model& model, const search_result& found) {
    std::string text =
        std::to_string(found.prefix_acknowledged) + " of " + std::to_string(model.acknowledged) + " acknowledged ops";
    if (found.prefix_tail.empty()) return text + " (nothing linearized)";
    text += ", ending with";
    for (const std::size_t op : found.prefix_tail) {
        text += " #" + std::to_string(model.ops[op].src->id);
    }
    return text;
}

std::string explain_violation(std::string_view key, const op_list& key_ops, const key_model& model,
                              const search_result& found, const std::string& oracle_reason) {
    std::string text = "key " + quoted(key) + ": not linearizable";
    if (found.blocked_op == npos) {  // unreachable by construction
        return text + " (no linearization found)\n  fast oracle: " + oracle_reason;
    }
    const model_op& blocked = model.ops[found.blocked_op];
    const kv_history_op& op = *blocked.src;
    const step_result there = apply(found.blocked_state, blocked);
    text += ": no valid order linearizes acknowledged op " + op_ref(op) + " before it completed at " +
            std::to_string(op.complete_ns) + " ns";
    text += "\n  deepest consistent prefix: " + describe_prefix(model, found) + "; model state there " +
            model.values.name(found.blocked_state) + ", where the op would give " +
            describe_result(op.kind, there.status, there.read, model.values) + " but it returned " +
            describe_result(op.kind, op.status, blocked.read, model.values);
    text += "\n  fast oracle: " + oracle_reason;
    return text + describe_ops_around(key_ops, &op);
}

std::optional<std::string> find_malformed(std::string_view key, const op_list& key_ops) {
    for (const kv_history_op* op : key_ops) {
        if (op->result_outcome == outcome::ok && op->complete_ns < op->invoke_ns) {
            return "key " + quoted(key) + ": malformed history: op " + op_ref(*op) +
                   " completed before it was invoked" + describe_ops_around(key_ops, op);
        }
    }
    return std::nullopt;
}

key_verdict check_key(std::string_view key, const op_list& key_ops, const linearizability_options& options) {
    if (auto malformed = find_malformed(key, key_ops)) {
        return {verdict::violation, decided_by::input, 0, std::move(*malformed)};
    }
    const key_model model = build_model(key_ops);
    const std::optional<std::string> oracle_reason = oracle_check(model);
    if (!oracle_reason) return {verdict::linearizable, decided_by::oracle, 0, {}};

    wgl_search search(model.ops, options.search_steps_max);
    const search_result found = search.run();
    key_verdict v{found.result, decided_by::search, found.steps, {}};
    if (found.result == verdict::undecided) {
        v.explanation = "key " + quoted(key) +
                        ": undecided: the search hit search_steps_max=" + std::to_string(options.search_steps_max) +
                        " before deciding\n  fast oracle: " + *oracle_reason;
    } else if (found.result == verdict::violation) {
        v.explanation = explain_violation(key, key_ops, model, found, *oracle_reason);
    }
    return v;
}

}  // namespace

std::string_view to_string(kv_kind kind) {
    switch (kind) {
        case kv_kind::put: return "put";
        case kv_kind::get: return "get";
        case kv_kind::del: return "del";
        case kv_kind::cas: return "cas";
        case kv_kind::put_if_absent: return "put_if_absent";
        case kv_kind::del_if: return "del_if";
    }
    return "?";
}

std::string_view to_string(kv_status status) {
    switch (status) {
        case kv_status::ok: return "ok";
        case kv_status::not_found: return "not_found";
        case kv_status::mismatch: return "mismatch";
    }
    return "?";
}

std::string_view to_string(outcome result_outcome) {
    switch (result_outcome) {
        case outcome::ok: return "ok";
        case outcome::fail: return "fail";
        case outcome::unknown: return "unknown";
    }
    return "?";
}

std::string describe_op(const kv_history_op& op) {
    std::string text =
        "#" + std::to_string(op.id) + " client " + std::to_string(op.client) + " " + std::string(to_string(op.kind));
    if (op.kind == kv_kind::cas || op.kind == kv_kind::del_if) {
        text += " expected=" + quoted(op.expected);
    }
    if (op.kind == kv_kind::put || op.kind == kv_kind::cas || op.kind == kv_kind::put_if_absent) {
        text += " value=" + quoted(op.value);
    }
    const bool ok = op.result_outcome == outcome::ok;
    text += " [" + std::to_string(op.invoke_ns) + ".." + (ok ? std::to_string(op.complete_ns) : std::string("?")) +
            "] " + std::string(to_string(op.result_outcome));
    if (!ok) return text;
    text += " -> " + std::string(to_string(op.status));
    if (op.kind == kv_kind::get && op.status == kv_status::ok) {
        text += " read=" + quoted(op.result_value);
    }
    if (op.position != 0) text += " pos=" + std::to_string(op.position);
    return text;
}

linearizability_report check_linearizable(std::span<const kv_history_op> history,
                                          const linearizability_options& options) {
    std::map<std::string_view, op_list> by_key;  // sorted: deterministic order
    for (const kv_history_op& op : history) by_key[op.key].push_back(&op);

    linearizability_report report;
    std::string first_undecided;
    bool violated = false;
    for (const auto& [key, key_ops] : by_key) {
        ++report.keys_checked;
        key_verdict v = check_key(key, key_ops, options);
        report.keys_by_oracle += v.by == decided_by::oracle ? 1 : 0;
        report.keys_by_search += v.by == decided_by::search ? 1 : 0;
        report.search_steps += v.steps;
        if (v.result == verdict::linearizable) continue;
        report.linearizable = false;
        if (v.result == verdict::undecided) {
            report.undecided = true;
            if (first_undecided.empty()) first_undecided = std::move(v.explanation);
        } else if (!violated) {
            // A definite violation says more than "undecided", so it wins.
            violated = true;
            report.explanation = std::move(v.explanation);
        }
    }
    if (!violated && report.undecided) report.explanation = std::move(first_undecided);
    return report;
}

}  // namespace sim
