// Backend-specific halves of context.hpp.
#include "context.hpp"

#include <cstdint>
#include <cstdlib>

namespace coil::detail {

#if COIL_CONTEXT_ASM

void context_init(Context* ctx, void* /*stack_lo*/, void* stack_hi, EntryFn entry,
                  void* arg) noexcept {
  // coil_context_entry is reached by a jmp with rsp 16-byte aligned; its call
  // then leaves rsp+8 aligned at entry()'s first instruction, as SysV wants.
  auto top = reinterpret_cast<std::uintptr_t>(stack_hi) & ~std::uintptr_t{15};
  *ctx = Context{};
  ctx->rsp = top;
  ctx->rip = reinterpret_cast<std::uint64_t>(&coil_context_entry);
  ctx->rbx = reinterpret_cast<std::uint64_t>(entry);
  ctx->r12 = reinterpret_cast<std::uint64_t>(arg);
  asm volatile("stmxcsr %0" : "=m"(ctx->mxcsr));
  asm volatile("fnstcw %0" : "=m"(ctx->fpucw));
}

#else

namespace {

namespace bctx = boost::context::detail;

[[noreturn]] void fcontext_entry(bctx::transfer_t t) noexcept {
  auto* handoff = static_cast<Handoff*>(t.data);
  Context* self = handoff->to;
  record_suspended(t);
  self->entry(self->arg);
  std::abort();  // the entry function returned: same contract as the asm trap
}

}  // namespace

void context_init(Context* ctx, void* stack_lo, void* stack_hi, EntryFn entry, void* arg) noexcept {
  auto size = static_cast<std::size_t>(static_cast<char*>(stack_hi) - static_cast<char*>(stack_lo));
  ctx->fctx = bctx::make_fcontext(stack_hi, size, &fcontext_entry);
  ctx->entry = entry;
  ctx->arg = arg;
}

#endif

}  // namespace coil::detail
