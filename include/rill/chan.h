/** @file
 * rill — Go's coordination shapes for fibers: channels, select, mutexes,
 * conditions and contexts (docs/go-model.md G35, G33).
 *
 * With these, the usual Go server shapes (worker pools, fan-in, timeouts,
 * cancellation) are written in C the way they are written in Go; see
 * samples/go_shapes.c.
 *
 * Threads. Every handle here belongs to the thread that created it, and is
 * shared by the fibers that run on that thread, whatever base each fiber
 * belongs to (a fiber parked on a channel is woken through its own base).
 * Create them on the thread that runs the base: inside a fiber, inside a
 * callback, or before rill_base_run() on the thread that will call it. Any
 * call from another thread returns RILL_EWRONGTHREAD and changes nothing
 * (to reach fibers from another thread, rill_base_post() a function that
 * makes the call on the right one).
 *
 * Blocking and not. Calls that may wait (rill_chan_send, rill_chan_recv,
 * rill_select, rill_mutex_lock, rill_cond_wait, rill_ctx_sleep,
 * rill_net_dial_ctx) park the calling fiber and must be made inside a
 * fiber: outside one they return RILL_ENOTFIBER, even when they would not
 * have had to wait. Every other call (the try forms, close, cancel, len,
 * unlock, signal, free) works from fibers and from callbacks alike, so a
 * callback can hand work to fibers or cancel them.
 *
 * Memory. Handles come from rill's allocator (rill_set_allocator); creating
 * one returns RILL_ENOMEM when it fails, and nothing else is allocated
 * after creation: a send, a receive, a lock or a select over at most
 * RILL_SELECT_INLINE cases allocates nothing (a parked fiber waits in a
 * record on its own stack). A select with a timeout takes a timer handle
 * from its base's pool, which allocates only while the pool grows.
 *
 * Freeing a handle fibers are parked on is defined, never a crash: they
 * wake at once with RILL_ECLOSED (a lock or a receive that then holds
 * nothing, a send whose value was not taken), and the memory goes at once,
 * since a woken fiber no longer touches the handle. Call no function on a
 * handle after freeing it (as for every rill handle). */
#ifndef RILL_CHAN_H
#define RILL_CHAN_H

#include <stddef.h>
#include <stdint.h>

#include "rill/base.h"
#include "rill/fiber.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- channels ----------------------------------------------------------- */

/** A channel of fixed-size elements (Go's chan T). Values are copied in and
 * out (elem_size bytes each). Unbuffered (capacity 0): a send parks until a
 * receiver takes the value, a receive until a sender brings one
 * (rendezvous). Buffered (capacity N): a send parks only while N values
 * wait in the buffer, a receive only while none does. Parked senders and
 * receivers are served first come, first served. elem_size may be 0 (a
 * channel of signals, like Go's chan struct{}). */
typedef struct rill_chan rill_chan;

/** make(chan T, capacity). Returns 0; RILL_EINVAL for a NULL `out` or an
 * elem_size * capacity that overflows; RILL_ENOMEM. */
RILL_API int rill_chan_new(size_t elem_size, size_t capacity, rill_chan **out);

/** ch <- *elem. Returns 0 once the value was taken by a receiver or put in
 * the buffer, parking until then. Sending on a closed channel (Go panics)
 * returns RILL_ECLOSED, and the value stays the caller's; so does a send
 * parked when the channel is closed or freed. `elem` may be NULL only when
 * elem_size is 0. RILL_EINVAL for a NULL `ch`. */
RILL_API int rill_chan_send(rill_chan *ch, const void *elem);

/** v, ok := <-ch. Copies the next value to `elem` (may be NULL to drop it)
 * and sets *ok (may be NULL) to 1, parking until there is one. Once the
 * channel is closed, the values still buffered come first; then every
 * receive returns 0 at once with *ok = 0 and `elem` zeroed (Go's zero
 * value). Returns 0, or RILL_ECLOSED when the channel was freed while this
 * fiber waited. */
RILL_API int rill_chan_recv(rill_chan *ch, void *elem, int *ok);

/** The forms that never park (Go's select with a default), usable outside
 * fibers: 0 if done, RILL_EAGAIN if the operation would have to wait, and
 * for a send RILL_ECLOSED on a closed channel. A receive from a closed,
 * drained channel returns 0 with *ok = 0. @{ */
RILL_API int rill_chan_try_send(rill_chan *ch, const void *elem);
RILL_API int rill_chan_try_recv(rill_chan *ch, void *elem, int *ok);
/** @} */

/** close(ch): no more values will be sent. Every parked receiver wakes with
 * *ok = 0; every parked sender wakes with RILL_ECLOSED (its value not
 * taken). Values already buffered stay for receivers. Returns 0, or
 * RILL_ECLOSED if it was closed already (Go panics), or RILL_EINVAL for a
 * context's done channel, which only its context closes. */
