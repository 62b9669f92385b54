// The timing wheel behind rill_timer (lib/core/timer_wheel.h).
//
// The first tests drive the wheel itself on a made-up clock, against a
// model that keeps every armed timer with its due time and start number:
// whatever the wheel fires must be exactly what the model says is due, in
// (due time, start) order, never early, across every level and cascade and
// with exactly equal due times (which the real clock cannot arrange). The
// rest go through the public API on the real clock: never early by
// rill_time_now(), cascades from the upper levels, stops and restarts from
// inside callbacks of the same batch, zero and huge durations, and restarts
// that do not allocate.
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
extern "C" {  // this cmocka.h does not say so itself
#include <cmocka.h>
}

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <unistd.h>

#include <algorithm>
#include <stdexcept>
#include <vector>

#include "core/base_impl.h"
#include "core/timer_wheel.h"
#include "rill.h"
#include "test_util.h"

using rill::detail::timer_wheel;

namespace {

// ---- the wheel on a made-up clock --------------------------------------

void no_cb(rill_timer *, void *) {}

struct model_timer {
  rill_timer *timer;
  bool armed = false;
  uint64_t due = 0;
  uint64_t start = 0;  // start number: larger started later
  bool coarse = false; // armed for coarse_min_ns or more: may wake late
};

uint64_t rng_state;

uint64_t rng() {
  uint64_t z = (rng_state += UINT64_C(0x9E3779B97F4A7C15));
  z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
  return z ^ (z >> 31);
}

uint64_t below(uint64_t n) { return n ? rng() % n : 0; }

constexpr uint64_t max_duration = UINT64_MAX / 4;  // rill_timer_start's cap

struct model {
  timer_wheel wheel;
  std::vector<rill_timer *> storage;
  std::vector<model_timer> timers;
  uint64_t now;
  uint64_t starts = 0;
  size_t fired = 0;

  model(size_t n, uint64_t start_ns) : now(start_ns) {
    assert_true(rill::detail::wheel_prepare(wheel));
    for (size_t i = 0; i < n; i++) {
      auto *t = new rill_timer(no_cb, nullptr);
      t->due_ns = 0;
      storage.push_back(t);
      model_timer m;
      m.timer = t;
      timers.push_back(m);
    }
  }
  ~model() {
    for (rill_timer *t : storage)
      delete t;
  }

  size_t index_of(rill_timer *t) const {
    for (size_t i = 0; i < storage.size(); i++)
      if (storage[i] == t)
        return i;
    fail_msg("the wheel returned a timer it was never given");
    return 0;
  }

  // A duration from every range the wheel treats differently: the current
  // tick, the ring, each upper level, the cap.
  uint64_t any_duration() {
    switch (below(9)) {
      case 0: return 0;
      case 1: return below(uint64_t{1} << 20);
      case 2: return below(uint64_t{1} << 26);
      case 3: return below(uint64_t{1} << 31);
      case 4: return below(uint64_t{1} << 36);
      case 5: return below(uint64_t{1} << 42);
      case 6: return below(uint64_t{1} << 50);
      case 7: return max_duration - below(uint64_t{1} << 40);
      default: return below(uint64_t{1} << 33);
    }
  }

  void arm(size_t i, uint64_t due) {
    model_timer &m = timers[i];
    rill::detail::wheel_remove(wheel, m.timer);
    m.timer->due_ns = due;
    rill::detail::wheel_insert(wheel, m.timer, now);
    m.armed = true;
    m.due = due;
    m.start = ++starts;
    m.coarse = due >= now && due - now >= timer_wheel::coarse_min_ns;
  }

  void arm_any(size_t i) {
    // Often exactly the due time of another armed timer, to test ties.
    if (below(4) == 0) {
      size_t j = below(timers.size());
      if (timers[j].armed && timers[j].due >= now) {
        arm(i, timers[j].due);
        return;
      }
    }
    arm(i, now + any_duration());
  }

  void stop(size_t i) {
    rill::detail::wheel_remove(wheel, timers[i].timer);
    timers[i].armed = false;
  }

  bool any_armed() const {
    for (const model_timer &m : timers)
      if (m.armed)
        return true;
    return false;
  }

  uint64_t earliest_due() const {
    uint64_t best = UINT64_MAX;
    for (const model_timer &m : timers)
      if (m.armed && m.due < best)
        best = m.due;
    return best;
  }

