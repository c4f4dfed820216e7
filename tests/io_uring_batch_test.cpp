// Batched sends (coil/detail/batch.hpp, hook/src/batched_io.hpp): the sends of coroutines that
// run between two polls go to the kernel in one io_uring_enter, and each still does what the
// kernel's own send does. The differential suites (hook_diff_*) check return values and errno
// with batching in force (their "crowded" run); these check the batching itself and what only
// it can get wrong: the order against a close or shutdown, SIGPIPE, fork, a broken ring.
#include <gtest/gtest.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "coil/scheduler.hpp"
#include "test_support.hpp"

namespace coil {
namespace {

// have_io_uring() is true when this process may set up an io_uring.
bool have_io_uring() {
  struct Params {
    unsigned words[30];
  } params{};  // io_uring_params: 120 bytes, zeroed
  long fd = ::syscall(__NR_io_uring_setup, 1, &params);
  if (fd < 0) return false;
  ::close(static_cast<int>(fd));
  return true;
}

#define SKIP_WITHOUT_IO_URING() \
  if (!have_io_uring()) GTEST_SKIP() << "io_uring is unavailable to this process"

using Pair = std::array<int, 2>;

Pair stream_pair() {
  Pair p{-1, -1};
  EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p.data()), 0);
  return p;
}

// read_all() reads fd (outside coroutines: the plain call) until EOF.
std::string read_all(int fd) {
  std::string got;
  char buf[256];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) got.append(buf, static_cast<std::size_t>(n));
  EXPECT_EQ(n, 0) << "read: " << std::strerror(errno);
  return got;
}

// send_together() runs n coroutines that each write one message on a socket pair of its own,
// all ready at once, and returns the scheduler's counts. Every message must arrive whole.
SchedulerStats send_together(int n, IoUring mode) {
  std::vector<Pair> pairs(static_cast<std::size_t>(n));
  for (Pair& p : pairs) p = stream_pair();
  Scheduler sched({.io_uring = mode});
  for (Pair& p : pairs) {
    sched.spawn([&p] { EXPECT_EQ(::write(p[0], "message", 7), 7); }).detach();
  }
  sched.run();
  for (Pair& p : pairs) {
    ::close(p[0]);
    EXPECT_EQ(read_all(p[1]), "message");
    ::close(p[1]);
  }
  return sched.stats();
}

TEST(IoUringBatch, SendsOfCoroutinesReadyTogetherShareOneKernelEntry) {
  SKIP_WITHOUT_IO_URING();
  SchedulerStats s = send_together(50, IoUring::kOn);
  EXPECT_EQ(s.syscalls_batched, 50u);
  EXPECT_EQ(s.batch_submits, 1u);
}

TEST(IoUringBatch, ABatchEndsWhereTheSchedulerPollsAgain) {
  SKIP_WITHOUT_IO_URING();
  // 128 resumes between polls (SchedulerImpl::kResumesPerPoll): 300 sends go in three entries.
  SchedulerStats s = send_together(300, IoUring::kOn);
  EXPECT_EQ(s.syscalls_batched, 300u);
  EXPECT_EQ(s.batch_submits, 3u);
}

TEST(IoUringBatch, ALoneSendIsMadeDirectly) {
  // Nothing to share the kernel entry with: batching would only delay it.
  SchedulerStats s = send_together(1, IoUring::kOn);
  EXPECT_EQ(s.syscalls_batched, 0u);
  EXPECT_EQ(s.batch_submits, 0u);
}

TEST(IoUringBatch, OffMeansEverySendIsMadeDirectly) {
  SchedulerStats s = send_together(50, IoUring::kOff);
  EXPECT_EQ(s.syscalls_batched, 0u);
}

