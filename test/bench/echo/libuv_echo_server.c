/* libuv_echo_server — the echo benchmark's libuv peer: raw_epoll_server's
 * echo written as a libuv user writes it (libuv 1.x, epoll on Linux).
 *
 *   libuv_echo_server [--listen ADDR] [--quiet]
 *
 * A uv_tcp_t per connection reading with uv_read_start() into one shared
 * buffer (the alloc callback hands it out; the loop is single-threaded and
 * every read is consumed before the next). The echo goes out with
 * uv_try_write(), the direct write; what the kernel does not take is copied
 * into a uv_write() request and reading stops until it completes.
 * SIGINT/SIGTERM (uv_signal) end it. */
#define _GNU_SOURCE
#include <signal.h>
#include <uv.h>

#include "echo_peer.h"

struct conn {
  uv_tcp_t tcp; /* first: callbacks get &tcp and cast back */
  struct conn *prev, *next; /* every open connection, closed at exit */
};

/* The rest of an echo the kernel did not take, with its write request. */
struct pending_write {
  uv_write_t req;
  char data[];
};

static uv_loop_t *loop;
static struct conn *open_conns;
static char buf[ECHO_READ_BUF];

static void on_closed(uv_handle_t *handle) {
  struct conn *c = (struct conn *)handle;
  if (c->prev)
    c->prev->next = c->next;
  else
    open_conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  free(c);
}

static void conn_close(struct conn *c) {
  if (!uv_is_closing((uv_handle_t *)&c->tcp))
    uv_close((uv_handle_t *)&c->tcp, on_closed);
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *out) {
  (void)handle;
  (void)suggested;
  *out = uv_buf_init(buf, sizeof buf);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *in);

static void on_written(uv_write_t *req, int status) {
  struct conn *c = (struct conn *)req->handle;
  free(req);
  if (status < 0 || uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0)
    conn_close(c);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *in) {
  struct conn *c = (struct conn *)stream;
  struct pending_write *w;
  uv_buf_t rest;
  int sent;
  if (nread <= 0) {
    if (nread < 0) /* UV_EOF or an error; 0 is EAGAIN */
      conn_close(c);
    return;
  }
  rest = uv_buf_init(in->base, (unsigned)nread);
  sent = uv_try_write(stream, &rest, 1);
  if (sent == nread)
    return;
  if (sent < 0 && sent != UV_EAGAIN) {
    conn_close(c);
    return;
  }
  if (sent < 0)
    sent = 0;
  w = malloc(sizeof *w + (size_t)(nread - sent));
  if (!w) {
    conn_close(c);
    return;
  }
  memcpy(w->data, in->base + sent, (size_t)(nread - sent));
  rest = uv_buf_init(w->data, (unsigned)(nread - sent));
  /* Stop reading until the peer has taken what it already sent us back. */
  uv_read_stop(stream);
  if (uv_write(&w->req, stream, &rest, 1, on_written) < 0) {
    free(w);
    conn_close(c);
  }
}

static void on_connection(uv_stream_t *server, int status) {
  struct conn *c;
  if (status < 0) {
    fprintf(stderr, "libuv_echo_server: accept: %s\n", uv_strerror(status));
    return;
  }
  c = calloc(1, sizeof *c);
  if (!c)
    return; /* out of memory: libuv keeps the accepted socket and accepts no more */
  uv_tcp_init(loop, &c->tcp);
  c->next = open_conns;
  if (open_conns)
    open_conns->prev = c;
  open_conns = c;
  if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0 || uv_tcp_nodelay(&c->tcp, 1) < 0 ||
      uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0)
    conn_close(c);
}

static void on_signal(uv_signal_t *sig, int signum) {
  (void)signum;
  uv_stop(sig->loop);
}

static void close_any(uv_handle_t *handle, void *arg) {
  (void)arg;
  if (!uv_is_closing(handle))
    uv_close(handle, NULL);
}

int main(int argc, char **argv) {
  struct echo_options opt = echo_parse_args(argc, argv);
  uv_tcp_t listener;
  uv_signal_t sigint, sigterm;
  int err;

  echo_raise_nofile();
  signal(SIGPIPE, SIG_IGN);
  loop = uv_default_loop();
  uv_tcp_init(loop, &listener);
  if ((err = uv_tcp_open(&listener, echo_listen("libuv_echo_server", opt.address))) < 0 ||
      (err = uv_listen((uv_stream_t *)&listener, SOMAXCONN, on_connection)) < 0) {
    fprintf(stderr, "libuv_echo_server: listen on %s: %s\n", opt.address, uv_strerror(err));
    return 1;
  }
  uv_signal_init(loop, &sigint);
  uv_signal_start(&sigint, on_signal, SIGINT);
  uv_signal_init(loop, &sigterm);
  uv_signal_start(&sigterm, on_signal, SIGTERM);
  if (!opt.quiet)
    printf("libuv_echo_server: listening on %s (libuv %s)\n", opt.address, uv_version_string());
  fflush(stdout);

  uv_run(loop, UV_RUN_DEFAULT);

  for (struct conn *c = open_conns; c; c = c->next)
    conn_close(c); /* on_closed frees them, in the run below */
  uv_walk(loop, close_any, NULL); /* the listener, the signals, connections closing */
  uv_run(loop, UV_RUN_DEFAULT);   /* close callbacks free the connections */
  uv_loop_close(loop);
  if (!opt.quiet)
    fprintf(stderr, "libuv_echo_server: shutting down\n");
  return 0;
}
