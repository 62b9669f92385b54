/* TLS under rill_conn, the server side: `openssl s_client` dials a rill
 * TLS listener; ALPN selection, client certificates, SNI selection and
 * certificate reload, rill against itself. */
#include "tls_test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifdef RILL_TEST_HAVE_TLS

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
  server sv = {.echo = 1, .close_after = 1, .expect = "ping from s_client\n"};
  rill_base *base = base_with_server(&sv);
  FILE *f = fopen(tp_cert("in.txt"), "w");
  assert_non_null(f);
  fputs("ping from s_client\n", f);
  fclose(f);
  static const char *const verify_quiet[] = {"-verify_hostname", "localhost", "-quiet", NULL};
  child_done = 0;
  child_pid = s_client_args(sv.port, verify_quiet, tp_cert("in.txt"), tp_cert("out.txt"));
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

/* ---- certificate reload ------------------------------------------------- */

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
  server_end(base, &sv);
  rill_tls_config_unref(scfg);
  rill_tls_config_unref(ccfg);
  tu_base_free(base);
}

#endif /* RILL_TEST_HAVE_TLS */

int main(void) {
#ifdef RILL_TEST_HAVE_TLS
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_s_client_dials_listener),
      cmocka_unit_test(test_alpn),
      cmocka_unit_test(test_client_cert),
      cmocka_unit_test(test_sni),
      cmocka_unit_test(test_reload),
  };
  return TT_RUN("test_tls_listen", tests);
#else
  return tt_run("test_tls_listen", NULL, 0);
#endif
}
