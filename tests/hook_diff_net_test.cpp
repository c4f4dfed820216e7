// Differential tests of the connection and datagram hooks: connect (refused,
// non-blocking, to a full backlog), accept/accept4 (waiting, flags, addresses),
// SO_RCVTIMEO/SO_SNDTIMEO with the kernel's errnos, UDP and unix datagrams
// (boundaries, MSG_TRUNC), unix stream sockets by address, and SCM_RIGHTS.
// Each scenario runs on a plain thread and as a coroutine (hook_diff.hpp).
#include <arpa/inet.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <sys/un.h>

#include <string>

#include "hook_diff.hpp"

namespace coil::test::hook {
namespace {

// so_error() records getsockopt(SO_ERROR).
void so_error(Ctx& c, std::string_view label, int fd) {
  int err = -1;
  socklen_t len = sizeof err;
  c.ret(std::string(label) + " getsockopt SO_ERROR",
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len));
  c.val(std::string(label) + " SO_ERROR", errno_name(err));
}

// refused_port() binds a TCP socket to 127.0.0.1 without listening: a
// connect to its port is refused, and nobody else can take the port.
int refused_port(Ctx& c, std::uint16_t* port) {
  int fd =
      c.fd("socket for a port nobody listens on", socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a = loopback(0);
  c.ret("bind", bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a));
  *port = port_of(fd);
  return fd;
}

TEST(HookDiffNet, ConnectRefused) {
  expect_same([](Ctx& c) {
    std::uint16_t port = 0;
    int holder = refused_port(c, &port);
    int s = c.fd("socket", socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    c.timed("blocking connect to a closed port", kAtOnceLo, 1s,
            [&] { return connect_to(s, port); });
    so_error(c, "after the refused connect", s);
    c.timed("connect again", kAtOnceLo, 1s, [&] { return connect_to(s, port); });
    c.ret("close", close(s));
    int n = c.fd("socket SOCK_NONBLOCK", socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0));
    c.ret("non-blocking connect to a closed port", connect_to(n, port));
    pollfd p{n, POLLOUT, 0};
    c.ret("poll POLLOUT", poll(&p, 1, 2000));
    c.val("revents", poll_names(p.revents));
    so_error(c, "non-blocking", n);
    so_error(c, "read again", n);
    c.ret("close", close(n));
    c.ret("close the port holder", close(holder));
  });
}

TEST(HookDiffNet, ConnectNonblockingAndTwice) {
  expect_same([](Ctx& c) {
    int l = tcp_listener(c);
    std::uint16_t port = port_of(l);
    int s = c.fd("socket", socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    c.ret("blocking connect", connect_to(s, port));
    c.ret("connect again on a connected socket", connect_to(s, port));
    sockaddr_in peer{};
    socklen_t len = sizeof peer;
    c.ret("getpeername", getpeername(s, reinterpret_cast<sockaddr*>(&peer), &len));
    c.check("the peer is the listener", ntohs(peer.sin_port) == port);
    int n = c.fd("socket SOCK_NONBLOCK", socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0));
    c.ret("non-blocking connect", connect_to(n, port));
    pollfd p{n, POLLOUT, 0};
    c.ret("poll POLLOUT", poll(&p, 1, 2000));
    c.val("revents", poll_names(p.revents));
    so_error(c, "after connecting", n);
    c.ret("connect again after it completed", connect_to(n, port));
    int f = c.fd("socket with fcntl O_NONBLOCK", socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    c.ret("F_SETFL O_NONBLOCK", fcntl(f, F_SETFL, O_NONBLOCK));
    c.ret("connect", connect_to(f, port));
    sockaddr_in bad{};
    bad.sin_family = AF_INET6;
    int b = c.fd("socket", socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    c.ret("connect with a wrong family", connect(b, reinterpret_cast<sockaddr*>(&bad), sizeof bad));
    c.ret("connect with a short address", connect(b, reinterpret_cast<sockaddr*>(&bad), 4));
    for (int fd : {s, n, f, b, l}) close(fd);
  });
}

TEST(HookDiffNet, AcceptWaitsForAClientAndReportsItsAddress) {
  expect_same([](Ctx& c) {
    int l = tcp_listener(c);
    std::uint16_t port = port_of(l);
    int client = -1;
    c.peer([&] {
      Ctx::pause(kPeerDelay);
      client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (connect_to(client, port) != 0) ADD_FAILURE() << "peer connect: " << errno_name(errno);
    });
    sockaddr_storage from{};
    socklen_t len = sizeof from;
    int a = c.timed_fd("blocking accept", kWaitedLo, kWaitedHi,
                       [&] { return accept(l, reinterpret_cast<sockaddr*>(&from), &len); });
    c.join_peers();
    c.val("addrlen", len);
    auto* in = reinterpret_cast<sockaddr_in*>(&from);
    c.val("family", in->sin_family == AF_INET ? "AF_INET" : "other");
    c.check(
        "address is 127.0.0.1 and the client's port",
        in->sin_addr.s_addr == htonl(INADDR_LOOPBACK) && ntohs(in->sin_port) == port_of(client));
    getfl(c, "F_GETFL accepted", a);
    // A short address buffer is filled partly; addrlen says the real size.
    c.peer([&] {
      Ctx::pause(kPeerDelay);
      int d = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (connect_to(d, port) != 0) ADD_FAILURE();
      close(d);
    });
    len = 4;
    int a2 = c.timed_fd(
        "blocking accept4 SOCK_NONBLOCK with a 4-byte address buffer", kWaitedLo, kWaitedHi, [&] {
          return accept4(l, reinterpret_cast<sockaddr*>(&from), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        });
    c.join_peers();
    c.val("addrlen", len);
    getfl(c, "F_GETFL accept4 SOCK_NONBLOCK", a2);
    c.ret("F_GETFD", fcntl(a2, F_GETFD));
    char buf[4] = {};
    c.ret("read on it (the peer closed)", read(a2, buf, sizeof buf));
    c.ret("accept4 with a bad flag", accept4(l, nullptr, nullptr, O_APPEND));
    for (int fd : {a, a2, client, l}) close(fd);
  });
}

TEST(HookDiffNet, NonblockingListenerAndTheSocketsItAccepts) {
  expect_same([](Ctx& c) {
    int l = tcp_listener(c, 16, SOCK_NONBLOCK);
    getfl(c, "F_GETFL listener", l);
    c.timed_fd("accept with nothing pending", kAtOnceLo, kAtOnceHi,
               [&] { return accept(l, nullptr, nullptr); });
    c.timed_fd("accept4 with nothing pending", kAtOnceLo, kAtOnceHi,
               [&] { return accept4(l, nullptr, nullptr, SOCK_CLOEXEC); });
    int client = c.fd("socket", socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    c.ret("connect", connect_to(client, port_of(l)));
    pollfd p{l, POLLIN, 0};
    c.ret("poll the listener", poll(&p, 1, 2000));
    // Linux: an accepted socket does not inherit the listener's O_NONBLOCK.
    int a = c.fd("accept", accept(l, nullptr, nullptr));
    getfl(c, "F_GETFL accepted", a);
    c.peer([&] {
      Ctx::pause(kPeerDelay);
      if (write(client, "late", 4) != 4) ADD_FAILURE();
    });
    char buf[8] = {};
    ssize_t n = c.timed("blocking read on the accepted socket", kWaitedLo, kWaitedHi,
                        [&] { return read(a, buf, sizeof buf); });
    c.bytes("got", buf, n);
    c.join_peers();
    int on = 0;
    c.ret("ioctl FIONBIO 0 on the listener", ioctl(l, FIONBIO, &on));
    getfl(c, "F_GETFL listener", l);
    for (int fd : {a, client, l}) close(fd);
  });
}

TEST(HookDiffNet, ReceiveTimeouts) {
  expect_same([](Ctx& c) {
    TcpConn t = tcp_conn(c);
    int s = t.server;
    set_timeout(c, s, SO_RCVTIMEO, 200ms);
    timeval tv{};
    socklen_t len = sizeof tv;
    c.ret("getsockopt SO_RCVTIMEO", getsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, &len));
    c.val("it reads back", std::to_string(tv.tv_sec) + " s " + std::to_string(tv.tv_usec) + " us");
    char buf[8] = {};
    iovec iov{buf, sizeof buf};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    c.timed("recv", 190ms, 2s, [&] { return recv(s, buf, sizeof buf, 0); });
    c.timed("read", 190ms, 2s, [&] { return read(s, buf, sizeof buf); });
    c.timed("readv", 190ms, 2s, [&] { return readv(s, &iov, 1); });
    c.timed("recvmsg", 190ms, 2s, [&] { return recvmsg(s, &msg, 0); });
    c.timed("recvfrom", 190ms, 2s,
            [&] { return recvfrom(s, buf, sizeof buf, 0, nullptr, nullptr); });
    // Data before the timeout is returned at once.
    c.peer([&] {
      Ctx::pause(kPeerDelay);
      if (send(t.client, "in time", 7, 0) != 7) ADD_FAILURE();
    });
    ssize_t n = c.timed("recv with data after 60 ms", kWaitedLo, 180ms,
                        [&] { return recv(s, buf, sizeof buf, 0); });
    c.bytes("got", buf, n);
    c.join_peers();
    // The option belongs to the socket: a dup sees it.
    int d = c.fd("dup", dup(s));
    c.timed("recv on a dup", 190ms, 2s, [&] { return recv(d, buf, sizeof buf, 0); });
    close(d);
    // Zero turns the timeout off again: the read waits for the writer.
    set_timeout(c, s, SO_RCVTIMEO, 0ms);
    c.peer([&] {
      Ctx::pause(400ms);
      if (send(t.client, "slow", 4, 0) != 4) ADD_FAILURE();
    });
    n = c.timed("recv with the timeout turned off", 350ms, 10s,
                [&] { return recv(s, buf, sizeof buf, 0); });
    c.bytes("got", buf, n);
    c.join_peers();
    // The kernel's corner cases: a negative timeout makes receives return
    // at once; tv_usec out of range is EDOM.
    timeval neg{-1, 0};
    c.ret("setsockopt SO_RCVTIMEO of -1 s",
          setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &neg, sizeof neg));
    c.timed("recv with a negative timeout", kAtOnceLo, kAtOnceHi,
            [&] { return recv(s, buf, sizeof buf, 0); });
    timeval bad{0, 1000000};
    c.ret("setsockopt SO_RCVTIMEO with tv_usec 1000000",
          setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &bad, sizeof bad));
    c.ret("setsockopt SO_RCVTIMEO too short", setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &bad, 3));
    t.close_both();
    // accept with SO_RCVTIMEO says EAGAIN too.
    int l = tcp_listener(c);
    set_timeout(c, l, SO_RCVTIMEO, 200ms);
    c.timed_fd("accept", 190ms, 2s, [&] { return accept(l, nullptr, nullptr); });
    c.timed_fd("accept4", 190ms, 2s, [&] { return accept4(l, nullptr, nullptr, SOCK_NONBLOCK); });
    close(l);
  });
}

TEST(HookDiffNet, SendTimeoutOnAFullBuffer) {
  expect_same([](Ctx& c) {
    for (bool tcp : {false, true}) {
      TcpConn t;
      std::pair<int, int> u{-1, -1};
      if (tcp) {
        t = tcp_conn(c);
      } else {
        u = unix_pair(c, SOCK_STREAM);
      }
      int s = tcp ? t.client : u.first;
      int peer = tcp ? t.server : u.second;
      set_timeout(c, s, SO_SNDTIMEO, 200ms);
      timeval tv{};
      socklen_t len = sizeof tv;
      c.ret("getsockopt SO_SNDTIMEO", getsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, &len));
      c.val("it reads back",
            std::to_string(tv.tv_sec) + " s " + std::to_string(tv.tv_usec) + " us");
      std::vector<char> big = pattern(8u << 20, 5);
      // Part fits: the kernel returns the partial count when the time is up.
      ssize_t n = 0;
      c.timed("send of 8 MiB with nobody reading", 190ms, 3s, [&] {
        n = send(s, big.data(), big.size(), 0);
        return n > 0 && n < static_cast<ssize_t>(big.size()) ? 1 : n;  // 1: partial
      });
      // Now a unix socket takes nothing: EAGAIN when the time is up. TCP may
      // still take a small write into its last, partly filled packet, at
      // once, though poll() says "not writable": so on TCP only the result
      // is compared, not whether the call waited.
      Duration lo = tcp ? 0ms : 190ms;
      c.timed("send into the full buffer", lo, 3s, [&] { return send(s, big.data(), 1000, 0); });
      c.timed("write into the full buffer", lo, 3s, [&] { return write(s, big.data(), 1000); });
      iovec iov{big.data(), 1000};
      c.timed("writev into the full buffer", lo, 3s, [&] { return writev(s, &iov, 1); });
      set_timeout(c, peer, SO_RCVTIMEO, 5s);  // a safety net for the reads below
      std::string got;
      std::vector<char> buf(1 << 16);
      while (n > 0 && got.size() < static_cast<std::size_t>(n)) {
        ssize_t m = recv(peer, buf.data(), std::min(buf.size(), n - got.size()), 0);
        if (m <= 0) break;
        got.append(buf.data(), static_cast<std::size_t>(m));
      }
      c.check("the reader got exactly the partial send",
              n > 0 && got == std::string(big.begin(), big.begin() + n));
      if (tcp) {
        t.close_both();
      } else {
        close(u.first);
        close(u.second);
      }
    }
  });
}

