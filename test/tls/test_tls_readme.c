/* The README's TLS dial, run: its dial_tls() dials "example.test:443"
 * through rill's DNS with verification on against the system trust store.
 * readme_blocks compiles it inside test/readme/wrap/tls_dial.c (kept as
 * tls_dial_example); this test gives it a world where that works, all on
 * loopback: a fake DNS server that answers example.test with 127.0.0.1
 * (never the system's resolver), a rill TLS listener on 127.0.0.1:443 with
 * a certificate for example.test from a throwaway CA, and SSL_CERT_FILE,
 * which OpenSSL's default verify paths (rill's system store) honour, naming
 * that CA. Where port 443 cannot be bound (not root), the harness
 * substitutes the listener's port for 443 and the test says so. */
#include "tls_test.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fake_dns.h"

#if defined(RILL_TEST_HAVE_TLS) && defined(README_TLS_DIAL_BIN)

typedef struct world {
  rill_base *base;
  fake_dns *dns;
  server sv;
  int substituted; /* 443 could not be bound: the harness uses sv.port */
} world;

static void world_start(world *w) {
  w->base = tu_base_new();
  assert_true(fake_dns_start(&w->dns) > 0);
  /* An A record only: the dial then tries 127.0.0.1 alone. */
  fake_dns_rule a = {.name = "example.test", .qtype = FAKE_DNS_A, .addrs = "127.0.0.1"};
  assert_int_equal(fake_dns_add_rule(w->dns, &a), 0);
  rill_tls_config *cfg = server_config("example.crt", "example.key");
  int err = RILL_EADDRINUSE;
  /* 443 may be held a moment by another run of this test (ctest's
   * RESOURCE_LOCK keeps this program's own runs apart). */
  for (int i = 0; i < 200 && err == RILL_EADDRINUSE; i++) {
    err = server_listen(w->base, &w->sv, cfg, "127.0.0.1:443");
    if (err == RILL_EADDRINUSE)
      tu_sleep_ms(50);
  }
  if (err) {
    print_message("test_tls_readme: cannot bind 127.0.0.1:443 (%s): the README's code runs "
                  "with the port substituted\n", rill_strerror(err));
    server_start(w->base, &w->sv, cfg);
    w->substituted = 1;
    char port[16];
    snprintf(port, sizeof port, "%d", w->sv.port);
    setenv("RILL_README_TLS_PORT", port, 1);
  } else {
    unsetenv("RILL_README_TLS_PORT");
  }
  rill_tls_config_unref(cfg);
  setenv("RILL_README_DNS", fake_dns_server(w->dns), 1);
}

static void world_end(world *w) {
  for (int i = 0; i < w->sv.accepted; i++) {
    if (!w->sv.sides[i].closed)
      rill_conn_close(w->sv.sides[i].conn);
    run_until(w->base, &w->sv.sides[i].closed, 5000);
  }
  rill_tls_listener_free(w->sv.l);
  tu_base_free(w->base);
  fake_dns_stop(w->dns);
}

/* Runs the README's program until the server read `want` from it (or, for
 * want NULL, until it exited), its exit followed by a few seconds of the
 * server's loop (it may exit before the server has read what it sent), or
 * a hang guard; kills it; its output. */
static char *run_readme(world *w, const char *want) {
  char *argv[] = {README_TLS_DIAL_BIN, NULL};
  char out[512];
  snprintf(out, sizeof out, "%s", tp_cert("readme_tls.out"));
  pid_t pid = tp_spawn(argv, NULL, out);
  assert_true(pid > 0);
  uint64_t end = tu_now_ms() + 30000;
  int status = -1;
  while (tu_now_ms() < end) {
    if (want && w->sv.accepted && strstr(w->sv.sides[0].in, want))
      break;
    if (status < 0 && (status = tp_exited(pid)) >= 0 && tu_now_ms() + 5000 < end)
      end = tu_now_ms() + 5000;
    if (!want && status >= 0)
      break;
    TU_RUN(w->base, RILL_RUN_NOWAIT, 5000);
    tu_sleep_ms(5);
  }
  if (status < 0)
    tp_kill(pid);
  char *text = tp_read_file(out);
  assert_non_null(text);
  return text;
}

/* The dial resolves example.test through the fake server, verifies the
 * certificate against the CA in SSL_CERT_FILE and the name dialed, sends
 * it as SNI, and writes "hello\n". */
static void test_readme_dial_example_test(void **state) {
  (void)state;
  world w = {0};
  world_start(&w);
  setenv("SSL_CERT_FILE", tp_cert("ca.crt"), 1);
  char *text = run_readme(&w, "hello\n");
  if (!w.sv.accepted || strcmp(w.sv.sides[0].in, "hello\n") != 0)
    fail_msg("the server read \"%s\"; the program printed: %s",
             w.sv.accepted ? w.sv.sides[0].in : "", text);
  assert_string_equal(text, ""); /* no error printed */
  free(text);
  char name[64];
  assert_int_equal(rill_tls_conn_server_name(w.sv.sides[0].conn, name, sizeof name), 12);
  assert_string_equal(name, "example.test");
  assert_true(fake_dns_queries_for(w.dns, "example.test") >= 1);
  assert_int_equal(w.sv.errors, 0);
  world_end(&w);
}

/* The same program trusting another CA: verification is on by default, and
 * it prints Go's text. */
static void test_readme_dial_untrusted(void **state) {
  (void)state;
  world w = {0};
  world_start(&w);
  setenv("SSL_CERT_FILE", tp_cert("rogue_ca.crt"), 1);
  setenv("SSL_CERT_DIR", tp_cert("no-such-dir"), 1); /* not the system's either */
  char *text = run_readme(&w, NULL);
  if (!strstr(text, "tls: failed to verify certificate: x509: certificate signed by unknown "
                    "authority"))
    fail_msg("the program printed: %s", text);
  free(text);
  assert_int_equal(w.sv.accepted, 0);
  run_until(w.base, &w.sv.errors, 5000);
  unsetenv("SSL_CERT_DIR");
  world_end(&w);
}

#endif

int main(void) {
#if defined(RILL_TEST_HAVE_TLS) && defined(README_TLS_DIAL_BIN)
  if (!rill_dns_version()) {
    printf("test_tls_readme: rill built without c-ares: skipped\n");
    return 0;
  }
  if (access(README_TLS_DIAL_BIN, X_OK) != 0) {
    fprintf(stderr, "test_tls_readme: %s missing (readme_blocks makes it)\n", README_TLS_DIAL_BIN);
    return 1;
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_readme_dial_example_test),
      cmocka_unit_test(test_readme_dial_untrusted),
  };
  return TT_RUN("test_tls_readme", tests);
#else
  printf("test_tls_readme: rill built without TLS: skipped\n");
  return 0;
#endif
}
