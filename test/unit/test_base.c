/* rill_base: creation, backends, run modes, stop, ref, stats, dump, clock.
 *
 * Callbacks only record what they see; the assertions run after
 * rill_base_run() returned, so a failure never jumps out of the loop. */
#define _GNU_SOURCE 1

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rill.h"
#include "test_util.h"

static void noop_timer_cb(rill_timer *t, void *arg) {
  (void)t;
  (void)arg;
}
static void noop_io_cb(rill_io *io, int fd, unsigned events, void *arg) {
  (void)io;
  (void)fd;
  (void)events;
  (void)arg;
}
static void noop_signal_cb(rill_signal *s, int signum, void *arg) {
  (void)s;
  (void)signum;
  (void)arg;
}

static void test_version(void **state) {
  (void)state;
  assert_int_equal(rill_version(),
                   (RILL_VERSION_MAJOR << 16) | (RILL_VERSION_MINOR << 8) | RILL_VERSION_PATCH);
  assert_non_null(rill_version_string());
  assert_string_equal(rill_version_string(), RILL_VERSION_STRING);
}

static void test_new_free_null_config(void **state) {
  rill_base *base = NULL;
  rill_base_config zero;
  (void)state;

  assert_int_equal(rill_base_new(NULL, &base), 0);
  assert_non_null(base);
  assert_int_equal(rill_base_free(base), 0);

  memset(&zero, 0, sizeof zero);
  base = NULL;
  assert_int_equal(rill_base_new(&zero, &base), 0);
  assert_non_null(base);
  assert_int_equal(rill_base_free(base), 0);

  assert_int_equal(rill_base_free(NULL), 0);
  assert_int_equal(rill_base_new(NULL, NULL), RILL_EINVAL);
}

static void test_unknown_backend(void **state) {
  rill_base_config cfg;
  rill_base *base = NULL;
  (void)state;
  memset(&cfg, 0, sizeof cfg);
  cfg.backend = "no-such-backend";
  assert_int_equal(rill_base_new(&cfg, &base), RILL_EBACKEND);
  cfg.backend = "EPOLL"; /* names are exact */
  assert_int_equal(rill_base_new(&cfg, &base), RILL_EBACKEND);
#if !defined(TU_HAVE_KQUEUE)
  cfg.backend = "kqueue"; /* known name, not built in */
  assert_int_equal(rill_base_new(&cfg, &base), RILL_EBACKEND);
#endif
}

static void test_unknown_backend_from_env(void **state) {
  char *saved = getenv("RILL_BACKEND") ? strdup(getenv("RILL_BACKEND")) : NULL;
  rill_base *base = NULL;
  rill_base_config cfg;
  (void)state;

  assert_int_equal(setenv("RILL_BACKEND", "no-such-backend", 1), 0);
  assert_int_equal(rill_base_new(NULL, &base), RILL_EBACKEND);

  /* An explicit config wins over the environment. */
  memset(&cfg, 0, sizeof cfg);
  cfg.backend = "poll";
  base = NULL;
  assert_int_equal(rill_base_new(&cfg, &base), 0);
  assert_string_equal(rill_base_backend(base), "poll");
  assert_int_equal(rill_base_free(base), 0);

  if (saved) {
    setenv("RILL_BACKEND", saved, 1);
    free(saved);
  } else {
    unsetenv("RILL_BACKEND");
  }
}

static void test_backend_name(void **state) {
  const char *env = getenv("RILL_BACKEND");
  rill_base *base = tu_base_new();
  const char *name = rill_base_backend(base);
  (void)state;
  assert_non_null(name);
  if (env && *env) {
    assert_string_equal(name, env);
  } else {
#if defined(__linux__)
    assert_string_equal(name, "epoll");
#else
    assert_true(strcmp(name, "kqueue") == 0 || strcmp(name, "poll") == 0);
#endif
  }
  tu_base_free(base);
}

