/* docs/go-model.md G23 and G24 through the blocking facade: use of a closed
 * connection (idle, and with fibers parked in it), and half-close. */
#define _GNU_SOURCE 1

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "rill.h"
#include "test_util.h"

#include "facade_util.c"

#define LIMIT 60000 /* a hang guard only */

/* ---- G23: every call after rill_net_close -> RILL_ECLOSED -------------- */

static void g23_idle_main(void *arg) {
  struct fu_pair p;
  char buf[16], msg[512], expect[512], local[RILL_ADDRSTRLEN], remote[RILL_ADDRSTRLEN];
  size_t written = 99;
  (void)arg;
  if (fu_pair_open(&p) != 0)
    return;
  FCHECK(rill_net_local_addr(p.c, local, sizeof local) > 0);
  FCHECK(rill_net_remote_addr(p.c, remote, sizeof remote) > 0);
  FCHECK_EQ(rill_net_close(p.c), 0);

  FCHECK_EQ(rill_net_read(p.c, buf, sizeof buf), RILL_ECLOSED);
  FCHECK_EQ(rill_net_read(p.c, buf, 0), RILL_ECLOSED);
  FCHECK_EQ(rill_net_write(p.c, "x", 1, &written), RILL_ECLOSED);
  FCHECK_EQ(written, 0);
  FCHECK_EQ(rill_net_close(p.c), RILL_ECLOSED);
  FCHECK_EQ(rill_net_close_write(p.c), RILL_ECLOSED);
  FCHECK_EQ(rill_net_set_deadline(p.c, RILL_DEADLINE_BOTH, rill_time_now() + 10 * RILL_MSEC),
            RILL_ECLOSED);
  FCHECK_EQ(rill_net_set_no_delay(p.c, 1), RILL_ECLOSED);
  FCHECK_EQ(rill_net_set_keep_alive(p.c, 1, RILL_SEC), RILL_ECLOSED);
  FCHECK_EQ(rill_net_set_linger(p.c, 1), RILL_ECLOSED);
  FCHECK_EQ(rill_net_set_read_buffer(p.c, 4096), RILL_ECLOSED);
  FCHECK_EQ(rill_net_set_write_buffer(p.c, 4096), RILL_ECLOSED);
  FCHECK_EQ(rill_net_fd(p.c), RILL_ECLOSED);

  /* A distinct code with Go's text. */
  FCHECK_STREQ(rill_strerror(RILL_ECLOSED), "use of closed network connection");
  snprintf(expect, sizeof expect, "read tcp %s->%s: use of closed network connection", local, remote);
  FCHECK(rill_net_format_error(p.c, "read", RILL_ECLOSED, msg, sizeof msg) > 0);
  FCHECK_STREQ(msg, expect);

  /* The peer sees the close as EOF. */
  FCHECK_EQ(fu_peer_read(p.peer, buf, sizeof buf, 2000), 0);
  fu_pair_close(&p);

  /* rill_net_conn_free() on an open connection closes it. */
  if (fu_pair_open(&p) != 0)
    return;
  rill_net_conn_free(p.c);
  p.c = NULL;
  FCHECK_EQ(fu_peer_read(p.peer, buf, sizeof buf, 2000), 0);
  fu_pair_close(&p);
}

static void G23_calls_after_close(void **state) {
  (void)state;
  fu_run_fiber(g23_idle_main, NULL, LIMIT);
}

/* Fibers parked in a connection when another fiber closes it. */
struct g23 {
  struct fu_pair p;
  rill_waitgroup *wg;
  ssize_t read_rc[2];
  int write_rc[2];
  size_t written[2];
  int order;
  int returned[4];
  int check_peer; /* also check what the peer receives after the close */
};

#define G23_WRITE_LEN (16u * 1024u * 1024u)
static unsigned char *g23_data;

static void g23_reader(void *arg) {
  struct g23 *t = (struct g23 *)arg;
  char buf[64];
  int me = t->order++;
  t->read_rc[me] = rill_net_read(t->p.c, buf, sizeof buf);
  t->returned[me] = 1;
  rill_waitgroup_done(t->wg);
}

