// pthread mutexes for green threads: lock, trylock, timedlock, clocklock and unlock park the
// green thread on the mutex's lock word instead of blocking the OS thread.
//
// Layout: glibc's own fields, with glibc's meanings, so that PTHREAD_MUTEX_INITIALIZER, the
// recursive/errorcheck/adaptive _NP initializers and a mutex initialised by glibc all work, and
// pthread_mutex_init and pthread_mutex_destroy are glibc's (which only write and read those
// fields: destroy's EBUSY comes from __nusers, and its __kind of -1 makes later calls EINVAL):
//   __lock    the lock word, as glibc's simple mutexes use it: 0 free, 1 locked, 2 locked and
//             maybe waited for (a PRIO_PROTECT mutex keeps its ceiling in the high bits), and
//             while green threads wait, kHandOver (below);
//   __count   the recursion count of a recursive mutex;
//   __owner   the holder's green_id() (glibc stores the holder's tid there), or kHandedOver;
//   __nusers  how many hold it, counting cond waiters as glibc does;
//   __kind    the type and flags glibc's init stored, read here, plus kPrivateRobust.
//
// Fairness: an unlock leaves the mutex free and wakes the longest waiter, which takes it when its
// turn comes, unless a thread that was running got it first. With native threads that happens by
// chance; here it would happen every time to a thread that unlocks, locks again at once and then
// parks holding the mutex (a loop of "lock, write, unlock"): nothing else runs in between, so
// its waiters would starve. So a waiter beaten to the mutex once sets kHandOver, and the next
// unlock hands the mutex, still locked, to the longest waiter (__owner kHandedOver until that
// one runs): a waiter can lose the race at most once in a row, and uncontended locks, and
// contended ones that nobody beats, keep their speed.
//
// Types: normal and adaptive behave alike; recursive counts; errorcheck gives EDEADLK and EPERM.
// A normal mutex locked again by its holder waits for itself, as glibc's does: the green thread
// parks for good, and when no other green thread can ever run either, the scheduler's deadlock
// detector ends the process with a message instead of a silent hang.
//
// Robust, priority-inheriting and priority-protecting mutexes are emulated as their type without
// the protocol: an owner's death is not reported (no EOWNERDEAD), and no priority is changed
// (every green thread runs on one OS thread anyway). They keep glibc's stricter checks: unlock by
// a non-holder is EPERM even for a normal one, and an errorcheck one's trylock by its holder is
// EDEADLK.
//
// Process-shared mutexes (PTHREAD_MUTEX_PSHARED_BIT in __kind) may be shared with another
// process, so they are glibc's: a green thread that waits for one blocks the OS thread, and with
// it every green thread, until the holder (in another process) lets go; and as glibc records the
// tid, which the green threads of a worker share, two green threads must not contend for one. glibc
// sets that bit on every robust mutex too (the kernel wakes a dead owner's waiters with a shared
// futex), so pthread_mutex_init, hooked for every caller, adds kPrivateRobust to a robust mutex
// whose attr says process-private: that one is emulated.
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stddef.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <climits>
#include <cstdint>

#include "green.hpp"
#include "green_futex.hpp"
#include "real_pthread.hpp"
#include "sync_util.hpp"

