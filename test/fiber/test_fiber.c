/* Fibers (rill/fiber.h): switching order, yields that let io and timers
 * run, many fibers, sleep order, stack reuse and size, the guard page,
 * RILL_ENOTFIBER outside fibers, rill_fiber_current, wait groups.
 *
 * cmocka's assertions longjmp, which must never happen on a fiber's stack:
 * code inside fibers records failures with FCHECK() and the test asserts
 * once rill_base_run() returned. */
#define _GNU_SOURCE 1

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rill.h"
#include "test_util.h"

/* Watchdogs are hang guards only, generous for a loaded machine: every test
 * waits for events, never for the clock. */
#define LIMIT 60000
#define HANG_GUARD_MS 60000

#include "fiber_check.h"

/* ---- switching: ping-pong ---------------------------------------------- */

#define ROUNDS 100

struct pingpong {
  char log[2 * ROUNDS + 1];
  int n;
  rill_waitgroup *ping, *pong;
};

static void yield_a(void *arg) {
  struct pingpong *p = (struct pingpong *)arg;
  for (int i = 0; i < ROUNDS; i++) {
    p->log[p->n++] = 'a';
    FCHECK_EQ(rill_yield(), 0);
  }
}

static void yield_b(void *arg) {
  struct pingpong *p = (struct pingpong *)arg;
  for (int i = 0; i < ROUNDS; i++) {
    p->log[p->n++] = 'b';
    FCHECK_EQ(rill_yield(), 0);
  }
}

static void check_alternation(const struct pingpong *p) {
  assert_int_equal(p->n, 2 * ROUNDS);
  for (int i = 0; i < 2 * ROUNDS; i++)
    if (p->log[i] != (i % 2 ? 'b' : 'a'))
      fail_msg("order broken at %d: %.*s", i, 2 * ROUNDS, p->log);
}

static void pingpong_yield(void **state) {
  struct pingpong p;
  rill_base *base = tu_base_new();
  (void)state;
  fiber_check_reset();
  memset(&p, 0, sizeof p);
  assert_int_equal(rill_go(base, yield_a, &p), 0);
  assert_int_equal(rill_go(base, yield_b, &p), 0);
  /* Fibers start from the loop, not inside rill_go(). */
  assert_int_equal(p.n, 0);
  assert_int_equal(rill_fiber_count(base), 2);
  fiber_check_run(base, LIMIT);
  check_alternation(&p);
}

/* A hands the turn to B with `ping`, B back with `pong`; each re-arms its
 * own wait group after waking (switches happen only in rill calls, so the
 * re-arm cannot race). */
static void wg_a(void *arg) {
  struct pingpong *p = (struct pingpong *)arg;
  for (int i = 0; i < ROUNDS; i++) {
    if (i > 0) {
      FCHECK_EQ(rill_waitgroup_wait(p->pong), 0);
      rill_waitgroup_add(p->pong, 1);
    }
    p->log[p->n++] = 'a';
    rill_waitgroup_done(p->ping);
  }
}

static void wg_b(void *arg) {
  struct pingpong *p = (struct pingpong *)arg;
  for (int i = 0; i < ROUNDS; i++) {
    FCHECK_EQ(rill_waitgroup_wait(p->ping), 0);
    rill_waitgroup_add(p->ping, 1);
    p->log[p->n++] = 'b';
    rill_waitgroup_done(p->pong);
  }
}

static void pingpong_waitgroup(void **state) {
  struct pingpong p;
  rill_base *base = tu_base_new();
  (void)state;
  fiber_check_reset();
  memset(&p, 0, sizeof p);
  assert_int_equal(rill_waitgroup_new(&p.ping), 0);
  assert_int_equal(rill_waitgroup_new(&p.pong), 0);
  rill_waitgroup_add(p.ping, 1);
  rill_waitgroup_add(p.pong, 1);
  /* B first this time: it must wait for A's first turn. */
  assert_int_equal(rill_go(base, wg_b, &p), 0);
  assert_int_equal(rill_go(base, wg_a, &p), 0);
  fiber_check_run(base, LIMIT);
  check_alternation(&p);
  rill_waitgroup_free(p.ping);
  rill_waitgroup_free(p.pong);
}

/* ---- a yielding fiber does not starve timers or io --------------------- */

struct starve {
  int all_ran_while_spinning;
  int timer_fired;
  int io_fired;
  int sleeper_woke;
  long yields;
  rill_io *io;
  int pipe[2];
};

