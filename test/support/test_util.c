#define _GNU_SOURCE 1

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "test_util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

rill_base *tu_base_new(void) {
  rill_base *base = NULL;
  int rc = rill_base_new(NULL, &base);
  if (rc != 0) {
    fprintf(stderr, "rill_base_new(NULL) failed: %d (%s), RILL_BACKEND=%s\n", rc,
            rill_strerror(rc), getenv("RILL_BACKEND") ? getenv("RILL_BACKEND") : "(unset)");
  }
  assert_int_equal(rc, 0);
  assert_non_null(base);
  return base;
}

rill_base *tu_uring_base(void) {
  rill_base_config cfg;
  rill_base *base = NULL;
  memset(&cfg, 0, sizeof cfg);
  cfg.backend = "io_uring";
  assert_int_equal(rill_base_new(&cfg, &base), 0);
  if (strcmp(rill_base_backend(base), "io_uring") != 0) {
    tu_base_free(base);
    return NULL;
  }
  return base;
}

void tu_base_free(rill_base *base) {
  int rc = rill_base_free(base);
  if (rc != 0) {
    fprintf(stderr, "rill_base_free: %d; live handles:\n", rc);
    rill_base_dump(base, stderr);
  }
  assert_int_equal(rc, 0);
}

/* ---- clock ---------------------------------------------------------- */

uint64_t tu_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t tu_now_ms(void) { return tu_now_ns() / 1000000u; }

void tu_sleep_ms(unsigned ms) {
  struct timespec ts;
  ts.tv_sec = ms / 1000;
  ts.tv_nsec = (long)(ms % 1000) * 1000000L;
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/* ---- watchdog run --------------------------------------------------- */

struct watchdog {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  rill_base *base;
  unsigned limit_ms;
  int done;
  int fired;
};

static int g_timed_out;

static void deadline_in(struct timespec *ts, unsigned ms) {
  clock_gettime(CLOCK_MONOTONIC, ts);
  ts->tv_sec += ms / 1000;
  ts->tv_nsec += (long)(ms % 1000) * 1000000L;
  if (ts->tv_nsec >= 1000000000L) {
    ts->tv_sec += 1;
    ts->tv_nsec -= 1000000000L;
  }
}

/* Waits until `done` or the deadline; returns 1 on timeout. Called locked. */
static int wait_done(struct watchdog *w, unsigned ms) {
  struct timespec deadline;
  deadline_in(&deadline, ms);
  while (!w->done) {
    int rc = pthread_cond_timedwait(&w->cv, &w->mu, &deadline);
    if (rc == ETIMEDOUT) return !w->done;
  }
  return 0;
}

static void *watchdog_main(void *p) {
  struct watchdog *w = (struct watchdog *)p;
  pthread_mutex_lock(&w->mu);
  if (wait_done(w, w->limit_ms)) {
    /* The base cannot be freed while we hold the lock: its owner is still
     * inside rill_base_run() or waiting for this lock. */
    w->fired = 1;
    rill_base_stop(w->base);
    if (wait_done(w, 2000)) {
      fprintf(stderr,
              "test_util: rill_base_run() did not return %u ms after its limit "
              "and 2 s after rill_base_stop(); aborting the test program\n",
              w->limit_ms);
      fflush(stderr);
      _exit(1);
    }
  }
  pthread_mutex_unlock(&w->mu);
  return NULL;
}

int tu_run(rill_base *base, rill_run_mode mode, unsigned limit_ms) {
  struct watchdog w;
  pthread_t thread;
  sigset_t all, old;
  int rc;

  memset(&w, 0, sizeof w);
  pthread_mutex_init(&w.mu, NULL);
  {
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&w.cv, &attr);
    pthread_condattr_destroy(&attr);
  }
  w.base = base;
  w.limit_ms = limit_ms;

  /* The watchdog must never take a signal meant for a signal watcher. */
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  rc = pthread_create(&thread, NULL, watchdog_main, &w);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  assert_int_equal(rc, 0);

  rc = rill_base_run(base, mode);

  pthread_mutex_lock(&w.mu);
  w.done = 1;
  pthread_cond_signal(&w.cv);
  pthread_mutex_unlock(&w.mu);
  pthread_join(thread, NULL);
  g_timed_out = w.fired;
  pthread_cond_destroy(&w.cv);
  pthread_mutex_destroy(&w.mu);
  return rc;
}

int tu_run_timed_out(void) { return g_timed_out; }

