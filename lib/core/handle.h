// What every handle (io watcher, timer, signal watcher) has in common, and
// how its memory is released.
//
// A handle freed while the loop is dispatching is unlinked at once but its
// memory is released only at the end of the iteration, so a dispatcher that
// still holds a pointer to it (a snapshot of signal watchers, say) can see
// that it is gone instead of reading freed memory.
#ifndef RILL_CORE_HANDLE_H
#define RILL_CORE_HANDLE_H

#include <cstdint>

#include "rill/base.h"

namespace rill::detail {

enum class handle_kind : uint8_t { io, timer, signal };

struct handle {
  rill_base *base = nullptr;
  handle *prev = nullptr;  // the base's list of live handles
  handle *next = nullptr;
  handle_kind kind;
  bool active = false;
  bool dead = false;
  // Internal handles (the base's own wake-up and signal descriptors) stay off
  // the live list and never keep the loop alive.
  bool internal = false;

  explicit handle(handle_kind k) : kind(k) {}
};

// Links a new handle into its base's live list (unless internal).
void handle_attach(rill_base *base, handle *h) noexcept;

// Counts the handle as (in)active for the loop's liveness; idempotent.
void handle_set_active(handle *h, bool active) noexcept;

// Unlinks the handle and releases its memory now or, while the loop
// dispatches, at the end of the iteration. The handle must be stopped.
void handle_retire(handle *h) noexcept;

}  // namespace rill::detail

#endif
