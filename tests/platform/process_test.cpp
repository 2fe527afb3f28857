// platform/process.hpp: a shutdown is requested by SIGTERM, SIGINT or request_shutdown, the first
// reason is kept, and the open-file limit only goes up. The shutdown state is process-wide and
// cannot be reset, so each case that requests one runs in a child process.
#define BOOST_TEST_MODULE platform_process
// The header under test comes first: proves it is self-contained.
#include "platform/process.hpp"

#ifndef BOOST_TEST_DYN_LINK  // meson's boost dependency may define it already
#define BOOST_TEST_DYN_LINK
#endif
#include <boost/test/unit_test.hpp>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>

namespace {

/// Runs `body` in a child; returns its exit code, or 128 + the signal that killed it.
int in_child(const std::function<int()>& body) {
    const pid_t pid = ::fork();
    if (pid == 0) std::_Exit(body());
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/// 0 when the process is not asked to stop yet and reports `reason` after `raise_it`.
int requested_by(const std::function<void()>& raise_it, const char* reason) {
    if (platform::shutdown_requested()) return 10;
    if (std::strcmp(platform::shutdown_reason(), "none") != 0) return 11;
    raise_it();
    if (!platform::shutdown_requested()) return 12;
    return std::strcmp(platform::shutdown_reason(), reason) == 0 ? 0 : 13;
}

}  // namespace

BOOST_AUTO_TEST_CASE(sigterm_and_sigint_request_a_shutdown_instead_of_killing) {
    for (const int signal : {SIGTERM, SIGINT}) {
        const char* reason = signal == SIGTERM ? "SIGTERM" : "SIGINT";
        const int code = in_child([signal, reason] {
            platform::install_shutdown_handlers();
            return requested_by([signal] { std::raise(signal); }, reason);
        });
        BOOST_TEST(code == 0, reason << ": child exited with " << code);
    }
    // Negative space: without the handlers the same signal kills the process.
    BOOST_TEST(in_child([] {
                   std::signal(SIGTERM, SIG_DFL);
                   return std::raise(SIGTERM) == 0 ? 0 : 1;
               }) == 128 + SIGTERM);
}

BOOST_AUTO_TEST_CASE(request_shutdown_keeps_the_first_reason) {
    const int code = in_child([] {
        platform::install_shutdown_handlers();
        const int failed = requested_by([] { platform::request_shutdown(); }, "request");
        if (failed != 0) return failed;
        std::raise(SIGTERM);  // a later signal is absorbed: the log names what stopped the process first
        return std::strcmp(platform::shutdown_reason(), "request") == 0 ? 0 : 20;
    });
    BOOST_TEST(code == 0);
}

BOOST_AUTO_TEST_CASE(broken_pipes_do_not_kill) {
    const int code = in_child([] {
        platform::ignore_broken_pipes();
        int fds[2];
        if (::pipe(fds) != 0) return 30;
        ::close(fds[0]);
        const char byte = 'x';
        const bool epipe = ::write(fds[1], &byte, 1) == -1 && errno == EPIPE;
        return epipe ? 0 : 31;
    });
    BOOST_TEST(code == 0);
}

BOOST_AUTO_TEST_CASE(open_file_limit_only_goes_up) {
    rlimit before{};
    BOOST_REQUIRE(::getrlimit(RLIMIT_NOFILE, &before) == 0);
    const std::uint64_t limit = platform::raise_open_file_limit();
    rlimit after{};
    BOOST_REQUIRE(::getrlimit(RLIMIT_NOFILE, &after) == 0);
    BOOST_TEST(after.rlim_cur >= before.rlim_cur);
    BOOST_TEST(after.rlim_cur == after.rlim_max);  // raised to the hard limit
    if (after.rlim_cur != RLIM_INFINITY) BOOST_TEST(limit == after.rlim_cur);
}

BOOST_AUTO_TEST_CASE(keep_large_buffers_mapped_is_harmless) {
    platform::keep_large_buffers_mapped();
    void* buffer = std::malloc(4u << 20);
    BOOST_TEST(buffer != nullptr);
    std::free(buffer);
}
