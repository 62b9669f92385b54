/* The write path under fault injection (G18, G21).
 *
 * send() (the direct write) and sendmsg() (the queue) are scripted for the
 * connection under test: take only a few bytes, answer EAGAIN or EINTR,
 * then behave; or fail with EPIPE / ECONNRESET after some bytes went out.
 * The peer is a real loopback TCP connection on the same base, so every
 * byte the kernel took arrives: it must arrive once, in order, and the
 * bookkeeping (rill_conn_write_queued, rill_conn_bytes_written, on_drain,
 * on_write_error's `unsent`) must match what the kernel was given.
 *
 * Linked with --wrap=send,sendmsg; the wrappers only touch the writer's
 * descriptor while a script is loaded. */
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
#include <sys/uio.h>
#include <unistd.h>

#include "rill.h"
#include "test_util.h"

#define LIMIT 5000
#define MAX_STEPS 16
#define MAX_WRITES 8

/* fault_common.c */
void fc_tcp_pair(int *a, int *b);
unsigned char fc_pattern(size_t i);

ssize_t __real_send(int fd, const void *buf, size_t len, int flags);
ssize_t __real_sendmsg(int fd, const struct msghdr *msg, int flags);

/* ---- the script --------------------------------------------------------- */

enum { TAKE = 1, FAIL = 2 };

struct step {
  int kind;   /* TAKE: let at most `n` bytes through; FAIL: errno `n` */
  size_t n;
};

static struct {
  int fd; /* the writer's descriptor; -1: none */
  struct step steps[MAX_STEPS];
  int nsteps, pos;
  int send_calls, sendmsg_calls;
  int no_nosignal; /* calls without MSG_NOSIGNAL (G21: never a SIGPIPE) */
} g = {-1, {{0, 0}}, 0, 0, 0, 0, 0};

static const struct step *next_step(int fd) {
  if (fd != g.fd || g.pos >= g.nsteps)
    return NULL;
  return &g.steps[g.pos++];
}

ssize_t __wrap_send(int fd, const void *buf, size_t len, int flags) {
  const struct step *s;
  if (fd == g.fd) {
    g.send_calls++;
    if (!(flags & MSG_NOSIGNAL))
      g.no_nosignal++;
  }
  s = next_step(fd);
  if (s && s->kind == FAIL) {
    errno = (int)s->n;
    return -1;
  }
  if (s && s->kind == TAKE && s->n < len)
    len = s->n;
  return __real_send(fd, buf, len, flags);
}

ssize_t __wrap_sendmsg(int fd, const struct msghdr *msg, int flags) {
  const struct step *s;
  struct iovec iov[64];
  struct msghdr cut;
  size_t left;
  size_t i;
  if (fd == g.fd) {
    g.sendmsg_calls++;
    if (!(flags & MSG_NOSIGNAL))
      g.no_nosignal++;
  }
  s = next_step(fd);
  if (!s)
    return __real_sendmsg(fd, msg, flags);
  if (s->kind == FAIL) {
    errno = (int)s->n;
    return -1;
  }
  /* TAKE: the same message, cut after s->n bytes. */
  cut = *msg;
  cut.msg_iov = iov;
  cut.msg_iovlen = 0;
  left = s->n;
  for (i = 0; i < (size_t)msg->msg_iovlen && i < 64 && left; i++) {
    iov[i] = msg->msg_iov[i];
    if (iov[i].iov_len > left)
      iov[i].iov_len = left;
    left -= iov[i].iov_len;
    cut.msg_iovlen = i + 1;
  }
  return __real_sendmsg(fd, &cut, flags);
}

static void load(int fd, const struct step *steps, int n) {
  assert_true(n <= MAX_STEPS);
  memset(&g, 0, sizeof g);
  memcpy(g.steps, steps, sizeof *steps * (size_t)n);
  g.nsteps = n;
  g.fd = fd;
}

/* ---- writer and peer ---------------------------------------------------- */

