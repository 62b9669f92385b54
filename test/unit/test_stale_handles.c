/* Stale handle pointers (lib/core/lifetime.h, 5): a call through a pointer
 * to a freed handle, or a second free, is refused and never acts on the
 * handle that took the slot over.
 *
 * What each build promises:
 *  - every build: a pointer to a slot that holds no live handle of the
 *    call's kind gets RILL_EINVAL (a void free does nothing);
 *  - with handle checks (RILL_HANDLE_CHECKS, on in this test build unless
 *    configured off): a freed slot is not reused soon, so the stale pointer
 *    really points at a free slot and the new handle is left alone;
 *  - under AddressSanitizer the free slot is poisoned: the stale call is
 *    reported and the process stops. Those cases run the call in a child
 *    process and expect it to die. */
#define _GNU_SOURCE 1

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rill.h"
#include "test_util.h"

#if defined(__SANITIZE_ADDRESS__)
#define TU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TU_ASAN 1
#endif
#endif

#if defined(TU_ASAN) && defined(RILL_HANDLE_CHECKS)
#define TU_POISONED 1
#endif

static int g_fired;

static void count_timer(rill_timer *t, void *arg) {
  (void)t;
  (void)arg;
  g_fired++;
}

static void noop_io(rill_io *io, int fd, unsigned events, void *arg) {
  (void)io;
  (void)fd;
  (void)events;
  (void)arg;
}

#ifdef TU_POISONED
/* Runs `call(arg)` in a child and expects AddressSanitizer to stop it:
 * the child exits 0 only if the call came back unreported. */
