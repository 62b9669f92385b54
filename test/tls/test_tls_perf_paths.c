/* What lib/tls's fast paths must never lose (lib/tls/conn.cpp): OpenSSL
 * reads ahead, so records can sit in its buffer where the socket no longer
 * signals them, and a read stops once OpenSSL holds nothing rather than
 * asking the socket again. A client made of OpenSSL memory BIOs (in a
 * thread, on a blocking socket) puts exactly what the case needs into one
 * send(): the handshake's last flight together with the first messages,
 * several records at once against a server whose read room is smaller than
 * they are. The server is rill_tls_listen with an echo; the client must get
 * every byte back. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "rill.h"
#include "test_util.h"
#include "tls_peer.h"

#ifdef RILL_TEST_HAVE_TLS
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "ssl_thread_peer.h"

/* ---- the server: an echo over rill_tls_listen ------------------------------ */

typedef struct server {
  rill_tls_listener *l;
  rill_conn *conn;
  int port;
  int closed;
} server;

static size_t echo_read(rill_conn *conn, const char *data, size_t len, int status, void *arg) {
  (void)arg;
  if (status) {
    rill_conn_close(conn);
    return 0;
  }
  assert_int_equal(rill_conn_write(conn, data, len), 0);
  return len;
}

static void echo_close(rill_conn *conn, void *arg) {
  (void)conn;
  ((server *)arg)->closed = 1;
}

static void on_accept(rill_tls_listener *l, rill_conn *conn, int status, void *arg) {
  (void)l;
  server *s = arg;
  static const rill_conn_events ev = {.on_read = echo_read, .on_close = echo_close};
  assert_int_equal(status, 0);
  s->conn = conn;
  assert_int_equal(rill_conn_start(conn, &ev, s), 0);
}

static void server_start(rill_base *base, server *s, rill_tls_config *cfg, size_t read_max) {
  rill_socket_config opts;
  char addr[RILL_ADDRSTRLEN];
  memset(&opts, 0, sizeof opts);
  opts.read_max = read_max;
  assert_int_equal(rill_tls_listen(base, "tcp4", "127.0.0.1:0", &opts, cfg, on_accept, s, &s->l), 0);
  assert_true(rill_listener_addr(rill_tls_listener_listener(s->l), addr, sizeof addr) > 0);
  s->port = atoi(strrchr(addr, ':') + 1);
}

/* ---- the client: OpenSSL over memory BIOs, so it decides the segments ------ */

typedef struct client {
  int port;
  const char *const *messages; /* written back to back after the handshake */
  int count;
  size_t want;  /* bytes the echo must bring back */
  size_t got;
  int ok;       /* every byte came back, in order */
  volatile int done;
} client;

