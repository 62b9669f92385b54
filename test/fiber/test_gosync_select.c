/* select (rill/chan.h, G35): a ready case completes at once, a timeout, the
 * default form, a random choice among ready cases, exactly one completion,
 * a parked select leaves every other channel's queue when one case fires,
 * send cases, closed channels, many cases; and the mutex (exclusion across
 * parks, FIFO hand-over) and condition. */
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

/* ---- a ready case, the default form, bad arguments ---------------------- */

static void ready_main(void *arg) {
  rill_chan *a, *b, *c;
  int va = 0, vb = 0, vc = 0, v = 42;
  (void)arg;
  FCHECK_EQ(rill_chan_new(sizeof(int), 1, &a), 0);
  FCHECK_EQ(rill_chan_new(sizeof(int), 1, &b), 0);
  FCHECK_EQ(rill_chan_new(sizeof(int), 1, &c), 0);
  FCHECK_EQ(rill_chan_try_send(b, &v), 0);
  {
    rill_select_case cases[] = {
        {a, RILL_SELECT_RECV, &va, 0}, {b, RILL_SELECT_RECV, &vb, 0}, {c, RILL_SELECT_RECV, &vc, 0}};
    FCHECK_EQ(rill_select(cases, 3, RILL_FOREVER), 1);
    FCHECK_EQ(vb, 42);
    FCHECK_EQ(cases[1].ok, 1);
    FCHECK_EQ(va, 0);
    /* The default form: nothing ready. */
    FCHECK_EQ(rill_select_try(cases, 3), RILL_EAGAIN);
    /* A send case that can go (room in the buffer) is ready too. */
    cases[2].op = RILL_SELECT_SEND;
    cases[2].elem = &v;
    FCHECK_EQ(rill_select_try(cases, 3), 2);
    FCHECK_EQ(rill_chan_len(c), 1);
    /* A NULL channel is never ready (Go's nil channel). */
    cases[0].chan = NULL;
    cases[1].chan = NULL;
    cases[2].chan = NULL;
    FCHECK_EQ(rill_select_try(cases, 3), RILL_EAGAIN);
    /* Bad arguments. */
    cases[0].chan = a;
    cases[0].op = 9;
    FCHECK_EQ(rill_select_try(cases, 1), RILL_EINVAL);
    cases[0].op = RILL_SELECT_SEND;
    cases[0].elem = NULL;
    FCHECK_EQ(rill_select_try(cases, 1), RILL_EINVAL);
    FCHECK_EQ(rill_select(NULL, 1, 0), RILL_EINVAL);
    FCHECK_EQ(rill_select(NULL, 0, RILL_FOREVER), RILL_EINVAL); /* select {} */
  }
  FCHECK_EQ(rill_chan_free(a), 0);
  FCHECK_EQ(rill_chan_free(b), 0);
  FCHECK_EQ(rill_chan_free(c), 0);
}

static void ready_case_and_default(void **state) {
  (void)state;
  run_fiber(ready_main, NULL);
  /* Outside a fiber: the default form works, the blocking one refuses. */
  assert_int_equal(rill_select_try(NULL, 0), RILL_EAGAIN);
  assert_int_equal(rill_select(NULL, 0, 0), RILL_ENOTFIBER);
}

/* ---- a timeout ---------------------------------------------------------- */

static void timeout_main(void *arg) {
  rill_chan *a;
  int v = 0;
  (void)arg;
  FCHECK_EQ(rill_chan_new(sizeof(int), 0, &a), 0);
  rill_select_case c = {a, RILL_SELECT_RECV, &v, 0};
  uint64_t t0 = tu_now_ns();
  FCHECK_EQ(rill_select(&c, 1, 50 * RILL_MSEC), RILL_ETIMEOUT);
  FCHECK(tu_now_ns() - t0 >= 50ull * 1000000); /* at least the timeout */
  /* The timed-out select left the channel's queue: no one takes a send. */
  FCHECK_EQ(rill_chan_try_send(a, &v), RILL_EAGAIN);
  /* 0 only looks. */
  FCHECK_EQ(rill_select(&c, 1, 0), RILL_ETIMEOUT);
  /* No cases and a timeout: a sleep. */
  t0 = tu_now_ns();
  FCHECK_EQ(rill_select(NULL, 0, 20 * RILL_MSEC), RILL_ETIMEOUT);
  FCHECK(tu_now_ns() - t0 >= 20ull * 1000000);
  FCHECK_EQ(rill_chan_free(a), 0);
}

