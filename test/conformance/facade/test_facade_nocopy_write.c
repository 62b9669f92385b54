/* G32 through the blocking facade: rill_net_write() writes from the
 * caller's buffer and parks, it never copies it. It used to copy whatever
 * the kernel did not take (64 MiB to a peer that does not read cost about
 * 64 MiB). And since the bytes now go from the caller's buffer, rill must be
 * done with that buffer when the call returns, however the write ended: the
 * write deadline, a close or a free from another fiber, out of memory. Each
 * of those tests overwrites and frees its buffer the moment the call
 * returns; bytes sent from it later would break the pattern the peer
 * checks (and under AddressSanitizer, reading it is a use-after-free).
 *
 * Last, the handle's addresses after a close: it no longer keeps a second
 * copy of them while its rill_conn lives.
 *
 * A program of its own: it installs a counting allocator, which must be in
 * place before any base exists. */
#define _GNU_SOURCE 1

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "facade_util.c"

#define LIMIT 60000 /* a hang guard only */
#define MiB ((size_t)1024 * 1024)

/* ---- an allocator that counts bytes ------------------------------------ */

/* Every block carries its size in a header, so frees are counted too. */
typedef union {
  size_t size;
  long double align; /* the strictest alignment malloc gives, in C99 */
} block_hdr;

static int64_t g_live_bytes, g_peak_bytes;
static int g_fail_allocs; /* fail every allocation while set */

static void count(int64_t delta) {
  g_live_bytes += delta;
  if (g_live_bytes > g_peak_bytes)
    g_peak_bytes = g_live_bytes;
}

static void *counting_malloc(size_t size) {
  block_hdr *h;
  if (g_fail_allocs || !(h = malloc(sizeof *h + size)))
    return NULL;
  h->size = size;
  count((int64_t)size);
  return h + 1;
}

static void counting_free(void *p) {
  block_hdr *h;
  if (!p)
    return;
  h = (block_hdr *)p - 1;
  count(-(int64_t)h->size);
  free(h);
}

static void *counting_realloc(void *p, size_t size) {
  block_hdr *h, *n;
  if (!p)
    return counting_malloc(size);
  if (size == 0) {
    counting_free(p);
    return NULL;
  }
  h = (block_hdr *)p - 1;
  if (g_fail_allocs)
    return NULL;
  {
    size_t old = h->size;
    if (!(n = realloc(h, sizeof *n + size)))
      return NULL;
    n->size = size;
    count((int64_t)size - (int64_t)old);
  }
  return n + 1;
}

/* The peak of live bytes from now on starts at the live bytes now. */
static int64_t peak_reset(void) {
  g_peak_bytes = g_live_bytes;
  return g_live_bytes;
}

/* ---- helpers ----------------------------------------------------------- */

/* Reads from the raw peer until EOF, checking the pattern from offset 0.
 * Returns the count; *matched is how many bytes from the start kept the
 * pattern. */
static size_t peer_read_to_eof(int fd, size_t *matched) {
  static unsigned char buf[256 * 1024];
  size_t total = 0;
  *matched = 0;
  for (;;) {
    ssize_t n = fu_peer_read(fd, buf, sizeof buf, 10000);
    if (n <= 0) {
      FCHECK_EQ(n, 0); /* EOF, not an error or the hang guard */
      return total;
    }
    if (*matched == total)
      *matched += fu_check_pattern(buf, (size_t)n, total);
    total += (size_t)n;
  }
}

/* Sleeps until `*flag` is set or `ms` passed; returns the flag. */
static int sleep_until(const int *flag, unsigned ms) {
  uint64_t end = tu_now_ms() + ms;
  while (!*flag && tu_now_ms() < end)
    rill_sleep(1 * RILL_MSEC);
  return *flag;
}

/* A malloc'd (not rill-allocated) buffer of `len` pattern bytes from
 * `offset`. */
static unsigned char *pattern_buffer(size_t len, uint64_t offset) {
  unsigned char *buf = malloc(len);
  if (buf)
    fu_fill(buf, len, offset);
  return buf;
}

/* What a caller does with its buffer once the write returned: reuses it,
 * then frees it. Through a volatile pointer, or the compiler drops the
 * memset as a dead store before free(). */
static void *(*volatile scribble)(void *, int, size_t) = memset;

static void scribble_and_free(unsigned char *buf, size_t len) {
  scribble(buf, 0xEE, len);
  free(buf);
}

/* ---- G32: 64 MiB to a peer that does not read -------------------------- */

#define G32_LEN (64 * MiB)

struct g32 {
  struct fu_pair p;
  unsigned char *data;
  int rc;
  size_t written;
  int writer_done;
  int ticks;
  int stop_ticking;
};

