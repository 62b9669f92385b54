// Writes of a connection on an io_uring base, as sends through the ring
// (backend.h: backend_stream_ops' send half; docs/io_uring.md).
//
// Every write is queued (conn_write.cpp's queue, the same water marks,
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
#include <cerrno>
#include <cstring>

#include "core/alloc.h"
#include "net/net_impl.h"

namespace rill::detail {
namespace {

// Smallest copy: small writes then append to one buffer and go in one send.
constexpr size_t copy_min = 1024;

const backend_stream_ops *ops_of(const rill_conn *c) { return backend_streams(c->base->backend); }

// Takes a completed send's result into account. Errors other than those of
// a head that already failed are returned (the caller fails the queue).
int take_result(rill_conn *c, int res) {
  write_req *r = conn_req_of(c->queue.front());
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
  c->queued -= n;
  r->offset += n;
  if (r->offset < r->len) {
    c->set(conn_flag::uring_short, true);  // the kernel was full; the rest goes next
  } else {
    list::remove(&r->link);
    conn_release_req(c, r);
  }
  return 0;
}

}  // namespace

void conn_uring_kick(rill_conn *c) {
  while (write_req *r = conn_req_of(c->queue.front())) {
    if (r->len == r->offset) {  // zero bytes: complete in its turn
      list::remove(&r->link);
      conn_release_req(c, r);
      continue;
    }
    int err = ops_of(c)->send(c->base->backend_state, c->fd, r->data + r->offset, r->len - r->offset);
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
  conn_uring_kick(c);
  if (!c->has(conn_flag::uring_send))
    return false;
  conn_after_progress(c);
  return true;
}

int conn_uring_write(rill_conn *c, const char *data, size_t len) {
  list_node *last = c->queue.empty() ? nullptr : c->queue.head.prev;
  write_req *tail = conn_req_of(last);
  // Not to the head: its send (in flight) was for the bytes it had, and a
  // completion short of them must mean the kernel was full.
  if (tail && last != c->queue.head.next && tail->owned && !tail->status && tail->len + len <= tail->cap) {
    std::memcpy(tail->owned + tail->len, data, len);
    tail->len += len;
    c->queued += len;
    if (!c->has(conn_flag::above_high) && c->queued > c->high_water) {
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
    size_t cap = len < copy_min ? copy_min : len;
    auto *copy = static_cast<char *>(mem_alloc(cap));
    r = copy ? conn_new_req(c, copy, len, 0) : nullptr;
    if (!r) {
      if (copy)
        mem_free(copy);
      return RILL_ENOMEM;
    }
    std::memcpy(copy, data, len);
    r->owned = copy;
    r->cap = cap <= UINT32_MAX ? static_cast<uint32_t>(cap) : 0;  // 0: nothing appends
  }
  conn_enqueue(c, r);
  conn_uring_kick(c);
  return 0;
}

}  // namespace rill::detail
