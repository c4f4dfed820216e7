// Saved-context layout of coil_switch_context() on x86-64 System V.
//
// The offsets are defined once here and used by both the assembly
// (switch_x86_64_sysv_elf_gas.S) and C++ (struct coil_context below, checked
// with static_assert).
//
//   offset  field   register
//   0x00    rsp     stack pointer after the switch returns
//   0x08    rip     resume address
//   0x10    rbx     callee-saved; holds the entry function before first run
//   0x18    rbp     callee-saved frame pointer
//   0x20    r12     callee-saved; holds the entry argument before first run
//   0x28    r13     callee-saved
//   0x30    r14     callee-saved
//   0x38    r15     callee-saved
//   0x40    mxcsr   SSE control and status (32 bits)
//   0x44    fpucw   x87 control word (16 bits)
//
// Not saved: the signal mask, TLS (fs base), SIMD registers (all
// caller-saved in SysV), the x87 status word and CET shadow-stack state.
#ifndef COIL_ASM_CONTEXT_X86_64_H
#define COIL_ASM_CONTEXT_X86_64_H

#define COIL_CTX_RSP 0x00
#define COIL_CTX_RIP 0x08
#define COIL_CTX_RBX 0x10
#define COIL_CTX_RBP 0x18
#define COIL_CTX_R12 0x20
#define COIL_CTX_R13 0x28
#define COIL_CTX_R14 0x30
#define COIL_CTX_R15 0x38
#define COIL_CTX_MXCSR 0x40
#define COIL_CTX_FPUCW 0x44
#define COIL_CTX_SIZE 0x48

#ifndef __ASSEMBLER__
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// coil_context is one suspended execution context.
struct coil_context {
  uint64_t rsp;
  uint64_t rip;
  uint64_t rbx;
  uint64_t rbp;
  uint64_t r12;
  uint64_t r13;
  uint64_t r14;
  uint64_t r15;
  uint32_t mxcsr;
  uint16_t fpucw;
  uint16_t pad;
};

// coil_switch_context() saves the caller's context into from and resumes to.
// It returns when some other switch resumes from.
void coil_switch_context(struct coil_context* from, const struct coil_context* to);

// coil_context_entry() is the first resume address of a new context: it
// calls rbx(r12) and traps if that function returns. Never call it directly.
void coil_context_entry(void);

#ifdef __cplusplus
}  // extern "C"

static_assert(offsetof(coil_context, rsp) == COIL_CTX_RSP, "coil_context::rsp offset");
static_assert(offsetof(coil_context, rip) == COIL_CTX_RIP, "coil_context::rip offset");
static_assert(offsetof(coil_context, rbx) == COIL_CTX_RBX, "coil_context::rbx offset");
static_assert(offsetof(coil_context, rbp) == COIL_CTX_RBP, "coil_context::rbp offset");
static_assert(offsetof(coil_context, r12) == COIL_CTX_R12, "coil_context::r12 offset");
static_assert(offsetof(coil_context, r13) == COIL_CTX_R13, "coil_context::r13 offset");
static_assert(offsetof(coil_context, r14) == COIL_CTX_R14, "coil_context::r14 offset");
static_assert(offsetof(coil_context, r15) == COIL_CTX_R15, "coil_context::r15 offset");
static_assert(offsetof(coil_context, mxcsr) == COIL_CTX_MXCSR, "coil_context::mxcsr offset");
static_assert(offsetof(coil_context, fpucw) == COIL_CTX_FPUCW, "coil_context::fpucw offset");
static_assert(sizeof(coil_context) == COIL_CTX_SIZE, "coil_context size");
#endif  // __cplusplus
#endif  // __ASSEMBLER__
#endif  // COIL_ASM_CONTEXT_X86_64_H
