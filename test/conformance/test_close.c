/* docs/go-model.md G23-G27, callback API: closed connections, half-close,
 * writes from several callbacks, accept when out of descriptors, bounded
 * reads. Also the close races (1,000 rounds each) and a descriptor-leak
 * check over 10,000 connect/accept/close cycles. */
#define _GNU_SOURCE 1

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rill.h"
#include "test_util.h"
#include "net_util.h"

#define LIMIT 10000

/* ---- G23 ------------------------------------------------------------- */

static void ref_done_cb(rill_conn *c, int status, size_t written, void *arg) {
  (void)c;
  (void)status;
  (void)written;
  (*(int *)arg)++;
}

static void test_g23_closed_conn_calls(void **state) {
  rill_base *base = tu_base_new();
  nu_pair p;
  nu_reader r;
  rill_conn_events ev;
  int ref_calls = 0;
  char msg[512], local[RILL_ADDRSTRLEN], remote[RILL_ADDRSTRLEN], want[512];
  (void)state;
  assert_string_equal(rill_strerror(RILL_ECLOSED), "use of closed network connection");
  nu_pair_accepted(base, "127.0.0.1", NULL, &p);
  nu_reader_init(&r);
  r.conn_slot = &p.conn;
  nu_reader_start(p.conn, &r);
  rill_conn_local_addr(p.conn, local, sizeof local);
  rill_conn_remote_addr(p.conn, remote, sizeof remote);
  assert_int_equal(rill_conn_close(p.conn), 0);

  /* Until on_close runs the handle is valid, and every call says
   * "closed". */
  assert_int_equal(rill_conn_write(p.conn, "x", 1), RILL_ECLOSED);
  assert_int_equal(rill_conn_write_ref(p.conn, "x", 1, ref_done_cb, &ref_calls), RILL_ECLOSED);
  assert_int_equal(rill_conn_read_start(p.conn), RILL_ECLOSED);
  assert_int_equal(rill_conn_read_stop(p.conn), RILL_ECLOSED);
  assert_int_equal(rill_conn_set_deadline(p.conn, RILL_DEADLINE_BOTH, 0), RILL_ECLOSED);
  assert_int_equal(rill_conn_set_no_delay(p.conn, 1), RILL_ECLOSED);
  assert_int_equal(rill_conn_close(p.conn), RILL_ECLOSED);
  assert_int_equal(rill_conn_close_write(p.conn), RILL_ECLOSED);
  assert_int_equal(rill_conn_abort(p.conn), RILL_ECLOSED);
  assert_int_equal(rill_conn_fd(p.conn), RILL_ECLOSED);
  memset(&ev, 0, sizeof ev);
  assert_int_equal(rill_conn_start(p.conn, &ev, NULL), RILL_ECLOSED);
  assert_true(rill_conn_format_error(p.conn, "write", RILL_ECLOSED, msg, sizeof msg) > 0);
  snprintf(want, sizeof want, "write tcp %s->%s: use of closed network connection", local, remote);
  assert_string_equal(msg, want);
  assert_int_equal(r.closes, 0);

  nu_settle(base);
  assert_int_equal(r.closes, 1);
  assert_null(p.conn);
  assert_int_equal(r.calls, 0); /* no read after the close */
  assert_int_equal(ref_calls, 0);
  /* The peer sees the close. */
  assert_int_equal(nu_wait_eof(p.peer, 1000, NULL), 1);
  nu_pair_cleanup(base, &p);
  tu_base_free(base);
}

/* Closing (or aborting) from inside each callback. */
enum where {
  IN_READ_DATA,
  IN_READ_EOF,
  IN_READ_TIMEOUT,
  IN_DRAIN,
  IN_HIGH_WATER,
  IN_LOW_WATER,
  IN_WRITE_ERROR,
  IN_WRITE_REF_DONE,
  WHERE_COUNT
};

static const char *where_name[] = {"on_read(data)", "on_read(EOF)",   "on_read(ETIMEOUT)",
                                   "on_drain",      "on_high_water",  "on_low_water",
                                   "on_write_error", "write_ref done"};

