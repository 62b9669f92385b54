/* Channels (rill/chan.h, G35): unbuffered rendezvous, FIFO order of parked
 * senders and receivers, buffered capacity, close (wakes every receiver,
 * drains the buffer first, then zero values with ok = 0), send on a closed
 * channel, the try forms, a free with fibers parked, calls from another
 * thread, out of memory, and no allocation per send or receive. */
#define _GNU_SOURCE 1

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include "rill.h"
#include "test_util.h"
#include "gosync_util.h"

/* ---- unbuffered: a send returns only once a receiver took the value ---- */

struct rendezvous {
  rill_chan *ch;
  int sent;     /* sends that returned */
  int received; /* values received */
  int sent_when_received[3];
};

static void rv_sender(void *arg) {
  struct rendezvous *r = (struct rendezvous *)arg;
  for (int i = 1; i <= 3; i++) {
    FCHECK_EQ(rill_chan_send(r->ch, &i), 0);
    r->sent++;
  }
}

static void rv_receiver(void *arg) {
  struct rendezvous *r = (struct rendezvous *)arg;
  /* The sender runs first and parks: nobody took its value yet. */
  yield_n(5);
  FCHECK_EQ(r->sent, 0);
  for (int i = 1; i <= 3; i++) {
    int v = 0, ok = 0;
    r->sent_when_received[i - 1] = r->sent;
    FCHECK_EQ(rill_chan_recv(r->ch, &v, &ok), 0);
    FCHECK_EQ(v, i);
    FCHECK_EQ(ok, 1);
    r->received++;
    yield_n(3);
    /* Taken, so that send has returned; the next one is parked again. */
    FCHECK_EQ(r->sent, i);
  }
}

static void unbuffered_rendezvous(void **state) {
  struct rendezvous r;
  rill_base *base = tu_base_new();
  (void)state;
  fiber_check_reset();
  memset(&r, 0, sizeof r);
  assert_int_equal(rill_chan_new(sizeof(int), 0, &r.ch), 0);
  assert_int_equal(rill_chan_cap(r.ch), 0);
  assert_int_equal(rill_go(base, rv_sender, &r), 0);
  assert_int_equal(rill_go(base, rv_receiver, &r), 0);
  fiber_check_run(base, LIMIT);
  assert_int_equal(r.received, 3);
  assert_int_equal(r.sent, 3);
  assert_int_equal(rill_chan_free(r.ch), 0);
}

/* ---- FIFO among parked senders and among parked receivers -------------- */

#define NFIFO 5

struct fifo {
  rill_chan *ch;
  int id_next;
  int order[NFIFO];
  int n;
};

static void fifo_sender(void *arg) {
  struct fifo *f = (struct fifo *)arg;
  int id = f->id_next++;
  FCHECK_EQ(rill_chan_send(f->ch, &id), 0);
}

static void fifo_receiver(void *arg) {
  struct fifo *f = (struct fifo *)arg;
  int id = f->id_next++, v = -1, ok = 0;
  FCHECK_EQ(rill_chan_recv(f->ch, &v, &ok), 0);
  FCHECK_EQ(v, 100 + f->n);
  f->order[f->n++] = id;
}

static void fifo_main(void *arg) {
  struct fifo *f = (struct fifo *)arg;
  rill_base *base = rill_fiber_base();
  /* Senders park in the order they started; a receiver takes them in it. */
  for (int i = 0; i < NFIFO; i++)
    FCHECK_EQ(rill_go(base, fifo_sender, f), 0);
  yield_n(3);
  for (int i = 0; i < NFIFO; i++) {
    int v = -1, ok = 0;
    FCHECK_EQ(rill_chan_recv(f->ch, &v, &ok), 0);
    FCHECK_EQ(v, i);
  }
  /* Receivers likewise: the first parked gets the first value. */
  f->id_next = 0;
  for (int i = 0; i < NFIFO; i++)
    FCHECK_EQ(rill_go(base, fifo_receiver, f), 0);
  yield_n(3);
  for (int i = 0; i < NFIFO; i++) {
    int v = 100 + i;
    FCHECK_EQ(rill_chan_send(f->ch, &v), 0);
  }
  yield_n(3);
  FCHECK_EQ(f->n, NFIFO);
  for (int i = 0; i < NFIFO; i++)
    FCHECK_EQ(f->order[i], i);
}

