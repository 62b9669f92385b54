/* The read path under fault injection (G12-G15).
 *
 * read() on the connection under test is scripted: EINTR (a signal) must be
 * retried with nothing lost or repeated; EAGAIN (a spurious readiness) must
 * just wait for the next one; ECONNRESET must reach on_read once, as
 * status -ECONNRESET, and then reading stops for good, even while the
 * socket stays readable.
 *
 * Linked with --wrap=read; the wrapper only touches the reader's descriptor
 * (the base's own wake-up descriptor is read too, and left alone). */
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

#define LIMIT 5000
#define MAX_STEPS 8
#define TOTAL 5000

/* fault_common.c */
void fc_tcp_pair(int *a, int *b);
unsigned char fc_pattern(size_t i);

ssize_t __real_read(int fd, void *buf, size_t n);

static struct {
  int fd; /* the reader's descriptor; -1: none */
  int err[MAX_STEPS]; /* errno per call, in order; then the real read */
  int nsteps, pos;
  int calls;
} g = {-1, {0}, 0, 0, 0};

ssize_t __wrap_read(int fd, void *buf, size_t n) {
  if (fd == g.fd) {
    g.calls++;
    if (g.pos < g.nsteps) {
      int err = g.err[g.pos++];
      if (err) {
        errno = err;
        return -1;
      }
    }
  }
  return __real_read(fd, buf, n);
}

static void load(int fd, const int *errs, int n) {
  assert_true(n <= MAX_STEPS);
  memset(&g, 0, sizeof g);
  memcpy(g.err, errs, sizeof(int) * (size_t)n);
  g.nsteps = n;
  g.fd = fd;
}

static void write_all(int fd, const unsigned char *data, size_t len) {
  while (len) {
    ssize_t n = write(fd, data, len);
    if (n < 0 && errno == EINTR)
      continue;
    assert_true(n > 0);
    data += n;
    len -= (size_t)n;
  }
}

struct ctx {
  rill_base *base;
  rill_conn *conn;
  int peer;
  unsigned char got[2 * TOTAL];
  size_t received;
  int data_calls;
  int eof;
  int errors;
  int error_status;
  int calls_after_final; /* on_read calls after EOF or an error */
  int reads_at_error;
  int reads_at_end;
  rill_timer *timer;
  int closes;
};

static void on_close(rill_conn *conn, void *arg) {
  (void)conn;
  ((struct ctx *)arg)->closes++;
}

static size_t on_read(rill_conn *conn, const char *data, size_t len, int status, void *arg) {
  struct ctx *c = (struct ctx *)arg;
  if (c->eof || c->errors)
    c->calls_after_final++;
  if (status == 0) {
    assert_true(len > 0);
    assert_true(c->received + len <= sizeof c->got);
    memcpy(c->got + c->received, data, len);
    c->received += len;
    c->data_calls++;
    return len;
  }
  if (status == RILL_EOF) {
    c->eof++;
    assert_int_equal(len, 0); /* everything was used */
    rill_conn_close(conn);
    return 0;
  }
  c->errors++;
  c->error_status = status;
  return 0;
}

static rill_base *setup(struct ctx *c) {
  rill_conn_events ev;
  int a;
  memset(c, 0, sizeof *c);
  c->base = tu_base_new();
  fc_tcp_pair(&a, &c->peer);
  assert_int_equal(rill_conn_from_fd(c->base, a, &c->conn), 0);
  memset(&ev, 0, sizeof ev);
  ev.on_read = on_read;
  ev.on_close = on_close;
  assert_int_equal(rill_conn_start(c->conn, &ev, c), 0);
  return c->base;
}

static void send_pattern_and_close(struct ctx *c) {
  unsigned char data[TOTAL];
  size_t i;
  for (i = 0; i < TOTAL; i++)
    data[i] = fc_pattern(i);
  write_all(c->peer, data, TOTAL);
  close(c->peer);
  c->peer = -1;
}

static void expect_pattern_once(const struct ctx *c) {
  size_t i;
  assert_int_equal(c->received, TOTAL); /* nothing lost, nothing twice */
  for (i = 0; i < TOTAL; i++)
    assert_int_equal(c->got[i], fc_pattern(i));
  assert_int_equal(c->eof, 1);
  assert_int_equal(c->errors, 0);
  assert_int_equal(c->calls_after_final, 0);
}

