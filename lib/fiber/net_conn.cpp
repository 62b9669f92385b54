// Blocking reads and writes on a connection, for fibers (G12-G25, G32).
//
// The facade keeps reading started only while a fiber waits in
// rill_net_read(): what arrives with nobody waiting stays in the kernel
// (bounded, G27), and what the reader's buffer cannot take waits in the
// connection's spill buffer, where the next read gets it at once. A waiting
// reader lends its buffer to the connection (lib/net/read_target.h), which
// reads into it straight from the kernel (or OpenSSL): on_read then finds
// the bytes in place and copies nothing. A read never takes more than the
// reader's buffer holds, so a message larger than it stays in the kernel
// for the next reads rather than going through the spill buffer; only
// input read another way (io_uring's buffer ring, bytes the connection
// held) is copied. Each direction has a FIFO lock, so concurrent readers
// never share bytes and each write stays contiguous on the wire (G25), as
// Go's fdMutex guarantees.
//
// A write never copies the caller's bytes (G32): rill_conn_try_write() hands
// the kernel what it takes now, straight from the caller's buffer, and the
// rest becomes a ref write (rill_conn_write_ref) that the loop sends from
// that same buffer as the peer makes room, while the writer parks until it
// completes. A ref write rather than Go's loop (wake the writer on every
// writability, try again): the connection's queue already handles the write
// deadline, a peer's reset, a close and the count of bytes sent, and its
// sendmsg runs in the loop without a switch into the fiber per readiness.
// A write the kernel takes whole costs one send() and nothing more.
//
// Once rill_net_write() returns, rill never reads the caller's buffer
// again, whatever ended the write: completion, the write deadline and a
// peer's error take the ref write off the queue before its completion wakes
// the writer; a close (rill_net_close, or a free that closes) takes it off
// synchronously, in rill_conn_close_now(), before the woken writer runs; and
// running out of memory for the ref write queues nothing. On io_uring the
// ref write goes as a ring send: one in flight when the close comes is
// cancelled, and the writer wakes only at its completion (on_write_done),
// which is also when the socket closes. The writer's count comes from the
// connection's byte counter, which only it moves while it holds the write
// lock, taken once nothing can move it any more, so a partial count is exact
// (G20, G21, G23).
#include <cstring>

#include "core/fiber_slot.h"
#include "fiber/net_impl.h"
#include "fiber/sched_impl.h"
#include "net/net_impl.h"
#include "net/op_error.h"

