/* libevent_tls_server — the TLS benchmark's libevent peer: libevent's own
 * TLS, bufferevent_openssl, written as ../libevent_bev_server.c writes the
 * plain echo (libevent 2.1, epoll backend): an evconnlistener accepts, an
 * OpenSSL bufferevent per connection (BUFFEREVENT_SSL_ACCEPTING, straight on
 * the socket) does the handshake and decrypts into its input evbuffer, the
 * read callback moves all of it to the output evbuffer, which libevent
 * encrypts and writes when the socket is writable.
 *
 *   libevent_tls_server --cert FILE --key FILE [--listen ADDR] [--quiet]
 *
 * The SSL_CTX is tls_peer.h's, the same as raw_tls_epoll_server's.
 * Back-pressure as in libevent_bev_server: past WRITE_HIGH_WATER bytes of
 * unsent echo the connection stops reading until the output has drained. An
 * EOF without close_notify is an end, not an error (allow_dirty_shutdown); a
 * clean end gets a close_notify back, as the raw and Go servers send one.
 * SIGINT/SIGTERM (evsignal) end it. */
#define _GNU_SOURCE
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <signal.h>
#include <unistd.h>

#include "tls_peer.h"

#define WRITE_HIGH_WATER (256 * 1024)

struct conn {
  struct bufferevent *bev;
  int closing; /* the peer has finished: free once the echo is out */
  struct conn *prev, *next; /* every open connection, freed at exit */
};

static struct event_base *base;
static struct conn *open_conns;
static SSL_CTX *ctx;

/* clean: the peer ended properly: it gets a close_notify first. */
static void conn_free(struct conn *c, int clean) {
  if (clean)
    SSL_shutdown(bufferevent_openssl_get_ssl(c->bev));
  bufferevent_free(c->bev); /* BEV_OPT_CLOSE_ON_FREE: frees the SSL, closes the socket */
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
  if (evbuffer_add_buffer(out, bufferevent_get_input(bev)) < 0) {
    conn_free(arg, 0);
    return;
  }
  if (evbuffer_get_length(out) > WRITE_HIGH_WATER)
    bufferevent_disable(bev, EV_READ); /* the client is not reading its echo */
}

static void on_drained(struct bufferevent *bev, void *arg) {
  struct conn *c = arg;
  if (c->closing)
    conn_free(c, 1);
  else if (!(bufferevent_get_enabled(bev) & EV_READ))
    bufferevent_enable(bev, EV_READ);
}

static void on_event(struct bufferevent *bev, short what, void *arg) {
  struct conn *c = arg;
  if (what & BEV_EVENT_CONNECTED)
    return; /* the handshake is done */
  while (bufferevent_get_openssl_error(bev))
    ; /* a peer's reset or bad record: its problem, not ours */
  if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR) && evbuffer_get_length(bufferevent_get_output(bev)) > 0)
    c->closing = 1;
  else if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
    conn_free(c, !(what & BEV_EVENT_ERROR));
}

static void on_accept(struct evconnlistener *listener, evutil_socket_t fd, struct sockaddr *addr, int addrlen,
                      void *arg) {
  struct conn *c = calloc(1, sizeof *c);
  SSL *ssl = SSL_new(ctx);
  (void)listener;
  (void)addr;
  (void)addrlen;
  (void)arg;
  echo_set_nodelay(fd);
  if (!c || !ssl ||
      !(c->bev = bufferevent_openssl_socket_new(base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE))) {
    SSL_free(ssl);
    free(c);
    close(fd);
    return;
  }
  bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
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
  struct tls_options opt = tls_parse_args(argc, argv);
  struct event_config *cfg;
  struct evconnlistener *listener;
  struct event *sigint, *sigterm;

  echo_raise_nofile();
  signal(SIGPIPE, SIG_IGN);
  ctx = tls_server_ctx("libevent_tls_server", &opt);
  /* epoll, as every other server in the benchmark uses. */
  cfg = event_config_new();
  if (!cfg || event_config_avoid_method(cfg, "poll") < 0 || event_config_avoid_method(cfg, "select") < 0 ||
      !(base = event_base_new_with_config(cfg))) {
    fprintf(stderr, "libevent_tls_server: no event base\n");
    return 1;
  }
  event_config_free(cfg);
  /* Backlog 0: echo_listen's socket is listening already. */
  listener = evconnlistener_new(base, on_accept, NULL, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0,
                                echo_listen("libevent_tls_server", opt.address));
  sigint = evsignal_new(base, SIGINT, on_signal, NULL);
  sigterm = evsignal_new(base, SIGTERM, on_signal, NULL);
  if (!listener || !sigint || !sigterm || event_add(sigint, NULL) < 0 || event_add(sigterm, NULL) < 0) {
    fprintf(stderr, "libevent_tls_server: cannot add the listener or the signals\n");
    return 1;
  }
  if (!opt.quiet)
    printf("libevent_tls_server: listening on %s (libevent %s, %s, %s)\n", opt.address, event_get_version(),
           event_base_get_method(base), OpenSSL_version(OPENSSL_VERSION));
  fflush(stdout);

  event_base_dispatch(base);

  while (open_conns)
    conn_free(open_conns, 0);
  evconnlistener_free(listener);
  event_free(sigint);
  event_free(sigterm);
  event_base_free(base);
  SSL_CTX_free(ctx);
  if (!opt.quiet)
    fprintf(stderr, "libevent_tls_server: shutting down\n");
  return 0;
}
