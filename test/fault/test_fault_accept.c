/* G26 under fault injection: accept errors on a listener.
 *
 * ECONNABORTED (the peer reset the connection before it was taken) is
 * retried silently: the accept callback never sees it. EMFILE / ENFILE (out
 * of descriptors) are reported, the listener keeps running without a busy
 * loop (a level-triggered poller would report the pending connection ready
 * again at once), and it accepts again once the fault ends.
 *
 * Linked with --wrap=accept4,accept; the wrappers only touch the listening
 * socket under test. Real loopback clients connect before the loop runs, so
 * the listener is genuinely readable the whole time. */
#define _GNU_SOURCE 1

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rill.h"
#include "test_util.h"

#define LIMIT 5000
#define MAX_EVENTS 64

/* fault_common.c */
int fc_raw_connect(int port);

int __real_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags);
int __real_accept(int fd, struct sockaddr *addr, socklen_t *len);

static struct {
  int fd;        /* the listening socket under test; -1: none */
  int err;       /* errno to inject */
  int remaining; /* faults still to inject; -1: until disarmed */
  int calls;     /* accept4()+accept() calls on fd */
  int faults;
} g = {-1, 0, 0, 0, 0};

static int fault_now(int fd) {
  if (fd != g.fd)
    return 0;
  g.calls++;
  if (g.remaining == 0)
    return 0;
  if (g.remaining > 0)
    g.remaining--;
  g.faults++;
  errno = g.err;
  return 1;
}

int __wrap_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags) {
  if (fault_now(fd))
    return -1;
  return __real_accept4(fd, addr, len, flags);
}

/* The fallback path (if accept4() is ever refused) must meet the same
 * fault, or the test would pass by going around it. */
int __wrap_accept(int fd, struct sockaddr *addr, socklen_t *len) {
  if (fault_now(fd))
    return -1;
  return __real_accept(fd, addr, len);
}

static void plan(int fd, int err, int remaining) {
  g.fd = fd;
  g.err = err;
  g.remaining = remaining;
  g.calls = g.faults = 0;
}

struct rec {
  rill_listener *listener;
  int want;      /* connections to accept before closing the listener */
  int accepted;
  int errors;
  int n;
  int status[MAX_EVENTS];
  uint64_t when_ms[MAX_EVENTS];
  /* sustained-fault test */
  rill_base *base;
  rill_timer *stop_fault;
  int calls_at_stop, faults_at_stop;
  uint64_t iterations_at_start, iterations_at_stop;
  uint64_t stopped_ms;
};

static void on_accept(rill_listener *l, rill_conn *conn, int status, void *arg) {
  struct rec *r = (struct rec *)arg;
  (void)l;
  if (r->n < MAX_EVENTS) {
    r->status[r->n] = status;
    r->when_ms[r->n] = tu_now_ms();
  }
  r->n++;
  if (status < 0) {
    assert_null(conn);
    r->errors++;
    return;
  }
  assert_non_null(conn);
  r->accepted++;
  rill_conn_close(conn);
  if (r->accepted == r->want) {
    rill_listener_free(r->listener);
    r->listener = NULL;
  }
}

static rill_base *start(struct rec *r, int want, int *clients, int nclients) {
  rill_base *base = tu_base_new();
  int i;
  memset(r, 0, sizeof *r);
  r->want = want;
  assert_int_equal(rill_listen(base, "tcp", "127.0.0.1:0", NULL, on_accept, r, &r->listener), 0);
  for (i = 0; i < nclients; i++)
    clients[i] = fc_raw_connect(rill_listener_port(r->listener));
  return base;
}

static void finish(rill_base *base, int *clients, int nclients) {
  int i;
  g.fd = -1;
  tu_base_free(base);
  for (i = 0; i < nclients; i++)
    close(clients[i]);
}

/* ECONNABORTED once: retried at once, never reported. */
static void test_accept_econnaborted_retried(void **state) {
  struct rec r;
  int clients[1];
  rill_base *base = start(&r, 1, clients, 1);
  (void)state;
  plan(rill_listener_fd(r.listener), ECONNABORTED, 1);
  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  assert_int_equal(g.faults, 1);
  assert_true(g.calls >= 2);
  assert_int_equal(r.errors, 0);
  assert_int_equal(r.accepted, 1);
  assert_int_equal(r.n, 1);
  assert_int_equal(r.status[0], 0);
  finish(base, clients, 1);
}

/* Several aborted connections in a row: still silent. */
static void test_accept_econnaborted_many(void **state) {
  struct rec r;
  int clients[2];
  rill_base *base = start(&r, 2, clients, 2);
  (void)state;
  plan(rill_listener_fd(r.listener), ECONNABORTED, 5);
  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  assert_int_equal(g.faults, 5);
  assert_int_equal(r.errors, 0);
  assert_int_equal(r.accepted, 2);
  finish(base, clients, 2);
}

/* Out of descriptors twice: two reports, a back-off, then both pending
 * connections are taken. */
