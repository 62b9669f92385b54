/* The facade allocates through rill's allocator (rill_set_allocator), and a
 * failed allocation is RILL_ENOMEM that loses nothing: no byte of a stream,
 * no handle, no fiber left half made. It used to allocate with new,
 * std::deque, std::vector and malloc, out of reach of the allocator.
 *
 * A program of its own: the allocator is process-global and must be
 * installed before any base exists. It counts blocks (test_util's counting
 * allocator) and can fail the next N allocations. */
#define _GNU_SOURCE 1

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "facade_util.c"

#define LIMIT 60000 /* a hang guard only */

static int g_fail_next; /* allocations still to fail */

static void *failing_malloc(size_t size) {
  if (g_fail_next > 0) {
    g_fail_next--;
    return NULL;
  }
  return tu_malloc(size);
}

static void *failing_realloc(void *ptr, size_t size) {
  if (g_fail_next > 0 && size > 0) {
    g_fail_next--;
    return NULL;
  }
  return tu_realloc(ptr, size);
}

static int64_t live_blocks(void) {
  tu_alloc_counts c;
  tu_alloc_get(&c);
  return c.live;
}

static uint64_t mallocs(void) {
  tu_alloc_counts c;
  tu_alloc_get(&c);
  return c.mallocs + c.reallocs;
}

static void assert_no_foreign_blocks(void) {
  tu_alloc_counts c;
  tu_alloc_get(&c);
  assert_int_equal(c.foreign, 0);
}

/* ---- wait groups and fibers ------------------------------------------- */

static void noop(void *arg) { (*(int *)arg)++; }

static void waitgroup_and_go_out_of_memory(void **state) {
  rill_waitgroup *wg = NULL;
  int64_t live = live_blocks();
  rill_base *base = tu_base_new();
  int64_t live_with_base = live_blocks();
  uint64_t before;
  int ran = 0, started = 0;
  (void)state;

  g_fail_next = 1;
  assert_int_equal(rill_waitgroup_new(&wg), RILL_ENOMEM);
  g_fail_next = 0;
  assert_null(wg);
  before = mallocs();
  assert_int_equal(rill_waitgroup_new(&wg), 0);
  assert_true(mallocs() > before); /* through rill's allocator */
  rill_waitgroup_free(wg);
  assert_int_equal(live_blocks(), live_with_base);

  /* rill_go failing at each of its allocations in turn: RILL_ENOMEM and
   * nothing left behind, or a fiber that runs. */
  for (int k = 1; k <= 6; k++) {
    int rc;
    g_fail_next = k; /* the first k allocations fail */
    rc = rill_go(base, noop, &ran);
    g_fail_next = 0;
    if (rc == 0)
      started++;
    else
      assert_int_equal(rc, RILL_ENOMEM);
  }
  g_fail_next = 1;
  assert_int_equal(rill_go(base, noop, &ran), RILL_ENOMEM);
  g_fail_next = 0;
  assert_int_equal(rill_fiber_count(base), (size_t)started);
  assert_int_equal(rill_go(base, noop, &ran), 0);
  started++;
  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  assert_int_equal(ran, started);
  assert_int_equal(rill_fiber_count(base), 0);
  tu_base_free(base);
  assert_int_equal(live_blocks(), live);
  assert_no_foreign_blocks();
}

/* ---- listen, accept, dial ---------------------------------------------- */

struct net_oom {
  rill_net_listener *l;
  char addr[RILL_ADDRSTRLEN];
  int accept_rcs[4];
  int accepts;
  rill_waitgroup *wg;
};

static void oom_acceptor(void *arg) {
  struct net_oom *t = (struct net_oom *)arg;
  for (;;) {
    rill_net_conn *c = NULL;
    int rc = rill_net_accept(t->l, &c);
    if (rc == RILL_ECLOSED)
      break;
    if (t->accepts < 4)
      t->accept_rcs[t->accepts] = rc;
    t->accepts++;
    if (rc == 0)
      rill_net_conn_free(c);
    rill_waitgroup_done(t->wg);
  }
}

