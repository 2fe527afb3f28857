// platform/process.hpp for POSIX: signals, setrlimit and (glibc) mallopt.
#include "platform/process.hpp"

#include <signal.h>
#include <sys/resource.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <atomic>

namespace platform {
namespace {

/// The signal that requested the shutdown, -1 for request_shutdown(), 0 for none.
std::atomic<int> shutdown_signal{0};
static_assert(std::atomic<int>::is_always_lock_free, "written from a signal handler");

constexpr int requested_from_inside = -1;

/// Keeps the first reason. Lock-free atomics are async-signal-safe.
void record(int reason) noexcept {
    int none = 0;
    shutdown_signal.compare_exchange_strong(none, reason);
}

extern "C" void on_shutdown_signal(int signal) { record(signal); }

}  // namespace

void install_shutdown_handlers() {
    struct sigaction action {};
    action.sa_handler = &on_shutdown_signal;
    sigemptyset(&action.sa_mask);
    sigaction(SIGTERM, &action, nullptr);
    sigaction(SIGINT, &action, nullptr);
}

bool shutdown_requested() noexcept { return shutdown_signal.load() != 0; }

void request_shutdown() noexcept { record(requested_from_inside); }

const char* shutdown_reason() noexcept {
    switch (shutdown_signal.load()) {
        case 0: return "none";
        case SIGTERM: return "SIGTERM";
        case SIGINT: return "SIGINT";
        case requested_from_inside: return "request";
        default: return "signal";
    }
}

void ignore_broken_pipes() { signal(SIGPIPE, SIG_IGN); }

std::uint64_t raise_open_file_limit() {
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
    if (limit.rlim_cur < limit.rlim_max) {
        rlimit raised = limit;
        raised.rlim_cur = limit.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
    }
    return limit.rlim_cur == RLIM_INFINITY ? 0 : static_cast<std::uint64_t>(limit.rlim_cur);
}

void keep_large_buffers_mapped() {
#if defined(__GLIBC__)
    mallopt(M_MMAP_THRESHOLD, 64 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
#endif
}

}  // namespace platform
