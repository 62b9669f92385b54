/* tls_loadgen — the TLS benchmark's client (run_tls.sh), the same for every
 * server: loadgen.c's ping-pong over TLS 1.3, and handshake loops.
 *
 *   tls_loadgen [--mode echo|full|resumed] [--connect ADDR] [--conns N]
 *               [--size S] [--seconds T] [--warmup W] [--pid PID] [--ca FILE]
 *
 * Every connection offers only TLS 1.3, TLS_AES_128_GCM_SHA256 and the X25519
 * group, so every server negotiates the same thing whatever it prefers.
 *
 *   echo     N connections (default 1) each do the handshake, then play
 *            ping-pong: write S bytes (one SSL_write), read until all S came
 *            back, write again. Counts round trips.
 *   full     N slots (default 1) each loop: connect, full handshake (no
 *            session offered), one S-byte echo, close_notify, close. Counts
 *            handshakes. The server still issues its tickets: that is what
 *            serving a client it has never seen costs.
 *   resumed  the same, offering the newest session (TLS 1.3 ticket) this
 *            client holds: the first connection makes a full handshake, every
 *            later one resumes (psk_dhe_ke: still an X25519 exchange, no
 *            certificate, no signature). The other slots start once the
 *            first connection has its ticket. The session is replaced by the one
 *            each connection ends with, as a client's cache would, so a
 *            server with single-use tickets resumes too. Fails when fewer
 *            than 90% of the counted handshakes resumed.
 *
 * After W seconds of warm-up (default 0.5) it counts for T seconds (default
 * 3) and prints one line:
 *
 *   mode=M conns=N size=S rate=X ops=K server_cpu_us=C client_cpu_us=L resumed=R total_ops=A window=W0-W1
 *
 * X is round trips or handshakes per second, K how many the window counted.
 * With --pid, C is the server's CPU time (user + system, all its threads, from
 * /proc/PID/stat) over the same window divided by K, in µs, else "n/a"; L the
 * same for this process (getrusage): when neither is near a whole core's
 * worth, the machine, not the server or the client, set the rate. R is how
 * many of the counted handshakes resumed (0 in echo mode), A how many
 * round trips or handshakes completed since the start, warm-up included
 * (perop.sh divides what a whole server run cost by it), W0 and W1 the
 * window's ends in seconds since the epoch (perop.sh counts a server's
 * system calls between them).
 *
 * Connections close with SO_LINGER 0 (a reset after the close_notify): a
 * handshake loop would otherwise fill the ephemeral ports with TIME_WAIT. Only
 * with --ca does the client check the server's chain (and its IP address); the
 * CertificateVerify signature it always checks. One thread, raw level-triggered
 * epoll, OpenSSL on non-blocking sockets. Any failure exits 1. */
#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_EVENTS 512
#define READ_BUF 65536

enum mode { ECHO, FULL, RESUMED };
enum state { CONNECTING, HANDSHAKE, SENDING, RECEIVING };

struct conn {
  int fd;
  SSL *ssl;
  enum state state;
  unsigned events; /* what epoll watches for it */
  size_t received;
  int up; /* handshake done once (echo mode: all up before the warm-up) */
};

static enum mode mode = ECHO;
static int epfd;
static SSL_CTX *ctx;
static struct addrinfo *target;
static const char *address = "127.0.0.1:7000";
static const char *ca_file;
static size_t msg_size = 64;
static char *msg;
static char rbuf[READ_BUF];
static uint64_t done_ops;     /* round trips or handshakes, since start */
static uint64_t resumed_ops;  /* handshakes that resumed, since start */
static SSL_SESSION *session;  /* resumed mode: the newest one */

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void fail_text(const struct conn *c, const char *what, const char *text) {
  fprintf(stderr, "tls_loadgen: %s %s (fd %d): %s\n", what, address, c ? c->fd : -1, text);
  ERR_print_errors_fp(stderr);
  exit(1);
}

static void fail(const struct conn *c, const char *what, int err) { fail_text(c, what, strerror(err)); }

static void watch(int op, struct conn *c, unsigned events) {
  struct epoll_event ev;
  if (op == EPOLL_CTL_MOD && c->events == events)
    return;
  memset(&ev, 0, sizeof ev);
  ev.events = events;
  ev.data.ptr = c;
  if (epoll_ctl(epfd, op, c->fd, &ev) < 0)
    fail(c, "epoll_ctl", errno);
  c->events = events;
}

