/* TLS under rill_conn against real peers on loopback: `openssl s_server`
 * (rill dials it), `openssl s_client` (it dials a rill TLS listener), and
 * rill against itself for the cases a stock peer cannot make (half-close,
 * resumption, reload, hostile clients). Certificates come from a throwaway
 * CA made at test time (support/tls_peer.c). Built without TLS, the tests
 * check RILL_ENOTSUP and skip. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rill.h"
#include "test_util.h"
#include "tls_peer.h"

#ifdef RILL_TEST_HAVE_TLS


/* ---- one side of a connection, as the tests drive it ------------------ */

typedef struct side {
  rill_conn *conn;
  char in[1 << 16];
  size_t in_len;
  int read_status;  /* 0, or the terminal status on_read reported */
  int closed;
  const char *expect;  /* close the write side (or all) once this much arrived */
  int echo;            /* write back what arrives */
  int close_after;     /* 1: rill_conn_close once `expect` arrived; 2: close_write */
} side;

static size_t side_read(rill_conn *conn, const char *data, size_t len, int status, void *arg) {
  side *s = arg;
  if (status) {
    s->read_status = status;
    if (s->echo)
      rill_conn_close(conn);  /* an echo server ends when its client does */
    return 0;
  }
  size_t room = sizeof s->in - 1 - s->in_len;
  size_t n = len < room ? len : room;
  memcpy(s->in + s->in_len, data, n);
  s->in_len += n;
  s->in[s->in_len] = '\0';
  if (s->echo)
    assert_int_equal(rill_conn_write(conn, data, len), 0);
  if (s->expect && s->in_len >= strlen(s->expect)) {
    if (s->close_after == 1)
      rill_conn_close(conn);
    else if (s->close_after == 2)
      rill_conn_close_write(conn);
  }
  return len;
}

static void side_close(rill_conn *conn, void *arg) {
  (void)conn;
  side *s = arg;
  s->closed = 1;
}

static const rill_conn_events side_events = {.on_read = side_read, .on_close = side_close};

static void side_start(side *s, rill_conn *conn) {
  s->conn = conn;
  assert_int_equal(rill_conn_start(conn, &side_events, s), 0);
}

/* ---- dialing ------------------------------------------------------------ */

typedef struct dial_result {
  int done;
  int status;
  char text[512];
  rill_conn *conn;
  side *s;          /* started on success, when set */
  const char *send; /* written on success */
} dial_result;

static void on_dialed(rill_tls_dialer *d, rill_conn *conn, int status, void *arg) {
  dial_result *r = arg;
  r->done = 1;
  r->status = status;
  r->conn = conn;
  if (status)
    rill_tls_dialer_format_error(d, status, r->text, sizeof r->text);
  if (!status && r->s) {
    side_start(r->s, conn);
    if (r->send)
      assert_int_equal(rill_conn_write(conn, r->send, strlen(r->send)), 0);
  }
}

static rill_tls_config *client_config(void) {
  rill_tls_config *cfg;
  assert_int_equal(rill_tls_config_new(RILL_TLS_CLIENT, &cfg), 0);
  assert_int_equal(rill_tls_config_set_ca_file(cfg, tp_cert("ca.crt")), 0);
  return cfg;
}

static rill_tls_config *server_config(const char *crt, const char *key) {
  rill_tls_config *cfg;
  assert_int_equal(rill_tls_config_new(RILL_TLS_SERVER, &cfg), 0);
  assert_int_equal(rill_tls_config_set_cert_key_files(cfg, tp_cert(crt), tp_cert(key)), 0);
  return cfg;
}

/* Runs the base until `*flag` is set, at most `ms`. */
static void run_until(rill_base *base, const int *flag, unsigned ms) {
  uint64_t end = tu_now_ms() + ms;
  while (!*flag && tu_now_ms() < end)
    TU_RUN(base, RILL_RUN_ONCE, 5000);
  assert_true(*flag);
}

/* ---- a rill TLS listener ------------------------------------------------ */

