/* echo_client — the callback echo client.
 *
 *   echo_client [--connect ADDR] [--network tcp|tcp4|tcp6|unix]
 *               [--count N] [--size S] [--quiet]
 *
 * Dials ADDR (default 127.0.0.1:7000). With --count, sends N messages of S
 * bytes (default 64) one at a time, waiting for the whole echo of each before
 * sending the next, checks what comes back and prints round-trip statistics.
 * Without --count it is a tiny nc: what arrives on stdin goes to the server,
 * what the server sends goes to stdout; at the end of stdin the client shuts
 * its write side and exits once the server has closed too.
 *
 * Exits 0 on success, 1 with a Go-style error on failure
 * ("dial tcp 127.0.0.1:7000: connect: connection refused"), 2 on bad usage. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, read, isatty under -std=c99 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <rill.h>

#define STDIN_CHUNK 65536
#define DIAL_TIMEOUT_MS 10000

struct client {
  rill_base *base;
  rill_conn *conn;
  const char *network, *address;
  int quiet;
  int failed; /* exit status 1 */

  /* --count mode */
  unsigned long count, sent, done;
  size_t size, received; /* bytes of the current echo seen so far */
  char *msg;             /* the message in flight */
  uint64_t *rtt_ns;      /* one round trip per message */
  uint64_t sent_at, started, finished;

  /* stdin mode */
  rill_io *stdin_watch; /* NULL when stdin cannot be polled (a file) */
  int stdin_eof;
  int stdin_file; /* read stdin with plain blocking reads */
  char *chunk;
};

static uint64_t clock_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void conn_fail(struct client *c, const char *op, int err) {
  char msg[512];
  rill_conn_format_error(c->conn, op, err, msg, sizeof msg);
  fprintf(stderr, "echo_client: %s\n", msg);
  c->failed = 1;
}

static void stop_stdin(struct client *c) {
  rill_io_free(c->stdin_watch);
  c->stdin_watch = NULL;
}

/* Ends the session: gracefully when all went well, else with a reset. */
static void finish(struct client *c) {
  stop_stdin(c);
  if (!c->conn)
    return;
  if (c->failed)
    rill_conn_abort(c->conn);
  else
    rill_conn_close(c->conn);
}

/* ---- --count: ping-pong ------------------------------------------------- */

static void send_next(struct client *c) {
  unsigned long seq = c->sent;
  size_t i;
  int err;
  /* A different message each time, so a stale or repeated echo is caught. */
  for (i = 0; i < c->size; i++)
    c->msg[i] = (char)('a' + (seq + i) % 26);
  c->received = 0;
  c->sent_at = clock_ns();
  c->sent++;
  if ((err = rill_conn_write(c->conn, c->msg, c->size)) < 0) {
    conn_fail(c, "write", err);
    finish(c);
  }
}

