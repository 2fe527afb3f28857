// Process plumbing shared by toastyfs-node and toastyfs-proxy: the stop signal, a seed from the
// OS, and a periodic timer on the event loop.
#pragma once

#include <signal.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <atomic>
#include <cstdint>
#include <functional>
#include <random>
#include <utility>

#include "platform/event_loop.hpp"

namespace toastyfs::process {

/// The signal that asked the process to stop (SIGTERM, SIGINT), or 0.
inline std::atomic<int> stop_signal{0};

extern "C" inline void on_stop_signal(int signal) { stop_signal.store(signal); }

/// Chunk buffers (up to the chunk size, 4 MiB by default) come and go with every transfer. By
/// default glibc maps each one fresh and unmaps it on free, so every chunk pays a page fault per
/// 4 KiB and the kernel's zeroing. Served from the heap instead and not trimmed, freed buffers are
/// reused as they are; the heap stays bounded by the processes' own buffer limits.
inline void keep_chunk_buffers_mapped() {
#if defined(__GLIBC__)
    mallopt(M_MMAP_THRESHOLD, 64 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
#endif
}

/// SIGTERM and SIGINT set stop_signal; SIGPIPE is ignored (sends report EPIPE instead).
inline void install_signal_handlers() {
    struct sigaction action {};
    action.sa_handler = &on_stop_signal;
    sigemptyset(&action.sa_mask);
    sigaction(SIGTERM, &action, nullptr);
    sigaction(SIGINT, &action, nullptr);
    signal(SIGPIPE, SIG_IGN);
}

inline bool stopping() noexcept { return stop_signal.load() != 0; }

/// 64 bits from the OS (getrandom or /dev/urandom): client ids and jitter must differ per run.
inline std::uint64_t random_seed() {
    std::random_device device;
    return (std::uint64_t{device()} << 32) ^ device();
}

/// Runs `on_tick` every `period_ns` on `loop` until stop() or a stop signal.
struct ticker {
    ticker(platform::event_loop& l, std::uint64_t period, std::function<void()> f)
        : loop(l), period_ns(period), on_tick(std::move(f)) {}
    ticker(const ticker&) = delete;
    ticker& operator=(const ticker&) = delete;

    platform::event_loop& loop;
    std::uint64_t period_ns;
    std::function<void()> on_tick;
    platform::completion c;
    bool pending = false;

    void start() {
        c.callback = [](platform::completion& self) {
            auto* t = static_cast<ticker*>(self.context);
            t->pending = false;
            if (self.error == platform::io_error::cancelled || stopping()) return;
            t->on_tick();
            t->start();
        };
        c.context = this;
        pending = true;
        loop.timeout(period_ns, c);
    }
    /// Cancels the pending timeout and lets the loop hand the completion back.
    void stop() {
        if (pending) loop.cancel(c);
        for (int i = 0; i < 1000 && pending; i++) loop.run_once(0);
    }
};

}  // namespace toastyfs::process