static void starve_timer_cb(rill_timer *t, void *arg) {
  (void)t;
  ((struct starve *)arg)->timer_fired = 1;
}

static void starve_io_cb(rill_io *io, int fd, unsigned events, void *arg) {
  struct starve *s = (struct starve *)arg;
  (void)events;
  tu_drain(fd);
  s->io_fired = 1;
  rill_io_stop(io);
}

static void starve_sleeper(void *arg) {
  FCHECK_EQ(rill_sleep(10 * RILL_MSEC), 0);
  ((struct starve *)arg)->sleeper_woke = 1;
}

/* Yields until the timer, the io watcher and the sleeper have all run: they
 * can only run while the spinner keeps yielding, so seeing all three from
 * inside the loop is the proof. The clock is a hang guard only. */
static void starve_spinner(void *arg) {
  struct starve *s = (struct starve *)arg;
  uint64_t end = tu_now_ms() + HANG_GUARD_MS;
  tu_write_byte(s->pipe[1]); /* the io watcher's event is due at once */
  while (!(s->timer_fired && s->io_fired && s->sleeper_woke) && tu_now_ms() < end) {
    FCHECK_EQ(rill_yield(), 0);
    s->yields++;
  }
  s->all_ran_while_spinning = s->timer_fired && s->io_fired && s->sleeper_woke;
}

static void yield_does_not_starve(void **state) {
  struct starve s;
  rill_timer *t = NULL;
  rill_base *base = tu_base_new();
  (void)state;
  fiber_check_reset();
  memset(&s, 0, sizeof s);
  tu_pipe(s.pipe);
  assert_int_equal(rill_io_new(base, s.pipe[0], starve_io_cb, &s, &s.io), 0);
  assert_int_equal(rill_io_start(s.io, RILL_READ), 0);
  assert_int_equal(rill_timer_new(base, starve_timer_cb, &s, &t), 0);
  assert_int_equal(rill_timer_start(t, 20 * RILL_MSEC, 0), 0);
  assert_int_equal(rill_go(base, starve_spinner, &s), 0);
  assert_int_equal(rill_go(base, starve_sleeper, &s), 0);
  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  assert_int_equal(rill_fiber_count(base), 0);
  assert_true(s.all_ran_while_spinning);
  assert_true(s.yields > 0);
  rill_io_free(s.io);
  rill_timer_free(t);
  close(s.pipe[0]);
  close(s.pipe[1]);
  tu_base_free(base);
  fiber_check_assert_clean();
}

/* ---- many fibers ------------------------------------------------------- */

/* ThreadSanitizer gives every fiber its own thread state (a trace of more
 * than 1 MiB): 10,000 of them exhaust its memory, and 2,000 took over the
 * two-minute limit on a loaded two-core machine, so it gets fewer. */
#if defined(__SANITIZE_THREAD__)
#define MANY 500
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define MANY 500
#endif
#endif
#ifndef MANY
#define MANY 10000
#endif

struct many {
  int finished;
  int started;
  size_t max_count;
  rill_base *base;
};

static unsigned lcg_next(unsigned *state) {
  *state = *state * 1103515245u + 12345u;
  return (*state >> 16) & 0x7fff;
}

struct many_arg {
  struct many *m;
  unsigned ms;
};

static void many_fiber(void *arg) {
  struct many_arg *a = (struct many_arg *)arg;
  size_t n;
  a->m->started++;
  n = rill_fiber_count(a->m->base);
  if (n > a->m->max_count)
    a->m->max_count = n;
  FCHECK_EQ(rill_sleep(a->ms * RILL_MSEC), 0);
  a->m->finished++;
}

static void many_fibers(void **state) {
  struct many m;
  struct many_arg *args = calloc(MANY, sizeof *args);
  rill_base *base = tu_base_new();
  unsigned seed = 12345;
  (void)state;
  fiber_check_reset();
  assert_non_null(args);
  memset(&m, 0, sizeof m);
  m.base = base;
  for (int i = 0; i < MANY; i++) {
    args[i].m = &m;
    args[i].ms = lcg_next(&seed) % 51;
    assert_int_equal(rill_go(base, many_fiber, &args[i]), 0);
  }
  assert_int_equal(rill_fiber_count(base), MANY);
  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  assert_int_equal(m.started, MANY);
  assert_int_equal(m.finished, MANY);
  assert_int_equal(m.max_count, MANY);
  assert_int_equal(rill_fiber_count(base), 0);
  tu_base_free(base);
  free(args);
  fiber_check_assert_clean();
}

