// close() of an fd another coroutine waits on wakes that coroutine with
// -1/EBADF (poll reports POLLNVAL), whatever call it waits in. Threads have
// no equivalent (the kernel leaves a thread blocked on a closed fd), so
// these run in coroutines only, each with the hooked run's watchdog. Also:
// closing one of two dups wakes nobody, and a reused fd number starts fresh.
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/select.h>
#include <sys/uio.h>

#include <functional>
#include <string>

#include "hook_diff.hpp"

namespace coil::test::hook {
namespace {

// Waiter is one kind of blocking call on fd, returning -1/errno or more.
struct Waiter {
  const char* name;
  std::function<long(int fd)> call;
};

// expect_close_wakes() makes the fd with make(), parks a coroutine in
// waiter.call(fd), closes fd from another coroutine 60 ms later, and checks
// the waiter got -1 EBADF promptly.
void expect_close_wakes(const Waiter& waiter, const std::function<std::pair<int, int>()>& make,
                        long want = -1, int want_errno = EBADF) {
  run_hooked([&](Ctx& c) {
    auto [fd, keep] = make();
    ASSERT_GE(fd, 0) << waiter.name << ": setup failed";
    long got = 0;
    int err = 0;
    Duration took{};
    c.peer([&] {
      Stopwatch sw;
      got = waiter.call(fd);
      err = errno;
      took = sw.elapsed();
    });
    int closed = -2;
    c.peer([&] {
      Ctx::pause(kPeerDelay);
      closed = close(fd);
    });
    c.join_peers();
    EXPECT_EQ(closed, 0) << waiter.name << ": the close";
    EXPECT_EQ(got, want) << waiter.name << " after a close from another coroutine";
    if (want == -1) {
      EXPECT_EQ(errno_name(err), errno_name(want_errno)) << waiter.name;
    }
    EXPECT_GE(took, 50ms) << waiter.name << " returned before the close";
    EXPECT_LT(took, 2s) << waiter.name << " was not woken by the close";
    if (keep >= 0) close(keep);
  });
}

std::pair<int, int> socket_pair() {
  int sv[2] = {-1, -1};
  socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
  return {sv[0], sv[1]};
}

std::pair<int, int> full_socket_pair() {
  auto p = socket_pair();
  fill(p.first);
  return p;
}

std::pair<int, int> a_pipe() {
  int p[2] = {-1, -1};
  pipe2(p, O_CLOEXEC);
  return {p[0], p[1]};
}

std::pair<int, int> a_listener() {
  int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a = loopback(0);
  if (bind(l, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(l, 4) != 0) return {-1, -1};
  return {l, -1};
}

char g_buf[64];

TEST(HookClose, WakesAReaderOfEveryKind) {
  const Waiter waiters[] = {
      {"read", [](int fd) { return long(read(fd, g_buf, sizeof g_buf)); }},
      {"recv", [](int fd) { return long(recv(fd, g_buf, sizeof g_buf, 0)); }},
      {"recvfrom",
       [](int fd) { return long(recvfrom(fd, g_buf, sizeof g_buf, 0, nullptr, nullptr)); }},
      {"readv",
       [](int fd) {
         iovec iov{g_buf, sizeof g_buf};
         return long(readv(fd, &iov, 1));
       }},
      {"recvmsg",
       [](int fd) {
         iovec iov{g_buf, sizeof g_buf};
         msghdr m{};
         m.msg_iov = &iov;
         m.msg_iovlen = 1;
         return long(recvmsg(fd, &m, 0));
       }},
      {"recv MSG_WAITALL", [](int fd) { return long(recv(fd, g_buf, sizeof g_buf, MSG_WAITALL)); }},
  };
  for (const auto& w : waiters) expect_close_wakes(w, socket_pair);
  expect_close_wakes(waiters[0], a_pipe);
  expect_close_wakes({"read on an eventfd",
                      [](int fd) {
                        std::uint64_t v;
                        return long(read(fd, &v, 8));
                      }},
                     [] {
                       return std::pair{eventfd(0, EFD_CLOEXEC), -1};
                     });
}

TEST(HookClose, WakesAReaderWithAReceiveTimeout) {
  expect_close_wakes({"recv with SO_RCVTIMEO 5 s",
                      [](int fd) {
                        timeval tv{5, 0};
                        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
                        return long(recv(fd, g_buf, sizeof g_buf, 0));
                      }},
                     socket_pair);
}

TEST(HookClose, WakesAWriterAndAnAcceptor) {
  static std::vector<char> big(1 << 20, 'w');
  expect_close_wakes(
      {"write into a full socket", [](int fd) { return long(write(fd, big.data(), big.size())); }},
      full_socket_pair);
  expect_close_wakes(
      {"send into a full socket", [](int fd) { return long(send(fd, big.data(), big.size(), 0)); }},
      full_socket_pair);
  expect_close_wakes({"accept", [](int fd) { return long(accept(fd, nullptr, nullptr)); }},
                     a_listener);
  expect_close_wakes({"accept4", [](int fd) { return long(accept4(fd, nullptr, nullptr, 0)); }},
                     a_listener);
}

TEST(HookClose, WakesPollAndSelect) {
  // poll reports the closed fd as POLLNVAL; select says EBADF.
  short revents = 0;
  expect_close_wakes({"poll -1",
                      [&](int fd) {
                        pollfd p{fd, POLLIN, 0};
                        long r = poll(&p, 1, -1);
                        revents = p.revents;
                        return r;
                      }},
                     socket_pair, 1);
  EXPECT_EQ(poll_names(revents), "POLLNVAL");
  expect_close_wakes({"select without timeout",
                      [](int fd) {
                        fd_set r;
                        FD_ZERO(&r);
                        FD_SET(fd, &r);
                        return long(select(fd + 1, &r, nullptr, nullptr, nullptr));
                      }},
                     socket_pair);
}

// Closing one of two fds for the same socket wakes nobody: the waiter on the
// other fd gets the data that comes later.
TEST(HookClose, ClosingADupDoesNotWakeTheOther) {
  run_hooked([](Ctx& c) {
    auto [a, b] = socket_pair();
    int d = dup(a);
    ssize_t got = 0;
    Duration took{};
    c.peer([&] {
      Stopwatch sw;
      got = read(d, g_buf, sizeof g_buf);
      took = sw.elapsed();
    });
    c.peer([&] {
      Ctx::pause(kPeerDelay);
      EXPECT_EQ(close(a), 0);
      Ctx::pause(kPeerDelay);
      EXPECT_EQ(write(b, "late", 4), 4);
    });
    c.join_peers();
    EXPECT_EQ(got, 4) << "the read on the dup: " << errno_name(errno);
    EXPECT_GE(took, 100ms) << "the read on the dup returned before the data came";
    close(d);
    close(b);
  });
}

// A dup2 or dup3 that fails closes nothing, as the kernel's: the reader
// parked on the would-be target keeps waiting and gets the data.
TEST(HookClose, AFailingDupOntoAWaitedFdWakesNobody) {
  run_hooked([](Ctx& c) {
    auto [a, b] = socket_pair();
    ssize_t got = 0;
    int err = 0;
    c.peer([&, a = a] {
      got = read(a, g_buf, sizeof g_buf);
      err = errno;
    });
    c.peer([&, a = a, b = b] {
      Ctx::pause(kPeerDelay);
      int closed = b + 1000;  // no such fd
      errno = 0;
      EXPECT_EQ(dup2(closed, a), -1);
      EXPECT_EQ(errno_name(errno), errno_name(EBADF));
      EXPECT_EQ(dup3(closed, a, O_CLOEXEC), -1);
      EXPECT_EQ(errno_name(errno), errno_name(EBADF));
      EXPECT_EQ(dup3(b, a, 0x7fff0000), -1);  // bad flags
      EXPECT_EQ(errno_name(errno), errno_name(EINVAL));
      Ctx::pause(kPeerDelay);
      EXPECT_EQ(write(b, "kept", 4), 4);
    });
    c.join_peers();
    EXPECT_EQ(got, 4) << "the reader of the target: " << errno_name(err);
    close(a);
    close(b);
  });
}

// A number closed while waited on and reused at once by a new pipe: the new
// fd waits for its own data and gets it.
TEST(HookClose, ReusedFdNumberWaitsAfresh) {
  run_hooked([](Ctx& c) {
    auto [a, b] = socket_pair();
    long first = 0;
    c.peer([&, a = a] { first = read(a, g_buf, sizeof g_buf); });
    Ctx::pause(kPeerDelay);
    int number = a;
    EXPECT_EQ(close(a), 0);
    int p[2];
    ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
    if (p[0] != number) {  // usually the lowest free number is the one just closed
      ASSERT_EQ(dup3(p[0], number, O_CLOEXEC), number);
      close(p[0]);
      p[0] = number;
    }
    c.join_peers();
    EXPECT_EQ(first, -1);
    ssize_t got = 0;
    c.peer([&] {
      Ctx::pause(kPeerDelay);
      EXPECT_EQ(write(p[1], "new", 3), 3);
    });
    Stopwatch sw;
    got = read(p[0], g_buf, sizeof g_buf);
    EXPECT_EQ(got, 3) << errno_name(errno);
    EXPECT_GE(sw.elapsed(), 50ms) << "the reused fd reported stale readiness";
    c.join_peers();
    for (int fd : {p[0], p[1], b}) close(fd);
  });
}

}  // namespace
}  // namespace coil::test::hook