struct closer {
  enum where where;
  int abort;        /* rill_conn_abort instead of rill_conn_close */
  int closed_in;    /* the close was made from the right callback */
  int closes;       /* on_close calls */
  int calls_after;  /* callbacks after the close call (other than on_close) */
  int close_rc;
  int after_rc;     /* rill_conn_write right after the close, in the callback */
  rill_base *base;
  rill_conn **slot;
};

static void closer_do(rill_conn *c, struct closer *k, enum where w) {
  if (k->closed_in) {
    k->calls_after++;
    return;
  }
  if (w != k->where) return;
  k->closed_in = 1;
  k->close_rc = k->abort ? rill_conn_abort(c) : rill_conn_close(c);
  k->after_rc = rill_conn_write(c, "z", 1);
}

static size_t k_on_read(rill_conn *c, const char *data, size_t len, int status, void *arg) {
  struct closer *k = (struct closer *)arg;
  (void)data;
  if (status == 0)
    closer_do(c, k, IN_READ_DATA);
  else if (status == RILL_EOF)
    closer_do(c, k, IN_READ_EOF);
  else if (status == RILL_ETIMEOUT)
    closer_do(c, k, IN_READ_TIMEOUT);
  else if (k->closed_in)
    k->calls_after++;
  return len;
}
static void k_on_drain(rill_conn *c, void *arg) { closer_do(c, (struct closer *)arg, IN_DRAIN); }
static void k_on_high(rill_conn *c, size_t q, void *arg) {
  (void)q;
  closer_do(c, (struct closer *)arg, IN_HIGH_WATER);
}
static void k_on_low(rill_conn *c, size_t q, void *arg) {
  (void)q;
  closer_do(c, (struct closer *)arg, IN_LOW_WATER);
}
static void k_on_error(rill_conn *c, int err, size_t unsent, void *arg) {
  (void)err;
  (void)unsent;
  closer_do(c, (struct closer *)arg, IN_WRITE_ERROR);
}
static void k_ref_done(rill_conn *c, int status, size_t written, void *arg) {
  (void)status;
  (void)written;
  closer_do(c, (struct closer *)arg, IN_WRITE_REF_DONE);
}
static void k_on_close(rill_conn *c, void *arg) {
  struct closer *k = (struct closer *)arg;
  (void)c;
  k->closes++;
  if (k->slot) *k->slot = NULL;
  rill_base_stop(k->base);
}

static unsigned char g_big[2 * 1024 * 1024];

