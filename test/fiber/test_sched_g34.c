/* G34 (docs/go-model.md): rill_go() from a thread that is not the base's.
 *
 * The fiber is handed to the base and runs on the base's thread, never on
 * the caller's: many threads starting fibers at once, a base run by a
 * worker thread while the main thread starts fibers on it, a hand-over
 * that the base only meets in rill_base_free(), bad input and out of
 * memory on the calling side, and the base's own thread, inside and
 * outside the loop, which still makes the fiber at once.
 *
 * Before the fix, rill_go() from a foreign thread built the scheduler on
 * the caller's thread and returned 0, and the fiber never ran: these tests
 * then hang until their guard stops the base and fail.
 *
 * cmocka's assertions longjmp, which must never happen on a fiber's stack:
 * fibers record what they see and the test asserts after the run. */
#define _GNU_SOURCE 1

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "rill.h"
#include "test_util.h"

/* A hang guard only: every test waits for events. */
#define LIMIT_MS 60000

#define THREADS 8
#define PER_THREAD 25
#define TOTAL (THREADS * PER_THREAD)

/* What the fibers of one test see. Written only on the base's thread
 * (ThreadSanitizer would report a fiber that ran elsewhere). */
struct run {
  rill_base *base;
  pthread_t base_thread;
  int started[TOTAL];  /* how often each fiber ran */
  int wrong_thread;    /* fibers that ran off the base's thread */
  int wrong_base;      /* fibers whose rill_fiber_base() was not the base */
  int count;
  int target;          /* the fiber that makes `count` reach it unrefs */
};

struct job {
  struct run *run;
  int index;
};

static void record_fiber(void *arg) {
  struct job *j = (struct job *)arg;
  struct run *r = j->run;
  if (!pthread_equal(pthread_self(), r->base_thread))
    r->wrong_thread++;
  if (rill_fiber_base() != r->base)
    r->wrong_base++;
  r->started[j->index]++;
  /* Park once: a handed-over fiber is an ordinary fiber of the base. */
  rill_yield();
  if (++r->count == r->target)
    rill_base_unref(r->base);
}

struct starter {
  struct run *run;
  struct job *jobs; /* PER_THREAD of them */
  int errors;       /* rill_go() calls that did not return 0 */
  int in_loop;      /* rill_base_in_loop_thread() seen here */
};

static void *start_fibers(void *arg) {
  struct starter *st = (struct starter *)arg;
  int i;
  st->in_loop = rill_base_in_loop_thread(st->run->base);
  /* Give the loop time to block in its wait: nothing in rill_go() may
   * count on the loop waking up for another reason. No result depends on
   * this pause; without the fix, it turns a racy pass into a hang. */
  tu_sleep_ms(20);
  for (i = 0; i < PER_THREAD; i++) {
    /* Every other one with a stack size of its own. */
    int rc = i % 2 ? rill_go(st->run->base, record_fiber, &st->jobs[i])
                   : rill_go_stack(st->run->base, record_fiber, &st->jobs[i], 64 * 1024);
    if (rc != 0)
      st->errors++;
  }
  return NULL;
}

static void assert_every_fiber_ran_once(const struct run *r, int n) {
  int i;
  assert_int_equal(r->count, n);
  assert_int_equal(r->wrong_thread, 0);
  assert_int_equal(r->wrong_base, 0);
  for (i = 0; i < n; i++)
    assert_int_equal(r->started[i], 1);
}

/* ---- many threads, the base on the main thread ------------------------- */

static struct starter g_starters[THREADS];
static pthread_t g_threads[THREADS];
static int g_create_errors;

/* The threads start from inside the loop, so the base is running (and
 * soon waiting in the kernel) when they call rill_go(). */
static void create_threads(rill_timer *timer, void *arg) {
  int t;
  (void)arg;
  for (t = 0; t < THREADS; t++)
    if (pthread_create(&g_threads[t], NULL, start_fibers, &g_starters[t]) != 0)
      g_create_errors++;
  rill_timer_free(timer);
}

