// Fiber stacks: mmap'ed, with a PROT_NONE guard page below, so running off
// the end is a SIGSEGV at the guard instead of a write into someone else's
// memory.
//
// A stack is reserved, not committed: MAP_NORESERVE, and the kernel backs a
// page only when the fiber first touches it, so an 8 MiB stack whose fiber
// stays shallow costs the one or two pages it touched. Each stack is two
// mappings (the guard and the stack), which counts against the kernel's
// vm.max_map_count (65530 by default): about 32,000 fibers per process,
// fewer by the mappings the program has anyway. mmap or mprotect failing
// there is RILL_ENOMEM, like any exhausted memory.
#ifndef RILL_FIBER_STACK_H
#define RILL_FIBER_STACK_H

#include <cstddef>

namespace rill::detail {

struct fiber_stack {
  void *base = nullptr;  // lowest usable address (just above the guard)
  size_t size = 0;       // usable bytes
};

// Rounds `size` up to whole pages. Returns 0, RILL_EINVAL for a size too
// close to SIZE_MAX to round, or RILL_ENOMEM when the kernel refuses the
// mapping (the address space or the map count is exhausted).
int stack_alloc(size_t size, fiber_stack *out);
void stack_free(fiber_stack &s);

// Readies a pooled stack for its next fiber. Under AddressSanitizer a
// finished fiber leaves its frames' redzones poisoned (it never returns
// through them); they are cleared here and in stack_free, or a later fiber
// on the same memory trips over stale poison.
void stack_reset(fiber_stack &s);

// Whether the fiber that ran on `s` may have touched pages below its top
// `keep` bytes, told without a system call: its stack pointer was seen
// there (`deepest_sp`, the lowest of its switches), or the page just below
// holds anything. A fiber that went deep between two switches and left
// that page untouched goes unseen, and its pages stay with the pooled
// stack until a deeper fiber's return releases them: memory, never
// correctness.
bool stack_used_below(const fiber_stack &s, size_t keep, const void *deepest_sp);

// Gives the kernel back every page of `s` below its top `keep` bytes
// (MADV_DONTNEED: the next touch finds a fresh zero page), so a stack that
// a deep fiber grew does not keep its pages while it waits in the pool.
// The top pages stay: the next fiber touches them anyway.
void stack_release_pages(const fiber_stack &s, size_t keep);

}  // namespace rill::detail

#endif
