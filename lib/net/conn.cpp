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
#include <cstddef>
#include <cstring>

#include "core/alloc.h"
#include "net/net_impl.h"
#include "net/op_error.h"

using namespace rill::detail;

namespace {

void report_close(rill_conn *c) {
  conn_report_writes(c);  // ref writes dropped by the close
  c->lifetime.state = life_state::closed;
  if (c->events()->on_close)
    c->events()->on_close(c, c->arg);
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
  // Each report reads the table afresh: a callback may start the
  // connection again with another.
  if (c->has(conn_flag::notify_read_enomem) && c->events()->on_read && c->lifetime.open()) {
    c->set(conn_flag::notify_read_enomem, false);
    c->events()->on_read(c, nullptr, 0, RILL_ENOMEM, c->arg);
  }
  if (c->has(conn_flag::redeliver) && c->lifetime.open())
    conn_redeliver(c);
  if (c->has(conn_flag::notify_high)) {
    c->set(conn_flag::notify_high, false);
    if (c->events()->on_high_water && c->lifetime.open())
      c->events()->on_high_water(c, c->queued(), c->arg);
  }
  if (c->rare && c->rare->notify_write_error) {
    int err = c->rare->notify_write_error;
    c->rare->notify_write_error = 0;
    if (c->events()->on_write_error && c->lifetime.state != life_state::closed)
      c->events()->on_write_error(c, err, c->rare->notify_unsent, c->arg);
  }
  if (c->has(conn_flag::notify_low)) {
    c->set(conn_flag::notify_low, false);
    if (c->events()->on_low_water && c->lifetime.open())
      c->events()->on_low_water(c, c->queued(), c->arg);
  }
  if (c->has(conn_flag::notify_drain)) {
    c->set(conn_flag::notify_drain, false);
    // An earlier report (a ref write's completion) may have queued more:
    // the drain is then told when that empties in turn.
    if (c->events()->on_drain && c->lifetime.open() && c->queue_empty() && !conn_out_pending(c))
      c->events()->on_drain(c, c->arg);
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

// An address as conn_alloc keeps it, a record of a few bytes: a tag, then
// what the address's text needs. IPv4 (nearly every TCP connection) keeps
// its port and address, 6 bytes; any other family its sockaddr, with a
// length byte. The kernel not saying keeps the tag alone. An IPv4 peer of
// a dual-stack socket (::ffff:a.b.c.d) is kept as IPv4: Go's connection
// addresses show it so.
enum kept_tag : unsigned char { kept_unknown, kept_ipv4, kept_other };
constexpr size_t ipv4_bytes = offsetof(sockaddr_in, sin_zero) - offsetof(sockaddr_in, sin_port);

bool is_v4_mapped(const sockaddr_storage &ss, socklen_t len) {
  return ss.ss_family == AF_INET6 && len >= sizeof(sockaddr_in6) &&
         IN6_IS_ADDR_V4MAPPED(&reinterpret_cast<const sockaddr_in6 &>(ss).sin6_addr);
}

size_t kept_size(const sockaddr_storage &ss, socklen_t len) {
  if (len == 0)
    return 1;
  if ((ss.ss_family == AF_INET && len >= sizeof(sockaddr_in)) || is_v4_mapped(ss, len))
    return 1 + ipv4_bytes;
  return 2 + (len > sizeof ss ? sizeof ss : len);  // sockaddr_in6 is 28 bytes, sockaddr_un 110
}

unsigned char *keep_address(unsigned char *out, const sockaddr_storage &ss, socklen_t len) {
  const auto *bytes = reinterpret_cast<const unsigned char *>(&ss);
  size_t size = kept_size(ss, len);
  if (size == 1) {
    out[0] = kept_unknown;
  } else if (ss.ss_family == AF_INET && len >= sizeof(sockaddr_in)) {
    out[0] = kept_ipv4;
    std::memcpy(out + 1, bytes + offsetof(sockaddr_in, sin_port), ipv4_bytes);
  } else if (is_v4_mapped(ss, len)) {
    const auto &in6 = reinterpret_cast<const sockaddr_in6 &>(ss);
    out[0] = kept_ipv4;
    std::memcpy(out + 1, &in6.sin6_port, sizeof in6.sin6_port);
    std::memcpy(out + 1 + sizeof in6.sin6_port, in6.sin6_addr.s6_addr + 12, 4);
  } else {
    out[0] = kept_other;
    out[1] = static_cast<unsigned char>(size - 2);
    std::memcpy(out + 2, bytes, size - 2);
  }
  return out + size;
}

size_t record_size(const unsigned char *rec) {
  return rec[0] == kept_unknown ? 1 : rec[0] == kept_ipv4 ? 1 + ipv4_bytes : 2 + rec[1];
}

// The text of the address kept at `rec`, "" when unknown or unprintable.
void format_kept(const unsigned char *rec, char (&text)[RILL_ADDRSTRLEN]) {
  text[0] = '\0';
  sockaddr_storage ss{};
  auto *bytes = reinterpret_cast<unsigned char *>(&ss);
  socklen_t len;
  if (rec[0] == kept_ipv4) {
    ss.ss_family = AF_INET;
    std::memcpy(bytes + offsetof(sockaddr_in, sin_port), rec + 1, ipv4_bytes);
    len = sizeof(sockaddr_in);
  } else if (rec[0] == kept_other) {
    std::memcpy(bytes, rec + 2, rec[1]);
    len = rec[1];
  } else {
    return;
  }
  if (format_address(reinterpret_cast<sockaddr *>(&ss), len, text, sizeof text) < 0)
    text[0] = '\0';
}

const unsigned char *remote_record(const rill_conn *c) { return c->addrs() + record_size(c->addrs()); }

// A connection and its two addresses in one allocation (net_impl.h). The
// kernel is asked only for what the caller did not already know.
rill_conn *conn_alloc(int fd, const conn_addrs *known) {
  sockaddr_storage asked_local, asked_remote;
  const sockaddr_storage *local = known ? known->local : nullptr;
  const sockaddr_storage *remote = known ? known->remote : nullptr;
  socklen_t local_len = known ? known->local_len : 0, remote_len = known ? known->remote_len : 0;
  // getsockname or getpeername into `ss`: its length, 0 when the kernel does not say.
  auto ask = [fd](int (*call)(int, sockaddr *, socklen_t *), sockaddr_storage &ss) {
    socklen_t len = sizeof ss;
    return call(fd, reinterpret_cast<sockaddr *>(&ss), &len) == 0 ? len : socklen_t{0};
  };
  if (!local) {
    local = &asked_local;
    local_len = ask(getsockname, asked_local);
  }
  if (!remote) {
    remote = &asked_remote;
    remote_len = ask(getpeername, asked_remote);
  }
  void *p = mem_alloc(sizeof(rill_conn) + kept_size(*local, local_len) + kept_size(*remote, remote_len));
  if (!p)
    return nullptr;
  auto *c = new (p) rill_conn;
  unsigned char *tail = reinterpret_cast<unsigned char *>(c + 1);
  keep_address(keep_address(tail, *local, local_len), *remote, remote_len);
  return c;
}

int copy_addr(const char *addr, char *buf, size_t size) {
  size_t n = std::strlen(addr);
  if (!buf || n >= size)
    return RILL_EINVAL;
  std::memcpy(buf, addr, n + 1);
  return static_cast<int>(n);
}

}  // namespace

namespace rill::detail {

conn_queue no_queue;

conn_rare *conn_rare_get(rill_conn *c) {
  if (!c->rare)
    c->rare = make<conn_rare>();
  return c->rare;
}

conn_queue *conn_queue_get(rill_conn *c) {
  if (c->queue == &no_queue) {
    net_state *net = net_get(c->base);
    void *slot = net->queue_reserved ? net->queue_reserved : net->queues.take();
    if (!slot)
      return nullptr;
    net->queue_reserved = nullptr;
    c->queue = new (slot) conn_queue;
  }
  return c->queue;
}

bool conn_queue_reserve(rill_conn *c) {
  if (c->queue != &no_queue)
    return true;
  net_state *net = net_get(c->base);
  if (!net->queue_reserved)
    net->queue_reserved = net->queues.take();
  return net->queue_reserved != nullptr;
}

int conn_local_addr(const rill_conn *c, char *buf, size_t size) {
  char text[RILL_ADDRSTRLEN];
  format_kept(c->addrs(), text);
  return copy_addr(text, buf, size);
}

int conn_remote_addr(const rill_conn *c, char *buf, size_t size) {
  char text[RILL_ADDRSTRLEN];
  format_kept(remote_record(c), text);
  return copy_addr(text, buf, size);
}

net_state::~net_state() {
  for (int i = 0; i < spare_count; i++)
    mem_free(spares[i].data);
  if (queue_reserved)
    queues.give(queue_reserved);
}

namespace {

uint32_t clamp32(size_t n) { return n > UINT32_MAX ? UINT32_MAX : static_cast<uint32_t>(n); }

// `now` with the callbacks of `events` (nullptr: none).
conn_settings settings_with(const conn_settings &now, const rill_conn_events *events) {
  conn_settings want = now;
  want.events = events ? *events : rill_conn_events{};
  return want;
}

}  // namespace

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
                rill_conn **out, const conn_addrs *known) {
  if (!net_get(base))
    return RILL_ENOMEM;
  rill_conn *c = conn_alloc(fd, known);
  if (!c)
    return RILL_ENOMEM;
  conn_settings want{};  // no callbacks until rill_conn_start
  want.read_max = clamp32(opts && opts->read_max ? opts->read_max : default_read_max);
  want.high_water = clamp32(opts && opts->write_high_water ? opts->write_high_water : default_high_water);
  want.low_water = clamp32(opts ? opts->write_low_water : 0);
  if (want.low_water > want.high_water)
    want.low_water = want.high_water;
  want.read_room = want.read_max < net_state::read_buffer_size ? want.read_max : net_state::read_buffer_size;
  c->settings = conn_settings_intern(base, want);
  if (!c->settings) {
    destroy(c);
    return RILL_ENOMEM;
  }
  c->base = base;
  c->fd = fd;
  c->kind = kind;
  c->pending.run = run_pending;
#ifdef SO_NOSIGPIPE
  int one = 1;  // where MSG_NOSIGNAL does not exist
  setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
#endif
  int err = io_watch_add(base, fd, c, conn_on_io);
  if (err) {
    conn_settings_release(base, c->settings);
    destroy(c);
    return err;
  }
  conn_uring_attach(c);
  *out = c;
  return 0;
}

void conn_free(rill_conn *c) {
  conn_release_held(c);
  if (c->rare && c->rare->transport)
    c->rare->transport->destroy(c);
  destroy(c->rare);
  if (c->queue != &no_queue) {
    c->queue->~conn_queue();
    static_cast<net_state *>(c->base->net)->queues.give(c->queue);
  }
  conn_settings_release(c->base, c->settings);
  destroy(c);
}

void conn_set_interest(rill_conn *c, unsigned want) {
  io_watch_set(c->base, c->fd, want);
  if (c->has(conn_flag::uring_recv))
    conn_uring_want(c, want & RILL_READ);
  const conn_transport *t = c->transport();
  if (t && (want & RILL_READ) && !c->io_hook())
    t->reading(c);
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
  if (!c->queue_empty()) {
    // An io_uring send in flight still reads the head (conn_write_uring.cpp):
    // its completion, cancelled now, closes.
    conn_update_io(c);
    return;
  }
  conn_uring_detach(c);
  io_watch_remove(c->base, c->fd);
  if (c->rare) {
    rill_timer_free(c->rare->deadline_timer);
    c->rare->deadline_timer = nullptr;
  }
  // After EOF nothing is left unread, and after a read or write error the
  // connection is broken: then there is nothing to discard.
  if (c->has(conn_flag::graceful) && !c->has(conn_flag::read_finished) && c->write_error == 0 &&
      !c->has(conn_flag::write_timed_out))
    discard_unread_input(c);
  if (const conn_transport *t = c->transport())
    t->end(c, !c->has(conn_flag::aborted) && c->write_error == 0);
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
  const conn_settings *interned = conn_settings_intern(conn->base, settings_with(*conn->settings, events));
  if (!interned)
    return RILL_ENOMEM;
  conn_settings_release(conn->base, conn->settings);
  conn->settings = interned;
  conn->arg = arg;
  conn->set(conn_flag::read_wanted, conn->events()->on_read != nullptr);
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
  if (!conn->events()->on_read)
    return RILL_EINVAL;
  if (!conn->has(conn_flag::read_wanted))
    conn->set(conn_flag::read_restarted, true);  // for deliver(): bytes on_read leaves come again
  conn->set(conn_flag::read_wanted, true);
  conn->set(conn_flag::read_full, false);
  if (conn->held_len() && !conn->has(conn_flag::read_timed_out) && !conn->has(conn_flag::read_finished)) {
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
  if (!conn->write_error &&
      (!conn->queue_empty() || conn_out_pending(conn) || conn_transport_closing(conn))) {
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
  conn->set(conn_flag::aborted, true);
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
  if (conn->queue_empty()) {
    conn->set(conn_flag::write_shut, true);
    if (conn_sys_shutdown_write(conn) < 0)
      return -errno;
    // A transport may hold bytes still (a TLS close_notify the kernel did
    // not take): its FIN follows them, and writability flushes them.
    conn_update_io(conn);
    conn_deadline_update(conn);
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

int rill_conn_local_addr(const rill_conn *conn, char *buf, size_t size) {
  return conn ? conn_local_addr(conn, buf, size) : RILL_EINVAL;
}

int rill_conn_remote_addr(const rill_conn *conn, char *buf, size_t size) {
  return conn ? conn_remote_addr(conn, buf, size) : RILL_EINVAL;
}

int rill_conn_format_error(const rill_conn *conn, const char *op, int err, char *buf, size_t size) {
  if (!conn || !op)
    return RILL_EINVAL;
  char local[RILL_ADDRSTRLEN], remote[RILL_ADDRSTRLEN];
  format_kept(conn->addrs(), local);
  format_kept(remote_record(conn), remote);
  return format_conn_error(buf, size, op, network_name(conn->kind), local, remote, err);
}

}  // extern "C"
