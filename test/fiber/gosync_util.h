/* Shared by the test_gosync_* tests (channels, select, mutexes, contexts,
 * dial under a context): fiber_check.h's checks, and one fiber run to the
 * end. Include cmocka.h and test_util.h first. */
#ifndef GOSYNC_UTIL_H
#define GOSYNC_UTIL_H

/* A hang guard only, generous for a loaded machine: tests wait for events,
 * never for the clock. */
#define LIMIT 60000

#include "fiber_check.h"

/* Starts one fiber on a new base with `fn(arg)` and runs it to the end. */
static inline void run_fiber(rill_fiber_fn fn, void *arg) {
  rill_base *base = tu_base_new();
  fiber_check_reset();
  assert_int_equal(rill_go(base, fn, arg), 0);
  fiber_check_run(base, LIMIT);
}

/* Gives the other ready fibers `n` turns. */
static inline void yield_n(int n) {
  for (int i = 0; i < n; i++)
    FCHECK_EQ(rill_yield(), 0);
}

#endif