namespace rill::detail {

// On the stack of a fiber parked in rill_net_write().
struct net_write_wait {
  rill_fiber *fiber;
  uint64_t sent_total = 0;  // the connection's byte counter when woken
};

// Bytes a read left of what came, for the next reads; the bytes follow
// this header. Reading is stopped while it holds any, so it never holds
// more than one delivery (G27's bound still holds). The buffer stays from
// message to message (no allocation per message) and goes when the reader
// has waited idle for about a second (drop_spare_spill). At the end of the
// stream what the connection still holds moves here too.
struct net_spill {
  size_t cap;
  size_t len;
  size_t off;
  char *data() { return reinterpret_cast<char *>(this + 1); }
};

namespace {

// An idle connection costs this much on top of its rill_conn and the
// fiber's stack pages (issue 9: README, "idle memory per connection"); it
// was 440 bytes with its own copy of the address strings, and 128 before the
// reader's buffer moved here from its stack. Grow it only for what an idle
// connection needs.
static_assert(sizeof(rill_net_conn) <= 144, "rill_net_conn grew: see net_impl.h on size");

void release(rill_net_conn *c) {
  if (!life_release(c->lifetime))
    return;
  mem_free(c->spill);
  mem_free(c->addrs_after_close);
  destroy(c);
}

using hold = held<rill_net_conn, release>;

bool deadline_passed(uint64_t deadline) {
  return deadline && rill_time_now() >= deadline;
}

// Counted in the base's scheduler (rill_internal_net_read_copied), which
// the caller has at hand (nullptr: the base has no fiber left to ask): a
// thread_local cost every copied read (every read on io_uring) a
// __tls_get_addr call in the shared library.
void copy_read(scheduler *s, char *to, const char *from, size_t n) {
  std::memcpy(to, from, n);
  if (s)
    s->net_read_copied += n;
}

// The reader's buffer goes back to it: the connection reads into the
// base's buffer again.
void end_lending(rill_net_conn *c) {
  if (c->conn)
    c->conn->flags &= ~conn_flag::read_target;
}

void wake_reader(rill_net_conn *c, int status) {
  if (rill_fiber *reader = c->reader) {
    c->reader = nullptr;
    end_lending(c);
    fiber_unpark(reader, status);
  }
}

void wake_writer(rill_net_conn *c, int status) {
  if (net_write_wait *w = c->writer) {
    c->writer = nullptr;
    fiber_unpark(w->fiber, status);
  }
}

// Makes the spill buffer hold at least `n` bytes; false when out of memory.
bool reserve_spill(rill_net_conn *c, size_t n) {
  if (c->spill && n <= c->spill->cap)
    return true;
  void *p = mem_realloc(c->spill, sizeof(net_spill) + n);
  if (!p)
    return false;
  bool fresh = !c->spill;
  c->spill = static_cast<net_spill *>(p);
  if (fresh)
    c->spill->len = c->spill->off = 0;
  c->spill->cap = n;
  return true;
}

void stop_reading(rill_net_conn *c) {
  c->reading = false;
  rill_conn_read_stop(c->conn);
}

// Runs when the reader on_read woke parks again, or ends: reading goes on
// only if it waits in rill_net_read() again (the echo's case). Stopping in
// on_read and starting again in the next rill_net_read() cost about 240
// instructions per message (two interest changes, the io watcher's stop and
// start, a deadline update) for an interest that did not change. Had the
// scheduler no time to run the reader before the loop polls, the next
// delivery finds nobody waiting, keeps the bytes and stops.
void check_reading(void *arg) {
  auto *c = static_cast<rill_net_conn *>(arg);
  if (c->reading && !c->reader && c->lifetime.open())
    stop_reading(c);
  release(c);
}

// on_read() for all but a delivery that fits the waiting reader's buffer.
__attribute__((noinline)) size_t on_read_rest(rill_net_conn *c, const char *data, size_t len,
                                              int status) {
  rill_fiber *reader = c->reader;
  auto *sched = reader ? reader->sched : static_cast<scheduler *>(base_fiber_slot(c->conn->base));
  size_t used = 0;
  if (reader && len) {
    used = len < c->cap ? len : c->cap;
    if (data != c->buf)  // else read into the reader's buffer already
      copy_read(sched, c->buf, data, used);
  }
  size_t got = used;
  size_t rest = len - used;
  if (status == 0) {
    // What the reader leaves goes to the spill buffer, which the next reads
    // take from without waiting: a delivery larger than the reader's
    // buffer (one read into the base's buffer: io_uring's, or what came
    // while nobody waited) costs one wake-up, and the buffer, kept from
    // message to message, no allocation. A read into the lent buffer
    // never leaves anything. Out of memory, those bytes stay with the
    // connection, which gives them again to the next read, and nothing is
    // lost.
    if (rest > 0 && reserve_spill(c, rest)) {
      copy_read(sched, c->spill->data(), data + used, rest);
      c->spill->len = rest;
      c->spill->off = 0;
      used = len;
    }
  } else if (status != RILL_ETIMEOUT) {
    // The end: reading stops for good, so keep what the reader did not take.
    c->read_end = status;
    if (rest > 0) {
      if (reserve_spill(c, rest)) {
        copy_read(sched, c->spill->data(), data + used, rest);
        c->spill->len = rest;
        c->spill->off = 0;
      } else {
        c->read_end = RILL_ENOMEM;  // cannot happen with the reserve; say so if it does
      }
    }
    used = len;
  }
  // The count goes through the wake status: `got` is at most one read's
  // worth of the base's buffer, far below INT_MAX.
  wake_reader(c, got ? static_cast<int>(got) : status);
  if (status == 0) {
    if (reader && rest == 0 && fiber_after_run(reader, check_reading, c)) {
      life_hold(c->lifetime);  // until check_reading
    } else {
      stop_reading(c);  // nobody waits, or the spill holds bytes: none come until they are read
    }
  } else if (status == RILL_ETIMEOUT) {
    c->reading = false;  // the connection stopped; the next read starts it again
  }
  return used;
}

// The facade's state from the connection's `arg`, its conn_read_target.
rill_net_conn *net_of(void *arg) {
  return static_cast<rill_net_conn *>(static_cast<conn_read_target *>(arg));
}

size_t on_read(rill_conn *conn, const char *data, size_t len, int status, void *arg) {
  rill_net_conn *c = net_of(arg);
  rill_fiber *reader = c->reader;
  // Every message of an echo: the bytes fit the buffer of the reader that
  // waits for them, and were read into it. The same steps as on_read_rest's
  // for this case, without its spill and end-of-stream paths.
  if (status != 0 || !reader || len == 0 || len > c->cap)
    return on_read_rest(c, data, len, status);
  if (data != c->buf)  // input the connection held, or io_uring's
    copy_read(reader->sched, c->buf, data, len);
  c->reader = nullptr;
  conn->flags &= ~conn_flag::read_target;  // end_lending(c), c->conn known
  fiber_unpark(reader, static_cast<int>(len));
  if (fiber_after_run(reader, check_reading, c))
    life_hold(c->lifetime);  // until check_reading
  else
    stop_reading(c);
  return len;
}

// The ref write of a parked writer ended: all sent, or the deadline or an
// error cut it short. After a close the writer is gone already (woken by
// rill_net_close), and the completion of its dropped ref write is ignored,
// unless an io_uring send was reading it: the close then left the writer
// to this completion, which comes once that send is over.
void on_write_done(rill_conn *conn, int status, size_t, void *arg) {
  auto *c = static_cast<rill_net_conn *>(arg);
  if (net_write_wait *w = c->writer) {
    w->sent_total = rill_conn_bytes_written(conn);
    wake_writer(c, c->lifetime.closing() ? RILL_ECLOSED : status);
  }
}

// Keeps the addresses the connection going away knew, for Go's
// LocalAddr/RemoteAddr and error texts after Close.
void keep_addresses(rill_net_conn *c, const rill_conn *conn) {
  char local[RILL_ADDRSTRLEN], remote[RILL_ADDRSTRLEN];
  int local_len = rill_conn_local_addr(conn, local, sizeof local);
  int remote_len = rill_conn_remote_addr(conn, remote, sizeof remote);
  if (local_len < 0 || remote_len < 0)
    return;
  auto *both = static_cast<char *>(mem_alloc(static_cast<size_t>(local_len) + remote_len + 2));
  if (!both)
    return;  // the accessors say RILL_ENOMEM from now on
  std::memcpy(both, local, static_cast<size_t>(local_len) + 1);
  std::memcpy(both + local_len + 1, remote, static_cast<size_t>(remote_len) + 1);
  c->addrs_after_close = both;
}

// The connection under the handle is gone: CLOSED, and its reference goes.
void on_close(rill_conn *conn, void *arg) {
  rill_net_conn *c = net_of(arg);
  keep_addresses(c, conn);
  c->conn = nullptr;
  c->lifetime.state = life_state::closed;
  // A TLS Close waiting for its close_notify (close_after_goodbye): the
  // write side says whether it went. No writer is left by now: the close
  // woke it, or its dropped ref write's report did, just before this one.
  int goodbye = conn->write_error                       ? conn->write_error
                : conn->has(conn_flag::write_timed_out) ? RILL_ETIMEOUT
                                                        : 0;
  wake_writer(c, goodbye);
  release(c);
}

// Writers wait for their own ref write's completion (on_write_done), not
// for the drain or write-error reports.
const rill_conn_events facade_events = {on_read, nullptr, nullptr, nullptr, nullptr, on_close};

// Entry checks shared by every call that may park; `*self` is the running
// fiber.
int check_enter(const rill_net_conn *c, rill_fiber **self) {
  if (!c)
    return RILL_EINVAL;
  if (!(*self = rill_fiber_current()))
    return RILL_ENOTFIBER;
  if (c->lifetime.closing())
    return RILL_ECLOSED;
  return 0;
}

// Local (remote false) or remote address into `buf`: from the connection
// while it lives, then from the copy on_close kept.
int copy_address(const rill_net_conn *c, bool remote, char *buf, size_t size) {
  if (!c || !buf)
    return RILL_EINVAL;
  if (c->conn)
    return remote ? rill_conn_remote_addr(c->conn, buf, size) : rill_conn_local_addr(c->conn, buf, size);
  const char *addr = c->addrs_after_close;
  if (!addr)
    return RILL_ENOMEM;
  if (remote)
    addr += std::strlen(addr) + 1;
  size_t n = std::strlen(addr);
  if (n >= size)
    return RILL_EINVAL;
  std::memcpy(buf, addr, n + 1);
  return static_cast<int>(n);
}

// The reader has waited for a while: the connection holds nothing unread
// (else the read would not wait), so the reserve is not needed until
// data comes again.
void drop_spare_spill(void *arg) {
  auto *c = static_cast<rill_net_conn *>(arg);
  if (c->spill && c->spill->len == c->spill->off) {
    mem_free(c->spill);
    c->spill = nullptr;
  }
}

ssize_t take_spill(rill_net_conn *c, rill_fiber *self, void *buf, size_t len) {
  net_spill *s = c->spill;
  size_t n = s->len - s->off;
  if (n > len)
    n = len;
  copy_read(self->sched, static_cast<char *>(buf), s->data() + s->off, n);
  s->off += n;
  return static_cast<ssize_t>(n);
}

ssize_t read_locked(rill_net_conn *c, rill_fiber *self, void *buf, size_t len) {
  if (c->lifetime.closing())
    return RILL_ECLOSED;
  // Go checks the deadline before reading, so before bytes already here.
  if (deadline_passed(c->read_deadline))
    return RILL_ETIMEOUT;
  if (c->spill && c->spill->off < c->spill->len)
    return take_spill(c, self, buf, len);
  if (c->read_end)
    return c->read_end;
  c->reader = self;
  c->buf = static_cast<char *>(buf);
  c->cap = len;
  c->conn->flags |= conn_flag::read_target;  // lent until woken (end_lending)
  if (!c->reading) {
    c->reading = true;
    rill_conn_read_start(c->conn);
  }
  // Woken by on_read (a count or the end) or a close, which unlink the
  // reader and end the lending. Only the connection's read path (into
  // `buf` directly) and on_read write into `buf` meanwhile. A spill buffer
  // kept from an earlier message goes if the wait lasts; without one, the
  // wait needs no sweep (the fiber's own stack aside).
  return fiber_park_idle(buf, len, c->spill ? drop_spare_spill : nullptr, c);
}

int write_locked(rill_net_conn *c, rill_fiber *self, const char *buf, size_t len, size_t *written) {
  if (c->lifetime.closing())
    return RILL_ECLOSED;
  if (deadline_passed(c->write_deadline))
    return RILL_ETIMEOUT;
  ssize_t taken = rill_conn_try_write(c->conn, buf, len);
  if (taken < 0)
    return static_cast<int>(taken);
  *written = static_cast<size_t>(taken);
  if (*written == len)
    return 0;
  // The counter before this write: rill_conn_try_write() adds what it
  // returns, and only this writer, holding the lock, moves it.
  uint64_t before = rill_conn_bytes_written(c->conn) - static_cast<uint64_t>(taken);
  // The kernel is full: the rest goes from `buf` as the peer reads (G19).
  int err = rill_conn_write_ref(c->conn, buf + taken, len - *written, on_write_done, c);
  if (err) {
    *written = static_cast<size_t>(rill_conn_bytes_written(c->conn) - before);
    return err;
  }
  net_write_wait w{self};
  c->writer = &w;
  err = fiber_park();  // woken by on_write_done or a close, which unlink w
  *written = static_cast<size_t>(w.sent_total - before);
  return err;
}

// How long a TLS Close waits for its close_notify: Go's tls.Conn.Close
// gives the alert a 5 s write deadline. Tests shorten it
// (rill_internal_set_close_notify_bound).
uint64_t close_notify_bound = 5 * RILL_SEC;

// Whether rill_net_close(c) sends TLS's close_notify and waits for it, as
// Go's tls.Conn.Close does: from a fiber, on a TLS connection whose write
// side is sound, with no Write in progress (Go's Close then only closes the
// socket, to break the Write). Outside a fiber nothing can wait: the alert
// goes only if the kernel takes it at once (rill_conn_close_now).
bool wants_close_notify(const rill_net_conn *c) {
  const rill_conn *conn = c->conn;
  return conn->transport() && rill_fiber_current() && !c->write_lock.held &&
         !conn->write_error && !conn->has(conn_flag::write_timed_out);
}

// Go's closeNotify, then the socket's close: the connection's graceful
// close sends close_notify behind any record tail still waiting and closes
// once the kernel took it, the bound passed (Go's write deadline, set here
// as Go sets it) or the peer reset; the fiber parks on the write side until
// on_close says which. Its result is 0, RILL_ETIMEOUT or the write error,
// and the socket is closed whatever it is (Go: "failed to send closeNotify
// alert (but connection was closed anyway)").
int close_after_goodbye(rill_net_conn *c) {
  rill_conn *conn = c->conn;
  uint64_t bound = __atomic_load_n(&close_notify_bound, __ATOMIC_RELAXED);
  int err = rill_conn_set_deadline(conn, RILL_DEADLINE_WRITE, rill_time_now() + bound);
  if (err)  // out of memory for the deadline's timer: no unbounded wait
    return rill_conn_close_now(conn);
  if ((err = rill_conn_close(conn)) != 0 || conn_fd_closed(conn))
    return err;  // the kernel took it at once; on_close follows from the loop
  hold inside(c);  // a free from another fiber meanwhile frees nothing
  net_write_wait w{rill_fiber_current()};
  c->writer = &w;
  return fiber_park();  // woken by on_close
}

}  // namespace

void net_conn_hold(rill_net_conn *c) { life_hold(c->lifetime); }
void net_conn_release(rill_net_conn *c) { release(c); }

rill_net_conn *net_conn_wrap(rill_conn *conn) {
  auto *c = make<rill_net_conn>();
  if (!c)
    return nullptr;
  c->conn = conn;
  c->is_unix = !std::strcmp(rill_conn_network(conn), "unix");
  // `arg` is the conn_read_target the read path looks for (read_target.h).
  if (rill_conn_start(conn, &facade_events, static_cast<conn_read_target *>(c)) < 0) {  // no memory
    destroy(c);
    return nullptr;
  }
  life_hold(c->lifetime);  // the connection's reference, until on_close
  rill_conn_read_stop(conn);  // read only while a fiber waits
  return c;
}

}  // namespace rill::detail

