// pthread rwlocks for green threads: the read and write locks (plain, try, timed, clock) park
// the green thread; unlock hands the lock on.
//
// Layout: glibc keeps its state in __readers, __writers and the futex words and leaves __pad3,
// __pad4 and __pad2 unused (zero from PTHREAD_RWLOCK_INITIALIZER and from pthread_rwlock_init's
// memset). The emulation keeps its own state there, and glibc's fields keep their meaning:
//   __pad3       the state word: kWriter while a writer holds it, else the number of readers
//                (readers park on it);
//   __pad4       how many writers wait (writers park on it);
//   __pad2       two words: how many readers were handed the lock and have not run yet, and the
//                hand-over requests (kReaderAsks, kWriterAsks);
//   __cur_writer the writer's green_id() (glibc: its tid), for EDEADLK, or kHandedOver;
//   __shared     non-zero for a process-shared rwlock: glibc's alone (a green thread waiting on
//                one blocks the OS thread);
//   __flags      the kind, from the initializer or pthread_rwlockattr_setkind_np.
// The state words are zero at rest, so pthread_rwlock_init and pthread_rwlock_destroy (which does
// nothing) need no hook, and a lock glibc used before main() works for green threads.
//
// Fairness, as glibc's kinds promise:
//  - PTHREAD_RWLOCK_PREFER_READER_NP (the default) and PREFER_WRITER_NP (which glibc treats
//    alike): a reader gets in whenever no writer holds the lock, even while writers wait. POSIX
//    lets a thread hold a read lock more than once, and only this keeps such a reader from
//    deadlocking behind a writer that waits for it to let go; the price is that a steady stream
//    of overlapping readers starves writers, as with glibc. A writer's unlock lets the waiting
//    readers in first.
//  - PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP: a new reader waits while a writer waits, and a
//    writer's unlock hands the lock to the next writer first. Recursive read locks may deadlock,
//    as the name warns.
// A woken thread takes its chance again rather than being handed the lock, so a running thread
// can get in first. One that unlocks, locks again at once and parks holding the lock would do so
// every time (nothing runs in between), starving its waiters; so, as for mutexes
// (sync_mutex.cpp), a waiter that was woken and lost the race asks for a hand-over, and the next
// release gives the lock, taken, to the waiting writer or readers that asked (writers first).
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

static_assert(sizeof(pthread_rwlock_t) == 56, "glibc's x86-64 pthread_rwlock_t");
static_assert(offsetof(pthread_rwlock_t, __data.__pad3) == 16, "__pad3: the state word");
static_assert(offsetof(pthread_rwlock_t, __data.__pad4) == 20, "__pad4: the waiting writers");
static_assert(offsetof(pthread_rwlock_t, __data.__cur_writer) == 24, "__cur_writer: the writer");
static_assert(offsetof(pthread_rwlock_t, __data.__flags) == 48,
              "__flags: where the static initializers put the kind");

constexpr std::uint32_t kWriter = 0x80000000;       // in the state word: a writer holds it
constexpr std::uint32_t kMaxReaders = kWriter - 1;  // one more is EAGAIN
constexpr std::uint32_t kReaderAsks = 1;  // a reader lost a race: hand the readers the lock
constexpr std::uint32_t kWriterAsks = 2;  // a writer lost a race: hand a writer the lock

static_assert(offsetof(pthread_rwlock_t, __data.__pad2) == 40, "__pad2: two words of coil's");

std::atomic<std::uint32_t>* state_word(pthread_rwlock_t* l) {
  return word_at(l, offsetof(pthread_rwlock_t, __data.__pad3));
}

std::atomic<std::uint32_t>* writers_word(pthread_rwlock_t* l) {
  return word_at(l, offsetof(pthread_rwlock_t, __data.__pad4));
}

std::atomic<std::uint32_t>* handed_readers(pthread_rwlock_t* l) {
  return word_at(l, offsetof(pthread_rwlock_t, __data.__pad2));
}

std::atomic<std::uint32_t>* requests(pthread_rwlock_t* l) {
  return word_at(l, offsetof(pthread_rwlock_t, __data.__pad2) + 4);
}

void ask(pthread_rwlock_t* l, std::uint32_t request) {
  requests(l)->fetch_or(request, std::memory_order_relaxed);
}

bool shared(const pthread_rwlock_t* l) { return l->__data.__shared != 0; }

