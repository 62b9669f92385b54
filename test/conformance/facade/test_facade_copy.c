/* rill_net_copy (include/rill/pipe.h): Go's io.Copy between two facade
 * connections. Returns 0 at the source's EOF with every byte delivered;
 * otherwise the first error with the exact count; deadlines, closes from
 * other fibers and a destination that vanishes end it as they end Go's.
 *
 * SIGPIPE keeps its default action: a write that raised it would kill the
 * test. */
#define _GNU_SOURCE 1

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "facade_util.c"

#define LIMIT 60000 /* a hang guard only */
#define MiB (1024u * 1024u)

struct copy_env {
  struct fu_pair src, dst; /* copy reads src.c, writes dst.c */
  rill_waitgroup *wg;
  uint64_t total;          /* what the source peer sends */
  int shut_source;         /* the source peer shuts its side after `total` */
  size_t dst_got;          /* what the destination peer read */
  size_t dst_matched;      /* of which matched the pattern */
  int dst_eof;
  int dst_reset_after;     /* the destination peer resets after this many bytes */
};

static void source_peer(void *arg) {
  struct copy_env *e = (struct copy_env *)arg;
  static unsigned char buf[64 * 1024];
  uint64_t sent = 0;
  while (sent < e->total) {
    size_t n = e->total - sent < sizeof buf ? (size_t)(e->total - sent) : sizeof buf;
    fu_fill(buf, n, sent);
    if (fu_peer_write(e->src.peer, buf, n) != 0)
      break;
    sent += n;
  }
  if (e->shut_source)
    shutdown(e->src.peer, SHUT_WR);
  rill_waitgroup_done(e->wg);
}

