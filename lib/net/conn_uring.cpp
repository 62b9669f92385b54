// The read side of a connection whose socket is on an io_uring base.
//
// The backend keeps a multishot receive running on the socket while input
// is wanted (backend.h, backend_stream_ops); the kernel puts the bytes in
// buffers of the base's ring. on_read sees them there, without a copy: only
// what it leaves unused is copied into the connection's held buffer, as on
// readiness, and the ring buffer goes back to the kernel when on_read has
// returned. Held bytes come first, so input then lands behind them (a copy,
// as readv() behind the held bytes makes one on readiness).
//
// Everything else is the readiness path's (conn_read.cpp): read_max,
// deadlines, read_stop and read_start (which cancel and re-arm the receive
// through the watcher's interest; what came meanwhile stays queued in the
// backend, in order), EOF and errors. When the backend cannot run the
// receive (its ring ran dry: ENOBUFS) it says so once the queue is empty,
// and the connection reads with read(2) until the receive runs again.
#include <cstring>

#include "net/net_impl.h"

namespace rill::detail {

void conn_uring_attach(rill_conn *c) {
  const backend_stream_ops *ops = backend_streams(c->base->backend);
  if (ops && ops->set_mode(c->base->backend_state, c->fd, stream_mode::recv)) {
    c->set(conn_flag::uring_recv, true);
    c->set(conn_flag::uring_send, ops->sends(c->base->backend_state));
  }
}

void conn_uring_detach(rill_conn *c) {
  if (!c->has(conn_flag::uring_recv))
    return;
  // Callers have no send in flight: a close waits for it (conn_finish_close),
  // a pipe splices only connections with nothing queued, TLS starts on a
  // fresh one.
  c->set(conn_flag::uring_recv, false);
  c->set(conn_flag::uring_send, false);
  backend_streams(c->base->backend)->set_mode(c->base->backend_state, c->fd, stream_mode::none);
}

void conn_uring_want(rill_conn *c, bool read) {
  backend_streams(c->base->backend)->want_read(c->base->backend_state, c->fd, read);
}

bool conn_uring_quiet(const rill_conn *c) {
  if (!c->has(conn_flag::uring_recv))
    return true;
  const char *data;
  return backend_streams(c->base->backend)->peek(c->base->backend_state, c->fd, &data) == stream_readiness;
}

bool conn_uring_on_readable(rill_conn *c) {
  const backend_stream_ops *ops = backend_streams(c->base->backend);
  void *state = c->base->backend_state;
  int fd = c->fd;
  // Everything queued, while the user wants it: a queue holds buffers
  // other connections need.
  while (conn_may_read(c)) {
    if (c->held_len() >= c->read_max()) {
      c->set(conn_flag::read_full, true);
      break;
    }
    const char *data = nullptr;
    int n = ops->peek(state, fd, &data);
    if (n == stream_readiness)
      return false;
    if (n == stream_empty)
      break;
    if (n <= 0) {
      ops->consume(state, fd, 0);
      conn_finish_read(c, n == 0 ? RILL_EOF : n);
      break;
    }
    size_t len = static_cast<size_t>(n);
    size_t room = c->read_max() - c->held_len();
    size_t take = len < room ? len : room;
    c->read_total += take;
    if (c->held_len()) {
      if (!conn_reserve_held(c, c->held_len() + take)) {
        ops->consume(state, fd, take);
        conn_finish_read(c, RILL_ENOMEM);  // the bytes are lost: the stream ends here
        break;
      }
      conn_rare *r = c->rare;  // holding made it
      std::memcpy(r->held + r->held_len, data, take);
      r->held_len += static_cast<uint32_t>(take);
      ops->consume(state, fd, take);
      conn_deliver(c, r->held, r->held_len, true);
    } else {
      size_t used = conn_show(c, data, take);
      // Closed from on_read: the queue is gone with the socket (and the
      // descriptor's number may be another connection's by now).
      if (conn_fd_closed(c))
        return true;
      conn_keep_unused(c, data, take, used, false);
      ops->consume(state, fd, take);
    }
    if (conn_fd_closed(c))
      return true;
  }
  if (!conn_fd_closed(c))
    conn_update_io(c);
  return true;
}

}  // namespace rill::detail
