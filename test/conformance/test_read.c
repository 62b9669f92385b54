/* docs/go-model.md G12-G17, callback API: reading.
 *
 * The callback API's analogue of G17 (a zero-length read returns at once
 * without touching the socket): on_read is never called with status 0 and
 * no bytes (every test's reader counts such calls and asserts none), a
 * zero-length rill_conn_write() is a no-op that returns 0 and sends
 * nothing, and a zero-length rill_conn_write_ref() completes from the loop
 * with 0 bytes written. */
#define _GNU_SOURCE 1

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rill.h"
#include "test_util.h"
#include "net_util.h"

#define LIMIT 5000

static void finish(rill_base *base, nu_pair *p, nu_reader *r) {
  assert_int_equal(r->zero_len, 0);
  assert_int_equal(r->after_final, 0);
  nu_pair_cleanup(base, p);
  tu_base_free(base);
}

/* ---- G12 ------------------------------------------------------------- */

static uint64_t cpu_us(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (uint64_t)ru.ru_utime.tv_sec * 1000000u + (uint64_t)ru.ru_utime.tv_usec +
         (uint64_t)ru.ru_stime.tv_sec * 1000000u + (uint64_t)ru.ru_stime.tv_usec;
}

static void test_g12_no_data_waits_idle(void **state) {
  rill_base *base = tu_base_new();
  nu_pair p;
  nu_reader r;
  rill_base_stats s0, s1;
  uint64_t c0, c1, t0, t1;
  (void)state;
  nu_pair_accepted(base, "127.0.0.1", NULL, &p);
  nu_reader_init(&r);
  nu_reader_start(p.conn, &r);
  rill_base_stats_get(base, &s0);
  c0 = cpu_us();
  t0 = tu_now_ms();
  nu_stop_after(base, 200);
  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  t1 = tu_now_ms();
  c1 = cpu_us();
  rill_base_stats_get(base, &s1);
  printf("# G12: %llu ms, %llu iterations, waited %llu ms, cpu %llu us\n",
         (unsigned long long)(t1 - t0), (unsigned long long)(s1.iterations - s0.iterations),
         (unsigned long long)((s1.wait_ns - s0.wait_ns) / 1000000u),
         (unsigned long long)(c1 - c0));
  assert_int_equal(r.calls, 0);
  assert_true(t1 - t0 >= 190);
  /* The loop slept through it: a handful of iterations, most of the time
   * spent waiting, little CPU (generous bounds: sanitizers, slow CI). */
  assert_true(s1.iterations - s0.iterations < 50);
  assert_true(s1.wait_ns - s0.wait_ns >= 150u * 1000000u);
  assert_true(c1 - c0 < 100000);
  finish(base, &p, &r);
}

/* ---- G13 ------------------------------------------------------------- */

static size_t g13_on_read(rill_conn *c, const char *data, size_t len, int status, void *arg) {
  nu_reader *r = (nu_reader *)arg;
  if (status == 0 && r->data_calls == 0 && r->copy) memcpy(r->copy, data, len < 16 ? len : 16);
  (void)c;
  return nu_on_read(c, data, len, status, arg);
}

static void test_g13_short_data_at_once(void **state) {
  rill_base *base = tu_base_new();
  nu_pair p;
  nu_reader r;
  unsigned char first[16];
  rill_conn_events ev;
  (void)state;
  nu_pair_accepted(base, "127.0.0.1", NULL, &p);
  nu_reader_init(&r);
  r.check = 0;
  r.copy = first;
  r.copy_cap = 0; /* the hook above copies; nu_on_read does not */
  r.stop_base = base;
  r.stop_at_bytes = 5;
  memset(&ev, 0, sizeof ev);
  ev.on_read = g13_on_read;
  ev.on_close = nu_on_close;
  assert_int_equal(rill_conn_start(p.conn, &ev, &r), 0);
  assert_int_equal(nu_send_all(p.peer, "hello", 5, 1000), 5);
  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  /* 5 bytes asked for up to 64 KiB: the 5 come at once, in one call. */
  assert_int_equal(r.data_calls, 1);
  assert_int_equal(r.first_len, 5);
  assert_memory_equal(first, "hello", 5);
  finish(base, &p, &r);
}

