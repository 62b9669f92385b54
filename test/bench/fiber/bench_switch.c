/* bench_switch — what a fiber switch costs in rill's blocking facade.
 *
 *   bench_switch [--n N] [--reps R]
 *
 * Every switch in the facade goes through the loop: a fiber that yields or
 * parks switches back to the loop's stack, and a woken fiber is run by the
 * scheduler's 0 ms "kick" timer in a later loop iteration (one epoll_wait
 * with a zero timeout, the timer heap, then the switch into the fiber). The
 * raw context switch (lib/fiber/switch_*.S) is not reachable through the
 * public API, so it cannot be timed alone here; what is measured:
 *
 *   yield_2     two fibers taking turns with rill_yield(): ns per yield
 *               (the seed's ping-pong; one loop iteration serves both);
 *   waitgroup   two fibers handing a turn over with wait groups: ns per
 *               hand-off (park + unpark + loop iteration + switch);
 *   timer_loop  no fiber: a 0 ms timer re-armed from its own callback: ns
 *               per loop iteration, the loop's share of the numbers above;
 *   yield_1000  1000 fibers yielding in turn: one loop iteration serves
 *               1000 yields, so this approaches the cost of the switch pair
 *               (fiber -> loop -> next fiber) plus the ready queue: the
 *               closest to a raw switch the public API can show;
 *   spawn       N/10 fibers started 64 at a time by a fiber that yields
 *               between batches, each running to its end: ns per start and
 *               exit (a pooled 8 MiB stack each).
 *
 * Each is run --reps times (default 5) and the median printed, as
 * "name_ns=value" lines for run_fiber.sh, after a human-readable line. */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rill.h>

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static long n_iter = 10000000;

/* ---- yield ----------------------------------------------------------- */

static long yields_each;

static void yielder(void *arg) {
  long i;
  (void)arg;
  for (i = 0; i < yields_each; i++)
    rill_yield();
}

/* ns per rill_yield() call with `fibers` fibers yielding `total` times in all. */
static double run_yield(int fibers, long total) {
  rill_base *base;
  uint64_t t0, t1;
  int i;
  if (rill_base_new(NULL, &base) < 0)
    exit(1);
  yields_each = total / fibers;
  for (i = 0; i < fibers; i++)
    if (rill_go_stack(base, yielder, NULL, 16 * 1024) < 0)
      exit(1);
  t0 = now_ns();
  rill_base_run(base, RILL_RUN_DEFAULT);
  t1 = now_ns();
  rill_base_free(base);
  return (double)(t1 - t0) / (double)(yields_each * fibers);
}

/* ---- wait-group ping-pong ---------------------------------------------- */

static rill_waitgroup *wg_a, *wg_b;

/* A: hand the turn to B, wait for it back. */
static void pinger(void *arg) {
  long i;
  (void)arg;
  for (i = 0; i < n_iter / 2; i++) {
    rill_waitgroup_done(wg_b);
    rill_waitgroup_wait(wg_a);
    rill_waitgroup_add(wg_a, 1);
  }
}

/* B: wait for the turn, take the token back, hand the turn to A. */
static void ponger(void *arg) {
  long i;
  (void)arg;
  for (i = 0; i < n_iter / 2; i++) {
    rill_waitgroup_wait(wg_b);
    rill_waitgroup_add(wg_b, 1);
    rill_waitgroup_done(wg_a);
  }
}

static double run_waitgroup(void) {
  rill_base *base;
  uint64_t t0, t1;
  if (rill_base_new(NULL, &base) < 0 || rill_waitgroup_new(&wg_a) < 0 || rill_waitgroup_new(&wg_b) < 0)
    exit(1);
  rill_waitgroup_add(wg_a, 1);
  rill_waitgroup_add(wg_b, 1);
  rill_go_stack(base, pinger, NULL, 16 * 1024);
  rill_go_stack(base, ponger, NULL, 16 * 1024);
  t0 = now_ns();
  rill_base_run(base, RILL_RUN_DEFAULT);
  t1 = now_ns();
  rill_waitgroup_free(wg_a);
  rill_waitgroup_free(wg_b);
  rill_base_free(base);
  return (double)(t1 - t0) / (double)(n_iter / 2 * 2); /* two hand-offs per round */
}