typedef struct server {
  rill_tls_listener *l;
  side sides[4];
  int accepted;
  int errors;
  int last_error;
  char error_text[256];
  int port;
  int echo;
  int close_after;
  const char *expect;
} server;

static void on_accepted(rill_tls_listener *l, rill_conn *conn, int status, void *arg) {
  (void)l;
  server *sv = arg;
  assert_int_equal(status, 0);
  assert_true(sv->accepted < 4);
  side *s = &sv->sides[sv->accepted++];
  s->echo = sv->echo;
  s->close_after = sv->close_after;
  s->expect = sv->expect;
  side_start(s, conn);
}

static void on_hs_error(rill_tls_listener *l, int err, const char *text, void *arg) {
  (void)l;
  server *sv = arg;
  sv->errors++;
  sv->last_error = err;
  snprintf(sv->error_text, sizeof sv->error_text, "%s", text);
}

static void server_start(rill_base *base, server *sv, rill_tls_config *cfg) {
  assert_int_equal(rill_tls_listen(base, "tcp", "127.0.0.1:0", NULL, cfg, on_accepted, sv, &sv->l), 0);
  assert_int_equal(rill_tls_listener_set_error_hook(sv->l, on_hs_error, sv), 0);
  sv->port = rill_listener_port(rill_tls_listener_listener(sv->l));
  assert_true(sv->port > 0);
}

static void dial_port(rill_base *base, rill_tls_config *cfg, const char *host, int port, dial_result *r) {
  char addr[128];
  snprintf(addr, sizeof addr, "%s:%d", host, port);
  rill_socket_config opts = {.timeout = 10 * RILL_SEC};
  assert_int_equal(rill_tls_dial(base, "tcp4", addr, &opts, cfg, on_dialed, r, NULL), 0);
}

/* ---- openssl s_server --------------------------------------------------- */

static pid_t s_server(const char *crt, const char *key, int *port, const char *extra) {
  *port = tp_free_port();
  char accept[32];
  snprintf(accept, sizeof accept, "127.0.0.1:%d", *port);
  char *argv[16] = {"openssl", "s_server", "-accept", accept, "-cert", (char *)tp_cert(crt), "-key",
                    (char *)tp_cert(key), "-rev", "-quiet", NULL};
  if (extra) {
    argv[10] = (char *)extra;
    argv[11] = NULL;
  }
  pid_t pid = tp_spawn(argv, NULL, NULL);
  assert_true(pid > 0);
  if (tp_wait_port(*port, 10000) != 0) {
    tp_kill(pid);
    fail_msg("openssl s_server did not start");
  }
  return pid;
}

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
  dial_port(base, cfg, "localhost", port, &r);
  rill_tls_config_unref(cfg);  /* the dial holds its own reference */
  run_until(base, &r.done, 15000);
  assert_int_equal(r.status, 0);
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

/* `openssl s_client` dials a rill TLS listener, verifying it; the listener
 * echoes and closes gracefully (close_notify), which ends s_client. */
static int child_done;
static pid_t child_pid;
static void poll_child(rill_timer *t, void *arg) {
  (void)arg;
  if (tp_exited(child_pid) >= 0) {
    child_done = 1;
    rill_timer_stop(t);
  }
}

