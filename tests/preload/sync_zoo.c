/* sync_zoo: plain pthread code (no coil): one check per pthread synchronisation object and per
 * error code that libcoil_preload.so emulates for green threads: mutex types and static
 * initializers, trylock/timedlock/clocklock, condition variables on both clocks, rwlocks with
 * both preferences (here), and spinlocks held across sleeps, barriers, unnamed semaphores
 * (timeouts, EAGAIN, EOVERFLOW, EINTR from a handler without SA_RESTART, restart with
 * SA_RESTART), sched_yield, objects initialised before main(), and the process-shared objects and
 * named semaphores that are passed through to glibc (sync_zoo_misc.c). It prints "ok NAME" per
 * check (or "FAIL NAME" after the lines that failed); tests/preload_sync_test.sh requires the
 * same output natively and under libcoil_preload.so. Exit status 0 only if every check held.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stdlib.h>

#include "zoo.h"

int failures;
int check_failed;
int expect_green;

/* ---- mutexes ---- */

static pthread_mutex_t static_normal = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t static_recursive = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
static pthread_mutex_t static_errorcheck = PTHREAD_ERRORCHECK_MUTEX_INITIALIZER_NP;
static pthread_mutex_t static_adaptive = PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP;

static void mutex_static_initializers(void) {
  EXPECT_RC(pthread_mutex_lock(&static_normal), 0);
  EXPECT_RC(on_thread(mutex_trylock_fn, &static_normal), EBUSY);
  EXPECT_RC(pthread_mutex_trylock(&static_normal), EBUSY);
  EXPECT_RC(pthread_mutex_unlock(&static_normal), 0);
  EXPECT_RC(pthread_mutex_lock(&static_recursive), 0);
  EXPECT_RC(pthread_mutex_lock(&static_recursive), 0);
  EXPECT_RC(pthread_mutex_unlock(&static_recursive), 0);
  EXPECT_RC(on_thread(mutex_trylock_fn, &static_recursive), EBUSY);
  EXPECT_RC(pthread_mutex_unlock(&static_recursive), 0);
  EXPECT_RC(pthread_mutex_lock(&static_errorcheck), 0);
  EXPECT_RC(pthread_mutex_lock(&static_errorcheck), EDEADLK);
  EXPECT_RC(pthread_mutex_unlock(&static_errorcheck), 0);
  EXPECT_RC(pthread_mutex_unlock(&static_errorcheck), EPERM);
  EXPECT_RC(pthread_mutex_lock(&static_adaptive), 0);
  EXPECT_RC(on_thread(mutex_trylock_fn, &static_adaptive), EBUSY);
  EXPECT_RC(pthread_mutex_unlock(&static_adaptive), 0);
}

static void mutex_recursive(void) {
  pthread_mutex_t m;
  init_typed(&m, PTHREAD_MUTEX_RECURSIVE);
  for (int i = 0; i < 3; ++i) EXPECT_RC(pthread_mutex_lock(&m), 0);
  EXPECT_RC(pthread_mutex_trylock(&m), 0); /* the owner's trylock counts too */
  EXPECT_RC(on_thread(mutex_trylock_fn, &m), EBUSY);
  EXPECT_RC(on_thread(mutex_unlock_fn, &m), EPERM);
  for (int i = 0; i < 4; ++i) EXPECT_RC(pthread_mutex_unlock(&m), 0);
  EXPECT_RC(pthread_mutex_unlock(&m), EPERM);
  EXPECT_RC(on_thread(mutex_trylock_fn, &m), 0); /* and the thread ends holding it */
  EXPECT_RC(pthread_mutex_destroy(&m), EBUSY);
}

