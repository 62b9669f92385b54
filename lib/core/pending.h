// The pending queue: work the loop runs soon, outside any callback chain.
//
// It is how rill keeps the promise that no callback runs inside the call that
// caused it: a write that completes at once, a dial that fails at once or a
// close queue their report here, and the loop delivers it. Nodes are
// intrusive (embedded in the object that reports, linked through the shared
// list of core/list.h), so queueing never allocates and cancelling is O(1).
//
// Fairness: pending_run() works in passes. A pass runs a snapshot of the
// queue taken when it starts; what those runs queue waits for the next pass.
// A call makes at most pending_passes passes, so a report that queues
// another report (a redial after an immediate failure, a redelivery of kept
// bytes) cannot keep the loop from waiting for io and running timers.
#ifndef RILL_CORE_PENDING_H
#define RILL_CORE_PENDING_H

#include "core/list.h"
#include "rill/base.h"

namespace rill::detail {

struct pending_node {
  list_node link;
  void (*run)(pending_node *node) = nullptr;
};

// Passes per pending_run(). The loop calls it after every run of readiness
// callbacks (io.cpp's dispatch_run) and after timers, so an iteration makes
// a bounded number of passes; what is still queued makes the next wait not
// block.
constexpr int pending_passes = 16;

// Queues `node` (once: queueing a queued node does nothing).
void pending_push(rill_base *base, pending_node *node) noexcept;

// Takes `node` off the queue if it is on it.
void pending_cancel(rill_base *base, pending_node *node) noexcept;

bool pending_empty(const rill_base *base) noexcept;

// Runs what is queued, in at most pending_passes passes (see above). Not
// noexcept: a report may run a user callback that throws. The node whose
// run threw is off the queue; the rest of its pass stays queued, in order,
// ahead of what was queued later.
void pending_run(rill_base *base);

}  // namespace rill::detail

#endif
