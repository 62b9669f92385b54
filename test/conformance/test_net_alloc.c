/* Steady state allocates nothing (DESIGN.md, performance principles): an
 * echo exchange of 10,000 messages over an established connection, with
 * the read deadline moved on every read as a Go server does, makes no
 * malloc or realloc once warmed up.
 *
 * A program of its own: the counting allocator is process-global and must
 * be installed before any base exists. Runs once per backend like the
 * others. */
#define _GNU_SOURCE 1

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rill.h"
#include "test_util.h"
#include "net_util.h"

#define MSG 64
/* More than the write-request pool's quarantine (256 slots when handle
 * checks are on): on io_uring every write takes a request. */
#define WARMUP 400
#define MESSAGES 10000

struct echo {
  rill_base *base;
  rill_conn *client;
  rill_conn *server;
  int sent;      /* messages the client wrote */
  int received;  /* complete echoes the client got */
  size_t partial;
  int target;
  int errors;
  int closes;
  unsigned char msg[MSG];
};

static void send_next(struct echo *e) {
  int i;
  for (i = 0; i < MSG; i++) e->msg[i] = (unsigned char)(e->sent + i);
  if (rill_conn_write(e->client, e->msg, MSG) != 0) e->errors++;
  e->sent++;
}

static size_t server_read(rill_conn *c, const char *data, size_t len, int status, void *arg) {
  struct echo *e = (struct echo *)arg;
  if (status != 0) {
    if (status != RILL_EOF) e->errors++;
    return 0;
  }
  if (rill_conn_set_deadline(c, RILL_DEADLINE_READ, rill_time_now() + 10 * RILL_SEC) != 0)
    e->errors++;
  if (rill_conn_write(c, data, len) != 0) e->errors++;
  return len;
}

static size_t client_read(rill_conn *c, const char *data, size_t len, int status, void *arg) {
  struct echo *e = (struct echo *)arg;
  (void)data;
  if (status != 0) {
    e->errors++;
    return 0;
  }
  if (rill_conn_set_deadline(c, RILL_DEADLINE_READ, rill_time_now() + 10 * RILL_SEC) != 0)
    e->errors++;
  e->partial += len;
  while (e->partial >= MSG) {
    e->partial -= MSG;
    e->received++;
  }
  if (e->received == e->sent) {
    if (e->received >= e->target)
      rill_base_stop(e->base);
    else
      send_next(e);
  }
  return len;
}

static void on_close(rill_conn *c, void *arg) {
  (void)c;
  ((struct echo *)arg)->closes++;
}

static void on_accept(rill_listener *l, rill_conn *c, int status, void *arg) {
  struct echo *e = (struct echo *)arg;
  rill_conn_events ev;
  if (status != 0) {
    e->errors++;
    return;
  }
  e->server = c;
  memset(&ev, 0, sizeof ev);
  ev.on_read = server_read;
  ev.on_close = on_close;
  assert_int_equal(rill_conn_start(c, &ev, e), 0);
  rill_listener_free(l);
}

static void on_dial(rill_dialer *d, rill_conn *c, int status, void *arg) {
  struct echo *e = (struct echo *)arg;
  rill_conn_events ev;
  (void)d;
  assert_int_equal(status, 0);
  e->client = c;
  memset(&ev, 0, sizeof ev);
  ev.on_read = client_read;
  ev.on_close = on_close;
  assert_int_equal(rill_conn_start(c, &ev, e), 0);
}

static int connected(void *arg) {
  struct echo *e = (struct echo *)arg;
  return e->client != NULL && e->server != NULL;
}

static void test_echo_steady_state_allocates_nothing(void **state) {
  rill_base *base;
  rill_listener *l = NULL;
  struct echo e;
  tu_alloc_counts before_base, warm, done, after;
  char addr[64];
  (void)state;
  tu_alloc_get(&before_base);
  base = tu_base_new();
  memset(&e, 0, sizeof e);
  e.base = base;
  assert_int_equal(rill_listen(base, "tcp", "127.0.0.1:0", NULL, on_accept, &e, &l), 0);
  snprintf(addr, sizeof addr, "127.0.0.1:%d", rill_listener_port(l));
  assert_int_equal(rill_dial(base, "tcp", addr, NULL, on_dial, &e, NULL), 0);
  nu_run_until(base, connected, &e, 5000);

  /* Warm up: pools, the timer heap and the read buffer reach their size. */
  e.target = WARMUP;
  send_next(&e);
  TU_RUN(base, RILL_RUN_DEFAULT, 10000);
  assert_int_equal(e.received, WARMUP);
  tu_alloc_get(&warm);

  e.target = WARMUP + MESSAGES;
  send_next(&e);
  TU_RUN(base, RILL_RUN_DEFAULT, 30000);
  tu_alloc_get(&done);
  printf("# %d echoes: %llu mallocs, %llu reallocs, %llu frees in steady state\n", MESSAGES,
         (unsigned long long)(done.mallocs - warm.mallocs),
         (unsigned long long)(done.reallocs - warm.reallocs),
         (unsigned long long)(done.frees - warm.frees));
  assert_int_equal(e.errors, 0);
  assert_int_equal(e.received, WARMUP + MESSAGES);
  assert_int_equal(done.mallocs - warm.mallocs, 0);
  assert_int_equal(done.reallocs - warm.reallocs, 0);
  assert_int_equal(done.frees - warm.frees, 0);

  assert_int_equal(rill_conn_close(e.client), 0);
  assert_int_equal(rill_conn_close(e.server), 0);
  nu_settle(base);
  assert_int_equal(e.closes, 2);
  tu_base_free(base);
  /* Everything rill allocated came back, and only through this allocator. */
  tu_alloc_get(&after);
  assert_int_equal(after.live, before_base.live);
  assert_int_equal(after.foreign, 0);
}

