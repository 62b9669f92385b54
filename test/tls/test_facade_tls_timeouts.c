/* The facade's TLS dial (Go's tls.DialWithDialer and tls.Dialer.DialContext)
 * when its time runs out: in the TCP connect (a listener whose accept queue
 * is full, so that its SYNs go unanswered) and in the handshake (a listener
 * that accepts and never answers the ClientHello), by the dial's own
 * timeout and by a context's deadline. rill's error text must be the one
 * the installed Go prints for the same dial to the same address
 * (test/go_tls_peer, when Go was there at configure time); the texts pinned
 * here are Go 1.19's, which later versions keep. */
#define _GNU_SOURCE
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
#define TIMEOUT_MS 300

#ifdef RILL_TEST_HAVE_TLS

/* A listener on 127.0.0.1 with room for `backlog` connections nobody
 * accepts; its address into `addr`. */
static int listener(int backlog, char *addr, size_t size) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa;
  socklen_t len = sizeof sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_true(fd >= 0);
  assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
  assert_int_equal(listen(fd, backlog), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
  snprintf(addr, size, "127.0.0.1:%d", ntohs(sa.sin_port));
  return fd;
}

/* A listener whose accept queue is full: a connect to it hangs (Linux drops
 * the SYN while the queue is full). `filler` gets the connection that
 * filled it; the check that a next connect hangs is part of the setup. */
static int stalled_listener(char *addr, size_t size, int *filler) {
  int lfd = listener(0, addr, size);
  struct sockaddr_in sa;
  socklen_t len = sizeof sa;
  assert_int_equal(getsockname(lfd, (struct sockaddr *)&sa, &len), 0);
  *filler = socket(AF_INET, SOCK_STREAM, 0);
  assert_int_equal(connect(*filler, (struct sockaddr *)&sa, sizeof sa), 0);
  int probe = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  int r = connect(probe, (struct sockaddr *)&sa, sizeof sa);
  assert_true(r < 0 && errno == EINPROGRESS);
  struct pollfd p = {.fd = probe, .events = POLLOUT};
  assert_int_equal(poll(&p, 1, 200), 0); /* still connecting */
  close(probe);
  return lfd;
}

struct dial {
  const char *addr;
  int ctx_ms;  /* a context deadline, else the dial's own timeout */
  rill_tls_config *cfg;
  int err;
  char text[256];
  uint64_t elapsed_ms;
};

static void dial_main(void *arg) {
  struct dial *d = arg;
  rill_socket_config opts = {.timeout = d->ctx_ms ? 30 * RILL_SEC : TIMEOUT_MS * RILL_MSEC};
  rill_ctx *ctx = NULL;
  if (d->ctx_ms)
    FCHECK_EQ(rill_ctx_new_timeout(rill_fiber_base(), NULL, (uint64_t)d->ctx_ms * RILL_MSEC, &ctx), 0);
  rill_net_conn *c = NULL;
  uint64_t start = tu_now_ms();
  d->err = ctx ? rill_net_tls_dial_ctx(ctx, "tcp", d->addr, &opts, d->cfg, &c, d->text, sizeof d->text)
               : rill_net_tls_dial("tcp", d->addr, &opts, d->cfg, &c, d->text, sizeof d->text);
  d->elapsed_ms = tu_now_ms() - start;
  FCHECK(c == NULL);
  if (c)
    rill_net_conn_free(c);
  rill_ctx_free(ctx);
}

static void run_dial(struct dial *d) {
  assert_int_equal(rill_tls_config_new(RILL_TLS_CLIENT, &d->cfg), 0);
  assert_int_equal(rill_tls_config_set_ca_file(d->cfg, tp_cert("ca.crt")), 0);
  assert_int_equal(rill_tls_config_set_server_name(d->cfg, "localhost"), 0);
  rill_base *base = tu_base_new();
  assert_int_equal(rill_go(base, dial_main, d), 0);
  fiber_check_run(base, LIMIT); /* frees the base */
  rill_tls_config_unref(d->cfg);
  if (d->err != RILL_ETIMEOUT)
    fail_msg("got %d (%s), want RILL_ETIMEOUT", d->err, d->text);
  assert_true(d->elapsed_ms >= TIMEOUT_MS - 10 && d->elapsed_ms < 10000);
}

#ifdef GO_TLS_PEER_BIN
/* What Go's client prints for the same dial: `flag` is -ctx-timeout
 * (tls.Dialer.DialContext) or -dial-timeout (tls.DialWithDialer). */
static void go_text(const char *addr, const char *flag, char *out, size_t size) {
  char ms[16];
  snprintf(ms, sizeof ms, "%dms", TIMEOUT_MS);
  char *argv[] = {GO_TLS_PEER_BIN, "client", "-addr", (char *)addr, "-ca", (char *)tp_cert("ca.crt"),
                  "-server-name", "localhost", (char *)flag, ms, NULL};
  assert_int_equal(tp_run_for_error(argv, tp_cert("go_timeout.out"), 30000, out, size), 1);
}
#endif

/* Dials the listener at `addr` both ways, and checks rill's text against
 * `want` (addr put for %s) and against Go's. */
static void check_dial(const char *addr, int ctx_ms, const char *want_format) {
  struct dial d = {.addr = addr, .ctx_ms = ctx_ms};
  char want[256];
  run_dial(&d);
  snprintf(want, sizeof want, want_format, addr);
  assert_string_equal(d.text, want);
#ifdef GO_TLS_PEER_BIN
  char go[256];
  go_text(addr, ctx_ms ? "-ctx-timeout" : "-dial-timeout", go, sizeof go);
  if (strcmp(d.text, go) != 0)
    fail_msg("\n  rill: %s\n  Go:   %s", d.text, go);
#endif
}

static void test_ctx_deadline_in_connect(void **state) {
  (void)state;
  char addr[64];
  int filler, lfd = stalled_listener(addr, sizeof addr, &filler);
  check_dial(addr, TIMEOUT_MS, "dial tcp %s: i/o timeout");
  close(filler);
  close(lfd);
}

static void test_dial_timeout_in_connect(void **state) {
  (void)state;
  char addr[64];
  int filler, lfd = stalled_listener(addr, sizeof addr, &filler);
  check_dial(addr, 0, "dial tcp %s: i/o timeout");
  close(filler);
  close(lfd);
}

/* Go 1.17 and later: the dial's timeout becomes the handshake's context,
 * and its end reads as the context's. */
static void test_dial_timeout_in_handshake(void **state) {
  (void)state;
  char addr[64];
  int lfd = listener(8, addr, sizeof addr);
  check_dial(addr, 0, "context deadline exceeded");
  close(lfd);
}

static void test_ctx_deadline_in_handshake(void **state) {
  (void)state;
  char addr[64];
  int lfd = listener(8, addr, sizeof addr);
  check_dial(addr, TIMEOUT_MS, "context deadline exceeded");
  close(lfd);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ctx_deadline_in_connect),
      cmocka_unit_test(test_dial_timeout_in_connect),
      cmocka_unit_test(test_dial_timeout_in_handshake),
      cmocka_unit_test(test_ctx_deadline_in_handshake),
  };
#ifndef GO_TLS_PEER_BIN
  printf("test_facade_tls_timeouts: Go not installed at configure time: pinned texts only\n");
#endif
  return cmocka_run_group_tests(tests, tp_certs_setup, tp_certs_teardown);
}

#else /* built without TLS */

int main(void) {
  printf("test_facade_tls_timeouts: built without TLS (test_facade_tls checks RILL_ENOTSUP)\n");
  return 0;
}

#endif
