/* G7 under fault injection: a non-blocking connect completed the Go way.
 *
 * connect() is forced to answer EINPROGRESS (the real connect to a real
 * loopback listener runs first, so the socket is genuinely connected and
 * stays writable: the level-triggered poller keeps coming back). Then
 * getsockopt(SO_ERROR) answers from a script, and getpeername() may fail
 * (a spurious wake-up, Go issues 14548/19289):
 *   EINPROGRESS / EALREADY / EINTR -> wait again
 *   EISCONN                        -> connected
 *   0 + getpeername() OK           -> connected
 *   0 + getpeername() ENOTCONN     -> wait again
 *   anything else                  -> that error ("connect: ...")
 * and the dial callback runs exactly once.
 *
 * Linked with --wrap=connect,getsockopt,getpeername; the wrappers only touch
 * the descriptor the armed connect() saw. */
#define _GNU_SOURCE 1

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rill.h"
#include "test_util.h"

#define LIMIT 5000
#define MAX_SCRIPT 8

/* fault_common.c */
int fc_raw_listen(int *port);

int __real_connect(int fd, const struct sockaddr *addr, socklen_t len);
int __real_getsockopt(int fd, int level, int name, void *val, socklen_t *len);
int __real_getpeername(int fd, struct sockaddr *addr, socklen_t *len);

static struct {
  int armed;   /* the next connect() is the dial under test */
  int fd;      /* its descriptor, -1 before */
  int connect_calls;
  int real_connect_rc;
  int so_error[MAX_SCRIPT]; /* SO_ERROR answers, in order; then the real one */
  int so_n, so_pos, so_calls;
  int peer_err[MAX_SCRIPT]; /* getpeername() answers: errno, or 0 = real */
  int peer_n, peer_pos, peer_calls;
} g;

/* What the armed connect() answers. */
enum connect_mode {
  CONNECT_INPROGRESS, /* -1/EINPROGRESS, whatever the real connect said */
  CONNECT_EINTR,      /* -1/EINTR: interrupted, the kernel goes on */
  CONNECT_AT_ONCE,    /* 0: waits for the handshake itself first */
  CONNECT_REFUSED     /* -1/ECONNREFUSED, no real connect */
};
static enum connect_mode g_mode = CONNECT_INPROGRESS;

int __wrap_connect(int fd, const struct sockaddr *addr, socklen_t len) {
  int rc;
  if (!g.armed)
    return __real_connect(fd, addr, len);
  g.armed = 0;
  g.fd = fd;
  g.connect_calls++;
  if (g_mode == CONNECT_REFUSED) {
    errno = ECONNREFUSED;
    return -1;
  }
  rc = __real_connect(fd, addr, len);
  g.real_connect_rc = rc < 0 ? -errno : 0;
  if (g_mode == CONNECT_AT_ONCE) {
    if (rc < 0 && errno == EINPROGRESS) {
      struct pollfd pfd;
      int soerr = 0;
      socklen_t slen = sizeof soerr;
      pfd.fd = fd;
      pfd.events = POLLOUT;
      pfd.revents = 0;
      if (poll(&pfd, 1, 2000) == 1 &&
          __real_getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &slen) == 0 && soerr == 0)
        return 0;
      errno = soerr ? soerr : ETIMEDOUT;
      return -1;
    }
    return rc;
  }
  if (rc == 0 || errno == EINPROGRESS) {
    /* The handshake may be done already; say it is not. */
    errno = g_mode == CONNECT_EINTR ? EINTR : EINPROGRESS;
    return -1;
  }
  return rc;
}

int __wrap_getsockopt(int fd, int level, int name, void *val, socklen_t *len) {
  int rc = __real_getsockopt(fd, level, name, val, len);
  if (fd == g.fd && level == SOL_SOCKET && name == SO_ERROR) {
    g.so_calls++;
    if (g.so_pos < g.so_n && rc == 0 && *len >= (socklen_t)sizeof(int))
      *(int *)val = g.so_error[g.so_pos++];
  }
  return rc;
}

int __wrap_getpeername(int fd, struct sockaddr *addr, socklen_t *len) {
  if (fd == g.fd) {
    g.peer_calls++;
    if (g.peer_pos < g.peer_n) {
      int err = g.peer_err[g.peer_pos++];
      if (err) {
        errno = err;
        return -1;
      }
    }
  }
  return __real_getpeername(fd, addr, len);
}

