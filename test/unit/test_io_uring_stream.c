/* The io_uring backend's stream receive (docs/io_uring.md): multishot
 * receive into the base's buffer ring.
 *
 *  - A ring far too small for the input (RILL_IO_URING_BUFFERS=4 of 64
 *    bytes) runs dry over and over (ENOBUFS) while many connections send
 *    at once, and on_read uses only part of what it is shown; every byte
 *    still arrives, once, in order. So it does with read_stop/read_start
 *    in the middle of the stream (the receive is cancelled and re-armed).
 *  - A receive survives the ring's hand-over to another thread and a fork.
 * Ends with operations in flight (closes, resets, a listener freed) are
 * test_io_uring_close.c's. Each test skips where the kernel refuses
 * io_uring. */
#define _GNU_SOURCE 1

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <netinet/in.h>
#include <arpa/inet.h>
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
      T(test_receive_survives_thread_handover),
      T(test_receive_across_fork),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
