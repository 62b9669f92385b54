/* G8, G9 and G10 (the timeout) through the blocking facade: a dial to a
 * port nobody listens on is refused at once; a dial to a listener whose
 * backlog is full waits while nobody accepts (with a timeout it ends with
 * RILL_ETIMEOUT) and completes once a fiber accepts; a dial timeout gives
 * exactly one outcome, the socket closed when the timer wins, and a
 * connection that won is never poisoned by the timer afterwards.
 *
 * Times are checked only where they are the behaviour (a timeout does not
 * fire before its time; a dial waits while nobody accepts); every other
 * bound is a hang guard. The descriptor fixture checks that no socket is
 * left behind. */
#define _GNU_SOURCE 1

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <poll.h>

#include "facade_util.c"

#define LIMIT 60000 /* a hang guard only */

/* A port on 127.0.0.1 nobody listens on (bound, then closed). */
static int free_port(void) {
  int port = 0, fd = fu_raw_listen(&port);
  if (fd < 0)
    return -1;
  close(fd);
  return port;
}

static int port_of(const char *addr) { return atoi(strrchr(addr, ':') + 1); }

/* ---- G8: refused, without waiting ------------------------------------- */

static void g8_main(void *arg) {
  char addr[64], errbuf[256], want[128];
  rill_net_conn *c = NULL;
  uint64_t t0 = tu_now_ms();
  (void)arg;
  snprintf(addr, sizeof addr, "127.0.0.1:%d", free_port());
  FCHECK_EQ(rill_net_dial("tcp", addr, NULL, &c, errbuf, sizeof errbuf), RILL_ECONNREFUSED);
  FCHECK(c == NULL);
  /* "Fast": the refusal is not a timeout in disguise. Go answers in well
   * under 100 ms; only a hang guard here. */
  FCHECK(tu_now_ms() - t0 < FU_AT_ONCE_MS);
  snprintf(want, sizeof want, "dial tcp %s: connect: connection refused", addr);
  FCHECK_STREQ(errbuf, want);
}

static void test_g8_facade_refused_fast(void **state) {
  (void)state;
  fu_run_fiber(g8_main, NULL, LIMIT);
}

/* ---- G9: a full backlog -------------------------------------------------- */

/* Fills the accept queue of the listener on `port` (nobody accepting) with
 * raw connects until one does not complete: that one's SYN was dropped, so
 * the queue is full; it is closed again. Returns how many are queued. The
 * poll blocks the loop for a moment, which nothing here minds. */
static int fill_backlog(int port, int *fds, int max) {
  struct sockaddr_in sin;
  int n = 0;
  memset(&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sin.sin_port = htons((uint16_t)port);
  while (n < max) {
    struct pollfd p;
    int err = 0;
    socklen_t len = sizeof err;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
      return n;
    if (connect(fd, (struct sockaddr *)&sin, sizeof sin) != 0 && errno != EINPROGRESS) {
      close(fd);
      return n;
    }
    p.fd = fd;
    p.events = POLLOUT;
    p.revents = 0;
    if (poll(&p, 1, 150) != 1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err) {
      close(fd);
      return n;
    }
    fds[n++] = fd;
  }
  return n;
}

struct g9 {
  rill_net_listener *l;
  char addr[RILL_ADDRSTRLEN];
  rill_waitgroup *dialed, *accepted;
  int dial_rc;
  rill_net_conn *dialed_conn;
  int accepts, expected_accepts;
};

static void g9_waiting_dialer(void *arg) {
  struct g9 *t = (struct g9 *)arg;
  char errbuf[256];
  t->dial_rc = rill_net_dial("tcp", t->addr, NULL, &t->dialed_conn, errbuf, sizeof errbuf);
  rill_waitgroup_done(t->dialed);
}

static void g9_acceptor(void *arg) {
  struct g9 *t = (struct g9 *)arg;
  while (t->accepts < t->expected_accepts) {
    rill_net_conn *c = NULL;
    int rc = rill_net_accept(t->l, &c);
    FCHECK_EQ(rc, 0);
    if (rc)
      break;
    t->accepts++;
    rill_net_conn_free(c);
  }
  rill_waitgroup_done(t->accepted);
}

static void g9_main(void *arg) {
  struct g9 *t = (struct g9 *)arg;
  rill_base *base = rill_fiber_base();
  rill_socket_config lo, dopt;
  rill_net_conn *c = NULL;
  char errbuf[256], want[256];
  int fillers[64], nfill, i;
  uint64_t t0;
  memset(&lo, 0, sizeof lo);
  lo.backlog = 1;
  FCHECK_EQ(rill_net_listen("tcp", "127.0.0.1:0", &lo, &t->l), 0);
  if (!t->l)
    return;
  FCHECK(rill_net_listener_addr(t->l, t->addr, sizeof t->addr) > 0);
  /* No fiber waits in accept, so the facade listener accepts nothing and
   * the kernel's queue fills, as a Go listener's does before Accept. */
  nfill = fill_backlog(port_of(t->addr), fillers, 64);
  printf("# G9: accept queue full after %d connections\n", nfill);
  FCHECK(nfill >= 1 && nfill < 64);

  /* A dial with a timeout ends with RILL_ETIMEOUT, not before its time. */
  memset(&dopt, 0, sizeof dopt);
  dopt.timeout = 300 * RILL_MSEC;
  t0 = tu_now_ms();
  FCHECK_EQ(rill_net_dial("tcp", t->addr, &dopt, &c, errbuf, sizeof errbuf), RILL_ETIMEOUT);
  FCHECK(c == NULL);
  FCHECK(tu_now_ms() - t0 >= 290);
  snprintf(want, sizeof want, "dial tcp %s: i/o timeout", t->addr);
  FCHECK_STREQ(errbuf, want);

  /* A dial without one waits while nobody accepts... */
  FCHECK_EQ(rill_waitgroup_new(&t->dialed), 0);
  FCHECK_EQ(rill_waitgroup_new(&t->accepted), 0);
  rill_waitgroup_add(t->dialed, 1);
  rill_waitgroup_add(t->accepted, 1);
  t->dial_rc = 1;
  FCHECK_EQ(rill_go(base, g9_waiting_dialer, t), 0);
  rill_sleep(300 * RILL_MSEC);
  FCHECK_EQ(t->dial_rc, 1);
  /* ...and completes once a fiber accepts (the kernel sends the dropped
   * SYN again after about a second, and now there is room). */
  t->expected_accepts = nfill + 1;
  FCHECK_EQ(rill_go(base, g9_acceptor, t), 0);
  FCHECK_EQ(rill_waitgroup_wait(t->dialed), 0);
  FCHECK_EQ(t->dial_rc, 0);
  FCHECK_EQ(rill_waitgroup_wait(t->accepted), 0);
  FCHECK_EQ(t->accepts, nfill + 1);
  if (t->dialed_conn)
    rill_net_conn_free(t->dialed_conn);
  for (i = 0; i < nfill; i++)
    close(fillers[i]);
  rill_net_listener_free(t->l);
  rill_waitgroup_free(t->dialed);
  rill_waitgroup_free(t->accepted);
}

static void test_g9_facade_backlog_full_timeout_then_completes(void **state) {
  struct g9 t;
  (void)state;
  memset(&t, 0, sizeof t);
  fu_run_fiber(g9_main, &t, LIMIT);
}

/* ---- G10: the dial timeout ---------------------------------------------- */

/* A raw listener whose queue one connection fills (Linux admits backlog +
 * 1): every later SYN is dropped, so a dial neither completes nor fails. */
static int stuck_listener(int *port, int *filler) {
  struct sockaddr_in sin;
  socklen_t len = sizeof sin;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  memset(&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof sin) != 0 || listen(fd, 0) != 0 ||
      getsockname(fd, (struct sockaddr *)&sin, &len) != 0) {
    if (fd >= 0)
      close(fd);
    return -1;
  }
  *port = ntohs(sin.sin_port);
  if (fill_backlog(*port, filler, 1) != 1) {
    close(fd);
    return -1;
  }
  return fd;
}

