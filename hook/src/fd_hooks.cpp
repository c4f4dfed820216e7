// Hooked fd management: close, fcntl, ioctl(FIONBIO), dup/dup2/dup3, pipe,
// pipe2, eventfd and open. They keep FdContext true to the kernel: who set
// O_NONBLOCK, which fds share an open file, which numbers were reused.
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdarg>

#include "coil/scheduler.hpp"
#include "io.hpp"
#include "lock_wait.hpp"
#include "real.hpp"

namespace coil::hook {
namespace {

// user_flags() hides the O_NONBLOCK coil set from F_GETFL.
int user_flags(int fd, int flags) noexcept {
  FdContext* c = find_context(fd);
  if (flags >= 0 && c) {
    FdState s = c->state();
    if (s.sys_nonblock && !s.user_nonblock) flags &= ~O_NONBLOCK;
  }
  return flags;
}

// set_flags() is F_SETFL: the user's O_NONBLOCK is remembered, and coil's
// stays set in the kernel.
int set_flags(int fd, int flags) noexcept {
  FdContext* c = in_coroutine() ? context_for_use(fd) : find_context(fd);
  FileState* f = c ? c->file() : nullptr;
  bool own = f && f->state().sys_nonblock;
  int rc = real::fcntl(fd, F_SETFL, own ? flags | O_NONBLOCK : flags);
  if (rc == 0 && f) f->set_user_nonblock((flags & O_NONBLOCK) != 0);
  return rc;
}

int set_fionbio(int fd, int* on) noexcept {
  FdContext* c = in_coroutine() ? context_for_use(fd) : find_context(fd);
  FileState* f = c ? c->file() : nullptr;
  int rc = real::ioctl(fd, FIONBIO, on);
  if (rc != 0 || !f) return rc;
  bool user = *on != 0;
  f->set_user_nonblock(user);
  if (!user && f->state().sys_nonblock) {
    int keep = 1;
    real::ioctl(fd, FIONBIO, &keep);
  }
  return rc;
}

bool takes_mode(int flags) noexcept {
  return (flags & O_CREAT) != 0 || (flags & O_TMPFILE) == O_TMPFILE;
}

}  // namespace
}  // namespace coil::hook

using namespace coil::hook;  // NOLINT: the hooks below are the C ABI

COIL_HOOK int close(int fd) {
  // Waiters on this thread get EBADF and the fd leaves epoll before the
  // number can be reused.
  note_closed_fd(fd);
  return real::close(fd);
}

COIL_HOOK int fcntl(int fd, int cmd, ...) {
  va_list ap;
  va_start(ap, cmd);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  switch (cmd) {
    case F_GETFL:
      return user_flags(fd, real::fcntl(fd, F_GETFL));
    case F_SETFL:
      return set_flags(fd, static_cast<int>(reinterpret_cast<std::intptr_t>(arg)));
    case F_DUPFD:
    case F_DUPFD_CLOEXEC: {
      int to = real::fcntl(fd, cmd, arg);
      if (to >= 0) note_dup_fd(fd, to);
      return to;
    }
    case F_SETLKW:
    case F_OFD_SETLKW: {
      if (!in_coroutine()) return real::fcntl(fd, cmd, arg);
      int try_cmd = cmd == F_SETLKW ? F_SETLK : F_OFD_SETLK;
      return wait_for_lock([=] { return real::fcntl(fd, try_cmd, arg); });
    }
    default:
      return real::fcntl(fd, cmd, arg);
  }
}

COIL_HOOK int ioctl(int fd, unsigned long request, ...) noexcept {
  va_list ap;
  va_start(ap, request);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  if (request == FIONBIO) return set_fionbio(fd, static_cast<int*>(arg));
  return real::ioctl(fd, request, arg);
}

COIL_HOOK int dup(int fd) noexcept {
  before_new_fd();
  int to = real::dup(fd);
  if (to >= 0) note_dup_fd(fd, to);
  return to;
}

