/** @file
 * rill — fibers: blocking-style code on the base.
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
 * two it touched, or less once rill_fiber_private_stack() lets rill take
 * them while it waits. Default stacks are pooled for reuse; a stack going
 * back to the pool keeps its top 8 KiB and gives the rest back to the
 * kernel, so a fiber
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

/** A fiber (opaque): see rill_go(). */
typedef struct rill_fiber rill_fiber;
/** A fiber's function, given rill_go()'s `arg`. */
typedef void (*rill_fiber_fn)(void *arg);

/** Starts `fn(arg)` in a new fiber on `base` (it first runs from the loop,
 * not inside this call). The fiber ends when `fn` returns. The stack
 * reserves 8 MiB, committed as touched; rill_go_stack() takes another size
 * (rounded up to pages, the fiber's state of about 100 bytes included; 0
 * means the default).
 *
 * On the base's thread (rill_base_in_loop_thread(): inside a fiber or
 * callback of the base, or outside rill_base_run() on the thread that runs
 * or created it) the fiber is made here: rill_fiber_count() counts it when
 * the call returns. Returns 0; RILL_EINVAL for a NULL base or fn, or a
 * stack size too close to SIZE_MAX to round up to pages; RILL_ENOMEM when
 * the fiber or its stack cannot be allocated: the kernel refuses the
 * mapping (the address space, RLIMIT_AS or vm.max_map_count is exhausted,
 * or the size cannot be mapped at all).
 *
 * From any other thread (G34, docs/go-model.md) the fiber is handed to the
 * base with rill_base_post() and made on the base's thread, in a later
 * iteration of its loop; it runs there, like every fiber of the base,
 * never on the calling thread. Then 0 means "handed over"; RILL_EINVAL is
 * returned for the same bad input as above, and RILL_ENOMEM when the
 * hand-over itself cannot be allocated (then `fn` never runs). What the
 * caller cannot be told, because it happens later on the base's thread:
 *  - if the fiber or its stack cannot be allocated there (out of memory),
 *    the fiber is dropped: `fn` never runs, nothing leaks, `arg` stays the
 *    caller's;
 *  - like every posted function, the hand-over runs in a later
 *    rill_base_run() iteration or, at the latest, in rill_base_free(). It
 *    does not keep an idle loop running: keep a base that other threads
 *    hand fibers to alive with rill_base_ref() (rill_base_unref() once they
 *    are done). A fiber handed over to a base that is then freed is started
 *    by rill_base_free(), which therefore returns RILL_EBUSY: run the base
 *    to let the fiber finish, then free it again. As with rill_base_post(),
 *    no hand-over may race with rill_base_free(). @{ */
RILL_API int rill_go(rill_base *base, rill_fiber_fn fn, void *arg);
RILL_API int rill_go_stack(rill_base *base, rill_fiber_fn fn, void *arg, size_t stack_size);
/** @} */

/** The running fiber, or NULL outside fibers. */
RILL_API rill_fiber *rill_fiber_current(void);
/** A number for `f`, unique among the fibers of the process (ids start at 1
 * and are never reused), for logs and for the stall detector's reports
 * (rill_base_stall_detector(), rill/base.h); 0 for NULL. Go hides its
 * goroutine ids; rill shows them because a stall report has to name the
 * fiber. Base thread only, while `f` is alive. */
RILL_API uint64_t rill_fiber_id(const rill_fiber *f);
/** The base the running fiber belongs to, or NULL. */
RILL_API rill_base *rill_fiber_base(void);
/** Fibers alive on `base` (running, ready or parked); 0 for NULL. Base
 * thread only (a fiber handed over from another thread counts once the
 * base's thread has made it). */
RILL_API size_t rill_fiber_count(const rill_base *base);

/** Go's runtime.Gosched: lets the other ready fibers and the loop run, then
 * continues; returns 0, or RILL_ENOTFIBER outside a fiber. Fibers are not
 * preempted (Go preempts a goroutine that runs for more than about 10 ms;
 * C code cannot be stopped safely at an arbitrary point), so a fiber that
 * computes for long without calling anything that parks holds its base:
 * no other fiber, timer or socket of the base is served meanwhile. Call
 * rill_yield() in such loops, every millisecond of work or so: it costs a
 * switch to the loop and back, the other ready fibers run first, and the
 * loop polls io and runs timers at least once every 64 switches, so the
 * rest of the base waits for slices, not for the whole computation. The
 * stall detector (rill_base_stall_detector() in
 * rill/base.h, or RILL_STALL_MS=N in the environment) reports the fibers
 * and callbacks that held the loop too long, with rill_fiber_id(). */
RILL_API int rill_yield(void);

/** time.Sleep: parks the fiber for at least `d` nanoseconds, measured from
 * the real time of the call (G29). */
RILL_API int rill_sleep(uint64_t d);

/** Promises that, from now until the running fiber ends, nothing outside it
 * reads or writes memory on its stack while it waits in rill_net_read() or
 * rill_sleep(): no other fiber, thread or callback holds a pointer to its
 * locals then (Go's rule for goroutine stacks, which its compiler enforces
 * by moving shared variables to the heap). In return, when the fiber waits
 * there for longer than about a second, rill moves its live frames to the
 * heap and gives all its stack pages back to the kernel, then puts the
 * frames back, at the same addresses, before it runs again: an idle
 * connection's fiber costs the few hundred bytes its frames use instead of
 * the pages they and its buffer touched. The buffer of a waiting
 * rill_net_read() is not kept (past the count a read returns, its bytes are
 * unspecified, as in Go's io.Reader). Breaking the promise makes a pointer
 * into the stack read zeros and lose what is written through it.
 *
 * Returns 0; RILL_ENOTFIBER outside a fiber; RILL_ENOSYS where rill's
 * context switch is ucontext (not x86-64 or AArch64), which does not say
 * which part of a stack is live: the fiber then keeps its pages, and works
 * as before. */
RILL_API int rill_fiber_private_stack(void);

/** A wait group (Go's sync.WaitGroup) for the fibers of one base.
 * rill_waitgroup_new returns 0, RILL_EINVAL for NULL, or RILL_ENOMEM. @{ */
typedef struct rill_waitgroup rill_waitgroup;
RILL_API int rill_waitgroup_new(rill_waitgroup **out);
RILL_API void rill_waitgroup_add(rill_waitgroup *wg, int delta);
RILL_API void rill_waitgroup_done(rill_waitgroup *wg);
/** @} */
/** Parks until the counter is zero. */
RILL_API int rill_waitgroup_wait(rill_waitgroup *wg);
/** Frees the wait group. */
RILL_API void rill_waitgroup_free(rill_waitgroup *wg);

#ifdef __cplusplus
}
#endif

#endif /* RILL_FIBER_H */
