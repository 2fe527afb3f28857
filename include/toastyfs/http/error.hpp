// Error values of the HTTP layer: every refusal carries the HTTP status to answer.
//
// Nothing in include/toastyfs/http asserts on input from the network: malformed bytes give an
// `error`, and `result<T>` carries either a value or that error (std::expected is C++23).
#pragma once

#include <cassert>
#include <cstdint>
#include <string_view>
#include <utility>
#include <variant>

namespace toastyfs::http {

/// Why input was refused: the status code to answer with, and a short reason for logs.
/// `reason` always views a string literal, so an error can be kept and copied freely.
struct error {
    std::uint16_t status = 0;
    std::string_view reason;

    friend bool operator==(const error& a, const error& b) noexcept {
        return a.status == b.status && a.reason == b.reason;
    }
};

/// Either a T or an error. Reading the side that is not there is a caller bug (asserted).
template <typename T>
class [[nodiscard]] result {
public:
    result(T value) : storage_(std::in_place_index<0>, std::move(value)) {}
    result(http::error failure) : storage_(std::in_place_index<1>, failure) {}

    bool has_value() const noexcept { return storage_.index() == 0; }
    explicit operator bool() const noexcept { return has_value(); }

    T& value() & {
        assert(has_value());
        return *std::get_if<0>(&storage_);
    }
    const T& value() const& {
        assert(has_value());
        return *std::get_if<0>(&storage_);
    }
    T&& value() && {
        assert(has_value());
        return std::move(*std::get_if<0>(&storage_));
    }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }

    const http::error& error() const {
        assert(!has_value());
        return *std::get_if<1>(&storage_);
    }

private:
    std::variant<T, http::error> storage_;
};

/// Success without a value, or an error.
template <>
class [[nodiscard]] result<void> {
public:
    result() = default;
    result(http::error failure) : failure_(failure), failed_(true) {}

    bool has_value() const noexcept { return !failed_; }
    explicit operator bool() const noexcept { return has_value(); }

    const http::error& error() const {
        assert(failed_);
        return failure_;
    }

private:
    http::error failure_{};
    bool failed_ = false;
};

}  // namespace toastyfs::http
