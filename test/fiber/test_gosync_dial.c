/* Dial cancellation from elsewhere (G33, Go's DialContext), through both
 * APIs, on loopback:
 *  - facade: rill_net_dial_ctx() ended by another fiber's rill_ctx_cancel()
 *    (Go: "dial tcp 127.0.0.1:PORT: operation was canceled"), by the
 *    context's deadline ("i/o timeout"), or by a context that had ended
 *    before the call; and a cancel racing a connect that completes at about
 *    the same time, many times over: exactly one outcome each time, a
 *    connection that won is whole (G10, Go issue 16523), and no descriptor
 *    is left behind;
 *  - callback API: rill_dialer_cancel() from another callback (a timer)
 *    racing the same connect: exactly one completion per dial. */
#define _GNU_SOURCE 1

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rill.h"
#include "test_util.h"
#include "net_util.h"
#include "gosync_util.h"

#define NS_PER_MS 1000000ull

/* What the listener's accept callback cancels, if anything: the tightest
 * race, since the dialer's socket may be found connected in the same turn
 * of the loop. */
static rill_ctx *g_cancel_ctx_in_accept;
static rill_dialer *g_cancel_dialer_in_accept;
static const int *g_dialer_calls;

/* A callback-API listener that closes what it accepts. */
static void close_accepted(rill_listener *l, rill_conn *c, int status, void *arg) {
  (void)l;
  (void)arg;
  if (status != 0)
    return;
  rill_conn_close(c);
  if (g_cancel_ctx_in_accept)
    rill_ctx_cancel(g_cancel_ctx_in_accept);
  g_cancel_ctx_in_accept = NULL;
  /* The dialer handle is valid until its completion: cancel only before. */
  if (g_cancel_dialer_in_accept && *g_dialer_calls == 0)
    assert_int_equal(rill_dialer_cancel(g_cancel_dialer_in_accept), 0);
  g_cancel_dialer_in_accept = NULL;
}

struct dial_test {
  rill_listener *l;
  char addr[64];
  rill_ctx *ctx;
  int result;
  rill_net_conn *conn;
  char err[256];
  int finished;
  /* the race */
  int mode;
  int canceller_done;
  int won, canceled;
};

static void listen_here(rill_base *base, struct dial_test *t) {
  FCHECK_EQ(rill_listen(base, "tcp", "127.0.0.1:0", NULL, close_accepted, NULL, &t->l), 0);
  snprintf(t->addr, sizeof t->addr, "127.0.0.1:%d", rill_listener_port(t->l));
}

/* ---- a cancel from another fiber ---------------------------------------- */

static void dialer_fiber(void *arg) {
  struct dial_test *t = (struct dial_test *)arg;
  t->conn = NULL;
  t->result = rill_net_dial_ctx(t->ctx, "tcp", t->addr, NULL, &t->conn, t->err, sizeof t->err);
  t->finished++;
}

static void canceller_fiber(void *arg) {
  struct dial_test *t = (struct dial_test *)arg;
  FCHECK_EQ(rill_ctx_cancel(t->ctx), 0);
}

static void cancel_main(void *arg) {
  struct dial_test *t = (struct dial_test *)arg;
  rill_base *base = rill_fiber_base();
  char want[128];
  listen_here(base, t);
  /* The dialer parks, then the canceller runs in the same turn of the
   * loop: the cancel comes before the connect can be reported, so it wins. */
  FCHECK_EQ(rill_ctx_new(NULL, &t->ctx), 0);
  FCHECK_EQ(rill_go(base, dialer_fiber, t), 0);
  FCHECK_EQ(rill_go(base, canceller_fiber, t), 0);
  while (!t->finished)
    FCHECK_EQ(rill_sleep(1 * RILL_MSEC), 0);
  FCHECK_EQ(t->result, RILL_ECANCELED);
  FCHECK(t->conn == NULL);
  snprintf(want, sizeof want, "dial tcp %s: operation was canceled", t->addr);
  FCHECK_EQ(strcmp(t->err, want), 0);
  /* A context that ended before the call: no socket at all. */
  t->finished = 0;
  dialer_fiber(t);
  FCHECK_EQ(t->result, RILL_ECANCELED);
  FCHECK_EQ(strcmp(t->err, want), 0);
  FCHECK_EQ(rill_ctx_free(t->ctx), 0);
  /* A context that ended at its deadline: Go says "i/o timeout". */
  FCHECK_EQ(rill_ctx_new_deadline(base, NULL, rill_time_now(), &t->ctx), 0);
  dialer_fiber(t);
  FCHECK_EQ(t->result, RILL_ETIMEOUT);
  snprintf(want, sizeof want, "dial tcp %s: i/o timeout", t->addr);
  FCHECK_EQ(strcmp(t->err, want), 0);
  FCHECK_EQ(rill_ctx_free(t->ctx), 0);
  /* A NULL context: a plain dial. */
  t->ctx = NULL;
  dialer_fiber(t);
  FCHECK_EQ(t->result, 0);
  FCHECK(t->conn != NULL);
  rill_net_conn_free(t->conn);
  rill_listener_free(t->l);
}

