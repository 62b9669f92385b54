/* No allocation per message in steady state through the facade (issue 12),
 * in the shapes a fiber server meets: small messages, messages four times
 * the reader's buffer (each read leaves most of a message with the
 * connection), and many connections at once.
 *
 * Each shape is an echo over loopback, client and server both facade
 * connections in fibers of one base: a warm-up (pools, the read buffer,
 * what a connection keeps reach their size), then a steady phase during
 * which rill's allocator must not be called at all. The counting
 * allocator is process-global and installed before any base exists, so
 * this is a program of its own. */
#define _GNU_SOURCE 1

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>
#include <string.h>

#include "rill.h"
#include "test_util.h"
#include "fiber_check.h"

#define LIMIT 120000 /* a hang guard only */
#define WARM_ROUNDS 200
#define STEADY_ROUNDS 2000
#define MAX_CONNS 16
#define MAX_MSG (16 * 1024)

struct shape {
  size_t msg;      /* bytes per round trip */
  size_t buf;      /* the server's read buffer */
  int conns;
};

static struct shape g_shape;
static rill_net_listener *g_listener;
static int g_warm; /* connections done warming up */
static int g_clients_done;
static tu_alloc_counts g_before, g_after;

static uint64_t allocations(const tu_alloc_counts *c) { return c->mallocs + c->reallocs; }

/* Reads back whatever comes, writes it back: a fiber per connection. */
static void server(void *arg) {
  rill_net_conn *c = arg;
  char buf[MAX_MSG];
  ssize_t n;
  while ((n = rill_net_read(c, buf, g_shape.buf)) > 0)
    FCHECK(rill_net_write(c, buf, (size_t)n, NULL) == 0);
  FCHECK(n == RILL_EOF);
  rill_net_conn_free(c);
}

static void acceptor(void *arg) {
  int i;
  (void)arg;
  for (i = 0; i < g_shape.conns; i++) {
    rill_net_conn *c;
    FCHECK(rill_net_accept(g_listener, &c) == 0);
    FCHECK(rill_go(rill_fiber_base(), server, c) == 0);
  }
}

static int round_trip(rill_net_conn *c, const char *out, char *in) {
  size_t got = 0;
  if (rill_net_write(c, out, g_shape.msg, NULL) != 0)
    return 0;
  while (got < g_shape.msg) {
    ssize_t n = rill_net_read(c, in + got, g_shape.msg - got);
    if (n <= 0)
      return 0;
    got += (size_t)n;
  }
  return memcmp(in, out, g_shape.msg) == 0;
}

static void client(void *arg) {
  static char out[MAX_CONNS][MAX_MSG], in[MAX_CONNS][MAX_MSG];
  int id = (int)(intptr_t)arg, i;
  char addr[RILL_ADDRSTRLEN];
  rill_net_conn *c;
  memset(out[id], 'a' + id, g_shape.msg);
  rill_net_listener_addr(g_listener, addr, sizeof addr);
  FCHECK(rill_net_dial("tcp", addr, NULL, &c, NULL, 0) == 0);
  for (i = 0; i < WARM_ROUNDS; i++)
    FCHECK(round_trip(c, out[id], in[id]));
  /* Every connection warm before the count starts; the last one takes it. */
  if (++g_warm == g_shape.conns)
    tu_alloc_get(&g_before);
  while (g_warm < g_shape.conns)
    rill_yield();
  for (i = 0; i < STEADY_ROUNDS; i++)
    FCHECK(round_trip(c, out[id], in[id]));
  /* The count ends before any fiber ends (a stack going back to the pool
   * may grow it). */
  if (++g_clients_done == g_shape.conns)
    tu_alloc_get(&g_after);
  while (g_clients_done < g_shape.conns)
    rill_yield();
  rill_net_conn_free(c);
}

static void main_fiber(void *arg) {
  int i;
  (void)arg;
  FCHECK(rill_net_listen("tcp", "127.0.0.1:0", NULL, &g_listener) == 0);
  FCHECK(rill_go(rill_fiber_base(), acceptor, NULL) == 0);
  for (i = 0; i < g_shape.conns; i++)
    FCHECK(rill_go(rill_fiber_base(), client, (void *)(intptr_t)i) == 0);
  while (g_clients_done < g_shape.conns)
    rill_sleep(RILL_MSEC);
  rill_net_listener_free(g_listener);
}

static void run_shape(size_t msg, size_t buf, int conns) {
  rill_base *base = tu_base_new();
  g_shape = (struct shape){msg, buf, conns};
  g_warm = g_clients_done = 0;
  assert_int_equal(rill_go(base, main_fiber, NULL), 0);
  fiber_check_run(base, LIMIT);
  if (allocations(&g_after) != allocations(&g_before))
    fail_msg("%llu allocations in %d steady round trips (%zu-byte messages, %zu-byte buffer, %d conns)",
             (unsigned long long)(allocations(&g_after) - allocations(&g_before)),
             STEADY_ROUNDS * conns, msg, buf, conns);
}

static void small_messages(void **state) {
  (void)state;
  run_shape(64, 4096, 1);
}

static void messages_four_times_the_buffer(void **state) {
  (void)state;
  run_shape(16 * 1024, 4096, 1);
}

static void many_connections(void **state) {
  (void)state;
  run_shape(512, 4096, MAX_CONNS);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(small_messages),
      cmocka_unit_test(messages_four_times_the_buffer),
      cmocka_unit_test(many_connections),
  };
  assert_int_equal(rill_set_allocator(tu_malloc, tu_realloc, tu_free), 0);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
