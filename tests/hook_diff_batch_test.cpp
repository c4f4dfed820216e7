// Differential tests of the batch and pipe-buffer hooks: recvmmsg (queued
// datagrams, SO_RCVTIMEO, MSG_WAITFORONE, the `timeout` argument, SCM_RIGHTS),
// sendmmsg (UDP, a full unix stream socket, SO_SNDTIMEO, SIGPIPE), splice and
// tee (waiting for data or room, the rules of SPLICE_F_NONBLOCK and each
// end's O_NONBLOCK) and vmsplice (which ignores O_NONBLOCK). Each scenario
// runs on a plain thread and as a coroutine and both runs must observe the
// same (hook_diff.hpp); the last tests use fds coil made non-blocking on a
// plain thread.
#include <fcntl.h>
#include <sys/syscall.h>
#include <sys/uio.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <thread>

#include "hook_diff.hpp"

namespace coil::test::hook {
namespace {

// Mmsgs is n messages for recvmmsg or sendmmsg, each with a buffer of its
// own and, if asked, room for one SCM_RIGHTS fd.
class Mmsgs {
 public:
  explicit Mmsgs(std::size_t n, std::size_t size = 64, bool control = false)
      : bufs_(n, std::vector<char>(size)), iovs_(n), msgs_(n), ctl_(control ? n : 0) {
    for (std::size_t i = 0; i < n; ++i) {
      iovs_[i] = {bufs_[i].data(), size};
      msgs_[i].msg_hdr.msg_iov = &iovs_[i];
      msgs_[i].msg_hdr.msg_iovlen = 1;
      if (control) {
        msgs_[i].msg_hdr.msg_control = ctl_[i].buf;
        msgs_[i].msg_hdr.msg_controllen = sizeof ctl_[i].buf;
      }
    }
  }
  mmsghdr* data() { return msgs_.data(); }
  unsigned size() const { return static_cast<unsigned>(msgs_.size()); }
  mmsghdr& operator[](std::size_t i) { return msgs_[i]; }

  // put() makes message i carry `bytes` (and `fd` with SCM_RIGHTS if >= 0).
  void put(std::size_t i, const std::vector<char>& bytes, int fd = -1) {
    bufs_[i] = bytes;
    iovs_[i] = {bufs_[i].data(), bufs_[i].size()};
    if (fd < 0) return;
    cmsghdr* cm = CMSG_FIRSTHDR(&msgs_[i].msg_hdr);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(cm), &fd, sizeof fd);
  }
  void put(std::size_t i, std::string_view text, int fd = -1) {
    put(i, std::vector<char>(text.begin(), text.end()), fd);
  }

  // record() records msg_len and the bytes of the first n messages.
  void record(Ctx& c, std::string_view label, int n) {
    for (int i = 0; i < n; ++i) {
      std::string name = std::string(label) + " [" + std::to_string(i) + "]";
      c.val(name + " msg_len", msgs_[i].msg_len);
      c.bytes(name, bufs_[i].data(), msgs_[i].msg_len);
    }
  }

  // passed_fd() is the fd SCM_RIGHTS put in message i, or -1.
  int passed_fd(std::size_t i) {
    cmsghdr* cm = CMSG_FIRSTHDR(&msgs_[i].msg_hdr);
    if (!cm || cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) return -1;
    int fd;
    std::memcpy(&fd, CMSG_DATA(cm), sizeof fd);
    return fd;
  }