/* Issue 8: on_read keeps its bytes and swaps the callbacks to a table
 * without on_read; keeping the bytes then runs out of memory. The error
 * used to be reported through the missing on_read (a call through NULL).
 * Now reading ends, and the error waits for a table with on_read. */
struct swap {
  int data_calls;
  int enomem;
  int other;
};

static size_t swap_on_read(rill_conn *c, const char *data, size_t len, int status, void *arg) {
  struct swap *s = (struct swap *)arg;
  rill_conn_events none;
  (void)data;
  (void)len;
  if (status == RILL_ENOMEM) {
    s->enomem++;
    return 0;
  }
  if (status != 0) {
    s->other++;
    return 0;
  }
  s->data_calls++;
  memset(&none, 0, sizeof none);
  assert_int_equal(rill_conn_start(c, &none, arg), 0);
  tu_alloc_fail_after(0); /* keeping the bytes fails */
  return 0;
}

static void test_enomem_keeping_bytes_after_on_read_removed(void **state) {
  rill_base *base;
  nu_pair p;
  struct swap s;
  rill_conn_events ev;
  int i;
  (void)state;
  base = tu_base_new();
  nu_pair_accepted(base, "127.0.0.1", NULL, &p);
  memset(&s, 0, sizeof s);
  memset(&ev, 0, sizeof ev);
  ev.on_read = swap_on_read;
  assert_int_equal(rill_conn_start(p.conn, &ev, &s), 0);
  assert_int_equal(nu_send_all(p.peer, "abc", 3, 1000), 3);
  nu_run_until_count(base, &s.data_calls, 1, 5000);
  tu_alloc_fail_after(-1);
  for (i = 0; i < 5; i++) rill_base_run(base, RILL_RUN_NOWAIT);
  assert_int_equal(s.enomem, 0);
  /* A table with on_read gets the error the connection met, once. */
  assert_int_equal(rill_conn_start(p.conn, &ev, &s), 0);
  nu_run_until_count(base, &s.enomem, 1, 5000);
  for (i = 0; i < 5; i++) rill_base_run(base, RILL_RUN_NOWAIT);
  assert_int_equal(s.enomem, 1);
  assert_int_equal(s.data_calls, 1);
  assert_int_equal(s.other, 0);
  nu_pair_cleanup(base, &p);
  tu_base_free(base);
}

/* Connections started with equal callback tables share the base's copy;
 * a table unlike any before needs memory. Without it rill_conn_start says
 * RILL_ENOMEM and the connection keeps reporting to its old table, while
 * an equal table (another copy, on the stack) needs nothing. */
static int reads_old, reads_new;

static size_t read_old(rill_conn *c, const char *data, size_t len, int status, void *arg) {
  (void)c, (void)data, (void)arg;
  if (status == 0) reads_old++;
  return len;
}

static size_t read_new(rill_conn *c, const char *data, size_t len, int status, void *arg) {
  (void)c, (void)data, (void)arg;
  if (status == 0) reads_new++;
  return len;
}

