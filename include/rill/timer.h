/** @file
 * rill — timers.
 *
 * One-shot and repeating timers on the monotonic clock, in nanoseconds
 * (RILL_MSEC and friends in rill/base.h). Starting, stopping and
 * restarting cost O(1) and never allocate (a timing wheel:
 * docs/timers.md). Timers fire in the order of their due times, to the
 * nanosecond, never before; timers that fall due at the same time fire in
 * the order they were started. The loop sleeps exactly until the next timer
 * is due.
 *
 * Every function taking a timer returns RILL_EINVAL for NULL or a pointer
 * that is not a live timer (freed, or another type of handle: see "Stale
 * handles" in rill/base.h), and RILL_ECLOSED for a timer freed inside its
 * own callback that is still running. */
#ifndef RILL_TIMER_H
#define RILL_TIMER_H

#include "rill/base.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A timer (opaque): see the top of this file. */
typedef struct rill_timer rill_timer;

/** Runs on the base's thread when the timer fires. */
typedef void (*rill_timer_cb)(rill_timer *timer, void *arg);

/** Creates a stopped timer. */
RILL_API int rill_timer_new(rill_base *base, rill_timer_cb cb, void *arg, rill_timer **out);

/** Arms the timer to fire `timeout` nanoseconds after the call (the clock is
 * read now, G29), then every `repeat` nanoseconds if that is not 0. Restarts
 * an active timer. Durations past about 146 years are capped. */
RILL_API int rill_timer_start(rill_timer *timer, uint64_t timeout, uint64_t repeat);

/** Disarms the timer; stopping a stopped timer is fine. */
RILL_API int rill_timer_stop(rill_timer *timer);

/** 1 while armed, 0 otherwise (a one-shot timer is disarmed before its
 * callback runs; 0 for a freed timer). */
RILL_API int rill_timer_active(const rill_timer *timer);

/** Nanoseconds until the timer is due, from now (0 if overdue or stopped);
 * right after rill_timer_start(), never more than its timeout. */
RILL_API uint64_t rill_timer_remaining(const rill_timer *timer);

/** Stops and frees the timer. NULL, and a pointer that is not a live timer,
 * are no-ops. */
RILL_API void rill_timer_free(rill_timer *timer);

#ifdef __cplusplus
}
#endif

#endif /* RILL_TIMER_H */
