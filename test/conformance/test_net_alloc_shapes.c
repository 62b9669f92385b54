/* No allocation per message in steady state, in the shapes a server meets
 * beyond test_net_alloc.c's one connection: many connections at once, a
 * framing reader that leaves partial records for the next read (the held
 * bytes), small ones and ones past the 4 KiB a connection keeps, and large
 * messages sent as ref writes (pooled requests, no copy).
 *
 * Each shape runs an echo over loopback, client and server both rill
 * connections on one base: a warm-up (pools, the read buffer, the held
 * buffers reach their size), then a steady phase of many messages during
 * which rill's allocator must not be called at all. The counting allocator
 * is process-global and installed before any base exists, so this is a
 * program of its own. Runs once per backend like the others. */
#define _GNU_SOURCE 1

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rill.h"
#include "test_util.h"
#include "net_util.h"

#define MAX_PAIRS 32
#define MAX_MSG (16 * 1024)

enum shape {
  SHAPE_MANY,   /* 32 connections, 64 B messages, rill_conn_write */
  SHAPE_FRAMED, /* whole records echoed, the partial one held for the next read */
  SHAPE_LARGE,  /* 16 KiB messages, rill_conn_write_ref from the user's buffers */
};

struct pair;

struct echo {
  rill_base *base;
  rill_listener *listener;
  enum shape shape;
  size_t msg_size;  /* what the client sends per round trip */
  size_t record;    /* SHAPE_FRAMED: the server echoes whole records only */
  int npairs;
  int accepted, dialed;
  int rounds_done;  /* round trips completed, all connections */
  int rounds_target;
  int draining;     /* finishing the rounds under way: no new ones */
  int errors;
  int closes;
  struct pair *pairs;
};

/* One client connection and the server connection that accepted it. */
struct pair {
  struct echo *echo;
  rill_conn *client, *server;
  uint64_t sent;      /* bytes the client sent, all rounds */
  uint64_t echoed;    /* bytes back at the client, all rounds */
  size_t server_have; /* SHAPE_LARGE: bytes of the message the server holds */
  int client_writing, server_writing; /* a ref write not yet completed */
  char client_buf[MAX_MSG];
  char server_buf[MAX_MSG];
};

static void client_send(struct pair *p);

/* What the client gets back for all it sent: everything, except that the
 * framing server keeps a partial record until the rest comes. */
static uint64_t expected_echo(const struct pair *p) {
  const struct echo *e = p->echo;
  return e->shape == SHAPE_FRAMED ? p->sent - p->sent % e->record : p->sent;
}

static void on_client_written(rill_conn *c, int status, size_t written, void *arg) {
  struct pair *p = (struct pair *)arg;
  (void)c;
  (void)written;
  if (status != 0) p->echo->errors++;
  p->client_writing = 0;
}

static void on_server_written(rill_conn *c, int status, size_t written, void *arg) {
  struct pair *p = (struct pair *)arg;
  (void)c;
  (void)written;
  if (status != 0) p->echo->errors++;
  p->server_writing = 0;
}

static void client_send(struct pair *p) {
  struct echo *e = p->echo;
  int err;
  p->sent += e->msg_size;
  if (e->shape == SHAPE_LARGE) {
    if (p->client_writing) { /* the last message's buffer is still the kernel's to take */
      e->errors++;
      return;
    }
    p->client_writing = 1;
    err = rill_conn_write_ref(p->client, p->client_buf, e->msg_size, on_client_written, p);
  } else {
    err = rill_conn_write(p->client, p->client_buf, e->msg_size);
  }
  if (err != 0) e->errors++;
}

