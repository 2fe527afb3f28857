// File helpers with explicit durability. Errors come back as values (a message in `error`);
// nothing here throws for an I/O failure.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace platform {

/// Replaces `path` with `data` so that after a crash the file holds either the old or the new
/// content, never a mix: writes a temporary file in the same directory, fsyncs it, renames it
/// over `path`, then fsyncs the directory so the rename itself is durable. The new file has
/// mode 0600. On failure the temporary file is removed and `path` is untouched.
bool write_file_atomically(const std::string& path, std::span<const std::uint8_t> data, std::string& error);

/// Reads the whole file into `out`. Refuses (returns false) a file larger than size_max, also
/// one that grows past it while being read, and anything that is not a regular file.
bool read_file(const std::string& path, std::size_t size_max, std::vector<std::uint8_t>& out, std::string& error);

/// Creates `path` and any missing parents (mode 0700); true if it exists as a directory after.
bool make_directories(const std::string& path, std::string& error);

}  // namespace platform
