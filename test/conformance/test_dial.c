/* docs/go-model.md G7-G10, callback API: completing a non-blocking connect,
 * refused and stuck connects, dial timeouts and cancellation.
 *
 * (G7's fault-injected SO_ERROR sequences live in test/fault.) */
#define _GNU_SOURCE 1

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rill.h"
#include "test_util.h"
#include "net_util.h"

#define LIMIT 5000

static void fmt_addr(char *buf, size_t size, const char *ip, int port) {
  snprintf(buf, size, strchr(ip, ':') ? "[%s]:%d" : "%s:%d", ip, port);
}

/* ---- G7 -------------------------------------------------------------- */

static void g7_case(const char *ip) {
  rill_base *base = tu_base_new();
  nu_server srv;
  nu_dial d;
  char laddr[64], addr[64], listen_addr[RILL_ADDRSTRLEN], remote[RILL_ADDRSTRLEN],
      local[RILL_ADDRSTRLEN], peer_remote[RILL_ADDRSTRLEN];
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  int port;
  memset(&srv, 0, sizeof srv);
  memset(&d, 0, sizeof d);
  fmt_addr(laddr, sizeof laddr, ip, 0);
  assert_int_equal(nu_server_listen(base, &srv, "tcp", laddr, NULL), 0);
  port = rill_listener_port(srv.l);
  fmt_addr(addr, sizeof addr, ip, port);
  assert_int_equal(rill_dial(base, "tcp", addr, NULL, nu_dial_cb, &d, NULL), 0);
  assert_int_equal(d.calls, 0); /* never inside the call */
  nu_run_until_count(base, &d.calls, 1, LIMIT);
  nu_run_until_count(base, &srv.accepted, 1, LIMIT);
  assert_int_equal(d.status, 0);
  assert_non_null(d.conn);

  /* Really connected: the peer's address is there, and it is the
   * listener's. */
  assert_int_equal(getpeername(rill_conn_fd(d.conn), (struct sockaddr *)&ss, &len), 0);
  assert_int_equal(ss.ss_family, strchr(ip, ':') ? AF_INET6 : AF_INET);
  assert_true(rill_listener_addr(srv.l, listen_addr, sizeof listen_addr) > 0);
  assert_true(rill_conn_remote_addr(d.conn, remote, sizeof remote) > 0);
  assert_string_equal(remote, listen_addr);
  assert_string_equal(remote, addr);
  assert_string_equal(rill_conn_network(d.conn), "tcp");

  /* Both ends agree on the four-tuple. */
  assert_true(rill_conn_local_addr(d.conn, local, sizeof local) > 0);
  assert_true(rill_conn_remote_addr(srv.conns[0], peer_remote, sizeof peer_remote) > 0);
  assert_string_equal(local, peer_remote);
  {
    char want[RILL_ADDRSTRLEN];
    len = sizeof ss;
    assert_int_equal(getsockname(rill_conn_fd(d.conn), (struct sockaddr *)&ss, &len), 0);
    assert_true(rill_addr_format((struct sockaddr *)&ss, len, want, sizeof want) > 0);
    assert_string_equal(local, want);
  }

  rill_conn_close(d.conn);
  nu_server_close(&srv);
  nu_settle(base);
  tu_base_free(base);
}

static void test_g7_dial_connects(void **state) {
  (void)state;
  g7_case("127.0.0.1");
  if (nu_ipv6_ok())
    g7_case("::1");
  else
    printf("# G7: IPv6 unavailable, ::1 case skipped\n");
}

/* ---- G8 -------------------------------------------------------------- */

static void g8_case(const char *ip) {
  rill_base *base = tu_base_new();
  nu_dial d;
  char addr[64], want[128];
  int port = nu_free_port(ip);
  uint64_t t0;
  memset(&d, 0, sizeof d);
  fmt_addr(addr, sizeof addr, ip, port);
  t0 = tu_now_ms();
  assert_int_equal(rill_dial(base, "tcp", addr, NULL, nu_dial_cb, &d, NULL), 0);
  assert_int_equal(d.calls, 0);
  nu_run_until_count(base, &d.calls, 1, LIMIT);
  printf("# G8: %s refused after %llu ms\n", addr, (unsigned long long)(d.done_ms - t0));
  assert_int_equal(d.status, RILL_ECONNREFUSED);
  assert_null(d.conn);
  /* Go promises well under 100 ms; a generous bound keeps this unflaky. */
  assert_true(d.done_ms - t0 < 1000);
  snprintf(want, sizeof want, "dial tcp %s: connect: connection refused", addr);
  assert_string_equal(d.err, want);
  nu_settle(base);
  tu_base_free(base);
}

