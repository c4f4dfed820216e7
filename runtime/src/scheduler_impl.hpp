// SchedulerImpl: one thread's scheduler.
//
// Invariants (who touches what, where):
// - Everything here except posted_/posted_mutex_/keep_alive_, inbox_/
//   inbox_lock_/has_posted_ and the poller's notify() belongs to the thread
//   inside run(). Other threads reach a coroutine of this scheduler only
//   through wake(): a compare-and-swap of its state from kParked claims it,
//   and it goes into inbox_, which the run loop moves to the ready queue. Coroutines run only on
//   that thread, one at a time; they touch the queues only through park(), wake(), yield() and the
//   wait functions, all on that thread.
// - A coroutine is in at most one of: the ready queue (kReady), running
//   (kRunning, the current_ pointer), parked (kParked). A parked coroutine
//   may also be in the sleep tree (it has a deadline) and, through WaitNodes
//   on its stack, in the wait tree. wake() and the timer both move it back to
//   the ready queue and unlink it from the sleep tree; the coroutine unlinks
//   its own WaitNodes when it resumes.
// - Every coroutine not yet released is in all_, whatever its state.
// - A coroutine that suspends hands over straight to the next ready one
//   (suspend()) while the batch budget lasts; otherwise, and always when it
//   exits, it switches to the scheduler's own context (main_). So exits,
//   stack release, polling and timers all happen in the scheduler loop, and
//   running_ always names the coroutine on the CPU.
#pragma once

#include <pthread.h>

#include <boost/intrusive/list.hpp>
#include <boost/intrusive/set.hpp>
#include <functional>
#include <mutex>
#include <vector>

#include "batch.hpp"
#include "coil/detail/spin_lock.hpp"
#include "coil/scheduler.hpp"
#include "coroutine.hpp"
#include "poller.hpp"
#include "running.hpp"
#include "stack_pool.hpp"
#include "stat_counter.hpp"

namespace coil::detail {

struct CoroutineDeadline {
  using type = TimePoint;
  TimePoint operator()(const Coroutine& co) const noexcept { return co.deadline; }
};

// ReadyQueue: FIFO of runnable coroutines. An intrusive list: push and pop
// in O(1), no allocation.
using ReadyQueue = boost::intrusive::list<
    Coroutine, boost::intrusive::member_hook<Coroutine, ReadyHook, &Coroutine::ready_hook>,
    boost::intrusive::constant_time_size<false>>;

// SleepTree: parked coroutines with a deadline, ordered by it. Why a tree and
// not a heap or a wheel: most deadlines are I/O timeouts that are cancelled
// early, and an intrusive tree erases any node in O(log n) with no index
// bookkeeping; a multiset inserts equal keys after existing ones, so ties wake
// in FIFO order; begin() is the next deadline. A wheel would bound precision
// or cost a tick per slot while idle.
using SleepTree = boost::intrusive::multiset<
    Coroutine, boost::intrusive::member_hook<Coroutine, SleepHook, &Coroutine::sleep_hook>,
    boost::intrusive::key_of_value<CoroutineDeadline>>;

class SchedulerImpl {
 public:
  // kResumesPerPoll bounds how many coroutines run before the scheduler
  // looks at epoll and the timers again while it has runnable work.
  static constexpr int kResumesPerPoll = 128;

  explicit SchedulerImpl(const SchedulerOptions& opts);
  ~SchedulerImpl();

  // current() is the scheduler inside run() on this thread, or nullptr.
  static SchedulerImpl* current() noexcept;

  Coroutine* create(const SpawnOptions& opts, std::size_t body_size, std::size_t body_align,
                    void** body_memory);
  void start(Coroutine* co, BodyBase* body) noexcept;
  void join(Coroutine* co);
  void release(Coroutine* co) noexcept;
  void detach(Coroutine* co) noexcept;

  void run();
  bool run_once(bool may_block);
  void post(std::function<void()> fn);
  void add_keep_alive() noexcept;
  void drop_keep_alive() noexcept;

  // Called from coroutines of this scheduler.
  WakeReason park(TimePoint deadline);
  WakeReason park_unlock(TimePoint deadline, SpinLock& lock);
  // wake() is for any thread (coil/detail/park.hpp).
  bool wake(Coroutine* co) noexcept;
  void yield();
  // wait_fd() is the level-triggered wait behind wait_readable/writable;
  // wait_fd_edge() and mark_not_ready() are the hook layer's (fd_wait.hpp).
  WaitResult wait_fd(int fd, std::uint8_t interest, TimePoint deadline);
  WaitResult wait_fd_edge(int fd, std::uint8_t interest, TimePoint deadline,
                          Interrupt mode = Interrupt::kNever);
  void mark_not_ready(int fd, std::uint8_t interest) noexcept;
  void mark_drained(int fd, std::uint8_t interest) noexcept;
  WaitResult wait_any_fd(const FdInterest* fds, std::size_t n, TimePoint deadline);
  // forget_fd() makes the queued batch first: a queued call on fd was made before the close.
  void forget_fd(int fd) noexcept {
    flush_batch();
    poller_.forget(fd);
  }
  // batch() and flush_batch() are coil/detail/batch.hpp's (batch.cpp).
  long batch(BatchedCall& call);
  void flush_batch() noexcept;