static void test_s_client_dials_listener(void **state) {
  (void)state;
  rill_base *base = tu_base_new();
  rill_tls_config *cfg = server_config("server.crt", "server.key");
  server sv = {.echo = 1, .close_after = 1, .expect = "ping from s_client\n"};
  server_start(base, &sv, cfg);
  rill_tls_config_unref(cfg);
  FILE *f = fopen(tp_cert("in.txt"), "w");
  assert_non_null(f);
  fputs("ping from s_client\n", f);
  fclose(f);
  char connect[32];
  snprintf(connect, sizeof connect, "127.0.0.1:%d", sv.port);
  char *argv[] = {"openssl", "s_client", "-connect", connect, "-servername", "localhost",
                  "-CAfile", (char *)tp_cert("ca.crt"), "-verify_return_error",
                  "-verify_hostname", "localhost", "-quiet", NULL};
  child_done = 0;
  child_pid = tp_spawn(argv, tp_cert("in.txt"), tp_cert("out.txt"));
  rill_timer *poll;
  assert_int_equal(rill_timer_new(base, poll_child, NULL, &poll), 0);
  assert_int_equal(rill_timer_start(poll, 10 * RILL_MSEC, 10 * RILL_MSEC), 0);
  run_until(base, &child_done, 15000);
  char *out = tp_read_file(tp_cert("out.txt"));
  assert_non_null(out);
  if (!strstr(out, "ping from s_client\n"))
    fail_msg("s_client printed: %s", out);
  free(out);
  assert_int_equal(sv.accepted, 1);
  assert_int_equal(sv.errors, 0);
  assert_string_equal(sv.sides[0].in, "ping from s_client\n");
  rill_timer_free(poll);
  rill_tls_listener_free(sv.l);
  run_until(base, &sv.sides[0].closed, 5000);
  tu_base_free(base);
}

/* Verification failures, each with Go's text. */
static void expect_dial_error(const char *crt, const char *key, const char *server_name,
                              int want, const char *want_text) {
  rill_base *base = tu_base_new();
  rill_tls_config *scfg = server_config(crt, key);
  server sv = {0};
  server_start(base, &sv, scfg);
  rill_tls_config_unref(scfg);
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

/* rill to rill: the client sends and half-closes (close_notify, then
 * FIN); the server reads everything, then RILL_EOF, answers and closes;
 * the client reads the answer and RILL_EOF. */
static void test_close_notify_half_close(void **state) {
  (void)state;
  rill_base *base = tu_base_new();
  rill_tls_config *scfg = server_config("server.crt", "server.key");
  server sv = {0};
  server_start(base, &sv, scfg);
  rill_tls_config *cfg = client_config();
  side c = {0};
  dial_result r = {.s = &c, .send = "question"};
  dial_port(base, cfg, "localhost", sv.port, &r);
  run_until(base, &r.done, 15000);
  assert_int_equal(r.status, 0);
  assert_int_equal(rill_conn_close_write(r.conn), 0);
  assert_int_equal(rill_conn_write(r.conn, "x", 1), RILL_EPIPE);
  run_until(base, &sv.accepted, 5000);
  side *s = &sv.sides[0];
  run_until(base, &s->read_status, 5000);
  assert_int_equal(s->read_status, RILL_EOF);
  assert_string_equal(s->in, "question");
  assert_int_equal(rill_conn_write(s->conn, "answer", 6), 0);
  assert_int_equal(rill_conn_close(s->conn), 0);
  run_until(base, &c.read_status, 5000);
  assert_int_equal(c.read_status, RILL_EOF);
  assert_string_equal(c.in, "answer");
  rill_conn_close(r.conn);
  run_until(base, &c.closed, 5000);
  run_until(base, &s->closed, 5000);
  rill_tls_listener_free(sv.l);
  rill_tls_config_unref(scfg);
  rill_tls_config_unref(cfg);
  tu_base_free(base);
}

/* ---- hostile and broken clients ----------------------------------------- */

static int raw_connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sa.sin_port = htons((unsigned short)port);
  assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
  return fd;
}

static void raw_send(int fd, const void *data, size_t len) {
  assert_int_equal(send(fd, data, len, MSG_NOSIGNAL), (ssize_t)len);
}