static void g32_writer(void *arg) {
  struct g32 *t = arg;
  t->rc = rill_net_write(t->p.c, t->data, G32_LEN, &t->written);
  t->writer_done = 1;
}

/* Another fiber on the same base: it must keep running while the writer
 * waits for the peer. */
static void g32_ticker(void *arg) {
  struct g32 *t = arg;
  while (!t->stop_ticking) {
    rill_sleep(1 * RILL_MSEC);
    t->ticks++;
  }
}

static void g32_main(void *arg) {
  struct g32 *t = arg;
  rill_base *base = rill_fiber_base();
  int64_t live_before, peak_growth;
  size_t got = 0;
  static unsigned char buf[256 * 1024];
  if (fu_pair_open(&t->p) != 0)
    return;
  FCHECK((t->data = pattern_buffer(G32_LEN, 0)) != NULL);
  if (!t->data) {
    fu_pair_close(&t->p);
    return;
  }

  live_before = peak_reset();
  FCHECK_EQ(rill_go(base, g32_writer, t), 0);
  FCHECK_EQ(rill_go(base, g32_ticker, t), 0);
  /* The peer reads nothing: the writer parks with the kernel full, and the
   * ticker keeps ticking meanwhile. */
  while (t->ticks < 50 && !t->writer_done)
    rill_sleep(1 * RILL_MSEC);
  FCHECK(!t->writer_done);
  FCHECK(t->ticks >= 50);
  peak_growth = g_peak_bytes - live_before;
  if (peak_growth >= (int64_t)MiB)
    fprintf(stderr, "G32: rill allocated %lld bytes while writing %zu\n", (long long)peak_growth,
            (size_t)G32_LEN);
  FCHECK(peak_growth < (int64_t)MiB); /* a copy would be ~60 MiB */

  /* The peer reads everything, and it is exactly what was written. */
  while (got < G32_LEN) {
    ssize_t n = fu_peer_read(t->p.peer, buf, sizeof buf, 10000);
    FCHECK(n > 0);
    if (n <= 0)
      break;
    FCHECK_EQ(fu_check_pattern(buf, (size_t)n, got), (size_t)n);
    got += (size_t)n;
  }
  FCHECK_EQ(got, G32_LEN);
  FCHECK(sleep_until(&t->writer_done, 10000));
  FCHECK_EQ(t->rc, 0);
  FCHECK_EQ(t->written, G32_LEN);
  t->stop_ticking = 1;
  FCHECK(g_peak_bytes - live_before < (int64_t)MiB);
  fu_pair_close(&t->p);
  free(t->data);
}

static void G32_big_write_parks_without_copying(void **state) {
  struct g32 t;
  (void)state;
  memset(&t, 0, sizeof t);
  fu_run_fiber(g32_main, &t, LIMIT);
}

/* ---- G20: the write deadline passes mid-write --------------------------- */

#define BIG (16 * MiB)
#define NEXT_LEN (256 * 1024)

struct deadline_case {
  struct fu_pair p;
  size_t first, second; /* the counts of the two writes */
  int writes_done, peer_done;
  size_t got, matched;
};

static void deadline_peer(void *arg) {
  struct deadline_case *t = arg;
  /* Reads only once the first write has returned. */
  sleep_until(&t->writes_done, LIMIT);
  t->got = peer_read_to_eof(t->p.peer, &t->matched);
  t->peer_done = 1;
}

static void deadline_main(void *arg) {
  struct deadline_case *t = arg;
  rill_base *base = rill_fiber_base();
  unsigned char *data, *next;
  int rc;
  if (fu_pair_open(&t->p) != 0)
    return;
  fu_set_buffers(t->p.peer, 64 * 1024);
  FCHECK_EQ(rill_go(base, deadline_peer, t), 0);
  data = pattern_buffer(BIG, 0);
  FCHECK(data != NULL);
  if (!data)
    return;

  FCHECK_EQ(rill_net_set_deadline(t->p.c, RILL_DEADLINE_WRITE, rill_time_now() + 200 * RILL_MSEC), 0);
  rc = rill_net_write(t->p.c, data, BIG, &t->first);
  scribble_and_free(data, BIG);
  FCHECK_EQ(rc, RILL_ETIMEOUT);
  FCHECK(t->first > 0 && t->first < BIG);

  /* A new deadline; the next write carries on from byte `first`, and the
   * peer, reading now, gets it while that write parks. */
  FCHECK_EQ(rill_net_set_deadline(t->p.c, RILL_DEADLINE_WRITE, 0), 0);
  next = pattern_buffer(NEXT_LEN, t->first);
  FCHECK(next != NULL);
  t->writes_done = 1;
  if (next) {
    FCHECK_EQ(rill_net_write(t->p.c, next, NEXT_LEN, &t->second), 0);
    FCHECK_EQ(t->second, NEXT_LEN);
    scribble_and_free(next, NEXT_LEN);
  }
  FCHECK_EQ(rill_net_close(t->p.c), 0); /* the peer reads EOF after the bytes */
  FCHECK(sleep_until(&t->peer_done, LIMIT));
  /* Exactly the first `first` bytes, then the next write's: none lost,
   * none sent twice, none from the scribbled buffer. */
  FCHECK_EQ(t->got, t->first + t->second);
  FCHECK_EQ(t->matched, t->got);
  fu_pair_close(&t->p);
}

