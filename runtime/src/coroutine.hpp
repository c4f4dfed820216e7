// Coroutine: the control block of one coroutine. It lives at the top of the
// coroutine's own stack (followed by its Body), so spawning allocates nothing
// beyond the pooled stack and an idle coroutine costs about one page.
#pragma once

#include <boost/intrusive/list_hook.hpp>
#include <boost/intrusive/set_hook.hpp>
#include <cstdint>

#include "coil/detail/body.hpp"
#include "coil/detail/park.hpp"
#include "context.hpp"
#include "stack_pool.hpp"

namespace coil::detail {

class SchedulerImpl;

// CoState is where a coroutine is in its life.
enum class CoState : std::uint8_t {
  kReady,    // in the ready queue
  kRunning,  // the one coroutine this thread is running
  kParked,   // suspended in park(); maybe in the sleep tree
  kDone,     // body finished; waiting to be joined or released
};

using ReadyHook = boost::intrusive::list_member_hook<>;
using SleepHook = boost::intrusive::set_member_hook<>;
using AllHook = boost::intrusive::list_member_hook<>;

class Coroutine {
 public:
  static constexpr std::size_t kNameSize = 32;

  Context context;
  ReadyHook ready_hook;
  SleepHook sleep_hook;
  AllHook all_hook;
  TimePoint deadline = kNoDeadline;
  SchedulerImpl* scheduler = nullptr;
  BodyBase* body = nullptr;
  Coroutine* joiner = nullptr;  // parked in join(), woken at exit
  Stack stack;
  std::uint64_t id = 0;
  void* tsan_fiber = nullptr;
  CoState state = CoState::kReady;
  WakeReason wake_reason = WakeReason::kWoken;
  Interrupt interrupt = Interrupt::kNever;  // set by an InterruptibleWait
  std::uint32_t signal_mark = 0;            // signal count when that wait began
  bool detached = false;
  bool started = false;    // has run at least once
  bool cancelled = false;  // the scheduler is unwinding it
  char name[kNameSize] = {};

  // usable_stack_hi() is the highest address frames may use: just below the
  // control block and body at the top of the stack.
  char* usable_stack_hi() const noexcept {
    return reinterpret_cast<char*>(const_cast<Coroutine*>(this));
  }

  // canary_intact() checks the overflow canary of an unguarded stack.
  bool canary_intact() const noexcept {
    return stack.guard != GuardMode::kCanary ||
           *reinterpret_cast<const std::uint64_t*>(stack.lo) == kStackCanary;
  }
};

// ForcedUnwind is thrown out of park() when a Scheduler is destroyed with the
// coroutine still suspended, so that the coroutine's destructors run.
struct ForcedUnwind {};

}  // namespace coil::detail