static void test_threads_go_on_main_base(void **state) {
  static struct run r;
  static struct job jobs[TOTAL];
  struct starter *st = g_starters;
  pthread_t *threads = g_threads;
  rill_timer *timer;
  int t;
  (void)state;
  memset(&r, 0, sizeof r);
  r.base = tu_base_new();
  r.base_thread = pthread_self();
  r.target = TOTAL;
  assert_int_equal(rill_base_in_loop_thread(r.base), 1);
  /* Nothing else keeps the loop running while hand-overs are in flight. */
  rill_base_ref(r.base);
  for (t = 0; t < THREADS; t++) {
    int i;
    for (i = 0; i < PER_THREAD; i++) {
      jobs[t * PER_THREAD + i].run = &r;
      jobs[t * PER_THREAD + i].index = t * PER_THREAD + i;
    }
    st[t].run = &r;
    st[t].jobs = &jobs[t * PER_THREAD];
    st[t].errors = 0;
    st[t].in_loop = -1;
  }
  g_create_errors = 0;
  assert_int_equal(rill_timer_new(r.base, create_threads, NULL, &timer), 0);
  assert_int_equal(rill_timer_start(timer, 0, 0), 0);
  assert_int_equal(TU_RUN(r.base, RILL_RUN_DEFAULT, LIMIT_MS), 0);
  assert_int_equal(g_create_errors, 0);
  for (t = 0; t < THREADS; t++) {
    assert_int_equal(pthread_join(threads[t], NULL), 0);
    assert_int_equal(st[t].errors, 0);
    assert_int_equal(st[t].in_loop, 0);
  }
  assert_every_fiber_ran_once(&r, TOTAL);
  assert_int_equal(rill_fiber_count(r.base), 0);
  tu_base_free(r.base);
}

/* ---- the base on a worker thread, fibers from the main thread ---------- */

struct worker {
  struct run *run;
  atomic_int ready; /* the base exists and belongs to the worker */
  atomic_int done;  /* the worker's run returned and it freed the base */
  int run_rc;
  int free_rc;
};

static void *run_base(void *arg) {
  struct worker *w = (struct worker *)arg;
  struct run *r = w->run;
  if (rill_base_new(NULL, &r->base) != 0) {
    atomic_store(&w->ready, -1);
    return NULL;
  }
  r->base_thread = pthread_self();
  rill_base_ref(r->base);
  atomic_store(&w->ready, 1);
  w->run_rc = rill_base_run(r->base, RILL_RUN_DEFAULT);
  w->free_rc = rill_base_free(r->base);
  atomic_store(&w->done, 1);
  return NULL;
}

/* Stops the worker's base if the fibers never come (the fix missing). */
static void stop_base(rill_base *base, void *arg) {
  (void)arg;
  rill_base_stop(base);
}

static void test_main_goes_on_worker_base(void **state) {
  static struct run r;
  static struct job jobs[PER_THREAD];
  struct worker w;
  pthread_t thread;
  uint64_t start;
  int i;
  (void)state;
  memset(&r, 0, sizeof r);
  memset(&w, 0, sizeof w);
  w.run = &r;
  r.target = PER_THREAD;
  atomic_init(&w.ready, 0);
  atomic_init(&w.done, 0);
  assert_int_equal(pthread_create(&thread, NULL, run_base, &w), 0);
  start = tu_now_ms();
  while (atomic_load(&w.ready) == 0 && tu_now_ms() - start < LIMIT_MS)
    tu_sleep_ms(1);
  assert_int_equal(atomic_load(&w.ready), 1);
  /* The base is the worker's, running or about to. */
  assert_int_equal(rill_base_in_loop_thread(r.base), 0);
  for (i = 0; i < PER_THREAD; i++) {
    jobs[i].run = &r;
    jobs[i].index = i;
    assert_int_equal(rill_go(r.base, record_fiber, &jobs[i]), 0);
  }
  /* The last fiber unrefs the base; the worker's run then returns and it
   * frees the base. Without the fibers, the guard below ends the wait. */
  start = tu_now_ms();
  while (!atomic_load(&w.done)) {
    if (tu_now_ms() - start > LIMIT_MS) {
      assert_int_equal(rill_base_post(r.base, stop_base, NULL), 0);
      assert_int_equal(pthread_join(thread, NULL), 0);
      fail_msg("the handed-over fibers did not run (%d of %d)", r.count, PER_THREAD);
    }
    tu_sleep_ms(1);
  }
  assert_int_equal(pthread_join(thread, NULL), 0);
  assert_int_equal(w.run_rc, 0);
  assert_int_equal(w.free_rc, 0);
  assert_every_fiber_ran_once(&r, PER_THREAD);
}

