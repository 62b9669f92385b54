// Channels (Go's chan T) for fibers: the buffer, the queues of parked
// senders and receivers, close and free. How parked fibers wait (and leave
// every queue when their call completes) is in chan_impl.h and select.cpp;
// a blocking send or receive is a select of one case.
#include <cstdint>
#include <cstring>

#include "fiber/chan_impl.h"

namespace rill::detail {
namespace {

void copy_elem(void *dst, const void *src, size_t size) {
  if (size && dst && src)
    std::memcpy(dst, src, size);
}

void zero_elem(void *dst, size_t size) {
  if (size && dst)
    std::memset(dst, 0, size);
}

char *slot(rill_chan *ch, size_t i) { return ch->buf + ((ch->head + i) % ch->cap) * ch->elem_size; }

chan_waiter *pop_waiter(list &q) {
  list_node *n = q.pop_front();
  return n ? RILL_CONTAINER_OF(n, chan_waiter, node) : nullptr;
}

chan_waiter *front_waiter(const list &q) {
  list_node *n = q.front();
  return n ? RILL_CONTAINER_OF(n, chan_waiter, node) : nullptr;
}

int check(const rill_chan *ch) {
  if (!ch)
    return RILL_EINVAL;
  return owned_here(ch->owner) ? 0 : RILL_EWRONGTHREAD;
}

}  // namespace

void chan_init(rill_chan *ch, size_t elem_size) {
  ch->owner = pthread_self();
  ch->elem_size = elem_size;
  ch->cap = 0;
}

bool chan_send_ready(const rill_chan *ch) { return ch->closed || !ch->recvq.empty() || ch->len < ch->cap; }

bool chan_recv_ready(const rill_chan *ch) { return ch->closed || !ch->sendq.empty() || ch->len > 0; }

int chan_send_now(rill_chan *ch, const void *elem) {
  if (ch->closed)
    return RILL_ECLOSED;
  // A parked receiver means the buffer is empty: hand the value over.
  if (chan_waiter *w = pop_waiter(ch->recvq)) {
    copy_elem(w->elem, elem, ch->elem_size);
    w->ok = true;
    select_fire(w, 0);
    return 0;
  }
  copy_elem(slot(ch, ch->len), elem, ch->elem_size);
  ch->len++;
  return 0;
}

void chan_recv_now(rill_chan *ch, void *elem, bool *ok) {
  if (chan_waiter *w = front_waiter(ch->sendq)) {
    // A parked sender means the buffer is full (or there is none): take the
    // oldest value, and the sender's value takes the freed place at the
    // back, so values still come out in the order they were sent.
    if (ch->cap == 0) {
      copy_elem(elem, w->elem, ch->elem_size);
    } else {
      copy_elem(elem, slot(ch, 0), ch->elem_size);
      copy_elem(slot(ch, 0), w->elem, ch->elem_size);
      ch->head = (ch->head + 1) % ch->cap;
    }
    select_fire(w, 0);  // unlinks it from sendq
    *ok = true;
    return;
  }
  if (ch->len > 0) {
    copy_elem(elem, slot(ch, 0), ch->elem_size);
    ch->head = (ch->head + 1) % ch->cap;
    ch->len--;
    *ok = true;
    return;
  }
  zero_elem(elem, ch->elem_size);  // closed and drained: the zero value
  *ok = false;
}

int chan_close(rill_chan *ch) {
  if (ch->closed)
    return RILL_ECLOSED;
  ch->closed = true;
  while (chan_waiter *w = pop_waiter(ch->recvq)) {
    zero_elem(w->elem, ch->elem_size);
    w->ok = false;
    select_fire(w, 0);
  }
  while (chan_waiter *w = pop_waiter(ch->sendq))
    select_fire(w, RILL_ECLOSED);
  return 0;
}

void chan_wake_for_free(rill_chan *ch) {
  while (chan_waiter *w = pop_waiter(ch->recvq)) {
    zero_elem(w->elem, ch->elem_size);
    select_fire(w, RILL_ECLOSED);
  }
  while (chan_waiter *w = pop_waiter(ch->sendq))
    select_fire(w, RILL_ECLOSED);
}

}  // namespace rill::detail

using namespace rill::detail;

extern "C" {

int rill_chan_new(size_t elem_size, size_t capacity, rill_chan **out) {
  if (!out)
    return RILL_EINVAL;
  *out = nullptr;
  if (elem_size && capacity > SIZE_MAX / elem_size)
    return RILL_EINVAL;
  auto *ch = make<rill_chan>();
  if (!ch)
    return RILL_ENOMEM;
  chan_init(ch, elem_size);
  ch->cap = capacity;
  if (capacity && elem_size) {
    ch->buf = static_cast<char *>(mem_alloc(capacity * elem_size));
    if (!ch->buf) {
      destroy(ch);
      return RILL_ENOMEM;
    }
  }
  *out = ch;
  return 0;
}

int rill_chan_send(rill_chan *ch, const void *elem) {
  rill_select_case c = {ch, RILL_SELECT_SEND, const_cast<void *>(elem), 0};
  int r = ch ? rill_select(&c, 1, RILL_FOREVER) : RILL_EINVAL;
  return r < 0 ? r : 0;
}

int rill_chan_recv(rill_chan *ch, void *elem, int *ok) {
  rill_select_case c = {ch, RILL_SELECT_RECV, elem, 0};
  int r = ch ? rill_select(&c, 1, RILL_FOREVER) : RILL_EINVAL;
  if (ok)
    *ok = r < 0 ? 0 : c.ok;
  return r < 0 ? r : 0;
}

int rill_chan_try_send(rill_chan *ch, const void *elem) {
  rill_select_case c = {ch, RILL_SELECT_SEND, const_cast<void *>(elem), 0};
  int r = ch ? rill_select_try(&c, 1) : RILL_EINVAL;
  return r < 0 ? r : 0;
}

int rill_chan_try_recv(rill_chan *ch, void *elem, int *ok) {
  rill_select_case c = {ch, RILL_SELECT_RECV, elem, 0};
  int r = ch ? rill_select_try(&c, 1) : RILL_EINVAL;
  if (ok)
    *ok = r < 0 ? 0 : c.ok;
  return r < 0 ? r : 0;
}

int rill_chan_close(rill_chan *ch) {
  if (int err = check(ch))
    return err;
  if (ch->of_ctx)
    return RILL_EINVAL;
  return chan_close(ch);
}

size_t rill_chan_len(const rill_chan *ch) { return check(ch) ? 0 : ch->len; }

size_t rill_chan_cap(const rill_chan *ch) { return check(ch) ? 0 : ch->cap; }

int rill_chan_closed(const rill_chan *ch) { return !check(ch) && ch->closed ? 1 : 0; }

int rill_chan_free(rill_chan *ch) {
  if (!ch)
    return 0;
  if (int err = check(ch))
    return err;
  if (ch->of_ctx)
    return RILL_EINVAL;
  // Woken fibers never touch the channel again (select.cpp), so the
  // memory can go at once.
  chan_wake_for_free(ch);
  mem_free(ch->buf);
  destroy(ch);
  return 0;
}

}  // extern "C"