  // The latest the loop may wake for the earliest timer: its due time, or
  // with only coarse timers armed, the end of its tick.
  uint64_t latest_wake() const {
    uint64_t earliest = earliest_due();
    for (const model_timer &m : timers)
      if (m.armed && !m.coarse)
        return earliest;
    constexpr uint64_t tick = uint64_t{1} << timer_wheel::tick_shift;
    return (earliest + tick - 1) & ~(tick - 1);
  }

  // One run of the loop's timer phase at `now`. Between firings it plays
  // callbacks: stops other timers (due in this batch or not) and restarts
  // the one that fired or another. Checks the order against the model.
  void run(bool with_callbacks) {
    struct expected {
      size_t index;
      uint64_t due, start;
    };
    std::vector<expected> due_now;
    for (size_t i = 0; i < timers.size(); i++)
      if (timers[i].armed && timers[i].due <= now)
        due_now.push_back({i, timers[i].due, timers[i].start});
    std::sort(due_now.begin(), due_now.end(), [](const expected &a, const expected &b) {
      return a.due != b.due ? a.due < b.due : a.start < b.start;
    });
    size_t next = 0;
    rill::detail::wheel_take_due(wheel, now);
    while (rill_timer *t = rill::detail::wheel_pop_due(wheel, now)) {
      size_t i = index_of(t);
      // Skip what a "callback" stopped or restarted since the snapshot.
      while (next < due_now.size() && (!timers[due_now[next].index].armed ||
                                       timers[due_now[next].index].start != due_now[next].start))
        next++;
      assert_true(next < due_now.size());
      assert_int_equal(i, due_now[next].index);
      assert_true(timers[i].due <= now);  // never early
      assert_int_equal(t->due_ns, timers[i].due);
      timers[i].armed = false;
      next++;
      fired++;
      if (!with_callbacks)
        continue;
      switch (below(6)) {
        case 0: stop(below(timers.size())); break;
        case 1: arm(i, now + (below(2) ? 0 : any_duration())); break;  // restart itself
        case 2: arm_any(below(timers.size())); break;
        default: break;
      }
    }
    while (next < due_now.size() && (!timers[due_now[next].index].armed ||
                                     timers[due_now[next].index].start != due_now[next].start))
      next++;
    assert_int_equal(next, due_now.size());  // nothing due was left behind
  }