static void select_timeout(void **state) {
  (void)state;
  run_fiber(timeout_main, NULL);
}

/* ---- the choice among ready cases is random ----------------------------- */

#define PICKS 400

static void random_main(void *arg) {
  rill_chan *ch[3];
  int counts[3] = {0, 0, 0}, v = 1;
  (void)arg;
  for (int i = 0; i < 3; i++)
    FCHECK_EQ(rill_chan_new(sizeof(int), 1, &ch[i]), 0);
  for (int n = 0; n < PICKS; n++) {
    rill_select_case cases[3];
    for (int i = 0; i < 3; i++) {
      if (rill_chan_len(ch[i]) == 0)
        FCHECK_EQ(rill_chan_try_send(ch[i], &v), 0);
      cases[i].chan = ch[i];
      cases[i].op = RILL_SELECT_RECV;
      cases[i].elem = NULL;
      cases[i].ok = 0;
    }
    int r = rill_select(cases, 3, RILL_FOREVER);
    FCHECK(r >= 0 && r < 3);
    if (r >= 0 && r < 3)
      counts[r]++;
    /* Exactly one case completed: the other two still hold their value. */
    FCHECK_EQ(rill_chan_len(ch[0]) + rill_chan_len(ch[1]) + rill_chan_len(ch[2]), 2);
  }
  /* Each case is picked about a third of the time; never picking one in
   * 400 tries has a chance of 3 * (2/3)^400. */
  for (int i = 0; i < 3; i++) {
    FCHECK(counts[i] > 0);
    FCHECK(counts[i] < PICKS);
    FCHECK_EQ(rill_chan_free(ch[i]), 0);
  }
}

static void random_among_ready(void **state) {
  (void)state;
  run_fiber(random_main, NULL);
}

/* ---- a parked select: one case fires, it leaves every other queue ------- */

struct parked {
  rill_chan *a, *b;
  int result;
  int got;
  int done;
};

static void parked_selector(void *arg) {
  struct parked *p = (struct parked *)arg;
  int va = -1, vb = -1;
  rill_select_case cases[] = {{p->a, RILL_SELECT_RECV, &va, 0}, {p->b, RILL_SELECT_RECV, &vb, 0}};
  p->result = rill_select(cases, 2, RILL_FOREVER);
  p->got = p->result == 0 ? va : vb;
  FCHECK_EQ(p->result == 0 ? vb : va, -1); /* the other case wrote nothing */
  p->done++;
}

static int g_late_sent;

static void late_sender(void *arg) {
  struct parked *p = (struct parked *)arg;
  int v = 2;
  FCHECK_EQ(rill_chan_send(p->b, &v), 0);
  g_late_sent = 1;
}

static void parked_main(void *arg) {
  struct parked *p = (struct parked *)arg;
  rill_base *base = rill_fiber_base();
  int v = 1, ok = 0;
  FCHECK_EQ(rill_go(base, parked_selector, p), 0);
  yield_n(2);
  FCHECK_EQ(p->done, 0);
  /* Two senders in the same turn: the first completes the select, the
   * second finds nobody on b (no lost value, no second completion). */
  FCHECK_EQ(rill_chan_try_send(p->a, &v), 0);
  FCHECK_EQ(rill_chan_try_send(p->b, &v), RILL_EAGAIN);
  g_late_sent = 0;
  FCHECK_EQ(rill_go(base, late_sender, p), 0);
  yield_n(3);
  FCHECK_EQ(p->done, 1);
  FCHECK_EQ(p->result, 0);
  FCHECK_EQ(p->got, 1);
  FCHECK_EQ(g_late_sent, 0); /* parked: the select took nothing of it */
  v = 0;
  FCHECK_EQ(rill_chan_recv(p->b, &v, &ok), 0);
  FCHECK_EQ(v, 2);
  yield_n(2);
  FCHECK_EQ(g_late_sent, 1);
}