static void fifo_senders_and_receivers(void **state) {
  struct fifo f;
  (void)state;
  memset(&f, 0, sizeof f);
  assert_int_equal(rill_chan_new(sizeof(int), 0, &f.ch), 0);
  run_fiber(fifo_main, &f);
  assert_int_equal(rill_chan_free(f.ch), 0);
}

/* ---- buffered: capacity N, then the sender parks ------------------------ */

struct buffered {
  rill_chan *ch;
  int sent;
};

static void buf_sender(void *arg) {
  struct buffered *b = (struct buffered *)arg;
  for (int i = 0; i < 5; i++) {
    FCHECK_EQ(rill_chan_send(b->ch, &i), 0);
    b->sent++;
  }
}

static void buf_main(void *arg) {
  struct buffered *b = (struct buffered *)arg;
  FCHECK_EQ(rill_go(rill_fiber_base(), buf_sender, b), 0);
  yield_n(5);
  /* Three went into the buffer; the fourth send is parked. */
  FCHECK_EQ(b->sent, 3);
  FCHECK_EQ(rill_chan_len(b->ch), 3);
  FCHECK_EQ(rill_chan_cap(b->ch), 3);
  for (int i = 0; i < 5; i++) {
    int v = -1, ok = 0;
    FCHECK_EQ(rill_chan_recv(b->ch, &v, &ok), 0);
    FCHECK_EQ(v, i); /* in order, the parked sender's value behind */
    FCHECK_EQ(ok, 1);
  }
  FCHECK_EQ(b->sent, 5);
  FCHECK_EQ(rill_chan_len(b->ch), 0);
}

static void buffered_capacity(void **state) {
  struct buffered b;
  (void)state;
  memset(&b, 0, sizeof b);
  assert_int_equal(rill_chan_new(sizeof(int), 3, &b.ch), 0);
  run_fiber(buf_main, &b);
  assert_int_equal(rill_chan_free(b.ch), 0);
}

/* ---- close -------------------------------------------------------------- */

struct closing {
  rill_chan *ch;
  int woken;
};

static void close_receiver(void *arg) {
  struct closing *c = (struct closing *)arg;
  long long v = -1;
  int ok = 1;
  FCHECK_EQ(rill_chan_recv(c->ch, &v, &ok), 0);
  FCHECK_EQ(ok, 0);
  FCHECK_EQ(v, 0); /* the zero value */
  c->woken++;
}

static void close_sender(void *arg) {
  struct closing *c = (struct closing *)arg;
  long long v = 7;
  FCHECK_EQ(rill_chan_send(c->ch, &v), RILL_ECLOSED);
  c->woken++;
}

static void close_main(void *arg) {
  struct closing *c = (struct closing *)arg;
  rill_base *base = rill_fiber_base();
  rill_chan *buf = NULL;
  long long v;
  int ok;
  for (int i = 0; i < 5; i++)
    FCHECK_EQ(rill_go(base, close_receiver, c), 0);
  yield_n(3);
  FCHECK_EQ(c->woken, 0);
  FCHECK_EQ(rill_chan_close(c->ch), 0);
  FCHECK_EQ(rill_chan_closed(c->ch), 1);
  yield_n(3);
  FCHECK_EQ(c->woken, 5); /* every parked receiver woke */
  /* Later sends, and a second close, are errors (Go panics). */
  v = 1;
  FCHECK_EQ(rill_chan_send(c->ch, &v), RILL_ECLOSED);
  FCHECK_EQ(rill_chan_try_send(c->ch, &v), RILL_ECLOSED);
  FCHECK_EQ(rill_chan_close(c->ch), RILL_ECLOSED);

  /* Buffered values drain first, then zero values with ok = 0. */
  FCHECK_EQ(rill_chan_new(sizeof v, 4, &buf), 0);
  for (v = 1; v <= 2; v++)
    FCHECK_EQ(rill_chan_send(buf, &v), 0);
  FCHECK_EQ(rill_chan_close(buf), 0);
  for (long long want = 1; want <= 2; want++) {
    v = 0;
    ok = 0;
    FCHECK_EQ(rill_chan_recv(buf, &v, &ok), 0);
    FCHECK_EQ(v, want);
    FCHECK_EQ(ok, 1);
  }
  for (int i = 0; i < 3; i++) {
    v = -1;
    ok = 1;
    FCHECK_EQ(rill_chan_recv(buf, &v, &ok), 0);
    FCHECK_EQ(v, 0);
    FCHECK_EQ(ok, 0);
    FCHECK_EQ(rill_chan_try_recv(buf, &v, &ok), 0);
    FCHECK_EQ(ok, 0);
  }
  FCHECK_EQ(rill_chan_free(buf), 0);

  /* A sender parked when the channel closes gets RILL_ECLOSED. */
  FCHECK_EQ(rill_chan_new(sizeof v, 0, &buf), 0);
  c->ch = buf;
  c->woken = 0;
  FCHECK_EQ(rill_go(base, close_sender, c), 0);
  yield_n(3);
  FCHECK_EQ(c->woken, 0);
  FCHECK_EQ(rill_chan_close(buf), 0);
  yield_n(3);
  FCHECK_EQ(c->woken, 1);
  FCHECK_EQ(rill_chan_free(buf), 0);
}

