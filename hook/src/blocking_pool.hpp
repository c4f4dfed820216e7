// BlockingPool: a few threads that run calls which would block the
// scheduler thread and have no readiness to wait for: name resolution,
// regular-file I/O that misses the page cache, fsync.
//
// run() hands the call to a pool thread and parks the calling coroutine; the
// pool thread wakes it through Scheduler::post() (the runtime's eventfd)
// when the call is done. The coroutine's stack stays valid meanwhile, so the
// call may read and write the caller's buffers directly. Threads start on
// first use, up to the pool's size, and are rebuilt in a fork()ed child.
#pragma once

#include <cerrno>
#include <type_traits>
#include <utility>

namespace coil::hook {

class BlockingPool {
 public:
  // resolver() runs DNS lookups (COIL_RESOLVER_THREADS, default 4);
  // files() runs file I/O (COIL_FILE_THREADS, default 4). Separate, so a
  // slow DNS server cannot hold up reads of local files.
  static BlockingPool& resolver() noexcept;
  static BlockingPool& files() noexcept;

  // run() calls fn() on a pool thread while the current coroutine waits and
  // returns its result; outside coroutines it calls fn() right here.
  template <class F>
  auto run(F&& fn) -> decltype(fn()) {
    using R = decltype(fn());
    if constexpr (std::is_void_v<R>) {
      run_erased(&call_void<F>, &fn);
    } else {
      struct Slot {
        F* fn;
        R result{};
      } slot{&fn};
      run_erased(&call_value<Slot>, &slot);
      return slot.result;
    }
  }

  // run_call() is run() for a libc call: the errno it left on the pool
  // thread comes back to the caller's.
  template <class F>
  auto run_call(F&& fn) -> decltype(fn()) {
    struct Result {
      decltype(fn()) value;
      int error;
    };
    Result r = run([&] {
      auto value = fn();
      return Result{value, errno};
    });
    errno = r.error;
    return r.value;
  }

  // run_erased() is run() without templates: it calls fn(arg).
  void run_erased(void (*fn)(void*), void* arg);

  // reset_after_fork() forgets the parent's threads in a fork()ed child.
  static void reset_after_fork() noexcept;

  struct State;

 private:
  explicit BlockingPool(State* state) noexcept : state_(state) {}

  template <class F>
  static void call_void(void* f) {
    (*static_cast<F*>(f))();
  }
  template <class Slot>
  static void call_value(void* s) {
    auto* slot = static_cast<Slot*>(s);
    slot->result = (*slot->fn)();
  }

  State* state_;
};

}  // namespace coil::hook
