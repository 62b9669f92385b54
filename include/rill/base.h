/** @file
 * rill — the event base.
 *
 * A rill_base is one event loop: a kernel poller (epoll, kqueue or poll), a
 * timing wheel for timers, signal delivery and a queue of functions posted from other
 * threads. What rill promises, all in this header:
 *  - threads: just below;
 *  - callbacks: "Callback guarantees" below;
 *  - the base's states, and what rill_base_free() and rill_base_run() refuse:
 *    "States" below and at those functions;
 *  - handles used after they were freed: "Stale handles" below;
 *  - C++ exceptions thrown by callbacks: "Exceptions" below.
 *
 * Threads: a base and every handle on it belong to one thread, the one that
 * calls rill_base_run(). Only rill_base_post() and rill_base_stop() may be
 * called from other threads.
 *
 * Callback guarantees, for every handle type:
 *  - no callback runs inside the API call that caused it; callbacks run only
 *    from rill_base_run() (and rill_base_free() for posted functions and
 *    cancelled lookups);
 *  - any handle may be stopped or freed from inside any callback, its own
 *    included; events that were already collected for a freed handle are
 *    dropped, never delivered; a handle freed inside its own callback is
 *    closed: calls on it return RILL_ECLOSED until the callback returns;
 *  - work that makes more work cannot starve the loop: timers restarted,
 *    functions posted and reports queued (completions, closes, redeliveries)
 *    by callbacks wait for a later pass. Each iteration runs the due timers
 *    once, one batch of posts, and at most 16 passes over the queued
 *    reports after every 16 descriptors' readiness callbacks (and after the
 *    last), and 16 after timers; what is left runs on the next iteration,
 *    after the loop has polled for readiness again. So a report (a fiber
 *    woken by readiness, say) waits for at most 16 other descriptors'
 *    callbacks, however many were ready at once.
 *
 * States: a base is IDLE (between calls), RUNNING (inside rill_base_run())
 * or FREEING (inside rill_base_free(), which runs posted functions and the
 * completions of the lookups and dials it cancels). rill_base_run() and
 * rill_base_free() work only on an idle base; called from any callback of
 * either, they return RILL_EBUSY and change nothing.
 *
 * Stale handles: a handle pointer is dead once its free function returned
 * (or, freed inside its own callback, once that callback returned). A call
 * through a dead pointer, a second free included, is a bug that rill catches
 * where it can: a function given a pointer to a slot that holds no live
 * handle of its type returns RILL_EINVAL (the free functions do nothing).
 * Built with handle checks (the RILL_HANDLE_CHECKS CMake option; on unless
 * the build type is Release or MinSizeRel without sanitizers), freed slots
 * are held back from reuse for a long while, so a stale pointer is caught
 * instead of acting on a newer handle that took the slot over; built with
 * AddressSanitizer as well, the freed slot is poisoned and the stale call
 * is reported on the spot. Without handle checks a stale pointer may reach
 * a newer handle of the same type.
 *
 * Exceptions: rill is C, but C++ callbacks may throw. An exception thrown
 * by a callback (io, timer, signal, posted function, a completion or other
 * report) propagates out of rill_base_run(), or out of rill_base_free() for
 * the callbacks that one runs, and leaves the base usable and idle: it can
 * be run and freed as usual. The handle whose callback threw is exactly as
 * the callback left it (a one-shot timer was disarmed before its callback,
 * a repeating one re-armed; freeing a handle then throwing frees it). Of the
 * work the interrupted iteration had collected but not dispatched: posted
 * functions, due timers and queued reports are kept and run in a later
 * iteration, each exactly once and in order; descriptor readiness is
 * dropped (level-triggered, it is reported again by the next poll if the
 * descriptor is still ready); signals read in the same batch as the one
 * whose callback threw may be lost. Nothing else is promised: a callback
 * that throws halfway through its own bookkeeping leaves that to its
 * author. */
#ifndef RILL_BASE_H
#define RILL_BASE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "rill/dns_config.h"
#include "rill/error.h"
#include "rill/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/** One event loop (opaque): see the top of this file. */
typedef struct rill_base rill_base;

/** Base configuration. Zero-initialise it (`rill_base_config c = {0};`) and set
 * what you need: zero always means "the default". Fields are only ever added at
 * the end. */
typedef struct rill_base_config {
  /** "epoll", "kqueue", "poll" or "io_uring". NULL: the RILL_BACKEND
   * environment variable if set, else the best one built in (epoll on Linux,
   * kqueue on BSD/macOS). "io_uring" falls back to that best one where the
   * kernel refuses io_uring or it is not built in (docs/io_uring.md). */
  const char *backend;
  /** The resolver's settings (rill/dns.h); zero: the system's. */
  struct rill_dns_config dns;
} rill_base_config;