/* ---- sleep order ------------------------------------------------------- */

struct sleeper {
  unsigned ms;
  int *order;
  int *n;
  uint64_t started, woke;
};

static void sleeper_fiber(void *arg) {
  struct sleeper *s = (struct sleeper *)arg;
  s->started = tu_now_ms();
  FCHECK_EQ(rill_sleep(s->ms * RILL_MSEC), 0);
  s->woke = tu_now_ms();
  s->order[(*s->n)++] = (int)s->ms;
}

static void sleep_order(void **state) {
  int order[3] = {0, 0, 0}, n = 0;
  struct sleeper s[3] = {{30, order, &n, 0, 0}, {10, order, &n, 0, 0}, {20, order, &n, 0, 0}};
  rill_base *base = tu_base_new();
  (void)state;
  fiber_check_reset();
  for (int i = 0; i < 3; i++)
    assert_int_equal(rill_go(base, sleeper_fiber, &s[i]), 0);
  fiber_check_run(base, LIMIT);
  assert_int_equal(n, 3);
  assert_int_equal(order[0], 10);
  assert_int_equal(order[1], 20);
  assert_int_equal(order[2], 30);
  /* Each slept at least its time (the order above is the behaviour; how
   * late a loaded machine wakes it is not). */
  for (int i = 0; i < 3; i++)
    assert_true(s[i].woke - s[i].started >= s[i].ms - 1);
}

/* A zero sleep parks and continues. */
static void zero_sleep_fiber(void *arg) {
  FCHECK_EQ(rill_sleep(0), 0);
  (*(int *)arg)++;
}

static void sleep_zero(void **state) {
  int done = 0;
  rill_base *base = tu_base_new();
  (void)state;
  fiber_check_reset();
  assert_int_equal(rill_go(base, zero_sleep_fiber, &done), 0);
  fiber_check_run(base, LIMIT);
  assert_int_equal(done, 1);
}

/* ---- stacks: reuse, size, guard page ----------------------------------- */

static int count_maps(void) {
  static char buf[65536];
  int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC), lines = 0;
  ssize_t n;
  if (fd < 0)
    return -1;
  while ((n = read(fd, buf, sizeof buf)) > 0)
    for (ssize_t i = 0; i < n; i++)
      lines += buf[i] == '\n';
  close(fd);
  return lines;
}

#define SEQUENTIAL 1000

struct seq {
  rill_waitgroup *wg;
  size_t stack_size;
  int maps_after_first;
  int maps_max;
  int ran;
};

static void seq_child(void *arg) {
  struct seq *s = (struct seq *)arg;
  volatile char touch[4096];
  touch[0] = 1;
  touch[sizeof touch - 1] = touch[0];
  s->ran++;
  rill_waitgroup_done(s->wg);
}

static void seq_main(void *arg) {
  struct seq *s = (struct seq *)arg;
  for (int i = 0; i < SEQUENTIAL; i++) {
    int maps;
    rill_waitgroup_add(s->wg, 1);
    FCHECK_EQ(rill_go_stack(rill_fiber_base(), seq_child, s, s->stack_size), 0);
    FCHECK_EQ(rill_waitgroup_wait(s->wg), 0);
    /* The child has returned; its stack is released on the loop's side
     * right after, so measure after one more turn. */
    FCHECK_EQ(rill_yield(), 0);
    if (i % 25 != 0 && i != SEQUENTIAL - 1)
      continue;
    maps = count_maps();
    if (i == 0)
      s->maps_after_first = maps;
    if (maps > s->maps_max)
      s->maps_max = maps;
  }
}

static void stack_reuse_with(size_t stack_size) {
  struct seq s;
  rill_base *base = tu_base_new();
  int before, after;
  fiber_check_reset();
  memset(&s, 0, sizeof s);
  s.stack_size = stack_size;
  assert_int_equal(rill_waitgroup_new(&s.wg), 0);
  before = count_maps();
  assert_true(before > 0);
  assert_int_equal(rill_go(base, seq_main, &s), 0);
  fiber_check_run(base, LIMIT);
  after = count_maps();
  rill_waitgroup_free(s.wg);
  assert_int_equal(s.ran, SEQUENTIAL);
  /* 1,000 stacks would be at least 2,000 mappings (stack + guard). */
  if (s.maps_max > s.maps_after_first + 16 || after > before + 16)
    fail_msg("mappings grew: before %d, after first fiber %d, max %d, after %d", before,
             s.maps_after_first, s.maps_max, after);
}