bool prefers_writers(const pthread_rwlock_t* l) {
  return l->__data.__flags == PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP;
}

bool held_by_me(const pthread_rwlock_t* l) {
  return l->__data.__cur_writer == static_cast<int>(green_id());
}

// checked() is glibc's first step of every rdlock and wrlock (not the try ones): EINVAL for a bad
// clock or timeout, even when the lock is free, then EDEADLK if the caller holds it to write.
int checked(const pthread_rwlock_t* l, const Wait& wait, TimePoint* deadline) {
  *deadline = kNoDeadline;
  if (wait.abstime) {
    if (!supported_clock(wait.clock) || !valid_nsec(*wait.abstime)) return EINVAL;
    *deadline = deadline_of(wait.clock, *wait.abstime);
  }
  if (!wait.try_only && held_by_me(l)) return EDEADLK;
  return 0;
}

int rdlock(pthread_rwlock_t* l, const Wait& wait) {
  MonitorScope scope(l);
  TimePoint deadline;
  if (int rc = checked(l, wait, &deadline); rc != 0) return rc;
  std::atomic<std::uint32_t>* state = state_word(l);
  for (bool woken = false;;) {
    std::uint32_t s = state->load(std::memory_order_relaxed);
    bool writer_first = prefers_writers(l) && writers_word(l)->load() != 0;
    if ((s & kWriter) == 0 && !writer_first) {
      if (s == kMaxReaders) return EAGAIN;
      state->store(s + 1, std::memory_order_release);
      return 0;
    }
    if (wait.try_only) return EBUSY;
    if (woken) ask(l, kReaderAsks);
    const FutexResult result = futex_wait(state, s, deadline);
    if (result == FutexResult::kTimeout) return ETIMEDOUT;
    if (result == FutexResult::kWoken) {
      std::uint32_t handed = handed_readers(l)->load(std::memory_order_relaxed);
      if (handed > 0) {  // counted in the state word already
        handed_readers(l)->store(handed - 1, std::memory_order_relaxed);
        return 0;
      }
      woken = true;
    }
  }
}

// wake_readers() lets every parked reader try again; wake_writer() one parked writer.
int wake_readers_counted(pthread_rwlock_t* l) { return futex_wake(state_word(l), INT_MAX); }
bool wake_readers(pthread_rwlock_t* l) { return wake_readers_counted(l) > 0; }
bool wake_writer(pthread_rwlock_t* l) { return futex_wake(writers_word(l), 1) > 0; }

int wrlock(pthread_rwlock_t* l, const Wait& wait) {
  MonitorScope scope(l);
  TimePoint deadline;
  if (int rc = checked(l, wait, &deadline); rc != 0) return rc;
  std::atomic<std::uint32_t>* state = state_word(l);
  std::atomic<std::uint32_t>* writers = writers_word(l);
  for (bool woken = false; state->load(std::memory_order_relaxed) != 0;) {
    if (wait.try_only) return EBUSY;
    if (woken) ask(l, kWriterAsks);
    const std::uint32_t waiting = writers->fetch_add(1, std::memory_order_relaxed) + 1;
    const FutexResult result = futex_wait(writers, waiting, deadline);
    writers->fetch_sub(1, std::memory_order_relaxed);
    if (result == FutexResult::kTimeout) {
      // Readers held back for this writer must not wait for it any longer.
      if (prefers_writers(l) && writers->load() == 0) wake_readers(l);
      return ETIMEDOUT;
    }
    if (result == FutexResult::kWoken) {
      if (l->__data.__cur_writer == kHandedOver) break;  // the state word says kWriter already
      woken = true;
    }
  }
  state->store(kWriter, std::memory_order_release);
  l->__data.__cur_writer = static_cast<int>(green_id());
  return 0;
}

// hand_over() gives the free lock, taken, to the waiters that asked for it, if any still wait.
bool hand_over(pthread_rwlock_t* l) {
  const std::uint32_t asked = requests(l)->exchange(0, std::memory_order_relaxed);
  if ((asked & kWriterAsks) != 0 && futex_waiters(writers_word(l))) {
    requests(l)->store(asked & ~kWriterAsks, std::memory_order_relaxed);
    state_word(l)->store(kWriter, std::memory_order_relaxed);
    l->__data.__cur_writer = kHandedOver;
    wake_writer(l);
    return true;
  }
  if ((asked & kReaderAsks) != 0 && futex_waiters(state_word(l))) {
    const auto woken = static_cast<std::uint32_t>(wake_readers_counted(l));
    state_word(l)->store(woken, std::memory_order_relaxed);
    handed_readers(l)->fetch_add(woken, std::memory_order_relaxed);
    return true;
  }
  return false;  // the askers left (timed out): the requests are dropped
}

