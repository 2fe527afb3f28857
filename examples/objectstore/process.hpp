// Process plumbing shared by toastyfs-node and toastyfs-proxy: a seed from the OS, a periodic
// timer on the event loop, and whether this build takes --planted-bug. What differs per OS
// (shutdown signals, limits, the allocator) is in platform/process.hpp.
#pragma once

#include <cstdint>
#include <functional>
#include <random>
#include <utility>

#include "platform/event_loop.hpp"
#include "platform/process.hpp"

// Test hooks stay out of release binaries: only the test variants (toastyfs-node-test,
// toastyfs-proxy-test, built with TOASTYFS_PLANTED_BUG_FLAG=1) know --planted-bug. In a release
// binary the flag is unknown and the options' bug fields are never set, so they stay `none`.
#if !defined(TOASTYFS_PLANTED_BUG_FLAG)
#define TOASTYFS_PLANTED_BUG_FLAG 0
#endif

namespace toastyfs::process {

inline constexpr bool planted_bug_flag = TOASTYFS_PLANTED_BUG_FLAG != 0;

/// 64 bits from the OS (getrandom or /dev/urandom): client ids and jitter must differ per run.
inline std::uint64_t random_seed() {
    std::random_device device;
    return (std::uint64_t{device()} << 32) ^ device();
}

/// Runs `on_tick` every `period_ns` on `loop` until stop() or a shutdown request.
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
            if (self.error == platform::io_error::cancelled || platform::shutdown_requested()) return;
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
