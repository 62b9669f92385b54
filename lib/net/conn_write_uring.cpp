// Writes of a connection on an io_uring base, as sends through the ring
// (backend.h: backend_stream_ops' send half; docs/io_uring.md).
//
// A write alone in its loop iteration (the last wait reported one event,
// nothing is queued, no other write of the iteration came first: the
// backend's send_alone) goes to send(2) at once, as on epoll: with nothing
// to batch, a send through the ring costs an SQE, a completion and a
// second enter, where send(2) costs one system call (the one-connection
// echo: docs/io_uring.md). Only what the kernel did not take is queued.
//
// Every other write is queued (conn_write.cpp's queue, the same water marks,
// drain and errors) and the queue's head goes out as one IORING_OP_SEND,
// written to the submission queue at once and submitted with the loop's
// next wait: all the sends the callbacks of one iteration make go to the
// kernel in its one io_uring_enter. The next part goes when that send
// completes, so one send at a time keeps the bytes in order; small copying
// writes made meanwhile are appended to the last copy (not the head's: its
// send is in flight) and leave together.
//
// Who owns the bytes a send reads, until its completion is reaped:
//  - rill_conn_write: a copy the request owns, or, when the bytes are the
//    ones on_read is being shown (an echo), the receive buffer itself,
//    pinned so that it goes back to the kernel only when the send is done;
//  - rill_conn_write_ref: the caller, until its done callback, which runs
//    only after the completion.
// A close, abort or write timeout drops the queue but the head a send is
// reading: its send is cancelled and the head fails when the cancellation
// (or the send) completes. The socket is closed only then, so on_close
// still comes after every done callback and the peer sees its FIN or RST
// right after.
//
// A connection falls back to writing itself (readiness, writev) when the
// backend refuses a send: in a forked child, whose ring is new and knows
// nothing of the parent's receives.
#include <sys/socket.h>
#include <cerrno>
#include <cstring>

#include "core/alloc.h"
#include "net/net_impl.h"

