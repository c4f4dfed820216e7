// The run loop, parking and switching. Spawning and joining are in
// coroutine.cpp; the public free functions in api.cpp.
#include <poll.h>
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <new>
#include <optional>
#include <string>

#include "hot.hpp"
#include "link_all.hpp"
#include "overflow_guard.hpp"
#include "registry.hpp"
#include "sanitizer.hpp"
#include "scheduler_impl.hpp"
#include "sys.hpp"

namespace coil::detail {

constinit thread_local Coroutine* tls_running __attribute__((tls_model("initial-exec"))) = nullptr;
constinit thread_local int tls_internal __attribute__((tls_model("initial-exec"))) = 0;

namespace {

// initial-exec: wake() reads it on every wake-up, and libcoil is never dlopen'd.
constinit thread_local SchedulerImpl* tls_scheduler __attribute__((tls_model("initial-exec"))) =
    nullptr;

timespec to_timespec(Duration d) noexcept {
  if (d < Duration::zero()) d = Duration::zero();
  auto ns = d.count();
  return timespec{static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
}

}  // namespace

SchedulerImpl* SchedulerImpl::current() noexcept { return tls_scheduler; }

SchedulerImpl::SchedulerImpl(const SchedulerOptions& opts)
    : clock_(opts.clock ? opts.clock : &SteadyClock::instance()),
      default_stack_size_(opts.stack_size ? opts.stack_size : kDefaultStackSize),
      batching_(opts.io_uring == IoUring::kFromEnv ? uring_wanted()
                                                   : opts.io_uring == IoUring::kOn) {
  GuardMode ignored;
  (void)guard_mode_from_env(&ignored);  // reject a malformed COIL_STACK_GUARD early
  install_overflow_guard();
  static std::once_flag fork_handler;
  InternalScope internal;  // call_once is pthread_once
  std::call_once(fork_handler, [] {
    ::pthread_atfork(nullptr, nullptr, [] {
      fork_count.fetch_add(1, std::memory_order_relaxed);
      registry_after_fork(tls_scheduler);
      if (tls_scheduler) tls_scheduler->after_fork_in_child();
    });
  });
  (void)hook::link_all_hooks();  // a static link must take every hook (link_all.cpp)
  register_scheduler(this);
}

SchedulerImpl::~SchedulerImpl() {
  unwind_all();
  retire_scheduler(this);
}

void SchedulerImpl::make_ready(Coroutine* co) noexcept {
  co->state.store(CoState::kReady, std::memory_order_relaxed);
  ready_.push_back(*co);
}

// claim() moves co from parked to ready, or fails if something else (its
// timer, a wake-up from another thread) got there first.
inline bool claim(Coroutine* co) noexcept {
  CoState parked = CoState::kParked;
  return co->state.compare_exchange_strong(parked, CoState::kReady, std::memory_order_acq_rel,
                                           std::memory_order_relaxed);
}

COIL_HOT bool SchedulerImpl::wake(Coroutine* co) noexcept {
  if (!claim(co)) return false;
  co->wake_reason = WakeReason::kWoken;
  if (tls_scheduler != this) {
    wake_from_afar(co);
    return true;
  }
  if (co->sleep_hook.is_linked()) sleeping_.erase(sleeping_.iterator_to(*co));
  ready_.push_back(*co);
  return true;
}

// wake_from_afar() queues co, claimed by another thread, in the inbox, and
// wakes this scheduler if nothing else has since it last emptied it.
void SchedulerImpl::wake_from_afar(Coroutine* co) noexcept {
  inbox_lock_.lock();
  inbox_.push_back(*co);  // ready_hook: co is in no ready queue while parked
  inbox_lock_.unlock();
  if (!has_posted_.exchange(true, std::memory_order_acq_rel)) poller_.notify();
}

// take_inbox() makes the coroutines other threads woke ready. They may still
// be in the sleep tree: a timer that lost the race leaves them there.
void SchedulerImpl::take_inbox() noexcept {
  inbox_lock_.lock();
  ReadyQueue woken;
  woken.swap(inbox_);
  inbox_lock_.unlock();
  for (Coroutine& co : woken) {
    if (co.sleep_hook.is_linked()) sleeping_.erase(sleeping_.iterator_to(co));
  }
  ready_.splice(ready_.end(), woken);
}

// enter() makes co the running coroutine, just before switching to it.
inline void SchedulerImpl::enter(Coroutine* co) noexcept {
  running_ = co;
  tls_running = co;
  co->state.store(CoState::kRunning, std::memory_order_relaxed);
  co->started = true;
  ++switches_;
}

// resume() runs co until control comes back to the scheduler loop: co, or
// a coroutine it handed over to, parked, yielded or exited. Scheduler side.
void SchedulerImpl::resume(Coroutine* co) {
  enter(co);
  SwitchAnnotation annotation(co->stack.lo, co->stack.size(), co->tsan_fiber);
  context_switch(&main_, &co->context);
  annotation.finish();
  Coroutine* last = running_;  // the one that switched back to us
  running_ = nullptr;
  tls_running = nullptr;
  if (last->state.load(std::memory_order_relaxed) == CoState::kDone) after_exit(last);
}

// suspend() switches away from the running coroutine co, which has already
// put itself where it will be found again (ready queue, sleep tree, a wait
// list). While the batch lasts it hands over straight to the next ready
// coroutine: one switch instead of two through the scheduler loop, and no
// trip through its bookkeeping. Coroutine side.
inline void SchedulerImpl::suspend(Coroutine* co) {
  if (!co->canary_intact()) report_stack_overflow(co);
  if (batch_left_ > 0 && !ready_.empty() && !unwinding_) {
    --batch_left_;
    Coroutine* next = &ready_.front();
    ready_.pop_front();
    enter(next);
    if (next != co) {  // a lone yielder just keeps running
      SwitchAnnotation annotation(next->stack.lo, next->stack.size(), next->tsan_fiber);
      context_switch(&co->context, &next->context);
      annotation.finish();
    }
  } else {
    SwitchAnnotation annotation(main_stack_lo, main_stack_size, main_tsan_fiber_);
    context_switch(&co->context, &main_);
    annotation.finish();
  }
  if (co->cancelled) throw ForcedUnwind{};
}

WakeReason SchedulerImpl::park_unlock(TimePoint deadline, SpinLock& lock) {
  Coroutine* co = running_;
  if (co->cancelled || (deadline != kNoDeadline && deadline <= clock_->now())) {
    lock.unlock();
    if (co->cancelled) throw ForcedUnwind{};
    return WakeReason::kTimeout;
  }
  if (deadline != kNoDeadline) {
    co->deadline = deadline;
    sleeping_.insert(*co);
  }
  co->state.store(CoState::kParked, std::memory_order_relaxed);
  lock.unlock();  // release: a waker that takes the lock sees kParked
  suspend(co);
  return co->wake_reason;
}

COIL_HOT WakeReason SchedulerImpl::park(TimePoint deadline) {
  Coroutine* co = running_;
  if (co->cancelled) throw ForcedUnwind{};
  if (deadline != kNoDeadline) {
    if (deadline <= clock_->now()) return WakeReason::kTimeout;
    co->deadline = deadline;
    sleeping_.insert(*co);
  }
  co->state.store(CoState::kParked, std::memory_order_relaxed);
  suspend(co);
  return co->wake_reason;
}

inline void SchedulerImpl::yield() {
  Coroutine* co = running_;
  if (co->cancelled) throw ForcedUnwind{};
  make_ready(co);
  suspend(co);
}

}  // namespace coil::detail

// coil::yield() lives here, not in api.cpp, so that the whole path down to
// the switch inlines into it: every return executed after a switch is a
// return-stack-buffer miss (the buffer holds the other context's calls), so
// fewer frames on the way back out is measurably faster.
void coil::yield() {
  if (detail::Coroutine* co = detail::tls_running) co->scheduler->yield();
}

namespace coil::detail {

void SchedulerImpl::exit_current() noexcept {
  Coroutine* co = running_;
  if (!co->canary_intact()) report_stack_overflow(co);
  co->state.store(CoState::kDone, std::memory_order_relaxed);
  --live_;
  if (co->joiner) wake(co->joiner);
  if (shared_live) shared_live->drop();
  SwitchAnnotation annotation(main_stack_lo, main_stack_size, main_tsan_fiber_, /*exiting=*/true);
  context_switch(&co->context, &main_);
  __builtin_trap();  // a finished coroutine is never resumed
}

namespace {

// interrupted() is a wait's result after a caught signal ended it.
WaitResult interrupted() noexcept {
  errno = EINTR;
  return WaitResult::kError;
}

}  // namespace

// prepare_fd() registers fd on first use. nullptr means "do not park":
// errno EPERM (epoll cannot watch regular files; poll(2) calls them always
// ready) or a real error.
FdEntry* SchedulerImpl::prepare_fd(int fd, WaitResult* early) {
  FdEntry* e = poller_.prepare(fd);
  if (!e) *early = errno == EPERM ? WaitResult::kReady : WaitResult::kError;
  return e;
}

COIL_HOT WaitResult SchedulerImpl::wait_fd_edge(int fd, std::uint8_t interest, TimePoint deadline,
                                                Interrupt mode) {
  WaitResult early;
  FdEntry* e = prepare_fd(fd, &early);
  if (!e) return early;
  if (e->ready & interest) return WaitResult::kReady;
  if (e->drained & interest) {
    // The call about to wait skipped the try that would have met EAGAIN.
    e->drained &= static_cast<std::uint8_t>(~interest);
    ++avoided_;
  }
  std::optional<InterruptibleWait> interruptible;
  if (mode != Interrupt::kNever) interruptible.emplace(mode);
  WaitNode node;
  node.fd = fd;
  node.interest = interest;
  node.co = running_;
  poller_.add(node);
  struct Unlink {
    Poller& poller;
    WaitNode& node;
    ~Unlink() { poller.remove(node); }
  } unlink{poller_, node};
  while (node.linked()) {
    WakeReason why = park(deadline);
    if (why == WakeReason::kInterrupted) return interrupted();
    if (why == WakeReason::kTimeout && node.linked()) return WaitResult::kTimeout;
  }
  if (node.revents & WaitNode::kGone) {
    errno = EBADF;
    return WaitResult::kError;
  }
  return WaitResult::kReady;
}

WaitResult SchedulerImpl::wait_fd(int fd, std::uint8_t interest, TimePoint deadline) {
  WaitResult early;
  FdEntry* e = prepare_fd(fd, &early);
  if (!e) return early;
  if (e->ready & interest) {
    // A remembered edge may be stale (the data may have been read since):
    // confirm, as this wait is level-triggered.
    pollfd p{fd,
             static_cast<short>((interest & kReadable ? POLLIN : 0) |
                                (interest & kWritable ? POLLOUT : 0)),
             0};
    if (sys::poll(&p, 1, 0) > 0) {
      if (p.revents & POLLNVAL) {  // closed behind our back
        errno = EBADF;
        return WaitResult::kError;
      }
      return WaitResult::kReady;
    }
    e->ready &= static_cast<std::uint8_t>(~interest);
  }
  return wait_fd_edge(fd, interest, deadline);
}

// spared() is true, once, for the mark a hook makes about a batched call's result when an edge
// arrived after the call was made (batch()): the mark would erase it.
inline bool SchedulerImpl::spared(int fd, std::uint8_t interest) noexcept {
  if (spare_.co != running_ || spare_.fd != fd || !(spare_.interest & interest)) return false;
  spare_.co = nullptr;
  return true;
}

COIL_HOT void SchedulerImpl::mark_not_ready(int fd, std::uint8_t interest) noexcept {
  if (spared(fd, interest)) return;
  // Registering first makes the mark stick: a fresh registration assumes
  // ready, and epoll reports the current state of a newly added fd anyway.
  if (FdEntry* e = poller_.prepare(fd)) {
    e->ready &= static_cast<std::uint8_t>(~(interest & ~e->sticky));
    e->drained &= static_cast<std::uint8_t>(~interest);
  }
}

COIL_HOT void SchedulerImpl::mark_drained(int fd, std::uint8_t interest) noexcept {
  if (spared(fd, interest)) return;
  if (FdEntry* e = poller_.prepare(fd)) {
    std::uint8_t lost = interest & ~e->sticky;
    e->ready &= static_cast<std::uint8_t>(~lost);
    e->drained |= lost;
  }
}

WaitResult SchedulerImpl::wait_any_fd(const FdInterest* fds, std::size_t n, TimePoint deadline) {
  for (std::size_t i = 0; i < n; ++i) {
    FdEntry* e = poller_.prepare(fds[i].fd);
    if (!e) return errno == ENOMEM ? WaitResult::kError : WaitResult::kReady;
    if (e->ready & fds[i].interest) return WaitResult::kReady;
  }
  WaitNode inline_nodes[8];
  std::unique_ptr<WaitNode[]> heap_nodes;
  WaitNode* nodes = inline_nodes;
  if (n > std::size(inline_nodes)) {
    heap_nodes.reset(new (std::nothrow) WaitNode[n]);
    if (!heap_nodes) {
      errno = ENOMEM;
      return WaitResult::kError;
    }
    nodes = heap_nodes.get();
  }
  for (std::size_t i = 0; i < n; ++i) {
    nodes[i].fd = fds[i].fd;
    nodes[i].interest = fds[i].interest;
    nodes[i].co = running_;
    poller_.add(nodes[i]);
  }
  struct Unlink {
    Poller& poller;
    WaitNode* nodes;
    std::size_t n;
    ~Unlink() {
      for (std::size_t i = 0; i < n; ++i) poller.remove(nodes[i]);
    }
  } unlink{poller_, nodes, n};
  auto woken = [&] {
    for (std::size_t i = 0; i < n; ++i) {
      if (!nodes[i].linked()) return true;
    }
    return false;
  };
  while (!woken()) {
    WakeReason why = park(deadline);
    if (why == WakeReason::kInterrupted) return interrupted();
    if (why == WakeReason::kTimeout && !woken()) return WaitResult::kTimeout;
  }
  return WaitResult::kReady;
}

void SchedulerImpl::fire_timers(TimePoint now) noexcept {
  while (!sleeping_.empty() && sleeping_.begin()->deadline <= now) {
    Coroutine& co = *sleeping_.begin();
    sleeping_.erase(sleeping_.begin());
    if (!claim(&co)) continue;  // woken from another thread: in the inbox
    co.wake_reason = WakeReason::kTimeout;
    ready_.push_back(co);
  }
}

COIL_HOT void SchedulerImpl::run_ready_batch() {
  // Hand-overs between coroutines (suspend()) spend the same budget.
  batch_left_ = kResumesPerPoll;
  while (batch_left_ > 0 && !ready_.empty()) {
    --batch_left_;
    Coroutine& co = ready_.front();
    ready_.pop_front();
    resume(&co);
  }
}

// poll_and_fire() looks at epoll and the timers once. busy: there are
// runnable coroutines, so it must not block. Returns true if posts arrived.
COIL_HOT bool SchedulerImpl::poll_and_fire(bool busy) {
  bool posted = false;
  if (!busy || poller_.waiter_count() != 0 || has_posted_.load(std::memory_order_relaxed)) {
    timespec ts{};
    const timespec* timeout = &ts;
    if (!busy) {
      if (stacks_.trim_wanted()) stacks_.trim();  // about to sleep: a good time
      if (!sleeping_.empty() && !clock_->is_manual()) {
        ts = to_timespec(sleeping_.begin()->deadline - clock_->now());
      } else {
        timeout = nullptr;  // nothing to wake us but an fd or a post
      }
    }
    ++polls_;
    sigset_t scratch;
    posted = poller_.poll(timeout, wait_mask(&scratch));
  }
  if (!sleeping_.empty()) fire_timers(clock_->now());
  return posted;
}

bool SchedulerImpl::posts_pending() { return has_posted_.load(std::memory_order_acquire); }

bool SchedulerImpl::run_posted() {
  has_posted_.exchange(false, std::memory_order_acq_rel);  // before looking: a later one notifies
  take_inbox();
  std::vector<std::function<void()>> batch;
  {
    InternalScope internal;
    std::lock_guard lock(posted_mutex_);
    batch.swap(posted_);
  }
  for (std::size_t i = 0; i < batch.size(); ++i) {
    try {
      batch[i]();
    } catch (...) {
      // The exception leaves run(); the functions after it stay queued.
      std::lock_guard lock(posted_mutex_);
      posted_.insert(posted_.begin(), std::make_move_iterator(batch.begin() + i + 1),
                     std::make_move_iterator(batch.end()));
      if (!posted_.empty()) has_posted_.store(true, std::memory_order_release);
      throw;
    }
  }
  return !batch.empty();
}

// RunScope marks this thread as running sched for the length of a step.
class SchedulerImpl::RunScope {
 public:
  explicit RunScope(SchedulerImpl* s) : s_(s) {
    if (s->in_run_ || (tls_scheduler && tls_scheduler != s)) {
      throw std::logic_error("coil: Scheduler::run() called while a scheduler runs on this thread");
    }
    install_overflow_guard();  // this thread needs its own sigaltstack
    s->in_run_ = true;
    s->run_tid = static_cast<int>(::gettid());
    tls_scheduler = s;
    saved_wake_fd_ = tls_signals.wake_fd.exchange(s->poller_.notify_fd());
    s->main_tsan_fiber_ = tsan_current_fiber();
#if COIL_ASAN
    if (!s->main_stack_lo || !pthread_equal(s->main_stack_thread_, pthread_self())) {
      thread_stack_bounds(&s->main_stack_lo, &s->main_stack_size);
      s->main_stack_thread_ = pthread_self();
    }
#endif
  }
  ~RunScope() {
    tls_signals.wake_fd.store(saved_wake_fd_);
    s_->in_run_ = false;
    s_->run_tid = 0;
    tls_scheduler = nullptr;
  }