int tu_run_checked(rill_base *base, rill_run_mode mode, unsigned limit_ms, const char *file,
                   int line) {
  int rc = tu_run(base, mode, limit_ms);
  if (g_timed_out) {
    fail_msg("%s:%d: rill_base_run(mode %d) still running after %u ms", file, line, (int)mode,
             limit_ms);
  }
  return rc;
}

/* ---- descriptors ---------------------------------------------------- */

static void libkqueue_warm_up(void);

int tu_count_fds(void) {
  DIR *d;
  struct dirent *e;
  int n = 0;
  libkqueue_warm_up();
  d = opendir("/proc/self/fd");
  if (!d) return -1;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] != '.') n++;
  }
  closedir(d);
  return n - 1; /* the directory's own descriptor */
}

void tu_nonblock(int fd) {
  int fl = fcntl(fd, F_GETFL);
  assert_true(fl >= 0);
  assert_int_equal(fcntl(fd, F_SETFL, fl | O_NONBLOCK), 0);
  assert_int_equal(fcntl(fd, F_SETFD, FD_CLOEXEC), 0);
}

void tu_socketpair(int sv[2]) {
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  tu_nonblock(sv[0]);
  tu_nonblock(sv[1]);
}

void tu_pipe(int fds[2]) {
  assert_int_equal(pipe(fds), 0);
  tu_nonblock(fds[0]);
  tu_nonblock(fds[1]);
}

void tu_write_byte(int fd) {
  char c = 'x';
  ssize_t n;
  do {
    n = write(fd, &c, 1);
  } while (n < 0 && errno == EINTR);
  assert_int_equal(n, 1);
}

size_t tu_drain(int fd) {
  char buf[4096];
  size_t total = 0;
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0) {
      total += (size_t)n;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    break;
  }
  return total;
}

/* ---- counting allocator --------------------------------------------- */

#define TU_MAGIC 0x52494c4c414c4c43ull /* "RILLALLC" */
#define TU_DEAD 0x4445414444454144ull

/* 16 bytes keep the user block aligned for any type malloc serves. */
typedef struct tu_hdr {
  uint64_t magic;
  uint64_t size;
} tu_hdr;

static uint64_t g_mallocs, g_reallocs, g_frees, g_foreign;
static int64_t g_live;
static int64_t g_fail_after = -1;
static int64_t g_fail_growth_after = -1;
static uint64_t g_growth_failures;

static int should_fail(void) {
  int64_t left = __atomic_load_n(&g_fail_after, __ATOMIC_SEQ_CST);
  while (left >= 0) {
    if (left == 0) return 1;
    if (__atomic_compare_exchange_n(&g_fail_after, &left, left - 1, 0, __ATOMIC_SEQ_CST,
                                    __ATOMIC_SEQ_CST))
      return 0;
  }
  return 0;
}

void tu_alloc_fail_after(int64_t n) { __atomic_store_n(&g_fail_after, n, __ATOMIC_SEQ_CST); }

/* One failure, then -1 again: the code must live on after it. */
static int should_fail_growth(void) {
  int64_t left = __atomic_load_n(&g_fail_growth_after, __ATOMIC_SEQ_CST);
  while (left >= 0) {
    if (__atomic_compare_exchange_n(&g_fail_growth_after, &left, left - 1, 0, __ATOMIC_SEQ_CST,
                                    __ATOMIC_SEQ_CST)) {
      if (left > 0)
        return 0;
      __atomic_add_fetch(&g_growth_failures, 1, __ATOMIC_SEQ_CST);
      return 1;
    }
  }
  return 0;
}

void tu_alloc_fail_realloc_after(int64_t n) {
  __atomic_store_n(&g_fail_growth_after, n, __ATOMIC_SEQ_CST);
}

uint64_t tu_alloc_realloc_failures(void) {
  return __atomic_load_n(&g_growth_failures, __ATOMIC_SEQ_CST);
}

void *tu_malloc(size_t size) {
  tu_hdr *h;
  if (should_fail()) return NULL;
  h = (tu_hdr *)malloc(sizeof(tu_hdr) + size);
  if (!h) return NULL;
  h->magic = TU_MAGIC;
  h->size = size;
  __atomic_add_fetch(&g_mallocs, 1, __ATOMIC_SEQ_CST);
  __atomic_add_fetch(&g_live, 1, __ATOMIC_SEQ_CST);
  return h + 1;
}

