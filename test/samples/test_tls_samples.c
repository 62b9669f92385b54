/* The TLS samples, run as child processes on loopback, with a rill TLS
 * client verifying them against a throwaway CA (support/tls_peer.c):
 *
 * - samples/echo_server --cert --key echoes over TLS, and after SIGHUP
 *   serves the certificate now in its file without a restart;
 * - samples/echo_server_blocking --cert --key (fibers) echoes over TLS;
 * - samples/proxy terminates TLS (--cert --key) in front of a plain echo
 *   server, and originates it (--upstream-ca) toward a TLS one. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rill.h"
#include "test_util.h"
#include "tls_peer.h"

#define GUARD_MS 30000 /* hang guards only */

#ifdef RILL_TEST_HAVE_TLS


struct child {
  pid_t pid;
  int port;
};

static struct child g_children[3];

/* Starts `argv` with its output in a file and waits until it says where it
 * listens ("listening on 127.0.0.1:PORT"). */
static struct child *start(int slot, char *const argv[]) {
  struct child *c = &g_children[slot];
  char out[300];
  snprintf(out, sizeof out, "%s.%d.out", tp_cert("child"), slot);
  unlink(out);
  c->pid = tp_spawn(argv, NULL, out);
  assert_true(c->pid > 0);
  for (uint64_t t0 = tu_now_ms(); !c->port && tu_now_ms() - t0 < GUARD_MS;) {
    char *text = tp_read_file(out);
    const char *at = text ? strstr(text, "listening on 127.0.0.1:") : NULL;
    if (at)
      c->port = atoi(at + strlen("listening on 127.0.0.1:"));
    free(text);
    if (!c->port)
      tu_sleep_ms(10);
  }
  if (!c->port)
    fail_msg("%s did not say where it listens", argv[0]); /* the teardown kills it */
  return c;
}

struct echo {
  int done;
  int status;
  char text[256];
  char got[64];
  size_t got_len;
  char subject[256];
};

static size_t on_echo(rill_conn *conn, const char *data, size_t len, int status, void *arg) {
  struct echo *e = arg;
  if (status) {
    e->done = 1;
    rill_conn_close(conn);
    return 0;
  }
  size_t n = len < sizeof e->got - 1 - e->got_len ? len : sizeof e->got - 1 - e->got_len;
  memcpy(e->got + e->got_len, data, n);
  e->got_len += n;
  if (e->got_len >= 5) {
    e->done = 1;
    rill_conn_close(conn);
  }
  return len;
}

static void on_dialed(rill_tls_dialer *d, rill_conn *conn, int status, void *arg) {
  static const rill_conn_events events = {.on_read = on_echo};
  struct echo *e = arg;
  e->status = status;
  if (status) {
    rill_tls_dialer_format_error(d, status, e->text, sizeof e->text);
    e->done = 1;
    return;
  }
  rill_tls_conn_peer_subject(conn, e->subject, sizeof e->subject);
  assert_int_equal(rill_conn_start(conn, &events, e), 0);
  assert_int_equal(rill_conn_write(conn, "hello", 5), 0);
}

/* Dials localhost:port over TLS, sends "hello" and reads the echo. */
static void echo_once(int port, struct echo *e) {
  rill_base *base = tu_base_new();
  rill_tls_config *cfg;
  char addr[64];
  rill_socket_config opts = {.timeout = 10 * RILL_SEC};
  memset(e, 0, sizeof *e);
  assert_int_equal(rill_tls_config_new(RILL_TLS_CLIENT, &cfg), 0);
  assert_int_equal(rill_tls_config_set_ca_file(cfg, tp_cert("ca.crt")), 0);
  snprintf(addr, sizeof addr, "localhost:%d", port);
  assert_int_equal(rill_tls_dial(base, "tcp4", addr, &opts, cfg, on_dialed, e, NULL), 0);
  rill_tls_config_unref(cfg);
  TU_RUN(base, RILL_RUN_DEFAULT, GUARD_MS);
  tu_base_free(base);
  if (e->status)
    fail_msg("dial: %s", e->text);
  assert_true(e->done);
  assert_string_equal(e->got, "hello");
}

static void copy_file(const char *from, const char *to) {
  char *text = tp_read_file(from);
  FILE *f = fopen(to, "w");
  assert_non_null(text);
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
  free(text);
}

