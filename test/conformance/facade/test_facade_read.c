/* docs/go-model.md G12-G17 through the blocking facade: rill_net_read() against
 * a raw loopback peer. Each test runs one fiber on a fresh base; checks made
 * inside fibers are reported after the loop returned. */
#define _GNU_SOURCE 1

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "rill.h"
#include "test_util.h"

#include "facade_util.c"

#define LIMIT 60000 /* a hang guard only */

/* ---- G12: no data -> the reader parks, using no CPU -------------------- */

struct g12 {
  struct fu_pair p;
  rill_waitgroup *wg;
  int reader_done;
  ssize_t n;
  uint64_t started_ms, returned_ms;
  char buf[64];
};

static void g12_reader(void *arg) {
  struct g12 *t = (struct g12 *)arg;
  t->n = rill_net_read(t->p.c, t->buf, sizeof t->buf);
  t->returned_ms = tu_now_ms();
  t->reader_done = 1;
  rill_waitgroup_done(t->wg);
}

static void g12_main(void *arg) {
  struct g12 *t = (struct g12 *)arg;
  rill_base_stats before, after;
  uint64_t cpu0, cpu1;
  if (fu_pair_open(&t->p) != 0)
    return;
  FCHECK_EQ(rill_waitgroup_new(&t->wg), 0);
  rill_waitgroup_add(t->wg, 1);
  FCHECK_EQ(rill_go(rill_fiber_base(), g12_reader, t), 0);
  rill_yield(); /* the reader runs and parks */
  FCHECK_EQ(t->reader_done, 0);

  t->started_ms = tu_now_ms();
  FCHECK_EQ(rill_base_stats_get(rill_fiber_base(), &before), 0);
  cpu0 = fu_cpu_ms();
  rill_sleep(200 * RILL_MSEC);
  cpu1 = fu_cpu_ms();
  FCHECK_EQ(rill_base_stats_get(rill_fiber_base(), &after), 0);

  /* Still parked after 200 ms, and the loop slept in the kernel meanwhile
   * instead of spinning. */
  FCHECK_EQ(t->reader_done, 0);
  FCHECK(after.wait_ns - before.wait_ns >= 150u * 1000000u);
  FCHECK(after.iterations - before.iterations < 50);
  FCHECK(cpu1 - cpu0 < 100);
  if (after.wait_ns - before.wait_ns < 150u * 1000000u || after.iterations - before.iterations >= 50)
    fprintf(stderr, "G12: wait_ns grew %llu, iterations %llu, cpu %llu ms\n",
            (unsigned long long)(after.wait_ns - before.wait_ns),
            (unsigned long long)(after.iterations - before.iterations),
            (unsigned long long)(cpu1 - cpu0));

  FCHECK_EQ(fu_peer_write(t->p.peer, "hello", 5), 0);
  FCHECK_EQ(rill_waitgroup_wait(t->wg), 0);
  FCHECK_EQ(t->reader_done, 1);
  FCHECK_EQ(t->n, 5);
  FCHECK(memcmp(t->buf, "hello", 5) == 0);
  FCHECK(t->returned_ms - t->started_ms >= 195);
  rill_waitgroup_free(t->wg);
  fu_pair_close(&t->p);
}

static void G12_read_parks_without_cpu(void **state) {
  struct g12 t;
  (void)state;
  memset(&t, 0, sizeof t);
  fu_run_fiber(g12_main, &t, LIMIT);
}

/* ---- G13: fewer bytes than asked -> returned at once ------------------- */

struct g13 {
  struct fu_pair p;
  rill_waitgroup *wg;
  ssize_t parked_n;
  char parked_buf[1000];
};

static void g13_parked_reader(void *arg) {
  struct g13 *t = (struct g13 *)arg;
  t->parked_n = rill_net_read(t->p.c, t->parked_buf, sizeof t->parked_buf);
  rill_waitgroup_done(t->wg);
}

