// Hooked data calls: read, write and their vector, positional, socket and
// fortified (_FORTIFY_SOURCE) forms, and sendfile. Each is input() or
// output() over the real call; regular files go to file_io.
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <climits>

#include "batched_io.hpp"
#include "file_io.hpp"
#include "hot.hpp"
#include "iov_cursor.hpp"
#include "real.hpp"
#include "transfer.hpp"

extern "C" [[noreturn]] void __chk_fail(void);

namespace coil::hook {
namespace {

// in_file() is true for a regular file used inside a coroutine.
bool in_file(int fd) noexcept {
  if (!in_coroutine()) return false;
  FdContext* c = context_for_use(fd);
  return c && c->state().kind == FdKind::kFile;
}

std::size_t total_of(const iovec* iov, int count) noexcept {
  std::size_t sum = 0;
  for (int i = 0; i < count; ++i) sum += iov[i].iov_len;
  return sum;
}

// is_socket() is true for a stream socket coil knows of.
bool is_socket(int fd) noexcept {
  FdContext* c = find_context(fd);
  return c && c->state().kind == FdKind::kStream;
}

// write's and writev's tries that must raise no SIGPIPE (quiet, see
// output()) go to the socket as send and sendmsg with MSG_NOSIGNAL.
ssize_t write_part(int fd, const char* p, std::size_t n, int quiet) {
  return quiet ? real::send(fd, p, n, quiet) : real::write(fd, p, n);
}

ssize_t writev_part(int fd, const IovCursor& part, int quiet) {
  if (!quiet) return real::writev(fd, part.data(), part.count());
  msghdr m{};
  m.msg_iov = const_cast<iovec*>(part.data());
  m.msg_iovlen = static_cast<std::size_t>(part.count());
  return real::sendmsg(fd, &m, quiet);
}

// Advancer keeps an IovCursor in step with output()'s `done` count.
struct Advancer {
  IovCursor cursor;
  std::size_t at = 0;
  const IovCursor& to(std::size_t done) {
    if (done > at) cursor.advance(done - at);
    at = done;
    return cursor;
  }
};

// recv_nothing() is a recv of 0 bytes from a stream socket: the kernel
// waits for data or SO_RCVTIMEO, and when the time is up TCP returns 0
// where a unix socket says EAGAIN.
ssize_t recv_nothing(int fd, int flags) {
  char none;
  ssize_t n = input(fd, 0, Read::kPeek, [=, &none] { return real::recv(fd, &none, 0, flags); });
  if (n >= 0 || errno != EAGAIN) return n;
  int domain = 0;
  socklen_t len = sizeof domain;
  if (::getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0 &&
      (domain == AF_INET || domain == AF_INET6)) {
    return 0;
  }
  errno = EAGAIN;
  return -1;
}

ssize_t recv_impl(int fd, void* buf, std::size_t n, int flags, sockaddr* addr, socklen_t* len) {
  // MSG_ERRQUEUE never waits (EAGAIN at once on an empty error queue), and
  // MSG_DONTWAIT is the user's own: plain calls.
  if (flags & (MSG_DONTWAIT | MSG_ERRQUEUE)) return real::recvfrom(fd, buf, n, flags, addr, len);
  if (n == 0 && is_socket(fd)) return recv_nothing(fd, flags);
  bool peek = (flags & MSG_PEEK) != 0;
  if (!(flags & MSG_WAITALL) || peek) {
    return input(
        fd, n, peek ? Read::kPeek : Read::kTake,
        [=] { return real::recvfrom(fd, buf, n, flags, addr, len); }, NoFile{},
        [=] { return flags || addr ? coil::detail::kNotBatched : recv_batched(fd, buf, n); });
  }
  // MSG_WAITALL on a non-blocking socket returns what is there: where coil
  // made it non-blocking, go on until all of it, the end of the stream, an
  // error or a signal. Elsewhere a short count is the kernel's own answer
  // (the user's O_NONBLOCK, or a signal that ended a blocking call).
  std::size_t done = 0;
  char* p = static_cast<char*>(buf);
  for (;;) {
    ssize_t got = input(fd, n - done, done > 0 ? Read::kMore : Read::kTake,
                        [=] { return real::recvfrom(fd, p + done, n - done, flags, addr, len); });
    if (got < 0) return done > 0 ? static_cast<ssize_t>(done) : -1;
    done += static_cast<std::size_t>(got);
    if (got == 0 || done >= n || !emulating_context(fd)) return static_cast<ssize_t>(done);
  }
}

ssize_t send_impl(int fd, const void* buf, std::size_t n, int flags, const sockaddr* addr,
                  socklen_t len) {
  if (flags & MSG_DONTWAIT) return real::sendto(fd, buf, n, flags, addr, len);
  const char* p = static_cast<const char*>(buf);
  return output(
      fd, n,
      [=](std::size_t done, int quiet) {
        return real::sendto(fd, p + done, n - done, flags | quiet, addr, len);
      },
      NoFile{}, [=] { return addr ? detail::kNotBatched : send_batched(fd, buf, n, flags); });
}

}  // namespace
}  // namespace coil::hook

