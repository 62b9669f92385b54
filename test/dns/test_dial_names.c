/* rill_dial() by host name (G11): the name is resolved on the base (the
 * fake DNS server or a test hosts file), every address is tried Happy
 * Eyeballs style, the timeout covers resolution and connecting, a cancel
 * ends any phase with one callback, and errors read as Go's.
 *
 * Each attempt is observed through the control hook (it runs after
 * socket() and before connect(), with the address being tried), so the
 * tests see the order and the start time of every attempt.
 *
 * Network rule: every base names the fake server on 127.0.0.1 and a test
 * hosts file; nothing reaches the system's resolver.
 *
 * These tests must hold on a loaded machine (test/stress/run_under_load.sh),
 * so they assert behaviour, not speed: every delay that tells two
 * behaviours apart is many seconds long (the fallback delay a refusal must
 * not wait for, the late DNS answer a timeout or a cancel must not wait
 * for), and the bounds on the times measured sit far below those delays. */
#define _GNU_SOURCE 1

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "test_util.h"
#include "fake_dns.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static fake_dns *g_dns;
static char g_hosts[64];

/* ---- raw sockets -------------------------------------------------------- */

static socklen_t make_addr(const char *ip, int port, struct sockaddr_storage *ss) {
  memset(ss, 0, sizeof *ss);
  struct sockaddr_in *in = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
  if (inet_pton(AF_INET, ip, &in->sin_addr) == 1) {
    in->sin_family = AF_INET;
    in->sin_port = htons((uint16_t)port);
    return sizeof *in;
  }
  assert_int_equal(inet_pton(AF_INET6, ip, &in6->sin6_addr), 1);
  in6->sin6_family = AF_INET6;
  in6->sin6_port = htons((uint16_t)port);
  return sizeof *in6;
}

static int ipv6_ok(void) {
  static int cached = -1;
  if (cached < 0) {
    struct sockaddr_storage ss;
    socklen_t len = make_addr("::1", 0, &ss);
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cached = fd >= 0 && bind(fd, (struct sockaddr *)&ss, len) == 0;
    if (fd >= 0)
      close(fd);
  }
  return cached;
}

/* A raw listening socket on ip:port (port 0: the kernel's), never accepting
 * unless the test does. Returns the fd; *port_out gets the port. -errno if
 * the bind fails. */
static int raw_listen(const char *ip, int port, int backlog, int *port_out) {
  struct sockaddr_storage ss;
  socklen_t len = make_addr(ip, port, &ss);
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert_true(fd >= 0);
  if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, backlog) < 0) {
    int err = -errno;
    close(fd);
    return err;
  }
  if (port_out) {
    len = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &len);
    *port_out = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                              : ((struct sockaddr_in6 *)&ss)->sin6_port);
  }
  return fd;
}

/* A non-blocking connect; returns the fd. */
static int raw_connect_nb(const char *ip, int port) {
  struct sockaddr_storage ss;
  socklen_t len = make_addr(ip, port, &ss);
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  assert_true(fd >= 0);
  int rc = connect(fd, (struct sockaddr *)&ss, len);
  assert_true(rc == 0 || errno == EINPROGRESS);
  return fd;
}

/* 1 if a non-blocking connect completed within `ms`. */
static int connected_within(int fd, int ms) {
  struct pollfd p = {fd, POLLOUT, 0};
  if (poll(&p, 1, ms) <= 0)
    return 0;
  int err = 0;
  socklen_t len = sizeof err;
  getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
  return err == 0;
}

/* A listener whose accept queue is full and never drained, on ip:port:
 * listen(fd, 0) admits one connection on Linux (the queue is full once it
 * holds more than the backlog), so one connect fills it and every later SYN
 * is dropped: a connect to it neither completes nor fails for a second or
 * more (the SYN is retransmitted). fills[] receives the filling sockets.
 * Returns the listener, or -1 (with a message) if the kernel behaves
 * differently. */