namespace coil::preload::sync {
namespace {

static_assert(sizeof(pthread_mutex_t) == 40, "glibc's x86-64 pthread_mutex_t");
static_assert(offsetof(pthread_mutex_t, __data.__lock) == 0, "__lock: the lock word");
static_assert(offsetof(pthread_mutex_t, __data.__count) == 4, "__count: the recursion count");
static_assert(offsetof(pthread_mutex_t, __data.__owner) == 8, "__owner: the holder");
static_assert(offsetof(pthread_mutex_t, __data.__kind) == 16,
              "__kind: where the static initializers put the type");

// __kind's bits, from glibc's pthreadP.h.
constexpr int kTypeMask = 3;         // PTHREAD_MUTEX_KIND_MASK_NP
constexpr int kRobust = 16;          // PTHREAD_MUTEX_ROBUST_NORMAL_NP
constexpr int kPrioInherit = 32;     // PTHREAD_MUTEX_PRIO_INHERIT_NP
constexpr int kPrioProtect = 64;     // PTHREAD_MUTEX_PRIO_PROTECT_NP
constexpr int kPshared = 128;        // PTHREAD_MUTEX_PSHARED_BIT
constexpr int kElision = 256 | 512;  // lock elision hints: meaningless here
// coil's own bit, which glibc neither sets nor reads (its tests mask __kind with 127 | 256 or
// look at single bits): a robust mutex that is process-private despite kPshared.
constexpr int kPrivateRobust = 1 << 30;
// The lock word: glibc's states, and coil's request for a hand-over.
constexpr std::uint32_t kLocked = 1;
constexpr std::uint32_t kContended = 2;  // locked, and maybe waited for
constexpr std::uint32_t kHandOver = 4;   // a waiter lost a race for it: hand it over next time
// A PRIO_PROTECT mutex's ceiling, kept in the high bits of __lock
// (PTHREAD_MUTEX_PRIO_CEILING_MASK).
constexpr std::uint32_t kCeilingMask = 0xfff80000;

// Kind is a mutex's __kind, decoded.
struct Kind {
  int type = PTHREAD_MUTEX_NORMAL;  // PTHREAD_MUTEX_{NORMAL,RECURSIVE,ERRORCHECK}; adaptive: normal
  bool plain = true;                // none of robust, PI, PP: glibc's simple paths
  bool prio_protect = false;
};

int kind_bits(const pthread_mutex_t* m) {
  return __atomic_load_n(&m->__data.__kind, __ATOMIC_RELAXED);
}

// shared() is true for a process-shared mutex: glibc's business.
bool shared(const pthread_mutex_t* m) {
  return (kind_bits(m) & (kPshared | kPrivateRobust)) == kPshared;
}

// decode() reads m's kind; false (EINVAL) if glibc would not know it either (a destroyed mutex's
// __kind of -1, for one).
bool decode(const pthread_mutex_t* m, Kind* kind) {
  int bits = kind_bits(m) & ~kElision;
  if ((bits & kPrivateRobust) != 0) bits &= ~(kPrivateRobust | kPshared);
  int flags = bits & ~kTypeMask;
  if (flags != 0 && flags != kRobust && flags != kPrioInherit &&
      flags != (kPrioInherit | kRobust) && flags != kPrioProtect) {
    return false;
  }
  kind->type = bits & kTypeMask;
  if (kind->type == PTHREAD_MUTEX_ADAPTIVE_NP) kind->type = PTHREAD_MUTEX_NORMAL;
  kind->plain = flags == 0;
  kind->prio_protect = flags == kPrioProtect;
  return true;
}

std::atomic<std::uint32_t>* lock_word(pthread_mutex_t* m) {
  return word_at(m, offsetof(pthread_mutex_t, __data.__lock));
}

// unlocked_value() is what m's lock word holds when m is free: 0, or a PRIO_PROTECT mutex's
// ceiling.
std::uint32_t unlocked_value(pthread_mutex_t* m, const Kind& kind) {
  return kind.prio_protect ? lock_word(m)->load(std::memory_order_relaxed) & kCeilingMask : 0;
}

int self() { return static_cast<int>(green_id()); }

// taken_value() is what the lock word of a mutex just taken holds: locked, and waited for if a
// green thread still waits.
std::uint32_t taken_value(std::atomic<std::uint32_t>* word, std::uint32_t unlocked) {
  return unlocked | (futex_waiters(word) ? kContended : kLocked);
}

// wait_for() parks the caller until it takes m or m is handed over to it (see the top of the
// file), or until the deadline.
int wait_for(pthread_mutex_t* m, std::atomic<std::uint32_t>* word, std::uint32_t unlocked,
             TimePoint deadline) {
  std::uint32_t ask = 0;  // kHandOver once woken for nothing
  for (;;) {
    std::uint32_t seen = word->load(std::memory_order_relaxed);
    if (seen == unlocked) {
      if (word->compare_exchange_strong(seen, taken_value(word, unlocked),
                                        std::memory_order_acquire)) {
        return 0;
      }
      continue;
    }
    const std::uint32_t parked = seen | kContended | ask;
    if (parked != seen && !word->compare_exchange_strong(seen, parked, std::memory_order_relaxed)) {
      continue;
    }
    const FutexResult result = futex_wait(word, parked, deadline);
    if (result == FutexResult::kTimeout) return ETIMEDOUT;
    if (result == FutexResult::kWoken) {
      if (m->__data.__owner == kHandedOver) return 0;
      ask = kHandOver;
    }
  }
}

// acquire() is glibc's lll_lock/__futex_clocklock64 with a green park in place of futex(2):
// the lock word goes from free to 1, or the caller waits with it at 2.
int acquire(pthread_mutex_t* m, std::uint32_t unlocked, const Wait& wait) {
  std::atomic<std::uint32_t>* word = lock_word(m);
  std::uint32_t seen = unlocked;
  if (word->compare_exchange_strong(seen, unlocked | kLocked, std::memory_order_acquire)) {
    return 0;
  }
  if (wait.try_only) return EBUSY;
  TimePoint deadline = kNoDeadline;
  if (wait.abstime) {
    // glibc's order: a negative tv_sec times out before the kernel could refuse a bad tv_nsec.
    if (wait.abstime->tv_sec < 0) return ETIMEDOUT;
    if (!valid_nsec(*wait.abstime)) return EINVAL;
    deadline = deadline_of(wait.clock, *wait.abstime);
  }
  return wait_for(m, word, unlocked, deadline);
}

// wake_native() wakes a native thread that may wait in glibc's lock for a mutex a green thread
// released (coil's own threads, threads started before main()): a contended word with no green
// waiter is one. The other way round is not covered: glibc's unlock wakes no green waiter
// (sync_util.hpp). Rare enough for its system call: a word also stays contended after a green
// waiter's timeout.
void wake_native(std::atomic<std::uint32_t>* word) {
  syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
}

// release() frees m's lock word, or hands m over to its longest waiter.
void release(pthread_mutex_t* m, std::uint32_t unlocked) {
  std::atomic<std::uint32_t>* word = lock_word(m);
  if ((word->load(std::memory_order_relaxed) & kHandOver) != 0 && futex_waiters(word)) {
    m->__data.__owner = kHandedOver;
    futex_wake(word, 1);
    word->store(taken_value(word, unlocked), std::memory_order_release);
    return;
  }
  if ((word->exchange(unlocked, std::memory_order_release) & kContended) != 0 &&
      futex_wake(word, 1) == 0) {
    wake_native(word);
  }
}

// lock() is every lock call of a green thread; count_user is false for a cond wait's relock.
int lock(pthread_mutex_t* m, const Wait& wait, bool count_user = true) {
  MonitorScope scope(m);
  Kind kind;
  if (!decode(m, &kind)) return EINVAL;
  const int me = self();
  if (m->__data.__owner == me) {
    if (kind.type == PTHREAD_MUTEX_RECURSIVE) {
      if (m->__data.__count == UINT_MAX) return EAGAIN;
      ++m->__data.__count;
      return 0;
    }
    if (kind.type == PTHREAD_MUTEX_ERRORCHECK) return wait.try_only && kind.plain ? EBUSY : EDEADLK;
    // A normal one waits for itself below, as in glibc (see the top of the file).
  }
  if (int rc = acquire(m, unlocked_value(m, kind), wait); rc != 0) return rc;
  m->__data.__owner = me;
  if (kind.type == PTHREAD_MUTEX_RECURSIVE) m->__data.__count = 1;
  if (count_user) ++m->__data.__nusers;
  return 0;
}

// unlock() is every unlock of a green thread; count_user is false for a cond wait's unlock.
int unlock(pthread_mutex_t* m, bool count_user = true) {
  MonitorScope scope(m);
  Kind kind;
  if (!decode(m, &kind)) return EINVAL;
  std::atomic<std::uint32_t>* word = lock_word(m);
  const std::uint32_t unlocked = unlocked_value(m, kind);
  const bool checks_owner = kind.type != PTHREAD_MUTEX_NORMAL || !kind.plain;
  if (checks_owner && (m->__data.__owner != self() || word->load() == unlocked)) return EPERM;
  if (kind.type == PTHREAD_MUTEX_RECURSIVE && --m->__data.__count != 0) return 0;
  m->__data.__owner = 0;
  if (count_user) --m->__data.__nusers;
  release(m, unlocked);
  return 0;
}

bool private_robust(const pthread_mutexattr_t* attr) {
  int robust = PTHREAD_MUTEX_STALLED;
  int pshared = PTHREAD_PROCESS_PRIVATE;
  pthread_mutexattr_getrobust(attr, &robust);
  pthread_mutexattr_getpshared(attr, &pshared);
  return robust == PTHREAD_MUTEX_ROBUST && pshared == PTHREAD_PROCESS_PRIVATE;
}

}  // namespace

int unlock_for_wait(pthread_mutex_t* mutex) {
  if (shared(mutex)) return real::pthread_mutex_unlock(mutex);
  return unlock(mutex, false);
}

int relock_after_wait(pthread_mutex_t* mutex) {
  if (shared(mutex)) return real::pthread_mutex_lock(mutex);
  return lock(mutex, Wait{}, false);
}

}  // namespace coil::preload::sync

