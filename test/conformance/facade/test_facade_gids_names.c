/* G11 through the blocking facade: rill_net_dial by host name resolves on
 * the base (through the fake DNS server of test/support), tries every
 * address in order, reports the FIRST address's error when all fail (Go:
 * "the error from the first address is most relevant"), naming it, and its
 * timeout covers the lookup and the connect together.
 *
 * Network rule: every dial names the fake server on 127.0.0.1 and an empty
 * hosts file; nothing reaches the system's resolver. "tcp4" keeps the order
 * of the addresses the server's (no IPv6 sorted first). */
#define _GNU_SOURCE 1

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <poll.h>

#include "facade_util.c"
#include "fake_dns.h"

#define LIMIT 60000 /* a hang guard only */
#define MAX_TRIED 8

static fake_dns *g_dns;
static char g_hosts[64];

/* What a dial tried, in order, seen by the control hook (it runs after
 * socket() and before connect() with the address being tried). */
struct tried {
  char addr[MAX_TRIED][RILL_ADDRSTRLEN];
  int n;
  const char *refuse; /* the hook fails this address with -EACCES */
};

static int on_control(int fd, const char *network, const char *address, void *arg) {
  struct tried *t = (struct tried *)arg;
  (void)fd;
  (void)network;
  if (t->n < MAX_TRIED)
    snprintf(t->addr[t->n], sizeof t->addr[0], "%s", address);
  t->n++;
  return t->refuse && strcmp(address, t->refuse) == 0 ? -EACCES : 0;
}

static void names_options(rill_socket_config *o, rill_dns_config *cfg, struct tried *t) {
  memset(o, 0, sizeof *o);
  memset(cfg, 0, sizeof *cfg);
  cfg->servers = fake_dns_server(g_dns);
  cfg->hosts_file = g_hosts;
  cfg->timeout = 10 * RILL_SEC; /* per try: longer than anything a test waits for */
  cfg->tries = 1;
  o->dns = cfg;
  o->fallback_delay = 10 * RILL_SEC; /* a failure must move on without it */
  if (t) {
    memset(t, 0, sizeof *t);
    o->control = on_control;
    o->control_arg = t;
  }
}

static int free_port(void) {
  int port = 0, fd = fu_raw_listen(&port);
  if (fd < 0)
    return -1;
  close(fd);
  return port;
}

/* ---- every address tried, in order ---------------------------------------- */

struct accept_one {
  rill_net_listener *l;
  rill_waitgroup *done;
  int rc;
};

static void acceptor(void *arg) {
  struct accept_one *a = (struct accept_one *)arg;
  rill_net_conn *c = NULL;
  a->rc = rill_net_accept(a->l, &c);
  if (c)
    rill_net_conn_free(c);
  rill_waitgroup_done(a->done);
}

static void every_address_main(void *arg) {
  struct accept_one a;
  struct tried t;
  rill_socket_config o;
  rill_dns_config cfg;
  rill_net_conn *c = NULL;
  char laddr[RILL_ADDRSTRLEN], addr[64], want[64], remote[RILL_ADDRSTRLEN], errbuf[256];
  int port;
  (void)arg;
  memset(&a, 0, sizeof a);
  /* Only 127.0.0.1 listens: 127.0.0.2, the first address, refuses. */
  FCHECK_EQ(rill_net_listen("tcp", "127.0.0.1:0", NULL, &a.l), 0);
  if (!a.l)
    return;
  FCHECK(rill_net_listener_addr(a.l, laddr, sizeof laddr) > 0);
  port = atoi(strrchr(laddr, ':') + 1);
  FCHECK_EQ(rill_waitgroup_new(&a.done), 0);
  rill_waitgroup_add(a.done, 1);
  FCHECK_EQ(rill_go(rill_fiber_base(), acceptor, &a), 0);

  names_options(&o, &cfg, &t);
  snprintf(addr, sizeof addr, "two.test:%d", port);
  FCHECK_EQ(rill_net_dial("tcp4", addr, &o, &c, errbuf, sizeof errbuf), 0);
  FCHECK_EQ(t.n, 2);
  snprintf(want, sizeof want, "127.0.0.2:%d", port);
  FCHECK_STREQ(t.addr[0], want);
  snprintf(want, sizeof want, "127.0.0.1:%d", port);
  FCHECK_STREQ(t.addr[1], want);
  if (c) {
    FCHECK(rill_net_remote_addr(c, remote, sizeof remote) > 0);
    FCHECK_STREQ(remote, want);
    rill_net_conn_free(c);
  }
  FCHECK_EQ(rill_waitgroup_wait(a.done), 0);
  FCHECK_EQ(a.rc, 0);
  rill_waitgroup_free(a.done);
  rill_net_listener_free(a.l);
}

static void test_g11_facade_name_tries_every_address(void **state) {
  (void)state;
  fu_run_fiber(every_address_main, NULL, LIMIT);
}

/* ---- all fail: the first address's error -------------------------------- */

static void first_error_main(void *arg) {
  struct tried t;
  rill_socket_config o;
  rill_dns_config cfg;
  rill_net_conn *c = NULL;
  char addr[64], first[64], errbuf[256];
  int port = free_port();
  (void)arg;
  snprintf(addr, sizeof addr, "two.test:%d", port);
  snprintf(first, sizeof first, "127.0.0.2:%d", port);

  /* Two different errors: the first address fails in the control hook
   * (-EACCES), the second is refused. The first one is reported. */
  names_options(&o, &cfg, &t);
  t.refuse = first;
  FCHECK_EQ(rill_net_dial("tcp4", addr, &o, &c, errbuf, sizeof errbuf), -EACCES);
  FCHECK(c == NULL);
  FCHECK_EQ(t.n, 2);
  FCHECK(strstr(errbuf, first) != NULL);

  /* Both refused: the text names the first address. */
  names_options(&o, &cfg, &t);
  FCHECK_EQ(rill_net_dial("tcp4", addr, &o, &c, errbuf, sizeof errbuf), RILL_ECONNREFUSED);
  FCHECK_EQ(t.n, 2);
  FCHECK(strstr(errbuf, first) != NULL);
  if (!strstr(errbuf, first))
    fprintf(stderr, "error text: %s\n", errbuf);
}

