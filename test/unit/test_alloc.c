/* rill_set_allocator: only while no base exists; every block rill allocates
 * goes through it and comes back; timer restarts and the io steady state
 * allocate nothing.
 *
 * The allocator is process-global, so this file is its own program and its
 * tests run in order. */
#define _GNU_SOURCE 1

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "rill.h"
#include "test_util.h"

static void timer_cb(rill_timer *t, void *arg) {
  (void)t;
  ++*(int *)arg;
}

static void io_cb(rill_io *io, int fd, unsigned events, void *arg) {
  (void)io;
  (void)fd;
  (void)events;
  ++*(int *)arg;
}

static void post_cb(rill_base *base, void *arg) {
  (void)base;
  ++*(int *)arg;
}

static void sig_cb(rill_signal *s, int signum, void *arg) {
  (void)s;
  (void)signum;
  (void)arg;
}

static void test_busy_while_base_exists(void **state) {
  rill_base *base = NULL;
  (void)state;
  /* With the C library's functions. */
  assert_int_equal(rill_base_new(NULL, &base), 0);
  assert_int_equal(rill_set_allocator(tu_malloc, tu_realloc, tu_free), RILL_EBUSY);
  assert_int_equal(rill_set_allocator(NULL, NULL, NULL), RILL_EBUSY);
  assert_int_equal(rill_base_free(base), 0);
  /* No base any more. */
  assert_int_equal(rill_set_allocator(NULL, NULL, NULL), 0);
}

static void test_install(void **state) {
  tu_alloc_counts before, after;
  rill_base *base = NULL, *base2 = NULL;
  (void)state;
  assert_int_equal(rill_set_allocator(tu_malloc, tu_realloc, tu_free), 0);
  tu_alloc_get(&before);
  assert_int_equal(rill_base_new(NULL, &base), 0);
  tu_alloc_get(&after);
  /* The base itself came from the installed allocator. */
  assert_true(after.mallocs > before.mallocs);

  /* Busy while any base exists, the second one included. */
  assert_int_equal(rill_base_new(NULL, &base2), 0);
  assert_int_equal(rill_set_allocator(NULL, NULL, NULL), RILL_EBUSY);
  assert_int_equal(rill_base_free(base), 0);
  assert_int_equal(rill_set_allocator(NULL, NULL, NULL), RILL_EBUSY);
  assert_int_equal(rill_base_free(base2), 0);

  tu_alloc_get(&after);
  assert_int_equal(after.live, before.live);
  assert_int_equal(after.foreign, 0);
}

static void test_timer_restarts_do_not_allocate(void **state) {
  enum { TIMERS = 64, RESTARTS = 1000000 };
  tu_alloc_counts before, after;
  rill_base *base = tu_base_new();
  rill_timer *t[TIMERS];
  int fired = 0, i;
  (void)state;

  for (i = 0; i < TIMERS; i++) {
    assert_int_equal(rill_timer_new(base, timer_cb, &fired, &t[i]), 0);
    assert_int_equal(rill_timer_start(t[i], (10000 + (uint64_t)i) * RILL_MSEC, 0), 0);
  }
  /* Let any lazily grown structure reach its size. */
  for (i = 0; i < TIMERS; i++) assert_int_equal(rill_timer_stop(t[i]), 0);
  for (i = 0; i < TIMERS; i++) assert_int_equal(rill_timer_start(t[i], 20 * RILL_SEC, 0), 0);
  assert_int_equal(rill_base_run(base, RILL_RUN_NOWAIT), 1);

  tu_alloc_get(&before);
  for (i = 0; i < RESTARTS; i++) {
    rill_timer *x = t[i % TIMERS];
    assert_int_equal(rill_timer_start(x, (5000 + (uint64_t)(i % 977)) * RILL_MSEC, 0), 0);
    if (i % 5 == 0) {
      assert_int_equal(rill_timer_stop(x), 0);
      assert_int_equal(rill_timer_start(x, 7 * RILL_SEC, RILL_SEC), 0);
    }
  }
  tu_alloc_get(&after);
  assert_int_equal(after.mallocs, before.mallocs);
  assert_int_equal(after.reallocs, before.reallocs);
  assert_int_equal(after.frees, before.frees);
  assert_int_equal(fired, 0);

  for (i = 0; i < TIMERS; i++) rill_timer_free(t[i]);
  tu_base_free(base);
}

