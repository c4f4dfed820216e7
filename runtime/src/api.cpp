// The public face: Scheduler's members and the free functions of
// coil/scheduler.hpp and coil/detail/park.hpp.
#include <poll.h>

#include <thread>

#include "hot.hpp"
#include "scheduler_impl.hpp"

namespace coil {

const SteadyClock& SteadyClock::instance() noexcept {
  static const SteadyClock clock;
  return clock;
}

Scheduler::Scheduler(SchedulerOptions opts) : impl_(std::make_unique<detail::SchedulerImpl>(opts)) {
  impl_->owner = this;
}

Scheduler::~Scheduler() = default;

void Scheduler::run() { impl_->run(); }

bool Scheduler::run_once(bool may_block) { return impl_->run_once(may_block); }

void Scheduler::post(std::function<void()> fn) { impl_->post(std::move(fn)); }

SchedulerStats Scheduler::stats() const noexcept { return impl_->stats(); }

Scheduler::KeepAlive::KeepAlive(Scheduler& s) : sched_(s) { sched_.impl_->add_keep_alive(); }

Scheduler::KeepAlive::~KeepAlive() { sched_.impl_->drop_keep_alive(); }

namespace {

// running_scheduler() is the scheduler of the running coroutine, or nullptr
// outside coroutines.
detail::SchedulerImpl* running_scheduler() noexcept {
  detail::Coroutine* co = detail::tls_running;
  return co ? co->scheduler : nullptr;
}

// wait_deadline() turns an fd-wait timeout into a deadline: negative means
// none (unlike detail::deadline_after() of the sync primitives, where a
// timeout of zero or less is already due).
TimePoint wait_deadline(detail::SchedulerImpl& s, Duration timeout) noexcept {
  if (timeout < Duration::zero()) return kNoDeadline;
  TimePoint now = s.now();
  return timeout >= kNoDeadline - now ? kNoDeadline : now + timeout;
}

WaitResult wait_outside(int fd, short events, Duration timeout) {
  int ms = -1;
  if (timeout >= Duration::zero()) {
    auto rounded = std::chrono::ceil<std::chrono::milliseconds>(timeout).count();
    ms = rounded > 0x7fffffff ? 0x7fffffff : static_cast<int>(rounded);
  }
  pollfd p{fd, events, 0};
  int rc;
  do {
    rc = ::poll(&p, 1, ms);
  } while (rc < 0 && errno == EINTR);
  if (rc < 0) return WaitResult::kError;
  if (rc == 0) return WaitResult::kTimeout;
  if (p.revents & POLLNVAL) {
    errno = EBADF;
    return WaitResult::kError;
  }
  return WaitResult::kReady;
}

WaitResult wait_for(int fd, std::uint8_t interest, Duration timeout) {
  detail::SchedulerImpl* s = running_scheduler();
  if (!s) return wait_outside(fd, interest == detail::kReadable ? POLLIN : POLLOUT, timeout);
  return s->wait_fd(fd, interest, wait_deadline(*s, timeout));
}

}  // namespace

Scheduler* Scheduler::current() noexcept {
  detail::SchedulerImpl* s = detail::SchedulerImpl::current();
  return s ? s->owner : nullptr;
}

void sleep_until(TimePoint deadline) {
  detail::SchedulerImpl* s = running_scheduler();
  if (!s) {
    std::this_thread::sleep_until(deadline);
    return;
  }
  while (s->park(deadline) != detail::WakeReason::kTimeout) {
    // Woken early by somebody else's wake(): sleep on.
  }
}

void sleep_for(Duration d) {
  detail::SchedulerImpl* s = running_scheduler();
  if (!s) {
    std::this_thread::sleep_for(d);
    return;
  }
  // Like std::this_thread::sleep_for, a zero or negative duration returns
  // at once (wait_deadline() would read a negative timeout as "forever").
  if (d <= Duration::zero()) return;
  sleep_until(wait_deadline(*s, d));
}

WaitResult wait_readable(int fd, Duration timeout) {
  return wait_for(fd, detail::kReadable, timeout);
}

WaitResult wait_writable(int fd, Duration timeout) {
  return wait_for(fd, detail::kWritable, timeout);
}

void forget_fd(int fd) noexcept {
  detail::SchedulerImpl* s = running_scheduler();
  if (!s) s = detail::SchedulerImpl::current();  // e.g. a post()ed function
  if (s) s->forget_fd(fd);
}

namespace this_coroutine {

std::uint64_t id() noexcept {
  detail::Coroutine* co = detail::tls_running;
  return co ? co->id : 0;
}

std::string_view name() noexcept {
  detail::Coroutine* co = detail::tls_running;
  return co ? std::string_view(co->name) : std::string_view();
}

}  // namespace this_coroutine

namespace detail {

Coroutine* current_coroutine() noexcept { return tls_running; }

WakeReason park(TimePoint deadline) { return tls_running->scheduler->park(deadline); }

WakeReason park_unlock(TimePoint deadline, SpinLock& lock) {
  return tls_running->scheduler->park_unlock(deadline, lock);
}

COIL_HOT bool wake(Coroutine* co) noexcept { return co->scheduler->wake(co); }

TimePoint now() noexcept {
  detail::SchedulerImpl* s = running_scheduler();
  return s ? s->now() : SteadyClock::instance().now();
}

COIL_HOT WaitResult wait_for_fd(int fd, std::uint8_t interest, TimePoint deadline, Interrupt mode) {
  return tls_running->scheduler->wait_fd_edge(fd, interest, deadline, mode);
}

WaitResult wait_for_any_fd(const FdInterest* fds, std::size_t n, TimePoint deadline) {
  return tls_running->scheduler->wait_any_fd(fds, n, deadline);
}

COIL_HOT void mark_not_ready(int fd, std::uint8_t interest) noexcept {
  tls_running->scheduler->mark_not_ready(fd, interest);
}

COIL_HOT void mark_drained(int fd, std::uint8_t interest) noexcept {
  tls_running->scheduler->mark_drained(fd, interest);
}

SchedulerImpl& current_scheduler_or_throw() {
  SchedulerImpl* s = SchedulerImpl::current();
  if (!s) throw std::logic_error("coil: spawn() outside a running scheduler; use Scheduler::spawn");
  return *s;
}

}  // namespace detail
}  // namespace coil