// The child half of TheEnvironmentDecidesByDefault: run by it in a new process, it prints how
// many of 50 sends its scheduler (IoUring::kFromEnv) batched, or the exception that stopped it.
TEST(IoUringBatchChild, ReportBatched) {
  if (!std::getenv("COIL_BATCH_CHILD")) GTEST_SKIP() << "run by TheEnvironmentDecidesByDefault";
  try {
    std::printf("batched=%llu\n", static_cast<unsigned long long>(
                                      send_together(50, IoUring::kFromEnv).syscalls_batched));
  } catch (const std::exception& e) {
    std::printf("refused: %s\n", e.what());
  }
}

// child_says() runs ReportBatched in a new process with COIL_IO_URING=value and returns its line.
std::string child_says(const char* value) {
  std::string cmd = std::string("COIL_BATCH_CHILD=1 COIL_IO_URING='") + value + "' /proc/" +
                    std::to_string(::getpid()) +
                    "/exe --gtest_filter=IoUringBatchChild.ReportBatched 2>&1";
  FILE* f = ::popen(cmd.c_str(), "r");
  if (!f) return "popen failed";
  std::string line;
  char buf[512];
  while (std::fgets(buf, sizeof buf, f)) {
    if (std::strncmp(buf, "batched=", 8) == 0 || std::strncmp(buf, "refused:", 8) == 0) line = buf;
  }
  ::pclose(f);
  return line;
}

TEST(IoUringBatch, TheEnvironmentDecidesByDefault) {
  SKIP_WITHOUT_IO_URING();
  EXPECT_EQ(child_says("1"), "batched=50\n");
  EXPECT_EQ(child_says(""), "batched=50\n");
  EXPECT_EQ(child_says("off"), "batched=0\n");
  EXPECT_EQ(child_says("0"), "batched=0\n");
  EXPECT_EQ(child_says("maybe"),
            "refused: coil: COIL_IO_URING='maybe' is not a boolean; use 1 or 0 (also yes or no, "
            "true or false, on or off)\n");
}

// queued_then() spawns a coroutine that writes "hello" on p[0], which is queued because a
// second coroutine is ready, and that second coroutine, which runs while the send is queued
// and calls then(). Returns what the write returned (or -errno).
template <class Then>
long queued_then(Pair p, Then then) {
  long wrote = 0;
  Scheduler sched({.io_uring = IoUring::kOn});
  sched
      .spawn([&] {
        ssize_t n = ::write(p[0], "hello", 5);
        wrote = n < 0 ? -errno : n;
      })
      .detach();
  sched.spawn(then).detach();
  sched.run();
  EXPECT_EQ(sched.stats().syscalls_batched, 1u);
  return wrote;
}

// Before the fix the close came first and the queued write failed with EBADF.
TEST(IoUringBatch, ACloseMadeWhileASendIsQueuedComesAfterIt) {
  SKIP_WITHOUT_IO_URING();
  Pair p = stream_pair();
  EXPECT_EQ(queued_then(p, [&] { EXPECT_EQ(::close(p[0]), 0); }), 5);
  EXPECT_EQ(read_all(p[1]), "hello");
  ::close(p[1]);
}

// Before the fix the shutdown came first and the queued write failed with EPIPE.
TEST(IoUringBatch, AShutdownMadeWhileASendIsQueuedComesAfterIt) {
  SKIP_WITHOUT_IO_URING();
  Pair p = stream_pair();
  EXPECT_EQ(queued_then(p, [&] { EXPECT_EQ(::shutdown(p[0], SHUT_WR), 0); }), 5);
  EXPECT_EQ(read_all(p[1]), "hello");
  ::close(p[0]);
  ::close(p[1]);
}

// Before the fix dup2 made the queued write go to the file dup2 put in its place.
TEST(IoUringBatch, ADup2OntoAnFdWithASendQueuedComesAfterIt) {
  SKIP_WITHOUT_IO_URING();
  Pair p = stream_pair();
  Pair other = stream_pair();
  EXPECT_EQ(queued_then(p, [&] { EXPECT_EQ(::dup2(other[0], p[0]), p[0]); }), 5);
  ::close(p[0]);  // now a copy of other[0]
  ::close(other[0]);
  EXPECT_EQ(read_all(p[1]), "hello");
  EXPECT_EQ(read_all(other[1]), "");
  ::close(p[1]);
  ::close(other[1]);
}

