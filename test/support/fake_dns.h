/* A fake DNS server for the resolver tests: UDP and TCP on 127.0.0.1, an
 * ephemeral port, its own thread (poll-based), answers driven by a table of
 * rules. Plain C, no cmocka: usable from samples and by-hand runs too.
 *
 * A query is matched against the rules in the order they were added: the
 * first rule whose name equals the question's name (case-insensitive, one
 * trailing dot ignored; "*.suffix" matches every name under suffix) and
 * whose qtype is the question's (or FAKE_DNS_ANY) decides the answer. A name
 * that some rule names, asked for a type no rule covers, gets an empty
 * NOERROR answer (no data); a name no rule names gets NXDOMAIN.
 *
 * Everything in the additional section (EDNS OPT records from c-ares) is
 * ignored; questions with compression pointers are answered FORMERR.
 *
 * Raw mode (fake_dns_set_raw), for fuzzing the client: the rules are set
 * aside and every query gets the caller's bytes as its response. */
#ifndef RILL_FAKE_DNS_H
#define RILL_FAKE_DNS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fake_dns fake_dns;

/* Question types a rule matches. */
enum {
  FAKE_DNS_A = 1,
  FAKE_DNS_AAAA = 28,
  FAKE_DNS_ANY = 255 /* in a rule: every type */
};

typedef enum fake_dns_action {
  FAKE_DNS_ANSWER = 0, /* NOERROR with `cnames` then the addresses */
  FAKE_DNS_NXDOMAIN,
  FAKE_DNS_SERVFAIL,
  FAKE_DNS_REFUSED,
  FAKE_DNS_DROP /* never answer */
} fake_dns_action;

typedef struct fake_dns_rule {
  const char *name;       /* "a.test", or "*.bulk.test" */
  int qtype;              /* FAKE_DNS_A, FAKE_DNS_AAAA or FAKE_DNS_ANY */
  fake_dns_action action;
  /* ANSWER: comma-separated addresses, "127.0.0.2,127.0.0.1,::1"; the ones
   * of the question's type are sent, in this order. */
  const char *addrs;
  /* ANSWER: a CNAME chain, "b.test,c.test": the name is an alias of b.test,
   * b.test of c.test, and the addresses are c.test's — all in one answer. */
  const char *cnames;
  unsigned delay_ms;      /* wait this long before answering */
  unsigned drop_first;    /* drop the first K queries this rule matches */
  int truncate_udp;       /* over UDP: TC set and no records; TCP: all */
  unsigned ttl;           /* 0: 60 */
} fake_dns_rule;

enum {
  FAKE_DNS_UDP = 1,
  FAKE_DNS_TCP = 2,
  FAKE_DNS_ALL = 3
};

/* Starts a server on 127.0.0.1 (UDP and TCP, the same ephemeral port) and
 * its thread. Returns the port, or -errno. */
int fake_dns_start(fake_dns **out);

/* Stops the thread, closes every socket and frees the server. NULL: no-op. */
void fake_dns_stop(fake_dns *srv);

int fake_dns_port(const fake_dns *srv);

/* "127.0.0.1:PORT", for rill_dns_config.servers. */
const char *fake_dns_server(const fake_dns *srv);

/* Adds a rule (the strings are copied). Safe while the server runs.
 * Returns 0 or -ENOMEM / -EINVAL. */
int fake_dns_add_rule(fake_dns *srv, const fake_dns_rule *rule);

/* Shorthand: an answer of `addrs` for `name`, every type. */
int fake_dns_add(fake_dns *srv, const char *name, const char *addrs);

/* Removes every rule. */
void fake_dns_clear_rules(fake_dns *srv);

/* Queries received over FAKE_DNS_UDP, FAKE_DNS_TCP or both (FAKE_DNS_ALL). */
unsigned fake_dns_queries(fake_dns *srv, int transport);

/* Queries received for `name` (any type, any transport), matched as rules
 * match names. */
unsigned fake_dns_queries_for(fake_dns *srv, const char *name);

/* Responses sent (any transport), truncated ones included. */
unsigned fake_dns_responses(fake_dns *srv);

/* Responses still waiting for their delay. */
unsigned fake_dns_delayed(fake_dns *srv);

/* Waits up to `ms` until the server holds no TCP connection (it closes
 * its side once the client has closed, on its own thread). 1 if idle. Call
 * it before counting descriptors. */
int fake_dns_wait_idle(fake_dns *srv, unsigned ms);

/* Zeroes the counters (rules keep their drop_first progress). */
void fake_dns_reset_counters(fake_dns *srv);

/* Raw-mode flags. */
enum {
  /* Insert the query's question section after the first 12 bytes (the
   * header) of the raw message, so the response matches the query however
   * it was asked (c-ares checks the question). Without it the raw bytes go
   * out whole, question and all. */
  FAKE_DNS_RAW_ECHO_QUESTION = 1
};

/* From now on answers every query, over UDP and TCP, with `msg` (`len`
 * bytes, copied; at most 65535) instead of consulting the rules: the first
 * two bytes are replaced by the query's id (as many of them as `len` has),
 * the rest goes out exactly as given, malformed or not (a zero `len` sends
 * an empty message). A raw response counts in fake_dns_responses()
 * only once it has been handed to the kernel, so a client on this host has
 * it to read as soon as the counter moves. Returns 0, -EINVAL or -ENOMEM. */
int fake_dns_set_raw(fake_dns *srv, const void *msg, size_t len, int flags);

/* Leaves raw mode: the rules answer again. */
void fake_dns_clear_raw(fake_dns *srv);

#ifdef __cplusplus
}
#endif

#endif /* RILL_FAKE_DNS_H */
