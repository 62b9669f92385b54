// The read side of a connection.
//
// Data is read into the base's shared buffer and shown to on_read from
// there, or into the buffer a waiting fiber lends (read_target.h). Only
// bytes the user leaves unused are copied into a buffer of the
// connection's own ("held"), and new input is then appended behind them so
// the user sees one contiguous run. A connection that never leaves bytes
// unused holds no buffer; one that does keeps a small one (4 KiB) for the
// next partial message, and gives a larger one back once it is empty, to
// the base's few spares (net_state), where the next connection that needs
// a large one finds it without an allocation. Held
// bytes are bounded by read_max (G27): at the bound, reading pauses and TCP
// pushes back on the peer. The held buffer's fields are in conn_rare
// (net_impl.h): most connections never hold bytes, and an idle connection
// then carries no room for them (issue 12); one that does keeps its
// conn_rare, so holding allocates nothing per message.
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include <cerrno>
#include <cstring>

#include "core/alloc.h"
#include "net/net_impl.h"

namespace rill::detail {
namespace {

constexpr size_t held_keep_max = 4096;

// Keeps an emptied large buffer among the base's spares if there is room;
// false when the caller must free it.
bool spare_put(rill_base *base, char *data, size_t cap) {
  auto *net = static_cast<net_state *>(base->net);
  if (!net || cap <= held_keep_max || net->spare_count == net_state::spares_max ||
      net->spare_bytes + cap > net_state::spare_bytes_max)
    return false;
  net->spares[net->spare_count++] = {data, cap};
  net->spare_bytes += cap;
  return true;
}

void held_buffer_free(rill_base *base, char *data, size_t cap) {
  if (!spare_put(base, data, cap))
    mem_free(data);
}

// Gives the connection the smallest spare that holds `need` bytes, its held
// bytes moved over; false when none does.
bool spare_take(rill_conn *c, conn_rare *r, size_t need) {
  auto *net = static_cast<net_state *>(c->base->net);
  if (!net || net->spare_count == 0)
    return false;
  int best = -1;
  for (int i = 0; i < net->spare_count; i++)
    if (net->spares[i].cap >= need && (best < 0 || net->spares[i].cap < net->spares[best].cap))
      best = i;
  if (best < 0)
    return false;
  net_state::spare_buffer spare = net->spares[best];
  net->spares[best] = net->spares[--net->spare_count];
  net->spare_bytes -= spare.cap;
  if (r->held) {
    std::memcpy(spare.data, r->held, r->held_len);
    held_buffer_free(c->base, r->held, r->held_cap);
  }
  conn_set_held_buffer(c, spare.data, static_cast<uint32_t>(spare.cap));
  return true;
}

}  // namespace

// Makes room for `need` held bytes; false when out of memory.
bool conn_reserve_held(rill_conn *c, size_t need) {
  conn_rare *r = conn_rare_get(c);
  if (!r)
    return false;
  if (need <= r->held_cap)
    return true;
  if (spare_take(c, r, need))
    return true;
  size_t cap = need < held_keep_max ? held_keep_max : need;
  if (cap < 2 * size_t{r->held_cap})
    cap = 2 * size_t{r->held_cap};  // a large message gathered over many reads grows it a few times only
  if (cap > c->read_max())
    cap = c->read_max();
  char *p = static_cast<char *>(mem_realloc(r->held, cap));
  if (!p)
    return false;
  conn_set_held_buffer(c, p, static_cast<uint32_t>(cap));
  return true;
}

// Keeps what on_read left of the `len` bytes it was shown (`used` of them
// used), unless the connection was closed meanwhile.
void conn_keep_unused(rill_conn *c, const char *data, size_t len, size_t used, bool data_is_held) {
  if (conn_fd_closed(c))
    return;
  if (used > len)
    used = len;
  size_t rest = len - used;
  if (data_is_held) {
    conn_rare *r = c->rare;  // holding made it
    if (used)
      std::memmove(r->held, r->held + used, rest);
    r->held_len = static_cast<uint32_t>(rest);
  } else if (rest) {
    if (!conn_reserve_held(c, rest)) {
      // The bytes are lost, so the stream ends here. on_read hears it from
      // the loop; the callback above may have swapped the callbacks to a
      // table without on_read, and then the next one with on_read hears it.
      c->set(conn_flag::read_finished, true);
      c->set(conn_flag::notify_read_enomem, true);
      conn_notify(c);
      return;
    }
    std::memcpy(c->rare->held, data + used, rest);
    c->rare->held_len = static_cast<uint32_t>(rest);
  }
  // on_read stopped reading and started it again (a coroutine resumed from
  // it that reads again, say): what it left comes again at once, as the
  // bytes held at any other read_start() do, not only with new input.
  if (c->held_len() && c->has(conn_flag::read_restarted) && c->has(conn_flag::read_wanted)) {
    c->set(conn_flag::redeliver, true);
    conn_notify(c);
  }
  // A small buffer stays for the next partial message (no allocation per
  // message); a large one goes, so an idle connection holds little.
  if (c->rare && c->rare->held_len == 0 && c->rare->held_cap > held_keep_max)
    conn_release_held(c);
  c->set(conn_flag::read_full, c->held_len() >= c->read_max());
}

void conn_deliver(rill_conn *c, const char *data, size_t len, bool data_is_held) {
  conn_keep_unused(c, data, len, conn_show(c, data, len), data_is_held);
}

namespace {

// Reads behind the held bytes, so on_read sees one run. The kernel fills
// the held buffer's free room first and the shared buffer after it, and
// only bytes that landed in the shared buffer make the held one grow: a
// partial record left each time costs no allocation (the held buffer was
// once grown to read_max here, and freed again when emptied: a malloc, a
// realloc and a free per message).
void read_behind_held(rill_conn *c) {
  conn_rare *r = c->rare;  // bytes are held, so it exists (and stays: c is held)
  size_t room = c->read_max() - r->held_len;
  size_t in_held = r->held_cap - r->held_len;
  if (in_held > room)
    in_held = room;
  size_t in_shared = room - in_held;
  if (in_shared > net_state::read_buffer_size)
    in_shared = net_state::read_buffer_size;
  char *shared = net_get(c->base)->read_buffer;
  iovec iov[2] = {{r->held + r->held_len, in_held}, {shared, in_shared}};
  ssize_t n;
  do {
    n = conn_sys_readv(c, iov, 2);
  } while (n < 0 && errno == EINTR);
  if (n > 0) {
    c->read_total += static_cast<uint64_t>(n);
    size_t got = static_cast<size_t>(n);
    size_t overflow = got > in_held ? got - in_held : 0;
    r->held_len += static_cast<uint32_t>(got - overflow);
    if (overflow) {
      if (!conn_reserve_held(c, r->held_len + overflow)) {
        conn_finish_read(c, RILL_ENOMEM);  // the bytes are lost: the stream ends here
        return;
      }
      std::memcpy(r->held + r->held_len, shared, overflow);
      r->held_len += static_cast<uint32_t>(overflow);
    }
    conn_deliver(c, r->held, r->held_len, true);
  } else if (n == 0) {
    conn_finish_read(c, RILL_EOF);
  } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
    conn_finish_read(c, -errno);
  }
  if (!conn_fd_closed(c))
    conn_update_io(c);
}

}  // namespace

