/* rill_resolve() against the fake DNS server (test/support/fake_dns.h):
 * address families, CNAME chains, error codes, retries, truncation to TCP,
 * the hosts file, localhost, name checks, cancellation, shutdown with
 * queries in flight, and many queries at once.
 *
 * Network rule: every base and every per-request configuration names the
 * fake server on 127.0.0.1 (or the name never reaches DNS: localhost,
 * numbers, a test hosts file); the system's resolv.conf is never used. */
#define _GNU_SOURCE 1

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "test_util.h"
#include "fake_dns.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define MAX_ADDRS 64

static fake_dns *g_dns;
static char g_hosts[64];       /* a hosts file written for these tests */
static char g_empty_hosts[64]; /* an empty one, so /etc/hosts is never read */

/* ---- helpers ------------------------------------------------------------ */

typedef struct res {
  int calls;
  int status;
  int in_call;            /* set while rill_resolve() runs: a callback then is a bug */
  int called_in_call;
  char canonical[256];
  size_t count;
  char addrs[MAX_ADDRS][64]; /* formatted, without port */
  int families[MAX_ADDRS];
  uint64_t done_ms;
  int port_nonzero;
} res;

static void on_res(rill_dns_query *q, int status, const rill_dns_result *r, void *arg) {
  (void)q;
  res *out = arg;
  out->calls++;
  out->status = status;
  out->done_ms = tu_now_ms();
  if (out->in_call)
    out->called_in_call = 1;
  if (status == 0) {
    assert_non_null(r);
    snprintf(out->canonical, sizeof out->canonical, "%s", r->canonical_name ? r->canonical_name : "(null)");
    out->count = r->count;
    for (size_t i = 0; i < r->count && i < MAX_ADDRS; i++) {
      const struct sockaddr_storage *ss = &r->addrs[i];
      out->families[i] = ss->ss_family;
      if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &in->sin_addr, out->addrs[i], sizeof out->addrs[i]);
        out->port_nonzero |= in->sin_port != 0;
      } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &in6->sin6_addr, out->addrs[i], sizeof out->addrs[i]);
        out->port_nonzero |= in6->sin6_port != 0;
      } else {
        snprintf(out->addrs[i], sizeof out->addrs[i], "family %d", ss->ss_family);
      }
    }
  } else {
    assert_null(r);
  }
}

/* Fails with both codes' names. */
#define ASSERT_STATUS(got, want) assert_status((got), (want), #want, __FILE__, __LINE__)
static void assert_status(int got, int want, const char *want_text, const char *file, int line) {
  if (got != want)
    fail_msg("%s:%d: status %d (%s: %s), expected %s (%s)", file, line, got, rill_err_name(got),
             rill_strerror(got), want_text, rill_err_name(want));
}

static int has_addr(const res *r, const char *addr) {
  for (size_t i = 0; i < r->count && i < MAX_ADDRS; i++)
    if (strcmp(r->addrs[i], addr) == 0)
      return 1;
  return 0;
}

/* A base whose resolver asks only the fake server and reads only the empty
 * hosts file. */
static rill_base *dns_base(unsigned timeout_ms, unsigned tries) {
  rill_base_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.dns.servers = fake_dns_server(g_dns);
  cfg.dns.hosts_file = g_empty_hosts;
  cfg.dns.timeout = timeout_ms * RILL_MSEC;
  cfg.dns.tries = tries;
  rill_base *base = NULL;
  assert_int_equal(rill_base_new(&cfg, &base), 0);
  return base;
}

/* Resolves `host` and runs the loop until the answer is in. */
static void resolve_sync(rill_base *base, const char *host, int family, const rill_dns_config *cfg,
                         res *out) {
  memset(out, 0, sizeof *out);
  out->in_call = 1;
  int rc = rill_resolve(base, host, family, cfg, on_res, out, NULL);
  out->in_call = 0;
  assert_int_equal(rc, 0);
  assert_int_equal(out->calls, 0); /* never inside the call */
  TU_RUN(base, RILL_RUN_DEFAULT, 10000);
  assert_int_equal(out->calls, 1);
  assert_false(out->called_in_call);
  assert_false(out->port_nonzero);
}

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

