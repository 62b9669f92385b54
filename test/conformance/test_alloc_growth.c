/* Growth that runs out of memory: every realloc of an existing block that
 * a scenario makes (a table of watchers or timers, a connection's held
 * bytes, a write queue) is failed in turn, once each
 * (tu_alloc_fail_realloc_after), and the scenario must live on: the call
 * that needed the room says RILL_ENOMEM, or the stream it was for ends
 * with RILL_ENOMEM, and everything else goes on working, nothing leaks
 * (the counting allocator's live blocks, ASan) and nothing hangs.
 *
 * A program of its own: the counting allocator is process-global and must
 * be installed before any base exists. Runs once per backend. */
#define _GNU_SOURCE 1

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rill.h"
#include "test_util.h"
#include "net_util.h"

#define LIMIT 10000     /* a hang guard only */
#define MAX_GROWTHS 200 /* a scenario growing more often is failed at its first 200 */

static int64_t live_blocks(void) {
  tu_alloc_counts c;
  tu_alloc_get(&c);
  return c.live;
}

/* Runs `scenario` with the n-th growth failed, for n = 0, 1, ... until a
 * run meets no n-th growth; returns how many growths were failed. The
 * scenario arms the failure itself (tu_alloc_fail_realloc_after(n)) once
 * its set-up is done, and disarms it before its clean-up. */
static int fail_each_growth(void (*scenario)(int n)) {
  int n;
  for (n = 0; n < MAX_GROWTHS; n++) {
    uint64_t failures = tu_alloc_realloc_failures();
    int64_t live = live_blocks();
    scenario(n);
    tu_alloc_fail_realloc_after(-1);
    if (live_blocks() != live)
      fail_msg("growth %d failed: %lld blocks leaked", n, (long long)(live_blocks() - live));
    if (tu_alloc_realloc_failures() == failures)
      break;
  }
  return n;
}

/* ---- the base's tables: many watchers, many timers ------------------------- */

#define PIPES 48

struct fired {
  int count;
};

/* A start met the failure (RILL_ENOMEM, nothing else), or counts. */
static void count_start(int err, int *started) {
  if (err != 0)
    assert_int_equal(err, RILL_ENOMEM);
  else
    (*started)++;
}

/* Runs `base` until every one of the `started` fired; at most one of
 * `total` could not start (one growth failed). */
static void run_until_all_fired(rill_base *base, const struct fired *fired, int started, int total) {
  uint64_t end = tu_now_ms() + LIMIT;
  while (fired->count < started && tu_now_ms() < end)
    TU_RUN(base, RILL_RUN_ONCE, LIMIT);
  assert_int_equal(fired->count, started);
  assert_true(started >= total - 1);
}

static void on_readable(rill_io *io, int fd, unsigned events, void *arg) {
  char byte;
  (void)io;
  (void)events;
  if (read(fd, &byte, 1) == 1)
    ((struct fired *)arg)->count++;
}

/* Watchers on ever higher descriptors: whichever start met the failure
 * says RILL_ENOMEM, and every other watcher hears its pipe. */
static void many_watchers(int n) {
  rill_base *base = tu_base_new();
  int fds[PIPES][2];
  rill_io *io[PIPES];
  struct fired fired = {0};
  int started = 0, i;
  tu_alloc_fail_realloc_after(n);
  for (i = 0; i < PIPES; i++) {
    int err;
    tu_pipe(fds[i]);
    io[i] = NULL;
    err = rill_io_new(base, fds[i][0], on_readable, &fired, &io[i]);
    if (err == 0) {
      err = rill_io_start(io[i], RILL_READ);
      if (err != 0) {
        rill_io_free(io[i]);
        io[i] = NULL;
      }
    }
    count_start(err, &started);
  }
  for (i = 0; i < PIPES; i++)
    tu_write_byte(fds[i][1]);
  run_until_all_fired(base, &fired, started, PIPES);
  tu_alloc_fail_realloc_after(-1);
  for (i = 0; i < PIPES; i++) {
    rill_io_free(io[i]);
    close(fds[i][0]);
    close(fds[i][1]);
  }
  tu_base_free(base);
}

#define TIMERS 300

static void on_timer(rill_timer *t, void *arg) {
  (void)t;
  ((struct fired *)arg)->count++;
}

/* Timers by the hundred due together: one that cannot be started says
 * RILL_ENOMEM, and every other fires. */
static void many_timers(int n) {
  rill_base *base = tu_base_new();
  rill_timer *timers[TIMERS];
  struct fired fired = {0};
  int started = 0, i;
  tu_alloc_fail_realloc_after(n);
  for (i = 0; i < TIMERS; i++) {
    int err = rill_timer_new(base, on_timer, &fired, &timers[i]);
    if (err == 0) {
      /* Many due at once: the wheel gathers and sorts them together. */
      err = rill_timer_start(timers[i], (uint64_t)(5 + i % 3) * RILL_MSEC, 0);
      if (err != 0) {
        rill_timer_free(timers[i]);
        timers[i] = NULL;
      }
    } else {
      timers[i] = NULL;
    }
    count_start(err, &started);
  }
  run_until_all_fired(base, &fired, started, TIMERS);
  tu_alloc_fail_realloc_after(-1);
  for (i = 0; i < TIMERS; i++)
    rill_timer_free(timers[i]);
  tu_base_free(base);
}

/* ---- a connection's held bytes --------------------------------------------- */

