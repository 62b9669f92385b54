/* bench_timers — one million one-shot timers, rill against libev.
 *
 *   bench_timers --impl rill|libev [--count N] [--seed S]
 *
 * Phases, each timed in process CPU time (CLOCK_PROCESS_CPUTIME_ID):
 *   create    rill: one rill_timer_new() per timer; libev: one array of
 *             ev_timer and ev_timer_init() on each (libev watchers are
 *             caller-owned memory, so this is the closest equivalent);
 *   schedule  start every timer with a pseudo-random timeout in [0, 1000) ms
 *             drawn from the same seeded generator for both libraries;
 *   cancel    stop every second timer (odd indices);
 *   run       run the loop until the remaining half has fired (about one
 *             second of wall time by nature; its CPU time is what counts).
 * total_cpu_ms is create + schedule + cancel + run; the final free is
 * reported apart. The callback count must be exactly count/2, otherwise the
 * program exits with status 1. It also counts callbacks that fire out of due
 * timeout order (rill promises due order, and start order among equal due
 * times, but its due time counts from the real time of each start, so a
 * timer started a millisecond later with a timeout a millisecond shorter
 * may rightly fire after; libev starts every timer from its cached loop
 * time and makes no order promise within one iteration): out_of_order=.
 * wakeups= counts the loop's iterations in the run phase: rill sleeps until
 * the next due time to the nanosecond, libev's epoll backend in whole
 * milliseconds, so libev wakes less often (docs/timers.md).
 *
 * Prints one line of key=value pairs on stdout. */
#define _GNU_SOURCE 1

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <ev.h>

#include "rill.h"

/* ---- measuring ---------------------------------------------------------- */

static double cpu_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static double wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static long peak_rss_kb(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss; /* kilobytes on Linux */
}

/* splitmix64: small, fast, and identical for both implementations. */
static uint64_t rng_state;

static uint64_t rng_next(void) {
  uint64_t z = (rng_state += UINT64_C(0x9E3779B97F4A7C15));
  z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
  return z ^ (z >> 31);
}

/* ---- what both implementations share ------------------------------------ */

struct result {
  double create_ms, schedule_ms, cancel_ms, run_cpu_ms, run_wall_ms, free_ms;
  unsigned long long wakeups; /* loop iterations in the run phase */
  const char *backend;
};

static size_t n_timers = 1000000;
static uint64_t seed = 42;
static uint32_t *timeouts; /* ms, per timer index */

static size_t fired;
static size_t out_of_order;
static uint32_t last_timeout; /* due time of the last callback, relative */
static size_t last_index;

/* Timeout order, and start (= index) order among equal timeouts. */
static void note_fired(size_t index) {
  uint32_t t = timeouts[index];
  if (fired > 0 && (t < last_timeout || (t == last_timeout && index < last_index)))
    out_of_order++;
  last_timeout = t;
  last_index = index;
  fired++;
}

static void die(const char *what, int err) {
  fprintf(stderr, "bench_timers: %s: %s\n", what, err < 0 ? rill_strerror(err) : "failed");
  exit(2);
}

/* ---- rill --------------------------------------------------------------- */

static void rill_fire(rill_timer *t, void *arg) {
  (void)t;
  note_fired((size_t)(uintptr_t)arg);
}

static void run_rill(struct result *r) {
  rill_base *base;
  int err = rill_base_new(NULL, &base);
  if (err < 0) die("rill_base_new", err);
  r->backend = rill_base_backend(base);

  double t0 = cpu_ms();
  rill_timer **timers = malloc(n_timers * sizeof *timers);
  if (!timers) die("malloc", 0);
  for (size_t i = 0; i < n_timers; i++) {
    err = rill_timer_new(base, rill_fire, (void *)(uintptr_t)i, &timers[i]);
    if (err < 0) die("rill_timer_new", err);
  }
  double t1 = cpu_ms();
  for (size_t i = 0; i < n_timers; i++) {
    err = rill_timer_start(timers[i], timeouts[i] * RILL_MSEC, 0);
    if (err < 0) die("rill_timer_start", err);
  }
  double t2 = cpu_ms();
  for (size_t i = 1; i < n_timers; i += 2) {
    err = rill_timer_stop(timers[i]);
    if (err < 0) die("rill_timer_stop", err);
  }
  rill_base_stats before, after;
  rill_base_stats_get(base, &before);
  double t3 = cpu_ms();
  double w3 = wall_ms();
  err = rill_base_run(base, RILL_RUN_DEFAULT);
  if (err < 0) die("rill_base_run", err);
  double t4 = cpu_ms();
  r->run_wall_ms = wall_ms() - w3;
  rill_base_stats_get(base, &after);
  r->wakeups = (unsigned long long)(after.iterations - before.iterations);
  for (size_t i = 0; i < n_timers; i++) rill_timer_free(timers[i]);
  free(timers);
  err = rill_base_free(base);
  if (err < 0) die("rill_base_free", err);
  double t5 = cpu_ms();

  r->create_ms = t1 - t0;
  r->schedule_ms = t2 - t1;
  r->cancel_ms = t3 - t2;
  r->run_cpu_ms = t4 - t3;
  r->free_ms = t5 - t4;
}

