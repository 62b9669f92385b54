/* dial — resolve a name, connect Happy Eyeballs style, then act as a tiny nc.
 *
 *   dial [--dns-server IP:PORT] [--hosts FILE] [--timeout MS]
 *        [--fallback MS] [--network tcp|tcp4|tcp6] HOST:PORT
 *
 * First resolves HOST on its own (rill_resolve) and prints what it found and
 * how long that took; then dials HOST:PORT with rill_dial(), which resolves
 * again and tries the addresses, and prints when each attempt started (the
 * control hook runs just before each connect()) and which one won. After
 * that, stdin goes to the connection and the connection to stdout; at the
 * end of stdin the write side is shut (FIN) and the program keeps reading
 * until the peer closes.
 *
 * Diagnostics go to stderr, data to stdout. Exits 0 on success, 1 with a
 * Go-style error ("dial tcp 127.0.0.1:7000: connect: connection refused",
 * "dial tcp: lookup nosuch.example: no such host"), 2 on bad usage.
 *
 * Without --dns-server the system's resolver settings (/etc/resolv.conf)
 * are used, as with any program. */
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <rill.h>

#define CHUNK 65536
#define QUEUE_HIGH (1u << 20) /* stop reading stdin above this much queued */

struct dial_state {
  rill_base *base;
  const char *network;
  const char *address;
  char host[256];
  uint64_t t0_ns;
  int attempts;
  int status; /* exit status */

  rill_conn *conn;
  rill_io *stdin_watch; /* stdin is a pipe or terminal */
  rill_timer *file_pump; /* stdin is a file: read it chunk by chunk */
  int stdin_eof;
  int stdin_paused; /* the connection's queue is full */
  char *chunk;
};

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double since_ms(const struct dial_state *s) { return (double)(now_ns() - s->t0_ns) / 1e6; }

static void usage(void) {
  fprintf(stderr,
          "usage: dial [--dns-server IP:PORT] [--hosts FILE] [--timeout MS] [--fallback MS]\n"
          "            [--network tcp|tcp4|tcp6] HOST:PORT\n");
}

/* The host part of HOST:PORT or [HOST]:PORT. */
static int split_host(const char *address, char *host, size_t size) {
  const char *colon;
  size_t len;
  if (address[0] == '[') {
    const char *end = strchr(address, ']');
    if (!end)
      return -1;
    len = (size_t)(end - address - 1);
    address++;
  } else {
    colon = strrchr(address, ':');
    if (!colon)
      return -1;
    len = (size_t)(colon - address);
  }
  if (len >= size)
    return -1;
  memcpy(host, address, len);
  host[len] = '\0';
  return 0;
}

/* ---- the lookup, printed ------------------------------------------------ */

struct lookup {
  struct dial_state *s;
  int done;
  int status;
};

static void on_resolved(rill_dns_query *q, int status, const rill_dns_result *res, void *arg) {
  struct lookup *l = arg;
  size_t i;
  (void)q;
  l->done = 1;
  l->status = status;
  if (status < 0) {
    fprintf(stderr, "lookup %s: %s (after %.1f ms)\n", l->s->host, rill_strerror(status), since_ms(l->s));
    return;
  }
  fprintf(stderr, "lookup %s: %zu address%s in %.1f ms", l->s->host, res->count, res->count == 1 ? "" : "es",
          since_ms(l->s));
  if (res->canonical_name && res->canonical_name[0] && strcmp(res->canonical_name, l->s->host) != 0)
    fprintf(stderr, " (canonical name %s)", res->canonical_name);
  fputc('\n', stderr);
  for (i = 0; i < res->count; i++) {
    char buf[RILL_ADDRSTRLEN];
    socklen_t len = res->addrs[i].ss_family == AF_INET6 ? (socklen_t)sizeof(struct sockaddr_in6)
                                                        : (socklen_t)sizeof(struct sockaddr_in);
    if (rill_addr_format((const struct sockaddr *)&res->addrs[i], len, buf, sizeof buf) < 0)
      snprintf(buf, sizeof buf, "(family %d)", res->addrs[i].ss_family);
    /* A lookup's answer has port 0: show the address alone ("::1", not
     * "[::1]:0"). */
    {
      char *p = buf;
      size_t n = strlen(buf);
      if (n > 2 && strcmp(buf + n - 2, ":0") == 0)
        buf[n -= 2] = '\0';
      if (n >= 2 && buf[0] == '[' && buf[n - 1] == ']') {
        buf[n - 1] = '\0';
        p = buf + 1;
      }
      fprintf(stderr, "  %s\n", p);
    }
  }
}

/* ---- stdin -> connection ------------------------------------------------ */

static void stdin_stop(struct dial_state *s) {
  rill_io_free(s->stdin_watch);
  s->stdin_watch = NULL;
  rill_timer_free(s->file_pump);
  s->file_pump = NULL;
}

