/* docs/go-model.md G1-G6, callback API: how sockets are created and configured
 * (non-blocking, close-on-exec, Go's TCP defaults, listener options,
 * per-connection setters, the control hook) and Go's address syntax.
 *
 * Real loopback sockets only; IPv6 cases are skipped (with a message) on a
 * host without ::1. */
#define _GNU_SOURCE 1

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "rill.h"
#include "test_util.h"
#include "net_util.h"

#define LIMIT 5000

static void assert_nonblock_cloexec(int fd, const char *what) {
  int fl = fcntl(fd, F_GETFL);
  int fdfl = fcntl(fd, F_GETFD);
  if (fl < 0 || !(fl & O_NONBLOCK) || fdfl < 0 || !(fdfl & FD_CLOEXEC))
    fail_msg("%s fd %d: F_GETFL 0x%x (O_NONBLOCK expected), F_GETFD 0x%x (FD_CLOEXEC expected)",
             what, fd, fl, fdfl);
}

/* A listener and one dialed connection to it, on `base`. */
static void connect_pair(rill_base *base, const char *network, const char *laddr,
                         const char *dial_host, const rill_socket_config *lopts,
                         const rill_socket_config *dopts, nu_server *srv, nu_dial *d) {
  char addr[128];
  memset(d, 0, sizeof *d);
  srv->close_accepted = 0;
  srv->stop_at = 0;
  assert_int_equal(nu_server_listen(base, srv, network, laddr, lopts), 0);
  snprintf(addr, sizeof addr, strchr(dial_host, ':') ? "[%s]:%d" : "%s:%d", dial_host,
           rill_listener_port(srv->l));
  assert_int_equal(rill_dial(base, "tcp", addr, dopts, nu_dial_cb, d, NULL), 0);
  nu_run_until_count(base, &d->calls, 1, LIMIT);
  nu_run_until_count(base, &srv->accepted, 1, LIMIT);
  assert_int_equal(d->status, 0);
  assert_int_equal(srv->n, 1);
}

static void close_pair(rill_base *base, nu_server *srv, nu_dial *d) {
  if (d->conn) rill_conn_abort(d->conn);
  d->conn = NULL;
  nu_server_close(srv);
  nu_settle(base);
}

/* ---- G1 -------------------------------------------------------------- */

static void g1_check(const char *ip) {
  rill_base *base = tu_base_new();
  nu_server srv;
  nu_dial d;
  char laddr[64];
  memset(&srv, 0, sizeof srv);
  snprintf(laddr, sizeof laddr, strchr(ip, ':') ? "[%s]:0" : "%s:0", ip);
  connect_pair(base, "tcp", laddr, ip, NULL, NULL, &srv, &d);
  assert_nonblock_cloexec(rill_listener_fd(srv.l), "listener");
  assert_nonblock_cloexec(rill_conn_fd(srv.conns[0]), "accepted conn");
  assert_nonblock_cloexec(rill_conn_fd(d.conn), "dialed conn");
  close_pair(base, &srv, &d);
  tu_base_free(base);
}

static void test_g1_nonblock_cloexec(void **state) {
  (void)state;
  g1_check("127.0.0.1");
  if (nu_ipv6_ok())
    g1_check("::1");
  else
    printf("# G1: IPv6 unavailable, ::1 case skipped\n");
}

/* rill_conn_from_fd makes an adopted socket non-blocking and close-on-exec. */
static void test_g1_from_fd_sets_flags(void **state) {
  rill_base *base = tu_base_new();
  int sv[2];
  rill_conn *c = NULL;
  (void)state;
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  assert_int_equal(rill_conn_from_fd(base, sv[0], &c), 0);
  assert_nonblock_cloexec(rill_conn_fd(c), "adopted conn");
  assert_string_equal(rill_conn_network(c), "unix");
  assert_int_equal(rill_conn_close(c), 0);
  nu_settle(base);
  close(sv[1]);
  tu_base_free(base);
}

/* ---- G2 -------------------------------------------------------------- */

static void check_tcp_opts(int fd, int no_delay, int keep_alive, int period_s, const char *what) {
  int nd = nu_getint(fd, IPPROTO_TCP, TCP_NODELAY) != 0;
  int ka = nu_getint(fd, SOL_SOCKET, SO_KEEPALIVE) != 0;
  if (nd != no_delay || ka != keep_alive)
    fail_msg("%s: TCP_NODELAY %d (want %d), SO_KEEPALIVE %d (want %d)", what, nd, no_delay, ka,
             keep_alive);
  if (keep_alive) {
    int idle = nu_getint(fd, IPPROTO_TCP, TCP_KEEPIDLE);
    int intvl = nu_getint(fd, IPPROTO_TCP, TCP_KEEPINTVL);
    if (idle != period_s || intvl != period_s)
      fail_msg("%s: TCP_KEEPIDLE %d, TCP_KEEPINTVL %d (want %d)", what, idle, intvl, period_s);
  }
}

