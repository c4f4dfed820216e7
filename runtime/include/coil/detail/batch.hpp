// Batched system calls: the hook layer's way to make a system call together with the ones other
// coroutines of the same scheduler make before it next polls, in one io_uring_enter(2).
//
// Why: a system call costs about 0.6 us of entry and exit alone on this kind of machine (measured
// with getppid), more than the work of a small send. An echo server running 1000 connections
// makes a read and a write per message; when epoll hands the scheduler a few hundred ready
// connections at once, their reads can share one kernel entry, and their writes another.
// The coroutine does not notice: its call returns what the non-blocking call would have, only
// after the others of the batch have run.
#pragma once

#include <climits>
#include <cstdint>

struct io_uring_sqe;

namespace coil::detail {

class Coroutine;

// kNotBatched is what batch() returns when the caller is to make the call itself.
inline constexpr long kNotBatched = LONG_MIN;

// BatchedCall is one system call queued on a scheduler's io_uring. It lives on the calling
// coroutine's stack, which stays parked until the call is made. The call must never block and
// must complete when submitted (MSG_DONTWAIT, RWF_NOWAIT): the scheduler waits for it right
// after submitting, and it must be safe to make directly instead.
class BatchedCall {
 public:
  // prepare() fills sqe with the call (user_data is the scheduler's).
  virtual void prepare(io_uring_sqe* sqe) const noexcept = 0;
  // make() makes the call directly, for when the ring fails: its result or -errno.
  virtual long make() const noexcept = 0;

  // fd and interest say which readiness the call's result tells of (kReadable for a receive,
  // kWritable for a send, from coil/detail/fd_wait.hpp): a caller may mark fd not ready from
  // it, and the scheduler keeps an edge that arrives after the call from being erased so.
  const int fd;
  const std::uint8_t interest;

  long result = 0;  // >= 0, or -errno: what the call returned
  bool done = false;
  Coroutine* co = nullptr;  // the caller, woken when done
  std::uint16_t edges = 0;  // fd's edges for interest when the call was made

 protected:
  BatchedCall(int call_fd, std::uint8_t call_interest) noexcept
      : fd(call_fd), interest(call_interest) {}
  ~BatchedCall() = default;
};

// batch() queues call on the running coroutine's scheduler and parks until the scheduler has
// made it, which it does before it next polls or sleeps, or sooner (flush_batch()). It returns
// call.result. It returns kNotBatched at once, queueing nothing, when batching cannot pay or
// cannot be had: nothing else is ready to run and nothing is queued (the call would make its
// kernel entry alone, and later), batching is off (COIL_IO_URING=0, SchedulerOptions), io_uring
// is unavailable (an old kernel, a seccomp filter), or the coroutine is being unwound. Then the
// caller makes the call itself. Precondition: inside a coroutine.
long batch(BatchedCall& call);

// flush_batch() makes the calls queued on this thread's scheduler now and makes their callers
// ready again. The hook layer calls it before what would change the effect of a queued call
// made later: a close, dup2 or shutdown of the fd (close and dup2 through coil::forget_fd()),
// and any call that creates an fd (which may take a number closed behind coil's back).
// No-op when nothing is queued or outside a scheduler.
void flush_batch() noexcept;

}  // namespace coil::detail