static int group_setup(void **state) {
  (void)state;
  int port = fake_dns_start(&g_dns);
  if (port <= 0) {
    fprintf(stderr, "fake_dns_start: %d\n", port);
    return -1;
  }
  snprintf(g_hosts, sizeof g_hosts, "/tmp/rill-test-hosts-%d", (int)getpid());
  snprintf(g_empty_hosts, sizeof g_empty_hosts, "/tmp/rill-test-hosts-empty-%d", (int)getpid());
  write_file(g_hosts,
             "# a hosts file for test_resolve\n"
             "192.0.2.50   hosted.test   alias-h.test # comment\n"
             "2001:db8::50 hosted.test\n"
             "192.0.2.51   HostedCase.test\n");
  write_file(g_empty_hosts, "# nothing\n");

  fake_dns_rule r;
  fake_dns_add(g_dns, "both.test", "192.0.2.1,2001:db8::1");
  fake_dns_add(g_dns, "multi.test", "192.0.2.11,192.0.2.12,192.0.2.13");
  fake_dns_add(g_dns, "v6only.test", "2001:db8::6");
  fake_dns_add(g_dns, "hosted.test", "192.0.2.99");
  fake_dns_add(g_dns, "*.bulk.test", "192.0.2.200");
  fake_dns_add(g_dns, "plain.test", "192.0.2.2");

  memset(&r, 0, sizeof r);
  r.name = "alias.test";
  r.qtype = FAKE_DNS_ANY;
  r.cnames = "mid.test,real.test";
  r.addrs = "192.0.2.7,2001:db8::7";
  fake_dns_add_rule(g_dns, &r);

  memset(&r, 0, sizeof r);
  r.name = "servfail.test";
  r.qtype = FAKE_DNS_ANY;
  r.action = FAKE_DNS_SERVFAIL;
  fake_dns_add_rule(g_dns, &r);
  r.name = "refused.test";
  r.action = FAKE_DNS_REFUSED;
  fake_dns_add_rule(g_dns, &r);
  r.name = "nx.test";
  r.action = FAKE_DNS_NXDOMAIN;
  fake_dns_add_rule(g_dns, &r);
  r.name = "blackhole.test";
  r.action = FAKE_DNS_DROP;
  fake_dns_add_rule(g_dns, &r);

  memset(&r, 0, sizeof r);
  r.name = "retry.test";
  r.qtype = FAKE_DNS_ANY;
  r.addrs = "192.0.2.30";
  r.drop_first = 1;
  fake_dns_add_rule(g_dns, &r);

  memset(&r, 0, sizeof r);
  r.name = "big.test";
  r.qtype = FAKE_DNS_ANY;
  r.addrs = "192.0.2.101,192.0.2.102,192.0.2.103,192.0.2.104,192.0.2.105,192.0.2.106";
  r.truncate_udp = 1;
  fake_dns_add_rule(g_dns, &r);

  memset(&r, 0, sizeof r);
  r.name = "slow.test";
  r.qtype = FAKE_DNS_ANY;
  r.addrs = "192.0.2.40";
  r.delay_ms = 300;
  fake_dns_add_rule(g_dns, &r);

  memset(&r, 0, sizeof r);
  r.name = "veryslow.test";
  r.qtype = FAKE_DNS_ANY;
  r.addrs = "192.0.2.41";
  r.delay_ms = 5000;
  fake_dns_add_rule(g_dns, &r);
  return 0;
}

static int group_teardown(void **state) {
  (void)state;
  fake_dns_stop(g_dns);
  g_dns = NULL;
  unlink(g_hosts);
  unlink(g_empty_hosts);
  return 0;
}

static int setup(void **state) {
  fake_dns_wait_idle(g_dns, 1000);
  fake_dns_reset_counters(g_dns);
  return tu_setup_fds(state);
}

/* The server closes its end of a TCP connection on its own thread, after
 * the client closed: wait for that before counting descriptors. */
static int teardown(void **state) {
  fake_dns_wait_idle(g_dns, 1000);
  return tu_teardown_fds(state);
}

/* ---- answers ------------------------------------------------------------ */

static void test_families(void **state) {
  (void)state;
  rill_base *base = dns_base(0, 0);
  res r;

  resolve_sync(base, "both.test", AF_UNSPEC, NULL, &r);
  ASSERT_STATUS(r.status, 0);
  assert_int_equal(r.count, 2);
  assert_true(has_addr(&r, "192.0.2.1"));
  assert_true(has_addr(&r, "2001:db8::1"));

  resolve_sync(base, "both.test", AF_INET, NULL, &r);
  ASSERT_STATUS(r.status, 0);
  assert_int_equal(r.count, 1);
  assert_int_equal(r.families[0], AF_INET);
  assert_string_equal(r.addrs[0], "192.0.2.1");

  resolve_sync(base, "both.test", AF_INET6, NULL, &r);
  ASSERT_STATUS(r.status, 0);
  assert_int_equal(r.count, 1);
  assert_int_equal(r.families[0], AF_INET6);
  assert_string_equal(r.addrs[0], "2001:db8::1");

  /* Several records of one type, in the server's order (one family, so no
   * RFC 6724 reordering applies between them). */
  resolve_sync(base, "multi.test", AF_INET, NULL, &r);
  ASSERT_STATUS(r.status, 0);
  assert_int_equal(r.count, 3);
  assert_string_equal(r.addrs[0], "192.0.2.11");
  assert_string_equal(r.addrs[1], "192.0.2.12");
  assert_string_equal(r.addrs[2], "192.0.2.13");

  /* A name with only IPv6 addresses, asked for IPv4: no such host. */
  resolve_sync(base, "v6only.test", AF_INET, NULL, &r);
  ASSERT_STATUS(r.status, RILL_EDNS_NOHOST);
  resolve_sync(base, "v6only.test", AF_UNSPEC, NULL, &r);
  ASSERT_STATUS(r.status, 0);
  assert_int_equal(r.count, 1);
  assert_string_equal(r.addrs[0], "2001:db8::6");

  /* Names are case-insensitive; a trailing dot is the same name. */
  resolve_sync(base, "BoTh.TeSt.", AF_INET, NULL, &r);
  ASSERT_STATUS(r.status, 0);
  assert_string_equal(r.addrs[0], "192.0.2.1");

  assert_int_equal(fake_dns_queries(g_dns, FAKE_DNS_TCP), 0);
  assert_true(fake_dns_queries(g_dns, FAKE_DNS_UDP) >= 9);
  tu_base_free(base);
}