/* ---- the loop alone ---------------------------------------------------- */

static long timer_left;

static void on_timer(rill_timer *t, void *arg) {
  (void)arg;
  if (--timer_left > 0)
    rill_timer_start(t, 0, 0);
}

static double run_timer_loop(long n) {
  rill_base *base;
  rill_timer *t;
  uint64_t t0, t1;
  if (rill_base_new(NULL, &base) < 0 || rill_timer_new(base, on_timer, NULL, &t) < 0)
    exit(1);
  timer_left = n;
  rill_timer_start(t, 0, 0);
  t0 = now_ns();
  rill_base_run(base, RILL_RUN_DEFAULT);
  t1 = now_ns();
  rill_timer_free(t);
  rill_base_free(base);
  return (double)(t1 - t0) / (double)n;
}

/* ---- spawn and exit ----------------------------------------------------- */

static long spawn_total, spawn_done;

static void spawned(void *arg) {
  (void)arg;
  spawn_done++;
}

static void spawner(void *arg) {
  long i;
  (void)arg;
  for (i = 0; i < spawn_total; i++) {
    if (rill_go(rill_fiber_base(), spawned, NULL) < 0)
      exit(1);
    if (i % 64 == 63)
      rill_yield();
  }
}

static double run_spawn(long n) {
  rill_base *base;
  uint64_t t0, t1;
  if (rill_base_new(NULL, &base) < 0)
    exit(1);
  spawn_total = n;
  spawn_done = 0;
  t0 = now_ns();
  if (rill_go(base, spawner, NULL) < 0)
    exit(1);
  rill_base_run(base, RILL_RUN_DEFAULT);
  t1 = now_ns();
  rill_base_free(base);
  if (spawn_done != n)
    exit(1);
  return (double)(t1 - t0) / (double)n;
}

/* ---- driver ------------------------------------------------------------ */

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

#define MAX_REPS 32

int main(int argc, char **argv) {
  int reps = 5, i, k;
  const char *names[] = {"yield_2", "waitgroup", "timer_loop", "yield_1000", "spawn"};
  const char *what[] = {"2 fibers, rill_yield ping-pong: ns per yield",
                        "2 fibers, wait-group ping-pong: ns per hand-off",
                        "no fiber, 0 ms timer re-armed: ns per loop iteration",
                        "1000 fibers yielding in turn: ns per yield (~ switch pair + ready queue)",
                        "fibers started 64 at a time, each ending: ns per start and exit"};
  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--n") == 0 && i + 1 < argc)
      n_iter = atol(argv[++i]);
    else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
      reps = atoi(argv[++i]);
    else {
      fprintf(stderr, "usage: %s [--n N] [--reps R]\n", argv[0]);
      return 2;
    }
  }
  if (n_iter < 2000 || reps < 1 || reps > MAX_REPS) {
    fprintf(stderr, "bench_switch: --n must be >= 2000, --reps 1..%d\n", MAX_REPS);
    return 2;
  }
  printf("# bench_switch: N=%ld per run, median of %d runs\n", n_iter, reps);
  for (k = 0; k < 5; k++) {
    double v[MAX_REPS];
    for (i = 0; i < reps; i++) {
      switch (k) {
        case 0: v[i] = run_yield(2, n_iter); break;
        case 1: v[i] = run_waitgroup(); break;
        case 2: v[i] = run_timer_loop(n_iter / 2); break;
        case 3: v[i] = run_yield(1000, n_iter); break;
        default: v[i] = run_spawn(n_iter / 10); break;
      }
    }
    qsort(v, (size_t)reps, sizeof v[0], cmp_double);
    printf("# %-72s %8.1f (min %.1f, max %.1f)\n", what[k], v[reps / 2], v[0], v[reps - 1]);
    printf("%s_ns=%.1f\n", names[k], v[reps / 2]);
    fflush(stdout);
  }
  return 0;
}