/** Creates a base. `config` may be NULL. Returns 0 and sets *out, or
 * RILL_EINVAL, RILL_ENOMEM, RILL_EBACKEND (unknown or unavailable backend),
 * or the -errno of a failed system call (for example RILL_EMFILE). */
RILL_API int rill_base_new(const rill_base_config *config, rill_base **out);

/** Frees a base. Functions still queued by rill_base_post() run first, exactly
 * once, on the calling thread (they may free handles). Then, if handles are
 * still alive or reports are still queued (a close callback, say: run the
 * loop to deliver them), nothing else happens and RILL_EBUSY is returned:
 * free the handles (rill_base_dump() lists them) and call again. Otherwise
 * name lookups still in flight end here, their callbacks (and those of the
 * dials waiting on them) saying RILL_ECANCELED, and the base is freed.
 * RILL_EBUSY, with nothing changed, when the base is not idle (see States
 * above): called from a callback of rill_base_run(), or from a callback this
 * function itself runs (a posted function, a cancelled lookup's or dial's
 * completion) — the outer call then goes on and frees the base. An exception
 * thrown by one of those callbacks propagates out of this call, which then
 * has freed nothing; call again. NULL is a no-op returning 0. No
 * rill_base_post() may race with this call. */
RILL_API int rill_base_free(rill_base *base);

/** How rill_base_run() runs. */
typedef enum rill_run_mode {
  /** Runs until no active handle is left or rill_base_stop() is called. */
  RILL_RUN_DEFAULT = 0,
  /** One iteration; waits for events if nothing is ready. */
  RILL_RUN_ONCE = 1,
  /** One iteration; never waits. */
  RILL_RUN_NOWAIT = 2
} rill_run_mode;

/** Runs the loop. Returns 1 if active handles remain (stopped, or a single
 * iteration), 0 if nothing is active any more, RILL_EBUSY if the base is not
 * idle (a nested call from a callback of rill_base_run() or of
 * rill_base_free(); nothing changes), RILL_EINVAL for a NULL base or an
 * unknown mode, or the -errno of a failed backend wait. An exception thrown
 * by a callback propagates out of this call (see Exceptions above). */
RILL_API int rill_base_run(rill_base *base, rill_run_mode mode);

/** Makes the running rill_base_run() return after its current iteration; if
 * the base is not running, the next rill_base_run() returns after at most one
 * iteration. Safe from any thread and from signal-free contexts. */
RILL_API int rill_base_stop(rill_base *base);

/** Whether the calling thread is the base's thread: 1 for the thread that
 * last entered rill_base_run() on it (running it now or not), or, before
 * the first run, for the thread that created it (or, in a forked child,
 * that called rill_base_reinit() on it); 0 for every other thread and for
 * NULL. Any thread. It is what rill_go() looks at to decide between
 * starting a fiber at once and handing it to the base (rill/fiber.h), and
 * what code shared between threads can use to choose between calling the
 * base directly and rill_base_post(). A base moved to another thread
 * belongs to the new thread from its first rill_base_run() there. */
RILL_API int rill_base_in_loop_thread(const rill_base *base);

/** A function run on the base's thread. */
typedef void (*rill_post_cb)(rill_base *base, void *arg);

/** Queues `fn(base, arg)` to run on the base's thread and wakes the base.
 * Safe from any thread. Functions posted from one thread run in the order
 * they were posted; every posted function runs exactly once, in a later
 * rill_base_run() iteration or, at the latest, in rill_base_free(). Returns
 * 0, RILL_EINVAL or RILL_ENOMEM (then `fn` will not run). */
RILL_API int rill_base_post(rill_base *base, rill_post_cb fn, void *arg);