static void g13_main(void *arg) {
  struct g13 *t = (struct g13 *)arg;
  char buf[1000];
  uint64_t t0;
  ssize_t n;
  if (fu_pair_open(&t->p) != 0)
    return;

  /* Data already there: 10 bytes for a 1000-byte read, at once. */
  FCHECK_EQ(fu_peer_write(t->p.peer, "0123456789", 10), 0);
  rill_sleep(20 * RILL_MSEC);
  t0 = tu_now_ms();
  n = rill_net_read(t->p.c, buf, sizeof buf);
  FCHECK_EQ(n, 10);
  FCHECK(n == 10 && memcmp(buf, "0123456789", 10) == 0);
  FCHECK(tu_now_ms() - t0 < FU_AT_ONCE_MS);

  /* A parked reader wakes with the 7 bytes that came, not waiting for
   * the 1000 it asked for. */
  FCHECK_EQ(rill_waitgroup_new(&t->wg), 0);
  rill_waitgroup_add(t->wg, 1);
  FCHECK_EQ(rill_go(rill_fiber_base(), g13_parked_reader, t), 0);
  rill_sleep(30 * RILL_MSEC);
  t0 = tu_now_ms();
  FCHECK_EQ(fu_peer_write(t->p.peer, "abcdefg", 7), 0);
  FCHECK_EQ(rill_waitgroup_wait(t->wg), 0);
  FCHECK(tu_now_ms() - t0 < FU_AT_ONCE_MS);
  FCHECK_EQ(t->parked_n, 7);
  FCHECK(t->parked_n == 7 && memcmp(t->parked_buf, "abcdefg", 7) == 0);
  rill_waitgroup_free(t->wg);
  fu_pair_close(&t->p);
}

static void G13_partial_data_returns_at_once(void **state) {
  struct g13 t;
  (void)state;
  memset(&t, 0, sizeof t);
  fu_run_fiber(g13_main, &t, LIMIT);
}

/* ---- G14: more than the buffer -> a full buffer, the rest next --------- */

#define G14_BIG (256 * 1024)

static void g14_main(void *arg) {
  struct fu_pair p;
  unsigned char out[1000], in[100];
  unsigned char *big, *bigin;
  size_t got;
  ssize_t n;
  int i;
  (void)arg;
  if (fu_pair_open(&p) != 0)
    return;

  fu_fill(out, sizeof out, 0);
  FCHECK_EQ(fu_peer_write(p.peer, out, sizeof out), 0);
  rill_sleep(20 * RILL_MSEC);
  for (i = 0; i < 10; i++) {
    n = rill_net_read(p.c, in, sizeof in);
    FCHECK_EQ(n, 100);
    if (n == 100)
      FCHECK_EQ(fu_check_pattern(in, 100, (uint64_t)i * 100), 100);
  }

  /* More than the connection's own buffering (read_max, 64 KiB): every
   * byte comes, in order, and the first read fills the buffer. */
  big = malloc(G14_BIG);
  bigin = malloc(G14_BIG);
  FCHECK(big && bigin);
  if (big && bigin) {
    fu_fill(big, G14_BIG, 1000);
    fu_set_buffers(p.peer, 512 * 1024);
    FCHECK_EQ(fu_peer_write(p.peer, big, G14_BIG), 0);
    rill_sleep(20 * RILL_MSEC);
    n = rill_net_read(p.c, bigin, 10000);
    FCHECK_EQ(n, 10000);
    got = n > 0 ? (size_t)n : 0;
    while (got < G14_BIG) {
      size_t want = G14_BIG - got < 10000 ? G14_BIG - got : 10000;
      n = rill_net_read(p.c, bigin + got, want);
      FCHECK(n > 0 && (size_t)n <= want);
      if (n <= 0)
        break;
      got += (size_t)n;
    }
    FCHECK_EQ(got, G14_BIG);
    FCHECK_EQ(fu_check_pattern(bigin, got, 1000), got);
  }
  free(big);
  free(bigin);
  fu_pair_close(&p);
}

static void G14_more_data_than_buffer(void **state) {
  (void)state;
  fu_run_fiber(g14_main, NULL, LIMIT);
}

/* ---- G15: data first, then EOF; EOF at once when nothing is pending ---- */

struct g15 {
  struct fu_pair p;
  rill_waitgroup *wg;
  ssize_t n;
  uint64_t returned_ms;
};

static void g15_parked_reader(void *arg) {
  struct g15 *t = (struct g15 *)arg;
  char buf[16];
  t->n = rill_net_read(t->p.c, buf, sizeof buf);
  t->returned_ms = tu_now_ms();
  rill_waitgroup_done(t->wg);
}

