/* Handles closed, aborted or cancelled from inside callbacks, their own and
 * other handles' (issue 8). net.h promises that any handle may be closed
 * from inside any callback, that each connection gets exactly one on_close
 * and each dial exactly one completion. These call orders run under ASan in
 * the sanitizer suite, where a use after free shows. */
#define _GNU_SOURCE 1

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rill.h"
#include "test_util.h"
#include "net_util.h"

#define LIMIT 10000

/* ---- a connection closed from another connection's callbacks ----------- */

enum where { IN_READ, IN_DRAIN, IN_WRITE_ERROR, IN_CLOSE, WHERE_COUNT };
static const char *const where_name[] = {"on_read", "on_drain", "on_write_error", "on_close"};

struct two {
  enum where where;
  rill_conn *victim;   /* closed from the trigger's callback */
  int victim_closes;
  int trigger_closes;
  int close_rc;
  int done;
};

static void victim_on_close(rill_conn *c, void *arg) {
  struct two *t = (struct two *)arg;
  (void)c;
  t->victim_closes++;
  t->victim = NULL;
}

static void close_victim(struct two *t) {
  if (t->done || !t->victim) return;
  t->done = 1;
  t->close_rc = rill_conn_close(t->victim);
}

static size_t trig_on_read(rill_conn *c, const char *data, size_t len, int status, void *arg) {
  struct two *t = (struct two *)arg;
  (void)c;
  (void)data;
  if (t->where == IN_READ) close_victim(t);
  return status == 0 ? len : 0;
}
static void trig_on_drain(rill_conn *c, void *arg) {
  struct two *t = (struct two *)arg;
  (void)c;
  if (t->where == IN_DRAIN) close_victim(t);
}
static void trig_on_write_error(rill_conn *c, int err, size_t unsent, void *arg) {
  struct two *t = (struct two *)arg;
  (void)c;
  (void)err;
  (void)unsent;
  if (t->where == IN_WRITE_ERROR) close_victim(t);
}
static void trig_on_close(rill_conn *c, void *arg) {
  struct two *t = (struct two *)arg;
  (void)c;
  t->trigger_closes++;
  if (t->where == IN_CLOSE) close_victim(t);
}

