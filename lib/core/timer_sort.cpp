// Sorting a due slot's timers by due time, stably (core/timer_wheel.h):
// the array sorts the wheel uses when it orders the current tick.
#include "core/timer_wheel.h"

namespace rill::detail {

// Sorts a[0, n) by due time, stably: insertion sort over runs of 16, then
// merges that double the run length, between a and buf (n entries each).
// Returns whichever of the two holds the result.
wheel_entry *sort_entries(wheel_entry *a, size_t n, wheel_entry *buf) noexcept {
  constexpr size_t run = 16;
  for (size_t lo = 0; lo < n; lo += run) {
    size_t hi = lo + run < n ? lo + run : n;
    for (size_t i = lo + 1; i < hi; i++) {
      wheel_entry e = a[i];
      size_t j = i;
      for (; j > lo && a[j - 1].due_ns > e.due_ns; j--)
        a[j] = a[j - 1];
      a[j] = e;
    }
  }
  for (size_t width = run; width < n; width *= 2) {
    for (size_t lo = 0; lo < n; lo += 2 * width) {
      size_t mid = lo + width < n ? lo + width : n;
      size_t hi = lo + 2 * width < n ? lo + 2 * width : n;
      size_t i = lo, j = mid, k = lo;
      while (i < mid && j < hi)
        buf[k++] = a[j].due_ns < a[i].due_ns ? a[j++] : a[i++];
      while (i < mid)
        buf[k++] = a[i++];
      while (j < hi)
        buf[k++] = a[j++];
    }
    wheel_entry *t = a;
    a = buf;
    buf = t;
  }
  return a;
}

// Sorts a[0, n), timers all due within one tick, by due time, stably: a
// least-significant-digit radix sort on the due time's offset within the
// tick, two digits of half the tick's bits each, through buf (n entries).
// No comparison decides a branch, where a comparison sort mispredicts about
// one branch in two on random due times. Returns whichever of the two
// holds the result.
wheel_entry *radix_sort_tick(wheel_entry *a, size_t n, wheel_entry *buf) noexcept {
  static_assert(timer_wheel::tick_shift % 2 == 0, "two digits of equal width");
  constexpr unsigned digit_bits = timer_wheel::tick_shift / 2;
  constexpr size_t radix = size_t{1} << digit_bits;
  constexpr uint64_t digit_mask = radix - 1;
  uint32_t low[radix] = {}, high[radix] = {};
  for (size_t i = 0; i < n; i++) {
    uint64_t due = a[i].due_ns;
    low[due & digit_mask]++;
    high[(due >> digit_bits) & digit_mask]++;
  }
  uint32_t low_at = 0, high_at = 0;
  for (size_t d = 0; d < radix; d++) {
    uint32_t l = low[d], h = high[d];
    low[d] = low_at;
    high[d] = high_at;
    low_at += l;
    high_at += h;
  }
  for (size_t i = 0; i < n; i++)
    buf[low[a[i].due_ns & digit_mask]++] = a[i];
  for (size_t i = 0; i < n; i++)
    a[high[(buf[i].due_ns >> digit_bits) & digit_mask]++] = buf[i];
  return a;
}

}  // namespace rill::detail