static void plan(const int *so, int so_n, const int *peer, int peer_n) {
  memset(&g, 0, sizeof g);
  g.fd = -1;
  assert_true(so_n <= MAX_SCRIPT && peer_n <= MAX_SCRIPT);
  if (so_n)
    memcpy(g.so_error, so, sizeof(int) * (size_t)so_n);
  if (peer_n)
    memcpy(g.peer_err, peer, sizeof(int) * (size_t)peer_n);
  g.so_n = so_n;
  g.peer_n = peer_n;
}

struct dial_rec {
  int calls;
  int status;
  int conn_fd;
  char remote[RILL_ADDRSTRLEN];
  char msg[256];
};

static void on_dial(rill_dialer *d, rill_conn *conn, int status, void *arg) {
  struct dial_rec *r = (struct dial_rec *)arg;
  r->calls++;
  r->status = status;
  if (conn) {
    r->conn_fd = rill_conn_fd(conn);
    rill_conn_remote_addr(conn, r->remote, sizeof r->remote);
    rill_conn_close(conn);
  } else {
    rill_dialer_format_error(d, status, r->msg, sizeof r->msg);
  }
}

/* Dials a real loopback listener with the scripts armed; returns the
 * address dialled in `addr`. */
static void run_dial(const int *so, int so_n, const int *peer, int peer_n, struct dial_rec *r,
                     char *addr, size_t addr_size) {
  rill_base *base = tu_base_new();
  int port, lfd = fc_raw_listen(&port);
  memset(r, 0, sizeof *r);
  r->conn_fd = -1;
  snprintf(addr, addr_size, "127.0.0.1:%d", port);

  plan(so, so_n, peer, peer_n);
  g.armed = 1;
  assert_int_equal(rill_dial(base, "tcp", addr, NULL, on_dial, r, NULL), 0);
  g.armed = 0;
  assert_int_equal(g.connect_calls, 1);
  assert_true(g.fd >= 0);
  assert_true(g.real_connect_rc == 0 || g.real_connect_rc == -EINPROGRESS);
  assert_int_equal(r->calls, 0);

  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  g.fd = -1;
  g_mode = CONNECT_INPROGRESS;
  tu_base_free(base);
  close(lfd);
  assert_int_equal(r->calls, 1); /* exactly once */
  assert_int_equal(g.so_pos, so_n); /* every scripted answer was asked for */
  assert_int_equal(g.peer_pos, peer_n);
}

static void expect_connected(const struct dial_rec *r, const char *addr) {
  assert_int_equal(r->status, 0);
  assert_true(r->conn_fd >= 0);
  assert_string_equal(r->remote, addr);
}

/* EINPROGRESS from SO_ERROR: not done yet, wait for the next readiness. */
static void test_soerror_inprogress_then_ok(void **state) {
  static const int so[] = {EINPROGRESS, 0};
  struct dial_rec r;
  char addr[64];
  (void)state;
  run_dial(so, 2, NULL, 0, &r, addr, sizeof addr);
  expect_connected(&r, addr);
  assert_int_equal(g.so_calls, 2);
}

static void test_soerror_already_eintr_then_ok(void **state) {
  static const int so[] = {EALREADY, EINTR, 0};
  struct dial_rec r;
  char addr[64];
  (void)state;
  run_dial(so, 3, NULL, 0, &r, addr, sizeof addr);
  expect_connected(&r, addr);
  assert_int_equal(g.so_calls, 3);
}

static void test_soerror_isconn(void **state) {
  static const int so[] = {EISCONN};
  struct dial_rec r;
  char addr[64];
  (void)state;
  run_dial(so, 1, NULL, 0, &r, addr, sizeof addr);
  expect_connected(&r, addr);
  assert_int_equal(g.so_calls, 1);
}

static void test_soerror_refused(void **state) {
  static const int so[] = {ECONNREFUSED};
  struct dial_rec r;
  char addr[64], want[128];
  (void)state;
  run_dial(so, 1, NULL, 0, &r, addr, sizeof addr);
  assert_int_equal(r.status, -ECONNREFUSED);
  assert_int_equal(r.conn_fd, -1);
  snprintf(want, sizeof want, "dial tcp %s: connect: connection refused", addr);
  assert_string_equal(r.msg, want);
  assert_int_equal(g.so_calls, 1);
  /* The descriptor was closed: tu_teardown_fds checks nothing leaked. */
}