static void test_g8_refused_fast(void **state) {
  (void)state;
  g8_case("127.0.0.1");
  if (nu_ipv6_ok())
    g8_case("::1");
  else
    printf("# G8: IPv6 unavailable, ::1 case skipped\n");
}

/* ---- G9 -------------------------------------------------------------- */

/* Fills a listener's accept queue with raw connects until one does not
 * complete (its SYN was dropped); that one is closed again. Returns the
 * number of queued connections in fillers[]. */
static int fill_backlog(int port, int *fillers, int max) {
  int n = 0;
  while (n < max) {
    int fd = nu_raw_connect_nb("127.0.0.1", port);
    int rc;
    assert_true(fd >= 0);
    rc = nu_wait_connected(fd, 150);
    if (rc != 1) {
      close(fd);
      return n;
    }
    fillers[n++] = fd;
  }
  fail_msg("the accept queue never filled after %d connections", max);
  return n;
}

struct g9_state {
  rill_listener *l;
  nu_dial *d;
  int calls_at_resume;
};

static void g9_resume(void *arg) {
  struct g9_state *s = (struct g9_state *)arg;
  s->calls_at_resume = s->d->calls;
  assert_int_equal(rill_listener_start(s->l), 0);
}

static void test_g9_backlog_full_timeout_then_completes(void **state) {
  rill_base *base = tu_base_new();
  nu_server srv;
  rill_socket_config lo, dopt;
  nu_dial d1, d2;
  struct g9_state gs;
  int fillers[32], nfill, port, i;
  char addr[64], want[128];
  uint64_t t0;
  (void)state;
  memset(&srv, 0, sizeof srv);
  memset(&lo, 0, sizeof lo);
  lo.backlog = 1;
  srv.close_accepted = 1;
  assert_int_equal(nu_server_listen(base, &srv, "tcp", "127.0.0.1:0", &lo), 0);
  assert_int_equal(rill_listener_stop(srv.l), 0); /* the peer does not accept */
  port = rill_listener_port(srv.l);
  nfill = fill_backlog(port, fillers, 32);
  printf("# G9: accept queue full after %d connections\n", nfill);
  assert_true(nfill >= 1);

  /* With a timeout: "i/o timeout", not before the timeout. */
  memset(&d1, 0, sizeof d1);
  memset(&dopt, 0, sizeof dopt);
  dopt.timeout = 300 * RILL_MSEC;
  fmt_addr(addr, sizeof addr, "127.0.0.1", port);
  t0 = tu_now_ms();
  assert_int_equal(rill_dial(base, "tcp", addr, &dopt, nu_dial_cb, &d1, NULL), 0);
  nu_run_until_count(base, &d1.calls, 1, 3000);
  printf("# G9: dial timed out after %llu ms\n", (unsigned long long)(d1.done_ms - t0));
  assert_int_equal(d1.status, RILL_ETIMEOUT);
  assert_true(d1.done_ms - t0 >= 290);
  snprintf(want, sizeof want, "dial tcp %s: i/o timeout", addr);
  assert_string_equal(d1.err, want);
  assert_string_equal(rill_strerror(RILL_ETIMEOUT), "i/o timeout");

  /* Without a timeout: waits while the peer does not accept, completes once
   * it does (the kernel retries the dropped SYN after about a second). */
  memset(&d2, 0, sizeof d2);
  gs.l = srv.l;
  gs.d = &d2;
  gs.calls_at_resume = -1;
  t0 = tu_now_ms();
  assert_int_equal(rill_dial(base, "tcp", addr, NULL, nu_dial_cb, &d2, NULL), 0);
  nu_after(base, 300, g9_resume, &gs);
  nu_run_until_count(base, &d2.calls, 1, 10000);
  printf("# G9: second dial completed after %llu ms\n", (unsigned long long)(d2.done_ms - t0));
  assert_int_equal(gs.calls_at_resume, 0);
  assert_int_equal(d2.status, 0);
  assert_true(d2.done_ms - t0 >= 300);

  rill_conn_close(d2.conn);
  for (i = 0; i < nfill; i++) close(fillers[i]);
  nu_server_close(&srv);
  nu_settle(base);
  tu_base_free(base);
}

