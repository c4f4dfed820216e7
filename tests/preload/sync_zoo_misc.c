/* sync_zoo_misc.c: the second half of sync_zoo (see sync_zoo.c): spinlocks, barriers,
 * semaphores, sched_yield, objects a constructor initialised before main(), and the
 * process-shared objects and named semaphores that stay glibc's.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zoo.h"

/* ---- spinlocks ---- */

static pthread_spinlock_t spin;
static long spin_counter;
static void* spin_adder(void* arg) {
  (void)arg;
  for (int i = 0; i < 100; ++i) {
    pthread_spin_lock(&spin);
    long v = spin_counter;
    if (i % 25 == 0) sleep_ms(2); /* the holder sleeps: the others must not spin it away */
    spin_counter = v + 1;
    pthread_spin_unlock(&spin);
  }
  return NULL;
}
static int spin_trylock_fn(void* s) { return pthread_spin_trylock(s); }

void spinlock(void) {
  EXPECT_RC(pthread_spin_init(&spin, PTHREAD_PROCESS_PRIVATE), 0);
  EXPECT_RC(pthread_spin_trylock(&spin), 0);
  EXPECT_RC(pthread_spin_trylock(&spin), EBUSY);
  EXPECT_RC(on_thread(spin_trylock_fn, (void*)&spin), EBUSY);
  EXPECT_RC(pthread_spin_unlock(&spin), 0);
  pthread_t t[4];
  for (int i = 0; i < 4; ++i) pthread_create(&t[i], NULL, spin_adder, NULL);
  for (int i = 0; i < 4; ++i) pthread_join(t[i], NULL);
  EXPECT(spin_counter == 4 * 100);
  EXPECT_RC(pthread_spin_destroy(&spin), 0);
}

/* ---- barriers ---- */

static pthread_barrier_t barrier;
static int serials[3];
static void* barrier_rounds(void* arg) {
  (void)arg;
  for (int round = 0; round < 3; ++round) {
    int rc = pthread_barrier_wait(&barrier);
    if (rc == PTHREAD_BARRIER_SERIAL_THREAD) {
      __atomic_add_fetch(&serials[round], 1, __ATOMIC_RELAXED);
    } else if (rc != 0) {
      __atomic_add_fetch(&serials[round], 100, __ATOMIC_RELAXED);
    }
  }
  return NULL;
}

void barrier_serial_thread(void) {
  EXPECT_RC(pthread_barrier_init(&barrier, NULL, 0), EINVAL);
  EXPECT_RC(pthread_barrier_init(&barrier, NULL, 5), 0);
  pthread_t t[5];
  for (int i = 0; i < 5; ++i) pthread_create(&t[i], NULL, barrier_rounds, NULL);
  for (int i = 0; i < 5; ++i) pthread_join(t[i], NULL);
  for (int round = 0; round < 3; ++round) EXPECT(serials[round] == 1);
  EXPECT_RC(pthread_barrier_destroy(&barrier), 0);
  pthread_barrier_t one;
  EXPECT_RC(pthread_barrier_init(&one, NULL, 1), 0);
  EXPECT_RC(pthread_barrier_wait(&one), PTHREAD_BARRIER_SERIAL_THREAD);
  EXPECT_RC(pthread_barrier_wait(&one), PTHREAD_BARRIER_SERIAL_THREAD);
  EXPECT_RC(pthread_barrier_destroy(&one), 0);
}

/* The serial thread destroys and frees the barrier while the others have not yet returned. */
static void* barrier_then_free(void* arg) {
  pthread_barrier_t* b = arg;
  if (pthread_barrier_wait(b) == PTHREAD_BARRIER_SERIAL_THREAD) {
    pthread_barrier_destroy(b);
    memset(b, 0xa5, sizeof *b);
    free(b);
  }
  return NULL;
}

void barrier_freed_by_serial_thread(void) {
  for (int i = 0; i < 20; ++i) {
    pthread_barrier_t* b = malloc(sizeof *b);
    pthread_barrier_init(b, NULL, 3);
    pthread_t t[3];
    for (int j = 0; j < 3; ++j) pthread_create(&t[j], NULL, barrier_then_free, b);
    for (int j = 0; j < 3; ++j) pthread_join(t[j], NULL);
  }
}

/* ---- semaphores ---- */

static int sem_post_later(void* s) {
  sleep_ms(20);
  return sem_post(s);
}
static void* sem_post_later_thread(void* s) { return (void*)(long)sem_post_later(s); }