// A close coil does not see (a raw syscall here; fclose() of an fdopen()ed socket, close_range)
// while a send is queued, and a new socket pair that takes the number: the queued send must not
// reach the new socket. Before the fix it did; now the batch is made before any fd is created,
// and the send meets the closed number.
TEST(IoUringBatch, ANumberReusedAfterACloseCoilDidNotSeeGetsNoQueuedSend) {
  SKIP_WITHOUT_IO_URING();
  Pair p = stream_pair();
  Pair fresh{-1, -1};
  long wrote = queued_then(p, [&] {
    ::syscall(SYS_close, p[0]);
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fresh.data()), 0);
  });
  ASSERT_TRUE(fresh[0] == p[0] || fresh[1] == p[0]) << "the number was not reused";
  // -EBADF: made when the socket pair was created, after the close. 5: made before the close,
  // by an earlier flush (UBSan's vptr checks call pipe(), which creates fds too).
  EXPECT_TRUE(wrote == -EBADF || wrote == 5) << wrote;
  char c;
  int other = fresh[0] == p[0] ? fresh[1] : fresh[0];
  EXPECT_EQ(::recv(other, &c, 1, MSG_DONTWAIT), -1) << "the queued send reached the new socket";
  for (int fd : {p[1], fresh[0], fresh[1]}) ::close(fd);
}

// SigpipeSeen is how a write to a socket whose peer is gone ended, and the SIGPIPE it left
// pending on the thread (blocked, then taken with sigtimedwait).
struct SigpipeSeen {
  long result = 0;
  int err = 0;
  int signo = 0;
  int code = 0;
  pid_t pid = 0;
  bool operator==(const SigpipeSeen&) const = default;
};

// write_to_gone_peer() writes to a stream socket whose peer closed, with SIGPIPE blocked, and
// takes the pending signal, in a coroutine (ready beside another one, so the write is batched)
// or plainly.
SigpipeSeen write_to_gone_peer(bool in_coroutine, int flags) {
  SigpipeSeen seen;
  sigset_t pipe_only, old;
  sigemptyset(&pipe_only);
  sigaddset(&pipe_only, SIGPIPE);
  EXPECT_EQ(::pthread_sigmask(SIG_BLOCK, &pipe_only, &old), 0);
  Pair p = stream_pair();
  ::close(p[1]);
  auto attempt = [&] {
    ssize_t n = ::send(p[0], "x", 1, flags);
    seen.result = n;
    seen.err = n < 0 ? errno : 0;
  };
  if (in_coroutine) {
    Scheduler sched({.io_uring = IoUring::kOn});
    sched.spawn(attempt).detach();
    sched.spawn([] {}).detach();
    sched.run();
    EXPECT_EQ(sched.stats().syscalls_batched, 1u);
  } else {
    attempt();
  }
  timespec zero{};
  siginfo_t info{};
  if (::sigtimedwait(&pipe_only, &info, &zero) == SIGPIPE) {
    seen.signo = info.si_signo;
    seen.code = info.si_code;
    seen.pid = info.si_pid;
  }
  ::close(p[0]);
  EXPECT_EQ(::pthread_sigmask(SIG_SETMASK, &old, nullptr), 0);
  return seen;
}

TEST(IoUringBatch, ABatchedSendRaisesSigpipeAsTheKernelDoes) {
  SKIP_WITHOUT_IO_URING();
  SigpipeSeen kernel = write_to_gone_peer(false, 0);
  EXPECT_EQ(kernel.err, EPIPE);
  EXPECT_EQ(kernel.signo, SIGPIPE);
  EXPECT_EQ(write_to_gone_peer(true, 0), kernel);
}

