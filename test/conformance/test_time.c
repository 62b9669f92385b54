/* G29 through the callback API: time is read when it is asked for, in
 * nanoseconds. A timer or a deadline counts from the real time of the call
 * that armed it, not from when the loop last woke; a write checks its
 * deadline against the real time; durations below a millisecond work. */
#define _GNU_SOURCE 1

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>
#include <time.h>

#include "rill.h"
#include "test_util.h"
#include "net_util.h"

#define LIMIT 10000 /* a hang guard only */

static void burn_ms(unsigned ms) {
  uint64_t end = tu_now_ns() + (uint64_t)ms * 1000000u;
  while (tu_now_ns() < end) {
  }
}

/* rill_time_now() is CLOCK_MONOTONIC in nanoseconds; rill_base_now() is the
 * base's copy of it, never ahead of it. */
static void test_g29_clocks(void **state) {
  rill_base *base = tu_base_new();
  struct timespec ts;
  uint64_t a, mono, b;
  (void)state;
  a = rill_time_now();
  clock_gettime(CLOCK_MONOTONIC, &ts);
  mono = (uint64_t)ts.tv_sec * RILL_SEC + (uint64_t)ts.tv_nsec;
  b = rill_time_now();
  assert_true(a <= mono && mono <= b);
  assert_true(rill_base_now(base) <= rill_time_now());
  assert_int_equal(rill_base_now(NULL), 0);
  assert_true(RILL_SEC == 1000 * RILL_MSEC && RILL_MSEC == 1000 * RILL_USEC && RILL_USEC == 1000 * RILL_NSEC);
  tu_base_free(base);
}

/* A callback works for 60 ms, then starts a 100 ms timer: it fires at
 * least 100 ms after the start, by the real clock. Counted from the time
 * the loop woke, it would fire after 40 ms. */
struct late_start {
  rill_timer *worker, *late;
  uint64_t started_ns, fired_ns;
};

static void late_fired(rill_timer *t, void *arg) {
  struct late_start *s = arg;
  (void)t;
  s->fired_ns = tu_now_ns();
}

static void late_worker(rill_timer *t, void *arg) {
  struct late_start *s = arg;
  (void)t;
  burn_ms(60);
  s->started_ns = tu_now_ns();
  assert_int_equal(rill_timer_start(s->late, 100 * RILL_MSEC, 0), 0);
}

static void test_g29_timer_counts_from_the_call(void **state) {
  rill_base *base = tu_base_new();
  struct late_start s;
  (void)state;
  memset(&s, 0, sizeof s);
  assert_int_equal(rill_timer_new(base, late_worker, &s, &s.worker), 0);
  assert_int_equal(rill_timer_new(base, late_fired, &s, &s.late), 0);
  assert_int_equal(rill_timer_start(s.worker, 0, 0), 0);
  assert_int_equal(TU_RUN(base, RILL_RUN_DEFAULT, LIMIT), 0);
  assert_true(s.fired_ns != 0);
  assert_true(s.fired_ns - s.started_ns >= 100 * RILL_MSEC);
  /* rill_timer_remaining() counts in nanoseconds too. */
  assert_int_equal(rill_timer_start(s.late, 250 * RILL_USEC, 0), 0);
  assert_true(rill_timer_remaining(s.late) <= 250 * RILL_USEC);
  rill_timer_free(s.worker);
  rill_timer_free(s.late);
  tu_base_free(base);
}

/* A sub-millisecond timer fires, and not before its time. */
static void test_g29_microsecond_timer(void **state) {
  rill_base *base = tu_base_new();
  struct late_start s;
  uint64_t t0;
  (void)state;
  memset(&s, 0, sizeof s);
  assert_int_equal(rill_timer_new(base, late_fired, &s, &s.late), 0);
  t0 = tu_now_ns();
  assert_int_equal(rill_timer_start(s.late, 300 * RILL_USEC, 0), 0);
  assert_int_equal(TU_RUN(base, RILL_RUN_DEFAULT, LIMIT), 0);
  assert_true(s.fired_ns - t0 >= 300 * RILL_USEC);
  rill_timer_free(s.late);
  tu_base_free(base);
}

/* The seed's 10 us read deadline: the read times out, nothing is lost, and
 * the connection reads again under a new deadline. */
static void test_g29_ten_microsecond_read_deadline(void **state) {
  rill_base *base = tu_base_new();
  nu_pair p;
  nu_reader r;
  uint64_t t0;
  (void)state;
  nu_pair_accepted(base, "127.0.0.1", NULL, &p);
  nu_reader_init(&r);
  r.stop_base = base;
  nu_reader_start(p.conn, &r);
  t0 = tu_now_ns();
  assert_int_equal(rill_conn_set_deadline(p.conn, RILL_DEADLINE_READ, rill_time_now() + 10 * RILL_USEC), 0);
  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  assert_int_equal(r.timeouts, 1);
  assert_int_equal(r.data_calls, 0);
  assert_true(tu_now_ns() - t0 >= 10 * RILL_USEC);

  assert_int_equal(rill_conn_set_deadline(p.conn, RILL_DEADLINE_READ, 0), 0);
  tu_write_byte(p.peer);
  r.stop_at_bytes = 1;
  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  assert_int_equal(r.consumed, 1);
  nu_pair_cleanup(base, &p);
  tu_base_free(base);
}

/* A write deadline that passed while the caller worked fails the write at
 * once, although the loop has not woken since it was set. */
static void test_g29_write_checks_the_real_time(void **state) {
  rill_base *base = tu_base_new();
  nu_pair p;
  (void)state;
  nu_pair_accepted(base, "127.0.0.1", NULL, &p);
  assert_int_equal(rill_conn_set_deadline(p.conn, RILL_DEADLINE_WRITE, rill_time_now() + 20 * RILL_MSEC), 0);
  tu_sleep_ms(30);
  assert_int_equal(rill_conn_write(p.conn, "late", 4), RILL_ETIMEOUT);
  assert_int_equal(rill_conn_set_deadline(p.conn, RILL_DEADLINE_WRITE, rill_time_now() + RILL_SEC), 0);
  assert_int_equal(rill_conn_write(p.conn, "ok", 2), 0);
  nu_pair_cleanup(base, &p);
  tu_base_free(base);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_g29_clocks),
      cmocka_unit_test(test_g29_timer_counts_from_the_call),
      cmocka_unit_test(test_g29_microsecond_timer),
      cmocka_unit_test(test_g29_ten_microsecond_read_deadline),
      cmocka_unit_test(test_g29_write_checks_the_real_time),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
