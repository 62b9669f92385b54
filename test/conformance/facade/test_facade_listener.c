/* G23 for listeners and handle lifetimes: a closed listener stays a valid
 * handle until it is freed, and every use of it says RILL_ECLOSED ("use of
 * closed network connection"), as Go's does; a listener closed while its
 * acceptor backs off from EMFILE ends the accept loop at once; a handle
 * freed while other fibers are parked on it wakes them and frees nothing
 * under their feet (AddressSanitizer checks the "nothing"). */
#define _GNU_SOURCE 1

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sys/resource.h>

#include "facade_util.c"

#define LIMIT 60000 /* a hang guard only */

/* ---- accept and close after close ------------------------------------- */

static void after_close_main(void *arg) {
  rill_net_listener *l = NULL;
  rill_net_conn *c = NULL;
  char addr[RILL_ADDRSTRLEN], again[RILL_ADDRSTRLEN];
  (void)arg;
  FCHECK_EQ(rill_net_listen("tcp", "127.0.0.1:0", NULL, &l), 0);
  if (!l)
    return;
  FCHECK(rill_net_listener_addr(l, addr, sizeof addr) > 0);
  FCHECK_EQ(rill_net_listener_close(l), 0);
  /* The handle is still valid: every use says it is closed. */
  FCHECK_EQ(rill_net_accept(l, &c), RILL_ECLOSED);
  FCHECK(c == NULL);
  FCHECK_EQ(rill_net_listener_close(l), RILL_ECLOSED);
  FCHECK_EQ(rill_net_accept(l, &c), RILL_ECLOSED);
  /* Go's Addr() answers after Close. */
  FCHECK(rill_net_listener_addr(l, again, sizeof again) > 0);
  FCHECK_STREQ(again, addr);
  rill_net_listener_free(l);
  /* Free without close closes; NULL is ignored. */
  FCHECK_EQ(rill_net_listen("tcp", "127.0.0.1:0", NULL, &l), 0);
  rill_net_listener_free(l);
  rill_net_listener_free(NULL);
  FCHECK_EQ(rill_net_listener_close(NULL), RILL_EINVAL);
}

static void listener_used_after_close(void **state) {
  (void)state;
  fu_run_fiber(after_close_main, NULL, LIMIT);
}

/* ---- a free while fibers are parked on the handle ---------------------- */

struct parked_free {
  rill_net_listener *l;
  struct fu_pair p;
  rill_waitgroup *wg;
  int accept_rc, read_rc, write_rc;
};

static void parked_acceptor(void *arg) {
  struct parked_free *t = (struct parked_free *)arg;
  rill_net_conn *c = NULL;
  t->accept_rc = rill_net_accept(t->l, &c);
  rill_waitgroup_done(t->wg);
}

static void parked_reader(void *arg) {
  struct parked_free *t = (struct parked_free *)arg;
  char buf[16];
  t->read_rc = (int)rill_net_read(t->p.c, buf, sizeof buf);
  rill_waitgroup_done(t->wg);
}

/* Queued behind the parked reader on the read lock. */
static void queued_reader(void *arg) {
  struct parked_free *t = (struct parked_free *)arg;
  char buf[16];
  t->write_rc = (int)rill_net_read(t->p.c, buf, sizeof buf);
  rill_waitgroup_done(t->wg);
}

