/* Helpers shared by the fault-injection programs (declared again in each
 * test file, under "fault_common.c"). Nothing here injects faults: these are
 * the real calls, made while every fault plan is disarmed. */
#define _GNU_SOURCE 1

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rill.h"
#include "test_util.h"

int fc_is_nonblock(int fd) {
  int fl = fcntl(fd, F_GETFL);
  assert_true(fl >= 0);
  return (fl & O_NONBLOCK) != 0;
}

int fc_is_cloexec(int fd) {
  int fl = fcntl(fd, F_GETFD);
  assert_true(fl >= 0);
  return (fl & FD_CLOEXEC) != 0;
}

/* A plain listening socket on 127.0.0.1, kernel-chosen port. */
int fc_raw_listen(int *port) {
  struct sockaddr_in sin;
  socklen_t len = sizeof sin;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  memset(&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
  assert_int_equal(listen(fd, 16), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
  *port = ntohs(sin.sin_port);
  return fd;
}

/* A blocking client socket connected to 127.0.0.1:port (a loopback connect
 * to a listening socket completes at once, accepted or not). */
int fc_raw_connect(int port) {
  struct sockaddr_in sin;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  int rc;
  assert_true(fd >= 0);
  memset(&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sin.sin_port = htons((uint16_t)port);
  do {
    rc = connect(fd, (struct sockaddr *)&sin, sizeof sin);
  } while (rc < 0 && errno == EINTR);
  assert_int_equal(rc, 0);
  return fd;
}

/* A connected loopback TCP pair: *a is the client end, *b the accepted one. */
void fc_tcp_pair(int *a, int *b) {
  int port;
  int l = fc_raw_listen(&port);
  *a = fc_raw_connect(port);
  do {
    *b = accept(l, NULL, NULL);
  } while (*b < 0 && errno == EINTR);
  assert_true(*b >= 0);
  close(l);
}

/* Byte `i` of the test streams: not periodic in any small power of two, so
 * a lost, repeated or reordered chunk shows. */
unsigned char fc_pattern(size_t i) { return (unsigned char)((i * 131u + i / 257u + 7u) & 0xffu); }
