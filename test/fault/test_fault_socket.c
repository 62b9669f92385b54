/* G1 under fault injection: socket() and accept4() that reject
 * SOCK_NONBLOCK|SOCK_CLOEXEC.
 *
 * socket(): EINVAL and EPROTONOSUPPORT (an old kernel) must fall back to
 * socket() + fcntl(), for rill_listen() and rill_dial() alike, and the
 * descriptors still end up non-blocking and close-on-exec. Any other errno
 * (EMFILE) is the answer: no fallback, and the error is reported as
 * "dial tcp 127.0.0.1:P: socket: too many open files".
 * accept4(): ENOSYS falls back to accept() + fcntl().
 *
 * Linked with --wrap=socket,accept4,accept: the wrappers below see every
 * call rill makes; they only inject while a plan is armed, and only on the
 * calls it targets. Callbacks record; assertions run after the loop. */
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

/* fault_common.c */
int fc_is_nonblock(int fd);
int fc_is_cloexec(int fd);
int fc_raw_listen(int *port);
int fc_raw_connect(int port);

/* ---- socket() plan ------------------------------------------------------ */

int __real_socket(int domain, int type, int protocol);
int __real_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags);
int __real_accept(int fd, struct sockaddr *addr, socklen_t *len);

static struct {
  int armed;
  int err;      /* errno for socket() calls that ask for both flags */
  int flagged;  /* such calls seen while armed */
  int plain;    /* calls with neither flag seen while armed (the fallback) */
} g_sock;

int __wrap_socket(int domain, int type, int protocol) {
  if (g_sock.armed) {
    if ((type & SOCK_NONBLOCK) && (type & SOCK_CLOEXEC)) {
      g_sock.flagged++;
      errno = g_sock.err;
      return -1;
    }
    if (!(type & (SOCK_NONBLOCK | SOCK_CLOEXEC)))
      g_sock.plain++;
  }
  return __real_socket(domain, type, protocol);
}

static void sock_arm(int err) {
  memset(&g_sock, 0, sizeof g_sock);
  g_sock.armed = 1;
  g_sock.err = err;
}

static void sock_disarm(void) { g_sock.armed = 0; }

/* ---- accept4() / accept() plan ------------------------------------------ */

static struct {
  int fd;       /* the listening socket under test; -1: none */
  int err;      /* accept4() on it fails with this */
  int accept4_calls;
  int accept_calls;
} g_acc = {-1, 0, 0, 0};

int __wrap_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags) {
  if (fd == g_acc.fd) {
    g_acc.accept4_calls++;
    errno = g_acc.err;
    return -1;
  }
  return __real_accept4(fd, addr, len, flags);
}

int __wrap_accept(int fd, struct sockaddr *addr, socklen_t *len) {
  if (fd == g_acc.fd)
    g_acc.accept_calls++;
  return __real_accept(fd, addr, len);
}

/* ---- listen + dial round trip ---------------------------------------- */

struct trip {
  rill_listener *listener;
  int accepted, accept_errors;
  int acc_nonblock, acc_cloexec;
  int dialed, dial_status;
  int dial_nonblock, dial_cloexec;
  char msg[256];
};

static void trip_finish(struct trip *t) {
  if (t->listener && t->accepted && t->dialed) {
    rill_listener_free(t->listener);
    t->listener = NULL;
  }
}

static void trip_accept(rill_listener *l, rill_conn *conn, int status, void *arg) {
  struct trip *t = (struct trip *)arg;
  (void)l;
  if (status != 0) {
    t->accept_errors++; /* a failure: stop at once rather than time out */
    if (t->listener) {
      rill_listener_free(t->listener);
      t->listener = NULL;
    }
    return;
  }
  t->accepted++;
  t->acc_nonblock = fc_is_nonblock(rill_conn_fd(conn));
  t->acc_cloexec = fc_is_cloexec(rill_conn_fd(conn));
  rill_conn_close(conn);
  trip_finish(t);
}

static void trip_dial(rill_dialer *d, rill_conn *conn, int status, void *arg) {
  struct trip *t = (struct trip *)arg;
  t->dialed++;
  t->dial_status = status;
  if (conn) {
    t->dial_nonblock = fc_is_nonblock(rill_conn_fd(conn));
    t->dial_cloexec = fc_is_cloexec(rill_conn_fd(conn));
    rill_conn_close(conn);
  } else {
    rill_dialer_format_error(d, status, t->msg, sizeof t->msg);
    t->accepted = 1; /* nothing will come: let trip_finish close */
  }
  trip_finish(t);
}