void semaphore(void) {
  sem_t s;
  EXPECT_ERRNO(sem_init(&s, 0, (unsigned)SEM_VALUE_MAX + 1), EINVAL);
  EXPECT_ERRNO(sem_init(&s, 0, 2), 0);
  int value = -1;
  EXPECT_ERRNO(sem_getvalue(&s, &value), 0);
  EXPECT(value == 2);
  EXPECT_ERRNO(sem_trywait(&s), 0);
  EXPECT_ERRNO(sem_wait(&s), 0);
  EXPECT_ERRNO(sem_trywait(&s), EAGAIN);
  struct timespec deadline = after_ms(CLOCK_REALTIME, 30);
  EXPECT_ERRNO(sem_timedwait(&s, &deadline), ETIMEDOUT);
  EXPECT(reached(CLOCK_REALTIME, &deadline));
  deadline = after_ms(CLOCK_MONOTONIC, 30);
  EXPECT_ERRNO(sem_clockwait(&s, CLOCK_MONOTONIC, &deadline), ETIMEDOUT);
  EXPECT(reached(CLOCK_MONOTONIC, &deadline));
  EXPECT_ERRNO(sem_timedwait(&s, &kNegative), ETIMEDOUT);
  EXPECT_ERRNO(sem_timedwait(&s, &kAncient), ETIMEDOUT);
  EXPECT_ERRNO(sem_clockwait(&s, CLOCK_PROCESS_CPUTIME_ID, &deadline), EINVAL);
  EXPECT_ERRNO(sem_post(&s), 0);
  EXPECT_ERRNO(sem_timedwait(&s, &kBadNsec), EINVAL); /* checked before the value */
  EXPECT_ERRNO(sem_getvalue(&s, &value), 0);
  EXPECT(value == 1);
  EXPECT_ERRNO(sem_timedwait(&s, &deadline), 0);
  /* Woken by a post from another thread. */
  pthread_t t;
  pthread_create(&t, NULL, sem_post_later_thread, &s);
  EXPECT_ERRNO(sem_wait(&s), 0);
  pthread_join(t, NULL);
  pthread_create(&t, NULL, sem_post_later_thread, &s);
  EXPECT_ERRNO(sem_timedwait(&s, &kNever), 0);
  pthread_join(t, NULL);
  EXPECT_ERRNO(sem_destroy(&s), 0);
  EXPECT_ERRNO(sem_init(&s, 0, SEM_VALUE_MAX), 0);
  EXPECT_ERRNO(sem_post(&s), EOVERFLOW);
  EXPECT_ERRNO(sem_getvalue(&s, &value), 0);
  EXPECT(value == SEM_VALUE_MAX);
  EXPECT_ERRNO(sem_destroy(&s), 0);
}

/* A thread that posts and waits again at once, sleeping in between with the token, must not starve
 * another waiter for good (checked only with EXPECT_GREEN=1, as for mutexes). */
static sem_t binary;
static int binary_done;
static void* binary_loop(void* arg) {
  int* rounds = arg;
  for (*rounds = 0; *rounds < 1000 && !__atomic_load_n(&binary_done, __ATOMIC_RELAXED); ++*rounds) {
    while (sem_wait(&binary) != 0) {
    }
    sleep_ms(1);
    sem_post(&binary);
  }
  return NULL;
}

void semaphore_waiter_not_starved(void) {
  if (!expect_green) return;
  sem_init(&binary, 0, 1);
  pthread_t t;
  int rounds = 0;
  pthread_create(&t, NULL, binary_loop, &rounds);
  sleep_ms(5);
  EXPECT_ERRNO(sem_wait(&binary), 0);
  __atomic_store_n(&binary_done, 1, __ATOMIC_RELAXED);
  sem_post(&binary);
  pthread_join(t, NULL);
  EXPECT(rounds < 1000);
  int value = -1;
  EXPECT_ERRNO(sem_getvalue(&binary, &value), 0);
  EXPECT(value == 1);
  sem_destroy(&binary);
}

/* sem_wait and a SIGALRM handler: EINTR without SA_RESTART, restarted with it. */
static volatile sig_atomic_t alarms;
static void on_alarm(int sig) {
  (void)sig;
  ++alarms;
}

struct Nagger {
  pthread_t target;
  sem_t* sem;
  int post_after; /* > 0: post the semaphore after that many signals */
  volatile int done;
};
static void* nag(void* p) {
  struct Nagger* n = p;
  for (int i = 1; i <= 500 && !n->done; ++i) {
    sleep_ms(10);
    pthread_kill(n->target, SIGALRM);
    if (n->post_after > 0 && i == n->post_after) sem_post(n->sem);
  }
  return NULL;
}

