// Archetypes of the vsr concepts: for each concept, a type with exactly what the concept promises
// and nothing more (no copies, no moves, no default construction unless the concept asks for
// them, no extra members, results only convertible where the concept says "convertible"). A
// template that compiles against them (tests/vsr/concepts_test.cpp) uses only what its concepts
// promise, so any type that models the concepts works with it.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "vsr/message_bus.hpp"
#include "vsr/random.hpp"
#include "vsr/state_machine.hpp"
#include "vsr/storage.hpp"
#include "vsr/time.hpp"

namespace vsr::archetypes {

/// Converts to std::size_t and does nothing else: what "convertible_to<std::size_t>" promises.
struct size_like {
    explicit size_like(std::size_t value) noexcept : value_(value) {}
    size_like(const size_like&) = delete;
    size_like& operator=(const size_like&) = delete;
    operator std::size_t() const noexcept { return value_; }

private:
    std::size_t value_;
};

/// vsr::state_machine. Default-initializable and movable (the replica takes its initial machine by
/// value), but not copyable. Executes nothing: every result is empty, the snapshot too, and
/// restore takes only that.
class state_machine {
public:
    state_machine() = default;
    state_machine(state_machine&&) = default;
    state_machine& operator=(state_machine&&) = delete;
    state_machine(const state_machine&) = delete;
    state_machine& operator=(const state_machine&) = delete;

    void execute(const operation_context&, std::span<const std::uint8_t>, std::vector<std::uint8_t>&) {}
    void snapshot(std::vector<std::uint8_t>&) const {}
    bool restore(std::span<const std::uint8_t> bytes) { return bytes.empty(); }
    size_like result_size_max() const { return size_like(0); }
};
static_assert(vsr::state_machine<state_machine>);
static_assert(!vsr::state_machine_with_queries<state_machine>);

/// vsr::state_machine_with_queries: the above plus the two const query members. Every operation
/// is a query (a pure function of the bytes, as the concept asks).
class state_machine_with_queries : public state_machine {
public:
    bool is_query(std::span<const std::uint8_t>) const { return true; }
    void query(std::span<const std::uint8_t>, std::vector<std::uint8_t>&) const {}
};
static_assert(vsr::state_machine_with_queries<state_machine_with_queries>);

/// vsr::state_machine_with_incremental_snapshot: the above plus the three snapshot steps. Its
/// snapshot is empty, so the first step completes it.
class state_machine_with_incremental_snapshot : public state_machine {
public:
    void snapshot_begin() {}
    bool snapshot_step(std::vector<std::uint8_t>&, std::size_t) { return true; }
    void snapshot_abandon() {}
};
static_assert(vsr::state_machine_with_incremental_snapshot<state_machine_with_incremental_snapshot>);
static_assert(!vsr::state_machine_with_incremental_snapshot<state_machine>);

/// vsr::state_machine_with_stored_state: the base archetype plus a store that holds nothing.
class state_machine_with_stored_state : public state_machine {
public:
    vsr::stored_state open_stored(std::uint64_t&, std::vector<std::uint8_t>&) { return vsr::stored_state::empty; }
    bool clear_stored() { return true; }
    bool store_checkpoint(std::uint64_t, std::span<const std::uint8_t>) { return true; }
    bool failed() const { return false; }
    std::uint64_t digest() const { return 0; }
    std::uint64_t export_size() const { return 0; }
    vsr::export_status export_part(std::uint64_t, std::span<const std::uint8_t>, std::size_t,
                                   std::vector<std::uint8_t>&, std::vector<std::uint8_t>&) {
        return vsr::export_status::unavailable;
    }
    void export_end() {}
    void import_begin() {}
    bool import_part(std::span<const std::uint8_t>) { return false; }
    std::uint64_t import_digest() const { return 0; }
    bool import_finish(std::uint64_t, std::span<const std::uint8_t>) { return false; }
    void import_abandon() {}
};
static_assert(vsr::state_machine_with_stored_state<state_machine_with_stored_state>);
static_assert(!vsr::state_machine_with_stored_state<state_machine>);

/// vsr::message_bus. Drops every message (the concept allows it).
class message_bus {
public:
    explicit message_bus(int) noexcept {}
    message_bus(const message_bus&) = delete;
    message_bus& operator=(const message_bus&) = delete;

    void send_to_replica(std::uint8_t, std::span<const std::uint8_t>) {}
    void send_to_client(std::uint64_t, std::span<const std::uint8_t>) {}
};
static_assert(vsr::message_bus<message_bus>);

/// vsr::time_source. A clock stopped at zero.
class time_source {
public:
    explicit time_source(int) noexcept {}
    time_source(const time_source&) = delete;
    time_source& operator=(const time_source&) = delete;

    std::uint64_t monotonic_ns() { return 0; }
    std::uint64_t realtime_ns() { return 0; }
};
static_assert(vsr::time_source<time_source>);

/// vsr::random_source. A counter: deterministic, and never repeats, so loops that draw until
/// they find an unused value terminate.
class random_source {
public:
    explicit random_source(int) noexcept {}
    random_source(const random_source&) = delete;
    random_source& operator=(const random_source&) = delete;

    std::uint64_t next_u64() { return ++state_; }

private:
    std::uint64_t state_ = 0;
};
static_assert(vsr::random_source<random_source>);

/// vsr::storage: persistent, every zone a byte vector, every write durable at once.
class storage {
public:
    explicit storage(int) noexcept {}
    storage(const storage&) = delete;
    storage& operator=(const storage&) = delete;

    bool persistent() const noexcept { return true; }
    bool read(vsr::zone z, std::uint64_t offset, std::span<std::uint8_t> out) {
        const std::vector<std::uint8_t>& bytes = zones_[static_cast<std::size_t>(z)];
        for (std::size_t i = 0; i < out.size(); ++i) out[i] = offset + i < bytes.size() ? bytes[offset + i] : 0;
        return true;
    }
    bool write(vsr::zone z, std::uint64_t offset, std::span<const std::uint8_t> bytes) {
        std::vector<std::uint8_t>& zone = zones_[static_cast<std::size_t>(z)];
        if (zone.size() < offset + bytes.size()) zone.resize(offset + bytes.size());
        std::copy(bytes.begin(), bytes.end(), zone.begin() + static_cast<std::ptrdiff_t>(offset));
        return true;
    }
    bool sync() { return true; }
    std::uint64_t size(vsr::zone z) const noexcept { return zones_[static_cast<std::size_t>(z)].size(); }

private:
    std::array<std::vector<std::uint8_t>, vsr::zone_count> zones_;
};
static_assert(vsr::storage<storage>);

}  // namespace vsr::archetypes
