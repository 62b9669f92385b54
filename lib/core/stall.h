// The stall detector (rill_base_stall_detector): reports a callback or a
// fiber that held the loop longer than a threshold.
//
// C cannot preempt a fiber or a callback that computes for a long time, so
// the next best thing is to say who did it. Each dispatch (an io, timer,
// signal or posted callback, a queued report, a fiber's run between two
// parks) is a slice: the loop reads the clock before and after it and
// reports slices longer than the threshold. Off, the cost is one
// predictable branch per dispatch: the clock is read only while the
// detector is on.
//
// Slices nest: the base's wake-up watcher runs the posted functions, the
// fiber scheduler's timer runs the fibers. The end of a slice restarts the
// measurement, so the enclosing dispatch is charged only with the time
// that follows its inner slices, and a 1 s fiber is reported once, as the
// fiber, not a second time as the timer that switched to it.
#ifndef RILL_CORE_STALL_H
#define RILL_CORE_STALL_H

#include <cstdint>

#include "rill/base.h"

namespace rill::detail {

struct stall_detector {
  uint64_t threshold_ns = 0;  // 0: off
  uint64_t slice_start_ns = 0;
  rill_stall_fn report = nullptr;
  void *report_arg = nullptr;
};

// What ran in a slice, for the report.
struct stall_source {
  rill_stall_kind kind;
  void (*fn)(void);
  void *arg;
  uint64_t fiber_id;
};

// Casts any callback to the report's generic function pointer type.
template <typename Fn>
void (*stall_fn(Fn fn))(void) {
  return reinterpret_cast<void (*)(void)>(fn);
}

// The detector of `base`, for lib/fiber, which sees no rill_base internals
// and keeps the pointer for its own checks.
stall_detector *stall_of(rill_base *base) noexcept;

// Starts a slice. Call only while the detector is on.
void stall_slice_begin(stall_detector &d) noexcept;

// Ends a slice: reports it when it was longer than the threshold, then
// starts the next measurement (for the enclosing dispatch). Call only while
// the detector is on. Not noexcept: the report is a user callback.
void stall_slice_end(rill_base *base, stall_detector &d, const stall_source &what);

// The environment's RILL_STALL_MS, read by rill_base_new(): turns the
// default reporter on for a new base.
void stall_init_from_env(stall_detector &d) noexcept;

}  // namespace rill::detail

// The hooks the dispatch loops use: a branch on the threshold, and the
// clock only behind it. `what` is evaluated only when the detector is on.
#define RILL_STALL_BEGIN(base)                                \
  do {                                                        \
    if ((base)->stall.threshold_ns)                           \
      ::rill::detail::stall_slice_begin((base)->stall);       \
  } while (0)

#define RILL_STALL_END(base, ...)                                                \
  do {                                                                           \
    if ((base)->stall.threshold_ns)                                              \
      ::rill::detail::stall_slice_end((base), (base)->stall,                     \
                                      ::rill::detail::stall_source{__VA_ARGS__}); \
  } while (0)

#endif