static void mutex_errorcheck(void) {
  pthread_mutex_t m;
  init_typed(&m, PTHREAD_MUTEX_ERRORCHECK);
  EXPECT_RC(pthread_mutex_unlock(&m), EPERM);
  EXPECT_RC(pthread_mutex_lock(&m), 0);
  EXPECT_RC(pthread_mutex_lock(&m), EDEADLK);
  EXPECT_RC(pthread_mutex_trylock(&m), EBUSY);
  struct timespec soon = after_ms(CLOCK_REALTIME, 10);
  EXPECT_RC(pthread_mutex_timedlock(&m, &soon), EDEADLK);
  EXPECT_RC(on_thread(mutex_unlock_fn, &m), EPERM);
  EXPECT_RC(pthread_mutex_unlock(&m), 0);
  EXPECT_RC(pthread_mutex_destroy(&m), 0);
}

/* Robust and priority-inheriting mutexes: coil emulates them as their type, with glibc's checks. */
static void init_with(pthread_mutex_t* m, int type, int robust, int protocol) {
  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
  pthread_mutexattr_settype(&attr, type);
  pthread_mutexattr_setrobust(&attr, robust);
  pthread_mutexattr_setprotocol(&attr, protocol);
  pthread_mutex_init(m, &attr);
  pthread_mutexattr_destroy(&attr);
}

static void mutex_robust_and_prio_inherit(void) {
  pthread_mutex_t m;
  init_with(&m, PTHREAD_MUTEX_NORMAL, PTHREAD_MUTEX_ROBUST, PTHREAD_PRIO_NONE);
  EXPECT_RC(pthread_mutex_lock(&m), 0);
  EXPECT_RC(on_thread(mutex_trylock_fn, &m), EBUSY);
  EXPECT_RC(on_thread(mutex_unlock_fn, &m), EPERM); /* even a normal one: glibc checks */
  EXPECT_RC(pthread_mutex_unlock(&m), 0);
  EXPECT_RC(pthread_mutex_unlock(&m), EPERM);
  EXPECT_RC(pthread_mutex_destroy(&m), 0);
  init_with(&m, PTHREAD_MUTEX_ERRORCHECK, PTHREAD_MUTEX_STALLED, PTHREAD_PRIO_INHERIT);
  EXPECT_RC(pthread_mutex_lock(&m), 0);
  EXPECT_RC(pthread_mutex_trylock(&m), EDEADLK); /* not EBUSY, unlike a plain errorcheck one */
  EXPECT_RC(pthread_mutex_lock(&m), EDEADLK);
  EXPECT_RC(on_thread(mutex_trylock_fn, &m), EBUSY);
  EXPECT_RC(pthread_mutex_unlock(&m), 0);
  EXPECT_RC(pthread_mutex_destroy(&m), 0);
  init_with(&m, PTHREAD_MUTEX_RECURSIVE, PTHREAD_MUTEX_ROBUST, PTHREAD_PRIO_INHERIT);
  EXPECT_RC(pthread_mutex_lock(&m), 0);
  EXPECT_RC(pthread_mutex_lock(&m), 0);
  EXPECT_RC(pthread_mutex_unlock(&m), 0);
  EXPECT_RC(on_thread(mutex_trylock_fn, &m), EBUSY);
  EXPECT_RC(pthread_mutex_unlock(&m), 0);
  EXPECT_RC(on_thread(mutex_trylock_fn, &m), 0);
}

static void mutex_trylock_busy(void) {
  pthread_mutex_t m;
  pthread_mutex_init(&m, NULL);
  struct Holder h = {.object = &m, .take = lock_fn, .give = mutex_unlock_fn};
  hold_start(&h);
  EXPECT_RC(pthread_mutex_trylock(&m), EBUSY);
  hold_end(&h);
  EXPECT_RC(pthread_mutex_trylock(&m), 0);
  EXPECT_RC(pthread_mutex_unlock(&m), 0);
  pthread_mutex_destroy(&m);
}