using namespace coil::hook;  // NOLINT: the hooks below are the C ABI

// A read of nothing returns 0 at once from sockets and pipes alike (unlike
// recv, which waits), so it needs no hook.
COIL_HOOK COIL_HOT ssize_t read(int fd, void* buf, size_t n) {
  if (n == 0) return real::read(fd, buf, n);
  return input(
      fd, n, Read::kTake, [=] { return real::read(fd, buf, n); },
      [=] {
        iovec v{buf, n};
        return file_read(fd, &v, 1, kCurrentOffset);
      },
      [=] { return recv_batched(fd, buf, n); });
}

COIL_HOOK ssize_t readv(int fd, const iovec* iov, int count) {
  std::size_t want = total_of(iov, count);
  if (want == 0) return real::readv(fd, iov, count);
  return input(
      fd, want, Read::kTake, [=] { return real::readv(fd, iov, count); },
      [=] { return file_read(fd, iov, count, kCurrentOffset); });
}

COIL_HOOK ssize_t pread(int fd, void* buf, size_t n, off_t offset) {
  if (in_file(fd)) {
    iovec v{buf, n};
    return offset < 0 ? real::pread(fd, buf, n, offset) : file_read(fd, &v, 1, offset);
  }
  return real::pread(fd, buf, n, offset);
}

COIL_HOOK COIL_HOT ssize_t write(int fd, const void* buf, size_t n) {
  const char* p = static_cast<const char*>(buf);
  return output(
      fd, n, [=](std::size_t done, int quiet) { return write_part(fd, p + done, n - done, quiet); },
      [=] {
        iovec v{const_cast<void*>(buf), n};
        return file_write(fd, &v, 1, kCurrentOffset);
      },
      [=] { return send_batched(fd, buf, n, 0); });
}

COIL_HOOK ssize_t writev(int fd, const iovec* iov, int count) {
  Advancer rest{IovCursor(iov, count)};
  return output(
      fd, total_of(iov, count),
      [&](std::size_t done, int quiet) { return writev_part(fd, rest.to(done), quiet); },
      [=] { return file_write(fd, iov, count, kCurrentOffset); },
      [=] {
        // writev refuses more than IOV_MAX buffers with EINVAL, sendmsg with EMSGSIZE.
        if (count < 0 || count > IOV_MAX) return coil::detail::kNotBatched;
        msghdr m{};
        m.msg_iov = const_cast<iovec*>(iov);
        m.msg_iovlen = static_cast<std::size_t>(count);
        return sendmsg_batched(fd, &m, 0);
      });
}

COIL_HOOK ssize_t pwrite(int fd, const void* buf, size_t n, off_t offset) {
  if (in_file(fd) && offset >= 0) {
    iovec v{const_cast<void*>(buf), n};
    return file_write(fd, &v, 1, offset);
  }
  return real::pwrite(fd, buf, n, offset);
}

COIL_HOOK ssize_t recv(int fd, void* buf, size_t n, int flags) {
  return recv_impl(fd, buf, n, flags, nullptr, nullptr);
}

COIL_HOOK ssize_t recvfrom(int fd, void* buf, size_t n, int flags, sockaddr* addr, socklen_t* len) {
  return recv_impl(fd, buf, n, flags, addr, len);
}

