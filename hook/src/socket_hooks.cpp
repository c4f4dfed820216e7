// Hooked socket set-up calls: socket, socketpair, accept, accept4, connect,
// setsockopt's timeouts, and shutdown (which makes the scheduler's batch of
// sends first, batched_io.hpp). Sockets made in coroutines are non-blocking in
// the kernel from birth (SOCK_NONBLOCK, no extra fcntl); the user's own
// SOCK_NONBLOCK is remembered apart.
//
// What still leaks: O_NONBLOCK belongs to the open file description, not to
// the fd. A socket from socket() or accept() made in a coroutine, or a pipe
// or socket-pair end once used in one, keeps coil's O_NONBLOCK when it is
// handed to another process (SCM_RIGHTS, inheritance over exec), which then
// sees EAGAIN on its blocking calls. Received back in this process under a
// new number it is classified afresh and taken for the user's O_NONBLOCK.
// libco, libgo and Photon share this; pipes and socket pairs are made
// non-blocking lazily so the usual hand-a-child-its-end pattern escapes it.
#include <sys/socket.h>
#include <sys/un.h>

#include <chrono>
#include <cstdint>

#include "coil/detail/batch.hpp"
#include "io.hpp"
#include "real.hpp"

namespace coil::hook {
namespace {

FdKind kind_of_type(int type) noexcept {
  return (type & 0xf) == SOCK_STREAM ? FdKind::kStream : FdKind::kMessage;
}

FdState own_socket(int domain, int type) noexcept {
  int base = type & 0xf;
  bool unix_conn = domain == AF_UNIX && (base == SOCK_STREAM || base == SOCK_SEQPACKET);
  bool inet = domain == AF_INET || domain == AF_INET6;
  return FdState{kind_of_type(type), (type & SOCK_NONBLOCK) != 0, true, unix_conn, inet};
}

// finish_connect() waits for a connect in progress as the blocking
// connect would, then completes it by calling connect() again, not by
// reading SO_ERROR: the second call moves the kernel's socket to its final
// state (SS_CONNECTED, or back to SS_UNCONNECTED with the error) exactly as
// the blocking path does, so that a later connect() on the socket says
// EISCONN, or retries the handshake, as it would in the kernel. While the
// handshake is still in progress the kernel says EALREADY: wait on. On
// SO_SNDTIMEO the call fails with `pending` (EINPROGRESS after the first
// connect, EALREADY for a repeated one), as the kernel's does.
int finish_connect(int fd, FdContext* c, const sockaddr* addr, socklen_t len, int pending) {
  Deadline deadline = Deadline::of(c, Dir::kOut);
  for (;;) {
    if (in_coroutine()) detail::mark_not_ready(fd, detail::kWritable);
    if (!wait_ready(fd, Dir::kOut, deadline)) {
      if (errno == EAGAIN) errno = pending;
      return -1;
    }
    if (real::connect(fd, addr, len) == 0 || errno == EISCONN) return 0;
    if (errno != EALREADY) return -1;
  }
}

// retry_unix_connect() covers the one case where a non-blocking connect
// says EAGAIN: a unix socket whose listener's backlog is full. The blocking
// connect waits for room, which no readiness event announces, so retry
// with a growing pause until SO_SNDTIMEO (then EAGAIN, as the kernel says).
int retry_unix_connect(int fd, FdContext* c, const sockaddr* addr, socklen_t len) {
  using std::chrono::milliseconds;
  Deadline deadline = Deadline::of(c, Dir::kOut);
  int rc = retry_paused([=] { return real::connect(fd, addr, len); },
                        [](int err) { return err == EAGAIN; }, deadline,
                        Pauses{milliseconds(1), milliseconds(64)});
  if (rc < 0 && errno == EINPROGRESS) return finish_connect(fd, c, addr, len, EINPROGRESS);
  return rc;
}

int accept_impl(int fd, sockaddr* addr, socklen_t* len, int flags) {
  before_new_fd();
  if (!in_coroutine()) {
    int s = static_cast<int>(blocking_io(
        fd, Dir::kIn, [=] { return static_cast<ssize_t>(real::accept4(fd, addr, len, flags)); }));
    if (s >= 0) note_unknown_fd(s);
    return s;
  }
  FdContext* c = context_for_use(fd);
  FdState listener = c ? c->state() : FdState{};
  Deadline deadline = Deadline::of(c, Dir::kIn);
  int s = static_cast<int>(io(fd, Dir::kIn, deadline, listener, [=] {
    return static_cast<ssize_t>(real::accept4(fd, addr, len, flags | SOCK_NONBLOCK));
  }));
  if (s < 0) return s;
  FdKind kind = listener.kind == FdKind::kMessage ? FdKind::kMessage : FdKind::kStream;
  note_new_fd(s,
              FdState{kind, (flags & SOCK_NONBLOCK) != 0, true, listener.unix_conn, listener.inet});
  // Like the kernel's accepted socket, the new fd inherits the listener's
  // timeouts.
  FdContext* n = c ? find_context(s) : nullptr;
  if (FileState* f = n ? n->file() : nullptr) {
    f->set_recv_timeout(c->recv_timeout());
    f->set_send_timeout(c->send_timeout());
  }
  return s;
}

std::int64_t timeout_ns(const void* value, socklen_t len) noexcept {
  // SO_RCVTIMEO_OLD's timeval and SO_RCVTIMEO_NEW's __kernel_sock_timeval
  // are both two 64-bit fields on x86-64.
  if (!value || len < static_cast<socklen_t>(2 * sizeof(std::int64_t))) return 0;
  const auto* tv = static_cast<const std::int64_t*>(value);
  if (tv[0] < 0) return 1;  // the kernel treats a negative time as "do not wait"
  return tv[0] * 1000000000 + tv[1] * 1000;
}

}  // namespace
}  // namespace coil::hook

