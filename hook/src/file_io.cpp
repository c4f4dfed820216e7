#include "file_io.hpp"

#include <cerrno>

#include "blocking_pool.hpp"
#include "config.hpp"
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

// try_nowait() is one RWF_NOWAIT attempt; false when it would have
// blocked or the file system cannot say (the caller then uses the pool).
template <class Call>
bool try_nowait(Call&& call, ssize_t* n) {
  int saved = errno;
  *n = call();
  if (*n >= 0) return true;
  if (errno == EAGAIN || errno == EOPNOTSUPP || errno == EINVAL) {
    errno = saved;
    return false;
  }
  return true;  // a real error (EBADF, EISDIR...): the blocking call would say the same
}

// transfer() is the kAuto policy for one read or write: RWF_NOWAIT inline,
// the pool on a miss, and on a short transfer the rest, since a regular
// file's reader or writer expects all of it unless the file ends.
template <class Try, class Block>
ssize_t transfer(const iovec* iov, int count, off_t offset, Try&& try_once, Block&& block) {
  IovCursor rest(iov, count);
  std::size_t want = rest.total();
  std::size_t done = 0;
  for (;;) {
    off_t at = offset == kCurrentOffset ? kCurrentOffset : offset + static_cast<off_t>(done);
    ssize_t n;
    if (!try_nowait([&] { return try_once(rest, at); }, &n)) {
      n = on_pool([&] { return block(rest, at); });
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
      iov, count, offset,
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
      iov, count, offset,
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