static void test_new_callback_table_without_memory_keeps_the_old(void **state) {
  rill_base *base;
  nu_pair p;
  rill_conn_events old_table, equal_table, new_table;
  (void)state;
  base = tu_base_new();
  nu_pair_accepted(base, "127.0.0.1", NULL, &p);
  memset(&old_table, 0, sizeof old_table);
  old_table.on_read = read_old;
  assert_int_equal(rill_conn_start(p.conn, &old_table, NULL), 0);
  memcpy(&equal_table, &old_table, sizeof equal_table);
  memset(&new_table, 0, sizeof new_table);
  new_table.on_read = read_new;
  reads_old = reads_new = 0;

  tu_alloc_fail_after(0);
  assert_int_equal(rill_conn_start(p.conn, &new_table, NULL), RILL_ENOMEM);
  assert_int_equal(rill_conn_start(p.conn, &equal_table, NULL), 0);
  tu_alloc_fail_after(-1);

  assert_int_equal(nu_send_all(p.peer, "abc", 3, 1000), 3);
  nu_run_until_count(base, &reads_old, 1, 5000);
  assert_int_equal(reads_new, 0);
  /* With memory, the new table takes over. */
  assert_int_equal(rill_conn_start(p.conn, &new_table, NULL), 0);
  assert_int_equal(nu_send_all(p.peer, "def", 3, 1000), 3);
  nu_run_until_count(base, &reads_new, 1, 5000);
  assert_int_equal(reads_old, 1);
  nu_pair_cleanup(base, &p);
  tu_base_free(base);
}

/* Issue 12, idle memory: a connection that made a round trip and used all
 * it was shown is one block of rill's, the connection itself. Its io
 * watcher is inside it (no pooled handle), and what few connections use
 * (deadlines, held bytes, queued writes) waits in a block made on first
 * use. It still counts as a live handle, active while it reads, and
 * rill_base_dump() lists its watcher. */
static int idle_reads;

static size_t idle_echo(rill_conn *c, const char *data, size_t len, int status, void *arg) {
  (void)arg;
  if (status != 0) return 0;
  if (rill_conn_write(c, data, len) != 0) return 0;
  idle_reads++;
  return len;
}

static void round_trip(rill_base *base, nu_pair *p) {
  char back[4];
  int before = idle_reads;
  assert_int_equal(nu_send_all(p->peer, "ping", 4, 1000), 4);
  nu_run_until_count(base, &idle_reads, before + 1, 5000);
  assert_int_equal(nu_recv_all(p->peer, back, 4, 5000), 4);
  assert_memory_equal(back, "ping", 4);
}

static void test_idle_connection_is_one_block(void **state) {
  rill_base *base;
  nu_pair first, second;
  rill_conn_events ev;
  tu_alloc_counts before, after;
  rill_base_stats st_before, st;
  FILE *dump;
  char line[256];
  int embedded_lines = 0;
  (void)state;
  base = tu_base_new();
  memset(&ev, 0, sizeof ev);
  ev.on_read = idle_echo;
  /* The first connection makes what every connection shares (the base's
   * net state, the callback table's copy). */
  nu_pair_accepted(base, "127.0.0.1", NULL, &first);
  assert_int_equal(rill_conn_start(first.conn, &ev, NULL), 0);
  round_trip(base, &first);
  /* Idle: nothing active, so that the next accept's loop run ends. */
  assert_int_equal(rill_conn_read_stop(first.conn), 0);
  rill_base_run(base, RILL_RUN_NOWAIT);
  assert_int_equal(rill_base_stats_get(base, &st_before), 0);

  tu_alloc_get(&before);
  nu_pair_accepted(base, "127.0.0.1", NULL, &second);
  assert_int_equal(rill_conn_start(second.conn, &ev, NULL), 0);
  round_trip(base, &second);
  tu_alloc_get(&after);
  assert_int_equal(after.live - before.live, 1);

  assert_int_equal(rill_base_stats_get(base, &st), 0);
  assert_int_equal(st.handles, st_before.handles + 1);
  assert_int_equal(st.active, st_before.active + 1);
  assert_int_equal(rill_conn_read_stop(second.conn), 0);
  rill_base_run(base, RILL_RUN_NOWAIT);
  assert_int_equal(rill_base_stats_get(base, &st), 0);
  assert_int_equal(st.active, st_before.active);

  dump = tmpfile();
  assert_non_null(dump);
  assert_int_equal(rill_base_dump(base, dump), 0);
  rewind(dump);
  while (fgets(line, sizeof line, dump))
    if (strstr(line, " embedded")) embedded_lines++;
  fclose(dump);
  assert_int_equal(embedded_lines, 2);

  nu_pair_cleanup(base, &first);
  nu_pair_cleanup(base, &second);
  tu_base_free(base);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_echo_steady_state_allocates_nothing, tu_setup_fds,
                                      tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_enomem_keeping_bytes_after_on_read_removed,
                                      tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_new_callback_table_without_memory_keeps_the_old,
                                      tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_idle_connection_is_one_block, tu_setup_fds,
                                      tu_teardown_fds),
  };
  /* Before any base exists (no base needs to be alive for this). */
  if (rill_set_allocator(tu_malloc, tu_realloc, tu_free) != 0) {
    fprintf(stderr, "rill_set_allocator failed\n");
    return 1;
  }
  return cmocka_run_group_tests(tests, NULL, NULL);
}
