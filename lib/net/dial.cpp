// Dialing: a non-blocking connect completed the way Go completes it (G7-G10).
//
// connect() answers EINPROGRESS; the socket becomes writable when the
// handshake ends, and SO_ERROR says how: EINPROGRESS, EALREADY or EINTR mean
// "not yet" (wait again), EISCONN or 0 mean connected — confirmed with
// getpeername(), because a poller can report a socket writable before the
// handshake is done (Go issues 14548, 19289) — and anything else is the
// connect error.
//
// Exactly one callback per dial (G10). A timeout or a cancel closes the
// socket before reporting, so a connection that lost the race is never
// handed out half-poisoned (Go issue 16523); a success that is decided but
// not yet reported still loses to a cancel, because the user has not seen it.
#include <netinet/in.h>
#include <sys/socket.h>
#include <cerrno>
#include <cstring>

#include "core/alloc.h"
#include "net/net_impl.h"

struct rill_dialer {
  rill_base *base;
  int fd = -1;
  rill::detail::net_kind kind;
  rill_io *io = nullptr;
  rill_timer *timer = nullptr;
  rill_dial_cb on_done;
  void *arg;
  rill_net_options opts{};
  bool decided = false;      // the outcome is known
  bool reporting = false;    // the callback is running
  int status = 0;
  const char *failed_call = nullptr;  // "connect", "socket", "bind"
  char address[RILL_ADDRSTRLEN] = "";
  char local[RILL_ADDRSTRLEN] = "";
  rill::detail::pending_node pending;
};

namespace rill::detail {
namespace {

void report(rill_dialer *d) {
  rill_conn *conn = nullptr;
  if (d->status == 0) {
    int err = is_tcp(d->kind) ? socket_apply_tcp_defaults(d->fd, &d->opts) : 0;
    if (!err)
      err = conn_create(d->base, d->fd, d->kind, &d->opts, &conn);
    if (err) {
      socket_close(d->fd);
      d->status = err;
      d->failed_call = "setsockopt";
    }
    d->fd = -1;
  }
  d->reporting = true;
  d->on_done(d, conn, d->status, d->arg);
  destroy(d);
}

void report_pending(pending_node *node) {
  report(reinterpret_cast<rill_dialer *>(reinterpret_cast<char *>(node) - offsetof(rill_dialer, pending)));
}

// Records the outcome and stops waiting. A failure closes the socket now.
void decide(rill_dialer *d, int status, const char *call) {
  d->decided = true;
  d->status = status;
  d->failed_call = call;
  rill_io_free(d->io);
  d->io = nullptr;
  rill_timer_free(d->timer);
  d->timer = nullptr;
  if (status != 0) {
    socket_close(d->fd);
    d->fd = -1;
  }
}

void on_writable(rill_io *, int fd, unsigned, void *arg) {
  auto *d = static_cast<rill_dialer *>(arg);
  int soerr = 0;
  socklen_t len = sizeof soerr;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
    soerr = errno;
  switch (soerr) {
    case EINPROGRESS:
    case EALREADY:
    case EINTR:
      return;  // not yet
    case 0:
    case EISCONN: {
      sockaddr_storage peer;
      socklen_t plen = sizeof peer;
      if (getpeername(fd, reinterpret_cast<sockaddr *>(&peer), &plen) < 0)
        return;  // a spurious wake-up: the handshake is not done
      decide(d, 0, nullptr);
      break;
    }
    default:
      decide(d, -soerr, "connect");
      break;
  }
  report(d);
}

void on_timeout(rill_timer *, void *arg) {
  auto *d = static_cast<rill_dialer *>(arg);
  decide(d, RILL_ETIMEOUT, nullptr);
  report(d);
}

// Starts the connect; returns a code for errors found before any socket
// call could fail for reasons of the peer (bad local address).
int start(rill_dialer *d, const sockaddr_storage &ss, socklen_t len, const char *network,
          const char *local_address) {
  d->fd = socket_open(ss.ss_family, SOCK_STREAM);
  if (d->fd < 0) {
    int err = d->fd;
    d->fd = -1;
    decide(d, err, "socket");
    return 0;
  }
  if (d->opts.control) {
    int err = d->opts.control(d->fd, network, d->address, d->opts.control_arg);
    if (err < 0) {
      decide(d, err, nullptr);
      return 0;
    }
  }
  if (local_address) {
    sockaddr_storage local;
    socklen_t local_len;
    int err = parse_address(d->kind, local_address, &local, &local_len);
    if (!err && bind(d->fd, reinterpret_cast<sockaddr *>(&local), local_len) < 0)
      err = -errno;
    if (err) {
      decide(d, err, "bind");
      return 0;
    }
    std::strncpy(d->local, local_address, sizeof d->local - 1);
  }
  if (connect(d->fd, reinterpret_cast<const sockaddr *>(&ss), len) == 0) {
    decide(d, 0, nullptr);
    return 0;
  }
  // EINTR: the connect goes on in the kernel; wait for it like EINPROGRESS.
  if (errno != EINPROGRESS && errno != EINTR) {
    decide(d, -errno, "connect");
    return 0;
  }
  int err = rill_io_new(d->base, d->fd, on_writable, d, &d->io);
  if (!err)
    err = rill_io_start(d->io, RILL_WRITE);
  if (!err && d->opts.timeout_ms) {
    err = rill_timer_new(d->base, on_timeout, d, &d->timer);
    if (!err)
      err = rill_timer_start(d->timer, d->opts.timeout_ms, 0);
  }
  return err;
}

}  // namespace
}  // namespace rill::detail