static void test_explicit_backends(void **state) {
  static const char *names[] = {"poll",
#if defined(__linux__)
                                "epoll",
#endif
#if defined(TU_HAVE_KQUEUE)
                                "kqueue",
#endif
  };
  size_t i;
#if defined(TU_HAVE_KQUEUE) && defined(__linux__)
  int fds_before = tu_count_fds();
  uint64_t until;
#endif
  (void)state;
  for (i = 0; i < sizeof names / sizeof names[0]; i++) {
    rill_base_config cfg;
    rill_base *base = NULL;
    memset(&cfg, 0, sizeof cfg);
    cfg.backend = names[i];
    assert_int_equal(rill_base_new(&cfg, &base), 0);
    assert_string_equal(rill_base_backend(base), names[i]);
    assert_int_equal(rill_base_run(base, RILL_RUN_NOWAIT), 0);
    assert_int_equal(rill_base_free(base), 0);
  }
#if defined(TU_HAVE_KQUEUE) && defined(__linux__)
  /* libkqueue closes a kqueue's descriptors late, from a thread of its
   * own: wait for them, or the descriptor counts around this test and the
   * next one (under every backend, not only kqueue) say "leak". */
  until = tu_now_ms() + 5000;
  while (tu_count_fds() > fds_before && tu_now_ms() < until)
    tu_sleep_ms(10);
#endif
}

static void test_run_empty(void **state) {
  rill_base *base = tu_base_new();
  uint64_t t0 = tu_now_ms();
  (void)state;
  assert_int_equal(TU_RUN(base, RILL_RUN_DEFAULT, 2000), 0);
  assert_int_equal(TU_RUN(base, RILL_RUN_ONCE, 2000), 0);
  assert_int_equal(TU_RUN(base, RILL_RUN_NOWAIT, 2000), 0);
  assert_true(tu_now_ms() - t0 < 500);
  tu_base_free(base);
}

static void test_run_bad_args(void **state) {
  rill_base *base = tu_base_new();
  (void)state;
  assert_int_equal(rill_base_run(NULL, RILL_RUN_DEFAULT), RILL_EINVAL);
  assert_int_equal(rill_base_run(base, (rill_run_mode)3), RILL_EINVAL);
  assert_int_equal(rill_base_run(base, (rill_run_mode)-1), RILL_EINVAL);
  tu_base_free(base);
}

struct counter {
  int calls;
  rill_base *base;
  uint64_t now[16];
  int rc;
};

static void count_timer_cb(rill_timer *t, void *arg) {
  struct counter *c = (struct counter *)arg;
  (void)t;
  if (c->calls < 16) c->now[c->calls] = rill_base_now(c->base);
  c->calls++;
}

static void count_io_cb(rill_io *io, int fd, unsigned events, void *arg) {
  struct counter *c = (struct counter *)arg;
  (void)io;
  (void)fd;
  (void)events;
  c->calls++;
}

static void test_run_nowait(void **state) {
  rill_base *base = tu_base_new();
  struct counter tc = {0}, ic = {0};
  rill_timer *t;
  rill_io *io;
  int fds[2];
  uint64_t t0;
  (void)state;

  /* A far timer: NOWAIT returns at once, reports it still active. */
  assert_int_equal(rill_timer_new(base, count_timer_cb, &tc, &t), 0);
  assert_int_equal(rill_timer_start(t, 10 * RILL_SEC, 0), 0);
  t0 = tu_now_ms();
  assert_int_equal(TU_RUN(base, RILL_RUN_NOWAIT, 3000), 1);
  assert_int_equal(TU_RUN(base, RILL_RUN_NOWAIT, 3000), 1);
  assert_true(tu_now_ms() - t0 < 500);
  assert_int_equal(tc.calls, 0);

  /* Ready readiness is dispatched by a NOWAIT iteration. */
  tu_pipe(fds);
  tu_write_byte(fds[1]);
  assert_int_equal(rill_io_new(base, fds[0], count_io_cb, &ic, &io), 0);
  assert_int_equal(rill_io_start(io, RILL_READ), 0);
  assert_int_equal(TU_RUN(base, RILL_RUN_NOWAIT, 3000), 1);
  assert_int_equal(ic.calls, 1);
  assert_true(tu_now_ms() - t0 < 500);

  rill_io_free(io);
  rill_timer_free(t);
  assert_int_equal(TU_RUN(base, RILL_RUN_NOWAIT, 3000), 0);
  close(fds[0]);
  close(fds[1]);
  tu_base_free(base);
}

