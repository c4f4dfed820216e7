// The parking interface: how a coroutine suspends itself until something
// wakes it. Sync primitives (Mutex, Channel, ...) and the hook layer are
// written against this and nothing else of the scheduler.
#pragma once

#include <signal.h>

#include <cstdint>

#include "coil/time.hpp"

namespace coil::detail {

class Coroutine;

// WakeReason says why park() returned.
enum class WakeReason : std::uint8_t {
  kWoken,        // somebody called wake()
  kTimeout,      // the deadline passed first
  kInterrupted,  // a caught signal ended an InterruptibleWait (never otherwise)
};

// Interrupt says whether a signal handler that runs on this thread ends a
// wait, as it ends the blocking system call the wait stands in for (see
// signal(7), "Interruption of system calls and library functions").
enum class Interrupt : std::uint8_t {
  kNever,          // coil's own waits: Mutex, Channel, sleep_for, join...
  kUnlessRestart,  // read, write, accept, connect...: SA_RESTART restarts them
  kAlways,         // poll, select, epoll_wait, sleeps, calls under SO_RCVTIMEO
};

// current_coroutine() returns the running coroutine of this thread, or
// nullptr outside coroutines.
Coroutine* current_coroutine() noexcept;

// park() suspends the current coroutine until wake() or the deadline.
// Precondition: called inside a coroutine. The caller must have made itself
// findable by its waker (put itself on a wait list) before calling park().
// When the owning Scheduler is being destroyed, park() throws a forced-unwind
// exception so the coroutine's destructors run; do not swallow it with
// catch (...) without rethrowing.
WakeReason park(TimePoint deadline = kNoDeadline);

class SpinLock;

// park_unlock() is park() for a waiter that another worker thread may wake:
// called holding lock, after the caller made itself findable under it, it
// releases lock once the coroutine counts as parked (a waker that takes lock
// and finds the caller will wake it) and then suspends. It returns as park()
// does, without the lock; a deadline already past returns kTimeout at once.
WakeReason park_unlock(TimePoint deadline, SpinLock& lock);

// wake() makes a parked coroutine ready and returns true; it returns false
// (and does nothing) if co is not parked, for instance because its deadline
// already fired. Any thread may call it: from another thread than co's
// scheduler's, co goes into that scheduler's inbox and the scheduler is
// woken if it sleeps in epoll. Precondition: co cannot finish meanwhile (the
// caller holds the lock co waits under, or co's scheduler thread calls).
bool wake(Coroutine* co) noexcept;

// InterruptibleWait makes the running coroutine's waits interruptible for
// its lifetime: a signal handler that runs on this thread after it began, and
// that matches mode, wakes the coroutine's park() with kInterrupted (and
// wait_for_fd() and wait_for_any_fd() with kError, errno EINTR). The
// scheduler learns of handlers through note_signal(). Outside coroutines,
// interrupted() answers the same question for a wait in poll(2) that met
// EINTR.
class InterruptibleWait {
 public:
  explicit InterruptibleWait(Interrupt mode) noexcept;
  ~InterruptibleWait();
  InterruptibleWait(const InterruptibleWait&) = delete;
  InterruptibleWait& operator=(const InterruptibleWait&) = delete;

  // interrupted() is true once a matching handler has run since the start.
  bool interrupted() const noexcept;

 private:
  Coroutine* co_;
  Interrupt mode_;
  Interrupt saved_mode_ = Interrupt::kNever;
  std::uint32_t mark_;
  std::uint32_t saved_mark_ = 0;
};

// SignalCheck notes the caught signals that have run on this thread so far, to tell later
// whether one ran since: the check a call makes when a try it made without waiting (one the
// scheduler held in its batch a while, coil/detail/batch.hpp) finds it must now wait, since a
// handler that ran during the call ends the blocking call in the kernel.
class SignalCheck {
 public:
  SignalCheck() noexcept;
  // ran() is true if a handler that mode counts has run on this thread since construction.
  bool ran(Interrupt mode) const noexcept;

 private:
  std::uint32_t any_;
  std::uint32_t no_restart_;
};

// WaitSignalMask applies a ppoll, pselect or epoll_pwait signal mask to the
// running coroutine's waits for its lifetime: while the coroutine is parked,
// its scheduler waits in epoll_pwait2 with that mask (with several, it
// blocks only what all of them block), so that a signal the mask unblocks is
// delivered then, and ends the wait if an InterruptibleWait is active.
// Outside coroutines, or with a null mask, it does nothing.
class WaitSignalMask {
 public:
  explicit WaitSignalMask(const sigset_t* mask) noexcept;
  ~WaitSignalMask();
  WaitSignalMask(const WaitSignalMask&) = delete;
  WaitSignalMask& operator=(const WaitSignalMask&) = delete;

  const sigset_t* mask() const noexcept { return mask_; }
  WaitSignalMask* next = nullptr;  // the scheduler's list of masks in force
  WaitSignalMask* prev = nullptr;

 private:
  const sigset_t* mask_;
  Coroutine* co_;
};

// note_signal() records that a signal handler ran on this thread, installed
// with SA_RESTART (restart) or without, and wakes this thread's scheduler if
// it sleeps in epoll. Async-signal-safe: the hook layer's handler
// trampoline calls it.
void note_signal(bool restart) noexcept;

// HandlerScope brackets the run of a program's signal handler on this thread
// (the hook layer's trampoline makes one). While one lives,
// in_signal_handler() is true: coil's emulations that are not
// async-signal-safe (a green thread's sem_post, which would touch the wait
// queues the handler may have interrupted) take their signal-safe path.
class HandlerScope {
 public:
  HandlerScope() noexcept;
  ~HandlerScope();
  HandlerScope(const HandlerScope&) = delete;
  HandlerScope& operator=(const HandlerScope&) = delete;
};

// in_signal_handler() is true inside a HandlerScope on this thread.
bool in_signal_handler() noexcept;

// now() returns the time of the current thread's scheduler clock (the steady
// clock outside a scheduler).
TimePoint now() noexcept;

}  // namespace coil::detail