static void parked_free_main(void *arg) {
  struct parked_free *t = (struct parked_free *)arg;
  rill_base *base = rill_fiber_base();
  FCHECK_EQ(rill_net_listen("tcp", "127.0.0.1:0", NULL, &t->l), 0);
  if (!t->l || fu_pair_open(&t->p) != 0)
    return;
  FCHECK_EQ(rill_waitgroup_new(&t->wg), 0);
  rill_waitgroup_add(t->wg, 3);
  FCHECK_EQ(rill_go(base, parked_acceptor, t), 0);
  FCHECK_EQ(rill_go(base, parked_reader, t), 0);
  FCHECK_EQ(rill_go(base, queued_reader, t), 0);
  FCHECK_EQ(rill_yield(), 0); /* all three run and park */
  /* Free both handles while the fibers are parked in calls on them: they
   * wake with RILL_ECLOSED, and the memory goes after they returned. */
  rill_net_listener_free(t->l);
  rill_net_conn_free(t->p.c);
  t->p.c = NULL;
  FCHECK_EQ(rill_waitgroup_wait(t->wg), 0);
  FCHECK_EQ(t->accept_rc, RILL_ECLOSED);
  FCHECK_EQ(t->read_rc, RILL_ECLOSED);
  FCHECK_EQ(t->write_rc, RILL_ECLOSED);
  rill_waitgroup_free(t->wg);
  fu_pair_close(&t->p);
}

static void free_while_fibers_parked(void **state) {
  struct parked_free t;
  (void)state;
  memset(&t, 0, sizeof t);
  fu_run_fiber(parked_free_main, &t, LIMIT);
}

/* ---- closed while the acceptor backs off from EMFILE ------------------- */

/* The blocking echo server, sent SIGTERM at its descriptor limit, used to
 * spin printing "accept: invalid argument": its accept loop was sleeping
 * after an EMFILE when the listener was closed (and freed), so the next
 * accept met a dead handle. Here the process runs out of descriptors with
 * connections waiting in the backlog; the acceptor reports EMFILE and
 * backs off as a server does, and another fiber closes the listener while
 * it sleeps. The next accept must say RILL_ECLOSED, and everything end.
 *
 * libkqueue (the kqueue backend on Linux) closes a freed base's descriptors
 * late, from a thread of its own: the earlier test's two (an epoll set and
 * a pipe) could come free after the table was filled, the acceptor then
 * accepted every client, found the backlog empty and parked in accept for
 * good, and the test hung waiting for its second EMFILE. So the acceptor
 * takes whatever came free before each accept, and a client it accepts
 * anyway (a descriptor freed between the two) is replaced, so the backlog
 * never drains. */

#define EMFILE_CLIENTS 4
#define SPARE_MAX 4096

struct emfile {
  rill_net_listener *l;
  struct sockaddr_in addr;
  rill_waitgroup *saw_errors, *acceptor_done;
  int clients[EMFILE_CLIENTS];
  int spare[SPARE_MAX];
  int spares;
  int errors, other_errors, accepted;
  int final_rc;
  struct rlimit saved;
};

/* Takes every descriptor free below the limit. */
static void take_free_descriptors(struct emfile *t) {
  while (t->spares < SPARE_MAX) {
    int fd = dup(t->clients[0]);
    if (fd < 0)
      break;
    t->spare[t->spares++] = fd;
  }
}

/* One more connection in the backlog, for one accepted; on loopback the
 * connect completes at once. */
static void replace_accepted_client(struct emfile *t) {
  int fd;
  if (t->spares > 0)
    close(t->spare[--t->spares]);
  fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  FCHECK(fd >= 0);
  if (fd < 0)
    return;
  FCHECK_EQ(connect(fd, (struct sockaddr *)&t->addr, sizeof t->addr), 0);
  if (t->spares < SPARE_MAX)
    t->spare[t->spares++] = fd; /* closed with the spares */
  else
    close(fd);
}

static void emfile_acceptor(void *arg) {
  struct emfile *t = (struct emfile *)arg;
  for (;;) {
    rill_net_conn *c = NULL;
    int rc;
    take_free_descriptors(t);
    rc = rill_net_accept(t->l, &c);
    if (rc == 0) {
      t->accepted++;
      rill_net_conn_free(c);
      replace_accepted_client(t);
      continue;
    }
    if (rc == RILL_ECLOSED) {
      t->final_rc = rc;
      break;
    }
    if (rc == RILL_EMFILE || rc == RILL_ENFILE)
      t->errors++;
    else
      t->other_errors++;
    if (t->errors == 2)
      rill_waitgroup_done(t->saw_errors); /* the closer runs while we sleep */
    if (t->errors + t->other_errors > 100000) {
      t->final_rc = rc; /* never closed: give up rather than spin */
      break;
    }
    rill_sleep(10 * RILL_MSEC);
  }
  rill_waitgroup_done(t->acceptor_done);
}

