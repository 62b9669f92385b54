// Sends on the io_uring backend (backend.h, backend_stream_ops): a
// descriptor in recv mode may have one IORING_OP_SEND in flight.
//
// A send is only written to the submission queue when its owner asks; the
// next wait's io_uring_enter submits it together with every other send the
// loop iteration's callbacks made, so a busy loop still makes one system
// call per iteration for all its connections. A socket with room completes
// the send inside that enter; one without waits in the kernel (poll armed
// by io_uring itself) and completes later.
//
// The completion is kept in the descriptor's state (send_res) and reported
// as RILL_WRITE through the backlog, as a receive's queue is reported as
// RILL_READ, until the owner reaps it. While a send is in flight or not yet
// reaped, RILL_WRITE asks for no readiness poll. Only one send at a time:
// the owner's queue then needs no per-send bookkeeping here, and its order
// is the order of the bytes on the wire.
//
// The owner must keep the bytes valid until it reaped the completion. For
// bytes on_read is being shown (an echo), it may pin the receive buffer
// instead of copying: the buffer then goes back to the kernel when the last
// send reading it ends, not when on_read returns.
//
// A send that would go alone in its enter costs more than send(2) (its
// completion makes the enter return at once, and a second enter waits):
// send_alone() tells the owner to call send(2) itself for the first write
// after a wait that reported at most one event, when no send was queued
// since (io_uring.cpp's wait sets it, send_queue and send_alone clear it).
//
// There is no sequence in a send's user_data: the owner never drops a
// descriptor (set_mode(none)) with a send in flight, it waits for the
// completion; after fork() the child's ring is new, and a ring traded for
// another thread forgets its sends (io_uring.cpp, rebuild_shared).
#include <sys/socket.h>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "core/backend/io_uring_impl.h"
#include "rill/io.h"

namespace rill::detail::uring {

void sends_probe(uring_state *st) {
  // RILL_IO_URING_SENDS=0: connections send with send(2) as on epoll (for
  // comparing; docs/io_uring.md). Receives must run for sends to.
  const char *env = std::getenv("RILL_IO_URING_SENDS");
  st->send_ok = st->recv_ok && !(env && std::strcmp(env, "0") == 0);
}

void sends_complete(uring_state *st, const io_uring_cqe &cqe) {
  uint32_t fd = static_cast<uint32_t>(cqe.user_data);
  if (fd >= st->fds.size())
    return;
  fd_state &s = st->fds[fd];
  if (!s.send_in_flight)
    return;  // the ring was traded meanwhile: the owner sends again
  s.send_in_flight = false;
  s.send_cancelling = false;
  s.send_done = true;
  s.send_res = cqe.res;
  backlog_add(st, static_cast<int>(fd), s);
}

bool sends_enabled(void *state) { return static_cast<uring_state *>(state)->send_ok; }

int send_queue(void *state, int fd, const void *data, size_t len) {
  auto *st = static_cast<uring_state *>(state);
  if (fd < 0 || static_cast<size_t>(fd) >= st->fds.size() || st->r.fd < 0)
    return -ENOTSUP;
  fd_state &s = st->fds[fd];
  if (s.mode != stream_mode::recv || !st->send_ok)
    return -ENOTSUP;
  if (s.send_in_flight || s.send_done)
    return -EBUSY;
  io_uring_sqe *sqe = get_sqe(st->r);
  if (!sqe)
    return -ENOMEM;
  sqe->opcode = IORING_OP_SEND;
  sqe->fd = fd;
  sqe->addr = reinterpret_cast<uint64_t>(data);
  // One send takes at most what the kernel takes at once anyway; a short
  // one is continued by the owner.
  sqe->len = len > 0x7ffff000u ? 0x7ffff000u : static_cast<uint32_t>(len);
  sqe->msg_flags = MSG_NOSIGNAL;
  sqe->user_data = make_user_data(kind_send, fd, 0);
  s.send_in_flight = true;
  st->send_alone = false;  // a write after it shares its enter
  if (s.in_flight && (s.armed & RILL_WRITE))
    mark_dirty(st, fd);  // a write poll stood in for the send: drop it
  return 0;
}

int send_reap(void *state, int fd, int *res) {
  auto *st = static_cast<uring_state *>(state);
  if (fd < 0 || static_cast<size_t>(fd) >= st->fds.size())
    return send_idle;
  fd_state &s = st->fds[fd];
  if (s.send_in_flight)
    return send_busy;
  if (!s.send_done)
    return send_idle;
  s.send_done = false;
  *res = s.send_res;
  // Mostly the owner sends again at once, which asks for no poll either;
  // if it does not and still wants RILL_WRITE, a poll stands in.
  if (s.want & RILL_WRITE)
    mark_dirty(st, fd);
  return send_reaped;
}

void send_cancel(void *state, int fd) {
  auto *st = static_cast<uring_state *>(state);
  if (fd < 0 || static_cast<size_t>(fd) >= st->fds.size())
    return;
  fd_state &s = st->fds[fd];
  if (!s.send_in_flight || s.send_cancelling)
    return;
  io_uring_sqe *sqe = get_sqe(st->r);
  if (!sqe)
    return;  // it completes by itself, if later
  sqe->opcode = IORING_OP_ASYNC_CANCEL;
  sqe->fd = -1;
  sqe->addr = make_user_data(kind_send, fd, 0);
  sqe->user_data = make_user_data(kind_cancel, -1, 0);
  s.send_cancelling = true;
}

bool send_alone(void *state) {
  auto *st = static_cast<uring_state *>(state);
  if (!st->send_alone)
    return false;
  st->send_alone = false;  // a second write of the iteration goes to the ring, batched
  return st->r.fd >= 0;
}

bool send_pin(void *state, const void *data, size_t len, uint16_t *bid) {
  return buffer_pin(static_cast<uring_state *>(state), static_cast<const char *>(data), len, bid);
}

void send_unpin(void *state, uint16_t bid) { buffer_unpin(static_cast<uring_state *>(state), bid); }

}  // namespace rill::detail::uring
