// Included first: proves the header is self-contained.
#include "sim/linearizability.hpp"

#define BOOST_TEST_MODULE linearizability
#ifndef BOOST_TEST_DYN_LINK  // meson's boost dependency may define it already
#define BOOST_TEST_DYN_LINK
#endif
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace {

using sim::kv_history_op;
using sim::kv_kind;
using sim::kv_status;
using sim::outcome;

struct span_ns {
    std::uint64_t invoke = 0;
    std::uint64_t complete = 0;
    std::uint64_t position = 0;
};

// Hand-written histories; ids follow insertion order.
class history_builder {
public:
    history_builder& put(const std::string& key, const std::string& value, span_ns at) {
        kv_history_op op = acknowledged(key, kv_kind::put, at, kv_status::ok);
        op.value = value;
        return add(std::move(op));
    }
    // read == nullopt: the get returned not_found.
    history_builder& get(const std::string& key, const std::optional<std::string>& read, span_ns at) {
        kv_history_op op = acknowledged(key, kv_kind::get, at, read ? kv_status::ok : kv_status::not_found);
        op.result_value = read.value_or("");
        return add(std::move(op));
    }
    history_builder& del(const std::string& key, kv_status status, span_ns at) {
        return add(acknowledged(key, kv_kind::del, at, status));
    }
    history_builder& cas(const std::string& key, const std::string& expected, const std::string& value,
                         kv_status status, span_ns at) {
        kv_history_op op = acknowledged(key, kv_kind::cas, at, status);
        op.expected = expected;
        op.value = value;
        return add(std::move(op));
    }
    history_builder& put_with(outcome result, const std::string& key, const std::string& value, std::uint64_t invoke) {
        kv_history_op op;
        op.key = key;
        op.kind = kv_kind::put;
        op.value = value;
        op.invoke_ns = invoke;
        op.result_outcome = result;
        return add(std::move(op));
    }
    history_builder& client(std::uint32_t id) {
        ops_.back().client = id;
        return *this;
    }
    const std::vector<kv_history_op>& ops() const { return ops_; }

private:
    static kv_history_op acknowledged(const std::string& key, kv_kind kind, span_ns at, kv_status status) {
        kv_history_op op;
        op.key = key;
        op.kind = kind;
        op.invoke_ns = at.invoke;
        op.complete_ns = at.complete;
        op.position = at.position;
        op.result_outcome = outcome::ok;
        op.status = status;
        return op;
    }
    history_builder& add(kv_history_op op) {
        op.id = ops_.size() + 1;
        ops_.push_back(std::move(op));
        return *this;
    }
    std::vector<kv_history_op> ops_;
};

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// Independent reference model on real strings, used to generate histories
// and by the brute-force checker.
struct reference_step {
    kv_status status = kv_status::ok;
    std::optional<std::string> read;
};

reference_step apply_reference(std::optional<std::string>& state, const kv_history_op& op) {
    switch (op.kind) {
        case kv_kind::put: state = op.value; return {kv_status::ok, std::nullopt};
        case kv_kind::get: return {state ? kv_status::ok : kv_status::not_found, state};
        case kv_kind::del: {
            const bool present = state.has_value();
            state.reset();
            return {present ? kv_status::ok : kv_status::not_found, std::nullopt};
        }
        case kv_kind::cas:
            if (state && *state == op.expected) {
                state = op.value;
                return {kv_status::ok, std::nullopt};
            }
            return {kv_status::mismatch, std::nullopt};
        case kv_kind::put_if_absent:
            if (state) return {kv_status::mismatch, std::nullopt};
            state = op.value;
            return {kv_status::ok, std::nullopt};
        case kv_kind::del_if:
            if (!state) return {kv_status::not_found, std::nullopt};
            if (*state != op.expected) return {kv_status::mismatch, std::nullopt};
            state.reset();
            return {kv_status::ok, std::nullopt};
    }
    return {};
}

struct generator_config {
    std::uint64_t seed = 1;
    std::size_t op_count = 1000;
    std::size_t key_count = 10;
    std::uint32_t clients = 4;
    double unknown_fraction = 0.0;
    double fail_fraction = 0.0;
};

// Applies the ops that take effect, in effect order, filling in results and
// positions: the recorded history is then linearizable by construction.
void execute(std::vector<kv_history_op>& ops, const std::vector<std::optional<std::uint64_t>>& effect_at) {
    std::vector<std::size_t> order;
    for (std::size_t i = 0; i < ops.size(); ++i) {
        if (effect_at[i]) order.push_back(i);
    }
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
        return std::make_pair(*effect_at[a], a) < std::make_pair(*effect_at[b], b);
    });
    std::map<std::string, std::optional<std::string>> store;
    std::uint64_t position = 0;
    for (const std::size_t i : order) {
        kv_history_op& op = ops[i];
        const reference_step step = apply_reference(store[op.key], op);
        if (op.result_outcome != outcome::ok) continue;
        op.status = step.status;
        op.result_value = step.read.value_or("");
        op.position = ++position;
    }
}

