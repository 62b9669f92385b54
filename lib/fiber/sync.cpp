// Wait groups (Go's sync.WaitGroup), mutexes (sync.Mutex) and conditions
// (sync.Cond) for fibers.
//
// A mutex is the facade's fiber_lock (fiber_impl.h): ownership is handed
// straight to the oldest waiter on unlock, so lockers go first come, first
// served. Mutexes and conditions belong to the thread that made them
// (rill/chan.h); a fiber parked on one is on its queue through its own
// node, and a free wakes every such fiber with RILL_ECLOSED before the
// memory goes, since a woken fiber does not touch the handle again.
#include <pthread.h>

#include "fiber/fiber_impl.h"
#include "rill/chan.h"

struct rill_waitgroup {
  long counter = 0;
  rill::detail::fiber_queue waiters;
};

struct rill_mutex {
  pthread_t owner = pthread_self();
  rill::detail::fiber_lock lock;
};

struct rill_cond {
  pthread_t owner = pthread_self();
  rill::detail::fiber_queue waiters;
};

using namespace rill::detail;

namespace {

template <typename T>
int check(const T *h) {
  if (!h)
    return RILL_EINVAL;
  return pthread_equal(h->owner, pthread_self()) ? 0 : RILL_EWRONGTHREAD;
}

template <typename T>
int create(T **out) {
  if (!out)
    return RILL_EINVAL;
  *out = make<T>();
  return *out ? 0 : RILL_ENOMEM;
}

}  // namespace

extern "C" {

int rill_waitgroup_new(rill_waitgroup **out) { return create(out); }

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

int rill_mutex_new(rill_mutex **out) { return create(out); }

int rill_mutex_lock(rill_mutex *mu) {
  if (int err = check(mu))
    return err;
  if (!rill_fiber_current())
    return RILL_ENOTFIBER;
  return fiber_lock_acquire(mu->lock);
}

int rill_mutex_trylock(rill_mutex *mu) {
  if (int err = check(mu))
    return err;
  if (mu->lock.held)
    return RILL_EAGAIN;
  mu->lock.held = true;
  return 0;
}

int rill_mutex_unlock(rill_mutex *mu) {
  if (int err = check(mu))
    return err;
  if (!mu->lock.held)
    return -EPERM;
  fiber_lock_release(mu->lock);
  return 0;
}

int rill_mutex_free(rill_mutex *mu) {
  if (!mu)
    return 0;
  if (int err = check(mu))
    return err;
  fiber_wake_all(mu->lock.waiters, RILL_ECLOSED);
  destroy(mu);
  return 0;
}

int rill_cond_new(rill_cond **out) { return create(out); }

int rill_cond_wait(rill_cond *c, rill_mutex *mu) {
  if (int err = check(c))
    return err;
  if (int err = check(mu))
    return err;
  if (!rill_fiber_current())
    return RILL_ENOTFIBER;
  if (!mu->lock.held)
    return -EPERM;
  fiber_lock_release(mu->lock);
  int woken = fiber_wait(c->waiters);
  int locked = fiber_lock_acquire(mu->lock);
  return locked ? locked : woken;
}

int rill_cond_signal(rill_cond *c) {
  if (int err = check(c))
    return err;
  if (rill_fiber *f = c->waiters.pop())
    fiber_unpark(f, 0);
  return 0;
}

int rill_cond_broadcast(rill_cond *c) {
  if (int err = check(c))
    return err;
  fiber_wake_all(c->waiters, 0);
  return 0;
}

int rill_cond_free(rill_cond *c) {
  if (!c)
    return 0;
  if (int err = check(c))
    return err;
  fiber_wake_all(c->waiters, RILL_ECLOSED);
  destroy(c);
  return 0;
}

}  // extern "C"
