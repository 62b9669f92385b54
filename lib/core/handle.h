// What every core handle (io watcher, timer, signal watcher) has in common,
// and how its life ends (the protocol of core/lifetime.h).
//
// Core handles have no close report, so they go from OPEN straight to
// CLOSED at the user's free call, which gives up the owner's reference.
// Whoever calls a handle's callback holds it across the call (held_handle),
// so a callback that frees its own handle, or another handle the same
// dispatch still has in hand, leaves live memory behind; the last release
// destroys the handle and returns its slot to the base's pool.
//
// Stale pointers: a freed slot's first byte is 0 (core/pool.h), so every
// public entry point checks the pointer it is given (handle_check) and
// refuses a slot that holds no live handle of its kind. Checked pools keep
// freed slots out of reuse for a long while, which is what makes that check
// catch a stale pointer reliably, and poison them under AddressSanitizer.
#ifndef RILL_CORE_HANDLE_H
#define RILL_CORE_HANDLE_H

#include <cstdint>

#include "core/lifetime.h"
#include "rill/base.h"

namespace rill::detail {

// Zero is reserved: the pool marks free slots with it.
enum class handle_kind : uint8_t { io = 1, timer = 2, signal = 3 };

struct handle {
  handle_kind kind;  // first: the pool reads it to tell used slots from free
  bool active = false;
  // Internal handles (the base's own wake-up and signal descriptors) are not
  // counted as live and never keep the loop alive.
  bool internal = false;
  // Timers only: armed for at least timer_wheel::coarse_min_ns, so the loop
  // may wake for it up to a tick late (core/timer_wheel.h). Padding otherwise.
  bool timer_coarse = false;
  life lifetime;
  // Timers only: where the timer waits (core/timer_wheel.h). It lives here,
  // in what would otherwise be padding after `lifetime`, to keep a timer small.
  uint32_t timer_place = UINT32_MAX;
  rill_base *base = nullptr;

  explicit handle(handle_kind k) : kind(k) {}
};

// The check at a public entry point: 0 for an open handle of `kind`,
// RILL_ECLOSED for one freed but still held (its own callback is running),
// RILL_EINVAL for NULL or a slot that holds no live handle of `kind`.
// Inline: it guards every start and stop, which run per message.
inline int handle_check(const handle *h, handle_kind kind) noexcept {
  if (!h || h->kind != kind)
    return RILL_EINVAL;
  return h->lifetime.open() ? 0 : RILL_ECLOSED;
}

// Counts the handle as (in)active for the loop's liveness; idempotent.
void handle_set_active(handle *h, bool active) noexcept;

// The user's free: the handle becomes CLOSED, stops counting as live and
// gives up the owner's reference. The handle must be stopped.
void handle_close(handle *h) noexcept;

// Drops one reference; the last destroys the handle and returns its slot.
void handle_release(handle *h) noexcept;

// Holds a handle across the dispatch of its callback; the release runs when
// the scope ends, by return or by an exception.
using held_handle = held<handle, handle_release>;

}  // namespace rill::detail

#endif
