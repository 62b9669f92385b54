/* Helpers shared by the facade conformance tests, #included by each
 * test_facade_*.c (after cmocka.h and test_util.h).
 *
 * cmocka's assertions longjmp, which must never happen on a fiber's stack:
 * code running inside fibers records failures with FCHECK(), and the test
 * body calls fiber_check_assert_clean() (test/support/fiber_check.h) once
 * rill_base_run() has returned.
 *
 * The peer side of every connection is a plain non-blocking socket driven
 * from a fiber: on EAGAIN the fiber sleeps a millisecond and tries again, so
 * the peer never uses the code under test to wait. */
#ifndef RILL_FACADE_UTIL_C
#define RILL_FACADE_UTIL_C

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "rill.h"
#include "test_util.h"

/* Timing: a call that must not wait is checked to return within
 * FU_AT_ONCE_MS, a bound generous enough for a loaded machine that only
 * tells "returned" from "parked": what the call would otherwise wait for is
 * far longer, or never comes. Tests never assert speed. */
#define FU_AT_ONCE_MS 3000

/* ---- failures recorded inside fibers ---------------------------------- */

#include "fiber_check.h"

/* ---- running one test fiber on a fresh base ---------------------------- */

/* Runs `fn(arg)` as a fiber on a fresh base until the loop has nothing left
 * to do, with a watchdog of `limit_ms`; checks that every fiber ended and
 * that the base frees cleanly. */
static inline void fu_run_fiber(rill_fiber_fn fn, void *arg, unsigned limit_ms) {
  rill_base *base = tu_base_new();
  fiber_check_reset();
  assert_int_equal(rill_go(base, fn, arg), 0);
  TU_RUN(base, RILL_RUN_DEFAULT, limit_ms);
  assert_int_equal(rill_fiber_count(base), 0);
  tu_base_free(base);
  fiber_check_assert_clean();
}

/* ---- raw peer sockets -------------------------------------------------- */

/* A connected pair: `c` from rill_net_dial(), `peer` the raw socket the test
 * accepted for it (non-blocking). */
struct fu_pair {
  rill_net_conn *c;
  int peer;
  char addr[RILL_ADDRSTRLEN]; /* the peer's listening address */
};

/* A raw listening socket on 127.0.0.1 with a kernel-chosen port. */
static inline int fu_raw_listen(int *port) {
  struct sockaddr_in sin;
  socklen_t len = sizeof sin;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  memset(&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, (struct sockaddr *)&sin, sizeof sin) < 0 || listen(fd, 16) < 0 ||
      getsockname(fd, (struct sockaddr *)&sin, &len) < 0) {
    close(fd);
    return -1;
  }
  *port = ntohs(sin.sin_port);
  return fd;
}

/* In a fiber: dials a raw listener through the facade and accepts the raw
 * peer. Returns 0, or a negative code (recorded as a failure). */
static inline int fu_pair_open(struct fu_pair *p) {
  int port = 0, lfd, err;
  char errbuf[256];
  memset(p, 0, sizeof *p);
  p->peer = -1;
  lfd = fu_raw_listen(&port);
  FCHECK(lfd >= 0);
  if (lfd < 0)
    return -1;
  snprintf(p->addr, sizeof p->addr, "127.0.0.1:%d", port);
  err = rill_net_dial("tcp", p->addr, NULL, &p->c, errbuf, sizeof errbuf);
  FCHECK_EQ(err, 0);
  if (err) {
    fprintf(stderr, "dial %s: %s\n", p->addr, errbuf);
    close(lfd);
    return err;
  }
  /* The connection is complete in the kernel: accept() does not block. */
  p->peer = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
  close(lfd);
  FCHECK(p->peer >= 0);
  return p->peer >= 0 ? 0 : -1;
}

static inline void fu_pair_close(struct fu_pair *p) {
  if (p->c)
    rill_net_conn_free(p->c);
  p->c = NULL;
  if (p->peer >= 0)
    close(p->peer);
  p->peer = -1;
}

static inline void fu_set_buffers(int fd, int bytes) {
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes);
}

/* Writes all of `buf` to the raw socket, sleeping while it is full. Never
 * raises SIGPIPE. Returns 0 or -errno. */
static inline int fu_peer_write(int fd, const void *buf, size_t len) {
  const char *p = (const char *)buf;
  while (len) {
    ssize_t n = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      p += n;
      len -= (size_t)n;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      rill_sleep(RILL_MSEC);
    } else if (n < 0 && errno != EINTR) {
      return -errno;
    }
  }
  return 0;
}

/* Reads what is there (at least one byte), sleeping while nothing is, for
 * at most `limit_ms`. Returns the count, 0 at EOF, -ETIMEDOUT or -errno. */
static inline ssize_t fu_peer_read(int fd, void *buf, size_t len, unsigned limit_ms) {
  uint64_t end = tu_now_ms() + limit_ms;
  for (;;) {
    ssize_t n = recv(fd, buf, len, MSG_DONTWAIT);
    if (n >= 0)
      return n;
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
      return -errno;
    if (tu_now_ms() >= end)
      return -ETIMEDOUT;
    rill_sleep(RILL_MSEC);
  }
}

/* Reads exactly `len` bytes; returns 0, or what fu_peer_read() failed with
 * (0 becoming -EPIPE for an early EOF). */
static inline int fu_peer_read_full(int fd, void *buf, size_t len, unsigned limit_ms) {
  char *p = (char *)buf;
  while (len) {
    ssize_t n = fu_peer_read(fd, p, len, limit_ms);
    if (n <= 0)
      return n == 0 ? -EPIPE : (int)n;
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

/* Reads from the facade until exactly `len` bytes arrived. */
static inline ssize_t fu_read_full(rill_net_conn *c, void *buf, size_t len) {
  size_t got = 0;
  while (got < len) {
    ssize_t n = rill_net_read(c, (char *)buf + got, len - got);
    if (n <= 0)
      return n == 0 ? -EIO : n;
    got += (size_t)n;
  }
  return (ssize_t)got;
}

/* A byte pattern that reveals reordering, loss and duplication. */
static inline unsigned char fu_pattern(uint64_t i) {
  return (unsigned char)((i * 7u + (i >> 13)) % 251u);
}

static inline void fu_fill(unsigned char *buf, size_t len, uint64_t offset) {
  for (size_t i = 0; i < len; i++)
    buf[i] = fu_pattern(offset + i);
}

/* Index of the first byte that breaks the pattern, or `len`. */
static inline size_t fu_check_pattern(const unsigned char *buf, size_t len, uint64_t offset) {
  for (size_t i = 0; i < len; i++)
    if (buf[i] != fu_pattern(offset + i))
      return i;
  return len;
}

/* Process CPU time in milliseconds. */
static inline uint64_t fu_cpu_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* SIGPIPE must kill the process if anything raises it (G21, G22): make sure
 * the test runs with the default disposition, unblocked. */
static inline void fu_sigpipe_default(void) {
  struct sigaction sa;
  sigset_t set;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = SIG_DFL;
  sigemptyset(&sa.sa_mask);
  assert_int_equal(sigaction(SIGPIPE, &sa, NULL), 0);
  sigemptyset(&set);
  sigaddset(&set, SIGPIPE);
  assert_int_equal(pthread_sigmask(SIG_UNBLOCK, &set, NULL), 0);
}

#endif /* RILL_FACADE_UTIL_C */
