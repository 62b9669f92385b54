// The base's slot for lib/fiber's scheduler.
//
// The scheduler of a base lives as long as the base has fibers and is used
// on whichever thread runs the base. It used to be found through a list per
// thread, which went stale when a base moved to another thread: the fibers
// started on one thread and ended on another, and the first thread's list
// kept a freed scheduler. Kept in the base, it moves with the base.
#ifndef RILL_CORE_FIBER_SLOT_H
#define RILL_CORE_FIBER_SLOT_H

#include "rill/base.h"

namespace rill::detail {

// The scheduler of `base` (nullptr while it has no fiber), for lib/fiber
// to read and set. Base thread only.
void *&base_fiber_slot(rill_base *base) noexcept;

}  // namespace rill::detail

#endif
