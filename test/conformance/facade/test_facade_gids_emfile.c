/* G26 through the blocking facade: out of descriptors, rill_net_accept
 * reports -EMFILE and the listener keeps running; an acceptor that simply
 * calls accept again (no pause of its own) does not spin, because the
 * listener backs off; once descriptors are free the waiting connection is
 * accepted. The loop iterations (rill_base_stats) count the spinning.
 *
 * RLIMIT_NOFILE is process-wide: this is a program of its own, and the
 * teardown restores the limit whatever happened. */
#define _GNU_SOURCE 1

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sys/resource.h>

#include "facade_util.c"

#define LIMIT 60000 /* a hang guard only */

static struct rlimit saved_limit;
static int limit_lowered;

static void restore_limit(void) {
  if (limit_lowered) {
    setrlimit(RLIMIT_NOFILE, &saved_limit);
    limit_lowered = 0;
  }
}

static int teardown(void **state) {
  restore_limit();
  return tu_teardown_fds(state);
}

struct g26 {
  rill_net_listener *l;
  rill_waitgroup *done;
  int client;
  int emfile, other_errors, accepted, calls;
  int emfile_at_restore, accepted_at_restore;
  uint64_t iterations_at_start, iterations_at_restore;
};

static uint64_t iterations(void) {
  rill_base_stats st;
  memset(&st, 0, sizeof st);
  rill_base_stats_get(rill_fiber_base(), &st);
  return st.iterations;
}

/* A naive accept loop, as a Go server without a back-off of its own. */
static void g26_acceptor(void *arg) {
  struct g26 *t = (struct g26 *)arg;
  while (!t->accepted && t->calls < 100000) {
    rill_net_conn *c = NULL;
    int rc = rill_net_accept(t->l, &c);
    t->calls++;
    if (rc == 0) {
      t->accepted++;
      rill_net_conn_free(c);
    } else if (rc == RILL_EMFILE || rc == RILL_ENFILE) {
      t->emfile++;
    } else {
      t->other_errors++;
      fprintf(stderr, "accept: %s\n", rill_strerror(rc));
      break;
    }
  }
  rill_waitgroup_done(t->done);
}

/* Gives the descriptors back after 300 ms, noting what happened by then. */
static void g26_restorer(void *arg) {
  struct g26 *t = (struct g26 *)arg;
  rill_sleep(300 * RILL_MSEC);
  t->iterations_at_restore = iterations();
  t->emfile_at_restore = t->emfile;
  t->accepted_at_restore = t->accepted;
  restore_limit();
  rill_waitgroup_done(t->done);
}

static void g26_main(void *arg) {
  struct g26 *t = (struct g26 *)arg;
  rill_base *base = rill_fiber_base();
  char addr[RILL_ADDRSTRLEN];
  struct sockaddr_in sin;
  struct rlimit low;
  int probe;
  FCHECK_EQ(rill_net_listen("tcp", "127.0.0.1:0", NULL, &t->l), 0);
  if (!t->l)
    return;
  FCHECK(rill_net_listener_addr(t->l, addr, sizeof addr) > 0);
  memset(&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sin.sin_port = htons((uint16_t)atoi(strrchr(addr, ':') + 1));
  /* A connection waits in the backlog; accepting it needs a descriptor. */
  t->client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  FCHECK(t->client >= 0);
  FCHECK_EQ(connect(t->client, (struct sockaddr *)&sin, sizeof sin), 0);

  /* The next descriptor cannot be made: its number would reach the limit. */
  probe = fcntl(t->client, F_DUPFD_CLOEXEC, 0);
  FCHECK(probe >= 0);
  close(probe);
  FCHECK_EQ(getrlimit(RLIMIT_NOFILE, &saved_limit), 0);
  low = saved_limit;
  low.rlim_cur = (rlim_t)probe;
  FCHECK_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
  limit_lowered = 1;
  FCHECK_EQ(fcntl(t->client, F_DUPFD_CLOEXEC, 0), -1);

  FCHECK_EQ(rill_waitgroup_new(&t->done), 0);
  rill_waitgroup_add(t->done, 2);
  t->iterations_at_start = iterations();
  FCHECK_EQ(rill_go(base, g26_acceptor, t), 0);
  FCHECK_EQ(rill_go(base, g26_restorer, t), 0);
  FCHECK_EQ(rill_waitgroup_wait(t->done), 0);
  printf("# G26: %d EMFILE reports, %llu loop iterations in 300 ms, then accepted %d\n",
         t->emfile_at_restore, (unsigned long long)(t->iterations_at_restore - t->iterations_at_start),
         t->accepted);
  /* Reported, the listener kept running without spinning, nothing accepted
   * while out of descriptors, then the waiting connection accepted. */
  FCHECK(t->emfile_at_restore >= 1);
  FCHECK_EQ(t->other_errors, 0);
  FCHECK_EQ(t->accepted_at_restore, 0);
  FCHECK(t->iterations_at_restore - t->iterations_at_start < 1000);
  FCHECK(t->emfile < 1000);
  FCHECK_EQ(t->accepted, 1);
  rill_net_listener_free(t->l);
  rill_waitgroup_free(t->done);
  close(t->client);
}

static void test_g26_facade_accept_emfile_keeps_running(void **state) {
  struct g26 t;
  (void)state;
  memset(&t, 0, sizeof t);
  t.client = -1;
  fu_run_fiber(g26_main, &t, LIMIT);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_g26_facade_accept_emfile_keeps_running, tu_setup_fds, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
