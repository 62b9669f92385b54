/* Writes on the io_uring backend go as sends through the ring, batched per
 * loop iteration (docs/io_uring.md). The contracts are epoll's:
 *
 *  - Many writes in one callback (copies, ref writes, echoes of the bytes
 *    on_read is shown, a zero-byte marker) arrive in order, each ref write
 *    completes once and in order, and the counters add up.
 *  - A write then rill_conn_close_write: the peer reads every byte, then
 *    EOF (the FIN goes only after the last send completed).
 *  - Abort with sends in flight (the peer reads nothing, so they wait in
 *    the kernel): the peer sees RST, ref writes complete with
 *    RILL_ECANCELED before on_close, nothing is called after it, and every
 *    buffer is freed (ASan's leak check).
 *  - A send that meets a reset peer: on_write_error reports it with the
 *    unsent count, and later writes fail with the same error.
 *  - Writes far larger than the socket's buffers, read slowly: the kernel
 *    takes them in short sends, and the rest follows, in order.
 * Each test skips where the kernel refuses io_uring. */
#define _GNU_SOURCE 1

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net_util.h"
#include "rill.h"
#include "test_util.h"

#define LIMIT 20000

static unsigned char pattern(size_t i) { return (unsigned char)(i * 13 + i / 253); }

/* A connected pair: the server side as a rill_conn, the client a plain
 * non-blocking socket. */
static rill_conn *pair(rill_base *base, int *client) {
  nu_pair p;
  nu_pair_accepted(base, "127.0.0.1", NULL, &p);
  *client = p.peer;
  return p.conn;
}

/* Reads what is there into `buf` (up to `room`), checking the pattern from
 * `*seen` on; returns 0 at EOF, -errno on error, else 1. */
static int client_read(int fd, size_t *seen, size_t max, int *bad) {
  char buf[65536];
  size_t room = max - *seen < sizeof buf ? max - *seen : sizeof buf;
  ssize_t n;
  size_t i;
  if (room == 0) room = 1; /* past the end: only EOF or a stray byte */
  n = recv(fd, buf, room, 0);
  if (n == 0) return 0;
  if (n < 0) return errno == EAGAIN ? 1 : -errno;
  for (i = 0; i < (size_t)n; i++)
    if (*seen + i >= max || (unsigned char)buf[i] != pattern(*seen + i)) (*bad)++;
  *seen += (size_t)n;
  return 1;
}

struct writer {
  size_t next;       /* pattern offset of the next byte to write */
  int refs_done;     /* ref writes completed, in order */
  int refs_bad;      /* out of order or failed */
  int ref_status;    /* the last failure */
  int closes;
  int after_close;
  int write_errors;
  int write_error;
  size_t unsent;
  int drains;
  unsigned char *big; /* the ref writes' bytes */
};

static struct writer *g_w; /* the test's writer, for on_ref_done */

static void on_ref_done(rill_conn *c, int status, size_t written, void *arg) {
  struct writer *w = g_w;
  intptr_t nth = (intptr_t)arg;
  (void)c;
  (void)written;
  if (w->closes) w->after_close++;
  if (nth != w->refs_done) w->refs_bad++;
  if (status) w->ref_status = status;
  w->refs_done++;
}

static void on_w_error(rill_conn *c, int err, size_t unsent, void *arg) {
  struct writer *w = arg;
  (void)c;
  if (w->closes) w->after_close++;
  w->write_errors++;
  w->write_error = err;
  w->unsent = unsent;
}

static void on_w_drain(rill_conn *c, void *arg) {
  struct writer *w = arg;
  (void)c;
  w->drains++;
}

static void on_w_close(rill_conn *c, void *arg) {
  struct writer *w = arg;
  (void)c;
  if (w->closes) w->after_close++;
  w->closes++;
}

/* Copies `len` pattern bytes from w->next on. */
static void write_copy(rill_conn *c, struct writer *w, size_t len) {
  unsigned char buf[8192];
  size_t i;
  assert_true(len <= sizeof buf);
  for (i = 0; i < len; i++) buf[i] = pattern(w->next + i);
  assert_int_equal(rill_conn_write(c, buf, len), 0);
  memset(buf, 0xee, len); /* the copy, not the caller's bytes, goes out */
  w->next += len;
}

