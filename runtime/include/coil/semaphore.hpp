// coil::Semaphore: a counting semaphore for coroutines.
//
//   coil::Semaphore slots(4);       // at most 4 at a time
//   slots.acquire(); work(); slots.release();
#pragma once

#include <cstddef>

#include "coil/detail/wait_list.hpp"
#include "coil/time.hpp"

namespace coil {

// Semaphore holds a count of permits. It is fair: release() hands permits
// straight to waiting coroutines in FIFO order, so try_acquire() cannot take
// a permit ahead of a coroutine that is already waiting.
class Semaphore {
 public:
  // Semaphore() starts with initial permits. Precondition: initial >= 0
  // (else std::invalid_argument).
  explicit Semaphore(std::ptrdiff_t initial = 0);
  // ~Semaphore() destroys it. Precondition: nobody waiting.
  ~Semaphore() = default;
  Semaphore(const Semaphore&) = delete;
  Semaphore& operator=(const Semaphore&) = delete;

  // acquire() takes one permit, parking in FIFO order until one is free.
  // Throws std::logic_error outside a coroutine.
  void acquire();

  // try_acquire() takes a permit if one is free and returns true. Never
  // blocks; works on any thread.
  bool try_acquire() noexcept;

  // try_acquire_for() is acquire() giving up after timeout on the scheduler
  // clock; returns true if it took a permit. Throws like acquire().
  bool try_acquire_for(Duration timeout);

  // try_acquire_until() is acquire() giving up at deadline on the scheduler
  // clock; returns true if it took a permit. Throws like acquire().
  bool try_acquire_until(TimePoint deadline);

  // release() adds n permits, first handing one each to the longest waiting
  // coroutines. Precondition: n >= 0 (else std::invalid_argument). Works
  // on any thread.
  void release(std::ptrdiff_t n = 1);

  // available() is the number of free permits now.
  std::ptrdiff_t available() const noexcept;

 private:
  bool acquire_until(TimePoint deadline, const char* op);
  bool take() noexcept;  // under lock_

  mutable detail::SpinLock lock_;  // around the fields below (wait_list.hpp)
  std::ptrdiff_t count_;
  detail::WaitList<> waiters_;  // non-empty only while count_ == 0
};

}  // namespace coil
