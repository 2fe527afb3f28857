// An open-addressing hash map from string keys to string values, for the KV example.
//
// Why not std::unordered_map: a lookup there walks bucket -> node -> heap key (three cache
// misses, and libstdc++ does not cache string hashes). Here a 16-byte slot holds the full 64-bit
// hash and a pointer to one heap node with key and value together, so the slot array stays
// small enough to stay cached and a lookup costs about one miss, on the node.
// Linear probing with backward-shift deletion: no tombstones.
//
// An entry's home slot is the top bits of its hash, so slots follow hash order (up to the
// displacement of probing): for_each_in_hash_range visits the entries of a hash interval by
// scanning only the slots that interval maps to. The KV state machine serialises its snapshot
// in hash order, one interval at a time (kv_state_machine.hpp).
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "vsr/checksum.hpp"

namespace kv {

class flat_map {
public:
    std::size_t size() const noexcept { return size_; }

    /// The value stored under `key`; valid until the map is next modified.
    std::optional<std::string_view> find(std::string_view key) const noexcept {
        const slot* s = locate(key, hash_of(key));
        if (s == nullptr) return std::nullopt;
        return s->entry.value();
    }

    bool contains(std::string_view key) const noexcept { return locate(key, hash_of(key)) != nullptr; }

    void insert_or_assign(std::string_view key, std::string_view value) {
        const std::uint64_t hash = hash_of(key);
        if (slot* s = locate(key, hash)) {
            s->entry.set_value(value);
            return;
        }
        if ((size_ + 1) * 8 > slots_.size() * 7) grow();
        std::size_t at = home(hash);
        while (slots_[at].hash != 0) at = (at + 1) & mask();
        slots_[at] = slot{hash, entry_node(key, value)};
        ++size_;
    }

    /// Compare-and-set: replaces the value only if present and equal to `expected`.
    bool replace_if_equal(std::string_view key, std::string_view expected, std::string_view value) {
        slot* s = locate(key, hash_of(key));
        if (s == nullptr || s->entry.value() != expected) return false;
        s->entry.set_value(value);
        return true;
    }

    bool erase(std::string_view key) {
        slot* s = locate(key, hash_of(key));
        if (s == nullptr) return false;
        // Backward-shift: pull later entries of the probe run into the hole.
        std::size_t hole = static_cast<std::size_t>(s - slots_.data());
        for (std::size_t next = (hole + 1) & mask(); slots_[next].hash != 0; next = (next + 1) & mask()) {
            const std::size_t next_home = home(slots_[next].hash);
            if (((next - next_home) & mask()) >= ((next - hole) & mask())) {
                slots_[hole] = std::move(slots_[next]);
                hole = next;
            }
        }
        slots_[hole] = slot{};
        --size_;
        return true;
    }

    /// Calls f(key, value) for every entry, in unspecified order.
    template <typename Function>
    void for_each(Function&& f) const {
        for (const slot& s : slots_) {
            if (s.hash != 0) f(s.entry.key(), s.entry.value());
        }
    }

    /// Calls f(hash, key, value) for every entry whose hash lies in [low, high], in unspecified
    /// order. Scans the slots the interval maps to, plus the probe run spilling past them.
    template <typename Function>
    void for_each_in_hash_range(std::uint64_t low, std::uint64_t high, Function&& f) const {
        if (slots_.empty() || low > high) return;
        const std::size_t first = home(low);
        const std::size_t homes = home(high) - first + 1;
        // An entry lies between its home and the first empty slot after it, so the entries of the
        // interval lie in its homes and the run that continues past the last one.
        for (std::size_t i = 0; i < slots_.size(); ++i) {
            const slot& s = slots_[(first + i) & mask()];
            if (s.hash == 0) {
                if (i >= homes) break;
                continue;
            }
            if (s.hash >= low && s.hash <= high) f(s.hash, s.entry.key(), s.entry.value());
        }
    }