struct ctx {
  rill_conn *w, *p;
  size_t total; /* bytes written by the test */
  unsigned char *sent;
  unsigned char got[65536];
  size_t received;
  int peer_eof;
  int drains;
  size_t queued_at_drain;
  uint64_t written_at_drain;
  int write_errors;
  int write_error;
  size_t unsent;
  uint64_t written_at_error;
  int write_after_error;
  int ref_done;
  int ref_status;
  size_t ref_written;
  int closes;
  int no_drain; /* nothing will be queued: do not wait for on_drain */
};

static void maybe_finish(struct ctx *c) {
  /* Closing first would legitimately swallow a drain still to be reported. */
  if (c->w && (c->drains || c->no_drain) && c->received == c->total) {
    rill_conn_close(c->w);
    rill_conn_close(c->p);
    c->w = c->p = NULL;
  }
}

static size_t peer_read(rill_conn *conn, const char *data, size_t len, int status, void *arg) {
  struct ctx *c = (struct ctx *)arg;
  if (status == RILL_EOF) {
    c->peer_eof++;
    rill_conn_close(conn);
    c->p = NULL;
    return 0;
  }
  assert_int_equal(status, 0);
  assert_true(c->received + len <= sizeof c->got);
  memcpy(c->got + c->received, data, len);
  c->received += len;
  maybe_finish(c);
  return len;
}

static void on_drain(rill_conn *conn, void *arg) {
  struct ctx *c = (struct ctx *)arg;
  c->drains++;
  c->queued_at_drain = rill_conn_write_queued(conn);
  c->written_at_drain = rill_conn_bytes_written(conn);
  maybe_finish(c);
}

static void on_write_error(rill_conn *conn, int err, size_t unsent, void *arg) {
  struct ctx *c = (struct ctx *)arg;
  c->write_errors++;
  c->write_error = err;
  c->unsent = unsent;
  c->written_at_error = rill_conn_bytes_written(conn);
  c->write_after_error = rill_conn_write(conn, "x", 1);
  rill_conn_close(conn);
  c->w = NULL;
}

static void on_close(rill_conn *conn, void *arg) {
  (void)conn;
  ((struct ctx *)arg)->closes++;
}

static void ref_done(rill_conn *conn, int status, size_t written, void *arg) {
  struct ctx *c = (struct ctx *)arg;
  (void)conn;
  c->ref_done++;
  c->ref_status = status;
  c->ref_written = written;
}

static rill_base *setup(struct ctx *c, size_t total) {
  rill_base *base = tu_base_new();
  rill_conn_events wev, pev;
  int a, b;
  size_t i;
  memset(c, 0, sizeof *c);
  c->total = total;
  c->sent = (unsigned char *)malloc(total);
  assert_non_null(c->sent);
  for (i = 0; i < total; i++)
    c->sent[i] = fc_pattern(i);
  fc_tcp_pair(&a, &b);
  assert_int_equal(rill_conn_from_fd(base, a, &c->w), 0);
  assert_int_equal(rill_conn_from_fd(base, b, &c->p), 0);
  memset(&wev, 0, sizeof wev);
  wev.on_drain = on_drain;
  wev.on_write_error = on_write_error;
  wev.on_close = on_close;
  memset(&pev, 0, sizeof pev);
  pev.on_read = peer_read;
  pev.on_close = on_close;
  assert_int_equal(rill_conn_start(c->w, &wev, c), 0);
  assert_int_equal(rill_conn_start(c->p, &pev, c), 0);
  return base;
}

static void teardown(rill_base *base, struct ctx *c) {
  g.fd = -1;
  assert_int_equal(g.no_nosignal, 0);
  tu_base_free(base);
  free(c->sent);
  assert_int_equal(c->closes, 2);
}

/* The writes every scenario makes: a copied write, another copied write and
 * a zero-copy one, sizes in `sizes`. */
static void write_all(struct ctx *c, const size_t *sizes, int n, int ref_last) {
  size_t off = 0;
  int i;
  for (i = 0; i < n; i++) {
    if (ref_last && i == n - 1)
      assert_int_equal(rill_conn_write_ref(c->w, c->sent + off, sizes[i], ref_done, c), 0);
    else
      assert_int_equal(rill_conn_write(c->w, c->sent + off, sizes[i]), 0);
    off += sizes[i];
  }
  assert_int_equal(off, c->total);
}