static void test_run_once(void **state) {
  rill_base *base = tu_base_new();
  struct counter tc = {0}, ic = {0};
  rill_timer *t;
  rill_io *io;
  int fds[2], i, rc = -1;
  uint64_t t0;
  (void)state;
  tc.base = base;

  /* Ready io: one iteration dispatches it, the watcher stays active. */
  tu_pipe(fds);
  tu_write_byte(fds[1]);
  assert_int_equal(rill_io_new(base, fds[0], count_io_cb, &ic, &io), 0);
  assert_int_equal(rill_io_start(io, RILL_READ), 0);
  assert_int_equal(TU_RUN(base, RILL_RUN_ONCE, 3000), 1);
  assert_int_equal(ic.calls, 1);
  rill_io_free(io);
  close(fds[0]);
  close(fds[1]);

  /* Nothing ready: ONCE waits (for the timer) instead of spinning. */
  assert_int_equal(rill_timer_new(base, count_timer_cb, &tc, &t), 0);
  t0 = tu_now_ms();
  assert_int_equal(rill_timer_start(t, 60 * RILL_MSEC, 0), 0);
  for (i = 0; i < 10 && tc.calls == 0; i++) {
    rc = TU_RUN(base, RILL_RUN_ONCE, 3000);
    if (tc.calls == 0) assert_int_equal(rc, 1);
  }
  assert_int_equal(tc.calls, 1);
  assert_true(i <= 3); /* at most a wake-up or two of rounding */
  assert_true(tu_now_ms() - t0 >= 59);
  assert_int_equal(rc, 0); /* the one-shot timer was the last active handle */
  rill_timer_free(t);
  tu_base_free(base);
}

/* ---- re-entrancy -------------------------------------------------------- */

struct reenter {
  rill_base *base;
  int nested_rc;
  int free_rc;
  int calls;
};

static void reenter_cb(rill_timer *t, void *arg) {
  struct reenter *r = (struct reenter *)arg;
  (void)t;
  r->calls++;
  r->nested_rc = rill_base_run(r->base, RILL_RUN_DEFAULT);
  r->free_rc = rill_base_free(r->base);
}

static void test_nested_run_and_free_busy(void **state) {
  rill_base *base = tu_base_new();
  struct reenter r = {0};
  rill_timer *t;
  (void)state;
  r.base = base;
  r.nested_rc = 12345;
  r.free_rc = 12345;
  assert_int_equal(rill_timer_new(base, reenter_cb, &r, &t), 0);
  assert_int_equal(rill_timer_start(t, RILL_MSEC, 0), 0);
  assert_int_equal(TU_RUN(base, RILL_RUN_DEFAULT, 3000), 0);
  assert_int_equal(r.calls, 1);
  assert_int_equal(r.nested_rc, RILL_EBUSY);
  assert_int_equal(r.free_rc, RILL_EBUSY);
  rill_timer_free(t);
  tu_base_free(base);
}

static void test_free_with_live_handles(void **state) {
  rill_base *base = tu_base_new();
  struct counter tc = {0};
  rill_timer *t;
  rill_io *io;
  rill_signal *sig;
  int fds[2];
  (void)state;
  tc.base = base;

  tu_pipe(fds);
  /* Stopped handles are still live handles. */
  assert_int_equal(rill_timer_new(base, count_timer_cb, &tc, &t), 0);
  assert_int_equal(rill_io_new(base, fds[0], noop_io_cb, NULL, &io), 0);
  assert_int_equal(rill_signal_new(base, noop_signal_cb, NULL, &sig), 0);
  assert_int_equal(rill_base_free(base), RILL_EBUSY);

  /* The base still works. */
  assert_int_equal(rill_timer_start(t, 5 * RILL_MSEC, 0), 0);
  assert_int_equal(TU_RUN(base, RILL_RUN_DEFAULT, 3000), 0);
  assert_int_equal(tc.calls, 1);

  rill_timer_free(t);
  assert_int_equal(rill_base_free(base), RILL_EBUSY);
  rill_io_free(io);
  assert_int_equal(rill_base_free(base), RILL_EBUSY);
  rill_signal_free(sig);
  assert_int_equal(rill_base_free(base), 0);
  close(fds[0]);
  close(fds[1]);
}