static size_t on_read_count(rill_conn *conn, const char *data, size_t len, int status, void *arg) {
  struct client *c = arg;
  (void)conn;
  if (status < 0) {
    if (status == RILL_EOF)
      fprintf(stderr, "echo_client: server closed the connection after %lu of %lu echoes\n",
              c->done, c->count);
    else
      conn_fail(c, "read", status);
    c->failed = 1;
    finish(c);
    return 0;
  }
  if (c->received + len > c->size || c->sent == c->done) {
    fprintf(stderr, "echo_client: server sent more than was echoed (message %lu)\n", c->done + 1);
    c->failed = 1;
    finish(c);
    return len;
  }
  if (memcmp(c->msg + c->received, data, len) != 0) {
    fprintf(stderr, "echo_client: echo of message %lu differs from what was sent\n", c->done + 1);
    c->failed = 1;
    finish(c);
    return len;
  }
  c->received += len;
  if (c->received == c->size) {
    uint64_t now = clock_ns();
    c->rtt_ns[c->done++] = now - c->sent_at;
    if (c->done == c->count) {
      c->finished = now;
      finish(c);
    } else {
      send_next(c);
    }
  }
  return len;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of a sorted array. */
static double percentile_us(const uint64_t *sorted, unsigned long n, double p) {
  double exact = p / 100.0 * (double)n;
  unsigned long rank = (unsigned long)exact;
  if ((double)rank < exact)
    rank++;
  if (rank < 1)
    rank = 1;
  if (rank > n)
    rank = n;
  return (double)sorted[rank - 1] / 1000.0;
}

static void print_stats(const struct client *c) {
  unsigned long n = c->done;
  double total_s = (double)(c->finished - c->started) / 1e9;
  qsort(c->rtt_ns, n, sizeof *c->rtt_ns, cmp_u64);
  printf("count=%lu size=%zu total=%.3f s rate=%.0f msgs/s\n", n, c->size, total_s,
         total_s > 0 ? (double)n / total_s : 0.0);
  printf("rtt us: min=%.1f median=%.1f p99=%.1f max=%.1f\n", (double)c->rtt_ns[0] / 1000.0,
         percentile_us(c->rtt_ns, n, 50), percentile_us(c->rtt_ns, n, 99),
         (double)c->rtt_ns[n - 1] / 1000.0);
}

/* ---- stdin mode --------------------------------------------------------- */

static void stdin_done(struct client *c) {
  int err;
  c->stdin_eof = 1;
  stop_stdin(c);
  /* FIN once the queue is flushed; the echo server answers with its own. */
  if ((err = rill_conn_close_write(c->conn)) < 0) {
    conn_fail(c, "close", err);
    finish(c);
  }
}

/* Reads stdin once and sends what came. Returns 1 if more may follow now. */
static int stdin_read_once(struct client *c) {
  ssize_t n;
  int err;
  do
    n = read(STDIN_FILENO, c->chunk, STDIN_CHUNK);
  while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
    return 0;
  if (n < 0) {
    fprintf(stderr, "echo_client: read stdin: %s\n", strerror(errno));
    c->failed = 1;
    finish(c);
    return 0;
  }
  if (n == 0) {
    stdin_done(c);
    return 0;
  }
  if ((err = rill_conn_write(c->conn, c->chunk, (size_t)n)) < 0) {
    conn_fail(c, "write", err);
    finish(c);
    return 0;
  }
  if (rill_conn_write_queued(c->conn) > 0) {
    /* The server is slow to take it: wait for on_drain. */
    if (c->stdin_watch)
      rill_io_stop(c->stdin_watch);
    return 0;
  }
  return 1;
}

/* Stdin that is a file: plain reads until the kernel stops taking bytes. */
static void pump_file(struct client *c) {
  while (!c->stdin_eof && !c->failed && stdin_read_once(c))
    ;
}

static void on_stdin(rill_io *io, int fd, unsigned events, void *arg) {
  struct client *c = arg;
  (void)io;
  (void)fd;
  (void)events;
  /* One read per readiness: stdin stays blocking (it is shared with the
   * shell), and a ready descriptor does not block a single read. */
  stdin_read_once(c);
}

static void on_drain(rill_conn *conn, void *arg) {
  struct client *c = arg;
  (void)conn;
  if (c->stdin_eof || c->failed)
    return;
  if (c->stdin_file)
    pump_file(c);
  else if (c->stdin_watch)
    rill_io_start(c->stdin_watch, RILL_READ);
}

static size_t on_read_stdio(rill_conn *conn, const char *data, size_t len, int status, void *arg) {
  struct client *c = arg;
  (void)conn;
  if (status == 0) {
    if (fwrite(data, 1, len, stdout) != len || fflush(stdout) != 0) {
      fprintf(stderr, "echo_client: write stdout: %s\n", strerror(errno));
      c->failed = 1;
      finish(c);
    }
    return len;
  }
  if (status != RILL_EOF)
    conn_fail(c, "read", status);
  else if (!c->quiet && !c->stdin_eof)
    fprintf(stderr, "echo_client: server closed the connection\n");
  finish(c);
  return 0;
}

static int start_stdin(struct client *c) {
  struct stat st;
  int err;
  c->chunk = malloc(STDIN_CHUNK);
  if (!c->chunk)
    return RILL_ENOMEM;
  /* Files and devices such as /dev/null cannot be polled by every backend;
   * terminals, pipes and sockets can. */
  if (fstat(STDIN_FILENO, &st) == 0 && !isatty(STDIN_FILENO) && !S_ISFIFO(st.st_mode) &&
      !S_ISSOCK(st.st_mode)) {
    c->stdin_file = 1;
    pump_file(c);
    return 0;
  }
  if ((err = rill_io_new(c->base, STDIN_FILENO, on_stdin, c, &c->stdin_watch)) < 0)
    return err;
  return rill_io_start(c->stdin_watch, RILL_READ);
}

/* ---- connection lifetime ------------------------------------------------- */

static void on_write_error(rill_conn *conn, int err, size_t unsent, void *arg) {
  struct client *c = arg;
  (void)conn;
  (void)unsent;
  conn_fail(c, "write", err);
  finish(c);
}

static void on_close(rill_conn *conn, void *arg) {
  struct client *c = arg;
  (void)conn;
  c->conn = NULL;
  stop_stdin(c);
}

static void on_dial(rill_dialer *dialer, rill_conn *conn, int status, void *arg) {
  struct client *c = arg;
  static const rill_conn_events count_events = {on_read_count, NULL, NULL, NULL, on_write_error,
                                                on_close};
  static const rill_conn_events stdio_events = {on_read_stdio, on_drain, NULL, NULL, on_write_error,
                                                on_close};
  int err;
  if (status < 0) {
    char msg[512];
    rill_dialer_format_error(dialer, status, msg, sizeof msg);
    fprintf(stderr, "echo_client: %s\n", msg);
    c->failed = 1;
    return;
  }
  c->conn = conn;
  if (!c->quiet) {
    char local[RILL_ADDRSTRLEN] = "?", remote[RILL_ADDRSTRLEN] = "?";
    rill_conn_local_addr(conn, local, sizeof local);
    rill_conn_remote_addr(conn, remote, sizeof remote);
    fprintf(stderr, "echo_client: connected %s -> %s\n", local, remote);
  }
  if (c->count) {
    rill_conn_start(conn, &count_events, c);
    c->started = clock_ns();
    send_next(c);
    return;
  }
  rill_conn_start(conn, &stdio_events, c);
  if ((err = start_stdin(c)) < 0) {
    fprintf(stderr, "echo_client: stdin: %s\n", rill_strerror(err));
    c->failed = 1;
    finish(c);
  }
}

static int parse_ulong(const char *s, unsigned long *out) {
  char *end;
  unsigned long v;
  if (*s == '-' || *s == '\0')
    return -1;
  errno = 0;
  v = strtoul(s, &end, 10);
  if (errno || *end)
    return -1;
  *out = v;
  return 0;
}

static int usage(const char *argv0) {
  fprintf(stderr,
          "usage: %s [--connect ADDR] [--network tcp|tcp4|tcp6|unix] [--count N] [--size S] "
          "[--quiet]\n",
          argv0);
  return 2;
}

int main(int argc, char **argv) {
  struct client c;
  rill_socket_config opts;
  unsigned long size = 64;
  int i, err;

  memset(&c, 0, sizeof c);
  memset(&opts, 0, sizeof opts);
  c.network = "tcp";
  c.address = "127.0.0.1:7000";
  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--connect") == 0 && i + 1 < argc)
      c.address = argv[++i];
    else if (strcmp(argv[i], "--network") == 0 && i + 1 < argc)
      c.network = argv[++i];
    else if (strcmp(argv[i], "--count") == 0 && i + 1 < argc) {
      if (parse_ulong(argv[++i], &c.count) < 0 || c.count == 0)
        return usage(argv[0]);
    } else if (strcmp(argv[i], "--size") == 0 && i + 1 < argc) {
      if (parse_ulong(argv[++i], &size) < 0 || size == 0 || size > (1ul << 30))
        return usage(argv[0]);
    } else if (strcmp(argv[i], "--quiet") == 0)
      c.quiet = 1;
    else
      return usage(argv[0]);
  }
  c.size = size;
  if (c.count) {
    if (c.count <= SIZE_MAX / sizeof *c.rtt_ns) {
      c.msg = malloc(c.size);
      c.rtt_ns = malloc(c.count * sizeof *c.rtt_ns);
    }
    if (!c.msg || !c.rtt_ns) {
      fprintf(stderr, "echo_client: out of memory\n");
      return 1;
    }
  }
  if ((err = rill_base_new(NULL, &c.base)) < 0) {
    fprintf(stderr, "echo_client: %s\n", rill_strerror(err));
    return 1;
  }
  opts.timeout = DIAL_TIMEOUT_MS * RILL_MSEC;
  err = rill_dial(c.base, c.network, c.address, &opts, on_dial, &c, NULL);
  if (err < 0) {
    /* Refused at once (a malformed address, say): no dialer to ask. */
    char msg[512];
    rill_format_op_error("dial", c.network, NULL, c.address, NULL, err, msg, sizeof msg);
    fprintf(stderr, "echo_client: %s\n", msg);
    c.failed = 1;
  } else if ((err = rill_base_run(c.base, RILL_RUN_DEFAULT)) < 0) {
    fprintf(stderr, "echo_client: rill_base_run: %s\n", rill_strerror(err));
    c.failed = 1;
  }
  if (!c.failed && c.count && c.done == c.count)
    print_stats(&c);
  else if (!c.failed && c.count) {
    fprintf(stderr, "echo_client: only %lu of %lu echoes came back\n", c.done, c.count);
    c.failed = 1;
  }
  if ((err = rill_base_free(c.base)) < 0) {
    fprintf(stderr, "echo_client: rill_base_free: %s\n", rill_strerror(err));
    c.failed = 1;
  }
  free(c.msg);
  free(c.rtt_ns);
  free(c.chunk);
  return c.failed ? 1 : 0;
}
