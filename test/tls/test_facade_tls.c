/* TLS through the blocking facade (Go's tls.Dial and tls.Listen), against
 * rill itself and against Go's crypto/tls (test/go_tls_peer, when Go was
 * there at configure time): plaintext reads and writes, close_notify as
 * EOF, read deadlines, ALPN, resumption both ways, and the error texts Go
 * prints for the same failures. Certificates come from a throwaway CA made
 * at test time (support/tls_peer.c). */
#define _GNU_SOURCE /* accept4 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rill.h"
#include "test_util.h"
#include "fiber_check.h"
#include "tls_peer.h"

#define LIMIT 60000 /* a hang guard only */

/* What a TLS dial whose context ended in the handshake says: Go's
 * tls.Dialer.DialContext returns ctx.Err() (Go 1.19 checked below). */
#define CTX_CANCEL_TEXT "context canceled"
#define CTX_DEADLINE_TEXT "context deadline exceeded"

#ifdef RILL_TEST_HAVE_TLS


static rill_tls_config *client_config(const char *ca, const char *alpn) {
  rill_tls_config *cfg = NULL;
  if (rill_tls_config_new(RILL_TLS_CLIENT, &cfg) != 0 ||
      rill_tls_config_set_ca_file(cfg, tp_cert(ca)) != 0)
    fail_msg("client config");
  if (alpn && rill_tls_config_set_alpn(cfg, &alpn, 1) != 0)
    fail_msg("client alpn");
  return cfg;
}

static rill_tls_config *server_config(const char *alpn) {
  rill_tls_config *cfg = NULL;
  if (rill_tls_config_new(RILL_TLS_SERVER, &cfg) != 0 ||
      rill_tls_config_set_cert_key_files(cfg, tp_cert("server.crt"), tp_cert("server.key")) != 0)
    fail_msg("server config");
  if (alpn && rill_tls_config_set_alpn(cfg, &alpn, 1) != 0)
    fail_msg("server alpn");
  return cfg;
}

/* Reads until `len` bytes came or the stream ended; the count. */
static size_t read_full(rill_net_conn *c, char *buf, size_t len) {
  size_t got = 0;
  while (got < len) {
    ssize_t n = rill_net_read(c, buf + got, len - got);
    if (n <= 0)
      break;
    got += (size_t)n;
  }
  return got;
}

/* ---- rill to rill ---------------------------------------------------------- */

#define BIG (256 * 1024)

struct pair {
  rill_tls_config *scfg, *ccfg;
  rill_net_listener *l;
  char addr[RILL_ADDRSTRLEN];
  int server_saw_eof;
};

/* Echoes until the client's close_notify, then says goodbye and closes. */
static void echo_server(void *arg) {
  struct pair *p = arg;
  rill_net_conn *c;
  static char buf[16 * 1024];
  FCHECK_EQ(rill_net_accept(p->l, &c), 0);
  rill_net_listener_free(p->l);
  for (;;) {
    ssize_t n = rill_net_read(c, buf, sizeof buf);
    if (n == RILL_EOF) {
      p->server_saw_eof = 1;
      break;
    }
    FCHECK(n > 0);
    if (n <= 0)
      break;
    FCHECK_EQ(rill_net_write(c, buf, (size_t)n, NULL), 0);
  }
  FCHECK_EQ(rill_net_write(c, "bye", 3, NULL), 0);
  rill_net_conn_free(c); /* close_notify, then FIN */
}