using namespace coil::hook;  // NOLINT: the hooks below are the C ABI

COIL_HOOK int socket(int domain, int type, int protocol) noexcept {
  if (!in_coroutine()) {
    int fd = real::socket(domain, type, protocol);
    if (fd >= 0) note_unknown_fd(fd);
    return fd;
  }
  before_new_fd();
  int fd = real::socket(domain, type | SOCK_NONBLOCK, protocol);
  if (fd >= 0) note_new_fd(fd, own_socket(domain, type));
  return fd;
}

// Like pipes (see pipe2() in fd_hooks.cpp), socket pairs are made as the
// user asks and made non-blocking at first use in a coroutine: one end often
// goes to a child process.
COIL_HOOK int socketpair(int domain, int type, int protocol, int fds[2]) noexcept {
  before_new_fd();
  int rc = real::socketpair(domain, type, protocol, fds);
  if (rc == 0) {
    note_unknown_fd(fds[0]);
    note_unknown_fd(fds[1]);
  }
  return rc;
}

COIL_HOOK int accept(int fd, sockaddr* addr, socklen_t* len) {
  return accept_impl(fd, addr, len, 0);
}

COIL_HOOK int accept4(int fd, sockaddr* addr, socklen_t* len, int flags) {
  return accept_impl(fd, addr, len, flags);
}

COIL_HOOK int connect(int fd, const sockaddr* addr, socklen_t len) {
  // In a coroutine the socket must be non-blocking before the call.
  FdContext* c = in_coroutine() ? context_for_use(fd) : nullptr;
  int rc = real::connect(fd, addr, len);
  if (rc == 0 || (errno != EINPROGRESS && errno != EALREADY && errno != EAGAIN)) return rc;
  int pending = errno;
  if (!c) c = find_context(fd);
  if (!c || !c->state().emulates_blocking()) {
    errno = pending;
    return rc;
  }
  if (pending == EAGAIN) return retry_unix_connect(fd, c, addr, len);
  return finish_connect(fd, c, addr, len, pending);
}

COIL_HOOK int setsockopt(int fd, int level, int name, const void* value, socklen_t len) noexcept {
  int rc = real::setsockopt(fd, level, name, value, len);
  if (rc != 0 || level != SOL_SOCKET) return rc;
  bool recv = name == SO_RCVTIMEO_OLD || name == SO_RCVTIMEO_NEW;
  bool send = name == SO_SNDTIMEO_OLD || name == SO_SNDTIMEO_NEW;
  if (!recv && !send) return rc;
  // The kernel keeps the value too (getsockopt reports it); coil applies it.
  FdContext* c = context_slot(fd);
  if (FileState* f = c ? c->file_or_make() : nullptr) {
    std::int64_t ns = timeout_ns(value, len);
    recv ? f->set_recv_timeout(ns) : f->set_send_timeout(ns);
  }
  return rc;
}

// A send queued in this thread's batch was made before the shutdown: it goes first.
COIL_HOOK int shutdown(int fd, int how) noexcept {
  if (in_coroutine()) coil::detail::flush_batch();
  return real::shutdown(fd, how);
}

// Linked in with every scheduler (link_all.cpp).
namespace coil::hook::anchor {
extern const char socket = 0;
}  // namespace coil::hook::anchor
