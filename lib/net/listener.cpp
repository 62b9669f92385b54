// Listening sockets and the accept loop (G3, G26).
//
// Each readiness accepts at most a bounded batch, so one busy listener cannot
// starve the other descriptors of the base. When the process runs out of
// descriptors (EMFILE, ENFILE) the pending connection cannot be taken, and a
// level-triggered poller would report the listener ready again at once: a
// busy loop. Instead the listener reports the error, stops watching and
// retries after a back-off (5 ms doubling to 1 s, as Go's http.Server does),
// so it keeps running and accepts again once descriptors are free.
//
// The lifetime is core/lifetime.h's: on_accept runs with the listener held,
// so the callback may close it; the close stops everything at once, and the
// release after the callback frees it. A listener has no close report, so
// it is CLOSED from the close call on.
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/alloc.h"
#include "net/net_impl.h"
#include "net/op_error.h"

struct rill_listener {
  rill_base *base;
  int fd;
  rill::detail::net_kind kind;
  rill_io *io = nullptr;
  rill_timer *backoff = nullptr;
  uint64_t backoff_delay = 0;
  rill::detail::life lifetime;
  bool paused = false;
  bool uring = false;  // accepts in io_uring completions (listener_uring.cpp)
  rill_accept_cb on_accept;
  void *arg;
  rill_socket_config conn_opts{};
  // Accepted connections inherit the listener's TCP options (Linux copies
  // the listening socket's), so accepting sets none.
  bool options_inherited = false;
  // The address every accepted connection has as its own, when the
  // listener is bound to one; 0 for a wildcard (the kernel tells each).
  socklen_t local_len = 0;
  sockaddr_storage local{};
  char addr[RILL_ADDRSTRLEN] = "";
  char unlink_path[RILL_ADDRSTRLEN] = "";
};

