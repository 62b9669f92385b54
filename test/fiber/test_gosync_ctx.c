/* Contexts (rill/chan.h, G35): a cancel from another fiber wakes a select
 * on the done channel and an interruptible sleep; a deadline ends the
 * context by itself; errors and Go's texts ("context canceled", "context
 * deadline exceeded"); parents end their children; a free while fibers
 * sleep under the context; out of memory. */
#define _GNU_SOURCE 1

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdlib.h>

#include "rill.h"
#include "test_util.h"
#include "gosync_util.h"

#define NS_PER_MS 1000000ull

/* ---- cancel from another fiber wakes a select and a sleep --------------- */

struct cancel {
  rill_ctx *ctx;
  int select_result, select_ok, sleep_result;
  uint64_t sleep_ns;
  int done;
};

static void select_on_done(void *arg) {
  struct cancel *c = (struct cancel *)arg;
  rill_chan *never;
  FCHECK_EQ(rill_chan_new(sizeof(int), 0, &never), 0);
  rill_select_case cases[] = {{never, RILL_SELECT_RECV, NULL, 0},
                              {rill_ctx_done(c->ctx), RILL_SELECT_RECV, NULL, 1}};
  int r = rill_select(cases, 2, RILL_FOREVER);
  c->select_result = r;
  c->select_ok = cases[1].ok;
  FCHECK_EQ(rill_chan_free(never), 0);
  c->done++;
}

static void sleep_under_ctx(void *arg) {
  struct cancel *c = (struct cancel *)arg;
  uint64_t t0 = tu_now_ns();
  int r = rill_ctx_sleep(c->ctx, 60 * RILL_SEC);
  c->sleep_result = r;
  c->sleep_ns = tu_now_ns() - t0;
  c->done++;
}

static void cancel_main(void *arg) {
  struct cancel *c = (struct cancel *)arg;
  rill_base *base = rill_fiber_base();
  FCHECK_EQ(rill_go(base, select_on_done, c), 0);
  FCHECK_EQ(rill_go(base, sleep_under_ctx, c), 0);
  FCHECK_EQ(rill_sleep(10 * RILL_MSEC), 0);
  FCHECK_EQ(c->done, 0);
  FCHECK_EQ(rill_ctx_err(c->ctx), 0);
  FCHECK_EQ(rill_ctx_cancel(c->ctx), 0);
  FCHECK_EQ(rill_ctx_cancel(c->ctx), 0); /* later cancels change nothing */
  FCHECK_EQ(rill_ctx_err(c->ctx), RILL_ECTX_CANCELED);
  yield_n(3);
  FCHECK_EQ(c->done, 2);
  FCHECK_EQ(c->select_result, 1);
  FCHECK_EQ(c->select_ok, 0); /* a closed channel's receive */
  FCHECK_EQ(c->sleep_result, RILL_ECTX_CANCELED);
  FCHECK(c->sleep_ns < 30 * 1000 * NS_PER_MS); /* cut short, not 60 s */
  /* Once ended, a sleep returns the error at once. */
  FCHECK_EQ(rill_ctx_sleep(c->ctx, 60 * RILL_SEC), RILL_ECTX_CANCELED);
  /* Only the context closes its done channel. */
  FCHECK_EQ(rill_chan_close(rill_ctx_done(c->ctx)), RILL_EINVAL);
  FCHECK_EQ(rill_chan_free(rill_ctx_done(c->ctx)), RILL_EINVAL);
}

static void cancel_wakes_select_and_sleep(void **state) {
  struct cancel c;
  (void)state;
  memset(&c, 0, sizeof c);
  assert_int_equal(rill_ctx_new(NULL, &c.ctx), 0);
  run_fiber(cancel_main, &c);
  assert_string_equal(rill_strerror(RILL_ECTX_CANCELED), "context canceled");
  assert_int_equal(rill_ctx_free(c.ctx), 0);
}

/* ---- a deadline; a sleep that runs its full length ---------------------- */

