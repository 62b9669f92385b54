// Wait groups (Go's sync.WaitGroup) for fibers.
#include "fiber/fiber_impl.h"

struct rill_waitgroup {
  long counter = 0;
  rill::detail::fiber_queue waiters;
};

using namespace rill::detail;

extern "C" {

int rill_waitgroup_new(rill_waitgroup **out) {
  if (!out)
    return RILL_EINVAL;
  *out = make<rill_waitgroup>();
  return *out ? 0 : RILL_ENOMEM;
}

void rill_waitgroup_add(rill_waitgroup *wg, int delta) {
  if (!wg)
    return;
  wg->counter += delta;
  if (wg->counter <= 0) {
    wg->counter = 0;
    fiber_wake_all(wg->waiters, 0);
  }
}

void rill_waitgroup_done(rill_waitgroup *wg) { rill_waitgroup_add(wg, -1); }

int rill_waitgroup_wait(rill_waitgroup *wg) {
  if (!wg)
    return RILL_EINVAL;
  if (!rill_fiber_current())
    return RILL_ENOTFIBER;
  if (wg->counter == 0)
    return 0;
  return fiber_wait(wg->waiters);
}

void rill_waitgroup_free(rill_waitgroup *wg) { destroy(wg); }

}  // extern "C"
