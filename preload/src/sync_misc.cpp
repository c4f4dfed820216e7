// Spinlocks, barriers and unnamed semaphores for green threads. (sched_yield needs nothing here:
// the hook layer's, hook/src/sleep_hooks.cpp, already yields the coroutine of any caller.)
//
// Spinlocks: glibc's lock word and encoding (on x86, 1 is free and 0 or less taken:
// pthread_spin_init stores 1, the same instruction as unlock), so pthread_spin_init, _destroy
// and _trylock are glibc's (a refused trylock yields, as every refused try does). A green thread
// that finds the lock taken must not spin, since the holder may be a green thread that runs only
// when this one stops: it parks until a green unlock wakes it, or for at most kSpinPoll, as the
// holder may be a native thread or another process (a spinlock's pshared flag is not recorded
// anywhere), whose unlock wakes nobody here. Like glibc's, these spinlocks are not fair: a thread
// that unlocks and locks again at once wins.
//
// Barriers: pthread_barrier_init is glibc's, which fills glibc's 20 bytes, and then marks the
// barrier in the 12 bytes glibc leaves alone: kBarrierMark, unless it is process-shared (those
// are glibc's, and a green thread waiting on one blocks the OS thread). A marked barrier keeps
// its green waiters in a list of records on their own stacks, so that the last arrival releases
// them all without any of them touching the barrier again: its serial thread may destroy and
// free it at once, as glibc allows.
//
// Semaphores: glibc's layout (the value is the low half of the first 64-bit word, which is what
// sem_getvalue reads, so that needs no hook), plus kSemMark in bytes glibc leaves alone, set by
// sem_init for an unnamed, process-private semaphore. Semaphores without it are glibc's: named
// ones (sem_open zeroes those bytes), process-shared ones, and destroyed ones. Green waiters do
// not register in glibc's waiter count, so a native sem_post does not wake them. As with
// mutexes (sync_mutex.cpp), a waiter woken for a token that another thread took first asks for
// the next post to hand its token over (counted in kSemHandedOffset, never in the value), so that
// a thread that posts and waits again at once cannot starve the others. sem_wait and
// sem_timedwait end with EINTR when a handler installed without SA_RESTART runs, and carry on
// after one with SA_RESTART, as the kernel restarts their futex wait (signal(7)).
//
// sem_init, sem_destroy, pthread_barrier_init and pthread_barrier_destroy mark or unmark the
// object for every caller, green or not: so an object a constructor made before main() is
// emulated when green threads use it.
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <time.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>

#include "coil/detail/park.hpp"
#include "green.hpp"
#include "green_futex.hpp"
#include "real_pthread.hpp"
#include "running.hpp"
#include "sync_util.hpp"

