// The coil scheduler: one per thread, running coroutines on pooled stacks.
//
//   coil::Scheduler sched;
//   auto h = sched.spawn([] { coil::sleep_for(10ms); return 42; });
//   sched.run();          // until every coroutine has finished
//   int v = h.join();     // 42
//
// or simply: int v = coil::run([] { ...; return 42; });
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "coil/detail/body.hpp"
#include "coil/detail/park.hpp"
#include "coil/time.hpp"

namespace coil {

namespace detail {
class SchedulerImpl;
}

// kDefaultStackSize is the default usable stack of a coroutine: 128 KiB of
// virtual memory, of which only the pages touched cost memory (typically one
// 4 KiB page for a coroutine that waits on I/O). Below it sits a guard region.
inline constexpr std::size_t kDefaultStackSize = 128 * 1024;

// kMinStackSize is the smallest stack spawn accepts; smaller requests are
// rounded up.
inline constexpr std::size_t kMinStackSize = 16 * 1024;

// SpawnOptions name a coroutine and size its stack.
struct SpawnOptions {
  std::string_view name = {};  // shown in crash messages and debuggers; cut to 31 bytes
  std::size_t stack_size = 0;  // 0: the scheduler's default
};

// SchedulerOptions configure a Scheduler.
// IoUring says whether a scheduler makes its coroutines' socket sends and receives in batches,
// one io_uring_enter(2) for all those made between two polls (coil/detail/batch.hpp): as the
// COIL_IO_URING environment variable says (on unless it is 0), or on or off regardless. Where
// the kernel refuses io_uring, they are made one by one.
enum class IoUring : std::uint8_t { kFromEnv, kOn, kOff };

struct SchedulerOptions {
  const Clock* clock = nullptr;                // nullptr: the steady clock
  std::size_t stack_size = kDefaultStackSize;  // default for spawns
  IoUring io_uring = IoUring::kFromEnv;
};

// SpawnError is thrown by spawn() when no stack can be had (mmap failed).
// code() holds the errno of the failure, usually ENOMEM.
class SpawnError : public std::system_error {
 public:
  using std::system_error::system_error;
};

// DeadlockError is thrown by Scheduler::run() when coroutines remain but none
// can ever run again: nothing is ready, sleeping or waiting on an fd, and no
// other thread holds a KeepAlive. what() lists the stuck coroutines.
class DeadlockError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// SchedulerStats are counters since the scheduler was created (in a fork()ed
// child: since the fork). coil::process_stats() (coil/stats.hpp) adds up
// every scheduler's.
struct SchedulerStats {
  std::uint64_t spawns = 0;
  std::uint64_t switches = 0;  // context switches into coroutines
  std::uint64_t polls = 0;     // epoll waits
  // I/O system calls not made because readiness tracking knew the fd was
  // drained: a hooked read after a short read (or a write after a short
  // write) parks at once instead of first meeting EAGAIN.
  std::uint64_t syscalls_avoided = 0;
  // Sends and receives made in batches through io_uring, and the io_uring_enter calls that made
  // them: the syscalls batching saved are syscalls_batched - batch_submits.
  std::uint64_t syscalls_batched = 0;
  std::uint64_t batch_submits = 0;
  std::uint64_t stack_maps = 0;  // mmap calls made for stacks
  std::uint64_t stack_pool_hits = 0;
  std::uint64_t stack_pool_misses = 0;
  std::uint64_t stacks_in_use = 0;  // held by coroutines not yet released
  std::uint64_t live_coroutines = 0;
  std::uint64_t peak_coroutines = 0;
};

namespace detail {
// Internal entry points used by the templates below.
Coroutine* create_coroutine(SchedulerImpl& sched, const SpawnOptions& opts, std::size_t body_size,
                            std::size_t body_align, void** body_memory);
void start_coroutine(Coroutine* co, BodyBase* body) noexcept;
void join_coroutine(Coroutine* co);  // waits until co has finished
BodyBase* coroutine_body(Coroutine* co) noexcept;
void release_coroutine(Coroutine* co) noexcept;  // after join: frees the stack
void detach_coroutine(Coroutine* co) noexcept;
SchedulerImpl& current_scheduler_or_throw();
}  // namespace detail

// JoinHandle<T> owns the right to join a spawned coroutine. Dropping it
// detaches the coroutine. Move-only. Precondition: it does not outlive the
// Scheduler the coroutine was spawned on.
template <class T>
class JoinHandle {
 public:
  JoinHandle() = default;
  explicit JoinHandle(detail::Coroutine* co) noexcept : co_(co) {}
  JoinHandle(JoinHandle&& other) noexcept : co_(std::exchange(other.co_, nullptr)) {}
  JoinHandle& operator=(JoinHandle&& other) noexcept {
    if (this != &other) {
      detach();
      co_ = std::exchange(other.co_, nullptr);
    }
    return *this;
  }
  JoinHandle(const JoinHandle&) = delete;
  JoinHandle& operator=(const JoinHandle&) = delete;
  ~JoinHandle() { detach(); }

