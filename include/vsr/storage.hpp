// The Storage policy: where a persistent replica keeps its superblock, journal and checkpoints.
//
// A storage is a handful of zones, each a byte array addressed by offset (a file each, in
// platform/file_storage; byte vectors with fault injection, in sim/). vsr/journal.hpp lays the
// replica's durable state out over them and decides what is written in which order; the
// storage only moves bytes.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>

namespace vsr {

enum class zone : std::uint8_t {
    superblock = 0,       // the superblock, in several copies
    journal_headers = 1,  // one fixed-size record header per log slot: the redundant copy
    journal_bodies = 2,   // one record (header and entry) per log slot
    checkpoint_0 = 3,     // checkpoint images, alternately: the superblock names the live one
    checkpoint_1 = 4,
};
inline constexpr std::size_t zone_count = 5;

/// Requirements:
/// - persistent(): false for a diskless replica (then nothing else is called).
/// - read(zone, offset, out): fills `out` with what is durable or written there; bytes never
///   written read as zero. Returns false on an I/O error (the replica treats the data as lost).
/// - write(zone, offset, bytes): writes; visible to read() at once, durable only after sync().
///   Returns false on an I/O error or a full disk.
/// - sync(): every write before it is durable when it returns true. False on an I/O error.
/// - size(zone): bytes that can be read from the zone (0 if empty).
/// The replica stops (halted()) at the first false: it cannot promise what it cannot store.
template <typename T>
concept storage = requires(T& s, const T& cs, zone z, std::uint64_t offset, std::span<std::uint8_t> out,
                           std::span<const std::uint8_t> bytes) {
    { cs.persistent() } -> std::same_as<bool>;
    { s.read(z, offset, out) } -> std::same_as<bool>;
    { s.write(z, offset, bytes) } -> std::same_as<bool>;
    { s.sync() } -> std::same_as<bool>;
    { cs.size(z) } -> std::same_as<std::uint64_t>;
};

/// Diskless: the replica keeps everything in memory and recovers from its peers after a
/// restart (VSR Revisited's recovery protocol).
struct memory_storage {
    bool persistent() const noexcept { return false; }
    bool read(zone, std::uint64_t, std::span<std::uint8_t>) noexcept { return false; }
    bool write(zone, std::uint64_t, std::span<const std::uint8_t>) noexcept { return false; }
    bool sync() noexcept { return false; }
    std::uint64_t size(zone) const noexcept { return 0; }
};
static_assert(storage<memory_storage>);

}  // namespace vsr