static void g23_writer(void *arg) {
  struct g23 *t = (struct g23 *)arg;
  int me = t->order++ - 2;
  t->write_rc[me] = rill_net_write(t->p.c, g23_data, G23_WRITE_LEN, &t->written[me]);
  t->returned[2 + me] = 1;
  rill_waitgroup_done(t->wg);
}

static void g23_parked_main(void *arg) {
  struct g23 *t = (struct g23 *)arg;
  rill_base *base = rill_fiber_base();
  int i;
  if (fu_pair_open(&t->p) != 0)
    return;
  fu_set_buffers(t->p.peer, 64 * 1024);
  FCHECK_EQ(rill_waitgroup_new(&t->wg), 0);
  rill_waitgroup_add(t->wg, 4);
  /* Two readers: one parked on the socket, one waiting its turn. Two
   * writers: one parked with a full kernel buffer, one waiting its turn. */
  FCHECK_EQ(rill_go(base, g23_reader, t), 0);
  FCHECK_EQ(rill_go(base, g23_reader, t), 0);
  FCHECK_EQ(rill_go(base, g23_writer, t), 0);
  FCHECK_EQ(rill_go(base, g23_writer, t), 0);
  rill_sleep(100 * RILL_MSEC);
  for (i = 0; i < 4; i++)
    FCHECK_EQ(t->returned[i], 0);

  FCHECK_EQ(rill_net_close(t->p.c), 0);
  FCHECK_EQ(rill_waitgroup_wait(t->wg), 0);
  FCHECK_EQ(t->read_rc[0], RILL_ECLOSED);
  FCHECK_EQ(t->read_rc[1], RILL_ECLOSED);
  FCHECK_EQ(t->write_rc[0], RILL_ECLOSED);
  FCHECK_EQ(t->write_rc[1], RILL_ECLOSED);
  /* The parked writer reports what reached the kernel; the other wrote
   * nothing. */
  FCHECK(t->written[0] > 0 && t->written[0] < G23_WRITE_LEN);
  FCHECK_EQ(t->written[1], 0);

  /* And the report is the truth: after the close the peer receives
   * exactly the bytes reported written, then EOF (as in Go, where what a
   * Write did not hand the kernel is never sent after Close). */
  if (t->check_peer) {
    static unsigned char buf[64 * 1024];
    size_t got = 0;
    ssize_t n;
    while ((n = fu_peer_read(t->p.peer, buf, sizeof buf, 2000)) > 0)
      got += (size_t)n;
    FCHECK_EQ(n, 0);
    FCHECK_EQ(got, t->written[0]);
  }
  rill_waitgroup_free(t->wg);
  fu_pair_close(&t->p);
}

static void g23_parked(int check_peer) {
  struct g23 t;
  g23_data = calloc(1, G23_WRITE_LEN);
  assert_non_null(g23_data);
  memset(&t, 0, sizeof t);
  t.check_peer = check_peer;
  fu_run_fiber(g23_parked_main, &t, LIMIT);
  free(g23_data);
}

static void G23_close_wakes_parked_fibers(void **state) {
  (void)state;
  g23_parked(0);
}

/* The count a writer woken by the close reports is what the peer gets. */
static void G23_close_mid_write_reports_true_count(void **state) {
  (void)state;
  g23_parked(1);
}

/* A close while the write is moving: a peer thread drains the socket all
 * along, so the kernel keeps taking bytes (on io_uring, sends through the
 * ring keep completing) when the close comes. The count the writer gets
 * must still be what the peer receives, and nothing may be sent from the
 * writer's buffer after rill_net_write() returned: the writer overwrites it
 * at once, with a byte the pattern never has. Several rounds, as the close
 * lands at a different point of the write each time. */
#define G23_MOVING_LEN (32u * 1024u * 1024u)
#define G23_MOVING_ROUNDS 8
#define G23_SCRIBBLE 0xff /* fu_pattern() gives 0..250 */

struct g23_moving {
  struct fu_pair p;
  unsigned char *data;
  int write_rc;
  size_t written;
  int writer_done;
  /* The peer thread's: read after peer_done (acquire). */
  size_t got, matched;
  int peer_err;
  int peer_done;
  size_t progress; /* bytes received so far, for the closer */
};

