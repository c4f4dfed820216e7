// Sync primitives: Mutex, CondVar, Channel, WaitGroup, Semaphore on one
// scheduler; their FIFO hand-offs, timeouts on a ManualClock, misuse errors,
// and unwinding of blocked waiters when a scheduler is destroyed.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "coil/channel.hpp"
#include "coil/cond_var.hpp"
#include "coil/mutex.hpp"
#include "coil/scheduler.hpp"
#include "coil/semaphore.hpp"
#include "coil/wait_group.hpp"
#include "test_support.hpp"

namespace coil {
namespace {

using namespace std::chrono_literals;

// ManualClockTest is the leak-checking fixture with a ManualClock. The clock
// is a member so that it outlives the scheduler, which TearDown() destroys.
class ManualClockTest : public test::SchedulerTest {
 protected:
  Scheduler& sched() { return scheduler(SchedulerOptions{.clock = &clock_}); }
  ManualClock clock_;
};

using MutexTest = ManualClockTest;
using CondVarTest = ManualClockTest;
using ChannelTest = ManualClockTest;
using WaitGroupTest = test::SchedulerTest;
using SemaphoreTest = ManualClockTest;

// yield_until() yields until done() holds. The scheduler fires due timers
// only between batches of ready coroutines, so a driver that advanced the
// ManualClock yields until the effect shows. Fails the test if it never does.
template <class Pred>
void yield_until(Pred done) {
  for (int i = 0; i < 100000 && !done(); ++i) yield();
  EXPECT_TRUE(done()) << "the awaited condition never came true";
}

// expire() checks that a timed wait, whose outcome lands in result, has not
// ended while the clock stood still, then moves the clock by d and yields
// until it has.
template <class Result>
void expire(ManualClock& clock, Duration d, const std::optional<Result>& result) {
  for (int i = 0; i < 300; ++i) yield();
  EXPECT_FALSE(result.has_value()) << "timed out before the clock moved";
  clock.advance(d);
  yield_until([&] { return result.has_value(); });
}

TEST_F(MutexTest, ExcludesAcrossYields) {
  Mutex mu;
  int inside = 0, most_inside = 0, entries = 0;
  for (int c = 0; c < 4; ++c) {
    sched().spawn([&] {
      for (int i = 0; i < 50; ++i) {
        std::lock_guard lock(mu);
        most_inside = std::max(most_inside, ++inside);
        yield();  // others run, and must find the mutex taken
        --inside;
        ++entries;
      }
    });
  }
  sched().run();
  EXPECT_EQ(most_inside, 1);
  EXPECT_EQ(entries, 200);
}

TEST_F(MutexTest, UnlockHandsOffInFifoOrderSoBargersCannotTakeIt) {
  Mutex mu;
  std::vector<int> order;
  bool barged = true;
  sched().spawn([&] {
    mu.lock();
    for (int i = 1; i <= 3; ++i) {
      go([&, i] {
        std::lock_guard lock(mu);
        order.push_back(i);
      });
    }
    yield();  // all three now wait, in spawn order
    mu.unlock();
    barged = mu.try_lock();  // the mutex already belongs to waiter 1
  });
  sched().run();
  EXPECT_FALSE(barged);
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
}

TEST_F(MutexTest, TryLockNeverWaits) {
  Mutex mu;
  ASSERT_TRUE(mu.try_lock());  // outside coroutines too
  EXPECT_FALSE(mu.try_lock());
  bool in_coroutine = true;
  sched().spawn([&] { in_coroutine = mu.try_lock(); });
  sched().run();
  EXPECT_FALSE(in_coroutine);
  mu.unlock();
  sched().spawn([&] {
    in_coroutine = mu.try_lock();
    mu.unlock();
  });
  sched().run();
  EXPECT_TRUE(in_coroutine);
}

TEST_F(MutexTest, TimedLockTimesOutOnTheSchedulerClock) {
  Mutex mu;
  std::optional<bool> short_wait, long_wait;
  sched().spawn([&] {
    std::unique_lock hold(mu);
    go([&] { short_wait = mu.try_lock_for(10ms); });
    go([&] {
      long_wait = mu.try_lock_for(1h);
      if (*long_wait) mu.unlock();
    });
    expire(clock_, 10ms, short_wait);
    EXPECT_FALSE(long_wait.has_value());
  });
  sched().run();
  EXPECT_EQ(short_wait, false);
  EXPECT_EQ(long_wait, true);
}

// Failed as: the waiter trusted park()'s kTimeout and returned false while
// unlock() had already made it the owner, so the mutex stayed locked forever.
TEST_F(MutexTest, HandOffRacingATimeoutIsNotLost) {
  Mutex mu;
  std::optional<bool> got;
  sched().spawn([&] {
    mu.lock();
    go([&] {  // same deadline, queued later: the timer wakes it after us
      got = mu.try_lock_for(10ms);
      if (*got) mu.unlock();
    });
    sleep_for(10ms);  // wakes, with the waiter ready but not yet run
    mu.unlock();      // hands off; wake() returns false
  });
  sched().spawn([&] { expire(clock_, 10ms, got); });
  sched().run();
  EXPECT_EQ(got, true);
  EXPECT_TRUE(mu.try_lock()) << "the mutex was left locked";
}

TEST_F(MutexTest, MisuseThrowsTheErrnoOfStdMutex) {
  Mutex mu;
  auto code_of = [](auto&& fn) {
    try {
      fn();
    } catch (const std::system_error& e) {
      return e.code();
    }
    return std::error_code();
  };
  EXPECT_EQ(code_of([&] { mu.unlock(); }), std::errc::operation_not_permitted);
  EXPECT_THROW(mu.lock(), std::logic_error);  // outside a coroutine
  sched().spawn([&] {
    mu.lock();
    EXPECT_EQ(code_of([&] { mu.lock(); }), std::errc::resource_deadlock_would_occur);
    EXPECT_EQ(code_of([&] { mu.try_lock_for(1ms); }), std::errc::resource_deadlock_would_occur);
    spawn([&] {
      EXPECT_EQ(code_of([&] { mu.unlock(); }), std::errc::operation_not_permitted);
    }).join();
    mu.unlock();
  });
  sched().run();
}

TEST_F(CondVarTest, NotifyOneWakesTheOldestWaiterAndNotifyAllTheRest) {
  Mutex mu;
  CondVar cv;
  std::vector<int> woken;
  for (int i = 0; i < 3; ++i) {
    sched().spawn([&, i] {
      std::unique_lock lock(mu);
      cv.wait(lock);
      EXPECT_TRUE(lock.owns_lock());
      woken.push_back(i);
    });
  }
  sched().spawn([&] {
    cv.notify_one();
    for (int i = 0; i < 5; ++i) yield();
    EXPECT_EQ(woken, std::vector<int>{0});
    cv.notify_all();
  });
  sched().run();
  EXPECT_EQ(woken, (std::vector<int>{0, 1, 2}));
}

TEST_F(CondVarTest, PredicateWaitSeesEveryItem) {
  Mutex mu;
  CondVar cv;
  std::vector<int> queue, got;
  sched().spawn([&] {
    for (int want = 0; want < 5; ++want) {
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return !queue.empty(); });
      got.push_back(queue.front());
      queue.erase(queue.begin());
    }
  });
  sched().spawn([&] {
    for (int i = 0; i < 5; ++i) {
      {
        std::lock_guard lock(mu);
        queue.push_back(i);
      }
      cv.notify_one();
      if (i % 2) yield();
    }
  });
  sched().run();
  EXPECT_EQ(got, (std::vector<int>{0, 1, 2, 3, 4}));
}

