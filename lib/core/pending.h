// The pending queue: work the loop runs soon, outside any callback chain.
//
// It is how rill keeps the promise that no callback runs inside the call that
// caused it: a write that completes at once, a dial that fails at once or a
// close queue their report here, and the loop delivers it. Nodes are
// intrusive (embedded in the object that reports), so queueing never
// allocates.
#ifndef RILL_CORE_PENDING_H
#define RILL_CORE_PENDING_H

#include "rill/base.h"

namespace rill::detail {

struct pending_node {
  pending_node *next = nullptr;
  void (*run)(pending_node *node) = nullptr;
  bool queued = false;
};

// Queues `node` (once: queueing a queued node does nothing).
void pending_push(rill_base *base, pending_node *node) noexcept;

// Takes `node` off the queue if it is on it.
void pending_cancel(rill_base *base, pending_node *node) noexcept;

bool pending_empty(const rill_base *base) noexcept;

// Runs what is queued, including what the runs queue.
void pending_run(rill_base *base) noexcept;

}  // namespace rill::detail

#endif