static void G20_deadline_mid_write_exact_and_buffer_released(void **state) {
  struct deadline_case t;
  (void)state;
  memset(&t, 0, sizeof t);
  fu_run_fiber(deadline_main, &t, LIMIT);
}

/* ---- a close or free from another fiber while the writer is parked ----- */

struct close_case {
  struct fu_pair p;
  int use_free; /* rill_net_conn_free rather than rill_net_close */
  int rc;
  size_t written;
  int writer_started, writer_done;
};

static void close_writer(void *arg) {
  struct close_case *t = arg;
  unsigned char *data = pattern_buffer(BIG, 0);
  FCHECK(data != NULL);
  if (!data)
    return;
  t->writer_started = 1;
  t->rc = rill_net_write(t->p.c, data, BIG, &t->written);
  scribble_and_free(data, BIG);
  t->writer_done = 1;
}

static void close_main(void *arg) {
  struct close_case *t = arg;
  size_t got, matched;
  if (fu_pair_open(&t->p) != 0)
    return;
  fu_set_buffers(t->p.peer, 64 * 1024);
  FCHECK_EQ(rill_go(rill_fiber_base(), close_writer, t), 0);
  sleep_until(&t->writer_started, LIMIT);
  rill_sleep(100 * RILL_MSEC); /* the kernel fills and the writer parks */
  FCHECK(!t->writer_done);
  if (t->use_free) {
    rill_net_conn_free(t->p.c);
    t->p.c = NULL;
  } else {
    FCHECK_EQ(rill_net_close(t->p.c), 0);
  }
  FCHECK(sleep_until(&t->writer_done, 10000));
  FCHECK_EQ(t->rc, RILL_ECLOSED);
  FCHECK(t->written > 0 && t->written < BIG);
  /* The peer gets exactly the bytes counted, then EOF: nothing this side
   * held unread, so the close ends with FIN and what the kernel took
   * arrives. */
  got = peer_read_to_eof(t->p.peer, &matched);
  FCHECK_EQ(got, t->written);
  FCHECK_EQ(matched, got);
  fu_pair_close(&t->p);
}

static void close_while_writer_parked(void **state) {
  struct close_case t;
  (void)state;
  memset(&t, 0, sizeof t);
  fu_run_fiber(close_main, &t, LIMIT);
}

static void free_while_writer_parked(void **state) {
  struct close_case t;
  (void)state;
  memset(&t, 0, sizeof t);
  t.use_free = 1;
  fu_run_fiber(close_main, &t, LIMIT);
}

/* ---- out of memory mid-write ------------------------------------------- */

/* On a fresh base the write that has to wait needs memory for its place in
 * the queue. Without it: RILL_ENOMEM with the exact count of what did go,
 * the buffer released, and the connection carries on from there. */
struct oom_case {
  struct fu_pair p;
  size_t first, second;
  int rc;
  int writes_done, peer_done;
  size_t got, matched;
};

static void oom_peer(void *arg) {
  struct oom_case *t = arg;
  sleep_until(&t->writes_done, LIMIT);
  t->got = peer_read_to_eof(t->p.peer, &t->matched);
  t->peer_done = 1;
}

static void oom_main(void *arg) {
  struct oom_case *t = arg;
  unsigned char *data, *next;
  if (fu_pair_open(&t->p) != 0)
    return;
  fu_set_buffers(t->p.peer, 64 * 1024);
  FCHECK_EQ(rill_go(rill_fiber_base(), oom_peer, t), 0);
  data = pattern_buffer(BIG, 0);
  FCHECK(data != NULL);
  if (!data)
    return;
  g_fail_allocs = 1;
  t->rc = rill_net_write(t->p.c, data, BIG, &t->first);
  g_fail_allocs = 0;
  scribble_and_free(data, BIG);
  FCHECK_EQ(t->rc, RILL_ENOMEM);
  FCHECK(t->first > 0 && t->first < BIG);

  next = pattern_buffer(NEXT_LEN, t->first);
  FCHECK(next != NULL);
  t->writes_done = 1;
  if (next) {
    FCHECK_EQ(rill_net_write(t->p.c, next, NEXT_LEN, &t->second), 0);
    FCHECK_EQ(t->second, NEXT_LEN);
    scribble_and_free(next, NEXT_LEN);
  }
  FCHECK_EQ(rill_net_close(t->p.c), 0);
  FCHECK(sleep_until(&t->peer_done, LIMIT));
  FCHECK_EQ(t->got, t->first + t->second);
  FCHECK_EQ(t->matched, t->got);
  fu_pair_close(&t->p);
}

