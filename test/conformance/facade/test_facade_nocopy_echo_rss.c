/* G32 in a real program: samples/echo_server_blocking, under clients that
 * send a lot and never read, keeps its memory flat (its writes park; they
 * do not copy what the kernel cannot take), keeps serving other clients
 * meanwhile, and once the clients read, echoes every byte exactly.
 *
 * It measures a copy, not speed: the server's VmRSS (/proc/PID/status)
 * before and after, with a generous bound. The sample reads 16 KiB at a
 * time, so even the old copying write held at most 16 KiB per connection:
 * this pins the behaviour issue 9 asks of the sample, and
 * test_facade_nocopy_write pins the copy itself.
 *
 * On io_uring the base's receive buffer ring is memory of the server's own
 * (docs/io_uring.md): a multishot receive fills it from the socket before
 * the fiber asks, and its pages stay once touched. It is a fixed cost per
 * base, not a copy of what the clients sent, so the bound allows for it.
 * The server gets a quarter of the default ring (4 MiB, not 16: with the
 * default, four flooding clients fill it and the allowance would dwarf the
 * bound); running out of buffers loses nothing, it reads with read(2). */
#define _GNU_SOURCE 1

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

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

#include "test_util.h"

#define CLIENTS 4
#define SEND_MAX (64u * 1024 * 1024) /* per client, if the kernel takes it */
#define STUCK_MS 500                 /* no room this long: the server stopped reading */
#define RSS_GROWTH_MAX_KB (16 * 1024)
#define HANG_GUARD_MS 60000
#define URING_BUFFERS 256
#define URING_BUFFER_SIZE 16384
#define URING_RING_KB ((long)URING_BUFFERS * URING_BUFFER_SIZE / 1024)
#define STRINGIFY_(x) #x
#define STRINGIFY(x) STRINGIFY_(x)

static unsigned char pattern(uint64_t i) { return (unsigned char)((i * 7u + (i >> 13)) % 251u); }

struct server {
  pid_t pid;
  int out;        /* its stdout */
  int on_io_uring; /* its "listening on" line names the io_uring backend */
};

static pid_t server_pid; /* killed by the teardown, even after a failed assertion */

static void start_server(struct server *s) {
  int out[2];
  assert_int_equal(pipe2(out, O_CLOEXEC), 0);
  fflush(stdout);
  fflush(stderr);
  s->pid = fork();
  assert_true(s->pid >= 0);
  if (s->pid == 0) {
    /* AddressSanitizer's quarantine holds freed blocks back from reuse, so
     * under it VmRSS grows with the traffic, whatever the program keeps;
     * without a quarantine RSS measures what the server holds. */
    setenv("ASAN_OPTIONS", "quarantine_size_mb=0", 1);
    setenv("RILL_IO_URING_BUFFERS", STRINGIFY(URING_BUFFERS), 1);
    setenv("RILL_IO_URING_BUFFER_SIZE", STRINGIFY(URING_BUFFER_SIZE), 1);
    dup2(out[1], 1);
    execl(ECHO_SERVER_BLOCKING, ECHO_SERVER_BLOCKING, "--listen", "127.0.0.1:0", (char *)NULL);
    _exit(127);
  }
  close(out[1]);
  s->out = out[0];
  s->on_io_uring = 0;
  server_pid = s->pid;
}

static int kill_server(void **state) {
  (void)state;
  if (server_pid > 0 && waitpid(server_pid, NULL, WNOHANG) == 0) {
    kill(server_pid, SIGKILL);
    waitpid(server_pid, NULL, 0);
  }
  server_pid = 0;
  return 0;
}

/* The port from its "listening on 127.0.0.1:PORT" line, or -1. */
static int server_port(struct server *s) {
  char line[512];
  size_t len = 0;
  uint64_t end = tu_now_ms() + HANG_GUARD_MS;
  const char *p = NULL;
  line[0] = '\0';
  while (!(p = strstr(line, "127.0.0.1:")) || !strchr(p, '\n')) {
    struct pollfd pfd = {s->out, POLLIN, 0};
    ssize_t n;
    if (tu_now_ms() >= end || len + 1 >= sizeof line)
      return -1;
    if (poll(&pfd, 1, 100) <= 0)
      continue;
    n = read(s->out, line + len, sizeof line - 1 - len);
    if (n <= 0)
      return -1;
    len += (size_t)n;
    line[len] = '\0';
  }
  s->on_io_uring = strstr(line, "(io_uring backend") != NULL;
  return atoi(p + strlen("127.0.0.1:"));
}