using namespace coil::preload;
using namespace coil::preload::sync;

// pthread_mutex_init is glibc's, for every caller (a mutex made before main() may be locked by
// green threads after), plus the mark of a process-private robust mutex.
COIL_HOOK int pthread_mutex_init(pthread_mutex_t* m, const pthread_mutexattr_t* attr) noexcept {
  int rc = real::pthread_mutex_init(m, attr);
  if (rc == 0 && attr && private_robust(attr)) {
    __atomic_or_fetch(&m->__data.__kind, kPrivateRobust, __ATOMIC_RELAXED);
  }
  return rc;
}

COIL_HOOK int pthread_mutex_lock(pthread_mutex_t* m) noexcept {
  if (!in_green_thread() || shared(m)) return real::pthread_mutex_lock(m);
  return lock(m, Wait{});
}

COIL_HOOK int pthread_mutex_trylock(pthread_mutex_t* m) noexcept {
  if (!in_green_thread() || shared(m)) return real::pthread_mutex_trylock(m);
  return after_refusal(lock(m, Wait{.try_only = true}));
}

COIL_HOOK int pthread_mutex_timedlock(pthread_mutex_t* m, const timespec* abstime) noexcept {
  if (!in_green_thread() || shared(m)) return real::pthread_mutex_timedlock(m, abstime);
  return after_refusal(lock(m, Wait{.abstime = abstime}));
}

COIL_HOOK int pthread_mutex_clocklock(pthread_mutex_t* m, clockid_t clock,
                                      const timespec* abstime) noexcept {
  if (!in_green_thread() || shared(m)) return real::pthread_mutex_clocklock(m, clock, abstime);
  if (!supported_clock(clock)) return EINVAL;  // glibc's first check
  return after_refusal(lock(m, Wait{.abstime = abstime, .clock = clock}));
}

COIL_HOOK int pthread_mutex_unlock(pthread_mutex_t* m) noexcept {
  if (!in_green_thread() || shared(m)) return real::pthread_mutex_unlock(m);
  return unlock(m);
}
