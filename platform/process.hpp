// Process-wide setup that differs per OS, for the processes in examples/: a shutdown request the
// main loops poll, the open-file limit, and the allocator's handling of big buffers. Standard
// library only here; process_posix.cpp implements it with signals, setrlimit and mallopt. A Windows
// implementation would use a console control handler (Ctrl-C, close, shutdown) and have no rlimit.
#pragma once

#include <cstdint>

namespace platform {

/// SIGTERM and SIGINT (POSIX) or a console control event (Windows) request a shutdown instead of
/// killing the process. Call once, early in main, before starting threads.
void install_shutdown_handlers();

/// True once a shutdown was requested, by the OS or by request_shutdown(). Any thread may ask: the
/// event loops poll it (their run_once timeouts bound how late they notice).
bool shutdown_requested() noexcept;

/// Requests a shutdown from inside the process (one thread failing stops the others).
void request_shutdown() noexcept;

/// What requested the shutdown first, for the log: "SIGTERM", "SIGINT", "request" or "none".
const char* shutdown_reason() noexcept;

/// A peer that closes a socket must give an error from send, not a signal that kills the process
/// (POSIX: SIGPIPE ignored; nothing to do on Windows).
void ignore_broken_pipes();

/// Thousands of connections need descriptors: raises the soft open-file limit to the hard one
/// where the OS has such a limit. Returns the limit in effect afterwards, 0 if unknown or none.
std::uint64_t raise_open_file_limit();

/// Chunk buffers (up to the chunk size, 4 MiB by default) come and go with every transfer. glibc
/// maps each one fresh and unmaps it on free, so every chunk pays a page fault per 4 KiB and the
/// kernel's zeroing. This serves them from the heap instead, untrimmed, so freed buffers are reused
/// as they are; the heap stays bounded by the processes' own buffer limits. No-op elsewhere.
void keep_large_buffers_mapped();

}  // namespace platform
