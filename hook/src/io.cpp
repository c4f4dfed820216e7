#include "io.hpp"

#include <poll.h>

#include <chrono>

#include "coil/detail/park.hpp"
#include "real.hpp"

namespace coil::hook {

TimePoint Deadline::at() noexcept {
  if (none()) return kNoDeadline;
  if (!fixed_) {
    at_ = detail::now() + std::chrono::nanoseconds(timeout_ns_);
    fixed_ = true;
  }
  return at_;
}

int Deadline::remaining_ms() noexcept {
  if (none()) return -1;
  auto left = at() - detail::now();
  if (left <= Duration::zero()) return 0;
  auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
  return ms > 0x7fffffff ? 0x7fffffff : static_cast<int>(ms);
}

namespace {

bool wait_in_poll(int fd, Dir dir, Deadline& deadline) noexcept {
  for (;;) {
    pollfd p{fd, static_cast<short>(dir == Dir::kIn ? POLLIN : POLLOUT), 0};
    int rc = real::poll(&p, 1, deadline.remaining_ms());
    if (rc > 0) {
      if (p.revents & POLLNVAL) {
        errno = EBADF;
        return false;
      }
      return true;
    }
    if (rc == 0) {
      errno = EAGAIN;
      return false;
    }
    if (errno != EINTR) return false;
    // A signal handler ran: the blocking call would have been restarted.
  }
}

}  // namespace

bool wait_ready(int fd, Dir dir, Deadline& deadline) {
  if (!in_coroutine()) return wait_in_poll(fd, dir, deadline);
  switch (detail::wait_for_fd(fd, interest(dir), deadline.at())) {
    case WaitResult::kReady:
      return true;
    case WaitResult::kTimeout:
      errno = EAGAIN;
      return false;
    case WaitResult::kError:
      return false;
  }
  return false;
}

bool wait_borrowed(int fd, Deadline& deadline) {
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    int rc = real::poll(&p, 1, 0);
    // Readable, hung up, in error or invalid: the call returns at once.
    if (rc > 0 || (rc < 0 && errno != EINTR)) return true;
    if (rc < 0) continue;
    detail::mark_not_ready(fd, detail::kReadable);
    switch (detail::wait_for_fd(fd, detail::kReadable, deadline.at())) {
      case WaitResult::kReady:
        continue;
      case WaitResult::kTimeout:
        errno = EAGAIN;
        return false;
      case WaitResult::kError:
        return true;  // closed while waiting: the call reports EBADF
    }
  }
}

}  // namespace coil::hook
