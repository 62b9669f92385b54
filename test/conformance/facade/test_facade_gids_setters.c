/* G4 through the blocking facade: each of Go's TCPConn.Set* setters takes
 * effect on the socket (read back with getsockopt on rill_net_fd), and
 * after rill_net_close each one says RILL_ECLOSED ("use of closed network
 * connection") instead of touching a descriptor the process may have
 * reused. */
#define _GNU_SOURCE 1

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <netinet/tcp.h>

#include "facade_util.c"

#define LIMIT 60000 /* a hang guard only */

static int get_int(int fd, int level, int name) {
  int v = -1;
  socklen_t len = sizeof v;
  if (getsockopt(fd, level, name, &v, &len) != 0)
    return -1000 - errno;
  return v;
}

static void g4_main(void *arg) {
  struct fu_pair p;
  struct linger lg;
  socklen_t len = sizeof lg;
  int fd;
  (void)arg;
  if (fu_pair_open(&p) != 0)
    return;
  fd = rill_net_fd(p.c);
  FCHECK(fd >= 0);

  /* Go's defaults (G2), then each setter read back. */
  FCHECK_EQ(get_int(fd, IPPROTO_TCP, TCP_NODELAY), 1);
  FCHECK_EQ(rill_net_set_no_delay(p.c, 0), 0);
  FCHECK_EQ(get_int(fd, IPPROTO_TCP, TCP_NODELAY), 0);
  FCHECK_EQ(rill_net_set_no_delay(p.c, 1), 0);
  FCHECK_EQ(get_int(fd, IPPROTO_TCP, TCP_NODELAY), 1);

  FCHECK_EQ(rill_net_set_keep_alive(p.c, 1, 30 * RILL_SEC), 0);
  FCHECK_EQ(get_int(fd, SOL_SOCKET, SO_KEEPALIVE), 1);
  FCHECK_EQ(get_int(fd, IPPROTO_TCP, TCP_KEEPIDLE), 30);
  FCHECK_EQ(get_int(fd, IPPROTO_TCP, TCP_KEEPINTVL), 30);
  FCHECK_EQ(rill_net_set_keep_alive(p.c, 0, 0), 0);
  FCHECK_EQ(get_int(fd, SOL_SOCKET, SO_KEEPALIVE), 0);

  /* SetLinger(sec >= 0) arms SO_LINGER with that many seconds; < 0 is the
   * default (off). */
  FCHECK_EQ(rill_net_set_linger(p.c, 5), 0);
  memset(&lg, 0, sizeof lg);
  FCHECK_EQ(getsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, &len), 0);
  FCHECK(lg.l_onoff != 0);
  FCHECK_EQ(lg.l_linger, 5);
  FCHECK_EQ(rill_net_set_linger(p.c, -1), 0);
  len = sizeof lg;
  FCHECK_EQ(getsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, &len), 0);
  FCHECK_EQ(lg.l_onoff, 0);

  /* Linux doubles what it is given (bookkeeping overhead): at least that. */
  FCHECK_EQ(rill_net_set_read_buffer(p.c, 96 * 1024), 0);
  FCHECK(get_int(fd, SOL_SOCKET, SO_RCVBUF) >= 96 * 1024);
  FCHECK_EQ(rill_net_set_write_buffer(p.c, 80 * 1024), 0);
  FCHECK(get_int(fd, SOL_SOCKET, SO_SNDBUF) >= 80 * 1024);
  FCHECK_EQ(rill_net_set_read_buffer(p.c, 8 * 1024), 0);
  FCHECK(get_int(fd, SOL_SOCKET, SO_RCVBUF) < 96 * 1024);

  /* The connection still carries bytes after all that. */
  {
    char buf[3];
    FCHECK_EQ(rill_net_write(p.c, "abc", 3, NULL), 0);
    FCHECK_EQ(fu_peer_read_full(p.peer, buf, 3, LIMIT), 0);
  }

  /* Closed: every setter, and the descriptor, say so. */
  FCHECK_EQ(rill_net_close(p.c), 0);
  FCHECK_EQ(rill_net_set_no_delay(p.c, 1), RILL_ECLOSED);
  FCHECK_EQ(rill_net_set_keep_alive(p.c, 1, 15 * RILL_SEC), RILL_ECLOSED);
  FCHECK_EQ(rill_net_set_linger(p.c, 1), RILL_ECLOSED);
  FCHECK_EQ(rill_net_set_read_buffer(p.c, 4096), RILL_ECLOSED);
  FCHECK_EQ(rill_net_set_write_buffer(p.c, 4096), RILL_ECLOSED);
  FCHECK_EQ(rill_net_fd(p.c), RILL_ECLOSED);
  fu_pair_close(&p);
}

static void test_g4_facade_setters_take_effect_then_closed(void **state) {
  (void)state;
  fu_run_fiber(g4_main, NULL, LIMIT);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_g4_facade_setters_take_effect_then_closed, tu_setup_fds,
                                      tu_teardown_fds),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
