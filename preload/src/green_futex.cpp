#include "green_futex.hpp"

#include <array>
#include <boost/intrusive/list.hpp>
#include <chrono>
#include <climits>
#include <cstdint>

#include "coil/detail/park.hpp"
#include "coil/scheduler.hpp"

namespace coil::preload {
namespace {

// Waiter is one parked green thread, on its own stack for the length of the wait.
struct Waiter : boost::intrusive::list_base_hook<> {
  const void* word = nullptr;
  detail::Coroutine* co = nullptr;
  bool woken = false;
};

using WaitQueue = boost::intrusive::list<Waiter>;

// The table: a queue per bucket, words hashed by address. Waiters of different words sharing a
// bucket are told apart by Waiter::word; each queue keeps arrival order.
constexpr std::size_t kBuckets = 512;

// Never destroyed: a green thread may still wait or wake while exit() runs the static destructors
// (an atexit handler that locks a mutex, a detached thread parked on a condition variable).
std::array<WaitQueue, kBuckets>& queues() noexcept {
  static auto* table = new std::array<WaitQueue, kBuckets>;
  return *table;
}

// queue_of() spreads words by a Fibonacci hash of the address: pthread objects sit in arrays and
// structs at small fixed strides, which the low bits alone would crowd into a few buckets.
WaitQueue& queue_of(const void* word) noexcept {
  constexpr std::uint64_t kGolden = 0x9e3779b97f4a7c15;
  constexpr int kBucketBits = 9;
  static_assert(kBuckets == std::size_t{1} << kBucketBits);
  auto bits = static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(word));
  return queues()[(bits * kGolden) >> (64 - kBucketBits)];
}

// Unlink takes a waiter off its queue when the wait ends any way but by futex_wake(),
// including the forced unwind of a scheduler that is being destroyed.
struct Unlink {
  WaitQueue& queue;
  Waiter& waiter;
  ~Unlink() {
    if (waiter.is_linked()) queue.erase(queue.iterator_to(waiter));
  }
};

FutexResult wait_on(const std::atomic<std::uint32_t>* word, std::uint32_t expected,
                    TimePoint deadline, bool interruptible, bool* interrupted) {
  if (word->load(std::memory_order_acquire) != expected) return FutexResult::kMismatch;
  WaitQueue& queue = queue_of(word);
  Waiter waiter;
  waiter.word = word;
  waiter.co = detail::current_coroutine();
  queue.push_back(waiter);
  Unlink unlink{queue, waiter};
  for (;;) {
    detail::WakeReason why = detail::park(deadline);
    if (waiter.woken) return FutexResult::kWoken;
    if (why == detail::WakeReason::kTimeout) return FutexResult::kTimeout;
    if (why == detail::WakeReason::kInterrupted && interruptible) {
      *interrupted = true;
      return FutexResult::kWoken;
    }
  }
}

}  // namespace

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

int futex_wake(const void* word, int n) noexcept {
  WaitQueue& queue = queue_of(word);
  int woken = 0;
  for (auto it = queue.begin(); it != queue.end() && woken < n;) {
    Waiter& w = *it;
    if (w.word != word) {
      ++it;
      continue;
    }
    it = queue.erase(it);
    w.woken = true;
    detail::wake(w.co);
    ++woken;
  }
  return woken;
}

bool futex_waiters(const void* word) noexcept {
  for (const Waiter& w : queue_of(word)) {
    if (w.word == word) return true;
  }
  return false;
}

void futex_forget_all() noexcept {
  for (WaitQueue& queue : queues()) queue.clear();
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
