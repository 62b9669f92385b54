/* rill_pipe (include/rill/pipe.h): two connections joined, both ways.
 *
 * Every scenario runs four ways: TCP and Unix socket pairs, each with
 * splice(2) allowed (on Linux the pipe then splices, and the test checks it
 * does) and refused (the copy engine). Raw sockets stand for the two peers:
 * `a.peer` talks to the pipe's connection `a`, `b.peer` to `b`.
 *
 * SIGPIPE keeps its default action on purpose: a splice into a socket whose
 * peer left raises it, and a SIGPIPE that escaped the pipe would kill the
 * test. */
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

#define LIMIT 60000
#define MiB (1024u * 1024u)

struct mode {
  int splice; /* splice allowed */
  int unix_;  /* socketpairs instead of TCP */
};

struct env {
  const struct mode *m;
  rill_base *base;
  nu_pair a, b;
  rill_pipe *pipe;
  int done_calls;
  rill_pipe_result res;
  char message[256];
  int cancel_in_done;
};

static void on_done(rill_pipe *p, const rill_pipe_result *r, void *arg) {
  struct env *e = (struct env *)arg;
  assert_ptr_equal(p, e->pipe);
  e->done_calls++;
  e->res = *r;
  assert_non_null(r->message);
  snprintf(e->message, sizeof e->message, "%s", r->message);
  e->res.message = e->message;
  e->cancel_in_done = rill_pipe_cancel(p);
  e->pipe = NULL;
}

static int done(void *arg) { return ((struct env *)arg)->done_calls > 0; }

static void make_pair(struct env *e, const rill_socket_config *opts, nu_pair *p) {
  if (e->m->unix_) {
    int sv[2];
    tu_socketpair(sv);
    assert_int_equal(rill_conn_from_fd(e->base, sv[0], &p->conn), 0);
    p->peer = sv[1];
  } else {
    nu_pair_accepted(e->base, "127.0.0.1", opts, p);
  }
}

static void env_init(struct env *e, void **state, const rill_socket_config *opts) {
  memset(e, 0, sizeof *e);
  e->m = (const struct mode *)*state;
  e->base = tu_base_new();
  make_pair(e, opts, &e->a);
  make_pair(e, opts, &e->b);
}

static int expect_spliced(const struct mode *m) {
#ifdef __linux__
  return m->splice;
#else
  (void)m;
  return 0;
#endif
}

static void start(struct env *e, const rill_pipe_options *extra) {
  rill_pipe_options o;
  memset(&o, 0, sizeof o);
  if (extra) o = *extra;
  o.splice = e->m->splice ? 0 : -1;
  assert_int_equal(rill_pipe_start(e->a.conn, e->b.conn, &o, on_done, e, &e->pipe), 0);
  assert_int_equal(rill_pipe_spliced(e->pipe), expect_spliced(e->m));
  assert_int_equal(e->done_calls, 0); /* never inside the call */
}

/* After on_done in the default mode: the connections are gone. */
static void env_free(struct env *e) {
  if (!e->res.a) e->a.conn = NULL;
  if (!e->res.b) e->b.conn = NULL;
  nu_pair_cleanup(e->base, &e->a);
  nu_pair_cleanup(e->base, &e->b);
  nu_settle(e->base);
  tu_base_free(e->base);
}

static void reset_peer(struct env *e, int fd) {
  if (!e->m->unix_) {
    struct linger lg = {1, 0};
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
  }
  close(fd);
}

/* ---- many MiB both ways at once, byte-exact, then a clean end ----------- */

struct both {
  struct env *e;
  nu_sink *s1, *s2;
};

static int both_done(void *arg) {
  struct both *b = (struct both *)arg;
  return b->e->done_calls && b->s1->eof && b->s2->eof;
}

