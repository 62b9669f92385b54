// The portable context switch, for targets without assembly here: ucontext.
// Slower (swapcontext saves and restores the signal mask with system calls)
// but correct.
//
// The signal mask belongs to the thread, not to a fiber: swapcontext would
// restore the mask saved in the target's record (when it was made, or when
// it last switched away), undoing any change made since, such as the base
// blocking a signal it starts to watch. So the current mask is copied into
// the target before every switch, and the switch leaves the mask as it is.
#include <signal.h>
#include <ucontext.h>
#include <cstdint>
#include <new>

#include "fiber/context.h"

namespace rill::detail {

// A context here is a ucontext record, not a stack pointer: nothing tells
// where the live part of a parked fiber's stack begins.
const bool context_saves_exact_sp = false;

namespace {

struct uctx {
  ucontext_t uc;
  context_fn fn;
  void *arg;
};

void start(unsigned hi, unsigned lo) {
  auto *c = reinterpret_cast<uctx *>((static_cast<uintptr_t>(hi) << 32) | lo);
  c->fn(c->arg);
}

}  // namespace

void *context_make(void *stack_base, size_t stack_size, context_fn fn, void *arg) {
  // The context record lives at the top of the stack it describes.
  auto top = (reinterpret_cast<uintptr_t>(stack_base) + stack_size - sizeof(uctx)) & ~uintptr_t{15};
  auto *c = new (reinterpret_cast<void *>(top)) uctx;
  getcontext(&c->uc);
  c->uc.uc_stack.ss_sp = stack_base;
  c->uc.uc_stack.ss_size = top - reinterpret_cast<uintptr_t>(stack_base);
  c->uc.uc_link = nullptr;
  c->fn = fn;
  c->arg = arg;
  auto p = reinterpret_cast<uintptr_t>(c);
  makecontext(&c->uc, reinterpret_cast<void (*)()>(start), 2, static_cast<unsigned>(p >> 32),
              static_cast<unsigned>(p));
  return c;
}

void context_switch(void **from, void *to) {
  // The running context's record is made on the fly: its stack is the
  // current one, and only the switch itself needs it.
  uctx self;
  *from = &self;
  ucontext_t *target = &static_cast<uctx *>(to)->uc;
  pthread_sigmask(SIG_BLOCK, nullptr, &target->uc_sigmask);
  swapcontext(&self.uc, target);
}

}  // namespace rill::detail