static void g2_case(const rill_socket_config *opts, int no_delay, int keep_alive, int period_s) {
  rill_base *base = tu_base_new();
  nu_server srv;
  nu_dial d;
  memset(&srv, 0, sizeof srv);
  /* The same options for the listener (its accepted connections) and the
   * dial. */
  connect_pair(base, "tcp", "127.0.0.1:0", "127.0.0.1", opts, opts, &srv, &d);
  check_tcp_opts(rill_conn_fd(d.conn), no_delay, keep_alive, period_s, "dialed");
  check_tcp_opts(rill_conn_fd(srv.conns[0]), no_delay, keep_alive, period_s, "accepted");
  close_pair(base, &srv, &d);
  tu_base_free(base);
}

static void test_g2_tcp_defaults(void **state) {
  rill_socket_config o;
  (void)state;
  /* NULL options and zeroed options both mean Go's defaults. */
  g2_case(NULL, 1, 1, 15);
  memset(&o, 0, sizeof o);
  g2_case(&o, 1, 1, 15);
}

static void test_g2_options_off_and_period(void **state) {
  rill_socket_config o;
  (void)state;
  memset(&o, 0, sizeof o);
  o.no_delay = -1;
  o.keep_alive = -1;
  g2_case(&o, 0, 0, 0);
  memset(&o, 0, sizeof o);
  o.keep_alive_period = 30 * RILL_SEC;
  g2_case(&o, 1, 1, 30);
  memset(&o, 0, sizeof o);
  o.no_delay = 1;
  o.keep_alive = 1;
  o.keep_alive_period = 1500 * RILL_MSEC; /* whole seconds, rounded up as Go does */
  g2_case(&o, 1, 1, 2);
}

/* ---- G3 -------------------------------------------------------------- */

static int read_somaxconn(void) {
  FILE *f = fopen("/proc/sys/net/core/somaxconn", "r");
  int v = -1;
  if (f) {
    if (fscanf(f, "%d", &v) != 1) v = -1;
    fclose(f);
  }
  return v;
}

/* Linux reports a listener's backlog limit in tcpi_sacked (and its queue
 * length in tcpi_unacked). */
static int listener_backlog(int fd) {
  struct tcp_info ti;
  socklen_t len = sizeof ti;
  memset(&ti, 0, sizeof ti);
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0) return -1;
  return (int)ti.tcpi_sacked;
}

static void test_g3_listener_reuseaddr_backlog(void **state) {
  rill_base *base = tu_base_new();
  nu_server srv;
  rill_socket_config o;
  int somaxconn = read_somaxconn();
  int backlog;
  (void)state;
  memset(&srv, 0, sizeof srv);
  assert_int_equal(nu_server_listen(base, &srv, "tcp", "127.0.0.1:0", NULL), 0);
  assert_int_equal(nu_getint(rill_listener_fd(srv.l), SOL_SOCKET, SO_REUSEADDR), 1);
  backlog = listener_backlog(rill_listener_fd(srv.l));
  printf("# G3: somaxconn %d, listener backlog %d\n", somaxconn, backlog);
  if (somaxconn > 0 && backlog >= 0)
    assert_int_equal(backlog, somaxconn > 65535 ? 65535 : somaxconn);
  nu_server_close(&srv);

  /* An explicit backlog wins. */
  memset(&o, 0, sizeof o);
  o.backlog = 7;
  assert_int_equal(nu_server_listen(base, &srv, "tcp", "127.0.0.1:0", &o), 0);
  backlog = listener_backlog(rill_listener_fd(srv.l));
  if (backlog >= 0 && somaxconn >= 7) assert_int_equal(backlog, 7);
  nu_server_close(&srv);
  nu_settle(base);
  tu_base_free(base);
}

#define BURST 200

/* 200 connections made before the loop runs all complete in the kernel
 * (the backlog holds them) and are all accepted. */
static void test_g3_accept_burst(void **state) {
  rill_base *base = tu_base_new();
  nu_server srv;
  int fds[BURST];
  int i, port, connected = 0;
  uint64_t until;
  (void)state;
  memset(&srv, 0, sizeof srv);
  srv.close_accepted = 1;
  srv.stop_at = BURST;
  assert_int_equal(nu_server_listen(base, &srv, "tcp", "127.0.0.1:0", NULL), 0);
  port = rill_listener_port(srv.l);
  for (i = 0; i < BURST; i++) {
    fds[i] = nu_raw_connect_nb("127.0.0.1", port);
    assert_true(fds[i] >= 0);
  }
  /* Before the loop accepts anything, every handshake finishes. */
  until = tu_now_ms() + 2000;
  for (i = 0; i < BURST; i++) {
    int rc;
    do {
      rc = nu_wait_connected(fds[i], 50);
    } while (rc == 0 && tu_now_ms() < until);
    if (rc == 1) connected++;
  }
  assert_int_equal(connected, BURST);
  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  assert_int_equal(srv.accepted, BURST);
  assert_int_equal(srv.errors, 0);
  for (i = 0; i < BURST; i++) close(fds[i]);
  nu_server_close(&srv);
  nu_settle(base);
  tu_base_free(base);
}

