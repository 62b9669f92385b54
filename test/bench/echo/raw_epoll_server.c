/* raw_epoll_server — the baseline for the echo benchmark: the least an epoll
 * echo server can do, with no library in the way.
 *
 *   raw_epoll_server [--listen ADDR] [--quiet]
 *
 * Level-triggered epoll, one shared read buffer. Bytes read are written
 * straight back; what the kernel does not take is copied into a per-connection
 * pending buffer, reading pauses and EPOLLOUT is watched until it is flushed.
 * TCP_NODELAY on every connection, like rill and Go. SIGINT/SIGTERM end it. */
#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define READ_BUF 65536
#define MAX_EVENTS 256

struct conn {
  char *pending; /* bytes the kernel did not take yet */
  size_t len, off;
  int open;
};

static struct conn *conns;
static size_t nconns;
static int epfd;
static char buf[READ_BUF];

static void die(const char *what) {
  fprintf(stderr, "raw_epoll_server: %s: %s\n", what, strerror(errno));
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

static void conn_close(int fd) {
  struct conn *c = &conns[fd];
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

/* Writes data[0..len); keeps what the kernel does not take. 0, or -1 when
 * the connection is gone. */
static int send_or_keep(int fd, struct conn *c, const char *data, size_t len) {
  size_t off = 0;
  while (off < len) {
    ssize_t n = write(fd, data + off, len - off);
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
  return watch(EPOLL_CTL_MOD, fd, EPOLLOUT);
}

static void on_readable(int fd, struct conn *c) {
  ssize_t n = read(fd, buf, sizeof buf);
  if (n > 0) {
    if (send_or_keep(fd, c, buf, (size_t)n) < 0)
      conn_close(fd);
  } else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
    conn_close(fd);
  }
}

static void on_writable(int fd, struct conn *c) {
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
    conn_close(fd);
    return;
  }
  free(c->pending);
  c->pending = NULL;
  c->len = c->off = 0;
  if (watch(EPOLL_CTL_MOD, fd, EPOLLIN) < 0)
    conn_close(fd);
}

static void on_accept(int lfd) {
  for (;;) {
    int one = 1;
    struct conn *c;
    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED)
        continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK)
        fprintf(stderr, "raw_epoll_server: accept: %s\n", strerror(errno));
      return; /* EMFILE and friends: try again on the next readiness */
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c = conn_of(fd);
    if (!c || watch(EPOLL_CTL_ADD, fd, EPOLLIN) < 0) {
      close(fd);
      continue;
    }
    c->open = 1;
  }
}

/* "host:port" or "[v6]:port"; an empty host listens everywhere. */
static int listen_on(const char *address) {
  char host[256];
  const char *colon = strrchr(address, ':');
  struct addrinfo hints, *ai;
  size_t hlen;
  int fd, one = 1, err;
  if (!colon || (size_t)(colon - address) >= sizeof host) {
    fprintf(stderr, "raw_epoll_server: bad address %s\n", address);
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
  if ((err = getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, &ai)) != 0) {
    fprintf(stderr, "raw_epoll_server: %s: %s\n", address, gai_strerror(err));
    exit(2);
  }
  fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    die("socket");
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0)
    die("bind");
  if (listen(fd, SOMAXCONN) < 0)
    die("listen");
  freeaddrinfo(ai);
  return fd;
}

int main(int argc, char **argv) {
  const char *address = "127.0.0.1:7000";
  struct epoll_event events[MAX_EVENTS];
  struct rlimit rl;
  sigset_t sigs;
  int i, lfd, sfd, quiet = 0, running = 1;

  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc)
      address = argv[++i];
    else if (strcmp(argv[i], "--quiet") == 0)
      quiet = 1;
    else {
      fprintf(stderr, "usage: %s [--listen ADDR] [--quiet]\n", argv[0]);
      return 2;
    }
  }
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  signal(SIGPIPE, SIG_IGN);
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  sigprocmask(SIG_BLOCK, &sigs, NULL);
  if ((sfd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC)) < 0)
    die("signalfd");
  if ((epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
    die("epoll_create1");
  lfd = listen_on(address);
  if (watch(EPOLL_CTL_ADD, lfd, EPOLLIN) < 0 || watch(EPOLL_CTL_ADD, sfd, EPOLLIN) < 0)
    die("epoll_ctl");
  if (!quiet)
    printf("raw_epoll_server: listening on %s\n", address);
  fflush(stdout);

  while (running) {
    int n = epoll_wait(epfd, events, MAX_EVENTS, -1);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      die("epoll_wait");
    for (i = 0; i < n; i++) {
      int fd = events[i].data.fd;
      struct conn *c;
      if (fd == lfd) {
        on_accept(lfd);
        continue;
      }
      if (fd == sfd) {
        running = 0;
        continue;
      }
      c = &conns[fd];
      if (!c->open)
        continue; /* closed earlier in this batch */
      if (c->pending)
        on_writable(fd, c); /* EPOLLOUT, or EPOLLERR/EPOLLHUP: write sees it */
      else
        on_readable(fd, c); /* EPOLLIN, or EPOLLERR/EPOLLHUP: read sees it */
    }
  }
  for (i = 0; (size_t)i < nconns; i++)
    if (conns[i].open)
      conn_close(i);
  free(conns);
  close(lfd);
  close(sfd);
  close(epfd);
  if (!quiet)
    fprintf(stderr, "raw_epoll_server: shutting down\n");
  return 0;
}
