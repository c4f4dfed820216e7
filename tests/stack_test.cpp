// Stacks: guard regions in each mode, overflow reports, pool reuse without
// syscalls or page faults, mmap failure, and a million live coroutines.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/resource.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>

#include "coil/scheduler.hpp"
#include "sanitizer.hpp"
#include "stack_pool.hpp"
#include "test_support.hpp"

namespace coil {
namespace {

using detail::GuardMode;
using detail::Stack;
using detail::StackPool;

// mapping_of() returns the /proc/self/maps line containing addr.
std::string mapping_of(const void* addr) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  auto a = reinterpret_cast<std::uintptr_t>(addr);
  while (std::getline(maps, line)) {
    std::uintptr_t lo = 0, hi = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx", &lo, &hi) == 2 && a >= lo && a < hi) return line;
  }
  return "";
}

std::size_t mapping_count() {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  std::size_t n = 0;
  while (std::getline(maps, line)) ++n;
  return n;
}

long minor_faults() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_minflt;
}

// touch_down() writes size bytes just below the caller's frame, the way a
// deep recursion or a large alloca would.
[[gnu::noinline]] void touch_below(std::size_t size) {
  char* region = static_cast<char*>(__builtin_alloca(size));
  std::memset(region, 0x5a, size);
  asm volatile("" : : "r"(region) : "memory");
}

[[gnu::noinline]] int recurse_forever(int depth) {
  volatile char frame[512];
  for (auto& c : frame) c = static_cast<char>(depth);
  if (depth == -1) return 0;  // never: keeps the compiler from proving infinity
  return recurse_forever(depth + 1) + frame[depth % 512];
}

TEST(StackPool, StacksAreRoundedAlignedAndGuarded) {
  StackPool pool;
  Stack s = pool.acquire(100 * 1024 + 1);
  EXPECT_GE(s.size(), 100u * 1024 + 1);
  EXPECT_EQ(s.size() % 4096, 0u);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(s.hi) % 4096, 0u);
  EXPECT_NE(s.guard, GuardMode::kCanary) << "this kernel should support a real guard";
  EXPECT_TRUE(s.guard_contains(reinterpret_cast<std::uintptr_t>(s.lo) - 1));
  EXPECT_FALSE(s.guard_contains(reinterpret_cast<std::uintptr_t>(s.lo)));
  pool.release(s);
}

TEST(StackPool, MprotectGuardIsAProtNoneMapping) {
  StackPool pool(GuardMode::kMprotect);
  Stack s = pool.acquire(64 * 1024);
  ASSERT_EQ(s.guard, GuardMode::kMprotect);
  std::string guard = mapping_of(s.lo - 1);
  EXPECT_NE(guard.find(" ---p "), std::string::npos) << guard;
  EXPECT_NE(mapping_of(s.lo).find(" rw-p "), std::string::npos);
  pool.release(s);
}

TEST(StackPool, MadviseGuardCostsNoMapping) {
  StackPool pool(GuardMode::kMadvise);
  std::size_t before = mapping_count();
  std::vector<Stack> stacks;
  for (int i = 0; i < 640; ++i) stacks.push_back(pool.acquire(64 * 1024));
  ASSERT_EQ(stacks[0].guard, GuardMode::kMadvise);
  EXPECT_LE(mapping_count(), before + 40) << "640 guarded stacks must not cost 640 mappings";
  for (auto& s : stacks) pool.release(s);
}

// Regression: destroyed pools never gave their mprotect guards back to the
// process-wide budget, so after ~28k stacks ever carved every new stack
// lost its guard although the mappings were gone.
TEST(StackPool, MprotectBudgetIsReturnedWhenAPoolGoesAway) {
  for (int round = 0; round < 40; ++round) {
    StackPool pool(GuardMode::kMprotect);
    std::vector<Stack> stacks;
    for (int i = 0; i < 1000; ++i) stacks.push_back(pool.acquire(kMinStackSize));
    for (auto& s : stacks) {
      ASSERT_EQ(s.guard, GuardMode::kMprotect) << "round " << round;
      pool.release(s);
    }
  }
}

TEST(StackPool, CanaryModeMarksTheLowestWord) {
  StackPool pool(GuardMode::kCanary);
  Stack s = pool.acquire(64 * 1024);
  ASSERT_EQ(s.guard, GuardMode::kCanary);
  EXPECT_EQ(*reinterpret_cast<std::uint64_t*>(s.lo), detail::kStackCanary);
  pool.release(s);
}

