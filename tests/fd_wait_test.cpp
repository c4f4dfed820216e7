// Waiting for fd readiness: timeouts, level-triggered semantics on top of
// edge-triggered epoll, a reader and a writer on one socket, forget_fd().
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <utility>
#include <vector>

#include "coil/detail/fd_wait.hpp"
#include "coil/scheduler.hpp"
#include "test_support.hpp"

namespace coil {
namespace {

using namespace std::chrono_literals;
using FdWait = test::SchedulerTest;

struct Pipe {
  int r = -1, w = -1;
  Pipe() {
    int fds[2];
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) throw std::runtime_error("pipe2");
    r = fds[0], w = fds[1];
  }
  ~Pipe() {
    if (r >= 0) close(r);
    if (w >= 0) close(w);
  }
};

struct SocketPair {
  int a = -1, b = -1;
  SocketPair() {
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) {
      throw std::runtime_error("socketpair");
    }
    a = fds[0], b = fds[1];
  }
  ~SocketPair() {
    close(a);
    close(b);
  }
};

TEST_F(FdWait, ReadableTimeoutOnAnEmptyPipeWithInjectedClock) {
  ManualClock clock;
  Scheduler& s = scheduler({.clock = &clock});
  Pipe p;
  WaitResult got = WaitResult::kReady;
  s.spawn([&] { got = wait_readable(p.r, 5s); }).detach();
  s.spawn([&] {
     clock.advance(4s);
     yield();
     clock.advance(1s);
   }).detach();
  s.run();
  EXPECT_EQ(got, WaitResult::kTimeout);
}

TEST_F(FdWait, ReadableTimeoutOnAnEmptyPipeRealClock) {
  Scheduler& s = scheduler();
  Pipe p;
  s.spawn([&] {
     auto start = std::chrono::steady_clock::now();
     EXPECT_EQ(wait_readable(p.r, 20ms), WaitResult::kTimeout);
     EXPECT_GE(std::chrono::steady_clock::now() - start, 20ms);
   }).detach();
  s.run();
}

