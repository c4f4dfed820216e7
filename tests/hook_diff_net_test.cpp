// Differential tests of the hooked networking and waiting calls: connect
// errors and timeouts, accept timeouts, UDP and unix datagrams, fd passing,
// poll/select/epoll_wait over several fds, sleeps and name resolution. Each
// scenario runs on a plain thread and in a coroutine; the outcomes must match.
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cstring>

#include "hook_diff.hpp"

namespace coil::test::hook {
namespace {

using namespace std::chrono_literals;

TEST(HookDiffNet, ConnectRefusedAndAcceptTimeout) {
  expect_same([](Ctx& c) {
    int l = tcp_listener(c);
    int port = port_of(l);
    close(l);  // nothing listens there now
    int s = c.fd("socket", socket(AF_INET, SOCK_STREAM, 0));
    c.timed("connect to a closed port", kAtOnceLo, kAtOnceHi, [&] { return connect_to(s, port); });
    close(s);
    l = tcp_listener(c);
    set_timeout(c, l, SO_RCVTIMEO, 200ms);
    c.timed("accept with SO_RCVTIMEO and nobody connecting", 190ms, 2s,
            [&] { return accept(l, nullptr, nullptr); });
    close(l);
  });
}

TEST(HookDiffNet, ConnectToAFullBacklogTimesOutWithEinprogress) {
  expect_same([](Ctx& c) {
    int l = tcp_listener(c, 0);
    int port = port_of(l);
    // Fill the accept queue (backlog 0 holds one) and the SYN queue behind it.
    std::vector<int> queued;
    for (int i = 0; i < 4; ++i) {
      int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
      connect_to(s, port);
      queued.push_back(s);
    }
    Ctx::pause(100ms);
    int s = c.fd("socket", socket(AF_INET, SOCK_STREAM, 0));
    set_timeout(c, s, SO_SNDTIMEO, 300ms);
    c.timed("connect with SO_SNDTIMEO to a listener whose backlog is full", 290ms, 3s,
            [&] { return connect_to(s, port); });
    close(s);
    for (int q : queued) close(q);
    close(l);
  });
}

TEST(HookDiffNet, UserNonblockingConnectSaysEinprogressThenPollSaysWritable) {
  expect_same([](Ctx& c) {
    int l = tcp_listener(c);
    int s = c.fd("socket", socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0));
    int rc = connect_to(s, port_of(l));
    c.check("connect is 0 or EINPROGRESS", rc == 0 || errno == EINPROGRESS);
    pollfd p{s, POLLOUT, 0};
    c.ret("poll for writable", poll(&p, 1, 2000));
    c.val("revents", poll_names(p.revents));
    int err = -1;
    socklen_t len = sizeof err;
    c.ret("getsockopt SO_ERROR", getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &len));
    c.val("SO_ERROR", err);
    close(s);
    close(l);
  });
}

