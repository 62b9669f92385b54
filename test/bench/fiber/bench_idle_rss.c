/* bench_idle_rss — memory per idle connection held by a fiber, or by the
 * callback API.
 *
 *   bench_idle_rss [--conns N] [--buf BYTES] [--callbacks | --private-stack]
 *
 * The server (this process) accepts N connections (default 10000) with the
 * blocking facade, one fiber per connection, each parked in
 * rill_net_read() with a BYTES buffer on its stack (default 4096) — Go's
 * "goroutine per connection blocked in Read". A child process makes the
 * connections with plain blocking sockets and holds them, so the server's
 * descriptors and memory are its own. The server's VmRSS
 * (/proc/self/status) is read before the first connection and once all N
 * fibers are parked and 1.5 s more have passed (so fibers that promised a
 * private stack have given their stack pages back; Go's side waits as
 * long); the difference over N is the user-space memory per
 * connection: the fiber's stack pages actually touched (the stack is
 * mmap'ed, 8 MiB reserved, untouched pages cost nothing; the fiber's state
 * lives at its top), the connection handles. Kernel socket memory is not
 * in RSS, nor are page tables: VmPTE is reported beside it (a stack
 * reservation of 2 MiB or more costs its fiber a page-table page of its
 * own, 4 KiB, which RSS does not show).
 * --callbacks: the same connections held by the callback API instead
 * (rill_listen, rill_conn_start, no fiber): what a connection costs below
 * the facade. --private-stack: each fiber calls rill_fiber_private_stack()
 * first, so its stack pages go back to the kernel while it waits.
 * test/bench/fiber/go_idle_rss measures the same for Go.
 *
 * Prints a human-readable line, "rss_per_conn_bytes=..." and
 * "pte_per_conn_bytes=..." for run_fiber.sh. Needs about N + 20
 * descriptors in each process. */
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
static int callbacks, private_stack;
static int accepted, parked, finished;
static long rss_before_kb, rss_after_kb, pte_before_kb, pte_after_kb;
static rill_net_listener *listener;
static rill_listener *cb_listener;

/* A field of /proc/self/status in kB ("VmRSS", "VmPTE"), or -1. */
static long status_kb(const char *field) {
  char line[256], fmt[32];
  long kb = -1;
  FILE *f = fopen("/proc/self/status", "r");
  if (!f)
    return -1;
  snprintf(fmt, sizeof fmt, "%s: %%ld kB", field);
  while (fgets(line, sizeof line, f))
    if (sscanf(line, fmt, &kb) == 1)
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
  if (private_stack && rill_fiber_private_stack() != 0) {
    fprintf(stderr, "bench_idle_rss: rill_fiber_private_stack failed\n");
    exit(1);
  }
  parked++;
  while (rill_net_read(c, buf, buf_size) > 0) {
  }
  rill_net_conn_free(c);
  finished++;
}

/* --callbacks: a connection idle in the callback API holds no buffer; input
 * would be consumed as it comes, EOF closes. */
static size_t cb_on_read(rill_conn *conn, const char *data, size_t len, int status, void *arg) {
  (void)data;
  (void)arg;
  if (status != 0)
    rill_conn_close(conn);
  return len;
}

static void cb_on_close(rill_conn *conn, void *arg) {
  (void)conn;
  (void)arg;
  finished++;
}

static const rill_conn_events cb_events = {cb_on_read, NULL, NULL, NULL, NULL, cb_on_close};

static void cb_on_accept(rill_listener *l, rill_conn *conn, int status, void *arg) {
  (void)l;
  (void)arg;
  if (status < 0) {
    fprintf(stderr, "bench_idle_rss: accept: %s\n", rill_strerror(status));
    exit(1);
  }
  accepted++;
  parked++; /* idle as soon as it is started */
  rill_conn_start(conn, &cb_events, NULL);
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
  if (callbacks)
    err = rill_listen(rill_fiber_base(), "tcp", "127.0.0.1:0", NULL, cb_on_accept, NULL, &cb_listener);
  else
    err = rill_net_listen("tcp", "127.0.0.1:0", NULL, &listener);
  if (err < 0) {
    fprintf(stderr, "bench_idle_rss: listen: %s\n", rill_strerror(err));
    exit(1);
  }
  if (callbacks)
    rill_listener_addr(cb_listener, addr, sizeof addr);
  else
    rill_net_listener_addr(listener, addr, sizeof addr);
  port = atoi(strrchr(addr, ':') + 1);
  /* Warm up what every later fiber reuses (the scheduler, timers), then
   * take the baseline. */
  rill_sleep(50 * RILL_MSEC);
  rss_before_kb = status_kb("VmRSS");
  pte_before_kb = status_kb("VmPTE");
  if (write(to_child[1], &port, sizeof port) != (ssize_t)sizeof port)
    exit(1);
  if (!callbacks)
    rill_go(rill_fiber_base(), acceptor, NULL);
  /* The child says when it has connected; then wait until every fiber is
   * parked in its read. The pipe is read with poll-free blocking I/O, but
   * only after the child is done, so it does not block the loop long. */
  while (accepted < conns || parked < conns)
    rill_sleep(10 * RILL_MSEC);
  if (read(from_child[0], &c, 1) != 1)
    exit(1);
  rill_sleep(1500 * RILL_MSEC);
  rss_after_kb = status_kb("VmRSS");
  pte_after_kb = status_kb("VmPTE");
  if (callbacks)
    rill_listener_free(cb_listener);
  else
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
    else if (strcmp(argv[i], "--callbacks") == 0)
      callbacks = 1;
    else if (strcmp(argv[i], "--private-stack") == 0)
      private_stack = 1;
    else {
      fprintf(stderr, "usage: %s [--conns N] [--buf BYTES] [--callbacks | --private-stack]\n", argv[0]);
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
  if (callbacks)
    printf("# rill callbacks: %d idle connections, each started with rill_conn_start (no buffer): "
           "VmRSS %ld kB -> %ld kB, %.0f bytes per connection; page tables %.0f bytes\n",
           conns, rss_before_kb, rss_after_kb, (double)(rss_after_kb - rss_before_kb) * 1024.0 / conns,
           (double)(pte_after_kb - pte_before_kb) * 1024.0 / conns);
  else
    printf("# rill facade%s: %d idle connections, a fiber each parked in rill_net_read (%zu-byte buffer "
           "on its stack): VmRSS %ld kB -> %ld kB, %.0f bytes per connection; page tables %.0f bytes\n",
           private_stack ? " (private stacks)" : "", conns, buf_size, rss_before_kb, rss_after_kb,
           (double)(rss_after_kb - rss_before_kb) * 1024.0 / conns,
           (double)(pte_after_kb - pte_before_kb) * 1024.0 / conns);
  printf("rss_per_conn_bytes=%.0f\n", (double)(rss_after_kb - rss_before_kb) * 1024.0 / conns);
  printf("pte_per_conn_bytes=%.0f\n", (double)(pte_after_kb - pte_before_kb) * 1024.0 / conns);
  return 0;
}
