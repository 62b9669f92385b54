/* samples/echo_server_blocking, run at its descriptor limit, exits on
 * SIGTERM. It used to hang in most tries and print "accept: invalid
 * argument" in a loop: the SIGTERM came while its accept loop slept after an
 * EMFILE, the signal callback closed (and so freed) the listener and
 * cleared its pointer, and the accept loop then called accept on NULL
 * forever. The server runs with RLIMIT_NOFILE at 64 and gets more clients
 * than that; once it reports an accept error it is sent SIGTERM at once,
 * which lands in that back-off sleep. */
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
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_util.h"

#define SERVER_FD_LIMIT 64
#define CLIENTS 100
#define ROUNDS 3
#define HANG_GUARD_MS 30000

struct server {
  pid_t pid;
  int out, err; /* its stdout and stderr */
  char errtext[65536];
  size_t errlen;
};

static void start_server(struct server *s) {
  int out[2], err[2];
  assert_int_equal(pipe2(out, O_CLOEXEC), 0);
  assert_int_equal(pipe2(err, O_CLOEXEC), 0);
  fflush(stdout);
  fflush(stderr);
  s->pid = fork();
  assert_true(s->pid >= 0);
  if (s->pid == 0) {
    struct rlimit rl;
    dup2(out[1], 1);
    dup2(err[1], 2);
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = SERVER_FD_LIMIT;
    setrlimit(RLIMIT_NOFILE, &rl);
    execl(ECHO_SERVER_BLOCKING, ECHO_SERVER_BLOCKING, "--listen", "127.0.0.1:0", (char *)NULL);
    _exit(127);
  }
  close(out[1]);
  close(err[1]);
  s->out = out[0];
  s->err = err[0];
  s->errlen = 0;
}

/* Reads from `fd` into buf (NUL-terminated) until `want` appears, or EOF,
 * or the hang guard. Returns 1 when found. */
static int read_until(int fd, char *buf, size_t size, size_t *len, const char *want) {
  uint64_t end = tu_now_ms() + HANG_GUARD_MS;
  buf[*len] = '\0';
  while (!strstr(buf, want) && tu_now_ms() < end && *len + 1 < size) {
    struct pollfd p = {fd, POLLIN, 0};
    ssize_t n;
    if (poll(&p, 1, 100) <= 0)
      continue;
    n = read(fd, buf + *len, size - 1 - *len);
    if (n <= 0)
      break;
    *len += (size_t)n;
    buf[*len] = '\0';
  }
  return strstr(buf, want) != NULL;
}

static int server_port(struct server *s) {
  char out[512];
  size_t len = 0;
  const char *p;
  if (!read_until(s->out, out, sizeof out, &len, "\n"))
    return -1;
  p = strstr(out, "127.0.0.1:");
  return p ? atoi(p + strlen("127.0.0.1:")) : -1;
}

/* Reads what its stderr has within 100 ms, so a chatty server cannot block
 * on a full pipe; keeps what fits. */
static void drain_once(struct server *s) {
  struct pollfd p = {s->err, POLLIN, 0};
  char scratch[4096];
  ssize_t n;
  if (poll(&p, 1, 100) <= 0)
    return;
  n = read(s->err, scratch, sizeof scratch);
  if (n <= 0) {
    usleep(10000); /* EOF: it is exiting */
    return;
  }
  if (s->errlen + (size_t)n < sizeof s->errtext) {
    memcpy(s->errtext + s->errlen, scratch, (size_t)n);
    s->errlen += (size_t)n;
    s->errtext[s->errlen] = '\0';
  }
}

/* Waits for the server to exit within the hang guard; kills it otherwise.
 * Returns its wait status, or -1 if it had to be killed. */
static int wait_exit(struct server *s) {
  uint64_t end = tu_now_ms() + HANG_GUARD_MS;
  int status = 0;
  while (tu_now_ms() < end) {
    pid_t r = waitpid(s->pid, &status, WNOHANG);
    if (r == s->pid)
      return status;
    drain_once(s);
  }
  kill(s->pid, SIGKILL);
  waitpid(s->pid, &status, 0);
  return -1;
}

static void one_round(void) {
  struct server s;
  struct sockaddr_in sin;
  int clients[CLIENTS], port, status, i;
  start_server(&s);
  port = server_port(&s);
  assert_true(port > 0);
  memset(&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sin.sin_port = htons((uint16_t)port);
  for (i = 0; i < CLIENTS; i++) {
    clients[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(clients[i] >= 0);
    /* Completes in the backlog whether or not the server accepts. */
    assert_int_equal(connect(clients[i], (struct sockaddr *)&sin, sizeof sin), 0);
  }
  /* The server is out of descriptors: its accept loop reports the error
   * and backs off. SIGTERM now lands in that back-off. */
  if (!read_until(s.err, s.errtext, sizeof s.errtext, &s.errlen, "accept:")) {
    kill(s.pid, SIGKILL);
    waitpid(s.pid, NULL, 0);
    fail_msg("the server never reported an accept error; stderr: %.2000s", s.errtext);
  }
  kill(s.pid, SIGTERM);
  status = wait_exit(&s);
  for (i = 0; i < CLIENTS; i++)
    close(clients[i]);
  close(s.out);
  close(s.err);
  if (status == -1)
    fail_msg("the server did not exit within %d ms of SIGTERM; stderr: %.2000s", HANG_GUARD_MS, s.errtext);
  if (strstr(s.errtext, "invalid argument"))
    fail_msg("the server used a dead listener; stderr: %.2000s", s.errtext);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    fail_msg("the server ended with status 0x%x; stderr: %.2000s", status, s.errtext);
}

static void exits_on_sigterm_at_descriptor_limit(void **state) {
  (void)state;
  for (int round = 0; round < ROUNDS; round++)
    one_round();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(exits_on_sigterm_at_descriptor_limit),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