static void mutex_timedlock(void) {
  pthread_mutex_t m;
  pthread_mutex_init(&m, NULL);
  /* Free: abstime is not even looked at (glibc checks it only when it would wait). */
  EXPECT_RC(pthread_mutex_timedlock(&m, &kBadNsec), 0);
  EXPECT_RC(pthread_mutex_unlock(&m), 0);
  EXPECT_RC(pthread_mutex_clocklock(&m, CLOCK_PROCESS_CPUTIME_ID, &kBadNsec), EINVAL);
  struct Holder h = {.object = &m, .take = lock_fn, .give = mutex_unlock_fn};
  hold_start(&h);
  struct timespec deadline = after_ms(CLOCK_REALTIME, 50);
  EXPECT_RC(pthread_mutex_timedlock(&m, &deadline), ETIMEDOUT);
  EXPECT(reached(CLOCK_REALTIME, &deadline));
  deadline = after_ms(CLOCK_MONOTONIC, 30);
  EXPECT_RC(pthread_mutex_clocklock(&m, CLOCK_MONOTONIC, &deadline), ETIMEDOUT);
  EXPECT(reached(CLOCK_MONOTONIC, &deadline));
  EXPECT_RC(pthread_mutex_timedlock(&m, &kBadNsec), EINVAL);
  EXPECT_RC(pthread_mutex_timedlock(&m, &kNegative), ETIMEDOUT);
  struct timespec past = {.tv_sec = 1, .tv_nsec = 0};
  EXPECT_RC(pthread_mutex_timedlock(&m, &past), ETIMEDOUT);
  EXPECT_RC(pthread_mutex_timedlock(&m, &kAncient), ETIMEDOUT);
  hold_end(&h);
  /* A holder that lets go within the deadline. */
  struct Holder brief = {.object = &m, .take = lock_fn, .give = mutex_unlock_fn, .hold_ms = 20};
  hold_start(&brief);
  EXPECT_RC(pthread_mutex_timedlock(&m, &kNever), 0);
  EXPECT_RC(pthread_mutex_unlock(&m), 0);
  hold_end(&brief);
  pthread_mutex_destroy(&m);
}

static void mutex_destroy(void) {
  pthread_mutex_t m;
  pthread_mutex_init(&m, NULL);
  EXPECT_RC(pthread_mutex_lock(&m), 0);
  EXPECT_RC(pthread_mutex_destroy(&m), EBUSY);
  EXPECT_RC(pthread_mutex_unlock(&m), 0);
  EXPECT_RC(pthread_mutex_destroy(&m), 0);
  EXPECT_RC(pthread_mutex_lock(&m), EINVAL); /* glibc marks a destroyed mutex's kind invalid */
  EXPECT_RC(pthread_mutex_init(&m, NULL), 0);
  EXPECT_RC(pthread_mutex_lock(&m), 0);
  EXPECT_RC(pthread_mutex_unlock(&m), 0);
  pthread_mutex_destroy(&m);
}

/* Threads add to a counter under a mutex, yielding inside the critical section. */
static pthread_mutex_t counter_lock = PTHREAD_MUTEX_INITIALIZER;
static long counter;
static void* add_under_lock(void* arg) {
  (void)arg;
  for (int i = 0; i < 2000; ++i) {
    pthread_mutex_lock(&counter_lock);
    long v = counter;
    if (i % 16 == 0) sched_yield();
    counter = v + 1;
    pthread_mutex_unlock(&counter_lock);
  }
  return NULL;
}

static void mutex_contention(void) {
  pthread_t t[8];
  counter = 0;
  for (int i = 0; i < 8; ++i) pthread_create(&t[i], NULL, add_under_lock, NULL);
  for (int i = 0; i < 8; ++i) pthread_join(t[i], NULL);
  EXPECT(counter == 8 * 2000);
}

/* A thread that unlocks, locks again at once and sleeps holding the mutex must not starve a
 * waiter for good (with green threads, nothing runs between its unlock and its lock; glibc only
 * makes it unlikely: checked only with EXPECT_GREEN=1). */