static size_t server_read(rill_conn *c, const char *data, size_t len, int status, void *arg) {
  struct pair *p = (struct pair *)arg;
  struct echo *e = p->echo;
  size_t use;
  if (status != 0) {
    if (status != RILL_EOF) e->errors++;
    return 0;
  }
  switch (e->shape) {
    case SHAPE_MANY:
      if (rill_conn_write(c, data, len) != 0) e->errors++;
      return len;
    case SHAPE_FRAMED:
      /* Whole records only; the rest comes again with the next bytes. */
      use = len - len % e->record;
      if (use && rill_conn_write(c, data, use) != 0) e->errors++;
      return use;
    case SHAPE_LARGE:
      /* Gathered into the user's buffer, echoed whole by reference. */
      if (p->server_writing || p->server_have + len > e->msg_size) {
        e->errors++;
        return len;
      }
      memcpy(p->server_buf + p->server_have, data, len);
      p->server_have += len;
      if (p->server_have == e->msg_size) {
        p->server_have = 0;
        p->server_writing = 1;
        if (rill_conn_write_ref(c, p->server_buf, e->msg_size, on_server_written, p) != 0)
          e->errors++;
      }
      return len;
  }
  return len;
}

static size_t client_read(rill_conn *c, const char *data, size_t len, int status, void *arg) {
  struct pair *p = (struct pair *)arg;
  struct echo *e = p->echo;
  (void)c;
  (void)data;
  if (status != 0) {
    e->errors++;
    return 0;
  }
  p->echoed += len;
  if (p->echoed > expected_echo(p)) {
    e->errors++;
  } else if (p->echoed == expected_echo(p)) {
    e->rounds_done++;
    if (e->draining)
      return len;
    if (e->rounds_done >= e->rounds_target)
      rill_base_stop(e->base);
    else
      client_send(p);
  }
  return len;
}

static void on_close(rill_conn *c, void *arg) {
  (void)c;
  ((struct pair *)arg)->echo->closes++;
}

static void on_accept(rill_listener *l, rill_conn *c, int status, void *arg) {
  struct echo *e = (struct echo *)arg;
  struct pair *p;
  rill_conn_events ev;
  (void)l;
  if (status != 0 || e->accepted >= e->npairs) {
    e->errors++;
    if (status == 0) rill_conn_abort(c);
    return;
  }
  /* Accepts come in dial order on loopback, but which pair a server
   * connection joins does not matter: the echo is symmetric. */
  p = &e->pairs[e->accepted++];
  p->server = c;
  memset(&ev, 0, sizeof ev);
  ev.on_read = server_read;
  ev.on_close = on_close;
  assert_int_equal(rill_conn_start(c, &ev, p), 0);
}

static void on_dial(rill_dialer *d, rill_conn *c, int status, void *arg) {
  struct pair *p = (struct pair *)arg;
  rill_conn_events ev;
  (void)d;
  assert_int_equal(status, 0);
  p->client = c;
  p->echo->dialed++;
  memset(&ev, 0, sizeof ev);
  ev.on_read = client_read;
  ev.on_close = on_close;
  assert_int_equal(rill_conn_start(c, &ev, p), 0);
}

static int all_connected(void *arg) {
  struct echo *e = (struct echo *)arg;
  return e->accepted == e->npairs && e->dialed == e->npairs;
}

/* Runs `rounds` round trips, spread over the connections. */
static void run_rounds(struct echo *e, int rounds) {
  int i;
  e->rounds_done = 0;
  e->rounds_target = rounds;
  e->draining = 0;
  for (i = 0; i < e->npairs; i++) client_send(&e->pairs[i]);
  TU_RUN(e->base, RILL_RUN_DEFAULT, 60000);
  assert_int_equal(e->errors, 0);
  assert_true(e->rounds_done >= rounds);
  /* The connections still mid-round finish theirs, so the next phase
   * starts with every connection quiet. */
  e->draining = 1;
  for (i = 0; i < 200; i++) {
    int j, busy = 0;
    for (j = 0; j < e->npairs; j++) {
      struct pair *p = &e->pairs[j];
      if (p->echoed != expected_echo(p) || p->client_writing || p->server_writing) busy = 1;
    }
    if (!busy) break;
    rill_base_run(e->base, RILL_RUN_ONCE);
  }
  assert_int_equal(e->errors, 0);
}

