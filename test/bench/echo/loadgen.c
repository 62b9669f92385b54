/* loadgen — the echo benchmark's client, the same for every server.
 *
 *   loadgen [--connect ADDR] [--conns N] [--size S] [--seconds T] [--warmup W]
 *   loadgen --idle [--connect ADDR] [--conns N] [--size S] [--seconds T]
 *   loadgen --round-trips R [--connect ADDR] [--conns N] [--size S]
 *
 * Opens N TCP connections to ADDR (default 127.0.0.1:7000). Each one plays
 * ping-pong: sends S bytes, waits until all S came back, sends again. After a
 * warm-up of W seconds (default 0.5) it counts round trips for T seconds
 * (default 3) and prints one line:
 *
 *   conns=N size=S rps=X
 *
 * X is completed round trips per second over the measurement window, summed
 * over all connections. On stderr it also says how many round trips the
 * whole run made, warm-up included ("loadgen: round_trips=R"), so a caller
 * can divide a server's CPU time by it. Its own raw, level-triggered epoll loop, one thread:
 * no event library, so every server meets exactly the same client. Any
 * connection failing (refused, reset, closed early, more bytes than sent)
 * makes it exit 1.
 *
 * With --idle it measures nothing itself: it opens the N connections (a few
 * hundred at a time, so no accept queue overflows), makes ONE round trip on
 * each, so the server has accepted it and is waiting for its next message,
 * prints "idle conns=N ready" and holds them, sending nothing, for T seconds
 * (default 3) or until killed. The caller reads the server's memory
 * meanwhile (run_echo.sh: idle memory per connection).
 *
 * With --round-trips R it makes exactly R round trips in all (no warm-up, no
 * time window: once R messages have been started, no connection starts
 * another), prints "round_trips=R", closes and exits: a fixed amount of work for a
 * profiler that counts instructions (callgrind.sh). It gives up after T
 * seconds (default 3, so give slow servers more). */
#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_EVENTS 512
#define READ_BUF 65536
#define IDLE_BATCH 200 /* connections opened at a time with --idle */

struct conn {
  int fd;
  int connected;
  size_t sent;     /* bytes of the current message written */
  size_t received; /* bytes of its echo read back */
};

static int epfd;
static size_t msg_size = 64;
static char *msg;
static char rbuf[READ_BUF];
static uint64_t round_trips; /* completed since start */
static int idle_mode;        /* one round trip per connection, then quiet */
static const char *address = "127.0.0.1:7000";
static uint64_t messages_left = UINT64_MAX; /* --round-trips: messages still to start */

/* Whether a connection may start its next message. */
static int start_message(void) {
  if (messages_left == 0)
    return 0;
  messages_left--;
  return 1;
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* "loadgen: read 127.0.0.1:7000 (fd 5): connection reset by peer" */
static void fail_text(const struct conn *c, const char *what, const char *text) {
  fprintf(stderr, "loadgen: %s %s (fd %d): %s\n", what, address, c ? c->fd : -1, text);
  exit(1);
}

static void fail(const struct conn *c, const char *what, int err) {
  fail_text(c, what, strerror(err));
}

static void watch(int op, struct conn *c, unsigned events) {
  struct epoll_event ev;
  memset(&ev, 0, sizeof ev);
  ev.events = events;
  ev.data.ptr = c;
  if (epoll_ctl(epfd, op, c->fd, &ev) < 0)
    fail(c, "epoll_ctl", errno);
}

/* Writes the rest of the current message; waits for EPOLLOUT if the kernel
 * does not take it all (only with large messages). */
static void send_rest(struct conn *c) {
  while (c->sent < msg_size) {
    ssize_t n = write(c->fd, msg + c->sent, msg_size - c->sent);
    if (n > 0) {
      c->sent += (size_t)n;
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      watch(EPOLL_CTL_MOD, c, EPOLLIN | EPOLLOUT);
      return;
    } else {
      fail(c, "write", errno);
    }
  }
}

static void on_event(struct conn *c, unsigned events) {
  if (!c->connected) {
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
      err = errno;
    if (err)
      fail(c, "connect", err);
    c->connected = 1;
    watch(EPOLL_CTL_MOD, c, EPOLLIN);
    if (start_message())
      send_rest(c);
    return;
  }
  if (events & EPOLLOUT) {
    if (c->sent == msg_size)
      watch(EPOLL_CTL_MOD, c, EPOLLIN);
    else
      send_rest(c);
  }
  if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
    ssize_t n = read(c->fd, rbuf, sizeof rbuf);
    if (n == 0)
      fail_text(c, "read", "the server closed the connection");
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return;
      fail(c, "read", errno);
    }
    c->received += (size_t)n;
    if (c->received > c->sent)
      fail_text(c, "read", "more bytes came back than were sent");
    if (c->received == msg_size) {
      round_trips++;
      c->sent = c->received = 0;
      /* idle: nothing more is sent, so any byte now is too many */
      if (!idle_mode && start_message())
        send_rest(c);
    }
  }
}