static void test_pipe_streams_both_ways(void **state) {
  struct env e;
  nu_source src_a, src_b;
  nu_sink sink_a, sink_b;
  struct both cond = {&e, &sink_a, &sink_b};
  const uint64_t n = 8 * MiB;
  int a_dup, b_dup;
  env_init(&e, state, NULL);
  start(&e, NULL);
  /* One watcher per descriptor: the second one goes on a dup. */
  a_dup = dup(e.a.peer);
  b_dup = dup(e.b.peer);
  memset(&sink_a, 0, sizeof sink_a);
  memset(&sink_b, 0, sizeof sink_b);
  nu_source_start(e.base, &src_a, e.a.peer, n, 1);
  nu_sink_start(e.base, &sink_b, e.b.peer, 1);
  nu_source_start(e.base, &src_b, b_dup, n + 12345, 1);
  nu_sink_start(e.base, &sink_a, a_dup, 1);
  nu_run_until(e.base, both_done, &cond, LIMIT);
  assert_int_equal(e.res.status, 0);
  assert_int_equal(e.res.side, RILL_PIPE_SIDE_NONE);
  assert_null(e.res.op);
  assert_string_equal(e.res.message, "");
  assert_true(e.res.a_to_b == n);
  assert_true(e.res.b_to_a == n + 12345);
  assert_true(sink_b.got == n);
  assert_true(sink_a.got == n + 12345);
  assert_int_equal(sink_a.bad_at, -1);
  assert_int_equal(sink_b.bad_at, -1);
  assert_int_equal(e.cancel_in_done, RILL_ECLOSED);
  nu_source_stop(&src_a);
  nu_source_stop(&src_b);
  nu_sink_stop(&sink_a);
  nu_sink_stop(&sink_b);
  close(a_dup);
  close(b_dup);
  env_free(&e);
}

/* ---- back-pressure: a peer that does not read holds the other back ------ */

static void test_pipe_back_pressure(void **state) {
  struct env e;
  rill_socket_config opts;
  nu_source src;
  nu_sink sink;
  uint64_t last = (uint64_t)-1, moved = 0;
  const uint64_t total = 48 * MiB;
  int round, stalled = 0;
  memset(&opts, 0, sizeof opts);
  opts.write_high_water = 64 * 1024;
  env_init(&e, state, &opts);
  start(&e, NULL);
  shutdown(e.b.peer, SHUT_WR); /* b's side says nothing: only a to b runs */
  nu_source_start(e.base, &src, e.a.peer, total, 1);
  /* Nobody reads b.peer: the source must stall, held back by TCP. */
  for (round = 0; round < 300 && !stalled; round++) {
    nu_stop_after(e.base, 100);
    tu_run(e.base, RILL_RUN_DEFAULT, 5000);
    stalled = src.hit_again && src.sent == last;
    last = src.sent;
  }
  assert_true(stalled);
  assert_true(src.sent < total);
  assert_int_equal(e.done_calls, 0);
  /* What the pipe holds is bounded: the write queue by its high-water
   * mark (plus one read), or nothing when the kernel pipe carries it. */
  if (expect_spliced(e.m))
    assert_int_equal(rill_conn_write_queued(e.b.conn), 0);
  else if (!e.m->unix_)
    assert_true(rill_conn_write_queued(e.b.conn) <= 64 * 1024 + 64 * 1024);
  else
    assert_true(rill_conn_write_queued(e.b.conn) <= 1 * MiB + 64 * 1024);
  assert_int_equal(rill_pipe_bytes(e.pipe, &moved, NULL), 0);
  assert_true(moved <= src.sent);
  /* The reader wakes up: every byte arrives, in order, then EOF. */
  memset(&sink, 0, sizeof sink);
  nu_sink_start(e.base, &sink, e.b.peer, 1);
  nu_run_until(e.base, done, &e, LIMIT);
  assert_int_equal(e.res.status, 0);
  assert_true(e.res.a_to_b == total);
  assert_int_equal(e.res.b_to_a, 0);
  while (!sink.eof && !sink.err) tu_run(e.base, RILL_RUN_ONCE, 5000);
  assert_true(sink.got == total);
  assert_int_equal(sink.bad_at, -1);
  assert_int_equal(sink.eof, 1);
  nu_source_stop(&src);
  nu_sink_stop(&sink);
  env_free(&e);
}

/* ---- half-close carried across, each way -------------------------------- */