static void test_cname_chain(void **state) {
  (void)state;
  rill_base *base = dns_base(0, 0);
  res r;
  resolve_sync(base, "alias.test", AF_UNSPEC, NULL, &r);
  ASSERT_STATUS(r.status, 0);
  assert_int_equal(r.count, 2);
  assert_true(has_addr(&r, "192.0.2.7"));
  assert_true(has_addr(&r, "2001:db8::7"));
  assert_string_equal(r.canonical, "real.test");

  resolve_sync(base, "alias.test", AF_INET, NULL, &r);
  ASSERT_STATUS(r.status, 0);
  assert_int_equal(r.count, 1);
  assert_string_equal(r.canonical, "real.test");
  tu_base_free(base);
}

/* Without a CNAME the canonical name is the name itself (as Go's
 * LookupCNAME and getaddrinfo's ai_canonname say). */
static void test_canonical_without_cname(void **state) {
  (void)state;
  rill_base *base = dns_base(0, 0);
  res r;
  resolve_sync(base, "plain.test", AF_INET, NULL, &r);
  tu_base_free(base); /* first, so a failure below leaks nothing */
  ASSERT_STATUS(r.status, 0);
  assert_int_equal(r.count, 1);
  /* rill_dns_result: "every address found ... and the canonical name". */
  if (strcasecmp(r.canonical, "plain.test") != 0 && strcasecmp(r.canonical, "plain.test.") != 0)
    fail_msg("canonical name of plain.test (no CNAME) is \"%s\", expected \"plain.test\"", r.canonical);
}

/* ---- errors ------------------------------------------------------------- */

static void test_nxdomain(void **state) {
  (void)state;
  rill_base *base = dns_base(0, 0);
  res r;
  resolve_sync(base, "nx.test", AF_INET, NULL, &r);
  ASSERT_STATUS(r.status, RILL_EDNS_NOHOST);
  assert_string_equal(rill_strerror(r.status), "no such host");
  assert_true(RILL_IS_DNS_ERROR(r.status));

  /* A name no rule knows: the server says NXDOMAIN too. */
  resolve_sync(base, "unknown.test", AF_UNSPEC, NULL, &r);
  ASSERT_STATUS(r.status, RILL_EDNS_NOHOST);
  assert_true(fake_dns_queries_for(g_dns, "unknown.test") >= 1);
  tu_base_free(base);
}

static void test_servfail_refused(void **state) {
  (void)state;
  rill_base *base = dns_base(200, 1);
  res r;
  int st[4];
  resolve_sync(base, "servfail.test", AF_INET, NULL, &r);
  st[0] = r.status;
  resolve_sync(base, "servfail.test", AF_UNSPEC, NULL, &r);
  st[1] = r.status;
  resolve_sync(base, "refused.test", AF_INET, NULL, &r);
  st[2] = r.status;
  resolve_sync(base, "refused.test", AF_UNSPEC, NULL, &r);
  st[3] = r.status;
  tu_base_free(base); /* first, so a failure below leaks nothing */
  ASSERT_STATUS(st[0], RILL_EDNS_SERVFAIL);
  ASSERT_STATUS(st[1], RILL_EDNS_SERVFAIL);
  ASSERT_STATUS(st[2], RILL_EDNS_REFUSED);
  ASSERT_STATUS(st[3], RILL_EDNS_REFUSED);
  assert_true(RILL_IS_DNS_ERROR(st[0]) && RILL_IS_DNS_ERROR(st[2]));
}

/* The first query is dropped; the retry after timeout_ms is answered. */
static void test_timeout_then_retry(void **state) {
  (void)state;
  rill_base *base = dns_base(0, 0);
  rill_dns_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.servers = fake_dns_server(g_dns);
  cfg.hosts_file = g_empty_hosts;
  cfg.timeout = 200 * RILL_MSEC;
  cfg.tries = 2;
  res r;
  uint64_t t0 = tu_now_ms();
  resolve_sync(base, "retry.test", AF_INET, &cfg, &r);
  uint64_t took = r.done_ms - t0;
  ASSERT_STATUS(r.status, 0);
  assert_int_equal(r.count, 1);
  assert_string_equal(r.addrs[0], "192.0.2.30");
  assert_int_equal(fake_dns_queries_for(g_dns, "retry.test"), 2);
  if (took < 150 || took > 2000)
    fail_msg("the retry answer came after %llu ms, expected about 200", (unsigned long long)took);
  tu_base_free(base);
}

