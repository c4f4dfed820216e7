// The hooked sigaction() family and how caught signals end hooked waits.
// HookDiffWake (hook_diff_wake_test.cpp) compares each interrupted call with
// the kernel's one at a time; these tests cover what a differential run
// cannot see: that the program never sees coil's trampoline, and which of
// several coroutines parked on one thread a signal interrupts.
#include <dirent.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>

#include "coil/scheduler.hpp"
#include "test_support.hpp"

namespace coil::test {
namespace {

using namespace std::chrono_literals;
using HookSignal = SchedulerTest;

std::atomic<int> g_runs{0};
std::atomic<int> g_signo{0};
std::atomic<int> g_code{0};

void count(int) { g_runs.fetch_add(1); }
void other(int) {}
void with_info(int, siginfo_t* info, void*) {
  g_runs.fetch_add(1);
  g_signo = info ? info->si_signo : -1;
  g_code = info ? info->si_code : -1;
}

// Restore puts SIGUSR1's action back as it was when the test ends.
class Restore {
 public:
  Restore() { sigaction(SIGUSR1, nullptr, &saved_); }
  ~Restore() { sigaction(SIGUSR1, &saved_, nullptr); }
  Restore(const Restore&) = delete;
  Restore& operator=(const Restore&) = delete;

 private:
  struct sigaction saved_ {};
};

void install(void (*fn)(int), int flags) {
  struct sigaction act {};
  act.sa_handler = fn;
  act.sa_flags = flags;
  sigemptyset(&act.sa_mask);
  ASSERT_EQ(sigaction(SIGUSR1, &act, nullptr), 0);
}

TEST(HookSignalActions, SigactionReportsTheProgramsHandlerAndFlags) {
  Restore restore;
  struct sigaction act {};
  act.sa_handler = &count;
  act.sa_flags = SA_RESTART | SA_NODEFER;
  sigemptyset(&act.sa_mask);
  sigaddset(&act.sa_mask, SIGUSR2);
  ASSERT_EQ(sigaction(SIGUSR1, &act, nullptr), 0);
  struct sigaction got {};
  ASSERT_EQ(sigaction(SIGUSR1, nullptr, &got), 0);
  EXPECT_EQ(got.sa_handler, &count);
  EXPECT_EQ(got.sa_flags & (SA_SIGINFO | SA_RESTART | SA_NODEFER), SA_RESTART | SA_NODEFER);
  EXPECT_TRUE(sigismember(&got.sa_mask, SIGUSR2));

  act.sa_sigaction = &with_info;
  act.sa_flags = SA_SIGINFO;
  struct sigaction old {};
  ASSERT_EQ(sigaction(SIGUSR1, &act, &old), 0);
  EXPECT_EQ(old.sa_handler, &count);  // the old one, as the program set it
  ASSERT_EQ(sigaction(SIGUSR1, nullptr, &got), 0);
  EXPECT_EQ(got.sa_sigaction, &with_info);
  EXPECT_TRUE(got.sa_flags & SA_SIGINFO);

  g_runs = 0;
  ASSERT_EQ(pthread_kill(pthread_self(), SIGUSR1), 0);
  EXPECT_EQ(g_runs.load(), 1);
  EXPECT_EQ(g_signo.load(), SIGUSR1);  // the handler gets the kernel's siginfo
  EXPECT_EQ(g_code.load(), SI_TKILL);
}

TEST(HookSignalActions, SignalReturnsThePreviousHandler) {
  Restore restore;
  ASSERT_NE(signal(SIGUSR1, &count), SIG_ERR);
  EXPECT_EQ(signal(SIGUSR1, &other), &count);
  struct sigaction got {};
  ASSERT_EQ(sigaction(SIGUSR1, nullptr, &got), 0);
  EXPECT_TRUE(got.sa_flags & SA_RESTART);  // BSD semantics, as glibc's signal()
  EXPECT_EQ(signal(SIGUSR1, SIG_IGN), &other);
  EXPECT_EQ(signal(SIGUSR1, SIG_DFL), SIG_IGN);
  errno = 0;
  EXPECT_EQ(signal(0, &count), SIG_ERR);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(signal(SIGKILL, &count), SIG_ERR);
}

TEST(HookSignalActions, ResetHandRunsTheHandlerOnce) {
  Restore restore;
  install(&count, SA_RESETHAND);
  g_runs = 0;
  ASSERT_EQ(pthread_kill(pthread_self(), SIGUSR1), 0);
  EXPECT_EQ(g_runs.load(), 1);
  struct sigaction got {};
  ASSERT_EQ(sigaction(SIGUSR1, nullptr, &got), 0);
  EXPECT_EQ(got.sa_handler, SIG_DFL);
}

TEST(HookSignalActions, SiginterruptTurnsRestartOff) {
  Restore restore;
  ASSERT_NE(signal(SIGUSR1, &count), SIG_ERR);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  ASSERT_EQ(siginterrupt(SIGUSR1, 1), 0);
#pragma GCC diagnostic pop
  struct sigaction got {};
  ASSERT_EQ(sigaction(SIGUSR1, nullptr, &got), 0);
  EXPECT_EQ(got.sa_handler, &count);
  EXPECT_FALSE(got.sa_flags & SA_RESTART);
  ASSERT_NE(signal(SIGUSR1, &count), SIG_ERR);  // signal() remembers it
  ASSERT_EQ(sigaction(SIGUSR1, nullptr, &got), 0);
  EXPECT_FALSE(got.sa_flags & SA_RESTART);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  ASSERT_EQ(siginterrupt(SIGUSR1, 0), 0);
#pragma GCC diagnostic pop
}

// A signal handled while one coroutine runs interrupts the coroutines
// already parked in a blocking call, not a call that begins after it: in the
// kernel, a handler that ran before a system call does not interrupt it.
TEST_F(HookSignal, OnlyWaitsBegunBeforeTheSignalAreInterrupted) {
  Restore restore;
  install(&count, 0);
  int early[2], late[2];
  ASSERT_EQ(pipe(early), 0);
  ASSERT_EQ(pipe(late), 0);
  ssize_t early_rc = 0, late_rc = 0;
  int early_errno = 0;
  scheduler().spawn([&] {
    char c;
    early_rc = read(early[0], &c, 1);
    early_errno = errno;
  });
  scheduler().spawn([&] {
    coil::sleep_for(20ms);                                // the reader is parked by now
    ASSERT_EQ(pthread_kill(pthread_self(), SIGUSR1), 0);  // handled right here
    auto writer = coil::spawn([&] {
      coil::sleep_for(50ms);
      ASSERT_EQ(write(late[1], "x", 1), 1);
    });
    char c;
    late_rc = read(late[0], &c, 1);
  });
  scheduler().run();
  EXPECT_EQ(early_rc, -1);
  EXPECT_EQ(early_errno, EINTR);
  EXPECT_EQ(late_rc, 1);
  for (int fd : {early[0], early[1], late[0], late[1]}) close(fd);
}

// With SA_RESTART, one signal ends the parked poll, sleep and timed receive
// (signal(7): never restarted) and leaves the plain read waiting.
TEST_F(HookSignal, SaRestartEndsOnlyTheCallsNeverRestarted) {
  Restore restore;
  install(&count, SA_RESTART);
  int p[2], sv[2];
  ASSERT_EQ(pipe(p), 0);
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  int poll_rc = 0, poll_errno = 0, sleep_rc = 0, sleep_errno = 0, recv_errno = 0;
  ssize_t read_rc = 0, recv_rc = 0;
  pthread_t self = pthread_self();
  std::thread kicker([&] {
    std::this_thread::sleep_for(60ms);
    pthread_kill(self, SIGUSR1);
    std::this_thread::sleep_for(100ms);
    if (write(p[1], "x", 1) != 1) ADD_FAILURE();
  });
  scheduler().spawn([&] {
    char c;
    read_rc = read(p[0], &c, 1);
  });
  scheduler().spawn([&] {
    pollfd f{sv[1], POLLIN, 0};
    poll_rc = poll(&f, 1, -1);
    poll_errno = errno;
  });
  scheduler().spawn([&] {
    sleep_rc = usleep(3000000);
    sleep_errno = errno;
  });
  scheduler().spawn([&] {
    timeval limit{5, 0};
    ASSERT_EQ(setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit), 0);
    char c;
    recv_rc = recv(sv[0], &c, 1, 0);
    recv_errno = errno;
  });
  auto start = std::chrono::steady_clock::now();
  scheduler().run();
  kicker.join();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  EXPECT_EQ(read_rc, 1);
  EXPECT_EQ(poll_rc, -1);
  EXPECT_EQ(poll_errno, EINTR);
  EXPECT_EQ(sleep_rc, -1);
  EXPECT_EQ(sleep_errno, EINTR);
  EXPECT_EQ(recv_rc, -1);
  EXPECT_EQ(recv_errno, EINTR);
  for (int fd : {p[0], p[1], sv[0], sv[1]}) close(fd);
}

// MaskedWaits runs ppoll, pselect and epoll_pwait with SIGUSR1 blocked on
// the thread and unblocked by the call's mask, SIGUSR1 sent 50 ms in, and
// then once more with the signal already pending. It returns the results
// as "rc/errno" strings, to compare a plain thread with a coroutine.
std::string masked_waits() {
  g_runs = 0;
  std::string out;
  int p[2];
  if (pipe(p) != 0) return "pipe failed";
  sigset_t block, unblocked, saved;
  sigemptyset(&block);
  sigaddset(&block, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &block, &saved);
  pthread_sigmask(SIG_BLOCK, nullptr, &unblocked);
  sigdelset(&unblocked, SIGUSR1);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev);
  timespec two_s{2, 0};
  auto record = [&](const char* what, int rc) {
    out += std::string(what) + "=" + std::to_string(rc) + "/" +
           (rc < 0 ? strerrorname_np(errno) : "-") + "/runs=" + std::to_string(g_runs.exchange(0)) +
           " ";
  };
  pthread_t self = pthread_self();
  for (int round = 0; round < 3; ++round) {
    std::thread kicker([&] {
      std::this_thread::sleep_for(50ms);
      pthread_kill(self, SIGUSR1);
    });
    auto start = std::chrono::steady_clock::now();
    pollfd f{p[0], POLLIN, 0};
    fd_set r;
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    epoll_event got[1];
    if (round == 0) record("ppoll", ppoll(&f, 1, &two_s, &unblocked));
    if (round == 1) record("pselect", pselect(p[0] + 1, &r, nullptr, nullptr, &two_s, &unblocked));
    if (round == 2) record("epoll_pwait", epoll_pwait(ep, got, 1, 2000, &unblocked));
    kicker.join();
    if (std::chrono::steady_clock::now() - start > 1s) out += "(slow) ";
  }
  pthread_kill(self, SIGUSR1);  // pending while blocked
  pollfd f{p[0], POLLIN, 0};
  record("ppoll with it pending", ppoll(&f, 1, &two_s, &unblocked));
  timespec short_wait{0, 20000000};
  record("ppoll without the mask", ppoll(&f, 1, &short_wait, nullptr));
  pthread_kill(self, SIGUSR1);
  pthread_sigmask(SIG_SETMASK, &saved, nullptr);  // delivered here
  record("after unblocking", 0);
  close(ep);
  close(p[0]);
  close(p[1]);
  return out;
}

