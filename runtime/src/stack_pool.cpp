#include "stack_pool.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>

#include "coil/scheduler.hpp"

#if COIL_HAVE_VALGRIND
#include <valgrind/valgrind.h>
#endif

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102  // Linux 6.13 uapi; older headers lack it
#endif

namespace coil::detail {
namespace {

std::size_t page_size() noexcept {
  static const std::size_t size = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  return size;
}

std::size_t round_up(std::size_t n, std::size_t to) noexcept { return (n + to - 1) / to * to; }

// Process-wide guard policy. Stacks of every thread share one mprotect
// budget because vm.max_map_count is per process.
struct GuardPolicy {
  bool forced = false;
  GuardMode forced_mode = GuardMode::kMadvise;
  std::atomic<bool> madvise_works{true};
  std::atomic<long> mprotect_budget{0};
  std::atomic<bool> warned{false};

  GuardPolicy() {
    forced = guard_mode_from_env(&forced_mode);
    long max_maps = 65530;
    if (FILE* f = std::fopen("/proc/sys/vm/max_map_count", "r")) {
      if (std::fscanf(f, "%ld", &max_maps) != 1) max_maps = 65530;
      std::fclose(f);
    }
    // Two VMAs per mprotect-guarded stack; leave 8192 for the program.
    mprotect_budget = max_maps > 16384 ? (max_maps - 8192) / 2 : max_maps / 4;
  }
};

GuardPolicy& policy() {
  static GuardPolicy p;
  return p;
}

void warn_unguarded_once() {
  if (policy().warned.exchange(true)) return;
  std::fprintf(stderr,
               "coil: warning: vm.max_map_count leaves no room for more stack guard pages; new "
               "coroutine stacks get a canary instead (overflow is detected at the next switch, "
               "not at the faulting access). Raise vm.max_map_count or use Linux >= 6.13 "
               "(MADV_GUARD_INSTALL) to keep guards.\n");
}

}  // namespace

bool guard_mode_from_env(GuardMode* mode) {
  const char* value = std::getenv("COIL_STACK_GUARD");
  if (!value || !*value || std::strcmp(value, "auto") == 0) return false;
  if (std::strcmp(value, "madvise") == 0) {
    *mode = GuardMode::kMadvise;
  } else if (std::strcmp(value, "mprotect") == 0) {
    *mode = GuardMode::kMprotect;
  } else if (std::strcmp(value, "none") == 0) {
    *mode = GuardMode::kCanary;
  } else {
    throw std::invalid_argument(std::string("coil: COIL_STACK_GUARD='") + value +
                                "' is not one of auto, madvise, mprotect, none");
  }
  return true;
}

StackPool::StackPool(std::optional<GuardMode> force) : force_(force) { (void)policy(); }

StackPool::~StackPool() {
  // Our mprotect guards die with the slabs: give their VMA budget back.
  policy().mprotect_budget.fetch_add(mprotect_guards_, std::memory_order_relaxed);
#if COIL_HAVE_VALGRIND
  for (unsigned id : valgrind_ids_) VALGRIND_STACK_DEREGISTER(id);
#endif
  for (const Slab& slab : slabs_) {
    // mprotect guards die with their mapping; give their VMAs back.
    ::munmap(slab.base, slab.bytes);
  }
}

StackPool::SizeClass& StackPool::size_class(std::size_t size) {
  for (SizeClass& sc : classes_) {
    if (sc.size == size) return sc;
  }
  SizeClass& sc = classes_.emplace_back();
  sc.size = size;
  sc.stride = size + kGuardSize;
  return sc;
}

Stack StackPool::acquire(std::size_t size) {
  if (size > (std::size_t{1} << 40)) {
    throw SpawnError(std::make_error_code(std::errc::not_enough_memory),
                     "coil: stack size " + std::to_string(size) + " is too large");
  }
  size = round_up(size < kMinStackSize ? kMinStackSize : size, page_size());
  SizeClass& sc = size_class(size);
  std::vector<Stack>& list = !sc.hot.empty() ? sc.hot : sc.cold;
  if (!list.empty()) {
    Stack s = list.back();
    list.pop_back();
    ++stats_.hits;
    ++stats_.in_use;
    return s;
  }
  Stack s = carve(sc);
  ++stats_.misses;
  ++stats_.in_use;
  return s;
}

void StackPool::release(const Stack& stack) noexcept {
  SizeClass& sc = size_class(stack.size());
  --stats_.in_use;
  sc.hot.push_back(stack);
  if (sc.hot.size() > kMaxHotStacks) trim_wanted_ = true;
}

void StackPool::trim() noexcept {
  trim_wanted_ = false;
  for (SizeClass& sc : classes_) {
    if (sc.hot.size() <= kMaxHotStacks) continue;
    // The least recently used stacks sit at the front of the LIFO.
    auto excess = static_cast<std::ptrdiff_t>(sc.hot.size() - kMaxHotStacks);
    std::vector<Stack> cold(sc.hot.begin(), sc.hot.begin() + excess);
    sc.hot.erase(sc.hot.begin(), sc.hot.begin() + excess);
    std::sort(cold.begin(), cold.end(), [](const Stack& a, const Stack& b) { return a.lo < b.lo; });
    for (std::size_t i = 0; i < cold.size();) {
      char* begin = cold[i].lo;
      char* end = cold[i].hi;
      std::size_t j = i + 1;
      while (j < cold.size() && cold[j].lo == end + kGuardSize) end = cold[j++].hi;
      ::madvise(begin, static_cast<std::size_t>(end - begin), MADV_DONTNEED);
      ++stats_.trims;
      i = j;
    }
    for (const Stack& s : cold) {
      if (s.guard == GuardMode::kCanary) *reinterpret_cast<std::uint64_t*>(s.lo) = kStackCanary;
    }
    sc.cold.insert(sc.cold.end(), cold.begin(), cold.end());
  }
}

void StackPool::map_slab(SizeClass& sc) {
  std::size_t count =
      sc.stride >= kMaxSlabBytes ? 1 : std::min(kStacksPerSlab, kMaxSlabBytes / sc.stride);
  std::size_t bytes = count * sc.stride;
  void* base = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (base == MAP_FAILED) {
    int err = errno;
    throw SpawnError(std::error_code(err, std::generic_category()),
                     "coil: cannot map " + std::to_string(bytes) + " bytes of coroutine stacks");
  }
  ++stats_.maps;
  // Huge pages would make every 4 KiB-touching stack cost 2 MiB.
  ::madvise(base, bytes, MADV_NOHUGEPAGE);
  slabs_.push_back(Slab{static_cast<char*>(base), bytes});
  sc.next = static_cast<char*>(base);
  sc.end = sc.next + bytes;
}

GuardMode StackPool::install_guard(char* guard_lo) {
  GuardPolicy& p = policy();
  bool forced = force_.has_value() || p.forced;
  GuardMode want = force_ ? *force_ : p.forced ? p.forced_mode : GuardMode::kMadvise;
  if (want == GuardMode::kMadvise) {
    if (p.madvise_works.load(std::memory_order_relaxed) &&
        ::madvise(guard_lo, kGuardSize, MADV_GUARD_INSTALL) == 0) {
      return GuardMode::kMadvise;
    }
    p.madvise_works.store(false, std::memory_order_relaxed);
    if (forced) {  // madvise forced on a kernel without it
      warn_unguarded_once();
      return GuardMode::kCanary;
    }
    want = GuardMode::kMprotect;
  }
  if (want == GuardMode::kMprotect) {
    if (p.mprotect_budget.fetch_sub(1, std::memory_order_relaxed) > 0 &&
        ::mprotect(guard_lo, kGuardSize, PROT_NONE) == 0) {
      return GuardMode::kMprotect;
    }
    p.mprotect_budget.fetch_add(1, std::memory_order_relaxed);
    warn_unguarded_once();
  }
  return GuardMode::kCanary;
}

Stack StackPool::carve(SizeClass& sc) {
  if (sc.next == sc.end) map_slab(sc);
  char* guard_lo = sc.next;
  sc.next += sc.stride;
  Stack s;
  s.lo = guard_lo + kGuardSize;
  s.hi = s.lo + sc.size;
  s.guard = install_guard(guard_lo);
  if (s.guard == GuardMode::kMprotect) ++mprotect_guards_;
  s.guard_size = s.guard == GuardMode::kCanary ? 0 : kGuardSize;
  if (s.guard == GuardMode::kCanary) {
    ++stats_.unguarded;
    *reinterpret_cast<std::uint64_t*>(s.lo) = kStackCanary;
  }
#if COIL_HAVE_VALGRIND
  // Registered once for the life of the slab, however often it is reused.
  valgrind_ids_.push_back(VALGRIND_STACK_REGISTER(s.lo, s.hi));
#endif
  return s;
}

}  // namespace coil::detail
