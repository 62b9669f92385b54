/* samples/echo_server, run as a child process: the promises its header
 * comment makes, which every server copied from it relies on.
 *
 * - Back-pressure: a client that sends without reading the echo is held
 *   back by TCP once the server's queue is full, so the server's memory
 *   stays bounded however much the client sends; and the echo is still
 *   exact once the client reads.
 * - A bounded shutdown: on SIGTERM the server exits after its grace
 *   period (5 s) even when a client never reads.
 *
 * Bounds are behaviour bounds, generous so a loaded machine passes them:
 * the memory bound is far above what the server needs and far below what
 * it would hold without back-pressure; the shutdown bound is a hang guard
 * many times the grace period. */
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

/* What the client sends: without back-pressure the server would hold
 * most of it. */
#define SEND_TOTAL ((size_t)64 << 20)
/* The server's peak RSS must stay below this (kB). */
#define RSS_BOUND_KB (32 * 1024)
/* The client decides the server has stopped reading when it could not
 * send for this long. Only how much it sends before checking memory
 * depends on it, never the verdict. */
#define STALL_MS 2000
/* The server's grace period is 5 s; this is only a hang guard. */
#define EXIT_GUARD_MS 30000

typedef struct server {
  pid_t pid;
  int port;
} server;

/* The server of the running test, killed by the teardown if a failed
 * assertion left it running. */
static pid_t g_running = -1;

/* Starts the sample on 127.0.0.1:0 and reads its port from the line it
 * prints ("echo_server: listening on 127.0.0.1:PORT (...)"). */
static void server_start(server *s) {
  int out[2];
  assert_int_equal(pipe2(out, O_CLOEXEC), 0);
  s->pid = fork();
  assert_true(s->pid >= 0);
  g_running = s->pid;
  if (s->pid == 0) {
    dup2(out[1], STDOUT_FILENO);
    execl(ECHO_SERVER, ECHO_SERVER, "--listen", "127.0.0.1:0", (char *)NULL);
    _exit(127);
  }
  close(out[1]);
  char line[256];
  size_t len = 0;
  uint64_t t0 = tu_now_ms();
  s->port = 0;
  while (!s->port && len < sizeof line - 1 && tu_now_ms() - t0 < 30000) {
    struct pollfd p = {out[0], POLLIN, 0};
    if (poll(&p, 1, 1000) <= 0)
      continue;
    ssize_t n = read(out[0], line + len, sizeof line - 1 - len);
    if (n <= 0)
      break;
    len += (size_t)n;
    line[len] = '\0';
    const char *at = strstr(line, "listening on 127.0.0.1:");
    if (at && strchr(at, ' ') && strchr(at, '\n'))
      s->port = atoi(at + strlen("listening on 127.0.0.1:"));
  }
  close(out[0]);
  if (!s->port) {
    fail_msg("%s did not say where it listens", ECHO_SERVER); /* the teardown kills it */
  }
}

/* Waits up to `ms` for the server to exit; its wait status, or -1 (then it
 * has been killed). */
static int server_wait(server *s, unsigned ms) {
  uint64_t t0 = tu_now_ms();
  int status;
  for (;;) {
    pid_t r = waitpid(s->pid, &status, WNOHANG);
    if (r == s->pid) {
      g_running = -1;
      return status;
    }
    if (tu_now_ms() - t0 >= ms)
      break;
    tu_sleep_ms(10);
  }
  kill(s->pid, SIGKILL);
  waitpid(s->pid, &status, 0);
  g_running = -1;
  return -1;
}

static int teardown(void **state) {
  (void)state;
  if (g_running > 0) {
    kill(g_running, SIGKILL);
    waitpid(g_running, NULL, 0);
    g_running = -1;
  }
  return 0;
}

/* A field of /proc/PID/status in kB ("VmHWM", "VmRSS"), or -1. */
static long proc_status_kb(pid_t pid, const char *field) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  FILE *f = fopen(path, "r");
  long kb = -1;
  size_t flen = strlen(field);
  if (!f)
    return -1;
  while (fgets(line, sizeof line, f))
    if (strncmp(line, field, flen) == 0 && line[flen] == ':')
      kb = strtol(line + flen + 1, NULL, 10);
  fclose(f);
  return kb;
}

static int client_connect(int port) {
  struct sockaddr_in in;
  memset(&in, 0, sizeof in);
  in.sin_family = AF_INET;
  in.sin_port = htons((uint16_t)port);
  in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert_true(fd >= 0);
  assert_int_equal(connect(fd, (struct sockaddr *)&in, sizeof in), 0);
  tu_nonblock(fd);
  return fd;
}

/* The byte at offset `i` of the stream: a shift, a loss or a duplicate
 * shows as a mismatch. */
static unsigned char pattern_at(size_t i) {
  return (unsigned char)((i % 251) ^ (i >> 16));
}

static void pattern_fill(unsigned char *buf, size_t off, size_t len) {
  for (size_t k = 0; k < len; k++)
    buf[k] = pattern_at(off + k);
}