#define MAX_FILLS 4
static int blackhole_listen(const char *ip, int port, int fills[MAX_FILLS]) {
  for (int i = 0; i < MAX_FILLS; i++)
    fills[i] = -1;
  int fd = raw_listen(ip, port, 0, NULL);
  if (fd < 0) {
    fprintf(stderr, "blackhole_listen %s:%d: %s\n", ip, port, strerror(-fd));
    return -1;
  }
  for (int i = 0; i < MAX_FILLS; i++) {
    fills[i] = raw_connect_nb(ip, port);
    if (!connected_within(fills[i], 50))
      return fd; /* this one hangs: the queue is full */
  }
  fprintf(stderr, "blackhole_listen: %d connects to a backlog-0 listener all completed\n", MAX_FILLS);
  close(fd);
  for (int i = 0; i < MAX_FILLS; i++)
    if (fills[i] >= 0)
      close(fills[i]);
  return -1;
}

static void blackhole_close(int fd, int fills[MAX_FILLS]) {
  if (fd >= 0)
    close(fd);
  for (int i = 0; i < MAX_FILLS; i++)
    if (fills[i] >= 0)
      close(fills[i]);
}

/* A port nothing listens on, on 127.0.0.1. */
static int free_port(void) {
  int port = 0;
  int fd = raw_listen("127.0.0.1", 0, 1, &port);
  assert_true(fd >= 0);
  close(fd);
  return port;
}

/* ---- dialing ------------------------------------------------------------ */

#define MAX_ATTEMPTS 8

typedef struct dial_res {
  int calls;
  int status;
  int in_call, called_in_call;
  char err[256];
  char remote[RILL_ADDRSTRLEN];
  uint64_t t0, done_ms;
  int fds_in_cb;
  /* attempts, from the control hook */
  int attempts;
  char tried[MAX_ATTEMPTS][RILL_ADDRSTRLEN];
  uint64_t tried_ms[MAX_ATTEMPTS]; /* since t0 */
  rill_dialer *dialer;
} dial_res;

static int on_control(int fd, const char *network, const char *address, void *arg) {
  (void)fd;
  (void)network;
  dial_res *r = arg;
  if (r->attempts < MAX_ATTEMPTS) {
    snprintf(r->tried[r->attempts], sizeof r->tried[0], "%s", address);
    r->tried_ms[r->attempts] = tu_now_ms() - r->t0;
  }
  r->attempts++;
  return 0;
}

static void on_dial(rill_dialer *d, rill_conn *c, int status, void *arg) {
  dial_res *r = arg;
  r->calls++;
  r->status = status;
  r->done_ms = tu_now_ms();
  r->fds_in_cb = tu_count_fds();
  if (r->in_call)
    r->called_in_call = 1;
  r->dialer = NULL;
  if (status != 0) {
    assert_null(c);
    assert_true(rill_dialer_format_error(d, status, r->err, sizeof r->err) > 0);
  } else {
    assert_non_null(c);
    assert_true(rill_conn_remote_addr(c, r->remote, sizeof r->remote) > 0);
    assert_int_equal(rill_conn_close(c), 0);
  }
}

static void dump_attempts(const dial_res *r) {
  for (int i = 0; i < r->attempts && i < MAX_ATTEMPTS; i++)
    fprintf(stderr, "  attempt %d: %s at +%llu ms\n", i + 1, r->tried[i], (unsigned long long)r->tried_ms[i]);
  fprintf(stderr, "  result after %llu ms: %s%s%s\n", (unsigned long long)(r->done_ms - r->t0),
          r->status ? r->err : "connected to ", r->status ? "" : r->remote, "");
}

/* The late answer of the *.slowdns.test names: far longer than any bound
 * a test puts on a timeout or a cancel, so a result that waited for it can
 * never pass for one that did not, however loaded the machine is. */
#define SLOW_DNS_MS 10000

/* c-ares's per-try timeout for every base and dial here: longer than any
 * test runs, so c-ares never retransmits a query the server is slow to
 * answer (a loaded machine would otherwise change the query counts). */
#define DNS_TRY_TIMEOUT_MS 60000

/* Options that resolve through the fake server and the test hosts file. */
static void dns_options(rill_socket_config *o, rill_dns_config *cfg, dial_res *r) {
  memset(o, 0, sizeof *o);
  memset(cfg, 0, sizeof *cfg);
  cfg->servers = fake_dns_server(g_dns);
  cfg->hosts_file = g_hosts;
  cfg->timeout = DNS_TRY_TIMEOUT_MS * RILL_MSEC;
  o->dns = cfg;
  o->control = on_control;
  o->control_arg = r;
}

