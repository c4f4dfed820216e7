// The non-template sync primitives: Mutex, CondVar, WaitGroup, Semaphore.
// Each is a little state plus a detail::WaitList, and follows its hand-off
// protocol (coil/detail/wait_list.hpp): the waker decides who gets what and
// records it in the waiter's node before waking it. Channel<T> is a template
// and lives in coil/channel.hpp.
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <mutex>
#include <stdexcept>
#include <string>
#include <system_error>

#include "coil/cond_var.hpp"
#include "coil/detail/wait_list.hpp"
#include "coil/mutex.hpp"
#include "coil/semaphore.hpp"
#include "coil/wait_group.hpp"

namespace coil {
namespace detail {

void throw_outside_coroutine(const char* op) {
  throw std::logic_error(std::string("coil: ") + op +
                         " may block, so it must be called inside a coroutine "
                         "(this thread is not running one)");
}

}  // namespace detail

// Mutex

void Mutex::lock() { lock_until(kNoDeadline, "Mutex::lock()"); }

bool Mutex::try_lock() noexcept {
  std::lock_guard guard(lock_);
  if (locked_) return false;
  locked_ = true;
  owner_ = detail::current_coroutine();
  return true;
}

bool Mutex::try_lock_for(Duration timeout) {
  return lock_until(detail::deadline_after(timeout), "Mutex::try_lock_for()");
}

bool Mutex::try_lock_until(TimePoint deadline) {
  return lock_until(deadline, "Mutex::try_lock_until()");
}

bool Mutex::lock_until(TimePoint deadline, const char* op) {
  detail::Coroutine* self = detail::coroutine_or_throw(op);
  std::unique_lock guard(lock_);
  if (!locked_) {
    locked_ = true;
    owner_ = self;
    return true;
  }
  if (owner_ == self) {
    throw std::system_error(EDEADLK, std::generic_category(),
                            std::string("coil: ") + op + " by the coroutine that owns the mutex");
  }
  detail::Waiter node(self);
  waiters_.enqueue(node);
  guard.release();  // wait_signaled() unlocks it
  // On success unlock() has already made us the owner. If we are unwound
  // after being handed the mutex, pass it on so it is not held by nobody.
  return waiters_.wait_signaled(node, deadline, lock_, [this] { unlock(); });
}

void Mutex::unlock() {
  std::lock_guard guard(lock_);
  if (!locked_ || owner_ != detail::current_coroutine()) {
    throw std::system_error(EPERM, std::generic_category(),
                            "coil: Mutex::unlock() by a caller that does not own the mutex");
  }
  if (waiters_.empty()) {
    locked_ = false;
    owner_ = nullptr;
    return;
  }
  // Hand-off: the mutex stays locked and changes owner, so nobody can take
  // it between now and the moment the waiter runs.
  owner_ = waiters_.front().co;
  waiters_.wake_front();
}

// CondVar

void CondVar::wait(std::unique_lock<Mutex>& lock) { (void)wait_until(lock, kNoDeadline); }

std::cv_status CondVar::wait_until(std::unique_lock<Mutex>& lock, TimePoint deadline) {
  detail::Coroutine* self = detail::coroutine_or_throw("CondVar::wait()");
  if (!lock.owns_lock()) {
    throw std::system_error(EPERM, std::generic_category(),
                            "coil: CondVar::wait() with a lock that does not own its mutex");
  }
  detail::Waiter node(self);
  // Enqueue before unlocking, so a notify from whoever takes the mutex next
  // cannot be missed.
  {
    std::lock_guard guard(lock_);
    waiters_.enqueue(node);
  }
  lock.unlock();
  lock_.lock();
  // A notification that reached us while we are being unwound goes to the
  // next waiter instead.
  bool notified = waiters_.wait_signaled(node, deadline, lock_, [this] { notify_one(); });
  lock.lock();
  return notified ? std::cv_status::no_timeout : std::cv_status::timeout;
}

std::cv_status CondVar::wait_for(std::unique_lock<Mutex>& lock, Duration timeout) {
  return wait_until(lock, detail::deadline_after(timeout));
}

void CondVar::notify_one() noexcept {
  std::lock_guard guard(lock_);
  if (!waiters_.empty()) waiters_.wake_front();
}

void CondVar::notify_all() noexcept {
  std::lock_guard guard(lock_);
  waiters_.wake_all(detail::WaitState::kSignaled);
}

// WaitGroup

void WaitGroup::add(std::int64_t n) {
  std::lock_guard guard(lock_);
  if (n < 0 && count_ + n < 0) {
    throw std::logic_error("coil: WaitGroup counter would go negative (" + std::to_string(count_) +
                           " + " + std::to_string(n) + ")");
  }
  count_ += n;
  if (count_ == 0) waiters_.wake_all(detail::WaitState::kSignaled);
}

void WaitGroup::wait() {
  detail::Coroutine* self = detail::coroutine_or_throw("WaitGroup::wait()");
  lock_.lock();
  if (count_ == 0) {
    lock_.unlock();
    return;
  }
  detail::Waiter node(self);
  waiters_.enqueue(node);
  waiters_.wait_signaled(node, kNoDeadline, lock_);
}

std::int64_t WaitGroup::count() const noexcept {
  std::lock_guard guard(lock_);
  return count_;
}

// Semaphore

Semaphore::Semaphore(std::ptrdiff_t initial) : count_(initial) {
  if (initial < 0) throw std::invalid_argument("coil: Semaphore with a negative initial count");
}

void Semaphore::acquire() { (void)acquire_until(kNoDeadline, "Semaphore::acquire()"); }

bool Semaphore::try_acquire() noexcept {
  std::lock_guard guard(lock_);
  return take();
}

bool Semaphore::try_acquire_for(Duration timeout) {
  return acquire_until(detail::deadline_after(timeout), "Semaphore::try_acquire_for()");
}

bool Semaphore::try_acquire_until(TimePoint deadline) {
  return acquire_until(deadline, "Semaphore::try_acquire_until()");
}

bool Semaphore::take() noexcept {
  if (count_ == 0) return false;  // waiters exist only when count_ == 0: no barging
  --count_;
  return true;
}

bool Semaphore::acquire_until(TimePoint deadline, const char* op) {
  detail::Coroutine* self = detail::coroutine_or_throw(op);
  lock_.lock();
  if (take()) {
    lock_.unlock();
    return true;
  }
  detail::Waiter node(self);
  waiters_.enqueue(node);
  // A permit handed to us while we are being unwound goes back.
  return waiters_.wait_signaled(node, deadline, lock_, [this] { release(1); });
}

void Semaphore::release(std::ptrdiff_t n) {
  if (n < 0) throw std::invalid_argument("coil: Semaphore::release() of a negative count");
  std::lock_guard guard(lock_);
  for (; n > 0 && !waiters_.empty(); --n) waiters_.wake_front();  // one permit each
  count_ += n;
}

std::ptrdiff_t Semaphore::available() const noexcept {
  std::lock_guard guard(lock_);
  return count_;
}

// SpinLock

void detail::SpinLock::lock_slow() noexcept {
  for (int spins = 0;; ++spins) {
    if (!locked_.load(std::memory_order_relaxed) &&
        !locked_.exchange(true, std::memory_order_acquire)) {
      return;
    }
    if (spins < 64) {
      __builtin_ia32_pause();
    } else {
      ::syscall(SYS_sched_yield);  // not sched_yield(): coil-run hooks it to yield the coroutine
    }
  }
}

}  // namespace coil