// MSG_ERRQUEUE never waits (EAGAIN at once on an empty error queue), and
// MSG_DONTWAIT is the user's own: plain calls.
COIL_HOOK ssize_t recvmsg(int fd, msghdr* msg, int flags) {
  ssize_t n;
  if (flags & (MSG_DONTWAIT | MSG_ERRQUEUE)) {
    n = real::recvmsg(fd, msg, flags);
  } else {
    std::size_t want = total_of(msg->msg_iov, static_cast<int>(msg->msg_iovlen));
    n = input(fd, want, (flags & MSG_PEEK) != 0 ? Read::kPeek : Read::kTake,
              [=] { return real::recvmsg(fd, msg, flags); });
  }
  if (n >= 0 && msg->msg_controllen > 0) note_received_fds(*msg);
  return n;
}

COIL_HOOK ssize_t send(int fd, const void* buf, size_t n, int flags) {
  return send_impl(fd, buf, n, flags, nullptr, 0);
}

COIL_HOOK ssize_t sendto(int fd, const void* buf, size_t n, int flags, const sockaddr* addr,
                         socklen_t len) {
  return send_impl(fd, buf, n, flags, addr, len);
}

COIL_HOOK ssize_t sendmsg(int fd, const msghdr* msg, int flags) {
  if (flags & MSG_DONTWAIT) return real::sendmsg(fd, msg, flags);
  Advancer rest{IovCursor(msg->msg_iov, static_cast<int>(msg->msg_iovlen))};
  return output(
      fd, total_of(msg->msg_iov, static_cast<int>(msg->msg_iovlen)),
      [&](std::size_t done, int quiet) {
        if (!done) return real::sendmsg(fd, msg, flags | quiet);
        // The rest carries no ancillary data: that went with the first part.
        msghdr m = *msg;
        const IovCursor& r = rest.to(done);
        m.msg_iov = const_cast<iovec*>(r.data());
        m.msg_iovlen = static_cast<std::size_t>(r.count());
        m.msg_control = nullptr;
        m.msg_controllen = 0;
        return real::sendmsg(fd, &m, flags | quiet);
      },
      NoFile{}, [=] { return sendmsg_batched(fd, msg, flags); });
}

COIL_HOOK ssize_t sendfile(int out, int in, off_t* offset, size_t n) {
  // sendfile takes no MSG_NOSIGNAL: its tries keep the kernel's SIGPIPE.
  return output(out, n,
                [=](std::size_t done, int) { return real::sendfile(out, in, offset, n - done); });
}

// Fortified forms, which glibc's headers substitute under _FORTIFY_SOURCE
// and which would otherwise reach libc's internal read without a hook.
COIL_HOOK ssize_t __read_chk(int fd, void* buf, size_t n, size_t buflen) {
  if (n > buflen) __chk_fail();
  return read(fd, buf, n);
}

COIL_HOOK ssize_t __pread_chk(int fd, void* buf, size_t n, off_t offset, size_t buflen) {
  if (n > buflen) __chk_fail();
  return pread(fd, buf, n, offset);
}

COIL_HOOK ssize_t __recv_chk(int fd, void* buf, size_t n, size_t buflen, int flags) {
  if (n > buflen) __chk_fail();
  return recv(fd, buf, n, flags);
}

COIL_HOOK ssize_t __recvfrom_chk(int fd, void* buf, size_t n, size_t buflen, int flags,
                                 sockaddr* addr, socklen_t* len) {
  if (n > buflen) __chk_fail();
  return recvfrom(fd, buf, n, flags, addr, len);
}

// Large-file aliases: the same functions on x86-64, exported under both names.
COIL_HOOK ssize_t pread64(int, void*, size_t, off_t) __attribute__((alias("pread")));
COIL_HOOK ssize_t pwrite64(int, const void*, size_t, off_t) __attribute__((alias("pwrite")));
COIL_HOOK ssize_t sendfile64(int, int, off_t*, size_t) __attribute__((alias("sendfile")));
COIL_HOOK ssize_t __pread64_chk(int, void*, size_t, off_t, size_t)
    __attribute__((alias("__pread_chk")));

COIL_HOOK int fsync(int fd) {
  if (in_file(fd)) return file_sync(fd, false);
  return real::fsync(fd);
}

COIL_HOOK int fdatasync(int fd) {
  if (in_file(fd)) return file_sync(fd, true);
  return real::fdatasync(fd);
}

// Linked in with every scheduler (link_all.cpp).
namespace coil::hook::anchor {
extern const char rw = 0;
}  // namespace coil::hook::anchor
