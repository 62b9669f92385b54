// Where armed timers wait: a timing wheel in front of the timers of the
// ticks it has reached, kept in exact order. docs/timers.md has the
// measurements behind the choice.
//
// Time is cut into ticks of 2^tick_shift ns (about 1 ms), and ticks into
// blocks of 2^block_bits ticks (about 1.07 s). Let E be the wheel's current
// tick (it only moves forward) and U = block(E) + 1, the next block.
//  - The ring: one slot per tick for the current block and the next, 2048
//    slots indexed by tick modulo 2048, so any timer due within the next
//    1.07 s (at least) goes straight to the slot of its tick.
//  - The upper levels: six levels of 64 slots over blocks, placed against U
//    the way a hierarchical wheel places ticks: a timer due in block b > U
//    goes to the level of the highest 6-bit group in which b and U differ,
//    into the slot that group of b names. When U reaches a slot (that is,
//    when E enters the block before it), the slot's timers move down: to
//    the ring if due in block U, to a lower level otherwise (a cascade).
// Each slot is an intrusive list through the timer's `link`, and each level
// keeps a bitmap of its non-empty slots, so arming, stopping and restarting
// are O(1) and never allocate, and the next slot to come due is found with a
// few bit scans: the loop never wakes per tick.
//
// Order. Lists are only appended to and cascades move timers in list order.
// As E only moves forward, every timer due at tick T placed on an upper
// level was started before every timer placed in T's ring slot (placing
// there needs block(T) <= U, after the cascade that brought the others
// down). So each ring slot lists its timers in start order, and when E
// reaches the slot, a stable sort by due time puts them on `ready` in exact
// (due time, start) order; the sort and the firing run on an array of
// (due, timer) pairs, `ready`, rather than on the list (docs/timers.md says
// why). The next ring slots up to collect_ahead_ticks past the clock are
// gathered with it, their lists walked side by side so that their cache
// misses overlap, and E moves to the last of them: E may run a few ticks
// ahead of the clock. A timer armed for a tick E has already reached goes
// to `near`, in order. The loop fires what is due to the nanosecond from the fronts of
// `ready` and `near`, and sleeps until the earlier front or, both empty,
// until the next ring slot or cascade.
//
// Waking. A timer armed for at least coarse_min_ns (67 ms) is *coarse*: the
// loop may sleep past its due time to the end of its tick (at most 1.05 ms,
// 1.6 % of its duration), so that every timer of a tick fires in one wake-up
// instead of one wake-up per distinct due time. While any shorter timer is
// armed, the loop wakes to the nanosecond as before. Either way a timer
// never fires before its due time, and the firing order is unchanged.
#ifndef RILL_CORE_TIMER_WHEEL_H
#define RILL_CORE_TIMER_WHEEL_H

#include <cstddef>
#include <cstdint>

#include "core/list.h"
#include "core/vec.h"

struct rill_timer;

namespace rill::detail {

// A timer and its due time side by side, for sorting and cascading a slot
// in contiguous memory.
struct wheel_entry {
  uint64_t due_ns;
  rill_timer *timer;
};

// timer_sort.cpp. Each sorts a[0, n) by due time, stably, using buf (n
// entries), and returns whichever of the two holds the result.
wheel_entry *sort_entries(wheel_entry *a, size_t n, wheel_entry *buf) noexcept;
// For timers all due within one tick: a radix sort, no comparisons.
wheel_entry *radix_sort_tick(wheel_entry *a, size_t n, wheel_entry *buf) noexcept;

struct timer_wheel {
  static constexpr unsigned tick_shift = 20;  // a tick: 1.048576 ms
  static constexpr unsigned block_bits = 10;  // a block: 1024 ticks
  static constexpr unsigned ring_slots = 2u << block_bits;
  static constexpr unsigned ring_words = ring_slots / 64;
  static constexpr unsigned level_bits = 6;
  static constexpr unsigned level_slots = 1u << level_bits;
  // Due times stay under 2^63 ns (rill_timer_start caps durations), so
  // blocks stay under 2^33: six 6-bit levels cover them.
  static constexpr unsigned upper_levels = 6;
  static constexpr unsigned slot_count = ring_slots + upper_levels * level_slots;