namespace {

// replace() is dup2's and dup3's: dup(fd) onto `to`, closing what `to` was.
// It forgets `to` first, so that its waiters get EBADF and it leaves epoll
// while the old file is still there to remove; but only when the call will
// not fail at once for a bad `fd` or bad flags (one fcntl): a failing dup2
// closes nothing, and its waiters must go on waiting. What `to` was stays
// known until the call succeeds.
template <class Call>
int replace(int fd, int to, int flags, Call&& call) noexcept {
  if (fd != to && (flags & ~O_CLOEXEC) == 0 && real::fcntl(fd, F_GETFD) >= 0) {
    coil::forget_fd(to);
  }
  int rc = call();
  if (rc >= 0) note_dup_fd(fd, rc);
  return rc;
}

}  // namespace

COIL_HOOK int dup2(int fd, int to) noexcept {
  if (fd == to) return real::dup2(fd, to);
  return replace(fd, to, 0, [=] { return real::dup2(fd, to); });
}

COIL_HOOK int dup3(int fd, int to, int flags) noexcept {
  return replace(fd, to, flags, [=] { return real::dup3(fd, to, flags); });
}

// Pipes are made as the user asks, and each end is made non-blocking only
// when first used in a coroutine (context_for_use()): O_NONBLOCK belongs to
// the open file description, which the end a program hands to a child
// (posix_spawn, popen, fork and exec) or passes over SCM_RIGHTS shares, and
// a child that is not under coil would see EAGAIN on its blocking reads.
COIL_HOOK int pipe2(int fds[2], int flags) noexcept {
  before_new_fd();
  int rc = real::pipe2(fds, flags);
  if (rc != 0) return rc;
  note_unknown_fd(fds[0]);
  note_unknown_fd(fds[1]);
  return rc;
}

COIL_HOOK int pipe(int fds[2]) noexcept { return pipe2(fds, 0); }

COIL_HOOK int eventfd(unsigned int initval, int flags) noexcept {
  before_new_fd();
  if (!in_coroutine()) {
    int fd = real::eventfd(initval, flags);
    if (fd >= 0) note_unknown_fd(fd);
    return fd;
  }
  int fd = real::eventfd(initval, flags | EFD_NONBLOCK);
  if (fd >= 0) note_new_fd(fd, FdState{FdKind::kPollable, (flags & EFD_NONBLOCK) != 0, true});
  return fd;
}

// COIL_OPEN_MODE declares `mode`: open's optional argument after `flags`,
// passed only with O_CREAT or O_TMPFILE. (va_start must be in the hook.)
#define COIL_OPEN_MODE(flags)  \
  mode_t mode = 0;             \
  if (takes_mode(flags)) {     \
    va_list ap;                \
    va_start(ap, flags);       \
    mode = va_arg(ap, mode_t); \
    va_end(ap);                \
  }

// open is hooked only to forget what coil knew of a reused fd number.
COIL_HOOK int open(const char* path, int flags, ...) {
  COIL_OPEN_MODE(flags)
  before_new_fd();
  int fd = real::open(path, flags, mode);
  if (fd >= 0) note_unknown_fd(fd);
  return fd;
}

COIL_HOOK int openat(int dir, const char* path, int flags, ...) {
  COIL_OPEN_MODE(flags)
  before_new_fd();
  int fd = real::openat(dir, path, flags, mode);
  if (fd >= 0) note_unknown_fd(fd);
  return fd;
}

// Large-file names: the same functions on x86-64.
COIL_HOOK int open64(const char* path, int flags, ...) {
  COIL_OPEN_MODE(flags)
  return open(path, flags, mode);
}

COIL_HOOK int openat64(int dir, const char* path, int flags, ...) {
  COIL_OPEN_MODE(flags)
  return openat(dir, path, flags, mode);
}

COIL_HOOK int fcntl64(int fd, int cmd, ...) {
  va_list ap;
  va_start(ap, cmd);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  return fcntl(fd, cmd, arg);
}

// Linked in with every scheduler (link_all.cpp).
namespace coil::hook::anchor {
extern const char fd = 0;
}  // namespace coil::hook::anchor
