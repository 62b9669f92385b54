/* libevent_raw_server — the echo benchmark's libevent peer on raw events:
 * raw_epoll_server's echo written with event_new() and read()/write() on the
 * descriptor (libevent 2.1, epoll backend). libevent_bev_server.c is the
 * same echo through bufferevents.
 *
 *   libevent_raw_server [--listen ADDR] [--quiet]
 *
 * A persistent EV_READ event per connection. Bytes read into one shared
 * buffer are written straight back; what the kernel does not take is kept,
 * the read event is removed and a write event (made at first need) added
 * until it is flushed. SIGINT/SIGTERM (evsignal) end it. */
#define _GNU_SOURCE
#include <event2/event.h>
#include <signal.h>
#include <unistd.h>

#include "echo_peer.h"

struct conn {
  int fd;
  struct event *read_ev;
  struct event *write_ev; /* NULL until the kernel first refuses an echo */
  char *pending;          /* bytes the kernel did not take yet */
  size_t len, off;
  struct conn *prev, *next; /* every open connection, closed at exit */
};

static struct event_base *base;
static struct conn *open_conns;
static char buf[ECHO_READ_BUF];

static void conn_close(struct conn *c) {
  event_free(c->read_ev);
  if (c->write_ev)
    event_free(c->write_ev);
  close(c->fd);
  if (c->prev)
    c->prev->next = c->next;
  else
    open_conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  free(c->pending);
  free(c);
}

static void on_writable(evutil_socket_t fd, short what, void *arg);

/* Writes data[0..len); keeps what the kernel does not take. 0, or -1 when
 * the connection is gone. */
static int send_or_keep(struct conn *c, const char *data, size_t len) {
  size_t off = 0;
  while (off < len) {
    ssize_t n = write(c->fd, data + off, len - off);
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
  if (!c->write_ev && !(c->write_ev = event_new(base, c->fd, EV_WRITE | EV_PERSIST, on_writable, c)))
    return -1;
  c->pending = malloc(len - off);
  if (!c->pending)
    return -1;
  memcpy(c->pending, data + off, len - off);
  c->len = len - off;
  c->off = 0;
  /* Stop reading until the peer has taken what it already sent us back. */
  if (event_del(c->read_ev) < 0 || event_add(c->write_ev, NULL) < 0)
    return -1;
  return 0;
}

static void on_writable(evutil_socket_t fd, short what, void *arg) {
  struct conn *c = arg;
  (void)what;
  while (c->off < c->len) {
    ssize_t n = write(fd, c->pending + c->off, c->len - c->off);
    if (n > 0) {
      c->off += (size_t)n;
      continue;
    }
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      return;
    conn_close(c);
    return;
  }
  free(c->pending);
  c->pending = NULL;
  c->len = c->off = 0;
  if (event_del(c->write_ev) < 0 || event_add(c->read_ev, NULL) < 0)
    conn_close(c);
}

static void on_readable(evutil_socket_t fd, short what, void *arg) {
  struct conn *c = arg;
  ssize_t n = read(fd, buf, sizeof buf);
  (void)what;
  if (n > 0) {
    if (send_or_keep(c, buf, (size_t)n) < 0)
      conn_close(c);
  } else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
    conn_close(c);
  }
}

static void on_accept(evutil_socket_t lfd, short what, void *arg) {
  (void)what;
  (void)arg;
  for (;;) {
    struct conn *c;
    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED)
        continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK)
        fprintf(stderr, "libevent_raw_server: accept: %s\n", strerror(errno));
      return; /* EMFILE and friends: try again on the next readiness */
    }
    echo_set_nodelay(fd);
    c = calloc(1, sizeof *c);
    if (!c) {
      close(fd);
      continue;
    }
    c->fd = fd;
    c->read_ev = event_new(base, fd, EV_READ | EV_PERSIST, on_readable, c);
    if (!c->read_ev || event_add(c->read_ev, NULL) < 0) {
      if (c->read_ev)
        event_free(c->read_ev);
      free(c);
      close(fd);
      continue;
    }
    c->next = open_conns;
    if (open_conns)
      open_conns->prev = c;
    open_conns = c;
  }
}

static void on_signal(evutil_socket_t sig, short what, void *arg) {
  (void)sig;
  (void)what;
  (void)arg;
  event_base_loopbreak(base);
}

int main(int argc, char **argv) {
  struct echo_options opt = echo_parse_args(argc, argv);
  struct event_config *cfg;
  struct event *listener, *sigint, *sigterm;
  int lfd;

  echo_raise_nofile();
  signal(SIGPIPE, SIG_IGN);
  /* epoll, as every other server in the benchmark uses. */
  cfg = event_config_new();
  if (!cfg || event_config_avoid_method(cfg, "poll") < 0 || event_config_avoid_method(cfg, "select") < 0 ||
      !(base = event_base_new_with_config(cfg))) {
    fprintf(stderr, "libevent_raw_server: no event base\n");
    return 1;
  }
  event_config_free(cfg);
  lfd = echo_listen("libevent_raw_server", opt.address);
  listener = event_new(base, lfd, EV_READ | EV_PERSIST, on_accept, NULL);
  sigint = evsignal_new(base, SIGINT, on_signal, NULL);
  sigterm = evsignal_new(base, SIGTERM, on_signal, NULL);
  if (!listener || !sigint || !sigterm || event_add(listener, NULL) < 0 || event_add(sigint, NULL) < 0 ||
      event_add(sigterm, NULL) < 0) {
    fprintf(stderr, "libevent_raw_server: cannot add the listener or the signals\n");
    return 1;
  }
  if (!opt.quiet)
    printf("libevent_raw_server: listening on %s (libevent %s, %s)\n", opt.address, event_get_version(),
           event_base_get_method(base));
  fflush(stdout);

  event_base_dispatch(base);

  while (open_conns)
    conn_close(open_conns);
  event_free(listener);
  event_free(sigint);
  event_free(sigterm);
  close(lfd);
  event_base_free(base);
  if (!opt.quiet)
    fprintf(stderr, "libevent_raw_server: shutting down\n");
  return 0;
}
