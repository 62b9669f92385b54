// Switching between stacks.
//
// A context is just a saved stack pointer: rill__context_switch() pushes the
// callee-saved registers on the current stack, stores the stack pointer in
// *from, loads `to` and pops the registers saved there. A new context is a
// stack prepared so that its first switch "returns" into a trampoline that
// calls fn(arg). x86-64 (System V) and AArch64 have a few lines of assembly
// each; other targets use ucontext.
#ifndef RILL_FIBER_CONTEXT_H
#define RILL_FIBER_CONTEXT_H

#include <cstddef>

namespace rill::detail {

using context_fn = void (*)(void *arg);

// Prepares a stack [base, base + size) to start fn(arg) on the first switch
// to the returned context. fn must never return.
void *context_make(void *stack_base, size_t stack_size, context_fn fn, void *arg);

// Saves the current context in *from and continues `to`.
void context_switch(void **from, void *to);

// Whether a saved context's stack pointer is the lowest byte its stack
// uses (the assembly switch), so that everything a parked fiber needs is
// in [sp, top of stack). ucontext keeps its registers elsewhere and does
// not say.
extern const bool context_saves_exact_sp;

}  // namespace rill::detail

#endif
