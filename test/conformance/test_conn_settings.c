/* A connection's callback table and sizes (read_max, the water marks) are
 * one block the base shares among the connections that have equal ones
 * (issue 12, idle memory: a pointer per connection instead of a copy).
 * Sharing must never mix connections up: each keeps the sizes it was
 * created with, also across rill_conn_start with another table, and
 * blocks no connection uses any more are freed beyond a few kept for the
 * next connection (the least recently used go first), so a program that
 * makes ever new ones does not grow and a server keeps its own.
 *
 * A program of its own: the counting allocator is process-global and must
 * be installed before any base exists. Runs once per backend. */
#define _GNU_SOURCE 1

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "rill.h"
#include "test_util.h"
#include "net_util.h"

#define LIMIT 10000 /* a hang guard only */
#define BIG (200u * 1024u)

/* One connection accepted with `read_max`, read to the end by `r`. */
struct reading {
  nu_pair pair;
  nu_reader reader;
  nu_source source;
};

static void reading_open(rill_base *base, struct reading *x, size_t read_max) {
  rill_socket_config o;
  memset(&o, 0, sizeof o);
  o.read_max = read_max;
  nu_pair_accepted(base, "127.0.0.1", &o, &x->pair);
  nu_reader_init(&x->reader);
}

static int both_at_eof(void *arg) {
  struct reading *x = (struct reading *)arg;
  return x[0].reader.eofs && x[1].reader.eofs;
}

static void reading_check(struct reading *x, size_t read_max) {
  printf("# read_max %zu: %d calls, largest %zu\n", read_max, x->reader.data_calls, x->reader.max_len);
  assert_int_equal(x->source.sent, BIG);
  assert_int_equal(x->reader.eofs, 1);
  assert_int_equal(x->reader.bad_at, -1);
  assert_int_equal(x->reader.consumed, BIG);
  assert_true(x->reader.max_len <= read_max);
}

/* Two connections with one callback table and different read_max: each
 * reads in its own chunks. The larger bound is reached (a shared block
 * would have held both to one bound). */
static void test_equal_tables_keep_their_own_sizes(void **state) {
  rill_base *base = tu_base_new();
  struct reading x[2];
  int i;
  (void)state;
  reading_open(base, &x[0], 1000);
  reading_open(base, &x[1], 3000);
  for (i = 0; i < 2; i++) {
    nu_reader_start(x[i].pair.conn, &x[i].reader); /* the same table for both */
    nu_source_start(base, &x[i].source, x[i].pair.peer, BIG, 1);
  }
  nu_run_until(base, both_at_eof, x, LIMIT);
  for (i = 0; i < 2; i++) nu_source_stop(&x[i].source);
  reading_check(&x[0], 1000);
  reading_check(&x[1], 3000);
  assert_true(x[1].reader.max_len > 1000);
  for (i = 0; i < 2; i++) nu_pair_cleanup(base, &x[i].pair);
  tu_base_free(base);
}

/* rill_conn_start with another table keeps the sizes the connection was
 * made with: started first with a table that reads nothing, then with the
 * reader's, it still reads at most read_max at once. */
static void test_new_table_keeps_the_sizes(void **state) {
  rill_base *base = tu_base_new();
  struct reading x[2];
  rill_conn_events quiet;
  (void)state;
  reading_open(base, &x[0], 1000);
  reading_open(base, &x[1], 3000);
  memset(&quiet, 0, sizeof quiet);
  quiet.on_close = nu_on_close;
  assert_int_equal(rill_conn_start(x[0].pair.conn, &quiet, &x[0].reader), 0);
  assert_int_equal(rill_conn_start(x[1].pair.conn, &quiet, &x[1].reader), 0);
  nu_reader_start(x[0].pair.conn, &x[0].reader);
  nu_reader_start(x[1].pair.conn, &x[1].reader);
  nu_source_start(base, &x[0].source, x[0].pair.peer, BIG, 1);
  nu_source_start(base, &x[1].source, x[1].pair.peer, BIG, 1);
  nu_run_until(base, both_at_eof, x, LIMIT);
  nu_source_stop(&x[0].source);
  nu_source_stop(&x[1].source);
  reading_check(&x[0], 1000);
  reading_check(&x[1], 3000);
  assert_true(x[1].reader.max_len > 1000);
  nu_pair_cleanup(base, &x[0].pair);
  nu_pair_cleanup(base, &x[1].pair);
  tu_base_free(base);
}

static int64_t live_blocks(void) {
  tu_alloc_counts c;
  tu_alloc_get(&c);
  return c.live;
}

/* `count` connections in turn, each with sizes unlike any before (its own
 * read_max), making a round trip of bytes and closed again. */
static void distinct_connections(rill_base *base, size_t first_read_max, int count) {
  int i;
  for (i = 0; i < count; i++) {
    struct reading x;
    char buf[8];
    reading_open(base, &x, first_read_max + (size_t)i);
    nu_reader_start(x.pair.conn, &x.reader);
    assert_int_equal(nu_send_all(x.pair.peer, "ping", 4, 1000), 4);
    nu_run_until_count(base, &x.reader.data_calls, 1, LIMIT);
    assert_int_equal(rill_conn_write(x.pair.conn, "pong", 4), 0);
    assert_int_equal(nu_recv_all(x.pair.peer, buf, 4, 5000), 4);
    nu_pair_cleanup(base, &x.pair);
  }
}