static void half_close(void **state, int a_first) {
  struct env e;
  nu_source src1, src2;
  nu_sink sink1, sink2;
  int first_peer, second_peer, second_dup, first_dup;
  env_init(&e, state, NULL);
  start(&e, NULL);
  first_peer = a_first ? e.a.peer : e.b.peer;
  second_peer = a_first ? e.b.peer : e.a.peer;
  first_dup = dup(first_peer);
  second_dup = dup(second_peer);
  memset(&sink1, 0, sizeof sink1);
  memset(&sink2, 0, sizeof sink2);
  /* The first peer sends and shuts its side: the other peer reads it all,
   * then EOF, while the pipe goes on. */
  nu_source_start(e.base, &src1, first_peer, 100000, 1);
  nu_sink_start(e.base, &sink1, second_peer, 1);
  while (!sink1.eof && !sink1.err) {
    tu_run(e.base, RILL_RUN_ONCE, 5000);
    assert_false(tu_run_timed_out());
  }
  assert_true(sink1.got == 100000);
  assert_int_equal(sink1.eof, 1);
  assert_int_equal(e.done_calls, 0);
  /* The other way still works, and ends the pipe when it ends too. */
  nu_sink_start(e.base, &sink2, first_dup, 1);
  nu_source_start(e.base, &src2, second_dup, 300000, 1);
  nu_run_until(e.base, done, &e, LIMIT);
  while (!sink2.eof && !sink2.err) tu_run(e.base, RILL_RUN_ONCE, 5000);
  assert_true(sink2.got == 300000);
  assert_int_equal(sink2.eof, 1);
  assert_int_equal(sink2.bad_at, -1);
  assert_int_equal(e.res.status, 0);
  assert_true((a_first ? e.res.a_to_b : e.res.b_to_a) == 100000);
  assert_true((a_first ? e.res.b_to_a : e.res.a_to_b) == 300000);
  nu_source_stop(&src1);
  nu_source_stop(&src2);
  nu_sink_stop(&sink1);
  nu_sink_stop(&sink2);
  close(first_dup);
  close(second_dup);
  env_free(&e);
}

static void test_pipe_half_close_a_first(void **state) { half_close(state, 1); }
static void test_pipe_half_close_b_first(void **state) { half_close(state, 0); }

/* ---- a peer reset mid-stream ends the pipe, and the other peer hears it -- */

struct got_at_least {
  nu_sink *s;
  uint64_t n;
};

static int got_enough(void *arg) {
  struct got_at_least *g = (struct got_at_least *)arg;
  return g->s->got >= g->n;
}

static void reset_mid_stream(void **state, int reset_sink) {
  struct env e;
  nu_source src;
  nu_sink sink;
  struct got_at_least cond = {&sink, 1 * MiB};
  if (!reset_sink && !((const struct mode *)*state)->unix_)
    TU_SKIP_ON_LIBKQUEUE("the peer's reset is read off the socket (SO_ERROR) by libkqueue before rill sees it");
  env_init(&e, state, NULL);
  start(&e, NULL);
  memset(&sink, 0, sizeof sink);
  nu_source_start(e.base, &src, e.a.peer, 64 * MiB, 0);
  nu_sink_start(e.base, &sink, e.b.peer, 1);
  nu_run_until(e.base, got_enough, &cond, LIMIT);
  assert_int_equal(e.done_calls, 0);
  if (reset_sink) {
    /* The receiving peer goes: the pipe's writes to b (or a read of b)
     * fail, and the pipe resets a: the sending peer's writes fail. */
    nu_sink_stop(&sink);
    reset_peer(&e, e.b.peer);
    e.b.peer = -1;
    nu_run_until(e.base, done, &e, LIMIT);
    assert_true(e.res.status == -ECONNRESET || e.res.status == -EPIPE);
    assert_int_equal(e.res.side, RILL_PIPE_SIDE_B);
    assert_non_null(e.res.op);
    assert_true(strlen(e.res.message) > 0);
    while (!src.err) {
      tu_run(e.base, RILL_RUN_ONCE, 5000);
      assert_false(tu_run_timed_out());
    }
    assert_true(src.err == -ECONNRESET || src.err == -EPIPE);
  } else if (!e.m->unix_) {
    /* The sending peer resets: the pipe's read of a fails, and the pipe
     * resets b: the receiving peer's stream stops with the reset. */
    nu_source_stop(&src);
    reset_peer(&e, e.a.peer);
    e.a.peer = -1;
    nu_run_until(e.base, done, &e, LIMIT);
    assert_int_equal(e.res.status, -ECONNRESET);
    assert_int_equal(e.res.side, RILL_PIPE_SIDE_A);
    assert_string_equal(e.res.op, "read");
    assert_non_null(strstr(e.res.message, "read tcp 127.0.0.1:"));
    assert_non_null(strstr(e.res.message, "connection reset by peer"));
    while (!sink.eof && !sink.err) {
      tu_run(e.base, RILL_RUN_ONCE, 5000);
      assert_false(tu_run_timed_out());
    }
    assert_int_equal(sink.err, -ECONNRESET);
    assert_int_equal(sink.bad_at, -1);
  } else {
    /* A Unix socket has no reset: the sender's close is an EOF the pipe
     * carries across, every byte first. */
    nu_source_stop(&src);
    close(e.a.peer);
    e.a.peer = -1;
    while (!sink.eof && !sink.err) {
      tu_run(e.base, RILL_RUN_ONCE, 5000);
      assert_false(tu_run_timed_out());
    }
    assert_int_equal(sink.eof, 1);
    assert_true(sink.got == src.sent);
    assert_int_equal(sink.bad_at, -1);
    assert_int_equal(e.done_calls, 0);
    shutdown(e.b.peer, SHUT_WR);
    nu_run_until(e.base, done, &e, LIMIT);
    assert_int_equal(e.res.status, 0);
  }
  nu_source_stop(&src);
  nu_sink_stop(&sink);
  env_free(&e);
}

