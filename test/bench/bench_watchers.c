/* bench_watchers — many registered descriptors, few busy ones, rill against
 * libev (the method of libev's classic benchmark; this is an independent
 * implementation).
 *
 *   bench_watchers --impl rill|libev [--n N] [--active A] [--inflight F]
 *                  [--events M] [--timeouts]
 *
 * N descriptors are watched for reading. A of them, spread evenly over the
 * N, form the active ring: the read ends of A pipes (pipes are the cheapest
 * descriptors to write and read, so the loop's own cost weighs more). The
 * other N - A are registered but never become readable: both ends of
 * socketpairs nobody writes to, one descriptor per watcher, so N = 10000
 * needs about 10100 descriptors instead of the 20000 that N pipes would.
 * F bytes are written to F pipes spread over the ring to start. Each read
 * callback
 *   - reads its one byte,
 *   - re-arms its watcher with stop + start (the interest does not change, so
 *     a loop that batches interest changes makes no system call for it),
 *   - with --timeouts, restarts its own 10 s timer (every watcher, idle ones
 *     included, has one, so the timer heap holds N entries;
 *     rill_timer_start() restarts an active timer, libev uses
 *     ev_timer_again(), its cheapest restart),
 *   - and, while bytes remain to be sent, writes one byte to the next pipe
 *     of the ring.
 * Exactly M callbacks run in total (F initial bytes plus M - F forwarded),
 * after which the callback stops the loop. Only the run is timed; setup
 * (descriptors, watchers, timers) is reported apart.
 *
 * Reported: us_per_event = run CPU time / callbacks and us_per_iter = run
 * CPU time / loop iterations (each library's own iteration counter); the
 * run is busy and single-threaded, so CPU time equals wall time on an idle
 * core and, unlike wall time, does not count other processes' time slices.
 * wall_us_per_event and wall_us_per_iter are the same on wall time. The program exits with status 1 if the callback count is wrong
 * or an idle watcher ever fired. If RLIMIT_NOFILE (raised to its hard limit)
 * cannot hold N + A descriptors, it prints a line with skipped= and exits 0.
 *
 * Prints one line of key=value pairs on stdout. */
#define _GNU_SOURCE 1

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>

#include "rill.h"

/* ---- measuring ---------------------------------------------------------- */

static double cpu_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static double wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void die(const char *what, int err) {
  if (err < 0)
    fprintf(stderr, "bench_watchers: %s: %s\n", what, rill_strerror(err));
  else
    fprintf(stderr, "bench_watchers: %s: %s\n", what, strerror(errno));
  exit(2);
}

/* ---- the shared model ---------------------------------------------------- */

#define TIMEOUT_MS 10000

struct watcher {
  ev_io eio;    /* libev: first member, so the callback can cast back */
  ev_timer etm; /* libev timeout */
  rill_io *rio;
  rill_timer *rtm;
  int fd;
  int peer;      /* active: the write end of fd's pipe */
  int next_peer; /* active: the write end of the next pipe; idle: -1 */
};

static size_t n_watchers = 1000;
static size_t n_active = 100;
static size_t n_inflight = 100;
static uint64_t n_events = 200000;
static int with_timeouts;

static struct watcher *watchers;
static uint64_t callbacks;
static uint64_t to_send; /* bytes still to forward */
static uint64_t idle_fired;
static uint64_t bad_reads;
static int done;

static int nofile_ok(size_t need) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) < 0) return 0;
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
  }
  return rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= need;
}

static int is_active(size_t i) {
  /* active k is watcher k * N / A, for k in [0, A) */
  size_t k = (i * n_active + n_active - 1) / n_watchers; /* ceil(i * A / N) */
  return k < n_active && k * n_watchers / n_active == i;
}

static size_t active_index(size_t k) { return k * n_watchers / n_active; }

static int spare_fd = -1; /* the unwatched end of a socketpair, if N - A is odd */

static void make_fds(void) {
  watchers = calloc(n_watchers, sizeof *watchers);
  if (!watchers) die("calloc", 0);
  int pending = -1; /* second end of the last socketpair, not yet given out */
  for (size_t i = 0; i < n_watchers; i++) {
    struct watcher *w = &watchers[i];
    int sv[2];
    w->next_peer = -1;
    if (is_active(i)) {
      if (pipe2(sv, O_NONBLOCK | O_CLOEXEC) < 0) die("pipe2", 0);
      w->fd = sv[0];
      w->peer = sv[1];
    } else if (pending >= 0) {
      w->fd = pending;
      pending = -1;
    } else {
      if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
        die("socketpair", 0);
      w->fd = sv[0];
      pending = sv[1];
    }
  }
  spare_fd = pending;
  /* The ring: active k forwards to active k + 1. */
  for (size_t k = 0; k < n_active; k++)
    watchers[active_index(k)].next_peer = watchers[active_index((k + 1) % n_active)].peer;
}

