// Spawning, joining, yielding, exceptions, deadlock reports, cross-thread
// posts and the idle behaviour of the scheduler.
#include <gtest/gtest.h>
#include <time.h>

#include <atomic>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "coil/scheduler.hpp"
#include "test_support.hpp"

namespace coil {
namespace {

using namespace std::chrono_literals;
using SchedulerBasics = test::SchedulerTest;

TEST_F(SchedulerBasics, JoinReturnsTheValue) {
  auto h = scheduler().spawn([] { return 6 * 7; });
  scheduler().run();
  EXPECT_EQ(h.join(), 42);
}

TEST_F(SchedulerBasics, JoinMovesMoveOnlyResults) {
  auto h = scheduler().spawn([] { return std::make_unique<std::string>("moved"); });
  scheduler().run();
  EXPECT_EQ(*h.join(), "moved");
}

TEST_F(SchedulerBasics, JoinInsideACoroutineWaitsForTheChild) {
  std::vector<std::string> log;
  scheduler().spawn([&] {
    auto child = spawn([&] {
      log.push_back("child start");
      yield();
      log.push_back("child end");
      return 7;
    });
    log.push_back("parent joins");
    int v = child.join();
    log.push_back("parent got " + std::to_string(v));
  });
  scheduler().run();
  EXPECT_EQ(log,
            (std::vector<std::string>{"parent joins", "child start", "child end", "parent got 7"}));
}

TEST_F(SchedulerBasics, JoinRethrowsTheCoroutinesException) {
  auto h = scheduler().spawn([]() -> int { throw std::out_of_range("index 9"); });
  scheduler().run();
  try {
    h.join();
    FAIL() << "join() did not rethrow";
  } catch (const std::out_of_range& e) {
    EXPECT_STREQ(e.what(), "index 9");
  }
}

TEST_F(SchedulerBasics, ExceptionsThrownAndCaughtInsideCoroutinesAcrossYields) {
  int caught = 0;
  for (int i = 0; i < 10; ++i) {
    scheduler().spawn([&] {
      for (int round = 0; round < 5; ++round) {
        try {
          yield();
          throw std::runtime_error("round");
        } catch (const std::runtime_error&) {
          ++caught;
        }
      }
    });
  }
  scheduler().run();
  EXPECT_EQ(caught, 50);
}

TEST_F(SchedulerBasics, YieldIsFifo) {
  std::string order;
  for (char c : std::string("abc")) {
    scheduler().spawn([&order, c] {
      for (int i = 0; i < 3; ++i) {
        order += c;
        yield();
      }
    });
  }
  scheduler().run();
  EXPECT_EQ(order, "abcabcabc");
}

TEST_F(SchedulerBasics, IdsAreUniqueAndNamesAreKeptAndCut) {
  std::uint64_t a = 0, b = 0;
  std::string name_a, name_b;
  scheduler().spawn([&] { a = this_coroutine::id(), name_a = this_coroutine::name(); },
                    {.name = "alpha"});
  scheduler().spawn([&] { b = this_coroutine::id(), name_b = this_coroutine::name(); },
                    {.name = "a-very-long-name-that-goes-past-thirty-one-bytes"});
  scheduler().run();
  EXPECT_NE(a, 0u);
  EXPECT_NE(a, b);
  EXPECT_EQ(name_a, "alpha");
  EXPECT_EQ(name_b, "a-very-long-name-that-goes-past");
  EXPECT_EQ(this_coroutine::id(), 0u) << "outside coroutines the id is 0";
}

TEST_F(SchedulerBasics, RunReturnsOnlyWhenNestedSpawnsFinish) {
  int done = 0;
  scheduler().spawn([&] {
    for (int i = 0; i < 100; ++i) {
      go([&] {
        yield();
        go([&] { ++done; });
        ++done;
      });
    }
  });
  scheduler().run();
  EXPECT_EQ(done, 200);
}

TEST(SchedulerFree, CoilRunReturnsMainsValue) {
  int value = run([] {
    auto h = spawn([] { return 40; });
    return h.join() + 2;
  });
  EXPECT_EQ(value, 42);
}

TEST(SchedulerMisuse, SpawnOutsideAScheduler) {
  EXPECT_THROW(spawn([] {}), std::logic_error);
}

TEST(SchedulerMisuse, JoinOutsideACoroutineBeforeTheChildFinished) {
  Scheduler sched;
  auto h = sched.spawn([] { return 1; });
  EXPECT_THROW(h.join(), std::logic_error);
  sched.run();
  EXPECT_EQ(h.join(), 1);
}

// 100k coroutines in 50k pairs bounce a ball with park()/wake(): each wake
// must reach exactly the partner, in strict alternation.
TEST_F(SchedulerBasics, HundredThousandCoroutinesPingPong) {
  constexpr int kPairs = test::scaled(100000) / 2;
  constexpr int kRounds = 10;
  struct Court {
    detail::Coroutine* parked[2] = {nullptr, nullptr};
    int turn = 0;
    int hits = 0;
    bool broken = false;
  };
  std::vector<Court> courts(kPairs);
  auto player = [](Court& c, int me) {
    for (int r = 0; r < kRounds; ++r) {
      while (c.turn != me) {
        c.parked[me] = detail::current_coroutine();
        detail::park();
        c.parked[me] = nullptr;
      }
      ++c.hits;
      c.turn = 1 - me;
      if (detail::Coroutine* other = c.parked[1 - me]) {
        if (!detail::wake(other)) c.broken = true;
      }
    }
  };
  for (auto& c : courts) {
    scheduler().spawn([&c, player] { player(c, 0); }).detach();
    scheduler().spawn([&c, player] { player(c, 1); }).detach();
  }
  scheduler().run();
  for (const auto& c : courts) {
    ASSERT_EQ(c.hits, 2 * kRounds);
    ASSERT_FALSE(c.broken);
  }
  EXPECT_EQ(scheduler().stats().peak_coroutines, 2ull * kPairs);
}

TEST_F(SchedulerBasics, RunOnceStepsWithoutBlocking) {
  int steps = 0;
  bool done = false;
  scheduler()
      .spawn([&] {
        for (int i = 0; i < 300; ++i) yield();
        done = true;
      })
      .detach();
  // 301 resumes at most 128 per step: the third step finishes the work.
  while (scheduler().run_once(/*may_block=*/false)) ++steps;
  EXPECT_TRUE(done);
  EXPECT_EQ(steps, 2);
  EXPECT_FALSE(scheduler().run_once(false)) << "nothing left to run";
}

TEST(SchedulerDeadlock, ReportsStuckCoroutinesAndUnwindsThemOnDestruction) {
  bool destructor_ran = false;
  struct Flag {
    bool* flag;
    ~Flag() { *flag = true; }
  };
  {
    Scheduler sched;
    sched
        .spawn(
            [&] {
              Flag f{&destructor_ran};
              detail::park();  // nobody will ever wake us
            },
            {.name = "stuck-one"})
        .detach();
    try {
      sched.run();
      FAIL() << "run() returned although a coroutine can never finish";
    } catch (const DeadlockError& e) {
      EXPECT_NE(std::string(e.what()).find("\"stuck-one\""), std::string::npos) << e.what();
    }
    EXPECT_FALSE(destructor_ran);
  }
  EXPECT_TRUE(destructor_ran) << "destroying the scheduler must unwind parked coroutines";
}

// Regression: unwinding a deadlocked scheduler released a finished child
// while its parent, unwound later, still held the child's JoinHandle; the
// handle's detach() then freed it a second time (segfault).
TEST(SchedulerDeadlock, UnwindWithJoinHandlesHeldByStuckCoroutines) {
  int children_done = 0;
  {
    Scheduler sched;
    sched
        .spawn([&] {
          auto child = spawn([&] { return ++children_done; });
          std::vector<JoinHandle<int>> workers;
          for (int i = 0; i < 3; ++i) workers.push_back(spawn([&] { return ++children_done; }));
          workers.push_back(spawn([] {
            detail::park();  // one worker stuck forever
            return 0;
          }));
          yield();
          detail::park();  // and the parent too, holding every handle
        })
        .detach();
    EXPECT_THROW(sched.run(), DeadlockError);
  }
  EXPECT_EQ(children_done, 4);
}

// Regression: a joiner unwound while waiting left a dangling joiner pointer
// in the coroutine it joined.
TEST(SchedulerDeadlock, UnwindAJoinerWaitingOnAStuckCoroutine) {
  Scheduler sched;
  sched
      .spawn([] {
        auto stuck = spawn([] { detail::park(); });
        stuck.join();
      })
      .detach();
  EXPECT_THROW(sched.run(), DeadlockError);
}

// A posted function that throws leaves run(); the ones after it still run.
TEST(SchedulerCrossThread, ThrowingPostKeepsTheRestQueued) {
  Scheduler sched;
  std::string order;
  sched.post([&] { order += "a"; });
  sched.post([&] { throw std::runtime_error("post failed"); });
  sched.post([&] { order += "c"; });
  EXPECT_THROW(sched.run(), std::runtime_error);
  EXPECT_EQ(order, "a");
  sched.run();
  EXPECT_EQ(order, "ac");
}

TEST(SchedulerCrossThread, PostWakesAnIdleSchedulerAndKeepAliveHoldsRunOpen) {
  Scheduler sched;
  std::atomic<int> value{0};
  auto keep = std::make_unique<Scheduler::KeepAlive>(sched);
  std::thread other([&] {
    std::this_thread::sleep_for(20ms);
    sched.post([&] {
      go([&] {
        yield();
        value = 42;
      });
    });
    std::this_thread::sleep_for(20ms);
    sched.post([&keep] { keep.reset(); });
  });
  sched.run();
  other.join();
  EXPECT_EQ(value.load(), 42);
}

double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// An idle scheduler sleeps in epoll_wait until the deadline: a 300 ms sleep
// costs a couple of polls, not a spin (libco polls every 1 ms).
TEST_F(SchedulerBasics, IdleSchedulerBlocksInsteadOfSpinning) {
  scheduler().spawn([] { sleep_for(300ms); });
  double cpu_before = process_cpu_seconds();
  scheduler().run();
  double cpu = process_cpu_seconds() - cpu_before;
  EXPECT_LE(scheduler().stats().polls, 3u);
  EXPECT_LT(cpu, 0.15) << "the scheduler burned CPU while idle";
}

TEST(DetachedExceptionDeathTest, TerminatesNamingTheCoroutine) {
  EXPECT_DEATH(
      {
        Scheduler sched;
        sched.spawn([] { throw std::runtime_error("kaput"); }, {.name = "doomed"}).detach();
        sched.run();
      },
      "coil: uncaught exception in detached coroutine [0-9]+ \"doomed\": std::exception: kaput");
}

TEST(DetachedExceptionDeathTest, DroppingTheHandleOfAFailedCoroutineTerminatesToo) {
  EXPECT_DEATH(
      {
        Scheduler sched;
        auto h = sched.spawn([] { throw std::runtime_error("late"); }, {.name = "unjoined"});
        sched.run();
        h.detach();
      },
      "uncaught exception in detached coroutine [0-9]+ \"unjoined\"");
}

}  // namespace
}  // namespace coil