static void g15_main(void *arg) {
  struct g15 *t = (struct g15 *)arg;
  struct fu_pair p;
  char buf[100];
  unsigned char out[1000], in[1000];
  size_t got;
  ssize_t n;
  uint64_t t0;
  (void)arg;

  /* Unread data, then the peer closes: the data, then EOF, for good. */
  if (fu_pair_open(&p) != 0)
    return;
  FCHECK_EQ(fu_peer_write(p.peer, "abc", 3), 0);
  close(p.peer);
  p.peer = -1;
  rill_sleep(20 * RILL_MSEC);
  n = rill_net_read(p.c, buf, sizeof buf);
  FCHECK_EQ(n, 3);
  FCHECK(n == 3 && memcmp(buf, "abc", 3) == 0);
  FCHECK_EQ(rill_net_read(p.c, buf, sizeof buf), RILL_EOF);
  FCHECK_EQ(rill_net_read(p.c, buf, sizeof buf), RILL_EOF);
  fu_pair_close(&p);

  /* More unread data than the reader's buffer when the FIN comes: every
   * byte first, in order, then EOF. */
  if (fu_pair_open(&p) != 0)
    return;
  fu_fill(out, sizeof out, 5);
  FCHECK_EQ(fu_peer_write(p.peer, out, sizeof out), 0);
  close(p.peer);
  p.peer = -1;
  rill_sleep(20 * RILL_MSEC);
  got = 0;
  for (;;) {
    n = rill_net_read(p.c, in + got, sizeof in - got < 64 ? sizeof in - got : 64);
    if (n <= 0 || got + (size_t)n >= sizeof in) {
      if (n > 0)
        got += (size_t)n;
      break;
    }
    got += (size_t)n;
  }
  FCHECK_EQ(got, sizeof in);
  FCHECK_EQ(fu_check_pattern(in, got, 5), got);
  FCHECK_EQ(rill_net_read(p.c, in, 64), RILL_EOF);
  fu_pair_close(&p);

  /* Nothing pending: EOF at once. */
  if (fu_pair_open(&p) != 0)
    return;
  close(p.peer);
  p.peer = -1;
  rill_sleep(20 * RILL_MSEC);
  t0 = tu_now_ms();
  FCHECK_EQ(rill_net_read(p.c, buf, sizeof buf), RILL_EOF);
  FCHECK(tu_now_ms() - t0 < FU_AT_ONCE_MS);
  fu_pair_close(&p);

  /* A parked reader gets EOF when the peer closes. */
  if (fu_pair_open(&t->p) != 0)
    return;
  FCHECK_EQ(rill_waitgroup_new(&t->wg), 0);
  rill_waitgroup_add(t->wg, 1);
  FCHECK_EQ(rill_go(rill_fiber_base(), g15_parked_reader, t), 0);
  rill_sleep(30 * RILL_MSEC);
  t0 = tu_now_ms();
  close(t->p.peer);
  t->p.peer = -1;
  FCHECK_EQ(rill_waitgroup_wait(t->wg), 0);
  FCHECK_EQ(t->n, RILL_EOF);
  FCHECK(t->returned_ms - t0 < FU_AT_ONCE_MS);
  rill_waitgroup_free(t->wg);
  fu_pair_close(&t->p);
}

static void G15_data_then_eof(void **state) {
  struct g15 t;
  (void)state;
  memset(&t, 0, sizeof t);
  fu_run_fiber(g15_main, &t, LIMIT);
}

/* ---- G16: read deadline -> i/o timeout, n = 0, nothing lost ------------ */