static void test_all_dropped_times_out(void **state) {
  (void)state;
  rill_base *base = dns_base(100, 2);
  res r;
  uint64_t t0 = tu_now_ms();
  resolve_sync(base, "blackhole.test", AF_INET, NULL, &r);
  ASSERT_STATUS(r.status, RILL_EDNS_TIMEOUT);
  assert_true(RILL_IS_DNS_ERROR(r.status));
  assert_int_equal(fake_dns_queries_for(g_dns, "blackhole.test"), 2);
  uint64_t took = r.done_ms - t0;
  if (took < 100 || took > 3000)
    fail_msg("timed out after %llu ms, expected 100 + 200", (unsigned long long)took);
  tu_base_free(base);
}

static void test_truncated_retries_over_tcp(void **state) {
  (void)state;
  rill_base *base = dns_base(1000, 2);
  res r;
  resolve_sync(base, "big.test", AF_INET, NULL, &r);
  ASSERT_STATUS(r.status, 0);
  assert_int_equal(r.count, 6);
  assert_string_equal(r.addrs[0], "192.0.2.101");
  assert_string_equal(r.addrs[5], "192.0.2.106");
  assert_true(fake_dns_queries(g_dns, FAKE_DNS_UDP) >= 1);
  assert_true(fake_dns_queries(g_dns, FAKE_DNS_TCP) >= 1);
  tu_base_free(base);
}

/* ---- hosts file, localhost, numbers ------------------------------------- */

static void test_hosts_file(void **state) {
  (void)state;
  rill_base *base = dns_base(0, 0);
  rill_dns_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.servers = fake_dns_server(g_dns);
  cfg.hosts_file = g_hosts;
  cfg.lookup = RILL_LOOKUP_HOSTS_DNS;
  res r;

  resolve_sync(base, "hosted.test", AF_UNSPEC, &cfg, &r);
  ASSERT_STATUS(r.status, 0);
  assert_int_equal(r.count, 2);
  assert_true(has_addr(&r, "192.0.2.50"));
  assert_true(has_addr(&r, "2001:db8::50"));
  assert_string_equal(r.canonical, "hosted.test");

  resolve_sync(base, "hosted.test", AF_INET6, &cfg, &r);
  ASSERT_STATUS(r.status, 0);
  assert_int_equal(r.count, 1);
  assert_string_equal(r.addrs[0], "2001:db8::50");

  /* An alias: the canonical name is the line's first name. */
  resolve_sync(base, "ALIAS-H.test", AF_INET, &cfg, &r);
  ASSERT_STATUS(r.status, 0);
  assert_string_equal(r.addrs[0], "192.0.2.50");
  assert_string_equal(r.canonical, "hosted.test");

  resolve_sync(base, "hostedcase.test", AF_INET, &cfg, &r);
  ASSERT_STATUS(r.status, 0);
  assert_string_equal(r.addrs[0], "192.0.2.51");
  assert_int_equal(fake_dns_queries(g_dns, FAKE_DNS_ALL), 0);

  /* The base's configuration may name the file too. */
  {
    rill_base_config bc;
    memset(&bc, 0, sizeof bc);
    bc.dns.servers = fake_dns_server(g_dns);
    bc.dns.hosts_file = g_hosts;
    rill_base *b2 = NULL;
    assert_int_equal(rill_base_new(&bc, &b2), 0);
    resolve_sync(b2, "hosted.test", AF_INET, NULL, &r);
    ASSERT_STATUS(r.status, 0);
    assert_string_equal(r.addrs[0], "192.0.2.50");
    assert_int_equal(fake_dns_queries(g_dns, FAKE_DNS_ALL), 0);
    tu_base_free(b2);
  }

  /* DNS only: the file is ignored and the server answers. */
  cfg.lookup = RILL_LOOKUP_DNS;
  resolve_sync(base, "hosted.test", AF_INET, &cfg, &r);
  ASSERT_STATUS(r.status, 0);
  assert_int_equal(r.count, 1);
  assert_string_equal(r.addrs[0], "192.0.2.99");
  assert_true(fake_dns_queries(g_dns, FAKE_DNS_ALL) >= 1);

  /* Hosts only: a name the file lacks is no such host, with no query. */
  fake_dns_reset_counters(g_dns);
  cfg.lookup = RILL_LOOKUP_HOSTS;
  resolve_sync(base, "both.test", AF_INET, &cfg, &r);
  ASSERT_STATUS(r.status, RILL_EDNS_NOHOST);
  assert_int_equal(fake_dns_queries(g_dns, FAKE_DNS_ALL), 0);

  /* Hosts then DNS: a name the file lacks goes to the server. */
  cfg.lookup = RILL_LOOKUP_HOSTS_DNS;
  resolve_sync(base, "both.test", AF_INET, &cfg, &r);
  ASSERT_STATUS(r.status, 0);
  assert_string_equal(r.addrs[0], "192.0.2.1");
  assert_true(fake_dns_queries(g_dns, FAKE_DNS_ALL) >= 1);
  tu_base_free(base);
}

