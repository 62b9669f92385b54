/* TLS under rill_conn, the client side: rill dials `openssl s_server` and a
 * rill listener on loopback with verification on; Go's texts for each
 * verification failure; the dial's timeout and cancel during the
 * handshake; the session cache. */
#include "tls_test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifdef RILL_TEST_HAVE_TLS

/* rill dials `openssl s_server -rev` by name, with verification on, and
 * reads back the line it sent, reversed. */
static void test_dial_s_server(void **state) {
  (void)state;
  int port;
  pid_t pid = s_server("server.crt", "server.key", &port, NULL);
  rill_base *base = tu_base_new();
  rill_tls_config *cfg = client_config();
  side s = {.expect = "llir olleh\n", .close_after = 1};
  dial_result r = {.s = &s, .send = "hello rill\n"};
  dial_ok(base, cfg, port, &r);
  rill_tls_config_unref(cfg);
  assert_int_equal(rill_tls_conn_version(r.conn), RILL_TLS_VERSION_13);
  char name[64];
  assert_int_equal(rill_tls_conn_server_name(r.conn, name, sizeof name), 9);
  assert_string_equal(name, "localhost");
  assert_int_equal(rill_tls_conn_peer_subject(r.conn, name, sizeof name), 12);
  assert_string_equal(name, "CN=localhost");
  run_until(base, &s.closed, 15000);
  assert_string_equal(s.in, "llir olleh\n");
  tu_base_free(base);
  tp_kill(pid);
}


/* Verification failures, each with Go's text. */
static void expect_dial_error(const char *crt, const char *key, const char *server_name,
                              int want, const char *want_text) {
  rill_base *base = tu_base_new();
  rill_tls_config *scfg = server_config(crt, key);
  server sv = {0};
  server_start(base, &sv, scfg);
  rill_tls_config_unref(scfg);  /* the listener holds its own reference */
  rill_tls_config *cfg = client_config();
  if (server_name)
    assert_int_equal(rill_tls_config_set_server_name(cfg, server_name), 0);
  dial_result r = {0};
  dial_port(base, cfg, "localhost", sv.port, &r);
  rill_tls_config_unref(cfg);
  run_until(base, &r.done, 15000);
  if (r.status != want)
    fail_msg("got %d (%s), want %d", r.status, r.text, want);
  assert_string_equal(r.text, want_text);
  /* The server's side failed too, and never reached on_accept. */
  run_until(base, &sv.errors, 5000);
  assert_int_equal(sv.accepted, 0);
  rill_tls_listener_free(sv.l);
  tu_base_free(base);
}

static void test_unknown_authority(void **state) {
  (void)state;
  expect_dial_error("rogue.crt", "rogue.key", NULL, RILL_ETLS_UNKNOWN_AUTHORITY,
                    "tls: failed to verify certificate: x509: certificate signed by unknown authority");
}

static void test_wrong_host(void **state) {
  (void)state;
  expect_dial_error("server.crt", "server.key", "wrong.test", RILL_ETLS_HOSTNAME,
                    "tls: failed to verify certificate: x509: certificate is valid for localhost, "
                    "not wrong.test");
}

static void test_expired(void **state) {
  (void)state;
  expect_dial_error("expired.crt", "server.key", NULL, RILL_ETLS_EXPIRED,
                    "tls: failed to verify certificate: x509: certificate has expired or is not yet valid");
}


/* ---- resumption ------------------------------------------------ */

static void test_resumption(void **state) {
  (void)state;
  server sv = {.echo = 1};
  rill_base *base = base_with_server(&sv);
  rill_tls_config *ccfg = client_config();
  assert_int_equal(echo_round(base, &sv, ccfg, NULL, 0), 0);
  assert_int_equal(echo_round(base, &sv, ccfg, NULL, 0), 1);
  /* With the cache off, every handshake is full. */
  rill_tls_config *nocache = client_config();
  assert_int_equal(rill_tls_config_set_session_cache(nocache, 0), 0);
  assert_int_equal(echo_round(base, &sv, nocache, NULL, 0), 0);
  assert_int_equal(echo_round(base, &sv, nocache, NULL, 0), 0);
  server_end(base, &sv);
  rill_tls_config_unref(ccfg);
  rill_tls_config_unref(nocache);
  tu_base_free(base);
}

/* ---- the dial's own bounds -------------------------------------------------- */

/* The dial's timeout covers the handshake (Go's DialWithDialer, whose
 * handshake runs under a context with that timeout). */
static void test_dial_timeout_in_handshake(void **state) {
  (void)state;
  char addr[64];
  int lfd = silent_listener(addr, sizeof addr);
  rill_base *base = tu_base_new();
  rill_tls_config *cfg = client_config();
  rill_socket_config opts = {.timeout = 300 * RILL_MSEC};
  dial_result r = {0};
  uint64_t start = tu_now_ms();
  assert_int_equal(rill_tls_dial(base, "tcp", addr, &opts, cfg, on_dialed, &r, NULL), 0);
  run_until(base, &r.done, 15000);
  assert_int_equal(r.status, RILL_ETIMEOUT);
  assert_string_equal(r.text, "context deadline exceeded"); /* Go 1.17 and later */
  assert_true(tu_now_ms() - start >= 295);
  rill_tls_config_unref(cfg);
  tu_base_free(base);
  close(lfd);
}

/* A cancel during the handshake reports RILL_ECANCELED once, from the
 * loop, never from inside the cancel. */
static void test_dial_cancel_in_handshake(void **state) {
  (void)state;
  char addr[64];
  int lfd = silent_listener(addr, sizeof addr);
  rill_base *base = tu_base_new();
  rill_tls_config *cfg = client_config();
  dial_result r = {0};
  rill_tls_dialer *d;
  assert_int_equal(rill_tls_dial(base, "tcp", addr, NULL, cfg, on_dialed, &r, &d), 0);
  /* Until the ClientHello is out: then the dial is in its handshake. */
  int accepted = accept(lfd, NULL, NULL);
  assert_true(accepted >= 0);
  for (int i = 0; i < 100 && !r.done; i++) {
    TU_RUN(base, RILL_RUN_NOWAIT, 5000);
    char byte;
    if (recv(accepted, &byte, 1, MSG_PEEK | MSG_DONTWAIT) == 1)
      break;
    tu_sleep_ms(10);
  }
  if (r.done)
    fail_msg("the dial ended before the cancel: %d (%s)", r.status, r.text);
  assert_int_equal(rill_tls_dialer_cancel(d), 0);
  assert_false(r.done);
  run_until(base, &r.done, 5000);
  assert_int_equal(r.status, RILL_ECANCELED);
  rill_tls_config_unref(cfg);
  tu_base_free(base);
  close(accepted);
  close(lfd);
}


#endif /* RILL_TEST_HAVE_TLS */

int main(void) {
#ifdef RILL_TEST_HAVE_TLS
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_dial_s_server),
      cmocka_unit_test(test_unknown_authority),
      cmocka_unit_test(test_wrong_host),
      cmocka_unit_test(test_expired),
      cmocka_unit_test(test_resumption),
      cmocka_unit_test(test_dial_timeout_in_handshake),
      cmocka_unit_test(test_dial_cancel_in_handshake),
  };
  return TT_RUN("test_tls_dial", tests);
#else
  return tt_run("test_tls_dial", NULL, 0);
#endif
}