static pthread_mutex_t relock_mutex = PTHREAD_MUTEX_INITIALIZER;
static int waiter_done;
static void* relock_loop(void* arg) {
  int* rounds = arg;
  for (*rounds = 0; *rounds < 1000 && !__atomic_load_n(&waiter_done, __ATOMIC_RELAXED); ++*rounds) {
    pthread_mutex_lock(&relock_mutex);
    sleep_ms(1);
    pthread_mutex_unlock(&relock_mutex);
  }
  return NULL;
}
static int lock_once(void* m) {
  int rc = pthread_mutex_lock(m);
  __atomic_store_n(&waiter_done, 1, __ATOMIC_RELAXED);
  return rc == 0 ? pthread_mutex_unlock(m) : rc;
}

static void mutex_waiter_not_starved(void) {
  if (!expect_green) return;
  pthread_t t;
  int rounds = 0;
  pthread_create(&t, NULL, relock_loop, &rounds);
  sleep_ms(5);
  EXPECT_RC(on_thread(lock_once, &relock_mutex), 0);
  pthread_join(t, NULL);
  EXPECT(rounds < 1000);
}

/* ---- condition variables ---- */

static pthread_mutex_t cv_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int cv_ready, cv_woken;

static void* cv_waiter(void* arg) {
  (void)arg;
  pthread_mutex_lock(&cv_lock);
  ++cv_ready;
  pthread_cond_broadcast(&cv);
  while (cv_ready > 0) pthread_cond_wait(&cv, &cv_lock);
  ++cv_woken;
  pthread_mutex_unlock(&cv_lock);
  return NULL;
}

static void cond_signal_and_broadcast(void) {
  pthread_t t[3];
  for (int i = 0; i < 3; ++i) pthread_create(&t[i], NULL, cv_waiter, NULL);
  pthread_mutex_lock(&cv_lock);
  while (cv_ready < 3) pthread_cond_wait(&cv, &cv_lock);
  cv_ready = 0;
  pthread_cond_broadcast(&cv);
  pthread_mutex_unlock(&cv_lock);
  for (int i = 0; i < 3; ++i) pthread_join(t[i], NULL);
  EXPECT(cv_woken == 3);
  /* No waiters: signal and broadcast are no-ops. */
  EXPECT_RC(pthread_cond_signal(&cv), 0);
  EXPECT_RC(pthread_cond_broadcast(&cv), 0);
}

static void cond_timeouts(void) {
  pthread_cond_t c = PTHREAD_COND_INITIALIZER;
  pthread_mutex_t m;
  init_typed(&m, PTHREAD_MUTEX_ERRORCHECK);
  EXPECT_RC(pthread_mutex_lock(&m), 0);
  struct timespec deadline = after_ms(CLOCK_REALTIME, 30);
  EXPECT_RC(pthread_cond_timedwait(&c, &m, &deadline), ETIMEDOUT);
  EXPECT(reached(CLOCK_REALTIME, &deadline));
  deadline = after_ms(CLOCK_MONOTONIC, 30);
  EXPECT_RC(pthread_cond_clockwait(&c, &m, CLOCK_MONOTONIC, &deadline), ETIMEDOUT);
  EXPECT(reached(CLOCK_MONOTONIC, &deadline));
  EXPECT_RC(pthread_cond_timedwait(&c, &m, &kNegative), ETIMEDOUT);
  EXPECT_RC(pthread_cond_timedwait(&c, &m, &kAncient), ETIMEDOUT);
  EXPECT_RC(pthread_cond_timedwait(&c, &m, &kBadNsec), EINVAL);
  EXPECT_RC(pthread_cond_clockwait(&c, &m, CLOCK_PROCESS_CPUTIME_ID, &deadline), EINVAL);
  EXPECT_RC(pthread_mutex_unlock(&m), 0);      /* still held after each of those */
  EXPECT_RC(pthread_cond_wait(&c, &m), EPERM); /* an error-checking mutex we do not hold */
  EXPECT_RC(pthread_cond_timedwait(&c, &m, &deadline), EPERM);
  pthread_mutex_destroy(&m);
}