static void test_localhost_and_numbers(void **state) {
  (void)state;
  res r;
  /* A server is configured, and never asked. */
  rill_base *base = dns_base(0, 0);
  resolve_sync(base, "localhost", AF_UNSPEC, NULL, &r);
  ASSERT_STATUS(r.status, 0);
  assert_int_equal(r.count, 2);
  assert_true(has_addr(&r, "127.0.0.1"));
  assert_true(has_addr(&r, "::1"));
  resolve_sync(base, "LocalHost.", AF_INET, NULL, &r);
  ASSERT_STATUS(r.status, 0);
  assert_int_equal(r.count, 1);
  assert_string_equal(r.addrs[0], "127.0.0.1");
  resolve_sync(base, "app.localhost", AF_INET6, NULL, &r);
  ASSERT_STATUS(r.status, 0);
  assert_int_equal(r.count, 1);
  assert_string_equal(r.addrs[0], "::1");
  resolve_sync(base, "192.0.2.9", AF_UNSPEC, NULL, &r);
  ASSERT_STATUS(r.status, 0);
  assert_int_equal(r.count, 1);
  assert_string_equal(r.addrs[0], "192.0.2.9");
  resolve_sync(base, "2001:db8::9", AF_INET6, NULL, &r);
  ASSERT_STATUS(r.status, 0);
  assert_string_equal(r.addrs[0], "2001:db8::9");
  resolve_sync(base, "2001:db8::9", AF_INET, NULL, &r);
  ASSERT_STATUS(r.status, RILL_EDNS_NOHOST);
  assert_int_equal(fake_dns_queries(g_dns, FAKE_DNS_ALL), 0);
  tu_base_free(base);

  /* No server configured at all: localhost and numbers still answer (they
   * never reach DNS, so the system's resolv.conf is never used). */
  rill_base_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.dns.hosts_file = g_empty_hosts;
  base = NULL;
  assert_int_equal(rill_base_new(&cfg, &base), 0);
  resolve_sync(base, "localhost", AF_INET, NULL, &r);
  ASSERT_STATUS(r.status, 0);
  assert_string_equal(r.addrs[0], "127.0.0.1");
  resolve_sync(base, "::1", AF_UNSPEC, NULL, &r);
  ASSERT_STATUS(r.status, 0);
  assert_string_equal(r.addrs[0], "::1");
  tu_base_free(base);
}

/* ---- names -------------------------------------------------------------- */

static int g_never_calls;
static void on_never(rill_dns_query *q, int status, const rill_dns_result *r, void *arg) {
  (void)q;
  (void)status;
  (void)r;
  (void)arg;
  g_never_calls++;
}

static void test_bad_names(void **state) {
  (void)state;
  char long_name[300], long_label[80], ok_name[300], ok_label[80];
  /* 254 bytes: 127 "a." pairs. */
  memset(long_name, 0, sizeof long_name);
  for (int i = 0; i < 127; i++)
    memcpy(long_name + 2 * i, "a.", 2);
  long_name[253] = 'a'; /* "a.a.....a.a" + 'a' = 254 bytes, no trailing dot */
  assert_int_equal(strlen(long_name), 254);
  /* 253 bytes and 253 + a trailing dot are fine. */
  memcpy(ok_name, long_name, 253);
  ok_name[253] = '\0';
  ok_name[252] = 'b';
  memset(long_label, 'x', 64);
  memcpy(long_label + 64, ".test", 6);
  memset(ok_label, 'x', 63);
  memcpy(ok_label + 63, ".test", 6);

  const char *bad[] = {"", ".", "a..b", ".a", "a.b..", long_name, long_label, "bad name!",
                       "bad/name.test", "tab\tname", "ünïcode.test", "a@b.test"};
  rill_base *base = dns_base(0, 0);
  g_never_calls = 0;
  char wrong[1024] = "";
  int accepted = 0;
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int rc = rill_resolve(base, bad[i], AF_UNSPEC, NULL, on_never, NULL, NULL);
    int check = rill_dns_check_name(bad[i]);
    if (rc != RILL_EDNS_BADNAME || check != RILL_EDNS_BADNAME) {
      size_t used = strlen(wrong);
      snprintf(wrong + used, sizeof wrong - used, " \"%.40s\": rill_resolve %s, rill_dns_check_name %s;", bad[i],
               rill_err_name(rc), rill_err_name(check));
      accepted += rc == 0;
    }
  }
  if (wrong[0]) {
    /* Let what was wrongly accepted finish, free the base, then fail. */
    TU_RUN(base, RILL_RUN_DEFAULT, 5000);
    int calls = g_never_calls;
    tu_base_free(base);
    assert_int_equal(calls, accepted);
    fail_msg("names that are not host names were accepted:%s", wrong);
  }
  assert_int_equal(rill_base_run(base, RILL_RUN_NOWAIT), 0);
  assert_int_equal(g_never_calls, 0);
  assert_int_equal(fake_dns_queries(g_dns, FAKE_DNS_ALL), 0);
  assert_int_equal(rill_dns_check_name(NULL), RILL_EINVAL);
  assert_int_equal(rill_resolve(base, NULL, AF_UNSPEC, NULL, on_never, NULL, NULL), RILL_EINVAL);
  assert_int_equal(rill_resolve(NULL, "a.test", AF_UNSPEC, NULL, on_never, NULL, NULL), RILL_EINVAL);
  assert_int_equal(rill_resolve(base, "a.test", AF_UNSPEC, NULL, NULL, NULL, NULL), RILL_EINVAL);
  assert_int_equal(rill_resolve(base, "a.test", AF_UNIX, NULL, on_never, NULL, NULL), RILL_EAFNOSUPPORT);

  /* What the header allows: letters, digits, '-', '_', '.', labels of up to
   * 63 bytes, up to 253 bytes (plus one trailing dot). It says nothing
   * against a leading hyphen, so "-x" passes the check. */
  const char *good[] = {"a", "a.test", "a.test.", "under_score.test", "x-y.test", "-x", "1.2.3.4.5",
                        ok_name, ok_label};
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
    if (rill_dns_check_name(good[i]) != 0)
      fail_msg("rill_dns_check_name(\"%s\") = %d, expected 0", good[i], rill_dns_check_name(good[i]));
  {
    char dotted[300];
    size_t n = strlen(ok_name);
    memcpy(dotted, ok_name, n);
    memcpy(dotted + n, ".", 2);
    assert_int_equal(strlen(dotted), 254);
    assert_int_equal(rill_dns_check_name(dotted), 0);
  }
  tu_base_free(base);
}