/* ---- G4 -------------------------------------------------------------- */

static int g4_closed;
static void g4_on_close(rill_conn *c, void *arg) {
  (void)c;
  (void)arg;
  g4_closed++;
}

static void test_g4_option_setters(void **state) {
  rill_base *base = tu_base_new();
  nu_pair p;
  int fd, v;
  struct linger lg;
  socklen_t len = sizeof lg;
  rill_conn_events ev;
  (void)state;
  nu_pair_accepted(base, "127.0.0.1", NULL, &p);
  fd = rill_conn_fd(p.conn);
  assert_true(fd >= 0);

  assert_int_equal(rill_conn_set_no_delay(p.conn, 0), 0);
  assert_int_equal(nu_getint(fd, IPPROTO_TCP, TCP_NODELAY), 0);
  assert_int_equal(rill_conn_set_no_delay(p.conn, 1), 0);
  assert_int_not_equal(nu_getint(fd, IPPROTO_TCP, TCP_NODELAY), 0);

  assert_int_equal(rill_conn_set_keep_alive(p.conn, 1, 45 * RILL_SEC), 0);
  assert_int_not_equal(nu_getint(fd, SOL_SOCKET, SO_KEEPALIVE), 0);
  assert_int_equal(nu_getint(fd, IPPROTO_TCP, TCP_KEEPIDLE), 45);
  assert_int_equal(nu_getint(fd, IPPROTO_TCP, TCP_KEEPINTVL), 45);
  assert_int_equal(rill_conn_set_keep_alive(p.conn, 0, 0), 0);
  assert_int_equal(nu_getint(fd, SOL_SOCKET, SO_KEEPALIVE), 0);

  assert_int_equal(rill_conn_set_linger(p.conn, 5), 0);
  memset(&lg, 0, sizeof lg);
  assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, &len), 0);
  assert_int_not_equal(lg.l_onoff, 0);
  assert_int_equal(lg.l_linger, 5);
  assert_int_equal(rill_conn_set_linger(p.conn, -1), 0);
  len = sizeof lg;
  assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, &len), 0);
  assert_int_equal(lg.l_onoff, 0);

  /* Linux doubles the value for its bookkeeping. */
  assert_int_equal(rill_conn_set_read_buffer(p.conn, 16384), 0);
  v = nu_getint(fd, SOL_SOCKET, SO_RCVBUF);
  assert_true(v >= 16384 && v <= 2 * 16384);
  assert_int_equal(rill_conn_set_write_buffer(p.conn, 24576), 0);
  v = nu_getint(fd, SOL_SOCKET, SO_SNDBUF);
  assert_true(v >= 24576 && v <= 2 * 24576);
  assert_int_equal(rill_conn_set_read_buffer(p.conn, 0), RILL_EINVAL);
  assert_int_equal(rill_conn_set_write_buffer(p.conn, -1), RILL_EINVAL);

  /* Closed: every setter says so, already before the close callback. */
  memset(&ev, 0, sizeof ev);
  ev.on_close = g4_on_close;
  g4_closed = 0;
  assert_int_equal(rill_conn_start(p.conn, &ev, NULL), 0);
  assert_int_equal(rill_conn_close(p.conn), 0);
  assert_int_equal(rill_conn_set_no_delay(p.conn, 1), RILL_ECLOSED);
  assert_int_equal(rill_conn_set_keep_alive(p.conn, 1, RILL_SEC), RILL_ECLOSED);
  assert_int_equal(rill_conn_set_linger(p.conn, 1), RILL_ECLOSED);
  assert_int_equal(rill_conn_set_read_buffer(p.conn, 16384), RILL_ECLOSED);
  assert_int_equal(rill_conn_set_write_buffer(p.conn, 16384), RILL_ECLOSED);
  assert_int_equal(rill_conn_fd(p.conn), RILL_ECLOSED);
  assert_int_equal(g4_closed, 0);
  nu_settle(base);
  assert_int_equal(g4_closed, 1);
  p.conn = NULL;
  nu_pair_cleanup(base, &p);
  tu_base_free(base);
}

/* TCP options on a Unix connection: -EOPNOTSUPP, not a crash or a lie. */
static void test_g4_tcp_setters_on_unix(void **state) {
  rill_base *base = tu_base_new();
  int sv[2];
  rill_conn *c = NULL;
  (void)state;
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  assert_int_equal(rill_conn_from_fd(base, sv[0], &c), 0);
  assert_int_equal(rill_conn_set_no_delay(c, 1), -EOPNOTSUPP);
  assert_int_equal(rill_conn_set_keep_alive(c, 1, RILL_SEC), -EOPNOTSUPP);
  assert_int_equal(rill_conn_set_read_buffer(c, 65536), 0);
  assert_int_equal(rill_conn_close(c), 0);
  nu_settle(base);
  close(sv[1]);
  tu_base_free(base);
}

/* ---- G5 -------------------------------------------------------------- */