static void expect_stream(const struct ctx *c) {
  assert_int_equal(c->received, c->total);
  assert_memory_equal(c->got, c->sent, c->total);
}

/* ---- tests -------------------------------------------------------------- */

/* The direct send takes 3 bytes, the queue's first sendmsg meets EAGAIN,
 * then the kernel behaves. */
static void test_write_short_then_eagain(void **state) {
  static const struct step steps[] = {{TAKE, 3}, {FAIL, EAGAIN}};
  static const size_t sizes[] = {1000};
  struct ctx c;
  rill_base *base = setup(&c, 1000);
  (void)state;
  load(rill_conn_fd(c.w), steps, 2);
  write_all(&c, sizes, 1, 0);
  assert_int_equal(rill_conn_bytes_written(c.w), 3);
  assert_int_equal(rill_conn_write_queued(c.w), 997);
  assert_int_equal(c.drains, 0); /* never from inside the call */

  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  assert_int_equal(g.pos, 2);
  assert_int_equal(g.send_calls, 1);
  assert_true(g.sendmsg_calls >= 2);
  expect_stream(&c);
  assert_int_equal(c.drains, 1);
  assert_int_equal(c.queued_at_drain, 0);
  assert_int_equal(c.written_at_drain, 1000);
  assert_int_equal(c.write_errors, 0);
  teardown(base, &c);
}

/* Several queued writes (copied and zero-copy), partial sendmsg()s that
 * stop inside a request and across request boundaries, EAGAIN and EINTR. */
static void test_write_partial_across_requests(void **state) {
  static const struct step steps[] = {
      {TAKE, 3},                 /* direct send of the first write */
      {TAKE, 3},                 /* inside the first request */
      {FAIL, EAGAIN},
      {TAKE, 1000},              /* rest of the first (994) + 6 of the second */
      {FAIL, EINTR},             /* retried at once */
      {TAKE, 1},
      {FAIL, EAGAIN},
      {TAKE, 4700},              /* the second's last 693, the third, 7 of the ref */
  };
  static const size_t sizes[] = {1000, 700, 4000, 900};
  struct ctx c;
  rill_base *base = setup(&c, 6600);
  (void)state;
  load(rill_conn_fd(c.w), steps, 8);
  write_all(&c, sizes, 4, 1);
  assert_int_equal(g.send_calls, 1); /* later writes queue behind the first */
  assert_int_equal(rill_conn_bytes_written(c.w), 3);
  assert_int_equal(rill_conn_write_queued(c.w), 6597);

  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  assert_int_equal(g.pos, 8);
  expect_stream(&c);
  assert_int_equal(c.drains, 1);
  assert_int_equal(c.queued_at_drain, 0);
  assert_int_equal(c.written_at_drain, 6600);
  assert_int_equal(c.ref_done, 1);
  assert_int_equal(c.ref_status, 0);
  assert_int_equal(c.ref_written, 900);
  assert_int_equal(c.write_errors, 0);
  teardown(base, &c);
}

/* The direct send itself answers EAGAIN (then EINTR on the queue). */
static void test_write_direct_eagain(void **state) {
  static const struct step steps[] = {{FAIL, EAGAIN}, {FAIL, EINTR}, {FAIL, EAGAIN}};
  static const size_t sizes[] = {2000};
  struct ctx c;
  rill_base *base = setup(&c, 2000);
  (void)state;
  load(rill_conn_fd(c.w), steps, 3);
  write_all(&c, sizes, 1, 0);
  assert_int_equal(rill_conn_bytes_written(c.w), 0);
  assert_int_equal(rill_conn_write_queued(c.w), 2000);
  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  assert_int_equal(g.pos, 3);
  expect_stream(&c);
  assert_int_equal(c.drains, 1);
  assert_int_equal(c.written_at_drain, 2000);
  teardown(base, &c);
}

