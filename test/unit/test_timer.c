/* rill_timer: ordering, accuracy, repeat, restart, stop/free from callbacks,
 * zero timeouts that must not starve io, timers started late in an
 * iteration, accessors, argument checks.
 *
 * Callbacks only record; assertions run after rill_base_run() returned. */
#define _GNU_SOURCE 1

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rill.h"
#include "test_util.h"

#define LIMIT 3000
#define MAXLOG 64

/* A shared log of which timer fired, in order. */
struct tlog {
  rill_base *base;
  int n;
  int id[MAXLOG];
  uint64_t now[MAXLOG];
  uint64_t real_ns[MAXLOG];
  int active_in_cb[MAXLOG];
  uint64_t remaining_in_cb[MAXLOG];
};

struct tctx {
  struct tlog *log;
  int id;
  rill_timer *self;
  /* Behaviour switches. */
  int stop_after;          /* stop itself after that many calls (0: never) */
  int free_after;          /* free itself after that many calls (0: never) */
  rill_timer *victim;      /* stop or free this one on the first call */
  int victim_free;
  int rearm_zero;          /* restart itself with 0 while calls < rearm_zero */
  int calls;
  int victim_rc;
  rill_timer *restart;     /* restart this one with restart_ms */
  uint64_t restart_ms;
  uint64_t restart_now;
};

static void log_cb(rill_timer *t, void *arg) {
  struct tctx *c = (struct tctx *)arg;
  struct tlog *l = c->log;
  c->calls++;
  if (l->n < MAXLOG) {
    l->id[l->n] = c->id;
    l->now[l->n] = rill_base_now(l->base);
    l->real_ns[l->n] = tu_now_ns();
    l->active_in_cb[l->n] = rill_timer_active(t);
    l->remaining_in_cb[l->n] = rill_timer_remaining(t);
    l->n++;
  }
  if (c->victim) {
    if (c->victim_free) {
      rill_timer_free(c->victim);
    } else {
      c->victim_rc = rill_timer_stop(c->victim);
    }
    c->victim = NULL;
  }
  if (c->restart) {
    c->restart_now = rill_base_now(l->base);
    rill_timer_start(c->restart, c->restart_ms * RILL_MSEC, 0);
    c->restart = NULL;
  }
  if (c->rearm_zero && c->calls < c->rearm_zero) rill_timer_start(t, 0, 0);
  if (c->stop_after && c->calls == c->stop_after) rill_timer_stop(t);
  if (c->free_after && c->calls == c->free_after) rill_timer_free(t);
}

static void setup_ctx(struct tctx *c, struct tlog *l, rill_base *base, int id) {
  memset(c, 0, sizeof *c);
  c->log = l;
  c->id = id;
  assert_int_equal(rill_timer_new(base, log_cb, c, &c->self), 0);
}

static void test_order_by_timeout(void **state) {
  static const uint64_t timeouts[] = {40, 10, 30, 1, 20, 0};
  static const int expect[] = {5, 3, 1, 4, 2, 0};
  rill_base *base = tu_base_new();
  struct tlog l;
  struct tctx c[6];
  int i;
  (void)state;
  memset(&l, 0, sizeof l);
  l.base = base;
  for (i = 0; i < 6; i++) {
    setup_ctx(&c[i], &l, base, i);
    assert_int_equal(rill_timer_start(c[i].self, timeouts[i] * RILL_MSEC, 0), 0);
  }
  assert_int_equal(TU_RUN(base, RILL_RUN_DEFAULT, LIMIT), 0);
  assert_int_equal(l.n, 6);
  for (i = 0; i < 6; i++) assert_int_equal(l.id[i], expect[i]);
  for (i = 1; i < 6; i++) assert_true(l.now[i] >= l.now[i - 1]);
  for (i = 0; i < 6; i++) rill_timer_free(c[i].self);
  tu_base_free(base);
}

