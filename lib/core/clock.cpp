// The clocks: CLOCK_MONOTONIC, and the TSC extrapolation of it that
// rill_timer_start() reads (clock.h says what it guarantees; docs/timers.md,
// fifth pass, what it saves).
#include "core/start_clock_now.h"

#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstring>

#ifdef RILL_TSC_CLOCK
#include <cpuid.h>
#endif

namespace rill::detail {

namespace {

uint64_t keep_rising(start_clock &c, uint64_t ns) noexcept {
  if (ns < c.last_ns)
    ns = c.last_ns;
  c.last_ns = ns;
  return ns;
}

#ifdef RILL_TSC_CLOCK

// The calibration is measured over at least this long, so that the few
// hundred nanoseconds a reading of both clocks takes weigh little.
constexpr uint64_t calibrate_after_ns = uint64_t{1} << 23;  // 8.4 ms
// A reading of both clocks whose two TSC reads lie further apart than this
// (the thread was preempted in between) is not used as an anchor.
constexpr uint64_t reading_window_ns = 2000;

// CLOCK_MONOTONIC and the TSC on both sides of it: the clock's value is its
// value at some TSC count in [tsc_before, tsc_after].
struct paired_reading {
  uint64_t tsc_before;
  uint64_t ns;
  uint64_t tsc_after;
};

paired_reading read_both() noexcept {
  paired_reading r;
  r.tsc_before = __rdtsc();
  r.ns = monotonic_ns();
  r.tsc_after = __rdtsc();
  return r;
}

bool invariant_tsc() noexcept {
  unsigned eax, ebx, ecx, edx;
  if (!__get_cpuid(0x80000000u, &eax, &ebx, &ecx, &edx) || eax < 0x80000007u)
    return false;
  __get_cpuid(0x80000007u, &eax, &ebx, &ecx, &edx);
  return (edx & (1u << 8)) != 0;  // constant rate, ticking in deep C-states too
}

// The kernel itself trusts the TSC (it would switch away from it if it saw
// the TSCs of two CPUs disagree, or the TSC stop).
bool kernel_uses_tsc() noexcept {
  int fd = open("/sys/devices/system/clocksource/clocksource0/current_clocksource",
                O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return false;
  char name[16] = {};
  ssize_t n = read(fd, name, sizeof name - 1);
  close(fd);
  return n == 4 && std::memcmp(name, "tsc\n", 4) == 0;
}

struct first_reading {
  bool usable = false;
  paired_reading reading{};
};

// The process's first reading, the start of the calibration interval; the
// narrowest of a few tries.
first_reading take_first_reading() noexcept {
  first_reading f;
  if (!invariant_tsc() || !kernel_uses_tsc())
    return f;
  f.reading = read_both();
  for (int i = 0; i < 8; i++) {
    paired_reading r = read_both();
    if (r.tsc_after - r.tsc_before < f.reading.tsc_after - f.reading.tsc_before)
      f.reading = r;
  }
  f.usable = true;
  return f;
}

// Taken once per process by whichever thread comes first (no
// function-local static: core/cxx_runtime.h); a thread that finds it being
// taken reads the clock exactly meanwhile, as does a child forked just then.
enum first_state : int { not_taken, being_taken, taken };
std::atomic<int> first_reading_state{not_taken};
first_reading the_first_reading;
const first_reading no_reading;

const first_reading &first() noexcept {
  int state = first_reading_state.load(std::memory_order_acquire);
  if (state == taken)
    return the_first_reading;
  if (state == not_taken &&
      first_reading_state.compare_exchange_strong(state, being_taken, std::memory_order_acquire)) {
    the_first_reading = take_first_reading();
    first_reading_state.store(taken, std::memory_order_release);
    return the_first_reading;
  }
  return no_reading;
}

// Nanoseconds per TSC tick, times 2^32, an upper bound of the real rate
// (0: not calibrated yet). Written once by whichever thread calibrates.
std::atomic<uint64_t> calibrated_rate{0};
// Set for good when CLOCK_MONOTONIC was seen to run faster than the rate.
std::atomic<bool> tsc_given_up{false};

// The rate from the first reading to r, rounded up: the clock advanced
// r.ns - first.ns while the TSC advanced at least r.tsc_before -
// first.tsc_after. Then 1/256 more (3,900 ppm), room for NTP to speed the
// clock up by its maximum (500 ppm of frequency plus 500 of slewing) and
// more. 0 if too early or if the result makes no sense.
uint64_t calibrate(const paired_reading &r) noexcept {
  const paired_reading &f = first().reading;
  if (r.ns - f.ns < calibrate_after_ns || r.tsc_before <= f.tsc_after)
    return 0;
  // Either reading widened by a preemption would skew the rate: each must
  // span at most 1/4096 of the interval (244 ppm).
  uint64_t interval = r.tsc_before - f.tsc_after;
  if (r.tsc_after - r.tsc_before > interval / 4096 || f.tsc_after - f.tsc_before > interval / 4096)
    return 0;
  unsigned __int128 scaled = static_cast<unsigned __int128>(r.ns - f.ns) << 32;
  uint64_t rate = static_cast<uint64_t>(scaled / interval) + 1;
  rate += rate >> 8;
  // A TSC slower than 100 MHz or faster than 100 GHz is not one to trust.
  if (rate > (uint64_t{10} << 32) || rate < (uint64_t{1} << 32) / 100) {
    tsc_given_up.store(true, std::memory_order_relaxed);
    return 0;
  }
  uint64_t expected = 0;
  if (!calibrated_rate.compare_exchange_strong(expected, rate, std::memory_order_relaxed))
    return expected;  // another thread was first: everyone uses one rate
  return rate;
}

#endif  // RILL_TSC_CLOCK

}  // namespace

void start_clock_calibration_begin() noexcept {
#ifdef RILL_TSC_CLOCK
  (void)first();
#endif
}

bool start_clock_tsc_supported() noexcept {
#ifdef RILL_TSC_CLOCK
  return first().usable;
#else
  return false;
#endif
}

bool start_clock_uses_tsc() noexcept {
#ifdef RILL_TSC_CLOCK
  return calibrated_rate.load(std::memory_order_relaxed) != 0 &&
         !tsc_given_up.load(std::memory_order_relaxed);
#else
  return false;
#endif
}

uint64_t start_clock_reanchor(start_clock &c) noexcept {
#ifdef RILL_TSC_CLOCK
  if (first().usable && !tsc_given_up.load(std::memory_order_relaxed)) {
    paired_reading r = read_both();
    uint64_t rate = c.ns_per_tick_q32;
    if (rate == 0) {
      rate = calibrated_rate.load(std::memory_order_relaxed);
      if (rate == 0)
        rate = calibrate(r);
    } else if (r.tsc_after > c.anchor_tsc) {
      // The extrapolation must have kept up with the clock all along: at
      // tsc_after the clock had read r.ns already.
      unsigned __int128 ticks = r.tsc_after - c.anchor_tsc;
      if (c.anchor_ns + static_cast<uint64_t>((ticks * rate) >> 32) < r.ns) {
        tsc_given_up.store(true, std::memory_order_relaxed);
        rate = 0;
      }
    }
    c.ns_per_tick_q32 = rate;
    c.max_ticks = rate ? (start_clock_extrapolate_ns << 32) / rate : 0;
    uint64_t window_ticks = rate ? (reading_window_ns << 32) / rate : 0;
    // The clock's value is at least its value at tsc_before: anchored
    // there, the extrapolation stays ahead of the clock.
    if (rate && r.tsc_after - r.tsc_before <= window_ticks) {
      c.anchor_tsc = r.tsc_before;
      c.anchor_ns = r.ns;
    } else {
      c.max_ticks = 0;  // read exactly until a narrow reading anchors it
    }
    return keep_rising(c, r.ns);
  }
  c.max_ticks = 0;
#endif
  return keep_rising(c, monotonic_ns());
}

}  // namespace rill::detail
