/* thread_api: plain pthread code (no coil) exercising the thread calls coil-run emulates for
 * green threads: create/join with results, pthread_exit, detach (attr and call), EDEADLK and
 * EINVAL and EBUSY from joins, keys with destructors, pthread_once with a routine that blocks,
 * pthread_once whose routine exits, detach and tryjoin during a join, self/equal, getattr_np's
 * stack (asked sizes, before the thread ran, after it ended), names, and main() ending by
 * pthread_exit() while a detached thread still runs. It prints one line per check;
 * tests/preload_threads_test.sh compares the output natively and under libcoil_preload.so. Exit
 * status 0 only if every check held.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int failures;

static void check(const char* name, int ok) {
  printf("%s %s\n", ok ? "ok" : "FAIL", name);
  if (!ok) ++failures;
}

static void* twice(void* arg) { return (void*)(2 * (intptr_t)arg); }

static void* exits_early(void* arg) {
  (void)arg;
  pthread_exit((void*)77);
  return NULL;
}

static pthread_key_t key;
static int destroyed;
static void destroy(void* value) { destroyed += (int)(intptr_t)value; }

static void* uses_key(void* arg) {
  pthread_setspecific(key, arg);
  usleep(1000); /* blocks: another thread runs and sets its own value meanwhile */
  return pthread_getspecific(key);
}

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int once_runs;
static void init_once(void) {
  usleep(20 * 1000);
  ++once_runs;
}
static void* calls_once(void* arg) {
  pthread_once(&once, init_once);
  (void)arg;
  return (void*)(intptr_t)(once_runs == 1);
}

static void* sleeper(void* arg) {
  usleep((useconds_t)(intptr_t)arg);
  return NULL;
}

static void* last_one(void* arg) {
  (void)arg;
  usleep(50 * 1000);
  printf("ok detached thread outlived main's pthread_exit\n");
  fflush(stdout);
  return NULL;
}

static void results_and_exit(void) {
  pthread_t t[4];
  for (intptr_t i = 0; i < 4; ++i) pthread_create(&t[i], NULL, twice, (void*)i);
  int all = 1;
  for (intptr_t i = 0; i < 4; ++i) {
    void* r = NULL;
    all &= pthread_join(t[i], &r) == 0 && r == (void*)(2 * i);
  }
  check("join returns each start routine's result", all);
  pthread_t e;
  void* r = NULL;
  pthread_create(&e, NULL, exits_early, NULL);
  check("pthread_exit's value reaches pthread_join", pthread_join(e, &r) == 0 && r == (void*)77);
}

static void join_errors(void) {
  check("joining oneself is EDEADLK", pthread_join(pthread_self(), NULL) == EDEADLK);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_t d;
  pthread_create(&d, &attr, sleeper, (void*)(intptr_t)20000);
  check("joining a detached thread is EINVAL", pthread_join(d, NULL) == EINVAL);
  pthread_t s;
  pthread_create(&s, NULL, sleeper, (void*)(intptr_t)20000);
  check("tryjoin of a running thread is EBUSY", pthread_tryjoin_np(s, NULL) == EBUSY);
  check("pthread_detach of a running thread", pthread_detach(s) == 0);
  usleep(60 * 1000);
}

static void keys(void) {
  pthread_key_create(&key, destroy);
  pthread_t t[3];
  for (intptr_t i = 0; i < 3; ++i) pthread_create(&t[i], NULL, uses_key, (void*)(i + 1));
  int own = 1;
  for (intptr_t i = 0; i < 3; ++i) {
    void* r = NULL;
    pthread_join(t[i], &r);
    own &= r == (void*)(i + 1);
  }
  check("each thread sees its own key value", own);
  check("key destructors ran at thread exit", destroyed == 1 + 2 + 3);
  check("main's own key value is unset", pthread_getspecific(key) == NULL);
}

static void once_and_identity(void) {
  pthread_t t[5];
  for (int i = 0; i < 5; ++i) pthread_create(&t[i], NULL, calls_once, NULL);
  int all = 1;
  for (int i = 0; i < 5; ++i) {
    void* r = NULL;
    pthread_join(t[i], &r);
    all &= r == (void*)1;
  }
  check("pthread_once ran once and every caller waited for it", all && once_runs == 1);
  check("pthread_equal(self, self)", pthread_equal(pthread_self(), pthread_self()));
  pthread_setname_np(pthread_self(), "probe-main");
  char name[16] = "";
  pthread_getname_np(pthread_self(), name, sizeof name);
  check("setname/getname", strcmp(name, "probe-main") == 0);
}