static void g10_main(void *arg) {
  rill_socket_config o;
  rill_net_conn *c = NULL;
  char addr[64], errbuf[256];
  int port = 0, filler = -1, lfd, round;
  (void)arg;
  lfd = stuck_listener(&port, &filler);
  FCHECK(lfd >= 0);
  if (lfd < 0)
    return;
  snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
  memset(&o, 0, sizeof o);
  /* The timer wins: RILL_ETIMEOUT, exactly once per call, no connection,
   * and (checked by the fixture) no socket left open. Several rounds, so a
   * second outcome from an earlier dial would show up in a later one. */
  for (round = 0; round < 5; round++) {
    uint64_t t0 = tu_now_ms();
    o.timeout = (uint64_t)(50 + 20 * round) * RILL_MSEC;
    FCHECK_EQ(rill_net_dial("tcp", addr, &o, &c, errbuf, sizeof errbuf), RILL_ETIMEOUT);
    FCHECK(c == NULL);
    FCHECK(tu_now_ms() - t0 >= (uint64_t)(50 + 20 * round) - 10);
  }
  close(filler);
  close(lfd);

  /* The connection wins: it is the caller's and stays healthy after the
   * time the timer would have fired (Go issue 16523: never poisoned). */
  {
    int peer, lport = 0;
    int l2 = fu_raw_listen(&lport);
    char buf[2];
    FCHECK(l2 >= 0);
    snprintf(addr, sizeof addr, "127.0.0.1:%d", lport);
    o.timeout = 100 * RILL_MSEC;
    FCHECK_EQ(rill_net_dial("tcp", addr, &o, &c, errbuf, sizeof errbuf), 0);
    peer = accept4(l2, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    FCHECK(peer >= 0);
    close(l2);
    rill_sleep(300 * RILL_MSEC); /* well past the timeout */
    if (c && peer >= 0) {
      FCHECK_EQ(rill_net_write(c, "hi", 2, NULL), 0);
      FCHECK_EQ(fu_peer_read_full(peer, buf, 2, LIMIT), 0);
      FCHECK_EQ(fu_peer_write(peer, "yo", 2), 0);
      FCHECK_EQ(fu_read_full(c, buf, 2), 2);
    }
    if (c)
      rill_net_conn_free(c);
    if (peer >= 0)
      close(peer);
  }
}

static void test_g10_facade_dial_timeout_one_outcome(void **state) {
  (void)state;
  fu_run_fiber(g10_main, NULL, LIMIT);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_g8_facade_refused_fast, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_g9_facade_backlog_full_timeout_then_completes, tu_setup_fds,
                                      tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_g10_facade_dial_timeout_one_outcome, tu_setup_fds,
                                      tu_teardown_fds),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
