// Shared by every fuzz target (tests/fuzz/*_fuzz.cpp): a bounded reader over the fuzzer's input,
// and a check that stays on in every build mode.
//
// Each target defines LLVMFuzzerTestOneInput. Built with -Dfuzz=true it links libFuzzer; in the
// regular build it links replay_main.cpp, which runs it over the committed corpus.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

/// An invariant of the code under test. Fails loudly (abort) in every build, so libFuzzer and
/// the replay both report it as a crash.
#define FUZZ_CHECK(condition)                                                                       \
    do {                                                                                            \
        if (!(condition)) {                                                                         \
            std::fprintf(stderr, "%s:%d: FUZZ_CHECK failed: %s\n", __FILE__, __LINE__, #condition); \
            std::abort();                                                                           \
        }                                                                                           \
    } while (false)

namespace fuzz {

using bytes = std::vector<std::uint8_t>;

/// Takes values from the front of the input; once it runs dry every read returns zeros (or
/// empty spans), so a target never reads out of bounds whatever the input.
class input {
public:
    input(const std::uint8_t* data, std::size_t size) noexcept : data_(data), size_(size) {}

    bool empty() const noexcept { return at_ == size_; }
    std::size_t remaining() const noexcept { return size_ - at_; }

    std::uint8_t u8() noexcept { return at_ < size_ ? data_[at_++] : 0; }
    std::uint16_t u16() noexcept { return static_cast<std::uint16_t>(u8() | (u8() << 8)); }
    std::uint32_t u32() noexcept { return u16() | (std::uint32_t{u16()} << 16); }
    std::uint64_t u64() noexcept { return u32() | (std::uint64_t{u32()} << 32); }
    bool boolean() noexcept { return (u8() & 1) != 0; }
    /// A value in [0, bound) (0 if bound is 0), from as few bytes as the bound needs (one byte up
    /// to 256), so hand-made seeds stay readable and mutations stay local.
    std::size_t below(std::size_t bound) noexcept {
        if (bound == 0) return 0;
        if (bound <= 0x100) return u8() % bound;
        if (bound <= 0x10000) return u16() % bound;
        return u32() % bound;
    }

    /// Up to `size_max` bytes: a one- or two-byte length, then that many bytes (fewer if the
    /// input ends).
    std::span<const std::uint8_t> span(std::size_t size_max) noexcept {
        std::size_t size = u8();
        if (size == 0xFF) size = u16();
        return take(std::min(size, size_max));
    }
    std::string_view text(std::size_t size_max) noexcept { return as_text(span(size_max)); }

    /// Exactly `size` bytes or what is left.
    std::span<const std::uint8_t> take(std::size_t size) noexcept {
        size = std::min(size, remaining());
        const std::span<const std::uint8_t> out(data_ + at_, size);
        at_ += size;
        return out;
    }
    std::span<const std::uint8_t> rest() noexcept { return take(remaining()); }

private:
    const std::uint8_t* data_;
    std::size_t size_;
    std::size_t at_ = 0;

public:
    static std::string_view as_text(std::span<const std::uint8_t> s) noexcept {
        return {reinterpret_cast<const char*>(s.data()), s.size()};
    }
};

inline std::span<const std::uint8_t> as_bytes(std::string_view s) noexcept {
    return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

}  // namespace fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);
