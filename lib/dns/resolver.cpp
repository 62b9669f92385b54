// The c-ares channel, driven by the base.
//
// c-ares tells which sockets it wants watched through its socket-state
// callback; each becomes an internal io watcher that calls ares_process_fd()
// on readiness, and one internal timer follows ares_timeout(). Nothing polls
// and no thread is involved. While queries nobody has cancelled are in
// flight the resolver holds a reference on the base, so rill_base_run()
// waits for them, and only for them: a cancelled query may linger in c-ares
// until it gives up, but keeps nothing running.
//
// A query's callback always runs from the pending queue, never inside
// rill_resolve() (c-ares may answer synchronously) nor inside c-ares. A
// cancelled query is answered at once; c-ares's own answer for it arrives
// later and is dropped. A query that overrides the servers or timing gets a
// channel of its own, destroyed once the answer is in.
//
// A query follows core/lifetime.h: OPEN until answered or cancelled,
// CLOSING once cancelled, CLOSED when its one callback runs. References:
// the owner's (until that callback), one while c-ares owes an answer, one
// while the report is queued. The last release unlinks it from the base's
// list and frees it.
#include <ares.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <climits>
#include <cstdio>
#include <cstring>

#include "core/alloc.h"
#include "core/base_impl.h"
#include "core/lifetime.h"
#include "core/list.h"
#include "dns/hosts.h"
#include "rill/dns.h"

namespace rill::detail {
namespace {

struct dns_channel;

struct sock_watch {
  int fd;
  rill_io *io;
};

}  // namespace
}  // namespace rill::detail

struct rill_dns_query {
  rill_base *base;
  rill::detail::dns_channel *channel = nullptr;
  rill_resolve_cb cb;
  void *arg;
  int family;
  int status = 0;
  rill::detail::life lifetime;
  bool in_ares = false;       // c-ares still owes its answer (holds a reference)
  bool report_queued = false; // the pending node is queued (holds a reference)
  rill::detail::vec<sockaddr_storage> addrs;
  char canonical[256] = "";
  char server[64] = "";  // the server a failure names (rill_dns_query_server)
  rill::detail::pending_node pending;
  rill::detail::list_node link;  // the base's list of queries, for shutdown
};

