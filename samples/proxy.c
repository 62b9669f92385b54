/* proxy — a TCP proxy: each connection accepted is joined to a new
 * connection to the upstream, both ways, by a rill_pipe.
 *
 *   proxy [--listen ADDR] [--upstream ADDR] [--copy] [--quiet]
 *
 * Listens on ADDR (default 127.0.0.1:7001) and forwards to the upstream
 * (default 127.0.0.1:7000). The pipe does what a proxy must (pipe.h):
 * back-pressure both ways, a half-close carried across, a reset carried
 * across, and splice(2) unless --copy. docs/proxying.md explains it. */
#include <stdio.h>
#include <string.h>

#include <rill.h>

static struct {
  rill_base *base;
  const char *upstream;
  rill_pipe_options pipe;
  int quiet;
} g = {NULL, "127.0.0.1:7000", {0, 0, 0}, 0};

static void on_piped(rill_pipe *pipe, const rill_pipe_result *r, void *arg) {
  (void)pipe;
  (void)arg;
  if (!g.quiet)
    printf("proxy: %s, %llu bytes up, %llu down\n", r->status ? r->message : "done",
           (unsigned long long)r->a_to_b, (unsigned long long)r->b_to_a);
}

static void on_upstream(rill_dialer *d, rill_conn *upstream, int status, void *arg) {
  rill_conn *client = arg;
  if (status < 0) {
    char msg[256];
    rill_dialer_format_error(d, status, msg, sizeof msg);
    fprintf(stderr, "proxy: %s\n", msg);
    rill_conn_close(client);
    return;
  }
  /* From here the pipe owns both, and closes both when it is done. */
  if (rill_pipe_start(client, upstream, &g.pipe, on_piped, NULL, NULL) < 0) {
    rill_conn_close(client);
    rill_conn_close(upstream);
  }
}

static void on_accept(rill_listener *l, rill_conn *client, int status, void *arg) {
  static const rill_socket_config dial_options = {.timeout = 5 * RILL_SEC};
  (void)l;
  (void)arg;
  if (status < 0) { /* -EMFILE and friends: the listener goes on */
    fprintf(stderr, "proxy: accept: %s\n", rill_strerror(status));
    return;
  }
  /* The client is not read until the pipe starts: what it sends meanwhile
   * waits in the kernel. */
  if (rill_dial(g.base, "tcp", g.upstream, &dial_options, on_upstream, client, NULL) < 0)
    rill_conn_close(client);
}

int main(int argc, char **argv) {
  const char *listen_addr = "127.0.0.1:7001";
  rill_listener *listener;
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
    else {
      fprintf(stderr, "usage: proxy [--listen ADDR] [--upstream ADDR] [--copy] [--quiet]\n");
      return 2;
    }
  }
  if ((err = rill_base_new(NULL, &g.base)) < 0 ||
      (err = rill_listen(g.base, "tcp", listen_addr, NULL, on_accept, NULL, &listener)) < 0) {
    fprintf(stderr, "proxy: %s: %s\n", listen_addr, rill_strerror(err));
    return 1;
  }
  rill_listener_addr(listener, addr, sizeof addr);
  printf("proxy: listening on %s -> %s\n", addr, g.upstream);
  fflush(stdout);
  return rill_base_run(g.base, RILL_RUN_DEFAULT) < 0;
}
