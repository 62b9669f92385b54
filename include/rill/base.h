/* rill — the event base.
 *
 * A rill_base is one event loop: a kernel poller (epoll, kqueue or poll), a
 * timer heap, signal delivery and a queue of functions posted from other
 * threads. A base and every handle on it belong to one thread, the one that
 * calls rill_base_run(). Only rill_base_post() and rill_base_stop() may be
 * called from other threads.
 *
 * Callback guarantees, for every handle type:
 *  - no callback runs inside the API call that caused it; callbacks run only
 *    from rill_base_run() (and rill_base_free() for posted functions);
 *  - any handle may be stopped or freed from inside any callback, its own
 *    included; events that were already collected for a freed handle are
 *    dropped, never delivered. */
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

typedef struct rill_base rill_base;

/* Base configuration. Zero-initialise it (`rill_base_config c = {0};`) and set
 * what you need: zero always means "the default". Fields are only ever added at
 * the end. */
typedef struct rill_base_config {
  /* "epoll", "kqueue" or "poll". NULL: the RILL_BACKEND environment variable
   * if set, else the best one built in (epoll on Linux, kqueue on BSD/macOS). */
  const char *backend;
  /* The resolver's settings (rill/dns.h); zero: the system's. */
  struct rill_dns_config dns;
} rill_base_config;

/* Creates a base. `config` may be NULL. Returns 0 and sets *out, or
 * RILL_EINVAL, RILL_ENOMEM, RILL_EBACKEND (unknown or unavailable backend),
 * or the -errno of a failed system call (for example RILL_EMFILE). */
RILL_API int rill_base_new(const rill_base_config *config, rill_base **out);

/* Frees a base. Functions still queued by rill_base_post() run first, exactly
 * once, on the calling thread (they may free handles). Then, if handles are
 * still alive or reports are still queued (a close callback, say: run the
 * loop to deliver them), nothing else happens and RILL_EBUSY is returned:
 * free the handles (rill_base_dump() lists them) and call again. Otherwise
 * name lookups still in flight end here, their callbacks (and those of the
 * dials waiting on them) saying RILL_ECANCELED, and the base is freed. Also
 * RILL_EBUSY when called from inside rill_base_run(). NULL is a no-op
 * returning 0. No rill_base_post() may race with this call. */
RILL_API int rill_base_free(rill_base *base);

typedef enum rill_run_mode {
  /* Runs until no active handle is left or rill_base_stop() is called. */
  RILL_RUN_DEFAULT = 0,
  /* One iteration; waits for events if nothing is ready. */
  RILL_RUN_ONCE = 1,
  /* One iteration; never waits. */
  RILL_RUN_NOWAIT = 2
} rill_run_mode;

/* Runs the loop. Returns 1 if active handles remain (stopped, or a single
 * iteration), 0 if nothing is active any more, RILL_EBUSY if the base is
 * already running (a nested call from a callback), RILL_EINVAL for a NULL
 * base or an unknown mode, or the -errno of a failed backend wait. */
RILL_API int rill_base_run(rill_base *base, rill_run_mode mode);

/* Makes the running rill_base_run() return after its current iteration; if
 * the base is not running, the next rill_base_run() returns after at most one
 * iteration. Safe from any thread and from signal-free contexts. */
RILL_API int rill_base_stop(rill_base *base);

/* A function run on the base's thread. */
typedef void (*rill_post_cb)(rill_base *base, void *arg);

/* Queues `fn(base, arg)` to run on the base's thread and wakes the base.
 * Safe from any thread. Functions posted from one thread run in the order
 * they were posted; every posted function runs exactly once, in a later
 * rill_base_run() iteration or, at the latest, in rill_base_free(). Returns
 * 0, RILL_EINVAL or RILL_ENOMEM (then `fn` will not run). */
RILL_API int rill_base_post(rill_base *base, rill_post_cb fn, void *arg);

/* Forking. After fork() the child's bases are copies of the parent's, but
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

/* The loop's cached monotonic clock in milliseconds, read once per
 * iteration. */
RILL_API uint64_t rill_base_now(const rill_base *base);

/* Re-reads the clock, for callbacks that ran for long. */
RILL_API void rill_base_update_time(rill_base *base);

/* Keeps rill_base_run(RILL_RUN_DEFAULT) running while no handle is active
 * (for example a base that only serves rill_base_post() calls). Counted:
 * every rill_base_ref() needs one rill_base_unref(). Base thread only. */
RILL_API void rill_base_ref(rill_base *base);
RILL_API void rill_base_unref(rill_base *base);

/* The backend in use: "epoll", "kqueue" or "poll". */
RILL_API const char *rill_base_backend(const rill_base *base);

/* Counters since the base was created. */
typedef struct rill_base_stats {
  uint64_t iterations;   /* loop iterations */
  uint64_t events;       /* callbacks dispatched (io, timer, signal, post) */
  uint64_t wait_ns;      /* time spent waiting in the backend */
  uint64_t handles;      /* handles alive now */
  uint64_t active;       /* handles active now */
} rill_base_stats;

RILL_API int rill_base_stats_get(const rill_base *base, rill_base_stats *out);

/* Writes one line per live handle (type, state, fd or due time) to `out`. */
RILL_API int rill_base_dump(const rill_base *base, FILE *out);

/* Replaces the functions rill allocates with (like libevent's
 * event_set_mem_functions). They must behave like malloc/realloc/free and be
 * thread-safe. Call before any base exists: RILL_EBUSY otherwise, because
 * memory from one allocator must not reach the other. NULLs restore the C
 * library's functions. */
typedef void *(*rill_malloc_fn)(size_t size);
typedef void *(*rill_realloc_fn)(void *ptr, size_t size);
typedef void (*rill_free_fn)(void *ptr);
RILL_API int rill_set_allocator(rill_malloc_fn m, rill_realloc_fn r, rill_free_fn f);

#ifdef __cplusplus
}
#endif

#endif /* RILL_BASE_H */
