/* The io_uring backend's stream operations (docs/io_uring.md): multishot
 * receive into the base's buffer ring and multishot accept.
 *
 *  - A ring far too small for the input (RILL_IO_URING_BUFFERS=4 of 64
 *    bytes) runs dry over and over (ENOBUFS) while many connections send
 *    at once, and on_read uses only part of what it is shown; every byte
 *    still arrives, once, in order. So it does with read_stop/read_start
 *    in the middle of the stream (the receive is cancelled and re-armed).
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
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rill.h"
#include "test_util.h"

#define LIMIT 20000
#define CONNS 16
#define PER_CONN (48 * 1024)

static unsigned char pattern(int conn, size_t i) { return (unsigned char)(i * 7 + (size_t)conn * 31 + i / 251); }

static int connect_to(int port) {
  struct sockaddr_in sa;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert_true(fd >= 0);
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
  return fd;
}

/* ---- every byte, in order, through a ring that runs dry -------------------- */

struct reader {
  struct stream_env *env;
  rill_conn *conn;
  int id;       /* from the first byte: which client this is */
  size_t seen;  /* bytes checked */
  int calls;
  int bad;
  int eof;
};

struct stream_env {
  rill_base *base;
  rill_listener *listener;
  struct reader readers[CONNS];
  int accepted;
  int finished;
  int toggle;         /* read_stop/read_start every few calls */
  rill_timer *restart;
};

static void on_restart(rill_timer *t, void *arg) {
  struct stream_env *e = arg;
  int i;
  (void)t;
  for (i = 0; i < e->accepted; i++)
    if (e->readers[i].conn && !e->readers[i].eof) rill_conn_read_start(e->readers[i].conn);
}

static size_t on_stream_read(rill_conn *c, const char *data, size_t len, int status, void *arg) {
  struct reader *r = arg;
  size_t used;
  size_t i;
  if (status != 0) {
    if (status != RILL_EOF) r->bad++;
    for (i = 0; i < len; i++) /* what was left unused comes with EOF */
      if ((unsigned char)data[i] != (r->seen + i == 0 ? (unsigned char)r->id : pattern(r->id, r->seen + i)))
        r->bad++;
    r->seen += len;
    r->eof = 1;
    r->env->finished++;
    rill_conn_close(c);
    return 0;
  }
  if (r->id < 0) r->id = (unsigned char)data[0];
  /* Use about half: the rest must come again, first, with new bytes behind
   * it (the held path); a short run is used whole. */
  used = len > 8 ? len / 2 + 1 : len;
  for (i = 0; i < used; i++)
    if ((unsigned char)data[i] != (r->seen + i == 0 ? (unsigned char)r->id : pattern(r->id, r->seen + i)))
      r->bad++;
  r->seen += used;
  r->calls++;
  if (r->env->toggle && r->calls % 5 == 0) {
    rill_conn_read_stop(c);
    rill_timer_start(r->env->restart, RILL_MSEC, 0);
  }
  return used;
}

static void on_stream_close(rill_conn *c, void *arg) {
  struct reader *r = arg;
  (void)c;
  r->conn = NULL;
}

static void on_stream_accept(rill_listener *l, rill_conn *c, int status, void *arg) {
  struct stream_env *e = arg;
  static const rill_conn_events ev = {on_stream_read, NULL, NULL, NULL, NULL, on_stream_close};
  struct reader *r;
  (void)l;
  assert_int_equal(status, 0);
  assert_true(e->accepted < CONNS);
  r = &e->readers[e->accepted++];
  r->env = e;
  r->conn = c;
  r->id = -1;
  assert_int_equal(rill_conn_start(c, &ev, r), 0);
}

