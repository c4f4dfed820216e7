// Hooked batch calls: recvmmsg and sendmmsg, which move several messages in
// one system call. They keep the batching: after a partial batch the real
// call is made again on the rest, not once per message.
//
// What the blocking kernel calls do, and so what these emulate on a socket
// coil made non-blocking (Linux 6.18; tests/hook_diff_batch_test.cpp):
// - recvmmsg waits for the first datagram and, without MSG_WAITFORONE, for
//   each of the others, every wait bounded by SO_RCVTIMEO on its own. Its
//   `timeout` runs from the start of the call but is looked at only after a
//   datagram arrived (recvmmsg(2), BUGS); the time left is written back. An
//   error after a datagram ends the call with the count and stays pending
//   on the socket for the next call.
// - sendmmsg sends every message, waiting for room; a message a stream
//   socket took only in part is finished before the next. An error after a
//   message ends the call with the count; the kernel drops that error.
// Once a call has moved a message, any caught signal ends its wait with the
// count (the kernel returns it instead of restarting).
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <ctime>

#include "batch_wait.hpp"
#include "iov_cursor.hpp"
#include "real.hpp"

namespace coil::hook {
namespace {

// note_received_fds_of() notes the SCM_RIGHTS fds of the first n messages.
void note_received_fds_of(const mmsghdr* vec, int n) noexcept {
  for (int i = 0; i < n; ++i) {
    if (vec[i].msg_hdr.msg_controllen > 0) note_received_fds(vec[i].msg_hdr);
  }
}

// Clock is the kernel's clock for recvmmsg's timeout (CLOCK_MONOTONIC).
using Clock = std::chrono::steady_clock;

// RecvTimeout is recvmmsg's `timeout`. The first real call gets the user's
// own timespec, so that the kernel checks it (EINVAL, EFAULT) and fixes the
// deadline; later calls get what is left of that deadline (zero once it has
// passed: the kernel then returns after one more datagram).
class RecvTimeout {
 public:
  explicit RecvTimeout(timespec* user) noexcept : user_(user) {}

  // arg() is the timeout argument for the next real call.
  timespec* arg() noexcept {
    if (!user_ || !fixed_) return user_;
    Clock::duration left = std::max(end_ - Clock::now(), Clock::duration::zero());
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
    left_ = timespec{static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
    return &left_;
  }

  // called() takes in the result of a real call made with arg(); errno is
  // left as the call set it.
  void called(int n) noexcept {
    if (!user_) return;
    if (fixed_) {
      if (n > 0) *user_ = left_;  // the kernel writes the time left only after a datagram
      return;
    }
    if (n < 0 && errno != EAGAIN) return;
    // The user's timespec is valid: untouched after EAGAIN, the time left after a datagram.
    end_ = Clock::now() + std::chrono::seconds(user_->tv_sec) +
           std::chrono::nanoseconds(user_->tv_nsec);
    fixed_ = true;
  }

  // expired() is true when the last datagram came at or after the deadline.
  bool expired() const noexcept { return user_ && user_->tv_sec == 0 && user_->tv_nsec == 0; }

 private:
  timespec* user_;
  timespec left_{};
  Clock::time_point end_{};
  bool fixed_ = false;
};

// RecvBatch is one recvmmsg with blocking semantics: `done` messages in.
struct RecvBatch {
  int fd;
  mmsghdr* vec;
  unsigned vlen;
  int flags;
  RecvTimeout timeout;
  unsigned done = 0;

  // call() receives into the rest of vec without waiting.
  int call() {
    int n = real::recvmmsg(fd, vec + done, vlen - done, flags, timeout.arg());
    timeout.called(n);
    return n;
  }

