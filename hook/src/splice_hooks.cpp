// Hooked pipe-buffer calls: splice, tee and vmsplice. Like read and write,
// they return once they moved something; on EAGAIN from an end coil made
// non-blocking they wait for the end the user's blocking call would wait
// on, and try again.
//
// When the kernel's splice waits is a matter of each end (Linux 6.18; the
// rules are pinned by tests/hook_diff_batch_test.cpp):
// - between two pipes (splice, tee), SPLICE_F_NONBLOCK or O_NONBLOCK on
//   either end makes the whole call non-blocking;
// - otherwise a pipe end waits unless SPLICE_F_NONBLOCK or its own
//   O_NONBLOCK; a socket end waits unless its own O_NONBLOCK, except that an
//   AF_UNIX stream socket being read also takes the pipe's non-blocking mode
//   (TCP, UDP and other sockets block regardless, as splice(2) warns);
// - the kernel waits for room in an output pipe before it reads a socket,
//   and for data in an input pipe before it writes a socket;
// - a splice from a pipe into a blocking socket goes on, waiting for room,
//   while the pipe holds data and `len` is not reached.
// vmsplice ignores O_NONBLOCK altogether: only SPLICE_F_NONBLOCK stops it
// waiting, so coil's O_NONBLOCK never shows, and outside coroutines it is
// the plain call.
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <chrono>

#include "batch_wait.hpp"
#include "real.hpp"

namespace coil::hook {
namespace {

// emulated() is true when coil emulates blocking calls on c's fd.
bool emulated(const FdContext* c) noexcept { return c && c->state().emulates_blocking(); }

// SpliceEnd is one end of a splice or tee, as the user's blocking call sees it.
struct SpliceEnd {
  int fd;
  Dir dir;  // kIn: the end data comes from; kOut: the end it goes to
  FdContext* c;
  bool pipe = false;
  bool unix_stream = false;  // an AF_UNIX stream socket being read
  bool user_nonblock = false;
  bool waits = false;  // the user's call waits while this end is not ready
};

bool is_unix(int fd) noexcept {
  int domain = 0;
  socklen_t len = sizeof domain;
  return ::getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0 && domain == AF_UNIX;
}

// describe() learns what set_waits() needs of one end: from coil's state
// where it has classified the fd, else from the kernel (fstat, F_GETFL).
SpliceEnd describe(int fd, Dir dir, FdContext* c) {
  SpliceEnd e{fd, dir, c};
  FdState s = c ? c->state() : FdState{};
  bool stream = s.kind == FdKind::kStream;
  e.pipe = s.kind == FdKind::kPipe;
  e.user_nonblock = s.user_nonblock;
  if (s.kind == FdKind::kUnknown || s.kind == FdKind::kBorrowed || s.kind == FdKind::kNone) {
    struct stat st {};
    e.pipe = ::fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode);
    int type = 0;
    socklen_t len = sizeof type;
    stream = S_ISSOCK(st.st_mode) && ::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 &&
             type == SOCK_STREAM;
    int fl = real::fcntl(fd, F_GETFL);
    e.user_nonblock = fl >= 0 && (fl & O_NONBLOCK);
  }
  e.unix_stream = dir == Dir::kIn && stream && is_unix(fd);
  return e;
}

// set_waits() applies the kernel's rules (see the top of the file) with the
// O_NONBLOCK the user set and the user's SPLICE_F_NONBLOCK.
void set_waits(SpliceEnd& in, SpliceEnd& out, bool flag_nonblock) noexcept {
  if (in.pipe && out.pipe) {
    in.waits = out.waits = !(flag_nonblock || in.user_nonblock || out.user_nonblock);
    return;
  }
  SpliceEnd& pipe = in.pipe ? in : out;
  SpliceEnd& other = in.pipe ? out : in;
  bool pipe_nonblock = flag_nonblock || pipe.user_nonblock;
  pipe.waits = !pipe_nonblock;
  other.waits = !other.user_nonblock && !(other.unix_stream && pipe_nonblock);
}

short events_of(Dir dir) noexcept { return dir == Dir::kIn ? POLLIN : POLLOUT; }

// SpliceWait is a splice or tee that met EAGAIN, with its ends in the order
// the kernel checks them.
struct SpliceWait {
  SpliceEnd first;
  SpliceEnd second;
  Deadline first_deadline = Deadline::of(first.c, first.dir);
  Deadline second_deadline = Deadline::of(second.c, second.dir);

  // blocked() is the first end poll(2) finds not ready, or nullptr.
  SpliceEnd* blocked() noexcept {
    pollfd p[2] = {{first.fd, events_of(first.dir), 0}, {second.fd, events_of(second.dir), 0}};
    if (real::poll(p, 2, 0) < 0) return nullptr;
    if (p[0].revents == 0) return &first;
    if (p[1].revents == 0) return &second;
    return nullptr;
  }

  // retry() waits as the user's blocking call would, and calls again.
  template <class Call>
  ssize_t retry(Call&& call) {
    for (;;) {
      SpliceEnd* end = blocked();
      if (end && !end->waits) {
        errno = EAGAIN;
        return -1;
      }
      if (end) {
        Deadline& deadline = end == &first ? first_deadline : second_deadline;
        if (!wait_for(end->fd, end->dir, deadline, false)) return -1;
      } else if (!pause_briefly()) {
        return -1;
      }
      ssize_t n = call();
      if (n >= 0 || errno != EAGAIN) return n;
    }
  }