// Simulates a real execution: each client runs one op at a time, and each op
// takes effect at one instant inside its interval (an unknown op maybe later,
// maybe never; a failed op never). Values are unique per write, so a read
// identifies the write it saw.
std::vector<kv_history_op> generate_history(const generator_config& config) {
    std::mt19937_64 rng(config.seed);
    auto uniform = [&rng](std::uint64_t lo, std::uint64_t hi) {
        return std::uniform_int_distribution<std::uint64_t>(lo, hi)(rng);
    };
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    std::vector<kv_history_op> ops;
    std::vector<std::optional<std::uint64_t>> effect_at;
    std::vector<std::uint64_t> client_time(config.clients, 0);
    std::map<std::string, std::string> last_written;  // cas expects this
    for (std::size_t i = 0; i < config.op_count; ++i) {
        kv_history_op op;
        op.id = i + 1;
        op.client = static_cast<std::uint32_t>(i % config.clients);
        // append, not "k" + to_string(): g++ 12 -O3 warns falsely (-Wrestrict).
        op.key = "k";
        op.key += std::to_string(uniform(0, config.key_count - 1));
        const std::uint64_t roll = uniform(0, 11);
        op.kind = roll < 4    ? kv_kind::get
                  : roll < 7  ? kv_kind::put
                  : roll < 8  ? kv_kind::del
                  : roll < 10 ? kv_kind::cas
                  : roll < 11 ? kv_kind::put_if_absent
                              : kv_kind::del_if;
        if (op.kind == kv_kind::put || op.kind == kv_kind::cas || op.kind == kv_kind::put_if_absent) {
            op.value = "v";
            op.value += std::to_string(op.id);
            op.expected = last_written.count(op.key) ? last_written[op.key] : "none";
            last_written[op.key] = op.value;
        } else if (op.kind == kv_kind::del_if) {
            op.expected = last_written.count(op.key) ? last_written[op.key] : "none";
        }
        std::uint64_t& now = client_time[op.client];
        op.invoke_ns = now + uniform(1, 20);
        std::optional<std::uint64_t> effect = op.invoke_ns + uniform(0, 60);
        op.complete_ns = *effect + uniform(0, 60);
        const double fate = unit(rng);
        op.result_outcome = outcome::ok;
        if (fate < config.fail_fraction) {
            op.result_outcome = outcome::fail;
            effect.reset();
        } else if (fate < config.fail_fraction + config.unknown_fraction) {
            op.result_outcome = outcome::unknown;
            if (uniform(0, 1) == 0)
                effect.reset();
            else
                *effect = op.invoke_ns + uniform(0, 400);  // may land very late
        }
        now = op.complete_ns;  // the client gives up or gets its reply here
        ops.push_back(std::move(op));
        effect_at.push_back(effect);
    }
    execute(ops, effect_at);
    return ops;
}

