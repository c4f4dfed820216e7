// Raw context-switch round trips: coil's switch beside Boost fcontext and ucontext.
//
// One iteration is one round trip main -> context -> main, that is two switches. Every
// benchmark parks its context in an endless switch-back loop on a stack of its own; the
// stack is unmapped afterwards without unwinding it (nothing on it owns anything).
#include <benchmark/benchmark.h>
#include <sys/mman.h>
#include <ucontext.h>

#include <boost/context/detail/fcontext.hpp>
#include <cstddef>
#include <cstdlib>

#include "context.hpp"

namespace {

// BenchStack is an mmap'd stack for one benchmark context, unmapped on scope exit.
class BenchStack {
 public:
  static constexpr std::size_t kSize = 64 * 1024;

  BenchStack() {
    void* p = ::mmap(nullptr, kSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) std::abort();
    lo_ = static_cast<char*>(p);
  }
  ~BenchStack() { ::munmap(lo_, kSize); }
  BenchStack(const BenchStack&) = delete;
  BenchStack& operator=(const BenchStack&) = delete;

  char* lo() const noexcept { return lo_; }
  char* hi() const noexcept { return lo_ + kSize; }

 private:
  char* lo_;
};

// coil's switch through the internal interface the scheduler uses (asm or fcontext backend).
struct CoilPair {
  coil::detail::Context main{};
  coil::detail::Context peer{};
};

[[noreturn]] void coil_peer(void* arg) {
  auto* pair = static_cast<CoilPair*>(arg);
  for (;;) coil::detail::context_switch(&pair->peer, &pair->main);
}

void BM_switch_coil(benchmark::State& state) {
  BenchStack stack;
  CoilPair pair;
  coil::detail::context_init(&pair.peer, stack.lo(), stack.hi(), &coil_peer, &pair);
  for (auto _ : state) coil::detail::context_switch(&pair.main, &pair.peer);
}
BENCHMARK(BM_switch_coil)->Name(COIL_CONTEXT_ASM ? "BM_switch_coil_asm" : "BM_switch_coil_boost");

// BM_switch_coil_then_return/D: the same round trip, but each side calls the switch through D
// nested out-of-line functions, so after every switch it executes D returns before switching
// again, as the scheduler does when its switch sits in helpers (resume(), switch_to_main(),
// yield()). Those returns go to addresses the CPU's return-stack predictor learned in the
// other context; the difference to BM_switch_coil_<backend> is what such frames cost.
template <int D>
struct NestedSwitch {
  [[gnu::noinline]] static void run(coil::detail::Context* from, coil::detail::Context* to) {
    NestedSwitch<D - 1>::run(from, to);
    asm volatile("");  // keep the call from becoming a tail call
  }
};
template <>
struct NestedSwitch<0> {
  static void run(coil::detail::Context* from, coil::detail::Context* to) {
    coil::detail::context_switch(from, to);
  }
};

template <int D>
[[noreturn]] void nested_peer(void* arg) {
  auto* pair = static_cast<CoilPair*>(arg);
  for (;;) NestedSwitch<D>::run(&pair->peer, &pair->main);
}

template <int D>
void BM_switch_coil_then_return(benchmark::State& state) {
  BenchStack stack;
  CoilPair pair;
  coil::detail::context_init(&pair.peer, stack.lo(), stack.hi(), &nested_peer<D>, &pair);
  for (auto _ : state) NestedSwitch<D>::run(&pair.main, &pair.peer);
}
BENCHMARK(BM_switch_coil_then_return<1>)->Name("BM_switch_coil_then_return/1");
BENCHMARK(BM_switch_coil_then_return<2>)->Name("BM_switch_coil_then_return/2");
BENCHMARK(BM_switch_coil_then_return<3>)->Name("BM_switch_coil_then_return/3");

#if COIL_CONTEXT_ASM
// coil's assembly switch called directly, without the detail:: wrapper.
struct AsmPair {
  coil_context main{};
  coil_context peer{};
};

[[noreturn]] void asm_peer(void* arg) {
  auto* pair = static_cast<AsmPair*>(arg);
  for (;;) coil_switch_context(&pair->peer, &pair->main);
}

void BM_switch_asm(benchmark::State& state) {
  BenchStack stack;
  AsmPair pair;
  // Same set-up as detail::context_init: rsp 16-byte aligned, entry in rbx, argument in r12.
  pair.peer.rsp = reinterpret_cast<std::uint64_t>(stack.hi()) & ~std::uint64_t{15};
  pair.peer.rip = reinterpret_cast<std::uint64_t>(&coil_context_entry);
  pair.peer.rbx = reinterpret_cast<std::uint64_t>(&asm_peer);
  pair.peer.r12 = reinterpret_cast<std::uint64_t>(&pair);
  asm volatile("stmxcsr %0" : "=m"(pair.peer.mxcsr));
  asm volatile("fnstcw %0" : "=m"(pair.peer.fpucw));
  for (auto _ : state) coil_switch_context(&pair.main, &pair.peer);
}
BENCHMARK(BM_switch_asm);
#endif

// Baseline: Boost.Context's fcontext, used raw (make_fcontext/jump_fcontext).
namespace bctx = boost::context::detail;

[[noreturn]] void fcontext_peer(bctx::transfer_t t) {
  for (;;) t = bctx::jump_fcontext(t.fctx, nullptr);
}

void BM_switch_boost_fcontext(benchmark::State& state) {
  BenchStack stack;
  bctx::fcontext_t peer = bctx::make_fcontext(stack.hi(), BenchStack::kSize, &fcontext_peer);
  for (auto _ : state) peer = bctx::jump_fcontext(peer, nullptr).fctx;
}
BENCHMARK(BM_switch_boost_fcontext);

// Baseline: POSIX ucontext. swapcontext saves and restores the signal mask, a system call
// each way.
ucontext_t uc_main;
ucontext_t uc_peer;

void ucontext_peer() {
  for (;;) swapcontext(&uc_peer, &uc_main);
}

void BM_switch_ucontext(benchmark::State& state) {
  BenchStack stack;
  getcontext(&uc_peer);
  uc_peer.uc_stack.ss_sp = stack.lo();
  uc_peer.uc_stack.ss_size = BenchStack::kSize;
  uc_peer.uc_link = nullptr;
  makecontext(&uc_peer, &ucontext_peer, 0);
  for (auto _ : state) swapcontext(&uc_main, &uc_peer);
}
BENCHMARK(BM_switch_ucontext);

}  // namespace
