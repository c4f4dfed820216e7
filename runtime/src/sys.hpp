// Raw system calls for the runtime's own fds (the poller's eventfd and epoll
// fd, stderr from a signal handler, COIL_STATS's copy of stderr). They go straight to the kernel:
// coil's hooks, which would otherwise see the runtime's own calls, never run, and no other
// interposer can get in between either.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstddef>

namespace coil::detail::sys {

inline ssize_t read(int fd, void* buf, std::size_t n) noexcept {
  return ::syscall(SYS_read, fd, buf, n);
}

inline ssize_t write(int fd, const void* buf, std::size_t n) noexcept {
  return ::syscall(SYS_write, fd, buf, n);
}

inline int close(int fd) noexcept { return static_cast<int>(::syscall(SYS_close, fd)); }

inline int poll(pollfd* fds, nfds_t n, int timeout_ms) noexcept {
  return static_cast<int>(::syscall(SYS_poll, fds, n, timeout_ms));
}

inline int eventfd(unsigned initval, int flags) noexcept {
  return static_cast<int>(::syscall(SYS_eventfd2, initval, flags));
}

inline int dup_cloexec(int fd, int lowest) noexcept {
  return static_cast<int>(::syscall(SYS_fcntl, fd, F_DUPFD_CLOEXEC, lowest));
}

inline int fstat(int fd, struct stat* st) noexcept {
  return static_cast<int>(::syscall(SYS_fstat, fd, st));
}

}  // namespace coil::detail::sys