static void raw_reset(int fd) {
  struct linger lg = {1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  close(fd);
}

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

/* ---- ALPN, client certificates, SNI --------------------------------------- */

typedef struct pair {
  rill_base *base;
  server sv;
  side client;
  dial_result r;
} pair;

/* Dials a fresh listener of `scfg` with `ccfg`; both sides' results in p. */
static void pair_dial(pair *p, rill_tls_config *scfg, rill_tls_config *ccfg, const char *send) {
  p->base = tu_base_new();
  server_start(p->base, &p->sv, scfg);
  p->r.s = &p->client;
  p->r.send = send;
  dial_port(p->base, ccfg, "localhost", p->sv.port, &p->r);
  run_until(p->base, &p->r.done, 15000);
}

static void pair_end(pair *p) {
  if (p->r.status == 0) {
    rill_conn_close(p->r.conn);
    run_until(p->base, &p->client.closed, 5000);
  }
  for (int i = 0; i < p->sv.accepted; i++) {
    if (!p->sv.sides[i].closed)
      rill_conn_close(p->sv.sides[i].conn);
    run_until(p->base, &p->sv.sides[i].closed, 5000);
  }
  rill_tls_listener_free(p->sv.l);
  tu_base_free(p->base);
}

static void test_alpn(void **state) {
  (void)state;
  const char *server_protos[] = {"h2", "http/1.1"};
  const char *client_protos[] = {"http/1.1", "h2"};
  rill_tls_config *scfg = server_config("server.crt", "server.key");
  assert_int_equal(rill_tls_config_set_alpn(scfg, server_protos, 2), 0);
  rill_tls_config *ccfg = client_config();
  assert_int_equal(rill_tls_config_set_alpn(ccfg, client_protos, 2), 0);
  pair p = {0};
  pair_dial(&p, scfg, ccfg, NULL);
  assert_int_equal(p.r.status, 0);
  char proto[32];
  assert_int_equal(rill_tls_conn_alpn(p.r.conn, proto, sizeof proto), 2);
  assert_string_equal(proto, "h2");  /* the server's preference */
  run_until(p.base, &p.sv.accepted, 5000);
  assert_int_equal(rill_tls_conn_alpn(p.sv.sides[0].conn, proto, sizeof proto), 2);
  assert_string_equal(proto, "h2");
  pair_end(&p);
  /* Nothing in common: the server refuses, as Go's does. */
  const char *other[] = {"spdy/3"};
  assert_int_equal(rill_tls_config_set_alpn(ccfg, other, 1), 0);
  pair q = {0};
  pair_dial(&q, scfg, ccfg, NULL);
  assert_int_equal(q.r.status, RILL_ETLS_NO_ALPN);
  run_until(q.base, &q.sv.errors, 5000);
  assert_int_equal(q.sv.last_error, RILL_ETLS_NO_ALPN);
  pair_end(&q);
  rill_tls_config_unref(scfg);
  rill_tls_config_unref(ccfg);
}

static void test_client_cert(void **state) {
  (void)state;
  rill_tls_config *scfg = server_config("server.crt", "server.key");
  assert_int_equal(rill_tls_config_set_ca_file(scfg, tp_cert("ca.crt")), 0);
  assert_int_equal(rill_tls_config_set_client_auth(scfg, RILL_TLS_REQUIRE_AND_VERIFY_CLIENT_CERT), 0);
  rill_tls_config *ccfg = client_config();
  assert_int_equal(rill_tls_config_set_cert_key_files(ccfg, tp_cert("client.crt"), tp_cert("client.key")), 0);
  pair p = {0};
  pair_dial(&p, scfg, ccfg, "hi");
  assert_int_equal(p.r.status, 0);
  run_until(p.base, &p.sv.accepted, 5000);
  char subject[64];
  assert_true(rill_tls_conn_peer_subject(p.sv.sides[0].conn, subject, sizeof subject) > 0);
  assert_string_equal(subject, "CN=rill client");
  pair_end(&p);
  /* Without a certificate the server refuses; on_accept never hears. In
   * TLS 1.3 the client finishes first and learns it from the alert. */
  rill_tls_config *bare = client_config();
  pair q = {0};
  pair_dial(&q, scfg, bare, "hi");
  run_until(q.base, &q.sv.errors, 5000);
  assert_int_equal(q.sv.last_error, RILL_ETLS_CERT_REQUIRED);
  assert_int_equal(q.sv.accepted, 0);
  if (q.r.status == 0) {
    run_until(q.base, &q.client.read_status, 5000);
    assert_int_equal(q.client.read_status, RILL_ETLS_REMOTE_BAD_CERT);
  }
  pair_end(&q);
  rill_tls_config_unref(scfg);
  rill_tls_config_unref(ccfg);
  rill_tls_config_unref(bare);
}

static rill_tls_config *other_cfg;
static int sni_calls;
static rill_tls_config *pick(const char *name, void *arg) {
  (void)arg;
  sni_calls++;
  return strcmp(name, "other.test") == 0 ? other_cfg : NULL;
}

static void test_sni(void **state) {
  (void)state;
  rill_tls_config *scfg = server_config("server.crt", "server.key");
  other_cfg = server_config("other.crt", "other.key");
  assert_int_equal(rill_tls_config_set_sni_callback(scfg, pick, NULL), 0);
  rill_tls_config *ccfg = client_config();
  assert_int_equal(rill_tls_config_set_server_name(ccfg, "other.test"), 0);
  pair p = {0};
  pair_dial(&p, scfg, ccfg, NULL);
  assert_int_equal(p.r.status, 0);
  char text[64];
  assert_true(rill_tls_conn_peer_subject(p.r.conn, text, sizeof text) > 0);
  assert_string_equal(text, "CN=other.test");
  run_until(p.base, &p.sv.accepted, 5000);
  assert_int_equal(rill_tls_conn_server_name(p.sv.sides[0].conn, text, sizeof text), 10);
  assert_string_equal(text, "other.test");
  assert_true(sni_calls >= 1);
  pair_end(&p);
  rill_tls_config_unref(scfg);
  rill_tls_config_unref(other_cfg);
  rill_tls_config_unref(ccfg);
}

/* ---- resumption and reload ------------------------------------------------ */

/* One echo round over a fresh dial of `port`; the subject the server
 * showed and whether the session was resumed. */
static int echo_round(rill_base *base, server *sv, rill_tls_config *ccfg, char *subject, size_t size) {
  side c = {.expect = "ping", .close_after = 1};
  dial_result r = {.s = &c, .send = "ping"};
  dial_port(base, ccfg, "localhost", sv->port, &r);
  run_until(base, &r.done, 15000);
  assert_int_equal(r.status, 0);
  int resumed = rill_tls_conn_resumed(r.conn);
  if (subject)
    assert_true(rill_tls_conn_peer_subject(r.conn, subject, size) > 0);
  /* The echo also brings the ticket (TLS 1.3 sends it after the handshake). */
  run_until(base, &c.closed, 5000);
  assert_string_equal(c.in, "ping");
  return resumed;
}

static void test_resumption(void **state) {
  (void)state;
  rill_base *base = tu_base_new();
  rill_tls_config *scfg = server_config("server.crt", "server.key");
  server sv = {.echo = 1};
  server_start(base, &sv, scfg);
  rill_tls_config *ccfg = client_config();
  assert_int_equal(echo_round(base, &sv, ccfg, NULL, 0), 0);
  assert_int_equal(echo_round(base, &sv, ccfg, NULL, 0), 1);
  /* With the cache off, every handshake is full. */
  rill_tls_config *nocache = client_config();
  assert_int_equal(rill_tls_config_set_session_cache(nocache, 0), 0);
  assert_int_equal(echo_round(base, &sv, nocache, NULL, 0), 0);
  assert_int_equal(echo_round(base, &sv, nocache, NULL, 0), 0);
  for (int i = 0; i < sv.accepted; i++)
    run_until(base, &sv.sides[i].closed, 5000);
  rill_tls_listener_free(sv.l);
  rill_tls_config_unref(scfg);
  rill_tls_config_unref(ccfg);
  rill_tls_config_unref(nocache);
  tu_base_free(base);
}

static void copy_file(const char *from, const char *to) {
  char *data = tp_read_file(from);
  assert_non_null(data);
  FILE *f = fopen(to, "w");
  assert_non_null(f);
  fputs(data, f);
  fclose(f);
  free(data);
}

static void test_reload(void **state) {
  (void)state;
  copy_file(tp_cert("server.crt"), tp_cert("live.crt"));
  copy_file(tp_cert("server.key"), tp_cert("live.key"));
  rill_base *base = tu_base_new();
  rill_tls_config *scfg = server_config("live.crt", "live.key");
  server sv = {.echo = 1};
  server_start(base, &sv, scfg);
  rill_tls_config *ccfg = client_config();
  assert_int_equal(rill_tls_config_set_session_cache(ccfg, 0), 0);
  char subject[64];
  echo_round(base, &sv, ccfg, subject, sizeof subject);
  assert_string_equal(subject, "CN=localhost");
  copy_file(tp_cert("server2.crt"), tp_cert("live.crt"));
  copy_file(tp_cert("server2.key"), tp_cert("live.key"));
  assert_int_equal(rill_tls_config_reload(scfg), 0);
  echo_round(base, &sv, ccfg, subject, sizeof subject);
  assert_string_equal(subject, "CN=renewed");
  /* A bad file: the reload fails and the pair in use stays. */
  FILE *f = fopen(tp_cert("live.crt"), "w");
  assert_non_null(f);
  fputs("not a certificate\n", f);
  fclose(f);
  assert_int_equal(rill_tls_config_reload(scfg), RILL_ETLS_CONFIG);
  echo_round(base, &sv, ccfg, subject, sizeof subject);
  assert_string_equal(subject, "CN=renewed");
  for (int i = 0; i < sv.accepted; i++)
    run_until(base, &sv.sides[i].closed, 5000);
  rill_tls_listener_free(sv.l);
  rill_tls_config_unref(scfg);
  rill_tls_config_unref(ccfg);
  tu_base_free(base);
}

/* ---- bulk: many records, a queue, small read_max --------------------------- */

typedef struct bulk {
  size_t total;
  size_t got;
  int bad;
  int drained;
  int status;
} bulk;

static size_t bulk_read(rill_conn *conn, const char *data, size_t len, int status, void *arg) {
  (void)conn;
  bulk *b = arg;
  if (status) {
    b->status = status;
    return 0;
  }
  /* Leave up to 4999 bytes unused each time (the end excepted): they are
   * held and come again, and the room left for the next read (read_max
   * 20000) is then less than a record, so OpenSSL keeps plaintext that the
   * socket will not signal. */
  size_t n = len >= 5000 ? len - 4999 : 0;
  if (b->got + len == b->total)
    n = len;
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)data[i] != (unsigned char)((b->got + i) * 7))
      b->bad = 1;
  b->got += n;
  return n;
}