  // joinable() is true until join() or detach().
  bool joinable() const noexcept { return co_ != nullptr; }

  // join() waits for the coroutine to finish and returns its value, or
  // rethrows its exception. Inside a coroutine it parks; outside one the
  // coroutine must already have finished (for instance after run()), else
  // std::logic_error. Precondition: joinable().
  T join() {
    if (!co_) throw std::logic_error("coil: join() on a JoinHandle that is not joinable");
    detail::join_coroutine(co_);
    auto* body = static_cast<detail::ResultBody<T>*>(detail::coroutine_body(co_));
    auto finish = [this] { detail::release_coroutine(std::exchange(co_, nullptr)); };
    if (body->error) {
      auto error = body->error;
      finish();
      std::rethrow_exception(error);
    }
    if constexpr (std::is_void_v<T>) {
      finish();
    } else {
      T value = std::move(*body->value);
      finish();
      return value;
    }
  }

  // detach() lets the coroutine run on unowned. An exception that escapes a
  // detached coroutine terminates the process naming the coroutine.
  void detach() noexcept {
    if (co_) detail::detach_coroutine(std::exchange(co_, nullptr));
  }

 private:
  detail::Coroutine* co_ = nullptr;
};

// Scheduler runs coroutines on the thread that calls run(). One per thread.
class Scheduler {
 public:
  explicit Scheduler(SchedulerOptions opts = {});
  // ~Scheduler() unwinds coroutines that never finished (their destructors
  // run) and frees every stack.
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // spawn() creates a coroutine running fn() and makes it ready. It does not
  // run until the scheduler gets to it. Throws SpawnError when no stack can
  // be mapped. Not thread-safe: call it on the scheduler's thread (use post()
  // from others).
  template <class F>
  auto spawn(F&& fn, SpawnOptions opts = {}) -> JoinHandle<std::invoke_result_t<std::decay_t<F>&>> {
    return spawn_on(*impl_, std::forward<F>(fn), opts);
  }

  // run() runs coroutines until all have finished. An idle scheduler sleeps
  // in epoll_wait until the next deadline, fd event or post(). Throws
  // DeadlockError when the remaining coroutines can never be woken.
  void run();

  // run_once() is one step of run(), for driving coil from another event
  // loop: it runs the ready coroutines (a batch of at most 128), fires due
  // timers, and looks at epoll once; with may_block it sleeps there until
  // the next deadline, fd event or post() when nothing is runnable. Returns
  // false once every coroutine has finished (and no KeepAlive is held).
  // Throws DeadlockError like run().
  bool run_once(bool may_block = true);

  // post() hands fn to this scheduler from any thread and wakes it. fn runs
  // on the scheduler's thread, outside any coroutine, and must not block;
  // spawn a coroutine from it for work that waits. Thread-safe.
  void post(std::function<void()> fn);

  // KeepAlive stops run() from returning, or from reporting a deadlock,
  // while another thread may still post() work. Thread-safe to create and
  // destroy.
  class KeepAlive {
   public:
    explicit KeepAlive(Scheduler& s);
    ~KeepAlive();
    KeepAlive(const KeepAlive&) = delete;
    KeepAlive& operator=(const KeepAlive&) = delete;