void conn_finish_read(rill_conn *c, int status) {
  c->set(conn_flag::read_finished, true);
  conn_update_io(c);
  c->events()->on_read(c, c->held(), c->held_len(), status, c->arg);
  if (!conn_fd_closed(c))
    conn_release_held(c);
}

void conn_release_held(rill_conn *c) {
  conn_rare *r = c->rare;
  if (!r || !r->held)
    return;
  held_buffer_free(c->base, r->held, r->held_cap);
  conn_set_held_buffer(c, nullptr, 0);
  r->held_len = 0;
}

namespace {

// conn_on_readable, forced inline into conn_on_io.
__attribute__((always_inline)) inline void on_readable(rill_conn *c) {
  if (!conn_may_read(c))
    return;
  // A deadline, a held buffer, io_uring's receive: one test passes them
  // by on the common path (a plain socket read into the shared buffer).
  if (c->flags & (conn_flag::has_read_deadline | conn_flag::has_held_buffer | conn_flag::uring_recv)) {
    if (conn_read_deadline_expired(c))
      return;
    // held_len() first: read_max() loads the shared settings block, which
    // a connection holding nothing need not touch.
    if (c->held_len() && c->held_len() >= c->read_max()) {
      // No room: the held bytes must be used first (a redelivery is queued
      // by rill_conn_read_start). A read of 0 bytes here would look like EOF.
      c->set(conn_flag::read_full, true);
      conn_update_io(c);
      return;
    }
    // On io_uring the bytes come in completions; read(2) only when the
    // receive is not running (no buffers left, say).
    if (c->has(conn_flag::uring_recv) && conn_uring_on_readable(c))
      return;
    if (c->held_len()) {
      read_behind_held(c);
      return;
    }
  }
  // Into the shared buffer, or a waiting fiber's own (conn_read_target):
  // read_max bounds only what the connection holds, never the lent bytes.
  size_t room = c->read_room();
  char *dst = conn_read_dst(c, net_get(c->base)->read_buffer, &room);
  ssize_t n;
  do {
    n = conn_sys_read(c, dst, room);
  } while (n < 0 && errno == EINTR);
  if (n > 0) {
    c->read_total += static_cast<uint64_t>(n);
    size_t len = static_cast<size_t>(n);
    size_t used = conn_show(c, dst, len);
    // Everything used, nothing held and no large held buffer to give back:
    // the common case, concluded here without a call, as conn_keep_unused()
    // would.
    bool nothing_held = !c->has(conn_flag::has_held_buffer) ||
                         (c->rare->held_len == 0 && c->rare->held_cap <= held_keep_max);
    if (used >= len && nothing_held && !conn_fd_closed(c))
      c->flags &= ~conn_flag::read_full;
    else
      conn_keep_unused(c, dst, len, used, false);
  } else if (n == 0) {
    conn_finish_read(c, RILL_EOF);
  } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
    conn_finish_read(c, -errno);
  }
  if (!conn_fd_closed(c))
    conn_update_io(c);
}

}  // namespace