TEST_F(CondVarTest, WaitForTimesOutOnTheManualClock) {
  Mutex mu;
  CondVar cv;
  std::optional<std::cv_status> status;
  std::optional<bool> pred_result;
  sched().spawn([&] {
    std::unique_lock lock(mu);
    status = cv.wait_for(lock, 50ms);
    EXPECT_TRUE(lock.owns_lock());
    pred_result = cv.wait_for(lock, 50ms, [] { return false; });
    EXPECT_TRUE(lock.owns_lock());
  });
  sched().spawn([&] {
    expire(clock_, 50ms, status);
    expire(clock_, 50ms, pred_result);
  });
  sched().run();
  EXPECT_EQ(status, std::cv_status::timeout);
  EXPECT_EQ(pred_result, false);
}

TEST_F(ChannelTest, UnbufferedSendWaitsForTheReceiver) {
  Channel<int> ch;
  std::vector<std::string> log;
  sched().spawn([&] {
    log.push_back("send");
    ch.send(7);
    log.push_back("sent");
  });
  sched().spawn([&] {
    for (int i = 0; i < 3; ++i) yield();
    log.push_back("recv");
    log.push_back("got " + std::to_string(*ch.recv()));
  });
  sched().run();
  EXPECT_EQ(log, (std::vector<std::string>{"send", "recv", "got 7", "sent"}));
  EXPECT_EQ(ch.capacity(), 0u);
}