#define MESSAGE (200 * 1024)

struct gather {
  size_t shown;    /* bytes on_read was shown last */
  int status;      /* its final status, 0 before */
  int complete;    /* the whole message arrived, in order */
  int closed;
};

/* Consumes nothing until the whole message is there: the connection holds
 * it, growing its buffer as it comes. */
static size_t gather_read(rill_conn *c, const char *data, size_t len, int status, void *arg) {
  struct gather *g = (struct gather *)arg;
  (void)c;
  if (status != 0) {
    g->status = status;
    return 0;
  }
  g->shown = len;
  if (len < MESSAGE)
    return 0;
  assert_int_equal(nu_pat_check(data, 0, MESSAGE), -1);
  g->complete = 1;
  return len;
}

static void gather_close(rill_conn *c, void *arg) {
  (void)c;
  ((struct gather *)arg)->closed = 1;
}

static int gather_done(void *arg) {
  struct gather *g = (struct gather *)arg;
  return g->complete || g->status != 0;
}

/* The message arrives whole, or the stream ends with RILL_ENOMEM. */
static void held_message(int n) {
  static const rill_conn_events events = {gather_read, NULL, NULL, NULL, NULL, gather_close};
  rill_base *base = tu_base_new();
  rill_socket_config opts;
  struct gather g = {0};
  unsigned char *message = malloc(MESSAGE);
  nu_pair p;
  nu_source src;
  assert_non_null(message);
  memset(&opts, 0, sizeof opts);
  opts.read_max = 2 * MESSAGE;
  nu_pair_accepted(base, "127.0.0.1", &opts, &p);
  assert_int_equal(rill_conn_start(p.conn, &events, &g), 0);
  nu_source_start(base, &src, p.peer, MESSAGE, 0);
  tu_alloc_fail_realloc_after(n);
  nu_run_until(base, gather_done, &g, LIMIT);
  tu_alloc_fail_realloc_after(-1);
  if (!g.complete)
    assert_int_equal(g.status, RILL_ENOMEM);
  nu_source_stop(&src);
  assert_int_equal(rill_conn_close(p.conn), 0);
  nu_run_until_count(base, &g.closed, 1, LIMIT);
  close(p.peer);
  nu_settle(base);
  tu_base_free(base);
  free(message);
}

/* ---- a write queue ------------------------------------------------------------ */

#define WRITES 3000
#define WRITE_SIZE 1000

/* Many writes the peer does not read yet: one that cannot be queued says
 * RILL_ENOMEM and takes nothing, so the peer reads exactly the writes
 * taken, in order. */
static void queued_writes(int n_growth) {
  rill_base *base = tu_base_new();
  unsigned char *chunk = malloc(WRITE_SIZE);
  unsigned char *got = malloc((size_t)WRITES * WRITE_SIZE);
  uint64_t taken = 0;
  size_t n;
  nu_pair p;
  int i;
  assert_non_null(chunk);
  assert_non_null(got);
  nu_pair_accepted(base, "127.0.0.1", NULL, &p);
  tu_alloc_fail_realloc_after(n_growth);
  for (i = 0; i < WRITES; i++) {
    int err;
    nu_pat_fill(chunk, taken, WRITE_SIZE);
    err = rill_conn_write(p.conn, chunk, WRITE_SIZE);
    if (err == 0)
      taken += WRITE_SIZE;
    else
      assert_int_equal(err, RILL_ENOMEM);
  }
  assert_true(taken >= (uint64_t)(WRITES - 1) * WRITE_SIZE);
  assert_int_equal(rill_conn_close_write(p.conn), 0);
  /* The loop sends while the peer reads, on this thread: a source of its
   * own would be simpler, but the peer is a plain socket. */
  {
    uint64_t end = tu_now_ms() + LIMIT;
    size_t total = 0;
    while (total < taken && tu_now_ms() < end) {
      TU_RUN(base, RILL_RUN_NOWAIT, LIMIT);
      n = nu_recv_all(p.peer, got + total, (size_t)(taken - total), 1);
      total += n;
    }
    assert_int_equal(total, taken);
    assert_int_equal(nu_pat_check(got, 0, total), -1);
  }
  tu_alloc_fail_realloc_after(-1);
  nu_pair_cleanup(base, &p);
  nu_settle(base);
  tu_base_free(base);
  free(chunk);
  free(got);
}

/* ---- the cases ---------------------------------------------------------------- */

struct growth_case {
  const char *name;
  void (*scenario)(int n);
};

static const struct growth_case cases[] = {
    {"test_watcher_tables", many_watchers},
    {"test_timer_tables", many_timers},
    {"test_held_bytes", held_message},
    {"test_write_queue", queued_writes},
};
#define CASES (sizeof cases / sizeof cases[0])

static void test_growth(void **state) {
  const struct growth_case *k = (const struct growth_case *)*state;
  printf("# %s: %d growths failed in turn\n", k->name, fail_each_growth(k->scenario));
}

int main(void) {
  struct CMUnitTest tests[CASES];
  size_t i;
  for (i = 0; i < CASES; i++) {
    struct CMUnitTest t = {cases[i].name, test_growth, tu_setup_fds, tu_teardown_fds,
                           (void *)&cases[i]};
    tests[i] = t;
  }
  if (rill_set_allocator(tu_malloc, tu_realloc, tu_free) != 0)
    return 1;
  return cmocka_run_group_tests(tests, NULL, NULL);
}
