// Differential tests of the waiting hooks: poll over many kinds of fd with
// mixed readiness (revents compared exactly), poll/ppoll timeouts (0,
// positive, -1 woken by a peer), select with Linux's write-back of the time
// left, pselect, and epoll_wait on the program's own epoll fd, which must
// park the coroutine, not the thread. Each scenario runs on a plain thread
// and as a coroutine (hook_diff.hpp).
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/select.h>

#include <string>

#include "hook_diff.hpp"

namespace coil::test::hook {
namespace {

// record_revents() records each entry's revents.
void record_revents(Ctx& c, const std::vector<std::pair<const char*, pollfd>>& fds) {
  for (const auto& [name, p] : fds) c.val(std::string("revents ") + name, poll_names(p.revents));
}

TEST(HookDiffPoll, PollOverMixedReadiness) {
  expect_same([](Ctx& c) {
    int data[2], empty[2], full[2], no_reader[2], no_writer[2];
    c.ret("pipe data", pipe(data));
    c.ret("pipe empty", pipe(empty));
    c.ret("pipe2 full", pipe2(full, O_NONBLOCK));
    c.ret("pipe no_reader", pipe(no_reader));
    c.ret("pipe no_writer", pipe(no_writer));
    c.ret("write data", write(data[1], "d", 1));
    std::vector<char> chunk(65536, 'f');
    while (write(full[1], chunk.data(), chunk.size()) > 0) {
    }
    close(no_reader[0]);
    close(no_writer[1]);
    auto [a, b] = unix_pair(c, SOCK_STREAM);
    c.ret("close b", close(b));
    auto [x, y] = unix_pair(c, SOCK_STREAM);
    int l = tcp_listener(c);
    int pending = c.fd("socket", socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    c.ret("connect", connect_to(pending, port_of(l)));
    int ev = c.fd("eventfd 3", eventfd(3, EFD_CLOEXEC));
    int file = c.fd("memfd", memfd_create("coil-poll", MFD_CLOEXEC));
    int gone[2];
    c.ret("pipe gone", pipe(gone));
    close(gone[0]);
    close(gone[1]);  // gone[0] now names no open file
    const short in = POLLIN, out = POLLOUT, both = POLLIN | POLLOUT;
    std::vector<std::pair<const char*, pollfd>> fds = {
        {"pipe with data", {data[0], in, 0}},
        {"empty pipe", {empty[0], in, 0}},
        {"pipe write end", {empty[1], out, 0}},
        {"full pipe write end", {full[1], out, 0}},
        {"write end without reader", {no_reader[1], out, 0}},
        {"read end without writer", {no_writer[0], in, 0}},
        {"socket whose peer closed, POLLIN|POLLRDHUP", {a, POLLIN | POLLRDHUP, 0}},
        {"the same socket, events 0", {a, 0, 0}},
        {"idle connected socket", {x, both, 0}},
        {"listener with a pending connection", {l, in, 0}},
        {"eventfd with a count", {ev, both, 0}},
        {"regular file", {file, both, 0}},
        {"closed fd", {gone[0], in, 0}},
        {"negative fd", {-5, in, 0}},
        {"pipe with data, POLLPRI only", {data[0], POLLPRI, 0}},
    };
    std::vector<pollfd> raw;
    for (auto& f : fds) raw.push_back(f.second);
    c.timed("poll 0 ms", kAtOnceLo, kAtOnceHi, [&] { return poll(raw.data(), raw.size(), 0); });
    for (std::size_t i = 0; i < raw.size(); ++i) fds[i].second = raw[i];
    record_revents(c, fds);
    for (auto& p : raw) p.revents = 0x7777;  // poll must overwrite stale revents
    c.timed("poll 1000 ms with some ready", kAtOnceLo, kAtOnceHi,
            [&] { return poll(raw.data(), raw.size(), 1000); });
    for (std::size_t i = 0; i < raw.size(); ++i) fds[i].second = raw[i];
    record_revents(c, fds);
    for (int fd : {data[0], data[1], empty[0], empty[1], full[0], full[1], no_reader[1],
                   no_writer[0], a, x, y, l, pending, ev, file}) {
      close(fd);
    }
  });
}

TEST(HookDiffPoll, PollTimeoutsAndWakeups) {
  expect_same([](Ctx& c) {
    int p[2], q[2];
    c.ret("pipe p", pipe(p));
    c.ret("pipe q", pipe(q));
    pollfd two[2] = {{p[0], POLLIN, 0}, {q[0], POLLIN, 0}};
    c.timed("poll 0 ms", kAtOnceLo, kAtOnceHi, [&] { return poll(two, 2, 0); });
    c.timed("poll 200 ms", 190ms, 2s, [&] { return poll(two, 2, 200); });
    c.val("revents", poll_names(two[0].revents) + " " + poll_names(two[1].revents));
    c.peer([&] {
      Ctx::pause(kPeerDelay);
      if (write(q[1], "q", 1) != 1) ADD_FAILURE();
    });
    c.timed("poll -1 woken by a peer writing the second pipe", kWaitedLo, kWaitedHi,
            [&] { return poll(two, 2, -1); });
    c.val("revents", poll_names(two[0].revents) + " " + poll_names(two[1].revents));
    c.join_peers();
    c.peer([&] {
      Ctx::pause(kPeerDelay);
      if (close(p[1]) != 0) ADD_FAILURE();
    });
    pollfd hup{p[0], POLLIN, 0};
    c.timed("poll 5000 ms woken by the writer closing", kWaitedLo, kWaitedHi,
            [&] { return poll(&hup, 1, 5000); });
    c.val("revents", poll_names(hup.revents));
    c.join_peers();
    c.timed("poll on no fds sleeps", 90ms, 2s, [&] { return poll(nullptr, 0, 100); });
    // events 0: only a hang-up or an error ends the wait, and data does not.
    auto [s, t] = unix_pair(c, SOCK_STREAM);
    c.peer([&] {
      Ctx::pause(kPeerDelay);
      if (write(t, "x", 1) != 1) ADD_FAILURE();
      Ctx::pause(kPeerDelay);
      if (close(t) != 0) ADD_FAILURE();
    });
    pollfd none{s, 0, 0};
    c.timed("poll events 0 woken by the peer closing, not its data", 2 * kWaitedLo, 2s,
            [&] { return poll(&none, 1, 3000); });
    c.val("revents", poll_names(none.revents));
    c.join_peers();
    close(s);
    // A writer waiting for room in a full socket.
    auto [a, b] = unix_pair(c, SOCK_STREAM);
    c.check("filled", fill(a) > 0);
    pollfd w{a, POLLOUT, 0};
    c.timed("poll POLLOUT on a full socket, 100 ms", 90ms, 2s, [&] { return poll(&w, 1, 100); });
    c.peer([&] {
      Ctx::pause(kPeerDelay);
      drain(b);
    });
    c.timed("poll POLLOUT woken by the reader draining", kWaitedLo, kWaitedHi,
            [&] { return poll(&w, 1, -1); });
    c.val("revents", poll_names(w.revents));
    c.join_peers();
    for (int fd : {p[0], q[0], q[1], a, b}) close(fd);
  });
}

TEST(HookDiffPoll, Ppoll) {
  expect_same([](Ctx& c) {
    int p[2];
    c.ret("pipe", pipe(p));
    pollfd r{p[0], POLLIN, 0};
    timespec zero{0, 0}, t200{0, 200000000}, bad{0, 2000000000};
    c.timed("ppoll 0", kAtOnceLo, kAtOnceHi, [&] { return ppoll(&r, 1, &zero, nullptr); });
    c.timed("ppoll 200 ms", 190ms, 2s, [&] { return ppoll(&r, 1, &t200, nullptr); });
    c.check("the timeout is left alone", t200.tv_sec == 0 && t200.tv_nsec == 200000000);
    c.ret("ppoll with tv_nsec 2e9", ppoll(&r, 1, &bad, nullptr));
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGUSR1);
    c.peer([&] {
      Ctx::pause(kPeerDelay);
      if (write(p[1], "p", 1) != 1) ADD_FAILURE();
    });
    c.timed("ppoll without timeout, with a mask, woken by a peer", kWaitedLo, kWaitedHi,
            [&] { return ppoll(&r, 1, nullptr, &mask); });
    c.val("revents", poll_names(r.revents));
    c.join_peers();
    sigset_t now;
    pthread_sigmask(SIG_SETMASK, nullptr, &now);
    c.check("the thread's mask is restored", sigismember(&now, SIGUSR1) == 0);
    close(p[0]);
    close(p[1]);
  });
}

// timeval_ms() is tv in milliseconds.
long timeval_ms(const timeval& tv) { return tv.tv_sec * 1000 + tv.tv_usec / 1000; }

TEST(HookDiffPoll, SelectSetsAndTimeLeft) {
  expect_same([](Ctx& c) {
    int p[2], q[2];
    c.ret("pipe p", pipe(p));
    c.ret("pipe2 q", pipe2(q, O_NONBLOCK));
    c.ret("write p", write(p[1], "s", 1));
    std::vector<char> chunk(65536, 'f');
    while (write(q[1], chunk.data(), chunk.size()) > 0) {
    }
    int nfds = std::max({p[0], p[1], q[0], q[1]}) + 1;
    fd_set r, w, e;
    auto reset = [&] {
      FD_ZERO(&r);
      FD_ZERO(&w);
      FD_ZERO(&e);
      FD_SET(p[0], &r);
      FD_SET(q[0], &r);
      FD_SET(p[1], &w);
      FD_SET(q[1], &w);
      FD_SET(p[0], &e);
    };
    auto sets = [&] {
      return std::string("r{") + (FD_ISSET(p[0], &r) ? "p" : "") + (FD_ISSET(q[0], &r) ? "q" : "") +
             "} w{" + (FD_ISSET(p[1], &w) ? "p" : "") + (FD_ISSET(q[1], &w) ? "q" : "") + "} e{" +
             (FD_ISSET(p[0], &e) ? "p" : "") + "}";
    };
    reset();
    timeval tv{1, 0};
    c.timed("select with some ready", kAtOnceLo, kAtOnceHi,
            [&] { return select(nfds, &r, &w, &e, &tv); });
    c.val("sets", sets());
    c.check("most of the second is left", timeval_ms(tv) > 850 && timeval_ms(tv) <= 1000);
    char drained = 0;
    c.ret("read p", read(p[0], &drained, 1));
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    tv = {0, 200000};
    c.timed("select 200 ms on an empty pipe", 190ms, 2s,
            [&] { return select(nfds, &r, nullptr, nullptr, &tv); });
    c.val("sets", FD_ISSET(p[0], &r) ? "still set" : "cleared");
    c.val("time left", std::to_string(tv.tv_sec) + " s " + std::to_string(tv.tv_usec) + " us");
    c.peer([&] {
      Ctx::pause(kPeerDelay);
      if (write(p[1], "z", 1) != 1) ADD_FAILURE();
    });
    FD_SET(p[0], &r);
    tv = {5, 0};
    c.timed("select 5 s woken by a peer", kWaitedLo, kWaitedHi,
            [&] { return select(nfds, &r, nullptr, nullptr, &tv); });
    c.check("the pipe is readable", FD_ISSET(p[0], &r));
    c.check("time left is less than 5 s and more than 3 s",
            timeval_ms(tv) < 5000 && timeval_ms(tv) > 3000);
    c.join_peers();
    c.ret("read p", read(p[0], &drained, 1));
    c.peer([&] {
      Ctx::pause(kPeerDelay);
      if (write(p[1], "n", 1) != 1) ADD_FAILURE();
    });
    FD_SET(p[0], &r);
    c.timed("select without timeout woken by a peer", kWaitedLo, kWaitedHi,
            [&] { return select(nfds, &r, nullptr, nullptr, nullptr); });
    c.join_peers();
    tv = {0, 100000};
    c.timed("select on no fds sleeps", 90ms, 2s,
            [&] { return select(0, nullptr, nullptr, nullptr, &tv); });
    int gone[2];
    c.ret("pipe", pipe(gone));
    close(gone[0]);
    close(gone[1]);
    FD_ZERO(&r);
    FD_SET(gone[0], &r);
    tv = {0, 100000};
    c.timed("select on a closed fd", kAtOnceLo, kAtOnceHi,
            [&] { return select(gone[0] + 1, &r, nullptr, nullptr, &tv); });
    tv = {0, 100000};
    c.ret("select with nfds -1", select(opaque(-1), &r, nullptr, nullptr, &tv));
    tv = {0, -1};
    FD_ZERO(&r);
    c.ret("select with tv_usec -1", select(1, &r, nullptr, nullptr, &tv));
    for (int fd : {p[0], p[1], q[0], q[1]}) close(fd);
  });
}

TEST(HookDiffPoll, Pselect) {
  expect_same([](Ctx& c) {
    int p[2];
    c.ret("pipe", pipe(p));
    fd_set r;
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    timespec ts{0, 200000000};
    c.timed("pselect 200 ms", 190ms, 2s,
            [&] { return pselect(p[0] + 1, &r, nullptr, nullptr, &ts, nullptr); });
    c.check("pselect left its timeout alone", ts.tv_sec == 0 && ts.tv_nsec == 200000000);
    sigset_t mask;
    sigemptyset(&mask);
    c.peer([&] {
      Ctx::pause(kPeerDelay);
      if (write(p[1], "x", 1) != 1) ADD_FAILURE();
    });
    FD_SET(p[0], &r);
    ts = {5, 0};
    c.timed("pselect woken by a peer", kWaitedLo, kWaitedHi,
            [&] { return pselect(p[0] + 1, &r, nullptr, nullptr, &ts, &mask); });
    c.check("readable", FD_ISSET(p[0], &r));
    c.join_peers();
    ts = {0, 1000000000};
    c.ret("pselect with tv_nsec 1e9", pselect(p[0] + 1, &r, nullptr, nullptr, &ts, nullptr));
    close(p[0]);
    close(p[1]);
  });
}

TEST(HookDiffPoll, EpollWaitOnTheProgramsOwnEpoll) {
  expect_same([](Ctx& c) {
    int ep = c.fd("epoll_create1", epoll_create1(EPOLL_CLOEXEC));
    auto [a, b] = unix_pair(c, SOCK_STREAM);
    int p[2];
    c.ret("pipe", pipe(p));
    // a has been waited on by a hooked read first, so the scheduler's own
    // epoll watches it too; the program's epoll must still see it.
    c.peer([&] {
      Ctx::pause(kPeerDelay);
      if (write(b, "1", 1) != 1) ADD_FAILURE();
    });
    char buf[8] = {};
    c.timed("blocking read on a", kWaitedLo, kWaitedHi, [&] { return read(a, buf, sizeof buf); });
    c.join_peers();
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = 0xA;
    c.ret("epoll_ctl ADD a", epoll_ctl(ep, EPOLL_CTL_ADD, a, &ev));
    ev.events = EPOLLIN | EPOLLET;
    ev.data.u64 = 0xB;
    c.ret("epoll_ctl ADD pipe EPOLLET", epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev));
    epoll_event out[4] = {};
    c.timed("epoll_wait 0", kAtOnceLo, kAtOnceHi, [&] { return epoll_wait(ep, out, 4, 0); });
    c.timed("epoll_wait 200 ms", 190ms, 2s, [&] { return epoll_wait(ep, out, 4, 200); });
    c.peer([&] {
      Ctx::pause(kPeerDelay);
      if (write(b, "2", 1) != 1) ADD_FAILURE();
    });
    c.timed("epoll_wait -1 woken by a peer", kWaitedLo, kWaitedHi,
            [&] { return epoll_wait(ep, out, 4, -1); });
    c.val("event", std::to_string(out[0].data.u64) + " " + std::to_string(out[0].events));
    c.join_peers();
    c.timed("level-triggered: still ready", kAtOnceLo, kAtOnceHi,
            [&] { return epoll_wait(ep, out, 4, 1000); });
    c.ret("read a", read(a, buf, sizeof buf));
    c.ret("write the pipe", write(p[1], "e", 1));
    c.timed("edge-triggered pipe: one event", kAtOnceLo, kAtOnceHi,
            [&] { return epoll_wait(ep, out, 4, 1000); });
    c.val("event", std::to_string(out[0].data.u64) + " " + std::to_string(out[0].events));
    c.timed("edge consumed: nothing more", 90ms, 2s, [&] { return epoll_wait(ep, out, 4, 100); });
    sigset_t mask;
    sigemptyset(&mask);
    c.peer([&] {
      Ctx::pause(kPeerDelay);
      if (write(p[1], "f", 1) != 1) ADD_FAILURE();
    });
    c.timed("epoll_pwait with a mask woken by a new edge", kWaitedLo, kWaitedHi,
            [&] { return epoll_pwait(ep, out, 4, 5000, &mask); });
    c.val("event", std::to_string(out[0].data.u64) + " " + std::to_string(out[0].events));
    c.join_peers();
    // Several ready, fewer slots.
    c.ret("write b", write(b, "3", 1));
    c.ret("write the pipe", write(p[1], "g", 1));
    c.ret("epoll_wait with 1 slot", epoll_wait(ep, out, 1, 1000));
    c.ret("epoll_wait with 0 slots", epoll_wait(ep, out, 0, 0));
    c.ret("epoll_wait on a pipe", epoll_wait(p[0], out, 4, 0));
    c.ret("epoll_wait on a closed fd", epoll_wait(1 << 20, out, 4, 0));
    for (int fd : {ep, a, b, p[0], p[1]}) close(fd);
  });
}

}  // namespace
}  // namespace coil::test::hook