static void cond_monotonic_attr(void) {
  pthread_condattr_t attr;
  pthread_condattr_init(&attr);
  EXPECT_RC(pthread_condattr_setclock(&attr, CLOCK_MONOTONIC), 0);
  pthread_cond_t c;
  EXPECT_RC(pthread_cond_init(&c, &attr), 0);
  clockid_t clock = CLOCK_REALTIME;
  EXPECT_RC(pthread_condattr_getclock(&attr, &clock), 0);
  EXPECT(clock == CLOCK_MONOTONIC);
  pthread_condattr_destroy(&attr);
  pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
  pthread_mutex_lock(&m);
  /* A monotonic deadline 30 ms ahead: on the realtime clock it would be decades ago. */
  struct timespec deadline = after_ms(CLOCK_MONOTONIC, 30);
  EXPECT_RC(pthread_cond_timedwait(&c, &m, &deadline), ETIMEDOUT);
  EXPECT(reached(CLOCK_MONOTONIC, &deadline));
  pthread_mutex_unlock(&m);
  EXPECT_RC(pthread_cond_destroy(&c), 0);
}

/* A waiter whose deadline is far off is woken by a signal from another thread. */
struct Pair {
  pthread_mutex_t m;
  pthread_cond_t c;
  int flag;
};
static int signal_later(void* p) {
  struct Pair* pair = p;
  sleep_ms(20);
  pthread_mutex_lock(&pair->m);
  pair->flag = 1;
  pthread_cond_signal(&pair->c);
  pthread_mutex_unlock(&pair->m);
  return 0;
}
static void* signal_later_thread(void* p) { return (void*)(long)signal_later(p); }

static void cond_timedwait_woken(void) {
  struct Pair pair = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
  pthread_t t;
  pthread_create(&t, NULL, signal_later_thread, &pair);
  pthread_mutex_lock(&pair.m);
  struct timespec deadline = after_ms(CLOCK_REALTIME, 10000);
  int rc = 0;
  while (!pair.flag && rc == 0) rc = pthread_cond_timedwait(&pair.c, &pair.m, &deadline);
  EXPECT(rc == 0 && pair.flag);
  pthread_mutex_unlock(&pair.m);
  pthread_join(t, NULL);
}

/* ---- rwlocks ---- */

static int rdlock_fn(void* l) { return pthread_rwlock_rdlock(l); }
static int wrlock_fn(void* l) { return pthread_rwlock_wrlock(l); }
static int rwunlock_fn(void* l) { return pthread_rwlock_unlock(l); }
static int tryrdlock_fn(void* l) {
  int rc = pthread_rwlock_tryrdlock(l);
  if (rc == 0) pthread_rwlock_unlock(l);
  return rc;
}
static int trywrlock_fn(void* l) {
  int rc = pthread_rwlock_trywrlock(l);
  if (rc == 0) pthread_rwlock_unlock(l);
  return rc;
}
static int timedrdlock_50ms(void* l) {
  struct timespec deadline = after_ms(CLOCK_REALTIME, 50);
  int rc = pthread_rwlock_timedrdlock(l, &deadline);
  if (rc == 0) pthread_rwlock_unlock(l);
  return rc == ETIMEDOUT && !reached(CLOCK_REALTIME, &deadline) ? -1 : rc;
}

static pthread_rwlock_t static_rwlock = PTHREAD_RWLOCK_INITIALIZER;