// The signal mask of ppoll, pselect and epoll_pwait is in force while a
// coroutine waits in them, as it is for a thread in the kernel.
TEST_F(HookSignal, PpollPselectAndEpollPwaitApplyTheirMask) {
  Restore restore;
  install(&count, 0);
  std::string plain;
  std::thread([&] { plain = masked_waits(); }).join();
  std::string hooked;
  scheduler().spawn([&] { hooked = masked_waits(); });
  scheduler().run();
  EXPECT_EQ(hooked, plain);
  EXPECT_EQ(plain.find("slow"), std::string::npos) << plain;
}

// PoolThreads counts coil's pool threads ("coil-..." in /proc) and those of
// them that block every catchable signal (SigBlk).
struct PoolThreads {
  int all = 0;
  int blocking = 0;
};

PoolThreads pool_threads() {
  PoolThreads n;
  DIR* dir = opendir("/proc/self/task");
  if (!dir) return n;
  while (dirent* d = readdir(dir)) {
    if (d->d_name[0] == '.') continue;
    std::string task = std::string("/proc/self/task/") + d->d_name;
    std::string name;
    std::getline(std::ifstream(task + "/comm"), name);
    if (name.rfind("coil-", 0) != 0) continue;
    ++n.all;
    std::ifstream status(task + "/status");
    std::string line;
    while (std::getline(status, line)) {
      if (line.rfind("SigBlk:", 0) == 0 && line.find("fffffffe7ffbfeff") != std::string::npos) {
        ++n.blocking;
      }
    }
  }
  closedir(dir);
  return n;
}

// Threads coil starts for blocking work block all signals, so that a signal
// for the process lands on a thread of the program.
TEST_F(HookSignal, PoolThreadsBlockSignals) {
  scheduler().spawn([] {
    addrinfo* res = nullptr;
    ASSERT_EQ(getaddrinfo("127.0.0.1", "80", nullptr, &res), 0);
    freeaddrinfo(res);
  });
  scheduler().run();
  PoolThreads n = pool_threads();
  EXPECT_GT(n.all, 0);
  EXPECT_EQ(n.blocking, n.all);
}

}  // namespace
}  // namespace coil::test