/* ---- libev -------------------------------------------------------------- */

struct ev_entry {
  ev_timer w;
  size_t index;
};

static void ev_fire(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)loop;
  (void)revents;
  note_fired(((struct ev_entry *)w)->index);
}

static void run_libev(struct result *r) {
  struct ev_loop *loop = ev_loop_new(EVBACKEND_EPOLL | EVFLAG_NOENV);
  if (!loop) die("ev_loop_new", 0);
  r->backend = "epoll";

  double t0 = cpu_ms();
  struct ev_entry *timers = malloc(n_timers * sizeof *timers);
  if (!timers) die("malloc", 0);
  for (size_t i = 0; i < n_timers; i++) {
    ev_timer_init(&timers[i].w, ev_fire, 0., 0.);
    timers[i].index = i;
  }
  ev_now_update(loop);
  double t1 = cpu_ms();
  for (size_t i = 0; i < n_timers; i++) {
    ev_timer_set(&timers[i].w, (double)timeouts[i] / 1e3, 0.);
    ev_timer_start(loop, &timers[i].w);
  }
  double t2 = cpu_ms();
  for (size_t i = 1; i < n_timers; i += 2) ev_timer_stop(loop, &timers[i].w);
  unsigned before = ev_iteration(loop);
  double t3 = cpu_ms();
  double w3 = wall_ms();
  ev_run(loop, 0);
  double t4 = cpu_ms();
  r->run_wall_ms = wall_ms() - w3;
  r->wakeups = ev_iteration(loop) - before;
  free(timers);
  ev_loop_destroy(loop);
  double t5 = cpu_ms();

  r->create_ms = t1 - t0;
  r->schedule_ms = t2 - t1;
  r->cancel_ms = t3 - t2;
  r->run_cpu_ms = t4 - t3;
  r->free_ms = t5 - t4;
}

/* ---- main --------------------------------------------------------------- */

static void usage(void) {
  fprintf(stderr, "usage: bench_timers --impl rill|libev [--count N] [--seed S]\n");
  exit(2);
}

int main(int argc, char **argv) {
  const char *impl = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--impl") && i + 1 < argc)
      impl = argv[++i];
    else if (!strcmp(argv[i], "--count") && i + 1 < argc)
      n_timers = strtoull(argv[++i], NULL, 10);
    else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
      seed = strtoull(argv[++i], NULL, 10);
    else
      usage();
  }
  if (!impl || n_timers == 0 || n_timers % 2) usage();

  timeouts = malloc(n_timers * sizeof *timeouts);
  if (!timeouts) die("malloc", 0);
  rng_state = seed;
  for (size_t i = 0; i < n_timers; i++) timeouts[i] = (uint32_t)(rng_next() % 1000);

  struct result r;
  memset(&r, 0, sizeof r);
  if (!strcmp(impl, "rill"))
    run_rill(&r);
  else if (!strcmp(impl, "libev"))
    run_libev(&r);
  else
    usage();

  size_t expected = n_timers / 2;
  printf("bench=timers impl=%s backend=%s timers=%zu fired=%zu out_of_order=%zu"
         " create_ms=%.1f schedule_ms=%.1f cancel_ms=%.1f run_cpu_ms=%.1f"
         " run_wall_ms=%.1f total_cpu_ms=%.1f free_ms=%.1f peak_rss_kb=%ld wakeups=%llu\n",
         impl, r.backend, n_timers, fired, out_of_order, r.create_ms, r.schedule_ms,
         r.cancel_ms, r.run_cpu_ms, r.run_wall_ms,
         r.create_ms + r.schedule_ms + r.cancel_ms + r.run_cpu_ms, r.free_ms, peak_rss_kb(),
         r.wakeups);
  free(timeouts);
  if (fired != expected) {
    fprintf(stderr, "bench_timers: %s fired %zu callbacks, expected %zu\n", impl, fired,
            expected);
    return 1;
  }
  return 0;
}
