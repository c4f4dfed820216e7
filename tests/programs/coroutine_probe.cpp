// coroutine_probe: holds named coroutines in known states on two workers for
// tests/gdb_coroutines.sh to list and backtrace with tools/coil-gdb.py.
//
// Worker 0: pipe-reader and pipe-reader-2 park in read() on one pipe (the
// second one's wait goes to the wait tree: the fd's reader slot is taken),
// sleeper sleeps for an hour, and reporter, which runs only once those three
// have parked, then blocks its thread in an unhooked syscall (running).
// Worker 1: yielder has yielded (ready, started), poller waits in poll() on a
// second pipe with an hour's timeout, blocker blocks its thread like
// reporter, and unstarted was spawned by blocker and never ran.
//
// Prints "coroutine_probe ready pid=P read_fd=R poll_fd=Q" once all are in
// place, then waits; it exits by itself after SECONDS (the first argument;
// default 60).
#include <poll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include <coil/runtime.hpp>
#include <coil/scheduler.hpp>

namespace {

std::atomic<int> settled{0};  // reporter and blocker, once in place
int read_pipe[2];
int poll_pipe[2];

// block_thread() blocks the worker's thread in the kernel, past coil's
// hooks: the calling coroutine stays the running one.
[[noreturn, gnu::noinline]] void block_thread() {
  settled.fetch_add(1);
  for (;;) ::syscall(SYS_pause);
}

[[gnu::noinline]] void wait_for_data(int fd) {
  char byte;
  if (::read(fd, &byte, 1) >= 0) std::fprintf(stderr, "coroutine_probe: read returned\n");
}

[[gnu::noinline]] void poll_for_data(int fd) {
  pollfd p{.fd = fd, .events = POLLIN, .revents = 0};
  ::poll(&p, 1, 3600 * 1000);
}

[[gnu::noinline]] void spin_in_place() {
  for (;;) coil::yield();
}

void set_up_worker0() {
  coil::go([] { wait_for_data(read_pipe[0]); }, {.name = "pipe-reader"});
  coil::go([] { wait_for_data(read_pipe[0]); }, {.name = "pipe-reader-2"});
  coil::go([] { coil::sleep_for(std::chrono::hours(1)); }, {.name = "sleeper"});
  coil::go([] { block_thread(); }, {.name = "reporter"});
}

void set_up_worker1() {
  coil::go([] { spin_in_place(); }, {.name = "yielder"});
  coil::go([] { poll_for_data(poll_pipe[0]); }, {.name = "poller"});
  coil::go(
      [] {
        coil::go([] {}, {.name = "unstarted"});
        block_thread();
      },
      {.name = "blocker"});
}

}  // namespace

int main(int argc, char** argv) {
  int lifetime = argc > 1 ? std::atoi(argv[1]) : 60;
  if (::pipe(read_pipe) != 0 || ::pipe(poll_pipe) != 0) return 1;
  coil::Runtime rt({.workers = 2});
  rt.go_on(0, set_up_worker0, {.name = "setup-0"});
  rt.go_on(1, set_up_worker1, {.name = "setup-1"});
  auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (settled.load() < 2) {
    if (std::chrono::steady_clock::now() > give_up) {
      std::fprintf(stderr, "coroutine_probe: the coroutines did not settle\n");
      ::_exit(1);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  std::printf("coroutine_probe ready pid=%d read_fd=%d poll_fd=%d\n", ::getpid(), read_pipe[0],
              poll_pipe[0]);
  std::fflush(stdout);
  std::this_thread::sleep_for(std::chrono::seconds(lifetime));
  ::_exit(0);  // the workers never finish: leave without unwinding them
}