static void bulk_drain(rill_conn *conn, void *arg) {
  (void)conn;
  ((bulk *)arg)->drained = 1;
}

static void test_bulk_echo(void **state) {
  (void)state;
  enum { total = 4 << 20 };
  rill_base *base = tu_base_new();
  rill_tls_config *scfg = server_config("server.crt", "server.key");
  server sv = {.echo = 1};
  server_start(base, &sv, scfg);
  rill_tls_config *ccfg = client_config();
  dial_result r = {0};
  char addr[64];
  snprintf(addr, sizeof addr, "localhost:%d", sv.port);
  rill_socket_config opts = {.timeout = 10 * RILL_SEC, .read_max = 20000};
  assert_int_equal(rill_tls_dial(base, "tcp4", addr, &opts, ccfg, on_dialed, &r, NULL), 0);
  run_until(base, &r.done, 15000);
  assert_int_equal(r.status, 0);
  bulk b = {.total = total};
  rill_conn_events ev = {.on_read = bulk_read, .on_drain = bulk_drain};
  assert_int_equal(rill_conn_start(r.conn, &ev, &b), 0);
  char *data = malloc(total);
  assert_non_null(data);
  for (size_t i = 0; i < total; i++)
    data[i] = (char)(i * 7);
  assert_int_equal(rill_conn_write(r.conn, data, total), 0);
  free(data);
  uint64_t end = tu_now_ms() + 60000;
  while (b.got < total && !b.status && tu_now_ms() < end)
    TU_RUN(base, RILL_RUN_ONCE, 5000);
  assert_int_equal(b.status, 0);
  assert_int_equal(b.got, total);
  assert_false(b.bad);
  assert_int_equal(rill_conn_bytes_written(r.conn), total);
  assert_true(rill_conn_bytes_read(r.conn) >= total);
  rill_conn_close(r.conn);
  run_until(base, &sv.sides[0].closed, 5000);  /* the echo side closes at EOF */
  assert_int_equal(sv.sides[0].read_status, RILL_EOF);
  rill_tls_listener_free(sv.l);
  rill_tls_config_unref(scfg);
  rill_tls_config_unref(ccfg);
  tu_base_free(base);
}

