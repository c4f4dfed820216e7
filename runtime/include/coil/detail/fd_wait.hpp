// The fd-readiness interface the hook layer is written against: wait for an
// fd with a deadline, and tell the runtime what a syscall just learned.
//
// The protocol of a hooked call (edge-based, no syscall wasted):
//   for (;;) {
//     n = real_call(fd, ...);                 // try first
//     if (n >= 0 || errno != EAGAIN) return n;
//     mark_not_ready(fd, kReadable);          // the kernel said: not ready
//     switch (wait_for_fd(fd, kReadable, deadline)) { ... }  // next edge
//   }
// A caller that knows the fd is drained (a short read) may mark_drained()
// first and skip the read that would only return EAGAIN.
#pragma once

#include <cstddef>
#include <cstdint>

#include "coil/detail/park.hpp"
#include "coil/scheduler.hpp"
#include "coil/time.hpp"

namespace coil::detail {

// Interest bits for fd waits.
enum Interest : std::uint8_t {
  kReadable = 1,
  kWritable = 2,
};

// FdInterest is one fd and the readiness wanted of it.
struct FdInterest {
  int fd;
  std::uint8_t interest;
};

// wait_for_fd() parks the running coroutine until fd becomes ready for
// interest or the deadline passes. It returns kReady at once if a readiness
// edge has been seen since the last mark_not_ready(fd, interest) (initially
// assumed ready). kError sets errno: EBADF for a bad fd or one forgotten
// while waiting. fds epoll cannot watch (regular files) are always kReady.
// Registers fd with epoll on its first use. Precondition: inside a coroutine.
// mode makes the wait interruptible (see InterruptibleWait) only if it
// parks: an fd already ready costs nothing more.
WaitResult wait_for_fd(int fd, std::uint8_t interest, TimePoint deadline,
                       Interrupt mode = Interrupt::kNever);

// wait_for_any_fd() parks until one of fds[0, n) has seen a readiness edge
// for its interest since its last mark_not_ready(), or the deadline passes.
// It is the wait behind poll() and select(): it returns kReady at once if an
// fd is already marked ready, cannot be watched by epoll or is invalid, and
// when an fd is forgotten while waiting (the caller's next poll(2) reports
// the details); kError only when out of memory. Precondition: inside a
// coroutine.
WaitResult wait_for_any_fd(const FdInterest* fds, std::size_t n, TimePoint deadline);

// mark_not_ready() records that a syscall on fd found it not ready for
// interest (EAGAIN), so that the next wait_for_fd() parks. It registers fd
// with epoll first if needed, so that the mark holds until a real edge.
// Precondition: inside a coroutine.
void mark_not_ready(int fd, std::uint8_t interest) noexcept;

// mark_drained() is mark_not_ready() for a caller that knows fd is not
// ready without having met EAGAIN (a short read or write on a stream): the
// next wait_for_fd() parks at once, and counts the syscall it saved in
// SchedulerStats::syscalls_avoided.
void mark_drained(int fd, std::uint8_t interest) noexcept;

// fd_reopened() says that fd now names another open file, or none: it was
// closed, or a new socket, pipe or file got its number. Every scheduler then
// registers fd with its epoll afresh on its next wait, even if the close
// happened behind its back on another thread. Thread-safe, any thread.
void fd_reopened(int fd) noexcept;

}  // namespace coil::detail