TEST(HookDiffNet, UdpDatagramsKeepTheirBoundaries) {
  expect_same([](Ctx& c) {
    int a = c.fd("udp a", socket(AF_INET, SOCK_DGRAM, 0));
    int b = c.fd("udp b", socket(AF_INET, SOCK_DGRAM, 0));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    c.ret("bind b", bind(b, reinterpret_cast<sockaddr*>(&addr), sizeof addr));
    socklen_t len = sizeof addr;
    getsockname(b, reinterpret_cast<sockaddr*>(&addr), &len);
    c.peer([&] {
      Ctx::pause(kPeerDelay);
      sendto(a, "first", 5, 0, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
      sendto(a, "second!", 7, 0, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    });
    char buf[16] = {};
    c.timed("recvfrom waits for the first datagram", kWaitedLo, kWaitedHi,
            [&] { return recvfrom(b, buf, sizeof buf, 0, nullptr, nullptr); });
    c.bytes("first", buf, 5);
    c.join_peers();
    c.ret("recv MSG_TRUNC into 3 bytes reports the real length", recv(b, buf, 3, MSG_TRUNC));
    set_timeout(c, b, SO_RCVTIMEO, 150ms);
    c.timed("recv with SO_RCVTIMEO on an empty socket", 140ms, 2s,
            [&] { return recv(b, buf, sizeof buf, 0); });
    close(a);
    close(b);
  });
}

TEST(HookDiffNet, UnixDatagramAndScmRightsPassAnFd) {
  expect_same([](Ctx& c) {
    auto [a, b] = unix_pair(c, SOCK_DGRAM);
    int p[2];
    c.ret("pipe", pipe(p));
    char one = '1';
    iovec iov{&one, 1};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    cmsghdr* cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(cm), &p[1], sizeof(int));
    c.peer([&, a = a] {
      Ctx::pause(kPeerDelay);
      sendmsg(a, &msg, 0);
    });
    char got = 0;
    iovec riov{&got, 1};
    alignas(cmsghdr) char rcontrol[CMSG_SPACE(sizeof(int))] = {};
    msghdr rmsg{};
    rmsg.msg_iov = &riov;
    rmsg.msg_iovlen = 1;
    rmsg.msg_control = rcontrol;
    rmsg.msg_controllen = sizeof rcontrol;
    c.timed("recvmsg waits for the fd", kWaitedLo, kWaitedHi, [&] { return recvmsg(b, &rmsg, 0); });
    c.join_peers();
    int passed = -1;
    cmsghdr* rc = CMSG_FIRSTHDR(&rmsg);
    c.check("one SCM_RIGHTS fd arrived", rc && rc->cmsg_type == SCM_RIGHTS);
    if (rc) std::memcpy(&passed, CMSG_DATA(rc), sizeof(int));
    c.ret("write through the passed fd", write(passed, "via", 3));
    char buf[4] = {};
    c.ret("read it from the pipe", read(p[0], buf, sizeof buf));
    c.bytes("got", buf, 3);
    for (int fd : {passed, p[0], p[1], a, b}) close(fd);
  });
}

TEST(HookDiffNet, PollOverMixedReadinessAndTimeouts) {
  expect_same([](Ctx& c) {
    int p[2], q[2];
    c.ret("pipe p", pipe(p));
    c.ret("pipe q", pipe(q));
    c.ret("write q", write(q[1], "x", 1));
    pollfd fds[4] = {{p[0], POLLIN, 0}, {q[0], POLLIN, 0}, {p[1], POLLOUT, 0}, {-1, POLLIN, 0}};
    c.timed("poll with some ready", kAtOnceLo, kAtOnceHi, [&] { return poll(fds, 4, 1000); });
    for (auto& f : fds) c.val("revents", poll_names(f.revents));
    pollfd empty{p[0], POLLIN, 0};
    c.timed("poll 0 ms on an empty pipe", kAtOnceLo, kAtOnceHi, [&] { return poll(&empty, 1, 0); });
    c.timed("poll 200 ms on an empty pipe", 190ms, 2s, [&] { return poll(&empty, 1, 200); });
    c.peer([&] {
      Ctx::pause(kPeerDelay);
      write(p[1], "y", 1);
    });
    c.timed("poll -1 woken by a peer", kWaitedLo, kWaitedHi, [&] { return poll(&empty, 1, -1); });
    c.val("revents", poll_names(empty.revents));
    c.join_peers();
    c.timed("poll on no fds sleeps", 90ms, 2s, [&] { return poll(nullptr, 0, 100); });
    pollfd bad{9999, POLLIN, 0};
    c.ret("poll on a closed fd", poll(&bad, 1, 100));
    c.val("revents", poll_names(bad.revents));
    char drained = 0;
    c.ret("read the peer's byte", read(p[0], &drained, 1));
    timespec ts{0, 100000000};
    c.timed("ppoll 100 ms", 90ms, 2s, [&] { return ppoll(&empty, 1, &ts, nullptr); });
    for (int fd : {p[0], p[1], q[0], q[1]}) close(fd);
  });
}

TEST(HookDiffNet, SelectAndPselect) {
  expect_same([](Ctx& c) {
    int p[2];
    c.ret("pipe", pipe(p));
    fd_set r;
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    timeval tv{0, 150000};
    c.timed("select 150 ms on an empty pipe", 140ms, 2s,
            [&] { return select(p[0] + 1, &r, nullptr, nullptr, &tv); });
    c.check("select cleared the set", !FD_ISSET(p[0], &r));
    c.check("select wrote back the time left (0)", tv.tv_sec == 0 && tv.tv_usec == 0);
    c.peer([&] {
      Ctx::pause(kPeerDelay);
      write(p[1], "z", 1);
    });
    FD_SET(p[0], &r);
    fd_set w;
    FD_ZERO(&w);
    tv = {5, 0};
    c.timed("select woken by a peer", kWaitedLo, kWaitedHi,
            [&] { return select(p[0] + 1, &r, &w, nullptr, &tv); });
    c.check("the pipe is readable", FD_ISSET(p[0], &r));
    c.check("some time was left", tv.tv_sec >= 3);
    c.join_peers();
    FD_ZERO(&w);
    FD_SET(p[1], &w);
    timespec ts{1, 0};
    c.timed("pselect on a writable pipe", kAtOnceLo, kAtOnceHi,
            [&] { return pselect(p[1] + 1, nullptr, &w, nullptr, &ts, nullptr); });
    c.check("pselect left its timeout alone", ts.tv_sec == 1 && ts.tv_nsec == 0);
    close(p[0]);
    close(p[1]);
  });
}

TEST(HookDiffNet, EpollWaitOnTheProgramsOwnEpoll) {
  expect_same([](Ctx& c) {
    int ep = c.fd("epoll_create1", epoll_create1(EPOLL_CLOEXEC));
    int p[2];
    c.ret("pipe", pipe(p));
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = p[0];
    c.ret("epoll_ctl ADD", epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev));
    epoll_event out[4];
    c.timed("epoll_wait 150 ms, nothing ready", 140ms, 2s,
            [&] { return epoll_wait(ep, out, 4, 150); });
    c.peer([&] {
      Ctx::pause(kPeerDelay);
      write(p[1], "e", 1);
    });
    c.timed("epoll_wait -1 woken by a peer", kWaitedLo, kWaitedHi,
            [&] { return epoll_wait(ep, out, 4, -1); });
    c.check("the event is the pipe's", out[0].data.fd == p[0] && (out[0].events & EPOLLIN));
    c.join_peers();
    c.timed("epoll_pwait with data ready", kAtOnceLo, kAtOnceHi,
            [&] { return epoll_pwait(ep, out, 4, 1000, nullptr); });
    for (int fd : {ep, p[0], p[1]}) close(fd);
  });
}