TEST(IoUringBatch, ABatchedSendWithMsgNosignalRaisesNothing) {
  SKIP_WITHOUT_IO_URING();
  SigpipeSeen kernel = write_to_gone_peer(false, MSG_NOSIGNAL);
  EXPECT_EQ(kernel.err, EPIPE);
  EXPECT_EQ(kernel.signo, 0);
  EXPECT_EQ(write_to_gone_peer(true, MSG_NOSIGNAL), kernel);
}

// io_uring_fds() lists this process's io_uring fds.
std::vector<int> io_uring_fds() {
  std::vector<int> fds;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    auto target = std::filesystem::read_symlink(entry.path(), ec);
    if (!ec && target.string() == "anon_inode:[io_uring]") {
      fds.push_back(std::stoi(entry.path().filename().string()));
    }
  }
  return fds;
}

TEST(IoUringBatch, ARingClosedBehindCoilsBackFallsBackToDirectSends) {
  SKIP_WITHOUT_IO_URING();
  std::vector<int> before = io_uring_fds();
  std::vector<Pair> pairs(4);
  for (Pair& p : pairs) p = stream_pair();
  Scheduler sched({.io_uring = IoUring::kOn});
  sched
      .spawn([&] {
        // Round 1 opens the ring; the program then closes every fd it does not know, the
        // ring's among them (a daemon's close-all loop); round 2 finds it broken and sends
        // directly, and round 3 no longer tries it.
        for (int round = 0; round < 3; ++round) {
          std::vector<JoinHandle<void>> senders;
          for (Pair& p : pairs) {
            senders.push_back(spawn([&p] { EXPECT_EQ(::write(p[0], "ab", 2), 2); }));
          }
          for (auto& s : senders) s.join();
          if (round == 0) {
            std::vector<int> now = io_uring_fds();
            ASSERT_EQ(now.size(), before.size() + 1) << "the batch opened no ring";
            for (int fd : now) {
              if (std::find(before.begin(), before.end(), fd) == before.end()) {
                ::syscall(SYS_close, fd);
              }
            }
          }
        }
      })
      .detach();
  sched.run();
  EXPECT_EQ(sched.stats().syscalls_batched, 8u);  // rounds 1 and 2
  for (Pair& p : pairs) {
    ::close(p[0]);
    EXPECT_EQ(read_all(p[1]), "ababab");
    ::close(p[1]);
  }
}

// A fork() made while another coroutine's send is queued: the parent makes the send, once; the
// child, whose copy of the batch is the parent's, sends only its own. Before the fix the
// child's next batch submitted the parent's queued send a second time.
TEST(IoUringBatch, AForkChildDoesNotMakeItsParentsQueuedSends) {
  SKIP_WITHOUT_IO_URING();
  // TSan's runtime can deadlock in the child of a process with other threads (the ones earlier
  // tests left: resolver and file pools), which this child, running coroutines, runs into.
  if (test::kTsan) GTEST_SKIP() << "a coroutine-running fork() child hangs inside TSan's runtime";
  Pair p = stream_pair();
  Scheduler sched({.io_uring = IoUring::kOn});
  pid_t child = -1;
  sched.spawn([&] { EXPECT_EQ(::write(p[0], "x", 1), 1); }).detach();
  sched
      .spawn([&] {
        child = ::fork();
        if (child != 0) return;
        // The child's only coroutine; two more make its send worth batching.
        auto a = spawn([&] { (void)::write(p[0], "y", 1); });
        auto b = spawn([] {});
        a.join();
        b.join();
        ::_exit(0);
      })
      .detach();
  sched.run();
  ASSERT_GT(child, 0);
  // The child hung in its batch before the fix (its ring was the parent's): give it 10 s.
  int status = 0;
  pid_t ended = 0;
  for (int i = 0; i < 1000 && (ended = ::waitpid(child, &status, WNOHANG)) == 0; ++i) {
    ::usleep(10000);
  }
  if (ended == 0) {
    ::kill(child, SIGKILL);
    ::waitpid(child, &status, 0);
    FAIL() << "the fork()ed child did not finish its one send in 10 s";
  }
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  ::close(p[0]);
  std::string got = read_all(p[1]);
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, "xy");
  ::close(p[1]);
}

