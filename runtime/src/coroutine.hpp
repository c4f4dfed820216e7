// Coroutine: the control block of one coroutine. It lives at the top of the
// coroutine's own stack (followed by its Body), so spawning allocates nothing
// beyond the pooled stack and an idle coroutine costs about one page.
#pragma once

#include <atomic>
#include <boost/intrusive/list_hook.hpp>
#include <boost/intrusive/set_hook.hpp>
#include <cstddef>
#include <cstdint>

#include "coil/detail/body.hpp"
#include "coil/detail/park.hpp"
#include "context.hpp"
#include "stack_pool.hpp"

namespace coil::detail {

class SchedulerImpl;

// CoState is where a coroutine is in its life.
enum class CoState : std::uint8_t {
  kReady,    // in the ready queue, or in its scheduler's inbox (woken from another thread)
  kRunning,  // the one coroutine this thread is running
  kParked,   // suspended in park(); maybe in the sleep tree
  kDone,     // body finished; waiting to be joined or released
  kLost,     // left behind by fork() in the child, which runs only the forking coroutine
};

using ReadyHook = boost::intrusive::list_member_hook<>;
// optimize_size keeps the red-black colour in the parent pointer: 24 bytes
// instead of 32, so that the scheduler pointer fits in line 1 (below).
using SleepHook = boost::intrusive::set_member_hook<boost::intrusive::optimize_size<true>>;
using AllHook = boost::intrusive::list_member_hook<>;

// Why aligned and in this order: with a thousand connections each message
// wakes and resumes a coroutine whose control block has left the cache since
// its last turn, so every line of it that the wake-up, the switch and a
// hooked call's wait touch is a miss. Those fields come first and fill two
// lines: the registers, then the queue hooks, the state, the interrupt mark
// and the scheduler. The flags are bits, and the stack's guard mode has a
// copy among them (canary), to make that fit. Left unaligned, in
// declaration order, these fields were spread over five lines.
//
// coil-gdb (tools/coil-gdb.py) reads context, state, started, scheduler,
// stack.lo, all_hook, sleep_hook, deadline, id and name by name.
class alignas(64) Coroutine {
 public:
  static constexpr std::size_t kNameSize = 32;

  // Line 0 and the start of line 1.
  Context context;
  // Line 1.
  ReadyHook ready_hook;
  SleepHook sleep_hook;
  // Atomic: wake() from another worker thread claims a parked coroutine by
  // compare-and-swap from kParked, racing its own scheduler's timer. The
  // owner's other accesses are relaxed (plain moves on x86).
  std::atomic<CoState> state{CoState::kReady};
  WakeReason wake_reason = WakeReason::kWoken;
  Interrupt interrupt = Interrupt::kNever;  // set by an InterruptibleWait
  bool started : 1 = false;                 // has run at least once
  bool cancelled : 1 = false;               // the scheduler is unwinding it
  bool detached : 1 = false;
  bool canary : 1 = false;        // stack.guard == GuardMode::kCanary
  std::uint32_t signal_mark = 0;  // signal count when that wait began
  SchedulerImpl* scheduler = nullptr;
  // Cold: spawn, join, exit and diagnostics.
  Stack stack;
  // Cold: spawn, join, exit and diagnostics.
  AllHook all_hook;
  TimePoint deadline = kNoDeadline;
  BodyBase* body = nullptr;
  Coroutine* joiner = nullptr;  // parked in join(), woken at exit
  std::uint64_t id = 0;
  void* tsan_fiber = nullptr;
  void* local = nullptr;  // its owner's: coil-run's green thread record
  char name[kNameSize] = {};

  // usable_stack_hi() is the highest address frames may use: just below the
  // control block and body at the top of the stack.
  char* usable_stack_hi() const noexcept {
    return reinterpret_cast<char*>(const_cast<Coroutine*>(this));
  }

  // canary_intact() checks the overflow canary of an unguarded stack.
  bool canary_intact() const noexcept {
    return !canary || *reinterpret_cast<const std::uint64_t*>(stack.lo) == kStackCanary;
  }
};

static_assert(offsetof(Coroutine, scheduler) + sizeof(SchedulerImpl*) <= 128,
              "Coroutine: the fields of the wake-up, switch and wait path must stay in its first "
              "two cache lines");

// ForcedUnwind is thrown out of park() when a Scheduler is destroyed with the
// coroutine still suspended, so that the coroutine's destructors run.
struct ForcedUnwind {};

}  // namespace coil::detail
