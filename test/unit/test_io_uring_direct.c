/* A write alone in its loop iteration on the io_uring backend goes to
 * send(2) at once, and only what the kernel did not take goes through the
 * ring (docs/io_uring.md, "Sends"). The write made from on_read after a
 * wait that reported that one connection is such a write:
 *
 *  - Taken whole: nothing is queued right after the call.
 *  - Taken in part: the rest is queued (0 < queued < len right after the
 *    call) and follows through ring sends, with the writes made after it,
 *    every byte in order.
 *  - Closed right after: close, every byte then EOF; close_now, exactly
 *    the bytes counted written (send(2)'s and the ring send's until its
 *    cancellation) then EOF; abort, a correct prefix then a reset; ref
 *    writes cancelled, on_close once and last. Or closed later, while the
 *    ring sends the rest: every byte, then EOF.
 *  - Met by a reset peer: the write still returns 0, and on_write_error
 *    reports the error and the bytes as unsent, as for a ring send; with
 *    no memory for that report, the write returns the error itself.
 * Each test skips where the kernel refuses io_uring or its ring sends. */
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
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rill.h"
#include "test_util.h"

#define LIMIT 20000
#define BIG (4u << 20) /* far more than the socket buffers take at once */

static unsigned char pattern(size_t i) { return (unsigned char)(i * 7 + i / 251); }

static void on_keep_accept(rill_listener *l, rill_conn *c, int status, void *arg) {
  rill_conn **out = arg;
  (void)l;
  assert_int_equal(status, 0);
  *out = c;
}

/* A connected pair: the server side as a rill_conn, the client a plain
 * non-blocking socket. */