/* ---- cancellation ------------------------------------------------------- */

static void test_cancel_at_once(void **state) {
  (void)state;
  rill_base *base = dns_base(0, 0);
  res r;
  memset(&r, 0, sizeof r);
  rill_dns_query *q = NULL;
  assert_int_equal(rill_resolve(base, "both.test", AF_UNSPEC, NULL, on_res, &r, &q), 0);
  assert_non_null(q);
  r.in_call = 1;
  assert_int_equal(rill_dns_query_cancel(q), 0);
  r.in_call = 0;
  assert_int_equal(r.calls, 0); /* from the loop, not inside the cancel */
  TU_RUN(base, RILL_RUN_DEFAULT, 5000);
  assert_int_equal(r.calls, 1);
  ASSERT_STATUS(r.status, RILL_ECANCELED);
  assert_false(r.called_in_call);

  /* An answer already decided (the hosts file) loses to a cancel too. */
  rill_dns_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.servers = fake_dns_server(g_dns);
  cfg.hosts_file = g_hosts;
  memset(&r, 0, sizeof r);
  assert_int_equal(rill_resolve(base, "hosted.test", AF_UNSPEC, &cfg, on_res, &r, &q), 0);
  assert_int_equal(rill_dns_query_cancel(q), 0);
  TU_RUN(base, RILL_RUN_DEFAULT, 5000);
  assert_int_equal(r.calls, 1);
  ASSERT_STATUS(r.status, RILL_ECANCELED);

  assert_int_equal(rill_dns_query_cancel(NULL), RILL_EINVAL);
  tu_base_free(base);
}

typedef struct cancel_ctx {
  rill_dns_query *q;
  int rc;
} cancel_ctx;

static void cancel_from_timer(rill_timer *t, void *arg) {
  cancel_ctx *c = arg;
  c->rc = rill_dns_query_cancel(c->q);
  rill_timer_free(t);
}

/* The server delays its answer by 300 ms; the cancel at 50 ms reports at
 * once, and the late answer is dropped. */
static void test_cancel_while_waiting(void **state) {
  (void)state;
  rill_base *base = dns_base(2000, 1);
  res r;
  memset(&r, 0, sizeof r);
  cancel_ctx c = {NULL, 1};
  uint64_t t0 = tu_now_ms();
  assert_int_equal(rill_resolve(base, "slow.test", AF_INET, NULL, on_res, &r, &c.q), 0);
  rill_timer *t = NULL;
  assert_int_equal(rill_timer_new(base, cancel_from_timer, &c, &t), 0);
  assert_int_equal(rill_timer_start(t, 50 * RILL_MSEC, 0), 0);
  /* The loop runs on while c-ares still waits for the answer it owes. */
  TU_RUN(base, RILL_RUN_DEFAULT, 5000);
  assert_int_equal(c.rc, 0);
  assert_int_equal(r.calls, 1);
  ASSERT_STATUS(r.status, RILL_ECANCELED);
  uint64_t took = r.done_ms - t0;
  if (took >= 250)
    fail_msg("the cancelled query reported after %llu ms (the answer's delay is 300)",
             (unsigned long long)took);
  /* The late answer did arrive, and was dropped: still one callback. */
  assert_int_equal(fake_dns_queries_for(g_dns, "slow.test"), 1);
  for (int i = 0; i < 100 && fake_dns_responses(g_dns) < 1; i++)
    tu_sleep_ms(10);
  assert_int_equal(rill_base_run(base, RILL_RUN_NOWAIT), 0);
  assert_int_equal(r.calls, 1);
  tu_base_free(base);
}