  // The loop's wait after a run: -1 with nothing armed, and never past the
  // earliest due time (with only coarse timers, the end of its tick).
  int64_t check_timeout() {
    int64_t timeout = rill::detail::wheel_next_timeout(wheel, now);
    if (!any_armed()) {
      assert_int_equal(timeout, -1);
      return timeout;
    }
    assert_true(timeout >= 0);
    uint64_t earliest = earliest_due();
    assert_true(earliest <= now || now + static_cast<uint64_t>(timeout) <= latest_wake());
    return timeout;
  }
};

void random_walk(uint64_t seed, uint64_t start_ns, size_t timers, int steps) {
  rng_state = seed;
  model m(timers, start_ns);
  for (int step = 0; step < steps; step++) {
    size_t i = below(timers);
    switch (below(8)) {
      case 0:
      case 1:
      case 2: m.arm_any(i); break;
      case 3: m.stop(i); break;
      default: {
        // Time passes: a little, to the next wake-up the wheel asked for,
        // or a lot.
        int64_t timeout = m.check_timeout();
        uint64_t step_ns;
        switch (below(4)) {
          case 0: step_ns = below(uint64_t{1} << 21); break;
          case 1: step_ns = timeout > 0 ? static_cast<uint64_t>(timeout) : 0; break;
          case 2: step_ns = below(uint64_t{1} << 34); break;
          default: step_ns = below(4) == 0 ? below(uint64_t{1} << 45) : below(uint64_t{1} << 28); break;
        }
        // The monotonic clock stays far from 2^63 ns (292 years).
        if (m.now + step_ns < (uint64_t{1} << 61))
          m.now += step_ns;
        m.run(true);
        m.check_timeout();
      }
    }
  }
  // Finally run far ahead: everything armed fires, in order.
  m.now += max_duration + 1;
  m.run(false);
  assert_false(m.any_armed());
  assert_int_equal(m.check_timeout(), -1);
  assert_true(m.fired > 0);
}

void test_model_random(void **state) {
  (void)state;
  for (uint64_t seed = 1; seed <= 40; seed++)
    random_walk(seed, below(uint64_t{1} << 40) + seed, 64, 4000);
  // A clock that starts at a large value, near block and level edges.
  random_walk(99, (uint64_t{1} << 45) - (uint64_t{1} << 20) - 5, 200, 6000);
  random_walk(100, 0, 200, 6000);
}

// Following the wheel's wake-ups exactly, every timer fires at its due time
// to the nanosecond, and a lone far timer takes a few wake-ups, not one
// per tick.
void test_model_follow_wakeups(void **state) {
  (void)state;
  rng_state = 7;
  for (int round = 0; round < 200; round++) {
    model m(32, below(uint64_t{1} << 44));
    for (size_t i = 0; i < m.timers.size(); i++)
      m.arm_any(i);
    int wakeups = 0;
    while (m.any_armed()) {
      uint64_t latest = m.latest_wake();
      int64_t timeout = m.check_timeout();
      assert_true(timeout >= 0);
      m.now += static_cast<uint64_t>(timeout);
      uint64_t earliest = m.earliest_due();
      size_t before = m.fired;
      m.run(false);
      if (m.fired > before) {
        // Not late either: to the nanosecond while a short timer is armed,
        // within the earliest one's tick otherwise.
        assert_true(earliest <= m.now);
        assert_true(m.now <= latest);
      }
      assert_true(++wakeups < 10000);
    }
  }
  // One timer, 10 days out: the loop wakes a handful of times, not once
  // per tick (that would be 800 million).
  model m(1, 123456789);
  m.arm(0, m.now + 10ull * 24 * 3600 * 1000000000ull);
  int wakeups = 0;
  while (m.any_armed()) {
    m.now += static_cast<uint64_t>(m.check_timeout());
    m.run(false);
    wakeups++;
  }
  assert_true(wakeups <= 2 * static_cast<int>(timer_wheel::upper_levels) + 3);
}

// Coarse timers (armed for 67 ms or more) due in the same tick fire in one
// wake-up, at the end of the tick, never early; one short timer armed
// among them brings back waking to the nanosecond.
void test_model_coarse_wakeups(void **state) {
  (void)state;
  rng_state = 11;
  constexpr uint64_t tick = uint64_t{1} << timer_wheel::tick_shift;
  for (int with_short = 0; with_short < 2; with_short++) {
    model m(2000, below(uint64_t{1} << 40));
    // 2000 timers due within 100 ticks, 100 to 200 ms out, all distinct.
    for (size_t i = 0; i < m.timers.size(); i++)
      m.arm(i, m.now + (uint64_t{100} << 20) + below(100 * tick));
    if (with_short) {
      // Half way through, a timer about 52 ms out (not coarse), due after all
      // the others: from then on the loop wakes for each due time.
      uint64_t end = m.now + (uint64_t{100} << 20) + 100 * tick;
      m.now += uint64_t{150} << 20;
      m.run(false);
      m.arm(0, end + 1);
      assert_false(m.timers[0].coarse);
    }
    int wakeups = 0;
    while (m.any_armed()) {
      uint64_t earliest = m.earliest_due();
      uint64_t latest = m.latest_wake();
      m.now += static_cast<uint64_t>(m.check_timeout());
      size_t before = m.fired;
      m.run(false);
      if (m.fired > before) {
        assert_true(earliest <= m.now);
        assert_true(m.now <= latest);
      }
      wakeups++;
    }
    if (!with_short) {
      // Each tick: at most one wake-up to fire it (and the first to reach
      // the ring), not one per due time.
      assert_true(wakeups <= 100 + 3);
    } else {
      // About 45 ticks left, each woken for per due time (checked above).
      assert_true(wakeups > 200);
    }
  }
}

// Equal due times fire in start order wherever the timers waited: one
// started long before (upper level, then a cascade), one in the ring, one
// armed after the wheel reached the tick (near).
void test_model_ties_across_levels(void **state) {
  (void)state;
  model m(4, 1000);
  uint64_t due = m.now + (uint64_t{40} << 30);  // about 43 s: an upper level
  m.arm(0, due);
  m.now = due - (uint64_t{500} << 20);  // 0.5 s before: ring range
  m.run(false);
  m.arm(1, due);
  m.arm(2, due - 1);
  m.now = due - 1;  // the wheel reaches the tick; 2 fires
  m.run(false);
  assert_int_equal(m.fired, 1);
  m.arm(3, due);  // after the tick was reached
  m.now = due;
  m.run(false);
  assert_int_equal(m.fired, 4);
}

// When the wheel reaches a ring slot it gathers the next ones up to
// collect_ahead_ticks past the clock with it, sorting slots of 256 timers
// or more with a radix sort. Equal due times still fire in start order:
// timers cascaded from an upper level, then ones started into the ring,
// then ones started after the wheel ran ahead of the clock over their tick
// (near); stops and restarts from callbacks in between.
void test_model_gathered_ahead_with_ties(void **state) {
  (void)state;
  rng_state = 11;
  constexpr unsigned shift = timer_wheel::tick_shift;
  constexpr uint64_t ahead = timer_wheel::collect_ahead_ticks;
  static_assert(ahead >= 1, "the test needs slots gathered ahead");
  model m(3 * 1200, (uint64_t{7} << 30) + 12345);
  // The first tick of the group, about 40 s out: an upper level at first.
  uint64_t first = (m.now >> shift) + (uint64_t{40} << (30 - shift));
  uint64_t ticks = ahead + 1;
  // Few distinct due times per tick, so that most timers tie with others.
  auto due_in = [&](uint64_t k) { return ((first + k) << shift) + below(200) * 4099; };
  size_t n = m.timers.size() / 3;
  for (size_t i = 0; i < n; i++)
    m.arm(i, due_in(i % ticks));
  m.now = (first << shift) - (uint64_t{500} << 20);  // cascaded to the ring
  m.run(false);
  for (size_t i = n; i < 2 * n; i++)  // ties with the cascaded ones
    m.arm(i, m.timers[below(n)].due);
  m.now = first << shift;
  m.run(true);
  // The wheel ran ahead: the group's later ticks are on `ready` already.
  assert_int_equal(m.wheel.tick, first + ahead);
  assert_true(m.wheel.ready.size() - m.wheel.ready_head >= n);
  for (size_t i = 2 * n; i < 3 * n; i++) {  // near: ties with `ready`
    size_t j = below(2 * n);
    m.arm(i, m.timers[j].armed ? m.timers[j].due : due_in(1 + below(ahead)));
  }
  for (uint64_t k = 0; k <= ticks; k++) {
    m.now = ((first + k) << shift) + below(uint64_t{1} << shift);
    m.run(true);
    m.check_timeout();
  }
  m.now += max_duration + 1;  // callbacks restarted some for any duration
  m.run(false);
  assert_false(m.any_armed());
  assert_true(m.fired >= 2 * n);
}

// ---- the public API on the real clock ----------------------------------

struct fire_log {
  rill_base *base;
  int n;
  int order[64];
  uint64_t late_ns[64];
  bool early;
};

struct timed {
  fire_log *log;
  int id;
  rill_timer *timer;
  uint64_t due;  // a lower bound of the real due time: read before start
  rill_timer *stop_other;
  rill_timer *free_other;
  int restarts_left;
  uint64_t restart_ns;
};

void timed_cb(rill_timer *t, void *arg) {
  auto *c = static_cast<timed *>(arg);
  fire_log *l = c->log;
  uint64_t now = rill_time_now();
  if (now < c->due || rill_base_now(l->base) < c->due)
    l->early = true;
  if (l->n < 64) {
    l->order[l->n] = c->id;
    l->late_ns[l->n] = now - c->due;
    l->n++;
  }
  if (c->stop_other) {
    assert_int_equal(rill_timer_stop(c->stop_other), 0);
    c->stop_other = nullptr;
  }
  if (c->free_other) {
    rill_timer_free(c->free_other);
    c->free_other = nullptr;
  }
  if (c->restarts_left > 0) {
    c->restarts_left--;
    c->due = rill_time_now() + c->restart_ns;
    assert_int_equal(rill_timer_start(t, c->restart_ns, 0), 0);
  }
}

void start_timed(timed *c, fire_log *l, int id, uint64_t timeout) {
  memset(c, 0, sizeof *c);
  c->log = l;
  c->id = id;
  assert_int_equal(rill_timer_new(l->base, timed_cb, c, &c->timer), 0);
  c->due = rill_time_now() + timeout;
  assert_int_equal(rill_timer_start(c->timer, timeout, 0), 0);
}

// Timers on both sides of the ring's reach and up on the upper levels:
// each fires once, in due order, never early, and not much late.
void test_real_order_across_levels(void **state) {
  (void)state;
  static const uint64_t ms[] = {2300, 5, 1150, 0, 2250, 700, 1, 1100};
  static const int expect[] = {3, 6, 1, 5, 7, 2, 4, 0};
  fire_log l;
  memset(&l, 0, sizeof l);
  l.base = tu_base_new();
  timed c[8];
  for (int i = 0; i < 8; i++)
    start_timed(&c[i], &l, i, ms[i] * RILL_MSEC);
  assert_int_equal(TU_RUN(l.base, RILL_RUN_DEFAULT, 10000), 0);
  assert_int_equal(l.n, 8);
  assert_false(l.early);
  for (int i = 0; i < 8; i++) {
    assert_int_equal(l.order[i], expect[i]);
    assert_true(l.late_ns[i] < 500 * RILL_MSEC);  // a hang guard, not a speed test
  }
  for (int i = 0; i < 8; i++)
    rill_timer_free(c[i].timer);
  tu_base_free(l.base);
}

// Many timers with durations to the nanosecond, restarted from their own
// callbacks: never early by rill_time_now() nor by the base's clock.
void test_real_never_early(void **state) {
  (void)state;
  enum { N = 40 };
  fire_log l;
  memset(&l, 0, sizeof l);
  l.base = tu_base_new();
  timed c[N];
  rng_state = 11;
  for (int i = 0; i < N; i++) {
    start_timed(&c[i], &l, i, below(3 * RILL_MSEC));
    c[i].restarts_left = 5;
    c[i].restart_ns = below(2 * RILL_MSEC) + (i % 3 == 0 ? 0 : 1);
  }
  assert_int_equal(TU_RUN(l.base, RILL_RUN_DEFAULT, 10000), 0);
  assert_false(l.early);
  for (int i = 0; i < N; i++) {
    assert_int_equal(c[i].restarts_left, 0);
    rill_timer_free(c[i].timer);
  }
  tu_base_free(l.base);
}

// Due in the same tick: the first to fire stops one and frees another of
// the same batch, which then do not fire; a third restarts itself.
void test_real_stop_and_free_in_batch(void **state) {
  (void)state;
  fire_log l;
  memset(&l, 0, sizeof l);
  l.base = tu_base_new();
  timed c[4];
  for (int i = 0; i < 4; i++)
    start_timed(&c[i], &l, i, 3 * RILL_MSEC);
  c[0].stop_other = c[2].timer;
  c[0].free_other = c[3].timer;
  c[1].restarts_left = 2;
  c[1].restart_ns = 0;
  assert_int_equal(TU_RUN(l.base, RILL_RUN_DEFAULT, 5000), 0);
  assert_int_equal(l.n, 4);
  static const int expect[] = {0, 1, 1, 1};
  for (int i = 0; i < 4; i++)
    assert_int_equal(l.order[i], expect[i]);
  assert_int_equal(rill_timer_active(c[2].timer), 0);
  assert_false(l.early);
  for (int i = 0; i < 3; i++)
    rill_timer_free(c[i].timer);
  tu_base_free(l.base);
}

// A zero duration fires on the next iteration; the largest durations are
// capped, armed, and stop cleanly.
void test_real_zero_and_huge(void **state) {
  (void)state;
  fire_log l;
  memset(&l, 0, sizeof l);
  l.base = tu_base_new();
  timed zero, huge, huger;
  start_timed(&zero, &l, 0, 0);
  start_timed(&huge, &l, 1, UINT64_MAX);
  start_timed(&huger, &l, 2, max_duration);
  assert_int_equal(rill_timer_active(huge.timer), 1);
  assert_true(rill_timer_remaining(huge.timer) > max_duration - RILL_SEC);
  assert_true(rill_timer_remaining(huger.timer) > max_duration - RILL_SEC);
  assert_int_equal(rill_base_run(l.base, RILL_RUN_ONCE), 1);
  assert_int_equal(l.n, 1);
  assert_int_equal(l.order[0], 0);
  assert_int_equal(rill_timer_stop(huge.timer), 0);
  assert_int_equal(rill_timer_stop(huger.timer), 0);
  assert_int_equal(rill_timer_active(huge.timer), 0);
  assert_int_equal(rill_base_run(l.base, RILL_RUN_DEFAULT), 0);
  rill_timer_free(zero.timer);
  rill_timer_free(huge.timer);
  rill_timer_free(huger.timer);
  tu_base_free(l.base);
}

// Stopping and starting timers over and over, into the ring, onto upper
// levels and into the current tick, allocates nothing.
void test_real_restart_does_not_allocate(void **state) {
  (void)state;
  static const uint64_t durations[] = {0, RILL_MSEC / 2, 300 * RILL_MSEC, 1900 * RILL_MSEC,
                                       70 * RILL_SEC, 86400 * RILL_SEC, UINT64_MAX};
  enum { TIMERS = 32 };
  fire_log l;
  memset(&l, 0, sizeof l);
  l.base = tu_base_new();
  timed c[TIMERS];
  for (int i = 0; i < TIMERS; i++)
    start_timed(&c[i], &l, i, 10 * RILL_SEC);
  tu_alloc_counts before, after;
  tu_alloc_get(&before);
  for (int round = 0; round < 20000; round++) {
    timed *x = &c[round % TIMERS];
    assert_int_equal(rill_timer_stop(x->timer), 0);
    assert_int_equal(rill_timer_start(x->timer, durations[round % 7] + 10 * RILL_SEC, 0), 0);
    assert_int_equal(rill_timer_start(x->timer, durations[(round / 7) % 7], 0), 0);
  }
  tu_alloc_get(&after);
  assert_int_equal(after.mallocs, before.mallocs);
  assert_int_equal(after.reallocs, before.reallocs);
  assert_int_equal(after.frees, before.frees);
  for (int i = 0; i < TIMERS; i++)
    rill_timer_free(c[i].timer);
  tu_base_free(l.base);
}

// A callback that throws (rill/base.h, "Exceptions") leaves the rest of its
// batch armed: it fires in a later run, once each, in order, whether it
// waited in a reached ring slot or in the current tick's list.
struct thrower {
  int *log;
  int *n;
  int id;
  bool throw_once;
};

void throwing_cb(rill_timer *, void *arg) {
  auto *th = static_cast<thrower *>(arg);
  th->log[(*th->n)++] = th->id;
  if (th->throw_once) {
    th->throw_once = false;
    throw std::runtime_error("boom");
  }
}

void test_real_throw_keeps_the_batch(void **state) {
  (void)state;
  for (uint64_t timeout : {uint64_t{0}, 3 * RILL_MSEC}) {
    rill_base *base = tu_base_new();
    int log[16], n = 0;
    thrower th[3];
    rill_timer *t[3];
    for (int i = 0; i < 3; i++) {
      th[i] = thrower{log, &n, i, i == 0};
      assert_int_equal(rill_timer_new(base, throwing_cb, &th[i], &t[i]), 0);
      assert_int_equal(rill_timer_start(t[i], timeout, 0), 0);
    }
    usleep(10000);  // all three due before the loop looks
    bool caught = false;
    try {
      rill_base_run(base, RILL_RUN_NOWAIT);
    } catch (const std::runtime_error &) {
      caught = true;
    }
    assert_true(caught);
    assert_int_equal(n, 1);
    assert_int_equal(rill_timer_active(t[1]), 1);
    assert_int_equal(TU_RUN(base, RILL_RUN_DEFAULT, 3000), 0);
    assert_int_equal(n, 3);
    for (int i = 0; i < 3; i++) {
      assert_int_equal(log[i], i);
      rill_timer_free(t[i]);
    }
    tu_base_free(base);
  }
}

}  // namespace

int main(void) {
  // Counts every allocation rill makes (test_real_restart_does_not_allocate).
  if (rill_set_allocator(tu_malloc, tu_realloc, tu_free) != 0)
    return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_model_random),
      cmocka_unit_test(test_model_follow_wakeups),
      cmocka_unit_test(test_model_coarse_wakeups),
      cmocka_unit_test(test_model_ties_across_levels),
      cmocka_unit_test(test_model_gathered_ahead_with_ties),
      cmocka_unit_test_setup_teardown(test_real_order_across_levels, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_real_never_early, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_real_stop_and_free_in_batch, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_real_zero_and_huge, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_real_restart_does_not_allocate, tu_setup_fds,
                                      tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_real_throw_keeps_the_batch, tu_setup_fds, tu_teardown_fds),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