namespace rill::detail {
namespace {

constexpr int accepts_per_wakeup = 32;
constexpr uint64_t backoff_min = 5 * RILL_MSEC;
constexpr uint64_t backoff_max = RILL_SEC;

// An address that stands for all of the host's: accepted connections each
// have their own local address then.
bool is_wildcard(const sockaddr_storage &ss) {
  if (ss.ss_family == AF_INET)
    return reinterpret_cast<const sockaddr_in &>(ss).sin_addr.s_addr == htonl(INADDR_ANY);
  if (ss.ss_family == AF_INET6)
    return IN6_IS_ADDR_UNSPECIFIED(&reinterpret_cast<const sockaddr_in6 &>(ss).sin6_addr);
  return false;  // a Unix socket's path is its connections' too
}

bool out_of_descriptors(int err) {
  return err == -EMFILE || err == -ENFILE || err == -ENOBUFS || err == -ENOMEM;
}

void update_watch(rill_listener *l) {
  bool on = !l->paused && !(l->backoff && rill_timer_active(l->backoff));
  if (on)
    rill_io_start(l->io, RILL_READ);
  else
    rill_io_stop(l->io);
  // A stopped watcher keeps its kernel interest for a while; an accept
  // running meanwhile would take connections the listener must leave.
  if (l->uring)
    listener_uring_want(l->base, l->fd, on);
}

void on_backoff(rill_timer *, void *arg) { update_watch(static_cast<rill_listener *>(arg)); }

void release(rill_listener *l) {
  if (life_release(l->lifetime))
    destroy(l);
}

// Returns false if the callback closed the listener.
bool report(rill_listener *l, rill_conn *c, int status) {
  l->on_accept(l, c, status, l->arg);
  return l->lifetime.open();
}

void on_readable(rill_io *, int, unsigned, void *arg) {
  auto *l = static_cast<rill_listener *>(arg);
  held<rill_listener, release> hold(l);
  for (int i = 0; i < accepts_per_wakeup && !l->paused; i++) {
    conn_addrs known;
    sockaddr_storage peer;
    socklen_t peer_len;
    int fd = l->uring ? listener_uring_accept(l->base, l->fd, &peer, &peer_len)
                      : socket_accept(l->fd, &peer, &peer_len);
    if (fd < 0) {
      if (fd == -EAGAIN || fd == -EWOULDBLOCK)
        return;
      if (fd == -EINTR || fd == -ECONNABORTED)
        continue;  // G26: a connection reset before it was taken; try the next
      if (out_of_descriptors(fd)) {
        l->backoff_delay = l->backoff_delay ? l->backoff_delay * 2 : backoff_min;
        if (l->backoff_delay > backoff_max)
          l->backoff_delay = backoff_max;
        if (l->backoff || rill_timer_new(l->base, on_backoff, l, &l->backoff) == 0)
          rill_timer_start(l->backoff, l->backoff_delay, 0);
        update_watch(l);
      }
      report(l, nullptr, fd);
      return;
    }
    l->backoff_delay = 0;
    rill_conn *c;
    int err = 0;
    if (is_tcp(l->kind) && !l->options_inherited)
      err = socket_apply_tcp_defaults(fd, &l->conn_opts);
    if (peer_len > 0) {
      known.remote = &peer;
      known.remote_len = peer_len;
    }
    if (l->local_len > 0) {
      known.local = &l->local;
      known.local_len = l->local_len;
    }
    if (!err)
      err = conn_create(l->base, fd, l->kind, &l->conn_opts, &c, &known);
    if (err) {
      socket_close(fd);
      if (!report(l, nullptr, err))
        return;
      continue;
    }
    if (!report(l, c, 0))
      return;
  }
}

// unlink_stale: a socket file is in the way of bind(). It is removed only
// when a connect to it is refused (nobody serves it) and it is a socket.
// Returns 0 when the path is free to bind again. When the probe cannot even
// be made (-EMFILE ...) nothing is known about the file, so it stays, and
// the probe's error is returned; a file somebody serves gives -EADDRINUSE.
int remove_stale_socket(const sockaddr_storage &ss, socklen_t len) {
  auto *un = reinterpret_cast<const sockaddr_un *>(&ss);
  int probe = socket_open(AF_UNIX, SOCK_STREAM);
  if (probe < 0)
    return probe;
  int rc = connect(probe, reinterpret_cast<const sockaddr *>(&ss), len);
  int connect_err = rc < 0 ? errno : 0;
  socket_close(probe);
  if (connect_err == ENOENT)
    return 0;  // gone meanwhile: bind may simply be tried again
  if (connect_err != ECONNREFUSED)
    return -EADDRINUSE;  // answered, busy (EAGAIN), or not ours to judge
  struct stat st;
  if (lstat(un->sun_path, &st) < 0 || !S_ISSOCK(st.st_mode))
    return -EADDRINUSE;
  if (unlink(un->sun_path) < 0 && errno != ENOENT)
    return -EADDRINUSE;
  return 0;
}

int bind_and_listen(rill_listener *l, const char *network, const char *address,
                    const rill_socket_config *opts, const sockaddr_storage &ss, socklen_t len) {
  int fd = l->fd;
  int err = 0;
  if (is_tcp(l->kind)) {
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
      return -errno;
    if (ss.ss_family == AF_INET6) {
      // G6: "tcp" is dual-stack, "tcp6" IPv6 only.
      int v6only = l->kind == net_kind::tcp6;
      setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only);
    }
  }
  if (opts && opts->reuse_port) {
#ifdef SO_REUSEPORT
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0)
      return -errno;
#else
    return RILL_ENOSYS;
#endif
  }
  if (opts && opts->control && (err = opts->control(fd, network, address, opts->control_arg)) < 0)
    return err;
  auto *un = reinterpret_cast<const sockaddr_un *>(&ss);
  bool is_path = l->kind == net_kind::unix_stream && un->sun_path[0] != '\0';
  if (bind(fd, reinterpret_cast<const sockaddr *>(&ss), len) < 0) {
    err = -errno;
    if (err != -EADDRINUSE || !is_path || !opts || !opts->unlink_stale)
      return err;
    if ((err = remove_stale_socket(ss, len)) != 0)
      return err;
    if (bind(fd, reinterpret_cast<const sockaddr *>(&ss), len) < 0)
      return -errno;
  }
  // The file is ours from here: any failure until rill_listen() returns
  // removes it (rill_listen's error path too, through unlink_path), and
  // never a file this call did not create.
  if (is_path)
    std::snprintf(l->unlink_path, sizeof l->unlink_path, "%s", un->sun_path);
  int backlog = opts && opts->backlog > 0 ? opts->backlog : socket_listen_backlog();
  if (listen(fd, backlog) < 0) {
    err = -errno;
    if (is_path) {
      unlink(l->unlink_path);
      l->unlink_path[0] = '\0';
    }
    return err;
  }
  return 0;
}

}  // namespace
}  // namespace rill::detail

using namespace rill::detail;

