// Hooked sleeps: sleep, usleep, nanosleep, clock_nanosleep and sched_yield.
// In a coroutine they park it on the scheduler's sleep tree; a zero sleep
// yields, so a `while (!done) usleep(0);` loop lets others run.
#include <sched.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>

#include "coil/scheduler.hpp"
#include "io.hpp"
#include "real.hpp"

namespace coil::hook {
namespace {

void nap(Duration d) {
  if (d <= Duration::zero()) {
    coil::yield();
  } else {
    coil::sleep_for(d);
  }
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
  nap(std::chrono::seconds(seconds));
  return 0;
}

COIL_HOOK int usleep(useconds_t us) {
  if (!in_coroutine()) return real::usleep(us);
  nap(std::chrono::microseconds(us));
  return 0;
}

COIL_HOOK int nanosleep(const timespec* req, timespec* rem) {
  if (!in_coroutine() || !req) return real::nanosleep(req, rem);
  if (!valid(*req)) {
    errno = EINVAL;
    return -1;
  }
  nap(span(*req));
  return 0;
}

COIL_HOOK int clock_nanosleep(clockid_t clock, int flags, const timespec* req, timespec* rem) {
  if (!in_coroutine() || !req || !sleepable(clock)) {
    return real::clock_nanosleep(clock, flags, req, rem);
  }
  if (!valid(*req)) return EINVAL;
  Duration d = span(*req);
  if (flags & TIMER_ABSTIME) {
    timespec now{};
    if (::clock_gettime(clock, &now) != 0) return errno;
    d -= span(now);
  }
  nap(d);
  return 0;
}

COIL_HOOK int sched_yield() noexcept {
  if (!in_coroutine()) return real::sched_yield();
  coil::yield();
  return 0;
}