/** Forking. After fork() the child's bases are copies of the parent's, but
 * their kernel objects (the epoll set, the wake-up descriptors) are shared
 * with the parent: a child that freed a watcher would stop the parent's from
 * firing. A child that uses an inherited base, or frees it, must first call
 * rill_base_reinit() on it, before any other call on the base; the parent
 * needs nothing. What the child then has:
 *  - every handle as it was, io watchers registered again with their current
 *    interest (the descriptors themselves are still shared with the parent:
 *    free the watchers of those the child will not serve, then close them);
 *    timers keep their due times;
 *  - functions posted before the fork and not yet run are queued in both
 *    processes and run in both (the child runs its copy in its next
 *    iteration);
 *  - signal watchers keep watching, now for the child's signals only;
 *    signals the parent received before the fork are not delivered in the
 *    child (rill/signal.h);
 *  - the usual fork rules hold: in a multi-threaded parent, fork while no
 *    other thread is inside a rill call (rill_base_post() holds a lock the
 *    child would wait for forever).
 * A child that only calls exec or _exit needs nothing. A base the child
 * never touches can be left alone.
 *
 * Returns 0, RILL_EINVAL (NULL base), RILL_ENOMEM or the -errno of a failed
 * system call (RILL_EMFILE, say). After a failure the base no longer reaches
 * the parent's kernel objects but may miss events: free it. May be called
 * from inside a callback of the base (then the rest of that iteration still
 * runs, with the new objects). Base thread only, and no rill_base_post()
 * or rill_base_stop() may race with it (they use the descriptor it
 * replaces). Calling it in a process that did not fork works too, at the
 * cost of the system calls. */
RILL_API int rill_base_reinit(rill_base *base);

/** Time. Every duration and every point in time in rill's API is a uint64_t
 * count of nanoseconds, as in Go: durations are written `250 * RILL_MSEC`,
 * and points in time are on the monotonic clock of rill_time_now(), so a
 * deadline is `rill_time_now() + 10 * RILL_USEC`. Timers and deadlines
 * fire at least their duration after the call that armed them, measured from
 * the real time of that call (docs/go-model.md, G29), with the resolution
 * of the backend's wait (nanoseconds for epoll on Linux 5.11 and later,
 * and for poll, kqueue and io_uring; milliseconds for older epoll). @{ */
#define RILL_NSEC ((uint64_t)1)
#define RILL_USEC ((uint64_t)1000)
#define RILL_MSEC ((uint64_t)1000000)
#define RILL_SEC ((uint64_t)1000000000)
/** @} */

/** The monotonic clock (CLOCK_MONOTONIC), read at the call. Any thread. */
RILL_API uint64_t rill_time_now(void);

/** The base's view of the clock: the last time it read rill_time_now(),
 * which it does when the base is created, when rill_base_run() starts,
 * each time the loop wakes, and in rill_base_update_time(). Cheaper than
 * rill_time_now() but possibly behind it by the time callbacks have run
 * since; compute deadlines from rill_time_now(). 0 for NULL. */
RILL_API uint64_t rill_base_now(const rill_base *base);

/** Re-reads the clock into rill_base_now(). */
RILL_API void rill_base_update_time(rill_base *base);

/** Keeps rill_base_run(RILL_RUN_DEFAULT) running while no handle is active
 * (for example a base that only serves rill_base_post() calls). Counted:
 * every rill_base_ref() needs one rill_base_unref(). Base thread only. @{ */
RILL_API void rill_base_ref(rill_base *base);
RILL_API void rill_base_unref(rill_base *base);
/** @} */

/** The backend in use: "epoll", "kqueue", "poll" or "io_uring" (after a
 * fallback, the backend the base fell back to). */
RILL_API const char *rill_base_backend(const rill_base *base);

/** Counters since the base was created. */
typedef struct rill_base_stats {
  uint64_t iterations;   /**< loop iterations */
  uint64_t events;       /**< callbacks dispatched (io, timer, signal, post) */
  uint64_t wait_ns;      /**< time spent inside the backend's wait, callbacks excluded */
  uint64_t handles;      /**< handles alive now */
  uint64_t active;       /**< handles active now */
  /** Interest changes handed to the backend: registrations, changes and
   * removals of descriptors (each one an epoll_ctl() or a kevent() change
   * on those backends). A watcher whose interest stays the same costs none,
   * whatever the descriptor reports (a hang-up included). */
  uint64_t interest_changes;
} rill_base_stats;

/** Copies the base's counters into `*out`. Returns 0, or RILL_EINVAL for a
 * NULL argument. */
RILL_API int rill_base_stats_get(const rill_base *base, rill_base_stats *out);

/** Writes one line per live handle (type, state, fd or due time) to `out`. */
RILL_API int rill_base_dump(const rill_base *base, FILE *out);

