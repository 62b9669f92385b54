/* libev_echo_server — the echo benchmark's libev peer: raw_epoll_server's
 * echo written as a libev user writes it (libev 4, epoll backend).
 *
 *   libev_echo_server [--listen ADDR] [--quiet]
 *
 * One ev_io per connection, in a struct the server allocates (libev's
 * watchers live in the caller's memory). Bytes read into one shared buffer
 * are written straight back; what the kernel does not take is kept, and the
 * watcher waits for EV_WRITE instead of EV_READ until it is flushed.
 * SIGINT/SIGTERM (ev_signal) end it. */
#define _GNU_SOURCE
#include <ev.h>
#include <signal.h>
#include <unistd.h>

#include "echo_peer.h"

struct conn {
  ev_io io; /* first: the callback gets &io and casts back */
  char *pending; /* bytes the kernel did not take yet */
  size_t len, off;
  struct conn *prev, *next; /* every open connection, closed at exit */
};

static struct conn *open_conns;
static char buf[ECHO_READ_BUF];

static void conn_close(struct ev_loop *loop, struct conn *c) {
  ev_io_stop(loop, &c->io);
  close(c->io.fd);
  if (c->prev)
    c->prev->next = c->next;
  else
    open_conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  free(c->pending);
  free(c);
}

static void watch(struct ev_loop *loop, struct conn *c, int events) {
  ev_io_stop(loop, &c->io);
  ev_io_set(&c->io, c->io.fd, events);
  ev_io_start(loop, &c->io);
}

/* Writes data[0..len); keeps what the kernel does not take. 0, or -1 when
 * the connection is gone. */
static int send_or_keep(struct ev_loop *loop, struct conn *c, const char *data, size_t len) {
  size_t off = 0;
  while (off < len) {
    ssize_t n = write(c->io.fd, data + off, len - off);
    if (n > 0) {
      off += (size_t)n;
      continue;
    }
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      break;
    return -1;
  }
  if (off == len)
    return 0;
  c->pending = malloc(len - off);
  if (!c->pending)
    return -1;
  memcpy(c->pending, data + off, len - off);
  c->len = len - off;
  c->off = 0;
  /* Stop reading until the peer has taken what it already sent us back. */
  watch(loop, c, EV_WRITE);
  return 0;
}

static void flush_pending(struct ev_loop *loop, struct conn *c) {
  while (c->off < c->len) {
    ssize_t n = write(c->io.fd, c->pending + c->off, c->len - c->off);
    if (n > 0) {
      c->off += (size_t)n;
      continue;
    }
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      return;
    conn_close(loop, c);
    return;
  }
  free(c->pending);
  c->pending = NULL;
  c->len = c->off = 0;
  watch(loop, c, EV_READ);
}

static void on_conn(struct ev_loop *loop, ev_io *io, int revents) {
  struct conn *c = (struct conn *)io;
  ssize_t n;
  (void)revents;
  if (c->pending) {
    flush_pending(loop, c);
    return;
  }
  n = read(io->fd, buf, sizeof buf);
  if (n > 0) {
    if (send_or_keep(loop, c, buf, (size_t)n) < 0)
      conn_close(loop, c);
  } else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
    conn_close(loop, c);
  }
}

static void on_accept(struct ev_loop *loop, ev_io *listener, int revents) {
  (void)revents;
  for (;;) {
    struct conn *c;
    int fd = accept4(listener->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED)
        continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK)
        fprintf(stderr, "libev_echo_server: accept: %s\n", strerror(errno));
      return; /* EMFILE and friends: try again on the next readiness */
    }
    echo_set_nodelay(fd);
    c = calloc(1, sizeof *c);
    if (!c) {
      close(fd);
      continue;
    }
    ev_io_init(&c->io, on_conn, fd, EV_READ);
    ev_io_start(loop, &c->io);
    c->next = open_conns;
    if (open_conns)
      open_conns->prev = c;
    open_conns = c;
  }
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents) {
  (void)w;
  (void)revents;
  ev_break(loop, EVBREAK_ALL);
}

int main(int argc, char **argv) {
  struct echo_options opt = echo_parse_args(argc, argv);
  struct ev_loop *loop;
  ev_io listener;
  ev_signal sigint, sigterm;

  echo_raise_nofile();
  signal(SIGPIPE, SIG_IGN);
  loop = ev_default_loop(EVBACKEND_EPOLL);
  if (!loop) {
    fprintf(stderr, "libev_echo_server: no epoll loop\n");
    return 1;
  }
  ev_io_init(&listener, on_accept, echo_listen("libev_echo_server", opt.address), EV_READ);
  ev_io_start(loop, &listener);
  ev_signal_init(&sigint, on_signal, SIGINT);
  ev_signal_start(loop, &sigint);
  ev_signal_init(&sigterm, on_signal, SIGTERM);
  ev_signal_start(loop, &sigterm);
  if (!opt.quiet)
    printf("libev_echo_server: listening on %s (libev %d.%d)\n", opt.address, ev_version_major(),
           ev_version_minor());
  fflush(stdout);

  ev_run(loop, 0);

  while (open_conns)
    conn_close(loop, open_conns);
  ev_io_stop(loop, &listener);
  close(listener.fd);
  ev_signal_stop(loop, &sigint);
  ev_signal_stop(loop, &sigterm);
  ev_loop_destroy(loop);
  if (!opt.quiet)
    fprintf(stderr, "libev_echo_server: shutting down\n");
  return 0;
}
