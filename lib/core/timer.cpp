// Timers in a 4-ary min-heap ordered by (due time, start sequence).
//
// Each heap node carries the due time and the start sequence next to the
// timer pointer, so sifting compares within the heap array and touches a
// timer only to update its back-index. Ties on the due time are common (many
// timers armed in one iteration with the same timeout) and are broken by the
// sequence, so timers due together fire in the order they were started.
// Every timer knows its heap index, so stop and restart are O(log n) and,
// once the array has grown, allocate nothing.
#include "core/alloc.h"
#include "core/base_impl.h"
#include "core/clock.h"

using namespace rill::detail;

namespace {

constexpr size_t arity = 4;

bool earlier(const timer_node &a, const timer_node &b) {
  if (a.due_ns != b.due_ns)
    return a.due_ns < b.due_ns;
  return a.timer->seq < b.timer->seq;
}

void place(vec<timer_node> &heap, size_t i, const timer_node &node) {
  heap[i] = node;
  node.timer->heap_index = static_cast<uint32_t>(i);
}

void sift_up(vec<timer_node> &heap, size_t i) {
  timer_node node = heap[i];
  while (i > 0) {
    size_t parent = (i - 1) / arity;
    if (!earlier(node, heap[parent]))
      break;
    place(heap, i, heap[parent]);
    i = parent;
  }
  place(heap, i, node);
}

void sift_down(vec<timer_node> &heap, size_t i) {
  timer_node node = heap[i];
  size_t n = heap.size();
  for (;;) {
    size_t first = i * arity + 1;
    if (first >= n)
      break;
    size_t last = first + arity < n ? first + arity : n;
    size_t best = first;
    for (size_t c = first + 1; c < last; c++)
      if (earlier(heap[c], heap[best]))
        best = c;
    if (!earlier(heap[best], node))
      break;
    place(heap, i, heap[best]);
    i = best;
  }
  place(heap, i, node);
}

void heap_remove(rill_base *base, rill_timer *t) {
  vec<timer_node> &heap = base->timers;
  size_t i = t->heap_index;
  t->heap_index = UINT32_MAX;
  timer_node last = heap.back();
  heap.pop_back();
  if (i == heap.size())
    return;
  place(heap, i, last);
  if (i > 0 && earlier(last, heap[(i - 1) / arity]))
    sift_up(heap, i);
  else
    sift_down(heap, i);
}

// Arms `t` for `due_ns`, as the newest timer for tie-breaking.
int arm(rill_timer *t, uint64_t due_ns) {
  rill_base *base = t->base;
  t->seq = base->timer_seq++;
  if (t->heap_index != UINT32_MAX) {
    // Already in the heap: move it in place, no allocation.
    size_t i = t->heap_index;
    uint64_t old_due = base->timers[i].due_ns;
    base->timers[i].due_ns = due_ns;
    // A restart also takes the newest sequence number, so equal due times
    // can only move it later.
    if (due_ns < old_due)
      sift_up(base->timers, i);
    else
      sift_down(base->timers, i);
    return 0;
  }
  if (!base->timers.push(timer_node{due_ns, t}))
    return RILL_ENOMEM;
  sift_up(base->timers, base->timers.size() - 1);
  handle_set_active(t, true);
  return 0;
}

void disarm(rill_timer *t) {
  if (t->heap_index != UINT32_MAX)
    heap_remove(t->base, t);
  handle_set_active(t, false);
}

}  // namespace

namespace rill::detail {

void timers_run(rill_base *base) {
  // Timers armed while this runs (a callback restarting its own timer with
  // 0 ms, say) wait for the next iteration, so they cannot starve io.
  uint64_t seq_limit = base->timer_seq;
  vec<timer_node> &heap = base->timers;
  while (!heap.empty()) {
    timer_node top = heap[0];
    if (top.due_ns > base->now_ns || top.timer->seq >= seq_limit)
      break;
    rill_timer *t = top.timer;
    if (t->repeat_ns) {
      // Keep the period's phase, unless the loop fell a whole period behind.
      uint64_t next = top.due_ns + t->repeat_ns;
      arm(t, next > base->now_ns ? next : base->now_ns + t->repeat_ns);
    } else {
      disarm(t);
    }
    base->stats.events++;
    held_handle hold(t);
    RILL_STALL_BEGIN(base);
    t->cb(t, t->arg);
    RILL_STALL_END(base, RILL_STALL_TIMER, stall_fn(t->cb), t->arg, 0);
  }
}

int timer_create(rill_base *base, rill_timer_cb cb, void *arg, bool internal, rill_timer **out) noexcept {
  rill_timer *t = handle_new<rill_timer>(base, internal, cb, arg);
  if (!t)
    return RILL_ENOMEM;
  *out = t;
  return 0;
}

int64_t timers_next_timeout(const rill_base *base) noexcept {
  if (base->timers.empty())
    return -1;
  uint64_t due = base->timers[0].due_ns;
  return due > base->now_ns ? static_cast<int64_t>(due - base->now_ns) : 0;
}

}  // namespace rill::detail

extern "C" {

int rill_timer_new(rill_base *base, rill_timer_cb cb, void *arg, rill_timer **out) {
  if (!base || !cb || !out)
    return RILL_EINVAL;
  return timer_create(base, cb, arg, false, out);
}

int rill_timer_start(rill_timer *timer, uint64_t timeout, uint64_t repeat) {
  if (int err = handle_check(timer, handle_kind::timer))
    return err;
  // Cap far-future times instead of overflowing: 2^62 ns is ~146 years.
  constexpr uint64_t max_duration = UINT64_MAX / 4;
  if (timeout > max_duration)
    timeout = max_duration;
  if (repeat > max_duration)
    repeat = max_duration;
  timer->repeat_ns = repeat;
  // G29: the duration counts from now, not from when the loop last woke;
  // the callbacks that ran since may have taken a while.
  rill_base *base = timer->base;
  base->now_ns = monotonic_ns();
  return arm(timer, base->now_ns + timeout);
}

int rill_timer_stop(rill_timer *timer) {
  if (int err = handle_check(timer, handle_kind::timer))
    return err;
  disarm(timer);
  return 0;
}

int rill_timer_active(const rill_timer *timer) {
  return handle_check(timer, handle_kind::timer) == 0 && timer->active ? 1 : 0;
}

uint64_t rill_timer_remaining(const rill_timer *timer) {
  if (handle_check(timer, handle_kind::timer) != 0 || !timer->active)
    return 0;
  uint64_t due = timer->base->timers[timer->heap_index].due_ns;
  uint64_t now = monotonic_ns();
  return due > now ? due - now : 0;
}

void rill_timer_free(rill_timer *timer) {
  if (handle_check(timer, handle_kind::timer) != 0)
    return;
  disarm(timer);
  handle_close(timer);
}

}  // extern "C"
