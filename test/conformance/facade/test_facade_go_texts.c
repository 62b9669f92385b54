/* G30, G31 through the blocking facade: for every error situation the text
 * rill gives (rill_net_dial's errbuf, rill_net_format_error,
 * rill_net_listener_format_error, rill_format_net_error for a listen) is
 * Go's err.Error(). The Go texts are pinned in test/support/go_texts.c,
 * each beside the Go line it matches; when Go was installed at configure
 * time, test/go_texts/go_texts.go runs too and must still print them.
 * Loopback only; DNS through the fake server (test/support/fake_dns.c). */
#define _GNU_SOURCE 1

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "facade_util.c"
#include "fake_dns.h"
#include "go_texts.h"

#define LIMIT 60000 /* a hang guard only */

static fake_dns *g_dns;
static char g_dead_dns[64];
static char g_dir[64];
static int g_closed_port;
static char g_closed[64];
static char g_closed_port_text[16];
static go_output g_go;
static int g_go_ran;
static const char *g_vars[16];
static go_checked g_checked;

static void set_vars(const char *listener, const char *local) {
  const char *v[] = {"closed", g_closed, "closedport", g_closed_port_text, "dir", g_dir,
                     "dns", g_dns ? fake_dns_server(g_dns) : "", "deaddns", g_dead_dns,
                     "listener", listener ? listener : "", "local", local ? local : "", NULL};
  memcpy(g_vars, v, sizeof v);
}

/* rill's text must be `prefix` and Go's text for `key`: Go's Dial wraps a
 * lookup's error as "dial tcp: " + the lookup's. Safe inside fibers. */
static void fcheck_text(const char *file, int line, const char *key, const char *prefix, const char *rill_text) {
  const char *pinned = go_texts_pinned_text(key);
  char want[512], expanded[480], what[1200];
  if (!pinned) {
    fiber_check_failed(file, line, key);
    return;
  }
  go_texts_expand(pinned, g_vars, expanded, sizeof expanded);
  snprintf(want, sizeof want, "%s%s", prefix, expanded);
  if (strcmp(rill_text, want) != 0) {
    snprintf(what, sizeof what, "%s:\n  rill: %s\n  Go:   %s", key, rill_text, want);
    fiber_check_failed(file, line, what);
  }
  go_checked_add(&g_checked, key);
}
#define CHECK_TEXT(key, text) fcheck_text(__FILE__, __LINE__, (key), "", (text))
#define CHECK_DIAL_TEXT(key, text) fcheck_text(__FILE__, __LINE__, (key), "dial tcp: ", (text))

static int dead_udp_address(char *out, size_t size) {
  struct sockaddr_in sin;
  socklen_t len = sizeof sin;
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  memset(&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof sin) != 0 ||
      getsockname(fd, (struct sockaddr *)&sin, &len) != 0)
    return -1;
  close(fd);
  snprintf(out, size, "127.0.0.1:%d", ntohs(sin.sin_port));
  return 0;
}

static int group_setup(void **state) {
  fake_dns_rule rule;
  char path[128];
  int fd;
  (void)state;
  if (fake_dns_start(&g_dns) < 0)
    return -1;
  memset(&rule, 0, sizeof rule);
  rule.qtype = FAKE_DNS_ANY;
  rule.name = "refused.test";
  rule.action = FAKE_DNS_REFUSED;
  fake_dns_add_rule(g_dns, &rule);
  rule.name = "servfail.test";
  rule.action = FAKE_DNS_SERVFAIL;
  fake_dns_add_rule(g_dns, &rule);
  rule.name = "drop.test";
  rule.action = FAKE_DNS_DROP;
  fake_dns_add_rule(g_dns, &rule);
  if (dead_udp_address(g_dead_dns, sizeof g_dead_dns) != 0)
    return -1;
  snprintf(g_dir, sizeof g_dir, "/tmp/rill-facade-go-texts-XXXXXX");
  if (!mkdtemp(g_dir))
    return -1;
  fd = fu_raw_listen(&g_closed_port);
  if (fd < 0)
    return -1;
  close(fd);
  snprintf(g_closed, sizeof g_closed, "127.0.0.1:%d", g_closed_port);
  snprintf(g_closed_port_text, sizeof g_closed_port_text, "%d", g_closed_port);
  {
    const char *args[] = {"-dns", fake_dns_server(g_dns), "-deaddns", g_dead_dns, "-dir", g_dir,
                          "-closed", g_closed_port_text, NULL};
    g_go_ran = go_texts_run(args, &g_go, 90000);
  }
  snprintf(path, sizeof path, "%s/s.sock", g_dir);
  unlink(path);
  return g_go_ran < 0 ? -1 : 0;
}