static void one_case_fires_others_unlinked(void **state) {
  struct parked p;
  (void)state;
  memset(&p, 0, sizeof p);
  assert_int_equal(rill_chan_new(sizeof(int), 0, &p.a), 0);
  assert_int_equal(rill_chan_new(sizeof(int), 0, &p.b), 0);
  run_fiber(parked_main, &p);
  assert_int_equal(rill_chan_free(p.a), 0);
  assert_int_equal(rill_chan_free(p.b), 0);
}

/* ---- a parked send case, a closed channel, a free under a select -------- */

struct send_case {
  rill_chan *out, *quit, *closed_send;
  int results[3];
  int n;
};

static void send_selector(void *arg) {
  struct send_case *s = (struct send_case *)arg;
  int v = 77, q = 0;
  rill_select_case cases[] = {{s->out, RILL_SELECT_SEND, &v, 0}, {s->quit, RILL_SELECT_RECV, &q, 0}};
  int r = rill_select(cases, 2, RILL_FOREVER);
  s->results[s->n++] = r;
  /* Next: quit is closed, so its receive case is ready with ok = 0. */
  cases[1].ok = 1;
  r = rill_select(cases, 2, RILL_FOREVER);
  s->results[s->n++] = r;
  FCHECK_EQ(cases[1].ok, 0);
  /* A send case on a closed channel: RILL_ECLOSED, nothing sent. */
  rill_select_case bad[] = {{s->closed_send, RILL_SELECT_SEND, &v, 0}};
  r = rill_select(bad, 1, RILL_FOREVER);
  s->results[s->n++] = r;
}

static void send_main(void *arg) {
  struct send_case *s = (struct send_case *)arg;
  int v = 0, ok = 0;
  FCHECK_EQ(rill_go(rill_fiber_base(), send_selector, s), 0);
  yield_n(2);
  FCHECK_EQ(s->n, 0);
  FCHECK_EQ(rill_chan_recv(s->out, &v, &ok), 0);
  FCHECK_EQ(v, 77);
  FCHECK_EQ(rill_chan_close(s->quit), 0);
  FCHECK_EQ(rill_chan_close(s->closed_send), 0);
  yield_n(3);
  FCHECK_EQ(s->n, 3);
  FCHECK_EQ(s->results[0], 0);
  FCHECK_EQ(s->results[1], 1);
  FCHECK_EQ(s->results[2], RILL_ECLOSED);
}

static void send_cases_and_closed(void **state) {
  struct send_case s;
  (void)state;
  memset(&s, 0, sizeof s);
  assert_int_equal(rill_chan_new(sizeof(int), 0, &s.out), 0);
  assert_int_equal(rill_chan_new(sizeof(int), 0, &s.quit), 0);
  assert_int_equal(rill_chan_new(sizeof(int), 0, &s.closed_send), 0);
  run_fiber(send_main, &s);
  assert_int_equal(rill_chan_free(s.out), 0);
  assert_int_equal(rill_chan_free(s.quit), 0);
  assert_int_equal(rill_chan_free(s.closed_send), 0);
}

/* ---- more cases than fit on the stack, and out of memory for them ------- */

#define MANY 40

