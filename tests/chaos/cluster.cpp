#include "cluster.hpp"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>

#include "http_client.hpp"
#include "process.hpp"

namespace chaos {

namespace {

constexpr const char* subnet = "10.213.0.";
constexpr const char* hub_address = "10.213.0.254";
constexpr std::uint16_t replica_port = 7000;
constexpr std::uint16_t chunk_port = 7100;

std::uint64_t number_after(std::string_view text, std::string_view key) {
    const std::size_t at = text.find(key);
    if (at == std::string_view::npos) return 0;
    std::uint64_t value = 0;
    const char* begin = text.data() + at + key.size();
    std::from_chars(begin, text.data() + text.size(), value);
    return value;
}

}  // namespace

std::string cluster::namespace_name(const std::string& suffix) const { return prefix_ + "-" + suffix; }

std::string cluster::node_namespace(std::uint32_t node) const {
    std::string name = prefix_ + "-n";
    name += std::to_string(node);
    return name;
}

std::string cluster::node_address(std::uint32_t node) const {
    return options_.use_namespaces ? subnet + std::to_string(node + 1) : "127.0.0.1";
}

std::string cluster::node_data(std::uint32_t node) const {
    return options_.work_directory + "/data/node" + std::to_string(node + 1);
}

std::uint32_t cluster::remove_stale_namespaces() {
    std::uint32_t removed = 0;
    std::error_code ec;
    for (auto it = std::filesystem::directory_iterator("/run/netns", ec);
         !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
        const std::string name = it->path().filename().string();
        if (!name.starts_with("tfc")) continue;
        pid_t owner = 0;
        const auto r = std::from_chars(name.data() + 3, name.data() + name.size(), owner);
        if (r.ec != std::errc() || *r.ptr != '-' || owner <= 0 || ::kill(owner, 0) == 0 || errno != ESRCH) continue;
        std::string pids;
        run({"ip", "netns", "pids", name}, {}, &pids);
        for (std::size_t at = 0; at < pids.size();) {
            pid_t pid = 0;
            const auto p = std::from_chars(pids.data() + at, pids.data() + pids.size(), pid);
            if (p.ec == std::errc() && pid > 0) ::kill(pid, SIGKILL);
            const std::size_t line = pids.find('\n', at);
            at = line == std::string::npos ? pids.size() : line + 1;
        }
        if (run({"ip", "netns", "del", name}) == 0) ++removed;
    }
    return removed;
}

bool cluster::setup_namespaces(std::string& error) {
    const std::string hub = namespace_name("hub");
    std::vector<std::vector<std::string>> steps = {
        {"ip", "netns", "add", hub},
        {"ip", "-n", hub, "link", "set", "lo", "up"},
        {"ip", "-n", hub, "link", "add", "br0", "type", "bridge"},
        {"ip", "-n", hub, "addr", "add", std::string(hub_address) + "/24", "dev", "br0"},
        {"ip", "-n", hub, "link", "set", "br0", "up"},
    };
    for (std::uint32_t i = 0; i < options_.nodes; ++i) {
        const std::string ns = node_namespace(i);
        const std::string hub_end = prefix_ + "v" + std::to_string(i);
        steps.push_back({"ip", "netns", "add", ns});
        steps.push_back({"ip", "-n", ns, "link", "set", "lo", "up"});
        steps.push_back({"ip", "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", hub_end, "netns", hub});
        steps.push_back({"ip", "-n", ns, "addr", "add", node_address(i) + "/24", "dev", "eth0"});
        steps.push_back({"ip", "-n", ns, "link", "set", "eth0", "up"});
        steps.push_back({"ip", "-n", hub, "link", "set", hub_end, "master", "br0"});
        steps.push_back({"ip", "-n", hub, "link", "set", hub_end, "up"});
    }
    namespaces_created_ = true;
    for (const auto& step : steps) {
        std::string output;
        const int status = run(step, {}, &output);
        if (status != 0) {
            error = describe_failure(step, status, output);
            return false;
        }
    }
    for (std::uint32_t i = 0; i < options_.nodes; ++i)
        if (!heal_network(i, error)) return false;
    // Join the hub: the proxy (a child) and the workload's sockets live there from now on.
    const std::string path = "/run/netns/" + hub;
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || ::setns(fd, CLONE_NEWNET) != 0) {
        error = "cannot enter " + path + ": " + std::strerror(errno);
        if (fd >= 0) ::close(fd);
        return false;
    }
    ::close(fd);
    return true;
}