static void rwlock_basics(void) {
  pthread_rwlock_t* l = &static_rwlock;
  EXPECT_RC(pthread_rwlock_rdlock(l), 0);
  EXPECT_RC(pthread_rwlock_rdlock(l), 0); /* recursive read */
  EXPECT_RC(on_thread(tryrdlock_fn, l), 0);
  EXPECT_RC(on_thread(trywrlock_fn, l), EBUSY);
  EXPECT_RC(pthread_rwlock_unlock(l), 0);
  EXPECT_RC(pthread_rwlock_unlock(l), 0);
  EXPECT_RC(pthread_rwlock_wrlock(l), 0);
  EXPECT_RC(pthread_rwlock_wrlock(l), EDEADLK);
  EXPECT_RC(pthread_rwlock_rdlock(l), EDEADLK);
  EXPECT_RC(pthread_rwlock_trywrlock(l), EBUSY);
  EXPECT_RC(pthread_rwlock_tryrdlock(l), EBUSY);
  EXPECT_RC(on_thread(tryrdlock_fn, l), EBUSY);
  EXPECT_RC(on_thread(timedrdlock_50ms, l), ETIMEDOUT);
  EXPECT_RC(pthread_rwlock_unlock(l), 0);
  EXPECT_RC(on_thread(trywrlock_fn, l), 0);
}

static void rwlock_timeouts(void) {
  pthread_rwlock_t l;
  pthread_rwlock_init(&l, NULL);
  /* Invalid timeouts are refused even when the lock is free (glibc checks them first). */
  EXPECT_RC(pthread_rwlock_timedrdlock(&l, &kBadNsec), EINVAL);
  EXPECT_RC(pthread_rwlock_timedwrlock(&l, &kBadNsec), EINVAL);
  struct timespec deadline = after_ms(CLOCK_MONOTONIC, 30);
  EXPECT_RC(pthread_rwlock_clockrdlock(&l, CLOCK_PROCESS_CPUTIME_ID, &deadline), EINVAL);
  EXPECT_RC(pthread_rwlock_clockwrlock(&l, CLOCK_PROCESS_CPUTIME_ID, &deadline), EINVAL);
  struct Holder reader = {.object = &l, .take = rdlock_fn, .give = rwunlock_fn};
  hold_start(&reader);
  deadline = after_ms(CLOCK_REALTIME, 30);
  EXPECT_RC(pthread_rwlock_timedwrlock(&l, &deadline), ETIMEDOUT);
  EXPECT(reached(CLOCK_REALTIME, &deadline));
  deadline = after_ms(CLOCK_MONOTONIC, 30);
  EXPECT_RC(pthread_rwlock_clockwrlock(&l, CLOCK_MONOTONIC, &deadline), ETIMEDOUT);
  EXPECT(reached(CLOCK_MONOTONIC, &deadline));
  EXPECT_RC(pthread_rwlock_timedwrlock(&l, &kNegative), ETIMEDOUT);
  EXPECT_RC(pthread_rwlock_clockrdlock(&l, CLOCK_MONOTONIC, &deadline), 0);
  EXPECT_RC(pthread_rwlock_unlock(&l), 0);
  hold_end(&reader);
  struct Holder writer = {.object = &l, .take = wrlock_fn, .give = rwunlock_fn};
  hold_start(&writer);
  deadline = after_ms(CLOCK_MONOTONIC, 30);
  EXPECT_RC(pthread_rwlock_clockrdlock(&l, CLOCK_MONOTONIC, &deadline), ETIMEDOUT);
  EXPECT(reached(CLOCK_MONOTONIC, &deadline));
  hold_end(&writer);
  EXPECT_RC(pthread_rwlock_destroy(&l), 0);
}