namespace coil::preload::sync {
namespace {

// ---- spinlocks ----

#if defined(__x86_64__) || defined(__i386__)
constexpr std::uint32_t kSpinFree = 1;  // glibc's x86 spinlocks count down from 1
#else
constexpr std::uint32_t kSpinFree = 0;  // glibc's generic ones
#endif
constexpr std::uint32_t kSpinTaken = kSpinFree ^ 1;
constexpr Duration kSpinPoll = std::chrono::milliseconds(1);

static_assert(sizeof(pthread_spinlock_t) == sizeof(std::uint32_t));

std::atomic<std::uint32_t>* spin_word(pthread_spinlock_t* lock) {
  return word_at(const_cast<int*>(lock), 0);
}

int spin_lock(pthread_spinlock_t* lock) {
  std::atomic<std::uint32_t>* word = spin_word(lock);
  MonitorScope scope(word);
  for (;;) {
    std::uint32_t seen = kSpinFree;
    if (word->compare_exchange_strong(seen, kSpinTaken, std::memory_order_acquire)) return 0;
    futex_wait(word, seen, detail::now() + kSpinPoll);
  }
}

int spin_unlock(pthread_spinlock_t* lock) {
  std::atomic<std::uint32_t>* word = spin_word(lock);
  MonitorScope scope(word);
  word->store(kSpinFree, std::memory_order_release);
  futex_wake(word, 1);
  return 0;
}

// ---- barriers ----

static_assert(sizeof(pthread_barrier_t) == 32 && alignof(pthread_barrier_t) >= alignof(void*));
// glibc's struct pthread_barrier (internaltypes.h): in, current_round, count, shared, out.
constexpr std::size_t kBarrierCountOffset = 8;
constexpr std::size_t kBarrierMarkOffset = 20;      // the first byte glibc does not use
constexpr std::size_t kBarrierFirstOffset = 24;     // the list of green waiters
constexpr std::uint32_t kBarrierMark = 0x62696f63;  // "coib"

// BarrierWaiter is a green thread waiting at a barrier, on its own stack.
struct BarrierWaiter {
  BarrierWaiter* next = nullptr;
  std::uint32_t arrived = 0;               // how many had arrived, this one included
  std::atomic<std::uint32_t> released{0};  // futex word: 1 once the last one arrived
};

BarrierWaiter*& first_waiter(pthread_barrier_t* b) {
  return *reinterpret_cast<BarrierWaiter**>(reinterpret_cast<char*>(b) + kBarrierFirstOffset);
}

bool marked(pthread_barrier_t* b) {
  return word_at(b, kBarrierMarkOffset)->load(std::memory_order_relaxed) == kBarrierMark;
}

void mark(pthread_barrier_t* b, bool emulated) {
  word_at(b, kBarrierMarkOffset)->store(emulated ? kBarrierMark : 0, std::memory_order_relaxed);
  first_waiter(b) = nullptr;
}

int barrier_wait(pthread_barrier_t* b) {
  MonitorScope scope(b);  // the waiters' words are on their stacks, under the barrier's lock
  const std::uint32_t count = word_at(b, kBarrierCountOffset)->load(std::memory_order_relaxed);
  BarrierWaiter* first = first_waiter(b);
  const std::uint32_t arrived = (first ? first->arrived : 0) + 1;
  if (arrived == count) {  // the last one: release the others, and be the serial thread
    first_waiter(b) = nullptr;
    for (BarrierWaiter* w = first; w != nullptr;) {
      BarrierWaiter* next = w->next;  // read before w's thread may run and return
      w->released.store(1, std::memory_order_release);
      futex_wake(&w->released, 1);
      w = next;
    }
    return PTHREAD_BARRIER_SERIAL_THREAD;
  }
  BarrierWaiter self;
  self.next = first;
  self.arrived = arrived;
  first_waiter(b) = &self;
  while (self.released.load(std::memory_order_acquire) == 0) futex_wait(&self.released, 0);
  return 0;
}

// ---- semaphores ----

static_assert(sizeof(sem_t) == 32, "glibc's x86-64 sem_t");
constexpr std::size_t kSemMarkOffset = 16;      // past glibc's struct new_sem
constexpr std::size_t kSemHandedOffset = 20;    // tokens handed to woken waiters, not yet taken
constexpr std::size_t kSemAskedOffset = 24;     // 1: a woken waiter lost its token to another
constexpr std::uint32_t kSemMark = 0x6c696f63;  // "coil"

std::atomic<std::uint32_t>* sem_value(sem_t* s) { return word_at(s, 0); }

bool marked(sem_t* s) {
  return word_at(s, kSemMarkOffset)->load(std::memory_order_relaxed) == kSemMark;
}

void mark(sem_t* s, bool emulated) {
  word_at(s, kSemMarkOffset)->store(emulated ? kSemMark : 0, std::memory_order_relaxed);
  word_at(s, kSemHandedOffset)->store(0, std::memory_order_relaxed);
  word_at(s, kSemAskedOffset)->store(0, std::memory_order_relaxed);
}

int fail(int error) {
  errno = error;
  return -1;
}

// take() takes a token if there is one (glibc's __new_sem_wait_fast).
bool take(sem_t* s) {
  std::atomic<std::uint32_t>* value = sem_value(s);
  std::uint32_t n = value->load(std::memory_order_relaxed);
  while (n != 0) {
    if (value->compare_exchange_weak(n, n - 1, std::memory_order_acquire)) return true;
  }
  return false;
}

// take_handed() takes a token a post handed over to a woken waiter.
bool take_handed(sem_t* s) {
  std::atomic<std::uint32_t>* handed = word_at(s, kSemHandedOffset);
  std::uint32_t n = handed->load(std::memory_order_relaxed);
  while (n != 0) {
    if (handed->compare_exchange_weak(n, n - 1, std::memory_order_acquire)) return true;
  }
  return false;
}

// wait_for_token() waits for a token until deadline, in s's scope: 0, ETIMEDOUT or EINTR.
int wait_for_token(sem_t* s, TimePoint deadline) {
  MonitorScope scope(s);
  for (bool woken = false; !take(s);) {
    if (woken) word_at(s, kSemAskedOffset)->store(1, std::memory_order_relaxed);
    const std::uint32_t restartless = detail::tls_signals.of(true);
    FutexResult result;
    if (!futex_wait_interruptible(sem_value(s), 0, deadline, &result)) {
      if (detail::tls_signals.of(true) != restartless) return EINTR;
      continue;  // only SA_RESTART handlers ran: the kernel would have restarted the wait
    }
    if (result == FutexResult::kTimeout) return ETIMEDOUT;
    if (result == FutexResult::kWoken) {
      if (take_handed(s)) return 0;
      woken = true;
    }
  }
  return 0;
}

// sem_wait_green() waits for a token until deadline: 0, or -1 with errno ETIMEDOUT or EINTR.
int sem_wait_green(sem_t* s, TimePoint deadline) {
  int rc = wait_for_token(s, deadline);
  if (rc == ETIMEDOUT) after_refusal(rc);  // outside the scope: it yields
  return rc == 0 ? 0 : fail(rc);
}

// add_token() adds one to a semaphore's value: 0, or -1 with errno EOVERFLOW.
int add_token(std::atomic<std::uint32_t>* value) {
  std::uint32_t n = value->load(std::memory_order_relaxed);
  do {
    if (n == SEM_VALUE_MAX) return fail(EOVERFLOW);
  } while (!value->compare_exchange_weak(n, n + 1, std::memory_order_release));
  return 0;
}

// sem_post_green() posts for a green thread. sem_post is async-signal-safe, and a handler may
// have interrupted a green thread inside the wait queues or the scheduler: from a handler, it
// only adds the token. A green waiter still wakes: sem_wait's wait is interruptible, so the
// handler's run ends it, and it takes the token on its next look (or, for a handler without
// SA_RESTART, returns EINTR, as glibc's does).
int sem_post_green(sem_t* s) {
  std::atomic<std::uint32_t>* value = sem_value(s);
  if (detail::in_signal_handler()) return add_token(value);
  MonitorScope scope(s);
  if (word_at(s, kSemAskedOffset)->exchange(0, std::memory_order_relaxed) != 0 &&
      futex_waiters(value)) {
    word_at(s, kSemHandedOffset)->fetch_add(1, std::memory_order_release);
    futex_wake(value, 1);
    return 0;
  }
  if (add_token(value) != 0) return -1;
  futex_wake(value, 1);
  return 0;
}

}  // namespace
}  // namespace coil::preload::sync

