/* docs/go-model.md G18-G22, callback API: writing, back-pressure, write
 * deadlines, a peer that vanishes, a peer that closed first.
 *
 * SIGPIPE keeps its default action in this program on purpose: a write to a
 * vanished peer that raised it would kill the test (G21). */
#define _GNU_SOURCE 1

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rill.h"
#include "test_util.h"
#include "net_util.h"

#define LIMIT 10000
#define MiB (1024u * 1024u)

/* What the write-side callbacks report. */
struct wr {
  rill_base *base;
  int drains, highs, lows, write_errors, closes;
  size_t high_queued, low_queued;
  int write_err;
  size_t unsent;
  uint64_t written_at_error;
  uint64_t error_at_ms;
  char order[16]; /* 'H', 'L', 'D', 'E' in the order they came */
  int norder;
  int stop_on_drain, stop_on_error, close_on_drain;
  nu_reader *reader; /* on_read goes here, if set */
};

static void note(struct wr *w, char c) {
  if (w->norder < (int)sizeof w->order - 1) w->order[w->norder++] = c;
}

static size_t wr_on_read(rill_conn *c, const char *data, size_t len, int status, void *arg) {
  struct wr *w = (struct wr *)arg;
  if (w->reader) return nu_on_read(c, data, len, status, w->reader);
  return len;
}
static void wr_on_drain(rill_conn *c, void *arg) {
  struct wr *w = (struct wr *)arg;
  w->drains++;
  note(w, 'D');
  if (w->close_on_drain) assert_int_equal(rill_conn_close(c), 0);
  if (w->stop_on_drain) rill_base_stop(w->base);
}
static void wr_on_high(rill_conn *c, size_t queued, void *arg) {
  struct wr *w = (struct wr *)arg;
  (void)c;
  w->highs++;
  w->high_queued = queued;
  note(w, 'H');
}
static void wr_on_low(rill_conn *c, size_t queued, void *arg) {
  struct wr *w = (struct wr *)arg;
  (void)c;
  w->lows++;
  w->low_queued = queued;
  note(w, 'L');
}
static void wr_on_error(rill_conn *c, int err, size_t unsent, void *arg) {
  struct wr *w = (struct wr *)arg;
  w->write_errors++;
  w->write_err = err;
  w->unsent = unsent;
  w->written_at_error = rill_conn_bytes_written(c);
  w->error_at_ms = tu_now_ms();
  note(w, 'E');
  if (w->stop_on_error) rill_base_stop(w->base);
}
static void wr_on_close(rill_conn *c, void *arg) {
  struct wr *w = (struct wr *)arg;
  (void)c;
  w->closes++;
}

static void wr_start(rill_base *base, rill_conn *conn, struct wr *w, int reading) {
  rill_conn_events ev;
  memset(w, 0, sizeof *w);
  w->base = base;
  memset(&ev, 0, sizeof ev);
  if (reading) ev.on_read = wr_on_read;
  ev.on_drain = wr_on_drain;
  ev.on_high_water = wr_on_high;
  ev.on_low_water = wr_on_low;
  ev.on_write_error = wr_on_error;
  ev.on_close = wr_on_close;
  assert_int_equal(rill_conn_start(conn, &ev, w), 0);
}

/* Small kernel buffers on both ends, so that a peer that does not read
 * holds the writer back after some hundred KiB, not after megabytes. */
static void small_buffers(nu_pair *p) {
  int v = 32 * 1024;
  assert_int_equal(rill_conn_set_write_buffer(p->conn, v), 0);
  assert_int_equal(setsockopt(p->peer, SOL_SOCKET, SO_RCVBUF, &v, sizeof v), 0);
}

static unsigned char *pattern_buf(uint64_t off, size_t len) {
  unsigned char *b = (unsigned char *)malloc(len);
  assert_non_null(b);
  nu_pat_fill(b, off, len);
  return b;
}

/* ---- G18 ------------------------------------------------------------- */

#define G18_TOTAL (10u * MiB)