static void close_wakes_and_drains(void **state) {
  struct closing c;
  rill_chan *ch;
  (void)state;
  memset(&c, 0, sizeof c);
  assert_int_equal(rill_chan_new(sizeof(long long), 0, &ch), 0);
  c.ch = ch;
  run_fiber(close_main, &c);
  assert_int_equal(rill_chan_free(ch), 0);
}

/* ---- the forms that never park, outside fibers -------------------------- */

static void try_forms_outside_fibers(void **state) {
  rill_chan *ch;
  int v = 5, ok = 7;
  (void)state;
  assert_int_equal(rill_chan_new(sizeof v, 1, &ch), 0);
  assert_int_equal(rill_chan_try_recv(ch, &v, &ok), RILL_EAGAIN);
  assert_int_equal(ok, 0);
  assert_int_equal(rill_chan_try_send(ch, &v), 0);
  assert_int_equal(rill_chan_try_send(ch, &v), RILL_EAGAIN); /* full */
  assert_int_equal(rill_chan_len(ch), 1);
  /* The blocking forms refuse outside a fiber, even when they need not wait. */
  assert_int_equal(rill_chan_recv(ch, &v, &ok), RILL_ENOTFIBER);
  assert_int_equal(rill_chan_send(ch, &v), RILL_ENOTFIBER);
  v = 0;
  assert_int_equal(rill_chan_try_recv(ch, &v, &ok), 0);
  assert_int_equal(v, 5);
  assert_int_equal(ok, 1);
  /* Bad arguments. */
  assert_int_equal(rill_chan_try_send(ch, NULL), RILL_EINVAL);
  assert_int_equal(rill_chan_try_send(NULL, &v), RILL_EINVAL);
  assert_int_equal(rill_chan_new(sizeof v, 0, NULL), RILL_EINVAL);
  {
    rill_chan *huge = (rill_chan *)1;
    assert_int_equal(rill_chan_new(SIZE_MAX / 2, 3, &huge), RILL_EINVAL);
    assert_null(huge);
  }
  assert_int_equal(rill_chan_free(NULL), 0);
  assert_int_equal(rill_chan_free(ch), 0);
  /* Zero-size elements: a channel of signals. */
  assert_int_equal(rill_chan_new(0, 2, &ch), 0);
  assert_int_equal(rill_chan_try_send(ch, NULL), 0);
  assert_int_equal(rill_chan_try_recv(ch, NULL, &ok), 0);
  assert_int_equal(ok, 1);
  assert_int_equal(rill_chan_free(ch), 0);
}

/* ---- a free with fibers parked wakes them with RILL_ECLOSED ------------- */

struct freeing {
  rill_chan *ch;
  int results[2];
};

static void free_receiver(void *arg) {
  struct freeing *f = (struct freeing *)arg;
  int v = 9, ok = 1;
  f->results[0] = rill_chan_recv(f->ch, &v, &ok);
  FCHECK_EQ(ok, 0);
}

static void free_sender(void *arg) {
  struct freeing *f = (struct freeing *)arg;
  int v = 9;
  f->results[1] = rill_chan_send(f->ch, &v);
}