/* Settings nobody uses are not kept without bound: after a first run of
 * connections with ever new sizes, a second run of as many, with others
 * again, leaves the base holding about as many blocks as the first did.
 * Each connection makes three settings (conn_create's, the reader's, the
 * clean-up's table), so keeping them would add 120 blocks; the handle
 * pools may add a chunk or two meanwhile (a checked pool reuses a slot
 * only after 256 others were freed). */
static void test_unused_settings_do_not_pile_up(void **state) {
  rill_base *base = tu_base_new();
  int64_t after_first, after_second;
  (void)state;
  distinct_connections(base, 1000, 40);
  nu_settle(base);
  after_first = live_blocks();
  distinct_connections(base, 2000, 40);
  nu_settle(base);
  after_second = live_blocks();
  printf("# live blocks after the first 40 connections %lld, after 40 more %lld\n",
         (long long)after_first, (long long)after_second);
  assert_true(after_second - after_first < 8);
  tu_base_free(base);
}

/* A listener whose connections are started with one table and closed at
 * once: each accept makes a connection with the listener's sizes
 * (conn_create's block), rill_conn_start moves it to the table's block,
 * and the close lets that go. */
struct churn {
  int accepted;
  int closed;
};

static void churn_on_close(rill_conn *conn, void *arg) {
  (void)conn;
  ((struct churn *)arg)->closed++;
}

static void churn_accept(rill_listener *l, rill_conn *conn, int status, void *arg) {
  struct churn *ch = (struct churn *)arg;
  rill_conn_events events;
  (void)l;
  assert_int_equal(status, 0);
  memset(&events, 0, sizeof events);
  events.on_close = churn_on_close;
  ch->accepted++;
  assert_int_equal(rill_conn_start(conn, &events, ch), 0);
  assert_int_equal(rill_conn_close(conn), 0);
}

/* Allocations made by `count` connections accepted and closed in turn,
 * after `warm` ones not counted, by a listener with `opts`. */
static uint64_t churn_allocations(rill_base *base, const rill_socket_config *opts, int warm, int count) {
  struct churn ch;
  rill_listener *l = NULL;
  tu_alloc_counts before, after;
  int i;
  memset(&ch, 0, sizeof ch);
  assert_int_equal(rill_listen(base, "tcp", "127.0.0.1:0", opts, churn_accept, &ch, &l), 0);
  for (i = 0; i < warm + count; i++) {
    int fd;
    if (i == warm) tu_alloc_get(&before);
    fd = nu_raw_connect("127.0.0.1", rill_listener_port(l));
    assert_true(fd >= 0);
    nu_run_until_count(base, &ch.closed, i + 1, LIMIT);
    close(fd);
  }
  tu_alloc_get(&after);
  assert_int_equal(ch.accepted, warm + count);
  rill_listener_free(l);
  nu_settle(base);
  return after.mallocs - before.mallocs;
}

/* A server's settings blocks are kept while it runs, however many unused
 * ones other connections left behind: the blocks go least recently used
 * first, and the one a connection just let go is the newest. Accepting
 * then allocates as much with 16 and more unused blocks around as with
 * few (without the reuse, two blocks per connection: conn_create's, which
 * rill_conn_start lets go, and the table's, which the close does). */
static void test_server_keeps_its_settings(void **state) {
  enum { warm = 4, count = 32 };
  rill_base *base = tu_base_new();
  rill_socket_config o;
  uint64_t quiet, crowded;
  (void)state;
  memset(&o, 0, sizeof o);
  o.read_max = 7777; /* sizes no other connection here has */
  quiet = churn_allocations(base, &o, warm, count);
  distinct_connections(base, 1000, 20); /* 60 blocks, each unused at the end */
  o.read_max = 7778; /* a server that comes after them */
  crowded = churn_allocations(base, &o, warm, count);
  printf("# allocations for %d connections: %llu with few settings blocks, %llu with many unused\n",
         count, (unsigned long long)quiet, (unsigned long long)crowded);
  /* Slack for a pool's chunk or two; the blocks would add 2 * count. */
  assert_true(crowded < quiet + count / 2);
  tu_base_free(base);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_equal_tables_keep_their_own_sizes, tu_setup_fds,
                                      tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_new_table_keeps_the_sizes, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_unused_settings_do_not_pile_up, tu_setup_fds,
                                      tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_server_keeps_its_settings, tu_setup_fds, tu_teardown_fds),
  };
  /* Before any base exists. */
  if (rill_set_allocator(tu_malloc, tu_realloc, tu_free) != 0) {
    fprintf(stderr, "rill_set_allocator failed\n");
    return 1;
  }
  return cmocka_run_group_tests(tests, NULL, NULL);
}
