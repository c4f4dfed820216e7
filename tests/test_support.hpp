// Shared fixture for coil's tests: a scheduler per test that fails the test
// if any coroutine is left alive when the test ends.
#pragma once

#include <gtest/gtest.h>

#include <optional>

#include "coil/scheduler.hpp"

namespace coil::test {

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
