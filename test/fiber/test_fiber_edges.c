/* Fibers at the edges: a stack size that cannot be rounded to pages, and
 * the clock a sleep is measured from (G29). */
#define _GNU_SOURCE 1

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>

#include "rill.h"
#include "test_util.h"

#define LIMIT 60000 /* a hang guard only */

/* Runs the base until nothing is left, then checks every fiber ended and
 * the base frees. */
static void run_and_free(rill_base *base, unsigned limit_ms) {
  TU_RUN(base, RILL_RUN_DEFAULT, limit_ms);
  assert_int_equal(rill_fiber_count(base), 0);
  tu_base_free(base);
}

static void noop(void *arg) { (void)arg; }

/* A stack size near SIZE_MAX used to wrap to 0 when rounded up to pages and
 * crash inside the call: it is refused, and nothing is left behind. */
static void go_stack_huge_size(void **state) {
  rill_base *base = tu_base_new();
  int rc;
  (void)state;
  assert_int_equal(rill_go_stack(base, noop, NULL, SIZE_MAX), RILL_EINVAL);
  assert_int_equal(rill_go_stack(base, noop, NULL, SIZE_MAX - 4095), RILL_EINVAL);
  /* Roundable but more than the address space holds: out of memory. */
  rc = rill_go_stack(base, noop, NULL, SIZE_MAX - 8192);
  assert_true(rc == RILL_ENOMEM || rc == RILL_EINVAL);
  assert_int_equal(rill_go_stack(base, noop, NULL, SIZE_MAX / 2), RILL_ENOMEM);
  assert_int_equal(rill_fiber_count(base), 0);
  /* The base still runs fibers. */
  assert_int_equal(rill_go(base, noop, NULL), 0);
  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  assert_int_equal(rill_fiber_count(base), 0);
  tu_base_free(base);
}

/* G29: a sleep is measured from when it is asked for, not from when the
 * loop last read its clock. The fiber burns 60 ms of CPU first, so the
 * loop's clock is 60 ms old when the sleep is armed; a sleep armed from it
 * would return after 40 ms. A 5 ms ticker keeps the loop reading
 * the clock meanwhile, as any busy base does. */
struct fresh_sleep {
  uint64_t slept_ns;
  int rc;
  rill_timer *ticker;
};

static void fresh_sleep_fiber(void *arg) {
  struct fresh_sleep *t = (struct fresh_sleep *)arg;
  uint64_t burn_end = tu_now_ns() + 60u * 1000000u, t0;
  while (tu_now_ns() < burn_end) {
  }
  t0 = tu_now_ns();
  t->rc = rill_sleep(100 * RILL_MSEC);
  t->slept_ns = tu_now_ns() - t0;
  rill_timer_stop(t->ticker);
}

static void tick(rill_timer *t, void *arg) {
  (void)t;
  (void)arg;
}

static void sleep_measured_from_now(void **state) {
  struct fresh_sleep t = {0, -1, NULL};
  rill_base *base = tu_base_new();
  (void)state;
  assert_int_equal(rill_timer_new(base, tick, NULL, &t.ticker), 0);
  assert_int_equal(rill_timer_start(t.ticker, 5 * RILL_MSEC, 5 * RILL_MSEC), 0);
  assert_int_equal(rill_go(base, fresh_sleep_fiber, &t), 0);
  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  rill_timer_free(t.ticker);
  run_and_free(base, LIMIT);
  assert_int_equal(t.rc, 0);
  if (t.slept_ns < 100u * 1000000u)
    fail_msg("rill_sleep(100 ms) parked only %llu us", (unsigned long long)(t.slept_ns / 1000));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(go_stack_huge_size, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(sleep_measured_from_now, tu_setup_fds, tu_teardown_fds),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