static void test_same_timeout_start_order(void **state) {
  enum { N = 20 };
  rill_base *base = tu_base_new();
  struct tlog l;
  struct tctx c[N];
  int i;
  (void)state;
  memset(&l, 0, sizeof l);
  l.base = base;
  /* Start in a scrambled creation order so neither address nor creation
   * order can stand in for start order. */
  for (i = 0; i < N; i++) setup_ctx(&c[i], &l, base, i);
  for (i = N - 1; i >= 0; i--) assert_int_equal(rill_timer_start(c[i].self, 10 * RILL_MSEC, 0), 0);
  /* Restarting moves a timer to the end of its due time's queue. */
  assert_int_equal(rill_timer_start(c[N - 1].self, 10 * RILL_MSEC, 0), 0);
  assert_int_equal(TU_RUN(base, RILL_RUN_DEFAULT, LIMIT), 0);
  assert_int_equal(l.n, N);
  for (i = 0; i < N - 1; i++) assert_int_equal(l.id[i], N - 2 - i);
  assert_int_equal(l.id[N - 1], N - 1);

  /* Zero timeouts too. */
  l.n = 0;
  for (i = 0; i < N; i++) assert_int_equal(rill_timer_start(c[(i * 7) % N].self, 0, 0), 0);
  assert_int_equal(TU_RUN(base, RILL_RUN_DEFAULT, LIMIT), 0);
  assert_int_equal(l.n, N);
  for (i = 0; i < N; i++) assert_int_equal(l.id[i], (i * 7) % N);

  for (i = 0; i < N; i++) rill_timer_free(c[i].self);
  tu_base_free(base);
}

static void test_accuracy(void **state) {
  rill_base *base = tu_base_new();
  struct tlog l;
  struct tctx c;
  uint64_t t0, start_now, elapsed_ms;
  (void)state;
  memset(&l, 0, sizeof l);
  l.base = base;
  setup_ctx(&c, &l, base, 0);

  t0 = tu_now_ns();
  start_now = rill_time_now();
  assert_int_equal(rill_timer_start(c.self, 50 * RILL_MSEC, 0), 0);
  assert_int_equal(TU_RUN(base, RILL_RUN_DEFAULT, LIMIT), 0);
  assert_int_equal(l.n, 1);
  /* Never early by the loop's clock ... */
  assert_true(l.now[0] >= start_now + 50 * RILL_MSEC);
  /* ... nor by the real clock. */
  elapsed_ms = (l.real_ns[0] - t0) / 1000000u;
  if (elapsed_ms < 50 || elapsed_ms > 1000) fprintf(stderr, "elapsed %llu ms\n", (unsigned long long)elapsed_ms);
  assert_true(elapsed_ms >= 50);
  assert_true(elapsed_ms <= 1000);
  rill_timer_free(c.self);
  tu_base_free(base);
}

static void test_repeat(void **state) {
  rill_base *base = tu_base_new();
  struct tlog l;
  struct tctx c;
  uint64_t start_now;
  int i;
  (void)state;
  memset(&l, 0, sizeof l);
  l.base = base;
  setup_ctx(&c, &l, base, 0);
  c.stop_after = 5;
  start_now = rill_base_now(base);
  assert_int_equal(rill_timer_start(c.self, 20 * RILL_MSEC, 10 * RILL_MSEC), 0);
  assert_int_equal(TU_RUN(base, RILL_RUN_DEFAULT, LIMIT), 0);
  assert_int_equal(c.calls, 5);
  assert_int_equal(rill_timer_active(c.self), 0);
  for (i = 0; i < 5; i++) assert_true(l.now[i] >= start_now + (20 + 10 * (uint64_t)i) * RILL_MSEC);

  /* free inside the callback of a repeating timer. */
  memset(&l, 0, sizeof l);
  l.base = base;
  c.calls = 0;
  c.stop_after = 0;
  c.free_after = 3;
  assert_int_equal(rill_timer_start(c.self, RILL_MSEC, RILL_MSEC), 0);
  assert_int_equal(TU_RUN(base, RILL_RUN_DEFAULT, LIMIT), 0);
  assert_int_equal(c.calls, 3);
  tu_base_free(base);
}

