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

static char certs[256];
static const char *cert(const char *name) { return tp_path(certs, name); }

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
  assert_int_equal(rill_tls_config_set_ca_file(cfg, cert("ca.crt")), 0);
  return cfg;
}

static rill_tls_config *server_config(const char *crt, const char *key) {
  rill_tls_config *cfg;
  assert_int_equal(rill_tls_config_new(RILL_TLS_SERVER, &cfg), 0);
  assert_int_equal(rill_tls_config_set_cert_key_files(cfg, cert(crt), cert(key)), 0);
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
  char *argv[16] = {"openssl", "s_server", "-accept", accept, "-cert", (char *)cert(crt), "-key",
                    (char *)cert(key), "-rev", "-quiet", NULL};
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
  FILE *f = fopen(cert("in.txt"), "w");
  assert_non_null(f);
  fputs("ping from s_client\n", f);
  fclose(f);
  char connect[32];
  snprintf(connect, sizeof connect, "127.0.0.1:%d", sv.port);
  char *argv[] = {"openssl", "s_client", "-connect", connect, "-servername", "localhost",
                  "-CAfile", (char *)cert("ca.crt"), "-verify_return_error",
                  "-verify_hostname", "localhost", "-quiet", NULL};
  child_done = 0;
  child_pid = tp_spawn(argv, cert("in.txt"), cert("out.txt"));
  rill_timer *poll;
  assert_int_equal(rill_timer_new(base, poll_child, NULL, &poll), 0);
  assert_int_equal(rill_timer_start(poll, 10 * RILL_MSEC, 10 * RILL_MSEC), 0);
  run_until(base, &child_done, 15000);
  char *out = tp_read_file(cert("out.txt"));
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
                    "127.0.0.1, not wrong.test");
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

static int setup(void **state) {
  (void)state;
  if (tp_certs_make(certs, sizeof certs) != 0) {
    fprintf(stderr, "test_tls: the openssl command is missing or failed\n");
    return -1;
  }
  return 0;
}

static int teardown(void **state) {
  (void)state;
  tp_certs_remove(certs);
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_dial_s_server),
      cmocka_unit_test(test_s_client_dials_listener),
      cmocka_unit_test(test_unknown_authority),
      cmocka_unit_test(test_wrong_host),
      cmocka_unit_test(test_expired),
      cmocka_unit_test(test_close_notify_half_close),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
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