struct hook {
  int calls;
  int fd;
  int ret;
  int port_seen;     /* the local port when the hook ran */
  int nonblock;      /* the socket was already non-blocking */
  char network[16];
  char address[128];
};

static int control_hook(int fd, const char *network, const char *address, void *arg) {
  struct hook *h = (struct hook *)arg;
  h->calls++;
  h->fd = fd;
  h->port_seen = nu_local_port(fd);
  h->nonblock = (fcntl(fd, F_GETFL) & O_NONBLOCK) != 0;
  snprintf(h->network, sizeof h->network, "%s", network ? network : "(null)");
  snprintf(h->address, sizeof h->address, "%s", address ? address : "(null)");
  return h->ret;
}

static int fd_is_open(int fd) { return fcntl(fd, F_GETFD) >= 0 || errno != EBADF; }

static void test_g5_control_hook_listen(void **state) {
  rill_base *base = tu_base_new();
  nu_server srv;
  rill_socket_config o;
  struct hook h;
  int fds_before;
  (void)state;
  memset(&srv, 0, sizeof srv);
  memset(&h, 0, sizeof h);
  memset(&o, 0, sizeof o);
  o.control = control_hook;
  o.control_arg = &h;

  /* Runs once, on the unbound socket, with the caller's strings. */
  assert_int_equal(nu_server_listen(base, &srv, "tcp4", "127.0.0.1:0", &o), 0);
  assert_int_equal(h.calls, 1);
  assert_int_equal(h.port_seen, 0);
  assert_true(h.nonblock);
  assert_int_equal(h.fd, rill_listener_fd(srv.l));
  assert_string_equal(h.network, "tcp4");
  assert_string_equal(h.address, "127.0.0.1:0");
  assert_true(rill_listener_port(srv.l) > 0);
  nu_server_close(&srv);

  /* A negative return aborts with that code and closes the socket. */
  memset(&h, 0, sizeof h);
  h.ret = -EPERM;
  fds_before = tu_count_fds();
  assert_int_equal(nu_server_listen(base, &srv, "tcp", "127.0.0.1:0", &o), -EPERM);
  assert_int_equal(h.calls, 1);
  assert_null(srv.l);
  assert_false(fd_is_open(h.fd));
  tu_assert_fds(fds_before);
  nu_settle(base);
  tu_base_free(base);
}

static void test_g5_control_hook_dial(void **state) {
  rill_base *base = tu_base_new();
  nu_server srv;
  nu_dial d;
  rill_socket_config o;
  struct hook h;
  char addr[64];
  int fds_before;
  (void)state;
  memset(&srv, 0, sizeof srv);
  memset(&d, 0, sizeof d);
  memset(&h, 0, sizeof h);
  memset(&o, 0, sizeof o);
  o.control = control_hook;
  o.control_arg = &h;
  srv.close_accepted = 1;
  assert_int_equal(nu_server_listen(base, &srv, "tcp", "127.0.0.1:0", NULL), 0);
  snprintf(addr, sizeof addr, "127.0.0.1:%d", rill_listener_port(srv.l));

  /* Before connect(): not bound, not connected. */
  assert_int_equal(rill_dial(base, "tcp", addr, &o, nu_dial_cb, &d, NULL), 0);
  assert_int_equal(h.calls, 1);
  assert_int_equal(h.port_seen, 0);
  assert_true(h.nonblock);
  assert_string_equal(h.network, "tcp");
  assert_string_equal(h.address, addr);
  nu_run_until_count(base, &d.calls, 1, LIMIT);
  assert_int_equal(d.status, 0);
  assert_int_equal(rill_conn_fd(d.conn), h.fd);
  rill_conn_close(d.conn);
  d.conn = NULL;

  /* An error aborts the dial: reported through the callback, from the
   * loop, and the socket is closed. */
  memset(&h, 0, sizeof h);
  memset(&d, 0, sizeof d);
  h.ret = -EACCES;
  fds_before = tu_count_fds();
  assert_int_equal(rill_dial(base, "tcp", addr, &o, nu_dial_cb, &d, NULL), 0);
  assert_int_equal(h.calls, 1);
  assert_int_equal(d.calls, 0); /* never inside the call */
  nu_run_until_count(base, &d.calls, 1, LIMIT);
  assert_int_equal(d.status, -EACCES);
  assert_null(d.conn);
  assert_false(fd_is_open(h.fd));
  tu_assert_fds(fds_before);
  nu_server_close(&srv);
  nu_settle(base);
  tu_base_free(base);
}

/* ---- G6 -------------------------------------------------------------- */

struct parse_case {
  const char *network;
  const char *address;
  int rc;
  int family;        /* expected family when rc == 0 */
  int port;
  const char *formatted; /* rill_addr_format of the result */
};