static tu_hdr *header_of(void *ptr) {
  tu_hdr *h = (tu_hdr *)ptr - 1;
  if (h->magic != TU_MAGIC) {
    __atomic_add_fetch(&g_foreign, 1, __ATOMIC_SEQ_CST);
    fprintf(stderr, "test_util: rill handed the counting allocator a block it did not make\n");
    return NULL;
  }
  return h;
}

void tu_free(void *ptr) {
  tu_hdr *h;
  if (!ptr) return;
  h = header_of(ptr);
  if (!h) return; /* leak it rather than corrupt the heap */
  h->magic = TU_DEAD;
  __atomic_add_fetch(&g_frees, 1, __ATOMIC_SEQ_CST);
  __atomic_sub_fetch(&g_live, 1, __ATOMIC_SEQ_CST);
  free(h);
}

void *tu_realloc(void *ptr, size_t size) {
  tu_hdr *h, *n;
  if (!ptr) return tu_malloc(size);
  if (size == 0) {
    tu_free(ptr);
    return NULL;
  }
  h = header_of(ptr);
  if (!h) return NULL;
  if (should_fail() || should_fail_growth()) return NULL;
  n = (tu_hdr *)realloc(h, sizeof(tu_hdr) + size);
  if (!n) return NULL;
  n->size = size;
  __atomic_add_fetch(&g_reallocs, 1, __ATOMIC_SEQ_CST);
  return n + 1;
}

void tu_alloc_get(tu_alloc_counts *out) {
  out->mallocs = __atomic_load_n(&g_mallocs, __ATOMIC_SEQ_CST);
  out->reallocs = __atomic_load_n(&g_reallocs, __ATOMIC_SEQ_CST);
  out->frees = __atomic_load_n(&g_frees, __ATOMIC_SEQ_CST);
  out->live = __atomic_load_n(&g_live, __ATOMIC_SEQ_CST);
  out->foreign = __atomic_load_n(&g_foreign, __ATOMIC_SEQ_CST);
}

/* ---- fixtures --------------------------------------------------------- */

static int g_fds_before = -1;

int tu_setup_fds(void **state) {
  (void)state;
  g_fds_before = tu_count_fds();
  return 0;
}

/* libkqueue, which runs the kqueue backend on Linux for testing, keeps
 * descriptors of its own and closes them asynchronously after a kqueue is
 * closed, so counting descriptors around a test says nothing there. */
int tu_on_libkqueue(void) {
#ifdef __linux__
  const char *backend = getenv("RILL_BACKEND");
  return backend && strcmp(backend, "kqueue") == 0;
#else
  return 0;
#endif
}

static int fd_accounting_reliable(void) { return !tu_on_libkqueue(); }

void tu_assert_fds(int want) {
  int now = tu_count_fds();
  if (tu_on_libkqueue()) {
    /* `want` itself may have counted an earlier base's descriptors that
     * libkqueue had not closed yet: fewer is no leak there. */
    uint64_t until = tu_now_ms() + 5000;
    while (now > want && tu_now_ms() < until) {
      tu_sleep_ms(10);
      now = tu_count_fds();
    }
    if (now > want)
      fail_msg("%d descriptor(s) open, %d expected (waited 5 s for libkqueue)", now, want);
    return;
  }
  assert_int_equal(now, want);
}

/* libkqueue opens descriptors of its own, for the whole process, with the
 * first kqueue: one base made and freed before the first count puts them
 * in every count. */
static void libkqueue_warm_up(void) {
  static int done;
  rill_base *base = NULL;
  if (done || !tu_on_libkqueue())
    return;
  done = 1;
  if (rill_base_new(NULL, &base) == 0)
    rill_base_free(base);
  tu_settle_fds();
}

void tu_settle_fds(void) {
  uint64_t until = tu_now_ms() + 5000;
  int last = tu_count_fds(), stable = 0;
  if (!tu_on_libkqueue())
    return;
  while (stable < 10 && tu_now_ms() < until) {
    int now;
    tu_sleep_ms(10);
    now = tu_count_fds();
    stable = now == last ? stable + 1 : 0;
    last = now;
  }
}

int tu_teardown_fds(void **state) {
  int now = tu_count_fds();
  (void)state;
  if (g_fds_before >= 0 && now != g_fds_before && fd_accounting_reliable()) {
    fprintf(stderr, "test left %d descriptor(s) open (before %d, after %d)\n",
            now - g_fds_before, g_fds_before, now);
    return -1;
  }
  return 0;
}