static void close_other_round(rill_base *base, enum where where) {
  static unsigned char big[2 * 1024 * 1024];
  nu_pair trig, victim;
  struct two t;
  rill_conn_events ev;
  int v = 32 * 1024;
  memset(&t, 0, sizeof t);
  t.where = where;
  nu_pair_accepted(base, "127.0.0.1", NULL, &trig);
  nu_pair_accepted(base, "127.0.0.1", NULL, &victim);
  t.victim = victim.conn;
  memset(&ev, 0, sizeof ev);
  ev.on_close = victim_on_close;
  assert_int_equal(rill_conn_start(victim.conn, &ev, &t), 0);
  memset(&ev, 0, sizeof ev);
  ev.on_read = trig_on_read;
  ev.on_drain = trig_on_drain;
  ev.on_write_error = trig_on_write_error;
  ev.on_close = trig_on_close;
  assert_int_equal(rill_conn_start(trig.conn, &ev, &t), 0);
  switch (where) {
    case IN_READ:
      assert_int_equal(nu_send_all(trig.peer, "x", 1, 1000), 1);
      break;
    case IN_DRAIN:
    case IN_WRITE_ERROR:
      assert_int_equal(rill_conn_set_write_buffer(trig.conn, v), 0);
      assert_int_equal(setsockopt(trig.peer, SOL_SOCKET, SO_RCVBUF, &v, sizeof v), 0);
      assert_int_equal(rill_conn_write(trig.conn, big, sizeof big), 0);
      assert_true(rill_conn_write_queued(trig.conn) > 0);
      if (where == IN_WRITE_ERROR) {
        struct linger lg = {1, 0};
        setsockopt(trig.peer, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        close(trig.peer);
        trig.peer = -1;
      }
      break;
    case IN_CLOSE:
      assert_int_equal(rill_conn_close(trig.conn), 0);
      break;
    default:
      break;
  }
  if (where == IN_DRAIN) {
    nu_sink sink;
    memset(&sink, 0, sizeof sink);
    nu_sink_start(base, &sink, trig.peer, 0);
    nu_run_until_count(base, &t.done, 1, LIMIT);
    nu_sink_stop(&sink);
  } else {
    nu_run_until_count(base, &t.done, 1, LIMIT);
  }
  nu_run_until_count(base, &t.victim_closes, 1, LIMIT);
  if (t.close_rc != 0 || t.victim_closes != 1)
    fail_msg("closed from %s: close rc %d, victim on_close %d", where_name[where], t.close_rc,
             t.victim_closes);
  victim.conn = NULL;
  nu_pair_cleanup(base, &victim);
  if (where == IN_CLOSE) trig.conn = NULL;
  nu_pair_cleanup(base, &trig);
  assert_int_equal(t.victim_closes, 1);
}

static void test_close_from_another_connections_callbacks(void **state) {
  rill_base *base = tu_base_new();
  int w;
  (void)state;
  for (w = 0; w < WHERE_COUNT; w++) close_other_round(base, (enum where)w);
  tu_base_free(base);
}

/* ---- closing twice, and from the close callback ------------------------ */

struct twice {
  int closes;
  int rc_in_close[3];
};

static void twice_on_close(rill_conn *c, void *arg) {
  struct twice *t = (struct twice *)arg;
  t->closes++;
  /* The pointer is alive during on_close; every close is refused. */
  t->rc_in_close[0] = rill_conn_close(c);
  t->rc_in_close[1] = rill_conn_close_now(c);
  t->rc_in_close[2] = rill_conn_abort(c);
}

static void test_close_twice_and_inside_on_close(void **state) {
  rill_base *base = tu_base_new();
  nu_pair p;
  struct twice t;
  rill_conn_events ev;
  int i;
  (void)state;
  memset(&t, 0, sizeof t);
  nu_pair_accepted(base, "127.0.0.1", NULL, &p);
  memset(&ev, 0, sizeof ev);
  ev.on_close = twice_on_close;
  assert_int_equal(rill_conn_start(p.conn, &ev, &t), 0);
  assert_int_equal(rill_conn_close(p.conn), 0);
  assert_int_equal(rill_conn_close(p.conn), RILL_ECLOSED);
  assert_int_equal(rill_conn_close_now(p.conn), RILL_ECLOSED);
  /* Nothing was queued: the close is done already, nothing to give up. */
  assert_int_equal(rill_conn_abort(p.conn), RILL_ECLOSED);
  assert_int_equal(t.closes, 0); /* from the loop, never inside the call */
  nu_run_until_count(base, &t.closes, 1, LIMIT);
  for (i = 0; i < 5; i++) rill_base_run(base, RILL_RUN_NOWAIT);
  assert_int_equal(t.closes, 1);
  for (i = 0; i < 3; i++) assert_int_equal(t.rc_in_close[i], RILL_ECLOSED);
  p.conn = NULL;
  nu_pair_cleanup(base, &p);
  tu_base_free(base);
}

/* ---- a listener closed inside on_accept with more connections waiting --- */

struct acc {
  int calls;
  rill_conn *conns[4];
};

static void close_on_first_accept(rill_listener *l, rill_conn *c, int status, void *arg) {
  struct acc *a = (struct acc *)arg;
  assert_int_equal(status, 0);
  a->conns[a->calls++] = c;
  rill_listener_free(l);
  /* Still a valid pointer until on_accept returns, and closed. */
  assert_int_equal(rill_listener_stop(l), RILL_ECLOSED);
  assert_int_equal(rill_listener_start(l), RILL_ECLOSED);
  assert_int_equal(rill_listener_fd(l), RILL_ECLOSED);
  assert_int_equal(rill_listener_port(l), RILL_ECLOSED);
  rill_listener_free(l); /* twice: nothing happens */
}

static void test_listener_closed_inside_on_accept_with_backlog(void **state) {
  rill_base *base = tu_base_new();
  rill_listener *l;
  struct acc a;
  int peers[3], i;
  (void)state;
  memset(&a, 0, sizeof a);
  assert_int_equal(rill_listen(base, "tcp", "127.0.0.1:0", NULL, close_on_first_accept, &a, &l),
                   0);
  for (i = 0; i < 3; i++) {
    peers[i] = nu_raw_connect("127.0.0.1", rill_listener_port(l));
    assert_true(peers[i] >= 0);
  }
  nu_run_until_count(base, &a.calls, 1, LIMIT);
  for (i = 0; i < 5; i++) rill_base_run(base, RILL_RUN_NOWAIT);
  assert_int_equal(a.calls, 1); /* the batch stopped with the close */
  assert_int_equal(rill_conn_abort(a.conns[0]), 0);
  nu_settle(base);
  for (i = 0; i < 3; i++) close(peers[i]);
  tu_base_free(base);
}

/* ---- dials cancelled from their own and each other's callbacks --------- */

struct dials {
  rill_dialer *a, *b;
  int a_calls, b_calls;
  int a_status, b_status;
  int own_cancel_rc;
  int other_cancel_rc;
  rill_conn *b_conn;
};

static void dial_b_done(rill_dialer *d, rill_conn *c, int status, void *arg) {
  struct dials *s = (struct dials *)arg;
  s->b_calls++;
  s->b_status = status;
  s->b_conn = c;
  s->own_cancel_rc = rill_dialer_cancel(d);
}

static void dial_a_done(rill_dialer *d, rill_conn *c, int status, void *arg) {
  struct dials *s = (struct dials *)arg;
  (void)d;
  assert_null(c);
  s->a_calls++;
  s->a_status = status;
  s->other_cancel_rc = rill_dialer_cancel(s->b);
}

static void test_dial_cancelled_from_callbacks(void **state) {
  rill_base *base = tu_base_new();
  struct dials s;
  char addr[64], path[108];
  int port, lfd, i;
  (void)state;
  memset(&s, 0, sizeof s);
  lfd = nu_raw_listen("127.0.0.1", 16, &port);
  snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
  snprintf(path, sizeof path, "/tmp/rill-reentry-%d.sock", (int)getpid());
  unlink(path);
  /* b connects to a listener; a fails at once and, from its callback,
   * cancels b, which must then report RILL_ECANCELED exactly once. */
  assert_int_equal(rill_dial(base, "unix", path, NULL, dial_a_done, &s, &s.a), 0);
  assert_int_equal(rill_dial(base, "tcp", addr, NULL, dial_b_done, &s, &s.b), 0);
  nu_run_until_count(base, &s.b_calls, 1, LIMIT);
  for (i = 0; i < 5; i++) rill_base_run(base, RILL_RUN_NOWAIT);
  assert_int_equal(s.a_calls, 1);
  assert_int_equal(s.b_calls, 1);
  assert_int_equal(s.a_status, -ENOENT);
  assert_int_equal(s.other_cancel_rc, 0);
  assert_int_equal(s.b_status, RILL_ECANCELED);
  assert_null(s.b_conn);
  assert_int_equal(s.own_cancel_rc, RILL_ECLOSED);
  close(lfd);
  tu_base_free(base);
}

int main(void) {
#define T(f) cmocka_unit_test_setup_teardown(f, tu_setup_fds, tu_teardown_fds)
  const struct CMUnitTest tests[] = {
      T(test_close_from_another_connections_callbacks),
      T(test_close_twice_and_inside_on_close),
      T(test_listener_closed_inside_on_accept_with_backlog),
      T(test_dial_cancelled_from_callbacks),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