static void *g23_moving_peer(void *arg) {
  struct g23_moving *t = (struct g23_moving *)arg;
  static unsigned char buf[64 * 1024];
  uint64_t end = tu_now_ms() + 30000; /* a hang guard only */
  for (;;) {
    ssize_t n = recv(t->p.peer, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) {
      if (t->matched == t->got)
        t->matched += fu_check_pattern(buf, (size_t)n, t->got);
      t->got += (size_t)n;
      __atomic_store_n(&t->progress, t->got, __ATOMIC_RELAXED);
    } else if (n == 0) {
      break;
    } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      t->peer_err = errno;
      break;
    } else if (tu_now_ms() >= end) {
      t->peer_err = ETIMEDOUT;
      break;
    } else {
      usleep(100);
    }
  }
  __atomic_store_n(&t->peer_done, 1, __ATOMIC_RELEASE);
  return NULL;
}

static void g23_moving_writer(void *arg) {
  struct g23_moving *t = (struct g23_moving *)arg;
  t->write_rc = rill_net_write(t->p.c, t->data, G23_MOVING_LEN, &t->written);
  memset(t->data, G23_SCRIBBLE, G23_MOVING_LEN);
  t->writer_done = 1;
}

static void g23_moving_round(struct g23_moving *t, size_t close_after) {
  pthread_t peer;
  if (fu_pair_open(&t->p) != 0)
    return;
  fu_set_buffers(t->p.peer, 64 * 1024);
  fu_fill(t->data, G23_MOVING_LEN, 0);
  t->writer_done = t->peer_done = t->peer_err = 0;
  t->got = t->matched = t->written = t->progress = 0;
  FCHECK_EQ(pthread_create(&peer, NULL, g23_moving_peer, t), 0);
  FCHECK_EQ(rill_go(rill_fiber_base(), g23_moving_writer, t), 0);
  while (__atomic_load_n(&t->progress, __ATOMIC_RELAXED) < close_after && !t->writer_done)
    rill_sleep(RILL_MSEC / 4);
  FCHECK_EQ(rill_net_close(t->p.c), 0);
  /* The peer thread needs the loop (the close completes there): poll. */
  while (!t->writer_done || !__atomic_load_n(&t->peer_done, __ATOMIC_ACQUIRE))
    rill_sleep(RILL_MSEC);
  pthread_join(peer, NULL);
  FCHECK_EQ(t->peer_err, 0);
  if (t->write_rc == 0) {
    FCHECK_EQ(t->written, G23_MOVING_LEN); /* done before the close */
  } else {
    FCHECK_EQ(t->write_rc, RILL_ECLOSED);
    FCHECK(t->written < G23_MOVING_LEN);
  }
  FCHECK_EQ(t->got, t->written);
  FCHECK_EQ(t->matched, t->got);
  fu_pair_close(&t->p);
}

static void g23_moving_main(void *arg) {
  struct g23_moving *t = (struct g23_moving *)arg;
  int round;
  for (round = 0; round < G23_MOVING_ROUNDS && fiber_check_failures == 0; round++)
    g23_moving_round(t, (size_t)(round + 1) * 256 * 1024);
}

static void G23_close_while_write_moves_reports_true_count(void **state) {
  struct g23_moving t;
  (void)state;
  memset(&t, 0, sizeof t);
  t.data = malloc(G23_MOVING_LEN);
  assert_non_null(t.data);
  fu_run_fiber(g23_moving_main, &t, LIMIT);
  free(t.data);
}

/* A fiber parked in rill_net_accept() when the listener closes. */
struct g23l {
  rill_net_listener *l;
  rill_waitgroup *wg;
  int rc;
  int returned;
};

static void g23_acceptor(void *arg) {
  struct g23l *t = (struct g23l *)arg;
  rill_net_conn *c = NULL;
  t->rc = rill_net_accept(t->l, &c);
  t->returned = 1;
  if (t->rc == 0)
    rill_net_conn_free(c);
  rill_waitgroup_done(t->wg);
}

