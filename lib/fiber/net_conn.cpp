// Blocking reads and writes on a connection, for fibers (G12-G25).
//
// The facade keeps reading started only while a fiber waits in
// rill_net_read(): what arrives with nobody waiting stays held by the
// connection (bounded, G27), and the next read gets it at once. A write goes
// to rill_conn_write(), which hands the kernel what it takes and queues the
// rest; the writer parks until the queue drains or fails. Each direction has
// a FIFO lock, so concurrent readers never share bytes and each write stays
// contiguous on the wire (G25), as Go's fdMutex guarantees.
#include <cstring>

#include "fiber/net_impl.h"

namespace rill::detail {
namespace {

void release(rill_net_conn *c) {
  if (!life_release(c->lifetime))
    return;
  mem_free(c->spill);
  destroy(c);
}

using hold = held<rill_net_conn, release>;

bool deadline_passed(uint64_t deadline) {
  return deadline && rill_time_now() >= deadline;
}

void wake(rill_fiber *&slot, int status) {
  if (rill_fiber *f = slot) {
    slot = nullptr;
    fiber_unpark(f, status);
  }
}

// Makes the spill buffer hold at least `n` bytes; false when out of memory.
bool reserve_spill(rill_net_conn *c, size_t n) {
  if (n <= c->spill_cap)
    return true;
  void *p = mem_realloc(c->spill, n);
  if (!p)
    return false;
  c->spill = static_cast<char *>(p);
  c->spill_cap = n;
  return true;
}

size_t on_read(rill_conn *conn, const char *data, size_t len, int status, void *arg) {
  auto *c = static_cast<rill_net_conn *>(arg);
  size_t used = 0;
  if (c->reader && len) {
    used = len < c->read_cap ? len : c->read_cap;
    std::memcpy(c->read_buf, data, used);
    c->read_got = used;
  }
  size_t rest = len - used;
  if (status == 0) {
    // What the reader leaves stays with the connection, and comes again on
    // the next read. Should the end come meanwhile, those bytes move to the
    // spill buffer: its room is reserved now, so the end needs no memory.
    // Out of memory, reading stops (below) with the bytes still held by
    // the connection: the next read tries again, and nothing is lost.
    if (rest == 0 && c->spill_cap > 0) {
      mem_free(c->spill);
      c->spill = nullptr;
      c->spill_cap = 0;
    } else if (rest > 0) {
      (void)reserve_spill(c, rest);
    }
  } else if (status != RILL_ETIMEOUT) {
    // The end: reading stops for good, so keep what the reader did not take.
    c->read_end = status;
    if (rest > 0) {
      if (reserve_spill(c, rest)) {
        std::memcpy(c->spill, data + used, rest);
        c->spill_len = rest;
      } else {
        c->read_end = RILL_ENOMEM;  // cannot happen with the reserve; say so if it does
      }
    }
    used = len;
  }
  if (c->reader) {
    int result = c->read_got ? 0 : status;
    wake(c->reader, result);
  }
  if (status == 0)
    rill_conn_read_stop(conn);  // nobody waits any more
  return used;
}

void on_drain(rill_conn *, void *arg) { wake(static_cast<rill_net_conn *>(arg)->writer, 0); }

void on_write_error(rill_conn *, int err, size_t, void *arg) {
  wake(static_cast<rill_net_conn *>(arg)->writer, err);
}

// The connection under the handle is gone: CLOSED, and its reference goes.
void on_close(rill_conn *, void *arg) {
  auto *c = static_cast<rill_net_conn *>(arg);
  c->conn = nullptr;
  c->lifetime.state = life_state::closed;
  release(c);
}

const rill_conn_events facade_events = {on_read, on_drain, nullptr, nullptr, on_write_error, on_close};

// Entry checks shared by every call that may park.
int check_enter(const rill_net_conn *c) {
  if (!c)
    return RILL_EINVAL;
  if (!rill_fiber_current())
    return RILL_ENOTFIBER;
  if (c->lifetime.closing())
    return RILL_ECLOSED;
  return 0;
}

ssize_t take_spill(rill_net_conn *c, void *buf, size_t len) {
  size_t n = c->spill_len - c->spill_off;
  if (n > len)
    n = len;
  std::memcpy(buf, c->spill + c->spill_off, n);
  c->spill_off += n;
  return static_cast<ssize_t>(n);
}

ssize_t read_locked(rill_net_conn *c, void *buf, size_t len) {
  if (c->lifetime.closing())
    return RILL_ECLOSED;
  if (c->spill_off < c->spill_len)
    return take_spill(c, buf, len);
  if (c->read_end)
    return c->read_end;
  if (deadline_passed(c->read_deadline))
    return RILL_ETIMEOUT;  // Go checks the deadline before reading
  c->reader = rill_fiber_current();
  c->read_buf = static_cast<char *>(buf);
  c->read_cap = len;
  c->read_got = 0;
  rill_conn_read_start(c->conn);
  int status = fiber_park();
  c->reader = nullptr;
  return c->read_got ? static_cast<ssize_t>(c->read_got) : status;
}

int write_locked(rill_net_conn *c, const void *buf, size_t len, size_t *written) {
  uint64_t before = c->conn ? rill_conn_bytes_written(c->conn) : 0;
  int err;
  if (c->lifetime.closing())
    err = RILL_ECLOSED;
  else if (deadline_passed(c->write_deadline))
    err = RILL_ETIMEOUT;
  else
    err = rill_conn_write(c->conn, buf, len);
  if (!err && rill_conn_write_queued(c->conn) > 0) {
    // The kernel is full: wait while the queue drains (G19).
    c->writer = rill_fiber_current();
    err = fiber_park();
    c->writer = nullptr;
  }
  uint64_t after = c->conn ? rill_conn_bytes_written(c->conn) : c->written_at_close;
  if (written)
    *written = err ? static_cast<size_t>(after - before) : len;
  return err;
}

}  // namespace

rill_net_conn *net_conn_wrap(rill_conn *conn) {
  auto *c = make<rill_net_conn>();
  if (!c)
    return nullptr;
  c->conn = conn;
  c->base = rill_conn_base(conn);
  life_hold(c->lifetime);  // the connection's reference, until on_close
  rill_conn_local_addr(conn, c->local_addr, sizeof c->local_addr);
  rill_conn_remote_addr(conn, c->remote_addr, sizeof c->remote_addr);
  rill_conn_start(conn, &facade_events, c);
  rill_conn_read_stop(conn);  // read only while a fiber waits
  return c;
}

}  // namespace rill::detail

