#include "green_futex.hpp"

#include <array>
#include <boost/intrusive/list.hpp>
#include <cassert>
#include <chrono>
#include <climits>
#include <cstdint>

#include "coil/detail/park.hpp"
#include "coil/detail/spin_lock.hpp"
#include "coil/scheduler.hpp"

namespace coil::preload {
namespace {

using Waiter = FutexWaiter;
using WaitQueue = boost::intrusive::list<Waiter>;

}  // namespace

// FutexBucket: a queue of waiters and the lock that guards it and, through MonitorScope, the
// objects that hash to it. Waiters of different words sharing a bucket are told apart by
// Waiter::word; each queue keeps arrival order.
struct FutexBucket {
  detail::SpinLock lock;
  WaitQueue queue;
};

namespace {

constexpr int kBucketBits = 9;
constexpr std::size_t kBuckets = std::size_t{1} << kBucketBits;

// Never destroyed: a green thread may still wait or wake while exit() runs the static destructors
// (an atexit handler that locks a mutex, a detached thread parked on a condition variable).
std::array<FutexBucket, kBuckets>& buckets() noexcept {
  static auto* table = new std::array<FutexBucket, kBuckets>;
  return *table;
}

// bucket_of() spreads addresses by a Fibonacci hash: pthread objects sit in arrays and structs at
// small fixed strides, which the low bits alone would crowd into a few buckets.
FutexBucket& bucket_of(const void* p) noexcept {
  constexpr std::uint64_t kGolden = 0x9e3779b97f4a7c15;
  auto bits = static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(p));
  return buckets()[(bits * kGolden) >> (64 - kBucketBits)];
}

// The bucket this thread's running green thread holds through a MonitorScope, or nullptr. Set
// only while that green thread runs: a wait clears it before it parks and sets it again when it
// resumes, so another green thread of the same worker never sees it.
thread_local FutexBucket* tls_held = nullptr;

// Locked is the bucket a futex call works in: the scope's, already locked, or word's own, locked
// for the call.
class Locked {
 public:
  explicit Locked(const void* word) noexcept
      : bucket_(tls_held ? tls_held : &bucket_of(word)), own_(tls_held == nullptr) {
    if (own_) bucket_->lock.lock();
  }
  ~Locked() {
    if (own_) bucket_->lock.unlock();
  }
  Locked(const Locked&) = delete;
  Locked& operator=(const Locked&) = delete;

  FutexBucket& bucket() const noexcept { return *bucket_; }
  bool scoped() const noexcept { return !own_; }

 private:
  FutexBucket* bucket_;
  bool own_;
};

// park_in() parks the caller, queued as w in b (whose lock it holds), until woken or the deadline;
// it returns with the lock held again and w off the queue. The lock is released for the park.
FutexResult park_in(FutexBucket& b, Waiter& w, bool scoped, TimePoint deadline, bool interruptible,
                    bool* interrupted) {
  for (;;) {
    if (w.woken) return FutexResult::kWoken;
    if (scoped) tls_held = nullptr;
    detail::WakeReason why;
    try {
      why = detail::park_unlock(deadline, b.lock);
    } catch (...) {  // forced unwind: leave the queue, and the lock as the caller expects it
      b.lock.lock();
      if (w.is_linked()) b.queue.erase(b.queue.iterator_to(w));
      if (scoped) tls_held = &b;
      throw;
    }
    b.lock.lock();
    if (scoped) tls_held = &b;
    if (w.woken) return FutexResult::kWoken;
    if (why == detail::WakeReason::kTimeout) {
      b.queue.erase(b.queue.iterator_to(w));
      return FutexResult::kTimeout;
    }
    if (why == detail::WakeReason::kInterrupted && interruptible) {
      b.queue.erase(b.queue.iterator_to(w));
      *interrupted = true;
      return FutexResult::kWoken;
    }
  }
}

FutexResult wait_on(const std::atomic<std::uint32_t>* word, std::uint32_t expected,
                    TimePoint deadline, bool interruptible, bool* interrupted) {
  Locked locked(word);
  if (word->load(std::memory_order_acquire) != expected) return FutexResult::kMismatch;
  Waiter w;
  w.word = word;
  w.co = detail::current_coroutine();
  locked.bucket().queue.push_back(w);
  return park_in(locked.bucket(), w, locked.scoped(), deadline, interruptible, interrupted);
}

}  // namespace