static int sem_wait_with_alarms(int flags, int post_after) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_alarm;
  sa.sa_flags = flags;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGALRM, &sa, NULL);
  sem_t s;
  sem_init(&s, 0, 0);
  struct Nagger n = {.target = pthread_self(), .sem = &s, .post_after = post_after};
  pthread_t t;
  pthread_create(&t, NULL, nag, &n);
  errno = 0;
  int rc = sem_wait(&s) == 0 ? 0 : errno;
  n.done = 1;
  pthread_join(t, NULL);
  sem_destroy(&s);
  signal(SIGALRM, SIG_DFL);
  return rc;
}

/* A handler that posts: sem_post is async-signal-safe, and the token it adds ends the wait. */
static sem_t handler_sem;
static void post_in_handler(int sig) {
  (void)sig;
  sem_post(&handler_sem);
}
static void* waits_on_handler_sem(void* arg) {
  (void)arg;
  return (void*)(long)(sem_wait(&handler_sem) == 0 ? 0 : errno);
}

static int sem_posted_by_handler(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = post_in_handler;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGUSR1, &sa, NULL);
  sem_init(&handler_sem, 0, 0);
  pthread_t t;
  pthread_create(&t, NULL, waits_on_handler_sem, NULL);
  sleep_ms(20);
  pthread_kill(t, SIGUSR1);
  void* r = NULL;
  pthread_join(t, &r);
  sem_destroy(&handler_sem);
  signal(SIGUSR1, SIG_DFL);
  return (int)(long)r;
}

void semaphore_eintr(void) {
  alarms = 0;
  EXPECT_RC(sem_wait_with_alarms(0, 0), EINTR);
  EXPECT(alarms > 0);
  alarms = 0;
  EXPECT_RC(sem_wait_with_alarms(SA_RESTART, 3), 0);
  EXPECT(alarms >= 3);
  EXPECT_RC(sem_posted_by_handler(), 0);
}

/* ---- sched_yield ---- */

static volatile int yield_flag;
static void* set_flag(void* arg) {
  (void)arg;
  yield_flag = 1;
  return NULL;
}

void sched_yield_lets_others_run(void) {
  pthread_t t;
  yield_flag = 0;
  pthread_create(&t, NULL, set_flag, NULL);
  long spins = 0;
  while (!yield_flag) {
    EXPECT_RC(sched_yield(), 0);
    ++spins;
  }
  pthread_join(t, NULL);
  EXPECT(spins >= 0);
}

/* ---- objects a constructor initialised before main(), with glibc alone ---- */

static sem_t early_sem;
static pthread_barrier_t early_barrier;
static pthread_mutex_t early_mutex;
static pthread_cond_t early_cond;
static pthread_rwlock_t early_rwlock;
static int early_flag;

__attribute__((constructor)) static void init_before_main(void) {
  sem_init(&early_sem, 0, 0);
  pthread_barrier_init(&early_barrier, NULL, 2);
  init_typed(&early_mutex, PTHREAD_MUTEX_ERRORCHECK);
  pthread_mutex_lock(&early_mutex);
  pthread_mutex_unlock(&early_mutex);
  pthread_condattr_t attr;
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  pthread_cond_init(&early_cond, &attr);
  pthread_condattr_destroy(&attr);
  pthread_rwlock_init(&early_rwlock, NULL);
  pthread_rwlock_wrlock(&early_rwlock);
  pthread_rwlock_unlock(&early_rwlock);
}

static void* early_partner(void* arg) {
  (void)arg;
  pthread_barrier_wait(&early_barrier);
  sem_post(&early_sem);
  pthread_rwlock_wrlock(&early_rwlock);
  pthread_mutex_lock(&early_mutex);
  early_flag = 1;
  pthread_cond_signal(&early_cond);
  pthread_mutex_unlock(&early_mutex);
  sleep_ms(10);
  pthread_rwlock_unlock(&early_rwlock);
  return NULL;
}