static void echo_client(void *arg) {
  struct pair *p = arg;
  rill_net_conn *c;
  char err[256], port[16];
  static char out[BIG], in[BIG];
  const char *colon = strrchr(p->addr, ':');
  snprintf(port, sizeof port, "%s", colon + 1);
  char addr[64];
  snprintf(addr, sizeof addr, "localhost:%s", port);
  rill_socket_config opts = {.timeout = 20 * RILL_SEC};
  FCHECK_EQ(rill_net_tls_dial("tcp4", addr, &opts, p->ccfg, &c, err, sizeof err), 0);
  if (!c)
    return;
  FCHECK_EQ(rill_tls_conn_version(rill_net_tls_conn(c)), RILL_TLS_VERSION_13);
  /* Nothing comes before we write: the read deadline ends the wait, and
   * nothing is lost (Go's SetReadDeadline). */
  FCHECK_EQ(rill_net_set_deadline(c, RILL_DEADLINE_READ, rill_time_now() + 50 * RILL_MSEC), 0);
  FCHECK_EQ(rill_net_read(c, in, 1), RILL_ETIMEOUT);
  FCHECK_EQ(rill_net_set_deadline(c, RILL_DEADLINE_READ, 0), 0);
  for (size_t i = 0; i < BIG; i++)
    out[i] = (char)(i * 7 + i / 1000);
  /* Chunks the peer echoes as they come, read back as they come. */
  for (size_t off = 0; off < BIG; off += 32 * 1024) {
    FCHECK_EQ(rill_net_write(c, out + off, 32 * 1024, NULL), 0);
    FCHECK_EQ(read_full(c, in + off, 32 * 1024), 32 * 1024);
  }
  FCHECK(memcmp(in, out, BIG) == 0);
  FCHECK_EQ(rill_net_close_write(c), 0); /* close_notify */
  char bye[8] = {0};
  FCHECK_EQ(read_full(c, bye, 3), 3);
  FCHECK(memcmp(bye, "bye", 3) == 0);
  FCHECK_EQ(rill_net_read(c, bye, sizeof bye), RILL_EOF); /* its close_notify */
  rill_net_conn_free(c);
}

static void rill_to_rill_main(void *arg) {
  struct pair *p = arg;
  FCHECK_EQ(rill_net_tls_listen("tcp4", "127.0.0.1:0", NULL, p->scfg, &p->l), 0);
  if (!p->l)
    return;
  FCHECK(rill_net_listener_addr(p->l, p->addr, sizeof p->addr) > 0);
  FCHECK_EQ(rill_go(rill_fiber_base(), echo_server, p), 0);
  FCHECK_EQ(rill_go(rill_fiber_base(), echo_client, p), 0);
}

static void test_facade_rill_to_rill(void **state) {
  struct pair p = {0};
  (void)state;
  p.scfg = server_config(NULL);
  p.ccfg = client_config("ca.crt", NULL);
  rill_base *base = tu_base_new();
  assert_int_equal(rill_go(base, rill_to_rill_main, &p), 0);
  fiber_check_run(base, LIMIT);
  assert_true(p.server_saw_eof);
  rill_tls_config_unref(p.scfg);
  rill_tls_config_unref(p.ccfg);
}

/* Bad input through the facade: no config, a client config to listen. */
static void bad_input_main(void *arg) {
  rill_tls_config *ccfg = arg;
  rill_net_conn *c = NULL;
  rill_net_listener *l = NULL;
  FCHECK_EQ(rill_net_tls_dial("tcp", "127.0.0.1:1", NULL, NULL, &c, NULL, 0), RILL_EINVAL);
  FCHECK_EQ(rill_net_tls_listen("tcp", "127.0.0.1:0", NULL, NULL, &l), RILL_EINVAL);
  FCHECK_EQ(rill_net_tls_listen("tcp", "127.0.0.1:0", NULL, ccfg, &l), RILL_EINVAL);
  FCHECK(rill_net_tls_conn(NULL) == NULL);
}

static void test_facade_bad_input(void **state) {
  (void)state;
  rill_tls_config *ccfg = client_config("ca.crt", NULL);
  rill_net_conn *c = NULL;
  assert_int_equal(rill_net_tls_dial("tcp", "127.0.0.1:1", NULL, ccfg, &c, NULL, 0),
                   RILL_ENOTFIBER);
  rill_base *base = tu_base_new();
  assert_int_equal(rill_go(base, bad_input_main, ccfg), 0);
  fiber_check_run(base, LIMIT);
  rill_tls_config_unref(ccfg);
}

/* ---- rill_net_tls_dial_ctx: a context ending mid-handshake ---------------- */

/* A peer that accepts TCP (the kernel's backlog does) and never answers
 * the ClientHello: the dial hangs in its handshake until its context
 * ends. Go's tls.Dialer.DialContext then returns ctx.Err(). */
