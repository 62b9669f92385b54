/* rill_signal: delivery to the right watchers, several watchers per signal,
 * several bases per signal, stop restoring the previous handler, signals
 * never blocked (delivery on any thread, a spawned child gets a normal
 * mask), bad numbers, free from a callback.
 *
 * The process installs its own handlers for SIGUSR1 and SIGUSR2 that only
 * count, so a signal that rill did not take (or should no longer take) is
 * seen instead of killing the test. */
#define _GNU_SOURCE 1

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <time.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "rill.h"
#include "test_util.h"

#define LIMIT 3000

extern char **environ;

static volatile sig_atomic_t g_stray[65];

static void stray_handler(int signum) {
  if (signum > 0 && signum < 65) g_stray[signum]++;
}

static int is_blocked(int signum) {
  sigset_t cur;
  assert_int_equal(pthread_sigmask(SIG_BLOCK, NULL, &cur), 0);
  return sigismember(&cur, signum);
}

static int is_pending(int signum) {
  sigset_t p;
  sigpending(&p);
  return sigismember(&p, signum);
}

static int setup(void **state) {
  struct sigaction sa;
  sigset_t set;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = stray_handler;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGUSR1, &sa, NULL);
  sigaction(SIGUSR2, &sa, NULL);
  memset((void *)g_stray, 0, sizeof g_stray);
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  sigaddset(&set, SIGUSR2);
  pthread_sigmask(SIG_UNBLOCK, &set, NULL);
  return tu_setup_fds(state);
}

static int teardown(void **state) {
  int rc = tu_teardown_fds(state);
  /* Whatever happened, nothing may be left blocked or pending. */
  if (is_blocked(SIGUSR1) || is_blocked(SIGUSR2)) {
    fprintf(stderr, "SIGUSR1/SIGUSR2 left blocked after the test\n");
    rc = -1;
  }
  return rc;
}

struct srec {
  int calls;
  int signum[8];
  void *arg;
  rill_signal *self;
  rill_signal *victim; /* freed on the first call */
  int free_self;
};

static void srec_cb(rill_signal *s, int signum, void *arg) {
  struct srec *r = (struct srec *)arg;
  if (r->calls < 8) r->signum[r->calls] = signum;
  r->calls++;
  r->arg = arg;
  r->self = s;
  if (r->victim) {
    rill_signal_free(r->victim);
    r->victim = NULL;
  }
  if (r->free_self) rill_signal_free(s);
}

/* An always-ready io watcher keeps iterations going without waiting. */
struct keepalive {
  int p[2];
  rill_io *io;
};

static void ka_cb(rill_io *io, int fd, unsigned events, void *arg) {
  (void)io;
  (void)fd;
  (void)events;
  (void)arg;
}

static void ka_start(rill_base *base, struct keepalive *k) {
  tu_pipe(k->p);
  assert_int_equal(rill_io_new(base, k->p[1], ka_cb, NULL, &k->io), 0);
  assert_int_equal(rill_io_start(k->io, RILL_WRITE), 0);
}

static void ka_stop(struct keepalive *k) {
  rill_io_free(k->io);
  close(k->p[0]);
  close(k->p[1]);
}

/* Runs ONCE until `*calls` reaches `want` (at most 20 iterations). */
static void run_until(rill_base *base, int *calls, int want) {
  int i;
  for (i = 0; i < 20 && *calls < want; i++) TU_RUN(base, RILL_RUN_ONCE, LIMIT);
}

