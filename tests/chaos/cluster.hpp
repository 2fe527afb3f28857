#pragma once

// The real cluster under test: three toastyfs-node processes and one toastyfs-proxy.
//
// With network namespaces (root, iproute2, nftables), every node runs in its own namespace
// (tfc<pid>-n<i>, address 10.213.0.<i+1> on a veth), joined by a bridge in a hub namespace
// (tfc<pid>-hub, 10.213.0.254) where the proxy and the nemesis itself run; the proxy listens on
// the hub's own loopback. Network faults are nftables rules inside a node's namespace (inet table
// "chaos"): drops for partitions, a random drop for loss, `dup` for duplication. Nothing touches
// the machine's own network. Without namespaces everything runs on 127.0.0.1 and only process
// and disk faults are possible (the caller says so).
#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace chaos {

struct cluster_options {
    std::string node_binary;
    std::string proxy_binary;
    std::string work_directory;  // data/nodeN, logs/*.log
    std::uint32_t nodes = 3;
    bool use_namespaces = true;
    std::uint16_t port_base = 0;  // loopback mode only: node N on base+N, chunks base+100+N, proxy base+200
    /// Nodes keep no metadata across restarts (toastyfs-node --diskless): every restart recovers
    /// from the others (--recovering). Persistent nodes (the default) restart from their disks and
    /// get --recovering only when their data directory was wiped.
    bool diskless = false;
    std::vector<std::string> proxy_extra_arguments;
    std::vector<std::string> node_extra_arguments;
};

struct node_status {
    bool reachable = false;
    bool normal = false;
    bool primary = false;
    bool chunk_server_up = false;
    std::uint64_t view = 0;
    std::uint64_t op = 0;
    std::uint64_t commit = 0;
    std::uint64_t quarantined = 0;
};

struct cluster_status {
    std::uint64_t replicas_connected = 0;
    std::uint64_t janitor_passes = 0;            // started
    std::uint64_t janitor_passes_completed = 0;  // not aborted
    std::uint64_t repairs = 0;
    std::uint64_t chunks_collected = 0;
    std::vector<node_status> nodes;
};

class cluster {
public:
    explicit cluster(cluster_options options) : options_(std::move(options)) {}
    cluster(const cluster&) = delete;
    cluster& operator=(const cluster&) = delete;
    ~cluster() { teardown(); }

    /// Namespaces (if used), then every node and the proxy. Moves the calling process into the
    /// hub namespace, so call it before starting any thread. Returns false with `error` set.
    bool start(std::string& error);
    /// Removes what killed runs left behind: namespaces tfc<pid>-* whose pid is gone, with every
    /// process still inside them. Returns how many namespaces were removed.
    static std::uint32_t remove_stale_namespaces();
    /// Kills every process and deletes the namespaces. Idempotent.
    void teardown();

    bool namespaces() const { return options_.use_namespaces; }
    std::uint32_t nodes() const { return options_.nodes; }
    const std::string& proxy_host() const { return proxy_host_; }
    std::uint16_t proxy_port() const { return proxy_port_; }
    std::string node_data(std::uint32_t node) const;
    std::string log_directory() const { return options_.work_directory + "/logs"; }

    // ---- process and disk faults ----
    bool diskless() const { return options_.diskless; }
    bool node_running(std::uint32_t node) const { return pids_[node] > 0; }
    void kill_node(std::uint32_t node);  // SIGKILL, reaped
    /// SIGKILL to every running node before any is reaped (a whole-cluster power loss). Returns
    /// how many were running.
    std::uint32_t kill_all_nodes();
    /// Starts a stopped node: from its disk, or with --recovering when it is diskless or its data
    /// directory was wiped and it has not recovered since (recovered()).
    bool restart_node(std::uint32_t node, std::string& error);
    /// Deletes a stopped node's whole data directory (journal, metadata store, chunks) and leaves
    /// it empty; its restarts pass --recovering until recovered(node). `removed` counts the files
    /// deleted (chunk files apart). False, with `error`, if the node runs or the directory was
    /// empty or is not empty afterwards.
    bool wipe_node(std::uint32_t node, std::uint64_t& removed, std::uint64_t& chunks_removed, std::string& error);
    /// The node was seen normal since its wipe: its disk holds a recovered replica again.
    void recovered(std::uint32_t node) { lost_data_[node] = false; }
    bool lost_data(std::uint32_t node) const { return lost_data_[node]; }
    void pause_node(std::uint32_t node);
    void resume_node(std::uint32_t node);
    bool paused(std::uint32_t node) const { return paused_[node]; }
    /// Processes that exited although nobody killed them: "node 2 exited with 134". Reaps them.
    std::vector<std::string> unexpected_exits();

    // ---- network faults (namespaces only); each replaces that node's rules ----
    /// Drops traffic between `node` and each of `peers` (both ways unless one_way: then only what
    /// `node` sends). Peer index nodes() means the proxy.
    bool block(std::uint32_t node, const std::vector<std::uint32_t>& peers, bool one_way, std::string& error);
    bool lose(std::uint32_t node, std::uint32_t percent, std::string& error);  // what it sends and receives
    bool duplicate(std::uint32_t node, std::string& error);                    // every packet it sends to a node
    bool heal_network(std::uint32_t node, std::string& error);
    bool heal_all_networks(std::string& error);

    // ---- observation ----
    /// GET /?status from the proxy (2 s deadline).
    std::optional<cluster_status> status() const;
    /// Index of the node the proxy reports as primary, if any.
    std::optional<std::uint32_t> primary() const;

private:
    bool setup_namespaces(std::string& error);
    bool in_namespace(std::uint32_t node, const std::string& nft_script, std::string& error);
    /// How a node starts: a new cluster's node (--format when persistent), a restart that
    /// reloads its disk, or one that lost its metadata (--recovering).
    enum class node_start { first, reload, recovering };
    std::vector<std::string> node_command(std::uint32_t node, node_start how) const;
    std::string node_address(std::uint32_t node) const;
    std::string namespace_name(const std::string& suffix) const;
    std::string node_namespace(std::uint32_t node) const;

    cluster_options options_;
    std::string prefix_;  // tfc<pid>
    bool namespaces_created_ = false;
    std::vector<pid_t> pids_;
    std::vector<bool> paused_;
    std::vector<bool> lost_data_;  // wiped and not yet recovered: restarts pass --recovering
    pid_t proxy_pid_ = -1;
    std::string replica_list_;
    std::string chunk_list_;
    std::string proxy_host_ = "127.0.0.1";
    std::uint16_t proxy_port_ = 3000;
};

}  // namespace chaos