static void run_streams(int toggle) {
  static unsigned char data[CONNS][PER_CONN];
  size_t sent[CONNS];
  struct stream_env e;
  int clients[CONNS];
  int all_sent = 0;
  uint64_t deadline;
  int i;
  size_t k;
  memset(&e, 0, sizeof e);
  e.toggle = toggle;
  e.base = tu_uring_base();
  if (!e.base) skip();
  assert_int_equal(rill_timer_new(e.base, on_restart, &e, &e.restart), 0);
  assert_int_equal(rill_listen(e.base, "tcp", "127.0.0.1:0", NULL, on_stream_accept, &e, &e.listener), 0);
  /* Each client's first byte is its number, the rest its pattern. */
  for (i = 0; i < CONNS; i++) {
    clients[i] = connect_to(rill_listener_port(e.listener));
    tu_nonblock(clients[i]);
    data[i][0] = (unsigned char)i;
    for (k = 1; k < PER_CONN; k++) data[i][k] = pattern(i, k);
    sent[i] = 0;
  }
  /* All clients send at once, as much as the kernel takes, before the loop
   * runs: the receives then find far more input than buffers. */
  deadline = tu_now_ms() + LIMIT;
  while (!all_sent && tu_now_ms() < deadline) {
    all_sent = 1;
    for (i = 0; i < CONNS; i++) {
      ssize_t n = sent[i] < PER_CONN ? send(clients[i], data[i] + sent[i], PER_CONN - sent[i], MSG_NOSIGNAL) : 0;
      if (n > 0) sent[i] += (size_t)n;
      if (sent[i] < PER_CONN) all_sent = 0;
    }
    if (!all_sent) TU_RUN(e.base, RILL_RUN_NOWAIT, LIMIT);
  }
  assert_true(all_sent);
  for (i = 0; i < CONNS; i++) shutdown(clients[i], SHUT_WR);
  while (e.finished < CONNS && tu_now_ms() < deadline) TU_RUN(e.base, RILL_RUN_ONCE, LIMIT);
  assert_int_equal(e.accepted, CONNS);
  assert_int_equal(e.finished, CONNS);
  for (i = 0; i < CONNS; i++) {
    assert_int_equal(e.readers[i].bad, 0);
    assert_int_equal(e.readers[i].seen, PER_CONN);
    close(clients[i]);
  }
  rill_listener_free(e.listener);
  rill_timer_free(e.restart);
  TU_RUN(e.base, RILL_RUN_DEFAULT, LIMIT);
  tu_base_free(e.base);
}

/* run_streams on a ring of four 64-byte buffers, always exhausted. */
static void run_streams_on_tiny_ring(int stops) {
  setenv("RILL_IO_URING_BUFFERS", "4", 1);
  setenv("RILL_IO_URING_BUFFER_SIZE", "64", 1);
  run_streams(stops);
  unsetenv("RILL_IO_URING_BUFFERS");
  unsetenv("RILL_IO_URING_BUFFER_SIZE");
}

static void test_exhausted_ring_loses_nothing(void **state) {
  (void)state;
  run_streams_on_tiny_ring(0);
}

static void test_exhausted_ring_with_stops(void **state) {
  (void)state;
  run_streams_on_tiny_ring(1);
}

static void test_stops_lose_nothing(void **state) {
  (void)state;
  run_streams(1);
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
  rill_listener *l;
  rill_conn *c = NULL;
  struct closer k;
  int client;
  int seen;
  int i;
  if (!base) skip();
  memset(&k, 0, sizeof k);
  assert_int_equal(rill_listen(base, "tcp", "127.0.0.1:0", NULL, on_keep_accept, &c, &l), 0);
  client = connect_to(rill_listener_port(l));
  for (i = 0; i < 1000 && !c; i++) TU_RUN(base, RILL_RUN_ONCE, LIMIT);
  assert_non_null(c);
  rill_listener_free(l);
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
  rill_listener *l;
  rill_conn *c = NULL;
  struct closer k;
  size_t sent = 0;
  int client;
  int i;
  (void)state;
  if (!base) skip();
  memset(&k, 0, sizeof k);
  assert_int_equal(rill_listen(base, "tcp", "127.0.0.1:0", NULL, on_keep_accept, &c, &l), 0);
  client = connect_to(rill_listener_port(l));
  for (i = 0; i < 1000 && !c; i++) TU_RUN(base, RILL_RUN_ONCE, LIMIT);
  assert_non_null(c);
  rill_listener_free(l);
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
  struct sockaddr_in sa;
  int port;
  int fds[4];
  int fd;
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
  fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  errno = 0;
  assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), -1);
  assert_int_equal(errno, ECONNREFUSED);
  close(fd);
  for (i = 0; i < 5; i++) TU_RUN(base, RILL_RUN_NOWAIT, LIMIT);
  assert_int_equal(g_accepts, 1);
  for (i = 0; i < 4; i++) close(fds[i]);
  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  tu_base_free(base);
}

/* ---- a receive survives the ring's hand-over and fork --------------------- */

struct counter {
  size_t seen;
  int bad;
};

static size_t on_count_read(rill_conn *c, const char *data, size_t len, int status, void *arg) {
  struct counter *k = arg;
  size_t i;
  (void)c;
  if (status != 0) return 0;
  for (i = 0; i < len; i++)
    if ((unsigned char)data[i] != (unsigned char)(k->seen + i)) k->bad++;
  k->seen += len;
  return len;
}

static void send_counted(int fd, size_t from, size_t n) {
  unsigned char buf[256];
  size_t i;
  assert_true(n <= sizeof buf);
  for (i = 0; i < n; i++) buf[i] = (unsigned char)(from + i);
  assert_int_equal(send(fd, buf, n, MSG_NOSIGNAL), (ssize_t)n);
}

static void run_until_seen(rill_base *base, const struct counter *k, size_t want) {
  uint64_t deadline = tu_now_ms() + LIMIT;
  while (k->seen < want && tu_now_ms() < deadline) tu_run(base, RILL_RUN_ONCE, LIMIT);
}

struct handover {
  rill_base *base;
  struct counter *k;
  int client;
};