static void test_g6_address_parse_table(void **state) {
  unsigned lo = if_nametoindex("lo");
  const struct parse_case cases[] = {
      {"tcp", "127.0.0.1:80", 0, AF_INET, 80, "127.0.0.1:80"},
      {"tcp4", "127.0.0.1:80", 0, AF_INET, 80, "127.0.0.1:80"},
      {"tcp", "127.0.0.1:", 0, AF_INET, 0, "127.0.0.1:0"},
      {"tcp", "127.0.0.1:65535", 0, AF_INET, 65535, "127.0.0.1:65535"},
      {"tcp", "[::1]:0", 0, AF_INET6, 0, "[::1]:0"},
      {"tcp6", "[::1]:443", 0, AF_INET6, 443, "[::1]:443"},
      {"tcp4", ":8888", 0, AF_INET, 8888, "0.0.0.0:8888"},
      {"tcp6", ":8888", 0, AF_INET6, 8888, "[::]:8888"},
      {"tcp4", ":", 0, AF_INET, 0, "0.0.0.0:0"},
      /* malformed, each with Go's distinction (its text in test_go_texts.c) */
      {"tcp", "a[b:80", RILL_EADDR_OPENBRACKET, 0, 0, NULL},
      {"tcp", "a]b:80", RILL_EADDR_CLOSEBRACKET, 0, 0, NULL},
      {"tcp", "[::1]:80:1", RILL_EADDR_COLONS, 0, 0, NULL},
      {"tcp", "1.2.3.4", RILL_EADDR_NOPORT, 0, 0, NULL},
      {"tcp", "", RILL_EADDR_MISSING, 0, 0, NULL},
      {"tcp", "[::1", RILL_EADDR_NOBRACKET, 0, 0, NULL},
      {"tcp", "[::1]x:80", RILL_EADDR_NOPORT, 0, 0, NULL},
      {"tcp", "::1:80", RILL_EADDR_COLONS, 0, 0, NULL},
      {"tcp", "127.0.0.1:65536", RILL_EADDR_PORT, 0, 0, NULL},
      {"tcp", "127.0.0.1:-1", RILL_EADDR_PORT, 0, 0, NULL},
      {"tcp", "127.0.0.1:8a", RILL_EADDR_SERVICE, 0, 0, NULL},
      {"tcp", "127.0.0.1:99999999999999999999", RILL_EADDR_PORT, 0, 0, NULL},
      {"tcp", "[fe80::1%]:80", RILL_EINVAL, 0, 0, NULL},
      {"tcp", "[fe80::1%no-such-if0]:80", RILL_EINVAL, 0, 0, NULL},
      {"tcp", "[example.com]:80", RILL_EINVAL, 0, 0, NULL},
      /* The port is checked before the host is looked at: "host:99999" is
       * malformed (RILL_EADDR_PORT), as Go rejects it before resolving. */
      {"tcp", "host:99999", RILL_EADDR_PORT, 0, 0, NULL},
      /* names need DNS */
      {"tcp", "host:80", RILL_ENEEDDNS, 0, 0, NULL},
      {"tcp", "localhost:80", RILL_ENEEDDNS, 0, 0, NULL},
      /* wrong family, unknown network */
      {"tcp4", "[::1]:1", RILL_EADDR_FAMILY, 0, 0, NULL},
      {"tcp6", "127.0.0.1:1", RILL_EADDR_FAMILY, 0, 0, NULL},
      {"udp", "127.0.0.1:80", RILL_EUNKNOWN_NETWORK, 0, 0, NULL},
      {"", "127.0.0.1:80", RILL_EUNKNOWN_NETWORK, 0, 0, NULL},
      {"TCP", "127.0.0.1:80", RILL_EUNKNOWN_NETWORK, 0, 0, NULL},
  };
  size_t i;
  (void)state;
  for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const struct parse_case *c = &cases[i];
    struct sockaddr_storage ss;
    socklen_t len = 0;
    char buf[RILL_ADDRSTRLEN];
    int rc = rill_addr_parse(c->network, c->address, &ss, &len);
    if (rc != c->rc)
      fail_msg("rill_addr_parse(\"%s\", \"%s\") = %d (%s), want %d (%s)", c->network, c->address,
               rc, rill_err_name(rc), c->rc, rill_err_name(c->rc));
    if (rc != 0) continue;
    if (ss.ss_family != c->family)
      fail_msg("\"%s\": family %d, want %d", c->address, ss.ss_family, c->family);
    if (c->family == AF_INET) {
      assert_int_equal(len, sizeof(struct sockaddr_in));
      assert_int_equal(ntohs(((struct sockaddr_in *)&ss)->sin_port), c->port);
    } else {
      assert_int_equal(len, sizeof(struct sockaddr_in6));
      assert_int_equal(ntohs(((struct sockaddr_in6 *)&ss)->sin6_port), c->port);
    }
    rc = rill_addr_format((struct sockaddr *)&ss, len, buf, sizeof buf);
    assert_int_equal(rc, (int)strlen(c->formatted));
    assert_string_equal(buf, c->formatted);
  }

  /* "tcp" with an empty host: the IPv6 wildcard when the host has IPv6. */
  {
    struct sockaddr_storage ss;
    socklen_t len;
    assert_int_equal(rill_addr_parse("tcp", ":8888", &ss, &len), 0);
    if (nu_ipv6_ok()) {
      assert_int_equal(ss.ss_family, AF_INET6);
      assert_true(IN6_IS_ADDR_UNSPECIFIED(&((struct sockaddr_in6 *)&ss)->sin6_addr));
    }
  }

  /* A zone becomes the scope id, and is formatted back by name. */
  if (lo != 0) {
    struct sockaddr_storage ss;
    socklen_t len;
    char buf[RILL_ADDRSTRLEN];
    assert_int_equal(rill_addr_parse("tcp", "[fe80::1%lo]:80", &ss, &len), 0);
    assert_int_equal(ss.ss_family, AF_INET6);
    assert_int_equal(((struct sockaddr_in6 *)&ss)->sin6_scope_id, lo);
    assert_int_equal(ntohs(((struct sockaddr_in6 *)&ss)->sin6_port), 80);
    assert_true(rill_addr_format((struct sockaddr *)&ss, len, buf, sizeof buf) > 0);
    assert_string_equal(buf, "[fe80::1%lo]:80");
    /* a numeric zone */
    assert_int_equal(rill_addr_parse("tcp", "[fe80::1%7]:80", &ss, &len), 0);
    assert_int_equal(((struct sockaddr_in6 *)&ss)->sin6_scope_id, 7);
  } else {
    printf("# G6: no interface \"lo\", zone case skipped\n");
  }

  /* NULLs and small buffers are errors, never crashes. */
  {
    struct sockaddr_storage ss;
    socklen_t len;
    char small[4];
    assert_int_equal(rill_addr_parse(NULL, "127.0.0.1:1", &ss, &len), RILL_EINVAL);
    assert_int_equal(rill_addr_parse("tcp", NULL, &ss, &len), RILL_EINVAL);
    assert_int_equal(rill_addr_parse("tcp", "127.0.0.1:1", NULL, &len), RILL_EINVAL);
    assert_int_equal(rill_addr_parse("tcp", "127.0.0.1:80", &ss, &len), 0);
    assert_int_equal(rill_addr_format((struct sockaddr *)&ss, len, small, sizeof small),
                     RILL_EINVAL);
    assert_int_equal(rill_addr_format(NULL, 0, small, sizeof small), RILL_EINVAL);
    memset(&ss, 0, sizeof ss);
    ss.ss_family = AF_UNSPEC;
    /* The header promises "the length or RILL_EINVAL"; any error will do
     * for a family it cannot format. */
    assert_true(rill_addr_format((struct sockaddr *)&ss, sizeof ss, small, sizeof small) < 0);
  }
}