  // complete() is true when the blocking call would return now.
  bool complete() const noexcept {
    if (done >= vlen) return true;
    if (done == 0) return false;
    // MSG_WAITFORONE waits for the first only; out-of-band data ends the call.
    return (flags & MSG_WAITFORONE) || timeout.expired() ||
           (vec[done - 1].msg_hdr.msg_flags & MSG_OOB);
  }
};

// recv_rest() goes on with a recvmmsg whose first real call returned n
// (-1 with EAGAIN, or a short count) on a socket whose blocking coil emulates.
int recv_rest(RecvBatch& b, FdContext* c, int n) {
  if (n < 0) {
    if (in_coroutine()) detail::mark_not_ready(b.fd, detail::kReadable);
    Deadline first = Deadline::of(c, Dir::kIn);
    n = static_cast<int>(io(b.fd, Dir::kIn, first, c->state(), [&] { return b.call(); }));
    if (n < 0) return -1;
  }
  b.done = static_cast<unsigned>(n);
  Deadline deadline = Deadline::of(c, Dir::kIn);  // each datagram has its own SO_RCVTIMEO
  while (!b.complete()) {
    short ready = events_now(b.fd, POLLIN);
    // An error (the batch may just have stored it) stays for the next call.
    if (ready & (POLLERR | POLLNVAL)) break;
    if (!(ready & (POLLIN | POLLHUP))) {
      if (!wait_for(b.fd, Dir::kIn, deadline, true)) break;
      continue;
    }
    n = b.call();
    if (n < 0 && (errno != EAGAIN || !wait_for(b.fd, Dir::kIn, deadline, true))) break;
    if (n <= 0) continue;
    b.done += static_cast<unsigned>(n);
    deadline = Deadline::of(c, Dir::kIn);
  }
  return static_cast<int>(b.done);
}

int recv_batch(int fd, mmsghdr* vec, unsigned vlen, int flags, timespec* timeout) {
  bool inside = in_coroutine();
  FdContext* c = inside ? context_for_use(fd) : nullptr;
  if (inside && (!c || !c->state().emulates_blocking())) {
    return real::recvmmsg(fd, vec, vlen, flags, timeout);
  }
  RecvBatch b{fd, vec, vlen, flags, RecvTimeout(timeout)};
  int n = b.call();
  if (n < 0 && errno != EAGAIN) return n;
  if (n >= 0) {
    b.done = static_cast<unsigned>(n);
    if (b.complete()) return n;
  }
  if (!inside && !(c = emulating_context(fd))) {
    if (n < 0) errno = EAGAIN;
    return n;
  }
  return recv_rest(b, c, n);
}

// kMaxMessages is UIO_MAXIOV: sendmmsg sends at most this many per call.
constexpr unsigned kMaxMessages = 1024;

std::size_t size_of(const msghdr& m) noexcept {
  std::size_t sum = 0;
  for (std::size_t i = 0; i < m.msg_iovlen; ++i) sum += m.msg_iov[i].iov_len;
  return sum;
}

// SendBatch is one sendmmsg with blocking semantics: `done` messages out.
struct SendBatch {
  int fd;
  mmsghdr* vec;
  unsigned vlen;
  int flags;
  unsigned done = 0;

  // call() sends the rest of vec without waiting.
  int call() { return real::sendmmsg(fd, vec + done, vlen - done, flags); }