/* ---- stop ------------------------------------------------------------- */

struct stopper {
  rill_base *base;
  int calls;
  int stop_at;
};

static void stop_timer_cb(rill_timer *t, void *arg) {
  struct stopper *s = (struct stopper *)arg;
  (void)t;
  s->calls++;
  if (s->calls == s->stop_at) rill_base_stop(s->base);
}

static void test_stop_in_callback(void **state) {
  rill_base *base = tu_base_new();
  struct stopper s = {0};
  rill_timer *t;
  (void)state;
  s.base = base;
  s.stop_at = 3;
  assert_int_equal(rill_timer_new(base, stop_timer_cb, &s, &t), 0);
  assert_int_equal(rill_timer_start(t, RILL_MSEC, RILL_MSEC), 0);
  /* The repeating timer keeps the loop alive: only the stop ends it. */
  assert_int_equal(TU_RUN(base, RILL_RUN_DEFAULT, 3000), 1);
  assert_int_equal(s.calls, 3);
  assert_int_equal(rill_timer_active(t), 1);

  /* The stop was consumed: the next run goes on until the next stop. */
  s.stop_at = 6;
  assert_int_equal(TU_RUN(base, RILL_RUN_DEFAULT, 3000), 1);
  assert_int_equal(s.calls, 6);
  rill_timer_free(t);
  tu_base_free(base);
}

static void test_stop_before_run(void **state) {
  rill_base *base = tu_base_new();
  struct stopper s = {0};
  rill_timer *t;
  (void)state;
  s.base = base;
  s.stop_at = -1;
  assert_int_equal(rill_timer_new(base, stop_timer_cb, &s, &t), 0);
  assert_int_equal(rill_timer_start(t, 0, RILL_MSEC), 0);
  assert_int_equal(rill_base_stop(base), 0);
  /* Returns after at most one iteration. */
  assert_int_equal(TU_RUN(base, RILL_RUN_DEFAULT, 3000), 1);
  assert_true(s.calls <= 1);
  rill_timer_free(t);
  tu_base_free(base);
}

struct remote_stop {
  rill_base *base;
  unsigned delay_ms;
  int rc;
};

static void *remote_stop_main(void *p) {
  struct remote_stop *r = (struct remote_stop *)p;
  tu_sleep_ms(r->delay_ms);
  r->rc = rill_base_stop(r->base);
  return NULL;
}

static void test_stop_from_thread(void **state) {
  rill_base *base = tu_base_new();
  struct remote_stop r;
  pthread_t th;
  uint64_t t0;
  int rc;
  (void)state;

  /* Nothing active but a reference: the run would wait forever. */
  rill_base_ref(base);
  r.base = base;
  r.delay_ms = 80;
  r.rc = 12345;
  t0 = tu_now_ms();
  assert_int_equal(pthread_create(&th, NULL, remote_stop_main, &r), 0);
  rc = tu_run(base, RILL_RUN_DEFAULT, 5000);
  pthread_join(th, NULL);
  assert_false(tu_run_timed_out());
  assert_true(rc == 0 || rc == 1);
  assert_int_equal(r.rc, 0);
  assert_true(tu_now_ms() - t0 >= 70);

  /* The same with an active far timer, which must not be what ends it. */
  {
    struct counter tc = {0};
    rill_timer *t;
    tc.base = base;
    assert_int_equal(rill_timer_new(base, count_timer_cb, &tc, &t), 0);
    assert_int_equal(rill_timer_start(t, 60 * RILL_SEC, 0), 0);
    t0 = tu_now_ms();
    assert_int_equal(pthread_create(&th, NULL, remote_stop_main, &r), 0);
    rc = tu_run(base, RILL_RUN_DEFAULT, 5000);
    pthread_join(th, NULL);
    assert_false(tu_run_timed_out());
    assert_int_equal(rc, 1);
    assert_int_equal(tc.calls, 0);
    assert_true(tu_now_ms() - t0 < 3000);
    rill_timer_free(t);
  }

  rill_base_unref(base);
  assert_int_equal(TU_RUN(base, RILL_RUN_DEFAULT, 2000), 0);
  tu_base_free(base);
}

