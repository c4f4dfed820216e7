// A program built against an installed libcoil: it spawns, yields, sleeps and joins, and exits
// non-zero when a result is wrong.
#include <coil/scheduler.hpp>

#include <chrono>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

namespace {

int failures = 0;

// expect() reports a failed check and counts it.
void expect(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "consumer: FAILED: %s\n", what);
    ++failures;
  }
}

}  // namespace

int main() {
  using namespace std::chrono_literals;
  try {
    const int result = coil::run([] {
      // Two coroutines that yield after each step take turns in spawn order.
      std::string turns;
      auto step = [&turns](char tag) {
        for (int i = 0; i < 3; ++i) {
          turns += tag;
          coil::yield();
        }
        return tag == 'a' ? 1 : 2;
      };
      auto a = coil::spawn([&] { return step('a'); });
      auto b = coil::spawn([&] { return step('b'); });

      // Sleepers never wake before their time is up.
      std::vector<coil::JoinHandle<bool>> sleepers;
      for (int i = 1; i <= 4; ++i) {
        sleepers.push_back(coil::spawn([i] {
          const auto start = std::chrono::steady_clock::now();
          coil::sleep_for(i * 2ms);
          return std::chrono::steady_clock::now() - start >= i * 2ms;
        }));
      }

      const int ab = a.join() + b.join();
      expect(turns == "ababab", "yielding coroutines alternate (want ababab)");
      for (auto& sleeper : sleepers) expect(sleeper.join(), "sleep_for slept its full time");
      return ab * 14;
    });
    expect(result == 42, "coil::run returns main's value (want 42)");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "consumer: FAILED: exception: %s\n", e.what());
    return 1;
  }
  if (failures != 0) return 1;
  std::puts("consumer: ok");
  return 0;
}