static int group_teardown(void **state) {
  char path[128];
  (void)state;
  fake_dns_stop(g_dns);
  snprintf(path, sizeof path, "%s/s.sock", g_dir);
  unlink(path);
  rmdir(g_dir);
  return 0;
}

/* ---- malformed addresses, unknown networks, failed dials -------------- */

static void dial_texts_main(void *arg) {
  static const struct {
    const char *key, *network, *address;
    int code;
  } dials[] = {
      {"addr_noport", "tcp", "1.2.3.4", RILL_EADDR_NOPORT},
      {"addr_colons", "tcp", "::1:80", RILL_EADDR_COLONS},
      {"addr_nobracket", "tcp", "[::1:80", RILL_EADDR_NOBRACKET},
      {"addr_openbracket", "tcp", "a[b:80", RILL_EADDR_OPENBRACKET},
      {"addr_closebracket", "tcp", "a]b:80", RILL_EADDR_CLOSEBRACKET},
      {"addr_port", "tcp", "127.0.0.1:99999", RILL_EADDR_PORT},
      {"addr_service", "tcp", "127.0.0.1:nosuchservice", RILL_EADDR_SERVICE},
      {"addr_missing", "tcp", "", RILL_EADDR_MISSING},
      {"addr_family", "tcp4", "[::1]:1", RILL_EADDR_FAMILY},
      {"unknown_network", "tcp7", "127.0.0.1:1", RILL_EUNKNOWN_NETWORK},
      {"dial_refused", "tcp", NULL, -ECONNREFUSED},      /* g_closed */
      {"dial_local_system", "tcp", "", -ECONNREFUSED},   /* ":port" (G30) */
  };
  static const struct {
    const char *key, *network, *address;
    int code;
  } listens[] = {
      {"listen_noport", "tcp", "1.2.3.4", RILL_EADDR_NOPORT},
      {"listen_port", "tcp", "127.0.0.1:-1", RILL_EADDR_PORT},
      {"listen_unknown_network", "tcp7", "127.0.0.1:0", RILL_EUNKNOWN_NETWORK},
  };
  char errbuf[256], local_system[32];
  size_t i;
  (void)arg;
  set_vars(NULL, NULL);
  snprintf(local_system, sizeof local_system, ":%d", g_closed_port);
  for (i = 0; i < sizeof dials / sizeof dials[0]; i++) {
    rill_net_conn *c = NULL;
    const char *address = dials[i].address;
    int rc;
    if (!address)
      address = g_closed;
    else if (strcmp(dials[i].key, "dial_local_system") == 0)
      address = local_system;
    rc = rill_net_dial(dials[i].network, address, NULL, &c, errbuf, sizeof errbuf);
    FCHECK_EQ(rc, dials[i].code);
    CHECK_TEXT(dials[i].key, errbuf);
  }
  for (i = 0; i < sizeof listens / sizeof listens[0]; i++) {
    rill_net_listener *l = NULL;
    int rc = rill_net_listen(listens[i].network, listens[i].address, NULL, &l);
    FCHECK_EQ(rc, listens[i].code);
    FCHECK(rill_format_net_error("listen", listens[i].network, listens[i].address, rc, errbuf,
                                 sizeof errbuf) > 0);
    CHECK_TEXT(listens[i].key, errbuf);
  }
}