 private:
  SchedulerImpl* s_;
  int saved_wake_fd_ = -1;
};

COIL_HOT bool SchedulerImpl::step(bool may_block) {
  if (posts_pending()) run_posted();
  run_ready_batch();
  // The calls the batch queued are made before anything else: their callers are ready again.
  flush_batch();
  // Deadlines that passed while coroutines ran (or a manual clock that was
  // advanced) are due now, before deciding to block.
  if (!sleeping_.empty()) fire_timers(clock_->now());
  // Signal handlers that ran since the last step end interruptible waits.
  if (tls_signals.any.load(std::memory_order_relaxed) != signals_seen_) deliver_signals();
  bool busy = !ready_.empty();
  if (!busy && live_ == 0 && keep_alive_.load() == 0 && !posts_pending()) return false;
  if (!busy && !posts_pending() && keep_alive_.load() == 0 && poller_.waiter_count() == 0 &&
      (sleeping_.empty() || clock_->is_manual())) {
    report_deadlock();
  }
  poll_and_fire(busy || !may_block);
  return true;
}

void SchedulerImpl::run() {
  RunScope scope(this);
  while (step(/*may_block=*/true)) {
  }
}

bool SchedulerImpl::run_once(bool may_block) {
  RunScope scope(this);
  return step(may_block);
}

void SchedulerImpl::post(std::function<void()> fn) {
  {
    InternalScope internal;
    std::lock_guard lock(posted_mutex_);
    posted_.push_back(std::move(fn));
    has_posted_.store(true, std::memory_order_release);
  }
  poller_.notify();
}

void SchedulerImpl::add_keep_alive() noexcept { keep_alive_.fetch_add(1); }

void SchedulerImpl::drop_keep_alive() noexcept {
  if (keep_alive_.fetch_sub(1) == 1) poller_.notify();  // let an idle run() re-check
}

void SchedulerImpl::after_fork_in_child() noexcept {
  new (&posted_mutex_) std::mutex;  // another thread may have held it at the fork
  posted_.clear();                  // wake-ups from threads the child does not have
  has_posted_.store(false, std::memory_order_relaxed);
  new (&inbox_lock_) SpinLock;   // as posted_mutex_
  if (running_) inbox_.clear();  // abandoned below, with every other coroutine
  keep_alive_.store(0, std::memory_order_relaxed);
  if (running_) abandon_all_but(running_);
  batch_.drop_after_fork();
  int old_notify = poller_.notify_fd();
  try {
    poller_.reset_after_fork(/*keep_waiters=*/!running_);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "coil: the fork()ed child cannot have its own epoll: %s\n", e.what());
    std::abort();
  }
  if (tls_signals.wake_fd.load() == old_notify) tls_signals.wake_fd.store(poller_.notify_fd());
}

// abandon_all_but() leaves the child of a fork() made in coroutine keep as the child of a
// threaded program is left: with only the thread that forked. The others are dropped from every
// queue and never run again; their stacks stay mapped (the child's copies, like a vanished
// thread's) so that the objects on them that others point to stay readable. Finished ones stay,
// to be joined.
void SchedulerImpl::abandon_all_but(Coroutine* keep) noexcept {
  ready_.clear();
  sleeping_.clear();
  masks_ = nullptr;  // every parked ppoll/pselect's, none of them keep's
  for (auto it = all_.begin(); it != all_.end();) {
    Coroutine& co = *it;
    if (&co == keep || co.state.load(std::memory_order_relaxed) == CoState::kDone) {
      ++it;
      continue;
    }
    co.state.store(CoState::kLost, std::memory_order_relaxed);  // wake() refuses it
    it = all_.erase(it);
    --live_;
  }
}

void SchedulerImpl::report_deadlock() {
  // Appended piece by piece: GCC 12 at -O3 warns falsely (-Wrestrict) on a
  // long operator+ chain.
  std::string msg = "coil: deadlock: ";
  msg += std::to_string(live_);
  msg +=
      " coroutine(s) can never be woken (nothing ready, sleeping on a real clock or waiting on "
      "an fd, and no KeepAlive):";
  int shown = 0;
  for (const Coroutine& co : all_) {
    if (co.state.load(std::memory_order_relaxed) == CoState::kDone) continue;
    if (shown++ == 10) {
      msg += " ...";
      break;
    }
    msg += ' ';
    msg += std::to_string(co.id);
    msg += " \"";
    msg += co.name;
    msg += '"';
    if (co.sleep_hook.is_linked()) msg += " (asleep on a manual clock)";
  }
  throw DeadlockError(msg);
}

SchedulerStats SchedulerImpl::stats() const noexcept {
  SchedulerStats s;
  s.spawns = spawns_;
  s.switches = switches_;
  s.polls = polls_;
  s.syscalls_avoided = avoided_;
  s.syscalls_batched = batched_;
  s.batch_submits = batch_enters_;
  s.stack_maps = stacks_.stats().maps;
  s.stack_pool_hits = stacks_.stats().hits;
  s.stack_pool_misses = stacks_.stats().misses;
  s.stacks_in_use = stacks_.stats().in_use;
  s.live_coroutines = live_;
  s.peak_coroutines = peak_;
  return s;
}

void SchedulerImpl::restart_stats() noexcept {
  for (StatCounter* c : {&spawns_, &switches_, &polls_, &avoided_, &batched_, &batch_enters_}) {
    c->set(0);
  }
  peak_.set(live_.get());
  stacks_.restart_stats();
}

// unwind_all() runs at destruction: coroutines that never started are
// dropped, suspended ones are resumed with cancelled set so that park()
// throws ForcedUnwind and their destructors run, finished ones are freed.
//
// Destructors that run meanwhile may drop JoinHandles, which detach (and so
// release) other coroutines: the list is therefore searched afresh after
// every step, never walked from a snapshot, and a finished coroutine whose
// handle may still be alive is released last, not while handles can reach
// it. Handles held outside the scheduler must not outlive it.
void SchedulerImpl::unwind_all() noexcept {
  unwinding_ = true;  // no hand-overs: every switch comes back to this loop
  tls_scheduler = this;
  flush_batch();  // parked callers' calls: the ring must not outlive their frames
  take_inbox();
  auto first = [this](auto pred) -> Coroutine* {
    for (Coroutine& co : all_) {
      if (pred(co)) return &co;
    }
    return nullptr;
  };
  // 1. Suspended coroutines unwind; park() and yield() throw at once for a
  //    cancelled coroutine, so each runs to its exit in one resume.
  while (Coroutine* co = first([](const Coroutine& c) {
           return c.started && c.state.load(std::memory_order_relaxed) != CoState::kDone &&
                  !c.cancelled;
         })) {
    if (co->ready_hook.is_linked()) ready_.erase(ready_.iterator_to(*co));
    if (co->sleep_hook.is_linked()) sleeping_.erase(sleeping_.iterator_to(*co));
    co->cancelled = true;
    resume(co);
    if (co->state.load(std::memory_order_relaxed) != CoState::kDone) {
      std::fprintf(stderr, "coil: coroutine %llu \"%s\" refused to unwind (caught ForcedUnwind)\n",
                   static_cast<unsigned long long>(co->id), co->name);
      std::abort();
    }
  }
  // 2. Coroutines that never ran: drop their function objects (whose
  //    captures may hold handles) without running them.
  while (Coroutine* co = first([](const Coroutine& c) {
           return c.state.load(std::memory_order_relaxed) != CoState::kDone;
         })) {
    if (co->ready_hook.is_linked()) ready_.erase(ready_.iterator_to(*co));
    co->state.store(CoState::kDone, std::memory_order_relaxed);
    --live_;
    if (shared_live) shared_live->drop();
    destroy_body(co);
  }
  // 3. What is left finished but was never joined: free it.
  while (!all_.empty()) release(&all_.front());
  tls_scheduler = nullptr;
}

}  // namespace coil::detail