// A batched receive finds the socket empty; a send in the same batch then fills it, and the
// scheduler's poll sees the edge before the receiver resumes. Before the fix the receiver's
// "not ready" mark, made after it resumed, erased that edge, and its wait never ended (here:
// SO_RCVTIMEO's EAGAIN after 1 s).
TEST(IoUringBatch, AnEdgeSeenBeforeABatchedCallerResumesIsNotLost) {
  SKIP_WITHOUT_IO_URING();
  Pair p = stream_pair();
  Pair gate = stream_pair();  // a waiter on it makes the scheduler poll between batches
  timeval second{1, 0};
  ASSERT_EQ(::setsockopt(p[0], SOL_SOCKET, SO_RCVTIMEO, &second, sizeof second), 0);
  ASSERT_EQ(::write(p[1], "w", 1), 1);
  std::string got;
  Scheduler sched({.io_uring = IoUring::kOn});
  sched
      .spawn([&] {
        pollfd wait{gate[0], POLLIN, 0};  // parks as a waiter: poll() is never batched
        EXPECT_EQ(::poll(&wait, 1, 5000), 1);
      })
      .detach();
  sched
      .spawn([&] {
        char buf[8];
        // Alone, so made directly; it registers p[0] with epoll.
        EXPECT_EQ(::read(p[0], buf, 1), 1);
        auto writer = spawn([&] { EXPECT_EQ(::write(p[1], "x", 1), 1); });
        ssize_t n = ::read(p[0], buf, sizeof buf);  // batched before the write: EAGAIN, waits
        got = n > 0 ? std::string(buf, static_cast<std::size_t>(n))
                    : "error " + std::to_string(errno);
        writer.join();
        EXPECT_EQ(::write(gate[1], "g", 1), 1);
      })
      .detach();
  sched.run();
  EXPECT_EQ(got, "x");
  EXPECT_GE(sched.stats().syscalls_batched, 2u);
  for (int fd : {p[0], p[1], gate[0], gate[1]}) ::close(fd);
}

// io_uring takes 32-bit lengths: before the fix a batched read of 4 GiB read as 0, an end of
// file, with 4 bytes waiting.
TEST(IoUringBatch, ALengthOf4GiBIsNotCutTo32Bits) {
  SKIP_WITHOUT_IO_URING();
  Pair p = stream_pair();
  ASSERT_EQ(::write(p[1], "abcd", 4), 4);
  std::vector<char> buf(16);
  long n = 0;
  Scheduler sched({.io_uring = IoUring::kOn});
  sched.spawn([&] { n = ::read(p[0], buf.data(), std::size_t{1} << 32); }).detach();
  sched.spawn([] {}).detach();
  sched.run();
  EXPECT_EQ(n, 4);
  EXPECT_EQ(sched.stats().syscalls_batched, 0u);
  for (int fd : p) ::close(fd);
}

// A handler without SA_RESTART runs while a read is queued; the read then finds nothing and
// would wait. The kernel's blocking read, in progress when the handler ran, fails with EINTR.
// Before the fix it waited (here until SO_RCVTIMEO: EAGAIN after 1 s).
TEST(IoUringBatch, ASignalCaughtWhileACallIsQueuedEndsItWithEintr) {
  SKIP_WITHOUT_IO_URING();
  struct sigaction sa {
  }, old{};
  sa.sa_handler = [](int) {};
  ASSERT_EQ(::sigaction(SIGUSR1, &sa, &old), 0);
  Pair p = stream_pair();
  timeval second{1, 0};
  ASSERT_EQ(::setsockopt(p[0], SOL_SOCKET, SO_RCVTIMEO, &second, sizeof second), 0);
  long n = 0;
  int err = 0;
  Scheduler sched({.io_uring = IoUring::kOn});
  sched
      .spawn([&] {
        char buf[8];
        n = ::read(p[0], buf, sizeof buf);
        err = errno;
      })
      .detach();
  sched.spawn([] { ::pthread_kill(::pthread_self(), SIGUSR1); }).detach();
  sched.run();
  EXPECT_EQ(n, -1);
  EXPECT_EQ(err, EINTR) << std::strerror(err);
  EXPECT_EQ(sched.stats().syscalls_batched, 1u);
  ASSERT_EQ(::sigaction(SIGUSR1, &old, nullptr), 0);
  for (int fd : p) ::close(fd);
}

