// The scheduler as a whole: yield between coroutines, spawn-run-exit on a warm stack pool,
// and the memory an idle (parked) coroutine costs.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>

#include "coil/scheduler.hpp"

namespace {

using namespace std::chrono_literals;

// BM_yield_scheduler: two coroutines of one Scheduler yield to each other. Both drive the
// benchmark loop, so one iteration is exactly one yield (coroutine -> scheduler -> the other
// coroutine). The first to see the loop end tells the other to stop.
void BM_yield_scheduler(benchmark::State& state) {
  coil::Scheduler sched;
  bool done = false;
  auto player = [&] {
    while (!done) {
      if (!state.KeepRunning()) {
        done = true;
        break;
      }
      coil::yield();
    }
  };
  sched.spawn(player).detach();
  sched.spawn(player).detach();
  std::uint64_t switches = sched.stats().switches;
  sched.run();
  // Switches into coroutines per iteration: 1 for a yield, plus the two first starts.
  state.counters["switches_per_yield"] =
      benchmark::Counter(static_cast<double>(sched.stats().switches - switches - 2) /
                         static_cast<double>(state.iterations()));
}
BENCHMARK(BM_yield_scheduler);

// BM_spawn_run_exit: a driver coroutine spawns a trivial coroutine and joins it; one iteration
// is spawn + first run + exit + join + stack release. The pool is warmed first, so the timed
// loop must map no stack (stack_maps counts slab mmaps during the loop and must be 0) and
// never wait in epoll (polls must be 0).
void BM_spawn_run_exit(benchmark::State& state) {
  coil::Scheduler sched;
  coil::SchedulerStats before{};
  coil::SchedulerStats after{};
  sched
      .spawn([&] {
        for (int i = 0; i < 64; ++i) coil::spawn([] {}).join();  // warm the pool
        before = sched.stats();
        for (auto _ : state) coil::spawn([] {}).join();
        after = sched.stats();
      })
      .detach();
  sched.run();
  state.counters["stack_maps"] = static_cast<double>(after.stack_maps - before.stack_maps);
  state.counters["pool_misses"] =
      static_cast<double>(after.stack_pool_misses - before.stack_pool_misses);
  state.counters["polls"] = static_cast<double>(after.polls - before.polls);
}
BENCHMARK(BM_spawn_run_exit);

// resident_bytes() reads the resident set size from /proc/self/statm.
double resident_bytes() {
  long pages_total = 0;
  long pages_resident = 0;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld", &pages_total, &pages_resident) != 2) pages_resident = 0;
    std::fclose(f);
  }
  return static_cast<double>(pages_resident) * static_cast<double>(::sysconf(_SC_PAGESIZE));
}

// page_table_bytes() reads VmPTE from /proc/self/status: page tables are not part of the RSS
// but are what a parked coroutine's sparse stack costs beyond its pages.
double page_table_bytes() {
  double kib = 0;
  if (FILE* f = std::fopen("/proc/self/status", "r")) {
    char line[256];
    while (std::fgets(line, sizeof line, f)) {
      if (std::strncmp(line, "VmPTE:", 6) == 0) {
        kib = std::strtod(line + 6, nullptr);
        break;
      }
    }
    std::fclose(f);
  }
  return kib * 1024;
}

// BM_idle_coroutines/N: N coroutines each park in sleep_for(1h). The scheduler reads a
// ManualClock, so once all N sleep run() throws DeadlockError (documented: sleepers on a
// manual clock can never be woken); the RSS is measured then, and destroying the Scheduler
// unwinds the sleepers. rss_per_coroutine_bytes = RSS delta / N; pte_per_coroutine_bytes is the
// page-table growth, reported apart because statm's RSS does not include it.
void BM_idle_coroutines(benchmark::State& state) {
  const auto count = static_cast<std::int64_t>(state.range(0));
  for (auto _ : state) {
    coil::ManualClock clock;
    coil::Scheduler sched(coil::SchedulerOptions{.clock = &clock});
    double rss0 = resident_bytes();
    double pte0 = page_table_bytes();
    for (std::int64_t i = 0; i < count; ++i) {
      sched.spawn([] { coil::sleep_for(1h); }).detach();
    }
    bool deadlocked = false;
    try {
      sched.run();
    } catch (const coil::DeadlockError&) {
      deadlocked = true;
    }
    double rss1 = resident_bytes();
    double pte1 = page_table_bytes();
    coil::SchedulerStats stats = sched.stats();
    if (!deadlocked || stats.live_coroutines != static_cast<std::uint64_t>(count)) {
      state.SkipWithError("the coroutines did not all park");
      break;
    }
    state.counters["coroutines"] = static_cast<double>(count);
    state.counters["rss_per_coroutine_bytes"] = (rss1 - rss0) / static_cast<double>(count);
    state.counters["pte_per_coroutine_bytes"] = (pte1 - pte0) / static_cast<double>(count);
    state.counters["stack_maps"] = static_cast<double>(stats.stack_maps);
  }
}
BENCHMARK(BM_idle_coroutines)->Arg(1000000)->Iterations(1)->Unit(benchmark::kMillisecond);

}  // namespace
