/* A rill server's TLS 1.3 session tickets (lib/tls/conn.cpp, "The session
 * ticket"): one after every handshake, resumed ones included, so a client
 * that uses each ticket once resumes on every reconnect; and when the
 * client's first request came with its Finished, the ticket that waits for
 * the reply still arrives if the server never replies, or never reads, and
 * a fatal alert the server writes behind it goes out too.
 * The client is OpenSSL over memory BIOs in a thread, so that it decides
 * what goes in one segment; it keeps only the newest ticket. */
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

/* ---- the server ------------------------------------------------------------ */

enum serve_mode { ECHO, SILENT, IGNORE }; /* reply / read only / never read */

typedef struct server {
  rill_tls_listener *l;
  rill_tls_config *cfg;
  enum serve_mode mode;
  rill_conn *ignored[8];
  int ignored_count;
  int port;
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

static size_t silent_read(rill_conn *conn, const char *data, size_t len, int status, void *arg) {
  (void)data;
  (void)arg;
  if (status)
    rill_conn_close(conn);
  return len;
}

static void on_accept(rill_tls_listener *l, rill_conn *conn, int status, void *arg) {
  (void)l;
  server *s = arg;
  static const rill_conn_events echo = {.on_read = echo_read};
  static const rill_conn_events silent = {.on_read = silent_read};
  assert_int_equal(status, 0);
  if (s->mode == IGNORE) {
    assert_true(s->ignored_count < 8);
    s->ignored[s->ignored_count++] = conn;
    return;
  }
  assert_int_equal(rill_conn_start(conn, s->mode == ECHO ? &echo : &silent, s), 0);
}

/* ---- the client ------------------------------------------------------------ */

typedef struct client {
  int port;
  SSL_SESSION *offer;  /* the ticket to resume with, or NULL */
  const char *message; /* written behind the Finished, in its segment; or NULL */
  int want_echo;
  /* What happened. */
  int resumed;
  SSL_SESSION *ticket; /* the newest session the server issued (a reference) */
  size_t echoed;
  int garbled; /* the echo differed from the message */
  int corrupt;            /* flip the request record's last byte */
  unsigned long last_err; /* the error SSL_read ended with */
  int ssl_error;          /* and its SSL_get_error(), -1: the socket's end */
  volatile int done;
} client;

static int on_new_session(SSL *ssl, SSL_SESSION *session) {
  client *c = SSL_get_app_data(ssl);
  SSL_SESSION_free(c->ticket);
  c->ticket = session;
  return 1; /* the reference is ours */
}

static void *client_main(void *arg) {
  client *c = arg;
  char buf[256];
  SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
  SSL *ssl = NULL;
  BIO *in = BIO_new(BIO_s_mem()), *out = BIO_new(BIO_s_mem());
  int fd = sp_connect(c->port, NULL, 0);
  if (!ctx || fd < 0 || !in || !out)
    goto end;
  SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  SSL_CTX_sess_set_new_cb(ctx, on_new_session);
  if (!(ssl = SSL_new(ctx)))
    goto end;
  SSL_set_app_data(ssl, c);
  SSL_set_bio(ssl, in, out);
  in = out = NULL;
  SSL_set_connect_state(ssl);
  if (c->offer && SSL_set_session(ssl, c->offer) != 1)
    goto end;
  for (;;) { /* the Finished stays in the BIO until the message joins it */
    int r = SSL_connect(ssl);
    if (r == 1)
      break;
    if (SSL_get_error(ssl, r) != SSL_ERROR_WANT_READ || sp_bio_flush(fd, SSL_get_wbio(ssl)) < 0 ||
        sp_bio_feed(fd, SSL_get_rbio(ssl)) < 0)
      goto end;
  }
  c->resumed = SSL_session_reused(ssl);
  if (c->message && SSL_write(ssl, c->message, (int)strlen(c->message)) <= 0)
    goto end;
  if (c->corrupt) {
    char raw[1 << 16];
    int rl = 0, k;
    while ((k = BIO_read(SSL_get_wbio(ssl), raw + rl, (int)(sizeof raw - rl))) > 0)
      rl += k;
    raw[rl - 1] ^= 0x55;
    if (send(fd, raw, (size_t)rl, MSG_NOSIGNAL) != rl)
      goto end;
    for (;;) {
      int n = SSL_read(ssl, buf, sizeof buf);
      if (n > 0)
        continue;
      int e = SSL_get_error(ssl, n);
      if (e == SSL_ERROR_WANT_READ) {
        if (sp_bio_feed(fd, SSL_get_rbio(ssl)) < 0) {
          c->ssl_error = -1; /* EOF from the socket */
          break;
        }
        continue;
      }
      c->ssl_error = e;
      c->last_err = ERR_peek_error();
      break;
    }
    goto end;
  }
  if (sp_bio_flush(fd, SSL_get_wbio(ssl)) < 0)
    goto end;
  size_t want = c->want_echo ? strlen(c->message) : 0;
  /* Until the ticket (and the echo) came, or the guard passed. */
  while (!c->ticket || c->echoed < want) {
    int n = SSL_read(ssl, buf, sizeof buf);
    if (n > 0) {
      if (c->echoed + (size_t)n > want || memcmp(buf, c->message + c->echoed, (size_t)n) != 0)
        c->garbled = 1;
      c->echoed += (size_t)n;
      continue;
    }
    if (SSL_get_error(ssl, n) != SSL_ERROR_WANT_READ)
      break;
    if (c->ticket && c->echoed >= want)
      break; /* that read took the ticket in */
    if (sp_bio_feed(fd, SSL_get_rbio(ssl)) < 0)
      break;
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

/* ---- the cases ------------------------------------------------------------- */

static void tick(rill_timer *t, void *arg) {
  (void)t;
  (void)arg;
}

typedef struct fixture {
  rill_base *base;
  rill_timer *ticker; /* each run of the loop returns, whatever the client does */
  server s;
} fixture;

static void fixture_start(fixture *f, enum serve_mode mode) {
  char addr[RILL_ADDRSTRLEN];
  memset(f, 0, sizeof *f);
  f->base = tu_base_new();
  f->s.mode = mode;
  assert_int_equal(rill_timer_new(f->base, tick, NULL, &f->ticker), 0);
  assert_int_equal(rill_timer_start(f->ticker, 10 * RILL_MSEC, 10 * RILL_MSEC), 0);
  assert_int_equal(rill_tls_config_new(RILL_TLS_SERVER, &f->s.cfg), 0);
  assert_int_equal(rill_tls_config_set_cert_key_files(f->s.cfg, tp_cert("server.crt"), tp_cert("server.key")), 0);
  assert_int_equal(rill_tls_listen(f->base, "tcp4", "127.0.0.1:0", NULL, f->s.cfg, on_accept, &f->s, &f->s.l), 0);
  assert_true(rill_listener_addr(rill_tls_listener_listener(f->s.l), addr, sizeof addr) > 0);
  f->s.port = atoi(strrchr(addr, ':') + 1);
}

static void fixture_end(fixture *f) {
  for (int i = 0; i < f->s.ignored_count; i++)
    rill_conn_close_now(f->s.ignored[i]);
  TU_RUN(f->base, RILL_RUN_NOWAIT, 5000);
  rill_timer_free(f->ticker);
  rill_tls_listener_free(f->s.l);
  rill_tls_config_unref(f->s.cfg);
  tu_base_free(f->base);
}

/* One connection of `c` served by the loop until the client is done. */
static void serve(fixture *f, client *c) {
  pthread_t thread;
  c->port = f->s.port;
  assert_int_equal(pthread_create(&thread, NULL, client_main, c), 0);
  uint64_t end = tu_now_ms() + 20000;
  while (!__atomic_load_n(&c->done, __ATOMIC_ACQUIRE) && tu_now_ms() < end)
    TU_RUN(f->base, RILL_RUN_ONCE, 1000);
  assert_int_equal(pthread_join(thread, NULL), 0);
}

static int same_ticket(const SSL_SESSION *a, const SSL_SESSION *b) {
  const unsigned char *ta, *tb;
  size_t la, lb;
  SSL_SESSION_get0_ticket(a, &ta, &la);
  SSL_SESSION_get0_ticket(b, &tb, &lb);
  return la == lb && memcmp(ta, tb, la) == 0;
}

/* Each reconnect offers only the ticket the last connection brought, and
 * resumes; each brings a new one. Requests come with the Finished (the
 * ticket goes with the echo) or after it (the ticket goes at once), and
 * a certificate reload in between ends no ticket. */
static void test_one_ticket_per_handshake_resumes_every_time(void **state) {
  (void)state;
  fixture f;
  fixture_start(&f, ECHO);
  SSL_SESSION *last = NULL;
  for (int round = 0; round < 6; round++) {
    client c = {.offer = last, .message = round % 2 ? "ping" : NULL, .want_echo = round % 2};
    serve(&f, &c);
    if (!c.ticket)
      fail_msg("round %d: no ticket came", round);
    assert_int_equal(c.resumed, round > 0);
    assert_int_equal(c.echoed, c.want_echo ? 4 : 0);
    assert_false(c.garbled);
    if (last)
      assert_false(same_ticket(last, c.ticket));
    SSL_SESSION_free(last);
    last = c.ticket;
    if (round == 3)
      assert_int_equal(rill_tls_config_reload(f.s.cfg), 0);
  }
  SSL_SESSION_free(last);
  fixture_end(&f);
}

/* A request came with the Finished and the server never replies: the
 * ticket that waited for the reply comes anyway, and resumes. */
static void ticket_without_reply(enum serve_mode mode) {
  fixture f;
  fixture_start(&f, mode);
  client first = {.message = "hello"};
  serve(&f, &first);
  if (!first.ticket)
    fail_msg("no ticket came without a reply");
  client again = {.offer = first.ticket, .message = "hello"};
  serve(&f, &again);
  assert_true(again.resumed);
  if (!again.ticket)
    fail_msg("no ticket came after a resumed handshake without a reply");
  SSL_SESSION_free(first.ticket);
  SSL_SESSION_free(again.ticket);
  fixture_end(&f);
}

static void test_ticket_comes_when_the_server_reads_but_never_writes(void **state) {
  (void)state;
  ticket_without_reply(SILENT);
}

static void test_ticket_comes_when_the_server_never_reads(void **state) {
  (void)state;
  ticket_without_reply(IGNORE);
}

/* A corrupt record behind the Finished, while the ticket is held for the
 * reply: the server's read fails, OpenSSL writes a fatal alert behind the
 * ticket, and the server closes (echo_read). The alert must reach the
 * client; the close once sent neither (no close_notify takes a held ticket
 * along after a failure, and the read left the alert waiting). */
static void test_alert_goes_behind_a_held_ticket(void **state) {
  fixture f;
  client c = {.message = "hello", .corrupt = 1};
  (void)state;
  fixture_start(&f, ECHO);
  serve(&f, &c);
  assert_int_equal(c.ssl_error, SSL_ERROR_SSL);
  assert_true(ERR_GET_REASON(c.last_err) >= SSL_AD_REASON_OFFSET); /* an alert, from the server */
  assert_non_null(c.ticket);
  SSL_SESSION_free(c.ticket);
  fixture_end(&f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_one_ticket_per_handshake_resumes_every_time),
      cmocka_unit_test(test_ticket_comes_when_the_server_reads_but_never_writes),
      cmocka_unit_test(test_ticket_comes_when_the_server_never_reads),
      cmocka_unit_test(test_alert_goes_behind_a_held_ticket),
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
