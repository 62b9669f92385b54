/* G28 and G33 (accept deadline) through the blocking facade: a listener
 * closed while a fiber waits in accept wakes it with RILL_ECLOSED ("use of
 * closed network connection"); accept and close after close say the same,
 * and the address still answers (Go's Addr()); an accept deadline
 * (TCPListener.SetDeadline) wakes a parked accept with RILL_ETIMEOUT, a
 * new deadline lets accept work again, and nothing that arrived meanwhile
 * is lost. */
#define _GNU_SOURCE 1

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "facade_util.c"

#define LIMIT 60000 /* a hang guard only */

/* A raw client connected to the listener's port (the kernel completes it in
 * the backlog whether anyone accepts or not). */
static int raw_client(rill_net_listener *l) {
  char addr[RILL_ADDRSTRLEN];
  struct sockaddr_in sin;
  int fd;
  if (rill_net_listener_addr(l, addr, sizeof addr) <= 0)
    return -1;
  memset(&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sin.sin_port = htons((uint16_t)atoi(strrchr(addr, ':') + 1));
  fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd >= 0 && connect(fd, (struct sockaddr *)&sin, sizeof sin) != 0) {
    close(fd);
    fd = -1;
  }
  return fd;
}

/* ---- G28: close wakes a parked accept; use after close ------------------ */

struct g28 {
  rill_net_listener *l;
  rill_waitgroup *done;
  int accept_rc;
  rill_net_conn *accepted;
};

static void g28_acceptor(void *arg) {
  struct g28 *t = (struct g28 *)arg;
  t->accept_rc = rill_net_accept(t->l, &t->accepted);
  rill_waitgroup_done(t->done);
}

static void g28_main(void *arg) {
  struct g28 *t = (struct g28 *)arg;
  char addr[RILL_ADDRSTRLEN], again[RILL_ADDRSTRLEN];
  rill_net_conn *c = NULL;
  FCHECK_EQ(rill_net_listen("tcp", "127.0.0.1:0", NULL, &t->l), 0);
  if (!t->l)
    return;
  FCHECK(rill_net_listener_addr(t->l, addr, sizeof addr) > 0);
  FCHECK_EQ(rill_waitgroup_new(&t->done), 0);
  rill_waitgroup_add(t->done, 1);
  t->accept_rc = 1;
  FCHECK_EQ(rill_go(rill_fiber_base(), g28_acceptor, t), 0);
  FCHECK_EQ(rill_yield(), 0); /* it runs and parks in accept */
  FCHECK_EQ(t->accept_rc, 1);
  FCHECK_EQ(rill_net_listener_close(t->l), 0);
  FCHECK_EQ(rill_waitgroup_wait(t->done), 0);
  FCHECK_EQ(t->accept_rc, RILL_ECLOSED);
  FCHECK(t->accepted == NULL);
  /* After Close: Accept and Close say "use of closed network connection",
   * SetDeadline too, and Addr() still answers with the same address. */
  FCHECK_EQ(rill_net_accept(t->l, &c), RILL_ECLOSED);
  FCHECK(c == NULL);
  FCHECK_EQ(rill_net_listener_close(t->l), RILL_ECLOSED);
  FCHECK_EQ(rill_net_listener_set_deadline(t->l, rill_time_now() + 10 * RILL_MSEC),
            RILL_ECLOSED);
  FCHECK(rill_net_listener_addr(t->l, again, sizeof again) > 0);
  FCHECK_STREQ(again, addr);
  FCHECK_STREQ(rill_strerror(RILL_ECLOSED), "use of closed network connection");
  rill_net_listener_free(t->l);
  rill_waitgroup_free(t->done);
}

static void test_g28_facade_close_wakes_accept_and_later_calls_say_closed(void **state) {
  struct g28 t;
  (void)state;
  memset(&t, 0, sizeof t);
  fu_run_fiber(g28_main, &t, LIMIT);
}

/* ---- G33: accept deadline ---------------------------------------------- */

struct g33 {
  rill_net_listener *l;
  rill_waitgroup *done;
  int rc;
  uint64_t woke_at, deadline;
};

static void g33_parked_acceptor(void *arg) {
  struct g33 *t = (struct g33 *)arg;
  rill_net_conn *c = NULL;
  t->rc = rill_net_accept(t->l, &c);
  t->woke_at = rill_time_now();
  if (c)
    rill_net_conn_free(c);
  rill_waitgroup_done(t->done);
}