namespace rill::detail {
namespace {

struct dns_channel {
  rill_base *base;
  ares_channel channel = nullptr;
  vec<sock_watch> socks;
  rill_timer *timer = nullptr;
  int in_flight = 0;
  bool shared;  // the base's channel, as opposed to a per-query one
  pending_node destroy_later;
};

struct dns_state {
  dns_channel *shared = nullptr;
  list queries;
  int waited_for = 0;         // queries in c-ares, not cancelled: the base's ref
  bool shutting_down = false; // rill_base_free: no new queries
};

pthread_once_t library_once = PTHREAD_ONCE_INIT;
int library_status = ARES_SUCCESS;

void init_library() { library_status = ares_library_init(ARES_LIB_INIT_ALL); }

void reschedule(dns_channel *ch) {
  timeval tv;
  if (ch->timer && ares_timeout(ch->channel, nullptr, &tv)) {
    uint64_t ms = static_cast<uint64_t>(tv.tv_sec) * 1000 + (static_cast<uint64_t>(tv.tv_usec) + 999) / 1000;
    rill_timer_start(ch->timer, ms, 0);
  } else if (ch->timer) {
    rill_timer_stop(ch->timer);
  }
}

void on_socket(rill_io *, int fd, unsigned events, void *arg) {
  auto *ch = static_cast<dns_channel *>(arg);
  ares_process_fd(ch->channel, events & RILL_READ ? fd : ARES_SOCKET_BAD,
                  events & RILL_WRITE ? fd : ARES_SOCKET_BAD);
  reschedule(ch);
}

void on_timeout(rill_timer *, void *arg) {
  auto *ch = static_cast<dns_channel *>(arg);
  ares_process_fd(ch->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
  reschedule(ch);
}

void on_sock_state(void *data, ares_socket_t fd, int readable, int writable) {
  auto *ch = static_cast<dns_channel *>(data);
  size_t i = 0;
  while (i < ch->socks.size() && ch->socks[i].fd != fd)
    i++;
  if (!readable && !writable) {
    // c-ares closes the socket next: stop watching it first.
    if (i < ch->socks.size()) {
      rill_io_free(ch->socks[i].io);
      ch->socks[i] = ch->socks.back();
      ch->socks.pop_back();
    }
    return;
  }
  if (i == ch->socks.size()) {
    rill_io *io;
    if (io_create(ch->base, fd, on_socket, ch, true, &io) != 0)
      return;  // out of memory: the query will time out
    if (!ch->socks.push(sock_watch{fd, io})) {
      rill_io_free(io);
      return;
    }
  }
  rill_io_start(ch->socks[i].io, (readable ? unsigned{RILL_READ} : 0u) | (writable ? unsigned{RILL_WRITE} : 0u));
}

void channel_free(dns_channel *ch) {
  ares_channel channel = ch->channel;
  ch->channel = nullptr;  // on_answer must not queue the destruction again
  if (channel)
    ares_destroy(channel);  // runs outstanding callbacks with ARES_EDESTRUCTION
  for (size_t i = 0; i < ch->socks.size(); i++)
    rill_io_free(ch->socks[i].io);
  rill_timer_free(ch->timer);
  destroy(ch);
}

void destroy_later(pending_node *node) {
  channel_free(reinterpret_cast<dns_channel *>(reinterpret_cast<char *>(node) -
                                               offsetof(dns_channel, destroy_later)));
}

int channel_new(rill_base *base, const rill_dns_config &cfg, bool shared, dns_channel **out) {
  pthread_once(&library_once, init_library);
  if (library_status != ARES_SUCCESS)
    return RILL_ENOMEM;
  dns_channel *ch = make<dns_channel>();
  if (!ch)
    return RILL_ENOMEM;
  ch->base = base;
  ch->shared = shared;
  ch->destroy_later.run = destroy_later;
  ares_options opts{};
  int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_LOOKUPS | ARES_OPT_FLAGS;
  // Without NOCHECKRESP, c-ares treats SERVFAIL and REFUSED answers as a
  // dead server and ends with ECONNREFUSED; the caller deserves the rcode.
  opts.flags = ARES_FLAG_NOCHECKRESP;
  opts.sock_state_cb = on_sock_state;
  opts.sock_state_cb_data = ch;
  opts.lookups = const_cast<char *>("b");  // the hosts file is read by rill
  if (cfg.timeout) {
    // c-ares counts whole milliseconds in an int: round up, saturate.
    uint64_t ms = cfg.timeout / RILL_MSEC + (cfg.timeout % RILL_MSEC != 0);
    opts.timeout = ms > INT_MAX ? INT_MAX : static_cast<int>(ms);
    mask |= ARES_OPT_TIMEOUTMS;
  }
  if (cfg.tries) {
    opts.tries = static_cast<int>(cfg.tries);
    mask |= ARES_OPT_TRIES;
  }
  int err = timer_create(base, on_timeout, ch, true, &ch->timer);
  if (err) {
    destroy(ch);
    return err;
  }
  if (ares_init_options(&ch->channel, &opts, mask) != ARES_SUCCESS) {
    ch->channel = nullptr;
    channel_free(ch);
    return RILL_ENOMEM;
  }
  // An empty list would leave c-ares with the system's servers: refuse it
  // rather than query servers the caller did not name.
  if (cfg.servers && (cfg.servers[std::strspn(cfg.servers, " \t,")] == '\0' ||
                      ares_set_servers_ports_csv(ch->channel, cfg.servers) != ARES_SUCCESS)) {
    channel_free(ch);
    return RILL_EINVAL;
  }
  *out = ch;
  return 0;
}

int map_status(int status) {
  switch (status) {
    case ARES_SUCCESS:
      return 0;
    case ARES_ENODATA:
    case ARES_ENOTFOUND:
    case ARES_ENONAME:
      return RILL_EDNS_NOHOST;
    case ARES_EREFUSED:
      return RILL_EDNS_REFUSED;
    case ARES_ETIMEOUT:
      return RILL_EDNS_TIMEOUT;
    case ARES_EBADNAME:
      return RILL_EDNS_BADNAME;
    case ARES_ENOMEM:
      return RILL_ENOMEM;
    case ARES_ECANCELLED:
    case ARES_EDESTRUCTION:
      return RILL_ECANCELED;
    case ARES_ECONNREFUSED:  // no server took the query: a DNS failure,
      return RILL_EDNS_UNREACHABLE;  // never the dial's "connection refused"
    default:  // ESERVFAIL, EFORMERR, EBADRESP, ...
      return RILL_EDNS_SERVFAIL;
  }
}

dns_state *state(rill_base *base) { return static_cast<dns_state *>(base->dns); }

void start_waiting(rill_base *base) {
  if (state(base)->waited_for++ == 0)
    rill_base_ref(base);
}

void stop_waiting(rill_base *base) {
  if (--state(base)->waited_for == 0)
    rill_base_unref(base);
}

rill_dns_query *query_of(list_node *n) { return RILL_CONTAINER_OF(n, rill_dns_query, link); }

// Frees the query once the user, c-ares and the pending queue are done.
void release(rill_dns_query *q) {
  if (!life_release(q->lifetime))
    return;
  list::remove(&q->link);
  destroy(q);
}

void queue_report(rill_dns_query *q) {
  if (q->report_queued)
    return;
  q->report_queued = true;
  life_hold(q->lifetime);
  pending_push(q->base, &q->pending);
}

void deliver(pending_node *node) {
  rill_dns_query *q = RILL_CONTAINER_OF(node, rill_dns_query, pending);
  q->report_queued = false;
  if (q->lifetime.state != life_state::closed) {
    q->lifetime.state = life_state::closed;
    rill_dns_result result{q->canonical, q->addrs.size(), q->addrs.data()};
    q->cb(q, q->status, q->status == 0 ? &result : nullptr, q->arg);
    release(q);  // the owner's reference
  }
  release(q);  // the queued report's, held across the callback
}

// Takes canonical name and addresses out of a c-ares answer.
void take_answer(rill_dns_query *q, const ares_addrinfo *res) {
  for (const ares_addrinfo_node *n = res->nodes; n; n = n->ai_next) {
    if (n->ai_family != AF_INET && n->ai_family != AF_INET6)
      continue;
    // An answer may carry records of both types whatever was asked: a
    // lookup for one family returns that family only.
    if (q->family != AF_UNSPEC && n->ai_family != q->family)
      continue;
    sockaddr_storage ss{};
    std::memcpy(&ss, n->ai_addr, static_cast<size_t>(n->ai_addrlen));
    if (ss.ss_family == AF_INET)
      reinterpret_cast<sockaddr_in *>(&ss)->sin_port = 0;
    else
      reinterpret_cast<sockaddr_in6 *>(&ss)->sin6_port = 0;
    q->addrs.push(ss);
  }
  // The chain's end: the cname target that is nobody's alias.
  for (const ares_addrinfo_cname *c = res->cnames; c; c = c->next) {
    bool is_alias = false;
    for (const ares_addrinfo_cname *o = res->cnames; o; o = o->next)
      if (o->alias && c->name && strcasecmp(o->alias, c->name) == 0)
        is_alias = true;
    if (!is_alias && c->name)
      std::snprintf(q->canonical, sizeof q->canonical, "%s", c->name);
  }
  if (!q->canonical[0] && res->name)
    std::snprintf(q->canonical, sizeof q->canonical, "%s", res->name);
  if (q->addrs.empty())
    q->status = RILL_EDNS_NOHOST;
}

// The server Go's error would name: with ARES_FLAG_NOCHECKRESP c-ares
// takes the first server's answer whatever its rcode, so an answer came
// from the first; a timeout or an unreachable server means every server
// was tried, and Go names the last one it tried.
void name_server(dns_channel *ch, int status, char *buf, size_t size) {
  ares_addr_port_node *servers = nullptr;
  if (ares_get_servers_ports(ch->channel, &servers) != ARES_SUCCESS || !servers)
    return;
  bool answered = status != RILL_EDNS_TIMEOUT && status != RILL_EDNS_UNREACHABLE;
  const ares_addr_port_node *s = servers;
  while (!answered && s->next)
    s = s->next;
  char host[INET6_ADDRSTRLEN] = "";
  int port = s->udp_port ? s->udp_port : 53;
  if (s->family == AF_INET6 && inet_ntop(AF_INET6, &s->addr.addr6, host, sizeof host))
    std::snprintf(buf, size, "[%s]:%d", host, port);
  else if (s->family == AF_INET && inet_ntop(AF_INET, &s->addr.addr4, host, sizeof host))
    std::snprintf(buf, size, "%s:%d", host, port);
  ares_free_data(servers);
}

void on_answer(void *arg, int status, int, ares_addrinfo *res) {
  auto *q = static_cast<rill_dns_query *>(arg);
  dns_channel *ch = q->channel;
  q->in_ares = false;
  bool cancelled = !q->lifetime.open();
  if (!cancelled)
    stop_waiting(q->base);
  if (--ch->in_flight == 0 && !ch->shared && ch->channel)
    pending_push(ch->base, &ch->destroy_later);  // not from inside c-ares
  if (!cancelled) {
    q->status = map_status(status);
    if (q->status && q->status != RILL_ECANCELED && q->status != RILL_ENOMEM)
      name_server(ch, q->status, q->server, sizeof q->server);
    if (q->status == 0 && res)
      take_answer(q, res);
    queue_report(q);
  }
  if (res)
    ares_freeaddrinfo(res);
  release(q);  // c-ares's reference
}

// A request's settings, with what it leaves unset taken from the base's, so
// overriding the timeout never drops the base's servers for the system's.
rill_dns_config merged(const rill_dns_config *request, const rill_dns_config &base) {
  if (!request)
    return base;
  rill_dns_config cfg = *request;
  if (!cfg.servers)
    cfg.servers = base.servers;
  if (!cfg.hosts_file)
    cfg.hosts_file = base.hosts_file;
  if (!cfg.timeout)
    cfg.timeout = base.timeout;
  if (!cfg.tries)
    cfg.tries = base.tries;
  return cfg;
}

bool same_channel_settings(const rill_dns_config &a, const rill_dns_config &b) {
  bool same_servers = a.servers == b.servers || (a.servers && b.servers && !std::strcmp(a.servers, b.servers));
  return same_servers && a.timeout == b.timeout && a.tries == b.tries;
}

void shutdown_all(rill_base *base) {
  dns_state *st = state(base);
  st->shutting_down = true;
  for (list_node *n = st->queries.front(); n && n != &st->queries.head; n = n->next)
    if (query_of(n)->lifetime.open())
      rill_dns_query_cancel(query_of(n));
  // Destroying a channel makes c-ares answer its queries (dropped above);
  // that answer may free the query, so step on before.
  for (list_node *n = st->queries.front(), *next; n && n != &st->queries.head; n = next) {
    next = n->next;
    rill_dns_query *q = query_of(n);
    if (q->channel && !q->channel->shared && q->in_ares) {
      dns_channel *ch = q->channel;
      ares_channel channel = ch->channel;
      ch->channel = nullptr;
      ares_destroy(channel);
    }
  }
  if (st->shared) {
    channel_free(st->shared);
    st->shared = nullptr;
  }
}

void state_free(rill_base *base) {
  dns_state *st = state(base);
  shutdown_all(base);
  pending_run(base);  // the cancellations and channel frees
  destroy(st);
  base->dns = nullptr;
  base->dns_shutdown = nullptr;
}

}  // namespace
}  // namespace rill::detail

using namespace rill::detail;

extern "C" {

int rill_resolve(rill_base *base, const char *host, int family, const rill_dns_config *config,
                 rill_resolve_cb cb, void *arg, rill_dns_query **out) {
  if (!base || !host || !cb)
    return RILL_EINVAL;
  if (family != AF_UNSPEC && family != AF_INET && family != AF_INET6)
    return RILL_EAFNOSUPPORT;
  bool wrong_family = false;
  vec<sockaddr_storage> numeric;
  bool is_numeric = numeric_lookup(host, family, numeric, &wrong_family);
  if (!is_numeric) {
    int err = rill_dns_check_name(host);
    if (err)
      return err;
  }
  if (base->dns && state(base)->shutting_down)
    return RILL_ECANCELED;  // asked from a callback run by rill_base_free
  if (!base->dns) {
    base->dns = make<dns_state>();
    if (!base->dns)
      return RILL_ENOMEM;
    base->dns_shutdown = state_free;
  }
  rill_dns_query *q = make<rill_dns_query>();
  if (!q)
    return RILL_ENOMEM;
  q->base = base;
  q->cb = cb;
  q->arg = arg;
  q->family = family;
  q->pending.run = deliver;
  dns_state *st = state(base);
  st->queries.push_back(&q->link);

  const rill_dns_config cfg = merged(config, base->dns_config);
  const char *hosts_file = cfg.hosts_file ? cfg.hosts_file : "/etc/hosts";
  bool answered = true;
  if (is_numeric) {
    q->status = wrong_family ? RILL_EDNS_NOHOST : 0;
    if (!wrong_family)
      q->addrs.push(numeric[0]);
    std::snprintf(q->canonical, sizeof q->canonical, "%s", host);
  } else if (localhost_lookup(host, family, q->addrs)) {
    std::snprintf(q->canonical, sizeof q->canonical, "localhost");
  } else if (cfg.lookup != RILL_LOOKUP_DNS &&
             (hosts_lookup(hosts_file, host, family, q->addrs, q->canonical, sizeof q->canonical),
              !q->addrs.empty())) {
    // answered from the hosts file
  } else if (cfg.lookup == RILL_LOOKUP_HOSTS) {
    q->status = RILL_EDNS_NOHOST;
  } else {
    answered = false;
  }
  if (answered) {
    queue_report(q);
  } else {
    dns_channel *ch = st->shared;
    int err = 0;
    if (!same_channel_settings(cfg, base->dns_config))
      err = channel_new(base, cfg, false, &ch);
    else if (!ch && (err = channel_new(base, base->dns_config, true, &st->shared)) == 0)
      ch = st->shared;
    if (err) {
      list::remove(&q->link);
      destroy(q);
      return err;
    }
    q->channel = ch;
    q->in_ares = true;
    life_hold(q->lifetime);  // c-ares's, given back by on_answer
    ch->in_flight++;
    start_waiting(base);
    ares_addrinfo_hints hints{};
    hints.ai_family = family;
    hints.ai_flags = ARES_AI_CANONNAME;
    ares_getaddrinfo(ch->channel, host, nullptr, &hints, on_answer, q);
    if (q->channel == ch && ch->channel)
      reschedule(ch);
  }
  if (out)
    *out = q;
  return 0;
}

int rill_dns_query_cancel(rill_dns_query *q) {
  if (!q)
    return RILL_EINVAL;
  if (q->lifetime.state == life_state::closed)
    return RILL_ECLOSED;  // inside its own callback
  if (!q->lifetime.open())
    return 0;  // cancelled already
  q->lifetime.state = life_state::closing;
  q->status = RILL_ECANCELED;
  q->addrs.clear();
  queue_report(q);
  if (q->in_ares) {
    stop_waiting(q->base);
    // A channel of its own can go now; the shared one lets c-ares give up.
    if (!q->channel->shared && q->channel->channel)
      pending_push(q->base, &q->channel->destroy_later);
  }
  return 0;
}

int rill_dns_query_server(const rill_dns_query *q, char *buf, size_t size) {
  if (!q || !buf)
    return RILL_EINVAL;
  size_t n = std::strlen(q->server);
  if (n == 0)
    return RILL_ENOENT;
  if (n >= size)
    return RILL_EINVAL;
  std::memcpy(buf, q->server, n + 1);
  return static_cast<int>(n);
}

const char *rill_dns_version(void) { return ares_version(nullptr); }

}  // extern "C"