static void free_main(void *arg) {
  struct freeing *f = (struct freeing *)arg;
  rill_base *base = rill_fiber_base();
  rill_chan *a, *b;
  FCHECK_EQ(rill_chan_new(sizeof(int), 0, &a), 0);
  FCHECK_EQ(rill_chan_new(sizeof(int), 0, &b), 0);
  f->results[0] = f->results[1] = 1;
  f->ch = a;
  FCHECK_EQ(rill_go(base, free_receiver, f), 0);
  yield_n(2);
  f->ch = b;
  FCHECK_EQ(rill_go(base, free_sender, f), 0);
  yield_n(2);
  FCHECK_EQ(f->results[0], 1);
  FCHECK_EQ(f->results[1], 1);
  FCHECK_EQ(rill_chan_free(a), 0);
  FCHECK_EQ(rill_chan_free(b), 0);
  yield_n(2);
  FCHECK_EQ(f->results[0], RILL_ECLOSED);
  FCHECK_EQ(f->results[1], RILL_ECLOSED);
}

static void free_with_parked_fibers(void **state) {
  struct freeing f;
  (void)state;
  run_fiber(free_main, &f);
}

/* ---- another thread gets RILL_EWRONGTHREAD and changes nothing ----------- */

struct foreign {
  rill_chan *ch;
  rill_mutex *mu;
  rill_ctx *ctx;
  int send, recv, close_, free_, len, lock, unlock, cancel, select_;
  /* from a fiber of a base on that thread */
  int fiber_send, fiber_lock, fiber_sleep, fiber_dial;
};

static void foreign_fiber(void *arg) {
  struct foreign *t = (struct foreign *)arg;
  int v = 1;
  rill_net_conn *conn = NULL;
  t->fiber_send = rill_chan_send(t->ch, &v);
  t->fiber_lock = rill_mutex_lock(t->mu);
  t->fiber_sleep = rill_ctx_sleep(t->ctx, 1 * RILL_MSEC);
  t->fiber_dial = rill_net_dial_ctx(t->ctx, "tcp", "127.0.0.1:1", NULL, &conn, NULL, 0);
}

static void *foreign_thread(void *arg) {
  struct foreign *t = (struct foreign *)arg;
  int v = 1, ok;
  rill_select_case c = {t->ch, RILL_SELECT_RECV, &v, 0};
  t->send = rill_chan_try_send(t->ch, &v);
  t->recv = rill_chan_try_recv(t->ch, &v, &ok);
  t->close_ = rill_chan_close(t->ch);
  t->free_ = rill_chan_free(t->ch);
  t->len = (int)rill_chan_len(t->ch);
  t->lock = rill_mutex_trylock(t->mu);
  t->unlock = rill_mutex_unlock(t->mu);
  t->cancel = rill_ctx_cancel(t->ctx);
  t->select_ = rill_select_try(&c, 1);
  {
    rill_base *base = NULL;
    if (rill_base_new(NULL, &base) == 0) {
      if (rill_go(base, foreign_fiber, t) == 0)
        rill_base_run(base, RILL_RUN_DEFAULT);
      rill_base_free(base);
    }
  }
  return NULL;
}

static void another_thread_is_refused(void **state) {
  struct foreign t;
  pthread_t th;
  int v = 3, ok = 0;
  (void)state;
  memset(&t, 0, sizeof t);
  assert_int_equal(rill_chan_new(sizeof v, 2, &t.ch), 0);
  assert_int_equal(rill_mutex_new(&t.mu), 0);
  assert_int_equal(rill_ctx_new(NULL, &t.ctx), 0);
  assert_int_equal(rill_chan_try_send(t.ch, &v), 0);
  assert_int_equal(pthread_create(&th, NULL, foreign_thread, &t), 0);
  assert_int_equal(pthread_join(th, NULL), 0);
  assert_int_equal(t.send, RILL_EWRONGTHREAD);
  assert_int_equal(t.recv, RILL_EWRONGTHREAD);
  assert_int_equal(t.close_, RILL_EWRONGTHREAD);
  assert_int_equal(t.free_, RILL_EWRONGTHREAD);
  assert_int_equal(t.len, 0);
  assert_int_equal(t.lock, RILL_EWRONGTHREAD);
  assert_int_equal(t.unlock, RILL_EWRONGTHREAD);
  assert_int_equal(t.cancel, RILL_EWRONGTHREAD);
  assert_int_equal(t.select_, RILL_EWRONGTHREAD);
  assert_int_equal(t.fiber_send, RILL_EWRONGTHREAD);
  assert_int_equal(t.fiber_lock, RILL_EWRONGTHREAD);
  assert_int_equal(t.fiber_sleep, RILL_EWRONGTHREAD);
  assert_int_equal(t.fiber_dial, RILL_EWRONGTHREAD);
  assert_string_equal(rill_err_name(RILL_EWRONGTHREAD), "EWRONGTHREAD");
  /* Nothing changed. */
  assert_int_equal(rill_chan_len(t.ch), 1);
  assert_int_equal(rill_chan_closed(t.ch), 0);
  assert_int_equal(rill_ctx_err(t.ctx), 0);
  assert_int_equal(rill_mutex_trylock(t.mu), 0);
  assert_int_equal(rill_chan_try_recv(t.ch, &v, &ok), 0);
  assert_int_equal(v, 3);
  assert_int_equal(rill_mutex_unlock(t.mu), 0);
  assert_int_equal(rill_chan_free(t.ch), 0);
  assert_int_equal(rill_mutex_free(t.mu), 0);
  assert_int_equal(rill_ctx_free(t.ctx), 0);
}

