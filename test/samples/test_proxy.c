/* samples/proxy, run as a child process between samples/echo_server (the
 * upstream, another child) and a raw loopback client:
 *
 * - every byte the client sends comes back through proxy and echo server,
 *   in order, many MiB of it, with and without splice(2) (--copy);
 * - the client's half-close travels to the echo server, whose close
 *   travels back: the client reads EOF after the last byte;
 * - an upstream that refuses makes the proxy close the client.
 *
 * Children write their output to a file (read for the port they print),
 * never to a pipe that could fill or break; the teardown kills them even
 * when an assertion failed. */
#define _GNU_SOURCE 1

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "test_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define GUARD_MS 60000 /* hang guards only */
#define TOTAL ((size_t)16 << 20)

struct child {
  pid_t pid;
  int port;
  char out[64];
};

static struct child g_echo, g_proxy;

static void child_kill(struct child *c) {
  if (c->pid > 0) {
    kill(c->pid, SIGKILL);
    waitpid(c->pid, NULL, 0);
    c->pid = -1;
  }
  if (c->out[0]) {
    unlink(c->out);
    c->out[0] = '\0';
  }
}

static int teardown(void **state) {
  (void)state;
  child_kill(&g_proxy);
  child_kill(&g_echo);
  return 0;
}

/* Runs `argv` with stdout in a file and waits for "listening on
 * 127.0.0.1:PORT" in it. */
static void child_start(struct child *c, char *const argv[]) {
  int fd;
  uint64_t t0 = tu_now_ms();
  strcpy(c->out, "/tmp/rill_test_proxy_XXXXXX");
  fd = mkstemp(c->out);
  assert_true(fd >= 0);
  c->pid = fork();
  assert_true(c->pid >= 0);
  if (c->pid == 0) {
    dup2(fd, STDOUT_FILENO);
    execv(argv[0], argv);
    _exit(127);
  }
  c->port = 0;
  while (!c->port && tu_now_ms() - t0 < GUARD_MS) {
    char text[512];
    ssize_t n = pread(fd, text, sizeof text - 1, 0);
    const char *at;
    text[n > 0 ? n : 0] = '\0';
    at = strstr(text, "listening on 127.0.0.1:");
    if (at && strchr(at, '\n'))
      c->port = atoi(at + strlen("listening on 127.0.0.1:"));
    else
      tu_sleep_ms(10);
  }
  close(fd);
  if (!c->port)
    fail_msg("%s did not say where it listens", argv[0]); /* the teardown kills it */
}

static void start_both(int copy) {
  char upstream[64];
  char *echo_argv[] = {ECHO_SERVER, "--listen", "127.0.0.1:0", NULL};
  char *proxy_argv[] = {PROXY, "--listen", "127.0.0.1:0", "--upstream", upstream, "--quiet",
                        copy ? "--copy" : NULL, NULL};
  child_start(&g_echo, echo_argv);
  snprintf(upstream, sizeof upstream, "127.0.0.1:%d", g_echo.port);
  child_start(&g_proxy, proxy_argv);
}

static int client_connect(int port) {
  struct sockaddr_in sin;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert_true(fd >= 0);
  memset(&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sin.sin_port = htons((uint16_t)port);
  assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof sin), 0);
  tu_nonblock(fd);
  return fd;
}

static unsigned char pattern(size_t i) { return (unsigned char)((i * 7 + (i >> 11) * 13) & 0xff); }

/* Sends TOTAL bytes while reading the echo; half-closes after the last
 * byte, then reads to EOF. Checks every byte. */
static void echo_through(int port) {
  static unsigned char out[64 * 1024], in[256 * 1024];
  size_t sent = 0, got = 0, bad = (size_t)-1;
  int fd = client_connect(port), eof = 0;
  uint64_t t0 = tu_now_ms();
  while (!eof) {
    struct pollfd p = {fd, (short)(POLLIN | (sent < TOTAL ? POLLOUT : 0)), 0};
    assert_true(tu_now_ms() - t0 < GUARD_MS);
    if (poll(&p, 1, 1000) <= 0)
      continue;
    if ((p.revents & POLLOUT) && sent < TOTAL) {
      size_t n = TOTAL - sent < sizeof out ? TOTAL - sent : sizeof out;
      ssize_t w;
      for (size_t i = 0; i < n; i++)
        out[i] = pattern(sent + i);
      w = send(fd, out, n, MSG_NOSIGNAL);
      if (w > 0) {
        sent += (size_t)w;
        if (sent == TOTAL)
          assert_int_equal(shutdown(fd, SHUT_WR), 0); /* the half-close */
      } else {
        assert_true(errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR);
      }
    }
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = recv(fd, in, sizeof in, 0);
      if (n == 0) {
        eof = 1;
      } else if (n > 0) {
        for (ssize_t i = 0; i < n && bad == (size_t)-1; i++)
          if (in[i] != pattern(got + (size_t)i))
            bad = got + (size_t)i;
        got += (size_t)n;
      } else {
        assert_true(errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR);
      }
    }
  }
  close(fd);
  assert_true(sent == TOTAL);
  assert_true(got == TOTAL); /* EOF came after the last byte, not before */
  assert_true(bad == (size_t)-1);
}

static void test_proxy_echo_spliced(void **state) {
  (void)state;
  start_both(0);
  echo_through(g_proxy.port);
  echo_through(g_proxy.port); /* and the proxy serves on */
}

static void test_proxy_echo_copied(void **state) {
  (void)state;
  start_both(1);
  echo_through(g_proxy.port);
}

/* The upstream refuses: the proxy closes the client, which reads EOF. */
static void test_proxy_upstream_refused(void **state) {
  char upstream[64];
  char *proxy_argv[] = {PROXY, "--listen", "127.0.0.1:0", "--upstream", upstream, "--quiet", NULL};
  int fd, listener, port;
  struct sockaddr_in sin;
  socklen_t len = sizeof sin;
  char byte;
  (void)state;
  /* A port nobody listens on: bound, never listened, kept until the end. */
  listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  memset(&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(listener, (struct sockaddr *)&sin, sizeof sin), 0);
  assert_int_equal(getsockname(listener, (struct sockaddr *)&sin, &len), 0);
  port = ntohs(sin.sin_port);
  snprintf(upstream, sizeof upstream, "127.0.0.1:%d", port);
  child_start(&g_proxy, proxy_argv);
  fd = client_connect(g_proxy.port);
  {
    struct pollfd p = {fd, POLLIN, 0};
    assert_int_equal(poll(&p, 1, GUARD_MS), 1);
  }
  assert_int_equal(recv(fd, &byte, 1, 0), 0);
  close(fd);
  close(listener);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_proxy_echo_spliced, teardown),
      cmocka_unit_test_teardown(test_proxy_echo_copied, teardown),
      cmocka_unit_test_teardown(test_proxy_upstream_refused, teardown),
  };
  /* Inherited through exec: the children must meet SIGPIPE's default
   * action, so one that escaped would show. */
  signal(SIGPIPE, SIG_DFL);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