static void expect_reported(void (*call)(void *), void *arg) {
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    int null_fd = open("/dev/null", O_WRONLY);
    if (null_fd >= 0)
      dup2(null_fd, 2);
    call(arg);
    _exit(0);
  }
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_false(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void stale_timer_stop(void *t) { (void)rill_timer_stop(t); }
static void stale_timer_free(void *t) { rill_timer_free(t); }
static void stale_io_stop(void *io) { (void)rill_io_stop(io); }
#endif

/* A freed timer's slot, then a new timer: the stale pointer must not stop
 * or free the new one. This used to stop and free it (LIFO slot reuse). */
static void test_stale_timer_leaves_new_timer_alone(void **state) {
  (void)state;
#ifndef RILL_HANDLE_CHECKS
  skip(); /* without the quarantine the new timer may take the slot */
#else
  rill_base *base = tu_base_new();
  rill_timer *old_timer, *new_timer;
  g_fired = 0;
  assert_int_equal(rill_timer_new(base, count_timer, NULL, &old_timer), 0);
  rill_timer_free(old_timer);
  assert_int_equal(rill_timer_new(base, count_timer, NULL, &new_timer), 0);
  assert_ptr_not_equal(new_timer, old_timer); /* the slot is held back */
  assert_int_equal(rill_timer_start(new_timer, RILL_MSEC, 0), 0);
#ifdef TU_POISONED
  expect_reported(stale_timer_stop, old_timer);
  expect_reported(stale_timer_free, old_timer);
#else
  assert_int_equal(rill_timer_stop(old_timer), RILL_EINVAL);
  assert_int_equal(rill_timer_start(old_timer, RILL_MSEC, 0), RILL_EINVAL);
  assert_int_equal(rill_timer_active(old_timer), 0);
  rill_timer_free(old_timer); /* a double free: refused */
#endif
  assert_int_equal(rill_timer_active(new_timer), 1);
  assert_int_equal(TU_RUN(base, RILL_RUN_DEFAULT, 5000), 0);
  assert_int_equal(g_fired, 1);
  rill_timer_free(new_timer);
  tu_base_free(base);
#endif
}

/* The same for an io watcher: a stale stop leaves the new watcher on the
 * descriptor number started. */
static void test_stale_io_leaves_new_watcher_alone(void **state) {
  (void)state;
#ifndef RILL_HANDLE_CHECKS
  skip();
#else
  rill_base *base = tu_base_new();
  rill_io *old_io, *new_io;
  int fds[2];
  tu_pipe(fds);
  assert_int_equal(rill_io_new(base, fds[0], noop_io, NULL, &old_io), 0);
  rill_io_free(old_io);
  assert_int_equal(rill_io_new(base, fds[0], noop_io, NULL, &new_io), 0);
  assert_ptr_not_equal(new_io, old_io);
  assert_int_equal(rill_io_start(new_io, RILL_READ), 0);
#ifdef TU_POISONED
  expect_reported(stale_io_stop, old_io);
#else
  assert_int_equal(rill_io_stop(old_io), RILL_EINVAL);
  assert_int_equal(rill_io_fd(old_io), RILL_EINVAL);
  rill_io_free(old_io);
#endif
  assert_int_equal(rill_io_events(new_io), RILL_READ);
  rill_io_free(new_io);
  close(fds[0]);
  close(fds[1]);
  tu_base_free(base);
#endif
}

/* Every build: a handle passed to another kind's function is refused. */
static void test_wrong_kind_refused(void **state) {
  (void)state;
  rill_base *base = tu_base_new();
  rill_timer *t;
  assert_int_equal(rill_timer_new(base, count_timer, NULL, &t), 0);
  assert_int_equal(rill_timer_start(t, RILL_SEC, 0), 0);
  assert_int_equal(rill_io_stop((rill_io *)(void *)t), RILL_EINVAL);
  assert_int_equal(rill_io_start((rill_io *)(void *)t, RILL_READ), RILL_EINVAL);
  assert_int_equal(rill_signal_stop((rill_signal *)(void *)t), RILL_EINVAL);
  rill_io_free((rill_io *)(void *)t);
  rill_signal_free((rill_signal *)(void *)t);
  assert_int_equal(rill_timer_active(t), 1);
  rill_timer_free(t);
  tu_base_free(base);
}

/* Every build without poisoning: a freed slot nobody took again is free,
 * and calls on it are refused; a second free does nothing. */
static void test_call_on_free_slot_refused(void **state) {
  (void)state;
#ifdef TU_POISONED
  skip(); /* reported by AddressSanitizer instead: see the tests above */
#else
  rill_base *base = tu_base_new();
  rill_timer *t;
  assert_int_equal(rill_timer_new(base, count_timer, NULL, &t), 0);
  rill_timer_free(t);
  assert_int_equal(rill_timer_stop(t), RILL_EINVAL);
  rill_timer_free(t);
  tu_base_free(base);
#endif
}

/* A handle freed by its own callback is closed, not gone, until the
 * callback returns: calls on it say RILL_ECLOSED. */
static int g_restart_rc;

static void free_self_then_restart(rill_timer *t, void *arg) {
  (void)arg;
  rill_timer_free(t);
  g_restart_rc = rill_timer_start(t, RILL_MSEC, 0);
  rill_timer_free(t); /* a second free inside the callback: ignored */
}

static void test_closed_in_own_callback(void **state) {
  (void)state;
  rill_base *base = tu_base_new();
  rill_timer *t;
  g_restart_rc = 12345;
  assert_int_equal(rill_timer_new(base, free_self_then_restart, NULL, &t), 0);
  assert_int_equal(rill_timer_start(t, 0, 0), 0);
  assert_int_equal(TU_RUN(base, RILL_RUN_DEFAULT, 5000), 0);
  assert_int_equal(g_restart_rc, RILL_ECLOSED);
  tu_base_free(base);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_stale_timer_leaves_new_timer_alone, tu_setup_fds,
                                      tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_stale_io_leaves_new_watcher_alone, tu_setup_fds,
                                      tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_wrong_kind_refused, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_call_on_free_slot_refused, tu_setup_fds,
                                      tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_closed_in_own_callback, tu_setup_fds, tu_teardown_fds),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