// Exhaustive definition-level check for tiny single-key histories.
class brute_force {
public:
    explicit brute_force(const std::vector<kv_history_op>& history) {
        for (const kv_history_op& op : history) {
            if (op.result_outcome != outcome::fail) ops_.push_back(&op);
        }
        placed_.assign(ops_.size(), false);
        for (const kv_history_op* op : ops_) {
            acknowledged_left_ += op->result_outcome == outcome::ok ? 1 : 0;
        }
    }
    bool linearizable() { return search(std::nullopt); }

private:
    bool ready(std::size_t i) const {
        for (std::size_t j = 0; j < ops_.size(); ++j) {
            if (!placed_[j] && ops_[j]->result_outcome == outcome::ok && ops_[j]->complete_ns < ops_[i]->invoke_ns) {
                return false;
            }
        }
        return true;
    }
    bool search(const std::optional<std::string>& state) {
        if (acknowledged_left_ == 0) return true;  // unknown ops may be left out
        for (std::size_t i = 0; i < ops_.size(); ++i) {
            if (placed_[i] || !ready(i)) continue;
            const kv_history_op& op = *ops_[i];
            std::optional<std::string> next = state;
            const reference_step step = apply_reference(next, op);
            const bool acked = op.result_outcome == outcome::ok;
            if (acked && (step.status != op.status ||
                          (op.kind == kv_kind::get && op.status == kv_status::ok && step.read != op.result_value))) {
                continue;
            }
            placed_[i] = true;
            acknowledged_left_ -= acked ? 1 : 0;
            const bool found = search(next);
            placed_[i] = false;
            acknowledged_left_ += acked ? 1 : 0;
            if (found) return true;
        }
        return false;
    }

    std::vector<const kv_history_op*> ops_;
    std::vector<bool> placed_;
    std::size_t acknowledged_left_ = 0;
};

// Makes a get return the value of a write that a later, non-overlapping put
// had overwritten before the get was invoked. Values are unique per write, so
// no linearization can explain it. Returns the mutated get's id (0: none).
std::uint64_t inject_stale_read(std::vector<kv_history_op>& ops) {
    for (kv_history_op& get : ops) {
        if (get.kind != kv_kind::get || get.result_outcome != outcome::ok || get.id < ops.size() / 2) {
            continue;
        }
        for (const kv_history_op& older : ops) {
            if (older.key != get.key || older.kind != kv_kind::put || older.result_outcome != outcome::ok ||
                older.value == get.result_value) {
                continue;
            }
            for (const kv_history_op& newer : ops) {
                if (newer.key == get.key && newer.kind == kv_kind::put && newer.result_outcome == outcome::ok &&
                    older.complete_ns < newer.invoke_ns && newer.complete_ns < get.invoke_ns) {
                    get.status = kv_status::ok;
                    get.result_value = older.value;
                    return get.id;
                }
            }
        }
    }
    return 0;
}

double check_ms(const std::vector<kv_history_op>& history, sim::linearizability_report& report) {
    const auto start = std::chrono::steady_clock::now();
    report = sim::check_linearizable(history);
    const auto stop = std::chrono::steady_clock::now();
    return std::chrono::duration<double, std::milli>(stop - start).count();
}

}  // namespace

BOOST_AUTO_TEST_CASE(empty_history_is_linearizable) {
    const auto report = sim::check_linearizable({});
    BOOST_TEST(report.linearizable);
    BOOST_TEST(!report.undecided);
    BOOST_TEST(report.keys_checked == 0U);
    BOOST_TEST(report.explanation.empty());
}

