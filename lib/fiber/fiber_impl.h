// The fiber scheduler's internals, shared by lib/fiber's files. The facade
// is built on the public API only (rill.h) plus its own context switch.
// Two internal headers are used for what is not behaviour: lib/fiber is
// compiled into the same library as lib/core, and allocates through
// core/alloc.h (rill_set_allocator's allocator, so a failed allocation is
// RILL_ENOMEM like everywhere else in rill) and links its queues with the
// shared intrusive list of core/list.h; lifetimes follow core/lifetime.h.
// The scheduler also keeps its pointer in the base (core/fiber_slot.h, so
// it follows the base from thread to thread) and reports fibers to the
// base's stall detector (core/stall.h).
#ifndef RILL_FIBER_IMPL_H
#define RILL_FIBER_IMPL_H

#include <cstddef>

#include "core/alloc.h"
#include "core/lifetime.h"
#include "core/list.h"
#include "rill.h"

namespace rill::detail {

// Parks the running fiber until fiber_unpark(); returns the status given
// there. Must run inside a fiber.
int fiber_park();

// fiber_park() for a wait that may last long: a read, a sleep. A fiber
// that declared its stack private (rill_fiber_private_stack) may then have
// its frames moved to the heap while it waits, and its stack pages given
// back to the kernel (idle.cpp); they come back before it runs. So while it
// waits nothing may point into its stack except into `scratch` (len bytes,
// may be null), whose contents the wait need not keep: a reader's buffer,
// which whoever wakes it fills. `on_idle` (may be null), any fiber's, is
// called with `arg` from the loop once the wait has lasted about a second,
// to drop what only a busy fiber needs; it must not park.
int fiber_park_idle(const void *scratch, size_t len, void (*on_idle)(void *arg) = nullptr,
                    void *arg = nullptr);

// Makes a parked fiber ready; it continues from the loop, soon, with
// `status` as fiber_park()'s result. Unparking a fiber that is not parked is
// a bug in the caller.
void fiber_unpark(rill_fiber *f, int status);

// Has `fn(arg)` called on the loop's stack once `f`, woken, has run and
// parked again or ended; false (and nothing set) when `f` already has one.
bool fiber_after_run(rill_fiber *f, void (*fn)(void *), void *arg);

// A FIFO of fibers: the ready queue, or what waits on one thing (a lock, a
// wait group, an accept). A fiber is on at most one queue at a time, linked
// through its own node, so queueing never allocates.
struct fiber_queue {
  list fibers;
  bool empty() const { return fibers.empty(); }
  void push(rill_fiber *f);
  rill_fiber *pop();
  rill_fiber *back() const;
};

// Parks the running fiber on `q`.
int fiber_wait(fiber_queue &q);
// Wakes every fiber on `q` with `status`.
void fiber_wake_all(fiber_queue &q, int status);

// A lock held across parks (Go's fdMutex role, G25): FIFO, so waiting
// writers go in call order.
struct fiber_lock {
  bool held = false;
  fiber_queue waiters;
};
// RILL_ECLOSED if woken by a close. Inline: a lock nobody else holds, the
// case of every read and write of a connection one fiber serves, costs a
// flag, not two calls per message.
int fiber_lock_wait(fiber_lock &l);
void fiber_lock_hand_over(fiber_lock &l);
inline int fiber_lock_acquire(fiber_lock &l) {
  if (!l.held) {
    l.held = true;
    return 0;
  }
  return fiber_lock_wait(l);
}
inline void fiber_lock_release(fiber_lock &l) {
  if (l.waiters.empty())
    l.held = false;
  else
    fiber_lock_hand_over(l);
}

}  // namespace rill::detail

#endif