struct ctx_dial {
  int cancel;     /* 1: another fiber cancels once the ClientHello arrived; 0: a deadline */
  unsigned ms;    /* the deadline, from the dial on */
  int lfd, peer;  /* the silent listener, the connection it took */
  char addr[64];
  rill_tls_config *cfg;
  rill_ctx *ctx;
  int hello_seen;
  int err;
  char text[256];
  uint64_t elapsed_ms;
  int got_conn;
};

/* Whether the peer holds the start of a ClientHello (a handshake record). */
static int peek_hello(struct ctx_dial *d) {
  unsigned char byte;
  if (d->peer < 0)
    d->peer = accept4(d->lfd, NULL, NULL, SOCK_NONBLOCK);
  if (d->peer >= 0 && recv(d->peer, &byte, 1, MSG_PEEK | MSG_DONTWAIT) == 1 && byte == 0x16)
    d->hello_seen = 1;
  return d->hello_seen;
}

static void canceller(void *arg) {
  struct ctx_dial *d = arg;
  for (int i = 0; i < 4000 && !peek_hello(d); i++) /* a hang guard: 20 s */
    rill_sleep(5 * RILL_MSEC);
  FCHECK(d->hello_seen);
  FCHECK_EQ(rill_ctx_cancel(d->ctx), 0);
}

static void ctx_dial_main(void *arg) {
  struct ctx_dial *d = arg;
  rill_socket_config opts = {.timeout = 30 * RILL_SEC}; /* never the one that ends it */
  rill_net_conn *c = NULL;
  if (d->cancel) {
    FCHECK_EQ(rill_ctx_new(NULL, &d->ctx), 0);
    FCHECK_EQ(rill_go(rill_fiber_base(), canceller, d), 0);
  } else {
    FCHECK_EQ(rill_ctx_new_timeout(rill_fiber_base(), NULL, d->ms * RILL_MSEC, &d->ctx), 0);
  }
  uint64_t start = tu_now_ms();
  d->err = rill_net_tls_dial_ctx(d->ctx, "tcp", d->addr, &opts, d->cfg, &c, d->text, sizeof d->text);
  d->elapsed_ms = tu_now_ms() - start;
  d->got_conn = c != NULL;
  if (c)
    rill_net_conn_free(c);
  rill_ctx_free(d->ctx);
}

/* Runs one dial under a context against a silent peer; checks it ended
 * with `want` promptly, and that its socket is closed (the peer reads the
 * ClientHello, then the end of the stream). */
static void run_ctx_dial(struct ctx_dial *d, int want) {
  d->lfd = tp_silent_listener(d->addr, sizeof d->addr);
  assert_true(d->lfd >= 0);
  d->peer = -1;
  d->cfg = client_config("ca.crt", NULL);
  assert_int_equal(rill_tls_config_set_server_name(d->cfg, "localhost"), 0);
  rill_base *base = tu_base_new();
  assert_int_equal(rill_go(base, ctx_dial_main, d), 0);
  fiber_check_run(base, LIMIT); /* frees the base */
  rill_tls_config_unref(d->cfg);
  if (d->err != want)
    fail_msg("got %d (%s), want %d", d->err, d->text, want);
  assert_false(d->got_conn);
  /* Promptly: long before the dial's own 30 s timeout. */
  assert_true(d->elapsed_ms < 10000);
  assert_true(peek_hello(d)); /* it was in its handshake */
  char buf[4096];
  ssize_t n;
  int eof = 0;
  for (int i = 0; i < 1000 && !eof; i++) { /* a hang guard: 10 s */
    n = recv(d->peer, buf, sizeof buf, MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN))
      eof = 1;
    else if (n < 0)
      poll(&(struct pollfd){.fd = d->peer, .events = POLLIN}, 1, 10);
  }
  assert_true(eof);
  close(d->peer);
  close(d->lfd);
}

static void test_dial_ctx_cancel_in_handshake(void **state) {
  (void)state;
  struct ctx_dial d = {.cancel = 1};
  run_ctx_dial(&d, RILL_ECANCELED);
  assert_string_equal(d.text, CTX_CANCEL_TEXT);
}

