// Outside coroutines every hook is the plain call: on a thread with no
// scheduler a blocking call really blocks in the kernel (wall time passes,
// the thread's CPU time does not), fds carry exactly the flags the kernel
// reports, and an fd keeps the user's blocking mode when it moves between
// coroutines and plain threads in either direction.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <spawn.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include <atomic>
#include <string>
#include <thread>
#include <tuple>

#include "hook_diff.hpp"

namespace coil::test::hook {
namespace {

TEST(HookPassthrough, BlockingCallsOnAPlainThreadBlockInTheKernel) {
  with_watchdog("plain", [] {
    int p[2];
    ASSERT_EQ(pipe(p), 0);
    char buf[16] = {};
    auto write_one = [&] { ASSERT_EQ(write(p[1], "w", 1), 1); };
    expect_blocks(
        "read on a pipe", [&] { return read(p[0], buf, sizeof buf); }, write_one, 1);
    iovec iov{buf, sizeof buf};
    expect_blocks(
        "readv on a pipe", [&] { return readv(p[0], &iov, 1); }, write_one, 1);
    pollfd pf{p[0], POLLIN, 0};
    expect_blocks(
        "poll -1", [&] { return poll(&pf, 1, -1); }, write_one, 1);
    ASSERT_EQ(read(p[0], buf, sizeof buf), 1);
    fd_set r;
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    expect_blocks(
        "select without timeout", [&] { return select(p[0] + 1, &r, nullptr, nullptr, nullptr); },
        write_one, 1);
    ASSERT_EQ(read(p[0], buf, sizeof buf), 1);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ASSERT_EQ(epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev), 0);
    expect_blocks(
        "epoll_wait -1", [&] { return epoll_wait(ep, &ev, 1, -1); }, write_one, 1);
    ASSERT_EQ(read(p[0], buf, sizeof buf), 1);
    int sv[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    auto send_one = [&] { ASSERT_EQ(send(sv[1], "s", 1, 0), 1); };
    expect_blocks(
        "recv", [&] { return recv(sv[0], buf, sizeof buf, 0); }, send_one, 1);
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    expect_blocks(
        "recvmsg", [&] { return recvmsg(sv[0], &msg, 0); }, send_one, 1);
    std::vector<char> big(1 << 20, 'b');
    expect_blocks(
        "write of 1 MiB into a socket", [&] { return write(sv[0], big.data(), big.size()); },
        [&] {
          std::size_t n = 0;
          std::vector<char> sink(1 << 16);
          while (n < big.size()) {
            ssize_t m = read(sv[1], sink.data(), sink.size());
            if (m <= 0) break;
            n += static_cast<std::size_t>(m);
          }
        },
        1 << 20);
    int e = eventfd(0, EFD_CLOEXEC);
    std::uint64_t v = 0;
    expect_blocks(
        "eventfd read", [&] { return read(e, &v, 8); },
        [&] {
          std::uint64_t one = 1;
          ASSERT_EQ(write(e, &one, 8), 8);
        },
        8);
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a = loopback(0);
    ASSERT_EQ(bind(l, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ASSERT_EQ(listen(l, 4), 0);
    int client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int accepted = -1;
    expect_blocks(
        "accept",
        [&] {
          accepted = accept(l, nullptr, nullptr);
          return accepted >= 0 ? 1 : -1;
        },
        [&] { ASSERT_EQ(connect_to(client, port_of(l)), 0); }, 1);
    timespec req{0, 100000000};
    expect_blocks(
        "nanosleep 100 ms", [&] { return nanosleep(&req, nullptr); }, [] {}, 0);
    expect_blocks(
        "usleep 100 ms", [&] { return usleep(100000); }, [] {}, 0);
    for (int fd : {p[0], p[1], ep, sv[0], sv[1], e, l, client, accepted}) close(fd);
  });
}

// kernel_fl() is F_GETFL straight from the kernel, past the hooks.
long kernel_fl(int fd) { return syscall(SYS_fcntl, fd, F_GETFL); }

TEST(HookPassthrough, FdsMadeOnAPlainThreadCarryTheKernelsFlags) {
  with_watchdog("plain", [] {
    int sv[2], p[2], q[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    ASSERT_EQ(pipe(p), 0);
    ASSERT_EQ(pipe2(q, O_NONBLOCK), 0);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    int n = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    int e = eventfd(0, 0);
    int d = dup(sv[0]);
    int on = 1;
    int f = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_EQ(ioctl(f, FIONBIO, &on), 0);
    for (int fd : {sv[0], sv[1], p[0], p[1], q[0], q[1], s, n, e, d, f}) {
      EXPECT_EQ(fcntl(fd, F_GETFL), kernel_fl(fd))
          << "fd " << fd << ": the hook's F_GETFL " << fl_names(fcntl(fd, F_GETFL)) << ", kernel's "
          << fl_names(kernel_fl(fd));
    }
    EXPECT_EQ(kernel_fl(s) & O_NONBLOCK, 0) << "socket() on a plain thread set O_NONBLOCK";
    EXPECT_EQ(kernel_fl(sv[0]) & O_NONBLOCK, 0) << "socketpair() on a plain thread set O_NONBLOCK";
    EXPECT_EQ(kernel_fl(p[0]) & O_NONBLOCK, 0) << "pipe() on a plain thread set O_NONBLOCK";
    for (int fd : {sv[0], sv[1], p[0], p[1], q[0], q[1], s, n, e, d, f}) close(fd);
  });
}

// An fd made in a coroutine and used on a plain thread once the scheduler
// is gone: blocking, as the user made it.
TEST(HookPassthrough, FdMadeInACoroutineBlocksOnAPlainThreadLater) {
  int sv[2] = {-1, -1}, p[2] = {-1, -1};
  TcpConn t;
  run_hooked(
      [&](Ctx& c) {
        c.ret("socketpair", socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
        c.ret("pipe", pipe(p));
        t = tcp_conn(c);
        // Make the hooks wait on each once, so that they are fully set up.
        c.peer([&] {
          Ctx::pause(kPeerDelay);
          EXPECT_EQ(write(sv[1], "1", 1), 1);
          EXPECT_EQ(write(p[1], "2", 1), 1);
          EXPECT_EQ(write(t.client, "3", 1), 1);
        });
        char buf[4] = {};
        c.timed("read socketpair", kWaitedLo, kWaitedHi, [&] { return read(sv[0], buf, 4); });
        c.timed("read pipe", kAtOnceLo, kWaitedHi, [&] { return read(p[0], buf, 4); });
        c.timed("read tcp", kAtOnceLo, kWaitedHi, [&] { return read(t.server, buf, 4); });
        c.join_peers();
      },
      {.check_fds = false});
  with_watchdog("plain", [&] {
    char buf[4] = {};
    for (auto [name, r, w] :
         {std::tuple{"socketpair", sv[0], sv[1]}, std::tuple{"pipe", p[0], p[1]},
          std::tuple{"tcp", t.server, t.client}}) {
      EXPECT_EQ(fcntl(r, F_GETFL) & O_NONBLOCK, 0) << name << ": F_GETFL shows O_NONBLOCK";
      expect_blocks(
          name, [&, r = r] { return read(r, buf, sizeof buf); },
          [&, w = w] { ASSERT_EQ(write(w, "x", 1), 1); }, 1);
    }
  });
  for (int fd : {sv[0], sv[1], p[0], p[1]}) close(fd);
  t.close_both();
}

// An fd made on a plain thread (with SO_RCVTIMEO set there) used in a
// coroutine: the timeout holds and the wait parks the coroutine; back on a
// plain thread it blocks again.
TEST(HookPassthrough, FdMadeOnAPlainThreadWorksInACoroutine) {
  int sv[2] = {-1, -1};
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  timeval tv{0, 200000};
  ASSERT_EQ(setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
  Outcome o = run_hooked([&](Ctx& c) {
    char buf[4] = {};
    c.timed("recv with SO_RCVTIMEO set before", 190ms, 2s,
            [&] { return recv(sv[0], buf, sizeof buf, 0); });
    c.peer([&] {
      Ctx::pause(kPeerDelay);
      EXPECT_EQ(write(sv[1], "y", 1), 1);
    });
    c.timed("recv with a peer", kWaitedLo, 180ms, [&] { return recv(sv[0], buf, sizeof buf, 0); });
    c.join_peers();
    getfl(c, "F_GETFL", sv[0]);
  });
  std::vector<std::string> want = {
      "recv with SO_RCVTIMEO set before = -1 EAGAIN",
      "recv with SO_RCVTIMEO set before took: in [190 ms, 2000 ms)",
      "recv with a peer = 1",
      "recv with a peer took: in [50 ms, 180 ms)",
      "F_GETFL: O_RDWR",
      "SIGPIPE pending at the end: no",
  };
  std::vector<std::string> got;
  for (const auto& line : o.lines) got.push_back(line.text);
  EXPECT_EQ(got, want);
  timeval none{0, 0};
  ASSERT_EQ(setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &none, sizeof none), 0);
  with_watchdog("plain", [&] {
    char buf[4] = {};
    expect_blocks(
        "read back on a plain thread", [&] { return read(sv[0], buf, sizeof buf); },
        [&] { ASSERT_EQ(write(sv[1], "z", 1), 1); }, 1);
  });
  close(sv[0]);
  close(sv[1]);
}

// A plain thread blocking in read beside a thread running a scheduler:
// each keeps its own semantics.
TEST(HookPassthrough, PlainThreadBesideASchedulerThread) {
  int p[2], q[2];
  ASSERT_EQ(pipe(p), 0);
  ASSERT_EQ(pipe(q), 0);
  std::atomic<long> ticks{0};
  std::atomic<bool> plain_done{false};
  std::thread sched_thread([&] {
    with_watchdog("hooked", [&] {
      coil::run([&] {
        coil::go([&] {
          while (!plain_done) {
            coil::sleep_for(1ms);
            ++ticks;
          }
        });
        char c = 0;
        EXPECT_EQ(read(q[0], &c, 1), 1);  // parks until the plain thread is done
      });
    });
  });
  with_watchdog("plain", [&] {
    char buf[4] = {};
    long before = ticks;
    expect_blocks(
        "read on a plain thread", [&] { return read(p[0], buf, sizeof buf); },
        [&] { ASSERT_EQ(write(p[1], "p", 1), 1); }, 1);
    EXPECT_GT(ticks - before, 20) << "the scheduler thread stalled while a plain thread blocked";
  });
  plain_done = true;
  ASSERT_EQ(write(q[1], "q", 1), 1);
  sched_thread.join();
  for (int fd : {p[0], p[1], q[0], q[1]}) close(fd);
}

// pthread_cancel() of a plain thread blocked in a hooked call: glibc's forced unwind passes
// through the hook (which must not be noexcept on that path) and the join sees PTHREAD_CANCELED.
struct CancelCase {
  const char* name;
  void (*block)(int fd);  // blocks for good on fd, the read end of an empty pipe
};

void* run_case(void* arg) {
  auto* c = static_cast<CancelCase*>(arg);
  int p[2];
  if (pipe(p) != 0) return nullptr;
  pthread_cleanup_push(
      [](void* fds) {
        close(static_cast<int*>(fds)[0]);
        close(static_cast<int*>(fds)[1]);
      },
      p);
  c->block(p[0]);
  pthread_cleanup_pop(1);
  return nullptr;
}

TEST(HookPassthrough, CancelOfAThreadBlockedInAHookedCall) {
#if COIL_ASAN
  // GCC 12's libasan CHECK-fails inside __asan_handle_no_return (describing a stack address for
  // its sigaltstack interceptor) while glibc's forced unwind of a cancelled thread runs through
  // this test's frames; the same cancellations in a small program linked with coil's ASan build
  // pass, so the runtime is not what it trips on.
  GTEST_SKIP() << "ASan CHECK-fails during pthread_cancel's forced unwind in this test";
#endif
  CancelCase cases[] = {
      {"read",
       [](int fd) {
         char b;
         (void)!read(fd, &b, 1);
       }},
      {"readv",
       [](int fd) {
         char b;
         iovec v{&b, 1};
         (void)!readv(fd, &v, 1);
       }},
      {"poll",
       [](int fd) {
         pollfd pf{fd, POLLIN, 0};
         (void)!poll(&pf, 1, -1);
       }},
      {"select",
       [](int fd) {
         fd_set r;
         FD_ZERO(&r);
         FD_SET(fd, &r);
         (void)!select(fd + 1, &r, nullptr, nullptr, nullptr);
       }},
      {"nanosleep",
       [](int) {
         timespec t{1000, 0};
         nanosleep(&t, nullptr);
       }},
      {"sleep", [](int) { sleep(1000); }},
      {"accept",
       [](int) {
         int s = socket(AF_INET, SOCK_STREAM, 0);
         sockaddr_in a{};
         a.sin_family = AF_INET;
         a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
         (void)!bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
         (void)!listen(s, 1);
         pthread_cleanup_push([](void* fd) { close(*static_cast<int*>(fd)); }, &s);
         (void)!accept(s, nullptr, nullptr);
         pthread_cleanup_pop(1);
       }},
  };
  for (CancelCase& c : cases) {
    with_watchdog(c.name, [&] {
      pthread_t t;
      ASSERT_EQ(pthread_create(&t, nullptr, run_case, &c), 0);
      std::this_thread::sleep_for(20ms);  // into the call
      ASSERT_EQ(pthread_cancel(t), 0);
      void* result = nullptr;
      ASSERT_EQ(pthread_join(t, &result), 0);
      EXPECT_EQ(result, PTHREAD_CANCELED) << c.name;
    });
  }
}

// A program started with posix_spawn sees the kernel's file description,
// not the hooks' view of it: a pipe the user made blocking must be blocking
// for the child too, so that its read waits for the parent's late write.
TEST(HookDiffExec, ChildProcessReadsAPipeMadeInACoroutine) {
  expect_same([](Ctx& c) {
    int in[2], out[2];
    c.ret("pipe for the child's stdin", pipe2(in, O_CLOEXEC));
    c.ret("pipe for the child's stdout", pipe2(out, O_CLOEXEC));
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, out[1], 2);
    char sh[] = "/bin/sh", dash_c[] = "-c";
    char script[] = "read line; echo \"got:$line\"";
    char* argv[] = {sh, dash_c, script, nullptr};
    char* envp[] = {nullptr};
    pid_t pid = -1;
    c.err("posix_spawn /bin/sh", posix_spawn(&pid, "/bin/sh", &fa, nullptr, argv, envp));
    posix_spawn_file_actions_destroy(&fa);
    close(in[0]);
    close(out[1]);
    Ctx::pause(100ms);  // the child is reading by now
    c.ret("write a line", write(in[1], "hello\n", 6));
    close(in[1]);
    std::string text;
    char buf[256] = {};
    for (ssize_t n; (n = read(out[0], buf, sizeof buf)) > 0;) text.append(buf, std::size_t(n));
    close(out[0]);
    int status = -1;
    Stopwatch sw;  // waitpid is not hooked: poll for the child's end
    while (pid > 0 && waitpid(pid, &status, WNOHANG) == 0 && sw.elapsed() < 10s) Ctx::pause(5ms);
    c.bytes("the child printed", text.data(), long(text.size()));
    c.val("its exit status", WIFEXITED(status) ? std::to_string(WEXITSTATUS(status)) : "killed");
  });
}

}  // namespace
}  // namespace coil::test::hook
