// Differential tests of the fd hooks on pipes, eventfds and socket pairs:
// data and EOF, the user's O_NONBLOCK (fcntl, ioctl FIONBIO, SOCK_NONBLOCK,
// pipe2, eventfd flags) with F_GETFL reporting exactly what the user set,
// dup/dup2/dup3 sharing one open file description, readv/writev, and EBADF
// after close. Each scenario runs on a plain thread and as a coroutine and
// both runs must observe the same (see hook_diff.hpp).
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/uio.h>

#include <climits>
#include <cstdint>

#include "hook_diff.hpp"

namespace coil::test::hook {
namespace {

// expect_nonblocking() records that every read-side call on fd says EAGAIN
// at once and that writes into a full buffer say EAGAIN too. peer is the
// other end of fd's socket pair; it is drained afterwards.
void expect_nonblocking(Ctx& c, int fd, int peer) {
  Stopwatch sw;
  char buf[16] = {};
  c.ret("read on empty", read(fd, buf, sizeof buf));
  c.ret("recv on empty", recv(fd, buf, sizeof buf, 0));
  iovec iov{buf, sizeof buf};
  c.ret("readv on empty", readv(fd, &iov, 1));
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  c.ret("recvmsg on empty", recvmsg(fd, &msg, 0));
  std::vector<char> chunk(65536, 'n');
  ssize_t n;
  std::size_t total = 0;
  while ((n = write(fd, chunk.data(), chunk.size())) > 0) total += static_cast<std::size_t>(n);
  c.ret("write into a full buffer", n);
  c.check("wrote something before it was full", total > 0);
  c.ret("send into a full buffer", send(fd, "x", 1, 0));
  c.ret("writev into a full buffer", writev(fd, &iov, 1));
  c.within("the calls returned at once", sw.elapsed(), 0ms, 1s);
  c.check("drained what was written", drain(peer) == total);
}

// expect_blocking() records that a read on fd waits until peer writes.
void expect_blocking(Ctx& c, int fd, int peer) {
  ssize_t sent = 0;
  c.peer([&] {
    Ctx::pause(60ms);
    sent = write(peer, "wake", 4);
  });
  long t0 = c.ticks();
  Stopwatch sw;
  char buf[16] = {};
  ssize_t n = c.ret("blocking read", read(fd, buf, sizeof buf));
  c.within("the read waited for the writer", sw.elapsed(), 50ms, 10s);
  c.expect_yielded(t0, "a blocking read");
  c.bytes("read got", buf, n);
  c.join_peers();
  c.ret("the peer's write", sent);
}

TEST(HookDiffIo, PipeDataThenEof) {
  expect_same([](Ctx& c) {
    int p[2];
    c.ret("pipe", pipe(p));
    getfl(c, "F_GETFL read end", p[0]);
    getfl(c, "F_GETFL write end", p[1]);
    c.ret("F_GETFD", fcntl(p[0], F_GETFD));
    c.ret("write", write(p[1], "hello", 5));
    char buf[16] = {};
    ssize_t n = c.ret("read", read(p[0], buf, sizeof buf));
    c.bytes("read got", buf, n);
    c.ret("read of 0 bytes on an empty pipe", read(p[0], buf, 0));
    c.ret("write of 0 bytes", write(p[1], buf, 0));
    c.ret("close write end", close(p[1]));
    c.ret("read at EOF", read(p[0], buf, sizeof buf));
    c.ret("read at EOF again", read(p[0], buf, sizeof buf));
    c.ret("close read end", close(p[0]));
  });
}

TEST(HookDiffIo, BlockingPipeReadWaitsForTheWriter) {
  expect_same([](Ctx& c) {
    int p[2];
    c.ret("pipe", pipe(p));
    expect_blocking(c, p[0], p[1]);
    // A blocking write into a full pipe waits for the reader.
    std::vector<char> big = pattern(1 << 20, 7);
    std::string got;
    c.peer([&] {
      Ctx::pause(60ms);
      std::vector<char> buf(65536);
      while (got.size() < big.size()) {
        ssize_t n = read(p[0], buf.data(), buf.size());
        if (n <= 0) break;
        got.append(buf.data(), static_cast<std::size_t>(n));
      }
    });
    long t0 = c.ticks();
    c.ret("blocking write of 1 MiB into a pipe", write(p[1], big.data(), big.size()));
    c.expect_yielded(t0, "a blocking write into a full pipe");
    c.join_peers();
    c.check("the reader got the same bytes", got == std::string(big.begin(), big.end()));
    close(p[0]);
    close(p[1]);
  });
}

TEST(HookDiffIo, Pipe2NonblockAndCloexecFlags) {
  expect_same([](Ctx& c) {
    int p[2];
    c.ret("pipe2 O_NONBLOCK|O_CLOEXEC", pipe2(p, O_NONBLOCK | O_CLOEXEC));
    getfl(c, "F_GETFL read end", p[0]);
    getfl(c, "F_GETFL write end", p[1]);
    c.ret("F_GETFD", fcntl(p[1], F_GETFD));
    char buf[128] = {};
    c.ret("read on empty", read(p[0], buf, sizeof buf));
    std::vector<char> big = pattern(200000);
    c.ret("write of 200000 bytes", write(p[1], big.data(), big.size()));
    c.ret("write when full", write(p[1], big.data(), 10));
    c.ret("read 100", read(p[0], buf, 100));
    c.ret("write of PIPE_BUF with no free slot (atomic)", write(p[1], big.data(), PIPE_BUF));
    c.ret("close read end", close(p[0]));
    c.ret("write with no reader", write(p[1], big.data(), 1));
    c.ret("close write end", close(p[1]));
    c.ret("pipe2 with a bad flag", pipe2(p, O_APPEND));
  });
}

TEST(HookDiffIo, PipeClearingNonblockMakesReadsBlock) {
  expect_same([](Ctx& c) {
    int p[2];
    c.ret("pipe2 O_NONBLOCK", pipe2(p, O_NONBLOCK));
    int fl = fcntl(p[0], F_GETFL);
    c.ret("F_SETFL without O_NONBLOCK", fcntl(p[0], F_SETFL, fl & ~O_NONBLOCK));
    getfl(c, "F_GETFL read end", p[0]);
    expect_blocking(c, p[0], p[1]);
    close(p[0]);
    close(p[1]);
  });
}

TEST(HookDiffIo, FcntlNonblockOnASocketPair) {
  expect_same([](Ctx& c) {
    auto [a, b] = unix_pair(c, SOCK_STREAM);
    getfl(c, "F_GETFL of a new socket", a);
    int fl = fcntl(a, F_GETFL);
    c.ret("F_SETFL |O_NONBLOCK", fcntl(a, F_SETFL, fl | O_NONBLOCK));
    getfl(c, "F_GETFL after setting", a);
    getfl(c, "F_GETFL of the other end", b);
    expect_nonblocking(c, a, b);
    c.ret("F_SETFL without O_NONBLOCK", fcntl(a, F_SETFL, fl & ~O_NONBLOCK));
    getfl(c, "F_GETFL after clearing", a);
    expect_blocking(c, a, b);
    c.ret("F_SETFL O_NONBLOCK|O_APPEND", fcntl(a, F_SETFL, O_NONBLOCK | O_APPEND));
    getfl(c, "F_GETFL with O_APPEND", a);
    c.ret("F_SETFL 0", fcntl(a, F_SETFL, 0));
    getfl(c, "F_GETFL after F_SETFL 0", a);
    close(a);
    close(b);
  });
}

TEST(HookDiffIo, IoctlFionbioOnASocketPair) {
  expect_same([](Ctx& c) {
    auto [a, b] = unix_pair(c, SOCK_STREAM);
    int on = 1, off = 0;
    c.ret("ioctl FIONBIO 1", ioctl(a, FIONBIO, &on));
    getfl(c, "F_GETFL after FIONBIO 1", a);
    expect_nonblocking(c, a, b);
    c.ret("ioctl FIONBIO 0", ioctl(a, FIONBIO, &off));
    getfl(c, "F_GETFL after FIONBIO 0", a);
    expect_blocking(c, a, b);
    c.ret("ioctl FIONBIO 1 again", ioctl(a, FIONBIO, &on));
    c.ret("F_SETFL 0 clears it", fcntl(a, F_SETFL, 0));
    getfl(c, "F_GETFL", a);
    int avail = -1;
    c.ret("write", write(b, "abc", 3));
    c.ret("ioctl FIONREAD", ioctl(a, FIONREAD, &avail));
    c.val("FIONREAD says", avail);
    close(a);
    close(b);
  });
}

TEST(HookDiffIo, SockNonblockAtSocketpair) {
  expect_same([](Ctx& c) {
    auto [a, b] = unix_pair(c, SOCK_STREAM | SOCK_NONBLOCK);
    getfl(c, "F_GETFL a", a);
    getfl(c, "F_GETFL b", b);
    expect_nonblocking(c, a, b);
    expect_nonblocking(c, b, a);
    close(a);
    close(b);
  });
}

TEST(HookDiffIo, NewFdsReportNoNonblockUnlessAsked) {
  expect_same([](Ctx& c) {
    int s = c.fd("socket", socket(AF_INET, SOCK_STREAM, 0));
    getfl(c, "F_GETFL socket", s);
    int u = c.fd("udp socket", socket(AF_INET, SOCK_DGRAM, 0));
    getfl(c, "F_GETFL udp socket", u);
    int x = c.fd("unix socket", socket(AF_UNIX, SOCK_DGRAM, 0));
    getfl(c, "F_GETFL unix socket", x);
    int e = c.fd("eventfd", eventfd(0, 0));
    getfl(c, "F_GETFL eventfd", e);
    int p[2];
    c.ret("pipe2 0", pipe2(p, 0));
    getfl(c, "F_GETFL pipe2 read end", p[0]);
    int d = c.fd("dup of the socket", dup(s));
    getfl(c, "F_GETFL dup", d);
    int ns = c.fd("socket SOCK_NONBLOCK", socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0));
    getfl(c, "F_GETFL SOCK_NONBLOCK socket", ns);
    for (int fd : {s, u, x, e, p[0], p[1], d, ns}) close(fd);
  });
}

TEST(HookDiffIo, DupSharesTheFileDescriptionAndSurvivesClose) {
  expect_same([](Ctx& c) {
    auto [a, b] = unix_pair(c, SOCK_STREAM);
    int d = c.fd("dup", dup(a));
    char buf[16] = {};
    c.ret("write via the dup", write(d, "one", 3));
    c.bytes("peer read", buf, read(b, buf, sizeof buf));
    c.ret("close the original", close(a));
    c.ret("write via the dup after closing the original", write(d, "two", 3));
    c.bytes("peer read", buf, read(b, buf, sizeof buf));
    expect_blocking(c, d, b);
    // Status flags belong to the open file description that dups share.
    int e = c.fd("dup of the dup", dup(d));
    int fl = fcntl(d, F_GETFL);
    c.ret("F_SETFL O_NONBLOCK on one", fcntl(d, F_SETFL, fl | O_NONBLOCK));
    getfl(c, "F_GETFL of the other", e);
    c.ret("recv on the other", recv(e, buf, sizeof buf, 0));
    c.ret("F_SETFL without O_NONBLOCK on the other", fcntl(e, F_SETFL, fl));
    getfl(c, "F_GETFL of the first", d);
    expect_blocking(c, d, b);
    int f = c.fd("F_DUPFD_CLOEXEC", fcntl(e, F_DUPFD_CLOEXEC, 0));
    c.ret("F_GETFD of it", fcntl(f, F_GETFD));
    int on = 1;
    c.ret("ioctl FIONBIO on the F_DUPFD copy", ioctl(f, FIONBIO, &on));
    getfl(c, "F_GETFL of the dup", d);
    c.ret("recv on the dup", recv(d, buf, sizeof buf, 0));
    c.ret("F_SETFL 0", fcntl(f, F_SETFL, 0));
    c.ret("close the F_DUPFD copy", close(f));
    expect_blocking(c, e, b);
    for (int fd : {d, e}) close(fd);
    close(b);
  });
}

TEST(HookDiffIo, Dup2AndDup3) {
  expect_same([](Ctx& c) {
    auto [a, b] = unix_pair(c, SOCK_STREAM);
    int p[2];
    c.ret("pipe", pipe(p));
    int r = dup2(a, p[0]);  // replaces an open pipe end silently
    c.check("dup2 onto an open fd returns that fd", r == p[0]);
    c.ret("write via the dup2 copy", write(p[0], "dup2", 4));
    char buf[16] = {};
    c.bytes("peer read", buf, read(b, buf, sizeof buf));
    c.check("dup2 of an fd onto itself returns it", dup2(a, a) == a);
    c.ret("dup2 of a closed fd", dup2(p[1] + 1000, p[0]));
    r = dup3(a, p[1], O_CLOEXEC);
    c.check("dup3 returns the target", r == p[1]);
    c.ret("F_GETFD of the dup3 copy", fcntl(p[1], F_GETFD));
    c.ret("dup3 onto itself", dup3(a, a, 0));
    c.ret("dup3 with a bad flag", dup3(a, p[1], O_NONBLOCK));
    c.ret("close the original", close(a));
    expect_blocking(c, p[1], b);
    c.ret("close one copy", close(p[0]));
    expect_blocking(c, p[1], b);
    c.ret("close the last copy", close(p[1]));
    c.ret("peer read at EOF", read(b, buf, sizeof buf));
    close(b);
  });
}

TEST(HookDiffIo, ReadvWritevWithSeveralIovecs) {
  expect_same([](Ctx& c) {
    auto [a, b] = unix_pair(c, SOCK_STREAM);
    char w1[] = "ab", w2[] = "cde", w3[] = "fghij";
    iovec out[3] = {{w1, 2}, {w2, 3}, {w3, 5}};
    c.ret("writev 3 iovecs", writev(a, out, 3));
    char x[4], y[4], z[8];
    iovec in[3] = {{x, 4}, {y, 4}, {z, 8}};
    c.ret("readv 3 iovecs", readv(b, in, 3));
    c.bytes("first", x, 4);
    c.bytes("second", y, 4);
    c.bytes("third", z, 2);
    c.ret("writev of 0 iovecs", writev(a, out, 0));
    c.ret("readv of 0 iovecs", readv(b, in, 0));
    std::vector<iovec> many(IOV_MAX + 1, iovec{w1, 1});
    c.ret("writev of IOV_MAX+1 iovecs", writev(a, many.data(), IOV_MAX + 1));
    c.ret("readv of -1 iovecs", readv(b, in, opaque(-1)));
    // A blocking readv waits for a writev from the peer.
    ssize_t sent = 0;
    c.peer([&] {
      Ctx::pause(60ms);
      sent = writev(a, out, 3);
    });
    long t0 = c.ticks();
    c.ret("blocking readv", readv(b, in, 3));
    c.expect_yielded(t0, "a blocking readv");
    c.join_peers();
    c.ret("the peer's writev", sent);
    c.bytes("first", x, 4);
    // A big writev with a slow reader is written completely.
    std::vector<char> big = pattern(3 << 20, 3);
    iovec parts[4] = {{big.data(), 1},
                      {big.data() + 1, 1 << 20},
                      {big.data() + 1 + (1 << 20), 0},
                      {big.data() + 1 + (1 << 20), big.size() - 1 - (1 << 20)}};
    std::string got;
    c.peer([&] {
      std::vector<char> buf(100000);
      while (got.size() < big.size()) {
        Ctx::pause(1ms);
        ssize_t n = read(b, buf.data(), buf.size());
        if (n <= 0) break;
        got.append(buf.data(), static_cast<std::size_t>(n));
      }
    });
    t0 = c.ticks();
    c.ret("blocking writev of 3 MiB", writev(a, parts, 4));
    c.expect_yielded(t0, "a blocking writev into a full socket");
    c.join_peers();
    c.check("the reader got the same bytes", got == std::string(big.begin(), big.end()));
    close(a);
    close(b);
  });
}

TEST(HookDiffIo, EventfdBlockingReadAndWrite) {
  expect_same([](Ctx& c) {
    int e = c.fd("eventfd", eventfd(0, EFD_CLOEXEC));
    getfl(c, "F_GETFL", e);
    std::uint64_t v = 0;
    {
      ssize_t sent = 0;
      c.peer([&] {
        Ctx::pause(60ms);
        std::uint64_t five = 5;
        sent = write(e, &five, 8);
      });
      long t0 = c.ticks();
      Stopwatch sw;
      c.ret("blocking read", read(e, &v, 8));
      c.within("the read waited", sw.elapsed(), 50ms, 10s);
      c.expect_yielded(t0, "a blocking eventfd read");
      c.join_peers();
      c.ret("the peer's write", sent);
      c.val("value", std::to_string(v));
    }
    c.ret("read into 4 bytes", read(e, &v, 4));
    v = ~std::uint64_t{0};
    c.ret("write of 2^64-1", write(e, &v, 8));
    v = ~std::uint64_t{0} - 1;
    c.ret("write of the maximum", write(e, &v, 8));
    {
      // The counter is full: a write waits until the peer reads.
      std::uint64_t drained = 0;
      c.peer([&] {
        Ctx::pause(60ms);
        if (read(e, &drained, 8) != 8) drained = 0;
      });
      long t0 = c.ticks();
      v = 1;
      c.ret("blocking write onto a full counter", write(e, &v, 8));
      c.expect_yielded(t0, "a blocking eventfd write");
      c.join_peers();
      c.check("the peer read the maximum", drained == ~std::uint64_t{0} - 1);
      c.ret("read", read(e, &v, 8));
      c.val("value", std::to_string(v));
    }
    c.ret("close", close(e));
    int n = c.fd("eventfd EFD_NONBLOCK|EFD_SEMAPHORE", eventfd(3, EFD_NONBLOCK | EFD_SEMAPHORE));
    getfl(c, "F_GETFL", n);
    for (int i = 0; i < 4; ++i) c.ret("semaphore read", read(n, &v, 8));
    c.ret("close", close(n));
  });
}

TEST(HookDiffIo, EbadfAndEnotsockOnClosedAndWrongFds) {
  expect_same([](Ctx& c) {
    auto [a, b] = unix_pair(c, SOCK_STREAM);
    c.ret("write before close", write(a, "x", 1));
    c.ret("close", close(a));
    c.ret("close again", close(a));
    char buf[8] = {};
    iovec iov{buf, sizeof buf};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    sockaddr_in addr = loopback(9);
    socklen_t len = sizeof addr;
    int one = 1;
    c.ret("read", read(a, buf, sizeof buf));
    c.ret("write", write(a, buf, 1));
    c.ret("readv", readv(a, &iov, 1));
    c.ret("writev", writev(a, &iov, 1));
    c.ret("recv", recv(a, buf, sizeof buf, 0));
    c.ret("send", send(a, buf, 1, 0));
    c.ret("recvfrom", recvfrom(a, buf, sizeof buf, 0, nullptr, nullptr));
    c.ret("sendto", sendto(a, buf, 1, 0, nullptr, 0));
    c.ret("recvmsg", recvmsg(a, &msg, 0));
    c.ret("sendmsg", sendmsg(a, &msg, 0));
    c.ret("accept", accept(a, reinterpret_cast<sockaddr*>(&addr), &len));
    c.ret("accept4", accept4(a, nullptr, nullptr, SOCK_NONBLOCK));
    c.ret("connect", connect(a, reinterpret_cast<sockaddr*>(&addr), sizeof addr));
    c.ret("shutdown", shutdown(a, SHUT_RDWR));
    c.ret("fcntl F_GETFL", fcntl(a, F_GETFL));
    c.ret("fcntl F_SETFL", fcntl(a, F_SETFL, O_NONBLOCK));
    c.ret("ioctl FIONBIO", ioctl(a, FIONBIO, &one));
    c.ret("setsockopt", setsockopt(a, SOL_SOCKET, SO_RCVTIMEO, &iov, 0));
    c.ret("getsockopt", getsockopt(a, SOL_SOCKET, SO_ERROR, &one, &len));
    c.ret("dup", dup(a));
    c.ret("dup2", dup2(a, b));
    c.ret("dup3", dup3(a, b, 0));
    c.ret("read of fd -1", read(-1, buf, 1));
    c.ret("close of fd -1", close(-1));
    c.ret("read of fd 2^29", read(1 << 29, buf, 1));
    c.ret("close of fd 2^29", close(1 << 29));
    pollfd pfd{a, POLLIN, 0};
    c.ret("poll", poll(&pfd, 1, 0));
    c.val("revents", poll_names(pfd.revents));
    int p[2];
    c.ret("pipe", pipe(p));
    c.ret("recv on a pipe", recv(p[0], buf, sizeof buf, 0));
    c.ret("send on a pipe", send(p[1], buf, 1, 0));
    c.ret("accept on a pipe", accept(p[0], nullptr, nullptr));
    c.ret("connect on a pipe", connect(p[0], reinterpret_cast<sockaddr*>(&addr), sizeof addr));
    c.ret("setsockopt on a pipe", setsockopt(p[0], SOL_SOCKET, SO_RCVTIMEO, &iov, 0));
    c.ret("write to the read end of a pipe", write(p[0], buf, 1));
    c.ret("read from the write end of a pipe", read(p[1], buf, 1));
    c.ret("read into a bad buffer", read(b, opaque(reinterpret_cast<void*>(8)), 1));
    for (int fd : {b, p[0], p[1]}) close(fd);
  });
}

}  // namespace
}  // namespace coil::test::hook
