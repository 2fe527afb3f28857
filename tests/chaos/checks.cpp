#include "checks.hpp"

#include <algorithm>
#include <set>

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
                    problems.push_back(where + " omitted " + key + ", present throughout since " + sim::describe_op(*p));
                    break;
                }
            }
        }
    }
    return problems;
}

lost_write_report check_final_writes(std::span<const kv_history_op> history, const std::map<std::string, std::string>& final_state) {
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
            report.lost.push_back(key + ": last acknowledged " + sim::describe_op(*last) + ", but the final read gave " +
                                  (found->second.empty() ? std::string("404") : found->second));
    }
    return report;
}

unavailability longest_write_gap(std::span<const kv_history_op> history, std::uint64_t from_ns, std::uint64_t to_ns) {
    std::vector<std::uint64_t> done;
    for (const kv_history_op& h : history)
        if (is_write(h) && h.result_outcome == outcome::ok && h.complete_ns >= from_ns && h.complete_ns < to_ns)
            done.push_back(h.complete_ns);
    std::sort(done.begin(), done.end());
    unavailability out;
    out.writes = done.size();
    std::uint64_t previous = from_ns;
    done.push_back(to_ns);
    for (std::uint64_t t : done) {
        if (t - previous > out.longest_ns) {
            out.longest_ns = t - previous;
            out.starts_ns = previous;
        }
        previous = t;
    }
    return out;
}

}  // namespace chaos
