// Stack-overflow reporting: a SIGSEGV handler on an alternate signal stack
// recognises faults in the running coroutine's guard region.
#pragma once

namespace coil::detail {

class Coroutine;

// install_overflow_guard() installs the process-wide SIGSEGV handler once
// (chaining to the previous one for faults that are not stack overflows) and
// gives the calling thread an alternate signal stack if it has none.
void install_overflow_guard();

// report_stack_overflow() prints
//   coil: stack overflow in coroutine <id> "<name>" (stack <size> bytes)
// and aborts. Async-signal-safe.
[[noreturn]] void report_stack_overflow(const Coroutine* co) noexcept;

}  // namespace coil::detail
