/* raw_tls_epoll_server — the TLS benchmark's limit: the least an epoll TLS
 * echo server can do with OpenSSL and no library in the way, as
 * ../raw_epoll_server.c is for plain TCP.
 *
 *   raw_tls_epoll_server --cert FILE --key FILE [--listen ADDR] [--quiet]
 *
 * Level-triggered epoll; OpenSSL straight on the non-blocking socket
 * (SSL_set_fd: its socket BIO calls read() and write() itself, no copy
 * through memory BIOs); the SSL_CTX from tls_peer.h, with read-ahead (whole
 * socket reads, not a header then a body per record). A connection's
 * handshake is driven by its first SSL_read. Each decrypted read is
 * encrypted straight back from one shared buffer; what the kernel does not
 * take is copied into the connection's pending buffer, reading pauses, and
 * the write is retried when OpenSSL's wish (writable, rarely readable) comes
 * true. After a read, the socket is read again only while OpenSSL holds
 * undecrypted bytes (SSL_has_pending): otherwise epoll says when more came,
 * which saves a read() that would fail with EAGAIN on every round trip. A
 * clean end (close_notify, or EOF) gets a close_notify back. SIGINT/SIGTERM
 * end it. */
#define _GNU_SOURCE
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "tls_peer.h"

#define MAX_EVENTS 256

struct conn {
  SSL *ssl;
  char *pending; /* an echo OpenSSL has not written yet (READ_BUF bytes) */
  int pending_len;
  unsigned events; /* what epoll watches for it */
  int open;
};

static struct conn *conns;
static size_t nconns;
static int epfd;
static char buf[ECHO_READ_BUF];
static SSL_CTX *ctx;

static void die(const char *what) {
  fprintf(stderr, "raw_tls_epoll_server: %s: %s\n", what, strerror(errno));
  exit(1);
}

static struct conn *conn_of(int fd) {
  if ((size_t)fd >= nconns) {
    size_t n = nconns ? nconns : 1024;
    struct conn *p;
    while (n <= (size_t)fd)
      n *= 2;
    p = realloc(conns, n * sizeof *p);
    if (!p)
      return NULL;
    memset(p + nconns, 0, (n - nconns) * sizeof *p);
    conns = p;
    nconns = n;
  }
  return &conns[fd];
}

/* clean: the peer ended properly, so it gets a close_notify back (an SSL
 * that failed must not be shut down). */
static void conn_close(int fd, int clean) {
  struct conn *c = &conns[fd];
  if (clean)
    SSL_shutdown(c->ssl);
  SSL_free(c->ssl);
  free(c->pending);
  memset(c, 0, sizeof *c);
  close(fd); /* also leaves the epoll set */
}

static int watch(int op, int fd, unsigned events) {
  struct epoll_event ev;
  memset(&ev, 0, sizeof ev);
  ev.events = events;
  ev.data.fd = fd;
  return epoll_ctl(epfd, op, fd, &ev);
}

static int want(int fd, struct conn *c, unsigned events) {
  if (c->events == events)
    return 0;
  c->events = events;
  return watch(EPOLL_CTL_MOD, fd, events);
}

/* After an SSL call returned r <= 0: 0 when it only has to wait (and epoll
 * now watches for what it waits for), -1 when the connection is over, with
 * *clean saying how it ended. */
static int wait_for(int fd, struct conn *c, int r, int *clean) {
  int e = SSL_get_error(c->ssl, r);
  *clean = 0;
  if (e == SSL_ERROR_WANT_READ)
    return want(fd, c, EPOLLIN);
  if (e == SSL_ERROR_WANT_WRITE)
    return want(fd, c, EPOLLOUT);
  ERR_clear_error(); /* a peer's reset or bad record: its problem, not ours */
  *clean = e == SSL_ERROR_ZERO_RETURN;
  return -1;
}

