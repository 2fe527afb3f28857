// An open-addressing hash map from string keys to string values, for the KV example.
//
// Why not std::unordered_map: a lookup there walks bucket -> node -> heap key (three cache
// misses, and libstdc++ does not cache string hashes). Here a slot holds the full 64-bit hash
// and one heap buffer with key and value together, so a lookup costs the slot plus that buffer.
// Linear probing with backward-shift deletion: no tombstones.
#pragma once

#include <cstdint>
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
        return s->value();
    }

    bool contains(std::string_view key) const noexcept { return locate(key, hash_of(key)) != nullptr; }

    void insert_or_assign(std::string_view key, std::string_view value) {
        const std::uint64_t hash = hash_of(key);
        if (slot* s = locate(key, hash)) {
            s->data.replace(s->key_size, std::string::npos, value);
            return;
        }
        if ((size_ + 1) * 8 > slots_.size() * 7) grow();
        std::size_t at = hash & mask();
        while (slots_[at].hash != 0) at = (at + 1) & mask();
        slot& s = slots_[at];
        s.hash = hash;
        s.key_size = static_cast<std::uint32_t>(key.size());
        s.data.reserve(key.size() + value.size());
        s.data.assign(key);
        s.data.append(value);
        ++size_;
    }

    /// Compare-and-set: replaces the value only if present and equal to `expected`.
    bool replace_if_equal(std::string_view key, std::string_view expected, std::string_view value) {
        slot* s = locate(key, hash_of(key));
        if (s == nullptr || s->value() != expected) return false;
        s->data.replace(s->key_size, std::string::npos, value);
        return true;
    }

    bool erase(std::string_view key) {
        slot* s = locate(key, hash_of(key));
        if (s == nullptr) return false;
        // Backward-shift: pull later entries of the probe run into the hole.
        std::size_t hole = static_cast<std::size_t>(s - slots_.data());
        for (std::size_t next = (hole + 1) & mask(); slots_[next].hash != 0; next = (next + 1) & mask()) {
            const std::size_t home = slots_[next].hash & mask();
            if (((next - home) & mask()) >= ((next - hole) & mask())) {
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
            if (s.hash != 0) f(s.key(), s.value());
        }
    }

    void clear() {
        slots_.clear();
        size_ = 0;
    }

private:
    struct slot {
        std::uint64_t hash = 0;  // 0: empty
        std::uint32_t key_size = 0;
        std::string data;        // key then value
        std::string_view key() const noexcept { return std::string_view(data).substr(0, key_size); }
        std::string_view value() const noexcept { return std::string_view(data).substr(key_size); }
    };

    static std::uint64_t hash_of(std::string_view key) noexcept {
        const std::uint64_t h = vsr::checksum({reinterpret_cast<const std::uint8_t*>(key.data()), key.size()});
        return h == 0 ? 1 : h;
    }

    std::size_t mask() const noexcept { return slots_.size() - 1; }

    slot* locate(std::string_view key, std::uint64_t hash) noexcept {
        return const_cast<slot*>(std::as_const(*this).locate(key, hash));
    }

    const slot* locate(std::string_view key, std::uint64_t hash) const noexcept {
        if (slots_.empty()) return nullptr;
        for (std::size_t at = hash & mask(); slots_[at].hash != 0; at = (at + 1) & mask()) {
            const slot& s = slots_[at];
            if (s.hash == hash && s.key() == key) return &s;
        }
        return nullptr;
    }

    void grow() {
        std::vector<slot> old = std::move(slots_);
        slots_ = std::vector<slot>(old.empty() ? 16 : old.size() * 2);
        for (slot& s : old) {
            if (s.hash == 0) continue;
            std::size_t at = s.hash & mask();
            while (slots_[at].hash != 0) at = (at + 1) & mask();
            slots_[at] = std::move(s);
        }
    }

    std::vector<slot> slots_;
    std::size_t size_ = 0;
};

}  // namespace kv