/* Sends the pattern from offset *sent without reading, until SEND_TOTAL
 * or until the server has stopped taking bytes for STALL_MS. */
static void send_without_reading(int fd, size_t *sent) {
  static unsigned char chunk[64 * 1024];
  while (*sent < SEND_TOTAL) {
    size_t n = SEND_TOTAL - *sent < sizeof chunk ? SEND_TOTAL - *sent : sizeof chunk;
    pattern_fill(chunk, *sent, n);
    ssize_t w = send(fd, chunk, n, MSG_NOSIGNAL);
    if (w > 0) {
      *sent += (size_t)w;
      continue;
    }
    assert_true(w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
    struct pollfd p = {fd, POLLOUT, 0};
    if (poll(&p, 1, STALL_MS) == 0)
      return; /* held back */
  }
}

/* 64 MiB sent without reading: the server stops reading once its queue is
 * full, so the client is held back and the server's peak RSS stays small;
 * then the client reads, and every byte comes back in order. */
static void test_backpressure_bounds_memory(void **state) {
  (void)state;
  server s;
  server_start(&s);
  int fd = client_connect(s.port);
  size_t sent = 0, received = 0;

  send_without_reading(fd, &sent);
  long held_hwm = proc_status_kb(s.pid, "VmHWM");
  fprintf(stderr, "sent %zu bytes without reading before the server held the client back; "
                  "server VmHWM %ld kB, VmRSS %ld kB\n",
          sent, held_hwm, proc_status_kb(s.pid, "VmRSS"));
  if (sent >= SEND_TOTAL)
    fail_msg("the server took all %zu bytes from a client that never read", sent);

  /* Now read the echo while sending the rest. */
  static unsigned char buf[64 * 1024], chunk[64 * 1024];
  uint64_t last_progress = tu_now_ms();
  while (received < SEND_TOTAL) {
    struct pollfd p = {fd, POLLIN | (sent < SEND_TOTAL ? POLLOUT : 0), 0};
    int rc = poll(&p, 1, 1000);
    assert_true(rc >= 0);
    if (tu_now_ms() - last_progress > 30000)
      fail_msg("no progress for 30 s: %zu sent, %zu echoed", sent, received);
    if (p.revents & POLLIN) {
      ssize_t n = recv(fd, buf, sizeof buf, 0);
      if (n == 0)
        fail_msg("EOF after %zu of %zu bytes echoed", received, SEND_TOTAL);
      if (n < 0) {
        assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
      } else {
        for (ssize_t k = 0; k < n; k++)
          if (buf[k] != pattern_at(received + (size_t)k))
            fail_msg("echo differs at byte %zu", received + (size_t)k);
        received += (size_t)n;
        last_progress = tu_now_ms();
      }
    }
    if ((p.revents & POLLOUT) && sent < SEND_TOTAL) {
      size_t n = SEND_TOTAL - sent < sizeof chunk ? SEND_TOTAL - sent : sizeof chunk;
      pattern_fill(chunk, sent, n);
      ssize_t w = send(fd, chunk, n, MSG_NOSIGNAL);
      if (w > 0) {
        sent += (size_t)w;
        last_progress = tu_now_ms();
      }
    }
  }
  long hwm = proc_status_kb(s.pid, "VmHWM");
  fprintf(stderr, "%zu bytes echoed; server VmHWM %ld kB, VmRSS %ld kB\n", received, hwm,
          proc_status_kb(s.pid, "VmRSS"));
#ifndef ECHO_SERVER_SANITIZED
  assert_true(hwm > 0);
  if (hwm >= RSS_BOUND_KB)
    fail_msg("the server's peak RSS reached %ld kB (bound %d kB)", hwm, RSS_BOUND_KB);
#endif
  close(fd);
  kill(s.pid, SIGTERM);
  int status = server_wait(&s, EXIT_GUARD_MS);
  assert_true(status != -1 && WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
}

/* SIGTERM with a client that never reads and whose echo fills the
 * server's queue: the server still exits, cleanly, after its grace. */
static void test_sigterm_bounds_shutdown(void **state) {
  (void)state;
  server s;
  server_start(&s);
  int fd = client_connect(s.port);
  size_t sent = 0;
  send_without_reading(fd, &sent);
  uint64_t t0 = tu_now_ms();
  assert_int_equal(kill(s.pid, SIGTERM), 0);
  int status = server_wait(&s, EXIT_GUARD_MS);
  fprintf(stderr, "sent %zu bytes; the server exited %llu ms after SIGTERM\n", sent,
          (unsigned long long)(tu_now_ms() - t0));
  close(fd);
  if (status == -1)
    fail_msg("the server was still running %d ms after SIGTERM (a client never read)",
             EXIT_GUARD_MS);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void) {
  /* The client's writes to a server that is gone must fail, not kill us. */
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_backpressure_bounds_memory, teardown),
      cmocka_unit_test_teardown(test_sigterm_bounds_shutdown, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