static void out_of_memory_mid_write_exact_and_buffer_released(void **state) {
  struct oom_case t;
  (void)state;
  memset(&t, 0, sizeof t);
  fu_run_fiber(oom_main, &t, LIMIT);
}

/* ---- addresses after the connection under the handle is gone ---------- */

/* The handle keeps no copy of the addresses while its rill_conn lives (an
 * idle connection's size); when that goes, after the close, the handle
 * keeps them, so Go's LocalAddr/RemoteAddr and the error texts still name
 * them. If keeping them finds no memory, they say RILL_ENOMEM and the texts
 * go without them; nothing crashes. */
struct addrs_case {
  int fail_keeping;
};

static void addrs_main(void *arg) {
  struct addrs_case *t = arg;
  struct fu_pair p;
  char local[RILL_ADDRSTRLEN], remote[RILL_ADDRSTRLEN], now[RILL_ADDRSTRLEN], msg[512], expect[512];
  if (fu_pair_open(&p) != 0)
    return;
  FCHECK(rill_net_local_addr(p.c, local, sizeof local) > 0);
  FCHECK(rill_net_remote_addr(p.c, remote, sizeof remote) > 0);
  FCHECK_STREQ(remote, p.addr);
  FCHECK_EQ(rill_net_local_addr(p.c, now, strlen(local)), RILL_EINVAL); /* no room for the NUL */
  rill_sleep(1 * RILL_MSEC); /* the fiber's sleep timer exists before allocations fail */
  g_fail_allocs = t->fail_keeping;
  FCHECK_EQ(rill_net_close(p.c), 0);
  if (t->fail_keeping) {
    /* Until the close has completed in the loop, the rill_conn answers. */
    uint64_t end = tu_now_ms() + 10000;
    while (rill_net_local_addr(p.c, now, sizeof now) > 0 && tu_now_ms() < end)
      rill_sleep(1 * RILL_MSEC);
    g_fail_allocs = 0;
    FCHECK_EQ(rill_net_local_addr(p.c, now, sizeof now), RILL_ENOMEM);
    FCHECK_EQ(rill_net_remote_addr(p.c, now, sizeof now), RILL_ENOMEM);
    FCHECK(rill_net_format_error(p.c, "read", RILL_ECLOSED, msg, sizeof msg) > 0);
    FCHECK(strstr(msg, "use of closed network connection") != NULL);
  } else {
    rill_sleep(20 * RILL_MSEC); /* the close completes in the loop */
    FCHECK_EQ(rill_net_local_addr(p.c, now, sizeof now), (int)strlen(local));
    FCHECK_STREQ(now, local);
    FCHECK_EQ(rill_net_remote_addr(p.c, now, sizeof now), (int)strlen(remote));
    FCHECK_STREQ(now, remote);
    FCHECK_EQ(rill_net_remote_addr(p.c, now, strlen(remote)), RILL_EINVAL);
    snprintf(expect, sizeof expect, "read tcp %s->%s: use of closed network connection", local, remote);
    FCHECK(rill_net_format_error(p.c, "read", RILL_ECLOSED, msg, sizeof msg) > 0);
    FCHECK_STREQ(msg, expect);
  }
  fu_pair_close(&p);
}

static void addresses_after_close(void **state) {
  struct addrs_case t = {0};
  (void)state;
  fu_run_fiber(addrs_main, &t, LIMIT);
}

static void addresses_after_close_out_of_memory(void **state) {
  struct addrs_case t = {1};
  (void)state;
  fu_run_fiber(addrs_main, &t, LIMIT);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(G32_big_write_parks_without_copying, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(G20_deadline_mid_write_exact_and_buffer_released, tu_setup_fds,
                                      tu_teardown_fds),
      cmocka_unit_test_setup_teardown(close_while_writer_parked, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(free_while_writer_parked, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(out_of_memory_mid_write_exact_and_buffer_released, tu_setup_fds,
                                      tu_teardown_fds),
      cmocka_unit_test_setup_teardown(addresses_after_close, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(addresses_after_close_out_of_memory, tu_setup_fds, tu_teardown_fds),
  };
  fu_sigpipe_default();
  if (rill_set_allocator(counting_malloc, counting_realloc, counting_free) != 0)
    return 1;
  return cmocka_run_group_tests(tests, NULL, NULL);
}
