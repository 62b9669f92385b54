/* rill_base_post: many threads, exactly once and in per-thread order; posts
 * from a posted function run later; queued posts run during free. */
#define _GNU_SOURCE 1

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "rill.h"
#include "test_util.h"

#define THREADS 4
#define PER_THREAD 10000

/* ---- many threads ------------------------------------------------------- */

struct mt {
  rill_base *base;
  /* Touched only on the base's thread. */
  int next[THREADS];
  int out_of_order;
  int bad_arg;
  int total;
  /* Written by the posting threads. */
  int post_failures[THREADS];
};

struct poster {
  struct mt *mt;
  int id;
};

static struct mt *g_mt;

static void mt_cb(rill_base *base, void *arg) {
  uintptr_t v = (uintptr_t)arg;
  int thread = (int)(v >> 20);
  int seq = (int)(v & 0xfffff);
  struct mt *m = g_mt;
  if (base != m->base || thread < 0 || thread >= THREADS) {
    m->bad_arg++;
    return;
  }
  if (seq != m->next[thread]) m->out_of_order++;
  m->next[thread] = seq + 1;
  if (++m->total == THREADS * PER_THREAD) rill_base_unref(base);
}

static void *poster_main(void *p) {
  struct poster *ps = (struct poster *)p;
  int i;
  for (i = 0; i < PER_THREAD; i++) {
    uintptr_t v = ((uintptr_t)ps->id << 20) | (uintptr_t)i;
    if (rill_base_post(ps->mt->base, mt_cb, (void *)v) != 0) ps->mt->post_failures[ps->id]++;
  }
  return NULL;
}

static void test_many_threads(void **state) {
  struct mt m;
  struct poster ps[THREADS];
  pthread_t th[THREADS];
  int i, rc;
  (void)state;
  memset(&m, 0, sizeof m);
  m.base = tu_base_new();
  g_mt = &m;
  /* Nothing is active but the reference; the last post drops it. */
  rill_base_ref(m.base);
  for (i = 0; i < THREADS; i++) {
    ps[i].mt = &m;
    ps[i].id = i;
    assert_int_equal(pthread_create(&th[i], NULL, poster_main, &ps[i]), 0);
  }
  rc = tu_run(m.base, RILL_RUN_DEFAULT, 60000);
  for (i = 0; i < THREADS; i++) pthread_join(th[i], NULL);
  assert_false(tu_run_timed_out());
  assert_int_equal(rc, 0);
  for (i = 0; i < THREADS; i++) {
    assert_int_equal(m.post_failures[i], 0);
    assert_int_equal(m.next[i], PER_THREAD);
  }
  assert_int_equal(m.bad_arg, 0);
  assert_int_equal(m.out_of_order, 0);
  assert_int_equal(m.total, THREADS * PER_THREAD);
  /* Nothing more to run. */
  assert_int_equal(TU_RUN(m.base, RILL_RUN_NOWAIT, 2000), 0);
  assert_int_equal(m.total, THREADS * PER_THREAD);
  tu_base_free(m.base);
}

/* ---- post from a posted function ------------------------------------------ */

struct chain {
  int first;
  int second;
  int depth;
  int max_depth;
};

static void second_cb(rill_base *base, void *arg) {
  (void)base;
  ((struct chain *)arg)->second++;
}

static void first_cb(rill_base *base, void *arg) {
  struct chain *c = (struct chain *)arg;
  c->first++;
  rill_base_post(base, second_cb, c);
}

static void self_repost(rill_base *base, void *arg) {
  struct chain *c = (struct chain *)arg;
  c->depth++;
  if (c->depth < c->max_depth) rill_base_post(base, self_repost, c);
}

static void test_post_from_post(void **state) {
  rill_base *base = tu_base_new();
  struct chain c;
  int i;
  (void)state;
  memset(&c, 0, sizeof c);
  rill_base_ref(base);
  assert_int_equal(rill_base_post(base, first_cb, &c), 0);
  assert_int_equal(c.first, 0); /* never inside the call */
  for (i = 0; i < 5 && c.first == 0; i++) assert_true(TU_RUN(base, RILL_RUN_ONCE, 3000) >= 0);
  assert_int_equal(c.first, 1);
  /* Posted during that iteration: runs in a later one. */
  assert_int_equal(c.second, 0);
  for (i = 0; i < 5 && c.second == 0; i++) assert_true(TU_RUN(base, RILL_RUN_ONCE, 3000) >= 0);
  assert_int_equal(c.second, 1);
  assert_int_equal(c.first, 1);

  /* A function that keeps re-posting itself advances one step per
   * iteration and never traps the loop. */
  c.depth = 0;
  c.max_depth = 1000000;
  assert_int_equal(rill_base_post(base, self_repost, &c), 0);
  for (i = 0; i < 5 && c.depth == 0; i++) assert_true(TU_RUN(base, RILL_RUN_NOWAIT, 3000) >= 0);
  assert_int_equal(c.depth, 1);
  for (i = 0; i < 10; i++) {
    int before = c.depth;
    assert_true(TU_RUN(base, RILL_RUN_NOWAIT, 3000) >= 0);
    assert_int_equal(c.depth, before + 1);
  }
  /* Let it finish quickly. */
  c.max_depth = c.depth + 1;
  for (i = 0; i < 5; i++) TU_RUN(base, RILL_RUN_NOWAIT, 3000);
  assert_int_equal(c.depth, c.max_depth);

  rill_base_unref(base);
  tu_base_free(base);
}

