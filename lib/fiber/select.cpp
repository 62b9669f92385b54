// Go's select over channel operations, and the waiting it is built on:
// every blocking channel call is a select (a plain send or receive is a
// select of one case with no timeout).
//
// A select runs in two steps, as Go's selectgo does. First it looks: if
// some cases are ready, it completes one of them, picked uniformly at
// random so that a busy channel cannot starve the others. Otherwise it
// parks, with one waiter per case linked into its channel's queue and an
// optional timer; the first of them to fire completes the call and
// unlinks all the others (select_fire), so exactly one case completes.
// The two steps cannot interleave with other fibers: they only switch when
// this one parks.
#include <cstdint>
#include <ctime>

#include "fiber/chan_impl.h"

namespace rill::detail {
namespace {

// A small pseudo-random generator for picking among ready cases
// (xorshift64*): the choice needs to be fair, not unpredictable.
thread_local uint64_t rng_state = 0;

uint64_t next_random() {
  if (rng_state == 0) {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    rng_state = (static_cast<uint64_t>(ts.tv_nsec) << 20) ^ static_cast<uint64_t>(ts.tv_sec) ^
                reinterpret_cast<uintptr_t>(&rng_state) ^ 0x9e3779b97f4a7c15ULL;
    if (rng_state == 0)
      rng_state = 1;
  }
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 0x2545f4914f6cdd1dULL;
}

int validate(const rill_select_case *cases, size_t n) {
  if (!cases && n > 0)
    return RILL_EINVAL;
  if (n > RILL_SELECT_MAX)
    return RILL_EINVAL;
  for (size_t i = 0; i < n; i++) {
    const rill_select_case &c = cases[i];
    if (c.op != RILL_SELECT_SEND && c.op != RILL_SELECT_RECV)
      return RILL_EINVAL;
    if (!c.chan)
      continue;
    if (!owned_here(c.chan->owner))
      return RILL_EWRONGTHREAD;
    if (c.op == RILL_SELECT_SEND && !c.elem && c.chan->elem_size > 0)
      return RILL_EINVAL;
  }
  return 0;
}

bool ready(const rill_select_case &c) {
  if (!c.chan)
    return false;
  return c.op == RILL_SELECT_SEND ? chan_send_ready(c.chan) : chan_recv_ready(c.chan);
}

// Completes ready case `i` now; returns `i` or the send's error.
int complete_now(rill_select_case *cases, size_t i) {
  rill_select_case &c = cases[i];
  if (c.op == RILL_SELECT_SEND) {
    if (int err = chan_send_now(c.chan, c.elem))
      return err;
  } else {
    bool ok = false;
    chan_recv_now(c.chan, c.elem, &ok);
    c.ok = ok;
  }
  return static_cast<int>(i);
}

// Step one: the index of a ready case picked uniformly at random
// (reservoir sampling, one pass), or -1.
long pick_ready(const rill_select_case *cases, size_t n) {
  long chosen = -1;
  uint64_t seen = 0;
  for (size_t i = 0; i < n; i++) {
    if (!ready(cases[i]))
      continue;
    seen++;
    if (seen == 1 || next_random() % seen == 0)
      chosen = static_cast<long>(i);
  }
  return chosen;
}

void unlink_all(select_wait *sw) {
  for (size_t i = 0; i < sw->n; i++)
    list::remove(&sw->waiters[i].node);
}

void on_timeout(rill_timer *, void *arg) {
  auto *sw = static_cast<select_wait *>(arg);
  if (sw->fired != -1)
    return;  // a case won; the fiber, ready to run, frees this timer
  sw->fired = select_timed_out;
  unlink_all(sw);
  fiber_unpark(sw->fiber, 0);
}

// Step two: parks with a waiter on every case until one fires.
int park(rill_select_case *cases, size_t n, uint64_t timeout) {
  chan_waiter inline_waiters[RILL_SELECT_INLINE];
  chan_waiter *waiters = inline_waiters;
  if (n > RILL_SELECT_INLINE) {
    waiters = static_cast<chan_waiter *>(mem_alloc(n * sizeof(chan_waiter)));
    if (!waiters)
      return RILL_ENOMEM;
    for (size_t i = 0; i < n; i++)
      new (&waiters[i]) chan_waiter();
  }
  select_wait sw{rill_fiber_current(), waiters, n};
  rill_timer *timer = nullptr;
  if (timeout != RILL_FOREVER) {
    rill_base *base = rill_fiber_base();
    int err = rill_timer_new(base, on_timeout, &sw, &timer);
    if (err) {
      if (waiters != inline_waiters)
        mem_free(waiters);
      return err;
    }
    rill_timer_start(timer, timeout, 0);  // from now (G29)
  }
  for (size_t i = 0; i < n; i++) {
    chan_waiter &w = waiters[i];
    w.sel = &sw;
    w.elem = cases[i].elem;
    w.index = static_cast<int>(i);
    if (rill_chan *ch = cases[i].chan)
      (cases[i].op == RILL_SELECT_SEND ? ch->sendq : ch->recvq).push_back(&w.node);
  }
  // Only select_fire() or the timer wake this fiber; the loop guards the
  // waiters on this stack against any other wake-up.
  while (sw.fired == -1)
    fiber_park();
  rill_timer_free(timer);
  int result;
  if (sw.fired == select_timed_out) {
    result = RILL_ETIMEOUT;
  } else if (sw.status) {
    result = sw.status;
  } else {
    result = sw.fired;
    if (cases[result].op == RILL_SELECT_RECV)
      cases[result].ok = waiters[result].ok;
  }
  if (waiters != inline_waiters)
    mem_free(waiters);
  return result;
}

int do_select(rill_select_case *cases, size_t n, uint64_t timeout, bool may_park) {
  if (may_park && !rill_fiber_current())
    return RILL_ENOTFIBER;
  if (int err = validate(cases, n))
    return err;
  if (may_park && n == 0 && timeout == RILL_FOREVER)
    return RILL_EINVAL;  // Go's select {} blocks forever: surely a mistake
  long i = pick_ready(cases, n);
  if (i >= 0)
    return complete_now(cases, static_cast<size_t>(i));
  if (!may_park)
    return RILL_EAGAIN;
  if (timeout == 0)
    return RILL_ETIMEOUT;
  return park(cases, n, timeout);
}

}  // namespace

void select_fire(chan_waiter *w, int status) {
  select_wait *sw = w->sel;
  sw->fired = w->index;
  sw->status = status;
  unlink_all(sw);
  fiber_unpark(sw->fiber, 0);
}

}  // namespace rill::detail

using namespace rill::detail;

extern "C" {

int rill_select(rill_select_case *cases, size_t n, uint64_t timeout) {
  return do_select(cases, n, timeout, true);
}

int rill_select_try(rill_select_case *cases, size_t n) { return do_select(cases, n, 0, false); }

}  // extern "C"
