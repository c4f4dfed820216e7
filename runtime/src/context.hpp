// The context-switch interface the scheduler is written against. Two
// backends sit behind it, chosen at configure time (COIL_CONTEXT):
//
//   asm    coil's own x86-64 SysV switch (asm/switch_x86_64_sysv_elf_gas.S).
//   boost  Boost.Context's fcontext (jump_fcontext/make_fcontext).
//
// Why fcontext and not boost::context::fiber for the fallback: fiber owns its
// stack and control record and hands back a new move-only continuation on
// every resume, which would duplicate what StackPool and Coroutine already
// do. fcontext is the raw switch underneath fiber: it takes our stack as is
// and maps one-to-one onto context_init()/context_switch() below.
#pragma once

#include <cstddef>

#if COIL_CONTEXT_ASM
#include "context_x86_64.h"
#else
#include <boost/context/detail/fcontext.hpp>
#endif

namespace coil::detail {

// EntryFn is the function a new context starts in. It must never return.
using EntryFn = void (*)(void* arg);

#if COIL_CONTEXT_ASM

using Context = coil_context;

#else

// tools/coil-gdb.py tells the backends apart by Context's fields (fctx here,
// coil_context's rsp there) and reads the registers fctx points at in the
// layout of Boost 1.74's x86-64 jump_fcontext.
struct Context {
  boost::context::detail::fcontext_t fctx = nullptr;
  EntryFn entry = nullptr;
  void* arg = nullptr;
};

#endif

// context_init() prepares ctx so that the first context_switch() to it runs
// entry(arg) on the stack [stack_lo, stack_hi). stack_hi is the highest
// address (stacks grow down). The context inherits the caller's MXCSR and x87
// control word.
void context_init(Context* ctx, void* stack_lo, void* stack_hi, EntryFn entry, void* arg) noexcept;

// context_switch() saves the running context into from and resumes to. It
// returns when another context_switch() resumes from.
void context_switch(Context* from, Context* to) noexcept;

#if COIL_CONTEXT_ASM

inline void context_switch(Context* from, Context* to) noexcept { coil_switch_context(from, to); }

#else

// Handoff travels through jump_fcontext so the resumed side can store the
// suspended side's new fcontext handle where it belongs.
struct Handoff {
  Context* from;
  Context* to;
};

inline void record_suspended(boost::context::detail::transfer_t t) noexcept {
  static_cast<Handoff*>(t.data)->from->fctx = t.fctx;
}

// Inline: an out-of-line wrapper adds a return after every switch, and each
// such return misses the return-stack buffer.
inline void context_switch(Context* from, Context* to) noexcept {
  Handoff handoff{from, to};
  record_suspended(boost::context::detail::jump_fcontext(to->fctx, &handoff));
}

#endif

}  // namespace coil::detail