/* A send() interrupted by a signal is retried, not reported. */
static void test_write_direct_eintr(void **state) {
  static const struct step steps[] = {{FAIL, EINTR}, {FAIL, EINTR}};
  static const size_t sizes[] = {500};
  struct ctx c;
  rill_base *base = setup(&c, 500);
  (void)state;
  c.no_drain = 1;
  load(rill_conn_fd(c.w), steps, 2);
  write_all(&c, sizes, 1, 0);
  assert_int_equal(g.send_calls, 3);
  assert_int_equal(rill_conn_bytes_written(c.w), 500);
  assert_int_equal(rill_conn_write_queued(c.w), 0);
  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  expect_stream(&c);
  assert_int_equal(c.write_errors, 0);
  teardown(base, &c);
}

/* The peer vanishes mid-queue: on_write_error(err, unsent = what was still
 * queued), bytes_written = what the kernel took, the peer gets exactly those
 * bytes, ref writes complete with the error, and later writes fail the same
 * way. */
static void write_error_mid_queue(int err) {
  const struct step steps[] = {{TAKE, 100}, {TAKE, 200}, {FAIL, err}};
  static const size_t sizes[] = {1000, 500, 300};
  struct ctx c;
  rill_base *base = setup(&c, 1800);
  load(rill_conn_fd(c.w), steps, 3);
  write_all(&c, sizes, 3, 1);
  assert_int_equal(rill_conn_bytes_written(c.w), 100);
  assert_int_equal(rill_conn_write_queued(c.w), 1700);

  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  assert_int_equal(g.pos, 3);
  assert_int_equal(c.write_errors, 1);
  assert_int_equal(c.write_error, -err);
  assert_int_equal(c.unsent, 1500);
  assert_int_equal(c.written_at_error, 300);
  assert_int_equal(c.write_after_error, -err);
  assert_int_equal(c.drains, 0);
  assert_int_equal(c.ref_done, 1);
  assert_int_equal(c.ref_status, -err);
  assert_int_equal(c.ref_written, 0);
  /* The peer got the 300 bytes the kernel took, in order, then EOF. */
  assert_int_equal(c.received, 300);
  assert_memory_equal(c.got, c.sent, 300);
  assert_int_equal(c.peer_eof, 1);
  teardown(base, &c);
}

static void test_write_epipe_mid_queue(void **state) {
  (void)state;
  write_error_mid_queue(EPIPE);
}

static void test_write_econnreset_mid_queue(void **state) {
  (void)state;
  write_error_mid_queue(ECONNRESET);
}

/* The error lands inside the zero-copy write: it reports how much of it
 * reached the kernel. */
static void test_write_error_inside_ref(void **state) {
  static const struct step steps[] = {{TAKE, 10}, {TAKE, 150}, {FAIL, EPIPE}};
  static const size_t sizes[] = {100, 400};
  struct ctx c;
  rill_base *base = setup(&c, 500);
  (void)state;
  load(rill_conn_fd(c.w), steps, 3);
  write_all(&c, sizes, 2, 1);
  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  assert_int_equal(c.write_errors, 1);
  assert_int_equal(c.write_error, -EPIPE);
  assert_int_equal(c.unsent, 340);
  assert_int_equal(c.written_at_error, 160);
  assert_int_equal(c.ref_done, 1);
  assert_int_equal(c.ref_status, -EPIPE);
  assert_int_equal(c.ref_written, 60);
  assert_int_equal(c.received, 160);
  assert_memory_equal(c.got, c.sent, 160);
  teardown(base, &c);
}

int main(void) {
  /* send(2) and sendmsg(2) are what this test scripts; on io_uring a
   * connection's writes go as sends through the ring instead, so keep them
   * on send(2) there (docs/io_uring.md; test_io_uring_send covers the ring's
   * short sends and errors). */
  setenv("RILL_IO_URING_SENDS", "0", 1);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_write_short_then_eagain, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_write_partial_across_requests, tu_setup_fds,
                                      tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_write_direct_eagain, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_write_direct_eintr, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_write_epipe_mid_queue, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_write_econnreset_mid_queue, tu_setup_fds,
                                      tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_write_error_inside_ref, tu_setup_fds, tu_teardown_fds),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