using namespace rill::detail;

extern "C" {

// For tests (test_facade_read_into): the bytes the facade's read path
// copied on the calling fiber's base, into readers' buffers or through the
// spill buffer; 0 outside a fiber. Not in the public header, and hidden in
// the shared library.
uint64_t rill_internal_net_read_copied(void) {
  rill_base *base = rill_fiber_base();
  auto *sched = base ? static_cast<scheduler *>(base_fiber_slot(base)) : nullptr;
  return sched ? sched->net_read_copied : 0;
}

const rill_conn *rill_net_tls_conn(const rill_net_conn *c) { return c ? c->conn : nullptr; }

ssize_t rill_net_read(rill_net_conn *c, void *buf, size_t len) {
  rill_fiber *self;
  int err = check_enter(c, &self);
  if (err)
    return err;
  if (len == 0)
    return 0;  // G17: no syscall, no wait
  if (!buf)
    return RILL_EINVAL;
  hold inside(c);  // across the parks: a close or free meanwhile frees nothing
  if ((err = fiber_lock_acquire(c->read_lock)) != 0)
    return err;
  ssize_t result = read_locked(c, self, buf, len);
  fiber_lock_release(c->read_lock);
  return result;
}

int rill_net_write(rill_net_conn *c, const void *buf, size_t len, size_t *written) {
  if (written)
    *written = 0;
  rill_fiber *self;
  int err = check_enter(c, &self);
  if (err)
    return err;
  if (len == 0)
    return 0;
  if (!buf)
    return RILL_EINVAL;
  hold inside(c);
  if ((err = fiber_lock_acquire(c->write_lock)) != 0)
    return err;
  size_t count = 0;
  err = write_locked(c, self, static_cast<const char *>(buf), len, &count);
  fiber_lock_release(c->write_lock);
  if (written)
    *written = count;
  return err;
}

int rill_net_close(rill_net_conn *c) {
  if (!c)
    return RILL_EINVAL;
  if (c->lifetime.closing())
    return RILL_ECLOSED;
  rill_conn *conn = c->conn;
  // Decided before the wake-ups below: whether a write is in progress.
  bool say_goodbye = wants_close_notify(c);
  c->lifetime.state = life_state::closing;
  // Go: a Close wakes every goroutine blocked on the connection.
  wake_reader(c, RILL_ECLOSED);
  fiber_wake_all(c->read_lock.waiters, RILL_ECLOSED);
  fiber_wake_all(c->write_lock.waiters, RILL_ECLOSED);
  if (say_goodbye)
    return close_after_goodbye(c);
  // A write cut short by this close must not end in a close_notify, which
  // would tell the peer it has all the data (Go's Close skips the alert
  // while a Write is in progress).
  if (conn->transport() && c->write_lock.held)
    conn->set(conn_flag::aborted, true);
  // What an interrupted write had not handed to the kernel is dropped here,
  // so rill is done with its buffer and its *written stays the truth (Go's
  // Close does the same). on_close follows from the loop and drops the
  // connection's reference.
  int err = rill_conn_close_now(conn);
  // An io_uring send reading the writer's bytes may still move some: it is
  // cancelled, and the socket stays open until its completion says how
  // many went. The writer then wakes in on_write_done with that count;
  // otherwise the count is final now (close_now reaped a completed send).
  if (c->writer && (err || conn_fd_closed(conn))) {
    c->writer->sent_total = rill_conn_bytes_written(conn);
    wake_writer(c, RILL_ECLOSED);
  }
  return err;
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
  c->user_released = true;  // before a close that may park (TLS's close_notify)
  if (!c->lifetime.closing())
    rill_net_close(c);
  release(c);
}

void rill_internal_set_close_notify_bound(uint64_t ns) {
  __atomic_store_n(&close_notify_bound, ns, __ATOMIC_RELAXED);
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
  return copy_address(c, false, buf, size);
}

int rill_net_remote_addr(const rill_net_conn *c, char *buf, size_t size) {
  return copy_address(c, true, buf, size);
}

int rill_net_fd(const rill_net_conn *c) {
  if (!c)
    return RILL_EINVAL;
  return c->lifetime.closing() ? RILL_ECLOSED : rill_conn_fd(c->conn);
}

int rill_net_format_error(const rill_net_conn *c, const char *op, int err, char *buf, size_t size) {
  if (!c || !op)
    return RILL_EINVAL;
  char local[RILL_ADDRSTRLEN] = "", remote[RILL_ADDRSTRLEN] = "";
  copy_address(c, false, local, sizeof local);
  copy_address(c, true, remote, sizeof remote);
  return format_conn_error(buf, size, op, c->is_unix ? "unix" : "tcp", local, remote,
                           err);
}

}  // extern "C"