static void close_fds(void) {
  for (size_t i = 0; i < n_watchers; i++) {
    close(watchers[i].fd);
    if (watchers[i].next_peer >= 0) close(watchers[i].peer);
  }
  if (spare_fd >= 0) close(spare_fd);
  free(watchers);
}

static void send_byte(int fd) {
  char c = 'x';
  while (write(fd, &c, 1) != 1) {
    if (errno != EINTR) die("write", 0);
  }
}

static void start_chain(void) {
  for (size_t j = 0; j < n_inflight; j++) {
    size_t k = j * n_active / n_inflight;
    send_byte(watchers[active_index(k)].peer);
  }
  to_send = n_events - n_inflight;
}

/* The part of a callback that does not depend on the library. Returns 1 if
 * the event was real (a byte was read). */
static int consume(struct watcher *w) {
  char c;
  ssize_t n = read(w->fd, &c, 1);
  if (w->next_peer < 0) {
    idle_fired++;
    return 0;
  }
  if (n != 1) {
    bad_reads++;
    return 0;
  }
  callbacks++;
  return 1;
}

static void forward(struct watcher *w) {
  if (to_send > 0) {
    to_send--;
    send_byte(w->next_peer);
  }
  if (callbacks >= n_events) done = 1;
}

struct result {
  const char *backend;
  double setup_ms, run_wall_ms, run_cpu_ms;
  uint64_t iterations;
};

/* ---- rill --------------------------------------------------------------- */

static rill_base *rbase;

static void rill_timeout(rill_timer *t, void *arg) {
  (void)t;
  (void)arg;
}

static void rill_read(rill_io *io, int fd, unsigned events, void *arg) {
  struct watcher *w = arg;
  (void)fd;
  (void)events;
  if (!consume(w)) return;
  rill_io_stop(io);
  rill_io_start(io, RILL_READ);
  if (with_timeouts) rill_timer_start(w->rtm, TIMEOUT_MS * RILL_MSEC, 0);
  forward(w);
  if (done) rill_base_stop(rbase);
}

static void run_rill(struct result *r) {
  int err = rill_base_new(NULL, &rbase);
  if (err < 0) die("rill_base_new", err);
  r->backend = rill_base_backend(rbase);

  double s0 = wall_ms();
  make_fds();
  for (size_t i = 0; i < n_watchers; i++) {
    struct watcher *w = &watchers[i];
    err = rill_io_new(rbase, w->fd, rill_read, w, &w->rio);
    if (err < 0) die("rill_io_new", err);
    err = rill_io_start(w->rio, RILL_READ);
    if (err < 0) die("rill_io_start", err);
    if (with_timeouts) {
      err = rill_timer_new(rbase, rill_timeout, w, &w->rtm);
      if (err < 0) die("rill_timer_new", err);
      err = rill_timer_start(w->rtm, TIMEOUT_MS * RILL_MSEC, 0);
      if (err < 0) die("rill_timer_start", err);
    }
  }
  /* One non-blocking iteration pushes the registrations to the kernel, so
   * the timed run starts from a settled loop. */
  err = rill_base_run(rbase, RILL_RUN_NOWAIT);
  if (err < 0) die("rill_base_run", err);
  r->setup_ms = wall_ms() - s0;

  rill_base_stats st0, st1;
  rill_base_stats_get(rbase, &st0);
  start_chain();
  double c0 = cpu_ms(), w0 = wall_ms();
  err = rill_base_run(rbase, RILL_RUN_DEFAULT);
  if (err < 0) die("rill_base_run", err);
  r->run_wall_ms = wall_ms() - w0;
  r->run_cpu_ms = cpu_ms() - c0;
  rill_base_stats_get(rbase, &st1);
  r->iterations = st1.iterations - st0.iterations;

  for (size_t i = 0; i < n_watchers; i++) {
    rill_io_free(watchers[i].rio);
    rill_timer_free(watchers[i].rtm);
  }
  err = rill_base_free(rbase);
  if (err < 0) die("rill_base_free", err);
  close_fds();
}

/* ---- libev -------------------------------------------------------------- */

static void ev_timeout(struct ev_loop *loop, ev_timer *t, int revents) {
  (void)loop;
  (void)t;
  (void)revents;
}

static void ev_read(struct ev_loop *loop, ev_io *io, int revents) {
  struct watcher *w = (struct watcher *)io;
  (void)revents;
  if (!consume(w)) return;
  ev_io_stop(loop, io);
  ev_io_start(loop, io);
  if (with_timeouts) ev_timer_again(loop, &w->etm);
  forward(w);
  if (done) ev_break(loop, EVBREAK_ALL);
}

