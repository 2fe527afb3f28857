// janitor: restores every chunk's replication factor and deletes unreferenced chunks, safely.
// It runs inside the proxy, on top of object_service (metadata operations and raw chunk
// requests), one pass at a time:
//
//  1. inventory: every connected node lists its chunks (sha256, size, token);
//  2. clock: t_inventory, the metadata clock after every inventory was taken;
//  3. scan: list_chunks pages through the chunk index. For each referenced chunk, a listed holder
//     whose inventory lacks it in two passes running is stale (remove_holder: one miss may be a
//     chunk written after the inventory); a chunk with fewer than
//     replication_factor good copies (listed holders that have it, plus listed holders that are
//     disconnected for less than node_down_grace_ns) is queued for repair. Every inventory entry
//     whose node is not a listed holder is a garbage candidate.
//  4. repair, one chunk at a time: clock (lease begin), read from a holder (verified), write to
//     the first node in placement order that lacks it, add_holder(lease begin).
//  5. collect: a candidate first seen at t_seen with token T is deleted once the metadata clock
//     reaches t_seen + upload_lease_ns, chunks_held confirms that node still does not hold it,
//     and the node still has token T (remove-if-unchanged).
//
// Why collection is safe: an upload or repair that wrote the chunk before the inventory took its
// lease before t_inventory, so by t_seen + lease it has committed (and chunks_held sees it) or
// can no longer commit (the state machine refuses an expired lease). One that wrote the chunk
// after the inventory changed its token, so the node refuses the delete.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <utility>
#include <vector>

#include "toastyfs/chunk_protocol.hpp"
#include "toastyfs/metadata_codec.hpp"
#include "toastyfs/object_service.hpp"
#include "toastyfs/planted_bug.hpp"
#include "toastyfs/types.hpp"

namespace toastyfs {

struct janitor_options {
    /// Pause between the end of one pass and the start of the next.
    std::uint64_t interval_ns = 30'000'000'000;
    /// Must equal the metadata state machine's upload_lease_ns.
    std::uint64_t upload_lease_ns = 3600'000'000'000;
    /// A disconnected holder still counts as a good copy for this long (restarts are common).
    std::uint64_t node_down_grace_ns = 60'000'000'000;
    /// Repairs queued per pass; the rest wait for the next pass.
    std::size_t repairs_per_pass_max = 256;
    /// Inventory entries held per pass (all nodes). Beyond it the pass skips collection.
    std::size_t inventory_entries_max = 4'000'000;
    /// Garbage candidates remembered between passes. Beyond it new ones wait for a later pass.
    std::size_t candidates_max = 1'000'000;
    std::uint8_t replication_factor = 2;
    /// Test-only (see planted_bug.hpp).
    planted_bug bug = planted_bug::none;
};

struct janitor_counters {
    std::uint64_t passes = 0;            // started
    std::uint64_t passes_completed = 0;  // ran every step to the end
    std::uint64_t passes_aborted = 0;    // a metadata operation or inventory failed midway
    std::uint64_t chunks_scanned = 0;
    std::uint64_t repairs = 0;  // copies made and recorded
    std::uint64_t repair_failures = 0;
    std::uint64_t stale_holders_removed = 0;
    std::uint64_t chunks_collected = 0;    // deleted from a node
    std::uint64_t collection_refused = 0;  // the node had a newer token, or it was held again
    std::uint64_t inventory_overflows = 0;
};

template <typename Service>
class janitor {
public:
    janitor(const janitor_options& options, Service& service, std::uint8_t node_count)
        : options_(options),
          service_(service),
          node_count_(node_count),
          last_connected_ns_(node_count, 0),
          inventories_(node_count) {}

    const janitor_counters& counters() const noexcept { return counters_; }
    bool pass_running() const noexcept { return running_; }
    std::size_t candidates() const noexcept { return candidates_.size(); }

    /// Call every tick. Starts a pass when the interval has passed since the last one ended.
    void tick(std::uint64_t now_ns) {
        now_ns_ = now_ns;
        for (std::uint8_t n = 0; n < node_count_; ++n) {
            if (service_.node_connected(n)) last_connected_ns_[n] = now_ns;
        }
        if (!started_) {
            started_ = true;
            next_pass_ns_ = now_ns + options_.interval_ns;
        }
        if (!running_ && now_ns >= next_pass_ns_) start_pass();
    }