static void deadline_main(void *arg) {
  rill_base *base = rill_fiber_base();
  rill_ctx *ctx = NULL, *past = NULL;
  uint64_t when = 0, t0 = tu_now_ns();
  (void)arg;
  /* Not interrupted: the whole duration, and 0. */
  FCHECK_EQ(rill_ctx_new(NULL, &ctx), 0);
  FCHECK_EQ(rill_ctx_sleep(ctx, 20 * RILL_MSEC), 0);
  FCHECK(tu_now_ns() - t0 >= 20 * NS_PER_MS);
  FCHECK_EQ(rill_ctx_deadline(ctx, &when), 0);
  FCHECK_EQ(rill_ctx_free(ctx), 0);
  /* WithTimeout: the context ends by itself. */
  t0 = tu_now_ns();
  FCHECK_EQ(rill_ctx_new_timeout(base, NULL, 50 * RILL_MSEC, &ctx), 0);
  FCHECK_EQ(rill_ctx_deadline(ctx, &when), 1);
  FCHECK(when >= t0 + 50 * RILL_MSEC); /* both on CLOCK_MONOTONIC */
  FCHECK_EQ(rill_ctx_sleep(ctx, 60 * RILL_SEC), RILL_ECTX_DEADLINE);
  FCHECK(tu_now_ns() - t0 >= 50 * NS_PER_MS);
  FCHECK(tu_now_ns() - t0 < 30000 * NS_PER_MS);
  FCHECK_EQ(rill_ctx_err(ctx), RILL_ECTX_DEADLINE);
  FCHECK_EQ(rill_ctx_cancel(ctx), 0); /* keeps the first error */
  FCHECK_EQ(rill_ctx_err(ctx), RILL_ECTX_DEADLINE);
  FCHECK_EQ(rill_ctx_free(ctx), 0);
  /* A deadline already past ends the context at once. */
  FCHECK_EQ(rill_ctx_new_deadline(base, NULL, rill_time_now(), &past), 0);
  FCHECK_EQ(rill_ctx_err(past), RILL_ECTX_DEADLINE);
  FCHECK_EQ(rill_chan_closed(rill_ctx_done(past)), 1);
  FCHECK_EQ(rill_ctx_free(past), 0);
}

static void deadline_ends_context(void **state) {
  (void)state;
  run_fiber(deadline_main, NULL);
  assert_string_equal(rill_strerror(RILL_ECTX_DEADLINE), "context deadline exceeded");
}

/* ---- parents and children ----------------------------------------------- */

static void children_main(void *arg) {
  rill_base *base = rill_fiber_base();
  rill_ctx *root, *mid, *leaf, *other, *late;
  (void)arg;
  FCHECK_EQ(rill_ctx_new(NULL, &root), 0);
  FCHECK_EQ(rill_ctx_new(root, &mid), 0);
  FCHECK_EQ(rill_ctx_new_timeout(base, mid, 60 * RILL_SEC, &leaf), 0);
  FCHECK_EQ(rill_ctx_new(root, &other), 0);
  FCHECK_EQ(rill_ctx_free(other), 0); /* a child freed first leaves its parent */
  /* Cancelling a child leaves its parent running. */
  FCHECK_EQ(rill_ctx_cancel(leaf), 0);
  FCHECK_EQ(rill_ctx_err(mid), 0);
  FCHECK_EQ(rill_ctx_free(leaf), 0);
  FCHECK_EQ(rill_ctx_new_timeout(base, mid, 60 * RILL_SEC, &leaf), 0);
  /* Cancelling the root ends the whole tree; the 60 s timer goes with it. */
  FCHECK_EQ(rill_ctx_cancel(root), 0);
  FCHECK_EQ(rill_ctx_err(mid), RILL_ECTX_CANCELED);
  FCHECK_EQ(rill_ctx_err(leaf), RILL_ECTX_CANCELED);
  FCHECK_EQ(rill_ctx_sleep(leaf, 60 * RILL_SEC), RILL_ECTX_CANCELED);
  /* A child of an ended context starts ended. */
  FCHECK_EQ(rill_ctx_new(mid, &late), 0);
  FCHECK_EQ(rill_ctx_err(late), RILL_ECTX_CANCELED);
  /* A parent freed before its children: they stay valid. */
  FCHECK_EQ(rill_ctx_free(root), 0);
  FCHECK_EQ(rill_ctx_free(mid), 0);
  FCHECK_EQ(rill_ctx_err(leaf), RILL_ECTX_CANCELED);
  FCHECK_EQ(rill_ctx_free(leaf), 0);
  FCHECK_EQ(rill_ctx_free(late), 0);
  /* A deadline child under a parent with an earlier deadline ends with
   * the parent's. */
  FCHECK_EQ(rill_ctx_new_timeout(base, NULL, 20 * RILL_MSEC, &root), 0);
  FCHECK_EQ(rill_ctx_new_timeout(base, root, 60 * RILL_SEC, &leaf), 0);
  FCHECK_EQ(rill_ctx_sleep(leaf, 60 * RILL_SEC), RILL_ECTX_DEADLINE);
  FCHECK_EQ(rill_ctx_free(leaf), 0);
  FCHECK_EQ(rill_ctx_free(root), 0);
}

