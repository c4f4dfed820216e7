// Signals and interruptible waits: how a caught signal ends a hooked
// blocking call with EINTR, as it ends the system call in the kernel.
//
// The hook layer's handler trampoline calls note_signal(), which only bumps
// two per-thread counts and pokes the scheduler's eventfd (both
// async-signal-safe). The scheduler compares the counts with what it saw
// last at each step, and wakes with kInterrupted every coroutine parked in
// an InterruptibleWait that began before the signal and whose mode it
// matches. A count, not a flag, so that a wait that began after the signal
// is not interrupted by it: in the kernel, a handler that ran before a
// system call does not interrupt that call.
#include "coil/detail/park.hpp"
#include "coroutine.hpp"
#include "hot.hpp"
#include "running.hpp"
#include "scheduler_impl.hpp"
#include "sys.hpp"

namespace coil::detail {

constinit thread_local SignalCounts tls_signals __attribute__((tls_model("initial-exec")));

namespace {

bool only_no_restart(Interrupt mode) noexcept { return mode == Interrupt::kUnlessRestart; }

}  // namespace

void note_signal(bool restart) noexcept {
  tls_signals.any.fetch_add(1, std::memory_order_relaxed);
  if (!restart) tls_signals.no_restart.fetch_add(1, std::memory_order_relaxed);
  int fd = tls_signals.wake_fd.load(std::memory_order_relaxed);
  if (fd >= 0) {
    // The scheduler may be about to block in epoll_pwait2, past its last
    // look at the counts: the eventfd makes that wait return.
    int saved = errno;
    std::uint64_t one = 1;
    [[maybe_unused]] ssize_t rc = sys::write(fd, &one, sizeof one);
    errno = saved;
  }
}

HandlerScope::HandlerScope() noexcept {
  tls_signals.handling.fetch_add(1, std::memory_order_relaxed);
  std::atomic_signal_fence(std::memory_order_seq_cst);
}

HandlerScope::~HandlerScope() {
  std::atomic_signal_fence(std::memory_order_seq_cst);
  tls_signals.handling.fetch_sub(1, std::memory_order_relaxed);
}

bool in_signal_handler() noexcept {
  return tls_signals.handling.load(std::memory_order_relaxed) != 0;
}

COIL_HOT InterruptibleWait::InterruptibleWait(Interrupt mode) noexcept
    : co_(tls_running), mode_(mode), mark_(tls_signals.of(only_no_restart(mode))) {
  if (co_) {
    saved_mode_ = co_->interrupt;
    saved_mark_ = co_->signal_mark;
    co_->interrupt = mode;
    co_->signal_mark = mark_;
  }
}

COIL_HOT InterruptibleWait::~InterruptibleWait() {
  if (co_) {
    co_->interrupt = saved_mode_;
    co_->signal_mark = saved_mark_;
  }
}

SignalCheck::SignalCheck() noexcept
    : any_(tls_signals.of(false)), no_restart_(tls_signals.of(true)) {}

bool SignalCheck::ran(Interrupt mode) const noexcept {
  if (mode == Interrupt::kNever) return false;
  return only_no_restart(mode) ? tls_signals.of(true) != no_restart_
                               : tls_signals.of(false) != any_;
}

bool InterruptibleWait::interrupted() const noexcept {
  return mode_ != Interrupt::kNever && tls_signals.of(only_no_restart(mode_)) != mark_;
}

WaitSignalMask::WaitSignalMask(const sigset_t* mask) noexcept
    : mask_(mask), co_(mask ? tls_running : nullptr) {
  if (co_) co_->scheduler->add_mask(this);
}

WaitSignalMask::~WaitSignalMask() {
  if (co_) co_->scheduler->remove_mask(this);
}

void SchedulerImpl::add_mask(WaitSignalMask* m) noexcept {
  m->next = masks_;
  if (masks_) masks_->prev = m;
  masks_ = m;
}

void SchedulerImpl::remove_mask(WaitSignalMask* m) noexcept {
  if (m->prev) m->prev->next = m->next;
  if (m->next) m->next->prev = m->prev;
  if (masks_ == m) masks_ = m->next;
  m->next = m->prev = nullptr;
}

const sigset_t* SchedulerImpl::wait_mask(sigset_t* scratch) const noexcept {
  if (!masks_) return nullptr;
  if (!masks_->next) return masks_->mask();
  *scratch = *masks_->mask();
  for (WaitSignalMask* m = masks_->next; m; m = m->next) sigandset(scratch, scratch, m->mask());
  return scratch;
}

void SchedulerImpl::deliver_signals() noexcept {
  std::uint32_t any = tls_signals.any.load(std::memory_order_relaxed);
  if (any == signals_seen_) return;
  signals_seen_ = any;
  for (Coroutine& co : all_) {
    if (co.state.load(std::memory_order_relaxed) != CoState::kParked ||
        co.interrupt == Interrupt::kNever)
      continue;
    if (tls_signals.of(only_no_restart(co.interrupt)) == co.signal_mark) continue;
    if (wake(&co)) co.wake_reason = WakeReason::kInterrupted;
  }
}

}  // namespace coil::detail