std::vector<std::string> cluster::node_command(std::uint32_t node, node_start how) const {
    std::vector<std::string> argv;
    if (options_.use_namespaces) argv = {"/usr/bin/env", "ip", "netns", "exec", node_namespace(node)};
    argv.push_back(options_.node_binary);
    const std::uint16_t chunks =
        options_.use_namespaces ? chunk_port : static_cast<std::uint16_t>(options_.port_base + 100 + node);
    argv.insert(argv.end(), {"--index", std::to_string(node), "--replicas", replica_list_, "--chunk-listen",
                             node_address(node) + ":" + std::to_string(chunks), "--data", node_data(node)});
    if (options_.diskless) argv.push_back("--diskless");
    if (how == node_start::recovering) argv.push_back("--recovering");
    if (how == node_start::first && !options_.diskless) argv.push_back("--format");
    argv.insert(argv.end(), options_.node_extra_arguments.begin(), options_.node_extra_arguments.end());
    return argv;
}

bool cluster::start(std::string& error) {
    prefix_ = "tfc" + std::to_string(::getpid());
    std::filesystem::create_directories(log_directory());
    for (std::uint32_t i = 0; i < options_.nodes; ++i) {
        const std::uint16_t metadata =
            options_.use_namespaces ? replica_port : static_cast<std::uint16_t>(options_.port_base + i);
        const std::uint16_t chunks =
            options_.use_namespaces ? chunk_port : static_cast<std::uint16_t>(options_.port_base + 100 + i);
        // (+= piecewise: GCC 12 -O3 warns falsely about "literal" + std::string temporaries.)
        if (i) {
            replica_list_ += ',';
            chunk_list_ += ',';
        }
        replica_list_ += node_address(i);
        replica_list_ += ':';
        replica_list_ += std::to_string(metadata);
        chunk_list_ += node_address(i);
        chunk_list_ += ':';
        chunk_list_ += std::to_string(chunks);
        std::filesystem::create_directories(node_data(i));
    }
    if (options_.use_namespaces && !setup_namespaces(error)) return false;
    if (!options_.use_namespaces) proxy_port_ = static_cast<std::uint16_t>(options_.port_base + 200);
    pids_.assign(options_.nodes, -1);
    paused_.assign(options_.nodes, false);
    lost_data_.assign(options_.nodes, false);
    for (std::uint32_t i = 0; i < options_.nodes; ++i) {
        pids_[i] = spawn(node_command(i, node_start::first), log_directory() + "/node" + std::to_string(i + 1) + ".log",
                         error);
        if (pids_[i] < 0) return false;
    }
    std::vector<std::string> proxy = {options_.proxy_binary,
                                      "--replicas",
                                      replica_list_,
                                      "--chunk-nodes",
                                      chunk_list_,
                                      "--listen",
                                      proxy_host_ + ":" + std::to_string(proxy_port_)};
    proxy.insert(proxy.end(), options_.proxy_extra_arguments.begin(), options_.proxy_extra_arguments.end());
    proxy_pid_ = spawn(proxy, log_directory() + "/proxy.log", error);
    return proxy_pid_ > 0;
}

void cluster::teardown() {
    for (std::size_t i = 0; i < pids_.size(); ++i) {
        if (pids_[i] <= 0) continue;
        ::kill(pids_[i], SIGKILL);
        ::waitpid(pids_[i], nullptr, 0);
        pids_[i] = -1;
    }
    if (proxy_pid_ > 0) {
        ::kill(proxy_pid_, SIGKILL);
        ::waitpid(proxy_pid_, nullptr, 0);
        proxy_pid_ = -1;
    }
    if (namespaces_created_) {
        for (std::uint32_t i = 0; i < options_.nodes; ++i) run({"ip", "netns", "del", node_namespace(i)});
        run({"ip", "netns", "del", namespace_name("hub")});
        namespaces_created_ = false;
    }
}

