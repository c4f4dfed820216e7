/* startup_probe: a plain C program (no coil header or library) that shows how it was started.
 * tests/preload_startup_test.sh runs each mode natively and under libcoil_preload.so and compares.
 *
 *   startup_probe stack        prints whether main()'s frame is on the process's [stack] mapping
 *   startup_probe return N     returns N from main()
 *   startup_probe exit N       calls exit(N) from a function main() calls, after an atexit handler
 *                              was registered (the handler prints)
 *   startup_probe args A B...  prints argc, argv and $STARTUP_PROBE from the environment
 *   startup_probe early        prints what a constructor read from a pipe before main() ran
 *   startup_probe timeout      a read on a socketpair under SO_RCVTIMEO 100 ms: -1/EAGAIN, and
 *                              whether it waited at least 90 ms
 *   startup_probe sleep        usleep(50 ms) and nanosleep(20 ms): prints whether each waited
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static char early[64] = "constructor did not run";

/* A constructor's I/O runs before main() and before any coroutine: it must pass straight through.
 */
__attribute__((constructor)) static void read_before_main(void) {
  int p[2];
  if (pipe(p) != 0) return;
  if (write(p[1], "pipe read before main", 21) == 21) {
    ssize_t n = read(p[0], early, sizeof early - 1);
    early[n > 0 ? n : 0] = '\0';
  }
  close(p[0]);
  close(p[1]);
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* on_process_stack() is 1 if addr lies in the mapping /proc/self/maps calls [stack]. */
static int on_process_stack(uintptr_t addr) {
  FILE* maps = fopen("/proc/self/maps", "r");
  char line[512];
  int found = 0;
  while (maps && fgets(line, sizeof line, maps)) {
    unsigned long lo, hi;
    if (strstr(line, "[stack]") && sscanf(line, "%lx-%lx", &lo, &hi) == 2)
      found = addr >= lo && addr < hi;
  }
  if (maps) fclose(maps);
  return found;
}

static void say_bye(void) { printf("atexit handler ran\n"); }

static void leave(int status) {
  atexit(say_bye);
  printf("exiting with %d\n", status);
  exit(status);
}

static int timeout_read(void) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) return perror("socketpair"), 1;
  struct timeval tv = {.tv_sec = 0, .tv_usec = 100 * 1000};
  if (setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0)
    return perror("setsockopt"), 1;
  char c;
  double t0 = now_ms();
  ssize_t n = read(sv[0], &c, 1);
  int err = errno;
  printf("read returned %zd errno %s, waited >= 90 ms: %s\n", n, n < 0 ? strerror(err) : "-",
         now_ms() - t0 >= 90 ? "yes" : "no");
  return 0;
}

static int sleeps(void) {
  double t0 = now_ms();
  usleep(50 * 1000);
  double t1 = now_ms();
  struct timespec ts = {.tv_sec = 0, .tv_nsec = 20 * 1000 * 1000};
  nanosleep(&ts, NULL);
  double t2 = now_ms();
  printf("usleep waited >= 45 ms: %s; nanosleep waited >= 18 ms: %s\n",
         t1 - t0 >= 45 ? "yes" : "no", t2 - t1 >= 18 ? "yes" : "no");
  return 0;
}

int main(int argc, char** argv) {
  if (argc < 2) return fprintf(stderr, "usage: startup_probe MODE [ARGS]\n"), 64;
  const char* mode = argv[1];
  if (!strcmp(mode, "stack")) {
    int here = 0;
    printf("main on the process stack: %s\n", on_process_stack((uintptr_t)&here) ? "yes" : "no");
    return 0;
  }
  if (!strcmp(mode, "return") && argc == 3) return atoi(argv[2]);
  if (!strcmp(mode, "exit") && argc == 3) leave(atoi(argv[2]));
  if (!strcmp(mode, "args")) {
    printf("argc %d:", argc);
    for (int i = 0; i < argc; ++i) printf(" [%s]", argv[i] == argv[0] ? "probe" : argv[i]);
    const char* env = getenv("STARTUP_PROBE");
    printf("; STARTUP_PROBE=%s\n", env ? env : "(unset)");
    return 0;
  }
  if (!strcmp(mode, "early")) return printf("%s\n", early), 0;
  if (!strcmp(mode, "timeout")) return timeout_read();
  if (!strcmp(mode, "sleep")) return sleeps();
  fprintf(stderr, "startup_probe: unknown mode %s\n", mode);
  return 64;
}
