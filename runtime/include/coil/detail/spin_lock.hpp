// SpinLock: the lock around the state of a sync primitive that coroutines of
// several worker threads share (Mutex, CondVar, Channel, WaitGroup,
// Semaphore), and around a scheduler's inbox of wake-ups from other threads.
//
// Why a spin lock and not std::mutex: every section it guards is a few loads
// and stores (a flag, a count, a list link, a wake-up), so a holder is almost
// never descheduled inside it; and it is plain atomics, so it never calls into
// pthread, which coil-run interposes (a pthread_mutex_lock inside a coroutine
// would be a green thread's and park). A waiter spins with PAUSE, then
// gives its CPU away with sched_yield(2) between tries, so a holder that was
// preempted is not starved on a machine with fewer CPUs than spinners.
#pragma once

#include <atomic>

namespace coil::detail {

class SpinLock {
 public:
  SpinLock() = default;
  SpinLock(const SpinLock&) = delete;
  SpinLock& operator=(const SpinLock&) = delete;

  // lock() takes the lock, spinning while another thread holds it.
  void lock() noexcept {
    if (!locked_.exchange(true, std::memory_order_acquire)) return;
    lock_slow();
  }

  // try_lock() takes the lock if it is free and returns true.
  bool try_lock() noexcept {
    return !locked_.load(std::memory_order_relaxed) &&
           !locked_.exchange(true, std::memory_order_acquire);
  }

  // unlock() releases the lock. Precondition: held by the caller.
  void unlock() noexcept { locked_.store(false, std::memory_order_release); }

 private:
  void lock_slow() noexcept;  // sync.cpp

  std::atomic<bool> locked_{false};
};

}  // namespace coil::detail