static void many_main(void *arg) {
  rill_chan *ch[MANY];
  rill_select_case cases[MANY];
  int v = 5;
  (void)arg;
  for (int i = 0; i < MANY; i++) {
    FCHECK_EQ(rill_chan_new(sizeof(int), 1, &ch[i]), 0);
    cases[i].chan = ch[i];
    cases[i].op = RILL_SELECT_RECV;
    cases[i].elem = NULL;
    cases[i].ok = 0;
  }
  /* Parked on 40 channels, woken by the last one. */
  FCHECK_EQ(rill_chan_try_send(ch[MANY - 1], &v), 0);
  FCHECK_EQ(rill_select(cases, MANY, RILL_FOREVER), MANY - 1);
  FCHECK_EQ(rill_select(cases, MANY, 10 * RILL_MSEC), RILL_ETIMEOUT);
  tu_alloc_fail_after(0);
  FCHECK_EQ(rill_select(cases, MANY, RILL_FOREVER), RILL_ENOMEM);
  FCHECK_EQ(rill_select(cases, 1, 10 * RILL_MSEC), RILL_ETIMEOUT); /* inline: no allocation */
  tu_alloc_fail_after(-1);
  for (int i = 0; i < MANY; i++) {
    /* Into the buffer: no waiter of the selects above is left behind. */
    FCHECK_EQ(rill_chan_try_send(ch[i], &v), 0);
    FCHECK_EQ(rill_chan_len(ch[i]), 1);
    FCHECK_EQ(rill_chan_free(ch[i]), 0);
  }
}

static void many_cases(void **state) {
  (void)state;
  run_fiber(many_main, NULL);
}

/* ---- mutex: exclusion across parks, FIFO hand-over ----------------------- */

#define LOCKERS 5

struct locking {
  rill_mutex *mu;
  int inside, max_inside, counter;
  int next_id;
  int order[LOCKERS];
  int n;
};

static void exclusive_worker(void *arg) {
  struct locking *l = (struct locking *)arg;
  for (int i = 0; i < 20; i++) {
    FCHECK_EQ(rill_mutex_lock(l->mu), 0);
    l->inside++;
    if (l->inside > l->max_inside)
      l->max_inside = l->inside;
    int seen = l->counter;
    FCHECK_EQ(rill_yield(), 0); /* park while holding it */
    if (i % 5 == 0)
      FCHECK_EQ(rill_sleep(1 * RILL_MSEC), 0);
    l->counter = seen + 1;
    l->inside--;
    FCHECK_EQ(rill_mutex_unlock(l->mu), 0);
  }
}

static void fifo_locker(void *arg) {
  struct locking *l = (struct locking *)arg;
  int id = l->next_id++;
  FCHECK_EQ(rill_mutex_lock(l->mu), 0);
  l->order[l->n++] = id;
  FCHECK_EQ(rill_mutex_unlock(l->mu), 0);
}

static void mutex_main(void *arg) {
  struct locking *l = (struct locking *)arg;
  rill_base *base = rill_fiber_base();
  for (int i = 0; i < LOCKERS; i++)
    FCHECK_EQ(rill_go(base, exclusive_worker, l), 0);
  while (l->counter < LOCKERS * 20)
    FCHECK_EQ(rill_sleep(1 * RILL_MSEC), 0);
  FCHECK_EQ(l->max_inside, 1);
  /* FIFO: lockers queued in start order get it in that order. */
  FCHECK_EQ(rill_mutex_lock(l->mu), 0);
  for (int i = 0; i < LOCKERS; i++)
    FCHECK_EQ(rill_go(base, fifo_locker, l), 0);
  yield_n(3);
  FCHECK_EQ(l->n, 0);
  FCHECK_EQ(rill_mutex_trylock(l->mu), RILL_EAGAIN);
  FCHECK_EQ(rill_mutex_unlock(l->mu), 0);
  FCHECK_EQ(rill_mutex_lock(l->mu), 0); /* behind all five */
  FCHECK_EQ(l->n, LOCKERS);
  for (int i = 0; i < LOCKERS; i++)
    FCHECK_EQ(l->order[i], i);
  FCHECK_EQ(rill_mutex_unlock(l->mu), 0);
  FCHECK_EQ(rill_mutex_unlock(l->mu), -EPERM); /* unlock of unlocked mutex */
  FCHECK_EQ(rill_mutex_trylock(l->mu), 0);
  FCHECK_EQ(rill_mutex_unlock(l->mu), 0);
}

static void mutex_exclusion_and_fifo(void **state) {
  struct locking l;
  (void)state;
  memset(&l, 0, sizeof l);
  assert_int_equal(rill_mutex_new(&l.mu), 0);
  run_fiber(mutex_main, &l);
  assert_int_equal(l.counter, LOCKERS * 20);
  assert_int_equal(rill_mutex_lock(l.mu), RILL_ENOTFIBER);
  assert_int_equal(rill_mutex_free(l.mu), 0);
}

