// A thin RAII layer over SQLite's C API: a connection and its prepared statements.
//
// Errors are values, never exceptions: every call that can fail returns the SQLite result code,
// and a statement reports SQLITE_ROW / SQLITE_DONE or an error from step(). The metadata store
// (toastyfs/metadata_state_machine.hpp) treats any error as a failed store.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>

namespace toastyfs::sqlite {

/// A prepared statement. Bind with 1-based indexes; step() until SQLITE_DONE; reset() before
/// reusing (done() also resets, so a statement left half-read never holds a read lock).
class statement {
public:
    statement() = default;
    statement(sqlite3* db, std::string_view sql) {
        result_ = sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT,
                                     &statement_, nullptr);
    }
    ~statement() { sqlite3_finalize(statement_); }
    statement(statement&& other) noexcept
        : statement_(std::exchange(other.statement_, nullptr)), result_(other.result_) {}
    statement& operator=(statement&& other) noexcept {
        if (this != &other) {
            sqlite3_finalize(statement_);
            statement_ = std::exchange(other.statement_, nullptr);
            result_ = other.result_;
        }
        return *this;
    }

    bool prepared() const noexcept { return statement_ != nullptr && result_ == SQLITE_OK; }

    statement& bind(int index, std::int64_t value) {
        note(sqlite3_bind_int64(statement_, index, value));
        return *this;
    }
    statement& bind(int index, std::uint64_t value) { return bind(index, static_cast<std::int64_t>(value)); }
    /// The bytes must stay valid until the statement is reset (SQLITE_STATIC).
    statement& bind(int index, std::span<const std::uint8_t> bytes) {
        // A zero-length blob, not NULL, so that NOT NULL columns accept it.
        static constexpr std::uint8_t empty = 0;
        note(
            sqlite3_bind_blob64(statement_, index, bytes.empty() ? &empty : bytes.data(), bytes.size(), SQLITE_STATIC));
        return *this;
    }
    statement& bind(int index, std::string_view text) {
        return bind(index,
                    std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()));
    }

    /// SQLITE_ROW, SQLITE_DONE, or an error (also when a bind failed).
    int step() {
        if (result_ != SQLITE_OK) return result_;
        return sqlite3_step(statement_);
    }
    /// Runs a statement that returns no rows; true if it did so. Resets it.
    bool run() {
        const int result = step();
        reset();
        return result == SQLITE_DONE;
    }
    void reset() {
        if (statement_ == nullptr) return;
        sqlite3_reset(statement_);
        sqlite3_clear_bindings(statement_);
        result_ = SQLITE_OK;
    }

    std::int64_t integer(int column) const { return sqlite3_column_int64(statement_, column); }
    std::uint64_t unsigned_integer(int column) const { return static_cast<std::uint64_t>(integer(column)); }
    std::span<const std::uint8_t> blob(int column) const {
        const void* data = sqlite3_column_blob(statement_, column);
        const int size = sqlite3_column_bytes(statement_, column);
        if (data == nullptr || size <= 0) return {};
        return {static_cast<const std::uint8_t*>(data), static_cast<std::size_t>(size)};
    }
    std::string_view text(int column) const {
        const auto bytes = blob(column);
        return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
    }

private:
    void note(int result) {
        if (result_ == SQLITE_OK) result_ = result;
    }

    sqlite3_stmt* statement_ = nullptr;
    int result_ = SQLITE_MISUSE;
};

/// One connection, opened through a VFS by name.
class connection {
public:
    connection() = default;
    ~connection() { close(); }
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;

    /// SQLITE_OK or the error; on error the connection is closed again.
    int open(const std::string& file_name, const char* vfs_name) {
        close();
        const int result = sqlite3_open_v2(file_name.c_str(), &db_,
                                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, vfs_name);
        if (result != SQLITE_OK) close();
        return result;
    }
    void close() {
        if (db_ != nullptr) sqlite3_close_v2(db_);
        db_ = nullptr;
    }
    bool is_open() const noexcept { return db_ != nullptr; }
    sqlite3* handle() const noexcept { return db_; }

    /// Runs SQL that returns no rows (or whose rows are ignored); SQLITE_OK or the error.
    int execute(const char* sql) { return sqlite3_exec(db_, sql, nullptr, nullptr, nullptr); }
    statement prepare(std::string_view sql) { return statement(db_, sql); }
    std::string last_error() const { return db_ == nullptr ? "not open" : sqlite3_errmsg(db_); }

private:
    sqlite3* db_ = nullptr;
};

}  // namespace toastyfs::sqlite