static void* reports_stack(void* arg) {
  (void)arg;
  pthread_attr_t attr;
  size_t size = 0;
  void* lo = NULL;
  int here = 0;
  if (pthread_getattr_np(pthread_self(), &attr) != 0) return NULL;
  pthread_attr_getstack(&attr, &lo, &size);
  pthread_attr_destroy(&attr);
  int inside = (char*)&here >= (char*)lo && (char*)&here < (char*)lo + size;
  return (void*)(intptr_t)(inside && size >= 200 * 1024);
}

static void* reports_big_stack(void* arg) {
  (void)arg;
  pthread_attr_t attr;
  size_t size = 0;
  if (pthread_getattr_np(pthread_self(), &attr) != 0) return NULL;
  pthread_attr_getstacksize(&attr, &size);
  pthread_attr_destroy(&attr);
  return (void*)(intptr_t)(size >= 8 * 1024 * 1024 - 64 * 1024);
}

/* run_with_stack() runs fn on a thread with a stack of size bytes and returns its result. */
static void* run_with_stack(void* (*fn)(void*), size_t size) {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, size);
  pthread_t t;
  void* r = NULL;
  pthread_create(&t, &attr, fn, NULL);
  pthread_attr_destroy(&attr);
  pthread_join(t, &r);
  return r;
}

static void stack_attr(void) {
  check("getattr_np: the stack holds the thread's frames and has the asked size",
        run_with_stack(reports_stack, 256 * 1024) == (void*)1);
  /* 8 MiB is glibc's default size too: asked for explicitly, it is still what the thread gets. */
  check("getattr_np: an explicit 8 MiB stack",
        run_with_stack(reports_big_stack, 8 << 20) == (void*)1);
  /* Before the thread has run, and after it ended but before the join. */
  pthread_attr_t attr, got;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 256 * 1024);
  pthread_t t;
  pthread_create(&t, &attr, sleeper, (void*)(intptr_t)10000);
  pthread_attr_destroy(&attr);
  size_t size = 0;
  int rc = pthread_getattr_np(t, &got);
  if (rc == 0) {
    pthread_attr_getstacksize(&got, &size);
    pthread_attr_destroy(&got);
  }
  check("getattr_np of a thread just created", rc == 0 && size >= 200 * 1024);
  usleep(30 * 1000);
  rc = pthread_getattr_np(t, &got);
  if (rc == 0) pthread_attr_destroy(&got);
  check("getattr_np of a thread ended but not joined", rc == 0);
  pthread_join(t, NULL);
}

/* A once routine that leaves by pthread_exit() counts as never run: the next caller runs it. */
static pthread_once_t exiting_once = PTHREAD_ONCE_INIT;
static int exiting_runs;
static void exiting_init(void) {
  ++exiting_runs;
  if (exiting_runs == 1) pthread_exit(NULL);
}
static void* calls_exiting_once(void* arg) {
  (void)arg;
  pthread_once(&exiting_once, exiting_init);
  return NULL;
}

static void once_after_exit(void) {
  pthread_t t;
  pthread_create(&t, NULL, calls_exiting_once, NULL);
  pthread_join(t, NULL);
  pthread_create(&t, NULL, calls_exiting_once, NULL);
  pthread_join(t, NULL);
  pthread_once(&exiting_once, exiting_init);
  check("pthread_once: a routine that called pthread_exit runs again, then never",
        exiting_runs == 2);
}

/* Detach and tryjoin while another thread joins: glibc lets the joiner collect the thread. */
static void* joins(void* t) { return (void*)(intptr_t)pthread_join(*(pthread_t*)t, NULL); }

static void join_races(void) {
  pthread_t target, joiner;
  pthread_create(&target, NULL, sleeper, (void*)(intptr_t)30000);
  pthread_create(&joiner, NULL, joins, &target);
  usleep(5000);
  check("tryjoin while another thread joins is EBUSY", pthread_tryjoin_np(target, NULL) == EBUSY);
  check("detach while another thread joins is 0", pthread_detach(target) == 0);
  void* r = (void*)-1;
  pthread_join(joiner, &r);
  check("... and the joiner still collects the thread", r == (void*)0);
}

int main(void) {
  results_and_exit();
  join_errors();
  keys();
  once_and_identity();
  stack_attr();
  once_after_exit();
  join_races();
  printf("%d failure(s)\n", failures);
  fflush(stdout);
  if (failures) return 1;
  pthread_t t;
  pthread_create(&t, NULL, last_one, NULL);
  pthread_detach(t);
  pthread_exit(NULL);
}