/* One round: a fresh pair, the callback chosen by `where` closes. */
static void close_in_callback_round(rill_base *base, enum where where, int abort_it) {
  nu_pair p;
  struct closer k;
  rill_conn_events ev;
  rill_socket_config o;
  int v = 32 * 1024; /* below the loopback MSS the window stalls */
  uint64_t t0 = tu_now_ms(), t1 = 0, t2 = 0;
  memset(&k, 0, sizeof k);
  k.where = where;
  k.abort = abort_it;
  k.base = base;
  memset(&o, 0, sizeof o);
  o.write_high_water = 64 * 1024;
  o.write_low_water = 0;
  nu_pair_accepted(base, "127.0.0.1", &o, &p);
  k.slot = &p.conn;
  t1 = tu_now_ms();
  memset(&ev, 0, sizeof ev);
  ev.on_read = k_on_read;
  ev.on_drain = k_on_drain;
  ev.on_high_water = k_on_high;
  ev.on_low_water = k_on_low;
  ev.on_write_error = k_on_error;
  ev.on_close = k_on_close;
  assert_int_equal(rill_conn_start(p.conn, &ev, &k), 0);
  switch (where) {
    case IN_READ_DATA:
      assert_int_equal(nu_send_all(p.peer, "ping", 4, 1000), 4);
      break;
    case IN_READ_EOF:
      assert_int_equal(nu_send_all(p.peer, "ping", 4, 1000), 4);
      shutdown(p.peer, SHUT_WR);
      break;
    case IN_READ_TIMEOUT:
      assert_int_equal(rill_conn_set_deadline(p.conn, RILL_DEADLINE_READ, rill_time_now() + RILL_MSEC),
                       0);
      break;
    case IN_DRAIN: /* on_drain reports a queue that emptied: make one */
    case IN_HIGH_WATER:
    case IN_LOW_WATER:
    case IN_WRITE_ERROR:
      assert_int_equal(rill_conn_set_write_buffer(p.conn, v), 0);
      assert_int_equal(setsockopt(p.peer, SOL_SOCKET, SO_RCVBUF, &v, sizeof v), 0);
      assert_int_equal(rill_conn_write(p.conn, g_big, sizeof g_big), 0);
      assert_true(rill_conn_write_queued(p.conn) > o.write_high_water);
      if (where == IN_WRITE_ERROR) {
        struct linger lg = {1, 0};
        setsockopt(p.peer, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        close(p.peer);
        p.peer = -1;
      }
      break;
    case IN_WRITE_REF_DONE:
      assert_int_equal(rill_conn_write_ref(p.conn, "ref", 3, k_ref_done, &k), 0);
      break;
    default:
      break;
  }
  if (where == IN_LOW_WATER || where == IN_HIGH_WATER || where == IN_DRAIN) {
    /* The peer reads everything: the queue falls to low water, and a
     * graceful close can flush. */
    nu_sink sink;
    memset(&sink, 0, sizeof sink);
    nu_sink_start(base, &sink, p.peer, 0);
    TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
    nu_sink_stop(&sink);
  } else {
    TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  }
  t2 = tu_now_ms();
  /* Anything late? */
  nu_stop_after(base, 2);
  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  /* A round takes milliseconds; a stalled one shows here. */
  if (tu_now_ms() - t0 > 1000)
    printf("# G23: slow round (%s in %s): pair %llu ms, run %llu ms, late %llu ms\n",
           abort_it ? "abort" : "close", where_name[where], (unsigned long long)(t1 - t0),
           (unsigned long long)(t2 - t1), (unsigned long long)(tu_now_ms() - t2));
  if (!k.closed_in || k.closes != 1 || k.calls_after != 0 || k.close_rc != 0 ||
      k.after_rc != RILL_ECLOSED)
    fail_msg("%s in %s: closed_in %d, on_close %d, calls after %d, close rc %d, write after %d",
             abort_it ? "abort" : "close", where_name[where], k.closed_in, k.closes, k.calls_after,
             k.close_rc, k.after_rc);
  assert_null(p.conn);
  nu_pair_cleanup(base, &p);
}

static void test_g23_close_inside_callbacks(void **state) {
  rill_base *base = tu_base_new();
  int w;
  (void)state;
  for (w = 0; w < WHERE_COUNT; w++) {
    close_in_callback_round(base, (enum where)w, 0);
    close_in_callback_round(base, (enum where)w, 1);
  }
  tu_base_free(base);
}

/* The same, 1,000 rounds, cycling through the callbacks. */
static void test_g23_race_close_inside_callbacks_1000(void **state) {
  rill_base *base = tu_base_new();
  int i;
  (void)state;
  for (i = 0; i < 1000; i++) {
    enum where w = (enum where)(i % WHERE_COUNT);
    /* The write-side rounds move megabytes; keep them a minority. */
    if (w == IN_HIGH_WATER || w == IN_LOW_WATER || w == IN_WRITE_ERROR || w == IN_DRAIN) {
      if (i % 5 != 0) w = IN_READ_DATA;
    }
    close_in_callback_round(base, w, (i / WHERE_COUNT) % 2);
  }
  tu_base_free(base);
}

/* Graceful close with queued writes: the peer gets every byte, then EOF.
 * 1,000 rounds. */
static void test_g23_race_close_flushes_queue_1000(void **state) {
  rill_base *base = tu_base_new();
  nu_server srv;
  static unsigned char buf[256 * 1024];
  int i, queued_rounds = 0;
  (void)state;
  nu_pat_fill(buf, 0, sizeof buf);
  memset(&srv, 0, sizeof srv);
  assert_int_equal(nu_server_listen(base, &srv, "tcp", "127.0.0.1:0", NULL), 0);
  for (i = 0; i < 1000; i++) {
    int peer = nu_raw_connect("127.0.0.1", rill_listener_port(srv.l));
    int v = 32 * 1024;
    rill_conn *conn;
    nu_reader r;
    nu_sink sink;
    assert_true(peer >= 0);
    tu_nonblock(peer);
    assert_int_equal(setsockopt(peer, SOL_SOCKET, SO_RCVBUF, &v, sizeof v), 0);
    nu_run_until_count(base, &srv.n, 1, LIMIT);
    conn = srv.conns[--srv.n];
    nu_reader_init(&r);
    r.conn_slot = &conn;
    nu_reader_start(conn, &r);
    assert_int_equal(rill_conn_set_write_buffer(conn, v), 0);
    assert_int_equal(rill_conn_write(conn, buf, sizeof buf), 0);
    if (rill_conn_write_queued(conn) > 0) queued_rounds++;
    assert_int_equal(rill_conn_close(conn), 0);
    assert_int_equal(rill_conn_write(conn, buf, 1), RILL_ECLOSED);
    memset(&sink, 0, sizeof sink);
    nu_sink_start(base, &sink, peer, 1);
    nu_run_until_count(base, &sink.eof, 1, LIMIT);
    nu_run_until_count(base, &r.closes, 1, LIMIT);
    nu_sink_stop(&sink);
    if (sink.got != sizeof buf || sink.bad_at != -1)
      fail_msg("round %d: peer got %llu of %zu bytes, pattern broken at %ld", i,
               (unsigned long long)sink.got, sizeof buf, sink.bad_at);
    assert_int_equal(r.closes, 1);
    assert_null(conn);
    assert_int_equal(r.calls, 0);
    close(peer);
  }
  printf("# G23: %d of 1000 closes had bytes queued\n", queued_rounds);
  assert_true(queued_rounds > 500);
  nu_server_close(&srv);
  nu_settle(base);
  tu_base_free(base);
}

/* ---- G24 ------------------------------------------------------------- */

static void test_g24_half_close(void **state) {
  rill_base *base = tu_base_new();
  nu_pair p;
  nu_reader r;
  unsigned char buf[100];
  (void)state;
  nu_pair_dialed(base, "127.0.0.1", NULL, &p);
  nu_reader_init(&r);
  r.conn_slot = &p.conn;
  nu_reader_start(p.conn, &r);
  assert_int_equal(rill_conn_close_write(p.conn), 0);
  assert_int_equal(rill_conn_close_write(p.conn), 0); /* twice is fine */
  /* The peer reads EOF ... */
  assert_int_equal(nu_wait_eof(p.peer, 1000, NULL), 1);
  /* ... and can still send: this side still reads. */
  nu_pat_fill(buf, 0, sizeof buf);
  assert_int_equal(nu_send_all(p.peer, buf, sizeof buf, 1000), sizeof buf);
  r.stop_base = base;
  r.stop_at_bytes = sizeof buf;
  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  assert_int_equal(r.consumed, sizeof buf);
  assert_int_equal(r.bad_at, -1);
  /* Writing after the half-close is a broken pipe. */
  assert_int_equal(rill_conn_write(p.conn, "x", 1), RILL_EPIPE);
  /* The peer closes too: EOF here. */
  close(p.peer);
  p.peer = -1;
  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  assert_int_equal(r.eofs, 1);
  assert_int_equal(r.after_final, 0);
  nu_pair_cleanup(base, &p);
  tu_base_free(base);
}

/* Half-close after a write that queued: the FIN follows the queued bytes. */
static void test_g24_half_close_after_queued_write(void **state) {
  rill_base *base = tu_base_new();
  nu_pair p;
  nu_reader r;
  nu_sink sink;
  int v = 16 * 1024;
  size_t total = 512 * 1024;
  unsigned char *buf = (unsigned char *)malloc(total);
  (void)state;
  assert_non_null(buf);
  nu_pat_fill(buf, 0, total);
  nu_pair_accepted(base, "127.0.0.1", NULL, &p);
  nu_reader_init(&r);
  r.conn_slot = &p.conn;
  nu_reader_start(p.conn, &r);
  assert_int_equal(rill_conn_set_write_buffer(p.conn, v), 0);
  assert_int_equal(rill_conn_write(p.conn, buf, total), 0);
  free(buf);
  assert_true(rill_conn_write_queued(p.conn) > 0);
  assert_int_equal(rill_conn_close_write(p.conn), 0);
  assert_int_equal(rill_conn_write(p.conn, "x", 1), RILL_EPIPE);
  memset(&sink, 0, sizeof sink);
  sink.stop_base = base;
  nu_sink_start(base, &sink, p.peer, 1);
  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  nu_sink_stop(&sink);
  assert_int_equal(sink.eof, 1);
  assert_int_equal(sink.got, total);
  assert_int_equal(sink.bad_at, -1);
  /* Still reading. */
  assert_int_equal(nu_send_all(p.peer, "late", 4, 1000), 4);
  r.check = 0;
  r.stop_base = base;
  r.stop_at_bytes = 4;
  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  assert_int_equal(r.consumed, 4);
  assert_int_equal(r.eofs, 0);
  nu_pair_cleanup(base, &p);
  tu_base_free(base);
}

/* ---- G25 ------------------------------------------------------------- */

#define G25_WRITERS 3
#define G25_CHUNKS 100
#define G25_CHUNK 1000
#define G25_TOTAL (G25_WRITERS * G25_CHUNKS * G25_CHUNK)

static unsigned char g25_byte(int writer, int seq, int j) {
  return (unsigned char)(writer * 97 + seq * 13 + j * 7 + (j >> 8) + 1);
}

struct g25 {
  rill_conn *conn;
  rill_timer *timers[G25_WRITERS];
  int seq[G25_WRITERS];
  int log[G25_WRITERS * G25_CHUNKS][2]; /* (writer, seq) in call order */
  int nlog;
  size_t max_queued;
};

struct g25_writer {
  struct g25 *g;
  int id;
};

static void g25_timer(rill_timer *t, void *arg) {
  struct g25_writer *w = (struct g25_writer *)arg;
  struct g25 *g = w->g;
  unsigned char chunk[G25_CHUNK];
  int k, j;
  for (k = 0; k < 4 && g->seq[w->id] < G25_CHUNKS; k++) {
    int seq = g->seq[w->id]++;
    size_t q;
    for (j = 0; j < G25_CHUNK; j++) chunk[j] = g25_byte(w->id, seq, j);
    assert_int_equal(rill_conn_write(g->conn, chunk, sizeof chunk), 0);
    g->log[g->nlog][0] = w->id;
    g->log[g->nlog][1] = seq;
    g->nlog++;
    q = rill_conn_write_queued(g->conn);
    if (q > g->max_queued) g->max_queued = q;
  }
  if (g->seq[w->id] == G25_CHUNKS) {
    rill_timer_free(t);
    g->timers[w->id] = NULL;
  }
}

/* A slow peer: reads at most 4 KiB per millisecond, on a timer (a
 * readiness watcher would be called again at once and read fast). */
struct slow_reader {
  int fd;
  unsigned char *buf;
  size_t cap, got;
  int eof;
  rill_base *base;
};

static void slow_read_cb(rill_timer *t, void *arg) {
  struct slow_reader *s = (struct slow_reader *)arg;
  unsigned char tmp[4096];
  ssize_t n = recv(s->fd, tmp, sizeof tmp, MSG_DONTWAIT);
  (void)t;
  if (n > 0) {
    size_t room = s->cap - s->got;
    memcpy(s->buf + s->got, tmp, (size_t)n < room ? (size_t)n : room);
    s->got += (size_t)n;
  } else if (n == 0) {
    s->eof = 1;
    rill_timer_stop(t);
    rill_base_stop(s->base);
  }
}

static void test_g25_writes_from_callbacks_stay_contiguous(void **state) {
  rill_base *base = tu_base_new();
  nu_pair p;
  struct g25 *g = (struct g25 *)calloc(1, sizeof *g);
  struct g25_writer w[G25_WRITERS];
  struct slow_reader sr;
  rill_timer *reader = NULL;
  unsigned char *got = (unsigned char *)malloc(G25_TOTAL + 4096);
  int i, j, v = 32 * 1024;
  (void)state;
  assert_non_null(g);
  assert_non_null(got);
  nu_pair_accepted(base, "127.0.0.1", NULL, &p);
  assert_int_equal(rill_conn_set_write_buffer(p.conn, v), 0);
  assert_int_equal(setsockopt(p.peer, SOL_SOCKET, SO_RCVBUF, &v, sizeof v), 0);
  g->conn = p.conn;
  for (i = 0; i < G25_WRITERS; i++) {
    w[i].g = g;
    w[i].id = i;
    assert_int_equal(rill_timer_new(base, g25_timer, &w[i], &g->timers[i]), 0);
    assert_int_equal(rill_timer_start(g->timers[i], RILL_MSEC, RILL_MSEC), 0);
  }
  memset(&sr, 0, sizeof sr);
  sr.fd = p.peer;
  sr.buf = got;
  sr.cap = G25_TOTAL + 4096;
  sr.base = base;
  assert_int_equal(rill_timer_new(base, slow_read_cb, &sr, &reader), 0);
  assert_int_equal(rill_timer_start(reader, RILL_MSEC, RILL_MSEC), 0);
  /* Close gracefully once everything is written: the peer's EOF ends the
   * run. */
  nu_run_until_count(base, &g->nlog, G25_WRITERS * G25_CHUNKS, LIMIT);
  assert_int_equal(rill_conn_close(p.conn), 0);
  p.conn = NULL;
  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  rill_timer_free(reader);
  nu_settle(base);
  printf("# G25: queue peaked at %zu bytes\n", g->max_queued);
  assert_true(g->max_queued > 0); /* the queue was really used */
  assert_int_equal(sr.eof, 1);
  assert_int_equal(sr.got, G25_TOTAL);
  /* Every write's bytes contiguous, in call order. */
  for (i = 0; i < g->nlog; i++) {
    int id = g->log[i][0], seq = g->log[i][1];
    for (j = 0; j < G25_CHUNK; j++)
      if (got[(size_t)i * G25_CHUNK + j] != g25_byte(id, seq, j))
        fail_msg("byte %d of write #%d (writer %d, chunk %d) is not where it belongs", j, i, id,
                 seq);
  }
  free(got);
  free(g);
  nu_pair_cleanup(base, &p);
  tu_base_free(base);
}

/* ---- G26 ------------------------------------------------------------- */

static struct rlimit g26_saved;
static int g26_lowered;

static void g26_restore(void) {
  if (g26_lowered) {
    setrlimit(RLIMIT_NOFILE, &g26_saved);
    g26_lowered = 0;
  }
}

static int g26_teardown(void **state) {
  g26_restore(); /* in every path, failures included */
  return tu_teardown_fds(state);
}

struct g26 {
  rill_base *base;
  rill_base_stats at_restore;
  uint64_t restored_ms;
  int errors_at_restore;
  int accepted_at_restore;
  nu_server *srv;
};

static void g26_restore_cb(void *arg) {
  struct g26 *s = (struct g26 *)arg;
  rill_base_stats_get(s->base, &s->at_restore);
  s->errors_at_restore = s->srv->errors;
  s->accepted_at_restore = s->srv->accepted;
  g26_restore();
  s->restored_ms = tu_now_ms();
}

static void test_g26_accept_emfile_keeps_running(void **state) {
  rill_base *base;
  nu_server srv;
  struct g26 s;
  struct rlimit low;
  rill_base_stats st0, st1;
  int client, probe;
  uint64_t t0;
  (void)state;
  /* The probe below finds the lowest free number: none may free up later. */
  tu_settle_fds();
  base = tu_base_new();
  memset(&srv, 0, sizeof srv);
  memset(&s, 0, sizeof s);
  s.base = base;
  s.srv = &srv;
  assert_int_equal(nu_server_listen(base, &srv, "tcp", "127.0.0.1:0", NULL), 0);
  client = nu_raw_connect("127.0.0.1", rill_listener_port(srv.l));
  assert_true(client >= 0);

  /* The next descriptor cannot be made: its number would reach the limit. */
  probe = fcntl(client, F_DUPFD_CLOEXEC, 0);
  assert_true(probe >= 0);
  close(probe);
  assert_int_equal(getrlimit(RLIMIT_NOFILE, &g26_saved), 0);
  low = g26_saved;
  low.rlim_cur = (rlim_t)probe;
  assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
  g26_lowered = 1;
  assert_int_equal(fcntl(client, F_DUPFD_CLOEXEC, 0), -1);
  assert_int_equal(errno, EMFILE);

  nu_after(base, 300, g26_restore_cb, &s);
  rill_base_stats_get(base, &st0);
  t0 = tu_now_ms();
  srv.stop_at = 1;
  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  rill_base_stats_get(base, &st1);
  printf("# G26: %d EMFILE reports and %llu iterations in 300 ms; accepted %llu ms after the "
         "limit was lifted\n",
         s.errors_at_restore, (unsigned long long)(s.at_restore.iterations - st0.iterations),
         (unsigned long long)(tu_now_ms() - s.restored_ms));
  assert_int_equal(g26_lowered, 0);
  /* Reported, without a busy loop, and nothing accepted meanwhile. */
  assert_true(s.errors_at_restore >= 1);
  assert_int_equal(srv.last_error, RILL_EMFILE);
  assert_int_equal(s.accepted_at_restore, 0);
  assert_true(s.at_restore.iterations - st0.iterations < 1000);
  /* Then the waiting connection is accepted. */
  assert_int_equal(srv.accepted, 1);
  assert_true(tu_now_ms() - t0 < 5000);
  close(client);
  nu_server_close(&srv);
  nu_settle(base);
  tu_base_free(base);
}

/* ---- G27 ------------------------------------------------------------- */

#define G27_TOTAL (10u * 1024u * 1024u)

struct g27 {
  nu_reader *r;
  nu_source *src;
  int calls_200;
  uint64_t sent_200;
};

static void g27_mark(void *arg) {
  struct g27 *g = (struct g27 *)arg;
  g->calls_200 = g->r->calls;
  g->sent_200 = g->src->sent;
}

static void g27_case(size_t read_max) {
  rill_base *base = tu_base_new();
  nu_pair p;
  nu_reader r;
  nu_source src;
  rill_socket_config o;
  struct g27 g;
  int v = 64 * 1024;
  size_t bound = read_max ? read_max : 64 * 1024;
  memset(&o, 0, sizeof o);
  o.read_max = read_max;
  nu_pair_accepted(base, "127.0.0.1", &o, &p);
  assert_int_equal(rill_conn_set_read_buffer(p.conn, v), 0);
  assert_int_equal(setsockopt(p.peer, SOL_SOCKET, SO_SNDBUF, &v, sizeof v), 0);
  nu_reader_init(&r);
  r.consume_none = 1; /* the flood is not consumed */
  r.conn_slot = &p.conn;
  nu_reader_start(p.conn, &r);
  nu_source_start(base, &src, p.peer, G27_TOTAL, 1);
  memset(&g, 0, sizeof g);
  g.r = &r;
  g.src = &src;
  nu_after(base, 200, g27_mark, &g);
  nu_stop_after(base, 300);
  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  printf("# G27: read_max %zu: %d calls, largest %zu; the peer sent %llu bytes and %s\n", bound,
         r.calls, r.max_len, (unsigned long long)src.sent,
         src.hit_again ? "blocked (EAGAIN)" : "never blocked");
  /* Held bytes never exceed read_max; reading paused; the peer is held
   * back by TCP. */
  assert_true(r.data_calls >= 1);
  assert_true(r.max_len <= bound);
  assert_int_equal(r.consumed, 0);
  assert_int_equal(r.eofs + r.errors, 0);
  assert_int_equal(r.calls, g.calls_200);
  assert_int_equal(src.sent, g.sent_200);
  assert_true(src.hit_again);
  assert_true(src.sent < G27_TOTAL);

  /* Reading again: the held bytes come first, then everything else. */
  r.consume_none = 0;
  r.stop_base = base;
  assert_int_equal(rill_conn_read_start(p.conn), 0);
  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  nu_source_stop(&src);
  printf("# G27: after read_start: consumed %llu, %d EOF, status %s\n",
         (unsigned long long)r.consumed, r.eofs, rill_err_name(r.last_status));
  assert_int_equal(src.sent, G27_TOTAL);
  assert_int_equal(r.bad_at, -1);
  assert_int_equal(r.consumed, G27_TOTAL);
  assert_int_equal(r.eofs, 1);
  assert_true(r.max_len <= bound);
  nu_pair_cleanup(base, &p);
  tu_base_free(base);
}

static void test_g27_flood_bounded_then_resumed(void **state) {
  (void)state;
  g27_case(0);
  g27_case(4096);
}

/* ---- descriptor leaks -------------------------------------------------- */

#define CYCLES 10000
#define BATCH 100

struct churn {
  int done;
  int failed;
};

static void churn_dial_cb(rill_dialer *d, rill_conn *c, int status, void *arg) {
  struct churn *ch = (struct churn *)arg;
  (void)d;
  ch->done++;
  if (status != 0) {
    ch->failed++;
    return;
  }
  assert_int_equal(rill_conn_close(c), 0);
}

static void test_fd_leak_10000_cycles(void **state) {
  rill_base *base = tu_base_new();
  nu_server srv;
  struct churn ch;
  char addr[64];
  int fds0, i, b;
  uint64_t t0 = tu_now_ms();
  (void)state;
  memset(&srv, 0, sizeof srv);
  memset(&ch, 0, sizeof ch);
  srv.close_accepted = 1;
  assert_int_equal(nu_server_listen(base, &srv, "tcp", "127.0.0.1:0", NULL), 0);
  snprintf(addr, sizeof addr, "127.0.0.1:%d", rill_listener_port(srv.l));
  fds0 = tu_count_fds();
  for (b = 0; b < CYCLES / BATCH; b++) {
    for (i = 0; i < BATCH; i++)
      assert_int_equal(rill_dial(base, "tcp", addr, NULL, churn_dial_cb, &ch, NULL), 0);
    nu_run_until_count(base, &ch.done, (b + 1) * BATCH, LIMIT);
    nu_run_until_count(base, &srv.accepted, (b + 1) * BATCH, LIMIT);
  }
  printf("# fd leak: %d cycles in %llu ms, %d failed dials\n", CYCLES,
         (unsigned long long)(tu_now_ms() - t0), ch.failed);
  assert_int_equal(ch.failed, 0);
  assert_int_equal(srv.errors, 0);
  tu_assert_fds(fds0);
  nu_server_close(&srv);
  nu_settle(base);
  tu_base_free(base);
}

/* G23: closing inside on_read leaves `data` readable until the callback
 * returns, also when it points into the bytes the connection held (here: at
 * EOF, after the first call left everything unused). ASan checks. */
struct held_close {
  int calls;
  int eof_seen;
  char copy[16];
};

static size_t on_read_close_at_eof(rill_conn *conn, const char *data, size_t len, int status,
                                   void *arg) {
  struct held_close *h = arg;
  h->calls++;
  if (status == 0)
    return 0; /* keep everything: the connection holds it */
  h->eof_seen = status == RILL_EOF;
  rill_conn_close(conn);
  assert_true(len == 5);
  memcpy(h->copy, data, len); /* after the close */
  return 0;
}

static void test_g23_close_in_on_read_keeps_data(void **state) {
  rill_base *base = tu_base_new();
  struct held_close h;
  rill_conn *conn;
  int sv[2];
  (void)state;
  memset(&h, 0, sizeof h);
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  assert_int_equal(rill_conn_from_fd(base, sv[0], &conn), 0);
  rill_conn_events ev = {on_read_close_at_eof, NULL, NULL, NULL, NULL, NULL};
  assert_int_equal(rill_conn_start(conn, &ev, &h), 0);
  assert_int_equal(write(sv[1], "hello", 5), 5);
  close(sv[1]);
  TU_RUN(base, RILL_RUN_DEFAULT, 5000);
  assert_true(h.eof_seen);
  assert_memory_equal(h.copy, "hello", 5);
  tu_base_free(base);
}

int main(void) {
#define T(f) cmocka_unit_test_setup_teardown(f, tu_setup_fds, tu_teardown_fds)
  const struct CMUnitTest tests[] = {
      T(test_g23_close_in_on_read_keeps_data),
      T(test_g23_closed_conn_calls),
      T(test_g23_close_inside_callbacks),
      T(test_g23_race_close_inside_callbacks_1000),
      T(test_g23_race_close_flushes_queue_1000),
      T(test_g24_half_close),
      T(test_g24_half_close_after_queued_write),
      T(test_g25_writes_from_callbacks_stay_contiguous),
      cmocka_unit_test_setup_teardown(test_g26_accept_emfile_keeps_running, tu_setup_fds,
                                      g26_teardown),
      T(test_g27_flood_bounded_then_resumed),
      T(test_fd_leak_10000_cycles),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
