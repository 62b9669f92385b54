// Fiber stacks: mmap'ed, with a PROT_NONE guard page below, so running off
// the end is a SIGSEGV at the guard instead of a write into someone else's
// memory.
#ifndef RILL_FIBER_STACK_H
#define RILL_FIBER_STACK_H

#include <cstddef>

namespace rill::detail {

struct fiber_stack {
  void *base = nullptr;  // lowest usable address (just above the guard)
  size_t size = 0;       // usable bytes
};

// Rounds `size` up to whole pages. Returns 0, RILL_EINVAL for a size too
// close to SIZE_MAX to round, or -errno from mmap (-ENOMEM for a size the
// address space cannot hold).
int stack_alloc(size_t size, fiber_stack *out);
void stack_free(fiber_stack &s);

// Readies a pooled stack for its next fiber. Under AddressSanitizer a
// finished fiber leaves its frames' redzones poisoned (it never returns
// through them); they are cleared here and in stack_free, or a later fiber
// on the same memory trips over stale poison.
void stack_reset(fiber_stack &s);

}  // namespace rill::detail

#endif