static void g16_main(void *arg) {
  struct fu_pair p;
  char buf[64], msg[512], expect[512], local[RILL_ADDRSTRLEN], remote[RILL_ADDRSTRLEN];
  uint64_t t0, elapsed;
  ssize_t n;
  (void)arg;
  if (fu_pair_open(&p) != 0)
    return;

  /* The deadline passes while the reader is parked. */
  t0 = tu_now_ms();
  FCHECK_EQ(rill_net_set_deadline(p.c, RILL_DEADLINE_READ, rill_time_now() + 100 * RILL_MSEC), 0);
  n = rill_net_read(p.c, buf, sizeof buf);
  elapsed = tu_now_ms() - t0;
  FCHECK_EQ(n, RILL_ETIMEOUT);
  FCHECK(elapsed >= 90 && elapsed < 100 + FU_AT_ONCE_MS);

  /* Go's text for it. */
  FCHECK(rill_net_local_addr(p.c, local, sizeof local) > 0);
  FCHECK(rill_net_remote_addr(p.c, remote, sizeof remote) > 0);
  FCHECK_STREQ(remote, p.addr);
  snprintf(expect, sizeof expect, "read tcp %s->%s: i/o timeout", local, remote);
  FCHECK(rill_net_format_error(p.c, "read", RILL_ETIMEOUT, msg, sizeof msg) > 0);
  FCHECK_STREQ(msg, expect);

  /* Bytes arrive after the timeout. While the deadline stays passed, a read
   * fails at once, as in Go... */
  FCHECK_EQ(fu_peer_write(p.peer, "meanwhile", 9), 0);
  rill_sleep(30 * RILL_MSEC);
  t0 = tu_now_ms();
  FCHECK_EQ(rill_net_read(p.c, buf, sizeof buf), RILL_ETIMEOUT);
  FCHECK(tu_now_ms() - t0 < FU_AT_ONCE_MS);

  /* ...and a new deadline gets the bytes: nothing was lost. */
  FCHECK_EQ(rill_net_set_deadline(p.c, RILL_DEADLINE_READ, rill_time_now() + 2 * RILL_SEC), 0);
  n = rill_net_read(p.c, buf, sizeof buf);
  FCHECK_EQ(n, 9);
  FCHECK(n == 9 && memcmp(buf, "meanwhile", 9) == 0);

  /* Bytes the connection holds when the deadline passes survive it too:
   * read 3 of 10, time out, then get the other 7. */
  FCHECK_EQ(fu_peer_write(p.peer, "0123456789", 10), 0);
  rill_sleep(20 * RILL_MSEC);
  n = rill_net_read(p.c, buf, 3);
  FCHECK_EQ(n, 3);
  FCHECK(n == 3 && memcmp(buf, "012", 3) == 0);
  FCHECK_EQ(rill_net_set_deadline(p.c, RILL_DEADLINE_READ, rill_time_now() + 20 * RILL_MSEC), 0);
  rill_sleep(60 * RILL_MSEC);
  FCHECK_EQ(rill_net_read(p.c, buf, sizeof buf), RILL_ETIMEOUT);
  FCHECK_EQ(rill_net_set_deadline(p.c, RILL_DEADLINE_READ, 0), 0);
  n = rill_net_read(p.c, buf, sizeof buf);
  FCHECK_EQ(n, 7);
  FCHECK(n == 7 && memcmp(buf, "3456789", 7) == 0);

  /* A deadline already in the past: i/o timeout at once, even with data
   * waiting, which the next read after clearing it gets. */
  FCHECK_EQ(fu_peer_write(p.peer, "xy", 2), 0);
  rill_sleep(20 * RILL_MSEC);
  FCHECK_EQ(rill_net_set_deadline(p.c, RILL_DEADLINE_READ, rill_time_now() - RILL_MSEC), 0);
  FCHECK_EQ(rill_net_read(p.c, buf, sizeof buf), RILL_ETIMEOUT);
  FCHECK_EQ(rill_net_set_deadline(p.c, RILL_DEADLINE_READ, 0), 0);
  n = rill_net_read(p.c, buf, sizeof buf);
  FCHECK_EQ(n, 2);

  /* Data that comes before the deadline is simply read. */
  FCHECK_EQ(rill_net_set_deadline(p.c, RILL_DEADLINE_READ, rill_time_now() + RILL_SEC), 0);
  FCHECK_EQ(fu_peer_write(p.peer, "ok", 2), 0);
  n = rill_net_read(p.c, buf, sizeof buf);
  FCHECK_EQ(n, 2);
  fu_pair_close(&p);
}

static void G16_read_deadline_timeout_loses_nothing(void **state) {
  (void)state;
  fu_run_fiber(g16_main, NULL, LIMIT);
}

/* ---- G17: a zero-length read returns 0 at once ------------------------- */

static void g17_main(void *arg) {
  struct fu_pair p;
  char buf[16];
  uint64_t t0;
  ssize_t n;
  (void)arg;
  if (fu_pair_open(&p) != 0)
    return;

  /* Nothing to read: still 0, without parking. */
  t0 = tu_now_ms();
  FCHECK_EQ(rill_net_read(p.c, buf, 0), 0);
  FCHECK(tu_now_ms() - t0 < FU_AT_ONCE_MS);

  /* Data waiting: 0, and the data is untouched for the next read. */
  FCHECK_EQ(fu_peer_write(p.peer, "xyz", 3), 0);
  rill_sleep(20 * RILL_MSEC);
  FCHECK_EQ(rill_net_read(p.c, buf, 0), 0);
  n = rill_net_read(p.c, buf, sizeof buf);
  FCHECK_EQ(n, 3);
  FCHECK(n == 3 && memcmp(buf, "xyz", 3) == 0);

  /* Even after the peer closed: 0 for len 0; the real read sees EOF. */
  close(p.peer);
  p.peer = -1;
  rill_sleep(20 * RILL_MSEC);
  FCHECK_EQ(rill_net_read(p.c, buf, 0), 0);
  FCHECK_EQ(rill_net_read(p.c, buf, sizeof buf), RILL_EOF);
  fu_pair_close(&p);
}