static void g33_cancel_from_another_fiber(void **state) {
  struct dial_test t;
  (void)state;
  memset(&t, 0, sizeof t);
  run_fiber(cancel_main, &t); /* and the fixture counts descriptors */
  assert_int_equal(rill_net_dial_ctx(NULL, "tcp", "127.0.0.1:1", NULL, &t.conn, NULL, 0), RILL_ENOTFIBER);
}

/* ---- a deadline ends a connect that cannot finish ------------------------ */

/* Fills the accept queue of a raw listener that never accepts, so the next
 * connect to it stays in progress. Returns how many fillers it took. */
static int fill_backlog(int port, int *fillers, int max) {
  int n = 0;
  while (n < max) {
    int fd = nu_raw_connect_nb("127.0.0.1", port);
    if (fd < 0)
      return n;
    if (nu_wait_connected(fd, 150) != 1) {
      close(fd);
      return n;
    }
    fillers[n++] = fd;
  }
  return n;
}

static void deadline_main(void *arg) {
  struct dial_test *t = (struct dial_test *)arg;
  rill_base *base = rill_fiber_base();
  char want[128];
  uint64_t t0 = tu_now_ns();
  FCHECK_EQ(rill_ctx_new_timeout(base, NULL, 100 * RILL_MSEC, &t->ctx), 0);
  dialer_fiber(t);
  FCHECK_EQ(t->result, RILL_ETIMEOUT);
  FCHECK(tu_now_ns() - t0 >= 100 * NS_PER_MS);
  snprintf(want, sizeof want, "dial tcp %s: i/o timeout", t->addr);
  FCHECK_EQ(strcmp(t->err, want), 0);
  FCHECK_EQ(rill_ctx_free(t->ctx), 0);
}

static void g33_deadline_ends_stuck_dial(void **state) {
  struct dial_test t;
  int fillers[64], nfill, port, lfd, fds;
  (void)state;
  memset(&t, 0, sizeof t);
  lfd = nu_raw_listen("127.0.0.1", 1, &port);
  nfill = fill_backlog(port, fillers, 64);
  assert_true(nfill > 0 && nfill < 64);
  snprintf(t.addr, sizeof t.addr, "127.0.0.1:%d", port);
  fds = tu_count_fds();
  run_fiber(deadline_main, &t);
  tu_assert_fds(fds); /* the dial's socket is closed */
  for (int i = 0; i < nfill; i++)
    close(fillers[i]);
  close(lfd);
}

/* ---- the race: cancel against a loopback connect, many times ------------- */

#define RACES 400

static void cancel_cb(rill_timer *timer, void *arg) {
  struct dial_test *t = (struct dial_test *)arg;
  rill_ctx_cancel(t->ctx);
  t->canceller_done = 1;
  rill_timer_free(timer);
}

/* Cancels at a different moment each round: in the dialer's own turn of
 * the loop, after the loop polled once (when the connect may already be
 * reported), a little later, from a timer callback, and from the accept
 * callback of the listener the dial reaches. */
static void race_canceller(void *arg) {
  struct dial_test *t = (struct dial_test *)arg;
  switch (t->mode) {
  case 0:
    break;
  case 1:
    FCHECK_EQ(rill_sleep(0), 0);
    break;
  case 2:
    FCHECK_EQ(rill_sleep(1 * RILL_MSEC), 0);
    break;
  case 3: {
    rill_timer *timer;
    FCHECK_EQ(rill_timer_new(rill_fiber_base(), cancel_cb, t, &timer), 0);
    FCHECK_EQ(rill_timer_start(timer, 0, 0), 0);
    return;
  }
  default:
    g_cancel_ctx_in_accept = t->ctx;
    t->canceller_done = 1;
    return;
  }
  FCHECK_EQ(rill_ctx_cancel(t->ctx), 0);
  t->canceller_done = 1;
}

