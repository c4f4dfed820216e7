#include "fd_context.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <new>

#include "coil/detail/fd_wait.hpp"
#include "coil/scheduler.hpp"
#include "real.hpp"
#include "running.hpp"

namespace coil::hook {
namespace {

// kind_of_socket() classifies a socket by its type, and tells whether it
// is a unix connection (FdState::unix_conn) or an inet stream (FdState::inet).
FdKind kind_of_socket(int fd, FdState* s) noexcept {
  int type = 0;
  socklen_t len = sizeof type;
  if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0) return FdKind::kMessage;
  if (type == SOCK_STREAM || type == SOCK_SEQPACKET) {
    int domain = 0;
    len = sizeof domain;
    if (::getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0) {
      s->unix_conn = domain == AF_UNIX;
      s->inet = domain == AF_INET || domain == AF_INET6;
    }
  }
  return type == SOCK_STREAM ? FdKind::kStream : FdKind::kMessage;
}

// kind_of() classifies an open fd by its inode type.
FdKind kind_of(int fd, const struct stat& st, FdState* s) noexcept {
  mode_t format = st.st_mode & S_IFMT;
  // The stdio fds are usually shared with other processes (a shell
  // pipeline, a terminal, a supervisor's socket): changing their O_NONBLOCK
  // would change it for those processes too, so they are borrowed.
  if (fd <= STDERR_FILENO && format != S_IFREG && format != S_IFBLK && format != S_IFDIR) {
    return FdKind::kBorrowed;
  }
  switch (format) {
    case S_IFSOCK:
      return kind_of_socket(fd, s);
    case S_IFIFO:
      return FdKind::kPipe;
    case S_IFREG:
    case S_IFBLK:
    case S_IFDIR:
      return FdKind::kFile;
    case S_IFCHR:
      return FdKind::kBorrowed;
    default:
      return FdKind::kPollable;  // anonymous inodes: eventfd, timerfd, epoll...
  }
}

// classify() fills in fd's state on its first use in a coroutine.
FdState classify(int fd) noexcept {
  int saved = errno;
  FdState s;
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    errno = saved;
    s.kind = FdKind::kNone;
    return s;
  }
  s.kind = kind_of(fd, st, &s);
  int flags = real::fcntl(fd, F_GETFL);
  if (flags < 0) flags = 0;
  s.user_nonblock = (flags & O_NONBLOCK) != 0;
  bool may_own = s.kind == FdKind::kStream || s.kind == FdKind::kMessage ||
                 s.kind == FdKind::kPipe || s.kind == FdKind::kPollable;
  if (s.user_nonblock) {
    s.sys_nonblock = may_own;
  } else if (may_own && real::fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0) {
    s.sys_nonblock = true;
  }
  errno = saved;
  return s;
}

}  // namespace

constinit detail::ChunkedTable<FdContext> fd_contexts;

void FileState::set_user_nonblock(bool on) noexcept {
  std::uint32_t bits = bits_.load(std::memory_order_relaxed);
  std::uint32_t next;
  do {
    next = on ? bits | kUserNonblockBit : bits & ~kUserNonblockBit;
  } while (!bits_.compare_exchange_weak(bits, next, std::memory_order_acq_rel));
}

namespace {

// The recycling list of released FileStates. A mutex: states are made and
// released once per fd lifetime, not per call.
std::mutex free_mutex;
FileState* free_list = nullptr;

}  // namespace

FileState* FileState::make(FdState s) noexcept {
  FileState* f = nullptr;
  {
    coil::detail::InternalScope internal;  // pool threads close fds too
    std::lock_guard lock(free_mutex);
    if (free_list) {
      f = free_list;
      free_list = f->next_free_;
    }
  }
  if (!f) f = new (std::nothrow) FileState;
  if (!f) return nullptr;
  f->set_state(s);
  f->recv_ns_.store(0, std::memory_order_relaxed);
  f->send_ns_.store(0, std::memory_order_relaxed);
  f->route_.store(FileRoute::kTryNowait, std::memory_order_relaxed);
  f->refs_.store(1, std::memory_order_release);
  return f;
}

void FileState::release() noexcept {
  if (refs_.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  coil::detail::InternalScope internal;
  std::lock_guard lock(free_mutex);
  next_free_ = free_list;
  free_list = this;
}

void FileState::unlock_after_fork() noexcept { new (&free_mutex) std::mutex; }

FileState* FdContext::file_or_make() noexcept {
  if (FileState* f = file()) return f;
  FileState* fresh = FileState::make(FdState{});
  if (!fresh) return nullptr;
  FileState* expected = nullptr;
  if (file_.compare_exchange_strong(expected, fresh, std::memory_order_acq_rel)) return fresh;
  fresh->release();  // another thread attached one first
  return expected;
}

void FdContext::attach(FileState* f) noexcept {
  if (FileState* old = file_.exchange(f, std::memory_order_acq_rel)) old->release();
}

FdContext* context_slot(int fd) noexcept { return fd_contexts.get(fd); }

FdContext* context_first_use(int fd) noexcept {
  FdContext* c = fd_contexts.get(fd);
  if (c && c->state().kind == FdKind::kUnknown) {
    // Timeouts set before the first use stay: keep the FileState.
    if (FileState* f = c->file_or_make()) f->set_state(classify(fd));
  }
  return c;
}

void note_new_fd(int fd, FdState state) noexcept {
  detail::fd_reopened(fd);
  if (FdContext* c = fd_contexts.get(fd)) c->attach(FileState::make(state));
}

void note_dup_fd(int from, int to) noexcept {
  detail::fd_reopened(to);
  // The copy shares the FileState even when nothing is known yet: the first
  // use of either fd then classifies the description for both. Classified
  // apart, the second would take the O_NONBLOCK coil set through the first
  // for the user's.
  FdContext* src = fd_contexts.get(from);
  FileState* f = src ? src->file_or_make() : nullptr;
  if (f) f->retain();
  if (FdContext* dst = fd_contexts.get(to)) {
    dst->attach(f);
  } else if (f) {
    f->release();
  }
}

void note_unknown_fd(int fd) noexcept {
  detail::fd_reopened(fd);
  if (FdContext* c = fd_contexts.find(fd)) c->attach(nullptr);
}

void note_received_fds(const msghdr& msg) noexcept {
  for (const cmsghdr* cm = CMSG_FIRSTHDR(&msg); cm;
       cm = CMSG_NXTHDR(const_cast<msghdr*>(&msg), const_cast<cmsghdr*>(cm))) {
    if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) continue;
    std::size_t bytes = cm->cmsg_len - CMSG_LEN(0);
    const unsigned char* data = CMSG_DATA(cm);
    for (std::size_t i = 0; i + sizeof(int) <= bytes; i += sizeof(int)) {
      int received;
      std::memcpy(&received, data + i, sizeof received);
      note_unknown_fd(received);
    }
  }
}

void note_closed_fd(int fd) noexcept {
  coil::forget_fd(fd);
  note_unknown_fd(fd);
}

}  // namespace coil::hook
