// fork() in a coroutine: the child gets a runtime of its own. Without it, parent and child would
// share one epoll instance (fork duplicates the fd, not the instance), so either could take the
// other's readiness events, and the child's registrations would land in the parent's set.
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>

#include "coil/scheduler.hpp"
#include "test_support.hpp"

namespace coil::test {
namespace {

using namespace std::chrono_literals;

// child_echo() is the fork()ed child: it waits (parked, in its coroutine) for one byte on fd and
// answers 'y' if it was 'x'. SIGALRM ends a child that was never woken.
[[noreturn]] void child_echo(int fd) {
  alarm(5);
  char c = 0;
  bool ok = read(fd, &c, 1) == 1 && c == 'x' && write(fd, "y", 1) == 1;
  _exit(ok ? 0 : 1);
}

// One round: both processes park on their end of a socketpair at the same time, each must be
// woken by its own event.
void fork_round(int round) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  // The parent has waited on the child's end before: registered in the inherited instance.
  timeval short_wait{0, 1000};
  setsockopt(sv[1], SOL_SOCKET, SO_RCVTIMEO, &short_wait, sizeof short_wait);
  char c = 0;
  ASSERT_EQ(read(sv[1], &c, 1), -1);
  timeval forever{0, 0};
  setsockopt(sv[1], SOL_SOCKET, SO_RCVTIMEO, &forever, sizeof forever);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) child_echo(sv[1]);
  close(sv[1]);
  coil::sleep_for(10ms);  // the child parks in its epoll_wait
  ASSERT_EQ(write(sv[0], "x", 1), 1);
  EXPECT_EQ(read(sv[0], &c, 1), 1) << "round " << round;  // parks until the child answers
  EXPECT_EQ(c, 'y') << "round " << round;
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << "round " << round << ": the child " << (WIFSIGNALED(status) ? "hung" : "failed");
  close(sv[0]);
}

TEST(SchedulerFork, ParentAndChildEachWaitOnTheirOwnEpoll) {
  coil::run([] {
    for (int round = 0; round < 20 && !::testing::Test::HasFailure(); ++round) fork_round(round);
  });
}

// A fork() in a coroutine leaves the child with that coroutine alone, as a thread's fork()
// leaves it with that thread: a ticking coroutine stops, one parked on a pipe is not woken by the
// child's write to it, and the child's run() returns once the forker ends. The child reports
// with its exit status: 0 all right, 1 the ticker ran, 2 the reader ran, 4 write failed.
TEST(SchedulerFork, TheChildRunsOnlyTheForkingCoroutine) {
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  int ticks = 0;
  bool stop = false, reader_ran = false;
  pid_t pid = -1;
  coil::Scheduler sched;
  sched
      .spawn([&] {
        while (!stop) {
          coil::sleep_for(1ms);
          ++ticks;
        }
      })
      .detach();
  sched
      .spawn([&] {
        char c;
        reader_ran = read(p[0], &c, 1) == 1;  // the parent's is woken by the child's byte
      })
      .detach();
  sched
      .spawn([&] {
        coil::sleep_for(5ms);
        pid = fork();
        if (pid != 0) return;
        alarm(5);
        int before = ticks;
        if (write(p[1], "x", 1) != 1) _exit(4);
        coil::sleep_for(30ms);
        if (ticks != before) _exit(1);
        if (reader_ran) _exit(2);
      })
      .detach();
  sched
      .spawn([&] {
        coil::sleep_for(60ms);
        stop = true;
      })
      .detach();
  sched.run();
  if (pid == 0) _exit(0);  // the child: run() returned once the forker ended
  ASSERT_GT(pid, 0);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << "the child was killed by signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 0) << "1: the ticker ran in the child; 2: the reader did";
  EXPECT_GT(ticks, 10);
  EXPECT_TRUE(reader_ran);
  close(p[0]);
  close(p[1]);
}

// The coroutines the child lost wait on nothing in it: the forker joining one of them is a
// deadlock, reported by run(), not a hang in epoll_wait. The child reports with its exit status:
// 0 the deadlock was reported, 1 run() returned, 3 the join returned; killed: it hung.
TEST(SchedulerFork, JoiningALostCoroutineIsADeadlockInTheChild) {
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  pid_t pid = -1;
  coil::Scheduler sched;
  auto reader = sched.spawn([&] {
    char c;
    (void)read(p[0], &c, 1);  // parked in its fd's reader slot at the fork
  });
  sched
      .spawn([&] {
        coil::sleep_for(5ms);
        pid = fork();
        if (pid != 0) {
          EXPECT_EQ(write(p[1], "x", 1), 1);
          return;
        }
        alarm(5);
        reader.join();
        _exit(3);
      })
      .detach();
  try {
    sched.run();
  } catch (const DeadlockError&) {
    if (pid == 0) _exit(0);
    throw;
  }
  if (pid == 0) _exit(1);
  ASSERT_GT(pid, 0);
  reader.join();
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << "the child hung (killed by signal " << WTERMSIG(status) << ")";
  EXPECT_EQ(WEXITSTATUS(status), 0) << "1: run() returned in the child; 3: the join returned";
  close(p[0]);
  close(p[1]);
}

}  // namespace
}  // namespace coil::test