static void check_shape(enum shape shape, int npairs, size_t msg_size, size_t record, int warmup,
                        int steady) {
  struct echo e;
  tu_alloc_counts before_base, warm, done, after;
  char addr[64];
  int i;
  memset(&e, 0, sizeof e);
  e.shape = shape;
  e.npairs = npairs;
  e.msg_size = msg_size;
  e.record = record;
  e.pairs = calloc((size_t)npairs, sizeof *e.pairs); /* the test's memory, not rill's */
  assert_non_null(e.pairs);
  for (i = 0; i < npairs; i++) {
    e.pairs[i].echo = &e;
    memset(e.pairs[i].client_buf, 'a' + i % 26, sizeof e.pairs[i].client_buf);
  }
  tu_alloc_get(&before_base);
  e.base = tu_base_new();
  assert_int_equal(rill_listen(e.base, "tcp", "127.0.0.1:0", NULL, on_accept, &e, &e.listener), 0);
  snprintf(addr, sizeof addr, "127.0.0.1:%d", rill_listener_port(e.listener));
  for (i = 0; i < npairs; i++)
    assert_int_equal(rill_dial(e.base, "tcp", addr, NULL, on_dial, &e.pairs[i], NULL), 0);
  nu_run_until(e.base, all_connected, &e, 10000);
  rill_listener_free(e.listener);

  run_rounds(&e, warmup);
  tu_alloc_get(&warm);
  run_rounds(&e, steady);
  tu_alloc_get(&done);
  printf("# shape %d: %d connections, %d round trips of %zu B: %llu mallocs, %llu reallocs, "
         "%llu frees in steady state\n",
         (int)shape, npairs, e.rounds_done, msg_size,
         (unsigned long long)(done.mallocs - warm.mallocs),
         (unsigned long long)(done.reallocs - warm.reallocs),
         (unsigned long long)(done.frees - warm.frees));
  assert_int_equal(done.mallocs - warm.mallocs, 0);
  assert_int_equal(done.reallocs - warm.reallocs, 0);
  assert_int_equal(done.frees - warm.frees, 0);

  for (i = 0; i < npairs; i++) {
    assert_int_equal(rill_conn_close(e.pairs[i].client), 0);
    assert_int_equal(rill_conn_close(e.pairs[i].server), 0);
  }
  nu_settle(e.base);
  assert_int_equal(e.closes, 2 * npairs);
  tu_base_free(e.base);
  free(e.pairs);
  /* Everything rill allocated came back, and only through this allocator. */
  tu_alloc_get(&after);
  assert_int_equal(after.live, before_base.live);
  assert_int_equal(after.foreign, 0);
}

static void test_many_connections_allocate_nothing(void **state) {
  (void)state;
  check_shape(SHAPE_MANY, MAX_PAIRS, 64, 0, 10 * MAX_PAIRS, 200 * MAX_PAIRS);
}

/* 250 B batches of 100 B records: every other read leaves half a record
 * held, and the held buffer is kept for the next one. The warm-up passes
 * the write-request pool's quarantine (below): on io_uring every write is
 * a request. */
static void test_held_partial_records_allocate_nothing(void **state) {
  (void)state;
  check_shape(SHAPE_FRAMED, 4, 250, 100, 400, 5000);
}

/* 15,000 B batches of 10,000 B records: every other read leaves 5,000
 * bytes, more than a connection keeps a buffer for once it is emptied;
 * the emptied buffers go to the base's spares and come back from there. */
static void test_held_large_partial_records_allocate_nothing(void **state) {
  (void)state;
  check_shape(SHAPE_FRAMED, 4, 15000, 10000, 400, 2000);
}

/* The warm-up takes and returns more write requests than the pool's
 * quarantine holds (256 slots, when handle checks are on), so the pool has
 * reached its size before the steady phase. */
static void test_large_ref_writes_allocate_nothing(void **state) {
  (void)state;
  check_shape(SHAPE_LARGE, 4, MAX_MSG, 0, 400, 2000);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_many_connections_allocate_nothing, tu_setup_fds,
                                      tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_held_partial_records_allocate_nothing, tu_setup_fds,
                                      tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_held_large_partial_records_allocate_nothing,
                                      tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_large_ref_writes_allocate_nothing, tu_setup_fds,
                                      tu_teardown_fds),
  };
  /* Before any base exists (no base needs to be alive for this). */
  if (rill_set_allocator(tu_malloc, tu_realloc, tu_free) != 0) {
    fprintf(stderr, "rill_set_allocator failed\n");
    return 1;
  }
  return cmocka_run_group_tests(tests, NULL, NULL);
}