/* ---- handed over, then the base is freed ------------------------------- */

struct one_go {
  rill_base *base;
  struct job *job;
  int rc;
};

static void *go_once(void *arg) {
  struct one_go *g = (struct one_go *)arg;
  g->rc = rill_go(g->base, record_fiber, g->job);
  return NULL;
}

static void test_handed_over_then_freed(void **state) {
  static struct run r;
  struct job job;
  struct one_go g;
  pthread_t thread;
  (void)state;
  memset(&r, 0, sizeof r);
  r.base = tu_base_new();
  r.base_thread = pthread_self();
  r.target = -1; /* nobody unrefs: the base holds no reference */
  job.run = &r;
  job.index = 0;
  g.base = r.base;
  g.job = &job;
  g.rc = -1;
  assert_int_equal(pthread_create(&thread, NULL, go_once, &g), 0);
  assert_int_equal(pthread_join(thread, NULL), 0);
  assert_int_equal(g.rc, 0);
  /* Handed over, not made: nothing counts it before the base's thread
   * runs the hand-over. */
  assert_int_equal(rill_fiber_count(r.base), 0);
  /* rill_base_free() runs the hand-over, so the fiber now exists and the
   * base cannot go yet; running it lets the fiber finish. */
  assert_int_equal(rill_base_free(r.base), RILL_EBUSY);
  assert_int_equal(rill_fiber_count(r.base), 1);
  assert_int_equal(r.count, 0);
  assert_int_equal(TU_RUN(r.base, RILL_RUN_DEFAULT, LIMIT_MS), 0);
  assert_every_fiber_ran_once(&r, 1);
  tu_base_free(r.base);
}

/* ---- bad input from a foreign thread ----------------------------------- */

struct bad_input {
  rill_base *base;
  int null_base, null_fn, huge_stack;
};

static void *go_badly(void *arg) {
  struct bad_input *b = (struct bad_input *)arg;
  b->null_base = rill_go(NULL, record_fiber, NULL);
  b->null_fn = rill_go(b->base, NULL, NULL);
  b->huge_stack = rill_go_stack(b->base, record_fiber, NULL, SIZE_MAX);
  return NULL;
}

static void test_foreign_bad_input(void **state) {
  struct bad_input b;
  pthread_t thread;
  (void)state;
  memset(&b, 0, sizeof b);
  b.base = tu_base_new();
  assert_int_equal(pthread_create(&thread, NULL, go_badly, &b), 0);
  assert_int_equal(pthread_join(thread, NULL), 0);
  assert_int_equal(b.null_base, RILL_EINVAL);
  assert_int_equal(b.null_fn, RILL_EINVAL);
  assert_int_equal(b.huge_stack, RILL_EINVAL);
  /* Nothing was handed over: the base frees at once. */
  tu_base_free(b.base);
  assert_int_equal(rill_base_in_loop_thread(NULL), 0);
}

/* ---- out of memory on the calling side --------------------------------- */

static void *go_without_memory(void *arg) {
  struct one_go *g = (struct one_go *)arg;
  tu_alloc_fail_after(0);
  g->rc = rill_go(g->base, record_fiber, g->job);
  tu_alloc_fail_after(-1);
  return NULL;
}

static void test_foreign_enomem(void **state) {
  static struct run r;
  struct job job;
  struct one_go g;
  pthread_t thread;
  (void)state;
  memset(&r, 0, sizeof r);
  r.base = tu_base_new();
  r.base_thread = pthread_self();
  job.run = &r;
  job.index = 0;
  g.base = r.base;
  g.job = &job;
  g.rc = 0;
  assert_int_equal(pthread_create(&thread, NULL, go_without_memory, &g), 0);
  assert_int_equal(pthread_join(thread, NULL), 0);
  assert_int_equal(g.rc, RILL_ENOMEM);
  /* Nothing was handed over: the base frees at once, the fiber never ran. */
  tu_base_free(r.base);
  assert_int_equal(r.count, 0);
}

/* ---- the base's own thread: made at once, inside and outside the loop -- */