static void test_dial_ctx_deadline_in_handshake(void **state) {
  (void)state;
  struct ctx_dial d = {.ms = 300};
  run_ctx_dial(&d, RILL_ETIMEOUT);
  assert_true(d.elapsed_ms >= 290);
  assert_string_equal(d.text, CTX_DEADLINE_TEXT);
}

#ifdef GO_TLS_PEER_BIN

/* ---- Go's crypto/tls on the other end ----------------------------------- */

static char go_out[256];

/* Starts the Go peer's server and returns its address in `addr`. */
static pid_t go_server(const char *alpn, char *addr, size_t size) {
  char *argv[] = {GO_TLS_PEER_BIN, "server", "-cert", (char *)tp_cert("server.crt"), "-key",
                  (char *)tp_cert("server.key"), "-alpn", (char *)alpn, NULL};
  snprintf(go_out, sizeof go_out, "%s", tp_cert("go_server.out"));
  unlink(go_out); /* an earlier peer's address must not be read as this one's */
  pid_t pid = tp_spawn(argv, NULL, go_out);
  assert_true(pid > 0);
  for (int i = 0; i < 2000; i++) { /* a hang guard: 20 s */
    char *text = tp_read_file(go_out);
    const char *line = text ? strstr(text, "listening ") : NULL;
    if (line && strchr(line, '\n')) {
      sscanf(line, "listening %63s", addr);
      free(text);
      (void)size;
      return pid;
    }
    free(text);
    if (tp_exited(pid) >= 0)
      break;
    usleep(10000);
  }
  tp_kill(pid);
  fail_msg("the Go peer did not start");
  return -1;
}

struct go_dial {
  const char *addr;
  rill_tls_config *cfg;
  int resumed[2];
  char alpn[32];
  int err;
  char text[512];
};

static void dial_go_main(void *arg) {
  struct go_dial *d = arg;
  rill_socket_config opts = {.timeout = 20 * RILL_SEC};
  for (int i = 0; i < 2; i++) {
    rill_net_conn *c = NULL;
    char buf[8];
    d->err = rill_net_tls_dial("tcp", d->addr, &opts, d->cfg, &c, d->text, sizeof d->text);
    if (d->err)
      return;
    FCHECK_EQ(rill_net_write(c, "hello", 5, NULL), 0);
    FCHECK_EQ(read_full(c, buf, 5), 5); /* the echo, and with it the ticket */
    FCHECK(memcmp(buf, "hello", 5) == 0);
    d->resumed[i] = rill_tls_conn_resumed(rill_net_tls_conn(c));
    FCHECK(rill_tls_conn_alpn(rill_net_tls_conn(c), d->alpn, sizeof d->alpn) >= 0);
    rill_net_conn_free(c);
  }
}

static void run_dial(struct go_dial *d) {
  rill_base *base = tu_base_new();
  assert_int_equal(rill_go(base, dial_go_main, d), 0);
  fiber_check_run(base, LIMIT);
}

/* The facade dials Go's server by name: echo, ALPN, and the second dial
 * resumes with the ticket the first got. */
static void test_facade_dials_go(void **state) {
  char addr[64], name[96];
  (void)state;
  pid_t pid = go_server("h2", addr, sizeof addr);
  snprintf(name, sizeof name, "localhost%s", strchr(addr, ':'));
  struct go_dial d = {.addr = name, .cfg = client_config("ca.crt", "h2")};
  run_dial(&d);
  tp_kill(pid);
  rill_tls_config_unref(d.cfg);
  assert_int_equal(d.err, 0);
  assert_string_equal(d.alpn, "h2");
  assert_int_equal(d.resumed[0], 0);
  assert_int_equal(d.resumed[1], 1);
}

/* Go's client dials a facade listener twice: ALPN agreed, and the second
 * handshake resumes with the ticket rill's server issued. */
struct go_client_run {
  rill_tls_config *scfg;
  char out[256];
  int exit_status;
  int served;
};

