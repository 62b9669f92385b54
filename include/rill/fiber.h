/* rill — fibers: blocking-style code on the base.
 *
 * A fiber is a function with its own stack that runs on a base's thread and
 * parks, instead of blocking, whenever it waits: on a socket, a timer, a
 * wait group. The base keeps running other fibers and callbacks meanwhile —
 * the way goroutines park on Go's netpoller. Fibers are cooperative: one
 * runs at a time, and switches happen only inside rill calls that wait.
 *
 * Stacks come from mmap with a guard page below them, so an overflow is a
 * clean SIGSEGV. A default stack reserves 8 MiB, like a thread's, and the
 * kernel commits its pages only as the fiber touches them: megabytes of
 * locals and deep recursion work, while an idle fiber costs the page or
 * two it touched (the fiber's own state lives at the top of its stack).
 * Default stacks are pooled for reuse; a stack going back to the pool
 * keeps its top 8 KiB and gives the rest back to the kernel, so a fiber
 * that once went deep does not keep that memory. Each stack is two kernel
 * mappings (stack and guard), and Linux allows a process
 * vm.max_map_count of them (65530 by default): about 32,000 fibers at
 * once; raise that sysctl for more. Functions that wait return
 * RILL_ENOTFIBER when called outside a fiber. */
#ifndef RILL_FIBER_H
#define RILL_FIBER_H

#include <stddef.h>
#include <stdint.h>

#include "rill/base.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rill_fiber rill_fiber;
typedef void (*rill_fiber_fn)(void *arg);

/* Starts `fn(arg)` in a new fiber on `base` (it first runs from the loop,
 * not inside this call). The fiber ends when `fn` returns. The stack
 * reserves 8 MiB, committed as touched; rill_go_stack() takes another size
 * (rounded up to pages, the fiber's state of about 100 bytes included; 0
 * means the default). Returns 0; RILL_EINVAL for a NULL base or fn, or a
 * stack size too close to SIZE_MAX to round up to pages; RILL_ENOMEM when
 * the fiber or its stack cannot be allocated: the kernel refuses the
 * mapping (the address space, RLIMIT_AS or vm.max_map_count is exhausted,
 * or the size cannot be mapped at all). */
RILL_API int rill_go(rill_base *base, rill_fiber_fn fn, void *arg);
RILL_API int rill_go_stack(rill_base *base, rill_fiber_fn fn, void *arg, size_t stack_size);

/* The running fiber, or NULL outside fibers. */
RILL_API rill_fiber *rill_fiber_current(void);
/* The base the running fiber belongs to, or NULL. */
RILL_API rill_base *rill_fiber_base(void);
/* Fibers alive on `base` (running, ready or parked). */
RILL_API size_t rill_fiber_count(const rill_base *base);

/* Lets the other ready fibers and the loop run, then continues. */
RILL_API int rill_yield(void);

/* time.Sleep: parks the fiber for at least `d` nanoseconds, measured from
 * the real time of the call (G29). */
RILL_API int rill_sleep(uint64_t d);

/* A wait group (Go's sync.WaitGroup) for the fibers of one base.
 * rill_waitgroup_new returns 0, RILL_EINVAL for NULL, or RILL_ENOMEM. */
typedef struct rill_waitgroup rill_waitgroup;
RILL_API int rill_waitgroup_new(rill_waitgroup **out);
RILL_API void rill_waitgroup_add(rill_waitgroup *wg, int delta);
RILL_API void rill_waitgroup_done(rill_waitgroup *wg);
/* Parks until the counter is zero. */
RILL_API int rill_waitgroup_wait(rill_waitgroup *wg);
RILL_API void rill_waitgroup_free(rill_waitgroup *wg);

#ifdef __cplusplus
}
#endif

#endif /* RILL_FIBER_H */
