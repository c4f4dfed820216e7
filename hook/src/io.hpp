// The one mechanism behind every hooked I/O call: try the call; when it
// meets EAGAIN on an fd whose blocking coil emulates, wait for readiness
// (parking the coroutine on epoll, or in poll(2) on a plain thread) with the
// fd's SO_RCVTIMEO/SO_SNDTIMEO as the deadline, then try again. Each hook is
// a few lines over io() (Photon's doio and Go's internal/poll are the model).
#pragma once

#include <sys/types.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <type_traits>

#include "coil/detail/batch.hpp"
#include "coil/detail/fd_wait.hpp"
#include "fd_context.hpp"
#include "running.hpp"

namespace coil::hook {

// in_coroutine() is the one branch every hook takes first.
inline bool in_coroutine() noexcept { return detail::tls_running != nullptr; }

// before_new_fd() makes this thread's batch of calls (coil/detail/batch.hpp)
// before a call that creates an fd: a queued call on a number closed behind
// coil's back (fclose() of an fdopen()ed socket, close_range) must not reach
// the file that takes the number next. Closes coil sees flush by themselves.
inline void before_new_fd() noexcept {
  if (in_coroutine()) detail::flush_batch();
}

// Dir says which readiness a call needs and which timeout applies to it.
enum class Dir : std::uint8_t {
  kIn,   // readable; SO_RCVTIMEO
  kOut,  // writable; SO_SNDTIMEO
};

// Deadline turns a timeout into a deadline the first time one is needed, so
// the clock is read only when a call actually waits.
class Deadline {
 public:
  explicit Deadline(std::int64_t timeout_ns) noexcept : timeout_ns_(timeout_ns) {}
  static Deadline of(const FdContext* c, Dir dir) noexcept {
    if (!c) return Deadline(0);
    return Deadline(dir == Dir::kIn ? c->recv_timeout() : c->send_timeout());
  }
  bool none() const noexcept { return timeout_ns_ <= 0; }
  TimePoint at() noexcept;
  // remaining_ms() is for poll(2): -1 for none, else the ms left, rounded up.
  int remaining_ms() noexcept;

