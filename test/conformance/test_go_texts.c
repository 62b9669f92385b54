/* G30, G31 through the callback API: for every error situation Go's
 * err.Error() and rill's formatted text are the same. The texts are pinned
 * in test/support/go_texts.c beside the Go line each matches; when Go was
 * installed at configure time, test/go_texts/go_texts.go runs too and the
 * pinned texts are checked against what Go prints now. Loopback only; DNS
 * through the fake server (test/support/fake_dns.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fake_dns.h"
#include "go_texts.h"
#include "net_util.h"
#include "rill.h"
#include "test_util.h"

#define LIMIT 20000

static fake_dns *g_dns;
static char g_dead_dns[64];   /* a UDP address nobody serves */
static char g_dir[64];        /* for Unix sockets */
static int g_closed_port;     /* a TCP port nobody listens on */
static char g_closed[64];
static char g_closed_port_text[16];
static go_output g_go;
static int g_go_ran;
static go_checked g_checked;

/* {placeholder} values for this run; `listener` and `local` per test. */
static const char *g_vars[16];

static void set_vars(const char *listener, const char *local) {
  const char *v[] = {"closed", g_closed, "closedport", g_closed_port_text, "dir", g_dir,
                     "dns", g_dns ? fake_dns_server(g_dns) : "", "deaddns", g_dead_dns,
                     "listener", listener ? listener : "", "local", local ? local : "", NULL};
  memcpy(g_vars, v, sizeof v);
}

/* rill's text for `key` must be Go's, with this run's addresses. */
static void check_text(const char *key, const char *rill_text) {
  const char *pinned = go_texts_pinned_text(key);
  char want[512];
  if (!pinned)
    fail_msg("no Go text pinned for %s", key);
  go_texts_expand(pinned, g_vars, want, sizeof want);
  if (strcmp(rill_text, want) != 0)
    fail_msg("%s:\n  rill: %s\n  Go:   %s", key, rill_text, want);
  go_checked_add(&g_checked, key);
}

static int dead_udp_address(char *out, size_t size) {
  struct sockaddr_in sin;
  socklen_t len = sizeof sin;
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
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
  char closed_arg[16];
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
  snprintf(g_dir, sizeof g_dir, "/tmp/rill-go-texts-XXXXXX");
  if (!mkdtemp(g_dir))
    return -1;
  g_closed_port = nu_free_port("127.0.0.1");
  snprintf(g_closed, sizeof g_closed, "127.0.0.1:%d", g_closed_port);
  snprintf(g_closed_port_text, sizeof g_closed_port_text, "%d", g_closed_port);
  snprintf(closed_arg, sizeof closed_arg, "%d", g_closed_port);
  {
    const char *args[] = {"-dns", fake_dns_server(g_dns), "-deaddns", g_dead_dns, "-dir", g_dir,
                          "-closed", closed_arg, NULL};
    g_go_ran = go_texts_run(args, &g_go, 90000);
  }
  /* Go's sockets are gone; rill's tests use the same paths. */
  {
    char path[128];
    snprintf(path, sizeof path, "%s/s.sock", g_dir);
    unlink(path);
  }
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

/* ---- malformed addresses, unknown networks ---------------------------- */

static void never_dial(rill_dialer *d, rill_conn *c, int status, void *arg) {
  (void)d, (void)c, (void)status, (void)arg;
  fail_msg("no callback for a dial that failed at once");
}

static void never_accept(rill_listener *l, rill_conn *c, int status, void *arg) {
  (void)l, (void)c, (void)status, (void)arg;
}

static void test_g31_malformed_addresses(void **state) {
  static const struct {
    const char *key, *op, *network, *address;
    int code;
  } cases[] = {
      {"addr_noport", "dial", "tcp", "1.2.3.4", RILL_EADDR_NOPORT},
      {"addr_colons", "dial", "tcp", "::1:80", RILL_EADDR_COLONS},
      {"addr_nobracket", "dial", "tcp", "[::1:80", RILL_EADDR_NOBRACKET},
      {"addr_openbracket", "dial", "tcp", "a[b:80", RILL_EADDR_OPENBRACKET},
      {"addr_closebracket", "dial", "tcp", "a]b:80", RILL_EADDR_CLOSEBRACKET},
      {"addr_port", "dial", "tcp", "127.0.0.1:99999", RILL_EADDR_PORT},
      {"addr_service", "dial", "tcp", "127.0.0.1:nosuchservice", RILL_EADDR_SERVICE},
      {"addr_missing", "dial", "tcp", "", RILL_EADDR_MISSING},
      {"addr_family", "dial", "tcp4", "[::1]:1", RILL_EADDR_FAMILY},
      {"unknown_network", "dial", "tcp7", "127.0.0.1:1", RILL_EUNKNOWN_NETWORK},
      {"listen_noport", "listen", "tcp", "1.2.3.4", RILL_EADDR_NOPORT},
      {"listen_port", "listen", "tcp", "127.0.0.1:-1", RILL_EADDR_PORT},
      {"listen_unknown_network", "listen", "tcp7", "127.0.0.1:0", RILL_EUNKNOWN_NETWORK},
  };
  rill_base *base = tu_base_new();
  size_t i;
  (void)state;
  set_vars(NULL, NULL);
  for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char text[256];
    rill_listener *l = NULL;
    int rc = strcmp(cases[i].op, "dial") == 0
                 ? rill_dial(base, cases[i].network, cases[i].address, NULL, never_dial, NULL, NULL)
                 : rill_listen(base, cases[i].network, cases[i].address, NULL, never_accept, NULL, &l);
    if (rc != cases[i].code)
      fail_msg("%s: %d (%s), want %s", cases[i].key, rc, rill_err_name(rc), rill_err_name(cases[i].code));
    assert_true(rill_format_net_error(cases[i].op, cases[i].network, cases[i].address, rc, text,
                                      sizeof text) > 0);
    check_text(cases[i].key, text);
  }
  tu_base_free(base);
}