static void g33_main(void *arg) {
  struct g33 *t = (struct g33 *)arg;
  rill_base *base = rill_fiber_base();
  rill_net_conn *c = NULL;
  char buf[4];
  int client;
  FCHECK_EQ(rill_net_listen("tcp", "127.0.0.1:0", NULL, &t->l), 0);
  if (!t->l)
    return;
  FCHECK_EQ(rill_waitgroup_new(&t->done), 0);

  /* A parked accept wakes with RILL_ETIMEOUT when the deadline passes, not
   * before. */
  t->deadline = rill_time_now() + 100 * RILL_MSEC;
  FCHECK_EQ(rill_net_listener_set_deadline(t->l, t->deadline), 0);
  FCHECK_EQ(rill_net_accept(t->l, &c), RILL_ETIMEOUT);
  FCHECK(c == NULL);
  FCHECK(rill_time_now() >= t->deadline);
  /* Past the deadline, accept fails at once, again and again. */
  FCHECK_EQ(rill_net_accept(t->l, &c), RILL_ETIMEOUT);

  /* A connection arriving past the deadline is not taken by a timed-out
   * accept, and not lost: the next accept under a new deadline gets it. */
  client = raw_client(t->l);
  FCHECK(client >= 0);
  FCHECK_EQ(rill_net_accept(t->l, &c), RILL_ETIMEOUT);
  FCHECK_EQ(rill_net_listener_set_deadline(t->l, 0), 0);
  FCHECK_EQ(rill_net_accept(t->l, &c), 0);
  FCHECK(c != NULL);
  if (c) {
    FCHECK_EQ(fu_peer_write(client, "ok", 2), 0);
    FCHECK_EQ(fu_read_full(c, buf, 2), 2);
    rill_net_conn_free(c);
    c = NULL;
  }
  close(client);

  /* A deadline set in the past while a fiber is parked wakes it at once
   * (Go's SetDeadline applies to a pending Accept). */
  rill_waitgroup_add(t->done, 1);
  t->rc = 1;
  FCHECK_EQ(rill_net_listener_set_deadline(t->l, 0), 0);
  FCHECK_EQ(rill_go(base, g33_parked_acceptor, t), 0);
  FCHECK_EQ(rill_yield(), 0);
  FCHECK_EQ(t->rc, 1); /* parked, no deadline */
  FCHECK_EQ(rill_net_listener_set_deadline(t->l, rill_time_now() - RILL_MSEC), 0);
  FCHECK_EQ(rill_waitgroup_wait(t->done), 0);
  FCHECK_EQ(t->rc, RILL_ETIMEOUT);

  /* A later deadline set while a fiber is parked moves its wake-up: it
   * waits for the new one, not the old. */
  rill_waitgroup_add(t->done, 1);
  t->rc = 1;
  FCHECK_EQ(rill_net_listener_set_deadline(t->l, rill_time_now() + 50 * RILL_MSEC), 0);
  FCHECK_EQ(rill_go(base, g33_parked_acceptor, t), 0);
  FCHECK_EQ(rill_yield(), 0);
  t->deadline = rill_time_now() + 300 * RILL_MSEC;
  FCHECK_EQ(rill_net_listener_set_deadline(t->l, t->deadline), 0);
  FCHECK_EQ(rill_waitgroup_wait(t->done), 0);
  FCHECK_EQ(t->rc, RILL_ETIMEOUT);
  FCHECK(t->woke_at >= t->deadline);

  /* With a deadline far away, a parked accept still gets a connection. */
  rill_waitgroup_add(t->done, 1);
  t->rc = 1;
  FCHECK_EQ(rill_net_listener_set_deadline(t->l, rill_time_now() + 60 * RILL_SEC), 0);
  FCHECK_EQ(rill_go(base, g33_parked_acceptor, t), 0);
  FCHECK_EQ(rill_yield(), 0);
  client = raw_client(t->l);
  FCHECK(client >= 0);
  FCHECK_EQ(rill_waitgroup_wait(t->done), 0);
  FCHECK_EQ(t->rc, 0);
  if (client >= 0)
    close(client);

  FCHECK_EQ(rill_net_listener_set_deadline(NULL, 0), RILL_EINVAL);
  rill_net_listener_free(t->l);
  rill_waitgroup_free(t->done);
}

static void test_g33_facade_accept_deadline(void **state) {
  struct g33 t;
  (void)state;
  memset(&t, 0, sizeof t);
  fu_run_fiber(g33_main, &t, LIMIT);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_g28_facade_close_wakes_accept_and_later_calls_say_closed,
                                      tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_g33_facade_accept_deadline, tu_setup_fds, tu_teardown_fds),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
