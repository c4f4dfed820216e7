// tls_running: the coroutine running on this thread, or nullptr outside
// coroutines (including the scheduler's own loop). The hook layer reads it on
// every call to decide between the plain call and the coroutine path, so it
// is a plain initial-exec TLS variable: libcoil is linked or preloaded, never
// dlopen'd.
#pragma once

#include <atomic>
#include <cstdint>

namespace coil::detail {

class Coroutine;

// constinit tells every reader that there is no dynamic initialisation: without
// it, each access from another file first checks for a TLS init function.
extern constinit thread_local Coroutine* tls_running __attribute__((tls_model("initial-exec")));

// SignalCounts: how many signal handlers have run on this thread (through
// the hook layer's trampoline), all of them and those installed without
// SA_RESTART. A handler bumps them, so they are lock-free atomics in
// initial-exec TLS (no __tls_get_addr in a signal handler). wake_fd is the
// eventfd of the scheduler running on this thread, or -1; handling counts the
// program's handlers running on this thread now (HandlerScope).
struct SignalCounts {
  std::atomic<std::uint32_t> any{0};
  std::atomic<std::uint32_t> no_restart{0};
  std::atomic<int> wake_fd{-1};
  std::atomic<int> handling{0};  // handlers running now (nested ones count each)

  std::uint32_t of(bool only_no_restart) const noexcept {
    return (only_no_restart ? no_restart : any).load(std::memory_order_relaxed);
  }
};

extern constinit thread_local SignalCounts tls_signals __attribute__((tls_model("initial-exec")));

// tls_internal counts the InternalScopes alive on this thread.
extern constinit thread_local int tls_internal __attribute__((tls_model("initial-exec")));

// InternalScope marks coil's own code that shares pthread objects (std::mutex,
// std::condition_variable, std::thread) with threads outside any scheduler,
// such as the blocking pool's. Under coil-run, a pthread call made in a
// coroutine is a green thread's and is emulated (preload/src/green.hpp);
// inside an InternalScope it goes to glibc, as the other users' calls do.
class InternalScope {
 public:
  InternalScope() noexcept { ++tls_internal; }
  ~InternalScope() { --tls_internal; }
  InternalScope(const InternalScope&) = delete;
  InternalScope& operator=(const InternalScope&) = delete;
};

}  // namespace coil::detail
