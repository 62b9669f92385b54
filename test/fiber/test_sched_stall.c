/* The stall detector (rill_base_stall_detector, RILL_STALL_MS): a fiber or
 * callback that holds the loop past the threshold is reported once, with
 * what it was (a fiber and its rill_fiber_id(), or a callback's kind and
 * function) and for how long; a fiber that yields often is not; the
 * dispatch around a reported one is not charged with its time.
 *
 * Durations are bounded from below only, by the hog's own measurement with
 * rill_time_now(), and thresholds are far from the hogs' lengths, so a
 * loaded machine (or a sanitizer) cannot change an outcome: a 1 s hog
 * against a 200 ms threshold, 1 ms slices against 500 ms.
 *
 * cmocka's assertions longjmp, which must never happen on a fiber's stack:
 * fibers and reporters record, the test asserts after the run. */
#define _GNU_SOURCE 1

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rill.h"
#include "test_util.h"

#define LIMIT_MS 60000
#define HOG_NS (1000 * RILL_MSEC)
#define THRESHOLD_NS (200 * RILL_MSEC)

/* Spins on the clock for at least `d`; returns how long it really took. */
static uint64_t busy(uint64_t d) {
  uint64_t start = rill_time_now(), now;
  do
    now = rill_time_now();
  while (now - start < d);
  return now - start;
}

#define MAX_REPORTS 64

struct reports {
  int n;
  rill_stall all[MAX_REPORTS];
  rill_base *base_seen;
  int wrong_base;
};

static void record_stall(rill_base *base, const rill_stall *stall, void *arg) {
  struct reports *r = (struct reports *)arg;
  if (base != r->base_seen)
    r->wrong_base++;
  if (r->n < MAX_REPORTS)
    r->all[r->n] = *stall;
  r->n++;
}

/* Reports of `kind` (and, for fibers, of fiber `id`); the longest in *longest. */
static int count_reports(const struct reports *r, rill_stall_kind kind, uint64_t id, uint64_t *longest) {
  int i, n = 0;
  if (longest)
    *longest = 0;
  for (i = 0; i < r->n && i < MAX_REPORTS; i++) {
    const rill_stall *s = &r->all[i];
    if (s->kind != kind || (kind == RILL_STALL_FIBER && s->fiber_id != id))
      continue;
    n++;
    if (longest && s->duration_ns > *longest)
      *longest = s->duration_ns;
  }
  return n;
}

static const rill_stall *find_report(const struct reports *r, rill_stall_kind kind) {
  int i;
  for (i = 0; i < r->n && i < MAX_REPORTS; i++)
    if (r->all[i].kind == kind)
      return &r->all[i];
  return NULL;
}

/* ---- a fiber that computes for a second -------------------------------- */

struct hog {
  uint64_t id;      /* rill_fiber_id() of the hog, seen from inside */
  uint64_t took;    /* how long it spun */
  uint64_t before;  /* rill_time_now() before it spun */
  int yields;
};

static void hog_fiber(void *arg) {
  struct hog *h = (struct hog *)arg;
  h->id = rill_fiber_id(rill_fiber_current());
  /* A park first: the measured run below starts from the loop. */
  rill_yield();
  h->before = rill_time_now();
  h->took = busy(HOG_NS);
}

static void test_fiber_hog_reported(void **state) {
  rill_base *base = tu_base_new();
  struct reports r;
  struct hog h;
  uint64_t longest;
  const rill_stall *s;
  (void)state;
  memset(&r, 0, sizeof r);
  memset(&h, 0, sizeof h);
  r.base_seen = base;
  assert_int_equal(rill_base_stall_detector(base, THRESHOLD_NS, record_stall, &r), 0);
  assert_int_equal(rill_go(base, hog_fiber, &h), 0);
  assert_int_equal(TU_RUN(base, RILL_RUN_DEFAULT, LIMIT_MS), 0);
  assert_true(h.id != 0);
  assert_true(h.took >= HOG_NS);
  assert_int_equal(r.wrong_base, 0);
  /* Reported once, as the fiber, for at least as long as it spun. */
  assert_int_equal(count_reports(&r, RILL_STALL_FIBER, h.id, &longest), 1);
  assert_true(longest >= h.took);
  s = find_report(&r, RILL_STALL_FIBER);
  assert_non_null(s);
  assert_true(s->fn == (void (*)(void))hog_fiber);
  assert_ptr_equal(s->arg, &h);
  assert_true(s->started_ns <= h.before);
  /* The scheduler's timer that switched to the fiber is not charged with
   * the fiber's second. */
  count_reports(&r, RILL_STALL_TIMER, 0, &longest);
  assert_true(longest < h.took);
  tu_base_free(base);
}

/* ---- a fiber that computes as long, but yields every millisecond ------- */

static void polite_fiber(void *arg) {
  struct hog *h = (struct hog *)arg;
  uint64_t start;
  h->id = rill_fiber_id(rill_fiber_current());
  start = rill_time_now();
  while (rill_time_now() - start < HOG_NS) {
    busy(RILL_MSEC);
    rill_yield();
    h->yields++;
  }
  h->took = rill_time_now() - start;
}

