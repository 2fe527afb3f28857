#include "checks.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <optional>
#include <set>

#include "platform/crypto.hpp"
#include "toastyfs/types.hpp"

namespace chaos {

using sim::kv_history_op;
using sim::kv_kind;
using sim::kv_status;
using sim::outcome;

namespace {

bool is_write(const kv_history_op& h) { return h.kind != kv_kind::get; }
bool is_delete(const kv_history_op& h) { return h.kind == kv_kind::del || h.kind == kv_kind::del_if; }
bool effective_write(const kv_history_op& h) {
    return is_write(h) && h.result_outcome == outcome::ok && h.status == kv_status::ok;
}

}  // namespace

std::vector<std::string> check_lists(std::span<const kv_history_op> history, std::span<const list_record> lists,
                                     const std::map<std::string, written_value>& written) {
    std::vector<std::string> problems;
    std::map<std::string, std::vector<const kv_history_op*>> by_key;
    std::map<std::string, const kv_history_op*> put_by_value;
    std::map<std::string, std::string> value_by_md5;
    for (const kv_history_op& h : history) {
        by_key[h.key].push_back(&h);
        if (is_write(h) && !is_delete(h)) put_by_value[h.value] = &h;
    }
    for (const auto& [name, w] : written) value_by_md5[w.md5] = name;
    for (std::size_t i = 0; i < lists.size() && problems.size() < 20; ++i) {
        const list_record& l = lists[i];
        if (!l.ok) continue;
        const std::string where = "LIST #" + std::to_string(i) + " (prefix \"" + l.prefix + "\")";
        std::set<std::string> listed;
        for (const list_entry& e : l.entries) {
            listed.insert(e.key);
            const auto name = value_by_md5.find(e.etag);
            const auto put = name == value_by_md5.end() ? put_by_value.end() : put_by_value.find(name->second);
            if (put == put_by_value.end() || put->second->key != e.key || written.at(name->second).size != e.size) {
                problems.push_back(where + " listed " + e.key + " with an etag/size no PUT of that key wrote");
                continue;
            }
            const kv_history_op& p = *put->second;
            if (p.result_outcome == outcome::fail || (p.result_outcome == outcome::ok && p.status != kv_status::ok)) {
                problems.push_back(where + " listed " + e.key + " = " + sim::describe_op(p) +
                                   ", a PUT that was refused");
                continue;
            }
            if (p.invoke_ns > l.complete_ns) {
                problems.push_back(where + " listed " + e.key + " = " + sim::describe_op(p) + " before that PUT began");
                continue;
            }
            if (p.result_outcome != outcome::ok) continue;
            for (const kv_history_op* w : by_key[e.key])
                if (effective_write(*w) && p.complete_ns < w->invoke_ns && w->complete_ns < l.invoke_ns) {
                    problems.push_back(where + " listed " + e.key + " = " + sim::describe_op(p) + ", overwritten by " +
                                       sim::describe_op(*w) + " before the LIST began");
                    break;
                }
        }
        const std::string cursor = l.entries.empty() ? std::string() : l.entries.back().key;
        for (const auto& [key, ops] : by_key) {
            if (!key.starts_with(l.prefix) || listed.contains(key) || (l.truncated && key > cursor)) continue;
            for (const kv_history_op* p : ops) {
                if (!(effective_write(*p) && !is_delete(*p) && p->complete_ns < l.invoke_ns)) continue;
                bool removable = false;
                for (const kv_history_op* d : ops) {
                    if (!is_delete(*d)) continue;
                    const bool may_remove = d->result_outcome == outcome::unknown ||
                                            (d->result_outcome == outcome::ok && d->status == kv_status::ok);
                    const bool before_put = d->result_outcome == outcome::ok && d->complete_ns < p->invoke_ns;
                    if (may_remove && d->invoke_ns < l.complete_ns && !before_put) removable = true;
                }
                if (!removable) {
                    problems.push_back(where + " omitted " + key + ", present throughout since " +
                                       sim::describe_op(*p));
                    break;
                }
            }
        }
    }
    return problems;
}

lost_write_report check_final_writes(std::span<const kv_history_op> history,
                                     const std::map<std::string, std::string>& final_state) {
    std::map<std::string, std::vector<const kv_history_op*>> writes;
    for (const kv_history_op& h : history)
        if (is_write(h) && h.result_outcome != outcome::fail) writes[h.key].push_back(&h);
    lost_write_report report;
    for (const auto& [key, ops] : writes) {
        const kv_history_op* last = nullptr;
        for (const kv_history_op* w : ops)
            if (effective_write(*w) && (!last || w->complete_ns > last->complete_ns)) last = w;
        if (!last) continue;
        bool raced = false;
        for (const kv_history_op* w : ops) {
            if (w == last) continue;
            // An answered write that changed nothing (412, 404) cannot race.
            if (w->result_outcome == outcome::ok && w->status != kv_status::ok) continue;
            if (w->result_outcome == outcome::unknown || w->complete_ns >= last->invoke_ns) raced = true;
        }
        const auto found = final_state.find(key);
        if (raced || found == final_state.end()) continue;
        ++report.keys_checked;
        const std::string expected = is_delete(*last) ? std::string() : last->value;
        if (found->second != expected)
            report.lost.push_back(key + ": last acknowledged " + sim::describe_op(*last) +
                                  ", but the final read gave " +
                                  (found->second.empty() ? std::string("404") : found->second));
    }
    return report;
}

namespace {

std::vector<std::uint64_t> write_completions(std::span<const kv_history_op> history, std::uint64_t from_ns,
                                             std::uint64_t to_ns) {
    std::vector<std::uint64_t> done;
    for (const kv_history_op& h : history)
        if (is_write(h) && h.result_outcome == outcome::ok && h.complete_ns >= from_ns && h.complete_ns < to_ns)
            done.push_back(h.complete_ns);
    std::sort(done.begin(), done.end());
    done.push_back(to_ns);
    return done;
}

}  // namespace

unavailability longest_write_gap(std::span<const kv_history_op> history, std::uint64_t from_ns, std::uint64_t to_ns) {
    const std::vector<std::uint64_t> done = write_completions(history, from_ns, to_ns);
    unavailability out;
    out.writes = done.size() - 1;
    std::uint64_t previous = from_ns;
    for (std::uint64_t t : done) {
        if (t - previous > out.longest_ns) {
            out.longest_ns = t - previous;
            out.starts_ns = previous;
        }
        previous = t;
    }
    return out;
}

std::vector<std::pair<std::uint64_t, std::uint64_t>> write_gaps(std::span<const kv_history_op> history,
                                                                std::uint64_t from_ns, std::uint64_t to_ns,
                                                                std::uint64_t min_ns) {
    std::vector<std::pair<std::uint64_t, std::uint64_t>> gaps;
    std::uint64_t previous = from_ns;
    for (std::uint64_t t : write_completions(history, from_ns, to_ns)) {
        if (t - previous >= min_ns) gaps.emplace_back(previous, t - previous);
        previous = t;
    }
    return gaps;
}

namespace {

/// Value name -> the PUT that wrote it.
std::map<std::string, const kv_history_op*> puts_by_value(std::span<const kv_history_op> history) {
    std::map<std::string, const kv_history_op*> out;
    for (const kv_history_op& h : history)
        if (is_write(h) && !is_delete(h)) out[h.value] = &h;
    return out;
}

}  // namespace

std::vector<std::pair<std::uint64_t, std::uint64_t>> fault_excuse_windows(std::span<const fault_record> faults,
                                                                          std::uint64_t margin_ns) {
    std::vector<std::pair<std::uint64_t, std::uint64_t>> windows;
    for (const fault_record& f : faults) windows.emplace_back(f.start_ns, f.end_ns + margin_ns);
    return windows;
}

double unexcused_fraction(std::span<const std::pair<std::uint64_t, std::uint64_t>> windows, std::uint64_t from_ns,
                          std::uint64_t to_ns) {
    if (to_ns <= from_ns) return 0;
    std::vector<std::pair<std::uint64_t, std::uint64_t>> sorted(windows.begin(), windows.end());
    std::sort(sorted.begin(), sorted.end());
    std::uint64_t covered = 0;
    std::uint64_t reached = from_ns;  // everything before this is counted
    for (const auto& [start, end] : sorted) {
        const std::uint64_t a = std::max(start, reached);
        const std::uint64_t b = std::min(end, to_ns);
        if (b > a) covered += b - a;
        reached = std::max(reached, std::min(end, to_ns));
    }
    return 1.0 - static_cast<double>(covered) / static_cast<double>(to_ns - from_ns);
}

std::vector<std::string> check_truncated_gets(std::span<const kv_history_op> history,
                                              std::span<const truncated_get> cut,
                                              const std::map<std::string, written_value>& written,
                                              std::span<const std::pair<std::uint64_t, std::uint64_t>> noisy,
                                              std::uint64_t& excused) {
    std::vector<std::string> problems;
    excused = 0;
    std::map<std::string, std::string> value_by_md5;
    for (const auto& [name, w] : written) value_by_md5[w.md5] = name;
    const auto puts = puts_by_value(history);
    std::map<std::string, std::vector<const kv_history_op*>> writes;
    for (const kv_history_op& h : history)
        if (is_write(h)) writes[h.key].push_back(&h);
    for (const truncated_get& t : cut) {
        bool during_faults = false;
        for (const auto& [from, to] : noisy)
            during_faults = during_faults || (t.invoke_ns < to && t.complete_ns > from);
        const auto name = value_by_md5.find(t.etag);
        const auto put = name == value_by_md5.end() ? puts.end() : puts.find(name->second);
        if (put == puts.end() || put->second->key != t.key) {
            problems.push_back("GET " + t.key + " was cut short after a head with ETag " + t.etag +
                               ", which no PUT of that key wrote");
            continue;
        }
        const kv_history_op& p = *put->second;
        bool replaced = false;
        for (const kv_history_op* w : writes[t.key]) {
            if (w == &p || w->result_outcome == outcome::fail ||
                (w->result_outcome == outcome::ok && w->status != kv_status::ok))
                continue;
            const bool strictly_before = w->result_outcome == outcome::ok && w->complete_ns < p.invoke_ns;
            if (!strictly_before && w->invoke_ns < t.complete_ns) replaced = true;
        }
        if (replaced || during_faults) {
            ++excused;
            continue;
        }
        problems.push_back("GET " + t.key + " of " + sim::describe_op(p) +
                           " was cut short with no fault active and no newer write: its chunks were lost");
    }
    return problems;
}

fault_counts count_faults(std::span<const fault_record> faults) {
    fault_counts counts;
    for (const fault_record& f : faults) ++(f.injected ? counts.injected : counts.not_injected)[f.kind];
    return counts;
}

std::vector<std::string> check_faults_injected(const std::set<std::string>& requested, const fault_counts& counts) {
    std::vector<std::string> problems;
    for (const std::string& kind : requested) {
        if (counts.injected.contains(kind)) continue;
        const auto tried = counts.not_injected.find(kind);
        const bool tried_once = tried != counts.not_injected.end();
        const std::string why =
            tried_once ? std::to_string(tried->second) + " attempts failed" : "never tried before the run ended";
        problems.push_back("fault kind " + kind + " was requested but never injected (" + why + ")");
    }
    return problems;
}

namespace {

/// When the first acknowledged write issued at or after `from_ns` completed, if any did.
std::optional<std::uint64_t> first_write_issued_after(std::span<const kv_history_op> history, std::uint64_t from_ns) {
    std::optional<std::uint64_t> first;
    for (const kv_history_op& h : history)
        if (effective_write(h) && h.invoke_ns >= from_ns && (!first || h.complete_ns < *first)) first = h.complete_ns;
    return first;
}

std::string seconds_text(std::uint64_t ns) {
    char text[32];
    std::snprintf(text, sizeof text, "%.1f s", static_cast<double>(ns) / 1e9);
    return text;
}

bool kills_one_node(const fault_record& f) {
    return f.kind == "kill" || f.kind == "kill_primary" || f.kind == "wipe_disk";
}

/// When the first injected kill_all after `from_ns` began (writes impossible from then until its
/// revival), if any did.
std::optional<std::uint64_t> next_cluster_kill(std::span<const fault_record> faults, std::uint64_t from_ns) {
    std::optional<std::uint64_t> next;
    for (const fault_record& f : faults)
        if (f.injected && f.kind == "kill_all" && f.start_ns > from_ns && (!next || f.start_ns < *next))
            next = f.start_ns;
    return next;
}

/// From `from_ns` to the first write issued after it succeeding, cut off at the next kill_all;
/// UINT64_MAX if none succeeded before the run (or that kill_all) ended.
std::uint64_t write_resumed_after(std::span<const kv_history_op> history, std::span<const fault_record> faults,
                                  std::uint64_t from_ns, bool& resumed) {
    const auto first = first_write_issued_after(history, from_ns);
    const auto outage = next_cluster_kill(faults, from_ns);
    resumed = first && (!outage || *first <= *outage);
    if (resumed) return *first - from_ns;
    return outage ? *outage - from_ns : UINT64_MAX;
}

}  // namespace

availability_report check_availability(std::span<const kv_history_op> history, std::span<const fault_record> faults,
                                       std::uint64_t healed_ns, const availability_bounds& bounds) {
    availability_report report;
    for (const kv_history_op& h : history) report.acknowledged_writes += effective_write(h) ? 1 : 0;
    if (report.acknowledged_writes == 0) report.problems.push_back("no write was acknowledged in the whole run");
    for (const fault_record& f : faults) {
        const bool revival = f.kind == "kill_all";
        if (!f.injected || !(revival || kills_one_node(f))) continue;
        const std::uint64_t from = revival ? f.revived_ns : f.start_ns;
        bool resumed = false;
        const std::uint64_t took = write_resumed_after(history, faults, from, resumed);
        ++(revival ? report.revivals_checked : report.kills_checked);
        if (resumed) {
            std::uint64_t& slowest = revival ? report.slowest_after_revival_ns : report.slowest_after_kill_ns;
            slowest = std::max(slowest, took);
        }
        const std::uint64_t bound = revival ? bounds.after_revival_ns : bounds.after_kill_ns;
        if (took <= bound) continue;
        const std::string what =
            revival ? "the restart of every node after their kill -9 (" + f.detail + ")" : "the kill -9 of " + f.detail;
        const std::string when = resumed ? " (first after " + seconds_text(took) + ")"
                                 : took != UINT64_MAX
                                     ? " (none before every node was killed " + seconds_text(took) + " later)"
                                     : " (none afterwards)";
        report.problems.push_back("writes did not resume within " + seconds_text(bound) + " of " + what + when);
    }
    const auto after_heal = first_write_issued_after(history, healed_ns);
    report.resumed_after_heal = after_heal && *after_heal - healed_ns <= bounds.after_heal_ns;
    if (after_heal) report.after_heal_ns = *after_heal - healed_ns;
    if (!report.resumed_after_heal)
        report.problems.push_back("no write issued after healing succeeded within " +
                                  seconds_text(bounds.after_heal_ns) +
                                  (after_heal ? " (first after " + seconds_text(report.after_heal_ns) + ")" : ""));
    return report;
}

std::vector<std::string> check_final_listing(std::span<const list_record> lists,
                                             const std::map<std::string, std::string>& final_state,
                                             const std::map<std::string, written_value>& written) {
    std::vector<std::string> problems;
    std::set<std::string> listed;
    for (const list_record& l : lists) {
        if (!l.ok || l.truncated) {
            problems.push_back("final LIST of \"" + l.prefix + "\" failed or was truncated");
            continue;
        }
        for (const list_entry& e : l.entries) {
            listed.insert(e.key);
            const auto state = final_state.find(e.key);
            if (state == final_state.end() || state->second.empty()) {
                problems.push_back("final LIST shows " + e.key + ", which reads as absent");
                continue;
            }
            const auto w = written.find(state->second);
            if (w == written.end() || w->second.md5 != e.etag || w->second.size != e.size)
                problems.push_back("final LIST shows " + e.key + " with ETag " + e.etag + " and size " +
                                   std::to_string(e.size) + ", but it reads as " + state->second);
        }
    }
    for (const auto& [key, value] : final_state) {
        bool covered = false;
        for (const list_record& l : lists) covered = covered || key.starts_with(l.prefix);
        if (covered && !value.empty() && !listed.contains(key))
            problems.push_back("final LIST omits " + key + " = " + value);
    }
    return problems;
}

copies_report check_chunk_copies(const std::map<std::string, std::string>& final_state,
                                 const std::map<std::string, written_value>& written, std::uint32_t nodes,
                                 const std::function<std::string(std::uint32_t)>& chunk_directory,
                                 const std::set<std::pair<std::uint32_t, std::string>>& corrupted,
                                 std::size_t chunk_size, std::size_t inline_size_max,
                                 std::uint32_t replication_factor) {
    copies_report report;
    for (const auto& [key, name] : final_state) {
        const auto w = written.find(name);
        if (name.empty() || w == written.end() || w->second.size <= inline_size_max) continue;
        unsigned client = 0;
        unsigned long long sequence = 0;
        const std::size_t dot = name.find('.');
        std::from_chars(name.data(), name.data() + dot, client);
        std::from_chars(name.data() + dot + 1, name.data() + name.size(), sequence);
        const std::string value = make_value(client, sequence, w->second.size);
        for (std::size_t at = 0; at < value.size(); at += chunk_size) {
            const std::size_t length = std::min(chunk_size, value.size() - at);
            const toastyfs::sha256_digest digest =
                platform::openssl_crypto::sha256({reinterpret_cast<const std::uint8_t*>(value.data()) + at, length});
            const std::string hex = toastyfs::to_hex(digest);
            ++report.chunks;
            std::uint32_t good = 0;
            std::uint32_t corrupt_known = 0;
            for (std::uint32_t node = 0; node < nodes; ++node) {
                std::ifstream file(chunk_directory(node) + "/" + hex.substr(0, 2) + "/" + hex, std::ios::binary);
                if (!file) continue;
                const std::string bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
                if (platform::openssl_crypto::sha256(
                        {reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()}) == digest)
                    ++good;
                else if (corrupted.contains({node, hex}))
                    ++corrupt_known;
                else
                    report.problems.push_back("node " + std::to_string(node + 1) + " holds a bad copy of chunk " +
                                              hex.substr(0, 12) + " of " + key + " that nobody corrupted");
            }
            report.good_copies += good;
            report.corrupt_unscrubbed += corrupt_known;
            if (good == 0)
                report.problems.push_back("chunk " + hex.substr(0, 12) + " of " + key + " = " + name +
                                          " has no good copy on any node");
            else if (good + corrupt_known < replication_factor)
                report.problems.push_back("chunk " + hex.substr(0, 12) + " of " + key + " = " + name + " has " +
                                          std::to_string(good) + " good copies after convergence (replication factor " +
                                          std::to_string(replication_factor) + ")");
        }
    }
    return report;
}

}  // namespace chaos
