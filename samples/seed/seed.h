/* seed.h — what every seed experiment shares: the command line, the sleeps,
 * the printing, and starting the main fiber.
 *
 * Each experiment is a small program written twice, here with rill's
 * blocking facade and in samples/go/seed/<name>/main.go with Go's net
 * package, after the walk-through in seed 001 (Go TCP behaviour). Both take
 *
 *   <name> [--addr HOST:PORT] [--short]
 *
 * --short turns the seed's sleeps of seconds into tens or hundreds of
 * milliseconds, so that samples/seed/compare.sh runs everything in seconds.
 *
 * The output is meant to be compared line by line with the Go version's:
 * no timestamps, events in order, and nothing that differs by nature
 * (ephemeral ports are left to compare.sh to normalise; byte counts that
 * depend on kernel buffer sizes are printed as ">0" or checked, not shown). */
#ifndef SEED_H
#define SEED_H

#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rill.h>

struct seed_opts {
  const char *addr;
  int short_mode;
  int nargs;   /* positional arguments, after the flags */
  char **args;
};

static struct seed_opts seed;

/* Parses --addr ADDR (or --addr=ADDR), --short, and positional arguments. */
static inline void seed_parse(int argc, char **argv, const char *default_addr) {
  int i;
  seed.addr = default_addr;
  seed.args = argv + argc;
  for (i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (a[0] == '-' && a[1] == '-')
      a++; /* Go's flag package takes -x and --x alike */
    if (strcmp(a, "-addr") == 0 && i + 1 < argc) {
      seed.addr = argv[++i];
    } else if (strncmp(a, "-addr=", 6) == 0) {
      seed.addr = a + 6;
    } else if (strcmp(a, "-short") == 0) {
      seed.short_mode = 1;
    } else if (a[0] != '-') {
      seed.args = argv + i;
      seed.nargs = argc - i;
      break;
    } else {
      fprintf(stderr, "usage: %s [--addr HOST:PORT] [--short] [args...]\n", argv[0]);
      exit(2);
    }
  }
}

/* The seed's duration, or the short one under --short. */
static inline uint64_t seed_ms(uint64_t long_ms, uint64_t short_ms) {
  return seed.short_mode ? short_ms : long_ms;
}

/* Prints one event line, at once (compare.sh reads while we run). */
static inline void say(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  putchar('\n');
  fflush(stdout);
}

/* Wall-clock milliseconds, for "did that call wait?" checks. */
static inline uint64_t seed_clock_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Go's err.Error() for an error met on `conn`: io.EOF is bare "EOF" in Go
 * (conn.Read does not wrap it), everything else an OpError. */
static inline const char *seed_conn_error(const rill_net_conn *conn, const char *op, int err) {
  static char buf[256];
  if (err == RILL_EOF)
    return rill_strerror(err);
  rill_net_format_error(conn, op, err, buf, sizeof buf);
  return buf;
}

/* Listens on seed.addr, printing Go's error on failure. NULL on failure. */
static inline rill_net_listener *seed_listen(const rill_socket_config *options) {
  rill_net_listener *l = NULL;
  int err = rill_net_listen("tcp", seed.addr, options, &l);
  if (err < 0) {
    char msg[256];
    rill_format_op_error("listen", "tcp", NULL, seed.addr, NULL, err, msg, sizeof msg);
    say("listen error: %s", msg);
    return NULL;
  }
  say("listen ok");
  return l;
}

/* Accepts one connection (the experiments serve exactly one). */
static inline rill_net_conn *seed_accept_one(rill_net_listener *l) {
  rill_net_conn *c = NULL;
  int err = rill_net_accept(l, &c);
  if (err < 0) {
    say("accept error: %s", rill_strerror(err));
    return NULL;
  }
  say("accept a new connection");
  return c;
}

/* Dials seed.addr; prints "dial ok" or Go's error. NULL on failure. */
static inline rill_net_conn *seed_dial(const rill_socket_config *options) {
  rill_net_conn *c = NULL;
  char msg[256];
  if (rill_net_dial("tcp", seed.addr, options, &c, msg, sizeof msg) < 0) {
    say("dial error: %s", msg);
    return NULL;
  }
  say("dial ok");
  return c;
}

/* The establish_server2/client2 pair's control socket, in Linux's abstract
 * namespace (no file to clean up), named after the experiment's address so
 * that two runs on different ports do not meet. */
static inline void seed_control_address(char *buf, size_t size) {
  snprintf(buf, size, "@rill-seed-establish2-%s", seed.addr);
}

static int seed_status;

/* Runs `fn` as the main fiber of a fresh base, until every fiber is done;
 * the exit status is seed_status. */
static inline int seed_run(rill_fiber_fn fn) {
  rill_base *base;
  int err = rill_base_new(NULL, &base);
  if (err < 0 || (err = rill_go(base, fn, NULL)) < 0) {
    fprintf(stderr, "rill: %s\n", rill_strerror(err));
    return 1;
  }
  rill_base_run(base, RILL_RUN_DEFAULT);
  if ((err = rill_base_free(base)) < 0) {
    fprintf(stderr, "rill_base_free: %s\n", rill_strerror(err));
    rill_base_dump(base, stderr);
    return 1;
  }
  return seed_status;
}

#endif /* SEED_H */