static void test_g30_g31_dial_and_address_texts(void **state) {
  (void)state;
  fu_run_fiber(dial_texts_main, NULL, LIMIT);
}

/* G30: ":port" reaches an IPv4-only listener on this host, as Go's does. */
static void local_system_main(void *arg) {
  rill_net_listener *l = NULL;
  rill_net_conn *c = NULL, *s = NULL;
  char listener[RILL_ADDRSTRLEN], address[32], remote[RILL_ADDRSTRLEN];
  (void)arg;
  FCHECK_EQ(rill_net_listen("tcp4", "127.0.0.1:0", NULL, &l), 0);
  if (!l)
    return;
  FCHECK(rill_net_listener_addr(l, listener, sizeof listener) > 0);
  snprintf(address, sizeof address, "%s", strrchr(listener, ':'));
  FCHECK_EQ(rill_net_dial("tcp", address, NULL, &c, NULL, 0), 0);
  if (c) {
    FCHECK(rill_net_remote_addr(c, remote, sizeof remote) > 0);
    FCHECK_STREQ(remote, listener);
    FCHECK_EQ(rill_net_accept(l, &s), 0);
    rill_net_conn_free(s);
    rill_net_conn_free(c);
  }
  rill_net_listener_free(l);
}

static void test_g30_local_system(void **state) {
  (void)state;
  fu_run_fiber(local_system_main, NULL, LIMIT);
}

/* ---- a listener and a connection, then both closed --------------------- */

static void conn_texts_main(void *arg) {
  rill_net_listener *l = NULL, *again = NULL;
  rill_net_conn *c = NULL, *s = NULL;
  char listener[RILL_ADDRSTRLEN], local[RILL_ADDRSTRLEN], text[256], buf[16];
  int rc;
  (void)arg;
  FCHECK_EQ(rill_net_listen("tcp", "127.0.0.1:0", NULL, &l), 0);
  if (!l)
    return;
  FCHECK(rill_net_listener_addr(l, listener, sizeof listener) > 0);
  set_vars(listener, NULL);
  rc = rill_net_listen("tcp", listener, NULL, &again);
  FCHECK_EQ(rc, -EADDRINUSE);
  rill_format_net_error("listen", "tcp", listener, rc, text, sizeof text);
  CHECK_TEXT("listen_in_use", text);

  FCHECK_EQ(rill_net_dial("tcp", listener, NULL, &c, NULL, 0), 0);
  FCHECK_EQ(rill_net_accept(l, &s), 0);
  if (!c || !s) {
    rill_net_listener_free(l);
    return;
  }
  FCHECK(rill_net_local_addr(c, local, sizeof local) > 0);
  set_vars(listener, local);
  rill_net_set_deadline(c, RILL_DEADLINE_READ, rill_time_now() + 10 * RILL_MSEC);
  rc = (int)rill_net_read(c, buf, sizeof buf);
  FCHECK_EQ(rc, RILL_ETIMEOUT);
  rill_net_format_error(c, "read", rc, text, sizeof text);
  CHECK_TEXT("read_timeout", text);
  rill_net_close(s);
  rill_net_set_deadline(c, RILL_DEADLINE_READ, 0);
  rc = (int)rill_net_read(c, buf, sizeof buf);
  FCHECK_EQ(rc, RILL_EOF);
  rill_net_format_error(c, "read", rc, text, sizeof text);
  CHECK_TEXT("read_eof", text);

  FCHECK_EQ(rill_net_close(c), 0);
#define CLOSED(key, op, call)                       \
  do {                                              \
    int rc_ = (int)(call);                          \
    FCHECK_EQ(rc_, RILL_ECLOSED);                   \
    rill_net_format_error(c, op, rc_, text, sizeof text); \
    CHECK_TEXT(key, text);                          \
  } while (0)
  CLOSED("read_closed", "read", rill_net_read(c, buf, sizeof buf));
  CLOSED("write_closed", "write", rill_net_write(c, "x", 1, NULL));
  CLOSED("close_closed", "close", rill_net_close(c));
  CLOSED("set_no_delay_closed", "set_no_delay", rill_net_set_no_delay(c, 1));
  CLOSED("set_keep_alive_closed", "set_keep_alive", rill_net_set_keep_alive(c, 1, RILL_SEC));
  CLOSED("set_linger_closed", "set_linger", rill_net_set_linger(c, 1));
  CLOSED("set_read_buffer_closed", "set_read_buffer", rill_net_set_read_buffer(c, 4096));
  CLOSED("set_write_buffer_closed", "set_write_buffer", rill_net_set_write_buffer(c, 4096));
  CLOSED("set_deadline_closed", "set_deadline", rill_net_set_deadline(c, RILL_DEADLINE_BOTH, rill_time_now()));
#undef CLOSED

  FCHECK_EQ(rill_net_listener_close(l), 0);
  rc = rill_net_accept(l, &s);
  FCHECK_EQ(rc, RILL_ECLOSED);
  rill_net_listener_format_error(l, "accept", rc, text, sizeof text);
  CHECK_TEXT("accept_closed", text);
  rc = rill_net_listener_close(l);
  FCHECK_EQ(rc, RILL_ECLOSED);
  rill_net_listener_format_error(l, "close", rc, text, sizeof text);
  CHECK_TEXT("listener_close_closed", text);
  rill_net_conn_free(c);
  rill_net_conn_free(s);
  rill_net_listener_free(l);
}