/* A base whose own resolver settings also name only the fake server. */
static rill_base *dns_base(void) {
  rill_base_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.dns.servers = fake_dns_server(g_dns);
  cfg.dns.hosts_file = g_hosts;
  cfg.dns.timeout = DNS_TRY_TIMEOUT_MS * RILL_MSEC;
  rill_base *base = NULL;
  assert_int_equal(rill_base_new(&cfg, &base), 0);
  return base;
}

static void start_dial(rill_base *base, const char *address, const rill_socket_config *o, dial_res *r) {
  r->t0 = tu_now_ms();
  r->in_call = 1;
  int rc = rill_dial(base, "tcp", address, o, on_dial, r, &r->dialer);
  r->in_call = 0;
  if (rc != 0)
    fail_msg("rill_dial(%s) = %d (%s)", address, rc, rill_err_name(rc));
  assert_int_equal(r->calls, 0);
}

/* ---- setup -------------------------------------------------------------- */

static int group_setup(void **state) {
  (void)state;
  int port = fake_dns_start(&g_dns);
  if (port <= 0) {
    fprintf(stderr, "fake_dns_start: %d\n", port);
    return -1;
  }
  snprintf(g_hosts, sizeof g_hosts, "/tmp/rill-test-dial-hosts-%d", (int)getpid());
  FILE *f = fopen(g_hosts, "w");
  if (!f)
    return -1;
  /* From a file, so no DNS socket is open while descriptors are counted. */
  fputs("127.0.0.2 hang2.test\n"
        "127.0.0.1 hang2.test\n"
        "127.0.0.2 hang23.test\n"
        "127.0.0.3 hang23.test\n",
        f);
  fclose(f);

  fake_dns_add(g_dns, "he.test", "::1,127.0.0.1");
  fake_dns_add(g_dns, "v4two.test", "127.0.0.2,127.0.0.1");
  fake_dns_rule r;
  /* Each test asks for its own name under slowdns.test: a query a test
   * sends just before it ends may reach the server (its own thread) after
   * the next test zeroed the counters, and must not count there. */
  memset(&r, 0, sizeof r);
  r.name = "*.slowdns.test";
  r.qtype = FAKE_DNS_ANY;
  r.addrs = "127.0.0.1";
  r.delay_ms = SLOW_DNS_MS;
  fake_dns_add_rule(g_dns, &r);
  memset(&r, 0, sizeof r);
  r.name = "gone.test";
  r.qtype = FAKE_DNS_ANY;
  r.action = FAKE_DNS_NXDOMAIN;
  fake_dns_add_rule(g_dns, &r);
  return 0;
}

