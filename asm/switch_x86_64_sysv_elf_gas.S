/*
 * Context switch for x86-64, System V ABI, ELF, GNU as.
 *
 * Layout of struct coil_context (offsets from context_x86_64.h):
 *
 *   0x00 rsp | 0x08 rip | 0x10 rbx | 0x18 rbp | 0x20 r12 | 0x28 r13
 *   0x30 r14 | 0x38 r15 | 0x40 mxcsr (32 bits) | 0x44 x87 control word
 *
 * Saved: the callee-saved general registers, the stack pointer, the resume
 * address, MXCSR and the x87 control word (the SysV "callee-saved" control
 * bits). Not saved: the signal mask (no syscall per switch), the fs base
 * (TLS stays the OS thread's), vector registers (caller-saved in SysV), the
 * x87 status word, and CET shadow-stack state.
 */
#include "context_x86_64.h"

        /* .text.hot: beside the C++ functions of the per-message path (runtime/src/hot.hpp) */
        .section .text.hot,"ax",@progbits

/* void coil_switch_context(struct coil_context* from (rdi), const struct coil_context* to (rsi)) */
        .globl  coil_switch_context
        .hidden coil_switch_context
        .type   coil_switch_context, @function
        .p2align 4
coil_switch_context:
        .cfi_startproc
        endbr64                                 /* valid indirect-branch target under CET IBT */
        movq    (%rsp), %rax                    /* our return address is where from resumes */
        leaq    8(%rsp), %rdx                   /* rsp as it will be after that return */
        movq    %rax, COIL_CTX_RIP(%rdi)        /* save resume address */
        movq    %rdx, COIL_CTX_RSP(%rdi)        /* save stack pointer */
        movq    %rbx, COIL_CTX_RBX(%rdi)        /* save callee-saved registers */
        movq    %rbp, COIL_CTX_RBP(%rdi)
        movq    %r12, COIL_CTX_R12(%rdi)
        movq    %r13, COIL_CTX_R13(%rdi)
        movq    %r14, COIL_CTX_R14(%rdi)
        movq    %r15, COIL_CTX_R15(%rdi)
        stmxcsr COIL_CTX_MXCSR(%rdi)            /* save SSE control/status */
        fnstcw  COIL_CTX_FPUCW(%rdi)            /* save x87 control word */

        ldmxcsr COIL_CTX_MXCSR(%rsi)            /* restore SSE control/status of to */
        fldcw   COIL_CTX_FPUCW(%rsi)            /* restore x87 control word of to */
        movq    COIL_CTX_RBX(%rsi), %rbx        /* restore callee-saved registers */
        movq    COIL_CTX_RBP(%rsi), %rbp
        movq    COIL_CTX_R12(%rsi), %r12
        movq    COIL_CTX_R13(%rsi), %r13
        movq    COIL_CTX_R14(%rsi), %r14
        movq    COIL_CTX_R15(%rsi), %r15
        movq    COIL_CTX_RSP(%rsi), %rsp        /* switch stacks */
        jmpq    *COIL_CTX_RIP(%rsi)             /* resume to */
        .cfi_endproc
        .size   coil_switch_context, .-coil_switch_context

/*
 * First resume address of every new context. On entry rsp is 16-byte aligned
 * (coil's context_init guarantees it), rbx holds the entry function and r12
 * its argument. The call pushes a return address, so the callee sees
 * rsp+8 aligned to 16 as the SysV ABI requires.
 */
        .globl  coil_context_entry
        .hidden coil_context_entry
        .type   coil_context_entry, @function
        .p2align 4
coil_context_entry:
        .cfi_startproc
        .cfi_undefined rip                      /* outermost frame: debuggers stop here */
        endbr64                                 /* reached by an indirect jmp */
        xorl    %ebp, %ebp                      /* no caller frame for frame-pointer walks */
        movq    %r12, %rdi                      /* argument */
        callq   *%rbx                           /* entry function; it must never return */
        ud2                                     /* it returned: trap (SIGILL) */
        .cfi_endproc
        .size   coil_context_entry, .-coil_context_entry

        .section .note.GNU-stack,"",%progbits
