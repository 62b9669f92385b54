/* G27 through the blocking facade: reads are bounded. A peer floods a
 * connection nobody reads: the facade does not swallow the flood (TCP
 * holds the peer back once the kernel's buffers are full), and reading it
 * all afterwards goes into the caller's buffer, so rill's own memory stays
 * flat whatever the peer sends. A byte-counting allocator
 * (rill_set_allocator) measures the most rill ever held at once.
 *
 * The allocator is process-wide: this is a program of its own. */
#define _GNU_SOURCE 1

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "facade_util.c"

#define LIMIT 60000 /* a hang guard only */
#define FLOOD (16u * 1024u * 1024u)
#define CHUNK (64u * 1024u)
#define BOUND (1024u * 1024u) /* far below FLOOD: "flat" */

/* ---- a byte-counting allocator ------------------------------------------ */

/* Each block carries its size in a header big enough to keep the block's
 * alignment. */
#define HDR 16

static size_t live_bytes, peak_bytes;

static void *count_malloc(size_t n) {
  char *p = (char *)malloc(n + HDR);
  if (!p)
    return NULL;
  memcpy(p, &n, sizeof n);
  live_bytes += n;
  if (live_bytes > peak_bytes)
    peak_bytes = live_bytes;
  return p + HDR;
}

static void count_free(void *ptr) {
  size_t n;
  if (!ptr)
    return;
  memcpy(&n, (char *)ptr - HDR, sizeof n);
  live_bytes -= n;
  free((char *)ptr - HDR);
}

static void *count_realloc(void *ptr, size_t n) {
  void *q;
  size_t old;
  if (!ptr)
    return count_malloc(n);
  if (n == 0) {
    count_free(ptr);
    return NULL;
  }
  memcpy(&old, (char *)ptr - HDR, sizeof old);
  q = count_malloc(n);
  if (!q)
    return NULL;
  memcpy(q, ptr, old < n ? old : n);
  count_free(ptr);
  return q;
}

/* ---- G27 ------------------------------------------------------------------ */

struct g27 {
  struct fu_pair p;
  rill_waitgroup *done;
  size_t sent;
  int write_rc;
};

static void g27_flooder(void *arg) {
  struct g27 *t = (struct g27 *)arg;
  static unsigned char chunk[CHUNK];
  while (t->sent < FLOOD && t->write_rc == 0) {
    fu_fill(chunk, CHUNK, t->sent);
    t->write_rc = fu_peer_write(t->p.peer, chunk, CHUNK);
    if (t->write_rc == 0)
      t->sent += CHUNK;
  }
  rill_waitgroup_done(t->done);
}

static void g27_main(void *arg) {
  struct g27 *t = (struct g27 *)arg;
  static unsigned char buf[CHUNK];
  size_t baseline, got = 0, stalled_at;
  ssize_t n;
  int rounds = 0;
  if (fu_pair_open(&t->p) != 0)
    return;
  baseline = live_bytes;
  peak_bytes = live_bytes;
  FCHECK_EQ(rill_waitgroup_new(&t->done), 0);
  rill_waitgroup_add(t->done, 1);
  FCHECK_EQ(rill_go(rill_fiber_base(), g27_flooder, t), 0);

  /* Nobody reads: the flooder stalls once the kernel's buffers are full
   * (no progress for 100 ms), long before the whole flood is out. */
  do {
    stalled_at = t->sent;
    rill_sleep(100 * RILL_MSEC);
  } while (t->sent != stalled_at && ++rounds < 200);
  printf("# G27: the peer stalled after %zu of %u bytes; rill held at most %zu bytes more\n",
         stalled_at, FLOOD, peak_bytes - baseline);
  FCHECK(stalled_at < FLOOD);
  FCHECK(peak_bytes - baseline < BOUND);

  /* Reading it all goes through the caller's buffer. */
  while (got < FLOOD && (n = rill_net_read(t->p.c, buf, sizeof buf)) > 0) {
    size_t bad = fu_check_pattern(buf, (size_t)n, got);
    FCHECK_EQ(bad, (size_t)n);
    if (bad != (size_t)n)
      break;
    got += (size_t)n;
  }
  FCHECK_EQ(got, FLOOD);
  FCHECK_EQ(rill_waitgroup_wait(t->done), 0);
  FCHECK_EQ(t->write_rc, 0);
  printf("# G27: read %zu bytes; rill held at most %zu bytes more than before the flood\n", got,
         peak_bytes - baseline);
  FCHECK(peak_bytes - baseline < BOUND);
  rill_waitgroup_free(t->done);
  fu_pair_close(&t->p);
}

static void test_g27_facade_flood_is_bounded(void **state) {
  struct g27 t;
  (void)state;
  memset(&t, 0, sizeof t);
  fu_run_fiber(g27_main, &t, LIMIT);
  assert_int_equal(live_bytes, 0); /* and everything was given back */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_g27_facade_flood_is_bounded, tu_setup_fds, tu_teardown_fds),
  };
  assert_int_equal(rill_set_allocator(count_malloc, count_realloc, count_free), 0);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