static void test_pipe_reset_by_receiver(void **state) { reset_mid_stream(state, 1); }
static void test_pipe_reset_by_sender(void **state) { reset_mid_stream(state, 0); }

/* ---- cancel ----------------------------------------------------------------- */

static void test_pipe_cancel_mid_stream(void **state) {
  struct env e;
  nu_source src;
  nu_sink sink;
  struct got_at_least cond = {&sink, 1 * MiB};
  env_init(&e, state, NULL);
  start(&e, NULL);
  memset(&sink, 0, sizeof sink);
  nu_source_start(e.base, &src, e.a.peer, 64 * MiB, 0);
  nu_sink_start(e.base, &sink, e.b.peer, 1);
  nu_run_until(e.base, got_enough, &cond, LIMIT);
  assert_int_equal(rill_pipe_cancel(e.pipe), 0);
  assert_int_equal(rill_pipe_cancel(e.pipe), 0); /* ending already: fine */
  assert_int_equal(e.done_calls, 0);
  nu_run_until(e.base, done, &e, LIMIT);
  assert_int_equal(e.done_calls, 1);
  assert_int_equal(e.res.status, RILL_ECANCELED);
  assert_int_equal(e.res.side, RILL_PIPE_SIDE_NONE);
  assert_true(e.res.a_to_b >= 1 * MiB);
  assert_int_equal(e.cancel_in_done, RILL_ECLOSED);
  assert_null(e.res.a);
  nu_source_stop(&src);
  nu_sink_stop(&sink);
  env_free(&e); /* and the fixture finds every descriptor closed */
}

/* ---- keep_open: the connections come back, usable ------------------------ */

static void test_pipe_keep_open(void **state) {
  struct env e;
  rill_pipe_options o;
  nu_sink sink;
  nu_reader reader;
  struct got_at_least cond = {&sink, 1000};
  char buf[1000], got[8];
  env_init(&e, state, NULL);
  memset(&o, 0, sizeof o);
  o.keep_open = 1;
  start(&e, &o);
  memset(&sink, 0, sizeof sink);
  nu_sink_start(e.base, &sink, e.b.peer, 1);
  nu_pat_fill(buf, 0, sizeof buf);
  assert_int_equal(nu_send_all(e.a.peer, buf, sizeof buf, 5000), sizeof buf);
  nu_run_until(e.base, got_enough, &cond, LIMIT);
  assert_int_equal(rill_pipe_cancel(e.pipe), 0);
  nu_run_until(e.base, done, &e, LIMIT);
  assert_int_equal(e.res.status, RILL_ECANCELED);
  assert_ptr_equal(e.res.a, e.a.conn);
  assert_ptr_equal(e.res.b, e.b.conn);
  assert_true(e.res.a_to_b == 1000);
  assert_true(rill_conn_bytes_read(e.a.conn) == 1000);
  assert_true(rill_conn_bytes_written(e.b.conn) == 1000);
  nu_sink_stop(&sink);
  /* Handed back with no events and reading stopped: start them again. */
  nu_reader_init(&reader);
  reader.check = 0;
  nu_reader_start(e.a.conn, &reader);
  assert_int_equal(nu_send_all(e.a.peer, "xyz", 3, 5000), 3);
  while (reader.consumed < 3) {
    tu_run(e.base, RILL_RUN_ONCE, 5000);
    assert_false(tu_run_timed_out());
  }
  assert_int_equal(rill_conn_write(e.b.conn, "hi", 2), 0);
  assert_int_equal(nu_recv_all(e.b.peer, got, 2, 5000), 2);
  assert_memory_equal(got, "hi", 2);
  env_free(&e);
}

