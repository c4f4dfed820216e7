// Runtime: worker threads each running a scheduler; coroutines placed on a
// worker stay there; the sync primitives between coroutines of different
// workers (hand-offs, timeouts racing wake-ups, wake-ups of a worker asleep
// in epoll, from a plain thread too); wait() counting spawns in flight.
#include <gtest/gtest.h>
#include <sched.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "coil/channel.hpp"
#include "coil/cond_var.hpp"
#include "coil/mutex.hpp"
#include "coil/runtime.hpp"
#include "coil/semaphore.hpp"
#include "coil/wait_group.hpp"

namespace coil {
namespace {

using namespace std::chrono_literals;

TEST(Runtime, CoroutinesRunOnTheWorkerTheyWerePlacedOn) {
  Runtime rt({.workers = 3});
  ASSERT_EQ(rt.workers(), 3);
  std::atomic<int> wrong{0}, ran{0};
  std::vector<std::thread::id> ids(3);
  for (int w = 0; w < 3; ++w) {
    rt.go_on(w, [&, w] {
      ids[static_cast<std::size_t>(w)] = std::this_thread::get_id();
      for (int i = 0; i < 10; ++i) {
        coil::go([&, w] {  // on the same worker
          if (Runtime::current_worker() != w) ++wrong;
          coil::sleep_for(1ms);
          if (Runtime::current_worker() != w) ++wrong;
          ++ran;
        });
      }
    });
  }
  rt.wait();
  EXPECT_EQ(ran.load(), 30);
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_NE(ids[0], ids[1]);
  EXPECT_NE(ids[1], ids[2]);
  EXPECT_EQ(Runtime::current_worker(), -1);
}

TEST(Runtime, BadArgumentsAreRefused) {
  EXPECT_THROW(Runtime({.workers = -1}), std::invalid_argument);
  EXPECT_THROW(Runtime({.workers = 5000}), std::invalid_argument);
  Runtime rt({.workers = 2});
  EXPECT_THROW(rt.go_on(2, [] {}), std::out_of_range);
  EXPECT_THROW(rt.go_on(-1, [] {}), std::out_of_range);
}

TEST(Runtime, PinnedWorkersRunOnTheirCpus) {
  cpu_set_t set;
  ASSERT_EQ(sched_getaffinity(0, sizeof set, &set), 0);
  std::vector<int> cpus;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &set)) cpus.push_back(c);
  }
  if (cpus.size() < 2) GTEST_SKIP() << "needs 2 CPUs";
  Runtime rt({.workers = 2, .pin = true});
  std::atomic<int> seen[2] = {-1, -1};
  for (int w = 0; w < 2; ++w) {
    rt.go_on(w, [&, w] {
      coil::sleep_for(1ms);
      seen[w] = sched_getcpu();
    });
  }
  rt.wait();
  EXPECT_EQ(seen[0].load(), cpus[0]);
  EXPECT_EQ(seen[1].load(), cpus[1]);
}

// wait() counts a spawn posted to a worker before it has run, and the
// coroutines a coroutine spawns on other workers.
TEST(Runtime, WaitCountsSpawnsInFlightAndNestedOnes) {
  Runtime rt({.workers = 2});
  std::atomic<int> done{0};
  for (int round = 0; round < 50; ++round) {
    rt.go([&] {
      coil::go([&] {
        coil::sleep_for(100us);
        ++done;
      });
      ++done;
    });
  }
  rt.wait();
  EXPECT_EQ(done.load(), 100);
  rt.go([&] { ++done; });  // usable again after wait()
  rt.wait();
  EXPECT_EQ(done.load(), 101);
}

TEST(RuntimeSync, MutexExcludesAcrossWorkers) {
  Runtime rt({.workers = 2});
  Mutex mu;
  long counter = 0;
  std::atomic<int> inside{0}, overlaps{0};
  constexpr int kCoroutines = 8, kRounds = 2000;
  for (int c = 0; c < kCoroutines; ++c) {
    rt.go([&, c] {
      for (int i = 0; i < kRounds; ++i) {
        std::lock_guard lock(mu);
        if (inside.fetch_add(1) != 0) ++overlaps;
        ++counter;
        if ((i + c) % 97 == 0) coil::yield();  // holds it across a switch
        inside.fetch_sub(1);
      }
    });
  }
  rt.wait();
  EXPECT_EQ(counter, long{kCoroutines} * kRounds);
  EXPECT_EQ(overlaps.load(), 0);
}