 private:
  union Control {
    char buf[CMSG_SPACE(sizeof(int))];
    cmsghdr align;
  };
  std::vector<std::vector<char>> bufs_;
  std::vector<iovec> iovs_;
  std::vector<mmsghdr> msgs_;
  std::vector<Control> ctl_;
};

// udp_pair() is a UDP socket bound to 127.0.0.1 and another connected to
// it: {sender, receiver}.
std::pair<int, int> udp_pair(Ctx& c) {
  int r = c.fd("udp receiver", socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  sockaddr_in a = loopback(0);
  c.ret("bind", bind(r, reinterpret_cast<sockaddr*>(&a), sizeof a));
  int s = c.fd("udp sender", socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  c.ret("connect", connect_to(s, port_of(r)));
  return {s, r};
}

// send_text() sends one datagram or chunk, checked.
void send_text(int fd, std::string_view text) {
  if (send(fd, text.data(), text.size(), 0) != static_cast<ssize_t>(text.size())) ADD_FAILURE();
}

// fill_pipe() fills an empty pipe with exactly its capacity, which even a
// blocking write takes at once, and records it.
void fill_pipe(Ctx& c, int w) {
  std::vector<char> bytes(static_cast<std::size_t>(fcntl(w, F_GETPIPE_SZ)), 'p');
  c.ret("fill the pipe", write(w, bytes.data(), bytes.size()));
}

// take() reads n bytes (n > 0) from fd, blocking, and returns them.
std::string take(int fd, std::size_t n) {
  std::string got;
  std::vector<char> buf(65536);
  while (got.size() < n) {
    ssize_t m = read(fd, buf.data(), std::min(buf.size(), n - got.size()));
    if (m <= 0) break;
    got.append(buf.data(), static_cast<std::size_t>(m));
  }
  return got;
}

// timespec_text() is "S s N ns".
std::string timespec_text(const timespec& t) {
  return std::to_string(t.tv_sec) + " s " + std::to_string(t.tv_nsec) + " ns";
}

TEST(HookDiffBatch, RecvmmsgTakesTheQueuedDatagramsThenWaitsForTheRest) {
  expect_same([](Ctx& c) {
    auto [s, r] = udp_pair(c);
    set_timeout(c, r, SO_RCVTIMEO, 150ms);
    for (std::string_view d : {"one", "two!!", "three"}) send_text(s, d);
    Mmsgs m(5);
    int n = c.timed("recvmmsg of 5 with 3 queued (SO_RCVTIMEO 150 ms)", 140ms, 2s,
                    [&] { return recvmmsg(r, m.data(), 5, 0, nullptr); });
    m.record(c, "got", n);
    c.timed("recvmmsg with nothing queued", 140ms, 2s,
            [&] { return recvmmsg(r, m.data(), 5, 0, nullptr); });
    c.peer([&] {
      Ctx::pause(kPeerDelay);
      send_text(s, "late");
    });
    n = c.timed("recvmmsg of 2, one datagram after 60 ms", 200ms, 2s,
                [&] { return recvmmsg(r, m.data(), 2, 0, nullptr); });
    c.join_peers();
    m.record(c, "got", n);
    // Without a timeout every datagram is waited for.
    set_timeout(c, r, SO_RCVTIMEO, 0ms);
    c.peer([&] {
      for (std::string_view d : {"d1", "d2", "d3"}) {
        Ctx::pause(kPeerDelay);
        send_text(s, d);
      }
    });
    n = c.timed("recvmmsg of 3, one datagram every 60 ms", 170ms, kWaitedHi,
                [&] { return recvmmsg(r, m.data(), 3, 0, nullptr); });
    c.join_peers();
    m.record(c, "got", n);
    c.ret("recvmmsg of 0", recvmmsg(r, m.data(), 0, 0, nullptr));
    c.ret("recvmmsg MSG_DONTWAIT", recvmmsg(r, m.data(), 2, MSG_DONTWAIT, nullptr));
    c.ret("recvmmsg on a closed fd", recvmmsg(1 << 20, m.data(), 2, 0, nullptr));
    close(s);
    close(r);
  });
}

TEST(HookDiffBatch, RecvmmsgWaitForOne) {
  expect_same([](Ctx& c) {
    auto [s, r] = udp_pair(c);
    send_text(s, "a");
    send_text(s, "bb");
    Mmsgs m(4);
    int n = c.timed("MSG_WAITFORONE with 2 queued", kAtOnceLo, kAtOnceHi,
                    [&] { return recvmmsg(r, m.data(), 4, MSG_WAITFORONE, nullptr); });
    m.record(c, "got", n);
    c.peer([&] {
      Ctx::pause(kPeerDelay);
      send_text(s, "ccc");
    });
    n = c.timed("MSG_WAITFORONE waits for the first", kWaitedLo, kWaitedHi,
                [&] { return recvmmsg(r, m.data(), 4, MSG_WAITFORONE, nullptr); });
    c.join_peers();
    m.record(c, "got", n);
    set_timeout(c, r, SO_RCVTIMEO, 100ms);
    c.timed("MSG_WAITFORONE with nothing (SO_RCVTIMEO 100 ms)", 90ms, 2s,
            [&] { return recvmmsg(r, m.data(), 4, MSG_WAITFORONE, nullptr); });
    close(s);
    close(r);
  });
}

TEST(HookDiffBatch, RecvmmsgTimeoutIsLookedAtOnlyAfterADatagram) {
  expect_same([](Ctx& c) {
    auto [s, r] = udp_pair(c);
    Mmsgs m(3);
    send_text(s, "early");
    c.peer([&] {
      Ctx::pause(200ms);
      send_text(s, "late");
    });
    timespec t{0, 100000000};
    int n = c.timed("recvmmsg of 3, timeout 100 ms, 1 queued, 1 after 200 ms", 190ms, kWaitedHi,
                    [&] { return recvmmsg(r, m.data(), 3, 0, &t); });
    c.join_peers();
    m.record(c, "got", n);
    c.val("time left", timespec_text(t));
    for (std::string_view d : {"x", "y", "z"}) send_text(s, d);
    t = {5, 0};
    c.ret("recvmmsg of 3 with 3 queued, timeout 5 s", recvmmsg(r, m.data(), 3, 0, &t));
    c.check("time left in (4 s, 5 s)", t.tv_sec == 4);
    // The deadline runs from the start of the call, through its waits.
    send_text(s, "queued");
    c.peer([&] {
      Ctx::pause(kPeerDelay);
      send_text(s, "after 60 ms");
    });
    t = {5, 0};
    c.timed("recvmmsg of 2, timeout 5 s, 1 queued, 1 after 60 ms", kWaitedLo, kWaitedHi,
            [&] { return recvmmsg(r, m.data(), 2, 0, &t); });
    c.join_peers();
    c.check("time left in (4 s, 4.95 s]", t.tv_sec == 4 && t.tv_nsec <= 950000000);
    send_text(s, "first");
    send_text(s, "second");
    t = {0, 0};
    c.ret("recvmmsg of 3 with 2 queued, timeout 0", recvmmsg(r, m.data(), 3, 0, &t));
    m.record(c, "got", 1);
    c.val("time left", timespec_text(t));
    c.ret("the other is still queued", recvmmsg(r, m.data(), 3, MSG_DONTWAIT, nullptr));
    c.peer([&] {
      Ctx::pause(kPeerDelay);
      send_text(s, "waited for");
    });
    t = {0, 0};
    c.timed("timeout 0 with nothing queued waits for one", kWaitedLo, kWaitedHi,
            [&] { return recvmmsg(r, m.data(), 3, 0, &t); });
    c.join_peers();
    c.val("time left", timespec_text(t));
    t = {0, -1};
    c.ret("a negative timeout", recvmmsg(r, m.data(), 3, 0, &t));
    t = {0, 1000000000};
    c.ret("a timeout of 10^9 ns", recvmmsg(r, m.data(), 3, 0, &t));
    c.ret("a bad timeout pointer",
          recvmmsg(r, m.data(), 3, 0, opaque(reinterpret_cast<timespec*>(8))));
    close(s);
    close(r);
  });
}

// The passed fds land on numbers coil knew as its own non-blocking sockets,
// closed behind its back: unless recvmmsg forgets what it knew of them, F_GETFL
// hides the O_NONBLOCK the passed pipes carry.
TEST(HookDiffBatch, RecvmmsgNotesTheFdsPassedWithScmRights) {
  expect_same([](Ctx& c) {
    auto [a, b] = unix_pair(c, SOCK_DGRAM);
    int p[2], q[2];
    c.ret("pipe2 O_NONBLOCK", pipe2(p, O_NONBLOCK | O_CLOEXEC));
    c.ret("pipe2 O_NONBLOCK", pipe2(q, O_NONBLOCK | O_CLOEXEC));
    int s1 = c.fd("socket", socket(AF_INET, SOCK_STREAM, 0));
    int s2 = c.fd("socket", socket(AF_INET, SOCK_STREAM, 0));
    c.ret("raw close", static_cast<int>(syscall(SYS_close, s1)));
    c.ret("raw close", static_cast<int>(syscall(SYS_close, s2)));
    Mmsgs out(2, 1, true);
    out.put(0, "p", p[0]);
    out.put(1, "q", q[0]);
    int sent = 0;
    c.peer([&] {
      Ctx::pause(kPeerDelay);
      sent = sendmmsg(a, out.data(), 2, 0);
    });
    Mmsgs in(2, 8, true);
    int n = c.timed("recvmmsg of 2 MSG_CMSG_CLOEXEC", kWaitedLo, kWaitedHi,
                    [&] { return recvmmsg(b, in.data(), 2, MSG_CMSG_CLOEXEC, nullptr); });
    c.join_peers();
    c.ret("the peer's sendmmsg", sent);
    in.record(c, "got", n);
    int f1 = in.passed_fd(0), f2 = in.passed_fd(1);
    c.check("the passed fds took the closed sockets' numbers", f1 == s1 && f2 == s2);
    getfl(c, "F_GETFL of the first passed fd", f1);
    getfl(c, "F_GETFL of the second passed fd", f2);
    c.ret("F_GETFD", fcntl(f2, F_GETFD));
    c.ret("write", write(p[1], "through", 7));
    char buf[16] = {};
    c.bytes("read on the passed fd", buf, read(f1, buf, sizeof buf));
    c.ret("read on the other, empty", read(f2, buf, sizeof buf));
    for (int fd : {a, b, p[0], p[1], q[0], q[1], f1, f2}) close(fd);
  });
}

TEST(HookDiffBatch, SendmmsgOverUdp) {
  expect_same([](Ctx& c) {
    auto [s, r] = udp_pair(c);
    Mmsgs out(3);
    out.put(0, "a");
    out.put(1, "bb");
    out.put(2, "ccc");
    c.ret("sendmmsg of 3", sendmmsg(s, out.data(), 3, 0));
    for (unsigned i = 0; i < 3; ++i) c.val("msg_len", out[i].msg_len);
    Mmsgs in(4);
    int n = c.ret("recvmmsg", recvmmsg(r, in.data(), 4, MSG_DONTWAIT, nullptr));
    in.record(c, "got", n);
    c.ret("sendmmsg of 0", sendmmsg(s, out.data(), 0, 0));
    int p[2];
    c.ret("pipe", pipe(p));
    c.ret("sendmmsg on a pipe", sendmmsg(p[1], out.data(), 3, 0));
    // The ICMP error the first datagram draws stops the batch at the second;
    // the kernel returns 1 and drops the error.
    c.ret("close the receiver", close(r));
    c.ret("sendmmsg of 3 to a closed port", sendmmsg(s, out.data(), 3, 0));
    c.ret("and again", sendmmsg(s, out.data(), 3, 0));
    for (int fd : {s, p[0], p[1]}) close(fd);
  });
}

TEST(HookDiffBatch, SendmmsgIntoAFullUnixStreamWaitsForTheReader) {
  expect_same([](Ctx& c) {
    auto [a, b] = unix_pair(c, SOCK_STREAM);
    std::size_t filled = fill(a);
    Mmsgs out(3);
    std::string want(filled, 'f');
    for (unsigned i = 0; i < 3; ++i) {
      std::vector<char> part = pattern(300000, i + 1);
      out.put(i, part);
      want.append(part.begin(), part.end());
    }
    std::string got;
    c.peer([&] {
      Ctx::pause(kPeerDelay);
      got = take(b, want.size());
    });
    c.timed("sendmmsg of 3 x 300000 bytes into a full socket", kWaitedLo, kWaitedHi,
            [&] { return sendmmsg(a, out.data(), 3, 0); });
    c.join_peers();
    for (unsigned i = 0; i < 3; ++i) c.val("msg_len", out[i].msg_len);
    c.check("the reader got every byte in order", got == want);
    // SO_SNDTIMEO: nothing fits, then part of the first message.
    set_timeout(c, a, SO_SNDTIMEO, 150ms);
    fill(a);
    c.timed("sendmmsg into a full socket with SO_SNDTIMEO 150 ms", 140ms, 2s,
            [&] { return sendmmsg(a, out.data(), 3, 0); });
    std::vector<char> skb(65536);
    c.ret("read one chunk", read(b, skb.data(), skb.size()));
    for (unsigned i = 0; i < 3; ++i) out[i].msg_len = 0;
    c.timed("sendmmsg with room for part of the first", 140ms, 2s,
            [&] { return sendmmsg(a, out.data(), 3, 0); });
    c.check("the first went in part", out[0].msg_len > 0 && out[0].msg_len < 300000);
    c.val("the second's msg_len", out[1].msg_len);
    close(a);
    close(b);
  });
}

// A blocking send that has written part of a message raises no SIGPIPE when
// the reader goes (it returns the count); one that has written nothing does.
TEST(HookDiffBatch, SendmmsgRaisesSigpipeOnlyBeforeAMessagesFirstByte) {
  expect_same([](Ctx& c) {
    auto [a, b] = unix_pair(c, SOCK_STREAM);
    fill(a);
    Mmsgs out(2);
    out.put(0, pattern(4 << 20, 1));  // more than the reader ever makes room for
    out.put(1, pattern(10, 2));
    c.peer([&] {
      Ctx::pause(kPeerDelay);
      drain(b, 512 << 10);
      Ctx::pause(kPeerDelay);
      drain(b, 512 << 10);
      close(b);
    });
    c.timed("sendmmsg while the reader reads twice and hangs up", 100ms, kWaitedHi,
            [&] { return sendmmsg(a, out.data(), 2, 0); });
    c.join_peers();
    c.check("the first went in part", out[0].msg_len > 0 && out[0].msg_len < (4 << 20));
    sigset_t pending;
    sigpending(&pending);
    c.check("SIGPIPE pending after it", sigismember(&pending, SIGPIPE) == 1);
    c.ret("sendmmsg after the hang-up (SIGPIPE)", sendmmsg(a, out.data(), 2, 0));
    close(a);
  });
}

// An error that comes while recvmmsg waits for its second datagram ends the
// call with the count and stays pending for the next call.
TEST(HookDiffBatch, RecvmmsgLeavesALaterErrorPending) {
  expect_same([](Ctx& c) {
    auto [s, r] = udp_pair(c);
    sockaddr_in from{};
    socklen_t len = sizeof from;
    c.ret("getsockname", getsockname(s, reinterpret_cast<sockaddr*>(&from), &len));
    c.ret("connect the receiver back", connect(r, reinterpret_cast<sockaddr*>(&from), sizeof from));
    send_text(s, "first");
    c.peer([&] {
      Ctx::pause(kPeerDelay);
      close(s);
      send_text(r, "to a closed port");  // draws an ICMP error onto r
    });
    Mmsgs m(2);
    int n = c.timed("recvmmsg of 2, an error after the first", kWaitedLo, kWaitedHi,
                    [&] { return recvmmsg(r, m.data(), 2, 0, nullptr); });
    c.join_peers();
    m.record(c, "got", n);
    c.ret("the next recvmmsg", recvmmsg(r, m.data(), 2, MSG_DONTWAIT, nullptr));
    c.ret("and the one after", recvmmsg(r, m.data(), 2, MSG_DONTWAIT, nullptr));
    close(r);
  });
}

TEST(HookDiffBatch, SpliceWaitsForDataAndRoom) {
  expect_same([](Ctx& c) {
    TcpConn t = tcp_conn(c);
    int p[2];
    c.ret("pipe", pipe(p));
    c.peer([&] {
      Ctx::pause(kPeerDelay);
      send_text(t.client, "spliced");
    });
    c.timed("splice from an empty socket into a pipe", kWaitedLo, kWaitedHi,
            [&] { return splice(t.server, nullptr, p[1], nullptr, 4096, 0); });
    c.join_peers();
    char buf[16] = {};
    c.bytes("the pipe holds", buf, read(p[0], buf, sizeof buf));
    c.peer([&] {
      Ctx::pause(kPeerDelay);
      if (write(p[1], "back", 4) != 4) ADD_FAILURE();
    });
    c.timed("splice from an empty pipe into a socket", kWaitedLo, kWaitedHi,
            [&] { return splice(p[0], nullptr, t.client, nullptr, 4096, 0); });
    c.join_peers();
    c.bytes("the socket got", buf, recv(t.server, buf, sizeof buf, 0));
    fill_pipe(c, p[1]);
    send_text(t.client, "more");
    c.peer([&] {
      Ctx::pause(kPeerDelay);
      take(p[0], 65536);
    });
    c.timed("splice from a socket into a full pipe", kWaitedLo, kWaitedHi,
            [&] { return splice(t.server, nullptr, p[1], nullptr, 4096, 0); });
    c.join_peers();
    c.bytes("the pipe holds", buf, read(p[0], buf, sizeof buf));
    // From a pipe into a full socket: all that is in the pipe goes, though
    // the socket has room for only part of it at a time.
    auto [u, v] = unix_pair(c, SOCK_STREAM);
    std::size_t filled = fill(u);
    int big[2];
    c.ret("pipe", pipe(big));
    c.ret("F_SETPIPE_SZ 1 MiB", fcntl(big[1], F_SETPIPE_SZ, 1 << 20));
    std::vector<char> bytes = pattern(1 << 20, 5);
    c.ret("fill the pipe", write(big[1], bytes.data(), bytes.size()));
    std::string got;
    c.peer([&] {
      Ctx::pause(kPeerDelay);
      got = take(v, filled + bytes.size());
    });
    c.timed("splice of up to 2 MiB from a pipe holding 1 MiB into a full socket", kWaitedLo,
            kWaitedHi, [&] { return splice(big[0], nullptr, u, nullptr, 2 << 20, 0); });
    c.join_peers();
    c.check("the reader got every byte in order",
            got == std::string(filled, 'f') + std::string(bytes.begin(), bytes.end()));
    for (int fd : {u, v, big[0], big[1]}) close(fd);
    c.ret("splice between two sockets", splice(t.server, nullptr, t.client, nullptr, 1, 0));
    loff_t offset = 0;
    c.ret("splice with an offset on a pipe", splice(p[0], &offset, p[1], nullptr, 1, 0));
    close(p[0]);
    close(p[1]);
    t.close_both();
  });
}

TEST(HookDiffBatch, TeeBetweenPipes) {
  expect_same([](Ctx& c) {
    int a[2], b[2];
    c.ret("pipe", pipe(a));
    c.ret("pipe", pipe(b));
    c.peer([&] {
      Ctx::pause(kPeerDelay);
      if (write(a[1], "tee data", 8) != 8) ADD_FAILURE();
    });
    c.timed("tee from an empty pipe", kWaitedLo, kWaitedHi,
            [&] { return tee(a[0], b[1], 100, 0); });
    c.join_peers();
    char buf[16] = {};
    c.bytes("the copy", buf, read(b[0], buf, sizeof buf));
    fill_pipe(c, b[1]);
    c.peer([&] {
      Ctx::pause(kPeerDelay);
      take(b[0], 65536);
    });
    c.timed("tee into a full pipe", kWaitedLo, kWaitedHi, [&] { return tee(a[0], b[1], 100, 0); });
    c.join_peers();
    c.bytes("the copy", buf, read(b[0], buf, sizeof buf));
    c.bytes("the original", buf, read(a[0], buf, sizeof buf));
    c.timed("tee SPLICE_F_NONBLOCK from an empty pipe", kAtOnceLo, kAtOnceHi,
            [&] { return tee(a[0], b[1], 100, SPLICE_F_NONBLOCK); });
    c.ret("tee of a pipe into itself", tee(a[0], a[1], 100, 0));
    c.ret("close the writer", close(a[1]));
    c.timed("tee from a pipe without writers", kAtOnceLo, kAtOnceHi,
            [&] { return tee(a[0], b[1], 100, 0); });
    for (int fd : {a[0], b[0], b[1]}) close(fd);
  });
}

// PageBuffer is page-aligned memory, so that vmsplice fills whole pipe slots.
struct PageBuffer {
  explicit PageBuffer(std::size_t n) : data(static_cast<char*>(std::aligned_alloc(4096, n))) {}
  ~PageBuffer() { std::free(data); }
  char* data;
};

TEST(HookDiffBatch, VmspliceWaitsForRoomAndIgnoresONonblock) {
  expect_same([](Ctx& c) {
    PageBuffer page(65536);
    std::vector<char> bytes = pattern(65536, 9);
    std::memcpy(page.data, bytes.data(), bytes.size());
    iovec v{page.data, bytes.size()};
    int p[2];
    c.ret("pipe", pipe(p));
    fill_pipe(c, p[1]);
    c.peer([&] {
      Ctx::pause(kPeerDelay);
      take(p[0], 65536);
    });
    c.timed("vmsplice of 64 KiB into a full pipe", kWaitedLo, kWaitedHi,
            [&] { return vmsplice(p[1], &v, 1, 0); });
    c.join_peers();
    c.check("the pipe holds the pages",
            take(p[0], 65536) == std::string(bytes.begin(), bytes.end()));
    c.peer([&] {
      Ctx::pause(kPeerDelay);
      if (write(p[1], "gift", 4) != 4) ADD_FAILURE();
    });
    char buf[16] = {};
    iovec r{buf, sizeof buf};
    long n = c.timed("vmsplice from an empty pipe", kWaitedLo, kWaitedHi,
                     [&] { return vmsplice(p[0], &r, 1, 0); });
    c.join_peers();
    c.bytes("got", buf, n);
    fill_pipe(c, p[1]);
    c.timed("vmsplice SPLICE_F_NONBLOCK into a full pipe", kAtOnceLo, kAtOnceHi,
            [&] { return vmsplice(p[1], &v, 1, SPLICE_F_NONBLOCK); });
    c.timed("vmsplice SPLICE_F_NONBLOCK from a pipe", kAtOnceLo, kAtOnceHi,
            [&] { return vmsplice(p[0], &r, 1, SPLICE_F_NONBLOCK); });
    int q[2];
    c.ret("pipe2 O_NONBLOCK", pipe2(q, O_NONBLOCK));
    fill_pipe(c, q[1]);
    c.peer([&] {
      Ctx::pause(kPeerDelay);
      take(q[0], 65536);
    });
    c.timed("vmsplice into a full O_NONBLOCK pipe waits all the same", kWaitedLo, kWaitedHi,
            [&] { return vmsplice(q[1], &v, 1, 0); });
    c.join_peers();
    c.ret("vmsplice on a closed fd", vmsplice(q[0] + 1000, &v, 1, 0));
    for (int fd : {p[0], p[1], q[0], q[1]}) close(fd);
  });
}

TEST(HookDiffBatch, SpliceNonblockingRulesGiveEagainAsTheKernelDoes) {
  expect_same([](Ctx& c) {
    constexpr unsigned kNb = SPLICE_F_NONBLOCK;
    TcpConn t = tcp_conn(c);
    auto [u, v] = unix_pair(c, SOCK_STREAM);
    int a[2], b[2], n[2];
    c.ret("pipe", pipe(a));
    c.ret("pipe", pipe(b));
    c.ret("pipe2 O_NONBLOCK", pipe2(n, O_NONBLOCK));
    auto at_once = [&](const char* label, auto call) {
      c.timed(label, kAtOnceLo, kAtOnceHi, call);
    };
    // Nothing to move.
    at_once("pipe to pipe, SPLICE_F_NONBLOCK", [&] { return splice(a[0], 0, b[1], 0, 100, kNb); });
    at_once("pipe to an O_NONBLOCK pipe", [&] { return splice(a[0], 0, n[1], 0, 100, 0); });
    at_once("O_NONBLOCK pipe to pipe", [&] { return splice(n[0], 0, b[1], 0, 100, 0); });
    at_once("unix socket to pipe, SPLICE_F_NONBLOCK",
            [&] { return splice(v, 0, b[1], 0, 100, kNb); });
    at_once("unix socket to an O_NONBLOCK pipe", [&] { return splice(v, 0, n[1], 0, 100, 0); });
    at_once("pipe to tcp, SPLICE_F_NONBLOCK",
            [&] { return splice(a[0], 0, t.client, 0, 100, kNb); });
    at_once("O_NONBLOCK pipe to tcp", [&] { return splice(n[0], 0, t.client, 0, 100, 0); });
    at_once("tee, SPLICE_F_NONBLOCK", [&] { return tee(a[0], b[1], 100, kNb); });
    at_once("tee into an O_NONBLOCK pipe", [&] { return tee(a[0], n[1], 100, 0); });
    // No room in the output pipe.
    send_text(t.client, "x");
    fill_pipe(c, b[1]);
    fill_pipe(c, n[1]);
    at_once("tcp to a full pipe, SPLICE_F_NONBLOCK",
            [&] { return splice(t.server, 0, b[1], 0, 100, kNb); });
    at_once("tcp to a full O_NONBLOCK pipe", [&] { return splice(t.server, 0, n[1], 0, 100, 0); });
    // The socket's own O_NONBLOCK.
    char x;
    c.ret("recv", recv(t.server, &x, 1, 0));
    c.ret("F_SETFL O_NONBLOCK on the server", fcntl(t.server, F_SETFL, O_NONBLOCK));
    at_once("O_NONBLOCK tcp socket to a pipe",
            [&] { return splice(t.server, 0, a[1], 0, 100, 0); });
    c.ret("F_SETFL O_NONBLOCK on the client", fcntl(t.client, F_SETFL, O_NONBLOCK));
    fill(t.client);
    c.ret("write", write(a[1], "y", 1));
    at_once("pipe to a full O_NONBLOCK tcp socket",
            [&] { return splice(a[0], 0, t.client, 0, 100, 0); });
    for (int fd : {u, v, a[0], a[1], b[0], b[1], n[0], n[1]}) close(fd);
    t.close_both();
  });
}

// waits() records a call that must wait for the peer's action after 60 ms.
template <class Call, class Act>
void waits(Ctx& c, const char* label, Call call, Act act) {
  c.peer([act] {
    Ctx::pause(kPeerDelay);
    act();
  });
  c.timed(label, kWaitedLo, kWaitedHi, call);
  c.join_peers();
}

TEST(HookDiffBatch, SpliceWaitsWhereTheKernelIgnoresTheFlags) {
  expect_same([](Ctx& c) {
    constexpr unsigned kNb = SPLICE_F_NONBLOCK;
    TcpConn t = tcp_conn(c);
    auto [us, ur] = udp_pair(c);
    int p[2], n[2];
    c.ret("pipe", pipe(p));
    c.ret("pipe2 O_NONBLOCK", pipe2(n, O_NONBLOCK));
    // TCP and UDP read as their own mode says, whatever the pipe's.
    waits(
        c, "tcp to pipe, SPLICE_F_NONBLOCK", [&] { return splice(t.server, 0, p[1], 0, 100, kNb); },
        [&] { send_text(t.client, "a"); });
    waits(
        c, "tcp to an O_NONBLOCK pipe", [&] { return splice(t.server, 0, n[1], 0, 100, 0); },
        [&] { send_text(t.client, "bb"); });
    waits(
        c, "udp to pipe, SPLICE_F_NONBLOCK", [&] { return splice(ur, 0, p[1], 0, 100, kNb); },
        [&] { send_text(us, "datagram"); });
    take(p[0], 9);
    take(n[0], 2);
    // A socket writes as its own mode says.
    std::size_t filled = fill(t.client);
    c.ret("write", write(p[1], "z", 1));
    waits(
        c, "pipe to a full tcp socket, SPLICE_F_NONBLOCK",
        [&] { return splice(p[0], 0, t.client, 0, 100, kNb); },
        [&] { take(t.server, filled + 1); });
    // A pipe waits as its own mode says, whatever the socket's.
    c.ret("F_SETFL O_NONBLOCK on the client", fcntl(t.client, F_SETFL, O_NONBLOCK));
    waits(
        c, "empty pipe to an O_NONBLOCK tcp socket",
        [&] { return splice(p[0], 0, t.client, 0, 100, 0); },
        [&] {
          if (write(p[1], "late", 4) != 4) ADD_FAILURE();
        });
    c.ret("F_SETFL O_NONBLOCK on the server", fcntl(t.server, F_SETFL, O_NONBLOCK));
    c.ret("recv", recv(t.server, std::vector<char>(8).data(), 8, 0));
    send_text(t.client, "w");
    fill_pipe(c, p[1]);
    waits(
        c, "O_NONBLOCK tcp socket to a full pipe",
        [&] { return splice(t.server, 0, p[1], 0, 100, 0); }, [&] { take(p[0], 65536); });
    // Both ends not ready: the kernel waits on the pipe first, then says EAGAIN for the socket.
    take(p[0], 1);
    fill_pipe(c, p[1]);
    waits(
        c, "empty O_NONBLOCK tcp socket to a full pipe",
        [&] { return splice(t.server, 0, p[1], 0, 100, 0); }, [&] { take(p[0], 65536); });
    // And on the pipe first, then EAGAIN for a full socket (a unix one: TCP
    // takes a small write into its last packet however full it is).
    auto [u, v] = unix_pair(c, SOCK_STREAM);
    c.ret("F_SETFL O_NONBLOCK on a unix socket", fcntl(u, F_SETFL, O_NONBLOCK));
    fill(u);
    waits(
        c, "empty pipe to a full O_NONBLOCK unix socket",
        [&] { return splice(p[0], 0, u, 0, 100, 0); },
        [&] {
          if (write(p[1], "d", 1) != 1) ADD_FAILURE();
        });
    close(u);
    close(v);
    for (int fd : {us, ur, p[0], p[1], n[0], n[1]}) close(fd);
    t.close_both();
  });
}

// Fds coil made non-blocking in a coroutine, used on a plain thread once the
// scheduler is gone: each call still waits as the user's blocking call does.
TEST(HookPassthroughBatch, FdsCoilMadeNonblockingWaitOnAPlainThread) {
  std::pair<int, int> udp;
  int p[2] = {-1, -1}, q[2] = {-1, -1}, sv[2] = {-1, -1};
  TcpConn t;
  run_hooked(
      [&](Ctx& c) {
        udp = udp_pair(c);
        c.ret("pipe", pipe(p));
        c.ret("pipe", pipe(q));
        c.ret("socketpair", socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
        t = tcp_conn(c);
        char buf[4];
        for (auto [w, r] : {std::pair{p[1], p[0]}, std::pair{q[1], q[0]}, std::pair{sv[1], sv[0]},
                            std::pair{sv[0], sv[1]}}) {
          c.ret("write", write(w, "1", 1));  // the first use of each end in a coroutine
          c.ret("read", read(r, buf, sizeof buf));
        }
      },
      {.check_fds = false});
  for (int fd : {udp.second, p[0], p[1], q[0], sv[0], t.client, t.server}) {
    ASSERT_NE(syscall(SYS_fcntl, fd, F_GETFL) & O_NONBLOCK, 0) << "fd " << fd << " is blocking";
  }
  with_watchdog("plain", [&] {
    Mmsgs in(2);
    expect_blocks(
        "recvmmsg of 2", [&] { return recvmmsg(udp.second, in.data(), 2, 0, nullptr); },
        [&] {
          send_text(udp.first, "one");
          std::this_thread::sleep_for(20ms);
          send_text(udp.first, "two");
        },
        2);
    std::size_t filled = fill(sv[0]);
    Mmsgs out(2);
    out.put(0, pattern(300000, 1));
    out.put(1, pattern(300000, 2));
    expect_blocks(
        "sendmmsg into a full socket", [&] { return sendmmsg(sv[0], out.data(), 2, 0); },
        [&] { take(sv[1], filled + 600000); }, 2);
    expect_blocks(
        "splice from an empty socket", [&] { return splice(t.server, 0, p[1], 0, 100, 0); },
        [&] { send_text(t.client, "s"); }, 1);
    take(p[0], 1);
    filled = fill(sv[0]);
    std::vector<char> bytes(1 << 20, 'b');
    ASSERT_EQ(fcntl(p[1], F_SETPIPE_SZ, 1 << 20), 1 << 20);
    ASSERT_EQ(write(p[1], bytes.data(), bytes.size()), 1 << 20);
    expect_blocks(
        "splice into a full socket", [&] { return splice(p[0], 0, sv[0], 0, 2 << 20, 0); },
        [&] { take(sv[1], filled + bytes.size()); }, 1 << 20);
    expect_blocks(
        "tee from an empty pipe", [&] { return tee(q[0], p[1], 100, 0); },
        [&] { ASSERT_EQ(write(q[1], "t", 1), 1); }, 1);
    take(p[0], 1);
    ASSERT_EQ(write(p[1], bytes.data(), bytes.size()), 1 << 20);
    iovec v{bytes.data(), 4096};
    expect_blocks(
        "vmsplice into a full pipe", [&] { return vmsplice(p[1], &v, 1, 0); },
        [&] { take(p[0], 1 << 20); }, 4096);
  });
  for (int fd : {udp.first, udp.second, p[0], p[1], q[0], q[1], sv[0], sv[1]}) close(fd);
  t.close_both();
}

}  // namespace
}  // namespace coil::test::hook
