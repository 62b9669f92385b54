/* Fiber stacks as Go programmers use goroutines' (issue 9): plain rill_go()
 * runs a fiber with 1 MiB or 4 MiB of locals, or deep recursion (the stack
 * is reserved at 8 MiB and committed as it is touched); a deep fiber's
 * pages go back to the kernel when its stack returns to the pool; an idle
 * fiber costs about a page; a stack the address space cannot hold is
 * RILL_ENOMEM.
 *
 * RSS bounds are skipped under the sanitizers: AddressSanitizer's shadow
 * memory, fake stacks and quarantined heap grow RSS with what the program
 * touches, and ThreadSanitizer gives every fiber a thread state of about
 * 850 KiB, so RSS says nothing about the stacks there; the fibers still
 * run and their bytes are still checked. Address-space limits are
 * skipped under the sanitizers too (they reserve terabytes of shadow).
 *
 * cmocka's assertions longjmp, which must never happen on a fiber's stack:
 * code inside fibers records failures with FCHECK() and the test asserts
 * once rill_base_run() returned. */
#define _GNU_SOURCE 1

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include "rill.h"
#include "test_util.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define UNDER_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define UNDER_SANITIZER 1
#endif
#endif

#define LIMIT 120000 /* a hang guard only */
#define KIB 1024L
#define MIB (1024L * 1024L)

#include "fiber_check.h"

static void run_and_free(rill_base *base) { fiber_check_run(base, LIMIT); }

static long vm_rss_kib(void) {
  char line[256];
  long kib = -1;
  FILE *f = fopen("/proc/self/status", "r");
  if (!f)
    return -1;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
      break;
  fclose(f);
  return kib;
}

/* ---- deep stacks with plain rill_go ------------------------------------- */

/* Fills `n` bytes of locals, parks (the stack must survive a switch), then
 * sums them. noinline and volatile keep the compiler from shrinking the
 * array or computing the sum without touching it. */
static __attribute__((noinline)) unsigned long fill_park_sum(volatile unsigned char *p, size_t n,
                                                             unsigned seed) {
  unsigned long sum = 0;
  memset((void *)p, (int)(seed & 0xff), n);
  for (size_t i = 0; i < n; i += 4096)
    p[i] = (unsigned char)(seed + i / 4096);
  FCHECK(rill_yield() == 0);
  for (size_t i = 0; i < n; i++)
    sum += p[i];
  return sum;
}

static unsigned long expected_sum(size_t n, unsigned seed) {
  unsigned long sum = (unsigned long)(seed & 0xff) * (n - (n + 4095) / 4096);
  for (size_t i = 0; i < n; i += 4096)
    sum += (unsigned char)(seed + i / 4096);
  return sum;
}

static void locals_1mib(void *arg) {
  volatile unsigned char big[1 * MIB];
  *(unsigned long *)arg = fill_park_sum(big, sizeof big, 7);
}

static void locals_4mib(void *arg) {
  volatile unsigned char big[4 * MIB];
  *(unsigned long *)arg = fill_park_sum(big, sizeof big, 11);
}

#define RECURSION_DEPTH 10000

/* About 200 bytes a level, 2 MiB at the bottom (more under ASan); parks
 * at the bottom so every level's frame must survive a switch. */
static __attribute__((noinline)) unsigned long recurse(int depth) {
  volatile unsigned char frame[160];
  unsigned long below;
  memset((void *)frame, depth & 0xff, sizeof frame);
  if (depth == 0) {
    FCHECK(rill_yield() == 0);
    below = 0;
  } else {
    below = recurse(depth - 1);
  }
  return below + frame[0] + frame[sizeof frame - 1];
}

static void recursion_fiber(void *arg) { *(unsigned long *)arg = recurse(RECURSION_DEPTH); }

static void deep_stacks_with_rill_go(void **state) {
  rill_base *base = tu_base_new();
  unsigned long sum_1mib = 0, sum_4mib = 0, sum_rec = 0, want_rec = 0;
  (void)state;
  assert_int_equal(rill_go(base, locals_1mib, &sum_1mib), 0);
  assert_int_equal(rill_go(base, locals_4mib, &sum_4mib), 0);
  assert_int_equal(rill_go(base, recursion_fiber, &sum_rec), 0);
  run_and_free(base);
  for (int d = 0; d <= RECURSION_DEPTH; d++)
    want_rec += 2ul * (unsigned long)(d & 0xff);
  assert_int_equal(sum_1mib, expected_sum(1 * MIB, 7));
  assert_int_equal(sum_4mib, expected_sum(4 * MIB, 11));
  assert_int_equal(sum_rec, want_rec);
}

/* ---- a deep fiber's pages go back with its stack ------------------------ */

