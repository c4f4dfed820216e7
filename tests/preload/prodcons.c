/* prodcons: plain pthread code (no coil): producers and consumers on a bounded buffer guarded by
 * a mutex and two condition variables. Checks that every item is consumed exactly once, that a
 * consumer waiting on an empty queue with pthread_cond_timedwait (realtime clock) and with a
 * monotonic-clock condattr times out and not early, and that one broadcast wakes every waiter.
 * With EXPECT_GREEN=1 (set by tests/preload_sync_test.sh for the run under libcoil_preload.so)
 * it also checks that 50 threads blocked in pthread_cond_wait are not 50 OS threads; natively it
 * checks that they are, so the check can fail. Prints one summary line; exit status 0 only if
 * every check held.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum {
  kProducers = 4,
  kConsumers = 4,
  kItemsEach = 20000,
  kItems = kProducers * kItemsEach,
  kCapacity = 8,
  kSleepers = 50,
  kGreenMaxThreads = 4, /* main's worker and coil's own threads */
};

static int failures;

static void fail(const char* what) {
  printf("FAIL %s\n", what);
  ++failures;
}

/* The bounded buffer. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t not_full = PTHREAD_COND_INITIALIZER;
static pthread_cond_t not_empty = PTHREAD_COND_INITIALIZER;
static int ring[kCapacity];
static int head, count, producers_left = kProducers;
static unsigned char seen[kItems];
static int duplicates;

static void* produce(void* arg) {
  int first = (int)(long)arg * kItemsEach;
  for (int i = first; i < first + kItemsEach; ++i) {
    pthread_mutex_lock(&lock);
    while (count == kCapacity) pthread_cond_wait(&not_full, &lock);
    ring[(head + count++) % kCapacity] = i;
    pthread_cond_signal(&not_empty);
    pthread_mutex_unlock(&lock);
  }
  pthread_mutex_lock(&lock);
  if (--producers_left == 0) pthread_cond_broadcast(&not_empty); /* wake consumers to finish */
  pthread_mutex_unlock(&lock);
  return NULL;
}

static void* consume(void* arg) {
  long taken = 0;
  (void)arg;
  pthread_mutex_lock(&lock);
  for (;;) {
    while (count == 0 && producers_left > 0) pthread_cond_wait(&not_empty, &lock);
    if (count == 0) break;
    int item = ring[head];
    head = (head + 1) % kCapacity;
    --count;
    if (seen[item]++) ++duplicates;
    ++taken;
    pthread_cond_signal(&not_full);
  }
  pthread_mutex_unlock(&lock);
  return (void*)taken;
}

static void producers_and_consumers(void) {
  pthread_t p[kProducers], c[kConsumers];
  for (long i = 0; i < kConsumers; ++i) pthread_create(&c[i], NULL, consume, NULL);
  for (long i = 0; i < kProducers; ++i) pthread_create(&p[i], NULL, produce, (void*)i);
  for (int i = 0; i < kProducers; ++i) pthread_join(p[i], NULL);
  long taken = 0;
  for (int i = 0; i < kConsumers; ++i) {
    void* n = NULL;
    pthread_join(c[i], &n);
    taken += (long)n;
  }
  int missing = 0;
  for (int i = 0; i < kItems; ++i) missing += !seen[i];
  if (taken != kItems || missing || duplicates) {
    printf("FAIL items: %ld taken, %d missing, %d consumed twice\n", taken, missing, duplicates);
    ++failures;
  }
}