static void test_restart_pushes_back(void **state) {
  rill_base *base = tu_base_new();
  struct tlog l;
  struct tctx a, b;
  uint64_t start_now;
  (void)state;
  memset(&l, 0, sizeof l);
  l.base = base;
  setup_ctx(&a, &l, base, 0);
  setup_ctx(&b, &l, base, 1);
  start_now = rill_base_now(base);
  assert_int_equal(rill_timer_start(a.self, 100 * RILL_MSEC, 0), 0);
  b.restart = a.self;
  b.restart_ms = 100;
  assert_int_equal(rill_timer_start(b.self, 50 * RILL_MSEC, 0), 0);
  assert_int_equal(TU_RUN(base, RILL_RUN_DEFAULT, LIMIT), 0);
  assert_int_equal(l.n, 2);
  assert_int_equal(l.id[0], 1);
  assert_int_equal(l.id[1], 0);
  assert_int_equal(a.calls, 1); /* restarted, not duplicated */
  assert_true(b.restart_now >= start_now + 50 * RILL_MSEC);
  assert_true(l.now[1] >= b.restart_now + 100 * RILL_MSEC);

  /* Outside callbacks: a restart with a shorter timeout pulls it in. */
  l.n = 0;
  assert_int_equal(rill_timer_start(a.self, 10 * RILL_SEC, 0), 0);
  assert_int_equal(rill_timer_start(a.self, 5 * RILL_MSEC, 0), 0);
  assert_true(rill_timer_remaining(a.self) <= 5 * RILL_MSEC);
  assert_int_equal(TU_RUN(base, RILL_RUN_DEFAULT, LIMIT), 0);
  assert_int_equal(l.n, 1);

  rill_timer_free(a.self);
  rill_timer_free(b.self);
  tu_base_free(base);
}

static void test_stop_or_free_other_due_same_iteration(void **state) {
  rill_base *base = tu_base_new();
  struct tlog l;
  struct tctx a, b, d;
  int pass;
  (void)state;
  for (pass = 0; pass < 2; pass++) {
    memset(&l, 0, sizeof l);
    l.base = base;
    setup_ctx(&a, &l, base, 0);
    setup_ctx(&b, &l, base, 1);
    setup_ctx(&d, &l, base, 2);
    /* Same due time: a runs first (start order) and removes b, which is
     * already due in this very iteration. */
    a.victim = b.self;
    a.victim_free = pass;
    assert_int_equal(rill_timer_start(a.self, 10 * RILL_MSEC, 0), 0);
    assert_int_equal(rill_timer_start(b.self, 10 * RILL_MSEC, 0), 0);
    assert_int_equal(rill_timer_start(d.self, 10 * RILL_MSEC, 0), 0);
    assert_int_equal(TU_RUN(base, RILL_RUN_DEFAULT, LIMIT), 0);
    assert_int_equal(a.calls, 1);
    assert_int_equal(b.calls, 0);
    assert_int_equal(d.calls, 1);
    assert_int_equal(l.n, 2);
    if (pass == 0) {
      assert_int_equal(a.victim_rc, 0);
      assert_int_equal(rill_timer_active(b.self), 0);
      rill_timer_free(b.self);
    }
    rill_timer_free(a.self);
    rill_timer_free(d.self);
  }

  /* A later timer stopped from an earlier one's callback. */
  memset(&l, 0, sizeof l);
  l.base = base;
  setup_ctx(&a, &l, base, 0);
  setup_ctx(&b, &l, base, 1);
  a.victim = b.self;
  assert_int_equal(rill_timer_start(a.self, 5 * RILL_MSEC, 0), 0);
  assert_int_equal(rill_timer_start(b.self, 30 * RILL_MSEC, 0), 0);
  assert_int_equal(TU_RUN(base, RILL_RUN_DEFAULT, LIMIT), 0);
  assert_int_equal(b.calls, 0);
  rill_timer_free(a.self);
  rill_timer_free(b.self);
  tu_base_free(base);
}

static void test_free_in_own_callback(void **state) {
  rill_base *base = tu_base_new();
  struct tlog l;
  struct tctx c;
  (void)state;
  memset(&l, 0, sizeof l);
  l.base = base;
  setup_ctx(&c, &l, base, 0);
  c.free_after = 1;
  assert_int_equal(rill_timer_start(c.self, RILL_MSEC, 0), 0);
  assert_int_equal(TU_RUN(base, RILL_RUN_DEFAULT, LIMIT), 0);
  assert_int_equal(c.calls, 1);
  tu_base_free(base);
}

