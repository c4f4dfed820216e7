// SyscallBatch: one scheduler's io_uring, through which the calls its coroutines queue
// (coil/detail/batch.hpp) enter the kernel together.
//
// Why io_uring only as a batch, and epoll still for readiness: every call queued here is
// non-blocking (MSG_DONTWAIT) and completes inside the io_uring_enter that submits it, so the
// ring never holds a call across a poll. Waiting, timeouts, EINTR and close() keep the one
// mechanism they have (the poller and the wait tree); the ring only saves kernel entries.
#pragma once

#include <liburing.h>

#include <atomic>
#include <cstdint>

#include "coil/detail/batch.hpp"

namespace coil::detail {

// uring_wanted() reads COIL_IO_URING once: true unless it is a false word (0, no, false, off).
// A malformed value throws std::invalid_argument, on this and every later call.
bool uring_wanted();

// fork_count counts the fork()s this process descends from (bumped in the child by the
// scheduler's pthread_atfork handler): a SyscallBatch opened under another count is a parent's.
extern std::atomic<std::uint32_t> fork_count;

class SyscallBatch {
 public:
  // kEntries bounds the calls queued at once; a full batch is submitted before one more is
  // queued. A scheduler resumes at most SchedulerImpl::kResumesPerPoll (128) coroutines between
  // polls, each of which queues at most one call before it parks.
  static constexpr unsigned kEntries = 256;

  SyscallBatch() = default;
  ~SyscallBatch();
  SyscallBatch(const SyscallBatch&) = delete;
  SyscallBatch& operator=(const SyscallBatch&) = delete;

  // usable() opens the ring on first use and says whether calls can be queued. False for good
  // once opening failed (the kernel or a seccomp filter refused io_uring) or the ring broke. A
  // ring inherited over fork() (by a scheduler that was not running at the fork) is the
  // parent's: it is dropped and the child's own opened.
  bool usable() noexcept {
    if (forks_ != fork_count.load(std::memory_order_relaxed)) drop_after_fork();
    return state_ == State::kOpen || (state_ == State::kClosed && open());
  }
  bool empty() const noexcept { return queued_ == 0; }
  bool full() const noexcept { return queued_ == kEntries; }

  // queue() puts call on the ring. Precondition: usable() and !full().
  void queue(BatchedCall& call) noexcept;

  // submit() makes every queued call, with one io_uring_enter (or directly, one by one, when
  // the ring fails), fills in each result and calls done(call) for each, in queue order.
  // Returns how many kernel entries it took.
  template <class Done>
  unsigned submit(Done&& done) noexcept;

  // drop_after_fork() forgets the ring in a fork()ed child without touching it: its memory is
  // shared with the parent's, whose queued calls the parent makes. The child opens its own.
  void drop_after_fork() noexcept;

 private:
  enum class State : std::uint8_t { kClosed, kOpen, kBroken };

  bool open() noexcept;
  unsigned reap() noexcept;                // takes the completions there, returns how many
  unsigned make_rest_directly() noexcept;  // returns how many it made

  io_uring ring_{};
  State state_ = State::kClosed;
  std::uint32_t forks_ = 0;  // fork_count when the ring was opened
  unsigned queued_ = 0;
  BatchedCall* calls_[kEntries];
};

template <class Done>
unsigned SyscallBatch::submit(Done&& done) noexcept {
  unsigned entries = 0;
  unsigned made = 0;  // of the queued calls, how many have their result
  while (made < queued_) {
    // Every call completes inside the submission; the wait is a safety net costing nothing.
    int rc = io_uring_submit_and_wait(&ring_, queued_ - made);
    ++entries;
    unsigned reaped = reap();
    made += reaped;
    if (reaped > 0 || rc > 0 || rc == -EINTR) continue;
    // No progress: the ring is unusable. Its fd was closed by the program (a close-all loop),
    // and the number is now another file's (an error) or another io_uring's (nothing of ours
    // is consumed there). A call not reaped was never consumed: consumed ones complete inside
    // io_uring_enter.
    state_ = State::kBroken;
    unsigned direct = make_rest_directly();
    entries += direct;
    made += direct;
  }
  for (unsigned i = 0; i < queued_; ++i) done(*calls_[i]);
  queued_ = 0;
  return entries;
}

}  // namespace coil::detail