/* ---- idle timeout ------------------------------------------------------------ */

static void test_pipe_idle_timeout(void **state) {
  struct env e;
  rill_pipe_options o;
  nu_sink sink;
  struct got_at_least cond = {&sink, 100};
  char buf[100];
  env_init(&e, state, NULL);
  memset(&o, 0, sizeof o);
  /* Long enough that the first loop iteration, which moves the bytes
   * below, comes before it even on a loaded machine. */
  o.idle_timeout = 500 * RILL_MSEC;
  start(&e, &o);
  nu_pat_fill(buf, 0, sizeof buf);
  assert_int_equal(nu_send_all(e.a.peer, buf, sizeof buf, 5000), sizeof buf);
  memset(&sink, 0, sizeof sink);
  nu_sink_start(e.base, &sink, e.b.peer, 1);
  nu_run_until(e.base, got_enough, &cond, LIMIT);
  /* The bytes moved (the timeout had not ended the pipe before them);
   * then silence ends it. */
  nu_run_until(e.base, done, &e, LIMIT);
  assert_int_equal(e.res.status, RILL_ETIMEOUT);
  assert_int_equal(e.res.side, RILL_PIPE_SIDE_NONE);
  assert_string_equal(e.res.message, "i/o timeout");
  assert_true(e.res.a_to_b == 100);
  while (!sink.eof && !sink.err) {
    tu_run(e.base, RILL_RUN_ONCE, 5000);
    assert_false(tu_run_timed_out());
  }
  assert_int_equal(sink.eof, 1);
  nu_sink_stop(&sink);
  env_free(&e);
}

/* ---- a connection closed under the pipe ------------------------------------ */

static void test_pipe_closed_under_it(void **state) {
  struct env e;
  env_init(&e, state, NULL);
  start(&e, NULL);
  assert_int_equal(rill_conn_close(e.a.conn), 0);
  nu_run_until(e.base, done, &e, LIMIT);
  assert_int_equal(e.res.status, RILL_ECLOSED);
  assert_int_equal(e.res.side, RILL_PIPE_SIDE_A);
  env_free(&e);
}

/* ---- bytes held before the pipe go first (and rule out splice) ------------- */

static void test_pipe_held_bytes_go_first(void **state) {
  struct env e;
  nu_reader reader;
  char buf[10];
  env_init(&e, state, NULL);
  nu_reader_init(&reader);
  reader.check = 0;
  reader.consume_none = 1;
  nu_reader_start(e.a.conn, &reader);
  assert_int_equal(nu_send_all(e.a.peer, "hello", 5, 5000), 5);
  while (reader.data_calls == 0) {
    tu_run(e.base, RILL_RUN_ONCE, 5000);
    assert_false(tu_run_timed_out());
  }
  assert_true(rill_conn_bytes_read(e.a.conn) == 5); /* held, unused: counted */
  assert_int_equal(rill_pipe_start(e.a.conn, e.b.conn, NULL, on_done, &e, &e.pipe), 0);
  assert_int_equal(rill_pipe_spliced(e.pipe), 0); /* something was buffered */
  assert_int_equal(nu_send_all(e.a.peer, "world", 5, 5000), 5);
  shutdown(e.a.peer, SHUT_WR);
  shutdown(e.b.peer, SHUT_WR);
  nu_run_until(e.base, done, &e, LIMIT);
  assert_int_equal(e.res.status, 0);
  assert_int_equal(nu_recv_all(e.b.peer, buf, 10, 5000), 10);
  assert_memory_equal(buf, "helloworld", 10);
  assert_int_equal(nu_wait_eof(e.b.peer, 5000, NULL), 1);
  assert_int_equal(nu_wait_eof(e.a.peer, 5000, NULL), 1);
  env_free(&e);
}

/* ---- a connection that read EOF before the pipe: its direction is over -- */

