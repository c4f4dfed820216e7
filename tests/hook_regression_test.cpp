// Regression tests for hook-layer bugs found while building it, each named
// after the bug, with one line on how it failed.
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <thread>

#include "coil/scheduler.hpp"
#include "test_support.hpp"

namespace coil::test {
namespace {

using HookRegression = SchedulerTest;

// Failed: data and EOF arrived in one epoll event; the short read marked the
// socket drained, and the read that should have returned 0 parked forever.
TEST_F(HookRegression, ShortReadBeforeEofDoesNotHang) {
  std::string got;
  ssize_t at_eof = -1;
  int err = 0;
  scheduler().spawn([&] {
    int sv[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    timeval limit{2, 0};  // turns the hang into EAGAIN
    ASSERT_EQ(setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit), 0);
    auto writer = coil::spawn([&] {
      coil::sleep_for(std::chrono::milliseconds(10));  // the reader is parked by now
      ASSERT_EQ(write(sv[1], "abc", 3), 3);
      ASSERT_EQ(shutdown(sv[1], SHUT_WR), 0);  // same step: one event carries both
    });
    char buf[16];
    ssize_t n = read(sv[0], buf, sizeof buf);
    ASSERT_EQ(n, 3);
    got.assign(buf, 3);
    at_eof = read(sv[0], buf, sizeof buf);
    err = errno;
    writer.join();
    close(sv[0]);
    close(sv[1]);
  });
  scheduler().run();
  EXPECT_EQ(got, "abc");
  EXPECT_EQ(at_eof, 0) << std::strerror(err);
}

// Failed: an fd closed by another thread kept its stale epoll registration
// in the scheduler, so a new pipe that got its number was never watched and
// a read on it parked forever.
TEST_F(HookRegression, FdReusedBehindTheSchedulersBackIsRegisteredAfresh) {
  std::string got;
  scheduler().spawn([&] {
    int p[2];
    ASSERT_EQ(pipe(p), 0);
    pollfd pf{p[0], POLLIN, 0};
    ASSERT_EQ(poll(&pf, 1, 10), 0);  // registers p[0] and marks it not readable
    int q[2] = {-1, -1};
    std::thread other([&] {
      close(p[0]);
      close(p[1]);
      ASSERT_EQ(pipe(q), 0);  // the lowest free numbers: p's again
    });
    other.join();
    ASSERT_EQ(q[0], p[0]) << "the test needs the fd number reused";
    std::thread writer([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      ASSERT_EQ(write(q[1], "x", 1), 1);
    });
    pollfd qf{q[0], POLLIN, 0};
    int ready = poll(&qf, 1, 5000);
    char c = 0;
    if (ready == 1 && read(q[0], &c, 1) == 1) got.assign(1, c);
    writer.join();
    close(q[0]);
    close(q[1]);
  });
  scheduler().run();
  EXPECT_EQ(got, "x") << "the write to the reused fd number was never seen";
}

}  // namespace
}  // namespace coil::test
