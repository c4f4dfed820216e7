// Raw context switch, below the scheduler: order, entry alignment, and the
// floating-point control state each context keeps for itself.
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <cfenv>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#endif

#include "context.hpp"
#include "sanitizer.hpp"

namespace coil::detail {
namespace {

// A plain mmap'd stack for contexts created outside the stack pool.
class TestStack {
 public:
  explicit TestStack(std::size_t size = 64 * 1024) : size_(size) {
    void* p = mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    base_ = static_cast<char*>(p);
  }
  ~TestStack() {
    asan_forget_stack(base_, size_);  // our raw contexts never return
    munmap(base_, size_);
  }
  char* lo() const { return base_; }
  // hi() is deliberately misaligned by 8 so context_init has to align it.
  char* hi() const { return base_ + size_ - 8; }

 private:
  char* base_;
  std::size_t size_;
};

struct Pair {
  Context main{};
  Context co{};
  std::string log;
  int rounds = 0;
};

[[noreturn]] void ping(void* arg) {
  auto* p = static_cast<Pair*>(arg);
  for (;;) {
    p->log += "c" + std::to_string(p->rounds++);
    context_switch(&p->co, &p->main);
  }
}

TEST(ContextSwitch, RunsInOrder) {
  TestStack stack;
  Pair p;
  context_init(&p.co, stack.lo(), stack.hi(), &ping, &p);
  for (int i = 0; i < 3; ++i) {
    p.log += "m";
    context_switch(&p.main, &p.co);
  }
  EXPECT_EQ(p.log, "mc0mc1mc2");
}

TEST(ContextSwitch, KeepsCalleeSavedLocalsAcrossManySwitches) {
  TestStack stack;
  Pair p;
  context_init(&p.co, stack.lo(), stack.hi(), &ping, &p);
  volatile std::uint64_t a = 0x1111, b = 0x2222, c = 0x3333;
  std::uint64_t sum = 0;
  for (int i = 0; i < 100000; ++i) {
    p.log.clear();
    context_switch(&p.main, &p.co);
    sum += a + b + c;
  }
  EXPECT_EQ(sum, 100000u * 0x6666);
  EXPECT_EQ(p.rounds, 100000);
}

#if defined(__x86_64__)
// entry_probe is an EntryFn written in assembly: it records rsp exactly as the
// entry function sees it, then tail-jumps to probe_body with the same rsp.
extern "C" std::uint64_t coil_test_entry_rsp;
std::uint64_t coil_test_entry_rsp = 0;
extern "C" void coil_test_entry_probe(void*);
extern "C" [[noreturn]] void coil_test_probe_body(void* arg);
asm(R"(
        .text
        .globl coil_test_entry_probe
        .type coil_test_entry_probe, @function
coil_test_entry_probe:
        movq %rsp, coil_test_entry_rsp(%rip)
        jmp coil_test_probe_body
        .size coil_test_entry_probe, .-coil_test_entry_probe
)");

extern "C" [[noreturn]] void coil_test_probe_body(void* arg) {
  auto* p = static_cast<Pair*>(arg);
  // printf of a double uses movaps on the stack: it faults if misaligned.
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.3f", 3.25);
  p->log = buf;
  context_switch(&p->co, &p->main);
  __builtin_trap();
}

TEST(ContextSwitch, StackIsSysVAlignedAtEntry) {
  TestStack stack;
  Pair p;
  context_init(&p.co, stack.lo(), stack.hi(), &coil_test_entry_probe, &p);
  context_switch(&p.main, &p.co);
  ASSERT_NE(coil_test_entry_rsp, 0u);
  EXPECT_EQ((coil_test_entry_rsp + 8) % 16, 0u) << "rsp+8 must be 16-byte aligned at entry";
  EXPECT_EQ(p.log, "3.250");
}

std::uint32_t read_mxcsr() {
  std::uint32_t v;
  asm volatile("stmxcsr %0" : "=m"(v));
  return v;
}
void write_mxcsr(std::uint32_t v) { asm volatile("ldmxcsr %0" : : "m"(v)); }
std::uint16_t read_fpucw() {
  std::uint16_t v;
  asm volatile("fnstcw %0" : "=m"(v));
  return v;
}
void write_fpucw(std::uint16_t v) { asm volatile("fldcw %0" : : "m"(v)); }

constexpr std::uint32_t kMxcsrRoundingMask = 0x6000;
constexpr std::uint32_t kMxcsrTowardZero = 0x6000;
constexpr std::uint16_t kFpuPrecisionMask = 0x0300;
constexpr std::uint16_t kFpuSinglePrecision = 0x0000;

struct FpState {
  Context main{};
  Context co{};
  std::uint32_t co_mxcsr_after_switch = 0;
  std::uint16_t co_fpucw_after_switch = 0;
};

[[noreturn]] void fp_body(void* arg) {
  auto* s = static_cast<FpState*>(arg);
  write_mxcsr((read_mxcsr() & ~kMxcsrRoundingMask) | kMxcsrTowardZero);
  write_fpucw(
      static_cast<std::uint16_t>((read_fpucw() & ~kFpuPrecisionMask) | kFpuSinglePrecision));
  context_switch(&s->co, &s->main);
  // Back again: our own settings must have been restored.
  s->co_mxcsr_after_switch = read_mxcsr();
  s->co_fpucw_after_switch = read_fpucw();
  context_switch(&s->co, &s->main);
  __builtin_trap();
}

TEST(ContextSwitch, MxcsrAndX87ControlWordArePerContext) {
  if (RUNNING_ON_VALGRIND) GTEST_SKIP() << "valgrind does not emulate MXCSR/x87 control changes";
  TestStack stack;
  FpState s;
  const std::uint32_t main_mxcsr = read_mxcsr();
  const std::uint16_t main_fpucw = read_fpucw();
  context_init(&s.co, stack.lo(), stack.hi(), &fp_body, &s);
  context_switch(&s.main, &s.co);
  EXPECT_EQ(read_mxcsr(), main_mxcsr) << "coroutine's MXCSR leaked into main";
  EXPECT_EQ(read_fpucw(), main_fpucw) << "coroutine's x87 control word leaked into main";
  context_switch(&s.main, &s.co);
  EXPECT_EQ(s.co_mxcsr_after_switch & kMxcsrRoundingMask, kMxcsrTowardZero);
  EXPECT_EQ(s.co_fpucw_after_switch & kFpuPrecisionMask, kFpuSinglePrecision);
  EXPECT_EQ(read_mxcsr(), main_mxcsr);
  EXPECT_EQ(read_fpucw(), main_fpucw);
}
#endif  // __x86_64__

struct Thrower {
  Context main{};
  Context co{};
  std::vector<std::string> caught;
};

void throw_deep(int depth) {
  if (depth == 0) throw std::runtime_error("deep");
  throw_deep(depth - 1);
}

[[noreturn]] void exception_body(void* arg) {
  auto* t = static_cast<Thrower*>(arg);
  for (;;) {
    try {
      throw_deep(20);
    } catch (const std::exception& e) {
      t->caught.push_back(e.what());
    }
    context_switch(&t->co, &t->main);
  }
}

TEST(ContextSwitch, ExceptionsUnwindWithinTheCoroutineStack) {
  TestStack stack;
  Thrower t;
  context_init(&t.co, stack.lo(), stack.hi(), &exception_body, &t);
  context_switch(&t.main, &t.co);
  context_switch(&t.main, &t.co);
  ASSERT_EQ(t.caught.size(), 2u);
  EXPECT_EQ(t.caught[0], "deep");
}

void returns_by_mistake(void*) {}

// An entry function must never return; if it does, the context traps
// instead of running off into whatever lies above the stack.
TEST(ContextSwitchDeathTest, EntryFunctionReturningTraps) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  auto run = [] {
    TestStack stack;
    Context main{}, co{};
    context_init(&co, stack.lo(), stack.hi(), &returns_by_mistake, nullptr);
    context_switch(&main, &co);
  };
#if COIL_CONTEXT_ASM
  EXPECT_EXIT(run(), ::testing::KilledBySignal(SIGILL), "");
#else
  EXPECT_EXIT(run(), ::testing::KilledBySignal(SIGABRT), "");
#endif
}

TEST(ContextSwitch, BackendIsTheConfiguredOne) {
#if COIL_CONTEXT_ASM
  EXPECT_STREQ(COIL_CONTEXT_NAME, "asm");
#else
  EXPECT_STREQ(COIL_CONTEXT_NAME, "boost");
#endif
}

}  // namespace
}  // namespace coil::detail