static void test_g11_facade_all_fail_first_error_reported(void **state) {
  (void)state;
  fu_run_fiber(first_error_main, NULL, LIMIT);
}

/* ---- the timeout covers the lookup and the connect ------------------------ */

/* A raw listener that one connection fills (Linux admits backlog + 1), so
 * every later SYN is dropped: a connect to it neither completes nor fails. */
static int stuck_listener(int *port, int *filler) {
  struct sockaddr_in sin;
  struct pollfd p;
  socklen_t len = sizeof sin;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  memset(&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof sin) != 0 || listen(fd, 0) != 0 ||
      getsockname(fd, (struct sockaddr *)&sin, &len) != 0)
    goto fail;
  *port = ntohs(sin.sin_port);
  *filler = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (*filler < 0 || (connect(*filler, (struct sockaddr *)&sin, sizeof sin) != 0 && errno != EINPROGRESS))
    goto fail;
  p.fd = *filler;
  p.events = POLLOUT;
  p.revents = 0;
  if (poll(&p, 1, 5000) == 1)
    return fd;
fail:
  if (fd >= 0)
    close(fd);
  if (*filler >= 0)
    close(*filler);
  *filler = -1;
  return -1;
}

#define SLOW_ANSWER_MS 1500
#define SLOW_TIMEOUT_MS 2000

static void timeout_main(void *arg) {
  rill_socket_config o;
  rill_dns_config cfg;
  rill_net_conn *c = NULL;
  char addr[64], errbuf[256];
  int port = 0, filler = -1, lfd;
  uint64_t t0, took;
  (void)arg;

  /* The server never answers: the dial's timeout ends the lookup, long
   * before the resolver's own 10 s would. */
  names_options(&o, &cfg, NULL);
  o.timeout = 300 * RILL_MSEC;
  t0 = tu_now_ms();
  FCHECK_EQ(rill_net_dial("tcp4", "drop.test:80", &o, &c, errbuf, sizeof errbuf), RILL_ETIMEOUT);
  took = tu_now_ms() - t0;
  FCHECK(took >= 290);
  FCHECK(took < 5000);

  /* The answer comes after 1.5 s, and the address it names never accepts:
   * a 2 s timeout ends the dial 2 s after it started. Had the timeout
   * started after the lookup, it would end after 3.5 s. */
  lfd = stuck_listener(&port, &filler);
  FCHECK(lfd >= 0);
  if (lfd < 0)
    return;
  snprintf(addr, sizeof addr, "slow.test:%d", port);
  names_options(&o, &cfg, NULL);
  o.timeout = SLOW_TIMEOUT_MS * RILL_MSEC;
  t0 = tu_now_ms();
  FCHECK_EQ(rill_net_dial("tcp4", addr, &o, &c, errbuf, sizeof errbuf), RILL_ETIMEOUT);
  took = tu_now_ms() - t0;
  printf("# G11: lookup %d ms + stuck connect, timeout %d ms: ended after %llu ms\n", SLOW_ANSWER_MS,
         SLOW_TIMEOUT_MS, (unsigned long long)took);
  FCHECK(took >= SLOW_TIMEOUT_MS - 10);
  FCHECK(took < SLOW_ANSWER_MS + SLOW_TIMEOUT_MS);
  FCHECK(c == NULL);
  close(filler);
  close(lfd);
}

static void test_g11_facade_timeout_covers_lookup_and_connect(void **state) {
  (void)state;
  fu_run_fiber(timeout_main, NULL, LIMIT);
}

/* ---- the fake server ------------------------------------------------------- */

static int group_setup(void **state) {
  fake_dns_rule slow, drop;
  FILE *f;
  (void)state;
  if (fake_dns_start(&g_dns) < 0)
    return -1;
  snprintf(g_hosts, sizeof g_hosts, "/tmp/rill-test-gids-hosts-%d", (int)getpid());
  f = fopen(g_hosts, "w");
  if (!f)
    return -1;
  fclose(f); /* empty: every name goes to the fake server */
  if (fake_dns_add(g_dns, "two.test", "127.0.0.2,127.0.0.1") != 0)
    return -1;
  memset(&slow, 0, sizeof slow);
  slow.name = "slow.test";
  slow.qtype = FAKE_DNS_ANY;
  slow.action = FAKE_DNS_ANSWER;
  slow.addrs = "127.0.0.1";
  slow.delay_ms = SLOW_ANSWER_MS;
  memset(&drop, 0, sizeof drop);
  drop.name = "drop.test";
  drop.qtype = FAKE_DNS_ANY;
  drop.action = FAKE_DNS_DROP;
  if (fake_dns_add_rule(g_dns, &slow) != 0 || fake_dns_add_rule(g_dns, &drop) != 0)
    return -1;
  return 0;
}

static int group_teardown(void **state) {
  (void)state;
  fake_dns_stop(g_dns);
  unlink(g_hosts);
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_g11_facade_name_tries_every_address),
      cmocka_unit_test(test_g11_facade_all_fail_first_error_reported),
      cmocka_unit_test(test_g11_facade_timeout_covers_lookup_and_connect),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