TEST(StackPool, ReleasedStacksComeBackLifoAndTrimKeepsThemUsable) {
  StackPool pool;
  std::vector<Stack> stacks;
  for (std::size_t i = 0; i < StackPool::kMaxHotStacks + 200; ++i)
    stacks.push_back(pool.acquire(kMinStackSize));
  for (auto& s : stacks) std::memset(s.hi - 4096, 1, 4096);
  for (auto& s : stacks) pool.release(s);
  EXPECT_TRUE(pool.trim_wanted());
  pool.trim();
  EXPECT_FALSE(pool.trim_wanted());
  EXPECT_GE(pool.stats().trims, 1u);
  EXPECT_LE(pool.stats().trims, 10u) << "neighbouring stacks must be trimmed with one call";
  // The most recently released stack comes back first.
  Stack again = pool.acquire(kMinStackSize);
  EXPECT_EQ(again.lo, stacks.back().lo);
  pool.release(again);
  // Trimmed stacks read back as zero and are writable.
  std::vector<Stack> all;
  for (std::size_t i = 0; i < stacks.size(); ++i) all.push_back(pool.acquire(kMinStackSize));
  for (auto& s : all) {
    if (s.lo == stacks.front().lo) {
      EXPECT_EQ(s.hi[-1], 0) << "trimmed page was not returned";
    }
    s.hi[-1] = 7;
  }
  for (auto& s : all) pool.release(s);
}

using StackReuse = test::SchedulerTest;

TEST_F(StackReuse, SpawnAfterExitMakesNoMmapAndNoPageFault) {
  Scheduler& s = scheduler();
  constexpr int kSpawns = 10000;
  SchedulerStats warm{};
  long faults = 0;
  s.spawn([&] {
     for (int i = 0; i < 100; ++i) spawn([] { yield(); }).join();
     warm = Scheduler::current()->stats();
     long before = minor_faults();
     for (int i = 0; i < kSpawns; ++i) spawn([] { yield(); }).join();
     faults = minor_faults() - before;
   }).detach();
  s.run();
  SchedulerStats after = s.stats();
  EXPECT_EQ(after.stack_maps, warm.stack_maps) << "spawn after warm-up called mmap";
  EXPECT_EQ(after.stack_pool_misses, warm.stack_pool_misses);
  EXPECT_EQ(after.stack_pool_hits - warm.stack_pool_hits, static_cast<std::uint64_t>(kSpawns));
#if !COIL_ASAN && !COIL_TSAN
  EXPECT_LT(faults, 10) << kSpawns << " warm spawns took page faults";
#endif
}

TEST(StackErrors, ImpossibleStackSizeThrowsSpawnErrorAndLosesNothing) {
  Scheduler s;
  int ran = 0;
  s.spawn([&] {
     try {
       spawn([] {}, {.stack_size = std::size_t{1} << 62});
       ADD_FAILURE() << "an impossible stack size was accepted";
     } catch (const SpawnError& e) {
       EXPECT_EQ(e.code(), std::errc::not_enough_memory);
     }
     spawn([&] { ++ran; }).join();
   }).detach();
  s.run();
  EXPECT_EQ(ran, 1);
}

TEST(StackErrors, BadGuardEnvVarIsAClearError) {
  setenv("COIL_STACK_GUARD", "sometimes", 1);
  try {
    Scheduler s;
    ADD_FAILURE() << "a malformed COIL_STACK_GUARD was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("COIL_STACK_GUARD='sometimes'"), std::string::npos);
  }
  unsetenv("COIL_STACK_GUARD");
}

#if !COIL_ASAN && !COIL_TSAN
// mmap really fails (address-space limit): spawn throws SpawnError, the
// coroutines already spawned still run, the process goes on.
// mmap_failure_child() limits the address space so stack mmaps fail, then
// exits 0 if spawn reported it properly and the spawned coroutines all ran.
[[noreturn]] void mmap_failure_child() {
  Scheduler s;
  int spawned = 0;
  int ran = 0;
  bool threw = false;
  s.spawn([&] {
     rlimit rl{};
     getrlimit(RLIMIT_AS, &rl);
     std::ifstream statm("/proc/self/statm");
     unsigned long pages = 0;
     statm >> pages;
     rl.rlim_cur = pages * 4096 + 64 * 1024 * 1024;
     setrlimit(RLIMIT_AS, &rl);
     try {
       for (int i = 0; i < 100000; ++i, ++spawned) go([&] { ++ran; });
     } catch (const SpawnError& e) {
       threw = e.code() == std::errc::not_enough_memory &&
               std::string(e.what()).find("cannot map") != std::string::npos;
     }
   }).detach();
  s.run();
  std::exit(threw && spawned > 0 && ran == spawned ? 0 : 1);
}

TEST(StackErrorsDeathTest, MmapFailureUnderAddressSpaceLimit) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(mmap_failure_child(), ::testing::ExitedWithCode(0), "");
}
#endif

TEST(StackOverflowDeathTest, RecursionHitsTheGuardAndIsReported) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        Scheduler s;
        s.spawn([] { recurse_forever(0); }, {.name = "deep", .stack_size = 64 * 1024}).detach();
        s.run();
      },
      "coil: stack overflow in coroutine [0-9]+ \"deep\" \\(stack 65536 bytes\\)");
}

[[noreturn]] void overflow_on_another_thread_child() {
  Scheduler s;  // constructed here, run on another thread
  s.spawn([] { recurse_forever(0); }, {.name = "far", .stack_size = 64 * 1024}).detach();
  std::thread runner([&] { s.run(); });
  runner.join();
  std::exit(0);
}

