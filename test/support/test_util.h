/* Small helpers shared by the unit tests: a base on the backend the test run
 * asks for, a run that can never hang, a counting allocator and a count of
 * open descriptors.
 *
 * Include <stdarg.h>, <stddef.h>, <setjmp.h> and <cmocka.h> before this file
 * (cmocka needs them in that order). */
#ifndef RILL_TEST_UTIL_H
#define RILL_TEST_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "rill.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Creates a base with a NULL config, so the backend comes from RILL_BACKEND
 * (set by ctest for each backend). Fails the test on error. */
rill_base *tu_base_new(void);

/* A base asking for io_uring whatever RILL_BACKEND says; NULL when rill
 * fell back to another backend (a kernel or seccomp policy refusing
 * io_uring), for the test to skip. Fails the test on other errors. */
rill_base *tu_uring_base(void);

/* Frees the base and fails the test unless that returned 0. */
void tu_base_free(rill_base *base);

/* Runs the base in `mode` with a watchdog thread: after `limit_ms` the
 * watchdog calls rill_base_stop() and records a timeout; if the run still
 * has not returned two seconds later the process prints a message and exits
 * with status 1, so no test can hang. The watchdog blocks every signal.
 * Returns what rill_base_run() returned; tu_run_timed_out() tells whether the
 * watchdog had to intervene. */
int tu_run(rill_base *base, rill_run_mode mode, unsigned limit_ms);
int tu_run_timed_out(void);

/* tu_run() that fails the test if the watchdog fired. */
#define TU_RUN(base, mode, limit_ms)                      \
  tu_run_checked((base), (mode), (limit_ms), __FILE__, __LINE__)
int tu_run_checked(rill_base *base, rill_run_mode mode, unsigned limit_ms,
                   const char *file, int line);

/* CLOCK_MONOTONIC in milliseconds / nanoseconds. */
uint64_t tu_now_ms(void);
uint64_t tu_now_ns(void);

/* Sleeps `ms` milliseconds. */
void tu_sleep_ms(unsigned ms);

/* Descriptors open in this process (/proc/self/fd), -1 if unknown. */
int tu_count_fds(void);

/* Makes `fd` non-blocking and close-on-exec; fails the test on error. */
void tu_nonblock(int fd);

/* A socketpair(AF_UNIX, SOCK_STREAM) / pipe, non-blocking. */
void tu_socketpair(int sv[2]);
void tu_pipe(int fds[2]);

/* Writes / drains bytes; fails the test if the write is short. */
void tu_write_byte(int fd);
size_t tu_drain(int fd);

/* In a forked child, which must not use cmocka (a failed assertion would
 * go on running the parent's remaining tests there): on failure, exit with
 * a status naming the line (mod 256, never 0). */
#define CHILD_CHECK(cond)                                                       \
  do {                                                                          \
    if (!(cond)) {                                                              \
      fprintf(stderr, "child: check failed at line %d: %s\n", __LINE__, #cond); \
      _exit(1 + __LINE__ % 255);                                                \
    }                                                                           \
  } while (0)

/* A thread-safe counting allocator for rill_set_allocator(). Every block
 * carries a header, so a block from another allocator is detected. */
typedef struct tu_alloc_counts {
  uint64_t mallocs;  /* successful malloc, and realloc(NULL, n) */
  uint64_t reallocs; /* realloc of an existing block */
  uint64_t frees;    /* free of a block, and realloc(p, 0) */
  int64_t live;      /* blocks allocated and not freed */
  uint64_t foreign;  /* frees/reallocs of blocks this allocator did not make */
} tu_alloc_counts;

void *tu_malloc(size_t size);
void *tu_realloc(void *ptr, size_t size);
void tu_free(void *ptr);
void tu_alloc_get(tu_alloc_counts *out);
/* From now on malloc returns NULL after `n` more successes (-1: never). */
void tu_alloc_fail_after(int64_t n);
/* The realloc of an existing block (a buffer or table growing) after `n`
 * more successful ones fails, once; every other allocation goes on
 * succeeding (-1: none fails). So a test can fail each growth in turn and
 * see the code live on after it. tu_alloc_realloc_failures() counts the
 * failures made so far (0 then: the run grew nothing that often). */
void tu_alloc_fail_realloc_after(int64_t n);
uint64_t tu_alloc_realloc_failures(void);

/* A fixture pair for cmocka: records the number of open descriptors before
 * a test and checks that the test left none behind. */
int tu_setup_fds(void **state);
int tu_teardown_fds(void **state);

/* The kqueue backend on Linux runs over libkqueue, which differs from a
 * BSD kernel's kqueue in ways rill cannot hide (README.md, Backends):
 *  - on a socket error it reads SO_ERROR to fill the event's fflags, which
 *    clears it, so the socket's own error (a reset, a UDP socket's ICMP
 *    error) is gone by the time rill reads (a refused connect is not: the
 *    backend keeps fflags for the dial);
 *  - it closes a kqueue's descriptors asynchronously, after close().
 * tu_on_libkqueue() says whether this run is there. */
int tu_on_libkqueue(void);
/* Skips the calling cmocka test there, printing why; a no-op elsewhere. */
#define TU_SKIP_ON_LIBKQUEUE(why)                                              \
  do {                                                                         \
    if (tu_on_libkqueue()) {                                                   \
      printf("# skipped on kqueue over libkqueue: %s\n", (why));               \
      skip();                                                                  \
    }                                                                          \
  } while (0)
/* Fails the test unless the number of open descriptors is `want`. Over
 * libkqueue, waits up to 5 s for a freed base's descriptors to go, and
 * fails only on more than `want`. */
void tu_assert_fds(int want);
/* Over libkqueue, waits (up to 5 s) until no freed base's descriptors are
 * left to close, for a test that needs the numbers to stay put; a no-op
 * elsewhere. */
void tu_settle_fds(void);

#ifdef __cplusplus
}
#endif

#endif /* RILL_TEST_UTIL_H */