static void race_main(void *arg) {
  struct dial_test *t = (struct dial_test *)arg;
  rill_base *base = rill_fiber_base();
  listen_here(base, t);
  for (int i = 0; i < RACES; i++) {
    t->mode = i % 5;
    t->finished = 0;
    t->canceller_done = 0;
    FCHECK_EQ(rill_ctx_new(NULL, &t->ctx), 0);
    FCHECK_EQ(rill_go(base, dialer_fiber, t), 0);
    FCHECK_EQ(rill_go(base, race_canceller, t), 0);
    while (!t->finished || !t->canceller_done)
      FCHECK_EQ(rill_yield(), 0);
    g_cancel_ctx_in_accept = NULL; /* the connect lost before any accept */
    if (t->result == 0) {
      /* The connect won: a whole connection, untouched by the cancel. */
      struct sockaddr_storage ss;
      socklen_t len = sizeof ss;
      FCHECK(t->conn != NULL);
      FCHECK_EQ(getpeername(rill_net_fd(t->conn), (struct sockaddr *)&ss, &len), 0);
      FCHECK_EQ(rill_net_write(t->conn, "x", 1, NULL), 0);
      rill_net_conn_free(t->conn);
      t->won++;
    } else {
      FCHECK_EQ(t->result, RILL_ECANCELED);
      FCHECK(t->conn == NULL);
      t->canceled++;
    }
    FCHECK_EQ(rill_ctx_free(t->ctx), 0);
  }
  rill_listener_free(t->l);
}

static void g33_cancel_races_connect(void **state) {
  struct dial_test t;
  (void)state;
  memset(&t, 0, sizeof t);
  run_fiber(race_main, &t); /* the fixture finds every descriptor closed */
  printf("# G33 facade: %d connected, %d canceled\n", t.won, t.canceled);
  assert_int_equal(t.won + t.canceled, RACES);
  assert_true(t.canceled >= RACES / 5); /* a cancel in the dialer's turn always wins */
}

/* ---- the callback API: rill_dialer_cancel from another callback ---------- */

struct cb_race {
  nu_dial d[RACES];
  rill_dialer *dialer;
  int index;
  int cancel_ran;
};

static void cb_cancel(rill_timer *timer, void *arg) {
  struct cb_race *r = (struct cb_race *)arg;
  if (r->d[r->index].calls == 0)
    assert_int_equal(rill_dialer_cancel(r->dialer), 0);
  r->cancel_ran = 1;
  rill_timer_free(timer);
}

static void g33_callback_cancel_races_connect(void **state) {
  rill_base *base = tu_base_new();
  rill_listener *l = NULL;
  struct cb_race *r = (struct cb_race *)calloc(1, sizeof *r);
  char addr[64];
  int won = 0, canceled = 0;
  (void)state;
  assert_non_null(r);
  assert_int_equal(rill_listen(base, "tcp", "127.0.0.1:0", NULL, close_accepted, NULL, &l), 0);
  snprintf(addr, sizeof addr, "127.0.0.1:%d", rill_listener_port(l));
  for (int i = 0; i < RACES; i++) {
    rill_timer *timer;
    r->index = i;
    r->cancel_ran = 0;
    assert_int_equal(rill_dial(base, "tcp", addr, NULL, nu_dial_cb, &r->d[i], &r->dialer), 0);
    /* The cancel comes from another callback: the listener's accept
     * callback (in the turn of the loop in which the connect may be found
     * complete), or a timer after the loop polled once, or a little later. */
    if (i % 3 == 0) {
      g_dialer_calls = &r->d[i].calls;
      g_cancel_dialer_in_accept = r->dialer;
      r->cancel_ran = 1;
    } else {
      assert_int_equal(rill_timer_new(base, cb_cancel, r, &timer), 0);
      assert_int_equal(rill_timer_start(timer, (uint64_t)(i % 3 - 1) * RILL_MSEC, 0), 0);
    }
    nu_run_until_count(base, &r->d[i].calls, 1, LIMIT);
    while (!r->cancel_ran)
      tu_run(base, RILL_RUN_ONCE, LIMIT);
    g_cancel_dialer_in_accept = NULL;
    if (r->d[i].status == 0) {
      struct sockaddr_storage ss;
      socklen_t len = sizeof ss;
      assert_non_null(r->d[i].conn);
      assert_int_equal(getpeername(rill_conn_fd(r->d[i].conn), (struct sockaddr *)&ss, &len), 0);
      assert_int_equal(rill_conn_close(r->d[i].conn), 0);
      won++;
    } else {
      assert_int_equal(r->d[i].status, RILL_ECANCELED);
      assert_null(r->d[i].conn);
      canceled++;
    }
  }
  nu_stop_after(base, 50); /* anything late would show up */
  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  for (int i = 0; i < RACES; i++)
    if (r->d[i].calls != 1)
      fail_msg("dial %d completed %d times", i, r->d[i].calls);
  printf("# G33 callbacks: %d connected, %d canceled\n", won, canceled);
  rill_listener_free(l);
  nu_settle(base);
  free(r);
  tu_base_free(base); /* and the fixture counts descriptors */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(g33_cancel_from_another_fiber, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(g33_deadline_ends_stuck_dial, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(g33_cancel_races_connect, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(g33_callback_cancel_races_connect, tu_setup_fds, tu_teardown_fds),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
