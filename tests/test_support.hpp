// Shared fixture for coil's tests: a scheduler per test that fails the test
// if any coroutine is left alive when the test ends.
#pragma once

#include <gtest/gtest.h>

#include <optional>

#include "coil/scheduler.hpp"
#include "sanitizer.hpp"

namespace coil::test {

// kTsan: ThreadSanitizer counts every coroutine as a thread and dies past
// 8128 live ones, so tests about huge counts scale down or skip under it.
#if COIL_TSAN
inline constexpr bool kTsan = true;
#else
inline constexpr bool kTsan = false;
#endif

// scaled() is n, or a count TSan can hold.
constexpr int scaled(int n) { return kTsan && n > 4000 ? 4000 : n; }

class SchedulerTest : public ::testing::Test {
 protected:
  // scheduler() creates the test's scheduler on first use.
  Scheduler& scheduler(SchedulerOptions opts = {}) {
    if (!sched_) sched_.emplace(opts);
    return *sched_;
  }

  void TearDown() override {
    if (!sched_) return;
    EXPECT_EQ(sched_->stats().live_coroutines, 0u) << "the test leaked coroutines";
    EXPECT_EQ(sched_->stats().stacks_in_use, 0u) << "the test left stacks unreleased (unjoined)";
    sched_.reset();
  }

 private:
  std::optional<Scheduler> sched_;
};

}  // namespace coil::test
