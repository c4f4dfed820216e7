// Parking green threads by address, the way futex(2) parks OS threads: the one waiting primitive
// the emulated mutexes, condition variables, rwlocks, barriers and semaphores are built on. Their
// state stays in the program's own pthread objects; only the queue of waiters is here, in a table
// keyed by the object's address.
//
// One worker for now: every green thread runs on the scheduler thread, so a check of the word
// and the park that follows cannot be interleaved with a waker. A multi-worker runtime will need
// the table's lock and cross-thread wake-ups here, and nowhere else.
#pragma once

#include <time.h>

#include <atomic>
#include <cstdint>

#include "coil/time.hpp"

namespace coil::preload {

// FutexResult says how futex_wait() ended.
enum class FutexResult {
  kWoken,     // futex_wake() chose this waiter (or, rarely, a spurious wake-up: recheck)
  kMismatch,  // *word != expected on entry: did not wait
  kTimeout,   // deadline passed first
};

// futex_wait() parks the calling green thread on word until futex_wake(word) picks it or the
// deadline (on coil's steady clock) passes, if *word == expected on entry. Not interruptible by
// signals, like the pthread waits it stands for (pthread_cond_wait, sem_wait aside: see below).
// Precondition: in_green_thread().
FutexResult futex_wait(const std::atomic<std::uint32_t>* word, std::uint32_t expected,
                       TimePoint deadline = kNoDeadline);

// futex_wait_interruptible() is futex_wait() that a caught signal also ends (sem_wait and
// sem_timedwait return EINTR, unlike the pthread calls). Returns false if a signal ended it.
bool futex_wait_interruptible(const std::atomic<std::uint32_t>* word, std::uint32_t expected,
                              TimePoint deadline, FutexResult* result);

// futex_wake() wakes up to n green threads parked on word, longest waiting first, and returns how
// many it woke. n = INT_MAX wakes all.
int futex_wake(const void* word, int n) noexcept;

// futex_waiters() is true if a green thread is parked on word (a cheap check that lets an unlock
// skip the table when nobody waits).
bool futex_waiters(const void* word) noexcept;

// futex_forget_all() empties every queue: in a fork()ed child, whose only thread is the one that
// forked, the parked green threads are gone and must not take the wake-ups meant for it.
void futex_forget_all() noexcept;

// deadline_from() converts a pthread/sem absolute timeout on clock (CLOCK_REALTIME or
// CLOCK_MONOTONIC) into a deadline on coil's steady clock. A time already past gives a deadline
// already past. (A realtime clock set while waiting is not followed: the wait lasts the time that
// was left when it began.)
TimePoint deadline_from(clockid_t clock, const timespec& abstime) noexcept;

}  // namespace coil::preload