static void G17_zero_length_read(void **state) {
  (void)state;
  fu_run_fiber(g17_main, NULL, LIMIT);
}

/* ---- G29: a deadline of now + d is measured from the real time --------- */

/* Two fibers run back to back in one turn of the loop: the first wakes the
 * second, burns 60 ms of CPU and parks; the second, returning from its
 * wait, sets a read deadline of rill_time_now() + 100 ms. The read must park
 * at least 100 ms of real time. Were the deadline measured from the time
 * the loop last woke, it would pass after 40 ms. */
struct g29 {
  struct fu_pair p;
  rill_waitgroup *go, *done;
  uint64_t elapsed_us;
  ssize_t rc;
};

static void g29_reader(void *arg) {
  struct g29 *t = (struct g29 *)arg;
  char buf[16];
  uint64_t t0;
  FCHECK_EQ(rill_waitgroup_wait(t->go), 0);
  t0 = tu_now_ns();
  FCHECK_EQ(rill_net_set_deadline(t->p.c, RILL_DEADLINE_READ, rill_time_now() + 100 * RILL_MSEC), 0);
  t->rc = rill_net_read(t->p.c, buf, sizeof buf);
  t->elapsed_us = (tu_now_ns() - t0) / 1000u;
  rill_waitgroup_done(t->done);
}

static void g29_main(void *arg) {
  struct g29 *t = (struct g29 *)arg;
  uint64_t burn_end;
  if (fu_pair_open(&t->p) != 0)
    return;
  FCHECK_EQ(rill_waitgroup_new(&t->go), 0);
  FCHECK_EQ(rill_waitgroup_new(&t->done), 0);
  rill_waitgroup_add(t->go, 1);
  rill_waitgroup_add(t->done, 1);
  FCHECK_EQ(rill_go(rill_fiber_base(), g29_reader, t), 0);
  FCHECK_EQ(rill_yield(), 0); /* the reader parks on `go` */
  rill_waitgroup_done(t->go);
  burn_end = tu_now_ns() + 60u * 1000000u;
  while (tu_now_ns() < burn_end) {
  }
  FCHECK_EQ(rill_waitgroup_wait(t->done), 0);
  FCHECK_EQ(t->rc, RILL_ETIMEOUT);
  FCHECK(t->elapsed_us >= 100000u);
  if (t->elapsed_us < 99000u)
    fprintf(stderr, "G29: a 100 ms read deadline passed after %llu us\n", (unsigned long long)t->elapsed_us);
  rill_waitgroup_free(t->go);
  rill_waitgroup_free(t->done);
  fu_pair_close(&t->p);
}

static void G29_deadline_from_the_real_time(void **state) {
  struct g29 t;
  (void)state;
  memset(&t, 0, sizeof t);
  fu_run_fiber(g29_main, &t, LIMIT);
}

/* G27: the facade reads only while a fiber waits in rill_net_read(). Bytes
 * that come after a read returned, while its fiber waits for something
 * else, stay in the kernel (reading is not left on from one read to the
 * next unless the fiber reads again), and the next read gets them. */
static void g27_main(void *arg) {
  struct fu_pair p;
  char buf[64];
  (void)arg;
  if (fu_pair_open(&p) != 0)
    return;
  FCHECK_EQ(fu_peer_write(p.peer, "ping", 4), 0);
  FCHECK_EQ(rill_net_read(p.c, buf, sizeof buf), 4);
  FCHECK_EQ(fu_peer_write(p.peer, "more", 4), 0);
  rill_sleep(50 * RILL_MSEC); /* the loop polls meanwhile, the bytes ready */
  FCHECK_EQ(rill_conn_bytes_read(rill_net_tls_conn(p.c)), 4);
  FCHECK_EQ(rill_net_read(p.c, buf, sizeof buf), 4);
  FCHECK(memcmp(buf, "more", 4) == 0);
  FCHECK_EQ(rill_conn_bytes_read(rill_net_tls_conn(p.c)), 8);
  fu_pair_close(&p);
}

static void G27_no_read_between_reads(void **state) {
  (void)state;
  fu_run_fiber(g27_main, NULL, LIMIT);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(G12_read_parks_without_cpu, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(G13_partial_data_returns_at_once, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(G14_more_data_than_buffer, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(G15_data_then_eof, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(G16_read_deadline_timeout_loses_nothing, tu_setup_fds,
                                      tu_teardown_fds),
      cmocka_unit_test_setup_teardown(G17_zero_length_read, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(G29_deadline_from_the_real_time, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(G27_no_read_between_reads, tu_setup_fds, tu_teardown_fds),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