TEST_F(ChannelTest, BoundedSendWaitsWhileFull) {
  Channel<int> ch(2);
  int sent = 0;
  std::vector<int> got;
  sched().spawn([&] {
    for (int i = 0; i < 5; ++i, ++sent) ch.send(i);
  });
  sched().spawn([&] {
    for (int i = 0; i < 3; ++i) yield();
    EXPECT_EQ(sent, 2);
    EXPECT_EQ(ch.size(), 2u);
    while (got.size() < 5) got.push_back(*ch.recv());
  });
  sched().run();
  EXPECT_EQ(got, (std::vector<int>{0, 1, 2, 3, 4}));
}

TEST_F(ChannelTest, UnboundedNeverWaits) {
  auto ch = Channel<int>::unbounded();
  EXPECT_EQ(ch.capacity(), Channel<int>::kUnbounded);
  sched().spawn([&] {
    for (int i = 0; i < 1000; ++i) ch.send(i);
    EXPECT_EQ(ch.size(), 1000u);
    for (int i = 0; i < 1000; ++i) EXPECT_EQ(ch.recv(), i);
  });
  sched().run();
}

TEST_F(ChannelTest, SendToAWaitingReceiverSkipsTheBuffer) {
  Channel<std::unique_ptr<int>> ch(4);
  std::unique_ptr<int> got;
  sched().spawn([&] { got = *ch.recv(); });
  sched().spawn([&] {
    ch.send(std::make_unique<int>(5));
    EXPECT_EQ(ch.size(), 0u);  // straight into the receiver's slot
    EXPECT_EQ(got, nullptr);   // which has not even run yet
  });
  sched().run();
  ASSERT_NE(got, nullptr);
  EXPECT_EQ(*got, 5);
}

TEST_F(ChannelTest, BlockedSendersAndReceiversAreServedInFifoOrder) {
  Channel<int> ch;
  std::vector<int> got(3, -1);
  for (int i = 0; i < 3; ++i) sched().spawn([&, i] { got[i] = *ch.recv(); });
  sched().spawn([&] {
    for (int i = 0; i < 3; ++i) ch.send(10 + i);
  });
  sched().run();
  EXPECT_EQ(got, (std::vector<int>{10, 11, 12}));
  for (int i = 0; i < 3; ++i) sched().spawn([&, i] { ch.send(20 + i); });
  sched().spawn([&] {
    for (int i = 0; i < 3; ++i) got[i] = *ch.recv();
  });
  sched().run();
  EXPECT_EQ(got, (std::vector<int>{20, 21, 22}));
}

TEST_F(ChannelTest, CloseDrainsTheBufferThenReportsClosed) {
  Channel<int> ch(3);
  EXPECT_TRUE(ch.try_send(1));  // try_* work outside coroutines
  EXPECT_TRUE(ch.try_send(2));
  ch.close();
  EXPECT_TRUE(ch.closed());
  EXPECT_THROW(ch.close(), ChannelClosed);
  EXPECT_THROW(ch.try_send(3), ChannelClosed);
  sched().spawn([&] {
    EXPECT_EQ(ch.recv(), 1);
    EXPECT_EQ(ch.try_recv().value, 2);
    EXPECT_EQ(ch.recv(), std::nullopt);
    EXPECT_EQ(ch.recv_for(1h).status, RecvStatus::kClosed);
    EXPECT_THROW(ch.send(4), ChannelClosed);
  });
  sched().run();
  EXPECT_EQ(ch.try_recv().status, RecvStatus::kClosed);
}

