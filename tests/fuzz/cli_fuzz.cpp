// Fuzz target: command-line parsing shared by every process (platform/cli.hpp: parse_u64,
// parse_replicas) and platform::parse_socket_address (platform/event_loop.hpp).
// Input: a selector byte, then the text.
// Invariants: parse_u64 agrees with a plain reference parser and honours [min, max]; a parsed
// socket address formats and parses back to itself; parse_replicas returns 1..replicas_max
// distinct addresses with non-zero ports, each of which formats and parses back, or an error
// message.
#include "platform/cli.hpp"

#include "fuzz_support.hpp"

namespace {

/// Digits only, 1..20 of them, no overflow.
bool reference_u64(std::string_view text, std::uint64_t& out) {
    if (text.empty() || text.size() > 20) return false;
    std::uint64_t value = 0;
    for (const char c : text) {
        if (c < '0' || c > '9') return false;
        const std::uint64_t digit = static_cast<std::uint64_t>(c - '0');
        if (value > (UINT64_MAX - digit) / 10) return false;
        value = value * 10 + digit;
    }
    out = value;
    return true;
}

void check_u64(fuzz::input& in) {
    std::uint64_t min = in.u64(), max = in.u64();
    if (in.boolean()) min = 0, max = UINT64_MAX;
    const std::string_view text = fuzz::input::as_text(in.rest());
    std::uint64_t parsed = 12345, expected = 0;
    const bool ok = platform::cli::parse_u64(text, min, max, parsed);
    const bool reference_ok = reference_u64(text, expected) && expected >= min && expected <= max;
    FUZZ_CHECK(ok == reference_ok);
    if (ok)
        FUZZ_CHECK(parsed == expected);
    else
        FUZZ_CHECK(parsed == 12345);  // untouched on failure
}

void check_address(std::string_view text) {
    platform::socket_address address;
    if (!platform::parse_socket_address(text, address)) return;
    platform::socket_address again;
    FUZZ_CHECK(platform::parse_socket_address(platform::to_string(address), again) && again == address);
}

void check_replicas(std::string_view text) {
    std::vector<platform::socket_address> addresses;
    std::string error;
    if (!platform::cli::parse_replicas(text, addresses, error)) {
        FUZZ_CHECK(!error.empty());
        return;
    }
    FUZZ_CHECK(!addresses.empty() && addresses.size() <= vsr::replicas_max);
    for (std::size_t i = 0; i < addresses.size(); ++i) {
        FUZZ_CHECK(addresses[i].port != 0);
        for (std::size_t j = 0; j < i; ++j) FUZZ_CHECK(!(addresses[i] == addresses[j]));
        check_address(platform::to_string(addresses[i]));
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz::input in(data, size);
    switch (in.u8() % 3) {
        case 0: check_u64(in); break;
        case 1: check_address(fuzz::input::as_text(in.rest())); break;
        case 2: check_replicas(fuzz::input::as_text(in.rest())); break;
    }
    return 0;
}