TEST(HookDiffNet, SleepsWithLooseBounds) {
  expect_same([](Ctx& c) {
    c.timed("usleep 100 ms", 95ms, 2s, [&] { return usleep(100000); });
    timespec req{0, 100000000}, rem{7, 7};
    c.timed("nanosleep 100 ms", 95ms, 2s, [&] { return nanosleep(&req, &rem); });
    timespec bad{0, 1000000000};
    c.ret("nanosleep with tv_nsec 1e9", nanosleep(&bad, nullptr));
    c.val("clock_nanosleep with a bad time", clock_nanosleep(CLOCK_MONOTONIC, 0, &bad, nullptr));
    c.val("clock_nanosleep relative 100 ms", clock_nanosleep(CLOCK_MONOTONIC, 0, &req, nullptr));
    timespec now{};
    clock_gettime(CLOCK_REALTIME, &now);
    timespec at = now;
    at.tv_nsec += 100000000;
    if (at.tv_nsec >= 1000000000) {
      at.tv_sec += 1;
      at.tv_nsec -= 1000000000;
    }
    c.timed("clock_nanosleep TIMER_ABSTIME on CLOCK_REALTIME", 90ms, 2s,
            [&] { return clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &at, nullptr); });
    c.timed("clock_nanosleep TIMER_ABSTIME in the past", kAtOnceLo, kAtOnceHi,
            [&] { return clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &now, nullptr); });
    c.timed("sleep 0", kAtOnceLo, kAtOnceHi, [&] { return static_cast<int>(sleep(0)); });
  });
}

TEST(HookDiffNet, NameResolutionMatchesThePlainCalls) {
  expect_same([](Ctx& c) {
    addrinfo hints{};
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    c.ret("getaddrinfo localhost:80", getaddrinfo("localhost", "80", &hints, &res));
    if (res) {
      auto* in = reinterpret_cast<sockaddr_in*>(res->ai_addr);
      c.val("first address", ntohl(in->sin_addr.s_addr));
      c.val("port", ntohs(in->sin_port));
      freeaddrinfo(res);
    }
    c.ret("getaddrinfo of a bad service",
          getaddrinfo("127.0.0.1", "no-such-service", &hints, &res));
    hostent he{}, *result = nullptr;
    char buf[2048];
    int herr = 0;
    c.ret("gethostbyname_r localhost",
          gethostbyname_r("localhost", &he, buf, sizeof buf, &result, &herr));
    c.check("it found localhost", result != nullptr && result->h_length == 4);
    hostent* h = gethostbyname("127.0.0.1");
    c.check("gethostbyname of a literal", h != nullptr && h->h_addrtype == AF_INET);
  });
}

}  // namespace
}  // namespace coil::test::hook
