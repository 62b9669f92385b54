// Dialing: non-blocking connects completed the way Go completes them
// (G7-G11).
//
// connect() answers EINPROGRESS; the socket becomes writable when the
// handshake ends, and SO_ERROR says how: EINPROGRESS, EALREADY or EINTR mean
// "not yet" (wait again), EISCONN or 0 mean connected — confirmed with
// getpeername(), because a poller can report a socket writable before the
// handshake is done (Go issues 14548, 19289) — and anything else is the
// connect error.
//
// A host name is resolved on the base first, then its addresses are tried
// Happy Eyeballs style (RFC 8305): families interleaved, the next address
// started when the previous one fails or after the fallback delay, the first
// connection wins and the others are closed. The dial timeout covers the
// lookup and every attempt. When every address fails, the error is the first
// address's, naming it, as Go's ("the error from the first address is most
// relevant", G11).
//
// Exactly one callback per dial (G10), always from the pending queue. A
// timeout or a cancel closes every socket before reporting, so a connection
// that lost the race is never handed out half-poisoned (Go issue 16523); a
// success that is decided but not yet reported still loses to a cancel,
// because the user has not seen it.
//
// The lifetime is core/lifetime.h's: OPEN while dialing, CLOSING once the
// outcome is decided (the report is queued and holds a reference), CLOSED
// when the report is delivered. A lookup in flight holds a reference too, so
// its answer always finds the dialer, whatever order the loop runs them in.
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>

#include "core/alloc.h"
#include "net/net_impl.h"
#include "rill/dns.h"

namespace rill::detail {
namespace {

constexpr uint64_t default_fallback_delay = 300 * RILL_MSEC;

struct dial_target {
  sockaddr_storage addr;
  socklen_t len;
};

struct dial_attempt {
  rill_dialer *dialer;
  int fd = -1;
  rill_io *io = nullptr;
  size_t index = 0;  // of its target: the order the addresses are tried in
  char address[RILL_ADDRSTRLEN];
};

}  // namespace
}  // namespace rill::detail

struct rill_dialer {
  rill_base *base;
  rill::detail::net_kind kind;
  rill_dial_cb on_done;
  void *arg;
  rill_socket_config opts{};
  char network[8];
  char local_address[RILL_ADDRSTRLEN] = "";
  rill_timer *timeout = nullptr;
  rill_timer *fallback = nullptr;
  rill_dns_query *query = nullptr;
  char host[256] = "";  // a name being resolved
  char dns_server[RILL_ADDRSTRLEN] = "";  // the one a failed lookup names
  int port = 0;
  bool local_system = false;  // ":port": the address shows as written
  rill::detail::vec<rill::detail::dial_target> targets;
  size_t next_target = 0;
  rill::detail::vec<rill::detail::dial_attempt *> attempts;
  rill::detail::life lifetime;
  int status = 0;
  int winner_fd = -1;
  const char *failed_call = nullptr;  // "connect", "socket", "bind"
  char address[RILL_ADDRSTRLEN] = "";  // the address the error names
  size_t failed_index = SIZE_MAX;  // the target whose failure is reported
  rill::detail::pending_node pending;
};