void objects_from_before_main(void) {
  pthread_t t;
  pthread_create(&t, NULL, early_partner, NULL);
  int rc = pthread_barrier_wait(&early_barrier);
  EXPECT(rc == 0 || rc == PTHREAD_BARRIER_SERIAL_THREAD);
  EXPECT_ERRNO(sem_wait(&early_sem), 0);
  EXPECT_RC(pthread_mutex_lock(&early_mutex), 0);
  struct timespec deadline = after_ms(CLOCK_MONOTONIC, 10000);
  while (!early_flag && rc != ETIMEDOUT)
    rc = pthread_cond_timedwait(&early_cond, &early_mutex, &deadline);
  EXPECT(early_flag);
  EXPECT_RC(pthread_mutex_lock(&early_mutex), EDEADLK);
  EXPECT_RC(pthread_mutex_unlock(&early_mutex), 0);
  EXPECT_RC(pthread_rwlock_rdlock(&early_rwlock), 0);
  EXPECT_RC(pthread_rwlock_unlock(&early_rwlock), 0);
  pthread_join(t, NULL);
}

/* ---- process-shared objects and named semaphores: glibc's own ---- */

struct Shared {
  pthread_mutex_t mutex;
  pthread_cond_t cond;
  pthread_rwlock_t rwlock;
  pthread_barrier_t barrier;
  sem_t sem;
};

void process_shared(void) {
  struct Shared* sh =
      mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  EXPECT(sh != MAP_FAILED);
  if (sh == MAP_FAILED) return;
  pthread_mutexattr_t ma;
  pthread_mutexattr_init(&ma);
  pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
  EXPECT_RC(pthread_mutex_init(&sh->mutex, &ma), 0);
  pthread_mutexattr_destroy(&ma);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setpshared(&ca, PTHREAD_PROCESS_SHARED);
  EXPECT_RC(pthread_cond_init(&sh->cond, &ca), 0);
  pthread_condattr_destroy(&ca);
  pthread_rwlockattr_t ra;
  pthread_rwlockattr_init(&ra);
  pthread_rwlockattr_setpshared(&ra, PTHREAD_PROCESS_SHARED);
  EXPECT_RC(pthread_rwlock_init(&sh->rwlock, &ra), 0);
  pthread_rwlockattr_destroy(&ra);
  pthread_barrierattr_t ba;
  pthread_barrierattr_init(&ba);
  pthread_barrierattr_setpshared(&ba, PTHREAD_PROCESS_SHARED);
  EXPECT_RC(pthread_barrier_init(&sh->barrier, &ba, 2), 0);
  pthread_barrierattr_destroy(&ba);
  EXPECT_ERRNO(sem_init(&sh->sem, 1, 0), 0);

  /* The child finds the mutex held by its parent, waits at the barrier, posts the semaphore. */
  EXPECT_RC(pthread_mutex_lock(&sh->mutex), 0);
  pid_t child = fork();
  if (child == 0) {
    int ok = pthread_mutex_trylock(&sh->mutex) == EBUSY;
    struct timespec deadline = after_ms(CLOCK_REALTIME, 20);
    ok &= pthread_mutex_timedlock(&sh->mutex, &deadline) == ETIMEDOUT;
    int rc = pthread_barrier_wait(&sh->barrier);
    ok &= rc == 0 || rc == PTHREAD_BARRIER_SERIAL_THREAD;
    ok &= sem_post(&sh->sem) == 0;
    _exit(ok ? 0 : 1);
  }
  int rc = pthread_barrier_wait(&sh->barrier);
  EXPECT(rc == 0 || rc == PTHREAD_BARRIER_SERIAL_THREAD);
  EXPECT_ERRNO(sem_wait(&sh->sem), 0);
  int status = -1;
  waitpid(child, &status, 0);
  EXPECT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_RC(pthread_mutex_unlock(&sh->mutex), 0);
  /* The other calls, in this process. */
  EXPECT_RC(pthread_mutex_lock(&sh->mutex), 0);
  struct timespec deadline = after_ms(CLOCK_REALTIME, 20);
  EXPECT_RC(pthread_cond_timedwait(&sh->cond, &sh->mutex, &deadline), ETIMEDOUT);
  EXPECT_RC(pthread_cond_signal(&sh->cond), 0);
  EXPECT_RC(pthread_cond_broadcast(&sh->cond), 0);
  EXPECT_RC(pthread_mutex_unlock(&sh->mutex), 0);
  EXPECT_RC(pthread_rwlock_rdlock(&sh->rwlock), 0);
  EXPECT_RC(pthread_rwlock_trywrlock(&sh->rwlock), EBUSY);
  EXPECT_RC(pthread_rwlock_unlock(&sh->rwlock), 0);
  EXPECT_RC(pthread_rwlock_wrlock(&sh->rwlock), 0);
  EXPECT_RC(pthread_rwlock_unlock(&sh->rwlock), 0);
  deadline = after_ms(CLOCK_REALTIME, 20);
  EXPECT_ERRNO(sem_timedwait(&sh->sem, &deadline), ETIMEDOUT);
  EXPECT_ERRNO(sem_post(&sh->sem), 0);
  EXPECT_ERRNO(sem_trywait(&sh->sem), 0);
  EXPECT_ERRNO(sem_destroy(&sh->sem), 0);
  EXPECT_RC(pthread_barrier_destroy(&sh->barrier), 0);
  EXPECT_RC(pthread_rwlock_destroy(&sh->rwlock), 0);
  EXPECT_RC(pthread_cond_destroy(&sh->cond), 0);
  EXPECT_RC(pthread_mutex_destroy(&sh->mutex), 0);
  munmap(sh, sizeof *sh);
}