    /// The last hash of the interval that covers `homes` table slots from low's slot on (the top
    /// of the hash range if that is past it): one for_each_in_hash_range scan's worth.
    std::uint64_t hash_span_end(std::uint64_t low, std::size_t homes) const noexcept {
        if (slots_.empty()) return ~std::uint64_t{0};
        const std::uint64_t span = homes >= (std::size_t{1} << (64 - shift_)) ? 0 : std::uint64_t{homes} << shift_;
        const std::uint64_t start = low >> shift_ << shift_;
        if (span == 0 || start > ~std::uint64_t{0} - span) return ~std::uint64_t{0};
        return start + span - 1;
    }

    /// Sizes the table for `count` entries at once. Inserting many entries in hash order (a
    /// snapshot being restored) needs it: growing on the way would pack the early, low-hash
    /// entries into one long probe run.
    void reserve(std::size_t count) {
        while ((count + 1) * 8 > slots_.size() * 7) grow();
    }

    void clear() {
        slots_.clear();
        shift_ = 64;
        size_ = 0;
    }

    static std::uint64_t hash_of(std::string_view key) noexcept {
        const std::uint64_t h = vsr::checksum({reinterpret_cast<const std::uint8_t*>(key.data()), key.size()});
        return h == 0 ? 1 : h;
    }

private:
    /// One heap block: u32 key size | u32 value size | u32 capacity | key | value.
    class entry_node {
    public:
        entry_node() = default;
        entry_node(std::string_view key, std::string_view value) { assign(key, value, key.size() + value.size()); }
        std::string_view key() const noexcept { return {bytes_.get() + header, field(0)}; }
        std::string_view value() const noexcept { return {bytes_.get() + header + field(0), field(1)}; }
        void set_value(std::string_view value) {
            if (field(0) + value.size() > field(2)) {
                const std::string key_copy(key());
                assign(key_copy, value, key_copy.size() + value.size());
                return;
            }
            if (!value.empty()) std::memcpy(bytes_.get() + header + field(0), value.data(), value.size());
            set_field(1, value.size());
        }

    private:
        static constexpr std::size_t header = 12;
        std::size_t field(std::size_t i) const noexcept {
            std::uint32_t v;
            std::memcpy(&v, bytes_.get() + 4 * i, 4);
            return v;
        }
        void set_field(std::size_t i, std::size_t v) noexcept {
            const auto narrow = static_cast<std::uint32_t>(v);
            std::memcpy(bytes_.get() + 4 * i, &narrow, 4);
        }
        void assign(std::string_view key, std::string_view value, std::size_t capacity) {
            bytes_ = std::make_unique_for_overwrite<char[]>(header + capacity);
            set_field(0, key.size());
            set_field(1, value.size());
            set_field(2, capacity);
            if (!key.empty()) std::memcpy(bytes_.get() + header, key.data(), key.size());
            if (!value.empty()) std::memcpy(bytes_.get() + header + key.size(), value.data(), value.size());
        }
        std::unique_ptr<char[]> bytes_;
    };
    struct slot {
        std::uint64_t hash = 0;  // 0: empty
        entry_node entry;
    };

    std::size_t mask() const noexcept { return slots_.size() - 1; }
    std::size_t home(std::uint64_t hash) const noexcept { return static_cast<std::size_t>(hash >> shift_); }

    slot* locate(std::string_view key, std::uint64_t hash) noexcept {
        return const_cast<slot*>(std::as_const(*this).locate(key, hash));
    }

    const slot* locate(std::string_view key, std::uint64_t hash) const noexcept {
        if (slots_.empty()) return nullptr;
        for (std::size_t at = home(hash); slots_[at].hash != 0; at = (at + 1) & mask()) {
            const slot& s = slots_[at];
            if (s.hash == hash && s.entry.key() == key) return &s;
        }
        return nullptr;
    }

    void grow() {
        std::vector<slot> old = std::move(slots_);
        slots_ = std::vector<slot>(old.empty() ? 16 : old.size() * 2);
        shift_ = old.empty() ? 60 : shift_ - 1;
        for (slot& s : old) {
            if (s.hash == 0) continue;
            std::size_t at = home(s.hash);
            while (slots_[at].hash != 0) at = (at + 1) & mask();
            slots_[at] = std::move(s);
        }
    }

    std::vector<slot> slots_;
    unsigned shift_ = 64;  // home(hash) = hash >> shift_: 64 - log2(slots)
    std::size_t size_ = 0;
};

}  // namespace kv
