#define _GNU_SOURCE
#include "tls_peer.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int run(const char *dir, const char *cmd) {
  char line[2048];
  snprintf(line, sizeof line, "cd '%s' && %s >>gen.log 2>&1", dir, cmd);
  int st = system(line);
  return st == 0 ? 0 : -1;
}

#define KEY "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
#define SIGN(ca, days) "openssl x509 -req -CA " ca ".crt -CAkey " ca ".key -days " days " "

int tp_certs_make(char *dir, size_t size) {
  if (system("openssl version >/dev/null 2>&1") != 0)
    return -1;
  snprintf(dir, size, "/tmp/rill-tls-XXXXXX");
  if (!mkdtemp(dir))
    return -1;
  const char *steps[] = {
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key "
      "-out ca.crt -subj '/CN=rill test CA' -days 2",
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout rogue_ca.key "
      "-out rogue_ca.crt -subj '/CN=rogue CA' -days 2",
      KEY "-keyout server.key -out server.csr -subj '/CN=localhost'",
      SIGN("ca", "2") "-set_serial 2 -in server.csr -extfile local.ext -out server.crt",
      SIGN("ca", "-1") "-set_serial 3 -in server.csr -extfile local.ext -out expired.crt",
      KEY "-keyout server2.key -out server2.csr -subj '/CN=renewed'",
      SIGN("ca", "2") "-set_serial 4 -in server2.csr -extfile local.ext -out server2.crt",
      KEY "-keyout other.key -out other.csr -subj '/CN=other.test'",
      SIGN("ca", "2") "-set_serial 5 -in other.csr -extfile other.ext -out other.crt",
      KEY "-keyout client.key -out client.csr -subj '/CN=rill client'",
      SIGN("ca", "2") "-set_serial 6 -in client.csr -extfile client.ext -out client.crt",
      KEY "-keyout rogue.key -out rogue.csr -subj '/CN=localhost'",
      SIGN("rogue_ca", "2") "-set_serial 7 -in rogue.csr -extfile local.ext -out rogue.crt",
      KEY "-keyout example.key -out example.csr -subj '/CN=example.test'",
      SIGN("ca", "2") "-set_serial 8 -in example.csr -extfile example.ext -out example.crt",
  };
  static const char *const exts[][2] = {
      {"local.ext", "subjectAltName=DNS:localhost,IP:127.0.0.1\n"},
      {"other.ext", "subjectAltName=DNS:other.test\n"},
      {"example.ext", "subjectAltName=DNS:example.test\n"},
      {"client.ext", "extendedKeyUsage=clientAuth\n"},
  };
  for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++) {
    FILE *f = fopen(tp_path(dir, exts[i][0]), "w");
    if (!f || fputs(exts[i][1], f) < 0 || fclose(f) != 0) {
      tp_certs_remove(dir);
      return -1;
    }
  }
  for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
    if (run(dir, steps[i]) != 0) {
      char log[512];
      snprintf(log, sizeof log, "cat '%s/gen.log' >&2", dir);
      if (system(log) != 0) {
      }
      tp_certs_remove(dir);
      return -1;
    }
  }
  return 0;
}

void tp_certs_remove(const char *dir) {
  char cmd[512];
  if (strncmp(dir, "/tmp/rill-tls-", 14) != 0)
    return;
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) {
  }
}

const char *tp_path(const char *dir, const char *name) {
  static char bufs[4][512];
  static int next;
  char *b = bufs[next++ % 4];
  snprintf(b, sizeof bufs[0], "%s/%s", dir, name);
  return b;
}

pid_t tp_spawn(char *const argv[], const char *in_file, const char *out_file) {
  pid_t pid = fork();
  if (pid != 0)
    return pid;
  int in = open(in_file ? in_file : "/dev/null", O_RDONLY);
  int out = open(out_file ? out_file : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (in < 0 || out < 0)
    _exit(126);
  dup2(in, 0);
  dup2(out, 1);
  dup2(out, 2);
  execvp(argv[0], argv);
  _exit(127);
}

void tp_kill(pid_t pid) {
  if (pid <= 0)
    return;
  kill(pid, SIGKILL);
  int st;
  waitpid(pid, &st, 0);
}

int tp_exited(pid_t pid) {
  int st;
  pid_t r = waitpid(pid, &st, WNOHANG);
  if (r != pid)
    return -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* A TCP socket bound to 127.0.0.1 on a port the kernel chose: the socket
 * (its port in *port), or -1. */
static int bound_on_loopback(int *port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof sa;
  if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
      getsockname(fd, (struct sockaddr *)&sa, &len) == 0) {
    *port = ntohs(sa.sin_port);
    return fd;
  }
  if (fd >= 0)
    close(fd);
  return -1;
}

int tp_free_port(void) {
  int port = -1;
  int fd = bound_on_loopback(&port);
  if (fd >= 0)
    close(fd);
  return port;
}

int tp_silent_listener(char *addr, size_t size) {
  int port;
  int fd = bound_on_loopback(&port);
  if (fd >= 0 && listen(fd, 8) != 0) {
    close(fd);
    fd = -1;
  }
  if (fd >= 0)
    snprintf(addr, size, "127.0.0.1:%d", port);
  return fd;
}

int tp_wait_port(int port, int timeout_ms) {
  for (int waited = 0; waited < timeout_ms; waited += 20) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons((unsigned short)port);
    int ok = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    close(fd);
    if (ok)
      return 0;
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  return -1;
}

char *tp_read_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  size_t cap = 4096, len = 0;
  char *buf = malloc(cap);
  size_t n;
  while (buf && (n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
    len += n;
    if (cap - len < 2) {
      char *p = realloc(buf, cap * 2);
      if (!p) {
        free(buf);
        buf = NULL;
        break;
      }
      buf = p;
      cap *= 2;
    }
  }
  fclose(f);
  if (buf)
    buf[len] = '\0';
  return buf;
}

static char tp_certs_dir[256];

int tp_certs_setup(void **state) {
  (void)state;
  if (tp_certs_make(tp_certs_dir, sizeof tp_certs_dir) != 0) {
    fprintf(stderr, "the openssl command is missing or failed\n");
    return -1;
  }
  return 0;
}

int tp_certs_teardown(void **state) {
  (void)state;
  tp_certs_remove(tp_certs_dir);
  return 0;
}

const char *tp_cert(const char *name) { return tp_path(tp_certs_dir, name); }

int tp_run_for_error(char *const argv[], const char *out_path, unsigned ms, char *line,
                     size_t size) {
  line[0] = '\0';
  pid_t pid = tp_spawn(argv, NULL, out_path);
  int status = -1;
  for (unsigned waited = 0; waited < ms && (status = tp_exited(pid)) < 0; waited += 10) {
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  if (status < 0)
    tp_kill(pid);
  char *text = tp_read_file(out_path);
  if (!text)
    return -2;
  const char *first = strncmp(text, "error: ", 7) == 0 ? text + 7 : text;
  snprintf(line, size, "%.*s", (int)strcspn(first, "\n"), first);
  free(text);
  return status;
}
