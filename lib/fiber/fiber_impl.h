// The fiber scheduler's internals, shared by lib/fiber's files. The facade
// is built on the public API only (rill.h) plus its own context switch.
#ifndef RILL_FIBER_IMPL_H
#define RILL_FIBER_IMPL_H

#include <cstddef>

#include "rill.h"

namespace rill::detail {

// Parks the running fiber until fiber_unpark(); returns the status given
// there. Must run inside a fiber.
int fiber_park();

// Makes a parked fiber ready; it continues from the loop, soon, with
// `status` as fiber_park()'s result. Unparking a fiber that is not parked is
// a bug in the caller.
void fiber_unpark(rill_fiber *f, int status);

// A FIFO of parked fibers: what waits on one thing (a lock, a wait group,
// an accept).
struct fiber_queue {
  rill_fiber *head = nullptr;
  rill_fiber *tail = nullptr;
  bool empty() const { return head == nullptr; }
  void push(rill_fiber *f);
  rill_fiber *pop();
  bool remove(rill_fiber *f);
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
int fiber_lock_acquire(fiber_lock &l);  // RILL_ECLOSED if woken by a close
void fiber_lock_release(fiber_lock &l);

}  // namespace rill::detail

#endif
