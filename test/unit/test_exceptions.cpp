// C++ exceptions thrown by user callbacks (rill/base.h, "Exceptions"): the
// exception propagates out of rill_base_run() (or rill_base_free()), and the
// base stays usable: later runs work, the handle whose callback threw is as
// the callback left it, and the base frees normally. Work collected but not
// dispatched when the exception struck (the rest of a batch of posts, the
// rest of a pass of reports) runs in a later iteration, exactly once.
//
// These used to leave the base "running" for good: every later
// rill_base_run() and rill_base_free() said RILL_EBUSY.
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
extern "C" {  // this cmocka.h does not say so itself
#include <cmocka.h>
}

#include <unistd.h>

#include <stdexcept>

#include "core/pending.h"
#include "rill.h"
#include "test_util.h"

namespace {

struct boom : std::runtime_error {
  boom() : std::runtime_error("boom") {}
};

// Runs the base once in `mode`, expecting a callback to throw.
void run_expecting_throw(rill_base *base, rill_run_mode mode) {
  bool caught = false;
  try {
    rill_base_run(base, mode);
  } catch (const boom &) {
    caught = true;
  }
  assert_true(caught);
}

// ---- timers -----------------------------------------------------------------

struct timer_state {
  int calls = 0;
  bool throw_next = true;
  bool free_self = false;
};

void throwing_timer(rill_timer *t, void *arg) {
  auto *st = static_cast<timer_state *>(arg);
  st->calls++;
  if (st->free_self)
    rill_timer_free(t);
  if (st->throw_next) {
    st->throw_next = false;
    throw boom();
  }
}

void test_timer_throws(void **) {
  rill_base *base = tu_base_new();
  rill_timer *t;
  timer_state st;
  assert_int_equal(rill_timer_new(base, throwing_timer, &st, &t), 0);
  assert_int_equal(rill_timer_start(t, 0, 0), 0);
  run_expecting_throw(base, RILL_RUN_DEFAULT);
  assert_int_equal(st.calls, 1);
  // The one-shot timer was disarmed before its callback, and stays so.
  assert_int_equal(rill_timer_active(t), 0);
  // The base runs again, and the timer works.
  assert_int_equal(rill_timer_start(t, 0, 0), 0);
  assert_int_equal(TU_RUN(base, RILL_RUN_DEFAULT, 5000), 0);
  assert_int_equal(st.calls, 2);
  rill_timer_free(t);
  tu_base_free(base);
}

// A callback that frees its own handle and then throws: the dispatch's
// hold is released by the unwinding, so the handle is really gone.
void test_timer_frees_itself_then_throws(void **) {
  rill_base *base = tu_base_new();
  rill_timer *t;
  timer_state st;
  st.free_self = true;
  assert_int_equal(rill_timer_new(base, throwing_timer, &st, &t), 0);
  assert_int_equal(rill_timer_start(t, 0, 0), 0);
  run_expecting_throw(base, RILL_RUN_DEFAULT);
  rill_base_stats stats;
  assert_int_equal(rill_base_stats_get(base, &stats), 0);
  assert_int_equal(stats.handles, 0);
  assert_int_equal(rill_base_run(base, RILL_RUN_NOWAIT), 0);
  tu_base_free(base);
}

// A repeating timer that throws keeps repeating: it was re-armed before
// its callback ran.
void test_repeating_timer_throws(void **) {
  rill_base *base = tu_base_new();
  rill_timer *t;
  timer_state st;
  assert_int_equal(rill_timer_new(base, throwing_timer, &st, &t), 0);
  assert_int_equal(rill_timer_start(t, 0, RILL_MSEC), 0);
  run_expecting_throw(base, RILL_RUN_DEFAULT);
  assert_int_equal(rill_timer_active(t), 1);
  while (st.calls < 3)
    assert_true(TU_RUN(base, RILL_RUN_ONCE, 5000) >= 0);
  rill_timer_free(t);
  tu_base_free(base);
}

// ---- io watchers ------------------------------------------------------------

struct io_state {
  int calls = 0;
};

void throwing_io(rill_io *io, int fd, unsigned, void *arg) {
  auto *st = static_cast<io_state *>(arg);
  if (++st->calls == 1)
    throw boom();
  tu_drain(fd);
  rill_io_stop(io);
}

void test_io_throws(void **) {
  rill_base *base = tu_base_new();
  int sv[2];
  tu_socketpair(sv);
  rill_io *io;
  io_state st;
  assert_int_equal(rill_io_new(base, sv[0], throwing_io, &st, &io), 0);
  assert_int_equal(rill_io_start(io, RILL_READ), 0);
  tu_write_byte(sv[1]);
  run_expecting_throw(base, RILL_RUN_DEFAULT);
  assert_int_equal(st.calls, 1);
  // Still started, still readable: level-triggered, it is reported again.
  assert_int_equal(rill_io_events(io), RILL_READ);
  assert_int_equal(TU_RUN(base, RILL_RUN_DEFAULT, 5000), 0);
  assert_int_equal(st.calls, 2);
  rill_io_free(io);
  close(sv[0]);
  close(sv[1]);
  tu_base_free(base);
}

// Two registrations the kernel refuses (their descriptors closed before the
// loop registered them): the first report's callback throws, and the other
// watcher still hears of its refusal, exactly once, when the base runs
// again. Its report used to wait in the base's list until some interest
// change made the loop flush again, which here never came.
struct refused_state {
  int calls = 0;
  int throws = 0;
};

void throwing_on_refusal(rill_io *io, int, unsigned, void *arg) {
  auto *st = static_cast<refused_state *>(arg);
  st->calls++;
  rill_io_stop(io);
  if (st->throws++ == 0)
    throw boom();
}

void test_refusal_report_throws(void **) {
  rill_base *base = tu_base_new();
  int a[2], b[2];
  tu_pipe(a);
  tu_pipe(b);
  rill_io *ia, *ib;
  refused_state st;
  assert_int_equal(rill_io_new(base, a[0], throwing_on_refusal, &st, &ia), 0);
  assert_int_equal(rill_io_new(base, b[0], throwing_on_refusal, &st, &ib), 0);
  assert_int_equal(rill_io_start(ia, RILL_READ), 0);
  assert_int_equal(rill_io_start(ib, RILL_READ), 0);
  close(a[0]);
  close(b[0]);
  run_expecting_throw(base, RILL_RUN_ONCE);
  assert_int_equal(st.calls, 1);
  for (int i = 0; i < 20 && st.calls < 2; i++)
    assert_true(TU_RUN(base, RILL_RUN_NOWAIT, 5000) >= 0);
  assert_int_equal(st.calls, 2);
  rill_io_free(ia);
  rill_io_free(ib);
  close(a[1]);
  close(b[1]);
  tu_base_free(base);
}

// ---- posts ------------------------------------------------------------------

struct post_state {
  int thrower_calls = 0;
  int after_calls = 0;
};

void throwing_post(rill_base *, void *arg) {
  static_cast<post_state *>(arg)->thrower_calls++;
  throw boom();
}

void counting_post(rill_base *, void *arg) { static_cast<post_state *>(arg)->after_calls++; }

void test_post_throws(void **) {
  rill_base *base = tu_base_new();
  post_state st;
  assert_int_equal(rill_base_post(base, throwing_post, &st), 0);
  assert_int_equal(rill_base_post(base, counting_post, &st), 0);
  run_expecting_throw(base, RILL_RUN_ONCE);
  assert_int_equal(st.thrower_calls, 1);
  assert_int_equal(st.after_calls, 0);
  // The rest of the batch runs on a later iteration, exactly once, and a
  // post made meanwhile after it.
  assert_int_equal(rill_base_post(base, counting_post, &st), 0);
  for (int i = 0; i < 100 && st.after_calls < 2; i++)
    assert_true(TU_RUN(base, RILL_RUN_ONCE, 5000) >= 0);
  assert_int_equal(st.thrower_calls, 1);
  assert_int_equal(st.after_calls, 2);
  tu_base_free(base);
}

// A post run by rill_base_free() throws: the exception leaves the free, the
// base is not freed and is idle; the next free runs the rest and succeeds.
void test_post_throws_during_free(void **) {
  rill_base *base = tu_base_new();
  post_state st;
  assert_int_equal(rill_base_post(base, throwing_post, &st), 0);
  assert_int_equal(rill_base_post(base, counting_post, &st), 0);
  bool caught = false;
  try {
    rill_base_free(base);
  } catch (const boom &) {
    caught = true;
  }
  assert_true(caught);
  assert_int_equal(st.after_calls, 0);
  assert_int_equal(rill_base_run(base, RILL_RUN_NOWAIT), 0);
  tu_base_free(base);
  assert_int_equal(st.thrower_calls, 1);
  assert_int_equal(st.after_calls, 1);
}

// ---- pending reports --------------------------------------------------------

struct report {
  rill::detail::pending_node node;  // first: the node is the report
  int calls = 0;
  bool throws = false;
};

void run_report(rill::detail::pending_node *node) {
  auto *r = reinterpret_cast<report *>(node);
  r->calls++;
  if (r->throws)
    throw boom();
}

void test_report_throws(void **) {
  rill_base *base = tu_base_new();
  report first, second, third;
  first.throws = true;
  for (report *r : {&first, &second, &third}) {
    r->node.run = run_report;
    rill::detail::pending_push(base, &r->node);
  }
  run_expecting_throw(base, RILL_RUN_NOWAIT);
  assert_int_equal(first.calls, 1);
  assert_int_equal(second.calls, 0);
  // The rest of the pass is still queued, in order.
  assert_int_equal(rill_base_run(base, RILL_RUN_NOWAIT), 0);
  assert_int_equal(first.calls, 1);
  assert_int_equal(second.calls, 1);
  assert_int_equal(third.calls, 1);
  tu_base_free(base);
}

}  // namespace

int main() {
  const CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_timer_throws, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_timer_frees_itself_then_throws, tu_setup_fds,
                                      tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_repeating_timer_throws, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_io_throws, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_refusal_report_throws, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_post_throws, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_post_throws_during_free, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_report_throws, tu_setup_fds, tu_teardown_fds),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