// Regression: only the constructing thread had an alternate signal stack,
// so an overflow on a scheduler run elsewhere died without the message.
TEST(StackOverflowDeathTest, ReportedWhenRunOnAnotherThread) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(overflow_on_another_thread_child(),
               "coil: stack overflow in coroutine [0-9]+ \"far\" \\(stack 65536 bytes\\)");
}

TEST(StackOverflowDeathTest, MprotectGuardIsReportedToo) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  setenv("COIL_STACK_GUARD", "mprotect", 1);
  EXPECT_DEATH(
      {
        Scheduler s;
        s.spawn([] { touch_below(72 * 1024); }, {.name = "big-frame", .stack_size = 64 * 1024})
            .detach();
        s.run();
      },
      "coil: stack overflow in coroutine [0-9]+ \"big-frame\" \\(stack 65536 bytes\\)");
  unsetenv("COIL_STACK_GUARD");
}

TEST(StackOverflowDeathTest, CanaryCatchesOverflowOfAnUnguardedStackAtTheNextSwitch) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  setenv("COIL_STACK_GUARD", "none", 1);
  EXPECT_DEATH(
      {
        Scheduler s;
        s.spawn(
             [] {
               touch_below(72 * 1024);  // 8 KiB past the end, inside the spare guard area
               yield();
             },
             {.name = "canary", .stack_size = 64 * 1024})
            .detach();
        s.run();
      },
      "coil: stack overflow in coroutine [0-9]+ \"canary\" \\(stack 65536 bytes\\)");
  unsetenv("COIL_STACK_GUARD");
}

[[noreturn]] void wild_write_child() {
  Scheduler s;
  s.spawn([] {
     void* forbidden = mmap(nullptr, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
     *static_cast<volatile int*>(forbidden) = 1;
   }).detach();
  s.run();
  std::exit(0);
}

// Faults outside guard regions go to the handler installed before coil's
// (ASan's, in an ASan build) or get the default action.
TEST(StackOverflowDeathTest, OtherSegfaultsKeepTheirPreviousBehaviour) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
#if COIL_ASAN
  EXPECT_EXIT(wild_write_child(), ::testing::ExitedWithCode(1),
              "AddressSanitizer: SEGV on unknown address");
#elif COIL_TSAN
  EXPECT_EXIT(wild_write_child(), ::testing::ExitedWithCode(66), "ThreadSanitizer: SEGV");
#else
  EXPECT_EXIT(wild_write_child(), ::testing::KilledBySignal(SIGSEGV), "");
#endif
}

[[noreturn]] void many_small_coroutines_child(int count) {
  Scheduler s;
  int done = 0;
  for (int i = 0; i < count; ++i) {
    s.spawn(
         [&] {
           yield();
           ++done;
         },
         {.stack_size = kMinStackSize})
        .detach();
  }
  s.run();
  std::exit(done == count ? 0 : 1);
}

// Past the mprotect budget (half of vm.max_map_count) stacks fall back to a
// canary with one warning instead of failing: the coroutine count is not
// capped by vm.max_map_count.
TEST(StackGuardBudgetDeathTest, MprotectModeFallsBackToCanariesPastTheMapBudget) {
  if (test::kTsan) GTEST_SKIP() << "needs more live coroutines than TSan can track";
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  setenv("COIL_STACK_GUARD", "mprotect", 1);
  EXPECT_EXIT(many_small_coroutines_child(40000), ::testing::ExitedWithCode(0),
              "coil: warning: vm.max_map_count leaves no room");
  unsetenv("COIL_STACK_GUARD");
}

// One million coroutines alive at once in one process, each with a guarded
// stack, then all finished. Under sanitizers (shadow memory per stack page,
// several times slower faults) 200k make the same point within CI's time.
TEST(Million, MillionLiveCoroutines) {
  if (test::kTsan) GTEST_SKIP() << "TSan tracks at most 8128 live coroutines";
#if COIL_ASAN
  constexpr int kCoroutines = 200000;
#else
  constexpr int kCoroutines = 1000000;
#endif
  Scheduler s;
  int started = 0, finished = 0;
  std::size_t maps_at_peak = 0;
  s.spawn([&] {
     for (int i = 0; i < kCoroutines; ++i) {
       go(
           [&] {
             ++started;
             yield();
             ++finished;
           },
           {.stack_size = kMinStackSize});
     }
     yield();  // every coroutine has started and is parked in yield()
     maps_at_peak = mapping_count();
   }).detach();
  s.run();
  EXPECT_EQ(started, kCoroutines);
  EXPECT_EQ(finished, kCoroutines);
  EXPECT_EQ(s.stats().peak_coroutines, static_cast<std::uint64_t>(kCoroutines) + 1);
  EXPECT_LT(maps_at_peak, 65530u / 2) << "stacks must not consume vm.max_map_count";
  EXPECT_EQ(s.stats().live_coroutines, 0u);
}

}  // namespace
}  // namespace coil