/* ---- G14 ------------------------------------------------------------- */

#define BIG (200u * 1024u)

static void g14_case(size_t read_max, int consume_half, size_t want_max_len) {
  rill_base *base = tu_base_new();
  nu_pair p;
  nu_reader r;
  nu_source src;
  rill_socket_config o;
  memset(&o, 0, sizeof o);
  o.read_max = read_max;
  nu_pair_accepted(base, "127.0.0.1", &o, &p);
  nu_reader_init(&r);
  r.consume_half = consume_half;
  r.stop_base = base;
  nu_reader_start(p.conn, &r);
  nu_source_start(base, &src, p.peer, BIG, 1);
  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  nu_source_stop(&src);
  printf("# G14: read_max %zu%s: %d calls, largest %zu, %zu left at EOF\n", read_max,
         consume_half ? " (consuming half)" : "", r.data_calls, r.max_len, r.eof_len);
  assert_int_equal(src.sent, BIG);
  assert_int_equal(r.eofs, 1);
  assert_int_equal(r.bad_at, -1);
  /* Never more than read_max at once; the rest comes next time. */
  assert_true(r.max_len <= want_max_len);
  assert_true(r.data_calls >= (int)(BIG / want_max_len));
  /* What was not consumed is shown again with the EOF. */
  assert_int_equal(r.consumed + r.eof_len, BIG);
  if (!consume_half) assert_int_equal(r.eof_len, 0);
  finish(base, &p, &r);
}

static void test_g14_large_data_bounded_chunks(void **state) {
  (void)state;
  g14_case(0, 0, 64 * 1024); /* the default read_max */
  g14_case(1000, 0, 1000);
}

static void test_g14_partial_consume_rest_first(void **state) {
  (void)state;
  g14_case(0, 1, 64 * 1024);
  g14_case(4096, 1, 4096);
}

/* ---- G15 ------------------------------------------------------------- */

static void test_g15_data_then_eof(void **state) {
  rill_base *base = tu_base_new();
  nu_pair p;
  nu_reader r;
  unsigned char buf[3000];
  (void)state;
  nu_pair_accepted(base, "127.0.0.1", NULL, &p);
  nu_reader_init(&r);
  nu_pat_fill(buf, 0, sizeof buf);
  assert_int_equal(nu_send_all(p.peer, buf, sizeof buf, 1000), sizeof buf);
  close(p.peer); /* the peer is gone before we read anything */
  p.peer = -1;
  nu_reader_start(p.conn, &r);
  nu_stop_after(base, 300); /* and nothing after the EOF */
  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  assert_int_equal(r.consumed, sizeof buf);
  assert_int_equal(r.bad_at, -1);
  assert_int_equal(r.eofs, 1);
  assert_int_equal(r.errors, 0);
  assert_int_equal(r.last_status, RILL_EOF);
  assert_int_equal(r.eof_len, 0);
  finish(base, &p, &r);
}

static void test_g15_eof_at_once(void **state) {
  rill_base *base = tu_base_new();
  nu_pair p;
  nu_reader r;
  uint64_t t0;
  (void)state;
  nu_pair_accepted(base, "127.0.0.1", NULL, &p);
  nu_reader_init(&r);
  r.stop_base = base;
  nu_reader_start(p.conn, &r);
  t0 = tu_now_ms();
  close(p.peer);
  p.peer = -1;
  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  assert_int_equal(r.calls, 1);
  assert_int_equal(r.eofs, 1);
  assert_int_equal(r.eof_len, 0);
  assert_true(r.eof_at_ms - t0 < 1000);
  /* Reading has stopped: no more calls. */
  nu_stop_after(base, 100);
  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  assert_int_equal(r.calls, 1);
  finish(base, &p, &r);
}

/* ---- G16 ------------------------------------------------------------- */