static void test_pipe_eof_before_start(void **state) {
  struct env e;
  nu_reader reader;
  char buf[4];
  env_init(&e, state, NULL);
  nu_reader_init(&reader);
  nu_reader_start(e.a.conn, &reader);
  shutdown(e.a.peer, SHUT_WR);
  while (!reader.eofs) {
    tu_run(e.base, RILL_RUN_ONCE, 5000);
    assert_false(tu_run_timed_out());
  }
  start(&e, NULL);
  /* b's peer reads EOF at once; the other way still runs. */
  tu_run(e.base, RILL_RUN_NOWAIT, 5000);
  assert_int_equal(nu_wait_eof(e.b.peer, 5000, NULL), 1);
  assert_int_equal(nu_send_all(e.b.peer, "back", 4, 5000), 4);
  shutdown(e.b.peer, SHUT_WR);
  nu_run_until(e.base, done, &e, LIMIT);
  assert_int_equal(e.res.status, 0);
  assert_true(e.res.b_to_a == 4);
  assert_int_equal(nu_recv_all(e.a.peer, buf, 4, 5000), 4);
  assert_memory_equal(buf, "back", 4);
  assert_int_equal(nu_wait_eof(e.a.peer, 5000, NULL), 1);
  env_free(&e);
}

/* ---- bad input ----------------------------------------------------------------- */

static void test_pipe_bad_input(void **state) {
  struct env e;
  rill_pipe *p = NULL;
  env_init(&e, state, NULL);
  assert_int_equal(rill_pipe_start(NULL, e.b.conn, NULL, on_done, &e, &p), RILL_EINVAL);
  assert_int_equal(rill_pipe_start(e.a.conn, NULL, NULL, on_done, &e, &p), RILL_EINVAL);
  assert_int_equal(rill_pipe_start(e.a.conn, e.a.conn, NULL, on_done, &e, &p), RILL_EINVAL);
  assert_int_equal(rill_pipe_start(e.a.conn, e.b.conn, NULL, NULL, &e, &p), RILL_EINVAL);
  assert_int_equal(rill_pipe_cancel(NULL), RILL_EINVAL);
  assert_int_equal(rill_pipe_bytes(NULL, NULL, NULL), RILL_EINVAL);
  assert_int_equal(rill_pipe_spliced(NULL), RILL_EINVAL);
  assert_true(rill_conn_bytes_read(NULL) == 0);
  /* A write side already shut: nothing could go that way. */
  assert_int_equal(rill_conn_close_write(e.b.conn), 0);
  assert_int_equal(rill_pipe_start(e.a.conn, e.b.conn, NULL, on_done, &e, &p), -EPIPE);
  assert_null(p);
  /* A connection already in a pipe. */
  {
    nu_pair c;
    make_pair(&e, NULL, &c);
    assert_int_equal(rill_pipe_start(e.a.conn, c.conn, NULL, on_done, &e, &e.pipe), 0);
    assert_int_equal(rill_pipe_start(c.conn, e.a.conn, NULL, on_done, &e, &p), RILL_EINVAL);
    assert_int_equal(rill_pipe_cancel(e.pipe), 0);
    nu_run_until(e.base, done, &e, LIMIT);
    e.a.conn = NULL;
    close(c.peer);
  }
  nu_pair_cleanup(e.base, &e.b);
  nu_pair_cleanup(e.base, &e.a);
  nu_settle(e.base);
  tu_base_free(e.base);
}

static const struct mode tcp_splice = {1, 0}, tcp_copy = {0, 0}, unix_splice = {1, 1},
                         unix_copy = {0, 1};

#define T4(f)                                                                            \
  {#f "/tcp/splice", f, tu_setup_fds, tu_teardown_fds, (void *)&tcp_splice},             \
      {#f "/tcp/copy", f, tu_setup_fds, tu_teardown_fds, (void *)&tcp_copy},             \
      {#f "/unix/splice", f, tu_setup_fds, tu_teardown_fds, (void *)&unix_splice},       \
      {#f "/unix/copy", f, tu_setup_fds, tu_teardown_fds, (void *)&unix_copy}

int main(void) {
  const struct CMUnitTest tests[] = {
      T4(test_pipe_streams_both_ways),  T4(test_pipe_back_pressure),
      T4(test_pipe_half_close_a_first), T4(test_pipe_half_close_b_first),
      T4(test_pipe_reset_by_receiver),  T4(test_pipe_reset_by_sender),
      T4(test_pipe_cancel_mid_stream),  T4(test_pipe_keep_open),
      T4(test_pipe_idle_timeout),       T4(test_pipe_closed_under_it),
      T4(test_pipe_held_bytes_go_first), T4(test_pipe_eof_before_start),
      T4(test_pipe_bad_input),
  };
  signal(SIGPIPE, SIG_DFL);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
