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

#include "coil/detail/park.hpp"

namespace coil::hook {

// lock_pause() parks for the n-th pause between attempts; false (errno
// EINTR) when a caught signal ended it (inside wait_for_lock's
// InterruptibleWait).
bool lock_pause(int n);

// wait_for_lock() calls try_once() (one non-blocking attempt: 0, or -1 with
// errno) until the lock is taken, an error other than "held elsewhere"
// (EWOULDBLOCK, EAGAIN, EACCES) occurs, or a signal interrupts the wait.
// Precondition: inside a coroutine.
template <class Try>
int wait_for_lock(Try&& try_once) {
  detail::InterruptibleWait scope(detail::Interrupt::kUnlessRestart);
  for (int n = 0;; ++n) {
    int rc = try_once();
    if (rc == 0 || (errno != EWOULDBLOCK && errno != EAGAIN && errno != EACCES)) return rc;
    if (!lock_pause(n)) return -1;
  }
}

}  // namespace coil::hook
