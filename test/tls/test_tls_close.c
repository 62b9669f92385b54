/* How a TLS connection ends its write side when the kernel cannot take
 * more: the close_notify of a graceful close and the close_notify + FIN
 * of rill_conn_close_write() wait behind the data and go out once the peer
 * reads, and a write deadline that passes gives the FIN up no more than it
 * does on TCP. Against a rill TLS listener, a blocking OpenSSL client on a
 * thread with a small receive buffer reads only when told to
 * (ssl_thread_peer.c): it reports the plaintext, whether the stream ended
 * with close_notify, and whether a FIN followed. Every wait is bounded by
 * an event, with generous guards. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rill.h"
#include "test_util.h"
#include "tls_peer.h"

#ifdef RILL_TEST_HAVE_TLS

#include <pthread.h>
#include <signal.h>

#include "ssl_thread_peer.h"

#define GUARD_MS SP_GUARD_MS
#define DATA_MAX (1u << 20)

static unsigned char pattern[DATA_MAX];

static void make_pattern(void) {
  for (size_t i = 0; i < DATA_MAX; i++)
    pattern[i] = (unsigned char)(i * 131u + (i >> 11) * 7u + 1u);
}

typedef struct close_case close_case;
struct close_case {
  /* What the rill side does with the connection once accepted. */
  void (*on_accepted)(close_case *k, rill_conn *c);
  size_t sent;       /* plaintext the rill side handed over */
  /* The loop's side. */
  rill_base *base;
  rill_tls_listener *listener;
  rill_timer *poll;
  int port;
  rill_conn *conn;
  int accepted, closed, write_error;
  int go;            /* the peer may read now */
  sp_reader peer;    /* its results: got, clean, fin, done */
  unsigned char buf[DATA_MAX + 16384]; /* room for more than was sent */
  int unix_socket;   /* the case runs over a Unix socket, else TCP */
  char path[108];
};

static size_t on_read(rill_conn *c, const char *data, size_t len, int status, void *arg) {
  (void)c, (void)data, (void)arg, (void)status;
  return len;
}

static void on_write_error(rill_conn *c, int err, size_t unsent, void *arg) {
  (void)c, (void)unsent;
  close_case *k = arg;
  sp_put(&k->write_error, err);
  sp_put(&k->go, 1);
}

static void on_close(rill_conn *c, void *arg) {
  (void)c;
  sp_put(&((close_case *)arg)->closed, 1);
}

static const rill_conn_events events = {
    .on_read = on_read, .on_write_error = on_write_error, .on_close = on_close};

static void on_accept(rill_tls_listener *l, rill_conn *c, int status, void *arg) {
  (void)l;
  close_case *k = arg;
  if (status || k->conn)
    return;
  k->conn = c;
  assert_int_equal(rill_conn_start(c, &events, k), 0);
  k->on_accepted(k, c);
  sp_put(&k->accepted, 1);
}

static void on_poll(rill_timer *t, void *arg) {
  (void)t;
  close_case *k = arg;
  if (sp_get(&k->peer.done))
    rill_base_stop(k->base);
}

/* Runs one case: the peer connects, the rill side does its part in
 * on_accepted (and lets the peer read), the loop runs until the peer is
 * done. */