/* ---- ref / unref ----------------------------------------------------------- */

struct refs {
  rill_base *base;
  int first, second;
};

static void unref_second(rill_base *base, void *arg) {
  struct refs *r = (struct refs *)arg;
  r->second++;
  rill_base_unref(base);
}

static void unref_first(rill_base *base, void *arg) {
  struct refs *r = (struct refs *)arg;
  r->first++;
  rill_base_unref(base);
  /* One reference is left: the loop must go on and run this. */
  rill_base_post(base, unref_second, r);
}

static void test_ref_unref(void **state) {
  rill_base *base = tu_base_new();
  struct refs r = {0};
  (void)state;
  r.base = base;
  rill_base_ref(base);
  rill_base_ref(base);
  assert_int_equal(rill_base_post(base, unref_first, &r), 0);
  assert_int_equal(TU_RUN(base, RILL_RUN_DEFAULT, 3000), 0);
  assert_int_equal(r.first, 1);
  assert_int_equal(r.second, 1);
  /* Balanced again: an empty run returns at once. */
  assert_int_equal(TU_RUN(base, RILL_RUN_DEFAULT, 2000), 0);
  tu_base_free(base);
}

/* ---- stats ----------------------------------------------------------------- */

/* wait_ns counts the time inside the backend's wait and nothing else: a
 * callback that burns CPU adds nothing to it. It used to count from the
 * cached clock of the previous iteration, callbacks included. The wait
 * and the burn are disjoint parts of the run, so together they fit in the
 * run's wall time, however loaded the machine. */
struct burner {
  int calls;
  uint64_t burn_ns;
};

static void burn_timer_cb(rill_timer *t, void *arg) {
  struct burner *b = arg;
  if (++b->calls == 1) {
    uint64_t start = tu_now_ns();
    while (tu_now_ns() - start < 50000000u) {
    }
    b->burn_ns = tu_now_ns() - start;
  } else {
    rill_timer_stop(t);
  }
}

static void test_wait_ns_excludes_callbacks(void **state) {
  rill_base *base = tu_base_new();
  struct burner b = {0, 0};
  rill_base_stats st;
  rill_timer *t;
  uint64_t start, total;
  (void)state;
  assert_int_equal(rill_timer_new(base, burn_timer_cb, &b, &t), 0);
  assert_int_equal(rill_timer_start(t, 0, RILL_MSEC), 0);
  start = tu_now_ns();
  assert_int_equal(TU_RUN(base, RILL_RUN_DEFAULT, 10000), 0);
  total = tu_now_ns() - start;
  assert_int_equal(b.calls, 2);
  assert_int_equal(rill_base_stats_get(base, &st), 0);
  assert_true(st.iterations >= 2);
  if (st.wait_ns + b.burn_ns > total)
    fail_msg("wait_ns %llu + burn %llu > run %llu", (unsigned long long)st.wait_ns,
             (unsigned long long)b.burn_ns, (unsigned long long)total);
  rill_timer_free(t);
  tu_base_free(base);
}

static void count_post(rill_base *base, void *arg) {
  (void)base;
  ++*(int *)arg;
}