static void stdin_eof(struct dial_state *s) {
  int err;
  s->stdin_eof = 1;
  stdin_stop(s);
  /* Half-close: the peer reads EOF, we keep reading its answer. */
  if (s->conn && (err = rill_conn_close_write(s->conn)) < 0) {
    char msg[256];
    rill_conn_format_error(s->conn, "close", err, msg, sizeof msg);
    fprintf(stderr, "%s\n", msg);
  }
}

/* Reads stdin once and sends what came. */
static void stdin_read_once(struct dial_state *s) {
  ssize_t n = read(STDIN_FILENO, s->chunk, CHUNK);
  int err;
  if (n < 0 && (errno == EINTR || errno == EAGAIN))
    return;
  if (n < 0) {
    fprintf(stderr, "read stdin: %s\n", strerror(errno));
    s->status = 1;
    stdin_eof(s);
    return;
  }
  if (n == 0) {
    stdin_eof(s);
    return;
  }
  if ((err = rill_conn_write(s->conn, s->chunk, (size_t)n)) < 0) {
    char msg[256];
    rill_conn_format_error(s->conn, "write", err, msg, sizeof msg);
    fprintf(stderr, "%s\n", msg);
    s->status = 1;
    stdin_stop(s);
    rill_conn_close(s->conn);
    return;
  }
  if (rill_conn_write_queued(s->conn) > QUEUE_HIGH) {
    /* Back-pressure: wait for the queue to drain before reading more. */
    s->stdin_paused = 1;
    if (s->stdin_watch)
      rill_io_stop(s->stdin_watch);
  }
}

static void on_stdin(rill_io *io, int fd, unsigned events, void *arg) {
  (void)io;
  (void)fd;
  (void)events;
  stdin_read_once(arg);
}

static void on_file_pump(rill_timer *t, void *arg) {
  struct dial_state *s = arg;
  (void)t;
  stdin_read_once(s);
  if (!s->stdin_eof && !s->stdin_paused && s->file_pump)
    rill_timer_start(s->file_pump, 0, 0);
}

static void stdin_resume(struct dial_state *s) {
  if (!s->stdin_paused || s->stdin_eof)
    return;
  s->stdin_paused = 0;
  if (s->stdin_watch)
    rill_io_start(s->stdin_watch, RILL_READ);
  else if (s->file_pump)
    rill_timer_start(s->file_pump, 0, 0);
}

static int stdin_start(struct dial_state *s) {
  struct stat st;
  int err;
  s->chunk = malloc(CHUNK);
  if (!s->chunk)
    return RILL_ENOMEM;
  /* Regular files (and /dev/null) cannot be polled with epoll: read them
   * in chunks from a zero-delay timer instead. */
  if (fstat(STDIN_FILENO, &st) == 0 && (S_ISREG(st.st_mode) || S_ISCHR(st.st_mode)) && !isatty(STDIN_FILENO)) {
    if ((err = rill_timer_new(s->base, on_file_pump, s, &s->file_pump)) < 0)
      return err;
    return rill_timer_start(s->file_pump, 0, 0);
  }
  if ((err = rill_io_new(s->base, STDIN_FILENO, on_stdin, s, &s->stdin_watch)) < 0)
    return err;
  return rill_io_start(s->stdin_watch, RILL_READ);
}

/* ---- connection -> stdout ----------------------------------------------- */

static size_t on_read(rill_conn *conn, const char *data, size_t len, int status, void *arg) {
  struct dial_state *s = arg;
  if (status == 0) {
    if (fwrite(data, 1, len, stdout) != len || fflush(stdout) != 0) {
      fprintf(stderr, "write stdout: %s\n", strerror(errno));
      s->status = 1;
      stdin_stop(s);
      rill_conn_abort(conn);
    }
    return len;
  }
  if (status != RILL_EOF) {
    char msg[256];
    rill_conn_format_error(conn, "read", status, msg, sizeof msg);
    fprintf(stderr, "%s\n", msg);
    s->status = 1;
  }
  /* The peer is done (or broke): stop reading stdin and close. */
  stdin_stop(s);
  rill_conn_close(conn);
  return 0;
}

static void on_drain(rill_conn *conn, void *arg) {
  (void)conn;
  stdin_resume(arg);
}

static void on_write_error(rill_conn *conn, int err, size_t unsent, void *arg) {
  struct dial_state *s = arg;
  char msg[256];
  (void)unsent;
  rill_conn_format_error(conn, "write", err, msg, sizeof msg);
  fprintf(stderr, "%s\n", msg);
  s->status = 1;
  stdin_stop(s);
  rill_conn_close(conn);
}

static void on_close(rill_conn *conn, void *arg) {
  struct dial_state *s = arg;
  (void)conn;
  s->conn = NULL;
  stdin_stop(s);
}

/* ---- dialing ------------------------------------------------------------ */

/* Runs just before each connect(): one line per attempt. */
static int on_attempt(int fd, const char *network, const char *address, void *arg) {
  struct dial_state *s = arg;
  (void)fd;
  (void)network;
  s->attempts++;
  fprintf(stderr, "attempt %d: %s started at +%.1f ms\n", s->attempts, address, since_ms(s));
  return 0;
}

