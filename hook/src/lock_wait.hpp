// wait_for_lock(): the coroutine side of a blocking file lock (flock,
// fcntl F_SETLKW, F_OFD_SETLKW). In a coroutine a blocking lock would stall
// the thread, and no fd event announces that a lock was released. So the
// lock is tried without blocking and, while it is held elsewhere, tried
// again after a pause that grows from 1 to 10 ms: a waiter costs at most
// 100 syscalls a second and holds no thread, and a released lock is taken
// within 10 ms. A caught signal ends the wait as it ends the kernel's (EINTR,
// unless the handler has SA_RESTART).
//
// Cut: the kernel's deadlock detection for F_SETLKW (EDEADLK) needs the
// blocking call; a retried F_SETLK never reports it.
#pragma once

#include <cerrno>
#include <chrono>

#include "io.hpp"

namespace coil::hook {

// lock_busy() is true for the errors that mean "held elsewhere".
inline bool lock_busy(int err) noexcept {
  return err == EWOULDBLOCK || err == EAGAIN || err == EACCES;
}

// wait_for_lock() calls try_once() (one non-blocking attempt: 0, or -1 with
// errno) until the lock is taken, an error other than "held elsewhere"
// occurs, or a signal interrupts the wait. Precondition: inside a coroutine.
template <class Try>
int wait_for_lock(Try&& try_once) {
  int rc = try_once();
  if (rc == 0 || !lock_busy(errno)) return rc;
  using std::chrono::milliseconds;
  Deadline forever(0);
  return retry_paused(try_once, lock_busy, forever, Pauses{milliseconds(1), milliseconds(10)});
}

}  // namespace coil::hook