/* A ref write of w->big's bytes for [w->next, w->next + len). */
static void write_ref(rill_conn *c, struct writer *w, size_t len, intptr_t nth) {
  assert_int_equal(rill_conn_write_ref(c, w->big + w->next, len, on_ref_done, (void *)nth), 0);
  w->next += len;
}

static unsigned char *pattern_buffer(size_t len) {
  unsigned char *p = malloc(len);
  size_t i;
  assert_non_null(p);
  for (i = 0; i < len; i++) p[i] = pattern(i);
  return p;
}

/* A fresh writer `w` (the test's g_w) with `big` pattern bytes for its ref
 * writes (0: none), and a connection paired with *client. */
static rill_conn *writer_pair(rill_base *base, struct writer *w, size_t big, int *client) {
  memset(w, 0, sizeof *w);
  g_w = w;
  w->big = big ? pattern_buffer(big) : NULL;
  return pair(base, client);
}

/* Closes `c`, which reports its close once, and frees the rest. */
static void writer_end(rill_base *base, rill_conn *c, struct writer *w, int client) {
  assert_int_equal(rill_conn_close(c), 0);
  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  assert_int_equal(w->closes, 1);
  if (client >= 0) close(client);
  free(w->big);
  tu_base_free(base);
}

/* ---- many writes in one callback, in order ------------------------------ */

struct echo_env {
  struct writer w;
  int reads;
};

/* The bytes the client sends are the pattern's next ones, so echoing them
 * (the pinned receive buffer) keeps the stream's pattern. */
static size_t on_many_read(rill_conn *c, const char *data, size_t len, int status, void *arg) {
  struct echo_env *e = arg;
  struct writer *w = &e->w;
  int i;
  intptr_t nth = w->refs_done;
  if (status) return len;
  e->reads++;
  for (i = 0; i < 200; i++) write_copy(c, w, (size_t)(1 + i * 37 % 300));
  write_ref(c, w, 100000, nth++);
  assert_int_equal(rill_conn_write(c, data, len), 0); /* an echo: w->next was agreed */
  w->next += len;
  write_copy(c, w, 5000);
  assert_int_equal(rill_conn_write_ref(c, NULL, 0, on_ref_done, (void *)nth++), 0); /* a marker */
  for (i = 0; i < 50; i++) write_ref(c, w, 17, nth++);
  write_copy(c, w, 3);
  return len;
}

static void test_many_writes_in_order(void **state) {
  rill_conn_events ev = {on_many_read, on_w_drain, NULL, NULL, on_w_error, on_w_close};
  rill_base *base = tu_uring_base();
  struct echo_env e;
  size_t seen = 0, total, i;
  int client, bad = 0, rounds;
  unsigned char msg[64];
  uint64_t deadline;
  rill_conn *c;
  (void)state;
  if (!base) skip();
  e.reads = 0;
  c = writer_pair(base, &e.w, 1 << 22, &client);
  assert_int_equal(rill_conn_start(c, &ev, &e), 0);
  for (rounds = 0; rounds < 3; rounds++) {
    /* The client's message is the bytes the echo will put in the stream. */
    size_t at = e.w.next + 0;
    int reads = e.reads;
    for (i = 0; i < 200; i++) at += (size_t)(1 + (int)i * 37 % 300);
    at += 100000;
    for (i = 0; i < sizeof msg; i++) msg[i] = pattern(at + i);
    assert_int_equal(send(client, msg, sizeof msg, 0), (ssize_t)sizeof msg);
    deadline = tu_now_ms() + LIMIT;
    while (e.reads == reads && tu_now_ms() < deadline) TU_RUN(base, RILL_RUN_ONCE, LIMIT);
    assert_int_equal(e.reads, reads + 1);
    total = e.w.next;
    deadline = tu_now_ms() + LIMIT;
    while (seen < total && tu_now_ms() < deadline) {
      TU_RUN(base, RILL_RUN_NOWAIT, LIMIT);
      assert_int_equal(client_read(client, &seen, total, &bad), 1);
    }
    assert_int_equal(seen, total);
    assert_int_equal(bad, 0);
  }
  /* The last completions may come an iteration after the bytes. */
  deadline = tu_now_ms() + LIMIT;
  while ((e.w.refs_done < 3 * 52 || rill_conn_write_queued(c)) && tu_now_ms() < deadline)
    TU_RUN(base, RILL_RUN_ONCE, LIMIT);
  assert_int_equal(e.w.refs_done, 3 * 52);
  assert_int_equal(e.w.refs_bad, 0);
  assert_int_equal(e.w.ref_status, 0);
  assert_int_equal(e.w.write_errors, 0);
  assert_int_equal(rill_conn_write_queued(c), 0);
  assert_int_equal(rill_conn_bytes_written(c), total);
  writer_end(base, c, &e.w, client);
}

