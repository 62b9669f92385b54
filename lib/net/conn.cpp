// A connection's life: creation, the one io watcher that serves both
// directions, the reports it owes its user, and closing.
//
// Reports that must not run inside an API call (drain, water marks, write
// errors, completed ref writes, the close) are collected as flags and
// delivered by the connection's pending node, in that order, the close last.
// The lifetime is core/lifetime.h's: every dispatch holds the connection, so
// a callback may close it (or any other) and the code after the callback
// still finds it alive; after on_close the owner's reference goes, and the
// last release frees it.
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cerrno>
#include <cstring>

#include "core/alloc.h"
#include "net/net_impl.h"
#include "net/op_error.h"

using namespace rill::detail;

namespace {

void on_io(rill_io *, int, unsigned events, void *arg) {
  auto *c = static_cast<rill_conn *>(arg);
  conn_held hold(c);
  if (c->io_hook) {  // a pipe splicing: the bytes bypass the read and write paths
    c->io_hook->on_io(c, events, c->io_hook->arg);
    return;
  }
  // Writing first: it may finish a graceful close, which makes reading moot.
  if (events & RILL_WRITE)
    conn_on_writable(c);
  if ((events & RILL_READ) && c->lifetime.open())
    conn_on_readable(c);
}

void report_close(rill_conn *c) {
  conn_report_writes(c);  // ref writes dropped by the close
  c->lifetime.state = life_state::closed;
  if (c->events.on_close)
    c->events.on_close(c, c->arg);
  conn_release(c);  // the owner's reference; the dispatch still holds c
}

// One pass over what the connection owes its user. Reports queued while it
// runs (a redelivery asked for from on_read, say) queue the node again and
// run in a later pass, so the loop's other work keeps its turn.
void run_pending(pending_node *node) {
  rill_conn *c = RILL_CONTAINER_OF(node, rill_conn, pending);
  c->set(conn_flag::report_queued, false);
  struct release_queued {  // the queued report's reference, now the dispatch's
    rill_conn *c;
    ~release_queued() { conn_release(c); }
  } hold{c};
  if (c->lifetime.state == life_state::closed)
    return;
  conn_report_writes(c);
  const rill_conn_events &ev = c->events;
  if (c->has(conn_flag::notify_read_enomem) && ev.on_read && c->lifetime.open()) {
    c->set(conn_flag::notify_read_enomem, false);
    ev.on_read(c, nullptr, 0, RILL_ENOMEM, c->arg);
  }
  if (c->has(conn_flag::redeliver) && c->lifetime.open())
    conn_redeliver(c);
  if (c->has(conn_flag::notify_high)) {
    c->set(conn_flag::notify_high, false);
    if (ev.on_high_water && c->lifetime.open())
      ev.on_high_water(c, c->queued, c->arg);
  }
  if (c->notify_write_error) {
    int err = c->notify_write_error;
    c->notify_write_error = 0;
    if (ev.on_write_error && c->lifetime.state != life_state::closed)
      ev.on_write_error(c, err, c->notify_unsent, c->arg);
  }
  if (c->has(conn_flag::notify_low)) {
    c->set(conn_flag::notify_low, false);
    if (ev.on_low_water && c->lifetime.open())
      ev.on_low_water(c, c->queued, c->arg);
  }
  if (c->has(conn_flag::notify_drain)) {
    c->set(conn_flag::notify_drain, false);
    // An earlier report (a ref write's completion) may have queued more:
    // the drain is then told when that empties in turn.
    if (ev.on_drain && c->lifetime.open() && c->queue.empty())
      ev.on_drain(c, c->arg);
  }
  if (conn_fd_closed(c) && c->lifetime.state == life_state::closing)
    report_close(c);
}

// Reads and throws away what the peer sent and nobody will read, so that
// the close sends FIN: a socket closed with unread input makes the kernel
// reset the connection and drop what it had not yet sent. Bounded, so a
// peer that keeps sending cannot hold the loop; what arrives after the
// close still resets (net.h says so). Not into the shared read buffer: a
// close from inside on_read must leave on_read's `data` intact.
void discard_unread_input(rill_conn *c) {
  constexpr size_t discard_max = 1024 * 1024;
  char buf[16 * 1024];
  for (size_t total = 0; total < discard_max;) {
    ssize_t n = read(c->fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return;
    total += static_cast<size_t>(n);
  }
}

// The connection's addresses as text, "" where the kernel does not say.
void format_addresses(int fd, char (&local)[RILL_ADDRSTRLEN], char (&remote)[RILL_ADDRSTRLEN]) {
  sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (getsockname(fd, reinterpret_cast<sockaddr *>(&ss), &len) == 0)
    format_address(reinterpret_cast<sockaddr *>(&ss), len, local, sizeof local);
  len = sizeof ss;
  if (getpeername(fd, reinterpret_cast<sockaddr *>(&ss), &len) == 0)
    format_address(reinterpret_cast<sockaddr *>(&ss), len, remote, sizeof remote);
}

// A connection and its address strings in one allocation (net_impl.h).
rill_conn *conn_alloc(int fd) {
  char local[RILL_ADDRSTRLEN] = "", remote[RILL_ADDRSTRLEN] = "";
  format_addresses(fd, local, remote);
  size_t local_size = std::strlen(local) + 1, remote_size = std::strlen(remote) + 1;
  void *p = mem_alloc(sizeof(rill_conn) + local_size + remote_size);
  if (!p)
    return nullptr;
  auto *c = new (p) rill_conn;
  char *tail = reinterpret_cast<char *>(c + 1);
  std::memcpy(tail, local, local_size);
  std::memcpy(tail + local_size, remote, remote_size);
  c->addrs = tail;
  return c;
}

}  // namespace

namespace rill::detail {

net_state *net_create(rill_base *base) {
  base->net = make<net_state>();
  if (base->net)
    base->net_destroy = [](rill_base *b) {
      destroy(static_cast<net_state *>(b->net));
      b->net = nullptr;
    };
  return static_cast<net_state *>(base->net);
}

int conn_create(rill_base *base, int fd, net_kind kind, const rill_socket_config *opts,
                rill_conn **out) {
  if (!net_get(base))
    return RILL_ENOMEM;
  rill_conn *c = conn_alloc(fd);
  if (!c)
    return RILL_ENOMEM;
  c->base = base;
  c->fd = fd;
  c->kind = kind;
  c->read_max = opts && opts->read_max ? opts->read_max : default_read_max;
  c->high_water = opts && opts->write_high_water ? opts->write_high_water : default_high_water;
  c->low_water = opts ? opts->write_low_water : 0;
  if (c->low_water > c->high_water)
    c->low_water = c->high_water;
  c->pending.run = run_pending;
#ifdef SO_NOSIGPIPE
  int one = 1;  // where MSG_NOSIGNAL does not exist
  setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
#endif
  int err = rill_io_new(base, fd, on_io, c, &c->io);
  if (err) {
    destroy(c);
    return err;
  }
  *out = c;
  return 0;
}

void conn_release(rill_conn *c) {
  if (!life_release(c->lifetime))
    return;
  conn_release_held(c);
  destroy(c);
}

void conn_update_io(rill_conn *c) {
  if (conn_fd_closed(c))
    return;
  unsigned want = 0;
  if (c->io_hook && c->lifetime.open()) {
    want = c->io_hook->want;
  } else {
    if (conn_may_read(c) && c->lifetime.open())
      want |= RILL_READ;
    if (!c->queue.empty())
      want |= RILL_WRITE;
  }
  // The interest rarely changes (an echo reads, writes and reads again):
  // only a change costs a call into the watcher.
  rill_io *io = c->io;
  if (want == (io->active ? io->events : 0))
    return;
  if (want)
    rill_io_start(io, want);
  else
    rill_io_stop(io);
}

void conn_notify(rill_conn *c) {
  if (c->has(conn_flag::report_queued))
    return;
  c->set(conn_flag::report_queued, true);
  life_hold(c->lifetime);
  pending_push(c->base, &c->pending);
}

void conn_finish_close(rill_conn *c) {
  if (conn_fd_closed(c))
    return;
  conn_fail_queue(c, RILL_ECANCELED, 0);
  rill_io_free(c->io);
  c->io = nullptr;
  rill_timer_free(c->deadline_timer);
  c->deadline_timer = nullptr;
  // After EOF nothing is left unread, and after a read or write error the
  // connection is broken: then there is nothing to discard.
  if (c->has(conn_flag::graceful) && !c->has(conn_flag::read_finished) && c->write_error == 0 &&
      !c->has(conn_flag::write_timed_out))
    discard_unread_input(c);
  socket_close(c->fd);
  c->fd = -1;
  // The held bytes stay until the connection is freed: a callback that
  // closed it may still be reading them (on_read's `data`).
  conn_notify(c);
}

}  // namespace rill::detail

extern "C" {

int rill_conn_start(rill_conn *conn, const rill_conn_events *events, void *arg) {
  int err = conn_check_open(conn);
  if (err)
    return err;
  conn->events = events ? *events : rill_conn_events{};
  conn->arg = arg;
  conn->set(conn_flag::read_wanted, conn->events.on_read != nullptr);
  if (conn->has(conn_flag::notify_read_enomem) && conn->has(conn_flag::read_wanted))
    conn_notify(conn);  // the error met while nobody listened
  conn_update_io(conn);
  conn_deadline_update(conn);
  return 0;
}

int rill_conn_from_fd(rill_base *base, int fd, rill_conn **out) {
  if (!base || !out)
    return RILL_EINVAL;
  int type;
  socklen_t len = sizeof type;
  if (fd < 0 || getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
    return fd < 0 ? RILL_EBADF : -errno;
  if (type != SOCK_STREAM)
    return RILL_EINVAL;
  sockaddr_storage ss;
  len = sizeof ss;
  if (getsockname(fd, reinterpret_cast<sockaddr *>(&ss), &len) < 0)
    return -errno;
  net_kind kind = ss.ss_family == AF_UNIX ? net_kind::unix_stream : net_kind::tcp;
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
    return -errno;
  if (is_tcp(kind)) {
    int err = socket_apply_tcp_defaults(fd, nullptr);
    if (err)
      return err;
  }
  return conn_create(base, fd, kind, nullptr, out);
}

int rill_conn_read_start(rill_conn *conn) {
  int err = conn_check_open(conn);
  if (err)
    return err;
  if (!conn->events.on_read)
    return RILL_EINVAL;
  if (!conn->has(conn_flag::read_wanted))
    conn->set(conn_flag::read_restarted, true);  // for deliver(): bytes on_read leaves come again
  conn->set(conn_flag::read_wanted, true);
  conn->set(conn_flag::read_full, false);
  if (conn->held_len && !conn->has(conn_flag::read_timed_out) && !conn->has(conn_flag::read_finished)) {
    conn->set(conn_flag::redeliver, true);
    conn_notify(conn);
  }
  conn_update_io(conn);
  conn_deadline_update(conn);  // a read deadline matters again
  return 0;
}

int rill_conn_read_stop(rill_conn *conn) {
  int err = conn_check_open(conn);
  if (err)
    return err;
  conn->set(conn_flag::read_wanted, false);
  conn_update_io(conn);
  return 0;
}

int rill_conn_close(rill_conn *conn) {
  int err = conn_check_open(conn);
  if (err)
    return err;
  conn->lifetime.state = life_state::closing;
  conn->set(conn_flag::graceful, true);
  conn->set(conn_flag::read_wanted, false);
  if (!conn->queue.empty() && !conn->write_error) {
    // Graceful: keep flushing; the write path or the write deadline closes.
    conn_update_io(conn);
    conn_deadline_update(conn);
  } else {
    conn_finish_close(conn);
  }
  return 0;
}

int rill_conn_close_now(rill_conn *conn) {
  int err = conn_check_open(conn);
  if (err)
    return err;
  conn->lifetime.state = life_state::closing;
  conn->set(conn_flag::read_wanted, false);
  conn_finish_close(conn);
  return 0;
}

int rill_conn_abort(rill_conn *conn) {
  // Allowed during a graceful close, to give up on the flush.
  if (!conn)
    return RILL_EINVAL;
  if (conn_fd_closed(conn))
    return RILL_ECLOSED;
  conn->lifetime.state = life_state::closing;
  conn->set(conn_flag::graceful, false);
  if (is_tcp(conn->kind)) {
    linger lg{1, 0};
    setsockopt(conn->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  }
  conn_finish_close(conn);
  return 0;
}

int rill_conn_close_write(rill_conn *conn) {
  int err = conn_check_open(conn);
  if (err)
    return err;
  if (conn->has(conn_flag::write_shut) || conn->has(conn_flag::shut_write_wanted))
    return 0;
  conn->set(conn_flag::shut_write_wanted, true);
  if (conn->queue.empty()) {
    conn->set(conn_flag::write_shut, true);
    if (shutdown(conn->fd, SHUT_WR) < 0)
      return -errno;
  }
  return 0;
}

int rill_conn_set_no_delay(rill_conn *conn, int on) {
  int err = conn_check_open(conn);
  if (err)
    return err;
  return is_tcp(conn->kind) ? socket_set_no_delay(conn->fd, on != 0) : -EOPNOTSUPP;
}

int rill_conn_set_keep_alive(rill_conn *conn, int on, uint64_t period) {
  int err = conn_check_open(conn);
  if (err)
    return err;
  if (!is_tcp(conn->kind))
    return -EOPNOTSUPP;
  return socket_set_keep_alive(conn->fd, on != 0, period ? period : default_keep_alive_period);
}

int rill_conn_set_linger(rill_conn *conn, int seconds) {
  int err = conn_check_open(conn);
  if (err)
    return err;
  linger lg{seconds >= 0, seconds >= 0 ? seconds : 0};
  return setsockopt(conn->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg) < 0 ? -errno : 0;
}

static int set_buffer(rill_conn *conn, int name, int bytes) {
  int err = conn_check_open(conn);
  if (err)
    return err;
  if (bytes <= 0)
    return RILL_EINVAL;
  return setsockopt(conn->fd, SOL_SOCKET, name, &bytes, sizeof bytes) < 0 ? -errno : 0;
}

int rill_conn_set_read_buffer(rill_conn *conn, int bytes) { return set_buffer(conn, SO_RCVBUF, bytes); }
int rill_conn_set_write_buffer(rill_conn *conn, int bytes) { return set_buffer(conn, SO_SNDBUF, bytes); }

int rill_conn_fd(const rill_conn *conn) {
  int err = conn_check_open(conn);
  return err ? err : conn->fd;
}

rill_base *rill_conn_base(const rill_conn *conn) { return conn ? conn->base : nullptr; }

const char *rill_conn_network(const rill_conn *conn) { return conn ? network_name(conn->kind) : nullptr; }

static int copy_addr(const char *addr, char *buf, size_t size) {
  size_t n = std::strlen(addr);
  if (!buf || n >= size)
    return RILL_EINVAL;
  std::memcpy(buf, addr, n + 1);
  return static_cast<int>(n);
}

int rill_conn_local_addr(const rill_conn *conn, char *buf, size_t size) {
  return conn ? copy_addr(conn->local_addr(), buf, size) : RILL_EINVAL;
}

int rill_conn_remote_addr(const rill_conn *conn, char *buf, size_t size) {
  return conn ? copy_addr(conn->remote_addr(), buf, size) : RILL_EINVAL;
}

int rill_conn_format_error(const rill_conn *conn, const char *op, int err, char *buf, size_t size) {
  if (!conn || !op)
    return RILL_EINVAL;
  return format_conn_error(buf, size, op, network_name(conn->kind), conn->local_addr(), conn->remote_addr(),
                           err);
}

}  // extern "C"
