/* zoo.h: what the halves of sync_zoo (sync_zoo.c, sync_zoo_misc.c) share: the EXPECT macros,
 * timeouts, running a function on another thread, and a thread that holds a lock until told.
 * Plain C, no coil.
 */
#ifndef COIL_TESTS_PRELOAD_ZOO_H
#define COIL_TESTS_PRELOAD_ZOO_H

/* Precondition: _GNU_SOURCE is defined before any system header. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

extern int failures;
extern int check_failed; /* in the check running now */
/* EXPECT_GREEN=1 (the run under libcoil_preload.so) turns on the checks of what coil promises
 * beyond glibc: glibc's own mutex, rwlock and semaphore can starve a waiter behind a thread that
 * unlocks and locks again at once (in 1 of 15 runs such a waiter waited through all 1000
 * rounds). Natively those checks are skipped, and print the same line. */
extern int expect_green;

#define EXPECT(cond)                                            \
  do {                                                          \
    if (!(cond)) {                                              \
      printf("  line %d: %s does not hold\n", __LINE__, #cond); \
      check_failed = 1;                                         \
    }                                                           \
  } while (0)

#define EXPECT_RC(call, want)                                                     \
  do {                                                                            \
    int rc_ = (call);                                                             \
    if (rc_ != (want)) {                                                          \
      printf("  line %d: %s gave %s, not %s\n", __LINE__, #call, error_name(rc_), \
             error_name(want));                                                   \
      check_failed = 1;                                                           \
    }                                                                             \
  } while (0)

/* For the calls that return -1 and set errno (semaphores). */
#define EXPECT_ERRNO(call, want)                                                          \
  do {                                                                                    \
    errno = 0;                                                                            \
    int rc_ = (call);                                                                     \
    int got_ = rc_ == 0 ? 0 : errno;                                                      \
    if (got_ != (want)) {                                                                 \
      printf("  line %d: %s failed with %s, not %s\n", __LINE__, #call, error_name(got_), \
             error_name(want));                                                           \
      check_failed = 1;                                                                   \
    }                                                                                     \
  } while (0)

static inline const char* error_name(int e) {
  switch (e) {
    case 0:
      return "0";
    case EBUSY:
      return "EBUSY";
    case EDEADLK:
      return "EDEADLK";
    case EPERM:
      return "EPERM";
    case EINVAL:
      return "EINVAL";
    case ETIMEDOUT:
      return "ETIMEDOUT";
    case EAGAIN:
      return "EAGAIN";
    case EINTR:
      return "EINTR";
    case EOVERFLOW:
      return "EOVERFLOW";
    case PTHREAD_BARRIER_SERIAL_THREAD:
      return "PTHREAD_BARRIER_SERIAL_THREAD";
    default:
      return "another value";
  }
}

static inline void run(const char* name, void (*check)(void)) {
  check_failed = 0;
  check();
  printf("%s %s\n", check_failed ? "FAIL" : "ok", name);
  fflush(stdout);
  failures += check_failed;
}

static inline struct timespec after_ms(clockid_t clock, long ms) {
  struct timespec t;
  clock_gettime(clock, &t);
  t.tv_sec += ms / 1000;
  t.tv_nsec += ms % 1000 * 1000000;
  if (t.tv_nsec >= 1000000000) {
    t.tv_sec += 1;
    t.tv_nsec -= 1000000000;
  }
  return t;
}

static inline int reached(clockid_t clock, const struct timespec* deadline) {
  struct timespec now;
  clock_gettime(clock, &now);
  return now.tv_sec > deadline->tv_sec ||
         (now.tv_sec == deadline->tv_sec && now.tv_nsec >= deadline->tv_nsec);
}

__attribute__((unused)) static const struct timespec kBadNsec = {.tv_sec = 0,
                                                                 .tv_nsec = 1000000000};
__attribute__((unused)) static const struct timespec kNegative = {.tv_sec = -1, .tv_nsec = 0};
/* The extremes a program may pass for "already over" and "never". */
__attribute__((unused)) static const struct timespec kAncient = {.tv_sec = LONG_MIN + 5,
                                                                 .tv_nsec = 0};
__attribute__((unused)) static const struct timespec kNever = {.tv_sec = LONG_MAX, .tv_nsec = 0};

static inline void sleep_ms(long ms) {
  struct timespec t = {.tv_sec = ms / 1000, .tv_nsec = ms % 1000 * 1000000};
  nanosleep(&t, NULL);
}

/* on_thread() runs fn(arg) on a new thread and returns its result. */
typedef int (*ThreadFn)(void*);
struct Call {
  ThreadFn fn;
  void* arg;
};
static inline void* call_fn(void* p) {
  struct Call* c = p;
  return (void*)(long)c->fn(c->arg);
}
static inline int on_thread(ThreadFn fn, void* arg) {
  struct Call c = {fn, arg};
  pthread_t t;
  void* r = NULL;
  pthread_create(&t, NULL, call_fn, &c);
  pthread_join(t, &r);
  return (int)(long)r;
}

static inline int mutex_trylock_fn(void* m) { return pthread_mutex_trylock(m); }
static inline int mutex_unlock_fn(void* m) { return pthread_mutex_unlock(m); }

/* Holder: a thread that takes a lock, reports, and keeps it until told to let go. */
struct Holder {
  pthread_t thread;
  void* object;
  int (*take)(void*);
  int (*give)(void*);
  long hold_ms; /* > 0: let go by itself after that long; else when release() says */
  sem_t taken, go;
};
static inline void* hold(void* p) {
  struct Holder* h = p;
  h->take(h->object);
  sem_post(&h->taken);
  if (h->hold_ms > 0) {
    sleep_ms(h->hold_ms);
  } else {
    while (sem_wait(&h->go) != 0) {
    }
  }
  h->give(h->object);
  return NULL;
}
static inline void hold_start(struct Holder* h) {
  sem_init(&h->taken, 0, 0);
  sem_init(&h->go, 0, 0);
  pthread_create(&h->thread, NULL, hold, h);
  while (sem_wait(&h->taken) != 0) {
  }
}
static inline void hold_end(struct Holder* h) {
  if (h->hold_ms <= 0) sem_post(&h->go);
  pthread_join(h->thread, NULL);
  sem_destroy(&h->taken);
  sem_destroy(&h->go);
}

static inline int lock_fn(void* m) { return pthread_mutex_lock(m); }

static inline void init_typed(pthread_mutex_t* m, int type) {
  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
  pthread_mutexattr_settype(&attr, type);
  pthread_mutex_init(m, &attr);
  pthread_mutexattr_destroy(&attr);
}

/* The checks of sync_zoo_misc.c. */
void spinlock(void);
void barrier_serial_thread(void);
void barrier_freed_by_serial_thread(void);
void semaphore(void);
void semaphore_waiter_not_starved(void);
void semaphore_eintr(void);
void sched_yield_lets_others_run(void);
void objects_from_before_main(void);
void process_shared(void);
void named_semaphore(void);
void retry_loops(void);

#endif /* COIL_TESTS_PRELOAD_ZOO_H */