    /// Starts a pass now if none is running (tests, and an operator's request).
    void run_now() {
        if (!running_) start_pass();
    }

private:
    struct candidate_key {
        std::uint8_t node = 0;
        sha256_digest sha256{};
        friend auto operator<=>(const candidate_key&, const candidate_key&) = default;
    };
    struct candidate {
        std::uint64_t token = 0;
        std::uint64_t seen_ns = 0;  // metadata clock when first seen with this token
        bool present = false;       // seen in this pass
    };
    struct repair_task {
        sha256_digest sha256{};
        std::uint32_t size = 0;
        node_set sources = 0;  // nodes whose inventory has it and that are listed holders
        node_set holders = 0;
    };

    void start_pass() {
        running_ = true;
        ++counters_.passes;
        for (auto& inv : inventories_) inv.clear();
        inventoried_ = 0;
        inventory_total_ = 0;
        overflow_ = false;
        repairs_.clear();
        next_suspects_.clear();
        for (auto& [key, c] : candidates_) c.present = false;
        inventory_node(0, std::nullopt);
    }

    void end_pass(bool aborted) {
        if (aborted)
            ++counters_.passes_aborted;
        else
            ++counters_.passes_completed;
        running_ = false;
        next_pass_ns_ = now_ns_ + options_.interval_ns;
    }

    // ---- 1. inventory -------------------------------------------------------------------------

    void inventory_node(std::uint8_t node, std::optional<sha256_digest> after) {
        while (node < node_count_ && !service_.node_connected(node)) ++node;
        if (node >= node_count_) {
            take_clock([this](std::uint64_t t) {
                t_inventory_ = t;
                scan_chunks(std::nullopt);
            });
            return;
        }
        frame_header h;
        h.kind = frame_kind::inventory;
        if (after) h.sha256 = *after;
        h.argument = 4096;
        service_.send_raw(
            node, h, nullptr, [this, node](bool answered, const frame_header& reply, std::vector<std::uint8_t>& body) {
                std::vector<inventory_entry> entries;
                if (!answered || reply.status != frame_status::ok || !decode_inventory(body, reply.argument, entries)) {
                    inventory_node(static_cast<std::uint8_t>(node + 1), std::nullopt);  // skip this node
                    return;
                }
                for (const inventory_entry& e : entries) {
                    if (inventory_total_ >= options_.inventory_entries_max) {
                        if (!overflow_) ++counters_.inventory_overflows;
                        overflow_ = true;
                        break;
                    }
                    inventories_[node].emplace(e.sha256, e);
                    ++inventory_total_;
                }
                if (entries.size() == 4096 && !overflow_) {
                    inventory_node(node, entries.back().sha256);
                } else {
                    if (!overflow_) inventoried_ = with(inventoried_, node);
                    inventory_node(static_cast<std::uint8_t>(node + 1), std::nullopt);
                }
            });
    }

    void take_clock(std::function<void(std::uint64_t)> next) {
        service_.submit_metadata(encode(clock_operation{}), [this, next = std::move(next)](
                                                                service_status s, std::span<const std::uint8_t> body) {
            const auto clock = s == service_status::ok ? decode_clock_result(body) : std::nullopt;
            if (!clock || clock->result_status != status::ok) {
                end_pass(true);
                return;
            }
            next(clock->timestamp_ns);
        });
    }

    // ---- 3. scan ------------------------------------------------------------------------------

    void scan_chunks(std::optional<sha256_digest> after) {
        list_chunks_operation op;
        op.after = after;
        op.max_entries = 2048;
        // Reads are queries: they see every write acknowledged before them, without a log entry.
        service_.submit_metadata(
            encode(op), vsr::request_kind::query, [this](service_status s, std::span<const std::uint8_t> body) {
                const auto page = s == service_status::ok ? decode_list_chunks_result(body) : std::nullopt;
                if (!page || page->result_status != status::ok) {
                    end_pass(true);
                    return;
                }
                for (const chunk_info& c : page->entries) scan_one(c);
                if (page->truncated && !page->entries.empty()) {
                    scan_chunks(page->entries.back().sha256);
                } else {
                    suspects_ = std::move(next_suspects_);
                    next_suspects_.clear();
                    note_candidates();
                    repair_next();
                }
            });
    }

