/* docs/go-model.md G18-G22 through the blocking facade: rill_net_write() against
 * a raw loopback peer that reads, does not read, or vanishes. SIGPIPE keeps
 * its default disposition throughout: one raised anywhere kills the test. */
#define _GNU_SOURCE 1

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "rill.h"
#include "test_util.h"

#include "facade_util.c"

#define LIMIT 60000 /* a hang guard only */
#define MiB (1024u * 1024u)

static unsigned char *g_data; /* fu_fill(.., 0) pattern, BIG bytes */
#define BIG (16u * MiB)

/* Reads from the raw peer until `len` bytes came, checking the pattern from
 * `offset`; returns how many matched before a mismatch, EOF or timeout. */
static size_t peer_drain_checked(int fd, size_t len, uint64_t offset, unsigned limit_ms) {
  static unsigned char buf[256 * 1024];
  size_t got = 0;
  while (got < len) {
    size_t want = len - got < sizeof buf ? len - got : sizeof buf;
    ssize_t n = fu_peer_read(fd, buf, want, limit_ms);
    if (n <= 0)
      break;
    if (fu_check_pattern(buf, (size_t)n, offset + got) != (size_t)n)
      return got + fu_check_pattern(buf, (size_t)n, offset + got);
    got += (size_t)n;
  }
  return got;
}

/* Bytes the raw peer receives until EOF (or an error, or the hang guard);
 * *matched counts those that follow the pattern from `offset` before the
 * first that does not. */
static size_t peer_drain_to_eof(int fd, uint64_t offset, size_t *matched) {
  static unsigned char buf[256 * 1024];
  size_t got = 0;
  *matched = 0;
  for (;;) {
    ssize_t n = fu_peer_read(fd, buf, sizeof buf, LIMIT);
    if (n <= 0)
      return got;
    if (*matched == got)
      *matched += fu_check_pattern(buf, (size_t)n, offset + got);
    got += (size_t)n;
  }
}

/* ---- G18: a big write returns 0 with every byte delivered -------------- */

struct g18 {
  struct fu_pair p;
  rill_waitgroup *wg;
  size_t peer_got;
};

static void g18_peer(void *arg) {
  struct g18 *t = (struct g18 *)arg;
  t->peer_got = peer_drain_checked(t->p.peer, 10 * MiB, 0, 5000);
  rill_waitgroup_done(t->wg);
}

static void g18_main(void *arg) {
  struct g18 *t = (struct g18 *)arg;
  size_t written = 12345;
  if (fu_pair_open(&t->p) != 0)
    return;
  FCHECK_EQ(rill_waitgroup_new(&t->wg), 0);
  rill_waitgroup_add(t->wg, 1);
  FCHECK_EQ(rill_go(rill_fiber_base(), g18_peer, t), 0);
  FCHECK_EQ(rill_net_write(t->p.c, g_data, 10 * MiB, &written), 0);
  FCHECK_EQ(written, 10 * MiB);
  FCHECK_EQ(rill_waitgroup_wait(t->wg), 0);
  FCHECK_EQ(t->peer_got, 10 * MiB);

  /* written may be NULL; a zero-length write is 0 at once. */
  FCHECK_EQ(rill_net_write(t->p.c, g_data, 1000, NULL), 0);
  FCHECK_EQ(peer_drain_checked(t->p.peer, 1000, 0, 2000), 1000);
  written = 7;
  FCHECK_EQ(rill_net_write(t->p.c, g_data, 0, &written), 0);
  FCHECK_EQ(written, 0);
  rill_waitgroup_free(t->wg);
  fu_pair_close(&t->p);
}

static void G18_big_write_all_bytes(void **state) {
  struct g18 t;
  (void)state;
  memset(&t, 0, sizeof t);
  fu_run_fiber(g18_main, &t, LIMIT);
}

/* ---- G19: the peer does not read -> the writer parks, then resumes ----- */

struct g19 {
  struct fu_pair p;
  rill_waitgroup *wg;
  int inside_write;
  int rc;
  size_t written;
  uint64_t done_ms;
};

#define G19_LEN (8u * MiB)

static void g19_writer(void *arg) {
  struct g19 *t = (struct g19 *)arg;
  t->inside_write = 1;
  t->rc = rill_net_write(t->p.c, g_data, G19_LEN, &t->written);
  t->inside_write = 0;
  t->done_ms = tu_now_ms();
  rill_waitgroup_done(t->wg);
}