static void g23_listener_main(void *arg) {
  struct g23l *t = (struct g23l *)arg;
  FCHECK_EQ(rill_net_listen("tcp", "127.0.0.1:0", NULL, &t->l), 0);
  if (!t->l)
    return;
  FCHECK_EQ(rill_waitgroup_new(&t->wg), 0);
  rill_waitgroup_add(t->wg, 1);
  FCHECK_EQ(rill_go(rill_fiber_base(), g23_acceptor, t), 0);
  rill_sleep(50 * RILL_MSEC);
  FCHECK_EQ(t->returned, 0);
  FCHECK_EQ(rill_net_listener_close(t->l), 0);
  FCHECK_EQ(rill_waitgroup_wait(t->wg), 0);
  FCHECK_EQ(t->rc, RILL_ECLOSED);
  rill_waitgroup_free(t->wg);
  rill_net_listener_free(t->l);
}

static void G23_listener_close_wakes_accept(void **state) {
  struct g23l t;
  (void)state;
  memset(&t, 0, sizeof t);
  fu_run_fiber(g23_listener_main, &t, LIMIT);
}

/* ---- G24: half-close --------------------------------------------------- */

struct g24 {
  struct fu_pair p;
  rill_waitgroup *wg;
  ssize_t n;
  char buf[64];
  int write_rc;
  size_t written;
};

static void g24_reader(void *arg) {
  struct g24 *t = (struct g24 *)arg;
  t->n = rill_net_read(t->p.c, t->buf, sizeof t->buf);
  rill_waitgroup_done(t->wg);
}

#define G24_LEN (4u * 1024u * 1024u)
static unsigned char *g24_data;

static void g24_writer(void *arg) {
  struct g24 *t = (struct g24 *)arg;
  t->write_rc = rill_net_write(t->p.c, g24_data, G24_LEN, &t->written);
  rill_waitgroup_done(t->wg);
}

static void g24_main(void *arg) {
  struct g24 *t = (struct g24 *)arg;
  char buf[64];
  unsigned char *in;
  size_t written = 99;
  ssize_t n;
  int rc;
  if (fu_pair_open(&t->p) != 0)
    return;
  FCHECK_EQ(rill_waitgroup_new(&t->wg), 0);

  /* A reader is parked when the write side closes: it stays parked. */
  rill_waitgroup_add(t->wg, 1);
  FCHECK_EQ(rill_go(rill_fiber_base(), g24_reader, t), 0);
  rill_yield();
  FCHECK_EQ(rill_net_close_write(t->p.c), 0);

  /* The peer reads EOF... */
  FCHECK_EQ(fu_peer_read(t->p.peer, buf, sizeof buf, 2000), 0);
  rill_sleep(20 * RILL_MSEC);
  FCHECK_EQ(t->n, 0); /* still parked */

  /* ...and can still send: this side reads it. */
  FCHECK_EQ(fu_peer_write(t->p.peer, "reply", 5), 0);
  FCHECK_EQ(rill_waitgroup_wait(t->wg), 0);
  FCHECK_EQ(t->n, 5);
  FCHECK(t->n == 5 && memcmp(t->buf, "reply", 5) == 0);
  FCHECK_EQ(fu_peer_write(t->p.peer, "more", 4), 0);
  n = rill_net_read(t->p.c, buf, sizeof buf);
  FCHECK_EQ(n, 4);

  /* Writing after the half-close is a broken pipe (never a SIGPIPE). */
  rc = rill_net_write(t->p.c, "x", 1, &written);
  FCHECK_EQ(rc, RILL_EPIPE);
  FCHECK_EQ(written, 0);

  /* The peer closes too: EOF here. */
  close(t->p.peer);
  t->p.peer = -1;
  FCHECK_EQ(rill_net_read(t->p.c, buf, sizeof buf), RILL_EOF);
  fu_pair_close(&t->p);

  /* Half-close during a write the kernel has not taken yet: the peer gets
   * every byte, then EOF. */
  if (fu_pair_open(&t->p) != 0)
    return;
  fu_set_buffers(t->p.peer, 64 * 1024);
  rill_waitgroup_add(t->wg, 1);
  FCHECK_EQ(rill_go(rill_fiber_base(), g24_writer, t), 0);
  rill_sleep(50 * RILL_MSEC);
  FCHECK_EQ(rill_net_close_write(t->p.c), 0);
  in = malloc(G24_LEN);
  FCHECK(in != NULL);
  if (in) {
    FCHECK_EQ(fu_peer_read_full(t->p.peer, in, G24_LEN, 3000), 0);
    FCHECK_EQ(fu_check_pattern(in, G24_LEN, 0), G24_LEN);
    free(in);
  }
  FCHECK_EQ(fu_peer_read(t->p.peer, buf, sizeof buf, 2000), 0);
  FCHECK_EQ(rill_waitgroup_wait(t->wg), 0);
  FCHECK_EQ(t->write_rc, 0);
  FCHECK_EQ(t->written, G24_LEN);
  rill_waitgroup_free(t->wg);
  fu_pair_close(&t->p);
}