static void test_g16_read_deadline_no_data_lost(void **state) {
  rill_base *base = tu_base_new();
  nu_pair p;
  nu_reader r;
  uint64_t t0;
  unsigned char buf[300];
  char msg[512], local[RILL_ADDRSTRLEN], remote[RILL_ADDRSTRLEN], want[512];
  (void)state;
  assert_string_equal(rill_strerror(RILL_ETIMEOUT), "i/o timeout");
  nu_pair_accepted(base, "127.0.0.1", NULL, &p);
  nu_reader_init(&r);
  r.stop_base = base;
  nu_reader_start(p.conn, &r);

  t0 = tu_now_ms();
  assert_int_equal(rill_conn_set_deadline(p.conn, RILL_DEADLINE_READ, rill_time_now() + 100 * RILL_MSEC), 0);
  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  printf("# G16: read timed out after %llu ms\n", (unsigned long long)(r.timeout_at_ms - t0));
  assert_int_equal(r.timeouts, 1);
  assert_int_equal(r.data_calls, 0);
  assert_int_equal(r.last_status, RILL_ETIMEOUT);
  assert_int_equal(r.max_len, 0); /* n = 0 */
  assert_true(r.timeout_at_ms - t0 >= 100);
  assert_true(rill_conn_format_error(p.conn, "read", RILL_ETIMEOUT, msg, sizeof msg) > 0);
  rill_conn_local_addr(p.conn, local, sizeof local);
  rill_conn_remote_addr(p.conn, remote, sizeof remote);
  snprintf(want, sizeof want, "read tcp %s->%s: i/o timeout", local, remote);
  assert_string_equal(msg, want);

  /* Data that arrives while timed out waits; nothing is lost. */
  nu_pat_fill(buf, 0, sizeof buf);
  assert_int_equal(nu_send_all(p.peer, buf, 100, 1000), 100);
  nu_stop_after(base, 50);
  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  assert_int_equal(r.data_calls, 0);
  assert_int_equal(r.timeouts, 1);

  /* A future deadline resumes reading. */
  r.stop_at_bytes = 100;
  assert_int_equal(rill_conn_set_deadline(p.conn, RILL_DEADLINE_READ, rill_time_now() + 5 * RILL_SEC), 0);
  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  assert_int_equal(r.consumed, 100);
  assert_int_equal(r.timeouts, 1);

  /* Time out again, then clear the deadline (0): the bytes arrive. */
  assert_int_equal(rill_conn_set_deadline(p.conn, RILL_DEADLINE_READ, rill_time_now() + 30 * RILL_MSEC), 0);
  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  assert_int_equal(r.timeouts, 2);
  assert_int_equal(nu_send_all(p.peer, buf + 100, 200, 1000), 200);
  r.stop_at_bytes = 300;
  assert_int_equal(rill_conn_set_deadline(p.conn, RILL_DEADLINE_READ, 0), 0);
  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  assert_int_equal(r.consumed, 300);
  assert_int_equal(r.bad_at, -1);
  assert_int_equal(r.timeouts, 2);
  finish(base, &p, &r);
}

/* A deadline already passed times out at once (the next iteration). */
static void test_g16_passed_deadline(void **state) {
  rill_base *base = tu_base_new();
  nu_pair p;
  nu_reader r;
  uint64_t t0;
  (void)state;
  nu_pair_accepted(base, "127.0.0.1", NULL, &p);
  nu_reader_init(&r);
  r.stop_base = base;
  nu_reader_start(p.conn, &r);
  t0 = tu_now_ms();
  assert_int_equal(rill_conn_set_deadline(p.conn, RILL_DEADLINE_READ, 1), 0);
  assert_int_equal(r.calls, 0); /* not inside the call */
  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  assert_int_equal(r.timeouts, 1);
  assert_true(r.timeout_at_ms - t0 < 500);
  finish(base, &p, &r);
}

struct mover {
  rill_conn *conn;
  rill_base *base;
  rill_timer *timer;
  uint64_t start;
  int moves;
};

static void mover_cb(rill_timer *t, void *arg) {
  struct mover *m = (struct mover *)arg;
  if (tu_now_ms() - m->start >= 300) {
    rill_timer_free(t);
    m->timer = NULL;
    return;
  }
  m->moves++;
  assert_int_equal(rill_conn_set_deadline(m->conn, RILL_DEADLINE_READ, rill_time_now() + 50 * RILL_MSEC),
                   0);
}