namespace rill::detail {
namespace {

// The size class of a copy of `len` bytes, or -1: too large to keep.
int copy_class(size_t len) {
  size_t size = copy_cache::smallest;
  for (int k = 0; k < copy_cache::classes; k++, size <<= 1)
    if (len <= size)
      return k;
  return -1;
}

// A buffer for at least `len` bytes (small writes then append to it and go
// in one send); its size in *cap, 0 when the cache will not keep it.
char *copy_take(rill_conn *c, size_t len, size_t *cap) {
  int k = copy_class(len);
  if (k < 0) {
    *cap = 0;
    return static_cast<char *>(mem_alloc(len));
  }
  copy_cache &cc = net_get(c->base)->copies;
  *cap = copy_cache::smallest << k;
  if (copy_cache::node *n = cc.free[k]) {
    cc.free[k] = n->next;
    cc.cached -= *cap;
    return reinterpret_cast<char *>(n);
  }
  // A spare with it: a connection mostly needs two at a time (the head a
  // send reads, a tail collecting later writes), and steady state then
  // finds it here rather than in malloc the first time it does.
  if (cc.cached + *cap <= copy_cache::max_cached) {
    if (auto *spare = static_cast<copy_cache::node *>(mem_alloc(*cap))) {
      spare->next = nullptr;
      cc.free[k] = spare;
      cc.cached += *cap;
    }
  }
  return static_cast<char *>(mem_alloc(*cap));
}

const backend_stream_ops *ops_of(const rill_conn *c) { return backend_streams(c->base->backend); }

// Takes a completed send's result into account. Errors other than those of
// a head that already failed are returned (the caller fails the queue).
int take_result(rill_conn *c, int res) {
  write_req *r = conn_req_of(c->queue->reqs.front());
  if (!r)
    return 0;
  if (r->status) {  // failed meanwhile (conn_fail_queue): done now
    if (res > 0) {
      c->written += static_cast<uint64_t>(res);
      r->offset += static_cast<size_t>(res);
    }
    list::remove(&r->link);
    conn_release_req(c, r);
    return 0;
  }
  if (res < 0)
    return res == -EAGAIN || res == -EINTR ? 0 : res;
  auto n = static_cast<size_t>(res);
  c->written += n;
  c->queue->bytes -= n;
  r->offset += n;
  if (r->offset == r->len) {  // else a short send: the rest goes next
    list::remove(&r->link);
    conn_release_req(c, r);
  }
  return 0;
}

// A write alone in its loop iteration, given to send(2) at once: with
// nothing to share an enter with, a send through the ring costs more (the
// SQE, its completion, and a second enter: the first returns at once with
// that completion). Returns the bytes the kernel took (0 when it is full),
// or a negative errno. Nothing is queued (the caller checked), so these
// bytes go before any later ones.
ssize_t send_now(rill_conn *c, const char *data, size_t len) {
  ssize_t n;
  do {
    n = send(c->fd, data, len, MSG_DONTWAIT | RILL_MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0)
    return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
  c->written += static_cast<uint64_t>(n);
  return n;
}

// The error a direct send met, reported as a ring send's would be (the
// same program sees the same thing whichever way its bytes went): later
// writes fail with it, and on_write_error reports it from the loop with
// these bytes unsent. Nothing was queued, so nothing needs failing.
int fail_direct_send(rill_conn *c, int err, size_t unsent) {
  c->write_error = err;
  if (!conn_rare_get(c))
    return err;  // no room for the report: the caller hears it now instead
  c->rare->notify_write_error = err;
  c->rare->notify_unsent = unsent;
  conn_notify(c);
  return 0;
}

}  // namespace

copy_cache::~copy_cache() {
  for (node *&head : free)
    while (node *n = head) {
      head = n->next;
      mem_free(n);
    }
}

void conn_uring_copy_free(rill_conn *c, char *p, size_t cap) {
  copy_cache &cc = net_get(c->base)->copies;
  int k = copy_class(cap);
  if (k < 0 || (copy_cache::smallest << k) != cap || cc.cached + cap > copy_cache::max_cached) {
    mem_free(p);
    return;
  }
  auto *n = reinterpret_cast<copy_cache::node *>(p);
  n->next = cc.free[k];
  cc.free[k] = n;
  cc.cached += cap;
}

void conn_uring_kick(rill_conn *c, bool idle) {
  while (write_req *r = conn_req_of(c->queue->reqs.front())) {
    // Zero bytes complete in their turn; a head that failed while its send
    // was in flight and whose send is gone without a completion (a ring
    // traded for another thread) fails now.
    if (r->status && !idle)
      return;  // its send may still be in flight: its completion goes on
    if (r->len == r->offset || r->status) {
      list::remove(&r->link);
      conn_release_req(c, r);
      continue;
    }
    int err = ops_of(c)->send(c->base->backend_state, c->fd, r->data + r->offset, r->len - r->offset);
    if (err == 0 && c->base->state != base_state::running)
      ops_of(c)->submit(c->base->backend_state);  // no wait is coming to take it
    if (err && err != -EBUSY) {
      // Not in receive mode (a forked child), or no room: readiness.
      c->set(conn_flag::uring_send, false);
      conn_update_io(c);
    }
    return;
  }
}

bool conn_uring_settle(rill_conn *c) {
  int res = 0;
  int state = ops_of(c)->send_reap(c->base->backend_state, c->fd, &res);
  if (state == send_reaped)
    take_result(c, res);  // the caller fails the rest anyway
  return state == send_busy;
}

void conn_uring_send_cancel(rill_conn *c) { ops_of(c)->send_cancel(c->base->backend_state, c->fd); }

bool conn_uring_on_writable(rill_conn *c) {
  int res = 0;
  int state = ops_of(c)->send_reap(c->base->backend_state, c->fd, &res);
  if (state == send_busy)
    return true;  // a poll that stood in, before the send was queued
  if (state == send_reaped) {
    int err = take_result(c, res);
    if (err) {
      // EPIPE, ECONNRESET ...: as the queue's own writev would fail. The
      // report needs the conn_rare that a copying write did not make.
      c->write_error = err;
      conn_rare_get(c);
      conn_fail_queue(c, err, err);
      if (c->lifetime.closing())
        conn_finish_close(c);
      return true;
    }
  }
  conn_uring_kick(c, true);  // nothing is in flight now
  if (!c->has(conn_flag::uring_send))
    return false;
  conn_after_progress(c);
  return true;
}

int conn_uring_write(rill_conn *c, const char *data, size_t len) {
  if (c->queue_empty() && ops_of(c)->send_alone(c->base->backend_state)) {
    ssize_t n = send_now(c, data, len);
    if (static_cast<size_t>(n) == len)
      return 0;
    if (n < 0)
      return fail_direct_send(c, static_cast<int>(n), len);
    data += n;  // the rest through the ring
    len -= static_cast<size_t>(n);
  }
  list_node *last = c->queue_empty() ? nullptr : c->queue->reqs.head.prev;
  write_req *tail = conn_req_of(last);
  // Not to the head: its send (in flight) was for the bytes it had, and a
  // completion short of them must mean the kernel was full.
  if (tail && last != c->queue->reqs.front() && tail->owned && !tail->status && tail->len + len <= tail->cap) {
    std::memcpy(tail->owned + tail->len, data, len);
    tail->len += len;
    c->queue->bytes += len;
    if (!c->has(conn_flag::above_high) && c->queued() > c->high_water()) {
      c->set(conn_flag::above_high, true);
      c->set(conn_flag::notify_high, true);
      conn_notify(c);
    }
    return 0;
  }
  const backend_stream_ops *ops = ops_of(c);
  write_req *r;
  uint16_t bid;
  if (len <= UINT32_MAX && ops->pin(c->base->backend_state, data, len, &bid)) {
    r = conn_new_req(c, data, len, 0);
    if (!r) {
      ops->unpin(c->base->backend_state, bid);
      return RILL_ENOMEM;
    }
    r->pin = static_cast<uint32_t>(bid) + 1;
  } else {
    size_t cap;
    char *copy = copy_take(c, len, &cap);
    r = copy ? conn_new_req(c, copy, len, 0) : nullptr;
    if (!r) {
      if (copy)
        mem_free(copy);
      return RILL_ENOMEM;
    }
    std::memcpy(copy, data, len);
    r->owned = copy;
    r->cap = static_cast<uint32_t>(cap);  // 0: a large copy, freed, nothing appends
  }
  conn_enqueue(c, r);
  conn_uring_kick(c, false);
  return 0;
}

}  // namespace rill::detail
