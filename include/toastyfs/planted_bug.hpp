// Test-only switches that plant real bugs in the object store, so tests can prove the object
// store simulator's checkers catch them (like vsr::planted_bug for the protocol). Always `none`
// outside tests; with `none` every component behaves exactly as without the switch.
#pragma once

#include <cstdint>
#include <string_view>

namespace toastyfs {

enum class planted_bug : std::uint8_t {
    none = 0,
    gc_ignores_lease,        // janitor: deletes garbage candidates without waiting for the lease
    put_acks_one_copy,       // object_service: a chunk counts as written after its first copy
    get_skips_verification,  // object_service: a read trusts a node's bytes without SHA-256
    put_ignores_condition,   // metadata state machine: put_object ignores its condition
    janitor_skips_repair,    // janitor: never copies a chunk that has fewer than replication_factor copies
    read_tries_one_node,     // object_service: a read gives up on a chunk after one node failed
};

/// For the processes' --planted-bug flag (tests/chaos). False for an unknown name.
inline bool parse_planted_bug(std::string_view name, planted_bug& out) {
    if (name == "gc_ignores_lease")
        out = planted_bug::gc_ignores_lease;
    else if (name == "put_acks_one_copy")
        out = planted_bug::put_acks_one_copy;
    else if (name == "get_skips_verification")
        out = planted_bug::get_skips_verification;
    else if (name == "put_ignores_condition")
        out = planted_bug::put_ignores_condition;
    else if (name == "janitor_skips_repair")
        out = planted_bug::janitor_skips_repair;
    else if (name == "read_tries_one_node")
        out = planted_bug::read_tries_one_node;
    else
        return false;
    return true;
}

}  // namespace toastyfs