static void stack_reuse_default(void **state) {
  (void)state;
  stack_reuse_with(0);
}

/* Stacks of another size are not pooled: they must be unmapped. */
static void stack_reuse_custom_size(void **state) {
  (void)state;
  stack_reuse_with(64 * 1024);
}

#define BIG_LOCAL (100 * 1024)

static unsigned big_local_sum(unsigned seed) {
  volatile unsigned char big[BIG_LOCAL];
  unsigned sum = 0;
  for (size_t i = 0; i < sizeof big; i++)
    big[i] = (unsigned char)(seed + i * 13);
  for (size_t i = 0; i < sizeof big; i++)
    sum += big[i];
  return sum;
}

static void big_local_fiber(void *arg) {
  unsigned *out = (unsigned *)arg;
  /* Park in between, so the stack must survive a switch. */
  unsigned a = big_local_sum(7);
  FCHECK_EQ(rill_yield(), 0);
  *out = a + big_local_sum(7);
}

static void big_local_array(void **state) {
  unsigned got = 0, expect = 0;
  rill_base *base = tu_base_new();
  (void)state;
  fiber_check_reset();
  for (size_t i = 0; i < BIG_LOCAL; i++)
    expect += (unsigned char)(7 + i * 13);
  expect *= 2;
  assert_int_equal(rill_go(base, big_local_fiber, &got), 0);
  fiber_check_run(base, LIMIT);
  assert_int_equal(got, expect);
}

/* Unbounded recursion: every frame keeps a live buffer, so no tail call. */
static volatile int g_depth_limit = 0x7fffffff; /* hides the recursion's end */

static int recurse(int depth) {
  volatile char frame[512];
  frame[0] = (char)depth;
  frame[sizeof frame - 1] = (char)depth;
  if (depth >= g_depth_limit)
    return 0;
  return recurse(depth + 1) + frame[0] + frame[sizeof frame - 1];
}

static void overflow_fiber(void *arg) {
  int fd = *(int *)arg;
  int r;
  if (write(fd, "S", 1) != 1) {
  }
  r = recurse(0);
  /* Never reached. */
  if (write(fd, "R", 1) != 1 || r == 42) {
  }
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define UNDER_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define UNDER_SANITIZER 1
#endif
#endif

static void guard_page_overflow(void **state) {
  int out[2], status = 0;
  char report[65536];
  size_t got = 0;
  pid_t pid;
  (void)state;
  /* The child's stdout and stderr both go to `out`. */
  assert_int_equal(pipe(out), 0);
  fflush(stdout);
  fflush(stderr);
  pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    rill_base *base = NULL;
    struct sigaction sa;
    close(out[0]);
    dup2(out[1], 2);
    /* The default action: cmocka's handler would try to longjmp back into
     * the test runner, and a sanitizer's would report instead of dying. */
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGBUS, &sa, NULL);
    if (rill_base_new(NULL, &base) != 0)
      _exit(3);
    if (rill_go_stack(base, overflow_fiber, &out[1], 64 * 1024) != 0)
      _exit(4);
    rill_base_run(base, RILL_RUN_DEFAULT);
    _exit(0); /* a silent return: wrong */
  }
  close(out[1]);
  for (;;) {
    ssize_t n = read(out[0], report + got, sizeof report - 1 - got);
    if (n <= 0)
      break;
    got += (size_t)n;
  }
  report[got] = '\0';
  close(out[0]);
  assert_int_equal(waitpid(pid, &status, 0), pid);
  /* The fiber started, and never returned from the recursion. */
  assert_true(got > 0 && report[0] == 'S');
  assert_true(got < 2 || report[1] != 'R');
  if (WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV)
    return;
#ifdef UNDER_SANITIZER
  if (WIFEXITED(status) && WEXITSTATUS(status) != 0 &&
      (strstr(report, "stack-overflow") || strstr(report, "stack overflow")))
    return;
#endif
  fail_msg("child neither died of SIGSEGV nor reported a stack overflow: %s %d; output: %.2000s",
           WIFSIGNALED(status) ? "signal" : "exit status",
           WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status), report);
}

/* ---- outside a fiber: RILL_ENOTFIBER; rill_fiber_current --------------- */