// release() passes the lock on once it is free: by hand_over(), or by waking waiters for another
// try, the side the kind prefers first (after a reader, only a writer can be waiting for it).
void release(pthread_rwlock_t* l, bool after_writer) {
  if (hand_over(l)) return;
  if (prefers_writers(l) || !after_writer) {
    if (!wake_writer(l)) wake_readers(l);
  } else if (!wake_readers(l)) {
    wake_writer(l);
  }
}

// unlock() ends a write lock if the caller holds one, else one read lock. Unlocking a lock that is
// not held, or held to write by another thread, is undefined (glibc corrupts its state): EPERM.
int unlock(pthread_rwlock_t* l) {
  MonitorScope scope(l);
  std::atomic<std::uint32_t>* state = state_word(l);
  const std::uint32_t s = state->load(std::memory_order_relaxed);
  if (s == kWriter && held_by_me(l)) {
    l->__data.__cur_writer = 0;
    state->store(0, std::memory_order_release);
    release(l, true);
    return 0;
  }
  if (s == 0 || (s & kWriter) != 0) return EPERM;
  state->store(s - 1, std::memory_order_release);
  if (s == 1) release(l, false);
  return 0;
}

}  // namespace
}  // namespace coil::preload::sync

using namespace coil::preload;
using namespace coil::preload::sync;

COIL_HOOK int pthread_rwlock_rdlock(pthread_rwlock_t* l) noexcept {
  if (!in_green_thread() || shared(l)) return real::pthread_rwlock_rdlock(l);
  return rdlock(l, Wait{});
}

COIL_HOOK int pthread_rwlock_tryrdlock(pthread_rwlock_t* l) noexcept {
  if (!in_green_thread() || shared(l)) return real::pthread_rwlock_tryrdlock(l);
  return after_refusal(rdlock(l, Wait{.try_only = true}));
}

COIL_HOOK int pthread_rwlock_timedrdlock(pthread_rwlock_t* l, const timespec* abstime) noexcept {
  if (!in_green_thread() || shared(l)) return real::pthread_rwlock_timedrdlock(l, abstime);
  return after_refusal(rdlock(l, Wait{.abstime = abstime}));
}

COIL_HOOK int pthread_rwlock_clockrdlock(pthread_rwlock_t* l, clockid_t clock,
                                         const timespec* abstime) noexcept {
  if (!in_green_thread() || shared(l)) return real::pthread_rwlock_clockrdlock(l, clock, abstime);
  return after_refusal(rdlock(l, Wait{.abstime = abstime, .clock = clock}));
}

COIL_HOOK int pthread_rwlock_wrlock(pthread_rwlock_t* l) noexcept {
  if (!in_green_thread() || shared(l)) return real::pthread_rwlock_wrlock(l);
  return wrlock(l, Wait{});
}

COIL_HOOK int pthread_rwlock_trywrlock(pthread_rwlock_t* l) noexcept {
  if (!in_green_thread() || shared(l)) return real::pthread_rwlock_trywrlock(l);
  return after_refusal(wrlock(l, Wait{.try_only = true}));
}

COIL_HOOK int pthread_rwlock_timedwrlock(pthread_rwlock_t* l, const timespec* abstime) noexcept {
  if (!in_green_thread() || shared(l)) return real::pthread_rwlock_timedwrlock(l, abstime);
  return after_refusal(wrlock(l, Wait{.abstime = abstime}));
}

COIL_HOOK int pthread_rwlock_clockwrlock(pthread_rwlock_t* l, clockid_t clock,
                                         const timespec* abstime) noexcept {
  if (!in_green_thread() || shared(l)) return real::pthread_rwlock_clockwrlock(l, clock, abstime);
  return after_refusal(wrlock(l, Wait{.abstime = abstime, .clock = clock}));
}

COIL_HOOK int pthread_rwlock_unlock(pthread_rwlock_t* l) noexcept {
  if (!in_green_thread() || shared(l)) return real::pthread_rwlock_unlock(l);
  return unlock(l);
}