/* rill_listen() and rill_dial() with socket() rejecting the flags by `err`. */
static void fallback_round_trip(int err) {
  rill_base *base = tu_base_new();
  struct trip t;
  char addr[RILL_ADDRSTRLEN];
  int lfd;
  memset(&t, 0, sizeof t);

  sock_arm(err);
  assert_int_equal(rill_listen(base, "tcp", "127.0.0.1:0", NULL, trip_accept, &t, &t.listener),
                   0);
  sock_disarm();
  assert_int_equal(g_sock.flagged, 1);
  assert_int_equal(g_sock.plain, 1); /* the fallback ran */
  lfd = rill_listener_fd(t.listener);
  assert_true(fc_is_nonblock(lfd));
  assert_true(fc_is_cloexec(lfd));
  assert_true(rill_listener_addr(t.listener, addr, sizeof addr) > 0);

  sock_arm(err);
  assert_int_equal(rill_dial(base, "tcp", addr, NULL, trip_dial, &t, NULL), 0);
  sock_disarm();
  assert_int_equal(g_sock.flagged, 1);
  assert_int_equal(g_sock.plain, 1);

  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  assert_int_equal(t.dialed, 1);
  assert_int_equal(t.dial_status, 0);
  assert_true(t.dial_nonblock);
  assert_true(t.dial_cloexec);
  assert_int_equal(t.accepted, 1);
  assert_int_equal(t.accept_errors, 0);
  assert_true(t.acc_nonblock);
  assert_true(t.acc_cloexec);
  assert_null(t.listener);
  tu_base_free(base);
}

static void test_socket_einval_falls_back(void **state) {
  (void)state;
  fallback_round_trip(EINVAL);
}

static void test_socket_eprotonosupport_falls_back(void **state) {
  (void)state;
  fallback_round_trip(EPROTONOSUPPORT);
}

/* EMFILE is not "the kernel does not know the flags": no second socket(). */
static void test_socket_emfile_listen_no_fallback(void **state) {
  rill_base *base = tu_base_new();
  rill_listener *l = NULL;
  struct trip t;
  (void)state;
  memset(&t, 0, sizeof t);
  sock_arm(EMFILE);
  assert_int_equal(rill_listen(base, "tcp", "127.0.0.1:0", NULL, trip_accept, &t, &l), -EMFILE);
  sock_disarm();
  assert_null(l);
  assert_int_equal(g_sock.flagged, 1);
  assert_int_equal(g_sock.plain, 0);
  tu_base_free(base);
}

static void test_socket_emfile_dial_reports(void **state) {
  rill_base *base = tu_base_new();
  struct trip t;
  char addr[64], want[128];
  int port, lfd = fc_raw_listen(&port);
  (void)state;
  memset(&t, 0, sizeof t);
  snprintf(addr, sizeof addr, "127.0.0.1:%d", port);

  sock_arm(EMFILE);
  assert_int_equal(rill_dial(base, "tcp", addr, NULL, trip_dial, &t, NULL), 0);
  sock_disarm();
  assert_int_equal(t.dialed, 0); /* never from inside rill_dial() */
  assert_int_equal(g_sock.flagged, 1);
  assert_int_equal(g_sock.plain, 0);

  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  assert_int_equal(t.dialed, 1);
  assert_int_equal(t.dial_status, -EMFILE);
  snprintf(want, sizeof want, "dial tcp %s: socket: too many open files", addr);
  assert_string_equal(t.msg, want);
  tu_base_free(base);
  close(lfd);
}

/* accept4() without kernel support: accept() + fcntl(). */
static void test_accept4_enosys_falls_back(void **state) {
  rill_base *base = tu_base_new();
  struct trip t;
  int client;
  (void)state;
  memset(&t, 0, sizeof t);
  assert_int_equal(rill_listen(base, "tcp", "127.0.0.1:0", NULL, trip_accept, &t, &t.listener),
                   0);
  client = fc_raw_connect(rill_listener_port(t.listener));
  t.dialed = 1; /* no rill dial here: the accept alone finishes */

  memset(&g_acc, 0, sizeof g_acc);
  g_acc.fd = rill_listener_fd(t.listener);
  g_acc.err = ENOSYS;
  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  g_acc.fd = -1;

  assert_int_equal(t.accepted, 1);
  assert_int_equal(t.accept_errors, 0);
  assert_true(g_acc.accept4_calls >= 1);
  assert_true(g_acc.accept_calls >= 1); /* the fallback took the connection */
  assert_true(t.acc_nonblock);
  assert_true(t.acc_cloexec);
  tu_base_free(base);
  close(client);
}

int main(void) {
  /* accept4() is what this test scripts; on io_uring a listener's connections
   * come in accept completions instead, so keep it on readiness there
   * (docs/io_uring.md; test_io_uring_stream covers the completion path). */
  setenv("RILL_IO_URING_STREAMS", "0", 1);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_socket_einval_falls_back, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_socket_eprotonosupport_falls_back, tu_setup_fds,
                                      tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_socket_emfile_listen_no_fallback, tu_setup_fds,
                                      tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_socket_emfile_dial_reports, tu_setup_fds,
                                      tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_accept4_enosys_falls_back, tu_setup_fds,
                                      tu_teardown_fds),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
