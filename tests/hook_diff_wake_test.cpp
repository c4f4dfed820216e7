// Differential tests of what else ends a waiting call, besides data and
// timeouts: shutdown() of the socket from elsewhere (the kernel wakes a
// blocked recv with 0 and a blocked accept with EINVAL, for threads too),
// and a signal caught by a handler (EINTR, or a restarted call under
// SA_RESTART, with the exceptions signal(7) lists: poll, select, epoll_wait,
// sleeps and socket calls with a timeout always say EINTR). Each scenario
// runs on a plain thread and as a coroutine (hook_diff.hpp).
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/un.h>

#include <cstddef>
#include <cstdio>

#include <atomic>
#include <string>
#include <thread>

#include "hook_diff.hpp"

namespace coil::test::hook {
namespace {

TEST(HookDiffWake, ShutdownWakesABlockedReceive) {
  expect_same([](Ctx& c) {
    for (bool tcp : {true, false}) {
      for (int how : {SHUT_RD, SHUT_RDWR}) {
        TcpConn t;
        std::pair<int, int> u{-1, -1};
        if (tcp) {
          t = tcp_conn(c);
        } else {
          u = unix_pair(c, SOCK_STREAM);
        }
        int s = tcp ? t.server : u.first;
        c.peer([&] {
          Ctx::pause(kPeerDelay);
          if (shutdown(s, how) != 0) ADD_FAILURE() << errno_name(errno);
        });
        char buf[8] = {};
        c.timed(std::string(tcp ? "tcp" : "unix") + " recv woken by shutdown(" +
                    (how == SHUT_RD ? "SHUT_RD" : "SHUT_RDWR") + ") elsewhere",
                kWaitedLo, kWaitedHi, [&] { return recv(s, buf, sizeof buf, 0); });
        c.join_peers();
        if (tcp) {
          t.close_both();
        } else {
          close(u.first);
          close(u.second);
        }
      }
    }
  });
}

TEST(HookDiffWake, ShutdownOfAListenerWakesAccept) {
  expect_same([](Ctx& c) {
    int l = tcp_listener(c);
    c.peer([&] {
      Ctx::pause(kPeerDelay);
      if (shutdown(l, SHUT_RD) != 0) ADD_FAILURE() << errno_name(errno);
    });
    c.timed_fd("accept woken by shutdown(SHUT_RD) of the listener", kWaitedLo, kWaitedHi,
               [&] { return accept(l, nullptr, nullptr); });
    c.join_peers();
    c.timed_fd("accept after that", kAtOnceLo, kAtOnceHi,
               [&] { return accept(l, nullptr, nullptr); });
    close(l);
  });
}

std::atomic<int> g_caught{0};

// Handler installs a SIGUSR1 handler, with or without SA_RESTART, for the
// life of a test.
class Handler {
 public:
  explicit Handler(bool restart) {
    struct sigaction act {};
    act.sa_handler = [](int) { g_caught.fetch_add(1); };
    act.sa_flags = restart ? SA_RESTART : 0;
    sigemptyset(&act.sa_mask);
    sigaction(SIGUSR1, &act, &old_);
  }
  ~Handler() { sigaction(SIGUSR1, &old_, nullptr); }
  Handler(const Handler&) = delete;
  Handler& operator=(const Handler&) = delete;