MonitorScope::MonitorScope(const void* object) noexcept : bucket_(&bucket_of(object)) {
  assert(tls_held == nullptr && "MonitorScopes do not nest");
  lock();
}

MonitorScope::~MonitorScope() {
  if (held_) unlock();
}

void MonitorScope::lock() noexcept {
  bucket_->lock.lock();
  tls_held = bucket_;
  held_ = true;
}

void MonitorScope::unlock() noexcept {
  tls_held = nullptr;
  held_ = false;
  bucket_->lock.unlock();
}

bool in_monitor() noexcept { return tls_held != nullptr; }

FutexResult futex_wait(const std::atomic<std::uint32_t>* word, std::uint32_t expected,
                       TimePoint deadline) {
  bool interrupted = false;
  return wait_on(word, expected, deadline, false, &interrupted);
}

bool futex_wait_interruptible(const std::atomic<std::uint32_t>* word, std::uint32_t expected,
                              TimePoint deadline, FutexResult* result) {
  detail::InterruptibleWait interruptible(detail::Interrupt::kAlways);
  bool interrupted = false;
  *result = wait_on(word, expected, deadline, true, &interrupted);
  return !interrupted;
}

FutexWait::FutexWait(const std::atomic<std::uint32_t>* word) noexcept : bucket_(tls_held) {
  assert(bucket_ != nullptr && "a FutexWait is made in its object's MonitorScope");
  waiter_.word = word;
  waiter_.co = detail::current_coroutine();
  bucket_->queue.push_back(waiter_);
}

FutexWait::~FutexWait() {
  if (waiter_.is_linked()) {
    const bool held = tls_held == bucket_;
    if (!held) bucket_->lock.lock();
    bucket_->queue.erase(bucket_->queue.iterator_to(waiter_));
    if (!held) bucket_->lock.unlock();
  }
}

FutexResult FutexWait::park(TimePoint deadline) {
  assert(tls_held == bucket_ && "FutexWait::park() in its object's MonitorScope");
  bool interrupted = false;
  return park_in(*bucket_, waiter_, true, deadline, false, &interrupted);
}

int futex_wake(const void* word, int n) noexcept {
  Locked locked(word);
  WaitQueue& queue = locked.bucket().queue;
  int woken = 0;
  for (auto it = queue.begin(); it != queue.end() && woken < n;) {
    Waiter& w = *it;
    if (w.word != word) {
      ++it;
      continue;
    }
    it = queue.erase(it);
    w.woken = true;
    detail::wake(w.co);  // under the lock: the waiter cannot leave its wait meanwhile
    ++woken;
  }
  return woken;
}

bool futex_waiters(const void* word) noexcept {
  Locked locked(word);
  for (const Waiter& w : locked.bucket().queue) {
    if (w.word == word) return true;
  }
  return false;
}

void futex_forget_all() noexcept {
  for (FutexBucket& b : buckets()) {
    new (&b.lock) detail::SpinLock;  // another thread may have held it at the fork
    b.queue.clear();
  }
  tls_held = nullptr;
}

TimePoint deadline_from(clockid_t clock, const timespec& abstime) noexcept {
  // Seconds are compared before they are converted: a program's "forever" (a tv_sec near the
  // type's limits) would overflow the subtraction or the nanosecond count.
  constexpr time_t kNever = time_t{100} * 365 * 24 * 3600;
  timespec now{};
  clock_gettime(clock, &now);
  TimePoint start = std::chrono::steady_clock::now();
  if (abstime.tv_sec > now.tv_sec && abstime.tv_sec - now.tv_sec > kNever) return kNoDeadline;
  if (abstime.tv_sec < now.tv_sec - 1) return start;  // already past
  auto left = std::chrono::seconds(abstime.tv_sec - now.tv_sec) +
              std::chrono::nanoseconds(abstime.tv_nsec - now.tv_nsec);
  return start + std::chrono::duration_cast<Duration>(left);
}

}  // namespace coil::preload