static void *second_thread(void *arg) {
  struct handover *h = arg;
  /* The ring belongs to the main thread: this wait trades it for one
   * without SINGLE_ISSUER, registers the buffers again and re-arms. */
  send_counted(h->client, 100, 100);
  run_until_seen(h->base, h->k, 200);
  return NULL;
}

static void test_receive_survives_thread_handover(void **state) {
  static const rill_conn_events ev = {on_count_read, NULL, NULL, NULL, NULL, NULL};
  rill_base *base = tu_uring_base();
  struct counter k;
  struct handover h;
  pthread_t t;
  rill_conn *c;
  int sv[2];
  (void)state;
  if (!base) skip();
  memset(&k, 0, sizeof k);
  tu_socketpair(sv);
  assert_int_equal(rill_conn_from_fd(base, sv[0], &c), 0);
  assert_int_equal(rill_conn_start(c, &ev, &k), 0);
  send_counted(sv[1], 0, 100);
  run_until_seen(base, &k, 100);
  assert_int_equal(k.seen, 100);
  h.base = base;
  h.k = &k;
  h.client = sv[1];
  assert_int_equal(pthread_create(&t, NULL, second_thread, &h), 0);
  assert_int_equal(pthread_join(t, NULL), 0);
  assert_int_equal(k.seen, 200);
  /* And back on this thread (the traded ring is nobody's). */
  send_counted(sv[1], 200, 56);
  run_until_seen(base, &k, 256);
  assert_int_equal(k.seen, 256);
  assert_int_equal(k.bad, 0);
  rill_conn_close_now(c);
  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  close(sv[1]);
  tu_base_free(base);
}

static int exit_status(pid_t pid) {
  int status = 0;
  uint64_t deadline = tu_now_ms() + LIMIT;
  for (;;) {
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if ((r < 0 && errno != EINTR) || tu_now_ms() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return -1;
    }
    tu_sleep_ms(5);
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* The child rebuilds its ring and buffer ring: a new connection receives
 * there; the parent's receive runs on, nothing lost. */
static void test_receive_across_fork(void **state) {
  static const rill_conn_events ev = {on_count_read, NULL, NULL, NULL, NULL, NULL};
  rill_base *base = tu_uring_base();
  struct counter k;
  rill_conn *c;
  int sv[2];
  pid_t pid;
  (void)state;
  if (!base) skip();
  memset(&k, 0, sizeof k);
  tu_socketpair(sv);
  assert_int_equal(rill_conn_from_fd(base, sv[0], &c), 0);
  assert_int_equal(rill_conn_start(c, &ev, &k), 0);
  send_counted(sv[1], 0, 100);
  run_until_seen(base, &k, 100);
  assert_int_equal(k.seen, 100);
  pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    struct counter ck;
    rill_conn *cc;
    int csv[2];
    uint64_t deadline = tu_now_ms() + LIMIT;
    memset(&ck, 0, sizeof ck);
    CHILD_CHECK(rill_base_reinit(base) == 0);
    /* The inherited connection is the parent's to read: this copy stops,
     * or the child's loop would take the parent's bytes (on any backend). */
    CHILD_CHECK(rill_conn_read_stop(c) == 0);
    CHILD_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, csv) == 0);
    CHILD_CHECK(rill_conn_from_fd(base, csv[0], &cc) == 0);
    CHILD_CHECK(rill_conn_start(cc, &ev, &ck) == 0);
    {
      unsigned char buf[200];
      size_t i;
      for (i = 0; i < sizeof buf; i++) buf[i] = (unsigned char)i;
      CHILD_CHECK(write(csv[1], buf, sizeof buf) == (ssize_t)sizeof buf);
    }
    while (ck.seen < 200 && tu_now_ms() < deadline) tu_run(base, RILL_RUN_ONCE, LIMIT);
    CHILD_CHECK(ck.seen == 200 && ck.bad == 0);
    _exit(0);
  }
  send_counted(sv[1], 100, 100);
  run_until_seen(base, &k, 200);
  assert_int_equal(exit_status(pid), 0);
  assert_int_equal(k.seen, 200);
  assert_int_equal(k.bad, 0);
  rill_conn_close_now(c);
  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  close(sv[1]);
  tu_base_free(base);
}

#define T(f) cmocka_unit_test_setup_teardown(f, tu_setup_fds, tu_teardown_fds)

int main(void) {
  const struct CMUnitTest tests[] = {
      T(test_exhausted_ring_loses_nothing),
      T(test_exhausted_ring_with_stops),
      T(test_stops_lose_nothing),
      T(test_close_with_recv_in_flight),
      T(test_abort_with_recv_in_flight),
      T(test_close_now_with_recv_in_flight),
      T(test_reset_behind_queued_bytes),
      T(test_listener_freed_with_accept_in_flight),
      T(test_receive_survives_thread_handover),
      T(test_receive_across_fork),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