RILL_API int rill_chan_close(rill_chan *ch);

/** len(ch), cap(ch): values waiting in the buffer, and its size. 0 for NULL
 * or from another thread. @{ */
RILL_API size_t rill_chan_len(const rill_chan *ch);
RILL_API size_t rill_chan_cap(const rill_chan *ch);
/** @} */
/** 1 once closed, else 0. */
RILL_API int rill_chan_closed(const rill_chan *ch);

/** Frees the channel; buffered values are dropped, and parked fibers wake
 * with RILL_ECLOSED (see "Freeing" above). Returns 0; RILL_EINVAL for a
 * context's done channel (rill_ctx_free frees it);
 * RILL_EWRONGTHREAD. NULL is a no-op returning 0. */
RILL_API int rill_chan_free(rill_chan *ch);

/* ---- select ------------------------------------------------------------- */

/** rill_select_case.op: a send or a receive. @{ */
#define RILL_SELECT_SEND 1
#define RILL_SELECT_RECV 2
/** @} */

/** One case of a select: send *elem to `chan`, or receive from it into
 * `elem` (may be NULL) with `ok` set as rill_chan_recv() sets *ok. A case
 * with a NULL `chan` is never ready (Go's nil channel). */
typedef struct rill_select_case {
  rill_chan *chan; /**< the channel; NULL: never ready */
  int op; /**< RILL_SELECT_SEND or RILL_SELECT_RECV */
  void *elem; /**< the value sent, or where the value received goes */
  int ok; /**< receive: out, 1 for a value, 0 for closed and drained */
} rill_select_case;

/** No timeout, for rill_select(). */
#define RILL_FOREVER UINT64_MAX

/** Cases a select handles without allocating; more cost one allocation
 * each time (RILL_ENOMEM when that fails). At most RILL_SELECT_MAX. @{ */
#define RILL_SELECT_INLINE 16
#define RILL_SELECT_MAX 65536
/** @} */

/** Go's select. Waits until one of the `n` cases can proceed, completes
 * exactly that one, and returns its index. When several are ready, one is
 * chosen pseudo-randomly (uniformly), as Go does, so no case starves.
 * `timeout` (a duration: N * RILL_MSEC, or RILL_FOREVER) bounds the wait,
 * measured from the real time of the call (G29): when it passes first,
 * RILL_ETIMEOUT (Go's `case <-time.After(d):`); 0 only looks. A parked
 * select waits on every channel at once and, when one case completes, is
 * removed from all the others before anything else runs, so no value is
 * lost to it and no second case completes.
 *
 * A send case whose channel is closed is ready, and chosen makes the
 * select return RILL_ECLOSED with nothing sent (Go panics). A channel
 * freed under a parked select also makes it return RILL_ECLOSED.
 * RILL_EINVAL for a NULL `cases` with n > 0, n > RILL_SELECT_MAX, a bad
 * `op`, or a send case with a NULL elem on a channel with elem_size > 0.
 * n == 0 with RILL_FOREVER would wait forever (Go's empty select): that is
 * RILL_EINVAL too. */
RILL_API int rill_select(rill_select_case *cases, size_t n, uint64_t timeout);

/** select with a default: completes a ready case as rill_select() does, or
 * returns RILL_EAGAIN at once (the default branch). Never parks; works
 * outside fibers. */
RILL_API int rill_select_try(rill_select_case *cases, size_t n);

/* ---- mutexes and conditions --------------------------------------------- */

/** Go's sync.Mutex for fibers. Unlike Go's, which lets a running goroutine
 * barge ahead of waiting ones, the lock is handed over first come, first
 * served: unlock gives it straight to the oldest waiter (Go's "starvation
 * mode", always), so no fiber waits forever. As in Go, the mutex is not
 * tied to a fiber: any fiber (or callback) may unlock it. */
typedef struct rill_mutex rill_mutex;

/** Returns 0, RILL_EINVAL for NULL, RILL_ENOMEM. */
RILL_API int rill_mutex_new(rill_mutex **out);
/** Parks until the mutex is this fiber's. RILL_ECLOSED if it was freed
 * meanwhile (the fiber does not hold it). */
RILL_API int rill_mutex_lock(rill_mutex *mu);
/** 0 if locked now, RILL_EAGAIN if held (Go's TryLock). */
RILL_API int rill_mutex_trylock(rill_mutex *mu);
/** Releases it, to the oldest waiter if any. -EPERM if it was not locked
 * (Go: "fatal error: sync: unlock of unlocked mutex"). */
RILL_API int rill_mutex_unlock(rill_mutex *mu);
/** Frees it; parked lockers wake with RILL_ECLOSED. NULL is a no-op. */
RILL_API int rill_mutex_free(rill_mutex *mu);