/* Default kind (readers preferred): a reader may read-lock again while a writer waits. */
static void rwlock_recursive_read_with_writer_waiting(void) {
  pthread_rwlock_t l = PTHREAD_RWLOCK_INITIALIZER;
  EXPECT_RC(pthread_rwlock_rdlock(&l), 0);
  struct Holder writer = {.object = &l, .take = wrlock_fn, .give = rwunlock_fn};
  pthread_t w;
  sem_init(&writer.taken, 0, 0);
  sem_init(&writer.go, 0, 0);
  pthread_create(&w, NULL, hold, &writer);
  sleep_ms(30); /* the writer is blocked in wrlock by now (if not, the check still holds) */
  EXPECT_RC(pthread_rwlock_rdlock(&l), 0);
  EXPECT_RC(pthread_rwlock_unlock(&l), 0);
  EXPECT_RC(pthread_rwlock_unlock(&l), 0);
  while (sem_wait(&writer.taken) != 0) {
  }
  writer.thread = w;
  hold_end(&writer);
}

/* PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP: a new reader waits behind a waiting writer. */
static void rwlock_writer_preferred(void) {
  pthread_rwlock_t l = PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP;
  EXPECT_RC(pthread_rwlock_rdlock(&l), 0);
  struct Holder writer = {.object = &l, .take = wrlock_fn, .give = rwunlock_fn};
  pthread_t w;
  sem_init(&writer.taken, 0, 0);
  sem_init(&writer.go, 0, 0);
  pthread_create(&w, NULL, hold, &writer);
  sleep_ms(30); /* let the writer block */
  EXPECT_RC(on_thread(timedrdlock_50ms, &l), ETIMEDOUT);
  EXPECT_RC(pthread_rwlock_unlock(&l), 0);
  while (sem_wait(&writer.taken) != 0) {
  }
  writer.thread = w;
  hold_end(&writer);
  EXPECT_RC(on_thread(tryrdlock_fn, &l), 0);
}

/* A thread that unlocks, locks again at once and sleeps holding the lock must not starve a waiter
 * for good: a writer behind a reader (glibc hands the lock from the last reader to a waiting
 * writer), a reader behind a writer, and with EXPECT_GREEN=1 a writer behind a writer (which
 * glibc only makes unlikely). */
struct Relocker {
  pthread_rwlock_t* lock;
  int (*take)(void*);
  int rounds;
  int done; /* the waiter got in */
};
static void* rw_relock_loop(void* arg) {
  struct Relocker* r = arg;
  for (r->rounds = 0; r->rounds < 1000 && !__atomic_load_n(&r->done, __ATOMIC_RELAXED);
       ++r->rounds) {
    r->take(r->lock);
    sleep_ms(1);
    pthread_rwlock_unlock(r->lock);
  }
  return NULL;
}
static int rw_waiter_gets_in(int (*loop_take)(void*), int (*wait_take)(void*)) {
  pthread_rwlock_t l = PTHREAD_RWLOCK_INITIALIZER;
  struct Relocker r = {.lock = &l, .take = loop_take};
  pthread_t t;
  pthread_create(&t, NULL, rw_relock_loop, &r);
  sleep_ms(5);
  wait_take(&l);
  __atomic_store_n(&r.done, 1, __ATOMIC_RELAXED);
  pthread_rwlock_unlock(&l);
  pthread_join(t, NULL);
  return r.rounds < 1000;
}

static void rwlock_waiter_not_starved(void) {
  EXPECT(rw_waiter_gets_in(rdlock_fn, wrlock_fn));
  EXPECT(rw_waiter_gets_in(wrlock_fn, rdlock_fn));
  if (expect_green) EXPECT(rw_waiter_gets_in(wrlock_fn, wrlock_fn));
}

/* Writers keep two counters equal; readers must never see them differ. */
static pthread_rwlock_t pair_lock = PTHREAD_RWLOCK_INITIALIZER;
static long pair_a, pair_b;
static int torn_reads;
static void* rw_writer(void* arg) {
  (void)arg;
  for (int i = 0; i < 500; ++i) {
    pthread_rwlock_wrlock(&pair_lock);
    ++pair_a;
    if (i % 8 == 0) sched_yield();
    ++pair_b;
    pthread_rwlock_unlock(&pair_lock);
  }
  return NULL;
}
static void* rw_reader(void* arg) {
  (void)arg;
  for (int i = 0; i < 500; ++i) {
    pthread_rwlock_rdlock(&pair_lock);
    long a = pair_a;
    if (i % 8 == 0) sched_yield();
    if (a != pair_b) __atomic_add_fetch(&torn_reads, 1, __ATOMIC_RELAXED);
    pthread_rwlock_unlock(&pair_lock);
  }
  return NULL;
}

