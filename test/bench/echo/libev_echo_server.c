/* libev_echo_server — the echo server written on libev, for comparison.
 *
 *   libev_echo_server [--listen ADDR] [--quiet]
 *
 * The same shape as raw_epoll_server and rill's callback sample: one ev_io
 * per connection, level-triggered, one shared read buffer; bytes read go
 * straight back, and what the kernel does not take waits in a buffer of the
 * connection's while reading pauses. TCP_NODELAY on every connection.
 * SIGINT/SIGTERM end it (ev_signal), so a profiler sees a normal exit.
 *
 * Not built by CMake; test/bench/echo/callgrind.sh compiles it with
 *   cc -O2 libev_echo_server.c -lev */
#define _GNU_SOURCE
#include <errno.h>
#include <ev.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define READ_BUF 65536

struct conn {
  ev_io watcher; /* first: the callback gets the conn from it */
  char *pending; /* bytes the kernel did not take yet */
  size_t len, off;
};

static char read_buf[READ_BUF];

static void die(const char *what) {
  perror(what);
  exit(1);
}

static void conn_free(struct ev_loop *loop, struct conn *c) {
  ev_io_stop(loop, &c->watcher);
  close(c->watcher.fd);
  free(c->pending);
  free(c);
}

/* Writes what is pending; 0 when all of it went, 1 when the kernel is full,
 * -1 on an error. */
static int flush_pending(struct conn *c) {
  while (c->off < c->len) {
    ssize_t n = send(c->watcher.fd, c->pending + c->off, c->len - c->off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return errno == EAGAIN || errno == EWOULDBLOCK ? 1 : -1;
    c->off += (size_t)n;
  }
  free(c->pending);
  c->pending = NULL;
  c->len = c->off = 0;
  return 0;
}

static void set_interest(struct ev_loop *loop, struct conn *c, int events) {
  if ((c->watcher.events & (EV_READ | EV_WRITE)) == events)
    return;
  ev_io_stop(loop, &c->watcher);
  ev_io_set(&c->watcher, c->watcher.fd, events);
  ev_io_start(loop, &c->watcher);
}

static void on_conn(struct ev_loop *loop, ev_io *w, int revents) {
  struct conn *c = (struct conn *)w;
  if (revents & EV_WRITE) {
    int r = flush_pending(c);
    if (r < 0) {
      conn_free(loop, c);
      return;
    }
    if (r == 0)
      set_interest(loop, c, EV_READ);
    return;
  }
  ssize_t n = read(w->fd, read_buf, sizeof read_buf);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
    return;
  if (n <= 0) {
    conn_free(loop, c);
    return;
  }
  size_t done = 0;
  while (done < (size_t)n) {
    ssize_t w_n = send(w->fd, read_buf + done, (size_t)n - done, MSG_NOSIGNAL);
    if (w_n < 0 && errno == EINTR)
      continue;
    if (w_n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      break;
    if (w_n < 0) {
      conn_free(loop, c);
      return;
    }
    done += (size_t)w_n;
  }
  if (done < (size_t)n) {
    c->len = (size_t)n - done;
    c->off = 0;
    if (!(c->pending = malloc(c->len))) {
      conn_free(loop, c);
      return;
    }
    memcpy(c->pending, read_buf + done, c->len);
    set_interest(loop, c, EV_WRITE);
  }
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents) {
  (void)revents;
  for (;;) {
    int one = 1;
    int fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
      return;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct conn *c = calloc(1, sizeof *c);
    if (!c) {
      close(fd);
      continue;
    }
    ev_io_init(&c->watcher, on_conn, fd, EV_READ);
    ev_io_start(loop, &c->watcher);
  }
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents) {
  (void)w;
  (void)revents;
  ev_break(loop, EVBREAK_ALL);
}

/* "host:port" or "[v6]:port". */
static int listen_on(const char *address) {
  char host[256];
  const char *colon = strrchr(address, ':');
  struct addrinfo hints, *ai;
  int fd, one = 1;
  size_t hlen;
  if (!colon || (size_t)(colon - address) >= sizeof host) {
    fprintf(stderr, "libev_echo_server: bad address %s\n", address);
    exit(2);
  }
  hlen = (size_t)(colon - address);
  memcpy(host, address, hlen);
  host[hlen] = '\0';
  if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']') {
    memmove(host, host + 1, hlen - 2);
    host[hlen - 2] = '\0';
  }
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
  if (getaddrinfo(hlen ? host : NULL, colon + 1, &hints, &ai) != 0) {
    fprintf(stderr, "libev_echo_server: bad address %s\n", address);
    exit(2);
  }
  fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    die("socket");
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0)
    die("bind");
  freeaddrinfo(ai);
  if (listen(fd, SOMAXCONN) < 0)
    die("listen");
  return fd;
}

int main(int argc, char **argv) {
  const char *address = "127.0.0.1:7000";
  struct ev_loop *loop = ev_default_loop(EVBACKEND_EPOLL);
  ev_io accept_watcher;
  ev_signal sigint_watcher, sigterm_watcher;
  int i;
  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc)
      address = argv[++i];
    else if (strcmp(argv[i], "--quiet") != 0) {
      fprintf(stderr, "usage: %s [--listen ADDR] [--quiet]\n", argv[0]);
      return 2;
    }
  }
  if (!loop)
    die("ev_default_loop");
  signal(SIGPIPE, SIG_IGN);
  ev_io_init(&accept_watcher, on_accept, listen_on(address), EV_READ);
  ev_io_start(loop, &accept_watcher);
  ev_signal_init(&sigint_watcher, on_signal, SIGINT);
  ev_signal_init(&sigterm_watcher, on_signal, SIGTERM);
  ev_signal_start(loop, &sigint_watcher);
  ev_signal_start(loop, &sigterm_watcher);
  ev_run(loop, 0);
  return 0;
}
