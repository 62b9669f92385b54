// Channels, select and contexts (rill/chan.h): the state shared by
// chan.cpp, select.cpp and ctx.cpp.
//
// How a fiber waits on channels. Every blocked operation, a plain send or
// receive as well as each case of a select, is a chan_waiter on the waiting
// fiber's stack (Go's sudog), linked into the channel's send or receive
// queue. The waiters of one blocked call share one select_wait. Whoever
// completes one of them (a send, a receive, a close, a free, the select's
// timer) calls select_fire(), which records the outcome and unlinks every
// waiter of that call from every channel before the fiber is even made
// ready: a fiber is never found on a queue once its call has completed, so
// nothing can complete it twice or hand it a value it will not take.
//
// Nothing here is locked: a channel belongs to one thread (the `owner`
// check at every entry point) and fibers switch only when they park.
#ifndef RILL_FIBER_CHAN_IMPL_H
#define RILL_FIBER_CHAN_IMPL_H

#include <pthread.h>

#include "fiber/fiber_impl.h"
#include "rill/chan.h"

namespace rill::detail {

struct select_wait;

struct chan_waiter {
  list_node node;  // in the channel's sendq or recvq
  select_wait *sel;
  void *elem;      // send: the value; receive: where it goes (may be null)
  int index;       // the case, reported as the select's result
  bool ok = false; // receive: a value came (not a close)
};

struct select_wait {
  rill_fiber *fiber;
  chan_waiter *waiters;
  size_t n;
  int fired = -1;  // the index of the completed case, or select_timed_out
  int status = 0;  // the completed case's error (RILL_ECLOSED)
};

constexpr int select_timed_out = -2;

// Completes `w`'s call with `status`: see the opening comment.
void select_fire(chan_waiter *w, int status);

// The calling thread owns `h`'s thread id?
inline bool owned_here(pthread_t owner) { return pthread_equal(owner, pthread_self()) != 0; }

}  // namespace rill::detail

struct rill_chan {
  pthread_t owner;
  size_t elem_size;
  size_t cap;
  char *buf = nullptr;  // cap * elem_size bytes, a ring
  size_t head = 0;      // the oldest buffered value
  size_t len = 0;
  bool closed = false;
  bool of_ctx = false;  // a context's done channel: only the context closes it
  rill::detail::list sendq;
  rill::detail::list recvq;
};

namespace rill::detail {

// Initialises a channel in place (for one embedded in a context); the
// buffer is the caller's to provide when cap > 0.
void chan_init(rill_chan *ch, size_t elem_size);

// Would a send / receive complete now without waiting? A send on a closed
// channel counts as ready: it completes at once, with an error.
bool chan_send_ready(const rill_chan *ch);
bool chan_recv_ready(const rill_chan *ch);

// Completes a ready send (0, or RILL_ECLOSED) / receive (sets *ok).
int chan_send_now(rill_chan *ch, const void *elem);
void chan_recv_now(rill_chan *ch, void *elem, bool *ok);

// Closes the channel: receivers wake with ok = false, senders with
// RILL_ECLOSED. Returns RILL_ECLOSED if it was closed already.
int chan_close(rill_chan *ch);

// Wakes every fiber parked on the channel with RILL_ECLOSED, for a free.
void chan_wake_for_free(rill_chan *ch);

}  // namespace rill::detail

#endif