static void go_from_post(rill_base *base, void *arg) {
  struct job *j = (struct job *)arg;
  /* Inside a callback of the base: made here, counted at once. */
  size_t before = rill_fiber_count(base);
  if (rill_go(base, record_fiber, j) == 0 && rill_fiber_count(base) == before + 1)
    j->run->started[TOTAL - 1]++; /* a marker the test checks */
}

static void test_own_thread_makes_at_once(void **state) {
  static struct run r;
  struct job jobs[2];
  (void)state;
  memset(&r, 0, sizeof r);
  r.base = tu_base_new();
  r.base_thread = pthread_self();
  r.target = -1;
  jobs[0].run = jobs[1].run = &r;
  jobs[0].index = 0;
  jobs[1].index = 1;
  /* Outside rill_base_run(), on the thread that made the base. */
  assert_int_equal(rill_go(r.base, record_fiber, &jobs[0]), 0);
  assert_int_equal(rill_fiber_count(r.base), 1);
  assert_int_equal(rill_base_post(r.base, go_from_post, &jobs[1]), 0);
  assert_int_equal(TU_RUN(r.base, RILL_RUN_DEFAULT, LIMIT_MS), 0);
  assert_int_equal(r.started[TOTAL - 1], 1);
  r.started[TOTAL - 1] = 0;
  assert_every_fiber_ran_once(&r, 2);
  tu_base_free(r.base);
}

/* ---- a base made on one thread and run on another ---------------------- */

/* A fiber started on the main thread before a worker runs the base, and
 * one it starts from there: one scheduler serves both, whichever thread
 * the base is on. It used to be found through a list per thread: the
 * worker made a second one (rill_fiber_count() saw half the fibers), and
 * the main thread's list kept the first after the worker freed it. */
struct moved {
  rill_base *base;
  size_t count_seen;
  int second_ran;
};

static void second_fiber(void *arg) {
  struct moved *m = (struct moved *)arg;
  m->count_seen = rill_fiber_count(m->base);
  m->second_ran++;
}

static void first_fiber(void *arg) {
  struct moved *m = (struct moved *)arg;
  rill_go(rill_fiber_base(), second_fiber, m);
  rill_yield(); /* alive while the second one counts */
}

static void *run_moved_base(void *arg) {
  rill_base_run((rill_base *)arg, RILL_RUN_DEFAULT);
  return NULL;
}

static void test_base_moves_to_worker(void **state) {
  struct moved m;
  pthread_t thread;
  rill_base *again;
  (void)state;
  memset(&m, 0, sizeof m);
  m.base = tu_base_new();
  assert_int_equal(rill_go(m.base, first_fiber, &m), 0);
  assert_int_equal(pthread_create(&thread, NULL, run_moved_base, m.base), 0);
  assert_int_equal(pthread_join(thread, NULL), 0);
  /* The worker ran it last: the base is the worker's now. */
  assert_int_equal(rill_base_in_loop_thread(m.base), 0);
  assert_int_equal(m.second_ran, 1);
  assert_int_equal(m.count_seen, 2);
  assert_int_equal(rill_fiber_count(m.base), 0);
  tu_base_free(m.base);
  /* The main thread starts fibers again, on a new base: nothing of the
   * old scheduler is left to trip over (AddressSanitizer would say). */
  again = tu_base_new();
  m.base = again;
  assert_int_equal(rill_go(again, second_fiber, &m), 0);
  assert_int_equal(TU_RUN(again, RILL_RUN_DEFAULT, LIMIT_MS), 0);
  assert_int_equal(m.second_ran, 2);
  assert_int_equal(m.count_seen, 1);
  tu_base_free(again);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_threads_go_on_main_base),
      cmocka_unit_test(test_main_goes_on_worker_base),
      cmocka_unit_test(test_handed_over_then_freed),
      cmocka_unit_test(test_foreign_bad_input),
      cmocka_unit_test(test_foreign_enomem),
      cmocka_unit_test(test_own_thread_makes_at_once),
      cmocka_unit_test(test_base_moves_to_worker),
  };
  /* The counting allocator, for the out-of-memory test; before any base. */
  if (rill_set_allocator(tu_malloc, tu_realloc, tu_free) != 0)
    return 1;
  return cmocka_run_group_tests(tests, NULL, NULL);
}