namespace rill::detail {
namespace {

void release(rill_dialer *d) {
  if (life_release(d->lifetime))
    destroy(d);
}

bool decided(const rill_dialer *d) { return d->lifetime.closing(); }

void close_attempt(dial_attempt *a) {
  rill_io_free(a->io);
  socket_close(a->fd);
  destroy(a);
}

void drop_attempt(rill_dialer *d, dial_attempt *a) {
  for (size_t i = 0; i < d->attempts.size(); i++)
    if (d->attempts[i] == a) {
      d->attempts[i] = d->attempts.back();
      d->attempts.pop_back();
      break;
    }
  close_attempt(a);
}

// Records the outcome, stops everything else, and queues the report.
void decide(rill_dialer *d, int status, const char *call) {
  if (decided(d))
    return;
  d->lifetime.state = life_state::closing;
  d->status = status;
  d->failed_call = call;
  if (status != 0 && !d->attempts.empty())  // a timeout or cancel names the newest attempt
    std::memcpy(d->address, d->attempts.back()->address, sizeof d->address);
  for (size_t i = 0; i < d->attempts.size(); i++)
    close_attempt(d->attempts[i]);
  d->attempts.clear();
  rill_timer_free(d->timeout);
  rill_timer_free(d->fallback);
  d->timeout = d->fallback = nullptr;
  if (d->query)
    rill_dns_query_cancel(d->query);  // its callback clears d->query and lets go
  life_hold(d->lifetime);           // the queued report's reference
  pending_push(d->base, &d->pending);
}

void report(pending_node *node) {
  rill_dialer *d = RILL_CONTAINER_OF(node, rill_dialer, pending);
  rill_conn *conn = nullptr;
  if (d->status == 0) {
    int err = is_tcp(d->kind) ? socket_apply_tcp_defaults(d->winner_fd, &d->opts) : 0;
    if (!err)
      err = conn_create(d->base, d->winner_fd, d->kind, &d->opts, &conn);
    if (err) {
      socket_close(d->winner_fd);
      d->status = err;
      d->failed_call = "setsockopt";
    }
    d->winner_fd = -1;
  }
  d->lifetime.state = life_state::closed;
  d->on_done(d, conn, d->status, d->arg);
  release(d);  // the owner's reference
  release(d);  // the queued report's, held across the callback
}

void win(rill_dialer *d, dial_attempt *a) {
  d->winner_fd = a->fd;
  a->fd = -1;
  std::memcpy(d->address, a->address, sizeof d->address);
  drop_attempt(d, a);
  decide(d, 0, nullptr);
}

void start_next(rill_dialer *d);

// Keeps the failure of the earliest address tried, whatever order the
// attempts fail in, and drops the attempt.
void note_failure(rill_dialer *d, dial_attempt *a, int err, const char *call) {
  if (a->index < d->failed_index) {
    d->failed_index = a->index;
    d->status = err;
    d->failed_call = call;
    std::memcpy(d->address, a->address, sizeof d->address);
  }
  drop_attempt(d, a);
}

void attempt_failed(rill_dialer *d, dial_attempt *a, int err, const char *call) {
  note_failure(d, a, err, call);
  if (d->next_target < d->targets.size())
    start_next(d);  // a failure starts the next address at once
  else if (d->attempts.empty())
    decide(d, d->status, d->failed_call);
}

void on_writable(rill_io *, int fd, unsigned, void *arg) {
  auto *a = static_cast<dial_attempt *>(arg);
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
      if (getpeername(fd, reinterpret_cast<sockaddr *>(&peer), &plen) == 0) {
        win(a->dialer, a);
        return;
      }
      // No peer and no error: a spurious wake-up (the handshake is not
      // done), unless the backend took the error off the socket itself
      // (libkqueue does), when waiting again would only spin on the end.
      rill_base *base = a->dialer->base;
      int taken = soerr ? 0 : backend_taken_socket_error(base->backend, base->backend_state, fd);
      if (taken)
        attempt_failed(a->dialer, a, taken, "connect");
      return;
    }
    default:
      attempt_failed(a->dialer, a, -soerr, "connect");
  }
}

void on_timeout(rill_timer *, void *arg) { decide(static_cast<rill_dialer *>(arg), RILL_ETIMEOUT, nullptr); }

void on_fallback(rill_timer *, void *arg) { start_next(static_cast<rill_dialer *>(arg)); }

// Socket, control hook, local bind and connect for one address. Returns 0
// with the attempt connecting (or connected: *connected), or the error and
// the call that failed.
int connect_one(rill_dialer *d, dial_attempt *a, const dial_target &t, bool *connected, const char **call) {
  *call = "socket";
  a->fd = socket_open(t.addr.ss_family, SOCK_STREAM);
  if (a->fd < 0) {
    int err = a->fd;
    a->fd = -1;
    return err;
  }
  *call = nullptr;
  if (d->opts.control) {
    int err = d->opts.control(a->fd, d->network, a->address, d->opts.control_arg);
    if (err < 0)
      return err;
  }
  if (d->local_address[0]) {
    *call = "bind";
    sockaddr_storage local;
    socklen_t local_len;
    int err = parse_address(d->kind, d->local_address, &local, &local_len);
    if (err)
      return err;
    if (bind(a->fd, reinterpret_cast<sockaddr *>(&local), local_len) < 0)
      return -errno;
  }
  *call = "connect";
  if (connect(a->fd, reinterpret_cast<const sockaddr *>(&t.addr), t.len) == 0) {
    *connected = true;
    return 0;
  }
  // EINTR: the connect goes on in the kernel; wait for it like EINPROGRESS.
  if (errno != EINPROGRESS && errno != EINTR)
    return -errno;
  *call = nullptr;
  int err = rill_io_new(d->base, a->fd, on_writable, a, &a->io);
  if (!err)
    err = rill_io_start(a->io, RILL_WRITE);
  return err;
}