void named_semaphore(void) {
  char name[64];
  snprintf(name, sizeof name, "/coil-sync-zoo-%d", (int)getpid());
  sem_t* s = sem_open(name, O_CREAT | O_EXCL, 0600, 1);
  EXPECT(s != SEM_FAILED);
  if (s == SEM_FAILED) return;
  sem_unlink(name);
  EXPECT_ERRNO(sem_trywait(s), 0);
  EXPECT_ERRNO(sem_trywait(s), EAGAIN);
  struct timespec deadline = after_ms(CLOCK_REALTIME, 20);
  EXPECT_ERRNO(sem_timedwait(s, &deadline), ETIMEDOUT);
  EXPECT_ERRNO(sem_post(s), 0);
  int value = -1;
  EXPECT_ERRNO(sem_getvalue(s, &value), 0);
  EXPECT(value == 1);
  EXPECT_ERRNO(sem_wait(s), 0);
  EXPECT_ERRNO(sem_close(s), 0);
}

/* ---- retry loops ---- */

/* A program may poll with a try call, or a timed call whose deadline is past, until it succeeds:
 * each loop below ends once the holder, which sleeps 20 ms first, lets go. */
static int spin_lock_fn(void* s) { return pthread_spin_lock(s); }
static int spin_unlock_fn(void* s) { return pthread_spin_unlock(s); }
static int rd_fn(void* l) { return pthread_rwlock_rdlock(l); }
static int rw_unlock_fn(void* l) { return pthread_rwlock_unlock(l); }

void retry_loops(void) {
  pthread_mutex_t m;
  pthread_mutex_init(&m, NULL);
  struct Holder h = {.object = &m, .take = lock_fn, .give = mutex_unlock_fn, .hold_ms = 20};
  hold_start(&h);
  while (pthread_mutex_trylock(&m) == EBUSY) {
  }
  EXPECT_RC(pthread_mutex_unlock(&m), 0);
  hold_end(&h);
  hold_start(&h);
  while (pthread_mutex_timedlock(&m, &kNegative) == ETIMEDOUT) {
  }
  EXPECT_RC(pthread_mutex_unlock(&m), 0);
  hold_end(&h);
  pthread_mutex_destroy(&m);

  pthread_spinlock_t s;
  pthread_spin_init(&s, PTHREAD_PROCESS_PRIVATE);
  struct Holder sh = {
      .object = (void*)&s, .take = spin_lock_fn, .give = spin_unlock_fn, .hold_ms = 20};
  hold_start(&sh);
  while (pthread_spin_trylock(&s) == EBUSY) {
  }
  EXPECT_RC(pthread_spin_unlock(&s), 0);
  hold_end(&sh);
  pthread_spin_destroy(&s);

  pthread_rwlock_t l;
  pthread_rwlock_init(&l, NULL);
  struct Holder rh = {.object = &l, .take = rd_fn, .give = rw_unlock_fn, .hold_ms = 20};
  hold_start(&rh);
  while (pthread_rwlock_trywrlock(&l) == EBUSY) {
  }
  EXPECT_RC(pthread_rwlock_unlock(&l), 0);
  hold_end(&rh);
  pthread_rwlock_destroy(&l);

  sem_t sem;
  sem_init(&sem, 0, 0);
  pthread_t t;
  pthread_create(&t, NULL, sem_post_later_thread, &sem);
  while (sem_trywait(&sem) != 0) {
  }
  pthread_join(t, NULL);
  pthread_create(&t, NULL, sem_post_later_thread, &sem);
  while (sem_timedwait(&sem, &kNegative) != 0) {
  }
  pthread_join(t, NULL);
  sem_destroy(&sem);
}
