// The write side of a connection.
//
// A write goes straight to the kernel when nothing is queued, so the common
// case copies nothing and allocates nothing; only what the kernel does not
// take is queued (copied for rill_conn_write, referenced for
// rill_conn_write_ref). The queue goes out with sendmsg and many iovecs at
// once, with MSG_NOSIGNAL so a vanished peer is an EPIPE, never a SIGPIPE
// (G21). When writing fails, the queue is dropped and the user learns how
// much never reached the kernel (G20, G21).
//
// Requests complete in the order they were made: a ref write of zero bytes
// queues behind earlier ones like any other and completes after them.
//
// rill_conn_try_write is the write that never queues (libuv's uv_try_write):
// the kernel takes what it takes from the caller's buffer and the rest stays
// the caller's. The blocking facade builds its zero-copy write from it and a
// ref write of the rest (lib/fiber/net_conn.cpp says why).
#include <sys/socket.h>
#include <sys/uio.h>
#include <cerrno>
#include <cstring>
#include <new>

#include "core/alloc.h"
#include "core/clock.h"
#include "net/net_impl.h"


namespace rill::detail {
namespace {

constexpr int max_iov = 64;

// Through the transport: out of line, so that a plain socket's send (every
// message's path) keeps its values in fewer registers (callgrind's echo:
// 5 user instructions per round trip).
__attribute__((noinline)) ssize_t transport_send(rill_conn *c, const char *data, size_t len) {
  iovec iov{const_cast<char *>(data), len};
  ssize_t n;
  do {
    n = c->transport()->writev(c, &iov, 1);
  } while (n < 0 && errno == EINTR);
  return n;
}

// conn_sys_writev's contract (net_impl.h) for one buffer.
ssize_t send_some(rill_conn *c, const char *data, size_t len) {
  if (c->has(conn_flag::has_transport))
    return transport_send(c, data, len);
  ssize_t n;
  do {
    n = send(c->fd, data, len, RILL_MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  return n;
}

bool is_again(int err) { return err == EAGAIN || err == EWOULDBLOCK; }

bool deadline_passed(const rill_conn *c) {
  uint64_t deadline = c->write_deadline();
  return deadline && monotonic_ns() >= deadline;  // G29: the real time
}

// What a write must refuse before touching the socket.
int write_precheck(const rill_conn *c) {
  int err = conn_check_open(c);
  if (err)
    return err;
  // Nothing in the way, the case on every message: one test of the bits.
  if (!(c->flags & (conn_flag::write_shut | conn_flag::shut_write_wanted | conn_flag::write_timed_out |
                    conn_flag::has_write_deadline)) &&
      !c->write_error)
    return 0;
  if (c->has(conn_flag::write_shut) || c->has(conn_flag::shut_write_wanted))
    return -EPIPE;
  if (c->write_error)
    return c->write_error;
  if (c->has(conn_flag::write_timed_out) || deadline_passed(c))
    return RILL_ETIMEOUT;
  return 0;
}

write_req *req_of(list_node *n) { return conn_req_of(n); }

}  // namespace

void conn_release_req(rill_conn *c, write_req *r) {
  if (!r->done) {  // a copy, or a receive buffer pinned for an io_uring send
    if (r->owned && r->cap)
      conn_uring_copy_free(c, r->owned, r->cap);
    else if (r->owned)
      mem_free(r->owned);
    if (r->pin)
      backend_streams(c->base->backend)->unpin(c->base->backend_state, static_cast<uint16_t>(r->pin - 1));
    net_get(c->base)->write_reqs.give(r);
  } else {
    // Ref writes report their completion from the loop (rill_conn_write_ref
    // made the conn_rare that lists them).
    c->rare->done.push_back(&r->link);
    conn_notify(c);
  }
}

void conn_enqueue(rill_conn *c, write_req *r) {
  c->queue->reqs.push_back(&r->link);
  c->queue->bytes += r->len - r->offset;
  if (!c->has(conn_flag::above_high) && c->queued() > c->high_water()) {
    c->set(conn_flag::above_high, true);
    c->set(conn_flag::notify_high, true);
    conn_notify(c);
  }
  conn_update_io(c);
  conn_deadline_update(c);
}

// Called once the queue emptied or shrank.
void conn_after_progress(rill_conn *c) {
  if (c->has(conn_flag::above_high) && c->queued() <= c->low_water()) {
    c->set(conn_flag::above_high, false);
    c->set(conn_flag::notify_low, true);
    conn_notify(c);
  }
  if (!c->queue_empty() || conn_out_pending(c))
    return;  // not drained yet: write interest is still on
  // On io_uring most writes go through the ring's queue and so end here;
  // the report is skipped when nobody listens (an echo then pays for none).
  if (!c->has(conn_flag::uring_send) || c->events()->on_drain) {
    c->set(conn_flag::notify_drain, true);
    conn_notify(c);
  }
  if (c->has(conn_flag::shut_write_wanted) && !c->has(conn_flag::write_shut)) {
    c->set(conn_flag::write_shut, true);
    conn_sys_shutdown_write(c);
  }
  if (c->lifetime.closing() && c->has(conn_flag::graceful) && conn_transport_closing(c)) {
    conn_update_io(c);  // its last bytes (TLS's close_notify) go first
    conn_deadline_update(c);
  } else if (c->lifetime.closing()) {
    conn_finish_close(c);
  } else {
    conn_update_io(c);
  }
}

namespace {

// Takes `r` from the pool with the first `taken` bytes already written.
write_req *take_req(rill_conn *c, const char *data, size_t len, size_t taken) {
  auto *r = static_cast<write_req *>(net_get(c->base)->write_reqs.take());
  if (!r)
    return nullptr;
  new (r) write_req{};
  r->data = data;
  r->len = len;
  r->offset = taken;
  return r;
}

}  // namespace

// take_req, and makes the queue the request will wait on.
write_req *conn_new_req(rill_conn *c, const char *data, size_t len, size_t taken) {
  if (!conn_queue_get(c))
    return nullptr;
  return take_req(c, data, len, taken);
}

namespace {

// Tries the kernel directly; returns bytes taken or a negative error.
// Forced inline: it is every message's path, and out of line (where the
// compiler put it once the transport's checks grew it) it cost the echo
// 20 user instructions per round trip (callgrind.sh: 464 -> 444).
__attribute__((always_inline)) inline ssize_t write_direct(rill_conn *c, const char *data, size_t len) {
  if (!c->queue_empty())
    return 0;
  ssize_t n = send_some(c, data, len);
  if (n >= 0) {
    c->written += static_cast<uint64_t>(n);
    if (conn_out_pending(c)) {  // the transport flushes the rest on writability
      conn_update_io(c);
      conn_deadline_update(c);
    }
    return n;
  }
  if (is_again(errno))
    return 0;
  int err = -errno;
  if (err == -EPIPE || err == -ECONNRESET)
    c->write_error = err;
  return err;
}

// Queues a copy of what the kernel did not take. Out of line: the message
// that goes straight out (the common case) then pays for none of it.
__attribute__((noinline)) int queue_copy(rill_conn *c, const char *rest, size_t len) {
  if (!conn_rare_get(c))
    return RILL_ENOMEM;
  char *copy = static_cast<char *>(mem_alloc(len));
  write_req *r = copy ? conn_new_req(c, copy, len, 0) : nullptr;
  if (!r) {
    mem_free(copy);
    return RILL_ENOMEM;  // what was taken did go out: rill_conn_bytes_written() tells
  }
  std::memcpy(copy, rest, len);
  r->owned = copy;
  conn_enqueue(c, r);
  return 0;
}

}  // namespace

void conn_on_writable(rill_conn *c) {
  // The transport's bytes (conn_out_pending) go first, with the queue's or
  // alone (writev of nothing).
  if (c->queue_empty() && !conn_out_pending(c))
    return;
  if (c->has(conn_flag::uring_send) && conn_uring_on_writable(c))
    return;
  while (!c->queue_empty() || conn_out_pending(c)) {
    iovec iov[max_iov];
    int count = 0;
    size_t total = 0;
    // front() is null when only the transport's bytes are left.
    for (list_node *n = c->queue->reqs.front(); n && n != &c->queue->reqs.head && count < max_iov;
         n = n->next) {
      write_req *r = req_of(n);
      if (r->len == r->offset)
        continue;  // zero bytes: completes in its turn below
      iov[count].iov_base = const_cast<char *>(r->data + r->offset);
      iov[count].iov_len = r->len - r->offset;
      total += iov[count].iov_len;
      count++;
    }
    ssize_t n = 0;
    if (count || conn_out_pending(c)) {
      do {
        n = conn_sys_writev(c, iov, count);
      } while (n < 0 && errno == EINTR);
    }
    if (n < 0) {
      if (is_again(errno))
        break;
      int err = -errno;
      c->write_error = err;
      conn_fail_queue(c, err, err);
      if (c->lifetime.closing())
        conn_finish_close(c);
      return;
    }
    size_t left = static_cast<size_t>(n);
    c->written += left;
    if (count)  // else only the transport's bytes went, and c->queue may be no_queue
      c->queue->bytes -= left;
    // Complete every request the kernel took whole, in order; a zero-byte
    // one completes as soon as everything before it did.
    while (write_req *r = req_of(c->queue->reqs.front())) {
      size_t chunk = r->len - r->offset;
      if (left < chunk) {
        r->offset += left;
        break;
      }
      left -= chunk;
      r->offset = r->len;
      list::remove(&r->link);
      conn_release_req(c, r);
    }
    if (static_cast<size_t>(n) < total || conn_out_pending(c))
      break;  // the kernel is full; wait for the next readiness
  }
  conn_after_progress(c);
}

void conn_fail_queue(rill_conn *c, int err, int report) {
  // An io_uring send in flight reads its head: that stays queued until the
  // send completes (cancelled now), and fails then.
  write_req *busy = nullptr;
  if (c->has(conn_flag::uring_send) && !conn_fd_closed(c) && conn_uring_settle(c)) {
    busy = req_of(c->queue->reqs.pop_front());
    if (!busy->status) {
      busy->status = err;
      c->queue->bytes -= busy->len - busy->offset;  // counted as unsent below
    }
    conn_uring_send_cancel(c);
  }
  size_t unsent = c->queued() + (busy ? busy->len - busy->offset : 0);
  while (write_req *r = req_of(c->queue->reqs.pop_front())) {
    r->status = err;
    conn_release_req(c, r);
  }
  if (c->queue != &no_queue)  // the shared empty queue is never written
    c->queue->bytes = 0;
  if (busy)
    c->queue->reqs.push_back(&busy->link);
  c->set(conn_flag::above_high, false);
  if (c->has(conn_flag::shut_write_wanted) && (!c->has(conn_flag::write_shut) || c->transport()) &&
      !conn_fd_closed(c)) {
    // The flush failed; the half-close the user asked for still happens
    // (a transport's FIN that waited behind its own bytes goes now).
    c->set(conn_flag::write_shut, true);
    conn_sys_shutdown_write(c);
  }
  // Only a queued write fails with a report, and queueing made the
  // conn_rare (queue_copy, rill_conn_write_ref).
  if (report && c->rare) {
    c->rare->notify_write_error = report;
    c->rare->notify_unsent = unsent;
    conn_notify(c);
  }
  conn_update_io(c);
}

// Reports the ref writes done so far, in order. A callback may close the
// connection; the caller holds it, and the ones still listed are reported
// all the same (each request gets its one completion).
void conn_report_writes(rill_conn *c) {
  if (!c->rare)
    return;
  while (write_req *r = req_of(c->rare->done.pop_front())) {
    rill_write_cb done = r->done;
    void *arg = r->arg;
    int status = r->status;
    size_t written = r->offset;
    net_get(c->base)->write_reqs.give(r);
    done(c, status, written, arg);
  }
}

}  // namespace rill::detail

using namespace rill::detail;

extern "C" {

int rill_conn_write(rill_conn *conn, const void *data, size_t len) {
  int err = write_precheck(conn);
  if (err)
    return err;
  if (len == 0)
    return 0;
  if (!data)
    return RILL_EINVAL;
  auto *bytes = static_cast<const char *>(data);
  if (conn->has(conn_flag::uring_send))
    return conn_uring_write(conn, bytes, len);
  ssize_t n = write_direct(conn, bytes, len);
  if (n < 0)
    return static_cast<int>(n);
  size_t taken = static_cast<size_t>(n);
  if (taken == len)
    return 0;
  return queue_copy(conn, bytes + taken, len - taken);
}

int rill_conn_write_ref(rill_conn *conn, const void *data, size_t len, rill_write_cb done, void *arg) {
  if (!done)
    return RILL_EINVAL;
  int err = write_precheck(conn);
  if (err)
    return err;
  if (!data && len)
    return RILL_EINVAL;
  // Taken from the pool first: after the kernel has the bytes, running out
  // of memory could no longer be reported honestly. Without io_uring the
  // queue's block is only reserved: the write the kernel takes whole, the
  // usual one, needs no queue, and the connection stays on no_queue.
  if (!conn_rare_get(conn))
    return RILL_ENOMEM;
  auto *bytes = static_cast<const char *>(data);
  write_req *r = conn->has(conn_flag::uring_send) ? conn_new_req(conn, bytes, len, 0)
                 : conn_queue_reserve(conn)       ? take_req(conn, bytes, len, 0)
                                                  : nullptr;
  if (!r)
    return RILL_ENOMEM;
  r->done = done;
  r->arg = arg;
  if (conn->has(conn_flag::uring_send)) {
    // The caller's bytes stay valid until done: the send reads them.
    if (len == 0 && conn->queue_empty()) {
      conn_release_req(conn, r);
    } else {
      conn_enqueue(conn, r);
      conn_uring_kick(conn, false);
    }
    return 0;
  }
  ssize_t n = len ? write_direct(conn, r->data, len) : 0;
  if (n < 0) {
    net_get(conn->base)->write_reqs.give(r);
    return static_cast<int>(n);
  }
  r->offset = static_cast<size_t>(n);
  if (r->offset == len && conn->queue_empty()) {
    conn_release_req(conn, r);  // done already; reported from the loop
  } else {
    // Behind earlier writes, even with zero bytes. The block reserved
    // above: nothing since took it, so this cannot fail.
    conn_queue_get(conn);
    conn_enqueue(conn, r);
  }
  return 0;
}

ssize_t rill_conn_try_write(rill_conn *conn, const void *data, size_t len) {
  int err = write_precheck(conn);
  if (err)
    return err;
  if (len == 0)
    return 0;
  if (!data)
    return RILL_EINVAL;
  // Nothing queued: the bytes go in order (write_direct takes none otherwise).
  return write_direct(conn, static_cast<const char *>(data), len);
}

size_t rill_conn_write_queued(const rill_conn *conn) { return conn ? conn->queued() : 0; }

uint64_t rill_conn_bytes_written(const rill_conn *conn) { return conn ? conn->written : 0; }

uint64_t rill_conn_bytes_read(const rill_conn *conn) { return conn ? conn->read_total : 0; }

}  // extern "C"
