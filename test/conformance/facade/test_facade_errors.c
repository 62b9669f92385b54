/* Go's error texts through the blocking facade: rill_net_dial()'s errbuf
 * and rill_net_format_error(), on both ends of a facade connection. */
#define _GNU_SOURCE 1

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "rill.h"
#include "test_util.h"

#include "facade_util.c"

#define LIMIT 60000 /* a hang guard only */

/* A port nothing listens on: bound once, then released. */
static int closed_port(void) {
  int port = 0;
  int fd = fu_raw_listen(&port);
  if (fd < 0)
    return -1;
  close(fd);
  return port;
}

static void refused_main(void *arg) {
  char addr[64], errbuf[256], expect[256];
  rill_net_conn *c = NULL;
  uint64_t t0;
  int port = closed_port(), rc;
  (void)arg;
  FCHECK(port > 0);
  snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
  t0 = tu_now_ms();
  rc = rill_net_dial("tcp", addr, NULL, &c, errbuf, sizeof errbuf);
  FCHECK_EQ(rc, RILL_ECONNREFUSED);
  FCHECK(tu_now_ms() - t0 < FU_AT_ONCE_MS);
  FCHECK(c == NULL);
  snprintf(expect, sizeof expect, "dial tcp %s: connect: connection refused", addr);
  FCHECK_STREQ(errbuf, expect);

  /* errbuf may be NULL. */
  FCHECK_EQ(rill_net_dial("tcp", addr, NULL, &c, NULL, 0), RILL_ECONNREFUSED);

  /* Malformed input: an error and a message, never a crash. */
  errbuf[0] = '\0';
  rc = rill_net_dial("tcp", "1.2.3.4", NULL, &c, errbuf, sizeof errbuf);
  FCHECK_EQ(rc, RILL_EADDR_NOPORT);
  FCHECK_STREQ(errbuf, "dial tcp: address 1.2.3.4: missing port in address");
}

static void dial_refused_text(void **state) {
  (void)state;
  fu_run_fiber(refused_main, NULL, LIMIT);
}

/* A facade listener and a facade dialer, so both ends are rill_net_conn. */
struct both {
  rill_net_listener *l;
  rill_net_conn *server, *client;
  char laddr[RILL_ADDRSTRLEN];
  rill_waitgroup *wg;
  int accept_rc;
};

static void acceptor(void *arg) {
  struct both *t = (struct both *)arg;
  t->accept_rc = rill_net_accept(t->l, &t->server);
  rill_waitgroup_done(t->wg);
}

static void format_main(void *arg) {
  struct both *t = (struct both *)arg;
  rill_base *base = rill_fiber_base();
  char msg[512], expect[512], cl[RILL_ADDRSTRLEN], cr[RILL_ADDRSTRLEN], sl[RILL_ADDRSTRLEN],
      sr[RILL_ADDRSTRLEN], errbuf[256], buf[8];
  FCHECK_EQ(rill_net_listen("tcp", "127.0.0.1:0", NULL, &t->l), 0);
  if (!t->l)
    return;
  FCHECK(rill_net_listener_addr(t->l, t->laddr, sizeof t->laddr) > 0);
  FCHECK(strncmp(t->laddr, "127.0.0.1:", 10) == 0 && strcmp(t->laddr, "127.0.0.1:0") != 0);
  FCHECK_EQ(rill_waitgroup_new(&t->wg), 0);
  rill_waitgroup_add(t->wg, 1);
  FCHECK_EQ(rill_go(base, acceptor, t), 0);
  FCHECK_EQ(rill_net_dial("tcp", t->laddr, NULL, &t->client, errbuf, sizeof errbuf), 0);
  FCHECK_EQ(rill_waitgroup_wait(t->wg), 0);
  FCHECK_EQ(t->accept_rc, 0);
  if (!t->client || !t->server) {
    rill_net_conn_free(t->client);
    rill_net_conn_free(t->server);
    rill_net_listener_free(t->l);
    return;
  }
  FCHECK(rill_net_local_addr(t->client, cl, sizeof cl) > 0);
  FCHECK(rill_net_remote_addr(t->client, cr, sizeof cr) > 0);
  FCHECK(rill_net_local_addr(t->server, sl, sizeof sl) > 0);
  FCHECK(rill_net_remote_addr(t->server, sr, sizeof sr) > 0);
  FCHECK_STREQ(cr, t->laddr);
  FCHECK_STREQ(sl, t->laddr);
  FCHECK_STREQ(sr, cl);

  /* A real read timeout on the server side, formatted. */
  FCHECK_EQ(rill_net_set_deadline(t->server, RILL_DEADLINE_READ, rill_time_now() + 30 * RILL_MSEC), 0);
  FCHECK_EQ(rill_net_read(t->server, buf, sizeof buf), RILL_ETIMEOUT);
  snprintf(expect, sizeof expect, "read tcp %s->%s: i/o timeout", sl, sr);
  FCHECK(rill_net_format_error(t->server, "read", RILL_ETIMEOUT, msg, sizeof msg) > 0);
  FCHECK_STREQ(msg, expect);

  /* A system error names the call, as Go's OpError wraps a SyscallError. */
  snprintf(expect, sizeof expect, "write tcp %s->%s: write: connection reset by peer", cl, cr);
  FCHECK(rill_net_format_error(t->client, "write", RILL_ECONNRESET, msg, sizeof msg) > 0);
  FCHECK_STREQ(msg, expect);

  /* Still formatted the same once closed (the addresses are remembered). */
  FCHECK_EQ(rill_net_close(t->client), 0);
  snprintf(expect, sizeof expect, "close tcp %s->%s: use of closed network connection", cl, cr);
  FCHECK(rill_net_format_error(t->client, "close", rill_net_close(t->client), msg, sizeof msg) > 0);
  FCHECK_STREQ(msg, expect);

  rill_net_conn_free(t->client);
  rill_net_conn_free(t->server);
  rill_net_listener_free(t->l);
  rill_waitgroup_free(t->wg);
}

static void format_error_text(void **state) {
  struct both t;
  (void)state;
  memset(&t, 0, sizeof t);
  fu_run_fiber(format_main, &t, LIMIT);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(dial_refused_text, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(format_error_text, tu_setup_fds, tu_teardown_fds),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
