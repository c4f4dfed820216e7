// coil::CondVar: a condition variable for coroutines, used with coil::Mutex.
//
//   std::unique_lock lock(mu);
//   cv.wait(lock, [&] { return !queue.empty(); });
#pragma once

#include <condition_variable>
#include <mutex>
#include <utility>

#include "coil/detail/wait_list.hpp"
#include "coil/mutex.hpp"
#include "coil/time.hpp"

namespace coil {

// CondVar lets coroutines wait, with a coil::Mutex released, until another
// coroutine notifies them. Waiters are woken in FIFO order. Timeouts run on
// the scheduler clock (SchedulerOptions::clock), so a ManualClock drives them.
// As with std::condition_variable, a woken waiter must recheck its condition:
// use the predicate overloads.
class CondVar {
 public:
  // CondVar() makes a condition variable nobody waits on.
  CondVar() = default;
  // ~CondVar() destroys it. Precondition: nobody waiting.
  ~CondVar() = default;
  CondVar(const CondVar&) = delete;
  CondVar& operator=(const CondVar&) = delete;

  // wait() releases lock's mutex, parks until notified, and locks it again
  // before returning. Precondition: lock owns the mutex (else
  // std::system_error EPERM); called in a coroutine (else std::logic_error).
  // If the scheduler is destroyed while it waits, it exits by forced unwind
  // with lock not owning the mutex.
  void wait(std::unique_lock<Mutex>& lock);

  // wait(lock, pred) waits until pred() is true. Preconditions as wait().
  template <class Predicate>
  void wait(std::unique_lock<Mutex>& lock, Predicate pred) {
    while (!pred()) wait(lock);
  }

  // wait_until() is wait() giving up at deadline: returns
  // std::cv_status::timeout if the deadline passed without a notification.
  // The mutex is locked again either way. Preconditions as wait().
  std::cv_status wait_until(std::unique_lock<Mutex>& lock, TimePoint deadline);

  // wait_until(lock, deadline, pred) waits until pred() is true or the
  // deadline passes, and returns pred(). Preconditions as wait().
  template <class Predicate>
  bool wait_until(std::unique_lock<Mutex>& lock, TimePoint deadline, Predicate pred) {
    while (!pred()) {
      if (wait_until(lock, deadline) == std::cv_status::timeout) return pred();
    }
    return true;
  }

  // wait_for() is wait_until() with a deadline timeout from now on the
  // scheduler clock. Preconditions as wait().
  std::cv_status wait_for(std::unique_lock<Mutex>& lock, Duration timeout);

  // wait_for(lock, timeout, pred) is wait_until(lock, now + timeout, pred).
  // Preconditions as wait().
  template <class Predicate>
  bool wait_for(std::unique_lock<Mutex>& lock, Duration timeout, Predicate pred) {
    return wait_until(lock, detail::deadline_after(timeout), std::move(pred));
  }

  // notify_one() wakes the longest waiting coroutine, if any. Works on any
  // thread, with or without the mutex held.
  void notify_one() noexcept;

  // notify_all() wakes every waiting coroutine. Works on any thread.
  void notify_all() noexcept;

 private:
  detail::SpinLock lock_;  // around waiters_ (wait_list.hpp)
  detail::WaitList<> waiters_;
};

}  // namespace coil
