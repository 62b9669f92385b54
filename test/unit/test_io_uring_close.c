/* The io_uring backend's ends with operations in flight (docs/io_uring.md):
 *
 *  - close, abort and close_now with a receive in flight release the
 *    socket at once (the peer sees FIN or RST before the loop runs
 *    again), and nothing is called after on_close; a listener freed with
 *    its accept in flight refuses connections at once, and what it had
 *    accepted and not handed out is closed (the teardown counts
 *    descriptors).
 *  - A peer that fills the socket and resets it while read_stop holds
 *    the receive is heard after read_start (the kernel's receive reads
 *    the bytes, then waits for a wakeup the reset already gave).
 * Each test skips where the kernel refuses io_uring. */
#define _GNU_SOURCE 1

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rill.h"
#include "test_util.h"
#include "net_util.h"

#define LIMIT 20000

static int connect_to(int port) {
  int fd = nu_raw_connect("127.0.0.1", port);
  assert_true(fd >= 0);
  return fd;
}

/* ---- close with a receive in flight -------------------------------------- */

struct closer {
  rill_conn *conn;
  int reads;
  int closes;
  int after_close; /* callbacks after on_close */
};

static size_t on_closer_read(rill_conn *c, const char *data, size_t len, int status, void *arg) {
  struct closer *k = arg;
  (void)c;
  (void)data;
  if (k->closes) k->after_close++;
  if (status == 0) k->reads++;
  return len;
}

static void on_closer_close(rill_conn *c, void *arg) {
  struct closer *k = arg;
  (void)c;
  if (k->closes) k->after_close++;
  k->closes++;
}

static void on_keep_accept(rill_listener *l, rill_conn *c, int status, void *arg) {
  rill_conn **out = arg;
  (void)l;
  assert_int_equal(status, 0);
  *out = c;
}

/* A connection the base accepted from a blocking client (into *client),
 * its listener gone. */
static rill_conn *accept_one(rill_base *base, int *client) {
  rill_listener *l;
  rill_conn *c = NULL;
  int i;
  assert_int_equal(rill_listen(base, "tcp", "127.0.0.1:0", NULL, on_keep_accept, &c, &l), 0);
  *client = connect_to(rill_listener_port(l));
  for (i = 0; i < 1000 && !c; i++) TU_RUN(base, RILL_RUN_ONCE, LIMIT);
  assert_non_null(c);
  rill_listener_free(l);
  return c;
}

/* What the peer sees within a second: 0 (FIN), -ECONNRESET, or -EAGAIN
 * (nothing: the socket is still open). */
static int peer_sees(int fd) {
  struct pollfd p;
  char c;
  ssize_t n;
  p.fd = fd;
  p.events = POLLIN;
  p.revents = 0;
  if (poll(&p, 1, 1000) == 0) return -EAGAIN;
  n = recv(fd, &c, 1, MSG_DONTWAIT);
  if (n == 0) return 0;
  return n < 0 ? -errno : 1;
}

enum how { how_close, how_abort, how_close_now };

static void close_in_flight(enum how how) {
  static const rill_conn_events ev = {on_closer_read, NULL, NULL, NULL, NULL, on_closer_close};
  rill_base *base = tu_uring_base();
  rill_conn *c;
  struct closer k;
  int client;
  int seen;
  int i;
  if (!base) skip();
  memset(&k, 0, sizeof k);
  c = accept_one(base, &client);
  assert_int_equal(rill_conn_start(c, &ev, &k), 0);
  /* One byte through: the receive is armed and running. */
  assert_int_equal(send(client, "x", 1, 0), 1);
  for (i = 0; i < 1000 && k.reads == 0; i++) TU_RUN(base, RILL_RUN_ONCE, LIMIT);
  assert_int_equal(k.reads, 1);
  TU_RUN(base, RILL_RUN_NOWAIT, LIMIT);
  /* Closed with the receive still in flight; the loop does not run. */
  if (how == how_close) assert_int_equal(rill_conn_close(c), 0);
  if (how == how_abort) assert_int_equal(rill_conn_abort(c), 0);
  if (how == how_close_now) assert_int_equal(rill_conn_close_now(c), 0);
  seen = peer_sees(client);
  if (how == how_abort)
    assert_int_equal(seen, -ECONNRESET);
  else
    assert_int_equal(seen, 0);
  /* The peer writes on: nothing reaches the closed connection. */
  send(client, "yz", 2, MSG_NOSIGNAL);
  for (i = 0; i < 5; i++) TU_RUN(base, RILL_RUN_NOWAIT, LIMIT);
  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  assert_int_equal(k.closes, 1);
  assert_int_equal(k.after_close, 0);
  close(client);
  tu_base_free(base);
}

static void test_close_with_recv_in_flight(void **state) {
  (void)state;
  close_in_flight(how_close);
}
static void test_abort_with_recv_in_flight(void **state) {
  (void)state;
  close_in_flight(how_abort);
}
static void test_close_now_with_recv_in_flight(void **state) {
  (void)state;
  close_in_flight(how_close_now);
}