void cluster::kill_node(std::uint32_t node) {
    if (pids_[node] <= 0) return;
    ::kill(pids_[node], SIGKILL);
    ::waitpid(pids_[node], nullptr, 0);
    pids_[node] = -1;
    paused_[node] = false;
}

std::uint32_t cluster::kill_all_nodes() {
    std::uint32_t killed = 0;
    for (std::uint32_t i = 0; i < pids_.size(); ++i)
        if (pids_[i] > 0 && ::kill(pids_[i], SIGKILL) == 0) ++killed;
    for (std::uint32_t i = 0; i < pids_.size(); ++i) kill_node(i);
    return killed;
}

bool cluster::restart_node(std::uint32_t node, std::string& error) {
    if (pids_[node] > 0) return true;
    const bool recovering = options_.diskless || lost_data_[node];
    pids_[node] = spawn(node_command(node, recovering ? node_start::recovering : node_start::reload),
                        log_directory() + "/node" + std::to_string(node + 1) + ".log", error);
    return pids_[node] > 0;
}

bool cluster::wipe_node(std::uint32_t node, std::uint64_t& removed, std::uint64_t& chunks_removed, std::string& error) {
    const std::string data = node_data(node);
    if (pids_[node] > 0) {
        error = "cannot wipe " + data + ": node " + std::to_string(node + 1) + " is running";
        return false;
    }
    removed = 0;
    chunks_removed = 0;
    std::error_code ec;
    for (auto it = std::filesystem::recursive_directory_iterator(data, ec);
         !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
        if (!it->is_regular_file(ec)) continue;
        ++(it->path().string().starts_with(data + "/chunks/") ? chunks_removed : removed);
    }
    if (removed + chunks_removed == 0) {
        error = "cannot wipe " + data + ": it holds no file";
        return false;
    }
    lost_data_[node] = true;  // from here on a restart must recover, whatever is left
    std::filesystem::remove_all(data, ec);
    if (!ec) std::filesystem::create_directories(data, ec);
    const bool empty = !ec && std::filesystem::is_empty(data, ec) && !ec;
    if (!empty) error = "cannot wipe " + data + ": " + (ec ? ec.message() : std::string("files remain"));
    return empty;
}

void cluster::pause_node(std::uint32_t node) {
    if (pids_[node] <= 0) return;
    ::kill(pids_[node], SIGSTOP);
    paused_[node] = true;
}

void cluster::resume_node(std::uint32_t node) {
    if (pids_[node] > 0) ::kill(pids_[node], SIGCONT);
    paused_[node] = false;
}

std::vector<std::string> cluster::unexpected_exits() {
    std::vector<std::string> found;
    const auto check = [&](pid_t& pid, const std::string& name) {
        if (pid <= 0) return;
        int status = 0;
        if (::waitpid(pid, &status, WNOHANG) != pid) return;
        found.push_back(name + " (pid " + std::to_string(pid) + ") exited on its own with " +
                        (WIFSIGNALED(status) ? "signal " + std::to_string(WTERMSIG(status))
                                             : "status " + std::to_string(WEXITSTATUS(status))));
        pid = -1;
    };
    for (std::uint32_t i = 0; i < pids_.size(); ++i) check(pids_[i], "node " + std::to_string(i + 1));
    check(proxy_pid_, "proxy");
    return found;
}

bool cluster::in_namespace(std::uint32_t node, const std::string& nft_script, std::string& error) {
    if (!options_.use_namespaces) {
        error = "network faults need network namespaces";
        return false;
    }
    const std::vector<std::string> argv = {"ip", "netns", "exec", node_namespace(node), "nft", "-f", "-"};
    std::string output;
    const int status = run(argv, nft_script, &output);
    if (status != 0) {
        error = describe_failure(argv, status, output);
        return false;
    }
    return true;
}