struct deep_then_idle {
  rill_waitgroup *wg;
  long rss_before_kib, rss_deep_kib, rss_after_kib;
  unsigned long sum;
};

static void deep_fiber(void *arg) {
  struct deep_then_idle *t = (struct deep_then_idle *)arg;
  volatile unsigned char big[4 * MIB];
  memset((void *)big, 1, sizeof big);
  t->rss_deep_kib = vm_rss_kib();
  t->sum = big[0] + big[sizeof big - 1];
  rill_waitgroup_done(t->wg);
}

static void deep_driver(void *arg) {
  struct deep_then_idle *t = (struct deep_then_idle *)arg;
  t->rss_before_kib = vm_rss_kib();
  rill_waitgroup_add(t->wg, 1);
  FCHECK(rill_go(rill_fiber_base(), deep_fiber, t) == 0);
  FCHECK(rill_waitgroup_wait(t->wg) == 0);
  /* deep_fiber has returned; the loop pools its stack before this fiber
   * runs again, and a yield is one more turn of it. */
  FCHECK(rill_yield() == 0);
  FCHECK(rill_fiber_count(rill_fiber_base()) == 1);
  t->rss_after_kib = vm_rss_kib();
}

static void deep_pages_released(void **state) {
  struct deep_then_idle t;
  rill_base *base = tu_base_new();
  (void)state;
  memset(&t, 0, sizeof t);
  assert_int_equal(rill_waitgroup_new(&t.wg), 0);
  assert_int_equal(rill_go(base, deep_driver, &t), 0);
  run_and_free(base);
  rill_waitgroup_free(t.wg);
  assert_int_equal(t.sum, 2);
  fprintf(stderr, "# RSS: %ld KiB before, %ld KiB with a 4 MiB deep fiber, %ld KiB after it ended\n",
          t.rss_before_kib, t.rss_deep_kib, t.rss_after_kib);
#ifndef UNDER_SANITIZER
  /* The deep fiber did commit its 4 MiB (the measure works), and they
   * were given back: well under half of them remain. */
  if (t.rss_deep_kib < t.rss_before_kib + 4 * 1024 - 256)
    fail_msg("a 4 MiB deep fiber grew RSS only from %ld to %ld KiB", t.rss_before_kib,
             t.rss_deep_kib);
  if (t.rss_after_kib > t.rss_before_kib + 1024)
    fail_msg("the deep fiber's pages stayed: RSS %ld KiB before, %ld KiB after it ended",
             t.rss_before_kib, t.rss_after_kib);
#endif
}

/* A fiber that parks while deep, having touched only the deep end of its
 * locals: the page just below the kept top is untouched, and the switch
 * the fiber made from down there is what shows it went deep. Its pages go
 * back all the same (mincore on the pooled stack, which stays mapped). */
#define DEEP_TOUCHED (64 * KIB)

struct deep_parked {
  rill_waitgroup *wg;
  unsigned char *touched; /* the deep end of deep_parked_fiber's locals */
  long resident_pages;
};

static void deep_parked_fiber(void *arg) {
  struct deep_parked *t = (struct deep_parked *)arg;
  volatile unsigned char big[1 * MIB];
  memset((void *)big, 1, DEEP_TOUCHED);
  t->touched = (unsigned char *)big;
  FCHECK(rill_yield() == 0); /* a switch from deep down */
  rill_waitgroup_done(t->wg);
}

static long resident_pages(void *addr, size_t len) {
  unsigned char vec[DEEP_TOUCHED / 4096 + 1];
  long page = sysconf(_SC_PAGESIZE), n = 0;
  uintptr_t begin = (uintptr_t)addr & ~(uintptr_t)(page - 1);
  size_t pages = (len + page - 1) / page;
  if (pages > sizeof vec || mincore((void *)begin, pages * page, vec) != 0)
    return -1;
  for (size_t i = 0; i < pages; i++)
    n += vec[i] & 1;
  return n;
}

static void deep_parked_driver(void *arg) {
  struct deep_parked *t = (struct deep_parked *)arg;
  rill_waitgroup_add(t->wg, 1);
  FCHECK(rill_go(rill_fiber_base(), deep_parked_fiber, t) == 0);
  FCHECK(rill_waitgroup_wait(t->wg) == 0);
  FCHECK(rill_yield() == 0); /* the loop pools the stack meanwhile */
  FCHECK(rill_fiber_count(rill_fiber_base()) == 1);
  t->resident_pages = resident_pages(t->touched, DEEP_TOUCHED);
}

static void deep_parked_pages_released(void **state) {
  struct deep_parked t;
  rill_base *base = tu_base_new();
  (void)state;
  memset(&t, 0, sizeof t);
  assert_int_equal(rill_waitgroup_new(&t.wg), 0);
  assert_int_equal(rill_go(base, deep_parked_driver, &t), 0);
  run_and_free(base);
  rill_waitgroup_free(t.wg);
  assert_int_equal(t.resident_pages, 0);
}