static void test_right_watcher(void **state) {
  rill_base *base = tu_base_new();
  struct srec r1 = {0}, r2 = {0};
  rill_signal *s1, *s2;
  (void)state;
  assert_int_equal(rill_signal_new(base, srec_cb, &r1, &s1), 0);
  assert_int_equal(rill_signal_new(base, srec_cb, &r2, &s2), 0);
  assert_int_equal(rill_signal_signum(s1), 0);
  assert_int_equal(rill_signal_start(s1, SIGUSR1), 0);
  assert_int_equal(rill_signal_start(s2, SIGUSR2), 0);
  assert_int_equal(rill_signal_signum(s1), SIGUSR1);
  assert_int_equal(rill_signal_signum(s2), SIGUSR2);

  assert_int_equal(raise(SIGUSR1), 0);
  assert_int_equal(r1.calls, 0); /* never inside the call that caused it */
  run_until(base, &r1.calls, 1);
  assert_int_equal(r1.calls, 1);
  assert_int_equal(r1.signum[0], SIGUSR1);
  assert_ptr_equal(r1.self, s1);
  assert_ptr_equal(r1.arg, &r1);
  assert_int_equal(r2.calls, 0);

  assert_int_equal(raise(SIGUSR2), 0);
  run_until(base, &r2.calls, 1);
  assert_int_equal(r2.calls, 1);
  assert_int_equal(r2.signum[0], SIGUSR2);
  assert_int_equal(r1.calls, 1);

  /* A process-directed signal while the loop waits. */
  assert_int_equal(kill(getpid(), SIGUSR1), 0);
  run_until(base, &r1.calls, 2);
  assert_int_equal(r1.calls, 2);
  assert_int_equal(r2.calls, 1);

  assert_int_equal(g_stray[SIGUSR1] + g_stray[SIGUSR2], 0);
  rill_signal_free(s1);
  rill_signal_free(s2);
  tu_base_free(base);
}

static void test_two_watchers_same_signal(void **state) {
  rill_base *base = tu_base_new();
  struct srec r1 = {0}, r2 = {0};
  rill_signal *s1, *s2;
  (void)state;
  assert_int_equal(rill_signal_new(base, srec_cb, &r1, &s1), 0);
  assert_int_equal(rill_signal_new(base, srec_cb, &r2, &s2), 0);
  assert_int_equal(rill_signal_start(s1, SIGUSR1), 0);
  assert_int_equal(rill_signal_start(s2, SIGUSR1), 0);
  assert_int_equal(raise(SIGUSR1), 0);
  run_until(base, &r2.calls, 1);
  run_until(base, &r1.calls, 1);
  assert_int_equal(r1.calls, 1);
  assert_int_equal(r2.calls, 1);

  /* Stopping one keeps the signal delivered to the other. */
  assert_int_equal(rill_signal_stop(s1), 0);
  assert_int_equal(rill_signal_signum(s1), 0);
  assert_int_equal(raise(SIGUSR1), 0);
  run_until(base, &r2.calls, 2);
  assert_int_equal(r2.calls, 2);
  assert_int_equal(r1.calls, 1);
  assert_int_equal(g_stray[SIGUSR1], 0);

  rill_signal_free(s1);
  rill_signal_free(s2);
  assert_false(is_blocked(SIGUSR1));
  tu_base_free(base);
}

static void test_stop_restores(void **state) {
  rill_base *base = tu_base_new();
  struct srec r = {0};
  struct keepalive k;
  rill_signal *s;
  int i;
  (void)state;
  assert_false(is_blocked(SIGUSR1));
  assert_int_equal(rill_signal_new(base, srec_cb, &r, &s), 0);
  assert_int_equal(rill_signal_start(s, SIGUSR1), 0);
  assert_false(is_blocked(SIGUSR1)); /* watched signals are never blocked */
  assert_int_equal(rill_signal_stop(s), 0);
  assert_int_equal(rill_signal_stop(s), 0); /* stopping a stopped watcher */
  assert_int_equal(rill_signal_signum(s), 0);
  assert_false(is_blocked(SIGUSR1));

  /* Now the signal goes to the process's own handler, not to rill. */
  ka_start(base, &k);
  assert_int_equal(raise(SIGUSR1), 0);
  assert_int_equal(g_stray[SIGUSR1], 1);
  for (i = 0; i < 3; i++) assert_int_equal(TU_RUN(base, RILL_RUN_ONCE, LIMIT), 1);
  assert_int_equal(r.calls, 0);

  /* A signal that was already blocked stays blocked after the stop. */
  {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    assert_int_equal(pthread_sigmask(SIG_BLOCK, &set, NULL), 0);
    assert_int_equal(rill_signal_start(s, SIGUSR2), 0);
    assert_int_equal(rill_signal_stop(s), 0);
    assert_true(is_blocked(SIGUSR2));
    assert_false(is_pending(SIGUSR2));
    assert_int_equal(pthread_sigmask(SIG_UNBLOCK, &set, NULL), 0);
  }

  /* Restarting with another number switches signals. */
  assert_int_equal(rill_signal_start(s, SIGUSR1), 0);
  assert_int_equal(rill_signal_start(s, SIGUSR2), 0);
  assert_int_equal(rill_signal_signum(s), SIGUSR2);
  assert_false(is_blocked(SIGUSR1));
  assert_int_equal(raise(SIGUSR1), 0);
  assert_int_equal(g_stray[SIGUSR1], 2);
  assert_int_equal(raise(SIGUSR2), 0);
  run_until(base, &r.calls, 1);
  assert_int_equal(r.calls, 1);
  assert_int_equal(r.signum[0], SIGUSR2);
  assert_int_equal(g_stray[SIGUSR2], 0);

  /* Whatever the disposition was, it comes back: here SIG_IGN. */
  {
    struct sigaction ign, now;
    memset(&ign, 0, sizeof ign);
    ign.sa_handler = SIG_IGN;
    sigemptyset(&ign.sa_mask);
    assert_int_equal(sigaction(SIGURG, &ign, NULL), 0);
    assert_int_equal(rill_signal_start(s, SIGURG), 0);
    assert_int_equal(sigaction(SIGURG, NULL, &now), 0);
    assert_true(now.sa_handler != SIG_IGN);
    assert_int_equal(rill_signal_stop(s), 0);
    assert_int_equal(sigaction(SIGURG, NULL, &now), 0);
    assert_true(now.sa_handler == SIG_IGN);
    ign.sa_handler = SIG_DFL;
    assert_int_equal(sigaction(SIGURG, &ign, NULL), 0);
    assert_int_equal(rill_signal_start(s, SIGUSR2), 0);
  }

  /* Free of a started watcher restores too. */
  rill_signal_free(s);
  assert_false(is_blocked(SIGUSR2));
  ka_stop(&k);
  tu_base_free(base);
}