  // pause_briefly() is the wait when both ends look ready yet the call said
  // EAGAIN (another thread took the data or the room meanwhile): no edge is
  // due, so pause 1 ms rather than spin.
  bool pause_briefly() {
    Deadline none(0);
    detail::InterruptibleWait scope(detail::Interrupt::kUnlessRestart);
    return pause_for(std::chrono::milliseconds(1), none, scope);
  }
};

template <class Call>
ssize_t wait_and_retry(int in, FdContext* ci, int out, FdContext* co, unsigned flags, Call&& call) {
  SpliceEnd a = describe(in, Dir::kIn, ci);
  SpliceEnd b = describe(out, Dir::kOut, co);
  set_waits(a, b, (flags & SPLICE_F_NONBLOCK) != 0);
  // Into a pipe from anything else, the kernel first waits for room.
  SpliceWait w = a.pipe || !b.pipe ? SpliceWait{a, b} : SpliceWait{b, a};
  return w.retry(call);
}

// sends_to_socket() is true for a splice whose output is a socket that
// coil keeps non-blocking for a blocking user (its input is then a pipe).
bool sends_to_socket(const FdContext* co) noexcept {
  if (!emulated(co)) return false;
  FdKind kind = co->state().kind;
  return kind == FdKind::kStream || kind == FdKind::kMessage;
}

// splice_rest() goes on with a splice from a pipe into such a socket that
// moved `done` bytes: the blocking call sends on, waiting for room, while
// the pipe holds data, until `len`, an error, SO_SNDTIMEO or a signal.
template <class Call>
ssize_t splice_rest(int in, int out, FdContext* co, std::size_t len, std::size_t done,
                    Call&& call) {
  bool stream = co->state().kind == FdKind::kStream;
  Deadline deadline = Deadline::of(co, Dir::kOut);
  while (done < len && (events_now(in, POLLIN) & POLLIN)) {
    Stop why = why_stopped(out, stream);
    if (why == Stop::kError) break;
    if (why == Stop::kFull && !wait_for(out, Dir::kOut, deadline, true)) break;
    ssize_t n = call(len - done);
    if (n < 0 && errno == EAGAIN) continue;
    if (n <= 0) break;
    done += static_cast<std::size_t>(n);
    deadline = Deadline::of(co, Dir::kOut);
  }
  return static_cast<ssize_t>(done);
}

// transfer() is splice or tee with blocking semantics; call(n) moves up to
// n bytes without waiting where coil made an end non-blocking.
template <class Call>
ssize_t transfer(int in, int out, std::size_t len, unsigned flags, Call&& call) {
  FdContext* ci;
  FdContext* co;
  ssize_t n;
  if (in_coroutine()) {
    ci = context_for_use(in);
    co = context_for_use(out);
    if (!emulated(ci) && !emulated(co)) return call(len);
    n = call(len);
  } else {
    n = call(len);
    if (n < 0 ? errno != EAGAIN : n == 0 || static_cast<std::size_t>(n) >= len) return n;
    ci = find_context(in);
    co = find_context(out);
  }
  if (n < 0) {
    if (errno != EAGAIN || (!emulated(ci) && !emulated(co))) return n;
    n = wait_and_retry(in, ci, out, co, flags, [&] { return call(len); });
  }
  if (n > 0 && static_cast<std::size_t>(n) < len && sends_to_socket(co)) {
    n = splice_rest(in, out, co, len, static_cast<std::size_t>(n), call);
  }
  return n;
}

}  // namespace
}  // namespace coil::hook

using namespace coil::hook;  // NOLINT: the hooks below are the C ABI

COIL_HOOK ssize_t splice(int in, loff_t* off_in, int out, loff_t* off_out, size_t len,
                         unsigned int flags) {
  return transfer(in, out, len, flags,
                  [=](std::size_t n) { return real::splice(in, off_in, out, off_out, n, flags); });
}

COIL_HOOK ssize_t tee(int in, int out, size_t len, unsigned int flags) {
  return transfer(in, out, len, flags, [=](std::size_t n) { return real::tee(in, out, n, flags); });
}

COIL_HOOK ssize_t vmsplice(int fd, const iovec* iov, size_t count, unsigned int flags) {
  if (!in_coroutine() || (flags & SPLICE_F_NONBLOCK)) return real::vmsplice(fd, iov, count, flags);
  FdContext* c = context_for_use(fd);
  if (!c || c->state().kind != FdKind::kPipe) return real::vmsplice(fd, iov, count, flags);
  ssize_t n = real::vmsplice(fd, iov, count, flags | SPLICE_F_NONBLOCK);
  if (n >= 0 || errno != EAGAIN) return n;
  // A write end (the kernel asks FMODE_WRITE first) waits for room, a read end for data.
  int fl = real::fcntl(fd, F_GETFL);
  Dir dir = fl >= 0 && (fl & O_ACCMODE) == O_RDONLY ? Dir::kIn : Dir::kOut;
  Deadline none(0);
  for (;;) {
    if (!wait_for(fd, dir, none, false)) return -1;
    n = real::vmsplice(fd, iov, count, flags | SPLICE_F_NONBLOCK);
    if (n >= 0 || errno != EAGAIN) return n;
  }
}

// Linked in with every scheduler (link_all.cpp).
namespace coil::hook::anchor {
extern const char splice = 0;
}  // namespace coil::hook::anchor