/* Malformed addresses through the real entry points: an error returned at
 * once, no callback, no descriptor. */
static int g6_dial_calls;
static void g6_dial_cb(rill_dialer *d, rill_conn *c, int status, void *arg) {
  (void)d;
  (void)c;
  (void)status;
  (void)arg;
  g6_dial_calls++;
}
static void g6_accept_cb(rill_listener *l, rill_conn *c, int status, void *arg) {
  (void)l;
  (void)c;
  (void)status;
  (void)arg;
}

static void test_g6_malformed_listen_dial(void **state) {
  rill_base *base = tu_base_new();
  const char *bad[] = {"1.2.3.4", "[::1", "host:99999", "::1:80", "127.0.0.1:65536"};
  const int bad_rc[] = {RILL_EADDR_NOPORT, RILL_EADDR_NOBRACKET, RILL_EADDR_PORT, RILL_EADDR_COLONS,
                        RILL_EADDR_PORT};
  rill_listener *l = NULL;
  int fds = tu_count_fds();
  size_t i;
  (void)state;
  g6_dial_calls = 0;
  for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    assert_int_equal(rill_listen(base, "tcp", bad[i], NULL, g6_accept_cb, NULL, &l), bad_rc[i]);
    assert_int_equal(rill_dial(base, "tcp", bad[i], NULL, g6_dial_cb, NULL, NULL), bad_rc[i]);
  }
  assert_int_equal(rill_listen(base, "udp", "127.0.0.1:0", NULL, g6_accept_cb, NULL, &l),
                   RILL_EUNKNOWN_NETWORK);
  assert_int_equal(rill_dial(base, "udp", "127.0.0.1:1", NULL, g6_dial_cb, NULL, NULL),
                   RILL_EUNKNOWN_NETWORK);
  assert_int_equal(rill_dial(base, "tcp4", "[::1]:1", NULL, g6_dial_cb, NULL, NULL),
                   RILL_EADDR_FAMILY);
  assert_int_equal(rill_listen(base, "tcp", "host:80", NULL, g6_accept_cb, NULL, &l),
                   RILL_ENEEDDNS);
  assert_int_equal(rill_listen(NULL, "tcp", "127.0.0.1:0", NULL, g6_accept_cb, NULL, &l),
                   RILL_EINVAL);
  assert_int_equal(rill_dial(base, "tcp", NULL, NULL, g6_dial_cb, NULL, NULL), RILL_EINVAL);
  tu_assert_fds(fds);
  nu_settle(base);
  assert_int_equal(g6_dial_calls, 0);
  tu_base_free(base);
}

