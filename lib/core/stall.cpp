// The stall detector: the measurement (stall.h), the default reporter that
// RILL_STALL_MS turns on, and the public functions.
#include "core/stall.h"

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "core/base_impl.h"
#include "core/clock.h"

using namespace rill::detail;

namespace {

// Every kind has a name; the table follows rill_stall_kind's order.
const char *const kind_names[] = {"?", "fiber", "io", "timer", "signal", "post", "report"};

// One line per stall on stderr, written with a single fprintf so lines of
// several threads' bases do not interleave. The function pointer helps
// with a debugger (`info symbol`) or addr2line when the kind alone does
// not say which callback it was.
void print_stall(rill_base *base, const rill_stall *stall, void *) {
  char who[48];
  if (stall->kind == RILL_STALL_FIBER)
    snprintf(who, sizeof who, "fiber %" PRIu64, stall->fiber_id);
  else
    snprintf(who, sizeof who, "%s callback", rill_stall_kind_name(stall->kind));
  void *fn;
  static_assert(sizeof fn == sizeof stall->fn, "function and data pointers differ in size");
  std::memcpy(&fn, &stall->fn, sizeof fn);
  fprintf(stderr, "rill: stall: %s held base %p for %" PRIu64 ".%03" PRIu64 " ms (fn %p, arg %p)\n", who,
          static_cast<void *>(base), stall->duration_ns / ns_per_ms, stall->duration_ns % ns_per_ms / 1000, fn,
          stall->arg);
}

// RILL_STALL_MS: a whole number of milliseconds, at least 1. Anything else
// (unset, empty, 0, junk, a number too large for nanoseconds) leaves the
// detector off.
uint64_t threshold_from_env() {
  const char *text = std::getenv("RILL_STALL_MS");
  if (!text || *text < '0' || *text > '9')
    return 0;
  char *end = nullptr;
  unsigned long long ms = std::strtoull(text, &end, 10);
  if (*end != '\0' || ms == 0 || ms > UINT64_MAX / ns_per_ms)
    return 0;
  return static_cast<uint64_t>(ms) * ns_per_ms;
}

}  // namespace

namespace rill::detail {

stall_detector *stall_of(rill_base *base) noexcept { return &base->stall; }

void stall_slice_begin(stall_detector &d) noexcept { d.slice_start_ns = monotonic_ns(); }

void stall_slice_end(rill_base *base, stall_detector &d, const stall_source &what) {
  uint64_t now = monotonic_ns();
  uint64_t took = now - d.slice_start_ns;
  d.slice_start_ns = now;
  if (took <= d.threshold_ns)
    return;
  rill_stall stall{};
  stall.kind = what.kind;
  stall.duration_ns = took;
  stall.started_ns = now - took;
  stall.fiber_id = what.fiber_id;
  stall.fn = what.fn;
  stall.arg = what.arg;
  d.report(base, &stall, d.report_arg);
  // The report's own time is nobody's stall.
  d.slice_start_ns = monotonic_ns();
}

void stall_init_from_env(stall_detector &d) noexcept {
  if (uint64_t threshold = threshold_from_env()) {
    d.report = print_stall;
    d.report_arg = nullptr;
    d.threshold_ns = threshold;
    d.slice_start_ns = monotonic_ns();
  }
}

}  // namespace rill::detail

extern "C" {

int rill_base_stall_detector(rill_base *base, uint64_t threshold_ns, rill_stall_fn cb, void *arg) {
  if (!base)
    return RILL_EINVAL;
  stall_detector &d = base->stall;
  if (threshold_ns == 0) {
    d = stall_detector{};
    return 0;
  }
  d.report = cb ? cb : print_stall;
  d.report_arg = cb ? arg : nullptr;
  // A slice already under way (this call made from a callback or fiber)
  // counts from now, not from whenever the detector last ran.
  d.slice_start_ns = monotonic_ns();
  d.threshold_ns = threshold_ns;
  return 0;
}

const char *rill_stall_kind_name(rill_stall_kind kind) {
  auto i = static_cast<size_t>(kind);
  return i < sizeof kind_names / sizeof kind_names[0] ? kind_names[i] : "?";
}

}  // extern "C"