// sq_heads() lists the SqHead of each io_uring of this process (/proc/PID/fdinfo): how many
// entries each has consumed.
std::vector<long> sq_heads() {
  std::vector<long> heads;
  for (int fd : io_uring_fds()) {
    FILE* f = std::fopen(
        ("/proc/" + std::to_string(::getpid()) + "/fdinfo/" + std::to_string(fd)).c_str(), "r");
    if (!f) continue;
    char line[128];
    while (std::fgets(line, sizeof line, f)) {
      if (std::strncmp(line, "SqHead:", 7) == 0) heads.push_back(std::atol(line + 7));
    }
    std::fclose(f);
  }
  return heads;
}

// A Scheduler that is not running when the process forks: the child's batches must go through
// a ring of its own, not the parent's (whose queues the parent goes on using). Before the fix the
// child's three sends went through the inherited ring, which had consumed the parent's ten.
TEST(IoUringBatch, AForkChildOfAnIdleSchedulerOpensItsOwnRing) {
  SKIP_WITHOUT_IO_URING();
  Scheduler sched({.io_uring = IoUring::kOn});
  auto send_round = [&](int n) {
    std::vector<Pair> pairs(static_cast<std::size_t>(n));
    for (Pair& p : pairs) p = stream_pair();
    for (Pair& p : pairs) sched.spawn([&p] { (void)::write(p[0], "m", 1); }).detach();
    sched.run();
    bool all = true;
    for (Pair& p : pairs) {
      char c = 0;
      all = all && ::read(p[1], &c, 1) == 1 && c == 'm';
      for (int fd : p) ::close(fd);
    }
    return all;
  };
  ASSERT_TRUE(send_round(10));
  pid_t child = ::fork();
  if (child == 0) {
    bool sent = send_round(3);
    std::vector<long> heads = sq_heads();
    bool fresh = std::find(heads.begin(), heads.end(), 3) != heads.end();
    ::_exit(!sent ? 1 : !fresh ? 2 : 0);
  }
  ASSERT_GT(child, 0);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "1: the child's sends failed; 2: its ring was the parent's";
}

TEST(IoUringBatch, WritevAndSendmsgAreBatchedWhole) {
  SKIP_WITHOUT_IO_URING();
  Pair a = stream_pair(), b = stream_pair();
  Scheduler sched({.io_uring = IoUring::kOn});
  sched
      .spawn([&] {
        iovec iov[2] = {{const_cast<char*>("wri"), 3}, {const_cast<char*>("tev"), 3}};
        EXPECT_EQ(::writev(a[0], iov, 2), 6);
      })
      .detach();
  sched
      .spawn([&] {
        iovec iov[2] = {{const_cast<char*>("send"), 4}, {const_cast<char*>("msg"), 3}};
        msghdr m{};
        m.msg_iov = iov;
        m.msg_iovlen = 2;
        EXPECT_EQ(::sendmsg(b[0], &m, 0), 7);
      })
      .detach();
  sched.run();
  EXPECT_EQ(sched.stats().syscalls_batched, 2u);
  for (Pair* p : {&a, &b}) ::close((*p)[0]);
  EXPECT_EQ(read_all(a[1]), "writev");
  EXPECT_EQ(read_all(b[1]), "sendmsg");
  ::close(a[1]);
  ::close(b[1]);
}

}  // namespace
}  // namespace coil