/* Port 0: the listener reports the kernel's port. */
static void test_g6_listener_reports_port(void **state) {
  rill_base *base = tu_base_new();
  nu_server srv;
  char buf[RILL_ADDRSTRLEN], want[RILL_ADDRSTRLEN];
  int port;
  (void)state;
  memset(&srv, 0, sizeof srv);
  assert_int_equal(nu_server_listen(base, &srv, "tcp", "127.0.0.1:", NULL), 0);
  port = rill_listener_port(srv.l);
  assert_true(port > 0 && port < 65536);
  assert_int_equal(port, nu_local_port(rill_listener_fd(srv.l)));
  snprintf(want, sizeof want, "127.0.0.1:%d", port);
  assert_int_equal(rill_listener_addr(srv.l, buf, sizeof buf), (int)strlen(want));
  assert_string_equal(buf, want);
  assert_int_equal(rill_listener_addr(srv.l, buf, 3), RILL_EINVAL);
  nu_server_close(&srv);
  if (nu_ipv6_ok()) {
    assert_int_equal(nu_server_listen(base, &srv, "tcp", "[::1]:0", NULL), 0);
    port = rill_listener_port(srv.l);
    assert_true(port > 0);
    snprintf(want, sizeof want, "[::1]:%d", port);
    rill_listener_addr(srv.l, buf, sizeof buf);
    assert_string_equal(buf, want);
    nu_server_close(&srv);
  } else {
    printf("# G6: IPv6 unavailable, [::1]:0 case skipped\n");
  }
  nu_settle(base);
  tu_base_free(base);
}

static void test_g6_dual_stack_wildcard(void **state) {
  rill_base *base = tu_base_new();
  nu_server srv;
  int port, a, b;
  char buf[RILL_ADDRSTRLEN], want[RILL_ADDRSTRLEN];
  (void)state;
  if (!nu_ipv6_ok()) {
    printf("# G6: IPv6 unavailable, dual-stack test skipped\n");
    tu_base_free(base);
    skip();
  }
  memset(&srv, 0, sizeof srv);
  srv.close_accepted = 1;
  srv.stop_at = 2;
  assert_int_equal(nu_server_listen(base, &srv, "tcp", ":0", NULL), 0);
  assert_int_equal(nu_getint(rill_listener_fd(srv.l), IPPROTO_IPV6, IPV6_V6ONLY), 0);
  port = rill_listener_port(srv.l);
  snprintf(want, sizeof want, "[::]:%d", port);
  rill_listener_addr(srv.l, buf, sizeof buf);
  assert_string_equal(buf, want);
  a = nu_raw_connect("127.0.0.1", port);
  b = nu_raw_connect("::1", port);
  assert_true(a >= 0);
  assert_true(b >= 0);
  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  assert_int_equal(srv.accepted, 2);
  close(a);
  close(b);
  nu_server_close(&srv);
  nu_settle(base);
  tu_base_free(base);
}

static void test_g6_tcp6_v6only_tcp4_v4only(void **state) {
  rill_base *base = tu_base_new();
  nu_server srv;
  nu_dial d;
  int port, fd;
  char addr[64];
  (void)state;
  memset(&srv, 0, sizeof srv);
  srv.close_accepted = 1;

  /* tcp4: IPv4 only; a dial to ::1 on its port is refused. */
  assert_int_equal(nu_server_listen(base, &srv, "tcp4", ":0", NULL), 0);
  port = rill_listener_port(srv.l);
  {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    char buf[RILL_ADDRSTRLEN];
    assert_int_equal(getsockname(rill_listener_fd(srv.l), (struct sockaddr *)&ss, &len), 0);
    assert_int_equal(ss.ss_family, AF_INET);
    rill_listener_addr(srv.l, buf, sizeof buf);
    snprintf(addr, sizeof addr, "0.0.0.0:%d", port);
    assert_string_equal(buf, addr);
  }
  if (nu_ipv6_ok()) {
    memset(&d, 0, sizeof d);
    snprintf(addr, sizeof addr, "[::1]:%d", port);
    assert_int_equal(rill_dial(base, "tcp", addr, NULL, nu_dial_cb, &d, NULL), 0);
    nu_run_until_count(base, &d.calls, 1, LIMIT);
    assert_int_equal(d.status, RILL_ECONNREFUSED);
  }
  nu_server_close(&srv);

  if (!nu_ipv6_ok()) {
    printf("# G6: IPv6 unavailable, tcp6 case skipped\n");
    nu_settle(base);
    tu_base_free(base);
    return;
  }
  /* tcp6: IPV6_V6ONLY=1; ::1 connects, 127.0.0.1 is refused. */
  srv.close_accepted = 1;
  srv.stop_at = 1;
  assert_int_equal(nu_server_listen(base, &srv, "tcp6", ":0", NULL), 0);
  assert_int_equal(nu_getint(rill_listener_fd(srv.l), IPPROTO_IPV6, IPV6_V6ONLY), 1);
  port = rill_listener_port(srv.l);
  assert_int_equal(nu_raw_connect("127.0.0.1", port), -ECONNREFUSED);
  fd = nu_raw_connect("::1", port);
  assert_true(fd >= 0);
  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  assert_int_equal(srv.accepted, 1);
  close(fd);
  nu_server_close(&srv);
  nu_settle(base);
  tu_base_free(base);
}