static void serve(int fd, struct conn *c) {
  int r, clean;
  if (c->pending_len) {
    /* The retry OpenSSL asks for: same bytes (they moved: see main). */
    if ((r = SSL_write(c->ssl, c->pending, c->pending_len)) <= 0) {
      if (wait_for(fd, c, r, &clean) < 0)
        conn_close(fd, clean);
      return;
    }
    c->pending_len = 0;
  }
  for (;;) {
    if ((r = SSL_read(c->ssl, buf, sizeof buf)) <= 0) {
      if (wait_for(fd, c, r, &clean) < 0)
        conn_close(fd, clean);
      return;
    }
    int n = r;
    if ((r = SSL_write(c->ssl, buf, n)) <= 0) {
      if (!c->pending && !(c->pending = malloc(sizeof buf))) {
        conn_close(fd, 0);
        return;
      }
      memcpy(c->pending, buf, (size_t)n);
      c->pending_len = n;
      if (wait_for(fd, c, r, &clean) < 0)
        conn_close(fd, clean);
      return;
    }
    if (!SSL_has_pending(c->ssl)) {
      if (want(fd, c, EPOLLIN) < 0)
        conn_close(fd, 0);
      return;
    }
  }
}

static void on_accept(int lfd) {
  for (;;) {
    struct conn *c;
    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED)
        continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK)
        fprintf(stderr, "raw_tls_epoll_server: accept: %s\n", strerror(errno));
      return; /* EMFILE and friends: try again on the next readiness */
    }
    echo_set_nodelay(fd);
    c = conn_of(fd);
    if (!c || !(c->ssl = SSL_new(ctx)) || !SSL_set_fd(c->ssl, fd) || watch(EPOLL_CTL_ADD, fd, EPOLLIN) < 0) {
      if (c)
        SSL_free(c->ssl);
      if (c)
        c->ssl = NULL;
      close(fd);
      continue;
    }
    SSL_set_accept_state(c->ssl);
    c->events = EPOLLIN;
    c->open = 1;
  }
}

int main(int argc, char **argv) {
  struct tls_options opt = tls_parse_args(argc, argv);
  struct epoll_event events[MAX_EVENTS];
  sigset_t sigs;
  int i, lfd, sfd, running = 1;

  echo_raise_nofile();
  signal(SIGPIPE, SIG_IGN);
  ctx = tls_server_ctx("raw_tls_epoll_server", &opt);
  /* A write OpenSSL could not finish is retried from the pending copy. */
  SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_CTX_set_read_ahead(ctx, 1);
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  sigprocmask(SIG_BLOCK, &sigs, NULL);
  if ((sfd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC)) < 0)
    die("signalfd");
  if ((epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
    die("epoll_create1");
  lfd = echo_listen("raw_tls_epoll_server", opt.address);
  if (watch(EPOLL_CTL_ADD, lfd, EPOLLIN) < 0 || watch(EPOLL_CTL_ADD, sfd, EPOLLIN) < 0)
    die("epoll_ctl");
  if (!opt.quiet)
    printf("raw_tls_epoll_server: listening on %s (%s)\n", opt.address, OpenSSL_version(OPENSSL_VERSION));
  fflush(stdout);

  while (running) {
    int n = epoll_wait(epfd, events, MAX_EVENTS, -1);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      die("epoll_wait");
    for (i = 0; i < n; i++) {
      int fd = events[i].data.fd;
      if (fd == lfd)
        on_accept(lfd);
      else if (fd == sfd)
        running = 0;
      else if (conns[fd].open) /* not closed earlier in this batch */
        serve(fd, &conns[fd]);
    }
  }
  for (i = 0; (size_t)i < nconns; i++)
    if (conns[i].open)
      conn_close(i, 0);
  free(conns);
  SSL_CTX_free(ctx);
  close(lfd);
  close(sfd);
  close(epfd);
  if (!opt.quiet)
    fprintf(stderr, "raw_tls_epoll_server: shutting down\n");
  return 0;
}
