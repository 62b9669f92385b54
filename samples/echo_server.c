/* echo_server — the callback echo server, in plain TCP or TLS.
 *
 *   echo_server [--listen ADDR] [--network tcp|tcp4|tcp6|unix]
 *               [--cert FILE --key FILE] [--quiet]
 *
 * Listens on ADDR (default 127.0.0.1:7000), echoes every byte back, and
 * serves until SIGINT or SIGTERM. With --cert and --key (PEM) it speaks
 * TLS (rill_tls_listen): the same callbacks see plaintext, and SIGHUP
 * re-reads the two files, so a renewed certificate is served without a
 * restart (the connections already made keep theirs).
 *
 * Two things every server copied from this one needs:
 *
 * - Back-pressure. A client that sends without reading the echo would
 *   otherwise make the server queue everything it sends. Once a
 *   connection's write queue holds more than WRITE_HIGH_WATER bytes, the
 *   server stops reading from it (TCP then holds the client back), and
 *   reads again when the queue has drained to WRITE_LOW_WATER.
 *
 * - A bounded shutdown. On the signal it stops accepting and closes every
 *   connection gracefully (what is queued is still sent), but gives the
 *   flush SHUTDOWN_GRACE_MS through a write deadline: a client that never
 *   reads cannot keep the server running. A second signal kills it at
 *   once (the watchers are gone, so the default action applies). */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rill.h>

/* At most this much echo waits in the queue per connection before the
 * server stops reading from it; one read (64 KiB at most) may go past it. */
#define WRITE_HIGH_WATER (256 * 1024)
#define WRITE_LOW_WATER (64 * 1024)
#define SHUTDOWN_GRACE_MS 5000

/* The live connections, for the shutdown: a table, each connection's
 * callback argument its row's number. A row costs 8 bytes where a
 * malloc'd list node cost 48, which matters when most of thousands of
 * connections sit idle. A closed connection's row links to the next free
 * row, with its low bit set (a connection pointer's is clear), so closed
 * rows are reused and the shutdown skips them. */
union client_row {
  rill_conn *conn;
  uintptr_t next_free; /* ((the next free row + 1) << 1) | 1; none: 1 */
};

struct client_table {
  union client_row *rows;
  size_t used, cap; /* rows handed out, room */
  size_t free;      /* the first free row + 1; 0: none */
};

struct server {
  rill_base *base;
  rill_listener *listener;         /* plain TCP; or */
  rill_tls_listener *tls_listener; /* with --cert and --key */
  rill_tls_config *tls;
  rill_signal *sigint, *sigterm, *sighup;
  struct client_table clients;
  int quiet;
  unsigned long accepted;
};

/* The table on_close updates: one server per process, and the argument
 * is the row's number, so the table is reached from here. */
static struct client_table *clients;

static size_t on_read(rill_conn *conn, const char *data, size_t len, int status, void *arg) {
  (void)arg;
  if (status == 0) {
    /* Straight back; what the kernel cannot take now is queued, and
     * on_high_water stops reading once too much is. */
    if (rill_conn_write(conn, data, len) < 0)
      rill_conn_abort(conn);
    return len;
  }
  rill_conn_close(conn); /* EOF or an error: flush what is queued, then close */
  return 0;
}

/* The client is not reading its echo: stop reading what it sends. */
static void on_high_water(rill_conn *conn, size_t queued, void *arg) {
  (void)queued;
  (void)arg;
  rill_conn_read_stop(conn);
}

/* It caught up: read again. */
static void on_low_water(rill_conn *conn, size_t queued, void *arg) {
  (void)queued;
  (void)arg;
  rill_conn_read_start(conn);
}

/* The peer is gone (or the shutdown's write deadline passed): nothing
 * more can be sent, so close. */
static void on_write_error(rill_conn *conn, int err, size_t unsent, void *arg) {
  (void)err;
  (void)unsent;
  (void)arg;
  rill_conn_abort(conn);
}

/* The row number for a new connection, or -1 when out of memory. */
static long client_add(struct client_table *t, rill_conn *conn) {
  size_t row;
  if (t->free) {
    row = t->free - 1;
    t->free = t->rows[row].next_free >> 1;
  } else {
    if (t->used == t->cap) {
      size_t cap = t->cap ? 2 * t->cap : 64;
      union client_row *rows = realloc(t->rows, cap * sizeof *rows);
      if (!rows)
        return -1;
      t->rows = rows;
      t->cap = cap;
    }
    row = t->used++;
  }
  t->rows[row].conn = conn;
  return (long)row;
}

static void on_close(rill_conn *conn, void *arg) {
  size_t row = (size_t)(uintptr_t)arg;
  (void)conn;
  clients->rows[row].next_free = ((uintptr_t)clients->free << 1) | 1;
  clients->free = row + 1;
}

static void accepted(struct server *s, rill_conn *conn, int status) {
  static const rill_conn_events events = {on_read,      NULL, on_high_water, on_low_water,
                                          on_write_error, on_close};
  long row;
  if (status < 0) {
    fprintf(stderr, "echo_server: accept: %s\n", rill_strerror(status));
    return;
  }
  row = client_add(&s->clients, conn);
  if (row < 0) {
    rill_conn_abort(conn);
    return;
  }
  s->accepted++;
  rill_conn_start(conn, &events, (void *)(uintptr_t)row);
}

