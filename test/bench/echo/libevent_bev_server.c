/* libevent_bev_server — the echo benchmark's libevent peer through
 * bufferevents, the way libevent's documentation writes an echo server
 * (libevent 2.1, epoll backend): an evconnlistener accepts, a socket
 * bufferevent per connection reads into its input evbuffer, the read
 * callback moves all of it to the output evbuffer, and the bufferevent
 * writes that when the socket is writable. libevent_raw_server.c is the
 * same echo on raw events.
 *
 *   libevent_bev_server [--listen ADDR] [--quiet]
 *
 * Back-pressure as in rill's echo_server: past WRITE_HIGH_WATER bytes of
 * unsent echo the connection stops reading until the output has drained
 * (the write callback runs when it is empty). Library defaults otherwise
 * (16 KiB at most per read). SIGINT/SIGTERM (evsignal) end it. */
#define _GNU_SOURCE
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <signal.h>
#include <unistd.h>

#include "echo_peer.h"

#define WRITE_HIGH_WATER (256 * 1024)

struct conn {
  struct bufferevent *bev;
  int closing; /* the peer has finished: free once the echo is out */
  struct conn *prev, *next; /* every open connection, freed at exit */
};

static struct event_base *base;
static struct conn *open_conns;

static void conn_free(struct conn *c) {
  bufferevent_free(c->bev); /* BEV_OPT_CLOSE_ON_FREE: closes the socket */
  if (c->prev)
    c->prev->next = c->next;
  else
    open_conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  free(c);
}

static void on_read(struct bufferevent *bev, void *arg) {
  struct evbuffer *out = bufferevent_get_output(bev);
  (void)arg;
  if (evbuffer_add_buffer(out, bufferevent_get_input(bev)) < 0) {
    conn_free(arg);
    return;
  }
  if (evbuffer_get_length(out) > WRITE_HIGH_WATER)
    bufferevent_disable(bev, EV_READ); /* the client is not reading its echo */
}

static void on_drained(struct bufferevent *bev, void *arg) {
  struct conn *c = arg;
  if (c->closing)
    conn_free(c);
  else if (!(bufferevent_get_enabled(bev) & EV_READ))
    bufferevent_enable(bev, EV_READ);
}

static void on_event(struct bufferevent *bev, short what, void *arg) {
  struct conn *c = arg;
  /* After EOF the echo still queued goes out first, as the other servers
   * send it before they read the EOF. */
  if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR) && evbuffer_get_length(bufferevent_get_output(bev)) > 0)
    c->closing = 1;
  else if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
    conn_free(c);
}

static void on_accept(struct evconnlistener *listener, evutil_socket_t fd, struct sockaddr *addr, int addrlen,
                      void *arg) {
  struct conn *c = calloc(1, sizeof *c);
  (void)listener;
  (void)addr;
  (void)addrlen;
  (void)arg;
  echo_set_nodelay(fd);
  if (!c || !(c->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE))) {
    free(c);
    close(fd);
    return;
  }
  bufferevent_setcb(c->bev, on_read, on_drained, on_event, c);
  if (bufferevent_enable(c->bev, EV_READ) < 0) {
    bufferevent_free(c->bev);
    free(c);
    return;
  }
  c->next = open_conns;
  if (open_conns)
    open_conns->prev = c;
  open_conns = c;
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
  struct evconnlistener *listener;
  struct event *sigint, *sigterm;

  echo_raise_nofile();
  signal(SIGPIPE, SIG_IGN);
  /* epoll, as every other server in the benchmark uses. */
  cfg = event_config_new();
  if (!cfg || event_config_avoid_method(cfg, "poll") < 0 || event_config_avoid_method(cfg, "select") < 0 ||
      !(base = event_base_new_with_config(cfg))) {
    fprintf(stderr, "libevent_bev_server: no event base\n");
    return 1;
  }
  event_config_free(cfg);
  /* Backlog 0: echo_listen's socket is listening already. */
  listener = evconnlistener_new(base, on_accept, NULL, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0,
                                echo_listen("libevent_bev_server", opt.address));
  sigint = evsignal_new(base, SIGINT, on_signal, NULL);
  sigterm = evsignal_new(base, SIGTERM, on_signal, NULL);
  if (!listener || !sigint || !sigterm || event_add(sigint, NULL) < 0 || event_add(sigterm, NULL) < 0) {
    fprintf(stderr, "libevent_bev_server: cannot add the listener or the signals\n");
    return 1;
  }
  if (!opt.quiet)
    printf("libevent_bev_server: listening on %s (libevent %s, %s)\n", opt.address, event_get_version(),
           event_base_get_method(base));
  fflush(stdout);

  event_base_dispatch(base);

  while (open_conns)
    conn_free(open_conns);
  evconnlistener_free(listener);
  event_free(sigint);
  event_free(sigterm);
  event_base_free(base);
  if (!opt.quiet)
    fprintf(stderr, "libevent_bev_server: shutting down\n");
  return 0;
}
