// Parking green threads by address, the way futex(2) parks OS threads: the one waiting primitive
// the emulated mutexes, condition variables, rwlocks, barriers and semaphores are built on. Their
// state stays in the program's own pthread objects; only the queue of waiters is here, in a table
// keyed by the object's address.
//
// Threads: with --threads, green threads run on several workers. Every operation on an emulated
// object runs inside a MonitorScope for that object, which holds the spin lock of the table
// bucket the object hashes to: so each operation sees and changes the object's state alone, as
// with one worker, and a wait's check of the state and its park cannot be split by a waker. A
// wait in a scope parks with the lock released (detail::park_unlock()) and takes it back when it
// resumes. Nothing that may switch coroutines (a yield, a hooked call) runs inside a scope.
#pragma once

#include <time.h>

#include <atomic>
#include <boost/intrusive/list_hook.hpp>
#include <cstdint>

#include "coil/time.hpp"

namespace coil::detail {
class Coroutine;
}

namespace coil::preload {

struct FutexBucket;

// FutexWaiter is one parked green thread in a bucket's queue, on its own stack for the length of
// the wait.
struct FutexWaiter : boost::intrusive::list_base_hook<> {
  const void* word = nullptr;
  detail::Coroutine* co = nullptr;
  bool woken = false;
};

// MonitorScope holds the lock of object's bucket for its lifetime (less the waits). Scopes do not
// nest: an operation on two objects (a condition variable's wait, with its mutex) takes one scope
// after the other. Precondition: in_green_thread().
class MonitorScope {
 public:
  explicit MonitorScope(const void* object) noexcept;
  ~MonitorScope();
  MonitorScope(const MonitorScope&) = delete;
  MonitorScope& operator=(const MonitorScope&) = delete;

  // unlock() and lock() open and close a window in the scope, for another object's scope.
  void unlock() noexcept;
  void lock() noexcept;

 private:
  FutexBucket* bucket_;
  bool held_ = false;
};

// FutexResult says how futex_wait() ended.
enum class FutexResult {
  kWoken,     // futex_wake() chose this waiter (or, rarely, a spurious wake-up: recheck)
  kMismatch,  // *word != expected on entry: did not wait
  kTimeout,   // deadline passed first
};

// futex_wait() parks the calling green thread on word until futex_wake(word) picks it or the
// deadline (on coil's steady clock) passes, if *word == expected on entry. Not interruptible by
// signals, like the pthread waits it stands for (pthread_cond_wait, sem_wait aside: see below).
// Inside a MonitorScope it uses the scope's bucket; outside one, it locks word's own bucket. So
// every futex call on the words of an object that scopes use must be made in its scope (or the
// object must be the word itself). Precondition: in_green_thread().
FutexResult futex_wait(const std::atomic<std::uint32_t>* word, std::uint32_t expected,
                       TimePoint deadline = kNoDeadline);

// futex_wait_interruptible() is futex_wait() that a caught signal also ends (sem_wait and
// sem_timedwait return EINTR, unlike the pthread calls). Returns false if a signal ended it.
bool futex_wait_interruptible(const std::atomic<std::uint32_t>* word, std::uint32_t expected,
                              TimePoint deadline, FutexResult* result);

// FutexWait is a wait queued now and parked later, for a waiter that must let go of something
// in between (a condition variable's waiter queues itself, then unlocks the mutex): a wake-up
// that comes in between is kept. Made and parked inside a MonitorScope of word's object.
class FutexWait {
 public:
  explicit FutexWait(const std::atomic<std::uint32_t>* word) noexcept;
  ~FutexWait();  // leaves the queue if still on it
  FutexWait(const FutexWait&) = delete;
  FutexWait& operator=(const FutexWait&) = delete;

  // park() waits until woken (at once if it was meanwhile) or the deadline passes.
  FutexResult park(TimePoint deadline);

 private:
  FutexBucket* bucket_;  // the scope's
  FutexWaiter waiter_;
};

// futex_wake() wakes up to n green threads parked on word, longest waiting first, and returns how
// many it woke. n = INT_MAX wakes all. Any worker may wake any other's.
int futex_wake(const void* word, int n) noexcept;

// futex_waiters() is true if a green thread is parked on word (a cheap check that lets an unlock
// skip the table when nobody waits).
bool futex_waiters(const void* word) noexcept;

// futex_forget_all() empties every queue and resets every lock: in a fork()ed child, whose only
// thread is the one that forked, the parked green threads are gone and must not take the
// wake-ups meant for it.
void futex_forget_all() noexcept;

// in_monitor() is true inside a MonitorScope on this thread (for assertions).
bool in_monitor() noexcept;

// deadline_from() converts a pthread/sem absolute timeout on clock (CLOCK_REALTIME or
// CLOCK_MONOTONIC) into a deadline on coil's steady clock. A time already past gives a deadline
// already past. (A realtime clock set while waiting is not followed: the wait lasts the time that
// was left when it began.)
TimePoint deadline_from(clockid_t clock, const timespec& abstime) noexcept;

}  // namespace coil::preload