  // cut_short() is true when a stream socket took the last message sent in part.
  bool cut_short() const noexcept {
    return done > 0 && vec[done - 1].msg_len < size_of(vec[done - 1].msg_hdr);
  }
};

// finish_message() sends the rest of a message a stream socket took in
// part, as the blocking call does before the next one. The rest goes with
// MSG_NOSIGNAL and without its ancillary data, as write's rest does
// (rw_hooks.cpp). False when an error, SO_SNDTIMEO or a signal stops it.
bool finish_message(int fd, FdContext* c, mmsghdr& m, int flags) {
  std::size_t total = size_of(m.msg_hdr);
  IovCursor rest(m.msg_hdr.msg_iov, static_cast<int>(m.msg_hdr.msg_iovlen));
  rest.advance(m.msg_len);
  msghdr h = m.msg_hdr;
  h.msg_control = nullptr;
  h.msg_controllen = 0;
  Deadline deadline = Deadline::of(c, Dir::kOut);
  while (m.msg_len < total) {
    if (!wait_for(fd, Dir::kOut, deadline, true)) return false;
    h.msg_iov = const_cast<iovec*>(rest.data());
    h.msg_iovlen = static_cast<std::size_t>(rest.count());
    ssize_t n = real::sendmsg(fd, &h, flags | MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN) return false;
    if (n <= 0) continue;
    m.msg_len += static_cast<unsigned>(n);
    rest.advance(static_cast<std::size_t>(n));
  }
  return true;
}

// send_rest() goes on with a sendmmsg whose first real call returned n
// (-1 with EAGAIN, or fewer messages than asked, or one in part) on a socket
// whose blocking coil emulates.
int send_rest(SendBatch& b, FdContext* c, int n) {
  bool stream = c->state().kind == FdKind::kStream;
  Deadline deadline = Deadline::of(c, Dir::kOut);
  for (;;) {
    if (n < 0) {
      if (!wait_for(b.fd, Dir::kOut, deadline, b.done > 0)) {
        return b.done > 0 ? static_cast<int>(b.done) : -1;
      }
    } else {
      b.done += static_cast<unsigned>(n);
      if (stream && b.cut_short() && !finish_message(b.fd, c, b.vec[b.done - 1], b.flags)) break;
      if (b.done >= b.vlen) break;
      deadline = Deadline::of(c, Dir::kOut);  // each message has its own SO_SNDTIMEO
      Stop why = why_stopped(b.fd, stream);
      if (why == Stop::kError) break;
      if (why == Stop::kFull && !wait_for(b.fd, Dir::kOut, deadline, true)) break;
    }
    n = b.call();
    if (n < 0 && errno != EAGAIN) return b.done > 0 ? static_cast<int>(b.done) : -1;
  }
  return static_cast<int>(b.done);
}

int send_batch(int fd, mmsghdr* vec, unsigned vlen, int flags) {
  bool inside = in_coroutine();
  FdContext* c = inside ? context_for_use(fd) : nullptr;
  if (inside && (!c || !c->state().emulates_blocking())) {
    return real::sendmmsg(fd, vec, vlen, flags);
  }
  SendBatch b{fd, vec, std::min(vlen, kMaxMessages), flags};
  int n = b.call();
  if (n < 0 && errno != EAGAIN) return n;
  if (n >= 0) {
    b.done = static_cast<unsigned>(n);
    if (b.done >= b.vlen && !b.cut_short()) return n;
    b.done = 0;
  }
  if (!inside && !(c = emulating_context(fd))) {
    if (n < 0) errno = EAGAIN;
    return n;
  }
  return send_rest(b, c, n);
}

}  // namespace
}  // namespace coil::hook

using namespace coil::hook;  // NOLINT: the hooks below are the C ABI

// MSG_ERRQUEUE never waits, MSG_DONTWAIT is the user's own: plain calls.
COIL_HOOK int recvmmsg(int fd, mmsghdr* vec, unsigned int vlen, int flags, timespec* timeout) {
  int n = (flags & (MSG_DONTWAIT | MSG_ERRQUEUE)) ? real::recvmmsg(fd, vec, vlen, flags, timeout)
                                                  : recv_batch(fd, vec, vlen, flags, timeout);
  if (n > 0) note_received_fds_of(vec, n);
  return n;
}

COIL_HOOK int sendmmsg(int fd, mmsghdr* vec, unsigned int vlen, int flags) {
  if (flags & MSG_DONTWAIT) return real::sendmmsg(fd, vec, vlen, flags);
  return send_batch(fd, vec, vlen, flags);
}

// Linked in with every scheduler (link_all.cpp).
namespace coil::hook::anchor {
extern const char batch = 0;
}  // namespace coil::hook::anchor