 private:
  struct sigaction old_ {};
};

// interrupted() runs call on this thread while another thread sends it
// SIGUSR1 after 60 ms (and runs later() after 150 ms, to end a restarted
// call), and records the result, the time and the handler's runs.
template <class Call>
void interrupted(Ctx& c, std::string_view label, Duration lo, Duration hi, Call call,
                 std::function<void()> later = {}) {
  pthread_t target = pthread_self();
  g_caught = 0;
  std::thread kicker([&] {
    std::this_thread::sleep_for(kPeerDelay);
    pthread_kill(target, SIGUSR1);
    std::this_thread::sleep_for(90ms);
    if (later) later();
  });
  c.timed(label, lo, hi, call);
  c.val(std::string(label) + ": handler ran", g_caught.load());
  kicker.join();
}

// unix_connect_interruption(): connect to a unix listener whose backlog is
// full waits for room, which no fd event announces (coil retries it with
// pauses); a signal ends it, or it restarts and takes the room an accept
// makes later.
void unix_connect_interruption(Ctx& c) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  int n = std::snprintf(addr.sun_path + 1, sizeof addr.sun_path - 1, "coil-wake-%d-%d", getpid(),
                        c.hooked() ? 1 : 0);
  auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + n);
  auto* sa = reinterpret_cast<sockaddr*>(&addr);
  int l = c.fd("unix socket", socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  c.ret("bind", bind(l, sa, len));
  c.ret("listen with backlog 0", listen(l, 0));
  int first = c.fd("socket", socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  c.ret("the connect that fills the backlog", connect(first, sa, len));
  int second = c.fd("socket", socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  interrupted(
      c, "connect to a full unix backlog", kWaitedLo, 2s, [&] { return connect(second, sa, len); },
      [&] {
        int fd = accept(l, nullptr, nullptr);
        if (fd < 0) ADD_FAILURE() << errno_name(errno);
        close(fd);
      });
  for (int fd : {first, second, l}) close(fd);
}

// partial_write_interruption(): a blocking write of 8 MiB to a unix stream
// socket nobody reads takes what fits, then waits for room; a signal then
// ends it with the count written, SA_RESTART or not (the kernel returns the
// count instead of restarting).
void partial_write_interruption(Ctx& c) {
  auto [a, b] = unix_pair(c, SOCK_STREAM);
  std::string big(8 << 20, 'w');
  interrupted(c, "write of 8 MiB that fills the socket (1: partial)", kWaitedLo, 2s, [&, a = a] {
    ssize_t n = write(a, big.data(), big.size());
    return n > 0 && n < static_cast<ssize_t>(big.size()) ? 1 : n;
  });
  close(a);
  close(b);
}

// partial_waitall_interruption(): recv(MSG_WAITALL) of 8 bytes with 1 there
// takes it and waits for the rest; a signal then ends it with the 1,
// SA_RESTART or not.
void partial_waitall_interruption(Ctx& c) {
  auto [a, b] = unix_pair(c, SOCK_STREAM);
  c.ret("send 1 byte", send(b, "x", 1, 0));
  char buf[8] = {};
  interrupted(c, "recv MSG_WAITALL of 8 with 1 there", kWaitedLo, 2s,
              [&, a = a] { return recv(a, buf, sizeof buf, MSG_WAITALL); });
  close(a);
  close(b);
}

// Each waiting call, interrupted by a caught signal.
void interruptions(Ctx& c) {
  int p[2];
  c.ret("pipe", pipe(p));
  auto write_one = [&] {
    if (write(p[1], "w", 1) != 1) ADD_FAILURE();
  };
  char buf[8] = {};
  // leftover() records what a late write left behind, and takes it.
  auto leftover = [&](int fd) {
    pollfd x{fd, POLLIN, 0};
    long n = poll(&x, 1, 0) == 1 ? long(read(fd, buf, sizeof buf)) : 0;
    c.val("left over", n);
  };
  // Each call ends at the signal (EINTR) or, restarted, at the write 150 ms in.
  interrupted(
      c, "read on a pipe", kWaitedLo, 2s, [&] { return read(p[0], buf, sizeof buf); }, write_one);
  leftover(p[0]);
  pollfd pf{p[0], POLLIN, 0};
  interrupted(
      c, "poll -1", kWaitedLo, 2s, [&] { return poll(&pf, 1, -1); }, write_one);
  leftover(p[0]);
  fd_set r;
  FD_ZERO(&r);
  FD_SET(p[0], &r);
  interrupted(
      c, "select", kWaitedLo, 2s, [&] { return select(p[0] + 1, &r, nullptr, nullptr, nullptr); },
      write_one);
  leftover(p[0]);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev);
  interrupted(
      c, "epoll_wait", kWaitedLo, 2s, [&] { return epoll_wait(ep, &ev, 1, -1); }, write_one);
  leftover(p[0]);
  close(ep);
  timespec req{0, 400000000}, rem{};
  interrupted(c, "nanosleep 400 ms", kWaitedLo, 2s, [&] { return nanosleep(&req, &rem); });
  auto rem_ms = rem.tv_sec * 1000 + rem.tv_nsec / 1000000;
  c.check("nanosleep's rem is what was left (100-400 ms)", rem_ms > 100 && rem_ms < 400);
  interrupted(c, "clock_nanosleep 400 ms (returns the error number)", kWaitedLo, 2s,
              [&] { return clock_nanosleep(CLOCK_MONOTONIC, 0, &req, nullptr); });
  interrupted(c, "sleep 2 (returns the seconds left)", kWaitedLo, 3s,
              [&] { return static_cast<int>(sleep(2)); });
  auto [a, b] = unix_pair(c, SOCK_STREAM);
  auto send_one = [&, b = b] {
    if (send(b, "s", 1, 0) != 1) ADD_FAILURE();
  };
  interrupted(
      c, "recv", kWaitedLo, 2s, [&, a = a] { return recv(a, buf, sizeof buf, 0); }, send_one);
  leftover(a);
  set_timeout(c, a, SO_RCVTIMEO, 2s);
  interrupted(
      c, "recv with SO_RCVTIMEO 2 s", kWaitedLo, 3s,
      [&, a = a] { return recv(a, buf, sizeof buf, 0); }, send_one);
  leftover(a);
  int l = tcp_listener(c);
  int client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  interrupted(
      c, "accept", kWaitedLo, 2s,
      [&] {
        int fd = accept(l, nullptr, nullptr);
        if (fd >= 0) close(fd);
        return fd >= 0 ? 0 : fd;
      },
      [&] {
        if (connect_to(client, port_of(l)) != 0) ADD_FAILURE();
      });
  for (int fd : {p[0], p[1], a, b, l, client}) close(fd);
  unix_connect_interruption(c);
  partial_write_interruption(c);
  partial_waitall_interruption(c);
}

TEST(HookDiffWake, CaughtSignalInterruptsWaitingCalls) {
  Handler handler(false);
  expect_same([](Ctx& c) { interruptions(c); });
}

TEST(HookDiffWake, CaughtSignalWithSaRestart) {
  Handler handler(true);
  expect_same([](Ctx& c) { interruptions(c); });
}

}  // namespace
}  // namespace coil::test::hook