/* A timer that restarts itself with 0 runs once per iteration and lets io
 * run in between. */
struct starve_io {
  int calls;
};

static void starve_io_cb(rill_io *io, int fd, unsigned events, void *arg) {
  (void)io;
  (void)fd;
  (void)events;
  ((struct starve_io *)arg)->calls++;
}

/* In RILL_RUN_DEFAULT: io runs on every iteration although the timer is
 * always due, and the timer runs at most once per iteration. */
struct starve_default {
  int io_calls;
  rill_io *io;
  struct tctx *timer;
};

static void starve_default_io_cb(rill_io *io, int fd, unsigned events, void *arg) {
  struct starve_default *s = (struct starve_default *)arg;
  (void)fd;
  (void)events;
  if (++s->io_calls == 10) {
    rill_io_stop(io);
    rill_timer_stop(s->timer->self);
  }
}

static void test_zero_timer_does_not_starve_io(void **state) {
  rill_base *base = tu_base_new();
  struct tlog l;
  struct tctx c;
  struct starve_default s;
  rill_base_stats st;
  int p[2];
  (void)state;
  memset(&l, 0, sizeof l);
  memset(&s, 0, sizeof s);
  l.base = base;
  setup_ctx(&c, &l, base, 0);
  c.rearm_zero = 1000000;
  s.timer = &c;
  tu_pipe(p);
  tu_write_byte(p[1]);
  assert_int_equal(rill_io_new(base, p[0], starve_default_io_cb, &s, &s.io), 0);
  assert_int_equal(rill_io_start(s.io, RILL_READ), 0);
  assert_int_equal(rill_timer_start(c.self, 0, 0), 0);
  assert_int_equal(TU_RUN(base, RILL_RUN_DEFAULT, LIMIT), 0);
  assert_int_equal(s.io_calls, 10);
  assert_int_equal(rill_base_stats_get(base, &st), 0);
  assert_true(c.calls >= 9);
  assert_true((uint64_t)c.calls <= st.iterations + 1);
  assert_true(st.iterations <= 12);
  rill_timer_free(c.self);
  rill_io_free(s.io);
  close(p[0]);
  close(p[1]);
  tu_base_free(base);
}

/* RILL_RUN_ONCE and RILL_RUN_NOWAIT are "one iteration": a timer that
 * restarts itself with 0 runs at most once per call, and io once too. */
static void test_zero_timer_once_per_single_iteration(void **state) {
  rill_base *base = tu_base_new();
  struct tlog l;
  struct tctx c;
  struct starve_io s = {0};
  rill_io *io;
  int p[2], i, prev_t, prev_io, worst = 0;
  (void)state;
  memset(&l, 0, sizeof l);
  l.base = base;
  setup_ctx(&c, &l, base, 0);
  c.rearm_zero = 1000000;
  tu_pipe(p);
  tu_write_byte(p[1]);
  assert_int_equal(rill_io_new(base, p[0], starve_io_cb, &s, &io), 0);
  assert_int_equal(rill_io_start(io, RILL_READ), 0);
  assert_int_equal(rill_timer_start(c.self, 0, 0), 0);

  for (i = 0; i < 20; i++) {
    prev_t = c.calls;
    prev_io = s.calls;
    assert_int_equal(TU_RUN(base, (i & 1) ? RILL_RUN_NOWAIT : RILL_RUN_ONCE, LIMIT), 1);
    if (c.calls - prev_t > worst) worst = c.calls - prev_t;
    assert_int_equal(s.calls - prev_io, 1);
  }
  assert_true(c.calls >= 18);
  rill_timer_free(c.self);
  rill_io_free(io);
  close(p[0]);
  close(p[1]);
  tu_base_free(base);
  if (worst > 1) fprintf(stderr, "a 0 ms self-restarting timer ran %d times in one iteration\n", worst);
  assert_true(worst <= 1);
}

