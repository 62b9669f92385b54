/* 10,000 connections held open at once through the blocking facade, each a
 * fiber on both ends: a facade listener whose accept fiber starts one
 * handler fiber per connection, and one client fiber per connection that
 * dials, exchanges one message, waits until every connection is open, then
 * closes. RLIMIT_NOFILE is raised to the hard limit first; if that does not
 * allow 10,000 connections (two descriptors each), the test uses as many
 * as fit and says how many. The poll backend scans every descriptor on
 * every wait, so 20,000 descriptors make the test quadratic there: it holds
 * POLL_WANT connections instead, which checks the same behaviour.
 *
 * Every wait is for an event (a wait group); the only clock is the
 * watchdog, a generous hang guard for a loaded machine. */
#define _GNU_SOURCE 1

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "rill.h"
#include "test_util.h"

/* ThreadSanitizer gives every fiber its own thread state (a trace of more
 * than 1 MiB): 20,000 fibers exhaust its memory, so it gets fewer. */
#if defined(__SANITIZE_THREAD__)
#define WANT 1500
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define WANT 1500
#endif
#endif
#ifndef WANT
#define WANT 10000
#endif
#define POLL_WANT 2000
#define BATCH 250          /* dials in flight at once, within the backlog */
#define STACK (64 * 1024)  /* per fiber: 20,000 of them */
#define FD_SLACK 50
#define HANG_GUARD_MS 600000 /* a hang guard only: ctest allows 900 s */

#include "fiber_check.h"

struct k10;

struct client {
  struct k10 *k;
  uint32_t id;
};

struct k10 {
  int n;
  rill_net_listener *l;
  char addr[RILL_ADDRSTRLEN];
  rill_waitgroup *batch, *release, *handlers, *echoed;
  struct client *clients;
  int accepted, accept_rc;
  int exchanged, open_now, max_open, closed;
  int server_echoed, server_eof;
  int fds_held;
  size_t fibers_held;
};

static void put32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)(v >> 24);
  p[1] = (unsigned char)(v >> 16);
  p[2] = (unsigned char)(v >> 8);
  p[3] = (unsigned char)v;
}

static uint32_t get32(const unsigned char *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static ssize_t read_full(rill_net_conn *c, unsigned char *buf, size_t len) {
  size_t got = 0;
  while (got < len) {
    ssize_t n = rill_net_read(c, buf + got, len - got);
    if (n <= 0)
      return n;
    got += (size_t)n;
  }
  return (ssize_t)got;
}

struct handler_arg {
  struct k10 *k;
  rill_net_conn *c;
};

/* Server side: echo one 8-byte message, then wait for the client's close.
 * `ha` is freed here. */
static void handler_main(void *arg) {
  struct handler_arg *ha = (struct handler_arg *)arg;
  struct k10 *k = ha->k;
  rill_net_conn *c = ha->c;
  unsigned char msg[8];
  ssize_t n;
  free(ha);
  n = read_full(c, msg, sizeof msg);
  FCHECK(n == 8);
  if (n == 8) {
    FCHECK(rill_net_write(c, msg, sizeof msg, NULL) == 0);
    k->server_echoed++;
    rill_waitgroup_done(k->echoed);
    n = rill_net_read(c, msg, sizeof msg);
    FCHECK(n == RILL_EOF);
    if (n == RILL_EOF)
      k->server_eof++;
  }
  rill_net_conn_free(c);
  rill_waitgroup_done(k->handlers);
}

static void accept_loop(void *arg) {
  struct k10 *k = (struct k10 *)arg;
  for (;;) {
    rill_net_conn *c = NULL;
    struct handler_arg *ha;
    int rc = rill_net_accept(k->l, &c);
    if (rc != 0) {
      k->accept_rc = rc;
      return;
    }
    k->accepted++;
    ha = malloc(sizeof *ha);
    FCHECK(ha != NULL);
    if (!ha) {
      rill_net_conn_free(c);
      rill_waitgroup_done(k->handlers);
      continue;
    }
    ha->k = k;
    ha->c = c;
    rc = rill_go_stack(rill_fiber_base(), handler_main, ha, STACK);
    FCHECK(rc == 0);
    if (rc != 0) {
      free(ha);
      rill_net_conn_free(c);
      rill_waitgroup_done(k->handlers);
    }
  }
}

static void client_main(void *arg) {
  struct client *cl = (struct client *)arg;
  struct k10 *k = cl->k;
  rill_net_conn *c = NULL;
  unsigned char out[8], in[8];
  char errbuf[256];
  int rc = rill_net_dial("tcp", k->addr, NULL, &c, errbuf, sizeof errbuf);
  FCHECK(rc == 0);
  if (rc != 0) {
    if (fiber_check_failures < 5)
      fprintf(stderr, "client %u: %s\n", cl->id, errbuf);
    rill_waitgroup_done(k->batch);
    return;
  }
  put32(out, cl->id);
  put32(out + 4, ~cl->id);
  FCHECK(rill_net_write(c, out, sizeof out, NULL) == 0);
  FCHECK(read_full(c, in, sizeof in) == 8);
  FCHECK(get32(in) == cl->id && get32(in + 4) == ~cl->id);
  k->exchanged++;
  if (++k->open_now > k->max_open)
    k->max_open = k->open_now;
  rill_waitgroup_done(k->batch);

  /* Hold the connection until every one is open. */
  FCHECK(rill_waitgroup_wait(k->release) == 0);
  rill_net_conn_free(c);
  k->open_now--;
  k->closed++;
}

static void main_fiber(void *arg) {
  struct k10 *k = (struct k10 *)arg;
  rill_base *base = rill_fiber_base();
  int started = 0;
  FCHECK(rill_net_listen("tcp", "127.0.0.1:0", NULL, &k->l) == 0);
  if (!k->l)
    return;
  FCHECK(rill_net_listener_addr(k->l, k->addr, sizeof k->addr) > 0);
  FCHECK(rill_waitgroup_new(&k->batch) == 0);
  FCHECK(rill_waitgroup_new(&k->release) == 0);
  FCHECK(rill_waitgroup_new(&k->handlers) == 0);
  FCHECK(rill_waitgroup_new(&k->echoed) == 0);
  rill_waitgroup_add(k->release, 1);
  rill_waitgroup_add(k->handlers, k->n);
  rill_waitgroup_add(k->echoed, k->n);
  FCHECK(rill_go_stack(base, accept_loop, k, STACK) == 0);

  while (started < k->n) {
    int b = k->n - started < BATCH ? k->n - started : BATCH;
    rill_waitgroup_add(k->batch, b);
    for (int i = 0; i < b; i++, started++) {
      k->clients[started].k = k;
      k->clients[started].id = (uint32_t)started;
      FCHECK(rill_go_stack(base, client_main, &k->clients[started], STACK) == 0);
    }
    FCHECK(rill_waitgroup_wait(k->batch) == 0);
  }
  /* Wait for every handler to have echoed (they may lag the clients by a
   * turn), then record what is held. */
  FCHECK(rill_waitgroup_wait(k->echoed) == 0);
  k->fds_held = tu_count_fds();
  k->fibers_held = rill_fiber_count(base);

  /* Everyone closes; each handler sees EOF. */
  rill_waitgroup_done(k->release);
  FCHECK(rill_waitgroup_wait(k->handlers) == 0);
  rill_net_listener_free(k->l);
  rill_waitgroup_free(k->batch);
  rill_waitgroup_free(k->release);
  rill_waitgroup_free(k->handlers);
  rill_waitgroup_free(k->echoed);
}

static int on_poll_backend(void) {
  const char *b = getenv("RILL_BACKEND");
  return b && strcmp(b, "poll") == 0;
}

static int conns_allowed(void) {
  struct rlimit rl;
  int fds = tu_count_fds(), n, want = on_poll_backend() ? POLL_WANT : WANT;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  getrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > 2 * (rlim_t)want + 1000)
    return want;
  n = ((int)rl.rlim_cur - fds - FD_SLACK) / 2;
  return n < want ? n : want;
}

