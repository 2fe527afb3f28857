#include "nemesis.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "platform/crypto.hpp"
#include "process.hpp"
#include "toastyfs/types.hpp"

namespace chaos {

namespace {

bool is_chunk_name(const std::string& name) {
    if (name.size() != 64) return false;
    for (char c : name)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    return true;
}

}  // namespace

void nemesis::hold(std::uint64_t ms) {
    const std::uint64_t until = now_ns() + ms * 1'000'000ull;
    while (!cancelled_ && now_ns() < until) {
        sleep_ms(std::min<std::uint64_t>(50, (until - now_ns()) / 1'000'000 + 1));
        for (std::string& crash : cluster_.unexpected_exits()) crashes_.push_back(std::move(crash));
    }
}

std::uint32_t nemesis::pick_node(bool prefer_primary) {
    if (prefer_primary)
        if (auto p = cluster_.primary()) return *p;
    return static_cast<std::uint32_t>(random_() % cluster_.nodes());
}

bool nemesis::wait_recovered(std::uint32_t node) {
    constexpr std::uint64_t recovery_timeout_ms = 30'000;
    const std::uint64_t start = now_ns();
    while (now_ns() - start < recovery_timeout_ms * 1'000'000ull) {
        if (const auto s = cluster_.status(); s && node < s->nodes.size() && s->nodes[node].normal) {
            cluster_.recovered(node);
            return true;
        }
        hold(100);
        if (cancelled_) return false;
    }
    stuck_.push_back("node " + std::to_string(node + 1) + " was not normal " +
                     std::to_string(recovery_timeout_ms / 1000) + " s after its restart, with no other fault active");
    return false;
}

bool nemesis::wait_repaired(std::uint64_t& took_ms) {
    // With every node up from pass S on (S completed), pass S + 2 is the first to inventory the
    // wiped node and finds its chunks missing (suspects, presumed fresh), pass S + 3 drops it as
    // their holder and repairs (toastyfs/janitor.hpp), at most repairs_per_pass_max a pass. Done
    // when a pass after S + 3 repaired nothing. Two passes were not enough: a second wipe 11 s
    // later found chunks whose only copy it deleted (seed 5, 300 s, kill_all,wipe_disk,kill_primary).
    constexpr std::uint64_t repair_timeout_ms = 90'000;
    const std::uint64_t start = now_ns();
    bool was_healthy = false;
    std::uint64_t healthy_since = 0;  // passes completed when health last began
    std::uint64_t passes_seen = 0;    // passes completed at the last poll, and repairs by then
    std::uint64_t repairs_seen = 0;
    std::string last = "no status from the proxy";
    while (!cancelled_ && now_ns() - start < repair_timeout_ms * 1'000'000ull) {
        const auto s = cluster_.status();
        bool healthy = s && s->nodes.size() == cluster_.nodes();
        for (std::size_t i = 0; healthy && i < s->nodes.size(); ++i)
            healthy = s->nodes[i].normal && s->nodes[i].chunk_server_up;
        if (healthy && !was_healthy) healthy_since = s->janitor_passes_completed;
        was_healthy = healthy;
        took_ms = (now_ns() - start) / 1'000'000;
        if (healthy && s->janitor_passes_completed != passes_seen) {
            const bool quiet_pass = passes_seen >= healthy_since + 3 && s->repairs == repairs_seen;
            if (quiet_pass) return true;
            passes_seen = s->janitor_passes_completed;
            repairs_seen = s->repairs;
            last = std::to_string(passes_seen - healthy_since) + " passes with every node up, " +
                   std::to_string(repairs_seen) + " repairs in all";
        }
        hold(200);
    }
    if (!cancelled_)
        stuck_.push_back("the janitor did not finish repairing a wiped node's chunks " +
                         std::to_string(repair_timeout_ms / 1000) + " s after it recovered (" + last + ")");
    return false;
}

void nemesis::kill_and_restart(fault_record& f, bool prefer_primary) {
    const std::uint32_t node = pick_node(prefer_primary);
    f.detail = "node " + std::to_string(node + 1);
    f.start_ns = now_ns();  // picking the primary asks the proxy (up to 2 s): the kill starts now
    cluster_.kill_node(node);
    hold(between(200, options_.hold_ms_max));
    std::string error;
    if (!cluster_.restart_node(node, error)) note_error(error);
    wait_recovered(node);
}

void nemesis::pause(fault_record& f) {
    const std::uint32_t node = pick_node(random_() % 2 == 0);
    f.detail = "node " + std::to_string(node + 1);
    f.start_ns = now_ns();
    cluster_.pause_node(node);
    hold(between(300, options_.hold_ms_max));
    cluster_.resume_node(node);
}

void nemesis::delay_by_pauses(fault_record& f) {
    const std::uint32_t node = pick_node(random_() % 2 == 0);
    const std::uint64_t until = now_ns() + between(1000, options_.hold_ms_max) * 1'000'000ull;
    std::uint64_t pauses = 0;
    while (!cancelled_ && now_ns() < until) {
        cluster_.pause_node(node);
        hold(between(20, 250));
        cluster_.resume_node(node);
        hold(between(5, 60));
        ++pauses;
    }
    f.detail = "node " + std::to_string(node + 1) + ", " + std::to_string(pauses) + " pauses of 20-250 ms";
}

void nemesis::partition(fault_record& f) {
    const std::uint32_t node = pick_node(random_() % 2 == 0);
    std::vector<std::uint32_t> peers;
    const std::uint64_t shape = random_() % 4;
    std::string what;
    if (shape == 0) {  // from every other node and the proxy
        for (std::uint32_t p = 0; p <= cluster_.nodes(); ++p)
            if (p != node) peers.push_back(p);
        what = "isolated from everyone";
    } else if (shape == 1) {  // from the other nodes; the proxy still reaches it
        for (std::uint32_t p = 0; p < cluster_.nodes(); ++p)
            if (p != node) peers.push_back(p);
        what = "isolated from the other nodes";
    } else if (shape == 2) {  // from the proxy only
        peers.push_back(cluster_.nodes());
        what = "isolated from the proxy";
    } else {  // one peer, one way
        std::uint32_t peer = static_cast<std::uint32_t>(random_() % (cluster_.nodes() - 1));
        if (peer >= node) ++peer;
        peers.push_back(peer);
        what = "cannot send to node " + std::to_string(peer + 1) + " (one way)";
    }
    f.detail = "node " + std::to_string(node + 1) + " " + what;
    f.start_ns = now_ns();
    std::string error;
    if (!cluster_.block(node, peers, shape == 3, error)) note_error(error);
    hold(between(500, options_.hold_ms_max));
    if (!cluster_.heal_network(node, error)) note_error(error);
}

void nemesis::packet_loss(fault_record& f) {
    const std::uint32_t percent = static_cast<std::uint32_t>(between(5, 40));
    f.detail = std::to_string(percent) + "% on every node";
    std::string error;
    for (std::uint32_t n = 0; n < cluster_.nodes(); ++n)
        if (!cluster_.lose(n, percent, error)) note_error(error);
    hold(between(1000, options_.hold_ms_max));
    if (!cluster_.heal_all_networks(error)) note_error(error);
}

void nemesis::duplication(fault_record& f) {
    std::string error;
    std::uint32_t count = 0;
    for (std::uint32_t n = 0; n < cluster_.nodes(); ++n) {
        if (random_() % 2 == 0 && n + 1 < cluster_.nodes()) continue;
        if (!cluster_.duplicate(n, error)) note_error(error);
        f.detail += (count++ ? ", node " : "every packet sent by node ") + std::to_string(n + 1);
    }
    hold(between(1000, options_.hold_ms_max));
    if (!cluster_.heal_all_networks(error)) note_error(error);
}

void nemesis::loss_and_crash(fault_record& f) {
    const std::uint32_t percent = static_cast<std::uint32_t>(between(5, 20));
    std::string error;
    for (std::uint32_t n = 0; n < cluster_.nodes(); ++n)
        if (!cluster_.lose(n, percent, error)) note_error(error);
    hold(between(200, 1000));
    const std::uint32_t node = pick_node(true);
    f.detail = std::to_string(percent) + "% loss, kill -9 of node " + std::to_string(node + 1);
    cluster_.kill_node(node);
    hold(between(200, options_.hold_ms_max / 2));
    if (!cluster_.restart_node(node, error)) note_error(error);
    hold(between(500, 2000));  // it recovers through the loss
    if (!cluster_.heal_all_networks(error)) note_error(error);
    wait_recovered(node);
}

void nemesis::corrupt_chunk(fault_record& f) {
    // Usually a chunk of an object written moments ago (live data: the store must notice and
    // repair it), otherwise any chunk file (most are garbage awaiting collection).
    std::vector<std::pair<std::uint32_t, std::filesystem::path>> candidates;
    std::error_code ec;
    if (options_.live_chunks && random_() % 4 != 0) {
        for (const std::string& name : options_.live_chunks(random_())) {
            if (corrupted_.contains(name)) continue;
            for (std::uint32_t node = 0; node < cluster_.nodes(); ++node) {
                const std::filesystem::path path =
                    cluster_.node_data(node) + "/chunks/" + name.substr(0, 2) + "/" + name;
                if (std::filesystem::is_regular_file(path, ec)) candidates.emplace_back(node, path);
            }
        }
    }
    if (candidates.empty()) {
        const std::uint32_t node = static_cast<std::uint32_t>(random_() % cluster_.nodes());
        const std::filesystem::path root = cluster_.node_data(node) + "/chunks";
        for (auto it = std::filesystem::recursive_directory_iterator(root, ec);
             !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
            const std::string name = it->path().filename().string();
            if (it->is_regular_file(ec) && is_chunk_name(name) && !corrupted_.contains(name) &&
                it->path().parent_path().filename().string() == name.substr(0, 2))
                candidates.emplace_back(node, it->path());
        }
    }
    if (candidates.empty()) {
        f.detail = "no chunk file to corrupt";
        f.injected = false;
        return;
    }
    const auto& [node, victim] = candidates[random_() % candidates.size()];
    const int fd = ::open(victim.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        f.detail = "node " + std::to_string(node + 1) + ": " + victim.filename().string() + " vanished";
        f.injected = false;
        return;
    }
    const off_t size = ::lseek(fd, 0, SEEK_END);
    f.injected = size > 0;
    if (size > 0) {
        const off_t at = static_cast<off_t>(random_() % static_cast<std::uint64_t>(size));
        unsigned char byte = 0;
        if (::pread(fd, &byte, 1, at) == 1) {
            byte ^= static_cast<unsigned char>(1u << (random_() % 8));
            if (::pwrite(fd, &byte, 1, at) != 1) note_error("cannot write " + victim.string());
        }
        f.detail = "node " + std::to_string(node + 1) + ": one bit of chunk " +
                   victim.filename().string().substr(0, 12) + " at byte " + std::to_string(at);
        corrupted_.insert(victim.filename().string());
        corrupted_copies_.emplace(node, victim.filename().string());
    }
    ::close(fd);
}

void nemesis::kill_everything(fault_record& f) {
    if (cluster_.diskless()) {  // by design they would forget everything: not a fault to survive
        f.detail = "diskless nodes";
        f.injected = false;
        return;
    }
    // What the cluster had committed: after the restart it must know at least that much.
    std::uint64_t committed = 0;
    if (const auto s = cluster_.status())
        for (const node_status& n : s->nodes) committed = std::max(committed, n.commit);
    f.start_ns = now_ns();
    const std::uint32_t killed = cluster_.kill_all_nodes();
    const std::uint64_t down_ms = between(200, options_.hold_ms_max);
    hold(down_ms);
    std::string error;
    for (std::uint32_t n = 0; n < cluster_.nodes(); ++n)
        if (!cluster_.restart_node(n, error)) note_error(error);
    f.revived_ns = now_ns();
    f.detail = std::to_string(killed) + " nodes killed, restarted after " + std::to_string(down_ms) + " ms";
    if (killed != cluster_.nodes())
        note_error("whole-cluster kill: only " + std::to_string(killed) + " of " + std::to_string(cluster_.nodes()) +
                   " nodes were running");
    bool back = true;
    for (std::uint32_t n = 0; n < cluster_.nodes() && back; ++n) back = wait_recovered(n);
    f.end_ns = now_ns();
    const auto s = back ? cluster_.status() : std::nullopt;
    if (!s) return;
    std::uint64_t known = 0;
    for (const node_status& n : s->nodes) known = std::max(known, n.op);
    f.detail += ", back " + std::to_string((f.end_ns - f.revived_ns) / 1'000'000) + " ms later";
    if (known < committed)
        forgotten_.push_back("after the kill -9 of every node the cluster came back at op " + std::to_string(known) +
                             ", but it had committed op " + std::to_string(committed) + " before");
}

std::vector<std::uint32_t> nemesis::wipe_candidates() {
    std::vector<bool> allowed(cluster_.nodes(), true);
    for (const std::string& name : corrupted_) {
        std::vector<std::uint32_t> good;
        for (std::uint32_t node = 0; node < cluster_.nodes(); ++node) {
            std::ifstream file(cluster_.node_data(node) + "/chunks/" + name.substr(0, 2) + "/" + name,
                               std::ios::binary);
            if (!file) continue;
            const std::string bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
            const auto digest =
                platform::openssl_crypto::sha256({reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()});
            if (toastyfs::to_hex(digest) == name) good.push_back(node);
        }
        if (good.size() == 1) allowed[good[0]] = false;
    }
    std::vector<std::uint32_t> out;
    for (std::uint32_t node = 0; node < cluster_.nodes(); ++node)
        if (allowed[node]) out.push_back(node);
    return out;
}

void nemesis::wipe_disk(fault_record& f) {
    const std::vector<std::uint32_t> candidates = wipe_candidates();
    if (candidates.empty()) {
        f.detail = "every node holds the last good copy of a corrupted chunk";
        f.injected = false;
        return;
    }
    std::uint32_t node = candidates[random_() % candidates.size()];
    if (random_() % 2 == 0)
        if (const auto p = cluster_.primary();
            p && std::find(candidates.begin(), candidates.end(), *p) != candidates.end())
            node = *p;
    f.detail = "node " + std::to_string(node + 1);
    f.start_ns = now_ns();
    cluster_.kill_node(node);
    std::uint64_t files = 0;
    std::uint64_t chunks = 0;
    std::string error;
    if (!cluster_.wipe_node(node, files, chunks, error)) note_error(error);
    f.detail += ": " + std::to_string(files) + " metadata files and " + std::to_string(chunks) + " chunk files deleted";
    hold(between(200, options_.hold_ms_max / 2));
    if (!cluster_.restart_node(node, error)) note_error(error);
    const bool back = wait_recovered(node);
    f.end_ns = now_ns();
    std::uint64_t repair_ms = 0;
    if (back && wait_repaired(repair_ms))
        f.detail += "; recovered, chunks repaired " + std::to_string(repair_ms) + " ms later";
}

bool nemesis::heal_all(std::string& error) {
    bool ok = true;
    for (std::uint32_t n = 0; n < cluster_.nodes(); ++n) {
        if (cluster_.paused(n)) cluster_.resume_node(n);
        if (!cluster_.node_running(n)) ok = cluster_.restart_node(n, error) && ok;
    }
    ok = cluster_.heal_all_networks(error) && ok;
    return ok;
}

namespace {

struct kind {
    const char* name;
    std::uint32_t weight;
    bool network;     // needs network namespaces
    bool persistent;  // needs nodes that keep their metadata (not --diskless)
};
constexpr kind kinds[] = {
    {"kill", 12, false, false},    {"kill_primary", 12, false, false}, {"pause", 12, false, false},
    {"delay", 8, false, false},    {"partition", 16, true, false},     {"loss", 10, true, false},
    {"duplicate", 6, true, false}, {"loss_and_crash", 8, true, false}, {"corrupt", 10, false, false},
    {"kill_all", 5, false, true},  {"wipe_disk", 5, false, false},
};

}  // namespace

std::vector<std::string> fault_kinds() {
    std::vector<std::string> out;
    for (const kind& k : kinds) out.emplace_back(k.name);
    return out;
}

bool is_network_kind(const std::string& name) {
    for (const kind& k : kinds)
        if (name == k.name) return k.network;
    return false;
}

bool needs_persistent_nodes(const std::string& name) {
    for (const kind& k : kinds)
        if (name == k.name) return k.persistent;
    return false;
}

/// A kind still owed (requested, never injected) first, in seeded order; then by weight.
std::string nemesis::pick_kind(std::set<std::string>& owed) {
    const auto requested = [&](const kind& k) { return options_.only.empty() || options_.only.contains(k.name); };
    if (!owed.empty()) {
        auto it = owed.begin();
        std::advance(it, static_cast<std::ptrdiff_t>(random_() % owed.size()));
        return *it;
    }
    std::uint32_t total = 0;
    for (const kind& k : kinds)
        if (requested(k)) total += k.weight;
    std::uint32_t pick = static_cast<std::uint32_t>(random_() % total);
    for (const kind& k : kinds) {
        if (!requested(k)) continue;
        if (pick < k.weight) return k.name;
        pick -= k.weight;
    }
    return kinds[0].name;
}

void nemesis::apply(fault_record& f) {
    const std::size_t errors_before = errors_.size();
    const std::string& name = f.kind;
    if (name == "kill")
        kill_and_restart(f, false);
    else if (name == "kill_primary")
        kill_and_restart(f, true);
    else if (name == "pause")
        pause(f);
    else if (name == "delay")
        delay_by_pauses(f);
    else if (name == "partition")
        partition(f);
    else if (name == "loss")
        packet_loss(f);
    else if (name == "duplicate")
        duplication(f);
    else if (name == "loss_and_crash")
        loss_and_crash(f);
    else if (name == "kill_all")
        kill_everything(f);
    else if (name == "wipe_disk")
        wipe_disk(f);
    else
        corrupt_chunk(f);
    if (errors_.size() != errors_before) f.injected = false;
}

void nemesis::run() {
    std::set<std::string> owed;
    for (const kind& k : kinds)
        if (options_.only.empty() || options_.only.contains(k.name)) owed.insert(k.name);
    for (std::uint64_t rests = 1; !cancelled_ && now_ns() < options_.end_ns; ++rests) {
        // Every quiet_one_in-th rest, not a random one: the cut-GET check's share of the run must not be luck.
        const bool quiet = options_.quiet_one_in != 0 && rests % options_.quiet_one_in == 0;
        const std::uint64_t rest_ms =
            quiet ? between(options_.quiet_ms_min, options_.quiet_ms_max) : between(100, options_.rest_ms_max);
        const std::uint64_t left_ms = (options_.end_ns - std::min(options_.end_ns, now_ns())) / 1'000'000;
        hold(std::min(rest_ms, left_ms));  // a rest that would outlast the run ends it
        if (cancelled_ || rest_ms >= left_ms || now_ns() >= options_.end_ns) break;
        fault_record f;
        f.kind = pick_kind(owed);
        f.start_ns = now_ns();
        apply(f);
        if (f.end_ns == 0) f.end_ns = now_ns();  // a wipe ends when its node recovered, before the repair
        if (f.injected) owed.erase(f.kind);
        faults_.push_back(std::move(f));
    }
    std::string error;
    if (!heal_all(error)) note_error(error);
}

}  // namespace chaos
