/* A rill TLS listener under hostile and broken clients played by raw
 * sockets: plaintext, a reset or a FIN mid-handshake, a handshake that
 * never finishes (the handshake timeout), a listener freed while
 * handshakes are in flight. Each fails with Go's text and never reaches
 * on_accept. */
#include "tls_test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifdef RILL_TEST_HAVE_TLS

/* The listener under a hostile client: the handshake fails with `want`,
 * on_accept never hears of it. `act` plays the client. */
static void expect_server_error(void (*act)(int fd), uint64_t hs_timeout, int want,
                                const char *want_text) {
  rill_base *base = tu_base_new();
  rill_tls_config *cfg = server_config("server.crt", "server.key");
  if (hs_timeout)
    assert_int_equal(rill_tls_config_set_handshake_timeout(cfg, hs_timeout), 0);
  server sv = {0};
  server_start(base, &sv, cfg);
  rill_tls_config_unref(cfg);
  int fd = raw_connect(sv.port);
  uint64_t start = tu_now_ms();
  act(fd);
  run_until(base, &sv.errors, 15000);
  if (sv.last_error != want)
    fail_msg("got %d (%s), want %d", sv.last_error, sv.error_text, want);
  if (!strstr(sv.error_text, want_text) || !strstr(sv.error_text, "TLS handshake error from "))
    fail_msg("error text: %s", sv.error_text);
  assert_int_equal(sv.accepted, 0);
  if (hs_timeout)
    assert_true(tu_now_ms() - start >= hs_timeout / RILL_MSEC - 5);
  close(fd);  /* no-op for the ones that reset it already: EBADF ignored */
  rill_tls_listener_free(sv.l);
  tu_base_free(base);
}

static void send_http(int fd) { raw_send(fd, "GET / HTTP/1.0\r\n\r\n", 18); }

static void test_plaintext_client(void **state) {
  (void)state;
  expect_server_error(send_http, 0, RILL_ETLS_NOT_TLS,
                      "tls: first record does not look like a TLS handshake");
}

/* The start of a ClientHello: a handshake record announcing 512 bytes. */
static const unsigned char partial_hello[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03};

static void send_partial_then_reset(int fd) {
  raw_send(fd, partial_hello, sizeof partial_hello);
  tu_sleep_ms(50);
  raw_reset(fd);
}

static void test_reset_mid_handshake(void **state) {
  (void)state;
  TU_SKIP_ON_LIBKQUEUE("the peer's reset is read off the socket (SO_ERROR) by libkqueue before rill sees it");
  expect_server_error(send_partial_then_reset, 0, RILL_ECONNRESET, "connection reset by peer");
}

static void send_partial_then_fin(int fd) {
  raw_send(fd, partial_hello, sizeof partial_hello);
  shutdown(fd, SHUT_WR);
}

static void test_truncated_handshake(void **state) {
  (void)state;
  expect_server_error(send_partial_then_fin, 0, RILL_ETLS_TRUNCATED, "unexpected EOF");
}

static void send_nothing(int fd) { (void)fd; }

/* Slowloris on the handshake: a client that never finishes is dropped
 * once the handshake timeout passes, and never reaches on_accept. */
static void test_handshake_deadline(void **state) {
  (void)state;
  expect_server_error(send_nothing, 200 * RILL_MSEC, RILL_ETIMEOUT, "i/o timeout");
}

/* A client that stops half-way through its hello is bounded the same way. */
static void send_partial(int fd) { raw_send(fd, partial_hello, sizeof partial_hello); }

static void test_handshake_deadline_partial(void **state) {
  (void)state;
  expect_server_error(send_partial, 200 * RILL_MSEC, RILL_ETIMEOUT, "i/o timeout");
}

/* Freeing a listener drops the connections still in their handshake (no
 * callback, nothing leaked: ASan checks). */
static void test_listener_free_in_handshake(void **state) {
  (void)state;
  server sv = {0};
  rill_base *base = base_with_server(&sv);
  int fd = raw_connect(sv.port);
  raw_send(fd, partial_hello, sizeof partial_hello);
  for (int i = 0; i < 20; i++)
    TU_RUN(base, RILL_RUN_NOWAIT, 5000);
  rill_tls_listener_free(sv.l);
  for (int i = 0; i < 20; i++)
    TU_RUN(base, RILL_RUN_NOWAIT, 5000);
  assert_int_equal(sv.accepted, 0);
  assert_int_equal(sv.errors, 0);
  char byte;
  assert_true(recv(fd, &byte, 1, 0) <= 0);  /* reset or closed */
  close(fd);
  tu_base_free(base);
}

#endif /* RILL_TEST_HAVE_TLS */

int main(void) {
#ifdef RILL_TEST_HAVE_TLS
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_plaintext_client),
      cmocka_unit_test(test_reset_mid_handshake),
      cmocka_unit_test(test_truncated_handshake),
      cmocka_unit_test(test_handshake_deadline),
      cmocka_unit_test(test_handshake_deadline_partial),
      cmocka_unit_test(test_listener_free_in_handshake),
  };
  return TT_RUN("test_tls_hostile", tests);
#else
  return tt_run("test_tls_hostile", NULL, 0);
#endif
}
