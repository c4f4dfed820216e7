/* fork_probe: fork() in a threaded program leaves the child with the forking thread alone, which
 * can exec, block, and end the child. Plain C, no coil header or library: the test runs it
 * natively and under libcoil_preload.so (where the threads are green threads of one scheduler)
 * and wants the same "ok" lines and status 0 from both.
 *
 * Each check runs a ticker thread that counts every millisecond; in the child, whose only thread
 * is the one that forked, the count must stand still.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static atomic_long ticks;
static int failures;

static void check(int ok, const char* what) {
  printf("%s: %s\n", ok ? "ok" : "FAIL", what);
  fflush(stdout);
  if (!ok) ++failures;
}

static void* ticker(void* arg) {
  (void)arg;
  for (;;) {
    usleep(1000);
    atomic_fetch_add(&ticks, 1);
  }
  return NULL;
}

static void start_ticker(void) {
  pthread_t t;
  if (pthread_create(&t, NULL, ticker, NULL) != 0) abort();
  pthread_detach(t);
  long start = atomic_load(&ticks);
  while (atomic_load(&ticks) < start + 3) usleep(1000);
}

/* ticker_stopped() is true if the ticker does not tick for 30 ms: in a child, it is gone. */
static int ticker_stopped(void) {
  long before = atomic_load(&ticks);
  usleep(30000);
  return atomic_load(&ticks) == before;
}

static int wait_status(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Fork in a thread other than main. The child's forking thread parks in a read that the parent
 * answers, reports through a pipe, and returns from its start routine: the last thread's end,
 * which ends the child with status 0. main(), blocked in pthread_join at the fork, must not run
 * in the child. */
struct Pipes {
  int go[2];     /* parent -> child: one byte */
  int report[2]; /* child -> parent: its findings */
  pid_t child;
};

static void* forker(void* arg) {
  struct Pipes* p = arg;
  fflush(stdout);
  p->child = fork();
  if (p->child != 0) return NULL;
  char c = 0, line[64];
  int stopped = ticker_stopped();
  ssize_t got = read(p->go[0], &c, 1);
  int n = snprintf(line, sizeof line, "stopped=%d read=%zd:%c\n", stopped, got, c);
  if (write(p->report[1], line, (size_t)n) != n) _exit(9);
  return NULL;
}

static void fork_in_thread(void) {
  struct Pipes p;
  if (pipe(p.go) != 0 || pipe(p.report) != 0) abort();
  pthread_t t;
  if (pthread_create(&t, NULL, forker, &p) != 0 || pthread_join(t, NULL) != 0) abort();
  check(p.child > 0, "fork() in a thread");
  close(p.report[1]);
  usleep(50000); /* the child's thread is in its read by now */
  check(write(p.go[1], "x", 1) == 1, "the parent writes to the child's pipe");
  char report[128] = {0};
  size_t have = 0;
  ssize_t n;
  while ((n = read(p.report[0], report + have, sizeof report - 1 - have)) > 0) have += (size_t)n;
  check(strcmp(report, "stopped=1 read=1:x\n") == 0,
        "the child: only the forking thread runs, and its blocking read is woken");
  check(wait_status(p.child) == 0, "the child ends with status 0 when that thread returns");
  close(p.go[0]);
  close(p.go[1]);
  close(p.report[0]);
}

/* Fork in main(): the child's main() is alone; its exit status is the parent's to read. */
static void fork_in_main(void) {
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) exit(ticker_stopped() ? 5 : 6);
  check(pid > 0 && wait_status(pid) == 5, "fork() in main(): the child runs main() alone");
}

/* Fork and exec in a thread, as popen-by-hand does. */
static void* exec_forker(void* arg) {
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    execlp("sh", "sh", "-c", "exit 7", (char*)NULL);
    _exit(127);
  }
  *(int*)arg = pid > 0 ? wait_status(pid) : -1;
  return NULL;
}

static void fork_exec_in_thread(void) {
  int status = -1;
  pthread_t t;
  if (pthread_create(&t, NULL, exec_forker, &status) != 0 || pthread_join(t, NULL) != 0) abort();
  check(status == 7, "fork() and exec in a thread: the program's status");
}

/* Fork while another thread runs a pthread_once routine: the child, which lacks that thread,
 * runs the routine itself instead of waiting for it for good. */
static pthread_once_t slow_once = PTHREAD_ONCE_INIT;
static atomic_int once_started;
static void slow_init(void) {
  atomic_store(&once_started, 1);
  usleep(100 * 1000);
}
static void* calls_slow_once(void* arg) {
  (void)arg;
  pthread_once(&slow_once, slow_init);
  return NULL;
}

static void fork_during_once(void) {
  pthread_t t;
  if (pthread_create(&t, NULL, calls_slow_once, NULL) != 0) abort();
  while (!atomic_load(&once_started)) usleep(1000);
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    alarm(5); /* a child that waits for the routine forever ends by SIGALRM */
    pthread_once(&slow_once, slow_init);
    _exit(3);
  }
  check(pid > 0 && wait_status(pid) == 3, "fork() during a pthread_once: the child runs it");
  pthread_join(t, NULL);
}

int main(void) {
  start_ticker();
  fork_during_once();
  fork_in_thread();
  fork_in_main();
  fork_exec_in_thread();
  check(!ticker_stopped(), "the parent's ticker still runs");
  return failures == 0 ? 0 : 1;
}