static void g19_main(void *arg) {
  struct g19 *t = (struct g19 *)arg;
  rill_base_stats before, after;
  uint64_t read_start_ms;
  if (fu_pair_open(&t->p) != 0)
    return;
  fu_set_buffers(t->p.peer, 64 * 1024);
  FCHECK_EQ(rill_net_set_write_buffer(t->p.c, 64 * 1024), 0);
  FCHECK_EQ(rill_waitgroup_new(&t->wg), 0);
  rill_waitgroup_add(t->wg, 1);
  FCHECK_EQ(rill_go(rill_fiber_base(), g19_writer, t), 0);

  rill_yield();
  FCHECK_EQ(rill_base_stats_get(rill_fiber_base(), &before), 0);
  rill_sleep(200 * RILL_MSEC);
  FCHECK_EQ(rill_base_stats_get(rill_fiber_base(), &after), 0);
  /* Still inside the write, parked: the loop slept meanwhile (blocked in
   * the backend, a few iterations, not spinning). How long it waited is not
   * checked: wait_ns counts only the backend's wait, and on a loaded or
   * instrumented machine the callbacks before it eat into the 200 ms. */
  FCHECK_EQ(t->inside_write, 1);
  FCHECK(after.wait_ns > before.wait_ns);
  FCHECK(after.iterations - before.iterations < 50);

  /* The peer reads: the writer finishes with every byte delivered. */
  read_start_ms = tu_now_ms();
  FCHECK_EQ(peer_drain_checked(t->p.peer, G19_LEN, 0, 5000), G19_LEN);
  FCHECK_EQ(rill_waitgroup_wait(t->wg), 0);
  FCHECK_EQ(t->rc, 0);
  FCHECK_EQ(t->written, G19_LEN);
  FCHECK(t->done_ms >= read_start_ms);
  rill_waitgroup_free(t->wg);
  fu_pair_close(&t->p);
}

static void G19_writer_parks_until_peer_reads(void **state) {
  struct g19 t;
  (void)state;
  memset(&t, 0, sizeof t);
  fu_run_fiber(g19_main, &t, LIMIT);
}

/* ---- G20: the write deadline passes mid-write -------------------------- */

/* The peer drains while the writer writes again: the write cut short left
 * the kernel's buffers full, so the next one may wait for room. It reads
 * until the writer's FIN (close_write after the last write), not until a
 * quiet spell: a loaded machine may stall the writer longer than any. */
struct g20_drain {
  int fd;
  rill_waitgroup *wg;
  size_t got, matched;
};

static void g20_drainer(void *arg) {
  struct g20_drain *d = (struct g20_drain *)arg;
  d->got = peer_drain_to_eof(d->fd, 0, &d->matched);
  rill_waitgroup_done(d->wg);
}

static void g20_main(void *arg) {
  struct fu_pair p;
  struct g20_drain drain;
  size_t written = 0, written2 = 99;
  char msg[512], expect[512], local[RILL_ADDRSTRLEN], remote[RILL_ADDRSTRLEN];
  uint64_t t0, elapsed;
  int rc;
  (void)arg;
  if (fu_pair_open(&p) != 0)
    return;
  fu_set_buffers(p.peer, 64 * 1024);

  t0 = tu_now_ms();
  FCHECK_EQ(rill_net_set_deadline(p.c, RILL_DEADLINE_WRITE, rill_time_now() + 200 * RILL_MSEC), 0);
  rc = rill_net_write(p.c, g_data, BIG, &written);
  elapsed = tu_now_ms() - t0;
  FCHECK_EQ(rc, RILL_ETIMEOUT);
  FCHECK(written > 0);
  FCHECK(written < BIG);
  FCHECK(elapsed >= 190 && elapsed < 200 + FU_AT_ONCE_MS);

  FCHECK(rill_net_local_addr(p.c, local, sizeof local) > 0);
  FCHECK(rill_net_remote_addr(p.c, remote, sizeof remote) > 0);
  snprintf(expect, sizeof expect, "write tcp %s->%s: i/o timeout", local, remote);
  FCHECK(rill_net_format_error(p.c, "write", RILL_ETIMEOUT, msg, sizeof msg) > 0);
  FCHECK_STREQ(msg, expect);

  /* While the deadline stays passed, writes fail at once, writing nothing. */
  t0 = tu_now_ms();
  FCHECK_EQ(rill_net_write(p.c, "zz", 2, &written2), RILL_ETIMEOUT);
  FCHECK_EQ(written2, 0);
  FCHECK(tu_now_ms() - t0 < FU_AT_ONCE_MS);

  /* Without a deadline the connection writes again, and the peer gets
   * exactly the `written` bytes reported, then the new ones: the partial
   * count was neither hidden nor overstated. */
  FCHECK_EQ(rill_net_set_deadline(p.c, RILL_DEADLINE_WRITE, 0), 0);
  memset(&drain, 0, sizeof drain);
  drain.fd = p.peer;
  FCHECK_EQ(rill_waitgroup_new(&drain.wg), 0);
  rill_waitgroup_add(drain.wg, 1);
  FCHECK_EQ(rill_go(rill_fiber_base(), g20_drainer, &drain), 0);
  FCHECK_EQ(rill_net_write(p.c, g_data + written, 1000, &written2), 0);
  FCHECK_EQ(written2, 1000);
  FCHECK_EQ(rill_net_close_write(p.c), 0);
  FCHECK_EQ(rill_waitgroup_wait(drain.wg), 0);
  rill_waitgroup_free(drain.wg);
  FCHECK_EQ(drain.got, written + 1000);
  FCHECK_EQ(drain.matched, drain.got);
  fu_pair_close(&p);
}

static void G20_write_deadline_partial(void **state) {
  (void)state;
  fu_run_fiber(g20_main, NULL, LIMIT);
}