/* A timer started late in an iteration counts from its start, and the loop
 * must wait for it from then too, not from when it last woke: after a
 * callback that ran for a second, a 0 ns timer makes the next wait a poll
 * and a 5 ms one a 5 ms wait, where a wait computed from the loop's wake-up
 * would sleep about that second more. The 500 ms bound is a margin for a
 * loaded machine, half the sleep it guards against. */
#define LATE_BUSY_MS 1000
#define LATE_BOUND_MS 500

struct late_start {
  rill_timer *zero, *short_one;
  uint64_t armed_ns, zero_fired_ns, short_fired_ns;
};

static void late_busy_cb(rill_timer *t, void *arg) {
  struct late_start *s = (struct late_start *)arg;
  uint64_t until = tu_now_ns() + LATE_BUSY_MS * RILL_MSEC;
  (void)t;
  while (tu_now_ns() < until) {
  }
  s->armed_ns = tu_now_ns();
  rill_timer_start(s->zero, 0, 0);
  rill_timer_start(s->short_one, 5 * RILL_MSEC, 0);
}

static void late_fired_cb(rill_timer *t, void *arg) {
  (void)t;
  *(uint64_t *)arg = tu_now_ns();
}

static void test_started_late_in_iteration(void **state) {
  rill_base *base = tu_base_new();
  struct late_start s;
  rill_timer *busy;
  rill_base_stats before, after;
  uint64_t zero_ms, short_ms, waited_ms;
  (void)state;
  memset(&s, 0, sizeof s);
  assert_int_equal(rill_timer_new(base, late_busy_cb, &s, &busy), 0);
  assert_int_equal(rill_timer_new(base, late_fired_cb, &s.zero_fired_ns, &s.zero), 0);
  assert_int_equal(rill_timer_new(base, late_fired_cb, &s.short_fired_ns, &s.short_one), 0);
  assert_int_equal(rill_timer_start(busy, 0, 0), 0);
  assert_int_equal(rill_base_stats_get(base, &before), 0);
  assert_int_equal(TU_RUN(base, RILL_RUN_DEFAULT, LIMIT), 0);
  assert_int_equal(rill_base_stats_get(base, &after), 0);
  assert_true(s.zero_fired_ns != 0 && s.short_fired_ns != 0);
  zero_ms = (s.zero_fired_ns - s.armed_ns) / RILL_MSEC;
  short_ms = (s.short_fired_ns - s.armed_ns) / RILL_MSEC;
  waited_ms = (after.wait_ns - before.wait_ns) / RILL_MSEC;
  if (zero_ms >= LATE_BOUND_MS || short_ms >= LATE_BOUND_MS || waited_ms >= LATE_BOUND_MS)
    fprintf(stderr, "after a %d ms callback: 0 ns timer after %llu ms, 5 ms timer after %llu ms, "
            "waits %llu ms\n", LATE_BUSY_MS, (unsigned long long)zero_ms,
            (unsigned long long)short_ms, (unsigned long long)waited_ms);
  assert_true(zero_ms < LATE_BOUND_MS);
  assert_true(short_ms >= 5 && short_ms < LATE_BOUND_MS);
  /* The loop's own account: it did not sleep through the callback's time. */
  assert_true(waited_ms < LATE_BOUND_MS);
  rill_timer_free(busy);
  rill_timer_free(s.zero);
  rill_timer_free(s.short_one);
  tu_base_free(base);
}

