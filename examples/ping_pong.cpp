// ping_pong: 100k coroutines play ping-pong over channels in pairs, then nap; prints the costs.
//
// Each pair shares one unbuffered coil::Channel, the table: ping sends the ball and waits for
// it to come back, pong receives it and sends it back, --rounds times. Then every coroutine
// sleeps --naps times for a random 1-10 ms. All pairs play at once, so the scheduler goes round
// all coroutines and every switch lands on a different stack: the time per switch includes
// those cache and TLB misses, unlike a two-coroutine micro-benchmark.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "coil/channel.hpp"
#include "coil/scheduler.hpp"

namespace {

using Clock = std::chrono::steady_clock;

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

double ns_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::nano>(b - a).count();
}

// status_kib() returns a "Name:  123 kB" field of /proc/self/status in KiB, or 0.
long status_kib(const char* name) {
  long kib = 0;
  if (FILE* f = std::fopen("/proc/self/status", "r")) {
    char line[256];
    std::size_t len = std::strlen(name);
    while (std::fgets(line, sizeof line, f)) {
      if (std::strncmp(line, name, len) == 0 && line[len] == ':') {
        kib = std::strtol(line + len + 1, nullptr, 10);
        break;
      }
    }
    std::fclose(f);
  }
  return kib;
}

// even_count() is a CLI11 check: coroutines run in pairs.
std::string even_count(const std::string& text) {
  char* end = nullptr;
  long n = std::strtol(text.c_str(), &end, 10);
  return (*end == '\0' && n % 2 == 0) ? std::string() : "must be even (coroutines run in pairs)";
}

// Pair is the state two partners share.
struct Pair {
  coil::Channel<int> table;  // unbuffered: each send waits for the partner's recv
  std::int64_t catches = 0;  // balls received with the right number: 2 * rounds at the end
};

// Demo holds the figures the coroutines record.
struct Demo {
  std::size_t pair_count = 0;
  std::unique_ptr<Pair[]> pairs;  // Channels do not move: no vector
  int rounds = 0;
  int naps = 0;
  std::minstd_rand rng{20240601};
  std::int64_t playing = 0;  // coroutines still in the ping-pong phase
  Clock::time_point ping_pong_end;
  std::uint64_t ping_pong_end_switches = 0;
};

// ping() serves the ball and waits for it to come back, rounds times.
void ping(Pair& pair, int rounds) {
  for (int r = 0; r < rounds; ++r) {
    pair.table.send(r);
    pair.catches += pair.table.recv() == r;
  }
}

// pong() returns every ball it receives.
void pong(Pair& pair, int rounds) {
  for (int r = 0; r < rounds; ++r) {
    std::optional<int> ball = pair.table.recv();
    pair.catches += ball == r;
    pair.table.send(ball.value_or(-1));
  }
}

void play(Demo& demo, Pair& pair, bool serves) {
  if (serves) {
    ping(pair, demo.rounds);
  } else {
    pong(pair, demo.rounds);
  }
  if (--demo.playing == 0) {
    demo.ping_pong_end = Clock::now();
    demo.ping_pong_end_switches = coil::Scheduler::current()->stats().switches;
  }
  std::uniform_int_distribution<int> nap_ms(1, 10);
  for (int i = 0; i < demo.naps; ++i) coil::sleep_for(std::chrono::milliseconds(nap_ms(demo.rng)));
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "coil-demo: coroutines ping-pong in pairs, then nap; prints spawn, switch and "
      "memory figures"};
  long coroutines = 100000;
  int rounds = 50;
  int naps = 3;
  app.add_option("--coroutines", coroutines, "Coroutines to spawn, in pairs")
      ->check(CLI::Range(2L, 10000000L))
      ->check(even_count);
  app.add_option("--rounds", rounds, "Balls each pair plays back and forth")
      ->check(CLI::Range(1, 1000000));
  app.add_option("--naps", naps, "Random 1-10 ms sleeps per coroutine after the ping-pong")
      ->check(CLI::Range(0, 1000));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);  // prints the help or the error
    return code == 0 ? 0 : 2;
  }

  Demo demo;
  demo.pair_count = static_cast<std::size_t>(coroutines / 2);
  demo.pairs = std::make_unique<Pair[]>(demo.pair_count);
  demo.rounds = rounds;
  demo.naps = naps;
  demo.playing = coroutines;

  coil::Scheduler sched;
  Clock::time_point start;
  Clock::time_point spawned;
  Clock::time_point end;
  coil::SchedulerStats at_spawned{};
  long rss_before_kib = status_kib("VmRSS");
  sched
      .spawn(
          [&] {
            std::vector<coil::JoinHandle<void>> players;
            players.reserve(static_cast<std::size_t>(coroutines));
            start = Clock::now();
            for (std::size_t i = 0; i < demo.pair_count; ++i) {
              Pair& pair = demo.pairs[i];
              players.push_back(coil::spawn([&demo, &pair] { play(demo, pair, true); }));
              players.push_back(coil::spawn([&demo, &pair] { play(demo, pair, false); }));
            }
            spawned = Clock::now();
            at_spawned = sched.stats();
            for (auto& player : players) player.join();
            end = Clock::now();
          },
          coil::SpawnOptions{.name = "main"})
      .detach();
  sched.run();
  coil::SchedulerStats stats = sched.stats();

  std::int64_t bad_pairs = 0;
  for (std::size_t i = 0; i < demo.pair_count; ++i)
    bad_pairs += demo.pairs[i].catches != 2 * std::int64_t{rounds};

  auto n = static_cast<double>(coroutines);
  std::uint64_t switches = demo.ping_pong_end_switches - at_spawned.switches;
  std::printf("coil-demo: %ld coroutines in %zu pairs, %d rounds, %d naps of 1-10 ms each\n",
              coroutines, demo.pair_count, rounds, naps);
  std::printf("  spawned           %" PRIu64 " coroutines (%ld players + main)\n", stats.spawns,
              coroutines);
  std::printf("  spawn             %.1f ms, %.0f ns per spawn (cold pool: %" PRIu64
              " stack slab maps)\n",
              ms_between(start, spawned), ns_between(start, spawned) / n, at_spawned.stack_maps);
  std::printf("  ping-pong         %.1f ms, %" PRIu64 " switches, %.1f ns per switch\n",
              ms_between(spawned, demo.ping_pong_end), switches,
              ns_between(spawned, demo.ping_pong_end) / static_cast<double>(switches));
  std::printf("  sleep phase       %.1f ms wall for %ld naps\n",
              ms_between(demo.ping_pong_end, end), coroutines * naps);
  std::printf("  total switches    %" PRIu64 " (epoll waits: %" PRIu64 ")\n", stats.switches,
              stats.polls);
  std::printf("  peak coroutines   %" PRIu64 "\n", stats.peak_coroutines);
  std::printf("  RSS               %.1f MiB now, %.1f MiB peak, %.1f MiB at start\n",
              static_cast<double>(status_kib("VmRSS")) / 1024,
              static_cast<double>(status_kib("VmHWM")) / 1024,
              static_cast<double>(rss_before_kib) / 1024);
  if (bad_pairs != 0) {
    std::fprintf(stderr, "coil-demo: %" PRId64 " pairs did not finish their %d rounds\n", bad_pairs,
                 rounds);
    return 1;
  }
  return 0;
}