/* ---- G21: the peer vanishes mid-write ---------------------------------- */

struct g21 {
  struct fu_pair p;
  rill_waitgroup *wg;
  int rc;
  size_t written;
  int inside_write;
};

static void g21_writer(void *arg) {
  struct g21 *t = (struct g21 *)arg;
  t->inside_write = 1;
  t->rc = rill_net_write(t->p.c, g_data, BIG, &t->written);
  t->inside_write = 0;
  rill_waitgroup_done(t->wg);
}

static int is_peer_gone(int rc) { return rc == RILL_EPIPE || rc == RILL_ECONNRESET; }

static void g21_main(void *arg) {
  struct g21 *t = (struct g21 *)arg;
  char msg[512], expect[512], local[RILL_ADDRSTRLEN], remote[RILL_ADDRSTRLEN];
  unsigned char buf[4096];
  size_t w2 = 99;
  int rc;
  if (fu_pair_open(&t->p) != 0)
    return;
  fu_set_buffers(t->p.peer, 64 * 1024);
  FCHECK_EQ(rill_waitgroup_new(&t->wg), 0);
  rill_waitgroup_add(t->wg, 1);
  FCHECK_EQ(rill_go(rill_fiber_base(), g21_writer, t), 0);
  rill_sleep(100 * RILL_MSEC);
  FCHECK_EQ(t->inside_write, 1);
  /* Read a little, then close with unread data: the kernel resets. */
  FCHECK(fu_peer_read(t->p.peer, buf, sizeof buf, 1000) > 0);
  close(t->p.peer);
  t->p.peer = -1;
  FCHECK_EQ(rill_waitgroup_wait(t->wg), 0);
  FCHECK(is_peer_gone(t->rc));
  if (!is_peer_gone(t->rc))
    fprintf(stderr, "G21: write returned %d (%s)\n", t->rc, rill_strerror(t->rc));
  FCHECK(t->written > 0);
  FCHECK(t->written < BIG);

  /* Go's text: "write tcp L->R: write: broken pipe". */
  FCHECK(rill_net_local_addr(t->p.c, local, sizeof local) > 0);
  FCHECK(rill_net_remote_addr(t->p.c, remote, sizeof remote) > 0);
  snprintf(expect, sizeof expect, "write tcp %s->%s: write: %s", local, remote,
           t->rc == RILL_EPIPE ? "broken pipe" : "connection reset by peer");
  FCHECK(rill_net_format_error(t->p.c, "write", t->rc, msg, sizeof msg) > 0);
  FCHECK_STREQ(msg, expect);

  /* Later writes fail the same way, still without SIGPIPE. */
  rc = rill_net_write(t->p.c, "x", 1, &w2);
  FCHECK(is_peer_gone(rc));
  FCHECK_EQ(w2, 0);
  rill_waitgroup_free(t->wg);
  fu_pair_close(&t->p);
}

static void G21_peer_vanishes_mid_write(void **state) {
  struct g21 t;
  (void)state;
  fu_sigpipe_default();
  memset(&t, 0, sizeof t);
  fu_run_fiber(g21_main, &t, LIMIT);
}

/* ---- G22: writes after the peer closed: first fine, then EPIPE/RST ----- */

static void g22_main(void *arg) {
  struct fu_pair p;
  size_t written = 99;
  int rc = 0, i, failed_at = -1;
  (void)arg;
  if (fu_pair_open(&p) != 0)
    return;
  close(p.peer); /* a FIN: nothing was unread */
  p.peer = -1;
  rill_sleep(20 * RILL_MSEC);

  /* The first write lands in the local kernel buffer. */
  FCHECK_EQ(rill_net_write(p.c, "first", 5, &written), 0);
  FCHECK_EQ(written, 5);

  /* The peer's kernel answers with RST; a later write fails. */
  for (i = 0; i < 100; i++) {
    rill_sleep(10 * RILL_MSEC);
    rc = rill_net_write(p.c, "again", 5, &written);
    if (rc != 0) {
      failed_at = i;
      break;
    }
  }
  FCHECK(failed_at >= 0);
  FCHECK(is_peer_gone(rc));
  if (rc != 0)
    FCHECK_EQ(written, 0);
  rc = rill_net_write(p.c, "more", 4, &written);
  FCHECK(is_peer_gone(rc));
  fu_pair_close(&p);
}

static void G22_write_after_peer_closed(void **state) {
  (void)state;
  fu_sigpipe_default();
  fu_run_fiber(g22_main, NULL, LIMIT);
}

static int group_setup(void **state) {
  (void)state;
  g_data = malloc(BIG);
  if (!g_data)
    return -1;
  fu_fill(g_data, BIG, 0);
  return 0;
}

static int group_teardown(void **state) {
  (void)state;
  free(g_data);
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(G18_big_write_all_bytes, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(G19_writer_parks_until_peer_reads, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(G20_write_deadline_partial, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(G21_peer_vanishes_mid_write, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(G22_write_after_peer_closed, tu_setup_fds, tu_teardown_fds),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