TEST_F(FdWait, WakesWhenDataArrives) {
  Scheduler& s = scheduler();
  Pipe p;
  std::string got;
  s.spawn([&] {
     EXPECT_EQ(wait_readable(p.r), WaitResult::kReady);
     char buf[16];
     ssize_t n = read(p.r, buf, sizeof buf);
     got.assign(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
   }).detach();
  s.spawn([&] {
     sleep_for(2ms);
     ASSERT_EQ(write(p.w, "hi", 2), 2);
   }).detach();
  s.run();
  EXPECT_EQ(got, "hi");
}

// Level-triggered: unread data keeps the fd readable; after draining, a
// remembered (stale) edge must not make the next wait return early.
TEST_F(FdWait, LevelTriggeredOverEdgeTriggeredEpoll) {
  Scheduler& s = scheduler();
  Pipe p;
  s.spawn([&] {
     ASSERT_EQ(write(p.w, "x", 1), 1);
     EXPECT_EQ(wait_readable(p.r, 1s), WaitResult::kReady);
     EXPECT_EQ(wait_readable(p.r, 1s), WaitResult::kReady) << "unread data must stay readable";
     char c;
     ASSERT_EQ(read(p.r, &c, 1), 1);
     EXPECT_EQ(wait_readable(p.r, 10ms), WaitResult::kTimeout) << "drained pipe reported ready";
     ASSERT_EQ(write(p.w, "y", 1), 1);
     EXPECT_EQ(wait_readable(p.r, 1s), WaitResult::kReady);
   }).detach();
  s.run();
}

// A reader and a writer park on the same socket at once; each is woken by
// its own kind of readiness.
TEST_F(FdWait, ReaderAndWriterOnOneSocket) {
  Scheduler& s = scheduler();
  SocketPair sp;
  // Fill a's send buffer so that a is not writable.
  std::vector<char> chunk(65536, 'z');
  std::size_t filled = 0;
  for (;;) {
    ssize_t n = write(sp.a, chunk.data(), chunk.size());
    if (n < 0) break;
    filled += static_cast<std::size_t>(n);
  }
  ASSERT_EQ(errno, EAGAIN);
  std::vector<std::string> events;
  s.spawn([&] {
     EXPECT_EQ(wait_readable(sp.a, 5s), WaitResult::kReady);
     events.push_back("a readable");
   }).detach();
  s.spawn([&] {
     EXPECT_EQ(wait_writable(sp.a, 5s), WaitResult::kReady);
     events.push_back("a writable");
   }).detach();
  s.spawn([&] {
     yield();  // both are parked now
     ASSERT_EQ(write(sp.b, "ping", 4), 4);
     sleep_for(5ms);
     EXPECT_EQ(events, std::vector<std::string>{"a readable"});
     std::size_t drained = 0;
     while (drained < filled) {
       ssize_t n = read(sp.b, chunk.data(), chunk.size());
       if (n <= 0) {
         EXPECT_EQ(wait_readable(sp.b, 1s), WaitResult::kReady);
         continue;
       }
       drained += static_cast<std::size_t>(n);
     }
   }).detach();
  s.run();
  EXPECT_EQ(events, (std::vector<std::string>{"a readable", "a writable"}));
}

TEST_F(FdWait, SeveralReadersOnOneFdAreAllWoken) {
  Scheduler& s = scheduler();
  Pipe p;
  int woken = 0;
  for (int i = 0; i < 3; ++i) {
    s.spawn([&] {
       EXPECT_EQ(wait_readable(p.r, 5s), WaitResult::kReady);
       ++woken;
     }).detach();
  }
  s.spawn([&] {
     yield();
     ASSERT_EQ(write(p.w, "!", 1), 1);
   }).detach();
  s.run();
  EXPECT_EQ(woken, 3);
}

TEST_F(FdWait, ForgetWakesWaitersWithEbadf) {
  Scheduler& s = scheduler();
  Pipe p;
  int err = 0;
  WaitResult got = WaitResult::kReady;
  s.spawn([&] {
     got = wait_readable(p.r, 5s);
     err = errno;
   }).detach();
  s.spawn([&] {
     yield();
     forget_fd(p.r);
     close(p.r);
     p.r = -1;
   }).detach();
  s.run();
  EXPECT_EQ(got, WaitResult::kError);
  EXPECT_EQ(err, EBADF);
}

TEST_F(FdWait, FdReusedAfterForgetIsRegisteredAfresh) {
  Scheduler& s = scheduler();
  s.spawn([&] {
     int fd_number;
     {
       Pipe p;
       fd_number = p.r;
       ASSERT_EQ(write(p.w, "a", 1), 1);
       EXPECT_EQ(wait_readable(p.r, 1s), WaitResult::kReady);
       forget_fd(p.r);
     }
     Pipe q;  // very likely gets the same fd numbers back
     EXPECT_EQ(q.r, fd_number);
     EXPECT_EQ(wait_readable(q.r, 10ms), WaitResult::kTimeout);
     ASSERT_EQ(write(q.w, "b", 1), 1);
     EXPECT_EQ(wait_readable(q.r, 1s), WaitResult::kReady);
     forget_fd(q.r);
   }).detach();
  s.run();
}

TEST_F(FdWait, BadFdsAreReportedNotCrashed) {
  Scheduler& s = scheduler();
  s.spawn([&] {
     errno = 0;
     EXPECT_EQ(wait_readable(-1, 10ms), WaitResult::kError);
     EXPECT_EQ(errno, EBADF);
     EXPECT_EQ(wait_readable(19999, 10ms), WaitResult::kError);
     EXPECT_EQ(errno, EBADF);
     EXPECT_EQ(wait_readable(1 << 30, 10ms), WaitResult::kError);
     EXPECT_EQ(errno, EBADF);
   }).detach();
  s.run();
}

TEST_F(FdWait, RegularFilesAreAlwaysReadyLikePoll) {
  Scheduler& s = scheduler();
  int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  s.spawn([&] { EXPECT_EQ(wait_readable(fd, 10ms), WaitResult::kReady); }).detach();
  s.run();
  close(fd);
}

// The fd table grows past its first chunk (4096 fds) on demand.
TEST_F(FdWait, HighFdNumbersWork) {
  Scheduler& s = scheduler();
  Pipe p;
  int high = fcntl(p.r, F_DUPFD_CLOEXEC, 15000);
  ASSERT_GE(high, 15000);
  s.spawn([&] {
     EXPECT_EQ(wait_readable(high, 10ms), WaitResult::kTimeout);
     ASSERT_EQ(write(p.w, "h", 1), 1);
     EXPECT_EQ(wait_readable(high, 1s), WaitResult::kReady);
     forget_fd(high);
   }).detach();
  s.run();
  close(high);
}

TEST_F(FdWait, ThousandPipesWaitedOnConcurrently) {
  Scheduler& s = scheduler();
  std::vector<Pipe> pipes(1000);
  int ready = 0;
  for (auto& p : pipes) {
    s.spawn([&] {
       if (wait_readable(p.r, 5s) == WaitResult::kReady) ++ready;
       forget_fd(p.r);
     }).detach();
  }
  s.spawn([&] {
     yield();
     for (auto& p : pipes) ASSERT_EQ(write(p.w, "k", 1), 1);
   }).detach();
  s.run();
  EXPECT_EQ(ready, 1000);
}

// The hook layer's edge protocol: a remembered edge returns at once (no
// syscall), mark_not_ready() makes the next wait park until a new edge.
TEST_F(FdWait, EdgeWaitSkipsSyscallsUntilMarkedNotReady) {
  Scheduler& s = scheduler();
  Pipe p;
  s.spawn([&] {
     using detail::kReadable;
     TimePoint soon = std::chrono::steady_clock::now() + 10ms;
     // Fresh fd: assumed ready, so the caller tries its syscall first.
     EXPECT_EQ(detail::wait_for_fd(p.r, kReadable, soon), WaitResult::kReady);
     detail::mark_not_ready(p.r, kReadable);  // "read said EAGAIN"
     EXPECT_EQ(detail::wait_for_fd(p.r, kReadable, std::chrono::steady_clock::now() + 10ms),
               WaitResult::kTimeout);
     ASSERT_EQ(write(p.w, "e", 1), 1);
     EXPECT_EQ(detail::wait_for_fd(p.r, kReadable, std::chrono::steady_clock::now() + 1s),
               WaitResult::kReady);
     // The edge is remembered until the caller says otherwise, even though
     // nobody waited when it arrived.
     EXPECT_EQ(detail::wait_for_fd(p.r, kReadable, std::chrono::steady_clock::now()),
               WaitResult::kReady);
     forget_fd(p.r);
   }).detach();
  s.run();
}

// Somebody else's wake() must not end an fd wait early.
TEST_F(FdWait, SpuriousWakeDoesNotEndTheWait) {
  ManualClock clock;
  Scheduler& s = scheduler({.clock = &clock});
  Pipe p;
  detail::Coroutine* waiter = nullptr;
  WaitResult got = WaitResult::kReady;
  s.spawn([&] {
     waiter = detail::current_coroutine();
     got = wait_readable(p.r, 5s);
   }).detach();
  s.spawn([&] {
     yield();
     EXPECT_TRUE(detail::wake(waiter));
     yield();
     yield();
     EXPECT_EQ(got, WaitResult::kReady) << "still waiting: got is untouched";
     clock.advance(5s);
   }).detach();
  s.run();
  EXPECT_EQ(got, WaitResult::kTimeout);
}

// Regression: forget_fd() from a post()ed function (outside any coroutine)
// was a no-op, so a reused fd number was never registered again and its
// readiness was lost.
TEST_F(FdWait, ForgetFromAPostedFunctionLetsTheFdNumberBeReused) {
  Scheduler& s = scheduler();
  auto first = std::make_unique<Pipe>();
  int number = first->r;
  WaitResult got = WaitResult::kError;
  s.spawn([&] {
     ASSERT_EQ(write(first->w, "1", 1), 1);
     EXPECT_EQ(wait_readable(first->r, 1s), WaitResult::kReady);
     Scheduler::current()->post([&] {
       forget_fd(first->r);
       first.reset();
     });
     sleep_for(1ms);  // let the post run
     Pipe second;
     ASSERT_EQ(second.r, number);
     go([&] {
       sleep_for(5ms);
       ASSERT_EQ(write(second.w, "2", 1), 1);
     });
     got = wait_readable(second.r, 2s);
     forget_fd(second.r);
     sleep_for(10ms);
   }).detach();
  s.run();
  EXPECT_EQ(got, WaitResult::kReady);
}

// A wait on an fd closed without forget_fd() whose last edge said ready
// reports EBADF instead of "ready".
TEST_F(FdWait, ClosedFdWithARememberedEdgeIsEbadf) {
  Scheduler& s = scheduler();
  s.spawn([&] {
     Pipe p;
     int r = p.r;
     ASSERT_EQ(write(p.w, "x", 1), 1);
     EXPECT_EQ(wait_readable(r, 1s), WaitResult::kReady);
     close(std::exchange(p.r, -1));  // closed without forget_fd()
     errno = 0;
     EXPECT_EQ(wait_readable(r, 10ms), WaitResult::kError);
     EXPECT_EQ(errno, EBADF);
     forget_fd(r);
   }).detach();
  s.run();
}

TEST(FdWaitOutside, FallsBackToPoll) {
  Pipe p;
  EXPECT_EQ(wait_readable(p.r, 5ms), WaitResult::kTimeout);
  ASSERT_EQ(write(p.w, "o", 1), 1);
  EXPECT_EQ(wait_readable(p.r, 5ms), WaitResult::kReady);
  EXPECT_EQ(wait_writable(p.w, 5ms), WaitResult::kReady);
}

}  // namespace
}  // namespace coil