extern "C" {

int rill_listen(rill_base *base, const char *network, const char *address,
                const rill_socket_config *options, rill_accept_cb on_accept, void *arg,
                rill_listener **out) {
  if (!base || !on_accept || !out || !address)
    return RILL_EINVAL;
  net_kind kind;
  int err = parse_network(network, &kind);
  if (err)
    return err;
  sockaddr_storage ss;
  socklen_t len;
  if (is_tcp(kind) && address[0] == '\0')
    address = ":0";  // Go listens on every address, at a port the kernel picks
  if ((err = parse_address(kind, address, &ss, &len)) != 0)
    return err;
  if (!net_get(base))
    return RILL_ENOMEM;
  rill_listener *l = make<rill_listener>();
  if (!l)
    return RILL_ENOMEM;
  l->base = base;
  l->kind = kind;
  l->on_accept = on_accept;
  l->arg = arg;
  if (options) {
    l->conn_opts = *options;
    l->conn_opts.control = nullptr;
    l->conn_opts.local_address = nullptr;
  }
  l->fd = socket_open(ss.ss_family, SOCK_STREAM);
  if (l->fd < 0) {
    err = l->fd;
    destroy(l);
    return err;
  }
  err = bind_and_listen(l, network, address, options, ss, len);
  if (!err) {
    socklen_t alen = sizeof ss;
    if (getsockname(l->fd, reinterpret_cast<sockaddr *>(&ss), &alen) == 0 && !is_wildcard(ss)) {
      l->local = ss;
      l->local_len = alen;
    }
#ifdef __linux__
    l->options_inherited = is_tcp(kind) && socket_set_tcp_defaults(l->fd, &l->conn_opts) == 0;
#endif
    if (kind == net_kind::unix_stream) {
      std::strncpy(l->addr, address, sizeof l->addr - 1);
      if (address[0] != '@')
        std::strncpy(l->unlink_path, address, sizeof l->unlink_path - 1);
    } else {
      format_address(reinterpret_cast<sockaddr *>(&ss), alen, l->addr, sizeof l->addr);
    }
    err = rill_io_new(base, l->fd, on_readable, l, &l->io);
    if (!err)
      l->uring = listener_uring_attach(base, l->fd);
  }
  if (!err)
    err = rill_io_start(l->io, RILL_READ);
  if (err) {
    if (l->uring)
      listener_uring_detach(base, l->fd);
    rill_io_free(l->io);
    socket_close(l->fd);
    if (l->unlink_path[0])
      unlink(l->unlink_path);  // set only once this call created the file
    destroy(l);
    return err;
  }
  *out = l;
  return 0;
}

int rill_listener_format_error(const rill_listener *l, const char *op, int err, char *buf, size_t size) {
  if (!l)
    return RILL_EINVAL;
  return format_listener_error(buf, size, op, network_name(l->kind), l->addr, err);
}

int rill_listener_addr(const rill_listener *l, char *buf, size_t size) {
  if (!l || !buf)
    return RILL_EINVAL;
  if (!l->lifetime.open())
    return RILL_ECLOSED;
  size_t n = std::strlen(l->addr);
  if (n >= size)
    return RILL_EINVAL;
  std::memcpy(buf, l->addr, n + 1);
  return static_cast<int>(n);
}

int rill_listener_port(const rill_listener *l) {
  if (!l)
    return RILL_EINVAL;
  if (!l->lifetime.open())
    return RILL_ECLOSED;
  if (!is_tcp(l->kind))
    return 0;
  sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (getsockname(l->fd, reinterpret_cast<sockaddr *>(&ss), &len) < 0)
    return -errno;
  return ss.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6 *>(&ss)->sin6_port)
                                  : ntohs(reinterpret_cast<sockaddr_in *>(&ss)->sin_port);
}

int rill_listener_fd(const rill_listener *l) {
  if (!l)
    return RILL_EINVAL;
  return l->lifetime.open() ? l->fd : RILL_ECLOSED;
}

int rill_listener_stop(rill_listener *l) {
  if (!l)
    return RILL_EINVAL;
  if (!l->lifetime.open())
    return RILL_ECLOSED;
  l->paused = true;
  update_watch(l);
  return 0;
}

int rill_listener_start(rill_listener *l) {
  if (!l)
    return RILL_EINVAL;
  if (!l->lifetime.open())
    return RILL_ECLOSED;
  l->paused = false;
  update_watch(l);
  return 0;
}

void rill_listener_free(rill_listener *l) {
  if (!l || !l->lifetime.open())
    return;
  l->lifetime.state = life_state::closed;  // no close report to wait for
  if (l->uring)
    listener_uring_detach(l->base, l->fd);
  rill_io_free(l->io);
  l->io = nullptr;
  rill_timer_free(l->backoff);
  l->backoff = nullptr;
  socket_close(l->fd);
  l->fd = -1;
  if (l->unlink_path[0])
    unlink(l->unlink_path);
  release(l);  // the owner's reference; a running on_accept still holds one
}

}  // extern "C"