using namespace coil::preload;
using namespace coil::preload::sync;

COIL_HOOK int pthread_spin_lock(pthread_spinlock_t* lock) noexcept {
  if (!in_green_thread()) return real::pthread_spin_lock(lock);
  return spin_lock(lock);
}

// pthread_spin_trylock is glibc's, after which a green thread refused yields (after_refusal()).
COIL_HOOK int pthread_spin_trylock(pthread_spinlock_t* lock) noexcept {
  int rc = real::pthread_spin_trylock(lock);
  return in_green_thread() ? after_refusal(rc) : rc;
}

COIL_HOOK int pthread_spin_unlock(pthread_spinlock_t* lock) noexcept {
  if (!in_green_thread()) return real::pthread_spin_unlock(lock);
  return spin_unlock(lock);
}

COIL_HOOK int pthread_barrier_init(pthread_barrier_t* b, const pthread_barrierattr_t* attr,
                                   unsigned count) noexcept {
  int rc = real::pthread_barrier_init(b, attr, count);
  if (rc != 0) return rc;
  int pshared = PTHREAD_PROCESS_PRIVATE;
  if (attr) pthread_barrierattr_getpshared(attr, &pshared);
  mark(b, pshared == PTHREAD_PROCESS_PRIVATE);
  return 0;
}

// pthread_barrier_destroy is EBUSY while green threads wait (glibc's would wait for them).
COIL_HOOK int pthread_barrier_destroy(pthread_barrier_t* b) noexcept {
  if (marked(b)) {
    MonitorScope scope(b);
    if (first_waiter(b) != nullptr) return EBUSY;
    mark(b, false);
  }
  return real::pthread_barrier_destroy(b);
}

COIL_HOOK int pthread_barrier_wait(pthread_barrier_t* b) noexcept {
  if (!in_green_thread() || !marked(b)) return real::pthread_barrier_wait(b);
  return barrier_wait(b);
}

COIL_HOOK int sem_init(sem_t* s, int pshared, unsigned value) noexcept {
  int rc = real::sem_init(s, pshared, value);
  if (rc == 0) mark(s, pshared == 0);
  return rc;
}

COIL_HOOK int sem_destroy(sem_t* s) noexcept {
  mark(s, false);
  return real::sem_destroy(s);
}

COIL_HOOK int sem_wait(sem_t* s) {
  if (!in_green_thread() || !marked(s)) return real::sem_wait(s);
  return sem_wait_green(s, coil::kNoDeadline);
}

COIL_HOOK int sem_trywait(sem_t* s) noexcept {
  if (!in_green_thread() || !marked(s)) return real::sem_trywait(s);
  if (take(s)) return 0;
  return fail(after_refusal(EAGAIN));
}

COIL_HOOK int sem_timedwait(sem_t* s, const timespec* abstime) {
  if (!in_green_thread() || !marked(s)) return real::sem_timedwait(s, abstime);
  if (!valid_nsec(*abstime)) return fail(EINVAL);  // even with a token to take, as glibc
  if (take(s)) return 0;
  return sem_wait_green(s, deadline_of(CLOCK_REALTIME, *abstime));
}

COIL_HOOK int sem_clockwait(sem_t* s, clockid_t clock, const timespec* abstime) {
  if (!in_green_thread() || !marked(s)) return real::sem_clockwait(s, clock, abstime);
  if (!supported_clock(clock) || !valid_nsec(*abstime)) return fail(EINVAL);
  if (take(s)) return 0;
  return sem_wait_green(s, deadline_of(clock, *abstime));
}

COIL_HOOK int sem_post(sem_t* s) noexcept {
  if (!in_green_thread() || !marked(s)) return real::sem_post(s);
  return sem_post_green(s);
}
