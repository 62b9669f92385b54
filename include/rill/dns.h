/** @file
 * rill — asynchronous name resolution on the base (c-ares).
 *
 * The resolver runs on the base itself: c-ares's sockets are ordinary
 * watchers and its timeouts one timer, so a lookup never blocks and needs no
 * thread. The hosts file is consulted first (by default), then DNS;
 * "localhost" and names under ".localhost" resolve to the loopback addresses
 * without asking anyone. */
#ifndef RILL_DNS_H
#define RILL_DNS_H

#include <stddef.h>
#include <sys/socket.h>

#include "rill/base.h"
#include "rill/dns_config.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A lookup in flight, from rill_resolve(). */
typedef struct rill_dns_query rill_dns_query;

/** A resolution's answer: every address found (IPv6 and IPv4, in the order
 * the resolver prefers), port 0, and the canonical name. Valid during the
 * callback only. */
typedef struct rill_dns_result {
  const char *canonical_name;          /**< the canonical name */
  size_t count;                        /**< how many addresses */
  const struct sockaddr_storage *addrs; /**< the addresses, `count` of them */
} rill_dns_result;

/** Exactly once per rill_resolve(), from the loop, and the query is gone
 * when it returns: status 0 with a result, or an error:
 * RILL_EDNS_NOHOST, RILL_EDNS_SERVFAIL, RILL_EDNS_REFUSED, RILL_EDNS_TIMEOUT,
 * RILL_EDNS_UNREACHABLE (no server could be reached: the host refused the
 * query), RILL_ECANCELED (rill_dns_query_cancel or rill_base_free),
 * RILL_ENOMEM. rill_dns_query_server() and rill_format_lookup_error() word
 * the error as Go does. */
typedef void (*rill_resolve_cb)(rill_dns_query *query, int status, const rill_dns_result *result,
                                void *arg);

/** Resolves `host` for `family` (AF_UNSPEC, AF_INET or AF_INET6). `config`
 * overrides the base's resolver settings for this request; NULL uses them.
 * A name that cannot be a host name (empty, over 253 bytes, an empty or
 * over-long label, bytes other than letters, digits, '-', '_' and '.') is
 * RILL_EDNS_BADNAME at once, before any query, and no callback follows.
 * Numeric addresses answer without a query (still from the loop). *out
 * (may be NULL) is valid until the callback returns. RILL_EINVAL for a NULL
 * `base`, `host` or `cb`; RILL_EAFNOSUPPORT for another family. */
RILL_API int rill_resolve(rill_base *base, const char *host, int family,
                          const rill_dns_config *config, rill_resolve_cb cb, void *arg,
                          rill_dns_query **out);

/** Cancels: the callback runs with RILL_ECANCELED, from the loop, also when
 * the answer was in but not yet delivered. Cancelling twice is harmless (0).
 * May be called from any callback, another lookup's or a dial's included;
 * RILL_ECLOSED from inside the query's own callback, after which the
 * pointer is dead. RILL_EINVAL for NULL. */
RILL_API int rill_dns_query_cancel(rill_dns_query *query);

/** Inside the callback of a lookup that failed: the DNS server its error
 * names, as Go's DNSError does ("127.0.0.1:53", "[::1]:53"): the server
 * that answered with the error (no such host, server misbehaving), or the
 * last one tried when none answered (RILL_EDNS_TIMEOUT,
 * RILL_EDNS_UNREACHABLE). Returns its length; RILL_ENOENT when no server
 * was asked (the hosts file answered, the lookup was cancelled, it
 * succeeded); RILL_EINVAL for NULL, or a `buf` too small. */
RILL_API int rill_dns_query_server(const rill_dns_query *query, char *buf, size_t size);

/** Formats a lookup's error Go's way (G31): "lookup nx.test on
 * 127.0.0.1:53: no such host", "lookup x.test on 127.0.0.1:53: server
 * misbehaving" (SERVFAIL and REFUSED both), "lookup x.test on
 * 127.0.0.1:53: read udp 127.0.0.1:53: i/o timeout" (Go's text names the
 * local address of its socket too: "read udp 127.0.0.1:40000->...";
 * c-ares keeps that socket to itself), "... read udp 127.0.0.1:53: read:
 * connection refused" for a server that cannot be reached. `server` (NULL
 * or "" for none: "lookup nx.test: no such host") as rill_dns_query_server()
 * gives it. Returns as rill_format_op_error() does; RILL_EINVAL for a NULL
 * `name`, or a NULL `buf` with `size` > 0. Works without c-ares too. */
RILL_API int rill_format_lookup_error(const char *name, const char *server, int err, char *buf, size_t size);

/** Checks `host` the way rill_resolve() does: 0 or RILL_EDNS_BADNAME;
 * RILL_EINVAL for NULL. */
RILL_API int rill_dns_check_name(const char *host);

/** The c-ares version rill runs with, "1.18.1" say; NULL without c-ares. */
RILL_API const char *rill_dns_version(void);

#ifdef __cplusplus
}
#endif

#endif /* RILL_DNS_H */
