// Planted bugs by name, both ways, for both simulators' command lines and reports.
#pragma once

#include <cstddef>
#include <string>
#include <utility>

namespace sim {

template <typename Bug, std::size_t N>
bool parse_bug_name(const std::pair<Bug, const char*> (&names)[N], const std::string& name, Bug& out) {
    for (const auto& [bug, bug_name] : names) {
        if (name == bug_name) {
            out = bug;
            return true;
        }
    }
    return false;
}

template <typename Bug, std::size_t N>
const char* bug_name(const std::pair<Bug, const char*> (&names)[N], Bug bug) {
    for (const auto& [b, name] : names) {
        if (b == bug) return name;
    }
    return "unknown";
}

}  // namespace sim