static void G24_close_write_half_close(void **state) {
  struct g24 t;
  (void)state;
  fu_sigpipe_default();
  g24_data = malloc(G24_LEN);
  assert_non_null(g24_data);
  fu_fill(g24_data, G24_LEN, 0);
  memset(&t, 0, sizeof t);
  fu_run_fiber(g24_main, &t, LIMIT);
  free(g24_data);
}

/* G23: a connection arrives and wakes the fiber parked in accept, but the
 * listener is closed before that fiber runs: accept returns RILL_ECLOSED
 * (it must not touch the closed listener, nor park again for ever).
 * Woken fibers run after the loop dispatched all readiness, so the close
 * comes from a posted function: the post's wake-up descriptor turns ready
 * after the listener (the connect is already in the backlog), and both are
 * dispatched in the iteration that wakes the acceptor, before it runs. */
struct accept_race {
  rill_base *base;
  rill_net_listener *l;
  int port;
  int peer;
  int accept_rc;
  int returned;
  rill_timer *connect_timer;
};

static void race_acceptor(void *arg) {
  struct accept_race *r = arg;
  char addr[RILL_ADDRSTRLEN];
  rill_net_conn *c = NULL;
  if (rill_net_listen("tcp", "127.0.0.1:0", NULL, &r->l) != 0)
    return;
  rill_net_listener_addr(r->l, addr, sizeof addr);
  r->port = atoi(strrchr(addr, ':') + 1);
  r->accept_rc = rill_net_accept(r->l, &c);
  r->returned = 1;
  if (c)
    rill_net_conn_free(c);
}

static void race_close(rill_base *base, void *arg) {
  struct accept_race *r = arg;
  (void)base;
  rill_net_listener_close(r->l);
}

static void race_connect(rill_timer *t, void *arg) {
  struct accept_race *r = arg;
  struct sockaddr_in sa;
  (void)t;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)r->port);
  sa.sin_addr.s_addr = htonl(0x7f000001);
  r->peer = socket(AF_INET, SOCK_STREAM, 0);
  connect(r->peer, (struct sockaddr *)&sa, sizeof sa); /* blocking: lands in the backlog */
  assert_int_equal(rill_base_post(r->base, race_close, r), 0); /* runs before the woken acceptor */
}

static void G23_listener_closed_while_accept_wakes(void **state) {
  struct accept_race r;
  rill_base *base = tu_base_new();
  (void)state;
  memset(&r, 0, sizeof r);
  r.peer = -1;
  r.base = base;
  assert_int_equal(rill_go(base, race_acceptor, &r), 0);
  assert_int_equal(rill_timer_new(base, race_connect, &r, &r.connect_timer), 0);
  assert_int_equal(rill_timer_start(r.connect_timer, 50 * RILL_MSEC, 0), 0);
  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  assert_int_equal(r.returned, 1);
  assert_int_equal(r.accept_rc, RILL_ECLOSED);
  assert_int_equal(rill_fiber_count(base), 0);
  rill_timer_free(r.connect_timer);
  if (r.peer >= 0)
    close(r.peer);
  rill_net_listener_free(r.l);
  tu_base_free(base);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(G23_calls_after_close, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(G23_close_wakes_parked_fibers, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(G23_close_mid_write_reports_true_count, tu_setup_fds,
                                      tu_teardown_fds),
      cmocka_unit_test_setup_teardown(G23_close_while_write_moves_reports_true_count, tu_setup_fds,
                                      tu_teardown_fds),
      cmocka_unit_test_setup_teardown(G23_listener_close_wakes_accept, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(G24_close_write_half_close, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(G23_listener_closed_while_accept_wakes, tu_setup_fds,
                                      tu_teardown_fds),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