namespace {

// The whole table is replaced at once, so a node has exactly the rules of its latest fault.
std::string nft_table(const std::string& output_rules, const std::string& input_rules) {
    return "table ip chaos\ndelete table ip chaos\ntable ip chaos {\n"
           "  chain out { type filter hook output priority 0; policy accept;\n" +
           output_rules +
           "  }\n"
           "  chain in { type filter hook input priority 0; policy accept;\n" +
           input_rules + "  }\n}\n";
}

}  // namespace

bool cluster::block(std::uint32_t node, const std::vector<std::uint32_t>& peers, bool one_way, std::string& error) {
    std::string set;
    for (std::uint32_t peer : peers) {
        set += set.empty() ? "" : ", ";
        set += peer == options_.nodes ? std::string(hub_address) : node_address(peer);
    }
    if (set.empty()) return heal_network(node, error);
    const std::string out = "    ip daddr { " + set + " } drop\n";
    const std::string in = one_way ? "" : "    ip saddr { " + set + " } drop\n";
    return in_namespace(node, nft_table(out, in), error);
}

bool cluster::lose(std::uint32_t node, std::uint32_t percent, std::string& error) {
    const std::string rule = "    oifname \"eth0\" numgen random mod 100 < " + std::to_string(percent) + " drop\n";
    const std::string in_rule = "    iifname \"eth0\" numgen random mod 100 < " + std::to_string(percent) + " drop\n";
    return in_namespace(node, nft_table(rule, in_rule), error);
}

bool cluster::duplicate(std::uint32_t node, std::string& error) {
    std::string rules;
    for (std::uint32_t peer = 0; peer <= options_.nodes; ++peer) {
        if (peer == node) continue;
        const std::string address = peer == options_.nodes ? std::string(hub_address) : node_address(peer);
        rules += "    ip daddr " + address + " dup to " + address + "\n";
    }
    return in_namespace(node, nft_table(rules, ""), error);
}

bool cluster::heal_network(std::uint32_t node, std::string& error) {
    if (!options_.use_namespaces) return true;
    return in_namespace(node, nft_table("", ""), error);
}

bool cluster::heal_all_networks(std::string& error) {
    bool ok = true;
    for (std::uint32_t i = 0; i < options_.nodes; ++i) ok = heal_network(i, error) && ok;
    return ok;
}

std::optional<cluster_status> cluster::status() const {
    http_client client(proxy_host_, proxy_port_, 2000);
    const auto response = client.request("GET", "/?status");
    if (!response || response->status != 200) return std::nullopt;
    const std::string& body = response->body;
    cluster_status out;
    out.replicas_connected = number_after(body, "\"replicas_connected\":");
    out.janitor_passes = number_after(body, "\"janitor_passes\":");
    out.janitor_passes_completed = number_after(body, "\"janitor_passes_completed\":");
    out.repairs = number_after(body, "\"repairs\":");
    out.chunks_collected = number_after(body, "\"chunks_collected\":");
    // One object per node: {"node":N,...}
    std::size_t at = 0;
    while ((at = body.find("{\"node\":", at)) != std::string::npos) {
        const std::size_t end = body.find('}', at);
        const std::string_view entry(body.data() + at, (end == std::string::npos ? body.size() : end) - at);
        node_status n;
        n.reachable = entry.find("\"status\":\"unreachable\"") == std::string_view::npos;
        n.normal = entry.find("\"status\":\"normal\"") != std::string_view::npos;
        n.primary = entry.find("\"role\":\"primary\"") != std::string_view::npos;
        n.chunk_server_up = entry.find("\"chunk_server\":\"up\"") != std::string_view::npos;
        n.view = number_after(entry, "\"view\":");
        n.op = number_after(entry, "\"op\":");
        n.commit = number_after(entry, "\"commit\":");
        n.quarantined = number_after(entry, "\"quarantined\":");
        out.nodes.push_back(n);
        at = end == std::string::npos ? body.size() : end;
    }
    return out;
}

std::optional<std::uint32_t> cluster::primary() const {
    const auto s = status();
    if (!s) return std::nullopt;
    for (std::uint32_t i = 0; i < s->nodes.size(); ++i)
        if (s->nodes[i].primary && s->nodes[i].normal) return i;
    return std::nullopt;
}

}  // namespace chaos
