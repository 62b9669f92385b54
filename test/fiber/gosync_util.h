/* Shared by the test_gosync_* tests (channels, select, mutexes, contexts,
 * dial under a context): checks that are safe inside fibers, and a run that
 * ends with every fiber gone and the base freed.
 *
 * cmocka's assertions longjmp, which must never happen on a fiber's stack:
 * code inside fibers records failures with FCHECK() and the test asserts
 * once rill_base_run() returned. Include cmocka.h and test_util.h first. */
#ifndef GOSYNC_UTIL_H
#define GOSYNC_UTIL_H

#include <stdio.h>
#include <string.h>

/* A hang guard only, generous for a loaded machine: tests wait for events,
 * never for the clock. */
#define LIMIT 60000

static int g_failures;
static char g_first[512];

static inline void check_failed(const char *file, int line, const char *what) {
  if (g_failures++ == 0)
    snprintf(g_first, sizeof g_first, "%.80s:%d: %.400s", file, line, what);
  fprintf(stderr, "FCHECK failed at %s:%d: %s\n", file, line, what);
}

#define FCHECK(cond)                           \
  do {                                         \
    if (!(cond))                               \
      check_failed(__FILE__, __LINE__, #cond); \
  } while (0)

#define FCHECK_EQ(a, b)                                                           \
  do {                                                                            \
    long long a_ = (long long)(a), b_ = (long long)(b);                           \
    if (a_ != b_) {                                                               \
      char m_[512];                                                               \
      snprintf(m_, sizeof m_, "%.200s == %.200s (%lld vs %lld)", #a, #b, a_, b_); \
      check_failed(__FILE__, __LINE__, m_);                                       \
    }                                                                             \
  } while (0)

static inline void reset_checks(void) {
  g_failures = 0;
  g_first[0] = '\0';
}

static inline void assert_checks(void) {
  if (g_failures)
    fail_msg("%d check(s) failed inside fibers; first: %s", g_failures, g_first);
}

/* Runs the base until nothing is left, then checks every fiber ended, the
 * base frees, and no check failed. */
static inline void run_and_free(rill_base *base) {
  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  assert_int_equal(rill_fiber_count(base), 0);
  tu_base_free(base);
  assert_checks();
}

/* Starts one fiber on a new base with `fn(arg)` and runs it to the end. */
static inline void run_fiber(rill_fiber_fn fn, void *arg) {
  rill_base *base = tu_base_new();
  reset_checks();
  assert_int_equal(rill_go(base, fn, arg), 0);
  run_and_free(base);
}

/* Gives the other ready fibers `n` turns. */
static inline void yield_n(int n) {
  for (int i = 0; i < n; i++)
    FCHECK_EQ(rill_yield(), 0);
}

#endif
