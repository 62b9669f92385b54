// Stream operations on the io_uring backend: a multishot receive into the
// base's buffer ring, a multishot accept, and the per-descriptor queues of
// what they delivered (backend.h, backend_stream_ops).
//
// Quirks it works around:
//  - A multishot receive picks a buffer of the ring for each completion
//    and ends with -ENOBUFS when the ring is empty. The descriptor then goes
//    back to a readiness poll (its owner reads with read(2), in order,
//    because nothing is in flight) until a quarter of the buffers are back,
//    and then a receive is armed again.
//  - Cancelling a receive is asynchronous: completions with data may still
//    come before the final -ECANCELED one. They carry the operation's
//    sequence and are queued as usual, so a paused connection loses
//    nothing; only a queue dropped by set_mode(none) makes its operation's
//    later completions stale (their buffers go straight back).
//  - A buffer dropped with its queue may be the one on_read is looking at
//    (the connection was closed from on_read), so it is parked and goes
//    back to the kernel at the next wait, when no callback runs.
//  - Accepted descriptors nobody took (a listener freed with a queue, a
//    stale accept completion) are closed here, or they would leak.
//  - The buffers are the process's own memory, so a ring traded for
//    another thread (SINGLE_ISSUER) only needs them registered again; the
//    queues stay valid. After fork() the child drops its queues (the
//    parent keeps reading those sockets) and registers all of them anew.
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "core/alloc.h"
#include "core/backend/io_uring_impl.h"
#include "rill/io.h"

