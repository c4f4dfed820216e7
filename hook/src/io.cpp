#include "io.hpp"

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>

#include "coil/detail/park.hpp"
#include "hot.hpp"
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

bool wait_in_poll(int fd, Dir dir, Deadline& deadline, detail::Interrupt mode) noexcept {
  detail::InterruptibleWait scope(mode);
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
    // A signal handler ran. Without a timeout the blocking call is
    // restarted unless coil's trampoline saw a handler without SA_RESTART.
    if (mode == detail::Interrupt::kAlways || scope.interrupted()) return false;
  }
}

}  // namespace

COIL_HOT bool wait_ready(int fd, Dir dir, Deadline& deadline, bool moved) {
  detail::Interrupt mode = interrupt_mode(deadline, moved);
  if (!in_coroutine()) return wait_in_poll(fd, dir, deadline, mode);
  switch (detail::wait_for_fd(fd, interest(dir), deadline.at(), mode)) {
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

bool nap_until(TimePoint deadline) {
  detail::WakeReason why;
  do {
    why = detail::park(deadline);
  } while (why == detail::WakeReason::kWoken);
  if (why != detail::WakeReason::kInterrupted) return true;
  errno = EINTR;
  return false;
}

bool pause_for(Duration length, Deadline& deadline, const detail::InterruptibleWait& scope,
               Watch watch) {
  TimePoint start = detail::now();
  TimePoint end = start + length;
  if (!deadline.none()) {
    if (deadline.at() <= start) {
      errno = EAGAIN;
      return false;
    }
    end = std::min(end, deadline.at());
  }
  // A handler that ran during the caller's last try, when nothing was parked
  // for the scheduler to wake, ends the wait too: it ran inside the call.
  if (scope.interrupted()) {
    errno = EINTR;
    return false;
  }
  if (in_coroutine()) {
    if (watch.fd < 0) return nap_until(end);
    // The scope above makes this wait interruptible; kError is EINTR or EBADF.
    return detail::wait_for_fd(watch.fd, interest(watch.dir), end) != WaitResult::kError;
  }
  pollfd p{watch.fd, static_cast<short>(watch.dir == Dir::kIn ? POLLIN : POLLOUT), 0};
  for (;;) {
    auto left = std::chrono::ceil<std::chrono::milliseconds>(end - detail::now()).count();
    int rc = real::poll(watch.fd < 0 ? nullptr : &p, watch.fd < 0 ? 0 : 1,
                        static_cast<int>(std::clamp<decltype(left)>(left, 0, 0x7fffffff)));
    if (rc > 0 && (p.revents & POLLNVAL)) {
      errno = EBADF;
      return false;
    }
    if (rc >= 0 || errno != EINTR) return true;
    // A handler ran: the blocking call ends if it would (see wait_in_poll).
    if (!deadline.none() || scope.interrupted()) return false;
  }
}

void take_socket_error(int fd) noexcept {
  int err = 0;
  socklen_t len = sizeof err;
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err != 0) errno = err;
}

bool wait_borrowed(int fd, Deadline& deadline) {
  detail::InterruptibleWait scope(interrupt_mode(deadline));
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
        // Closed while waiting: the call reports EBADF. Interrupted: EINTR.
        return errno != EINTR;
    }
  }
}

}  // namespace coil::hook