static void net_oom_main(void *arg) {
  struct net_oom *t = (struct net_oom *)arg;
  rill_net_conn *c = NULL;
  int raw, port;
  struct sockaddr_in sin;

  g_fail_next = 1;
  FCHECK_EQ(rill_net_listen("tcp", "127.0.0.1:0", NULL, &t->l), RILL_ENOMEM);
  g_fail_next = 0;
  FCHECK_EQ(rill_net_listen("tcp", "127.0.0.1:0", NULL, &t->l), 0);
  if (!t->l)
    return;
  FCHECK(rill_net_listener_addr(t->l, t->addr, sizeof t->addr) > 0);
  port = atoi(strrchr(t->addr, ':') + 1);
  FCHECK_EQ(rill_waitgroup_new(&t->wg), 0);
  FCHECK_EQ(rill_go(rill_fiber_base(), oom_acceptor, t), 0);
  FCHECK_EQ(rill_yield(), 0); /* the acceptor parks */

  /* A connection arrives when the facade cannot wrap it: the acceptor gets
   * RILL_ENOMEM, the connection is refused, and the next one is served. */
  memset(&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sin.sin_port = htons((uint16_t)port);
  rill_waitgroup_add(t->wg, 1);
  g_fail_next = 1000000; /* everything fails until the acceptor returns */
  raw = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  FCHECK(raw >= 0);
  FCHECK_EQ(connect(raw, (struct sockaddr *)&sin, sizeof sin), 0);
  FCHECK_EQ(rill_waitgroup_wait(t->wg), 0);
  g_fail_next = 0;
  FCHECK_EQ(t->accept_rcs[0], RILL_ENOMEM);
  close(raw);

  /* Dial: failing at once is RILL_ENOMEM; then it works, and the acceptor
   * serves it. */
  g_fail_next = 1000000;
  FCHECK_EQ(rill_net_dial("tcp", t->addr, NULL, &c, NULL, 0), RILL_ENOMEM);
  g_fail_next = 0;
  FCHECK(c == NULL);
  rill_waitgroup_add(t->wg, 1);
  FCHECK_EQ(rill_net_dial("tcp", t->addr, NULL, &c, NULL, 0), 0);
  FCHECK_EQ(rill_waitgroup_wait(t->wg), 0);
  FCHECK_EQ(t->accept_rcs[t->accepts - 1], 0);
  rill_net_conn_free(c);
  rill_net_listener_free(t->l);
  rill_waitgroup_free(t->wg);
}

static void listen_accept_dial_out_of_memory(void **state) {
  struct net_oom t;
  int64_t live = live_blocks();
  (void)state;
  memset(&t, 0, sizeof t);
  fu_run_fiber(net_oom_main, &t, LIMIT);
  assert_int_equal(live_blocks(), live);
  assert_no_foreign_blocks();
}

/* ---- reading with allocations failing ---------------------------------- */

/* The peer sends a stream and closes; the reader takes it 7 bytes at a
 * time while the next allocation fails before every read. What a read
 * leaves stays with the connection (the facade reserves room to keep it
 * should the end come); failing that, the bytes stay where they were. Every
 * byte arrives, in order, then EOF. */
#define STREAM_LEN 5000

static void read_oom_main(void *arg) {
  struct fu_pair p;
  unsigned char out[STREAM_LEN], in[STREAM_LEN + 16];
  size_t got = 0;
  int enomem = 0, rounds = 0;
  ssize_t n = 0;
  (void)arg;
  if (fu_pair_open(&p) != 0)
    return;
  fu_fill(out, sizeof out, 0);
  FCHECK_EQ(fu_peer_write(p.peer, out, sizeof out), 0);
  FCHECK_EQ(shutdown(p.peer, SHUT_WR), 0);
  rill_sleep(20 * RILL_MSEC); /* all of it, and the FIN, wait in the kernel */
  while (rounds++ < 100000) {
    g_fail_next = 1;
    n = rill_net_read(p.c, in + got, 7);
    g_fail_next = 0;
    if (n > 0) {
      got += (size_t)n;
      continue;
    }
    if (n == RILL_ENOMEM) {
      enomem++; /* said so, and lost nothing: read again */
      continue;
    }
    break;
  }
  FCHECK_EQ(n, RILL_EOF);
  FCHECK_EQ(got, STREAM_LEN);
  FCHECK_EQ(fu_check_pattern(in, got, 0), got);
  fu_pair_close(&p);
}

static void reads_lose_nothing_out_of_memory(void **state) {
  int64_t live = live_blocks();
  (void)state;
  fu_run_fiber(read_oom_main, NULL, LIMIT);
  assert_int_equal(live_blocks(), live);
  assert_no_foreign_blocks();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(waitgroup_and_go_out_of_memory, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(listen_accept_dial_out_of_memory, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(reads_lose_nothing_out_of_memory, tu_setup_fds, tu_teardown_fds),
  };
  if (rill_set_allocator(failing_malloc, failing_realloc, tu_free) != 0)
    return 1;
  return cmocka_run_group_tests(tests, NULL, NULL);
}