/* Another fiber that runs meanwhile: the polite one lets it. */
static void ticker_fiber(void *arg) {
  int *ticks = (int *)arg;
  int i;
  for (i = 0; i < 20; i++) {
    rill_sleep(RILL_MSEC);
    (*ticks)++;
  }
}

static void test_yielding_fiber_not_reported(void **state) {
  rill_base *base = tu_base_new();
  struct reports r;
  struct hog h;
  int ticks = 0;
  (void)state;
  memset(&r, 0, sizeof r);
  memset(&h, 0, sizeof h);
  r.base_seen = base;
  assert_int_equal(rill_base_stall_detector(base, 500 * RILL_MSEC, record_stall, &r), 0);
  assert_int_equal(rill_go(base, polite_fiber, &h), 0);
  assert_int_equal(rill_go(base, ticker_fiber, &ticks), 0);
  assert_int_equal(TU_RUN(base, RILL_RUN_DEFAULT, LIMIT_MS), 0);
  assert_true(h.took >= HOG_NS);
  assert_true(h.yields > 0);
  assert_int_equal(ticks, 20);
  assert_int_equal(count_reports(&r, RILL_STALL_FIBER, h.id, NULL), 0);
  tu_base_free(base);
}

/* ---- callbacks: a timer's, and a posted function's --------------------- */

static uint64_t g_timer_took;

static void hog_timer(rill_timer *timer, void *arg) {
  (void)arg;
  g_timer_took = busy(HOG_NS);
  rill_timer_free(timer);
}

static uint64_t g_post_took;

static void hog_post(rill_base *base, void *arg) {
  (void)arg;
  g_post_took = busy(2 * THRESHOLD_NS);
  rill_base_unref(base);
}

static void test_callback_hogs_reported(void **state) {
  rill_base *base = tu_base_new();
  struct reports r;
  rill_timer *timer;
  int marker;
  uint64_t longest;
  const rill_stall *s;
  (void)state;
  memset(&r, 0, sizeof r);
  r.base_seen = base;
  assert_int_equal(rill_base_stall_detector(base, THRESHOLD_NS, record_stall, &r), 0);
  assert_int_equal(rill_timer_new(base, hog_timer, &marker, &timer), 0);
  assert_int_equal(rill_timer_start(timer, 0, 0), 0);
  rill_base_ref(base); /* until the post ran */
  assert_int_equal(rill_base_post(base, hog_post, &r), 0);
  assert_int_equal(TU_RUN(base, RILL_RUN_DEFAULT, LIMIT_MS), 0);

  assert_int_equal(count_reports(&r, RILL_STALL_TIMER, 0, &longest), 1);
  assert_true(longest >= g_timer_took);
  s = find_report(&r, RILL_STALL_TIMER);
  assert_true(s->fn == (void (*)(void))hog_timer);
  assert_ptr_equal(s->arg, &marker);
  assert_int_equal(s->fiber_id, 0);

  assert_int_equal(count_reports(&r, RILL_STALL_POST, 0, &longest), 1);
  assert_true(longest >= g_post_took);
  s = find_report(&r, RILL_STALL_POST);
  assert_true(s->fn == (void (*)(void))hog_post);
  assert_ptr_equal(s->arg, &r);
  /* Posts run from the base's wake-up watcher, which is not charged. */
  assert_int_equal(count_reports(&r, RILL_STALL_IO, 0, NULL), 0);
  tu_base_free(base);
}

/* ---- off, on and off again; names; bad input --------------------------- */

static void switch_off(rill_timer *timer, void *arg) {
  /* Turned off inside a dispatch: that dispatch is not reported either. */
  rill_base_stall_detector((rill_base *)arg, 0, NULL, NULL);
  g_timer_took = busy(2 * THRESHOLD_NS);
  rill_timer_free(timer);
}

static void test_off_and_names(void **state) {
  rill_base *base = tu_base_new();
  struct reports r;
  rill_timer *timer;
  (void)state;
  memset(&r, 0, sizeof r);
  r.base_seen = base;
  assert_int_equal(rill_base_stall_detector(NULL, THRESHOLD_NS, record_stall, &r), RILL_EINVAL);
  assert_int_equal(rill_base_stall_detector(base, THRESHOLD_NS, record_stall, &r), 0);
  assert_int_equal(rill_timer_new(base, switch_off, base, &timer), 0);
  assert_int_equal(rill_timer_start(timer, 0, 0), 0);
  assert_int_equal(TU_RUN(base, RILL_RUN_DEFAULT, LIMIT_MS), 0);
  assert_true(g_timer_took >= 2 * THRESHOLD_NS);
  assert_int_equal(r.n, 0);
  /* Never on: nothing either. */
  assert_int_equal(rill_timer_new(base, hog_timer, NULL, &timer), 0);
  assert_int_equal(rill_timer_start(timer, 0, 0), 0);
  assert_int_equal(TU_RUN(base, RILL_RUN_DEFAULT, LIMIT_MS), 0);
  assert_int_equal(r.n, 0);
  tu_base_free(base);

  assert_string_equal(rill_stall_kind_name(RILL_STALL_FIBER), "fiber");
  assert_string_equal(rill_stall_kind_name(RILL_STALL_IO), "io");
  assert_string_equal(rill_stall_kind_name(RILL_STALL_TIMER), "timer");
  assert_string_equal(rill_stall_kind_name(RILL_STALL_SIGNAL), "signal");
  assert_string_equal(rill_stall_kind_name(RILL_STALL_POST), "post");
  assert_string_equal(rill_stall_kind_name(RILL_STALL_REPORT), "report");
  assert_string_equal(rill_stall_kind_name((rill_stall_kind)0), "?");
  assert_string_equal(rill_stall_kind_name((rill_stall_kind)99), "?");
  assert_int_equal(rill_fiber_id(NULL), 0);
}

