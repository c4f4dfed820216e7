// Hooked waits on many fds: poll, ppoll, select, pselect, and a program's own
// epoll_wait/epoll_pwait/epoll_pwait2. In a coroutine each asks the kernel
// first with a zero timeout (so results are the kernel's, bit for bit), and
// only if nothing is ready marks the fds not ready and parks until one of
// them sees an edge or the timeout passes, then asks again.
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/select.h>

#include <chrono>
#include <cstring>
#include <vector>

#include "coil/detail/park.hpp"
#include "coil/scheduler.hpp"
#include "io.hpp"
#include "real.hpp"

extern "C" [[noreturn]] void __chk_fail(void);

namespace coil::hook {
namespace {

using detail::FdInterest;

TimePoint deadline_in(Duration d) noexcept {
  TimePoint now = detail::now();
  return d >= kNoDeadline - now ? kNoDeadline : now + d;
}

TimePoint deadline_ms(int ms) noexcept {
  return ms < 0 ? kNoDeadline : deadline_in(std::chrono::milliseconds(ms));
}

TimePoint deadline_ts(const timespec* ts) noexcept {
  if (!ts) return kNoDeadline;
  return deadline_in(std::chrono::seconds(ts->tv_sec) + std::chrono::nanoseconds(ts->tv_nsec));
}

bool due(TimePoint deadline) noexcept {
  return deadline != kNoDeadline && detail::now() >= deadline;
}

// Interests collects the fds to wait for, marking each not ready for the
// interest the kernel just found it not ready for.
class Interests {
 public:
  void add(int fd, std::uint8_t interest) {
    if (fd < 0 || interest == 0) return;
    detail::mark_not_ready(fd, interest);
    list_.push_back(FdInterest{fd, interest});
  }
  // wait() parks, with the signal mask of ppoll or pselect in force if
  // there is one; false with errno on failure. A caught signal ends it
  // (EINTR): signal(7) never restarts poll, select or epoll_wait.
  bool wait(TimePoint deadline, const sigset_t* mask) {
    detail::InterruptibleWait scope(detail::Interrupt::kAlways);
    detail::WaitSignalMask masked(mask);
    if (list_.empty()) return nap_until(deadline);
    return detail::wait_for_any_fd(list_.data(), list_.size(), deadline) != WaitResult::kError;
  }

 private:
  std::vector<FdInterest> list_;
};

std::uint8_t poll_interest(short events) noexcept {
  std::uint8_t i = 0;
  if (events & (POLLIN | POLLPRI | POLLRDNORM | POLLRDBAND | POLLRDHUP)) i |= detail::kReadable;
  if (events & (POLLOUT | POLLWRNORM | POLLWRBAND)) i |= detail::kWritable;
  // poll(2) reports POLLERR and POLLHUP whatever was asked, and epoll does
  // too: watching for input is enough to hear of them (data that comes
  // first only costs another ask).
  return i != 0 ? i : std::uint8_t{detail::kReadable};
}

constexpr timespec kZero{0, 0};

// wait_poll() is poll(2) or ppoll(2) in a coroutine: ask, park, ask again.
// Asking with ppoll and the mask delivers a pending signal it unblocks.
int wait_poll(pollfd* fds, nfds_t n, TimePoint deadline, const sigset_t* mask) {
  for (;;) {
    int rc = mask ? real::ppoll(fds, n, &kZero, mask) : real::poll(fds, n, 0);
    if (rc != 0 || due(deadline)) return rc;
    Interests wanted;
    for (nfds_t i = 0; i < n; ++i) wanted.add(fds[i].fd, poll_interest(fds[i].events));
    if (!wanted.wait(deadline, mask)) return -1;
  }
}

// FdSets is a private copy of select's three sets.
struct FdSets {
  static constexpr int kBits = 8 * sizeof(unsigned long);
  std::vector<unsigned long> words[3];

  FdSets(int nfds, fd_set* const sets[3]) {
    std::size_t count = static_cast<std::size_t>((nfds + kBits - 1) / kBits);
    for (int k = 0; k < 3; ++k) {
      if (sets[k])
        words[k].assign(reinterpret_cast<unsigned long*>(sets[k]),
                        reinterpret_cast<unsigned long*>(sets[k]) + count);
    }
  }
  fd_set* scratch(int k, std::vector<unsigned long>& into) const {
    if (words[k].empty()) return nullptr;
    into = words[k];
    return reinterpret_cast<fd_set*>(into.data());
  }
  bool has(int k, int fd) const noexcept {
    return !words[k].empty() && (words[k][fd / kBits] >> (fd % kBits) & 1ul);
  }
};

// wait_select() is select(2) or pselect(2) in a coroutine. sets[] are the
// caller's.
int wait_select(int nfds, fd_set* const sets[3], TimePoint deadline, const sigset_t* mask) {
  if (nfds < 0) {
    errno = EINVAL;
    return -1;
  }
  const FdSets want(nfds, sets);
  std::vector<unsigned long> got[3];
  for (;;) {
    timeval zero{0, 0};
    fd_set* s[3] = {want.scratch(0, got[0]), want.scratch(1, got[1]), want.scratch(2, got[2])};
    int rc = mask ? real::pselect(nfds, s[0], s[1], s[2], &kZero, mask)
                  : real::select(nfds, s[0], s[1], s[2], &zero);
    if (rc > 0 || (rc == 0 && due(deadline))) {
      for (int k = 0; k < 3; ++k) {
        if (sets[k]) std::memcpy(sets[k], got[k].data(), got[k].size() * sizeof(unsigned long));
      }
      return rc;
    }
    if (rc < 0) return rc;
    Interests wanted;
    for (int fd = 0; fd < nfds; ++fd) {
      std::uint8_t i = 0;
      if (want.has(0, fd) || want.has(2, fd)) i |= detail::kReadable;
      if (want.has(1, fd)) i |= detail::kWritable;
      wanted.add(fd, i);
    }
    if (!wanted.wait(deadline, mask)) return -1;
  }
}

// wait_epoll() is epoll_wait on a program's own epoll fd in a coroutine:
// that fd is itself pollable, readable while it has events.
int wait_epoll(int epfd, epoll_event* events, int max, TimePoint deadline, const sigset_t* mask) {
  for (;;) {
    int rc = mask ? real::epoll_pwait(epfd, events, max, 0, mask)
                  : real::epoll_wait(epfd, events, max, 0);
    if (rc != 0 || due(deadline)) return rc;
    detail::mark_not_ready(epfd, detail::kReadable);
    detail::InterruptibleWait scope(detail::Interrupt::kAlways);
    detail::WaitSignalMask masked(mask);
    if (detail::wait_for_fd(epfd, detail::kReadable, deadline) == WaitResult::kError) return -1;
  }
}

bool valid(const timespec* ts) noexcept {
  return !ts || (ts->tv_sec >= 0 && ts->tv_nsec >= 0 && ts->tv_nsec < 1000000000);
}

}  // namespace
}  // namespace coil::hook