struct outside {
  rill_net_listener *l;
  rill_net_conn *client, *server;
  rill_fiber *self[2];
  rill_fiber *self_after_yield[2];
  rill_base *base_inside;
  int idx;
  rill_waitgroup *accepted;
};

static void accept_one(void *arg) {
  struct outside *o = (struct outside *)arg;
  FCHECK_EQ(rill_net_accept(o->l, &o->server), 0);
  rill_waitgroup_done(o->accepted);
}

static void setup_conns(void *arg) {
  struct outside *o = (struct outside *)arg;
  char addr[RILL_ADDRSTRLEN];
  FCHECK_EQ(rill_net_listen("tcp", "127.0.0.1:0", NULL, &o->l), 0);
  if (!o->l)
    return;
  FCHECK(rill_net_listener_addr(o->l, addr, sizeof addr) > 0);
  FCHECK_EQ(rill_waitgroup_new(&o->accepted), 0);
  rill_waitgroup_add(o->accepted, 1);
  FCHECK_EQ(rill_go(rill_fiber_base(), accept_one, o), 0);
  FCHECK_EQ(rill_net_dial("tcp", addr, NULL, &o->client, NULL, 0), 0);
  FCHECK_EQ(rill_waitgroup_wait(o->accepted), 0);
  rill_waitgroup_free(o->accepted);
  /* The listener keeps the loop running: stop it here. */
  FCHECK_EQ(rill_sleep(20 * RILL_MSEC), 0);
  rill_base_stop(rill_fiber_base());
}

static void whoami(void *arg) {
  struct outside *o = (struct outside *)arg;
  int me = o->idx++;
  o->self[me] = rill_fiber_current();
  o->base_inside = rill_fiber_base();
  FCHECK_EQ(rill_yield(), 0);
  o->self_after_yield[me] = rill_fiber_current();
}

static void not_in_fiber(void **state) {
  struct outside o;
  rill_waitgroup *wg = NULL;
  rill_net_conn *c = NULL;
  rill_net_listener *l = NULL;
  char buf[8];
  size_t written = 5;
  rill_base *base = tu_base_new();
  (void)state;
  fiber_check_reset();
  memset(&o, 0, sizeof o);

  assert_null(rill_fiber_current());
  assert_null(rill_fiber_base());
  assert_int_equal(rill_fiber_count(base), 0);
  assert_int_equal(rill_sleep(RILL_MSEC), RILL_ENOTFIBER);
  assert_int_equal(rill_yield(), RILL_ENOTFIBER);
  assert_int_equal(rill_waitgroup_new(&wg), 0);
  rill_waitgroup_add(wg, 1);
  assert_int_equal(rill_waitgroup_wait(wg), RILL_ENOTFIBER);
  rill_waitgroup_done(wg);
  assert_int_equal(rill_waitgroup_wait(wg), RILL_ENOTFIBER);
  rill_waitgroup_free(wg);
  assert_int_equal(rill_net_dial("tcp", "127.0.0.1:1", NULL, &c, NULL, 0), RILL_ENOTFIBER);
  assert_null(c);
  assert_int_equal(rill_net_listen("tcp", "127.0.0.1:0", NULL, &l), RILL_ENOTFIBER);
  assert_null(l);

  /* Inside: the current fiber, distinct per fiber, stable across a park. */
  assert_int_equal(rill_go(base, whoami, &o), 0);
  assert_int_equal(rill_go(base, whoami, &o), 0);
  assert_int_equal(rill_go(base, setup_conns, &o), 0);
  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  assert_int_equal(rill_fiber_count(base), 0);
  assert_non_null(o.self[0]);
  assert_non_null(o.self[1]);
  assert_ptr_not_equal(o.self[0], o.self[1]);
  assert_ptr_equal(o.self[0], o.self_after_yield[0]);
  assert_ptr_equal(o.self[1], o.self_after_yield[1]);
  assert_ptr_equal(o.base_inside, base);
  assert_null(rill_fiber_current());
  fiber_check_assert_clean();

  /* Real connections, used from outside any fiber. */
  assert_non_null(o.client);
  assert_non_null(o.server);
  assert_int_equal(rill_net_read(o.client, buf, sizeof buf), RILL_ENOTFIBER);
  assert_int_equal(rill_net_write(o.client, "hello", 5, &written), RILL_ENOTFIBER);
  assert_int_equal(written, 0);
  assert_int_equal(rill_net_accept(o.l, &c), RILL_ENOTFIBER);
  /* Non-waiting calls work anywhere. */
  assert_true(rill_net_fd(o.client) >= 0);

  rill_net_conn_free(o.client);
  rill_net_conn_free(o.server);
  rill_net_listener_free(o.l);
  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  tu_base_free(base);
}

