// StatCounter: a statistic that one thread writes and any thread may read.
#pragma once

#include <atomic>
#include <cstdint>

namespace coil::detail {

// StatCounter is a count kept by the thread that owns it (a scheduler's)
// and read by others (coil::process_stats(), COIL_STATS at exit). Why an
// atomic with relaxed loads and stores and no read-modify-write: a plain
// integer read from another thread is a data race, and a fetch_add is a
// locked instruction on every switch; a relaxed load and store compile to
// the plain increment, and a reader sees some recent value.
class StatCounter {
 public:
  StatCounter() = default;
  StatCounter(const StatCounter&) = delete;
  StatCounter& operator=(const StatCounter&) = delete;

  StatCounter& operator++() noexcept {
    set(get() + 1);
    return *this;
  }
  StatCounter& operator--() noexcept {
    set(get() - 1);
    return *this;
  }
  void set(std::uint64_t v) noexcept { v_.store(v, std::memory_order_relaxed); }
  std::uint64_t get() const noexcept { return v_.load(std::memory_order_relaxed); }
  // Implicit: it reads like the plain count it stands for.
  operator std::uint64_t() const noexcept { return get(); }

 private:
  std::atomic<std::uint64_t> v_{0};
};

}  // namespace coil::detail
