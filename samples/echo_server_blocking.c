/* echo_server_blocking — the echo server written with the blocking facade.
 *
 *   echo_server_blocking [--listen ADDR] [--network tcp|tcp4|tcp6|unix]
 *                        [--cert FILE --key FILE] [--quiet]
 *
 * The same program as samples/echo_server.c (callbacks) and
 * samples/go/echo_server.go (Go), written the way the Go one is: a fiber
 * accepts, and every connection gets a fiber of its own that reads and
 * writes back until EOF. Listens on ADDR (default 127.0.0.1:7000) and
 * serves until SIGINT or SIGTERM; then a signal callback closes the
 * listener and every connection, which wakes their fibers with "use of
 * closed network connection"; they return, and rill_base_run() returns
 * once the last one has. With --cert and --key (PEM) it speaks TLS, as Go's
 * tls.Listen: rill_net_tls_listen() instead of rill_net_listen(), and the
 * rest unchanged. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rill.h>

struct client {
  struct server *server;
  rill_net_conn *conn;
  struct client *prev, *next;
};

struct server {
  rill_base *base;
  const char *network, *address;
  rill_tls_config *tls; /* with --cert and --key */
  rill_net_listener *listener; /* closed by the signal, freed by the accept loop */
  rill_signal *sigint, *sigterm;
  struct client *clients;
  int quiet, failed;
  unsigned long accepted;
};

static void unlink_client(struct client *c) {
  if (c->prev)
    c->prev->next = c->next;
  else
    c->server->clients = c->next;
  if (c->next)
    c->next->prev = c->prev;
}

/* One per connection: read, write back, until EOF or an error. */
static void serve(void *arg) {
  struct client *c = arg;
  char buf[16 * 1024]; /* the fiber's stack is 256 KiB */
  /* Nothing else points into this stack (the client is on the heap): an
   * idle connection's fiber may give its stack pages back. */
  (void)rill_fiber_private_stack();
  for (;;) {
    ssize_t n = rill_net_read(c->conn, buf, sizeof buf);
    int err;
    if (n < 0) {
      if (n != RILL_EOF && n != RILL_ECLOSED && !c->server->quiet) {
        char msg[256];
        rill_net_format_error(c->conn, "read", (int)n, msg, sizeof msg);
        fprintf(stderr, "echo_server_blocking: %s\n", msg);
      }
      break;
    }
    if ((err = rill_net_write(c->conn, buf, (size_t)n, NULL)) < 0)
      break;
  }
  unlink_client(c);
  rill_net_conn_free(c->conn);
  free(c);
}

static void accept_loop(void *arg) {
  struct server *s = arg;
  for (;;) {
    rill_net_conn *conn;
    struct client *c;
    int err = rill_net_accept(s->listener, &conn);
    if (err == RILL_ECLOSED)
      break; /* the signal callback closed the listener */
    if (err < 0) {
      /* Out of descriptors, say: report, back off a little, accept again.
       * A close meanwhile makes the next accept say RILL_ECLOSED. */
      fprintf(stderr, "echo_server_blocking: accept: %s\n", rill_strerror(err));
      rill_sleep(10 * RILL_MSEC);
      continue;
    }
    if (!(c = calloc(1, sizeof *c))) {
      rill_net_conn_free(conn);
      continue;
    }
    c->server = s;
    c->conn = conn;
    c->next = s->clients;
    if (s->clients)
      s->clients->prev = c;
    s->clients = c;
    s->accepted++;
    if (rill_go(s->base, serve, c) < 0) {
      unlink_client(c);
      rill_net_conn_free(conn);
      free(c);
    }
  }
  rill_net_listener_free(s->listener);
  s->listener = NULL;
}