/* ---- dials that fail; G30 ---------------------------------------------- */

struct dial_result {
  int done;
  int status;
  rill_conn *conn;
  char text[256];
};

static void on_dial(rill_dialer *d, rill_conn *c, int status, void *arg) {
  struct dial_result *r = arg;
  r->done = 1;
  r->status = status;
  r->conn = c;
  if (status)
    rill_dialer_format_error(d, status, r->text, sizeof r->text);
}

static void dial_and_wait(rill_base *base, const char *network, const char *address,
                          const rill_socket_config *o, struct dial_result *r) {
  memset(r, 0, sizeof *r);
  assert_int_equal(rill_dial(base, network, address, o, on_dial, r, NULL), 0);
  while (!r->done)
    TU_RUN(base, RILL_RUN_ONCE, LIMIT);
}

static void test_g30_g31_dial_failures(void **state) {
  rill_base *base = tu_base_new();
  struct dial_result r;
  char address[64];
  (void)state;
  set_vars(NULL, NULL);
  dial_and_wait(base, "tcp", g_closed, NULL, &r);
  assert_int_equal(r.status, RILL_ECONNREFUSED);
  check_text("dial_refused", r.text);
  /* G30: ":port" is this host over IPv4, and the text shows ":port". */
  snprintf(address, sizeof address, ":%d", g_closed_port);
  dial_and_wait(base, "tcp", address, NULL, &r);
  assert_int_equal(r.status, RILL_ECONNREFUSED);
  check_text("dial_local_system", r.text);
  tu_base_free(base);
}

static void accept_keep(rill_listener *l, rill_conn *c, int status, void *arg) {
  rill_conn **out = arg;
  (void)l;
  if (status == 0)
    *out = c;
}

static void test_g30_local_system_reaches_ipv4(void **state) {
  rill_base *base = tu_base_new();
  rill_listener *l;
  rill_conn *accepted = NULL;
  struct dial_result r;
  char address[64], remote[RILL_ADDRSTRLEN];
  (void)state;
  /* An IPv4-only listener: Go's ":port" reaches it, and so must rill's. */
  assert_int_equal(rill_listen(base, "tcp4", "127.0.0.1:0", NULL, accept_keep, &accepted, &l), 0);
  snprintf(address, sizeof address, ":%d", rill_listener_port(l));
  dial_and_wait(base, "tcp", address, NULL, &r);
  assert_int_equal(r.status, 0);
  assert_true(rill_conn_remote_addr(r.conn, remote, sizeof remote) > 0);
  snprintf(address, sizeof address, "127.0.0.1:%d", rill_listener_port(l));
  assert_string_equal(remote, address);
  rill_conn_abort(r.conn);
  while (!accepted)
    TU_RUN(base, RILL_RUN_ONCE, LIMIT);
  rill_conn_abort(accepted);
  rill_listener_free(l);
  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  tu_base_free(base);
}

/* ---- a listener and a connection --------------------------------------- */

struct conn_state {
  int status;      /* the last on_read status */
  int reports;
  char text[256];  /* its formatted text */
  int closed;
};

