/* How a TLS connection ends its write side when the kernel cannot take
 * more: the close_notify of a graceful close and the close_notify + FIN
 * of rill_conn_close_write() wait behind the data and go out once the peer
 * reads, and a write deadline that passes gives the FIN up no more than it
 * does on TCP. Against a rill TLS listener, a blocking OpenSSL client on a
 * thread with a small receive buffer reads only when told to: it reports
 * the plaintext, whether the stream ended with close_notify, and whether a
 * FIN followed. Every wait is bounded by an event, with generous guards. */
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

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define GUARD_MS 20000 /* any one wait; the steps take milliseconds */
#define DATA_MAX (1u << 20)

static int get(const int *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static void put(int *p, int v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }

static int wait_for(const int *p, int want) {
  uint64_t end = tu_now_ms() + GUARD_MS;
  while (get(p) < want) {
    if (tu_now_ms() > end)
      return -1;
    tu_sleep_ms(1);
  }
  return 0;
}

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
  /* The peer's side. */
  int done;
  size_t got;
  int clean;         /* the stream ended with close_notify */
  int fin;           /* then the socket read its end (FIN), not a timeout */
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
  put(&k->write_error, err);
  put(&k->go, 1);
}

static void on_close(rill_conn *c, void *arg) {
  (void)c;
  put(&((close_case *)arg)->closed, 1);
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
  put(&k->accepted, 1);
}

static void on_poll(rill_timer *t, void *arg) {
  (void)t;
  close_case *k = arg;
  if (get(&k->done))
    rill_base_stop(k->base);
}

/* The peer: connects with a small receive buffer, waits for `go`, reads
 * until the TLS stream ends, then waits for the socket's end. */
static void *peer_main(void *arg) {
  close_case *k = arg;
  SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
  SSL *ssl = NULL;
  int fd = socket(k->unix_socket ? AF_UNIX : AF_INET, SOCK_STREAM, 0);
  if (!ctx || fd < 0)
    goto out;
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
  int rcvbuf = 4096;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  struct timeval tv = {GUARD_MS / 1000, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)k->port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  struct sockaddr_un u;
  memset(&u, 0, sizeof u);
  u.sun_family = AF_UNIX;
  snprintf(u.sun_path, sizeof u.sun_path, "%s", k->path);
  ssl = SSL_new(ctx);
  if (!ssl)
    goto out;
  if (k->unix_socket ? connect(fd, (struct sockaddr *)&u, sizeof u) < 0
                     : connect(fd, (struct sockaddr *)&a, sizeof a) < 0)
    goto out;
  SSL_set_fd(ssl, fd);
  if (SSL_connect(ssl) != 1 || wait_for(&k->go, 1) < 0)
    goto out;
  for (;;) {
    size_t n = 0;
    size_t room = sizeof k->buf - k->got;
    if (!room || SSL_read_ex(ssl, k->buf + k->got, room > 65536 ? 65536 : room, &n) != 1) {
      k->clean = room && SSL_get_error(ssl, 0) == SSL_ERROR_ZERO_RETURN;
      break;
    }
    k->got += n;
  }
  /* After close_notify, or after whatever cut the stream short: the FIN
   * reads as 0 (no more bytes come; a guard's timeout reads as -1). */
  char byte;
  ssize_t r;
  while ((r = recv(fd, &byte, 1, 0)) > 0) {
  }
  k->fin = r == 0;
out:
  SSL_free(ssl);
  SSL_CTX_free(ctx);
  if (fd >= 0)
    close(fd);
  put(&k->done, 1);
  return NULL;
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
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, peer_main, k), 0);
  uint64_t end = tu_now_ms() + 3 * GUARD_MS;
  while (!get(&k->done) && tu_now_ms() < end)
    tu_run(k->base, RILL_RUN_DEFAULT, GUARD_MS);
  pthread_join(th, NULL);
  if (k->conn && !k->closed)
    rill_conn_close_now(k->conn);
  rill_timer_free(k->poll);
  rill_tls_listener_free(k->listener);
  for (int i = 0; i < 10; i++)
    rill_base_run(k->base, RILL_RUN_NOWAIT);
  tu_base_free(k->base);
  assert_true(get(&k->accepted));
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
  put(&k->go, 1);
}

static void test_close_waits_for_close_notify(void **state) {
  (void)state;
  close_case *k = calloc(1, sizeof *k);
  assert_non_null(k);
  k->on_accepted = full_then_close;
  k->unix_socket = 1;
  run_case(k);
  assert_int_equal(k->got, k->sent);
  assert_memory_equal(k->buf, pattern, k->sent);
  assert_true(k->clean); /* close_notify, not "unexpected EOF" */
  assert_true(k->fin);
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
  put(&k->go, 1);
}

static void run_close_write(uint64_t deadline) {
  close_case *k = calloc(1, sizeof *k);
  assert_non_null(k);
  deadline_ms = deadline;
  k->on_accepted = queue_then_close_write;
  run_case(k);
  assert_int_equal(k->write_error, 0);
  assert_int_equal(k->got, k->sent);
  assert_memory_equal(k->buf, pattern, k->sent);
  assert_true(k->clean);
  assert_true(k->fin);
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
  close_case *k = calloc(1, sizeof *k);
  assert_non_null(k);
  k->on_accepted = queue_close_write_then_expire;
  /* The peer reads only once the deadline failed the queue (on_write_error
   * lets it). */
  run_case(k);
  assert_int_equal(k->write_error, RILL_ETIMEOUT);
  assert_true(k->got < k->sent);
  assert_memory_equal(k->buf, pattern, k->got);
  assert_false(k->clean);
  assert_true(k->fin); /* the FIN came, as it does on TCP */
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
  close_case *k = calloc(1, sizeof *k);
  assert_non_null(k);
  k->on_accepted = full_close_write_then_expire;
  k->unix_socket = 1;
  run_case(k);
  assert_int_equal(k->write_error, RILL_ETIMEOUT);
  assert_int_equal(k->got, k->sent); /* all of it was in the kernel */
  assert_memory_equal(k->buf, pattern, k->got);
  assert_false(k->clean);
  assert_true(k->fin);
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
