// The sleep tree: ordering by deadline with FIFO ties, driven by an injected
// clock; plus one loose real-clock check where the kernel is the subject.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "coil/scheduler.hpp"
#include "test_support.hpp"

namespace coil {
namespace {

using namespace std::chrono_literals;
using Sleep = test::SchedulerTest;

// drive() advances clock in steps until `until`, letting sleepers run.
void drive(ManualClock& clock, Duration step, int steps) {
  for (int i = 0; i < steps; ++i) {
    clock.advance(step);
    yield();
  }
}

TEST_F(Sleep, WakesInDeadlineOrderWithFifoTies) {
  ManualClock clock;
  Scheduler& s = scheduler({.clock = &clock});
  // (id, delay ms): ties at 5 ms and 9 ms must wake in spawn order.
  std::vector<std::pair<int, int>> sleepers = {{0, 9}, {1, 5}, {2, 1}, {3, 5}, {4, 9},
                                               {5, 3}, {6, 5}, {7, 0}, {8, 9}, {9, 2}};
  std::vector<int> woke;
  for (auto [id, ms] : sleepers) {
    s.spawn([&woke, id = id, ms = ms] {
       sleep_for(std::chrono::milliseconds(ms));
       woke.push_back(id);
     }).detach();
  }
  s.spawn([&] { drive(clock, 1ms, 12); }).detach();
  s.run();
  std::vector<int> expected = {7, 2, 9, 5, 1, 3, 6, 0, 4, 8};
  EXPECT_EQ(woke, expected);
}

TEST_F(Sleep, ManySleepersInRandomOrderWakeSorted) {
  ManualClock clock;
  Scheduler& s = scheduler({.clock = &clock});
  std::mt19937 rng(12345);
  std::vector<int> delays(2000);
  for (int& d : delays) d = static_cast<int>(rng() % 500);
  std::vector<int> woke;
  for (int d : delays) {
    s.spawn([&woke, d] {
       sleep_for(std::chrono::milliseconds(d));
       woke.push_back(d);
     }).detach();
  }
  s.spawn([&] { drive(clock, 1ms, 501); }).detach();
  s.run();
  ASSERT_EQ(woke.size(), delays.size());
  EXPECT_TRUE(std::is_sorted(woke.begin(), woke.end()));
}

TEST_F(Sleep, TimeStandsStillUntilTheClockMoves) {
  ManualClock clock;
  Scheduler& s = scheduler({.clock = &clock});
  bool woke = false;
  s.spawn([&] {
     sleep_for(10ms);
     woke = true;
   }).detach();
  s.spawn([&] {
     for (int i = 0; i < 100; ++i) yield();  // lots of scheduling, no time
     EXPECT_FALSE(woke);
     // Timers are checked between batches of at most kResumesPerPoll
     // resumes, so a yielding coroutine sees a due sleeper run within a
     // batch or two.
     constexpr int kEnoughYields = 3 * 128;
     clock.advance(9ms);
     for (int i = 0; i < kEnoughYields; ++i) yield();
     EXPECT_FALSE(woke);
     clock.advance(1ms);
     for (int i = 0; i < kEnoughYields && !woke; ++i) yield();
     EXPECT_TRUE(woke);
   }).detach();
  s.run();
  EXPECT_TRUE(woke);
}

TEST_F(Sleep, PastDeadlineReturnsWithoutSuspending) {
  ManualClock clock;
  Scheduler& s = scheduler({.clock = &clock});
  std::string order;
  s.spawn([&] {
     order += "a";
     sleep_until(clock.now() - 1s);
     sleep_for(0ms);
     order += "b";
   }).detach();
  s.spawn([&] { order += "c"; }).detach();
  s.run();
  EXPECT_EQ(order, "abc");
}

// Regression: a negative duration meant "no deadline" and slept forever.
TEST_F(Sleep, NegativeDurationReturnsAtOnceLikeStdSleepFor) {
  Scheduler& s = scheduler();
  bool done = false;
  s.spawn([&] {
     sleep_for(-5ms);
     sleep_for(Duration::min());
     done = true;
   }).detach();
  s.run();
  EXPECT_TRUE(done);
}

TEST(SleepDeadlock, SleepersOnAManualClockNobodyAdvancesAreReported) {
  ManualClock clock;
  Scheduler s({.clock = &clock});
  s.spawn([] { sleep_for(1s); }, {.name = "napper"}).detach();
  try {
    s.run();
    FAIL() << "run() should report that time can never reach the sleeper";
  } catch (const DeadlockError& e) {
    EXPECT_NE(std::string(e.what()).find("manual clock"), std::string::npos) << e.what();
  }
}

// The real clock, loosely: never early, and not absurdly late.
TEST_F(Sleep, RealClockSleepIsNeverEarly) {
  Scheduler& s = scheduler();
  std::vector<Duration> slept;
  for (auto d : {1ms, 5ms, 20ms}) {
    s.spawn([&slept, d] {
       auto start = std::chrono::steady_clock::now();
       sleep_for(d);
       auto took = std::chrono::steady_clock::now() - start;
       EXPECT_GE(took, d);
       EXPECT_LT(took, d + 500ms);
       slept.push_back(took);
     }).detach();
  }
  s.run();
  EXPECT_EQ(slept.size(), 3u);
}

TEST(SleepOutside, BlocksTheThreadLikeStdSleep) {
  auto start = std::chrono::steady_clock::now();
  sleep_for(5ms);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 5ms);
}

}  // namespace
}  // namespace coil