static size_t on_read(rill_conn *c, const char *data, size_t len, int status, void *arg) {
  struct conn_state *s = arg;
  (void)data;
  if (status == 0)
    return len;
  s->status = status;
  s->reports++;
  rill_conn_format_error(c, "read", status, s->text, sizeof s->text);
  return 0;
}

static void on_close(rill_conn *c, void *arg) {
  struct conn_state *s = arg;
  (void)c;
  s->closed = 1;
}

static void check_closed_conn(rill_conn *c, const char *key, const char *op, int rc) {
  char text[256];
  if (rc != RILL_ECLOSED)
    fail_msg("%s: %d (%s), want ECLOSED", key, rc, rill_err_name(rc));
  assert_true(rill_conn_format_error(c, op, rc, text, sizeof text) > 0);
  check_text(key, text);
}

struct accept_close {
  int done;
  char accept_text[256];
  char close_text[256];
};

/* Closes the listener inside its own on_accept: until that returns, the
 * handle answers RILL_ECLOSED, the callback API's "accept on a closed
 * listener". */
static void accept_then_close(rill_listener *l, rill_conn *c, int status, void *arg) {
  struct accept_close *a = arg;
  if (status == 0)
    rill_conn_abort(c);
  rill_listener_free(l);
  assert_int_equal(rill_listener_start(l), RILL_ECLOSED);
  rill_listener_format_error(l, "accept", RILL_ECLOSED, a->accept_text, sizeof a->accept_text);
  rill_listener_format_error(l, "close", RILL_ECLOSED, a->close_text, sizeof a->close_text);
  a->done = 1;
}

static void test_g31_listener_and_conn(void **state) {
  rill_base *base = tu_base_new();
  rill_listener *l, *again = NULL;
  rill_conn *accepted = NULL;
  struct dial_result r;
  struct conn_state cs, ss;
  struct accept_close ac;
  rill_conn_events ev = {0};
  char listener[RILL_ADDRSTRLEN], local[RILL_ADDRSTRLEN], text[256];
  int rc;
  (void)state;
  assert_int_equal(rill_listen(base, "tcp", "127.0.0.1:0", NULL, accept_keep, &accepted, &l), 0);
  assert_true(rill_listener_addr(l, listener, sizeof listener) > 0);
  rc = rill_listen(base, "tcp", listener, NULL, never_accept, NULL, &again);
  assert_int_equal(rc, -EADDRINUSE);
  set_vars(listener, NULL);
  assert_true(rill_format_net_error("listen", "tcp", listener, rc, text, sizeof text) > 0);
  check_text("listen_in_use", text);

  dial_and_wait(base, "tcp", listener, NULL, &r);
  assert_int_equal(r.status, 0);
  while (!accepted)
    TU_RUN(base, RILL_RUN_ONCE, LIMIT);
  assert_true(rill_conn_local_addr(r.conn, local, sizeof local) > 0);
  set_vars(listener, local);
  memset(&cs, 0, sizeof cs);
  memset(&ss, 0, sizeof ss);
  ev.on_read = on_read;
  ev.on_close = on_close;
  assert_int_equal(rill_conn_set_deadline(r.conn, RILL_DEADLINE_READ, rill_time_now() + 10 * RILL_MSEC), 0);
  assert_int_equal(rill_conn_start(r.conn, &ev, &cs), 0);
  while (!cs.reports)
    TU_RUN(base, RILL_RUN_ONCE, LIMIT);
  assert_int_equal(cs.status, RILL_ETIMEOUT);
  check_text("read_timeout", cs.text);

  /* The peer closes: EOF, printed as Go's io.EOF. */
  assert_int_equal(rill_conn_set_deadline(r.conn, RILL_DEADLINE_READ, 0), 0);
  assert_int_equal(rill_conn_start(accepted, &ev, &ss), 0);
  assert_int_equal(rill_conn_close(accepted), 0);
  while (cs.reports < 2)
    TU_RUN(base, RILL_RUN_ONCE, LIMIT);
  assert_int_equal(cs.status, RILL_EOF);
  check_text("read_eof", cs.text);

  /* Every call on a closed connection, each with Go's text. */
  assert_int_equal(rill_conn_close_now(r.conn), 0);
  check_closed_conn(r.conn, "read_closed", "read", rill_conn_read_start(r.conn));
  check_closed_conn(r.conn, "write_closed", "write", rill_conn_write(r.conn, "x", 1));
  check_closed_conn(r.conn, "close_closed", "close", rill_conn_close(r.conn));
  check_closed_conn(r.conn, "set_no_delay_closed", "set_no_delay", rill_conn_set_no_delay(r.conn, 1));
  check_closed_conn(r.conn, "set_keep_alive_closed", "set_keep_alive",
                    rill_conn_set_keep_alive(r.conn, 1, RILL_SEC));
  check_closed_conn(r.conn, "set_linger_closed", "set_linger", rill_conn_set_linger(r.conn, 1));
  check_closed_conn(r.conn, "set_read_buffer_closed", "set_read_buffer",
                    rill_conn_set_read_buffer(r.conn, 4096));
  check_closed_conn(r.conn, "set_write_buffer_closed", "set_write_buffer",
                    rill_conn_set_write_buffer(r.conn, 4096));
  check_closed_conn(r.conn, "set_deadline_closed", "set_deadline",
                    rill_conn_set_deadline(r.conn, RILL_DEADLINE_BOTH, rill_time_now()));
  while (!cs.closed || !ss.closed)
    TU_RUN(base, RILL_RUN_ONCE, LIMIT);

  /* The listener, closed inside its on_accept. */
  memset(&ac, 0, sizeof ac);
  assert_int_equal(rill_listen(base, "tcp", "127.0.0.1:0", NULL, accept_then_close, &ac, &again), 0);
  assert_true(rill_listener_addr(again, listener, sizeof listener) > 0);
  rill_listener_free(l);
  set_vars(listener, NULL);
  dial_and_wait(base, "tcp", listener, NULL, &r);
  while (!ac.done)
    TU_RUN(base, RILL_RUN_ONCE, LIMIT);
  check_text("accept_closed", ac.accept_text);
  check_text("listener_close_closed", ac.close_text);
  if (r.status == 0)
    rill_conn_abort(r.conn);
  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  tu_base_free(base);
}