// Starts the next address; more follow on failure or after the fallback
// delay. Addresses that fail at once are skipped.
void start_next(rill_dialer *d) {
  while (!decided(d) && d->next_target < d->targets.size()) {
    const dial_target &t = d->targets[d->next_target++];
    dial_attempt *a = make<dial_attempt>();
    if (!a || !d->attempts.push(a)) {
      destroy(a);
      decide(d, RILL_ENOMEM, nullptr);
      return;
    }
    a->dialer = d;
    a->index = d->next_target - 1;
    if (d->kind == net_kind::unix_stream)
      std::snprintf(a->address, sizeof a->address, "%s", d->address);
    else if (d->local_system)  // Go prints the address it dialed: ":8888"
      std::snprintf(a->address, sizeof a->address, ":%d", d->port);
    else
      format_address(reinterpret_cast<const sockaddr *>(&t.addr), t.len, a->address, sizeof a->address);
    bool connected = false;
    const char *call = nullptr;
    int err = connect_one(d, a, t, &connected, &call);
    if (err) {
      note_failure(d, a, err, call);
      continue;
    }
    if (connected) {
      win(d, a);
      return;
    }
    if (d->next_target < d->targets.size()) {
      uint64_t delay = d->opts.fallback_delay ? d->opts.fallback_delay : default_fallback_delay;
      if (d->fallback || timer_create(d->base, on_fallback, d, false, &d->fallback) == 0)
        rill_timer_start(d->fallback, delay, 0);
    }
    return;
  }
  if (!decided(d) && d->attempts.empty())
    decide(d, d->status ? d->status : RILL_EDNS_NOHOST, d->failed_call);
}

// ":port" dials the local system, as Go's does: over IPv4 for "tcp" and
// "tcp4" (Go connects its IPv4 socket to 0.0.0.0, which Linux takes for
// this host; rill names the loopback address itself), over IPv6 for
// "tcp6". The wildcard itself is what rill_listen() binds, not a peer.
void dial_local_system(net_kind kind, int port, dial_target *t) {
  std::memset(&t->addr, 0, sizeof t->addr);
  if (kind == net_kind::tcp6) {
    auto *in6 = reinterpret_cast<sockaddr_in6 *>(&t->addr);
    in6->sin6_family = AF_INET6;
    in6->sin6_addr = in6addr_loopback;
    in6->sin6_port = htons(static_cast<uint16_t>(port));
    t->len = sizeof *in6;
  } else {
    auto *in4 = reinterpret_cast<sockaddr_in *>(&t->addr);
    in4->sin_family = AF_INET;
    in4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    in4->sin_port = htons(static_cast<uint16_t>(port));
    t->len = sizeof *in4;
  }
}

socklen_t addr_len(int family) {
  return family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
}

// RFC 8305 section 4: alternate families, starting with the resolver's first
// choice.
bool add_interleaved(rill_dialer *d, const rill_dns_result *res) {
  if (!d->targets.reserve(res->count))
    return false;
  int first = res->count ? res->addrs[0].ss_family : AF_INET6;
  size_t i_first = 0, i_other = 0;
  bool take_first = true;
  for (;;) {
    size_t &i = take_first ? i_first : i_other;
    while (i < res->count && (res->addrs[i].ss_family == first) != take_first)
      i++;
    if (i < res->count) {
      dial_target t{res->addrs[i], addr_len(res->addrs[i].ss_family)};
      if (t.addr.ss_family == AF_INET)
        reinterpret_cast<sockaddr_in *>(&t.addr)->sin_port = htons(static_cast<uint16_t>(d->port));
      else
        reinterpret_cast<sockaddr_in6 *>(&t.addr)->sin6_port = htons(static_cast<uint16_t>(d->port));
      d->targets.push(t);
      i++;
    } else if (i_first >= res->count && i_other >= res->count) {
      break;
    }
    take_first = !take_first;
  }
  return true;
}

void on_resolved(rill_dns_query *query, int status, const rill_dns_result *res, void *arg) {
  auto *d = static_cast<rill_dialer *>(arg);
  d->query = nullptr;
  if (!decided(d)) {
    if (status) {
      if (rill_dns_query_server(query, d->dns_server, sizeof d->dns_server) < 0)
        d->dns_server[0] = '\0';
      decide(d, status, "lookup");
    }
    else if (!add_interleaved(d, res))
      decide(d, RILL_ENOMEM, nullptr);
    else
      start_next(d);
  }
  release(d);  // the lookup's reference
}

int family_for(net_kind kind) {
  return kind == net_kind::tcp4 ? AF_INET : kind == net_kind::tcp6 ? AF_INET6 : AF_UNSPEC;
}

}  // namespace
}  // namespace rill::detail