using namespace rill::detail;

extern "C" {

ssize_t rill_net_read(rill_net_conn *c, void *buf, size_t len) {
  int err = check_enter(c);
  if (err)
    return err;
  if (len == 0)
    return 0;  // G17: no syscall, no wait
  if (!buf)
    return RILL_EINVAL;
  hold inside(c);  // across the parks: a close or free meanwhile frees nothing
  if ((err = fiber_lock_acquire(c->read_lock)) != 0)
    return err;
  ssize_t result = read_locked(c, buf, len);
  fiber_lock_release(c->read_lock);
  return result;
}

int rill_net_write(rill_net_conn *c, const void *buf, size_t len, size_t *written) {
  if (written)
    *written = 0;
  int err = check_enter(c);
  if (err)
    return err;
  if (len == 0)
    return 0;
  if (!buf)
    return RILL_EINVAL;
  hold inside(c);
  if ((err = fiber_lock_acquire(c->write_lock)) != 0)
    return err;
  err = write_locked(c, buf, len, written);
  fiber_lock_release(c->write_lock);
  return err;
}

int rill_net_close(rill_net_conn *c) {
  if (!c)
    return RILL_EINVAL;
  if (c->lifetime.closing())
    return RILL_ECLOSED;
  c->lifetime.state = life_state::closing;
  c->written_at_close = rill_conn_bytes_written(c->conn);
  // Go: a Close wakes every goroutine blocked on the connection.
  wake(c->reader, RILL_ECLOSED);
  wake(c->writer, RILL_ECLOSED);
  fiber_wake_all(c->read_lock.waiters, RILL_ECLOSED);
  fiber_wake_all(c->write_lock.waiters, RILL_ECLOSED);
  // What an interrupted write had not handed to the kernel is dropped, so
  // its *written stays the truth (Go's Close does the same). on_close
  // follows from the loop and drops the connection's reference.
  return rill_conn_close_now(c->conn);
}

int rill_net_close_write(rill_net_conn *c) {
  if (!c)
    return RILL_EINVAL;
  if (c->lifetime.closing())
    return RILL_ECLOSED;
  return rill_conn_close_write(c->conn);
}

void rill_net_conn_free(rill_net_conn *c) {
  if (!c || c->user_released)
    return;
  if (!c->lifetime.closing())
    rill_net_close(c);
  c->user_released = true;
  release(c);
}

int rill_net_set_deadline(rill_net_conn *c, int which, uint64_t when) {
  if (!c)
    return RILL_EINVAL;
  if (c->lifetime.closing())
    return RILL_ECLOSED;
  int err = rill_conn_set_deadline(c->conn, which, when);
  if (err)
    return err;
  if (which & RILL_DEADLINE_READ)
    c->read_deadline = when;
  if (which & RILL_DEADLINE_WRITE)
    c->write_deadline = when;
  return 0;
}

#define RILL_NET_SETTER(name, ...)                  \
  if (!c)                                           \
    return RILL_EINVAL;                             \
  return c->lifetime.closing() ? RILL_ECLOSED : name(c->conn, __VA_ARGS__)

int rill_net_set_no_delay(rill_net_conn *c, int on) { RILL_NET_SETTER(rill_conn_set_no_delay, on); }
int rill_net_set_keep_alive(rill_net_conn *c, int on, uint64_t period) {
  RILL_NET_SETTER(rill_conn_set_keep_alive, on, period);
}
int rill_net_set_linger(rill_net_conn *c, int seconds) { RILL_NET_SETTER(rill_conn_set_linger, seconds); }
int rill_net_set_read_buffer(rill_net_conn *c, int bytes) { RILL_NET_SETTER(rill_conn_set_read_buffer, bytes); }
int rill_net_set_write_buffer(rill_net_conn *c, int bytes) {
  RILL_NET_SETTER(rill_conn_set_write_buffer, bytes);
}

int rill_net_local_addr(const rill_net_conn *c, char *buf, size_t size) {
  if (!c || !buf || std::strlen(c->local_addr) >= size)
    return RILL_EINVAL;
  std::strcpy(buf, c->local_addr);
  return static_cast<int>(std::strlen(buf));
}

int rill_net_remote_addr(const rill_net_conn *c, char *buf, size_t size) {
  if (!c || !buf || std::strlen(c->remote_addr) >= size)
    return RILL_EINVAL;
  std::strcpy(buf, c->remote_addr);
  return static_cast<int>(std::strlen(buf));
}

int rill_net_fd(const rill_net_conn *c) {
  if (!c)
    return RILL_EINVAL;
  return c->lifetime.closing() ? RILL_ECLOSED : rill_conn_fd(c->conn);
}

int rill_net_format_error(const rill_net_conn *c, const char *op, int err, char *buf, size_t size) {
  if (!c || !op)
    return RILL_EINVAL;
  bool syscall_error = err > -10000;
  const char *call = syscall_error && (!std::strcmp(op, "read") || !std::strcmp(op, "write")) ? op : nullptr;
  return rill_format_op_error(buf, size, op, c->conn ? rill_conn_network(c->conn) : "tcp",
                              c->local_addr[0] ? c->local_addr : nullptr,
                              c->remote_addr[0] ? c->remote_addr : nullptr, call, err);
}

}  // extern "C"