/* ---- Unix sockets ------------------------------------------------------ */

static void test_g31_unix(void **state) {
  rill_base *base = tu_base_new();
  rill_listener *l, *again = NULL;
  rill_conn *accepted = NULL;
  struct dial_result r;
  struct conn_state cs, ss;
  struct accept_close ac;
  rill_conn_events ev = {0};
  char path[128], missing[128], text[256];
  int rc;
  (void)state;
  set_vars(NULL, NULL);
  snprintf(path, sizeof path, "%s/s.sock", g_dir);
  snprintf(missing, sizeof missing, "%s/missing.sock", g_dir);
  dial_and_wait(base, "unix", missing, NULL, &r);
  assert_int_equal(r.status, -ENOENT);
  check_text("unix_dial_missing", r.text);

  assert_int_equal(rill_listen(base, "unix", path, NULL, accept_keep, &accepted, &l), 0);
  rc = rill_listen(base, "unix", path, NULL, never_accept, NULL, &again);
  assert_int_equal(rc, -EADDRINUSE);
  assert_true(rill_format_net_error("listen", "unix", path, rc, text, sizeof text) > 0);
  check_text("unix_listen_in_use", text);

  dial_and_wait(base, "unix", path, NULL, &r);
  assert_int_equal(r.status, 0);
  while (!accepted)
    TU_RUN(base, RILL_RUN_ONCE, LIMIT);
  memset(&cs, 0, sizeof cs);
  memset(&ss, 0, sizeof ss);
  ev.on_read = on_read;
  ev.on_close = on_close;
  assert_int_equal(rill_conn_set_deadline(r.conn, RILL_DEADLINE_READ, rill_time_now() + 10 * RILL_MSEC), 0);
  assert_int_equal(rill_conn_start(r.conn, &ev, &cs), 0);
  assert_int_equal(rill_conn_set_deadline(accepted, RILL_DEADLINE_READ, rill_time_now() + 10 * RILL_MSEC), 0);
  assert_int_equal(rill_conn_start(accepted, &ev, &ss), 0);
  while (!cs.reports || !ss.reports)
    TU_RUN(base, RILL_RUN_ONCE, LIMIT);
  check_text("unix_read_timeout_client", cs.text);
  check_text("unix_read_timeout_server", ss.text);
  rill_conn_close_now(r.conn);
  rill_conn_close_now(accepted);
  rill_listener_free(l);

  /* Accept on a closed Unix listener: closed inside its own on_accept. */
  memset(&ac, 0, sizeof ac);
  assert_int_equal(rill_listen(base, "unix", path, NULL, accept_then_close, &ac, &l), 0);
  dial_and_wait(base, "unix", path, NULL, &r);
  while (!ac.done)
    TU_RUN(base, RILL_RUN_ONCE, LIMIT);
  check_text("unix_accept_closed", ac.accept_text);
  if (r.status == 0)
    rill_conn_abort(r.conn);
  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  tu_base_free(base);
}

/* ---- DNS --------------------------------------------------------------- */

