/* The TLS tests' shared helpers (tls_test.h). */
#include "tls_test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifdef RILL_TEST_HAVE_TLS

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

void side_start(side *s, rill_conn *conn) {
  s->conn = conn;
  assert_int_equal(rill_conn_start(conn, &side_events, s), 0);
}

void on_dialed(rill_tls_dialer *d, rill_conn *conn, int status, void *arg) {
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

rill_tls_config *client_config(void) {
  rill_tls_config *cfg;
  assert_int_equal(rill_tls_config_new(RILL_TLS_CLIENT, &cfg), 0);
  assert_int_equal(rill_tls_config_set_ca_file(cfg, tp_cert("ca.crt")), 0);
  return cfg;
}

rill_tls_config *server_config(const char *crt, const char *key) {
  rill_tls_config *cfg;
  assert_int_equal(rill_tls_config_new(RILL_TLS_SERVER, &cfg), 0);
  assert_int_equal(rill_tls_config_set_cert_key_files(cfg, tp_cert(crt), tp_cert(key)), 0);
  return cfg;
}

/* Runs the base until `*flag` is set, at most `ms`. */
void run_until(rill_base *base, const int *flag, unsigned ms) {
  uint64_t end = tu_now_ms() + ms;
  while (!*flag && tu_now_ms() < end)
    TU_RUN(base, RILL_RUN_ONCE, 5000);
  assert_true(*flag);
}

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

int server_listen(rill_base *base, server *sv, rill_tls_config *cfg, const char *address) {
  int err = rill_tls_listen(base, "tcp", address, NULL, cfg, on_accepted, sv, &sv->l);
  if (err)
    return err;
  assert_int_equal(rill_tls_listener_set_error_hook(sv->l, on_hs_error, sv), 0);
  sv->port = rill_listener_port(rill_tls_listener_listener(sv->l));
  assert_true(sv->port > 0);
  return 0;
}

void server_start(rill_base *base, server *sv, rill_tls_config *cfg) {
  assert_int_equal(server_listen(base, sv, cfg, "127.0.0.1:0"), 0);
}

rill_base *base_with_server(server *sv) {
  rill_base *base = tu_base_new();
  rill_tls_config *cfg = server_config("server.crt", "server.key");
  server_start(base, sv, cfg);
  rill_tls_config_unref(cfg);  /* the listener holds its own reference */
  return base;
}

void server_end(rill_base *base, server *sv) {
  for (int i = 0; i < sv->accepted; i++)
    run_until(base, &sv->sides[i].closed, 5000);
  rill_tls_listener_free(sv->l);
}

void dial_port(rill_base *base, rill_tls_config *cfg, const char *host, int port, dial_result *r) {
  char addr[128];
  snprintf(addr, sizeof addr, "%s:%d", host, port);
  rill_socket_config opts = {.timeout = 10 * RILL_SEC};
  assert_int_equal(rill_tls_dial(base, "tcp4", addr, &opts, cfg, on_dialed, r, NULL), 0);
}

void dial_ok(rill_base *base, rill_tls_config *cfg, int port, dial_result *r) {
  dial_port(base, cfg, "localhost", port, r);
  run_until(base, &r->done, 15000);
  if (r->status != 0)
    fail_msg("dial failed: %d (%s)", r->status, r->text);
}

int echo_round(rill_base *base, server *sv, rill_tls_config *ccfg, char *subject, size_t size) {
  side c = {.expect = "ping", .close_after = 1};
  dial_result r = {.s = &c, .send = "ping"};
  dial_ok(base, ccfg, sv->port, &r);
  int resumed = rill_tls_conn_resumed(r.conn);
  if (subject)
    assert_true(rill_tls_conn_peer_subject(r.conn, subject, size) > 0);
  /* The echo also brings the ticket (TLS 1.3 sends it after the handshake). */
  run_until(base, &c.closed, 5000);
  assert_string_equal(c.in, "ping");
  return resumed;
}

enum { SPAWN_ARGS = 32 };

/* Spawns argv[0..n) followed by the NULL-terminated `extra`. */
static pid_t spawn_with(char **argv, int n, const char *const *extra, const char *in_file,
                        const char *out_file) {
  for (int i = 0; extra[i] && n < SPAWN_ARGS - 1; i++)
    argv[n++] = (char *)extra[i];
  argv[n] = NULL;
  pid_t pid = tp_spawn(argv, in_file, out_file);
  assert_true(pid > 0);
  return pid;
}

pid_t s_server_args(const char *crt, const char *key, int *port, const char *const *extra,
                    const char *in_file, const char *out_file) {
  static const char *const rev[] = {"-rev", "-quiet", NULL};
  if (!extra)
    extra = rev;
  *port = tp_free_port();
  char accept[32];
  snprintf(accept, sizeof accept, "127.0.0.1:%d", *port);
  char *argv[SPAWN_ARGS] = {"openssl", "s_server", "-accept", accept, "-cert", (char *)tp_cert(crt),
                            "-key", (char *)tp_cert(key)};
  return spawn_with(argv, 8, extra, in_file, out_file);
}

pid_t s_server(const char *crt, const char *key, int *port, const char *extra) {
  const char *args[] = {extra, NULL};
  pid_t pid = s_server_args(crt, key, port, extra ? args : NULL, NULL, NULL);
  if (tp_wait_port(*port, 10000) != 0) {
    tp_kill(pid);
    fail_msg("openssl s_server did not start");
  }
  return pid;
}

pid_t s_client_args(int port, const char *const *extra, const char *in_file, const char *out_file) {
  char connect[32];
  snprintf(connect, sizeof connect, "127.0.0.1:%d", port);
  char *argv[SPAWN_ARGS] = {"openssl", "s_client", "-connect", connect, "-servername", "localhost",
                            "-CAfile", (char *)tp_cert("ca.crt"), "-verify_return_error"};
  return spawn_with(argv, 9, extra, in_file, out_file);
}

int run_until_exited(rill_base *base, pid_t pid, unsigned ms) {
  uint64_t end = tu_now_ms() + ms;
  int st;
  while ((st = tp_exited(pid)) < 0 && tu_now_ms() < end) {
    TU_RUN(base, RILL_RUN_NOWAIT, 5000);
    tu_sleep_ms(5);
  }
  if (st < 0)
    fail_msg("process %d did not exit in %u ms", (int)pid, ms);
  return st;
}

void run_until_file_has(rill_base *base, const char *path, const char *text, unsigned ms) {
  uint64_t end = tu_now_ms() + ms;
  for (;;) {
    char *got = tp_read_file(path);
    int found = got && strstr(got, text);
    if (found || tu_now_ms() >= end) {
      if (!found)
        fail_msg("%s never held \"%s\"; it holds: %s", path, text, got ? got : "(nothing)");
      free(got);
      return;
    }
    free(got);
    TU_RUN(base, RILL_RUN_NOWAIT, 5000);
    tu_sleep_ms(5);
  }
}

int raw_connect(int port) {
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

void raw_send(int fd, const void *data, size_t len) {
  assert_int_equal(send(fd, data, len, MSG_NOSIGNAL), (ssize_t)len);
}

void raw_reset(int fd) {
  struct linger lg = {1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  close(fd);
}


void pair_dial(pair *p, rill_tls_config *scfg, rill_tls_config *ccfg, const char *send) {
  p->base = tu_base_new();
  server_start(p->base, &p->sv, scfg);
  p->r.s = &p->client;
  p->r.send = send;
  dial_port(p->base, ccfg, "localhost", p->sv.port, &p->r);
  run_until(p->base, &p->r.done, 15000);
}

void pair_end(pair *p) {
  if (p->r.status == 0) {
    rill_conn_close(p->r.conn);
    run_until(p->base, &p->client.closed, 5000);
  }
  for (int i = 0; i < p->sv.accepted; i++)
    if (!p->sv.sides[i].closed)
      rill_conn_close(p->sv.sides[i].conn);
  server_end(p->base, &p->sv);
  tu_base_free(p->base);
}

void copy_file(const char *from, const char *to) {
  char *data = tp_read_file(from);
  assert_non_null(data);
  FILE *f = fopen(to, "w");
  assert_non_null(f);
  fputs(data, f);
  fclose(f);
  free(data);
}

int silent_listener(char *addr, size_t size) {
  int fd = tp_silent_listener(addr, size);
  assert_true(fd >= 0);
  return fd;
}


int tt_run(const char *prog, const struct CMUnitTest *tests, size_t count) {
  (void)prog;
  if (getenv("TEST_TLS_FILTER"))
    cmocka_set_test_filter(getenv("TEST_TLS_FILTER"));
  return _cmocka_run_group_tests(prog, tests, count, tp_certs_setup, tp_certs_teardown);
}

#else /* built without TLS */

static void on_dial(rill_tls_dialer *d, rill_conn *c, int status, void *arg) {
  (void)d, (void)c, (void)status, (void)arg;
  fail_msg("a dial callback without TLS");
}

static void on_accept(rill_tls_listener *l, rill_conn *c, int status, void *arg) {
  (void)l, (void)c, (void)status, (void)arg;
  fail_msg("an accept callback without TLS");
}

/* Every rill_tls_* call answers RILL_ENOTSUP (or NULL, or nothing), and
 * nothing was made that a program would have to free. */
static void test_not_supported(void **state) {
  (void)state;
  rill_tls_config *cfg = (rill_tls_config *)1;
  assert_int_equal(rill_tls_config_new(RILL_TLS_CLIENT, &cfg), RILL_ENOTSUP);
  assert_int_equal(rill_tls_config_new(RILL_TLS_SERVER, &cfg), RILL_ENOTSUP);
  assert_string_equal(rill_strerror(RILL_ENOTSUP), "not supported");
  cfg = NULL;
  rill_tls_config_ref(cfg);
  rill_tls_config_unref(cfg);
  assert_int_equal(rill_tls_config_set_ca_file(cfg, "ca.crt"), RILL_ENOTSUP);
  assert_int_equal(rill_tls_config_set_ca_dir(cfg, "/tmp"), RILL_ENOTSUP);
  assert_int_equal(rill_tls_config_set_cert_key_files(cfg, "a.crt", "a.key"), RILL_ENOTSUP);
  assert_int_equal(rill_tls_config_reload(cfg), RILL_ENOTSUP);
  const char *protos[] = {"h2"};
  assert_int_equal(rill_tls_config_set_alpn(cfg, protos, 1), RILL_ENOTSUP);
  assert_int_equal(rill_tls_config_set_server_name(cfg, "example.test"), RILL_ENOTSUP);
  assert_int_equal(rill_tls_config_set_insecure_skip_verify(cfg, 1), RILL_ENOTSUP);
  assert_int_equal(rill_tls_config_set_min_version(cfg, RILL_TLS_VERSION_13), RILL_ENOTSUP);
  assert_int_equal(rill_tls_config_set_client_auth(cfg, RILL_TLS_REQUIRE_AND_VERIFY_CLIENT_CERT),
                   RILL_ENOTSUP);
  assert_int_equal(rill_tls_config_set_sni_callback(cfg, NULL, NULL), RILL_ENOTSUP);
  assert_int_equal(rill_tls_config_set_session_cache(cfg, 0), RILL_ENOTSUP);
  assert_int_equal(rill_tls_config_set_handshake_timeout(cfg, RILL_SEC), RILL_ENOTSUP);
  rill_base *base = tu_base_new();
  rill_tls_dialer *d = (rill_tls_dialer *)1;
  assert_int_equal(rill_tls_dial(base, "tcp", "127.0.0.1:1", NULL, cfg, on_dial, NULL, &d),
                   RILL_ENOTSUP);
  assert_int_equal(rill_tls_dialer_cancel(NULL), RILL_ENOTSUP);
  char text[64];
  assert_int_equal(rill_tls_dialer_format_error(NULL, RILL_ENOTSUP, text, sizeof text),
                   RILL_ENOTSUP);
  rill_tls_listener *l = NULL;
  assert_int_equal(rill_tls_listen(base, "tcp", "127.0.0.1:0", NULL, cfg, on_accept, NULL, &l),
                   RILL_ENOTSUP);
  assert_null(l);
  assert_int_equal(rill_tls_listener_set_error_hook(NULL, NULL, NULL), RILL_ENOTSUP);
  assert_null(rill_tls_listener_listener(NULL));
  rill_tls_listener_free(NULL);
  assert_int_equal(rill_tls_conn_version(NULL), RILL_ENOTSUP);
  assert_int_equal(rill_tls_conn_alpn(NULL, text, sizeof text), RILL_ENOTSUP);
  assert_int_equal(rill_tls_conn_resumed(NULL), RILL_ENOTSUP);
  assert_int_equal(rill_tls_conn_peer_subject(NULL, text, sizeof text), RILL_ENOTSUP);
  assert_int_equal(rill_tls_conn_server_name(NULL, text, sizeof text), RILL_ENOTSUP);
  /* No callback ever comes. */
  for (int i = 0; i < 5; i++)
    TU_RUN(base, RILL_RUN_NOWAIT, 5000);
  tu_base_free(base);
}

int tt_run(const char *prog, const struct CMUnitTest *tests, size_t count) {
  (void)tests, (void)count;
  printf("%s: rill built without TLS (RILL_WITH_TLS=OFF or no OpenSSL): "
         "checking RILL_ENOTSUP only\n", prog);
  const struct CMUnitTest only[] = {cmocka_unit_test(test_not_supported)};
  return cmocka_run_group_tests(only, NULL, NULL);
}

#endif