static void parents_end_children(void **state) {
  (void)state;
  run_fiber(children_main, NULL); /* and no timer keeps the base running */
}

/* ---- a free while fibers sleep under the context ------------------------ */

struct freeing {
  rill_ctx *ctx;
  int results[3];
  int n;
};

static void freed_sleeper(void *arg) {
  struct freeing *f = (struct freeing *)arg;
  int r = rill_ctx_sleep(f->ctx, 60 * RILL_SEC);
  f->results[f->n++] = r;
}

static void free_main(void *arg) {
  struct freeing *f = (struct freeing *)arg;
  rill_base *base = rill_fiber_base();
  FCHECK_EQ(rill_ctx_new_timeout(base, NULL, 60 * RILL_SEC, &f->ctx), 0);
  for (int i = 0; i < 3; i++)
    FCHECK_EQ(rill_go(base, freed_sleeper, f), 0);
  yield_n(3);
  FCHECK_EQ(f->n, 0);
  FCHECK_EQ(rill_ctx_free(f->ctx), 0); /* Go's deferred cancel() */
  f->ctx = NULL;
  yield_n(3);
  FCHECK_EQ(f->n, 3);
  for (int i = 0; i < 3; i++)
    FCHECK_EQ(f->results[i], RILL_ECTX_CANCELED);
}

static void free_while_sleeping(void **state) {
  struct freeing f;
  (void)state;
  memset(&f, 0, sizeof f);
  run_fiber(free_main, &f);
}

/* ---- outside fibers, bad arguments, out of memory ------------------------ */

static void misuse_and_out_of_memory(void **state) {
  rill_base *base;
  rill_ctx *ctx = NULL;
  tu_alloc_counts before, after;
  (void)state;
  tu_alloc_get(&before);
  base = tu_base_new();
  assert_int_equal(rill_ctx_new(NULL, &ctx), 0);
  assert_int_equal(rill_ctx_sleep(ctx, 1 * RILL_MSEC), RILL_ENOTFIBER);
  /* A callback (not a fiber) may cancel. */
  assert_int_equal(rill_ctx_cancel(ctx), 0);
  assert_int_equal(rill_ctx_free(ctx), 0);
  assert_int_equal(rill_ctx_new(NULL, NULL), RILL_EINVAL);
  assert_int_equal(rill_ctx_new_timeout(NULL, NULL, 1, &ctx), RILL_EINVAL);
  assert_int_equal(rill_ctx_cancel(NULL), RILL_EINVAL);
  assert_null(rill_ctx_done(NULL));
  assert_int_equal(rill_ctx_free(NULL), 0);
  /* The context, then the deadline's timer (whose pool grows first). */
  for (int n = 0; n < 3; n++) {
    tu_alloc_fail_after(n);
    int r = rill_ctx_new_timeout(base, NULL, 60 * RILL_SEC, &ctx);
    tu_alloc_fail_after(-1);
    if (r == 0) {
      assert_int_equal(rill_ctx_free(ctx), 0);
      break;
    }
    assert_int_equal(r, RILL_ENOMEM);
    assert_null(ctx);
  }
  tu_base_free(base);
  tu_alloc_get(&after);
  assert_int_equal(after.live, before.live); /* nothing half-made kept */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(cancel_wakes_select_and_sleep),
      cmocka_unit_test(deadline_ends_context),
      cmocka_unit_test(parents_end_children),
      cmocka_unit_test(free_while_sleeping),
      cmocka_unit_test(misuse_and_out_of_memory),
  };
  if (rill_set_allocator(tu_malloc, tu_realloc, tu_free) != 0)
    return 1;
  return cmocka_run_group_tests(tests, tu_setup_fds, tu_teardown_fds);
}
