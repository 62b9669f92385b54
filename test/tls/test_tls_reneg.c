/* Renegotiation refused and TLS 1.3 KeyUpdate accepted, both directions,
 * against `openssl s_client` and `openssl s_server` driven through their
 * stdin commands ('R' or 'r': renegotiate; 'K': KeyUpdate asking for one
 * back). What Go 1.19's crypto/tls does, and so rill:
 *   - Go's client (default RenegotiateNever) answers a server's
 *     HelloRequest with a no_renegotiation warning and fails its Read
 *     ("local error: tls: no renegotiation"); Go's server answers a TLS 1.2
 *     client's renegotiating ClientHello with a fatal unexpected_message
 *     alert and fails. rill (OpenSSL under SSL_OP_NO_RENEGOTIATION) sends
 *     the no_renegotiation warning either way and fails the read with
 *     RILL_ETLS_RENEGOTIATION, after everything that came before it.
 *   - A TLS 1.3 KeyUpdate is followed (and answered when asked), and the
 *     data keeps flowing both ways. */
#include "tls_test.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef RILL_TEST_HAVE_TLS

/* A FIFO as a peer's stdin, so that the test types its commands when it
 * chooses; `fifo_open` runs after the peer started (it opens its end). */
static const char *fifo_make(const char *name) {
  const char *path = tp_cert(name);
  unlink(path);
  assert_int_equal(mkfifo(path, 0600), 0);
  return path;
}

static int fifo_open(const char *path) {
  /* O_RDWR never blocks on a FIFO (Linux), and keeps it open for the
   * peer: its stdin does not end while the test runs. */
  int fd = open(path, O_RDWR);
  assert_true(fd >= 0);
  return fd;
}

static void type(int fd, const char *line) {
  assert_int_equal(write(fd, line, strlen(line)), (ssize_t)strlen(line));
}

/* Runs the base until the side saw `text`, at most `ms`. */
static void run_until_read(rill_base *base, side *s, const char *text, unsigned ms) {
  uint64_t end = tu_now_ms() + ms;
  while (!strstr(s->in, text) && !s->read_status && tu_now_ms() < end)
    TU_RUN(base, RILL_RUN_ONCE, 5000);
  if (!strstr(s->in, text))
    fail_msg("never read \"%s\" (status %d); read: %s", text, s->read_status, s->in);
}

/* Runs the base until `text` appears `count` times in the file. */
static void run_until_count(rill_base *base, const char *path, const char *text, int count,
                            unsigned ms) {
  uint64_t end = tu_now_ms() + ms;
  int n = 0;
  while (tu_now_ms() < end) {
    char *got = tp_read_file(path);
    n = 0;
    for (const char *p = got; p && (p = strstr(p, text)); p += strlen(text))
      n++;
    free(got);
    if (n >= count)
      return;
    TU_RUN(base, RILL_RUN_NOWAIT, 5000);
    tu_sleep_ms(5);
  }
  fail_msg("%s holds \"%s\" %d times, not %d", path, text, n, count);
}

static char *out_path(const char *name) {
  static char buf[512];
  snprintf(buf, sizeof buf, "%s", tp_cert(name));
  return buf;
}

/* `openssl s_client` to 127.0.0.1:port, stdin from `in`, output to `out`;
 * -tls1_2 or -tls1_3 as `version`. Not -quiet: that turns its commands off. */
static pid_t s_client(int port, const char *version, const char *in, const char *out) {
  const char *const extra[] = {version, NULL};
  return s_client_args(port, extra, in, out);
}

/* `openssl s_server` with stdin from `in` and output, unbuffered (its
 * printf of a command's result would otherwise sit in stdio's buffer), to
 * `out`; -tls1_2 or -tls1_3 as `version`. Not -quiet: that turns its
 * commands off. */
