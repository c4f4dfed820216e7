// Differential tests of a blocking write parked on a full unix socket when
// the peer stops reading (finding 12). The kernel's blocked write returns at
// the peer's shutdown(SHUT_RD) or shutdown(SHUT_RDWR) with -1 EPIPE, or with
// the count it wrote before; it raises no SIGPIPE, since it was already
// waiting (only a write that begins after the shutdown does). At the peer's
// close it returns ECONNRESET. No epoll or poll(2) event announces
// SEND_SHUTDOWN alone (unix_poll reports no EPOLLOUT, EPOLLERR or EPOLLHUP
// for it), so a coroutine parked there used to wait forever. Each scenario
// runs on a plain thread and as a coroutine (hook_diff.hpp).
#include <sys/syscall.h>
#include <sys/uio.h>

#include <atomic>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "hook_diff.hpp"

namespace coil::test::hook {
namespace {

// PeerEnd is how the reading end stops reading.
enum class PeerEnd { kShutRd, kShutRdwr, kClose };

const char* name_of(PeerEnd end) {
  switch (end) {
    case PeerEnd::kShutRd:
      return "shutdown(SHUT_RD)";
    case PeerEnd::kShutRdwr:
      return "shutdown(SHUT_RDWR)";
    case PeerEnd::kClose:
      return "close";
  }
  return "?";
}

// end_peer() stops reading at fd; true when fd was closed.
bool end_peer(int fd, PeerEnd end) {
  int rc = end == PeerEnd::kClose    ? close(fd)
           : end == PeerEnd::kShutRd ? shutdown(fd, SHUT_RD)
                                     : shutdown(fd, SHUT_RDWR);
  if (rc != 0) ADD_FAILURE() << name_of(end) << ": " << errno_name(errno);
  return end == PeerEnd::kClose;
}

// fill_with() sends `chunk`-byte messages with MSG_DONTWAIT until the
// socket's send buffer takes no more (fill() of hook_diff.hpp for message
// sockets, whose messages are taken whole or not at all).
void fill_with(int fd, std::size_t chunk) {
  std::vector<char> buf(chunk, 'f');
  while (send(fd, buf.data(), buf.size(), MSG_DONTWAIT) > 0) {
  }
}

// Writer is one way of writing `n` bytes of buf to fd.
struct Writer {
  const char* name;
  std::function<ssize_t(int fd, const char* buf, std::size_t n)> call;
};

std::vector<Writer> writers() {
  return {
      {"write", [](int fd, const char* buf, std::size_t n) { return write(fd, buf, n); }},
      {"send", [](int fd, const char* buf, std::size_t n) { return send(fd, buf, n, 0); }},
      {"send MSG_NOSIGNAL",
       [](int fd, const char* buf, std::size_t n) { return send(fd, buf, n, MSG_NOSIGNAL); }},
      {"writev",
       [](int fd, const char* buf, std::size_t n) {
         iovec iov[2] = {{const_cast<char*>(buf), n / 2},
                         {const_cast<char*>(buf) + n / 2, n - n / 2}};
         return writev(fd, iov, 2);
       }},
      {"sendmsg",
       [](int fd, const char* buf, std::size_t n) {
         iovec iov{const_cast<char*>(buf), n};
         msghdr m{};
         m.msg_iov = &iov;
         m.msg_iovlen = 1;
         return sendmsg(fd, &m, 0);
       }},
  };
}

// after_the_peer_ended() joins the peer that ended b and records whether SIGPIPE came, and what a
// write and a receive on a that begin afterwards see; then closes the pair.
void after_the_peer_ended(Ctx& c, int a, int b, bool closed) {
  c.join_peers();
  record_pending_sigpipe(c);
  c.ret("a write that begins afterwards", write(a, "x", 1));
  record_pending_sigpipe(c);
  char buf[8];
  c.ret("a receive afterwards", recv(a, buf, sizeof buf, MSG_DONTWAIT));
  close(a);
  if (!closed) close(b);
}

// parked_write_ends() fills a unix socket of `type`, parks each writer on
// it and lets the peer stop reading 60 ms later: the write ends then. It
// records the result, whether SIGPIPE came, and what a write and a receive
// that begin afterwards see.
void parked_write_ends(Ctx& c, int type, PeerEnd end) {
  for (const Writer& w : writers()) {
    auto [a, b] = unix_pair(c, type);
    std::size_t size = type == SOCK_STREAM ? 1000 : 4096;
    if (type == SOCK_STREAM) {
      fill(a);
    } else {
      fill_with(a, size);
    }
    bool closed = false;
    c.peer([&, b = b] {
      Ctx::pause(kPeerDelay);
      closed = end_peer(b, end);
    });
    std::vector<char> data = pattern(size);
    c.timed(std::string(w.name) + " parked on a full socket, until the peer's " + name_of(end),
            kWaitedLo, kWaitedHi, [&, a = a] { return w.call(a, data.data(), data.size()); });
    after_the_peer_ended(c, a, b, closed);
  }
}

// Finding 12: the hooked write waited forever (no event came).
TEST(HookDiffUnixShutdown, StreamWriteParkedOnAFullSocketEndsAtPeerShutRd) {
  expect_same([](Ctx& c) { parked_write_ends(c, SOCK_STREAM, PeerEnd::kShutRd); });
}

// Before: woken by EPOLLHUP, the hooked retry raised SIGPIPE; the kernel's did not.
TEST(HookDiffUnixShutdown, StreamWriteParkedOnAFullSocketEndsAtPeerShutRdwr) {
  expect_same([](Ctx& c) { parked_write_ends(c, SOCK_STREAM, PeerEnd::kShutRdwr); });
}

// Before: EPIPE and SIGPIPE where the kernel says ECONNRESET, which then
// stayed pending for the next receive.
TEST(HookDiffUnixShutdown, StreamWriteParkedOnAFullSocketEndsAtPeerClose) {
  expect_same([](Ctx& c) { parked_write_ends(c, SOCK_STREAM, PeerEnd::kClose); });
}

// Finding 12 on seqpacket: the hooked write waited forever.
TEST(HookDiffUnixShutdown, SeqpacketWriteParkedOnAFullSocketEndsAtPeerShutRd) {
  expect_same([](Ctx& c) { parked_write_ends(c, SOCK_SEQPACKET, PeerEnd::kShutRd); });
}

// A guard: these came right before (EPOLLHUP wakes the writer, and a
// seqpacket send takes the pending error first and raises no SIGPIPE).
TEST(HookDiffUnixShutdown, SeqpacketWriteParkedOnAFullSocketEndsAtPeerShutRdwrOrClose) {
  expect_same([](Ctx& c) {
    parked_write_ends(c, SOCK_SEQPACKET, PeerEnd::kShutRdwr);
    parked_write_ends(c, SOCK_SEQPACKET, PeerEnd::kClose);
  });
}

// A write of 8 MiB to an empty socket moves what fits, then waits for room;
// when the peer stops reading it returns the count so far, without SIGPIPE
// (and at a close, the ECONNRESET it met is gone: a receive then sees EOF).
// Before: the hooked write waited forever at shutdown(SHUT_RD).
TEST(HookDiffUnixShutdown, PartialWriteReturnsItsCountAtPeerShutdown) {
  expect_same([](Ctx& c) {
    std::vector<char> big = pattern(8 << 20, 3);
    for (PeerEnd end : {PeerEnd::kShutRd, PeerEnd::kShutRdwr, PeerEnd::kClose}) {
      for (const Writer& w : writers()) {
        auto [a, b] = unix_pair(c, SOCK_STREAM);
        bool closed = false;
        c.peer([&, b = b] {
          Ctx::pause(kPeerDelay);
          closed = end_peer(b, end);
        });
        ssize_t n =
            c.timed(std::string(w.name) + " of 8 MiB, until the peer's " + name_of(end), kWaitedLo,
                    kWaitedHi, [&, a = a] { return w.call(a, big.data(), big.size()); });
        c.check("partial", n > 0 && n < static_cast<ssize_t>(big.size()));
        after_the_peer_ended(c, a, b, closed);
      }
    }
  });
}

// SO_SNDTIMEO still ends a write that nothing else ends, at its time and
// not at a re-check; and one that the peer's shutdown ends, ends there.
// Before: the second write ran to its 20 s and said EAGAIN.
TEST(HookDiffUnixShutdown, SndtimeoStillApplies) {
  expect_same([](Ctx& c) {
    auto [a, b] = unix_pair(c, SOCK_STREAM);
    fill(a);
    set_timeout(c, a, SO_SNDTIMEO, 300ms);
    char data[100] = {};
    c.timed("write on a full socket under SO_SNDTIMEO 300 ms", 290ms, 2s,
            [&, a = a] { return write(a, data, sizeof data); });
    set_timeout(c, a, SO_SNDTIMEO, 20s);
    c.peer([&, b = b] {
      Ctx::pause(kPeerDelay);
      end_peer(b, PeerEnd::kShutRd);
    });
    c.timed("write under SO_SNDTIMEO 20 s, until the peer's shutdown(SHUT_RD)", kWaitedLo, 2s,
            [&, a = a] { return write(a, data, sizeof data); });
    c.join_peers();
    close(a);
    close(b);
  });
}

// No regression: a write parked on a full unix socket whose peer drains it
// is woken by the epoll edge and completes (it passed before too).
TEST(HookDiffUnixShutdown, ParkedWriteEndsWhenThePeerDrains) {
  expect_same([](Ctx& c) {
    for (int type : {SOCK_STREAM, SOCK_SEQPACKET}) {
      auto [a, b] = unix_pair(c, type);
      std::size_t size = type == SOCK_STREAM ? 1000 : 4096;
      if (type == SOCK_STREAM) {
        fill(a);
      } else {
        fill_with(a, size);
      }
      std::size_t drained = 0;
      c.peer([&, b = b] {
        Ctx::pause(kPeerDelay);
        drained = drain(b);
      });
      std::vector<char> data = pattern(size);
      c.timed(type == SOCK_STREAM ? "stream write parked until the peer drains"
                                  : "seqpacket write parked until the peer drains",
              kWaitedLo, 2s, [&, a = a] { return write(a, data.data(), data.size()); });
      c.join_peers();
      c.check("the peer drained something", drained > 0);
      close(a);
      close(b);
    }
  });
}

std::atomic<int> g_caught{0};

// signalled_write() parks a write on a full unix socket while another
// thread sends this thread SIGUSR1 (caught, with or without SA_RESTART)
// after 60 ms and drains the socket after 150 ms: the re-checks must leave
// the wait interruptible exactly as the kernel's (EINTR, or restarted and
// complete after the drain).
void signalled_write(bool restart) {
  struct sigaction act {
  }, old{};
  act.sa_handler = [](int) { g_caught.fetch_add(1); };
  act.sa_flags = restart ? SA_RESTART : 0;
  sigemptyset(&act.sa_mask);
  ASSERT_EQ(sigaction(SIGUSR1, &act, &old), 0);
  expect_same([](Ctx& c) {
    auto [a, b] = unix_pair(c, SOCK_STREAM);
    fill(a);
    pthread_t target = pthread_self();
    g_caught = 0;
    std::thread kicker([&, b = b] {
      std::this_thread::sleep_for(kPeerDelay);
      pthread_kill(target, SIGUSR1);
      std::this_thread::sleep_for(90ms);
      drain(b);
    });
    char data[100] = {};
    c.timed("write parked on a full socket, a signal 60 ms in", kWaitedLo, 2s,
            [&, a = a] { return write(a, data, sizeof data); });
    c.val("handler ran", g_caught.load());
    kicker.join();
    close(a);
    close(b);
  });
  sigaction(SIGUSR1, &old, nullptr);
}

// A guard (these passed before): a caught signal without SA_RESTART ends
// the parked write with EINTR; with SA_RESTART the write goes on.
TEST(HookDiffUnixShutdown, CaughtSignalEndsAParkedWrite) { signalled_write(false); }

TEST(HookDiffUnixShutdown, CaughtSignalWithSaRestartLeavesAParkedWriteWaiting) {
  signalled_write(true);
}

// On a plain thread, a socket coil made non-blocking in a coroutine has its
// blocking emulated with poll(2), which is as blind to SEND_SHUTDOWN as
// epoll: the write must still end at the peer's shutdown, with EPIPE.
// Before: it waited in poll(2) forever.
TEST(HookDiffUnixShutdown, PlainThreadWriteOnASocketCoilMadeNonBlocking) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  {
    Scheduler sched;
    sched.spawn([&] {
      send(sv[0], "", 0, 0);  // classifies sv[0]: coil makes it non-blocking
    });
    sched.run();
  }
  // The kernel's flags: the hooked fcntl() reports the user's view.
  ASSERT_NE(syscall(SYS_fcntl, sv[0], F_GETFL) & O_NONBLOCK, 0) << "coil left the socket blocking";
  fill(sv[0]);
  int err = 0;
  with_watchdog("plain-thread", [&] {
    char data[100] = {};
    expect_blocks(
        "write on a full socket until the peer's shutdown(SHUT_RD)",
        [&] {
          ssize_t n = send(sv[0], data, sizeof data, MSG_NOSIGNAL);
          err = errno;
          return n;
        },
        [&] { shutdown(sv[1], SHUT_RD); }, -1);
  });
  EXPECT_EQ(errno_name(err), "EPIPE");
  close(sv[0]);
  close(sv[1]);
}

}  // namespace
}  // namespace coil::test::hook
