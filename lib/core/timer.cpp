// Timers: the public API, and firing what is due.
//
// The timers wait in a timing wheel (core/timer_wheel.h): arming, stopping
// and restarting are O(1) and allocate nothing. Timers due together fire in
// due-time order to the nanosecond and, among equal due times, in the order
// they were started; a restart counts as a new start.
#include "core/alloc.h"
#include "core/base_impl.h"
#include "core/start_clock_now.h"

using namespace rill::detail;

namespace {

// Arms `t` for `due_ns`, as the newest timer for tie-breaking; now_ns is
// the time of the call.
void arm(rill_timer *t, uint64_t due_ns, uint64_t now_ns) {
  rill_base *base = t->base;
  if (t->timer_place != timer_wheel::place_none)  // a restart
    wheel_remove(base->timers, t);
  t->due_ns = due_ns;
  wheel_insert(base->timers, t, now_ns);
  handle_set_active(t, true);
}

void disarm(rill_timer *t) {
  wheel_remove(t->base->timers, t);
  handle_set_active(t, false);
}

// If a callback throws, the timers taken out to fire and not yet fired go
// back to the front of the line, as they were.
struct expiring_guard {
  timer_wheel &wheel;
  ~expiring_guard() {
    if (!wheel.expiring.empty())
      wheel_return_expiring(wheel);
  }
};

}  // namespace

namespace rill::detail {

void timers_run(rill_base *base) {
  // Only what is due now is taken out; timers armed while these run (a
  // callback restarting its own timer with 0 ns, say) wait for the next
  // iteration, so they cannot starve io.
  timer_wheel &wheel = base->timers;
  uint64_t now = base->now_ns;
  wheel_take_due(wheel, now);
  expiring_guard guard{wheel};
  while (rill_timer *t = wheel_pop_due(wheel, now)) {
    if (t->repeat_ns) {
      // Keep the period's phase, unless the loop fell a whole period behind.
      uint64_t next = t->due_ns + t->repeat_ns;
      arm(t, next > now ? next : now + t->repeat_ns, now);
    } else {
      handle_set_active(t, false);  // the wheel gave it up already
    }
    base->stats.events++;
    held_handle hold(t);
    RILL_STALL_BEGIN(base);
    t->cb(t, t->arg);
    RILL_STALL_END(base, RILL_STALL_TIMER, stall_fn(t->cb), t->arg, 0);
  }
}

int timer_create(rill_base *base, rill_timer_cb cb, void *arg, bool internal, rill_timer **out) noexcept {
  // The wheel's slots come with the first timer, before the handle, so
  // that running out of memory leaves nothing to undo.
  if (!wheel_prepare(base->timers))
    return RILL_ENOMEM;
  rill_timer *t = handle_new<rill_timer>(base, internal, cb, arg);
  if (!t)
    return RILL_ENOMEM;
  *out = t;
  return 0;
}

int64_t timers_next_timeout(rill_base *base, uint64_t now_ns) noexcept {
  // Not from the loop's time: it is as old as the callbacks run since the
  // loop woke, and a timer they started counts from its start, so the wait
  // would be late by their run time (a second of callbacks, then a 0 ns
  // timer: a second's sleep). Nor from now_ns alone: a timer started just
  // now counts from the start clock, which may be a few µs ahead of it
  // (core/clock.h), and a 0 ns timer must make the wait a poll, not a few
  // µs (a whole ms on an epoll without epoll_pwait2): the fiber scheduler's
  // kick relies on it. Woken that early for a later timer, the loop fires
  // nothing early: its time after the wait is an exact reading.
  uint64_t started = base->start_clock.last_ns;
  if (now_ns < started)
    now_ns = started;
  int64_t timeout = wheel_next_timeout(base->timers, now_ns);
  base->timers.check_ns = timeout < 0 ? UINT64_MAX : now_ns + static_cast<uint64_t>(timeout);
  return timeout;
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
  // the callbacks that ran since may have taken a while. The start clock is
  // never behind the real time, so the timer is never early (core/clock.h).
  uint64_t now = start_clock_now(timer->base->start_clock);
  arm(timer, now + timeout, now);
  return 0;
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
  uint64_t due = timer->due_ns;
  // The clock the due time was computed on: right after a start, this is
  // never more than the duration given.
  uint64_t now = start_clock_now(timer->base->start_clock);
  return due > now ? due - now : 0;
}

void rill_timer_free(rill_timer *timer) {
  if (handle_check(timer, handle_kind::timer) != 0)
    return;
  disarm(timer);
  handle_close(timer);
}

}  // extern "C"