/* A query on a channel of its own (per-request servers) is cancelled and
 * its callback has run, but c-ares still waits for the answer; then the
 * base is freed. Nothing may be touched twice (run under ASan). */
static void test_free_after_cancel_own_channel(void **state) {
  (void)state;
  rill_base *base = dns_base(0, 0);
  rill_dns_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.servers = fake_dns_server(g_dns);
  cfg.hosts_file = g_empty_hosts;
  cfg.timeout = 2 * RILL_SEC;
  res r;
  memset(&r, 0, sizeof r);
  rill_dns_query *q = NULL;
  assert_int_equal(rill_resolve(base, "slow.test", AF_INET, &cfg, on_res, &r, &q), 0);
  assert_int_equal(rill_dns_query_cancel(q), 0);
  while (r.calls == 0)
    TU_RUN(base, RILL_RUN_ONCE, 5000);
  ASSERT_STATUS(r.status, RILL_ECANCELED);
  assert_int_equal(fake_dns_responses(g_dns), 0); /* the answer is still owed */
  tu_base_free(base);
  assert_int_equal(r.calls, 1);
}

/* ---- rill_base_free with queries in flight ------------------------------ */

typedef struct free_ctx {
  int calls;
  int status;
  int inside_free;
  int during_free;
} free_ctx;

static int g_inside_free;

static void on_res_free(rill_dns_query *q, int status, const rill_dns_result *r, void *arg) {
  (void)q;
  (void)r;
  free_ctx *f = arg;
  f->calls++;
  f->status = status;
  f->during_free = g_inside_free;
}

static void test_base_free_in_flight(void **state) {
  (void)state;
  rill_base *base = dns_base(3000, 1);
  free_ctx f[4];
  memset(f, 0, sizeof f);
  rill_dns_config own;
  memset(&own, 0, sizeof own);
  own.servers = fake_dns_server(g_dns);
  own.hosts_file = g_empty_hosts;
  own.timeout = 3 * RILL_SEC;
  /* Two on the base's channel, one on a channel of its own, one dropped. */
  assert_int_equal(rill_resolve(base, "veryslow.test", AF_INET, NULL, on_res_free, &f[0], NULL), 0);
  assert_int_equal(rill_resolve(base, "veryslow.test", AF_UNSPEC, NULL, on_res_free, &f[1], NULL), 0);
  assert_int_equal(rill_resolve(base, "veryslow.test", AF_INET, &own, on_res_free, &f[2], NULL), 0);
  assert_int_equal(rill_resolve(base, "blackhole.test", AF_INET, &own, on_res_free, &f[3], NULL), 0);
  /* Let the queries go out. */
  for (int i = 0; i < 200 && fake_dns_queries(g_dns, FAKE_DNS_ALL) < 5; i++) {
    rill_base_run(base, RILL_RUN_NOWAIT);
    tu_sleep_ms(5);
  }
  assert_true(fake_dns_queries(g_dns, FAKE_DNS_ALL) >= 5);
  for (int i = 0; i < 4; i++)
    assert_int_equal(f[i].calls, 0);
  g_inside_free = 1;
  int rc = rill_base_free(base);
  g_inside_free = 0;
  assert_int_equal(rc, 0);
  for (int i = 0; i < 4; i++) {
    assert_int_equal(f[i].calls, 1);
    assert_int_equal(f[i].status, RILL_ECANCELED);
    assert_true(f[i].during_free);
  }
}

/* ---- many at once ------------------------------------------------------- */

#define BULK 1000

static int g_bulk_calls[BULK];
static int g_bulk_ok, g_bulk_done;

static void on_bulk(rill_dns_query *q, int status, const rill_dns_result *r, void *arg) {
  (void)q;
  int i = (int)(intptr_t)arg;
  g_bulk_calls[i]++;
  g_bulk_done++;
  if (status == 0 && r->count == 1 && r->addrs[0].ss_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)&r->addrs[0];
    if (ntohl(in->sin_addr.s_addr) == 0xC00002C8u) /* 192.0.2.200 */
      g_bulk_ok++;
  } else if (status != 0 && g_bulk_done - g_bulk_ok < 5) {
    fprintf(stderr, "bulk query %d: %s\n", i, rill_err_name(status));
  }
}