    void scan_one(const chunk_info& c) {
        ++counters_.chunks_scanned;
        node_set good = 0;
        node_set sources = 0;
        node_set holders = c.holders;  // minus the stale ones: those nodes may take a new copy
        for (std::uint8_t n = 0; n < node_count_; ++n) {
            auto& inv = inventories_[n];
            const auto it = inv.find(c.sha256);
            const bool has = it != inv.end();
            if (has && contains(c.holders, n)) {
                it->second.size = ~std::uint64_t{0};  // mark: referenced on this node
                good = with(good, n);
                sources = with(sources, n);
            } else if (contains(c.holders, n) && contains(inventoried_, n) && !has) {
                // Missing from this inventory. It may have been written (and committed) after
                // the inventory was taken; if the previous pass already saw it listed and
                // missing, this inventory came after that scan, so the copy is really gone.
                const candidate_key key{n, c.sha256};
                if (suspects_.contains(key)) {
                    remove_stale_holder(c.sha256, n);
                    holders = without(holders, n);
                } else {
                    if (next_suspects_.size() < options_.candidates_max) next_suspects_.insert(key);
                    good = with(good, n);  // presumed fresh until the next pass
                }
            } else if (contains(c.holders, n) && !contains(inventoried_, n) &&
                       now_ns_ - std::min(now_ns_, last_connected_ns_[n]) < options_.node_down_grace_ns) {
                good = with(good, n);  // down only briefly: presumed good
            }
        }
        const bool repairs = options_.bug != planted_bug::janitor_skips_repair;
        if (count(good) < options_.replication_factor && sources != 0 && repairs &&
            repairs_.size() < options_.repairs_per_pass_max) {
            repairs_.push_back(repair_task{c.sha256, c.size, sources, holders});
        }
    }

    void remove_stale_holder(const sha256_digest& sha, std::uint8_t node) {
        service_.submit_metadata(encode(remove_holder_operation{sha, node}),
                                 [this](service_status s, std::span<const std::uint8_t> body) {
                                     const auto r = s == service_status::ok ? decode_status_result(body) : std::nullopt;
                                     if (r && r->result_status == status::ok) ++counters_.stale_holders_removed;
                                 });
    }

    /// Inventory entries not marked as referenced become (or stay) garbage candidates.
    void note_candidates() {
        if (overflow_) return;
        for (std::uint8_t n = 0; n < node_count_; ++n) {
            if (!contains(inventoried_, n)) continue;
            for (const auto& [sha, e] : inventories_[n]) {
                if (e.size == ~std::uint64_t{0}) continue;
                const candidate_key key{n, sha};
                auto it = candidates_.find(key);
                if (it == candidates_.end()) {
                    if (candidates_.size() >= options_.candidates_max) continue;
                    candidates_.emplace(key, candidate{e.token, t_inventory_, true});
                } else {
                    if (it->second.token != e.token) it->second = candidate{e.token, t_inventory_, true};
                    it->second.present = true;
                }
            }
        }
        // Forget candidates a node no longer lists (deleted) or that became referenced.
        for (auto it = candidates_.begin(); it != candidates_.end();) {
            if (contains(inventoried_, it->first.node) && !it->second.present)
                it = candidates_.erase(it);
            else
                ++it;
        }
    }

    // ---- 4. repair ----------------------------------------------------------------------------

    void repair_next() {
        if (repairs_.empty()) {
            collect();
            return;
        }
        const repair_task task = repairs_.back();
        repairs_.pop_back();
        take_clock([this, task](std::uint64_t lease_begin) { repair_read(task, lease_begin, 0); });
    }

    void repair_read(const repair_task& task, std::uint64_t lease_begin, node_set tried) {
        std::optional<std::uint8_t> source;
        for (std::uint8_t n = 0; n < node_count_ && !source; ++n) {
            if (contains(task.sources, n) && !contains(tried, n) && service_.node_connected(n)) source = n;
        }
        if (!source) {
            ++counters_.repair_failures;
            repair_next();
            return;
        }
        frame_header h;
        h.kind = frame_kind::read;
        h.sha256 = task.sha256;
        const std::uint8_t from = *source;
        service_.send_raw(from, h, nullptr,
                          [this, task, lease_begin, tried, from](bool answered, const frame_header& reply,
                                                                 std::vector<std::uint8_t>& body) {
                              if (!answered || reply.status != frame_status::ok || body.size() != task.size ||
                                  service_.sha256(body) != task.sha256) {
                                  repair_read(task, lease_begin, with(tried, from));
                                  return;
                              }
                              repair_write(task, lease_begin,
                                           std::make_shared<const std::vector<std::uint8_t>>(std::move(body)), 0);
                          });
    }