static pid_t s_server_cmd(int *port, const char *version, const char *in, const char *out) {
  *port = tp_free_port();
  char accept[32];
  snprintf(accept, sizeof accept, "127.0.0.1:%d", *port);
  char *argv[] = {"stdbuf", "-o0", "openssl", "s_server", "-accept", accept,
                  "-cert", (char *)tp_cert("server.crt"), "-key", (char *)tp_cert("server.key"),
                  (char *)version, NULL};
  pid_t pid = tp_spawn(argv, in, out);
  assert_true(pid > 0);
  return pid;
}

/* A TLS 1.2 client asks rill's server to renegotiate: refused. What the
 * client sent before arrives whole, then the read fails with
 * RILL_ETLS_RENEGOTIATION; the client (which takes the warning as fatal)
 * gives up too. */
static void test_server_refuses_renegotiation(void **state) {
  (void)state;
  server sv = {0};
  rill_base *base = base_with_server(&sv);
  const char *fifo = fifo_make("reneg_c.fifo");
  char *out = out_path("reneg_c.out");
  pid_t pid = s_client(sv.port, "-tls1_2", fifo, out);
  int in = fifo_open(fifo);
  run_until(base, &sv.accepted, 15000);
  assert_int_equal(rill_tls_conn_version(sv.sides[0].conn), RILL_TLS_VERSION_12);
  type(in, "sent before renegotiation\n");
  run_until_read(base, &sv.sides[0], "sent before renegotiation\n", 15000);
  /* Written by the server before the attempt: the client prints it. */
  assert_int_equal(rill_conn_write(sv.sides[0].conn, "server before\n", 14), 0);
  run_until_file_has(base, out, "server before\n", 15000);
  type(in, "R\n");
  run_until(base, &sv.sides[0].read_status, 15000);
  side *s = &sv.sides[0];
  if (s->read_status != RILL_ETLS_RENEGOTIATION)
    fail_msg("read status %d (%s)", s->read_status, rill_strerror(s->read_status));
  assert_string_equal(s->in, "sent before renegotiation\n");
  run_until_file_has(base, out, "RENEGOTIATING", 5000);
  /* The client's renegotiation failed: it ends. */
  run_until_exited(base, pid, 15000);
  rill_conn_close(s->conn);
  run_until(base, &s->closed, 5000);
  close(in);
  rill_tls_listener_free(sv.l);
  tu_base_free(base);
}

/* `openssl s_server` (-tls1_2 or -tls1_3 as `version`) taking commands
 * from a FIFO, and rill's client dialed to it, having sent `hello`. */
typedef struct commanded_server {
  const char *out;  /* what the server prints */
  int in;           /* the server's stdin, to type commands */
  pid_t pid;
  rill_base *base;
  side s;           /* rill's client */
  dial_result r;
} commanded_server;

static void commanded_server_start(commanded_server *t, const char *name, const char *version,
                                   const char *hello) {
  char file[64];
  snprintf(file, sizeof file, "%s.fifo", name);
  const char *fifo = fifo_make(file);
  snprintf(file, sizeof file, "%s.out", name);
  t->out = out_path(file);
  int port;
  t->pid = s_server_cmd(&port, version, fifo, t->out);
  t->in = fifo_open(fifo);
  assert_int_equal(tp_wait_port(port, 10000), 0);
  t->base = tu_base_new();
  rill_tls_config *cfg = client_config();
  memset(&t->s, 0, sizeof t->s);
  t->r = (dial_result){.s = &t->s, .send = hello};
  dial_ok(t->base, cfg, port, &t->r);
  rill_tls_config_unref(cfg);
  run_until_file_has(t->base, t->out, hello, 15000);
}

static void commanded_server_end(commanded_server *t) {
  rill_conn_close(t->r.conn);
  run_until(t->base, &t->s.closed, 5000);
  close(t->in);
  tu_base_free(t->base);
  tp_kill(t->pid);
}