/* ---- a write, then half-close: every byte before the FIN ------------------ */

static void test_write_then_close_write(void **state) {
  rill_conn_events ev = {NULL, NULL, NULL, NULL, on_w_error, on_w_close};
  rill_base *base = tu_uring_base();
  struct writer w;
  size_t seen = 0, total = 3u << 20;
  int client, bad = 0, r = 1, i;
  uint64_t deadline;
  rill_conn *c;
  (void)state;
  if (!base) skip();
  c = writer_pair(base, &w, total, &client);
  assert_int_equal(rill_conn_start(c, &ev, &w), 0);
  /* More than the socket buffers hold: the sends wait in the kernel. */
  for (i = 0; i < 64; i++) write_copy(c, &w, 8192);
  write_ref(c, &w, total - w.next, 0);
  assert_int_equal(rill_conn_close_write(c), 0);
  TU_RUN(base, RILL_RUN_NOWAIT, LIMIT);
  deadline = tu_now_ms() + LIMIT;
  while (r == 1 && tu_now_ms() < deadline) {
    struct pollfd p = {client, POLLIN, 0};
    TU_RUN(base, RILL_RUN_NOWAIT, LIMIT);
    poll(&p, 1, 1);
    r = client_read(client, &seen, total, &bad);
  }
  assert_int_equal(r, 0); /* EOF ... */
  assert_int_equal(seen, total); /* ... after every byte */
  assert_int_equal(bad, 0);
  assert_int_equal(w.refs_done, 1);
  assert_int_equal(w.ref_status, 0);
  assert_int_equal(w.write_errors, 0);
  writer_end(base, c, &w, client);
}

/* ---- abort (or close_now) with sends in flight ----------------------------- */