namespace rill::detail::uring {

// Headers of Linux 6.0 on (multishot receive, and with it buffer rings and
// multishot accept, which came in 5.19).
#if defined(IORING_RECV_MULTISHOT) && defined(IORING_ACCEPT_MULTISHOT)
#define RILL_URING_STREAMS 1
#endif

namespace {

constexpr unsigned default_buffers = 1024;
constexpr unsigned default_buffer_size = 16 * 1024;

// RILL_IO_URING_BUFFERS / RILL_IO_URING_BUFFER_SIZE (docs/io_uring.md): a
// positive number, else the default.
unsigned env_number(const char *name, unsigned fallback, unsigned lo, unsigned hi) {
  const char *v = std::getenv(name);
  if (!v || !*v)
    return fallback;
  char *end;
  unsigned long n = std::strtoul(v, &end, 10);
  if (*end || n < lo || n > hi)
    return fallback;
  return static_cast<unsigned>(n);
}

bool ensure_buffers(uring_state *st) {
  buf_ring &b = st->br;
  if (b.bufs)
    return true;
  unsigned count = env_number("RILL_IO_URING_BUFFERS", default_buffers, 1, 32768);
  unsigned pow2 = 1;
  while (pow2 < count)
    pow2 <<= 1;
  b.count = pow2;
  b.size = env_number("RILL_IO_URING_BUFFER_SIZE", default_buffer_size, 16, 1u << 20);
  b.slots_size = b.count * sizeof(io_uring_buf);
  long page = sysconf(_SC_PAGESIZE);
  if (page > 0 && b.slots_size % static_cast<size_t>(page))
    b.slots_size += static_cast<size_t>(page) - b.slots_size % static_cast<size_t>(page);
  b.bufs_size = static_cast<size_t>(b.count) * b.size;
  void *slots = mmap(nullptr, b.slots_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  void *bufs = mmap(nullptr, b.bufs_size, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (slots == MAP_FAILED || bufs == MAP_FAILED || !b.taken.resize_zeroed(b.count) || !b.pins.resize_zeroed(b.count) ||
      !b.parked.reserve(b.count) || !st->entries.reserve(b.count + 16)) {
    if (slots != MAP_FAILED)
      munmap(slots, b.slots_size);
    if (bufs != MAP_FAILED)
      munmap(bufs, b.bufs_size);
    b.count = b.size = 0;
    return false;
  }
  b.slots = static_cast<io_uring_buf *>(slots);
  b.bufs = static_cast<char *>(bufs);
  return true;
}

uint16_t *ring_tail(buf_ring &b) { return &reinterpret_cast<io_uring_buf_ring *>(b.slots)->tail; }

void add_buffer(buf_ring &b, uint16_t bid) {
  io_uring_buf &slot = b.slots[b.tail & (b.count - 1)];
  slot.addr = reinterpret_cast<uint64_t>(b.bufs + static_cast<size_t>(bid) * b.size);
  slot.len = b.size;
  slot.bid = bid;
  b.tail++;
}

void give_back(buf_ring &b, uint16_t bid) {
  if (b.taken[bid] != 1)
    return;
  if (b.pins[bid]) {
    b.taken[bid] = 2;  // a send still reads it: back when the last one ends
    return;
  }
  b.taken[bid] = 0;
  b.out--;
  if (b.registered) {
    add_buffer(b, bid);
    __atomic_store_n(ring_tail(b), b.tail, __ATOMIC_RELEASE);
  }
}

void register_buffers(uring_state *st) {
  buf_ring &b = st->br;
#ifdef RILL_URING_STREAMS
  b.tail = 0;
  for (unsigned bid = 0; bid < b.count; bid++)
    if (!b.taken[bid])
      add_buffer(b, static_cast<uint16_t>(bid));
  __atomic_store_n(ring_tail(b), b.tail, __ATOMIC_RELEASE);
  io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<uint64_t>(b.slots);
  reg.ring_entries = b.count;
  reg.bgid = 0;
  if (syscall(SYS_io_uring_register, st->r.fd, IORING_REGISTER_PBUF_RING, &reg, 1) < 0) {
    if (errno != EEXIST)  // another thread's ring: the wait trades it, then again
      b.failed = true;
    return;
  }
  b.registered = true;
  // Receives replace the readiness polls that stood in for them.
  for (size_t fd = 0; fd < st->fds.size(); fd++)
    if (st->fds[fd].mode == stream_mode::recv && (st->fds[fd].want & RILL_READ))
      mark_dirty(st, static_cast<int>(fd));
#else
  b.failed = true;
#endif
}

uint32_t entry_new(uring_state *st, const entry &e) {
  if (st->free_entry) {
    uint32_t i = st->free_entry;
    st->free_entry = st->entries[i - 1].next;
    st->entries[i - 1] = e;
    return i;
  }
  if (!st->entries.push(e))
    return 0;
  return static_cast<uint32_t>(st->entries.size());
}

void entry_free(uring_state *st, uint32_t i) {
  st->entries[i - 1].next = st->free_entry;
  st->free_entry = i;
}

void enqueue(uring_state *st, int fd, fd_state &s, int32_t res, bool has_buf, uint16_t bid) {
  uint32_t i = entry_new(st, entry{res, 0, 0, bid, has_buf});
  if (!i) {
    if (has_buf)
      give_back(st->br, bid);
    else if (s.mode == stream_mode::accept && res >= 0)
      close(res);
    s.lost = true;  // the stream cannot go on in order: it fails
  } else {
    if (s.tail)
      st->entries[s.tail - 1].next = i;
    else
      s.head = i;
    s.tail = i;
  }
  backlog_add(st, fd, s);
}

// Drops fd's queue: buffers parked until the next wait, accepted
// descriptors closed.
void drop_queue(uring_state *st, fd_state &s, bool park) {
  for (uint32_t i = s.head; i;) {
    entry &e = st->entries[i - 1];
    uint32_t next = e.next;
    if (e.has_buf) {
      if (park && st->br.registered)
        st->br.parked.push(e.bid);  // room for every buffer was reserved
      else
        give_back(st->br, e.bid);
    } else if (s.mode == stream_mode::accept && e.res >= 0) {
      close(e.res);
    }
    entry_free(st, i);
    i = next;
  }
  s.head = s.tail = 0;
  s.lost = false;
}

bool queue_cancel(ring &r, int fd, fd_state &s) {
  io_uring_sqe *sqe = get_sqe(r);
  if (!sqe)
    return false;
  sqe->opcode = IORING_OP_ASYNC_CANCEL;
  sqe->fd = -1;
  sqe->addr = make_user_data(s.mode == stream_mode::accept ? kind_accept : kind_stream, fd, s.op_seq);
  sqe->user_data = make_user_data(kind_cancel, -1, 0);
  s.op_cancelling = true;
  return true;
}

bool queue_op(ring &r, int fd, fd_state &s) {
#ifdef RILL_URING_STREAMS
  io_uring_sqe *sqe = get_sqe(r);
  if (!sqe)
    return false;
  s.op_seq++;
  sqe->fd = fd;
  if (s.mode == stream_mode::recv) {
    sqe->opcode = IORING_OP_RECV;
    sqe->ioprio = IORING_RECV_MULTISHOT;
    sqe->flags = IOSQE_BUFFER_SELECT;
    sqe->buf_group = 0;
    sqe->user_data = make_user_data(kind_stream, fd, s.op_seq);
  } else {
    sqe->opcode = IORING_OP_ACCEPT;
    sqe->ioprio = IORING_ACCEPT_MULTISHOT;
    sqe->accept_flags = SOCK_NONBLOCK | SOCK_CLOEXEC;
    sqe->user_data = make_user_data(kind_accept, fd, s.op_seq);
  }
  s.op_in_flight = true;
  s.op_cancelling = false;
  return true;
#else
  (void)r;
  (void)fd;
  (void)s;
  return true;
#endif
}

}  // namespace

void backlog_add(uring_state *st, int fd, fd_state &s) {
  if (!s.in_backlog) {
    s.in_backlog = true;
    st->backlog.push(fd);  // set_mode() reserved a place
  }
}

bool buffer_pin(uring_state *st, const char *data, size_t len, uint16_t *bid) {
  buf_ring &b = st->br;
  if (!b.bufs || data < b.bufs || data >= b.bufs + b.bufs_size)
    return false;
  size_t off = static_cast<size_t>(data - b.bufs);
  size_t i = off / b.size;
  // Only bytes on_read is being shown (the buffer is out of the kernel's
  // hands), all in one buffer.
  if (off + len > (i + 1) * b.size || b.taken[i] != 1 || b.pins[i] == UINT16_MAX)
    return false;
  b.pins[i]++;
  *bid = static_cast<uint16_t>(i);
  return true;
}

void buffer_unpin(uring_state *st, uint16_t bid) {
  buf_ring &b = st->br;
  if (bid >= b.count || !b.pins[bid] || --b.pins[bid] || b.taken[bid] != 2)
    return;
  b.taken[bid] = 1;
  give_back(b, bid);
}

void streams_probe(uring_state *st) {
#ifdef RILL_URING_STREAMS
  const char *env = std::getenv("RILL_IO_URING_STREAMS");
  if (env && std::strcmp(env, "0") == 0)
    return;  // readiness only (docs/io_uring.md)
  constexpr unsigned nr = 64;
  size_t size = sizeof(io_uring_probe) + nr * sizeof(io_uring_probe_op);
  auto *probe = static_cast<io_uring_probe *>(mem_alloc(size));
  if (!probe)
    return;
  std::memset(probe, 0, size);
  if (syscall(SYS_io_uring_register, st->r.fd, IORING_REGISTER_PROBE, probe, nr) == 0) {
    auto has = [probe](unsigned op) {
      return op <= probe->last_op && (probe->ops[op].flags & IO_URING_OP_SUPPORTED);
    };
    // No feature bit says "multishot receive" (6.0): SEND_ZC, of the
    // same release, does. A kernel that still refuses it (-EINVAL) turns
    // the receives off (streams_complete).
    bool cancel = has(IORING_OP_ASYNC_CANCEL);
    st->recv_ok = cancel && has(IORING_OP_RECV) && has(IORING_OP_SEND_ZC);
    st->accept_ok = cancel && has(IORING_OP_ACCEPT);
  }
  mem_free(probe);
#else
  (void)st;
#endif
}

bool read_by_op(const uring_state *st, const fd_state &s) {
  if (!(s.want & RILL_READ) || s.starved || s.op_ended || s.paused || s.peer_gone)
    return false;
  if (s.mode == stream_mode::recv)
    return st->recv_ok && st->br.registered;
  return s.mode == stream_mode::accept && st->accept_ok;
}

bool streams_arm(uring_state *st, int fd, fd_state &s) {
  bool want_op = read_by_op(st, s);
  if (want_op && !s.op_in_flight)
    return queue_op(st->r, fd, s);
  if (!want_op && s.op_in_flight && !s.op_cancelling)
    return queue_cancel(st->r, fd, s);
  return true;
}

bool streams_cancel(uring_state *st, int fd, fd_state &s) {
  if (s.op_in_flight && !s.op_cancelling)
    return queue_cancel(st->r, fd, s);
  return true;
}

bool streams_before_wait(uring_state *st) {
  buf_ring &b = st->br;
  st->epoch++;
  if (b.bufs && !b.registered && !b.failed && st->r.fd >= 0)
    register_buffers(st);
  for (size_t i = 0; i < b.parked.size(); i++)
    give_back(b, b.parked[i]);
  b.parked.clear();
  if (!st->starved.empty() && b.count - b.out >= (b.count >= 4 ? b.count / 4 : 1)) {
    for (size_t i = 0; i < st->starved.size(); i++) {
      fd_state &s = st->fds[st->starved[i]];
      if (s.starved && s.mode == stream_mode::recv) {
        s.starved = false;
        mark_dirty(st, st->starved[i]);
      }
    }
    st->starved.clear();
  }
  for (size_t i = 0; i < st->backlog.size(); i++) {
    const fd_state &s = st->fds[st->backlog[i]];
    if (((s.head || s.lost) && (s.want & RILL_READ)) || (s.send_done && (s.want & RILL_WRITE)))
      return true;
  }
  return false;
}

void streams_complete(uring_state *st, const io_uring_cqe &cqe) {
  bool has_buf = cqe.flags & IORING_CQE_F_BUFFER;
  auto bid = static_cast<uint16_t>(cqe.flags >> IORING_CQE_BUFFER_SHIFT);
  bool more = cqe.flags & IORING_CQE_F_MORE;
  bool accept = user_data_kind(cqe.user_data) == kind_accept;
  if (has_buf && bid < st->br.count && !st->br.taken[bid]) {
    st->br.taken[bid] = 1;
    st->br.out++;
  } else {
    has_buf = false;
  }
  uint32_t fd = static_cast<uint32_t>(cqe.user_data);
  fd_state *s = fd < st->fds.size() ? &st->fds[fd] : nullptr;
  if (!s || s->mode == stream_mode::none || (s->mode == stream_mode::accept) != accept ||
      (s->op_seq & seq_mask) != user_data_seq(cqe.user_data)) {
    // An operation whose queue was dropped: nobody wants what it brings.
    if (has_buf)
      give_back(st->br, bid);
    else if (accept && cqe.res >= 0)
      close(cqe.res);
    return;
  }
  if (!more) {
    s->op_in_flight = false;
    s->op_cancelling = false;
  }
  int res = cqe.res;
  if (res == -EINVAL && !more) {
    // The kernel does not know the multishot flag after all: readiness.
    (accept ? st->accept_ok : st->recv_ok) = false;
    if (s->want)
      mark_dirty(st, static_cast<int>(fd));
    return;
  }
  if (!accept) {
    if (res > 0 && has_buf) {
      enqueue(st, static_cast<int>(fd), *s, res, true, bid);
    } else if (res == -ENOBUFS) {
      if (!s->starved) {
        s->starved = true;
        if (!st->starved.push(static_cast<int>(fd)))
          s->starved = false;  // no memory to list it: a receive is armed again
      }
    } else if (res != -ECANCELED) {
      if (has_buf)
        give_back(st->br, bid);
      enqueue(st, static_cast<int>(fd), *s, res > 0 ? -EIO : res, false, 0);
      s->op_ended = true;  // EOF or an error: nothing follows
    }
  } else if (res >= 0) {
    enqueue(st, static_cast<int>(fd), *s, res, false, 0);
  } else if (res != -ECANCELED) {
    // EMFILE and the like: the listener's own accept(2) meets it and backs
    // off; the next start of its watcher arms the accept again.
    s->starved = true;
  }
  if (!more && s->want)
    mark_dirty(st, static_cast<int>(fd));
}

int streams_report(uring_state *st, backend_event *out, int capacity) {
  int count = 0;
  size_t kept = 0;
  for (size_t i = 0; i < st->backlog.size(); i++) {
    int fd = st->backlog[i];
    fd_state &s = st->fds[fd];
    if (!s.head && !s.lost && !s.send_done) {
      s.in_backlog = false;
      continue;
    }
    st->backlog[kept++] = fd;
    unsigned events = ((s.head || s.lost) ? s.want & RILL_READ : 0u) | (s.send_done ? s.want & RILL_WRITE : 0u);
    if (events && count < capacity && s.report_epoch != st->epoch) {
      s.report_epoch = st->epoch;
      out[count++] = backend_event{s.tag, events};
    }
  }
  while (st->backlog.size() > kept)
    st->backlog.pop_back();
  return count;
}

void streams_ring_lost(uring_state *st, bool keep_queues) {
  st->br.registered = false;
  if (keep_queues)
    return;
  for (size_t fd = 0; fd < st->fds.size(); fd++)
    drop_queue(st, st->fds[fd], false);
  for (size_t i = 0; i < st->br.parked.size(); i++)
    give_back(st->br, st->br.parked[i]);
  st->br.parked.clear();
  st->backlog.clear();
  st->starved.clear();
  st->entries.clear();
  st->free_entry = 0;
}

void streams_destroy(uring_state *st) {
  for (size_t fd = 0; fd < st->fds.size(); fd++)
    if (st->fds[fd].mode == stream_mode::accept)
      drop_queue(st, st->fds[fd], false);
  buf_ring &b = st->br;
  if (b.slots)
    munmap(b.slots, b.slots_size);
  if (b.bufs)
    munmap(b.bufs, b.bufs_size);
  b.slots = nullptr;
  b.bufs = nullptr;
}

namespace {

bool set_mode(void *state, int fd, stream_mode mode) {
  auto *st = static_cast<uring_state *>(state);
  if (fd < 0 || st->r.fd < 0 || !fd_reserve(st, fd))
    return false;
  fd_state &s = st->fds[fd];
  if (mode == stream_mode::none) {
    if (s.mode == stream_mode::none)
      return true;
    drop_queue(st, s, true);
    // The operation holds the file: the unregistration that comes next
    // (the owner frees its watcher before closing) submits the
    // cancellation at once, in its own enter; without one it goes with
    // the next wait.
    if (s.op_in_flight && !s.op_cancelling && queue_cancel(st->r, fd, s))
      st->cancel_queued = true;
    s.op_seq++;  // what it still brings is stale
    s.op_in_flight = s.op_cancelling = s.op_ended = s.starved = s.peer_gone = false;
    s.mode = stream_mode::none;
    if (s.want)
      mark_dirty(st, fd);
    return true;
  }
  if (mode == stream_mode::recv ? !st->recv_ok || !ensure_buffers(st) : !st->accept_ok)
    return false;
  if (!st->backlog.reserve(st->fds.size()))
    return false;
  drop_queue(st, s, true);
  s.op_seq++;
  s.op_in_flight = s.op_cancelling = s.op_ended = s.starved = s.paused = s.peer_gone = false;
  s.mode = mode;
  if (s.want)
    mark_dirty(st, fd);
  return true;
}

void want_read(void *state, int fd, bool on) {
  auto *st = static_cast<uring_state *>(state);
  if (fd < 0 || static_cast<size_t>(fd) >= st->fds.size())
    return;
  fd_state &s = st->fds[fd];
  if (s.paused == !on)
    return;
  s.paused = !on;
  if (on && s.mode == stream_mode::accept)
    s.starved = false;  // a refused accept is tried again when the owner asks again
  mark_dirty(st, fd);
}

int peek(void *state, int fd, const char **data) {
  auto *st = static_cast<uring_state *>(state);
  if (fd < 0 || static_cast<size_t>(fd) >= st->fds.size())
    return stream_readiness;
  fd_state &s = st->fds[fd];
  if (s.head) {
    const entry &e = st->entries[s.head - 1];
    if (!e.has_buf)
      return e.res;
    *data = st->br.bufs + static_cast<size_t>(e.bid) * st->br.size + e.off;
    return e.res - static_cast<int32_t>(e.off);
  }
  if (s.lost)
    return -ENOMEM;
  return s.op_in_flight ? stream_empty : stream_readiness;
}

void consume(void *state, int fd, size_t n) {
  auto *st = static_cast<uring_state *>(state);
  if (fd < 0 || static_cast<size_t>(fd) >= st->fds.size())
    return;
  fd_state &s = st->fds[fd];
  if (!s.head)
    return;
  uint32_t i = s.head;
  entry &e = st->entries[i - 1];
  if (e.has_buf && e.off + n < static_cast<size_t>(e.res)) {
    e.off += static_cast<uint32_t>(n);
    return;
  }
  s.head = e.next;
  if (!s.head)
    s.tail = 0;
  if (e.has_buf)
    give_back(st->br, e.bid);
  entry_free(st, i);
}

}  // namespace

}  // namespace rill::detail::uring

namespace rill::detail {
const backend_stream_ops io_uring_streams = {
    uring::set_mode,   uring::want_read,  uring::peek, uring::consume,     uring::sends_enabled,
    uring::send_queue, uring::send_reap, uring::send_cancel, uring::send_alone, uring::send_pin,
    uring::send_unpin, uring::submit_now};
}