static void on_accept(rill_listener *l, rill_conn *conn, int status, void *arg) {
  (void)l;
  accepted(arg, conn, status);
}

/* TLS: the connection comes after its handshake; failed handshakes never
 * come here. */
static void on_tls_accept(rill_tls_listener *l, rill_conn *conn, int status, void *arg) {
  (void)l;
  accepted(arg, conn, status);
}

/* SIGHUP: serve the certificate and key files as they are now. */
static void on_reload(rill_signal *sig, int signum, void *arg) {
  struct server *s = arg;
  int err = rill_tls_config_reload(s->tls);
  (void)sig;
  (void)signum;
  if (err < 0)
    fprintf(stderr, "echo_server: reload: %s (the old certificate stays)\n", rill_strerror(err));
  else if (!s->quiet)
    fprintf(stderr, "echo_server: certificate reloaded\n");
}

static void on_signal(rill_signal *sig, int signum, void *arg) {
  struct server *s = arg;
  size_t row;
  uint64_t deadline = rill_time_now() + SHUTDOWN_GRACE_MS * RILL_MSEC;
  (void)sig;
  if (!s->quiet)
    fprintf(stderr, "echo_server: signal %d, shutting down (%lu connections served)\n", signum,
            s->accepted);
  rill_listener_free(s->listener);
  rill_tls_listener_free(s->tls_listener);
  rill_signal_free(s->sigint);
  rill_signal_free(s->sigterm);
  rill_signal_free(s->sighup);
  for (row = 0; row < s->clients.used; row++) {
    rill_conn *conn = s->clients.rows[row].conn;
    if (s->clients.rows[row].next_free & 1)
      continue; /* closed */
    /* The deadline bounds the flush: once it passes, the connection is
     * closed with whatever it could not send. */
    rill_conn_set_deadline(conn, RILL_DEADLINE_WRITE, deadline);
    rill_conn_close(conn);
  }
  /* The loop ends by itself once the last close callback has run. */
}

int main(int argc, char **argv) {
  struct server s = {0};
  const char *address = "127.0.0.1:7000", *network = "tcp", *cert = NULL, *key = NULL;
  rill_socket_config options;
  char bound[RILL_ADDRSTRLEN];
  int i, err;

  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc)
      address = argv[++i];
    else if (strcmp(argv[i], "--network") == 0 && i + 1 < argc)
      network = argv[++i];
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
  clients = &s.clients;
  if ((err = rill_base_new(NULL, &s.base)) < 0) {
    fprintf(stderr, "echo_server: %s\n", rill_strerror(err));
    return 1;
  }
  if ((err = rill_signal_new(s.base, on_signal, &s, &s.sigint)) < 0 ||
      (err = rill_signal_new(s.base, on_signal, &s, &s.sigterm)) < 0 ||
      (err = rill_signal_start(s.sigint, SIGINT)) < 0 ||
      (err = rill_signal_start(s.sigterm, SIGTERM)) < 0) {
    fprintf(stderr, "echo_server: signals: %s\n", rill_strerror(err));
    return 1;
  }
  memset(&options, 0, sizeof options);
  options.write_high_water = WRITE_HIGH_WATER;
  options.write_low_water = WRITE_LOW_WATER;
  if (cert) {
    if ((err = rill_tls_config_new(RILL_TLS_SERVER, &s.tls)) < 0 ||
        (err = rill_tls_config_set_cert_key_files(s.tls, cert, key)) < 0) {
      fprintf(stderr, "echo_server: %s: %s\n", cert, rill_strerror(err));
      return 1;
    }
    if ((err = rill_signal_new(s.base, on_reload, &s, &s.sighup)) < 0 ||
        (err = rill_signal_start(s.sighup, SIGHUP)) < 0) {
      fprintf(stderr, "echo_server: signals: %s\n", rill_strerror(err));
      return 1;
    }
    err = rill_tls_listen(s.base, network, address, &options, s.tls, on_tls_accept, &s, &s.tls_listener);
  } else {
    err = rill_listen(s.base, network, address, &options, on_accept, &s, &s.listener);
  }
  if (err < 0) {
    char msg[256];
    rill_format_op_error("listen", network, NULL, address, NULL, err, msg, sizeof msg);
    fprintf(stderr, "echo_server: %s\n", msg);
    return 1;
  }
  rill_listener_addr(s.tls_listener ? rill_tls_listener_listener(s.tls_listener) : s.listener, bound,
                     sizeof bound);
  if (!s.quiet)
    printf("echo_server: listening on %s (%s backend%s)\n", bound, rill_base_backend(s.base),
           s.tls_listener ? ", TLS" : "");
  fflush(stdout);
  rill_base_run(s.base, RILL_RUN_DEFAULT);
  free(s.clients.rows);
  rill_tls_config_unref(s.tls);
  err = rill_base_free(s.base);
  if (err < 0)
    fprintf(stderr, "echo_server: rill_base_free: %s\n", rill_strerror(err));
  return err < 0 ? 1 : 0;
}