/** Go's sync.Cond: fibers wait for a condition guarded by a mutex. */
typedef struct rill_cond rill_cond;
/** Returns 0, RILL_EINVAL for NULL, RILL_ENOMEM. */
RILL_API int rill_cond_new(rill_cond **out);
/** Unlocks `mu` (which the caller holds), parks until signalled, then locks
 * `mu` again before returning 0, as Go's Wait does; check the condition in
 * a loop. RILL_ECLOSED if the condition was freed meanwhile (`mu` is locked
 * again all the same). -EPERM if `mu` was not locked. The mutex must stay
 * alive while fibers wait with it (free it only after they have left). */
RILL_API int rill_cond_wait(rill_cond *c, rill_mutex *mu);
/** Wakes the oldest waiter / every waiter. @{ */
RILL_API int rill_cond_signal(rill_cond *c);
RILL_API int rill_cond_broadcast(rill_cond *c);
/** @} */
/** Frees it; parked waiters wake with RILL_ECLOSED. NULL is a no-op. */
RILL_API int rill_cond_free(rill_cond *c);

/* ---- contexts ------------------------------------------------------------ */

/** Go's context.Context with cancel and deadline: something a group of
 * fibers can be told to stop through. A context ends once, with an error:
 * RILL_ECTX_CANCELED ("context canceled") when rill_ctx_cancel() was
 * called, RILL_ECTX_DEADLINE ("context deadline exceeded") when its
 * deadline passed. It then closes its done channel, which any number of
 * fibers can wait on in a select, and ends its children, with the same
 * error. */
typedef struct rill_ctx rill_ctx;

/** context.WithCancel(parent). `parent` may be NULL (context.Background());
 * a child of an ended context starts ended with the parent's error.
 * Returns 0, RILL_EINVAL for NULL `out`, RILL_ENOMEM. */
RILL_API int rill_ctx_new(rill_ctx *parent, rill_ctx **out);

/** context.WithDeadline / WithTimeout: as rill_ctx_new, and the context
 * also ends with RILL_ECTX_DEADLINE at `deadline`, a point in time on
 * rill_time_now()'s clock (rill_time_now() + 50 * RILL_MSEC), or
 * `timeout` after the real time of the call. A parent's earlier deadline still applies (the
 * parent ends the child). The deadline's timer runs on `base` (one handle
 * on it until the context ends, so rill_base_run keeps running for it). A
 * deadline already past ends the context at once. RILL_EINVAL for a NULL
 * base. @{ */
RILL_API int rill_ctx_new_deadline(rill_base *base, rill_ctx *parent, uint64_t deadline, rill_ctx **out);
RILL_API int rill_ctx_new_timeout(rill_base *base, rill_ctx *parent, uint64_t timeout, rill_ctx **out);
/** @} */

/** cancel(): ends the context with RILL_ECTX_CANCELED if it has not ended
 * yet (later calls change nothing), closing its done channel and ending
 * its children. From any fiber or callback of the owning thread. Returns
 * 0, RILL_EINVAL for NULL, RILL_EWRONGTHREAD. */
RILL_API int rill_ctx_cancel(rill_ctx *ctx);

/** ctx.Done(): a channel (elem_size 0) closed when the context ends, for
 * select cases (RILL_SELECT_RECV). The context owns it: do not send on,
 * close or free it. NULL for NULL. */
RILL_API rill_chan *rill_ctx_done(rill_ctx *ctx);

/** ctx.Err(): 0 while the context runs, then RILL_ECTX_CANCELED or
 * RILL_ECTX_DEADLINE. RILL_EINVAL for NULL, RILL_EWRONGTHREAD. */
RILL_API int rill_ctx_err(const rill_ctx *ctx);

/** ctx.Deadline(): 1 and *deadline (rill_time_now()'s clock) if the context has one of
 * its own, else 0. */
RILL_API int rill_ctx_deadline(const rill_ctx *ctx, uint64_t *deadline);

/** Cancels the context (as Go's deferred cancel() does), detaches it from
 * its parent and frees it. Its children end, canceled, and stay valid
 * until freed themselves. Fibers in a select on its done channel wake as
 * for a close (the receive case completes, ok = 0). NULL is a no-op. */
RILL_API int rill_ctx_free(rill_ctx *ctx);

/** The interruptible sleep: parks for `duration` (measured from the real
 * time of the call, as rill_sleep()), or until `ctx` ends, whichever comes
 * first. Returns 0 after the full duration, or the context's error
 * (RILL_ECTX_CANCELED, RILL_ECTX_DEADLINE) at once when it ended first or
 * had already ended: Go's
 *   select { case <-time.After(d): case <-ctx.Done(): return ctx.Err() }.
 * `ctx` may be NULL (an uninterruptible rill_sleep). */
RILL_API int rill_ctx_sleep(rill_ctx *ctx, uint64_t duration);

#ifdef __cplusplus
}
#endif

#endif /* RILL_CHAN_H */