static rill_conn *pair(rill_base *base, int *client) {
  rill_listener *l;
  rill_conn *c = NULL;
  struct sockaddr_in sa;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int i, small = 16384;
  assert_true(fd >= 0);
  /* Small buffers on both sides: a large write is taken only in part. */
  assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small), 0);
  assert_int_equal(rill_listen(base, "tcp", "127.0.0.1:0", NULL, on_keep_accept, &c, &l), 0);
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)rill_listener_port(l));
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
  for (i = 0; i < 1000 && !c; i++) TU_RUN(base, RILL_RUN_ONCE, LIMIT);
  assert_non_null(c);
  assert_int_equal(setsockopt(rill_conn_fd(c), SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
  rill_listener_free(l);
  tu_nonblock(fd);
  *client = fd;
  return c;
}

/* What to do in on_read, and what happened. */
enum after { KEEP, CLOSE, ABORT, CLOSE_NOW };

struct env {
  enum after after; /* what on_read does after its writes */
  size_t first;     /* the first write's length */
  size_t next;      /* pattern offset of the next byte to write */
  size_t queued_after_first;
  uint64_t written_after_first;
  int writes_made;  /* on_read calls that wrote */
  int write_status; /* what the first write returned */
  int refs_done, ref_status;
  int write_errors, write_error;
  size_t unsent;
  int closes, after_close;
  uint64_t written_at_close;
  unsigned char *src; /* BIG pattern bytes */
};

static void on_ref_done(rill_conn *c, int status, size_t written, void *arg) {
  struct env *e = arg;
  (void)c;
  (void)written;
  if (e->closes) e->after_close++;
  e->refs_done++;
  if (status) e->ref_status = status;
}

/* The pattern's next `len` bytes, written as a copy. */
static int write_next(rill_conn *c, struct env *e, size_t len) {
  int err = rill_conn_write(c, e->src + e->next, len);
  if (err == 0) e->next += len;
  return err;
}

static size_t on_read(rill_conn *c, const char *data, size_t len, int status, void *arg) {
  struct env *e = arg;
  (void)data;
  if (status || e->writes_made) return len;
  e->writes_made++;
  /* Alone in its iteration: this one goes to send(2). */
  e->write_status = write_next(c, e, e->first);
  e->queued_after_first = rill_conn_write_queued(c);
  e->written_after_first = rill_conn_bytes_written(c);
  if (e->write_status) return len;
  /* Behind it, through the ring: a copy, a ref write, a copy. */
  assert_int_equal(write_next(c, e, 1000), 0);
  assert_int_equal(rill_conn_write_ref(c, e->src + e->next, 70000, on_ref_done, e), 0);
  e->next += 70000;
  assert_int_equal(write_next(c, e, 5), 0);
  if (e->after == CLOSE) assert_int_equal(rill_conn_close(c), 0);
  if (e->after == ABORT) assert_int_equal(rill_conn_abort(c), 0);
  if (e->after == CLOSE_NOW) assert_int_equal(rill_conn_close_now(c), 0);
  return len;
}

static void on_write_error(rill_conn *c, int err, size_t unsent, void *arg) {
  struct env *e = arg;
  (void)c;
  if (e->closes) e->after_close++;
  e->write_errors++;
  e->write_error = err;
  e->unsent = unsent;
}

static void on_close(rill_conn *c, void *arg) {
  struct env *e = arg;
  if (e->closes) e->after_close++;
  e->closes++;
  e->written_at_close = rill_conn_bytes_written(c);
}

static const rill_conn_events events = {on_read, NULL, NULL, NULL, on_write_error, on_close};

/* A base whose connections send through the ring, or NULL. */
static rill_base *sending_base(void) {
  const char *sends = getenv("RILL_IO_URING_SENDS");
  if (sends && strcmp(sends, "0") == 0) return NULL;
  return tu_uring_base();
}

/* A pair started with `e`, whose client has sent one byte and whose
 * on_read has run. */
static rill_conn *start(rill_base *base, struct env *e, enum after after, size_t first, int *client) {
  uint64_t deadline;
  rill_conn *c;
  memset(e, 0, sizeof *e);
  e->after = after;
  e->first = first;
  e->src = malloc(BIG);
  assert_non_null(e->src);
  for (size_t i = 0; i < BIG; i++) e->src[i] = pattern(i);
  c = pair(base, client);
  assert_int_equal(rill_conn_start(c, &events, e), 0);
  /* Quiet first: the wait that delivers the byte then reports only it. */
  TU_RUN(base, RILL_RUN_NOWAIT, LIMIT);
  assert_int_equal(send(*client, "x", 1, 0), 1);
  deadline = tu_now_ms() + LIMIT;
  while (!e->writes_made && tu_now_ms() < deadline) TU_RUN(base, RILL_RUN_ONCE, LIMIT);
  assert_int_equal(e->writes_made, 1);
  return c;
}

/* Reads until EOF or an error, running the base meanwhile, checking the
 * pattern; returns 0 at EOF or the negative errno; *seen counts bytes. */
static int drain_client(rill_base *base, int client, size_t max, size_t *seen, int *bad) {
  char buf[65536];
  uint64_t deadline = tu_now_ms() + LIMIT;
  while (tu_now_ms() < deadline) {
    struct pollfd p = {client, POLLIN, 0};
    ssize_t n;
    TU_RUN(base, RILL_RUN_NOWAIT, LIMIT);
    poll(&p, 1, 1);
    n = recv(client, buf, sizeof buf, 0);
    if (n == 0) return 0;
    if (n < 0 && errno != EAGAIN) return -errno;
    for (ssize_t i = 0; i < n; i++)
      if (*seen + (size_t)i >= max || (unsigned char)buf[i] != pattern(*seen + (size_t)i)) (*bad)++;
    if (n > 0) *seen += (size_t)n;
  }
  fail_msg("the client saw neither EOF nor an error");
  return 1;
}

static void finish(rill_base *base, rill_conn *c, struct env *e, int client) {
  uint64_t deadline = tu_now_ms() + LIMIT;
  if (c) assert_int_equal(rill_conn_close(c), 0);
  while (!e->closes && tu_now_ms() < deadline) TU_RUN(base, RILL_RUN_ONCE, LIMIT);
  assert_int_equal(e->closes, 1);
  assert_int_equal(e->after_close, 0);
  if (client >= 0) close(client);
  free(e->src);
  tu_base_free(base);
}

/* A graceful close: the client gets every byte written, in order, then
 * EOF; the ref write completed whole and no write failed. */
static void close_and_check_delivered(rill_base *base, rill_conn *c, struct env *e, int client) {
  size_t seen = 0;
  int bad = 0;
  assert_int_equal(rill_conn_close(c), 0);
  assert_int_equal(drain_client(base, client, e->next, &seen, &bad), 0);
  assert_int_equal(seen, e->next);
  assert_int_equal(bad, 0);
  assert_int_equal(e->written_at_close, e->next);
  assert_int_equal(e->refs_done, 1);
  assert_int_equal(e->ref_status, 0);
  assert_int_equal(e->write_errors, 0);
  finish(base, NULL, e, client);
}

/* ---- taken whole -------------------------------------------------------- */

static void test_taken_whole(void **state) {
  rill_base *base = sending_base();
  struct env e;
  int client;
  rill_conn *c;
  (void)state;
  if (!base) skip();
  c = start(base, &e, KEEP, 64, &client);
  assert_int_equal(e.write_status, 0);
  assert_int_equal(e.queued_after_first, 0); /* went to send(2) whole */
  assert_int_equal(e.written_after_first, 64);
  close_and_check_delivered(base, c, &e, client);
}

/* ---- taken in part, the rest through the ring, in order ------------------ */

static void test_partial_then_ring_in_order(void **state) {
  rill_base *base = sending_base();
  struct env e;
  size_t seen = 0;
  int client, bad = 0;
  uint64_t deadline;
  rill_conn *c;
  (void)state;
  if (!base) skip();
  c = start(base, &e, KEEP, BIG - 80000, &client);
  assert_int_equal(e.write_status, 0);
  /* send(2) took a part; the rest waits for the ring. */
  assert_true(e.written_after_first > 0);
  assert_true(e.queued_after_first > 0);
  assert_int_equal(e.queued_after_first + e.written_after_first, e.first);
  /* Read it all, slowly enough that the ring sends are short too. */
  deadline = tu_now_ms() + LIMIT;
  while (seen < e.next && tu_now_ms() < deadline) {
    char buf[16384];
    struct pollfd p = {client, POLLIN, 0};
    ssize_t n;
    TU_RUN(base, RILL_RUN_NOWAIT, LIMIT);
    poll(&p, 1, 1);
    n = recv(client, buf, sizeof buf, 0);
    assert_true(n > 0 || (n < 0 && errno == EAGAIN));
    for (ssize_t i = 0; i < n; i++)
      if (seen + (size_t)i >= e.next || (unsigned char)buf[i] != pattern(seen + (size_t)i)) bad++;
    if (n > 0) seen += (size_t)n;
  }
  assert_int_equal(seen, e.next);
  assert_int_equal(bad, 0);
  deadline = tu_now_ms() + LIMIT;
  while ((e.refs_done < 1 || rill_conn_write_queued(c)) && tu_now_ms() < deadline)
    TU_RUN(base, RILL_RUN_ONCE, LIMIT);
  assert_int_equal(e.refs_done, 1);
  assert_int_equal(e.ref_status, 0);
  assert_int_equal(e.write_errors, 0);
  assert_int_equal(rill_conn_bytes_written(c), e.next);
  finish(base, c, &e, client);
}

/* ---- closed right after the partial send --------------------------------- */

static void closed_after_partial(enum after after) {
  rill_base *base = sending_base();
  struct env e;
  size_t seen = 0;
  int client, bad = 0, end;
  if (!base) skip();
  (void)start(base, &e, after, BIG - 80000, &client);
  assert_int_equal(e.write_status, 0);
  assert_true(e.queued_after_first > 0 && e.written_after_first > 0);
  end = drain_client(base, client, e.next, &seen, &bad);
  assert_int_equal(bad, 0); /* whatever arrived is the stream's prefix, in order */
  if (after == CLOSE) {
    assert_int_equal(end, 0);
    assert_int_equal(seen, e.next); /* every byte, then EOF */
    assert_int_equal(e.written_at_close, e.next);
    assert_int_equal(e.ref_status, 0);
  } else if (after == CLOSE_NOW) {
    /* What the kernel took (send(2)'s part, and what the ring's send took
     * before its cancellation) arrives, then FIN; the rest is dropped. */
    assert_int_equal(end, 0);
    assert_int_equal(seen, e.written_at_close);
    assert_true(e.written_at_close >= e.written_after_first);
    assert_true(e.written_at_close < e.next);
    assert_int_equal(e.ref_status, RILL_ECANCELED);
  } else {
    assert_int_equal(end, -ECONNRESET); /* what was not yet delivered is lost */
    assert_true(seen <= e.written_at_close);
    assert_true(e.written_at_close >= e.written_after_first);
    assert_true(e.written_at_close < e.next);
    assert_int_equal(e.ref_status, RILL_ECANCELED);
  }
  assert_int_equal(e.write_errors, 0);
  finish(base, NULL, &e, client);
}

static void test_close_after_partial(void **state) {
  (void)state;
  closed_after_partial(CLOSE);
}

static void test_abort_after_partial(void **state) {
  (void)state;
  closed_after_partial(ABORT);
}

static void test_close_now_after_partial(void **state) {
  (void)state;
  closed_after_partial(CLOSE_NOW);
}

/* ---- closed later, while the ring sends the rest ------------------------- */

static void test_close_during_ring_rest(void **state) {
  rill_base *base = sending_base();
  struct env e;
  int client, i;
  rill_conn *c;
  (void)state;
  if (!base) skip();
  c = start(base, &e, KEEP, BIG - 80000, &client);
  assert_true(e.queued_after_first > 0 && e.written_after_first > 0);
  /* The client reads nothing yet: the ring's send waits in the kernel. */
  for (i = 0; i < 10; i++) TU_RUN(base, RILL_RUN_NOWAIT, LIMIT);
  assert_true(rill_conn_write_queued(c) > 0);
  close_and_check_delivered(base, c, &e, client);
}

/* ---- a reset peer ---------------------------------------------------------- */

/* A connection started with `e` (zeroed first) whose peer has reset it,
 * after a wait that reported nothing: the next write is alone in its
 * iteration. No on_read: the receive does not see the reset first. */
static rill_conn *reset_by_peer(rill_base *base, struct env *e) {
  static const rill_conn_events quiet = {NULL, NULL, NULL, NULL, on_write_error, on_close};
  struct linger lg = {1, 0};
  int client;
  rill_conn *c = pair(base, &client);
  memset(e, 0, sizeof *e);
  assert_int_equal(rill_conn_start(c, &quiet, e), 0);
  assert_int_equal(setsockopt(client, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
  close(client); /* RST */
  tu_sleep_ms(20);
  TU_RUN(base, RILL_RUN_NOWAIT, LIMIT);
  return c;
}

static void test_reset_peer_reported(void **state) {
  rill_base *base = sending_base();
  struct env e;
  uint64_t deadline;
  rill_conn *c;
  (void)state;
  if (!base) skip();
  c = reset_by_peer(base, &e);
  e.src = malloc(BIG);
  assert_non_null(e.src);
  for (size_t i = 0; i < BIG; i++) e.src[i] = pattern(i);
  assert_int_equal(write_next(c, &e, 100), 0); /* queued, then failed: not at once */
  assert_int_equal(rill_conn_write_queued(c), 0);
  deadline = tu_now_ms() + LIMIT;
  while (e.write_errors == 0 && tu_now_ms() < deadline) TU_RUN(base, RILL_RUN_ONCE, 1000);
  assert_int_equal(e.write_errors, 1);
  assert_int_equal(e.write_error, -ECONNRESET); /* the error send(2) met, not a later EPIPE */
  assert_int_equal(e.unsent, 100);
  assert_int_equal(rill_conn_write(c, "again", 5), -ECONNRESET); /* sticky */
  finish(base, c, &e, -1);
}

/* The same with no memory for the report: the write returns the error
 * send(2) met at once (not RILL_ENOMEM), and later writes fail with it. */
static void test_reset_peer_out_of_memory(void **state) {
  rill_base *base = sending_base();
  struct env e;
  int err;
  rill_conn *c;
  (void)state;
  if (!base) skip();
  c = reset_by_peer(base, &e);
  tu_alloc_fail_after(0);
  err = rill_conn_write(c, "lost", 4);
  tu_alloc_fail_after(-1);
  assert_int_equal(err, -ECONNRESET);
  assert_int_equal(rill_conn_write(c, "again", 5), -ECONNRESET);
  for (int i = 0; i < 3; i++) TU_RUN(base, RILL_RUN_NOWAIT, LIMIT);
  assert_int_equal(e.write_errors, 0); /* heard once, by the caller */
  finish(base, c, &e, -1);
}

#define T(f) cmocka_unit_test_setup_teardown(f, tu_setup_fds, tu_teardown_fds)

int main(void) {
  const struct CMUnitTest tests[] = {
      T(test_taken_whole),
      T(test_partial_then_ring_in_order),
      T(test_close_after_partial),
      T(test_abort_after_partial),
      T(test_close_now_after_partial),
      T(test_close_during_ring_rest),
      T(test_reset_peer_reported),
      T(test_reset_peer_out_of_memory),
  };
  /* Installed while no base exists; it fails only when a test asks. */
  assert_int_equal(rill_set_allocator(tu_malloc, tu_realloc, tu_free), 0);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
