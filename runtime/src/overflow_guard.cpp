#include "overflow_guard.hpp"

#include "sys.hpp"

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <system_error>

#include "running.hpp"
#include "scheduler_impl.hpp"

namespace coil::detail {
namespace {

constexpr std::size_t kAltStackSize = 64 * 1024;

struct sigaction previous_segv;

// Appends text to buf at *len without overflowing it. Async-signal-safe.
void append(char* buf, std::size_t cap, std::size_t* len, const char* text) noexcept {
  while (*text && *len + 1 < cap) buf[(*len)++] = *text++;
}

void append_number(char* buf, std::size_t cap, std::size_t* len, unsigned long long v) noexcept {
  char digits[24];
  int n = 0;
  do {
    digits[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v);
  while (n > 0 && *len + 1 < cap) buf[(*len)++] = digits[--n];
}

void chain_to_previous(int sig, siginfo_t* info, void* uctx) noexcept {
  if (previous_segv.sa_flags & SA_SIGINFO) {
    if (previous_segv.sa_sigaction) {
      previous_segv.sa_sigaction(sig, info, uctx);
      return;
    }
  } else if (previous_segv.sa_handler != SIG_DFL && previous_segv.sa_handler != SIG_IGN) {
    previous_segv.sa_handler(sig);
    return;
  }
  // Default (or ignored, which cannot apply to a fault): restore the default
  // action and return; the faulting instruction runs again and kills us with
  // the usual core dump.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  sigaction(sig, &dfl, nullptr);
}

void on_segv(int sig, siginfo_t* info, void* uctx) noexcept {
  int saved_errno = errno;
  const Coroutine* co = tls_running;
  if (co && co->stack.guard_contains(reinterpret_cast<std::uintptr_t>(info->si_addr))) {
    report_stack_overflow(co);
  }
  errno = saved_errno;
  chain_to_previous(sig, info, uctx);
}

// Per-thread alternate signal stack, unmapped when the thread exits.
struct AltStack {
  void* memory = nullptr;

  void ensure() {
    if (memory) return;
    stack_t current{};
    if (sigaltstack(nullptr, &current) == 0 && !(current.ss_flags & SS_DISABLE)) return;
    void* m =
        ::mmap(nullptr, kAltStackSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
      throw std::system_error(errno, std::generic_category(), "coil: sigaltstack");
    stack_t ss{};
    ss.ss_sp = m;
    ss.ss_size = kAltStackSize;
    if (sigaltstack(&ss, nullptr) != 0) {
      int err = errno;
      ::munmap(m, kAltStackSize);
      throw std::system_error(err, std::generic_category(), "coil: sigaltstack");
    }
    memory = m;
  }

  ~AltStack() {
    if (!memory) return;
    stack_t off{};
    off.ss_flags = SS_DISABLE;
    sigaltstack(&off, nullptr);
    ::munmap(memory, kAltStackSize);
  }
};

thread_local AltStack alt_stack;

}  // namespace

void install_overflow_guard() {
  static std::once_flag once;
  InternalScope internal;  // call_once is pthread_once
  std::call_once(once, [] {
    struct sigaction sa {};
    sa.sa_sigaction = &on_segv;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSEGV, &sa, &previous_segv) != 0) {
      throw std::system_error(errno, std::generic_category(), "coil: sigaction(SIGSEGV)");
    }
  });
  alt_stack.ensure();
}

void report_stack_overflow(const Coroutine* co) noexcept {
  char msg[160];
  std::size_t len = 0;
  append(msg, sizeof msg, &len, "coil: stack overflow in coroutine ");
  append_number(msg, sizeof msg, &len, co->id);
  append(msg, sizeof msg, &len, " \"");
  append(msg, sizeof msg, &len, co->name);
  append(msg, sizeof msg, &len, "\" (stack ");
  append_number(msg, sizeof msg, &len, co->stack.size());
  append(msg, sizeof msg, &len, " bytes)\n");
  ssize_t rc = sys::write(STDERR_FILENO, msg, len);
  (void)rc;
  std::abort();
}

}  // namespace coil::detail