/* An SSL call that returned r <= 0: waits for what it wants, or fails. */
static void wait_or_fail(struct conn *c, int r, const char *what) {
  int e = SSL_get_error(c->ssl, r);
  if (e == SSL_ERROR_WANT_READ)
    watch(EPOLL_CTL_MOD, c, EPOLLIN);
  else if (e == SSL_ERROR_WANT_WRITE)
    watch(EPOLL_CTL_MOD, c, EPOLLOUT);
  else if (e == SSL_ERROR_ZERO_RETURN)
    fail_text(c, what, "the server closed the connection (close_notify)");
  else if (e == SSL_ERROR_SYSCALL)
    fail_text(c, what, errno ? strerror(errno) : "the server closed the connection");
  else
    fail_text(c, what, "TLS error");
}

static void dial(struct conn *c) {
  int one = 1;
  memset(c, 0, sizeof *c);
  c->fd = socket(target->ai_family, target->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c->fd < 0)
    fail(c, "socket", errno);
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(c->fd, target->ai_addr, target->ai_addrlen) < 0 && errno != EINPROGRESS)
    fail(c, "connect", errno);
  c->state = CONNECTING;
  watch(EPOLL_CTL_ADD, c, EPOLLOUT);
}

/* close_notify, then a reset: no TIME_WAIT left behind. */
static void hang_up(struct conn *c) {
  struct linger lg = {1, 0};
  SSL_shutdown(c->ssl);
  SSL_free(c->ssl);
  setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  close(c->fd);
  c->ssl = NULL;
  c->fd = -1;
}

/* Handshake mode: one connection has made its echo. */
static void handshake_done(struct conn *c) {
  done_ops++;
  if (SSL_session_reused(c->ssl))
    resumed_ops++;
  if (mode == RESUMED) {
    SSL_SESSION *s = SSL_get1_session(c->ssl);
    if (s && SSL_SESSION_is_resumable(s)) {
      SSL_SESSION_free(session);
      session = s;
    } else {
      SSL_SESSION_free(s);
    }
  }
  hang_up(c);
  dial(c);
}

static void drive(struct conn *c) {
  int r;
  for (;;) {
    switch (c->state) {
    case CONNECTING: {
      int err = 0;
      socklen_t len = sizeof err;
      if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
      if (err)
        fail(c, "connect", err);
      if (!(c->ssl = SSL_new(ctx)) || !SSL_set_fd(c->ssl, c->fd))
        fail_text(c, "SSL_new", "out of memory");
      if (ca_file && !X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), "127.0.0.1"))
        fail_text(c, "verify", "cannot set the expected IP address");
      if (mode == RESUMED && session && !SSL_set_session(c->ssl, session))
        fail_text(c, "SSL_set_session", "refused");
      SSL_set_connect_state(c->ssl);
      c->state = HANDSHAKE;
      break;
    }
    case HANDSHAKE:
      if ((r = SSL_do_handshake(c->ssl)) != 1) {
        wait_or_fail(c, r, "handshake");
        return;
      }
      c->up = 1;
      c->state = SENDING;
      break;
    case SENDING:
      /* Not partial-write mode: all of it, or retried with the same bytes. */
      if ((r = SSL_write(c->ssl, msg, (int)msg_size)) <= 0) {
        wait_or_fail(c, r, "write");
        return;
      }
      c->received = 0;
      c->state = RECEIVING;
      if (!SSL_has_pending(c->ssl)) {
        /* The echo is not here yet: a read now would only fail with
         * EAGAIN. Level-triggered epoll says when it comes. */
        watch(EPOLL_CTL_MOD, c, EPOLLIN);
        return;
      }
      break;
    case RECEIVING:
      if ((r = SSL_read(c->ssl, rbuf, sizeof rbuf)) <= 0) {
        wait_or_fail(c, r, "read");
        return;
      }
      c->received += (size_t)r;
      if (c->received > msg_size)
        fail_text(c, "read", "more bytes came back than were sent");
      if (c->received < msg_size) {
        if (!SSL_has_pending(c->ssl)) {
          watch(EPOLL_CTL_MOD, c, EPOLLIN);
          return;
        }
        break;
      }
      if (mode != ECHO) {
        handshake_done(c);
        return;
      }
      done_ops++;
      c->state = SENDING;
      break;
    }
  }
}

static void resolve(const char *addr) {
  char host[256];
  const char *colon = strrchr(addr, ':');
  struct addrinfo hints;
  size_t hlen;
  int err;
  if (!colon || colon == addr || (size_t)(colon - addr) >= sizeof host) {
    fprintf(stderr, "tls_loadgen: bad address %s\n", addr);
    exit(2);
  }
  hlen = (size_t)(colon - addr);
  memcpy(host, addr, hlen);
  host[hlen] = '\0';
  if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']') {
    memmove(host, host + 1, hlen - 2);
    host[hlen - 2] = '\0';
  }
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
  if ((err = getaddrinfo(host, colon + 1, &hints, &target)) != 0) {
    fprintf(stderr, "tls_loadgen: %s: %s\n", addr, gai_strerror(err));
    exit(2);
  }
}

