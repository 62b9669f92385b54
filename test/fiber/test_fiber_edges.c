/* Fibers at the edges: a stack size that cannot be rounded to pages, the
 * clock a sleep is measured from (G29), a yield after a long run, and a
 * fiber woken by the first of many descriptors ready at once. */
#define _GNU_SOURCE 1

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>
#include <string.h>
#include <unistd.h>

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

/* A fiber that yields after running for a second is resumed at once. A
 * run of the scheduler resumes yielding fibers itself up to a budget (64
 * switches), then arms its kick, a 0 ns timer, so that the loop polls
 * first: that poll must not become a sleep as long as the run took, as a
 * wait computed from the loop's last wake-up would. 1,000 yields pass the
 * budget whatever it is tuned to. The 500 ms bound is a margin for a
 * loaded machine, half the sleep it guards against. */
#define KICK_BUSY_MS 1000
#define KICK_BOUND_MS 500
#define KICK_YIELDS 1000

static void busy_then_yield(void *arg) {
  uint64_t *yields_took_ns = (uint64_t *)arg;
  uint64_t burn_end = tu_now_ns() + KICK_BUSY_MS * RILL_MSEC, t0;
  int i;
  while (tu_now_ns() < burn_end) {
  }
  t0 = tu_now_ns();
  for (i = 0; i < KICK_YIELDS; i++)
    if (rill_yield() != 0)
      return;
  *yields_took_ns = tu_now_ns() - t0;
}

static void yields_after_long_run_poll(void **state) {
  uint64_t yields_took_ns = UINT64_MAX;
  rill_base *base = tu_base_new();
  (void)state;
  assert_int_equal(rill_go(base, busy_then_yield, &yields_took_ns), 0);
  run_and_free(base, LIMIT);
  assert_true(yields_took_ns != UINT64_MAX);
  if (yields_took_ns >= KICK_BOUND_MS * RILL_MSEC)
    fail_msg("after a %d ms run, %d yields took %llu ms", KICK_BUSY_MS, KICK_YIELDS,
             (unsigned long long)(yields_took_ns / RILL_MSEC));
}

/* A fiber woken by the first of 40 descriptors ready in one wait runs
 * before the loop has dispatched more than 16 of them (lib/core/io.cpp's
 * dispatch_run): a server with a thousand ready connections answers the
 * first while its socket is still in the cache, instead of after reading
 * all thousand. It ran after all 40 before readiness was dispatched in
 * runs. */
#define READY_PIPES 40

struct many_ready {
  int pipes[READY_PIPES][2];
  rill_io *watchers[READY_PIPES];
  rill_waitgroup *wg;
  int dispatched;  /* io callbacks so far */
  int seen;        /* dispatched when the woken fiber ran */
  int wait_rc;
};

static void on_pipe_readable(rill_io *io, int fd, unsigned events, void *arg) {
  struct many_ready *t = (struct many_ready *)arg;
  (void)events;
  tu_drain(fd);
  rill_io_stop(io);
  if (++t->dispatched == 1)
    rill_waitgroup_done(t->wg);
}

static void wait_for_first(void *arg) {
  struct many_ready *t = (struct many_ready *)arg;
  int i;
  /* Every pipe readable before the loop polls again: one wait sees all. */
  for (i = 0; i < READY_PIPES; i++)
    if (write(t->pipes[i][1], "x", 1) != 1)
      t->wait_rc = -1000;
  t->wait_rc += rill_waitgroup_wait(t->wg);
  t->seen = t->dispatched;
}

static void woken_within_a_run_of_events(void **state) {
  struct many_ready t;
  rill_base *base = tu_base_new();
  int i;
  (void)state;
  memset(&t, 0, sizeof t);
  t.seen = -1;
  assert_int_equal(rill_waitgroup_new(&t.wg), 0);
  rill_waitgroup_add(t.wg, 1);
  for (i = 0; i < READY_PIPES; i++) {
    tu_pipe(t.pipes[i]);
    assert_int_equal(rill_io_new(base, t.pipes[i][0], on_pipe_readable, &t, &t.watchers[i]), 0);
    assert_int_equal(rill_io_start(t.watchers[i], RILL_READ), 0);
  }
  assert_int_equal(rill_go(base, wait_for_first, &t), 0);
  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  assert_int_equal(t.wait_rc, 0);
  assert_int_equal(t.dispatched, READY_PIPES);
  assert_true(t.seen >= 1);
  assert_true(t.seen <= 16);
  for (i = 0; i < READY_PIPES; i++) {
    rill_io_free(t.watchers[i]);
    close(t.pipes[i][0]);
    close(t.pipes[i][1]);
  }
  rill_waitgroup_free(t.wg);
  tu_base_free(base);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(go_stack_huge_size, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(sleep_measured_from_now, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(yields_after_long_run_poll, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(woken_within_a_run_of_events, tu_setup_fds, tu_teardown_fds),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
