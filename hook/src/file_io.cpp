#include "file_io.hpp"

#include <linux/magic.h>
#include <sys/vfs.h>

#include <cerrno>

#include "blocking_pool.hpp"
#include "config.hpp"
#include "fd_context.hpp"
#include "iov_cursor.hpp"
#include "real.hpp"

namespace coil::hook {
namespace {

template <class Call>
ssize_t on_pool(Call&& call) {
  return BlockingPool::files().run_call(call);
}

ssize_t blocking_read(int fd, const iovec* iov, int count, off_t offset) {
  return real::preadv2(fd, iov, count, offset, 0);
}

ssize_t blocking_write(int fd, const iovec* iov, int count, off_t offset) {
  return real::pwritev2(fd, iov, count, offset, 0);
}

// Nowait is the outcome of one RWF_NOWAIT attempt.
enum class Nowait {
  kDone,        // it transferred, or failed as the blocking call would
  kWouldBlock,  // not in the page cache (or no room): the pool must do it
  kRefused,     // the filesystem cannot say (EOPNOTSUPP)
};

template <class Call>
Nowait try_nowait(Call&& call, ssize_t* n) {
  int saved = errno;
  *n = call();
  if (*n >= 0) return Nowait::kDone;
  if (errno == EAGAIN || errno == EOPNOTSUPP || errno == EINVAL) {
    Nowait why = errno == EAGAIN ? Nowait::kWouldBlock : Nowait::kRefused;
    errno = saved;
    return why;
  }
  return Nowait::kDone;  // a real error (EBADF, EISDIR...): the blocking call would say the same
}

FileState* file_state(int fd) noexcept {
  FdContext* c = find_context(fd);
  return c ? c->file() : nullptr;
}

// pseudo() is true for filesystems whose files live in memory and are made
// on demand: they refuse RWF_NOWAIT but never wait for a disk.
bool pseudo(const struct statfs& fs) noexcept {
  switch (static_cast<unsigned long>(fs.f_type)) {
    case PROC_SUPER_MAGIC:
    case SYSFS_MAGIC:
    case CGROUP_SUPER_MAGIC:
    case CGROUP2_SUPER_MAGIC:
    case DEBUGFS_MAGIC:
    case TRACEFS_MAGIC:
    case SECURITYFS_MAGIC:
    case BPF_FS_MAGIC:
      return true;
    default:
      return false;
  }
}

// learn_route() runs once per open file, at its first RWF_NOWAIT refusal:
// one fstatfs(), so that no later call pays a refused syscall again.
FileRoute learn_route(int fd) noexcept {
  struct statfs fs {};
  int saved = errno;
  FileRoute route = ::fstatfs(fd, &fs) == 0 && pseudo(fs) ? FileRoute::kInline : FileRoute::kPool;
  errno = saved;
  if (FileState* f = file_state(fd)) f->set_file_route(route);
  return route;
}

// transfer() is the kAuto policy for one read or write: RWF_NOWAIT inline,
// the pool on a miss (or, for a file whose filesystem refuses RWF_NOWAIT,
// what learn_route() chose), and on a short transfer the rest, since a
// regular file's reader or writer expects all of it unless the file ends.
template <class Try, class Block>
ssize_t transfer(int fd, const iovec* iov, int count, off_t offset, Try&& try_once, Block&& block) {
  FileState* f = file_state(fd);
  FileRoute route = f ? f->file_route() : FileRoute::kTryNowait;
  IovCursor rest(iov, count);
  std::size_t want = rest.total();
  std::size_t done = 0;
  for (;;) {
    off_t at = offset == kCurrentOffset ? kCurrentOffset : offset + static_cast<off_t>(done);
    ssize_t n = 0;
    Nowait tried = Nowait::kWouldBlock;
    if (route == FileRoute::kTryNowait) {
      tried = try_nowait([&] { return try_once(rest, at); }, &n);
      if (tried == Nowait::kRefused) route = learn_route(fd);
    }
    if (tried != Nowait::kDone) {
      auto call = [&] { return block(rest, at); };
      n = route == FileRoute::kInline ? call() : on_pool(call);
    }
    if (n < 0) return done > 0 ? static_cast<ssize_t>(done) : -1;
    done += static_cast<std::size_t>(n);
    if (n == 0 || done >= want) return static_cast<ssize_t>(done);
    rest.advance(static_cast<std::size_t>(n));
  }
}

}  // namespace

ssize_t file_read(int fd, const iovec* iov, int count, off_t offset) {
  switch (config().file_io) {
    case FileIo::kInline:
      return blocking_read(fd, iov, count, offset);
    case FileIo::kPool:
      return on_pool([&] { return blocking_read(fd, iov, count, offset); });
    case FileIo::kAuto:
      break;
  }
  return transfer(
      fd, iov, count, offset,
      [&](const IovCursor& r, off_t at) {
        return real::preadv2(fd, r.data(), r.count(), at, RWF_NOWAIT);
      },
      [&](const IovCursor& r, off_t at) { return blocking_read(fd, r.data(), r.count(), at); });
}

ssize_t file_write(int fd, const iovec* iov, int count, off_t offset) {
  switch (config().file_io) {
    case FileIo::kInline:
      return blocking_write(fd, iov, count, offset);
    case FileIo::kPool:
      return on_pool([&] { return blocking_write(fd, iov, count, offset); });
    case FileIo::kAuto:
      break;
  }
  return transfer(
      fd, iov, count, offset,
      [&](const IovCursor& r, off_t at) {
        return real::pwritev2(fd, r.data(), r.count(), at, RWF_NOWAIT);
      },
      [&](const IovCursor& r, off_t at) { return blocking_write(fd, r.data(), r.count(), at); });
}

int file_sync(int fd, bool data_only) {
  if (config().file_io == FileIo::kInline) return data_only ? real::fdatasync(fd) : real::fsync(fd);
  return static_cast<int>(
      on_pool([&]() -> ssize_t { return data_only ? real::fdatasync(fd) : real::fsync(fd); }));
}

}  // namespace coil::hook