static void test_bad_signals(void **state) {
  rill_base *base = tu_base_new();
  rill_signal *s;
  (void)state;
  assert_int_equal(rill_signal_new(base, srec_cb, NULL, &s), 0);
  assert_int_equal(rill_signal_start(s, SIGKILL), RILL_EINVAL);
  assert_int_equal(rill_signal_start(s, SIGSTOP), RILL_EINVAL);
  assert_int_equal(rill_signal_start(s, 0), RILL_EINVAL);
  assert_int_equal(rill_signal_start(s, 65), RILL_EINVAL);
  assert_int_equal(rill_signal_start(s, -1), RILL_EINVAL);
  assert_int_equal(rill_signal_start(s, 100000), RILL_EINVAL);
  assert_int_equal(rill_signal_signum(s), 0);

  /* A failed switch leaves the watcher on its signal. */
  assert_int_equal(rill_signal_start(s, SIGUSR1), 0);
  assert_int_equal(rill_signal_start(s, SIGKILL), RILL_EINVAL);
  assert_int_equal(rill_signal_signum(s), SIGUSR1);
  rill_signal_free(s);

  assert_int_equal(rill_signal_new(NULL, srec_cb, NULL, &s), RILL_EINVAL);
  assert_int_equal(rill_signal_new(base, NULL, NULL, &s), RILL_EINVAL);
  assert_int_equal(rill_signal_new(base, srec_cb, NULL, NULL), RILL_EINVAL);
  assert_int_equal(rill_signal_start(NULL, SIGUSR1), RILL_EINVAL);
  assert_int_equal(rill_signal_stop(NULL), RILL_EINVAL);
  rill_signal_free(NULL);
  tu_base_free(base);
}

/* Several bases may watch one signal, and each gets it (this was
 * RILL_EBUSY for the second base). */
static void test_two_bases_same_signal(void **state) {
  rill_base *b1 = tu_base_new();
  rill_base *b2 = tu_base_new();
  struct srec r1 = {0}, r2 = {0};
  rill_signal *s1, *s2;
  (void)state;
  assert_int_equal(rill_signal_new(b1, srec_cb, &r1, &s1), 0);
  assert_int_equal(rill_signal_new(b2, srec_cb, &r2, &s2), 0);
  assert_int_equal(rill_signal_start(s1, SIGUSR1), 0);
  assert_int_equal(rill_signal_start(s2, SIGUSR1), 0);
  assert_int_equal(rill_signal_signum(s2), SIGUSR1);
  assert_int_equal(raise(SIGUSR1), 0);
  run_until(b1, &r1.calls, 1);
  run_until(b2, &r2.calls, 1);
  assert_int_equal(r1.calls, 1);
  assert_int_equal(r2.calls, 1);
  assert_int_equal(r1.signum[0], SIGUSR1);
  assert_int_equal(r2.signum[0], SIGUSR1);

  /* The first base lets go: the second still gets it, and the handler stays
   * installed until the last watcher in the process stops. */
  assert_int_equal(rill_signal_stop(s1), 0);
  assert_int_equal(raise(SIGUSR1), 0);
  run_until(b2, &r2.calls, 2);
  assert_int_equal(r2.calls, 2);
  assert_int_equal(r1.calls, 1);
  assert_int_equal(g_stray[SIGUSR1], 0);

  /* The last one stops: the program's own handler is back. */
  assert_int_equal(rill_signal_stop(s2), 0);
  assert_int_equal(raise(SIGUSR1), 0);
  assert_int_equal(g_stray[SIGUSR1], 1);

  rill_signal_free(s1);
  rill_signal_free(s2);
  tu_base_free(b1);
  tu_base_free(b2);
}