static void test_g31_conn_and_listener_texts(void **state) {
  (void)state;
  fu_run_fiber(conn_texts_main, NULL, LIMIT);
}

/* ---- Unix sockets ------------------------------------------------------ */

static void unix_texts_main(void *arg) {
  rill_net_listener *l = NULL, *again = NULL;
  rill_net_conn *c = NULL, *s = NULL;
  char path[128], missing[128], text[256], buf[16];
  int rc;
  (void)arg;
  set_vars(NULL, NULL);
  snprintf(path, sizeof path, "%s/s.sock", g_dir);
  snprintf(missing, sizeof missing, "%s/missing.sock", g_dir);
  FCHECK_EQ(rill_net_dial("unix", missing, NULL, &c, text, sizeof text), -ENOENT);
  CHECK_TEXT("unix_dial_missing", text);
  FCHECK_EQ(rill_net_listen("unix", path, NULL, &l), 0);
  if (!l)
    return;
  rc = rill_net_listen("unix", path, NULL, &again);
  FCHECK_EQ(rc, -EADDRINUSE);
  rill_format_net_error("listen", "unix", path, rc, text, sizeof text);
  CHECK_TEXT("unix_listen_in_use", text);
  FCHECK_EQ(rill_net_dial("unix", path, NULL, &c, NULL, 0), 0);
  FCHECK_EQ(rill_net_accept(l, &s), 0);
  if (c && s) {
    rill_net_set_deadline(c, RILL_DEADLINE_READ, rill_time_now() + 10 * RILL_MSEC);
    rc = (int)rill_net_read(c, buf, sizeof buf);
    FCHECK_EQ(rc, RILL_ETIMEOUT);
    rill_net_format_error(c, "read", rc, text, sizeof text);
    CHECK_TEXT("unix_read_timeout_client", text);
    rill_net_set_deadline(s, RILL_DEADLINE_READ, rill_time_now() + 10 * RILL_MSEC);
    rc = (int)rill_net_read(s, buf, sizeof buf);
    FCHECK_EQ(rc, RILL_ETIMEOUT);
    rill_net_format_error(s, "read", rc, text, sizeof text);
    CHECK_TEXT("unix_read_timeout_server", text);
  }
  rill_net_conn_free(c);
  rill_net_conn_free(s);
  rill_net_listener_close(l);
  rc = rill_net_accept(l, &s);
  FCHECK_EQ(rc, RILL_ECLOSED);
  rill_net_listener_format_error(l, "accept", rc, text, sizeof text);
  CHECK_TEXT("unix_accept_closed", text);
  rill_net_listener_free(l);
}

