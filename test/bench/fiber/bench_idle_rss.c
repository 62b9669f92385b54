/* bench_idle_rss — memory per idle connection held by a fiber.
 *
 *   bench_idle_rss [--conns N] [--buf BYTES]
 *
 * The server (this process) accepts N connections (default 10000) with the
 * blocking facade, one fiber per connection, each parked in
 * rill_net_read() with a BYTES buffer on its stack (default 4096) — Go's
 * "goroutine per connection blocked in Read". A child process makes the
 * connections with plain blocking sockets and holds them, so the server's
 * descriptors and memory are its own. The server's VmRSS
 * (/proc/self/status) is read before the first connection and once all N
 * fibers are parked; the difference over N is the user-space memory per
 * connection: the fiber's stack pages actually touched (the stack is
 * mmap'ed, 256 KiB reserved, untouched pages cost nothing), its
 * bookkeeping, the connection handles. Kernel socket memory is not in RSS.
 * test/bench/fiber/go_idle_rss measures the same for Go.
 *
 * Prints a human-readable line and "rss_per_conn_bytes=..." for
 * run_fiber.sh. Needs about N + 20 descriptors in each process. */
#define _GNU_SOURCE
#include <alloca.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <rill.h>

static int conns = 10000;
static size_t buf_size = 4096;
static int to_child[2], from_child[2];
static int accepted, parked, finished;
static long rss_before_kb, rss_after_kb;
static rill_net_listener *listener;

static long vm_rss_kb(void) {
  char line[256];
  long kb = -1;
  FILE *f = fopen("/proc/self/status", "r");
  if (!f)
    return -1;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
      break;
  fclose(f);
  return kb;
}

/* The child: N blocking connects, report, hold them until the pipe closes. */
static void client(int port) {
  struct sockaddr_in sa;
  char c = 0;
  int i;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((unsigned short)port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  for (i = 0; i < conns; i++) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
      perror("bench_idle_rss client");
      _exit(1);
    }
  }
  if (write(from_child[1], &c, 1) != 1)
    _exit(1);
  while (read(to_child[0], &c, 1) > 0) {
  }
  _exit(0); /* closes every connection: the server's reads get EOF */
}

/* One per connection: park in read until EOF. */
static void serve(void *arg) {
  rill_net_conn *c = arg;
  char *buf = alloca(buf_size); /* on the fiber's stack, as `char buf[N]` */
  parked++;
  while (rill_net_read(c, buf, buf_size) > 0) {
  }
  rill_net_conn_free(c);
  finished++;
}

static void acceptor(void *arg) {
  (void)arg;
  while (accepted < conns) {
    rill_net_conn *c;
    int err = rill_net_accept(listener, &c);
    if (err < 0) {
      fprintf(stderr, "bench_idle_rss: accept: %s\n", rill_strerror(err));
      exit(1);
    }
    accepted++;
    if (rill_go(rill_fiber_base(), serve, c) < 0) {
      fprintf(stderr, "bench_idle_rss: rill_go failed\n");
      exit(1);
    }
  }
}

static void main_fiber(void *arg) {
  char addr[RILL_ADDRSTRLEN], c;
  int err, port;
  (void)arg;
  if ((err = rill_net_listen("tcp", "127.0.0.1:0", NULL, &listener)) < 0) {
    fprintf(stderr, "bench_idle_rss: listen: %s\n", rill_strerror(err));
    exit(1);
  }
  rill_net_listener_addr(listener, addr, sizeof addr);
  port = atoi(strrchr(addr, ':') + 1);
  /* Warm up what every later fiber reuses (the scheduler, timers), then
   * take the baseline. */
  rill_sleep(50 * RILL_MSEC);
  rss_before_kb = vm_rss_kb();
  if (write(to_child[1], &port, sizeof port) != (ssize_t)sizeof port)
    exit(1);
  rill_go(rill_fiber_base(), acceptor, NULL);
  /* The child says when it has connected; then wait until every fiber is
   * parked in its read. The pipe is read with poll-free blocking I/O, but
   * only after the child is done, so it does not block the loop long. */
  while (accepted < conns || parked < conns)
    rill_sleep(10 * RILL_MSEC);
  if (read(from_child[0], &c, 1) != 1)
    exit(1);
  rill_sleep(200 * RILL_MSEC);
  rss_after_kb = vm_rss_kb();
  rill_net_listener_free(listener);
  close(to_child[1]); /* the child exits, closing every connection */
  while (finished < conns)
    rill_sleep(10 * RILL_MSEC);
}

int main(int argc, char **argv) {
  rill_base *base;
  struct rlimit rl;
  pid_t pid;
  int i, port, status;
  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--conns") == 0 && i + 1 < argc)
      conns = atoi(argv[++i]);
    else if (strcmp(argv[i], "--buf") == 0 && i + 1 < argc)
      buf_size = (size_t)atol(argv[++i]);
    else {
      fprintf(stderr, "usage: %s [--conns N] [--buf BYTES]\n", argv[0]);
      return 2;
    }
  }
  if (conns < 1 || buf_size < 1 || buf_size > 64 * 1024) {
    fprintf(stderr, "bench_idle_rss: --conns >= 1, --buf 1..65536\n");
    return 2;
  }
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)conns + 64) {
    rl.rlim_cur = (rlim_t)conns + 64;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_cur > rl.rlim_max) {
      fprintf(stderr, "bench_idle_rss: need %d descriptors, the hard limit is %ld\n", conns + 64,
              (long)rl.rlim_max);
      return 1;
    }
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  if (pipe(to_child) < 0 || pipe(from_child) < 0)
    return 1;
  if ((pid = fork()) < 0)
    return 1;
  if (pid == 0) {
    close(to_child[1]);
    close(from_child[0]);
    if (read(to_child[0], &port, sizeof port) != (ssize_t)sizeof port)
      _exit(1);
    client(port);
  }
  close(to_child[0]);
  close(from_child[1]);
  if (rill_base_new(NULL, &base) < 0 || rill_go(base, main_fiber, NULL) < 0)
    return 1;
  rill_base_run(base, RILL_RUN_DEFAULT);
  rill_base_free(base);
  waitpid(pid, &status, 0);
  printf("# rill facade: %d idle connections, a fiber each parked in rill_net_read (%zu-byte buffer "
         "on its stack): VmRSS %ld kB -> %ld kB, %.0f bytes per connection\n",
         conns, buf_size, rss_before_kb, rss_after_kb,
         (double)(rss_after_kb - rss_before_kb) * 1024.0 / conns);
  printf("rss_per_conn_bytes=%.0f\n", (double)(rss_after_kb - rss_before_kb) * 1024.0 / conns);
  return 0;
}
