/* echo_server — the callback echo server.
 *
 *   echo_server [--listen ADDR] [--network tcp|tcp4|tcp6|unix] [--quiet]
 *
 * Listens on ADDR (default 127.0.0.1:7000), echoes every byte back, and
 * serves until SIGINT or SIGTERM, then stops accepting, closes every
 * connection and exits cleanly. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rill.h>

struct client {
  struct server *server;
  rill_conn *conn;
  struct client *prev, *next;
};

struct server {
  rill_base *base;
  rill_listener *listener;
  rill_signal *sigint, *sigterm;
  struct client *clients;
  int quiet;
  unsigned long accepted;
};

static size_t on_read(rill_conn *conn, const char *data, size_t len, int status, void *arg) {
  (void)arg;
  if (status == 0) {
    /* Straight back; what the kernel cannot take now is queued. */
    if (rill_conn_write(conn, data, len) < 0)
      rill_conn_abort(conn);
    return len;
  }
  rill_conn_close(conn); /* EOF or an error: flush what is queued, then close */
  return 0;
}

static void on_close(rill_conn *conn, void *arg) {
  struct client *c = arg;
  (void)conn;
  if (c->prev)
    c->prev->next = c->next;
  else
    c->server->clients = c->next;
  if (c->next)
    c->next->prev = c->prev;
  free(c);
}

static void on_accept(rill_listener *l, rill_conn *conn, int status, void *arg) {
  struct server *s = arg;
  static const rill_conn_events events = {on_read, NULL, NULL, NULL, NULL, on_close};
  struct client *c;
  (void)l;
  if (status < 0) {
    fprintf(stderr, "echo_server: accept: %s\n", rill_strerror(status));
    return;
  }
  c = calloc(1, sizeof *c);
  if (!c) {
    rill_conn_abort(conn);
    return;
  }
  c->server = s;
  c->conn = conn;
  c->next = s->clients;
  if (s->clients)
    s->clients->prev = c;
  s->clients = c;
  s->accepted++;
  rill_conn_start(conn, &events, c);
}

static void on_signal(rill_signal *sig, int signum, void *arg) {
  struct server *s = arg;
  struct client *c;
  (void)sig;
  if (!s->quiet)
    fprintf(stderr, "echo_server: signal %d, shutting down (%lu connections served)\n", signum,
            s->accepted);
  rill_listener_close(s->listener);
  rill_signal_free(s->sigint);
  rill_signal_free(s->sigterm);
  for (c = s->clients; c; c = c->next)
    rill_conn_close(c->conn);
  /* The loop ends by itself once the last close callback has run. */
}

int main(int argc, char **argv) {
  struct server s = {0};
  const char *address = "127.0.0.1:7000", *network = "tcp";
  char bound[RILL_ADDRSTRLEN];
  int i, err;

  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc)
      address = argv[++i];
    else if (strcmp(argv[i], "--network") == 0 && i + 1 < argc)
      network = argv[++i];
    else if (strcmp(argv[i], "--quiet") == 0)
      s.quiet = 1;
    else {
      fprintf(stderr, "usage: %s [--listen ADDR] [--network tcp|tcp4|tcp6|unix] [--quiet]\n", argv[0]);
      return 2;
    }
  }
  if ((err = rill_base_new(NULL, &s.base)) < 0) {
    fprintf(stderr, "echo_server: %s\n", rill_strerror(err));
    return 1;
  }
  rill_signal_new(s.base, on_signal, &s, &s.sigint);
  rill_signal_new(s.base, on_signal, &s, &s.sigterm);
  rill_signal_start(s.sigint, SIGINT);
  rill_signal_start(s.sigterm, SIGTERM);
  err = rill_listen(s.base, network, address, NULL, on_accept, &s, &s.listener);
  if (err < 0) {
    char msg[256];
    rill_format_op_error(msg, sizeof msg, "listen", network, NULL, address, NULL, err);
    fprintf(stderr, "echo_server: %s\n", msg);
    return 1;
  }
  rill_listener_addr(s.listener, bound, sizeof bound);
  if (!s.quiet)
    printf("echo_server: listening on %s (%s backend)\n", bound, rill_base_backend(s.base));
  fflush(stdout);
  rill_base_run(s.base, RILL_RUN_DEFAULT);
  err = rill_base_free(s.base);
  if (err < 0)
    fprintf(stderr, "echo_server: rill_base_free: %s\n", rill_strerror(err));
  return err < 0 ? 1 : 0;
}
