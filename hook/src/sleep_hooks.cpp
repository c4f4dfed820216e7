// Hooked sleeps: sleep, usleep, nanosleep, clock_nanosleep and sched_yield.
// In a coroutine they park it on the scheduler's sleep tree; a zero sleep
// yields, so a `while (!done) usleep(0);` loop lets others run.
#include <sched.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>

#include "coil/detail/park.hpp"
#include "coil/scheduler.hpp"
#include "io.hpp"
#include "real.hpp"

namespace coil::hook {
namespace {

// nap() sleeps for d in a coroutine, as nanosleep does: a zero sleep
// yields; a caught signal ends the sleep early (signal(7): sleeps are never
// restarted). It returns the time left: zero unless interrupted.
Duration nap(Duration d) {
  if (d <= Duration::zero()) {
    coil::yield();
    return Duration::zero();
  }
  TimePoint deadline = detail::now() + d;
  detail::InterruptibleWait scope(detail::Interrupt::kAlways);
  if (nap_until(deadline)) return Duration::zero();
  return std::max(deadline - detail::now(), Duration(1));
}

timespec to_timespec(Duration d) noexcept {
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
  return timespec{static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
}

bool valid(const timespec& ts) noexcept {
  return ts.tv_sec >= 0 && ts.tv_nsec >= 0 && ts.tv_nsec < 1000000000;
}

Duration span(const timespec& ts) noexcept {
  return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
}

bool sleepable(clockid_t clock) noexcept {
  return clock == CLOCK_REALTIME || clock == CLOCK_MONOTONIC || clock == CLOCK_BOOTTIME ||
         clock == CLOCK_TAI;
}

}  // namespace
}  // namespace coil::hook

using namespace coil::hook;  // NOLINT: the hooks below are the C ABI
using coil::Duration;
using coil::TimePoint;
namespace detail = coil::detail;

COIL_HOOK unsigned int sleep(unsigned int seconds) {
  if (!in_coroutine()) return real::sleep(seconds);
  // glibc's sleep() reports the whole seconds left.
  Duration left = nap(std::chrono::seconds(seconds));
  return static_cast<unsigned int>(std::chrono::duration_cast<std::chrono::seconds>(left).count());
}

COIL_HOOK int usleep(useconds_t us) {
  if (!in_coroutine()) return real::usleep(us);
  if (nap(std::chrono::microseconds(us)) == Duration::zero()) return 0;
  errno = EINTR;
  return -1;
}

COIL_HOOK int nanosleep(const timespec* req, timespec* rem) {
  if (!in_coroutine() || !req) return real::nanosleep(req, rem);
  if (!valid(*req)) {
    errno = EINVAL;
    return -1;
  }
  Duration left = nap(span(*req));
  if (left == Duration::zero()) return 0;
  if (rem) *rem = to_timespec(left);
  errno = EINTR;
  return -1;
}

COIL_HOOK int clock_nanosleep(clockid_t clock, int flags, const timespec* req, timespec* rem) {
  if (!in_coroutine() || !req || !sleepable(clock)) {
    return real::clock_nanosleep(clock, flags, req, rem);
  }
  if (!valid(*req)) return EINVAL;
  Duration d = span(*req);
  bool absolute = (flags & TIMER_ABSTIME) != 0;
  if (absolute) {
    timespec now{};
    if (::clock_gettime(clock, &now) != 0) return errno;
    d -= span(now);
  }
  Duration left = nap(d);
  if (left == Duration::zero()) return 0;
  // Like the kernel's, an absolute sleep leaves rem alone.
  if (rem && !absolute) *rem = to_timespec(left);
  return EINTR;
}

COIL_HOOK int sched_yield() noexcept {
  if (!in_coroutine()) return real::sched_yield();
  coil::yield();
  return 0;
}

// Linked in with every scheduler (link_all.cpp).
namespace coil::hook::anchor {
extern const char sleep = 0;
}  // namespace coil::hook::anchor