static void test_stats(void **state) {
  rill_base *base = tu_base_new();
  rill_base_stats st;
  struct counter tc = {0};
  rill_timer *t;
  int posts = 0;
  uint64_t events;
  (void)state;
  tc.base = base;

  assert_int_equal(rill_base_stats_get(NULL, &st), RILL_EINVAL);
  assert_int_equal(rill_base_stats_get(base, NULL), RILL_EINVAL);

  memset(&st, 0xff, sizeof st);
  assert_int_equal(rill_base_stats_get(base, &st), 0);
  assert_int_equal(st.iterations, 0);
  assert_int_equal(st.events, 0);
  assert_int_equal(st.handles, 0);
  assert_int_equal(st.active, 0);

  assert_int_equal(rill_timer_new(base, count_timer_cb, &tc, &t), 0);
  assert_int_equal(rill_base_stats_get(base, &st), 0);
  assert_int_equal(st.handles, 1);
  assert_int_equal(st.active, 0);

  assert_int_equal(rill_timer_start(t, 30 * RILL_MSEC, 0), 0);
  assert_int_equal(rill_base_stats_get(base, &st), 0);
  assert_int_equal(st.handles, 1);
  assert_int_equal(st.active, 1);

  assert_int_equal(TU_RUN(base, RILL_RUN_DEFAULT, 3000), 0);
  assert_int_equal(tc.calls, 1);
  assert_int_equal(rill_base_stats_get(base, &st), 0);
  assert_true(st.iterations >= 1);
  assert_int_equal(st.events, 1);
  /* The loop slept for most of the 30 ms in the backend. */
  assert_true(st.wait_ns >= 5000000u);
  assert_int_equal(st.handles, 1);
  assert_int_equal(st.active, 0);
  events = st.events;

  /* Posted functions count as dispatched events too. */
  rill_base_ref(base);
  assert_int_equal(rill_base_post(base, count_post, &posts), 0);
  assert_int_equal(rill_base_post(base, count_post, &posts), 0);
  {
    int i;
    for (i = 0; i < 10 && posts < 2; i++) assert_true(TU_RUN(base, RILL_RUN_ONCE, 3000) >= 0);
  }
  assert_int_equal(posts, 2);
  rill_base_unref(base);
  assert_int_equal(rill_base_stats_get(base, &st), 0);
  assert_int_equal(st.events, events + 2);

  {
    uint64_t it = st.iterations;
    assert_int_equal(TU_RUN(base, RILL_RUN_NOWAIT, 3000), 0);
    assert_int_equal(rill_base_stats_get(base, &st), 0);
    assert_true(st.iterations <= it + 1);
  }

  rill_timer_free(t);
  assert_int_equal(rill_base_stats_get(base, &st), 0);
  assert_int_equal(st.handles, 0);
  assert_int_equal(st.active, 0);
  tu_base_free(base);
}

/* ---- dump ----------------------------------------------------------------- */

static char *dump_to_string(rill_base *base, int *rc) {
  FILE *f = tmpfile();
  long len;
  char *buf;
  assert_non_null(f);
  *rc = rill_base_dump(base, f);
  fflush(f);
  len = ftell(f);
  assert_true(len >= 0);
  buf = (char *)calloc(1, (size_t)len + 1);
  assert_non_null(buf);
  rewind(f);
  assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
  fclose(f);
  return buf;
}

static int count_lines(const char *s) {
  int n = 0;
  for (; *s; s++)
    if (*s == '\n') n++;
  return n;
}

static int some_line_has(const char *text, const char *word, const char *not1,
                         const char *not2) {
  const char *line = text;
  while (*line) {
    const char *end = strchr(line, '\n');
    size_t len = end ? (size_t)(end - line) : strlen(line);
    char buf[512];
    if (len >= sizeof buf) len = sizeof buf - 1;
    memcpy(buf, line, len);
    buf[len] = 0;
    if (strstr(buf, word) && (!not1 || !strstr(buf, not1)) && (!not2 || !strstr(buf, not2)))
      return 1;
    if (!end) break;
    line = end + 1;
  }
  return 0;
}