static void test_g18_large_write_completes(void **state) {
  rill_base *base = tu_base_new();
  nu_pair p;
  nu_sink sink;
  struct wr w;
  unsigned char *buf = pattern_buf(0, G18_TOTAL);
  (void)state;
  nu_pair_accepted(base, "127.0.0.1", NULL, &p);
  wr_start(base, p.conn, &w, 0);
  w.close_on_drain = 1; /* then the peer sees EOF */
  assert_int_equal(rill_conn_write(p.conn, buf, G18_TOTAL), 0);
  /* What the kernel did not take was copied: the buffer is ours again. */
  memset(buf, 0, G18_TOTAL);
  free(buf);
  assert_int_equal(w.drains, 0); /* reported from the loop only */
  memset(&sink, 0, sizeof sink);
  sink.stop_base = base;
  nu_sink_start(base, &sink, p.peer, 1);
  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  nu_sink_stop(&sink);
  nu_settle(base);
  assert_int_equal(sink.got, G18_TOTAL);
  assert_int_equal(sink.bad_at, -1);
  assert_int_equal(sink.eof, 1);
  assert_int_equal(w.drains, 1);
  assert_int_equal(w.write_errors, 0);
  assert_int_equal(w.closes, 1);
  p.conn = NULL;
  nu_pair_cleanup(base, &p);
  tu_base_free(base);
}

struct ref_done {
  int calls;
  int status;
  size_t written;
};
static void ref_done_cb(rill_conn *c, int status, size_t written, void *arg) {
  struct ref_done *d = (struct ref_done *)arg;
  (void)c;
  d->calls++;
  d->status = status;
  d->written = written;
}

/* The zero-copy form: the same bytes, and one completion. */
static void test_g18_large_write_ref_completes(void **state) {
  rill_base *base = tu_base_new();
  nu_pair p;
  nu_sink sink;
  struct wr w;
  struct ref_done rd;
  unsigned char *buf = pattern_buf(0, G18_TOTAL);
  (void)state;
  nu_pair_dialed(base, "127.0.0.1", NULL, &p);
  wr_start(base, p.conn, &w, 0);
  w.close_on_drain = 1;
  memset(&rd, 0, sizeof rd);
  assert_int_equal(rill_conn_write_ref(p.conn, buf, G18_TOTAL, ref_done_cb, &rd), 0);
  assert_int_equal(rd.calls, 0);
  memset(&sink, 0, sizeof sink);
  sink.stop_base = base;
  nu_sink_start(base, &sink, p.peer, 1);
  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  nu_sink_stop(&sink);
  nu_settle(base);
  assert_int_equal(rd.calls, 1);
  assert_int_equal(rd.status, 0);
  assert_int_equal(rd.written, G18_TOTAL);
  assert_int_equal(sink.got, G18_TOTAL);
  assert_int_equal(sink.bad_at, -1);
  assert_int_equal(w.drains, 1);
  free(buf);
  p.conn = NULL;
  nu_pair_cleanup(base, &p);
  tu_base_free(base);
}

/* ---- G19 ------------------------------------------------------------- */

#define G19_TOTAL (16u * MiB)
#define G19_CHUNK (64u * 1024u)

