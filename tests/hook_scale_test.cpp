// Scale: 10,000 concurrent TCP connections served by 10,000 coroutines on one
// thread, every echo verified. The clients live in a fork()ed child, because
// both ends in one process would need 20,000 fds and RLIMIT_NOFILE is capped
// at 20,000 here.
#include <dirent.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <string>
#include <vector>

#include "coil/scheduler.hpp"
#include "coil/wait_group.hpp"
#include "test_support.hpp"

namespace coil::test {
namespace {

constexpr int kMessage = 64;

// message() is connection i's 64 bytes.
std::string message(int i) {
  std::string m = "conn " + std::to_string(i) + " ";
  m.resize(kMessage, static_cast<char>('a' + i % 26));
  return m;
}

// thread_count() counts this process's threads from /proc/self/task with
// getdents (a hooked read of /proc/self/status would itself go to coil's
// file pool and start its threads).
int thread_count() {
  DIR* d = opendir("/proc/self/task");
  if (!d) return -1;
  int n = 0;
  while (dirent* e = readdir(d)) n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

bool full_io(ssize_t (*io)(int, void*, size_t), int fd, char* p, std::size_t n) {
  while (n > 0) {
    ssize_t r = io(fd, p, n);
    if (r <= 0) return false;
    p += r;
    n -= static_cast<std::size_t>(r);
  }
  return true;
}

ssize_t write_some(int fd, void* p, size_t n) { return write(fd, p, n); }

// run_clients() is the child: n coroutines connect, wait until all are
// connected, then each sends its message and checks the echo. Exit status:
// the number of failed connections (capped), 0 when all echoed.
[[noreturn]] void run_clients(std::uint16_t port, int n) {
  alarm(120);  // a hung child must not hang the test
  int failed = 0;
  {
    coil::Scheduler sched;
    coil::WaitGroup connected, echoed;
    connected.add(n);
    echoed.add(n);
    bool go = false;
    for (int i = 0; i < n; ++i) {
      sched
          .spawn([&, i] {
            int fd = socket(AF_INET, SOCK_STREAM, 0);
            sockaddr_in a{};
            a.sin_family = AF_INET;
            a.sin_port = htons(port);
            a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            bool ok = fd >= 0 && connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
            connected.done();
            while (!go) coil::sleep_for(std::chrono::milliseconds(5));
            std::string m = message(i), back(kMessage, '\0');
            ok = ok && full_io(write_some, fd, m.data(), m.size()) &&
                 full_io(read, fd, back.data(), back.size()) && back == m;
            if (!ok) ++failed;
            echoed.done();
            echoed.wait();  // hold every connection open until all have echoed
            if (fd >= 0) close(fd);
          })
          .detach();
    }
    sched
        .spawn([&] {
          connected.wait();
          go = true;
        })
        .detach();
    sched.run();
  }
  _exit(failed > 100 ? 100 : failed);
}

TEST(HookScale, TenThousandConnectionsOnOneThread) {
  const int n = scaled(10000);
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur < static_cast<rlim_t>(n + 100)) {
    GTEST_SKIP() << "RLIMIT_NOFILE hard limit " << rl.rlim_max << " is below " << n + 100;
  }
  int listener = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(listen(listener, 4096), 0);
  socklen_t len = sizeof a;
  ASSERT_EQ(getsockname(listener, reinterpret_cast<sockaddr*>(&a), &len), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(listener);
    run_clients(ntohs(a.sin_port), n);
  }

  int threads_before = thread_count();
  std::atomic<int> open{0}, peak{0}, echoed{0}, threads_seen{0};
  {
    coil::Scheduler sched;
    sched
        .spawn([&] {
          timeval limit{60, 0};  // if the child dies, stop waiting for it
          setsockopt(listener, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
          for (int i = 0; i < n; ++i) {
            int fd = accept(listener, nullptr, nullptr);
            if (fd < 0) break;
            coil::go([&, fd] {
              int now = ++open;
              if (now > peak) peak = now;
              threads_seen = std::max(threads_seen.load(), thread_count());
              char buf[kMessage];
              if (full_io(read, fd, buf, sizeof buf) && full_io(write_some, fd, buf, sizeof buf)) {
                ++echoed;
              }
              char eof;
              (void)read(fd, &eof, 1);  // until the client closes
              --open;
              close(fd);
            });
          }
        })
        .detach();
    sched.run();
  }
  close(listener);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status)) << "the client process died (signal " << WTERMSIG(status) << ")";
  EXPECT_EQ(WEXITSTATUS(status), 0) << "client connections that failed their echo";
  EXPECT_EQ(echoed.load(), n);
  EXPECT_EQ(peak.load(), n) << "not all connections were open at once";
  EXPECT_EQ(threads_seen.load(), threads_before) << "the server started threads";
}

}  // namespace
}  // namespace coil::test