static void on_dialed(rill_dialer *d, rill_conn *conn, int status, void *arg) {
  struct dial_state *s = arg;
  static const rill_conn_events events = {on_read, on_drain, NULL, NULL, on_write_error, on_close};
  char buf[256];
  int err;
  if (status < 0) {
    rill_dialer_format_error(d, status, buf, sizeof buf);
    fprintf(stderr, "%s (after %.1f ms, %d attempt%s)\n", buf, since_ms(s), s->attempts,
            s->attempts == 1 ? "" : "s");
    s->status = 1;
    return;
  }
  s->conn = conn;
  rill_conn_remote_addr(conn, buf, sizeof buf);
  fprintf(stderr, "connected to %s after %.1f ms (%d attempt%s started)\n", buf, since_ms(s), s->attempts,
          s->attempts == 1 ? "" : "s");
  if ((err = rill_conn_start(conn, &events, s)) < 0 || (err = stdin_start(s)) < 0) {
    fprintf(stderr, "dial: %s\n", rill_strerror(err));
    s->status = 1;
    stdin_stop(s);
    rill_conn_abort(conn);
  }
}

int main(int argc, char **argv) {
  struct dial_state s;
  rill_base_config cfg;
  rill_socket_config opts;
  const char *dns_server = NULL, *hosts = NULL;
  unsigned long timeout_ms = 0, fallback_ms = 0;
  struct sockaddr_storage ss;
  socklen_t sslen;
  int i, err;

  memset(&s, 0, sizeof s);
  s.network = "tcp";
  for (i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--dns-server") && i + 1 < argc)
      dns_server = argv[++i];
    else if (!strcmp(a, "--hosts") && i + 1 < argc)
      hosts = argv[++i];
    else if (!strcmp(a, "--timeout") && i + 1 < argc)
      timeout_ms = strtoul(argv[++i], NULL, 10);
    else if (!strcmp(a, "--fallback") && i + 1 < argc)
      fallback_ms = strtoul(argv[++i], NULL, 10);
    else if (!strcmp(a, "--network") && i + 1 < argc)
      s.network = argv[++i];
    else if (a[0] == '-' && a[1] != '\0') {
      usage();
      return 2;
    } else if (!s.address)
      s.address = a;
    else {
      usage();
      return 2;
    }
  }
  if (!s.address || split_host(s.address, s.host, sizeof s.host) < 0) {
    usage();
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);

  memset(&cfg, 0, sizeof cfg);
  cfg.dns.servers = dns_server;
  cfg.dns.hosts_file = hosts;
  if ((err = rill_base_new(&cfg, &s.base)) < 0) {
    fprintf(stderr, "dial: %s\n", rill_strerror(err));
    return 1;
  }
  fprintf(stderr, "resolver: c-ares %s, servers %s\n", rill_dns_version() ? rill_dns_version() : "(none)",
          dns_server ? dns_server : "from /etc/resolv.conf");

  /* A name (not a number): look it up first, to show the addresses. */
  err = rill_addr_parse(s.network, s.address, &ss, &sslen);
  if (err == RILL_ENEEDDNS) {
    struct lookup l;
    int family = !strcmp(s.network, "tcp4") ? AF_INET : !strcmp(s.network, "tcp6") ? AF_INET6 : AF_UNSPEC;
    memset(&l, 0, sizeof l);
    l.s = &s;
    s.t0_ns = now_ns();
    err = rill_resolve(s.base, s.host, family, NULL, on_resolved, &l, NULL);
    if (err < 0) {
      fprintf(stderr, "dial %s: lookup %s: %s\n", s.network, s.host, rill_strerror(err));
      rill_base_free(s.base);
      return 1;
    }
    while (!l.done && rill_base_run(s.base, RILL_RUN_ONCE) >= 0) {
    }
    /* On failure rill_dial reports the same error, Go's way, below. */
  }

  memset(&opts, 0, sizeof opts);
  opts.timeout = timeout_ms * RILL_MSEC;
  opts.fallback_delay = ((unsigned)fallback_ms) * RILL_MSEC;
  opts.control = on_attempt;
  opts.control_arg = &s;
  s.t0_ns = now_ns();
  err = rill_dial(s.base, s.network, s.address, &opts, on_dialed, &s, NULL);
  if (err < 0) {
    /* Met at once (a malformed address, a bad name): Go's form by hand. */
    fprintf(stderr, "dial %s %s: %s\n", s.network, s.address, rill_strerror(err));
    rill_base_free(s.base);
    return 1;
  }
  rill_base_run(s.base, RILL_RUN_DEFAULT);
  stdin_stop(&s);
  free(s.chunk);
  if ((err = rill_base_free(s.base)) < 0) {
    fprintf(stderr, "dial: rill_base_free: %s\n", rill_strerror(err));
    return 1;
  }
  return s.status;
}