/* ---- condition; frees with fibers parked -------------------------------- */

struct condition {
  rill_mutex *mu;
  rill_cond *cv;
  int ready;
  int woken;
  int lock_result;
  int wait_result;
};

static void cond_waiter(void *arg) {
  struct condition *c = (struct condition *)arg;
  FCHECK_EQ(rill_mutex_lock(c->mu), 0);
  while (!c->ready)
    FCHECK_EQ(rill_cond_wait(c->cv, c->mu), 0);
  c->woken++;
  FCHECK_EQ(rill_mutex_unlock(c->mu), 0);
}

static void blocked_locker(void *arg) {
  struct condition *c = (struct condition *)arg;
  c->lock_result = rill_mutex_lock(c->mu);
}

static void freed_cond_waiter(void *arg) {
  struct condition *c = (struct condition *)arg;
  FCHECK_EQ(rill_mutex_lock(c->mu), 0);
  c->wait_result = rill_cond_wait(c->cv, c->mu);
  FCHECK_EQ(rill_mutex_unlock(c->mu), 0); /* locked again all the same */
}

static void cond_main(void *arg) {
  struct condition *c = (struct condition *)arg;
  rill_base *base = rill_fiber_base();
  for (int i = 0; i < 3; i++)
    FCHECK_EQ(rill_go(base, cond_waiter, c), 0);
  yield_n(3);
  FCHECK_EQ(c->woken, 0);
  FCHECK_EQ(rill_cond_signal(c->cv), 0); /* woken, but the condition is false */
  yield_n(3);
  FCHECK_EQ(c->woken, 0);
  FCHECK_EQ(rill_mutex_lock(c->mu), 0);
  c->ready = 1;
  FCHECK_EQ(rill_cond_broadcast(c->cv), 0);
  FCHECK_EQ(rill_mutex_unlock(c->mu), 0);
  yield_n(5);
  FCHECK_EQ(c->woken, 3);
  FCHECK_EQ(rill_cond_wait(c->cv, c->mu), -EPERM); /* mutex not held */

  /* Freeing a condition wakes its waiters with RILL_ECLOSED. */
  c->wait_result = 1;
  FCHECK_EQ(rill_go(base, freed_cond_waiter, c), 0);
  yield_n(2);
  FCHECK_EQ(rill_cond_free(c->cv), 0);
  c->cv = NULL;
  yield_n(3);
  FCHECK_EQ(c->wait_result, RILL_ECLOSED);

  /* Freeing a mutex wakes its lockers with RILL_ECLOSED. */
  FCHECK_EQ(rill_mutex_lock(c->mu), 0);
  c->lock_result = 1;
  FCHECK_EQ(rill_go(base, blocked_locker, c), 0);
  yield_n(2);
  FCHECK_EQ(c->lock_result, 1);
  FCHECK_EQ(rill_mutex_free(c->mu), 0);
  c->mu = NULL;
  yield_n(2);
  FCHECK_EQ(c->lock_result, RILL_ECLOSED);
}

static void condition_and_frees(void **state) {
  struct condition c;
  (void)state;
  memset(&c, 0, sizeof c);
  assert_int_equal(rill_mutex_new(&c.mu), 0);
  assert_int_equal(rill_cond_new(&c.cv), 0);
  run_fiber(cond_main, &c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(ready_case_and_default),
      cmocka_unit_test(select_timeout),
      cmocka_unit_test(random_among_ready),
      cmocka_unit_test(one_case_fires_others_unlinked),
      cmocka_unit_test(send_cases_and_closed),
      cmocka_unit_test(many_cases),
      cmocka_unit_test(mutex_exclusion_and_fifo),
      cmocka_unit_test(condition_and_frees),
  };
  if (rill_set_allocator(tu_malloc, tu_realloc, tu_free) != 0)
    return 1;
  return cmocka_run_group_tests(tests, tu_setup_fds, tu_teardown_fds);
}
