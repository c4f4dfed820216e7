// Differential tests of the hooks on stream sockets (TCP over 127.0.0.1 and
// unix): data and EOF, every receive call blocking until a peer writes,
// 8 MiB writes (complete when blocking, partial when not), recv flags
// (MSG_PEEK, MSG_DONTWAIT, MSG_WAITALL, MSG_TRUNC), zero-length calls,
// sendfile, shutdown, and EPIPE with SIGPIPE exactly as the kernel raises it.
// Each scenario runs on a plain thread and as a coroutine (hook_diff.hpp).
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/uio.h>

#include <atomic>
#include <string>

#include "hook_diff.hpp"

namespace coil::test::hook {
namespace {

constexpr std::size_t k8MiB = 8u << 20;

// reader() returns a peer body that waits `first`, then reads `want` bytes
// from fd in chunks of `chunk`, pausing `pause` before each, and appends
// them to got.
auto reader(int fd, std::size_t want, std::string& got, std::size_t chunk, Duration pause,
            Duration first = 100ms) {
  return [fd, want, &got, chunk, pause, first] {
    Ctx::pause(first);
    std::vector<char> buf(chunk);
    while (got.size() < want) {
      if (pause > Duration::zero()) Ctx::pause(pause);
      ssize_t n = read(fd, buf.data(), buf.size());
      if (n <= 0) break;
      got.append(buf.data(), static_cast<std::size_t>(n));
    }
  };
}

// Each way of receiving, applied to a blocking stream socket.
void expect_every_receive_blocks(Ctx& c, int fd, int peer) {
  char buf[32] = {};
  iovec iov{buf, sizeof buf};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  sockaddr_storage from{};
  socklen_t from_len = sizeof from;
  using Call = std::function<ssize_t()>;
  std::pair<const char*, Call> calls[] = {
      {"read", [&] { return read(fd, buf, sizeof buf); }},
      {"readv", [&] { return readv(fd, &iov, 1); }},
      {"recv", [&] { return recv(fd, buf, sizeof buf, 0); }},
      {"recvfrom",
       [&] {
         return recvfrom(fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &from_len);
       }},
      {"recvmsg", [&] { return recvmsg(fd, &msg, 0); }},
  };
  for (auto& [name, call] : calls) {
    c.peer([&] {
      Ctx::pause(kPeerDelay);
      if (write(peer, "wake up", 7) != 7) ADD_FAILURE() << "peer write failed";
    });
    ssize_t n = c.timed(std::string("blocking ") + name, kWaitedLo, kWaitedHi, call);
    c.bytes("got", buf, n);
    c.join_peers();
  }
  c.val("recvfrom's address length on a stream socket", from_len);
  c.val("recvmsg's msg_flags", msg.msg_flags);
}

TEST(HookDiffStream, TcpDataEofAndBlockingReceives) {
  expect_same([](Ctx& c) {
    TcpConn t = tcp_conn(c);
    getfl(c, "F_GETFL client", t.client);
    getfl(c, "F_GETFL accepted", t.server);
    expect_every_receive_blocks(c, t.server, t.client);
    expect_every_receive_blocks(c, t.client, t.server);
    c.ret("send", send(t.client, "hello", 5, 0));
    char buf[16] = {};
    c.bytes("recv", buf, recv(t.server, buf, sizeof buf, 0));
    c.ret("shutdown SHUT_WR", shutdown(t.client, SHUT_WR));
    c.ret("recv at EOF", recv(t.server, buf, sizeof buf, 0));
    c.ret("read at EOF", read(t.server, buf, sizeof buf));
    c.ret("send back after the peer's SHUT_WR", send(t.server, "bye", 3, 0));
    c.bytes("read", buf, read(t.client, buf, sizeof buf));
    c.ret("close server", close(t.server));
    c.ret("read after the peer closed", read(t.client, buf, sizeof buf));
    c.ret("close client", close(t.client));
  });
}

TEST(HookDiffStream, UnixStreamBlockingReceives) {
  expect_same([](Ctx& c) {
    auto [a, b] = unix_pair(c, SOCK_STREAM);
    expect_every_receive_blocks(c, a, b);
    c.ret("close b", close(b));
    char buf[8] = {};
    c.ret("read at EOF", read(a, buf, sizeof buf));
    c.ret("close a", close(a));
  });
}

// A blocking 8 MiB write returns 8 MiB once a slow reader has taken it.
void expect_complete_big_write(Ctx& c, int fd, int peer) {
  std::vector<char> big = pattern(k8MiB, 11);
  std::string got;
  c.peer(reader(peer, big.size(), got, 256 * 1024, 2ms));
  c.timed("blocking write of 8 MiB to a slow reader", 90ms, 20s,
          [&] { return write(fd, big.data(), big.size()); });
  c.join_peers();
  c.check("the reader got the same bytes", got == std::string(big.begin(), big.end()));
}

// A non-blocking 8 MiB write is partial; the peer then reads exactly the
// bytes it wrote. With exact_eagain, the next write must say EAGAIN (on TCP
// a late ACK may make room, so it is not checked there).
void expect_partial_big_write(Ctx& c, int fd, int peer, bool exact_eagain) {
  std::vector<char> big = pattern(k8MiB, 12);
  ssize_t n = write(fd, big.data(), big.size());
  c.check("non-blocking write of 8 MiB is partial", n > 0 && n < static_cast<ssize_t>(k8MiB));
  if (exact_eagain) c.ret("the next write", write(fd, big.data(), big.size()));
  set_timeout(c, peer, SO_RCVTIMEO, 5s);  // a safety net for the reads below
  std::string got;
  std::vector<char> buf(1 << 16);
  while (n > 0 && got.size() < static_cast<std::size_t>(n)) {
    ssize_t m = recv(peer, buf.data(), std::min(buf.size(), n - got.size()), 0);
    if (m <= 0) break;
    got.append(buf.data(), static_cast<std::size_t>(m));
  }
  c.check("the reader got exactly the bytes written",
          n > 0 && got == std::string(big.begin(), big.begin() + n));
  c.ret("and nothing more", recv(peer, buf.data(), buf.size(), MSG_DONTWAIT));
}

TEST(HookDiffStream, TcpBigWrites) {
  expect_same([](Ctx& c) {
    TcpConn t = tcp_conn(c);
    expect_complete_big_write(c, t.client, t.server);
    expect_complete_big_write(c, t.server, t.client);
    int on = 1;
    c.ret("ioctl FIONBIO", ioctl(t.client, FIONBIO, &on));
    expect_partial_big_write(c, t.client, t.server, false);
    t.close_both();
  });
}

TEST(HookDiffStream, UnixStreamBigWrites) {
  expect_same([](Ctx& c) {
    auto [a, b] = unix_pair(c, SOCK_STREAM);
    expect_complete_big_write(c, a, b);
    c.ret("F_SETFL O_NONBLOCK", fcntl(a, F_SETFL, O_NONBLOCK));
    expect_partial_big_write(c, a, b, true);
    close(a);
    close(b);
  });
}

TEST(HookDiffStream, RecvPeekDontwaitWaitallTrunc) {
  expect_same([](Ctx& c) {
    TcpConn t = tcp_conn(c);
    int s = t.server;
    char buf[32] = {};
    c.ret("recv MSG_DONTWAIT on empty", recv(s, buf, sizeof buf, MSG_DONTWAIT));
    getfl(c, "F_GETFL after MSG_DONTWAIT", s);
    c.ret("send", send(t.client, "peekaboo", 8, 0));
    c.bytes("recv MSG_PEEK 4", buf, recv(s, buf, 4, MSG_PEEK));
    c.bytes("recv MSG_PEEK|MSG_DONTWAIT", buf, recv(s, buf, sizeof buf, MSG_PEEK | MSG_DONTWAIT));
    c.bytes("recv", buf, recv(s, buf, sizeof buf, 0));
    // MSG_PEEK waits like any receive, and leaves the data.
    c.peer([&] {
      Ctx::pause(kPeerDelay);
      if (send(t.client, "later", 5, 0) != 5) ADD_FAILURE();
    });
    ssize_t n = c.timed("blocking recv MSG_PEEK", kWaitedLo, kWaitedHi,
                        [&] { return recv(s, buf, sizeof buf, MSG_PEEK); });
    c.bytes("peeked", buf, n);
    c.join_peers();
    c.bytes("recv MSG_DONTWAIT", buf, recv(s, buf, sizeof buf, MSG_DONTWAIT));
    // MSG_WAITALL gathers several writes.
    c.peer([&] {
      for (const char* piece : {"abc", "defg", "hij"}) {
        Ctx::pause(30ms);
        if (send(t.client, piece, strlen(piece), 0) < 0) ADD_FAILURE();
      }
    });
    n = c.timed("recv MSG_WAITALL 10", kWaitedLo, kWaitedHi,
                [&] { return recv(s, buf, 10, MSG_WAITALL); });
    c.bytes("got", buf, n);
    c.join_peers();
    // MSG_WAITALL with a receive timeout returns what came before it.
    set_timeout(c, s, SO_RCVTIMEO, 200ms);
    c.ret("send 3", send(t.client, "xyz", 3, 0));
    n = c.timed("recv MSG_WAITALL 10 with SO_RCVTIMEO", 190ms, 2s,
                [&] { return recv(s, buf, 10, MSG_WAITALL); });
    c.bytes("got", buf, n);
    c.timed("recv MSG_WAITALL 10 with SO_RCVTIMEO, nothing sent", 190ms, 2s,
            [&] { return recv(s, buf, 10, MSG_WAITALL); });
    set_timeout(c, s, SO_RCVTIMEO, 0ms);
    // MSG_TRUNC on TCP discards the bytes.
    c.ret("send 6", send(t.client, "123456", 6, 0));
    c.ret("recv MSG_TRUNC 4", recv(s, nullptr, 4, MSG_TRUNC));
    c.bytes("then recv", buf, recv(s, buf, sizeof buf, 0));
    // MSG_WAITALL stops at EOF.
    c.ret("send 2", send(t.client, "eo", 2, 0));
    c.ret("shutdown SHUT_WR", shutdown(t.client, SHUT_WR));
    n = c.timed("recv MSG_WAITALL 10 up to EOF", kAtOnceLo, kAtOnceHi,
                [&] { return recv(s, buf, 10, MSG_WAITALL); });
    c.bytes("got", buf, n);
    t.close_both();
    // MSG_DONTWAIT on a send into a full buffer (unix: no late ACK frees room).
    auto [a, b] = unix_pair(c, SOCK_STREAM);
    c.check("filled the send buffer", fill(a) > 0);
    c.ret("send MSG_DONTWAIT into a full buffer", send(a, "z", 1, MSG_DONTWAIT));
    c.ret("sendto MSG_DONTWAIT into a full buffer", sendto(a, "z", 1, MSG_DONTWAIT, nullptr, 0));
    close(a);
    close(b);
  });
}

TEST(HookDiffStream, ZeroLengthCallsDoNotWait) {
  expect_same([](Ctx& c) {
    TcpConn t = tcp_conn(c);
    auto [a, b] = unix_pair(c, SOCK_STREAM);
    // A safety net: if the kernel does wait, it says EAGAIN after 1 s.
    for (int fd : {t.server, a}) set_timeout(c, fd, SO_RCVTIMEO, 1s);
    char buf[4] = {};
    for (int fd : {t.server, a}) {
      const char* kind = fd == a ? " (unix)" : " (tcp)";
      c.timed(std::string("read of 0 bytes") + kind, kAtOnceLo, kAtOnceHi,
              [&] { return read(fd, buf, 0); });
      c.timed(std::string("recv of 0 bytes") + kind, kAtOnceLo, kAtOnceHi,
              [&] { return recv(fd, buf, 0, 0); });
      iovec none{buf, 0};
      c.timed(std::string("readv of an empty iovec") + kind, kAtOnceLo, kAtOnceHi,
              [&] { return readv(fd, &none, 1); });
      c.ret(std::string("write of 0 bytes") + kind, write(fd, buf, 0));
      c.ret(std::string("send of 0 bytes") + kind, send(fd, buf, 0, 0));
    }
    t.close_both();
    close(a);
    close(b);
  });
}

TEST(HookDiffStream, SendfileToASocket) {
  expect_same([](Ctx& c) {
    std::vector<char> data = pattern(4u << 20, 21);
    int file = c.fd("memfd_create", memfd_create("coil-sendfile", MFD_CLOEXEC));
    c.ret("fill the file", write(file, data.data(), data.size()));
    auto [a, b] = unix_pair(c, SOCK_STREAM);
    std::string got;
    c.peer(reader(b, data.size(), got, 128 * 1024, 1ms));
    off_t off = 0;
    c.timed("blocking sendfile of 4 MiB to a slow reader", 90ms, 20s,
            [&] { return sendfile(a, file, &off, data.size()); });
    c.join_peers();
    c.val("offset after", off);
    c.check("the reader got the file", got == std::string(data.begin(), data.end()));
    c.ret("lseek to 0", lseek(file, 0, SEEK_SET));
    got.clear();
    c.peer(reader(b, 100000, got, 65536, 0ms, 0ms));
    c.ret("sendfile of 100000 at the file position", sendfile(a, file, nullptr, 100000));
    c.join_peers();
    c.ret("the file position after", lseek(file, 0, SEEK_CUR));
    c.ret("sendfile of 0 bytes", sendfile(a, file, &off, 0));
    c.ret("sendfile at EOF", sendfile(a, file, &off, 10));
    c.ret("F_SETFL O_NONBLOCK", fcntl(a, F_SETFL, O_NONBLOCK));
    off = 0;
    ssize_t n = sendfile(a, file, &off, data.size());
    c.check("a non-blocking sendfile of 4 MiB is partial and moves the offset",
            n > 0 && n < ssize_t(data.size()) && off == n);
    c.ret("the next sendfile", sendfile(a, file, &off, data.size() - off));
    c.check("the reader gets it", drain(b) == std::size_t(off));
    int wronly = c.fd("open /dev/null O_WRONLY", open("/dev/null", O_WRONLY | O_CLOEXEC));
    c.ret("sendfile from a write-only fd", sendfile(a, wronly, nullptr, 10));
    TcpConn t = tcp_conn(c);
    off = 0;
    got.clear();
    c.peer(reader(t.server, 1 << 20, got, 65536, 0ms, 0ms));
    c.ret("sendfile of 1 MiB to a TCP socket", sendfile(t.client, file, &off, 1 << 20));
    c.join_peers();
    c.check("the reader got it", got == std::string(data.begin(), data.begin() + (1 << 20)));
    t.close_both();
    for (int fd : {wronly, file, a, b}) close(fd);
  });
}

TEST(HookDiffStream, ShutdownReadWriteAndUnconnected) {
  expect_same([](Ctx& c) {
    TcpConn t = tcp_conn(c);
    char buf[8] = {};
    c.ret("shutdown SHUT_RD", shutdown(t.server, SHUT_RD));
    c.timed("recv after SHUT_RD", kAtOnceLo, kAtOnceHi,
            [&] { return recv(t.server, buf, sizeof buf, 0); });
    c.ret("shutdown SHUT_WR", shutdown(t.server, SHUT_WR));
    c.timed("peer read sees EOF", kAtOnceLo, kAtOnceHi,
            [&] { return read(t.client, buf, sizeof buf); });
    c.ret("send after SHUT_WR, MSG_NOSIGNAL", send(t.server, "x", 1, MSG_NOSIGNAL));
    c.ret("shutdown with a bad how", shutdown(t.server, 7));
    t.close_both();
    int s = c.fd("socket", socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    c.ret("shutdown of an unconnected socket", shutdown(s, SHUT_RDWR));
    c.timed("read on an unconnected socket", kAtOnceLo, kAtOnceHi,
            [&] { return read(s, buf, sizeof buf); });
    c.timed("recv on an unconnected socket", kAtOnceLo, kAtOnceHi,
            [&] { return recv(s, buf, sizeof buf, 0); });
    c.timed("send on an unconnected socket, MSG_NOSIGNAL", kAtOnceLo, kAtOnceHi,
            [&] { return send(s, buf, 1, MSG_NOSIGNAL); });
    c.timed("accept on a socket that does not listen", kAtOnceLo, kAtOnceHi,
            [&] { return accept(s, nullptr, nullptr); });
    close(s);
    int l = tcp_listener(c);
    c.timed("read on a listening socket", kAtOnceLo, kAtOnceHi,
            [&] { return read(l, buf, sizeof buf); });
    c.timed("send on a listening socket, MSG_NOSIGNAL", kAtOnceLo, kAtOnceHi,
            [&] { return send(l, buf, 1, MSG_NOSIGNAL); });
    close(l);
  });
}

// consume_sigpipe() records whether SIGPIPE is pending (blocked in the run's
// thread by the harness) and takes it.
void consume_sigpipe(Ctx& c, std::string_view label) {
  sigset_t pending;
  sigpending(&pending);
  bool is = sigismember(&pending, SIGPIPE) == 1;
  c.check(std::string(label) + ": SIGPIPE pending", is);
  if (is) {
    sigset_t only;
    sigemptyset(&only);
    sigaddset(&only, SIGPIPE);
    timespec zero{};
    sigtimedwait(&only, nullptr, &zero);
  }
}

TEST(HookDiffStream, EpipeRaisesSigpipeUnlessMsgNosignal) {
  expect_same([](Ctx& c) {
    auto [a, b] = unix_pair(c, SOCK_STREAM);
    c.ret("close the peer", close(b));
    char buf[4] = {};
    iovec iov{buf, 1};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    c.ret("write", write(a, buf, 1));
    consume_sigpipe(c, "after write");
    c.ret("send MSG_NOSIGNAL", send(a, buf, 1, MSG_NOSIGNAL));
    consume_sigpipe(c, "after send MSG_NOSIGNAL");
    c.ret("send", send(a, buf, 1, 0));
    consume_sigpipe(c, "after send");
    c.ret("writev", writev(a, &iov, 1));
    consume_sigpipe(c, "after writev");
    c.ret("sendmsg", sendmsg(a, &msg, 0));
    consume_sigpipe(c, "after sendmsg");
    c.ret("sendmsg MSG_NOSIGNAL", sendmsg(a, &msg, MSG_NOSIGNAL));
    consume_sigpipe(c, "after sendmsg MSG_NOSIGNAL");
    c.ret("sendto", sendto(a, buf, 1, 0, nullptr, 0));
    consume_sigpipe(c, "after sendto");
    close(a);
    TcpConn t = tcp_conn(c);
    c.ret("shutdown SHUT_WR", shutdown(t.client, SHUT_WR));
    c.ret("tcp send after SHUT_WR", send(t.client, buf, 1, 0));
    consume_sigpipe(c, "after tcp send");
    c.ret("tcp write after SHUT_WR", write(t.client, buf, 1));
    consume_sigpipe(c, "after tcp write");
    t.close_both();
    int p[2];
    c.ret("pipe", pipe(p));
    close(p[0]);
    c.ret("pipe write with no reader", write(p[1], buf, 1));
    consume_sigpipe(c, "after pipe write");
    close(p[1]);
  });
}

// With a handler installed and SIGPIPE unblocked, the handler runs once per
// EPIPE without MSG_NOSIGNAL, on the calling thread.
std::atomic<int> g_sigpipes{0};
std::atomic<pthread_t> g_sigpipe_thread{};

TEST(HookDiffStream, SigpipeHandlerRunsOnTheCallingThread) {
  struct sigaction act {
  }, old{};
  act.sa_handler = [](int) {
    g_sigpipes.fetch_add(1);
    g_sigpipe_thread.store(pthread_self());
  };
  sigemptyset(&act.sa_mask);
  ASSERT_EQ(sigaction(SIGPIPE, &act, &old), 0);
  expect_same([](Ctx& c) {
    sigset_t only;
    sigemptyset(&only);
    sigaddset(&only, SIGPIPE);
    pthread_sigmask(SIG_UNBLOCK, &only, nullptr);
    g_sigpipes = 0;
    auto [a, b] = unix_pair(c, SOCK_STREAM);
    close(b);
    c.ret("write", write(a, "x", 1));
    c.val("handler ran", g_sigpipes.load());
    c.check("on this thread", pthread_equal(g_sigpipe_thread.load(), pthread_self()) != 0);
    c.ret("send MSG_NOSIGNAL", send(a, "x", 1, MSG_NOSIGNAL));
    c.val("handler ran", g_sigpipes.load());
    c.ret("send", send(a, "x", 1, 0));
    c.val("handler ran", g_sigpipes.load());
    close(a);
    pthread_sigmask(SIG_BLOCK, &only, nullptr);
  });
  sigaction(SIGPIPE, &old, nullptr);
}

TEST(HookDiffStream, SigpipeIgnored) {
  struct sigaction ign {
  }, old{};
  ign.sa_handler = SIG_IGN;
  ASSERT_EQ(sigaction(SIGPIPE, &ign, &old), 0);
  expect_same([](Ctx& c) {
    sigset_t only;
    sigemptyset(&only);
    sigaddset(&only, SIGPIPE);
    pthread_sigmask(SIG_UNBLOCK, &only, nullptr);
    auto [a, b] = unix_pair(c, SOCK_STREAM);
    close(b);
    c.ret("write with SIGPIPE ignored", write(a, "x", 1));
    c.ret("send with SIGPIPE ignored", send(a, "x", 1, 0));
    close(a);
    pthread_sigmask(SIG_BLOCK, &only, nullptr);
  });
  sigaction(SIGPIPE, &old, nullptr);
}

}  // namespace
}  // namespace coil::test::hook