// A listener with backlog 0 takes one connection into its queue; further
// SYNs are dropped, so a blocking connect waits and SO_SNDTIMEO ends it.
TEST(HookDiffNet, ConnectToAFullBacklog) {
  expect_same([](Ctx& c) {
    int l = tcp_listener(c, 0);
    std::uint16_t port = port_of(l);
    std::vector<int> queued;
    // Fill the accept queue: non-blocking connects until one stays pending.
    bool pending = false;
    for (int i = 0; i < 8 && !pending; ++i) {
      int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      queued.push_back(s);
      connect_to(s, port);
      pollfd p{s, POLLOUT, 0};
      pending = poll(&p, 1, 300) == 0;
    }
    c.check("the queue is full", pending);
    c.val("connections the queue took", queued.size() - 1);
    int s = c.fd("socket", socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    set_timeout(c, s, SO_SNDTIMEO, 1s);
    c.timed("blocking connect with SO_SNDTIMEO 1 s", 990ms, 5s,
            [&] { return connect_to(s, port); });
    so_error(c, "after the timeout", s);
    c.timed("connect again", kAtOnceLo, kAtOnceHi, [&] { return connect_to(s, port); });
    int n = c.fd("socket SOCK_NONBLOCK",
                 socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    c.ret("non-blocking connect", connect_to(n, port));
    pollfd p{n, POLLOUT, 0};
    c.timed("poll POLLOUT 200 ms", 190ms, 2s, [&] { return poll(&p, 1, 200); });
    for (int fd : queued) close(fd);
    for (int fd : {s, n, l}) close(fd);
  });
}

// udp_socket() is a UDP socket bound to 127.0.0.1 on a free port.
int udp_socket(Ctx& c, int flags = 0) {
  int fd = c.fd("udp socket", socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | flags, 0));
  sockaddr_in a = loopback(0);
  c.ret("bind", bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a));
  return fd;
}