static void run_with_script(const int *errs, int n) {
  struct ctx c;
  rill_base *base = setup(&c);
  load(rill_conn_fd(c.conn), errs, n);
  send_pattern_and_close(&c);
  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  assert_int_equal(g.pos, n); /* every injected failure was met */
  g.fd = -1;
  expect_pattern_once(&c);
  assert_int_equal(c.closes, 1);
  tu_base_free(base);
}

/* The first read() is interrupted by a signal. */
static void test_read_eintr_first(void **state) {
  static const int errs[] = {EINTR};
  (void)state;
  run_with_script(errs, 1);
}

/* Interrupted several times in a row, and again after the first data. */
static void test_read_eintr_repeated(void **state) {
  static const int errs[] = {EINTR, EINTR, EINTR, 0, EINTR};
  (void)state;
  run_with_script(errs, 5);
}

/* A readiness with nothing to read (EAGAIN): wait, lose nothing. */
static void test_read_spurious_eagain(void **state) {
  static const int errs[] = {EAGAIN, EINTR, EAGAIN};
  (void)state;
  run_with_script(errs, 3);
}

static void end_timer(rill_timer *t, void *arg) {
  struct ctx *c = (struct ctx *)arg;
  c->reads_at_end = g.calls;
  rill_timer_free(t);
  c->timer = NULL;
  rill_conn_close(c->conn);
}

static size_t on_read_reset(rill_conn *conn, const char *data, size_t len, int status, void *arg) {
  struct ctx *c = (struct ctx *)arg;
  size_t used = on_read(conn, data, len, status, arg);
  if (status == 0 && c->data_calls == 1) {
    /* More input, so that there is a next read() to fail. */
    unsigned char more[10];
    memset(more, 'y', sizeof more);
    write_all(c->peer, more, sizeof more);
  }
  if (status < 0 && status != RILL_EOF && c->errors == 1) {
    unsigned char more[100];
    memset(more, 'z', sizeof more);
    c->reads_at_error = g.calls;
    /* Keep the socket readable: a level-triggered poller would report it
     * again at once if rill still watched it. */
    write_all(c->peer, more, sizeof more);
    assert_int_equal(rill_timer_new(c->base, end_timer, c, &c->timer), 0);
    assert_int_equal(rill_timer_start(c->timer, 100 * RILL_MSEC, 0), 0);
  }
  return used;
}

/* ECONNRESET: on_read once with -ECONNRESET, then never again. */
static void reset_after(const int *errs, int n, size_t first_bytes) {
  struct ctx c;
  rill_conn_events ev;
  unsigned char data[TOTAL];
  size_t i;
  rill_base *base = setup(&c);
  memset(&ev, 0, sizeof ev);
  ev.on_read = on_read_reset;
  ev.on_close = on_close;
  assert_int_equal(rill_conn_start(c.conn, &ev, &c), 0);
  for (i = 0; i < first_bytes; i++)
    data[i] = fc_pattern(i);
  write_all(c.peer, data, first_bytes);
  load(rill_conn_fd(c.conn), errs, n);

  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  assert_int_equal(g.pos, n);
  g.fd = -1;
  assert_int_equal(c.errors, 1);
  assert_int_equal(c.error_status, -ECONNRESET);
  assert_int_equal(c.eof, 0);
  assert_int_equal(c.calls_after_final, 0);
  assert_int_equal(c.reads_at_end, c.reads_at_error); /* no read() after the error */
  assert_null(c.timer);
  assert_int_equal(c.closes, 1);
  tu_base_free(base);
  close(c.peer);
}

static void test_read_econnreset(void **state) {
  static const int errs[] = {ECONNRESET};
  (void)state;
  reset_after(errs, 1, 10);
  assert_int_equal(g.calls, 1);
}

/* Data first (delivered), then the reset on a later read. */
static void test_read_econnreset_after_data(void **state) {
  static const int errs[] = {0, ECONNRESET};
  (void)state;
  reset_after(errs, 2, 10);
  assert_int_equal(g.calls, 2);
}

int main(void) {
  /* read(2) is what this test scripts; on io_uring a connection's input
   * comes in receive completions instead, so keep it on readiness there
   * (docs/io_uring.md; test_io_uring_recv covers the completion path). */
  setenv("RILL_IO_URING_STREAMS", "0", 1);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_read_eintr_first, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_read_eintr_repeated, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_read_spurious_eagain, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_read_econnreset, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_read_econnreset_after_data, tu_setup_fds,
                                      tu_teardown_fds),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