static void test_echo_server_tls_and_reload(void **state) {
  struct echo e;
  char crt[300], key[300];
  (void)state;
  snprintf(crt, sizeof crt, "%s", tp_cert("served.crt"));
  snprintf(key, sizeof key, "%s", tp_cert("served.key"));
  copy_file(tp_cert("server.crt"), crt);
  copy_file(tp_cert("server.key"), key);
  char *argv[] = {ECHO_SERVER, "--listen", "127.0.0.1:0", "--cert", crt, "--key", key, NULL};
  struct child *c = start(0, argv);
  echo_once(c->port, &e);
  assert_null(strstr(e.subject, "renewed"));
  /* The daemon's certificate and key are renewed in place, then it is told. */
  copy_file(tp_cert("server2.crt"), crt);
  copy_file(tp_cert("server2.key"), key);
  assert_int_equal(kill(c->pid, SIGHUP), 0);
  for (uint64_t t0 = tu_now_ms(); tu_now_ms() - t0 < GUARD_MS;) {
    echo_once(c->port, &e);
    if (strstr(e.subject, "renewed"))
      return;
    tu_sleep_ms(20); /* the signal may not have been handled yet */
  }
  char out[300];
  snprintf(out, sizeof out, "%s.0.out", tp_cert("child"));
  char *said = tp_read_file(out);
  fail_msg("after SIGHUP the server still presents %s; it said:\n%s", e.subject, said ? said : "");
}

static void test_echo_server_blocking_tls(void **state) {
  struct echo e;
  (void)state;
  char *argv[] = {ECHO_SERVER_BLOCKING, "--listen", "127.0.0.1:0", "--cert",
                  (char *)tp_cert("server.crt"), "--key", (char *)tp_cert("server.key"), NULL};
  struct child *c = start(0, argv);
  echo_once(c->port, &e);
}

/* client --TLS--> proxy --plain--> echo_server, and
 * client --TLS--> proxy --TLS--> echo_server --cert. */
static void test_proxy_tls_both_ways(void **state) {
  struct echo e;
  char upstream[64], tls_upstream[64];
  (void)state;
  char *plain_echo[] = {ECHO_SERVER, "--listen", "127.0.0.1:0", NULL};
  struct child *echo = start(0, plain_echo);
  snprintf(upstream, sizeof upstream, "127.0.0.1:%d", echo->port);
  char *terminating[] = {PROXY, "--listen", "127.0.0.1:0", "--upstream", upstream, "--cert",
                         (char *)tp_cert("server.crt"), "--key", (char *)tp_cert("server.key"),
                         NULL};
  struct child *proxy = start(1, terminating);
  echo_once(proxy->port, &e);

  char *tls_echo[] = {ECHO_SERVER, "--listen", "127.0.0.1:0", "--cert", (char *)tp_cert("server.crt"),
                      "--key", (char *)tp_cert("server.key"), NULL};
  struct child *secure = start(2, tls_echo);
  snprintf(tls_upstream, sizeof tls_upstream, "localhost:%d", secure->port);
  tp_kill(proxy->pid);
  proxy->port = 0;
  char *both[] = {PROXY, "--listen", "127.0.0.1:0", "--upstream", tls_upstream, "--upstream-ca",
                  (char *)tp_cert("ca.crt"), "--cert", (char *)tp_cert("server.crt"), "--key",
                  (char *)tp_cert("server.key"), NULL};
  proxy = start(1, both);
  echo_once(proxy->port, &e);
}

static int teardown_children(void **state) {
  (void)state;
  for (int i = 0; i < 3; i++) {
    if (g_children[i].pid > 0)
      tp_kill(g_children[i].pid);
    g_children[i].pid = 0;
    g_children[i].port = 0;
  }
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_echo_server_tls_and_reload, teardown_children),
      cmocka_unit_test_teardown(test_echo_server_blocking_tls, teardown_children),
      cmocka_unit_test_teardown(test_proxy_tls_both_ways, teardown_children),
  };
  return cmocka_run_group_tests(tests, tp_certs_setup, tp_certs_teardown);
}

#else

int main(void) {
  printf("test_tls_samples: rill built without TLS: nothing to run\n");
  return 0;
}

#endif