static void serve_one(void *arg) {
  rill_net_conn *c = arg;
  char buf[64];
  ssize_t n;
  while ((n = rill_net_read(c, buf, sizeof buf)) > 0)
    FCHECK_EQ(rill_net_write(c, buf, (size_t)n, NULL), 0);
  rill_net_conn_free(c);
}

static void go_client_main(void *arg) {
  struct go_client_run *r = arg;
  rill_net_listener *l = NULL;
  char addr[RILL_ADDRSTRLEN];
  FCHECK_EQ(rill_net_tls_listen("tcp4", "127.0.0.1:0", NULL, r->scfg, &l), 0);
  if (!l)
    return;
  rill_net_listener_addr(l, addr, sizeof addr);
  char *argv[] = {GO_TLS_PEER_BIN, "client", "-addr", addr, "-ca", (char *)tp_cert("ca.crt"),
                  "-server-name", "localhost", "-alpn", "h2", "-dials", "2", NULL};
  pid_t pid = tp_spawn(argv, NULL, r->out);
  FCHECK(pid > 0);
  while (r->served < 2) {
    rill_net_conn *c;
    FCHECK_EQ(rill_net_accept(l, &c), 0);
    if (!c)
      break;
    r->served++;
    FCHECK_EQ(rill_go(rill_fiber_base(), serve_one, c), 0);
  }
  rill_net_listener_free(l);
  for (int i = 0; i < 3000 && (r->exit_status = tp_exited(pid)) < 0; i++)
    rill_sleep(10 * RILL_MSEC); /* a hang guard: 30 s */
  if (r->exit_status < 0)
    tp_kill(pid);
}

static void test_go_dials_facade(void **state) {
  struct go_client_run r = {.scfg = server_config("h2")};
  (void)state;
  snprintf(r.out, sizeof r.out, "%s", tp_cert("go_client.out"));
  rill_base *base = tu_base_new();
  assert_int_equal(rill_go(base, go_client_main, &r), 0);
  fiber_check_run(base, LIMIT);
  rill_tls_config_unref(r.scfg);
  char *text = tp_read_file(r.out);
  assert_non_null(text);
  if (r.exit_status != 0)
    fail_msg("the Go client failed: %s", text);
  assert_string_equal(text, "ok alpn=h2 resumed=false\nok alpn=h2 resumed=true\n");
  free(text);
}

/* Runs the Go peer's failing client (`argv`, output to the certificate
 * directory's `out_name`), at most 30 s: its error line, without the
 * "error: " it prints first, into `out`. It must exit with status 1. */
static void go_failed_client(char *const argv[], const char *out_name, char *out, size_t size) {
  assert_int_equal(tp_run_for_error(argv, tp_cert(out_name), 30000, out, size), 1);
}

/* What Go's client prints for a failed dial to `addr` as `server_name`
 * trusting `ca`: its err.Error(). */
static void go_client_error(const char *addr, const char *ca, const char *server_name, char *out,
                            size_t size) {
  char *argv[] = {GO_TLS_PEER_BIN, "client", "-addr", (char *)addr, "-ca", (char *)tp_cert(ca),
                  "-server-name", (char *)server_name, NULL};
  go_failed_client(argv, "go_error.out", out, size);
}

/* rill's text for the failure must be Go's. Go 1.20 and later put "tls:
 * failed to verify certificate: " before a verification error, as rill
 * does; Go 1.19 does not, so that prefix is compared only when Go has it. */
static void check_against_go(const char *rill_text, const char *go_text) {
  static const char prefix[] = "tls: failed to verify certificate: ";
  const char *r = rill_text;
  if (strncmp(go_text, prefix, sizeof prefix - 1) != 0 && strncmp(r, prefix, sizeof prefix - 1) == 0)
    r += sizeof prefix - 1;
  if (strcmp(r, go_text) != 0)
    fail_msg("\n  rill: %s\n  Go:   %s", rill_text, go_text);
}