static void run_case(close_case *k) {
  k->base = tu_base_new();
  rill_tls_config *cfg = NULL;
  assert_int_equal(rill_tls_config_new(RILL_TLS_SERVER, &cfg), 0);
  assert_int_equal(
      rill_tls_config_set_cert_key_files(cfg, tp_cert("server.crt"), tp_cert("server.key")), 0);
  if (k->unix_socket)
    snprintf(k->path, sizeof k->path, "%s", tp_cert("close.sock"));
  assert_int_equal(rill_tls_listen(k->base, k->unix_socket ? "unix" : "tcp",
                                   k->unix_socket ? k->path : "127.0.0.1:0", NULL, cfg, on_accept, k,
                                   &k->listener),
                   0);
  rill_tls_config_unref(cfg);
  if (!k->unix_socket)
    k->port = rill_listener_port(rill_tls_listener_listener(k->listener));
  assert_int_equal(rill_timer_new(k->base, on_poll, k, &k->poll), 0);
  rill_timer_start(k->poll, RILL_MSEC, RILL_MSEC);
  k->peer = (sp_reader){.port = k->port,
                        .path = k->unix_socket ? k->path : NULL,
                        .rcvbuf = 4096,
                        .go = &k->go,
                        .buf = k->buf,
                        .cap = sizeof k->buf};
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, sp_read_stream, &k->peer), 0);
  uint64_t end = tu_now_ms() + 3 * GUARD_MS;
  while (!sp_get(&k->peer.done) && tu_now_ms() < end)
    tu_run(k->base, RILL_RUN_DEFAULT, GUARD_MS);
  pthread_join(th, NULL);
  if (k->conn && !k->closed)
    rill_conn_close_now(k->conn);
  rill_timer_free(k->poll);
  rill_tls_listener_free(k->listener);
  for (int i = 0; i < 10; i++)
    rill_base_run(k->base, RILL_RUN_NOWAIT);
  tu_base_free(k->base);
  assert_true(sp_get(&k->accepted));
}

/* A case whose rill side does `on_accepted`, run; free it when done. */
static close_case *run_new_case(void (*on_accepted)(close_case *, rill_conn *), int unix_socket) {
  close_case *k = calloc(1, sizeof *k);
  assert_non_null(k);
  k->on_accepted = on_accepted;
  k->unix_socket = unix_socket;
  run_case(k);
  return k;
}

/* What the peer read: all that was sent (`all`) or a prefix, then an end
 * with close_notify (`clean`) or without, then the socket's FIN. */
static void check_peer(const close_case *k, int all, int clean) {
  if (all)
    assert_int_equal(k->peer.got, k->sent);
  else
    assert_true(k->peer.got < k->sent);
  assert_memory_equal(k->buf, pattern, k->peer.got);
  assert_int_equal(k->peer.clean, clean);
  assert_true(k->peer.fin);
}

/* ---- a graceful close against a full socket ------------------------------ */

/* Everything written is in the kernel (the queue is empty) and the kernel
 * takes nothing more: a smaller send buffer than what it holds. The close
 * must still send close_notify once the peer reads, not drop it. Over a
 * Unix socket, whose unread bytes count against the sender's buffer and
 * whose every send needs room of its own: TCP would still append a short
 * record to the last segment it has not sent. */
static void full_then_close(close_case *k, rill_conn *c) {
  assert_int_equal(rill_conn_set_write_buffer(c, 4 << 20), 0);
  k->sent = 256 * 1024;
  assert_int_equal(rill_conn_try_write(c, pattern, k->sent), (ssize_t)k->sent);
  assert_int_equal(rill_conn_write_queued(c), 0);
  assert_int_equal(rill_conn_set_write_buffer(c, 4096), 0);
  assert_int_equal(rill_conn_close(c), 0);
  sp_put(&k->go, 1);
}

static void test_close_waits_for_close_notify(void **state) {
  (void)state;
  close_case *k = run_new_case(full_then_close, 1);
  check_peer(k, 1, 1); /* close_notify, not "unexpected EOF" */
  assert_true(k->closed);
  free(k);
}

/* ---- close_write behind a queue, with a write deadline ------------------- */

static uint64_t deadline_ms;

/* 1 MiB queued behind a small send buffer, then close_write: its
 * close_notify and FIN go after the queue. */
static void queue_then_close_write(close_case *k, rill_conn *c) {
  assert_int_equal(rill_conn_set_write_buffer(c, 4096), 0);
  if (deadline_ms)
    assert_int_equal(rill_conn_set_deadline(c, RILL_DEADLINE_WRITE,
                                            rill_time_now() + deadline_ms * RILL_MSEC),
                     0);
  k->sent = DATA_MAX;
  assert_int_equal(rill_conn_write(c, pattern, k->sent), 0);
  assert_true(rill_conn_write_queued(c) > 0);
  assert_int_equal(rill_conn_close_write(c), 0);
  sp_put(&k->go, 1);
}

