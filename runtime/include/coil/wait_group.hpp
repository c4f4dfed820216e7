// coil::WaitGroup: wait for a group of coroutines to finish (Go's
// sync.WaitGroup).
//
//   coil::WaitGroup wg;
//   for (...) { wg.add(1); coil::go([&] { work(); wg.done(); }); }
//   wg.wait();
#pragma once

#include <cstdint>

#include "coil/detail/wait_list.hpp"

namespace coil {

// WaitGroup is a counter that coroutines can wait on to reach zero.
class WaitGroup {
 public:
  // WaitGroup() starts the counter at zero.
  WaitGroup() = default;
  // ~WaitGroup() destroys it. Precondition: nobody waiting.
  ~WaitGroup() = default;
  WaitGroup(const WaitGroup&) = delete;
  WaitGroup& operator=(const WaitGroup&) = delete;

  // add() adds n (which may be negative) to the counter; when it reaches
  // zero every waiter is woken. Throws std::logic_error, leaving the counter
  // as it was, if it would go below zero. Works anywhere on the scheduler
  // thread.
  void add(std::int64_t n);

  // done() is add(-1).
  void done() { add(-1); }

  // wait() returns once the counter is zero, parking until then. Throws
  // std::logic_error outside a coroutine.
  void wait();

  // count() is the counter now.
  std::int64_t count() const noexcept;

 private:
  mutable detail::SpinLock lock_;  // around the fields below (wait_list.hpp)
  std::int64_t count_ = 0;
  detail::WaitList<> waiters_;  // non-empty only while count_ > 0
};

}  // namespace coil