TEST(HookDiffNet, UdpBoundariesTruncationAndWaiting) {
  expect_same([](Ctx& c) {
    int a = udp_socket(c);
    int b = udp_socket(c);
    sockaddr_in to = loopback(port_of(b));
    auto* dst = reinterpret_cast<sockaddr*>(&to);
    for (const char* d : {"first", "second one", "3rd"}) {
      c.ret("sendto", sendto(a, d, strlen(d), 0, dst, sizeof to));
    }
    c.ret("sendto of an empty datagram", sendto(a, "", 0, 0, dst, sizeof to));
    char buf[64] = {};
    sockaddr_in from{};
    socklen_t len = sizeof from;
    for (int i = 0; i < 4; ++i) {
      len = sizeof from;
      ssize_t n = c.ret("recvfrom",
                        recvfrom(b, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len));
      c.bytes("datagram", buf, n);
      c.check("from the sender's port", len == sizeof from && ntohs(from.sin_port) == port_of(a));
    }
    c.ret("sendto 10", sendto(a, "0123456789", 10, 0, dst, sizeof to));
    c.ret("recv into 4 bytes", recv(b, buf, 4, 0));
    c.ret("the rest is gone", recv(b, buf, sizeof buf, MSG_DONTWAIT));
    c.ret("sendto 10", sendto(a, "0123456789", 10, 0, dst, sizeof to));
    c.ret("recv MSG_TRUNC into 4 bytes", recv(b, buf, 4, MSG_TRUNC));
    c.ret("sendto 10", sendto(a, "0123456789", 10, 0, dst, sizeof to));
    iovec iov{buf, 4};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    c.ret("recvmsg into 4 bytes", recvmsg(b, &msg, 0));
    c.val("msg_flags", msg.msg_flags == MSG_TRUNC ? "MSG_TRUNC" : std::to_string(msg.msg_flags));
    c.ret("sendto 5", sendto(a, "peek!", 5, 0, dst, sizeof to));
    c.ret("recv MSG_PEEK", recv(b, buf, sizeof buf, MSG_PEEK));
    c.bytes("recv", buf, recv(b, buf, sizeof buf, 0));
    c.ret("recv MSG_DONTWAIT on empty", recv(b, buf, sizeof buf, MSG_DONTWAIT));
    // A blocking receive waits for the next datagram.
    c.peer([&] {
      Ctx::pause(kPeerDelay);
      if (sendto(a, "late", 4, 0, dst, sizeof to) != 4) ADD_FAILURE();
    });
    len = sizeof from;
    ssize_t n = c.timed("blocking recvfrom", kWaitedLo, kWaitedHi, [&] {
      return recvfrom(b, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
    });
    c.bytes("got", buf, n);
    c.join_peers();
    // A connected UDP socket gets ECONNREFUSED from the ICMP error of a port
    // nobody listens on.
    std::uint16_t closed_port = port_of(a);
    close(a);
    int u = c.fd("udp socket", socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    c.ret("connect to a closed port", connect_to(u, closed_port));
    c.ret("send", send(u, "x", 1, 0));
    pollfd p{u, POLLIN, 0};
    c.ret("poll", poll(&p, 1, 1000));
    c.val("revents", poll_names(p.revents));
    c.ret("recv", recv(u, buf, sizeof buf, 0));
    c.ret("recv again", recv(u, buf, sizeof buf, MSG_DONTWAIT));
    int nb = udp_socket(c, SOCK_NONBLOCK);
    c.ret("recv on a non-blocking udp socket", recv(nb, buf, sizeof buf, 0));
    for (int fd : {b, u, nb}) close(fd);
  });
}

// unix_address() is an abstract unix socket address unique to this process.
sockaddr_un unix_address(socklen_t* len, const char* tag, bool hooked) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  int n = std::snprintf(a.sun_path + 1, sizeof a.sun_path - 1, "coil-hook-%d-%s-%d", getpid(), tag,
                        hooked ? 1 : 0);
  *len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + n);
  return a;
}