/* VmRSS in KiB from /proc/PID/status. */
static long rss_kb(pid_t pid) {
  char path[64], line[256];
  long kb = -1;
  FILE *f;
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  f = fopen(path, "r");
  assert_non_null(f);
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
      break;
  fclose(f);
  assert_true(kb > 0);
  return kb;
}

static int connect_to(int port) {
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

/* Sends the pattern from *sent on until SEND_MAX or until the socket had
 * no room for STUCK_MS. */
static void flood(int fd, uint64_t *sent) {
  static unsigned char chunk[64 * 1024];
  while (*sent < SEND_MAX) {
    size_t len = sizeof chunk;
    ssize_t n;
    for (size_t i = 0; i < len; i++)
      chunk[i] = pattern(*sent + i);
    n = send(fd, chunk, len, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) {
      *sent += (uint64_t)n;
    } else {
      struct pollfd pfd = {fd, POLLOUT, 0};
      assert_true(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR));
      if (errno != EINTR && poll(&pfd, 1, STUCK_MS) == 0)
        return; /* the server parked in its write and stopped reading */
    }
  }
}

/* Reads `want` echoed bytes, checking the pattern. */
static void read_echo(int fd, uint64_t want) {
  static unsigned char buf[256 * 1024];
  uint64_t got = 0, end = tu_now_ms() + HANG_GUARD_MS;
  while (got < want && tu_now_ms() < end) {
    struct pollfd pfd = {fd, POLLIN, 0};
    ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
      poll(&pfd, 1, 100);
      continue;
    }
    assert_true(n > 0);
    for (ssize_t i = 0; i < n; i++)
      if (buf[i] != pattern(got + (uint64_t)i))
        fail_msg("echoed byte %llu is wrong", (unsigned long long)(got + (uint64_t)i));
    got += (uint64_t)n;
  }
  assert_int_equal(got, want);
}

/* One short echo round trip on a fresh connection: the server serves. */
static void ping(int port) {
  int fd = connect_to(port);
  uint64_t sent = 0;
  unsigned char msg[100];
  for (size_t i = 0; i < sizeof msg; i++)
    msg[i] = pattern(i);
  assert_int_equal(send(fd, msg, sizeof msg, MSG_NOSIGNAL), (ssize_t)sizeof msg);
  sent = sizeof msg;
  read_echo(fd, sent);
  close(fd);
}

static void rss_flat_under_clients_that_do_not_read(void **state) {
  struct server s;
  int port, fds[CLIENTS], status = 0;
  uint64_t sent[CLIENTS], total = 0, end;
  long before, after;
  (void)state;
  start_server(&s);
  port = server_port(&s);
  if (port <= 0) {
    kill(s.pid, SIGKILL);
    waitpid(s.pid, NULL, 0);
    fail_msg("the server printed no port");
  }
  ping(port); /* its first connection's memory is made before measuring */
  before = rss_kb(s.pid);

  for (int i = 0; i < CLIENTS; i++) {
    fds[i] = connect_to(port);
    sent[i] = 0;
  }
  for (int i = 0; i < CLIENTS; i++) {
    flood(fds[i], &sent[i]);
    total += sent[i];
  }
  ping(port); /* the other connections' fibers keep running meanwhile */
  after = rss_kb(s.pid);
  fprintf(stderr, "echo_server_blocking: %llu bytes sent unread by %d clients, VmRSS %ld -> %ld kB%s\n",
          (unsigned long long)total, CLIENTS, before, after,
          s.on_io_uring ? " (io_uring: its buffer ring may fill)" : "");
  assert_true(total > 1024 * 1024); /* enough that a copy would show */
  assert_true(after - before < RSS_GROWTH_MAX_KB + (s.on_io_uring ? URING_RING_KB : 0));

  /* Once the clients read, every byte comes back, in order. */
  for (int i = 0; i < CLIENTS; i++) {
    read_echo(fds[i], sent[i]);
    close(fds[i]);
  }

  kill(s.pid, SIGTERM);
  end = tu_now_ms() + HANG_GUARD_MS;
  while (waitpid(s.pid, &status, WNOHANG) == 0) {
    if (tu_now_ms() >= end) {
      kill(s.pid, SIGKILL);
      waitpid(s.pid, &status, 0);
      fail_msg("the server did not exit on SIGTERM");
    }
    tu_sleep_ms(10);
  }
  server_pid = 0;
  close(s.out);
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(rss_flat_under_clients_that_do_not_read, kill_server),
  };
  signal(SIGPIPE, SIG_IGN);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