/* ---- wait groups ------------------------------------------------------- */

struct wgt {
  rill_waitgroup *wg;
  int workers_done;
  int waiters_woke;
  int workers_done_seen[3];
  int immediate_ok;
  int other_ran;
};

static void wg_worker(void *arg) {
  struct wgt *t = (struct wgt *)arg;
  FCHECK_EQ(rill_sleep((5 + (unsigned)t->workers_done * 3) * RILL_MSEC), 0);
  t->workers_done++;
  rill_waitgroup_done(t->wg);
}

static void wg_waiter(void *arg) {
  struct wgt *t = (struct wgt *)arg;
  FCHECK_EQ(rill_waitgroup_wait(t->wg), 0);
  t->workers_done_seen[t->waiters_woke++] = t->workers_done;
}

static void wg_other(void *arg) { ((struct wgt *)arg)->other_ran = 1; }

static void wg_main(void *arg) {
  struct wgt *t = (struct wgt *)arg;
  rill_base *base = rill_fiber_base();
  int i;
  /* A zero counter: wait returns at once, without letting others run. */
  FCHECK_EQ(rill_go(base, wg_other, t), 0);
  FCHECK_EQ(rill_waitgroup_wait(t->wg), 0);
  FCHECK_EQ(t->other_ran, 0);

  /* Ten workers, three waiters: all waiters wake once all workers are
   * done, not before. */
  rill_waitgroup_add(t->wg, 10);
  for (i = 0; i < 10; i++)
    FCHECK_EQ(rill_go(base, wg_worker, t), 0);
  for (i = 0; i < 2; i++)
    FCHECK_EQ(rill_go(base, wg_waiter, t), 0);
  FCHECK_EQ(rill_waitgroup_wait(t->wg), 0);
  t->workers_done_seen[t->waiters_woke++] = t->workers_done;
  FCHECK_EQ(t->workers_done, 10);

  /* Reusable after reaching zero. */
  rill_waitgroup_add(t->wg, 1);
  FCHECK_EQ(rill_go(base, wg_worker, t), 0);
  FCHECK_EQ(rill_waitgroup_wait(t->wg), 0);
  FCHECK_EQ(t->workers_done, 11);
}

static void waitgroup_semantics(void **state) {
  struct wgt t;
  rill_base *base = tu_base_new();
  (void)state;
  fiber_check_reset();
  memset(&t, 0, sizeof t);
  assert_int_equal(rill_waitgroup_new(&t.wg), 0);
  assert_int_equal(rill_go(base, wg_main, &t), 0);
  fiber_check_run(base, LIMIT);
  assert_int_equal(t.waiters_woke, 3);
  for (int i = 0; i < 3; i++)
    assert_int_equal(t.workers_done_seen[i], 10);
  rill_waitgroup_free(t.wg);
  assert_int_equal(rill_waitgroup_new(NULL), RILL_EINVAL);
  assert_int_equal(rill_waitgroup_wait(NULL), RILL_EINVAL);
}

/* ---- argument checks --------------------------------------------------- */

static void noop(void *arg) { (void)arg; }

static void go_bad_args(void **state) {
  rill_base *base = tu_base_new();
  (void)state;
  assert_int_equal(rill_go(NULL, noop, NULL), RILL_EINVAL);
  assert_int_equal(rill_go(base, NULL, NULL), RILL_EINVAL);
  assert_int_equal(rill_fiber_count(base), 0);
  /* An odd stack size is rounded up and works. */
  assert_int_equal(rill_go_stack(base, noop, NULL, 10000), 0);
  assert_int_equal(rill_fiber_count(base), 1);
  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  assert_int_equal(rill_fiber_count(base), 0);
  tu_base_free(base);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(pingpong_yield, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(pingpong_waitgroup, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(yield_does_not_starve, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(many_fibers, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(sleep_order, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(sleep_zero, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(stack_reuse_default, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(stack_reuse_custom_size, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(big_local_array, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(guard_page_overflow, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(not_in_fiber, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(waitgroup_semantics, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(go_bad_args, tu_setup_fds, tu_teardown_fds),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