using namespace coil::hook;  // NOLINT: the hooks below are the C ABI
using coil::Duration;
using coil::kNoDeadline;
using coil::TimePoint;
namespace detail = coil::detail;

COIL_HOOK int poll(pollfd* fds, nfds_t n, int timeout) {
  if (!in_coroutine() || timeout == 0) return real::poll(fds, n, timeout);
  return wait_poll(fds, n, deadline_ms(timeout), nullptr);
}

// The signal mask of ppoll, pselect and epoll_pwait is in force while the
// coroutine waits: the scheduler's own epoll wait takes it (WaitSignalMask).
COIL_HOOK int ppoll(pollfd* fds, nfds_t n, const timespec* timeout, const sigset_t* mask) {
  bool now = timeout && timeout->tv_sec == 0 && timeout->tv_nsec == 0;
  if (!in_coroutine() || now || !valid(timeout)) return real::ppoll(fds, n, timeout, mask);
  return wait_poll(fds, n, deadline_ts(timeout), mask);
}

COIL_HOOK int select(int nfds, fd_set* r, fd_set* w, fd_set* e, timeval* timeout) {
  bool now = timeout && timeout->tv_sec == 0 && timeout->tv_usec == 0;
  bool bad = timeout && (timeout->tv_sec < 0 || timeout->tv_usec < 0);
  if (!in_coroutine() || now || bad) return real::select(nfds, r, w, e, timeout);
  TimePoint deadline = kNoDeadline;
  if (timeout) {
    deadline = deadline_in(std::chrono::seconds(timeout->tv_sec) +
                           std::chrono::microseconds(timeout->tv_usec));
  }
  fd_set* const sets[3] = {r, w, e};
  int rc = wait_select(nfds, sets, deadline, nullptr);
  if (timeout && rc >= 0) {
    // Linux's select writes back the time left.
    auto left = deadline - detail::now();
    if (left < Duration::zero()) left = Duration::zero();
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(left).count();
    timeout->tv_sec = us / 1000000;
    timeout->tv_usec = us % 1000000;
  }
  return rc;
}

COIL_HOOK int pselect(int nfds, fd_set* r, fd_set* w, fd_set* e, const timespec* timeout,
                      const sigset_t* mask) {
  bool now = timeout && timeout->tv_sec == 0 && timeout->tv_nsec == 0;
  if (!in_coroutine() || now || !valid(timeout)) return real::pselect(nfds, r, w, e, timeout, mask);
  fd_set* const sets[3] = {r, w, e};
  return wait_select(nfds, sets, deadline_ts(timeout), mask);
}

COIL_HOOK int epoll_wait(int epfd, epoll_event* events, int max, int timeout) {
  if (!in_coroutine() || timeout == 0) return real::epoll_wait(epfd, events, max, timeout);
  return wait_epoll(epfd, events, max, deadline_ms(timeout), nullptr);
}

COIL_HOOK int epoll_pwait(int epfd, epoll_event* events, int max, int timeout,
                          const sigset_t* mask) {
  if (!in_coroutine() || timeout == 0) return real::epoll_pwait(epfd, events, max, timeout, mask);
  return wait_epoll(epfd, events, max, deadline_ms(timeout), mask);
}

COIL_HOOK int epoll_pwait2(int epfd, epoll_event* events, int max, const timespec* timeout,
                           const sigset_t* mask) {
  bool now = timeout && timeout->tv_sec == 0 && timeout->tv_nsec == 0;
  if (!in_coroutine() || now || !valid(timeout)) {
    return real::epoll_pwait2(epfd, events, max, timeout, mask);
  }
  return wait_epoll(epfd, events, max, deadline_ts(timeout), mask);
}

COIL_HOOK int __poll_chk(pollfd* fds, nfds_t n, int timeout, size_t fdslen) {
  if (fdslen / sizeof(*fds) < n) __chk_fail();
  return poll(fds, n, timeout);
}

COIL_HOOK int __ppoll_chk(pollfd* fds, nfds_t n, const timespec* timeout, const sigset_t* mask,
                          size_t fdslen) {
  if (fdslen / sizeof(*fds) < n) __chk_fail();
  return ppoll(fds, n, timeout, mask);
}

// Linked in with every scheduler (link_all.cpp).
namespace coil::hook::anchor {
extern const char poll = 0;
}  // namespace coil::hook::anchor