/* Runs the loop until `deadline` (ns); with want_up, returns as soon as every
 * connection has made its handshake, and fails if that takes past it. */
static void run_until(uint64_t deadline, struct conn *conns, long nconns, int want_up) {
  struct epoll_event events[MAX_EVENTS];
  for (;;) {
    uint64_t now = now_ns();
    int i, n, timeout_ms;
    if (want_up) {
      long up = 0, k;
      for (k = 0; k < nconns; k++)
        up += conns[k].up;
      if (up == nconns)
        return;
    }
    if (now >= deadline) {
      if (want_up)
        fail_text(NULL, "handshake", "not every connection came up in 10 s");
      return;
    }
    timeout_ms = (int)((deadline - now) / 1000000u) + 1;
    n = epoll_wait(epfd, events, MAX_EVENTS, timeout_ms > 100 ? 100 : timeout_ms);
    if (n < 0 && errno != EINTR)
      fail(NULL, "epoll_wait", errno);
    for (i = 0; i < n; i++)
      drive(events[i].data.ptr);
  }
}

/* utime + stime of a process, all its threads, in clock ticks; -1 if gone. */
static long long cpu_ticks(long pid) {
  char path[64], text[1024], *p;
  unsigned long long ut, st;
  FILE *f;
  size_t n;
  snprintf(path, sizeof path, "/proc/%ld/stat", pid);
  if (!(f = fopen(path, "r")))
    return -1;
  n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[n] = '\0';
  /* Fields after the command name (which may hold spaces): state is the
   * 3rd field, utime the 14th, stime the 15th. */
  if (!(p = strrchr(text, ')')) ||
      sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
    return -1;
  return (long long)(ut + st);
}

/* This process's user + system time, µs. */
static double own_cpu_us(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 + (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static SSL_CTX *client_ctx(void) {
  SSL_CTX *c = SSL_CTX_new(TLS_client_method());
  if (!c || !SSL_CTX_set_min_proto_version(c, TLS1_3_VERSION) ||
      !SSL_CTX_set_max_proto_version(c, TLS1_3_VERSION) ||
      !SSL_CTX_set_ciphersuites(c, "TLS_AES_128_GCM_SHA256") || !SSL_CTX_set1_groups_list(c, "X25519")) {
    ERR_print_errors_fp(stderr);
    exit(1);
  }
  /* Sessions are kept by hand (resumed mode), never by OpenSSL's cache. */
  SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_read_ahead(c, 1);
  if (ca_file) {
    if (!SSL_CTX_load_verify_locations(c, ca_file, NULL)) {
      ERR_print_errors_fp(stderr);
      exit(1);
    }
    SSL_CTX_set_verify(c, SSL_VERIFY_PEER, NULL);
  }
  return c;
}

static int parse_num(const char *s, double *out) {
  char *end;
  errno = 0;
  *out = strtod(s, &end);
  return (errno || end == s || *end || *out < 0) ? -1 : 0;
}

static double wall_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  double conns_d = 1, size_d = 64, seconds = 3, warmup = 0.5, pid_d = 0;
  struct conn *conns;
  struct rlimit rl;
  uint64_t t0, t1, n0, n1, r0;
  long long c0 = -1, c1 = -1;
  double own0, own1, w0, w1;
  long nconns, i;
  double rate;
  char cpu[32] = "n/a";

  for (i = 1; i < argc; i++) {
    double *num = NULL;
    if (strcmp(argv[i], "--connect") == 0 && i + 1 < argc) {
      address = argv[++i];
      continue;
    }
    if (strcmp(argv[i], "--ca") == 0 && i + 1 < argc) {
      ca_file = argv[++i];
      continue;
    }
    if (strcmp(argv[i], "--mode") == 0 && i + 1 < argc) {
      const char *m = argv[++i];
      if (strcmp(m, "echo") == 0 || strcmp(m, "full") == 0 || strcmp(m, "resumed") == 0) {
        mode = m[0] == 'e' ? ECHO : m[0] == 'f' ? FULL : RESUMED;
        continue;
      }
    } else if (strcmp(argv[i], "--conns") == 0)
      num = &conns_d;
    else if (strcmp(argv[i], "--size") == 0)
      num = &size_d;
    else if (strcmp(argv[i], "--seconds") == 0)
      num = &seconds;
    else if (strcmp(argv[i], "--warmup") == 0)
      num = &warmup;
    else if (strcmp(argv[i], "--pid") == 0)
      num = &pid_d;
    if (!num || i + 1 >= argc || parse_num(argv[++i], num) < 0) {
      fprintf(stderr,
              "usage: %s [--mode echo|full|resumed] [--connect ADDR] [--conns N] [--size S] "
              "[--seconds T] [--warmup W] [--pid PID] [--ca FILE]\n",
              argv[0]);
      return 2;
    }
  }
  nconns = (long)conns_d;
  msg_size = (size_t)size_d;
  if (nconns < 1 || msg_size < 1 || msg_size > 1 << 20 || seconds <= 0) {
    fprintf(stderr, "tls_loadgen: --conns, --size (at most 1 MiB) and --seconds must be positive\n");
    return 2;
  }
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  signal(SIGPIPE, SIG_IGN);
  msg = malloc(msg_size);
  conns = calloc((size_t)nconns, sizeof *conns);
  if (!msg || !conns) {
    fprintf(stderr, "tls_loadgen: out of memory\n");
    return 1;
  }
  memset(msg, 'x', msg_size);
  ctx = client_ctx();
  if ((epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
    fail(NULL, "epoll_create1", errno);
  resolve(address);
  i = 0;
  if (mode == RESUMED) {
    /* One full handshake before the rest start, so that they all resume
     * from the first: a slow server would otherwise still be making the
     * first round of full handshakes when the window opens. */
    uint64_t give_up = now_ns() + 10000000000ull;
    dial(&conns[i++]);
    while (!session) {
      if (now_ns() >= give_up)
        fail_text(NULL, "handshake", "no session ticket from the server in 10 s");
      run_until(now_ns() + 10000000u, conns, 1, 0);
    }
  }
  for (; i < nconns; i++)
    dial(&conns[i]);

  if (mode == ECHO)
    run_until(now_ns() + 10000000000ull, conns, nconns, 1);
  run_until(now_ns() + (uint64_t)(warmup * 1e9), conns, nconns, 0);
  if (pid_d > 0)
    c0 = cpu_ticks((long)pid_d);
  own0 = own_cpu_us();
  w0 = wall_s();
  t0 = now_ns();
  n0 = done_ops;
  r0 = resumed_ops;
  run_until(t0 + (uint64_t)(seconds * 1e9), conns, nconns, 0);
  t1 = now_ns();
  w1 = wall_s();
  own1 = own_cpu_us();
  n1 = done_ops;
  if (pid_d > 0)
    c1 = cpu_ticks((long)pid_d);

  if (n1 == n0)
    fail_text(NULL, "run", "nothing completed in the measurement window");
  rate = (double)(n1 - n0) / ((double)(t1 - t0) / 1e9);
  if (c0 >= 0 && c1 >= c0)
    snprintf(cpu, sizeof cpu, "%.3f", (double)(c1 - c0) * 1e6 / (double)sysconf(_SC_CLK_TCK) / (double)(n1 - n0));
  printf("mode=%s conns=%ld size=%zu rate=%.0f ops=%llu server_cpu_us=%s client_cpu_us=%.3f resumed=%llu "
         "total_ops=%llu window=%.6f-%.6f\n",
         mode == ECHO ? "echo" : mode == FULL ? "full" : "resumed", nconns, msg_size, rate,
         (unsigned long long)(n1 - n0), cpu, (own1 - own0) / (double)(n1 - n0),
         (unsigned long long)(resumed_ops - r0), (unsigned long long)done_ops, w0, w1);
  if (mode == FULL && resumed_ops > 0) {
    fprintf(stderr, "tls_loadgen: %llu handshakes resumed in full mode\n", (unsigned long long)resumed_ops);
    return 1;
  }
  if (mode == RESUMED && (resumed_ops - r0) * 10 < (n1 - n0) * 9) {
    fprintf(stderr, "tls_loadgen: only %llu of %llu handshakes resumed\n",
            (unsigned long long)(resumed_ops - r0), (unsigned long long)(n1 - n0));
    return 1;
  }
  for (i = 0; i < nconns; i++)
    if (conns[i].ssl)
      hang_up(&conns[i]);
    else if (conns[i].fd >= 0)
      close(conns[i].fd);
  SSL_SESSION_free(session);
  SSL_CTX_free(ctx);
  freeaddrinfo(target);
  close(epfd);
  free(conns);
  free(msg);
  return 0;
}