static void abort_in_flight(int now) {
  rill_conn_events ev = {NULL, NULL, NULL, NULL, on_w_error, on_w_close};
  rill_base *base = tu_uring_base();
  struct writer w;
  size_t total = 8u << 20;
  int client, i, sz = 4096;
  rill_conn *c;
  if (!base) skip();
  c = writer_pair(base, &w, total, &client);
  setsockopt(client, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
  assert_int_equal(rill_conn_start(c, &ev, &w), 0);
  for (i = 0; i < 100; i++) write_copy(c, &w, 8192);
  write_ref(c, &w, total - w.next, 0);
  /* Sends go out until the kernel's buffers are full; the one in flight
   * then waits for room that never comes. */
  for (i = 0; i < 20; i++) TU_RUN(base, RILL_RUN_NOWAIT, LIMIT);
  assert_true(rill_conn_write_queued(c) > 0);
  assert_int_equal(now ? rill_conn_close_now(c) : rill_conn_abort(c), 0);
  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  assert_int_equal(w.closes, 1);
  assert_int_equal(w.after_close, 0);
  assert_int_equal(w.refs_done, 1);
  assert_int_equal(w.ref_status, RILL_ECANCELED);
  assert_int_equal(w.write_errors, 0);
  if (!now) {
    /* Unread bytes wait in the client: what it sees after them is a reset. */
    char buf[65536];
    ssize_t n;
    uint64_t deadline = tu_now_ms() + LIMIT;
    do {
      struct pollfd p = {client, POLLIN, 0};
      poll(&p, 1, 100);
      n = recv(client, buf, sizeof buf, 0);
    } while ((n > 0 || (n < 0 && errno == EAGAIN)) && tu_now_ms() < deadline);
    assert_int_equal(n, -1);
    assert_int_equal(errno, ECONNRESET);
  }
  close(client);
  free(w.big);
  tu_base_free(base);
}

static void test_abort_with_sends_in_flight(void **state) {
  (void)state;
  abort_in_flight(0);
}

static void test_close_now_with_sends_in_flight(void **state) {
  (void)state;
  abort_in_flight(1);
}

/* ---- a send meets a reset peer -------------------------------------------------- */

static void test_send_error_reported(void **state) {
  rill_conn_events ev = {NULL, NULL, NULL, NULL, on_w_error, on_w_close};
  rill_base *base = tu_uring_base();
  struct writer w;
  struct linger lg = {1, 0};
  int client, i, err;
  uint64_t deadline;
  rill_conn *c;
  (void)state;
  if (!base) skip();
  c = writer_pair(base, &w, 0, &client);
  assert_int_equal(rill_conn_start(c, &ev, &w), 0); /* no on_read: no receive notices */
  assert_int_equal(setsockopt(client, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
  close(client); /* RST */
  tu_sleep_ms(20);
  write_copy(c, &w, 100);
  deadline = tu_now_ms() + LIMIT;
  while (w.write_errors == 0 && tu_now_ms() < deadline) TU_RUN(base, RILL_RUN_ONCE, 1000);
  assert_int_equal(w.write_errors, 1);
  assert_true(w.write_error == -ECONNRESET || w.write_error == -EPIPE);
  assert_int_equal(w.unsent, 100);
  err = rill_conn_write(c, "again", 5);
  assert_int_equal(err, w.write_error); /* sticky, as on epoll */
  for (i = 0; i < 3; i++) TU_RUN(base, RILL_RUN_NOWAIT, LIMIT);
  assert_int_equal(w.write_errors, 1);
  writer_end(base, c, &w, -1); /* the client is closed already */
}

/* ---- short sends: the rest follows ------------------------------------------- */

static void test_short_sends_continue(void **state) {
  rill_conn_events ev = {NULL, on_w_drain, NULL, NULL, on_w_error, on_w_close};
  rill_base *base = tu_uring_base();
  struct writer w;
  size_t seen = 0, total = 3u << 19;
  int client, bad = 0, sz = 8192, i;
  uint64_t deadline;
  rill_conn *c;
  (void)state;
  if (!base) skip();
  c = writer_pair(base, &w, total, &client);
  setsockopt(client, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
  /* A small send buffer: the kernel takes part of a send, not all of it. */
  assert_int_equal(setsockopt(rill_conn_fd(c), SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz), 0);
  assert_int_equal(rill_conn_start(c, &ev, &w), 0);
  /* Two large writes, each far more than a send takes at once. */
  write_ref(c, &w, 1u << 19, 0);
  for (i = 0; w.next + 8192 <= (1u << 20); i++) write_copy(c, &w, 8192);
  write_ref(c, &w, total - w.next, 1);
  deadline = tu_now_ms() + LIMIT;
  while (seen < total && tu_now_ms() < deadline) {
    struct pollfd p = {client, POLLIN, 0};
    size_t before = seen;
    TU_RUN(base, RILL_RUN_NOWAIT, LIMIT);
    poll(&p, 1, 1);
    /* Slowly: 16 KiB at a time, so the kernel takes little per send. */
    assert_int_equal(client_read(client, &seen, before + 16384 < total ? before + 16384 : total, &bad), 1);
  }
  assert_int_equal(seen, total);
  assert_int_equal(bad, 0);
  deadline = tu_now_ms() + LIMIT;
  while ((w.refs_done < 2 || rill_conn_write_queued(c)) && tu_now_ms() < deadline)
    TU_RUN(base, RILL_RUN_ONCE, LIMIT);
  assert_int_equal(w.refs_done, 2);
  assert_int_equal(w.refs_bad, 0);
  assert_int_equal(w.ref_status, 0);
  assert_int_equal(rill_conn_bytes_written(c), total);
  assert_true(w.drains >= 1);
  writer_end(base, c, &w, client);
}

#define T(f) cmocka_unit_test_setup_teardown(f, tu_setup_fds, tu_teardown_fds)

int main(void) {
  const struct CMUnitTest tests[] = {
      T(test_many_writes_in_order),
      T(test_write_then_close_write),
      T(test_abort_with_sends_in_flight),
      T(test_close_now_with_sends_in_flight),
      T(test_send_error_reported),
      T(test_short_sends_continue),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