static void test_dump(void **state) {
  rill_base *base = tu_base_new();
  rill_timer *t;
  rill_io *io;
  rill_signal *sig;
  int fds[2], rc, empty_lines;
  char *text, fdbuf[32];
  (void)state;

  /* The format is free (a summary line is fine); what counts is one line
   * per live handle. */
  text = dump_to_string(base, &rc);
  assert_int_equal(rc, 0);
  empty_lines = count_lines(text);
  assert_false(some_line_has(text, "timer", NULL, NULL));
  assert_false(some_line_has(text, "signal", NULL, NULL));
  free(text);

  tu_pipe(fds);
  assert_int_equal(rill_io_new(base, fds[0], noop_io_cb, NULL, &io), 0);
  assert_int_equal(rill_io_start(io, RILL_READ), 0);
  assert_int_equal(rill_timer_new(base, noop_timer_cb, NULL, &t), 0);
  assert_int_equal(rill_timer_start(t, 5 * RILL_SEC, 0), 0);
  assert_int_equal(rill_signal_new(base, noop_signal_cb, NULL, &sig), 0);

  text = dump_to_string(base, &rc);
  assert_int_equal(rc, 0);
  assert_int_equal(count_lines(text), empty_lines + 3);
  assert_true(some_line_has(text, "io", "timer", "signal"));
  assert_true(some_line_has(text, "timer", NULL, NULL));
  assert_true(some_line_has(text, "signal", NULL, NULL));
  snprintf(fdbuf, sizeof fdbuf, "%d", fds[0]);
  assert_true(some_line_has(text, fdbuf, "timer", "signal"));
  free(text);

  assert_int_equal(rill_base_dump(NULL, stdout), RILL_EINVAL);
  assert_int_equal(rill_base_dump(base, NULL), RILL_EINVAL);

  rill_io_free(io);
  rill_timer_free(t);
  text = dump_to_string(base, &rc);
  assert_int_equal(rc, 0);
  assert_int_equal(count_lines(text), empty_lines + 1);
  assert_true(some_line_has(text, "signal", NULL, NULL));
  assert_false(some_line_has(text, "timer", NULL, NULL));
  free(text);
  rill_signal_free(sig);
  close(fds[0]);
  close(fds[1]);
  tu_base_free(base);
}

/* ---- clock ----------------------------------------------------------------- */

static void test_now(void **state) {
  rill_base *base = tu_base_new();
  struct counter tc = {0};
  rill_timer *t;
  uint64_t n0, n1;
  int i;
  (void)state;
  tc.base = base;

  n0 = rill_base_now(base);
  /* Cached: sleeping does not move it, rill_base_update_time() does. */
  tu_sleep_ms(30);
  assert_true(rill_base_now(base) == n0);
  rill_base_update_time(base);
  n1 = rill_base_now(base);
  assert_true(n1 >= n0 + 30 * RILL_MSEC);
  assert_true(n1 < n0 + 5 * RILL_SEC);

  assert_int_equal(rill_timer_new(base, count_timer_cb, &tc, &t), 0);
  assert_int_equal(rill_timer_start(t, 20 * RILL_MSEC, 10 * RILL_MSEC), 0);
  for (i = 0; i < 100 && tc.calls < 5; i++) {
    assert_int_equal(TU_RUN(base, RILL_RUN_ONCE, 3000), 1);
  }
  assert_int_equal(tc.calls, 5);
  assert_true(tc.now[0] >= n1 + 20 * RILL_MSEC);
  for (i = 1; i < 5; i++) {
    assert_true(tc.now[i] >= tc.now[i - 1]);
    /* The i-th repetition is due 20 + 10 * i ms after the start. */
    assert_true(tc.now[i] >= n1 + (20 + 10 * (uint64_t)i) * RILL_MSEC);
  }
  assert_true(rill_base_now(base) >= tc.now[4]);
  rill_timer_free(t);
  tu_base_free(base);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_version, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_new_free_null_config, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_unknown_backend, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_unknown_backend_from_env, tu_setup_fds,
                                      tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_backend_name, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_explicit_backends, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_run_empty, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_run_bad_args, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_run_nowait, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_run_once, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_nested_run_and_free_busy, tu_setup_fds,
                                      tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_free_with_live_handles, tu_setup_fds,
                                      tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_stop_in_callback, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_stop_before_run, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_stop_from_thread, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_ref_unref, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_stats, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_wait_ns_excludes_callbacks, tu_setup_fds,
                                      tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_dump, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_now, tu_setup_fds, tu_teardown_fds),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
