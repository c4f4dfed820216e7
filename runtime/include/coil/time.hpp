// Time for coil: durations, deadlines and the clock the scheduler reads.
#pragma once

#include <chrono>
#include <cstdint>

namespace coil {

using Duration = std::chrono::nanoseconds;
using TimePoint = std::chrono::steady_clock::time_point;

// kNoDeadline is the deadline of a wait that never times out.
inline constexpr TimePoint kNoDeadline = TimePoint::max();

// Clock is what a Scheduler reads to fire sleeps and timeouts. Tests inject a
// ManualClock; everything else uses the steady clock.
class Clock {
 public:
  virtual ~Clock() = default;
  // now() returns the current time. It must never go backwards.
  virtual TimePoint now() const noexcept = 0;
  // is_manual() is true for clocks that move only when told to (ManualClock).
  // A scheduler never blocks in the kernel waiting for such a clock.
  virtual bool is_manual() const noexcept { return false; }
};

// SteadyClock reads CLOCK_MONOTONIC (a vDSO call, no syscall).
class SteadyClock final : public Clock {
 public:
  TimePoint now() const noexcept override { return std::chrono::steady_clock::now(); }
  // instance() returns the process-wide steady clock.
  static const SteadyClock& instance() noexcept;
};

// ManualClock stands still until advance() moves it. Single-threaded: use it
// from the coroutines (or the thread) of the scheduler that reads it.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(TimePoint start = TimePoint{} + std::chrono::hours(1)) : now_(start) {}
  TimePoint now() const noexcept override { return now_; }
  bool is_manual() const noexcept override { return true; }
  // advance() moves the clock forward by d. Sleepers whose deadline passed
  // wake the next time their scheduler looks at its timers.
  void advance(Duration d) noexcept { now_ += d; }

 private:
  TimePoint now_;
};

}  // namespace coil