static int group_teardown(void **state) {
  (void)state;
  fake_dns_stop(g_dns);
  g_dns = NULL;
  unlink(g_hosts);
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

/* ---- tests -------------------------------------------------------------- */

static void on_accept_close(rill_listener *l, rill_conn *c, int status, void *arg) {
  (void)l;
  int *n = arg;
  if (status == 0) {
    (*n)++;
    rill_conn_close(c);
  }
}

/* he.test: AAAA ::1 (nothing listens: refused at once), A 127.0.0.1 (a rill
 * listener). The refusal starts the next address at once, long before the
 * fallback delay (10 s). */
static void test_v6_refused_v4_connects(void **state) {
  (void)state;
  if (!ipv6_ok()) {
    fprintf(stderr, "skipped: IPv6 is not available on ::1\n");
    skip();
  }
  rill_base *base = dns_base();
  rill_listener *l = NULL;
  int accepted = 0;
  assert_int_equal(rill_listen(base, "tcp", "127.0.0.1:0", NULL, on_accept_close, &accepted, &l), 0);
  int port = rill_listener_port(l);
  /* Nothing may listen on [::1]:port. */
  int probe = raw_listen("::1", port, 1, NULL);
  if (probe < 0)
    skip();
  close(probe);

  dial_res r;
  memset(&r, 0, sizeof r);
  rill_socket_config o;
  rill_dns_config cfg;
  dns_options(&o, &cfg, &r);
  o.fallback_delay = 10 * RILL_SEC;
  char addr[64], want[64];
  snprintf(addr, sizeof addr, "he.test:%d", port);
  snprintf(want, sizeof want, "127.0.0.1:%d", port);
  start_dial(base, addr, &o, &r);
  while (r.calls == 0)
    TU_RUN(base, RILL_RUN_ONCE, 5000);
  dump_attempts(&r);
  assert_int_equal(r.calls, 1);
  assert_int_equal(r.status, 0);
  assert_false(r.called_in_call);
  assert_string_equal(r.remote, want);
  /* Both families were asked for and tried; the refused one first when
   * the resolver prefers IPv6 (RFC 6724: ::1 before 127.0.0.1). */
  assert_true(fake_dns_queries_for(g_dns, "he.test") >= 2);
  assert_int_equal(r.attempts, 2);
  {
    char v6[64];
    snprintf(v6, sizeof v6, "[::1]:%d", port);
    assert_string_equal(r.tried[0], v6);
    assert_string_equal(r.tried[1], want);
  }
  uint64_t took = r.done_ms - r.t0;
  if (took >= 5000)
    fail_msg("connected after %llu ms; the fallback delay is 10000 and a refusal must not wait for it",
             (unsigned long long)took);
  rill_listener_free(l);
  TU_RUN(base, RILL_RUN_DEFAULT, 5000);
  tu_base_free(base);
}

/* Every address refused: the error names the first one tried (G11, as
 * Go's: "the error from the first address is most relevant"). */
static void test_all_refused_names_first(void **state) {
  (void)state;
  rill_base *base = dns_base();
  int port = free_port();
  dial_res r;
  memset(&r, 0, sizeof r);
  rill_socket_config o;
  rill_dns_config cfg;
  dns_options(&o, &cfg, &r);
  char addr[64], want[128];
  snprintf(addr, sizeof addr, "v4two.test:%d", port);
  start_dial(base, addr, &o, &r);
  TU_RUN(base, RILL_RUN_DEFAULT, 5000);
  dump_attempts(&r);
  assert_int_equal(r.calls, 1);
  assert_int_equal(r.status, RILL_ECONNREFUSED);
  assert_int_equal(r.attempts, 2);
  snprintf(want, sizeof want, "127.0.0.2:%d", port);
  assert_string_equal(r.tried[0], want);
  snprintf(want, sizeof want, "dial tcp 127.0.0.2:%d: connect: connection refused", port);
  assert_string_equal(r.err, want);
  tu_base_free(base);
}

/* hang2.test: 127.0.0.2 first (a listener whose queue is full: the SYN is
 * dropped), 127.0.0.1 second (a listener that works). The second attempt
 * starts after fallback_delay_ms and wins; the first is closed. The first
 * never completes, so only a lower bound on the time says anything. */
static void test_fallback_second_wins(void **state) {
  (void)state;
  int port = 0;
  int good = raw_listen("127.0.0.1", 0, 16, &port);
  assert_true(good >= 0);
  int fills[MAX_FILLS];
  int hole = blackhole_listen("127.0.0.2", port, fills);
  if (hole < 0) {
    close(good);
    skip();
  }
  int fds_start = tu_count_fds();
  rill_base *base = dns_base();
  dial_res r;
  memset(&r, 0, sizeof r);
  rill_socket_config o;
  rill_dns_config cfg;
  dns_options(&o, &cfg, &r);
  o.fallback_delay = 100 * RILL_MSEC;
  char addr[64], want[64];
  snprintf(addr, sizeof addr, "hang2.test:%d", port);
  int fds_before = tu_count_fds();
  start_dial(base, addr, &o, &r);
  TU_RUN(base, RILL_RUN_DEFAULT, 5000);
  dump_attempts(&r);
  assert_int_equal(r.calls, 1);
  assert_int_equal(r.status, 0);
  snprintf(want, sizeof want, "127.0.0.1:%d", port);
  assert_string_equal(r.remote, want);
  assert_int_equal(r.attempts, 2);
  assert_true(r.tried_ms[1] >= 100);
  uint64_t took = r.done_ms - r.t0;
  if (took < 100)
    fail_msg("the second address won after %llu ms, before the fallback delay of 100",
             (unsigned long long)took);
  /* In the callback only the winner is open: the loser is already closed. */
  assert_int_equal(r.fds_in_cb, fds_before + 1);
  assert_int_equal(fake_dns_queries(g_dns, FAKE_DNS_ALL), 0); /* from the hosts file */
  tu_base_free(base);
  tu_assert_fds(fds_start);
  blackhole_close(hole, fills);
  close(good);
}

/* The dial timeout covers resolution: the answer is 10 s late, the dial
 * gives up after 200 ms. */
static void test_timeout_covers_lookup(void **state) {
  (void)state;
  rill_base *base = dns_base();
  dial_res r;
  memset(&r, 0, sizeof r);
  rill_socket_config o;
  rill_dns_config cfg;
  dns_options(&o, &cfg, &r);
  o.timeout = 200 * RILL_MSEC;
  start_dial(base, "timeout.slowdns.test:80", &o, &r);
  while (r.calls == 0)
    TU_RUN(base, RILL_RUN_ONCE, 5000);
  dump_attempts(&r);
  assert_int_equal(r.calls, 1);
  assert_int_equal(r.status, RILL_ETIMEOUT);
  assert_int_equal(r.attempts, 0);
  uint64_t took = r.done_ms - r.t0;
  if (took < 180)
    fail_msg("timed out after %llu ms, before the 200 ms timeout", (unsigned long long)took);
  assert_true(strstr(r.err, "i/o timeout") != NULL);
  /* The query the server still owes is dropped with the base. */
  tu_base_free(base);
}

static void test_lookup_error_message(void **state) {
  (void)state;
  rill_base *base = dns_base();
  dial_res r;
  memset(&r, 0, sizeof r);
  rill_socket_config o;
  rill_dns_config cfg;
  dns_options(&o, &cfg, &r);
  start_dial(base, "gone.test:80", &o, &r);
  TU_RUN(base, RILL_RUN_DEFAULT, 5000);
  assert_int_equal(r.calls, 1);
  assert_int_equal(r.status, RILL_EDNS_NOHOST);
  /* Go: "dial tcp: lookup gone.test on 127.0.0.1:53: no such host". */
  char want[160];
  snprintf(want, sizeof want, "dial tcp: lookup gone.test on %s: no such host", fake_dns_server(g_dns));
  assert_string_equal(r.err, want);
  assert_int_equal(r.attempts, 0);

  /* A name that cannot be a host name fails at once, with no callback. */
  memset(&r, 0, sizeof r);
  assert_int_equal(rill_dial(base, "tcp", "bad..name:80", &o, on_dial, &r, NULL), RILL_EDNS_BADNAME);
  assert_int_equal(rill_dial(base, "tcp", "bad name:80", &o, on_dial, &r, NULL), RILL_EDNS_BADNAME);
  /* Worded as Go words a lookup that failed (Go says "no such host"). */
  assert_true(rill_format_net_error("dial", "tcp", "bad..name:80", RILL_EDNS_BADNAME, want, sizeof want) > 0);
  assert_string_equal(want, "dial tcp: lookup bad..name: invalid host name");
  assert_int_equal(rill_base_run(base, RILL_RUN_NOWAIT), 0);
  assert_int_equal(r.calls, 0);
  tu_base_free(base);
}

/* localhost needs no server: ::1 (refused or not there) then 127.0.0.1. */
static void test_localhost(void **state) {
  (void)state;
  rill_base *base = dns_base();
  rill_listener *l = NULL;
  int accepted = 0;
  assert_int_equal(rill_listen(base, "tcp", "127.0.0.1:0", NULL, on_accept_close, &accepted, &l), 0);
  int port = rill_listener_port(l);
  dial_res r;
  memset(&r, 0, sizeof r);
  rill_socket_config o;
  rill_dns_config cfg;
  dns_options(&o, &cfg, &r);
  char addr[64], want[64];
  snprintf(addr, sizeof addr, "localhost:%d", port);
  start_dial(base, addr, &o, &r);
  while (r.calls == 0)
    TU_RUN(base, RILL_RUN_ONCE, 5000);
  dump_attempts(&r);
  assert_int_equal(r.status, 0);
  snprintf(want, sizeof want, "127.0.0.1:%d", port);
  assert_string_equal(r.remote, want);
  assert_int_equal(fake_dns_queries(g_dns, FAKE_DNS_ALL), 0);
  rill_listener_free(l);
  TU_RUN(base, RILL_RUN_DEFAULT, 5000);
  tu_base_free(base);
}

/* ---- cancellation ------------------------------------------------------- */

typedef struct cancel_at {
  dial_res *r;
  int rc;
  int attempts_then;
  uint64_t at_ms; /* when the cancel was made, since r->t0 */
} cancel_at;

static void cancel_timer(rill_timer *t, void *arg) {
  cancel_at *c = arg;
  c->attempts_then = c->r->attempts;
  c->at_ms = tu_now_ms() - c->r->t0;
  c->rc = c->r->dialer ? rill_dialer_cancel(c->r->dialer) : -9999;
  rill_timer_free(t);
}

static void cancel_after(rill_base *base, cancel_at *c, uint64_t ms) {
  rill_timer *t = NULL;
  assert_int_equal(rill_timer_new(base, cancel_timer, c, &t), 0);
  assert_int_equal(rill_timer_start(t, ms * RILL_MSEC, 0), 0);
}

/* One callback, with RILL_ECANCELED, no earlier than the cancel and long
 * before anything the dial waits for (a 10 s late answer, a connect that
 * never completes) could have ended it. `at_ms`: when the cancel was
 * asked for; `cancelled_ms`: when it was made. */
static void check_cancelled(const dial_res *r, uint64_t at_ms, uint64_t cancelled_ms) {
  dump_attempts(r);
  assert_int_equal(r->calls, 1);
  assert_int_equal(r->status, RILL_ECANCELED);
  uint64_t took = r->done_ms - r->t0;
  if (took < at_ms || took < cancelled_ms || took > cancelled_ms + 5000)
    fail_msg("cancel asked for at %llu ms, made at %llu ms, reported after %llu ms",
             (unsigned long long)at_ms, (unsigned long long)cancelled_ms, (unsigned long long)took);
}

/* Cancelled in the call's own tick, before anything happened. */
static void test_cancel_at_once(void **state) {
  (void)state;
  rill_base *base = dns_base();
  dial_res r;
  memset(&r, 0, sizeof r);
  rill_socket_config o;
  rill_dns_config cfg;
  dns_options(&o, &cfg, &r);
  start_dial(base, "once.slowdns.test:80", &o, &r);
  assert_int_equal(rill_dialer_cancel(r.dialer), 0);
  assert_int_equal(r.calls, 0); /* from the loop */
  while (r.calls == 0)
    TU_RUN(base, RILL_RUN_ONCE, 5000);
  check_cancelled(&r, 0, 0);
  assert_int_equal(r.attempts, 0);
  assert_int_equal(rill_dialer_cancel(NULL), RILL_EINVAL);
  tu_base_free(base);
}

/* During resolution: the answer is 10 s late; cancel at 50 ms. */
static void test_cancel_during_lookup(void **state) {
  (void)state;
  int fds_start = tu_count_fds();
  rill_base *base = dns_base();
  int fds_before = tu_count_fds();
  dial_res r;
  memset(&r, 0, sizeof r);
  rill_socket_config o;
  rill_dns_config cfg;
  dns_options(&o, &cfg, &r);
  cancel_at c = {&r, 1, 0, 0};
  start_dial(base, "cancel.slowdns.test:80", &o, &r);
  cancel_after(base, &c, 50);
  while (r.calls == 0)
    TU_RUN(base, RILL_RUN_ONCE, 5000);
  assert_int_equal(c.rc, 0);
  check_cancelled(&r, 50, c.at_ms);
  assert_int_equal(r.attempts, 0);
  /* A and AAAA, each sent once. The server counts a query when its thread
   * reads it, which a loaded machine may delay past the callback: wait for
   * the count by polling it (the queries were sent before the cancel). */
  uint64_t wait_from = tu_now_ms();
  while (fake_dns_queries_for(g_dns, "cancel.slowdns.test") < 2 && tu_now_ms() - wait_from < 5000)
    tu_sleep_ms(5);
  assert_int_equal(fake_dns_queries_for(g_dns, "cancel.slowdns.test"), 2);
  /* Only the resolver's socket may still be open (c-ares waits for the
   * answer it is owed, and drops it). */
  assert_true(r.fds_in_cb <= fds_before + 1);
  tu_base_free(base);
  tu_assert_fds(fds_start);
}

/* hang23.test: two addresses that never answer. Cancel at 50 ms (one
 * attempt, the fallback timer pending) and at 150 ms (both attempts
 * connecting): one callback, and every attempt's socket closed by then. */
static void cancel_with_attempts(uint64_t at_ms, int want_attempts) {
  int port = free_port();
  int fills2[MAX_FILLS], fills3[MAX_FILLS];
  int hole2 = blackhole_listen("127.0.0.2", port, fills2);
  int hole3 = hole2 >= 0 ? blackhole_listen("127.0.0.3", port, fills3) : -1;
  if (hole3 < 0) {
    blackhole_close(hole2, fills2);
    skip();
  }
  int fds_start = tu_count_fds();
  rill_base *base = dns_base();
  int fds_before = tu_count_fds();
  dial_res r;
  memset(&r, 0, sizeof r);
  rill_socket_config o;
  rill_dns_config cfg;
  dns_options(&o, &cfg, &r);
  o.fallback_delay = 100 * RILL_MSEC;
  cancel_at c = {&r, 1, 0, 0};
  char addr[64];
  snprintf(addr, sizeof addr, "hang23.test:%d", port);
  start_dial(base, addr, &o, &r);
  cancel_after(base, &c, at_ms);
  TU_RUN(base, RILL_RUN_DEFAULT, 5000);
  assert_int_equal(c.rc, 0);
  check_cancelled(&r, at_ms, c.at_ms);
  assert_int_equal(c.attempts_then, want_attempts);
  assert_int_equal(r.attempts, want_attempts);
  assert_int_equal(r.fds_in_cb, fds_before);
  tu_base_free(base);
  tu_assert_fds(fds_start);
  blackhole_close(hole2, fills2);
  blackhole_close(hole3, fills3);
}

static void test_cancel_between_attempts(void **state) {
  (void)state;
  cancel_with_attempts(50, 1);
}

static void test_cancel_mid_connect(void **state) {
  (void)state;
  cancel_with_attempts(150, 2);
}

/* A timeout while attempts hang closes them all too. */
static void test_timeout_mid_connect(void **state) {
  (void)state;
  int port = free_port();
  int fills[MAX_FILLS];
  int hole = blackhole_listen("127.0.0.2", port, fills);
  if (hole < 0)
    skip();
  int fills3[MAX_FILLS];
  int hole3 = blackhole_listen("127.0.0.3", port, fills3);
  if (hole3 < 0) {
    blackhole_close(hole, fills);
    skip();
  }
  int fds_start = tu_count_fds();
  rill_base *base = dns_base();
  int fds_before = tu_count_fds();
  dial_res r;
  memset(&r, 0, sizeof r);
  rill_socket_config o;
  rill_dns_config cfg;
  dns_options(&o, &cfg, &r);
  o.fallback_delay = 50 * RILL_MSEC;
  o.timeout = 200 * RILL_MSEC;
  char addr[64], want[128];
  snprintf(addr, sizeof addr, "hang23.test:%d", port);
  start_dial(base, addr, &o, &r);
  TU_RUN(base, RILL_RUN_DEFAULT, 5000);
  dump_attempts(&r);
  assert_int_equal(r.calls, 1);
  assert_int_equal(r.status, RILL_ETIMEOUT);
  assert_int_equal(r.attempts, 2);
  assert_int_equal(r.fds_in_cb, fds_before);
  tu_base_free(base);
  tu_assert_fds(fds_start);
  blackhole_close(hole, fills);
  blackhole_close(hole3, fills3);
  /* A timeout names the newest attempt (every address failing names the first). */
  snprintf(want, sizeof want, "dial tcp 127.0.0.3:%d: i/o timeout", port);
  assert_string_equal(r.err, want);
}

int main(void) {
  const char *v = rill_dns_version();
  fprintf(stderr, "test_dial_names: c-ares %s, backend %s, IPv6 %s\n", v ? v : "(none)",
          getenv("RILL_BACKEND") ? getenv("RILL_BACKEND") : "(default)", ipv6_ok() ? "yes" : "no");
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_v6_refused_v4_connects, setup, teardown),
      cmocka_unit_test_setup_teardown(test_all_refused_names_first, setup, teardown),
      cmocka_unit_test_setup_teardown(test_fallback_second_wins, setup, teardown),
      cmocka_unit_test_setup_teardown(test_timeout_covers_lookup, setup, teardown),
      cmocka_unit_test_setup_teardown(test_lookup_error_message, setup, teardown),
      cmocka_unit_test_setup_teardown(test_localhost, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cancel_at_once, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cancel_during_lookup, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cancel_between_attempts, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cancel_mid_connect, setup, teardown),
      cmocka_unit_test_setup_teardown(test_timeout_mid_connect, setup, teardown),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