static void test_g16_moving_deadline_never_fires(void **state) {
  rill_base *base = tu_base_new();
  nu_pair p;
  nu_reader r;
  struct mover m;
  uint64_t elapsed;
  (void)state;
  nu_pair_accepted(base, "127.0.0.1", NULL, &p);
  nu_reader_init(&r);
  r.stop_base = base;
  nu_reader_start(p.conn, &r);
  memset(&m, 0, sizeof m);
  m.conn = p.conn;
  m.base = base;
  m.start = tu_now_ms();
  assert_int_equal(rill_conn_set_deadline(p.conn, RILL_DEADLINE_READ, rill_time_now() + 50 * RILL_MSEC), 0);
  assert_int_equal(rill_timer_new(base, mover_cb, &m, &m.timer), 0);
  assert_int_equal(rill_timer_start(m.timer, 10 * RILL_MSEC, 10 * RILL_MSEC), 0);
  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT); /* until the time-out, once moving stops */
  elapsed = r.timeout_at_ms - m.start;
  printf("# G16: %d moves, then timed out at %llu ms\n", m.moves, (unsigned long long)elapsed);
  assert_null(m.timer);
  assert_int_equal(r.timeouts, 1);
  assert_true(m.moves >= 10);
  /* The last move (after ~290 ms) set now+50: nothing fired before. */
  assert_true(elapsed >= 300);
  finish(base, &p, &r);
}

/* ---- G17 ------------------------------------------------------------- */

static int g17_drains;
static void g17_on_drain(rill_conn *c, void *arg) {
  (void)c;
  (void)arg;
  g17_drains++;
}

struct ref_done {
  int calls;
  int status;
  size_t written;
};
static void g17_ref_done(rill_conn *c, int status, size_t written, void *arg) {
  struct ref_done *d = (struct ref_done *)arg;
  (void)c;
  d->calls++;
  d->status = status;
  d->written = written;
}

static void test_g17_zero_length_ops(void **state) {
  rill_base *base = tu_base_new();
  nu_pair p;
  nu_reader r;
  rill_conn_events ev;
  struct ref_done rd;
  char c;
  (void)state;
  nu_pair_accepted(base, "127.0.0.1", NULL, &p);
  nu_reader_init(&r);
  memset(&ev, 0, sizeof ev);
  ev.on_read = nu_on_read;
  ev.on_drain = g17_on_drain;
  ev.on_close = nu_on_close;
  g17_drains = 0;
  assert_int_equal(rill_conn_start(p.conn, &ev, &r), 0);
  assert_int_equal(rill_conn_write(p.conn, "abc", 0), 0);
  assert_int_equal(rill_conn_write(p.conn, NULL, 0), 0);
  assert_int_equal(rill_conn_bytes_written(p.conn), 0);
  assert_int_equal(rill_conn_write_queued(p.conn), 0);
  memset(&rd, 0, sizeof rd);
  assert_int_equal(rill_conn_write_ref(p.conn, "abc", 0, g17_ref_done, &rd), 0);
  assert_int_equal(rd.calls, 0); /* from the loop, never inside the call */
  nu_stop_after(base, 50);
  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  assert_int_equal(rd.calls, 1);
  assert_int_equal(rd.status, 0);
  assert_int_equal(rd.written, 0);
  /* Nothing reached the wire, and a no-op reports no drain. */
  assert_int_equal(recv(p.peer, &c, 1, MSG_DONTWAIT), -1);
  assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
  assert_int_equal(rill_conn_bytes_written(p.conn), 0);
  assert_int_equal(g17_drains, 0);
  /* and no zero-length delivery was made (checked in finish()) */
  assert_int_equal(r.calls, 0);
  finish(base, &p, &r);
}

/* ---- a restart from on_read --------------------------------------------- */

/* on_read takes 10 bytes of 100, stops reading and starts it again (what a
 * coroutine resumed from on_read does when it reads again): the other 90
 * come at once, not only once the peer sends more (it sends nothing more
 * here). Before the fix they waited for new input that never came. */
struct restart {
  rill_base *base;
  int calls;
  size_t got;
};

