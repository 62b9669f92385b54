/* rill_conn_try_write(), the callback API's write that never queues
 * (libuv's uv_try_write): the kernel takes what it takes from the caller's
 * buffer, the rest stays the caller's, no callback follows, and it keeps
 * the order of writes already queued. The blocking facade's zero-copy
 * write (G32) is built on it. */
#define _GNU_SOURCE 1

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rill.h"
#include "test_util.h"

#define LIMIT 10000
#define LEN (8u * 1024 * 1024)

struct events {
  int drains, write_errors, closes;
};

static size_t on_read(rill_conn *c, const char *data, size_t len, int status, void *arg) {
  (void)c, (void)data, (void)status, (void)arg;
  return len;
}
static void on_drain(rill_conn *c, void *arg) {
  (void)c;
  ((struct events *)arg)->drains++;
}
static void on_write_error(rill_conn *c, int err, size_t unsent, void *arg) {
  (void)c, (void)err, (void)unsent;
  ((struct events *)arg)->write_errors++;
}
static void on_close(rill_conn *c, void *arg) {
  (void)c;
  ((struct events *)arg)->closes++;
}

static const rill_conn_events conn_events = {on_read, on_drain, NULL, NULL, on_write_error, on_close};

static unsigned char pattern(size_t i) { return (unsigned char)(i * 7 + (i >> 13)); }

/* A connection over one end of a socketpair with small buffers; *peer is
 * the other end, non-blocking. */
static rill_conn *open_pair(rill_base *base, struct events *ev, int *peer) {
  int sv[2], small = 16 * 1024;
  rill_conn *c = NULL;
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
  setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  tu_nonblock(sv[1]);
  assert_int_equal(rill_conn_from_fd(base, sv[0], &c), 0);
  assert_int_equal(rill_conn_start(c, &conn_events, ev), 0);
  *peer = sv[1];
  return c;
}

/* Reads what the peer has now; checks it continues the pattern at *at. */
static size_t peer_read_now(int fd, size_t *at) {
  static unsigned char buf[64 * 1024];
  size_t total = 0;
  ssize_t n;
  while ((n = recv(fd, buf, sizeof buf, MSG_DONTWAIT)) > 0) {
    for (ssize_t i = 0; i < n; i++)
      assert_int_equal(buf[i], pattern(*at + (size_t)i));
    *at += (size_t)n;
    total += (size_t)n;
  }
  return total;
}

static void takes_what_fits_and_nothing_more(void **state) {
  rill_base *base = tu_base_new();
  struct events ev = {0, 0, 0};
  unsigned char *buf = malloc(LEN);
  size_t at = 0, got;
  ssize_t n;
  int peer;
  rill_conn *c = open_pair(base, &ev, &peer);
  (void)state;
  assert_non_null(buf);
  for (size_t i = 0; i < LEN; i++)
    buf[i] = pattern(i);

  /* Bad input, and zero bytes. */
  assert_int_equal(rill_conn_try_write(NULL, buf, 1), RILL_EINVAL);
  assert_int_equal(rill_conn_try_write(c, NULL, 1), RILL_EINVAL);
  assert_int_equal(rill_conn_try_write(c, NULL, 0), 0);
  assert_int_equal(rill_conn_try_write(c, buf, 0), 0);

  /* The kernel takes part; the rest is not queued and not copied. */
  n = rill_conn_try_write(c, buf, LEN);
  assert_true(n > 0 && (size_t)n < LEN);
  assert_int_equal(rill_conn_write_queued(c), 0);
  assert_int_equal(rill_conn_bytes_written(c), (uint64_t)n);
  assert_int_equal(rill_conn_try_write(c, buf + n, LEN - (size_t)n), 0); /* full */
  memset(buf, 0xEE, LEN); /* the caller's again at once */

  /* No callback follows: no drain, no error. */
  TU_RUN(base, RILL_RUN_NOWAIT, LIMIT);
  assert_int_equal(ev.drains, 0);
  assert_int_equal(ev.write_errors, 0);

  /* The peer reads exactly those bytes. */
  got = 0;
  for (uint64_t end = tu_now_ms() + LIMIT; got < (size_t)n && tu_now_ms() < end;)
    got += peer_read_now(peer, &at);
  assert_int_equal(got, (size_t)n);
  tu_sleep_ms(20);
  assert_int_equal(peer_read_now(peer, &at), 0);

  assert_int_equal(rill_conn_close(c), 0);
  assert_int_equal(rill_conn_try_write(c, buf, 1), RILL_ECLOSED);
  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  assert_int_equal(ev.closes, 1);
  close(peer);
  tu_base_free(base);
  free(buf);
}

