// The timing wheel of core/timer_wheel.h: placement, cascades, the exact
// ordering of the current tick, and the next time to look.
#include "core/timer_wheel.h"

#include <cstddef>
#include <new>

#include "core/alloc.h"
#include "core/base_impl.h"

namespace rill::detail {
namespace {

using wheel = timer_wheel;

constexpr uint64_t no_tick = UINT64_MAX;

// rill_timer derives from handle, so it is not standard-layout and offsetof
// on it is only "conditionally supported"; GCC and Clang support it for
// single non-virtual inheritance, which is all this is.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Winvalid-offsetof"
constexpr size_t link_offset = offsetof(rill_timer, link);
#pragma GCC diagnostic pop

rill_timer *timer_of(list_node *n) noexcept {
  return reinterpret_cast<rill_timer *>(reinterpret_cast<char *>(n) - link_offset);
}

uint64_t tick_of(uint64_t ns) noexcept { return ns >> wheel::tick_shift; }
uint64_t block_of(uint64_t tick) noexcept { return tick >> wheel::block_bits; }
// U: the block the upper levels are at, the one after E's.
uint64_t upper_block(const wheel &w) noexcept { return block_of(w.tick) + 1; }

void mark(wheel &w, unsigned s) noexcept {
  w.found_valid = false;
  w.bits[s / 64] |= uint64_t{1} << (s % 64);
  if (s < wheel::ring_slots)
    w.ring_summary |= uint64_t{1} << (s / 64);
}

void unmark(wheel &w, unsigned s) noexcept {
  w.found_valid = false;
  w.bits[s / 64] &= ~(uint64_t{1} << (s % 64));
  if (s < wheel::ring_slots && !w.bits[s / 64])
    w.ring_summary &= ~(uint64_t{1} << (s / 64));
}

// The slot for a timer due at tick `due`, which is after E and, if past
// block U, in a slot U has not reached.
unsigned slot_for(const wheel &w, uint64_t due) noexcept {
  uint64_t block = block_of(due);
  uint64_t upper = upper_block(w);
  if (block <= upper)
    return static_cast<unsigned>(due % wheel::ring_slots);
  uint64_t differ = block ^ upper;
  unsigned level = static_cast<unsigned>(63 - __builtin_clzll(differ)) / wheel::level_bits;
  unsigned index = static_cast<unsigned>(block >> (level * wheel::level_bits)) % wheel::level_slots;
  return wheel::ring_slots + level * wheel::level_slots + index;
}

void place_in_slot(wheel &w, rill_timer *t) noexcept {
  uint64_t due = tick_of(t->due_ns);
  unsigned s = slot_for(w, due);
  // A ring slot is emptied at its tick; an upper one when E enters the
  // block before the slot's, which is after the next block begins.
  uint64_t empties;
  if (s < wheel::ring_slots) {
    empties = due;
    w.ring_count[s]++;
  } else {
    empties = (block_of(w.tick) + 1) << wheel::block_bits;
  }
  if (empties < w.next_slot_tick)
    w.next_slot_tick = empties;
  w.slot[s].push_back(&t->link);
  mark(w, s);
  t->timer_place = s;
}

// Inserts t into `near` behind every timer due at or before it. New timers
// are rarely earlier than the back of `near`, so the walk is short.
void place_near(wheel &w, rill_timer *t) noexcept {
  list_node *after = w.near.head.prev;
  while (after != &w.near.head && timer_of(after)->due_ns > t->due_ns)
    after = after->prev;
  t->link.prev = after;
  t->link.next = after->next;
  after->next->prev = &t->link;
  after->next = &t->link;
  t->timer_place = wheel::place_near;
}

// The tick of the first non-empty ring slot, or no_tick. Ring slots hold
// ticks after E within blocks E and U, so the search starts past E's index
// and wraps around.
uint64_t next_ring_tick(const wheel &w) noexcept {
  if (!w.ring_summary)
    return no_tick;
  unsigned from = static_cast<unsigned>((w.tick + 1) % wheel::ring_slots);
  unsigned word = from / 64;
  unsigned found;
  if (uint64_t here = w.bits[word] & (~uint64_t{0} << (from % 64))) {
    found = word * 64 + static_cast<unsigned>(__builtin_ctzll(here));
  } else {
    uint64_t up_to_word = (uint64_t{2} << word) - 1;
    uint64_t later = w.ring_summary & ~up_to_word;
    // With nothing later, the lowest word wraps around (the part of `word`
    // at or past `from` was empty).
    unsigned w2 = static_cast<unsigned>(__builtin_ctzll(later ? later : w.ring_summary));
    found = w2 * 64 + static_cast<unsigned>(__builtin_ctzll(w.bits[w2]));
  }
  return w.tick + ((found - w.tick) % wheel::ring_slots);
}

// The upper slot U reaches first, and the tick at which E enters the block
// before it (when that slot must move down); no_tick when the levels are empty.
uint64_t next_cascade_tick(const wheel &w, unsigned *slot_out) noexcept {
  for (unsigned level = 0; level < wheel::upper_levels; level++) {
    uint64_t word = w.bits[wheel::ring_words + level];
    if (!word)
      continue;
    unsigned index = static_cast<unsigned>(__builtin_ctzll(word));
    unsigned shift = level * wheel::level_bits;
    uint64_t upper = upper_block(w);
    uint64_t start = (upper >> (shift + wheel::level_bits) << (shift + wheel::level_bits)) |
                     (static_cast<uint64_t>(index) << shift);
    if (slot_out)
      *slot_out = wheel::ring_slots + level * wheel::level_slots + index;
    return (start - 1) << wheel::block_bits;
  }
  return no_tick;
}

// Fills w.gathered with the timers of `l`, in list order, walking from both
// ends at once: a list walk waits on one cache miss per node, two walks
// overlap their misses. False when out of memory for the array.
bool gather(wheel &w, list &l) noexcept {
  w.gathered.clear();
  w.spare.clear();
  if (l.empty())
    return true;
  list_node *front = l.head.next, *back = l.head.prev;
  for (;;) {
    rill_timer *t = timer_of(front);
    if (!w.gathered.push(wheel_entry{t->due_ns, t}))
      return false;
    if (front == back)
      break;
    rill_timer *u = timer_of(back);
    if (!w.spare.push(wheel_entry{u->due_ns, u}))
      return false;
    front = front->next;
    if (front == back)
      break;
    back = back->prev;
  }
  for (size_t i = w.spare.size(); i-- > 0;)
    if (!w.gathered.push(w.spare[i]))
      return false;
  return true;
}

void reset(list &l) noexcept { l.head.prev = l.head.next = &l.head; }

// Takes every node off `from` as a chain linked through `next`, null-ended.
list_node *detach(list &from) noexcept {
  if (from.empty())
    return nullptr;
  list_node *first = from.head.next;
  from.head.prev->next = nullptr;
  reset(from);
  return first;
}

// Merges two chains sorted by due time; on ties `a` goes first, which keeps
// the sort stable when `a` holds the earlier-started timers.
list_node *merge(list_node *a, list_node *b) noexcept {
  list_node head;
  list_node *tail = &head;
  while (a && b) {
    if (timer_of(b)->due_ns < timer_of(a)->due_ns) {
      tail->next = b;
      b = b->next;
    } else {
      tail->next = a;
      a = a->next;
    }
    tail = tail->next;
  }
  tail->next = a ? a : b;
  return head.next;
}

// A stable bottom-up merge sort of a chain by due time, for when there is
// no memory for the array sort: bin i holds a sorted run of 2^i nodes,
// every bin earlier-started than the nodes that follow it.
list_node *sort_chain(list_node *chain) noexcept {
  list_node *bins[64] = {};
  unsigned used = 0;
  while (chain) {
    list_node *run = chain;
    chain = chain->next;
    run->next = nullptr;
    unsigned i = 0;
    for (; bins[i]; i++) {
      run = merge(bins[i], run);
      bins[i] = nullptr;
    }
    bins[i] = run;
    if (i >= used)
      used = i + 1;
  }
  list_node *sorted = nullptr;
  for (unsigned i = 0; i < used; i++)
    if (bins[i])
      sorted = sorted ? merge(bins[i], sorted) : bins[i];
  return sorted;
}

// Below this many timers a slot is sorted by comparisons: the radix sort's
// fixed cost (two tables of 1024 counts cleared and summed) is about that
// of sorting this many.
constexpr size_t radix_sort_min = 256;

// Fills out[] with the timers of ring slots group[0, g), slot after slot,
// each in list order. Every slot is walked from both ends at once and all
// the slots side by side: a list walk waits on one cache miss per node, and
// 2g walks have 2g misses in flight. The slots' counts say where each walk
// writes.
void walk_slots(wheel &w, const unsigned *group, unsigned g, wheel_entry *out) noexcept {
  struct walk {
    list_node *node;
    wheel_entry *to;
    ptrdiff_t step;  // +1 from the front (through next), -1 from the back
    size_t left;
  };
  walk walks[2 * wheel::collect_group_max];
  unsigned n_walks = 0;
  for (unsigned i = 0; i < g; i++) {
    list &l = w.slot[group[i]];
    size_t n = w.ring_count[group[i]];
    if (n)
      walks[n_walks++] = walk{l.head.next, out, 1, (n + 1) / 2};
    if (n > 1)
      walks[n_walks++] = walk{l.head.prev, out + n - 1, -1, n / 2};
    out += n;
  }
  for (size_t busy = n_walks; busy;) {
    busy = 0;
    for (unsigned k = 0; k < n_walks; k++) {
      walk &a = walks[k];
      if (!a.left)
        continue;
      rill_timer *t = timer_of(a.node);
      *a.to = wheel_entry{t->due_ns, t};
      a.to += a.step;
      a.node = a.step > 0 ? a.node->next : a.node->prev;
      busy += --a.left != 0;
    }
  }
}

// Without memory for the arrays: ring slot s sorted as a list onto `near`,
// which then holds no timer due after this slot's, so the order holds.
size_t collect_as_list(wheel &w, unsigned s) noexcept {
  size_t moved = 0;
  for (list_node *n = sort_chain(detach(w.slot[s])); n; moved++) {
    list_node *next = n->next;
    w.near.push_back(n);
    timer_of(n)->timer_place = wheel::place_near;
    n = next;
  }
  return moved;
}

// Moves ring slots group[0, g) (ticks in increasing order, the last one
// E's, already unmarked) onto `ready`, each sorted by due time, stably.
void collect(wheel &w, const unsigned *group, unsigned g) noexcept {
  size_t total = 0;
  for (unsigned i = 0; i < g; i++)
    total += w.ring_count[group[i]];
  size_t base = w.ready.size();
  // gathered and spare are room, reserved: written before they are read.
  bool room = w.gathered.reserve(total) && w.spare.reserve(total) && w.ready.reserve(base + total);
  if (room)
    walk_slots(w, group, g, w.gathered.data());
  size_t from = 0;
  for (unsigned i = 0; i < g; i++) {
    unsigned s = group[i];
    size_t n = w.ring_count[s];
    if (room) {
      wheel_entry *a = w.gathered.data() + from, *buf = w.spare.data() + from;
      wheel_entry *sorted = n >= radix_sort_min ? radix_sort_tick(a, n, buf) : sort_entries(a, n, buf);
      reset(w.slot[s]);
      for (size_t j = 0; j < n; j++) {
        sorted[j].timer->timer_place = static_cast<uint32_t>(wheel::place_ready + w.ready.size());
        w.ready.push(sorted[j]);  // reserved: cannot fail
      }
      from += n;
    } else {
      collect_as_list(w, s);
    }
    w.ring_count[s] = 0;
  }
  w.in_slots -= total;
}

// Moves ready_head past stopped timers; an emptied array starts over.
void skip_stopped(wheel &w) noexcept {
  while (w.ready_head < w.ready.size() && !w.ready[w.ready_head].timer)
    w.ready_head++;
  if (w.ready_head == w.ready.size()) {
    w.ready.clear();
    w.ready_head = 0;
  }
}

// Moves upper slot s (U has just reached it) down, in list order.
void cascade(wheel &w, unsigned s) noexcept {
  unmark(w, s);
  if (gather(w, w.slot[s])) {
    reset(w.slot[s]);
    for (size_t i = 0; i < w.gathered.size(); i++)
      place_in_slot(w, w.gathered[i].timer);
    return;
  }
  for (list_node *n = detach(w.slot[s]); n;) {
    list_node *next = n->next;
    place_in_slot(w, timer_of(n));
    n = next;
  }
}

// Moves E forward to now_tick, emptying every slot on the way, in order.
void advance(wheel &w, uint64_t now_tick) noexcept {
  if (w.in_slots == 0 || now_tick < w.next_slot_tick) {
    // No slot to empty on the way (a fiber's kick, a zero timeout, a
    // deadline far out): E moves there directly.
    if (now_tick > w.tick)
      w.tick = now_tick;
    return;
  }
  for (;;) {
    unsigned upper_slot = 0;
    uint64_t ring = next_ring_tick(w);
    uint64_t cascade_at = next_cascade_tick(w, &upper_slot);
    uint64_t next = ring < cascade_at ? ring : cascade_at;
    if (next == no_tick || next > now_tick) {
      // Every slot lies past now_tick, so E may skip there without
      // passing one.
      if (now_tick > w.tick)
        w.tick = now_tick;
      w.next_slot_tick = next;
      return;
    }
    w.tick = next;
    // On a tie the ring slot goes first: the search for the next one starts
    // past E, so E's own slot must not be left behind.
    if (ring != next) {
      cascade(w, upper_slot);
      continue;
    }
    // The ring slots that follow, up to collect_ahead_ticks past now_tick
    // and before the next cascade, are gathered with this one: walked side
    // by side, and E moves to the last of them.
    unsigned group[wheel::collect_group_max];
    unsigned g = 0;
    group[g++] = static_cast<unsigned>(ring % wheel::ring_slots);
    // The search wraps around the ring: each slot taken is unmarked first,
    // so that it cannot be found again a ring later.
    unmark(w, group[0]);
    while (g < wheel::collect_group_max) {
      uint64_t after = next_ring_tick(w);
      if (after == no_tick || after > now_tick + wheel::collect_ahead_ticks || after >= cascade_at)
        break;
      group[g++] = static_cast<unsigned>(after % wheel::ring_slots);
      unmark(w, group[g - 1]);
      w.tick = after;
    }
    collect(w, group, g);
  }
}

}  // namespace

timer_wheel::~timer_wheel() {
  mem_free(slot);  // lists own nothing: their timers belong to the pool
}

bool wheel_prepare(wheel &w) noexcept {
  if (w.slot)
    return true;  // every rill_timer_new() asks: the answer is one load
  // Room to sort and fire a slot of timers, taken now so that the loop's
  // first timers do not allocate (it grows later only for larger slots,
  // and can do without: collect()).
  constexpr size_t sort_room = 64;
  w.gathered.reserve(sort_room);
  w.spare.reserve(sort_room);
  w.ready.reserve(sort_room);
  void *mem = mem_alloc(sizeof(list) * wheel::slot_count + sizeof(uint32_t) * wheel::ring_slots);
  if (!mem)
    return false;
  w.slot = static_cast<list *>(mem);
  for (unsigned i = 0; i < wheel::slot_count; i++)
    new (&w.slot[i]) list();
  w.ring_count = reinterpret_cast<uint32_t *>(w.slot + wheel::slot_count);
  for (unsigned i = 0; i < wheel::ring_slots; i++)
    w.ring_count[i] = 0;
  return true;
}

void wheel_insert(wheel &w, rill_timer *t, uint64_t now_ns) noexcept {
  uint64_t due = tick_of(t->due_ns);
  t->timer_coarse = t->due_ns >= now_ns && t->due_ns - now_ns >= wheel::coarse_min_ns;
  if (!t->timer_coarse)
    w.precise++;
  if (t->due_ns < w.check_ns)
    w.check_ns = t->due_ns;
  // E moves up to now when no slot lies on the way, so that a timer due
  // now (a fiber's kick, a zero timeout) goes to `near` rather than into
  // a ring slot the next run must gather and sort.
  uint64_t now_tick = tick_of(now_ns);
  if (now_tick > w.tick && (w.in_slots == 0 || now_tick < w.next_slot_tick))
    w.tick = now_tick;
  if (due <= w.tick) {
    place_near(w, t);
    return;
  }
  place_in_slot(w, t);
  w.in_slots++;
}

void wheel_remove(wheel &w, rill_timer *t) noexcept {
  uint32_t place = t->timer_place;
  if (place == wheel::place_none)
    return;
  t->timer_place = wheel::place_none;
  if (!t->timer_coarse)
    w.precise--;
  if (place >= wheel::place_ready) {
    size_t index = place - wheel::place_ready;
    w.ready[index].timer = nullptr;
    if (index == w.ready_head)
      skip_stopped(w);
    return;
  }
  list::remove(&t->link);
  if (place >= wheel::place_near)
    return;
  if (place < wheel::ring_slots)
    w.ring_count[place]--;
  w.in_slots--;
  if (w.slot[place].empty())
    unmark(w, place);
}

void wheel_take_due(wheel &w, uint64_t now_ns) noexcept {
  advance(w, tick_of(now_ns));
  while (list_node *n = w.near.front()) {
    rill_timer *t = timer_of(n);
    if (t->due_ns > now_ns)
      break;
    list::remove(n);
    w.expiring.push_back(n);
    t->timer_place = wheel::place_expiring;
  }
}

rill_timer *wheel_pop_due(wheel &w, uint64_t now_ns) noexcept {
  list_node *late = w.expiring.front();
  if (w.ready_head < w.ready.size()) {
    wheel_entry e = w.ready[w.ready_head];
    if (e.due_ns <= now_ns && (!late || e.due_ns <= timer_of(late)->due_ns)) {
      w.ready_head++;
      // The array is in firing order: fetch a later timer while this one fires.
      if (w.ready_head + 4 < w.ready.size())
        __builtin_prefetch(w.ready[w.ready_head + 4].timer);
      skip_stopped(w);
      e.timer->timer_place = wheel::place_none;
      if (!e.timer->timer_coarse)
        w.precise--;
      return e.timer;
    }
  }
  if (!late)
    return nullptr;
  list::remove(late);
  rill_timer *t = timer_of(late);
  t->timer_place = wheel::place_none;
  if (!t->timer_coarse)
    w.precise--;
  return t;
}

void wheel_return_expiring(wheel &w) noexcept {
  for (list_node *n = w.expiring.front(); n; n = n->next == &w.expiring.head ? nullptr : n->next)
    timer_of(n)->timer_place = wheel::place_near;
  w.near.splice_front(w.expiring);
}

int64_t wheel_next_timeout(const wheel &w, uint64_t now_ns) noexcept {
  uint64_t next_ns;
  bool have_ready = w.ready_head < w.ready.size();
  list_node *n = w.near.front();
  if (!have_ready && !n && w.in_slots == 0)
    return -1;  // nothing armed: most iterations of a server without timers
  // Only coarse timers armed: waking at the end of a tick fires all of the
  // tick's timers at once, none before its due time.
  bool coarse = w.precise == 0;
  constexpr uint64_t tick_ns = uint64_t{1} << wheel::tick_shift;
  if (have_ready || n) {
    next_ns = have_ready ? w.ready[w.ready_head].due_ns : UINT64_MAX;
    if (n && timer_of(n)->due_ns < next_ns)
      next_ns = timer_of(n)->due_ns;
    if (coarse)
      next_ns = (next_ns + tick_ns - 1) & ~(tick_ns - 1);
  } else {
    if (!w.found_valid) {
      w.found_ring = next_ring_tick(w);
      w.found_cascade = next_cascade_tick(w, nullptr);
      w.found_valid = true;
    }
    uint64_t ring = w.found_ring;
    uint64_t cascade_at = w.found_cascade;
    uint64_t next = ring < cascade_at ? ring : cascade_at;
    if (next == no_tick)
      return -1;
    // A ring slot's timers are all due before its tick ends; a cascade
    // moves timers due a block or more later.
    if (coarse && ring < cascade_at)
      next = ring + 1 < cascade_at ? ring + 1 : cascade_at;
    next_ns = next << wheel::tick_shift;
  }
  return next_ns > now_ns ? static_cast<int64_t>(next_ns - now_ns) : 0;
}

}  // namespace rill::detail
