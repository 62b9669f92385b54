#ifndef RILL_CORE_CLOCK_H
#define RILL_CORE_CLOCK_H

#include <time.h>
#include <cstdint>

namespace rill::detail {

// Monotonic time in nanoseconds (CLOCK_MONOTONIC). Inline: the loop reads
// it twice per iteration, and a call of its own cost the echo 10 user
// instructions per round trip (callgrind).
inline uint64_t monotonic_ns() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

constexpr uint64_t ns_per_ms = 1000000;

// The time of a call, for rill_timer_start() (G29: a duration counts from
// the call), cheaper than monotonic_ns(): CLOCK_MONOTONIC read through the
// vDSO costs 25 ns here, the TSC 11 (docs/timers.md, fifth pass).
//
// It extrapolates the last exact reading (its anchor) with the TSC, at a
// rate calibrated against CLOCK_MONOTONIC and rounded up with a margin, and
// reads the clock afresh once the anchor is start_clock_extrapolate_ns old,
// so that every value is:
//   - never behind CLOCK_MONOTONIC at the call (a due time computed from it
//     is never early);
//   - at most about 3.4 µs ahead of it by construction (the anchor's
//     reading spans at most 2 µs; the rate's margin, 1/256 plus at most
//     1/2048 of calibration error, gains 1.15 µs over an extrapolation; NTP
//     slowing the clock by its most, 0.26 µs more), 1.0 to 1.1 µs measured;
//     test_clock holds it to start_clock_max_ahead_ns. A due time is late
//     by no more than that, far less than the wheel's 1 ms tick;
//   - never below an earlier value of the same start_clock.
// The TSC is used only on x86-64 when the CPU reports an invariant TSC
// (constant and nonstop) and the kernel's clocksource is "tsc"; otherwise,
// or when a re-anchoring finds the rate was too low, every read is exact.
// One start_clock per thread (each base has its own); the calibration is
// shared by the process, inherited across fork (the TSC is the machine's).
// Takes the process's first TSC reading for calibration, if not yet taken:
// a start_clock does when it is made (with its base), so that the base's
// timers started a few milliseconds later find the rate calibrated.
void start_clock_calibration_begin() noexcept;

struct start_clock {
  start_clock() noexcept { start_clock_calibration_begin(); }

  uint64_t anchor_tsc = 0;
  uint64_t anchor_ns = 0;
  uint64_t last_ns = 0;
  // Copies of the process-wide calibration, so the fast path reads one
  // cache line: ns = (ticks * ns_per_tick_q32) >> 32, for fewer than
  // max_ticks ticks past the anchor (0: no TSC, every read is exact).
  uint64_t ns_per_tick_q32 = 0;
  uint64_t max_ticks = 0;
};

constexpr uint64_t start_clock_extrapolate_ns = uint64_t{1} << 18;  // 262 µs
constexpr uint64_t start_clock_max_ahead_ns = 8192;

// Reads CLOCK_MONOTONIC, re-anchors c and, the first time enough time has
// passed since the process's first reading, calibrates the TSC's rate.
uint64_t start_clock_reanchor(start_clock &c) noexcept;

// start_clock_now(c), the reading itself, is in core/start_clock_now.h, so
// that only its few callers include the TSC intrinsics.

// CLOCK_MONOTONIC, read again while it is behind the last value c gave
// (by at most about 3.4 µs, 1 µs measured, and only when read that soon
// after): the loop's time while a timer may be due by then (base.cpp's
// update_time), so that a timer due at a value of the start clock is due
// at the next iteration, and still never early.
inline uint64_t start_clock_catch_up(const start_clock &c) noexcept {
  uint64_t ns = monotonic_ns();
  while (ns < c.last_ns)
    ns = monotonic_ns();
  return ns;
}

// Whether this machine lets the start clock use the TSC, and whether it
// does (calibrated, not given up): for tests.
bool start_clock_tsc_supported() noexcept;
bool start_clock_uses_tsc() noexcept;

}  // namespace rill::detail

#endif
