// The kqueue backend on its own, through backend.h, without a base: what
// it hands the kernel and what it reports back when changes fail.
//
//  - A batch of changes submitted at once (for an unregistration) with a
//    failing change first: every other change must still happen. kevent()
//    without room for answers stops at the first failure, and dropped the
//    registration and the deletion queued behind it.
//  - A refused registration is reported by the next wait, at once, as a
//    refusal (backend_event::refused), not as readiness. libkqueue dropped
//    it when the wait timed out, and the loop waited on.
//  - Unregistering a descriptor closed already is no error.
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
extern "C" {  // this cmocka.h does not say so itself
#include <cmocka.h>
}

#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "core/backend/backend.h"
#include "rill.h"
#include "test_util.h"

using rill::detail::backend_event;
using rill::detail::kqueue_backend;

namespace {

constexpr int capacity = 16;

uint64_t tag_of(int fd) { return (uint64_t{7} << 32) | static_cast<uint32_t>(fd); }

// A descriptor number that names nothing now.
int closed_number() {
  int sv[2];
  tu_socketpair(sv);
  close(sv[0]);
  close(sv[1]);
  return sv[0];
}

const backend_event *find(const backend_event *events, int n, uint64_t tag) {
  for (int i = 0; i < n; i++)
    if (events[i].tag == tag)
      return &events[i];
  return nullptr;
}

void failing_change_loses_no_other(void **) {
  void *st = nullptr;
  backend_event out[capacity];
  int b[2], c[2];
  assert_int_equal(kqueue_backend.init(&st), 0);
  tu_socketpair(b);
  tu_socketpair(c);
  // c[0] registered; nothing to report yet.
  assert_int_equal(kqueue_backend.change(st, c[0], 0, RILL_READ, tag_of(c[0])), 0);
  assert_int_equal(kqueue_backend.wait(st, 0, out, capacity), 0);

  // Queued: an addition the kernel refuses, then one it takes. Then c[0]
  // unregistered, which submits all three together.
  int gone = closed_number();
  assert_int_equal(kqueue_backend.change(st, gone, 0, RILL_READ, tag_of(gone)), 0);
  assert_int_equal(kqueue_backend.change(st, b[0], 0, RILL_READ, tag_of(b[0])), 0);
  assert_int_equal(kqueue_backend.change(st, c[0], RILL_READ, 0, tag_of(c[0])), 0);
  tu_write_byte(b[1]);
  tu_write_byte(c[1]);

  // The refusal and b[0]'s readiness, in one wait or two; c[0] never.
  unsigned refused = 0, b_ready = 0;
  for (int round = 0; round < 3 && !(refused && b_ready); round++) {
    int n = kqueue_backend.wait(st, 5000000000, out, capacity);
    assert_true(n >= 0);
    assert_null(find(out, n, tag_of(c[0])));
    if (const backend_event *ev = find(out, n, tag_of(gone))) {
      refused |= ev->refused;
      assert_int_equal(ev->events, rill::detail::backend_refused);
    }
    if (const backend_event *ev = find(out, n, tag_of(b[0]))) {
      b_ready |= ev->events;
      assert_int_equal(ev->refused, 0);
    }
  }
  assert_int_equal(refused, RILL_READ);
  assert_int_equal(b_ready & RILL_READ, RILL_READ);
  assert_null(find(out, kqueue_backend.wait(st, 0, out, capacity), tag_of(c[0])));

  kqueue_backend.change(st, b[0], RILL_READ, 0, tag_of(b[0]));
  kqueue_backend.destroy(st);
  close(b[0]);
  close(b[1]);
  close(c[0]);
  close(c[1]);
}

void refusal_reported_without_waiting(void **) {
  void *st = nullptr;
  backend_event out[capacity];
  assert_int_equal(kqueue_backend.init(&st), 0);
  int gone = closed_number();
  assert_int_equal(kqueue_backend.change(st, gone, 0, RILL_READ | RILL_WRITE, tag_of(gone)), 0);
  // A long wait: the refusal must come back at once, not after it (and not
  // be lost when it ends). One report for both directions.
  uint64_t start = tu_now_ms();
  int n = kqueue_backend.wait(st, 30000000000, out, capacity);
  assert_int_equal(n, 1);
  assert_true(tu_now_ms() - start < 20000);  // a hang guard, not a speed bound
  assert_true(out[0].tag == tag_of(gone));
  assert_int_equal(out[0].refused, RILL_READ | RILL_WRITE);
  assert_int_equal(out[0].events, rill::detail::backend_refused);
  // Reported once.
  assert_int_equal(kqueue_backend.wait(st, 0, out, capacity), 0);
  kqueue_backend.destroy(st);
}

void unregistering_closed_descriptor_is_no_error(void **) {
  void *st = nullptr;
  backend_event out[capacity];
  int a[2];
  assert_int_equal(kqueue_backend.init(&st), 0);
  tu_socketpair(a);
  assert_int_equal(kqueue_backend.change(st, a[0], 0, RILL_READ | RILL_WRITE, tag_of(a[0])), 0);
  assert_int_equal(kqueue_backend.wait(st, 0, out, capacity), 1);  // writable
  int fd = a[0];
  close(a[0]);
  close(a[1]);
  assert_int_equal(kqueue_backend.change(st, fd, RILL_READ | RILL_WRITE, 0, tag_of(fd)), 0);
  // And never one that is not there: a filter never added.
  int gone = closed_number();
  assert_int_equal(kqueue_backend.change(st, gone, RILL_READ, 0, tag_of(gone)), 0);
  assert_int_equal(kqueue_backend.wait(st, 0, out, capacity), 0);
  kqueue_backend.destroy(st);
}

}  // namespace

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(failing_change_loses_no_other),
      cmocka_unit_test(refusal_reported_without_waiting),
      cmocka_unit_test(unregistering_closed_descriptor_is_no_error),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