static void ten_thousand_connections(void **state) {
  struct k10 k;
  rill_base *base;
  uint64_t t0;
  int fds_before;
  (void)state;
  memset(&k, 0, sizeof k);
  k.n = conns_allowed();
  if (on_poll_backend())
    printf("poll backend: testing %d connections (poll scans them all on every wait)\n", k.n);
  else if (k.n < WANT)
    printf("RLIMIT_NOFILE allows %d connections, not %d: testing %d\n", k.n, WANT, k.n);
  else if (WANT < 10000)
    printf("under ThreadSanitizer: testing %d connections, not 10000\n", k.n);
  else
    printf("testing %d connections\n", k.n);
  fflush(stdout);
  assert_true(k.n >= 1000);
  k.clients = calloc((size_t)k.n, sizeof *k.clients);
  assert_non_null(k.clients);
  fds_before = tu_count_fds();

  base = tu_base_new();
  assert_int_equal(rill_go(base, main_fiber, &k), 0);
  t0 = tu_now_ms();
  TU_RUN(base, RILL_RUN_DEFAULT, HANG_GUARD_MS);
  printf("%d connections opened, held and closed in %llu ms (%s)\n", k.n,
         (unsigned long long)(tu_now_ms() - t0), rill_base_backend(base));
  assert_int_equal(rill_fiber_count(base), 0);
  tu_base_free(base);
  free(k.clients);
  fiber_check_assert_clean();

  assert_int_equal(k.accepted, k.n);
  assert_int_equal(k.exchanged, k.n);
  assert_int_equal(k.server_echoed, k.n);
  /* All open at the same time, and all closed at the end. */
  assert_int_equal(k.max_open, k.n);
  assert_true(k.fds_held >= fds_before + 2 * k.n);
  assert_int_equal(k.fibers_held, (size_t)(2 * k.n + 2));
  assert_int_equal(k.closed, k.n);
  assert_int_equal(k.server_eof, k.n);
  assert_int_equal(k.open_now, 0);
  assert_int_equal(k.accept_rc, RILL_ECLOSED);
  tu_assert_fds(fds_before);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(ten_thousand_connections),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
