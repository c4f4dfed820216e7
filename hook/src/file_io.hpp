// Regular-file I/O from coroutines. A read first tries preadv2(RWF_NOWAIT),
// which the kernel serves from the page cache or refuses with EAGAIN instead
// of blocking; only a miss goes to a pool thread (BlockingPool::files()). A
// write tries pwritev2(RWF_NOWAIT) the same way where the filesystem takes
// it. fsync always goes to the pool. COIL_FILE_IO changes the policy.
#pragma once

#include <sys/types.h>
#include <sys/uio.h>

namespace coil::hook {

// kCurrentOffset as the offset means "at the file position, moving it", as
// read(2) and write(2) do; any other value is pread/pwrite's offset.
inline constexpr off_t kCurrentOffset = -1;

// file_read() / file_write() are readv/preadv and writev/pwritev on a
// regular file from a coroutine, with the plain calls' results and errno.
ssize_t file_read(int fd, const iovec* iov, int count, off_t offset);
ssize_t file_write(int fd, const iovec* iov, int count, off_t offset);

// file_sync() is fsync (data_only: fdatasync) on a pool thread.
int file_sync(int fd, bool data_only);

}  // namespace coil::hook