/* `openssl s_server -tls1_2` sends a HelloRequest to rill's client:
 * refused, as Go's client refuses (RenegotiateNever). What the server sent
 * before arrives whole, then the read fails with RILL_ETLS_RENEGOTIATION
 * rather than a second handshake. */
static void test_client_refuses_renegotiation(void **state) {
  (void)state;
  commanded_server t;
  commanded_server_start(&t, "reneg_s", "-tls1_2", "client before\n");
  assert_int_equal(rill_tls_conn_version(t.r.conn), RILL_TLS_VERSION_12);
  type(t.in, "server before\n");
  run_until_read(t.base, &t.s, "server before\n", 15000);
  type(t.in, "r\n");
  run_until(t.base, &t.s.read_status, 15000);
  if (t.s.read_status != RILL_ETLS_RENEGOTIATION)
    fail_msg("read status %d (%s)", t.s.read_status, rill_strerror(t.s.read_status));
  assert_string_equal(t.s.in, "server before\n");
  commanded_server_end(&t);
}

/* The peer's KeyUpdate asking for one back ('K'), then data both ways. */
static void test_key_update_from_server(void **state) {
  (void)state;
  commanded_server t;
  commanded_server_start(&t, "ku_s", "-tls1_3", "client hello 0\n");
  assert_int_equal(rill_tls_conn_version(t.r.conn), RILL_TLS_VERSION_13);
  for (int i = 1; i <= 3; i++) {
    char line[64];
    type(t.in, "K\n");
    run_until_count(t.base, t.out, "SSL_do_handshake -> ", i, 5000);
    snprintf(line, sizeof line, "server after update %d\n", i);
    type(t.in, line);
    run_until_read(t.base, &t.s, line, 15000);
    snprintf(line, sizeof line, "client after update %d\n", i);
    assert_int_equal(rill_conn_write(t.r.conn, line, strlen(line)), 0);
    run_until_file_has(t.base, t.out, line, 15000);
  }
  assert_int_equal(t.s.read_status, 0);
  assert_string_equal(t.s.in, "server after update 1\nserver after update 2\nserver after update 3\n");
  commanded_server_end(&t);
}

/* A client's KeyUpdate to rill's echo listener, then data both ways. */
static void test_key_update_from_client(void **state) {
  (void)state;
  server sv = {.echo = 1};
  rill_base *base = base_with_server(&sv);
  const char *fifo = fifo_make("ku_c.fifo");
  char *out = out_path("ku_c.out");
  pid_t pid = s_client(sv.port, "-tls1_3", fifo, out);
  int in = fifo_open(fifo);
  run_until(base, &sv.accepted, 15000);
  type(in, "echo 0\n");
  run_until_file_has(base, out, "echo 0\n", 15000);
  for (int i = 1; i <= 3; i++) {
    char line[64];
    type(in, "K\n");
    run_until_count(base, out, "KEYUPDATE", i, 5000);
    snprintf(line, sizeof line, "echo after update %d\n", i);
    type(in, line);
    run_until_file_has(base, out, line, 15000);
  }
  side *s = &sv.sides[0];
  assert_int_equal(s->read_status, 0);
  assert_string_equal(s->in, "echo 0\necho after update 1\necho after update 2\necho after update 3\n");
  close(in);  /* s_client's stdin ends: it closes, the echo side closes */
  run_until_exited(base, pid, 15000);
  server_end(base, &sv);
  tu_base_free(base);
}

#endif /* RILL_TEST_HAVE_TLS */

int main(void) {
#ifdef RILL_TEST_HAVE_TLS
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_server_refuses_renegotiation),
      cmocka_unit_test(test_client_refuses_renegotiation),
      cmocka_unit_test(test_key_update_from_server),
      cmocka_unit_test(test_key_update_from_client),
  };
  return TT_RUN("test_tls_reneg", tests);
#else
  return tt_run("test_tls_reneg", NULL, 0);
#endif
}
