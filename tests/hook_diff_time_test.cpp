// Differential tests of the sleep hooks with loose bounds: sleep, usleep,
// nanosleep (EINVAL, rem left alone), clock_nanosleep (relative and
// TIMER_ABSTIME on several clocks; it returns the error number and leaves
// errno alone), std::this_thread::sleep_for; and, in coroutines only, that
// sleepers share the thread. Each differential scenario runs on a plain
// thread and as a coroutine (hook_diff.hpp); in the coroutine every sleep
// of 50 ms or more must let the ticker run.
#include <time.h>

#include <string>
#include <thread>

#include "hook_diff.hpp"

namespace coil::test::hook {
namespace {

// plus_ms() is t + ms.
timespec plus_ms(timespec t, long ms) {
  t.tv_nsec += ms * 1000000;
  t.tv_sec += t.tv_nsec / 1000000000;
  t.tv_nsec %= 1000000000;
  return t;
}

bool not_before(const timespec& a, const timespec& b) {
  return a.tv_sec > b.tv_sec || (a.tv_sec == b.tv_sec && a.tv_nsec >= b.tv_nsec);
}

TEST(HookDiffTime, SleepUsleepNanosleep) {
  expect_same([](Ctx& c) {
    c.timed("sleep 1", 990ms, 3s, [&] { return static_cast<int>(sleep(1)); });
    c.timed("sleep 0", kAtOnceLo, kAtOnceHi, [&] { return static_cast<int>(sleep(0)); });
    c.timed("usleep 100000", 95ms, 2s, [&] { return usleep(100000); });
    c.timed("usleep 0", kAtOnceLo, kAtOnceHi, [&] { return usleep(0); });
    timespec req{0, 100000000}, rem{77, 77};
    c.timed("nanosleep 100 ms", 95ms, 2s, [&] { return nanosleep(&req, &rem); });
    c.check("rem is left alone when not interrupted", rem.tv_sec == 77 && rem.tv_nsec == 77);
    c.timed("nanosleep 100 ms, no rem", 95ms, 2s, [&] { return nanosleep(&req, nullptr); });
    timespec zero{0, 0};
    c.timed("nanosleep 0", kAtOnceLo, kAtOnceHi, [&] { return nanosleep(&zero, &rem); });
    for (timespec bad : {timespec{0, 1000000000}, timespec{0, -1}, timespec{-1, 0}}) {
      std::string label =
          "nanosleep {" + std::to_string(bad.tv_sec) + ", " + std::to_string(bad.tv_nsec) + "}";
      c.timed(label, kAtOnceLo, kAtOnceHi, [&] { return nanosleep(&bad, &rem); });
    }
    c.timed("std::this_thread::sleep_for 100 ms", 95ms, 2s, [&] {
      std::this_thread::sleep_for(100ms);
      return 0;
    });
  });
}

TEST(HookDiffTime, ClockNanosleepRelativeAndAbsolute) {
  expect_same([](Ctx& c) {
    // clock_nanosleep returns the error number; errno must stay as it was.
    auto call = [&](std::string_view label, Duration lo, Duration hi, clockid_t clock, int flags,
                    const timespec& t) {
      errno = 1234;
      Stopwatch sw;
      long t0 = c.ticks();
      timespec rem{55, 55};
      int r = clock_nanosleep(clock, flags, &t, &rem);
      int e = errno;
      c.err(label, r);
      c.within(std::string(label) + " took", sw.elapsed(), lo, hi);
      if (lo >= 50ms) c.expect_yielded(t0, label);
      c.check(std::string(label) + ": errno untouched", e == 1234);
      c.check(std::string(label) + ": rem untouched", rem.tv_sec == 55 && rem.tv_nsec == 55);
      errno = 0;
    };
    timespec rel{0, 100000000};
    call("MONOTONIC relative 100 ms", 95ms, 2s, CLOCK_MONOTONIC, 0, rel);
    call("REALTIME relative 100 ms", 95ms, 2s, CLOCK_REALTIME, 0, rel);
    call("BOOTTIME relative 100 ms", 95ms, 2s, CLOCK_BOOTTIME, 0, rel);
    call("MONOTONIC relative 0", kAtOnceLo, kAtOnceHi, CLOCK_MONOTONIC, 0, timespec{0, 0});
    for (clockid_t clock : {CLOCK_MONOTONIC, CLOCK_REALTIME}) {
      const char* name = clock == CLOCK_MONOTONIC ? "MONOTONIC" : "REALTIME";
      timespec now{};
      clock_gettime(clock, &now);
      timespec at = plus_ms(now, 150);
      call(std::string(name) + " TIMER_ABSTIME now+150 ms", 140ms, 2s, clock, TIMER_ABSTIME, at);
      timespec after{};
      clock_gettime(clock, &after);
      c.check(std::string(name) + ": woke no earlier than the deadline", not_before(after, at));
      call(std::string(name) + " TIMER_ABSTIME in the past", kAtOnceLo, kAtOnceHi, clock,
           TIMER_ABSTIME, now);
    }
    call("bad tv_nsec", kAtOnceLo, kAtOnceHi, CLOCK_MONOTONIC, 0, timespec{0, 1000000000});
    call("negative tv_sec", kAtOnceLo, kAtOnceHi, CLOCK_MONOTONIC, 0, timespec{-1, 0});
    call("CLOCK_THREAD_CPUTIME_ID", kAtOnceLo, kAtOnceHi, CLOCK_THREAD_CPUTIME_ID, 0, rel);
    call("an unknown clock", kAtOnceLo, kAtOnceHi, static_cast<clockid_t>(12345), 0, rel);
  });
}

// In coroutines: sleepers of every kind run side by side on one thread, so
// ten 200 ms sleeps take about 200 ms, not 2 s; and a coroutine that sleeps
// does not stop another from running.
TEST(HookSleep, SleepersShareTheThread) {
  run_hooked([](Ctx& c) {
    ASSERT_TRUE(c.hooked());
    std::vector<Duration> slept(10);
    Stopwatch all;
    for (int i = 0; i < 10; ++i) {
      c.peer([&slept, i] {
        Stopwatch sw;
        timespec t200{0, 200000000};
        switch (i % 5) {
          case 0:
            usleep(200000);
            break;
          case 1:
            nanosleep(&t200, nullptr);
            break;
          case 2:
            clock_nanosleep(CLOCK_MONOTONIC, 0, &t200, nullptr);
            break;
          case 3:
            std::this_thread::sleep_for(200ms);
            break;
          default: {
            timespec at{};
            clock_gettime(CLOCK_REALTIME, &at);
            at = plus_ms(at, 200);
            clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &at, nullptr);
          }
        }
        slept[i] = sw.elapsed();
      });
    }
    long before = c.ticks();
    c.join_peers();
    Duration total = all.elapsed();
    for (int i = 0; i < 10; ++i) {
      EXPECT_GE(slept[i], 190ms) << "sleeper " << i << " woke early";
    }
    EXPECT_LT(total, 1s) << "ten 200 ms sleeps took "
                         << std::chrono::duration_cast<Ms>(total).count()
                         << " ms: they ran one after another, blocking the thread";
    c.expect_yielded(before, "the sleepers", 50);
  });
}

}  // namespace
}  // namespace coil::test::hook
