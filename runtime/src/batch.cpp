// The io_uring behind batched calls, and the scheduler's side of them: queue, park, flush.
#include "batch.hpp"

#include <cerrno>

#include "coil/detail/settings.hpp"
#include "hot.hpp"
#include "running.hpp"
#include "scheduler_impl.hpp"

namespace coil::detail {

constinit std::atomic<std::uint32_t> fork_count{0};

bool uring_wanted() {
  static const bool wanted = bool_setting("COIL_IO_URING", true);
  return wanted;
}

SyscallBatch::~SyscallBatch() {
  if (state_ == State::kOpen) io_uring_queue_exit(&ring_);
}

bool SyscallBatch::open() noexcept {
  // SUBMIT_ALL: a call the kernel refuses fails in its completion and the rest still go.
  // COOP_TASKRUN: no interrupt to run completion work; the calls complete inline anyway.
  // Neither SINGLE_ISSUER nor DEFER_TASKRUN: a Scheduler may be run() by another thread later.
  io_uring_params params{};
  params.flags = IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN;
  int rc = io_uring_queue_init_params(kEntries, &ring_, &params);
  if (rc == -EINVAL) {  // before Linux 5.19
    params = io_uring_params{};
    rc = io_uring_queue_init_params(kEntries, &ring_, &params);
  }
  // Without SUBMIT_ALL an SQE error stops the submission; NODROP keeps completions. Both hold
  // from 5.18 and 5.5; older kernels do without batching.
  bool fits =
      rc == 0 && (params.flags & IORING_SETUP_SUBMIT_ALL) && (params.features & IORING_FEAT_NODROP);
  if (rc == 0 && !fits) io_uring_queue_exit(&ring_);
  state_ = fits ? State::kOpen : State::kBroken;
  forks_ = fork_count.load(std::memory_order_relaxed);
  return fits;
}

COIL_HOT void SyscallBatch::queue(BatchedCall& call) noexcept {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);  // never null: queued_ < kEntries
  call.prepare(sqe);
  io_uring_sqe_set_data(sqe, &call);
  call.done = false;
  calls_[queued_++] = &call;
}

COIL_HOT unsigned SyscallBatch::reap() noexcept {
  unsigned head, n = 0;
  io_uring_cqe* cqe;
  io_uring_for_each_cqe(&ring_, head, cqe) {
    auto* call = static_cast<BatchedCall*>(io_uring_cqe_get_data(cqe));
    call->result = cqe->res;
    call->done = true;
    ++n;
  }
  io_uring_cq_advance(&ring_, n);
  return n;
}

unsigned SyscallBatch::make_rest_directly() noexcept {
  unsigned n = 0;
  for (unsigned i = 0; i < queued_; ++i) {
    BatchedCall& call = *calls_[i];
    if (call.done) continue;
    call.result = call.make();
    call.done = true;
    ++n;
  }
  return n;
}

void SyscallBatch::drop_after_fork() noexcept {
  // Unmapping and closing touch only the child's own mappings and fd; the ring lives on in the
  // parent. What was queued is the parent's to make.
  if (state_ == State::kOpen) io_uring_queue_exit(&ring_);
  ring_ = io_uring{};
  state_ = State::kClosed;
  queued_ = 0;
  forks_ = fork_count.load(std::memory_order_relaxed);
}

// batch() is the scheduler side of coil::detail::batch().
COIL_HOT long SchedulerImpl::batch(BatchedCall& call) {
  Coroutine* co = running_;
  // Alone, the call would enter the kernel by itself anyway, and only later.
  if (ready_.empty() && batch_.empty()) return kNotBatched;
  if (co->cancelled || unwinding_ || !batching_ || !batch_.usable()) return kNotBatched;
  if (batch_.full()) flush_batch();
  call.co = co;
  batch_.queue(call);
  try {
    do {
      park(kNoDeadline);  // woken by flush_batch(); another wake-up is spurious here
    } while (!call.done);
  } catch (...) {
    // Unwinding: the ring must not write into this stack frame once it is gone.
    if (!call.done) flush_batch();
    throw;
  }
  // A poll may have run between the call and now, and seen fd become ready after the call
  // found it not ready: the caller's mark about the call's result must spare that edge.
  FdEntry* e = poller_.fds().find(call.fd);
  spare_.co = e && edges_of(*e, call.interest) != call.edges ? co : nullptr;
  spare_.fd = call.fd;
  spare_.interest = call.interest;
  return call.result;
}

COIL_HOT void SchedulerImpl::flush_batch() noexcept {
  // Not from inside itself: a sanitizer's checks call hooked libc functions (UBSan's vptr check
  // calls pipe(), whose hook flushes) at any virtual call, make() in submit() among them.
  if (batch_.empty() || flushing_) return;
  flushing_ = true;
  unsigned calls = 0;
  batch_enters_.set(batch_enters_ + batch_.submit([&](BatchedCall& call) {
    ++calls;
    if (FdEntry* e = poller_.fds().find(call.fd)) call.edges = edges_of(*e, call.interest);
    wake(call.co);
  }));
  batched_.set(batched_ + calls);
  flushing_ = false;
}

long batch(BatchedCall& call) { return tls_running->scheduler->batch(call); }

void flush_batch() noexcept {
  if (SchedulerImpl* s = SchedulerImpl::current()) s->flush_batch();
}

}  // namespace coil::detail