static void run_close_write(uint64_t deadline) {
  deadline_ms = deadline;
  close_case *k = run_new_case(queue_then_close_write, 0);
  assert_int_equal(k->write_error, 0);
  check_peer(k, 1, 1);
  free(k);
}

static void test_close_write_behind_queue(void **state) {
  (void)state;
  run_close_write(0);
}

static void test_close_write_behind_queue_with_deadline(void **state) {
  (void)state;
  run_close_write(30000); /* far enough never to pass */
}

/* ---- a write deadline that passes before the FIN ------------------------- */

/* As on TCP: the queue fails with RILL_ETIMEOUT, and the half-close the
 * user asked for still happens after what the kernel took. The peer reads
 * a prefix of the data, then an end that is not close_notify (the stream
 * was cut: a TLS peer must not take it for a clean end), then the FIN. */
static void queue_close_write_then_expire(close_case *k, rill_conn *c) {
  assert_int_equal(rill_conn_set_write_buffer(c, 4096), 0);
  assert_int_equal(
      rill_conn_set_deadline(c, RILL_DEADLINE_WRITE, rill_time_now() + 100 * RILL_MSEC), 0);
  k->sent = DATA_MAX;
  assert_int_equal(rill_conn_write(c, pattern, k->sent), 0);
  assert_int_equal(rill_conn_close_write(c), 0);
}

static void test_close_write_deadline_passes(void **state) {
  (void)state;
  /* The peer reads only once the deadline failed the queue (on_write_error
   * lets it). */
  close_case *k = run_new_case(queue_close_write_then_expire, 0);
  assert_int_equal(k->write_error, RILL_ETIMEOUT);
  check_peer(k, 0, 0); /* a prefix, no close_notify; the FIN came, as it does on TCP */
  free(k);
}

/* The queue is empty but the kernel takes nothing more (a Unix socket, as
 * above): close_write's close_notify waits in the connection, and its FIN
 * behind it. The deadline passes first: the FIN still goes (on TCP it is
 * already in the kernel), the close_notify does not. */
static void full_close_write_then_expire(close_case *k, rill_conn *c) {
  assert_int_equal(rill_conn_set_write_buffer(c, 4 << 20), 0);
  k->sent = 256 * 1024;
  assert_int_equal(rill_conn_try_write(c, pattern, k->sent), (ssize_t)k->sent);
  assert_int_equal(rill_conn_set_write_buffer(c, 4096), 0);
  assert_int_equal(
      rill_conn_set_deadline(c, RILL_DEADLINE_WRITE, rill_time_now() + 100 * RILL_MSEC), 0);
  assert_int_equal(rill_conn_close_write(c), 0);
}

static void test_close_write_fin_waiting_deadline_passes(void **state) {
  (void)state;
  close_case *k = run_new_case(full_close_write_then_expire, 1);
  assert_int_equal(k->write_error, RILL_ETIMEOUT);
  check_peer(k, 1, 0); /* all of it was in the kernel; no close_notify */
  free(k);
}

#endif /* RILL_TEST_HAVE_TLS */

int main(void) {
#ifdef RILL_TEST_HAVE_TLS
  signal(SIGPIPE, SIG_IGN); /* the peer's OpenSSL writes with write(2) */
  make_pattern();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_close_waits_for_close_notify),
      cmocka_unit_test(test_close_write_behind_queue),
      cmocka_unit_test(test_close_write_behind_queue_with_deadline),
      cmocka_unit_test(test_close_write_deadline_passes),
      cmocka_unit_test(test_close_write_fin_waiting_deadline_passes),
  };
  return cmocka_run_group_tests(tests, tp_certs_setup, tp_certs_teardown);
#else
  printf("test_tls_close: built without TLS\n");
  return 0;
#endif
}