/* What OpenSSL wrote so far, into one send(). */
static void *client_main(void *arg) {
  client *c = arg;
  char echo[4096];
  SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
  SSL *ssl = ctx ? SSL_new(ctx) : NULL;
  BIO *in = BIO_new(BIO_s_mem()), *out = BIO_new(BIO_s_mem());
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa;
  struct timeval limit = {10, 0}; /* a hang guard: a lost echo fails, never hangs */
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((unsigned short)c->port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
  if (!ssl || !in || !out || fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
    goto end;
  SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
  SSL_set_bio(ssl, in, out);
  in = out = NULL;
  SSL_set_connect_state(ssl);
  /* The handshake, holding back the client's last flight (TLS 1.3: its
   * Finished, written when SSL_connect succeeds). */
  for (;;) {
    int r = SSL_connect(ssl);
    if (r == 1)
      break;
    if (SSL_get_error(ssl, r) != SSL_ERROR_WANT_READ || sp_bio_flush(fd, SSL_get_wbio(ssl)) < 0 ||
        sp_bio_feed(fd, SSL_get_rbio(ssl)) < 0)
      goto end;
  }
  /* The messages behind the Finished, all in the same send(). */
  for (int i = 0; i < c->count; i++)
    if (SSL_write(ssl, c->messages[i], (int)strlen(c->messages[i])) <= 0)
      goto end;
  if (sp_bio_flush(fd, SSL_get_wbio(ssl)) < 0)
    goto end;
  c->ok = 1;
  while (c->got < c->want) {
    int n = SSL_read(ssl, echo, sizeof echo);
    if (n > 0) {
      /* The messages concatenated, as the echo must bring them back. */
      for (int k = 0; k < n; k++) {
        size_t at = c->got + (size_t)k, skip = 0;
        for (int i = 0; i < c->count; i++) {
          size_t len = strlen(c->messages[i]);
          if (at < skip + len) {
            if (c->messages[i][at - skip] != echo[k])
              c->ok = 0;
            break;
          }
          skip += len;
        }
      }
      c->got += (size_t)n;
      continue;
    }
    if (SSL_get_error(ssl, n) != SSL_ERROR_WANT_READ || sp_bio_feed(fd, SSL_get_rbio(ssl)) < 0)
      break; /* the guard passed: c->got says how much came */
  }
  SSL_shutdown(ssl);
  sp_bio_flush(fd, SSL_get_wbio(ssl));
end:
  if (fd >= 0)
    close(fd);
  BIO_free(in);
  BIO_free(out);
  SSL_free(ssl);
  SSL_CTX_free(ctx);
  ERR_clear_error();
  __atomic_store_n(&c->done, 1, __ATOMIC_RELEASE); /* read by the loop's thread */
  return NULL;
}

static void tick(rill_timer *t, void *arg) {
  (void)t;
  (void)arg;
}

/* Serves `c` on a fresh listener with `read_max` until the client is done
 * (a ticking timer makes each run of the loop return, as the client's last
 * step makes no event here). */
static void run_case(client *c, size_t read_max) {
  rill_base *base = tu_base_new();
  rill_tls_config *cfg;
  rill_timer *ticker;
  server s = {0};
  pthread_t thread;
  assert_int_equal(rill_timer_new(base, tick, NULL, &ticker), 0);
  assert_int_equal(rill_timer_start(ticker, 10 * RILL_MSEC, 10 * RILL_MSEC), 0);
  assert_int_equal(rill_tls_config_new(RILL_TLS_SERVER, &cfg), 0);
  assert_int_equal(rill_tls_config_set_cert_key_files(cfg, tp_cert("server.crt"), tp_cert("server.key")), 0);
  server_start(base, &s, cfg, read_max);
  c->port = s.port;
  for (int i = 0; i < c->count; i++)
    c->want += strlen(c->messages[i]);
  assert_int_equal(pthread_create(&thread, NULL, client_main, c), 0);
  uint64_t end = tu_now_ms() + 20000;
  while (!__atomic_load_n(&c->done, __ATOMIC_ACQUIRE) && tu_now_ms() < end)
    TU_RUN(base, RILL_RUN_ONCE, 1000);
  assert_int_equal(pthread_join(thread, NULL), 0);
  end = tu_now_ms() + 5000;
  while (s.conn && !s.closed && tu_now_ms() < end)
    TU_RUN(base, RILL_RUN_ONCE, 1000);
  rill_timer_free(ticker);
  rill_tls_listener_free(s.l);
  rill_tls_config_unref(cfg);
  tu_base_free(base);
  assert_int_equal(c->got, c->want);
  assert_true(c->ok);
}

/* The first message arrives with the client's Finished: OpenSSL read it
 * ahead during the handshake, so the socket will never signal it, and the
 * server must still read it once its user starts reading. */
static void test_first_message_with_finished(void **state) {
  (void)state;
  static const char *const messages[] = {"hello"};
  client c = {.messages = messages, .count = 1};
  run_case(&c, 0);
}

/* Several records in one segment: after the first, the read goes on with
 * what OpenSSL holds, without the socket. */
static void test_records_in_one_segment(void **state) {
  (void)state;
  static const char *const messages[] = {"one ", "two ", "three ", "four"};
  client c = {.messages = messages, .count = 4};
  run_case(&c, 0);
}

/* A read room (read_max 100) smaller than the records that came at once:
 * the read stops with OpenSSL still holding whole records, which no
 * readiness will announce. */
static void test_records_behind_a_full_read(void **state) {
  (void)state;
  static char a[65], b[65], d[65];
  static const char *const messages[] = {a, b, d};
  memset(a, 'a', 64);
  memset(b, 'b', 64);
  memset(d, 'd', 64);
  client c = {.messages = messages, .count = 3};
  run_case(&c, 100);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_first_message_with_finished),
      cmocka_unit_test(test_records_in_one_segment),
      cmocka_unit_test(test_records_behind_a_full_read),
  };
  return cmocka_run_group_tests(tests, tp_certs_setup, tp_certs_teardown);
}

#else

static void test_skipped(void **state) {
  (void)state;
  skip();
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_skipped)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}

#endif
