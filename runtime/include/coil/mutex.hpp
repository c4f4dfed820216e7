// coil::Mutex: a mutex for coroutines, of one or several worker threads. A coroutine that
// finds it locked parks (the thread runs other coroutines) instead of
// blocking the thread.
//
//   coil::Mutex mu;
//   { std::lock_guard lock(mu); ...; coil::yield(); ... }  // still exclusive
#pragma once

#include "coil/detail/wait_list.hpp"
#include "coil/time.hpp"

namespace coil {

// Mutex is a fair (FIFO) mutex: unlock() hands ownership straight to the
// longest waiting coroutine, so a coroutine that comes along later and calls
// try_lock() or lock() cannot barge past it and starve it. It meets the
// Lockable and TimedLockable requirements, so std::lock_guard,
// std::unique_lock and std::scoped_lock work with it. Not recursive.
//
// Misuse is reported the way std::mutex reports it where it can: lock() or
// try_lock_for/until() by the coroutine that owns the mutex throws
// std::system_error with errc::resource_deadlock_would_occur (EDEADLK);
// unlock() by a coroutine that does not own it throws std::system_error with
// errc::operation_not_permitted (EPERM).
//
// Code outside any coroutine (a post()ed function, a plain thread)
// counts as one more owner: it may try_lock() and unlock(), but not lock().
class Mutex {
 public:
  // Mutex() makes an unlocked mutex.
  Mutex() = default;
  // ~Mutex() destroys the mutex. Precondition: unlocked and nobody waiting.
  ~Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  // lock() takes the mutex, parking the coroutine in FIFO order while others
  // hold it. Throws std::system_error (EDEADLK) if the caller owns it already
  // and std::logic_error outside a coroutine. If the scheduler is destroyed
  // while it waits, it exits by forced unwind without the mutex.
  void lock();

  // try_lock() takes the mutex if it is free and returns true; false if any
  // coroutine (the caller included) holds it. Never blocks; works outside
  // coroutines, on any thread.
  bool try_lock() noexcept;

  // try_lock_for() is lock() giving up after timeout on the scheduler clock;
  // returns true if it took the mutex. A timeout of zero or less tries once.
  // Throws like lock().
  bool try_lock_for(Duration timeout);

  // try_lock_until() is lock() giving up at deadline on the scheduler clock;
  // returns true if it took the mutex. Throws like lock().
  bool try_lock_until(TimePoint deadline);

  // unlock() releases the mutex, handing it to the longest waiting coroutine
  // if there is one (and waking it). Precondition: the caller owns the mutex;
  // else std::system_error (EPERM).
  void unlock();

 private:
  bool lock_until(TimePoint deadline, const char* op);

  mutable detail::SpinLock lock_;       // around the fields below (wait_list.hpp)
  detail::Coroutine* owner_ = nullptr;  // nullptr: code outside coroutines, if locked_
  bool locked_ = false;
  detail::WaitList<> waiters_;  // non-empty only while locked_
};

}  // namespace coil