static void test_error_texts_match_go(void **state) {
  char addr[64], go_text[512];
  (void)state;
  pid_t pid = go_server("", addr, sizeof addr);
  struct {
    const char *ca, *server_name;
    int code;
  } cases[] = {
      {"ca.crt", "wrong.test", RILL_ETLS_HOSTNAME},
      {"ca.crt", "10.0.0.1", RILL_ETLS_HOSTNAME}, /* an address: the IP SANs are listed */
      {"rogue_ca.crt", "localhost", RILL_ETLS_UNKNOWN_AUTHORITY},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct go_dial d = {.addr = addr, .cfg = client_config(cases[i].ca, NULL)};
    assert_int_equal(rill_tls_config_set_server_name(d.cfg, cases[i].server_name), 0);
    run_dial(&d);
    rill_tls_config_unref(d.cfg);
    assert_int_equal(d.err, cases[i].code);
    go_client_error(addr, cases[i].ca, cases[i].server_name, go_text, sizeof go_text);
    check_against_go(d.text, go_text);
  }
  tp_kill(pid);
}

/* Go's tls.Dialer.DialContext against the same silent peer, its context
 * cancelled or past its deadline in the handshake: the texts rill gives. */
static void go_ctx_error(const char *flag, char *out, size_t size) {
  char addr[64];
  int lfd = tp_silent_listener(addr, sizeof addr);
  assert_true(lfd >= 0);
  char *argv[] = {GO_TLS_PEER_BIN, "client", "-addr", addr, "-ca", (char *)tp_cert("ca.crt"),
                  "-server-name", "localhost", (char *)flag, "300ms", NULL};
  go_failed_client(argv, "go_ctx.out", out, size);
  close(lfd);
}

static void test_dial_ctx_texts_match_go(void **state) {
  char go_text[256];
  (void)state;
  go_ctx_error("-cancel-after", go_text, sizeof go_text);
  assert_string_equal(go_text, CTX_CANCEL_TEXT);
  go_ctx_error("-ctx-timeout", go_text, sizeof go_text);
  assert_string_equal(go_text, CTX_DEADLINE_TEXT);
}

#endif /* GO_TLS_PEER_BIN */

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_facade_rill_to_rill),
      cmocka_unit_test(test_facade_bad_input),
      cmocka_unit_test(test_dial_ctx_cancel_in_handshake),
      cmocka_unit_test(test_dial_ctx_deadline_in_handshake),
#ifdef GO_TLS_PEER_BIN
      cmocka_unit_test(test_facade_dials_go),
      cmocka_unit_test(test_go_dials_facade),
      cmocka_unit_test(test_error_texts_match_go),
      cmocka_unit_test(test_dial_ctx_texts_match_go),
#endif
  };
#ifndef GO_TLS_PEER_BIN
  printf("test_facade_tls: Go not installed at configure time: no Go peer\n");
#endif
  return cmocka_run_group_tests(tests, tp_certs_setup, tp_certs_teardown);
}

#else /* built without TLS */

static void not_supported_main(void *arg) {
  rill_net_conn *c = NULL;
  rill_net_listener *l = NULL;
  (void)arg;
  /* Without TLS no config can be made, so any non-NULL one is foreign. */
  FCHECK_EQ(rill_net_tls_dial("tcp", "127.0.0.1:1", NULL, (rill_tls_config *)&c, &c, NULL, 0),
            RILL_ENOTSUP);
  FCHECK_EQ(rill_net_tls_listen("tcp", "127.0.0.1:0", NULL, (rill_tls_config *)&l, &l),
            RILL_ENOTSUP);
  rill_ctx *ctx = NULL;
  char text[128] = "";
  FCHECK_EQ(rill_ctx_new(NULL, &ctx), 0);
  FCHECK_EQ(rill_net_tls_dial_ctx(ctx, "tcp", "127.0.0.1:1", NULL, (rill_tls_config *)&c, &c, text,
                                  sizeof text),
            RILL_ENOTSUP);
  FCHECK(c == NULL);
  FCHECK(l == NULL);
  rill_ctx_free(ctx);
}

static void test_not_supported(void **state) {
  (void)state;
  rill_base *base = tu_base_new();
  assert_int_equal(rill_go(base, not_supported_main, NULL), 0);
  fiber_check_run(base, LIMIT);
}

int main(void) {
  printf("test_facade_tls: rill built without TLS: checking RILL_ENOTSUP only\n");
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_not_supported)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}

#endif