  // after_fork_in_child() makes the scheduler running on the thread that called fork() the
  // child's own (Poller::reset_after_fork()). A fork() made in a coroutine leaves the child with
  // that coroutine alone, as a thread's fork() leaves it with that thread alone: the others are
  // lost (abandon_all_but()). Called by a pthread_atfork child handler.
  void after_fork_in_child() noexcept;
  // The signal masks of parked ppoll/pselect/epoll_pwait calls (interrupt.cpp).
  void add_mask(WaitSignalMask* m) noexcept;
  void remove_mask(WaitSignalMask* m) noexcept;

  // exit_current() ends the running coroutine. Never returns.
  [[noreturn]] void exit_current() noexcept;

  TimePoint now() const noexcept { return clock_->now(); }
  Coroutine* running() const noexcept { return running_; }
  Poller& poller() noexcept { return poller_; }
  SchedulerStats stats() const noexcept;
  // restart_stats() zeroes the counts of past activity (a fork()ed child's).
  void restart_stats() noexcept;

  Scheduler* owner = nullptr;  // the public object wrapping this one

  // The registry's links (registry.hpp), and the thread inside run() (its
  // kernel thread id, 0 when none): for process_stats() and debuggers.
  SchedulerImpl* registry_next = nullptr;
  SchedulerImpl* registry_prev = nullptr;
  bool registered = false;  // in the registry's list
  int run_tid = 0;

  // LiveCount counts the live coroutines of all the schedulers of a Runtime
  // (runtime.cpp), plus its spawns in flight; on_zero() runs, on the thread
  // that brought it to 0, when it gets there.
  struct LiveCount {
    std::atomic<std::int64_t> n{0};
    void (*on_zero)(void* arg) = nullptr;
    void* arg = nullptr;

    void add() noexcept { n.fetch_add(1, std::memory_order_relaxed); }
    void drop() noexcept {
      if (n.fetch_sub(1, std::memory_order_acq_rel) == 1) on_zero(arg);
    }
  };
  LiveCount* shared_live = nullptr;  // set before run(), by a Runtime

  // The thread stack's bounds, for ASan's switch annotations back to main_.
  const void* main_stack_lo = nullptr;
  std::size_t main_stack_size = 0;
  pthread_t main_stack_thread_{};

 private:
  using AllList = boost::intrusive::list<
      Coroutine, boost::intrusive::member_hook<Coroutine, AllHook, &Coroutine::all_hook>,
      boost::intrusive::constant_time_size<true>>;

  class RunScope;

  bool step(bool may_block);
  bool spared(int fd, std::uint8_t interest) noexcept;
  FdEntry* prepare_fd(int fd, WaitResult* early);
  void make_ready(Coroutine* co) noexcept;
  void enter(Coroutine* co) noexcept;
  void resume(Coroutine* co);
  void suspend(Coroutine* co);
  void after_exit(Coroutine* co) noexcept;
  void destroy_body(Coroutine* co) noexcept;
  void run_ready_batch();
  bool poll_and_fire(bool busy);
  void fire_timers(TimePoint now) noexcept;
  void deliver_signals() noexcept;  // interrupt.cpp
  // wait_mask() is the signal mask for epoll_pwait2, or nullptr for none.
  const sigset_t* wait_mask(sigset_t* scratch) const noexcept;
  bool run_posted();
  void wake_from_afar(Coroutine* co) noexcept;
  void take_inbox() noexcept;
  bool posts_pending();
  void report_deadlock();
  void unwind_all() noexcept;
  void abandon_all_but(Coroutine* keep) noexcept;

  // coil-gdb reads clock_, running_, all_ and poller_ (and run_tid) by name.
  const Clock* clock_;
  std::size_t default_stack_size_;
  Context main_{};
  void* main_tsan_fiber_ = nullptr;
  Coroutine* running_ = nullptr;
  ReadyQueue ready_;
  SleepTree sleeping_;
  AllList all_;
  Poller poller_;
  StackPool stacks_;
  SyscallBatch batch_;
  bool batching_;          // SchedulerOptions::io_uring, or COIL_IO_URING
  bool flushing_ = false;  // inside flush_batch()
  // Spare: an edge of fd for interest arrived between the completion of co's batched call on fd
  // and co's resumption (a poll ran between), so the mark co's hook makes right after, about
  // that call's result, must not erase it (batch(), spared()).
  struct Spare {
    Coroutine* co = nullptr;
    int fd = -1;
    std::uint8_t interest = 0;
  } spare_;
  // Counters other threads may read (process_stats()).
  StatCounter live_;  // spawned and not yet finished
  StatCounter peak_;
  StatCounter spawns_;
  StatCounter switches_;
  StatCounter polls_;
  StatCounter avoided_;              // syscalls_avoided
  StatCounter batched_;              // syscalls_batched
  StatCounter batch_enters_;         // batch_submits
  WaitSignalMask* masks_ = nullptr;  // masks in force while their coroutines park
  std::uint32_t signals_seen_ = 0;   // tls_signals.any at the last deliver_signals()
  int batch_left_ = 0;               // resumes and hand-overs left before the next poll
  bool in_run_ = false;
  bool unwinding_ = false;  // in the destructor: no hand-overs

  SpinLock inbox_lock_;
  ReadyQueue inbox_;  // claimed by wake() on other threads; kReady, not yet in ready_
  std::mutex posted_mutex_;
  std::vector<std::function<void()>> posted_;
  std::atomic<bool> has_posted_{false};
  std::atomic<int> keep_alive_{0};
};

}  // namespace coil::detail
