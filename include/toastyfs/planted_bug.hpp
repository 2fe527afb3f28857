// Test-only switches that plant real bugs in the object store, so tests can prove the object
// store simulator's checkers catch them (like vsr::planted_bug for the protocol). Always `none`
// outside tests; with `none` every component behaves exactly as without the switch.
#pragma once

#include <cstdint>

namespace toastyfs {

enum class planted_bug : std::uint8_t {
    none = 0,
    gc_ignores_lease,        // janitor: deletes garbage candidates without waiting for the lease
    put_acks_one_copy,       // object_service: a chunk counts as written after its first copy
    get_skips_verification,  // object_service: a read trusts a node's bytes without SHA-256
    put_ignores_condition,   // metadata state machine: put_object ignores its condition
};

}  // namespace toastyfs