// Waiters that time out while holders on the other worker hand the mutex
// over: every lock attempt ends exactly once, as taken or timed out, and the
// mutex is free at the end.
TEST(RuntimeSync, TimedLocksRacingHandOffsLoseNothing) {
  Runtime rt({.workers = 2});
  Mutex mu;
  std::atomic<long> taken{0}, timed_out{0};
  for (int c = 0; c < 6; ++c) {
    rt.go([&] {
      for (int i = 0; i < 500; ++i) {
        if (mu.try_lock_for(20us)) {
          ++taken;
          if (i % 7 == 0) coil::sleep_for(10us);
          mu.unlock();
        } else {
          ++timed_out;
        }
      }
    });
  }
  rt.wait();
  EXPECT_EQ(taken + timed_out, 6 * 500);
  EXPECT_GT(taken.load(), 0);
  EXPECT_TRUE(mu.try_lock());
  mu.unlock();
}

TEST(RuntimeSync, ChannelsCarryEveryItemBetweenWorkers) {
  Runtime rt({.workers = 2});
  constexpr int kItems = 20000;
  for (std::size_t capacity : {std::size_t{0}, std::size_t{16}}) {
    Channel<int> ch(capacity);
    long sum = 0;
    int last = -1;
    bool ordered = true;
    rt.go_on(0, [&] {
      for (int i = 0; i < kItems; ++i) ch.send(i);
      ch.close();
    });
    rt.go_on(1, [&] {
      while (std::optional<int> v = ch.recv()) {
        ordered = ordered && *v == last + 1;
        last = *v;
        sum += *v;
      }
    });
    rt.wait();
    EXPECT_EQ(sum, long{kItems} * (kItems - 1) / 2) << "capacity " << capacity;
    EXPECT_TRUE(ordered) << "capacity " << capacity;
  }
}

TEST(RuntimeSync, CondVarProducerConsumerAcrossWorkers) {
  Runtime rt({.workers = 2});
  Mutex mu;
  CondVar cv;
  std::vector<int> queue;
  bool finished = false;
  long consumed = 0;
  constexpr int kItems = 10000;
  for (int c = 0; c < 3; ++c) {
    rt.go_on(1, [&] {
      for (;;) {
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return !queue.empty() || finished; });
        if (queue.empty()) return;
        consumed += queue.back();
        queue.pop_back();
      }
    });
  }
  rt.go_on(0, [&] {
    for (int i = 1; i <= kItems; ++i) {
      std::lock_guard lock(mu);
      queue.push_back(i);
      cv.notify_one();
    }
    std::lock_guard lock(mu);
    finished = true;
    cv.notify_all();
  });
  rt.wait();
  EXPECT_EQ(consumed, long{kItems} * (kItems + 1) / 2);
}

// Permits are conserved when acquirers on one worker time out while a
// releaser on the other hands permits over.
TEST(RuntimeSync, SemaphorePermitsAreConservedUnderTimeouts) {
  Runtime rt({.workers = 2});
  Semaphore sem(0);
  std::atomic<long> acquired{0};
  constexpr int kReleases = 3000;
  for (int c = 0; c < 4; ++c) {
    rt.go_on(0, [&] {
      for (int i = 0; i < 1500; ++i) {
        if (sem.try_acquire_for(30us)) ++acquired;
      }
    });
  }
  rt.go_on(1, [&] {
    for (int i = 0; i < kReleases; ++i) {
      sem.release();
      if (i % 5 == 0) coil::sleep_for(5us);
    }
  });
  rt.wait();
  EXPECT_EQ(acquired.load() + sem.available(), kReleases);
}

TEST(RuntimeSync, WaitGroupAcrossWorkers) {
  Runtime rt({.workers = 2});
  WaitGroup wg;
  std::atomic<int> done{0};
  bool all_done_seen = false;
  constexpr int kTasks = 1000;
  wg.add(kTasks);
  rt.go_on(0, [&] {
    wg.wait();
    all_done_seen = done.load() == kTasks;
  });
  for (int i = 0; i < kTasks; ++i) {
    rt.go([&] {
      coil::yield();
      ++done;
      wg.done();
    });
  }
  rt.wait();
  EXPECT_TRUE(all_done_seen);
}

// A worker with nothing else to do sleeps in epoll; a release from a plain
// thread must wake it through its eventfd, at once, not at some timeout.
TEST(RuntimeSync, APlainThreadWakesAWorkerAsleepInEpoll) {
  Runtime rt({.workers = 1});
  Semaphore sem(0);
  std::atomic<bool> woke{false};
  rt.go_on(0, [&] {
    sem.acquire();
    woke = true;
  });
  std::this_thread::sleep_for(50ms);  // the worker is asleep by now
  EXPECT_FALSE(woke.load());
  auto start = std::chrono::steady_clock::now();
  sem.release();
  while (!woke.load() && std::chrono::steady_clock::now() - start < 10s) {
    std::this_thread::sleep_for(100us);
  }
  EXPECT_TRUE(woke.load());
  rt.wait();
}

}  // namespace
}  // namespace coil