/* The kernel may run the handler on any thread; the callback still runs on
 * the base's thread. With a blocked signal (the old signalfd model) a thread
 * created after the watcher started inherited the block, and its own
 * signals never reached the base. */
static void *raise_usr1(void *arg) {
  (void)arg;
  raise(SIGUSR1); /* directed at this thread */
  return NULL;
}

static void test_other_thread(void **state) {
  rill_base *base = tu_base_new();
  struct srec r = {0};
  rill_signal *s;
  pthread_t thread;
  (void)state;
  assert_int_equal(rill_signal_new(base, srec_cb, &r, &s), 0);
  assert_int_equal(rill_signal_start(s, SIGUSR1), 0);
  assert_int_equal(pthread_create(&thread, NULL, raise_usr1, NULL), 0);
  assert_int_equal(pthread_join(thread, NULL), 0);
  run_until(base, &r.calls, 1);
  assert_int_equal(r.calls, 1);
  assert_int_equal(g_stray[SIGUSR1], 0);
  rill_signal_free(s);
  tu_base_free(base);
}

/* A base running on another thread gets a signal raised on this one; two
 * bases on two threads both get it. */
struct threaded_base {
  rill_base *base;
  struct srec r;
  rill_signal *s;
  int rc;
};

static void stop_on_signal(rill_signal *s, int signum, void *arg) {
  struct threaded_base *t = (struct threaded_base *)arg;
  (void)signum;
  t->r.calls++;
  rill_signal_free(s);
}

static void *run_base(void *arg) {
  struct threaded_base *t = (struct threaded_base *)arg;
  t->rc = rill_base_run(t->base, RILL_RUN_DEFAULT);
  return NULL;
}

static void test_bases_on_threads(void **state) {
  struct threaded_base t[2];
  pthread_t threads[2];
  int i;
  (void)state;
  memset(t, 0, sizeof t);
  for (i = 0; i < 2; i++) {
    t[i].base = tu_base_new();
    assert_int_equal(rill_signal_new(t[i].base, stop_on_signal, &t[i], &t[i].s), 0);
    assert_int_equal(rill_signal_start(t[i].s, SIGUSR1), 0);
    assert_int_equal(pthread_create(&threads[i], NULL, run_base, &t[i]), 0);
  }
  /* The watchers are started: the signal is routed to both bases whether
   * or not their threads are waiting yet. */
  assert_int_equal(raise(SIGUSR1), 0);
  for (i = 0; i < 2; i++) {
    struct timespec deadline; /* hang guard only */
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 20;
    if (pthread_timedjoin_np(threads[i], NULL, &deadline) != 0) {
      rill_base_stop(t[i].base);
      assert_int_equal(pthread_join(threads[i], NULL), 0);
      fail_msg("base %d never got the signal", i);
    }
    assert_int_equal(t[i].rc, 0); /* ended because the watcher was freed */
    assert_int_equal(t[i].r.calls, 1);
    tu_base_free(t[i].base);
  }
  assert_int_equal(g_stray[SIGUSR1], 0);
}

/* A program that watches SIGTERM and spawns a child must not hand it a
 * blocked SIGTERM: `kill -TERM` must end the child (with the old model the
 * child inherited the block and slept on). The child is sleep(1), not a
 * shell: shells unblock every signal when they start, which would hide the
 * defect. posix_spawn returns once the child has exec'd, so the signal
 * meets sleep itself. */