static void test_g19_peer_not_reading_high_then_low_water(void **state) {
  rill_base *base = tu_base_new();
  nu_pair p;
  nu_sink sink;
  struct wr w;
  rill_socket_config o;
  unsigned char *chunk = (unsigned char *)malloc(G19_CHUNK);
  uint64_t off;
  size_t prev_queued = 0;
  (void)state;
  assert_non_null(chunk);
  memset(&o, 0, sizeof o);
  o.write_high_water = 1 * MiB;
  nu_pair_dialed(base, "127.0.0.1", &o, &p);
  small_buffers(&p);
  wr_start(base, p.conn, &w, 0);
  for (off = 0; off < G19_TOTAL; off += G19_CHUNK) {
    size_t q;
    nu_pat_fill(chunk, off, G19_CHUNK);
    assert_int_equal(rill_conn_write(p.conn, chunk, G19_CHUNK), 0);
    q = rill_conn_write_queued(p.conn);
    assert_true(q >= prev_queued); /* nobody drains it: it only grows */
    prev_queued = q;
    assert_int_equal(q + rill_conn_bytes_written(p.conn), off + G19_CHUNK);
  }
  free(chunk);
  printf("# G19: kernel took %llu bytes, %zu queued\n",
         (unsigned long long)rill_conn_bytes_written(p.conn), rill_conn_write_queued(p.conn));
  assert_true(rill_conn_write_queued(p.conn) > 1 * MiB);
  assert_int_equal(w.highs, 0); /* never inside the call */

  /* The peer still does not read: the high-water mark is reported once. */
  nu_stop_after(base, 100);
  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  assert_int_equal(w.highs, 1);
  assert_true(w.high_queued > 1 * MiB);
  assert_int_equal(w.lows, 0);
  assert_int_equal(w.drains, 0);

  /* The peer reads: low water, drain, and every byte in order. */
  w.close_on_drain = 1;
  memset(&sink, 0, sizeof sink);
  sink.stop_base = base;
  nu_sink_start(base, &sink, p.peer, 1);
  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  nu_sink_stop(&sink);
  nu_settle(base);
  printf("# G19: callbacks in order: %s\n", w.order);
  assert_int_equal(w.highs, 1);
  assert_int_equal(w.lows, 1);
  assert_int_equal(w.low_queued, 0);
  assert_int_equal(w.drains, 1);
  assert_string_equal(w.order, "HLD");
  assert_int_equal(sink.got, G19_TOTAL);
  assert_int_equal(sink.bad_at, -1);
  assert_int_equal(sink.eof, 1);
  assert_int_equal(w.closes, 1);
  p.conn = NULL;
  nu_pair_cleanup(base, &p);
  tu_base_free(base);
}

/* ---- G20 ------------------------------------------------------------- */

static void test_g20_write_deadline_partial(void **state) {
  rill_base *base = tu_base_new();
  nu_pair p;
  nu_sink sink;
  struct wr w;
  unsigned char *buf = pattern_buf(0, G19_TOTAL);
  unsigned char tail[1000];
  uint64_t t0, written;
  char msg[512], local[RILL_ADDRSTRLEN], remote[RILL_ADDRSTRLEN], want[512];
  (void)state;
  nu_pair_accepted(base, "127.0.0.1", NULL, &p);
  small_buffers(&p);
  wr_start(base, p.conn, &w, 0);
  w.stop_on_error = 1;
  assert_int_equal(rill_conn_write(p.conn, buf, G19_TOTAL), 0);
  free(buf);
  t0 = tu_now_ms();
  assert_int_equal(rill_conn_set_deadline(p.conn, RILL_DEADLINE_WRITE, rill_time_now() + 200 * RILL_MSEC), 0);
  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  written = rill_conn_bytes_written(p.conn);
  printf("# G20: timed out after %llu ms with %llu bytes written, %zu unsent\n",
         (unsigned long long)(w.error_at_ms - t0), (unsigned long long)written, w.unsent);
  assert_int_equal(w.write_errors, 1);
  assert_int_equal(w.write_err, RILL_ETIMEOUT);
  assert_true(w.error_at_ms - t0 >= 200);
  /* The partial count is reported, not hidden. */
  assert_true(written > 0);
  assert_true(written < G19_TOTAL);
  assert_true(w.unsent > 0);
  assert_int_equal(w.unsent + written, G19_TOTAL);
  assert_int_equal(rill_conn_write_queued(p.conn), 0);
  assert_true(rill_conn_format_error(p.conn, "write", RILL_ETIMEOUT, msg, sizeof msg) > 0);
  rill_conn_local_addr(p.conn, local, sizeof local);
  rill_conn_remote_addr(p.conn, remote, sizeof remote);
  snprintf(want, sizeof want, "write tcp %s->%s: i/o timeout", local, remote);
  assert_string_equal(msg, want);

  /* Until the deadline moves, writes fail at once with the time-out. */
  nu_pat_fill(tail, written, sizeof tail);
  assert_int_equal(rill_conn_write(p.conn, tail, sizeof tail), RILL_ETIMEOUT);
  assert_int_equal(rill_conn_set_deadline(p.conn, RILL_DEADLINE_WRITE, 0), 0);
  assert_int_equal(rill_conn_write(p.conn, tail, sizeof tail), 0);

  /* The stream is what the kernel took, then the new write: the pattern
   * stays unbroken. */
  w.close_on_drain = 1;
  w.stop_on_error = 0;
  memset(&sink, 0, sizeof sink);
  sink.stop_base = base;
  nu_sink_start(base, &sink, p.peer, 1);
  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  nu_sink_stop(&sink);
  nu_settle(base);
  assert_int_equal(sink.got, written + sizeof tail);
  assert_int_equal(sink.bad_at, -1);
  assert_int_equal(sink.eof, 1);
  assert_int_equal(w.write_errors, 1);
  p.conn = NULL;
  nu_pair_cleanup(base, &p);
  tu_base_free(base);
}

