/* Fibers and the signal mask. A switch between fibers must leave the
 * thread's signal mask as it is: the mask is the thread's, not a fiber's.
 * The portable ucontext switch used to restore the mask captured when the
 * fiber's context was made (swapcontext does), so a change made since was
 * undone on the next switch, and a signal the base watches (blocked for its
 * signalfd) was unblocked again inside fibers and killed the process.
 *
 * Build with -DRILL_FIBER_UCONTEXT=ON to run these against the portable
 * switch; they pass with the assembly switch too. */
#define _GNU_SOURCE 1

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rill.h"
#include "test_util.h"

#define LIMIT 10000

#include "fiber_check.h"

static int blocked(int signum) {
  sigset_t now;
  pthread_sigmask(SIG_BLOCK, NULL, &now);
  return sigismember(&now, signum) == 1;
}

/* ---- a mask change made in a fiber survives switches ------------------- */

struct mask_change {
  int other_saw_blocked;
  int blocked_after_yield;
  int unblocked_after_yield;
};

static void other_fiber(void *arg) {
  struct mask_change *t = (struct mask_change *)arg;
  FCHECK(rill_yield() == 0);
  t->other_saw_blocked = blocked(SIGUSR1);
  FCHECK(rill_yield() == 0);
}

static void changing_fiber(void *arg) {
  struct mask_change *t = (struct mask_change *)arg;
  sigset_t usr1;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  FCHECK(!blocked(SIGUSR1));
  FCHECK(pthread_sigmask(SIG_BLOCK, &usr1, NULL) == 0);
  /* To the other fiber and the loop, and back. */
  FCHECK(rill_yield() == 0);
  FCHECK(rill_yield() == 0);
  t->blocked_after_yield = blocked(SIGUSR1);
  /* The other way: unblocking lasts too. */
  FCHECK(pthread_sigmask(SIG_UNBLOCK, &usr1, NULL) == 0);
  FCHECK(rill_sleep(RILL_MSEC) == 0);
  t->unblocked_after_yield = !blocked(SIGUSR1);
}

static void mask_change_survives_switches(void **state) {
  struct mask_change t;
  rill_base *base = tu_base_new();
  sigset_t usr1;
  (void)state;
  memset(&t, 0, sizeof t);
  fiber_check_failures = 0;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  assert_int_equal(pthread_sigmask(SIG_UNBLOCK, &usr1, NULL), 0);
  assert_int_equal(rill_go(base, changing_fiber, &t), 0);
  assert_int_equal(rill_go(base, other_fiber, &t), 0);
  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  assert_int_equal(rill_fiber_count(base), 0);
  tu_base_free(base);
  if (fiber_check_failures)
    fail_msg("%d check(s) failed inside fibers; first: %s", fiber_check_failures, fiber_check_first);
  /* The mask is the thread's: the other fiber saw the change as well. */
  assert_true(t.other_saw_blocked);
  assert_true(t.blocked_after_yield);
  assert_true(t.unblocked_after_yield);
  assert_false(blocked(SIGUSR1));
}

/* ---- a watched signal raised inside a fiber reaches the watcher -------- */

static int g_signals_seen, g_raisers_done;
static rill_signal *g_sig;

static void on_usr2(rill_signal *sig, int signum, void *arg) {
  (void)sig;
  (void)signum;
  (void)arg;
  g_signals_seen++;
}

/* Raises SIGUSR2 between switches, waits until the watcher saw it (signals
 * may merge), and the last one to finish stops the watcher. */
static void raising_fiber(void *arg) {
  (void)arg;
  FCHECK(rill_yield() == 0);
  raise(SIGUSR2);
  FCHECK(rill_yield() == 0);
  for (int i = 0; i < 10000 && g_signals_seen == 0; i++)
    FCHECK(rill_sleep(RILL_MSEC) == 0);
  FCHECK(g_signals_seen > 0);
  if (++g_raisers_done == 2)
    rill_signal_stop(g_sig);
}

/* Runs in a child: the failure is the child dying of SIGUSR2. */
static int watched_signal_child(void) {
  rill_base *base = NULL;
  rill_signal *sig = NULL;
  struct sigaction sa;
  alarm(60); /* a hang guard: the child must not outlive a stuck test */
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = SIG_DFL;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGUSR2, &sa, NULL);
  if (rill_base_new(NULL, &base) != 0)
    return 3;
  /* The fibers' contexts are made before the watcher blocks SIGUSR2. */
  if (rill_go(base, raising_fiber, NULL) != 0 || rill_go(base, raising_fiber, NULL) != 0)
    return 4;
  if (rill_signal_new(base, on_usr2, NULL, &sig) != 0 || rill_signal_start(sig, SIGUSR2) != 0)
    return 5;
  g_sig = sig;
  rill_base_run(base, RILL_RUN_DEFAULT);
  rill_signal_free(sig);
  if (rill_base_free(base) != 0)
    return 6;
  if (fiber_check_failures)
    return 7;
  return g_signals_seen >= 1 ? 0 : 8;
}

static void watched_signal_inside_fiber(void **state) {
  int status = 0;
  pid_t pid;
  (void)state;
  fflush(stdout);
  fflush(stderr);
  pid = fork();
  assert_true(pid >= 0);
  if (pid == 0)
    _exit(watched_signal_child());
  assert_int_equal(waitpid(pid, &status, 0), pid);
  if (WIFSIGNALED(status))
    fail_msg("the child died of signal %d: a switch unblocked the watched signal", WTERMSIG(status));
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(mask_change_survives_switches, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(watched_signal_inside_fiber, tu_setup_fds, tu_teardown_fds),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
