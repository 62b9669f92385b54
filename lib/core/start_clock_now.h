#ifndef RILL_CORE_START_CLOCK_NOW_H
#define RILL_CORE_START_CLOCK_NOW_H

// The start clock's reading (core/clock.h), inline for rill_timer_start():
// apart from the few files that read it, nothing needs the TSC intrinsics.
#include "core/clock.h"

#if defined(__x86_64__)
#include <x86intrin.h>
#define RILL_TSC_CLOCK 1
#endif

namespace rill::detail {

inline uint64_t start_clock_now(start_clock &c) noexcept {
#ifdef RILL_TSC_CLOCK
  uint64_t ticks = __rdtsc() - c.anchor_tsc;  // wraps to huge if the TSC went back
  if (ticks < c.max_ticks) {
    uint64_t ns = c.anchor_ns + ((ticks * c.ns_per_tick_q32) >> 32);
    if (ns < c.last_ns)
      ns = c.last_ns;
    c.last_ns = ns;
    return ns;
  }
#endif
  return start_clock_reanchor(c);
}

}  // namespace rill::detail

#endif
