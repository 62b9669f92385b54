/* echo_peer.h — what the peer echo servers (libevent, libev, libuv, raw io_uring) share
 * with raw_epoll_server.c, so that only the event library differs between
 * them: the command line, the listening socket and the per-connection
 * socket options.
 *
 *   <server> [--listen ADDR] [--quiet]
 *
 * ADDR is "host:port" or "[v6]:port" (default 127.0.0.1:7000); an empty host
 * listens everywhere. Every server echoes what it reads, sets TCP_NODELAY on
 * every connection (as rill, Go and raw_epoll_server do), stops reading a
 * connection while the kernel has not taken its echo, and ends on SIGINT or
 * SIGTERM. Header-only: each server is one .c file. */
#ifndef RILL_BENCH_ECHO_PEER_H
#define RILL_BENCH_ECHO_PEER_H

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>

/* One read at most this much, as raw_epoll_server reads. */
#define ECHO_READ_BUF 65536

struct echo_options {
  const char *address;
  int quiet;
};

/* Parses the command line; exits 2 with the usage on anything else. */
static inline struct echo_options echo_parse_args(int argc, char **argv) {
  struct echo_options o = {"127.0.0.1:7000", 0};
  int i;
  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc)
      o.address = argv[++i];
    else if (strcmp(argv[i], "--quiet") == 0)
      o.quiet = 1;
    else {
      fprintf(stderr, "usage: %s [--listen ADDR] [--quiet]\n", argv[0]);
      exit(2);
    }
  }
  return o;
}

/* 1000 connections, and the idle-memory run's 10,000, need more descriptors
 * than the usual soft limit. */
static inline void echo_raise_nofile(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

/* A non-blocking listening socket on ADDR; exits on failure (a benchmark
 * server that cannot listen has nothing to do). */
static inline int echo_listen(const char *name, const char *address) {
  char host[256];
  const char *colon = strrchr(address, ':');
  struct addrinfo hints, *ai;
  size_t hlen;
  int fd, one = 1, err;
  if (!colon || (size_t)(colon - address) >= sizeof host) {
    fprintf(stderr, "%s: bad address %s\n", name, address);
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
    fprintf(stderr, "%s: %s: %s\n", name, address, gai_strerror(err));
    exit(2);
  }
  fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
      bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, SOMAXCONN) < 0) {
    fprintf(stderr, "%s: listen on %s: %s\n", name, address, strerror(errno));
    exit(1);
  }
  freeaddrinfo(ai);
  return fd;
}

static inline void echo_set_nodelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

#endif