// MSG_ERRQUEUE never waits: on an empty error queue the kernel says EAGAIN
// at once, even on a blocking socket. (A receive timeout bounds a hooked
// call that would wrongly wait.)
TEST(HookDiffNet, ErrQueueReadsNeverWait) {
  expect_same([](Ctx& c) {
    int fd = udp_socket(c);
    timeval tv{1, 0};
    c.ret("SO_RCVTIMEO", setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv));
    char buf[64];
    iovec v{buf, sizeof buf};
    msghdr m{};
    m.msg_iov = &v;
    m.msg_iovlen = 1;
    c.timed("recvmsg MSG_ERRQUEUE on an empty queue", kAtOnceLo, kAtOnceHi,
            [&] { return recvmsg(fd, &m, MSG_ERRQUEUE); });
    c.timed("recv MSG_ERRQUEUE on an empty queue", kAtOnceLo, kAtOnceHi,
            [&] { return recv(fd, buf, sizeof buf, MSG_ERRQUEUE); });
    c.timed("recvfrom MSG_ERRQUEUE on an empty queue", kAtOnceLo, kAtOnceHi,
            [&] { return recvfrom(fd, buf, sizeof buf, MSG_ERRQUEUE, nullptr, nullptr); });
    close(fd);
  });
}

TEST(HookDiffNet, UnixStreamByAddress) {
  expect_same([](Ctx& c) {
    socklen_t len;
    sockaddr_un addr = unix_address(&len, "stream", c.hooked());
    auto* sa = reinterpret_cast<sockaddr*>(&addr);
    int l = c.fd("socket", socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    c.ret("bind", bind(l, sa, len));
    c.ret("listen", listen(l, 4));
    int client = -1;
    ssize_t sent = 0;
    c.peer([&] {
      Ctx::pause(kPeerDelay);
      client = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (connect(client, sa, len) != 0) ADD_FAILURE() << errno_name(errno);
      Ctx::pause(kPeerDelay);
      sent = send(client, "over unix", 9, 0);
    });
    int a = c.timed_fd("blocking accept", kWaitedLo, kWaitedHi,
                       [&] { return accept(l, nullptr, nullptr); });
    char buf[16] = {};
    ssize_t n =
        c.timed("blocking recv", kWaitedLo, kWaitedHi, [&] { return recv(a, buf, sizeof buf, 0); });
    c.bytes("got", buf, n);
    c.join_peers();
    c.ret("the peer's send", sent);
    c.ret("close the client", close(client));
    c.ret("recv at EOF", recv(a, buf, sizeof buf, 0));
    sockaddr_un none{};
    none.sun_family = AF_UNIX;
    std::snprintf(none.sun_path + 1, sizeof none.sun_path - 1, "coil-hook-nobody-%d", getpid());
    int s = c.fd("socket", socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    c.ret("connect to an address nobody listens on",
          connect(s, reinterpret_cast<sockaddr*>(&none), offsetof(sockaddr_un, sun_path) + 20));
    for (int fd : {s, a, l}) close(fd);
  });
}

TEST(HookDiffNet, UnixDatagrams) {
  expect_same([](Ctx& c) {
    auto [a, b] = unix_pair(c, SOCK_DGRAM);
    c.ret("send 5", send(a, "hello", 5, 0));
    c.ret("send 0", send(a, "", 0, 0));
    c.ret("send 7", send(a, "goodbye", 7, 0));
    char buf[16] = {};
    c.bytes("recv", buf, recv(b, buf, sizeof buf, 0));
    c.ret("recv of the empty datagram", recv(b, buf, sizeof buf, 0));
    c.ret("recv MSG_TRUNC into 3 bytes", recv(b, buf, 3, MSG_TRUNC));
    c.peer([&] {
      Ctx::pause(kPeerDelay);
      if (send(a, "late", 4, 0) != 4) ADD_FAILURE();
    });
    ssize_t n =
        c.timed("blocking recv", kWaitedLo, kWaitedHi, [&] { return recv(b, buf, sizeof buf, 0); });
    c.bytes("got", buf, n);
    c.join_peers();
    // A full receive queue makes the sender wait; SO_SNDTIMEO ends it.
    int queued = 0;
    while (send(a, "q", 1, MSG_DONTWAIT) == 1) ++queued;
    c.check("the queue filled", queued > 0);
    set_timeout(c, a, SO_SNDTIMEO, 200ms);
    c.timed("send to a full queue with SO_SNDTIMEO", 190ms, 2s, [&] { return send(a, "q", 1, 0); });
    set_timeout(c, a, SO_SNDTIMEO, 0ms);
    // The kernel wakes a waiting sender only once the queue has mostly
    // drained, so the peer takes everything.
    std::size_t first = 0;
    c.peer([&] {
      Ctx::pause(kPeerDelay);
      first = drain(b);
    });
    c.timed("blocking send to a full queue", kWaitedLo, kWaitedHi,
            [&] { return send(a, "q", 1, 0); });
    c.join_peers();
    close(a);
    c.check("every datagram arrived once", first + drain(b) == std::size_t(queued) + 1);
    c.ret("recv MSG_DONTWAIT after the peer closed (no EOF on datagrams)",
          recv(b, buf, sizeof buf, MSG_DONTWAIT));
    c.ret("send to the closed peer", send(b, "x", 1, MSG_NOSIGNAL));
    close(b);
  });
}

TEST(HookDiffNet, ScmRightsPassesAUsableFd) {
  expect_same([](Ctx& c) {
    auto [a, b] = unix_pair(c, SOCK_STREAM);
    int p[2];
    c.ret("pipe", pipe(p));
    union {
      char buf[CMSG_SPACE(sizeof(int))];
      cmsghdr align;
    } out{}, in{};
    char data = 'F';
    iovec iov{&data, 1};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = out.buf;
    msg.msg_controllen = sizeof out.buf;
    cmsghdr* cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(cm), &p[0], sizeof(int));  // the read end travels
    ssize_t sent = 0;
    c.peer([&] {
      Ctx::pause(kPeerDelay);
      sent = sendmsg(a, &msg, 0);
    });
    char got = 0;
    iovec riov{&got, 1};
    msghdr rmsg{};
    rmsg.msg_iov = &riov;
    rmsg.msg_iovlen = 1;
    rmsg.msg_control = in.buf;
    rmsg.msg_controllen = sizeof in.buf;
    c.timed("blocking recvmsg MSG_CMSG_CLOEXEC", kWaitedLo, kWaitedHi,
            [&] { return recvmsg(b, &rmsg, MSG_CMSG_CLOEXEC); });
    c.join_peers();
    c.ret("the peer's sendmsg", sent);
    c.bytes("data", &got, 1);
    c.val("msg_flags", rmsg.msg_flags);
    c.val("msg_controllen", rmsg.msg_controllen);
    cmsghdr* rc = CMSG_FIRSTHDR(&rmsg);
    c.check("an SCM_RIGHTS message",
            rc && rc->cmsg_level == SOL_SOCKET && rc->cmsg_type == SCM_RIGHTS);
    int passed = -1;
    if (rc) std::memcpy(&passed, CMSG_DATA(rc), sizeof(int));
    c.check("a new fd", passed >= 0 && passed != p[0]);
    c.ret("F_GETFD of the passed fd", fcntl(passed, F_GETFD));
    getfl(c, "F_GETFL of the passed fd", passed);
    // The passed fd was never created by a hook; blocking reads still wait.
    c.peer([&] {
      Ctx::pause(kPeerDelay);
      if (write(p[1], "through", 7) != 7) ADD_FAILURE();
    });
    char buf[16] = {};
    ssize_t n = c.timed("blocking read on the passed fd", kWaitedLo, kWaitedHi,
                        [&] { return read(passed, buf, sizeof buf); });
    c.bytes("got", buf, n);
    c.join_peers();
    c.ret("close the original", close(p[0]));
    c.ret("write", write(p[1], "still", 5));
    c.bytes("read on the passed fd", buf, read(passed, buf, sizeof buf));
    // A control buffer too small for the fd: MSG_CTRUNC.
    msg.msg_control = out.buf;
    cm = CMSG_FIRSTHDR(&msg);
    std::memcpy(CMSG_DATA(cm), &p[1], sizeof(int));
    c.ret("sendmsg", sendmsg(a, &msg, 0));
    rmsg.msg_control = in.buf;
    rmsg.msg_controllen = sizeof(cmsghdr) - 1;
    c.ret("recvmsg with a short control buffer", recvmsg(b, &rmsg, 0));
    c.check("MSG_CTRUNC", (rmsg.msg_flags & MSG_CTRUNC) != 0);
    for (int fd : {passed, p[1], a, b}) close(fd);
  });
}

}  // namespace
}  // namespace coil::test::hook