static void out_of_fds_twice(int err) {
  struct rec r;
  int clients[2];
  rill_base *base = start(&r, 2, clients, 2);
  plan(rill_listener_fd(r.listener), err, 2);
  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  assert_int_equal(g.faults, 2);
  assert_int_equal(r.errors, 2);
  assert_int_equal(r.accepted, 2);
  assert_int_equal(r.n, 4);
  assert_int_equal(r.status[0], -err);
  assert_int_equal(r.status[1], -err);
  assert_int_equal(r.status[2], 0);
  assert_int_equal(r.status[3], 0);
  /* Not a busy loop: no more calls than the faults and the two accepts
   * (and an EAGAIN) need, and the retries were spaced out. */
  assert_true(g.calls <= 6);
  assert_true(r.when_ms[1] > r.when_ms[0]);
  assert_true(r.when_ms[2] - r.when_ms[0] >= 5);
  finish(base, clients, 2);
}

static void test_accept_emfile_twice(void **state) {
  (void)state;
  out_of_fds_twice(EMFILE);
}

static void test_accept_enfile_twice(void **state) {
  (void)state;
  out_of_fds_twice(ENFILE);
}

static void stop_fault_cb(rill_timer *t, void *arg) {
  struct rec *r = (struct rec *)arg;
  rill_base_stats st;
  r->calls_at_stop = g.calls;
  r->faults_at_stop = g.faults;
  r->stopped_ms = tu_now_ms();
  assert_int_equal(rill_base_stats_get(r->base, &st), 0);
  r->iterations_at_stop = st.iterations;
  g.remaining = 0; /* descriptors are free again */
  rill_timer_free(t);
  r->stop_fault = NULL;
}

/* EMFILE for 100 ms while a connection waits: a handful of attempts (the
 * back-off doubles from 5 ms), each one reported, the loop idle in between,
 * and the connection is taken after the fault ends. */
static void test_accept_emfile_sustained_no_spin(void **state) {
  struct rec r;
  rill_base_stats st;
  int clients[1];
  rill_base *base = start(&r, 1, clients, 1);
  (void)state;
  r.base = base;
  assert_int_equal(rill_timer_new(base, stop_fault_cb, &r, &r.stop_fault), 0);
  assert_int_equal(rill_timer_start(r.stop_fault, 100 * RILL_MSEC, 0), 0);
  assert_int_equal(rill_base_stats_get(base, &st), 0);
  r.iterations_at_start = st.iterations;
  plan(rill_listener_fd(r.listener), EMFILE, -1);
  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);

  assert_null(r.stop_fault);
  assert_true(r.faults_at_stop >= 1);
  assert_true(r.calls_at_stop < 20);
  assert_true(r.iterations_at_stop - r.iterations_at_start < 40);
  /* Every failed attempt was reported, and nothing else failed. */
  assert_int_equal(r.errors, r.faults_at_stop);
  assert_int_equal(g.faults, r.faults_at_stop);
  assert_int_equal(r.accepted, 1);
  assert_int_equal(r.status[r.n - 1], 0);
  {
    int i;
    for (i = 0; i < r.n - 1 && i < MAX_EVENTS; i++)
      assert_int_equal(r.status[i], -EMFILE);
  }
  /* Taken within the back-off in force when the fault ended (<= 1 s cap). */
  assert_true(r.when_ms[r.n - 1] - r.stopped_ms <= 1100);
  finish(base, clients, 1);
}

/* A listener closed from its own error callback during the back-off. */
static void close_on_error(rill_listener *l, rill_conn *conn, int status, void *arg) {
  int *errors = (int *)arg;
  if (conn)
    rill_conn_close(conn);
  if (status < 0)
    (*errors)++;
  rill_listener_free(l);
}

static void test_accept_emfile_close_in_callback(void **state) {
  rill_base *base = tu_base_new();
  rill_listener *l;
  int errors = 0, client;
  (void)state;
  assert_int_equal(rill_listen(base, "tcp", "127.0.0.1:0", NULL, close_on_error, &errors, &l), 0);
  client = fc_raw_connect(rill_listener_port(l));
  plan(rill_listener_fd(l), EMFILE, -1);
  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT); /* nothing left: the back-off timer is gone too */
  assert_int_equal(errors, 1);
  assert_int_equal(g.faults, 1);
  g.fd = -1;
  tu_base_free(base);
  close(client);
}

int main(void) {
  /* accept4() is what this test scripts; on io_uring a listener's connections
   * come in accept completions instead, so keep it on readiness there
   * (docs/io_uring.md; test_io_uring_stream covers the completion path). */
  setenv("RILL_IO_URING_STREAMS", "0", 1);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_accept_econnaborted_retried, tu_setup_fds,
                                      tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_accept_econnaborted_many, tu_setup_fds,
                                      tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_accept_emfile_twice, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_accept_enfile_twice, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_accept_emfile_sustained_no_spin, tu_setup_fds,
                                      tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_accept_emfile_close_in_callback, tu_setup_fds,
                                      tu_teardown_fds),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