struct lookup_result {
  int done;
  int status;
  char text[256];
};

static const char *g_lookup_name;

static void on_lookup(rill_dns_query *q, int status, const rill_dns_result *res, void *arg) {
  struct lookup_result *r = arg;
  char server[64] = "";
  (void)res;
  r->done = 1;
  r->status = status;
  if (status) {
    if (rill_dns_query_server(q, server, sizeof server) < 0)
      server[0] = '\0';
    rill_format_lookup_error(g_lookup_name, server, status, r->text, sizeof r->text);
  }
}

static void lookup(rill_base *base, const char *name, const rill_dns_config *cfg, struct lookup_result *r) {
  memset(r, 0, sizeof *r);
  g_lookup_name = name;
  assert_int_equal(rill_resolve(base, name, AF_UNSPEC, cfg, on_lookup, r, NULL), 0);
  while (!r->done)
    TU_RUN(base, RILL_RUN_ONCE, LIMIT);
}

static void test_g31_dns(void **state) {
  TU_SKIP_ON_LIBKQUEUE("a refused DNS query's ICMP error is read off the UDP socket (SO_ERROR) by libkqueue before rill sees it");
  rill_base *base = tu_base_new();
  rill_dns_config cfg = {0}, dead = {0};
  rill_socket_config o = {0};
  struct lookup_result r;
  struct dial_result d;
  (void)state;
  if (!rill_dns_version()) {
    tu_base_free(base);
    skip();
  }
  set_vars(NULL, NULL);
  cfg.servers = fake_dns_server(g_dns);
  cfg.lookup = RILL_LOOKUP_DNS;
  cfg.timeout = 200 * RILL_MSEC;
  cfg.tries = 1;
  lookup(base, "nx.test", &cfg, &r);
  assert_int_equal(r.status, RILL_EDNS_NOHOST);
  check_text("dns_nxdomain", r.text);
  lookup(base, "refused.test", &cfg, &r);
  assert_int_equal(r.status, RILL_EDNS_REFUSED);
  check_text("dns_refused", r.text);
  lookup(base, "servfail.test", &cfg, &r);
  assert_int_equal(r.status, RILL_EDNS_SERVFAIL);
  check_text("dns_servfail", r.text);
  lookup(base, "drop.test", &cfg, &r);
  assert_int_equal(r.status, RILL_EDNS_TIMEOUT);
  check_text("dns_timeout", r.text);
  /* A server nobody serves: a DNS error, never the dial's "connection
   * refused" code. */
  dead = cfg;
  dead.servers = g_dead_dns;
  dead.tries = 2; /* with one try c-ares 1.18 reports a refused query as a timeout */
  dead.timeout = 2 * RILL_SEC;
  lookup(base, "nx.test", &dead, &r);
  assert_int_equal(r.status, RILL_EDNS_UNREACHABLE);
  assert_true(RILL_IS_DNS_ERROR(r.status));
  check_text("dns_unreachable", r.text);

  o.dns = &cfg;
  dial_and_wait(base, "tcp", "nx.test:80", &o, &d);
  assert_int_equal(d.status, RILL_EDNS_NOHOST);
  check_text("dial_nxdomain", d.text);
  /* The dial's timeout ends the lookup (which would wait longer). */
  cfg.timeout = 5 * RILL_SEC;
  o.timeout = 300 * RILL_MSEC;
  dial_and_wait(base, "tcp", "drop.test:80", &o, &d);
  assert_int_equal(d.status, RILL_ETIMEOUT);
  check_text("dial_dns_timeout", d.text);
  tu_base_free(base);
}

/* ---- Go itself --------------------------------------------------------- */

/* Every pinned text was checked above, and (with Go) is what Go prints. */
static void test_g31_every_text_checked_and_go_agrees(void **state) {
  TU_SKIP_ON_LIBKQUEUE("the texts the dial and DNS tests check are not checked there");
  char why[1200];
  (void)state;
  if (go_texts_verify(&g_checked, rill_dns_version() != NULL, g_go_ran ? &g_go : NULL, why,
                      sizeof why) != 0)
    fail_msg("%s", why);
  if (!g_go_ran)
    print_message("Go not built in: rill's texts checked against the pinned Go texts only\n");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_g31_malformed_addresses),
      cmocka_unit_test(test_g30_g31_dial_failures),
      cmocka_unit_test(test_g30_local_system_reaches_ipv4),
      cmocka_unit_test(test_g31_listener_and_conn),
      cmocka_unit_test(test_g31_unix),
      cmocka_unit_test(test_g31_dns),
      cmocka_unit_test(test_g31_every_text_checked_and_go_agrees),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