static void test_g31_unix_texts(void **state) {
  (void)state;
  fu_run_fiber(unix_texts_main, NULL, LIMIT);
}

/* ---- DNS: the facade dials by name ------------------------------------- */

static void dns_texts_main(void *arg) {
  static const struct {
    const char *key, *name;
    int code;
    int dead;
  } cases[] = {
      {"dns_nxdomain", "nx.test:80", RILL_EDNS_NOHOST, 0},
      {"dns_refused", "refused.test:80", RILL_EDNS_REFUSED, 0},
      {"dns_servfail", "servfail.test:80", RILL_EDNS_SERVFAIL, 0},
      {"dns_timeout", "drop.test:80", RILL_EDNS_TIMEOUT, 0},
      {"dns_unreachable", "nx.test:80", RILL_EDNS_UNREACHABLE, 1},
  };
  rill_dns_config cfg, dead;
  rill_socket_config o;
  rill_net_conn *c = NULL;
  char errbuf[256];
  size_t i;
  (void)arg;
  set_vars(NULL, NULL);
  memset(&cfg, 0, sizeof cfg);
  cfg.servers = fake_dns_server(g_dns);
  cfg.lookup = RILL_LOOKUP_DNS;
  cfg.timeout = 200 * RILL_MSEC;
  cfg.tries = 1;
  dead = cfg;
  dead.servers = g_dead_dns;
  dead.tries = 2; /* with one try c-ares 1.18 reports a refused query as a timeout */
  dead.timeout = 2 * RILL_SEC;
  memset(&o, 0, sizeof o);
  for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int rc;
    o.dns = cases[i].dead ? &dead : &cfg;
    rc = rill_net_dial("tcp", cases[i].name, &o, &c, errbuf, sizeof errbuf);
    FCHECK_EQ(rc, cases[i].code);
    FCHECK(RILL_IS_DNS_ERROR(rc));
    /* Go's Dial: "dial tcp: " and the lookup's error. */
    CHECK_DIAL_TEXT(cases[i].key, errbuf);
  }
  o.dns = &cfg;
  FCHECK_EQ(rill_net_dial("tcp", "nx.test:80", &o, &c, errbuf, sizeof errbuf), RILL_EDNS_NOHOST);
  CHECK_TEXT("dial_nxdomain", errbuf);
  /* The dial's own timeout ends a lookup that would wait longer. */
  cfg.timeout = 5 * RILL_SEC;
  o.timeout = 300 * RILL_MSEC;
  FCHECK_EQ(rill_net_dial("tcp", "drop.test:80", &o, &c, errbuf, sizeof errbuf), RILL_ETIMEOUT);
  CHECK_TEXT("dial_dns_timeout", errbuf);
}

static void test_g31_dns_texts(void **state) {
  TU_SKIP_ON_LIBKQUEUE("a refused DNS query's ICMP error is read off the UDP socket (SO_ERROR) by libkqueue before rill sees it");
  (void)state;
  if (!rill_dns_version())
    skip();
  fu_run_fiber(dns_texts_main, NULL, LIMIT);
}

/* Every pinned text was checked, and (with Go) Go prints it still. */
static void test_g31_every_text_checked_and_go_agrees(void **state) {
  char why[1200];
  TU_SKIP_ON_LIBKQUEUE("the texts the two tests above check are not checked there");
  (void)state;
  if (go_texts_verify(&g_checked, rill_dns_version() != NULL, g_go_ran ? &g_go : NULL, why,
                      sizeof why) != 0)
    fail_msg("%s", why);
  if (!g_go_ran)
    print_message("Go not built in: rill's texts checked against the pinned Go texts only\n");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_g30_g31_dial_and_address_texts),
      cmocka_unit_test(test_g30_local_system),
      cmocka_unit_test(test_g31_conn_and_listener_texts),
      cmocka_unit_test(test_g31_unix_texts),
      cmocka_unit_test(test_g31_dns_texts),
      cmocka_unit_test(test_g31_every_text_checked_and_go_agrees),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
