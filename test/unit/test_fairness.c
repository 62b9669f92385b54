/* A fair loop: work that queues more work of its own kind, forever, must
 * not keep a 10 ms timer and a ready io watcher from running; the loop
 * keeps iterating.
 *
 * Three kinds of self-renewing work:
 *  - a report on the pending queue that queues another (here: a numeric
 *    lookup whose callback starts the next one; every answer is a report).
 *    The queue used to run until empty, so this spun inside one iteration
 *    forever; it now runs a snapshot per pass and a bounded number of
 *    passes per iteration (lib/core/pending.h);
 *  - a posted function that posts itself again (one batch per wake-up);
 *  - a zero-delay timer that restarts itself (due timers run once per
 *    iteration).
 * Each test stops the work from the 10 ms timer, so it ends by events; the
 * watchdog of tu_run() is only a hang guard. Before the fix the reports
 * test never returned from its first iteration. */
#define _GNU_SOURCE 1

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rill.h"
#include "test_util.h"

struct fair {
  rill_base *base;
  int stop;             /* set by the 10 ms timer: the work ends */
  uint64_t work_runs;   /* runs of the self-renewing work */
  int timer_fired;
  int io_fired;
  int work_error;
};

static void on_deadline(rill_timer *t, void *arg) {
  (void)t;
  struct fair *f = arg;
  f->timer_fired++;
  f->stop = 1;
}

static void on_readable(rill_io *io, int fd, unsigned events, void *arg) {
  (void)events;
  struct fair *f = arg;
  f->io_fired++;
  tu_drain(fd);
  rill_io_stop(io);
}

/* Starts the 10 ms timer and a watcher on a descriptor that is readable
 * already, runs the loop and checks that both ran while the work went on. */
static void run_against(struct fair *f) {
  rill_timer *t;
  rill_io *io;
  rill_base_stats before, after;
  int sv[2];
  tu_socketpair(sv);
  tu_write_byte(sv[1]);
  assert_int_equal(rill_timer_new(f->base, on_deadline, f, &t), 0);
  assert_int_equal(rill_timer_start(t, 10 * RILL_MSEC, 0), 0);
  assert_int_equal(rill_io_new(f->base, sv[0], on_readable, f, &io), 0);
  assert_int_equal(rill_io_start(io, RILL_READ), 0);
  assert_int_equal(rill_base_stats_get(f->base, &before), 0);

  TU_RUN(f->base, RILL_RUN_DEFAULT, 30000);

  assert_int_equal(rill_base_stats_get(f->base, &after), 0);
  assert_int_equal(f->work_error, 0);
  assert_int_equal(f->timer_fired, 1);
  assert_int_equal(f->io_fired, 1);
  /* The work went on, a bounded amount per iteration (on a loaded machine
   * everything may even fit in one iteration: the timer is then due at its
   * end). */
  assert_true(f->work_runs > 1);
  assert_true(f->work_runs <= 64 * (after.iterations - before.iterations));
  rill_timer_free(t);
  rill_io_free(io);
  close(sv[0]);
  close(sv[1]);
}

/* ---- reports that queue reports ------------------------------------------ */

#ifdef TU_HAVE_CARES

static void next_lookup(struct fair *f);

static void on_lookup(rill_dns_query *q, int status, const rill_dns_result *res, void *arg) {
  (void)q;
  (void)res;
  struct fair *f = arg;
  f->work_runs++;
  if (status != 0)
    f->work_error = status;
  next_lookup(f);
}

static void next_lookup(struct fair *f) {
  if (f->stop || f->work_error)
    return;
  /* A numeric name is answered at once, through the pending queue. */
  int err = rill_resolve(f->base, "127.0.0.1", AF_INET, NULL, on_lookup, f, NULL);
  if (err)
    f->work_error = err;
}

static void test_reports_that_requeue(void **state) {
  (void)state;
  struct fair f;
  memset(&f, 0, sizeof f);
  f.base = tu_base_new();
  next_lookup(&f);
  run_against(&f);
  tu_base_free(f.base);
}
#else
static void test_reports_that_requeue(void **state) {
  (void)state;
  skip(); /* needs the resolver */
}
#endif

/* ---- posts that post --------------------------------------------------- */

static void repost(rill_base *base, void *arg) {
  struct fair *f = arg;
  f->work_runs++;
  if (f->stop) {
    rill_base_unref(base);
    return;
  }
  int err = rill_base_post(base, repost, f);
  if (err) {
    f->work_error = err;
    rill_base_unref(base);
  }
}

static void test_posts_that_repost(void **state) {
  (void)state;
  struct fair f;
  memset(&f, 0, sizeof f);
  f.base = tu_base_new();
  rill_base_ref(f.base); /* the posts keep the loop alive until they end */
  assert_int_equal(rill_base_post(f.base, repost, &f), 0);
  run_against(&f);
  tu_base_free(f.base);
}

/* ---- a zero-delay timer that restarts itself ----------------------------- */

static void restart_now(rill_timer *t, void *arg) {
  struct fair *f = arg;
  f->work_runs++;
  if (!f->stop)
    f->work_error = rill_timer_start(t, 0, 0);
}

static void test_zero_timer_that_restarts(void **state) {
  (void)state;
  struct fair f;
  rill_timer *t;
  memset(&f, 0, sizeof f);
  f.base = tu_base_new();
  assert_int_equal(rill_timer_new(f.base, restart_now, &f, &t), 0);
  assert_int_equal(rill_timer_start(t, 0, 0), 0);
  run_against(&f);
  rill_timer_free(t);
  tu_base_free(f.base);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_reports_that_requeue, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_posts_that_repost, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_zero_timer_that_restarts, tu_setup_fds,
                                      tu_teardown_fds),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
