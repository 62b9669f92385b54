/* proxy — a TCP proxy: each connection accepted is joined to a new
 * connection to the upstream, both ways, by a rill_pipe. Either side may
 * speak TLS.
 *
 *   proxy [--listen ADDR] [--upstream ADDR] [--copy] [--quiet]
 *         [--cert FILE --key FILE] [--upstream-ca FILE]
 *
 * Listens on ADDR (default 127.0.0.1:7001) and forwards to the upstream
 * (default 127.0.0.1:7000). The pipe does what a proxy must (pipe.h):
 * back-pressure both ways, a half-close carried across, a reset carried
 * across, and splice(2) unless --copy. docs/proxying.md explains it.
 *
 * --cert and --key (PEM): clients speak TLS to the proxy, which forwards
 * the plaintext (TLS termination). --upstream-ca: the proxy speaks TLS to
 * the upstream, verifying its certificate against that CA file and its
 * name against the upstream's host. A pipe never splices a TLS side: its
 * socket carries records, so those bytes are copied. */
#include <stdio.h>
#include <string.h>

#include <rill.h>

static struct {
  rill_base *base;
  const char *upstream;
  rill_pipe_options pipe;
  int quiet;
  rill_tls_config *tls_in, *tls_out; /* --cert/--key, --upstream-ca */
} g = {NULL, "127.0.0.1:7000", {0, 0, 0}, 0, NULL, NULL};

static void on_piped(rill_pipe *pipe, const rill_pipe_result *r, void *arg) {
  (void)pipe;
  (void)arg;
  if (!g.quiet)
    printf("proxy: %s, %llu bytes up, %llu down\n", r->status ? r->message : "done",
           (unsigned long long)r->a_to_b, (unsigned long long)r->b_to_a);
}

/* The upstream answered (status 0) or could not be reached (`why`). */
static void join(rill_conn *client, rill_conn *upstream, int status, const char *why) {
  if (status < 0) {
    fprintf(stderr, "proxy: %s\n", why);
    rill_conn_close(client);
    return;
  }
  /* From here the pipe owns both, and closes both when it is done. */
  if (rill_pipe_start(client, upstream, &g.pipe, on_piped, NULL, NULL) < 0) {
    rill_conn_close(client);
    rill_conn_close(upstream);
  }
}

static void on_upstream(rill_dialer *d, rill_conn *upstream, int status, void *arg) {
  char why[256] = "";
  if (status < 0)
    rill_dialer_format_error(d, status, why, sizeof why);
  join(arg, upstream, status, why);
}

static void on_tls_upstream(rill_tls_dialer *d, rill_conn *upstream, int status, void *arg) {
  char why[256] = "";
  if (status < 0)
    rill_tls_dialer_format_error(d, status, why, sizeof why);
  join(arg, upstream, status, why);
}

static void accepted(rill_conn *client, int status) {
  static const rill_socket_config dial_options = {.timeout = 5 * RILL_SEC};
  int err;
  if (status < 0) { /* -EMFILE and friends: the listener goes on */
    fprintf(stderr, "proxy: accept: %s\n", rill_strerror(status));
    return;
  }
  /* The client is not read until the pipe starts: what it sends meanwhile
   * waits in the kernel. */
  err = g.tls_out ? rill_tls_dial(g.base, "tcp", g.upstream, &dial_options, g.tls_out,
                                  on_tls_upstream, client, NULL)
                  : rill_dial(g.base, "tcp", g.upstream, &dial_options, on_upstream, client, NULL);
  if (err < 0)
    rill_conn_close(client);
}

static void on_accept(rill_listener *l, rill_conn *client, int status, void *arg) {
  (void)l;
  (void)arg;
  accepted(client, status);
}

/* A TLS client comes after its handshake; failed ones never come. */
static void on_tls_accept(rill_tls_listener *l, rill_conn *client, int status, void *arg) {
  (void)l;
  (void)arg;
  accepted(client, status);
}

int main(int argc, char **argv) {
  const char *listen_addr = "127.0.0.1:7001", *cert = NULL, *key = NULL, *upstream_ca = NULL;
  rill_listener *listener = NULL;
  rill_tls_listener *tls_listener = NULL;
  char addr[RILL_ADDRSTRLEN];
  int err;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--listen") && i + 1 < argc)
      listen_addr = argv[++i];
    else if (!strcmp(argv[i], "--upstream") && i + 1 < argc)
      g.upstream = argv[++i];
    else if (!strcmp(argv[i], "--copy"))
      g.pipe.splice = -1;
    else if (!strcmp(argv[i], "--quiet"))
      g.quiet = 1;
    else if (!strcmp(argv[i], "--cert") && i + 1 < argc)
      cert = argv[++i];
    else if (!strcmp(argv[i], "--key") && i + 1 < argc)
      key = argv[++i];
    else if (!strcmp(argv[i], "--upstream-ca") && i + 1 < argc)
      upstream_ca = argv[++i];
    else
      cert = key = "";
  }
  if (!cert != !key || (cert && !*cert)) {
    fprintf(stderr, "usage: proxy [--listen ADDR] [--upstream ADDR] [--copy] [--quiet]\n"
                    "             [--cert FILE --key FILE] [--upstream-ca FILE]\n");
    return 2;
  }
  if ((cert && ((err = rill_tls_config_new(RILL_TLS_SERVER, &g.tls_in)) < 0 ||
                (err = rill_tls_config_set_cert_key_files(g.tls_in, cert, key)) < 0)) ||
      (upstream_ca && ((err = rill_tls_config_new(RILL_TLS_CLIENT, &g.tls_out)) < 0 ||
                       (err = rill_tls_config_set_ca_file(g.tls_out, upstream_ca)) < 0))) {
    fprintf(stderr, "proxy: TLS: %s\n", rill_strerror(err));
    return 1;
  }
  if ((err = rill_base_new(NULL, &g.base)) < 0 ||
      (err = g.tls_in ? rill_tls_listen(g.base, "tcp", listen_addr, NULL, g.tls_in, on_tls_accept,
                                        NULL, &tls_listener)
                      : rill_listen(g.base, "tcp", listen_addr, NULL, on_accept, NULL, &listener)) < 0) {
    fprintf(stderr, "proxy: %s: %s\n", listen_addr, rill_strerror(err));
    return 1;
  }
  rill_listener_addr(tls_listener ? rill_tls_listener_listener(tls_listener) : listener, addr,
                     sizeof addr);
  printf("proxy: listening on %s%s -> %s%s\n", addr, g.tls_in ? " (TLS)" : "", g.upstream,
         g.tls_out ? " (TLS)" : "");
  fflush(stdout);
  return rill_base_run(g.base, RILL_RUN_DEFAULT) < 0;
}
