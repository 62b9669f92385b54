// What every handle (io watcher, timer, signal watcher) has in common, and
// how its memory is taken and released.
//
// Handles live in the base's pool (core/pool.h). A handle freed while the
// loop runs is retired at once but its slot is returned only at the end of
// the iteration, so a dispatcher that still holds a pointer to it (a
// snapshot of signal watchers, say) sees `dead` instead of reused memory.
#ifndef RILL_CORE_HANDLE_H
#define RILL_CORE_HANDLE_H

#include <cstdint>

#include "rill/base.h"

namespace rill::detail {

// Zero is reserved: the pool marks free slots with it.
enum class handle_kind : uint8_t { io = 1, timer = 2, signal = 3 };

struct handle {
  handle_kind kind;  // first: the pool reads it to tell used slots from free
  bool active = false;
  bool dead = false;
  // Internal handles (the base's own wake-up and signal descriptors) are not
  // counted as live and never keep the loop alive.
  bool internal = false;
  rill_base *base = nullptr;

  explicit handle(handle_kind k) : kind(k) {}
};

// Counts the handle as (in)active for the loop's liveness; idempotent.
void handle_set_active(handle *h, bool active) noexcept;

// Marks the handle dead and releases its slot now or, while the loop runs,
// at the end of the iteration. The handle must be stopped.
void handle_retire(handle *h) noexcept;

}  // namespace rill::detail

#endif
