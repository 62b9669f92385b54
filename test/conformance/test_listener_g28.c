/* G28 for the callback API's listener: rill_listener_free() while
 * connections are being accepted stops every later on_accept (none for the
 * connections the kernel still had queued); inside its own on_accept the
 * other listener calls say RILL_ECLOSED until the callback returns, and a
 * second close does nothing; the socket is gone (a new connect is
 * refused). Once close has returned outside a callback the handle is gone
 * (rill/net.h): there is nothing left to call, so nothing to test. The
 * descriptor fixture checks that nothing leaks. */
#define _GNU_SOURCE 1

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "net_util.h"
#include "test_util.h"

#define LIMIT 10000
#define CLIENTS 4

struct g28 {
  rill_listener *l;
  int accepts, after_close;
  int closed;
  int in_cb_port, in_cb_addr, in_cb_fd, in_cb_pause, in_cb_resume;
};

static void on_accept_close_first(rill_listener *l, rill_conn *c, int status, void *arg) {
  struct g28 *t = (struct g28 *)arg;
  char buf[RILL_ADDRSTRLEN];
  if (t->closed) {
    t->after_close++;
  } else {
    t->accepts++;
    t->closed = 1;
    rill_listener_free(l);
    /* Closed, and still inside its own callback: every other call says so. */
    t->in_cb_port = rill_listener_port(l);
    t->in_cb_addr = rill_listener_addr(l, buf, sizeof buf);
    t->in_cb_fd = rill_listener_fd(l);
    t->in_cb_pause = rill_listener_stop(l);
    t->in_cb_resume = rill_listener_start(l);
    rill_listener_free(l); /* a second close: nothing */
  }
  if (status == 0)
    rill_conn_close(c); /* the connection handed over is the user's either way */
}

static void test_g28_callback_close_inside_on_accept(void **state) {
  rill_base *base = tu_base_new();
  struct g28 t;
  int clients[CLIENTS], port, i, again;
  (void)state;
  memset(&t, 0, sizeof t);
  assert_int_equal(rill_listen(base, "tcp", "127.0.0.1:0", NULL, on_accept_close_first, &t, &t.l), 0);
  port = rill_listener_port(t.l);
  /* Every client completes in the kernel's queue before the loop runs. */
  for (i = 0; i < CLIENTS; i++) {
    clients[i] = nu_raw_connect("127.0.0.1", port);
    assert_true(clients[i] >= 0);
  }
  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  assert_int_equal(t.accepts, 1);
  assert_int_equal(t.after_close, 0); /* no callback after close */
  assert_int_equal(t.in_cb_port, RILL_ECLOSED);
  assert_int_equal(t.in_cb_addr, RILL_ECLOSED);
  assert_int_equal(t.in_cb_fd, RILL_ECLOSED);
  assert_int_equal(t.in_cb_pause, RILL_ECLOSED);
  assert_int_equal(t.in_cb_resume, RILL_ECLOSED);
  /* The listening socket is closed: the port refuses. */
  again = nu_raw_connect("127.0.0.1", port);
  assert_true(again < 0);
  for (i = 0; i < CLIENTS; i++)
    close(clients[i]);
  nu_settle(base);
  tu_base_free(base);
}

/* Closed from a timer in the iteration where queued connections make it
 * readable: what the loop had already collected for it is dropped. */
static void close_from_timer(rill_timer *timer, void *arg) {
  struct g28 *t = (struct g28 *)arg;
  t->closed = 1;
  rill_listener_free(t->l);
  rill_timer_free(timer);
}

static void on_accept_count(rill_listener *l, rill_conn *c, int status, void *arg) {
  struct g28 *t = (struct g28 *)arg;
  (void)l;
  if (t->closed)
    t->after_close++;
  else
    t->accepts++;
  if (status == 0)
    rill_conn_close(c);
}

static void test_g28_callback_close_while_connections_wait(void **state) {
  rill_base *base = tu_base_new();
  rill_timer *timer;
  struct g28 t;
  int clients[CLIENTS], port, i;
  (void)state;
  memset(&t, 0, sizeof t);
  assert_int_equal(rill_listen(base, "tcp", "127.0.0.1:0", NULL, on_accept_count, &t, &t.l), 0);
  port = rill_listener_port(t.l);
  for (i = 0; i < CLIENTS; i++) {
    clients[i] = nu_raw_connect("127.0.0.1", port);
    assert_true(clients[i] >= 0);
  }
  assert_int_equal(rill_timer_new(base, close_from_timer, &t, &timer), 0);
  assert_int_equal(rill_timer_start(timer, 0, 0), 0);
  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  assert_true(t.closed);
  assert_int_equal(t.after_close, 0);
  assert_true(t.accepts <= CLIENTS);
  assert_true(nu_raw_connect("127.0.0.1", port) < 0);
  for (i = 0; i < CLIENTS; i++)
    close(clients[i]);
  nu_settle(base);
  tu_base_free(base);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_g28_callback_close_inside_on_accept, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_g28_callback_close_while_connections_wait, tu_setup_fds,
                                      tu_teardown_fds),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