/* The first fiber: listen (the facade's listen needs a fiber), then accept. */
static void start(void *arg) {
  struct server *s = arg;
  char bound[RILL_ADDRSTRLEN];
  int err = s->tls ? rill_net_tls_listen(s->network, s->address, NULL, s->tls, &s->listener)
                   : rill_net_listen(s->network, s->address, NULL, &s->listener);
  if (err < 0) {
    char msg[256];
    rill_format_op_error("listen", s->network, NULL, s->address, NULL, err, msg, sizeof msg);
    fprintf(stderr, "echo_server_blocking: %s\n", msg);
    s->failed = 1;
    rill_signal_free(s->sigint);
    rill_signal_free(s->sigterm);
    s->sigint = s->sigterm = NULL;
    return;
  }
  rill_net_listener_addr(s->listener, bound, sizeof bound);
  if (!s->quiet)
    printf("echo_server_blocking: listening on %s (%s backend, fibers%s)\n", bound,
           rill_base_backend(s->base), s->tls ? ", TLS" : "");
  fflush(stdout);
  accept_loop(s);
}

static void on_signal(rill_signal *sig, int signum, void *arg) {
  struct server *s = arg;
  struct client *c;
  (void)sig;
  if (!s->quiet)
    fprintf(stderr, "echo_server_blocking: signal %d, shutting down (%lu connections served)\n", signum,
            s->accepted);
  rill_signal_free(s->sigint);
  rill_signal_free(s->sigterm);
  s->sigint = s->sigterm = NULL;
  /* Closing wakes the parked fibers; each then unlinks and frees itself.
   * The accept loop frees the listener once its accept says RILL_ECLOSED
   * (it may be backing off after an accept error, not parked in accept). */
  if (s->listener)
    rill_net_listener_close(s->listener);
  for (c = s->clients; c; c = c->next)
    rill_net_close(c->conn);
}

int main(int argc, char **argv) {
  struct server s = {0};
  const char *cert = NULL, *key = NULL;
  int i, err;

  s.address = "127.0.0.1:7000";
  s.network = "tcp";
  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc)
      s.address = argv[++i];
    else if (strcmp(argv[i], "--network") == 0 && i + 1 < argc)
      s.network = argv[++i];
    else if (strcmp(argv[i], "--cert") == 0 && i + 1 < argc)
      cert = argv[++i];
    else if (strcmp(argv[i], "--key") == 0 && i + 1 < argc)
      key = argv[++i];
    else if (strcmp(argv[i], "--quiet") == 0)
      s.quiet = 1;
    else
      break;
  }
  if (i < argc || !cert != !key) {
    fprintf(stderr, "usage: %s [--listen ADDR] [--network tcp|tcp4|tcp6|unix] [--cert FILE --key FILE] [--quiet]\n",
            argv[0]);
    return 2;
  }
  if (cert && ((err = rill_tls_config_new(RILL_TLS_SERVER, &s.tls)) < 0 ||
               (err = rill_tls_config_set_cert_key_files(s.tls, cert, key)) < 0)) {
    fprintf(stderr, "echo_server_blocking: %s: %s\n", cert, rill_strerror(err));
    return 1;
  }
  if ((err = rill_base_new(NULL, &s.base)) < 0 || (err = rill_signal_new(s.base, on_signal, &s, &s.sigint)) < 0 ||
      (err = rill_signal_new(s.base, on_signal, &s, &s.sigterm)) < 0 ||
      (err = rill_signal_start(s.sigint, SIGINT)) < 0 || (err = rill_signal_start(s.sigterm, SIGTERM)) < 0 ||
      (err = rill_go(s.base, start, &s)) < 0) {
    fprintf(stderr, "echo_server_blocking: %s\n", rill_strerror(err));
    return 1;
  }
  rill_base_run(s.base, RILL_RUN_DEFAULT);
  rill_tls_config_unref(s.tls);
  err = rill_base_free(s.base);
  if (err < 0)
    fprintf(stderr, "echo_server_blocking: rill_base_free: %s\n", rill_strerror(err));
  return err < 0 || s.failed ? 1 : 0;
}