static void rwlock_readers_and_writers(void) {
  pthread_t t[8];
  for (int i = 0; i < 8; ++i) pthread_create(&t[i], NULL, i % 4 == 0 ? rw_writer : rw_reader, NULL);
  for (int i = 0; i < 8; ++i) pthread_join(t[i], NULL);
  EXPECT(pair_a == 2 * 500 && pair_b == pair_a);
  EXPECT(torn_reads == 0);
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  const char* green = getenv("EXPECT_GREEN");
  expect_green = green && strcmp(green, "1") == 0;
  run("mutex static initializers (normal, recursive, errorcheck, adaptive)",
      mutex_static_initializers);
  run("mutex recursive: count, EBUSY, EPERM, destroy EBUSY", mutex_recursive);
  run("mutex errorcheck: EDEADLK, EBUSY, EPERM", mutex_errorcheck);
  run("mutex robust and priority-inheriting: EPERM, EDEADLK", mutex_robust_and_prio_inherit);
  run("mutex trylock EBUSY while another thread holds it", mutex_trylock_busy);
  run("mutex timedlock/clocklock: ETIMEDOUT, EINVAL, success, far past and future",
      mutex_timedlock);
  run("mutex destroy: EBUSY, then EINVAL until re-init", mutex_destroy);
  run("mutex under contention with yields", mutex_contention);
  run("mutex waiter not starved by a holder that relocks at once", mutex_waiter_not_starved);
  run("cond signal and broadcast", cond_signal_and_broadcast);
  run("cond timedwait/clockwait: ETIMEDOUT, EINVAL, EPERM", cond_timeouts);
  run("cond with a CLOCK_MONOTONIC condattr", cond_monotonic_attr);
  run("cond timedwait woken before its deadline", cond_timedwait_woken);
  run("rwlock: shared reads, exclusive write, EBUSY, EDEADLK", rwlock_basics);
  run("rwlock timed/clock locks: ETIMEDOUT, EINVAL", rwlock_timeouts);
  run("rwlock default kind: recursive read while a writer waits",
      rwlock_recursive_read_with_writer_waiting);
  run("rwlock writer-preferring kind: a new reader waits behind a writer", rwlock_writer_preferred);
  run("rwlock readers and writers never overlap", rwlock_readers_and_writers);
  run("rwlock waiter not starved by a holder that relocks at once", rwlock_waiter_not_starved);
  run("spinlock held across sleeps, trylock EBUSY", spinlock);
  run("barrier: EINVAL for 0, one serial thread per round", barrier_serial_thread);
  run("barrier destroyed and freed by its serial thread", barrier_freed_by_serial_thread);
  run("semaphore: EAGAIN, ETIMEDOUT, EINVAL, EOVERFLOW, post wakes", semaphore);
  run("semaphore waiter not starved by a thread that posts and waits again",
      semaphore_waiter_not_starved);
  run("sem_wait: EINTR without SA_RESTART, restarted with it, ended by a handler's sem_post",
      semaphore_eintr);
  run("sched_yield lets another thread run", sched_yield_lets_others_run);
  run("objects initialised before main()", objects_from_before_main);
  run("process-shared objects across fork", process_shared);
  run("named semaphore", named_semaphore);
  run("retry loops of try and past-deadline calls end when the holder lets go", retry_loops);
  printf("%s\n", failures ? "some checks FAILED" : "all checks ok");
  return failures ? 1 : 0;
}