BOOST_AUTO_TEST_CASE(sequential_history_is_decided_by_oracle) {
    history_builder h;
    h.put("x", "a", {0, 10, 1})
        .get("x", "a", {20, 30, 2})
        .cas("x", "a", "b", kv_status::ok, {40, 50, 3})
        .cas("x", "a", "c", kv_status::mismatch, {60, 70, 4})
        .get("x", "b", {80, 90, 5})
        .del("x", kv_status::ok, {100, 110, 6})
        .get("x", std::nullopt, {120, 130, 7})
        .del("x", kv_status::not_found, {140, 150, 8})
        .cas("x", "b", "d", kv_status::mismatch, {160, 170, 9})
        .put("y", "z", {0, 10, 10})
        .get("y", "z", {20, 30, 11});
    const auto report = sim::check_linearizable(h.ops());
    BOOST_TEST(report.linearizable);
    BOOST_TEST(report.keys_checked == 2U);
    BOOST_TEST(report.keys_by_oracle == 2U);
    BOOST_TEST(report.keys_by_search == 0U);
}

BOOST_AUTO_TEST_CASE(stale_read_is_not_linearizable) {
    history_builder h;
    h.put("x", "a", {0, 10, 1}).put("x", "b", {20, 30, 2}).client(1).get("x", "a", {40, 50, 3}).client(2);
    const auto report = sim::check_linearizable(h.ops());
    BOOST_TEST(!report.linearizable);
    BOOST_TEST(!report.undecided);
    BOOST_TEST(report.keys_by_search == 1U);
    BOOST_TEST_MESSAGE(report.explanation);
    BOOST_TEST(contains(report.explanation, "key \"x\""));
    BOOST_TEST(contains(report.explanation, "#3 (get, client 2)"));
    BOOST_TEST(contains(report.explanation, "#2 client 1 put value=\"b\" [20..30] ok"));
    BOOST_TEST(contains(report.explanation, "read=\"a\""));
}

BOOST_AUTO_TEST_CASE(read_of_never_written_value_is_not_linearizable) {
    history_builder h;
    h.put("x", "a", {0, 10, 1}).get("x", "ghost", {5, 30, 2});
    const auto report = sim::check_linearizable(h.ops());
    BOOST_TEST(!report.linearizable);
    BOOST_TEST(contains(report.explanation, "\"ghost\""));
}

BOOST_AUTO_TEST_CASE(lost_acknowledged_write_is_not_linearizable) {
    history_builder h;
    h.put("x", "a", {0, 10, 1}).get("x", std::nullopt, {20, 30, 2});
    const auto report = sim::check_linearizable(h.ops());
    BOOST_TEST(!report.linearizable);
    BOOST_TEST(contains(report.explanation, "#2 (get"));
    BOOST_TEST(contains(report.explanation, "status=not_found"));
}

BOOST_AUTO_TEST_CASE(duplicate_cas_execution_is_not_linearizable) {
    // The cas was applied (value changed to b), then retried and reported the
    // retry's mismatch: no single execution explains both.
    history_builder h;
    h.put("x", "a", {0, 10, 1}).cas("x", "a", "b", kv_status::mismatch, {20, 40, 2}).get("x", "b", {50, 60, 3});
    const auto report = sim::check_linearizable(h.ops());
    BOOST_TEST(!report.linearizable);
    BOOST_TEST(!report.undecided);
}

BOOST_AUTO_TEST_CASE(read_of_unknown_write_needs_search_and_is_linearizable) {
    history_builder h;
    h.put("x", "a", {0, 10, 1}).put_with(outcome::unknown, "x", "b", 15).get("x", "b", {20, 30, 2});
    const auto report = sim::check_linearizable(h.ops());
    BOOST_TEST(report.linearizable);
    BOOST_TEST(report.keys_by_oracle == 0U);
    BOOST_TEST(report.keys_by_search == 1U);
    BOOST_TEST(report.search_steps > 0U);
}

BOOST_AUTO_TEST_CASE(read_of_unknown_write_before_its_invoke_is_not_linearizable) {
    history_builder h;
    h.put("x", "a", {0, 10, 1}).get("x", "b", {20, 30, 2}).put_with(outcome::unknown, "x", "b", 100);
    const auto report = sim::check_linearizable(h.ops());
    BOOST_TEST(!report.linearizable);
    BOOST_TEST(!report.undecided);
    BOOST_TEST(contains(report.explanation, "unknown"));
}