/* ---- RILL_STALL_MS: the default reporter, without changing code -------- */

/* In a child process whose stderr is a pipe: a base made before the
 * variable is set, one made after it, each with a fiber that hogs. Only
 * the second reports; a line the child writes itself separates the two. */
static void hog_on_new_base(void) {
  rill_base *base = NULL;
  struct hog h;
  memset(&h, 0, sizeof h);
  if (rill_base_new(NULL, &base) != 0 || rill_go(base, hog_fiber, &h) != 0 ||
      rill_base_run(base, RILL_RUN_DEFAULT) != 0 || rill_base_free(base) != 0)
    _exit(3);
  fprintf(stderr, "child: fiber %llu done\n", (unsigned long long)h.id);
}

static void child_main(int err_fd) {
  if (dup2(err_fd, STDERR_FILENO) < 0)
    _exit(2);
  unsetenv("RILL_STALL_MS");
  hog_on_new_base();
  setenv("RILL_STALL_MS", "junk", 1); /* not a number: off */
  hog_on_new_base();
  setenv("RILL_STALL_MS", "100", 1);
  hog_on_new_base();
  fflush(stderr);
  _exit(0);
}

static void test_env_default_reporter(void **state) {
  int fds[2];
  pid_t pid;
  char out[4096];
  size_t len = 0;
  uint64_t start;
  int status = 0, exited = 0;
  unsigned long long first = 0, second = 0, third = 0, reported = 0;
  const char *line;
  (void)state;
  assert_int_equal(pipe(fds), 0);
  pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    close(fds[0]);
    child_main(fds[1]);
  }
  close(fds[1]);
  /* Read to EOF; the child is killed if it does not finish in time, so a
   * failure here never leaves it holding the pipe. */
  start = tu_now_ms();
  for (;;) {
    struct pollfd p = {fds[0], POLLIN, 0};
    ssize_t n;
    if (tu_now_ms() - start > LIMIT_MS)
      break;
    if (poll(&p, 1, 100) <= 0)
      continue;
    n = read(fds[0], out + len, sizeof out - 1 - len);
    if (n <= 0)
      break;
    len += (size_t)n;
    if (len == sizeof out - 1)
      break;
  }
  out[len] = '\0';
  close(fds[0]);
  kill(pid, SIGKILL); /* a no-op for a child that exited */
  if (waitpid(pid, &status, 0) == pid && WIFEXITED(status))
    exited = 1;
  if (!exited || WEXITSTATUS(status) != 0)
    fail_msg("child failed (status %d); stderr:\n%s", status, out);

  /* Three hogs, one report, after the second hog and naming the third. */
  line = strstr(out, "child: fiber ");
  assert_non_null(line);
  assert_int_equal(sscanf(line, "child: fiber %llu done", &first), 1);
  line = strstr(line + 1, "child: fiber ");
  assert_non_null(line);
  assert_int_equal(sscanf(line, "child: fiber %llu done", &second), 1);
  /* The first stall line comes after the second hog's end. */
  line = strstr(out, "rill: stall: fiber ");
  if (!line)
    fail_msg("no stall line; stderr:\n%s", out);
  assert_true(line > strstr(out, "child: fiber ") && line > strstr(strstr(out, "child: fiber ") + 1, "child: fiber "));
  assert_int_equal(sscanf(line, "rill: stall: fiber %llu held base", &reported), 1);
  assert_non_null(strstr(line, " ms (fn 0x"));
  assert_null(strstr(line + 1, "rill: stall"));
  line = strstr(line, "child: fiber ");
  assert_non_null(line);
  assert_int_equal(sscanf(line, "child: fiber %llu done", &third), 1);
  assert_true(first != 0 && second != first && third != second);
  assert_int_equal(reported, third);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_fiber_hog_reported),
      cmocka_unit_test(test_yielding_fiber_not_reported),
      cmocka_unit_test(test_callback_hogs_reported),
      cmocka_unit_test(test_off_and_names),
      cmocka_unit_test(test_env_default_reporter),
  };
  /* The detector must be off unless a test turns it on. */
  unsetenv("RILL_STALL_MS");
  return cmocka_run_group_tests(tests, NULL, NULL);
}