 private:
  std::int64_t timeout_ns_;
  TimePoint at_{};
  bool fixed_ = false;
};

// wait_ready() waits for fd to become ready for dir. It returns false with
// errno set when the deadline passes (EAGAIN), the fd is closed (EBADF) or a
// caught signal ends the wait (EINTR): one without SA_RESTART, or any one
// under a timeout or once the call has `moved` data (the kernel then returns
// the count instead of restarting). It may throw the scheduler's
// forced-unwind exception (see park()).
bool wait_ready(int fd, Dir dir, Deadline& deadline, bool moved = false);

// nap_until() parks the running coroutine until the deadline, sleeping
// through wakes by others. False, with errno EINTR, when a caught signal
// ended it first (which needs an InterruptibleWait around it).
bool nap_until(TimePoint deadline);

// interrupt_mode() says which caught signals end a wait under `deadline`:
// all of them when the call has a timeout (signal(7): socket calls under
// SO_RCVTIMEO or SO_SNDTIMEO are never restarted) or has `moved` data (see
// wait_ready()), else those without SA_RESTART.
inline detail::Interrupt interrupt_mode(const Deadline& deadline, bool moved = false) noexcept {
  return deadline.none() && !moved ? detail::Interrupt::kUnlessRestart : detail::Interrupt::kAlways;
}

// interest() maps a direction to the runtime's interest bits.
inline std::uint8_t interest(Dir dir) noexcept {
  return dir == Dir::kIn ? detail::kReadable : detail::kWritable;
}

// Pauses is the schedule of a retry_paused() wait: the first pause, doubled
// after each try up to the longest.
struct Pauses {
  Duration first;
  Duration longest;
};

// Watch is an fd whose readiness for dir also ends a pause (none if fd < 0):
// for a wait that fd events announce, but not always.
struct Watch {
  int fd = -1;
  Dir dir = Dir::kIn;
};

// pause_for() waits `length`, never past the deadline, or until `watch` is
// ready: it parks the running coroutine (until an epoll edge of watch), or
// sleeps the thread outside coroutines (in poll(2) on watch), whose blocking
// call would have blocked it. False with errno EAGAIN when the deadline has
// passed, EINTR when a caught signal ended the wait as scope says (also one
// caught since scope began, while the caller was trying), or EBADF when
// watch was closed.
bool pause_for(Duration length, Deadline& deadline, const detail::InterruptibleWait& scope,
               Watch watch = {});

// retry_paused() is the wait for what no fd event announces: a file lock
// released elsewhere, room in a unix listener's backlog, a unix peer's
// shutdown (with `watch`, whose readiness also ends each pause). The
// caller's own try found it busy; this pauses and calls attempt() (one
// non-blocking try: >= 0 when done, else -1 with errno) again until it is
// done or fails with an errno busy() does not accept, the deadline passes
// (-1, EAGAIN) or a caught signal ends the wait as the blocking call would
// end (-1, EINTR; `moved`: see wait_ready()). One InterruptibleWait spans
// all the pauses and tries.
template <class Attempt, class Busy>
auto retry_paused(Attempt&& attempt, Busy&& busy, Deadline& deadline, Pauses pauses,
                  Watch watch = {}, bool moved = false) -> decltype(attempt()) {
  detail::InterruptibleWait scope(interrupt_mode(deadline, moved));
  for (Duration pause = pauses.first;; pause = std::min(pause * 2, pauses.longest)) {
    if (!pause_for(pause, deadline, scope, watch)) return -1;
    auto rc = attempt();
    if (rc >= 0 || !busy(errno)) return rc;
  }
}

// emulating_context() is fd's context when coil emulates blocking calls on
// fd (it made fd non-blocking behind a blocking user), else nullptr.
inline FdContext* emulating_context(int fd) noexcept {
  FdContext* c = find_context(fd);
  return c && c->state().emulates_blocking() ? c : nullptr;
}

// retry_outside() is the slow path of a call made outside coroutines that
// met EAGAIN: on an fd coil made non-blocking behind the user's back it
// waits in poll(2) and retries, as the blocking call would have; otherwise
// EAGAIN is the kernel's true answer. `moved`: see wait_ready().
template <class Call>
ssize_t retry_outside(int fd, Dir dir, Call&& call, bool moved = false) {
  FdContext* c = emulating_context(fd);
  if (!c) {
    errno = EAGAIN;
    return -1;
  }
  Deadline deadline = Deadline::of(c, dir);
  for (;;) {
    if (!wait_ready(fd, dir, deadline, moved)) return -1;
    ssize_t n = call();
    if (n >= 0 || errno != EAGAIN) return n;
  }
}

// NoBatch says a call has no batched form.
struct NoBatch {};

// batched_or() makes a call inside a coroutine: through batched() (the call
// made in the scheduler's batch, batched_io.hpp) on a TCP or unix stream
// socket, if that makes it, else through call().
template <class Batched, class Call>
ssize_t batched_or(FdState s, Batched& batched, Call&& call) {
  if constexpr (!std::is_same_v<std::decay_t<Batched>, NoBatch>) {
    if (s.kind == FdKind::kStream && (s.inet || s.unix_conn)) {
      long n = batched();
      if (n != detail::kNotBatched) return n;
    }
  }
  return call();
}

// io() runs call() with blocking semantics on fd in direction dir. Inside a
// coroutine on an emulated-blocking fd, a remembered "not ready" skips the
// syscall that would only return EAGAIN; on EAGAIN it marks the fd not ready
// and parks until the next edge. Elsewhere it is the plain call. `moved`
// says the call has moved data already (see wait_ready()); batched(), if
// given, is the call made in the scheduler's batch (see batched_or()).
template <class Call, class Batched = NoBatch>
ssize_t io(int fd, Dir dir, Deadline& deadline, FdState s, Call&& call, bool moved = false,
           Batched&& batched = NoBatch{}) {
  if (!s.emulates_blocking()) return call();
  for (;;) {
    if (!wait_ready(fd, dir, deadline, moved)) return -1;
    detail::SignalCheck signals;
    ssize_t n = batched_or(s, batched, call);
    if (n >= 0 || errno != EAGAIN) return n;
    // A caught signal that ran during the call (while it was queued in the scheduler's batch,
    // a whole round of other coroutines long) ends it now that it would wait, as it ends the
    // kernel's blocking call.
    if (signals.ran(interrupt_mode(deadline, moved))) {
      errno = EINTR;
      return -1;
    }
    detail::mark_not_ready(fd, interest(dir));
  }
}

// blocking_io() is io() for one call that needs no per-kind handling: the
// outside fast path is the plain call and one branch.
template <class Call>
ssize_t blocking_io(int fd, Dir dir, Call&& call) {
  if (!in_coroutine()) {
    ssize_t n = call();
    if (n >= 0 || errno != EAGAIN) return n;
    return retry_outside(fd, dir, call);
  }
  FdContext* c = context_for_use(fd);
  if (!c) return call();
  Deadline deadline = Deadline::of(c, dir);
  return io(fd, dir, deadline, c->state(), call);
}

}  // namespace coil::hook