void conn_on_readable(rill_conn *c) { on_readable(c); }

// The embedded watcher's events (io_watch_fn: the loop holds nothing, so
// the connection holds itself before anything can close it). Here, with
// the read path, which is forced inline into it: one frame instead of two
// (callgrind's echo: 9 user instructions per round trip).
void conn_on_io(void *owner, unsigned events) {
  auto *c = static_cast<rill_conn *>(owner);
  conn_held hold(c);
  // A pipe splicing: the bytes bypass the read and write paths.
  if (conn_io_hook *hook = c->io_hook()) {
    hook->on_io(c, events, hook->arg);
    return;
  }
  // Writing first: it may finish a graceful close, which makes reading moot.
  if (events & RILL_WRITE)
    conn_on_writable(c);
  if ((events & RILL_READ) && c->lifetime.open())
    on_readable(c);
}

void conn_redeliver(rill_conn *c) {
  c->set(conn_flag::redeliver, false);
  if (c->held_len() && c->has(conn_flag::read_wanted) && !c->has(conn_flag::read_timed_out) &&
      !c->has(conn_flag::read_finished)) {
    if (conn_read_deadline_expired(c))
      return;
    conn_deliver(c, c->rare->held, c->rare->held_len, true);
    if (!conn_fd_closed(c))
      conn_update_io(c);
  }
}

}  // namespace rill::detail