static int dial(struct conn *c, const struct addrinfo *ai) {
  int one = 1;
  c->fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c->fd < 0)
    return -errno;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(c->fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS)
    return -errno;
  watch(EPOLL_CTL_ADD, c, EPOLLOUT);
  return 0;
}

static struct addrinfo *resolve(const char *addr) {
  char host[256];
  const char *colon = strrchr(addr, ':');
  struct addrinfo hints, *ai;
  size_t hlen;
  int err;
  if (!colon || colon == addr || (size_t)(colon - addr) >= sizeof host) {
    fprintf(stderr, "loadgen: bad address %s\n", addr);
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
  hints.ai_flags = AI_NUMERICSERV;
  if ((err = getaddrinfo(host, colon + 1, &hints, &ai)) != 0) {
    fprintf(stderr, "loadgen: %s: %s\n", addr, gai_strerror(err));
    exit(2);
  }
  return ai;
}

/* Runs the loop until `deadline` (ns) or, with want_connected, until every
 * connection is up; with want_trips, until round_trips reaches it. */
static void run_until(uint64_t deadline, struct conn *conns, long nconns, int want_connected,
                      uint64_t want_trips) {
  struct epoll_event events[MAX_EVENTS];
  for (;;) {
    uint64_t now = now_ns();
    int i, n, timeout_ms;
    if (want_connected) {
      long up = 0, k;
      for (k = 0; k < nconns; k++)
        up += conns[k].connected;
      if (up == nconns)
        return;
    }
    if (want_trips && round_trips >= want_trips)
      return;
    if (now >= deadline) {
      if (want_connected || want_trips) {
        fprintf(stderr, "loadgen: not every connection to %s came up in time\n", address);
        exit(1);
      }
      return;
    }
    timeout_ms = (int)((deadline - now) / 1000000u) + 1;
    n = epoll_wait(epfd, events, MAX_EVENTS, timeout_ms > 100 ? 100 : timeout_ms);
    if (n < 0 && errno != EINTR)
      fail(NULL, "epoll_wait", errno);
    for (i = 0; i < n; i++)
      on_event(events[i].data.ptr, events[i].events);
  }
}

static int parse_num(const char *s, double *out) {
  char *end;
  errno = 0;
  *out = strtod(s, &end);
  return (errno || end == s || *end || *out < 0) ? -1 : 0;
}

int main(int argc, char **argv) {
  double conns_d = 1, size_d = 64, seconds = 3, warmup = 0.5, trips_d = 0;
  struct conn *conns;
  struct addrinfo *ai;
  struct rlimit rl;
  uint64_t t0, t1, n0, n1;
  long nconns, i;

  for (i = 1; i < argc; i++) {
    double *target = NULL;
    if (strcmp(argv[i], "--connect") == 0 && i + 1 < argc) {
      address = argv[++i];
      continue;
    }
    if (strcmp(argv[i], "--idle") == 0) {
      idle_mode = 1;
      continue;
    }
    if (strcmp(argv[i], "--conns") == 0)
      target = &conns_d;
    else if (strcmp(argv[i], "--size") == 0)
      target = &size_d;
    else if (strcmp(argv[i], "--seconds") == 0)
      target = &seconds;
    else if (strcmp(argv[i], "--warmup") == 0)
      target = &warmup;
    else if (strcmp(argv[i], "--round-trips") == 0)
      target = &trips_d;
    if (!target || i + 1 >= argc || parse_num(argv[++i], target) < 0) {
      fprintf(stderr,
              "usage: %s [--idle | --round-trips R] [--connect ADDR] [--conns N] [--size S] "
              "[--seconds T] [--warmup W]\n",
              argv[0]);
      return 2;
    }
  }
  nconns = (long)conns_d;
  msg_size = (size_t)size_d;
  if (nconns < 1 || msg_size < 1 || seconds <= 0) {
    fprintf(stderr, "loadgen: --conns, --size and --seconds must be positive\n");
    return 2;
  }
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  if ((rlim_t)nconns + 16 > rl.rlim_cur) {
    fprintf(stderr, "loadgen: %ld connections need a higher descriptor limit (ulimit -n is %lu)\n",
            nconns, (unsigned long)rl.rlim_cur);
    return 1;
  }
  signal(SIGPIPE, SIG_IGN);
  msg = malloc(msg_size);
  conns = calloc((size_t)nconns, sizeof *conns);
  if (!msg || !conns) {
    fprintf(stderr, "loadgen: out of memory\n");
    return 1;
  }
  memset(msg, 'x', msg_size);
  if (trips_d >= 1)
    messages_left = (uint64_t)trips_d;
  if ((epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
    fail(NULL, "epoll_create1", errno);
  ai = resolve(address);
  if (idle_mode) {
    long batch;
    for (i = 0; i < nconns; i += batch) {
      long k;
      batch = nconns - i < IDLE_BATCH ? nconns - i : IDLE_BATCH;
      for (k = i; k < i + batch; k++) {
        int err = dial(&conns[k], ai);
        if (err < 0)
          fail(&conns[k], "dial", -err);
      }
      run_until(now_ns() + 30000000000ull, conns, nconns, 0, (uint64_t)(i + batch));
    }
    freeaddrinfo(ai);
    printf("idle conns=%ld ready\n", nconns);
    fflush(stdout);
    /* Held, quiet; a byte from the server now fails the run. */
    run_until(now_ns() + (uint64_t)(seconds * 1e9), conns, nconns, 0, 0);
    return 0;
  }
  for (i = 0; i < nconns; i++) {
    int err = dial(&conns[i], ai);
    if (err < 0)
      fail(&conns[i], "dial", -err);
  }
  freeaddrinfo(ai);

  if (trips_d >= 1) {
    run_until(now_ns() + (uint64_t)(seconds * 1e9), conns, nconns, 0, (uint64_t)trips_d);
    printf("round_trips=%llu\n", (unsigned long long)round_trips);
    for (i = 0; i < nconns; i++)
      close(conns[i].fd);
    close(epfd);
    free(conns);
    free(msg);
    return 0;
  }

  /* Everyone connected (and already exchanging), then warm up, then count. */
  run_until(now_ns() + 10000000000ull, conns, nconns, 1, 0);
  run_until(now_ns() + (uint64_t)(warmup * 1e9), conns, nconns, 0, 0);
  t0 = now_ns();
  n0 = round_trips;
  run_until(t0 + (uint64_t)(seconds * 1e9), conns, nconns, 0, 0);
  t1 = now_ns();
  n1 = round_trips;

  printf("conns=%ld size=%zu rps=%.0f\n", nconns, msg_size,
         (double)(n1 - n0) / ((double)(t1 - t0) / 1e9));
  fprintf(stderr, "loadgen: round_trips=%llu\n", (unsigned long long)round_trips);
  for (i = 0; i < nconns; i++)
    close(conns[i].fd);
  close(epfd);
  free(conns);
  free(msg);
  return 0;
}