/* Other errors come back as they are, never as a success. */
static void test_soerror_timedout(void **state) {
  static const int so[] = {EINPROGRESS, ETIMEDOUT};
  struct dial_rec r;
  char addr[64], want[128];
  (void)state;
  run_dial(so, 2, NULL, 0, &r, addr, sizeof addr);
  assert_int_equal(r.status, -ETIMEDOUT);
  snprintf(want, sizeof want, "dial tcp %s: connect: %s", addr, rill_strerror(-ETIMEDOUT));
  assert_string_equal(r.msg, want);
}

/* SO_ERROR 0 but getpeername() ENOTCONN: a spurious wake-up; wait again. */
static void test_spurious_wakeup_getpeername(void **state) {
  static const int so[] = {0, 0};
  static const int peer[] = {ENOTCONN};
  struct dial_rec r;
  char addr[64];
  (void)state;
  run_dial(so, 2, peer, 1, &r, addr, sizeof addr);
  expect_connected(&r, addr);
  assert_int_equal(g.so_calls, 2);
  assert_true(g.peer_calls >= 2); /* the failed check, then the good one */
}

/* Several spurious wake-ups in a row, mixed with "not yet". */
static void test_spurious_wakeups_repeated(void **state) {
  static const int so[] = {0, EINPROGRESS, 0, 0};
  static const int peer[] = {ENOTCONN, ENOTCONN};
  struct dial_rec r;
  char addr[64];
  (void)state;
  run_dial(so, 4, peer, 2, &r, addr, sizeof addr);
  expect_connected(&r, addr);
  assert_int_equal(g.so_calls, 4);
}

/* A spurious wake-up, then EISCONN: connected, reported once. */
static void test_isconn_after_spurious(void **state) {
  static const int so[] = {0, EISCONN};
  static const int peer[] = {ENOTCONN};
  struct dial_rec r;
  char addr[64];
  (void)state;
  run_dial(so, 2, peer, 1, &r, addr, sizeof addr);
  expect_connected(&r, addr);
  assert_int_equal(g.so_calls, 2);
}

/* connect() interrupted by a signal: the kernel goes on; wait as for
 * EINPROGRESS (the real SO_ERROR and getpeername() answer). */
static void test_connect_eintr_waits(void **state) {
  struct dial_rec r;
  char addr[64];
  (void)state;
  g_mode = CONNECT_EINTR;
  run_dial(NULL, 0, NULL, 0, &r, addr, sizeof addr);
  expect_connected(&r, addr);
  assert_true(g.so_calls >= 1);
}

/* connect() that succeeds at once: no waiting, still reported from the
 * loop (never inside rill_dial(), checked by run_dial), exactly once. */
static void test_connect_at_once(void **state) {
  struct dial_rec r;
  char addr[64];
  (void)state;
  g_mode = CONNECT_AT_ONCE;
  run_dial(NULL, 0, NULL, 0, &r, addr, sizeof addr);
  expect_connected(&r, addr);
  assert_int_equal(g.so_calls, 0);
}

/* connect() that fails at once: the error, from the loop, socket closed. */
static void test_connect_refused_at_once(void **state) {
  struct dial_rec r;
  char addr[64], want[128];
  (void)state;
  g_mode = CONNECT_REFUSED;
  run_dial(NULL, 0, NULL, 0, &r, addr, sizeof addr);
  assert_int_equal(r.status, -ECONNREFUSED);
  snprintf(want, sizeof want, "dial tcp %s: connect: connection refused", addr);
  assert_string_equal(r.msg, want);
  assert_int_equal(g.so_calls, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_soerror_inprogress_then_ok, tu_setup_fds,
                                      tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_soerror_already_eintr_then_ok, tu_setup_fds,
                                      tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_soerror_isconn, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_soerror_refused, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_soerror_timedout, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_spurious_wakeup_getpeername, tu_setup_fds,
                                      tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_spurious_wakeups_repeated, tu_setup_fds,
                                      tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_isconn_after_spurious, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_connect_eintr_waits, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_connect_at_once, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_connect_refused_at_once, tu_setup_fds,
                                      tu_teardown_fds),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
