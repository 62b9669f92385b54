/* Harness for the README's TLS dial (dial_tls: example.test:443, the
 * system trust store). test/tls/test_tls_readme.c runs the program it
 * makes (name=tls_dial_example) with:
 *   RILL_README_DNS       a fake DNS server on loopback that answers
 *                         example.test with 127.0.0.1 (never the system's);
 *   SSL_CERT_FILE         a throwaway CA, standing in for the system store;
 *   RILL_README_TLS_PORT  only where port 443 cannot be bound: the port
 *                         that replaces the fragment's 443.
 * Without RILL_README_DNS it exits at once, dialing nothing. It runs until
 * its base has nothing left to do, or the test, which has seen the
 * fragment's "hello\n", kills it. */
#include <rill.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int readme_tls_dial(rill_base *base, const char *network, const char *address,
                           const rill_socket_config *options, rill_tls_config *config,
                           rill_tls_dial_cb on_done, void *arg, rill_tls_dialer **out) {
  char substituted[300];
  const char *port = getenv("RILL_README_TLS_PORT");
  const char *colon = strrchr(address, ':');
  if (port && colon) {
    snprintf(substituted, sizeof substituted, "%.*s:%s", (int)(colon - address), address, port);
    address = substituted;
  }
  return rill_tls_dial(base, network, address, options, config, on_done, arg, out);
}
#define rill_tls_dial readme_tls_dial

@FRAGMENT@

int main(void) {
  const char *dns = getenv("RILL_README_DNS");
  if (!dns)
    return 0;
  rill_base_config cfg = {0};
  cfg.dns.servers = dns;
  cfg.dns.hosts_file = "/dev/null";
  rill_base *base;
  if (rill_base_new(&cfg, &base) < 0)
    return 1;
  int err = dial_tls(base);
  if (err < 0) {
    fprintf(stderr, "dial_tls: %s\n", rill_strerror(err));
    return 1;
  }
  rill_base_run(base, RILL_RUN_DEFAULT);
  return 0;
}