/** @name The stall detector
 * rill cannot preempt: a fiber that computes without
 * calling anything that parks, or a callback that takes its time, holds
 * the loop, and every other fiber and callback of the base waits (Go
 * preempts a goroutine after about 10 ms; see docs/go-model.md, "Where
 * rill and Go still differ"). The detector makes such a hog visible: the
 * loop measures each dispatch — one callback (io, timer, signal, posted
 * function, a queued report such as a completion or a close callback) or
 * one run of a fiber between two parks — and reports every one that took
 * longer than a threshold, once, right after it returned, on the base's
 * thread. Time spent in an inner dispatch is not charged to the one around
 * it: a fiber that computed for a second is reported as that fiber, not
 * also as the timer that runs fibers. Off (the default), the loop does not
 * read the clock for it. A fiber that must compute for long can call
 * rill_yield() now and then (Go's runtime.Gosched, rill/fiber.h): each run
 * between yields is measured on its own. @{ */

/** What held the loop. */
typedef enum rill_stall_kind {
  RILL_STALL_FIBER = 1, /**< a fiber's run between two parks (or its start and end) */
  RILL_STALL_IO = 2,    /**< an io watcher's callback; sockets of rill/net.h and the
                         * resolver's are io watchers of rill's own */
  RILL_STALL_TIMER = 3, /**< a timer's callback */
  RILL_STALL_SIGNAL = 4, /**< a signal watcher's callback */
  RILL_STALL_POST = 5,  /**< a function queued by rill_base_post() */
  RILL_STALL_REPORT = 6 /**< a queued report: a completion, close or redelivery
                         * of rill/net.h or rill/dns.h */
} rill_stall_kind;

/** One stall, as reported. */
typedef struct rill_stall {
  rill_stall_kind kind; /**< what held the loop */
  uint64_t duration_ns; /**< how long it held the loop */
  uint64_t started_ns;  /**< when it started, on rill_time_now()'s clock */
  uint64_t fiber_id;    /**< RILL_STALL_FIBER: rill_fiber_id() of the fiber; else 0 */
  /** The function that ran, cast to a generic function pointer: the fiber's
   * function (rill_go()'s fn), the callback given to rill_io_new(),
   * rill_timer_new(), rill_signal_new() or rill_base_post(); for sockets,
   * lookups and queued reports one of rill's own functions. Compare it with
   * a cast of your function, or look it up in a debugger. */
  void (*fn)(void);
  void *arg; /**< the argument `fn` was given with it (NULL for a queued report) */
} rill_stall;

/** Called once per stall, on the base's thread, from the loop. It may use
 * the base like any callback (it may call rill_base_stall_detector(), say);
 * its own time is not measured. */
typedef void (*rill_stall_fn)(rill_base *base, const rill_stall *stall, void *arg);

/** Turns the stall detector on: `cb(base, stall, arg)` is called for every
 * dispatch that took longer than `threshold_ns` nanoseconds. A NULL `cb`
 * uses the default reporter, which writes one line per stall to stderr,
 * for example
 * @code{.unparsed}
 *   rill: stall: fiber 7 held base 0x5581c2a0 for 1012.345 ms (fn 0x55.., arg 0x0)
 * @endcode
 * A threshold of 0 turns the detector off. Replaces what an earlier call
 * (or RILL_STALL_MS) set; called inside a dispatch, that dispatch counts
 * from this call. Returns 0, or RILL_EINVAL for a NULL base. Base thread
 * only.
 *
 * Without changing code: the environment variable RILL_STALL_MS=N (a whole
 * number of milliseconds, at least 1) turns the default reporter on with a
 * threshold of N ms for every base created while it is set; it is read by
 * rill_base_new(), once per base, so set it before the base is created
 * (in the shell, or with setenv() before rill_base_new()). Unset, empty, 0
 * or not a number: off. */
RILL_API int rill_base_stall_detector(rill_base *base, uint64_t threshold_ns, rill_stall_fn cb, void *arg);

/** The kind's name: "fiber", "io", "timer", "signal", "post", "report", or
 * "?" for a value that is none of them. */
RILL_API const char *rill_stall_kind_name(rill_stall_kind kind);
/** @} */

/** Replaces the functions rill allocates with (like libevent's
 * event_set_mem_functions). They must behave like malloc/realloc/free and be
 * thread-safe. Call before any base exists: RILL_EBUSY otherwise, because
 * memory from one allocator must not reach the other. NULLs restore the C
 * library's functions. @{ */
typedef void *(*rill_malloc_fn)(size_t size);
typedef void *(*rill_realloc_fn)(void *ptr, size_t size);
typedef void (*rill_free_fn)(void *ptr);
RILL_API int rill_set_allocator(rill_malloc_fn m, rill_realloc_fn r, rill_free_fn f);
/** @} */

#ifdef __cplusplus
}
#endif

#endif /* RILL_BASE_H */
