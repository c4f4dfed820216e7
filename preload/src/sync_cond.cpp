// pthread condition variables for green threads: wait, timedwait and clockwait park the green
// thread; signal and broadcast wake the longest-waiting one, or all.
//
// Layout: glibc's, and the emulation never writes it. It reads the two flag bits glibc's
// pthread_cond_init keeps in __wrefs (the clock, CLOCK_MONOTONIC if set; process-shared) and
// parks waiters on that word's address in the futex table (green_futex.hpp). So
// PTHREAD_COND_INITIALIZER (all zero: the realtime clock) and a cond initialised by glibc, before
// main() or after, work unchanged, and pthread_cond_init and pthread_cond_destroy need no hook:
// glibc's init writes the flags, and its destroy, which waits for waiters glibc counts in
// __wrefs, finds none. Process-shared conds are glibc's (a green thread waiting on one blocks the
// OS thread; use it with a process-shared mutex, as the other process must).
//
// Why no sequence number: a waiter queues itself (FutexWait) in the cond's MonitorScope before it
// releases the mutex, and parks after, so a signal made in between, on any worker, finds it
// queued and the park returns at once.
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <time.h>

#include <atomic>
#include <climits>
#include <cstdint>

#include "green.hpp"
#include "green_futex.hpp"
#include "real_pthread.hpp"
#include "sync_util.hpp"

namespace coil::preload::sync {
namespace {

static_assert(sizeof(pthread_cond_t) == 48, "glibc's x86-64 pthread_cond_t");
static_assert(offsetof(pthread_cond_t, __data.__wrefs) == 36, "__wrefs: the flags");

// __wrefs's flag bits (glibc's __PTHREAD_COND_SHARED_MASK, __PTHREAD_COND_CLOCK_MONOTONIC_MASK).
constexpr std::uint32_t kShared = 1;
constexpr std::uint32_t kMonotonic = 2;

// waiters_word() is the word green waiters park on.
std::atomic<std::uint32_t>* waiters_word(pthread_cond_t* c) {
  return word_at(c, offsetof(pthread_cond_t, __data.__wrefs));
}

std::uint32_t flags(pthread_cond_t* c) { return waiters_word(c)->load(std::memory_order_relaxed); }

bool shared(pthread_cond_t* c) { return (flags(c) & kShared) != 0; }

clockid_t clock_of(pthread_cond_t* c) {
  return (flags(c) & kMonotonic) != 0 ? CLOCK_MONOTONIC : CLOCK_REALTIME;
}

// wait() releases m, parks until a signal or the deadline, and takes m back (whatever the
// outcome, as pthread_cond_wait must), returning 0 or ETIMEDOUT, or the error of an unlock that
// failed (EPERM: an error-checking mutex the caller does not hold) without waiting.
int wait(pthread_cond_t* c, pthread_mutex_t* m, TimePoint deadline) {
  MonitorScope scope(c);
  FutexWait waiting(waiters_word(c));  // queued before m is released: no signal is missed
  scope.unlock();                      // m's operations take m's scope
  if (int rc = unlock_for_wait(m); rc != 0) return rc;
  scope.lock();
  const FutexResult result = waiting.park(deadline);
  scope.unlock();
  // A deadline already past parks not at all: the others still get to run while m is free, as
  // they would natively (after_refusal() in sync_util.hpp says why).
  if (result == FutexResult::kTimeout) coil::yield();
  if (int rc = relock_after_wait(m); rc != 0) return rc;
  return result == FutexResult::kTimeout ? ETIMEDOUT : 0;
}

}  // namespace
}  // namespace coil::preload::sync

using namespace coil::preload;
using namespace coil::preload::sync;

COIL_HOOK int pthread_cond_wait(pthread_cond_t* c, pthread_mutex_t* m) {
  if (!in_green_thread() || shared(c)) return real::pthread_cond_wait(c, m);
  return wait(c, m, coil::kNoDeadline);
}

// pthread_cond_timedwait's abstime is on the cond's clock (its condattr's, realtime by default).
COIL_HOOK int pthread_cond_timedwait(pthread_cond_t* c, pthread_mutex_t* m,
                                     const timespec* abstime) {
  if (!in_green_thread() || shared(c)) return real::pthread_cond_timedwait(c, m, abstime);
  if (!valid_nsec(*abstime)) return EINVAL;
  return wait(c, m, deadline_of(clock_of(c), *abstime));
}

// pthread_cond_clockwait (libstdc++'s condition_variable::wait_until and wait_for) names its
// clock.
COIL_HOOK int pthread_cond_clockwait(pthread_cond_t* c, pthread_mutex_t* m, clockid_t clock,
                                     const timespec* abstime) {
  if (!in_green_thread() || shared(c)) return real::pthread_cond_clockwait(c, m, clock, abstime);
  if (!valid_nsec(*abstime) || !supported_clock(clock)) return EINVAL;
  return wait(c, m, deadline_of(clock, *abstime));
}

COIL_HOOK int pthread_cond_signal(pthread_cond_t* c) noexcept {
  if (!in_green_thread() || shared(c)) return real::pthread_cond_signal(c);
  MonitorScope scope(c);
  futex_wake(waiters_word(c), 1);
  return 0;
}

COIL_HOOK int pthread_cond_broadcast(pthread_cond_t* c) noexcept {
  if (!in_green_thread() || shared(c)) return real::pthread_cond_broadcast(c);
  MonitorScope scope(c);
  futex_wake(waiters_word(c), INT_MAX);
  return 0;
}
