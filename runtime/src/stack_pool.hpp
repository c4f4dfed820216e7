// StackPool: mmap'd coroutine stacks with guard regions, cached per thread.
//
// Design (why it looks like this):
// - Stacks are carved from slabs: one mmap of up to kStacksPerSlab stacks, so
//   the mapping count grows with slabs, not with coroutines. Each stack is
//   [guard][usable], the guard below since stacks grow down.
// - vm.max_map_count (65530 by default) caps VMAs, and an mprotect'd guard
//   splits its slab into two VMAs per stack: 1M coroutines cannot all have
//   one. So the guard is installed, in order of preference, by:
//     1. madvise(MADV_GUARD_INSTALL) (Linux 6.13+): a page-table marker, no
//        VMA at all. 1M guarded stacks cost nothing but page tables.
//     2. mprotect(PROT_NONE), while the process-wide count of such guards
//        stays within a budget of vm.max_map_count (half of it, minus room
//        for the program's own mappings).
//     3. none: past the budget a stack gets a canary word at its lowest
//        address instead, checked at every switch out of the coroutine; a
//        one-time warning says how to get guards back.
//   COIL_STACK_GUARD=auto|madvise|mprotect|none forces a mode (default auto).
// - Free stacks are kept LIFO so the next spawn reuses the most recently
//   touched (cache- and TLB-warm) stack: a spawn after an exit makes no
//   syscall and takes no page fault.
// - Beyond kMaxHotStacks free stacks of one size, the excess pages go back
//   to the kernel with MADV_DONTNEED (mapping and guard kept), so a burst of a
//   million coroutines does not pin its memory forever. Not on release: one
//   madvise costs ~30 us here (a TLB shootdown), more than a spawn. trim()
//   runs when the scheduler is about to sleep; it sorts the excess stacks by
//   address and returns each run of neighbours with one call (guard markers
//   survive MADV_DONTNEED), typically one call per 64 stacks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "stat_counter.hpp"

namespace coil::detail {

// GuardMode is how a stack's guard region is enforced.
enum class GuardMode : std::uint8_t { kMadvise, kMprotect, kCanary };

// Stack is one coroutine stack: usable memory [lo, hi), guard below lo.
struct Stack {
  char* lo = nullptr;
  char* hi = nullptr;
  std::size_t guard_size = 0;
  GuardMode guard = GuardMode::kCanary;

  std::size_t size() const noexcept { return static_cast<std::size_t>(hi - lo); }
  // guard_contains() is true if addr lies in this stack's guard region.
  bool guard_contains(std::uintptr_t addr) const noexcept {
    auto base = reinterpret_cast<std::uintptr_t>(lo);
    return addr < base && addr >= base - guard_size;
  }
};

// kStackCanary is written at Stack::lo of unguarded stacks.
inline constexpr std::uint64_t kStackCanary = 0xc011c011deadbeefULL;

// StackPoolStats count the pool's system calls and cache behaviour.
// Other threads may read them (StatCounter).
struct StackPoolStats {
  StatCounter maps;       // slab mmaps
  StatCounter hits;       // acquires served from the free list
  StatCounter misses;     // acquires that carved a new stack
  StatCounter trims;      // MADV_DONTNEED calls made by trim()
  StatCounter unguarded;  // stacks carved with a canary instead of a guard
  StatCounter in_use;     // acquired and not yet released

  // restart() zeroes the counts of past activity; in_use stays true.
  void restart() noexcept {
    for (StatCounter* c : {&maps, &hits, &misses, &trims, &unguarded}) c->set(0);
  }
};

class StackPool {
 public:
  // kGuardSize is the guard region below every guarded stack.
  static constexpr std::size_t kGuardSize = 16 * 1024;
  static constexpr std::size_t kStacksPerSlab = 64;
  static constexpr std::size_t kMaxSlabBytes = 16 * 1024 * 1024;
  static constexpr std::size_t kMaxHotStacks = 1024;

  // force: use this guard mode instead of the process policy (tests).
  explicit StackPool(std::optional<GuardMode> force = std::nullopt);
  ~StackPool();
  StackPool(const StackPool&) = delete;
  StackPool& operator=(const StackPool&) = delete;

  // acquire() returns a stack with at least size usable bytes (rounded up to
  // pages). Throws SpawnError when mmap fails.
  Stack acquire(std::size_t size);
  // release() gives a stack back for reuse. No syscall.
  void release(const Stack& stack) noexcept;

  // trim_wanted() is true when more than kMaxHotStacks stacks of a size are
  // free; trim() then returns the pages of the excess to the kernel.
  bool trim_wanted() const noexcept { return trim_wanted_; }
  void trim() noexcept;

  const StackPoolStats& stats() const noexcept { return stats_; }
  void restart_stats() noexcept { stats_.restart(); }

 private:
  struct Slab {
    char* base;
    std::size_t bytes;
  };
  struct SizeClass {
    std::size_t size;
    std::size_t stride;
    char* next = nullptr;  // next uncarved stack in the newest slab
    char* end = nullptr;
    std::vector<Stack> hot;   // LIFO, pages resident
    std::vector<Stack> cold;  // pages given back with MADV_DONTNEED
  };

  SizeClass& size_class(std::size_t size);
  Stack carve(SizeClass& sc);
  void map_slab(SizeClass& sc);
  GuardMode install_guard(char* guard_lo);

  std::vector<SizeClass> classes_;
  std::vector<Slab> slabs_;
  std::optional<GuardMode> force_;
  long mprotect_guards_ = 0;  // taken from the process-wide budget
  bool trim_wanted_ = false;
  std::vector<unsigned> valgrind_ids_;  // used only when built with valgrind.h
  StackPoolStats stats_;
};

// guard_mode_from_env() parses COIL_STACK_GUARD; throws std::invalid_argument
// naming the variable and the accepted values when it is malformed.
// Returns false for "auto" (or unset) and sets *mode otherwise.
bool guard_mode_from_env(GuardMode* mode);

}  // namespace coil::detail
