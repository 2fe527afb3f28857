// Command-line helpers shared by every process (kv-server, kv-client, toastyfs-node,
// toastyfs-proxy): strict number and address parsing. Standard library and platform headers only.
#pragma once

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "platform/event_loop.hpp"
#include "vsr/wire.hpp"

namespace platform::cli {

/// Exit code for bad flags or arguments.
inline constexpr int exit_usage = 2;

/// Parses a whole decimal number in [min, max]; no sign, spaces or trailing characters.
inline bool parse_u64(std::string_view text, std::uint64_t min, std::uint64_t max, std::uint64_t& out) {
    if (text.empty() || text.size() > 20) return false;
    std::uint64_t value = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc{} || end != text.data() + text.size()) return false;
    if (value < min || value > max) return false;
    out = value;
    return true;
}

/// Parses "host:port,host:port,...". host is a dotted IPv4 address or "localhost".
/// Between 1 and vsr::replicas_max entries, no duplicates.
inline bool parse_replicas(std::string_view text, std::vector<platform::socket_address>& out, std::string& error) {
    out.clear();
    while (true) {
        const std::size_t comma = text.find(',');
        std::string entry(text.substr(0, comma));
        constexpr std::string_view localhost = "localhost:";
        if (entry.starts_with(localhost)) entry = "127.0.0.1:" + entry.substr(localhost.size());
        platform::socket_address address;
        if (!platform::parse_socket_address(entry, address) || address.port == 0) {
            error = "bad replica address '" + std::string(text.substr(0, comma)) +
                    "' (expected a.b.c.d:port or localhost:port, port 1..65535)";
            return false;
        }
        for (const auto& seen : out) {
            if (seen == address) {
                error = "replica address " + entry + " appears twice";
                return false;
            }
        }
        out.push_back(address);
        if (out.size() > vsr::replicas_max) {
            error = "too many replicas (at most " + std::to_string(vsr::replicas_max) + ")";
            return false;
        }
        if (comma == std::string_view::npos) break;
        text.remove_prefix(comma + 1);
    }
    return true;
}

}  // namespace platform::cli