static void test_steady_state_loop_does_not_allocate(void **state) {
  tu_alloc_counts before, after;
  rill_base *base = tu_base_new();
  rill_timer *t;
  rill_io *io;
  int p[2], fired = 0, ios = 0, i;
  (void)state;

  tu_pipe(p);
  tu_write_byte(p[1]);
  assert_int_equal(rill_io_new(base, p[0], io_cb, &ios, &io), 0);
  assert_int_equal(rill_timer_new(base, timer_cb, &fired, &t), 0);
  assert_int_equal(rill_timer_start(t, 0, RILL_MSEC), 0);
  assert_int_equal(rill_io_start(io, RILL_READ), 0);

  /* Warm up: interest changes and dispatch reach their sizes. */
  for (i = 0; i < 20; i++) {
    assert_int_equal(rill_io_stop(io), 0);
    assert_int_equal(rill_io_start(io, (i & 1) ? RILL_READ : RILL_READ | RILL_WRITE), 0);
    assert_int_equal(rill_base_run(base, RILL_RUN_NOWAIT), 1);
  }

  tu_alloc_get(&before);
  for (i = 0; i < 10000; i++) {
    assert_int_equal(rill_io_stop(io), 0);
    assert_int_equal(rill_io_start(io, (i & 1) ? RILL_READ : RILL_READ | RILL_WRITE), 0);
    assert_int_equal(rill_base_run(base, RILL_RUN_NOWAIT), 1);
  }
  tu_alloc_get(&after);
  assert_true(ios >= 10000);
  assert_int_equal(after.mallocs, before.mallocs);
  assert_int_equal(after.reallocs, before.reallocs);
  assert_int_equal(after.frees, before.frees);

  rill_timer_free(t);
  rill_io_free(io);
  close(p[0]);
  close(p[1]);
  tu_base_free(base);
}

static void test_everything_returned(void **state) {
  tu_alloc_counts before, after;
  rill_base *base;
  rill_timer *t[10];
  rill_io *io;
  rill_signal *sig;
  int p[2], fired = 0, posted = 0, i;
  (void)state;

  tu_alloc_get(&before);
  base = tu_base_new();
  tu_pipe(p);
  assert_int_equal(rill_io_new(base, p[1], io_cb, &fired, &io), 0);
  assert_int_equal(rill_io_start(io, RILL_WRITE), 0);
  assert_int_equal(rill_signal_new(base, sig_cb, NULL, &sig), 0);
  assert_int_equal(rill_signal_start(sig, SIGUSR2), 0);
  for (i = 0; i < 10; i++) {
    assert_int_equal(rill_timer_new(base, timer_cb, &fired, &t[i]), 0);
    assert_int_equal(rill_timer_start(t[i], ((uint64_t)i) * RILL_MSEC, 0), 0);
  }
  for (i = 0; i < 100; i++) assert_int_equal(rill_base_post(base, post_cb, &posted), 0);
  assert_int_equal(TU_RUN(base, RILL_RUN_ONCE, 3000), 1);
  for (i = 0; i < 10; i++) rill_timer_free(t[i]);
  rill_io_free(io);
  rill_signal_free(sig);
  /* Some posts may still be queued: they run in free. */
  for (i = 0; i < 10; i++) assert_int_equal(rill_base_post(base, post_cb, &posted), 0);
  tu_base_free(base);
  assert_int_equal(posted, 110);
  close(p[0]);
  close(p[1]);

  tu_alloc_get(&after);
  assert_true(after.mallocs > before.mallocs);
  assert_int_equal(after.mallocs - before.mallocs, after.frees - before.frees);
  assert_int_equal(after.live, before.live);
  assert_int_equal(after.live, 0);
  assert_int_equal(after.foreign, 0);
}

static void test_out_of_memory(void **state) {
  tu_alloc_counts before, after;
  rill_base *base = NULL;
  int n, ok = 0;
  (void)state;
  tu_alloc_get(&before);
  /* Fail the n-th allocation of base creation for every n until it works:
   * each failure is RILL_ENOMEM (or the -errno of a failed call) and leaks
   * nothing. */
  for (n = 0; n < 64 && !ok; n++) {
    int rc;
    tu_alloc_fail_after(n);
    base = NULL;
    rc = rill_base_new(NULL, &base);
    tu_alloc_fail_after(-1);
    if (rc == 0) {
      ok = 1;
      assert_int_equal(rill_base_free(base), 0);
    } else {
      assert_int_equal(rc, RILL_ENOMEM);
    }
    tu_alloc_get(&after);
    assert_int_equal(after.live, before.live);
  }
  assert_true(ok);

  /* Handle creation under memory pressure: a handle may come from memory
   * the base already holds, but sooner or later creation needs memory and
   * must then fail cleanly with RILL_ENOMEM. */
  base = tu_base_new();
  {
    enum { MAX = 10000 };
    static rill_timer *timers[MAX];
    rill_io *io = NULL;
    int p[2], rc = 0, made = 0, posted = 0, i;
    tu_pipe(p);
    tu_alloc_fail_after(0);
    while (made < MAX) {
      rc = rill_timer_new(base, timer_cb, NULL, &timers[made]);
      if (rc != 0) break;
      made++;
    }
    tu_alloc_fail_after(-1);
    assert_int_equal(rc, RILL_ENOMEM);
    for (i = 0; i < made; i++) rill_timer_free(timers[i]);

    tu_alloc_fail_after(0);
    rc = rill_io_new(base, p[0], io_cb, NULL, &io);
    tu_alloc_fail_after(-1);
    assert_true(rc == 0 || rc == RILL_ENOMEM);
    if (rc == 0) {
      rill_io_free(io);
    } else {
      /* The failed io_new did not claim the descriptor. */
      assert_int_equal(rill_io_new(base, p[0], io_cb, NULL, &io), 0);
      rill_io_free(io);
    }

    tu_alloc_fail_after(0);
    rc = rill_base_post(base, post_cb, &posted);
    tu_alloc_fail_after(-1);
    assert_true(rc == 0 || rc == RILL_ENOMEM); /* may not need memory */
    close(p[0]);
    close(p[1]);
    tu_base_free(base);
    /* A post that failed never runs; one that succeeded runs in free. */
    assert_int_equal(posted, rc == 0 ? 1 : 0);
  }
  tu_alloc_get(&after);
  assert_int_equal(after.live, before.live);
}