static void test_spawned_child_dies_of_sigterm(void **state) {
  rill_base *base = tu_base_new();
  struct srec r = {0};
  rill_signal *s;
  pid_t pid;
  int status = 0;
  uint64_t deadline;
  char *argv[] = {(char *)"sleep", (char *)"10", NULL};
  (void)state;
  assert_int_equal(rill_signal_new(base, srec_cb, &r, &s), 0);
  assert_int_equal(rill_signal_start(s, SIGTERM), 0);
  assert_int_equal(posix_spawnp(&pid, "sleep", NULL, NULL, argv, environ), 0);
  assert_int_equal(kill(pid, SIGTERM), 0);
  deadline = tu_now_ms() + 20000; /* hang guard only */
  for (;;) {
    pid_t got = waitpid(pid, &status, WNOHANG);
    if (got == pid) break;
    assert_true(got == 0 || errno == EINTR);
    if (tu_now_ms() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      fail_msg("the spawned child did not end");
    }
    tu_sleep_ms(5);
  }
  assert_true(WIFSIGNALED(status));
  assert_int_equal(WTERMSIG(status), SIGTERM);
  assert_int_equal(r.calls, 0); /* the child's signal was the child's */
  rill_signal_free(s);
  tu_base_free(base);
}

static void test_free_in_callback(void **state) {
  rill_base *base = tu_base_new();
  struct srec r = {0}, ra = {0}, rb = {0};
  struct keepalive k;
  rill_signal *s, *sa, *sb;
  int i;
  (void)state;

  assert_int_equal(rill_signal_new(base, srec_cb, &r, &s), 0);
  assert_int_equal(rill_signal_start(s, SIGUSR1), 0);
  r.free_self = 1;
  assert_int_equal(raise(SIGUSR1), 0);
  assert_int_equal(TU_RUN(base, RILL_RUN_DEFAULT, LIMIT), 0);
  assert_int_equal(r.calls, 1);
  assert_false(is_blocked(SIGUSR1));

  /* Two watchers on one signal; whichever runs first frees the other. */
  assert_int_equal(rill_signal_new(base, srec_cb, &ra, &sa), 0);
  assert_int_equal(rill_signal_new(base, srec_cb, &rb, &sb), 0);
  ra.victim = sb;
  rb.victim = sa;
  assert_int_equal(rill_signal_start(sa, SIGUSR2), 0);
  assert_int_equal(rill_signal_start(sb, SIGUSR2), 0);
  assert_int_equal(raise(SIGUSR2), 0);
  ka_start(base, &k);
  for (i = 0; i < 5; i++) TU_RUN(base, RILL_RUN_ONCE, LIMIT);
  assert_int_equal(ra.calls + rb.calls, 1);
  if (ra.calls) {
    rill_signal_free(sa);
  } else {
    rill_signal_free(sb);
  }
  ka_stop(&k);
  assert_false(is_blocked(SIGUSR2));
  assert_int_equal(g_stray[SIGUSR1] + g_stray[SIGUSR2], 0);
  tu_base_free(base);
}

static void test_merged(void **state) {
  rill_base *base = tu_base_new();
  struct srec r = {0};
  struct keepalive k;
  rill_signal *s;
  int i;
  (void)state;
  assert_int_equal(rill_signal_new(base, srec_cb, &r, &s), 0);
  assert_int_equal(rill_signal_start(s, SIGUSR1), 0);
  assert_int_equal(raise(SIGUSR1), 0);
  assert_int_equal(raise(SIGUSR1), 0);
  ka_start(base, &k);
  for (i = 0; i < 5; i++) TU_RUN(base, RILL_RUN_ONCE, LIMIT);
  assert_true(r.calls >= 1 && r.calls <= 2);

  /* A burst: at least one callback, never more than the signals sent. */
  r.calls = 0;
  for (i = 0; i < 100; i++) assert_int_equal(raise(SIGUSR1), 0);
  for (i = 0; i < 5; i++) TU_RUN(base, RILL_RUN_ONCE, LIMIT);
  assert_true(r.calls >= 1 && r.calls <= 100);
  assert_int_equal(g_stray[SIGUSR1], 0);
  rill_signal_free(s);
  ka_stop(&k);
  tu_base_free(base);
}

int main(void) {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_right_watcher),
      T(test_two_watchers_same_signal),
      T(test_stop_restores),
      T(test_bad_signals),
      T(test_two_bases_same_signal),
      T(test_other_thread),
      T(test_bases_on_threads),
      T(test_spawned_child_dies_of_sigterm),
      T(test_free_in_callback),
      T(test_merged),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