/* ---- the dial's own bounds -------------------------------------------------- */

/* A plain TCP listener that accepts and never answers: a TLS server that
 * hangs in the handshake. */
static int silent_listener(int *port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof sa;
  assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
  assert_int_equal(listen(fd, 8), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
  *port = ntohs(sa.sin_port);
  return fd;
}

/* The dial's timeout covers the handshake (Go's DialWithDialer). */
static void test_dial_timeout_in_handshake(void **state) {
  (void)state;
  int port;
  int lfd = silent_listener(&port);
  rill_base *base = tu_base_new();
  rill_tls_config *cfg = client_config();
  char addr[64];
  snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
  rill_socket_config opts = {.timeout = 300 * RILL_MSEC};
  dial_result r = {0};
  uint64_t start = tu_now_ms();
  assert_int_equal(rill_tls_dial(base, "tcp", addr, &opts, cfg, on_dialed, &r, NULL), 0);
  run_until(base, &r.done, 15000);
  assert_int_equal(r.status, RILL_ETIMEOUT);
  assert_string_equal(r.text, "tls: DialWithDialer timed out");
  assert_true(tu_now_ms() - start >= 295);
  rill_tls_config_unref(cfg);
  tu_base_free(base);
  close(lfd);
}

/* A cancel during the handshake reports RILL_ECANCELED once, from the
 * loop, never from inside the cancel. */
static void test_dial_cancel_in_handshake(void **state) {
  (void)state;
  int port;
  int lfd = silent_listener(&port);
  rill_base *base = tu_base_new();
  rill_tls_config *cfg = client_config();
  char addr[64];
  snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
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

/* Freeing a listener drops the connections still in their handshake (no
 * callback, nothing leaked: ASan checks). */
static void test_listener_free_in_handshake(void **state) {
  (void)state;
  rill_base *base = tu_base_new();
  rill_tls_config *cfg = server_config("server.crt", "server.key");
  server sv = {0};
  server_start(base, &sv, cfg);
  rill_tls_config_unref(cfg);
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

/* ---- a TLS proxy: rill_pipe between a TLS and a plain connection ------------- */

typedef struct proxy {
  rill_conn *backend;  /* plain TCP to the echo server */
  rill_pipe *pipe;
  int spliced;
  int done;
  int status;
} proxy;

static void on_pipe_done(rill_pipe *pipe, const rill_pipe_result *result, void *arg) {
  (void)pipe;
  proxy *px = arg;
  px->done = 1;
  px->status = result->status;
}

static void on_proxy_accept(rill_tls_listener *l, rill_conn *conn, int status, void *arg) {
  (void)l;
  proxy *px = arg;
  assert_int_equal(status, 0);
  assert_int_equal(rill_pipe_start(conn, px->backend, NULL, on_pipe_done, px, &px->pipe), 0);
  px->spliced = rill_pipe_spliced(px->pipe);
}

static void on_backend(rill_dialer *d, rill_conn *conn, int status, void *arg) {
  (void)d;
  assert_int_equal(status, 0);
  ((proxy *)arg)->backend = conn;
}

static server echo_backend;
static void on_plain_accept(rill_listener *l, rill_conn *conn, int status, void *arg) {
  (void)l;
  (void)arg;
  assert_int_equal(status, 0);
  side *s = &echo_backend.sides[echo_backend.accepted++];
  s->echo = 1;
  side_start(s, conn);
}

/* The pipe must copy through user space: splicing the TLS socket would
 * hand records to the plain side. */
static void test_tls_proxy_pipe(void **state) {
  (void)state;
  rill_base *base = tu_base_new();
  memset(&echo_backend, 0, sizeof echo_backend);
  rill_listener *plain;
  assert_int_equal(rill_listen(base, "tcp", "127.0.0.1:0", NULL, on_plain_accept, NULL, &plain), 0);
  char addr[64];
  snprintf(addr, sizeof addr, "127.0.0.1:%d", rill_listener_port(plain));
  proxy px = {0};
  assert_int_equal(rill_dial(base, "tcp", addr, NULL, on_backend, &px, NULL), 0);
  uint64_t end = tu_now_ms() + 10000;
  while (!px.backend && tu_now_ms() < end)
    TU_RUN(base, RILL_RUN_ONCE, 5000);
  assert_non_null(px.backend);
  rill_tls_config *scfg = server_config("server.crt", "server.key");
  rill_tls_listener *l;
  assert_int_equal(rill_tls_listen(base, "tcp", "127.0.0.1:0", NULL, scfg, on_proxy_accept, &px, &l), 0);
  rill_tls_config *ccfg = client_config();
  side c = {.expect = "through the proxy", .close_after = 1};
  dial_result r = {.s = &c, .send = "through the proxy"};
  dial_port(base, ccfg, "localhost", rill_listener_port(rill_tls_listener_listener(l)), &r);
  run_until(base, &c.closed, 15000);
  assert_string_equal(c.in, "through the proxy");
  assert_int_equal(px.spliced, 0);
  run_until(base, &px.done, 5000);
  run_until(base, &echo_backend.sides[0].closed, 5000);
  rill_tls_listener_free(l);
  rill_listener_free(plain);
  rill_tls_config_unref(scfg);
  rill_tls_config_unref(ccfg);
  tu_base_free(base);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_dial_s_server),
      cmocka_unit_test(test_s_client_dials_listener),
      cmocka_unit_test(test_unknown_authority),
      cmocka_unit_test(test_wrong_host),
      cmocka_unit_test(test_expired),
      cmocka_unit_test(test_close_notify_half_close),
      cmocka_unit_test(test_plaintext_client),
      cmocka_unit_test(test_reset_mid_handshake),
      cmocka_unit_test(test_truncated_handshake),
      cmocka_unit_test(test_handshake_deadline),
      cmocka_unit_test(test_handshake_deadline_partial),
      cmocka_unit_test(test_alpn),
      cmocka_unit_test(test_client_cert),
      cmocka_unit_test(test_sni),
      cmocka_unit_test(test_resumption),
      cmocka_unit_test(test_reload),
      cmocka_unit_test(test_bulk_echo),
      cmocka_unit_test(test_dial_timeout_in_handshake),
      cmocka_unit_test(test_dial_cancel_in_handshake),
      cmocka_unit_test(test_listener_free_in_handshake),
      cmocka_unit_test(test_tls_proxy_pipe),
  };
  /* TEST_TLS_FILTER=test_alpn runs one (cmocka's pattern). */
  if (getenv("TEST_TLS_FILTER"))
    cmocka_set_test_filter(getenv("TEST_TLS_FILTER"));
  return cmocka_run_group_tests(tests, tp_certs_setup, tp_certs_teardown);
}

#else /* built without TLS */

static void test_not_supported(void **state) {
  (void)state;
  rill_tls_config *cfg = NULL;
  assert_int_equal(rill_tls_config_new(RILL_TLS_CLIENT, &cfg), RILL_ENOTSUP);
  assert_string_equal(rill_strerror(RILL_ENOTSUP), "not supported");
}

int main(void) {
  printf("test_tls: rill built without TLS (RILL_WITH_TLS=OFF or no OpenSSL): "
         "checking RILL_ENOTSUP only\n");
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_not_supported)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}

#endif