/* ---- idle fibers are cheap ---------------------------------------------- */

#define IDLE_FIBERS 1000

struct idle {
  rill_waitgroup *gate;    /* every idle fiber waits on it */
  rill_waitgroup *parked;  /* counts the fibers not yet parked */
  long rss_before_kib, rss_idle_kib;
  int woke;
};

static void idle_fiber(void *arg) {
  struct idle *t = (struct idle *)arg;
  rill_waitgroup_done(t->parked);
  FCHECK(rill_waitgroup_wait(t->gate) == 0);
  t->woke++;
}

static void idle_driver(void *arg) {
  struct idle *t = (struct idle *)arg;
  rill_waitgroup_add(t->gate, 1);
  rill_waitgroup_add(t->parked, IDLE_FIBERS);
  t->rss_before_kib = vm_rss_kib();
  for (int i = 0; i < IDLE_FIBERS; i++)
    FCHECK(rill_go(rill_fiber_base(), idle_fiber, t) == 0);
  FCHECK(rill_waitgroup_wait(t->parked) == 0);
  /* The last one to count down is parked after one more turn. */
  FCHECK(rill_yield() == 0);
  t->rss_idle_kib = vm_rss_kib();
  rill_waitgroup_done(t->gate);
}

static void idle_fibers_are_cheap(void **state) {
  struct idle t;
  rill_base *base = tu_base_new();
  long per_fiber;
  (void)state;
  memset(&t, 0, sizeof t);
  assert_int_equal(rill_waitgroup_new(&t.gate), 0);
  assert_int_equal(rill_waitgroup_new(&t.parked), 0);
  assert_int_equal(rill_go(base, idle_driver, &t), 0);
  run_and_free(base);
  rill_waitgroup_free(t.gate);
  rill_waitgroup_free(t.parked);
  assert_int_equal(t.woke, IDLE_FIBERS);
  per_fiber = (t.rss_idle_kib - t.rss_before_kib) * 1024 / IDLE_FIBERS;
  fprintf(stderr, "# %d idle fibers: RSS %ld -> %ld KiB, %ld bytes each\n", IDLE_FIBERS,
          t.rss_before_kib, t.rss_idle_kib, per_fiber);
#ifndef UNDER_SANITIZER
  /* One page of stack (the fiber's state and its frames) is the cost; a
   * goroutine's is 2 KiB to 8 KiB. Three pages is the generous bound. */
  if (per_fiber > 12 * 1024)
    fail_msg("an idle fiber costs %ld bytes of RSS", per_fiber);
#endif
}

/* ---- the address space runs out: RILL_ENOMEM ---------------------------- */

#ifndef UNDER_SANITIZER
static void noop(void *arg) { (void)arg; }

static long vm_size_kib(void) {
  char line[256];
  long kib = -1;
  FILE *f = fopen("/proc/self/status", "r");
  if (!f)
    return -1;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "VmSize: %ld kB", &kib) == 1)
      break;
  fclose(f);
  return kib;
}
#endif

static void address_space_exhausted(void **state) {
  (void)state;
#ifdef UNDER_SANITIZER
  skip();
#else
  struct rlimit saved, low;
  rill_base *base = tu_base_new();
  long vm_kib = vm_size_kib();
  int started = 0, rc = 0;
  assert_true(vm_kib > 0);
  assert_int_equal(getrlimit(RLIMIT_AS, &saved), 0);
  /* The test's own mappings plus room for a few 8 MiB stacks, and no
   * more: the reservations count against RLIMIT_AS however few pages
   * they commit. */
  low = saved;
  low.rlim_cur = (rlim_t)vm_kib * 1024 + (rlim_t)64 * (rlim_t)MIB;
  if (saved.rlim_cur != RLIM_INFINITY && saved.rlim_cur < low.rlim_cur)
    skip();
  assert_int_equal(setrlimit(RLIMIT_AS, &low), 0);
  while (started < 64 && (rc = rill_go(base, noop, NULL)) == 0)
    started++;
  assert_int_equal(setrlimit(RLIMIT_AS, &saved), 0);
  assert_int_equal(rc, RILL_ENOMEM);
  assert_true(started >= 1);
  assert_int_equal(rill_fiber_count(base), (size_t)started);
  /* The fibers started run and end; the base is fine. */
  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  assert_int_equal(rill_fiber_count(base), 0);
  assert_int_equal(rill_go(base, noop, NULL), 0);
  run_and_free(base);
#endif
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(deep_stacks_with_rill_go, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(deep_pages_released, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(deep_parked_pages_released, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(idle_fibers_are_cheap, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(address_space_exhausted, tu_setup_fds, tu_teardown_fds),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