BOOST_AUTO_TEST_CASE(read_of_failed_write_is_not_linearizable) {
    history_builder h;
    h.put_with(outcome::fail, "x", "b", 0).get("x", "b", {20, 30, 1});
    const auto report = sim::check_linearizable(h.ops());
    BOOST_TEST(!report.linearizable);
}

BOOST_AUTO_TEST_CASE(unknown_write_may_be_left_out) {
    history_builder h;
    h.put("x", "a", {0, 10, 1})
        .put_with(outcome::unknown, "x", "b", 5)
        .get("x", "a", {20, 30, 2})
        .get("x", "a", {1000, 1010, 3});
    BOOST_TEST(sim::check_linearizable(h.ops()).linearizable);
}

BOOST_AUTO_TEST_CASE(positions_against_real_time_fall_back_to_search) {
    // put a completes before put b starts, yet claims the later position.
    history_builder good;
    good.put("x", "a", {0, 10, 2}).put("x", "b", {20, 30, 1}).get("x", "b", {40, 50, 3});
    const auto ok_report = sim::check_linearizable(good.ops());
    BOOST_TEST(ok_report.linearizable);
    BOOST_TEST(ok_report.keys_by_search == 1U);

    // Replay in position order (b, a, get a) succeeds, but real time forbids it.
    history_builder bad;
    bad.put("x", "a", {0, 10, 2}).put("x", "b", {20, 30, 1}).get("x", "a", {40, 50, 3});
    const auto bad_report = sim::check_linearizable(bad.ops());
    BOOST_TEST(!bad_report.linearizable);
    BOOST_TEST(bad_report.keys_by_search == 1U);
    BOOST_TEST(contains(bad_report.explanation, "at earlier position 1"));
}

BOOST_AUTO_TEST_CASE(equal_times_are_concurrent) {
    // complete == invoke is an overlap, so the reversed positions are valid
    // and the oracle alone accepts them.
    history_builder h;
    h.put("x", "a", {0, 20, 2}).put("x", "b", {20, 30, 1}).get("x", "a", {40, 50, 3});
    const auto report = sim::check_linearizable(h.ops());
    BOOST_TEST(report.linearizable);
    BOOST_TEST(report.keys_by_oracle == 1U);

    history_builder apart;
    apart.put("x", "a", {0, 19, 2}).put("x", "b", {20, 30, 1}).get("x", "a", {40, 50, 3});
    BOOST_TEST(!sim::check_linearizable(apart.ops()).linearizable);
}

BOOST_AUTO_TEST_CASE(get_concurrent_with_delete_may_miss) {
    history_builder h;
    h.put("x", "a", {0, 10, 0})
        .del("x", kv_status::ok, {20, 60, 0})
        .get("x", std::nullopt, {30, 40, 0})
        .get("x", "a", {35, 45, 0});
    BOOST_TEST(sim::check_linearizable(h.ops()).linearizable);

    history_builder late = h;
    late.get("x", "a", {70, 80, 0});  // the delete has completed by then
    BOOST_TEST(!sim::check_linearizable(late.ops()).linearizable);
}

BOOST_AUTO_TEST_CASE(duplicate_positions_fall_back_to_search) {
    history_builder h;
    h.put("x", "a", {0, 10, 1}).get("x", "a", {20, 30, 1});
    const auto report = sim::check_linearizable(h.ops());
    BOOST_TEST(report.linearizable);
    BOOST_TEST(report.keys_by_search == 1U);
}