/* The "unix" network: a path (removed at close) and Linux's abstract
 * namespace. */
static void g6_unix_case(const char *address) {
  rill_base *base = tu_base_new();
  nu_server srv;
  nu_dial d;
  char buf[RILL_ADDRSTRLEN];
  memset(&srv, 0, sizeof srv);
  memset(&d, 0, sizeof d);
  srv.close_accepted = 1;
  assert_int_equal(nu_server_listen(base, &srv, "unix", address, NULL), 0);
  assert_int_equal(rill_listener_port(srv.l), 0);
  rill_listener_addr(srv.l, buf, sizeof buf);
  assert_string_equal(buf, address);
  assert_int_equal(rill_dial(base, "unix", address, NULL, nu_dial_cb, &d, NULL), 0);
  nu_run_until_count(base, &d.calls, 1, LIMIT);
  nu_run_until_count(base, &srv.accepted, 1, LIMIT);
  assert_int_equal(d.status, 0);
  assert_string_equal(rill_conn_network(d.conn), "unix");
  assert_nonblock_cloexec(rill_conn_fd(d.conn), "unix conn");
  rill_conn_close(d.conn);
  nu_server_close(&srv);
  nu_settle(base);
  if (address[0] != '@') assert_int_equal(access(address, F_OK), -1);
  tu_base_free(base);
}

static void test_g6_unix_network(void **state) {
  char path[108], abstract[64];
  (void)state;
  snprintf(path, sizeof path, "/tmp/rill-g6-%d.sock", (int)getpid());
  unlink(path);
  g6_unix_case(path);
  snprintf(abstract, sizeof abstract, "@rill-g6-%d", (int)getpid());
  g6_unix_case(abstract);
}

static void on_accept_ignore(rill_listener *l, rill_conn *conn, int status, void *arg) {
  (void)l;
  (void)status;
  (void)arg;
  if (conn) rill_conn_abort(conn);
}

/* A socket file left by a server that died: EADDRINUSE as in Go, unless
 * unlink_stale asks rill to remove a file that nobody answers on. A live
 * server's file is never removed. */
static void test_g6_unix_stale_socket_file(void **state) {
  rill_base *base = tu_base_new();
  rill_listener *live, *l;
  rill_socket_config opts;
  struct sockaddr_un un;
  char path[108];
  int fd;
  (void)state;
  snprintf(path, sizeof path, "/tmp/rill-stale-%d.sock", (int)getpid());
  unlink(path);
  memset(&un, 0, sizeof un);
  un.sun_family = AF_UNIX;
  strcpy(un.sun_path, path);
  fd = socket(AF_UNIX, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  assert_int_equal(bind(fd, (struct sockaddr *)&un, sizeof un), 0);
  close(fd); /* the file stays behind, served by nobody */
  assert_int_equal(rill_listen(base, "unix", path, NULL, on_accept_ignore, NULL, &l), -EADDRINUSE);
  memset(&opts, 0, sizeof opts);
  opts.unlink_stale = 1;
  assert_int_equal(rill_listen(base, "unix", path, &opts, on_accept_ignore, NULL, &live), 0);
  /* Now the file is live: a second listener must not take it over. */
  assert_int_equal(rill_listen(base, "unix", path, &opts, on_accept_ignore, NULL, &l), -EADDRINUSE);
  assert_int_equal(access(path, F_OK), 0);
  rill_listener_free(live);
  assert_int_equal(access(path, F_OK), -1);
  tu_base_free(base);
}

int main(void) {
#define T(f) cmocka_unit_test_setup_teardown(f, tu_setup_fds, tu_teardown_fds)
  const struct CMUnitTest tests[] = {
      T(test_g1_nonblock_cloexec),
      T(test_g1_from_fd_sets_flags),
      T(test_g2_tcp_defaults),
      T(test_g2_options_off_and_period),
      T(test_g3_listener_reuseaddr_backlog),
      T(test_g3_accept_burst),
      T(test_g4_option_setters),
      T(test_g4_tcp_setters_on_unix),
      T(test_g5_control_hook_listen),
      T(test_g5_control_hook_dial),
      T(test_g6_address_parse_table),
      T(test_g6_malformed_listen_dial),
      T(test_g6_listener_reports_port),
      T(test_g6_dual_stack_wildcard),
      T(test_g6_tcp6_v6only_tcp4_v4only),
      T(test_g6_unix_network),
      T(test_g6_unix_stale_socket_file),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
