#include "green_futex.hpp"

#include <array>
#include <boost/intrusive/list.hpp>
#include <chrono>
#include <climits>
#include <cstdint>
#include <functional>

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

std::array<WaitQueue, kBuckets>& queues() noexcept {
  static std::array<WaitQueue, kBuckets> table;
  return table;
}

WaitQueue& queue_of(const void* word) noexcept {
  auto bits = reinterpret_cast<std::uintptr_t>(word);
  return queues()[std::hash<std::uintptr_t>{}(bits >> 2) % kBuckets];
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
  timespec now{};
  clock_gettime(clock, &now);
  auto left = std::chrono::seconds(abstime.tv_sec - now.tv_sec) +
              std::chrono::nanoseconds(abstime.tv_nsec - now.tv_nsec);
  TimePoint start = std::chrono::steady_clock::now();
  if (left > std::chrono::hours(24 * 365 * 100)) return kNoDeadline;  // far enough: never
  return start + std::chrono::duration_cast<Duration>(left);
}

}  // namespace coil::preload
