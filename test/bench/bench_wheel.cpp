// bench_wheel — bench_timers' workload on rill's timing wheel alone, on a
// made-up clock, so that instruction and cache-miss counts (cachegrind,
// callgrind) are the same from one run to the next whatever the machine's
// load: bench_timers runs on the real clock, and how many timers are due
// at each wake-up depends on how fast the phases ran.
//
//   bench_wheel [--count N] [--seed S] [--shuffle]
//
// N timers (rill_timer_new), each armed with a timeout in [0, 1000) ms from
// the same seeded generator as bench_timers and from a clock that moves
// 25 ns per start (a start's clock read), every second one stopped, then the
// clock moved the way the loop moves it (to wheel_next_timeout, at least
// 1 ms at a time, as a loaded loop would wake) until all have fired. Prints
// CPU ms per phase like bench_timers; --shuffle starts (and stops) the
// timers in a random order rather than in the order they were created, so
// that neighbours in a slot are not neighbours in memory, as in a server
// whose connections' deadlines are armed in the order messages arrive; the phases' costs by function come
// from `valgrind --tool=cachegrind --cache-sim=yes` (docs/timers.md).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <utility>
#include <vector>

#include "core/base_impl.h"
#include "core/timer_wheel.h"
#include "rill.h"

namespace {

double cpu_ms() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

uint64_t rng_state;

uint64_t rng_next() {
  uint64_t z = (rng_state += UINT64_C(0x9E3779B97F4A7C15));
  z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
  return z ^ (z >> 31);
}

size_t fired;
void on_fire(rill_timer *, void *) { fired++; }

}  // namespace

int main(int argc, char **argv) {
  size_t n = 1000000;
  uint64_t seed = 42;
  bool shuffle = false;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--count") && i + 1 < argc)
      n = strtoull(argv[++i], nullptr, 10);
    else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
      seed = strtoull(argv[++i], nullptr, 10);
    else if (!strcmp(argv[i], "--shuffle"))
      shuffle = true;
    else {
      fprintf(stderr, "usage: bench_wheel [--count N] [--seed S] [--shuffle]\n");
      return 2;
    }
  }
  std::vector<uint32_t> timeouts(n);
  rng_state = seed;
  for (auto &t : timeouts) t = static_cast<uint32_t>(rng_next() % 1000);
  std::vector<size_t> order(n);
  for (size_t i = 0; i < n; i++) order[i] = i;
  if (shuffle)
    for (size_t i = n - 1; i > 0; i--) std::swap(order[i], order[rng_next() % (i + 1)]);

  rill_base *base;
  if (rill_base_new(nullptr, &base) < 0)
    return 2;
  rill::detail::timer_wheel &w = base->timers;
  std::vector<rill_timer *> timers(n);

  double t0 = cpu_ms();
  for (size_t i = 0; i < n; i++)
    if (rill_timer_new(base, on_fire, nullptr, &timers[i]) < 0)
      return 2;
  double t1 = cpu_ms();
  uint64_t now = uint64_t{1} << 40;
  for (size_t k = 0; k < n; k++) {
    size_t i = order[k];
    now += 25;
    timers[i]->due_ns = now + uint64_t{timeouts[i]} * 1000000;
    rill::detail::wheel_insert(w, timers[i], now);
  }
  double t2 = cpu_ms();
  for (size_t k = 1; k < n; k += 2) rill::detail::wheel_remove(w, timers[order[k]]);
  double t3 = cpu_ms();
  size_t wakeups = 0, out_of_order = 0;
  uint64_t last = 0;
  for (;;) {
    int64_t timeout = rill::detail::wheel_next_timeout(w, now);
    if (timeout < 0)
      break;
    now += static_cast<uint64_t>(timeout) > 1000000 ? static_cast<uint64_t>(timeout) : 1000000;
    wakeups++;
    rill::detail::wheel_take_due(w, now);
    while (rill_timer *t = rill::detail::wheel_pop_due(w, now)) {
      if (t->due_ns < last)
        out_of_order++;
      last = t->due_ns;
      t->cb(t, t->arg);
    }
  }
  double t4 = cpu_ms();
  for (size_t i = 0; i < n; i++) rill_timer_free(timers[i]);
  rill_base_free(base);
  printf("bench=wheel timers=%zu fired=%zu out_of_order=%zu create_ms=%.1f schedule_ms=%.1f"
         " cancel_ms=%.1f run_cpu_ms=%.1f total_cpu_ms=%.1f wakeups=%zu\n",
         n, fired, out_of_order, t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0, wakeups);
  return fired == n / 2 && out_of_order == 0 ? 0 : 1;
}
