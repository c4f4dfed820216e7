// The read side and write side of the hooked data calls, over io().
//
// input(): one read-like call. On a stream socket or pipe a short read
// proves the fd empty, so it is marked not ready and the next read parks at
// once instead of making a syscall that would only return EAGAIN.
//
// output(): one write-like call. On a stream socket or pipe it goes on until
// everything is written, as the blocking call does, unless an error or the
// SO_SNDTIMEO deadline stops it (then it returns the count written so far,
// or -1 if none). Datagram and message fds get exactly one call. Its first
// attempt is always the syscall; only what follows an EAGAIN or a short
// write waits for the next writable edge (on a unix connection, also for a
// re-check: see unix_write_io()).
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "coil/detail/fd_wait.hpp"
#include "io.hpp"

namespace coil::hook {

// borrowed_input() waits for a borrowed (left blocking) fd to be readable,
// asking poll(2) since its edges cannot be trusted after a partial read,
// then makes the blocking call, which returns at once.
template <class Call>
ssize_t borrowed_input(int fd, Deadline& deadline, Call&& call);

// wait_borrowed() is borrowed_input()'s wait: false with errno on timeout.
bool wait_borrowed(int fd, Deadline& deadline);

template <class Call>
ssize_t borrowed_input(int fd, Deadline& deadline, Call&& call) {
  if (!wait_borrowed(fd, deadline)) return -1;
  return call();
}

// NoFile says a call has no regular-file form (recv on a file fails anyway).
struct NoFile {};

// Read says what kind of read-like call input() makes.
enum class Read : std::uint8_t {
  kTake,  // takes what is there
  kPeek,  // MSG_PEEK: never marks the fd drained, the data it saw is still there
  kMore,  // the rest of a MSG_WAITALL receive that has data already: any caught
          // signal ends its wait (the kernel returns the count, SA_RESTART or not)
};

// input() is a read-like call of up to `want` bytes. On a regular file in a
// coroutine it runs file() instead. batched(), if given, is the call made in
// the scheduler's batch (see batched_or()).
template <class Call, class File = NoFile, class Batched = NoBatch>
ssize_t input(int fd, std::size_t want, Read how, Call&& call, File&& file = NoFile{},
              Batched&& batched = NoBatch{}) {
  bool moved = how == Read::kMore;
  if (!in_coroutine()) {
    ssize_t n = call();
    if (n >= 0 || errno != EAGAIN) return n;
    return retry_outside(fd, Dir::kIn, call, moved);
  }
  FdContext* c = context_for_use(fd);
  if (!c) return call();
  FdState s = c->state();
  if constexpr (!std::is_same_v<std::decay_t<File>, NoFile>) {
    if (s.kind == FdKind::kFile) return file();
  }
  Deadline deadline = Deadline::of(c, Dir::kIn);
  if (s.kind == FdKind::kBorrowed && !s.user_nonblock) return borrowed_input(fd, deadline, call);
  ssize_t n = io(fd, Dir::kIn, deadline, s, call, moved, batched);
  if (n > 0 && static_cast<std::size_t>(n) < want && how != Read::kPeek && s.emulates_blocking() &&
      s.drains_on_short_read()) {
    detail::mark_drained(fd, detail::kReadable);
  }
  return n;
}

// kUnixWriteRecheck is how often a write parked on a full unix connection
// tries again when no event comes (see unix_write_io()): after 10 ms at
// first, doubled up to once a second. A write that waits long costs about
// one syscall a second; a peer's shutdown is noticed at most 10 ms plus the
// time already waited late, and at most a second late.
inline constexpr Pauses kUnixWriteRecheck{std::chrono::milliseconds(10), std::chrono::seconds(1)};

// take_socket_error() makes a pending socket error (SO_ERROR, which it
// clears) errno, if there is one.
void take_socket_error(int fd) noexcept;

// unix_write_io() is io() for a write to a full AF_UNIX stream or seqpacket
// socket. The peer's shutdown(SHUT_RD) ends the kernel's blocked write with
// EPIPE (or the count so far), but sets only SEND_SHUTDOWN here, which
// unix_poll() reports as none of EPOLLOUT, EPOLLERR and EPOLLHUP: no epoll
// or poll(2) event comes. So the wait for room also ends after each pause
// of kUnixWriteRecheck, and the call is tried again (with SO_SNDTIMEO as the
// deadline and signals ending the wait exactly as in io()). An EPIPE then
// takes the socket's pending error, as the kernel's blocked write does
// first: ECONNRESET when the peer closed with data unread.
template <class Call>
ssize_t unix_write_io(int fd, Deadline& deadline, Call&& call, bool moved) {
  ssize_t n = retry_paused(
      [&] {
        ssize_t r = call();
        if (r < 0 && errno == EAGAIN && in_coroutine()) {
          detail::mark_not_ready(fd, detail::kWritable);
        }
        return r;
      },
      [](int err) { return err == EAGAIN; }, deadline, kUnixWriteRecheck, Watch{fd, Dir::kOut},
      moved);
  if (n < 0 && errno == EPIPE) take_socket_error(fd);
  return n;
}

// quiet_try() is MSG_NOSIGNAL for a try after output()'s first that the
// kernel's blocking call would make without raising SIGPIPE: on a stream
// socket once it has written something (it returns the count; the user's
// next write raises it), and on a unix one at all, whose blocked write
// meets the peer's shutdown as EPIPE without SIGPIPE. Else 0: the first try,
// and TCP's blocked send, which raises it on EPIPE if nothing went out.
inline int quiet_try(FdState s, std::size_t done) noexcept {
  return s.kind == FdKind::kStream && (done > 0 || s.unix_conn) ? MSG_NOSIGNAL : 0;
}

// output() is a write-like call of `total` bytes; call(done, quiet) writes
// what is left after the first `done` bytes, with `quiet` (0 or
// MSG_NOSIGNAL, only on sockets; see quiet_try()) added to its flags. On a
// regular file in a coroutine it runs file() instead. batched(), if given,
// is the first try made in the scheduler's batch (see batched_or()).
template <class Call, class File = NoFile, class Batched = NoBatch>
ssize_t output(int fd, std::size_t total, Call&& call, File&& file = NoFile{},
               Batched&& batched = NoBatch{}) {
  FdContext* c;
  std::size_t done = 0;
  if (!in_coroutine()) {
    ssize_t n = call(done, 0);
    if (n < 0 && errno != EAGAIN) return n;
    // All written, or nothing more to send (sendfile at the end of its input).
    if (n >= 0 && (static_cast<std::size_t>(n) >= total || n == 0)) return n;
    c = find_context(fd);
    if (!c || !c->state().emulates_blocking() || (n >= 0 && !c->state().drains_on_short_read())) {
      if (n < 0) errno = EAGAIN;
      return n;
    }
    if (n > 0) done = static_cast<std::size_t>(n);
  } else {
    c = context_for_use(fd);
    if constexpr (!std::is_same_v<std::decay_t<File>, NoFile>) {
      if (c && c->state().kind == FdKind::kFile) return file();
    }
    // Writing nothing returns at once, ready or not.
    if (!c || !c->state().emulates_blocking() || total == 0) return call(done, 0);
    // The first attempt ignores a remembered "not writable": TCP takes a
    // small write into its last, partly filled packet long before epoll
    // reports the socket writable again, and the kernel's blocking send
    // returns at once there.
    detail::SignalCheck signals;
    ssize_t n = batched_or(c->state(), batched, [&] { return call(done, 0); });
    if (n < 0 && errno != EAGAIN) return n;
    if (n >= 0 &&
        (static_cast<std::size_t>(n) >= total || n == 0 || !c->state().drains_on_short_read())) {
      return n;
    }
    // It must wait for room now: a caught signal that ran during the try ends it (see io()).
    if (signals.ran(interrupt_mode(Deadline::of(c, Dir::kOut), n > 0))) {
      if (n < 0) errno = EINTR;
      return n;
    }
    if (n > 0) done = static_cast<std::size_t>(n);
    // EAGAIN, or a short write: the send buffer is full until the next edge.
    if (n < 0) {
      detail::mark_not_ready(fd, detail::kWritable);
    } else {
      detail::mark_drained(fd, detail::kWritable);
    }
  }
  FdState s = c->state();
  Deadline deadline = Deadline::of(c, Dir::kOut);
  for (;;) {
    int quiet = quiet_try(s, done);
    auto again = [&] { return call(done, quiet); };
    ssize_t n = s.unix_conn ? unix_write_io(fd, deadline, again, done > 0)
                            : io(fd, Dir::kOut, deadline, s, again, done > 0);
    if (n < 0) return done > 0 ? static_cast<ssize_t>(done) : -1;
    done += static_cast<std::size_t>(n);
    // n == 0: nothing more to send (sendfile at the end of its input).
    if (done >= total || n == 0 || !s.drains_on_short_read()) return static_cast<ssize_t>(done);
    // A short write: the send buffer is full until the next edge.
    if (in_coroutine()) detail::mark_drained(fd, detail::kWritable);
  }
}

}  // namespace coil::hook
