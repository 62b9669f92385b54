/* Checks inside fibers. cmocka's assertions longjmp, which must never
 * happen on a fiber's stack: code inside fibers records failures with
 * FCHECK(), and fiber_check_run() fails the test once rill_base_run()
 * returned. Include after cmocka.h and test_util.h. */
#ifndef RILL_TEST_FIBER_CHECK_H
#define RILL_TEST_FIBER_CHECK_H

#include <stdio.h>
#include <string.h>

static int fiber_check_failures;
static char fiber_check_first[512];

static inline void fiber_check_failed(const char *file, int line, const char *what) {
  if (fiber_check_failures++ == 0)
    snprintf(fiber_check_first, sizeof fiber_check_first, "%.80s:%d: %.400s", file, line, what);
  if (fiber_check_failures <= 10) /* thousands of fibers may fail alike */
    fprintf(stderr, "FCHECK failed at %s:%d: %s\n", file, line, what);
}

#define FCHECK(cond)                                  \
  do {                                                \
    if (!(cond))                                      \
      fiber_check_failed(__FILE__, __LINE__, #cond); \
  } while (0)

/* Compares two integers and prints both on failure. */
#define FCHECK_EQ(a, b)                                                               \
  do {                                                                                \
    long long fc_a_ = (long long)(a), fc_b_ = (long long)(b);                         \
    if (fc_a_ != fc_b_) {                                                             \
      char fc_m_[512];                                                                \
      snprintf(fc_m_, sizeof fc_m_, "%.200s == %.200s (%lld vs %lld)", #a, #b, fc_a_, \
               fc_b_);                                                                \
      fiber_check_failed(__FILE__, __LINE__, fc_m_);                                  \
    }                                                                                 \
  } while (0)

#define FCHECK_STREQ(a, b)                                                               \
  do {                                                                                   \
    const char *fc_a_ = (a), *fc_b_ = (b);                                               \
    if (strcmp(fc_a_, fc_b_) != 0) {                                                     \
      char fc_m_[1024];                                                                  \
      snprintf(fc_m_, sizeof fc_m_, "%.150s == %.150s (\"%.300s\" vs \"%.300s\")", #a, #b, \
               fc_a_, fc_b_);                                                            \
      fiber_check_failed(__FILE__, __LINE__, fc_m_);                                     \
    }                                                                                    \
  } while (0)

static inline void fiber_check_reset(void) {
  fiber_check_failures = 0;
  fiber_check_first[0] = '\0';
}

/* Fails the test with the first FCHECK that failed inside a fiber. */
static inline void fiber_check_assert_clean(void) {
  if (fiber_check_failures)
    fail_msg("%d check(s) failed inside fibers; first: %s", fiber_check_failures, fiber_check_first);
}

/* Runs `base` (under the watchdog of limit_ms), frees it, and fails the
 * test with the first FCHECK that failed inside a fiber. */
static inline void fiber_check_run(rill_base *base, unsigned limit_ms) {
  TU_RUN(base, RILL_RUN_DEFAULT, limit_ms);
  assert_int_equal(rill_fiber_count(base), 0);
  tu_base_free(base);
  fiber_check_assert_clean();
}

#endif