static void test_active_remaining(void **state) {
  rill_base *base = tu_base_new();
  struct tlog l;
  struct tctx c;
  uint64_t rem;
  (void)state;
  memset(&l, 0, sizeof l);
  l.base = base;
  setup_ctx(&c, &l, base, 0);

  assert_int_equal(rill_timer_active(c.self), 0);
  assert_int_equal(rill_timer_remaining(c.self), 0);

  assert_int_equal(rill_timer_start(c.self, RILL_SEC, 0), 0);
  assert_int_equal(rill_timer_active(c.self), 1);
  rem = rill_timer_remaining(c.self);
  assert_true(rem <= RILL_SEC);
  assert_true(rem >= 900 * RILL_MSEC);

  assert_int_equal(rill_timer_stop(c.self), 0);
  assert_int_equal(rill_timer_active(c.self), 0);
  assert_int_equal(rill_timer_remaining(c.self), 0);
  assert_int_equal(rill_timer_stop(c.self), 0); /* stopping a stopped timer */

  /* Overdue. */
  assert_int_equal(rill_timer_start(c.self, 0, 0), 0);
  assert_int_equal(rill_timer_active(c.self), 1);
  assert_int_equal(rill_timer_remaining(c.self), 0);

  /* A one-shot timer is disarmed before its callback runs. */
  assert_int_equal(TU_RUN(base, RILL_RUN_DEFAULT, LIMIT), 0);
  assert_int_equal(l.n, 1);
  assert_int_equal(l.active_in_cb[0], 0);
  assert_int_equal(l.remaining_in_cb[0], 0);
  assert_int_equal(rill_timer_active(c.self), 0);

  /* A huge timeout neither overflows into "due now" nor fires. */
  assert_int_equal(rill_timer_start(c.self, UINT64_MAX, 0), 0);
  assert_int_equal(rill_timer_active(c.self), 1);
  assert_true(rill_timer_remaining(c.self) > 1000000 * RILL_SEC);
  assert_int_equal(TU_RUN(base, RILL_RUN_NOWAIT, LIMIT), 1);
  assert_int_equal(TU_RUN(base, RILL_RUN_NOWAIT, LIMIT), 1);
  assert_int_equal(l.n, 1);
  rill_timer_free(c.self);
  tu_base_free(base);
}

static void test_bad_args(void **state) {
  rill_base *base = tu_base_new();
  rill_timer *t = NULL;
  (void)state;
  assert_int_equal(rill_timer_new(NULL, log_cb, NULL, &t), RILL_EINVAL);
  assert_int_equal(rill_timer_new(base, NULL, NULL, &t), RILL_EINVAL);
  assert_int_equal(rill_timer_new(base, log_cb, NULL, NULL), RILL_EINVAL);
  assert_int_equal(rill_timer_start(NULL, RILL_MSEC, 0), RILL_EINVAL);
  assert_int_equal(rill_timer_stop(NULL), RILL_EINVAL);
  rill_timer_free(NULL);
  tu_base_free(base);
}

/* Many timers: a heap, not a list, and every one fires once in order. */
static void test_many_timers(void **state) {
  enum { N = 2000 };
  rill_base *base = tu_base_new();
  struct tlog l;
  struct tctx *c = (struct tctx *)calloc(N, sizeof *c);
  int i, fired = 0;
  (void)state;
  memset(&l, 0, sizeof l);
  l.base = base;
  assert_non_null(c);
  for (i = 0; i < N; i++) {
    setup_ctx(&c[i], &l, base, i);
    assert_int_equal(rill_timer_start(c[i].self, ((uint64_t)((i * 37) % 50)) * RILL_MSEC, 0), 0);
  }
  /* Stop every third one. */
  for (i = 0; i < N; i += 3) assert_int_equal(rill_timer_stop(c[i].self), 0);
  assert_int_equal(TU_RUN(base, RILL_RUN_DEFAULT, 5000), 0);
  for (i = 0; i < N; i++) {
    assert_int_equal(c[i].calls, (i % 3 == 0) ? 0 : 1);
    fired += c[i].calls;
    rill_timer_free(c[i].self);
  }
  assert_int_equal(fired, N - (N + 2) / 3);
  free(c);
  tu_base_free(base);
}

int main(void) {
#define T(f) cmocka_unit_test_setup_teardown(f, tu_setup_fds, tu_teardown_fds)
  const struct CMUnitTest tests[] = {
      T(test_order_by_timeout),
      T(test_same_timeout_start_order),
      T(test_accuracy),
      T(test_repeat),
      T(test_restart_pushes_back),
      T(test_stop_or_free_other_due_same_iteration),
      T(test_free_in_own_callback),
      T(test_zero_timer_does_not_starve_io),
      T(test_zero_timer_once_per_single_iteration),
      T(test_started_late_in_iteration),
      T(test_active_remaining),
      T(test_bad_args),
      T(test_many_timers),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