using namespace rill::detail;

extern "C" {

int rill_dial(rill_base *base, const char *network, const char *address,
              const rill_socket_config *options, rill_dial_cb on_done, void *arg, rill_dialer **out) {
  if (!base || !address || !on_done)
    return RILL_EINVAL;
  net_kind kind;
  int err = parse_network(network, &kind);
  if (err)
    return err;
  if (std::strlen(address) >= RILL_ADDRSTRLEN)
    return RILL_EINVAL;
  dial_target target;
  err = parse_address(kind, address, &target.addr, &target.len);
  char host[256] = "";
  int port = 0;
  bool needs_dns = err == RILL_ENEEDDNS;
  bool local_system = false;
  if (needs_dns) {
    char zone[8];
    split_host_port(address, host, sizeof host, zone, sizeof zone, &port);
    if ((err = rill_dns_check_name(host)) != 0)
      return err;
  } else if (err) {
    return err;
  } else if (is_tcp(kind)) {
    char zone[IF_NAMESIZE + 1];
    local_system = split_host_port(address, host, sizeof host, zone, sizeof zone, &port) == 0 && !host[0];
    if (local_system)
      dial_local_system(kind, port, &target);
  }
  if (options && options->local_address && std::strlen(options->local_address) >= RILL_ADDRSTRLEN)
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
  d->pending.run = report;
  std::snprintf(d->network, sizeof d->network, "%s", network);
  std::snprintf(d->address, sizeof d->address, "%s", address);
  d->local_system = local_system;
  if (local_system)
    d->port = port;
  if (options) {
    d->opts = *options;
    if (options->local_address)
      std::snprintf(d->local_address, sizeof d->local_address, "%s", options->local_address);
  }
  d->opts.local_address = nullptr;  // the caller's strings are not kept
  d->opts.dns = nullptr;
  if (d->opts.timeout) {
    err = timer_create(base, on_timeout, d, false, &d->timeout);
    if (!err)
      err = rill_timer_start(d->timeout, d->opts.timeout, 0);
  }
  if (!err && needs_dns) {
    std::snprintf(d->host, sizeof d->host, "%s", host);
    d->port = port;
    life_hold(d->lifetime);  // the lookup's, given back by on_resolved
    err = rill_resolve(base, host, family_for(kind), options ? options->dns : nullptr, on_resolved, d,
                       &d->query);
  } else if (!err) {
    err = d->targets.push(target) ? 0 : RILL_ENOMEM;
    if (!err)
      start_next(d);  // a failure at once is reported from the loop
  }
  if (err) {
    rill_timer_free(d->timeout);
    destroy(d);
    return err;
  }
  if (out)
    *out = d;
  return 0;
}

int rill_dialer_cancel(rill_dialer *d) {
  if (!d)
    return RILL_EINVAL;
  if (d->lifetime.state == life_state::closed)
    return RILL_ECLOSED;  // inside its own callback
  if (decided(d) && d->status != 0)
    return 0;  // already failed; that report stands
  if (decided(d)) {
    socket_close(d->winner_fd);  // a success the user has not seen yet
    d->winner_fd = -1;
    d->status = RILL_ECANCELED;
    d->failed_call = nullptr;
  } else {
    decide(d, RILL_ECANCELED, nullptr);
  }
  return 0;
}

int rill_dialer_format_error(const rill_dialer *d, int err, char *buf, size_t size) {
  // As snprintf (and rill_format_op_error): a NULL buffer only to measure.
  if (!d || (!buf && size))
    return RILL_EINVAL;
  if (d->host[0] && (RILL_IS_DNS_ERROR(err) || d->targets.empty())) {
    // Failed during the lookup. Go: "dial tcp: lookup nx.test on
    // 127.0.0.1:53: no such host"; the dial's own timeout or cancel names
    // no server ("dial tcp: lookup nx.test: i/o timeout").
    int n = std::snprintf(buf, size, "dial %s: ", network_name(d->kind));
    if (n < 0)
      return RILL_EINVAL;
    size_t used = static_cast<size_t>(n) < size ? static_cast<size_t>(n) : size;
    int m = rill_format_lookup_error(d->host, RILL_IS_DNS_ERROR(err) ? d->dns_server : nullptr, err,
                                     buf ? buf + used : nullptr, size - used);
    return m < 0 ? m : n + m;
  }
  return rill_format_op_error("dial", network_name(d->kind),
                              d->local_address[0] ? d->local_address : nullptr, d->address,
                              err > -10000 ? d->failed_call : nullptr, err, buf, size);
}

}  // extern "C"