    void repair_write(const repair_task& task, std::uint64_t lease_begin,
                      std::shared_ptr<const std::vector<std::uint8_t>> data, node_set tried) {
        std::optional<std::uint8_t> target;
        for (const std::uint8_t n : service_.placement(task.sha256)) {
            if (!contains(task.holders, n) && !contains(tried, n) && service_.node_connected(n)) {
                target = n;
                break;
            }
        }
        if (!target) {
            ++counters_.repair_failures;
            repair_next();
            return;
        }
        frame_header h;
        h.kind = frame_kind::write;
        h.sha256 = task.sha256;
        const std::uint8_t to = *target;
        service_.send_raw(to, h, data,
                          [this, task, lease_begin, data, tried, to](bool answered, const frame_header& reply,
                                                                     std::vector<std::uint8_t>&) {
                              if (!answered || reply.status != frame_status::ok) {
                                  repair_write(task, lease_begin, data, with(tried, to));
                                  return;
                              }
                              service_.submit_metadata(encode(add_holder_operation{task.sha256, to, lease_begin}),
                                                       [this](service_status s, std::span<const std::uint8_t> body) {
                                                           const auto r = s == service_status::ok
                                                                              ? decode_status_result(body)
                                                                              : std::nullopt;
                                                           if (r && r->result_status == status::ok)
                                                               ++counters_.repairs;
                                                           else
                                                               ++counters_.repair_failures;
                                                           repair_next();
                                                       });
                          });
    }

    // ---- 5. collect ---------------------------------------------------------------------------

    void collect() {
        take_clock([this](std::uint64_t now) { collect_node(0, now); });
    }

    void collect_node(std::uint8_t node, std::uint64_t now) {
        if (node >= node_count_) {
            end_pass(false);
            return;
        }
        chunks_held_operation op;
        op.node = node;
        std::vector<std::uint64_t> tokens;
        for (const auto& [key, c] : candidates_) {
            const bool waited =
                now >= c.seen_ns + options_.upload_lease_ns || options_.bug == planted_bug::gc_ignores_lease;
            if (key.node != node || !c.present || !waited) continue;
            op.chunks.push_back(key.sha256);
            tokens.push_back(c.token);
            if (op.chunks.size() == chunks_held_max) break;
        }
        if (op.chunks.empty() || !service_.node_connected(node)) {
            collect_node(static_cast<std::uint8_t>(node + 1), now);
            return;
        }
        auto shas = std::make_shared<std::vector<sha256_digest>>(op.chunks);
        auto shared_tokens = std::make_shared<std::vector<std::uint64_t>>(std::move(tokens));
        service_.submit_metadata(
            encode(op), vsr::request_kind::query,
            [this, node, now, shas, shared_tokens](service_status s, std::span<const std::uint8_t> body) {
                const auto held = s == service_status::ok ? decode_chunks_held_result(body) : std::nullopt;
                if (!held || held->result_status != status::ok || held->held.size() != shas->size()) {
                    end_pass(true);
                    return;
                }
                for (std::size_t i = 0; i < shas->size(); ++i) {
                    candidates_.erase(candidate_key{node, (*shas)[i]});
                    if (held->held[i]) continue;  // referenced again since the scan
                    frame_header h;
                    h.kind = frame_kind::remove;
                    h.sha256 = (*shas)[i];
                    h.token = (*shared_tokens)[i];
                    service_.send_raw(node, h, nullptr,
                                      [this](bool answered, const frame_header& reply, std::vector<std::uint8_t>&) {
                                          if (answered && reply.status == frame_status::ok)
                                              ++counters_.chunks_collected;
                                          else
                                              ++counters_.collection_refused;
                                      });
                }
                collect_node(static_cast<std::uint8_t>(node + 1), now);
            });
    }

    janitor_options options_;
    Service& service_;
    std::uint8_t node_count_;
    janitor_counters counters_;
    std::uint64_t now_ns_ = 0;
    std::uint64_t next_pass_ns_ = 0;
    bool started_ = false;
    bool running_ = false;
    std::vector<std::uint64_t> last_connected_ns_;
    std::vector<std::map<sha256_digest, inventory_entry>> inventories_;
    node_set inventoried_ = 0;
    std::size_t inventory_total_ = 0;
    bool overflow_ = false;
    std::uint64_t t_inventory_ = 0;
    std::vector<repair_task> repairs_;
    std::map<candidate_key, candidate> candidates_;
    std::set<candidate_key> suspects_;       // listed holder missing from the last scan's inventory
    std::set<candidate_key> next_suspects_;  // being collected by the running scan
};

}  // namespace toastyfs