/* ---- a reset behind many queued bytes ---------------------------------- */

static size_t on_closer_read_end(rill_conn *c, const char *data, size_t len, int status, void *arg) {
  struct closer *k = arg;
  (void)c;
  (void)data;
  k->reads += (int)len;
  if (status != 0) k->after_close = status; /* the end, EOF or an error */
  return len;
}

static void test_reset_behind_queued_bytes(void **state) {
  static const rill_conn_events ev = {on_closer_read_end, NULL, NULL, NULL, NULL, NULL};
  static char bytes[64 * 1024];
  struct linger lg = {1, 0};
  int big = 4 * 1024 * 1024;
  rill_base *base = tu_uring_base();
  rill_conn *c;
  struct closer k;
  size_t sent = 0;
  int client;
  int i;
  (void)state;
  if (!base) skip();
  memset(&k, 0, sizeof k);
  c = accept_one(base, &client);
  /* Room for far more than the kernel's receive takes in one go (32
   * buffers). */
  assert_int_equal(setsockopt(rill_conn_fd(c), SOL_SOCKET, SO_RCVBUF, &big, sizeof big), 0);
  assert_int_equal(setsockopt(client, SOL_SOCKET, SO_SNDBUF, &big, sizeof big), 0);
  assert_int_equal(rill_conn_start(c, &ev, &k), 0);
  /* One byte through, then the receive is cancelled (a pipe does this
   * when the other side is full). */
  assert_int_equal(send(client, "x", 1, 0), 1);
  for (i = 0; i < 1000 && k.reads == 0; i++) TU_RUN(base, RILL_RUN_ONCE, LIMIT);
  assert_int_equal(rill_conn_read_stop(c), 0);
  for (i = 0; i < 5; i++) TU_RUN(base, RILL_RUN_NOWAIT, LIMIT);
  /* The peer fills the socket and resets it; then the receive runs again,
   * reads the bytes, and must not wait for a wakeup the reset gave
   * already. */
  while (send(client, bytes, sizeof bytes, MSG_DONTWAIT) > 0) sent += sizeof bytes;
  assert_true(sent >= 40 * 16 * 1024);
  assert_int_equal(setsockopt(client, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
  close(client);
  assert_int_equal(rill_conn_read_start(c), 0);
  for (i = 0; i < 100000 && k.after_close == 0; i++) TU_RUN(base, RILL_RUN_ONCE, 5000);
  assert_true(k.after_close == -ECONNRESET || k.after_close == RILL_EOF);
  assert_int_equal(rill_conn_close(c), 0);
  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  tu_base_free(base);
}

/* ---- a listener freed with its accept in flight ------------------------- */

static int g_accepts;
static rill_conn *g_first;
static void on_free_accept(rill_listener *l, rill_conn *c, int status, void *arg) {
  (void)arg;
  if (status != 0) return;
  g_accepts++;
  g_first = c;
  /* Freed from on_accept, with more connections accepted by the kernel
   * and queued, or still in its backlog. */
  rill_listener_free(l);
}

static void test_listener_freed_with_accept_in_flight(void **state) {
  rill_base *base = tu_uring_base();
  rill_listener *l;
  int port;
  int fds[4];
  int i;
  int seen;
  (void)state;
  if (!base) skip();
  g_accepts = 0;
  g_first = NULL;
  assert_int_equal(rill_listen(base, "tcp", "127.0.0.1:0", NULL, on_free_accept, NULL, &l), 0);
  port = rill_listener_port(l);
  for (i = 0; i < 4; i++) fds[i] = connect_to(port);
  for (i = 0; i < 1000 && g_accepts == 0; i++) TU_RUN(base, RILL_RUN_ONCE, LIMIT);
  assert_int_equal(g_accepts, 1);
  assert_non_null(g_first);
  rill_conn_close_now(g_first);
  /* The others are closed at once: queued ones with a FIN, those still in
   * the listening socket's backlog with a reset. */
  for (i = 0; i < 4; i++) {
    seen = peer_sees(fds[i]);
    assert_true(seen == 0 || seen == -ECONNRESET);
  }
  /* The listening socket is really closed: a new connect is refused. */
  assert_int_equal(nu_raw_connect("127.0.0.1", port), -ECONNREFUSED);
  for (i = 0; i < 5; i++) TU_RUN(base, RILL_RUN_NOWAIT, LIMIT);
  assert_int_equal(g_accepts, 1);
  for (i = 0; i < 4; i++) close(fds[i]);
  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  tu_base_free(base);
}

#define T(f) cmocka_unit_test_setup_teardown(f, tu_setup_fds, tu_teardown_fds)

int main(void) {
  const struct CMUnitTest tests[] = {
      T(test_close_with_recv_in_flight),
      T(test_abort_with_recv_in_flight),
      T(test_close_now_with_recv_in_flight),
      T(test_reset_behind_queued_bytes),
      T(test_listener_freed_with_accept_in_flight),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