static void run_libev(struct result *r) {
  struct ev_loop *loop = ev_loop_new(EVBACKEND_EPOLL | EVFLAG_NOENV);
  if (!loop) die("ev_loop_new", 0);
  r->backend = "epoll";

  double s0 = wall_ms();
  make_fds();
  for (size_t i = 0; i < n_watchers; i++) {
    struct watcher *w = &watchers[i];
    ev_io_init(&w->eio, ev_read, w->fd, EV_READ);
    ev_io_start(loop, &w->eio);
    if (with_timeouts) {
      ev_timer_init(&w->etm, ev_timeout, 0., TIMEOUT_MS / 1e3);
      ev_timer_again(loop, &w->etm);
    }
  }
  ev_run(loop, EVRUN_NOWAIT);
  r->setup_ms = wall_ms() - s0;

  unsigned it0 = ev_iteration(loop);
  start_chain();
  double c0 = cpu_ms(), w0 = wall_ms();
  ev_run(loop, 0);
  r->run_wall_ms = wall_ms() - w0;
  r->run_cpu_ms = cpu_ms() - c0;
  r->iterations = ev_iteration(loop) - it0;

  for (size_t i = 0; i < n_watchers; i++) {
    ev_io_stop(loop, &watchers[i].eio);
    ev_timer_stop(loop, &watchers[i].etm);
  }
  ev_loop_destroy(loop);
  close_fds();
}

/* ---- main --------------------------------------------------------------- */

/* Microseconds per unit, from milliseconds. */
static double per(double ms, uint64_t units) { return units ? ms * 1e3 / (double)units : 0.0; }

static void usage(void) {
  fprintf(stderr,
          "usage: bench_watchers --impl rill|libev [--n N] [--active A] [--inflight F]\n"
          "                      [--events M] [--timeouts]\n");
  exit(2);
}

int main(int argc, char **argv) {
  const char *impl = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--impl") && i + 1 < argc)
      impl = argv[++i];
    else if (!strcmp(argv[i], "--n") && i + 1 < argc)
      n_watchers = strtoull(argv[++i], NULL, 10);
    else if (!strcmp(argv[i], "--active") && i + 1 < argc)
      n_active = strtoull(argv[++i], NULL, 10);
    else if (!strcmp(argv[i], "--inflight") && i + 1 < argc)
      n_inflight = strtoull(argv[++i], NULL, 10);
    else if (!strcmp(argv[i], "--events") && i + 1 < argc)
      n_events = strtoull(argv[++i], NULL, 10);
    else if (!strcmp(argv[i], "--timeouts"))
      with_timeouts = 1;
    else
      usage();
  }
  if (!impl || (strcmp(impl, "rill") && strcmp(impl, "libev"))) usage();
  if (n_watchers == 0 || n_active == 0 || n_active > n_watchers ||
      n_inflight == 0 || n_inflight > n_active || n_events < n_inflight) {
    fprintf(stderr, "bench_watchers: need 0 < F <= A <= N, M >= F\n");
    return 2;
  }

  const char *variant = with_timeouts ? "timeouts" : "plain";
  if (!nofile_ok(n_watchers + n_active + 64)) {
    printf("bench=watchers impl=%s n=%zu variant=%s skipped=RLIMIT_NOFILE_too_low\n", impl,
           n_watchers, variant);
    fprintf(stderr, "bench_watchers: skipping N=%zu: RLIMIT_NOFILE cannot reach %zu\n",
            n_watchers, n_watchers + n_active + 64);
    return 0;
  }
  signal(SIGPIPE, SIG_IGN);
  alarm(300); /* a lost byte would otherwise hang the run forever */

  struct result r;
  memset(&r, 0, sizeof r);
  if (!strcmp(impl, "rill"))
    run_rill(&r);
  else
    run_libev(&r);

  printf("bench=watchers impl=%s backend=%s n=%zu active=%zu inflight=%zu variant=%s"
         " events=%llu iterations=%llu setup_ms=%.1f run_wall_ms=%.1f run_cpu_ms=%.1f"
         " us_per_event=%.4f us_per_iter=%.3f wall_us_per_event=%.4f wall_us_per_iter=%.3f\n",
         impl, r.backend, n_watchers, n_active, n_inflight, variant,
         (unsigned long long)callbacks, (unsigned long long)r.iterations, r.setup_ms,
         r.run_wall_ms, r.run_cpu_ms, per(r.run_cpu_ms, callbacks),
         per(r.run_cpu_ms, r.iterations), per(r.run_wall_ms, callbacks),
         per(r.run_wall_ms, r.iterations));
  int rc = 0;
  if (callbacks != n_events) {
    fprintf(stderr, "bench_watchers: %s ran %llu callbacks, expected %llu\n", impl,
            (unsigned long long)callbacks, (unsigned long long)n_events);
    rc = 1;
  }
  if (idle_fired || bad_reads) {
    fprintf(stderr, "bench_watchers: %s: %llu idle watcher callbacks, %llu empty reads\n",
            impl, (unsigned long long)idle_fired, (unsigned long long)bad_reads);
    rc = 1;
  }
  return rc;
}
