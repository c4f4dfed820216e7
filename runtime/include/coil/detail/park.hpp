// The parking interface: how a coroutine suspends itself until something
// wakes it. Sync primitives (Mutex, Channel, ...) and the hook layer are
// written against this and nothing else of the scheduler.
#pragma once

#include <cstdint>

#include "coil/time.hpp"

namespace coil::detail {

class Coroutine;

// WakeReason says why park() returned.
enum class WakeReason : std::uint8_t {
  kWoken,    // somebody called wake()
  kTimeout,  // the deadline passed first
};

// current_coroutine() returns the running coroutine of this thread, or
// nullptr outside coroutines.
Coroutine* current_coroutine() noexcept;

// park() suspends the current coroutine until wake() or the deadline.
// Precondition: called inside a coroutine. The caller must have made itself
// findable by its waker (put itself on a wait list) before calling park().
// When the owning Scheduler is being destroyed, park() throws a forced-unwind
// exception so the coroutine's destructors run; do not swallow it with
// catch (...) without rethrowing.
WakeReason park(TimePoint deadline = kNoDeadline);

// wake() makes a parked coroutine ready and returns true; it returns false
// (and does nothing) if co is not parked, for instance because its deadline
// already fired. Precondition: called on co's scheduler thread.
bool wake(Coroutine* co) noexcept;

// now() returns the time of the current thread's scheduler clock (the steady
// clock outside a scheduler).
TimePoint now() noexcept;

}  // namespace coil::detail