BOOST_AUTO_TEST_CASE(concurrent_writes_need_backtracking) {
    // Three overlapping puts; reads fix the order c, a, b. No positions.
    history_builder h;
    h.put("x", "a", {0, 100, 0})
        .put("x", "b", {0, 100, 0})
        .put("x", "c", {0, 100, 0})
        .get("x", "c", {10, 20, 0})
        .get("x", "a", {30, 40, 0})
        .get("x", "b", {110, 120, 0});
    const auto report = sim::check_linearizable(h.ops());
    BOOST_TEST(report.linearizable);
    BOOST_TEST(report.keys_by_search == 1U);

    history_builder bad = h;
    bad.get("x", "c", {130, 140, 0});  // c was overwritten by then
    BOOST_TEST(!sim::check_linearizable(bad.ops()).linearizable);
}

BOOST_AUTO_TEST_CASE(first_violating_key_in_sorted_order_is_explained) {
    history_builder h;
    h.put("zeta", "a", {0, 10, 1})
        .get("zeta", std::nullopt, {20, 30, 2})
        .put("alpha", "a", {0, 10, 3})
        .get("alpha", "a", {20, 30, 4})
        .put("beta", "a", {0, 10, 5})
        .get("beta", "q", {20, 30, 6});
    const auto report = sim::check_linearizable(h.ops());
    BOOST_TEST(!report.linearizable);
    BOOST_TEST(report.keys_checked == 3U);
    BOOST_TEST(contains(report.explanation, "key \"beta\""));
    BOOST_TEST(!contains(report.explanation, "zeta"));
    // Same input, same words.
    BOOST_TEST(sim::check_linearizable(h.ops()).explanation == report.explanation);
}

BOOST_AUTO_TEST_CASE(tiny_step_budget_is_undecided) {
    history_builder h;
    h.put("x", "a", {0, 10, 1}).put_with(outcome::unknown, "x", "b", 15).get("x", "b", {20, 30, 2});
    const auto report = sim::check_linearizable(h.ops(), {.search_steps_max = 1});
    BOOST_TEST(!report.linearizable);
    BOOST_TEST(report.undecided);
    BOOST_TEST(report.search_steps == 1U);
    BOOST_TEST(contains(report.explanation, "undecided"));
}

BOOST_AUTO_TEST_CASE(definite_violation_outranks_undecided_key) {
    history_builder h;
    h.put("a", "a", {0, 10, 1})
        .put_with(outcome::unknown, "a", "b", 15)
        .put("a", "c", {16, 18, 3})
        .get("a", "b", {20, 30, 2})
        .get("b", "q", {20, 30, 4});
    const auto report = sim::check_linearizable(h.ops(), {.search_steps_max = 2});
    BOOST_TEST(!report.linearizable);
    BOOST_TEST(report.undecided);
    BOOST_TEST(contains(report.explanation, "key \"b\""));
}

BOOST_AUTO_TEST_CASE(malformed_interval_is_reported) {
    history_builder h;
    h.put("x", "a", {50, 10, 1});
    const auto report = sim::check_linearizable(h.ops());
    BOOST_TEST(!report.linearizable);
    BOOST_TEST(contains(report.explanation, "malformed"));
}

BOOST_AUTO_TEST_CASE(random_linearizable_history_and_mutations) {
    generator_config config;
    config.seed = 0x5eed;
    config.op_count = 3000;
    config.unknown_fraction = 0.03;
    config.fail_fraction = 0.02;
    const std::vector<kv_history_op> history = generate_history(config);
    const auto report = sim::check_linearizable(history);
    BOOST_TEST(report.linearizable);
    BOOST_TEST(!report.undecided);
    BOOST_TEST(report.keys_checked == 10U);
    BOOST_TEST(report.keys_by_search > 0U);  // unknown writes that were read

    std::vector<kv_history_op> ghost = history;
    const auto get = std::find_if(ghost.begin() + 1500, ghost.end(), [](const auto& op) {
        return op.kind == kv_kind::get && op.result_outcome == outcome::ok && op.status == kv_status::ok;
    });
    BOOST_REQUIRE(get != ghost.end());
    get->result_value = "never-written";
    const auto ghost_report = sim::check_linearizable(ghost);
    BOOST_TEST(!ghost_report.linearizable);
    BOOST_TEST(!ghost_report.undecided);
    BOOST_TEST(contains(ghost_report.explanation, "#" + std::to_string(get->id) + " (get"));

    std::vector<kv_history_op> stale = history;
    const std::uint64_t stale_id = inject_stale_read(stale);
    BOOST_REQUIRE(stale_id != 0U);
    const auto stale_report = sim::check_linearizable(stale);
    BOOST_TEST(!stale_report.linearizable);
    BOOST_TEST(!stale_report.undecided);
    BOOST_TEST_MESSAGE(stale_report.explanation);
}

