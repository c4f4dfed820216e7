// What the emulated pthread synchronisation objects (sync_mutex.cpp, sync_cond.cpp,
// sync_rwlock.cpp, sync_misc.cpp) share: a view of a field of the program's own object as an
// atomic word, the checks glibc makes of an absolute timeout, and the mutex operations a
// condition variable's wait is made of.
//
// The rule all of them follow: the state lives in the program's object, in glibc's own fields
// where glibc's static initializers or init functions put data (so that a PTHREAD_*_INITIALIZER
// or an object initialised by glibc before main() works for green threads), and an object at rest
// (nobody holds or waits on it) means the same to the emulation and to glibc. An object must not
// be used by green threads and native threads (threads started before main(), coil's own) at the
// same time: no glibc call wakes a green waiter (a green mutex unlock does wake a native one,
// sync_mutex.cpp). Process-shared objects are glibc's alone.
#pragma once

#include <errno.h>
#include <pthread.h>
#include <time.h>

#include <atomic>
#include <cassert>
#include <climits>
#include <cstddef>
#include <cstdint>

#include "coil/scheduler.hpp"
#include "coil/time.hpp"
#include "green_futex.hpp"

namespace coil::preload::sync {

static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t) &&
                  alignof(std::atomic<std::uint32_t>) == alignof(std::uint32_t) &&
                  std::atomic<std::uint32_t>::is_always_lock_free,
              "a 32-bit field of a pthread object must be usable as a std::atomic<uint32_t>");

// word_at() is the 32-bit field offset bytes into object, as an atomic word: the futex words
// the emulation parks green threads on. Precondition: offset names a 4-byte aligned field.
template <class Object>
std::atomic<std::uint32_t>* word_at(Object* object, std::size_t offset) noexcept {
  return reinterpret_cast<std::atomic<std::uint32_t>*>(reinterpret_cast<char*>(object) + offset);
}

// Wait says how long a mutex or rwlock lock call may wait: not at all, until abstime on clock, or
// for good. abstime is looked at only once the lock is found taken, as glibc does.
struct Wait {
  bool try_only = false;
  const timespec* abstime = nullptr;
  clockid_t clock = CLOCK_REALTIME;
};

// kHandedOver is the owner a mutex (__owner) or rwlock (__cur_writer) records between a hand-over
// to a waiter and that waiter's turn: never a tid or a green_id().
inline constexpr int kHandedOver = INT_MIN;

// valid_nsec() is glibc's valid_nanoseconds(): what EINVAL is about in a timed wait.
inline bool valid_nsec(const timespec& t) noexcept {
  return t.tv_nsec >= 0 && t.tv_nsec < 1'000'000'000;
}

// supported_clock() is true for the clocks glibc's clocked waits accept (else EINVAL).
inline bool supported_clock(clockid_t clock) noexcept {
  return clock == CLOCK_REALTIME || clock == CLOCK_MONOTONIC;
}

// deadline_of() converts a valid absolute timeout on clock into a deadline on coil's clock. As in
// glibc, a negative tv_sec is a time already past (the kernel would refuse it, so glibc times out
// without asking). Times too far ahead to convert are deadline_from()'s to cut off.
inline TimePoint deadline_of(clockid_t clock, const timespec& abstime) noexcept {
  if (abstime.tv_sec < 0) return TimePoint::min();
  return deadline_from(clock, abstime);
}

// after_refusal() passes a lock call's result on, after a yield if it is a refusal (EBUSY, EAGAIN
// or ETIMEDOUT from a try or a timed wait): natively the holder runs on its own thread while a
// program retries in a loop; here it runs only when the caller stops, so without the yield such
// a loop would spin for good. Precondition: in_green_thread(), outside any MonitorScope.
inline int after_refusal(int rc) {
  assert(!in_monitor() && "a yield inside a MonitorScope would hold its lock while switched out");
  if (rc == EBUSY || rc == EAGAIN || rc == ETIMEDOUT) coil::yield();
  return rc;
}

// The mutex half of a condition variable's wait (sync_mutex.cpp). unlock_for_wait() releases
// mutex as pthread_cond_wait does (an error-checking or recursive mutex the caller does not hold
// gives EPERM); relock_after_wait() takes it back, parking as long as it takes. Neither changes
// the mutex's count of users, as glibc's do not: the waiter still counts as one (destroying the
// mutex meanwhile gives EBUSY). Precondition: in_green_thread().
int unlock_for_wait(pthread_mutex_t* mutex);
int relock_after_wait(pthread_mutex_t* mutex);

}  // namespace coil::preload::sync