static void destination_peer(void *arg) {
  struct copy_env *e = (struct copy_env *)arg;
  static unsigned char buf[256 * 1024];
  for (;;) {
    ssize_t n = fu_peer_read(e->dst.peer, buf, sizeof buf, LIMIT);
    if (n <= 0) {
      e->dst_eof = n == 0;
      break;
    }
    if (e->dst_matched == e->dst_got)
      e->dst_matched += fu_check_pattern(buf, (size_t)n, e->dst_got);
    e->dst_got += (size_t)n;
    if (e->dst_reset_after && e->dst_got >= (size_t)e->dst_reset_after) {
      struct linger lg = {1, 0};
      setsockopt(e->dst.peer, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
      close(e->dst.peer);
      e->dst.peer = -1;
      break;
    }
  }
  rill_waitgroup_done(e->wg);
}

static void open_env(struct copy_env *e) {
  FCHECK_EQ(fu_pair_open(&e->src), 0);
  FCHECK_EQ(fu_pair_open(&e->dst), 0);
  FCHECK_EQ(rill_waitgroup_new(&e->wg), 0);
}

static void close_env(struct copy_env *e) {
  rill_waitgroup_wait(e->wg);
  rill_waitgroup_free(e->wg);
  fu_pair_close(&e->src);
  fu_pair_close(&e->dst);
}

/* ---- io.Copy: every byte, in order, then nil at EOF --------------------- */

static void copy_to_eof(void *arg) {
  struct copy_env *e = (struct copy_env *)arg;
  uint64_t written = 1;
  open_env(e);
  e->total = 8 * MiB + 777;
  e->shut_source = 1;
  rill_waitgroup_add(e->wg, 2);
  rill_go(rill_fiber_base(), source_peer, e);
  rill_go(rill_fiber_base(), destination_peer, e);
  FCHECK_EQ(rill_net_copy(e->dst.c, e->src.c, &written), 0);
  FCHECK(written == e->total);
  /* io.Copy does not close the destination; the caller does. */
  FCHECK_EQ(rill_net_close_write(e->dst.c), 0);
  close_env(e);
  FCHECK(e->dst_got == e->total);
  FCHECK(e->dst_matched == e->total);
  FCHECK_EQ(e->dst_eof, 1);
}

static void test_facade_copy_to_eof(void **state) {
  struct copy_env e;
  (void)state;
  memset(&e, 0, sizeof e);
  fu_run_fiber(copy_to_eof, &e, LIMIT);
}

/* ---- the source's read deadline ends it, with the count ---------------- */

static void copy_read_deadline(void *arg) {
  struct copy_env *e = (struct copy_env *)arg;
  uint64_t written = 1;
  unsigned char buf[1000];
  open_env(e);
  fu_fill(buf, sizeof buf, 0);
  FCHECK_EQ(fu_peer_write(e->src.peer, buf, sizeof buf), 0);
  FCHECK_EQ(rill_net_set_deadline(e->src.c, RILL_DEADLINE_READ, rill_time_now() + 100 * RILL_MSEC), 0);
  FCHECK_EQ(rill_net_copy(e->dst.c, e->src.c, &written), RILL_ETIMEOUT);
  FCHECK(written == sizeof buf);
  FCHECK_EQ(fu_peer_read_full(e->dst.peer, buf, sizeof buf, LIMIT), 0);
  FCHECK_EQ(fu_check_pattern(buf, sizeof buf, 0), sizeof buf);
  close_env(e);
}

static void test_facade_copy_read_deadline(void **state) {
  struct copy_env e;
  (void)state;
  memset(&e, 0, sizeof e);
  fu_run_fiber(copy_read_deadline, &e, LIMIT);
}

/* ---- the destination's write deadline, against a peer that never reads -- */

static void copy_write_deadline(void *arg) {
  struct copy_env *e = (struct copy_env *)arg;
  uint64_t written = 0;
  open_env(e);
  e->total = 64 * MiB; /* far more than the kernel buffers hold */
  rill_waitgroup_add(e->wg, 1);
  rill_go(rill_fiber_base(), source_peer, e);
  FCHECK_EQ(rill_net_set_deadline(e->dst.c, RILL_DEADLINE_WRITE, rill_time_now() + 300 * RILL_MSEC), 0);
  FCHECK_EQ(rill_net_copy(e->dst.c, e->src.c, &written), RILL_ETIMEOUT);
  /* How much went before the deadline depends on the machine's speed
   * (nothing, on a slow one): only the exact count is promised. */
  FCHECK(written < e->total);
  /* Every byte counted reached the destination peer, in order. */
  rill_net_close(e->src.c); /* the source peer's writes now fail: it ends */
  FCHECK_EQ(rill_net_close_write(e->dst.c), 0);
  {
    static unsigned char buf[256 * 1024];
    size_t got = 0, matched = 0;
    for (;;) {
      ssize_t n = fu_peer_read(e->dst.peer, buf, sizeof buf, LIMIT);
      if (n <= 0)
        break;
      if (matched == got)
        matched += fu_check_pattern(buf, (size_t)n, got);
      got += (size_t)n;
    }
    FCHECK(got == written);
    FCHECK(matched == got);
  }
  close_env(e);
}

static void test_facade_copy_write_deadline(void **state) {
  struct copy_env e;
  (void)state;
  memset(&e, 0, sizeof e);
  fu_run_fiber(copy_write_deadline, &e, LIMIT);
}

/* ---- the destination resets mid-stream: an error, never a SIGPIPE ------- */

static void copy_destination_reset(void *arg) {
  struct copy_env *e = (struct copy_env *)arg;
  uint64_t written = 0;
  int err;
  open_env(e);
  e->total = 64 * MiB;
  e->dst_reset_after = 1 * MiB;
  rill_waitgroup_add(e->wg, 2);
  rill_go(rill_fiber_base(), source_peer, e);
  rill_go(rill_fiber_base(), destination_peer, e);
  err = rill_net_copy(e->dst.c, e->src.c, &written);
  FCHECK(err == -ECONNRESET || err == -EPIPE);
  FCHECK(written >= 1 * MiB && written < e->total);
  rill_net_close(e->src.c); /* ends the source peer */
  close_env(e);
  FCHECK(e->dst_matched == e->dst_got);
}

static void test_facade_copy_destination_reset(void **state) {
  struct copy_env e;
  (void)state;
  memset(&e, 0, sizeof e);
  fu_run_fiber(copy_destination_reset, &e, LIMIT);
}

/* ---- another fiber closes or frees the source while the copy parks ----- */

struct closer {
  rill_net_conn *c;
  int free_it;
};

static void close_later(void *arg) {
  struct closer *k = (struct closer *)arg;
  rill_sleep(50 * RILL_MSEC);
  if (k->free_it)
    rill_net_conn_free(k->c);
  else
    FCHECK_EQ(rill_net_close(k->c), 0);
}

static void copy_closed_under_it(void *arg) {
  struct copy_env *e = (struct copy_env *)arg;
  int free_it;
  for (free_it = 0; free_it < 2; free_it++) {
    struct closer k;
    uint64_t written = 1;
    open_env(e);
    k.c = e->src.c;
    k.free_it = free_it;
    rill_go(rill_fiber_base(), close_later, &k);
    FCHECK_EQ(rill_net_copy(e->dst.c, e->src.c, &written), RILL_ECLOSED);
    FCHECK(written == 0);
    if (free_it)
      e->src.c = NULL; /* freed by the other fiber; the copy let go of it */
    close_env(e);
  }
}

static void test_facade_copy_closed_under_it(void **state) {
  struct copy_env e;
  (void)state;
  memset(&e, 0, sizeof e);
  fu_run_fiber(copy_closed_under_it, &e, LIMIT);
}

/* ---- bad input ------------------------------------------------------------ */

static void copy_bad_input(void *arg) {
  struct copy_env *e = (struct copy_env *)arg;
  uint64_t written = 1;
  open_env(e);
  FCHECK_EQ(rill_net_copy(NULL, e->src.c, &written), RILL_EINVAL);
  FCHECK(written == 0);
  FCHECK_EQ(rill_net_copy(e->dst.c, NULL, NULL), RILL_EINVAL);
  FCHECK_EQ(rill_net_copy(e->src.c, e->src.c, NULL), RILL_EINVAL);
  rill_net_close(e->dst.c);
  FCHECK_EQ(rill_net_copy(e->dst.c, e->src.c, NULL), RILL_ECLOSED);
  close_env(e);
}

static void test_facade_copy_bad_input(void **state) {
  struct copy_env e;
  int dummy;
  (void)state;
  memset(&e, 0, sizeof e);
  fu_run_fiber(copy_bad_input, &e, LIMIT);
  /* Outside a fiber: refused before either handle is touched. */
  assert_int_equal(rill_net_copy((rill_net_conn *)&dummy, (rill_net_conn *)&e, NULL), RILL_ENOTFIBER);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_facade_copy_to_eof),
      cmocka_unit_test(test_facade_copy_read_deadline),
      cmocka_unit_test(test_facade_copy_write_deadline),
      cmocka_unit_test(test_facade_copy_destination_reset),
      cmocka_unit_test(test_facade_copy_closed_under_it),
      cmocka_unit_test(test_facade_copy_bad_input),
  };
  fu_sigpipe_default();
  return cmocka_run_group_tests(tests, NULL, NULL);
}
