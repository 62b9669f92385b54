/* TLS under rill_conn, the data path, rill against itself: half-close by
 * close_notify, megabytes through a write queue with a small read_max, and
 * rill_pipe between a TLS and a plain connection. */
#include "tls_test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifdef RILL_TEST_HAVE_TLS

/* rill to rill: the client sends and half-closes (close_notify, then
 * FIN); the server reads everything, then RILL_EOF, answers and closes;
 * the client reads the answer and RILL_EOF. */
static void test_close_notify_half_close(void **state) {
  (void)state;
  server sv = {0};
  rill_base *base = base_with_server(&sv);
  rill_tls_config *cfg = client_config();
  side c = {0};
  dial_result r = {.s = &c, .send = "question"};
  dial_ok(base, cfg, sv.port, &r);
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
  server_end(base, &sv);
  rill_tls_config_unref(cfg);
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
  server sv = {.echo = 1};
  rill_base *base = base_with_server(&sv);
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
  server_end(base, &sv);  /* the echo side closes at EOF */
  assert_int_equal(sv.sides[0].read_status, RILL_EOF);
  rill_tls_config_unref(ccfg);
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

#endif /* RILL_TEST_HAVE_TLS */

int main(void) {
#ifdef RILL_TEST_HAVE_TLS
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_close_notify_half_close),
      cmocka_unit_test(test_bulk_echo),
      cmocka_unit_test(test_tls_proxy_pipe),
  };
  return TT_RUN("test_tls_data", tests);
#else
  return tt_run("test_tls_data", NULL, 0);
#endif
}