/* Takes every descriptor below a limit just above what is open now. */
static int exhaust_descriptors(struct emfile *t) {
  struct rlimit low;
  if (getrlimit(RLIMIT_NOFILE, &t->saved) != 0)
    return -1;
  low = t->saved;
  low.rlim_cur = (rlim_t)tu_count_fds() + 16;
  if (low.rlim_cur > t->saved.rlim_cur || setrlimit(RLIMIT_NOFILE, &low) != 0)
    return -1;
  take_free_descriptors(t);
  return errno == EMFILE ? 0 : -1;
}

static void restore_descriptors(struct emfile *t) {
  while (t->spares > 0)
    close(t->spare[--t->spares]);
  setrlimit(RLIMIT_NOFILE, &t->saved);
}

static void emfile_main(void *arg) {
  struct emfile *t = (struct emfile *)arg;
  char addr[RILL_ADDRSTRLEN];
  struct sockaddr_in *sin = &t->addr;
  int i;
  FCHECK_EQ(rill_net_listen("tcp", "127.0.0.1:0", NULL, &t->l), 0);
  if (!t->l)
    return;
  FCHECK(rill_net_listener_addr(t->l, addr, sizeof addr) > 0);
  memset(sin, 0, sizeof *sin);
  sin->sin_family = AF_INET;
  sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sin->sin_port = htons((uint16_t)atoi(strrchr(addr, ':') + 1));
  /* Connections complete in the backlog; accepting them needs descriptors. */
  for (i = 0; i < EMFILE_CLIENTS; i++) {
    t->clients[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    FCHECK(t->clients[i] >= 0);
    FCHECK_EQ(connect(t->clients[i], (struct sockaddr *)sin, sizeof *sin), 0);
  }
  FCHECK_EQ(rill_waitgroup_new(&t->saw_errors), 0);
  FCHECK_EQ(rill_waitgroup_new(&t->acceptor_done), 0);
  rill_waitgroup_add(t->saw_errors, 1);
  rill_waitgroup_add(t->acceptor_done, 1);
  FCHECK_EQ(exhaust_descriptors(t), 0);
  FCHECK_EQ(rill_go(rill_fiber_base(), emfile_acceptor, t), 0);

  FCHECK_EQ(rill_waitgroup_wait(t->saw_errors), 0);
  /* The acceptor is in rill_sleep() now, not in accept. */
  FCHECK_EQ(rill_net_listener_close(t->l), 0);
  FCHECK_EQ(rill_waitgroup_wait(t->acceptor_done), 0);
  restore_descriptors(t);
  FCHECK_EQ(t->final_rc, RILL_ECLOSED);
  FCHECK_EQ(t->other_errors, 0);
  /* Only a descriptor another thread freed lets an accept through. */
  FCHECK(t->accepted == 0 || tu_on_libkqueue());
  rill_net_listener_free(t->l);
  rill_waitgroup_free(t->saw_errors);
  rill_waitgroup_free(t->acceptor_done);
  for (i = 0; i < EMFILE_CLIENTS; i++)
    if (t->clients[i] >= 0)
      close(t->clients[i]);
}

static void listener_closed_during_emfile_backoff(void **state) {
  struct emfile t;
  (void)state;
  memset(&t, 0, sizeof t);
  for (int i = 0; i < EMFILE_CLIENTS; i++)
    t.clients[i] = -1;
  fu_run_fiber(emfile_main, &t, LIMIT);
  assert_true(t.errors >= 2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(listener_used_after_close, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(free_while_fibers_parked, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(listener_closed_during_emfile_backoff, tu_setup_fds,
                                      tu_teardown_fds),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