/* ---- posts queued at free ---------------------------------------------------- */

struct at_free {
  int calls[3];
  rill_base *base;
  rill_base *seen;
  rill_timer *timer;
};

static void at_free_cb0(rill_base *base, void *arg) {
  struct at_free *f = (struct at_free *)arg;
  f->calls[0]++;
  f->seen = base;
}
static void at_free_cb1(rill_base *base, void *arg) {
  (void)base;
  ((struct at_free *)arg)->calls[1]++;
}
static void at_free_free_timer(rill_base *base, void *arg) {
  struct at_free *f = (struct at_free *)arg;
  (void)base;
  f->calls[2]++;
  rill_timer_free(f->timer);
  f->timer = NULL;
}

static void noop_timer(rill_timer *t, void *arg) {
  (void)t;
  (void)arg;
}

static void test_posts_run_at_free(void **state) {
  struct at_free f;
  rill_base *base;
  rill_timer *t2;
  (void)state;

  memset(&f, 0, sizeof f);
  base = tu_base_new();
  assert_int_equal(rill_base_post(base, at_free_cb0, &f), 0);
  assert_int_equal(rill_base_post(base, at_free_cb1, &f), 0);
  assert_int_equal(rill_base_post(base, at_free_cb1, &f), 0);
  assert_int_equal(f.calls[0] + f.calls[1], 0);
  assert_int_equal(rill_base_free(base), 0);
  assert_int_equal(f.calls[0], 1);
  assert_int_equal(f.calls[1], 2);
  assert_ptr_equal(f.seen, base);

  /* A posted function may free the last handle, so the free succeeds. */
  memset(&f, 0, sizeof f);
  base = tu_base_new();
  assert_int_equal(rill_timer_new(base, noop_timer, NULL, &f.timer), 0);
  assert_int_equal(rill_timer_start(f.timer, 100 * RILL_SEC, 0), 0);
  assert_int_equal(rill_base_post(base, at_free_free_timer, &f), 0);
  assert_int_equal(rill_base_free(base), 0);
  assert_int_equal(f.calls[2], 1);

  /* Posts run exactly once even when the first free fails. */
  memset(&f, 0, sizeof f);
  base = tu_base_new();
  assert_int_equal(rill_timer_new(base, noop_timer, NULL, &t2), 0);
  assert_int_equal(rill_base_post(base, at_free_cb1, &f), 0);
  assert_int_equal(rill_base_free(base), RILL_EBUSY);
  assert_int_equal(f.calls[1], 1);
  rill_timer_free(t2);
  assert_int_equal(rill_base_free(base), 0);
  assert_int_equal(f.calls[1], 1);
}

static void test_post_bad_args(void **state) {
  rill_base *base = tu_base_new();
  int x = 0;
  (void)state;
  assert_int_equal(rill_base_post(base, NULL, &x), RILL_EINVAL);
  assert_int_equal(rill_base_post(NULL, at_free_cb1, &x), RILL_EINVAL);
  assert_int_equal(rill_base_stop(NULL), RILL_EINVAL);
  tu_base_free(base);
}

/* A base that only serves posts, woken from another thread while it waits. */
struct waiter {
  rill_base *base;
  int done;
};

static void wake_done(rill_base *base, void *arg) {
  ((struct waiter *)arg)->done = 1;
  rill_base_unref(base);
}

static void *late_poster(void *p) {
  struct waiter *w = (struct waiter *)p;
  tu_sleep_ms(60);
  rill_base_post(w->base, wake_done, w);
  return NULL;
}

static void test_post_wakes_waiting_base(void **state) {
  struct waiter w;
  pthread_t th;
  uint64_t t0;
  (void)state;
  memset(&w, 0, sizeof w);
  w.base = tu_base_new();
  rill_base_ref(w.base);
  t0 = tu_now_ms();
  assert_int_equal(pthread_create(&th, NULL, late_poster, &w), 0);
  assert_int_equal(TU_RUN(w.base, RILL_RUN_DEFAULT, 5000), 0);
  pthread_join(th, NULL);
  assert_int_equal(w.done, 1);
  assert_true(tu_now_ms() - t0 >= 50);
  tu_base_free(w.base);
}

int main(void) {
#define T(f) cmocka_unit_test_setup_teardown(f, tu_setup_fds, tu_teardown_fds)
  const struct CMUnitTest tests[] = {
      T(test_many_threads),
      T(test_post_from_post),
      T(test_posts_run_at_free),
      T(test_post_bad_args),
      T(test_post_wakes_waiting_base),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
