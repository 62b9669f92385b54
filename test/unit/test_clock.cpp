// The start clock (lib/core/clock.h): rill_timer_start()'s cheap reading of
// CLOCK_MONOTONIC. Every value must lie between the clock read just before
// and start_clock_max_ahead_ns after the clock read just after, and never
// below the one before it: in one thread, in two threads at once, and in a
// forked child; with reads back to back (which cross the end of each
// anchor's extrapolation, where a value computed ahead meets an exact one)
// and spaced out across whole extrapolations. The loop's time
// (start_clock_catch_up) must never be below a value given before it, so a
// timer started with 0 ns is due on the next iteration. Where the machine supports
// the TSC path, it must be in use once calibrated. The loop's wait for a
// timer just started counts from the start clock too: a 0 ns timer makes it
// a poll, and no wait is longer than the timer's duration, however old the
// loop's time is.
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
extern "C" {  // this cmocka.h does not say so itself
#include <cmocka.h>
}

#include <stdint.h>
#include <stdio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <thread>

#include "core/base_impl.h"
#include "core/start_clock_now.h"
#include "rill.h"

using namespace rill::detail;

namespace {

struct bounds_report {
  uint64_t samples = 0;
  uint64_t behind = 0;     // values below the clock read before them
  uint64_t too_far = 0;    // values past the clock read after them + the bound
  uint64_t backwards = 0;  // values below the previous one
  uint64_t loop_behind = 0;  // the loop's time (catch-up) below a start value
  uint64_t worst_ahead = 0;
};

void check_one(start_clock &c, uint64_t &previous, bounds_report &r) {
  uint64_t before = monotonic_ns();
  uint64_t value = start_clock_now(c);
  uint64_t after = monotonic_ns();
  r.samples++;
  if (value < before)
    r.behind++;
  if (value > after + start_clock_max_ahead_ns)
    r.too_far++;
  if (value < previous)
    r.backwards++;
  if (value > after && value - after > r.worst_ahead)
    r.worst_ahead = value - after;
  if (r.samples % 64 == 0 && start_clock_catch_up(c) < value)
    r.loop_behind++;
  previous = value;
}

// run_ms of reads: alternately back to back for a while, and spaced out by
// busy gaps of up to 1.5 extrapolations (a sleep would do as well, but
// sleeps are long on a loaded machine and the spacing is what matters).
bounds_report check_bounds(uint64_t run_ms) {
  start_clock c;
  bounds_report r;
  uint64_t previous = 0, seed = 88172645463325252u;
  uint64_t end = monotonic_ns() + run_ms * ns_per_ms;
  while (monotonic_ns() < end) {
    for (int i = 0; i < 20000; i++)
      check_one(c, previous, r);
    for (int i = 0; i < 40; i++) {
      seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
      uint64_t gap = seed % (start_clock_extrapolate_ns * 3 / 2);
      uint64_t until = monotonic_ns() + gap;
      while (monotonic_ns() < until) {
      }
      check_one(c, previous, r);
    }
  }
  return r;
}

void assert_within_bounds(const bounds_report &r) {
  if (r.behind || r.too_far || r.backwards || r.loop_behind)
    fprintf(stderr,
            "samples %llu: behind %llu, too far ahead %llu, backwards %llu, loop behind %llu, "
            "worst ahead %llu ns\n",
            (unsigned long long)r.samples, (unsigned long long)r.behind,
            (unsigned long long)r.too_far, (unsigned long long)r.backwards,
            (unsigned long long)r.loop_behind, (unsigned long long)r.worst_ahead);
  assert_true(r.samples > 1000);
  assert_int_equal(r.behind, 0);
  assert_int_equal(r.too_far, 0);
  assert_int_equal(r.backwards, 0);
  assert_int_equal(r.loop_behind, 0);
}

void test_one_thread(void **) {
  bounds_report r = check_bounds(150);
  assert_within_bounds(r);
  // 150 ms is far past the calibration's 8.4 ms.
  assert_int_equal(start_clock_uses_tsc(), start_clock_tsc_supported());
  printf("start clock: TSC %s, %llu samples, at most %llu ns ahead\n",
         start_clock_uses_tsc() ? "in use" : "not supported", (unsigned long long)r.samples,
         (unsigned long long)r.worst_ahead);
}

void test_two_threads(void **) {
  bounds_report a, b;
  std::thread other([&b] { b = check_bounds(100); });
  a = check_bounds(100);
  other.join();
  assert_within_bounds(a);
  assert_within_bounds(b);
}

void test_forked_child(void **) {
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    bounds_report r = check_bounds(60);
    _exit(r.samples > 1000 && !r.behind && !r.too_far && !r.backwards && !r.loop_behind ? 0 : 1);
  }
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
}

void noop_timer(rill_timer *, void *) {}

// The loop works out its wait from the clock read just before it
// (timers_next_timeout): a timer started long after the loop's time was
// read (10 ms of busy work here, as callbacks might do) must neither make
// it wait for that time again (a 0 ns timer: a poll), nor, started from a
// start clock value ahead of that read, wait a few µs instead of polling.
void test_wait_for_timer_started_late(void **) {
  rill_base *base = nullptr;
  rill_timer *t = nullptr;
  assert_int_equal(rill_base_new(nullptr, &base), 0);
  assert_int_equal(rill_timer_new(base, noop_timer, nullptr, &t), 0);
  uint64_t stale_until = monotonic_ns() + 10 * ns_per_ms;
  while (monotonic_ns() < stale_until) {
  }
  const int64_t five_ms = 5 * static_cast<int64_t>(ns_per_ms);
  uint64_t zero_waited = 0, longer = 0;
  int64_t worst_zero = 0, worst_over = 0;
  for (int i = 0; i < 2000; i++) {
    assert_int_equal(rill_timer_start(t, 0, 0), 0);
    int64_t wait = timers_next_timeout(base, monotonic_ns());
    if (wait != 0)
      zero_waited++;
    worst_zero = wait > worst_zero ? wait : worst_zero;
    assert_int_equal(rill_timer_start(t, 5 * ns_per_ms, 0), 0);
    wait = timers_next_timeout(base, monotonic_ns());
    if (wait > five_ms)
      longer++;
    worst_over = wait - five_ms > worst_over ? wait - five_ms : worst_over;
  }
  if (zero_waited || longer)
    fprintf(stderr,
            "0 ns timer: %llu waits (%lld ns at worst); "
            "5 ms timer: %llu waits longer (by %lld ns)\n",
            (unsigned long long)zero_waited, (long long)worst_zero, (unsigned long long)longer,
            (long long)worst_over);
  assert_int_equal(zero_waited, 0);
  assert_int_equal(longer, 0);
  rill_timer_free(t);
  assert_int_equal(rill_base_free(base), 0);
}

}  // namespace

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_one_thread),
      cmocka_unit_test(test_forked_child),
      cmocka_unit_test(test_two_threads),
      cmocka_unit_test(test_wait_for_timer_started_late),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