   private:
    Scheduler& sched_;
  };

  // stats() returns the counters so far.
  SchedulerStats stats() const noexcept;

  // current() returns the scheduler running on this thread, or nullptr.
  static Scheduler* current() noexcept;

  // impl() is for coil's own layers (hooks, sync primitives).
  detail::SchedulerImpl& impl() noexcept { return *impl_; }

  // spawn_on() is the template behind spawn() and coil::spawn().
  template <class F>
  static auto spawn_on(detail::SchedulerImpl& sched, F&& fn, SpawnOptions opts)
      -> JoinHandle<std::invoke_result_t<std::decay_t<F>&>> {
    using Fn = std::decay_t<F>;
    using R = std::invoke_result_t<Fn&>;
    using B = detail::Body<Fn, R>;
    void* memory = nullptr;
    detail::Coroutine* co = detail::create_coroutine(sched, opts, sizeof(B), alignof(B), &memory);
    B* body;
    try {
      body = ::new (memory) B(std::forward<F>(fn));
    } catch (...) {
      detail::release_coroutine(co);
      throw;
    }
    detail::start_coroutine(co, body);
    return JoinHandle<R>(co);
  }

 private:
  std::unique_ptr<detail::SchedulerImpl> impl_;
};

// spawn() creates a coroutine on the current thread's scheduler. Throws
// std::logic_error outside a scheduler, SpawnError when out of memory.
template <class F>
auto spawn(F&& fn, SpawnOptions opts = {}) {
  return Scheduler::spawn_on(detail::current_scheduler_or_throw(), std::forward<F>(fn), opts);
}

// go() spawns a detached coroutine on the current thread's scheduler.
template <class F>
void go(F&& fn, SpawnOptions opts = {}) {
  spawn(std::forward<F>(fn), opts).detach();
}

// run() creates a scheduler on this thread, runs fn as its first coroutine
// ("main") and everything it spawns to completion, and returns fn's result
// (or rethrows its exception).
template <class F>
auto run(F&& fn, SchedulerOptions opts = {}) {
  Scheduler sched(opts);
  auto handle = sched.spawn(std::forward<F>(fn), SpawnOptions{.name = "main"});
  sched.run();
  return handle.join();
}

// yield() lets every other ready coroutine run once before the caller
// continues. Outside a coroutine it does nothing.
void yield();

// sleep_for() / sleep_until() suspend the current coroutine. Outside a
// coroutine they block the thread as std::this_thread::sleep_* would.
void sleep_for(Duration d);
void sleep_until(TimePoint deadline);

// WaitResult is the outcome of waiting for an fd.
enum class WaitResult : int {
  kReady,    // the fd is (or may be: see wait_readable) ready
  kTimeout,  // the timeout passed first
  kError,    // errno says why: EBADF (fd invalid or closed while waiting), ENOMEM, ...
};

// wait_readable() / wait_writable() suspend the current coroutine until fd is
// readable / writable or the timeout passes (negative: no timeout). They are
// level-triggered like poll(2): a ready fd returns at once. Regular files are
// always ready. Outside a coroutine they call poll(2). The fd stays
// registered with the scheduler's epoll until forget_fd().
WaitResult wait_readable(int fd, Duration timeout = Duration(-1));
WaitResult wait_writable(int fd, Duration timeout = Duration(-1));

// forget_fd() tells the current thread's scheduler that fd is about to be
// closed: it deregisters fd from epoll and wakes its waiters with EBADF. Call
// it before close(fd) when fds are closed without coil's hooks.
void forget_fd(int fd) noexcept;

namespace this_coroutine {
// id() returns the current coroutine's id (unique in the process, from 1),
// or 0 outside coroutines.
std::uint64_t id() noexcept;
// name() returns the current coroutine's name, or "" outside coroutines.
std::string_view name() noexcept;
}  // namespace this_coroutine

}  // namespace coil
