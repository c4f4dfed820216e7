// Hooked sigaction(), signal() and friends, so that a caught signal ends a
// hooked blocking call with EINTR, as it ends the system call in the kernel.
//
// A parked coroutine is not in a system call: the kernel cannot interrupt
// it, and an EINTR from the scheduler's epoll_pwait2 does not say which
// handler ran, nor whether it had SA_RESTART. So the handler a program
// installs is recorded here and the kernel gets coil's trampoline in its
// place, with the program's mask and flags. The trampoline tells the runtime
// (note_signal(), which ends the interruptible waits the signal applies to)
// and calls the program's handler with the kernel's arguments. sigaction()
// reports the program's handler back, never the trampoline.
//
// Synchronous signals (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGSYS) pass
// through untouched: they come from the instruction that faults, never
// interrupt a wait, and coil's stack-overflow handler, sanitizers and
// debuggers expect to see them as installed. Handlers installed behind
// these hooks (glibc-internal calls, a raw syscall) still run; they just do
// not interrupt coroutines.
#include <signal.h>

#include <atomic>
#include <cerrno>
#include <cstdint>

#include "coil/detail/park.hpp"
#include "real.hpp"

namespace coil::hook {
namespace {

// A recorded handler is one word, so that the trampoline reads it with one
// atomic load while another thread may be installing a new one: the
// function's address (user space fits in 56 bits) and three flags.
constexpr std::uint64_t kFunctionBits = (std::uint64_t{1} << 56) - 1;
constexpr std::uint64_t kSiginfo = std::uint64_t{1} << 61;
constexpr std::uint64_t kRestart = std::uint64_t{1} << 62;
constexpr std::uint64_t kResetHand = std::uint64_t{1} << 63;

constinit std::atomic<std::uint64_t> handlers[NSIG] = {};
// Signals siginterrupt() asked signal() to install without SA_RESTART.
constinit std::atomic<std::uint64_t> interrupting = 0;

bool wrapped(int sig) noexcept {
  switch (sig) {
    case SIGSEGV:
    case SIGBUS:
    case SIGILL:
    case SIGFPE:
    case SIGTRAP:
    case SIGSYS:
    case SIGKILL:
    case SIGSTOP:
      return false;
    default:
      return sig > 0 && sig < NSIG;
  }
}

std::uint64_t bit(int sig) noexcept { return std::uint64_t{1} << (sig - 1); }

std::uint64_t pack(const struct sigaction& act) noexcept {
  auto fn = reinterpret_cast<std::uintptr_t>(act.sa_handler);
  return (fn & kFunctionBits) | ((act.sa_flags & SA_SIGINFO) ? kSiginfo : 0) |
         ((act.sa_flags & SA_RESTART) ? kRestart : 0) |
         ((act.sa_flags & SA_RESETHAND) ? kResetHand : 0);
}

void trampoline(int sig, siginfo_t* info, void* context) {
  std::uint64_t h = handlers[sig].load(std::memory_order_acquire);
  // SA_RESETHAND: the kernel has just put SIG_DFL back.
  if (h & kResetHand) handlers[sig].store(0, std::memory_order_release);
  detail::note_signal((h & kRestart) != 0);
  std::uintptr_t fn = h & kFunctionBits;
  if (fn == 0) return;  // lost a race with a sigaction() that removed it
  detail::HandlerScope scope;
  if (h & kSiginfo) {
    reinterpret_cast<void (*)(int, siginfo_t*, void*)>(fn)(sig, info, context);
  } else {
    reinterpret_cast<void (*)(int)>(fn)(sig);
  }
}

// unwrap() turns the kernel's view of an action back into the program's.
void unwrap(struct sigaction* act, std::uint64_t recorded) noexcept {
  if (act->sa_sigaction != &trampoline || recorded == 0) return;
  act->sa_handler = reinterpret_cast<sighandler_t>(recorded & kFunctionBits);
  if (!(recorded & kSiginfo)) act->sa_flags &= ~SA_SIGINFO;
}

bool is_function(const struct sigaction& act) noexcept {
  return act.sa_handler != SIG_DFL && act.sa_handler != SIG_IGN;
}

// install() is signal()'s and sysv_signal()'s common part.
sighandler_t install(int sig, sighandler_t handler, int flags, bool mask_self) noexcept {
  if (handler == SIG_ERR || sig <= 0 || sig >= NSIG) {
    errno = EINVAL;
    return SIG_ERR;
  }
  struct sigaction act {
  }, old{};
  act.sa_handler = handler;
  sigemptyset(&act.sa_mask);
  if (mask_self) sigaddset(&act.sa_mask, sig);
  act.sa_flags = flags;
  if (::sigaction(sig, &act, &old) < 0) return SIG_ERR;
  return old.sa_handler;
}

}  // namespace
}  // namespace coil::hook

using namespace coil::hook;  // NOLINT: the hooks below are the C ABI

COIL_HOOK int sigaction(int sig, const struct sigaction* act, struct sigaction* old) noexcept {
  if (!wrapped(sig)) return real::sigaction(sig, act, old);
  std::uint64_t before = handlers[sig].load(std::memory_order_acquire);
  struct sigaction mine {};
  std::uint64_t after = 0;
  if (act) {
    mine = *act;
    if (is_function(*act)) {
      after = pack(*act);
      mine.sa_sigaction = &trampoline;
      mine.sa_flags |= SA_SIGINFO;
      // Recorded first: the kernel may call the trampoline at once.
      handlers[sig].store(after, std::memory_order_release);
    }
  }
  int rc = real::sigaction(sig, act ? &mine : nullptr, old);
  if (rc != 0) {
    if (after) handlers[sig].store(before, std::memory_order_release);
    return rc;
  }
  if (act && !after) handlers[sig].store(0, std::memory_order_release);
  if (old) unwrap(old, before);
  return 0;
}

// glibc's signal() has BSD semantics: SA_RESTART (unless siginterrupt()
// said otherwise) and the signal masked while its handler runs.
COIL_HOOK sighandler_t signal(int sig, sighandler_t handler) noexcept {
  bool restart = sig <= 0 || sig >= NSIG || !(interrupting.load() & bit(sig));
  return install(sig, handler, restart ? SA_RESTART : 0, true);
}

COIL_HOOK sighandler_t bsd_signal(int sig, sighandler_t handler) noexcept {
  return signal(sig, handler);
}

// System V semantics: reset on delivery, not masked, not restarted.
COIL_HOOK sighandler_t sysv_signal(int sig, sighandler_t handler) noexcept {
  return install(sig, handler, SA_RESETHAND | SA_NODEFER, false);
}

COIL_HOOK int siginterrupt(int sig, int flag) noexcept {
  struct sigaction act {};
  if (::sigaction(sig, nullptr, &act) < 0) return -1;
  if (flag) {
    interrupting.fetch_or(bit(sig));
    act.sa_flags &= ~SA_RESTART;
  } else {
    interrupting.fetch_and(~bit(sig));
    act.sa_flags |= SA_RESTART;
  }
  return ::sigaction(sig, &act, nullptr);
}

// Linked in with every scheduler (link_all.cpp).
namespace coil::hook::anchor {
extern const char signal = 0;
}  // namespace coil::hook::anchor
