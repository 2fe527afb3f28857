// Little-endian byte codec: the one byte reader and writer for every binary format in the tree
// (VSR messages and log entries, snapshots, metadata operations and results, chunk frames).
// Every field is little-endian with an explicit width; the reader takes untrusted bytes and
// reports a short read as `false`, never by asserting.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace vsr {

// ---- fixed-offset primitives (headers with a fixed layout) ------------------------------------

inline void store_le16(std::uint8_t* p, std::uint16_t v) noexcept {
    if constexpr (std::endian::native == std::endian::big) v = __builtin_bswap16(v);
    std::memcpy(p, &v, sizeof v);
}
inline void store_le32(std::uint8_t* p, std::uint32_t v) noexcept {
    if constexpr (std::endian::native == std::endian::big) v = __builtin_bswap32(v);
    std::memcpy(p, &v, sizeof v);
}
inline void store_le64(std::uint8_t* p, std::uint64_t v) noexcept {
    if constexpr (std::endian::native == std::endian::big) v = __builtin_bswap64(v);
    std::memcpy(p, &v, sizeof v);
}
inline std::uint16_t load_le16(const std::uint8_t* p) noexcept {
    std::uint16_t v;
    std::memcpy(&v, p, sizeof v);
    if constexpr (std::endian::native == std::endian::big) v = __builtin_bswap16(v);
    return v;
}
inline std::uint32_t load_le32(const std::uint8_t* p) noexcept {
    std::uint32_t v;
    std::memcpy(&v, p, sizeof v);
    if constexpr (std::endian::native == std::endian::big) v = __builtin_bswap32(v);
    return v;
}
inline std::uint64_t load_le64(const std::uint8_t* p) noexcept {
    std::uint64_t v;
    std::memcpy(&v, p, sizeof v);
    if constexpr (std::endian::native == std::endian::big) v = __builtin_bswap64(v);
    return v;
}

// ---- sequential reader and writer -------------------------------------------------------------

/// Bounds-checked sequential reader over untrusted bytes. A read that does not fit returns false,
/// leaves its output and the position unchanged, and clears ok().
class byte_reader {
public:
    explicit byte_reader(std::span<const std::uint8_t> bytes) noexcept : bytes_(bytes) {}

    bool read_u8(std::uint8_t& v) noexcept {
        if (remaining() < 1) return fail();
        v = bytes_[offset_++];
        return true;
    }
    bool read_u16(std::uint16_t& v) noexcept {
        if (remaining() < 2) return fail();
        v = load_le16(bytes_.data() + offset_);
        offset_ += 2;
        return true;
    }
    bool read_u32(std::uint32_t& v) noexcept {
        if (remaining() < 4) return fail();
        v = load_le32(bytes_.data() + offset_);
        offset_ += 4;
        return true;
    }
    bool read_u64(std::uint64_t& v) noexcept {
        if (remaining() < 8) return fail();
        v = load_le64(bytes_.data() + offset_);
        offset_ += 8;
        return true;
    }
    /// A view of the next `size` bytes (no copy); valid as long as the input is.
    bool read_span(std::size_t size, std::span<const std::uint8_t>& v) noexcept {
        if (remaining() < size) return fail();
        v = bytes_.subspan(offset_, size);
        offset_ += size;
        return true;
    }
    /// Exactly out.size() bytes, e.g. a digest (std::array converts).
    bool read_bytes(std::span<std::uint8_t> out) noexcept {
        std::span<const std::uint8_t> v;
        if (!read_span(out.size(), v)) return false;
        if (!v.empty()) std::memcpy(out.data(), v.data(), v.size());
        return true;
    }
    /// Replaces `out` with the next `size` bytes.
    bool read_bytes(std::size_t size, std::vector<std::uint8_t>& out) {
        std::span<const std::uint8_t> v;
        if (!read_span(size, v)) return false;
        out.assign(v.begin(), v.end());
        return true;
    }
    /// Replaces `out` with the next `size` bytes.
    bool read_string(std::size_t size, std::string& out) {
        std::span<const std::uint8_t> v;
        if (!read_span(size, v)) return false;
        out.assign(reinterpret_cast<const char*>(v.data()), v.size());
        return true;
    }

    std::size_t remaining() const noexcept { return bytes_.size() - offset_; }
    std::size_t offset() const noexcept { return offset_; }
    /// Every byte consumed: decoders that reject trailing bytes check this last.
    bool done() const noexcept { return offset_ == bytes_.size(); }
    /// No read has failed so far.
    bool ok() const noexcept { return ok_; }

private:
    bool fail() noexcept {
        ok_ = false;
        return false;
    }

    std::span<const std::uint8_t> bytes_;
    std::size_t offset_ = 0;
    bool ok_ = true;
};

/// Appending writer: every call adds its field at the end of `out`.
class byte_writer {
public:
    explicit byte_writer(std::vector<std::uint8_t>& out) noexcept : out_(out) {}

    void u8(std::uint8_t v) { out_.push_back(v); }
    void u16(std::uint16_t v) { store_le16(grow(2), v); }
    void u32(std::uint32_t v) { store_le32(grow(4), v); }
    void u64(std::uint64_t v) { store_le64(grow(8), v); }
    // resize + memcpy rather than insert: GCC 12 at -O3 reports a false -Warray-bounds on
    // vector::insert after a small push_back. The copy is out of line: inlined into a caller
    // whose size it cannot bound, GCC 12 reports a false -Wstringop-overflow on the memcpy, and
    // the byte loop that avoided it cost twice a memcpy per object body (callgrind, 1 KiB GET).
    void bytes(std::span<const std::uint8_t> v) {
        if (!v.empty()) append_bytes(v.data(), v.size());
    }
    void string(std::string_view v) {
        bytes(std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(v.data()), v.size()));
    }
    std::size_t size() const noexcept { return out_.size(); }

private:
    std::uint8_t* grow(std::size_t n) {
        out_.resize(out_.size() + n);
        return out_.data() + out_.size() - n;
    }
    [[gnu::noinline]] void append_bytes(const std::uint8_t* data, std::size_t size) {
        std::memcpy(grow(size), data, size);
    }
    std::vector<std::uint8_t>& out_;
};

}  // namespace vsr