/* A registration the kernel refuses (the descriptor was closed under its
 * watcher) is reported to the watcher, ready, even when no allocation
 * succeeds: its report needs no memory. It used to be dropped when the list
 * of refused registrations could not grow, leaving the watcher stopped
 * without a word (a facade fiber parked in accept on kqueue, out of memory,
 * was never woken). */
static void test_refused_registration_reported_out_of_memory(void **state) {
  rill_base *base = tu_base_new();
  rill_io *io = NULL;
  int p[2], n = 0;
  (void)state;
  tu_pipe(p);
  assert_int_equal(rill_io_new(base, p[0], io_cb, &n, &io), 0);
  assert_int_equal(rill_io_start(io, RILL_READ), 0);
  close(p[0]); /* before the loop registers it */
  tu_alloc_fail_after(0);
  TU_RUN(base, RILL_RUN_ONCE, 10000);
  tu_alloc_fail_after(-1);
  assert_int_equal(n, 1);
  rill_io_free(io);
  close(p[1]);
  tu_base_free(base);
}

/* The largest block asked for, through the counting allocator. */
static size_t largest_block;

static void *largest_malloc(size_t size) {
  if (size > largest_block) largest_block = size;
  return tu_malloc(size);
}

static void *largest_realloc(void *ptr, size_t size) {
  if (size > largest_block) largest_block = size;
  return tu_realloc(ptr, size);
}

/* The timing wheel's 2432 slot lists (38 KB) come with the first timer:
 * a base without timers (most of a server's connections' bases, every
 * base in a process that only does io) allocates no block that large. */
static void test_wheel_comes_with_first_timer(void **state) {
  enum { WHEEL_BYTES = 2432 * 16 };
  rill_base *base = NULL;
  rill_timer *t = NULL;
  int p[2], n = 0;
  rill_io *io = NULL;
  (void)state;
  assert_int_equal(rill_set_allocator(NULL, NULL, NULL), 0);
  assert_int_equal(rill_set_allocator(largest_malloc, largest_realloc, tu_free), 0);
  largest_block = 0;
  assert_int_equal(rill_base_new(NULL, &base), 0);
  /* An io watcher and a turn of the loop need no wheel either. */
  tu_pipe(p);
  assert_int_equal(rill_io_new(base, p[0], io_cb, &n, &io), 0);
  assert_int_equal(rill_io_start(io, RILL_READ), 0);
  assert_int_equal(write(p[1], "x", 1), 1);
  assert_int_equal(rill_base_run(base, RILL_RUN_ONCE), 1); /* io still active */
  assert_int_equal(n, 1);
  assert_true(largest_block < WHEEL_BYTES);
  assert_int_equal(rill_timer_new(base, timer_cb, &n, &t), 0);
  assert_true(largest_block >= WHEEL_BYTES);
  assert_int_equal(rill_io_stop(io), 0);
  assert_int_equal(rill_timer_start(t, 0, 0), 0);
  assert_int_equal(rill_base_run(base, RILL_RUN_DEFAULT), 0);
  assert_int_equal(n, 2);
  rill_timer_free(t);
  rill_io_free(io);
  close(p[0]);
  close(p[1]);
  assert_int_equal(rill_base_free(base), 0);
  assert_int_equal(rill_set_allocator(NULL, NULL, NULL), 0);
  assert_int_equal(rill_set_allocator(tu_malloc, tu_realloc, tu_free), 0);
}

static void test_restore(void **state) {
  (void)state;
  assert_int_equal(rill_set_allocator(NULL, NULL, NULL), 0);
  {
    tu_alloc_counts before, after;
    rill_base *base;
    tu_alloc_get(&before);
    base = tu_base_new();
    tu_alloc_get(&after);
    assert_int_equal(after.mallocs, before.mallocs);
    tu_base_free(base);
  }
}

int main(void) {
#define T(f) cmocka_unit_test_setup_teardown(f, tu_setup_fds, tu_teardown_fds)
  const struct CMUnitTest tests[] = {
      T(test_busy_while_base_exists),
      T(test_install),
      T(test_timer_restarts_do_not_allocate),
      T(test_steady_state_loop_does_not_allocate),
      T(test_everything_returned),
      T(test_out_of_memory),
      T(test_refused_registration_reported_out_of_memory),
      T(test_wheel_comes_with_first_timer),
      T(test_restore),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