TEST_F(ChannelTest, CloseWakesBlockedSendersWithChannelClosedAndReceiversWithNullopt) {
  Channel<int> full(1), empty(1);
  full.try_send(0);
  int senders_told = 0, receivers_told = 0;
  for (int i = 0; i < 2; ++i) {
    sched().spawn([&] {
      try {
        full.send(1);
      } catch (const ChannelClosed&) {
        ++senders_told;
      }
    });
    sched().spawn([&] { receivers_told += empty.recv() == std::nullopt; });
  }
  sched().spawn([&] {
    full.close();
    empty.close();
  });
  sched().run();
  EXPECT_EQ(senders_told, 2);
  EXPECT_EQ(receivers_told, 2);
  EXPECT_EQ(full.try_recv().value, 0);  // the buffered item survives the close
}

TEST_F(ChannelTest, TimedSendAndRecvTimeOutOnTheManualClock) {
  Channel<std::string> ch;
  std::optional<RecvStatus> recv_status;
  std::optional<bool> sent;
  std::string item = "kept";
  sched().spawn([&] { recv_status = ch.recv_for(10ms).status; });
  sched().spawn([&] {
    expire(clock_, 10ms, recv_status);
    go([&] { sent = ch.send_for(std::move(item), 10ms); });
    expire(clock_, 10ms, sent);
  });
  sched().run();
  EXPECT_EQ(recv_status, RecvStatus::kTimeout);
  EXPECT_EQ(sent, false);
  EXPECT_EQ(item, "kept") << "a send that timed out must leave its value alone";
}

TEST_F(ChannelTest, ManyProducersAndConsumersDeliverEachItemExactlyOnce) {
  constexpr int kProducers = 4, kConsumers = 3, kItems = 500;
  for (std::size_t capacity : {std::size_t{0}, std::size_t{1}, std::size_t{8}}) {
    Channel<int> ch(capacity);
    WaitGroup producing;
    std::vector<int> seen(kProducers * kItems, 0);
    producing.add(kProducers);
    for (int p = 0; p < kProducers; ++p) {
      sched().spawn([&, p] {
        for (int i = 0; i < kItems; ++i) {
          ch.send(p * kItems + i);
          if (i % 7 == p) yield();
        }
        producing.done();
      });
    }
    for (int c = 0; c < kConsumers; ++c) {
      sched().spawn([&] {
        std::vector<int> last(kProducers, -1);  // each producer's items arrive in order
        while (auto v = ch.recv()) {
          ++seen[*v];
          EXPECT_GT(*v, last[*v / kItems]) << "capacity " << capacity;
          last[*v / kItems] = *v;
        }
      });
    }
    sched().spawn([&] {
      producing.wait();
      ch.close();
    });
    sched().run();
    EXPECT_EQ(seen, std::vector<int>(kProducers * kItems, 1)) << "capacity " << capacity;
  }
}

TEST_F(WaitGroupTest, WaitReturnsOnceEveryWorkerIsDone) {
  WaitGroup wg;
  int finished = 0;
  std::vector<int> seen_by_waiters;
  wg.add(3);
  for (int i = 0; i < 3; ++i) {
    scheduler().spawn([&, i] {
      for (int y = 0; y <= i; ++y) yield();
      ++finished;
      wg.done();
    });
  }
  for (int w = 0; w < 2; ++w) {
    scheduler().spawn([&] {
      wg.wait();
      seen_by_waiters.push_back(finished);
      wg.wait();  // zero already: returns at once
    });
  }
  scheduler().run();
  EXPECT_EQ(seen_by_waiters, (std::vector<int>{3, 3}));
}

TEST_F(WaitGroupTest, NegativeCounterThrows) {
  WaitGroup wg;
  EXPECT_THROW(wg.done(), std::logic_error);
  wg.add(2);
  EXPECT_THROW(wg.add(-3), std::logic_error);
  EXPECT_EQ(wg.count(), 2);
}

TEST_F(SemaphoreTest, LimitsConcurrencyToItsCount) {
  Semaphore slots(2);
  int inside = 0, most_inside = 0, done = 0;
  for (int i = 0; i < 6; ++i) {
    sched().spawn([&] {
      slots.acquire();
      most_inside = std::max(most_inside, ++inside);
      for (int y = 0; y < 3; ++y) yield();
      --inside;
      ++done;
      slots.release();
    });
  }
  sched().run();
  EXPECT_EQ(most_inside, 2);
  EXPECT_EQ(done, 6);
  EXPECT_EQ(slots.available(), 2);
}

