// rill_base_reinit: a forked child's base gets kernel objects of its own.
//
// After fork() the child's base is a copy of the parent's memory, but its
// descriptors name the same open files as the parent's. The epoll set in
// particular is one kernel object for both processes: a child that freed a
// watcher (EPOLL_CTL_DEL) would silence the parent's, and either process's
// wait could take the other's readiness. So the child gets a new poller, a
// new wake-up descriptor for posts and a new one for signals, and every
// watcher's current interest is registered again with the new poller. The
// inherited objects are only closed, never changed.
#include "core/base_impl.h"

using namespace rill::detail;

namespace {

// The new poller knows nothing: every descriptor starts unregistered, and
// those whose watcher wants events are queued for the next flush. Stopped
// watchers that the parent's poller still had (they are dropped lazily) are
// simply not registered again.
int forget_kernel_interest(rill_base *base) {
  base->changes.clear();
  for (size_t fd = 0; fd < base->fds.size(); fd++) {
    fd_slot &slot = base->fds[fd];
    slot.kernel_events = 0;
    slot.queued = false;
    if (slot_wanted_events(slot)) {
      slot.queued = base->changes.push(static_cast<int>(fd));
      if (!slot.queued)
        return RILL_ENOMEM;
    }
  }
  return 0;
}

}  // namespace

extern "C" int rill_base_reinit(rill_base *base) {
  if (!base)
    return RILL_EINVAL;
  // First the poller, so that nothing below can reach the parent's: freeing
  // the old wake-up watchers must not unregister them there.
  int err = base->backend->reinit(base->backend_state);
  if (err)
    return err;
  err = forget_kernel_interest(base);
  if (!err)
    err = posts_reinit(base);
  if (!err)
    err = signals_reinit(base);
  // The child has one thread, the caller.
  base->loop_thread.store(this_thread_id(), std::memory_order_relaxed);
  return err;
}