using namespace rill::detail;

extern "C" {

int rill_dial(rill_base *base, const char *network, const char *address,
              const rill_net_options *options, rill_dial_cb on_done, void *arg, rill_dialer **out) {
  if (!base || !address || !on_done)
    return RILL_EINVAL;
  net_kind kind;
  int err = parse_network(network, &kind);
  if (err)
    return err;
  sockaddr_storage ss;
  socklen_t len;
  if ((err = parse_address(kind, address, &ss, &len)) != 0)
    return err;
  if (std::strlen(address) >= RILL_ADDRSTRLEN)
    return RILL_EINVAL;
  if (!net_get(base))
    return RILL_ENOMEM;
  rill_dialer *d = make<rill_dialer>();
  if (!d)
    return RILL_ENOMEM;
  d->base = base;
  d->kind = kind;
  d->on_done = on_done;
  d->arg = arg;
  d->pending.run = report_pending;
  if (options)
    d->opts = *options;
  d->opts.local_address = nullptr;  // the caller's string is not kept
  std::strcpy(d->address, address);
  if (kind != net_kind::unix_stream)
    format_address(reinterpret_cast<sockaddr *>(&ss), len, d->address, sizeof d->address);
  err = start(d, ss, len, network, options ? options->local_address : nullptr);
  if (err) {
    rill_io_free(d->io);
    rill_timer_free(d->timer);
    socket_close(d->fd);
    destroy(d);
    return err;
  }
  if (d->decided)
    pending_push(base, &d->pending);  // reported from the loop, never from here
  if (out)
    *out = d;
  return 0;
}

int rill_dialer_cancel(rill_dialer *d) {
  if (!d)
    return RILL_EINVAL;
  if (d->reporting)
    return RILL_ECLOSED;
  if (d->decided && d->status != 0)
    return 0;  // already failed; that report stands
  if (d->decided) {
    socket_close(d->fd);  // a success the user has not seen yet
    d->fd = -1;
    d->status = RILL_ECANCELED;
    d->failed_call = nullptr;
  } else {
    decide(d, RILL_ECANCELED, nullptr);
  }
  pending_push(d->base, &d->pending);
  return 0;
}

int rill_dialer_format_error(const rill_dialer *d, int err, char *buf, size_t size) {
  if (!d)
    return RILL_EINVAL;
  return rill_format_op_error(buf, size, "dial", network_name(d->kind), d->local[0] ? d->local : nullptr,
                              d->address, err > -10000 ? d->failed_call : nullptr, err);
}

}  // extern "C"