TEST_F(SemaphoreTest, ReleaseServesWaitersInFifoOrderWithoutBarging) {
  Semaphore sem(0);
  std::vector<int> order;
  for (int i = 0; i < 3; ++i) {
    sched().spawn([&, i] {
      sem.acquire();
      order.push_back(i);
    });
  }
  sched().spawn([&] {
    sem.release();
    EXPECT_FALSE(sem.try_acquire()) << "took the permit handed to waiter 0";
    sem.release(3);
    EXPECT_TRUE(sem.try_acquire());  // one left over
  });
  sched().run();
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(sem.available(), 0);
  EXPECT_THROW(sem.release(-1), std::invalid_argument);
  EXPECT_THROW(Semaphore(-1), std::invalid_argument);
}

TEST_F(SemaphoreTest, TryAcquireForTimesOutOnTheManualClock) {
  Semaphore sem(0);
  std::optional<bool> got;
  sched().spawn([&] { got = sem.try_acquire_for(5ms); });
  sched().spawn([&] {
    expire(clock_, 5ms, got);
    sem.release();
  });
  sched().run();
  EXPECT_EQ(got, false);
  EXPECT_EQ(sem.available(), 1) << "the timed-out waiter must not hold a permit";
}

TEST(SyncTest, BlockingCallsOutsideACoroutineThrowLogicError) {
  Mutex mu;
  CondVar cv;
  Channel<int> ch(1);
  WaitGroup wg;
  Semaphore sem(1);
  EXPECT_THROW(mu.lock(), std::logic_error);
  std::unique_lock lock(mu, std::defer_lock);
  EXPECT_THROW(cv.wait(lock), std::logic_error);
  EXPECT_THROW(ch.send(1), std::logic_error);
  EXPECT_THROW(ch.recv(), std::logic_error);
  EXPECT_THROW(wg.wait(), std::logic_error);
  EXPECT_THROW(sem.acquire(), std::logic_error);
  EXPECT_EQ(ch.size(), 0u) << "a refused send must not have buffered its item";
}

// The primitives outlive the scheduler; destroying it with coroutines parked
// on each must unwind them (their destructors run) and leave no node behind
// on any wait list: the calls at the end would touch freed stacks if it did.
TEST(SyncTest, DestroyingTheSchedulerUnwindsEveryBlockedWaiter) {
  ManualClock clock;
  Mutex mu, cv_mu;
  CondVar cv;
  Channel<int> never(0), full(1);
  WaitGroup wg;
  Semaphore sem(0);
  int unwound = 0;
  struct Tracker {
    int* count;
    ~Tracker() { ++*count; }
  };
  std::optional<Scheduler> sched(std::in_place, SchedulerOptions{.clock = &clock});
  auto blocked = [&](auto wait) {
    sched->spawn([&unwound, wait] {
      Tracker t{&unwound};
      wait();
    });
  };
  full.try_send(0);
  wg.add(1);
  blocked([&] {
    std::lock_guard hold(mu);  // unlocked, and handed on, while unwinding
    never.recv();
  });
  blocked([&] { mu.lock(); });
  blocked([&] { mu.try_lock_for(1h); });
  blocked([&] {
    std::unique_lock lock(cv_mu);
    cv.wait(lock);
  });
  blocked([&] { never.recv_for(1h); });
  blocked([&] { full.send(1); });
  blocked([&] { wg.wait(); });
  blocked([&] { sem.acquire(); });
  blocked([&] { sem.acquire(); });
  EXPECT_THROW(sched->run(), DeadlockError);
  sched.reset();
  EXPECT_EQ(unwound, 9);
  EXPECT_TRUE(mu.try_lock()) << "the mutex was left owned by an unwound coroutine";
  EXPECT_TRUE(cv_mu.try_lock());
  cv.notify_all();
  EXPECT_FALSE(never.try_send(1)) << "a receiver node was left on the channel";
  EXPECT_EQ(full.try_recv().value, 0);
  EXPECT_EQ(full.try_recv().status, RecvStatus::kTimeout) << "a sender node was left";
  wg.done();
  sem.release(2);
  EXPECT_EQ(sem.available(), 2);
}

}  // namespace
}  // namespace coil