BOOST_AUTO_TEST_CASE(agrees_with_brute_force_on_small_histories) {
    std::mt19937_64 rng(42);
    std::size_t verdicts[2] = {0, 0};
    for (std::uint64_t round = 0; round < 3000; ++round) {
        generator_config config;
        config.seed = rng();
        config.op_count = 7;
        config.key_count = 1;
        config.clients = 3;
        config.unknown_fraction = 0.25;
        config.fail_fraction = 0.1;
        std::vector<kv_history_op> history = generate_history(config);
        // Perturb: flip a result to another plausible one, or scramble positions.
        kv_history_op& victim = history[rng() % history.size()];
        const std::uint64_t action = rng() % 3;
        if (action == 0) victim.status = static_cast<kv_status>(rng() % 3);
        if (action == 1) victim.result_value = history[rng() % history.size()].value;
        if (action == 2) victim.position = rng() % 9;
        const bool expected = brute_force(history).linearizable();
        const auto report = sim::check_linearizable(history);
        BOOST_TEST_REQUIRE(!report.undecided);
        BOOST_TEST_REQUIRE(report.linearizable == expected, "round " << round);
        ++verdicts[expected ? 1 : 0];
    }
    // Both verdicts must be well represented for the comparison to mean much.
    BOOST_TEST(verdicts[0] > 300U);
    BOOST_TEST(verdicts[1] > 300U);
}

BOOST_AUTO_TEST_CASE(timing_5000_ops_10_keys_4_clients) {
    generator_config config;
    config.seed = 7;
    config.op_count = 5000;
    config.key_count = 10;
    config.clients = 4;
    std::vector<kv_history_op> history = generate_history(config);
    sim::linearizability_report report;
    const double oracle_ms = check_ms(history, report);
    BOOST_TEST(report.linearizable);
    BOOST_TEST(report.keys_by_oracle == 10U);

    for (kv_history_op& op : history) op.position = 0;  // force the search
    const double search_ms = check_ms(history, report);
    BOOST_TEST(report.linearizable);
    BOOST_TEST(report.keys_by_search == 10U);
    const std::uint64_t search_steps = report.search_steps;

    config.unknown_fraction = 0.05;
    config.fail_fraction = 0.02;
    std::vector<kv_history_op> with_unknown = generate_history(config);
    for (kv_history_op& op : with_unknown) op.position = 0;
    const double unknown_ms = check_ms(with_unknown, report);
    BOOST_TEST(report.linearizable);
    BOOST_TEST(!report.undecided);

    const std::uint64_t unknown_steps = report.search_steps;

    // Proving a violation: the search must exhaust the alternatives.
    BOOST_REQUIRE(inject_stale_read(with_unknown) != 0U);
    const double stale_ms = check_ms(with_unknown, report);
    BOOST_TEST(!report.linearizable);
    BOOST_TEST(!report.undecided);

    std::cout << "timing 5000 ops, 10 keys, 4 clients: oracle " << oracle_ms << " ms; search (no positions) "
              << search_ms << " ms, " << search_steps << " steps; search with 5% unknown + 2% fail " << unknown_ms
              << " ms, " << unknown_steps << " steps; same with one stale read injected " << stale_ms << " ms, "
              << report.search_steps << " steps\n";
}
