// An ordered list of header fields (name, value) with case-insensitive lookup by name.
//
// Used by request_head (fields as received, in order, duplicates kept) and response_head (fields
// to send). The list itself validates nothing: the request parser only stores fields it has
// validated, and the response serializer refuses fields that could inject others.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "toastyfs/http/detail/text.hpp"

namespace toastyfs::http {

struct field {
    std::string name;
    std::string value;

    friend bool operator==(const field&, const field&) = default;
};

class fields {
public:
    using const_iterator = std::vector<field>::const_iterator;

    /// Appends a field; existing fields with the same name are kept.
    void add(std::string name, std::string value) { fields_.push_back(field{std::move(name), std::move(value)}); }

    /// Leaves exactly one field with this name, holding `value`: the first one is overwritten in
    /// place, later ones are removed; appended if there was none.
    void set(std::string_view name, std::string value) {
        bool seen = false;
        std::erase_if(fields_, [&](field& f) {
            if (!detail::iequals(f.name, name)) return false;
            if (seen) return true;
            seen = true;
            f.value = std::move(value);
            return false;
        });
        if (!seen) add(std::string(name), std::move(value));
    }

    /// Removes every field with this name; returns how many there were.
    std::size_t erase(std::string_view name) {
        return std::erase_if(fields_, [&](const field& f) { return detail::iequals(f.name, name); });
    }

    /// The value of the first field with this name (compared case-insensitively).
    std::optional<std::string_view> find(std::string_view name) const noexcept {
        for (const field& f : fields_) {
            if (detail::iequals(f.name, name)) return std::string_view(f.value);
        }
        return std::nullopt;
    }

    /// The values of every field with this name, in the order received.
    std::vector<std::string_view> find_all(std::string_view name) const {
        std::vector<std::string_view> values;
        for (const field& f : fields_) {
            if (detail::iequals(f.name, name)) values.emplace_back(f.value);
        }
        return values;
    }

    std::size_t count(std::string_view name) const noexcept {
        std::size_t n = 0;
        for (const field& f : fields_) n += detail::iequals(f.name, name) ? 1 : 0;
        return n;
    }
    bool contains(std::string_view name) const noexcept { return find(name).has_value(); }

    std::size_t size() const noexcept { return fields_.size(); }
    bool empty() const noexcept { return fields_.empty(); }
    void clear() noexcept { fields_.clear(); }
    const_iterator begin() const noexcept { return fields_.begin(); }
    const_iterator end() const noexcept { return fields_.end(); }
    const field& operator[](std::size_t i) const noexcept { return fields_[i]; }

private:
    std::vector<field> fields_;
};

}  // namespace toastyfs::http