  // Where a timer is, in its handle's timer_place: a slot number (the ring
  // first, then the upper levels, 64 slots each), or one of these.
  static constexpr uint32_t place_near = slot_count;
  static constexpr uint32_t place_expiring = slot_count + 1;
  static constexpr uint32_t place_ready = slot_count + 2;  // + index in `ready`
  static constexpr uint32_t place_none = UINT32_MAX;
  // Timers armed for at least this long are coarse (above); 64 ticks.
  static constexpr uint64_t coarse_min_ns = uint64_t{64} << tick_shift;
  // When the loop reaches a ring slot, the next ring slots up to this many
  // ticks past the clock are gathered with it (up to collect_group_max
  // slots), so that their list walks overlap their cache misses; E then
  // runs up to this far ahead of the clock.
  static constexpr uint64_t collect_ahead_ticks = 3;
  static constexpr unsigned collect_group_max = 4;

  uint64_t tick = 0;                       // E
  uint64_t ring_summary = 0;               // bit w: bits[w] != 0, w < ring_words
  uint64_t bits[slot_count / 64] = {};     // bit s % 64 of bits[s / 64]: slot s not empty
  size_t in_slots = 0;                     // timers in slots (not near, not expiring)
  size_t precise = 0;                      // armed timers that are not coarse
  // No slot needs emptying before this tick (a lower bound: exact after
  // each advance, lowered by placing), so most runs of the loop's timer
  // phase skip the search for the next slot.
  uint64_t next_slot_tick = 0;
  // wheel_next_timeout's search for the next ring slot and cascade, kept
  // until a slot fills or empties (E alone does not change the answer
  // until it reaches it): the loop asks once per iteration.
  mutable bool found_valid = false;
  mutable uint64_t found_ring = 0, found_cascade = 0;
  // When the loop must next look at the wheel (the base's clock): set by
  // wheel_next_timeout's caller, lowered by every insert, so the loop asks
  // the wheel once per iteration, before its wait.
  uint64_t check_ns = UINT64_MAX;
  // Reached ring slots, sorted: [ready_head, size) waits to fire, in
  // (due, start) order; a stopped timer leaves a null behind, and
  // ready[ready_head] is never one.
  vec<wheel_entry> ready;
  size_t ready_head = 0;
  list near;      // armed after E reached their tick, in (due, start) order
  list expiring;  // from `near`, taken out to fire in this run, in order
  // slot_count lists (38 KB), allocated with the base's first timer
  // (wheel_prepare), so a base that never has one does without; in the
  // same block, the number of timers in each ring slot (8 KB), so that the
  // walks of a gather know where to write.
  list *slot = nullptr;
  uint32_t *ring_count = nullptr;
  // Room to gather the largest slot seen, and to merge it; they only grow.
  vec<wheel_entry> gathered;
  vec<wheel_entry> spare;

  timer_wheel() noexcept = default;
  timer_wheel(const timer_wheel &) = delete;
  timer_wheel &operator=(const timer_wheel &) = delete;
  ~timer_wheel();
};

// Allocates the slots (if not yet) and the room to sort the first slots
// that come due; false when out of memory. Needed before the first insert.
bool wheel_prepare(timer_wheel &w) noexcept;

// Arms t (not armed, t->due_ns set) as the newest timer; now_ns is the
// time of the call (the start clock's, core/clock.h, or the time of the run
// re-arming a repeating timer), which E moves up to if no slot lies on the
// way. A now_ns behind an earlier one (a run's time after a start read in
// one of its callbacks) leaves E where it is.
void wheel_insert(timer_wheel &w, rill_timer *t, uint64_t now_ns) noexcept;

// Takes t out of wherever it waits; a disarmed timer is left alone.
void wheel_remove(timer_wheel &w, rill_timer *t) noexcept;

// Brings E to now_ns, sorting every ring slot it reaches onto `ready`, and
// moves the timers of `near` due by now_ns onto `expiring`.
void wheel_take_due(timer_wheel &w, uint64_t now_ns) noexcept;

// The next timer to fire, due by now_ns, taken out and disarmed: the earlier
// of `ready`'s and `expiring`'s fronts (`ready` on a tie: it was started
// first); nullptr when none is left.
rill_timer *wheel_pop_due(timer_wheel &w, uint64_t now_ns) noexcept;

// Puts back onto `near` what is left on `expiring` (a callback threw).
void wheel_return_expiring(timer_wheel &w) noexcept;

// Whether no timer is armed: the loop's test, inline, before it asks more.
inline bool wheel_empty(const timer_wheel &w) noexcept {
  return w.in_slots == 0 && w.ready_head == w.ready.size() && w.near.empty();
}

// Nanoseconds from now_ns until the loop must look at the wheel again, 0
// when that is now, -1 when nothing is armed. With only coarse timers armed,
// the end of the earliest one's tick rather than its due time.
int64_t wheel_next_timeout(const timer_wheel &w, uint64_t now_ns) noexcept;

}  // namespace rill::detail

#endif
