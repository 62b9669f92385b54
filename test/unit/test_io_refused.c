/* rill_io and what the kernel really holds: a registration the kernel
 * refuses is reported to its watcher, which is stopped (backend.h's error
 * model), and a later start registers it again.
 *
 * Every backend must pass this. The kqueue backend hands its changes to the
 * kernel in batches, where it used to go wrong: a refused EV_ADD was still
 * counted as registered, so a restart changed nothing (and libkqueue lost
 * the refusal itself when the wait timed out). test_kqueue_backend.cpp has
 * the backend's own cases.
 *
 * Callbacks only record (and, where a case says so, act); assertions run
 * after rill_base_run() returned. */
#define _GNU_SOURCE 1

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>
#include <unistd.h>

#include "rill.h"
#include "test_util.h"

#define LIMIT 5000 /* a hang guard only */

struct seen {
  int calls;
  unsigned events;        /* of the last call */
  unsigned active_after;  /* rill_io_events() in the last call */
};

static void record_cb(rill_io *io, int fd, unsigned events, void *arg) {
  struct seen *s = (struct seen *)arg;
  (void)fd;
  s->calls++;
  s->events = events;
  s->active_after = rill_io_events(io);
}

/* Whether the base's backend registers a descriptor with the kernel (and
 * so can be refused) rather than polling it as it is each time (poll, and
 * io_uring's polls, report a closed descriptor ready instead). */
static int registers(rill_base *base) {
  const char *name = rill_base_backend(base);
  return strcmp(name, "epoll") == 0 || strcmp(name, "kqueue") == 0;
}

/* The watcher's descriptor is closed before the loop registers it: the
 * kernel refuses the registration. The watcher hears of it at once, ready
 * and stopped, so its own read meets the error. Another socket then takes
 * the number and the watcher is started again: the start must reach the
 * kernel (kqueue took it for registered already, and waited forever). */
static void test_refused_registration_is_retried(void **state) {
  rill_base *base = tu_base_new();
  struct seen s;
  rill_io *io = NULL;
  int a[2], b[2], fdnum;
  (void)state;
  memset(&s, 0, sizeof s);
  tu_socketpair(a);
  tu_socketpair(b); /* while a[0] is open: another number */
  fdnum = a[0];
  assert_int_equal(rill_io_new(base, fdnum, record_cb, &s, &io), 0);
  assert_int_equal(rill_io_start(io, RILL_READ), 0);
  close(a[0]);
  TU_RUN(base, RILL_RUN_NOWAIT, LIMIT);
  assert_int_equal(s.calls, 1);
  assert_int_equal(s.events, RILL_READ);
  if (registers(base)) {
    assert_int_equal(s.active_after, 0);
    assert_int_equal(rill_io_events(io), 0);
  }

  /* A new socket at the same number, with a byte to read. */
  assert_true(dup2(b[0], fdnum) == fdnum);
  close(b[0]);
  tu_nonblock(fdnum);
  tu_write_byte(b[1]);
  assert_int_equal(rill_io_start(io, RILL_READ), 0);
  assert_int_equal(TU_RUN(base, RILL_RUN_ONCE, LIMIT), 1);
  assert_int_equal(s.calls, 2);
  assert_int_equal(s.events, RILL_READ);
  assert_int_equal(s.active_after, RILL_READ);

  rill_io_free(io);
  close(fdnum);
  close(a[1]);
  close(b[1]);
  tu_base_free(base);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_refused_registration_is_retried, tu_setup_fds,
                                      tu_teardown_fds),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