/* ---- G21 ------------------------------------------------------------- */

static int is_gone(int err) { return err == -EPIPE || err == -ECONNRESET; }

static void assert_sigpipe_default(void) {
  struct sigaction sa;
  assert_int_equal(sigaction(SIGPIPE, NULL, &sa), 0);
  assert_true(sa.sa_handler == SIG_DFL);
}

struct g21 {
  int fd;
  int rst;
};

static void g21_vanish(void *arg) {
  struct g21 *g = (struct g21 *)arg;
  if (g->rst) {
    struct linger lg;
    lg.l_onoff = 1;
    lg.l_linger = 0;
    assert_int_equal(setsockopt(g->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
  }
  close(g->fd); /* with unread data: the kernel resets the connection */
}

static void g21_case(int rst) {
  rill_base *base = tu_base_new();
  nu_pair p;
  struct wr w;
  struct g21 g;
  unsigned char *buf = pattern_buf(0, G19_TOTAL);
  char msg[256];
  int rc;
  uint64_t written;
  assert_sigpipe_default();
  nu_pair_accepted(base, "127.0.0.1", NULL, &p);
  small_buffers(&p);
  wr_start(base, p.conn, &w, 1);
  w.stop_on_error = 1;
  assert_int_equal(rill_conn_write(p.conn, buf, G19_TOTAL), 0);
  free(buf);
  g.fd = p.peer;
  g.rst = rst;
  p.peer = -1;
  nu_after(base, 50, g21_vanish, &g);
  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  written = rill_conn_bytes_written(p.conn);
  printf("# G21 (%s): %s after %llu bytes, %zu unsent\n", rst ? "RST" : "close",
         rill_err_name(w.write_err), (unsigned long long)written, w.unsent);
  assert_int_equal(w.write_errors, 1);
  if (!is_gone(w.write_err))
    fail_msg("on_write_error: %d (%s), want -EPIPE or -ECONNRESET", w.write_err,
             rill_strerror(w.write_err));
  assert_true(written < G19_TOTAL);
  assert_true(w.unsent > 0);
  assert_int_equal(w.unsent + written, G19_TOTAL);
  /* Later writes fail the same way, at once; still no SIGPIPE. */
  rc = rill_conn_write(p.conn, "x", 1);
  assert_true(is_gone(rc));
  assert_true(rill_conn_format_error(p.conn, "write", w.write_err, msg, sizeof msg) > 0);
  assert_non_null(strstr(msg, ": write: "));
  assert_non_null(strstr(msg, rill_strerror(w.write_err)));
  assert_true(strcmp(rill_strerror(-EPIPE), "broken pipe") == 0);
  assert_true(strcmp(rill_strerror(-ECONNRESET), "connection reset by peer") == 0);
  nu_pair_cleanup(base, &p);
  tu_base_free(base);
}

static void test_g21_peer_vanishes_mid_write(void **state) {
  (void)state;
  g21_case(1);
  g21_case(0);
}

/* ---- G22 ------------------------------------------------------------- */

static void test_g22_write_after_peer_closed(void **state) {
  rill_base *base = tu_base_new();
  nu_pair p;
  struct wr w;
  nu_reader r;
  int rc, tries, err = 0;
  (void)state;
  assert_sigpipe_default();
  nu_pair_accepted(base, "127.0.0.1", NULL, &p);
  wr_start(base, p.conn, &w, 1);
  nu_reader_init(&r);
  r.stop_base = base;
  w.reader = &r;
  close(p.peer); /* FIN: the peer closed first */
  p.peer = -1;
  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  assert_int_equal(r.eofs, 1);

  /* The first write lands in our kernel buffer. */
  assert_int_equal(rill_conn_write(p.conn, "first", 5), 0);
  /* The peer's kernel answers with RST; then writes fail. */
  for (tries = 0; tries < 20 && !err; tries++) {
    nu_stop_after(base, 20);
    TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
    if (w.write_errors) {
      err = w.write_err;
      break;
    }
    rc = rill_conn_write(p.conn, "again", 5);
    if (rc != 0) err = rc;
  }
  printf("# G22: %s after %d tries (%s)\n", rill_err_name(err), tries,
         w.write_errors ? "on_write_error" : "returned");
  if (!is_gone(err))
    fail_msg("writes to a closed peer: %d (%s), want -EPIPE or -ECONNRESET", err,
             rill_strerror(err));
  /* Sticky. */
  assert_true(is_gone(rill_conn_write(p.conn, "x", 1)));
  assert_int_equal(r.after_final, 0);
  nu_pair_cleanup(base, &p);
  tu_base_free(base);
}

/* ---- completion order ------------------------------------------------ */

/* Completions of ref writes in the order they came. */
struct ref_order {
  char seq[8];
  int n;
};
struct ref_tag {
  struct ref_order *order;
  char tag;
  int status;
};
static void ref_order_cb(rill_conn *c, int status, size_t written, void *arg) {
  struct ref_tag *t = (struct ref_tag *)arg;
  (void)c;
  (void)written;
  t->status = status;
  if (t->order->n < (int)sizeof t->order->seq - 1) t->order->seq[t->order->n++] = t->tag;
}

/* Issue 8: a zero-length rill_conn_write_ref() queued behind a write the
 * kernel could not take whole completes after it, not before. */
static void test_zero_length_write_ref_completes_in_order(void **state) {
  rill_base *base = tu_base_new();
  nu_pair p;
  nu_sink sink;
  struct ref_order order;
  struct ref_tag big, empty, after;
  unsigned char *buf = pattern_buf(0, G18_TOTAL);
  (void)state;
  nu_pair_accepted(base, "127.0.0.1", NULL, &p);
  small_buffers(&p);
  memset(&order, 0, sizeof order);
  big.order = empty.order = after.order = &order;
  big.tag = 'B';
  empty.tag = 'Z';
  after.tag = 'A';
  big.status = empty.status = after.status = 1;
  assert_int_equal(rill_conn_write_ref(p.conn, buf, G18_TOTAL, ref_order_cb, &big), 0);
  assert_true(rill_conn_write_queued(p.conn) > 0);
  assert_int_equal(rill_conn_write_ref(p.conn, NULL, 0, ref_order_cb, &empty), 0);
  assert_int_equal(rill_conn_write_ref(p.conn, "x", 1, ref_order_cb, &after), 0);
  memset(&sink, 0, sizeof sink);
  nu_sink_start(base, &sink, p.peer, 0);
  nu_run_until_count(base, &order.n, 3, LIMIT);
  nu_sink_stop(&sink);
  assert_string_equal(order.seq, "BZA");
  assert_int_equal(big.status, 0);
  assert_int_equal(empty.status, 0);
  assert_int_equal(after.status, 0);
  /* With nothing queued it completes at once, still from the loop. */
  memset(&order, 0, sizeof order);
  assert_int_equal(rill_conn_write_ref(p.conn, NULL, 0, ref_order_cb, &empty), 0);
  assert_int_equal(order.n, 0);
  nu_run_until_count(base, &order.n, 1, LIMIT);
  assert_string_equal(order.seq, "Z");
  free(buf);
  nu_pair_cleanup(base, &p);
  tu_base_free(base);
}

int main(void) {
#define T(f) cmocka_unit_test_setup_teardown(f, tu_setup_fds, tu_teardown_fds)
  const struct CMUnitTest tests[] = {
      T(test_g18_large_write_completes),
      T(test_g18_large_write_ref_completes),
      T(test_g19_peer_not_reading_high_then_low_water),
      T(test_g20_write_deadline_partial),
      T(test_g21_peer_vanishes_mid_write),
      T(test_g22_write_after_peer_closed),
      T(test_zero_length_write_ref_completes_in_order),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