static void test_many_concurrent(void **state) {
  (void)state;
  /* Datagrams can be lost under a burst (socket buffers): retries cover it. */
  rill_base *base = dns_base(500, 4);
  memset(g_bulk_calls, 0, sizeof g_bulk_calls);
  g_bulk_ok = g_bulk_done = 0;
  char name[64];
  for (int i = 0; i < BULK; i++) {
    snprintf(name, sizeof name, "h%d.bulk.test", i);
    assert_int_equal(rill_resolve(base, name, AF_INET, NULL, on_bulk, (void *)(intptr_t)i, NULL), 0);
  }
  assert_int_equal(g_bulk_done, 0);
  TU_RUN(base, RILL_RUN_DEFAULT, 30000);
  for (int i = 0; i < BULK; i++)
    if (g_bulk_calls[i] != 1)
      fail_msg("query %d completed %d times", i, g_bulk_calls[i]);
  assert_int_equal(g_bulk_ok, BULK);
  assert_true(fake_dns_queries(g_dns, FAKE_DNS_ALL) >= BULK);
  tu_base_free(base);
}

/* A cancelled query keeps nothing running: the loop returns at once even
 * though c-ares would wait seconds for the server that never answers. */
static void test_cancel_does_not_hold_the_loop(void **state) {
  (void)state;
  rill_base *base = dns_base(2000, 3);
  res r;
  rill_dns_query *q = NULL;
  memset(&r, 0, sizeof r);
  assert_int_equal(rill_resolve(base, "blackhole.test", AF_INET, NULL, on_res, &r, &q), 0);
  assert_int_equal(rill_dns_query_cancel(q), 0);
  uint64_t t0 = tu_now_ms();
  TU_RUN(base, RILL_RUN_DEFAULT, 5000);
  uint64_t took = tu_now_ms() - t0;
  assert_int_equal(r.calls, 1);
  ASSERT_STATUS(r.status, RILL_ECANCELED);
  if (took >= 1000)
    fail_msg("rill_base_run returned %llu ms after the cancel", (unsigned long long)took);
  tu_base_free(base);
}

/* An empty server list must not fall back to the system's servers. */
static void test_empty_server_list_refused(void **state) {
  (void)state;
  rill_base *base = dns_base(0, 0);
  rill_dns_config cfg;
  res r;
  memset(&cfg, 0, sizeof cfg);
  memset(&r, 0, sizeof r);
  cfg.servers = "";
  ASSERT_STATUS(rill_resolve(base, "both.test", AF_INET, &cfg, on_res, &r, NULL), RILL_EINVAL);
  cfg.servers = " , ";
  ASSERT_STATUS(rill_resolve(base, "both.test", AF_INET, &cfg, on_res, &r, NULL), RILL_EINVAL);
  assert_int_equal(r.calls, 0);
  tu_base_free(base);
}

/* A callback run by rill_base_free (its query cancelled) that asks for a
 * new lookup gets RILL_ECANCELED at once, nothing leaks (LSan). */
static int g_retry_rc = 1;
static void on_res_retry(rill_dns_query *q, int status, const rill_dns_result *result, void *arg) {
  (void)q;
  (void)status;
  (void)result;
  g_retry_rc = rill_resolve(arg, "both.test", AF_INET, NULL, on_res, NULL, NULL);
}

static void test_resolve_from_free_refused(void **state) {
  (void)state;
  rill_base *base = dns_base(2000, 1);
  assert_int_equal(rill_resolve(base, "blackhole.test", AF_INET, NULL, on_res_retry, base, NULL), 0);
  assert_int_equal(rill_base_run(base, RILL_RUN_NOWAIT), 1);
  assert_int_equal(rill_base_free(base), 0);
  ASSERT_STATUS(g_retry_rc, RILL_ECANCELED);
}

int main(void) {
  const char *v = rill_dns_version();
  fprintf(stderr, "test_resolve: c-ares %s, backend %s\n", v ? v : "(none)",
          getenv("RILL_BACKEND") ? getenv("RILL_BACKEND") : "(default)");
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_families, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cname_chain, setup, teardown),
      cmocka_unit_test_setup_teardown(test_canonical_without_cname, setup, teardown),
      cmocka_unit_test_setup_teardown(test_nxdomain, setup, teardown),
      cmocka_unit_test_setup_teardown(test_servfail_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_timeout_then_retry, setup, teardown),
      cmocka_unit_test_setup_teardown(test_all_dropped_times_out, setup, teardown),
      cmocka_unit_test_setup_teardown(test_truncated_retries_over_tcp, setup, teardown),
      cmocka_unit_test_setup_teardown(test_hosts_file, setup, teardown),
      cmocka_unit_test_setup_teardown(test_localhost_and_numbers, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_names, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cancel_at_once, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cancel_while_waiting, setup, teardown),
      cmocka_unit_test_setup_teardown(test_free_after_cancel_own_channel, setup, teardown),
      cmocka_unit_test_setup_teardown(test_base_free_in_flight, setup, teardown),
      cmocka_unit_test_setup_teardown(test_many_concurrent, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cancel_does_not_hold_the_loop, setup, teardown),
      cmocka_unit_test_setup_teardown(test_empty_server_list_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_resolve_from_free_refused, setup, teardown),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