/* Bytes already queued go first: try_write takes nothing until they are
 * gone, so nothing overtakes them. */
static void keeps_the_order_of_queued_writes(void **state) {
  rill_base *base = tu_base_new();
  struct events ev = {0, 0, 0};
  unsigned char *buf = malloc(LEN);
  size_t at = 0;
  int peer;
  rill_conn *c = open_pair(base, &ev, &peer);
  uint64_t end;
  (void)state;
  assert_non_null(buf);
  for (size_t i = 0; i < LEN; i++)
    buf[i] = pattern(i);

  /* 256 KiB copied in: the kernel takes part and the rest queues. */
  assert_int_equal(rill_conn_write(c, buf, 256 * 1024), 0);
  assert_true(rill_conn_write_queued(c) > 0);
  assert_int_equal(rill_conn_try_write(c, buf + 256 * 1024, 1024), 0);

  /* Once the peer read it all, the queue drained, and try_write takes. */
  end = tu_now_ms() + LIMIT;
  while (ev.drains == 0 && tu_now_ms() < end) {
    peer_read_now(peer, &at);
    TU_RUN(base, RILL_RUN_ONCE, LIMIT);
  }
  assert_int_equal(ev.drains, 1);
  assert_int_equal(rill_conn_try_write(c, buf + 256 * 1024, 1024), 1024);
  end = tu_now_ms() + LIMIT;
  while (at < 256 * 1024 + 1024 && tu_now_ms() < end)
    peer_read_now(peer, &at);
  assert_int_equal(at, 256 * 1024 + 1024);

  rill_conn_close_now(c);
  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  close(peer);
  tu_base_free(base);
  free(buf);
}

/* The errors rill_conn_write would give at once: a passed write deadline,
 * a peer that is gone (never SIGPIPE). */
static void reports_deadline_and_peer_errors(void **state) {
  rill_base *base = tu_base_new();
  struct events ev = {0, 0, 0};
  int peer;
  rill_conn *c = open_pair(base, &ev, &peer);
  ssize_t n;
  (void)state;
  signal(SIGPIPE, SIG_DFL);

  assert_int_equal(rill_conn_set_deadline(c, RILL_DEADLINE_WRITE, rill_time_now()), 0);
  assert_int_equal(rill_conn_try_write(c, "x", 1), RILL_ETIMEOUT);
  assert_int_equal(rill_conn_set_deadline(c, RILL_DEADLINE_WRITE, 0), 0);
  assert_int_equal(rill_conn_try_write(c, "x", 1), 1);

  close(peer);
  n = rill_conn_try_write(c, "y", 1);
  assert_true(n == RILL_EPIPE || n == RILL_ECONNRESET);
  assert_int_equal(rill_conn_try_write(c, "y", 1), n); /* sticky, like rill_conn_write */
  assert_int_equal(ev.write_errors, 0);

  rill_conn_close_now(c);
  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  tu_base_free(base);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(takes_what_fits_and_nothing_more, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(keeps_the_order_of_queued_writes, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(reports_deadline_and_peer_errors, tu_setup_fds, tu_teardown_fds),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