/* ---- G10 ------------------------------------------------------------- */

static void test_g10_cancel_at_once(void **state) {
  rill_base *base = tu_base_new();
  nu_server srv;
  nu_dial d;
  rill_dialer *dialer = NULL;
  char addr[64], want[128];
  (void)state;
  memset(&srv, 0, sizeof srv);
  memset(&d, 0, sizeof d);
  srv.close_accepted = 1;
  assert_int_equal(nu_server_listen(base, &srv, "tcp", "127.0.0.1:0", NULL), 0);
  fmt_addr(addr, sizeof addr, "127.0.0.1", rill_listener_port(srv.l));
  assert_int_equal(rill_dial(base, "tcp", addr, NULL, nu_dial_cb, &d, &dialer), 0);
  assert_non_null(dialer);
  assert_int_equal(rill_dialer_cancel(dialer), 0);
  assert_int_equal(rill_dialer_cancel(dialer), 0); /* twice: still one report */
  assert_int_equal(d.calls, 0);                     /* from the loop only */
  nu_run_until_count(base, &d.calls, 1, LIMIT);
  nu_stop_after(base, 100);
  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  assert_int_equal(d.calls, 1);
  assert_int_equal(d.status, RILL_ECANCELED);
  assert_null(d.conn);
  snprintf(want, sizeof want, "dial tcp %s: operation was canceled", addr);
  assert_string_equal(d.err, want);
  nu_server_close(&srv);
  nu_settle(base);
  tu_base_free(base); /* the fixture checks that no descriptor is left */
}

/* A connect that cannot finish (the peer's queue is full): cancel wins. */
static void test_g10_cancel_stuck_connect(void **state) {
  rill_base *base = tu_base_new();
  nu_server srv;
  rill_socket_config lo;
  nu_dial d;
  rill_dialer *dialer = NULL;
  int fillers[32], nfill, i, fds;
  char addr[64];
  (void)state;
  memset(&srv, 0, sizeof srv);
  memset(&lo, 0, sizeof lo);
  memset(&d, 0, sizeof d);
  lo.backlog = 1;
  srv.close_accepted = 1;
  assert_int_equal(nu_server_listen(base, &srv, "tcp", "127.0.0.1:0", &lo), 0);
  rill_listener_stop(srv.l);
  nfill = fill_backlog(rill_listener_port(srv.l), fillers, 32);
  fmt_addr(addr, sizeof addr, "127.0.0.1", rill_listener_port(srv.l));
  fds = tu_count_fds();
  assert_int_equal(rill_dial(base, "tcp", addr, NULL, nu_dial_cb, &d, &dialer), 0);
  nu_stop_after(base, 100);
  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  assert_int_equal(d.calls, 0);
  assert_int_equal(rill_dialer_cancel(dialer), 0);
  nu_run_until_count(base, &d.calls, 1, LIMIT);
  assert_int_equal(d.status, RILL_ECANCELED);
  tu_assert_fds(fds); /* the socket is closed */
  for (i = 0; i < nfill; i++) close(fillers[i]);
  nu_server_close(&srv);
  nu_settle(base);
  tu_base_free(base);
}

#define RACES 1000

/* The race test's listener: closes what it accepts and, in mode 3, cancels
 * the dial from inside the accept callback, in the same loop iteration in
 * which the dial's socket may already have been found connected. */
struct race {
  rill_dialer *dialer; /* to cancel from the accept callback, or NULL */
  nu_dial *d;
  int accepted;
  int cancels_in_accept;
};

static void race_accept_cb(rill_listener *l, rill_conn *c, int status, void *arg) {
  struct race *r = (struct race *)arg;
  (void)l;
  if (status != 0) return;
  r->accepted++;
  assert_int_equal(rill_conn_close(c), 0);
  if (r->dialer && r->d->calls == 0) {
    assert_int_equal(rill_dialer_cancel(r->dialer), 0);
    r->cancels_in_accept++;
  }
  r->dialer = NULL;
}

/* Cancel racing a connect that succeeds: before the loop ran, after a
 * non-blocking iteration, after a blocking one, and from the accept
 * callback of the listener it connects to. Exactly one completion each
 * time: a usable connection or RILL_ECANCELED. */