/* ---- memory: ENOMEM at creation, none per send or receive --------------- */

static void out_of_memory(void **state) {
  tu_alloc_counts before, after;
  rill_chan *ch = (rill_chan *)1;
  rill_mutex *mu = (rill_mutex *)1;
  rill_cond *cv = (rill_cond *)1;
  rill_ctx *ctx = (rill_ctx *)1;
  (void)state;
  tu_alloc_get(&before);
  for (int n = 0; n < 2; n++) { /* the handle, then the buffer */
    tu_alloc_fail_after(n);
    assert_int_equal(rill_chan_new(8, 4, &ch), RILL_ENOMEM);
    assert_null(ch);
  }
  tu_alloc_fail_after(0);
  assert_int_equal(rill_mutex_new(&mu), RILL_ENOMEM);
  assert_int_equal(rill_cond_new(&cv), RILL_ENOMEM);
  assert_int_equal(rill_ctx_new(NULL, &ctx), RILL_ENOMEM);
  assert_null(ctx);
  tu_alloc_fail_after(-1);
  tu_alloc_get(&after);
  assert_int_equal(after.live, before.live); /* nothing half-made kept */
}

#define PINGS 1000

struct pingpong {
  rill_chan *ping, *pong;
  uint64_t mallocs_during;
};

static void pong_fiber(void *arg) {
  struct pingpong *p = (struct pingpong *)arg;
  int v, ok;
  while (rill_chan_recv(p->ping, &v, &ok) == 0 && ok)
    FCHECK_EQ(rill_chan_send(p->pong, &v), 0);
}

static void ping_main(void *arg) {
  struct pingpong *p = (struct pingpong *)arg;
  tu_alloc_counts a, b;
  FCHECK_EQ(rill_go(rill_fiber_base(), pong_fiber, p), 0);
  yield_n(2);
  tu_alloc_get(&a);
  for (int i = 0; i < PINGS; i++) {
    int v = i, ok = 0;
    FCHECK_EQ(rill_chan_send(p->ping, &v), 0);
    FCHECK_EQ(rill_chan_recv(p->pong, &v, &ok), 0);
    FCHECK_EQ(v, i);
  }
  tu_alloc_get(&b);
  p->mallocs_during = b.mallocs - a.mallocs + b.reallocs - a.reallocs;
  FCHECK_EQ(rill_chan_close(p->ping), 0);
}

static void no_allocation_per_message(void **state) {
  struct pingpong p;
  (void)state;
  memset(&p, 0, sizeof p);
  assert_int_equal(rill_chan_new(sizeof(int), 0, &p.ping), 0);
  assert_int_equal(rill_chan_new(sizeof(int), 1, &p.pong), 0);
  run_fiber(ping_main, &p);
  assert_int_equal(p.mallocs_during, 0);
  assert_int_equal(rill_chan_free(p.ping), 0);
  assert_int_equal(rill_chan_free(p.pong), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(unbuffered_rendezvous),
      cmocka_unit_test(fifo_senders_and_receivers),
      cmocka_unit_test(buffered_capacity),
      cmocka_unit_test(close_wakes_and_drains),
      cmocka_unit_test(try_forms_outside_fibers),
      cmocka_unit_test(free_with_parked_fibers),
      cmocka_unit_test(another_thread_is_refused),
      cmocka_unit_test(out_of_memory),
      cmocka_unit_test(no_allocation_per_message),
  };
  if (rill_set_allocator(tu_malloc, tu_realloc, tu_free) != 0)
    return 1;
  return cmocka_run_group_tests(tests, tu_setup_fds, tu_teardown_fds);
}