static size_t restart_on_read(rill_conn *c, const char *data, size_t len, int status, void *arg) {
  struct restart *r = (struct restart *)arg;
  size_t take = len < 10 ? len : 10;
  (void)data;
  if (status != 0)
    return 0;
  r->calls++;
  r->got += take;
  if (r->got == 100) {
    rill_base_stop(r->base);
    return take;
  }
  assert_int_equal(rill_conn_read_stop(c), 0);
  assert_int_equal(rill_conn_read_start(c), 0);
  return take;
}

static void test_restart_in_on_read_redelivers(void **state) {
  rill_base *base = tu_base_new();
  nu_pair p;
  struct restart r;
  rill_conn_events ev;
  char msg[100];
  (void)state;
  nu_pair_accepted(base, "127.0.0.1", NULL, &p);
  memset(&r, 0, sizeof r);
  r.base = base;
  memset(&ev, 0, sizeof ev);
  ev.on_read = restart_on_read;
  memset(msg, 'x', sizeof msg);
  assert_int_equal(nu_send_all(p.peer, msg, sizeof msg, 1000), sizeof msg);
  /* All 100 bytes in the kernel before the connection reads, so the first
   * on_read sees them together. */
  tu_sleep_ms(50);
  assert_int_equal(rill_conn_start(p.conn, &ev, &r), 0);
  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  assert_int_equal(r.got, 100);
  assert_int_equal(r.calls, 10);
  nu_pair_cleanup(base, &p);
  tu_base_free(base);
}

/* G16, Go's order: a read deadline that has passed fails the read even when
 * data waits in the kernel; the data stays, and comes once the deadline is
 * lifted. Before the fix the waiting data came first: readiness is
 * dispatched before the deadline's timer in the same iteration. */
struct passed {
  rill_base *base;
  int timeouts;
  size_t data_before_timeout, data_after;
};

static size_t passed_on_read(rill_conn *c, const char *data, size_t len, int status, void *arg) {
  struct passed *p = (struct passed *)arg;
  (void)data;
  if (status == RILL_ETIMEOUT) {
    p->timeouts++;
    assert_int_equal(rill_conn_set_deadline(c, RILL_DEADLINE_READ, 0), 0); /* lifted */
    return 0;
  }
  if (status != 0)
    return 0;
  if (p->timeouts == 0)
    p->data_before_timeout += len;
  else
    p->data_after += len;
  if (p->data_after + p->data_before_timeout >= 5)
    rill_base_stop(p->base);
  return len;
}

static void test_g16_passed_deadline_before_waiting_data(void **state) {
  rill_base *base = tu_base_new();
  nu_pair p;
  struct passed r;
  rill_conn_events ev;
  (void)state;
  nu_pair_accepted(base, "127.0.0.1", NULL, &p);
  memset(&r, 0, sizeof r);
  r.base = base;
  memset(&ev, 0, sizeof ev);
  ev.on_read = passed_on_read;
  assert_int_equal(nu_send_all(p.peer, "hello", 5, 1000), 5);
  tu_sleep_ms(50); /* the bytes wait in the kernel */
  assert_int_equal(rill_conn_set_deadline(p.conn, RILL_DEADLINE_READ, 1), 0); /* long passed */
  assert_int_equal(rill_conn_start(p.conn, &ev, &r), 0);
  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  assert_int_equal(r.timeouts, 1);
  assert_int_equal(r.data_before_timeout, 0);
  assert_int_equal(r.data_after, 5);
  nu_pair_cleanup(base, &p);
  tu_base_free(base);
}

int main(void) {
#define T(f) cmocka_unit_test_setup_teardown(f, tu_setup_fds, tu_teardown_fds)
  const struct CMUnitTest tests[] = {
      T(test_g12_no_data_waits_idle),
      T(test_g13_short_data_at_once),
      T(test_g14_large_data_bounded_chunks),
      T(test_g14_partial_consume_rest_first),
      T(test_g15_data_then_eof),
      T(test_g15_eof_at_once),
      T(test_g16_read_deadline_no_data_lost),
      T(test_g16_passed_deadline),
      T(test_g16_moving_deadline_never_fires),
      T(test_g17_zero_length_ops),
      T(test_restart_in_on_read_redelivers),
      T(test_g16_passed_deadline_before_waiting_data),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