static void test_g10_cancel_race_1000(void **state) {
  rill_base *base = tu_base_new();
  rill_listener *l = NULL;
  struct race race;
  nu_dial *d = (nu_dial *)calloc(RACES, sizeof *d);
  char addr[64];
  int i, won = 0, canceled = 0, before_cancel = 0;
  (void)state;
  assert_non_null(d);
  memset(&race, 0, sizeof race);
  assert_int_equal(rill_listen(base, "tcp", "127.0.0.1:0", NULL, race_accept_cb, &race, &l), 0);
  fmt_addr(addr, sizeof addr, "127.0.0.1", rill_listener_port(l));
  for (i = 0; i < RACES; i++) {
    rill_dialer *dialer = NULL;
    int mode = i % 4;
    assert_int_equal(rill_dial(base, "tcp", addr, NULL, nu_dial_cb, &d[i], &dialer), 0);
    if (mode == 1) rill_base_run(base, RILL_RUN_NOWAIT);
    if (mode == 2) tu_run(base, RILL_RUN_ONCE, 1000);
    if (mode == 3) {
      race.dialer = dialer;
      race.d = &d[i];
    } else if (d[i].calls == 0) {
      assert_int_equal(rill_dialer_cancel(dialer), 0);
    } else {
      before_cancel++;
    }
    nu_run_until_count(base, &d[i].calls, 1, LIMIT);
    race.dialer = NULL;
    if (d[i].status == 0) {
      assert_non_null(d[i].conn);
      /* A connection that won is whole: really connected. */
      {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        assert_int_equal(getpeername(rill_conn_fd(d[i].conn), (struct sockaddr *)&ss, &len), 0);
      }
      assert_int_equal(rill_conn_close(d[i].conn), 0);
      won++;
    } else {
      if (d[i].status != RILL_ECANCELED)
        fail_msg("race %d: status %d (%s)", i, d[i].status, rill_strerror(d[i].status));
      assert_null(d[i].conn);
      canceled++;
    }
  }
  /* Let anything late show up. */
  nu_stop_after(base, 50);
  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  for (i = 0; i < RACES; i++)
    if (d[i].calls != 1) fail_msg("dial %d completed %d times", i, d[i].calls);
  printf("# G10: %d connected (%d before a cancel was possible), %d canceled "
         "(%d from the accept callback)\n",
         won, before_cancel, canceled, race.cancels_in_accept);
  assert_true(canceled >= RACES / 4); /* every cancel-before-run loses the connection */
  rill_listener_free(l);
  nu_settle(base);
  free(d);
  tu_base_free(base); /* and the fixture checks descriptors */
}

static void test_g10_timeout_success_no_late_timeout(void **state) {
  rill_base *base = tu_base_new();
  nu_server srv;
  nu_dial d;
  rill_socket_config o;
  char addr[64];
  (void)state;
  memset(&srv, 0, sizeof srv);
  memset(&d, 0, sizeof d);
  memset(&o, 0, sizeof o);
  o.timeout = 100 * RILL_MSEC;
  srv.close_accepted = 1;
  assert_int_equal(nu_server_listen(base, &srv, "tcp", "127.0.0.1:0", NULL), 0);
  fmt_addr(addr, sizeof addr, "127.0.0.1", rill_listener_port(srv.l));
  assert_int_equal(rill_dial(base, "tcp", addr, &o, nu_dial_cb, &d, NULL), 0);
  nu_run_until_count(base, &d.calls, 1, LIMIT);
  assert_int_equal(d.status, 0);
  nu_stop_after(base, 300); /* well past the timeout */
  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  assert_int_equal(d.calls, 1);
  assert_int_equal(d.status, 0);
  /* The connection is intact. */
  assert_int_equal(rill_conn_write(d.conn, "x", 1), 0);
  rill_conn_close(d.conn);
  nu_server_close(&srv);
  nu_settle(base);
  tu_base_free(base);
}

int main(void) {
#define T(f) cmocka_unit_test_setup_teardown(f, tu_setup_fds, tu_teardown_fds)
  const struct CMUnitTest tests[] = {
      T(test_g7_dial_connects),
      T(test_g8_refused_fast),
      T(test_g9_backlog_full_timeout_then_completes),
      T(test_g10_cancel_at_once),
      T(test_g10_cancel_stuck_connect),
      T(test_g10_cancel_race_1000),
      T(test_g10_timeout_success_no_late_timeout),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
