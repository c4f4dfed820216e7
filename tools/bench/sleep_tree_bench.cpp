// The sleep tree under load: insert and erase one deadline in a tree that holds N.
//
// Both benchmarks use the scheduler's own detail::SleepTree over real detail::Coroutine
// control blocks (default-constructed, not spawned), with random deadlines spread over 10 s.
// They differ in where the control blocks sit:
//   BM_sleep_tree_insert_erase           packed in one array: the cost of the tree itself;
//   BM_sleep_tree_insert_erase_on_stacks one at the top of each stack-sized slot, as spawn
//                                        places them, so every tree level visited is a
//                                        different page: the cost the scheduler pays.
// The tree is built once per process (lazily, on first use) and reused by every run and
// repetition, since building the paged one touches N fresh pages.
#include <benchmark/benchmark.h>
#include <sys/mman.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <new>
#include <random>
#include <utility>
#include <vector>

#include "scheduler_impl.hpp"

namespace {

using coil::detail::Coroutine;
using coil::detail::SleepTree;

// The distance between two control blocks when they live on pooled stacks.
constexpr std::size_t kStackStride = coil::kDefaultStackSize + coil::detail::StackPool::kGuardSize;

const coil::TimePoint kBase = coil::TimePoint{} + std::chrono::hours(1);

coil::TimePoint random_deadline(std::mt19937_64& rng) {
  return kBase + std::chrono::nanoseconds(rng() % 10'000'000'000);
}

// SleepTreeFixture holds N sleeping control blocks and the tree over them.
class SleepTreeFixture {
 public:
  SleepTreeFixture(std::size_t count, bool on_stacks) : count_(count), on_stacks_(on_stacks) {
    std::mt19937_64 rng(42);
    if (on_stacks_) {
      bytes_ = count_ * kStackStride;
      void* p = ::mmap(nullptr, bytes_, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
      if (p == MAP_FAILED) throw std::bad_alloc();
      ::madvise(p, bytes_, MADV_NOHUGEPAGE);  // as StackPool does
      slots_ = static_cast<char*>(p);
    } else {
      packed_ = std::make_unique<Coroutine[]>(count_);
    }
    for (std::size_t i = 0; i < count_; ++i) {
      Coroutine* co = on_stacks_ ? ::new (node(i)) Coroutine : node(i);
      co->deadline = random_deadline(rng);
      tree_.insert(*co);
    }
  }
  ~SleepTreeFixture() {
    tree_.clear();
    if (on_stacks_) {
      for (std::size_t i = 0; i < count_; ++i) node(i)->~Coroutine();
      ::munmap(slots_, bytes_);
    }
  }
  SleepTreeFixture(const SleepTreeFixture&) = delete;
  SleepTreeFixture& operator=(const SleepTreeFixture&) = delete;

  SleepTree& tree() noexcept { return tree_; }

 private:
  // node(i) is where the i-th control block lives: on stacks, at the top of its slot, as
  // SchedulerImpl::create() places it.
  Coroutine* node(std::size_t i) noexcept {
    if (!on_stacks_) return &packed_[i];
    return reinterpret_cast<Coroutine*>(slots_ + (i + 1) * kStackStride - sizeof(Coroutine));
  }

  std::size_t count_;
  bool on_stacks_;
  std::unique_ptr<Coroutine[]> packed_;
  char* slots_ = nullptr;
  std::size_t bytes_ = 0;
  SleepTree tree_;
};

SleepTreeFixture& fixture(std::size_t count, bool on_stacks) {
  static std::map<std::pair<std::size_t, bool>, std::unique_ptr<SleepTreeFixture>> fixtures;
  auto& slot = fixtures[{count, on_stacks}];
  if (!slot) slot = std::make_unique<SleepTreeFixture>(count, on_stacks);
  return *slot;
}

// One iteration inserts one more coroutine with a fresh random deadline and erases it again,
// as a wait whose timeout is cancelled early does.
void insert_erase(benchmark::State& state, bool on_stacks) {
  const auto count = static_cast<std::size_t>(state.range(0));
  SleepTree& tree = fixture(count, on_stacks).tree();
  constexpr std::size_t kDeadlines = 1 << 16;
  std::mt19937_64 rng(7);
  std::vector<coil::TimePoint> deadlines(kDeadlines);
  for (auto& d : deadlines) d = random_deadline(rng);

  Coroutine probe;
  std::size_t next = 0;
  for (auto _ : state) {
    probe.deadline = deadlines[next++ & (kDeadlines - 1)];
    auto it = tree.insert(probe);
    benchmark::DoNotOptimize(it);
    tree.erase(it);
  }
  state.counters["entries"] = static_cast<double>(tree.size());
}

void BM_sleep_tree_insert_erase(benchmark::State& state) { insert_erase(state, false); }
BENCHMARK(BM_sleep_tree_insert_erase)->Arg(1000000);

void BM_sleep_tree_insert_erase_on_stacks(benchmark::State& state) { insert_erase(state, true); }
BENCHMARK(BM_sleep_tree_insert_erase_on_stacks)->Arg(1000000);

}  // namespace