static struct timespec after_ms(clockid_t clock, long ms) {
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

static int reached(clockid_t clock, const struct timespec* deadline) {
  struct timespec now;
  clock_gettime(clock, &now);
  return now.tv_sec > deadline->tv_sec ||
         (now.tv_sec == deadline->tv_sec && now.tv_nsec >= deadline->tv_nsec);
}

/* A consumer of a queue nobody fills: every wait must time out, and not before its deadline. */
static int timeouts;

static void time_out_on(pthread_cond_t* cond, clockid_t clock) {
  static pthread_mutex_t empty_lock = PTHREAD_MUTEX_INITIALIZER;
  pthread_mutex_lock(&empty_lock);
  for (int i = 0; i < 3; ++i) {
    struct timespec deadline = after_ms(clock, 20);
    int rc = pthread_cond_timedwait(cond, &empty_lock, &deadline);
    if (rc != ETIMEDOUT) {
      printf("FAIL timedwait returned %d, not ETIMEDOUT\n", rc);
      ++failures;
    } else if (!reached(clock, &deadline)) {
      fail("timedwait timed out before its deadline");
    } else {
      ++timeouts;
    }
  }
  if (pthread_mutex_unlock(&empty_lock) != 0) fail("the mutex is held again after a timeout");
}

static void* lonely_consumer(void* arg) {
  (void)arg;
  static pthread_cond_t realtime = PTHREAD_COND_INITIALIZER;
  time_out_on(&realtime, CLOCK_REALTIME);
  pthread_condattr_t attr;
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  pthread_cond_t monotonic;
  pthread_cond_init(&monotonic, &attr);
  pthread_condattr_destroy(&attr);
  time_out_on(&monotonic, CLOCK_MONOTONIC);
  pthread_cond_destroy(&monotonic);
  return NULL;
}

/* kSleepers threads block in pthread_cond_wait until one broadcast releases them all. */
static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate = PTHREAD_COND_INITIALIZER;
static pthread_cond_t gate_changed = PTHREAD_COND_INITIALIZER;
static int gate_open, waiting, released;

static void* sleeper(void* arg) {
  (void)arg;
  pthread_mutex_lock(&gate_lock);
  ++waiting;
  pthread_cond_signal(&gate_changed);
  while (!gate_open) pthread_cond_wait(&gate, &gate_lock);
  ++released;
  pthread_cond_signal(&gate_changed);
  pthread_mutex_unlock(&gate_lock);
  return NULL;
}

static int os_threads(void) {
  FILE* f = fopen("/proc/self/status", "r");
  char line[256];
  int n = -1;
  while (f && fgets(line, sizeof line, f)) {
    if (strncmp(line, "Threads:", 8) == 0) n = atoi(line + 8);
  }
  if (f) fclose(f);
  return n;
}

/* wait_for() waits, with gate_lock held, until *counter reaches n or 10 s pass. */
static int wait_for(const int* counter, int n) {
  struct timespec deadline = after_ms(CLOCK_REALTIME, 10000);
  while (*counter < n) {
    if (pthread_cond_timedwait(&gate_changed, &gate_lock, &deadline) == ETIMEDOUT) break;
  }
  return *counter >= n;
}

static void broadcast_releases_all(int expect_green) {
  pthread_t t[kSleepers];
  for (int i = 0; i < kSleepers; ++i) pthread_create(&t[i], NULL, sleeper, NULL);
  pthread_mutex_lock(&gate_lock);
  if (!wait_for(&waiting, kSleepers)) fail("the sleepers did not all start");
  int threads = os_threads();
  gate_open = 1;
  pthread_cond_broadcast(&gate);
  if (!wait_for(&released, kSleepers)) {
    printf("FAIL one broadcast woke %d of %d waiters\n", released, kSleepers);
    ++failures;
  }
  pthread_mutex_unlock(&gate_lock);
  for (int i = 0; i < kSleepers; ++i) pthread_join(t[i], NULL);
  if (expect_green && threads > kGreenMaxThreads) {
    printf("FAIL %d threads blocked in pthread_cond_wait took %d OS threads\n", kSleepers, threads);
    ++failures;
  } else if (!expect_green && threads <= kSleepers) {
    printf("FAIL natively %d blocked threads should be OS threads, /proc says %d\n", kSleepers,
           threads);
    ++failures;
  }
}

int main(void) {
  const char* green = getenv("EXPECT_GREEN");
  pthread_t lonely;
  pthread_create(&lonely, NULL, lonely_consumer, NULL);
  producers_and_consumers();
  pthread_join(lonely, NULL);
  broadcast_releases_all(green && strcmp(green, "1") == 0);
  printf(
      "prodcons: %d items from %d producers consumed once each by %d consumers; %d timeouts; "
      "one broadcast released %d waiters; %s\n",
      kItems, kProducers, kConsumers, timeouts, released, failures ? "FAILED" : "all ok");
  return failures ? 1 : 0;
}
